"""Two-way referral, the county patient index with its priors, and report addenda."""

from __future__ import annotations

from teleradiology.core import patients
from tests.ecg_file import make_ecg
from tests.factory import make_study
from tests.integration.conftest import Api
from tests.integration.dicomweb_support import route_all, store


async def _case(api: Api, uid: str) -> int:
    found: int = await api.pool.fetchval(
        "select c.id from reading_case c join study s on s.id = c.study_id "
        "where s.study_instance_uid = $1",
        uid,
    )
    return found


async def test_up_referral_accepted_then_down_referral_back_home(api: Api) -> None:
    uid = await store(api, "HB-XL-WD", make_study(modality="CR", count=1, patient_id="U-1"))
    await route_all(api)
    case_id = await _case(api, uid)
    up = await api.client.post(
        "/api/v1/referrals",
        json={"to": "HB-COUNTY", "case_id": case_id, "urgency": "urgent", "reason": "疑似肺癌"},
        headers=api.auth("xlwd.clinic"),
    )
    referral = await up.json()
    assert up.status == 201, referral
    assert (referral["from"], referral["to"], referral["status"]) == (
        "HB-XL-WD",
        "HB-COUNTY",
        "requested",
    )
    # a clinic cannot refer up to a hospital that is not above it
    wrong = await api.client.post(
        "/api/v1/referrals",
        json={"to": "GS-COUNTY", "case_id": case_id, "reason": "x"},
        headers=api.auth("xlwd.clinic"),
    )
    assert wrong.status == 409
    no_time = await api.client.post(
        f"/api/v1/referrals/{referral['id']}/respond",
        json={"accept": True},
        headers=api.auth("hb.admin"),
    )
    assert no_time.status == 409
    accepted = await api.client.post(
        f"/api/v1/referrals/{referral['id']}/respond",
        json={"accept": True, "appointment_at": "2026-12-01T08:30:00+08:00"},
        headers=api.auth("hb.admin"),
    )
    assert (await accepted.json())["status"] == "accepted"
    down = await api.client.post(
        "/api/v1/referrals",
        json={
            "direction": "down",
            "to": "HB-XL-WD",
            "in_reply_to": referral["id"],
            "reason": "术后稳定，转回村卫生室随访",
            "discharge_summary": "右下肺叶切除术后第7天，恢复良好。",
            "follow_up_plan": "每周随访血压、伤口；一月后复查胸片。",
        },
        headers=api.auth("hb.admin"),
    )
    assert down.status == 201, await down.text()
    mine = await (await api.client.get("/api/v1/referrals", headers=api.auth("xlwd.clinic"))).json()
    assert {r["direction"] for r in mine["referrals"]} == {"up", "down"}
    other = await (
        await api.client.get("/api/v1/referrals", headers=api.auth("xlzz.clinic"))
    ).json()
    assert other["referrals"] == []
    stats = await (
        await api.client.get("/api/v1/stats/referrals", headers=api.auth("hb.admin"))
    ).json()
    assert {(r["facility"], r["direction"], r["status"]) for r in stats["referrals"]} == {
        ("HB-XL-WD", "up", "accepted"),
        ("HB-COUNTY", "down", "requested"),
    }
    kinds = await api.pool.fetch("select kind from event where referral_id is not null order by id")
    assert [k["kind"] for k in kinds] == [
        "referral_requested",
        "referral_accepted",
        "referral_requested",
    ]


async def test_linked_records_show_as_priors_only_after_an_explicit_link(api: Api) -> None:
    first = await store(api, "HB-XL-WD", make_study(modality="CR", count=1, patient_id="A-1"))
    second = await store(api, "HB-MJ-LW", make_study(modality="CR", count=1, patient_id="A-1"))
    await route_all(api)
    case_id = await _case(api, second)
    view = await (
        await api.client.get(f"/api/v1/cases/{case_id}", headers=api.auth("wang.reader"))
    ).json()
    assert view["priors"] == []  # the same bare patient ID at another facility is not a link
    refs = [
        await api.pool.fetchval("select patient_ref from study where study_instance_uid = $1", u)
        for u in (first, second)
    ]
    for ref, clinic in zip(refs, ("xlwd.clinic", "mjlw.clinic"), strict=True):
        linked = await api.client.post(
            f"/api/v1/patients/{ref}/national-id",
            json={"national_id": "41152719580312001x"},
            headers=api.auth(clinic),
        )
        assert linked.status == 200, await linked.text()
    view = await (
        await api.client.get(f"/api/v1/cases/{case_id}", headers=api.auth("wang.reader"))
    ).json()
    assert [p["study_instance_uid"] for p in view["priors"]] == [first]
    assert view["priors"][0]["linked_record"] is True
    stored = await api.pool.fetchval("select national_id_digest from person")
    assert "411527" not in stored
    unmerged = await api.client.post(
        f"/api/v1/patients/{refs[0]}/unmerge", headers=api.auth("hb.admin")
    )
    assert unmerged.status == 200
    view = await (
        await api.client.get(f"/api/v1/cases/{case_id}", headers=api.auth("wang.reader"))
    ).json()
    assert view["priors"] == []
    history = await (
        await api.client.get(f"/api/v1/patients/{refs[0]}/links", headers=api.auth("hb.admin"))
    ).json()
    assert [h["action"] for h in history["links"]] == ["link", "link", "unmerge"]
    assert patients.normalise_national_id(" 41152719580312001x ") == "41152719580312001X"


