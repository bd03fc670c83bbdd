-- members: memberships of groups and projects (GitLab lib/api/members.rb).
-- Lists of the admin API return one row even when the page is empty: `total` is the match count
-- for the pagination headers, and the item columns are NULL on that filler row (see rows.paged).

-- name: list_members
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

-- name: find_member^
-- One direct member of a group or project.
-- $1 source type, $2 source id, $3 user id
SELECT m.id AS member_id, u.id, u.username, u.name, u.state, m.access_level, m.expires_at, m.created_at,
       m.created_by_id, m.state AS membership_state
FROM members m
JOIN users u ON u.id = m.user_id
WHERE m.source_type = $1 AND m.source_id = $2 AND m.user_id = $3 AND m.requested_at IS NULL;

-- name: insert_member<!
-- A membership; nothing when the user is already a member (the caller answers 409).
-- $1 user id, $2 source type, $3 source id, $4 access level, $5 expires_at, $6 created by
INSERT INTO members (user_id, source_type, source_id, access_level, expires_at, created_by_id)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (user_id, source_type, source_id) DO NOTHING
RETURNING id;

-- name: update_member<!
-- A member's access level and expiry.
-- $1 source type, $2 source id, $3 user id, $4 access level, $5 expires_at
UPDATE members SET access_level = $4, expires_at = $5, updated_at = now()
WHERE source_type = $1 AND source_id = $2 AND user_id = $3
RETURNING id;

-- name: delete_member<!
-- Removes a member.
-- $1 source type, $2 source id, $3 user id
DELETE FROM members WHERE source_type = $1 AND source_id = $2 AND user_id = $3 RETURNING id;

-- name: count_other_group_owners$
-- How many owners a group has besides this user (a group must keep at least one).
-- $1 group id, $2 user id
SELECT count(*) FROM members
WHERE source_type = 'Namespace' AND source_id = $1 AND user_id <> $2
  AND access_level = 50 AND state = 'active' AND requested_at IS NULL;

-- name: groups_owned_by
-- The groups this user owns, in id order (the order their owner locks are taken in).
-- $1 user id
SELECT source_id FROM members
WHERE user_id = $1 AND source_type = 'Namespace' AND access_level = 50
ORDER BY source_id;

-- name: groups_solely_owned_by
-- The groups this user is the only owner of, root first (such a user cannot be deleted, unless
-- hard_delete deletes these groups too). An owner of a group above counts as another owner, as in
-- GitLab (Users::DestroyService keeps a subgroup whose parent has another owner).
-- $1 user id
SELECT m.source_id FROM members m
JOIN namespaces g ON g.id = m.source_id
WHERE m.user_id = $1 AND m.source_type = 'Namespace' AND m.access_level = 50
  AND NOT EXISTS (SELECT 1 FROM members o
                  WHERE o.source_type = 'Namespace' AND o.source_id = ANY (g.traversal_ids) AND o.user_id <> $1
                    AND o.access_level = 50 AND o.state = 'active' AND o.requested_at IS NULL)
ORDER BY array_length(g.traversal_ids, 1), g.id;

-- name: delete_memberships_of!
-- Before namespaces or projects are deleted: their memberships.
-- $1 namespace ids, $2 project ids
DELETE FROM members
WHERE (source_type = 'Namespace' AND source_id = ANY ($1::bigint[]))
   OR (source_type = 'Project' AND source_id = ANY ($2::bigint[]));

-- name: lock_group_owners!
-- Serialises owner changes of one group until the end of the transaction, so that two concurrent
-- demotions or removals cannot each count the other as the remaining owner.
-- $1 the advisory lock space of group owner changes, $2 group id
SELECT pg_advisory_xact_lock($1, $2);
