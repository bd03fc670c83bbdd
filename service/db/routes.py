"""routes and redirect_routes: the full paths of namespaces and projects (sql/routes.sql)."""

from __future__ import annotations

from collections.abc import Sequence

from service.db.queries import statement, value
from service.db.rows import Conn

_PATH_TAKEN = value("path_taken")
_INSERT = statement("insert_route")
_DELETE_REDIRECTS = statement("delete_redirects_at_or_under")
_REDIRECT = statement("redirect_routes_at_or_under")
_MOVE = statement("move_routes_at_or_under")
_RENAME = statement("rename_route")
_DELETE_ROUTES_OF = statement("delete_routes_of")


async def path_taken(conn: Conn, full_path: str) -> bool:
    taken: bool = await conn.fetchval(_PATH_TAKEN, full_path)
    return taken


async def insert_route(conn: Conn, source_type: str, source_id: int, full_path: str, full_name: str) -> None:
    """The route of a new namespace or project; it takes its path over from any redirect there."""
    await conn.execute(_DELETE_REDIRECTS, full_path)
    await conn.execute(_INSERT, source_type, source_id, full_path, full_name)


async def move_routes(conn: Conn, old_full_path: str, new_full_path: str) -> None:
    """Moves the route at old_full_path and every route under it; call inside a transaction.

    Each old path is left behind as a redirect, except on a change of letter case only (the old
    path still resolves to the same route then).
    """
    await conn.execute(_DELETE_REDIRECTS, new_full_path)
    if old_full_path.lower() != new_full_path.lower():
        await conn.execute(_REDIRECT, old_full_path)
    await conn.execute(_MOVE, old_full_path, new_full_path)


async def rename_route(conn: Conn, source_type: str, source_id: int, full_name: str) -> None:
    await conn.execute(_RENAME, source_type, source_id, full_name)


async def delete_routes_of(conn: Conn, namespace_ids: Sequence[int], project_ids: Sequence[int]) -> None:
    """Before the namespaces and projects themselves are deleted (no foreign key brings these along)."""
    await conn.execute(_DELETE_ROUTES_OF, list(namespace_ids), list(project_ids))
