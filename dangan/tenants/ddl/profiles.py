"""Tenant version 6: full customer profiles — classification, related records, changes,
ratings, merges, import and export jobs."""

from __future__ import annotations

from dangan.tenants.ddl import Migration

MIGRATIONS: tuple[Migration, ...] = (
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
)
