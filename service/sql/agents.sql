-- cluster_agents, cluster_agent_tokens and the agents' project and group authorizations (GitLab
-- lib/api/clusters/agents.rb, agent_tokens.rb; the kas internal API).
-- Lists of the admin API return one row even when the page is empty: `total` is the match count
-- for the pagination headers, and the item columns are NULL on that filler row (see rows.paged).

-- name: find_active_agent_tokens
-- The agent token that is not revoked behind each SHA-256 digest of a token's text, in the order
-- asked, a row of NULLs where there is none (Clusters::AgentToken.active.find_by_token), for the
-- concurrent requests of kas (batched: service/db/batch.py).
-- $1 token digests
SELECT t.id, t.agent_id, t.last_used_at
FROM unnest($1::text[]) WITH ORDINALITY AS wanted(digest, n)
LEFT JOIN cluster_agent_tokens t ON t.token_digest = wanted.digest AND t.status = 'active'
ORDER BY wanted.n;

-- name: touch_agent_token!
-- Records that a token was used, unless another request did so within the last $2 seconds
-- (Clusters::AgentTokens::TrackUsageService writes at most every 40-55 minutes).
-- $1 token id, $2 seconds
UPDATE cluster_agent_tokens SET last_used_at = now()
WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - make_interval(secs => $2::double precision));

-- name: find_agent_contexts
-- Each agent asked for, in order (a row of NULLs for one that is gone): its configuration project
-- with what kas needs to reach its repository, and what the agent's creator may do there (kas
-- reports vulnerabilities on the creator's behalf). default_branch is GitLab's default_branch_or_main.
-- Batched (service/db/batch.py).
-- $1 agent ids
SELECT agent.*
FROM unnest($1::bigint[]) WITH ORDINALITY AS wanted(id, n)
LEFT JOIN LATERAL (
    SELECT
        a.id AS agent_id,
        a.name AS agent_name,
        p.id AS project_id,
        route.path AS project_full_path,
        p.repository_storage,
        p.legacy_disk_path,
        COALESCE(NULLIF(p.default_branch, ''), NULLIF(s.default_branch_name, ''), 'main') AS default_branch,
        a.created_by_user_id,
        COALESCE(u.admin, false) AS creator_admin,
        COALESCE(u.state = 'active', false) AS creator_active,
        COALESCE(GREATEST(
            CASE WHEN n.type = 'User' AND n.owner_id = u.id THEN 50 END,
            (SELECT max(m.access_level) FROM members m
              WHERE m.user_id = u.id AND m.state = 'active' AND m.requested_at IS NULL
                AND (m.expires_at IS NULL OR m.expires_at > current_date)
                AND ((m.source_type = 'Project' AND m.source_id = p.id)
                  OR (m.source_type = 'Namespace' AND m.source_id = ANY (n.traversal_ids))))
        ), 0) AS creator_access_level
    FROM cluster_agents a
    JOIN projects p ON p.id = a.project_id
    JOIN routes route ON route.source_type = 'Project' AND route.source_id = p.id
    JOIN namespaces n ON n.id = p.namespace_id
    LEFT JOIN users u ON u.id = a.created_by_user_id
    LEFT JOIN application_settings s ON s.id = 1
    WHERE a.id = wanted.id
) agent ON true
ORDER BY wanted.n;

-- name: find_kas_project_by_id^
-- A project kas asks about by numeric id (find_project: hidden and pending-delete projects do not exist),
-- and whether it is the asking agent's configuration project.
-- $1 project id, $2 agent id
SELECT
    p.id,
    p.id = (SELECT project_id FROM cluster_agents WHERE id = $2) AS is_agent_project,
    route.path AS full_path,
    p.visibility_level,
    p.repository_access_level,
    p.repository_storage,
    p.legacy_disk_path,
    COALESCE(NULLIF(p.default_branch, ''), NULLIF(s.default_branch_name, ''), 'main') AS default_branch
