-- Admin API: users, their SSH keys and personal access tokens (GitLab lib/api/users.rb, keys.rb,
-- personal_access_tokens.rb). Lists return one row even when the page is empty: `total` is the
-- match count for the pagination headers, and the item columns are NULL on that filler row.

-- name: admin_find_user
-- A user with the fields of GitLab's UserWithAdmin entity and its personal namespace.
-- $1 user id
SELECT u.id, u.username, u.email, u.name, u.state, u.user_type, u.admin, u.external, u.can_create_group,
       u.projects_limit, u.confirmed_at, u.created_at, u.last_activity_on, u.otp_required_for_login,
       n.id AS namespace_id
FROM users u
LEFT JOIN namespaces n ON n.owner_id = u.id AND n.type = 'User'
WHERE u.id = $1;

-- name: admin_list_users
-- Users by exact username (case-insensitive) and/or a search over name, username and e-mail,
-- optionally only active or only blocked ones, newest first (GitLab's order_by id, sort desc),
-- one page of them.
-- $1 username, $2 search text, $3 only active, $4 only blocked, $5 limit, $6 offset
WITH matched AS (
    SELECT u.id, u.username, u.email, u.name, u.state, u.user_type, u.admin, u.external, u.can_create_group,
           u.projects_limit, u.confirmed_at, u.created_at, u.last_activity_on, u.otp_required_for_login,
           n.id AS namespace_id
    FROM users u
    LEFT JOIN namespaces n ON n.owner_id = u.id AND n.type = 'User'
    WHERE ($1::text IS NULL OR lower(u.username) = lower($1::text))
      AND ($2::text IS NULL
           OR u.username ILIKE '%' || $2::text || '%'
           OR u.name ILIKE '%' || $2::text || '%'
           OR ($7::boolean AND lower(u.email) = lower($2::text)))
      AND (NOT $3::boolean OR u.state = 'active')
      AND (NOT $4::boolean OR u.state IN ('blocked', 'ldap_blocked'))
)
SELECT total.total, page.*
FROM (SELECT count(*) AS total FROM matched) total
LEFT JOIN LATERAL (SELECT * FROM matched ORDER BY id DESC LIMIT $5 OFFSET $6) page ON true;

-- name: admin_user_conflicts
-- Which of a username and an e-mail address other users already have (GitLab answers these 409).
-- $1 username, $2 email, $3 user id to ignore (the one being edited)
SELECT EXISTS (SELECT 1 FROM users WHERE lower(username) = lower($1::text) AND id IS DISTINCT FROM $3::bigint)
           AS username_taken,
       EXISTS (SELECT 1 FROM users WHERE lower(email) = lower($2::text) AND id IS DISTINCT FROM $3::bigint)
           AS email_taken;

-- name: admin_insert_user
-- A user row; the caller adds its namespace and route in the same transaction.
-- $1 username, $2 email, $3 name, $4 password hash, $5 admin, $6 can_create_group, $7 external,
-- $8 projects_limit, $9 confirmed
INSERT INTO users (username, email, name, encrypted_password, admin, can_create_group, external, projects_limit,
                   confirmed_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, CASE WHEN $9::boolean THEN now() END)
RETURNING id;

-- name: admin_update_user
-- Changes the given attributes of a user; NULL keeps the current value.
-- $1 id, $2 username, $3 email, $4 name, $5 password hash, $6 admin, $7 can_create_group,
-- $8 external, $9 projects_limit
UPDATE users SET
    username = COALESCE($2, username),
    email = COALESCE($3, email),
    name = COALESCE($4, name),
    encrypted_password = COALESCE($5, encrypted_password),
    admin = COALESCE($6, admin),
    can_create_group = COALESCE($7, can_create_group),
    external = COALESCE($8, external),
    projects_limit = COALESCE($9, projects_limit),
    updated_at = now()
WHERE id = $1;

-- name: admin_set_user_state
-- Block, unblock, deactivate, activate or approve a user.
-- $1 id, $2 new state
UPDATE users SET state = $2, updated_at = now() WHERE id = $1;

-- name: admin_delete_user_paths
-- Before a user is deleted: the routes, redirects and memberships of its personal namespace and of
-- the projects in it (these tables reference their source by type and id, without a foreign key).
-- $1 user id
WITH ns AS (
    SELECT id FROM namespaces WHERE owner_id = $1 AND type = 'User'
), project_ids AS (
    SELECT p.id FROM projects p JOIN ns ON p.namespace_id = ns.id
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

-- name: admin_keep_deploy_keys_of_user
-- Before a user is deleted: the deploy keys they created stay, without a creator (GitLab's User
-- has_many :deploy_keys, dependent: :nullify); the foreign key alone would delete them.
-- $1 user id
UPDATE keys SET user_id = NULL WHERE user_id = $1 AND type = 'DeployKey';

-- name: admin_delete_user
-- A user; keys, tokens, memberships and the personal namespace with its projects go with it.
-- $1 user id
DELETE FROM users WHERE id = $1;

-- name: admin_find_key
-- An SSH key or deploy key by id.
-- $1 key id
SELECT id, user_id, type, key, title, key_type, bits, fingerprint, fingerprint_sha256, usage_type, expires_at,
       last_used_at, created_at, public
FROM keys WHERE id = $1;

-- name: admin_find_key_by_fingerprint
-- A key by its SHA-256 fingerprint (base64, unpadded) or its MD5 fingerprint (colon hex).
-- $1 sha256 fingerprint or NULL, $2 md5 fingerprint or NULL
SELECT id, user_id, type, key, title, key_type, bits, fingerprint, fingerprint_sha256, usage_type, expires_at,
       last_used_at, created_at, public
FROM keys
WHERE fingerprint_sha256 = $1::text OR lower(fingerprint) = lower($2::text)
ORDER BY id
LIMIT 1;

-- name: admin_list_user_keys
-- A user's own SSH keys (not deploy keys), oldest first, one page of them.
-- $1 user id, $2 limit, $3 offset
WITH matched AS (
    SELECT id, user_id, type, key, title, key_type, bits, fingerprint, fingerprint_sha256, usage_type, expires_at,
           last_used_at, created_at, public
    FROM keys WHERE user_id = $1 AND type IS NULL
)
SELECT total.total, page.*
FROM (SELECT count(*) AS total FROM matched) total
LEFT JOIN LATERAL (SELECT * FROM matched ORDER BY id LIMIT $2 OFFSET $3) page ON true;

-- name: admin_key_fingerprint_taken
-- Whether any key (user or deploy key) already has this SHA-256 fingerprint.
-- $1 fingerprint_sha256
SELECT EXISTS (SELECT 1 FROM keys WHERE fingerprint_sha256 = $1);

-- name: admin_delete_user_key
-- One of a user's SSH keys; returns its id when it existed.
-- $1 user id, $2 key id
DELETE FROM keys WHERE user_id = $1 AND id = $2 AND type IS NULL RETURNING id;

-- name: admin_find_token
-- A personal access token by id (never its digest).
-- $1 token id
SELECT id, user_id, name, scopes, expires_at, revoked, impersonation, created_at, last_used_at
FROM personal_access_tokens WHERE id = $1;

-- name: admin_list_tokens
-- Personal access tokens, optionally of one user, revoked or not, active (not revoked and not
-- expired) or inactive, oldest first, one page of them.
-- $1 user id, $2 revoked, $3 state ('active' | 'inactive'), $4 limit, $5 offset
WITH matched AS (
    SELECT id, user_id, name, scopes, expires_at, revoked, impersonation, created_at, last_used_at
    FROM personal_access_tokens
    WHERE ($1::bigint IS NULL OR user_id = $1::bigint)
      AND ($2::boolean IS NULL OR revoked = $2::boolean)
      AND ($3::text IS NULL
           OR ($3::text = 'active') = (NOT revoked AND (expires_at IS NULL OR expires_at > current_date)))
)
SELECT total.total, page.*
FROM (SELECT count(*) AS total FROM matched) total
LEFT JOIN LATERAL (SELECT * FROM matched ORDER BY id LIMIT $4 OFFSET $5) page ON true;

-- name: admin_revoke_token
-- Revokes a personal access token (the row stays, as in GitLab).
-- $1 token id
UPDATE personal_access_tokens SET revoked = true, updated_at = now() WHERE id = $1;
