"""Tenant version 14: a backup that failed for good raises an alert (rule ``backup_failed``)."""

from __future__ import annotations

from dangan.tenants.ddl import Migration

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        14,
        "backups: the backup_failed alert, about the platform's own work",
        """
        -- An alert about what the platform failed to do (a backup, after its retries)
        -- is about no person: its actor is 'system', keyed by what failed
        -- (backup:<id>). Such alerts never suspend anyone.
        ALTER TABLE alert DROP CONSTRAINT alert_actor_kind_check;
        ALTER TABLE alert ADD CONSTRAINT alert_actor_kind_check
            CHECK (actor_kind IN ('user', 'app', 'anonymous', 'system'));
        ALTER TABLE alert ADD CONSTRAINT alert_system_never_suspends
            CHECK (actor_kind <> 'system' OR NOT suspended);
        INSERT INTO alarm_rule (rule, threshold, window_minutes, severity)
            VALUES ('backup_failed', NULL, NULL, 'high');
        -- Such an alert goes to the operators' webhook (DANGAN_ALARM_WEBHOOK_URL) as
        -- well as to the tenant's own: the attempts of the operators' copy are kept
        -- apart from alert_delivery (the tenant's webhook), which the tenant reads.
        -- (They go with their alert: a restore replaces the alerts it carries over.)
        CREATE TABLE alert_platform_delivery (
            id           bigserial PRIMARY KEY,
            alert_id     bigint NOT NULL REFERENCES alert(id) ON DELETE CASCADE,
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
