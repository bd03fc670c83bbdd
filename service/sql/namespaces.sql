-- namespaces: user namespaces and groups (GitLab lib/api/groups.rb, Groups::CreateService).
-- Lists of the admin API return one row even when the page is empty: `total` is the match count
-- for the pagination headers, and the item columns are NULL on that filler row (see rows.paged).

-- name: insert_namespace<!
-- A user namespace or a group; traversal_ids are the parent's followed by the new id.
-- $1 name, $2 path, $3 type ('User' | 'Group'), $4 owner id (User), $5 parent id (Group),
-- $6 visibility level, $7 description, $8 project creation level (NULL: the instance's default),
-- $9 default branch protection (JSON; NULL: the instance's)
WITH new_id AS (SELECT nextval(pg_get_serial_sequence('namespaces', 'id')) AS id)
INSERT INTO namespaces (id, name, path, type, owner_id, parent_id, traversal_ids, visibility_level, description,
                        project_creation_level, default_branch_protection_defaults)
SELECT new_id.id, $1, $2, $3, $4, $5,
       COALESCE((SELECT traversal_ids FROM namespaces WHERE id = $5::bigint), '{}') || new_id.id,
       $6, $7, $8, $9::text::jsonb
FROM new_id
RETURNING id;

-- name: find_namespace^
-- A namespace with its full path and full name (and, as Group#project_creation_level, its own
-- project creation level or else the instance's default).
-- $1 namespace id
SELECT n.id, n.name, n.path, n.type, n.owner_id, n.parent_id, n.traversal_ids, n.visibility_level, n.description,
       COALESCE(n.project_creation_level, (SELECT s.default_project_creation FROM application_settings s WHERE s.id = 1))
       AS project_creation_level,
       default_branch_protection_of(n.type, n.default_branch_protection_defaults)::text AS default_branch_protection,
       n.created_at, r.path AS full_path, r.name AS full_name
FROM namespaces n
JOIN routes r ON r.source_type = 'Namespace' AND r.source_id = n.id
WHERE n.id = $1;

-- name: find_namespace_by_path^
-- A namespace by full path, ignoring case, following redirects left by renames.
-- $1 full path
SELECT n.id, n.name, n.path, n.type, n.owner_id, n.parent_id, n.traversal_ids, n.visibility_level, n.description,
       COALESCE(n.project_creation_level, (SELECT s.default_project_creation FROM application_settings s WHERE s.id = 1))
       AS project_creation_level,
       default_branch_protection_of(n.type, n.default_branch_protection_defaults)::text AS default_branch_protection,
       n.created_at, r.path AS full_path, r.name AS full_name
FROM namespaces n
JOIN routes r ON r.source_type = 'Namespace' AND r.source_id = n.id
WHERE n.id = COALESCE(
    (SELECT source_id FROM routes WHERE source_type = 'Namespace' AND lower(path) = lower($1)),
    (SELECT source_id FROM redirect_routes WHERE source_type = 'Namespace' AND lower(path) = lower($1)));

-- name: list_groups
-- Groups whose name or path contains the search text, by name (GitLab's default order), one page.
-- $1 search text, $2 limit, $3 offset
WITH matched AS (
    SELECT n.id, n.name, n.path, n.type, n.owner_id, n.parent_id, n.traversal_ids, n.visibility_level,
           n.description,
           COALESCE(n.project_creation_level, (SELECT s.default_project_creation FROM application_settings s WHERE s.id = 1))
               AS project_creation_level,
       default_branch_protection_of(n.type, n.default_branch_protection_defaults)::text AS default_branch_protection,
       n.created_at, r.path AS full_path, r.name AS full_name
    FROM namespaces n
    JOIN routes r ON r.source_type = 'Namespace' AND r.source_id = n.id
    WHERE n.type = 'Group'
      AND ($1::text IS NULL OR n.name ILIKE contains_pattern($1::text) OR n.path ILIKE contains_pattern($1::text))
)
SELECT total.total, page.*
FROM (SELECT count(*) AS total FROM matched) total
LEFT JOIN LATERAL (SELECT * FROM matched ORDER BY name, id LIMIT $2 OFFSET $3) page ON true;

-- name: list_subgroups
-- The direct subgroups of a group, by name, one page of them.
-- $1 parent id, $2 limit, $3 offset
WITH matched AS (
    SELECT n.id, n.name, n.path, n.type, n.owner_id, n.parent_id, n.traversal_ids, n.visibility_level,
           n.description,
           COALESCE(n.project_creation_level, (SELECT s.default_project_creation FROM application_settings s WHERE s.id = 1))
               AS project_creation_level,
       default_branch_protection_of(n.type, n.default_branch_protection_defaults)::text AS default_branch_protection,
       n.created_at, r.path AS full_path, r.name AS full_name
    FROM namespaces n
    JOIN routes r ON r.source_type = 'Namespace' AND r.source_id = n.id
    WHERE n.type = 'Group' AND n.parent_id = $1
)
SELECT total.total, page.*
FROM (SELECT count(*) AS total FROM matched) total
LEFT JOIN LATERAL (SELECT * FROM matched ORDER BY name, id LIMIT $2 OFFSET $3) page ON true;

-- Every lock on namespaces is taken from the root down (a parent before its child), so that two
-- transactions locking overlapping chains wait for each other instead of deadlocking.

-- name: lock_namespace!
-- A rename or transfer of a namespace: its row, for the transaction, after lock_namespace_path of
-- its parent. Creations under it (lock_namespace_path) wait for the change, or it for them.
-- $1 namespace id
SELECT 1 FROM namespaces WHERE id = $1 FOR UPDATE;

-- name: lock_namespace_path!
-- Before a project, subgroup or membership is created in a namespace: the namespace and its
-- ancestors, root first, so that a rename, transfer or deletion of any of them waits for this
-- creation and then sees its rows, or this creation waits for it and then reads the new full path
-- (or finds the namespace gone). Creations in one namespace do not wait for each other.
-- $1 namespace id
SELECT 1 FROM namespaces
WHERE id = ANY ((SELECT traversal_ids FROM namespaces WHERE id = $1)::bigint[])
ORDER BY array_length(traversal_ids, 1)
FOR SHARE;

-- name: lock_namespace_subtree!
-- Before a namespace is deleted: it, its descendants (root first) and the projects under them, so
-- that a membership, project or subgroup being added anywhere in it commits first (and is then
-- deleted with the rest) or waits and finds it gone; nothing is left pointing at a deleted row.
-- Both sets are counted so that both are locked whatever the plan: a CTE is run only as far as
-- the query reads it, and a plan that found no project under the namespace first never ran the
-- namespaces' FOR UPDATE at all (a membership added in the group meanwhile was then not waited for).
-- $1 namespace id
WITH locked_namespaces AS (
    SELECT id FROM namespaces WHERE $1 = ANY (traversal_ids)
    ORDER BY array_length(traversal_ids, 1), id
    FOR UPDATE
),
locked_projects AS (
    SELECT id FROM projects WHERE namespace_id IN (SELECT id FROM locked_namespaces) ORDER BY id FOR UPDATE
)
SELECT (SELECT count(*) FROM locked_namespaces) AS namespaces, (SELECT count(*) FROM locked_projects) AS projects;

-- name: update_namespace!
-- Changes a namespace's name, path, visibility, description, project creation level or default
-- branch protection; NULL keeps the current value.
-- $1 id, $2 name, $3 path, $4 visibility level, $5 description, $6 project creation level,
-- $7 default branch protection (JSON)
UPDATE namespaces SET
    name = COALESCE($2, name),
    path = COALESCE($3, path),
    visibility_level = COALESCE($4, visibility_level),
    description = COALESCE($5, description),
    project_creation_level = COALESCE($6, project_creation_level),
    default_branch_protection_defaults = COALESCE($7::text::jsonb, default_branch_protection_defaults),
    updated_at = now()
WHERE id = $1;

-- name: delete_namespace!
-- A group; subgroups and projects go with it (foreign keys cascade). Their routes and memberships
-- have no foreign key: delete_routes_of and delete_memberships_of remove them first (namespace_subtree
-- lists them), in the same transaction.
-- $1 namespace id
DELETE FROM namespaces WHERE id = $1;

-- name: namespace_subtree^
-- A namespace, its descendants and every project under them: the sources whose routes and
-- memberships must go before the namespace is deleted.
-- $1 namespace id
SELECT ARRAY(SELECT n.id FROM namespaces n WHERE $1 = ANY (n.traversal_ids)) AS namespace_ids,
       ARRAY(SELECT p.id FROM projects p JOIN namespaces n ON n.id = p.namespace_id
             WHERE $1 = ANY (n.traversal_ids)) AS project_ids;

-- name: visibility_above^
-- Whether a group holds projects or direct subgroups more visible than a level: Group's
-- visibility_level_allowed_by_projects and _by_sub_groups, which refuse to lower the group below
-- them (/internal/allowed reads each project's own level, so a hidden group must not hold one
-- readable by anyone). Projects being deleted do not count, as in GitLab.
-- $1 group id, $2 visibility level
SELECT EXISTS (SELECT 1 FROM projects
               WHERE namespace_id = $1 AND visibility_level > $2 AND NOT pending_delete) AS projects_above,
       EXISTS (SELECT 1 FROM namespaces
               WHERE parent_id = $1 AND type = 'Group' AND visibility_level > $2) AS subgroups_above;
