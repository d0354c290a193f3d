# 定期清理 / 销毁须登记 — who governs retention purges: the rules (how long each kind of
# record is kept), legal holds (a customer that must not be destroyed), approving a
# purge where a rule requires it, and reading the destruction records.
#
# - "user" is a member of staff (user.id, user.department_id, user.has_role("admin")).
# - Partner apps never do any of this, whatever a rule here says.
# - Without a rule, nobody may do what it governs (the nightly purge still runs).
# - Placing or releasing a hold, and approving, also needs the customer to be visible
#   to the user (can_see in customers.polar).

# Administrators set the retention rules (and may preview a purge).
can_manage_retention(user: User) if user.has_role("admin");

# Legal holds are placed and released by administrators and auditors (compliance).
can_manage_legal_holds(user: User) if user.has_role("admin");
can_manage_legal_holds(user: User) if user.has_role("auditor");

# Where a rule requires an approval, an administrator or an auditor gives it.
can_approve_purge(user: User) if user.has_role("admin");
can_approve_purge(user: User) if user.has_role("auditor");

# The destruction records (销毁登记), and every pending candidate, are read by
# administrators and auditors. (Owners always see the notices about their own customers.)
can_read_destruction_records(user: User) if user.has_role("admin");
can_read_destruction_records(user: User) if user.has_role("auditor");
