"""The administrator's dashboard figures, read from ``case_turnaround`` (one row per case,
kept by triggers: migration 0065) and the referral table.

Every reader takes a :class:`DashboardScope`: the network's root facility, the period and
the filters. Durations are in seconds, from the server's own clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from storage.db import Conn, Pool
from storage.queries import q
from storage.records import FacilityId, Priority, Specialty, Tier, UserId


class Bucket(StrEnum):
    """The step of a trend: PostgreSQL's ``date_trunc`` field of the same name."""

    DAY = "day"
    WEEK = "week"
    MONTH = "month"


@dataclass(frozen=True, kw_only=True)
class DashboardScope:
    """Which cases count: the network below ``root`` and, when given, one sending tier,
    one facility (and those below it), specialty, modality, priority and reader; cases
    count in the period ``[since, until)``."""

    root: FacilityId
    since: datetime
    until: datetime
    tier: str | None = None
    facility_id: FacilityId | None = None
    specialty: str | None = None
    modality: str | None = None
    priority: str | None = None
    reader_id: UserId | None = None

    def __post_init__(self) -> None:
        if self.since.tzinfo is None or self.until.tzinfo is None:
            raise ValueError("the dashboard period needs timezone-aware times")
        if self.since >= self.until:
            raise ValueError("the dashboard period must start before it ends")

    def args(self) -> tuple[Any, ...]:
        return (
            self.root,
            self.since,
            self.until,
            self.tier,
            self.facility_id,
            self.specialty,
            self.modality,
            self.priority,
            self.reader_id,
        )


@dataclass(frozen=True, kw_only=True)
class Figures:
    """Cases reported, received->final and final->acknowledged p50/p90 (seconds; None
    without cases), and how many kept their deadline."""

    cases: int
    final_p50_s: float | None
    final_p90_s: float | None
    acknowledged: int
    ack_p50_s: float | None
    ack_p90_s: float | None
    sla_met: int

    @classmethod
    def from_row(cls, row: Any) -> Figures:
        final = row["final_q"] or (None, None)
        ack = row["ack_q"] or (None, None)
        return cls(
            cases=row["cases"],
            final_p50_s=final[0],
            final_p90_s=final[1],
            acknowledged=row["acknowledged"],
            ack_p50_s=ack[0],
            ack_p90_s=ack[1],
            sla_met=row["sla_met"],
        )


@dataclass(frozen=True, kw_only=True)
class BreakdownRow:
    """The figures of one value of one dimension (``all`` for every case together):
    ``key`` is the value (a tier, a facility code, a reader's username, ...), ``label`` how
    people name it, ``extra`` the reader's facility code."""

    dimension: str
    key: str
    label: str
    extra: str
    figures: Figures


def _breakdown_row(dimension: str, r: Any) -> BreakdownRow:
    return BreakdownRow(
        dimension=dimension,
        key=r["code"],
        label=r["label"],
        extra=r["extra"],
        figures=Figures.from_row(r),
    )


@dataclass(frozen=True, kw_only=True)
class TrendRow:
    """The figures of one day, week or month (its start, local midnight), of one
    specialty or (``specialty`` None) of all."""

    bucket: datetime
    specialty: str | None
    figures: Figures


#: The dimensions the figures are split by ("all": not split).
DIMENSIONS = ("all", "tier", "facility", "specialty", "modality", "priority", "reader")
#: DICOM's defined terms for Modality (PS3.3 C.7.3.1.1.1).
_MODALITIES = (
    "AR", "AU", "BDUS", "BI", "BMD", "CR", "CT", "DG", "DOC", "DX", "ECG", "EPS", "ES", "GM",
    "HC", "HD", "IO", "IVOCT", "IVUS", "KER", "KO", "LS", "MG", "MR", "NM", "OAM", "OCT", "OP",
    "OPM", "OPT", "OPV", "OSS", "OT", "PLAN", "PR", "PT", "PX", "REG", "RESP", "RF", "RG",
    "RTDOSE", "RTIMAGE", "RTPLAN", "RTRECORD", "RTSEG", "RTSTRUCT", "RWV", "SEG", "SM", "SMR",
    "SR", "SRF", "STAIN", "TG", "US", "VA", "XA", "XC",
)  # fmt: skip
#: The values a text dimension is read as (a code each: its place, from 1). A value not
#: listed (0) sends that dimension to the query that groups the text itself.
KNOWN: dict[str, tuple[str, ...]] = {
    "tier": tuple(t.value for t in Tier),
    "specialty": tuple(s.value for s in Specialty),
    "priority": tuple(p.value for p in Priority),
    "modality": (*_MODALITIES, ""),
}


