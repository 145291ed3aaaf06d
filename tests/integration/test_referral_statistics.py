"""Referral statistics as county networks report them, checked against a known set: up- and
down-referrals, accepted, declined, arrived (到位率 = arrived / accepted) and returned down,
per facility and month (the network's local month: a referral raised at 00:30 Beijing time
on 1 November is November's), in the API and on the administrator's dashboard.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from teleradiology.core.referrals import period_of
from tests.factory import make_study
from tests.integration.conftest import Api
from tests.integration.dicomweb_support import store
from tests.integration.test_ecg_reading_page import session
from tests.integration.test_referral_documents import ok, patient_of

RETURN = {"kind": "outpatient", "diagnosis": "肺炎，门诊治疗。", "follow_up": "一周后复诊。"}
ACCEPT = {"accept": True, "appointment_at": "2026-11-20T09:00:00+08:00"}


async def _up(api: Api, clinic: str, code: str, n: int, to: str = "HB-COUNTY") -> int:
    patient_id = f"{code}-S{n}"
    await store(api, code, make_study(modality="DX", count=1, patient_id=patient_id, size=8))
    body = {"patient_id": await patient_of(api, code, patient_id), "to": to, "reason": "转诊"}
    raised = await ok(api, clinic, "POST", "/api/v1/referrals", body)
    referral: int = raised["id"]
    return referral


async def _steps(api: Api, referral: int, *steps: str) -> None:
    bodies: dict[str, Any] = {"respond": ACCEPT, "arrive": {}, "return": RETURN}
    for step in steps:
        body = {"accept": False, "reason": "床位已满"} if step == "decline" else bodies[step]
        path = "respond" if step == "decline" else step
        await ok(api, "hb.admin", "POST", f"/api/v1/referrals/{referral}/{path}", body)


async def _raised_at(api: Api, referral: int, at: str) -> None:
    await api.pool.execute(
        "update referral set created_at = $2::text::timestamptz where id = $1", referral, at
    )


async def known_referrals(api: Api) -> None:
    """The set the figures below are computed from."""
    wd = [await _up(api, "xlwd.clinic", "HB-XL-WD", n) for n in range(1, 5)]
    await _steps(api, wd[0], "respond", "arrive", "return")
    await _steps(api, wd[1], "respond", "arrive")
    await _steps(api, wd[2], "respond")
    await _steps(api, wd[3], "decline")
    to_city = await _up(api, "xlwd.clinic", "HB-XL-WD", 5, to="XY-CITY")
    border = await _up(api, "xlzz.clinic", "HB-XL-ZZ", 1)
    await _steps(api, border, "respond", "arrive")
    october = await _up(api, "xlzz.clinic", "HB-XL-ZZ", 2)
    september = await _up(api, "xlzz.clinic", "HB-XL-ZZ", 3)
    down = await ok(
        api,
        "hb.admin",
        "POST",
        "/api/v1/referrals",
        {
            "direction": "down",
            "to": "HB-XL-WD",
            "in_reply_to": wd[0],
            "reason": "康复期转回",
            "discharge_summary": "肺炎治愈。",
            "follow_up_plan": "一周后复诊。",
        },
    )
    for referral in [*wd, to_city, down["id"]]:
        await _raised_at(api, referral, "2026-11-12T02:00:00Z")
    await _raised_at(api, border, "2026-10-31T16:30:00Z")  # 2026-11-01 00:30 in Beijing
    await _raised_at(api, october, "2026-10-15T02:00:00Z")
    await _raised_at(api, september, "2026-09-15T02:00:00Z")


def _figures(row: dict[str, Any]) -> tuple[Any, ...]:
    names = ("up", "accepted", "declined", "arrived", "arrival_rate", "returned", "down")
    return tuple(row[n] for n in names)


#: (facility, month) → up, accepted, declined, arrived, 到位率, returned, down
EXPECTED = {
    ("HB-COUNTY", "2026-11"): (0, 0, 0, 0, None, 0, 2),  # a down-referral and a return down
    ("HB-XL-WD", "2026-11"): (5, 3, 1, 2, 0.6667, 1, 0),
    ("HB-XL-ZZ", "2026-10"): (1, 0, 0, 0, None, 0, 0),
    ("HB-XL-ZZ", "2026-11"): (1, 1, 0, 1, 1.0, 0, 0),
}


async def test_the_statistics_count_each_step_per_facility_and_month(api: Api) -> None:
    await known_referrals(api)
    url = "/api/v1/referrals/statistics?from=2026-10-01&to=2026-11-30"
    answer = await ok(api, "hb.admin", "GET", url)
    assert (answer["since"], answer["until"], answer["time_zone"]) == (
        "2026-10-01",
        "2026-11-30",
        "Asia/Shanghai",
    )
    got = {(r["facility"], r["month"]): _figures(r) for r in answer["rows"]}
    assert got == EXPECTED
    assert _figures(answer["total"]) == (7, 4, 1, 3, 0.75, 1, 2)
    # the city's administrator runs the whole network: the same figures
    city = await ok(api, "xy.admin", "GET", url)
    assert city["rows"] == answer["rows"]
    # September was outside the period
    wider = await ok(
        api, "hb.admin", "GET", "/api/v1/referrals/statistics?from=2026-09-01&to=2026-11-30"
    )
    assert wider["total"]["up"] == 8
    # by default: the twelve months (from the first of the month) to today, local days
    default = await ok(api, "hb.admin", "GET", "/api/v1/referrals/statistics")
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    assert (default["since"], default["until"]) == tuple(
        d.isoformat() for d in period_of(None, None, today)
    )
    for user in ("xlwd.clinic", "wang.reader"):
        response = await api.client.get(url, headers=api.auth(user))
        assert response.status == 403
    bad = await api.client.get(
        "/api/v1/referrals/statistics?from=2026-12-01&to=2026-11-01", headers=api.auth("hb.admin")
    )
    assert bad.status == 400
    assert "晚于" in (await bad.json())["detail"]


async def test_the_dashboard_shows_the_referrals_per_facility_and_month(api: Api) -> None:
    await known_referrals(api)
    page = await api.client.get(
        "/admin?since=2026-10-01&until=2026-11-30", headers=await session(api, "hb.admin")
    )
    assert page.status == 200
    html = await page.text()
    section = html[html.index('id="referral-months"') :]
    row = re.search(r'data-facility="HB-XL-WD" data-month="2026-11">(.*?)</tr>', section, re.S)
    assert row is not None
    cells = dict(re.findall(r'<td class="(\w+)">([^<]*)</td>', row.group(1)))
    assert cells == {
        "up": "5",
        "accepted": "3",
        "declined": "1",
        "arrived": "2",
        "rate": "66.7%",
        "returned": "1",
        "down": "0",
    }
    total = re.search(r'id="referral-months-total">(.*?)</tr>', section, re.S)
    assert total is not None
    assert '<td class="rate">75.0%</td>' in total.group(1)
