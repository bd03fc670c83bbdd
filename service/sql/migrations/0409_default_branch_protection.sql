-- Default branch protection (GitLab's default_branch_protection_defaults): what may be pushed into
-- an empty project, and the protected-branch rule its default branch gets once pushed. The
-- instance's setting defaults to GitLab's (Gitlab::Access::BranchProtection.protected_fully); a
-- group's own setting, NULL when it has none, overrides it for the projects directly in it.
ALTER TABLE application_settings ADD COLUMN default_branch_protection_defaults jsonb NOT NULL DEFAULT
    '{"allowed_to_push": [{"access_level": 40}], "allowed_to_merge": [{"access_level": 40}],
      "allow_force_push": false, "developer_can_initial_push": false}'
    CHECK (jsonb_typeof(default_branch_protection_defaults) = 'object');
ALTER TABLE namespaces ADD COLUMN default_branch_protection_defaults jsonb
    CHECK (jsonb_typeof(default_branch_protection_defaults) = 'object');

-- Namespace#default_branch_protection_settings: a group's own setting when it has one, else the
-- instance's (always for a personal namespace).
CREATE FUNCTION default_branch_protection_of(namespace_type text, own jsonb) RETURNS jsonb
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT CASE WHEN namespace_type = 'Group' AND coalesce(own, '{}') <> '{}' THEN own
                      ELSE (SELECT s.default_branch_protection_defaults FROM application_settings s WHERE s.id = 1)
                 END $$;
