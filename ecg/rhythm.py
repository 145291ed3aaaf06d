"""Rhythm, ectopy and AV conduction: beat-by-beat features and the rhythm statements.

The criteria are those of the AHA/ACCF/HRS recommendations for the standardisation and
interpretation of the ECG (part II, 2009 and its companions), as a reader applies them:

* **Atrial activity per beat.** A beat has a *consistent P wave* when a P wave is found before
  its QRS and its PR interval is within :data:`PR_TOLERANCE_MS` of the median PR of such beats.
  A fibrillating or flutter baseline gives P-like humps too, but at any distance from the QRS:
  it is the constant P–QRS relation that tells an atrial rhythm, not a hump alone.
* **Beat by beat.** A beat is *premature* when its RR is under :data:`PREMATURE_SHARE` of the
  local median RR. A premature beat is a PVC when its QRS is wide and unlike the dominant
  beats (correlation with the median beat under :data:`SAME_SHAPE_CORRELATION`, or at least
  120 ms and 30 ms wider than it) and no P wave with a conducted PR precedes it (or, when one
  seems to, the pause after it is fully compensatory); otherwise it is a PAC (supraventricular:
  a QRS like the dominant beats).
* **The rhythm.** Atrial fibrillation: an irregularly irregular rhythm (the median successive
  RR difference over :data:`IRREGULAR_SHARE` of the RR, PVCs aside: a few PACs do not move
  it)
  without consistent P waves (under half the beats, and none on the median beat, where
  P waves time-locked to the QRS survive the averaging and fibrillation waves do not). Sinus
  rhythm: consistent P waves before at least :data:`SINUS_P_SHARE` of the dominant beats (and
  on the median beat, or before :data:`CLEAR_P_SHARE` of them) with a P axis of 0–90° (or
  unmeasured), named by
  rate (under 60 bpm bradycardia, over 100 tachycardia) and sinus arrhythmia when the dominant
  RR intervals vary by more than :data:`SINUS_ARRHYTHMIA_MS`. A regular rhythm without any
  P waves (under :data:`NO_P_SHARE` of beats): supraventricular (narrow QRS; junctional at
  100 bpm or less) or ventricular (QRS 120 ms or more). Anything between says nothing.
* **Atrial flutter.** Flutter waves at 240–340/min (:func:`ecg.atrial.flutter_rate_bpm`, and
  with 2:1 conduction :func:`ecg.atrial.two_to_one_flutter_rate_bpm`), with the ventricular
  rate and the conduction ratio when it is a whole number.
* **AV conduction.** First-degree AV block: sinus rhythm with a PR over 200 ms, from the median
  beat and the per-beat PR alike. Second- and third-degree AV block: from the P waves found
  independently of the QRS complexes (:mod:`ecg.atrial`, which says nothing when they are
  not reliable).

This module is pure: the features in, :class:`RhythmFindings` and worded findings out
(``(code, Chinese, English)``, turned into :class:`ecg.statements.Statement` by the caller).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from ecg.atrial import (
    AvConduction,
    assess_av_conduction,
    find_p_waves,
    flutter_rate_bpm,
    two_to_one_flutter_rate_bpm,
)
from ecg.delineate import BeatFiducials

__all__ = [
    "BeatKind",
    "RhythmFindings",
    "RhythmText",
    "assess_rhythm",
    "av_block",
    "classify_beats",
    "describe_rhythm",
    "first_degree_av_block",
]

FloatArray = npt.NDArray[np.float64]

#: A P wave's PR within this of the median PR is the same P–QRS relation.
PR_TOLERANCE_MS = 40.0
#: RR under this share of the local median RR: a premature beat.
PREMATURE_SHARE = 0.85
#: ... and followed by an interval at least this much longer (or by another premature beat).
LONGER_AFTER = 1.1
#: Local reference RR: this percentile over this many intervals (above the median, so that
#: frequent premature beats, as in bigeminy, do not set the reference themselves).
LOCAL_RR_PERCENTILE = 75.0
LOCAL_RR_SPAN = 9
#: QRS correlation with the median beat at or above this: the same shape.
SAME_SHAPE_CORRELATION = 0.85
#: A QRS this much wider than the dominant ones (and at least 120 ms) is of another origin.
WIDER_QRS_MS = 30.0
WIDE_QRS_MS = 120.0
#: Coupling RR + following RR within this share of two dominant RRs: a compensatory pause.
COMPENSATORY_TOLERANCE = 0.10
#: Median successive RR difference (dominant beats) over the median RR above this: irregular.
IRREGULAR_SHARE = 0.08
#: Shares of beats with a consistent P wave: sinus at or above, AF under, no P at all under.
SINUS_P_SHARE = 0.5
CLEAR_P_SHARE = 0.8
AF_P_SHARE = 0.5
NO_P_SHARE = 0.2
#: Sinus arrhythmia: dominant RR (P–P) intervals varying by more than this.
SINUS_ARRHYTHMIA_MS = 160.0
#: Sinus P axis (AHA: P upright in I and II): 0 to +90 degrees, with this margin.
P_AXIS_RANGE_DEG = (-15.0, 105.0)
BRADYCARDIA_BPM = 60.0
TACHYCARDIA_BPM = 100.0
FIRST_DEGREE_PR_MS = 200.0


class BeatKind:
    """Beat labels: dominant (normally conducted), supraventricular or ventricular ectopic."""

    DOMINANT = "N"
    SUPRAVENTRICULAR = "S"
    VENTRICULAR = "V"


@dataclass(frozen=True, kw_only=True)
class RhythmFindings:
    """Beat-by-beat rhythm features of one recording.

    Parameters
    ----------
    kinds
        One :class:`BeatKind` label per beat.
    rr_ms
        RR intervals, ms (one fewer than beats).
    irregularity
        Median successive RR difference over the median RR, ventricular ectopic beats left
        out (robust to a few supraventricular ones); ``None`` with too few intervals.
    p_share
        Share of the dominant beats with a consistent P wave (0 to 1).
    pr_ms
        Median PR of the beats with a consistent P wave; ``None`` without any.
    qrs_ms
        QRS duration of the median (dominant) beat; ``None`` unmeasured.
    p_axis_deg
        Frontal P axis of the median beat; ``None`` unmeasured.
    median_p_wave
        Whether the median beat shows a P wave: P waves time-locked to the QRS survive the
        averaging, fibrillation waves do not.
    av
        AV conduction from the P waves found independently of the QRS complexes
        (:mod:`ecg.atrial`); ``None`` where they are not reliable.
    flutter_bpm
        Flutter-wave rate when the flutter criterion is met (:func:`ecg.atrial.flutter_rate_bpm`).
    """

    kinds: tuple[str, ...]
    rr_ms: tuple[float, ...]
    irregularity: float | None
    p_share: float
    pr_ms: float | None
    qrs_ms: float | None = None
    p_axis_deg: float | None = None
    median_p_wave: bool = True
    av: AvConduction | None = None
    flutter_bpm: float | None = None

    def count(self, kind: str) -> int:
        return sum(1 for k in self.kinds if k == kind)

    @property
    def dominant_rr_ms(self) -> list[float]:
        """RR intervals between two dominant beats."""
        return [
            rr
            for k, rr in enumerate(self.rr_ms)
            if self.kinds[k] == BeatKind.DOMINANT and self.kinds[k + 1] == BeatKind.DOMINANT
        ]


class RhythmText(NamedTuple):
    """A worded finding: the statement code's value, Chinese and English text."""

    code: str
    zh: str
    en: str


