"""The gitlab-internal-api command: serve, migrate, seed-demo, shell-jwt, create-admin (+ module commands)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

from service.config import Settings, load_settings
from service.logs import configure_logging
from service.secrets import Secrets, load_secrets

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
    return load_settings(Path(args.config) if args.config else None)


def _with_services(settings: Settings):  # type: ignore[no-untyped-def]
    """Settings pointing at real or embedded servers, and the handle that stops the embedded ones."""
    from service.embedded import ensure_services

    services = ensure_services(settings.database_url, settings.redis_url, settings.state_dir)
    return settings.with_overrides(database_url=services.database_url, redis_url=services.redis_url), services


def run_worker(settings: Settings, secrets: Secrets, reuse_port: bool) -> None:
    """One worker process: the application on uvloop, draining requests in flight on SIGTERM."""
    from aiohttp import web

    from service.app import create_app
    from service.logs import JsonAccessLogger

    configure_logging(settings.log_level)
    loop: asyncio.AbstractEventLoop
    try:
        import uvloop

        loop = uvloop.new_event_loop()
    except ImportError:  # pragma: no cover - uvloop is pinned on every supported platform
        loop = asyncio.new_event_loop()
    app = create_app(settings, secrets)
    app.on_startup.append(_tune_garbage_collector)  # last: after everything start-up builds
    web.run_app(
        app,
        host=settings.host,
        port=settings.port,
        loop=loop,
        reuse_port=reuse_port,
        access_log_class=JsonAccessLogger,
        access_log=logging.getLogger("aiohttp.access") if settings.access_log else None,
        shutdown_timeout=settings.shutdown_timeout,
        print=None,
    )


async def _tune_garbage_collector(_app: object) -> None:
    """Fewer, cheaper collections: the objects made at start-up (modules, routes, SQL) are frozen
    out of the collector's view, and young-generation passes run every 10,000 allocations instead
    of 700 (each request allocates and frees thousands of short-lived objects that reference
    counting already reclaims)."""
    import gc

    gc.freeze()
    gc.set_threshold(10_000, 20, 20)


def _serve_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host")
    parser.add_argument("--port", type=int)
    parser.add_argument("--workers", type=int, help="worker processes sharing the port (default 1)")
    parser.add_argument("--no-migrate", action="store_true", help="do not apply migrations at start-up")


@command("serve", "run the service", _serve_arguments)
def serve(args: argparse.Namespace) -> int:
    settings = _settings(args)
    configure_logging(settings.log_level)
    overrides = {k: v for k, v in {"host": args.host, "port": args.port, "workers": args.workers}.items() if v}
    settings = settings.with_overrides(**overrides)
    settings, services = _with_services(settings)
    try:
        secrets = load_secrets(settings.shell_secret_file, settings.kas_secret_file, settings.db_key_base_file)
        if not args.no_migrate:
            from service.db.migrate import migrate

            applied = asyncio.run(migrate(settings.database_url))
            log.info("migrations applied: %s", ", ".join(applied) or "none pending")
        from service.domain.repository import CHECKS_NEEDING_REPOSITORY, RepositoryInspector

        reason = RepositoryInspector(settings.storages).unavailable_reason
        if reason:
            log.warning("%s: these push checks are off: %s", reason, "; ".join(CHECKS_NEEDING_REPOSITORY))
        log.info("listening on http://%s:%s with %d worker(s)", settings.host, settings.port, settings.workers)
        if settings.workers <= 1:
            run_worker(settings, secrets, reuse_port=False)
            return 0
        return _run_workers(settings, secrets)
    finally:
        services.stop()


def _run_workers(settings: Settings, secrets: Secrets) -> int:
    """N spawned processes on one port (SO_REUSEPORT); SIGTERM is passed on and awaited."""
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: no inherited atexit hooks
    workers = [
        context.Process(target=run_worker, args=(settings, secrets, True), name=f"worker-{n}")
        for n in range(settings.workers)
    ]
    for worker in workers:
        worker.start()
    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for worker in workers:
            if worker.is_alive() and worker.pid:
                worker.terminate()  # SIGTERM: each worker finishes its requests in flight

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while any(worker.is_alive() for worker in workers):
        if not stopping and any(w.exitcode not in (None, 0) for w in workers):
            log.error("a worker died; stopping the others")
            stop(signal.SIGTERM, None)
        time.sleep(0.2)
    for worker in workers:
        worker.join(settings.shutdown_timeout)
    return 0


@command("migrate", "apply pending SQL migrations")
def migrate_command(args: argparse.Namespace) -> int:
    from service.db.migrate import migrate

    settings = _settings(args)
    configure_logging(settings.log_level)
    settings, services = _with_services(settings)
    try:
        applied = asyncio.run(migrate(settings.database_url))
    finally:
        services.stop()
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
    configure_logging(settings.log_level)
    settings, services = _with_services(settings)
    try:
        from service.db.migrate import migrate

        asyncio.run(migrate(settings.database_url))
        print(asyncio.run(seed(settings.database_url)))
    finally:
        services.stop()
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
    from service.domain.admin.errors import AdminError
    from service.logs import JsonFormatter

    settings = _settings(args)
    # The token is the only line on stdout, so `TOKEN=$(gitlab-internal-api create-admin root)`
    # works: logs go to stderr, and so does anything the embedded servers write to fd 1.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    logging.getLogger().handlers[:] = [handler]
    logging.getLogger().setLevel(settings.log_level)
    sys.stdout.flush()
    saved_stdout = os.dup(1)
    os.dup2(2, 1)
    try:
        settings, services = _with_services(settings)
        try:
            asyncio.run(migrate(settings.database_url))
            token = asyncio.run(create_admin(settings.database_url, args.username, args.email, args.admin_mode))
        finally:
            services.stop()
    except NotAnAdmin:
        log.error("user %s exists and is not an administrator; not promoting it", args.username)
        return 1
    except AdminError as exc:
        log.error("cannot create %s: %r", args.username, exc)
        return 1
    finally:
        sys.stdout.flush()
        os.dup2(saved_stdout, 1)
        os.close(saved_stdout)
    print(token)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gitlab-internal-api")
    parser.add_argument("--config", help="a TOML file overlaid on config/default.toml")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (help_text, arguments, _run) in COMMANDS.items():
        arguments(sub.add_parser(name, help=help_text))
    args = parser.parse_args(argv)
    return COMMANDS[args.command][2](args)


if __name__ == "__main__":
    sys.exit(main())
