-- Admin API: projects and what hangs off them (GitLab lib/api/projects.rb, deploy_keys.rb,
-- protected_branches.rb, protected_tags.rb, clusters/agents.rb, error_tracking/client_keys.rb).

-- name: admin_find_project
-- A project with its route and namespace, for GitLab's Project entity.
-- $1 project id
SELECT p.id, p.name, p.path, p.description, p.namespace_id, p.creator_id, p.visibility_level, p.archived,
       p.lfs_enabled, p.default_branch, p.created_at, p.last_activity_at, r.path AS full_path, r.name AS full_name,
       n.name AS namespace_name, n.path AS namespace_path, n.type AS namespace_kind, n.parent_id AS namespace_parent_id,
       nr.path AS namespace_full_path
FROM projects p
JOIN routes r ON r.source_type = 'Project' AND r.source_id = p.id
JOIN namespaces n ON n.id = p.namespace_id
JOIN routes nr ON nr.source_type = 'Namespace' AND nr.source_id = n.id
WHERE p.id = $1 AND NOT p.pending_delete;

-- name: admin_find_project_id_by_path
-- A project id by full path, ignoring case, following redirects left by renames and transfers.
-- $1 full path
SELECT COALESCE(
    (SELECT source_id FROM routes WHERE source_type = 'Project' AND lower(path) = lower($1)),
    (SELECT source_id FROM redirect_routes WHERE source_type = 'Project' AND lower(path) = lower($1)));

-- name: admin_list_projects
-- Projects whose name or path contains the search text, newest first (GitLab's order_by
-- created_at, sort desc), one page of them.
-- $1 search text, $2 namespace id (NULL = all), $3 limit, $4 offset
WITH matched AS (
    SELECT p.id, p.name, p.path, p.description, p.namespace_id, p.creator_id, p.visibility_level, p.archived,
           p.lfs_enabled, p.default_branch, p.created_at, p.last_activity_at, r.path AS full_path,
           r.name AS full_name, n.name AS namespace_name, n.path AS namespace_path, n.type AS namespace_kind,
           n.parent_id AS namespace_parent_id, nr.path AS namespace_full_path
    FROM projects p
    JOIN routes r ON r.source_type = 'Project' AND r.source_id = p.id
    JOIN namespaces n ON n.id = p.namespace_id
    JOIN routes nr ON nr.source_type = 'Namespace' AND nr.source_id = n.id
    WHERE NOT p.pending_delete
      AND ($1::text IS NULL OR p.name ILIKE '%' || $1::text || '%' OR p.path ILIKE '%' || $1::text || '%')
      AND ($2::bigint IS NULL OR p.namespace_id = $2::bigint)
)
SELECT total.total, page.*
FROM (SELECT count(*) AS total FROM matched) total
LEFT JOIN LATERAL (SELECT * FROM matched ORDER BY id DESC LIMIT $3 OFFSET $4) page ON true;

-- name: admin_project_name_or_path_taken
-- Which of a name and a path another project in the namespace already uses.
-- $1 namespace id, $2 name, $3 path, $4 project id to ignore
SELECT EXISTS (SELECT 1 FROM projects WHERE namespace_id = $1 AND lower(name) = lower($2::text)
                                       AND id IS DISTINCT FROM $4::bigint) AS name_taken,
       EXISTS (SELECT 1 FROM projects WHERE namespace_id = $1 AND lower(path) = lower($3::text)
                                       AND id IS DISTINCT FROM $4::bigint) AS path_taken;

-- name: admin_insert_project
-- A project row; the caller adds its route in the same transaction.
-- $1 name, $2 path, $3 namespace id, $4 creator id, $5 visibility, $6 default branch, $7 lfs_enabled,
-- $8 description
INSERT INTO projects (name, path, namespace_id, creator_id, visibility_level, default_branch, lfs_enabled,
                      description)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
RETURNING id;