def _local_rr(rr: FloatArray) -> FloatArray:
    if rr.size == 0:
        return rr
    local: FloatArray = ndimage.percentile_filter(
        rr, LOCAL_RR_PERCENTILE, size=min(rr.size, LOCAL_RR_SPAN), mode="nearest"
    )
    return local


def _qrs_correlation(
    clean: FloatArray, r: int, median: FloatArray, median_r: int, fs: float
) -> float:
    """Best correlation (lag within 30 ms) of a beat's QRS, all leads, with the median beat's."""
    before, after, lag = round(0.06 * fs), round(0.08 * fs), round(0.03 * fs)
    lo, hi = median_r - before, median_r + after
    if lo < 0 or hi > median.shape[1]:
        return 1.0
    template = median[:, lo:hi] - median[:, lo:hi].mean(axis=1, keepdims=True)
    norm_t = float(np.linalg.norm(template))
    best = -1.0
    for shift in range(-lag, lag + 1, max(1, round(0.002 * fs))):
        a, b = r - before + shift, r + after + shift
        if a < 0 or b > clean.shape[1]:
            continue
        segment = clean[:, a:b] - clean[:, a:b].mean(axis=1, keepdims=True)
        denominator = float(np.linalg.norm(segment)) * norm_t
        if denominator > 0:
            best = max(best, float(np.sum(segment * template)) / denominator)
    return best if best > -1.0 else 1.0


