-- Admin API: groups, user namespaces, their routes and members (GitLab lib/api/groups.rb, members.rb).

-- name: admin_insert_namespace
-- A user namespace or a group; traversal_ids are the parent's followed by the new id.
-- $1 name, $2 path, $3 type ('User' | 'Group'), $4 owner id (User), $5 parent id (Group),
-- $6 visibility level, $7 description
WITH new_id AS (SELECT nextval(pg_get_serial_sequence('namespaces', 'id')) AS id)
INSERT INTO namespaces (id, name, path, type, owner_id, parent_id, traversal_ids, visibility_level, description)
SELECT new_id.id, $1, $2, $3, $4, $5,
       COALESCE((SELECT traversal_ids FROM namespaces WHERE id = $5::bigint), '{}') || new_id.id,
       $6, $7
FROM new_id
RETURNING id;

-- name: admin_find_namespace
-- A namespace with its full path and full name.
-- $1 namespace id
SELECT n.id, n.name, n.path, n.type, n.owner_id, n.parent_id, n.traversal_ids, n.visibility_level, n.description,
       n.created_at, r.path AS full_path, r.name AS full_name
FROM namespaces n
JOIN routes r ON r.source_type = 'Namespace' AND r.source_id = n.id
WHERE n.id = $1;

-- name: admin_find_namespace_by_path
-- A namespace by full path, ignoring case, following redirects left by renames.
-- $1 full path
SELECT n.id, n.name, n.path, n.type, n.owner_id, n.parent_id, n.traversal_ids, n.visibility_level, n.description,
       n.created_at, r.path AS full_path, r.name AS full_name
FROM namespaces n
JOIN routes r ON r.source_type = 'Namespace' AND r.source_id = n.id
WHERE n.id = COALESCE(
    (SELECT source_id FROM routes WHERE source_type = 'Namespace' AND lower(path) = lower($1)),
    (SELECT source_id FROM redirect_routes WHERE source_type = 'Namespace' AND lower(path) = lower($1)));

