"""QT and its rate corrections from the median beat's fiducials."""

from __future__ import annotations

import pytest

from ecg.delineate import BeatFiducials
from ecg.measure import measure_intervals, qt_adjusted_for_qrs_ms

FS = 500.0
#: QRS onset to T end: 200 samples at 500 Hz, a QT of 400 ms.
FIDUCIALS = BeatFiducials(qrs_on=100, qrs_off=145, t_peak=250, t_off=300)


def test_at_60_bpm_every_correction_is_the_qt_itself() -> None:
    found = measure_intervals(FIDUCIALS, FS, 1000.0)
    assert found["qt_ms"] == pytest.approx(400.0)
    for key in ("qtc_bazett_ms", "qtc_fridericia_ms", "qtc_framingham_ms"):
        assert found[key] == pytest.approx(400.0), key


def test_framingham_is_linear_in_rr_and_corrects_less_than_bazett_at_speed() -> None:
    """120 bpm: Framingham adds 154 ms × (1 − 0.5) = 77 ms; Bazett divides by √0.5."""
    found = measure_intervals(FIDUCIALS, FS, 500.0)
    assert found["qtc_framingham_ms"] == pytest.approx(477.0)
    assert found["qtc_bazett_ms"] == pytest.approx(400.0 / 0.5**0.5)
    slow = measure_intervals(FIDUCIALS, FS, 1250.0)
    assert slow["qtc_framingham_ms"] == pytest.approx(400.0 - 0.25 * 154.0)


def test_no_correction_without_a_t_end_or_a_rate() -> None:
    missing = measure_intervals(BeatFiducials(qrs_on=100), FS, 800.0)
    assert missing["qt_ms"] is None
    assert missing["qtc_framingham_ms"] is None
    assert measure_intervals(FIDUCIALS, FS, None)["qtc_framingham_ms"] is None


def test_the_qrs_adjusted_qt_removes_the_widening_and_the_rate() -> None:
    """Rautaharju's QTrr,QRS: QT − 155 × (RR − 1) − 0.93 × (QRS − 139) + k (ms, RR in s)."""
    # 48 bpm (RR 1250 ms), QRS 162 ms, QT 496 ms, a man: 496 − 38.75 − 21.39 − 22
    assert qt_adjusted_for_qrs_ms(496.0, 1250.0, 162.0, male=True) == pytest.approx(413.86)
    assert qt_adjusted_for_qrs_ms(496.0, 1250.0, 162.0, male=False) == pytest.approx(401.86)
    # 10 ms more QRS takes 9.3 ms off; at 60 bpm the rate term is nil
    assert qt_adjusted_for_qrs_ms(450.0, 1000.0, 149.0, male=True) == pytest.approx(
        450.0 - 9.3 - 22
    )
