"""Tenant version 11: retention of the audit trail (where the kept chain starts)."""

from __future__ import annotations

from dangan.tenants.ddl import Migration

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        11,
        "audit trail: retention anchor",
        """
        -- Events older than the retention leave the table, oldest first, always up to an
        -- event a checkpoint in S3 vouches for. The anchor is that event's (seq, hash):
        -- the kept chain starts after it (its first event carries the anchor's hash), and
        -- `dangan audit verify` checks the anchor against its checkpoint. seq 0 with the
        -- genesis hash: nothing pruned. A row of its own rather than columns of
        -- audit_head, so a prune does not hold the row every request's event locks.
        -- retention_days: this tenant keeps its events longer than the deployment's
        -- DANGAN_AUDIT_RETENTION_DAYS (never shorter: the larger of the two applies).
        CREATE TABLE audit_anchor (
            one            boolean PRIMARY KEY DEFAULT TRUE CHECK (one),
            seq            bigint NOT NULL CHECK (seq >= 0),
            hash           text NOT NULL,
            pruned_at      timestamptz,
            retention_days integer CHECK (retention_days > 0)
        );
        INSERT INTO audit_anchor (seq, hash) VALUES (0, repeat('0', 64));
        """,
    ),
)
