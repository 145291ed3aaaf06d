"""Reports go home: the event log of a case's whole life, the printable PDF, the DICOM
copies on the clinic's own SCP (a real pynetdicom receiver, with retries), addenda,
double reading, templates, and the critical-result loop on a controllable clock."""

from __future__ import annotations

import asyncio
import io
import itertools
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pypdf
import pytest
from aiohttp import ClientResponse
from pydicom import config, dcmread
from pynetdicom import AE, evt
from pynetdicom.events import Event

from storage.records import Conclusion
from teleradiology.core.report_sr import BASIC_TEXT_SR, ENCAPSULATED_PDF
from teleradiology.core.words import word
from teleradiology.dimse.sender import report_sender
from teleradiology.http.context import OBJECTS
from teleradiology.services import delivery
from teleradiology.services.deadlines import watch_once
from tests.e2e.harness import free_port
from tests.factory import make_study
from tests.integration.conftest import Api
from tests.integration.dicomweb_support import route_all, store, workstation_node
from tests.integration.one_language import choose_english
from tests.integration.test_ecg_reading_page import session

DCIODVFY = Path(sys.executable).with_name("dciodvfy")
#: The report copies go out by C-STORE as the service's AE title.
SEND = report_sender("TELEMED")


class ClinicNode:
    """The clinic workstation's DICOM receiver: a pynetdicom storage SCP that keeps what
    it is sent as Part-10 files."""

    def __init__(self, folder: Path, port: int) -> None:
        self.folder, self.port = folder, port
        self.received: list[Path] = []
        self._lock = threading.Lock()
        self._server: Any = None

    def _store(self, event: Event) -> int:
        try:
            # the in-process DICOM listener switched pynetdicom (process-wide) to its
            # chunked mode: the data set arrives as a Part-10 file
            data = Path(event.dataset_path).read_bytes()
        except (AttributeError, TypeError):
            data = event.encoded_dataset()
        with self._lock:
            path = self.folder / f"{len(self.received):03d}.dcm"
            path.write_bytes(data)
            self.received.append(path)
        return 0x0000

    def start(self) -> None:
        ae = AE(ae_title="HBMJHZWS")
        ae.add_supported_context(ENCAPSULATED_PDF)
        ae.add_supported_context(BASIC_TEXT_SR)
        self._server = ae.start_server(
            ("127.0.0.1", self.port),
            block=False,
            evt_handlers=[(evt.EVT_C_STORE, self._store)],
        )

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server = None


@pytest.fixture
def clinic_node(tmp_path: Path) -> Iterator[ClinicNode]:
    folder = tmp_path / "clinic"
    folder.mkdir()
    node = ClinicNode(folder, free_port())
    try:
        yield node
    finally:
        node.stop()


async def _post(api: Api, user: str, path: str, body: object = None) -> ClientResponse:
    return await api.client.post(path, json=body, headers=api.auth(user))


async def _ok(api: Api, user: str, path: str, body: object = None) -> Any:
    response = await _post(api, user, path, body)
    answer = await response.json()
    assert response.status in (200, 201), (path, answer)
    return answer


async def _get(api: Api, user: str, path: str) -> Any:
    response = await api.client.get(path, headers=api.auth(user))
    assert response.status == 200, (path, await response.text())
    return await response.json()


async def _case_of(api: Api, uid: str) -> int:
    found: int = await api.pool.fetchval(
        "select c.id from reading_case c join study s on s.id = c.study_id "
        "where s.study_instance_uid = $1 order by c.id desc limit 1",
        uid,
    )
    return found


async def _routed(api: Api, code: str, patient_id: str) -> tuple[str, int]:
    uid = await store(api, code, make_study(modality="CR", count=1, patient_id=patient_id))
    await route_all(api)
    return uid, await _case_of(api, uid)


async def _deliver(api: Api, report_id: int) -> bool:
    return await delivery.deliver(api.pool, api.app[OBJECTS], report_id, send=SEND)


_FINDINGS = {"findings": "双肺纹理清晰。", "impression": "胸部正位片未见明显异常。"}


