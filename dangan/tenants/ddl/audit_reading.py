"""Tenant version 9: reading the audit trail — which events returned a customer."""

from __future__ import annotations

from dangan.tenants.ddl import Migration

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        9,
        "audit trail: reading (customer index, filter indexes)",
        """
        -- Which events returned which customer: derived from audit_event.customers (packed
        -- ids, which no index can search) by a catch-up job that runs after the requests,
        -- never in them (dangan.audit.access_index). audit_access_progress says up to
        -- which event it has indexed (and that event's hash, so a chain rewound or
        -- rewritten since is noticed); a reader adds the events after that by scanning
        -- them, so the answer is exact whether or not the job has caught up.
        CREATE TABLE audit_access (
            customer_id uuid NOT NULL,
            seq         bigint NOT NULL REFERENCES audit_event (seq) ON DELETE CASCADE,
            PRIMARY KEY (customer_id, seq)
        );
        -- For the cascade when events are removed (retention).
        CREATE INDEX audit_access_seq ON audit_access (seq);
        CREATE TABLE audit_access_progress (
            one         boolean PRIMARY KEY DEFAULT TRUE CHECK (one),
            indexed_seq bigint NOT NULL CHECK (indexed_seq >= 0),
            indexed_hash text NOT NULL
        );
        INSERT INTO audit_access_progress (indexed_seq, indexed_hash) VALUES (0, '');
        -- Filters of the auditEvents query: a period, one actor, one action (newest first).
        -- A few µs per event written (measured: below the noise of customers_list_masked).
        -- The GIN index without fastupdate: no pending list whose flush one unlucky
        -- request would pay for.
        CREATE INDEX audit_event_by_at ON audit_event (at);
        CREATE INDEX audit_event_by_actor ON audit_event (actor_kind, actor_id, seq);
        CREATE INDEX audit_event_by_action ON audit_event USING gin (actions)
            WITH (fastupdate = off);
        """,
    ),
)
