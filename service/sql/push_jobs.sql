-- name: enqueue_post_receive_jobs$
-- Defers one PostReceive job per push, for a batch of concurrent post_receive calls, through
-- procrastinate's versioned SQL API (procrastinate_defer_jobs_v1). lock = gl_repository: the jobs of
-- one repository run one at a time, in push order, so its events and hooks keep that order.
-- $1 a JSON array of [gl_repository, JSON job arguments] per job, in push order
SELECT cardinality(procrastinate_defer_jobs_v1(array_agg(
    ROW('post_receive', 'post_receive', 0, j.job ->> 0, NULL, j.job -> 1, NULL)::procrastinate_job_to_defer_v1
    ORDER BY j.n)))
FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS j(job, n);

-- name: enqueue_web_hook_deliveries$
-- Defers one delivery job per web_hook_deliveries row, in the caller's transaction (so a delivery
-- exists exactly when its job does).
-- $1 delivery ids
SELECT cardinality(procrastinate_defer_jobs_v1(array_agg(
    ROW('web_hooks', 'deliver_web_hook', 0, NULL, NULL, jsonb_build_object('delivery_id', d.id), NULL)
        ::procrastinate_job_to_defer_v1 ORDER BY d.id)))
FROM unnest($1::bigint[]) AS d(id);

-- name: push_job_context^
-- What a PostReceive job needs: the project (NULL if it is gone), the names (or wildcard patterns) of
-- its protected branches and tags (the payload's ref_protected, Project#protected_for?), and the
-- pusher (from the identifier: user-<id>, key-<id> for the key's owner or a deploy key's creator,
-- username-<name>).
-- $1 project id, $2 user id, $3 key id, $4 username
SELECT
    p.id AS project_id,
    p.name AS project_name,
    p.description AS project_description,
    route.path AS full_path,
    n.name AS namespace_name,
    p.visibility_level,
    p.default_branch,
    p.repository_storage,
    p.legacy_disk_path,
    ARRAY(SELECT pb.name FROM protected_branches pb WHERE pb.project_id = p.id ORDER BY pb.id) AS protected_branches,
    ARRAY(SELECT pt.name FROM protected_tags pt WHERE pt.project_id = p.id ORDER BY pt.id) AS protected_tags,
    pusher.id AS user_id,
    pusher.name AS user_name,
    pusher.username AS user_username
FROM (SELECT 1) one
LEFT JOIN projects p ON p.id = $1
LEFT JOIN routes route ON route.source_type = 'Project' AND route.source_id = p.id
LEFT JOIN namespaces n ON n.id = p.namespace_id
LEFT JOIN users pusher ON pusher.id = COALESCE(
    $2::bigint,
    (SELECT k.user_id FROM keys k WHERE k.id = $3),
    (SELECT u.id FROM users u WHERE lower(u.username) = lower($4::text)));

-- name: insert_push_events!
-- One push event per ref change; a change already recorded (same idempotency key) is skipped.
-- $1 project id, $2 author id, $3 push actions, $4 ref types, $5 refs, $6 commit_from, $7 commit_to,
-- $8 commit counts, $9 commit titles, $10 idempotency keys, $11 ref counts (bulk events)
INSERT INTO events (project_id, author_id, push_action, ref_type, ref, commit_from, commit_to,
                    commit_count, commit_title, idempotency_key, ref_count)
SELECT $1, $2, e.push_action, e.ref_type, e.ref, e.commit_from, e.commit_to, e.commit_count, e.commit_title, e.key,
       e.ref_count
FROM unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::int[], $9::text[], $10::text[],
            $11::int[])
    AS e(push_action, ref_type, ref, commit_from, commit_to, commit_count, commit_title, key, ref_count)
ON CONFLICT (idempotency_key) DO NOTHING;

-- name: touch_pushed_project!
-- Project#touch(:last_activity_at, :last_repository_updated_at) after a push to its repository;
-- $2 = false (a wiki push) touches only last_activity_at, as GitLab's wiki post-receive does.
-- $1 project id, $2 repository updated
UPDATE projects
SET last_activity_at = now(),
    last_repository_updated_at = CASE WHEN $2::boolean THEN now() ELSE last_repository_updated_at END
WHERE id = $1;

-- name: hooks_for_push
-- The project's hooks and the system hooks that a push could fire, executable now
-- (WebHooks::AutoDisabling: not temporarily nor permanently disabled).
-- $1 project id
SELECT id, type, url, push_events, tag_push_events, push_events_branch_filter, branch_filter_strategy
FROM web_hooks
WHERE ((type = 'ProjectHook' AND project_id = $1) OR type = 'SystemHook')
  AND (push_events OR tag_push_events)
  AND (type = 'SystemHook' OR recent_failures <= 3 OR (disabled_until IS NOT NULL AND disabled_until < now()))
  AND (type = 'SystemHook' OR recent_failures <= 39)
ORDER BY id;

-- name: insert_web_hook_deliveries
-- The deliveries of one push; those already created by an earlier run of the same job are skipped.
-- Returns the ids of the new ones.
-- $1 hook ids, $2 delivery keys, $3 X-Gitlab-Event values, $4 triggers, $5 payloads (JSON), $6 event uuids
INSERT INTO web_hook_deliveries (web_hook_id, delivery_key, event_header, trigger, payload, event_uuid)
SELECT d.hook_id, d.key, d.header, d.trigger, d.payload::jsonb, d.uuid
FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::uuid[])
    AS d(hook_id, key, header, trigger, payload, uuid)
ON CONFLICT (delivery_key) DO NOTHING
RETURNING id;

-- name: dead_jobs
-- Jobs that failed for good (retries exhausted, or an error that is not retried), newest first.
-- $1 limit, $2 offset
SELECT j.id, j.queue_name, j.task_name, j.status::text AS status, j.args::text AS args, j.attempts,
       (SELECT max(e.at) FROM procrastinate_events e WHERE e.job_id = j.id) AS failed_at
FROM procrastinate_jobs j
WHERE j.status = 'failed'
ORDER BY j.id DESC
LIMIT $1 OFFSET $2;

-- name: count_dead_jobs$
-- How many jobs dead_jobs can list.
SELECT count(*) FROM procrastinate_jobs WHERE status = 'failed';

-- name: retry_dead_job^
-- Puts a failed job back in its queue now, for one more attempt (procrastinate's own retry function).
-- $1 job id
SELECT j.id, procrastinate_retry_job_v2(j.id, now(), NULL, NULL, NULL)::text AS retried
FROM procrastinate_jobs j
WHERE j.id = $1 AND j.status = 'failed';
