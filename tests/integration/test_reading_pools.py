"""The administrator's console for routing: reading pools, the duty roster with its
exceptions, a rule naming a pool, and the preview, which says what real routing then does;
another network's administrator sees and changes none of it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from storage import network, rosters
from storage.records import FacilitySpec, Role, Tier, UserSpec
from teleradiology.http.web.common import PAGE_HEADER
from teleradiology.services import administration
from tests.factory import make_study
from tests.integration.conftest import Api
from tests.integration.dicomweb_support import route_all, store

ZONE = ZoneInfo("Asia/Shanghai")
POOL = {
    "code": "HB-DR-DAY",
    "name": "县医院放射白班",
    "specialty": "radiology",
    "facility": "HB-COUNTY",
    "members": ["wang.reader"],
}
RULE = {"modality": "DX", "pool": "HB-DR-DAY", "deadline_minutes": 90}


async def _send(api: Api, user: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    response = await api.client.request(method, path, json=body, headers=api.auth(user))
    return response.status, await response.json()


async def _pool_and_rule(api: Api) -> None:
    status, made = await _send(api, "hb.admin", "POST", "/api/v1/admin/pools", POOL)
    assert status == 201, made
    assert made["members"] == ["wang.reader"]
    assert made["active"] is True
    status, rules = await _send(
        api, "hb.admin", "POST", "/api/v1/admin/facilities/HB-MJ/routes", RULE
    )
    assert status == 200, rules
    assert rules["routes"][-1]["pool"] == "HB-DR-DAY"
    assert rules["routes"][-1]["first_read"] == "HB-COUNTY"


async def _preview(api: Api, at: datetime, user: str = "hb.admin") -> tuple[int, Any]:
    response = await api.client.get(
        "/api/v1/admin/routing/preview",
        params={
            "facility": "HB-MJ-LW",
            "modality": "dx",
            "priority": "routine",
            "at": at.isoformat(),
        },
        headers=api.auth(user),
    )
    return response.status, await response.json()


async def _routed(api: Api, patient: str) -> Any:
    uid = await store(api, "HB-MJ-LW", make_study(modality="DX", count=1, patient_id=patient))
    await route_all(api)
    row = await api.pool.fetchrow(
        "select c.id, f.code as pool_facility, c.deadline - c.created_at as window "
        "from reading_case c join study s on s.id = c.study_id "
        "join facility f on f.id = c.pool_facility_id where s.study_instance_uid = $1",
        uid,
    )
    assert row is not None
    async with api.pool.acquire() as conn:
        pool_code = await rosters.case_reading_pool(conn, row["id"])
    return {"facility": row["pool_facility"], "window": row["window"], "pool": pool_code}


async def test_the_preview_says_where_a_study_goes_and_routing_sends_it_there(api: Api) -> None:
    await _pool_and_rule(api)
    at = datetime.now(UTC)
    status, body = await _preview(api, at)
    assert status == 200, body
    (case,) = body["cases"]
    assert case["pool"] == "HB-DR-DAY"
    assert case["facility"] == "HB-COUNTY"
    assert case["due_in_minutes"] == 90
    assert case["escalation"] == "XY-CITY"
    due = datetime.fromisoformat(case["due_at"].replace("Z", "+00:00"))
    escalated = datetime.fromisoformat(case["escalated_at"].replace("Z", "+00:00"))
    assert abs(due - (at + timedelta(minutes=90))) < timedelta(seconds=1)
    assert abs(escalated - (at + timedelta(minutes=81))) < timedelta(seconds=1)

    routed = await _routed(api, "P-1")
    assert routed == {"facility": "HB-COUNTY", "window": timedelta(minutes=90), "pool": "HB-DR-DAY"}

    # a CT from the same village has no rule: the county's readers by default
    response = await api.client.get(
        "/api/v1/admin/routing/preview",
        params={"facility": "HB-MJ-LW", "modality": "CT"},
        headers=api.auth("hb.admin"),
    )
    ct = await response.json()
    assert ct["cases"][0]["pool"] is None
    assert ct["cases"][0]["reason"] == "default"


async def test_leave_takes_the_pool_off_duty_and_an_extra_shift_puts_it_back(api: Api) -> None:
    await _pool_and_rule(api)
    today = datetime.now(ZONE).date()
    status, leave = await _send(
        api,
        "hb.admin",
        "POST",
        "/api/v1/admin/users/wang.reader/duty-exceptions",
        {"date": today.isoformat(), "kind": "leave"},
    )
    assert status == 201, leave
    status, body = await _preview(api, datetime.now(UTC))
    assert body["cases"][0]["facility"] == "XY-CITY"
    assert body["cases"][0]["pool"] is None
    assert body["cases"][0]["reason"] == "no reader on duty at the first-read pool"
    assert (await _routed(api, "P-2"))["facility"] == "XY-CITY"

    status, _ = await _send(
        api, "hb.admin", "DELETE", f"/api/v1/admin/duty-exceptions/{leave['id']}"
    )
    assert status == 200
    # a weekly shift on another day only: off duty now; an extra shift today: on duty
    status, _ = await _send(
        api, "hb.admin", "PUT", "/api/v1/admin/users/wang.reader/duty", {"duty": []}
    )
    assert status == 200
    other_day = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[today.isoweekday() % 7]
    status, shifts = await _send(
        api,
        "hb.admin",
        "POST",
        "/api/v1/admin/users/wang.reader/shifts",
        {"days": [other_day], "from": "08:00", "until": "18:00"},
    )
    assert status == 200
    assert shifts["duty"] == [{"days": [other_day], "from": "08:00", "until": "18:00"}]
    assert (await _preview(api, datetime.now(UTC)))[1]["cases"][0]["facility"] == "XY-CITY"
    status, extra = await _send(
        api,
        "hb.admin",
        "POST",
        "/api/v1/admin/users/wang.reader/duty-exceptions",
        {"date": today.isoformat(), "kind": "extra", "from": "00:00", "until": "24:00"},
    )
    assert status == 201, extra
    assert (await _preview(api, datetime.now(UTC)))[1]["cases"][0]["pool"] == "HB-DR-DAY"
    assert (await _routed(api, "P-3"))["pool"] == "HB-DR-DAY"

    status, week = await _send(api, "hb.admin", "GET", "/api/v1/admin/pools/HB-DR-DAY/roster")
    assert status == 200
    assert [e["kind"] for e in week["exceptions"]] == ["extra"]
    assert week["members"][0]["duty"][0]["days"] == [other_day]

    audits = await api.pool.fetch(
        "select object_type, detail from audit where action = 'configure' "
        "and object_type in ('reading_pool', 'duty', 'duty_exception', 'facility_routing') "
        "order by seq"
    )
    kinds = [a["object_type"] for a in audits]
    assert kinds == [
        "reading_pool",
        "facility_routing",
        "duty_exception",
        "duty_exception",
        "duty",
        "duty",
        "duty_exception",
    ]
    assert all("before" in json.loads(a["detail"]) for a in audits)


async def test_a_pool_is_edited_and_deactivated_and_bad_members_are_refused(api: Api) -> None:
    await _pool_and_rule(api)
    status, problem = await _send(
        api, "hb.admin", "PATCH", "/api/v1/admin/pools/HB-DR-DAY", {"members": ["li.ecg"]}
    )
    assert status == 400
    assert "li.ecg 不是在用的影像阅片医生" in problem["detail"]
    status, problem = await _send(
        api, "hb.admin", "POST", "/api/v1/admin/pools", POOL | {"facility": "HB-MJ"}
    )
    assert status == 400
    assert "县级或市级" in problem["detail"]
    status, problem = await _send(api, "hb.admin", "POST", "/api/v1/admin/pools", POOL)
    assert status == 409
    status, changed = await _send(
        api,
        "hb.admin",
        "PATCH",
        "/api/v1/admin/pools/HB-DR-DAY",
        {"name": "放射夜班", "members": ["wang.reader", "zhou.reader"], "active": False},
    )
    assert status == 200, changed
    assert changed["members"] == ["wang.reader", "zhou.reader"]
    assert changed["active"] is False
    before = await api.pool.fetchval(
        "select detail from audit where object_type = 'reading_pool' order by seq desc limit 1"
    )
    before = json.loads(before)
    assert before["before"]["name"] == "县医院放射白班"
    assert before["after"]["name"] == "放射夜班"
    # a deactivated pool no longer decides: the rule reads at its facility, as any reader
    status, body = await _preview(api, datetime.now(UTC))
    assert body["cases"][0]["pool"] is None
    assert body["cases"][0]["facility"] == "HB-COUNTY"


async def _other_network_admin(api: Api) -> None:
    await administration.import_network(
        api.pool,
        [
            FacilitySpec(
                code="ZK-CITY", name="周口市中心医院", tier=Tier.CITY, parent=None, ae_titles=()
            )
        ],
        [
            UserSpec(
                username="zk.admin",
                display_name="zk",
                role=Role.ADMIN,
                facility="ZK-CITY",
                specialties=(),
                password_hash=None,
            )
        ],
    )
    found = await network.user_by_username(api.pool, "zk.admin")
    assert found is not None
    api.tokens["zk.admin"] = await network.create_token(api.pool, found.id)


async def test_another_networks_administrator_sees_and_changes_none_of_it(api: Api) -> None:
    await _pool_and_rule(api)
    status, leave = await _send(
        api,
        "hb.admin",
        "POST",
        "/api/v1/admin/users/wang.reader/duty-exceptions",
        {"date": "2030-01-02", "kind": "leave"},
    )
    assert status == 201
    await _other_network_admin(api)
    audits = await api.pool.fetchval("select count(*) from audit where action = 'configure'")
    status, listed = await _send(api, "zk.admin", "GET", "/api/v1/admin/pools")
    assert status == 200
    assert listed["pools"] == []
    refused = [
        ("PATCH", "/api/v1/admin/pools/HB-DR-DAY", {"active": False}),
        ("GET", "/api/v1/admin/pools/HB-DR-DAY/roster", None),
        ("POST", "/api/v1/admin/pools", POOL | {"code": "ZK-X"}),
        ("POST", "/api/v1/admin/users/wang.reader/shifts", {"from": "08:00", "until": "12:00"}),
        (
            "POST",
            "/api/v1/admin/users/wang.reader/duty-exceptions",
            {"date": "2030-01-03", "kind": "leave"},
        ),
        ("DELETE", f"/api/v1/admin/duty-exceptions/{leave['id']}", None),
        (
            "POST",
            "/api/v1/admin/facilities/HB-MJ/routes",
            {"modality": "CT", "first_read": "HB-COUNTY"},
        ),
        (
            "POST",
            "/api/v1/admin/facilities/ZK-CITY/routes",
            {"modality": "CT", "pool": "HB-DR-DAY"},
        ),
    ]
    for method, path, body in refused:
        status, problem = await _send(api, "zk.admin", method, path, body)
        assert status == 404, (method, path, status, problem)
    status, _ = await _preview(api, datetime.now(UTC), user="zk.admin")
    assert status == 404
    # a reader is refused too
    status, _ = await _send(api, "wang.reader", "GET", "/api/v1/admin/pools")
    assert status == 403
    assert (
        await api.pool.fetchval("select count(*) from audit where action = 'configure'") == audits
    )
    status, still = await _send(api, "hb.admin", "GET", "/api/v1/admin/pools")
    assert still["pools"][0]["active"] is True
    assert await api.pool.fetchval("select count(*) from duty_exception") == 1


async def _page(api: Api, user: str, path: str, **params: str) -> tuple[int, str]:
    found = await network.user_by_username(api.pool, user)
    assert found is not None
    session = await network.create_token(api.pool, found.id)
    response = await api.client.get(
        path, params=params, headers={"Cookie": f"telemed_session={session}"}
    )
    return response.status, await response.text()


async def test_the_pages_show_pools_rules_the_preview_and_the_week(api: Api) -> None:
    await _pool_and_rule(api)
    status, html = await _page(
        api, "hb.admin", "/admin/routing", facility="HB-MJ-LW", modality="DX", at="2030-01-07T09:00"
    )
    assert status == 200, html
    assert 'data-pool="HB-DR-DAY"' in html
    assert 'data-sender="HB-MJ"' in html
    # 09:00 in Shanghai is 01:00 UTC; due 90 minutes later
    assert 'data-due="2030-01-07T02:30:00+00:00"' in html
    assert "时限 1.5 h" in html
    status, html = await _page(
        api, "hb.admin", "/admin/routing/pools/HB-DR-DAY/roster", week="2030-01-09"
    )
    assert status == 200, html
    assert 'data-member="wang.reader"' in html
    assert "2030-01-07" in html
    assert "00:00–24:00" in html
    await _other_network_admin(api)
    status, _ = await _page(api, "zk.admin", "/admin/routing/pools/HB-DR-DAY/roster")
    assert status == 404
    status, html = await _page(api, "zk.admin", "/admin/routing")
    assert status == 200
    assert "HB-DR-DAY" not in html


async def test_the_deadlines_form_sets_the_policy_and_the_audit_keeps_what_was_before(
    api: Api,
) -> None:
    found = await network.user_by_username(api.pool, "xy.admin")
    assert found is not None
    session = await network.create_token(api.pool, found.id)
    headers = {"Cookie": f"telemed_session={session}", PAGE_HEADER: "1"}
    form = {"urgent": 20, "routine": 600, "low": 2880, "stemi": 8, "critical_ack": 10}
    response = await api.client.post(
        "/admin/routing/facilities/XY-CITY/policy",
        json=form | {"at_risk_share": 0.25},
        headers=headers,
    )
    assert response.status == 200, await response.text()
    status, html = await _page(api, "xy.admin", "/admin/routing")
    assert status == 200
    assert '<tr data-policy="XY-CITY">' in html
    assert "<td>600 min</td>" in html
    detail = json.loads(
        await api.pool.fetchval(
            "select detail from audit where object_type = 'facility_routing' "
            "order by seq desc limit 1"
        )
    )
    assert detail["policy"]["deadlines"]["medium"] == "10:00:00"
    assert detail["before"]["policy"]["deadlines"]["medium"] == "1 day, 0:00:00"
    # the preview uses the new window and share: routine 600 min, escalated at 450 min
    at = datetime(2030, 1, 7, 1, 0, tzinfo=UTC)
    status, body = await _preview(api, at, user="xy.admin")
    assert status == 200
    assert body["cases"][0]["due_in_minutes"] == 600
    assert body["cases"][0]["escalated_at"] == "2030-01-07T08:30:00Z"
    # without the page's header the change is refused
    response = await api.client.post(
        "/admin/routing/facilities/XY-CITY/policy",
        json=form | {"at_risk_share": 0.5},
        headers={"Cookie": headers["Cookie"]},
    )
    assert response.status == 403
