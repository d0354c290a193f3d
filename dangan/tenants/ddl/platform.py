"""The platform schema (``public``): registry, identities, extensions."""

from __future__ import annotations

from dangan.tenants.ddl import Migration

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "platform registry and identities",
        """
        CREATE TABLE IF NOT EXISTS public.platform_meta (
            key   text PRIMARY KEY,
            value text NOT NULL
        );
        CREATE TABLE public.tenant (
            id             serial PRIMARY KEY,
            slug           text NOT NULL UNIQUE CHECK (slug ~ '^[a-z][a-z0-9_]{1,40}$'),
            name           text NOT NULL,
            schema_name    text NOT NULL UNIQUE,
            role_name      text NOT NULL UNIQUE,
            status         text NOT NULL DEFAULT 'active'
                           CHECK (status IN ('provisioning', 'active', 'suspended')),
            schema_version integer NOT NULL DEFAULT 0,
            created_at     timestamptz NOT NULL DEFAULT now()
        );
        CREATE TABLE public.identity (
            id            serial PRIMARY KEY,
            email         text NOT NULL UNIQUE,
            display_name  text NOT NULL,
            password_hash text,
            status        text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
            created_at    timestamptz NOT NULL DEFAULT now()
        );
        CREATE TABLE public.membership (
            id            serial PRIMARY KEY,
            identity_id   integer NOT NULL REFERENCES public.identity(id) ON DELETE CASCADE,
            tenant_id     integer NOT NULL REFERENCES public.tenant(id) ON DELETE CASCADE,
            roles         text[] NOT NULL CHECK (cardinality(roles) > 0),
            department_id integer,
            created_at    timestamptz NOT NULL DEFAULT now(),
            UNIQUE (identity_id, tenant_id)
        );
        CREATE TABLE public.api_client (
            id          serial PRIMARY KEY,
            tenant_id   integer NOT NULL REFERENCES public.tenant(id) ON DELETE CASCADE,
            name        text NOT NULL,
            key_id      text NOT NULL UNIQUE,
            key_hash    text NOT NULL,
            scopes      text[] NOT NULL,
            status      text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'revoked')),
            created_at  timestamptz NOT NULL DEFAULT now(),
            revoked_at  timestamptz,
            UNIQUE (tenant_id, name)
        );
        """,
    ),
    Migration(
        2,
        "pg_trgm for duplicate detection, in a schema of its own",
        """
        -- Trigram similarity of customer names (duplicate detection). Its own schema, so
        -- tenant roles may use the functions and operators (USAGE) without any right on
        -- public; pg_trgm is a trusted extension (a database owner may create it).
        CREATE SCHEMA IF NOT EXISTS dangan_ext;
        GRANT USAGE ON SCHEMA dangan_ext TO PUBLIC;
        CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA dangan_ext;
        """,
    ),
    Migration(
        3,
        "credentials suspended by an alarm",
        """
        -- A person's access to one tenant, or a partner app's key, suspended by an alert
        -- of that tenant (dangan.alarms.suspension) until an administrator reinstates
        -- it. Authentication reads it with the credential (one join, no extra query).
        -- The tenant's alert table is the record; this is its projection for sign-in.
        CREATE TABLE public.credential_suspension (
            tenant_id    integer NOT NULL REFERENCES public.tenant(id) ON DELETE CASCADE,
            actor_kind   text NOT NULL CHECK (actor_kind IN ('user', 'app')),
            actor_id     integer NOT NULL,
            alert_id     bigint NOT NULL,
            suspended_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (tenant_id, actor_kind, actor_id)
        );
        """,
    ),
    Migration(
        4,
        "backup keys, runs and catalogue",
        """
        -- Each tenant's backup data key, wrapped (AES-GCM) under the master key named by
        -- master_key_id (settings; never in the database). Deleting the row makes every
        -- backup of the tenant unreadable (crypto-shredding); manifests carry a copy of
        -- the wrapped key so a lost database does not lose the backups.
        CREATE TABLE public.backup_key (
            tenant_id     integer PRIMARY KEY REFERENCES public.tenant(id) ON DELETE CASCADE,
            master_key_id text NOT NULL,
            wrapped       bytea NOT NULL,
            created_at    timestamptz NOT NULL DEFAULT now(),
            rewrapped_at  timestamptz
        );
        -- One row per attempted backup (tenant and slot): what the job is doing or why it
        -- failed, with its progress. Not a backup: the catalogue is public.backup.
        CREATE TABLE public.backup_run (
            tenant_id   integer NOT NULL REFERENCES public.tenant(id) ON DELETE CASCADE,
            backup_id   text NOT NULL,
            kind        text NOT NULL CHECK (kind IN ('scheduled', 'manual')),
            status      text NOT NULL CHECK (status IN ('running', 'failed', 'complete')),
            attempts    integer NOT NULL DEFAULT 1,
            started_at  timestamptz NOT NULL DEFAULT now(),
            updated_at  timestamptz NOT NULL DEFAULT now(),
            tables_done integer NOT NULL DEFAULT 0,
            tables      integer,
            rows_done   bigint NOT NULL DEFAULT 0,
            bytes_done  bigint NOT NULL DEFAULT 0,
            error       text,
            PRIMARY KEY (tenant_id, backup_id)
        );
        -- The catalogue: a row only once the backup's manifest is in the bucket, so a
        -- backup listed here is complete.
        CREATE TABLE public.backup (
            tenant_id       integer NOT NULL REFERENCES public.tenant(id) ON DELETE CASCADE,
            id              text NOT NULL,
            kind            text NOT NULL CHECK (kind IN ('scheduled', 'manual')),
            prefix          text NOT NULL,
            schema_version  integer NOT NULL,
            master_key_id   text NOT NULL,
            tables          integer NOT NULL,
            rows            bigint NOT NULL,
            plain_bytes     bigint NOT NULL,
            stored_bytes    bigint NOT NULL,
            attachments     integer NOT NULL,
            started_at      timestamptz NOT NULL,
            finished_at     timestamptz NOT NULL,
            lock_mode       text,
            locked_until    timestamptz,
            replicated_at   timestamptz,
            verified_at     timestamptz,
            verify_error    text,
            drilled_at      timestamptz,
            drill_error     text,
            PRIMARY KEY (tenant_id, id)
        );
        CREATE INDEX backup_by_time ON public.backup (tenant_id, finished_at DESC);
        """,
    ),
    Migration(
        5,
        "schemas retired by a restore",
        """
        -- A restore loads a tenant's backup into a fresh schema and points the registry
        -- (public.tenant.schema_name) at it; the schema it replaces is kept, untouched,
        -- until drop_after (dangan.tenants.restoring.drop_retired drops it then, as the
        -- tenant's role, which owns it). Version 4 is the backup catalogue's.
        CREATE TABLE public.retired_schema (
            schema_name text PRIMARY KEY,
            tenant_id   integer NOT NULL REFERENCES public.tenant(id) ON DELETE CASCADE,
            retired_at  timestamptz NOT NULL DEFAULT now(),
            drop_after  timestamptz NOT NULL,
            reason      text NOT NULL,
            CHECK (drop_after >= retired_at)
        );
        CREATE INDEX retired_schema_tenant ON public.retired_schema (tenant_id);
        """,
    ),
    Migration(
        6,
        "per-tenant backup schedules",
        """
        -- When a tenant's scheduled backup starts (UTC), if not at the deployment's
        -- DANGAN_BACKUP_HOUR:MINUTE; enabled false: no scheduled backups (on-demand ones
        -- still run). No row: the deployment's default.
        CREATE TABLE public.backup_schedule (
            tenant_id  integer PRIMARY KEY REFERENCES public.tenant(id) ON DELETE CASCADE,
            hour       integer NOT NULL CHECK (hour BETWEEN 0 AND 23),
            minute     integer NOT NULL CHECK (minute BETWEEN 0 AND 59),
            enabled    boolean NOT NULL DEFAULT true,
            updated_at timestamptz NOT NULL DEFAULT now()
        );
        """,
    ),
)
