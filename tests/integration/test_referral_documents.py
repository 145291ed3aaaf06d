"""Two-way referral with its documents, over the API on real PostgreSQL: a village clinic
refers a patient of its own (no reading case needed) up to the city with a CR study, an ECG
and a county report attached; the city sees exactly those results, answers, records the
arrival and returns the patient down; each step is an event told to the other facility, the
three documents print as zh-CN PDFs, and another clinic sees none of it. The statistics are
checked against a known set of referrals.
"""

from __future__ import annotations

import io
import re
from typing import Any

import pypdf

from teleradiology.dimse.sender import report_sender
from teleradiology.http.context import OBJECTS
from teleradiology.services import delivery
from tests.ecg_file import make_ecg
from tests.factory import make_study
from tests.integration.conftest import Api
from tests.integration.dicomweb_support import route_all, store
from tests.integration.one_language import choose_english
from tests.integration.test_web_pages import ARTIFACTS

PATIENT = "WD-R1"


async def call(api: Api, user: str, method: str, path: str, body: object = None) -> Any:
    response = await api.client.request(method, path, json=body, headers=api.auth(user))
    answer = await response.json() if response.content_type.endswith("json") else None
    return response.status, answer


async def ok(api: Api, user: str, method: str, path: str, body: object = None) -> Any:
    status, answer = await call(api, user, method, path, body)
    assert status in (200, 201), (path, answer)
    return answer


async def study_id(api: Api, uid: str) -> int:
    found: int = await api.pool.fetchval("select id from study where study_instance_uid = $1", uid)
    return found


async def patient_of(api: Api, code: str, patient_id: str) -> int:
    found: int = await api.pool.fetchval(
        "select p.id from patient p join facility f on f.id = p.issuer_facility_id "
        "where f.code = $1 and p.patient_id = $2",
        code,
        patient_id,
    )
    return found


async def county_report(api: Api, patient_id: str) -> int:
    """A CR of the patient read at the county and delivered home: the report's id."""
    uid = await store(
        api, "HB-XL-WD", make_study(modality="CR", count=1, patient_id=patient_id, size=16)
    )
    await route_all(api)
    case_id = await api.pool.fetchval(
        "select c.id from reading_case c join study s on s.id = c.study_id "
        "where s.study_instance_uid = $1",
        uid,
    )
    await ok(api, "wang.reader", "POST", f"/api/v1/cases/{case_id}/claim")
    report = await ok(
        api,
        "wang.reader",
        "POST",
        f"/api/v1/cases/{case_id}/report",
        {"findings": "右下肺片状影。", "impression": "右下肺炎。", "conclusion": "abnormal"},
    )
    assert await delivery.deliver(
        api.pool, api.app[OBJECTS], report["id"], send=report_sender("TELEMED")
    )
    report_id: int = report["id"]
    return report_id


async def sees_study(api: Api, user: str, uid: str, *, metadata: bool = True) -> bool:
    """Whether the user finds the study by QIDO-RS (and may read its metadata, the
    viewer's first request: its scope check is trusted for a few seconds, so it is asked
    only where the answer is not meant to change)."""
    headers = {**api.auth(user), "Accept": "application/dicom+json"}
    found = await api.client.get(f"/dicomweb/studies?StudyInstanceUID={uid}", headers=headers)
    listed = found.status == 200 and bool(await found.json())
    in_scope = await api.pool.fetchval(
        "select study_visible_to(u.id, s.id) from app_user u, study s "
        "where u.username = $1 and s.study_instance_uid = $2",
        user,
        uid,
    )
    assert listed == in_scope, (user, uid)
    if metadata:
        read = await api.client.get(f"/dicomweb/studies/{uid}/metadata", headers=headers)
        assert listed == (read.status == 200), (user, found.status, read.status)
    return listed


def pdf_text(data: bytes) -> str:
    """The PDF's text without spaces, as pypdf reads the subset CJK font."""
    pages = pypdf.PdfReader(io.BytesIO(data)).pages
    return "".join("".join(p.extract_text().replace("\x00", "").split()) for p in pages)


