"""Ingest conformance with real peers: dcmtk storescu, pynetdicom, dicomweb-client, pydicom's
own test files, Chinese names in every character set, identity conflicts, late instances,
association limits."""

from __future__ import annotations

import asyncio
import gzip
import io
import os
import subprocess
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.data import get_testdata_file, get_testdata_files
from pydicom.dataset import Dataset
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, generate_uid
from pynetdicom import AE, StoragePresentationContexts
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

from teleradiology.core.dicom import dataset_offset
from teleradiology.core.statuses import StoreStatus
from teleradiology.http.context import OBJECTS, SETTINGS
from teleradiology.roles import DICOM
from teleradiology.services import routing
from tests.factory import make_study, to_part10, write_files
from tests.integration.conftest import Api
from tests.integration.test_ingest import BOUNDARY, counts, multipart, stow

AE_TITLE = "HBXLWD01"  # 王店村卫生室, facility HB-XL-WD in the demo network


def _readable_by_pydicom(path: str) -> bool:
    """pydicom reads it (as a Part-10 file) and it names the four UIDs the index needs."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(path)
            for _ in ds.iterall():
                pass
    except Exception:
        return False
    keys = ("SOPInstanceUID", "SOPClassUID", "StudyInstanceUID", "SeriesInstanceUID")
    return all(ds.get(k) for k in keys)


def _pydicom_test_files() -> list[str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sorted(p for p in set(get_testdata_files("*")) if os.path.isfile(p))


#: pydicom reads them without noticing that they are cut short (the pixel data, the last
#: sequence of the plan); we refuse them.
SILENTLY_TRUNCATED = {"MR_truncated.dcm", "rtplan_truncated.dcm"}


async def _stored_bytes(api: Api, sop_uid: str) -> bytes:
    key = await api.pool.fetchval(
        "select object_key from instance where sop_instance_uid = $1", sop_uid
    )
    assert key is not None, sop_uid
    data: bytes = await api.app[OBJECTS].get(key)
    return data


async def _forget(api: Api, sop_uid: str) -> None:
    """Drop a stored instance's study from the index (the next file may share its UIDs)."""
    study_id = await api.pool.fetchval(
        "select se.study_id from instance i join series se on se.id = i.series_id "
        "where i.sop_instance_uid = $1",
        sop_uid,
    )
    await api.pool.execute("delete from event where study_id = $1", study_id)
    await api.pool.execute("delete from study where id = $1", study_id)


async def test_every_pydicom_test_file_is_stored_byte_identical_or_refused_clearly(
    api: Api,
) -> None:
    stored, refused = [], []
    for path in _pydicom_test_files():
        name = os.path.basename(path)
        data = Path(path).read_bytes()
        response = await stow(api, multipart(data))
        body = await response.json()
        if _readable_by_pydicom(path) and name not in SILENTLY_TRUNCATED:
            assert response.status == 200, (name, body)
            sop = body["00081199"]["Value"][0]["00081155"]["Value"][0]
            kept = await _stored_bytes(api, sop)
            # Stored as received: only the preamble is zeroed.
            assert kept[:128] == bytes(128), name
            assert kept[128:] == data[128:], name
            await _forget(api, sop)
            stored.append(name)
        else:
            assert response.status == 409, (name, body)
            assert body["00081198"]["Value"][0]["00081197"]["Value"] == [0xC000], name
            refused.append(name)
    assert len(stored) >= 60
    assert "MR_truncated.dcm" in refused
    assert await api.pool.fetchval("select count(*) from instance") == 0


async def test_unreadable_files_get_a_named_dimse_status_with_a_reason(api: Api) -> None:
    port = api.app[DICOM].port
    truncated = Path(get_testdata_file("MR_truncated.dcm")).read_bytes()  # type: ignore[arg-type]
    ds = pydicom.dcmread(io.BytesIO(make_study(count=1)[0]))
    del ds.SeriesInstanceUID
    result = await asyncio.to_thread(
        _send, port, AE_TITLE, [pydicom.dcmread(io.BytesIO(truncated)), ds]
    )
    assert result["statuses"] == [StoreStatus.CANNOT_UNDERSTAND] * 2
    assert "truncated" in result["comments"][0]
    assert "SeriesInstanceUID" in result["comments"][1]


