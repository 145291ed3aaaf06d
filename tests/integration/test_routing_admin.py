"""Routing is data: administrators change deadlines, rules and duty rosters through the API,
and the next study is routed by what they set; the worklist suggests the least-loaded
reader on duty."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tests.factory import make_study
from tests.integration.conftest import Api
from tests.integration.dicomweb_support import facility, route_all, store

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _not_today() -> list[str]:
    """A weekday that is not today in the network's time zone: a shift off duty now."""
    today = datetime.now(ZoneInfo("Asia/Shanghai")).isoweekday()
    return [_DAYS[today % 7]]


async def _put(api: Api, user: str, path: str, body: Any) -> tuple[int, Any]:
    response = await api.client.put(path, json=body, headers=api.auth(user))
    return response.status, await response.json()


async def _case(api: Api, uid: str) -> Any:
    row = await api.pool.fetchrow(
        "select c.id, c.pool_facility_id, c.escalation_facility_id, c.deadline - c.created_at "
        "as window from reading_case c join study s on s.id = c.study_id "
        "where s.study_instance_uid = $1",
        uid,
    )
    assert row is not None
    return row


async def test_deadlines_are_the_networks_and_an_administrator_changes_them(api: Api) -> None:
    got = await api.client.get("/api/v1/admin/routing", headers=api.auth("xy.admin"))
    assert got.status == 200
    body = await got.json()
    city = next(f for f in body["facilities"] if f["code"] == "XY-CITY")
    assert city["policy"]["deadline_minutes"] == {
        "urgent": 30,
        "routine": 1440,
        "low": 4320,
        "stemi": 10,
    }
    assert city["policy"]["critical_ack_minutes"] == 15
    township = next(f for f in body["facilities"] if f["code"] == "HB-XL")
    assert township["routes"] == [
        {
            "modality": None,
            "specialty": "ecg",
            "priority": None,
            "first_read": "HB-XL",
            "escalation": "HB-COUNTY",
            "deadline_minutes": None,
            "pool": None,
        }
    ]

    status, _ = await _put(
        api,
        "xy.admin",
        "/api/v1/admin/facilities/XY-CITY/policy",
        {"deadline_minutes": {"urgent": 20, "routine": 120, "stemi": 8}},
    )
    assert status == 200
    uid = await store(api, "HB-MJ-LW", make_study(modality="DX", count=1, patient_id="D-1"))
    await route_all(api)
    assert (await _case(api, uid))["window"] == timedelta(minutes=120)

    audit = await api.pool.fetchval(
        "select count(*) from audit where action = 'configure' and object_id = 'XY-CITY'"
    )
    assert audit == 1


async def test_a_bad_rule_is_refused_with_a_problem_and_changes_nothing(api: Api) -> None:
    status, problem = await _put(
        api,
        "hb.admin",
        "/api/v1/admin/facilities/HB-MJ/routes",
        {"routes": [{"specialty": "dermatology", "first_read": "XY-CITY"}]},
    )
    assert status == 400
    assert "dermatology" in problem["detail"]
    status, problem = await _put(
        api,
        "hb.admin",
        "/api/v1/admin/facilities/HB-MJ/policy",
        {"deadline_minutes": {"urgent": -5}},
    )
    assert status == 400
    assert "须为正数" in problem["detail"]
    status, _ = await _put(
        api,
        "hb.admin",
        "/api/v1/admin/facilities/HB-MJ/routes",
        {"routes": [{"first_read": "NO-SUCH"}]},
    )
    assert status == 404
    # another county's hospital is not a reader the county may name (the city above it is)
    for other in ("GS-COUNTY",):
        for rule in ({"first_read": other}, {"first_read": "HB-COUNTY", "escalation": other}):
            status, problem = await _put(
                api, "hb.admin", "/api/v1/admin/facilities/HB-MJ/routes", {"routes": [rule]}
            )
            assert status == 404, (rule, problem)
            assert "机构 GS-COUNTY 不在网络中" in problem["detail"]
    rules = await api.pool.fetchval("select count(*) from routing_rule")
    assert rules == 1  # only the demo network's township ECG rule


async def test_only_administrators_configure_and_only_their_own_network(api: Api) -> None:
    rule = {"routes": [{"first_read": "XY-CITY"}]}
    for user in ("wang.reader", "xlwd.clinic"):
        status, _ = await _put(api, user, "/api/v1/admin/facilities/HB-MJ/routes", rule)
        assert status == 403, user
    # the county administrator does not configure the city above it
    status, _ = await _put(api, "hb.admin", "/api/v1/admin/facilities/XY-CITY/routes", rule)
    assert status == 404
    status, _ = await _put(api, "hb.admin", "/api/v1/admin/users/zhao.city/duty", {"duty": []})
    assert status == 404
    listed = await (
        await api.client.get("/api/v1/admin/routing", headers=api.auth("hb.admin"))
    ).json()
    codes = {f["code"] for f in listed["facilities"]}
    assert "XY-CITY" not in codes
    assert "GS-COUNTY" not in codes
    assert "HB-MJ-HZ" in codes


