-- name: find_project_by_id
-- A project with its full path and storage, by id (gl_repository "project-<id>").
-- $1 project id
SELECT p.id, p.name, p.path, route.path AS full_path, p.namespace_id, p.visibility_level, p.repository_storage,
       p.legacy_disk_path, p.lfs_enabled, p.default_branch, p.printing_merge_request_link_enabled,
       p.merge_requests_access_level, p.repository_access_level, p.archived
FROM projects p
JOIN routes route ON route.source_type = 'Project' AND route.source_id = p.id
WHERE p.id = $1 AND NOT p.pending_delete;

-- name: find_project_by_full_path
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

-- name: insert_project
-- A project row; the caller adds its route in the same transaction.
-- $1 name, $2 path, $3 namespace id, $4 creator id, $5 visibility, $6 default branch
INSERT INTO projects (name, path, namespace_id, creator_id, visibility_level, default_branch)
VALUES ($1, $2, $3, $4, $5, $6)
RETURNING id;

-- name: insert_route
-- The full path of a namespace or project.
-- $1 source type, $2 source id, $3 full path, $4 full name
INSERT INTO routes (source_type, source_id, path, name) VALUES ($1, $2, $3, $4)
RETURNING id;

-- name: delete_redirect_routes_for_path
-- A new route takes over an old path: the redirects at that path and under it stop leading to the
-- previous owner (Route#delete_conflicting_redirects).
-- $1 full path
DELETE FROM redirect_routes
WHERE lower(path) = lower($1) OR left(lower(path), length($1) + 1) = lower($1) || '/';

-- name: find_error_tracking_client_key
-- Whether a project has an active error-tracking client key with this public key.
-- $1 project id, $2 public key
SELECT p.id AS project_id,
       EXISTS (SELECT 1 FROM error_tracking_client_keys k
                WHERE k.project_id = p.id AND k.public_key = $2 AND k.active) AS active_key
FROM projects p WHERE p.id = $1;
