"""Mutated real files sent to the running service by STOW-RS, the resumable upload, C-STORE
and the ECG upload: every answer is a success or a clear refusal (4xx problem, STOW failure reason,
DICOM failure status), and a refused input leaves no index row and no object behind.

A CI-sized batch of each; ``bench/fuzz_service.py`` sends 10,000.
"""

from __future__ import annotations

import random
from pathlib import Path

import pynetdicom._config
import pytest

from tests.factory import make_study
from tests.integration.conftest import Api
from tests.integration.test_ingest import counts, multipart, stow
from tests.service_fuzz import (
    REFUSED,
    STORE_SUCCESSES,
    c_store_case,
    c_store_seeds,
    ecg_case,
    ecg_upload_seeds,
    stow_case,
    stow_seeds,
    upload_case,
)

STOW_CASES = 120
UPLOAD_CASES = 50
C_STORE_CASES = 40
ECG_CASES = 40


async def test_fuzzed_stow_bodies_are_stored_or_refused_leaving_nothing(api: Api) -> None:
    rnd = random.Random(20261204)
    seeds = stow_seeds()
    statuses = [await stow_case(api, rnd, seeds) for _ in range(STOW_CASES)]
    # The batch reached both answers: what survives mutation is stored, the rest refused.
    assert sum(s in REFUSED for s in statuses) > STOW_CASES // 4, statuses
    assert any(s in (200, 202) for s in statuses), statuses


async def test_a_part_header_with_a_stray_carriage_return_is_a_400(api: Api) -> None:
    (instance,) = make_study(count=1)
    body = multipart(instance).replace(b"application/dicom\r\n", b"application/dicom\rJ\r\n", 1)
    response = await stow(api, body)
    assert response.status == 400, await response.text()
    assert response.content_type == "application/problem+json"
    assert "multipart 正文格式有误" in (await response.json())["detail"]  # the clinic reads Chinese
    assert await counts(api) == (0, 0)


async def test_a_body_that_breaks_after_a_stored_part_lists_that_part_as_stored(
    api: Api,
) -> None:
    first, second = make_study(count=2)
    body = multipart(first, second)
    # The second part's header damaged: the first part is already committed when it is read.
    at = body.index(b"application/dicom", body.index(b"application/dicom") + 1)
    body = body[:at] + b"application/dicom\rJ" + body[at + len(b"application/dicom") :]
    response = await stow(api, body)
    assert response.status == 202, await response.text()
    answer = await response.json()
    assert len(answer["00081199"]["Value"]) == 1
    assert answer["00081198"]["Value"][0]["00081197"]["Value"] == [0xC000]
    assert await counts(api) == (1, 1)


async def test_nul_bytes_in_a_patient_name_are_stored_without_them(api: Api) -> None:
    (instance,) = make_study(count=1, patient_name="ABC^DEF")
    response = await stow(api, multipart(instance.replace(b"ABC^DEF", b"AB\x00^DEF", 1)))
    assert response.status == 200, await response.text()
    assert await api.pool.fetchval("select count(*) from instance") == 1


async def test_fuzzed_upload_requests_are_stored_or_refused_leaving_nothing(api: Api) -> None:
    rnd = random.Random(4122026)
    statuses = []
    for n in range(UPLOAD_CASES):
        (original,) = make_study(count=1)
        statuses.append(await upload_case(api, rnd, original, key=f"fuzz-{n}"))
    assert sum(s in REFUSED for s in statuses) > UPLOAD_CASES // 4, statuses


async def test_fuzzed_c_store_data_sets_get_a_status_and_refused_ones_leave_nothing(
    api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The workstation sends each file's bytes as they are, not as pydicom would rewrite them.
    monkeypatch.setattr(pynetdicom._config, "STORE_SEND_CHUNKED_DATASET", True)
    rnd = random.Random(1112)
    seeds = c_store_seeds()
    statuses = [
        await c_store_case(api, rnd, seeds, tmp_path / f"case-{n}.dcm")
        for n in range(C_STORE_CASES)
    ]
    refused = [s for s in statuses if s not in STORE_SUCCESSES]
    assert len(refused) > C_STORE_CASES // 4, [f"0x{s:04X}" for s in statuses]


async def test_fuzzed_ecg_uploads_are_stored_or_refused_leaving_nothing(api: Api) -> None:
    rnd = random.Random(12)
    seeds = ecg_upload_seeds()
    statuses = [await ecg_case(api, rnd, seeds) for _ in range(ECG_CASES)]
    assert sum(s in REFUSED for s in statuses) > ECG_CASES // 4, statuses
