-- Admin API: instance-wide records (GitLab lib/api/broadcast_messages.rb, settings.rb).

-- name: admin_list_broadcast_messages
-- Broadcast messages, newest first (BroadcastMessage.all.order_id_desc), one page of them.
-- $1 limit, $2 offset
WITH matched AS (
    SELECT id, message, starts_at, ends_at, broadcast_type, target_path, target_access_levels, show_in_cli,
           dismissable, theme
    FROM broadcast_messages
)
SELECT total.total, page.*
FROM (SELECT count(*) AS total FROM matched) total
LEFT JOIN LATERAL (SELECT * FROM matched ORDER BY id DESC LIMIT $1 OFFSET $2) page ON true;

-- name: admin_find_broadcast_message
-- One broadcast message.
-- $1 id
SELECT id, message, starts_at, ends_at, broadcast_type, target_path, target_access_levels, show_in_cli,
       dismissable, theme
FROM broadcast_messages WHERE id = $1;

-- name: admin_insert_broadcast_message
-- A broadcast message; NULL takes the column default.
-- $1 message, $2 starts_at, $3 ends_at, $4 type, $5 target path, $6 target access levels,
-- $7 show_in_cli, $8 dismissable, $9 theme
INSERT INTO broadcast_messages (message, starts_at, ends_at, broadcast_type, target_path, target_access_levels,
                                show_in_cli, dismissable, theme)
VALUES ($1, COALESCE($2::timestamptz, now()), COALESCE($3::timestamptz, COALESCE($2::timestamptz, now()) + interval '1 hour'),
        COALESCE($4::text, 'banner'), COALESCE($5::text, ''), COALESCE($6::integer[], '{}'),
        COALESCE($7::boolean, true), COALESCE($8::boolean, false), COALESCE($9::text, 'indigo'))
RETURNING id;

-- name: admin_update_broadcast_message
-- Changes the given attributes of a broadcast message; NULL keeps the current value.
-- $1 id, then as admin_insert_broadcast_message
UPDATE broadcast_messages SET
    message = COALESCE($2, message),
    starts_at = COALESCE($3::timestamptz, starts_at),
    ends_at = COALESCE($4::timestamptz, ends_at),
    broadcast_type = COALESCE($5, broadcast_type),
    target_path = COALESCE($6, target_path),
    target_access_levels = COALESCE($7::integer[], target_access_levels),
    show_in_cli = COALESCE($8, show_in_cli),
    dismissable = COALESCE($9, dismissable),
    theme = COALESCE($10, theme),
    updated_at = now()
WHERE id = $1
RETURNING id;

-- name: admin_delete_broadcast_message
-- Removes a broadcast message.
-- $1 id
DELETE FROM broadcast_messages WHERE id = $1 RETURNING id;

-- name: admin_update_application_settings
-- Changes the given instance settings; NULL keeps the current value, except that $19 = true clears
-- the error-tracking token digest and $20 = true clears the PAT lifetime limit (both may be unset).
-- $1 enabled_git_access_protocol, $2 receive_max_input_size, $3 gitlab_shell_operation_limit,
-- $4 require_personal_access_token_expiry, $5 max_personal_access_token_lifetime,
-- $6 personal_access_token_prefix, $7 error_tracking_enabled, $8 error_tracking_access_token_digest,
-- $9 admin_mode, $10 enforce_terms, $11 email_confirmation_setting, $12 two_factor_for_cli,
-- $13 default_branch_name, $14..$18 rsa, dsa, ecdsa, ed25519, ecdsa_sk restriction,
-- $19 clear token digest, $20 clear lifetime, $21 ed25519_sk restriction,
-- $22 allow_local_requests_from_web_hooks_and_services
UPDATE application_settings SET
    enabled_git_access_protocol = COALESCE($1, enabled_git_access_protocol),
    receive_max_input_size = COALESCE($2, receive_max_input_size),
    gitlab_shell_operation_limit = COALESCE($3, gitlab_shell_operation_limit),
    require_personal_access_token_expiry = COALESCE($4, require_personal_access_token_expiry),
    max_personal_access_token_lifetime = CASE WHEN $20::boolean THEN NULL
                                              ELSE COALESCE($5, max_personal_access_token_lifetime) END,
    personal_access_token_prefix = COALESCE($6, personal_access_token_prefix),
    error_tracking_enabled = COALESCE($7, error_tracking_enabled),
    error_tracking_access_token_digest = CASE WHEN $19::boolean THEN NULL
                                              ELSE COALESCE($8, error_tracking_access_token_digest) END,
    admin_mode = COALESCE($9, admin_mode),
    enforce_terms = COALESCE($10, enforce_terms),
    email_confirmation_setting = COALESCE($11, email_confirmation_setting),
    two_factor_for_cli = COALESCE($12, two_factor_for_cli),
    default_branch_name = COALESCE($13, default_branch_name),
    rsa_key_restriction = COALESCE($14, rsa_key_restriction),
    dsa_key_restriction = COALESCE($15, dsa_key_restriction),
    ecdsa_key_restriction = COALESCE($16, ecdsa_key_restriction),
    ed25519_key_restriction = COALESCE($17, ed25519_key_restriction),
    ecdsa_sk_key_restriction = COALESCE($18, ecdsa_sk_key_restriction),
    ed25519_sk_key_restriction = COALESCE($21, ed25519_sk_key_restriction),
    allow_local_requests_from_web_hooks_and_services = COALESCE($22, allow_local_requests_from_web_hooks_and_services),
    updated_at = now()
WHERE id = 1;
