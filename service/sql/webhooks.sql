-- name: list_web_hooks
-- A project's hooks ($1 = its id, $2 = 'ProjectHook') or the system hooks ($1 NULL, $2 = 'SystemHook'),
-- oldest first, with the total. $3 limit, $4 offset
SELECT h.*, count(*) OVER () AS total
FROM web_hooks h
WHERE h.type = $2 AND h.project_id IS NOT DISTINCT FROM $1
ORDER BY h.id
LIMIT $3 OFFSET $4;

-- name: find_web_hook^
-- One hook of a project ($1, $2 = 'ProjectHook') or one system hook ($1 NULL, $2 = 'SystemHook').
-- $3 hook id
SELECT h.*, 0::bigint AS total
FROM web_hooks h
WHERE h.id = $3 AND h.type = $2 AND h.project_id IS NOT DISTINCT FROM $1;

-- name: insert_web_hook<!
-- $1 type, $2 project id, $3 url, $4 name, $5 description, $6 token, $7 push_events, $8 tag_push_events,
-- $9 merge_requests_events, $10 repository_update_events, $11 push_events_branch_filter,
-- $12 branch_filter_strategy, $13 enable_ssl_verification
INSERT INTO web_hooks (type, project_id, url, name, description, token, push_events, tag_push_events,
                       merge_requests_events, repository_update_events, push_events_branch_filter,
                       branch_filter_strategy, enable_ssl_verification)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
RETURNING id;

-- name: update_web_hook!
-- Changes the given attributes (NULL keeps the current value); $14 = true clears the token.
-- $1 hook id, $2 url, $3 name, $4 description, $5 token, $6 push_events, $7 tag_push_events,
-- $8 merge_requests_events, $9 repository_update_events, $10 push_events_branch_filter,
-- $11 branch_filter_strategy, $12 enable_ssl_verification, $13 type, $14 clear token
UPDATE web_hooks SET
    url = COALESCE($2, url),
    name = COALESCE($3, name),
    description = COALESCE($4, description),
    token = CASE WHEN $14::boolean THEN NULL ELSE COALESCE($5, token) END,
    push_events = COALESCE($6, push_events),
    tag_push_events = COALESCE($7, tag_push_events),
    merge_requests_events = COALESCE($8, merge_requests_events),
    repository_update_events = COALESCE($9, repository_update_events),
    push_events_branch_filter = COALESCE($10, push_events_branch_filter),
    branch_filter_strategy = COALESCE($11, branch_filter_strategy),
    enable_ssl_verification = COALESCE($12, enable_ssl_verification),
    updated_at = now()
WHERE id = $1 AND type = $13;

-- name: delete_web_hook<!
-- $1 hook id, $2 type
DELETE FROM web_hooks WHERE id = $1 AND type = $2 RETURNING id;

-- name: web_hook_logs
-- A hook's delivery log, newest first, with the total. $1 hook id, $2 limit, $3 offset
SELECT l.*, count(*) OVER () AS total
FROM web_hook_logs l
WHERE l.web_hook_id = $1
ORDER BY l.id DESC
LIMIT $2 OFFSET $3;

-- name: delivery_for_sending^
-- A delivery, its hook and the instance's SSRF setting for that kind of hook. Not locked: the HTTP call must not hold a
-- database connection (PgBouncer's server connections are few), and the queue runs a job on one
-- worker at a time. $1 delivery id
SELECT d.id, d.state, d.event_header, d.trigger, d.payload::text AS payload, d.event_uuid::text AS event_uuid,
       d.attempts, h.id AS hook_id, h.type AS hook_type, h.url, h.token, h.enable_ssl_verification,
       h.recent_failures, h.disabled_until,
       (SELECT CASE WHEN h.type = 'SystemHook' THEN s.allow_local_requests_from_system_hooks
                    ELSE s.allow_local_requests_from_web_hooks_and_services END
          FROM application_settings s WHERE s.id = 1) AS allow_local_requests
FROM web_hook_deliveries d
JOIN web_hooks h ON h.id = d.web_hook_id
WHERE d.id = $1;

-- name: finish_delivery!
-- $1 delivery id, $2 new state
UPDATE web_hook_deliveries SET state = $2, attempts = attempts + 1, updated_at = now() WHERE id = $1;

-- name: insert_web_hook_log!
-- One attempt of a delivery. $1 hook id, $2 trigger, $3 url, $4 request headers (JSON), $5 request
-- data (JSON), $6 response headers (JSON), $7 response body, $8 response status, $9 duration (s),
-- $10 internal error message
INSERT INTO web_hook_logs (web_hook_id, trigger, url, request_headers, request_data, response_headers,
                           response_body, response_status, execution_duration, internal_error_message)
VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, $6::jsonb, $7, $8, $9, $10);

-- name: set_web_hook_failures!
-- WebHooks::AutoDisabling's enable! / backoff!: the new failure count and disabled-until time.
-- $1 hook id, $2 recent_failures, $3 disabled_until
UPDATE web_hooks SET recent_failures = $2, disabled_until = $3 WHERE id = $1;

-- name: allow_local_requests$
-- The instance's SSRF switch for a kind of hook (WebHook#allow_local_requests?): system hooks'
-- allow_local_requests_from_system_hooks, other hooks' allow_local_requests_from_web_hooks_and_services.
-- $1 hook type
SELECT CASE WHEN $1::text = 'SystemHook' THEN allow_local_requests_from_system_hooks
            ELSE allow_local_requests_from_web_hooks_and_services END
FROM application_settings WHERE id = 1;

-- name: plain_hook_urls
-- Hooks whose URL was stored before URLs were sealed (2026-12-07): not "v1:..." (a URL's scheme is
-- http or https).
SELECT id, url FROM web_hooks WHERE url NOT LIKE 'v1:%';

-- name: seal_hook_url!
-- A hook's plain URL replaced by its sealed form, unless it changed meanwhile.
-- $1 hook id, $2 the plain URL read, $3 the sealed URL
UPDATE web_hooks SET url = $3 WHERE id = $1 AND url = $2;

-- name: logged_urls_with_credentials
-- Delivery log entries written before their URL's credentials were masked.
SELECT id, url FROM web_hook_logs WHERE url LIKE '%@%' AND url NOT LIKE '%://*****%';

-- name: mask_logged_url!
-- $1 log entry id, $2 the URL with its user and password masked
UPDATE web_hook_logs SET url = $2 WHERE id = $1;

