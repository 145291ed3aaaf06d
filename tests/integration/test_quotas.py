"""Per-facility daily intake limits over the real service: past the limit, STOW-RS and the
resumable upload answer 429 (problem type quota-exceeded, Retry-After), C-STORE A700 with an
error comment, and nothing is stored; resends of stored instances stay safe; concurrent
senders cannot overshoot; other facilities are not held back.

Sizes: a default of 3 instances a day; 64 × 64 instances of about 9 KB."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from pathlib import Path

import pydicom
import pytest

from teleradiology.core.errors import QUOTA_EXCEEDED
from teleradiology.core.statuses import StoreStatus
from teleradiology.roles import DICOM
from tests.factory import make_study
from tests.integration.conftest import Api, local_settings, serving
from tests.integration.test_ecg_flow import csv_of
from tests.integration.test_ecg_flow import upload as upload_ecg
from tests.integration.test_ingest import _send, counts, multipart, stow
from tests.integration.test_uploads import open_upload, put

CLINIC = "xlwd.clinic"  # HB-XL-WD, workstation AE HBXLWD01
OTHER_CLINIC = "mjlw.clinic"


@pytest.fixture
async def limited(database_url: str, tmp_path: Path) -> AsyncIterator[Api]:
    settings = local_settings(
        database_url, tmp_path, quota_bytes_per_day=0, quota_instances_per_day=3
    )
    async with serving(settings) as served:
        yield served


async def _stored(api: Api) -> int:
    count: int = await api.pool.fetchval("select count(*) from instance")
    return count


async def test_past_the_daily_limit_every_way_in_refuses_and_stores_nothing(
    limited: Api,
) -> None:
    first = make_study(count=3, size=64)
    assert (await stow(limited, multipart(*first))).status == 200
    # A resend of what is stored is still success, and not counted again.
    assert (await stow(limited, multipart(first[0]))).status == 200

    (late,) = make_study(count=1, size=64)
    refused = await stow(limited, multipart(late))
    assert refused.status == 429, await refused.text()
    problem = await refused.json()
    assert problem["type"] == QUOTA_EXCEEDED
    assert "HB-XL-WD 今天（UTC 日）已发送 3 个实例，达到上限" in problem["detail"]
    assert 0 < int(refused.headers["Retry-After"]) <= 86400

    status, session = await open_upload(limited, [late])
    assert status == 201, session
    status, answer = await put(limited, session, late)
    assert (status, answer["type"]) == (429, QUOTA_EXCEEDED), answer

    port = limited.app[DICOM].port
    dataset = pydicom.dcmread(io.BytesIO(late))
    result = await asyncio.to_thread(_send, port, "HBXLWD01", [dataset])
    assert result["statuses"] == [StoreStatus.OUT_OF_RESOURCES]
    assert result["comments"] == ["daily intake limit reached; send after 00:00 UTC"]
    status, problem = await upload_ecg(limited, [("ecg.csv", csv_of())])
    assert (status, problem["type"]) == (429, QUOTA_EXCEEDED), problem
    # Three instances, three objects: nothing of the refused ones kept, not the ECG's original.
    assert await counts(limited) == (3, 3)
    assert await limited.pool.fetchval("select count(*) from ecg_original") == 0

    # Another facility has its own count.
    assert (await stow(limited, multipart(late), user=OTHER_CLINIC)).status == 200
    assert await _stored(limited) == 4


async def test_a_facilitys_own_limit_set_by_an_administrator_comes_first(limited: Api) -> None:
    instances = make_study(count=4, size=64)
    size = len(instances[0])
    answer = await limited.client.put(
        "/api/v1/admin/facilities/HB-XL-WD/quota",
        json={"bytes_per_day": 2 * size + size // 2, "instances_per_day": 0},
        headers=limited.auth("hb.admin"),
    )
    assert answer.status == 200, await answer.text()
    assert (await answer.json())["bytes_per_day"] == 2 * size + size // 2
    mixed = await stow(limited, multipart(*instances))
    # Two fit; the third and fourth would pass the bytes: 202, with A700 for those two.
    assert mixed.status == 202, await mixed.text()
    failed = (await mixed.json())["00081198"]["Value"]
    assert [f["00081197"]["Value"] for f in failed] == [[0xA700], [0xA700]]
    assert await _stored(limited) == 2
    refused = await limited.client.put(
        "/api/v1/admin/facilities/HB-XL-WD/quota",
        json={"bytes_per_day": -1},
        headers=limited.auth("hb.admin"),
    )
    assert refused.status == 400


async def test_concurrent_senders_cannot_go_past_the_limit(limited: Api) -> None:
    instances = make_study(count=10, size=64)
    answers = await asyncio.gather(*(stow(limited, multipart(i)) for i in instances))
    assert sorted(a.status for a in answers) == [200] * 3 + [429] * 7
    assert await _stored(limited) == 3
    sent = await limited.pool.fetchrow("select bytes, instances from facility_intake")
    assert sent is not None
    assert sent["instances"] == 3
