"""One fuzzed request to the running service per call, for the integration tests (a batch)
and ``bench/fuzz_service.py`` (10,000): STOW-RS, the resumable upload and C-STORE.

Each call sends one mutated input and checks the contract, raising AssertionError when it
is broken: the answer is a success or a clear refusal (a 4xx problem, a STOW-RS failure
reason, a DICOM failure status), and a refused input leaves no index row and no object.
It returns the status the service answered.
"""

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
from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE

from teleradiology.core.dicom import dataset_offset
from teleradiology.core.statuses import StoreStatus
from teleradiology.roles import DICOM
from tests.factory import make_study
from tests.fuzzing import PYDICOM_FILES, dicom_seeds, ecg_seeds, mutate
from tests.integration.conftest import Api
from tests.integration.test_ecg_flow import upload
from tests.integration.test_ingest import counts, multipart, stow

CLINIC = "xlwd.clinic"
#: The answers that refuse a request (nothing of it may be stored).
REFUSED = (400, 409, 413, 415)
#: C-STORE statuses that refuse the data set.
STORE_REFUSALS = (
    StoreStatus.CANNOT_UNDERSTAND,
    StoreStatus.DUPLICATE_SOP_INSTANCE,
    StoreStatus.DATA_SET_DOES_NOT_MATCH_SOP_CLASS,
)
STORE_SUCCESSES = (StoreStatus.SUCCESS, StoreStatus.COERCION_OF_DATA_ELEMENTS)


def stow_seeds() -> list[bytes]:
    """pydicom's test files and a small generated study."""
    return [*dicom_seeds(), *make_study(count=3)]


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


async def stow_case(api: Api, rnd: random.Random, seeds: Sequence[bytes]) -> int:
    """POST one fuzzed STOW-RS body; the status it got."""
    body, kind = _stow_body(rnd, seeds)
    before = await counts(api)
    response = await stow(api, body)
    text = await response.text()
    assert response.status in (200, 202, *REFUSED), f"{kind}: {response.status} {text[:500]}"
    after = await counts(api)
    if response.status in REFUSED:
        assert after == before, f"{kind}: refused, but the counts went from {before} to {after}"
        return response.status
    stored = (await response.json())["00081199"]["Value"]
    sops = {ref["00081155"]["Value"][0] for ref in stored}
    assert sops <= await _stored_sops(api)
    assert after[0] - before[0] <= len(stored)
    assert after[1] - before[1] <= len(stored)
    return response.status


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


async def upload_case(api: Api, rnd: random.Random, original: bytes, key: str) -> int:
    """Open a session for ``original`` (a new instance) and PUT one fuzzed request to it."""
    ds = pydicom.dcmread(io.BytesIO(original), stop_before_pixels=True)
    sop, study = str(ds.SOPInstanceUID), str(ds.StudyInstanceUID)
    listed, headers, body = _upload_request(rnd, original, mutate(original, rnd))
    if not listed:  # the mutation emptied the file: a manifest cannot list it
        response = await api.client.post(
            "/api/v1/uploads",
            json={"study_instance_uid": study, "instances": [_manifest_line(sop, listed)]},
            headers=api.auth(CLINIC),
        )
        assert response.status == 400, await response.text()
        return response.status
    session = await _open(api, study, sop, listed, key=key)
    before = await counts(api)
    response = await api.client.put(
        f"/api/v1/uploads/{session}/instances/{sop}",
        data=body,
        headers={**api.auth(CLINIC), "Content-Type": "application/dicom", **headers},
    )
    text = await response.text()
    assert response.status in (200, 201, *REFUSED), f"{response.status}: {text[:500]}"
    if response.status in REFUSED:
        assert response.content_type == "application/problem+json"
        assert await counts(api) == before, "refused, but something was stored"
        assert sop not in await _stored_sops(api)
    return response.status


#: pydicom's files a workstation would C-STORE, with the syntaxes they are written in.
C_STORE_SEEDS = ("CT_small.dcm", "MR_small.dcm", "MR_small_implicit.dcm", "MR_small_bigendian.dcm")
_SYNTAXES = [ExplicitVRLittleEndian, ImplicitVRLittleEndian, ExplicitVRBigEndian]


def c_store_seeds() -> list[bytes]:
    return [(PYDICOM_FILES / name).read_bytes() for name in C_STORE_SEEDS]


def _c_store_file(port: int, path: Path) -> int | None:
    """C-STORE the file as it is (the caller sets pynetdicom to send files unchanged);
    None when no status came back."""
    ae = AE(ae_title="HBXLWD01")
    for sop_class in ("1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.4"):
        for syntax in _SYNTAXES:  # one context each: the listener accepts one syntax a context
            ae.add_requested_context(sop_class, syntax)
    assoc = ae.associate("127.0.0.1", port, ae_title="TELEMED")
    assert assoc.is_established
    try:
        status = assoc.send_c_store(path)
        assert assoc.is_established, "the service ended the association"
        return int(status.Status) if "Status" in status else None
    finally:
        assoc.release()


def _mutate_data_set(data: bytes, rnd: random.Random) -> bytes:
    """Mutate the data set only: the file meta is what the sending workstation reads."""
    start = dataset_offset(data) or 132
    return data[:start] + mutate(data[start:], rnd)


async def c_store_case(api: Api, rnd: random.Random, seeds: Sequence[bytes], path: Path) -> int:
    """C-STORE one mutated data set (written to ``path``); the status it got."""
    path.write_bytes(_mutate_data_set(rnd.choice(seeds), rnd))
    before = await counts(api)
    status = await asyncio.to_thread(_c_store_file, api.app[DICOM].port, path)
    assert status is not None, "no status came back"
    if status in STORE_SUCCESSES:
        return status
    assert status in STORE_REFUSALS, f"status 0x{status:04X}"
    assert await counts(api) == before, "refused, but something was stored"
    return status


#: The file name each reader's seeds are sent under (the name is a hint to the reader).
_ECG_NAMES = {
    "scp": "ecg.scp",
    "healforce": "ecg.SCP",
    "contec": "0000053.ECG",
    "dicom_waveform": "ecg.dcm",
    "ge_muse": "muse.xml",
    "hl7_aecg": "aecg.xml",
    "philips": "philips.xml",
    "csv": "ecg.csv",
}


def ecg_upload_seeds() -> list[tuple[str, bytes]]:
    """The repository's real ECG files, each with a file name of its format."""
    seeds = ecg_seeds()
    return [(name, data) for key, name in _ECG_NAMES.items() for data in seeds[key]]


async def _ecg_counts(api: Api) -> tuple[int, int, int]:
    """Instances, objects other than kept refused files, and cart originals."""
    instances, objects = await counts(api)
    originals = await api.pool.fetchval("select count(*) from ecg_original")
    refused = await api.pool.fetchval("select count(distinct object_key) from refused_ecg")
    return instances, objects - int(refused), int(originals)


async def ecg_case(api: Api, rnd: random.Random, seeds: Sequence[tuple[str, bytes]]) -> int:
    """POST one mutated ECG file to /api/v1/ecg; the status it got."""
    name, seed = rnd.choice(seeds)
    text = name.endswith((".xml", ".csv"))
    before = await _ecg_counts(api)
    status, body = await upload(api, [(name, mutate(seed, rnd, text=text))])
    assert status in (200, 201, *REFUSED), f"{name}: {status} {str(body)[:500]}"
    if status in REFUSED:
        assert await _ecg_counts(api) == before, f"{name}: refused, but something was stored"
    return status
