"""Server-sent events: a clinic's reports are pushed as they are delivered, only to that
clinic, and a stream that reconnects with Last-Event-ID gets what it missed."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import pytest
from aiohttp import ClientResponse

from storage.db import transaction
from storage.eventlog import notify
from storage.records import NotificationKind, Role
from teleradiology.dimse.sender import report_sender
from teleradiology.http import sse
from teleradiology.http.context import OBJECTS
from teleradiology.services import delivery
from tests.factory import make_study
from tests.integration.conftest import Api
from tests.integration.dicomweb_support import route_all, store

#: A clinic's stream also follows its studies' steps (complete, routed, claimed, ...).
STEPS = frozenset({"study_progress"})


async def _frames(
    stream: ClientResponse, count: int, *, skip: frozenset[str] = STEPS
) -> list[dict[str, Any]]:
    """Read ``count`` data frames (skipping comments, retry lines and the kinds in ``skip``)
    within 10 s."""
    found: list[dict[str, Any]] = []
    ids: list[str] = []

    async def read() -> None:
        while len(found) < count:
            line = (await stream.content.readline()).decode().rstrip("\n")
            if line.startswith("id: "):
                ids.append(line[4:])
            elif line.startswith("data: "):
                frame = json.loads(line[6:])
                if frame["kind"] not in skip:
                    found.append(frame | {"_id": ids[-1]})

    async with asyncio.timeout(10):
        await read()
    return found


async def _lines_within(stream: ClientResponse, seconds: float) -> list[bytes]:
    """The lines a stream sends within ``seconds``."""
    lines: list[bytes] = []
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            while True:
                lines.append(await stream.content.readline())
    return lines


async def _final_report(api: Api, patient_id: str, conclusion: str = "normal") -> int:
    uid = await store(api, "HB-XL-WD", make_study(modality="CR", count=1, patient_id=patient_id))
    await route_all(api)
    case_id = await api.pool.fetchval(
        "select c.id from reading_case c join study s on s.id = c.study_id "
        "where s.study_instance_uid = $1",
        uid,
    )
    auth = api.auth("wang.reader")
    assert (await api.client.post(f"/api/v1/cases/{case_id}/claim", headers=auth)).status == 200
    answer = await api.client.post(
        f"/api/v1/cases/{case_id}/report",
        json={"findings": "所见", "impression": "印象", "conclusion": conclusion},
        headers=auth,
    )
    report_id: int = (await answer.json())["id"]
    assert await delivery.deliver(
        api.pool, api.app[OBJECTS], report_id, send=report_sender("TELEMED")
    )
    return report_id


async def test_reports_are_pushed_to_their_clinic_only_and_replayed_on_reconnect(
    api: Api,
) -> None:
    mine = await api.client.get("/api/v1/events", headers=api.auth("xlwd.clinic"))
    other = await api.client.get("/api/v1/events", headers=api.auth("xlzz.clinic"))
    assert mine.status == 200
    assert mine.headers["Content-Type"].startswith("text/event-stream")
    first = await _final_report(api, "S-1")
    critical = await _final_report(api, "S-2", conclusion="critical")
    pushed = await _frames(mine, 2)
    assert [(p["kind"], p["report_id"]) for p in pushed] == [
        ("report", first),
        ("critical", critical),
    ]
    assert pushed[1]["detail"]["conclusion"] == "critical"
    # the other village's stream was open all along and got none of it
    lines = await _lines_within(other, 1.5)
    assert lines[0].startswith(b"retry:")
    assert not any(line.startswith((b"data:", b"id:")) for line in lines)
    mine.close()
    other.close()

    # reconnecting after the first frame replays the second from the record
    again = await api.client.get(
        "/api/v1/events",
        headers={**api.auth("xlwd.clinic"), "Last-Event-ID": pushed[0]["_id"]},
    )
    replayed = await _frames(again, 1)
    assert [(r["kind"], r["report_id"]) for r in replayed] == [("critical", critical)]
    again.close()


async def test_a_new_case_is_pushed_to_the_readers_of_its_pool(api: Api) -> None:
    county = await api.client.get("/api/v1/events", headers=api.auth("wang.reader"))
    await store(api, "HB-XL-WD", make_study(modality="CR", count=1, patient_id="S-3"))
    await route_all(api)
    (frame,) = await _frames(county, 1)
    assert frame["kind"] == "case"
    assert frame["detail"] == {"specialty": "radiology", "priority": "medium"}
    county.close()


async def _clinic_facility(api: Api) -> int:
    found: int = await api.pool.fetchval("select id from facility where code = 'HB-XL-WD'")
    return found


async def _tell_clinic(conn: Any, facility_id: int, n: int) -> None:
    await notify(
        conn,
        NotificationKind.REPORT,
        facility_id=facility_id,
        audience=Role.CLINIC,
        detail={"n": n},
    )


async def test_a_notification_committed_late_is_pushed_and_replayed_not_skipped(
    api: Api,
) -> None:
    """Ids are handed out at insert: the first notification's transaction commits after the
    second's, with the lower id. Neither the live stream nor a reconnection skips it."""
    facility = await _clinic_facility(api)
    mine = await api.client.get("/api/v1/events", headers=api.auth("xlwd.clinic"))
    slow = await api.pool.acquire()
    try:
        late = slow.transaction()
        await late.start()
        await _tell_clinic(slow, facility, 1)  # the lower id, not committed yet
        async with transaction(api.pool) as conn:
            await _tell_clinic(conn, facility, 2)
        await asyncio.sleep(1.0)  # the poller has seen the second committed meanwhile
        await late.commit()
    finally:
        await api.pool.release(slow)
    pushed = await _frames(mine, 2)
    assert sorted(p["detail"]["n"] for p in pushed) == [1, 2]
    mine.close()
    # reconnecting after the last frame replays nothing; after the first, the other one
    after_last = await api.client.get(
        "/api/v1/events",
        headers={**api.auth("xlwd.clinic"), "Last-Event-ID": pushed[1]["_id"]},
    )
    lines: list[bytes] = []
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(1.5):
            while True:
                lines.append(await after_last.content.readline())
    assert not any(line.startswith(b"data:") for line in lines)
    after_last.close()
    again = await api.client.get(
        "/api/v1/events",
        headers={**api.auth("xlwd.clinic"), "Last-Event-ID": pushed[0]["_id"]},
    )
    (replayed,) = await _frames(again, 1)
    assert replayed["detail"] == pushed[1]["detail"]
    again.close()


