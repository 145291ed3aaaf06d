"""The turnaround dashboard's part of /admin: the filter form (a GET form, so the period and
filters stay in the URL), the figures' tiles, the trend charts (SVG drawn here) and the
tables, each with its CSV link for the same period and filters."""

from __future__ import annotations

from datetime import date
from typing import Any
from urllib.parse import urlencode

from markupsafe import Markup

from storage.dashboard import Bucket
from storage.records import Priority, ReferralDirection, Specialty, Tier
from teleradiology.core.charts import Series, bar_chart, line_chart
from teleradiology.core.language import N_, Language, gettext, word
from teleradiology.core.words import DashboardTable
from teleradiology.http.api.models.dashboard import (
    DashboardOut,
    DashboardQuery,
    SecondReadOut,
    TrendOut,
)
from teleradiology.services.dashboard import bucket_days

_BY = {
    Bucket.DAY: N_("按日"),
    Bucket.WEEK: N_("按周"),
    Bucket.MONTH: N_("按月"),
}

#: The groups of the escalation and second-read tables, named in their first column.
_DIMENSIONS = {
    "pool": N_("上转自"),
    "specialty": N_("专业"),
    "priority": N_("优先级"),
    "reader": N_("首读医生"),
    "facility": N_("送检机构"),
}

#: The rows the page shows of the tables with a row per facility: those of most cases, in
#: the table's own order (every row is in the table's CSV and in the API).
PAGE_ROWS = 50


def _shown(out: DashboardOut) -> tuple[DashboardOut, dict[str, int]]:
    """The figures the page draws, the per-facility tables cut to their ``PAGE_ROWS``
    busiest rows, and how many rows each such table has in all."""
    counts = {
        "facility": len(out.facility),
        "returns": len(out.returns),
        "second_reads": len(out.second_reads),
    }
    busiest = {id(r) for r in sorted(out.returns, key=lambda r: -r.cases)[:PAGE_ROWS]}
    shown = out.model_copy(
        update={
            "facility": out.facility[:PAGE_ROWS],  # ordered by cases already
            "returns": [r for r in out.returns if id(r) in busiest],
            "second_reads": _first_of_each(out.second_reads),
        }
    )
    return shown, counts


def _first_of_each(rows: list[SecondReadOut]) -> list[SecondReadOut]:
    """The first ``PAGE_ROWS`` rows of each dimension (they come by most reads first)."""
    seen: dict[str, int] = {}
    kept = []
    for r in rows:
        seen[r.dimension] = seen.get(r.dimension, 0) + 1
        if seen[r.dimension] <= PAGE_ROWS:
            kept.append(r)
    return kept


def _drawn(svg: str) -> Markup:
    """A chart for the template to place as it is."""
    return Markup(svg)  # noqa: S704 - the chart builders escape every text they draw


def _label(day: date, by: Bucket) -> str:
    return day.strftime("%Y-%m") if by is Bucket.MONTH else day.strftime("%m-%d")


def _unit(values: list[float | None], language: Language) -> tuple[float, str]:
    """Minutes, or hours when the largest figure is past three hours."""
    if max((v for v in values if v is not None), default=0.0) > 180:
        return 60.0, gettext(language)(N_("小时"))
    return 1.0, gettext(language)(N_("分钟"))


def _series(
    rows: dict[date, TrendOut], days: list[date], field: str, name: str, scale: float = 1.0
) -> Series:
    values = []
    for d in days:
        row = rows.get(d)
        value = getattr(row, field) if row is not None else None
        values.append(None if value is None else value / scale)
    return Series(name=name, values=values)


def _trend_charts(out: DashboardOut, days: list[date], language: Language) -> dict[str, Markup]:
    _ = gettext(language)
    labels = [_label(d, out.by) for d in days]
    every = {r.bucket: r for r in out.trend if r.specialty is None}
    per = {
        s: {r.bucket: r for r in out.trend if r.specialty is s}
        for s in (Specialty.RADIOLOGY, Specialty.ECG)
    }
    scale, unit = _unit([r.final_p90_minutes for r in out.trend], language)
    ack_scale, ack_unit = _unit([r.ack_p90_minutes for r in out.trend], language)
    rates = [
        Series(
            name=name,
            values=[
                None if v is None else v * 100 for v in _series(rows, days, "sla_rate", "").values
            ],
        )
        for name, rows in ((_(N_("全部专业")), every), *((word(s, language), per[s]) for s in per))
    ]
    return {
        "turnaround": _drawn(
            line_chart(
                empty=_(N_("无数据")),
                chart_id="chart-turnaround",
                title=_(N_("接收→正式报告")),
                unit=unit,
                labels=labels,
                series=[
                    _series(every, days, "final_p50_minutes", "P50", scale),
                    _series(every, days, "final_p90_minutes", "P90", scale),
                    *(
                        _series(
                            per[s], days, "final_p50_minutes", f"P50 {word(s, language)}", scale
                        )
                        for s in per
                    ),
                ],
            )
        ),
        "sla": _drawn(
            line_chart(
                empty=_(N_("无数据")),
                chart_id="chart-sla",
                title=_(N_("按期限报告率")),
                unit="%",
                labels=labels,
                series=rates,
                top=100.0,
            )
        ),
        "ack": _drawn(
            line_chart(
                empty=_(N_("无数据")),
                chart_id="chart-ack",
                title=_(N_("正式报告→确认")),
                unit=ack_unit,
                labels=labels,
                series=[
                    _series(every, days, "ack_p50_minutes", "P50", ack_scale),
                    _series(every, days, "ack_p90_minutes", "P90", ack_scale),
                ],
            )
        ),
    }