def _send(
    port: int, calling_ae: str, datasets: Sequence[Dataset], *, contexts: Any = None
) -> dict[str, Any]:
    ae = AE(ae_title=calling_ae)
    ae.requested_contexts = contexts or StoragePresentationContexts[:100]
    assoc = ae.associate("127.0.0.1", port, ae_title="TELEMED")
    if not assoc.is_established:
        return {"established": False, "rejected": assoc.is_rejected}
    statuses, comments = [], []
    for ds in datasets:
        status = assoc.send_c_store(ds)
        statuses.append(int(status.Status))
        comments.append(str(status.get("ErrorComment", "")))
    assoc.release()
    return {"established": True, "statuses": statuses, "comments": comments}


def _chinese_instance(charset: str | list[str], name: str, patient_id: str) -> bytes:
    (data,) = make_study(count=1, patient_id=patient_id)
    ds = pydicom.dcmread(io.BytesIO(data))
    ds.SpecificCharacterSet = charset
    ds.PatientName = name
    ds.StudyDescription = None
    return to_part10(ds)


def _gbk_labelled_latin1(name: str, patient_id: str) -> bytes:
    """GBK bytes in PatientName under 'ISO_IR 100', as many Chinese workstations write."""
    gbk = name.encode("gbk")
    placeholder = b"Q" * len(gbk)
    data = _chinese_instance("ISO_IR 100", placeholder.decode(), patient_id)
    assert data.count(placeholder) == 1
    return data.replace(placeholder, gbk)


def _iso2022_ir58(name: str, patient_id: str) -> bytes:
    """PS3.5 K.2: GB2312 in G1, announced by ESC $ ) A before the Chinese characters."""
    raw = b"\x1b$)A" + name.encode("gb2312")
    placeholder = b"Q" * len(raw)
    data = _chinese_instance(["", "ISO 2022 IR 58"], placeholder.decode(), patient_id)
    assert data.count(placeholder) == 1
    return data.replace(placeholder, raw)


CHARSETS: list[tuple[str | list[str], str]] = [
    ("ISO_IR 100", "Müller^Jürgen"),
    ("ISO_IR 192", "王^小明"),
    ("GB18030", "欧阳^娜娜"),
    ("GBK", "张^三丰"),
    (["", "ISO 2022 IR 58"], "刘^德华"),
]


async def test_names_in_every_character_set_are_indexed_and_found(api: Api) -> None:
    files = [
        _chinese_instance(charset, name, f"CS-{n}") for n, (charset, name) in enumerate(CHARSETS)
    ]
    files.append(_gbk_labelled_latin1("李^雷", "CS-MISLABELLED"))
    files.append(_iso2022_ir58("周^杰", "CS-ESCAPED"))
    expected = [name for _, name in CHARSETS] + ["李^雷", "周^杰"]
    patient_ids = [f"CS-{n}" for n in range(len(CHARSETS))] + ["CS-MISLABELLED", "CS-ESCAPED"]
    # As files (STOW-RS): an SCU like pynetdicom would decode and re-encode the text first.
    assert (await stow(api, multipart(*files))).status == 200
    for data, name, patient_id in zip(files, expected, patient_ids, strict=True):
        assert (
            await api.pool.fetchval("select name from patient where patient_id = $1", patient_id)
            == name
        ), name
        sent = pydicom.dcmread(io.BytesIO(data))
        stored = pydicom.dcmread(io.BytesIO(await _stored_bytes(api, sent.SOPInstanceUID)))
        # The file keeps the character set it came with; only the index decodes it.
        assert stored.SpecificCharacterSet == sent.SpecificCharacterSet
        assert stored.get_item("PatientName").value == sent.get_item("PatientName").value
    for name in expected[1:]:
        family = name.split("^")[0]
        response = await api.client.get(
            "/dicomweb/studies",
            params={"PatientName": f"{family}*"},
            headers=api.auth("xlwd.clinic"),
        )
        assert response.status == 200, name
        found = await response.json()
        names = [s["00100010"]["Value"][0]["Alphabetic"] for s in found]
        assert name in names, (name, names)