async def _delivered(api: Api, patient_id: str, conclusion: str) -> dict[str, Any]:
    """A village's CR study read by the county's reader, signed and delivered: the report."""
    _, case_id = await _routed(api, "HB-XL-WD", patient_id)
    await _ok(api, "wang.reader", f"/api/v1/cases/{case_id}/claim")
    final = await _ok(
        api,
        "wang.reader",
        f"/api/v1/cases/{case_id}/report",
        {**_FINDINGS, "conclusion": conclusion},
    )
    assert await _deliver(api, final["id"])
    return final


async def test_every_step_of_a_case_is_an_event_on_the_servers_utc_clock(api: Api) -> None:
    uid, case_id = await _routed(api, "HB-XL-WD", "EV-1")
    await _ok(api, "wang.reader", f"/api/v1/cases/{case_id}/claim")
    await _ok(api, "wang.reader", f"/api/v1/cases/{case_id}/release")
    await _ok(api, "wang.reader", f"/api/v1/cases/{case_id}/claim")
    await _ok(
        api,
        "wang.reader",
        f"/api/v1/cases/{case_id}/report",
        {**_FINDINGS, "conclusion": "abnormal", "status": "preliminary"},
    )
    await _ok(api, "wang.reader", f"/api/v1/cases/{case_id}/escalate", {"question": "请会诊"})
    await _ok(api, "zhao.city", f"/api/v1/cases/{case_id}/claim")
    final = await _ok(
        api, "zhao.city", f"/api/v1/cases/{case_id}/report", {**_FINDINGS, "conclusion": "normal"}
    )
    assert await _deliver(api, final["id"])
    await _ok(api, "xlwd.clinic", f"/api/v1/reports/{final['id']}/acknowledge")
    added = await _ok(
        api, "zhao.city", f"/api/v1/reports/{final['id']}/addendum", {"text": "补充：心影不大。"}
    )
    assert await _deliver(api, added["id"])

    view = await _get(api, "xlwd.clinic", f"/api/v1/cases/{case_id}")
    kinds = [e["kind"] for e in view["events"]]
    assert kinds == [
        "received",
        "complete",
        "routed",
        "claimed",
        "released",
        "claimed",
        "preliminary",
        "escalated",
        "claimed",
        "final",
        "delivered",
        "acknowledged",
        "addendum",
        "delivered",
    ]
    times = [e["at"] for e in view["events"]]
    assert all(t.endswith("Z") for t in times)
    assert times == sorted(times)
    stamped = await api.pool.fetch(
        "select at from event where case_id = $1 or study_id = $2",
        case_id,
        await api.pool.fetchval("select id from study where study_instance_uid = $1", uid),
    )
    db_now = await api.pool.fetchval("select now()")
    assert all(e["at"].utcoffset() == timedelta(0) for e in stamped)
    assert all(db_now - timedelta(minutes=5) < e["at"] <= db_now for e in stamped)

    # a study returned for poor quality: returned, and the clinic is told
    _, other = await _routed(api, "HB-XL-WD", "EV-2")
    await _ok(api, "wang.reader", f"/api/v1/cases/{other}/claim")
    await _ok(api, "wang.reader", f"/api/v1/cases/{other}/return", {"reason": "positioning"})
    view = await _get(api, "xlwd.clinic", f"/api/v1/cases/{other}")
    assert view["events"][-1]["kind"] == "returned"
    assert view["events"][-1]["detail"]["reason"] == "positioning"


