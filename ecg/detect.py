"""QRS detection fused over every available lead.

The detector follows the Pan–Tompkins recipe (band-pass, slope energy, moving-window
integration, adaptive thresholds with search-back and T-wave discrimination) with two
changes that make it robust on real recordings:

* **Multi-lead fusion.** Each lead's slope energy is scaled by its own running QRS level and
  weighted by a running quality index (how peaked the lead is: QRS peaks over the typical
  level between them), so a lead that goes noisy or falls off stops voting while the clean
  leads carry the detection.
* **T waves told by their slope.** Within 360 ms of a beat, a candidate whose steepest slope
  (summed over the leads) is under half the beat's is its T wave (Pan and Tompkins 1985).
* **Recurring ectopy is kept.** A detection that splits one RR interval in two and looks like
  neither neighbour is dropped as noise, unless its waveform recurs (interpolated PVCs).
* **Beat-level agreement between the leads.** Each lead is also detected alone; its agreement
  beat by beat with the fused detection (a beat signal quality index) scales its weight in a
  second fusion, and a beat only it shows is added where it agrees well, so a lead showing
  only the ectopic beats cannot hide the others.
* **Compressed energy.** The fused feature is the square root of the integrated energy, which
  keeps large ectopic beats from pushing the adaptive threshold above the normal beats.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from enum import Enum

import numpy as np
import numpy.typing as npt
from scipy import ndimage
from scipy import signal as sps

from ecg.errors import EcgError

__all__ = ["QrsMethod", "compute_qrs_feature", "detect_r_peaks"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

QRS_BAND_HZ = (5.0, 20.0)
INTEGRATION_WINDOW_S = 0.10
REFRACTORY_S = 0.20
T_WAVE_WINDOW_S = 0.36
SCALE_WINDOW_S = 2.0
SCALE_SMOOTH_S = 8.0
QUALITY_POWER = 1.5
THRESHOLD_FRACTION = 0.45
SEARCHBACK_FRACTION = 0.65
T_WAVE_FRACTION = 0.6
T_WAVE_SLOPE_FRACTION = 0.5
INTERPOSED_RR_FRACTION = 1.25
NEIGHBOUR_MATCH = 0.7
MATCH_MARGIN = 0.3
#: ... unless its waveform recurs: matches this well at least this many other detections
#: within this long of it.
RECURRENCE_MATCH = 0.9
RECURRENCE_COUNT = 2
RECURRENCE_S = 60.0
#: ... and it is a QRS's size: at least this share of the smaller neighbour's (P and T waves,
#: which recur too, are smaller in the QRS band).
RECURRENCE_SIZE = 0.5
#: ... and it lies this far from both neighbours, outside their P and T waves.
RECURRENCE_MIN_RR_S = 0.3
#: A beat one lead alone shows is added to the fused detection when, over the 20 s around
#: it, that lead alone finds this share of the fused beats (within 100 ms) and this share of
#: its own beats are fused ones, at least this many fused beats lie there, and it matches
#: the waveform of three of them this well with at least this share of their median size.
BSQI_WINDOW_S = 10.0
#: Before that, the leads are fused again, each weight scaled by the lead's agreement (the
#: share of beats matched between its own detection and the fused one, 20 s around) to
#: this power: a lead that agrees on 80 % of the beats weighs 0.4 of one that agrees on all.
AGREEMENT_POWER = 4.0
BSQI_MATCH_S = 0.1
BSQI_FUSED_FOUND = 0.97
BSQI_OWN_FUSED = 0.5
BSQI_MIN_BEATS = 3
BSQI_SHAPE_MATCH = 0.95
BSQI_SIZE = 0.7


class QrsMethod(Enum):
    """QRS detector."""

    #: Slope energy fused over all leads, adaptive Pan–Tompkins decision (default).
    MULTILEAD_ENERGY = "multilead_energy"
    #: The same decision rule on the single cleanest lead (for comparison and fallback).
    BEST_LEAD_ENERGY = "best_lead_energy"


@functools.lru_cache(maxsize=16)
def _band_sos(sampling_rate_hz: float) -> FloatArray:
    low, high = QRS_BAND_HZ
    high = min(high, 0.45 * sampling_rate_hz)
    sos: FloatArray = sps.butter(
        2, [low, high], btype="bandpass", fs=sampling_rate_hz, output="sos"
    )
    return sos


def _bandpass(data: FloatArray, sampling_rate_hz: float) -> FloatArray:
    if data.shape[-1] <= 30:
        return data - data.mean(axis=-1, keepdims=True)
    out: FloatArray = sps.sosfiltfilt(_band_sos(sampling_rate_hz), data, axis=-1)
    return out


def _running_max(values: FloatArray, window: int) -> FloatArray:
    out: FloatArray = ndimage.maximum_filter1d(values, size=max(1, window), axis=-1, mode="nearest")
    return out


def compute_qrs_feature(
    signals_uv: npt.ArrayLike, sampling_rate_hz: float
) -> tuple[FloatArray, FloatArray]:
    """Compute the fused QRS feature and the band-passed leads it is made of.

    Parameters
    ----------
    signals_uv
        Microvolts, shape ``(n_leads, n_samples)`` or ``(n_samples,)``; finite.
    sampling_rate_hz
        Samples per second.

    Returns
    -------
    feature : numpy.ndarray
        Shape ``(n_samples,)``, dimensionless, about 1 at a QRS complex and near 0 between.
    bandpassed : numpy.ndarray
        The leads band-passed to 5–20 Hz and scaled to their running QRS level, shape
        ``(n_leads, n_samples)``.
    """
    feature, scaled_bp, _ = _qrs_feature(signals_uv, sampling_rate_hz)
    return feature, scaled_bp


def _qrs_feature(
    signals_uv: npt.ArrayLike,
    sampling_rate_hz: float,
    agreement: FloatArray | None = None,
    bandpassed: FloatArray | None = None,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """:func:`compute_qrs_feature`, and the fused slope that tells a QRS from a T wave: the
    absolute slope of the band-passed leads, quality-weighted but not scaled to each lead's
    level (a lead whose T wave outgrows its small QRS would make the T wave look steep).

    `agreement`, if given, is each lead's beat-level agreement with a first detection, on
    the grid of one value every 250 ms (:func:`_agreement`); it scales the lead's weight.
    `bandpassed`, if given, is the leads already band-passed (:func:`_bandpass`)."""
    data = np.atleast_2d(np.asarray(signals_uv, dtype=np.float64))
    fs = float(sampling_rate_hz)
    n = data.shape[1]
    bp = _bandpass(data, fs) if bandpassed is None else np.atleast_2d(bandpassed)
    slope = np.empty_like(bp)
    slope[:, 1:] = np.diff(bp, axis=1)
    slope[:, 0] = slope[:, 1] if n > 1 else 0.0
    energy = slope * slope
    window = max(1, round(INTEGRATION_WINDOW_S * fs))
    integrated = ndimage.uniform_filter1d(energy, size=window, axis=1, mode="nearest")
    integrated = np.sqrt(np.maximum(integrated, 0.0))
    # Running QRS level per lead: the 2 s running maximum, smoothed by an 8 s running median
    # (robust to single huge artefacts), on a decimated grid for speed.
    step = max(1, round(0.25 * fs))
    coarse_max = _running_max(integrated, round(SCALE_WINDOW_S * fs))[:, ::step]
    coarse_med = ndimage.uniform_filter1d(integrated, size=round(SCALE_WINDOW_S * fs), axis=1)[
        :, ::step
    ]
    smooth = max(1, round(SCALE_SMOOTH_S * fs / step))
    level = ndimage.median_filter(coarse_max, size=(1, smooth), mode="nearest")
    typical = ndimage.median_filter(coarse_med, size=(1, smooth), mode="nearest")
    floor = 1e-9 + 1e-6 * np.max(level)
    level = np.maximum(level, floor)
    # Quality: how far the QRS peaks stand above the mean level; a clean lead scores about
    # 4-8, pure noise about 1.5-2. The weights grow as its 1.5th power: fast enough that a
    # noisy lead stops voting, slow enough that a lead showing only the large ectopic beats
    # (V1 in bigeminy), which is the more peaked, does not outvote one showing every beat.
    quality = np.clip(level / np.maximum(typical, floor) - 2.0, 0.0, None)
    quality = quality**QUALITY_POWER
    if agreement is not None:
        quality = quality * agreement**AGREEMENT_POWER
    total = quality.sum(axis=0, keepdims=True)
    weights = np.where(total > 0, quality / np.maximum(total, 1e-12), 1.0 / data.shape[0])
    grid = np.arange(n) / step
    coarse_index = np.arange(level.shape[1])
    level_full = np.vstack([np.interp(grid, coarse_index, row) for row in level])
    weight_full = np.vstack([np.interp(grid, coarse_index, row) for row in weights])
    feature: FloatArray = np.sum(weight_full * integrated / level_full, axis=0)
    fused_slope: FloatArray = np.sum(weight_full * np.abs(slope), axis=0)
    scaled_bp: FloatArray = bp / level_full
    return feature, scaled_bp, fused_slope


def detect_r_peaks(
    signals_uv: npt.ArrayLike,
    sampling_rate_hz: float,
    *,
    method: QrsMethod = QrsMethod.MULTILEAD_ENERGY,
) -> IntArray:
    """Detect QRS complexes and return the R-peak sample of each.

    Parameters
    ----------
    signals_uv
        Microvolts, shape ``(n_leads, n_samples)`` or ``(n_samples,)``. Baseline wander need
        not be removed first; leads that are flat are ignored.
    sampling_rate_hz
        Samples per second (tested from 100 Hz to 1000 Hz).
    method
        See :class:`QrsMethod`.

    Returns
    -------
    numpy.ndarray
        ``int64`` sample indices, strictly increasing, each in ``[0, n_samples)``. Empty when
        the record is too short (under 0.5 s), flat, or holds no QRS complex.

    Raises
    ------
    EcgError
        The sampling rate is not a positive number, the array has the wrong shape, or it
        holds NaN or infinite values.
    """
    if not np.isfinite(sampling_rate_hz) or sampling_rate_hz <= 0:
        raise EcgError(f"sampling_rate_hz must be a finite number > 0, got {sampling_rate_hz!r}")
    data = np.asarray(signals_uv, dtype=np.float64)
    if data.ndim == 1:
        data = data[np.newaxis, :]
    if data.ndim != 2:
        raise EcgError(f"signals must have shape (n_leads, n_samples), got {data.shape}")
    if not np.isfinite(data).all():
        raise EcgError("signals hold NaN or infinite values; replace or drop those leads first")
    fs = float(sampling_rate_hz)
    n = data.shape[1]
    empty = np.zeros(0, dtype=np.int64)
    if n < 0.5 * fs or data.shape[0] == 0:
        return empty
    live = np.ptp(data, axis=1) > 1e-6
    if not live.any():
        return empty
    data = data[live]
    feature, scaled_bp, slope = _qrs_feature(data, fs)
    if method is QrsMethod.BEST_LEAD_ENERGY and data.shape[0] > 1:
        best = int(np.argmax([_peakiness(row) for row in np.abs(scaled_bp)]))
        data = data[best : best + 1]
        feature, scaled_bp, slope = _qrs_feature(data, fs)
    peaks = _detect(data, feature, scaled_bp, slope, fs)
    if data.shape[0] > 1 and peaks.size >= BSQI_MIN_BEATS:
        peaks = _fuse_by_agreement(peaks, data, fs)
    return peaks


def _detect(
    data: FloatArray, feature: FloatArray, scaled_bp: FloatArray, slope: FloatArray, fs: float
) -> IntArray:
    """The decision on the fused feature, each beat moved to its R peak, noise dropped."""
    beats = _decide(feature, slope, fs)
    if beats.size == 0:
        return np.zeros(0, dtype=np.int64)
    peaks = _locate_r(beats, data, scaled_bp, fs)
    return _drop_interposed_noise(peaks, scaled_bp, fs)


def _nearest_distance(a: IntArray, b: IntArray) -> IntArray:
    """For each sample of `a`, the distance to the nearest of `b` (both sorted)."""
    if b.size == 0:
        return np.full(a.size, np.iinfo(np.int64).max, dtype=np.int64)
    right = np.clip(np.searchsorted(b, a), 0, b.size - 1)
    left = np.clip(right - 1, 0, b.size - 1)
    out: IntArray = np.minimum(np.abs(a - b[right]), np.abs(a - b[left]))
    return out


def _fuse_by_agreement(fused: IntArray, data: FloatArray, fs: float) -> IntArray:
    """Detect again with each lead weighted by its beat-level agreement with `fused`, then
    add the beats a single trusted lead shows that the fused detection still lacks.

    The fused feature can be outvoted: a lead showing only the large ectopic beats (V1 in
    bigeminy) is the more peaked and hides the sinus beats another lead shows. Each lead is
    therefore also detected alone, and its agreement beat by beat with the fused detection
    over the 20 s around (a beat signal quality index, Li, Mark and Clifford 2008) scales its
    weight. A beat one lead alone shows is then added when that lead finds nearly every fused
    beat around, most of its own beats are fused ones, and the beat falls outside the P-QRS-T
    of the fused neighbours, has a QRS's size on that lead and repeats the fused beats'
    waveform there.
    """
    bandpassed = _bandpass(data, fs)
    leads = [_lead_alone(row, bp_row, fs) for row, bp_row in zip(data, bandpassed, strict=True)]
    agreement = np.vstack([_agreement(fused, own, data.shape[1], fs) for own, _ in leads])
    feature, scaled_bp, slope = _qrs_feature(data, fs, agreement, bandpassed)
    fused = _detect(data, feature, scaled_bp, slope, fs)
    if fused.size < BSQI_MIN_BEATS:
        return fused
    added = np.concatenate([_lead_beats_missed(fused, own, bp, fs) for own, bp in leads])
    if added.size == 0:
        return fused
    out = np.union1d(fused, added)
    keep = np.concatenate(([True], np.diff(out) >= round(REFRACTORY_S * fs)))
    return out[keep].astype(np.int64)


def _lead_alone(lead: FloatArray, bandpassed: FloatArray, fs: float) -> tuple[IntArray, FloatArray]:
    """One lead's own detection and its scaled band-passed signal."""
    feature, scaled_bp, slope = _qrs_feature(lead, fs, bandpassed=bandpassed)
    return _detect(lead[np.newaxis, :], feature, scaled_bp, slope, fs), scaled_bp