async def test_pynetdicom_scu_sends_many_transfer_syntaxes_stored_unchanged(api: Api) -> None:
    from pynetdicom import build_context

    names = [
        "CT_small.dcm",
        "MR_small_implicit.dcm",
        "MR_small_bigendian.dcm",
        "MR_small_RLE.dcm",
        "MR_small_jp2klossless.dcm",
        "MR_small_jpeg_ls_lossless.dcm",
        "SC_rgb_jpeg_dcmtk.dcm",
        "JPEG-lossy.dcm",
        "693_J2KI.dcm",
        "waveform_ecg.dcm",
        "image_dfl.dcm",
    ]
    datasets = []
    for name in names:
        ds = pydicom.dcmread(get_testdata_file(name))  # type: ignore[arg-type]
        ds.SOPInstanceUID = generate_uid()
        ds.StudyInstanceUID = generate_uid()
        ds.SeriesInstanceUID = generate_uid()
        datasets.append(ds)
    contexts = [build_context(ds.SOPClassUID, ds.file_meta.TransferSyntaxUID) for ds in datasets]
    result = await asyncio.to_thread(
        _send, api.app[DICOM].port, AE_TITLE, datasets, contexts=contexts
    )
    assert result["statuses"] == [StoreStatus.SUCCESS] * len(names), result
    for ds in datasets:
        row = await api.pool.fetchrow(
            "select transfer_syntax_uid, object_key from instance where sop_instance_uid = $1",
            ds.SOPInstanceUID,
        )
        assert row is not None
        assert row["transfer_syntax_uid"] == ds.file_meta.TransferSyntaxUID
        kept = pydicom.dcmread(io.BytesIO(await api.app[OBJECTS].get(row["object_key"])))
        assert kept.file_meta.TransferSyntaxUID == ds.file_meta.TransferSyntaxUID
        if "PixelData" in ds:
            assert kept.PixelData == ds.PixelData  # as received, never re-encoded


def _storescu_profile(folder: Path, pairs: set[tuple[str, str]]) -> Path:
    syntaxes = sorted({ts for _, ts in pairs})
    lines = ["[[TransferSyntaxes]]"]
    for n, ts in enumerate(syntaxes):
        lines += [f"[TS{n}]", f"TransferSyntax1 = {ts}"]
    lines += ["[[PresentationContexts]]", "[Contexts]"]
    for n, (sop, ts) in enumerate(sorted(pairs), start=1):
        lines.append(f"PresentationContext{n} = {sop}\\TS{syntaxes.index(ts)}")
    lines += ["[[Profiles]]", "[Mixed]", "PresentationContexts = Contexts"]
    path = folder / "storescu.cfg"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.dcmtk
async def test_storescu_folders_in_several_associations_and_transfer_syntaxes(
    api: Api, tmp_path: Path
) -> None:
    folders, pairs, sent = [], set(), {}
    for k, name in enumerate(["MR_small_RLE.dcm", "JPEG2000.dcm", "MR_small_implicit.dcm"]):
        folder = tmp_path / f"ws{k}"
        study = make_study(count=4, patient_id=f"SCU-{k}", modality="MR")
        sample = pydicom.dcmread(get_testdata_file(name))  # type: ignore[arg-type]
        sample.StudyInstanceUID = pydicom.dcmread(io.BytesIO(study[0])).StudyInstanceUID
        sample.SeriesInstanceUID = generate_uid()
        sample.SOPInstanceUID = generate_uid()
        sample.file_meta.MediaStorageSOPInstanceUID = sample.SOPInstanceUID
        sample.PatientID = f"SCU-{k}"
        sample.PatientName = "王^小明"
        sample.SpecificCharacterSet = "ISO_IR 192"
        buffer = io.BytesIO()
        sample.save_as(buffer, enforce_file_format=True)
        files = [*study, buffer.getvalue()]
        write_files(folder / "nested" / "deeper", files)
        for data in files:
            ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
            pairs.add((str(ds.SOPClassUID), str(ds.file_meta.TransferSyntaxUID)))
            sent[str(ds.SOPInstanceUID)] = data
        folders.append(folder)
    profile = _storescu_profile(tmp_path, pairs)
    env = {**os.environ, "TCP_NODELAY": "1"}
    port = str(api.app[DICOM].port)

    def run(folder: Path) -> subprocess.CompletedProcess[str]:
        command = ["storescu", "-aet", AE_TITLE, "-aec", "TELEMED", "-xf", str(profile), "Mixed"]
        command += ["+sd", "+r", "127.0.0.1", port, str(folder)]
        return subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)

    results = await asyncio.gather(*(asyncio.to_thread(run, f) for f in folders))
    for result in results:
        assert result.returncode == 0, result.stderr
        assert "Store Failed" not in result.stderr
    assert await counts(api) == (len(sent), len(sent))
    for sop, data in sent.items():
        stored = await _stored_bytes(api, sop)
        original = pydicom.dcmread(io.BytesIO(data))
        kept = pydicom.dcmread(io.BytesIO(stored))
        # storescu re-encodes what it reads (DCMTK); the pixels and the syntax arrive as sent.
        assert kept.file_meta.TransferSyntaxUID == original.file_meta.TransferSyntaxUID
        assert kept.PixelData == original.PixelData
        if original.file_meta.ImplementationClassUID == PYDICOM_IMPLEMENTATION_UID:
            # Our synthetic files: storescu sends their data set byte for byte.
            assert stored[dataset_offset(stored) :] == data[dataset_offset(data) :]


