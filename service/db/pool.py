"""The PostgreSQL connection pool, for a direct connection or for PgBouncer in transaction mode.

Direct (the default, `prepared_statements = true`): asyncpg's statement cache keeps each query
prepared on its server connection, and `plan_cache_mode = force_generic_plan` is sent as a startup
parameter so PostgreSQL plans the batched array queries once instead of on every execution
(measured 1.9 ms against 0.5 ms per execution).

PgBouncer, transaction pooling (`prepared_statements = false`, as GitLab's database.yml): a client
connection is bound to a server connection only until the server is idle again, so
- named prepared statements would be left on a server connection that the next client gets
  (`prepared statement "__asyncpg_stmt_N__" does not exist` / `already exists`): the statement cache
  is off and asyncpg uses the unnamed statement. asyncpg sends its Parse/Describe with a Flush, not a
  Sync, so the server stays bound to this client until the Bind/Execute/Sync that follows: the
  unnamed statement never crosses to another server connection (tested with 64 clients sharing 4
  server connections, tests/topology/test_pgbouncer.py);
- PgBouncer 1.18 refuses unknown startup parameters: none beyond `application_name` is sent. With
  unnamed statements each execution is planned anyway, so `plan_cache_mode` would buy nothing.
Session state (advisory locks, LISTEN, SET) is never used on pooled connections: migrations take a
transaction-level lock (service/db/migrate.py), and the code's own locks are `pg_advisory_xact_lock`.

Several hosts in the URL (`postgresql://h1,h2/db?target_session_attrs=read-write`) are tried in
order by asyncpg on every new connection, so after a failover new connections find the promoted
primary; what fails meanwhile is a `database_outage` (503 for the client, see service/errors.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from asyncpg import exceptions as pg_errors

from service.config import Settings

APPLICATION_NAME = "gitlab-internal-api"

# PostgreSQL refused a value a request carried (a NUL byte, a number out of range, a key too long
# for an index...): that request's input, answered 400 (service/errors.py), and in a batch of
# concurrent requests (service/db/batch.py) no reason to fail the others.
REFUSED_VALUE_ERRORS: tuple[type[Exception], ...] = (asyncpg.DataError, asyncpg.ProgramLimitExceededError)

# Raised when the server cannot be reached, refuses connections for now, was shut down under an
# open connection, or is a standby (a demoted primary). None of them says anything about the request.
_OUTAGE_ERRORS: tuple[type[BaseException], ...] = (
    pg_errors.PostgresConnectionError,  # class 08 (PgBouncer's "no server" errors too)
    pg_errors.CannotConnectNowError,  # 57P03: starting up, shutting down, in recovery
    pg_errors.AdminShutdownError,  # 57P01: terminated by a restart
    pg_errors.CrashShutdownError,  # 57P02
    pg_errors.TooManyConnectionsError,  # 53300
    pg_errors.ReadOnlySQLTransactionError,  # 25006: connected to a standby
    pg_errors.InternalClientError,  # asyncpg's state machine after a dropped connection
)
# Raised by sockets and timers anywhere (a client that hangs up mid-upload, a `git` that cannot
# fork): a database outage only when asyncpg raised it (connect refused, connect or command timeout).
_SOCKET_ERRORS = (OSError, asyncio.TimeoutError)


def _raised_in_asyncpg(exc: BaseException) -> bool:
    traceback = exc.__traceback__
    while traceback is not None:
        if traceback.tb_frame.f_globals.get("__name__", "").startswith("asyncpg."):
            return True
        traceback = traceback.tb_next
    return False


def is_database_outage(exc: BaseException) -> bool:
    """True when `exc` means the database cannot serve requests now (retry later), not a bad request."""
    if isinstance(exc, _OUTAGE_ERRORS):
        return True
    if isinstance(exc, _SOCKET_ERRORS):
        return _raised_in_asyncpg(exc)
    # asyncpg raises a plain InterfaceError for a connection that was closed under it.
    return isinstance(exc, pg_errors.InterfaceError) and "connection is closed" in str(exc)


def describe_outage(exc: BaseException) -> str:
    """The error's class and message, without the DSN (which may hold a password)."""
    return f"{type(exc).__name__}: {str(exc)[:200]}"


async def _rollback_if_dirty(conn: asyncpg.Connection) -> None:
    """Pool release hook, replacing asyncpg's default reset query on every release.

    The default runs `SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL` on each
    release: a second round trip for every request. Request code never changes session state
    (no SET, LISTEN, advisory locks or open cursors), so the only state a released connection can
    carry is an unfinished transaction after an error, which asyncpg's own release rolls back.
    """
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


# How long a released connection may take to finish a cancelled query and roll back before it is
# dropped instead. A query that timed out or was cancelled leaves asyncpg sending a cancel request
# on a second connection, and release waits for it: a healthy server answers it in milliseconds, a
# frozen one (a stopped process, a partitioned host) never, and asyncpg's release then held the
# request for as long again as the command_timeout that had already expired, and /-/readiness for
# a minute past its one-second probe.
RELEASE_TIMEOUT = 2.0


class _Pool(asyncpg.Pool):
    """asyncpg's pool, whose release drops a connection it cannot clean up within RELEASE_TIMEOUT."""

    __slots__ = ()

    async def release(self, connection: Any, *, timeout: float | None = None) -> None:
        try:
            await super().release(connection, timeout=RELEASE_TIMEOUT if timeout is None else timeout)
        except asyncio.TimeoutError:
            # asyncpg has terminated the connection (the pool opens another when one is needed);
            # what the request did on it stands, and its own failure, if any, is the one raised.
            pass


def create_pool(
    settings: Settings, on_connect: Callable[[asyncpg.Connection], Awaitable[None]], *, warm: bool = True
) -> asyncpg.Pool:
    """The pool for `settings`; `on_connect` runs on each new server connection before it is used
    (an exception there fails the acquire, or the pool's start).

    warm: open and keep `pool_min_size` connections (False: connect on first use only, for a pool
    started while the database is down).
    """

    options: dict[str, Any] = {
        "min_size": settings.pool_min_size if warm else 0,
        "max_size": settings.pool_max_size,
        "max_queries": 50_000,
        "max_inactive_connection_lifetime": 300.0,
        "command_timeout": settings.command_timeout,
        "timeout": settings.connect_timeout,
        "init": on_connect,
        "reset": _rollback_if_dirty,
        "loop": None,
        "connection_class": asyncpg.Connection,
        "record_class": asyncpg.Record,
    }
    server_settings = {"application_name": APPLICATION_NAME}
    if settings.database_prepared_statements:
        server_settings["plan_cache_mode"] = "force_generic_plan"
    else:
        options["statement_cache_size"] = 0
    return _Pool(settings.database_url, server_settings=server_settings, **options)
