-- ApplicationSetting allow_local_requests_from_system_hooks: system hooks are an administrator's,
-- and GitLab lets them reach the local network unless this is turned off (SystemHook#allow_local_requests?);
-- project hooks keep allow_local_requests_from_web_hooks_and_services.
ALTER TABLE application_settings ADD COLUMN allow_local_requests_from_system_hooks boolean NOT NULL DEFAULT true;
