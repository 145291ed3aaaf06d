"""Serial ECG comparison across the network, in the real database: a person's ECG at one
village is the prior of their ECG at another once the county patient index links the two
records, for the readers the imaging priors rule lets see it, and what changed is in the
ECG's answer, on the reader's page and in the audit."""

from __future__ import annotations

import io
from typing import Any

from pydicom import dcmread

from storage.ecg import EcgOutcome
from teleradiology.http.context import OBJECTS
from teleradiology.services import ecg as ecg_service
from tests.ecg_file import make_ecg
from tests.integration.conftest import Api
from tests.integration.dicomweb_support import route_all, store
from tests.integration.test_ecg_flow import ecg_case, get_json
from tests.integration.test_ecg_reading_page import session


def _statement(code: str) -> dict[str, str]:
    return {"code": code, "text_zh": code, "text_en": code}


#: The analyses, built here: sinus rhythm at the village of Wangdian in September, atrial
#: fibrillation with a new LBBB and a longer QTc at Liwan now.
PRIOR = {
    "measurements": {"heart_rate_bpm": 64.0, "qtc_bazett_ms": 421.0, "qrs_ms": 92.0},
    "statements": [_statement("SINUS_RHYTHM")],
}
CURRENT = {
    "measurements": {"heart_rate_bpm": 112.0, "qtc_bazett_ms": 488.0, "qrs_ms": 146.0},
    "statements": [_statement("IRREGULAR_RHYTHM_POSSIBLE_AF"), _statement("LBBB")],
}


def _analyze(data: bytes) -> EcgOutcome:
    patient = dcmread(io.BytesIO(data), stop_before_pixels=True).PatientID
    return EcgOutcome(result=PRIOR if patient == "WD-31" else CURRENT, error=None)


async def _two_records(api: Api) -> tuple[str, str]:
    """One person's ECG at Wangdian in September and at Liwan now (separate records): the
    SOP Instance UIDs of the prior and the current, both analysed and routed."""
    prior = make_ecg(patient_id="WD-31", patient_name="赵^桂兰")
    current = make_ecg(patient_id="LW-208", patient_name="赵^桂兰")
    prior_study = await store(api, "HB-XL-WD", [prior])
    await api.pool.execute(
        "update study set first_received_at = '2026-09-14 02:30+00' where study_instance_uid = $1",
        prior_study,
    )
    await store(api, "HB-MJ-LW", [current])
    await route_all(api)
    await ecg_service.analyze_pending(api.pool, api.app[OBJECTS], None, analyze=_analyze)
    return (
        str(dcmread(io.BytesIO(prior)).SOPInstanceUID),
        str(dcmread(io.BytesIO(current)).SOPInstanceUID),
    )


async def _link(api: Api) -> None:
    """Each clinic records the patient's national ID: the index links the two records."""
    for patient_id, clinic in (("WD-31", "xlwd.clinic"), ("LW-208", "mjlw.clinic")):
        ref = await api.pool.fetchval("select id from patient where patient_id = $1", patient_id)
        linked = await api.client.post(
            f"/api/v1/patients/{ref}/national-id",
            json={"national_id": "411527196203150027"},
            headers=api.auth(clinic),
        )
        assert linked.status == 200, await linked.text()


async def _reader_of(api: Api, sop: str) -> str:
    """The ECG reader of the pool the ECG's case went to."""
    study = await api.pool.fetchval(
        "select s.study_instance_uid from instance i join series se on se.id = i.series_id"
        " join study s on s.id = se.study_id where i.sop_instance_uid = $1",
        sop,
    )
    pool = (await ecg_case(api, study))["pool"]
    return {"HB-COUNTY": "li.ecg", "HB-XL": "xl.ecg"}[pool]


