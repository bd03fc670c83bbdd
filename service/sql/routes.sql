-- routes and redirect_routes: the full paths (and full names) of namespaces and projects, and the
-- old paths that still lead to them (GitLab's Route and RedirectRoute; sources by type and id).

-- name: path_taken$
-- Whether a full path is the current route of any namespace or project (redirects do not count:
-- a new owner of an old path takes it over, as in GitLab).
-- $1 full path
SELECT EXISTS (SELECT 1 FROM routes WHERE lower(path) = lower($1));

-- name: redirect_routes_at_or_under!
-- Leaves a redirect for every route at or under an old full path (the namespace or project itself
-- and all its descendants), so old remotes keep working and /allowed can report the move.
-- $1 old full path
INSERT INTO redirect_routes (source_type, source_id, path)
SELECT source_type, source_id, path FROM routes
WHERE lower(path) = lower($1) OR left(lower(path), length($1) + 1) = lower($1) || '/'
ON CONFLICT ((lower(path))) DO UPDATE
SET source_type = EXCLUDED.source_type, source_id = EXCLUDED.source_id, created_at = now();

-- name: move_routes_at_or_under!
-- Moves every route at or under an old full path to the new full path.
-- $1 old full path, $2 new full path
UPDATE routes SET path = $2 || substr(path, length($1) + 1)
WHERE lower(path) = lower($1) OR left(lower(path), length($1) + 1) = lower($1) || '/';

-- name: rename_route!
-- The display name kept on a route ("Parent / Child"), and with it the start of the names of every
-- route under it (Route#rename_descendants: renaming group "Old" makes "Old / app" "New / app").
-- Run after move_routes_at_or_under: the source's route has its new path by then.
-- $1 source type, $2 source id, $3 full name
WITH renamed AS (SELECT path, name AS old_name FROM routes WHERE source_type = $1 AND source_id = $2)
UPDATE routes r SET name = $3 || substr(r.name, length(renamed.old_name) + 1)
FROM renamed
WHERE (r.source_type = $1 AND r.source_id = $2)
   OR (left(lower(r.path), length(renamed.path) + 1) = lower(renamed.path) || '/'
       AND left(r.name, length(renamed.old_name) + 3) = renamed.old_name || ' / ');

-- name: insert_route!
-- The full path and full name of a new namespace or project; delete_redirects_at_or_under first.
-- $1 source type, $2 source id, $3 full path, $4 full name
INSERT INTO routes (source_type, source_id, path, name) VALUES ($1, $2, $3, $4);

-- name: delete_redirects_at_or_under!
-- A route takes over a path (a new route, or routes moved to a new prefix): every redirect at that
-- path or under it is dropped (Route#delete_conflicting_redirects), so no old path there keeps
-- leading to a previous owner.
-- $1 full path
DELETE FROM redirect_routes
WHERE lower(path) = lower($1) OR left(lower(path), length($1) + 1) = lower($1) || '/';

-- name: delete_routes_of!
-- Before namespaces or projects are deleted: their routes and the redirects to them.
-- $1 namespace ids, $2 project ids
WITH deleted_redirects AS (
    DELETE FROM redirect_routes
    WHERE (source_type = 'Namespace' AND source_id = ANY ($1::bigint[]))
       OR (source_type = 'Project' AND source_id = ANY ($2::bigint[]))
)
DELETE FROM routes
WHERE (source_type = 'Namespace' AND source_id = ANY ($1::bigint[]))
   OR (source_type = 'Project' AND source_id = ANY ($2::bigint[]));
