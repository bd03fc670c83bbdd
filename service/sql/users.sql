-- users and their personal access tokens (GitLab lib/api/users.rb, personal_access_tokens.rb).
-- Lists of the admin API return one row even when the page is empty: `total` is the match count
-- for the pagination headers, and the item columns are NULL on that filler row (see rows.paged).

-- name: find_user_by_id^
-- A user by id.
-- $1 user id
SELECT id, username, name, state, user_type, admin, otp_required_for_login, encrypted_password
FROM users WHERE id = $1;

-- name: find_user_by_username^
-- A user by username, ignoring case.
-- $1 username
SELECT id, username, name, state, user_type, admin, otp_required_for_login, encrypted_password
FROM users WHERE lower(username) = lower($1);

-- name: find_user_by_token_digest^
-- The owner of a personal access token, by the token's digest, with the token's state.
-- $1 token digest
SELECT t.id AS token_id, t.revoked, t.expires_at, t.scopes, u.id AS user_id, u.username, u.admin, u.state
FROM personal_access_tokens t
JOIN users u ON u.id = t.user_id
WHERE t.token_digest = $1;

-- name: replace_otp_backup_codes!
-- New recovery codes replace all old ones.
-- $1 user id, $2 JSON array of code digests
UPDATE users SET otp_backup_codes = $2::jsonb, updated_at = now() WHERE id = $1;

-- name: insert_personal_access_token<!
-- A personal access token; only its digest is stored.
-- $1 user id, $2 name, $3 digest, $4 scopes, $5 expires_at
INSERT INTO personal_access_tokens (user_id, name, token_digest, scopes, expires_at)
VALUES ($1, $2, $3, $4, $5)
RETURNING id, user_id, name, scopes, expires_at, revoked, impersonation, created_at, last_used_at;

-- name: find_user_for_actor^
-- The user behind the shell's actor parameters: an auth key's owner (a deploy key's creator),
-- a user id, a username, or the owner of the key in an identifier "key-<id>".
-- $1 key id, $2 user id, $3 username, $4 key id from an identifier
SELECT u.id, u.username, u.name, u.state, u.user_type, u.admin, u.otp_required_for_login, u.encrypted_password
FROM users u
WHERE u.id = (SELECT user_id FROM keys WHERE id = $1::bigint AND usage_type IN ('auth', 'auth_and_signing'))
   OR u.id = $2::bigint
   OR lower(u.username) = lower($3::text)
   OR u.id = (SELECT user_id FROM keys WHERE id = $4::bigint)
LIMIT 1;

-- name: find_user^
-- A user with the fields of GitLab's UserWithAdmin entity and its personal namespace.
-- $1 user id
SELECT u.id, u.username, u.email, u.name, u.state, u.user_type, u.admin, u.external, u.can_create_group,
       u.projects_limit, u.confirmed_at, u.created_at, u.last_activity_on, u.otp_required_for_login,
       n.id AS namespace_id
FROM users u
LEFT JOIN namespaces n ON n.owner_id = u.id AND n.type = 'User'
WHERE u.id = $1;

-- name: list_users
-- Users by exact username (case-insensitive) and/or a search over name, username and e-mail,
-- optionally only active or only blocked ones, only administrators, only external or only
-- non-external users (UsersFinder), newest first (GitLab's order_by id, sort desc), one page of them.
-- $1 username, $2 search text, $3 only active, $4 only blocked, $5 limit, $6 offset,
-- $7 search e-mail addresses too, $8 only admins, $9 only external, $10 only non-external
WITH matched AS (
    SELECT u.id, u.username, u.email, u.name, u.state, u.user_type, u.admin, u.external, u.can_create_group,
           u.projects_limit, u.confirmed_at, u.created_at, u.last_activity_on, u.otp_required_for_login,
           n.id AS namespace_id
    FROM users u
    LEFT JOIN namespaces n ON n.owner_id = u.id AND n.type = 'User'
    WHERE ($1::text IS NULL OR lower(u.username) = lower($1::text))
      AND ($2::text IS NULL
           OR u.username ILIKE contains_pattern($2::text)
           OR u.name ILIKE contains_pattern($2::text)
           OR ($7::boolean AND lower(u.email) = lower($2::text)))
      AND (NOT $3::boolean OR u.state = 'active')
      AND (NOT $4::boolean OR u.state IN ('blocked', 'ldap_blocked'))
      AND (NOT $8::boolean OR u.admin)
      AND (NOT $9::boolean OR u.external)
      AND (NOT $10::boolean OR NOT u.external)
)
SELECT total.total, page.*
FROM (SELECT count(*) AS total FROM matched) total
LEFT JOIN LATERAL (SELECT * FROM matched ORDER BY id DESC LIMIT $5 OFFSET $6) page ON true;

-- name: user_conflicts^
-- Which of a username and an e-mail address other users already have (GitLab answers these 409),
-- and whether the username is a top-level path already routed (a group's: 400). One statement, so
-- one snapshot: a user committed meanwhile shows in all three or in none (read one by one, its
-- route could show without its username, and the 409 became a 400).
-- $1 username, $2 email, $3 user id to ignore (the one being edited)
SELECT EXISTS (SELECT 1 FROM users WHERE lower(username) = lower($1::text) AND id IS DISTINCT FROM $3::bigint)
           AS username_taken,
       EXISTS (SELECT 1 FROM users WHERE lower(email) = lower($2::text) AND id IS DISTINCT FROM $3::bigint)
           AS email_taken,
       EXISTS (SELECT 1 FROM routes WHERE lower(path) = lower($1::text)) AS path_taken;

-- name: insert_user<!
-- A user row; the caller adds its namespace and route in the same transaction.
-- $1 username, $2 email, $3 name, $4 password hash, $5 admin, $6 can_create_group, $7 external,
-- $8 projects_limit, $9 confirmed
INSERT INTO users (username, email, name, encrypted_password, admin, can_create_group, external, projects_limit,
                   confirmed_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, CASE WHEN $9::boolean THEN now() END)
RETURNING id;

-- name: update_user!
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

-- name: set_user_state$
-- Block, unblock, deactivate, activate or approve a user; its id, or NULL when it is gone.
-- $1 id, $2 new state
UPDATE users SET state = $2, updated_at = now() WHERE id = $1 RETURNING id;

-- name: lock_user!
-- A change or deletion of a user, after its personal namespace's lock (namespaces come first, then
-- projects, then users, in every transaction that locks several): the row, so that a change and a
-- deletion of one user come one after the other and the second sees the first's result. NO KEY
-- UPDATE: rows that merely refer to the user (a project it creates, a membership) are not held up.
-- $1 user id
SELECT 1 FROM users WHERE id = $1 FOR NO KEY UPDATE;

-- name: delete_user!
-- A user; keys, tokens, memberships and the personal namespace with its projects go with it. Call
-- after the personal namespace's routes and memberships are gone and keep_deploy_keys_of_user.
-- $1 user id
DELETE FROM users WHERE id = $1;

-- name: find_personal_access_token^
-- A personal access token by id (never its digest).
-- $1 token id
SELECT id, user_id, name, scopes, expires_at, revoked, impersonation, created_at, last_used_at
FROM personal_access_tokens WHERE id = $1;

-- name: list_personal_access_tokens
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

-- name: revoke_personal_access_token!
-- Revokes a personal access token (the row stays, as in GitLab).
-- $1 token id
UPDATE personal_access_tokens SET revoked = true, updated_at = now() WHERE id = $1;