#: A read's settings, for its transaction only (one statement): planned for its own values
#: (a plan cached for any filter, ``$n is null or ...``, reads the whole table), and its
#: sorts and groups in memory.
_PLANNED = (
    "select set_config('plan_cache_mode', 'force_custom_plan', true),"
    " set_config('work_mem', '64MB', true)"
)


@contextlib.asynccontextmanager
async def planned(pool: Pool, *, by_index: bool = False) -> AsyncIterator[Conn]:
    """A connection in a read-only transaction set for one dashboard read; ``by_index``:
    never by reading the whole table (a part of a long period is a large share of the
    table, but each part reading it all would read it once per part; by the index on the
    time of the final report each reads its own pages)."""
    async with pool.acquire() as conn, conn.transaction(readonly=True):
        more = ", set_config('enable_seqscan', 'off', true)" if by_index else ""
        await conn.execute(_PLANNED + more)
        yield conn


async def fetch_planned(pool: Pool, name: str, *args: Any) -> list[Any]:
    """Run one dashboard query planned for its own values."""
    async with planned(pool) as conn:
        return list(await conn.fetch(q(name), *args))


def bucket_days(first: date, last: date, by: Bucket) -> list[date]:
    """The first local day of each day, week (from Monday) or month the period touches, in
    order: the trend's x axis, with the buckets that have no case among them."""
    if by is Bucket.MONTH:
        day = first.replace(day=1)
    elif by is Bucket.WEEK:
        day = first - timedelta(days=first.weekday())
    else:
        day = first
    found = []
    while day <= last:
        found.append(day)
        if by is Bucket.MONTH:
            day = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
        else:
            day += timedelta(days=7 if by is Bucket.WEEK else 1)
    return found


@dataclass(frozen=True)
class _Reported:
    """The cases finally reported in a period, a column each (one entry per case): the
    sending facility's and the reader's ids, each text dimension's code (``KNOWN``), the
    deadline kept (1 yes, 0 no, 2 unknown), the trend's bucket (from 1), and the received ->
    final and final -> acknowledged seconds (NaN: not acknowledged)."""

    ids: dict[str, np.ndarray]
    sla: np.ndarray
    bucket: np.ndarray
    final: np.ndarray
    ack: np.ndarray


#: One case's packed figures (``case_turnaround.figures``) as PostgreSQL sends them: the
#: sending facility's and the reader's ids (facility * 2^32 + reader), the received -> final
#: and final -> acknowledged seconds (NaN: not yet), the time of the final report
#: (microseconds since 2000) and the deadline kept (1 yes, 0 no, 2 unknown).
FIGURES = np.dtype(
    [("ids", ">i8"), ("final", ">f8"), ("ack", ">f8"), ("final_at", ">i8"), ("sla", ">i2")]
)
#: PostgreSQL's epoch: its binary times count microseconds from it.
PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def records_of(strings: list[bytes], layout: np.dtype) -> np.ndarray:
    """The fixed-width records of ``layout`` in ``strings`` (each a string of them back to
    back, ``string_agg(packed, '')``), as one array."""
    if not strings:
        return np.empty(0, dtype=layout)
    return np.concatenate([np.frombuffer(data, dtype=layout) for data in strings])


