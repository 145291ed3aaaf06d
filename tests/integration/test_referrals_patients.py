"""Two-way referral, the county patient index with its priors, and report addenda."""

from __future__ import annotations

from storage import patients
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
