"""A report's delivery job on the real queue (pgqueuer on PostgreSQL): a failing delivery is
tried again with backoff, held as failed after its last attempt, listed for the network's
administrator, and delivered once retried; a final report whose job was lost is queued again."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import pytest

from storage.jobs import FailedKind
from storage.network import user_by_username
from storage.objects import FileObjectStore, ObjectStore
from storage.records import User
from teleradiology.core.errors import Forbidden, NotFound
from teleradiology.dimse.sender import report_sender
from teleradiology.http.context import OBJECTS, SETTINGS
from teleradiology.services import administration, delivery
from teleradiology.services.delivery import DELIVER_REPORT
from tests.integration.conftest import Api
from tests.integration.test_reports_home import _FINDINGS, _ok, _routed
from worker.runner import worker_running

SEND = report_sender("TELEMED")


async def _final_report(api: Api, patient_id: str) -> int:
    _, case_id = await _routed(api, "HB-XL-WD", patient_id)
    await _ok(api, "wang.reader", f"/api/v1/cases/{case_id}/claim")
    final = await _ok(
        api, "wang.reader", f"/api/v1/cases/{case_id}/report", {**_FINDINGS, "conclusion": "normal"}
    )
    report_id: int = final["id"]
    return report_id


async def _user(api: Api, username: str) -> User:
    user = await user_by_username(api.pool, username)
    assert user is not None
    return user


async def _until(check: Callable[[], Awaitable[bool]], *, seconds: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "waited in vain"
        await asyncio.sleep(0.2)


async def _job_status(api: Api, report_id: int) -> str | None:
    status: str | None = await api.pool.fetchval(
        "select status::text from pgqueuer where entrypoint = $1"
        " and convert_from(payload, 'UTF8')::jsonb ->> 'report_id' = $2",
        DELIVER_REPORT,
        str(report_id),
    )
    return status


async def _run_worker(
    api: Api, dsn: str, objects: ObjectStore, until: Callable[[], Awaitable[bool]]
) -> None:
    settings = api.app[SETTINGS]
    async with worker_running(settings, pool=api.pool, objects=objects, dsn=dsn, send=SEND):
        await _until(until)


async def held_failed(api: Api, database_url: str, tmp_path: Path, report_id: int) -> None:
    """Run the worker on an object store that cannot be written (its root is under a file:
    every attempt fails) until the report's delivery job is held as failed."""
    (tmp_path / "not-a-folder").write_bytes(b"")
    broken = FileObjectStore(tmp_path / "not-a-folder" / "objects")

    async def held() -> bool:
        # skip the backoff's wait: the next attempt is due now
        await api.pool.execute(
            "update pgqueuer set execute_after = now() where entrypoint = $1 and status = 'queued'",
            DELIVER_REPORT,
        )
        return await _job_status(api, report_id) == "failed"

    await _run_worker(api, database_url, broken, held)


async def test_a_failing_delivery_is_retried_then_held_listed_and_retried_by_the_admin(
    api: Api, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(delivery, "DELIVERY_ATTEMPTS", 3)
    report_id = await _final_report(api, "DJ-1")
    await held_failed(api, database_url, tmp_path, report_id)
    attempts = await api.pool.fetchval(
        "select attempts from pgqueuer where entrypoint = $1", DELIVER_REPORT
    )
    assert attempts == 2  # three attempts: the first, and two retries
    assert (
        await api.pool.fetchval("select delivered_at from report where id = $1", report_id) is None
    )

    admin = await _user(api, "hb.admin")
    failed = await administration.failed_deliveries(api.pool, admin)
    assert [(f.kind, f.report_id) for f in failed] == [(FailedKind.REPORT, report_id)]
    with pytest.raises(Forbidden):
        await administration.failed_deliveries(api.pool, await _user(api, "wang.reader"))

    # the API and the dashboard list it, for administrators only
    listed = await api.client.get("/api/v1/admin/deliveries/failed", headers=api.auth("hb.admin"))
    body = await listed.json()
    assert listed.status == 200, body
    assert [(f["kind"], f["report_id"], f["attempts"]) for f in body["failed"]] == [
        ("report", report_id, 2)
    ]
    refused = await api.client.get(
        "/api/v1/admin/deliveries/failed", headers=api.auth("wang.reader")
    )
    assert refused.status == 403
    retry = f"/api/v1/admin/deliveries/failed/report/{failed[0].id}/retry"
    answer = await api.client.post(retry, headers=api.auth("hb.admin"))
    assert answer.status == 200, await answer.text()
    again = await api.client.post(retry, headers=api.auth("hb.admin"))
    assert again.status == 404  # it is queued now, no longer failed
    with pytest.raises(NotFound):
        await administration.retry_delivery(api.pool, admin, FailedKind.REPORT, failed[0].id)
    assert await administration.failed_deliveries(api.pool, admin) == []

    async def delivered() -> bool:
        return (
            await api.pool.fetchval("select delivered_at from report where id = $1", report_id)
            is not None
        )

    await _run_worker(api, database_url, api.app[OBJECTS], delivered)
    events = await api.pool.fetchval(
        "select count(*) from event where report_id = $1 and kind = 'delivered'", report_id
    )
    assert events == 1


async def test_a_final_report_whose_job_was_lost_is_queued_again(api: Api) -> None:
    report_id = await _final_report(api, "DJ-2")
    await api.pool.execute("delete from pgqueuer where entrypoint = $1", DELIVER_REPORT)
    # Just signed: its job may still be on its way; nothing is queued yet.
    assert await delivery.requeue_lost(api.pool) == 0
    # Undelivered for longer than the grace period, with no job: queued again, once.
    later = await api.pool.fetchval("select signed_at from report where id = $1", report_id)
    later += delivery.LOST_AFTER + timedelta(seconds=1)
    assert await delivery.requeue_lost(api.pool, now=later) == 1
    assert await _job_status(api, report_id) == "queued"
    assert await delivery.requeue_lost(api.pool, now=later) == 0
