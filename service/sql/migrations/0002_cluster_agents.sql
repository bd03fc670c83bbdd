-- GitLab agents for Kubernetes and their tokens: read by kas's internal API, managed by the admin API.

CREATE TABLE cluster_agents (
    id bigserial PRIMARY KEY,
    name text NOT NULL,
    -- the agent's configuration project
    project_id bigint NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    created_by_user_id bigint REFERENCES users (id) ON DELETE SET NULL,
    has_vulnerabilities boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (project_id, name)
);

CREATE TABLE cluster_agent_tokens (
    id bigserial PRIMARY KEY,
    agent_id bigint NOT NULL REFERENCES cluster_agents (id) ON DELETE CASCADE,
    -- SHA-256 hex digest (service.domain.tokens.token_digest); the token is shown once at creation
    token_digest text NOT NULL UNIQUE,
    name text NOT NULL DEFAULT '',
    description text NOT NULL DEFAULT '',
    status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'revoked')),
    created_by_user_id bigint REFERENCES users (id) ON DELETE SET NULL,
    last_used_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX index_cluster_agent_tokens_on_agent_id ON cluster_agent_tokens (agent_id);
