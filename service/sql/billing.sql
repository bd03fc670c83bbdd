-- name: find_billing_namespace_by_id^
-- A user namespace or group by id, with its full path.
-- $1 namespace id
SELECT n.id, n.type, n.parent_id, n.owner_id, n.traversal_ids, r.path AS full_path
FROM namespaces n
LEFT JOIN routes r ON r.source_type = 'Namespace' AND r.source_id = n.id
WHERE n.id = $1;

-- name: find_billing_namespace_by_full_path^
-- A user namespace or group by full path, ignoring case (GitLab's find_by_full_path).
-- $1 full path
SELECT n.id, n.type, n.parent_id, n.owner_id, n.traversal_ids, r.path AS full_path
FROM routes r
JOIN namespaces n ON n.id = r.source_id
WHERE r.source_type = 'Namespace' AND lower(r.path) = lower($1);

-- name: namespace_access_for_user^
-- Whether a user owns a namespace (admin_namespace: the user of a personal namespace, or an Owner
-- of the group or of an ancestor) and whether the namespace is visible to them at all (read_namespace).
-- $1 namespace id, $2 user id
SELECT
    CASE WHEN n.type = 'User' THEN n.owner_id = u.id
         ELSE EXISTS (
             SELECT 1 FROM members m
             WHERE m.user_id = u.id AND m.source_type = 'Namespace' AND m.source_id = ANY (n.traversal_ids)
               AND m.access_level = 50 AND m.state = 'active' AND m.requested_at IS NULL
               AND (m.expires_at IS NULL OR m.expires_at >= CURRENT_DATE))
    END AS is_owner,
    CASE WHEN n.type = 'User' THEN n.owner_id = u.id
         ELSE n.visibility_level = 20
           OR (n.visibility_level = 10 AND NOT u.external)
           OR EXISTS (
               SELECT 1 FROM members m
               WHERE m.user_id = u.id AND m.state = 'active' AND m.requested_at IS NULL
                 AND (m.expires_at IS NULL OR m.expires_at >= CURRENT_DATE)
                 AND ((m.source_type = 'Namespace' AND m.source_id IN (
                           SELECT d.id FROM namespaces d
                           WHERE d.id = ANY (n.traversal_ids) OR d.traversal_ids @> ARRAY[n.id]))
                      OR (m.source_type = 'Project' AND m.source_id IN (
                           SELECT p.id FROM projects p JOIN namespaces d ON d.id = p.namespace_id
                           WHERE d.traversal_ids @> ARRAY[n.id]))))
    END AS can_read
FROM namespaces n
CROSS JOIN users u
WHERE n.id = $1 AND u.id = $2;

-- name: count_billable_users$
-- Seats in use of a group: distinct active human users who are members of the group, its
-- subgroups, or projects in any of them (GitLab's billed_user_ids). Guests and minimal-access
-- members are left out when the plan excludes guests (with_elevated_guests: access level > 10).
-- $1 group id, $2 exclude guests
SELECT count(DISTINCT m.user_id)::integer AS seats_in_use
FROM members m
JOIN users u ON u.id = m.user_id
WHERE u.state = 'active' AND u.user_type = 'human'
  AND m.state = 'active' AND m.requested_at IS NULL
  AND (m.expires_at IS NULL OR m.expires_at >= CURRENT_DATE)
  AND (NOT $2::boolean OR m.access_level > 10)
  AND ((m.source_type = 'Namespace' AND m.source_id IN (
            SELECT g.id FROM namespaces g WHERE g.traversal_ids @> ARRAY[$1::bigint]))
       OR (m.source_type = 'Project' AND m.source_id IN (
            SELECT p.id FROM projects p JOIN namespaces g ON g.id = p.namespace_id
            WHERE g.traversal_ids @> ARRAY[$1::bigint])));

-- name: find_plan_by_name^
-- A hosted plan by its code.
-- $1 plan name
SELECT id, name, title FROM plans WHERE name = $1;

-- name: find_subscription_by_namespace^
-- A namespace's subscription with its plan's code and title.
-- $1 namespace id
SELECT s.id, s.namespace_id, s.hosted_plan_id, p.name AS plan_name, p.title AS plan_title,
       s.start_date, s.end_date, s.trial_starts_on, s.trial_ends_on, s.trial, s.auto_renew,
       s.seats, s.max_seats_used, s.max_seats_used_changed_at, s.trial_extension_type,
       s.created_at, s.updated_at
FROM gitlab_subscriptions s
LEFT JOIN plans p ON p.id = s.hosted_plan_id
WHERE s.namespace_id = $1;

-- name: lock_subscription_by_namespace^
-- The same, row-locked until the end of the transaction, so concurrent PUTs apply one after the
-- other and each history row records the state the next change really replaced.
-- $1 namespace id
SELECT s.id, s.namespace_id, s.hosted_plan_id, p.name AS plan_name, p.title AS plan_title,
       s.start_date, s.end_date, s.trial_starts_on, s.trial_ends_on, s.trial, s.auto_renew,
       s.seats, s.max_seats_used, s.max_seats_used_changed_at, s.trial_extension_type,
       s.created_at, s.updated_at
FROM gitlab_subscriptions s
LEFT JOIN plans p ON p.id = s.hosted_plan_id
WHERE s.namespace_id = $1
FOR UPDATE OF s;

-- name: insert_subscription<!
-- A new subscription; nothing (no row returned) when the namespace already has one.
-- $1 namespace id, $2 plan id, $3 start date, $4 end date, $5 trial starts on, $6 trial ends on,
-- $7 trial, $8 auto renew, $9 seats, $10 max seats used, $11 trial extension type
INSERT INTO gitlab_subscriptions (namespace_id, hosted_plan_id, start_date, end_date, trial_starts_on,
                                  trial_ends_on, trial, auto_renew, seats, max_seats_used, trial_extension_type)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
ON CONFLICT (namespace_id) DO NOTHING
RETURNING id;

-- name: update_subscription!
-- Every writable column of a subscription; updated_at moves on every PUT, as in GitLab.
-- $1 id, $2 plan id, $3 start date, $4 end date, $5 trial starts on, $6 trial ends on, $7 trial,
-- $8 auto renew, $9 seats, $10 max seats used, $11 max seats used changed at, $12 trial extension type
UPDATE gitlab_subscriptions
SET hosted_plan_id = $2, start_date = $3, end_date = $4, trial_starts_on = $5, trial_ends_on = $6,
    trial = $7, auto_renew = $8, seats = $9, max_seats_used = $10, max_seats_used_changed_at = $11,
    trial_extension_type = $12, updated_at = now()
WHERE id = $1;

-- name: insert_subscription_history!
-- The previous state of a subscription's tracked attributes.
-- $1 subscription id, $2 its created_at, $3 its updated_at, $4 change type, $5 namespace id,
-- $6 plan id, $7 start date, $8 end date, $9 trial starts on, $10 trial ends on, $11 trial,
-- $12 auto renew, $13 seats, $14 max seats used, $15 trial extension type
INSERT INTO gitlab_subscription_histories (gitlab_subscription_id, gitlab_subscription_created_at,
    gitlab_subscription_updated_at, change_type, namespace_id, hosted_plan_id, start_date, end_date,
    trial_starts_on, trial_ends_on, trial, auto_renew, seats, max_seats_used, trial_extension_type)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15);

-- name: find_last_subscription_term_on_plan^
-- The term of a subscription's latest history row on a plan (GitlabSubscription#premium_plan_not_renewed?:
-- does the subscription return to the very Premium term its ultimate_trial_paid_customer trial interrupted).
-- $1 subscription id, $2 plan name
SELECT h.start_date, h.end_date
FROM gitlab_subscription_histories h
JOIN plans p ON p.id = h.hosted_plan_id
WHERE h.gitlab_subscription_id = $1 AND p.name = $2
ORDER BY h.id DESC
LIMIT 1;

