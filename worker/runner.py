"""The worker role: registers the periodic tasks and the job handlers, and runs them.

Periodic: analyze new ECGs (worker/ecg_jobs.py), complete and route stable studies, expire
leases, act on deadlines and critical results, queue again the delivery of final reports (and
the notification messages) whose job was lost, retry DICOM copies of reports (the use cases
are in teleradiology.services).
Jobs: deliver a final report, tried again with backoff and then held for administrators;
send one notification message on its channel (worker/outbound.py carries it), tried again
with backoff and then listed for administrators.

The job runner is supervised: when its connection is lost, its listener stops answering or its
queries fail (PostgreSQL restarted, cut or black-holed), it is started again on a new
connection, waiting longer each time it fails young; its state is in the worker's /healthz.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pgqueuer import RetryRequested
from pgqueuer.models import Job

from storage import collection, jobs
from storage.db import Pool
from storage.errors import is_unavailable
from storage.objects import ObjectStore
from teleradiology.services import audit, deadlines, delivery, notices, routing
from teleradiology.services.delivery import DELIVER_REPORT, SendCopy
from teleradiology.services.notices import SEND_NOTICE, Outcome, Tried
from teleradiology.services.work_pool import WorkPool
from teleradiology.settings import Settings
from worker import ecg_jobs, outbound

log = logging.getLogger(__name__)

#: Delivers one report (``delivery.deliver`` with the copies' sender and the work pool).
_Deliver = Callable[[Pool, ObjectStore, int], Awaitable[bool]]

#: Sends one notification message (by its id) and says how it went.
SendNotice = Callable[[int], Awaitable[Tried]]

#: Routes the studies marked ready (and any other complete ones) now.
RouteReady = Callable[[], Awaitable[object]]


async def route_complete(
    pool: Pool,
    settings: Settings,
    objects: ObjectStore | None = None,
    ecg_executor: WorkPool | None = None,
) -> int:
    """Analyze new ECGs (with objects), then complete and route the stable studies and
    those marked ready; cases created."""
    if objects is not None:
        # Before routing: a suspected STEMI is routed at the STEMI priority from the start.
        try:
            analyzed = await ecg_jobs.analyze_new_ecgs(pool, objects, ecg_executor)
        except Exception as exc:
            if not is_unavailable(exc):
                log.exception("ECG analysis pass failed; routing goes on")
        else:
            if analyzed:
                log.info("analyzed %d ECG(s)", analyzed)
    created = await routing.complete_stable_studies(
        pool, stable_age=timedelta(seconds=settings.stable_age_s)
    )
    if created:
        log.info("routed %d new case(s)", len(created))
    return len(created)


async def sweep_once(
    pool: Pool,
    settings: Settings,
    objects: ObjectStore | None = None,
    ecg_executor: WorkPool | None = None,
    send: SendCopy | None = None,
) -> int:
    """One pass: analyze new ECGs (with objects), complete and route stable studies, return
    expired leases, act on deadlines and unacknowledged critical results, retry report
    copies (with objects and a sender); cases created."""
    created = await route_complete(pool, settings, objects, ecg_executor)
    expired = await deadlines.expire_leases(pool)
    if expired:
        log.info("%d lease(s) expired; cases returned to their pools", expired)
    await deadlines.watch_once(pool)
    await delivery.requeue_lost(pool)
    await notices.requeue_lost(pool)
    if objects is not None and send is not None:
        await delivery.send_due(pool, objects, send=send)
    return created


async def _collect_forever(pool: Pool, settings: Settings, objects: ObjectStore) -> None:
    """Delete the objects no row refers to, older than the grace period, now and then (one
    worker of the network at a time)."""
    grace = timedelta(hours=settings.collect_grace_hours)
    while True:
        await asyncio.sleep(settings.collect_every_s)
        try:
            done = await collection.collect_orphans_alone(pool, objects, grace=grace)
        except Exception as exc:
            log.warning("collecting unreferenced objects failed (%s)", type(exc).__name__)
            continue
        if done is not None and (done.collected or done.uploads_forgotten):
            log.info(
                "collected %d unreferenced object(s) of %d looked at; %d upload(s) given up",
                done.collected,
                done.looked_at,
                done.uploads_forgotten,
            )


async def _anchor_forever(pool: Pool, settings: Settings, objects: ObjectStore) -> None:
    """Anchor the audit chain's head in the object store now and then."""
    while True:
        try:
            anchored = await audit.anchor_head(pool, objects)
        except Exception as exc:
            log.warning("anchoring the audit chain failed (%s)", type(exc).__name__)
        else:
            if anchored is not None:
                log.info("audit chain anchored at record %d", anchored.seq)
        await asyncio.sleep(settings.audit_anchor_every_s)