FROM projects p
JOIN routes route ON route.source_type = 'Project' AND route.source_id = p.id
LEFT JOIN application_settings s ON s.id = 1
WHERE p.id = $1 AND NOT p.pending_delete AND NOT p.hidden;

-- name: find_kas_project_by_full_path^
-- A project kas asks about by full path, ignoring case and following redirects from old paths,
-- and whether it is the asking agent's configuration project.
-- $1 full path, $2 agent id
SELECT
    p.id,
    p.id = (SELECT project_id FROM cluster_agents WHERE id = $2) AS is_agent_project,
    route.path AS full_path,
    p.visibility_level,
    p.repository_access_level,
    p.repository_storage,
    p.legacy_disk_path,
    COALESCE(NULLIF(p.default_branch, ''), NULLIF(s.default_branch_name, ''), 'main') AS default_branch
FROM projects p
JOIN routes route ON route.source_type = 'Project' AND route.source_id = p.id
LEFT JOIN application_settings s ON s.id = 1
WHERE NOT p.pending_delete AND NOT p.hidden AND p.id = COALESCE(
    (SELECT source_id FROM routes WHERE source_type = 'Project' AND lower(path) = lower($1)),
    (SELECT source_id FROM redirect_routes WHERE source_type = 'Project' AND lower(path) = lower($1)));

-- name: lock_agent_for_configuration^
-- The agent and the root namespace of its configuration project, locked until the end of the
-- transaction so that two configuration refreshes of one agent do not interleave (agent.with_lock).
-- $1 agent id
SELECT a.id, n.traversal_ids[1] AS root_namespace_id
FROM cluster_agents a
JOIN projects p ON p.id = a.project_id
JOIN namespaces n ON n.id = p.namespace_id
WHERE a.id = $1
FOR UPDATE OF a;