async def test_the_prior_from_another_village_is_found_and_compared(api: Api) -> None:
    prior, current = await _two_records(api)
    reader = await _reader_of(api, current)
    unlinked = await get_json(api, reader, f"/api/v1/ecg/{current}")
    # the same person under another facility's patient ID is not a prior until linked
    assert unlinked["priors"] == []
    assert unlinked["comparison"] is None

    await _link(api)
    view = await get_json(api, reader, f"/api/v1/ecg/{current}")
    assert [p["sop_instance_uid"] for p in view["priors"]] == [prior]
    (found,) = view["priors"]
    assert (found["facility"], found["earlier"]) == ("HB-XL-WD", True)
    assert found["facility_name"] == "淮滨县新里镇王店村卫生室"
    comparison = view["comparison"]
    assert comparison["prior_sop_instance_uid"] == prior
    assert comparison["prior_date"] == "2026-09-14"  # 10:30 in Asia/Shanghai
    assert comparison["prior_facility"] == "淮滨县新里镇王店村卫生室"
    assert comparison["heading_zh"] == "与前次心电图（2026-09-14，淮滨县新里镇王店村卫生室）比较："
    assert [c["code"] for c in comparison["changes"]] == [
        "NEW_ATRIAL_FIBRILLATION",
        "NEW_LBBB",
        "QTC_CHANGE",
        "HEART_RATE_CHANGE",
    ]
    qtc = comparison["changes"][2]
    assert qtc["values"] == {"prior_ms": 421.0, "current_ms": 488.0, "change_ms": 67.0}
    assert qtc["text_zh"] == "QTc 较前延长 67 ms（421 → 488 ms），请确认"
    # the read that disclosed the prior names its patient in the audit
    named = await api.pool.fetchval(
        "select patients from audit where action = 'read' and object_id = $1"
        " order by seq desc limit 1",
        current,
    )
    assert set(named) == {"HB-MJ-LW:LW-208", "HB-XL-WD:WD-31"}

    # seen from the prior, the newer ECG is listed but not compared with
    back = await get_json(api, reader, f"/api/v1/ecg/{prior}")
    assert [(p["sop_instance_uid"], p["earlier"]) for p in back["priors"]] == [(current, False)]
    assert back["comparison"] is None


async def test_a_user_the_priors_rule_does_not_let_see_the_prior_does_not_get_it(
    api: Api,
) -> None:
    prior, current = await _two_records(api)
    await _link(api)
    # the sending clinic sees its own patients only: the other village's ECG is not its prior
    own = await get_json(api, "mjlw.clinic", f"/api/v1/ecg/{current}")
    assert own["priors"] == []
    assert own["comparison"] is None
    # nor the other way round
    other = await get_json(api, "xlwd.clinic", f"/api/v1/ecg/{prior}")
    assert other["priors"] == []
    # a reader of another county's pool sees neither ECG
    denied = await api.client.get(f"/api/v1/ecg/{current}", headers=api.auth("gs.reader"))
    assert denied.status == 404
    # the county administrator sees both villages
    admin = await get_json(api, "hb.admin", f"/api/v1/ecg/{current}")
    assert [p["sop_instance_uid"] for p in admin["priors"]] == [prior]


async def test_the_reading_page_and_the_sheet_say_what_changed(api: Api) -> None:
    prior, current = await _two_records(api)
    await _link(api)
    reader = await _reader_of(api, current)
    study = await api.pool.fetchval(
        "select s.study_instance_uid from study s join patient p on p.id = s.patient_ref"
        " where p.patient_id = 'LW-208'"
    )
    case: Any = await ecg_case(api, study)
    cookie = await session(api, reader)
    page = await api.client.get(f"/ecg/cases/{case['id']}", headers=cookie)
    assert page.status == 200
    html = await page.text()
    assert f'id="serial-changes" data-prior="{prior}"' in html
    assert 'data-code="NEW_LBBB"' in html
    assert "新出现完全性左束支阻滞（前次心电图未见），请确认" in html
    assert "淮滨县新里镇王店村卫生室" in html
    # the other village's prior is drawn beside it
    prior_sheet = await api.client.get(
        f"/ecg/cases/{case['id']}/sheets/{prior}.png", headers=cookie
    )
    assert prior_sheet.status == 200
    assert (await prior_sheet.read()).startswith(b"\x89PNG")

    sheet = await api.client.get(f"/api/v1/ecg/{current}/sheet.png", headers=api.auth(reader))
    assert sheet.status == 200
    assert (await sheet.read()).startswith(b"\x89PNG")
    # the sheet printed the comparison: its audit names the prior's patient too
    named = await api.pool.fetchval(
        "select patients from audit where action = 'sheet' and object_id = $1"
        " order by seq desc limit 1",
        current,
    )
    assert set(named) == {"HB-MJ-LW:LW-208", "HB-XL-WD:WD-31"}