async def test_dicomweb_client_stow_and_gzip_bodies(api: Api) -> None:
    from dicomweb_client.api import DICOMwebClient

    base = str(api.client.make_url("/dicomweb"))
    token = api.tokens["xlwd.clinic"]
    datasets = [pydicom.dcmread(io.BytesIO(b)) for b in make_study(count=3)]

    def send() -> Dataset:
        client = DICOMwebClient(url=base, headers={"Authorization": f"Bearer {token}"})
        return client.store_instances(datasets)

    answer = await asyncio.to_thread(send)
    assert len(answer.ReferencedSOPSequence) == 3
    assert await api.pool.fetchval("select count(*) from instance") == 3
    # A gzip-compressed body (Content-Encoding) is inflated as it arrives.
    body = multipart(*make_study(count=2))
    response = await api.client.post(
        "/dicomweb/studies",
        data=gzip.compress(body),
        headers={
            **api.auth("xlwd.clinic"),
            "Content-Type": f'multipart/related; type="application/dicom"; boundary={BOUNDARY}',
            "Content-Encoding": "gzip",
        },
    )
    assert response.status == 200, await response.text()
    assert await api.pool.fetchval("select count(*) from instance") == 5


async def test_stow_to_a_named_study_refuses_other_studies_and_stores_nothing_of_them(
    api: Api,
) -> None:
    ours, other = make_study(count=1), make_study(count=1)
    uid = pydicom.dcmread(io.BytesIO(ours[0])).StudyInstanceUID
    response = await api.client.post(
        f"/dicomweb/studies/{uid}",
        data=multipart(*ours, *other),
        headers={
            **api.auth("xlwd.clinic"),
            "Content-Type": f'multipart/related; type="application/dicom"; boundary={BOUNDARY}',
        },
    )
    assert response.status == 202
    body = await response.json()
    assert body["00081198"]["Value"][0]["00081197"]["Value"] == [0xA900]
    assert await counts(api) == (1, 1)


async def test_a_body_past_the_size_limit_is_413_with_a_clear_message(api: Api) -> None:
    # The running application's settings, lowered for this test.
    object.__setattr__(api.app[SETTINGS], "max_upload_bytes", 10_000)
    response = await stow(api, multipart(*make_study(count=2, size=128)))
    assert response.status == 413
    assert "上传超过本服务器单个请求接受的大小" in (await response.json())["detail"]


async def test_a_large_part_is_spooled_to_disk_and_stored(api: Api) -> None:
    (big,) = make_study(count=1, size=2100)  # ~8.8 MB: past the in-memory threshold
    response = await api.client.post(
        "/dicomweb/studies",
        data=io.BytesIO(multipart(big)),
        headers={
            **api.auth("xlwd.clinic"),
            "Content-Type": f'multipart/related; type="application/dicom"; boundary={BOUNDARY}',
        },
    )
    assert response.status == 200
    sop = pydicom.dcmread(io.BytesIO(big), stop_before_pixels=True).SOPInstanceUID
    assert (await _stored_bytes(api, sop))[128:] == big[128:]
    assert not any(api.app[OBJECTS].spool_dir.iterdir())  # type: ignore[attr-defined]


