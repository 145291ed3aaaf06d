"""An ECG from a cart to a reader, in the real database: upload of every format file, the
worker's analysis, routing to the ECG pool, STEMI priority, the C-STORE and STOW-RS paths."""

from __future__ import annotations

import asyncio
import io
import zipfile
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pydicom
import pytest
from pydicom.uid import ExplicitVRLittleEndian
from pynetdicom import AE

from ecg.dicom_export import to_dicom_waveform
from storage.ecg import ECG_SOP_CLASS_PREFIX
from teleradiology.http.context import OBJECTS, SETTINGS
from teleradiology.roles import DICOM
from tests.ecg_file import FORMATS
from tests.integration.conftest import Api
from tests.integration.dicomweb_support import route_all, store
from tests.integration.test_ingest import multipart, stow
from tests.unit.ecg.signal_support import synthetic_record
from worker.runner import sweep_once

#: Every file a cart sends alone; the WFDB record is its header with its signal file.
SINGLE_FILES = sorted(
    str(p.relative_to(FORMATS))
    for p in FORMATS.rglob("*")
    if p.is_file() and p.suffix not in (".hea", ".dat", ".xyz")
)
#: Inferior ST elevation meeting the criterion at the J point (the hump peaks 140 ms after R:
#: 400 µV there is about 0.13 mV at J).
STEMI_ST_UV = {"II": 400.0, "III": 400.0, "aVF": 400.0}


def csv_of(st_uv: dict[str, float] | None = None) -> bytes:
    record = synthetic_record(st_uv=st_uv)
    lines = ["# sampling_rate_hz: 500", ",".join(record.leads)]
    lines += [",".join(f"{v:.1f}" for v in row) for row in record.samples_uv.T]
    return ("\n".join(lines) + "\n").encode()


async def upload(
    api: Api,
    files: list[tuple[str, bytes]],
    *,
    user: str = "xlwd.clinic",
    patient_id: str = "WD-E1",
    urgency: str | None = None,
) -> tuple[int, dict[str, Any]]:
    form = aiohttp.FormData()
    form.add_field("patient_id", patient_id)
    form.add_field("patient_name", "王^小明")
    if urgency:
        form.add_field("urgency", urgency)
    for name, data in files:
        form.add_field("file", data, filename=name, content_type="application/octet-stream")
    response = await api.client.post("/api/v1/ecg", data=form, headers=api.auth(user))
    return response.status, await response.json()


async def sweep(api: Api) -> int:
    """The worker's pass (ECG analysis in a thread here), with every study complete now."""
    await api.pool.execute("update study set ready_at = now() where state = 'receiving'")
    settings = api.app[SETTINGS]
    return await sweep_once(api.pool, settings, api.app[OBJECTS])


async def ecg_case(api: Api, study_uid: str) -> Any:
    return await api.pool.fetchrow(
        "select c.id, c.priority, c.stemi, c.specialty, c.deadline, c.created_at, f.code as pool"
        " from reading_case c join study s on s.id = c.study_id"
        " join facility f on f.id = c.pool_facility_id"
        " where s.study_instance_uid = $1 and c.specialty = 'ecg'",
        study_uid,
    )


async def get_json(api: Api, user: str, path: str) -> Any:
    response = await api.client.get(path, headers=api.auth(user))
    assert response.status == 200, await response.text()
    return await response.json()


