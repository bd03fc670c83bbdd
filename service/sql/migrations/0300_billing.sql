-- CustomersDot's tables: hosted plans, subscriptions and their history, purchased compute-minute
-- packs and upcoming seat reconciliations (GitLab EE, GitLab.com). Column names follow GitLab's
-- db/structure.sql.

-- GitLab.com's hosted plans. `name` is the code CustomersDot sends as plan_code; `title` is shown
-- as the entity's plan name.
CREATE TABLE plans (
    id bigserial PRIMARY KEY,
    name text NOT NULL,
    title text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX index_plans_on_name ON plans (name);
INSERT INTO plans (name, title) VALUES
    ('default', 'Default'),
    ('free', 'Free'),
    ('bronze', 'Bronze'),
    ('silver', 'Silver'),
    ('premium', 'Premium'),
    ('gold', 'Gold'),
    ('ultimate', 'Ultimate'),
    ('ultimate_trial', 'Ultimate Trial'),
    ('ultimate_trial_paid_customer', 'Ultimate Trial for Premium Customers'),
    ('premium_trial', 'Premium Trial'),
    ('opensource', 'Open Source Program'),
    ('early_adopter', 'Early Adopter');

CREATE TABLE gitlab_subscriptions (
    id bigserial PRIMARY KEY,
    -- one subscription per namespace: a concurrent second POST loses on this index, not in Python
    namespace_id bigint NOT NULL REFERENCES namespaces (id) ON DELETE CASCADE,
    -- NULL when CustomersDot sent a plan_code we do not know (GitLab's Plan.find_by gives nil)
    hosted_plan_id bigint REFERENCES plans (id),
    start_date date NOT NULL,
    end_date date,
    trial_starts_on date,
    trial_ends_on date,
    trial boolean DEFAULT false,
    auto_renew boolean,
    seats integer NOT NULL DEFAULT 0,
    max_seats_used integer NOT NULL DEFAULT 0,
    max_seats_used_changed_at timestamptz,
    -- GitLab's enum: 1 extended, 2 reactivated
    trial_extension_type smallint CHECK (trial_extension_type IN (1, 2)),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX index_gitlab_subscriptions_on_namespace_id ON gitlab_subscriptions (namespace_id);

-- The state of a subscription *before* each change of a tracked attribute
-- (GitlabSubscriptionHistory::TRACKED_ATTRIBUTES). No foreign keys: history outlives its rows.
CREATE TABLE gitlab_subscription_histories (
    id bigserial PRIMARY KEY,
    gitlab_subscription_id bigint NOT NULL,
    gitlab_subscription_created_at timestamptz,
    gitlab_subscription_updated_at timestamptz,
    -- GitLab's enum: 0 gitlab_subscription_created, 1 gitlab_subscription_updated, 2 gitlab_subscription_destroyed
    change_type smallint NOT NULL CHECK (change_type IN (0, 1, 2)),
    namespace_id bigint NOT NULL,
    hosted_plan_id bigint,
    start_date date,
    end_date date,
    trial_starts_on date,
    trial_ends_on date,
    trial boolean,
    auto_renew boolean,
    seats integer,
    max_seats_used integer,
    trial_extension_type smallint,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX index_gitlab_subscription_histories_on_subscription_id
    ON gitlab_subscription_histories (gitlab_subscription_id);

-- Compute-minute packs bought through CustomersDot. purchase_xid is unique across namespaces
-- (GitLab validates uniqueness on .com); the unique index is what makes concurrent retries of one
-- purchase insert exactly one row.
CREATE TABLE ci_minutes_additional_packs (
    id bigserial PRIMARY KEY,
    namespace_id bigint NOT NULL REFERENCES namespaces (id) ON DELETE CASCADE,
    expires_at date NOT NULL,
    number_of_minutes integer NOT NULL,
    purchase_xid text NOT NULL CHECK (char_length(purchase_xid) BETWEEN 1 AND 32),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX index_ci_minutes_additional_packs_on_purchase_xid ON ci_minutes_additional_packs (purchase_xid);
CREATE INDEX index_ci_minutes_additional_packs_on_namespace_id ON ci_minutes_additional_packs (namespace_id);

-- When the next quarterly seat reconciliation happens, and from when owners see the banner.
CREATE TABLE upcoming_reconciliations (
    id bigserial PRIMARY KEY,
    namespace_id bigint NOT NULL REFERENCES namespaces (id) ON DELETE CASCADE,
    next_reconciliation_date date NOT NULL,
    display_alert_from date NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX index_upcoming_reconciliations_on_namespace_id ON upcoming_reconciliations (namespace_id);
