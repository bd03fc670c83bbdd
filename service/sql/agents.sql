-- name: find_active_agent_token
-- An agent token that is not revoked, by the SHA-256 digest of its text (Clusters::AgentToken.active.find_by_token).
-- $1 token digest
SELECT t.id, t.agent_id, t.last_used_at
FROM cluster_agent_tokens t
WHERE t.token_digest = $1 AND t.status = 'active';

-- name: touch_agent_token
-- Records that a token was used, unless another request did so within the last $2 seconds
-- (Clusters::AgentTokens::TrackUsageService writes at most every 40-55 minutes).
-- $1 token id, $2 seconds
UPDATE cluster_agent_tokens SET last_used_at = now()
WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - make_interval(secs => $2::double precision));

-- name: find_agent_context
-- An agent, its configuration project with what kas needs to reach its repository, and what the
-- agent's creator may do there (kas reports vulnerabilities on the creator's behalf).
-- default_branch is GitLab's default_branch_or_main.
-- $1 agent id
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
WHERE a.id = $1;

-- name: find_kas_project_by_id
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

-- name: find_kas_project_by_full_path
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

-- name: lock_agent_for_configuration
-- The agent and the root namespace of its configuration project, locked until the end of the
-- transaction so that two configuration refreshes of one agent do not interleave (agent.with_lock).
-- $1 agent id
SELECT a.id, n.traversal_ids[1] AS root_namespace_id
FROM cluster_agents a
JOIN projects p ON p.id = a.project_id
JOIN namespaces n ON n.id = p.namespace_id
WHERE a.id = $1
FOR UPDATE OF a;

-- name: replace_agent_project_authorizations
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

-- name: replace_agent_group_authorizations
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

-- name: existing_users_and_projects
-- Which of these user ids and project ids exist (agent_events tracks only events whose user and
-- project both exist).
-- $1 user ids, $2 project ids
SELECT
    ARRAY(SELECT id FROM users WHERE id = ANY ($1::bigint[])) AS user_ids,
    ARRAY(SELECT id FROM projects WHERE id = ANY ($2::bigint[])) AS project_ids;
