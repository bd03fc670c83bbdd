-- name: list_events
-- Push events for GitLab's Events API, with their author and the total. Filters (NULL = any):
-- $1 project id, $2 author id, $3 action, $4 created before (date, exclusive), $5 created after
-- (date, exclusive), $6 true = oldest first, $7 limit, $8 offset, $9 the viewer's id (NULL: an
-- administrator, who sees every event; anyone else sees their own events and those of public projects)
SELECT e.id, e.project_id, e.action, e.author_id, e.created_at, e.push_action, e.ref_type, e.ref,
       e.commit_from, e.commit_to, e.commit_count, e.commit_title, e.ref_count,
       u.name AS author_name, u.username AS author_username, u.state AS author_state,
       count(*) OVER () AS total
FROM events e
JOIN users u ON u.id = e.author_id
LEFT JOIN projects p ON p.id = e.project_id
WHERE ($1::bigint IS NULL OR e.project_id = $1)
  AND ($2::bigint IS NULL OR e.author_id = $2)
  AND ($3::text IS NULL OR e.action = $3)
  AND ($4::date IS NULL OR e.created_at < $4::date)
  AND ($5::date IS NULL OR e.created_at >= $5::date + 1)
  AND ($9::bigint IS NULL OR e.author_id = $9 OR p.visibility_level = 20)
ORDER BY CASE WHEN $6::boolean THEN e.id END ASC, e.id DESC
LIMIT $7 OFFSET $8;