async def test_the_report_reaches_the_clinics_own_scp_valid_and_retried_until_it_does(
    api: Api, clinic_node: ClinicNode
) -> None:
    await workstation_node(api, "HB-MJ-HZ", "HBMJHZWS", clinic_node.port)
    destination = {"ae_title": "HBMJHZWS"}
    response = await api.client.put(
        "/api/v1/admin/facilities/HB-MJ-HZ/report-destination",
        json=destination,
        headers=api.auth("hb.admin"),
    )
    assert response.status == 200
    uid, case_id = await _routed(api, "HB-MJ-HZ", "SCP-1")
    await _ok(api, "wang.reader", f"/api/v1/cases/{case_id}/claim")
    final = await _ok(
        api,
        "wang.reader",
        f"/api/v1/cases/{case_id}/report",
        {**_FINDINGS, "conclusion": "normal"},
    )

    # the clinic's receiver is down: the report is in the inbox, its DICOM copies wait
    assert await _deliver(api, final["id"])
    inbox = await _get(api, "mjhz.clinic", "/api/v1/reports")
    assert [r["id"] for r in inbox["reports"]] == [final["id"]]
    sends = await api.pool.fetch(
        "select status, attempts, last_error, next_attempt_at > now() as later "
        "from dicom_send where report_id = $1",
        final["id"],
    )
    assert [(s["status"], s["attempts"], s["later"]) for s in sends] == [("pending", 1, True)] * 2
    assert all("refused" in s["last_error"] for s in sends)
    assert clinic_node.received == []

    # the receiver comes up; at the next attempt both copies are taken
    clinic_node.start()
    await api.pool.execute("update dicom_send set next_attempt_at = now()")
    sent = await delivery.send_due(api.pool, api.app[OBJECTS], send=SEND)
    assert sent == 2
    record = await _get(api, "hb.admin", f"/api/v1/reports/{final['id']}/notifications")
    assert [(d["status"], d["attempts"]) for d in record["dicom"]] == [("sent", 2)] * 2
    assert await delivery.send_due(api.pool, api.app[OBJECTS], send=SEND) == 0

    by_class: dict[str, Path] = {}
    for path in clinic_node.received:
        config.settings.reading_validation_mode = config.RAISE
        try:
            ds = dcmread(path)
        finally:
            config.settings.reading_validation_mode = config.WARN
        assert ds.StudyInstanceUID == uid
        by_class[ds.SOPClassUID] = path
    assert set(by_class) == {ENCAPSULATED_PDF, BASIC_TEXT_SR}
    for path in by_class.values():
        check = await asyncio.to_thread(
            subprocess.run, [str(DCIODVFY), str(path)], capture_output=True, text=True
        )
        errors = [line for line in check.stderr.splitlines() if line.startswith("Error")]
        assert errors == [], check.stderr
        assert "Person Name" not in check.stderr  # the reader's name is a proper PN
    sr = dcmread(by_class[BASIC_TEXT_SR])
    texts = [item.TextValue for item in sr.ContentSequence if item.ValueType == "TEXT"]
    assert _FINDINGS["findings"] in texts
    assert sr.ConceptNameCodeSequence[0].CodeValue == "18748-4"
    assert sr.VerificationFlag == "VERIFIED"
    assert sr.VerifyingObserverSequence[0].VerifyingObserverName.family_name == "王医生"
    # the reader is the observer of the content, and the instances read are its evidence
    observer = [i for i in sr.ContentSequence if i.RelationshipType == "HAS OBS CONTEXT"]
    names = [i.PersonName.family_name for i in observer if i.ValueType == "PNAME"]
    assert names == ["王医生"]
    (evidence,) = sr.CurrentRequestedProcedureEvidenceSequence
    assert evidence.StudyInstanceUID == uid
    referenced = {
        ref.ReferencedSOPInstanceUID
        for series in evidence.ReferencedSeriesSequence
        for ref in series.ReferencedSOPSequence
    }
    stored = await api.pool.fetch(
        "select i.sop_instance_uid from instance i join series se on se.id = i.series_id "
        "join study st on st.id = se.study_id where st.study_instance_uid = $1",
        uid,
    )
    assert referenced == {r["sop_instance_uid"] for r in stored}
    assert referenced
    encapsulated = dcmread(by_class[ENCAPSULATED_PDF])
    assert bytes(encapsulated.EncapsulatedDocument).startswith(b"%PDF")
    assert encapsulated.PatientID == "SCP-1"


def test_retries_back_off_and_give_up_after_about_a_day() -> None:
    delays = [delivery.retry_delay(n) for n in range(1, delivery.MAX_ATTEMPTS + 1)]
    assert delays[0] == timedelta(seconds=5)
    assert all(
        a is not None and b is not None and a <= b for a, b in itertools.pairwise(delays[:-1])
    )
    assert delays[-1] is None
    assert timedelta(hours=20) < sum((d for d in delays if d), timedelta()) < timedelta(hours=30)


