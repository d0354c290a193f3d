"""The versioned DDL of the platform schema (``public``) and of every tenant schema.

Each list only grows: a released migration is never edited, a change is a new version.
Tenant migrations run with ``search_path`` set to the tenant schema and the role switched
to the tenant role, so every object they create is owned by that role and unqualified
names land in the tenant schema. Tenant tables never reference ``public`` (a schema can
move whole to another cluster); people are mirrored into ``member`` for that reason.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


PLATFORM_MIGRATIONS: tuple[Migration, ...] = (
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
)


TENANT_MIGRATIONS: tuple[Migration, ...] = (
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
    Migration(
        6,
        "full profiles: classification, related records, changes, ratings, merges, jobs",
        """
        -- Kinds and tiers are fixed by the regulations (code depends on them); the other
        -- dimensions are dictionaries the tenant edits (classification_value).
        ALTER TABLE customer DROP CONSTRAINT customer_kind_check;
        ALTER TABLE customer ADD CONSTRAINT customer_kind_check
            CHECK (kind IN ('INDIVIDUAL', 'ENTERPRISE', 'POTENTIAL', 'PARTNER'));
        ALTER TABLE customer
            ADD COLUMN category             text,
            ADD COLUMN industry             text,
            ADD COLUMN building             text,
            ADD COLUMN city                 text,
            ADD COLUMN legal_representative text,
            ADD COLUMN scale                text
                       CHECK (scale IN ('MICRO', 'SMALL', 'MEDIUM', 'LARGE')),
            ADD COLUMN registered_capital   numeric(18, 2),
            ADD COLUMN potential            smallint CHECK (potential BETWEEN 1 AND 5),
            ADD COLUMN competition_risk     text
                       CHECK (competition_risk IN ('LOW', 'MEDIUM', 'HIGH')),
            ADD COLUMN rating_grade         text CHECK (rating_grade IN ('A', 'B', 'C', 'D')),
            ADD COLUMN rating_score         numeric(5, 2),
            ADD COLUMN rated_at             timestamptz,
            ADD COLUMN status               text NOT NULL DEFAULT 'ACTIVE'
                       CHECK (status IN ('ACTIVE', 'INVALID', 'EXPIRED', 'MERGED')),
            ADD COLUMN status_changed_at    timestamptz,
            ADD COLUMN merged_into          uuid REFERENCES customer(id) ON DELETE SET NULL;
        CREATE INDEX customer_status ON customer (status);
        CREATE INDEX customer_merged_into ON customer (merged_into) WHERE merged_into IS NOT NULL;
        CREATE INDEX customer_id_number ON customer (id_number) WHERE id_number IS NOT NULL;
        CREATE INDEX customer_uscc ON customer (uscc) WHERE uscc IS NOT NULL;
        -- The part of a name that tells customers apart: no spaces, lower case, no legal
        -- form (杭州西湖科技有限公司 ~ 杭州西湖科技). Duplicate checks compare it by trigrams.
        CREATE FUNCTION dedup_name(name text) RETURNS text
            LANGUAGE sql IMMUTABLE PARALLEL SAFE
            RETURN regexp_replace(lower(regexp_replace(name, '\\s+', '', 'g')),
                                  '(股份有限公司|有限责任公司|有限公司|集团公司|集团|公司)$', '');
        CREATE INDEX customer_name_trgm ON customer
            USING gin (dedup_name(name) dangan_ext.gin_trgm_ops);

        CREATE TABLE classification_value (
            dimension  text NOT NULL
                       CHECK (dimension IN ('kind', 'tier', 'category', 'industry', 'building')),
            code       text NOT NULL CHECK (code ~ '^[A-Z][A-Z0-9_]{0,39}$'),
            label      text NOT NULL CHECK (length(label) BETWEEN 1 AND 100),
            builtin    boolean NOT NULL DEFAULT false,
            position   integer NOT NULL DEFAULT 0,
            retired_at timestamptz,
            created_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (dimension, code)
        );
        INSERT INTO classification_value (dimension, code, label, builtin, position) VALUES
            ('kind', 'INDIVIDUAL', '个人客户', true, 1),
            ('kind', 'ENTERPRISE', '企业客户', true, 2),
            ('kind', 'POTENTIAL', '潜在客户', true, 3),
            ('kind', 'PARTNER', '合作伙伴', true, 4),
            ('tier', 'KEY', '重点客户', true, 1),
            ('tier', 'ORDINARY', '普通客户', true, 2),
            ('tier', 'POTENTIAL', '潜在客户', true, 3);

        -- Records about a customer. Each belongs to a sensitivity class (see
        -- dangan.models.records); they go with their customer when it is purged.
        CREATE TABLE contact_person (
            id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            customer_id uuid NOT NULL REFERENCES customer(id) ON DELETE CASCADE,
            name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
            title       text,
            phone       text,
            email       text,
            wechat      text,
            is_primary  boolean NOT NULL DEFAULT false,
            created_at  timestamptz NOT NULL DEFAULT now(),
            created_by  integer
        );
        CREATE INDEX contact_person_customer ON contact_person (customer_id);
        CREATE TABLE communication (
            id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            customer_id       uuid NOT NULL REFERENCES customer(id) ON DELETE CASCADE,
            channel           text NOT NULL
                              CHECK (channel IN ('VISIT', 'CALL', 'MEETING', 'EMAIL', 'WECHAT')),
            occurred_at       timestamptz NOT NULL,
            staff_id          integer REFERENCES member(identity_id),
            contact_person_id uuid REFERENCES contact_person(id) ON DELETE SET NULL,
            summary           text NOT NULL CHECK (length(summary) BETWEEN 1 AND 4000),
            next_step         text,
            next_step_due     date,
            created_at        timestamptz NOT NULL DEFAULT now(),
            created_by        integer
        );
        CREATE INDEX communication_customer ON communication (customer_id, occurred_at);
        CREATE INDEX communication_contact ON communication (contact_person_id)
            WHERE contact_person_id IS NOT NULL;
        CREATE TABLE opportunity (
            id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            customer_id     uuid NOT NULL REFERENCES customer(id) ON DELETE CASCADE,
            title           text NOT NULL,
            stage           text NOT NULL DEFAULT 'LEAD'
                            CHECK (stage IN ('LEAD', 'QUALIFIED', 'PROPOSAL', 'WON', 'LOST')),
            expected_amount numeric(18, 2) CHECK (expected_amount >= 0),
            expected_close  date,
            created_at      timestamptz NOT NULL DEFAULT now(),
            created_by      integer
        );
        CREATE INDEX opportunity_customer ON opportunity (customer_id);
        -- One line per product; lines of one order share its number.
        CREATE TABLE purchase (
            id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            customer_id  uuid NOT NULL REFERENCES customer(id) ON DELETE CASCADE,
            order_no     text NOT NULL,
            product      text NOT NULL,
            quantity     numeric(14, 3) NOT NULL CHECK (quantity > 0),
            amount       numeric(18, 2) NOT NULL CHECK (amount >= 0),
            cost         numeric(18, 2) CHECK (cost >= 0),
            purchased_on date NOT NULL,
            created_at   timestamptz NOT NULL DEFAULT now(),
            created_by   integer
        );
        CREATE INDEX purchase_customer ON purchase (customer_id, purchased_on);
        CREATE TABLE contract (
            id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            customer_id uuid NOT NULL REFERENCES customer(id) ON DELETE CASCADE,
            number      text NOT NULL UNIQUE,
            kind        text NOT NULL DEFAULT 'CONTRACT'
                        CHECK (kind IN ('CONTRACT', 'COOPERATION')),
            title       text NOT NULL,
            parties     text[] NOT NULL DEFAULT '{}',
            signed_on   date,
            starts_on   date,
            ends_on     date,
            amount      numeric(18, 2) CHECK (amount >= 0),
            status      text NOT NULL DEFAULT 'DRAFT'
                        CHECK (status IN ('DRAFT', 'ACTIVE', 'EXPIRED', 'TERMINATED')),
            created_at  timestamptz NOT NULL DEFAULT now(),
            created_by  integer,
            CHECK (ends_on IS NULL OR starts_on IS NULL OR ends_on >= starts_on)
        );
        CREATE INDEX contract_customer ON contract (customer_id);
        -- Payment history: what was due when, and what was paid (overdue = the rest,
        -- once the due date has passed).
        CREATE TABLE payment_record (
            id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            customer_id uuid NOT NULL REFERENCES customer(id) ON DELETE CASCADE,
            contract_id uuid REFERENCES contract(id) ON DELETE SET NULL,
            due_on      date NOT NULL,
            amount      numeric(18, 2) NOT NULL CHECK (amount >= 0),
            paid_amount numeric(18, 2) NOT NULL DEFAULT 0 CHECK (paid_amount >= 0),
            paid_on     date,
            created_at  timestamptz NOT NULL DEFAULT now(),
            created_by  integer
        );
        CREATE INDEX payment_record_customer ON payment_record (customer_id, due_on);
        CREATE INDEX payment_record_contract ON payment_record (contract_id)
            WHERE contract_id IS NOT NULL;
        CREATE TABLE customer_need (
            id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            customer_id uuid NOT NULL REFERENCES customer(id) ON DELETE CASCADE,
            kind        text NOT NULL CHECK (kind IN ('INTENTION', 'PREFERENCE', 'BEHAVIOUR')),
            description text NOT NULL CHECK (length(description) BETWEEN 1 AND 2000),
            recorded_at timestamptz NOT NULL DEFAULT now(),
            created_by  integer
        );
        CREATE INDEX customer_need_customer ON customer_need (customer_id);
        CREATE TABLE complaint (
            id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            customer_id uuid NOT NULL REFERENCES customer(id) ON DELETE CASCADE,
            received_at timestamptz NOT NULL,
            channel     text,
            summary     text NOT NULL CHECK (length(summary) BETWEEN 1 AND 4000),
            severity    text NOT NULL DEFAULT 'MEDIUM'
                        CHECK (severity IN ('LOW', 'MEDIUM', 'HIGH')),
            status      text NOT NULL DEFAULT 'OPEN'
                        CHECK (status IN ('OPEN', 'RESOLVED', 'CLOSED')),
            resolution  text,
            created_at  timestamptz NOT NULL DEFAULT now(),
            created_by  integer
        );
        CREATE INDEX complaint_customer ON complaint (customer_id);
        CREATE TABLE satisfaction_survey (
            id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            customer_id uuid NOT NULL REFERENCES customer(id) ON DELETE CASCADE,
            surveyed_on date NOT NULL,
            score       smallint NOT NULL CHECK (score BETWEEN 1 AND 5),
            comment     text,
            created_at  timestamptz NOT NULL DEFAULT now(),
            created_by  integer
        );
        CREATE INDEX satisfaction_survey_customer ON satisfaction_survey (customer_id);
        -- Files in S3 (key attachments/<tenant>/<id>); rows stay after deletion as the
        -- record of it.
        CREATE TABLE attachment (
            id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            customer_id   uuid NOT NULL REFERENCES customer(id) ON DELETE CASCADE,
            contract_id   uuid REFERENCES contract(id) ON DELETE SET NULL,
            category      text NOT NULL
                          CHECK (category IN ('CONTRACT_SCAN', 'ID_COPY', 'LICENSE', 'OTHER')),
            filename      text NOT NULL CHECK (length(filename) BETWEEN 1 AND 255),
            content_type  text NOT NULL,
            size_bytes    bigint NOT NULL CHECK (size_bytes > 0),
            sha256        text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
            object_key    text NOT NULL UNIQUE,
            status        text NOT NULL DEFAULT 'PENDING'
                          CHECK (status IN ('PENDING', 'STORED', 'DELETED')),
            uploaded_by   integer,
            created_at    timestamptz NOT NULL DEFAULT now(),
            stored_at     timestamptz,
            deleted_at    timestamptz,
            deleted_by    integer,
            delete_reason text
        );
        CREATE INDEX attachment_customer ON attachment (customer_id);
        CREATE INDEX attachment_contract ON attachment (contract_id) WHERE contract_id IS NOT NULL;

        -- 修改须审批并记录: every change, field by field; a pending one waits for someone
        -- other than its maker. Values are text; they are masked per viewer when read.
        CREATE TABLE customer_change (
            id               bigserial PRIMARY KEY,
            customer_id      uuid NOT NULL REFERENCES customer(id) ON DELETE CASCADE,
            action           text NOT NULL,
            record_type      text NOT NULL DEFAULT 'customer',
            record_id        uuid,
            status           text NOT NULL DEFAULT 'APPLIED'
                             CHECK (status IN ('APPLIED', 'PENDING', 'APPROVED', 'REJECTED',
                                               'WITHDRAWN')),
            reason           text,
            actor_kind       text NOT NULL,
            actor_id         integer,
            at               timestamptz NOT NULL DEFAULT now(),
            base_version     integer,
            decided_by       integer,
            decided_at       timestamptz,
            decision_comment text
        );
        CREATE INDEX customer_change_customer ON customer_change (customer_id, at);
        CREATE INDEX customer_change_pending ON customer_change (status) WHERE status = 'PENDING';
        CREATE TABLE customer_change_field (
            change_id bigint NOT NULL REFERENCES customer_change(id) ON DELETE CASCADE,
            field     text NOT NULL,
            old_value text,
            new_value text,
            PRIMARY KEY (change_id, field)
        );

        -- 客户评级: weighted criteria (weights sum to 100) and grade thresholds.
        CREATE TABLE rating_criterion (
            code       text PRIMARY KEY
                       CHECK (code IN ('profit', 'loyalty', 'potential', 'competition')),
            weight     numeric(5, 2) NOT NULL CHECK (weight BETWEEN 0 AND 100),
            updated_at timestamptz NOT NULL DEFAULT now(),
            updated_by integer
        );
        INSERT INTO rating_criterion (code, weight) VALUES
            ('profit', 40), ('loyalty', 25), ('potential', 20), ('competition', 15);
        CREATE TABLE rating_grade_floor (
            grade text PRIMARY KEY CHECK (grade IN ('A', 'B', 'C')),
            floor numeric(5, 2) NOT NULL CHECK (floor BETWEEN 0 AND 100)
        );
        INSERT INTO rating_grade_floor (grade, floor) VALUES ('A', 80), ('B', 60), ('C', 40);
        CREATE TABLE customer_rating (
            id          bigserial PRIMARY KEY,
            customer_id uuid NOT NULL REFERENCES customer(id) ON DELETE CASCADE,
            score       numeric(5, 2) NOT NULL,
            grade       text NOT NULL CHECK (grade IN ('A', 'B', 'C', 'D')),
            criteria    jsonb NOT NULL,
            trigger     text NOT NULL,
            computed_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX customer_rating_customer ON customer_rating (customer_id, computed_at);

        -- Merges of duplicates: what moved where, undoable until undo_until.
        CREATE TABLE customer_merge (
            id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            survivor_id uuid NOT NULL REFERENCES customer(id) ON DELETE CASCADE,
            merged_ids  uuid[] NOT NULL,
            moved       jsonb NOT NULL,
            merged_by   integer NOT NULL,
            merged_at   timestamptz NOT NULL DEFAULT now(),
            undo_until  timestamptz NOT NULL,
            undone_by   integer,
            undone_at   timestamptz
        );
        CREATE INDEX customer_merge_survivor ON customer_merge (survivor_id);

        -- Imports and exports (arq jobs): parameters, progress, outcome, approval.
        CREATE TABLE archive_job (
            id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            kind         text NOT NULL CHECK (kind IN ('IMPORT', 'EXPORT')),
            status       text NOT NULL DEFAULT 'QUEUED'
                         CHECK (status IN ('AWAITING_APPROVAL', 'REJECTED', 'QUEUED', 'RUNNING',
                                           'SUCCEEDED', 'FAILED')),
            actor_kind   text NOT NULL,
            actor_id     integer NOT NULL,
            parameters   jsonb NOT NULL,
            total        integer,
            done         integer NOT NULL DEFAULT 0,
            result       jsonb,
            object_key   text,
            error        text,
            created_at   timestamptz NOT NULL DEFAULT now(),
            started_at   timestamptz,
            finished_at  timestamptz,
            decided_by   integer,
            decided_at   timestamptz
        );

        -- Imports and exports: per-tenant settings (export_approval_threshold: rows an
        -- export may hold before it needs approval; unset = the deployment's default).
        CREATE TABLE archive_setting (
            key   text PRIMARY KEY CHECK (key IN ('export_approval_threshold')),
            value text NOT NULL
        );
        """,
    ),
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
)

LATEST_TENANT_VERSION = TENANT_MIGRATIONS[-1].version
