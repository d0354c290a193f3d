# 客户档案 — who sees which customers, and how much of each.
#
# How to read and edit this file
# - A rule says when something is allowed; anything no rule allows is refused.
# - "user" is a member of staff: user.id, user.department_id, user.has_role("sales").
#   Roles: admin, manager, sales, auditor.
# - "app" is a partner application: app.id, app.has_scope("customers:read").
# - "customer" is a customer archive. Rules may compare its fields (owner_id,
#   department_id, consents_to_sharing, region, tier, ...) and use two relations:
#     link in customer.departments   the department tree above the customer's
#                                    department (link.ancestor_id)
#     grant in customer.grants       approved, unexpired shares (grant.user_id,
#                                    grant.department_id, grant.app_id,
#                                    grant.field_class, grant.level)
# - Field classes: basic, contact, identity, financial, business, notes. A rule may
#   also name one field (for example "phone" or "id_number").
# - Levels: "full" shows the value, "masked" shows e.g. 138****5678, anything else is
#   hidden (null, listed in extensions.redacted).
# Check a change with `dangan policy check policies/` and `dangan policy test policies/`,
# and see who gains or loses what with `dangan policy diff --tenant T policies/`.

# --- Which customers each caller sees -------------------------------------------------

# Administrators see every customer of their subsidiary.
can_see(user: User, _customer: Customer) if user.has_role("admin");

# Auditors see every customer (read-only; most fields masked, below).
can_see(user: User, _customer: Customer) if user.has_role("auditor");

# Managers see the customers of their department and of every department below it.
can_see(user: User, customer: Customer) if
    user.has_role("manager") and
    link in customer.departments and link.ancestor_id = user.department_id;

# Salespeople see the customers they own.
can_see(user: User, customer: Customer) if
    user.has_role("sales") and customer.owner_id = user.id;

# Anyone sees a customer shared with them (or with their department) by an approved,
# unexpired share.
can_see(user: User, customer: Customer) if
    grant in customer.grants and grant.user_id = user.id;
can_see(user: User, customer: Customer) if
    grant in customer.grants and grant.department_id = user.department_id;

# Partner apps see only customers who consented to sharing and were shared with the app.
can_see(app: PartnerApp, customer: Customer) if
    app.has_scope("customers:read") and customer.consents_to_sharing = true and
    grant in customer.grants and grant.app_id = app.id;

# --- How much of each customer they see -----------------------------------------------

# Administrators: everything in full.
field_access(user: User, "full", _customer: Customer, _class) if user.has_role("admin");

# Managers: their departments' customers in full, identity masked.
field_access(user: User, "full", customer: Customer, class) if
    user.has_role("manager") and
    class in ["basic", "contact", "financial", "business", "notes"] and
    link in customer.departments and link.ancestor_id = user.department_id;
field_access(user: User, "masked", customer: Customer, "identity") if
    user.has_role("manager") and
    link in customer.departments and link.ancestor_id = user.department_id;

# Salespeople: their own customers in full, identity masked, financial hidden.
field_access(user: User, "full", customer: Customer, class) if
    user.has_role("sales") and customer.owner_id = user.id and
    class in ["basic", "contact", "business", "notes"];
field_access(user: User, "masked", customer: Customer, "identity") if
    user.has_role("sales") and customer.owner_id = user.id;

# Auditors: basic facts in full, every sensitive class masked.
field_access(user: User, "full", _customer: Customer, "basic") if user.has_role("auditor");
field_access(user: User, "masked", _customer: Customer, class) if
    user.has_role("auditor") and
    class in ["contact", "identity", "financial", "business", "notes"];

# Shared customers: what the share says, always with their basic facts.
field_access(user: User, "full", customer: Customer, "basic") if
    grant in customer.grants and grant.user_id = user.id;
field_access(user: User, level, customer: Customer, class) if
    grant in customer.grants and grant.user_id = user.id and
    grant.field_class = class and grant.level = level;
field_access(user: User, "full", customer: Customer, "basic") if
    grant in customer.grants and grant.department_id = user.department_id;
field_access(user: User, level, customer: Customer, class) if
    grant in customer.grants and grant.department_id = user.department_id and
    grant.field_class = class and grant.level = level;

# Partner apps: only the classes shared with them — never identity or financial.
field_access(app: PartnerApp, level, customer: Customer, class) if
    app.has_scope("customers:read") and customer.consents_to_sharing = true and
    class in ["basic", "contact", "business", "notes"] and
    grant in customer.grants and grant.app_id = app.id and
    grant.field_class = class and grant.level = level;

# Auditors may look a customer up by an exact phone number or e-mail, though they see
# both masked.
field_access(user: User, "match", _customer: Customer, "contact") if user.has_role("auditor");

# --- Revealing a masked value (the reason is kept in the audit trail) ------------------

# A salesperson may reveal the identity details of their own customers.
can_reveal(user: User, customer: Customer, "identity") if
    user.has_role("sales") and customer.owner_id = user.id;
# Administrators may reveal anything.
can_reveal(user: User, _customer: Customer, _class) if user.has_role("admin");

# --- Changing customers -------------------------------------------------------------------

can_edit(user: User, _customer: Customer) if user.has_role("admin");
can_edit(user: User, customer: Customer) if
    user.has_role("manager") and
    link in customer.departments and link.ancestor_id = user.department_id;
can_edit(user: User, customer: Customer) if
    user.has_role("sales") and customer.owner_id = user.id;
can_edit(app: PartnerApp, customer: Customer) if
    app.has_scope("customers:write") and customer.consents_to_sharing = true and
    grant in customer.grants and grant.app_id = app.id;

# --- Changes that need approval (修改须审批) ---------------------------------------------

# A change to a field of these classes (or to a field named here) waits until someone
# other than its maker approves it; until then the old value stands. Every change is
# recorded in the customer's history either way.
change_needs_approval(_actor, _customer: Customer, class) if
    class in ["identity", "financial", "tier"];

# Who may approve or reject a pending change (never its maker).
can_approve_change(user: User, _customer: Customer) if user.has_role("admin");
can_approve_change(user: User, customer: Customer) if
    user.has_role("manager") and
    link in customer.departments and link.ancestor_id = user.department_id;
