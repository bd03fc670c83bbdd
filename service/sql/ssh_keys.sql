-- keys: users' SSH keys and deploy keys (GitLab lib/api/keys.rb, users.rb).
-- Lists of the admin API return one row even when the page is empty: `total` is the match count
-- for the pagination headers, and the item columns are NULL on that filler row (see rows.paged).

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

-- name: find_key_actor^
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

-- name: insert_key<!
-- A user key or deploy key; fingerprints are computed by the caller from the key text.
-- $1 user id, $2 type, $3 key, $4 title, $5 key_type, $6 bits, $7 md5, $8 sha256, $9 usage_type, $10 expires_at
INSERT INTO keys (user_id, type, key, title, key_type, bits, fingerprint, fingerprint_sha256, usage_type, expires_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
RETURNING id, user_id, type, key, title, key_type, bits, fingerprint, fingerprint_sha256, usage_type,
          expires_at, last_used_at, created_at, public;

-- name: keep_deploy_keys_of_user!
-- Before a user is deleted: the deploy keys they created stay, without a creator (GitLab's User
-- has_many :deploy_keys, dependent: :nullify); the foreign key alone would delete them.
-- $1 user id
UPDATE keys SET user_id = NULL WHERE user_id = $1 AND type = 'DeployKey';

-- name: find_key^
-- An SSH key or deploy key by id.
-- $1 key id
SELECT id, user_id, type, key, title, key_type, bits, fingerprint, fingerprint_sha256, usage_type, expires_at,
       last_used_at, created_at, public
FROM keys WHERE id = $1;

-- name: find_key_by_fingerprint^
-- A key by its SHA-256 fingerprint (base64, unpadded) or its MD5 fingerprint (colon hex).
-- $1 sha256 fingerprint or NULL, $2 md5 fingerprint or NULL
SELECT id, user_id, type, key, title, key_type, bits, fingerprint, fingerprint_sha256, usage_type, expires_at,
       last_used_at, created_at, public
FROM keys
WHERE fingerprint_sha256 = $1::text OR lower(fingerprint) = lower($2::text)
ORDER BY id
LIMIT 1;

-- name: list_user_keys
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

-- name: key_fingerprint_taken$
-- Whether any key (user or deploy key) already has this SHA-256 fingerprint.
-- $1 fingerprint_sha256
SELECT EXISTS (SELECT 1 FROM keys WHERE fingerprint_sha256 = $1);

-- name: delete_user_key<!
-- One of a user's SSH keys; returns its id when it existed.
-- $1 user id, $2 key id
DELETE FROM keys WHERE user_id = $1 AND id = $2 AND type IS NULL RETURNING id;

-- name: delete_orphaned_deploy_key!
-- A deploy key that no project uses any more, unless it is public
-- (DeployKeysProject#destroy_orphaned_deploy_key).
-- $1 key id
DELETE FROM keys k
WHERE k.id = $1 AND NOT k.public
  AND NOT EXISTS (SELECT 1 FROM deploy_keys_projects d WHERE d.deploy_key_id = k.id);
