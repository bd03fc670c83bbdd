"""Upcoming seat reconciliations (GitLab: ee/app/services/upcoming_reconciliations/update_service.rb).

GitLab validates each record, upserts the valid ones in one statement keyed on namespace_id, and
reports the invalid ones. The upsert itself is all-or-nothing; invalid records do not stop the
valid ones, so one deleted namespace cannot block every other customer's alert. Re-sending the
same batch converges to the same rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import orjson

from service.db import billing as db
from service.db.rows import Conn
from service.domain.errors import Refused


@dataclass(frozen=True)
class ReconciliationRequest:
    namespace_id: int
    next_reconciliation_date: date | None
    display_alert_from: date | None


class ReconciliationsInvalid(Refused):
    """Some records were invalid: `errors_json` is GitLab's `errors.to_json`, e.g.
    `[{"127":["Namespace can't be blank"]}]`, answered as render_api_error!({error: ...}, 400)."""

    def __init__(self, errors_json: str) -> None:
        super().__init__({"error": errors_json})
        self.errors_json = errors_json


def record_errors(item: ReconciliationRequest, namespace_exists: bool) -> list[str]:
    """UpcomingReconciliation's full_messages, in the model's order."""
    messages = []
    if not namespace_exists:
        # belongs_to :namespace; validates :namespace, presence: true on GitLab.com
        messages.append("Namespace can't be blank")
    if item.next_reconciliation_date is None:
        messages.append("Next reconciliation date can't be blank")
    if item.display_alert_from is None:
        messages.append("Display alert from can't be blank")
    return messages


async def upsert(conn: Conn, items: Sequence[ReconciliationRequest]) -> int:
    """Upsert every valid record (one statement: all of them or none), then raise
    ReconciliationsInvalid for the invalid ones, as GitLab does. Each record stands alone, and
    refusing the whole batch would let one deleted namespace block every other customer's alert."""
    existing = await db.existing_namespace_ids(conn, [item.namespace_id for item in items])
    errors: list[dict[str, list[str]]] = []
    # namespace_id -> (next reconciliation date, display alert from); a namespace repeated in one
    # batch keeps its last record (one statement cannot update a row twice, and failing the whole
    # batch for it would help nobody).
    valid: dict[int, tuple[date, date]] = {}
    for item in items:
        messages = record_errors(item, item.namespace_id in existing)
        if messages or item.next_reconciliation_date is None or item.display_alert_from is None:
            errors.append({str(item.namespace_id): messages})
        else:
            valid[item.namespace_id] = (item.next_reconciliation_date, item.display_alert_from)
    if valid:
        await db.upsert_upcoming_reconciliations(
            conn,
            list(valid),
            [dates[0] for dates in valid.values()],
            [dates[1] for dates in valid.values()],
        )
    if errors:
        raise ReconciliationsInvalid(orjson.dumps(errors).decode())
    return len(valid)


async def delete(conn: Conn, namespace_id: int) -> bool:
    """UpcomingReconciliation.next(namespace_id)&.destroy!: False when there was none."""
    return await db.delete_upcoming_reconciliation(conn, namespace_id)
