# 共享须审批 — who may approve a request to share (or lend) customers.
# Nobody approves their own request (the service refuses that whatever this says).

# Administrators approve any share of their subsidiary's customers.
can_approve_share(user: User, _customer: Customer) if user.has_role("admin");

# Managers approve shares of their departments' customers.
can_approve_share(user: User, customer: Customer) if
    user.has_role("manager") and
    link in customer.departments and link.ancestor_id = user.department_id;