-- name: admin_update_project
-- Changes the given attributes of a project; NULL keeps the current value.
-- $1 id, $2 name, $3 path, $4 visibility, $5 default branch, $6 lfs_enabled, $7 description,
-- $8 archived, $9 namespace id
UPDATE projects SET
    name = COALESCE($2, name),
    path = COALESCE($3, path),
    visibility_level = COALESCE($4, visibility_level),
    default_branch = COALESCE($5, default_branch),
    lfs_enabled = COALESCE($6, lfs_enabled),
    description = COALESCE($7, description),
    archived = COALESCE($8, archived),
    namespace_id = COALESCE($9, namespace_id),
    updated_at = now(),
    last_activity_at = now()
WHERE id = $1;

-- name: admin_delete_project
-- A project with its route, redirects and memberships; deploy key links, protected refs, agents
-- and client keys go with it through their foreign keys.
-- $1 project id
WITH deleted_routes AS (
    DELETE FROM routes WHERE source_type = 'Project' AND source_id = $1
), deleted_redirects AS (
    DELETE FROM redirect_routes WHERE source_type = 'Project' AND source_id = $1
), deleted_members AS (
    DELETE FROM members WHERE source_type = 'Project' AND source_id = $1
)
DELETE FROM projects WHERE id = $1;

-- name: admin_list_deploy_keys
-- The deploy keys enabled on a project, with can_push, oldest link first, one page of them.
-- $1 project id, $2 limit, $3 offset
WITH matched AS (
    SELECT k.id, k.user_id, k.type, k.key, k.title, k.key_type, k.bits, k.fingerprint, k.fingerprint_sha256,
           k.usage_type, k.expires_at, k.last_used_at, k.created_at, k.public, dkp.can_push, dkp.id AS link_id
    FROM deploy_keys_projects dkp
    JOIN keys k ON k.id = dkp.deploy_key_id
    WHERE dkp.project_id = $1
)
SELECT total.total, page.*
FROM (SELECT count(*) AS total FROM matched) total
LEFT JOIN LATERAL (SELECT * FROM matched ORDER BY link_id LIMIT $2 OFFSET $3) page ON true;

-- name: admin_find_project_deploy_key
-- A deploy key as enabled on a project.
-- $1 project id, $2 key id
SELECT k.id, k.user_id, k.type, k.key, k.title, k.key_type, k.bits, k.fingerprint, k.fingerprint_sha256,
       k.usage_type, k.expires_at, k.last_used_at, k.created_at, k.public, dkp.can_push, dkp.id AS link_id
FROM deploy_keys_projects dkp
JOIN keys k ON k.id = dkp.deploy_key_id
WHERE dkp.project_id = $1 AND dkp.deploy_key_id = $2;

-- name: admin_enable_deploy_key
-- Enables a deploy key on a project (no change when it already is).
-- $1 key id, $2 project id, $3 can_push
INSERT INTO deploy_keys_projects (deploy_key_id, project_id, can_push) VALUES ($1, $2, $3)
ON CONFLICT (deploy_key_id, project_id) DO NOTHING;

