"""Tenant version 10: access alarms (报警机制) — rules, alerts, webhook deliveries."""

from __future__ import annotations

from dangan.tenants.ddl import Migration

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        10,
        "access alarms: rules, alerts, webhook deliveries",
        """
        -- The rules an arq job evaluates over the audit trail (dangan.alarms). Every rule
        -- reads "more than `threshold` in `window_minutes`" of what it counts; new_address
        -- has neither (the first use of a credential from an address is what it sees).
        -- suspend: an alert of this rule suspends the actor's credential until reviewed.
        CREATE TABLE alarm_rule (
            rule           text PRIMARY KEY,
            enabled        boolean NOT NULL DEFAULT true,
            threshold      integer CHECK (threshold >= 0),
            window_minutes integer CHECK (window_minutes BETWEEN 1 AND 10080),
            severity       text NOT NULL
                           CHECK (severity IN ('low', 'medium', 'high', 'critical')),
            suspend        boolean NOT NULL DEFAULT false,
            updated_by     integer,
            updated_at     timestamptz NOT NULL DEFAULT now()
        );
        INSERT INTO alarm_rule (rule, threshold, window_minutes, severity) VALUES
            ('bulk_read', 300, 5, 'high'),
            ('off_hours', 0, 60, 'medium'),
            ('probing', 20, 5, 'high'),
            ('reveal_burst', 10, 10, 'medium'),
            ('export_spike', 3, 60, 'high'),
            ('new_address', NULL, NULL, 'medium');
        -- Where alerts go (webhook; its secret signs each delivery) and the working hours
        -- the off_hours rule compares with (days: ISO, 1 = Monday; in time_zone).
        CREATE TABLE alarm_setting (
            one            boolean PRIMARY KEY DEFAULT TRUE CHECK (one),
            webhook_url    text,
            webhook_secret text,
            work_starts    time NOT NULL DEFAULT '09:00',
            work_ends      time NOT NULL DEFAULT '18:00',
            work_days      integer[] NOT NULL DEFAULT '{1,2,3,4,5}',
            time_zone      text NOT NULL DEFAULT 'Asia/Shanghai',
            updated_by     integer,
            updated_at     timestamptz NOT NULL DEFAULT now()
        );
        INSERT INTO alarm_setting DEFAULT VALUES;
        -- The last audit event evaluated (events are numbered without gaps, in commit
        -- order); history before this version is not evaluated.
        CREATE TABLE alarm_cursor (
            one          boolean PRIMARY KEY DEFAULT TRUE CHECK (one),
            last_seq     bigint NOT NULL,
            evaluated_at timestamptz
        );
        INSERT INTO alarm_cursor (last_seq) SELECT last_seq FROM audit_head;
        -- Addresses each person or app has used (new_address).
        CREATE TABLE alarm_known_address (
            actor_kind     text NOT NULL,
            actor_id       integer NOT NULL,
            client_address text NOT NULL,
            first_seen_at  timestamptz NOT NULL,
            last_seen_at   timestamptz NOT NULL,
            first_seq      bigint NOT NULL,
            PRIMARY KEY (actor_kind, actor_id, client_address)
        );
        -- 报警: one per rule and actor while it is not closed (a new trigger adds to it).
        -- actor_key: user:<id>, app:<id>, or address:<ip> for anonymous callers.
        CREATE TABLE alert (
            id               bigserial PRIMARY KEY,
            rule             text NOT NULL,
            severity         text NOT NULL
                             CHECK (severity IN ('low', 'medium', 'high', 'critical')),
            status           text NOT NULL DEFAULT 'open'
                             CHECK (status IN ('open', 'acknowledged', 'closed')),
            actor_kind       text NOT NULL CHECK (actor_kind IN ('user', 'app', 'anonymous')),
            actor_id         integer,
            actor_name       text,
            actor_key        text NOT NULL,
            client_address   text,
            summary          text NOT NULL,
            opened_at        timestamptz NOT NULL DEFAULT now(),
            last_seen_at     timestamptz NOT NULL,
            occurrences      integer NOT NULL DEFAULT 1,
            first_seq        bigint NOT NULL,
            last_seq         bigint NOT NULL,
            evidence         jsonb NOT NULL,
            suspended        boolean NOT NULL DEFAULT false,
            acknowledged_at  timestamptz,
            acknowledged_by  integer,
            acknowledge_note text,
            closed_at        timestamptz,
            closed_by        integer,
            close_reason     text,
            reinstated_at    timestamptz,
            reinstated_by    integer,
            reinstate_reason text,
            CHECK ((status = 'closed') = (closed_at IS NOT NULL)),
            CHECK (status <> 'closed' OR close_reason IS NOT NULL)
        );
        CREATE UNIQUE INDEX alert_one_open ON alert (rule, actor_key) WHERE status <> 'closed';
        CREATE INDEX alert_opened_at ON alert (opened_at);
        CREATE INDEX alert_suspending ON alert (actor_kind, actor_id)
            WHERE suspended AND reinstated_at IS NULL;
        -- Each attempt to POST an alert to the webhook.
        CREATE TABLE alert_delivery (
            id           bigserial PRIMARY KEY,
            alert_id     bigint NOT NULL REFERENCES alert(id),
            attempt      integer NOT NULL CHECK (attempt >= 1),
            url          text NOT NULL,
            attempted_at timestamptz NOT NULL DEFAULT now(),
            status_code  integer,
            error        text,
            outcome      text NOT NULL CHECK (outcome IN ('delivered', 'retrying', 'failed')),
            UNIQUE (alert_id, attempt)
        );
        """,
    ),
)
