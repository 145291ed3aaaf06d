"""Over the real service: pixel bombs are refused with a clear answer, and a render child
killed during a request (SIGKILL, as the kernel's OOM killer does) costs that request only;
the next renders succeed.

Sizes: a 4096 × 4096 16-bit image (32 MiB, about 1.5 s to render as PNG) keeps a child busy
while it is killed; the bombs are a few kilobytes declaring 65535 × 65535 pixels."""

from __future__ import annotations

import asyncio
import io
import os
import signal

from pydicom import dcmread

from teleradiology.http.context import WORK_POOL
from tests.factory import make_study
from tests.integration.conftest import Api
from tests.integration.dicomweb_support import route_all, store
from tests.integration.test_ingest import multipart, stow
from tests.unit.test_pixel_limits import _j2k_instance, _rle_bomb

READER = "wang.reader"
CANNOT_UNDERSTAND = 0xC000


def _path(data: bytes) -> str:
    ds = dcmread(io.BytesIO(data), stop_before_pixels=True)
    return (
        f"/dicomweb/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
        f"/instances/{ds.SOPInstanceUID}"
    )


async def _render(api: Api, data: bytes) -> tuple[int, bytes]:
    status, body, _ = await _rendered(api, data)
    return status, body


async def _rendered(api: Api, data: bytes) -> tuple[int, bytes, dict[str, str]]:
    response = await api.client.get(
        f"{_path(data)}/rendered", headers={**api.auth(READER), "Accept": "image/png"}
    )
    return response.status, await response.read(), dict(response.headers)


async def test_a_render_child_killed_mid_request_leaves_the_next_renders_working(
    api: Api,
) -> None:
    (big,) = make_study(count=1, size=4096, patient_id="KILL-1")
    (small,) = make_study(count=1, size=64, patient_id="KILL-2")
    await store(api, "HB-XL-WD", [big])
    await store(api, "HB-XL-WD", [small])
    await route_all(api)
    pool = api.app[WORK_POOL]
    await pool.warm()
    children = set(pool.child_pids())
    assert children

    in_flight = asyncio.ensure_future(_rendered(api, big))
    for _ in range(1000):
        if getattr(pool.executor, "_pending_work_items", None):
            break
        await asyncio.sleep(0.005)
    else:
        raise AssertionError("the render never reached the pool")
    for pid in children:
        os.kill(pid, signal.SIGKILL)
    status, body, headers = await in_flight
    assert status == 503, body
    assert "请稍后再试" in body.decode()  # the reader reads Chinese
    assert headers["Retry-After"] == "1"
    assert pool.replaced == 1

    for data in (small, big, small):
        status, body = await _render(api, data)
        assert status == 200, body
        assert body[:4] == b"\x89PNG"
    assert not set(pool.child_pids()) & children


async def test_pixel_bombs_are_refused_at_ingest_or_before_decoding(api: Api) -> None:
    # Image attributes declaring 65535 × 65535 × 1000 frames: not stored.
    sent = await stow(api, multipart(_rle_bomb(65535, 65535, 1000)))
    assert sent.status == 409, await sent.text()
    failed = (await sent.json())["00081198"]["Value"][0]
    assert failed["00081197"]["Value"] == [CANNOT_UNDERSTAND]
    assert await api.pool.fetchval("select count(*) from instance") == 0

    # A JPEG 2000 frame declaring more pixels than its attributes: stored as sent, and
    # never decoded; the pool is not lost over it.
    bomb = _j2k_instance(65535, 65535)
    await store(api, "HB-XL-WD", [bomb])
    await route_all(api)
    status, body = await _render(api, bomb)
    assert status == 422, body
    assert b"65535" in body
    frames = await api.client.get(
        f"{_path(bomb)}/frames/1",
        headers={**api.auth(READER), "Accept": "multipart/related; type=application/octet-stream"},
    )
    assert frames.status == 422, await frames.text()
    assert api.app[WORK_POOL].replaced == 0
