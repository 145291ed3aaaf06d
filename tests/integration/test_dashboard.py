"""The administrator's dashboard on a known small set of cases, its figures computed by hand
(percentile_cont: linear between the two nearest ranks), through the JSON API and the CSV;
the filters; another network's administrator, a clinic and a reader see none of it.

The cases are loaded the way ``bench/dashboard.py`` loads a million (tests/dashboard_data),
through the triggers of migration 0065; the browser test drives one case through the
service's own paths.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from storage.records import FacilitySpec, Role, Tier, UserSpec
from teleradiology.services import administration
from tests.dashboard_data import CaseSpec, ReferralSpec, load_cases, load_referrals
from tests.integration.conftest import Api

ZONE = ZoneInfo("Asia/Shanghai")
H = 3600.0
M = 60.0


def _day() -> datetime:
    """09:00 local, three days ago: every case below is received and reported that day."""
    day = datetime.now(ZONE).date() - timedelta(days=3)
    return datetime.combine(day, time(9), ZONE)


#: The cases, each received at 09:00 that day: the sending facility, modality, priority,
#: deadline, then minutes to the first final report, from it to the acknowledgement, and to a
#: return for quality (None: it did not happen), and the reader who signed.
_TABLE: list[tuple[str, str, str, float, float | None, float | None, float | None, str | None]] = [
    # 1..6 reported (minutes to final: 30 60 90 10 20 300); case 2 misses its deadline
    ("HB-XL-WD", "DX", "medium", 4 * H, 30, 10, None, "wang.reader"),
    ("HB-XL-WD", "CT", "high", 30 * M, 60, 20, None, "wang.reader"),
    ("HB-XL", "DX", "medium", 4 * H, 90, None, None, "zhou.reader"),
    ("HB-MJ-LW", "ECG", "high", 30 * M, 10, 5, None, "li.ecg"),
    ("HB-MJ-LW", "ECG", "medium", 4 * H, 20, 15, None, "li.ecg"),
    ("HB-FH", "CT", "low", 24 * H, 300, 60, None, "zhou.reader"),
    # 7: returned to the clinic for quality; 8: still open
    ("HB-XL-WD", "DX", "medium", 4 * H, None, None, 15, None),
    ("HB-FH-CG", "US", "medium", 4 * H, None, None, None, None),
    # 9: another county of the city's network, not the county administrator's
    ("GS-COUNTY", "DX", "medium", 4 * H, 45, None, None, "gs.reader"),
]


def _seconds(minutes: float | None) -> float | None:
    return None if minutes is None else minutes * M


def _cases() -> list[CaseSpec]:
    return [
        CaseSpec(
            facility=facility,
            pool="GS-COUNTY" if facility.startswith("GS") else "HB-COUNTY",
            modality=modality,
            priority=priority,
            received_at=_day(),
            deadline_s=deadline,
            final_after_s=_seconds(final),
            ack_after_s=_seconds(ack),
            returned_after_s=_seconds(returned),
            reader=reader,
        )
        for facility, modality, priority, deadline, final, ack, returned, reader in _TABLE
    ]


async def _loaded(api: Api) -> None:
    await load_cases(api.pool, _cases())
    at = _day()
    await load_referrals(
        api.pool,
        [
            ReferralSpec("up", "HB-XL-WD", "HB-COUNTY", "requested", at, "wang.reader"),
            ReferralSpec("up", "HB-MJ-LW", "HB-COUNTY", "accepted", at, "wang.reader"),
            ReferralSpec("down", "HB-COUNTY", "HB-XL-WD", "accepted", at, "wang.reader"),
            ReferralSpec("up", "GS-COUNTY", "XY-CITY", "requested", at, "gs.reader"),
        ],
    )


async def _get(api: Api, user: str, path: str, status: int = 200) -> Any:
    response = await api.client.get(path, headers=api.auth(user))
    assert response.status == status, (path, await response.text())
    return await response.json()


def _by_key(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["key"]: r for r in rows}


def _p(row: dict[str, Any]) -> tuple[float, float]:
    return row["final_p50_minutes"], row["final_p90_minutes"]


async def test_the_figures_by_each_dimension_are_those_computed_by_hand(api: Api) -> None:
    await _loaded(api)
    d = await _get(api, "hb.admin", "/api/v1/admin/dashboard")
    s = d["summary"]
    assert (s["cases"], *_p(s)) == (6, 45.0, 195.0)  # 10 20 30 | 60 90 300
    assert (s["sla_met"], s["sla_rate"]) == (5, 0.8333)
    assert (s["acknowledged"], s["ack_p50_minutes"], s["ack_p90_minutes"]) == (5, 15.0, 44.0)
    tier = _by_key(d["tier"])
    assert set(tier) == {"village", "township"}  # GS-COUNTY is another county's
    assert (tier["village"]["cases"], *_p(tier["village"])) == (4, 25.0, 51.0)
    assert tier["village"]["sla_rate"] == 0.75
    assert _p(tier["township"]) == (195.0, 279.0)
    assert tier["township"]["label"] == "乡镇卫生院"
    specialty = _by_key(d["specialty"])
    assert _p(specialty["radiology"]) == (75.0, 237.0)
    assert _p(specialty["ecg"]) == (15.0, 19.0)
    modality = _by_key(d["modality"])
    assert {k: _p(v) for k, v in modality.items()} == {
        "DX": (60.0, 84.0),
        "CT": (180.0, 276.0),
        "ECG": (15.0, 19.0),
    }
    priority = _by_key(d["priority"])
    assert _p(priority["high"]) == (35.0, 55.0)
    assert priority["high"]["sla_rate"] == 0.5
    assert _p(priority["medium"]) == (30.0, 78.0)
    assert _p(priority["low"]) == (300.0, 300.0)
    reader = _by_key(d["reader"])
    assert {k: (v["cases"], *_p(v)) for k, v in reader.items()} == {
        "wang.reader": (2, 45.0, 57.0),
        "zhou.reader": (2, 195.0, 279.0),
        "li.ecg": (2, 15.0, 19.0),
    }
    assert reader["li.ecg"]["facility"] == "HB-COUNTY"
    facility = _by_key(d["facility"])
    assert {k: v["final_p50_minutes"] for k, v in facility.items()} == {
        "HB-XL-WD": 45.0,
        "HB-XL": 90.0,
        "HB-MJ-LW": 15.0,
        "HB-FH": 300.0,
    }
    # one day: the trend has that day, in all and per specialty
    day = _day().date().isoformat()
    trend = {(t["bucket"], t["specialty"]): t for t in d["trend"]}
    assert set(trend) == {(day, None), (day, "radiology"), (day, "ecg")}
    assert _p(trend[(day, None)]) == (45.0, 195.0)
    assert d["by"] == "day"
    volumes = {(v["bucket"], v["specialty"]): v["cases"] for v in d["volumes"]}
    assert volumes == {(day, "radiology"): 6, (day, "ecg"): 2}
    returns = {r["facility"]: (r["cases"], r["returned"], r["returned_rate"]) for r in d["returns"]}
    assert returns["HB-XL-WD"] == (3, 1, 0.3333)
    assert returns["HB-FH-CG"] == (1, 0, 0.0)
    referrals = {
        (r["direction"], r["status"]): r["referrals"] for r in d["referrals"] if r["bucket"] is None
    }
    assert referrals == {("up", "requested"): 1, ("up", "accepted"): 1, ("down", "accepted"): 1}
    assert {r["username"] for r in d["choices"]["readers"]} == set(reader)


async def test_the_filters_narrow_the_figures(api: Api) -> None:
    await _loaded(api)
    base = "/api/v1/admin/dashboard"
    ecg = await _get(api, "hb.admin", f"{base}?specialty=ecg")
    assert (ecg["summary"]["cases"], *_p(ecg["summary"])) == (2, 15.0, 19.0)
    assert ecg["filters"] == {"specialty": "ecg"}
    township = await _get(api, "hb.admin", f"{base}?facility=HB-XL")  # and its villages
    assert (township["summary"]["cases"], *_p(township["summary"])) == (3, 60.0, 84.0)
    reader = await _get(api, "hb.admin", f"{base}?reader=zhou.reader&tier=township")
    assert _p(reader["summary"]) == (195.0, 279.0)
    urgent = await _get(api, "hb.admin", f"{base}?priority=high&modality=CT")
    assert (urgent["summary"]["cases"], urgent["summary"]["sla_met"]) == (1, 0)
    # the form's "all" is an empty value
    every = await _get(api, "hb.admin", f"{base}?tier=&facility=&by=")
    assert every["summary"]["cases"] == 6
    # a period without the day of the cases has none of them
    day = _day().date()
    before = await _get(
        api, "hb.admin", f"{base}?since={day - timedelta(days=9)}&until={day - timedelta(days=1)}"
    )
    assert before["summary"]["cases"] == 0
    assert before["summary"]["final_p50_minutes"] is None
    month = await _get(api, "hb.admin", f"{base}?since={day - timedelta(days=200)}&until={day}")
    assert month["by"] == "month"
    # the city's administrator sees both counties
    city = await _get(api, "xy.admin", base)
    assert city["summary"]["cases"] == 7
    assert "county" in _by_key(city["tier"])


async def test_bad_filters_get_a_clear_error(api: Api) -> None:
    base = "/api/v1/admin/dashboard"
    answer = await _get(api, "hb.admin", f"{base}?since=2026-02-30", 400)
    assert "since" in answer["detail"]
    answer = await _get(api, "hb.admin", f"{base}?since=2026-03-01&until=2026-02-01", 400)
    assert "'since' 不能晚于 'until'" in answer["detail"]
    answer = await _get(api, "hb.admin", f"{base}?since=2020-01-01&until=2026-01-01", 400)
    assert "至多 731 天" in answer["detail"]
    answer = await _get(api, "hb.admin", f"{base}?tier=hamlet", 400)
    assert "tier" in answer["detail"]
    answer = await _get(api, "hb.admin", f"{base}?facility=GS-COUNTY", 404)
    assert "不在您的网络中" in answer["detail"]
    answer = await _get(api, "hb.admin", f"{base}?reader=nobody", 404)
    assert "没有名为 'nobody' 的阅片医生" in answer["detail"]


async def test_every_table_downloads_as_csv_with_the_figures(api: Api) -> None:
    await _loaded(api)
    for table in (
        "tier",
        "facility",
        "specialty",
        "modality",
        "priority",
        "reader",
        "trend",
        "volumes",
        "returns",
        "referrals",
    ):
        response = await api.client.get(
            f"/api/v1/admin/dashboard/{table}.csv?specialty=radiology", headers=api.auth("hb.admin")
        )
        assert response.status == 200, table
        assert response.content_type == "text/csv"
        assert "attachment" in response.headers["Content-Disposition"]
        rows = list(csv.DictReader(io.StringIO((await response.read()).decode("utf-8-sig"))))
        assert rows, table
    response = await api.client.get(
        "/api/v1/admin/dashboard/modality.csv", headers=api.auth("hb.admin")
    )
    rows = list(csv.DictReader(io.StringIO((await response.read()).decode("utf-8-sig"))))
    assert {r["key"]: r["final_p50_minutes"] for r in rows} == {
        "DX": "60.0",
        "CT": "180.0",
        "ECG": "15.0",
    }
    missing = await api.client.get(
        "/api/v1/admin/dashboard/patients.csv", headers=api.auth("hb.admin")
    )
    assert missing.status == 404


async def _other_network(api: Api) -> None:
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
    user = await api.pool.fetchval("select id from app_user where username = 'zk.admin'")
    from storage import network

    api.tokens["zk.admin"] = await network.create_token(api.pool, user)


async def test_another_network_s_administrator_sees_none_of_it(api: Api) -> None:
    await _loaded(api)
    await _other_network(api)
    other = await _get(api, "zk.admin", "/api/v1/admin/dashboard")
    assert other["summary"]["cases"] == 0
    for name in (
        "tier",
        "facility",
        "specialty",
        "modality",
        "priority",
        "reader",
        "trend",
        "volumes",
        "returns",
        "referrals",
    ):
        assert other[name] == [], name
    assert [f["code"] for f in other["choices"]["facilities"]] == ["ZK-CITY"]
    assert other["choices"]["readers"] == []
    await _get(api, "zk.admin", "/api/v1/admin/dashboard?facility=HB-XL", 404)
    csv_body = await api.client.get(
        "/api/v1/admin/dashboard/facility.csv", headers=api.auth("zk.admin")
    )
    assert "HB-" not in (await csv_body.read()).decode("utf-8-sig")
    for user in ("xlwd.clinic", "wang.reader"):
        await _get(api, user, "/api/v1/admin/dashboard", 403)
        await _get(api, user, "/api/v1/admin/dashboard/tier.csv", 403)


@pytest.mark.parametrize("table", ["facility", "reader"])
async def test_an_empty_table_downloads_with_its_columns(api: Api, table: str) -> None:
    response = await api.client.get(
        f"/api/v1/admin/dashboard/{table}.csv", headers=api.auth("hb.admin")
    )
    body = (await response.read()).decode("utf-8-sig")
    assert body.splitlines()[0].startswith("cases,final_p50_minutes")
    assert len(body.splitlines()) == 1