def _consistent_p(beats: Sequence[BeatFiducials], fs: float) -> tuple[list[bool], float | None]:
    """Which beats have a P wave at the recording's usual PR, and that median PR (ms)."""
    pr = [
        (b.qrs_on - b.p_on) * 1000.0 / fs
        if b.p_on is not None and b.p_off is not None and b.qrs_on is not None
        else None
        for b in beats
    ]
    found = [value for value in pr if value is not None and value > 0]
    if not found:
        return [False] * len(beats), None
    median_pr = float(np.median(found))
    consistent = [v is not None and abs(v - median_pr) <= PR_TOLERANCE_MS for v in pr]
    kept = [v for v, ok in zip(pr, consistent, strict=True) if ok and v is not None]
    return consistent, float(np.median(kept)) if kept else None


def _beat_kind(
    *,
    premature: bool,
    different: bool,
    conducted_p: bool,
    compensatory: bool,
) -> str:
    if not premature:
        return BeatKind.DOMINANT
    if different and (not conducted_p or compensatory):
        return BeatKind.VENTRICULAR
    return BeatKind.SUPRAVENTRICULAR


def classify_beats(
    clean_uv: npt.ArrayLike,
    sampling_rate_hz: float,
    r_peaks: npt.ArrayLike,
    beats: Sequence[BeatFiducials],
    median_uv: npt.ArrayLike | None,
    median_r_index: int | None,
    median_qrs_ms: float | None,
) -> tuple[str, ...]:
    """Label each beat dominant, supraventricular (PAC) or ventricular (PVC) ectopic.

    Parameters
    ----------
    clean_uv
        Filtered signal, microvolts, ``(n_leads, n_samples)``.
    sampling_rate_hz
        Samples per second.
    r_peaks, beats
        R peaks and their fiducials (one per beat).
    median_uv, median_r_index, median_qrs_ms
        The median (dominant) beat, its R column and QRS duration; without a median beat
        every premature beat is called supraventricular only when its QRS is narrow.

    Returns
    -------
    tuple of str
        One :class:`BeatKind` label per beat; the first beat (no RR before it) is dominant.
    """
    fs = float(sampling_rate_hz)
    clean = np.atleast_2d(np.asarray(clean_uv, dtype=np.float64))
    peaks = np.asarray(r_peaks, dtype=np.int64)
    rr = np.diff(peaks).astype(np.float64)
    local = _local_rr(rr)
    consistent, _ = _consistent_p(beats, fs)
    median = None if median_uv is None else np.atleast_2d(np.asarray(median_uv, np.float64))
    short = rr < PREMATURE_SHARE * local
    kinds = [BeatKind.DOMINANT]
    for k in range(1, peaks.size):
        # Premature: early, and followed by a longer interval (a pause) or another early beat.
        premature = bool(
            short[k - 1] and (k >= rr.size or short[k] or rr[k] >= LONGER_AFTER * rr[k - 1])
        )
        if not premature:
            kinds.append(BeatKind.DOMINANT)
            continue
        width = _width_ms(beats[k], fs)
        wide = width is not None and (
            width >= WIDE_QRS_MS
            or (median_qrs_ms is not None and width - median_qrs_ms >= WIDER_QRS_MS)
        )
        corr = (
            _qrs_correlation(clean, int(peaks[k]), median, median_r_index, fs)
            if median is not None and median_r_index is not None
            else 1.0
        )
        following = rr[k] if k < rr.size else None
        compensatory = (
            following is not None
            and abs(rr[k - 1] + following - 2 * local[k - 1])
            <= COMPENSATORY_TOLERANCE * 2 * local[k - 1]
        )
        kinds.append(
            _beat_kind(
                premature=True,
                different=wide and corr < SAME_SHAPE_CORRELATION,
                conducted_p=consistent[k],
                compensatory=compensatory,
            )
        )
    return tuple(kinds[: peaks.size])


def _width_ms(beat: BeatFiducials, fs: float) -> float | None:
    if beat.qrs_on is None or beat.qrs_off is None or beat.qrs_off <= beat.qrs_on:
        return None
    return (beat.qrs_off - beat.qrs_on) * 1000.0 / fs


