-- name: git_access_contexts
-- Everything /internal/allowed needs, for a batch of requests in one round trip (one row per
-- request, in request order): the actor (a key by id, or a user by id, by username or as the owner
-- of a key), the project (by id, or by full path, following redirects from old paths), the actor's
-- access level in it, and whether a deploy key is enabled on it. Keys' last_used_at is touched
-- here too, at most once a day, as GitLab does.
-- $1 key ids, $2 user ids, $3 usernames, $4 key ids whose owner is the actor, $5 project ids, $6 full paths
WITH req AS (
    SELECT *
    FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::bigint[], $5::bigint[], $6::text[])
        WITH ORDINALITY AS r(key_id, user_id, username, owner_of_key_id, project_id, project_path, n)
),
touched_keys AS (
    UPDATE keys SET last_used_at = now()
    WHERE id IN (SELECT key_id FROM req WHERE key_id IS NOT NULL)
      AND (last_used_at IS NULL OR last_used_at < now() - interval '1 day')
    RETURNING id
)
SELECT
    k.id AS key_id,
    k.type AS key_class,
    k.expires_at AS key_expires_at,
    k.key_type,
    k.bits AS key_bits,
    k.fingerprint_sha256 AS key_fingerprint_sha256,
    u.id AS user_id,
    u.username,
    u.name AS user_name,
    u.state AS user_state,
    u.user_type,
    u.admin AS user_admin,
    u.external AS user_external,
    u.confirmed_at IS NOT NULL AS user_confirmed,
    u.password_expires_at AS user_password_expires_at,
    u.terms_accepted AS user_terms_accepted,
    u.encrypted_password AS user_encrypted_password,
    u.last_activity_on AS user_last_activity_on,
    p.id AS project_id,
    p.name AS project_name,
    route.path AS project_full_path,
    n.traversal_ids[1] AS root_namespace_id,
    p.visibility_level,
    p.archived,
    p.repository_read_only,
    p.repository_storage,
    p.legacy_disk_path,
    p.repository_exists,
    p.lfs_enabled,
    p.default_branch,
    p.repository_access_level,
    p.wiki_access_level,
    ref.redirected_from,
    GREATEST(
        CASE WHEN n.type = 'User' AND n.owner_id = u.id THEN 50 END,
        (SELECT max(m.access_level) FROM members m
          WHERE m.user_id = u.id AND m.state = 'active' AND m.requested_at IS NULL
            AND (m.expires_at IS NULL OR m.expires_at > current_date)
            AND ((m.source_type = 'Project' AND m.source_id = p.id)
              OR (m.source_type = 'Namespace' AND m.source_id = ANY (n.traversal_ids))))
    ) AS access_level,
    dkp.can_push AS deploy_key_can_push
FROM req
LEFT JOIN keys k ON k.id = req.key_id AND k.usage_type IN ('auth', 'auth_and_signing')
LEFT JOIN users u ON u.id = COALESCE(
    k.user_id,
    req.user_id,
    (SELECT by_name.id FROM users by_name WHERE lower(by_name.username) = lower(req.username)),
    (SELECT owned.user_id FROM keys owned WHERE owned.id = req.owner_of_key_id))
LEFT JOIN LATERAL (
    SELECT by_id.id, NULL::text AS redirected_from FROM projects by_id WHERE by_id.id = req.project_id
    UNION ALL
    (SELECT r.source_id, NULL::text FROM routes r
      WHERE req.project_id IS NULL AND r.source_type = 'Project' AND lower(r.path) = lower(req.project_path)
     UNION ALL
     SELECT rr.source_id, rr.path FROM redirect_routes rr
      WHERE req.project_id IS NULL AND rr.source_type = 'Project' AND lower(rr.path) = lower(req.project_path)
     LIMIT 1)
) ref ON true
LEFT JOIN projects p ON p.id = ref.id AND NOT p.pending_delete
LEFT JOIN routes route ON route.source_type = 'Project' AND route.source_id = p.id
LEFT JOIN namespaces n ON n.id = p.namespace_id
LEFT JOIN deploy_keys_projects dkp ON dkp.deploy_key_id = k.id AND dkp.project_id = p.id
ORDER BY req.n;

-- name: namespace_for_project_creation^
-- The namespace a push would auto-create a project in, the pusher's access level there, who may
-- create projects in it (a group's own level, else the instance's default), and the pusher's
-- personal projects against their projects_limit (User#projects_limit_left).
-- $1 namespace full path, $2 user id
SELECT
    n.id,
    n.type,
    n.owner_id,
    route.path AS full_path,
    n.traversal_ids,
    (SELECT max(m.access_level) FROM members m
      WHERE m.user_id = $2 AND m.state = 'active' AND m.requested_at IS NULL
        AND (m.expires_at IS NULL OR m.expires_at > current_date)
        AND m.source_type = 'Namespace' AND m.source_id = ANY (n.traversal_ids)) AS access_level,
    COALESCE(n.project_creation_level,
             (SELECT s.default_project_creation FROM application_settings s WHERE s.id = 1)) AS project_creation_level,
    (SELECT count(*) FROM projects p JOIN namespaces personal ON personal.id = p.namespace_id
      WHERE personal.type = 'User' AND personal.owner_id = $2 AND NOT p.pending_delete) AS personal_projects,
    (SELECT u.projects_limit FROM users u WHERE u.id = $2) AS projects_limit
FROM routes route
JOIN namespaces n ON n.id = route.source_id
WHERE route.source_type = 'Namespace' AND lower(route.path) = lower($1);

-- name: protected_refs_for_project
-- The protected branch and tag rules of a project with their access levels, for the change checks.
-- $1 project id
SELECT
    'branch' AS ref_kind,
    pb.name,
    pb.allow_force_push,
    al.kind,
    al.access_level,
    al.user_id,
    al.deploy_key_id
FROM protected_branches pb
LEFT JOIN protected_branch_access_levels al ON al.protected_branch_id = pb.id
WHERE pb.project_id = $1
UNION ALL
SELECT
    'tag',
    pt.name,
    false,
    'create',
    al.access_level,
    al.user_id,
    al.deploy_key_id
FROM protected_tags pt
LEFT JOIN protected_tag_create_access_levels al ON al.protected_tag_id = pt.id
WHERE pt.project_id = $1;

-- name: touch_user_activity!
-- users.last_activity_on, written at most once a day (Users::ActivityService).
-- $1 user id
UPDATE users SET last_activity_on = current_date
WHERE id = $1 AND (last_activity_on IS NULL OR last_activity_on < current_date);
