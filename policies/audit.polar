# 审计 — who may read the audit trail: the auditEvents and customerAccessLog queries and
# the exportAuditEvents CSV. Reading it is itself recorded in the trail.
#
# - "user" is a member of staff (user.id, user.department_id, user.has_role("auditor")).
# - Partner apps never read the trail, whatever a rule here says.
# - Without any can_read_audit rule, nobody may read it.

# Auditors read the trail of their subsidiary.
can_read_audit(user: User) if user.has_role("auditor");

# So do administrators.
can_read_audit(user: User) if user.has_role("admin");