def _agreement(fused: IntArray, own: IntArray, n: int, fs: float) -> FloatArray:
    """A lead's bSQI every 250 ms: over the 20 s around, the share of the fused beats and of
    the lead's own beats that have a match (within 100 ms) in the other, pooled."""
    grid = np.arange(0, n, max(1, round(0.25 * fs)))
    span = round(BSQI_WINDOW_S * fs)
    tolerance = round(BSQI_MATCH_S * fs)
    matched = np.zeros(grid.size)
    total = np.zeros(grid.size)
    for beats, other in ((fused, own), (own, fused)):
        cumulative = np.concatenate(
            ([0.0], np.cumsum(_nearest_distance(beats, other) <= tolerance))
        )
        lo = np.searchsorted(beats, grid - span)
        hi = np.searchsorted(beats, grid + span)
        matched += cumulative[hi] - cumulative[lo]
        total += hi - lo
    out: FloatArray = np.where(total > 0, matched / np.maximum(total, 1.0), 0.0)
    return out


def _lead_beats_missed(
    fused: IntArray, own: IntArray, scaled_bp: FloatArray, fs: float
) -> IntArray:
    """The beats a lead alone shows (`own`) that the fused detection lacks, when the lead is
    trusted around each (see :func:`_fuse_by_agreement`)."""
    tolerance = round(BSQI_MATCH_S * fs)
    fused_seen = _nearest_distance(fused, own) <= tolerance
    own_fused = _nearest_distance(own, fused) <= tolerance
    span = round(BSQI_WINDOW_S * fs)
    gap = round(T_WAVE_WINDOW_S * fs)
    added = []
    for d in own[~own_fused]:
        k = int(np.searchsorted(fused, d))
        if k == 0 or k == fused.size or min(d - fused[k - 1], fused[k] - d) < gap:
            continue
        lo, hi = np.searchsorted(fused, [d - span, d + span])
        olo, ohi = np.searchsorted(own, [d - span, d + span])
        if (
            hi - lo >= BSQI_MIN_BEATS
            and fused_seen[lo:hi].mean() >= BSQI_FUSED_FOUND
            and own_fused[olo:ohi].mean() >= BSQI_OWN_FUSED
            and _like_its_beats(int(d), fused[lo:hi], scaled_bp, fs)
        ):
            added.append(int(d))
    return np.asarray(added, dtype=np.int64)


