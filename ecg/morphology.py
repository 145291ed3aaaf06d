"""Per-lead QRS, ST and T measurements of the median beat, and the morphology criteria.

:func:`measure_morphology` names the waves of each lead's QRS complex (Q, R, S, R′ and a
notched R), their amplitudes and durations, the R-peak time, the ST level at the J point and
60 and 80 ms after it, and the T amplitude, all against the PR-segment level.
:func:`interpret_morphology` applies the published criteria to them: conduction blocks and
pre-excitation (AHA/ACCF/HRS recommendations for the standardisation and interpretation of the
ECG, part III), hypertrophy and low voltage (part V), Q waves, ST depression and T inversion
(part VI and the Fourth Universal Definition of MI), ST elevation (Fourth Universal
Definition), and behind a left bundle branch block or a wide paced complex the Smith-modified
Sgarbossa criteria instead. It returns findings (a statement code and its wording, Chinese and
English) for :func:`ecg.statements.compose_statements` to turn into statements.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt
from scipy import signal

from ecg.delineate import BeatFiducials
from ecg.measure import _isoelectric

__all__ = [
    "CODES",
    "ST_ELEVATION_PAIRS",
    "Finding",
    "LeadMorphology",
    "Morphology",
    "QrsLimits",
    "interpret_morphology",
    "measure_morphology",
    "meets_stemi_criteria",
    "qrs_limits",
]

FloatArray = npt.NDArray[np.float64]

#: Every statement code :func:`interpret_morphology` emits (values of
#: :class:`ecg.statements.StatementCode`); each names an abnormal finding.
CODES: tuple[str, ...] = (
    "RBBB",
    "INCOMPLETE_RBBB",
    "LBBB",
    "LAFB",
    "LPFB",
    "IVCD",
    "PRE_EXCITATION",
    "LVH",
    "RVH",
    "LOW_VOLTAGE",
    "Q_WAVES_ANTERIOR",
    "Q_WAVES_LATERAL",
    "Q_WAVES_INFERIOR",
    "ST_ELEVATION_STEMI_CRITERIA",
    "ST_ELEVATION_PACED",
    "ST_DEPRESSION",
    "T_WAVE_INVERSION",
    "SECONDARY_ST_T_CHANGES",
    "SHORT_QTC",
)

#: A deflection of the QRS smaller than this is not a wave of its own (µV).
WAVE_MIN_UV = 30.0
#: A second peak of an R wave is a notch when it stands out by this share of the R (and
#: at least :data:`WAVE_MIN_UV`).
NOTCH_SHARE = 0.1
#: ST levels are read at the J point (QRS offset) and these times after it.
ST_AFTER_J_S = (0.060, 0.080)
#: Each level is the mean over this half-width either side of its point.
LEVEL_HALF_S = 0.004

#: Contiguous lead pairs for ST and T criteria (same territory; precordial neighbours).
ST_ELEVATION_PAIRS: tuple[tuple[str, str], ...] = (
    ("II", "III"),
    ("II", "aVF"),
    ("III", "aVF"),
    ("I", "aVL"),
    ("I", "V6"),
    ("aVL", "V6"),
    ("V5", "V6"),
    ("V1", "V2"),
    ("V2", "V3"),
    ("V3", "V4"),
    ("V4", "V5"),
)
TERRITORIES: dict[str, tuple[str, ...]] = {
    "ANTERIOR": ("V1", "V2", "V3", "V4"),
    "LATERAL": ("I", "aVL", "V5", "V6"),
    "INFERIOR": ("II", "III", "aVF"),
}
TERRITORY_WORDS = {
    "ANTERIOR": ("前壁", "anterior"),
    "LATERAL": ("侧壁", "lateral"),
    "INFERIOR": ("下壁", "inferior"),
}
LIMB_LEADS = ("I", "II", "III", "aVR", "aVL", "aVF")
PRECORDIAL_LEADS = ("V1", "V2", "V3", "V4", "V5", "V6")

# Conduction (AHA/ACCF/HRS 2009, part III). The adult QRS limits; children's are lower
# (:func:`qrs_limits`).
COMPLETE_BBB_MS = 120.0
INCOMPLETE_RBBB_MS = 110.0
IVCD_MS = 110.0
RBBB_V1_R_PEAK_TIME_MS = 50.0
RBBB_TERMINAL_S_MS = 40.0
R_PRIME_MIN_UV = 100.0
R_PRIME_SHARE = 0.5
LBBB_R_PEAK_TIME_MS = 60.0
LAFB_AVL_R_PEAK_TIME_MS = 45.0
LAFB_AXIS_DEG = (-90.0, -45.0)
LPFB_AXIS_DEG = (90.0, 180.0)
PRE_EXCITATION_PR_MS = 120.0
PRE_EXCITATION_QRS_MS = 120.0
#: A delta wave: the first 30 ms of the QRS rise at under this share of its steepest slope.
DELTA_SLOPE_SHARE = 0.25
DELTA_SPAN_S = 0.030
# Hypertrophy and voltage (part V).
SOKOLOW_LYON_UV = 3500.0
SOKOLOW_LYON_MIN_AGE = 40.0
CORNELL_MALE_UV = 2800.0
CORNELL_FEMALE_UV = 2000.0
RVH_R_V1_UV = 700.0
RVH_AXIS_DEG = 90.0
LOW_VOLTAGE_LIMB_UV = 500.0
LOW_VOLTAGE_PRECORDIAL_UV = 1000.0
# Q, ST and T (part VI; Fourth Universal Definition of MI).
PATHOLOGICAL_Q_MS = 40.0
PATHOLOGICAL_Q_SHARE = 0.25
PATHOLOGICAL_Q_MIN_UV = 100.0
ST_DEPRESSION_UV = 50.0
#: Horizontal or downsloping: the ST rises by no more than this from J to J + 60 ms (µV).
ST_HORIZONTAL_RISE_UV = 25.0
T_INVERSION_UV = 100.0
SHORT_QTC_MS = 340.0
# Sgarbossa, Smith-modified (Smith et al., Ann Emerg Med 2012).
SGARBOSSA_CONCORDANT_UV = 100.0
SMITH_RATIO = -0.25


@dataclass(frozen=True, kw_only=True)
class LeadMorphology:
    """One lead of the median beat: waves, R-peak time, ST levels and T amplitude.

    Amplitudes are µV against the PR-segment level: wave amplitudes as magnitudes (a Q or S
    of 300 µV is 300 below the baseline), the ST levels and the T amplitude signed (positive:
    above the baseline). Durations in ms; 0 for a wave that is absent.
    """

    q_uv: float = 0.0
    q_ms: float = 0.0
    r_uv: float = 0.0
    r_ms: float = 0.0
    s_uv: float = 0.0
    s_ms: float = 0.0
    r_prime_uv: float = 0.0
    notched_r: bool = False
    r_peak_time_ms: float | None = None
    qrs_peak_to_peak_uv: float = 0.0
    qrs_net_uv: float = 0.0
    st_j_uv: float = 0.0
    st_j60_uv: float = 0.0
    st_j80_uv: float = 0.0
    t_uv: float | None = None

    @property
    def pattern(self) -> str:
        """The QRS pattern in the usual letters (``qR``, ``rS``, ``rSR'``, ``QS`` …)."""
        if self.r_uv == 0.0:
            return "QS" if self.q_uv else ""
        big = max(self.q_uv, self.r_uv, self.s_uv, self.r_prime_uv)

        def letter(name: str, amplitude: float) -> str:
            if not amplitude:
                return ""
            return name.upper() if amplitude >= 0.5 * big else name

        prime = letter("r", self.r_prime_uv)
        return (
            letter("q", self.q_uv)
            + letter("r", self.r_uv)
            + letter("s", self.s_uv)
            + (prime + "'" if prime else "")
        )


@dataclass(frozen=True, kw_only=True)
class Morphology:
    """Per-lead measurements of the median beat, and whether its QRS begins with a delta wave."""

    leads: dict[str, LeadMorphology]
    delta_wave: bool = False


@dataclass(frozen=True, kw_only=True)
class Finding:
    """A morphology statement: its code (a :class:`ecg.statements.StatementCode` value) and
    its wording."""

    code: str
    text_zh: str
    text_en: str


# --------------------------------------------------------------------------- measurement


def _lobes(x: FloatArray, to_ms: float) -> list[tuple[float, float, int]]:
    """The QRS split at its baseline crossings: (signed peak µV, duration ms, peak index)
    per lobe, lobes under :data:`WAVE_MIN_UV` merged into their neighbours."""
    sign = np.where(x >= 0, 1, -1)
    edges = np.flatnonzero(np.diff(sign)) + 1
    bounds = [0, *edges.tolist(), x.size]
    lobes: list[tuple[float, float, int]] = []
    for start, stop in itertools.pairwise(bounds):
        part = x[start:stop]
        k = int(np.argmax(np.abs(part)))
        lobes.append((float(part[k]), (stop - start) * to_ms, start + k))
    kept = [lobe for lobe in lobes if abs(lobe[0]) >= WAVE_MIN_UV]
    merged: list[tuple[float, float, int]] = []
    for lobe in kept:
        if merged and (merged[-1][0] > 0) == (lobe[0] > 0):
            last = merged[-1]
            peak = last if abs(last[0]) >= abs(lobe[0]) else lobe
            merged[-1] = (peak[0], last[1] + lobe[1], peak[2])
        else:
            merged.append(lobe)
    return merged


def _r_notch(x: FloatArray, r_index: int, r_uv: float) -> int | None:
    """Index of the last peak of a notched R wave (``None`` if the R has one peak)."""
    positive = np.clip(x, 0.0, None)
    peaks, _ = signal.find_peaks(
        positive, prominence=max(WAVE_MIN_UV, NOTCH_SHARE * r_uv), height=0.3 * r_uv
    )
    if peaks.size < 2:
        return None
    # Peaks of the same lobe as the R: no baseline crossing between them and the R.
    same = [int(p) for p in peaks if np.all(x[min(p, r_index) : max(p, r_index) + 1] > 0)]
    return max(same) if len(same) >= 2 else None


def _qrs_waves(x: FloatArray, to_ms: float) -> LeadMorphology:
    """Name the waves of one lead's QRS (baseline-corrected, onset to offset)."""
    lobes = _lobes(x, to_ms)
    base = LeadMorphology(qrs_peak_to_peak_uv=float(np.ptp(x)), qrs_net_uv=_net(x))
    first_r = next((i for i, lobe in enumerate(lobes) if lobe[0] > 0), None)
    if first_r is None:
        if not lobes:
            return base
        return replace(base, q_uv=-min(lobe[0] for lobe in lobes), q_ms=x.size * to_ms)
    q_uv, q_ms = (-lobes[0][0], lobes[0][1]) if first_r > 0 else (0.0, 0.0)
    r_uv, r_ms, r_index = lobes[first_r]
    rest = lobes[first_r + 1 :]
    s_uv, s_ms = (-rest[0][0], rest[0][1]) if rest else (0.0, 0.0)
    r_prime_uv, last_peak = (rest[1][0], rest[1][2]) if len(rest) >= 2 else (0.0, r_index)
    notch = _r_notch(x, r_index, r_uv) if len(rest) < 2 else None
    if notch is not None:
        last_peak = max(last_peak, notch)
    return replace(
        base,
        q_uv=q_uv,
        q_ms=q_ms,
        r_uv=r_uv,
        r_ms=r_ms,
        s_uv=s_uv,
        s_ms=s_ms,
        r_prime_uv=r_prime_uv,
        notched_r=notch is not None,
        r_peak_time_ms=last_peak * to_ms,
    )


def _net(x: FloatArray) -> float:
    """The largest deflection of the QRS, signed: its predominant direction."""
    return float(x[int(np.argmax(np.abs(x)))]) if x.size else 0.0


def _level(row: FloatArray, point: int, half: int) -> float:
    point = min(max(point, 0), row.size - 1)
    return float(row[max(0, point - half) : point + half + 1].mean())


def _t_amplitude(row: FloatArray, fiducials: BeatFiducials, fs: float) -> float | None:
    """The T wave's extreme, signed, within 60 ms of the T peak (before the T end)."""
    if fiducials.t_peak is None or fiducials.qrs_off is None:
        return None
    near = round(0.060 * fs)
    start = max(fiducials.qrs_off + round(0.060 * fs), fiducials.t_peak - near)
    stop = fiducials.t_peak + near
    if fiducials.t_off is not None:
        stop = min(stop, fiducials.t_off)
    stop = min(stop, row.size - 1)
    if stop <= start:
        return float(row[min(fiducials.t_peak, row.size - 1)])
    part = row[start : stop + 1]
    return float(part[int(np.argmax(np.abs(part)))])


def _delta_wave(qrs: FloatArray, fs: float) -> bool:
    """A slurred QRS start in most large leads: the first 30 ms rise slowly."""
    span = round(DELTA_SPAN_S * fs)
    if qrs.shape[1] <= 2 * span:
        return False
    slope = np.abs(np.diff(qrs, axis=1))
    big = np.ptp(qrs, axis=1) >= 500.0
    if not big.any():
        return False
    share = slope[big, :span].mean(axis=1) / (slope[big].max(axis=1) + 1e-9)
    return bool(np.mean(share < DELTA_SLOPE_SHARE) > 0.5)


def measure_morphology(
    median_uv: npt.ArrayLike,
    leads: Sequence[str],
    fiducials: BeatFiducials,
    sampling_rate_hz: float,
) -> Morphology | None:
    """Measure every lead's QRS waves, ST levels and T amplitude on the median beat.

    Parameters
    ----------
    median_uv
        Median beat of the dominant beats, microvolts, ``(n_leads, n_samples)``.
    leads
        Lead names, one per row.
    fiducials
        Fiducials of the median beat (QRS onset and offset needed; the T peak for T).
    sampling_rate_hz
        Samples per second.

    Returns
    -------
    Morphology or None
        ``None`` when the QRS boundaries are missing.
    """
    data = np.asarray(median_uv, dtype=np.float64)
    fs = float(sampling_rate_hz)
    on, off = fiducials.qrs_on, fiducials.qrs_off
    if on is None or off is None or off <= on or off >= data.shape[1]:
        return None
    data = data - _isoelectric(data, fiducials, fs)[:, None]
    to_ms = 1000.0 / fs
    half = max(0, round(LEVEL_HALF_S * fs))
    j60, j80 = (off + round(s * fs) for s in ST_AFTER_J_S)
    result: dict[str, LeadMorphology] = {}
    for i, name in enumerate(leads):
        row = data[i]
        waves = _qrs_waves(row[on : off + 1], to_ms)
        result[name] = replace(
            waves,
            st_j_uv=_level(row, off, half),
            st_j60_uv=_level(row, j60, half),
            st_j80_uv=_level(row, j80, half),
            t_uv=_t_amplitude(row, fiducials, fs),
        )
    return Morphology(leads=result, delta_wave=_delta_wave(data[:, on : off + 1], fs))


# --------------------------------------------------------------------------- criteria


def _st_threshold_uv(lead: str, sex: str | None, age_years: float | None) -> float:
    """ST-elevation threshold at the J point (Fourth Universal Definition of MI)."""
    if lead not in ("V2", "V3"):
        return 100.0
    if sex == "F":
        return 150.0
    if sex == "M":
        return 250.0 if age_years is not None and age_years < 40 else 200.0
    # Sex unknown: the lowest threshold, so a STEMI is not missed for want of a field.
    return 150.0


def meets_stemi_criteria(
    st_deviation_uv: Mapping[str, float], *, sex: str | None = None, age_years: float | None = None
) -> list[str]:
    """Leads with ST elevation meeting the criterion in at least one contiguous pair.

    Parameters
    ----------
    st_deviation_uv
        ST deviation by lead, microvolts (at the J point, or from
        :func:`ecg.measure.measure_st_deviation`).
    sex
        ``"M"``, ``"F"`` or ``None`` (unknown: the lowest V2–V3 threshold is used).
    age_years
        Patient age; men under 40 have a higher V2–V3 threshold.

    Returns
    -------
    list of str
        The leads of every qualifying pair, in :data:`ST_ELEVATION_PAIRS` order, each once;
        empty when the criterion is not met.
    """

    def elevated(lead: str) -> bool:
        value = st_deviation_uv.get(lead)
        return value is not None and value >= _st_threshold_uv(lead, sex, age_years)

    return _contiguous([lead for lead in st_deviation_uv if elevated(lead)])


def _contiguous(
    leads: Sequence[str], pairs: Sequence[tuple[str, str]] = ST_ELEVATION_PAIRS
) -> list[str]:
    """The leads of `leads` that form a contiguous pair with another of them, pair order."""
    found: list[str] = []
    for a, b in pairs:
        if a in leads and b in leads:
            found.extend(lead for lead in (a, b) if lead not in found)
    return found


#: Pairs for Q waves and T inversion: without V1, where a QS complex and an inverted T are
#: normal (aVR is in no pair; III counts only beside II or aVF).
PAIRS_WITHOUT_V1 = tuple(pair for pair in ST_ELEVATION_PAIRS if "V1" not in pair)


def _finding(code: str, zh: str, en: str) -> Finding:
    return Finding(code=code, text_zh=zh, text_en=en)


def _mv(uv: float) -> str:
    return f"{uv / 1000:.2f} mV"


@dataclass(frozen=True, kw_only=True)
class QrsLimits:
    """The QRS durations (ms) of the conduction criteria at one age (AHA/ACCF/HRS 2009,
    part III): a nonspecific IVCD is a QRS longer than `ivcd_over_ms` without the criteria of
    a bundle branch block; an incomplete RBBB from `incomplete_rbbb_ms`; a complete RBBB or
    LBBB from `complete_bbb_ms` (at least it in adults, longer than it in children)."""

    ivcd_over_ms: float
    incomplete_rbbb_ms: float
    complete_bbb_ms: float
    complete_inclusive: bool = True

    def complete(self, qrs_ms: float) -> bool:
        """Whether `qrs_ms` is long enough for a complete bundle branch block."""
        if self.complete_inclusive:
            return qrs_ms >= self.complete_bbb_ms
        return qrs_ms > self.complete_bbb_ms


#: Part III's limits by age band (lower bound of the band in years, limits), youngest last:
#: IVCD over 110 ms in adults (over 16: from 17), over 90 ms at 8 to 16 and over 80 ms under 8;
#: incomplete RBBB from 110 ms in adults, 90 ms at 4 to 16 and 86 ms under 8 (the bands
#: overlap in the text: the younger one's limit holds from 4 to 8); complete BBB from 120 ms
#: in adults, over 100 ms at 4 to 16 and over 90 ms under 4.
QRS_LIMITS_BY_AGE: tuple[tuple[float, QrsLimits], ...] = (
    (
        17.0,
        QrsLimits(
            ivcd_over_ms=IVCD_MS,
            incomplete_rbbb_ms=INCOMPLETE_RBBB_MS,
            complete_bbb_ms=COMPLETE_BBB_MS,
        ),
    ),
    (
        8.0,
        QrsLimits(
            ivcd_over_ms=90.0,
            incomplete_rbbb_ms=90.0,
            complete_bbb_ms=100.0,
            complete_inclusive=False,
        ),
    ),
    (
        4.0,
        QrsLimits(
            ivcd_over_ms=80.0,
            incomplete_rbbb_ms=86.0,
            complete_bbb_ms=100.0,
            complete_inclusive=False,
        ),
    ),
    (
        0.0,
        QrsLimits(
            ivcd_over_ms=80.0,
            incomplete_rbbb_ms=86.0,
            complete_bbb_ms=90.0,
            complete_inclusive=False,
        ),
    ),
)


def qrs_limits(age_years: float | None) -> QrsLimits:
    """The conduction criteria's QRS limits at `age_years` (the adult ones when unknown)."""
    if age_years is None:
        return QRS_LIMITS_BY_AGE[0][1]
    return next(limits for least, limits in QRS_LIMITS_BY_AGE if age_years >= least)


@dataclass(frozen=True, kw_only=True)
class _Beat:
    """What the criteria read: the leads, global intervals, axis and the patient."""

    leads: Mapping[str, LeadMorphology]
    qrs_ms: float | None
    pr_ms: float | None
    axis: float | None
    sex: str | None
    age_years: float | None
    delta_wave: bool = False

    @property
    def limits(self) -> QrsLimits:
        return qrs_limits(self.age_years)

    def lead(self, name: str) -> LeadMorphology | None:
        return self.leads.get(name)

    def every(self, names: Sequence[str], test: Callable[[LeadMorphology], bool]) -> bool:
        """`test` holds for every lead of `names` present, and at least one is present."""
        present = [self.leads[n] for n in names if n in self.leads]
        return bool(present) and all(test(m) for m in present)

    def some(self, names: Sequence[str], test: Callable[[LeadMorphology], bool]) -> bool:
        """`test` holds for at least one lead of `names` present."""
        return any(test(self.leads[n]) for n in names if n in self.leads)


def _rsr_prime(m: LeadMorphology) -> bool:
    """rsr', rsR' or rSR' (an R' after an S, at least half the first R and 0.1 mV: not a
    terminal notch), or a wide notched R, as of V1–V2 in RBBB."""
    prime = m.r_prime_uv >= max(R_PRIME_MIN_UV, R_PRIME_SHARE * m.r_uv)
    return prime or (m.notched_r and m.r_uv > m.s_uv)


def _wide_terminal_s(m: LeadMorphology) -> bool:
    """An S wave longer than the R or than 40 ms, as of leads I and V6 in RBBB."""
    return m.s_ms > 0.0 and (m.s_ms > m.r_ms or m.s_ms > RBBB_TERMINAL_S_MS)


def _right_bundle_morphology(beat: _Beat) -> bool:
    """RBBB morphology: rsR' (or a notched R) in V1 or V2, wide S in I and V6, and an R-peak
    time over 50 ms in V1."""
    v1 = beat.lead("V1")
    return (
        beat.some(("V1", "V2"), _rsr_prime)
        and beat.every(("I", "V6"), _wide_terminal_s)
        and v1 is not None
        and v1.r_peak_time_ms is not None
        and v1.r_peak_time_ms > RBBB_V1_R_PEAK_TIME_MS
    )


def _no_q(m: LeadMorphology) -> bool:
    return m.q_uv == 0.0 and m.r_uv > 0.0


def _left_bundle_morphology(beat: _Beat) -> bool:
    """LBBB morphology: no q in I, V5 and V6; a broad R in I and V5–V6 (R-peak time over
    60 ms in V5 or V6); V1 mainly negative (QS or rS)."""
    return (
        beat.every(("I", "V5", "V6"), _no_q)
        and beat.some(
            ("V5", "V6"),
            lambda m: m.r_peak_time_ms is not None and m.r_peak_time_ms > LBBB_R_PEAK_TIME_MS,
        )
        and beat.every(("I",), lambda m: m.qrs_net_uv > 0)
        and beat.every(("V1",), lambda m: m.qrs_net_uv < 0 and m.r_prime_uv == 0.0)
    )


def _block_values(beat: _Beat, leads: Sequence[str]) -> tuple[str, str]:
    """The QRS duration and each lead's pattern and R-peak time, for a statement's text."""
    parts = []
    for name in leads:
        m = beat.lead(name)
        if m is None:
            continue
        rpt = f", R-peak time {m.r_peak_time_ms:.0f} ms" if m.r_peak_time_ms is not None else ""
        parts.append(f"{name} {m.pattern or '-'}{rpt}")
    values = f"QRS {beat.qrs_ms:.0f} ms; " + "; ".join(parts)
    return values, values.replace("R-peak time", "R 峰时间")


def _conduction(beat: _Beat) -> tuple[list[Finding], str | None]:
    """Bundle branch and fascicular blocks, IVCD and pre-excitation; and which of the
    conduction abnormalities that make ST-T changes secondary was found (``None``)."""
    qrs = beat.qrs_ms
    if qrs is None:
        return [], None
    if _pre_excited(beat):
        en, zh = _block_values(beat, ("V1", "V6"))
        pr = f"PR {beat.pr_ms:.0f} ms; "
        text = _finding(
            "PRE_EXCITATION",
            f"PR 缩短、可见 delta 波、QRS 增宽（{pr}{zh}），提示心室预激，请确认",
            f"Short PR, delta wave and wide QRS ({pr}{en}): consider ventricular "
            "pre-excitation; please confirm",
        )
        return [text], "PRE_EXCITATION"
    found = _bundle_branch(beat, qrs)
    if found is not None:
        return [found], found.code
    out = _fascicular(beat, qrs)
    limit = beat.limits.ivcd_over_ms
    if qrs > limit:
        out.insert(
            0,
            _finding(
                "IVCD",
                f"QRS 增宽（{qrs:.0f} ms，>{limit:.0f} ms），不符合束支阻滞标准，"
                "提示非特异性室内传导延迟，请确认",
                f"Wide QRS ({qrs:.0f} ms, > {limit:.0f} ms) without the criteria of a bundle "
                "branch block: consider nonspecific intraventricular conduction delay; "
                "please confirm",
            ),
        )
        return out, "IVCD" if beat.limits.complete(qrs) else None
    return out, None


def _pre_excited(beat: _Beat) -> bool:
    return (
        beat.pr_ms is not None
        and beat.pr_ms < PRE_EXCITATION_PR_MS
        and beat.qrs_ms is not None
        and beat.qrs_ms > PRE_EXCITATION_QRS_MS
        and beat.delta_wave
    )


def _bundle_branch(beat: _Beat, qrs: float) -> Finding | None:
    """Complete or incomplete RBBB, or LBBB, by QRS duration and morphology."""
    limits = beat.limits
    if limits.complete(qrs) and _left_bundle_morphology(beat):
        en, zh = _block_values(beat, ("I", "V1", "V5", "V6"))
        return _finding(
            "LBBB",
            f"符合完全性左束支阻滞（{zh}），请确认",
            f"Consistent with complete left bundle branch block ({en}); please confirm",
        )
    if qrs >= limits.incomplete_rbbb_ms and _right_bundle_morphology(beat):
        en, zh = _block_values(beat, ("V1", "I", "V6"))
        if limits.complete(qrs):
            return _finding(
                "RBBB",
                f"符合完全性右束支阻滞（{zh}），请确认",
                f"Consistent with complete right bundle branch block ({en}); please confirm",
            )
        return _finding(
            "INCOMPLETE_RBBB",
            f"符合不完全性右束支阻滞（{zh}），请确认",
            f"Consistent with incomplete right bundle branch block ({en}); please confirm",
        )
    return None


def _qr(m: LeadMorphology) -> bool:
    return m.q_uv > 0.0 and m.r_uv > m.s_uv


def _rs(m: LeadMorphology) -> bool:
    return m.q_uv == 0.0 and 0.0 < m.r_uv < m.s_uv


def _fascicular(beat: _Beat, qrs: float) -> list[Finding]:
    """Left anterior or posterior fascicular block (QRS short of a complete block's)."""
    axis = beat.axis
    if axis is None or beat.limits.complete(qrs):
        return []
    avl = beat.lead("aVL")
    if (
        LAFB_AXIS_DEG[0] <= axis <= LAFB_AXIS_DEG[1]
        and avl is not None
        and _qr(avl)
        and avl.r_peak_time_ms is not None
        and avl.r_peak_time_ms >= LAFB_AVL_R_PEAK_TIME_MS
    ):
        return [
            _finding(
                "LAFB",
                f"电轴 {axis:.0f}°，aVL 呈 qR 型（R 峰时间 {avl.r_peak_time_ms:.0f} ms），"
                "提示左前分支阻滞，请确认",
                f"Axis {axis:.0f}°, qR in aVL (R-peak time {avl.r_peak_time_ms:.0f} ms): "
                "consider left anterior fascicular block; please confirm",
            )
        ]
    if (
        LPFB_AXIS_DEG[0] < axis <= LPFB_AXIS_DEG[1]
        and beat.every(("I", "aVL"), _rs)
        and beat.every(("III", "aVF"), _qr)
    ):
        return [
            _finding(
                "LPFB",
                f"电轴 {axis:.0f}°，I、aVL 呈 rS 型，III、aVF 呈 qR 型，提示左后分支阻滞"
                "（需除外右心室肥厚等电轴右偏原因），请确认",
                f"Axis {axis:.0f}°, rS in I and aVL, qR in III and aVF: consider left "
                "posterior fascicular block (other causes of right axis deviation excluded); "
                "please confirm",
            )
        ]
    return []


def _depth(m: LeadMorphology | None) -> float:
    """The deepest negative wave of a lead (S, or Q of a QS complex), µV."""
    if m is None:
        return 0.0
    return m.s_uv if m.r_uv > 0.0 else m.q_uv


def _height(m: LeadMorphology | None) -> float:
    return 0.0 if m is None else max(m.r_uv, m.r_prime_uv)


def _lvh(beat: _Beat) -> Finding | None:
    """LVH by voltage: Sokolow–Lyon (SV1 + RV5/V6 >= 3.5 mV, age 40 or over) or Cornell
    (RaVL + SV3 > 2.8 mV men, > 2.0 mV women)."""
    met_en: list[str] = []
    met_zh: list[str] = []
    if all(name in beat.leads for name in ("V1", "V5", "V6")) and (
        beat.age_years is None or beat.age_years >= SOKOLOW_LYON_MIN_AGE
    ):
        sokolow = _depth(beat.lead("V1")) + max(_height(beat.lead("V5")), _height(beat.lead("V6")))
        if sokolow >= SOKOLOW_LYON_UV:
            met_en.append(f"Sokolow-Lyon SV1 + RV5/V6 = {_mv(sokolow)} (>= 3.5 mV)")
            met_zh.append(f"Sokolow-Lyon SV1+RV5/V6 = {_mv(sokolow)}（≥3.5 mV）")
    if "aVL" in beat.leads and "V3" in beat.leads:
        limit = CORNELL_FEMALE_UV if beat.sex == "F" else CORNELL_MALE_UV
        cornell = _height(beat.lead("aVL")) + _depth(beat.lead("V3"))
        if cornell > limit:
            met_en.append(f"Cornell RaVL + SV3 = {_mv(cornell)} (> {_mv(limit)})")
            met_zh.append(f"Cornell RaVL+SV3 = {_mv(cornell)}（>{_mv(limit)}）")
    if not met_en:
        return None
    return _finding(
        "LVH",
        f"左心室高电压（{'；'.join(met_zh)}），提示左心室肥厚可能，请结合临床确认",
        f"Left ventricular voltage criteria met ({'; '.join(met_en)}): consider left "
        "ventricular hypertrophy; please confirm",
    )


def _rvh(beat: _Beat) -> Finding | None:
    """RVH: R/S in V1 >= 1 with R in V1 >= 0.7 mV, and right axis deviation."""
    v1 = beat.lead("V1")
    if v1 is None or beat.axis is None or not beat.axis > RVH_AXIS_DEG:
        return None
    if v1.r_uv < RVH_R_V1_UV or v1.r_uv < v1.s_uv:
        return None
    ratio = f"{v1.r_uv / v1.s_uv:.1f}" if v1.s_uv else "-"
    values = f"R V1 {_mv(v1.r_uv)}, R/S V1 {ratio}, axis {beat.axis:.0f}°"
    return _finding(
        "RVH",
        f"V1 R 波增高、电轴右偏（{values.replace('axis', '电轴')}），提示右心室肥厚可能，请确认",
        f"Tall R in V1 with right axis deviation ({values}): consider right ventricular "
        "hypertrophy; please confirm",
    )


def _low_voltage(beat: _Beat) -> Finding | None:
    """QRS under 0.5 mV (peak to peak) in every limb lead, or under 1.0 mV in every
    precordial lead."""
    where_en: list[str] = []
    where_zh: list[str] = []
    for names, limit, en, zh in (
        (LIMB_LEADS, LOW_VOLTAGE_LIMB_UV, "limb", "肢体"),
        (PRECORDIAL_LEADS, LOW_VOLTAGE_PRECORDIAL_UV, "precordial", "胸"),
    ):
        if not all(name in beat.leads for name in names):
            continue
        largest = max(beat.leads[name].qrs_peak_to_peak_uv for name in names)
        if largest < limit:
            where_en.append(f"{en} leads (largest QRS {_mv(largest)} < {_mv(limit)})")
            where_zh.append(f"{zh}导联（最大 QRS {_mv(largest)}，<{_mv(limit)}）")
    if not where_en:
        return None
    return _finding(
        "LOW_VOLTAGE",
        f"低电压：{'；'.join(where_zh)}，请确认",
        f"Low QRS voltage in the {' and '.join(where_en)}; please confirm",
    )


def _pathological_q(m: LeadMorphology) -> bool:
    """Q of 40 ms or more, or at least a quarter of the R (and 0.1 mV deep); a QS of 40 ms."""
    if m.q_uv < PATHOLOGICAL_Q_MIN_UV:
        return False
    return m.q_ms >= PATHOLOGICAL_Q_MS or (m.r_uv > 0.0 and m.q_uv >= PATHOLOGICAL_Q_SHARE * m.r_uv)


def _by_territory(leads: Sequence[str]) -> dict[str, list[str]]:
    """The leads of `leads` forming contiguous pairs (without V1) within each territory."""
    out: dict[str, list[str]] = {}
    for territory, names in TERRITORIES.items():
        inside = _contiguous([n for n in leads if n in names], PAIRS_WITHOUT_V1)
        if inside:
            out[territory] = inside
    return out


def _q_waves(beat: _Beat) -> list[Finding]:
    """Pathological Q waves in two contiguous leads, one statement per territory."""
    leads = [name for name, m in beat.leads.items() if _pathological_q(m)]
    out = []
    for territory, names in _by_territory(leads).items():
        zh_t, en_t = TERRITORY_WORDS[territory]
        values = "; ".join(
            f"{n} Q {beat.leads[n].q_ms:.0f} ms {_mv(beat.leads[n].q_uv)}" for n in names
        )
        out.append(
            _finding(
                f"Q_WAVES_{territory}",
                f"{zh_t}导联病理性 Q 波（{values}），提示陈旧性心肌梗死可能，请结合临床确认",
                f"Pathological Q waves in the {en_t} leads ({values}): consider prior "
                "myocardial infarction; please confirm",
            )
        )
    return out


#: Leads whose ST-T changes are secondary to each abnormality of depolarisation.
SECONDARY_LEADS: dict[str, tuple[str, ...]] = {
    "RBBB": ("V1", "V2", "V3"),
    "INCOMPLETE_RBBB": ("V1", "V2", "V3"),
    "LBBB": LIMB_LEADS + PRECORDIAL_LEADS,
    "IVCD": LIMB_LEADS + PRECORDIAL_LEADS,
    "PRE_EXCITATION": LIMB_LEADS + PRECORDIAL_LEADS,
    "LVH": ("I", "aVL", "V4", "V5", "V6"),
}
CAUSE_WORDS = {
    "RBBB": ("右束支阻滞", "right bundle branch block"),
    "INCOMPLETE_RBBB": ("右束支阻滞", "right bundle branch block"),
    "LBBB": ("左束支阻滞", "left bundle branch block"),
    "IVCD": ("室内传导延迟", "intraventricular conduction delay"),
    "PRE_EXCITATION": ("心室预激", "ventricular pre-excitation"),
    "LVH": ("左心室肥厚（劳损型）", "left ventricular hypertrophy (strain)"),
}


def _st_depressed(m: LeadMorphology) -> bool:
    """Horizontal or downsloping ST depression of 0.05 mV at J and J + 60 ms."""
    return (
        m.st_j_uv <= -ST_DEPRESSION_UV
        and m.st_j60_uv <= -ST_DEPRESSION_UV
        and m.st_j60_uv - m.st_j_uv <= ST_HORIZONTAL_RISE_UV
    )


def _t_inverted(name: str, m: LeadMorphology) -> bool:
    """T at -0.1 mV or lower; in a limb lead only behind a mainly positive QRS (a negative
    T after a negative QRS in III, aVL or aVF is normal)."""
    if m.t_uv is None or m.t_uv > -T_INVERSION_UV:
        return False
    return name not in LIMB_LEADS or m.qrs_net_uv > 0


def _st_t(beat: _Beat, causes: Sequence[str]) -> list[Finding]:
    """ST depression and T inversion in contiguous leads, those a depolarisation
    abnormality explains stated as secondary to it."""
    explained = {lead for cause in causes for lead in SECONDARY_LEADS.get(cause, ())}
    depressed = [n for n, m in beat.leads.items() if _st_depressed(m)]
    inverted = [n for n, m in beat.leads.items() if _t_inverted(n, m)]
    out: list[Finding] = []
    primary_st = _contiguous([n for n in depressed if n not in explained])
    if primary_st:
        values = "; ".join(f"{n} {_mv(beat.leads[n].st_j60_uv)}" for n in primary_st)
        out.append(
            _finding(
                "ST_DEPRESSION",
                f"相邻导联 ST 段水平型或下斜型压低（J+60 ms：{values}），提示心肌缺血可能，请确认",
                f"Horizontal or downsloping ST depression in contiguous leads (J+60 ms: "
                f"{values}): consider myocardial ischaemia; please confirm",
            )
        )
    primary_t = _by_territory([n for n in inverted if n not in explained])
    if primary_t:
        words_zh = "、".join(TERRITORY_WORDS[t][0] for t in primary_t)
        words_en = ", ".join(TERRITORY_WORDS[t][1] for t in primary_t)
        names = [n for leads in primary_t.values() for n in leads]
        values = "; ".join(f"{n} {_mv(beat.leads[n].t_uv or 0.0)}" for n in names)
        out.append(
            _finding(
                "T_WAVE_INVERSION",
                f"{words_zh}导联 T 波倒置（{values}），请结合临床确认",
                f"T-wave inversion in the {words_en} leads ({values}); please confirm",
            )
        )
    secondary = [n for n in dict.fromkeys(depressed + inverted) if n in explained]
    if secondary and causes:
        zh = "、".join(dict.fromkeys(CAUSE_WORDS[c][0] for c in causes if c in CAUSE_WORDS))
        en = ", ".join(dict.fromkeys(CAUSE_WORDS[c][1] for c in causes if c in CAUSE_WORDS))
        listed = ", ".join(secondary)
        out.append(
            _finding(
                "SECONDARY_ST_T_CHANGES",
                f"ST-T 改变（{listed}），考虑继发于{zh}，请确认",
                f"ST-T changes ({listed}), consistent with changes secondary to {en}; "
                "please confirm",
            )
        )
    return out


def _stemi_leads(beat: _Beat) -> list[str]:
    """Leads meeting the Fourth Universal Definition's ST elevation at the J point in
    contiguous pairs (still elevated by half the threshold 60 ms later)."""
    at_j = {
        name: m.st_j_uv
        for name, m in beat.leads.items()
        if m.st_j60_uv >= 0.5 * _st_threshold_uv(name, beat.sex, beat.age_years)
    }
    return meets_stemi_criteria(at_j, sex=beat.sex, age_years=beat.age_years)


def _sgarbossa(beat: _Beat) -> list[str]:
    """The Smith-modified Sgarbossa criteria met (English), each with its lead and values."""
    met: list[str] = []
    for name, m in beat.leads.items():
        if name == "aVR":
            continue
        st = m.st_j_uv
        if m.qrs_net_uv > 0 and st >= SGARBOSSA_CONCORDANT_UV and m.st_j60_uv >= 0.5 * st:
            met.append(f"concordant ST elevation {name} {_mv(st)}")
        elif m.qrs_net_uv < 0 and name in ("V1", "V2", "V3") and st <= -SGARBOSSA_CONCORDANT_UV:
            met.append(f"concordant ST depression {name} {_mv(st)}")
        elif m.qrs_net_uv < 0 and st >= SGARBOSSA_CONCORDANT_UV and _depth(m) > 0:
            ratio = st / -_depth(m)
            if ratio <= SMITH_RATIO:
                met.append(f"discordant ST elevation {name} {_mv(st)}, ST/S {ratio:.2f}")
    return met


def _stemi_finding(beat: _Beat, leads: Sequence[str]) -> Finding:
    values = ", ".join(f"{n} {_mv(beat.leads[n].st_j_uv)}" for n in leads)
    return _finding(
        "ST_ELEVATION_STEMI_CRITERIA",
        f"相邻导联 J 点 ST 段抬高达到 STEMI 标准（{values}），疑似急性 ST 段抬高型心肌梗死，"
        "请立即判读",
        f"ST elevation at the J point meeting STEMI criteria in contiguous leads ({values}): "
        "suspected acute STEMI, read immediately",
    )


def _sgarbossa_finding(met: Sequence[str], behind: tuple[str, str]) -> Finding:
    zh, en = behind
    listed = "; ".join(met)
    return _finding(
        "ST_ELEVATION_STEMI_CRITERIA",
        f"{zh}时符合 Sgarbossa 标准（Smith 修订）：{listed}，疑似急性心肌梗死，请立即判读",
        f"{en[0].upper()}{en[1:]} with Sgarbossa criteria (Smith-modified) met: {listed}: "
        "suspected acute myocardial infarction, read immediately",
    )


def _wide_complex_st(
    beat: _Beat, behind: tuple[str, str], paced: bool
) -> tuple[list[Finding], bool]:
    """ST behind a wide paced complex, LBBB or another abnormal depolarisation: the STEMI
    criterion does not apply; the Smith-modified Sgarbossa criteria do."""
    met = _sgarbossa(beat)
    if met:
        return [_sgarbossa_finding(met, behind)], True
    leads = _stemi_leads(beat)
    if not leads or not paced:
        return [], False
    names = ", ".join(leads)
    paced_finding = _finding(
        "ST_ELEVATION_PACED",
        f"起搏心律中 ST 段抬高（{names}）：常规 STEMI 标准不适用，Sgarbossa 标准（Smith 修订）"
        "未满足，请人工判读",
        f"ST elevation in a paced rhythm ({names}): the standard STEMI criteria do not apply "
        "and the Sgarbossa criteria (Smith-modified) are not met; please read the ST segments",
    )
    return [paced_finding], False


def _short_qtc(qtc: float | None) -> Finding | None:
    if qtc is None or qtc > SHORT_QTC_MS:
        return None
    return _finding(
        "SHORT_QTC",
        f"QTc 缩短（Bazett {qtc:.0f} ms，≤{SHORT_QTC_MS:.0f} ms），请确认",
        f"Short QTc (Bazett {qtc:.0f} ms, <= {SHORT_QTC_MS:.0f} ms); please confirm",
    )


#: Wide-complex causes behind which ST elevation is read by the Sgarbossa criteria.
SGARBOSSA_CAUSES = ("LBBB", "IVCD", "PRE_EXCITATION")


def interpret_morphology(
    morphology: Morphology,
    measurements: Mapping[str, float | None],
    *,
    sex: str | None = None,
    age_years: float | None = None,
    paced: bool = False,
) -> tuple[list[Finding], bool]:
    """Conduction, hypertrophy, Q, ST and T statements from the median beat's leads.

    Parameters
    ----------
    morphology
        From :func:`measure_morphology`.
    measurements
        ``qrs_ms``, ``pr_ms``, ``qrs_axis_deg``, ``qtc_bazett_ms`` (``None`` if unmeasured).
    sex, age_years
        ``"M"``, ``"F"`` or ``None``, and age: for the ST-elevation, Cornell and
        Sokolow–Lyon criteria.
    paced
        The rhythm is ventricular-paced: only the ST elevation is read, by the Sgarbossa
        criteria behind a wide complex and by the standard criterion behind a narrow one.

    Returns
    -------
    findings : list of Finding
        In reading order: conduction, hypertrophy and voltage, Q waves, ST elevation,
        ST depression, T inversion, secondary ST-T changes, short QTc.
    suspected_stemi : bool
        The STEMI criterion (or behind LBBB, a wide QRS or a wide paced complex the
        Smith-modified Sgarbossa criteria) is met: the study is raised to the STEMI priority.
    """
    beat = _Beat(
        leads=morphology.leads,
        qrs_ms=measurements.get("qrs_ms"),
        pr_ms=measurements.get("pr_ms"),
        axis=measurements.get("qrs_axis_deg"),
        sex=sex,
        age_years=age_years,
        delta_wave=morphology.delta_wave,
    )
    wide = beat.qrs_ms is not None and beat.qrs_ms >= COMPLETE_BBB_MS
    if paced:
        if wide:
            return _wide_complex_st(beat, ("起搏心律", "paced rhythm"), paced=True)
        leads = _stemi_leads(beat)
        return ([_stemi_finding(beat, leads)], True) if leads else ([], False)
    out, cause = _conduction(beat)
    causes = [cause] if cause is not None else []
    if cause not in ("LBBB", "PRE_EXCITATION"):
        lvh = _lvh(beat)
        if lvh is not None:
            out.append(lvh)
            causes.append("LVH")
    if cause not in ("RBBB", "INCOMPLETE_RBBB", "PRE_EXCITATION"):
        out.extend(f for f in (_rvh(beat),) if f is not None)
    out.extend(f for f in (_low_voltage(beat),) if f is not None)
    if cause not in SGARBOSSA_CAUSES:
        out.extend(_q_waves(beat))
    suspected = False
    if cause in SGARBOSSA_CAUSES:
        found, suspected = _wide_complex_st(beat, CAUSE_WORDS[cause], paced=False)
        out.extend(found)
    elif stemi := _stemi_leads(beat):
        out.append(_stemi_finding(beat, stemi))
        suspected = True
    out.extend(_st_t(beat, causes))
    out.extend(f for f in (_short_qtc(measurements.get("qtc_bazett_ms")),) if f is not None)
    return out, suspected