def _irregularity(rr_ms: FloatArray, kinds: Sequence[str]) -> float | None:
    """Median successive RR difference over the median RR (0 when perfectly regular), the
    intervals into and out of ventricular ectopic beats left out (they are not the atria's;
    supraventricular ones stay: in fibrillation every beat may look premature)."""
    ventricular = np.array([k == BeatKind.VENTRICULAR for k in kinds])
    keep = ~(ventricular[1:] | ventricular[:-1]) if ventricular.size > 1 else ventricular[:0]
    use = rr_ms[keep] if keep.sum() >= 3 else rr_ms
    if use.size < 3:
        return None
    return float(np.median(np.abs(np.diff(use))) / np.median(use))


def assess_rhythm(
    clean_uv: npt.ArrayLike,
    sampling_rate_hz: float,
    r_peaks: npt.ArrayLike,
    beats: Sequence[BeatFiducials],
    *,
    median_uv: npt.ArrayLike | None = None,
    median_r_index: int | None = None,
    qrs_ms: float | None = None,
    p_axis_deg: float | None = None,
    median_p_wave: bool = True,
    median_fiducials: BeatFiducials | None = None,
    leads: Sequence[str] | None = None,
) -> RhythmFindings:
    """The beat-by-beat rhythm features of a recording (see the module's criteria).

    Parameters
    ----------
    clean_uv
        Filtered signal, microvolts, ``(n_leads, n_samples)``.
    sampling_rate_hz
        Samples per second.
    r_peaks, beats
        R peaks and their fiducials.
    median_uv, median_r_index
        The median beat and its R column (for the QRS shape of each beat).
    qrs_ms, p_axis_deg, median_p_wave
        The median beat's QRS duration, frontal P axis, and whether it has a P wave.
    median_fiducials
        The median beat's fiducials (its P wave is the template of the P-wave search).
    leads
        Lead names of the rows (for 2:1 flutter, looked for in II, III, aVF and V1).
    """
    fs = float(sampling_rate_hz)
    peaks = np.asarray(r_peaks, dtype=np.int64)
    kinds = classify_beats(clean_uv, fs, peaks, beats, median_uv, median_r_index, qrs_ms)
    rr_ms = np.diff(peaks).astype(np.float64) * 1000.0 / fs
    consistent, pr_ms = _consistent_p(beats, fs)
    dominant = [ok for ok, kind in zip(consistent, kinds, strict=True) if kind == BeatKind.DOMINANT]
    return RhythmFindings(
        kinds=kinds,
        rr_ms=tuple(float(v) for v in rr_ms),
        irregularity=_irregularity(rr_ms, kinds),
        p_share=sum(dominant) / len(dominant) if dominant else 0.0,
        pr_ms=pr_ms,
        qrs_ms=qrs_ms,
        p_axis_deg=p_axis_deg,
        median_p_wave=median_p_wave,
        av=_av(clean_uv, fs, beats, median_uv, median_fiducials),
        flutter_bpm=_flutter_bpm(clean_uv, fs, peaks, leads, median_uv, median_fiducials),
    )


def _flutter_bpm(
    clean_uv: npt.ArrayLike,
    fs: float,
    peaks: npt.NDArray[np.int64],
    leads: Sequence[str] | None,
    median_uv: npt.ArrayLike | None,
    median_fiducials: BeatFiducials | None,
) -> float | None:
    """The flutter-wave rate by the spectrum, else by 2:1 conduction (:mod:`ecg.atrial`)."""
    rate = flutter_rate_bpm(clean_uv, fs, peaks)
    if rate is not None or leads is None or median_uv is None or median_fiducials is None:
        return rate
    return two_to_one_flutter_rate_bpm(clean_uv, fs, peaks, leads, median_uv, median_fiducials)


def _av(
    clean_uv: npt.ArrayLike,
    fs: float,
    beats: Sequence[BeatFiducials],
    median_uv: npt.ArrayLike | None,
    median_fiducials: BeatFiducials | None,
) -> AvConduction | None:
    if median_uv is None or median_fiducials is None:
        return None
    p_waves = find_p_waves(clean_uv, fs, list(beats), median_uv, median_fiducials)
    qrs = [b.qrs_on for b in beats if b.qrs_on is not None]
    return None if p_waves is None else assess_av_conduction(p_waves, qrs, fs)


