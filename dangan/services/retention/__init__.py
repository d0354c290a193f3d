"""Retention purges (定期清理, 销毁须登记): per-tenant rules, candidates marked and their
owners told, legal holds, destruction after a grace period with a record that cannot be
edited. See the modules: rules, queries (what each rule applies to), marking,
destruction, records, objects (files in S3), holds, candidates (the API's lists and
approvals), run (a tenant's run, and its dry run), redestruction (what a restore
deletes again)."""

from dangan.services.retention.candidates import (
    CandidateFilter,
    approve_candidates,
    list_candidates,
)
from dangan.services.retention.destruction import GroupOutcome, Purger
from dangan.services.retention.holds import legal_holds, place_legal_hold, release_legal_hold
from dangan.services.retention.marking import CandidateLine
from dangan.services.retention.records import (
    RecordFilter,
    RecordView,
    destruction_records,
    subject_hash,
)
from dangan.services.retention.rules import (
    RULE_SPECS,
    RetentionRule,
    retention_rules,
    set_retention_rule,
)
from dangan.services.retention.run import (
    RetentionReport,
    plan_retention,
    retention_preview,
    retention_ready,
    run_retention,
)

__all__ = [
    "RULE_SPECS",
    "CandidateFilter",
    "CandidateLine",
    "GroupOutcome",
    "Purger",
    "RecordFilter",
    "RecordView",
    "RetentionReport",
    "RetentionRule",
    "approve_candidates",
    "destruction_records",
    "legal_holds",
    "list_candidates",
    "place_legal_hold",
    "plan_retention",
    "release_legal_hold",
    "retention_preview",
    "retention_ready",
    "retention_rules",
    "run_retention",
    "set_retention_rule",
    "subject_hash",
]
