# 合规审查 — who may read the tenant's compliance report: reads, changes, exports,
# shares and reveals by role, policy changes, backups and the audit chain's verification.
# The report holds counts and the names of staff and fields, never customer data.
# Partner apps never get it, whatever a rule here says.

# Auditors review the trail.
can_read_compliance_report(user: User) if user.has_role("auditor");

# Administrators answer for their subsidiary's compliance.
can_read_compliance_report(user: User) if user.has_role("admin");
