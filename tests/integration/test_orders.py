"""Exam orders end to end with real peers: a clinic registers an order over the API; its
workstation finds it in the Modality Worklist (dcmtk findscu -W and pynetdicom, in UTF-8 and
GB18030), performs it (MPPS N-CREATE / N-SET), sends the images (C-STORE) and asks for
storage commitment; the study is linked to the order, routed with its urgency and question
as soon as it is whole, and another facility's workstation sees none of it."""

from __future__ import annotations

import asyncio
import io
import threading
import time
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from typing import Any

import aiohttp
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import generate_uid
from pynetdicom import AE, evt
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    CTImageStorage,
    ModalityPerformedProcedureStep,
    ModalityWorklistInformationFind,
    StorageCommitmentPushModel,
)

from teleradiology.roles import DICOM
from tests.factory import make_study
from tests.integration.conftest import Api, local_settings, serving
from tests.integration.dicomweb_support import route_all, workstation_node
from tests.integration.test_dimse_qr import add_viewer, free_port

pytestmark = pytest.mark.dcmtk

CLINIC = "xlwd.clinic"  # 王店村卫生室, HB-XL-WD
WORKSTATION = "HBXLWD01"
OTHER_WORKSTATION = "HBMJLW01"  # 李湾村, another village


def today() -> str:
    """Today's date as DICOM writes it, when asked: a run that crosses midnight registers
    its orders for the new day."""
    return date.today().strftime("%Y%m%d")


def order_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "patient_id": "WD-1001",
        "patient_name": "张^三丰",
        "patient_sex": "M",
        "patient_birth_date": "1958-03-12",
        "modality": "CT",
        "station_ae": WORKSTATION,
        "procedure_description": "胸部平扫",
        "urgency": "urgent",
        "clinical_question": "咳嗽两周，排除肺炎",
        "history": "吸烟三十年",
        "scheduled_date": date.today().isoformat(),
        "scheduled_time": "09:30:00",
    }
    body.update(changes)
    return body


async def register(api: Api, user: str = CLINIC, **changes: Any) -> dict[str, Any]:
    response = await api.client.post(
        "/api/v1/orders", json=order_body(**changes), headers=api.auth(user)
    )
    body = await response.json()
    assert response.status == 201, body
    return dict(body)


def associate(port: int, calling: str, *contexts: str, handlers: list[Any] | None = None) -> Any:
    ae = AE(ae_title=calling)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 30
    for context in contexts:
        ae.add_requested_context(context)
    return ae.associate("127.0.0.1", port, ae_title="TELEMED", evt_handlers=handlers or [])


def mwl_query(charset: str = "ISO_IR 192", **keys: Any) -> Dataset:
    ds = Dataset()
    ds.SpecificCharacterSet = charset
    ds.PatientName = keys.get("PatientName", "")
    ds.PatientID = keys.get("PatientID", "")
    ds.AccessionNumber = keys.get("AccessionNumber", "")
    ds.StudyInstanceUID = ""
    ds.RequestedProcedureID = ""
    ds.RequestedProcedurePriority = ""
    ds.ReasonForTheRequestedProcedure = ""
    step = Dataset()
    step.Modality = keys.get("Modality", "")
    step.ScheduledStationAETitle = keys.get("ScheduledStationAETitle", "")
    step.ScheduledProcedureStepStartDate = keys.get("ScheduledProcedureStepStartDate", "")
    step.ScheduledProcedureStepStartTime = keys.get("ScheduledProcedureStepStartTime", "")
    step.ScheduledProcedureStepID = ""
    ds.ScheduledProcedureStepSequence = Sequence([step])
    return ds


def find(port: int, calling: str, query: Dataset) -> tuple[list[Dataset], int]:
    """The matches of a worklist query and the final status."""
    assoc = associate(port, calling, ModalityWorklistInformationFind)
    assert assoc.is_established
    found, final = [], -1
    try:
        for status, identifier in assoc.send_c_find(query, ModalityWorklistInformationFind):
            if status.Status == 0xFF00:
                found.append(identifier)
            else:
                final = int(status.Status)
    finally:
        assoc.release()
    return found, final