def _like_its_beats(beat: int, around: IntArray, scaled_bp: FloatArray, fs: float) -> bool:
    """Whether `beat`'s waveform on one lead repeats that of the fused beats `around` it,
    and is a QRS's size there."""
    shapes, sizes = _beat_shapes(np.concatenate(([beat], around)).astype(np.int64), scaled_bp, fs)
    match = shapes[1:] @ shapes[0]
    return bool(
        np.count_nonzero(match > BSQI_SHAPE_MATCH) >= RECURRENCE_COUNT + 1
        and sizes[0] >= BSQI_SIZE * np.median(sizes[1:])
    )


def _peakiness(row: FloatArray) -> float:
    top = float(np.percentile(row, 99))
    mid = float(np.median(row))
    return top / (mid + 1e-12)


def _decide(feature: FloatArray, slope: FloatArray, fs: float) -> IntArray:
    """Adaptive-threshold decision over the candidate peaks of the fused feature."""
    candidates, _ = sps.find_peaks(feature, distance=max(1, round(0.12 * fs)))
    if candidates.size == 0:
        return np.zeros(0, dtype=np.int64)
    heights = feature[candidates]
    # Each candidate's steepest slope, within the integration window around it.
    half = max(1, round(0.5 * INTEGRATION_WINDOW_S * fs))
    around = np.clip(candidates[:, None] + np.arange(-half, half + 1)[None, :], 0, slope.size - 1)
    steepest = slope[around].max(axis=1)
    spk, npk = _learning_levels(candidates, heights, fs)
    state = _Decision(
        spk=spk,
        npk=npk,
        refractory=round(REFRACTORY_S * fs),
        t_window=round(T_WAVE_WINDOW_S * fs),
    )
    i = 0
    n_cand = candidates.size
    while i < n_cand:
        pos = int(candidates[i])
        h = float(heights[i])
        thr = state.threshold()
        if state.search_back(candidates, heights, steepest, pos, thr):
            continue  # a missed beat was accepted: this candidate is judged again
        if h > thr:
            state.consider(pos, h, float(steepest[i]))
        else:
            state.note_noise(h)
        i += 1
    return np.asarray(state.accepted, dtype=np.int64)