-- name: replace_agent_project_authorizations!
-- Makes the agent's project authorizations of one kind (ci_access or user_access) exactly the
-- listed projects that exist under the root namespace of its configuration project
-- (CiAccess/UserAccess::RefreshService#refresh_projects!).
-- $1 agent id, $2 root namespace id, $3 jsonb array of {"path": full path, "config": {...}}, $4 access kind
WITH wanted AS (
    SELECT DISTINCT ON (p.id) p.id AS project_id, e.entry -> 'config' AS config
    FROM jsonb_array_elements($3::jsonb) AS e(entry)
    JOIN routes r ON r.source_type = 'Project' AND lower(r.path) = lower(e.entry ->> 'path')
    JOIN projects p ON p.id = r.source_id
    JOIN namespaces n ON n.id = p.namespace_id
    WHERE n.traversal_ids[1] = $2
),
removed AS (
    DELETE FROM agent_project_authorizations old
    WHERE old.agent_id = $1 AND old.access = $4 AND old.project_id NOT IN (SELECT project_id FROM wanted)
)
INSERT INTO agent_project_authorizations (agent_id, access, project_id, config)
SELECT $1, $4, project_id, config FROM wanted
ON CONFLICT (agent_id, access, project_id) DO UPDATE SET config = EXCLUDED.config;

-- name: replace_agent_group_authorizations!
-- The same for groups: the root namespace (when it is a group) and its descendants only.
-- $1 agent id, $2 root namespace id, $3 jsonb array of {"path": full path, "config": {...}}, $4 access kind
WITH wanted AS (
    SELECT DISTINCT ON (g.id) g.id AS group_id, e.entry -> 'config' AS config
    FROM jsonb_array_elements($3::jsonb) AS e(entry)
    JOIN routes r ON r.source_type = 'Namespace' AND lower(r.path) = lower(e.entry ->> 'path')
    JOIN namespaces g ON g.id = r.source_id AND g.type = 'Group'
    WHERE g.traversal_ids[1] = $2
),
removed AS (
    DELETE FROM agent_group_authorizations old
    WHERE old.agent_id = $1 AND old.access = $4 AND old.group_id NOT IN (SELECT group_id FROM wanted)
)
INSERT INTO agent_group_authorizations (agent_id, access, group_id, config)
SELECT $1, $4, group_id, config FROM wanted
ON CONFLICT (agent_id, access, group_id) DO UPDATE SET config = EXCLUDED.config;

-- name: existing_users_and_projects^
-- Which of these user ids and project ids exist (agent_events tracks only events whose user and
-- project both exist).
-- $1 user ids, $2 project ids
SELECT
    ARRAY(SELECT id FROM users WHERE id = ANY ($1::bigint[])) AS user_ids,
    ARRAY(SELECT id FROM projects WHERE id = ANY ($2::bigint[])) AS project_ids;

-- name: list_agents
-- A project's cluster agents, oldest first, one page of them.
-- $1 project id, $2 limit, $3 offset
WITH matched AS (
    SELECT id, name, project_id, created_by_user_id, created_at FROM cluster_agents WHERE project_id = $1
)
SELECT total.total, page.*
FROM (SELECT count(*) AS total FROM matched) total
LEFT JOIN LATERAL (SELECT * FROM matched ORDER BY id LIMIT $2 OFFSET $3) page ON true;

-- name: find_agent^
-- One agent of a project.
-- $1 project id, $2 agent id
SELECT id, name, project_id, created_by_user_id, created_at FROM cluster_agents WHERE project_id = $1 AND id = $2;

-- name: insert_agent<!
-- A cluster agent; nothing when the project already has one with this name.
-- $1 project id, $2 name, $3 created by
INSERT INTO cluster_agents (project_id, name, created_by_user_id) VALUES ($1, $2, $3)
ON CONFLICT (project_id, name) DO NOTHING
RETURNING id, name, project_id, created_by_user_id, created_at;

-- name: delete_agent<!
-- An agent and (through the foreign key) its tokens.
-- $1 project id, $2 agent id
DELETE FROM cluster_agents WHERE project_id = $1 AND id = $2 RETURNING id;

-- name: list_agent_tokens
-- An agent's active tokens (GitLab lists only those), oldest first, one page of them.
-- $1 agent id, $2 limit, $3 offset
WITH matched AS (
    SELECT id, agent_id, name, description, status, created_by_user_id, created_at, last_used_at
    FROM cluster_agent_tokens WHERE agent_id = $1 AND status = 'active'
)
SELECT total.total, page.*
FROM (SELECT count(*) AS total FROM matched) total
LEFT JOIN LATERAL (SELECT * FROM matched ORDER BY id LIMIT $2 OFFSET $3) page ON true;

-- name: find_agent_token^
-- One token of an agent, active or revoked.
-- $1 agent id, $2 token id
SELECT id, agent_id, name, description, status, created_by_user_id, created_at, last_used_at
FROM cluster_agent_tokens WHERE agent_id = $1 AND id = $2;

-- name: count_active_agent_tokens$
-- How many active tokens an agent has (GitLab allows two at a time).
-- $1 agent id
SELECT count(*) FROM cluster_agent_tokens WHERE agent_id = $1 AND status = 'active';

-- name: insert_agent_token<!
-- An agent token; only its digest is stored.
-- $1 agent id, $2 digest, $3 name, $4 description, $5 created by
INSERT INTO cluster_agent_tokens (agent_id, token_digest, name, description, created_by_user_id)
VALUES ($1, $2, $3, $4, $5)
RETURNING id, agent_id, name, description, status, created_by_user_id, created_at, last_used_at;

-- name: revoke_agent_token<!
-- Revokes an agent token (the row stays, as in GitLab).
-- $1 agent id, $2 token id
UPDATE cluster_agent_tokens SET status = 'revoked' WHERE agent_id = $1 AND id = $2 RETURNING id;

-- name: lock_agent_token_creation!
-- Serialises token creation for one agent until the end of the transaction, so that concurrent
-- requests cannot all pass the two-active-tokens count.
-- $1 the advisory lock space of agent token creation, $2 agent id
SELECT pg_advisory_xact_lock($1, $2);