async def document(api: Api, user: str, referral: int, kind: str) -> tuple[int, bytes]:
    response = await api.client.get(
        f"/api/v1/referrals/{referral}/documents/{kind}", headers=api.auth(user)
    )
    return response.status, await response.read()


async def test_a_referral_goes_up_with_its_results_and_comes_back_down(api: Api) -> None:
    report_id = await county_report(api, PATIENT)
    film = await store(
        api, "HB-XL-WD", make_study(modality="DX", count=1, patient_id=PATIENT, size=16)
    )
    ecg = await store(api, "HB-XL-WD", [make_ecg(patient_id=PATIENT, patient_name="王^小明")])
    elsewhere = await store(
        api, "HB-XL-ZZ", make_study(modality="DX", count=1, patient_id="ZZ-1", size=16)
    )
    patient = await patient_of(api, "HB-XL-WD", PATIENT)
    # what the form may attach: the patient's studies (the ECG too) and the report
    results = await ok(api, "xlwd.clinic", "GET", f"/api/v1/patients/{patient}/referral-results")
    kinds = {(r["kind"], r["study_instance_uid"]) for r in results["results"]}
    assert {("study", film), ("ecg", ecg)} <= kinds
    assert any(r["report_id"] == report_id for r in results["results"])
    status, _ = await call(
        api, "xlzz.clinic", "GET", f"/api/v1/patients/{patient}/referral-results"
    )
    assert status == 404
    # before the referral the city's reader sees none of it
    assert not await sees_study(api, "zhao.city", film)
    status, _ = await call(api, "zhao.city", "GET", f"/api/v1/reports/{report_id}")
    assert status == 404
    form = {
        "patient_id": patient,
        "to": "XY-CITY",
        "urgency": "urgent",
        "reason": "疑似肺部占位，需增强CT及专科诊治",
        "preliminary_diagnosis": "右下肺占位性质待查",
        "history": "咳嗽两月，近一周痰中带血。吸烟三十年。",
        "findings": "右下肺呼吸音减低。",
        "studies": [await study_id(api, film), await study_id(api, ecg)],
        "reports": [report_id],
    }
    # another clinic's study is not this patient's: refused, nothing kept
    status, problem = await call(
        api,
        "xlwd.clinic",
        "POST",
        "/api/v1/referrals",
        {**form, "studies": [await study_id(api, elsewhere)]},
    )
    assert status == 404
    assert "不是您可查看的该患者的结果" in problem["detail"]
    status, _ = await call(api, "xlzz.clinic", "POST", "/api/v1/referrals", form)
    assert status == 404  # another clinic's patient
    assert await api.pool.fetchval("select count(*) from referral") == 0
    raised = await ok(api, "xlwd.clinic", "POST", "/api/v1/referrals", form)
    rid = raised["id"]
    assert (raised["status"], raised["case_id"], raised["from"]) == ("requested", None, "HB-XL-WD")

    # the city sees exactly what is attached; the county's other readers and clinics nothing
    assert await sees_study(api, "zhao.city", film)
    assert await sees_study(api, "zhao.city", ecg)
    assert not await sees_study(api, "zhao.city", elsewhere)
    assert not await sees_study(api, "gs.reader", film)
    assert (await ok(api, "zhao.city", "GET", f"/api/v1/reports/{report_id}"))["id"] == report_id
    detail = await ok(api, "zhao.city", "GET", f"/api/v1/referrals/{rid}")
    assert [a["kind"] for a in detail["attachments"]] == ["study", "ecg", "report"]
    assert detail["attachments"][0]["href"] == f"/viewer?StudyInstanceUIDs={film}"
    # the ECG opens as its sheet, the report as itself
    ecg_href = detail["attachments"][1]["href"]
    sheet = await api.client.get(f"{ecg_href}/sheet.png", headers=api.auth("zhao.city"))
    assert sheet.status == 200
    assert (await sheet.read()).startswith(b"\x89PNG")
    other_sheet = await api.client.get(f"{ecg_href}/sheet.png", headers=api.auth("gs.reader"))
    assert other_sheet.status == 404
    assert list(detail["documents"]) == ["form"]
    for other in ("xlzz.clinic", "gs.reader"):
        status, _ = await call(api, other, "GET", f"/api/v1/referrals/{rid}")
        assert status == 404
        assert (await document(api, other, rid, "form"))[0] == 404
        listed = await ok(api, other, "GET", "/api/v1/referrals")
        assert listed["referrals"] == []

    # the steps in order: no arrival before the answer, no return before the arrival
    arrive, back = f"/api/v1/referrals/{rid}/arrive", f"/api/v1/referrals/{rid}/return"
    summary = {
        "kind": "discharge",
        "diagnosis": "右下肺腺癌（T1bN0M0），行胸腔镜右下肺叶切除术，术后恢复良好。",
        "orders": "1. 定期复查胸部CT；2. 止咳化痰药物口服一周。",
        "follow_up": "术后一月、三月随访；如有发热、咯血及时就诊。",
    }
    assert (await call(api, "zhao.city", "POST", arrive, {}))[0] == 409
    assert (await call(api, "zhao.city", "POST", back, summary))[0] == 409
    answer = {
        "accept": True,
        "appointment_at": "2026-12-08T09:00:00+08:00",
        "department": "胸外科",
        "doctor": "赵主任",
        "green_channel": True,
    }
    assert (await call(api, "xlwd.clinic", "POST", f"/api/v1/referrals/{rid}/respond", answer))[
        0
    ] == 403
    accepted = await ok(api, "zhao.city", "POST", f"/api/v1/referrals/{rid}/respond", answer)
    assert (accepted["status"], accepted["department"], accepted["green_channel"]) == (
        "accepted",
        "胸外科",
        True,
    )
    assert (await call(api, "zhao.city", "POST", back, summary))[0] == 409
    assert (await call(api, "xlwd.clinic", "POST", arrive, {}))[0] == 403
    arrived = await ok(api, "zhao.city", "POST", arrive, {})
    assert arrived["status"] == "arrived"
    assert arrived["arrived_at"]
    assert (await call(api, "zhao.city", "POST", arrive, {}))[0] == 409
    status, problem = await call(api, "zhao.city", "POST", back, {**summary, "follow_up": " "})
    assert status == 400, problem
    returned = await ok(api, "zhao.city", "POST", back, summary)
    assert (returned["status"], returned["return_kind"]) == ("returned", "discharge")

    # every step an event, told to the other facility
    events = await api.pool.fetch("select kind from event where referral_id = $1 order by id", rid)
    assert [e["kind"] for e in events] == [
        "referral_requested",
        "referral_accepted",
        "referral_arrived",
        "referral_returned",
    ]
    told = await api.pool.fetch(
        "select n.kind, f.code, n.audience from notification n "
        "join facility f on f.id = n.facility_id "
        "where (n.detail->>'referral_id')::bigint = $1 order by n.id",
        rid,
    )
    assert [tuple(t) for t in told] == [
        ("referral", "XY-CITY", "admin"),
        ("referral_accepted", "HB-XL-WD", "clinic"),
        ("referral_arrived", "HB-XL-WD", "clinic"),
        ("referral_returned", "HB-XL-WD", "clinic"),
    ]
    steps = await api.pool.fetch(
        "select username, detail->>'status' as status from audit "
        "where action = 'refer' and object_id = $1 order by seq",
        str(rid),
    )
    assert [tuple(s) for s in steps] == [
        ("xlwd.clinic", "requested"),
        ("zhao.city", "accepted"),
        ("zhao.city", "arrived"),
        ("zhao.city", "returned"),
    ]
    read = await api.pool.fetchval(
        "select count(*) from audit a "
        "where a.username = 'zhao.city' and a.object_type = 'referral' "
        "and a.object_id = $1 and $2 = any(a.studies)",
        str(rid),
        film,
    )
    assert read >= 1

    # the three documents, printed by either side; the patient's national ID only as the
    # start of its keyed hash, as the index keeps it
    digest = "5f" * 32
    person = await api.pool.fetchval(
        "insert into person (national_id_digest) values ($1) returning id", digest
    )
    await api.pool.execute(
        "insert into patient_link (patient_id, person_id, method) values ($1, $2, 'national_id')",
        patient,
        person,
    )
    status, data = await document(api, "xlwd.clinic", rid, "form")
    assert status == 200
    assert data.startswith(b"%PDF")
    text = pdf_text(data)
    assert f"已核验（散列{digest[:16]}…）" in text
    assert digest not in text
    for expected in (
        "双向转诊单",
        "王店村卫生室",
        "右下肺占位性质待查",
        "痰中带血",
        "心电图",
        film,
    ):
        assert expected in text, expected
    text = pdf_text((await document(api, "xlwd.clinic", rid, "answer"))[1])
    for expected in ("接诊单", "接诊结果：已同意", "胸外科", "赵主任", "绿色通道：是"):
        assert expected in text, expected
    status, data = await document(api, "xlwd.clinic", rid, "return")
    text = pdf_text(data)
    for expected in ("转回", "出院小结", "胸腔镜右下肺叶切除术", "止咳化痰", "术后一月"):
        assert expected in text, expected
    assert not re.search(r"[A-Za-z]{3,}", text)  # no English in a zh-CN reader's
    assert (await document(api, "zhao.city", rid, "nonsense"))[0] == 404
    await english_documents(api, rid)
    printed = await api.pool.fetchval(
        "select count(*) from audit where object_type = 'referral_pdf' and object_id = $1",
        str(rid),
    )
    assert printed == 6