@pytest.mark.parametrize("name", [*SINGLE_FILES, "wfdb_12lead/s0010_re.hea"])
async def test_every_format_file_is_stored_analyzed_and_routed_to_the_ecg_pool(
    api: Api, name: str
) -> None:
    path = FORMATS / name
    files = [(path.name, path.read_bytes())]
    if path.suffix == ".hea":
        files += [
            (p.name, p.read_bytes()) for p in (path.with_suffix(".dat"), path.with_suffix(".xyz"))
        ]
    status, body = await upload(api, files)
    assert status == 201, body
    assert body["outcome"] == "stored"
    assert await sweep(api) >= 1
    case = await ecg_case(api, body["study_instance_uid"])
    assert case is not None
    assert case["pool"] == "HB-XL"  # the demo network's township first read of ECGs
    view = await get_json(api, "xl.ecg", f"/api/v1/ecg/{body['sop_instance_uid']}")
    assert view["analyzed"] is True
    assert view["analysis_error"] is None
    assert view["measurements"]["heart_rate_bpm"] > 25
    assert view["statements"]
    assert view["original"]["format"] == body["format"]
    # the original comes back byte for byte (a WFDB record: each of its files in a ZIP)
    original = await api.client.get(view["links"]["original"], headers=api.auth("xl.ecg"))
    kept = await original.read()
    if len(files) == 1:
        assert kept == files[0][1]
    else:
        with zipfile.ZipFile(io.BytesIO(kept)) as archive:
            assert {n: archive.read(n) for n in archive.namelist()} == dict(files)
    # the DICOM waveform made from it is served by our DICOMweb
    wado = await api.client.get(
        f"/dicomweb/studies/{body['study_instance_uid']}",
        headers={**api.auth("xl.ecg"), "Accept": 'multipart/related; type="application/dicom"'},
    )
    assert wado.status == 200
    raw = await wado.read()
    start = raw.index(b"DICM") - 128
    ds = pydicom.dcmread(io.BytesIO(raw[start:]))
    assert ds.SOPClassUID.startswith(ECG_SOP_CLASS_PREFIX)
    assert ds.SOPInstanceUID == body["sop_instance_uid"]
    assert ds.PatientID == "WD-E1"
    assert sum(int(g.NumberOfWaveformChannels) for g in ds.WaveformSequence) >= len(body["leads"])


async def test_a_resent_upload_is_stored_once(api: Api) -> None:
    data = csv_of()
    first_status, first = await upload(api, [("a.csv", data)])
    again_status, again = await upload(api, [("a.csv", data)])
    assert (first_status, again_status) == (201, 200)
    assert again["sop_instance_uid"] == first["sop_instance_uid"]
    assert again["outcome"] == "duplicate"
    assert await api.pool.fetchval("select count(*) from instance") == 1


async def test_a_retry_after_an_upload_cut_off_midway_completes_it(api: Api) -> None:
    """The first attempt stored its DICOM copy and died before keeping the original (the
    process killed, the link cut): the retry answers success with the same ECG, not a conflict
    over a copy rebuilt with another fallback time, and keeps the original."""
    data = csv_of()
    status, first = await upload(api, [("a.csv", data)])
    assert status == 201
    await api.pool.execute("delete from ecg_original")
    await api.pool.execute("update study set ready_at = null")
    await asyncio.sleep(0.01)
    status, again = await upload(api, [("a.csv", data)])
    assert status == 200, again
    assert again["sop_instance_uid"] == first["sop_instance_uid"]
    assert await api.pool.fetchval("select count(*) from instance") == 1
    assert await api.pool.fetchval("select count(*) from ecg_original") == 1
    assert await api.pool.fetchval("select count(*) from study where ready_at is not null") == 1


