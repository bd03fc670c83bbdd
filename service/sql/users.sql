-- name: find_user_by_id
-- A user by id.
-- $1 user id
SELECT id, username, name, state, user_type, admin, otp_required_for_login, encrypted_password
FROM users WHERE id = $1;

-- name: find_user_by_username
-- A user by username, ignoring case.
-- $1 username
SELECT id, username, name, state, user_type, admin, otp_required_for_login, encrypted_password
FROM users WHERE lower(username) = lower($1);

-- name: find_user_by_token_digest
-- The owner of a personal access token, by the token's digest, with the token's state.
-- $1 token digest
SELECT t.id AS token_id, t.revoked, t.expires_at, t.scopes, u.id AS user_id, u.username, u.admin, u.state
FROM personal_access_tokens t
JOIN users u ON u.id = t.user_id
WHERE t.token_digest = $1;

-- name: replace_otp_backup_codes
-- New recovery codes replace all old ones.
-- $1 user id, $2 JSON array of code digests
UPDATE users SET otp_backup_codes = $2::jsonb, updated_at = now() WHERE id = $1;

-- name: insert_personal_access_token
-- A personal access token; only its digest is stored.
-- $1 user id, $2 name, $3 digest, $4 scopes, $5 expires_at
INSERT INTO personal_access_tokens (user_id, name, token_digest, scopes, expires_at)
VALUES ($1, $2, $3, $4, $5)
RETURNING id, user_id, name, scopes, expires_at, revoked, impersonation, created_at, last_used_at;

-- name: find_user_for_actor
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