#: Each document's English words, as an English reader prints it.
ENGLISH = {
    "form": (
        "Two-way referral form (referral out)",
        "Name: 王 小明",
        "Urgency: ",
        "Preliminary diagnosis",
        "Reason for referral",
        "Attached results",
        "Referring doctor: ",
    ),
    "answer": (
        "Answer: Accepted",
        "Green channel: Yes",
        "Department: 胸外科",
        "Receiving doctor: 赵主任",
        "Appointment: 2026-12-08 09:00:00 (Beijing time)",
    ),
    "return": (
        "Two-way referral form (return)",
        "Diagnosis and course of treatment",
        "右下肺腺癌",  # what the doctor wrote stays as written
        "Follow-up and rehabilitation guidance",
        "Returning doctor: ",
    ),
}


async def english_documents(api: Api, referral: int) -> None:
    """The city's doctor reads English: each document in English, the patient's data and
    what was written as they are."""
    await choose_english(api, "zhao.city")
    ARTIFACTS.mkdir(exist_ok=True)
    for kind, expected in ENGLISH.items():
        status, data = await document(api, "zhao.city", referral, kind)
        assert status == 200
        (ARTIFACTS / f"referral_{kind}_en.pdf").write_bytes(data)
        pages = pypdf.PdfReader(io.BytesIO(data)).pages
        text = "\n".join(p.extract_text().replace("\x00", "") for p in pages)
        for said in expected:
            assert said in text, (kind, said)
        assert "（北京时间）" not in text
        assert "本单经县域远程诊断网络" not in text


async def test_a_declined_referral_grants_nothing(api: Api) -> None:
    film = await store(
        api, "HB-XL-WD", make_study(modality="DX", count=1, patient_id="WD-R2", size=16)
    )
    patient = await patient_of(api, "HB-XL-WD", "WD-R2")
    raised = await ok(
        api,
        "xlwd.clinic",
        "POST",
        "/api/v1/referrals",
        {
            "patient_id": patient,
            "to": "XY-CITY",
            "reason": "复查",
            "studies": [await study_id(api, film)],
        },
    )
    assert await sees_study(api, "zhao.city", film, metadata=False)
    await ok(
        api,
        "zhao.city",
        "POST",
        f"/api/v1/referrals/{raised['id']}/respond",
        {"accept": False, "reason": "床位已满，建议转县医院"},
    )
    assert not await sees_study(api, "zhao.city", film, metadata=False)
    status, _ = await call(api, "zhao.city", "POST", f"/api/v1/referrals/{raised['id']}/arrive", {})
    assert status == 409
    text = pdf_text((await document(api, "xlwd.clinic", raised["id"], "answer"))[1])
    assert "不予接诊" in text
    assert "床位已满" in text
    assert (await document(api, "xlwd.clinic", raised["id"], "return"))[0] == 404