async def test_the_printable_report_has_the_letterhead_signature_and_time_in_chinese(
    api: Api,
) -> None:
    final = await _delivered(api, "PDF-1", "normal")
    response = await api.client.get(
        f"/api/v1/reports/{final['id']}/pdf", headers=api.auth("xlwd.clinic")
    )
    assert response.status == 200
    assert response.content_type == "application/pdf"
    reader = pypdf.PdfReader(io.BytesIO(await response.read()))
    text = "".join(reader.pages[0].extract_text().replace("\x00", "").split())
    assert text.startswith("淮滨县人民医院医学影像诊断报告")  # the reading hospital's letterhead
    assert "送检机构：淮滨县新里镇王店村卫生室" in text
    assert "报告医师：王医生" in text
    signed = datetime.fromisoformat(final["signed_at"]).astimezone(ZoneInfo("Asia/Shanghai"))
    assert f"签发时间：{signed:%Y-%m-%d%H:%M:%S}（北京时间）" in text
    assert final["signature_sha256"] in text
    assert _FINDINGS["findings"] in text
    resources: Any = reader.pages[0]["/Resources"]
    fonts = resources["/Font"]
    embedded = [fonts[name].get_object() for name in fonts]
    assert embedded
    for font in embedded:
        assert "NotoSansCJK" in font["/BaseFont"]
        descendant = font["/DescendantFonts"][0].get_object()
        descriptor = descendant["/FontDescriptor"].get_object()
        assert "/FontFile2" in descriptor or "/FontFile3" in descriptor
    # another clinic gets nothing
    other = await api.client.get(
        f"/api/v1/reports/{final['id']}/pdf", headers=api.auth("xlzz.clinic")
    )
    assert other.status == 404


def _page_text(data: bytes) -> str:
    return pypdf.PdfReader(io.BytesIO(data)).pages[0].extract_text().replace("\x00", "")


async def printed(api: Api, username: str, report_id: int) -> tuple[bytes, float]:
    """The report's PDF as the user downloads it, and how long it took (seconds)."""
    started = time.monotonic()
    response = await api.client.get(f"/api/v1/reports/{report_id}/pdf", headers=api.auth(username))
    assert response.status == 200
    assert response.content_type == "application/pdf"
    data = await response.read()
    return data, time.monotonic() - started


async def test_an_english_reader_prints_the_report_in_english_and_the_archive_stays_chinese(
    api: Api,
) -> None:
    final = await _delivered(api, "PDF-EN", "abnormal")
    await choose_english(api, "xlwd.clinic")
    english, took = await printed(api, "xlwd.clinic", final["id"])
    text = _page_text(english)
    for said in (
        "Medical imaging report",
        "Name: 王 小明",  # the patient's name as the clinic wrote it
        "Facility: 淮滨县新里镇王店村卫生室",
        "Conclusion: abnormal",
        "Reporting physician: 王医生",
        _FINDINGS["findings"],
    ):
        assert said in text, said
    assert "诊断报告" not in text
    assert "（北京时间）" not in text
    assert took < 5, f"an English report took {took:.1f} s"
    # the page's link gives the same, in the signed-in user's language
    page = await api.client.get(
        f"/reports/{final['id']}/pdf", headers=await session(api, "xlwd.clinic")
    )
    assert "Medical imaging report" in _page_text(await page.read())
    # what was delivered, kept and sent in DICOM stays in the network's language
    key = await api.pool.fetchval("select pdf_key from report where id = $1", final["id"])
    kept = await api.app[OBJECTS].get(key)
    assert kept != english
    flat = "".join(_page_text(kept).split())
    assert flat.startswith("淮滨县人民医院医学影像诊断报告")
    assert "结论：异常" in flat
    # a zh-CN reader prints the delivered one
    assert (await printed(api, "wang.reader", final["id"]))[0] == kept


