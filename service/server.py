"""`serve`: the application under gunicorn's arbiter, driven from Python (no gunicorn command line).

The launcher (service/cli.py) starts the embedded servers, applies the migrations and reads the
secrets; then this module's Arbiter binds the port and forks the workers, which inherit all of it.
The arbiter replaces a worker that dies (kill -9, out of memory, a hung event loop that stops its
heartbeat) within about a second while the others keep accepting on the shared socket; it exits 0
after SIGTERM/SIGINT (workers drain their requests in flight first) and non-zero when it gives up:
3 when a worker fails to boot (the application's start-up raised, e.g. Redis unreachable), 1 when
the port cannot be bound.

Even one worker runs under the arbiter. `serve` is the container command and the default is one
worker per container: supervised, a crashed or OOM-killed worker is back in about a second, where an
orchestrator restarts the whole container (embedded servers and migrations again, with a growing
back-off, and no restart at all under a plain `docker run` or a systemd unit without Restart=); a
blocked event loop is detected by the heartbeat; PID 1 reaps the children of `git` calls; and signals,
logs and exit codes are the same for every --workers value. The cost is one idle master process
(measured: 12 MB of its own, 60 MB resident counting the module pages it shares with the workers),
not on the request path: workers accept from the socket directly.
"""

from __future__ import annotations

import gc
import logging
import math
import multiprocessing
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from types import FrameType
from typing import Any

from aiohttp import web
from aiohttp.worker import GunicornUVLoopWebWorker
from gunicorn import glogging  # type: ignore[import-untyped]
from gunicorn.app.base import BaseApplication  # type: ignore[import-untyped]
from gunicorn.arbiter import Arbiter  # type: ignore[import-untyped]
from gunicorn.errors import HaltServer  # type: ignore[import-untyped]

# Imported here, in the launcher, so that forked workers share these modules' pages and a
# replacement worker boots without importing the application again.
from service.app import create_app
from service.config import Settings
from service.logs import ACCESS_LOG, JsonAccessLogger
from service.secrets import Secrets
from service.stopping import StopRequested

log = logging.getLogger("gitlab_internal_api")

# The signals a worker handles itself (aiohttp's GunicornWebWorker.init_signals). Between the fork and
# the worker's own handlers the child still has the arbiter's, which only queue the signal in the
# child's copy of the arbiter: a SIGTERM sent then was lost, and the worker served on until the
# arbiter killed it a graceful timeout later. The arbiter sends exactly then when it is stopped
# while spawning (it forks its next worker before it reads the SIGTERM it was sent): about 1 run in
# 20 of tests/test_serve.py's in-flight test with two workers on a busy machine. They are held
# (blocked) across the fork and let through once the worker's handlers listen.
WORKER_SIGNALS = frozenset(
    {signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGUSR1, signal.SIGABRT, signal.SIGWINCH}
)

# Seconds the arbiter waits for a worker's drain beyond `shutdown_timeout`: closing the pools and
# the Redis connections after the last request. Past it the arbiter kills the worker.
DRAIN_MARGIN = 5.0


class GunicornLogger(glogging.Logger):  # type: ignore[misc]
    """gunicorn's own lines (worker boots, deaths, the reason for halting) through the service's
    logging configuration, i.e. as JSON lines on standard output like everything else."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for logger in (self.error_log, self.access_log):
            for handler in list(logger.handlers):
                logger.removeHandler(handler)
        self.error_log.propagate = True  # to the root logger's JSON handler (configure_logging)
        self.error_log.addFilter(_closed_twice)
        self.access_log.disabled = True  # requests are logged by JsonAccessLogger


def _closed_twice(record: logging.LogRecord) -> bool:
    """Each exiting worker logs "Error while closing socket [Errno 9]": aiohttp's server has already
    closed the listening socket that gunicorn's wrapper then closes again. Harmless; not logged."""
    return not (record.msg == "Error while closing socket %s" and "[Errno 9]" in str(record.args))


