"""Rhythm and morphology statements, worded for a reader to confirm.

Every statement has a stable code (stored, searched and counted by the service) and its text
in Chinese and English. The wording proposes ("suggestive of", "consider", "please confirm");
the reader makes the diagnosis.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

from ecg.measure import qt_adjusted_for_qrs_ms
from ecg.morphology import (
    ST_ELEVATION_PAIRS,
    Finding,
    Morphology,
    interpret_morphology,
    meets_stemi_criteria,
    qrs_limits,
)
from ecg.rhythm import (
    AF_P_SHARE,
    RhythmFindings,
    RhythmText,
    describe_rhythm,
    first_degree_av_block,
)

__all__ = [
    "NOT_ABNORMAL",
    "RETIRED",
    "ST_ELEVATION_PAIRS",
    "Pacing",
    "Statement",
    "StatementCode",
    "compose_statements",
    "meets_stemi_criteria",
]


class StatementCode(Enum):
    """Stable codes of the automatic statements (the values are stored; never rename)."""

    SINUS_RHYTHM = "SINUS_RHYTHM"
    SINUS_BRADYCARDIA = "SINUS_BRADYCARDIA"
    SINUS_TACHYCARDIA = "SINUS_TACHYCARDIA"
    IRREGULAR_RHYTHM_POSSIBLE_AF = "IRREGULAR_RHYTHM_POSSIBLE_AF"
    PAUSE = "PAUSE"
    PREMATURE_BEATS = "PREMATURE_BEATS"
    LONG_PR = "LONG_PR"
    SHORT_PR = "SHORT_PR"
    WIDE_QRS = "WIDE_QRS"
    LONG_QTC = "LONG_QTC"
    LEFT_AXIS_DEVIATION = "LEFT_AXIS_DEVIATION"
    RIGHT_AXIS_DEVIATION = "RIGHT_AXIS_DEVIATION"
    ST_ELEVATION_STEMI_CRITERIA = "ST_ELEVATION_STEMI_CRITERIA"
    LOW_SAMPLING_RATE = "LOW_SAMPLING_RATE"
    POOR_SIGNAL_QUALITY = "POOR_SIGNAL_QUALITY"
    LEAD_OFF = "LEAD_OFF"
    NO_QRS_DETECTED = "NO_QRS_DETECTED"
    VENTRICULAR_PACED_RHYTHM = "VENTRICULAR_PACED_RHYTHM"
    ATRIAL_PACED_RHYTHM = "ATRIAL_PACED_RHYTHM"
    INTERMITTENT_PACING = "INTERMITTENT_PACING"
    ST_ELEVATION_PACED = "ST_ELEVATION_PACED"
    # Conduction, hypertrophy, Q, ST and T from the median beat's leads (ecg.morphology).
    RBBB = "RBBB"
    INCOMPLETE_RBBB = "INCOMPLETE_RBBB"
    LBBB = "LBBB"
    LAFB = "LAFB"
    LPFB = "LPFB"
    IVCD = "IVCD"
    PRE_EXCITATION = "PRE_EXCITATION"
    LVH = "LVH"
    RVH = "RVH"
    LOW_VOLTAGE = "LOW_VOLTAGE"
    Q_WAVES_ANTERIOR = "Q_WAVES_ANTERIOR"
    Q_WAVES_LATERAL = "Q_WAVES_LATERAL"
    Q_WAVES_INFERIOR = "Q_WAVES_INFERIOR"
    ST_DEPRESSION = "ST_DEPRESSION"
    T_WAVE_INVERSION = "T_WAVE_INVERSION"
    SECONDARY_ST_T_CHANGES = "SECONDARY_ST_T_CHANGES"
    SHORT_QTC = "SHORT_QTC"
    # Rhythm, ectopy and AV conduction (ecg.rhythm). IRREGULAR_RHYTHM_POSSIBLE_AF,
    # PREMATURE_BEATS and LONG_PR are no longer emitted (ATRIAL_FIBRILLATION, PAC/PVC and
    # FIRST_DEGREE_AV_BLOCK replace them); they stay for the rows that hold them.
    NORMAL_ECG = "NORMAL_ECG"
    SINUS_ARRHYTHMIA = "SINUS_ARRHYTHMIA"
    ATRIAL_FIBRILLATION = "ATRIAL_FIBRILLATION"
    ATRIAL_TACHYCARDIA = "ATRIAL_TACHYCARDIA"
    SUPRAVENTRICULAR_TACHYCARDIA = "SUPRAVENTRICULAR_TACHYCARDIA"
    JUNCTIONAL_RHYTHM = "JUNCTIONAL_RHYTHM"
    VENTRICULAR_RHYTHM = "VENTRICULAR_RHYTHM"
    PAC = "PAC"
    PVC = "PVC"
    FIRST_DEGREE_AV_BLOCK = "FIRST_DEGREE_AV_BLOCK"
    SECOND_DEGREE_AV_BLOCK_MOBITZ_I = "SECOND_DEGREE_AV_BLOCK_MOBITZ_I"
    SECOND_DEGREE_AV_BLOCK_MOBITZ_II = "SECOND_DEGREE_AV_BLOCK_MOBITZ_II"
    AV_BLOCK_2_TO_1 = "AV_BLOCK_2_TO_1"
    THIRD_DEGREE_AV_BLOCK = "THIRD_DEGREE_AV_BLOCK"
    ATRIAL_FLUTTER = "ATRIAL_FLUTTER"

    @property
    def abnormal(self) -> bool:
        """Whether the finding is abnormal: it rules out NORMAL_ECG. Every code is, unless
        :data:`NOT_ABNORMAL` names it (a new code counts as abnormal until listed there)."""
        return self not in NOT_ABNORMAL


#: Codes compatible with a normal ECG: the normal rhythm and its normal variant, the
#: NORMAL_ECG statement itself, and notes on the recording's quality that do not hide leads.
NOT_ABNORMAL: frozenset[StatementCode] = frozenset(
    {
        StatementCode.NORMAL_ECG,
        StatementCode.SINUS_RHYTHM,
        StatementCode.SINUS_ARRHYTHMIA,
        StatementCode.LOW_SAMPLING_RATE,
        StatementCode.POOR_SIGNAL_QUALITY,
    }
)
#: Codes kept for stored rows and no longer emitted.
RETIRED: frozenset[StatementCode] = frozenset(
    {
        StatementCode.IRREGULAR_RHYTHM_POSSIBLE_AF,
        StatementCode.PREMATURE_BEATS,
        StatementCode.LONG_PR,
    }
)


@dataclass(frozen=True, kw_only=True)
class Statement:
    """One automatic statement: stable code plus Chinese and English text."""

    code: StatementCode
    text_zh: str
    text_en: str

    def to_dict(self) -> dict[str, str]:
        """JSON-ready form: ``code``, ``text_zh``, ``text_en``."""
        return {"code": self.code.value, "text_zh": self.text_zh, "text_en": self.text_en}


@dataclass(frozen=True, kw_only=True)
class Pacing:
    """Pacemaker stimuli before the beats: of `beats` beats, how many had a stimulus just
    before the QRS onset (`ventricular`) or just before the P wave (`atrial`)."""

    beats: int
    ventricular: int
    atrial: int

    def share(self, count: int) -> float:
        return count / self.beats if self.beats else 0.0


#: A rhythm is called paced when at least this share of its beats follow a stimulus.
PACED_SHARE = 0.5

#: Heart-rate limits (bpm) for sinus bradycardia and tachycardia.
BRADYCARDIA_BPM = 60.0
TACHYCARDIA_BPM = 100.0
PAUSE_MS = 2000.0
LONG_PR_MS = 200.0
SHORT_PR_MS = 120.0
WIDE_QRS_MS = 120.0
#: Long QTc: at least these (AHA/ACCF/HRS), on the linear Framingham correction the
#: recommendations prefer (Bazett's over-corrects at fast rates), Bazett's shown beside it.
LONG_QTC_MALE_MS = 450.0
LONG_QTC_FEMALE_MS = 460.0
LEFT_AXIS_DEG = -30.0
RIGHT_AXIS_DEG = 90.0


def _make(code: StatementCode, zh: str, en: str) -> Statement:
    return Statement(code=code, text_zh=zh, text_en=en)


def compose_statements(
    measurements: Mapping[str, float | None],
    *,
    st_deviation_uv: Mapping[str, float],
    p_wave_fraction: float,
    rr_irregularity: float | None,
    n_premature: int,
    sampling_rate_hz: float,
    leads_off: list[str],
    noisy_leads: list[str],
    sex: str | None = None,
    age_years: float | None = None,
    pacing: Pacing | None = None,
    morphology: Morphology | None = None,
    rhythm: RhythmFindings | None = None,
) -> tuple[list[Statement], bool]:
    """Turn measurements and rhythm features into statements for the reader to confirm.

    Parameters
    ----------
    measurements
        Canonical measurement keys (``heart_rate_bpm``, ``pr_ms``, ``qrs_ms``,
        ``qtc_bazett_ms``, ``qrs_axis_deg``, ``rr_max_ms`` …); ``None`` where unmeasured.
    st_deviation_uv
        ST deviation at J + 60 ms by lead, microvolts.
    p_wave_fraction
        Share of beats (0–1) with a P wave found before the QRS (used without `rhythm`).
    rr_irregularity
        Median absolute successive RR difference over the median RR (0 for a perfectly
        regular rhythm), ``None`` when there are too few beats (used without `rhythm`).
    n_premature
        Number of premature beats; not stated (their origin is unknown): the beat-by-beat
        `rhythm` names PACs and PVCs.
    sampling_rate_hz
        Of the record (a warning below 250 Hz).
    leads_off, noisy_leads
        Lead names that are flat (lead off) or too noisy to measure.
    sex, age_years
        Patient sex (``"M"``, ``"F"``, ``None``) and age, for the QTc and ST thresholds.
    pacing
        Pacemaker stimuli found before the beats. A ventricular-paced rhythm is named as such,
        and its paced complexes are not interpreted by the criteria for native ones (PR, QRS
        width, axis, QTc), which do not apply to them; nor is the STEMI criterion when the
        complexes are wide (behind narrow ones the stimuli may be artefact: it still holds).
    morphology
        Per-lead measurements of the median beat (:func:`ecg.morphology.measure_morphology`):
        conduction blocks, hypertrophy, Q waves, ST and T are read from them, and the ST
        elevation at the J point (by the Sgarbossa criteria behind LBBB, a wide QRS or a
        wide paced complex) instead of `st_deviation_uv`.
    rhythm
        Beat-by-beat rhythm features (:func:`ecg.rhythm.assess_rhythm`): the rhythm, ectopy
        and AV conduction follow its criteria (see :mod:`ecg.rhythm`).

    Returns
    -------
    statements : list of Statement
        In reading order: quality warnings, NORMAL_ECG (sinus rhythm at a normal rate and no
        abnormal statement), rhythm, ectopy, AV conduction, conduction, axis, ST.
    suspected_stemi : bool
        ST elevation meets the criterion in two contiguous leads (of a rhythm that is not
        ventricular-paced); with `morphology`, as :func:`ecg.morphology.interpret_morphology`
        decides it.
    """
    out = _quality_statements(sampling_rate_hz, leads_off, noisy_leads)
    rate = measurements.get("heart_rate_bpm")
    if rate is None:
        out.append(
            _make(
                StatementCode.NO_QRS_DETECTED,
                "未检出 QRS 波群，无法自动分析，请人工判读",
                "No QRS complexes detected: automatic analysis not possible, please read manually",
            )
        )
        return out, False
    paced_v = pacing is not None and pacing.share(pacing.ventricular) >= PACED_SHARE
    paced_a = pacing is not None and pacing.share(pacing.atrial) >= PACED_SHARE
    if rhythm is None:
        rhythm = _rhythm_from_summary(p_wave_fraction, rr_irregularity, measurements)
    out.extend(_rhythm_statements(rate, measurements, rhythm, pacing, paced_v, paced_a))
    if not paced_v:
        out.extend(_conduction_statements(measurements, sex, age_years))
    if morphology is not None:
        out, stemi = _morphology_statements(out, morphology, measurements, sex, age_years, paced_v)
        return _with_normal_ecg(out), stemi
    stemi_leads = meets_stemi_criteria(st_deviation_uv, sex=sex, age_years=age_years)
    suspected_stemi = False
    if stemi_leads:
        st_statement, suspected_stemi = _st_elevation_statement(
            stemi_leads, measurements.get("qrs_ms"), paced_v
        )
        out.append(st_statement)
    return _with_normal_ecg(out), suspected_stemi


def _rhythm_from_summary(
    p_wave_fraction: float,
    rr_irregularity: float | None,
    measurements: Mapping[str, float | None],
) -> RhythmFindings:
    """Rhythm findings from the share of beats with a P wave and the RR irregularity alone
    (no beat-by-beat features: no ectopy is stated)."""
    return RhythmFindings(
        kinds=(),
        rr_ms=(),
        irregularity=rr_irregularity,
        p_share=p_wave_fraction,
        pr_ms=measurements.get("pr_ms"),
        qrs_ms=measurements.get("qrs_ms"),
        p_axis_deg=measurements.get("p_axis_deg"),
        median_p_wave=p_wave_fraction >= AF_P_SHARE,
    )


def _rhythm_statements(
    rate: float,
    measurements: Mapping[str, float | None],
    rhythm: RhythmFindings,
    pacing: Pacing | None,
    paced_v: bool,
    paced_a: bool,
) -> list[Statement]:
    """The rhythm (paced, or from :func:`ecg.rhythm.describe_rhythm`), pacing and pauses."""
    texts: list[RhythmText] = []
    out: list[Statement] = []
    if pacing is not None and paced_v:
        out.append(_ventricular_paced_statement(rate, pacing, paced_a, rhythm.p_share))
    elif pacing is not None and paced_a:
        out.append(
            _make(
                StatementCode.ATRIAL_PACED_RHYTHM,
                f"考虑心房起搏心律（心率 {rate:.0f} 次/分），请确认起搏器功能",
                f"Consistent with atrial-paced rhythm (rate {rate:.0f} bpm); please confirm "
                "pacemaker function",
            )
        )
        texts = first_degree_av_block(measurements.get("pr_ms"))
    else:
        texts = describe_rhythm(rhythm, rate, measurements.get("pr_ms"))
    out.extend(_make(StatementCode(t.code), t.zh, t.en) for t in texts)
    found = [
        _intermittent_pacing_statement(pacing, paced_v or paced_a),
        _pause_statement(measurements.get("rr_max_ms")),
    ]
    out.extend(statement for statement in found if statement is not None)
    return out


def _with_normal_ecg(statements: list[Statement]) -> list[Statement]:
    """NORMAL_ECG before the rhythm when the rhythm is sinus at a normal rate and no
    statement is abnormal (:attr:`StatementCode.abnormal`)."""
    codes = [s.code for s in statements]
    if StatementCode.SINUS_RHYTHM not in codes or any(code.abnormal for code in codes):
        return statements
    at = codes.index(StatementCode.SINUS_RHYTHM)
    normal = _make(
        StatementCode.NORMAL_ECG,
        "窦性心律，心率正常，未见其他异常：考虑正常心电图，请确认",
        "Sinus rhythm at a normal rate and no abnormal finding: normal ECG; please confirm",
    )
    return [*statements[:at], normal, *statements[at:]]


#: Named conduction abnormalities that replace the plain wide-QRS statement.
_NAMED_WIDE_QRS = frozenset({"RBBB", "LBBB", "IVCD", "PRE_EXCITATION", "INCOMPLETE_RBBB"})


def _morphology_statements(
    out: list[Statement],
    morphology: Morphology,
    measurements: Mapping[str, float | None],
    sex: str | None,
    age_years: float | None,
    paced_v: bool,
) -> tuple[list[Statement], bool]:
    """`out` followed by the morphology findings (without WIDE_QRS once a block is named)."""
    findings: list[Finding]
    findings, suspected_stemi = interpret_morphology(
        morphology, measurements, sex=sex, age_years=age_years, paced=paced_v
    )
    if any(f.code in _NAMED_WIDE_QRS for f in findings):
        out = [s for s in out if s.code is not StatementCode.WIDE_QRS]
    out.extend(_make(StatementCode(f.code), f.text_zh, f.text_en) for f in findings)
    return out, suspected_stemi


def _quality_statements(
    sampling_rate_hz: float, leads_off: list[str], noisy_leads: list[str]
) -> list[Statement]:
    """Warnings that the recording limits the analysis: low rate, leads off, noisy leads."""
    out: list[Statement] = []
    if sampling_rate_hz < 250:
        out.append(
            _make(
                StatementCode.LOW_SAMPLING_RATE,
                f"采样率低（{sampling_rate_hz:g} Hz），间期测量精度下降，请人工核对",
                f"Low sampling rate ({sampling_rate_hz:g} Hz): interval measurements are less "
                "precise, please check them",
            )
        )
    if leads_off:
        names = ", ".join(leads_off)
        out.append(
            _make(
                StatementCode.LEAD_OFF,
                f"导联无信号（可能脱落）：{names}，请检查电极",
                f"No signal in lead(s) {names} (lead off?): please check the electrodes",
            )
        )
    if noisy_leads:
        names = ", ".join(noisy_leads)
        out.append(
            _make(
                StatementCode.POOR_SIGNAL_QUALITY,
                f"信号干扰较大：{names}，自动分析可能不准确",
                f"Poor signal quality (noise) in lead(s) {names}: automatic analysis may be "
                "inaccurate",
            )
        )
    return out


def _ventricular_paced_statement(
    rate: float, pacing: Pacing, paced_a: bool, p_wave_fraction: float
) -> Statement:
    """A ventricular-paced rhythm: AV sequential, atrial-sensed or ventricular only."""
    if paced_a:
        zh, en = "房室顺序起搏心律", "AV sequential (dual-chamber) paced rhythm"
    elif p_wave_fraction >= 0.8:
        zh, en = "心房感知、心室起搏心律", "atrial-sensed ventricular-paced rhythm"
    else:
        zh, en = "心室起搏心律", "ventricular-paced rhythm"
    n, m = pacing.ventricular, pacing.beats
    return _make(
        StatementCode.VENTRICULAR_PACED_RHYTHM,
        f"考虑{zh}（心率 {rate:.0f} 次/分，{m} 个心搏中 {n} 个前见起搏信号），"
        "起搏 QRS 波群的形态、电轴、QT 及 ST 段不按常规标准自动判读，请确认起搏器功能",
        f"Consistent with {en} (rate {rate:.0f} bpm; pacemaker stimuli before {n} of "
        f"{m} beats): the paced complexes' width, axis, QT and ST are not interpreted "
        "by the criteria for native beats; please confirm pacemaker function",
    )


def _intermittent_pacing_statement(pacing: Pacing | None, paced: bool) -> Statement | None:
    """Stimuli before some beats of a rhythm not called paced (`paced` is False)."""
    if pacing is None or paced or not pacing.ventricular + pacing.atrial:
        return None
    n = pacing.ventricular + pacing.atrial
    return _make(
        StatementCode.INTERMITTENT_PACING,
        f"{pacing.beats} 个心搏中 {n} 个前见起搏信号，提示间歇起搏，请确认",
        f"Pacemaker stimuli before {n} of {pacing.beats} beats: intermittent pacing; "
        "please confirm",
    )


def _pause_statement(rr_max_ms: float | None) -> Statement | None:
    """A pause when the longest RR interval is over :data:`PAUSE_MS`."""
    if rr_max_ms is None or not rr_max_ms > PAUSE_MS:
        return None
    return _make(
        StatementCode.PAUSE,
        f"可见长间歇（最长 RR {rr_max_ms / 1000:.1f} 秒），请确认",
        f"Pause present (longest RR {rr_max_ms / 1000:.1f} s); please confirm",
    )


def _st_elevation_statement(
    stemi_leads: list[str], qrs_ms: float | None, paced_v: bool
) -> tuple[Statement, bool]:
    """ST elevation meeting the criterion in `stemi_leads`, and whether it suggests a STEMI."""
    names = ", ".join(stemi_leads)
    if paced_v and qrs_ms is not None and qrs_ms >= WIDE_QRS_MS:
        # Only a wide paced complex's ST escapes the STEMI criterion: stimuli found before
        # narrow complexes may be artefact, and a STEMI is not to be missed for them.
        paced = _make(
            StatementCode.ST_ELEVATION_PACED,
            f"起搏心律中 ST 段抬高（{names}）：常规 STEMI 标准不适用，请人工判读"
            "（可参考 Sgarbossa 标准）",
            f"ST elevation in a paced rhythm ({names}): the standard STEMI criteria do not "
            "apply; please read the ST segments (Sgarbossa criteria)",
        )
        return paced, False
    stemi = _make(
        StatementCode.ST_ELEVATION_STEMI_CRITERIA,
        f"相邻导联 ST 段抬高达到 STEMI 标准（{names}），疑似急性 ST 段抬高型心肌梗死，请立即判读",
        f"ST elevation meeting STEMI criteria in contiguous leads ({names}): suspected "
        "acute STEMI, read immediately",
    )
    return stemi, True


def _conduction_statements(
    measurements: Mapping[str, float | None], sex: str | None, age_years: float | None
) -> list[Statement]:
    """Short PR, QRS width, QTc and frontal axis against the limits for native beats (a long
    PR is the rhythm's: :func:`ecg.rhythm.first_degree_av_block`)."""
    out: list[Statement] = []
    pr = measurements.get("pr_ms")
    if pr is not None and pr < SHORT_PR_MS:
        out.append(
            _make(
                StatementCode.SHORT_PR,
                f"PR 间期缩短（{pr:.0f} ms），请确认",
                f"Short PR interval ({pr:.0f} ms); please confirm",
            )
        )
    qrs = measurements.get("qrs_ms")
    if qrs is not None and qrs >= WIDE_QRS_MS:
        out.append(
            _make(
                StatementCode.WIDE_QRS,
                f"QRS 波群增宽（{qrs:.0f} ms），请确认传导异常类型",
                f"Wide QRS ({qrs:.0f} ms): please assess the conduction abnormality",
            )
        )
    long_qtc = _long_qtc(measurements, sex, age_years)
    if long_qtc is not None:
        out.append(long_qtc)
    axis = measurements.get("qrs_axis_deg")
    if axis is not None and -90.0 <= axis < LEFT_AXIS_DEG:
        out.append(
            _make(
                StatementCode.LEFT_AXIS_DEVIATION,
                f"电轴左偏（{axis:.0f}°）",
                f"Left axis deviation ({axis:.0f}°)",
            )
        )
    elif axis is not None and axis > RIGHT_AXIS_DEG:
        out.append(
            _make(
                StatementCode.RIGHT_AXIS_DEVIATION,
                f"电轴右偏（{axis:.0f}°）",
                f"Right axis deviation ({axis:.0f}°)",
            )
        )
    return out


def _long_qtc(
    measurements: Mapping[str, float | None], sex: str | None, age_years: float | None
) -> Statement | None:
    """LONG_QTC when the Framingham QTc is at least the limit for the sex (the female one when
    the sex is unknown), with Bazett's value beside it as carts print it; behind a QRS wider
    than normal for the age (a conduction defect) the limit applies instead to the QT
    adjusted for rate and QRS duration, so the widening alone does not make the QT long."""
    limit = LONG_QTC_FEMALE_MS if sex != "M" else LONG_QTC_MALE_MS
    qrs, qt, rr = (measurements.get(k) for k in ("qrs_ms", "qt_ms", "rr_ms"))
    if qrs is not None and qrs > qrs_limits(age_years).ivcd_over_ms:
        if qt is None or rr is None:
            return None
        adjusted = qt_adjusted_for_qrs_ms(qt, rr, qrs, male=sex == "M")
        if adjusted < limit:
            return None
        jt = f"JT {qt - qrs:.0f} ms"
        return _make(
            StatementCode.LONG_QTC,
            f"QT 延长（QRS 增宽 {qrs:.0f} ms，按心率及 QRS 时限校正的 QT {adjusted:.0f} ms，"
            f"≥{limit:.0f} ms；{jt}），请确认",
            f"Long QT (wide QRS {qrs:.0f} ms; QT adjusted for rate and QRS duration "
            f"{adjusted:.0f} ms, >= {limit:.0f} ms; {jt}); please confirm",
        )
    qtc = measurements.get("qtc_framingham_ms")
    if qtc is None or qtc < limit:
        return None
    bazett = measurements.get("qtc_bazett_ms")
    also_zh = f"，Bazett {bazett:.0f} ms" if bazett is not None else ""
    also_en = f", Bazett {bazett:.0f} ms" if bazett is not None else ""
    return _make(
        StatementCode.LONG_QTC,
        f"QTc 延长（Framingham {qtc:.0f} ms{also_zh}，≥{limit:.0f} ms），请确认",
        f"Long QTc (Framingham {qtc:.0f} ms{also_en}, >= {limit:.0f} ms); please confirm",
    )
