-- The part of GitLab's data model that GitLab Shell and Gitaly depend on.
-- Names follow GitLab's db/structure.sql where a column means the same thing.

CREATE TABLE application_settings (
    id integer PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    -- NULL or '' = SSH and HTTP, 'ssh' or 'http' = only that one
    enabled_git_access_protocol text CHECK (enabled_git_access_protocol IN ('', 'ssh', 'http')),
    -- megabytes; 0 = no limit
    receive_max_input_size integer NOT NULL DEFAULT 0 CHECK (receive_max_input_size >= 0),
    -- /internal/allowed calls per minute per action, project and actor; 0 = no limit
    gitlab_shell_operation_limit integer NOT NULL DEFAULT 600 CHECK (gitlab_shell_operation_limit >= 0),
    require_personal_access_token_expiry boolean NOT NULL DEFAULT true,
    max_personal_access_token_lifetime integer CHECK (max_personal_access_token_lifetime > 0),
    personal_access_token_prefix text NOT NULL DEFAULT 'glpat-',
    error_tracking_enabled boolean NOT NULL DEFAULT false,
    -- SHA-256 hex digest; the token itself is never stored
    error_tracking_access_token_digest text,
    admin_mode boolean NOT NULL DEFAULT false,
    enforce_terms boolean NOT NULL DEFAULT false,
    -- 'off' | 'soft' | 'hard': unconfirmed e-mail is refused only with 'hard'
    email_confirmation_setting text NOT NULL DEFAULT 'off' CHECK (email_confirmation_setting IN ('off', 'soft', 'hard')),
    two_factor_for_cli boolean NOT NULL DEFAULT false,
    default_branch_name text NOT NULL DEFAULT 'main',
    -- SSH key restrictions per type: 0 = any size, -1 = forbidden, N = at least N bits
    rsa_key_restriction integer NOT NULL DEFAULT 0,
    dsa_key_restriction integer NOT NULL DEFAULT 0,
    ecdsa_key_restriction integer NOT NULL DEFAULT 0,
    ed25519_key_restriction integer NOT NULL DEFAULT 0,
    ecdsa_sk_key_restriction integer NOT NULL DEFAULT 0,
    ed25519_sk_key_restriction integer NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO application_settings (id) VALUES (1);

CREATE TABLE users (
    id bigserial PRIMARY KEY,
    username text NOT NULL,
    email text NOT NULL,
    name text NOT NULL DEFAULT '',
    state text NOT NULL DEFAULT 'active'
        CHECK (state IN ('active', 'blocked', 'ldap_blocked', 'blocked_pending_approval', 'deactivated')),
    -- 'human', 'project_bot', 'service_account' or one of GitLab's internal types ('ghost', 'support_bot', ...)
    user_type text NOT NULL DEFAULT 'human',
    admin boolean NOT NULL DEFAULT false,
    external boolean NOT NULL DEFAULT false,
    can_create_group boolean NOT NULL DEFAULT true,
    projects_limit integer NOT NULL DEFAULT 100000,
    confirmed_at timestamptz DEFAULT now(),
    password_expires_at timestamptz,
    terms_accepted boolean NOT NULL DEFAULT false,
    -- a password hash; the LFS token key mixes in its last 16 characters, so a new password ends old tokens
    encrypted_password text NOT NULL DEFAULT '',
    otp_required_for_login boolean NOT NULL DEFAULT false,
    -- JSON array of PBKDF2-SHA512 digests of the recovery codes
    otp_backup_codes jsonb,
    last_activity_on date,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX index_users_on_lower_username ON users (lower(username));
CREATE UNIQUE INDEX index_users_on_lower_email ON users (lower(email));

CREATE TABLE namespaces (
    id bigserial PRIMARY KEY,
    name text NOT NULL,
    path text NOT NULL,
    type text NOT NULL CHECK (type IN ('User', 'Group')),
    parent_id bigint REFERENCES namespaces (id) ON DELETE CASCADE,
    -- User namespaces: their user
    owner_id bigint REFERENCES users (id) ON DELETE CASCADE,
    -- ids from the root down to this namespace, this one last (GitLab's traversal_ids)
    traversal_ids bigint[] NOT NULL DEFAULT '{}',
    visibility_level integer NOT NULL DEFAULT 20 CHECK (visibility_level IN (0, 10, 20)),
    description text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK (type = 'Group' OR (owner_id IS NOT NULL AND parent_id IS NULL))
);
CREATE INDEX index_namespaces_on_parent_id ON namespaces (parent_id);
CREATE UNIQUE INDEX index_namespaces_on_owner_id_user ON namespaces (owner_id) WHERE type = 'User';
CREATE INDEX index_namespaces_on_traversal_ids ON namespaces USING gin (traversal_ids);

CREATE TABLE projects (
    id bigserial PRIMARY KEY,
    name text NOT NULL,
    path text NOT NULL,
    namespace_id bigint NOT NULL REFERENCES namespaces (id) ON DELETE CASCADE,
    creator_id bigint REFERENCES users (id) ON DELETE SET NULL,
    description text NOT NULL DEFAULT '',
    -- 0 private, 10 internal, 20 public
    visibility_level integer NOT NULL DEFAULT 0 CHECK (visibility_level IN (0, 10, 20)),
    archived boolean NOT NULL DEFAULT false,
    repository_read_only boolean NOT NULL DEFAULT false,
    repository_storage text NOT NULL DEFAULT 'default',
    -- NULL = hashed storage (@hashed/aa/bb/sha256(id)); otherwise the legacy disk path
    legacy_disk_path text,
    -- false until the repository exists on its storage
    repository_exists boolean NOT NULL DEFAULT true,
    lfs_enabled boolean NOT NULL DEFAULT true,
    pending_delete boolean NOT NULL DEFAULT false,
    hidden boolean NOT NULL DEFAULT false,
    -- NULL while the repository has no branch yet
    default_branch text,
    printing_merge_request_link_enabled boolean NOT NULL DEFAULT true,
    -- project_features: 0 disabled, 10 members only, 20 everyone with access, 30 public
    repository_access_level integer NOT NULL DEFAULT 20 CHECK (repository_access_level IN (0, 10, 20, 30)),
    merge_requests_access_level integer NOT NULL DEFAULT 20 CHECK (merge_requests_access_level IN (0, 10, 20, 30)),
    wiki_access_level integer NOT NULL DEFAULT 20 CHECK (wiki_access_level IN (0, 10, 20, 30)),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    last_activity_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX index_projects_on_namespace_id ON projects (namespace_id);
CREATE UNIQUE INDEX index_projects_on_namespace_and_lower_path ON projects (namespace_id, lower(path));

-- Full paths of namespaces and projects ("group/sub/project"), kept in step with renames.
CREATE TABLE routes (
    id bigserial PRIMARY KEY,
    source_type text NOT NULL CHECK (source_type IN ('Namespace', 'Project')),
    source_id bigint NOT NULL,
    path text NOT NULL,
    name text NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX index_routes_on_lower_path ON routes (lower(path));
CREATE UNIQUE INDEX index_routes_on_source ON routes (source_type, source_id);

-- Old full paths that still lead to their project or namespace after a rename or transfer.
CREATE TABLE redirect_routes (
    id bigserial PRIMARY KEY,
    source_type text NOT NULL CHECK (source_type IN ('Namespace', 'Project')),
    source_id bigint NOT NULL,
    path text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX index_redirect_routes_on_lower_path ON redirect_routes (lower(path));
CREATE INDEX index_redirect_routes_on_source ON redirect_routes (source_type, source_id);

CREATE TABLE members (
    id bigserial PRIMARY KEY,
    user_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    source_type text NOT NULL CHECK (source_type IN ('Project', 'Namespace')),
    source_id bigint NOT NULL,
    -- 10 guest, 15 planner, 20 reporter, 30 developer, 40 maintainer, 50 owner
    access_level integer NOT NULL CHECK (access_level IN (5, 10, 15, 20, 30, 40, 50)),
    -- 'active', or 'awaiting' (over a seat limit: treated as no access)
    state text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'awaiting')),
    -- an access request that nobody approved yet gives no access
    requested_at timestamptz,
    expires_at date,
    created_by_id bigint REFERENCES users (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (user_id, source_type, source_id)
);
CREATE INDEX index_members_on_source ON members (source_type, source_id);

-- SSH keys of users and deploy keys (type = 'DeployKey'), as in GitLab's single table.
CREATE TABLE keys (
    id bigserial PRIMARY KEY,
    -- the owner; for a deploy key, its creator
    user_id bigint REFERENCES users (id) ON DELETE CASCADE,
    type text CHECK (type IN ('DeployKey')),
    key text NOT NULL,
    title text NOT NULL DEFAULT '',
    -- 'ssh-rsa', 'ssh-ed25519', 'ecdsa-sha2-nistp256', ...
    key_type text NOT NULL,
    bits integer NOT NULL DEFAULT 0,
    -- MD5, colon-separated hex
    fingerprint text NOT NULL,
    -- SHA-256, base64 without padding and without the "SHA256:" prefix
    fingerprint_sha256 text NOT NULL,
    usage_type text NOT NULL DEFAULT 'auth_and_signing' CHECK (usage_type IN ('auth_and_signing', 'auth', 'signing')),
    -- instance-wide deploy key anyone may enable on their projects
    public boolean NOT NULL DEFAULT false,
    expires_at timestamptz,
    last_used_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK (type = 'DeployKey' OR user_id IS NOT NULL)
);
CREATE UNIQUE INDEX index_keys_on_fingerprint_sha256 ON keys (fingerprint_sha256);
CREATE INDEX index_keys_on_user_id ON keys (user_id);

CREATE TABLE deploy_keys_projects (
    id bigserial PRIMARY KEY,
    deploy_key_id bigint NOT NULL REFERENCES keys (id) ON DELETE CASCADE,
    project_id bigint NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    can_push boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (deploy_key_id, project_id)
);
CREATE INDEX index_deploy_keys_projects_on_project_id ON deploy_keys_projects (project_id);

-- `name` may contain '*' wildcards, as in GitLab.
CREATE TABLE protected_branches (
    id bigserial PRIMARY KEY,
    project_id bigint NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name text NOT NULL,
    allow_force_push boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (project_id, name)
);

-- Who may push or merge: a role (0 no one, 30 developers, 40 maintainers, 60 admins), a user or a deploy key.
CREATE TABLE protected_branch_access_levels (
    id bigserial PRIMARY KEY,
    protected_branch_id bigint NOT NULL REFERENCES protected_branches (id) ON DELETE CASCADE,
    kind text NOT NULL CHECK (kind IN ('push', 'merge', 'unprotect')),
    access_level integer CHECK (access_level IN (0, 30, 40, 60)),
    user_id bigint REFERENCES users (id) ON DELETE CASCADE,
    deploy_key_id bigint REFERENCES keys (id) ON DELETE CASCADE,
    CHECK (num_nonnulls(access_level, user_id, deploy_key_id) = 1)
);
CREATE INDEX index_protected_branch_access_levels ON protected_branch_access_levels (protected_branch_id);

CREATE TABLE protected_tags (
    id bigserial PRIMARY KEY,
    project_id bigint NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (project_id, name)
);

CREATE TABLE protected_tag_create_access_levels (
    id bigserial PRIMARY KEY,
    protected_tag_id bigint NOT NULL REFERENCES protected_tags (id) ON DELETE CASCADE,
    access_level integer CHECK (access_level IN (0, 30, 40, 60)),
    user_id bigint REFERENCES users (id) ON DELETE CASCADE,
    deploy_key_id bigint REFERENCES keys (id) ON DELETE CASCADE,
    CHECK (num_nonnulls(access_level, user_id, deploy_key_id) = 1)
);
CREATE INDEX index_protected_tag_create_access_levels ON protected_tag_create_access_levels (protected_tag_id);

CREATE TABLE personal_access_tokens (
    id bigserial PRIMARY KEY,
    user_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name text NOT NULL,
    -- SHA-256 hex digest of the token; the token itself is shown once and never stored
    token_digest text NOT NULL UNIQUE,
    scopes text[] NOT NULL,
    expires_at date,
    revoked boolean NOT NULL DEFAULT false,
    impersonation boolean NOT NULL DEFAULT false,
    last_used_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX index_personal_access_tokens_on_user_id ON personal_access_tokens (user_id);

CREATE TABLE broadcast_messages (
    id bigserial PRIMARY KEY,
    message text NOT NULL,
    starts_at timestamptz NOT NULL DEFAULT now(),
    ends_at timestamptz NOT NULL DEFAULT now() + interval '1 hour',
    broadcast_type text NOT NULL DEFAULT 'banner' CHECK (broadcast_type IN ('banner', 'notification')),
    -- a glob over the project path ("group/*"); '' = everywhere
    target_path text NOT NULL DEFAULT '',
    -- empty = everyone; otherwise only users with one of these access levels in the project
    target_access_levels integer[] NOT NULL DEFAULT '{}',
    show_in_cli boolean NOT NULL DEFAULT true,
    dismissable boolean NOT NULL DEFAULT false,
    theme text NOT NULL DEFAULT 'indigo',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE merge_requests (
    id bigserial PRIMARY KEY,
    iid integer NOT NULL,
    target_project_id bigint NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    source_project_id bigint NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    source_branch text NOT NULL,
    target_branch text NOT NULL,
    title text NOT NULL DEFAULT '',
    state text NOT NULL DEFAULT 'opened' CHECK (state IN ('opened', 'closed', 'merged', 'locked')),
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (target_project_id, iid)
);
CREATE INDEX index_merge_requests_on_source ON merge_requests (source_project_id, source_branch) WHERE state = 'opened';

CREATE TABLE error_tracking_client_keys (
    id bigserial PRIMARY KEY,
    project_id bigint NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    public_key text NOT NULL,
    active boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (project_id, public_key)
);