async def test_the_inbox_the_pdf_and_the_sr_say_the_same_conclusion(api: Api) -> None:
    # the clinic's workstation is off: the DICOM copies are made and wait for it
    await workstation_node(api, "HB-MJ-HZ", "HBMJHZWS", free_port())
    destination = {"ae_title": "HBMJHZWS"}
    response = await api.client.put(
        "/api/v1/admin/facilities/HB-MJ-HZ/report-destination",
        json=destination,
        headers=api.auth("hb.admin"),
    )
    assert response.status == 200
    _, case_id = await _routed(api, "HB-MJ-HZ", "WORD-1")
    await _ok(api, "wang.reader", f"/api/v1/cases/{case_id}/claim")
    final = await _ok(
        api,
        "wang.reader",
        f"/api/v1/cases/{case_id}/report",
        {**_FINDINGS, "conclusion": "normal"},
    )
    assert await _deliver(api, final["id"])
    said = word(Conclusion.NORMAL)
    assert said == "未见异常"

    inbox = await api.client.get("/", headers=await session(api, "mjhz.clinic"))
    assert inbox.status == 200
    assert f">{said}</span>" in await inbox.text()
    response = await api.client.get(
        f"/api/v1/reports/{final['id']}/pdf", headers=api.auth("mjhz.clinic")
    )
    reader = pypdf.PdfReader(io.BytesIO(await response.read()))
    assert f"结论：{said}" in "".join(reader.pages[0].extract_text().replace("\x00", "").split())
    key = await api.pool.fetchval(
        "select object_key from dicom_send where report_id = $1 and sop_class_uid = $2",
        final["id"],
        BASIC_TEXT_SR,
    )
    sr = dcmread(io.BytesIO(await api.app[OBJECTS].get(key)))
    texts = {
        i.ConceptNameCodeSequence[0].CodeMeaning: i.TextValue
        for i in sr.ContentSequence
        if i.ValueType == "TEXT"
    }
    assert texts["Conclusion"] == said


async def test_an_addendum_is_a_new_version_and_the_clinic_is_told(api: Api) -> None:
    _, case_id = await _routed(api, "HB-XL-WD", "ADD-1")
    await _ok(api, "wang.reader", f"/api/v1/cases/{case_id}/claim")
    first = await _ok(
        api, "wang.reader", f"/api/v1/cases/{case_id}/report", {**_FINDINGS, "conclusion": "normal"}
    )
    assert await _deliver(api, first["id"])
    # only a final report takes an addendum, and only its readers may add one
    refused = await _post(
        api, "xlwd.clinic", f"/api/v1/reports/{first['id']}/addendum", {"text": "x"}
    )
    assert refused.status == 403
    added = await _ok(
        api,
        "wang.reader",
        f"/api/v1/reports/{first['id']}/addendum",
        {"text": "补充：左侧第5肋陈旧骨折。"},
    )
    assert (added["version"], added["amends_report_id"], added["status"]) == (
        2,
        first["id"],
        "final",
    )
    assert await _deliver(api, added["id"])
    view = await _get(api, "xlwd.clinic", f"/api/v1/cases/{case_id}")
    assert [(r["version"], r["findings"]) for r in view["reports"]] == [
        (1, _FINDINGS["findings"]),
        (2, "补充：左侧第5肋陈旧骨折。"),
    ]
    told = await api.pool.fetch(
        "select kind, audience, detail->>'version' as version from notification "
        "where report_id = $1",
        added["id"],
    )
    assert [(t["kind"], t["audience"], t["version"]) for t in told] == [("addendum", "clinic", "2")]
    inbox = await _get(api, "xlwd.clinic", "/api/v1/reports")
    assert [r["version"] for r in inbox["reports"]] == [2, 1]


async def test_only_the_reader_who_signed_a_report_adds_its_addendum(api: Api) -> None:
    _, case_id = await _routed(api, "HB-XL-WD", "ADD-2")
    await _ok(api, "wang.reader", f"/api/v1/cases/{case_id}/claim")
    first = await _ok(
        api, "wang.reader", f"/api/v1/cases/{case_id}/report", {**_FINDINGS, "conclusion": "normal"}
    )
    # another reader of the same pool sees the report but does not amend it
    other = await _post(
        api, "zhou.reader", f"/api/v1/reports/{first['id']}/addendum", {"text": "x"}
    )
    assert other.status == 403
    assert "由另一位阅片医生签发" in (await other.json())["detail"]
    added = await _ok(
        api, "wang.reader", f"/api/v1/reports/{first['id']}/addendum", {"text": "补充：无。"}
    )
    assert added["amends_report_id"] == first["id"]


