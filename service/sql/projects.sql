-- projects, and the error-tracking client keys that belong to one project (GitLab lib/api/projects.rb,
-- error_tracking/client_keys.rb). A project's route is written by routes.sql.
-- Lists of the admin API return one row even when the page is empty: `total` is the match count
-- for the pagination headers, and the item columns are NULL on that filler row (see rows.paged).

-- name: find_project_by_id^
-- A project with its full path and storage, by id (gl_repository "project-<id>").
-- $1 project id
SELECT p.id, p.name, p.path, route.path AS full_path, p.namespace_id, p.visibility_level, p.repository_storage,
       p.legacy_disk_path, p.lfs_enabled, p.default_branch, p.printing_merge_request_link_enabled,
       p.merge_requests_access_level, p.repository_access_level, p.archived
FROM projects p
JOIN routes route ON route.source_type = 'Project' AND route.source_id = p.id
WHERE p.id = $1 AND NOT p.pending_delete;

-- name: find_project_by_full_path^
-- A project by full path, ignoring case, following redirects from old paths.
-- $1 full path
SELECT p.id, p.name, p.path, route.path AS full_path, p.namespace_id, p.visibility_level, p.repository_storage,
       p.legacy_disk_path, p.lfs_enabled, p.default_branch, p.printing_merge_request_link_enabled,
       p.merge_requests_access_level, p.repository_access_level, p.archived
FROM projects p
JOIN routes route ON route.source_type = 'Project' AND route.source_id = p.id
WHERE NOT p.pending_delete AND p.id = COALESCE(
    (SELECT source_id FROM routes WHERE source_type = 'Project' AND lower(path) = lower($1)),
    (SELECT source_id FROM redirect_routes WHERE source_type = 'Project' AND lower(path) = lower($1)));

-- name: insert_project<!
-- The one writer of projects: for a project a push creates (/internal/allowed) and one the admin
-- API creates alike. Returns the id and the full name for its route: the namespace's full name,
-- " / ", the project's name (GitLab's Route#name, which is Project#full_name); the caller writes
-- the route with it (routes.sql insert_route) in the same transaction.
-- $1 name, $2 path, $3 namespace id, $4 creator id, $5 visibility, $6 default branch, $7 lfs_enabled,
-- $8 description
INSERT INTO projects (name, path, namespace_id, creator_id, visibility_level, default_branch, lfs_enabled,
                      description)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
RETURNING id,
          (SELECT r.name FROM routes r WHERE r.source_type = 'Namespace' AND r.source_id = $3)
              || ' / ' || name AS full_name;

-- name: find_error_tracking_client_key^
-- Whether a project has an active error-tracking client key with this public key.
-- $1 project id, $2 public key
SELECT p.id AS project_id,
       EXISTS (SELECT 1 FROM error_tracking_client_keys k
                WHERE k.project_id = p.id AND k.public_key = $2 AND k.active) AS active_key
FROM projects p WHERE p.id = $1;

-- name: find_project^
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

-- name: find_project_id_by_path$
-- A project id by full path, ignoring case, following redirects left by renames and transfers.
-- $1 full path
SELECT COALESCE(
    (SELECT source_id FROM routes WHERE source_type = 'Project' AND lower(path) = lower($1)),
    (SELECT source_id FROM redirect_routes WHERE source_type = 'Project' AND lower(path) = lower($1)));

-- name: list_projects
-- Projects whose name or path contains the search text, archived or not, of one visibility, owned
-- by a user (its personal projects and those it has owner access to: User#owned_projects) or that
-- a user is a member of (authorized_projects: personal projects, and projects it reaches through a
-- membership of the project or of a group above it), newest first (GitLab's order_by created_at,
-- sort desc), one page of them. NULL leaves a filter out.
-- $1 search text, $2 namespace id, $3 limit, $4 offset, $5 archived, $6 visibility level,
-- $7 owner's user id, $8 member's user id
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
      AND ($1::text IS NULL OR p.name ILIKE contains_pattern($1::text) OR p.path ILIKE contains_pattern($1::text))
      AND ($2::bigint IS NULL OR p.namespace_id = $2::bigint)
      AND ($5::boolean IS NULL OR p.archived = $5::boolean)
      AND ($6::integer IS NULL OR p.visibility_level = $6::integer)
      AND (COALESCE($7::bigint, $8::bigint) IS NULL
           OR (n.type = 'User' AND n.owner_id = COALESCE($7::bigint, $8::bigint))
           OR EXISTS (SELECT 1 FROM members m
                      WHERE m.user_id = COALESCE($7::bigint, $8::bigint)
                        AND m.state = 'active' AND m.requested_at IS NULL
                        AND (m.expires_at IS NULL OR m.expires_at > current_date)
                        -- owned: owner access; membership: any role that reaches the code (not minimal access)
                        AND m.access_level >= CASE WHEN $7::bigint IS NOT NULL THEN 50 ELSE 10 END
                        AND ((m.source_type = 'Project' AND m.source_id = p.id)
                          OR (m.source_type = 'Namespace' AND m.source_id = ANY (n.traversal_ids)))))
)
SELECT total.total, page.*
FROM (SELECT count(*) AS total FROM matched) total
LEFT JOIN LATERAL (SELECT * FROM matched ORDER BY id DESC LIMIT $3 OFFSET $4) page ON true;

-- name: project_name_or_path_taken^
-- Which of a name and a path another project in the namespace already uses.
-- $1 namespace id, $2 name, $3 path, $4 project id to ignore
SELECT EXISTS (SELECT 1 FROM projects WHERE namespace_id = $1 AND lower(name) = lower($2::text)
                                       AND id IS DISTINCT FROM $4::bigint) AS name_taken,
       EXISTS (SELECT 1 FROM projects WHERE namespace_id = $1 AND lower(path) = lower($3::text)
                                       AND id IS DISTINCT FROM $4::bigint) AS path_taken;

-- name: lock_project$
-- A rename, transfer or deletion of a project, after its namespace's path (lock_namespace_path:
-- namespaces before projects in every transaction): its row for the transaction, and its namespace
-- id (NULL: the project is gone). NO KEY UPDATE: rows that merely refer to the project (an event)
-- are not held up; a membership being added (hold_project, FOR SHARE) is.
-- $1 project id
SELECT namespace_id FROM projects WHERE id = $1 FOR NO KEY UPDATE;

-- name: hold_project$
-- Before a row that names a project (a membership) is added: the project's row, shared, so that
-- its deletion waits for the addition (and then deletes it too) or the addition finds it gone (NULL).
-- $1 project id
SELECT id FROM projects WHERE id = $1 FOR SHARE;

-- name: update_project!
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

-- name: delete_project!
-- A project; deploy key links, protected refs, agents and client keys go with it through their
-- foreign keys. Its routes and memberships have none: delete_routes_of and delete_memberships_of
-- remove them first, in the same transaction.
-- $1 project id
DELETE FROM projects WHERE id = $1;

-- name: list_client_keys
-- A project's error-tracking client keys, oldest first.
-- $1 project id
SELECT id, project_id, public_key, active, created_at FROM error_tracking_client_keys
WHERE project_id = $1 ORDER BY id;

-- name: insert_client_key<!
-- A new error-tracking client key.
-- $1 project id, $2 public key
INSERT INTO error_tracking_client_keys (project_id, public_key) VALUES ($1, $2)
RETURNING id, project_id, public_key, active, created_at;

-- name: delete_client_key<!
-- Removes a client key, returning it.
-- $1 project id, $2 key id
DELETE FROM error_tracking_client_keys WHERE project_id = $1 AND id = $2
RETURNING id, project_id, public_key, active, created_at;