def describe_rhythm(
    findings: RhythmFindings, rate_bpm: float, pr_ms: float | None = None
) -> list[RhythmText]:
    """The rhythm, ectopy and AV-conduction findings, worded for the reader to confirm.

    Parameters
    ----------
    findings
        From :func:`assess_rhythm`.
    rate_bpm
        The ventricular rate (all beats).
    pr_ms
        The median beat's PR interval (the PR the reader sees); the per-beat median PR of
        `findings` when ``None``.
    """
    out: list[RhythmText] = []
    rhythm = _rhythm(findings, rate_bpm)
    if rhythm is not None:
        out.append(rhythm)
    fibrillation = rhythm is not None and rhythm.code in {"ATRIAL_FIBRILLATION", "ATRIAL_FLUTTER"}
    sinus = rhythm is not None and rhythm.code.startswith("SINUS_")
    if sinus:
        arrhythmia = _sinus_arrhythmia(findings)
        if arrhythmia is not None:
            out.append(arrhythmia)
    out.extend(_ectopy(findings, supraventricular=not fibrillation))
    if not fibrillation and findings.av is not None:
        out.extend(av_block(findings.av))
    if sinus and findings.pr_ms is not None:
        # Both the median beat's PR (earliest P onset over the leads) and the beat-by-beat
        # PR must exceed the limit: a long PR in every conducted beat.
        both = findings.pr_ms if pr_ms is None else min(pr_ms, findings.pr_ms)
        out.extend(first_degree_av_block(both))
    return out


def _rhythm(findings: RhythmFindings, rate: float) -> RhythmText | None:
    if findings.flutter_bpm is not None:
        return _flutter(findings.flutter_bpm, rate)
    irregular = findings.irregularity is not None and findings.irregularity > IRREGULAR_SHARE
    if irregular and findings.p_share < AF_P_SHARE and not findings.median_p_wave:
        return _fibrillation(rate)
    axis = findings.p_axis_deg
    axis_ok = axis is None or P_AXIS_RANGE_DEG[0] <= axis <= P_AXIS_RANGE_DEG[1]
    atrial = findings.p_share >= SINUS_P_SHARE and (
        findings.median_p_wave or findings.p_share >= CLEAR_P_SHARE
    )
    if atrial and axis_ok:
        return _sinus(rate)
    if atrial and axis is not None and rate > TACHYCARDIA_BPM:
        return RhythmText(
            "ATRIAL_TACHYCARDIA",
            f"P 波形态/电轴异常（P 电轴 {axis:.0f}°）的规则心动过速（心率 {rate:.0f} 次/分），"
            "考虑房性心动过速，请确认",
            f"Regular tachycardia (rate {rate:.0f} bpm) with P waves of abnormal axis "
            f"({axis:.0f}°), consider atrial tachycardia; please confirm",
        )
    if findings.p_share < NO_P_SHARE and not findings.median_p_wave and not irregular:
        return _no_p_rhythm(findings.qrs_ms, rate)
    return None


def _flutter(atrial: float, rate: float) -> RhythmText:
    ratio = atrial / rate if rate > 0 else 0.0
    conduction = round(ratio)
    if conduction >= 2 and abs(ratio - conduction) <= 0.15:
        zh, en = f"，{conduction}:1 下传", f", {conduction}:1 conduction"
    else:
        zh, en = "，下传比例不固定", ", variable conduction"
    return RhythmText(
        "ATRIAL_FLUTTER",
        f"可见连续的扑动波（F 波 {atrial:.0f} 次/分），提示心房扑动"
        f"（心室率 {rate:.0f} 次/分{zh}），请确认",
        f"Continuous flutter waves ({atrial:.0f}/min): consistent with atrial flutter "
        f"(ventricular rate {rate:.0f} bpm{en}); please confirm",
    )


def _fibrillation(rate: float) -> RhythmText:
    if rate > TACHYCARDIA_BPM:
        zh, en = "快速心室率", "rapid ventricular response"
    elif rate < BRADYCARDIA_BPM:
        zh, en = "缓慢心室率", "slow ventricular response"
    else:
        zh, en = "心室率", "ventricular rate"
    return RhythmText(
        "ATRIAL_FIBRILLATION",
        f"RR 间期绝对不规则，未见一致的 P 波，提示心房颤动（{zh} {rate:.0f} 次/分），请确认",
        f"Irregularly irregular RR intervals without consistent P waves: consistent with atrial "
        f"fibrillation ({en}, {rate:.0f} bpm); please confirm",
    )


