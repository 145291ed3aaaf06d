"""Measurements: rate and RR variability, global intervals, frontal axes, ST deviation.

Intervals are global (earliest onset to latest offset over all leads, taken from the median
beat's fiducials), as 12-lead programs report them. Units are in every name.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from ecg.delineate import BeatFiducials

__all__ = [
    "ST_OFFSET_AFTER_J_S",
    "measure_axes",
    "measure_intervals",
    "measure_rhythm",
    "measure_st_deviation",
    "qt_adjusted_for_qrs_ms",
]

FloatArray = npt.NDArray[np.float64]
#: ST deviation is read this long after the J point (QRS offset).
ST_OFFSET_AFTER_J_S = 0.060
#: Isoelectric (PR segment) level: the median over the flattest span this long, looked for
#: within the search span before QRS onset (and after P offset).
ISOELECTRIC_SPAN_S = 0.020
ISOELECTRIC_SEARCH_S = 0.080
#: Framingham's linear QT correction (Sagie et al. 1992): QTc = QT + 154 ms × (1 − RR in s),
#: a linear correction of the kind the AHA/ACCF/HRS recommendations prefer to Bazett's,
#: which over-corrects at fast rates and under-corrects at slow ones.
FRAMINGHAM_SLOPE_MS = 154.0
#: QT adjusted for rate and QRS duration, for a QRS widened by a conduction defect
#: (Rautaharju et al. 2004, the adjustment the AHA/ACCF/HRS recommendations, part IV, give):
#: QT − 155 ms × (RR in s − 1) − 0.93 × (QRS − 139 ms) + k, k −22 ms for men, −34 for women.
QRS_ADJUSTED_RATE_SLOPE_MS = 155.0
QRS_ADJUSTED_QRS_SLOPE = 0.93
QRS_ADJUSTED_QRS_REFERENCE_MS = 139.0
QRS_ADJUSTED_K_MALE_MS = -22.0
QRS_ADJUSTED_K_FEMALE_MS = -34.0


def measure_rhythm(r_peaks: npt.ArrayLike, sampling_rate_hz: float) -> dict[str, float | None]:
    """Heart rate and RR variability from the R peaks.

    Parameters
    ----------
    r_peaks
        R-peak sample indices, increasing.
    sampling_rate_hz
        Samples per second.

    Returns
    -------
    dict
        ``heart_rate_bpm`` (60 000 / mean RR), ``rr_ms`` (mean), ``rr_sdnn_ms`` (SD of RR),
        ``rr_rmssd_ms`` (RMS of successive differences), ``rr_max_ms``; ``None`` when there
        are fewer than two (three for the variability) beats.
    """
    peaks = np.asarray(r_peaks, dtype=np.float64)
    rr_ms = np.diff(peaks) * 1000.0 / float(sampling_rate_hz)
    result: dict[str, float | None] = dict.fromkeys(
        ("heart_rate_bpm", "rr_ms", "rr_sdnn_ms", "rr_rmssd_ms", "rr_max_ms")
    )
    if rr_ms.size >= 1:
        mean_rr = float(rr_ms.mean())
        result["heart_rate_bpm"] = 60000.0 / mean_rr
        result["rr_ms"] = mean_rr
        result["rr_max_ms"] = float(rr_ms.max())
    if rr_ms.size >= 2:
        result["rr_sdnn_ms"] = float(rr_ms.std(ddof=1))
        result["rr_rmssd_ms"] = float(np.sqrt(np.mean(np.diff(rr_ms) ** 2)))
    return result


def measure_intervals(
    fiducials: BeatFiducials, sampling_rate_hz: float, rr_ms: float | None
) -> dict[str, float | None]:
    """PR, P and QRS durations, QT and the rate-corrected QTc of the representative beat.

    Parameters
    ----------
    fiducials
        Fiducials of the median beat (:func:`ecg.delineate.delineate_median_beat`).
    sampling_rate_hz
        Samples per second.
    rr_ms
        Mean RR interval for the QT correction, ms.

    Returns
    -------
    dict
        ``p_ms``, ``pr_ms``, ``qrs_ms``, ``qt_ms``, ``qtc_bazett_ms`` (QT / RR^1/2, RR in s),
        ``qtc_fridericia_ms`` (QT / RR^1/3), ``qtc_framingham_ms`` (QT + 154 ms × (1 − RR));
        ``None`` where a boundary is missing.
    """
    to_ms = 1000.0 / float(sampling_rate_hz)

    def span(start: int | None, stop: int | None) -> float | None:
        if start is None or stop is None or stop <= start:
            return None
        return (stop - start) * to_ms

    qt = span(fiducials.qrs_on, fiducials.t_off)
    result: dict[str, float | None] = {
        "p_ms": span(fiducials.p_on, fiducials.p_off),
        "pr_ms": span(fiducials.p_on, fiducials.qrs_on),
        "qrs_ms": span(fiducials.qrs_on, fiducials.qrs_off),
        "qt_ms": qt,
        "qtc_bazett_ms": None,
        "qtc_fridericia_ms": None,
        "qtc_framingham_ms": None,
    }
    if qt is not None and rr_ms is not None and rr_ms > 0:
        rr_s = rr_ms / 1000.0
        result["qtc_bazett_ms"] = qt / math.sqrt(rr_s)
        result["qtc_fridericia_ms"] = qt / rr_s ** (1.0 / 3.0)
        result["qtc_framingham_ms"] = qt + FRAMINGHAM_SLOPE_MS * (1.0 - rr_s)
    return result


def qt_adjusted_for_qrs_ms(qt_ms: float, rr_ms: float, qrs_ms: float, *, male: bool) -> float:
    """The QT adjusted for heart rate and QRS duration (Rautaharju's QTrr,QRS).

    Where a conduction defect widens the QRS, the QT is longer by part of the widening
    without any prolongation of repolarisation; this adjustment removes it, so the QTc limits
    for prolongation (450 ms men, 460 ms women) apply to it.

    Parameters
    ----------
    qt_ms, rr_ms, qrs_ms
        QT, mean RR and QRS duration, ms.
    male
        The patient's sex (False for a woman, or unknown: the lower of the two values).

    Returns
    -------
    float
        QT − 155 ms × (RR in s − 1) − 0.93 × (QRS − 139 ms) + k, k −22 ms for men and −34 ms
        for women, in ms.
    """
    k = QRS_ADJUSTED_K_MALE_MS if male else QRS_ADJUSTED_K_FEMALE_MS
    rate = QRS_ADJUSTED_RATE_SLOPE_MS * (rr_ms / 1000.0 - 1.0)
    widening = QRS_ADJUSTED_QRS_SLOPE * (qrs_ms - QRS_ADJUSTED_QRS_REFERENCE_MS)
    return qt_ms - rate - widening + k


def _isoelectric(median_uv: FloatArray, fiducials: BeatFiducials, fs: float) -> FloatArray:
    """Level of the PR segment: the flattest 20 ms (over all leads) before QRS onset.

    The flattest stretch, not simply the last 20 ms: the end of a P wave, or the decay of a
    pacemaker stimulus just before a paced QRS, must not tilt the reference level.
    """
    if fiducials.qrs_on is None:
        baseline: FloatArray = np.median(median_uv, axis=1)
        return baseline
    span = max(1, round(ISOELECTRIC_SPAN_S * fs))
    stop = fiducials.qrs_on + 1
    first = max(0, stop - round(ISOELECTRIC_SEARCH_S * fs))
    if fiducials.p_off is not None and fiducials.p_off < fiducials.qrs_on:
        first = max(first, fiducials.p_off)
    if stop - first <= span:
        start = max(0, stop - span)
    else:
        segment = median_uv[:, first:stop]
        windows = np.lib.stride_tricks.sliding_window_view(segment, span, axis=1)
        spread = np.sum(windows.max(axis=2) - windows.min(axis=2), axis=0)
        start = first + int(np.argmin(spread))
    level: FloatArray = np.median(median_uv[:, start : start + span], axis=1)
    return level


def _frontal_pair(
    median_uv: FloatArray, leads: Sequence[str]
) -> tuple[FloatArray, FloatArray] | None:
    """Leads I and aVF, derived from the limb leads that are there."""
    index = {name: i for i, name in enumerate(leads)}
    get = {name: median_uv[i] for name, i in index.items()}
    if "I" in get and "aVF" in get:
        return get["I"], get["aVF"]
    if "I" in get and "II" in get:
        return get["I"], get["II"] - 0.5 * get["I"]
    if "II" in get and "III" in get:
        return get["II"] - get["III"], 0.5 * (get["II"] + get["III"])
    return None


def measure_axes(
    median_uv: npt.ArrayLike,
    leads: Sequence[str],
    fiducials: BeatFiducials,
    sampling_rate_hz: float,
) -> dict[str, float | None]:
    """Frontal-plane P, QRS and T axes from the net areas in leads I and aVF.

    The T area is taken over the T wave itself (from as long before its peak as its end is
    after it), not over the ST segment.

    Parameters
    ----------
    median_uv
        Median beat, microvolts, ``(n_leads, n_samples)``.
    leads
        Lead names, one per row.
    fiducials
        Fiducials of the median beat.
    sampling_rate_hz
        Samples per second.

    Returns
    -------
    dict
        ``p_axis_deg``, ``qrs_axis_deg``, ``t_axis_deg`` in degrees, in ``(-180, 180]``
        (0° points to the patient's left, +90° down); ``None`` when the limb leads needed
        (I and aVF, or two of I, II, III) or the wave's boundaries are missing.
    """
    data = np.asarray(median_uv, dtype=np.float64)
    fs = float(sampling_rate_hz)
    result: dict[str, float | None] = dict.fromkeys(("p_axis_deg", "qrs_axis_deg", "t_axis_deg"))
    pair = _frontal_pair(data - _isoelectric(data, fiducials, fs)[:, None], leads)
    if pair is None:
        return result
    lead_i, lead_avf = pair
    t_on = fiducials.qrs_off
    if fiducials.t_peak is not None and fiducials.t_off is not None and t_on is not None:
        # The T wave proper: as long before its peak as it lasts after it. The ST segment
        # before it carries the ST deviation, which has an axis of its own.
        t_on = max(t_on, 2 * fiducials.t_peak - fiducials.t_off)
    spans = {
        "p_axis_deg": (fiducials.p_on, fiducials.p_off),
        "qrs_axis_deg": (fiducials.qrs_on, fiducials.qrs_off),
        "t_axis_deg": (t_on, fiducials.t_off),
    }
    for key, (start, stop) in spans.items():
        if start is None or stop is None or stop <= start:
            continue
        x = float(np.sum(lead_i[start : stop + 1]))
        y = float(np.sum(lead_avf[start : stop + 1]))
        if x == 0 and y == 0:
            continue
        result[key] = math.degrees(math.atan2(y, x))
    return result


def measure_st_deviation(
    median_uv: npt.ArrayLike,
    leads: Sequence[str],
    fiducials: BeatFiducials,
    sampling_rate_hz: float,
) -> dict[str, float]:
    """ST deviation of each lead at J + 60 ms, relative to the PR-segment level.

    Parameters
    ----------
    median_uv
        Median beat, microvolts, ``(n_leads, n_samples)``.
    leads
        Lead names, one per row.
    fiducials
        Fiducials of the median beat (QRS onset and offset are needed).
    sampling_rate_hz
        Samples per second.

    Returns
    -------
    dict
        Lead name to deviation in microvolts (positive: elevation); empty when the QRS
        boundaries are missing or J + 60 ms falls outside the median beat.
    """
    data = np.asarray(median_uv, dtype=np.float64)
    fs = float(sampling_rate_hz)
    if fiducials.qrs_on is None or fiducials.qrs_off is None:
        return {}
    point = fiducials.qrs_off + round(ST_OFFSET_AFTER_J_S * fs)
    if point >= data.shape[1]:
        return {}
    baseline = _isoelectric(data, fiducials, fs)
    half = max(0, round(0.004 * fs))
    level = data[:, max(0, point - half) : point + half + 1].mean(axis=1)
    return {name: float(level[i] - baseline[i]) for i, name in enumerate(leads)}
