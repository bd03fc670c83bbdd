"""The durable job queue (procrastinate on PostgreSQL) and the worker that runs its jobs.

Why procrastinate on PostgreSQL rather than arq/saq on Redis: a job must outlive a worker crash and
a failover. Here the job is a row, inserted by post_receive in the same round trip budget as before
and in the database that the push's events live in; a Redis failover (asynchronous replication,
where an acknowledged write can be lost) cannot lose it, and a PostgreSQL failover keeps what the
promoted standby had. A worker fetches a job with `FOR UPDATE SKIP LOCKED`; a worker that dies
(SIGKILL, OOM, node loss) stops sending its heartbeat, and any live worker puts the dead one's jobs
back (`rescue_stalled_jobs`), so delivery is at-least-once and the jobs are idempotent
(service/domain/push_jobs.py). arq has no Redis Cluster support and loses jobs on a Sentinel
failover; procrastinate is kept up by a team, typed, and needs no other server.

Connections: post_receive enqueues through the service's own asyncpg pool, with procrastinate's
versioned SQL function (procrastinate_defer_jobs_v1): one statement, so it works through PgBouncer in
transaction mode. The worker uses procrastinate's psycopg connector on the *direct* database URL
(DATABASE_MIGRATION_URL, else DATABASE_URL): LISTEN/NOTIFY, which wakes it the moment a job is
queued, is session state that PgBouncer's transaction pooling cannot carry. Behind PgBouncer without
a direct URL the worker polls every second instead, and psycopg never prepares named statements.

The worker's fetch (procrastinate_fetch_job_v2) keeps the library's rule with migration 0402's
implementation: the library's reads a repository's whole backlog on every fetch (upstream #1242), and
a one-repository backlog of 100,000 jobs drained at 0-29 jobs/s (`bench/job_fetch.py`). When the
procrastinate pin moves, check that its migrations do not redefine that function, or port 0402.
Migration 0403 likewise runs the library's two insert triggers (the 'deferred' event row, the
"job inserted" NOTIFY) once per statement instead of once per job: check that a new pin does not
recreate those triggers (procrastinate_trigger_status_events_insert_v1,
procrastinate_jobs_notify_queue_job_inserted_v1), nor change what their functions do
(procrastinate_trigger_function_status_events_insert_v1, procrastinate_notify_queue_job_inserted_v1:
0403 no longer calls them, so a change there would not take effect), or port 0403. Migration 0404
plans procrastinate's per-job functions (defer, finish, retry, and 0402's fetch) without sequential
scans, so their foreign-key checks stay index lookups after the drained queue was vacuumed: a pin
that recreates those functions drops the setting; apply it again. ChainingJobManager also makes up
for two things procrastinate 3.10.0's worker does not do through a database outage: LISTEN again
once its listener's reconnection was refused, and write a job's end again when that write failed;
check both against a new pin's worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import procrastinate
import psycopg
from aiohttp import web
from procrastinate import JobContext, RetryDecision
from procrastinate.exceptions import ConnectorException
from procrastinate.jobs import Job, Status
from procrastinate.manager import JobManager, NotificationCallback
from procrastinate.retry import BaseRetryStrategy

from service.db.rows import Pool
from service import app_keys
from service.config import Settings
from service.db.pool import create_pool
from service.domain import webhooks
from service.domain.token_box import TokenBox
from service.secrets import load_db_key_base
from service.domain.push_jobs import PostReceiveJob, PushDeps, run_post_receive_job
from service.domain.repository import RepositoryInspector
from service.domain.urls import InstanceUrls
from service.logs import CORRELATION_ID
from service.webhook_client import WebhookClient

log = logging.getLogger("gitlab_internal_api.jobs")

POST_RECEIVE_QUEUE = "post_receive"
WEB_HOOKS_QUEUE = "web_hooks"
QUEUES = [POST_RECEIVE_QUEUE, WEB_HOOKS_QUEUE]
POST_RECEIVE_RETRY_SECONDS = 5.0
RESTART_DELAY = 2.0  # after the worker stopped on an error (the database was down)
LISTEN_RETRY_SECONDS = 1.0  # LISTEN again after the database refused the listener
JOB_END_RETRY_SECONDS = 1.0  # write a job's end again after the database was away


class DeliveryFailed(Exception):
    """The receiver failed and the hook is still executable: the delivery job runs again later."""


class Backoff(BaseRetryStrategy):
    """At most `max_attempts` runs in all, waiting base, 2*base, 4*base... between them."""

    def __init__(self, max_attempts: int, base_seconds: float) -> None:
        self.max_attempts = max_attempts
        self.base_seconds = base_seconds

    def get_retry_decision(self, *, exception: BaseException, job: Job) -> RetryDecision | None:
        if job.attempts + 1 >= self.max_attempts:
            return None
        return RetryDecision(retry_in={"seconds": self.base_seconds * 2**job.attempts})


@dataclass(frozen=True)
class Runtime:
    """What the tasks use, built once per worker."""

    push: PushDeps
    http: webhooks.HookClient
    delivery: webhooks.DeliveryConfig
    webhook_max_attempts: int


def _runtime(context: JobContext) -> Runtime:
    runtime = (context.additional_context or {})["runtime"]
    assert isinstance(runtime, Runtime)
    return runtime


def listens(settings: Settings) -> bool:
    """LISTEN works on a direct connection: the default setup, or a separate DATABASE_MIGRATION_URL."""
    return settings.database_prepared_statements or bool(settings.database_migration_url)


class ChainingJobManager(JobManager):
    """Fetches a repository's next job the moment its previous one ends.

    procrastinate's worker fetches again only when a slot frees up *and* its last fetch found a job;
    otherwise it waits for a "job inserted" notification or the polling interval. With a lock that
    is not enough: while a repository's job runs, the other slots' fetch finds nothing (the lock is
    taken), and when the job ends nothing wakes the worker, so a repository's backlog drained at one
    job per polling interval (1 job/s, whatever the concurrency). This manager tells its own worker,
    through the worker's notification callback (what a NOTIFY from the database would do), that a
    locked job of this worker ended: the fetch that follows starts after the job's row left 'doing',
    so it finds the lock's next job. A wake-up that lands while a fetch is in flight would be cleared
    by the worker when that fetch returns (the fetch may have run before the lock was released), so
    it is sent again after that fetch. Only this process's worker is told: it is the one with a free
    slot. Behind PgBouncer (no LISTEN) the callback is still installed, without a database listener.
    """

    def __init__(self, connector: procrastinate.BaseConnector, listen: bool) -> None:
        super().__init__(connector)
        self.listen = listen
        self._wake: NotificationCallback | None = None
        self._fetching = 0
        self._released_during_fetch = False
        self._wakes: set[asyncio.Task[None]] = set()
        self._listen_failing = False

    async def listen_for_jobs(self, *, on_notification: NotificationCallback, queues: Any = None) -> None:
        """Until the worker stops: LISTEN, and LISTEN again when the database was away.

        procrastinate's listener reconnects after a broken connection, but not while the database
        refuses connections (a restart, a failover): it raises, its task ends, and procrastinate's
        worker does not notice (it watches its side tasks only until the first of them ends, and
        the periodic deferrer ends at once when there are no periodic tasks). The chained wake-ups
        ended with it, and a repository's backlog drained at one job per polling interval, with
        nothing logged. So this retries, and the wake-up callback stays installed meanwhile.
        """
        self._wake = on_notification
        try:
            if not self.listen:
                await asyncio.Event().wait()  # until the worker stops (cancels its side tasks)
                return
            while True:
                try:
                    await super().listen_for_jobs(on_notification=self._notified, queues=queues)
                    return  # procrastinate returns only when it cannot listen at all
                except Exception as exc:  # noqa: BLE001 (the database is away; polling goes on)
                    if not self._listen_failing:
                        log.warning(
                            "job notifications lost (%s: %s); listening again every %.0f s, polling meanwhile",
                            type(exc).__name__,
                            exc,
                            LISTEN_RETRY_SECONDS,
                        )
                    self._listen_failing = True
                await asyncio.sleep(LISTEN_RETRY_SECONDS)
        finally:
            self._wake = None

    async def _notified(self, **notification: Any) -> None:
        if self._listen_failing:
            self._listen_failing = False
            log.info("job notifications back")
        wake = self._wake
        if wake is not None:
            await wake(**notification)

    async def fetch_job(self, queues: Any, worker_id: int) -> Job | None:
        self._fetching += 1
        self._released_during_fetch = False
        try:
            return await super().fetch_job(queues=queues, worker_id=worker_id)
        finally:
            self._fetching -= 1
            if self._released_during_fetch and not self._fetching:
                self._released_during_fetch = False
                self._wake_worker()  # runs after the worker cleared its event for this fetch

    async def finish_job(self, job: Job, status: Status, delete_job: bool) -> None:
        await _until_written(job, lambda: super(ChainingJobManager, self).finish_job(job, status, delete_job))
        if job.lock is not None:
            self._lock_released()

    async def retry_job(
        self,
        job: Job,
        retry_at: Any = None,
        priority: int | None = None,
        queue: str | None = None,
        lock: str | None = None,
    ) -> None:
        await _until_written(
            job, lambda: super(ChainingJobManager, self).retry_job(job, retry_at, priority, queue, lock)
        )
        if job.lock is not None:
            self._lock_released()  # a job put back for now runs at once (one for later: the polling)

    def _lock_released(self) -> None:
        if self._fetching:
            self._released_during_fetch = True
        else:
            self._wake_worker()

    def _wake_worker(self) -> None:
        wake = self._wake
        if wake is None:
            return

        async def notify() -> None:
            await wake(channel="", notification={"type": "job_inserted", "job_id": 0})

        task = asyncio.create_task(notify())
        self._wakes.add(task)
        task.add_done_callback(self._wakes.discard)


async def _until_written(job: Job, write: Callable[[], Awaitable[None]]) -> None:
    """A job's end (finished, or put back for a retry), written however long the database is away.

    procrastinate logs a failed write and moves on, leaving the job 'doing' under a worker whose
    heartbeat stays fresh: no stalled-job rescue frees it, and its repository's later jobs waited
    behind it for good. So the slot keeps trying, every JOB_END_RETRY_SECONDS; a worker stopped
    meanwhile stops sending heartbeats, and its job is rescued as a dead worker's.
    """
    failing = False
    while True:
        try:
            await write()
        except ConnectorException as exc:
            if failing and isinstance(exc.__cause__, psycopg.errors.RaiseException):
                return  # "not in 'doing' status": an earlier try was written, its answer lost
            if not isinstance(exc.__cause__, psycopg.OperationalError):
                raise  # not the database being away
            if not failing:
                log.warning(
                    "could not write the end of job %s (%s); trying again every %.0f s",
                    job.id,
                    exc.__cause__,
                    JOB_END_RETRY_SECONDS,
                )
            failing = True
            await asyncio.sleep(JOB_END_RETRY_SECONDS)
        else:
            if failing:
                log.info("the end of job %s is written", job.id)
            return


def build_app(settings: Settings, concurrency: int) -> procrastinate.App:
    connector = procrastinate.PsycopgConnector(
        conninfo=settings.direct_database_url,
        min_size=1,
        max_size=concurrency + 2,  # the jobs, the fetch loop, the heartbeat and the rescuer
        # no named prepared statements: they would break through PgBouncer
        kwargs={"prepare_threshold": None, "application_name": "gitlab-internal-api-worker"},
    )
    app = procrastinate.App(connector=connector)
    # before the tasks are declared: they keep the manager they were declared with
    app.job_manager = ChainingJobManager(connector, listen=listens(settings))

    @app.task(
        name="post_receive",
        queue=POST_RECEIVE_QUEUE,
        pass_context=True,
        retry=Backoff(settings.post_receive_max_attempts, POST_RECEIVE_RETRY_SECONDS),
    )
    async def post_receive(
        context: JobContext,
        gl_repository: str,
        identifier: Any,
        changes: str,
        push_options: list[str] | None = None,
        correlation_id: str = "",
    ) -> None:
        job = PostReceiveJob(gl_repository, identifier, changes, push_options or [], correlation_id)
        token = CORRELATION_ID.set(correlation_id)
        try:
            assert context.job.id is not None
            await run_post_receive_job(_runtime(context).push, context.job.id, job)
        finally:
            CORRELATION_ID.reset(token)

    @app.task(
        name="deliver_web_hook",
        queue=WEB_HOOKS_QUEUE,
        pass_context=True,
        retry=Backoff(settings.webhook_max_attempts, settings.webhook_retry_seconds),
    )
    async def deliver_web_hook(context: JobContext, delivery_id: int) -> None:
        runtime = _runtime(context)
        last = context.job.attempts + 1 >= runtime.webhook_max_attempts
        outcome = await webhooks.send(runtime.push.pool, runtime.http, runtime.delivery, delivery_id, last_attempt=last)
        if outcome is not None and outcome.retry:
            raise DeliveryFailed(outcome.status)

    return app


async def rescue_stalled_jobs(app: procrastinate.App, stalled_seconds: float) -> None:
    """Put back the jobs of workers that stopped sending heartbeats (killed, or their node died)."""
    while True:
        await asyncio.sleep(max(stalled_seconds / 3, 0.2))
        try:
            stalled = await app.job_manager.get_stalled_jobs(seconds_since_heartbeat=stalled_seconds)
        except Exception as exc:  # the database is down: the worker itself says so
            log.debug("stalled job check failed: %s", exc)
            continue
        for job in stalled:
            with contextlib.suppress(Exception):  # another worker put it back first
                await app.job_manager.retry_job(job)
                log.warning("job %s (%s) of a dead worker runs again", job.id, job.task_name)


async def run_worker(
    settings: Settings,
    pool: Pool,
    repositories: RepositoryInspector,
    urls: InstanceUrls,
    concurrency: int,
    token_box: TokenBox,
) -> None:
    """Run jobs until cancelled; an error (the database went away) restarts the worker after a pause."""
    while True:
        try:
            await _run_once(settings, pool, repositories, urls, concurrency, token_box)
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.error("job worker stopped: %s: %s; restarting in %.0f s", type(exc).__name__, exc, RESTART_DELAY)
            await asyncio.sleep(RESTART_DELAY)


async def _run_once(
    settings: Settings,
    pool: Pool,
    repositories: RepositoryInspector,
    urls: InstanceUrls,
    concurrency: int,
    token_box: TokenBox,
) -> None:
    app = build_app(settings, concurrency)
    async with WebhookClient() as http, app.open_async():
        runtime = Runtime(
            push=PushDeps(pool=pool, repositories=repositories, urls=urls),
            http=http,
            delivery=webhooks.DeliveryConfig.from_settings(settings, token_box),
            webhook_max_attempts=settings.webhook_max_attempts,
        )
        # A cancellation that arrived while the connections opened can be lost inside a library (the
        # web worker's shutdown then waited for a job worker that started anyway, until gunicorn
        # killed it 30 s later: 6 SIGTERMs in 146 at start-up, in a loop of tests/test_serve
        # runs); the task still says it was asked to stop.
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise asyncio.CancelledError
        rescuer = asyncio.create_task(rescue_stalled_jobs(app, settings.jobs_stalled_seconds))
        try:
            await app.run_worker_async(
                queues=QUEUES,
                concurrency=concurrency,
                wait=True,
                install_signal_handlers=False,
                # always: the callback is how ChainingJobManager wakes the worker; it LISTENs only
                # when listens(settings)
                listen_notify=True,
                # NOTIFY wakes the worker for new jobs, ChainingJobManager for a repository's next
                # job; retries scheduled for later are found by polling
                fetch_job_polling_interval=1.0,
                additional_context={"runtime": runtime},
                update_heartbeat_interval=max(settings.jobs_stalled_seconds / 3, 0.2),
                stalled_worker_timeout=settings.jobs_stalled_seconds,
                shutdown_graceful_timeout=settings.webhook_timeout + 5,
                # keep finished jobs' rows? no: the events and delivery log are the record
                delete_jobs="successful",
            )
        finally:
            rescuer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await rescuer


async def jobs_ctx(app: web.Application) -> AsyncIterator[None]:
    """`serve` runs the jobs in each of its worker processes unless [jobs] in_process is false."""
    settings = app[app_keys.SETTINGS]
    if not settings.jobs_in_process:
        yield
        return
    task = asyncio.create_task(
        run_worker(
            settings,
            app[app_keys.DB_POOL],
            app[app_keys.REPOSITORIES],
            app[app_keys.URLS],
            settings.jobs_concurrency,
            app[app_keys.TOKEN_BOX],
        ),
        name="job-worker",
    )
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def run_standalone_worker(settings: Settings, concurrency: int) -> int:
    """`gitlab-internal-api worker`: only the jobs, until SIGTERM or SIGINT (finishing those running)."""

    async def no_setup(conn: asyncpg.Connection) -> None:
        return None

    async with create_pool(settings, no_setup, warm=False) as pool:
        task = asyncio.create_task(
            run_worker(
                settings,
                pool,
                RepositoryInspector(settings.storages, settings.git_timeout),
                InstanceUrls(settings.gitlab_url, settings.ssh_user, settings.ssh_host, settings.ssh_port),
                concurrency,
                TokenBox(load_db_key_base(settings.db_key_base_file)),
            )
        )
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, task.cancel)
        log.info("job worker started: queues %s, concurrency %d", ", ".join(QUEUES), concurrency)
        with contextlib.suppress(asyncio.CancelledError):
            await task
    log.info("job worker stopped")
    return 0