async def test_a_bad_file_is_refused_with_the_problem_named_and_nothing_stored(api: Api) -> None:
    data = (FORMATS / "scp_ecg/ecgtoolkit_Example.scp").read_bytes()
    status, body = await upload(api, [("cut.scp", data[: len(data) // 2])])
    assert status == 400
    assert "无法读取心电图文件" in body["detail"]
    status, body = await upload(api, [("x.csv", csv_of()), ("y.csv", csv_of())])
    assert status == 400
    assert "WFDB" in body["detail"]
    # a form whose part headers are malformed: refused, not a server error
    broken = await api.client.post(
        "/api/v1/ecg",
        data=b'--b\r\nContent-Disposition: form-data; name="\x13\x06"\r\n\r\nx\r\n--b--\r\n',
        headers={**api.auth("xlwd.clinic"), "Content-Type": "multipart/form-data; boundary=b"},
    )
    assert broken.status == 400
    assert "无法读取请求正文" in (await broken.json())["detail"]
    assert await api.pool.fetchval("select count(*) from instance") == 0


async def test_a_stemi_upload_is_routed_urgent_with_the_ten_minute_deadline(api: Api) -> None:
    status, body = await upload(api, [("stemi.csv", csv_of(STEMI_ST_UV))], user="mjlw.clinic")
    assert status == 201, body
    routine_status, routine = await upload(api, [("n.csv", csv_of())], user="mjlw.clinic")
    assert routine_status == 201
    await sweep(api)
    case = await ecg_case(api, body["study_instance_uid"])
    assert case["pool"] == "HB-COUNTY"  # 马集 has no township ECG reading: the county
    assert (case["priority"], case["stemi"]) == ("high", True)
    assert case["deadline"] - case["created_at"] <= timedelta(minutes=10)
    calm = await ecg_case(api, routine["study_instance_uid"])
    assert (calm["priority"], calm["stemi"]) == ("medium", False)
    listed = await get_json(api, "li.ecg", "/api/v1/worklist")
    assert listed["cases"][0]["study_instance_uid"] == body["study_instance_uid"]
    view = await get_json(api, "li.ecg", f"/api/v1/ecg/{body['sop_instance_uid']}")
    assert view["suspected_stemi"] is True
    assert "ST_ELEVATION_STEMI_CRITERIA" in {s["code"].upper() for s in view["statements"]}


def c_store(port: int, calling_ae: str, ds: pydicom.Dataset) -> int:
    """Send one ECG waveform as a cart would (pynetdicom SCU); the C-STORE status."""
    ae = AE(ae_title=calling_ae)
    ae.add_requested_context(ds.SOPClassUID, ExplicitVRLittleEndian)
    assoc = ae.associate("127.0.0.1", port, ae_title="TELEMED")
    assert assoc.is_established
    try:
        return int(assoc.send_c_store(ds).Status)
    finally:
        assoc.release()


def stemi_waveform(patient_id: str) -> pydicom.Dataset:
    data = to_dicom_waveform(
        synthetic_record(st_uv=STEMI_ST_UV),
        patient_id=patient_id,
        patient_name="张^三",
        fallback_acquired_at=datetime.now(UTC),
    )
    return pydicom.dcmread(io.BytesIO(data))


async def test_a_stemi_sent_by_c_store_raises_its_routed_case(api: Api) -> None:
    ds = stemi_waveform("LW-C1")
    result = await asyncio.to_thread(c_store, api.app[DICOM].port, "HBMJLW01", ds)
    assert result == 0
    # routed before the worker analyzed it: a routine case first
    assert await route_all(api) == 1
    case = await ecg_case(api, ds.StudyInstanceUID)
    assert (case["priority"], case["stemi"]) == ("medium", False)
    await sweep(api)
    raised = await ecg_case(api, ds.StudyInstanceUID)
    assert (raised["priority"], raised["stemi"]) == ("high", True)
    assert raised["deadline"] <= case["deadline"]
    events = await api.pool.fetchval(
        "select count(*) from event where kind = 'stemi_suspected' and case_id = $1", case["id"]
    )
    assert events == 1


async def test_a_stemi_sent_by_stow_rs_is_analyzed_and_routed_at_the_stemi_priority(
    api: Api,
) -> None:
    ds = stemi_waveform("WD-S1")
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    assert (await stow(api, multipart(buffer.getvalue()))).status == 200
    await sweep(api)
    case = await ecg_case(api, ds.StudyInstanceUID)
    assert (case["priority"], case["stemi"], case["pool"]) == ("high", True, "HB-XL")
    assert case["deadline"] - case["created_at"] <= timedelta(minutes=10)


async def test_a_flat_waveform_is_analyzed_as_lead_off_and_still_routed(api: Api) -> None:
    ds = stemi_waveform("WD-F1")
    for group in ds.WaveformSequence:
        group.WaveformData = bytes(len(group.WaveformData))  # every lead flat: lead off
    await store(api, "HB-XL-WD", [_part10(ds)])
    await sweep(api)
    assert await ecg_case(api, ds.StudyInstanceUID) is not None
    row = await api.pool.fetchrow("select result::text, error, suspected_stemi from ecg_analysis")
    assert row is not None
    assert row["suspected_stemi"] is False
    assert "lead" in (row["error"] or row["result"]).lower()


def _part10(ds: pydicom.Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


async def test_the_ecg_routes_are_described_and_guarded_by_role(api: Api) -> None:
    spec = await (await api.client.get("/api/v1/openapi.json")).json()
    for path in ("/api/v1/ecg", "/api/v1/ecg/{sop}", "/api/v1/ecg/{sop}/sheet.png"):
        assert path in spec["paths"], path
    assert "patch" in spec["paths"]["/api/v1/ecg/{sop}"]
    status, body = await upload(api, [("n.csv", csv_of())], user="xl.ecg")
    assert status == 403, body  # readers do not send ECGs
    status, body = await upload(api, [("n.csv", csv_of())])
    assert status == 201
    await sweep(api)
    edit = await api.client.patch(
        f"/api/v1/ecg/{body['sop_instance_uid']}",
        json={"measurements": {"pr_ms": 150}},
        headers=api.auth("xlwd.clinic"),
    )
    assert edit.status == 403  # the clinic sees its ECG, only readers change it
    assert (await get_json(api, "xlwd.clinic", f"/api/v1/ecg/{body['sop_instance_uid']}"))[
        "edits"
    ] == []


async def test_the_sheet_is_drawn_filtered_as_asked_and_a_bad_choice_is_refused(api: Api) -> None:
    # the village cart's ECG with strong mains hum
    path = FORMATS / "contec_ecg90a/0000037.ECG"
    status, body = await upload(api, [(path.name, path.read_bytes())])
    assert status == 201, body
    await sweep(api)
    sheet = f"/api/v1/ecg/{body['sop_instance_uid']}/sheet.png"
    drawn = {}
    for choice in ("", "?filter=diagnostic", "?filter=muscle", "?filter=none"):
        response = await api.client.get(sheet + choice, headers=api.auth("xl.ecg"))
        assert response.status == 200, await response.text()
        assert response.content_type == "image/png"
        drawn[choice] = await response.read()
    assert drawn[""] == drawn["?filter=diagnostic"]  # the default
    assert len({drawn["?filter=diagnostic"], drawn["?filter=muscle"], drawn["?filter=none"]}) == 3
    bad = await api.client.get(sheet + "?filter=strong", headers=api.auth("xl.ecg"))
    assert bad.status == 400
    assert bad.content_type == "application/problem+json"
    assert "diagnostic, muscle, none" in (await bad.json())["detail"]


async def test_a_paced_ecg_is_read_as_paced_and_its_stimuli_are_marked_on_the_sheet(
    api: Api,
) -> None:
    import cv2
    import numpy as np

    from ecg.render import PACER_MARK_BGR

    path = FORMATS / "ge_muse_xml/braveheart_example4.xml"
    status, body = await upload(api, [(path.name, path.read_bytes())])
    assert status == 201, body
    await sweep(api)
    view = await get_json(api, "xl.ecg", f"/api/v1/ecg/{body['sop_instance_uid']}")
    assert [s["code"] for s in view["statements"]] == ["VENTRICULAR_PACED_RHYTHM"]
    for choice in ("diagnostic", "muscle"):  # the 40 Hz filter takes the spikes off the trace
        sheet = await api.client.get(
            f"/api/v1/ecg/{body['sop_instance_uid']}/sheet.png?filter={choice}",
            headers=api.auth("xl.ecg"),
        )
        assert sheet.status == 200
        image = cv2.imdecode(np.frombuffer(await sheet.read(), np.uint8), cv2.IMREAD_COLOR)
        assert image is not None
        marked = np.abs(image.astype(int) - np.array(PACER_MARK_BGR)).sum(axis=2) < 60
        columns = np.flatnonzero(marked.any(axis=0))
        runs = 1 + int(np.sum(np.diff(columns) > 3)) if columns.size else 0
        assert runs >= 10, choice  # ten stimuli on the rhythm strip alone
