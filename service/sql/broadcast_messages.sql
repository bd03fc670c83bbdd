-- broadcast_messages (GitLab lib/api/broadcast_messages.rb).
-- Lists of the admin API return one row even when the page is empty: `total` is the match count
-- for the pagination headers, and the item columns are NULL on that filler row (see rows.paged).

-- name: list_broadcast_messages
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

-- name: find_broadcast_message^
-- One broadcast message.
-- $1 id
SELECT id, message, starts_at, ends_at, broadcast_type, target_path, target_access_levels, show_in_cli,
       dismissable, theme
FROM broadcast_messages WHERE id = $1;

-- name: insert_broadcast_message<!
-- A broadcast message; NULL takes the column default.
-- $1 message, $2 starts_at, $3 ends_at, $4 type, $5 target path, $6 target access levels,
-- $7 show_in_cli, $8 dismissable, $9 theme
INSERT INTO broadcast_messages (message, starts_at, ends_at, broadcast_type, target_path, target_access_levels,
                                show_in_cli, dismissable, theme)
VALUES ($1, COALESCE($2::timestamptz, now()), COALESCE($3::timestamptz, COALESCE($2::timestamptz, now()) + interval '1 hour'),
        COALESCE($4::text, 'banner'), COALESCE($5::text, ''), COALESCE($6::integer[], '{}'),
        COALESCE($7::boolean, true), COALESCE($8::boolean, false), COALESCE($9::text, 'indigo'))
RETURNING id;

-- name: update_broadcast_message<!
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

-- name: delete_broadcast_message<!
-- Removes a broadcast message.
-- $1 id
DELETE FROM broadcast_messages WHERE id = $1 RETURNING id;