async def _sweep_forever(
    pool: Pool, settings: Settings, objects: ObjectStore, ecg_executor: WorkPool, send: SendCopy
) -> None:
    while True:
        try:
            await sweep_once(pool, settings, objects, ecg_executor, send)
        except Exception as exc:
            if is_unavailable(exc):
                log.warning("sweep waits: a store is not answering (%s)", type(exc).__name__)
            else:
                log.exception("sweep failed; retrying")
        await asyncio.sleep(settings.sweep_interval_s)


#: Waits before starting the job runner again after it failed: doubling from the first, at
#: most the last; a runner that ran this long before failing starts again at once.
RESTART_FIRST_S = 0.5
RESTART_MOST_S = 10.0
RAN_LONG_S = 60.0


@dataclass
class JobRunnerState:
    """What the worker says of its job runner in /healthz."""

    #: Whether the supervisor itself still runs (when not, nothing will start the runner).
    alive: bool = True
    running: bool = False
    started_at: datetime | None = None
    restarts: int = 0
    last_error: str | None = None
    last_error_at: datetime | None = None

    def report(self) -> dict[str, object]:
        return {
            "alive": self.alive,
            "running": self.running,
            "started_at": _iso(self.started_at),
            "restarts": self.restarts,
            "last_error": self.last_error,
            "last_error_at": _iso(self.last_error_at),
        }


def _iso(at: datetime | None) -> str | None:
    return at.isoformat().replace("+00:00", "Z") if at else None


async def _supervise_jobs(
    pool: Pool,
    objects: ObjectStore,
    deliver_report: _Deliver,
    send_notice: SendNotice,
    route_ready: RouteReady,
    dsn: str,
    stop: asyncio.Event,
    state: JobRunnerState,
) -> None:
    """Run the job runner until ``stop``, starting it again whenever it ends or fails."""
    try:
        await _keep_running(
            lambda: _run_jobs(
                pool, objects, deliver_report, send_notice, route_ready, dsn, stop, state
            ),
            stop,
            state,
        )
    finally:
        state.alive = False


async def _keep_running(
    run: Callable[[], Awaitable[None]], stop: asyncio.Event, state: JobRunnerState
) -> None:
    wait = RESTART_FIRST_S
    while not stop.is_set():
        began = asyncio.get_running_loop().time()
        try:
            await run()
        except Exception as exc:
            state.last_error = type(exc).__name__
            state.last_error_at = datetime.now(UTC)
            log.warning("the job runner stopped (%s); starting it again", type(exc).__name__)
        finally:
            state.running = False
        if stop.is_set():
            return
        if asyncio.get_running_loop().time() - began > RAN_LONG_S:
            wait = RESTART_FIRST_S
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait):
                await stop.wait()
        wait = min(wait * 2, RESTART_MOST_S)
        state.restarts += 1


async def _run_jobs(
    pool: Pool,
    objects: ObjectStore,
    deliver_report: _Deliver,
    send_notice: SendNotice,
    route_ready: RouteReady,
    dsn: str,
    stop: asyncio.Event,
    state: JobRunnerState,
) -> None:
    """The job queue on a connection of its own, until ``stop`` or until the connection is
    lost or its listener stops answering (then it returns, for the supervisor)."""
    manager, conn = await jobs.queue_manager(dsn)

    @manager.entrypoint(DELIVER_REPORT, on_failure="hold")
    async def deliver(job: Job) -> None:
        await _deliver(pool, objects, deliver_report, job)

    @manager.entrypoint(SEND_NOTICE, on_failure="hold")
    async def notice(job: Job) -> None:
        await _send_notice(send_notice, job)

    @manager.entrypoint(routing.ROUTE_READY)
    async def ready(job: Job) -> None:
        # A study marked ready is routed now, not at the next sweep (which stays the
        # fallback should this job be lost).
        await route_ready()

    def lost(_: object) -> None:
        manager.shutdown.set()

    async def stopper() -> None:
        await stop.wait()
        manager.shutdown.set()

    conn.add_termination_listener(lost)
    watcher = asyncio.create_task(stopper())
    state.running, state.started_at = True, datetime.now(UTC)
    try:
        await manager.run(dequeue_timeout=timedelta(seconds=2), shutdown_on_listener_failure=True)
    finally:
        watcher.cancel()
        conn.remove_termination_listener(lost)
        if not conn.is_closed():
            conn.terminate()


