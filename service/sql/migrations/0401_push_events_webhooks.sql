-- What a push leaves behind outside the repository (GitLab's PostReceive worker): push events,
-- the project's activity timestamps, project and system webhooks with their delivery log.

ALTER TABLE projects ADD COLUMN last_repository_updated_at timestamptz;

-- SSRF protection (GitLab's ApplicationSetting of the same name): webhooks may not reach loopback,
-- link-local or private addresses unless an administrator allows it.
ALTER TABLE application_settings
    ADD COLUMN allow_local_requests_from_web_hooks_and_services boolean NOT NULL DEFAULT false;

-- GitLab's events + push_event_payloads, folded into one row: only push events are recorded here.
CREATE TABLE events (
    id bigserial PRIMARY KEY,
    project_id bigint REFERENCES projects (id) ON DELETE CASCADE,
    author_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- Event.actions: only 'pushed' is written by this service
    action text NOT NULL DEFAULT 'pushed',
    -- push_event_payloads.action: created (pushed new), removed (deleted), pushed (pushed to)
    push_action text NOT NULL CHECK (push_action IN ('created', 'removed', 'pushed')),
    ref_type text NOT NULL CHECK (ref_type IN ('branch', 'tag')),
    ref text,
    commit_from text,
    commit_to text,
    commit_count integer NOT NULL DEFAULT 0,
    commit_title text,
    -- bulk pushes (more than 3 refs of one type in GitLab's BulkPushEventPayloadService); NULL otherwise
    ref_count integer,
    -- "<job id>:<change index>": a PostReceive job that runs twice (at-least-once) records one event
    idempotency_key text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX index_events_on_idempotency_key ON events (idempotency_key);
CREATE INDEX index_events_on_project_id_and_id ON events (project_id, id);
CREATE INDEX index_events_on_author_id_and_id ON events (author_id, id);

-- GitLab's web_hooks (ProjectHook and SystemHook); only the push triggers are acted on.
CREATE TABLE web_hooks (
    id bigserial PRIMARY KEY,
    type text NOT NULL CHECK (type IN ('ProjectHook', 'SystemHook')),
    project_id bigint REFERENCES projects (id) ON DELETE CASCADE,
    url text NOT NULL,
    name text,
    description text,
    -- sent as X-Gitlab-Token, never shown by the API (GitLab stores it encrypted)
    token text,
    push_events boolean NOT NULL DEFAULT true,
    tag_push_events boolean NOT NULL DEFAULT false,
    -- flags GitLab's API accepts and shows; this service has nothing that fires them
    merge_requests_events boolean NOT NULL DEFAULT false,
    repository_update_events boolean NOT NULL DEFAULT false,
    push_events_branch_filter text,
    -- wildcard | regex | all_branches (GitLab's branch_filter_strategy)
    branch_filter_strategy text NOT NULL DEFAULT 'wildcard'
        CHECK (branch_filter_strategy IN ('wildcard', 'regex', 'all_branches')),
    enable_ssl_verification boolean NOT NULL DEFAULT true,
    -- WebHooks::AutoDisabling
    recent_failures smallint NOT NULL DEFAULT 0,
    disabled_until timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK ((type = 'ProjectHook') = (project_id IS NOT NULL))
);
CREATE INDEX index_web_hooks_on_project_id ON web_hooks (project_id);

-- One delivery of one event to one hook; written with the push's event (same transaction), sent by
-- its own job. delivery_key makes a PostReceive job that runs twice create one delivery per hook.
CREATE TABLE web_hook_deliveries (
    id bigserial PRIMARY KEY,
    web_hook_id bigint NOT NULL REFERENCES web_hooks (id) ON DELETE CASCADE,
    delivery_key text NOT NULL,
    -- the X-Gitlab-Event header: 'Push Hook', 'Tag Push Hook', 'System Hook'
    event_header text NOT NULL,
    -- push_hooks | tag_push_hooks (GitLab's web_hook_logs.trigger)
    trigger text NOT NULL,
    payload jsonb NOT NULL,
    -- X-Gitlab-Event-UUID: one per event, the same for every hook it goes to
    event_uuid uuid NOT NULL,
    state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed', 'skipped')),
    attempts integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX index_web_hook_deliveries_on_delivery_key ON web_hook_deliveries (delivery_key);

-- GitLab's web_hook_logs: one row per attempt, shown by GET /projects/:id/hooks/:hook_id/events.
CREATE TABLE web_hook_logs (
    id bigserial PRIMARY KEY,
    web_hook_id bigint NOT NULL REFERENCES web_hooks (id) ON DELETE CASCADE,
    trigger text NOT NULL,
    url text NOT NULL,
    request_headers jsonb NOT NULL,
    request_data jsonb NOT NULL,
    response_headers jsonb NOT NULL DEFAULT '{}',
    response_body text NOT NULL DEFAULT '',
    -- the HTTP status as text, or 'internal error' (GitLab's convention)
    response_status text NOT NULL,
    execution_duration double precision NOT NULL,
    internal_error_message text,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX index_web_hook_logs_on_web_hook_id_and_id ON web_hook_logs (web_hook_id, id);