def _learning_levels(candidates: IntArray, heights: FloatArray, fs: float) -> tuple[float, float]:
    """Initial signal and noise peak levels.

    Learning phase: the candidates of the first 2 s (or of the whole signal) set them.
    """
    first = candidates < 2 * fs
    spk = float(np.max(heights[first])) if first.any() else float(np.max(heights))
    spk = min(spk, 1.5)
    npk = float(np.median(heights[first])) * 0.5 if first.any() else 0.1
    return spk, npk


@dataclass
class _Decision:
    """Running state of the adaptive-threshold decision, candidate by candidate."""

    #: Running signal (QRS) and noise peak levels of the feature.
    spk: float
    npk: float
    #: Refractory period and T-wave window after a beat, samples.
    refractory: int
    t_window: int
    #: Running mean RR interval, samples (0 until two beats are accepted).
    rr_mean: float = 0.0
    #: Search back looks only at candidates after this sample.
    last_checked: int = -1
    #: Accepted beats (sample of the candidate peak) and their feature heights.
    accepted: list[int] = field(default_factory=list)
    accepted_h: list[float] = field(default_factory=list)
    #: ... and the steepest slope of each.
    accepted_s: list[float] = field(default_factory=list)

    def threshold(self) -> float:
        return self.npk + THRESHOLD_FRACTION * (self.spk - self.npk)

    def note_noise(self, h: float) -> None:
        self.npk = 0.125 * h + 0.875 * self.npk

    def search_back(
        self, candidates: IntArray, heights: FloatArray, steepest: FloatArray, pos: int, thr: float
    ) -> bool:
        """Search back: a long gap since the last beat means one was missed below threshold.

        Accepts the highest candidate of the gap when it passes the lower search-back
        threshold, and returns whether it did.
        """
        accepted = self.accepted
        if not (accepted and self.rr_mean > 0 and pos - accepted[-1] > 1.66 * self.rr_mean):
            return False
        lo = accepted[-1] + self.refractory
        gap = np.flatnonzero(
            (candidates > lo)
            & (candidates < pos - self.refractory)
            & (candidates > self.last_checked)
        )
        if gap.size:
            best = gap[np.argmax(heights[gap])]
            if heights[best] > SEARCHBACK_FRACTION * thr:
                bpos = int(candidates[best])
                accepted.append(bpos)
                self.accepted_h.append(float(heights[best]))
                self.accepted_s.append(float(steepest[best]))
                self.spk = 0.25 * float(heights[best]) + 0.75 * self.spk
                self.last_checked = bpos
                return True
        self.last_checked = pos - self.refractory
        return False

    def consider(self, pos: int, h: float, steepest: float) -> None:
        """A candidate above the threshold: a taller peak of the last beat, a T wave or a beat."""
        accepted, accepted_h = self.accepted, self.accepted_h
        if accepted and pos - accepted[-1] < self.refractory:
            if h > accepted_h[-1]:
                accepted[-1] = pos
                accepted_h[-1] = h
                self.accepted_s[-1] = steepest
            return
        if accepted and self._t_wave(pos - accepted[-1], h, steepest):
            self.note_noise(h)
            return
        if len(accepted) >= 1:
            self._update_rr_mean(pos - accepted[-1])
        accepted.append(pos)
        accepted_h.append(h)
        self.accepted_s.append(steepest)
        self.spk = 0.125 * min(h, 3.0 * self.spk) + 0.875 * self.spk

    def _t_wave(self, since: int, h: float, steepest: float) -> bool:
        """Whether a candidate `since` samples after the last beat is probably its T wave:
        within the T-wave window, its energy is small, or its slope is under half the QRS's
        (Pan and Tompkins 1985; the slope summed over the leads unscaled, so a lead whose T
        wave outgrows its small QRS does not pass the T wave off as steep)."""
        if since >= self.t_window:
            return False
        return (
            h < T_WAVE_FRACTION * self.accepted_h[-1]
            or steepest < T_WAVE_SLOPE_FRACTION * self.accepted_s[-1]
        )

    def _update_rr_mean(self, rr: int) -> None:
        if self.rr_mean == 0:
            self.rr_mean = float(rr)
        elif 0.5 * self.rr_mean < rr < 1.66 * self.rr_mean or len(self.accepted) < 4:
            self.rr_mean = 0.125 * rr + 0.875 * self.rr_mean