async def test_a_stream_too_far_behind_is_told_to_resync_and_loses_nothing(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sse, "STREAM_BACKLOG", 5)
    facility = await _clinic_facility(api)
    mine = await api.client.get("/api/v1/events", headers=api.auth("xlwd.clinic"))
    assert (await mine.content.readline()).startswith(b"retry:")
    await asyncio.sleep(0.5)  # subscribed
    async with transaction(api.pool) as conn:
        for n in range(40):
            await _tell_clinic(conn, facility, n)
    seen: list[int] = []
    last_id = ""
    async with asyncio.timeout(10):
        while True:
            line = (await mine.content.readline()).decode().rstrip("\n")
            if line.startswith("id: "):
                last_id = line[4:]
            elif line.startswith("data: ") and '"reason"' not in line:
                seen.append(json.loads(line[6:])["detail"]["n"])
            elif line == "event: resync":
                break
    assert len(seen) < 40
    assert (await mine.content.read()).startswith(b"data:")  # the resync's data, then the end
    again = await api.client.get(
        "/api/v1/events", headers={**api.auth("xlwd.clinic"), "Last-Event-ID": last_id}
    )
    rest = await _frames(again, 40 - len(seen))
    assert seen + [r["detail"]["n"] for r in rest] == list(range(40))
    again.close()


async def test_a_clinics_stream_follows_its_studies_steps_without_patient_data(
    api: Api,
) -> None:
    mine = await api.client.get("/api/v1/events", headers=api.auth("xlwd.clinic"))
    other = await api.client.get("/api/v1/events", headers=api.auth("xlzz.clinic"))
    await store(api, "HB-XL-WD", make_study(modality="CR", count=1, patient_id="S-9"))
    await route_all(api)
    case_id = await api.pool.fetchval("select max(id) from reading_case")
    auth = api.auth("wang.reader")
    assert (await api.client.post(f"/api/v1/cases/{case_id}/claim", headers=auth)).status == 200
    assert (await api.client.post(f"/api/v1/cases/{case_id}/release", headers=auth)).status == 200
    steps = await _frames(mine, 4, skip=frozenset())
    assert [(s["kind"], s["detail"]) for s in steps] == [
        ("study_progress", {"step": "complete"}),
        ("study_progress", {"step": "routed"}),
        ("study_progress", {"step": "claimed"}),
        ("study_progress", {"step": "released"}),
    ]
    assert [s["case_id"] for s in steps] == [None, case_id, case_id, case_id]
    assert "S-9" not in json.dumps(steps)
    lines = await _lines_within(other, 1.0)
    assert not any(line.startswith(b"data:") for line in lines)
    mine.close()
    other.close()