async def _deliver(pool: Pool, objects: ObjectStore, deliver_report: _Deliver, job: Job) -> None:
    """One delivery attempt; a failure is tried again with backoff, and after the last
    attempt the job is held as failed for administrators (their page lists it)."""
    report_id = int(jobs.decode_payload(job.payload)["report_id"])
    try:
        await deliver_report(pool, objects, report_id)
    except Exception as exc:
        attempt = job.attempts + 1
        delay = delivery.retry_delay(attempt, delivery.DELIVERY_ATTEMPTS)
        if delay is None:
            log.error(
                "report %s: delivery given up after %d attempts (%s); held for administrators",
                report_id,
                attempt,
                type(exc).__name__,
            )
            raise
        log.warning(
            "report %s: delivery attempt %d failed (%s); retry in %s",
            report_id,
            attempt,
            type(exc).__name__,
            delay,
        )
        raise RetryRequested(delay=delay, reason=type(exc).__name__) from exc


def _delivering(send: SendCopy, work: WorkPool) -> _Deliver:
    """Report delivery with the copies sent by ``send`` and ECG sheets drawn in ``work``."""

    async def deliver(pool: Pool, objects: ObjectStore, report_id: int) -> bool:
        return await delivery.deliver(pool, objects, report_id, send=send, work=work)

    return deliver


async def _send_notice(send_notice: SendNotice, job: Job) -> None:
    """One attempt at a notification message; not taken, it is tried again after the
    backoff (the attempts are counted with the message; after the last it is listed for
    administrators and the job ends)."""
    message_id = int(jobs.decode_payload(job.payload)["message_id"])
    try:
        tried = await send_notice(message_id)
    except Exception as exc:
        # ours failed (the database away), not the receiver: tried again, then held
        delay = delivery.retry_delay(job.attempts + 1, notices.NOTICE_ATTEMPTS)
        log.warning("notice %s: the attempt failed (%s)", message_id, type(exc).__name__)
        if delay is None:
            raise
        raise RetryRequested(delay=delay, reason=type(exc).__name__) from exc
    if tried.outcome is Outcome.RETRY and tried.retry_in is not None:
        raise RetryRequested(delay=tried.retry_in, reason="not taken")


@contextlib.asynccontextmanager
async def worker_running(
    settings: Settings, *, pool: Pool, objects: ObjectStore, dsn: str, send: SendCopy
) -> AsyncIterator[JobRunnerState]:
    """Run the worker's loops while the block runs: the sweeps, and the job queue on a
    connection of its own to ``dsn`` (LISTEN needs one outside the pool), supervised; report
    copies go out by ``send``. The block gets the job runner's state."""
    stop = asyncio.Event()
    state = JobRunnerState()
    ecg_executor = ecg_jobs.analysis_pool(settings)
    links = outbound.base_url(settings)
    closing = contextlib.AsyncExitStack()
    carrier = await closing.enter_async_context(outbound.carrier(settings))

    async def send_notice(message_id: int) -> Tried:
        return await notices.send_notice(pool, message_id, carrier=carrier, base_url=links)

    async def route_ready() -> None:
        await route_complete(pool, settings, objects, ecg_executor)

    sweeper = asyncio.create_task(
        _sweep_forever(pool, settings, objects, ecg_executor, send), name="sweeper"
    )
    runner = asyncio.create_task(
        _supervise_jobs(
            pool,
            objects,
            _delivering(send, ecg_executor),
            send_notice,
            route_ready,
            dsn,
            stop,
            state,
        ),
        name="jobs",
    )
    collector = asyncio.create_task(_collect_forever(pool, settings, objects), name="collector")
    anchorer = asyncio.create_task(_anchor_forever(pool, settings, objects), name="anchorer")
    try:
        yield state
    finally:
        stop.set()
        for task in (sweeper, collector, anchorer):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        done, _ = await asyncio.wait({runner}, timeout=10)
        if not done:
            runner.cancel()
            await asyncio.wait({runner}, timeout=5)
        await asyncio.to_thread(ecg_executor.shutdown)
        await closing.aclose()
