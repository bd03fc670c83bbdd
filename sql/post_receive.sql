-- name: post_receive_context
-- What the post-receive answer needs, in one round trip: the pusher (from the identifier
-- user-<id>, key-<id> for a user's own key, or username-<name>), the project, the pusher's access
-- level in it, the banner broadcast to show, and the open merge requests of the pushed branches.
-- $1 project id, $2 user id, $3 key id, $4 username, $5 pushed branch names
WITH pusher AS (
    SELECT u.id FROM users u
    WHERE u.id = $2::bigint
       OR u.id = (SELECT user_id FROM keys WHERE id = $3::bigint AND type IS NULL)
       OR lower(u.username) = lower($4::text)
    LIMIT 1
),
project AS (
    SELECT p.*, route.path AS full_path, n.traversal_ids, n.type AS namespace_type, n.owner_id AS namespace_owner_id
    FROM projects p
    JOIN routes route ON route.source_type = 'Project' AND route.source_id = p.id
    JOIN namespaces n ON n.id = p.namespace_id
    WHERE p.id = $1::bigint
),
access AS (
    SELECT GREATEST(
        (SELECT 50 FROM project WHERE namespace_type = 'User' AND namespace_owner_id = (SELECT id FROM pusher)),
        (SELECT max(m.access_level) FROM members m, project p
          WHERE m.user_id = (SELECT id FROM pusher) AND m.state = 'active' AND m.requested_at IS NULL
            AND (m.expires_at IS NULL OR m.expires_at > current_date)
            AND ((m.source_type = 'Project' AND m.source_id = p.id)
              OR (m.source_type = 'Namespace' AND m.source_id = ANY (p.traversal_ids))))
    ) AS level
)
SELECT
    (SELECT id FROM pusher) AS user_id,
    p.id AS project_id,
    p.full_path,
    p.default_branch,
    p.printing_merge_request_link_enabled,
    p.merge_requests_access_level,
    (SELECT level FROM access) AS access_level,
    (SELECT b.message FROM broadcast_messages b
      WHERE b.broadcast_type = 'banner' AND b.show_in_cli AND now() >= b.starts_at AND now() < b.ends_at
        AND (b.target_path = '' OR coalesce(p.full_path, '') ILIKE replace(replace(b.target_path, '%', '\%'), '*', '%'))
        AND (cardinality(b.target_access_levels) = 0 OR (SELECT level FROM access) = ANY (b.target_access_levels))
      ORDER BY (b.target_path <> '') DESC, b.id DESC
      LIMIT 1) AS broadcast_message,
    (SELECT coalesce(json_agg(json_build_object('source_branch', mr.source_branch, 'iid', mr.iid,
                                               'target_path', target.path) ORDER BY mr.id), '[]')
       FROM merge_requests mr
       JOIN routes target ON target.source_type = 'Project' AND target.source_id = mr.target_project_id
      WHERE mr.source_project_id = p.id AND mr.state = 'opened' AND mr.source_branch = ANY ($5::text[])
    )::text AS open_merge_requests
FROM (SELECT 1) AS one
LEFT JOIN project p ON true;

-- name: adopt_default_branch
-- The first push to an empty project makes a branch its default (GitLab's PostReceive does this):
-- the instance's default branch name if it was pushed, else the first branch pushed.
-- $1 project id, $2 pushed branch names in push order
UPDATE projects p
SET default_branch = coalesce(
        (SELECT s.default_branch_name FROM application_settings s WHERE s.default_branch_name = ANY ($2::text[])),
        ($2::text[])[1]),
    updated_at = now()
WHERE p.id = $1 AND p.default_branch IS NULL AND cardinality($2::text[]) > 0
RETURNING p.default_branch;
