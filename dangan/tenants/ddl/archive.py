"""Tenant versions 1–5: departments, members, customers, shares, partner apps, reveals,
policy versions."""

from __future__ import annotations

from dangan.tenants.ddl import Migration

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "departments, members and customers",
        """
        CREATE TABLE department (
            id         serial PRIMARY KEY,
            name       text NOT NULL,
            parent_id  integer REFERENCES department(id),
            created_at timestamptz NOT NULL DEFAULT now(),
            UNIQUE (parent_id, name)
        );
        -- Every (ancestor, descendant) pair, itself included at depth 0, so that
        -- "my department and everything below it" is one indexed join.
        CREATE TABLE department_closure (
            ancestor_id   integer NOT NULL REFERENCES department(id) ON DELETE CASCADE,
            descendant_id integer NOT NULL REFERENCES department(id) ON DELETE CASCADE,
            depth         integer NOT NULL,
            PRIMARY KEY (ancestor_id, descendant_id)
        );
        CREATE INDEX department_closure_descendant ON department_closure (descendant_id);
        -- The tenant's own copy of the people who work in it (mirrors public.membership).
        CREATE TABLE member (
            identity_id   integer PRIMARY KEY,
            email         text NOT NULL,
            display_name  text NOT NULL,
            roles         text[] NOT NULL,
            department_id integer REFERENCES department(id),
            active        boolean NOT NULL DEFAULT true,
            updated_at    timestamptz NOT NULL DEFAULT now()
        );
        CREATE TABLE customer (
            id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            kind          text NOT NULL CHECK (kind IN ('INDIVIDUAL', 'ENTERPRISE')),
            name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
            phone         text,
            email         text,
            id_number     text,
            uscc          text,
            address       text,
            region        text,
            tier          text NOT NULL DEFAULT 'ORDINARY'
                          CHECK (tier IN ('KEY', 'ORDINARY', 'POTENTIAL')),
            owner_id      integer REFERENCES member(identity_id),
            department_id integer REFERENCES department(id),
            created_at    timestamptz NOT NULL DEFAULT now(),
            updated_at    timestamptz NOT NULL DEFAULT now(),
            version       integer NOT NULL DEFAULT 1,
            created_by    integer,
            updated_by    integer
        );
        CREATE INDEX customer_created ON customer (created_at, id);
        CREATE INDEX customer_updated ON customer (updated_at, id);
        CREATE INDEX customer_name ON customer (name, id);
        CREATE INDEX customer_owner ON customer (owner_id);
        CREATE INDEX customer_department ON customer (department_id);
        CREATE INDEX customer_phone ON customer (phone);
        """,
    ),
    Migration(
        2,
        "sensitive profile fields, consent, share requests and grants",
        """
        ALTER TABLE customer
            ADD COLUMN wechat text,
            ADD COLUMN birthday date,
            ADD COLUMN gender text CHECK (gender IN ('MALE', 'FEMALE')),
            ADD COLUMN credit_rating text,
            ADD COLUMN payment_capacity numeric(18, 2),
            ADD COLUMN annual_revenue numeric(18, 2),
            ADD COLUMN remarks text,
            ADD COLUMN tags text[] NOT NULL DEFAULT '{}',
            ADD COLUMN consents_to_sharing boolean NOT NULL DEFAULT false;
        -- 共享 / 借阅: a request to share customers with a person, a department or a
        -- partner app, for some field classes, until a date; it counts once approved.
        CREATE TABLE share_request (
            id                    uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            grantee_user_id       integer REFERENCES member(identity_id),
            grantee_department_id integer REFERENCES department(id),
            grantee_app_id        integer,
            classes               text[] NOT NULL CHECK (cardinality(classes) > 0),
            level                 text NOT NULL CHECK (level IN ('full', 'masked')),
            purpose               text NOT NULL,
            valid_until           timestamptz NOT NULL,
            status                text NOT NULL DEFAULT 'pending' CHECK (status IN
                                  ('pending', 'approved', 'rejected', 'revoked', 'expired')),
            requested_by          integer NOT NULL,
            requested_at          timestamptz NOT NULL DEFAULT now(),
            decided_by            integer,
            decided_at            timestamptz,
            decision_comment      text,
            CHECK (num_nonnulls(grantee_user_id, grantee_department_id, grantee_app_id) = 1)
        );
        CREATE TABLE share_request_customer (
            request_id  uuid NOT NULL REFERENCES share_request(id) ON DELETE CASCADE,
            customer_id uuid NOT NULL REFERENCES customer(id) ON DELETE CASCADE,
            PRIMARY KEY (request_id, customer_id)
        );
        CREATE INDEX share_request_customer_customer ON share_request_customer (customer_id);
        CREATE TABLE share_event (
            id         bigserial PRIMARY KEY,
            request_id uuid NOT NULL REFERENCES share_request(id) ON DELETE CASCADE,
            event      text NOT NULL,
            actor_kind text NOT NULL,
            actor_id   integer,
            reason     text,
            at         timestamptz NOT NULL DEFAULT now()
        );
        -- What counts right now: approved and not yet expired, one row per class.
        CREATE VIEW share_grant AS
            SELECT rc.customer_id, r.id AS request_id,
                   r.grantee_user_id AS user_id, r.grantee_department_id AS department_id,
                   r.grantee_app_id AS app_id, c.field_class, r.level
              FROM share_request r
              JOIN share_request_customer rc ON rc.request_id = r.id
              CROSS JOIN LATERAL unnest(r.classes) AS c(field_class)
             WHERE r.status = 'approved' AND r.valid_until > now();
        """,
    ),
    Migration(
        3,
        "partner apps mirrored into the tenant (share grantees)",
        """
        CREATE TABLE partner_app (
            id         integer PRIMARY KEY,
            name       text NOT NULL,
            scopes     text[] NOT NULL,
            active     boolean NOT NULL DEFAULT true,
            updated_at timestamptz NOT NULL DEFAULT now()
        );
        ALTER TABLE share_request
            ADD CONSTRAINT share_request_app
            FOREIGN KEY (grantee_app_id) REFERENCES partner_app(id);
        """,
    ),
    Migration(
        4,
        "reveals of masked values, with their reasons",
        """
        CREATE TABLE field_reveal (
            id          bigserial PRIMARY KEY,
            customer_id uuid NOT NULL REFERENCES customer(id) ON DELETE CASCADE,
            field       text NOT NULL,
            actor_kind  text NOT NULL,
            actor_id    integer NOT NULL,
            reason      text NOT NULL,
            at          timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX field_reveal_customer ON field_reveal (customer_id, at);
        """,
    ),
    Migration(
        5,
        "policy versions of the tenant",
        """
        -- Every version is kept; one at most is active (none: the shipped default).
        CREATE TABLE policy_version (
            id           serial PRIMARY KEY,
            files        jsonb NOT NULL,
            status       text NOT NULL DEFAULT 'proposed'
                         CHECK (status IN ('proposed', 'active', 'retired')),
            comment      text NOT NULL,
            report       jsonb NOT NULL,
            proposed_by  integer NOT NULL,
            proposed_at  timestamptz NOT NULL DEFAULT now(),
            activated_by integer,
            activated_at timestamptz
        );
        CREATE UNIQUE INDEX policy_version_one_active ON policy_version ((true))
            WHERE status = 'active';
        """,
    ),
)