-- name: admin_disable_deploy_key
-- Removes a deploy key from a project, and the key itself when no other project uses it
-- (DeployKeysProject#destroy_orphaned_deploy_key). Returns the key id when it was enabled.
-- $1 project id, $2 key id
WITH unlinked AS (
    DELETE FROM deploy_keys_projects WHERE project_id = $1 AND deploy_key_id = $2 RETURNING deploy_key_id
), orphan AS (
    DELETE FROM keys k
    WHERE k.id IN (SELECT deploy_key_id FROM unlinked) AND NOT k.public
      AND NOT EXISTS (SELECT 1 FROM deploy_keys_projects d WHERE d.deploy_key_id = k.id AND d.project_id <> $1)
)
SELECT deploy_key_id FROM unlinked;

-- name: admin_list_protected_branches
-- A project's protected branches with their push, merge and unprotect access levels as JSON arrays.
-- $1 project id, $2 name (NULL = all)
SELECT pb.id, pb.name, pb.allow_force_push,
       COALESCE((SELECT json_agg(json_build_object('id', a.id, 'access_level', a.access_level, 'user_id', a.user_id,
                                                   'deploy_key_id', a.deploy_key_id) ORDER BY a.id)
                 FROM protected_branch_access_levels a WHERE a.protected_branch_id = pb.id AND a.kind = 'push'),
                '[]') AS push_access_levels,
       COALESCE((SELECT json_agg(json_build_object('id', a.id, 'access_level', a.access_level, 'user_id', a.user_id,
                                                   'deploy_key_id', a.deploy_key_id) ORDER BY a.id)
                 FROM protected_branch_access_levels a WHERE a.protected_branch_id = pb.id AND a.kind = 'merge'),
                '[]') AS merge_access_levels,
       COALESCE((SELECT json_agg(json_build_object('id', a.id, 'access_level', a.access_level, 'user_id', a.user_id,
                                                   'deploy_key_id', a.deploy_key_id) ORDER BY a.id)
                 FROM protected_branch_access_levels a WHERE a.protected_branch_id = pb.id AND a.kind = 'unprotect'),
                '[]') AS unprotect_access_levels
FROM protected_branches pb
WHERE pb.project_id = $1 AND ($2::text IS NULL OR pb.name = $2::text)
ORDER BY pb.id;

-- name: admin_insert_protected_branch
-- A protected branch; nothing when the name is already protected (the caller answers 409).
-- $1 project id, $2 name, $3 allow_force_push
INSERT INTO protected_branches (project_id, name, allow_force_push) VALUES ($1, $2, $3)
ON CONFLICT (project_id, name) DO NOTHING
RETURNING id;

-- name: admin_insert_branch_access_level
-- A role that may push, merge or unprotect.
-- $1 protected branch id, $2 kind, $3 access level
INSERT INTO protected_branch_access_levels (protected_branch_id, kind, access_level) VALUES ($1, $2, $3);

-- name: admin_update_protected_branch
-- allow_force_push of a protected branch; NULL keeps it.
-- $1 project id, $2 name, $3 allow_force_push
UPDATE protected_branches SET allow_force_push = COALESCE($3, allow_force_push), updated_at = now()
WHERE project_id = $1 AND name = $2
RETURNING id;

-- name: admin_delete_protected_branch
-- Unprotects a branch; its access levels go with it.
-- $1 project id, $2 name
DELETE FROM protected_branches WHERE project_id = $1 AND name = $2 RETURNING id;

-- name: admin_list_protected_tags
-- A project's protected tags with their create access levels as a JSON array.
-- $1 project id, $2 name (NULL = all)
SELECT pt.id, pt.name,
       COALESCE((SELECT json_agg(json_build_object('id', a.id, 'access_level', a.access_level, 'user_id', a.user_id,
                                                   'deploy_key_id', a.deploy_key_id) ORDER BY a.id)
                 FROM protected_tag_create_access_levels a WHERE a.protected_tag_id = pt.id),
                '[]') AS create_access_levels
FROM protected_tags pt
WHERE pt.project_id = $1 AND ($2::text IS NULL OR pt.name = $2::text)
ORDER BY pt.id;

-- name: admin_insert_protected_tag
-- A protected tag with its one create access level; nothing when the name is already protected.
-- $1 project id, $2 name, $3 create access level
WITH tag AS (
    INSERT INTO protected_tags (project_id, name) VALUES ($1, $2)
    ON CONFLICT (project_id, name) DO NOTHING
    RETURNING id
), level AS (
    INSERT INTO protected_tag_create_access_levels (protected_tag_id, access_level)
    SELECT id, $3 FROM tag
)
SELECT id FROM tag;

-- name: admin_delete_protected_tag
-- Unprotects a tag.
-- $1 project id, $2 name
DELETE FROM protected_tags WHERE project_id = $1 AND name = $2 RETURNING id;

-- name: admin_list_agents
-- A project's cluster agents, oldest first, one page of them.
-- $1 project id, $2 limit, $3 offset
WITH matched AS (
    SELECT id, name, project_id, created_by_user_id, created_at FROM cluster_agents WHERE project_id = $1
)
SELECT total.total, page.*
FROM (SELECT count(*) AS total FROM matched) total
LEFT JOIN LATERAL (SELECT * FROM matched ORDER BY id LIMIT $2 OFFSET $3) page ON true;

-- name: admin_find_agent
-- One agent of a project.
-- $1 project id, $2 agent id
SELECT id, name, project_id, created_by_user_id, created_at FROM cluster_agents WHERE project_id = $1 AND id = $2;

-- name: admin_insert_agent
-- A cluster agent; nothing when the project already has one with this name.
-- $1 project id, $2 name, $3 created by
INSERT INTO cluster_agents (project_id, name, created_by_user_id) VALUES ($1, $2, $3)
ON CONFLICT (project_id, name) DO NOTHING
RETURNING id, name, project_id, created_by_user_id, created_at;

-- name: admin_delete_agent
-- An agent and (through the foreign key) its tokens.
-- $1 project id, $2 agent id
DELETE FROM cluster_agents WHERE project_id = $1 AND id = $2 RETURNING id;

-- name: admin_list_agent_tokens
-- An agent's active tokens (GitLab lists only those), oldest first, one page of them.
-- $1 agent id, $2 limit, $3 offset
WITH matched AS (
    SELECT id, agent_id, name, description, status, created_by_user_id, created_at, last_used_at
    FROM cluster_agent_tokens WHERE agent_id = $1 AND status = 'active'
)
SELECT total.total, page.*
FROM (SELECT count(*) AS total FROM matched) total
LEFT JOIN LATERAL (SELECT * FROM matched ORDER BY id LIMIT $2 OFFSET $3) page ON true;

-- name: admin_find_agent_token
-- One token of an agent, active or revoked.
-- $1 agent id, $2 token id
SELECT id, agent_id, name, description, status, created_by_user_id, created_at, last_used_at
FROM cluster_agent_tokens WHERE agent_id = $1 AND id = $2;

-- name: admin_count_active_agent_tokens
-- How many active tokens an agent has (GitLab allows two at a time).
-- $1 agent id
SELECT count(*) FROM cluster_agent_tokens WHERE agent_id = $1 AND status = 'active';

-- name: admin_insert_agent_token
-- An agent token; only its digest is stored.
-- $1 agent id, $2 digest, $3 name, $4 description, $5 created by
INSERT INTO cluster_agent_tokens (agent_id, token_digest, name, description, created_by_user_id)
VALUES ($1, $2, $3, $4, $5)
RETURNING id, agent_id, name, description, status, created_by_user_id, created_at, last_used_at;

-- name: admin_revoke_agent_token
-- Revokes an agent token (the row stays, as in GitLab).
-- $1 agent id, $2 token id
UPDATE cluster_agent_tokens SET status = 'revoked' WHERE agent_id = $1 AND id = $2 RETURNING id;

-- name: admin_list_client_keys
-- A project's error-tracking client keys, oldest first.
-- $1 project id
SELECT id, project_id, public_key, active, created_at FROM error_tracking_client_keys
WHERE project_id = $1 ORDER BY id;

-- name: admin_insert_client_key
-- A new error-tracking client key.
-- $1 project id, $2 public key
INSERT INTO error_tracking_client_keys (project_id, public_key) VALUES ($1, $2)
RETURNING id, project_id, public_key, active, created_at;

-- name: admin_delete_client_key
-- Removes a client key, returning it.
-- $1 project id, $2 key id
DELETE FROM error_tracking_client_keys WHERE project_id = $1 AND id = $2
RETURNING id, project_id, public_key, active, created_at;