async def run(*args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    async with asyncio.timeout(60):
        out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode(errors="replace")


# --- orders over the API -------------------------------------------------------------------------


async def test_a_clinic_registers_lists_and_cancels_its_orders(api: Api) -> None:
    first = await register(api)
    second = await register(api, patient_id="WD-1002", urgency="routine")
    assert first["accession_number"] != second["accession_number"]
    assert first["accession_number"].startswith(date.today().strftime("%Y%m%d"))
    assert len(first["accession_number"]) <= 16
    assert first["status"] == "scheduled"
    assert first["urgency"] == "urgent"
    listed = await api.client.get(
        "/api/v1/orders", params={"status": "scheduled"}, headers=api.auth(CLINIC)
    )
    assert {o["id"] for o in (await listed.json())["orders"]} == {first["id"], second["id"]}
    canceled = await api.client.patch(
        f"/api/v1/orders/{second['id']}", json={"status": "canceled"}, headers=api.auth(CLINIC)
    )
    assert (await canceled.json())["status"] == "canceled"
    again = await api.client.patch(
        f"/api/v1/orders/{second['id']}", json={"status": "canceled"}, headers=api.auth(CLINIC)
    )
    assert again.status == 409
    # Another village's clinic sees nothing of it, and cannot cancel it.
    other = await api.client.get(f"/api/v1/orders/{first['id']}", headers=api.auth("mjlw.clinic"))
    assert other.status == 404
    tomorrow = await register(api, patient_id="WD-1009", scheduled_date="2099-01-01")
    day = {"from": date.today().isoformat(), "until": date.today().isoformat()}
    of_today = await api.client.get("/api/v1/orders", params=day, headers=api.auth(CLINIC))
    assert tomorrow["id"] not in {o["id"] for o in (await of_today.json())["orders"]}
    backwards = await api.client.get(
        "/api/v1/orders", params={"from": "2026-12-09", "until": "2026-12-01"},
        headers=api.auth(CLINIC),
    )  # fmt: skip
    assert backwards.status == 400
    others = await api.client.get("/api/v1/orders", headers=api.auth("mjlw.clinic"))
    assert (await others.json())["orders"] == []
    # Readers do not register orders.
    reader = await api.client.post(
        "/api/v1/orders", json=order_body(), headers=api.auth("wang.reader")
    )
    assert reader.status == 403
    audited = await api.pool.fetchval(
        "select count(*) from audit where object_type = 'order' and action = 'read' "
        "or (object_type = 'order' and action = 'list')"
    )
    assert audited >= 1


async def test_bad_orders_are_refused_with_what_to_fix(api: Api) -> None:
    for changes, word in (
        ({"modality": "XX"}, "modality"),
        ({"patient_name": "张*"}, "patient_name"),
        ({"patient_sex": "X"}, "patient_sex"),
        ({"station_ae": "A" * 17}, "station_ae"),
        ({"scheduled_date": "2026-13-01"}, "scheduled_date"),
    ):
        response = await api.client.post(
            "/api/v1/orders", json=order_body(**changes), headers=api.auth(CLINIC)
        )
        assert response.status == 400, changes
        assert word in (await response.text())
    listed = await api.client.get("/api/v1/orders", headers=api.auth(CLINIC))
    assert (await listed.json())["orders"] == []


# --- the Modality Worklist ---------------------------------------------------------------------


async def test_the_worklist_answers_the_calling_facility_only_in_the_charset_asked(
    api: Api,
) -> None:
    order = await register(api)
    await register(api, patient_id="WD-1003", patient_name="李^四", modality="DX")
    await register(api, user="mjlw.clinic", patient_id="LW-1", patient_name="张^三")
    port = api.app[DICOM].port
    found, final = await asyncio.to_thread(
        find, port, WORKSTATION, mwl_query(PatientName="张*", Modality="CT")
    )
    assert final == 0
    (answer,) = found
    assert str(answer.PatientName) == "张^三丰"
    assert answer.AccessionNumber == order["accession_number"]
    assert answer.StudyInstanceUID == order["study_instance_uid"]
    assert answer.RequestedProcedurePriority == "STAT"
    assert answer.ScheduledProcedureStepSequence[0].ScheduledStationAETitle == WORKSTATION
    # In GB18030 when asked: the name's bytes on the wire are GB18030's.
    gb, _ = await asyncio.to_thread(
        find, port, WORKSTATION, mwl_query("GB18030", PatientName="张^三*")
    )
    # Decoded as GB18030 into the right name: the bytes were GB18030's.
    assert gb[0].SpecificCharacterSet == "GB18030"
    assert str(gb[0].PatientName) == "张^三丰"
    # A name with an alphabetic and an ideographic group matches by the ideographic one.
    grouped, _ = await asyncio.to_thread(
        find, port, WORKSTATION, mwl_query(PatientName="ZHANG*=张*=")
    )
    assert [a.AccessionNumber for a in grouped] == [order["accession_number"]]
    # Date ranges and exact keys.
    none, _ = await asyncio.to_thread(
        find, port, WORKSTATION, mwl_query(ScheduledProcedureStepStartDate="19990101-19991231")
    )
    assert none == []
    both, _ = await asyncio.to_thread(
        find, port, WORKSTATION, mwl_query(ScheduledProcedureStepStartDate=f"{today()}-")
    )
    assert len(both) == 2
    # 李湾村's workstation sees its own order only, never 王店村's.
    theirs, _ = await asyncio.to_thread(find, port, OTHER_WORKSTATION, mwl_query(PatientName="张*"))
    assert [str(a.PatientName) for a in theirs] == ["张^三"]
    # A malformed date range is refused, naming the key.
    bad, final = await asyncio.to_thread(
        find, port, WORKSTATION, mwl_query(ScheduledProcedureStepStartDate="2026-1-1")
    )
    assert bad == []
    assert final == 0xA900
    # A canceled order leaves the worklist.
    await api.client.patch(
        f"/api/v1/orders/{order['id']}", json={"status": "canceled"}, headers=api.auth(CLINIC)
    )
    gone, _ = await asyncio.to_thread(find, port, WORKSTATION, mwl_query(PatientID="WD-1001"))
    assert gone == []
    audited = await api.pool.fetchval(
        "select count(*) from audit where object_type = 'worklist' and action = 'c-find'"
    )
    assert audited >= 5


async def test_the_worklist_matches_the_scheduled_time_with_the_date(api: Api) -> None:
    morning = await register(api, scheduled_time="09:30:00")
    afternoon = await register(api, patient_id="WD-1004", scheduled_time="14:00:00")
    untimed = await register(api, patient_id="WD-1005", scheduled_time=None)
    port = api.app[DICOM].port

    async def accessions(dates: str, times: str) -> set[str]:
        query = mwl_query(
            ScheduledProcedureStepStartDate=dates, ScheduledProcedureStepStartTime=times
        )
        found, final = await asyncio.to_thread(find, port, WORKSTATION, query)
        assert final == 0
        return {a.AccessionNumber for a in found}

    timed = {morning["accession_number"], afternoon["accession_number"]}
    no_time = untimed["accession_number"]
    assert await accessions(today(), "0800-1200") == {morning["accession_number"], no_time}
    assert await accessions("", "1300-") == {afternoon["accession_number"], no_time}
    # one range across days: from 10:00 today on takes in the afternoon, not the morning
    assert await accessions(f"{today()}-", "1000-") == {afternoon["accession_number"], no_time}
    assert await accessions(today(), "") == timed | {no_time}
    # an upper end names the whole minute: 09:30 is in "-0930"
    assert morning["accession_number"] in await accessions("", "-0930")


async def test_findscu_worklist_in_utf8(api: Api, tmp_path: Path) -> None:
    order = await register(api)
    out = tmp_path / "found"
    out.mkdir()
    code, log = await run(
        "findscu", "-W", "-aet", WORKSTATION, "-aec", "TELEMED", "-X", "-od", str(out),
        "127.0.0.1", str(api.app[DICOM].port),
        "-k", "SpecificCharacterSet=ISO_IR 192",
        "-k", "PatientName=张*",
        "-k", "PatientID",
        "-k", "AccessionNumber",
        "-k", "StudyInstanceUID",
        "-k", "ScheduledProcedureStepSequence[0].Modality=CT",
        "-k", f"ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate={today()}",
        "-k", "ScheduledProcedureStepSequence[0].ScheduledStationAETitle",
    )  # fmt: skip
    assert code == 0, log
    (path,) = sorted(out.iterdir())
    answer = pydicom.dcmread(path)
    assert str(answer.PatientName) == "张^三丰"
    assert answer.AccessionNumber == order["accession_number"]
    # An AE title no facility has cannot even associate.
    code, log = await run(
        "findscu", "-W", "-aet", "STRANGER", "-aec", "TELEMED", "127.0.0.1",
        str(api.app[DICOM].port), "-k", "PatientName=*",
    )  # fmt: skip
    assert code != 0 or "reject" in log.lower()


# --- MPPS, C-STORE, linking and routing --------------------------------------------------------


def study_of(order: dict[str, Any], count: int = 2) -> list[Dataset]:
    """The images a modality makes for the order (with the patient's name typed wrong)."""
    files = make_study(
        count=count, patient_id="WD-1001", patient_name="张^三风",
        study_uid=order["study_instance_uid"],
    )  # fmt: skip
    out: list[Dataset] = []
    for data in files:
        ds = pydicom.dcmread(io.BytesIO(data))
        ds.AccessionNumber = order["accession_number"]
        out.append(ds)
    return out


def mpps_create(order: dict[str, Any]) -> Dataset:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    item = Dataset()
    item.StudyInstanceUID = order["study_instance_uid"]
    item.AccessionNumber = order["accession_number"]
    item.RequestedProcedureID = order["requested_procedure_id"]
    item.ScheduledProcedureStepID = order["scheduled_procedure_step_id"]
    ds.ScheduledStepAttributesSequence = Sequence([item])
    ds.PatientName = "张^三丰"
    ds.PatientID = "WD-1001"
    ds.PerformedProcedureStepID = "PPS1"
    ds.PerformedStationAETitle = WORKSTATION
    ds.PerformedProcedureStepStartDate = today()
    ds.PerformedProcedureStepStartTime = "093000"
    ds.PerformedProcedureStepStatus = "IN PROGRESS"
    ds.Modality = "CT"
    ds.PerformedSeriesSequence = Sequence()
    return ds


def mpps_completed(images: list[Dataset]) -> Dataset:
    ds = Dataset()
    ds.PerformedProcedureStepStatus = "COMPLETED"
    ds.PerformedProcedureStepEndDate = today()
    ds.PerformedProcedureStepEndTime = "094000"
    series = Dataset()
    series.SeriesInstanceUID = images[0].SeriesInstanceUID
    series.ReferencedImageSequence = Sequence()
    for image in images:
        ref = Dataset()
        ref.ReferencedSOPClassUID = image.SOPClassUID
        ref.ReferencedSOPInstanceUID = image.SOPInstanceUID
        series.ReferencedImageSequence.append(ref)
    ds.PerformedSeriesSequence = Sequence([series])
    return ds


def mpps_discontinued(code: str, meaning: str) -> Dataset:
    ds = Dataset()
    ds.PerformedProcedureStepStatus = "DISCONTINUED"
    reason = Dataset()
    reason.CodeValue = code
    reason.CodingSchemeDesignator = "DCM"
    reason.CodeMeaning = meaning
    ds.PerformedProcedureStepDiscontinuationReasonCodeSequence = Sequence([reason])
    return ds


def mpps(port: int, calling: str, *steps: tuple[str, str, Dataset]) -> list[int]:
    """N-CREATE / N-SET requests on one association; their statuses."""
    assoc = associate(port, calling, ModalityPerformedProcedureStep)
    assert assoc.is_established
    statuses = []
    try:
        for kind, uid, ds in steps:
            if kind == "create":
                status, _ = assoc.send_n_create(ds, ModalityPerformedProcedureStep, uid)
            else:
                status, _ = assoc.send_n_set(ds, ModalityPerformedProcedureStep, uid)
            statuses.append(int(status.Status))
    finally:
        assoc.release()
    return statuses


def c_store(port: int, calling: str, images: list[Dataset]) -> list[int]:
    assoc = associate(port, calling, CTImageStorage)
    assert assoc.is_established
    try:
        return [int(assoc.send_c_store(image).Status) for image in images]
    finally:
        assoc.release()


@pytest.fixture
async def worker_api(database_url: str, tmp_path: Path) -> AsyncIterator[Api]:
    """The service with its worker running, with default settings (stable age 60 s)."""
    async with serving(local_settings(database_url, tmp_path), run_worker=True) as served:
        yield served


async def case_of(api: Api, study_uid: str, *, within_s: float) -> Any:
    """The study's case, waited for up to ``within_s``; None when there is none by then."""
    deadline = time.monotonic() + within_s
    while True:
        row = await api.pool.fetchrow(
            "select c.id, c.priority, st.clinical_question from reading_case c "
            "join study st on st.id = c.study_id where st.study_instance_uid = $1",
            study_uid,
        )
        if row is not None or time.monotonic() > deadline:
            return row
        await asyncio.sleep(0.05)


async def test_mpps_completed_routes_the_study_within_two_seconds(worker_api: Api) -> None:
    api = worker_api
    order = await register(api)
    port = api.app[DICOM].port
    images = study_of(order)
    step = generate_uid()
    assert await asyncio.to_thread(mpps, port, WORKSTATION, ("create", step, mpps_create(order)))
    listed = await api.client.get(f"/api/v1/orders/{order['id']}", headers=api.auth(CLINIC))
    assert (await listed.json())["status"] == "in_progress"
    # The first image arrives, the step completes naming both: not whole yet.
    assert await asyncio.to_thread(c_store, port, WORKSTATION, images[:1]) == [0]
    assert await asyncio.to_thread(
        mpps, port, WORKSTATION, ("set", step, mpps_completed(images))
    ) == [0]
    assert await case_of(api, order["study_instance_uid"], within_s=1.0) is None
    # The last image arrives after the N-SET: the study is whole, routed within 2 s.
    started = time.monotonic()
    assert await asyncio.to_thread(c_store, port, WORKSTATION, images[1:]) == [0]
    case = await case_of(api, order["study_instance_uid"], within_s=2.0)
    took = time.monotonic() - started
    assert case is not None, "no case within 2 s of the study becoming whole"
    print(f"MPPS COMPLETED + last instance -> case in {took:.2f} s")
    # The case carries the order's urgency and clinical question.
    assert case["priority"] == "high"
    assert case["clinical_question"] == "咳嗽两周，排除肺炎\n病史: 吸烟三十年"
    linked = await api.client.get(f"/api/v1/orders/{order['id']}", headers=api.auth(CLINIC))
    body = await linked.json()
    assert body["status"] == "completed"
    assert body["study_linked"]
    # A closed step may no longer be updated.
    assert await asyncio.to_thread(
        mpps, port, WORKSTATION, ("set", step, mpps_completed(images))
    ) == [0xA710]


async def test_mpps_refusals_and_discontinued(api: Api) -> None:
    order = await register(api)
    port = api.app[DICOM].port
    step = generate_uid()
    assert await asyncio.to_thread(
        mpps, port, WORKSTATION, ("create", step, mpps_create(order))
    ) == [0]
    # The same step again: duplicate.
    assert await asyncio.to_thread(
        mpps, port, WORKSTATION, ("create", step, mpps_create(order))
    ) == [0x0111]
    # Another facility's workstation cannot touch it (no such object: it learns nothing).
    discontinue = mpps_discontinued("110514", "Incorrect worklist entry selected")
    assert await asyncio.to_thread(mpps, port, OTHER_WORKSTATION, ("set", step, discontinue)) == [
        0x0112
    ]
    # A malformed N-SET (a status that does not exist) changes nothing.
    malformed = Dataset()
    malformed.PerformedProcedureStepStatus = "FINISHED"
    assert await asyncio.to_thread(mpps, port, WORKSTATION, ("set", step, malformed)) == [0x0106]
    # An N-CREATE that is not IN PROGRESS is refused.
    bad = mpps_create(order)
    bad.PerformedProcedureStepStatus = "COMPLETED"
    assert await asyncio.to_thread(mpps, port, WORKSTATION, ("create", generate_uid(), bad)) == [
        0x0106
    ]
    # Discontinued, with its reason: recorded, the order too.
    assert await asyncio.to_thread(mpps, port, WORKSTATION, ("set", step, discontinue)) == [0]
    row = await api.pool.fetchrow(
        "select status, reason_code, reason_meaning from performed_step "
        "where sop_instance_uid = $1",
        step,
    )
    assert row is not None
    assert dict(row) == {
        "status": "discontinued",
        "reason_code": "110514",
        "reason_meaning": "Incorrect worklist entry selected",
    }
    listed = await api.client.get(f"/api/v1/orders/{order['id']}", headers=api.auth(CLINIC))
    assert (await listed.json())["status"] == "discontinued"


# --- storage commitment ------------------------------------------------------------------------


def commitment_request(images: list[Dataset], *missing: str) -> Dataset:
    ds = Dataset()
    ds.TransactionUID = generate_uid()
    ds.ReferencedSOPSequence = Sequence()
    for image in images:
        item = Dataset()
        item.ReferencedSOPClassUID = image.SOPClassUID
        item.ReferencedSOPInstanceUID = image.SOPInstanceUID
        ds.ReferencedSOPSequence.append(item)
    for uid in missing:
        item = Dataset()
        item.ReferencedSOPClassUID = CTImageStorage
        item.ReferencedSOPInstanceUID = uid
        ds.ReferencedSOPSequence.append(item)
    return ds


async def test_storage_commitment_on_the_same_association(api: Api) -> None:
    order = await register(api)
    port = api.app[DICOM].port
    images = study_of(order)
    assert await asyncio.to_thread(c_store, port, WORKSTATION, images) == [0, 0]
    reports: list[tuple[int, Dataset]] = []
    got = threading.Event()

    def on_report(event: evt.Event) -> tuple[int, None]:
        request: Any = event.request
        reports.append((int(request.EventTypeID), event.event_information))
        got.set()
        return 0, None

    def ask() -> int:
        assoc = associate(
            port, WORKSTATION, StorageCommitmentPushModel,
            handlers=[(evt.EVT_N_EVENT_REPORT, on_report)],
        )  # fmt: skip
        assert assoc.is_established
        try:
            status, _ = assoc.send_n_action(
                commitment_request(images, "1.2.3.4.5.6.7"),
                1,
                StorageCommitmentPushModel,
                "1.2.840.10008.1.20.1.1",
            )
            assert got.wait(10)
            return int(status.Status)
        finally:
            assoc.release()

    assert await asyncio.to_thread(ask) == 0
    ((event_type, info),) = reports
    assert event_type == 2  # some failed
    assert {i.ReferencedSOPInstanceUID for i in info.ReferencedSOPSequence} == {
        i.SOPInstanceUID for i in images
    }
    (failed,) = info.FailedSOPSequence
    assert failed.ReferencedSOPInstanceUID == "1.2.3.4.5.6.7"
    assert failed.FailureReason == 0x0112
    # Some failed: the study is not marked ready.
    ready = await api.pool.fetchval(
        "select ready_at from study where study_instance_uid = $1", order["study_instance_uid"]
    )
    assert ready is None


async def test_storage_commitment_reported_on_a_new_association(api: Api) -> None:
    order = await register(api)
    port = api.app[DICOM].port
    images = study_of(order)
    assert await asyncio.to_thread(c_store, port, WORKSTATION, images) == [0, 0]
    # The modality's node: where a new association finds it.
    their_port = free_port()
    await workstation_node(api, "HB-XL-WD", WORKSTATION, their_port)
    reports: list[tuple[int, Dataset, str]] = []
    got = threading.Event()

    def on_report(event: evt.Event) -> tuple[int, None]:
        request: Any = event.request
        reports.append(
            (
                int(request.EventTypeID),
                event.event_information,
                event.assoc.requestor.ae_title.strip(),
            )
        )
        got.set()
        return 0, None

    scp = AE(ae_title=WORKSTATION)
    scp.add_supported_context(StorageCommitmentPushModel)
    server: Any = scp.start_server(
        ("127.0.0.1", their_port), block=False, evt_handlers=[(evt.EVT_N_EVENT_REPORT, on_report)]
    )
    try:

        def ask_and_leave() -> int:
            assoc = associate(port, WORKSTATION, StorageCommitmentPushModel)
            assert assoc.is_established
            status, _ = assoc.send_n_action(
                commitment_request(images), 1, StorageCommitmentPushModel, "1.2.840.10008.1.20.1.1"
            )
            assoc.release()  # gone before the report: it comes on a new association
            return int(status.Status)

        assert await asyncio.to_thread(ask_and_leave) == 0
        assert await asyncio.to_thread(got.wait, 15)
    finally:
        server.shutdown()
    ((event_type, info, caller),) = reports
    assert event_type == 1
    assert caller == "TELEMED"
    assert "FailedSOPSequence" not in info
    assert len(info.ReferencedSOPSequence) == 2
    # All committed: the study is ready (routed at once by the worker).
    ready = await api.pool.fetchval(
        "select ready_at from study where study_instance_uid = $1", order["study_instance_uid"]
    )
    assert ready is not None


async def test_a_report_taken_on_the_same_association_is_not_sent_again(api: Api) -> None:
    """The modality has a node too: it gets one report, on the association it asked on."""
    order = await register(api)
    port = api.app[DICOM].port
    images = study_of(order)
    assert await asyncio.to_thread(c_store, port, WORKSTATION, images) == [0, 0]
    their_port = free_port()
    await workstation_node(api, "HB-XL-WD", WORKSTATION, their_port)
    on_same: list[int] = []
    on_new: list[int] = []
    got = threading.Event()

    def keep(into: list[int]) -> Any:
        def on_report(event: evt.Event) -> tuple[int, None]:
            request: Any = event.request
            into.append(int(request.EventTypeID))
            got.set()
            return 0, None

        return on_report

    scp = AE(ae_title=WORKSTATION)
    scp.add_supported_context(StorageCommitmentPushModel)
    server: Any = scp.start_server(
        ("127.0.0.1", their_port),
        block=False,
        evt_handlers=[(evt.EVT_N_EVENT_REPORT, keep(on_new))],
    )

    def ask_and_stay() -> int:
        assoc = associate(
            port, WORKSTATION, StorageCommitmentPushModel,
            handlers=[(evt.EVT_N_EVENT_REPORT, keep(on_same))],
        )  # fmt: skip
        assert assoc.is_established
        try:
            status, _ = assoc.send_n_action(
                commitment_request(images), 1, StorageCommitmentPushModel, "1.2.840.10008.1.20.1.1"
            )
            assert got.wait(10)
            time.sleep(0.2)  # the report's answer goes back before the release
            return int(status.Status)
        finally:
            assoc.release()

    try:
        assert await asyncio.to_thread(ask_and_stay) == 0
        await asyncio.sleep(1.0)  # time enough for a second report, were one sent
    finally:
        server.shutdown()
    assert on_same == [1]
    assert on_new == []


async def test_commitment_of_another_facilitys_instances_fails_them(api: Api) -> None:
    order = await register(api)
    port = api.app[DICOM].port
    images = study_of(order, count=1)
    assert await asyncio.to_thread(c_store, port, WORKSTATION, images) == [0]
    reports: list[Dataset] = []
    got = threading.Event()

    def on_report(event: evt.Event) -> tuple[int, None]:
        reports.append(event.event_information)
        got.set()
        return 0, None

    def ask() -> None:
        assoc = associate(
            port, OTHER_WORKSTATION, StorageCommitmentPushModel,
            handlers=[(evt.EVT_N_EVENT_REPORT, on_report)],
        )  # fmt: skip
        try:
            status, _ = assoc.send_n_action(
                commitment_request(images), 1, StorageCommitmentPushModel, "1.2.840.10008.1.20.1.1"
            )
            assert int(status.Status) == 0
            assert got.wait(10)
        finally:
            assoc.release()

    await asyncio.to_thread(ask)
    (info,) = reports
    assert "ReferencedSOPSequence" not in info
    assert info.FailedSOPSequence[0].FailureReason == 0x0112


async def test_an_ecg_upload_is_routed_at_once_not_at_the_sweep(
    database_url: str, tmp_path: Path
) -> None:
    """Any study marked ready (here by our own client's ECG upload) wakes the worker: with
    its sweep an hour away, the case is there once the ECG is analyzed."""
    from tests.integration.test_ecg_flow import csv_of

    settings = local_settings(database_url, tmp_path, sweep_interval_s=3600.0)
    async with serving(settings, run_worker=True) as api:
        await _upload_and_wait(api, csv_of())


async def _upload_and_wait(api: Api, ecg: bytes) -> None:
    form = aiohttp.FormData()
    form.add_field("patient_id", "WD-ECG")
    form.add_field("patient_name", "张^三丰")
    form.add_field("file", ecg, filename="e.csv", content_type="application/octet-stream")
    started = time.monotonic()
    response = await api.client.post("/api/v1/ecg", data=form, headers=api.auth(CLINIC))
    body = await response.json()
    assert response.status == 201, body
    stored = time.monotonic()
    case = await case_of(api, body["study_instance_uid"], within_s=20.0)
    assert case is not None
    done = time.monotonic()
    print(f"ECG upload {stored - started:.2f} s, then analyzed and routed in {done - stored:.2f} s")


async def test_only_a_facilitys_workstations_use_the_worklist_and_mpps(api: Api) -> None:
    order = await register(api)
    port = api.app[DICOM].port
    # A reader's desktop viewer may query studies, but it is no modality: refused.
    await add_viewer(api, port=free_port())
    found, final = await asyncio.to_thread(find, port, "WANGVIEW", mwl_query())
    assert found == []
    assert final == 0xC000
    assert await asyncio.to_thread(
        mpps, port, "WANGVIEW", ("create", generate_uid(), mpps_create(order))
    ) == [0x0124]

    def commit_as_viewer() -> int:
        assoc = associate(port, "WANGVIEW", StorageCommitmentPushModel)
        try:
            status, _ = assoc.send_n_action(
                commitment_request(study_of(order, 1)),
                1,
                StorageCommitmentPushModel,
                "1.2.840.10008.1.20.1.1",
            )
            return int(status.Status)
        finally:
            assoc.release()

    assert await asyncio.to_thread(commit_as_viewer) == 0x0124
    # An AE title nobody configured cannot associate at all.
    stranger = associate(port, "STRANGER", ModalityPerformedProcedureStep)
    assert not stranger.is_established
    assert stranger.is_rejected
    # Nothing was recorded for either.
    assert await api.pool.fetchval("select count(*) from performed_step") == 0


async def test_commitment_is_refused_for_what_is_not_stored_yet(api: Api) -> None:
    """Nothing is acknowledged before it is durable: a commitment asked before the C-STORE
    fails the instance; asked again once it is stored, it succeeds."""
    order = await register(api)
    port = api.app[DICOM].port
    images = study_of(order, count=1)
    reports: list[int] = []
    got = threading.Event()

    def on_report(event: evt.Event) -> tuple[int, None]:
        request: Any = event.request
        reports.append(int(request.EventTypeID))
        got.set()
        return 0, None

    def ask() -> None:
        got.clear()
        assoc = associate(
            port, WORKSTATION, StorageCommitmentPushModel,
            handlers=[(evt.EVT_N_EVENT_REPORT, on_report)],
        )  # fmt: skip
        try:
            assoc.send_n_action(
                commitment_request(images), 1, StorageCommitmentPushModel, "1.2.840.10008.1.20.1.1"
            )
            assert got.wait(10)
        finally:
            assoc.release()

    await asyncio.to_thread(ask)
    assert await asyncio.to_thread(c_store, port, WORKSTATION, images) == [0]
    await asyncio.to_thread(ask)
    assert reports == [2, 1]


async def test_a_study_is_linked_by_its_step_when_the_modality_made_its_own_uid(
    api: Api,
) -> None:
    """A modality that keeps its own Study Instance UID and no accession number: the MPPS
    naming the scheduled step links the study to the order all the same."""
    order = await register(api)
    port = api.app[DICOM].port
    own = dict(order, study_instance_uid=generate_uid(), accession_number="")
    images = study_of(own, count=1)
    create = mpps_create(order)
    create.ScheduledStepAttributesSequence[0].StudyInstanceUID = own["study_instance_uid"]
    create.ScheduledStepAttributesSequence[0].AccessionNumber = ""
    step = generate_uid()
    assert await asyncio.to_thread(mpps, port, WORKSTATION, ("create", step, create)) == [0]
    assert await asyncio.to_thread(c_store, port, WORKSTATION, images) == [0]
    await route_all(api)
    case = await case_of(api, own["study_instance_uid"], within_s=0)
    assert case is not None
    assert case["priority"] == "high"
    assert case["clinical_question"] == "咳嗽两周，排除肺炎\n病史: 吸烟三十年"
    linked = await api.client.get(f"/api/v1/orders/{order['id']}", headers=api.auth(CLINIC))
    assert (await linked.json())["study_linked"]


async def test_another_facilitys_study_is_not_linked_to_the_order(api: Api) -> None:
    """The same accession number from another village's workstation is not this order's."""
    order = await register(api)
    port = api.app[DICOM].port
    theirs = dict(order, study_instance_uid=generate_uid())
    assert await asyncio.to_thread(c_store, port, OTHER_WORKSTATION, study_of(theirs, 1)) == [0]
    await route_all(api)
    case = await case_of(api, theirs["study_instance_uid"], within_s=0)
    assert case is not None
    assert case["priority"] == "medium"
    assert case["clinical_question"] is None
    mine = await api.client.get(f"/api/v1/orders/{order['id']}", headers=api.auth(CLINIC))
    body = await mine.json()
    assert body["status"] == "scheduled"
    assert not body["study_linked"]
