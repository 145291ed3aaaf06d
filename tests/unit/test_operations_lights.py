"""The operations page's lights: each measure judged against its stated thresholds."""

from __future__ import annotations

import pytest

from teleradiology.core.operations import THRESHOLDS, Light, Measure, Threshold, worst


def test_a_value_is_green_below_amber_amber_below_red_and_red_from_red() -> None:
    t = Threshold(amber=60, red=600, unit="s")
    assert [t.judge(v) for v in (0, 59.9, 60, 599, 600, 5000)] == [
        Light.GREEN,
        Light.GREEN,
        Light.AMBER,
        Light.AMBER,
        Light.RED,
        Light.RED,
    ]
    assert t.judge(None) is Light.RED  # not measured: the store did not answer
    assert t.stated() == "amber ≥ 60 s, red ≥ 600 s"


def test_thresholds_out_of_order_are_refused() -> None:
    with pytest.raises(ValueError, match="amber <= red"):
        Threshold(amber=10, red=5, unit="ms")


def test_every_measure_has_thresholds_and_the_page_shows_the_worst() -> None:
    assert set(THRESHOLDS) == set(Measure)
    assert worst([Light.GREEN, Light.RED, Light.AMBER]) is Light.RED
    assert worst([Light.GREEN, Light.AMBER]) is Light.AMBER
    assert worst([]) is Light.GREEN
    # one failed job already wants the administrator's attention
    assert THRESHOLDS[Measure.FAILED_JOBS].judge(1) is Light.AMBER
