-- application_settings: the one row of instance settings (GitLab lib/api/settings.rb).

-- name: get_application_settings^
-- The one row of instance settings the internal endpoints read.
SELECT * FROM application_settings WHERE id = 1;

-- name: update_application_settings!
-- Changes the given instance settings; NULL keeps the current value, except that $19 = true clears
-- the error-tracking token digest and $20 = true clears the PAT lifetime limit (both may be unset).
-- $1 enabled_git_access_protocol, $2 receive_max_input_size, $3 gitlab_shell_operation_limit,
-- $4 require_personal_access_token_expiry, $5 max_personal_access_token_lifetime,
-- $6 personal_access_token_prefix, $7 error_tracking_enabled, $8 error_tracking_access_token_digest,
-- $9 admin_mode, $10 enforce_terms, $11 email_confirmation_setting, $12 two_factor_for_cli,
-- $13 default_branch_name, $14..$18 rsa, dsa, ecdsa, ed25519, ecdsa_sk restriction,
-- $19 clear token digest, $20 clear lifetime, $21 ed25519_sk restriction,
-- $22 allow_local_requests_from_web_hooks_and_services, $23 default_project_creation,
-- $24 allow_local_requests_from_system_hooks, $25 default_branch_protection_defaults (JSON)
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
    default_project_creation = COALESCE($23, default_project_creation),
    allow_local_requests_from_system_hooks = COALESCE($24, allow_local_requests_from_system_hooks),
    default_branch_protection_defaults = COALESCE($25::text::jsonb, default_branch_protection_defaults),
    updated_at = now()
WHERE id = 1;
