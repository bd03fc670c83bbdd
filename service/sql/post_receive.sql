-- name: post_receive_contexts
-- What the post-receive answer needs, for a batch of pushes in one round trip (one row per push,
-- in order): the pusher (from the identifier user-<id>, key-<id> for a user's own key, or
-- username-<name>; for a deploy key, its creator), the project, the pusher's access level in it, the banner broadcast to show,
-- and the open merge requests of the pushed branches.
-- $1 project ids, $2 user ids, $3 key ids, $4 usernames, $5 pushed branch names (a JSON array per push)
WITH req AS (
    SELECT *
    FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::text[], $5::text[])
        WITH ORDINALITY AS r(project_id, user_id, key_id, username, branches, n)
)
SELECT
    pusher.id AS user_id,
    p.id AS project_id,
    route.path AS full_path,
    p.default_branch,
    p.printing_merge_request_link_enabled,
    p.merge_requests_access_level,
    access.level AS access_level,
    (SELECT b.message FROM broadcast_messages b
      WHERE b.broadcast_type = 'banner' AND b.show_in_cli AND now() >= b.starts_at AND now() < b.ends_at
        AND (b.target_path = '' OR coalesce(route.path, '') ILIKE replace(replace(b.target_path, '%', '\%'), '*', '%'))
        AND (cardinality(b.target_access_levels) = 0 OR access.level = ANY (b.target_access_levels))
      ORDER BY (b.target_path <> '') DESC, b.id DESC
      LIMIT 1) AS broadcast_message,
    (SELECT coalesce(json_agg(json_build_object('source_branch', mr.source_branch, 'iid', mr.iid,
                                               'target_path', target.path) ORDER BY mr.id), '[]')
       FROM merge_requests mr
       JOIN routes target ON target.source_type = 'Project' AND target.source_id = mr.target_project_id
      WHERE mr.source_project_id = p.id AND mr.state = 'opened'
        AND mr.source_branch IN (SELECT json_array_elements_text(req.branches::json))
    )::text AS open_merge_requests
FROM req
LEFT JOIN users pusher ON pusher.id = COALESCE(
    req.user_id,
    (SELECT owned.user_id FROM keys owned WHERE owned.id = req.key_id),
    (SELECT by_name.id FROM users by_name WHERE lower(by_name.username) = lower(req.username)))
LEFT JOIN projects p ON p.id = req.project_id
LEFT JOIN routes route ON route.source_type = 'Project' AND route.source_id = p.id
LEFT JOIN namespaces n ON n.id = p.namespace_id
LEFT JOIN LATERAL (
    SELECT GREATEST(
        CASE WHEN n.type = 'User' AND n.owner_id = pusher.id THEN 50 END,
        (SELECT max(m.access_level) FROM members m
          WHERE m.user_id = pusher.id AND m.state = 'active' AND m.requested_at IS NULL
            AND (m.expires_at IS NULL OR m.expires_at > current_date)
            AND ((m.source_type = 'Project' AND m.source_id = p.id)
              OR (m.source_type = 'Namespace' AND m.source_id = ANY (n.traversal_ids))))
    ) AS level
) access ON true
ORDER BY req.n;

-- name: adopt_default_branch<!
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
