-- deploy_keys_projects: which deploy keys are enabled on which project, and whether they may push
-- (GitLab lib/api/deploy_keys.rb). The keys themselves are rows of keys (ssh_keys.sql).
-- Lists of the admin API return one row even when the page is empty: `total` is the match count
-- for the pagination headers, and the item columns are NULL on that filler row (see rows.paged).

-- name: list_project_deploy_keys
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

-- name: find_project_deploy_key^
-- A deploy key as enabled on a project.
-- $1 project id, $2 key id
SELECT k.id, k.user_id, k.type, k.key, k.title, k.key_type, k.bits, k.fingerprint, k.fingerprint_sha256,
       k.usage_type, k.expires_at, k.last_used_at, k.created_at, k.public, dkp.can_push, dkp.id AS link_id
FROM deploy_keys_projects dkp
JOIN keys k ON k.id = dkp.deploy_key_id
WHERE dkp.project_id = $1 AND dkp.deploy_key_id = $2;

-- name: enable_deploy_key!
-- Enables a deploy key on a project (no change when it already is).
-- $1 key id, $2 project id, $3 can_push
INSERT INTO deploy_keys_projects (deploy_key_id, project_id, can_push) VALUES ($1, $2, $3)
ON CONFLICT (deploy_key_id, project_id) DO NOTHING;

-- name: disable_deploy_key<!
-- Removes a deploy key from a project; returns the key id when it was enabled. The key itself goes
-- too once no project uses it (ssh_keys.sql delete_orphaned_deploy_key, same transaction).
-- $1 project id, $2 key id
DELETE FROM deploy_keys_projects WHERE project_id = $1 AND deploy_key_id = $2 RETURNING deploy_key_id;

-- name: update_deploy_key_link$
-- PUT /projects/:id/deploy_keys/:key_id: whether the key may push to this project (NULL keeps
-- it); the key id, or NULL when the key is not enabled here. The row stays locked until the
-- transaction ends, so the key's title is written in the same breath.
-- $1 project id, $2 key id, $3 can_push
UPDATE deploy_keys_projects SET can_push = COALESCE($3::boolean, can_push)
WHERE project_id = $1 AND deploy_key_id = $2
RETURNING deploy_key_id;

-- name: rename_deploy_key!
-- A deploy key's title, shared by every project it is enabled on (GitLab's deploy_key_attributes).
-- $1 key id, $2 title
UPDATE keys SET title = $2, updated_at = now() WHERE id = $1 AND type = 'DeployKey';
