-- name: get_application_settings
-- The one row of instance settings the internal endpoints read.
SELECT * FROM application_settings WHERE id = 1;
