"""Tenant versions 7–8: the hash-chained audit trail."""

from __future__ import annotations

from dangan.tenants.ddl import Migration

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        7,
        "audit trail: hash-chained events",
        """
        -- 审计: one event per GraphQL request, written in the request's transaction. Each
        -- event carries the hash of the one before (a chain per tenant, numbered without
        -- gaps from audit_head, not from a sequence); `dangan audit verify` recomputes it.
        -- The tenant role owns these tables and so could rewrite them: the chain does not
        -- prevent that, it makes an edited, deleted or inserted event show.
        CREATE TABLE audit_event (
            seq             bigint PRIMARY KEY CHECK (seq > 0),
            at              timestamptz NOT NULL,
            request_id      text NOT NULL,
            actor_kind      text NOT NULL CHECK (actor_kind IN ('user', 'app', 'anonymous')),
            actor_id        integer,
            actor_name      text,
            client_address  text,
            user_agent      text,
            operation_type  text NOT NULL,
            operation_name  text,
            document_sha256 text NOT NULL,
            variables       jsonb NOT NULL,
            outcome         text NOT NULL CHECK (outcome IN ('ok', 'error')),
            error_codes     text[] NOT NULL,
            customers       bytea NOT NULL CHECK (length(customers) % 16 = 0),
            fields          jsonb NOT NULL,
            changes         jsonb NOT NULL,
            prev_hash       text NOT NULL,
            hash            text NOT NULL
        );
        CREATE TABLE audit_head (
            one       boolean PRIMARY KEY DEFAULT TRUE CHECK (one),
            last_seq  bigint NOT NULL,
            last_hash text NOT NULL
        );
        INSERT INTO audit_head (last_seq, last_hash) VALUES (0, repeat('0', 64));
        -- The customers returned: their ids packed, 16 bytes each (a page of 1,000 costs
        -- a third of a uuid[] to send and store); random, so not worth compressing.
        ALTER TABLE audit_event ALTER COLUMN customers SET STORAGE EXTERNAL;
        CREATE FUNCTION audit_event_customers(ids bytea) RETURNS SETOF uuid
        LANGUAGE sql IMMUTABLE AS $$
            SELECT encode(substring(ids FROM i * 16 + 1 FOR 16), 'hex')::uuid
            FROM generate_series(0, length(ids) / 16 - 1) AS i
        $$;
        -- The hash of an event: sha256 of the previous hash and the event's content as
        -- jsonb text (a canonical form: sorted keys, normalised numbers; the time as epoch
        -- seconds, independent of the session's time zone; the customer ids by their
        -- sha256, which the writer computes as it sends them and `verify` from the row).
        -- Computed in SQL both when the event is written and when it is verified, so
        -- both read the same bytes.
        CREATE FUNCTION audit_event_hash(e audit_event, customers_sha256 text) RETURNS text
        LANGUAGE sql STABLE AS $$
            SELECT encode(sha256(convert_to(e.prev_hash || jsonb_build_object(
                'seq', e.seq, 'at', extract(epoch FROM e.at), 'request_id', e.request_id,
                'actor_kind', e.actor_kind, 'actor_id', e.actor_id, 'actor_name', e.actor_name,
                'client_address', e.client_address, 'user_agent', e.user_agent,
                'operation_type', e.operation_type, 'operation_name', e.operation_name,
                'document_sha256', e.document_sha256, 'variables', e.variables,
                'outcome', e.outcome, 'error_codes', e.error_codes,
                'customers', customers_sha256,
                'fields', e.fields, 'changes', e.changes)::text, 'UTF8')), 'hex')
        $$;
        -- The changes a mutation wrote are found by their transaction's time (now()).
        CREATE INDEX customer_change_at ON customer_change (at);
        CREATE INDEX customer_change_decided_at ON customer_change (decided_at)
            WHERE decided_at IS NOT NULL;
        """,
    ),
    Migration(
        8,
        "audit trail: actions, actor roles, system events",
        """
        -- What an event did, as words a filter and an alarm rule can use: the root fields
        -- of a GraphQL operation (customers, requestExport, revealField …) or the name of
        -- a job's or a command's action (import.run, backup.run …); and the roles (a
        -- person) or scopes (a partner app) the actor held at the time.
        ALTER TABLE audit_event
            ADD COLUMN actions text[] NOT NULL DEFAULT '{}',
            ADD COLUMN actor_roles text[] NOT NULL DEFAULT '{}';
        -- Jobs and commands act as "system" when no person asked for them.
        ALTER TABLE audit_event DROP CONSTRAINT audit_event_actor_kind_check;
        ALTER TABLE audit_event ADD CONSTRAINT audit_event_actor_kind_check
            CHECK (actor_kind IN ('user', 'app', 'anonymous', 'system'));
        -- operation_type: query | mutation (a GraphQL request), refused (turned away
        -- before it ran: 400/401/403), job (an arq job), cli (a `dangan` command).
        -- The new columns enter the hash only when they hold something, so events written
        -- before this version keep the hashes they were written with.
        CREATE OR REPLACE FUNCTION audit_event_hash(e audit_event, customers_sha256 text)
        RETURNS text LANGUAGE sql STABLE AS $$
            SELECT encode(sha256(convert_to(e.prev_hash || (jsonb_build_object(
                'seq', e.seq, 'at', extract(epoch FROM e.at), 'request_id', e.request_id,
                'actor_kind', e.actor_kind, 'actor_id', e.actor_id, 'actor_name', e.actor_name,
                'client_address', e.client_address, 'user_agent', e.user_agent,
                'operation_type', e.operation_type, 'operation_name', e.operation_name,
                'document_sha256', e.document_sha256, 'variables', e.variables,
                'outcome', e.outcome, 'error_codes', e.error_codes,
                'customers', customers_sha256,
                'fields', e.fields, 'changes', e.changes)
                || jsonb_strip_nulls(jsonb_build_object(
                    'actions', nullif(e.actions, '{}'),
                    'actor_roles', nullif(e.actor_roles, '{}'))))::text, 'UTF8')), 'hex')
        $$;
        """,
    ),
)
