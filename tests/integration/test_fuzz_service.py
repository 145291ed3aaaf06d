"""Mutated real files sent to the running service by STOW-RS, the resumable upload and
C-STORE: every answer is a success or a clear refusal (4xx problem, STOW failure reason,
DICOM failure status), and a refused input leaves no index row and no object behind."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import io
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pydicom
import pynetdicom._config
import pytest
from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE

from teleradiology.core.dicom import dataset_offset
from teleradiology.core.statuses import StoreStatus
from teleradiology.roles import DICOM
from tests.factory import make_study
from tests.fuzzing import PYDICOM_FILES, dicom_seeds, mutate
from tests.integration.conftest import Api
from tests.integration.test_ingest import counts, multipart, stow

CLINIC = "xlwd.clinic"
#: Cases per way in: a CI-sized batch (bench/fuzz.py runs the parsers 10,000 times).
STOW_CASES = 120
UPLOAD_CASES = 60
C_STORE_CASES = 80
REFUSED = (400, 409, 413, 415)


def _stow_body(rnd: random.Random, seeds: Sequence[bytes]) -> tuple[bytes, str]:
    """A STOW-RS body: a mutated instance in sound framing, or sound instances in damaged
    framing (boundary lines, part headers, the closing delimiter)."""
    seed = rnd.choice(seeds)
    if rnd.random() < 0.7:
        return multipart(mutate(seed, rnd)), "instance"
    body = multipart(seed, rnd.choice(seeds))
    return mutate(body, rnd, text=True), "framing"


async def _stored_sops(api: Api) -> set[str]:
    rows = await api.pool.fetch("select sop_instance_uid from instance")
    return {r["sop_instance_uid"] for r in rows}


async def test_fuzzed_stow_bodies_are_stored_or_refused_leaving_nothing(api: Api) -> None:
    rnd = random.Random(20261204)
    seeds = [*dicom_seeds(), *make_study(count=3)]
    kinds: dict[int, int] = {}
    for n in range(STOW_CASES):
        body, kind = _stow_body(rnd, seeds)
        before = await counts(api)
        response = await stow(api, body)
        text = await response.text()
        kinds[response.status] = kinds.get(response.status, 0) + 1
        assert response.status in (200, 202, *REFUSED), f"case {n} ({kind}): {text[:500]}"
        after = await counts(api)
        if response.status in REFUSED:
            assert after == before, f"case {n} ({kind}) was refused but left {after} for {before}"
            continue
        stored = (await response.json())["00081199"]["Value"]
        sops = {ref["00081155"]["Value"][0] for ref in stored}
        assert sops <= await _stored_sops(api)
        assert after[0] - before[0] <= len(stored)
        assert after[1] - before[1] <= len(stored)
    # The batch reached both answers: what survives mutation is stored, the rest refused.
    assert kinds.get(409, 0) + kinds.get(400, 0) > STOW_CASES // 4, kinds
    assert kinds.get(200, 0) + kinds.get(202, 0) > 0, kinds


def _manifest_line(sop: str, data: bytes) -> dict[str, Any]:
    return {"sop_instance_uid": sop, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


async def _open(api: Api, study: str, sop: str, data: bytes, key: str) -> str:
    response = await api.client.post(
        "/api/v1/uploads",
        json={"study_instance_uid": study, "instances": [_manifest_line(sop, data)], "key": key},
        headers=api.auth(CLINIC),
    )
    assert response.status in (200, 201), await response.text()
    return str((await response.json())["id"])


def _upload_request(
    rnd: random.Random, original: bytes, mutated: bytes
) -> tuple[bytes, dict[str, str], bytes]:
    """(what the manifest lists, headers, body) for one fuzzed PUT: a mutated file the
    manifest describes, a body that differs from the manifest, a damaged gzip, or a
    Content-Range of mutated numbers."""
    choice = rnd.randrange(4)
    if choice == 0:
        return mutated, {}, mutated
    if choice == 1:
        return original, {}, mutated
    if choice == 2:
        packed = mutate(gzip.compress(mutated), rnd)
        return mutated, {"Content-Encoding": "gzip"}, packed
    size = len(original)
    start = rnd.randrange(size)
    header = f"bytes {start}-{rnd.randrange(start, size)}/{size}".encode()
    # Printable only: a client cannot send control characters in a header at all.
    text = mutate(header, rnd, text=True).decode("latin-1")
    text = "".join(c for c in text if " " <= c <= "~")
    part = original[start : start + rnd.randrange(1, 4096)]
    return original, {"Content-Range": text}, part


async def test_a_part_header_with_a_stray_carriage_return_is_a_400(api: Api) -> None:
    (instance,) = make_study(count=1)
    body = multipart(instance).replace(b"application/dicom\r\n", b"application/dicom\rJ\r\n", 1)
    response = await stow(api, body)
    assert response.status == 400, await response.text()
    assert response.content_type == "application/problem+json"
    assert "malformed" in (await response.json())["detail"]
    assert await counts(api) == (0, 0)


async def test_nul_bytes_in_a_patient_name_are_stored_without_them(api: Api) -> None:
    (instance,) = make_study(count=1, patient_name="ABC^DEF")
    response = await stow(api, multipart(instance.replace(b"ABC^DEF", b"AB\x00^DEF", 1)))
    assert response.status == 200, await response.text()
    assert await api.pool.fetchval("select count(*) from instance") == 1


async def test_fuzzed_upload_requests_are_stored_or_refused_leaving_nothing(api: Api) -> None:
    rnd = random.Random(4122026)
    kinds: dict[int, int] = {}
    for n in range(UPLOAD_CASES):
        (original,) = make_study(count=1)
        ds = pydicom.dcmread(io.BytesIO(original), stop_before_pixels=True)
        sop, study = str(ds.SOPInstanceUID), str(ds.StudyInstanceUID)
        listed, headers, body = _upload_request(rnd, original, mutate(original, rnd))
        session = await _open(api, study, sop, listed, key=f"fuzz-{n}")
        before = await counts(api)
        response = await api.client.put(
            f"/api/v1/uploads/{session}/instances/{sop}",
            data=body,
            headers={**api.auth(CLINIC), "Content-Type": "application/dicom", **headers},
        )
        text = await response.text()
        kinds[response.status] = kinds.get(response.status, 0) + 1
        assert response.status in (200, 201, *REFUSED), f"case {n}: {text[:500]}"
        if response.status in REFUSED:
            assert response.content_type == "application/problem+json"
            assert await counts(api) == before, f"case {n} was refused but stored something"
            assert sop not in await _stored_sops(api)
    assert sum(kinds.get(s, 0) for s in REFUSED) > UPLOAD_CASES // 4, kinds


#: pydicom's files a workstation would C-STORE, with the syntaxes they are written in.
C_STORE_SEEDS = ("CT_small.dcm", "MR_small.dcm", "MR_small_implicit.dcm", "MR_small_bigendian.dcm")
_SYNTAXES = [ExplicitVRLittleEndian, ImplicitVRLittleEndian, ExplicitVRBigEndian]


def _c_store_files(port: int, paths: Sequence[Path]) -> list[int | None]:
    """C-STORE each file as it is on one association; None where the association ended."""
    ae = AE(ae_title="HBXLWD01")
    for sop_class in ("1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.4"):
        for syntax in _SYNTAXES:  # one context each: the listener accepts one syntax a context
            ae.add_requested_context(sop_class, syntax)
    assoc = ae.associate("127.0.0.1", port, ae_title="TELEMED")
    assert assoc.is_established
    statuses: list[int | None] = []
    try:
        for path in paths:
            status = assoc.send_c_store(path)
            statuses.append(int(status.Status) if "Status" in status else None)
            assert assoc.is_established, "the service ended the association"
    finally:
        assoc.release()
    return statuses


def _mutate_data_set(data: bytes, rnd: random.Random) -> bytes:
    """Mutate the data set only: the file meta is what the sending workstation reads."""
    start = dataset_offset(data) or 132
    return data[:start] + mutate(data[start:], rnd)


async def test_fuzzed_c_store_data_sets_get_a_status_and_refused_ones_leave_nothing(
    api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The workstation sends each file's bytes as they are, not as pydicom would rewrite them.
    monkeypatch.setattr(pynetdicom._config, "STORE_SEND_CHUNKED_DATASET", True)
    rnd = random.Random(1112)
    seeds = [(PYDICOM_FILES / name).read_bytes() for name in C_STORE_SEEDS]
    paths = []
    for n in range(C_STORE_CASES):
        path = tmp_path / f"case-{n}.dcm"
        path.write_bytes(_mutate_data_set(rnd.choice(seeds), rnd))
        paths.append(path)
    port = api.app[DICOM].port
    statuses: list[int | None] = []
    for path in paths:  # one at a time, so each refusal is checked against the counts
        before = await counts(api)
        (status,) = await asyncio.to_thread(_c_store_files, port, [path])
        statuses.append(status)
        assert status is not None
        if status in (StoreStatus.SUCCESS, StoreStatus.COERCION_OF_DATA_ELEMENTS):
            continue
        assert status in (
            StoreStatus.CANNOT_UNDERSTAND,
            StoreStatus.DUPLICATE_SOP_INSTANCE,
            StoreStatus.DATA_SET_DOES_NOT_MATCH_SOP_CLASS,
        ), f"{path.name}: status 0x{status:04X}"
        assert await counts(api) == before, f"{path.name} was refused but stored something"
    refused = [s for s in statuses if s not in (StoreStatus.SUCCESS, 0xB000)]
    assert len(refused) > C_STORE_CASES // 4, [f"0x{s or 0:04X}" for s in statuses]