def _sinus(rate: float) -> RhythmText:
    if rate < BRADYCARDIA_BPM:
        code, zh, en = "SINUS_BRADYCARDIA", "窦性心动过缓", "sinus bradycardia"
    elif rate > TACHYCARDIA_BPM:
        code, zh, en = "SINUS_TACHYCARDIA", "窦性心动过速", "sinus tachycardia"
    else:
        code, zh, en = "SINUS_RHYTHM", "窦性心律", "sinus rhythm"
    return RhythmText(
        code,
        f"考虑{zh}（心率 {rate:.0f} 次/分），请确认",
        f"Consistent with {en} (rate {rate:.0f} bpm); please confirm",
    )


def _no_p_rhythm(qrs_ms: float | None, rate: float) -> RhythmText | None:
    """A regular rhythm without P waves: supraventricular (narrow) or ventricular (wide)."""
    if qrs_ms is None:
        return None
    if qrs_ms >= WIDE_QRS_MS:
        if rate > TACHYCARDIA_BPM:
            zh, en = "宽 QRS 心动过速，考虑室性心动过速", "wide-complex tachycardia, consider "
            en += "ventricular tachycardia"
        else:
            zh, en = "宽 QRS 规则心律，考虑室性（心室自主）心律", "regular wide-complex rhythm, "
            en += "consider a ventricular (idioventricular) rhythm"
        return RhythmText(
            "VENTRICULAR_RHYTHM",
            f"未见 P 波，{zh}（心率 {rate:.0f} 次/分，QRS {qrs_ms:.0f} ms），请确认",
            f"No P waves, {en} (rate {rate:.0f} bpm, QRS {qrs_ms:.0f} ms); please confirm",
        )
    if rate > TACHYCARDIA_BPM:
        return RhythmText(
            "SUPRAVENTRICULAR_TACHYCARDIA",
            f"未见 P 波的窄 QRS 规则心动过速（心率 {rate:.0f} 次/分），考虑室上性心动过速，请确认",
            f"Regular narrow-complex tachycardia without visible P waves (rate {rate:.0f} bpm), "
            "consider supraventricular tachycardia; please confirm",
        )
    return RhythmText(
        "JUNCTIONAL_RHYTHM",
        f"未见 P 波的窄 QRS 规则心律（心率 {rate:.0f} 次/分），考虑交界性心律，请确认",
        f"Regular narrow-complex rhythm without visible P waves (rate {rate:.0f} bpm), consider "
        "a junctional rhythm; please confirm",
    )


def _sinus_arrhythmia(findings: RhythmFindings) -> RhythmText | None:
    dominant = findings.dominant_rr_ms
    if len(dominant) < 4:
        return None
    low, high = np.percentile(dominant, [10.0, 90.0])
    spread = float(high - low)
    if spread <= SINUS_ARRHYTHMIA_MS:
        return None
    return RhythmText(
        "SINUS_ARRHYTHMIA",
        f"窦性心律不齐（P-P 间期相差 {spread:.0f} ms），请确认",
        f"Sinus arrhythmia (P-P intervals vary by {spread:.0f} ms); please confirm",
    )


def _runs(kinds: Sequence[str], kind: str) -> list[int]:
    """Lengths of the runs of consecutive `kind` beats."""
    lengths: list[int] = []
    current = 0
    for k in (*kinds, ""):
        if k == kind:
            current += 1
        elif current:
            lengths.append(current)
            current = 0
    return lengths


def _group_pattern(kinds: Sequence[str], kind: str, every: int) -> bool:
    """Bigeminy (`every` 2) or trigeminy (3): an ectopic beat after each 1 or 2 dominant beats,
    for at least three cycles in a row."""
    pattern = [BeatKind.DOMINANT] * (every - 1) + [kind]
    text = "".join(kinds)
    return "".join(pattern) * 3 in text