def field(records: np.ndarray, name: str) -> np.ndarray:
    """One field of ``records_of``'s records, in this machine's byte order."""
    column = records[name]
    return column.astype(column.dtype.newbyteorder("="))


def micros(at: datetime) -> int:
    """``at`` as PostgreSQL's binary time: microseconds since its epoch."""
    return (at - PG_EPOCH) // timedelta(microseconds=1)


#: The period is read in this many parts side by side (PostgreSQL packs each part's columns
#: in its own process: on two cores, two parts take half the time of one).
READ_PARTS = 2


def read_parts(since: datetime, until: datetime) -> list[tuple[datetime, datetime]]:
    """The period ``[since, until)`` in ``READ_PARTS`` parts of equal length."""
    step = (until - since) / READ_PARTS
    edges = [since + step * n for n in range(READ_PARTS)] + [until]
    return list(itertools.pairwise(edges))


#: One group as PostgreSQL sent it (``dashboard_reported``): its tier, specialty, modality
#: and priority, and its cases' packed figures (``FIGURES``), back to back.
_Part = tuple[str, str, str, str, bytes]
#: The text dimensions in the order ``dashboard_reported`` groups them.
_TEXTS = ("tier", "specialty", "modality", "priority")
#: Each text dimension's value -> its code (``KNOWN``: its place, from 1).
_CODES = {d: {v: n for n, v in enumerate(KNOWN[d], start=1)} for d in _TEXTS}


async def _read(pool: Pool, scope: DashboardScope) -> list[_Part]:
    """The groups of the cases finally reported in ``scope``'s period, with their packed
    figures."""
    async with planned(pool) as conn:
        rows = await conn.fetch(q("dashboard_reported"), *scope.args())
    return [tuple(r.values()) for r in rows]


async def _read_all(pool: Pool, scope: DashboardScope) -> list[_Part]:
    """The period's finally reported cases, read in ``READ_PARTS`` parts side by side."""
    parts = [replace(scope, since=a, until=b) for a, b in read_parts(scope.since, scope.until)]
    return [g for p in await asyncio.gather(*(_read(pool, s) for s in parts)) for g in p]


