"""The worklist as a state machine with leases, escalation, deadlines and scope."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg
from aiohttp import ClientResponse

from storage import cases, network
from storage.records import Role, Specialty, UserSpec
from teleradiology.services import administration, deadlines, reading
from teleradiology.services.deadlines import watch_once
from tests.ecg_file import make_ecg
from tests.factory import make_study
from tests.integration.conftest import Api
from tests.integration.dicomweb_support import facility, route_all, store


async def _case_of(api: Api, uid: str, specialty: str = "radiology") -> int:
    case_id: int = await api.pool.fetchval(
        "select c.id from reading_case c join study s on s.id = c.study_id "
        "where s.study_instance_uid = $1 and c.specialty = $2 order by c.id desc limit 1",
        uid,
        specialty,
    )
    return case_id


async def _row(api: Api, sql: str, *args: object) -> asyncpg.Record:
    row = await api.pool.fetchrow(sql, *args)
    assert row is not None
    return row


async def _post(api: Api, user: str, path: str, body: object = None) -> ClientResponse:
    return await api.client.post(path, json=body, headers=api.auth(user))


async def _routed(api: Api, code: str = "HB-XL-WD", modality: str = "CR") -> int:
    uid = await store(api, code, make_study(modality=modality, count=1, patient_id="P-1"))
    await route_all(api)
    return await _case_of(api, uid)


async def _readers(api: Api, n: int) -> list[str]:
    specs = [
        UserSpec(
            username=f"r{i:02d}",
            display_name=f"读片医生{i}",
            role=Role.READER,
            facility="HB-COUNTY",
            specialties=(Specialty.RADIOLOGY,),
            password_hash=None,
        )
        for i in range(n)
    ]
    await administration.import_network(api.pool, [], specs)
    for spec in specs:
        user = await network.user_by_username(api.pool, spec.username)
        assert user is not None
        api.tokens[spec.username] = await network.create_token(api.pool, user.id)
    return [s.username for s in specs]


async def test_twenty_readers_claiming_one_case_at_once_never_double_claim(api: Api) -> None:
    case_id = await _routed(api)
    readers = await _readers(api, 20)
    answers = await asyncio.gather(
        *(_post(api, r, f"/api/v1/cases/{case_id}/claim") for r in readers)
    )
    statuses = sorted(a.status for a in answers)
    assert statuses == [200] + [409] * 19
    holders = await api.pool.fetch("select claimed_by from reading_case where id = $1", case_id)
    assert len(holders) == 1
    claimed = await api.pool.fetchval(
        "select count(*) from event where case_id = $1 and kind = 'claimed'", case_id
    )
    assert claimed == 1


async def test_twenty_readers_taking_the_next_case_each_get_a_different_one(api: Api) -> None:
    for i in range(8):
        await store(api, "HB-XL-WD", make_study(modality="CR", count=1, patient_id=f"N-{i}"))
    await route_all(api)
    readers = await _readers(api, 20)
    answers = await asyncio.gather(*(_post(api, r, "/api/v1/worklist/next") for r in readers))
    got = [await a.json() for a in answers if a.status == 200]
    assert len(got) == 8
    assert len({c["id"] for c in got}) == 8
    assert len({c["claimed_by"] for c in got}) == 8
    assert sorted(a.status for a in answers if a.status != 200) == [404] * 12


async def test_an_expired_lease_returns_the_case_to_the_pool(api: Api) -> None:
    case_id = await _routed(api)
    a, b = await _readers(api, 2)
    assert (await _post(api, a, f"/api/v1/cases/{case_id}/claim")).status == 200
    assert (await _post(api, b, f"/api/v1/cases/{case_id}/claim")).status == 409
    await api.pool.execute(
        "update reading_case set lease_expires_at = now() - interval '1 second' where id = $1",
        case_id,
    )
    assert await deadlines.expire_leases(api.pool) == 1
    row = await _row(api, "select status, claimed_by from reading_case where id = $1", case_id)
    assert row["status"] == "scheduled"
    assert row["claimed_by"] is None
    assert (await _post(api, b, f"/api/v1/cases/{case_id}/claim")).status == 200
    # an administrator may force-release; the event names the holder
    released = await _post(api, "hb.admin", f"/api/v1/cases/{case_id}/release")
    assert released.status == 200
    assert (await released.json())["status"] == "scheduled"


async def test_a_routine_case_past_its_deadline_is_escalated_once(api: Api) -> None:
    case_id = await _routed(api)
    deadline = await api.pool.fetchval("select deadline from reading_case where id = $1", case_id)
    created = await api.pool.fetchval("select created_at from reading_case where id = $1", case_id)
    assert timedelta(hours=23, minutes=59) < deadline - created <= timedelta(hours=24)

    early = await watch_once(api.pool, now=deadline - timedelta(hours=12))
    assert early.escalated == 0
    late = deadline + timedelta(minutes=1)
    first = await watch_once(api.pool, now=late)
    again = await watch_once(api.pool, now=late + timedelta(minutes=5))
    assert first.escalated == 1
    assert again.escalated == 0
    events = await api.pool.fetch(
        "select detail from event where case_id = $1 and kind = 'escalated'", case_id
    )
    assert len(events) == 1
    assert "deadline passed" in events[0]["detail"]
    city = await facility(api, "XY-CITY")
    pool_id = await api.pool.fetchval(
        "select pool_facility_id from reading_case where id = $1", case_id
    )
    assert pool_id == city.id
    listed = await (await api.client.get("/api/v1/worklist", headers=api.auth("zhao.city"))).json()
    assert [c["id"] for c in listed["cases"]] == [case_id]
    county = await (
        await api.client.get("/api/v1/worklist", headers=api.auth("wang.reader"))
    ).json()
    assert county["cases"] == []


async def test_an_unclaimed_case_with_little_time_left_is_escalated_before_its_deadline(
    api: Api,
) -> None:
    case_id = await _routed(api)
    deadline = await api.pool.fetchval("select deadline from reading_case where id = $1", case_id)
    done = await watch_once(api.pool, now=deadline - timedelta(hours=1))  # < 10 % of 24 h left
    assert done.escalated == 1


async def test_readers_of_another_county_and_other_clinics_cannot_see_the_case(api: Api) -> None:
    case_id = await _routed(api)
    for user in ("gs.reader", "xlzz.clinic", "li.ecg", "zhao.city"):
        got = await api.client.get(f"/api/v1/cases/{case_id}", headers=api.auth(user))
        assert got.status == 404, user
    assert (await _post(api, "gs.reader", f"/api/v1/cases/{case_id}/claim")).status == 404
    listed = await api.client.get("/api/v1/worklist", headers=api.auth("gs.reader"))
    assert (await listed.json())["cases"] == []
    own = await api.client.get(f"/api/v1/cases/{case_id}", headers=api.auth("xlwd.clinic"))
    assert own.status == 200
    assert (await _post(api, "zhao.city", f"/api/v1/cases/{case_id}/claim")).status == 404


async def test_escalated_case_the_city_sees_the_draft_and_question_and_amends(api: Api) -> None:
    case_id = await _routed(api)
    assert (await _post(api, "wang.reader", f"/api/v1/cases/{case_id}/claim")).status == 200
    answer = await _post(
        api,
        "wang.reader",
        f"/api/v1/cases/{case_id}/escalate",
        {
            "question": "右上肺结节，良恶性？",
            "findings": "右上肺见结节影。",
            "impression": "右上肺结节，建议上级会诊。",
            "conclusion": "abnormal",
        },
    )
    assert answer.status == 200, await answer.text()
    assert (await _post(api, "wang.reader", f"/api/v1/cases/{case_id}/claim")).status == 409
    seen = await (
        await api.client.get(f"/api/v1/cases/{case_id}", headers=api.auth("zhao.city"))
    ).json()
    assert seen["question"] == "右上肺结节，良恶性？"
    assert [r["status"] for r in seen["reports"]] == ["preliminary"]
    assert (await _post(api, "zhao.city", f"/api/v1/cases/{case_id}/claim")).status == 200
    final = await _post(
        api,
        "zhao.city",
        f"/api/v1/cases/{case_id}/report",
        {
            "findings": "右上肺见分叶状结节。",
            "impression": "考虑周围型肺癌。",
            "conclusion": "critical",
        },
    )
    body = await final.json()
    assert final.status == 201, body
    assert body["agreed"] is False
    assert "危急值" in body["discrepancy"]
    # the county reader still follows the case they escalated
    followed = await api.client.get(f"/api/v1/cases/{case_id}", headers=api.auth("wang.reader"))
    assert followed.status == 200
    # the county's dashboard counts the escalation from its pool and the discrepancy
    # against the reader who wrote the draft
    dash = await (
        await api.client.get("/api/v1/admin/dashboard", headers=api.auth("hb.admin"))
    ).json()
    up = {(e["dimension"], e["key"]): e for e in dash["escalations"]}
    assert (up["all", ""]["escalated"], up["all", ""]["answered"]) == (1, 1)
    assert up["pool", "HB-COUNTY"]["escalated"] == 1
    compared = {(r["dimension"], r["key"]): r for r in dash["second_reads"]}
    assert (
        compared["reader", "wang.reader"]["reads"],
        compared["reader", "wang.reader"]["discrepancies"],
    ) == (1, 1)


async def test_township_reads_its_villages_ecgs_and_stemi_brings_the_deadline_forward(
    api: Api,
) -> None:
    uid = await store(api, "HB-XL-WD", [make_ecg(patient_id="E-1", patient_name="李^四")])
    await route_all(api)
    case_id = await _case_of(api, uid, "ecg")
    township = await facility(api, "HB-XL")
    county = await facility(api, "HB-COUNTY")
    row = await _row(
        api,
        "select pool_facility_id, escalation_facility_id from reading_case where id = $1",
        case_id,
    )
    assert (row["pool_facility_id"], row["escalation_facility_id"]) == (township.id, county.id)
    listed = await (await api.client.get("/api/v1/worklist", headers=api.auth("xl.ecg"))).json()
    assert [c["id"] for c in listed["cases"]] == [case_id]
    assert listed["cases"][0]["suggested_reader"] == "xl.ecg"

    study_id = await api.pool.fetchval("select id from study where study_instance_uid = $1", uid)
    raised = await reading.raise_to_stemi(api.pool, study_id)
    assert raised == [case_id]
    row = await _row(
        api, "select priority, stemi, deadline from reading_case where id = $1", case_id
    )
    assert row["priority"] == "high"
    assert row["stemi"] is True
    assert row["deadline"] - datetime.now(UTC) <= timedelta(minutes=10)


async def test_returned_study_is_routed_again_when_the_clinic_resends(api: Api) -> None:
    instances = make_study(modality="CR", count=2, patient_id="R-1")
    uid = await store(api, "HB-XL-WD", instances[:1])
    await route_all(api)
    case_id = await _case_of(api, uid)
    assert (await _post(api, "wang.reader", f"/api/v1/cases/{case_id}/claim")).status == 200
    bad = await _post(api, "wang.reader", f"/api/v1/cases/{case_id}/return", {"reason": "blurry"})
    assert bad.status == 400
    returned = await _post(
        api, "wang.reader", f"/api/v1/cases/{case_id}/return", {"reason": "motion", "note": "重拍"}
    )
    assert (await returned.json())["status"] == "canceled"
    assert await route_all(api) == 0  # nothing new from the clinic: not routed again
    await store(api, "HB-XL-WD", instances[1:])
    assert await route_all(api) == 1
    again = await _case_of(api, uid)
    assert again != case_id
    told = await api.pool.fetchval(
        "select count(*) from notification where kind = 'returned' and case_id = $1", case_id
    )
    assert told == 1
    # the new case keeps the history of the returned one
    view = await (
        await api.client.get(f"/api/v1/cases/{again}", headers=api.auth("xlwd.clinic"))
    ).json()
    returned_events = [e for e in view["events"] if e["kind"] == "returned"]
    assert [(e["case_id"], e["detail"]["reason"]) for e in returned_events] == [(case_id, "motion")]
    assert [e["kind"] for e in view["events"] if e["case_id"] == again] == ["routed"]

    # returned a second time: the clinic's list holds the study once, with the latest return
    assert (await _post(api, "wang.reader", f"/api/v1/cases/{again}/claim")).status == 200
    second = {"reason": "positioning", "note": "双肩未展开"}
    assert (await _post(api, "wang.reader", f"/api/v1/cases/{again}/return", second)).status == 200
    clinic = await network.user_by_username(api.pool, "xlwd.clinic")
    assert clinic is not None
    back = await cases.returned_to_clinic(api.pool, clinic)
    assert [(b.case.id, b.case.return_code, b.note) for b in back] == [
        (again, "positioning", "双肩未展开")
    ]
    # another clinic sees none of it
    other = await network.user_by_username(api.pool, "mjhz.clinic")
    assert other is not None
    assert await cases.returned_to_clinic(api.pool, other) == []


async def test_a_claim_is_a_fifteen_minute_lease_renewed_while_the_reader_works(
    api: Api,
) -> None:
    case_id = await _routed(api)
    a, b = await _readers(api, 2)
    claimed = await (await _post(api, a, f"/api/v1/cases/{case_id}/claim")).json()
    now = await api.pool.fetchval("select now()")
    lease = datetime.fromisoformat(claimed["lease_expires_at"]) - now
    assert timedelta(minutes=14, seconds=50) < lease <= timedelta(minutes=15)
    # a minute before it runs out, the reader (still working) renews it by claiming again
    await api.pool.execute(
        "update reading_case set lease_expires_at = now() + interval '1 minute' where id = $1",
        case_id,
    )
    renewed = await _post(api, a, f"/api/v1/cases/{case_id}/claim")
    assert renewed.status == 200
    lease = datetime.fromisoformat((await renewed.json())["lease_expires_at"]) - now
    assert lease > timedelta(minutes=14)
    assert await deadlines.expire_leases(api.pool) == 0
    claims = await api.pool.fetchval(
        "select count(*) from event where case_id = $1 and kind = 'claimed'", case_id
    )
    assert claims == 1
    # another reader can neither take nor release it
    assert (await _post(api, b, f"/api/v1/cases/{case_id}/claim")).status == 409
    assert (await _post(api, b, f"/api/v1/cases/{case_id}/release")).status == 409
    # the administrator force-releases it; the event names the holder
    forced = await _post(api, "hb.admin", f"/api/v1/cases/{case_id}/release")
    assert forced.status == 200
    detail = await api.pool.fetchval(
        "select detail from event where case_id = $1 and kind = 'released'", case_id
    )
    holder = await api.pool.fetchval("select id from app_user where username = $1", a)
    assert json.loads(detail) == {"forced": True, "holder": holder}
    assert (await _post(api, b, f"/api/v1/cases/{case_id}/claim")).status == 200
    # a case nobody holds has nothing to release
    assert (await _post(api, b, f"/api/v1/cases/{case_id}/release")).status == 200
    assert (await _post(api, "hb.admin", f"/api/v1/cases/{case_id}/release")).status == 409


async def test_past_its_deadline_a_case_held_off_duty_goes_back_to_the_pool_once(
    api: Api,
) -> None:
    held_off = await _routed(api)
    await store(api, "HB-XL-WD", make_study(modality="CR", count=1, patient_id="P-2"))
    await route_all(api)
    held_on = await _case_of(
        api,
        (
            await _row(
                api,
                "select s.study_instance_uid from study s join reading_case c on c.study_id = s.id "
                "where c.id <> $1",
                held_off,
            )
        )["study_instance_uid"],
    )
    assert (await _post(api, "zhou.reader", f"/api/v1/cases/{held_off}/claim")).status == 200
    assert (await _post(api, "wang.reader", f"/api/v1/cases/{held_on}/claim")).status == 200
    deadline = await api.pool.fetchval("select deadline from reading_case where id = $1", held_off)
    at = deadline + timedelta(minutes=1)
    # zhou's shift is on another weekday than the one the deadline passes on
    weekday = at.astimezone(ZoneInfo("Asia/Shanghai")).isoweekday()
    other_day = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[weekday % 7]
    duty = {"duty": [{"days": [other_day], "from": "00:00", "until": "24:00"}]}
    changed = await api.client.put(
        "/api/v1/admin/users/zhou.reader/duty", json=duty, headers=api.auth("hb.admin")
    )
    assert changed.status == 200

    done = await watch_once(api.pool, now=at)
    assert (done.reassigned, done.at_risk, done.escalated) == (1, 1, 0)
    row = await _row(api, "select status, claimed_by from reading_case where id = $1", held_off)
    assert (row["status"], row["claimed_by"]) == ("scheduled", None)
    released = await _row(
        api, "select detail from event where case_id = $1 and kind = 'released'", held_off
    )
    assert "off duty" in json.loads(released["detail"])["reason"]
    kept = await _row(api, "select status, claimed_by from reading_case where id = $1", held_on)
    assert kept["status"] == "in_progress"
    flagged = await api.pool.fetch(
        "select audience from notification where case_id = $1 and kind = 'deadline_at_risk' "
        "order by audience",
        held_on,
    )
    assert [f["audience"] for f in flagged] == ["admin", "reader"]
    again = await watch_once(api.pool, now=at + timedelta(minutes=10))
    assert (again.reassigned, again.at_risk, again.escalated) == (0, 0, 0)


async def test_the_city_agrees_with_the_county_draft_and_no_discrepancy_is_recorded(
    api: Api,
) -> None:
    case_id = await _routed(api)
    # only the reader holding the case escalates it
    early = await _post(api, "wang.reader", f"/api/v1/cases/{case_id}/escalate", {"question": "?"})
    assert early.status == 409
    assert (await _post(api, "wang.reader", f"/api/v1/cases/{case_id}/claim")).status == 200
    draft = {
        "findings": "右肺中叶小片影。",
        "impression": "右肺中叶炎症。",
        "conclusion": "abnormal",
    }
    escalated = await _post(
        api,
        "wang.reader",
        f"/api/v1/cases/{case_id}/escalate",
        {"question": "炎症还是不张？", **draft},
    )
    assert (await escalated.json())["pool"] == "XY-CITY"
    assert (await _post(api, "zhao.city", f"/api/v1/cases/{case_id}/claim")).status == 200
    final = await _post(
        api,
        "zhao.city",
        f"/api/v1/cases/{case_id}/report",
        {**draft, "impression": "右肺中叶炎症，同意初诊意见。"},
    )
    body = await final.json()
    assert final.status == 201, body
    assert (body["agreed"], body["discrepancy"]) == (True, None)
    event = await _row(
        api, "select detail from event where case_id = $1 and kind = 'final'", case_id
    )
    assert json.loads(event["detail"])["agreed"] is True


async def test_a_case_with_no_pool_above_is_not_escalated_and_its_draft_not_kept(
    api: Api,
) -> None:
    case_id = await _routed(api)
    assert (await _post(api, "wang.reader", f"/api/v1/cases/{case_id}/claim")).status == 200
    up = await _post(api, "wang.reader", f"/api/v1/cases/{case_id}/escalate", {"question": "?"})
    assert up.status == 200
    assert (await _post(api, "zhao.city", f"/api/v1/cases/{case_id}/claim")).status == 200
    draft = {"findings": "所见。", "impression": "印象。", "conclusion": "abnormal"}
    refused = await _post(
        api, "zhao.city", f"/api/v1/cases/{case_id}/escalate", {"question": "再上转？", **draft}
    )
    assert refused.status == 409
    assert "在 XY-CITY 之上没有上转阅片组" in (await refused.json())["detail"]
    # the draft went nowhere: the escalation and its preliminary report are one step
    drafts = await api.pool.fetchval("select count(*) from report where case_id = $1", case_id)
    assert drafts == 0
