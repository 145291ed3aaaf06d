"""The dashboard's figures, computed from one read of the period's cases, are those
PostgreSQL's own grouping and ``percentile_cont`` give (the queries ``dashboard_figures``
and ``dashboard_trend``, kept as the reference and as the way for values outside the known
lists), for any period, step and filter; and they follow a report amended, a case moved to
another reader, and a case deleted."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from storage import dashboard, network, turnaround
from storage.dashboard import Bucket, DashboardScope, Figures, fetch_planned
from tests.dashboard_data import CaseSpec, load_cases, make_network, random_cases
from tests.integration.conftest import Api

ZONE = "Asia/Shanghai"


def _close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6)


def _same(ours: Figures, theirs: Figures) -> bool:
    return (
        (ours.cases, ours.acknowledged, ours.sla_met)
        == (theirs.cases, theirs.acknowledged, theirs.sla_met)
        and _close(ours.final_p50_s, theirs.final_p50_s)
        and _close(ours.final_p90_s, theirs.final_p90_s)
        and _close(ours.ack_p50_s, theirs.ack_p50_s)
        and _close(ours.ack_p90_s, theirs.ack_p90_s)
    )


async def _reference(pool: Any, scope: DashboardScope, by: Bucket) -> tuple[dict, dict]:
    rows: dict[tuple[str, str], Figures] = {}
    for d in dashboard.DIMENSIONS:
        for r in await fetch_planned(pool, "dashboard_figures", *scope.args(), d):
            rows[d, r["code"] or ""] = Figures.from_row(r)
    trend = {
        (r["bucket"], r["specialty"]): Figures.from_row(r)
        for r in await fetch_planned(pool, "dashboard_trend", *scope.args(), by.value, ZONE)
    }
    return rows, trend


async def _check(pool: Any, scope: DashboardScope, by: Bucket) -> int:
    """Our figures against the reference; how many breakdown rows they have."""
    rows, trend = await dashboard.figures(pool, scope, by, ZONE)
    expected_rows, expected_trend = await _reference(pool, scope, by)
    ours = {(r.dimension, r.key): r.figures for r in rows}
    assert set(ours) == set(expected_rows)
    for key, figures in ours.items():
        assert _same(figures, expected_rows[key]), (key, figures, expected_rows[key])
    assert [(t.bucket, t.specialty) for t in trend] == list(expected_trend)
    for t in trend:
        assert _same(t.figures, expected_trend[t.bucket, t.specialty]), t
    # the volumes' buckets are those of PostgreSQL's date_trunc in the network's zone
    received = await pool.fetch(
        "select date_trunc($10, t.received_at, $11) as bucket, t.specialty, count(*)::int n "
        "from dashboard_cases($1, $4, $5, $6, $7, $8, $9) t "
        "where t.received_at >= $2 and t.received_at < $3 group by 1, 2 order by 1, 2",
        *scope.args(),
        by.value,
        ZONE,
    )
    intake = await dashboard.intake(pool, scope, by, ZONE)
    volumes = [(r.bucket, r.specialty, r.cases) for r in intake if r.facility_code is None]
    assert volumes == [(r["bucket"], r["specialty"], r["n"]) for r in received]
    # and each sending facility's cases, returns and reports
    per_facility = await pool.fetch(
        "select f.code, count(*)::int n, count(t.returned_at)::int r, count(t.final_at)::int f "
        "from dashboard_cases($1, $4, $5, $6, $7, $8, $9) t join facility f "
        "on f.id = t.facility_id where t.received_at >= $2 and t.received_at < $3 "
        "group by 1 order by 1",
        *scope.args(),
    )
    assert [
        (r.facility_code, r.cases, r.returned, r.reported)
        for r in intake
        if r.facility_code is not None
    ] == [tuple(r.values()) for r in per_facility]
    return len(rows)


@pytest.fixture
async def loaded(api: Api) -> tuple[Any, Any]:
    net = await make_network(api.pool, prefix="FG", counties=3, townships=4, villages=2)
    now = datetime.now(UTC)
    await load_cases(api.pool, random_cases(net, 2500, end=now, days=120, seed=11))
    admin = await network.user_by_username(api.pool, net.admin)
    assert admin is not None
    return net, admin


async def test_the_figures_are_postgresqls_for_each_period_step_and_filter(
    api: Api, loaded: tuple[Any, Any]
) -> None:
    net, admin = loaded
    now = datetime.now(UTC)
    async with api.pool.acquire() as conn:
        county = await network.facility_id_by_code(conn, net.counties[1])
    reader = await network.user_by_username(api.pool, net.readers_of[net.counties[0]][0])
    assert county is not None
    assert reader is not None
    for days, by in ((7, Bucket.DAY), (45, Bucket.WEEK), (120, Bucket.MONTH)):
        since, until = now - timedelta(days=days), now + timedelta(seconds=1)
        for filters in (
            {},
            {"specialty": "ecg"},
            {"facility_id": county, "priority": "high"},
            {"reader_id": reader.id, "modality": "DX"},
            {"tier": "village", "specialty": "radiology"},
        ):
            scope = DashboardScope(root=admin.facility_id, since=since, until=until, **filters)
            await _check(api.pool, scope, by)
    # a period with no case at all
    empty = DashboardScope(
        root=admin.facility_id, since=now + timedelta(days=1), until=now + timedelta(days=2)
    )
    assert await dashboard.figures(api.pool, empty, Bucket.DAY, ZONE) == ([], [])


async def test_a_modality_outside_the_known_terms_is_grouped_by_the_query(
    api: Api, loaded: tuple[Any, Any]
) -> None:
    net, admin = loaded
    now = datetime.now(UTC)
    odd = CaseSpec(
        facility=net.clinics[0],
        pool=net.pool_of[net.clinics[0]],
        modality="XMODAL",
        priority="medium",
        received_at=now - timedelta(hours=5),
        deadline_s=4 * 3600.0,
        final_after_s=3000.0,
        ack_after_s=None,
        returned_after_s=None,
        reader=net.readers_of[net.pool_of[net.clinics[0]]][0],
    )
    await load_cases(api.pool, [odd])
    scope = DashboardScope(root=admin.facility_id, since=now - timedelta(days=30), until=now)
    await _check(api.pool, scope, Bucket.WEEK)
    rows, _ = await dashboard.figures(api.pool, scope, Bucket.WEEK, ZONE)
    assert [r.figures.cases for r in rows if r.dimension == "modality" and r.key == "XMODAL"] == [1]


async def test_the_figures_follow_an_amended_report_a_moved_case_and_a_deleted_one(
    api: Api, loaded: tuple[Any, Any]
) -> None:
    _net, admin = loaded
    now = datetime.now(UTC)
    scope = DashboardScope(root=admin.facility_id, since=now - timedelta(days=130), until=now)
    before = await _check(api.pool, scope, Bucket.MONTH)
    async with api.pool.acquire() as conn:
        # the first final report's time moves later, one case goes to another reader, and a
        # case leaves the table (as the triggers of case_turnaround keep it)
        first, second, third = await conn.fetchval(
            "select array_agg(case_id order by case_id) from "
            "(select case_id from case_turnaround where final_at is not null "
            " order by case_id limit 3) x"
        )
        await conn.execute(
            "update case_turnaround set final_at = final_at + interval '2 hours' "
            "where case_id = $1",
            first,
        )
        await conn.execute(
            "update case_turnaround set reader_id = (select reader_id from case_turnaround "
            " where reader_id is not null and reader_id <> "
            " (select reader_id from case_turnaround where case_id = $1) limit 1) "
            "where case_id = $1",
            second,
        )
        await conn.execute("delete from case_turnaround where case_id = $1", third)
    after = await _check(api.pool, scope, Bucket.MONTH)
    assert after <= before
    rows, _ = await dashboard.figures(api.pool, scope, Bucket.MONTH, ZONE)
    totals = [r.figures.cases for r in rows]
    assert totals[0] == max(totals)  # "all" first: the most cases


async def test_the_turnaround_tables_are_postgresqls(api: Api, loaded: tuple[Any, Any]) -> None:
    """Per sending facility and per segment, as ``percentile_cont`` computes them."""
    _net, admin = loaded
    now = datetime.now(UTC)
    since = now - timedelta(days=60)
    expected = {
        r["code"]: r
        for r in await api.pool.fetch(
            "select f.code, count(*)::int n, percentile_cont(0.5) within group (order by "
            "t.final_s) m, percentile_cont(0.9) within group (order by t.final_s) p, "
            "avg(t.final_s) a, max(t.final_s) x from case_turnaround t join facility f "
            "on f.id = t.facility_id where t.final_at >= $2 and t.final_at < $3 and "
            "t.facility_id in (select facility_subtree($1)) group by f.code",
            admin.facility_id,
            since,
            now,
        )
    }
    alone = await turnaround.turnaround(api.pool, admin.facility_id, since, now)
    together, segments = await turnaround.tables(api.pool, admin.facility_id, since, now)
    for rows in (alone, together):
        assert [r.facility_code for r in rows] == sorted(expected)
        for r in rows:
            e = expected[r.facility_code]
            assert r.reports == e["n"]
            assert all(
                _close(a, b)
                for a, b in zip(
                    (r.median_s, r.p90_s, r.mean_s, r.max_s),
                    (e["m"], e["p"], e["a"], e["x"]),
                    strict=False,
                )
            )
    claimed = await api.pool.fetchrow(
        "select count(*)::int n, percentile_cont(0.5) within group (order by s) m, "
        "percentile_cont(0.9) within group (order by s) p, max(s) x from (select "
        "date_part('epoch', final_at - claimed_at) s from case_turnaround where final_at >= $1 "
        "and final_at < $2) x where s >= 0",
        since,
        now,
    )
    assert claimed is not None
    found = {
        s.segment.value: s
        for s in await turnaround.segments(api.pool, admin.facility_id, since, now)
    }
    assert segments == list(found.values())
    got = found["claimed_to_final"]
    assert got.cases == claimed["n"]
    assert _close(got.median_s, claimed["m"])
    assert _close(got.p90_s, claimed["p"])
    assert _close(got.max_s, claimed["x"])
