"""``telemed upload``: a folder goes up, a dropped link or a killed client resumes, errors are
one clear line with a non-zero exit status."""

from __future__ import annotations

import asyncio
import io
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pydicom

from teleradiology.http.context import SETTINGS
from teleradiology.node.upload_client import ExitCode, Retry, UploadClient, scan, upload_paths
from tests.factory import make_study, write_files
from tests.integration.conftest import Api
from tests.integration.tcp_proxy import TcpProxy
from worker.runner import sweep_once

REPO = Path(__file__).resolve().parents[2]


def base_url(api: Api) -> str:
    return str(api.client.make_url("")).rstrip("/")


async def run_upload(
    paths: list[Path], url: str, token: str, **options: Any
) -> tuple[ExitCode, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = await upload_paths(
        paths, server=url, token=token, out=out, err=err, show_progress=False, **options
    )
    return code, out.getvalue(), err.getvalue()


async def test_a_folder_goes_up_in_one_session_and_a_rerun_sends_nothing(
    api: Api, tmp_path: Path
) -> None:
    folder = tmp_path / "exam"
    study = make_study(count=5)
    write_files(folder / "series1", study)
    (big,) = make_study(
        count=1, size=512, study_uid=pydicom.dcmread(io.BytesIO(study[0])).StudyInstanceUID
    )
    (folder / "series2").mkdir()
    (folder / "series2" / "BIG.dcm").write_bytes(big)
    (folder / "README.txt").write_text("not DICOM", "utf-8")
    token = api.tokens["xlwd.clinic"]

    code, out, err = await run_upload(
        [folder], base_url(api), token, part_bytes=128 * 1024, urgency="urgent", question="胸痛"
    )
    assert code is ExitCode.OK, err
    assert "6 instance(s), sent 6, already on the server 0, committed" in out
    assert "skipped 1 file(s)" in err
    assert await api.pool.fetchval("select count(*) from instance") == 6
    row = await api.pool.fetchrow("select priority, clinical_question, ready_at from study")
    assert row is not None
    assert (row["priority"], row["clinical_question"]) == ("high", "胸痛")
    assert row["ready_at"] is not None

    code, out, _ = await run_upload([folder], base_url(api), token, part_bytes=128 * 1024)
    assert code is ExitCode.OK
    assert "sent 0, already on the server 6, committed" in out
    assert await api.pool.fetchval("select count(*) from upload_session") == 1
    assert await api.pool.fetchval("select max(bodies_received) from upload_item") == 1
    assert await sweep_once(api.pool, api.app[SETTINGS]) == 1


async def test_the_upload_rides_out_a_dropped_link(api: Api, tmp_path: Path) -> None:
    server = api.client.server
    proxy = TcpProxy(str(server.host), int(server.port or 0))
    await proxy.start()
    study = make_study(count=60, size=32)
    files = write_files(tmp_path / "exam", study)
    proxy.cut_after_bytes = 60_000

    async def restore_later() -> None:
        await proxy.was_cut.wait()
        await asyncio.sleep(1.5)
        await proxy.restore()

    restorer = asyncio.create_task(restore_later())
    try:
        code, out, err = await run_upload(
            files, proxy.url, api.tokens["xlwd.clinic"], retry=Retry(give_up_s=30, max_s=0.5)
        )
    finally:
        await restorer
        await proxy.close()
    assert code is ExitCode.OK, err
    assert "retrying: connection" in err
    assert "committed" in out
    assert await api.pool.fetchval("select count(*) from instance") == 60
    assert await api.pool.fetchval("select count(*) from ingest_rejection") == 0


async def test_failures_exit_non_zero_with_one_clear_line(api: Api, tmp_path: Path) -> None:
    files = write_files(tmp_path / "exam", make_study(count=2))
    token = api.tokens["xlwd.clinic"]

    # Nobody listening: retried, then given up with what to do.
    code, _, err = await run_upload(files, "http://127.0.0.1:9", token, retry=Retry(give_up_s=1))
    assert code is ExitCode.UNREACHABLE
    assert "run the same command again to resume" in err.strip().splitlines()[-1]

    code, _, err = await run_upload(files, base_url(api), "not-a-token")
    assert code is ExitCode.REFUSED
    assert "令牌未知、已过期或已吊销" in err  # no Accept-Language: zh-CN

    code, _, err = await run_upload([tmp_path / "nowhere"], base_url(api), token)
    assert code is ExitCode.BAD_INPUT
    assert "no such file or folder" in err

    # An instance the archive holds with other content: refused, the study not committed.
    ds = pydicom.dcmread(files[0])
    code, _, _ = await run_upload(files[:1], base_url(api), token)
    assert code is ExitCode.OK
    ds.PatientName = "张^三"
    ds.save_as(files[0], enforce_file_format=True)
    code, out, err = await run_upload(files, base_url(api), token)
    assert code is ExitCode.REFUSED
    assert "NOT committed" in out
    assert "已以不同内容存储" in err  # the server's words, in the clinic's language
    assert "1 instance(s) were refused" in err.strip().splitlines()[-1]


async def test_a_killed_upload_rerun_sends_only_what_is_missing(api: Api, tmp_path: Path) -> None:
    count = 200
    write_files(tmp_path / "exam", make_study(count=count, size=64))
    env = {**os.environ, "TELEMED_TOKEN": api.tokens["xlwd.clinic"]}
    env.pop("TELEMED_DATA_DIR", None)
    command = [
        *(sys.executable, "-m", "teleradiology", "upload", str(tmp_path / "exam")),
        *("--server", base_url(api), "--no-progress", "--concurrency", "2"),
    ]

    # A slow link (--limit-rate), killed part-way through.
    pipes: dict[str, Any] = {"stdout": asyncio.subprocess.PIPE, "stderr": asyncio.subprocess.PIPE}
    first = await asyncio.create_subprocess_exec(
        *command, "--limit-rate", "150", env=env, cwd=REPO, **pipes
    )
    deadline = time.monotonic() + 60
    while (
        await api.pool.fetchval("select count(*) from upload_item where stored_at is not null") < 40
    ):
        assert first.returncode is None, await first.stderr.read()  # type: ignore[union-attr]
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    await first.wait()
    await asyncio.sleep(0.5)  # a body already received finishes storing
    stored_before = await api.pool.fetchval(
        "select count(*) from upload_item where stored_at is not null"
    )
    assert 40 <= stored_before < count
    assert await api.pool.fetchval("select state from upload_session") == "open"

    second = await asyncio.create_subprocess_exec(*command, env=env, cwd=REPO, **pipes)
    async with asyncio.timeout(60):
        out, err = await second.communicate()
    assert second.returncode == 0, err.decode()
    # The rerun sent exactly what the server lacked, nothing twice.
    assert (
        f"{count} instance(s), sent {count - stored_before}, already on the server "
        f"{stored_before}, committed"
    ) in out.decode()
    bodies = await api.pool.fetch("select bodies_received from upload_item")
    assert sorted({r["bodies_received"] for r in bodies}) == [1]
    assert len(bodies) == count
    assert await api.pool.fetchval("select count(*) from upload_session") == 1
    assert await api.pool.fetchval("select count(*) from instance") == count
    assert await sweep_once(api.pool, api.app[SETTINGS]) == 1
    assert await api.pool.fetchval("select count(*) from reading_case") == 1


async def test_a_large_instance_resumes_from_the_parts_the_server_holds(
    api: Api, tmp_path: Path
) -> None:
    (big,) = make_study(count=1, size=512)  # 512 KiB of pixels and a header: five parts
    (path,) = write_files(tmp_path / "exam", [big])
    (study,), _ = scan([path])
    part = 128 * 1024
    async with aiohttp.ClientSession() as http:
        client = UploadClient(http, base_url(api), api.tokens["xlwd.clinic"])
        session = await client.open(
            key=study.key, study_instance_uid=study.study_instance_uid, instances=study.instances
        )
        # The first two parts went up before the link dropped.
        for start in (0, part):
            response = await http.put(
                f"{base_url(api)}/api/v1/uploads/{session['id']}/instances/"
                f"{study.instances[0].sop_instance_uid}",
                data=big[start : start + part],
                headers={
                    **api.auth("xlwd.clinic"),
                    "Content-Range": f"bytes {start}-{start + part - 1}/{len(big)}",
                },
            )
            assert response.status == 200
        resumed = await client.open(
            key=study.key, study_instance_uid=study.study_instance_uid, instances=study.instances
        )
        (missing,) = resumed["missing"]
        assert missing["received"] == [[0, 2 * part]]
        outcome = await client.send(
            session["id"], study.instances[0], received=missing["received"], part_bytes=part
        )
        assert outcome == "stored"
        # Only the parts the server lacked were sent.
        assert client.bodies_sent == -(-len(big) // part) - 2 == 3
        assert (await client.commit(session["id"]))["state"] == "committed"
    assert await api.pool.fetchval("select count(*) from instance") == 1
