"""Every statement of issue 5, from the values that should raise it and those that should not.

Pure: plain measurements in, statements out. The thresholds are the published ones named in
ecg/statements.py (AHA/ACCF/HRS interval limits, Fourth Universal Definition of MI for ST).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from ecg.atrial import AvConduction
from ecg.morphology import CODES as MORPHOLOGY_CODES
from ecg.rhythm import RhythmFindings
from ecg.statements import (
    RETIRED,
    Pacing,
    StatementCode,
    compose_statements,
    meets_stemi_criteria,
)

C = StatementCode
AV = AvConduction(pattern=None, atrial_rate_bpm=75.0, n_p=12, n_dropped=3, pr_ms=(160.0,) * 9)
NORMAL: dict[str, float | None] = {
    "heart_rate_bpm": 72.0,
    "pr_ms": 160.0,
    "qrs_ms": 90.0,
    "qtc_bazett_ms": 420.0,
    "qtc_framingham_ms": 415.0,
    "qrs_axis_deg": 45.0,
    "rr_max_ms": 900.0,
}


def compose(**changes: Any) -> tuple[set[StatementCode], list[Any], bool]:
    measurements = {**NORMAL, **changes.pop("measurements", {})}
    arguments: dict[str, Any] = {
        "st_deviation_uv": {},
        "p_wave_fraction": 1.0,
        "rr_irregularity": 0.02,
        "n_premature": 0,
        "sampling_rate_hz": 500.0,
        "leads_off": [],
        "noisy_leads": [],
        **changes,
    }
    statements, stemi = compose_statements(measurements, **arguments)
    return {s.code for s in statements}, statements, stemi


def test_a_normal_ecg_is_sinus_rhythm_and_nothing_else() -> None:
    codes, statements, stemi = compose()
    assert codes == {C.NORMAL_ECG, C.SINUS_RHYTHM}
    assert statements[0].code is C.NORMAL_ECG
    assert not stemi
    # worded for a reader to confirm, never as a final diagnosis, in both languages
    assert "请确认" in statements[0].text_zh
    assert "please confirm" in statements[0].text_en


@pytest.mark.parametrize(
    ("measurements", "raised", "not_raised"),
    [
        ({"heart_rate_bpm": 59.0}, C.SINUS_BRADYCARDIA, C.SINUS_RHYTHM),
        ({"heart_rate_bpm": 60.0}, C.SINUS_RHYTHM, C.SINUS_BRADYCARDIA),
        ({"heart_rate_bpm": 101.0}, C.SINUS_TACHYCARDIA, C.SINUS_RHYTHM),
        ({"heart_rate_bpm": 100.0}, C.SINUS_RHYTHM, C.SINUS_TACHYCARDIA),
        ({"rr_max_ms": 2100.0}, C.PAUSE, None),
        ({"rr_max_ms": 2000.0}, None, C.PAUSE),
        ({"pr_ms": 210.0}, C.FIRST_DEGREE_AV_BLOCK, C.SHORT_PR),
        ({"pr_ms": 200.0}, None, C.FIRST_DEGREE_AV_BLOCK),
        ({"pr_ms": 110.0}, C.SHORT_PR, C.FIRST_DEGREE_AV_BLOCK),
        ({"pr_ms": 120.0}, None, C.SHORT_PR),
        ({"qrs_ms": 120.0}, C.WIDE_QRS, None),
        ({"qrs_ms": 118.0}, None, C.WIDE_QRS),
        ({"qtc_framingham_ms": 460.0}, C.LONG_QTC, None),
        ({"qtc_framingham_ms": 459.0}, None, C.LONG_QTC),  # sex unknown: the female limit 460
        ({"qrs_axis_deg": -45.0}, C.LEFT_AXIS_DEVIATION, C.RIGHT_AXIS_DEVIATION),
        ({"qrs_axis_deg": -30.0}, None, C.LEFT_AXIS_DEVIATION),
        ({"qrs_axis_deg": 110.0}, C.RIGHT_AXIS_DEVIATION, C.LEFT_AXIS_DEVIATION),
        ({"qrs_axis_deg": 90.0}, None, C.RIGHT_AXIS_DEVIATION),
    ],
)
def test_each_measurement_statement_at_its_threshold(
    measurements: dict[str, float], raised: StatementCode | None, not_raised: StatementCode | None
) -> None:
    codes, _, _ = compose(measurements=measurements)
    if raised is not None:
        assert raised in codes
    if not_raised is not None:
        assert not_raised not in codes


def test_long_qtc_limit_depends_on_sex() -> None:
    assert C.LONG_QTC in compose(measurements={"qtc_framingham_ms": 450.0}, sex="M")[0]
    assert C.LONG_QTC not in compose(measurements={"qtc_framingham_ms": 449.0}, sex="M")[0]
    assert C.LONG_QTC not in compose(measurements={"qtc_framingham_ms": 455.0}, sex="F")[0]


def test_long_qtc_rests_on_the_linear_correction_not_bazetts() -> None:
    """At 115 bpm a QT of 360 ms is 498 ms by Bazett, which over-corrects at fast rates, but
    435 by Framingham: not long. The statement shows both values it rests on."""
    at_speed = {"qt_ms": 360.0, "qtc_bazett_ms": 498.0, "qtc_framingham_ms": 435.0}
    assert C.LONG_QTC not in compose(measurements=at_speed, sex="M")[0]
    long = {"qt_ms": 500.0, "qtc_bazett_ms": 520.0, "qtc_framingham_ms": 510.0}
    _, statements, _ = compose(measurements=long, sex="F")
    (said,) = [s for s in statements if s.code is C.LONG_QTC]
    assert "Framingham 510 ms" in said.text_en
    assert "Bazett 520 ms" in said.text_en
    assert "Framingham 510 ms" in said.text_zh


@pytest.mark.parametrize(
    ("sex", "qt_ms", "long"),
    [("M", 483.0, True), ("M", 482.0, False), ("F", 505.0, True), ("F", 504.0, False)],
)
def test_behind_a_wide_qrs_the_qt_is_adjusted_for_the_qrs_duration(
    sex: str, qt_ms: float, long: bool
) -> None:
    """At 60 bpm with a QRS of 150 ms, the QT adjusted for rate and QRS duration is
    QT − 0.93 × (150 − 139) − 22 ms (men) or − 34 ms (women): the limits 450 and 460 ms are
    reached at a QT of 482.2 and 504.2 ms, whatever the Framingham QTc (the QT itself here)."""
    wide = {"qrs_ms": 150.0, "qt_ms": qt_ms, "rr_ms": 1000.0, "qtc_framingham_ms": qt_ms}
    codes, statements, _ = compose(measurements=wide, sex=sex)
    assert (C.LONG_QTC in codes) is long
    if long:
        (said,) = [s for s in statements if s.code is C.LONG_QTC]
        assert "wide QRS 150 ms" in said.text_en
        assert f"JT {qt_ms - 150:.0f} ms" in said.text_en
        assert "按心率及 QRS 时限校正" in said.text_zh


def test_a_qrs_at_the_normal_limit_keeps_the_framingham_qtc() -> None:
    """110 ms is not wider than normal in an adult (IVCD is over 110): Framingham decides."""
    at_limit = {"qrs_ms": 110.0, "qt_ms": 460.0, "rr_ms": 1000.0, "qtc_framingham_ms": 460.0}
    _, statements, _ = compose(measurements=at_limit, sex="F", age_years=60.0)
    (said,) = [s for s in statements if s.code is C.LONG_QTC]
    assert "Framingham 460 ms" in said.text_en
    # a child's QRS of 110 ms is wide (over 90 ms at 8 to 16): the QT adjusted for it is
    # 460 + 0.93 × 29 − 34 = 453 ms, short of the limit
    codes, _, _ = compose(measurements=at_limit, sex="F", age_years=12.0)
    assert C.LONG_QTC not in codes


def test_irregular_rhythm_without_p_waves_suggests_af_not_sinus() -> None:
    codes, statements, _ = compose(rr_irregularity=0.2, p_wave_fraction=0.1)
    assert C.ATRIAL_FIBRILLATION in codes
    assert not codes & {C.SINUS_RHYTHM, C.SINUS_BRADYCARDIA, C.SINUS_TACHYCARDIA, C.NORMAL_ECG}
    af = next(s for s in statements if s.code is C.ATRIAL_FIBRILLATION)
    assert "提示心房颤动" in af.text_zh
    assert "ventricular rate, 72 bpm" in af.text_en
    # a regular rhythm without P waves is neither sinus nor AF
    codes, _, _ = compose(rr_irregularity=0.02, p_wave_fraction=0.1)
    assert not codes & {C.SINUS_RHYTHM, C.ATRIAL_FIBRILLATION}
    assert C.JUNCTIONAL_RHYTHM in codes


def test_retired_codes_are_no_longer_emitted() -> None:
    assert {C.IRREGULAR_RHYTHM_POSSIBLE_AF, C.PREMATURE_BEATS, C.LONG_PR} == RETIRED
    assert not RETIRED & compose(n_premature=3, measurements={"pr_ms": 250.0})[0]


def test_normal_ecg_is_ruled_out_by_any_abnormal_code() -> None:
    """Every code but the normal rhythm, its variant and quality notes counts as abnormal."""
    assert not C.SINUS_RHYTHM.abnormal
    assert not C.SINUS_ARRHYTHMIA.abnormal
    assert C.WIDE_QRS.abnormal
    assert C.PAC.abnormal
    assert C.SINUS_TACHYCARDIA.abnormal
    assert C.NORMAL_ECG not in compose(measurements={"qrs_ms": 130.0})[0]
    assert C.NORMAL_ECG not in compose(measurements={"heart_rate_bpm": 50.0})[0]
    assert C.NORMAL_ECG in compose(noisy_leads=["V1"])[0]
    assert C.NORMAL_ECG not in compose(leads_off=["V1"])[0]


def test_quality_warnings_come_first_and_name_the_leads() -> None:
    _, statements, _ = compose(sampling_rate_hz=150.0, leads_off=["V3"], noisy_leads=["aVL"])
    assert [s.code for s in statements[:3]] == [
        C.LOW_SAMPLING_RATE,
        C.LEAD_OFF,
        C.POOR_SIGNAL_QUALITY,
    ]
    assert "150 Hz" in statements[0].text_zh
    assert "V3" in statements[1].text_zh
    assert "aVL" in statements[2].text_en
    assert C.LOW_SAMPLING_RATE not in compose(sampling_rate_hz=250.0)[0]


def test_no_qrs_says_so_and_nothing_is_guessed() -> None:
    codes, _, stemi = compose(measurements={"heart_rate_bpm": None})
    assert codes == {C.NO_QRS_DETECTED}
    assert not stemi


@pytest.mark.parametrize(
    ("st_uv", "leads"),
    [
        ({"II": 120.0, "III": 120.0, "aVF": 50.0}, ["II", "III"]),  # inferior pair
        ({"V3": 160.0, "V4": 150.0}, ["V3", "V4"]),  # anterior, V3 at the unknown-sex limit
        ({"I": 110.0, "aVL": 110.0}, ["I", "aVL"]),  # high lateral
    ],
)
def test_st_elevation_in_two_contiguous_leads_is_suspected_stemi(
    st_uv: dict[str, float], leads: list[str]
) -> None:
    codes, statements, stemi = compose(st_deviation_uv=st_uv)
    assert stemi
    assert C.ST_ELEVATION_STEMI_CRITERIA in codes
    text = next(s for s in statements if s.code is C.ST_ELEVATION_STEMI_CRITERIA)
    for lead in leads:
        assert lead in text.text_en
    assert "STEMI" in text.text_zh
    assert statements[-1].code is C.ST_ELEVATION_STEMI_CRITERIA  # read in order: ST last


@pytest.mark.parametrize(
    "st_uv",
    [
        {"II": 150.0, "V4": 150.0},  # two leads, not contiguous
        {"III": 300.0},  # one lead
        {"II": 90.0, "III": 90.0},  # below 1 mm
        {"II": -200.0, "III": -200.0},  # depression is not elevation
    ],
)
def test_no_stemi_without_elevation_in_a_contiguous_pair(st_uv: dict[str, float]) -> None:
    codes, _, stemi = compose(st_deviation_uv=st_uv)
    assert not stemi
    assert C.ST_ELEVATION_STEMI_CRITERIA not in codes


def test_v2_v3_thresholds_follow_sex_and_age() -> None:
    st = {"V2": 210.0, "V3": 210.0}
    assert meets_stemi_criteria(st, sex="M", age_years=50) == ["V2", "V3"]
    assert meets_stemi_criteria(st, sex="M", age_years=35) == []  # 2.5 mm under 40
    assert meets_stemi_criteria({"V2": 150.0, "V3": 150.0}, sex="F") == ["V2", "V3"]
    assert meets_stemi_criteria({"V2": 140.0, "V3": 140.0}) == []


INFERIOR = {"II": 200.0, "III": 200.0, "aVF": 200.0}
#: A paced rhythm's wide, left-axis complexes with a long AV delay and long QT.
PACED_BEATS = {"pr_ms": 212.0, "qrs_ms": 134.0, "qtc_bazett_ms": 469.0, "qrs_axis_deg": -64.0}


@pytest.mark.parametrize(
    ("pacing", "p_wave_fraction", "named"),
    [
        (Pacing(beats=10, ventricular=10, atrial=0), 1.0, "atrial-sensed ventricular-paced"),
        (Pacing(beats=10, ventricular=10, atrial=0), 0.0, "ventricular-paced rhythm"),
        (Pacing(beats=10, ventricular=9, atrial=0), 1.0, "atrial-sensed"),
    ],
)
def test_a_ventricular_paced_rhythm_is_named_and_its_complexes_not_read_as_native(
    pacing: Pacing, p_wave_fraction: float, named: str
) -> None:
    codes, statements, stemi = compose(
        measurements=PACED_BEATS, pacing=pacing, p_wave_fraction=p_wave_fraction
    )
    assert codes == {C.VENTRICULAR_PACED_RHYTHM}
    assert named in statements[0].text_en
    assert f"before {pacing.ventricular} of 10 beats" in statements[0].text_en
    assert "起搏" in statements[0].text_zh
    assert not stemi


def test_st_elevation_in_a_paced_rhythm_is_shown_but_does_not_raise_the_stemi_priority() -> None:
    paced = Pacing(beats=10, ventricular=10, atrial=0)
    codes, statements, stemi = compose(
        measurements=PACED_BEATS, st_deviation_uv=INFERIOR, pacing=paced
    )
    assert not stemi
    assert C.ST_ELEVATION_PACED in codes
    assert C.ST_ELEVATION_STEMI_CRITERIA not in codes
    assert "Sgarbossa" in statements[-1].text_en
    # the same ST without the pacemaker is a suspected STEMI
    assert compose(measurements=PACED_BEATS, st_deviation_uv=INFERIOR)[2]
    # and so it is behind narrow complexes: stimuli found there may be artefact
    narrow = compose(st_deviation_uv=INFERIOR, pacing=paced)
    assert narrow[2]
    assert C.ST_ELEVATION_STEMI_CRITERIA in narrow[0]


def test_an_atrial_paced_rhythm_keeps_the_native_criteria() -> None:
    codes, _, _ = compose(
        measurements={"pr_ms": 230.0}, pacing=Pacing(beats=10, ventricular=0, atrial=10)
    )
    assert codes == {C.ATRIAL_PACED_RHYTHM, C.FIRST_DEGREE_AV_BLOCK}


def test_a_few_paced_beats_are_intermittent_pacing_beside_the_native_rhythm() -> None:
    codes, statements, _ = compose(
        measurements={"qrs_ms": 130.0}, pacing=Pacing(beats=10, ventricular=3, atrial=0)
    )
    assert codes == {C.SINUS_RHYTHM, C.INTERMITTENT_PACING, C.WIDE_QRS}
    assert "3 of 10 beats" in next(s.text_en for s in statements if s.code is C.INTERMITTENT_PACING)


def test_every_statement_code_is_reachable() -> None:
    """Each code of StatementCode but the retired ones is produced by one of these inputs."""
    sinus_with_ectopy = RhythmFindings(
        kinds=tuple("NNSNNVNNNN"),
        rr_ms=(800, 800, 560, 1040, 800, 560, 1040, 700, 900),
        irregularity=0.03,
        p_share=1.0,
        pr_ms=160.0,
    )
    seen: set[StatementCode] = set()
    inputs: tuple[dict[str, Any], ...] = (
        {},
        {"measurements": {"heart_rate_bpm": 50.0}},
        {"measurements": {"heart_rate_bpm": 120.0}},
        {"rr_irregularity": 0.3, "p_wave_fraction": 0.0},
        {"measurements": {"rr_max_ms": 2500.0, "pr_ms": 230.0, "qrs_ms": 140.0}},
        {"measurements": {"pr_ms": 100.0, "qtc_framingham_ms": 480.0, "qrs_axis_deg": -60.0}},
        {"measurements": {"qrs_axis_deg": 120.0}, "n_premature": 2},
        {"st_deviation_uv": {"II": 200.0, "aVF": 200.0}},
        {"sampling_rate_hz": 100.0, "leads_off": ["I"], "noisy_leads": ["II"]},
        {"measurements": {"heart_rate_bpm": None}},
        {
            "pacing": Pacing(beats=10, ventricular=10, atrial=0),
            "st_deviation_uv": INFERIOR,
            "measurements": PACED_BEATS,
        },
        {"pacing": Pacing(beats=10, ventricular=0, atrial=9)},
        {"pacing": Pacing(beats=10, ventricular=2, atrial=0)},
        {"rhythm": sinus_with_ectopy},
        {"rhythm": replace(sinus_with_ectopy, flutter_bpm=300.0)},
        *(
            {"rhythm": replace(sinus_with_ectopy, av=replace(AV, pattern=pattern))}
            for pattern in ("mobitz_i", "mobitz_ii", "2:1", "third_degree")
        ),
        {"measurements": {"heart_rate_bpm": 130.0, "p_axis_deg": -60.0}},
        {"measurements": {"heart_rate_bpm": 150.0}, "p_wave_fraction": 0.0},
        {"measurements": {"qrs_ms": 150.0}, "p_wave_fraction": 0.0},
        {"p_wave_fraction": 0.0},
    )
    for changes in inputs:
        seen |= compose(**changes)[0]
    # the per-lead morphology codes are reached in tests/unit/ecg/test_morphology.py
    morphology = {StatementCode(code) for code in MORPHOLOGY_CODES}
    assert seen | morphology == set(StatementCode) - RETIRED