async def test_a_second_read_is_a_second_work_item_for_another_reader(api: Api) -> None:
    _, case_id = await _routed(api, "HB-XL-WD", "DBL-1")
    await _ok(api, "wang.reader", f"/api/v1/cases/{case_id}/claim")
    await _ok(
        api, "wang.reader", f"/api/v1/cases/{case_id}/report", {**_FINDINGS, "conclusion": "normal"}
    )
    second = await _ok(api, "wang.reader", f"/api/v1/cases/{case_id}/second-read")
    assert second["id"] != case_id
    assert (second["second_read_of"], second["status"]) == (case_id, "scheduled")
    again = await _post(api, "wang.reader", f"/api/v1/cases/{case_id}/second-read")
    assert again.status == 409
    # the first reader may not read it again; another reader of the pool does
    own = await _post(api, "wang.reader", f"/api/v1/cases/{second['id']}/claim")
    assert own.status == 409
    assert (await _post(api, "wang.reader", "/api/v1/worklist/next")).status == 404
    taken = await _ok(api, "zhou.reader", "/api/v1/worklist/next")
    assert taken["id"] == second["id"]
    # the second reader's conclusion differs: the discrepancy is recorded against the first
    answer = await _ok(
        api,
        "zhou.reader",
        f"/api/v1/cases/{second['id']}/report",
        {**_FINDINGS, "conclusion": "abnormal"},
    )
    assert answer["agreed"] is False
    assert answer["discrepancy"]
    compared = await api.pool.fetchval(
        "select p.author_id = u.id from report r join report p on p.id = r.compared_report_id"
        " join app_user u on u.username = 'wang.reader' where r.id = $1",
        answer["id"],
    )
    assert compared is True
    items = await api.pool.fetch(
        "select c.id, c.status, r.author_id from reading_case c join report r on r.case_id = c.id "
        "where c.id = any($1::bigint[]) order by c.id",
        [case_id, second["id"]],
    )
    assert [i["status"] for i in items] == ["completed", "completed"]
    assert len({i["author_id"] for i in items}) == 2


async def test_templates_per_modality_in_chinese_edited_by_the_networks_administrator(
    api: Api,
) -> None:
    found = await _get(api, "wang.reader", "/api/v1/templates?specialty=radiology&modality=CR")
    assert [t["name"] for t in found["templates"]] == ["胸部正位片 正常"]
    template = found["templates"][0]
    assert template["language"] == "zh-CN"
    assert "肋膈角锐利" in template["findings"]
    ecg = await _get(api, "li.ecg", "/api/v1/templates?specialty=ecg")
    assert {t["modality"] for t in ecg["templates"]} == {"ECG"}
    assert any("危急值" in t["impression"] for t in ecg["templates"])
    edit = {"findings": "胸廓对称，双肺野清晰。", "impression": "心肺膈未见异常。"}
    refused = await api.client.put(
        f"/api/v1/templates/{template['id']}", json=edit, headers=api.auth("wang.reader")
    )
    assert refused.status == 403
    county = await api.client.put(  # the templates are shared: not a county's to change
        f"/api/v1/templates/{template['id']}", json=edit, headers=api.auth("hb.admin")
    )
    assert county.status == 403
    edited = await api.client.put(
        f"/api/v1/templates/{template['id']}", json=edit, headers=api.auth("xy.admin")
    )
    assert edited.status == 200
    found = await _get(api, "wang.reader", "/api/v1/templates?specialty=radiology&modality=CR")
    assert found["templates"][0]["findings"] == edit["findings"]
    # a report written from the template
    _, case_id = await _routed(api, "HB-XL-WD", "TPL-1")
    await _ok(api, "wang.reader", f"/api/v1/cases/{case_id}/claim")
    report = await _ok(
        api,
        "wang.reader",
        f"/api/v1/cases/{case_id}/report",
        {"template_id": template["id"], "conclusion": "normal", "status": "preliminary"},
    )
    assert (report["findings"], report["impression"]) == (edit["findings"], edit["impression"])


