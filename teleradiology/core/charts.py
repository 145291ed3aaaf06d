"""Charts drawn on the server as SVG: lines for trends, stacked bars for volumes.

No script and no style attribute (the pages' CSP allows neither inline): presentation
attributes only. Each series has its own dash pattern and marker besides its colour, so a
chart printed in black and white still tells its lines apart. Every point carries
``data-series``, ``data-label`` and ``data-value`` so that what is drawn can be checked.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

WIDTH = 720
HEIGHT = 250
_LEFT, _RIGHT, _TOP, _BOTTOM = 58, 14, 34, 42
_COLOURS = ("#1f5fa8", "#c0392b", "#2e8b57", "#8e44ad", "#d68910")
_DASHES = ("", "6 4", "2 3", "10 3 2 3", "1 5")
#: At most this many labels under the x axis; the others are left out between them.
MAX_X_LABELS = 12


@dataclass(frozen=True, kw_only=True)
class Series:
    """One line, or one layer of the bars: a value (or None: no figure) per label."""

    name: str
    values: Sequence[float | None]


def nice_ceiling(value: float) -> float:
    """The top of a y axis of four equal steps, each 1, 2 or 5 times a power of ten, at
    or above ``value`` (4 for nothing)."""
    if value <= 0 or not math.isfinite(value):
        return 4.0
    step = value / 4
    power = 10.0 ** math.floor(math.log10(step))
    for factor in (1.0, 2.0, 5.0, 10.0):
        if step <= factor * power * (1 + 1e-9):
            return 4 * factor * power
    return 40.0 * power


def _number(value: float) -> str:
    return f"{value:.0f}" if abs(value) >= 10 or value == int(value) else f"{value:.1f}"


def _frame(title: str, unit: str, top: float, labels: Sequence[str], chart_id: str) -> list[str]:
    """The chart's box, title, y grid with its figures, and the x labels."""
    plot_w, plot_h = WIDTH - _LEFT - _RIGHT, HEIGHT - _TOP - _BOTTOM
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{escape(chart_id)}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}" '
        'font-family="sans-serif" font-size="12">',
        f"<title>{escape(title)}</title>",
        f'<text x="{_LEFT}" y="16" font-size="13" font-weight="bold">{escape(title)}</text>',
        f'<text x="4" y="{_TOP - 6}" fill="#555">{escape(unit)}</text>',
    ]
    for n in range(5):
        value = top * n / 4
        y = _TOP + plot_h - plot_h * n / 4
        parts.append(
            f'<line x1="{_LEFT}" x2="{_LEFT + plot_w}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="{"#333" if n == 0 else "#ccc"}" stroke-width="1"/>'
            f'<text x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{_number(value)}</text>'
        )
    every = max(1, math.ceil(len(labels) / MAX_X_LABELS))
    for i, label in enumerate(labels):
        if i % every == 0:
            parts.append(
                f'<text x="{_x(i, len(labels)):.1f}" y="{HEIGHT - _BOTTOM + 16}" '
                f'text-anchor="middle">{escape(label)}</text>'
            )
    return parts


def _x(i: int, count: int) -> float:
    """The centre of the i-th of ``count`` slots along the x axis."""
    plot_w = WIDTH - _LEFT - _RIGHT
    return _LEFT + plot_w * (i + 0.5) / max(count, 1)


def _y(value: float, top: float) -> float:
    plot_h = HEIGHT - _TOP - _BOTTOM
    return _TOP + plot_h - plot_h * min(value, top) / top


def _legend(series: Sequence[Series], *, bars: bool) -> list[str]:
    parts = []
    x = WIDTH - _RIGHT
    for n, s in reversed(list(enumerate(series))):
        width = 7 * len(s.name) + 34
        x -= width
        colour = _COLOURS[n % len(_COLOURS)]
        if bars:
            mark = f'<rect x="{x}" y="8" width="18" height="10" fill="{colour}"/>'
        else:
            mark = (
                f'<line x1="{x}" x2="{x + 18}" y1="13" y2="13" stroke="{colour}" '
                f'stroke-width="2" stroke-dasharray="{_DASHES[n % len(_DASHES)]}"/>'
            )
        parts.append(mark + f'<text x="{x + 22}" y="17">{escape(s.name)}</text>')
    return parts


def _empty(parts: list[str], empty: str) -> list[str]:
    return [
        *parts,
        f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" fill="#777">'
        f"{escape(empty)}</text>",
    ]


def line_chart(
    *,
    chart_id: str,
    title: str,
    unit: str,
    labels: Sequence[str],
    series: Sequence[Series],
    top: float | None = None,
    empty: str = "无数据",
) -> str:
    """Lines over the labels; a None value breaks its line. ``top`` fixes the y axis (a
    rate's 100); otherwise the axis ends at a round figure above the largest value.
    ``empty`` is what a chart without a value says."""
    values = [v for s in series for v in s.values if v is not None]
    top = top if top is not None else nice_ceiling(max(values, default=0.0))
    parts = _frame(title, unit, top, labels, chart_id)
    if not values:
        return "".join(_empty(parts, empty)) + "</svg>"
    for n, s in enumerate(series):
        colour, dash = _COLOURS[n % len(_COLOURS)], _DASHES[n % len(_DASHES)]
        runs: list[list[str]] = [[]]
        for i, v in enumerate(s.values):
            if v is None:
                runs.append([])
                continue
            x, y = _x(i, len(labels)), _y(v, top)
            runs[-1].append(f"{x:.1f},{y:.1f}")
            parts.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{colour}" '
                f'data-series="{escape(s.name)}" data-label="{escape(labels[i])}" '
                f'data-value="{_number(v)}"><title>{escape(s.name)} {escape(labels[i])}: '
                f"{_number(v)}</title></circle>"
            )
        for run in runs:
            if len(run) > 1:
                parts.append(
                    f'<polyline fill="none" stroke="{colour}" stroke-width="2" '
                    f'stroke-dasharray="{dash}" points="{" ".join(run)}"/>'
                )
    return "".join(parts + _legend(series, bars=False)) + "</svg>"


def bar_chart(
    *,
    chart_id: str,
    title: str,
    unit: str,
    labels: Sequence[str],
    series: Sequence[Series],
    empty: str = "无数据",
) -> str:
    """Bars over the labels, the series stacked from the first at the bottom."""
    totals = [sum(s.values[i] or 0.0 for s in series) for i in range(len(labels))]
    top = nice_ceiling(max(totals, default=0.0))
    parts = _frame(title, unit, top, labels, chart_id)
    if not any(totals):
        return "".join(_empty(parts, empty)) + "</svg>"
    slot = (WIDTH - _LEFT - _RIGHT) / max(len(labels), 1)
    width = max(1.0, slot * 0.7)
    for i, label in enumerate(labels):
        base = 0.0
        for n, s in enumerate(series):
            v = s.values[i] or 0.0
            if v <= 0:
                continue
            y_top, y_base = _y(base + v, top), _y(base, top)
            parts.append(
                f'<rect x="{_x(i, len(labels)) - width / 2:.1f}" y="{y_top:.1f}" '
                f'width="{width:.1f}" height="{y_base - y_top:.1f}" '
                f'fill="{_COLOURS[n % len(_COLOURS)]}" data-series="{escape(s.name)}" '
                f'data-label="{escape(label)}" data-value="{_number(v)}">'
                f"<title>{escape(s.name)} {escape(label)}: {_number(v)}</title></rect>"
            )
            base += v
    return "".join(parts + _legend(series, bars=True)) + "</svg>"