def _count_charts(out: DashboardOut, days: list[date], language: Language) -> dict[str, Markup]:
    _ = gettext(language)
    labels = [_label(d, out.by) for d in days]
    volumes = {(v.bucket, v.specialty): v.cases for v in out.volumes}
    referrals = {
        (r.bucket, r.direction): r.referrals for r in out.referrals if r.bucket is not None
    }
    return {
        "volumes": _drawn(
            bar_chart(
                empty=_(N_("无数据")),
                chart_id="chart-volumes",
                title=_(N_("接收病例")),
                unit=_(N_("病例数")),
                labels=labels,
                series=[
                    Series(name=word(s, language), values=[volumes.get((d, s), 0) for d in days])
                    for s in Specialty
                ],
            )
        ),
        "referrals": _drawn(
            bar_chart(
                empty=_(N_("无数据")),
                chart_id="chart-referrals",
                title=_(N_("双向转诊")),
                unit=_(N_("转诊数")),
                labels=labels,
                series=[
                    Series(name=word(r, language), values=[referrals.get((d, r), 0) for d in days])
                    for r in ReferralDirection
                ],
            )
        ),
    }


def _choices(out: DashboardOut, language: Language) -> dict[str, list[tuple[str, str]]]:
    """Each filter's options as (value, label); the first is "all"."""
    _ = gettext(language)
    every = [("", _(N_("全部")))]
    return {
        "by": [("", _(N_("自动")))] + [(b.value, _(_BY[b])) for b in Bucket],
        "tier": every + [(t.value, word(t, language)) for t in Tier],
        "facility": every + [(f.code, f"{f.name} ({f.code})") for f in out.choices.facilities],
        "specialty": every + [(s.value, word(s, language)) for s in Specialty],
        "modality": every + [(m, m) for m in out.choices.modalities],
        "priority": every + [(p.value, word(p, language)) for p in Priority],
        "reader": every + [(r.username, f"{r.name} ({r.facility})") for r in out.choices.readers],
    }


def dashboard_context(
    out: DashboardOut, asked: DashboardQuery, language: Language
) -> dict[str, Any]:
    """What the dashboard's template reads, its words in `language`."""
    days = bucket_days(out.since, out.until, out.by)
    query = {k: v for k, v in asked.model_dump(mode="json", exclude_none=True).items() if v != ""}
    suffix = f"?{urlencode(query)}" if query else ""
    shown, counts = _shown(out)
    return {
        "dash": shown,
        "dash_counts": counts,
        "dash_by": gettext(language)(_BY[out.by]),
        "dash_values": {
            **{k: "" for k in DashboardQuery.model_fields},
            **query,
            "since": out.since.isoformat(),
            "until": out.until.isoformat(),
        },
        "dash_choices": _choices(out, language),
        "dash_charts": {**_trend_charts(out, days, language), **_count_charts(out, days, language)},
        "dash_tables": {t.value: word(t, language) for t in DashboardTable},
        "dash_csv": {t.value: f"/admin/dashboard/{t.value}.csv{suffix}" for t in DashboardTable},
        "dash_rates": _returned_total(out),
        "dash_dimensions": {k: gettext(language)(v) for k, v in _DIMENSIONS.items()},
        "dash_escalated": next((e for e in out.escalations if e.dimension == "all"), None),
        "dash_compared": next((r for r in out.second_reads if r.dimension == "all"), None),
        "dash_page_rows": PAGE_ROWS,
    }


def _returned_total(out: DashboardOut) -> dict[str, float | int | None]:
    cases = sum(r.cases for r in out.returns)
    returned = sum(r.returned for r in out.returns)
    return {
        "received": cases,
        "returned": returned,
        "returned_rate": round(returned / cases, 4) if cases else None,
    }
