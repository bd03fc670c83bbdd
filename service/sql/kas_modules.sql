-- name: lock_project_alerts!
-- Serialises alert creation in one project until the end of the transaction, so that per-project
-- iids are allocated without gaps or collisions (GitLab uses its internal_ids table for this).
-- $1 project id
SELECT pg_advisory_xact_lock(hashtextextended('alert_management_alerts:' || $1::bigint::text, 0));

-- name: upsert_alert<!
-- A new alert, or one more event on the open alert with the same fingerprint
-- (AlertManagement::NetworkAlertService: process_new_alert / process_existing_alert).
-- Call after lock_project_alerts, in the same transaction.
-- $1 project id, $2 title, $3 description, $4 severity, $5 fingerprint, $6 monitoring tool, $7 payload (jsonb)
INSERT INTO alert_management_alerts (project_id, iid, title, description, severity, fingerprint, monitoring_tool, payload)
VALUES ($1, (SELECT COALESCE(max(iid), 0) + 1 FROM alert_management_alerts WHERE project_id = $1),
        $2, $3, $4, $5, $6, $7::jsonb)
ON CONFLICT (project_id, fingerprint) WHERE status <> 'resolved'
DO UPDATE SET events = alert_management_alerts.events + 1, payload = EXCLUDED.payload, updated_at = now()
RETURNING id, iid, events;

-- name: create_vulnerability_finding$
-- A cluster image scanning finding and its vulnerability, in one statement; nothing when a finding
-- with this uuid exists (the request is idempotent). Returns whether it created them.
-- $1 uuid, $2 project id, $3 agent id, $4 name, $5 severity, $6 confidence, $7 location fingerprint,
-- $8 primary identifier fingerprint, $9 location, $10 identifiers, $11 scanner, $12 raw metadata (jsonb),
-- $13 author (the agent's creator)
WITH finding AS (
    INSERT INTO vulnerability_findings (uuid, project_id, agent_id, name, severity, confidence, location_fingerprint,
                                        primary_identifier_fingerprint, location, identifiers, scanner, raw_metadata)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10::jsonb, $11::jsonb, $12::jsonb)
    ON CONFLICT (uuid) DO NOTHING
    RETURNING id, project_id, name, severity
),
vulnerability AS (
    INSERT INTO vulnerabilities (finding_id, project_id, author_id, title, severity)
    SELECT id, project_id, $13, name, severity FROM finding
    RETURNING id
)
SELECT count(*) > 0 AS created FROM vulnerability;

-- name: resolve_missing_findings$
-- Resolves this agent's detected or confirmed cluster image scanning vulnerabilities whose finding
-- uuid is not in the list (StarboardVulnerabilityResolveService). Returns how many.
-- $1 agent id, $2 project id, $3 uuids (lower-case text)
WITH resolved AS (
    UPDATE vulnerabilities v
    SET state = 'resolved', resolved_on_default_branch = true, resolved_at = now(), updated_at = now()
    FROM vulnerability_findings f
    WHERE v.finding_id = f.id
      AND f.agent_id = $1
      AND f.project_id = $2
      AND f.report_type = 'cluster_image_scanning'
      AND v.state IN ('detected', 'confirmed')
      AND NOT (f.uuid::text = ANY ($3::text[]))
    RETURNING v.id
)
SELECT count(*) FROM resolved;

-- name: scan_execution_policies_for_project
-- The scan execution policies an operator set for a project, oldest first.
-- $1 project id
SELECT name, description, enabled, actions, rules, updated_at
FROM security_scan_execution_policies
WHERE project_id = $1
ORDER BY id;
