"""The dashboard's escalations to the city and second-read discrepancy rates on a known set
of cases, computed by hand (percentile_cont: linear between the two nearest ranks), as JSON,
as CSV and on the page; another network's cases count for none of it."""

from __future__ import annotations

import csv
import io
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tests.dashboard_data import CaseSpec, load_cases
from tests.integration.conftest import Api

ZONE = ZoneInfo("Asia/Shanghai")
M = 60.0


def _day() -> datetime:
    day = datetime.now(ZONE).date() - timedelta(days=2)
    return datetime.combine(day, time(8), ZONE)


#: facility, pool, modality, priority, deadline (minutes), minutes to the escalation, to
#: the final report, its reader, the first reader (None: escalated by the deadline watch),
#: whether the final report agreed with the first reader's.
_TABLE: list[
    tuple[
        str, str, str, str, float, float | None, float | None, str | None, str | None, bool | None
    ]
] = [
    # answered in 60, 40 and 100 minutes after going up; case 2 misses its deadline
    ("HB-XL-WD", "HB-COUNTY", "DX", "medium", 240, 20, 80, "zhao.city", "wang.reader", True),
    ("HB-XL-WD", "HB-COUNTY", "CT", "high", 30, 10, 50, "zhao.city", "wang.reader", False),
    ("HB-MJ-LW", "HB-COUNTY", "DX", "medium", 240, 30, 130, "zhao.city", "zhou.reader", False),
    # escalated by the deadline watch, not answered yet
    ("HB-FH", "HB-COUNTY", "DX", "low", 1440, 60, None, None, None, None),
    # read at the county, never escalated
    ("HB-FH", "HB-COUNTY", "DX", "medium", 240, None, 30, "wang.reader", None, None),
    # another county's escalation: not the Huaibin administrator's
    ("GS-COUNTY", "GS-COUNTY", "DX", "medium", 240, 15, 45, "zhao.city", "gs.reader", False),
]


def _cases() -> list[CaseSpec]:
    return [
        CaseSpec(
            facility=facility,
            pool=pool,
            modality=modality,
            priority=priority,
            received_at=_day(),
            deadline_s=deadline * M,
            final_after_s=final * M if final is not None else None,
            reader=reader,
            escalated_after_s=up * M if up is not None else None,
            escalated_to="XY-CITY" if up is not None else None,
            first_reader=first,
            agreed=agreed,
        )
        for facility, pool, modality, priority, deadline, up, final, reader, first, agreed in _TABLE
    ]


async def _get(api: Api, user: str, path: str) -> Any:
    response = await api.client.get(path, headers=api.auth(user))
    assert response.status == 200, (path, await response.text())
    return await response.json()


def _keyed(rows: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["dimension"], r["key"]): r for r in rows}


async def test_escalations_by_pool_specialty_and_priority_are_those_computed_by_hand(
    api: Api,
) -> None:
    await load_cases(api.pool, _cases())
    found = _keyed((await _get(api, "hb.admin", "/api/v1/admin/dashboard"))["escalations"])
    every = found["all", ""]
    assert (every["escalated"], every["answered"]) == (4, 3)
    # 40 60 100: p50 60, p90 60 + 0.8 * 40
    assert (every["answer_p50_minutes"], every["answer_p90_minutes"]) == (60.0, 92.0)
    assert (every["sla_met"], every["sla_rate"]) == (2, 0.6667)  # of those answered
    assert found["pool", "HB-COUNTY"]["escalated"] == 4
    assert found["pool", "HB-COUNTY"]["label"]  # the pool's name
    assert ("pool", "GS-COUNTY") not in found
    assert found["specialty", "radiology"]["escalated"] == 4
    medium = found["priority", "medium"]
    assert (medium["escalated"], medium["answer_p50_minutes"]) == (2, 80.0)
    assert medium["answer_p90_minutes"] == 96.0  # 60 + 0.9 * 40
    low = found["priority", "low"]
    assert (low["escalated"], low["answered"], low["answer_p50_minutes"]) == (1, 0, None)
    city = _keyed((await _get(api, "xy.admin", "/api/v1/admin/dashboard"))["escalations"])
    assert city["all", ""]["escalated"] == 5
    assert city["pool", "GS-COUNTY"]["escalated"] == 1


async def test_second_read_discrepancies_by_first_reader_specialty_and_facility(
    api: Api,
) -> None:
    await load_cases(api.pool, _cases())
    found = _keyed((await _get(api, "hb.admin", "/api/v1/admin/dashboard"))["second_reads"])
    every = found["all", ""]
    assert (every["reads"], every["discrepancies"], every["discrepancy_rate"]) == (3, 2, 0.6667)
    wang, zhou = found["reader", "wang.reader"], found["reader", "zhou.reader"]
    assert (wang["reads"], wang["discrepancies"], wang["facility"]) == (2, 1, "HB-COUNTY")
    assert (zhou["reads"], zhou["discrepancies"], zhou["discrepancy_rate"]) == (1, 1, 1.0)
    assert ("reader", "gs.reader") not in found
    assert (found["facility", "HB-XL-WD"]["reads"], found["facility", "HB-MJ-LW"]["reads"]) == (
        2,
        1,
    )
    assert found["specialty", "radiology"]["discrepancies"] == 2
    # filters narrow them as the rest of the dashboard
    only = _keyed(
        (await _get(api, "hb.admin", "/api/v1/admin/dashboard?priority=high"))["second_reads"]
    )
    assert (only["all", ""]["reads"], only["all", ""]["discrepancies"]) == (1, 1)


async def test_both_tables_download_as_csv_and_show_on_the_page(api: Api) -> None:
    await load_cases(api.pool, _cases())
    for table, column in (("escalations", "answer_p50_minutes"), ("second_reads", "reads")):
        response = await api.client.get(
            f"/api/v1/admin/dashboard/{table}.csv", headers=api.auth("hb.admin")
        )
        assert response.status == 200
        rows = list(csv.DictReader(io.StringIO((await response.text()).lstrip("\ufeff"))))
        every = next(r for r in rows if r["dimension"] == "all")
        assert every[column] == {"escalations": "60.0", "second_reads": "3"}[table]
    cookie = {"Cookie": f"telemed_session={api.tokens['hb.admin']}"}
    page = await api.client.get("/admin", headers=cookie)
    assert page.status == 200
    text = await page.text()
    assert 'id="dash-escalations"' in text
    assert 'id="dash-second_reads"' in text
    assert 'data-dimension="reader" data-key="zhou.reader"' in text
    assert "66.7%" in text  # the discrepancy tile
