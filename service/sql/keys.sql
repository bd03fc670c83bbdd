-- name: find_auth_keys_by_fingerprints
-- SSH keys usable for authentication, by SHA-256 fingerprint (AuthorizedKeysCommand), with the
-- owner's name for the key comment: one row per requested fingerprint, in request order, all
-- NULL where none matched (batched, see service/db/batch.py).
-- $1 fingerprint_sha256 values (base64, no padding)
SELECT k.id, k.title, k.key, k.created_at, k.expires_at, k.usage_type, u.name AS user_name
FROM unnest($1::text[]) WITH ORDINALITY AS req(fingerprint, n)
LEFT JOIN keys k ON k.fingerprint_sha256 = req.fingerprint AND k.usage_type IN ('auth', 'auth_and_signing')
LEFT JOIN users u ON u.id = k.user_id
ORDER BY req.n;

-- name: find_key_actor
-- A key (user key or deploy key) and its user, for the shell endpoints that act on a key's owner.
-- Touches last_used_at at most once a day.
-- $1 key id
WITH touched AS (
    UPDATE keys SET last_used_at = now()
    WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '1 day')
    RETURNING id
)
SELECT k.id AS key_id, k.type AS key_class, k.fingerprint_sha256, u.id AS user_id, u.username, u.name,
       u.state, u.user_type, u.otp_required_for_login, u.encrypted_password, u.admin
FROM keys k
LEFT JOIN users u ON u.id = k.user_id
WHERE k.id = $1 AND k.usage_type IN ('auth', 'auth_and_signing');

-- name: insert_key
-- A user key or deploy key; fingerprints are computed by the caller from the key text.
-- $1 user id, $2 type, $3 key, $4 title, $5 key_type, $6 bits, $7 md5, $8 sha256, $9 usage_type, $10 expires_at
INSERT INTO keys (user_id, type, key, title, key_type, bits, fingerprint, fingerprint_sha256, usage_type, expires_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
RETURNING id, user_id, type, key, title, key_type, bits, fingerprint, fingerprint_sha256, usage_type,
          expires_at, last_used_at, created_at, public;
