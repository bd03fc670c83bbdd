-- What kas's internal API writes and reads besides agents and their tokens (0002):
-- the agents' CI and user access authorizations (agent_configuration), network alerts
-- (modules/cilium_alert), cluster image scanning vulnerabilities (modules/starboard_vulnerability)
-- and the scan execution policies an operator sets for an agent's configuration project.
-- Names follow GitLab's db/structure.sql where a table means the same thing.

-- The projects and groups an agent's configuration file shares it with, under `ci_access` (config:
-- that entry of the file: default_namespace, access_as, environments...) or `user_access` (config:
-- {"access_as": ...}, as GitLab stores it). GitLab keeps four tables; the only difference between
-- them is `access`. Rewritten as a whole by each POST /internal/kubernetes/agent_configuration.
CREATE TABLE agent_project_authorizations (
    id bigserial PRIMARY KEY,
    agent_id bigint NOT NULL REFERENCES cluster_agents (id) ON DELETE CASCADE,
    access text NOT NULL CHECK (access IN ('ci_access', 'user_access')),
    project_id bigint NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    config jsonb NOT NULL DEFAULT '{}',
    UNIQUE (agent_id, access, project_id)
);
CREATE INDEX index_agent_project_authorizations_on_project_id ON agent_project_authorizations (project_id);

CREATE TABLE agent_group_authorizations (
    id bigserial PRIMARY KEY,
    agent_id bigint NOT NULL REFERENCES cluster_agents (id) ON DELETE CASCADE,
    access text NOT NULL CHECK (access IN ('ci_access', 'user_access')),
    group_id bigint NOT NULL REFERENCES namespaces (id) ON DELETE CASCADE,
    config jsonb NOT NULL DEFAULT '{}',
    UNIQUE (agent_id, access, group_id)
);
CREATE INDEX index_agent_group_authorizations_on_group_id ON agent_group_authorizations (group_id);

-- Alerts of an agent's project (AlertManagement::Alert). An alert that is not resolved absorbs
-- every later alert with the same fingerprint: `events` counts them.
CREATE TABLE alert_management_alerts (
    id bigserial PRIMARY KEY,
    project_id bigint NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    -- per-project number (#1, #2...), allocated under a per-project transaction lock
    iid integer NOT NULL,
    title text NOT NULL,
    description text,
    severity text NOT NULL DEFAULT 'critical'
        CHECK (severity IN ('critical', 'high', 'medium', 'low', 'info', 'unknown')),
    status text NOT NULL DEFAULT 'triggered' CHECK (status IN ('triggered', 'acknowledged', 'resolved', 'ignored')),
    -- SHA-1 hex (Gitlab::AlertManagement::Fingerprint)
    fingerprint text NOT NULL,
    monitoring_tool text NOT NULL,
    events integer NOT NULL DEFAULT 1 CHECK (events > 0),
    -- the latest payload received for this alert
    payload jsonb NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now(),
    ended_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (project_id, iid)
);
-- GitLab's index_partial_am_alerts_on_project_id_and_fingerprint: one open alert per fingerprint.
CREATE UNIQUE INDEX index_open_alerts_on_project_id_and_fingerprint
    ON alert_management_alerts (project_id, fingerprint) WHERE status <> 'resolved';

-- Findings reported by an agent's Starboard/Trivy scans (GitLab: vulnerability_occurrences).
-- `uuid` is derived from the finding (see service/domain/kas_modules.py), so a finding reported
-- twice is one row.
CREATE TABLE vulnerability_findings (
    id bigserial PRIMARY KEY,
    uuid uuid NOT NULL UNIQUE,
    project_id bigint NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    agent_id bigint NOT NULL REFERENCES cluster_agents (id) ON DELETE CASCADE,
    report_type text NOT NULL DEFAULT 'cluster_image_scanning',
    name text NOT NULL,
    severity text NOT NULL CHECK (severity IN ('critical', 'high', 'medium', 'low', 'info', 'unknown')),
    confidence text,
    -- SHA-1 hex of "<agent_id>:<namespace>:<kind>:<name>:<container>:<package name>"
    location_fingerprint text NOT NULL,
    -- SHA-1 hex of "<type>:<value>" of the first identifier
    primary_identifier_fingerprint text NOT NULL,
    location jsonb NOT NULL,
    identifiers jsonb NOT NULL,
    scanner jsonb NOT NULL,
    -- the vulnerability as kas sent it
    raw_metadata jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX index_vulnerability_findings_on_agent_id ON vulnerability_findings (agent_id);

-- The triage state of a finding (GitLab: vulnerabilities). scan_result resolves the ones a
-- complete scan no longer reports.
CREATE TABLE vulnerabilities (
    id bigserial PRIMARY KEY,
    finding_id bigint NOT NULL UNIQUE REFERENCES vulnerability_findings (id) ON DELETE CASCADE,
    project_id bigint NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    -- the agent's creator, on whose behalf kas reports
    author_id bigint REFERENCES users (id) ON DELETE SET NULL,
    title text NOT NULL,
    severity text NOT NULL,
    report_type text NOT NULL DEFAULT 'cluster_image_scanning',
    state text NOT NULL DEFAULT 'detected' CHECK (state IN ('detected', 'confirmed', 'resolved', 'dismissed')),
    resolved_on_default_branch boolean NOT NULL DEFAULT false,
    resolved_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX index_vulnerabilities_on_project_id_and_state ON vulnerabilities (project_id, state);

-- Scan execution policies, filled by an operator (GitLab reads them from the policy.yml of the
-- project's security policy project; this service has no repository access, so they live here).
-- project_id is the agent's configuration project. A policy reaches an agent through a rule
--   {"type": "agent", "agents": {"<agent name>": {"namespaces": ["ns"]}}, "cadence": "30 2 * * *"}
-- and an action {"scan": "container_scanning"}. Example:
--   INSERT INTO security_scan_execution_policies (project_id, name, description, actions, rules)
--   VALUES (7, 'Nightly', 'Scan the cluster',
--           '[{"scan": "container_scanning"}]',
--           '[{"type": "agent", "agents": {"my-agent": {"namespaces": ["default"]}}, "cadence": "30 2 * * *"}]');
CREATE TABLE security_scan_execution_policies (
    id bigserial PRIMARY KEY,
    project_id bigint NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name text NOT NULL,
    description text NOT NULL DEFAULT '',
    enabled boolean NOT NULL DEFAULT true,
    actions jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(actions) = 'array'),
    rules jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(rules) = 'array'),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (project_id, name)
);