async def test_a_critical_result_unacknowledged_is_resent_and_the_duty_admin_alerted(
    api: Api,
) -> None:
    _, case_id = await _routed(api, "HB-XL-WD", "CRIT-1")
    await _ok(api, "wang.reader", f"/api/v1/cases/{case_id}/claim")
    critical = await _ok(
        api,
        "wang.reader",
        f"/api/v1/cases/{case_id}/report",
        {"findings": "右侧大量气胸。", "impression": "右侧张力性气胸。", "conclusion": "critical"},
    )
    assert await _deliver(api, critical["id"])
    delivered = datetime.fromisoformat(
        (await _get(api, "xlwd.clinic", f"/api/v1/reports/{critical['id']}"))["delivered_at"]
    )
    kinds = await api.pool.fetch(
        "select kind, audience from notification where report_id = $1", critical["id"]
    )
    assert [(k["kind"], k["audience"]) for k in kinds] == [("critical", "clinic")]  # at once

    assert (await watch_once(api.pool, now=delivered + timedelta(minutes=14))).critical_resent == 0
    at = delivered + timedelta(minutes=16)
    assert (await watch_once(api.pool, now=at)).critical_resent == 1
    assert (await watch_once(api.pool, now=at + timedelta(minutes=1))).critical_resent == 0
    on_duty = [
        r["id"]
        for r in await api.pool.fetch(
            "select u.id from app_user u join facility f on f.id = u.facility_id "
            "where u.role = 'admin' and f.code = 'HB-COUNTY' and on_duty(u.id, $1) order by u.id",
            at,
        )
    ]
    duty = await api.pool.fetchval("select id from app_user where username = 'hb.duty'")
    assert duty in on_duty
    alerts = await api.pool.fetch(
        "select user_id, audience, detail from notification "
        "where report_id = $1 and kind = 'critical_alert' order by user_id",
        critical["id"],
    )
    assert [a["user_id"] for a in alerts] == on_duty
    assert all(a["audience"] == "admin" for a in alerts)
    resent = await api.pool.fetchval(
        "select count(*) from notification where report_id = $1 and kind = 'critical'",
        critical["id"],
    )
    assert resent == 2
    # still nobody: re-sent again a window later
    assert (await watch_once(api.pool, now=at + timedelta(minutes=16))).critical_resent == 1

    # only a named person acknowledges it; then the loop is closed
    nameless = await _post(api, "xlwd.clinic", f"/api/v1/reports/{critical['id']}/acknowledge")
    assert nameless.status == 409
    assert "危急值" in (await nameless.json())["detail"]
    unread = await _post(
        api, "xlwd.clinic", f"/api/v1/reports/{critical['id']}/acknowledge", {"name": "王村医"}
    )
    assert unread.status == 409
    assert "复述" in (await unread.json())["detail"]
    acked = await _ok(
        api,
        "xlwd.clinic",
        f"/api/v1/reports/{critical['id']}/acknowledge",
        {"name": "王村医", "read_back": "右侧张力性气胸，危急值"},
    )
    assert acked["acknowledged_by_name"] == "王村医"
    assert acked["acknowledged_read_back"] == "右侧张力性气胸，危急值"
    assert (await watch_once(api.pool, now=at + timedelta(hours=2))).critical_resent == 0
    record = await _get(api, "hb.admin", f"/api/v1/reports/{critical['id']}/notifications")
    assert [n["kind"] for n in record["notifications"]].count("critical") == 3
    ack = await api.pool.fetchrow(
        "select e.user_id, e.detail->>'name' as name, u.username from event e "
        "join app_user u on u.id = e.user_id where e.report_id = $1 and e.kind = 'acknowledged'",
        critical["id"],
    )
    assert ack is not None
    assert (ack["username"], ack["name"]) == ("xlwd.clinic", "王村医")
    events = await api.pool.fetch(
        "select kind from event where report_id = $1 and kind like 'critical%' order by id",
        critical["id"],
    )
    assert [e["kind"] for e in events] == [
        "critical_resent",
        "critical_alert",
        "critical_resent",
        "critical_alert",
    ]
