"""The dashboard's pure parts: the charts' SVG, the y axis, the trend's buckets, the period."""

from __future__ import annotations

import re
from datetime import date
from zoneinfo import ZoneInfo

import pytest
from defusedxml import ElementTree

from storage.dashboard import Bucket
from teleradiology.core.charts import Series, bar_chart, line_chart, nice_ceiling
from teleradiology.core.errors import BadRequest
from teleradiology.services.dashboard import (
    DashboardAsk,
    bucket_days,
    default_bucket,
    period,
)

SVG = "{http://www.w3.org/2000/svg}"
ZONE = ZoneInfo("Asia/Shanghai")


@pytest.mark.parametrize(
    ("value", "top"), [(0, 4), (3, 4), (4, 4), (4.1, 8), (19, 20), (21, 40), (101, 200), (0.3, 0.4)]
)
def test_the_y_axis_ends_at_four_round_steps_above_the_largest_value(
    value: float, top: float
) -> None:
    assert nice_ceiling(value) == pytest.approx(top)


def test_a_line_chart_marks_each_point_and_breaks_at_a_missing_value() -> None:
    svg = line_chart(
        chart_id="c",
        title="接收→正式报告",
        unit="min",
        labels=["a", "b", "c", "d"],
        series=[Series(name="P50", values=[10, None, 30, 20])],
    )
    root = ElementTree.fromstring(svg)
    points = root.findall(f"{SVG}circle")
    assert [(p.get("data-label"), p.get("data-value")) for p in points] == [
        ("a", "10"),
        ("c", "30"),
        ("d", "20"),
    ]
    lines = root.findall(f"{SVG}polyline")
    assert len(lines) == 1  # a alone, then c-d: the gap at b is not bridged
    assert len(lines[0].get("points", "").split()) == 2
    # the highest point sits higher than the lowest (y grows downwards), under the top
    ys = {p.get("data-value"): float(p.get("cy", "0")) for p in points}
    assert ys["30"] < ys["20"] < ys["10"]


def test_text_in_a_chart_is_escaped() -> None:
    svg = bar_chart(
        chart_id="x",
        title="<script>alert(1)</script>",
        unit="例",
        labels=['"><b>'],
        series=[Series(name="a&b", values=[2])],
    )
    assert "<script>" not in svg
    assert "<b>" not in svg
    ElementTree.fromstring(svg)  # well-formed


def test_bars_stack_the_series_to_their_total() -> None:
    svg = bar_chart(
        chart_id="v",
        title="cases",
        unit="例",
        labels=["d1", "d2"],
        series=[Series(name="radiology", values=[6, 0]), Series(name="ECG", values=[2, 1])],
    )
    rects = [r for r in ElementTree.fromstring(svg).iter(f"{SVG}rect") if r.get("data-series")]
    assert [(r.get("data-series"), r.get("data-label"), r.get("data-value")) for r in rects] == [
        ("radiology", "d1", "6"),
        ("ECG", "d1", "2"),
        ("ECG", "d2", "1"),
    ]
    first, second = rects[0], rects[1]
    # ECG sits on top of radiology: its bottom is radiology's top
    assert float(second.get("y", "0")) + float(second.get("height", "0")) == pytest.approx(
        float(first.get("y", "0")), abs=0.2
    )


def test_an_empty_chart_says_so() -> None:
    svg = line_chart(chart_id="e", title="t", unit="min", labels=["a"], series=[])
    assert "无数据" in svg
    assert not re.search(r"<circle", svg)


def test_the_trend_buckets_cover_the_period() -> None:
    first, last = date(2026, 1, 28), date(2026, 3, 2)
    assert bucket_days(first, last, Bucket.MONTH) == [
        date(2026, 1, 1),
        date(2026, 2, 1),
        date(2026, 3, 1),
    ]
    weeks = bucket_days(first, last, Bucket.WEEK)
    assert weeks[0] == date(2026, 1, 26)  # the Monday of the first day's week
    assert all(d.weekday() == 0 for d in weeks)
    assert weeks[-1] == date(2026, 3, 2)
    assert len(bucket_days(first, last, Bucket.DAY)) == 34


def test_the_default_period_and_step() -> None:
    today = date(2026, 12, 7)
    assert period(DashboardAsk(), ZONE, today) == (date(2026, 11, 8), today)
    assert default_bucket(30) is Bucket.DAY
    assert default_bucket(91) is Bucket.WEEK
    assert default_bucket(365) is Bucket.MONTH
    with pytest.raises(BadRequest, match="must not be after"):
        period(DashboardAsk(since=date(2026, 2, 1), until=date(2026, 1, 1)), ZONE, today)