async def test_conflicting_patient_data_in_one_study_is_recorded_not_merged(api: Api) -> None:
    first, second = make_study(count=2, patient_id="P-1", patient_name="王^小明")
    ds = pydicom.dcmread(io.BytesIO(second))
    ds.PatientID = "P-2"
    ds.PatientName = "李^四"
    port = api.app[DICOM].port
    result = await asyncio.to_thread(
        _send, port, AE_TITLE, [pydicom.dcmread(io.BytesIO(first)), ds]
    )
    # Stored (tolerant reading), with a warning naming what differs.
    assert result["statuses"] == [StoreStatus.SUCCESS, StoreStatus.COERCION_OF_DATA_ELEMENTS]
    assert "PatientID" in result["comments"][1]
    rows = await api.pool.fetch(
        "select attribute, study_value, instance_value from ingest_identity_conflict order by id"
    )
    assert [(r["attribute"], r["study_value"], r["instance_value"]) for r in rows] == [
        ("PatientID", "P-1", "P-2"),
        ("PatientName", "王^小明", "李^四"),
    ]
    # The study keeps its first patient; the second ID made no patient of its own.
    assert await api.pool.fetchval("select count(*) from patient") == 1
    assert await api.pool.fetchval("select num_instances from study") == 2
    kinds = await api.pool.fetch("select kind, detail from event where kind = 'identity_conflict'")
    assert len(kinds) == 1
    # STOW-RS says the same with a WarningReason and 202.
    (third,) = make_study(count=1)
    ds3 = pydicom.dcmread(io.BytesIO(third))
    ds3.StudyInstanceUID = ds.StudyInstanceUID
    ds3.PatientID = "P-3"
    response = await stow(api, multipart(to_part10(ds3)))
    assert response.status == 202
    ref = (await response.json())["00081199"]["Value"][0]
    assert ref["00081196"]["Value"] == [0xB000]


async def test_a_late_instance_of_a_study_in_reading_is_attached_and_the_reader_told(
    api: Api,
) -> None:
    study = make_study(count=3)
    assert (await stow(api, multipart(*study[:2]))).status == 200
    await api.pool.execute("update study set ready_at = now()")
    from datetime import timedelta

    created = await routing.complete_stable_studies(api.pool, stable_age=timedelta(hours=1))
    assert len(created) == 1
    assert (await stow(api, multipart(study[2]))).status == 200
    assert await api.pool.fetchval("select num_instances from study") == 3
    assert await api.pool.fetchval("select state from study") == "complete"
    response = await api.client.get(f"/api/v1/cases/{created[0]}", headers=api.auth("wang.reader"))
    assert response.status == 200
    events = (await response.json())["events"]
    assert [e["kind"] for e in events].count("late_instance") == 1
    if await api.pool.fetchval("select to_regclass('notification') is not null"):
        told = await api.pool.fetch(
            "select audience, case_id from notification where kind = 'late_instance'"
        )
        assert [(r["audience"], r["case_id"]) for r in told] == [("reader", created[0])]


async def test_associations_past_the_facility_limit_are_refused_transiently(api: Api) -> None:
    listener = api.app[DICOM]
    listener._max_per_facility = 2  # the setting, lowered for the test

    def hold(n: int) -> list[Any]:
        held = []
        for _ in range(n):
            ae = AE(ae_title=AE_TITLE)
            ae.add_requested_context(Verification)
            held.append(ae.associate("127.0.0.1", listener.port, ae_title="TELEMED"))
        return held

    held = await asyncio.to_thread(hold, 3)
    try:
        assert [a.is_established for a in held] == [True, True, False]
        assert held[2].is_rejected
        assert held[2].acceptor.primitive.result == 0x02  # transient
        assert held[2].acceptor.primitive.diagnostic == 0x02  # local limit exceeded
        assert listener.active_associations() == {"HB-XL-WD": 2}
    finally:
        for assoc in held:
            if assoc.is_established:
                await asyncio.to_thread(assoc.release)
    for _ in range(50):
        if not listener.active_associations():
            break
        await asyncio.sleep(0.05)
    again = await asyncio.to_thread(hold, 1)
    assert again[0].is_established
    await asyncio.to_thread(again[0].release)
