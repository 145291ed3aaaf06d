"""Size limits over the real service: a C-STORE data set past `max_instance_bytes` is refused
with A700 while it is received (its bytes past the limit are dropped, never kept), the
association goes on; STOW-RS and the upload manifest refuse past their limits with 413.

Sizes: limit 200 000 bytes; a 512 × 512 16-bit instance (about 525 KB) is over it, a 64 × 64
one (about 9 KB) under it."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from pathlib import Path

import pydicom
import pytest

from teleradiology.core.statuses import StoreStatus
from teleradiology.http.context import INGESTOR
from teleradiology.roles import DICOM
from teleradiology.settings import Settings
from tests.factory import make_study
from tests.integration.conftest import Api, local_settings, serving
from tests.integration.test_ingest import _send, multipart, stow

LIMIT = 200_000


@pytest.fixture
async def limited(database_url: str, tmp_path: Path) -> AsyncIterator[Api]:
    settings = local_settings(
        database_url, tmp_path, max_instance_bytes=LIMIT, max_upload_bytes=4 * LIMIT
    )
    async with serving(settings) as served:
        yield served


async def test_a_c_store_past_the_limit_is_refused_a700_and_the_association_goes_on(
    limited: Api,
) -> None:
    (big,) = make_study(count=1, size=512)
    (small,) = make_study(count=1, size=64)
    assert len(big) > LIMIT > len(small)
    datasets = [pydicom.dcmread(io.BytesIO(b)) for b in (big, small)]
    port = limited.app[DICOM].port
    result = await asyncio.to_thread(_send, port, "HBXLWD01", datasets)
    assert result["established"]
    assert result["statuses"] == [StoreStatus.OUT_OF_RESOURCES, StoreStatus.SUCCESS]
    assert f"larger than the {LIMIT} bytes" in result["comments"][0]
    stored = await limited.pool.fetch("select sop_instance_uid from instance")
    assert [r["sop_instance_uid"] for r in stored] == [datasets[1].SOPInstanceUID]
    # Nothing of the refused data set is left in the spool.
    assert list(limited.app[INGESTOR].spool_dir.iterdir()) == []


async def test_stow_and_upload_manifests_refuse_past_their_limits(limited: Api) -> None:
    too_many = multipart(*make_study(count=7, size=256))  # 7 × 131 KB > 800 000
    response = await stow(limited, too_many)
    assert response.status == 413
    assert "上传超过本服务器单个请求接受的大小" in (await response.json())["detail"]

    opened = await limited.client.post(
        "/api/v1/uploads",
        json={
            "study_instance_uid": "1.2.3.4",
            "key": "big-one",
            "instances": [{"sop_instance_uid": "1.2.3.4.5", "size": LIMIT + 1, "sha256": "0" * 64}],
        },
        headers=limited.auth("xlwd.clinic"),
    )
    assert opened.status in (400, 413), await opened.text()
    assert str(LIMIT) in (await opened.json())["detail"]
    assert await limited.pool.fetchval("select count(*) from instance") == 0


def test_the_stow_default_per_request_is_512_mib() -> None:
    assert Settings(data_dir=Path("var")).max_upload_bytes == 512 * 1024**2
