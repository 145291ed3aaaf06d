"""The resumable upload API: manifest, idempotent instances, parts, gzip, commit, restarts."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import io
import json
from pathlib import Path
from typing import Any

import pydicom
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from storage import uploads
from teleradiology.core.errors import SEND_AGAIN
from teleradiology.http.context import INGESTOR, OBJECTS, SETTINGS
from teleradiology.node.upload_client import asks_again
from teleradiology.roles import create_app
from tests.factory import make_study
from tests.integration.conftest import (
    Api,
    drop_bucket,
    local_settings,
    serving,
    unique_bucket_name,
)
from tests.s3 import S3Endpoint
from worker.runner import sweep_once

CLINIC = "xlwd.clinic"


def manifest(instances: list[bytes]) -> tuple[str, list[dict[str, Any]]]:
    study = pydicom.dcmread(io.BytesIO(instances[0])).StudyInstanceUID
    return study, [
        {"sop_instance_uid": sop_uid(d), "size": len(d), "sha256": hashlib.sha256(d).hexdigest()}
        for d in instances
    ]


def sop_uid(data: bytes) -> str:
    return str(pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True).SOPInstanceUID)


async def open_upload(
    api: Api, instances: list[bytes], *, user: str = CLINIC, **extra: Any
) -> tuple[int, dict[str, Any]]:
    study, lines = manifest(instances)
    response = await api.client.post(
        "/api/v1/uploads",
        json={"study_instance_uid": study, "instances": lines, **extra},
        headers=api.auth(user),
    )
    return response.status, await response.json(content_type=None)


async def put(
    api: Api,
    session: dict[str, Any],
    data: bytes,
    *,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    user: str = CLINIC,
) -> tuple[int, dict[str, Any]]:
    response = await api.client.put(
        f"/api/v1/uploads/{session['id']}/instances/{sop_uid(data)}",
        data=data if body is None else body,
        headers={**api.auth(user), "Content-Type": "application/dicom", **(headers or {})},
    )
    return response.status, await response.json(content_type=None)


async def call(api: Api, method: str, path: str, user: str = CLINIC) -> tuple[int, Any]:
    response = await api.client.request(method, path, headers=api.auth(user))
    return response.status, await response.json(content_type=None)


def object_files(api: Api) -> int:
    root = Path(api.app[OBJECTS].root)  # type: ignore[attr-defined]
    return sum(1 for p in root.rglob("*") if p.is_file()) if root.exists() else 0


async def test_an_upload_stores_each_instance_once_and_commit_completes_the_study(
    api: Api,
) -> None:
    study = make_study(count=4)
    status, session = await open_upload(api, study, urgency="urgent", question="咳嗽两周，排除肺炎")
    assert status == 201, session
    assert session["state"] == "open"
    assert session["instances"] == 4
    assert len(session["missing"]) == 4
    assert session["urgency"] == "urgent"

    # Too early: the problem names what is missing and what to do.
    status, problem = await call(api, "POST", f"/api/v1/uploads/{session['id']}/commit")
    assert status == 409
    assert "4 个实例中仍缺 4 个" in problem["detail"]

    assert (await put(api, session, study[0]))[0] == 201
    # Compressed on the wire.
    packed = gzip.compress(study[1])
    status, answer = await put(
        api, session, study[1], body=packed, headers={"Content-Encoding": "gzip"}
    )
    assert (status, answer["outcome"]) == (201, "stored")
    # Re-sent (the answer was lost on the way back): success, stored once.
    status, answer = await put(api, session, study[0])
    assert (status, answer["outcome"]) == (200, "already stored")

    # Resuming with the same manifest finds the same session and what it still lacks.
    status, again = await open_upload(api, study)
    assert status == 200
    assert again["id"] == session["id"]
    assert {m["sop_instance_uid"] for m in again["missing"]} == {sop_uid(d) for d in study[2:]}
    assert again["urgency"] == "urgent"
    assert again["question"] == "咳嗽两周，排除肺炎"

    for data in study[2:]:
        assert (await put(api, session, data))[0] == 201
    status, done = await call(api, "POST", f"/api/v1/uploads/{session['id']}/commit")
    assert status == 200
    assert done["state"] == "committed"
    assert done["missing"] == []
    assert done["bodies_received"] == 4
    # Committing again is harmless.
    assert (await call(api, "POST", f"/api/v1/uploads/{session['id']}/commit"))[0] == 200

    assert await api.pool.fetchval("select count(*) from instance") == 4
    assert object_files(api) == 4
    row = await api.pool.fetchrow("select ready_at, priority, clinical_question from study")
    assert row is not None
    assert row["ready_at"] is not None
    assert (row["priority"], row["clinical_question"]) == ("high", "咳嗽两周，排除肺炎")
    # Complete at the next sweep, long before the stable age (60 s here).
    assert api.app[SETTINGS].stable_age_s == 60
    assert await sweep_once(api.pool, api.app[SETTINGS]) == 1
    assert await api.pool.fetchval("select count(*) from reading_case") == 1
    assert await api.pool.fetchval("select received_via from instance limit 1") == "upload"


async def test_a_large_instance_goes_in_parts_and_a_resent_part_is_harmless(api: Api) -> None:
    (data,) = make_study(count=1, size=256)  # ~128 KiB
    status, session = await open_upload(api, [data])
    assert status == 201
    size = len(data)
    cuts = [(0, 50_000), (50_000, 100_000), (100_000, size)]

    async def send(start: int, end: int, *, compress: bool = False) -> tuple[int, dict[str, Any]]:
        body = data[start:end]
        headers = {"Content-Range": f"bytes {start}-{end - 1}/{size}"}
        if compress:
            body = gzip.compress(body)
            headers["Content-Encoding"] = "gzip"
        return await put(api, session, data, body=body, headers=headers)

    status, answer = await send(*cuts[0], compress=True)
    assert (status, answer["outcome"], answer["received"]) == (200, "partial", [[0, 50_000]])
    assert (await send(*cuts[2]))[1]["received"] == [[0, 50_000], [100_000, size]]
    assert (await send(*cuts[2]))[0] == 200  # the same part again
    _, progress = await call(api, "GET", f"/api/v1/uploads/{session['id']}")
    assert progress["missing"][0]["received"] == [[0, 50_000], [100_000, size]]
    # A part shorter than its range (cut on the way): send it again, nothing of it kept.
    cut = {"Content-Range": f"bytes 50000-99999/{size}"}
    status, problem = await put(api, session, data, body=data[50_000:90_000], headers=cut)
    assert (status, problem["type"]) == (409, SEND_AGAIN), problem
    _, progress = await call(api, "GET", f"/api/v1/uploads/{session['id']}")
    assert progress["missing"][0]["received"] == [[0, 50_000], [100_000, size]]
    status, answer = await send(*cuts[1])
    assert (status, answer["outcome"]) == (201, "stored")

    stored_key = await api.pool.fetchval("select object_key from instance")
    stored = await api.app[OBJECTS].get(stored_key)
    assert stored[128:] == data[128:]
    # The parts were collected: the only object left is the instance.
    assert object_files(api) == 1
    assert await api.pool.fetchval("select count(*) from upload_part") == 0
    assert (await call(api, "POST", f"/api/v1/uploads/{session['id']}/commit"))[0] == 200


async def test_a_gzip_bomb_is_refused_with_413_and_stores_nothing(api: Api) -> None:
    (data,) = make_study(count=1)
    _, session = await open_upload(api, [data])
    bomb = gzip.compress(bytes(64 * 1024**2))  # 64 MiB of zeros in ~64 KiB
    status, problem = await put(api, session, data, body=bomb, headers={"Content-Encoding": "gzip"})
    assert status == 413
    assert problem["detail"].startswith("正文解压后超过 "), problem  # the clinic reads Chinese
    assert await api.pool.fetchval("select count(*) from instance") == 0
    # Not gzip at all.
    status, problem = await put(
        api, session, data, body=b"not gzip at all", headers={"Content-Encoding": "gzip"}
    )
    assert status == 400, problem
    assert (await put(api, session, data))[0] == 201


async def test_bad_input_gets_an_actionable_problem_and_changes_nothing(api: Api) -> None:
    study = make_study(count=2)
    other = make_study(count=1)
    _, session = await open_upload(api, study)

    # Cut short: the size differs from the manifest. Sending it again can succeed, and the
    # answer says so to programs (its type) as well as to people.
    status, problem = await put(api, session, study[0], body=study[0][:-10])
    assert status == 409
    assert "请重发" in problem["detail"]
    assert problem["type"] == SEND_AGAIN
    assert asks_again(json.dumps(problem))
    # Same size, other bytes: the hash differs; the file changed, so sending it again cannot
    # help: a final refusal.
    flipped = study[0][:-1] + bytes([study[0][-1] ^ 1])
    status, problem = await put(api, session, study[0], body=flipped)
    assert status == 400
    assert "SHA-256" in problem["detail"]
    assert not asks_again(json.dumps(problem))
    # An instance not in the manifest.
    status, problem = await put(api, session, other[0])
    assert status == 404
    assert "的清单中" in problem["detail"]
    # Another study's file under a manifest line of this one.
    _, mixed = await open_upload(api, [study[0], other[0]], key="mixed")
    status, problem = await put(api, mixed, other[0])
    assert status == 400
    assert "每个检查一个上传" in problem["detail"]
    # A manifest that is not one.
    response = await api.client.post(
        "/api/v1/uploads",
        json={"study_instance_uid": "1.2.3", "instances": [{"sop_instance_uid": "x"}]},
        headers=api.auth(CLINIC),
    )
    assert response.status == 400
    assert response.content_type == "application/problem+json"
    # The same key for another study.
    status, problem = await open_upload(api, other, key="mixed")
    assert status == 409
    assert "一次上传只传一个检查" in problem["detail"]
    assert await api.pool.fetchval("select count(*) from instance") == 0


async def test_a_session_is_its_facilitys_and_for_clinic_users_only(api: Api) -> None:
    study = make_study(count=1)
    _, session = await open_upload(api, study)
    # Another village's operator: the session does not exist for them.
    status, _ = await call(api, "GET", f"/api/v1/uploads/{session['id']}", user="xlzz.clinic")
    assert status == 404
    status, _ = await put(api, session, study[0], user="xlzz.clinic")
    assert status == 404
    status, problem = await call(api, "GET", f"/api/v1/uploads/{session['id']}", "wang.reader")
    assert status == 403
    assert "基层机构" in problem["detail"]
    status, listed = await call(api, "GET", "/api/v1/uploads?state=open")
    assert [u["id"] for u in listed["uploads"]] == [session["id"]]
    status, listed = await call(api, "GET", "/api/v1/uploads", user="xlzz.clinic")
    assert listed["uploads"] == []


async def test_a_conflicting_instance_is_refused_and_can_be_taken_out(api: Api) -> None:
    study = make_study(count=2)
    _, first = await open_upload(api, study, key="first")
    assert (await put(api, first, study[0]))[0] == 201
    # The same SOP Instance UID with other content, in a later upload.
    ds = pydicom.dcmread(io.BytesIO(study[0]))
    ds.PatientName = "张^三"
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    changed = buffer.getvalue()
    _, second = await open_upload(api, [changed, study[1]], key="second")
    status, problem = await put(api, second, changed)
    assert status == 409
    assert "已以不同内容存储；保留先存的副本" in problem["detail"]  # the clinic reads Chinese
    assert await api.pool.fetchval("select count(*) from ingest_rejection") == 1
    assert (await put(api, second, study[1]))[0] == 201
    status, _ = await call(api, "POST", f"/api/v1/uploads/{second['id']}/commit")
    assert status == 409
    status, left = await call(
        api, "DELETE", f"/api/v1/uploads/{second['id']}/instances/{ds.SOPInstanceUID}"
    )
    assert status == 200
    assert left["missing"] == []
    assert left["instances"] == 1
    assert (await call(api, "POST", f"/api/v1/uploads/{second['id']}/commit"))[0] == 200


async def test_sessions_survive_a_restart_of_the_server(api: Api, tmp_path: Path) -> None:
    study = make_study(count=3)
    _, session = await open_upload(api, study)
    assert (await put(api, session, study[0]))[0] == 201
    # A second server process on the same database and objects (the first one went down).
    app = create_app(api.app[SETTINGS])
    client: TestClient[web.Request, web.Application] = TestClient(TestServer(app))
    await client.start_server()
    try:
        headers = api.auth(CLINIC)
        response = await client.get(f"/api/v1/uploads/{session['id']}", headers=headers)
        resumed = await response.json()
        assert {m["sop_instance_uid"] for m in resumed["missing"]} == {
            sop_uid(d) for d in study[1:]
        }
        for data in study[1:]:
            response = await client.put(
                f"/api/v1/uploads/{session['id']}/instances/{sop_uid(data)}",
                data=data,
                headers=headers,
            )
            assert response.status == 201
        response = await client.post(f"/api/v1/uploads/{session['id']}/commit", headers=headers)
        assert response.status == 200
    finally:
        await client.close()
    assert await api.pool.fetchval("select num_instances from study") == 3


async def test_an_open_session_holds_its_study_back_from_the_stable_age(api: Api) -> None:
    study = make_study(count=2)
    _, session = await open_upload(api, study)
    assert (await put(api, session, study[0]))[0] == 201
    uid = session["study_instance_uid"]
    facility = await api.pool.fetchval("select facility_id from study")
    assert await uploads.holds_study(api.pool, uid, facility)
    assert not await uploads.holds_study(api.pool, uid, facility + 1)
    # A session abandoned for more than a day holds nothing back.
    await api.pool.execute("update upload_session set updated_at = now() - interval '25 hours'")
    assert not await uploads.holds_study(api.pool, uid, facility)
    await api.pool.execute("update upload_session set updated_at = now()")
    assert (await put(api, session, study[1]))[0] == 201
    assert (await call(api, "POST", f"/api/v1/uploads/{session['id']}/commit"))[0] == 200
    assert not await uploads.holds_study(api.pool, uid, facility)


def _reset_peak_rss() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # Linux: VmHWM starts again from VmRSS


def _peak_rss_mib() -> float:
    status = Path("/proc/self/status").read_text()
    line = next(x for x in status.splitlines() if x.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


async def test_a_96_mib_instance_in_8_mib_parts_is_assembled_on_disk_not_in_memory(
    api: Api,
) -> None:
    """Regression: parts were assembled in a bytearray of the whole instance, copied once
    more to bytes (twice the instance in memory, 4 GiB for a 2 GiB instance)."""
    (data,) = make_study(count=1, size=7000)  # 7000 × 7000 × 16 bits: 98 MB
    size, part = len(data), 8 * 1024**2
    status, session = await open_upload(api, [data])
    assert status == 201
    # Overlapping ranges, out of order: the file is what the ranges say, whatever their order.
    ranges = [(s, min(size, s + part)) for s in range(0, size, part - 4096)]
    ranges = ranges[1::2] + ranges[0::2]
    _reset_peak_rss()
    before = _peak_rss_mib()
    answers = []
    url = f"/api/v1/uploads/{session['id']}/instances/{sop_uid(data)}"
    for start, end in ranges:
        headers = {
            **api.auth(CLINIC),
            "Content-Type": "application/dicom",
            "Content-Range": f"bytes {start}-{end - 1}/{size}",
        }
        response = await api.client.put(url, data=io.BytesIO(data[start:end]), headers=headers)
        answers.append((response.status, await response.text()))
    grown = _peak_rss_mib() - before
    assert [s for s, _ in answers[:-1]] == [200] * (len(ranges) - 1)
    assert answers[-1][0] == 201, answers[-1]
    stored = await api.pool.fetchrow("select object_key, size_bytes from instance")
    assert stored is not None
    assert stored["size_bytes"] == size
    kept = await api.app[OBJECTS].get(stored["object_key"])
    assert kept[128:] == data[128:]
    del kept
    assert await api.pool.fetchval("select count(*) from upload_part") == 0
    print(
        f"a {size // 1024**2} MiB instance in {len(ranges)} parts: the service grew {grown:.0f} MiB"
    )
    # Less than one copy of the instance (it held two, and more while parsing): a few parts.
    assert grown < size / 1024**2, f"the service grew by {grown:.0f} MiB"


@pytest.mark.s3
async def test_on_s3_the_parts_are_assembled_in_the_data_directory_and_stored(
    database_url: str, tmp_path: Path, seaweedfs: S3Endpoint
) -> None:
    bucket = unique_bucket_name()
    settings = local_settings(database_url, tmp_path, storage_url=seaweedfs.url(bucket))
    try:
        async with serving(settings) as api:
            assert api.app[INGESTOR].spool_dir == tmp_path / "var" / "spool"
            (data,) = make_study(count=1, size=512)  # ~512 KiB in three parts
            status, session = await open_upload(api, [data])
            assert status == 201
            size, cut = len(data), len(data) // 3
            for start, end in ((0, cut), (cut, 2 * cut), (2 * cut, size)):
                headers = {"Content-Range": f"bytes {start}-{end - 1}/{size}"}
                body = data[start:end]
                status, answer = await put(api, session, data, body=body, headers=headers)
            assert (status, answer["outcome"]) == (201, "stored"), answer
            key = await api.pool.fetchval("select object_key from instance")
            assert (await api.app[OBJECTS].get(key))[128:] == data[128:]
            assert list((tmp_path / "var" / "spool").iterdir()) == []
            assert await api.pool.fetchval("select count(*) from upload_part") == 0
    finally:
        await asyncio.to_thread(drop_bucket, seaweedfs.client(), bucket)
