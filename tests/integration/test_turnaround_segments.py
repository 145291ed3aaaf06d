"""Turnaround segments read from each case's step times (migration 0068) give what the
events themselves give: the first event of each kind of the case, and of its study where
the event belongs to no case."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import asyncpg

from storage import turnaround
from storage.queries import q
from storage.records import FacilityId
from tests.integration.conftest import Api
from tests.integration.test_web_pages import _ok, _reported

#: The same figures computed from the event log, the way the segments were read before the
#: step times were kept.
FROM_EVENTS = """
with firsts as (
    select c.id as case_id, x.kind, min(x.at) as at
    from reading_case c
    cross join lateral (
        select e.kind, e.at from event e where e.case_id = c.id
        union all
        select e.kind, e.at from event e where e.study_id = c.study_id and e.case_id is null
    ) x
    group by c.id, x.kind
)
select s.name, count(*)::int as cases,
       percentile_cont(0.5) within group (order by extract(epoch from (b.at - a.at))) as median_s
from unnest($1::text[], $2::text[], $3::text[]) as s(name, start_kind, end_kind)
join firsts a on a.kind = s.start_kind
join firsts b on b.kind = s.end_kind and b.case_id = a.case_id
where b.at >= a.at
group by s.name
"""


async def test_segments_from_the_step_times_equal_those_from_the_events(api: Api) -> None:
    await _reported(api, "normal", patient_id="WD-1")
    second, report = await _reported(api, "abnormal", patient_id="WD-2")
    await _ok(api, "xlwd.clinic", f"/api/v1/reports/{report}/acknowledge", {
        "name": "王医生", "read_back": "右下肺炎"
    })  # fmt: skip
    root = FacilityId(await api.pool.fetchval("select id from facility where code = 'XY-CITY'"))
    now = datetime.now(UTC)
    found = await turnaround.segments(api.pool, root, now - timedelta(days=1), now)
    names = [s[0].value for s in turnaround.SEGMENTS]
    starts = [s[1].value for s in turnaround.SEGMENTS]
    ends = [s[2].value for s in turnaround.SEGMENTS]
    expected = {
        r["name"]: (r["cases"], r["median_s"])
        for r in await api.pool.fetch(FROM_EVENTS, names, starts, ends)
    }
    got = {s.segment.value: (s.cases, s.median_s) for s in found}
    assert set(got) == set(expected)
    for name, (cases, median) in expected.items():
        assert got[name][0] == cases, name
        assert abs(got[name][1] - median) < 1e-6, name
    # the steps a reported, delivered, acknowledged case went through are all there
    assert {"received_to_complete", "routed_to_claimed", "claimed_to_final",
            "final_to_delivered", "received_to_acknowledged"} <= set(got)  # fmt: skip
    assert got["received_to_final"][0] == 2
    # one case alone
    one = await turnaround.segments(api.pool, root, now, now, case_id=second)
    assert {s.segment.value for s in one} >= {"claimed_to_final", "received_to_acknowledged"}


async def test_the_packed_steps_hold_each_step_in_order(pool: asyncpg.Pool) -> None:
    """The packed steps the query reads (case_turnaround.steps, generated) are the facility
    and then the times of STEPS in their order, and each segment runs between two of them."""
    assert "t.steps" in q("turnaround_step_times")
    made = await pool.fetchval(
        "select pg_get_expr(d.adbin, d.adrelid) from pg_attrdef d join pg_attribute a"
        " on a.attrelid = d.adrelid and a.attnum = d.adnum"
        " where d.adrelid = 'case_turnaround'::regclass and a.attname = 'steps'"
    )
    assert made.lstrip("(").startswith("int8send(facility_id) ||")
    read = re.findall(r"timestamptz_send\((?:COALESCE\()?(\w+)_at", made)
    assert read == [step.value for step in turnaround.STEPS]
    assert turnaround.STEP_TIMES.names == ("facility", *(s.value for s in turnaround.STEPS))
    steps = set(turnaround.STEPS)
    assert all({start, end} <= steps for _, start, end in turnaround.SEGMENTS)
