"""Tenant versions 12–13: retention purges (定期清理, 销毁须登记) — rules, candidates,
legal holds, and the destruction record that cannot be edited."""

from __future__ import annotations

from dangan.tenants.ddl import Migration

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        12,
        "retention: rules, candidates, legal holds",
        """
        -- The tenant's retention rules (dangan.services.retention.rules), seeded with the
        -- defaults and edited by whoever the policy's can_manage_retention allows. What is
        -- older than retention_months is marked; it is destroyed grace_days after it was
        -- marked, and only after an approval where requires_approval.
        CREATE TABLE retention_rule (
            rule              text PRIMARY KEY CHECK (rule IN ('invalid_customers',
                              'inactive_potential_customers', 'communication_records',
                              'expired_share_grants')),
            enabled           boolean NOT NULL DEFAULT true,
            retention_months  integer NOT NULL CHECK (retention_months BETWEEN 1 AND 1200),
            grace_days        integer NOT NULL DEFAULT 30 CHECK (grace_days BETWEEN 7 AND 365),
            requires_approval boolean NOT NULL DEFAULT false,
            updated_by        integer,
            updated_at        timestamptz NOT NULL DEFAULT now()
        );
        INSERT INTO retention_rule (rule, retention_months) VALUES
            ('invalid_customers', 36),
            ('inactive_potential_customers', 24),
            ('communication_records', 60),
            ('expired_share_grants', 12);

        -- What a rule applies to, marked by the nightly job: a customer, a communication or
        -- a share request (record_id), the customer it concerns (none for a share
        -- request), why (reason, basis_at: the date the rule counts from), and the owner
        -- it was marked for (the notice: owners read it through retentionCandidates).
        -- A candidate whose reason went away before its due date is unmarked, not purged;
        -- the rows of a destroyed customer go with it.
        CREATE TABLE retention_candidate (
            id            bigserial PRIMARY KEY,
            rule          text NOT NULL REFERENCES retention_rule(rule),
            record_type   text NOT NULL
                          CHECK (record_type IN ('customer', 'communication', 'share_request')),
            record_id     uuid NOT NULL,
            customer_id   uuid REFERENCES customer(id) ON DELETE CASCADE,
            owner_id      integer,
            basis_at      timestamptz NOT NULL,
            reason        text NOT NULL,
            marked_at     timestamptz NOT NULL,
            due_at        timestamptz NOT NULL,
            status        text NOT NULL DEFAULT 'marked' CHECK (status IN ('marked', 'unmarked')),
            approved_by   integer,
            approved_at   timestamptz,
            unmarked_at   timestamptz,
            unmark_reason text,
            CHECK (due_at > marked_at),
            CHECK ((status = 'unmarked') = (unmarked_at IS NOT NULL)),
            CHECK ((approved_by IS NULL) = (approved_at IS NULL))
        );
        CREATE UNIQUE INDEX retention_candidate_marked ON retention_candidate (rule, record_id)
            WHERE status = 'marked';
        CREATE INDEX retention_candidate_due ON retention_candidate (due_at)
            WHERE status = 'marked';
        CREATE INDEX retention_candidate_customer ON retention_candidate (customer_id);
        CREATE INDEX retention_candidate_record ON retention_candidate (record_id);
        -- What the communication_records rule looks for every night, without a scan.
        CREATE INDEX communication_occurred ON communication (occurred_at);

        -- 法律保全: a customer under a legal hold is neither marked nor destroyed, nor any of
        -- its communications or the share requests that name it. One active hold per
        -- customer; released holds stay as the record (and go with the customer if it is
        -- destroyed later).
        CREATE TABLE legal_hold (
            id             bigserial PRIMARY KEY,
            customer_id    uuid NOT NULL REFERENCES customer(id) ON DELETE CASCADE,
            reason         text NOT NULL CHECK (length(reason) BETWEEN 2 AND 500),
            placed_by      integer NOT NULL,
            placed_at      timestamptz NOT NULL DEFAULT now(),
            released_by    integer,
            released_at    timestamptz,
            release_reason text,
            CHECK ((released_at IS NULL) = (released_by IS NULL)),
            CHECK ((released_at IS NULL) = (release_reason IS NULL))
        );
        CREATE UNIQUE INDEX legal_hold_active ON legal_hold (customer_id)
            WHERE released_at IS NULL;
        CREATE INDEX legal_hold_customer ON legal_hold (customer_id);
        -- The database itself refuses to delete a customer under an active hold, whatever
        -- code path asks.
        CREATE FUNCTION customer_legal_hold_guard() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            IF EXISTS (SELECT 1 FROM legal_hold
                        WHERE customer_id = OLD.id AND released_at IS NULL) THEN
                RAISE EXCEPTION 'customer % is under a legal hold', OLD.id
                    USING ERRCODE = 'restrict_violation';
            END IF;
            RETURN OLD;
        END
        $$;
        CREATE TRIGGER customer_legal_hold_guard BEFORE DELETE ON customer
            FOR EACH ROW EXECUTE FUNCTION customer_legal_hold_guard();
        """,
    ),
    Migration(
        13,
        "retention: destruction records, object removals",
        """
        -- 销毁须登记: one row per destruction (a customer with everything it held, a
        -- customer's old communications, or a share request), written in the transaction
        -- that destroys. Ids only as keyed hashes (HMAC under a key derived from
        -- DANGAN_SECRET_KEY): the record can confirm "was this id destroyed?" without
        -- keeping it. record_hash is sha256 of the record's content and is carried by the
        -- purge.destroy audit event (audit_seq) written with it, so an edit shows.
        CREATE TABLE destruction_record (
            id               bigserial PRIMARY KEY,
            rule             text NOT NULL,
            record_type      text NOT NULL,
            reason           text NOT NULL,
            counts           jsonb NOT NULL,
            customer_hash    text,
            subject_hashes   text[] NOT NULL,
            marked_at        timestamptz NOT NULL,
            due_at           timestamptz NOT NULL,
            approved_by      integer,
            approved_by_name text,
            approved_at      timestamptz,
            as_of            timestamptz NOT NULL,
            operator_clock   boolean NOT NULL,
            destroyed_at     timestamptz NOT NULL,
            origin           text NOT NULL CHECK (origin IN ('job', 'cli')),
            operator         text,
            record_hash      text NOT NULL CHECK (record_hash ~ '^[0-9a-f]{64}$'),
            audit_seq        bigint NOT NULL
        );
        CREATE INDEX destruction_record_destroyed_at ON destruction_record (destroyed_at);
        CREATE INDEX destruction_record_customer ON destruction_record (customer_hash)
            WHERE customer_hash IS NOT NULL;
        -- Append-only: an UPDATE, DELETE or TRUNCATE is refused. (The tenant role owns the
        -- table and could drop the trigger: the audit chain is what makes that evident.)
        CREATE FUNCTION destruction_record_append_only() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'destruction records cannot be changed or deleted (%)', TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END
        $$;
        CREATE TRIGGER destruction_record_append_only BEFORE UPDATE OR DELETE
            ON destruction_record FOR EACH ROW EXECUTE FUNCTION destruction_record_append_only();
        CREATE TRIGGER destruction_record_no_truncate BEFORE TRUNCATE
            ON destruction_record FOR EACH STATEMENT
            EXECUTE FUNCTION destruction_record_append_only();

        -- Attachment files of destroyed customers still to remove from S3: queued in the
        -- destroying transaction, removed after it commits (so a rollback removes nothing
        -- and a crash leaves the to-do for the next run).
        CREATE TABLE retention_object_removal (
            object_key   text PRIMARY KEY,
            record_id    bigint NOT NULL REFERENCES destruction_record(id),
            queued_at    timestamptz NOT NULL DEFAULT now(),
            attempts     integer NOT NULL DEFAULT 0,
            last_error   text
        );
        CREATE INDEX retention_object_removal_record ON retention_object_removal (record_id);
        """,
    ),
)