def _ectopy(findings: RhythmFindings, *, supraventricular: bool) -> list[RhythmText]:
    out: list[RhythmText] = []
    n = len(findings.kinds)
    kinds_to_state = [BeatKind.VENTRICULAR]
    if supraventricular:
        kinds_to_state.insert(0, BeatKind.SUPRAVENTRICULAR)
    for kind in kinds_to_state:
        count = findings.count(kind)
        if not count:
            continue
        pvc = kind == BeatKind.VENTRICULAR
        name_zh = "室性早搏" if pvc else "房性早搏"
        name_en = "premature ventricular complexes" if pvc else "premature atrial complexes"
        runs = _runs(findings.kinds, kind)
        extras_zh: list[str] = []
        extras_en: list[str] = []
        if _group_pattern(findings.kinds, kind, 2):
            extras_zh.append("呈二联律")
            extras_en.append("bigeminy")
        elif _group_pattern(findings.kinds, kind, 3):
            extras_zh.append("呈三联律")
            extras_en.append("trigeminy")
        if couplets := sum(1 for r in runs if r == 2):
            extras_zh.append(f"成对 {couplets} 次")
            extras_en.append(f"{couplets} couplet(s)")
        if longest := max((r for r in runs if r >= 3), default=0):
            extras_zh.append(f"短阵连发（最长 {longest} 个）")
            extras_en.append(f"run(s) of three or more (longest {longest} beats)")
        what = "wide QRS unlike the dominant beats" if pvc else "QRS like the dominant beats"
        what_zh = "QRS 增宽、形态与主导心搏不同" if pvc else "QRS 形态与主导心搏相同"
        out.append(
            RhythmText(
                "PVC" if pvc else "PAC",
                f"{name_zh} {count} 次（{n} 个心搏中；提前出现，{what_zh}）"
                f"{'，' + '，'.join(extras_zh) if extras_zh else ''}，请确认",
                f"{name_en[0].upper()}{name_en[1:]}: {count} of {n} beats (premature, {what})"
                f"{'; ' + ', '.join(extras_en) if extras_en else ''}; please confirm",
            )
        )
    return out


_AV_BLOCKS = {
    "mobitz_i": (
        "SECOND_DEGREE_AV_BLOCK_MOBITZ_I",
        "PR 间期逐搏延长后 P 波未下传，提示二度 I 型房室阻滞（文氏）",
        "progressive PR prolongation before a non-conducted P wave: consistent with "
        "second-degree AV block, Mobitz I (Wenckebach)",
    ),
    "mobitz_ii": (
        "SECOND_DEGREE_AV_BLOCK_MOBITZ_II",
        "PR 间期固定，突然出现 P 波未下传，提示二度 II 型房室阻滞",
        "non-conducted P waves with a constant PR: consistent with second-degree AV block, "
        "Mobitz II",
    ),
    "2:1": (
        "AV_BLOCK_2_TO_1",
        "每隔一个 P 波下传（PR 固定），提示 2:1 房室阻滞",
        "every other P wave conducted at a constant PR: consistent with 2:1 AV block",
    ),
    "third_degree": (
        "THIRD_DEGREE_AV_BLOCK",
        "P 波与 QRS 波群各自规则、无固定关系（房室分离），提示三度房室阻滞",
        "regular P waves and regular QRS complexes without a constant PR (AV dissociation): "
        "consistent with third-degree AV block",
    ),
}


def av_block(av: AvConduction) -> list[RhythmText]:
    """Second- and third-degree AV block from the P waves found independently of the QRS."""
    if av.pattern is None:
        return []
    code, zh, en = _AV_BLOCKS[av.pattern]
    pr = f"PR {min(av.pr_ms):.0f}–{max(av.pr_ms):.0f} ms" if av.pr_ms else "PR -"
    return [
        RhythmText(
            code,
            f"{zh}（心房率 {av.atrial_rate_bpm:.0f} 次/分，{av.n_p} 个 P 波中 {av.n_dropped} 个"
            f"未下传，{pr}），请确认",
            f"{en[0].upper()}{en[1:]} (atrial rate {av.atrial_rate_bpm:.0f} bpm, {av.n_dropped} "
            f"of {av.n_p} P waves not conducted, {pr}); please confirm",
        )
    ]


def first_degree_av_block(pr: float | None) -> list[RhythmText]:
    """First-degree AV block: a PR over 200 ms with every P wave conducted (the caller has
    found P waves before the beats at a constant PR)."""
    if pr is None or not pr > FIRST_DEGREE_PR_MS:
        return []
    return [
        RhythmText(
            "FIRST_DEGREE_AV_BLOCK",
            f"PR 间期延长（{pr:.0f} ms，> 200 ms），每个 P 波均下传，提示一度房室阻滞，请确认",
            f"PR interval {pr:.0f} ms (> 200 ms) with every P wave conducted: consistent with "
            "first-degree AV block; please confirm",
        )
    ]