def _locate_r(beats: IntArray, data: FloatArray, scaled_bp: FloatArray, fs: float) -> IntArray:
    """Move each detection to the largest deflection of the scaled band-passed leads."""
    half = max(1, round(0.08 * fs))
    n = data.shape[1]
    envelope = np.sum(np.abs(scaled_bp), axis=0)
    out = np.empty_like(beats)
    for k, b in enumerate(beats):
        lo = max(0, int(b) - half)
        hi = min(n, int(b) + half + 1)
        out[k] = lo + int(np.argmax(envelope[lo:hi]))
    out = np.unique(out)
    if out.size > 1:
        keep = np.concatenate(([True], np.diff(out) >= round(0.12 * fs)))
        out = out[keep]
    return out.astype(np.int64)


def _beat_shapes(
    peaks: IntArray, scaled_bp: FloatArray, fs: float
) -> tuple[FloatArray, FloatArray]:
    """Band-passed multi-lead waveform of each beat (±60 ms), unit norm, ``(n_beats, m)``,
    and each waveform's norm before it was scaled (its size)."""
    half = max(2, round(0.06 * fs))
    n = scaled_bp.shape[1]
    index = np.clip(peaks[:, None] + np.arange(-half, half + 1)[None, :], 0, n - 1)
    shapes = scaled_bp[:, index].transpose(1, 0, 2).reshape(peaks.size, -1)
    shapes = shapes - shapes.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(shapes, axis=1, keepdims=True)
    result: FloatArray = shapes / np.maximum(norms, 1e-12)
    return result, norms[:, 0]