async def test_a_rule_set_through_the_api_routes_the_next_study(api: Api) -> None:
    status, body = await _put(
        api,
        "hb.admin",
        "/api/v1/admin/facilities/HB-MJ/routes",
        {
            "routes": [
                {"modality": "CT", "first_read": "XY-CITY", "deadline_minutes": 90},
                {"specialty": "ecg", "first_read": "HB-MJ", "escalation": "HB-COUNTY"},
            ]
        },
    )
    assert status == 200, body
    ct = await store(api, "HB-MJ-LW", make_study(modality="CT", count=1, patient_id="C-1"))
    cr = await store(api, "HB-MJ-LW", make_study(modality="CR", count=1, patient_id="C-2"))
    assert await route_all(api) == 2
    city, county = await facility(api, "XY-CITY"), await facility(api, "HB-COUNTY")
    ct_case = await _case(api, ct)
    assert ct_case["pool_facility_id"] == city.id
    assert ct_case["window"] == timedelta(minutes=90)
    cr_case = await _case(api, cr)
    assert (cr_case["pool_facility_id"], cr_case["escalation_facility_id"]) == (
        county.id,
        city.id,
    )
    reason = await api.pool.fetchval(
        "select detail->>'reason' from event where case_id = $1 and kind = 'routed'",
        ct_case["id"],
    )
    assert reason == "rule"
    # an empty list goes back to the defaults
    status, _ = await _put(api, "hb.admin", "/api/v1/admin/facilities/HB-MJ/routes", {"routes": []})
    assert status == 200
    again = await store(api, "HB-MJ-LW", make_study(modality="CT", count=1, patient_id="C-3"))
    await route_all(api)
    assert (await _case(api, again))["pool_facility_id"] == county.id


async def test_with_no_county_reader_on_duty_the_case_goes_to_the_city(api: Api) -> None:
    off = {"duty": [{"days": _not_today(), "from": "00:00", "until": "24:00"}]}
    for reader in ("wang.reader", "zhou.reader"):
        status, body = await _put(api, "hb.admin", f"/api/v1/admin/users/{reader}/duty", off)
        assert status == 200, body
        assert body["duty"] == [{"days": _not_today(), "from": "00:00", "until": "24:00"}]
    uid = await store(api, "HB-MJ-LW", make_study(modality="DX", count=1, patient_id="O-1"))
    await route_all(api)
    case = await _case(api, uid)
    assert case["pool_facility_id"] == (await facility(api, "XY-CITY")).id
    reason = await api.pool.fetchval(
        "select detail->>'reason' from event where case_id = $1 and kind = 'routed'", case["id"]
    )
    assert reason == "no reader on duty at the first-read pool"
    # back on duty (no schedule: always): the next study stays in the county
    status, _ = await _put(api, "hb.admin", "/api/v1/admin/users/zhou.reader/duty", {"duty": []})
    assert status == 200
    uid = await store(api, "HB-MJ-LW", make_study(modality="DX", count=1, patient_id="O-2"))
    await route_all(api)
    assert (await _case(api, uid))["pool_facility_id"] == (await facility(api, "HB-COUNTY")).id


async def test_the_worklist_suggests_the_least_loaded_reader_on_duty(api: Api) -> None:
    always: dict[str, list[Any]] = {"duty": []}
    for reader in ("wang.reader", "zhou.reader"):
        assert (await _put(api, "hb.admin", f"/api/v1/admin/users/{reader}/duty", always))[0] == 200
    first = await store(api, "HB-MJ-LW", make_study(modality="DX", count=1, patient_id="L-1"))
    await store(api, "HB-MJ-LW", make_study(modality="DX", count=1, patient_id="L-2"))
    await route_all(api)
    held = (await _case(api, first))["id"]
    claimed = await api.client.post(f"/api/v1/cases/{held}/claim", headers=api.auth("wang.reader"))
    assert claimed.status == 200

    async def suggestion() -> tuple[str | None, dict[str, Any]]:
        listed = await (
            await api.client.get("/api/v1/worklist", headers=api.auth("hb.admin"))
        ).json()
        open_case = next(c for c in listed["cases"] if c["id"] != held)
        readers = {r["username"]: r for r in listed["readers"] if r["specialty"] == "radiology"}
        return open_case["suggested_reader"], readers

    suggested, readers = await suggestion()
    assert readers["wang.reader"]["open_cases"] == 1
    assert readers["zhou.reader"]["open_cases"] == 0
    assert suggested == "zhou.reader"
    # zhou goes off duty: the loaded reader on duty is suggested rather than nobody
    off = {"duty": [{"days": _not_today(), "from": "08:00", "until": "18:00"}]}
    assert (await _put(api, "hb.admin", "/api/v1/admin/users/zhou.reader/duty", off))[0] == 200
    suggested, readers = await suggestion()
    assert readers["zhou.reader"]["on_duty"] is False
    assert suggested == "wang.reader"
