"""Atrial activity apart from the QRS complexes: flutter waves, P waves, AV conduction.

Atrial flutter: flutter waves at 240–340/min (4.0–5.67 Hz), a continuous undulation without
an isoelectric baseline. With the QRS complexes blanked out, the spectrum of the remaining
signal (P, T and flutter waves) has its largest peak between 1.5 and 12 Hz in the flutter
band, holding at least :data:`FLUTTER_PEAK_SHARE` of the power, in some lead; T and P waves
of a sinus rhythm, broad and separated by a baseline, put most of theirs at the heart rate
and below. With 2:1 or 3:1 conduction (ventricles near 150 or 100/min) the T waves at the
ventricular rate may outweigh the flutter waves in the spectrum, and with 2:1 conduction the
flutter rate is the second harmonic of the ventricular rate, which the T waves also have:
no spectrum tells them apart. 2:1 conduction is recognised in the time domain instead
(:func:`two_to_one_flutter_rate_bpm`): at a regular ventricular rate of 120–170/min, half of
the flutter waves fall between the QRS complexes and half are hidden in the QRS and T, and
the atrial activity repeats every half RR interval, which neither P nor T waves of a sinus
rhythm do. With the QRS complexes left out and the T wave's own direction over the leads
projected out of the signal (atria and ventricles do not project alike on the leads), a
lead of II, III, aVF or V1 must repeat itself after half an RR interval (and after a whole
one) with a correlation of at least :data:`HALF_RR_CORRELATION`. A 3:1 flutter is not yet
recognised (nothing is said of flutter; the rhythm may read as a supraventricular
tachycardia, or the flutter wave before each QRS as a P wave).

Second- and third-degree AV block are read from P waves that are not followed by a QRS, so
the P waves must be found on their own, not only in the window before each QRS. The template
is the median of the P waves the beat-by-beat delineation found, aligned on their own onsets
(so that a changing PR does not smear it); it is matched (normalised cross-correlation over
all leads) along the whole recording, outside the QRS complexes. The search is trusted only
when it is reliable: the template is large enough, it does not also match the median beat's
T wave (a T wave taken for a P wave would invent blocked beats), it finds the P wave before
most conducted beats, and the P–P intervals are regular (a blocked premature atrial beat is
not an AV block). Otherwise nothing is said.

Criteria (AHA/ACCF/HRS, part III, and the standard texts): second-degree AV block, Mobitz I
(Wenckebach): P waves not conducted after a progressive PR prolongation (the PR before the
dropped beat longer than the PR after it); Mobitz II: dropped beats with a constant PR;
2:1 AV block: every other P wave conducted at a constant PR; third-degree AV block: regular
P waves and regular QRS complexes at a slower rate, with no constant PR (AV dissociation).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import ndimage
from scipy import signal as sps

from ecg.delineate import BeatFiducials

__all__ = [
    "AvConduction",
    "assess_av_conduction",
    "find_p_waves",
    "flutter_rate_bpm",
    "two_to_one_flutter_rate_bpm",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: A match is a P wave at this normalised correlation with the template, and this amplitude
#: ratio to it.
P_MATCH_CORRELATION = 0.85
P_AMPLITUDE_RATIO = (0.5, 2.0)
#: The template must be at least this large (peak to peak on its largest lead).
P_TEMPLATE_MIN_UV = 50.0
#: P waves found apart by at least this long, and not within this of a QRS complex.
P_MIN_GAP_S = 0.20
QRS_GUARD_S = 0.02
#: The search must find a P wave before at least this share of the beats it knows P waves of.
P_RECALL_SHARE = 0.8
#: P–P intervals regular: coefficient of variation under this.
PP_REGULAR_CV = 0.12
#: PR window in which a P wave conducts the QRS after it.
PR_RANGE_S = (0.08, 0.50)
#: Constant PR: range at most this; progressive prolongation: the PR before a dropped beat
#: at least this longer than the PR after it; AV dissociation: PR range over this.
PR_CONSTANT_MS = 40.0
PR_PROLONGATION_MS = 40.0
PR_DISSOCIATED_MS = 120.0


#: Flutter-wave band (Hz: 240–340/min), the band it is compared with, the peak's half width,
#: the share of that band's power the peak must hold, and the smallest flutter wave (µV RMS).
FLUTTER_BAND_HZ = (4.0, 340.0 / 60.0)
COMPARED_BAND_HZ = (1.5, 12.0)
FLUTTER_PEAK_HALF_WIDTH_HZ = 0.3
FLUTTER_PEAK_SHARE = 0.4
FLUTTER_MIN_UV = 20.0
#: QRS blanked from this long before to this long after each R peak.
BLANK_BEFORE_S = 0.06
BLANK_AFTER_S = 0.08
#: 2:1 flutter: the leads where flutter waves are largest, the correlation of the signal
#: with itself half an RR (and one RR) later, and the ventricular rhythm's regularity (RR
#: coefficient of variation under PP_REGULAR_CV).
FLUTTER_LEADS = ("II", "III", "aVF", "V1")
HALF_RR_CORRELATION = 0.7
FLUTTER_RATE_BPM = (240.0, 340.0)


def flutter_rate_bpm(
    clean_uv: npt.ArrayLike, sampling_rate_hz: float, r_peaks: npt.ArrayLike
) -> float | None:
    """The flutter-wave rate (per minute) when a lead meets the flutter criterion by the
    spectrum, else ``None`` (see the module's criteria; a peak at twice the ventricular rate
    is left to :func:`two_to_one_flutter_rate_bpm`)."""
    fs = float(sampling_rate_hz)
    data = np.atleast_2d(np.asarray(clean_uv, dtype=np.float64)).copy()
    peaks = np.asarray(r_peaks, dtype=np.int64)
    n = data.shape[1]
    if n < round(4 * fs) or 2 * COMPARED_BAND_HZ[1] >= fs:
        return None
    before, after = round(BLANK_BEFORE_S * fs), round(BLANK_AFTER_S * fs)
    for r in peaks:
        lo, hi = max(0, int(r) - before), min(n - 1, int(r) + after)
        for lead in data:
            lead[lo : hi + 1] = np.linspace(lead[lo], lead[hi], hi - lo + 1)
    freqs, power = sps.welch(data, fs=fs, nperseg=min(n, round(4 * fs)), axis=1)
    compared = (freqs >= COMPARED_BAND_HZ[0]) & (freqs <= COMPARED_BAND_HZ[1])
    band = (freqs >= FLUTTER_BAND_HZ[0]) & (freqs <= FLUTTER_BAND_HZ[1])
    if peaks.size >= 2:
        # Twice the ventricular rate is where the T waves have their second harmonic: a
        # peak there does not tell flutter waves (two_to_one_flutter_rate_bpm does).
        second = 2.0 * fs / float(np.median(np.diff(peaks)))
        band &= np.abs(freqs - second) > FLUTTER_PEAK_HALF_WIDTH_HZ
    best: float | None = None
    for lead_power in power:
        total = float(lead_power[compared].sum())
        if total <= 0:
            continue
        peak = int(np.flatnonzero(compared)[np.argmax(lead_power[compared])])
        if not band[peak]:
            continue
        near = compared & (np.abs(freqs - freqs[peak]) <= FLUTTER_PEAK_HALF_WIDTH_HZ)
        share = float(lead_power[near].sum()) / total
        df = float(freqs[1] - freqs[0])
        rms = float(np.sqrt(lead_power[near].sum() * df))
        if share >= FLUTTER_PEAK_SHARE and rms >= FLUTTER_MIN_UV:
            best = 60.0 * float(freqs[peak])
            break
    return best


def two_to_one_flutter_rate_bpm(
    clean_uv: npt.ArrayLike,
    sampling_rate_hz: float,
    r_peaks: npt.ArrayLike,
    leads: Sequence[str],
    median_uv: npt.ArrayLike,
    median_fiducials: BeatFiducials,
) -> float | None:
    """The flutter-wave rate (per minute, twice the ventricular rate) when the atrial activity
    of a regular rhythm repeats every half RR interval (see the module's criteria), else
    ``None``.

    Parameters
    ----------
    clean_uv, sampling_rate_hz
        The filtered signal (µV, ``(n_leads, n_samples)``) and its samples per second.
    r_peaks
        R-peak samples, increasing.
    leads
        Lead names, one per row of `clean_uv` (the median beat's rows alike).
    median_uv, median_fiducials
        The median beat and its fiducials: the T wave's direction over the leads is the
        median beat at its T peak.
    """
    fs = float(sampling_rate_hz)
    data = np.atleast_2d(np.asarray(clean_uv, dtype=np.float64))
    median = np.atleast_2d(np.asarray(median_uv, dtype=np.float64))
    peaks = np.asarray(r_peaks, dtype=np.int64)
    fid = median_fiducials
    if peaks.size < 6 or fid.t_peak is None or fid.qrs_on is None:
        return None
    rr = np.diff(peaks).astype(np.float64)
    if float(np.std(rr) / np.mean(rr)) >= PP_REGULAR_CV:
        return None
    half = float(np.mean(rr)) / 2.0
    rate = 60.0 * fs / half
    if not FLUTTER_RATE_BPM[0] <= rate <= FLUTTER_RATE_BPM[1]:
        return None
    level = np.median(median[:, max(0, fid.qrs_on - round(0.02 * fs)) : fid.qrs_on + 1], axis=1)
    t_direction = median[:, fid.t_peak] - level
    norm = float(np.linalg.norm(t_direction))
    if norm <= 0:
        return None
    u = t_direction / norm
    x = data - np.median(data, axis=1, keepdims=True)
    x = x - np.outer(u, u @ x)
    keep = np.ones(data.shape[1], dtype=bool)
    for r in peaks:
        keep[max(0, int(r) - round(BLANK_BEFORE_S * fs)) : int(r) + round(BLANK_AFTER_S * fs)] = (
            False
        )
    for name in FLUTTER_LEADS:
        if name not in leads:
            continue
        row = x[list(leads).index(name)]
        if min(_self_correlation(row, keep, half), _self_correlation(row, keep, 2 * half)) >= (
            HALF_RR_CORRELATION
        ):
            return rate
    return None


def _self_correlation(x: FloatArray, keep: npt.NDArray[np.bool_], lag_samples: float) -> float:
    """Correlation of `x` with itself `lag_samples` later, over the samples `keep` holds at
    both ends (0 when too few or flat)."""
    lag = round(lag_samples)
    if lag < 1 or lag >= x.size:
        return 0.0
    both = keep[:-lag] & keep[lag:]
    if int(both.sum()) < 3:
        return 0.0
    a, b = x[:-lag][both], x[lag:][both]
    a, b = a - a.mean(), b - b.mean()
    denominator = float(np.sqrt(float(a @ a) * float(b @ b)))
    return float(a @ b) / denominator if denominator > 0 else 0.0


@dataclass(frozen=True, kw_only=True)
class AvConduction:
    """AV conduction of a recording with reliable P waves.

    Parameters
    ----------
    pattern
        ``"mobitz_i"``, ``"mobitz_ii"``, ``"2:1"``, ``"third_degree"``, or ``None`` (every
        P wave conducted, or no pattern that meets a criterion).
    atrial_rate_bpm
        From the median P–P interval.
    n_p, n_dropped
        P waves found, and those not followed by a QRS.
    pr_ms
        PR of each conducted beat, in order.
    """

    pattern: str | None
    atrial_rate_bpm: float
    n_p: int
    n_dropped: int
    pr_ms: tuple[float, ...]


def _template(data: FloatArray, beats: list[BeatFiducials]) -> FloatArray | None:
    """The P wave of the beats aligned on their own P onsets (so a PR that changes from beat
    to beat does not smear it), the median over them, zero mean per lead."""
    spans = [(b.p_on, b.p_off) for b in beats if b.p_on is not None and b.p_off is not None]
    spans = [(on, off) for on, off in spans if off > on]
    if len(spans) < 3:
        return None
    width = int(np.median([off - on for on, off in spans])) + 1
    stack = [data[:, on : on + width] for on, _ in spans if on + width <= data.shape[1]]
    if len(stack) < 3:
        return None
    segment: FloatArray = np.median(np.stack(stack), axis=0)
    if float(np.ptp(segment, axis=1).max()) < P_TEMPLATE_MIN_UV:
        return None
    centred: FloatArray = segment - segment.mean(axis=1, keepdims=True)
    return centred


def _match(data: FloatArray, template: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Normalised correlation and amplitude ratio of `template` at every start sample."""
    m = template.shape[1]
    score = np.zeros(data.shape[1] - m + 1)
    for lead in range(data.shape[0]):
        score += sps.correlate(data[lead], template[lead], mode="valid")
    mean = ndimage.uniform_filter1d(data, m, axis=1, mode="nearest")
    square = ndimage.uniform_filter1d(data * data, m, axis=1, mode="nearest")
    start = m // 2
    variance = (square - mean * mean)[:, start : start + score.size].sum(axis=0) * m
    energy = float(np.sum(template * template))
    correlation = score / np.sqrt(np.maximum(variance, 1e-9) * energy)
    return correlation, score / energy


def find_p_waves(
    clean_uv: npt.ArrayLike,
    sampling_rate_hz: float,
    beats: list[BeatFiducials],
    median_uv: npt.ArrayLike,
    median_fiducials: BeatFiducials,
) -> IntArray | None:
    """P-wave onsets found along the recording, independently of the QRS complexes.

    Returns
    -------
    numpy.ndarray or None
        Onset samples, increasing; ``None`` when the search is not reliable (no or small
        template, the template matches the median T wave, or it misses the P waves the
        beat-by-beat delineation found).
    """
    fs = float(sampling_rate_hz)
    data = np.atleast_2d(np.asarray(clean_uv, dtype=np.float64))
    median = np.atleast_2d(np.asarray(median_uv, dtype=np.float64))
    template = _template(data, beats)
    if template is None:
        return None
    m = template.shape[1]
    if data.shape[1] <= m or _matches_own_t_wave(median, median_fiducials, template):
        return None
    correlation, amplitude = _match(data, template)
    ok = (amplitude >= P_AMPLITUDE_RATIO[0]) & (amplitude <= P_AMPLITUDE_RATIO[1])
    guard = round(QRS_GUARD_S * fs)
    for beat in beats:
        if beat.qrs_on is not None and beat.qrs_off is not None:
            ok[max(0, beat.qrs_on - m - guard + 1) : beat.qrs_off + guard] = False
    peaks, _ = sps.find_peaks(
        np.where(ok, correlation, 0.0),
        height=P_MATCH_CORRELATION,
        distance=max(1, round(P_MIN_GAP_S * fs)),
    )
    onsets = peaks.astype(np.int64)
    known = [b.p_on for b in beats if b.p_on is not None]
    if not known:
        return None
    tolerance = round(0.04 * fs)
    recalled = sum(1 for p in known if onsets.size and np.min(np.abs(onsets - p)) <= tolerance)
    if recalled < P_RECALL_SHARE * len(known):
        return None
    return onsets


def _matches_own_t_wave(median: FloatArray, fiducials: BeatFiducials, template: FloatArray) -> bool:
    """Whether the template also matches the median beat's T wave (then a T wave could be
    taken for a P wave)."""
    if fiducials.qrs_off is None or fiducials.t_off is None:
        return True
    m = template.shape[1]
    region = median[:, fiducials.qrs_off : fiducials.t_off + 1]
    if region.shape[1] <= m:
        return False
    correlation, amplitude = _match(region, template)
    close = (amplitude >= P_AMPLITUDE_RATIO[0]) & (amplitude <= P_AMPLITUDE_RATIO[1])
    return bool(np.any(close & (correlation >= P_MATCH_CORRELATION)))


def assess_av_conduction(
    p_onsets: npt.ArrayLike, qrs_onsets: npt.ArrayLike, sampling_rate_hz: float
) -> AvConduction | None:
    """The AV conduction pattern of P waves and QRS complexes (see the module's criteria).

    Parameters
    ----------
    p_onsets
        From :func:`find_p_waves`.
    qrs_onsets
        QRS onsets, increasing.
    sampling_rate_hz
        Samples per second.

    Returns
    -------
    AvConduction or None
        ``None`` with fewer than four P waves or irregular P–P intervals.
    """
    fs = float(sampling_rate_hz)
    q = np.asarray(qrs_onsets, dtype=np.int64)
    p = np.asarray(p_onsets, dtype=np.int64)
    # P waves after the last QRS may be cut off by the recording's end before theirs.
    p = p[p < q[-1]] if q.size else p
    if p.size < 4 or q.size < 3:
        return None
    pp = np.diff(p).astype(np.float64)
    if float(np.std(pp) / np.mean(pp)) >= PP_REGULAR_CV:
        return None
    lo, hi = round(PR_RANGE_S[0] * fs), round(PR_RANGE_S[1] * fs)
    conducted: list[bool] = []
    pr: list[float] = []
    for k, onset in enumerate(p):
        nxt = q[q > onset]
        next_p = p[k + 1] if k + 1 < p.size else None
        if nxt.size and lo <= nxt[0] - onset <= hi and (next_p is None or nxt[0] < next_p):
            conducted.append(True)
            pr.append(float(nxt[0] - onset) * 1000.0 / fs)
        else:
            conducted.append(False)
    dropped = [k for k, ok in enumerate(conducted) if not ok]
    result = AvConduction(
        pattern=_pattern(conducted, pr, q, fs) if dropped else None,
        atrial_rate_bpm=60.0 * fs / float(np.median(pp)),
        n_p=int(p.size),
        n_dropped=len(dropped),
        pr_ms=tuple(pr),
    )
    return result


def _pattern(conducted: list[bool], pr: list[float], q: IntArray, fs: float) -> str | None:
    rr = np.diff(q).astype(np.float64)
    qrs_regular = rr.size >= 2 and float(np.std(rr) / np.mean(rr)) < PP_REGULAR_CV
    pr_range = max(pr) - min(pr) if pr else 0.0
    if qrs_regular and pr_range > PR_DISSOCIATED_MS and conducted.count(False) >= 2:
        return "third_degree"
    if len(pr) < 2:
        return None
    alternate = all(conducted[k] != conducted[k + 1] for k in range(len(conducted) - 1))
    if alternate and len(conducted) >= 6 and pr_range <= PR_CONSTANT_MS:
        return "2:1"
    if pr_range <= PR_CONSTANT_MS:
        return "mobitz_ii"
    # Mobitz I: around each dropped P wave, the PR before it longer than the PR after it.
    pr_iter = iter(pr)
    sequence = [next(pr_iter) if ok else None for ok in conducted]
    prolonged = []
    for k, value in enumerate(sequence):
        if value is not None:
            continue
        before = next((v for v in reversed(sequence[:k]) if v is not None), None)
        after = next((v for v in sequence[k + 1 :] if v is not None), None)
        if before is not None and after is not None:
            prolonged.append(before - after >= PR_PROLONGATION_MS)
    return "mobitz_i" if prolonged and all(prolonged) else None