async def test_a_reader_refers_up_to_the_city_which_declines_with_a_reason(api: Api) -> None:
    uid = await store(api, "HB-XL-WD", make_study(modality="CR", count=1, patient_id="U-2"))
    await route_all(api)
    case_id = await _case(api, uid)
    up = await api.client.post(
        "/api/v1/referrals",
        json={"to": "XY-CITY", "case_id": case_id, "urgency": "emergency", "reason": "需胸外科"},
        headers=api.auth("wang.reader"),
    )
    referral = await up.json()
    assert up.status == 201, referral
    assert (referral["from"], referral["to"], referral["urgency"]) == (
        "HB-XL-WD",
        "XY-CITY",
        "emergency",
    )
    # the reader who raised it follows it; a reader of another county does not see it
    mine = await api.client.get(
        f"/api/v1/referrals/{referral['id']}", headers=api.auth("wang.reader")
    )
    assert mine.status == 200
    other = await api.client.get(
        f"/api/v1/referrals/{referral['id']}", headers=api.auth("gs.reader")
    )
    assert other.status == 404
    # only the receiving hospital answers, and a decline needs its reason
    wrong = await api.client.post(
        f"/api/v1/referrals/{referral['id']}/respond",
        json={"accept": False, "reason": "x"},
        headers=api.auth("hb.admin"),
    )
    assert wrong.status == 403
    no_reason = await api.client.post(
        f"/api/v1/referrals/{referral['id']}/respond",
        json={"accept": False},
        headers=api.auth("xy.admin"),
    )
    assert no_reason.status == 409
    declined = await api.client.post(
        f"/api/v1/referrals/{referral['id']}/respond",
        json={"accept": False, "reason": "床位已满，请转省人民医院"},
        headers=api.auth("xy.admin"),
    )
    body = await declined.json()
    assert (body["status"], body["decline_reason"]) == ("declined", "床位已满，请转省人民医院")
    assert body["responded_at"] is not None
    told = await api.pool.fetch(
        "select n.kind, n.audience, f.code from notification n join facility f "
        "on f.id = n.facility_id where n.kind like 'referral%' order by n.id"
    )
    assert [(t["kind"], t["audience"], t["code"]) for t in told] == [
        ("referral", "admin", "XY-CITY"),
        ("referral_declined", "clinic", "HB-XL-WD"),
    ]
    events = await api.pool.fetch(
        "select kind, detail->>'reason' as reason from event where referral_id = $1 order by id",
        referral["id"],
    )
    assert [(e["kind"], e["reason"]) for e in events] == [
        ("referral_requested", None),
        ("referral_declined", "床位已满，请转省人民医院"),
    ]
    stats = await (
        await api.client.get("/api/v1/stats/referrals", headers=api.auth("xy.admin"))
    ).json()
    row = next(r for r in stats["referrals"] if r["status"] == "declined")
    assert (row["facility"], row["direction"], row["count"]) == ("HB-XL-WD", "up", 1)
    assert row["median_response_minutes"] is not None


async def test_an_administrator_merges_two_records_and_the_audit_says_who(api: Api) -> None:
    # an ECG at one village, a chest film at another: the ECG is a prior of the film
    first = await store(api, "HB-XL-WD", [make_ecg(patient_id="M-1", patient_name="周^一")])
    second = await store(api, "HB-MJ-LW", make_study(modality="DX", count=1, patient_id="M-9"))
    await route_all(api)
    refs = [
        await api.pool.fetchval("select patient_ref from study where study_instance_uid = $1", u)
        for u in (first, second)
    ]
    refused = await api.client.post(
        "/api/v1/patients/merge", json={"patients": refs}, headers=api.auth("xlwd.clinic")
    )
    assert refused.status == 403
    merged = await api.client.post(
        "/api/v1/patients/merge", json={"patients": refs}, headers=api.auth("hb.admin")
    )
    assert merged.status == 200, await merged.text()
    view = await (
        await api.client.get(
            f"/api/v1/cases/{await _case(api, second)}", headers=api.auth("wang.reader")
        )
    ).json()
    assert [p["study_instance_uid"] for p in view["priors"]] == [first]
    assert view["priors"][0]["modalities"] == ["ECG"]
    # the clinics still see only their own records
    other = await api.client.get(
        f"/api/v1/cases/{await _case(api, first)}", headers=api.auth("mjlw.clinic")
    )
    assert other.status == 404
    audit = await api.pool.fetch(
        "select a.action, a.patient_id, u.username from patient_link_audit a "
        "join app_user u on u.id = a.user_id order by a.id"
    )
    assert [(a["action"], a["patient_id"], a["username"]) for a in audit] == [
        ("merge", refs[0], "hb.admin"),
        ("merge", refs[1], "hb.admin"),
    ]
    assert (
        await api.client.post(f"/api/v1/patients/{refs[1]}/unmerge", headers=api.auth("hb.admin"))
    ).status == 200
    view = await (
        await api.client.get(
            f"/api/v1/cases/{await _case(api, second)}", headers=api.auth("wang.reader")
        )
    ).json()
    assert view["priors"] == []