class ServiceWorker(GunicornUVLoopWebWorker):
    """aiohttp's uvloop worker; the application and its AppRunner come from ServiceApplication."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:
            if self.booted:
                raise
            # The application's start-up failed (Redis unreachable, migrations missing...): one line
            # that says why, not gunicorn's traceback; the arbiter then halts (WORKER_BOOT_ERROR).
            log.error("start-up failed: %s: %s", type(exc).__name__, exc)
            log.debug("traceback", exc_info=exc)
            sys.exit(Arbiter.WORKER_BOOT_ERROR)

    def init_signals(self) -> None:
        super().init_signals()
        # Held since before the fork (ServiceArbiter.spawn_worker), let through once the loop runs:
        # uvloop reads the signals its handlers were added for only while it runs (not before
        # run_until_complete), so one let through now would be lost again. Sent meanwhile, it
        # arrives then.
        self.loop.call_soon(signal.pthread_sigmask, signal.SIG_UNBLOCK, WORKER_SIGNALS)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        # aiohttp's worker notices `alive` at its next one-second heartbeat; start draining now.
        self._notify_waiter_done()


class ServiceArbiter(Arbiter):  # type: ignore[misc]
    """gunicorn's arbiter, minus a second HaltServer while it is already halting.

    When every worker fails to boot, the first exit (code 3) makes the arbiter halt; stopping
    the others reaps the next exit 3, and gunicorn 27.0.1 raises HaltServer again from inside
    stop(): it escapes run() as a traceback, the reason is never logged and the remaining workers
    are not stopped. While halting, the reason is already known; keep reaping.
    """

    halting = False

    def halt(self, reason: str | None = None, exit_status: int = 0) -> None:
        self.halting = True
        super().halt(reason=reason, exit_status=exit_status)

    def handle_usr2(self) -> None:
        # gunicorn's binary upgrade re-executes the command line: here the whole launcher (embedded
        # servers, migrations) a second time beside the running one. Deploy by restarting instead.
        self.log.warning("SIGUSR2 ignored: restart the service to upgrade; SIGHUP replaces the workers")

    def spawn_worker(self) -> int:
        # Held across the fork (see WORKER_SIGNALS); the child lets them through in init_signals, the
        # arbiter as soon as fork() returned. A child never returns from here: it exits inside, and
        # the `finally` restores the arbiter's mask on its way out (harmless by then).
        held = signal.pthread_sigmask(signal.SIG_BLOCK, WORKER_SIGNALS)
        try:
            return int(super().spawn_worker())
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)

    def reap_workers(self) -> None:
        while True:
            try:
                super().reap_workers()
                return
            except HaltServer:
                if not self.halting:
                    raise


class ServiceApplication(BaseApplication):  # type: ignore[misc]
    """The settings and secrets loaded once by the launcher, handed to every forked worker."""

    def __init__(self, settings: Settings, secrets: Secrets) -> None:
        self.settings = settings
        self.secrets = secrets
        # shared with the forked workers: the first one whose application started says "listening"
        self.announced = multiprocessing.Value("b", 0)
        super().__init__(prog="gitlab-internal-api")

    def load_config(self) -> None:
        settings = self.settings
        host = f"[{settings.host}]" if ":" in settings.host else settings.host
        options: dict[str, Any] = {
            "bind": [f"{host}:{settings.port}"],
            "workers": max(1, settings.workers),
            "worker_class": "service.server.ServiceWorker",
            "graceful_timeout": math.ceil(settings.shutdown_timeout + DRAIN_MARGIN),  # whole seconds
            "logger_class": "service.server.GunicornLogger",
            "loglevel": settings.log_level.lower(),
            "proc_name": "gitlab-internal-api",
            # gunicorn >= 24 opens ~/.gunicorn/gunicorn.ctl by default: two instances on one
            # machine share the path and the second removes the first one's socket on exit.
            "control_socket_disable": True,
            "child_exit": _child_exit,
        }
        if os.path.isdir("/dev/shm"):
            # the heartbeat file is fchmod()ed every second; on a disk-backed /tmp that can block
            options["worker_tmp_dir"] = "/dev/shm"
        for name, value in options.items():
            self.cfg.set(name, value)

    def run(self) -> None:
        ServiceArbiter(self).run()  # SystemExit with the master's exit status

    def load(self) -> Callable[[], Awaitable[web.AppRunner]]:
        settings, secrets, announced = self.settings, self.secrets, self.announced

        async def announce(_app: web.Application) -> None:
            """Once, when the first worker's start-up (pools, Redis) succeeded: the service answers
            from now on. A start-up that fails never says it is listening."""
            with announced.get_lock():
                if announced.value:
                    return
                announced.value = 1
            log.info("listening on http://%s:%s with %d worker(s)", settings.host, settings.port, settings.workers)

        async def runner() -> web.AppRunner:
            """Called in each worker, on its own uvloop loop; aiohttp's worker sets it up and
            serves it on the arbiter's sockets."""
            app = create_app(settings, secrets)
            app.on_startup.append(_tune_garbage_collector)  # last: after everything start-up builds
            app.on_startup.append(announce)
            return web.AppRunner(
                app,
                access_log_class=JsonAccessLogger,
                access_log=logging.getLogger("aiohttp.access") if settings.access_log else None,
                shutdown_timeout=settings.shutdown_timeout,
            )

        return runner


def _child_exit(_arbiter: Any, worker: Any) -> None:
    """gunicorn's child_exit: the dead worker's live gauges leave the metric sums."""
    from service.metrics import worker_exited

    worker_exited(worker.pid)


async def _tune_garbage_collector(_app: object) -> None:
    """Fewer, cheaper collections: the objects made at start-up (modules, routes, SQL) are frozen
    out of the collector's view, and young-generation passes run every 10,000 allocations instead
    of 700 (each request allocates and frees thousands of short-lived objects that reference
    counting already reclaims)."""
    gc.freeze()
    gc.set_threshold(10_000, 20, 20)


def _exit_status(code: object) -> int:
    if code is None:
        return 0
    return code if isinstance(code, int) else 1


def run(settings: Settings, secrets: Secrets) -> int:
    """Serve until stopped; the master's exit status (0 after SIGTERM/SIGINT)."""
    launcher = os.getpid()
    sys.stdout.flush()  # or each fork inherits (and repeats) what is still buffered
    status = 1
    try:
        ServiceApplication(settings, secrets).run()
        status = 0
    except StopRequested:
        raise  # a SIGTERM before the arbiter took the signals over: `main` ends the launcher by it
    except SystemExit as stop:
        status = _exit_status(stop.code)
    finally:
        if os.getpid() != launcher:
            # A forked worker leaving: gunicorn ends a worker with sys.exit(), which unwinds into
            # the launcher's frames. os._exit skips their clean-up (stopping the embedded servers)
            # and the atexit hooks inherited from the launcher (which would stop them too).
            ACCESS_LOG.flush()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(status)
    return status