def _drop_interposed_noise(peaks: IntArray, scaled_bp: FloatArray, fs: float) -> IntArray:
    """Drop detections that split one RR interval in two and look like neither neighbour.

    A noise spike between two beats leaves the surrounding rhythm unchanged (the two RR
    intervals add up to about one), and its waveform matches neither neighbour, while the
    neighbours match each other. A premature beat is followed by a compensatory pause, so
    its RR intervals add up to more.
    """
    if peaks.size < 5:
        return peaks
    shapes, sizes = _beat_shapes(peaks, scaled_bp, fs)
    rr = np.diff(peaks).astype(np.float64)
    local_rr = ndimage.median_filter(rr, size=min(rr.size, 15), mode="nearest")
    keep = np.ones(peaks.size, dtype=bool)
    for k in range(1, peaks.size - 1):
        pre = float(peaks[k] - peaks[k - 1])
        post = float(peaks[k + 1] - peaks[k])
        if pre + post > INTERPOSED_RR_FRACTION * local_rr[k - 1]:
            continue
        neighbours = float(shapes[k - 1] @ shapes[k + 1])
        own = max(float(shapes[k] @ shapes[k - 1]), float(shapes[k] @ shapes[k + 1]))
        if (
            neighbours > NEIGHBOUR_MATCH
            and own < neighbours - MATCH_MARGIN
            and not (
                min(pre, post) >= RECURRENCE_MIN_RR_S * fs
                and sizes[k] >= RECURRENCE_SIZE * min(sizes[k - 1], sizes[k + 1])
                and _recurs(shapes, k, round(RECURRENCE_S * fs), peaks)
            )
        ):
            keep[k] = False
    return peaks[keep]


def _recurs(shapes: FloatArray, k: int, span: int, peaks: IntArray) -> bool:
    """Whether beat `k`'s waveform recurs among the other detections within `span` samples
    (its two neighbours aside): an ectopic focus fires the same QRS again and again (a run of
    bigeminy has no compensatory pause), while noise does not repeat itself."""
    lo = int(np.searchsorted(peaks, peaks[k] - span))
    hi = int(np.searchsorted(peaks, peaks[k] + span))
    others = [j for j in range(lo, hi) if abs(j - k) > 1]
    if not others:
        return False
    match = shapes[others] @ shapes[k]
    return int(np.count_nonzero(match > RECURRENCE_MATCH)) >= RECURRENCE_COUNT