-- name: insert_additional_pack<!
-- A purchased minutes pack, unless a pack with this purchase id exists: then nothing is returned
-- (a concurrent insert of the same purchase waits here for the other transaction to finish).
-- $1 namespace id, $2 purchase xid, $3 expires at, $4 number of minutes
INSERT INTO ci_minutes_additional_packs (namespace_id, purchase_xid, expires_at, number_of_minutes)
VALUES ($1, $2, $3, $4)
ON CONFLICT (purchase_xid) DO NOTHING
RETURNING namespace_id, expires_at, number_of_minutes, purchase_xid;

-- name: find_additional_pack_by_purchase_xid^
-- The pack of a purchase, whichever namespace holds it.
-- $1 purchase xid
SELECT namespace_id, expires_at, number_of_minutes, purchase_xid
FROM ci_minutes_additional_packs
WHERE purchase_xid = $1;

-- name: namespaces_share_an_owner$
-- Whether some user owns both namespaces: the user of a personal namespace, or a direct Owner
-- member of a group (GitLab's namespace.owner_ids & target.owner_ids).
-- $1 namespace id, $2 other namespace id
WITH owners AS (
    SELECT n.id AS namespace_id, n.owner_id AS user_id
    FROM namespaces n WHERE n.type = 'User' AND n.id IN ($1, $2)
    UNION
    SELECT m.source_id, m.user_id
    FROM members m JOIN namespaces n ON n.id = m.source_id AND n.type = 'Group'
    WHERE m.source_type = 'Namespace' AND m.source_id IN ($1, $2) AND m.access_level = 50
      AND m.state = 'active' AND m.requested_at IS NULL
)
SELECT EXISTS (
    SELECT user_id FROM owners WHERE namespace_id = $1
    INTERSECT
    SELECT user_id FROM owners WHERE namespace_id = $2
) AS shared;

-- name: move_additional_packs$
-- Every pack of a namespace moves to another namespace; returns how many moved.
-- $1 namespace id, $2 target namespace id
WITH moved AS (
    UPDATE ci_minutes_additional_packs SET namespace_id = $2, updated_at = now()
    WHERE namespace_id = $1
    RETURNING id
)
SELECT count(*)::integer AS moved FROM moved;

-- name: existing_namespace_ids
-- Which of these namespace ids exist.
-- $1 namespace ids
SELECT id FROM namespaces WHERE id = ANY ($1::bigint[]);

-- name: upsert_upcoming_reconciliations!
-- Insert or replace the upcoming reconciliation of each namespace (one row per namespace). A
-- namespace deleted since it was checked is skipped rather than failing the whole statement.
-- $1 namespace ids, $2 next reconciliation dates, $3 display-alert-from dates (parallel arrays)
INSERT INTO upcoming_reconciliations (namespace_id, next_reconciliation_date, display_alert_from)
SELECT u.namespace_id, u.next_reconciliation_date, u.display_alert_from
FROM unnest($1::bigint[], $2::date[], $3::date[]) AS u (namespace_id, next_reconciliation_date, display_alert_from)
JOIN namespaces n ON n.id = u.namespace_id
ON CONFLICT (namespace_id) DO UPDATE
SET next_reconciliation_date = EXCLUDED.next_reconciliation_date,
    display_alert_from = EXCLUDED.display_alert_from,
    updated_at = now();

-- name: delete_upcoming_reconciliation<!
-- Remove a namespace's upcoming reconciliation; returns its id, or nothing when there was none.
-- $1 namespace id
DELETE FROM upcoming_reconciliations WHERE namespace_id = $1
RETURNING id;

-- name: raise_max_seats_used!
-- A paid subscription remembers its highest seat usage (GitLab's seat refresh worker).
-- $1 subscription id, $2 seats in use now
UPDATE gitlab_subscriptions
SET max_seats_used = $2, max_seats_used_changed_at = now(), updated_at = now()
WHERE id = $1 AND max_seats_used < $2;