-- name: admin_list_groups
-- Groups whose name or path contains the search text, by name (GitLab's default order), one page.
-- $1 search text, $2 limit, $3 offset
WITH matched AS (
    SELECT n.id, n.name, n.path, n.type, n.owner_id, n.parent_id, n.traversal_ids, n.visibility_level,
           n.description, n.created_at, r.path AS full_path, r.name AS full_name
    FROM namespaces n
    JOIN routes r ON r.source_type = 'Namespace' AND r.source_id = n.id
    WHERE n.type = 'Group'
      AND ($1::text IS NULL OR n.name ILIKE '%' || $1::text || '%' OR n.path ILIKE '%' || $1::text || '%')
)
SELECT total.total, page.*
FROM (SELECT count(*) AS total FROM matched) total
LEFT JOIN LATERAL (SELECT * FROM matched ORDER BY name, id LIMIT $2 OFFSET $3) page ON true;

-- name: admin_list_subgroups
-- The direct subgroups of a group, by name, one page of them.
-- $1 parent id, $2 limit, $3 offset
WITH matched AS (
    SELECT n.id, n.name, n.path, n.type, n.owner_id, n.parent_id, n.traversal_ids, n.visibility_level,
           n.description, n.created_at, r.path AS full_path, r.name AS full_name
    FROM namespaces n
    JOIN routes r ON r.source_type = 'Namespace' AND r.source_id = n.id
    WHERE n.type = 'Group' AND n.parent_id = $1
)
SELECT total.total, page.*
FROM (SELECT count(*) AS total FROM matched) total
LEFT JOIN LATERAL (SELECT * FROM matched ORDER BY name, id LIMIT $2 OFFSET $3) page ON true;

-- name: admin_update_namespace
-- Changes a namespace's name, path, visibility or description; NULL keeps the current value.
-- $1 id, $2 name, $3 path, $4 visibility level, $5 description
UPDATE namespaces SET
    name = COALESCE($2, name),
    path = COALESCE($3, path),
    visibility_level = COALESCE($4, visibility_level),
    description = COALESCE($5, description),
    updated_at = now()
WHERE id = $1;

-- name: admin_path_taken
-- Whether a full path is the current route of any namespace or project (redirects do not count:
-- a new owner of an old path takes it over, as in GitLab).
-- $1 full path
SELECT EXISTS (SELECT 1 FROM routes WHERE lower(path) = lower($1));

-- name: admin_drop_redirects_for_moved_routes
-- Before routes under an old prefix move to a new prefix: every redirect at or under the new
-- prefix is dropped (Route#delete_conflicting_redirects), so no old path there keeps leading to a
-- previous owner.
-- $1 new full path
DELETE FROM redirect_routes
WHERE lower(path) = lower($1) OR left(lower(path), length($1) + 1) = lower($1) || '/';

-- name: admin_redirect_moved_routes
-- Leaves a redirect for every route at or under an old full path (the namespace or project itself
-- and all its descendants), so old remotes keep working and /allowed can report the move.
-- $1 old full path
INSERT INTO redirect_routes (source_type, source_id, path)
SELECT source_type, source_id, path FROM routes
WHERE lower(path) = lower($1) OR left(lower(path), length($1) + 1) = lower($1) || '/'
ON CONFLICT ((lower(path))) DO UPDATE
SET source_type = EXCLUDED.source_type, source_id = EXCLUDED.source_id, created_at = now();

-- name: admin_rewrite_routes
-- Moves every route at or under an old full path to the new full path.
-- $1 old full path, $2 new full path
UPDATE routes SET path = $2 || substr(path, length($1) + 1)
WHERE lower(path) = lower($1) OR left(lower(path), length($1) + 1) = lower($1) || '/';

-- name: admin_rename_route
-- The display name kept on a route ("Parent / Child").
-- $1 source type, $2 source id, $3 full name
UPDATE routes SET name = $3 WHERE source_type = $1 AND source_id = $2;

-- name: admin_delete_namespace_paths
-- Before a group is deleted: routes, redirects and memberships of it, its descendants and every
-- project under them (these reference their source by type and id, without a foreign key).
-- $1 namespace id
WITH ns AS (
    SELECT id FROM namespaces WHERE $1 = ANY (traversal_ids)
), project_ids AS (
    SELECT p.id FROM projects p WHERE p.namespace_id IN (SELECT id FROM ns)
), deleted_routes AS (
    DELETE FROM routes
    WHERE (source_type = 'Namespace' AND source_id IN (SELECT id FROM ns))
       OR (source_type = 'Project' AND source_id IN (SELECT id FROM project_ids))
), deleted_redirects AS (
    DELETE FROM redirect_routes
    WHERE (source_type = 'Namespace' AND source_id IN (SELECT id FROM ns))
       OR (source_type = 'Project' AND source_id IN (SELECT id FROM project_ids))
)
DELETE FROM members
WHERE (source_type = 'Namespace' AND source_id IN (SELECT id FROM ns))
   OR (source_type = 'Project' AND source_id IN (SELECT id FROM project_ids));

-- name: admin_delete_namespace
-- A group; subgroups and projects go with it (foreign keys cascade).
-- $1 namespace id
DELETE FROM namespaces WHERE id = $1;

-- name: admin_list_members
-- Direct members of a group or project with their user, oldest membership first, one page.
-- $1 source type ('Namespace' | 'Project'), $2 source id, $3 limit, $4 offset
WITH matched AS (
    SELECT m.id AS member_id, u.id, u.username, u.name, u.state, m.access_level, m.expires_at, m.created_at,
           m.created_by_id, m.state AS membership_state
    FROM members m
    JOIN users u ON u.id = m.user_id
    WHERE m.source_type = $1 AND m.source_id = $2 AND m.requested_at IS NULL
)
SELECT total.total, page.*
FROM (SELECT count(*) AS total FROM matched) total
LEFT JOIN LATERAL (SELECT * FROM matched ORDER BY member_id LIMIT $3 OFFSET $4) page ON true;

-- name: admin_find_member
-- One direct member of a group or project.
-- $1 source type, $2 source id, $3 user id
SELECT m.id AS member_id, u.id, u.username, u.name, u.state, m.access_level, m.expires_at, m.created_at,
       m.created_by_id, m.state AS membership_state
FROM members m
JOIN users u ON u.id = m.user_id
WHERE m.source_type = $1 AND m.source_id = $2 AND m.user_id = $3 AND m.requested_at IS NULL;

-- name: admin_insert_member
-- A membership; nothing when the user is already a member (the caller answers 409).
-- $1 user id, $2 source type, $3 source id, $4 access level, $5 expires_at, $6 created by
INSERT INTO members (user_id, source_type, source_id, access_level, expires_at, created_by_id)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (user_id, source_type, source_id) DO NOTHING
RETURNING id;

-- name: admin_update_member
-- A member's access level and expiry.
-- $1 source type, $2 source id, $3 user id, $4 access level, $5 expires_at
UPDATE members SET access_level = $4, expires_at = $5, updated_at = now()
WHERE source_type = $1 AND source_id = $2 AND user_id = $3
RETURNING id;

-- name: admin_delete_member
-- Removes a member.
-- $1 source type, $2 source id, $3 user id
DELETE FROM members WHERE source_type = $1 AND source_id = $2 AND user_id = $3 RETURNING id;

-- name: admin_other_group_owners
-- How many owners a group has besides this user (a group must keep at least one).
-- $1 group id, $2 user id
SELECT count(*) FROM members
WHERE source_type = 'Namespace' AND source_id = $1 AND user_id <> $2
  AND access_level = 50 AND state = 'active' AND requested_at IS NULL;

-- name: admin_group_solely_owned_by
-- A group this user is the only owner of, if any (such a user cannot be deleted).
-- $1 user id
SELECT m.source_id FROM members m
WHERE m.user_id = $1 AND m.source_type = 'Namespace' AND m.access_level = 50
  AND NOT EXISTS (SELECT 1 FROM members o
                  WHERE o.source_type = 'Namespace' AND o.source_id = m.source_id AND o.user_id <> $1
                    AND o.access_level = 50 AND o.state = 'active' AND o.requested_at IS NULL)
LIMIT 1;