def _unpacked(groups: list[_Part], bounds: list[datetime]) -> _Reported:
    """The groups' cases as one array a column, the packed ids taken apart, each case with
    its group's text codes (0: a value not listed) and its trend bucket: the place of the
    last of the buckets' starts ``bounds`` at or before its final report (as
    ``width_bucket``)."""
    cases = records_of([g[4] for g in groups], FIGURES)
    sizes = [len(g[4]) // FIGURES.itemsize for g in groups]
    # each group's code of each text dimension, a row a group
    codes = np.array(
        [[_CODES[d].get(v, 0) for d, v in zip(_TEXTS, g[:4], strict=True)] for g in groups],
        dtype=np.int64,
    ).reshape(len(groups), len(_TEXTS))
    texts = {d: np.repeat(codes[:, n], sizes) for n, d in enumerate(_TEXTS)}
    both_ids = field(cases, "ids")
    starts = np.array([micros(b) for b in bounds], dtype=np.int64)
    bucket = np.searchsorted(starts, field(cases, "final_at"), side="right")
    ids = {"facility": both_ids >> 32, "reader": both_ids & 0xFFFFFFFF, **texts}
    return _Reported(
        ids=ids,
        sla=field(cases, "sla"),
        bucket=bucket,
        final=field(cases, "final"),
        ack=field(cases, "ack"),
    )


def percentiles(
    values: np.ndarray, starts: np.ndarray, counts: np.ndarray, order: np.ndarray | None = None
) -> list[tuple[float, float] | None]:
    """p50 and p90 of each group as percentile_cont reads them (linear between the two
    nearest ranks); ``values`` (taken in ``order`` when given) are sorted within each
    group, the group's ``counts`` first of it from ``starts``; None for a group of none."""
    found: list[list[float]] = []
    last = np.maximum(counts - 1, 0)
    for fraction in (0.5, 0.9):
        pos = fraction * last
        low = np.floor(pos).astype(np.int64)
        high = np.minimum(low + 1, last)
        at_low, at_high = starts + low, starts + high
        if order is not None:
            at_low, at_high = order[at_low], order[at_high]
        a, b = values[at_low], values[at_high]
        with np.errstate(invalid="ignore"):  # a group of none reads a neighbour's: dropped
            found.append((a + (pos - low) * (b - a)).tolist())
    return [(p50, p90) if n else None for p50, p90, n in zip(*found, counts, strict=True)]


@dataclass(frozen=True)
class _Sorted:
    """The cases' received -> final and final -> acknowledged seconds in order (the
    unacknowledged last), which case each place holds, and which cases were acknowledged
    and kept their deadline."""

    final_order: np.ndarray
    final: np.ndarray
    ack_order: np.ndarray
    ack: np.ndarray
    acked: np.ndarray
    met: np.ndarray

    @classmethod
    def of(cls, cases: _Reported) -> _Sorted:
        acked = ~np.isnan(cases.ack)
        # the unacknowledged as infinite: numpy's vectorised sort does not take NaN (a sort
        # with NaN among the values takes several times as long)
        ack = np.where(acked, cases.ack, np.inf)
        final_order, ack_order = np.argsort(cases.final), np.argsort(ack)
        return cls(
            final_order=final_order,
            final=cases.final[final_order],
            ack_order=ack_order,
            ack=ack[ack_order],
            acked=acked,
            met=cases.sla == 1,
        )


#: The most distinct values a key is counted for by its value itself (beyond: by its rank).
_DENSE_LIMIT = 1 << 20


def dense(key: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """``key`` as small integers from 0, for counting and radix sorting (16 bits when they
    fit), and the values they stand for (None: each is its own value)."""
    values = None
    if len(key) and not 0 <= key.min() <= key.max() < _DENSE_LIMIT:
        values, key = np.unique(key, return_inverse=True)
    if len(key) and key.max() < 2**15:
        return key.astype(np.int16), values
    return key, values


def _grouped(key: np.ndarray, s: _Sorted) -> Grouped:
    """Each value of ``key`` (ascending) and its figures. Sorted by key, stably, the places
    of ``s``'s ordered seconds keep each group's seconds in order: the ranks a percentile
    reads are found without moving the seconds."""
    if not len(key):
        return []
    small, values = dense(key)
    counts = np.bincount(small)
    acked = np.bincount(small[s.acked], minlength=len(counts))
    met = np.bincount(small[s.met], minlength=len(counts))
    starts = np.cumsum(counts) - counts
    if len(counts) == 1:  # one group: the seconds are in its order already
        final_rank = ack_rank = None
    else:
        final_rank = np.argsort(small[s.final_order], kind="stable")
        ack_rank = np.argsort(small[s.ack_order], kind="stable")
    present = np.flatnonzero(counts)
    starts, counts, acked, met = starts[present], counts[present], acked[present], met[present]
    finals = percentiles(s.final, starts, counts, final_rank)
    acks = percentiles(s.ack, starts, acked, ack_rank)
    keys = present if values is None else values[present]
    return [
        (
            int(k),
            Figures(
                cases=int(n),
                final_p50_s=f[0] if f else None,
                final_p90_s=f[1] if f else None,
                acknowledged=int(m),
                ack_p50_s=a[0] if a else None,
                ack_p90_s=a[1] if a else None,
                sla_met=int(kept),
            ),
        )
        for k, n, m, kept, f, a in zip(keys, counts, acked, met, finals, acks, strict=True)
    ]


Grouped = list[tuple[int, Figures]]


def _computed(
    parts: list[_Part], bounds: list[datetime]
) -> tuple[dict[str, Grouped], Grouped, Grouped]:
    """Each dimension's groups by its code (``all``: one group, 0), and the trend's: by
    bucket, and by bucket and specialty (bucket * 4 + code)."""
    cases = _unpacked(parts, bounds)
    s = _Sorted.of(cases)
    keys = {"all": np.zeros(len(cases.final), dtype=np.int16), **cases.ids}
    found = {d: _grouped(keys[d], s) for d in DIMENSIONS}
    every = _grouped(cases.bucket, s)
    return found, every, _grouped(cases.bucket * 4 + cases.ids["specialty"], s)


async def _names(pool: Pool, found: dict[str, Grouped]) -> dict[str, dict[int, Any]]:
    facilities = [k for k, _ in found["facility"]]
    readers = [k for k, _ in found["reader"] if k]
    async with pool.acquire() as conn:
        f = await conn.fetch(q("dashboard_facility_names"), facilities)
        u = await conn.fetch(q("dashboard_reader_names"), readers)
    return {
        "facility": {r["id"]: (r["code"], r["name"], "") for r in f},
        "reader": {r["id"]: (r["username"], r["display_name"], r["facility_code"]) for r in u},
    }


def _rows_of(
    dimension: str, groups: Grouped, names: dict[str, dict[int, Any]]
) -> list[BreakdownRow]:
    rows = []
    for key, figures in groups:
        if dimension in names:
            code, label, extra = names[dimension].get(key, ("", "", ""))
        else:
            code = label = KNOWN[dimension][key - 1] if dimension in KNOWN else ""
            extra = ""
        rows.append(
            BreakdownRow(dimension=dimension, key=code, label=label, extra=extra, figures=figures)
        )
    rows.sort(key=lambda r: (-r.figures.cases, r.figures.acknowledged, r.key))
    return rows


def _unknown(found: dict[str, Grouped]) -> list[str]:
    """The text dimensions with a value outside ``KNOWN``: grouped by the query instead."""
    return [d for d in KNOWN if any(key == 0 for key, _ in found[d])]


def _bounds(scope: DashboardScope, by: Bucket, zone: str) -> list[datetime]:
    """The start of each bucket of the period in the time zone ``zone``."""
    tz = ZoneInfo(zone)
    first = scope.since.astimezone(tz).date()
    last = (scope.until - timedelta(microseconds=1)).astimezone(tz).date()
    return [datetime.combine(d, time(), tz) for d in bucket_days(first, last, by)]


async def figures(
    pool: Pool, scope: DashboardScope, by: Bucket, zone: str
) -> tuple[list[BreakdownRow], list[TrendRow]]:
    """The figures of the cases finally reported in the period: all together and by each
    dimension, and by day, week or month (``by``) of the period in the time zone ``zone``,
    all together and by specialty.

    One read brings the period's cases as arrays; the percentiles are computed from them
    (as PostgreSQL's ``percentile_cont``: exact, linear between ranks) off the event loop.
    A text dimension with a value outside ``KNOWN`` is grouped by its query instead."""
    bounds = _bounds(scope, by, zone)
    parts = await _read_all(pool, scope)
    found, every, split = await asyncio.to_thread(_computed, parts, bounds)
    names = await _names(pool, found)
    unknown = _unknown(found)
    rows = [r for d in DIMENSIONS if d not in unknown for r in _rows_of(d, found[d], names)]
    for dimension in unknown:
        queried = await fetch_planned(pool, "dashboard_figures", *scope.args(), dimension)
        rows += [_breakdown_row(dimension, r) for r in queried]
    if any(key % 4 == 0 for key, _ in split):
        return rows, await _trend_queried(pool, scope, by, zone)
    starts = [b.astimezone(UTC) for b in bounds]
    trend = [TrendRow(bucket=starts[k - 1], specialty=None, figures=f) for k, f in every]
    trend += [
        TrendRow(bucket=starts[k // 4 - 1], specialty=KNOWN["specialty"][k % 4 - 1], figures=f)
        for k, f in split
    ]
    trend.sort(key=lambda r: (r.bucket, r.specialty is not None, r.specialty or ""))
    return rows, trend


async def _trend_queried(
    pool: Pool, scope: DashboardScope, by: Bucket, zone: str
) -> list[TrendRow]:
    rows = await fetch_planned(pool, "dashboard_trend", *scope.args(), by.value, zone)
    return [
        TrendRow(bucket=r["bucket"], specialty=r["specialty"], figures=Figures.from_row(r))
        for r in rows
    ]


@dataclass(frozen=True, kw_only=True)
class IntakeRow:
    """Cases received: of one bucket and specialty (``facility_code`` None), or of one
    sending facility (``bucket`` and ``specialty`` None), with how many were returned for
    quality and how many have a final report."""

    bucket: datetime | None
    specialty: str | None
    facility_code: str | None
    facility_name: str | None
    cases: int
    returned: int
    reported: int


async def intake(pool: Pool, scope: DashboardScope, by: Bucket, zone: str) -> list[IntakeRow]:
    """The cases received in the period, by bucket and specialty and by facility."""
    rows = await fetch_planned(pool, "dashboard_intake", *scope.args(), _bounds(scope, by, zone))
    return [IntakeRow(**r) for r in rows]


@dataclass(frozen=True, kw_only=True)
class ReferralRow:
    """Referrals of one direction: of one bucket (``status`` None) or of one status
    (``bucket`` None)."""

    bucket: datetime | None
    direction: str
    status: str | None
    referrals: int


async def referrals(pool: Pool, scope: DashboardScope, by: Bucket, zone: str) -> list[ReferralRow]:
    """Referrals made in the period from or to the network (the facility filter's
    subtree when given), by bucket and by status."""
    rows = await fetch_planned(
        pool,
        "dashboard_referrals",
        scope.root,
        scope.since,
        scope.until,
        scope.facility_id,
        by.value,
        zone,
    )
    return [ReferralRow(**r) for r in rows]


@dataclass(frozen=True, kw_only=True)
class EscalationRow:
    """Cases escalated in the period: of all (``dimension`` ``all``), of the pool that
    first had them (``key`` its code, ``name`` its name), of one specialty or of one
    priority; how many have a final report, escalation->final p50/p90 (seconds; None
    without answers) and how many kept their deadline."""

    dimension: str
    key: str
    name: str
    escalated: int
    answered: int
    answer_p50_s: float | None
    answer_p90_s: float | None
    sla_met: int


async def escalations(pool: Pool, scope: DashboardScope) -> list[EscalationRow]:
    """The cases escalated in the period, by the pool they went up from, by specialty and
    by priority."""
    rows = await fetch_planned(pool, "dashboard_escalations", *scope.args())
    out = []
    for r in rows:
        # The answer's p50 and p90 in one array; none when nothing was answered.
        p50, p90 = r["answer_q"] or (None, None)
        out.append(
            EscalationRow(
                dimension=r["dimension"],
                key=r["key"],
                name=r["name"],
                escalated=r["escalated"],
                answered=r["answered"],
                answer_p50_s=p50,
                answer_p90_s=p90,
                sla_met=r["sla_met"],
            )
        )
    return out


@dataclass(frozen=True, kw_only=True)
class SecondReadRow:
    """Final reports of the period compared with an earlier read, and how many disagreed
    with it: of all (``dimension`` ``all``), of one first reader (``key`` the username,
    ``facility`` their facility's code), one specialty or one sending facility."""

    dimension: str
    key: str
    name: str
    facility: str
    reads: int
    discrepancies: int


async def second_reads(pool: Pool, scope: DashboardScope) -> list[SecondReadRow]:
    """The period's compared final reports, by first reader, specialty and sending
    facility."""
    rows = await fetch_planned(pool, "dashboard_second_reads", *scope.args())
    return [SecondReadRow(**r) for r in rows]


@dataclass(frozen=True, kw_only=True)
class FacilityChoice:
    """A facility of the network, for the facility filter."""

    code: str
    name: str
    tier: str


async def facilities(pool: Pool, root: FacilityId) -> list[FacilityChoice]:
    """The facilities of the network below ``root`` (and it), by code."""
    return [FacilityChoice(**r) for r in await pool.fetch(q("dashboard_facilities"), root)]
