-- protected_branches, protected_tags and their access levels (GitLab lib/api/protected_branches.rb,
-- protected_tags.rb). /internal/allowed reads them through access.sql.

-- name: list_protected_branches
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

-- name: insert_protected_branch<!
-- A protected branch; nothing when the name is already protected (the caller answers 409).
-- $1 project id, $2 name, $3 allow_force_push
INSERT INTO protected_branches (project_id, name, allow_force_push) VALUES ($1, $2, $3)
ON CONFLICT (project_id, name) DO NOTHING
RETURNING id;

-- name: insert_branch_access_level!
-- A role that may push, merge or unprotect.
-- $1 protected branch id, $2 kind, $3 access level
INSERT INTO protected_branch_access_levels (protected_branch_id, kind, access_level) VALUES ($1, $2, $3);

-- name: update_protected_branch<!
-- allow_force_push of a protected branch; NULL keeps it.
-- $1 project id, $2 name, $3 allow_force_push
UPDATE protected_branches SET allow_force_push = COALESCE($3, allow_force_push), updated_at = now()
WHERE project_id = $1 AND name = $2
RETURNING id;

-- name: delete_protected_branch<!
-- Unprotects a branch; its access levels go with it.
-- $1 project id, $2 name
DELETE FROM protected_branches WHERE project_id = $1 AND name = $2 RETURNING id;

-- name: list_protected_tags
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

-- name: insert_protected_tag<!
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

-- name: delete_protected_tag<!
-- Unprotects a tag.
-- $1 project id, $2 name
DELETE FROM protected_tags WHERE project_id = $1 AND name = $2 RETURNING id;

-- name: default_branch_protection_for_project$
-- The default branch protection that applies to a project (its namespace's, migration 0409); NULL
-- when the project is gone.
-- $1 project id
SELECT default_branch_protection_of(n.type, n.default_branch_protection_defaults)::text
FROM projects p
JOIN namespaces n ON n.id = p.namespace_id
WHERE p.id = $1;
