"""Wave delineation: P, QRS and T boundaries per beat and on the median (representative) beat.

Boundaries are *global* (all leads together), as in the 12-lead programs whose intervals
readers are used to:

* QRS onset and offset come from the spatial velocity (the norm over leads of the signal's
  slope): walking outwards from the steepest slope on each side of R, the QRS ends where the
  velocity stays below a fraction of its peak (longer after the QRS than before it, so the
  pause at the rounded tip of a broad S wave is not taken for the end). A wide paced QRS
  whose ST rises at once never gets that quiet; its end is then sought after its last steep
  deflection at a higher level.
* T and P waves are located on the first principal component of their search window across
  the leads (a lead combination in which the wave is largest, with its polarity kept);
  the P peak is the component's most prominent extremum, hump or trough (so a sloping PR
  segment or the edge of the window is not taken for it, and a P wave lying below the
  QRS-onset level is still a hump), the T peak its largest deviation from the isoelectric
  level no later than a rate-corrected bound after R (so the next P wave on a fast rhythm is
  not taken for it), and the ends are found with the trapezium-area method
  (Vázquez-Seisdedos et al., 2011), which is robust to noise and to a baseline that is not
  quite flat. A biphasic P wave ends after its terminal lobe.
* The P search starts no earlier than the previous beat's T end, and a P wave is reported
  only when it stands above the window's noise and above the other waves in it (flutter or
  fibrillation waves come many of a size).

On the median beat, where noise is low, the global boundaries follow the 12-lead programs
(GE 12SL and its kind) more closely: QRS onset is the earliest onset over the leads and QRS
offset the latest offset, each lead thresholded on its own slope; P onset and T end are where
the spatial velocity of the low-passed leads falls below a fraction of its peak on the wave's
outer limb.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import ndimage
from scipy import signal as sps

from ecg.errors import EcgError

__all__ = [
    "BeatFiducials",
    "MedianBeat",
    "compute_median_beat",
    "delineate_beats",
    "delineate_median_beat",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: Spatial-velocity fractions of its QRS peak that mark QRS onset and offset.
QRS_ONSET_FRACTION = 0.06
QRS_OFFSET_FRACTION = 0.12
#: When the slope never falls below that within the QRS's greatest width, the end is sought
#: after its last deflection steeper than this fraction, at these fractions in turn.
QRS_LAST_DEFLECTION_FRACTION = 0.5
QRS_OFFSET_FALLBACK_FRACTIONS = (0.2, 0.3)
#: ... and the onset, when the slope never gets that quiet before R, before its first
#: deflection steeper than that fraction.
QRS_ONSET_FALLBACK_FRACTIONS = (0.12, 0.2, 0.3)
QRS_ONSET_FALLBACK_REACH_S = 0.08
#: How long the velocity must stay below the fraction (s).
QRS_HOLD_S = 0.012
#: ... and after QRS offset, longer: the slope also pauses at the rounded tip of a broad S
#: (or R') wave inside the QRS, but not for as long as along the ST segment.
QRS_OFFSET_HOLD_S = 0.024
#: The QRS bounds are looked for this long before R, and this long after R or
#: QRS_MAX_WIDTH_S after QRS onset, whichever is later (a wide paced or bundle-branch QRS
#: whose detected R is its first deflection).
QRS_SEARCH_BEFORE_S = 0.16
QRS_SEARCH_AFTER_S = 0.20
QRS_MAX_WIDTH_S = 0.24
#: P wave search window before QRS onset (s).
P_SEARCH_S = 0.30
P_GAP_S = 0.04
#: ... and the P wave's end is looked for up to this long before QRS onset: the PR segment's
#: last stretch, where the slope towards the Q wave begins, is not the P wave's.
P_END_GAP_S = 0.03
#: A P wave must stand this many times above the window's noise, and above this amplitude.
P_MIN_SNR = 3.0
P_MIN_UV = 20.0
#: ... and stand this many times above any other wave in the window further than
#: P_RIVAL_GAP_S from its peak (flutter or fibrillation waves are many of a size).
P_DOMINANCE = 1.5
P_RIVAL_GAP_S = 0.08
#: A biphasic P wave's terminal lobe (opposite polarity, before the P search ends) counts
#: when its prominence is at least this share of the main lobe's.
P_BIPHASIC_SHARE = 0.2
#: T wave search window after QRS offset (s): from offset + start to R + min(...) below.
T_START_AFTER_QRS_S = 0.06
T_STEEP_S = 0.10
T_SPAN_S = 0.09
P_STEEP_S = 0.06
P_SPAN_S = 0.035
#: The T peak lies at most this times the square root of the RR interval (s) after R: as
#: late as a QTc of about 580 ms (T end ~100 ms after the peak) puts it, and before the next
#: P wave on a fast rhythm.
T_PEAK_MAX_QTC_S = 0.45
#: A wave's peak is its most prominent extremum, prominence taken within this span.
WAVE_PROMINENCE_S = 0.25
#: Median beat: global QRS onset is the earliest lead's, offset the latest lead's; in each lead
#: the QRS is where its own slope stays above this fraction of its peak slope. A lead takes
#: part when that threshold stands this many times above its typical slope over the beat
#: (its noise and slow waves) and its QRS slope is at least this share of the largest lead's.
LEAD_QRS_FRACTION = 0.10
LEAD_NOISE_MARGIN = 2.0
LEAD_MIN_SHARE = 0.05
#: Median beat: global P onset on the spatial velocity of the low-passed leads, where it
#: falls below this fraction of its peak on the wave's outer limb (the ξ = 0.5 of Martínez
#: et al. 2004).
P_ONSET_VELOCITY_FRACTION = 0.5
#: ... and no later than where the P wave has risen above its baseline by this share of its
#: amplitude (a slowly rising P wave passes the velocity threshold late), when that baseline
#: is level: it moves by no more than P_BASELINE_SHARE of the wave's amplitude.
P_RISEN_FRACTION = 0.05
P_BASELINE_SHARE = 0.25
#: Median beat: global T end is the latest of the leads' own T ends (trapezium method on each
#: low-passed lead), over the leads whose T wave is at least this share of the largest lead's
#: and at least LEAD_T_MIN_UV (where a T wave is low its end is lost in noise and drift).
#: Each lead's T peak is its largest deviation within LEAD_T_PEAK_S of the global T peak,
#: and its end is looked for within LEAD_T_SPAN_S after its steepest descent: a reference
#: point beyond the end of a slowly returning T wave, as the method wants.
LEAD_T_SHARE = 0.5
LEAD_T_MIN_UV = 50.0
LEAD_T_PEAK_S = 0.04
LEAD_T_SPAN_S = 0.12
#: ... and a lead's end counts where its T wave has come down to this share of its peak.
LEAD_T_ENDED_SHARE = 0.5
#: Median beat window around the R peak (s).
MEDIAN_BEFORE_S = 0.40
MEDIAN_AFTER_S = 0.70


@dataclass(frozen=True, kw_only=True)
class BeatFiducials:
    """Wave boundaries of one beat, as sample indices (``None``: not found).

    For a beat of a record the indices count from the record's first sample; for the median
    beat they count from the first sample of :attr:`MedianBeat.samples_uv`.
    """

    p_on: int | None = None
    p_off: int | None = None
    qrs_on: int | None = None
    qrs_off: int | None = None
    t_peak: int | None = None
    t_off: int | None = None

    def shifted(self, offset: int) -> BeatFiducials:
        """The same fiducials with `offset` samples added to each one found."""

        def move(value: int | None) -> int | None:
            return None if value is None else value + offset

        return BeatFiducials(
            p_on=move(self.p_on),
            p_off=move(self.p_off),
            qrs_on=move(self.qrs_on),
            qrs_off=move(self.qrs_off),
            t_peak=move(self.t_peak),
            t_off=move(self.t_off),
        )

    def to_dict(self) -> dict[str, int | None]:
        """The six fiducials by name (JSON-ready)."""
        return {
            "p_on": self.p_on,
            "p_off": self.p_off,
            "qrs_on": self.qrs_on,
            "qrs_off": self.qrs_off,
            "t_peak": self.t_peak,
            "t_off": self.t_off,
        }


@dataclass(frozen=True, kw_only=True, eq=False)
class MedianBeat:
    """The representative beat: the sample-wise median of the dominant beats.

    Parameters
    ----------
    samples_uv
        Microvolts, shape ``(n_leads, n_samples)``, lead order as in the record.
    r_index
        Sample of the R peak within `samples_uv`.
    n_beats
        How many beats the median was taken over.
    rr_s
        Median RR interval of those beats, seconds.
    """

    samples_uv: FloatArray
    r_index: int
    n_beats: int
    rr_s: float


def _check(signals_uv: npt.ArrayLike, sampling_rate_hz: float) -> FloatArray:
    if not np.isfinite(sampling_rate_hz) or sampling_rate_hz <= 0:
        raise EcgError(f"sampling_rate_hz must be a finite number > 0, got {sampling_rate_hz!r}")
    data = np.asarray(signals_uv, dtype=np.float64)
    if data.ndim == 1:
        data = data[np.newaxis, :]
    if data.ndim != 2:
        raise EcgError(f"signals must have shape (n_leads, n_samples), got {data.shape}")
    if not np.isfinite(data).all():
        raise EcgError("signals hold NaN or infinite values")
    return data


def _smooth(data: FloatArray, samples: int) -> FloatArray:
    if samples <= 1:
        return data
    out: FloatArray = ndimage.uniform_filter1d(data, size=samples, axis=-1, mode="nearest")
    return out


def _spatial_velocity(window: FloatArray, fs: float) -> FloatArray:
    smooth = _smooth(window, max(1, round(0.008 * fs)))
    slope = np.gradient(smooth, axis=1) * fs
    result: FloatArray = np.sqrt(np.sum(slope * slope, axis=0))
    return result


def _stays_below(below: npt.NDArray[np.bool_], hold: int) -> npt.NDArray[np.bool_]:
    """``out[i]``: ``below[i : i + hold]`` are all true (clipped at the end)."""
    if hold <= 1:
        return below
    counts = np.convolve(below.astype(np.int32), np.ones(hold, dtype=np.int32), mode="full")
    # counts[i + hold - 1] counts below[i : i + hold]
    run: npt.NDArray[np.bool_] = counts[hold - 1 : hold - 1 + below.size] >= np.minimum(
        hold, below.size - np.arange(below.size)
    )
    return run


def _qrs_bounds(window: FloatArray, r: int, fs: float) -> tuple[int | None, int | None]:
    m = window.shape[1]
    velocity = _spatial_velocity(window, fs)
    around = max(1, round(0.05 * fs))
    peak = float(np.max(velocity[max(0, r - around) : min(m, r + around + 1)]))
    if peak <= 0:
        return None, None
    hold = max(1, round(QRS_HOLD_S * fs))
    hold_after = max(1, round(QRS_OFFSET_HOLD_S * fs))
    lo = max(0, r - round(QRS_SEARCH_BEFORE_S * fs))
    # Walk outwards from the steepest slope on each side of R, not from R itself: the slope
    # is nil at a broad, rounded R (or S) wave's tip, which is not the end of the QRS.
    up = max(0, r - around) + int(np.argmax(velocity[max(0, r - around) : r + 1]))
    down = r + int(np.argmax(velocity[r : min(m, r + around + 1)]))
    onset = _qrs_onset(velocity, lo, up, peak, hold, round(QRS_ONSET_FALLBACK_REACH_S * fs))
    start = onset if onset is not None else r
    hi = min(m, max(r + round(QRS_SEARCH_AFTER_S * fs), start + round(QRS_MAX_WIDTH_S * fs)))
    offset: int | None = None
    quiet = _stays_below(velocity[down:hi] < QRS_OFFSET_FRACTION * peak, hold_after)
    hits = np.flatnonzero(quiet)
    if hits.size:
        return onset, down + int(hits[0])
    # An ST segment that rises steeply at once (a wide paced or bundle-branch QRS) keeps the
    # slope above the quiet level: the end is then where the slope, after the QRS's last
    # steep deflection, first falls to a higher level.
    steep = np.flatnonzero(velocity[r:hi] >= QRS_LAST_DEFLECTION_FRACTION * peak)
    last = r + int(steep[-1]) if steep.size else r
    for fraction in QRS_OFFSET_FALLBACK_FRACTIONS:
        quiet = _stays_below(velocity[last:hi] < fraction * peak, hold_after)
        hits = np.flatnonzero(quiet)
        if hits.size:
            offset = last + int(hits[0])
            break
    return onset, offset


def _qrs_onset(
    velocity: FloatArray, lo: int, up: int, peak: float, hold: int, reach: int
) -> int | None:
    """QRS onset: walking back from the steepest upstroke `up` towards `lo`, where the
    spatial velocity stays below QRS_ONSET_FRACTION of its `peak` for `hold` samples.

    Where noise, or a P wave running into the QRS, never lets it get that quiet, the onset is
    sought before the QRS's first steep deflection at higher levels in turn, and failing that
    is the velocity's lowest point there (the modulus minimum of Martínez et al. 2004).
    """
    before = velocity[lo : up + 1][::-1]
    hits = np.flatnonzero(_stays_below(before < QRS_ONSET_FRACTION * peak, hold))
    if hits.size:
        return up - int(hits[0])
    steep = np.flatnonzero(before >= QRS_LAST_DEFLECTION_FRACTION * peak)
    first = up - int(steep[-1]) if steep.size else up
    lo = max(lo, first - reach)
    if first - lo < 2:
        return None
    earlier = velocity[lo : first + 1][::-1]
    for fraction in QRS_ONSET_FALLBACK_FRACTIONS:
        hits = np.flatnonzero(_stays_below(earlier < fraction * peak, hold))
        if hits.size:
            return first - int(hits[0])
    return lo + int(np.argmin(velocity[lo : first + 1]))


def _wave_peak(curve: FloatArray, fs: float) -> tuple[int, float, float]:
    """The most prominent extremum of `curve`, of either sign (a wave's peak).

    Prominence is measured within a window of WAVE_PROMINENCE_S, so a sloping baseline or
    the edge of the search window, which only reach their largest value at an end, lose to
    a real wave; falls back to the largest absolute value when there is no extremum.

    Returns the peak's index, its polarity (+1: a hump, -1: a trough, whatever the level
    of the curve there) and its prominence.
    """
    wlen = max(3, round(WAVE_PROMINENCE_S * fs))
    best_index = int(np.argmax(np.abs(curve)))
    best_sign = 1.0 if curve[best_index] >= 0 else -1.0
    best = -1.0
    for sign in (1.0, -1.0):
        found, props = sps.find_peaks(sign * curve, prominence=0.0, wlen=wlen)
        if found.size:
            k = int(np.argmax(props["prominences"]))
            if float(props["prominences"][k]) > best:
                best = float(props["prominences"][k])
                best_index = int(found[k])
                best_sign = sign
    if best < 0:
        best = abs(float(curve[best_index]))
    return best_index, best_sign, best


def _principal(segment: FloatArray) -> FloatArray:
    """First principal component of a multi-lead segment (one lead: the lead)."""
    if segment.shape[0] == 1:
        return segment[0].copy()
    centred = segment - segment.mean(axis=1, keepdims=True)
    u, _, _ = np.linalg.svd(centred, full_matrices=False)
    direction = u[:, 0]
    result: FloatArray = direction @ segment
    return result


def _trapezium(
    curve: FloatArray, peak: int, limit: int, steep_s: float, span_s: float, fs: float
) -> int | None:
    """Trapezium-area end of a wave whose peak is at `peak`, searching towards `limit`.

    `curve` is oriented so the wave is positive; works in both directions. The point of
    steepest descent is looked for within `steep_s` of the peak, and the end within
    `span_s` after that point.
    """
    step = 1 if limit >= peak else -1
    if abs(limit - peak) < 3:
        return None
    idx = np.arange(peak, limit, step)
    values = curve[idx]
    slope = np.diff(values)
    reach = max(1, min(slope.size, round(steep_s * fs)))
    xm = int(np.argmin(slope[:reach]))
    xr = min(idx.size - 1, xm + max(2, round(span_s * fs)))
    if xr <= xm:
        return None
    positions = np.arange(xm, xr + 1)
    area = 0.5 * (values[xm] - values[positions]) * (2 * xr - positions - xm)
    return int(idx[xm + int(np.argmax(area))])


def _latest_lead_t_end(
    level: FloatArray, t_peak: int, t_lo: int, t_reach: int, limit: int, fs: float
) -> int | None:
    """Global T end of a median beat: the latest of the leads' own T ends.

    `level` holds the low-passed leads less their PR-segment level; the T wave is looked for
    from `t_lo`, its peak no later than `t_reach`, its end before `limit`. Each lead's T end
    is found by the trapezium method on the lead itself, oriented by the sign of its T peak
    (the largest deviation within LEAD_T_PEAK_S of the global peak `t_peak`); only leads whose
    T wave is at least LEAD_T_SHARE of the largest and LEAD_T_MIN_UV take part, and only where
    the end found has come down to LEAD_T_ENDED_SHARE of the peak (a low, flat T wave that
    never falls gives an end far out on the baseline); ``None`` when no lead does.
    """
    reach = round(LEAD_T_PEAK_S * fs)
    lo, hi = max(t_lo, t_peak - reach), min(t_reach, t_peak + reach + 1)
    if hi - lo < 1 or limit - t_lo < 3:
        return None
    peaks = lo + np.argmax(np.abs(level[:, lo:hi]), axis=1)
    amplitudes = np.abs(level[np.arange(level.shape[0]), peaks])
    taking_part = amplitudes >= max(LEAD_T_MIN_UV, LEAD_T_SHARE * float(amplitudes.max()))
    ends: list[int] = []
    for i in np.flatnonzero(taking_part):
        peak = int(peaks[i])
        curve = np.zeros(level.shape[1])
        curve[t_lo:limit] = np.sign(level[i, peak]) * level[i, t_lo:limit]
        end = _trapezium(curve, peak, limit, T_STEEP_S, LEAD_T_SPAN_S, fs)
        if end is not None and curve[end] <= LEAD_T_ENDED_SHARE * curve[peak]:
            ends.append(end)
    return max(ends) if ends else None


def _delineate_window(
    window: FloatArray,
    r: int,
    rr_s: float,
    fs: float,
    *,
    lowpass: FloatArray | None = None,
    global_ends: bool = False,
    p_floor: int | None = None,
) -> BeatFiducials:
    """Delineate one beat inside `window` (``(n_leads, m)``, R at column `r`)."""
    m = window.shape[1]
    qrs_on, qrs_off = _qrs_bounds(window, r, fs)
    slow = lowpass if lowpass is not None else window
    if qrs_on is None or qrs_off is None:
        return BeatFiducials(qrs_on=qrs_on, qrs_off=qrs_off)
    if global_ends:
        qrs_on, qrs_off = _lead_qrs_bounds(window, r, fs, qrs_on, qrs_off)
        velocity = _spatial_velocity(slow, fs)
    iso_lo = max(0, qrs_on - round(0.02 * fs))
    baseline = np.median(slow[:, iso_lo : qrs_on + 1], axis=1, keepdims=True)
    level = slow - baseline
    # T wave
    t_peak: int | None = None
    t_off: int | None = None
    rr = rr_s if np.isfinite(rr_s) and rr_s > 0 else 1.0
    t_lo = qrs_off + round(T_START_AFTER_QRS_S * fs)
    t_hi = min(m - 1, r + round(min(0.16 + 0.5 * rr, rr - 0.1, 0.8) * fs))
    if t_hi - t_lo > round(0.06 * fs):
        component = _principal(level[:, t_lo:t_hi])
        # The T peak comes no later than a rate-corrected bound after R: a wave beyond it is
        # the next beat's P wave on a fast rhythm, not this beat's T.
        reach_t = max(3, min(t_hi, r + round(T_PEAK_MAX_QTC_S * np.sqrt(rr) * fs)) - t_lo)
        peak_rel = int(np.argmax(np.abs(component[:reach_t])))
        sign = 1.0 if component[peak_rel] >= 0 else -1.0
        t_peak = t_lo + peak_rel
        curve = np.zeros(m)
        curve[t_lo:t_hi] = sign * component
        span_end = min(t_hi, t_peak + round(0.5 * rr * fs))
        t_off = _trapezium(curve, t_peak, span_end, T_STEEP_S, T_SPAN_S, fs)
        if global_ends:
            latest = _latest_lead_t_end(level, t_peak, t_lo, t_lo + reach_t, span_end, fs)
            t_off = latest if latest is not None else t_off
    # P wave
    p_on: int | None = None
    p_off: int | None = None
    p_hi = qrs_on - round(P_GAP_S * fs)
    p_lo = max(0, qrs_on - round(min(P_SEARCH_S, 0.45 * rr) * fs))
    if p_floor is not None:
        # The P wave follows the previous beat's T wave: search no earlier than its end.
        p_lo = max(p_lo, p_floor)
    if p_hi - p_lo > round(0.08 * fs):
        segment = level[:, p_lo : qrs_on + 1]
        component = _principal(segment)
        component = component - component[-1]
        search = component[: p_hi - p_lo]
        peak_rel, sign, amplitude = _wave_peak(search, fs)
        noise = float(np.median(np.abs(np.diff(search)))) * fs * 0.01 + 1e-9
        rival = _rival_prominence(search, peak_rel, fs)
        if (
            amplitude >= P_MIN_UV
            and amplitude >= P_MIN_SNR * noise
            and amplitude >= P_DOMINANCE * rival
        ):
            curve = np.zeros(m)
            curve[p_lo : qrs_on + 1] = sign * component
            p_peak = p_lo + peak_rel
            # The P wave ends before the PR segment's last P_END_GAP_S (unless its peak is so
            # late that the wave would have no room to end in).
            p_end = min(
                qrs_on - round(0.01 * fs),
                max(qrs_on - round(P_END_GAP_S * fs), p_peak + round(P_SPAN_S * fs)),
            )
            p_off = _trapezium(curve, p_peak, p_end, P_STEEP_S, P_SPAN_S, fs)
            p_on = _trapezium(curve, p_peak, p_lo, P_STEEP_S, P_SPAN_S, fs)
            # A biphasic P wave: a terminal lobe of opposite polarity, at least a share of
            # the main lobe's size and clear of the QRS, ends the wave after it.
            second = _second_lobe(curve, p_peak, p_hi, amplitude)
            if second is not None:
                p_off = _trapezium(-curve, second, p_end, P_STEEP_S, P_SPAN_S, fs)
            if global_ends and p_on is not None:
                # The trapezium places the onset roughly; the velocity threshold on the
                # wave's first limb, just after it, places it precisely, unless the wave
                # had already left its baseline there.
                reach = round(P_STEEP_S * fs)
                limb = min(p_peak, p_on + reach)
                p_on = _velocity_edge(velocity, limb, p_lo, reach, P_ONSET_VELOCITY_FRACTION)
                if p_on is not None:
                    p_on = _risen_start(curve, p_on, p_peak, p_lo, fs)
    return BeatFiducials(
        p_on=p_on, p_off=p_off, qrs_on=qrs_on, qrs_off=qrs_off, t_peak=t_peak, t_off=t_off
    )


def _rival_prominence(curve: FloatArray, peak: int, fs: float) -> float:
    """The largest prominence of any extremum of `curve` further than P_RIVAL_GAP_S from
    `peak` (0 if none): what else in the window looks like a wave."""
    wlen = max(3, round(WAVE_PROMINENCE_S * fs))
    gap = round(P_RIVAL_GAP_S * fs)
    best = 0.0
    for sign in (1.0, -1.0):
        found, props = sps.find_peaks(sign * curve, prominence=0.0, wlen=wlen)
        far = np.abs(found - peak) > gap
        if far.any():
            best = max(best, float(props["prominences"][far].max()))
    return best


def _second_lobe(curve: FloatArray, peak: int, limit: int, amplitude: float) -> int | None:
    """The trough of a lobe of opposite polarity next to the wave peaking at `peak`.

    Looked for strictly between `peak` and `limit` (either side) on `curve` (oriented so the
    wave is positive): the most prominent minimum there, if its prominence is at least
    P_BIPHASIC_SHARE of the wave's `amplitude`; ``None`` otherwise.
    """
    step = 1 if limit >= peak else -1
    if abs(limit - peak) < 4:
        return None
    idx = np.arange(peak + step, limit, step)
    values = -curve[idx]
    found, props = sps.find_peaks(values, prominence=0.0)
    if not found.size:
        return None
    k = int(np.argmax(props["prominences"]))
    if float(props["prominences"][k]) < P_BIPHASIC_SHARE * amplitude:
        return None
    return int(idx[found[k]])


def _lead_qrs_bounds(
    window: FloatArray, r: int, fs: float, onset: int, offset: int
) -> tuple[int, int]:
    """Global QRS bounds of a median beat: earliest onset and latest offset over the leads.

    Each lead's QRS is where the lead's own slope stays above a fraction of its peak slope;
    a lead whose threshold is not well above its own typical slope (a noisy lead, or one with
    hardly any QRS) takes no part, so it cannot stretch the interval with its noise. The
    spatial-velocity bounds (`onset`, `offset`) are kept if no lead gives one.
    """
    m = window.shape[1]
    slope = np.abs(np.gradient(_smooth(window, max(1, round(0.008 * fs))), axis=1))
    around = max(1, round(0.05 * fs))
    near = slope[:, max(0, r - around) : min(m, r + around + 1)]
    peaks = near.max(axis=1)
    if peaks.max() <= 0:
        return onset, offset
    hold = max(1, round(QRS_HOLD_S * fs))
    lo = max(0, r - round(QRS_SEARCH_BEFORE_S * fs))
    hi = min(m, r + round(QRS_SEARCH_AFTER_S * fs))
    onsets: list[int] = []
    offsets: list[int] = []
    typical = np.median(slope, axis=1)
    taking_part = (LEAD_QRS_FRACTION * peaks >= LEAD_NOISE_MARGIN * typical) & (
        peaks >= LEAD_MIN_SHARE * peaks.max()
    )
    for i in np.flatnonzero(taking_part):
        threshold = LEAD_QRS_FRACTION * peaks[i]
        quiet = _stays_below(slope[i, lo : r + 1][::-1] < threshold, hold)
        hits = np.flatnonzero(quiet)
        if hits.size:
            onsets.append(r - int(hits[0]))
        quiet = _stays_below(slope[i, r:hi] < threshold, hold)
        hits = np.flatnonzero(quiet)
        if hits.size:
            offsets.append(r + int(hits[0]))
    return (min(onsets) if onsets else onset), (max(offsets) if offsets else offset)


def _risen_start(curve: FloatArray, onset: int, peak: int, limit: int, fs: float) -> int:
    """Move a P onset back to where the wave leaves its baseline, if it has already risen.

    The velocity threshold places the onset on the wave's first limb; a P wave that rises
    slowly at first (a broad, low-frequency P) has then already left its baseline by more than
    P_RISEN_FRACTION of its amplitude, and the onset walks back (no further than `limit`, the
    P search start) to where it had not. `curve` is oriented so the wave is positive; the
    baseline is its median between `limit` and 20 ms before `onset`, and only a level one
    counts: where that stretch itself moves by more than P_BASELINE_SHARE of the wave's
    amplitude (the previous T wave's tail, baseline wander), the onset stays where it is.
    """
    quiet_end = onset - round(0.02 * fs)
    if quiet_end - limit < round(0.02 * fs):
        return onset
    stretch = curve[limit:quiet_end]
    base = float(np.median(stretch))
    amplitude = float(curve[peak]) - base
    risen = P_RISEN_FRACTION * amplitude
    level = np.ptp(stretch) <= P_BASELINE_SHARE * amplitude
    if risen <= 0 or curve[onset] - base <= risen or not level:
        return onset
    back = np.arange(onset, limit - 1, -1)
    left = np.flatnonzero(curve[back] - base <= risen)
    return int(back[left[0]]) if left.size else onset


def _velocity_edge(
    velocity: FloatArray, start: int, limit: int, reach: int, fraction: float
) -> int | None:
    """Where `velocity` falls below `fraction` of its peak, walking from `start` to `limit`.

    The peak is looked for within `reach` samples of `start` (the steep limb of the wave);
    works in both directions.
    """
    step = 1 if limit >= start else -1
    if abs(limit - start) < 3:
        return None
    idx = np.arange(start, limit, step)
    values = velocity[idx]
    top = int(np.argmax(values[: max(1, min(values.size, reach))]))
    if values[top] <= 0:
        return None
    below = np.flatnonzero(values[top:] < fraction * values[top])
    return int(idx[top + int(below[0])]) if below.size else None


def _lowpass(data: FloatArray, fs: float, cutoff_hz: float = 15.0) -> FloatArray:
    if cutoff_hz >= 0.45 * fs or data.shape[1] < 30:
        return data
    sos = sps.butter(2, cutoff_hz, fs=fs, output="sos")
    out: FloatArray = sps.sosfiltfilt(sos, data, axis=1)
    return out


def delineate_beats(
    signals_uv: npt.ArrayLike, sampling_rate_hz: float, r_peaks: npt.ArrayLike
) -> list[BeatFiducials]:
    """Delineate every beat of a record.

    Parameters
    ----------
    signals_uv
        Filtered signal (baseline wander removed), microvolts, ``(n_leads, n_samples)`` or
        ``(n_samples,)``.
    sampling_rate_hz
        Samples per second.
    r_peaks
        R-peak sample indices, increasing (from :func:`ecg.detect.detect_r_peaks`).

    Returns
    -------
    list of BeatFiducials
        One per R peak, in record sample indices; a boundary that could not be found (or
        would fall outside the record) is ``None``.

    Raises
    ------
    EcgError
        Bad shape, sampling rate or non-finite samples.
    """
    data = _check(signals_uv, sampling_rate_hz)
    fs = float(sampling_rate_hz)
    peaks = np.asarray(r_peaks, dtype=np.int64)
    n = data.shape[1]
    slow = _lowpass(data, fs)
    rr = np.diff(peaks) / fs if peaks.size > 1 else np.array([1.0])
    median_rr = float(np.median(rr)) if rr.size else 1.0
    before = round(MEDIAN_BEFORE_S * fs)
    result: list[BeatFiducials] = []
    previous_t_off: int | None = None
    for k, r in enumerate(peaks):
        rr_next = float(rr[k]) if k < rr.size and peaks.size > 1 else median_rr
        rr_prev = float(rr[k - 1]) if k >= 1 else median_rr
        rr_beat = min(rr_next, 1.6 * median_rr)
        lo = max(0, int(r) - min(before, round(0.9 * rr_prev * fs)))
        hi = min(n, int(r) + round(min(rr_beat, 1.2) * fs))
        floor = None if previous_t_off is None else previous_t_off - lo
        fid = _delineate_window(
            data[:, lo:hi], int(r) - lo, rr_beat, fs, lowpass=slow[:, lo:hi], p_floor=floor
        ).shifted(lo)
        result.append(fid)
        previous_t_off = fid.t_off
    return result


def compute_median_beat(
    signals_uv: npt.ArrayLike, sampling_rate_hz: float, r_peaks: npt.ArrayLike
) -> MedianBeat | None:
    """Build the representative beat from the dominant beats.

    Beats are aligned on their R peaks (refined by cross-correlation with a first median);
    premature beats (RR under 80 % of the median RR) and beats that do not resemble the
    first median are left out.

    Parameters
    ----------
    signals_uv
        Filtered signal, microvolts, ``(n_leads, n_samples)``.
    sampling_rate_hz
        Samples per second.
    r_peaks
        R-peak sample indices.

    Returns
    -------
    MedianBeat or None
        ``None`` when fewer than two whole beats are available.

    Raises
    ------
    EcgError
        Bad shape, sampling rate or non-finite samples.
    """
    data = _check(signals_uv, sampling_rate_hz)
    fs = float(sampling_rate_hz)
    peaks = np.asarray(r_peaks, dtype=np.int64)
    n = data.shape[1]
    before = round(MEDIAN_BEFORE_S * fs)
    after = round(MEDIAN_AFTER_S * fs)
    inside = peaks[(peaks - before >= 0) & (peaks + after < n)]
    if inside.size < 2:
        return None
    rr_all = np.diff(peaks) / fs
    median_rr = float(np.median(rr_all)) if rr_all.size else 1.0
    rr_prev = np.full(peaks.size, median_rr)
    rr_prev[1:] = rr_all
    prev_of = dict(zip(peaks.tolist(), rr_prev.tolist(), strict=True))
    dominant = np.array([p for p in inside if prev_of[int(p)] >= 0.8 * median_rr], dtype=np.int64)
    if dominant.size < 2:
        dominant = inside
    offsets = np.arange(-before, after + 1)
    stack = data[:, dominant[:, None] + offsets[None, :]]  # (leads, beats, m)
    first = np.median(stack, axis=1)
    # Keep the beats that resemble the first median in the QRS region.
    q = slice(before - round(0.08 * fs), before + round(0.08 * fs))
    template = first[:, q].ravel()
    template = template - template.mean()
    shapes = stack[:, :, q].transpose(1, 0, 2).reshape(dominant.size, -1)
    shapes = shapes - shapes.mean(axis=1, keepdims=True)
    corr = shapes @ template / (np.linalg.norm(shapes, axis=1) * np.linalg.norm(template) + 1e-12)
    good = corr >= 0.8
    if good.sum() >= 2:
        stack = stack[:, good, :]
        dominant = dominant[good]
    median: FloatArray = np.median(stack, axis=1)
    rr_used = [prev_of[int(p)] for p in dominant]
    return MedianBeat(
        samples_uv=median,
        r_index=before,
        n_beats=int(dominant.size),
        rr_s=float(np.median(rr_used)) if rr_used else median_rr,
    )


def delineate_median_beat(median: MedianBeat, sampling_rate_hz: float) -> BeatFiducials:
    """Delineate the representative beat.

    Parameters
    ----------
    median
        From :func:`compute_median_beat`.
    sampling_rate_hz
        Samples per second.

    Returns
    -------
    BeatFiducials
        Indices into ``median.samples_uv``.
    """
    fs = float(sampling_rate_hz)
    data = median.samples_uv
    return _delineate_window(
        data, median.r_index, median.rr_s, fs, lowpass=_lowpass(data, fs), global_ends=True
    )
