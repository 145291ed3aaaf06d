"""Conduction, hypertrophy, Q, ST and T statements: per-lead measurement of synthetic median
beats, every criterion just inside and just outside its threshold, and real labelled records.

The thresholds are the published ones named in ecg/morphology.py (AHA/ACCF/HRS 2009
recommendations, Fourth Universal Definition of MI, Smith-modified Sgarbossa criteria).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from scipy import io

from ecg import EcgFormat, EcgRecord
from ecg.analysis import analyze_ecg
from ecg.delineate import BeatFiducials
from ecg.morphology import (
    CODES,
    LeadMorphology,
    Morphology,
    interpret_morphology,
    measure_morphology,
    qrs_limits,
)
from ecg.record import EcgPatient, Sex
from ecg.statements import StatementCode, compose_statements

DATA = Path(__file__).resolve().parents[2] / "data" / "ecg12-dev" / "records"
LEADS = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
FS = 500.0


# ------------------------------------------------------------------ measurement


def lobes_signal(
    lobes: list[tuple[float, float]], st_uv: float = 0.0, t_uv: float = 200.0
) -> tuple[npt.NDArray[np.float64], BeatFiducials]:
    """One lead's median beat: flat baseline, QRS from 400 ms of back-to-back half-sine
    lobes (duration ms, signed peak µV), a flat ST at `st_uv` and a half-sine T on it."""
    n = round(1.1 * FS)
    x = np.zeros(n)
    i = round(0.4 * FS)
    for duration_ms, peak in lobes:
        m = round(duration_ms * FS / 1000)
        x[i : i + m] = peak * np.sin(np.pi * (np.arange(m) + 0.5) / m)
        i += m
    j = i
    x[j : j + round(0.26 * FS)] = st_uv
    t0, tm = j + round(0.10 * FS), round(0.16 * FS)
    x[t0 : t0 + tm] += t_uv * np.sin(np.pi * (np.arange(tm) + 0.5) / tm)
    fiducials = BeatFiducials(qrs_on=round(0.4 * FS), qrs_off=j, t_peak=t0 + tm // 2, t_off=t0 + tm)
    return x, fiducials


def measure_one(lobes: list[tuple[float, float]], **kwargs: float) -> LeadMorphology:
    x, fiducials = lobes_signal(lobes, **kwargs)
    morphology = measure_morphology(x[None, :], ("V1",), fiducials, FS)
    assert morphology is not None
    return morphology.leads["V1"]


def test_an_rsr_prime_complex_is_named_with_its_r_peak_time() -> None:
    m = measure_one([(20, 200), (20, -300), (60, 800)])
    assert m.pattern == "rsR'"
    assert (m.r_uv, m.s_uv, m.r_prime_uv) == pytest.approx((200, 300, 800), rel=0.02)
    assert (m.r_ms, m.s_ms) == pytest.approx((20, 20), abs=2.1)
    # onset to the R' peak: 20 + 20 + 30 ms
    assert m.r_peak_time_ms == pytest.approx(70, abs=2.1)
    assert m.qrs_peak_to_peak_uv == pytest.approx(1100, rel=0.02)


def test_q_r_s_waves_and_a_qs_complex() -> None:
    m = measure_one([(40, -150), (40, 900), (30, -200)])
    assert m.pattern == "qRs"
    assert (m.q_ms, m.q_uv) == pytest.approx((40, 150), rel=0.05)
    qs = measure_one([(90, -1000)])
    assert qs.pattern == "QS"
    assert qs.r_uv == 0.0
    assert qs.qrs_net_uv < 0
    assert qs.r_peak_time_ms is None


def test_a_deflection_under_30_uv_is_not_a_wave() -> None:
    m = measure_one([(10, -20), (60, 900), (30, -200)])
    assert m.q_uv == 0.0
    assert m.pattern == "Rs"


def test_a_notched_r_is_found_and_times_to_its_second_peak() -> None:
    x, fiducials = lobes_signal([(100, 900)])
    on = fiducials.qrs_on or 0
    t = np.arange(x.size)
    x -= 500 * np.exp(-0.5 * ((t - (on + 25)) / 4.0) ** 2)  # a dip in the middle
    morphology = measure_morphology(x[None, :], ("V1",), fiducials, FS)
    assert morphology is not None
    m = morphology.leads["V1"]
    assert m.notched_r
    assert m.r_peak_time_ms is not None
    assert m.r_peak_time_ms > 50


def test_st_levels_and_t_amplitude_against_the_pr_segment() -> None:
    m = measure_one([(40, 900), (40, -300)], st_uv=-120.0, t_uv=-300.0)
    assert m.st_j60_uv == pytest.approx(-120, abs=1)
    assert m.st_j80_uv == pytest.approx(-120, abs=1)
    assert m.t_uv == pytest.approx(-420, abs=5)
    offset = measure_one([(40, 900), (40, -300)], st_uv=150.0)
    assert offset.st_j60_uv == pytest.approx(150, abs=1)


def test_no_qrs_boundaries_no_morphology() -> None:
    assert measure_morphology(np.zeros((1, 500)), ("I",), BeatFiducials(), FS) is None


# ------------------------------------------------------------------ criteria


def lead(q: float = 0, r: float = 0, s: float = 0, **kwargs: Any) -> LeadMorphology:
    """A lead with Q, R, S amplitudes (µV; durations 15, 40, 30 ms unless given)."""
    values: dict[str, Any] = {
        "q_uv": q,
        "q_ms": 15.0 if q else 0.0,
        "r_uv": r,
        "r_ms": 40.0 if r else 0.0,
        "s_uv": s,
        "s_ms": 30.0 if s else 0.0,
        "r_peak_time_ms": 35.0 if r else None,
        "t_uv": 200.0,
        **kwargs,
    }
    values.setdefault("qrs_peak_to_peak_uv", max(q, s) + r + values.get("r_prime_uv", 0.0))
    biggest = max(q, r, s, values.get("r_prime_uv", 0.0))
    values.setdefault(
        "qrs_net_uv", biggest if biggest in (r, values.get("r_prime_uv")) else -biggest
    )
    return LeadMorphology(**values)


NORMAL_LEADS: dict[str, LeadMorphology] = {
    "I": lead(50, 800, 100),
    "II": lead(50, 1000, 150),
    "III": lead(0, 500, 200),
    "aVR": lead(600, 0, 0, q_ms=80.0, t_uv=-200.0),
    "aVL": lead(0, 500, 200),
    "aVF": lead(0, 700, 150),
    "V1": lead(0, 200, 900, r_peak_time_ms=20.0),
    "V2": lead(0, 400, 1200),
    "V3": lead(0, 700, 700),
    "V4": lead(0, 1200, 400),
    "V5": lead(60, 1300, 200),
    "V6": lead(50, 1000, 100),
}
NORMAL_MEASUREMENTS = {"qrs_ms": 90.0, "pr_ms": 160.0, "qrs_axis_deg": 45.0, "qtc_bazett_ms": 420.0}


def interpret(
    changes: dict[str, LeadMorphology] | None = None,
    *,
    delta: bool = False,
    sex: str | None = "M",
    age: float | None = 55.0,
    paced: bool = False,
    **measurements: float,
) -> tuple[set[str], list[Any], bool]:
    morphology = Morphology(leads={**NORMAL_LEADS, **(changes or {})}, delta_wave=delta)
    found, stemi = interpret_morphology(
        morphology,
        {**NORMAL_MEASUREMENTS, **measurements},
        sex=sex,
        age_years=age,
        paced=paced,
    )
    return {f.code for f in found}, found, stemi


def with_values(name: str, **values: Any) -> dict[str, LeadMorphology]:
    return {name: replace(NORMAL_LEADS[name], **values)}


def test_a_normal_beat_states_nothing() -> None:
    assert interpret() == (set(), [], False)


RBBB_LEADS = {
    "V1": lead(0, 200, 300, r_prime_uv=800.0, r_ms=20.0, s_ms=20.0, r_peak_time_ms=90.0),
    "V2": lead(0, 300, 400, r_prime_uv=700.0, r_peak_time_ms=85.0),
    "I": lead(50, 600, 300, s_ms=50.0),
    "V6": lead(50, 800, 300, s_ms=50.0),
}


@pytest.mark.parametrize(
    ("qrs_ms", "code"),
    [(130.0, "RBBB"), (120.0, "RBBB"), (119.0, "INCOMPLETE_RBBB"), (110.0, "INCOMPLETE_RBBB")],
)
def test_right_bundle_branch_block_by_qrs_duration(qrs_ms: float, code: str) -> None:
    codes, found, _ = interpret(RBBB_LEADS, qrs_ms=qrs_ms)
    assert code in codes
    assert "IVCD" not in codes
    text = next(f for f in found if f.code == code)
    assert f"QRS {qrs_ms:.0f} ms" in text.text_en
    assert "V1 rsR'" in text.text_en
    assert "请确认" in text.text_zh


def test_rbbb_morphology_under_110_ms_is_no_block() -> None:
    codes, _, _ = interpret(RBBB_LEADS, qrs_ms=108.0)
    assert not codes & {"RBBB", "INCOMPLETE_RBBB", "IVCD"}


@pytest.mark.parametrize(
    "change",
    [
        {"V1": replace(RBBB_LEADS["V1"], r_peak_time_ms=50.0)},  # R-peak time V1 must be > 50
        {"I": replace(RBBB_LEADS["I"], s_ms=30.0)},  # S in I neither > 40 ms nor wider than R
        {  # the r' of V1 and V2 a terminal notch (under half the r), not an R'
            "V1": replace(RBBB_LEADS["V1"], r_prime_uv=90.0),
            "V2": replace(RBBB_LEADS["V2"], r_prime_uv=140.0),
        },
    ],
)
def test_without_rbbb_morphology_a_wide_qrs_is_an_ivcd(change: dict[str, LeadMorphology]) -> None:
    codes, found, _ = interpret({**RBBB_LEADS, **change}, qrs_ms=130.0)
    assert "RBBB" not in codes
    assert "IVCD" in codes
    assert "130 ms" in next(f.text_en for f in found if f.code == "IVCD")


LBBB_LEADS = {
    "I": lead(0, 900, 0, r_ms=120.0, r_peak_time_ms=80.0, t_uv=-200.0),
    "aVL": lead(0, 700, 0, r_ms=120.0, r_peak_time_ms=80.0, t_uv=-150.0),
    "V1": lead(1500, 0, 0, q_ms=130.0, st_j_uv=200.0, st_j60_uv=250.0),
    "V2": lead(2000, 0, 0, q_ms=130.0, st_j_uv=300.0, st_j60_uv=350.0),
    "V3": lead(0, 100, 1800, st_j_uv=250.0, st_j60_uv=300.0),
    "V5": lead(0, 1200, 0, r_ms=120.0, r_peak_time_ms=80.0, st_j_uv=-100.0, st_j60_uv=-100.0),
    "V6": lead(0, 1100, 0, r_ms=120.0, r_peak_time_ms=62.0, st_j_uv=-100.0, st_j60_uv=-120.0),
}


def test_lbbb_with_discordant_st_elevation_is_not_a_suspected_stemi() -> None:
    codes, found, stemi = interpret(LBBB_LEADS, qrs_ms=150.0)
    assert "LBBB" in codes
    # V1-V3 elevation meets the standard criterion, which does not apply behind LBBB
    assert not stemi
    assert "ST_ELEVATION_STEMI_CRITERIA" not in codes
    assert not codes & {"ST_DEPRESSION", "T_WAVE_INVERSION", "IVCD", "LVH"}
    secondary = next(f for f in found if f.code == "SECONDARY_ST_T_CHANGES")
    assert "left bundle branch block" in secondary.text_en


@pytest.mark.parametrize(
    "change",
    [
        {"I": replace(LBBB_LEADS["I"], q_uv=60.0, q_ms=15.0)},  # a q in I
        {
            "V5": replace(LBBB_LEADS["V5"], r_peak_time_ms=60.0),
            "V6": replace(LBBB_LEADS["V6"], r_peak_time_ms=60.0),
        },  # R-peak time must exceed 60 ms
    ],
)
def test_without_lbbb_morphology_a_wide_qrs_is_an_ivcd(change: dict[str, LeadMorphology]) -> None:
    codes, _, stemi = interpret({**LBBB_LEADS, **change}, qrs_ms=150.0)
    assert "LBBB" not in codes
    assert "IVCD" in codes
    assert not stemi  # behind any wide QRS the Sgarbossa criteria, not the standard ones


def test_lbbb_needs_120_ms() -> None:
    codes, _, _ = interpret(LBBB_LEADS, qrs_ms=119.0)
    assert "LBBB" not in codes


@pytest.mark.parametrize(
    ("change", "words"),
    [
        # concordant ST elevation >= 1 mm in a lead with a positive QRS
        ({"V5": replace(LBBB_LEADS["V5"], st_j_uv=100.0, st_j60_uv=120.0)}, "concordant ST elev"),
        # concordant ST depression >= 1 mm in V1-V3
        ({"V3": replace(LBBB_LEADS["V3"], st_j_uv=-100.0, st_j60_uv=-100.0)}, "concordant ST dep"),
        # discordant elevation, ST/S <= -0.25 (Smith): 0.5 mV over a 2.0 mV QS
        ({"V2": replace(LBBB_LEADS["V2"], st_j_uv=500.0)}, "ST/S -0.25"),
    ],
)
def test_lbbb_with_a_sgarbossa_criterion_is_a_suspected_stemi(
    change: dict[str, LeadMorphology], words: str
) -> None:
    _, found, stemi = interpret({**LBBB_LEADS, **change}, qrs_ms=150.0)
    assert stemi
    text = next(f for f in found if f.code == "ST_ELEVATION_STEMI_CRITERIA")
    assert words in text.text_en
    assert "Sgarbossa" in text.text_zh


def test_just_under_the_sgarbossa_criteria_is_no_alert() -> None:
    change = {
        "V5": replace(LBBB_LEADS["V5"], st_j_uv=99.0, st_j60_uv=120.0),
        "V3": replace(LBBB_LEADS["V3"], st_j_uv=-99.0),
        "V2": replace(LBBB_LEADS["V2"], st_j_uv=490.0),  # ST/S -0.245
    }
    _, _, stemi = interpret({**LBBB_LEADS, **change}, qrs_ms=150.0)
    assert not stemi


def test_a_wide_paced_complex_alerts_only_on_sgarbossa() -> None:
    codes, _, stemi = interpret(LBBB_LEADS, qrs_ms=150.0, paced=True)
    assert not stemi
    assert codes == {"ST_ELEVATION_PACED"}
    concordant = {"V5": replace(LBBB_LEADS["V5"], st_j_uv=150.0, st_j60_uv=150.0)}
    codes, _, stemi = interpret({**LBBB_LEADS, **concordant}, qrs_ms=150.0, paced=True)
    assert stemi
    assert codes == {"ST_ELEVATION_STEMI_CRITERIA"}


def test_a_narrow_paced_complex_keeps_the_standard_criterion() -> None:
    inferior = {n: replace(NORMAL_LEADS[n], st_j_uv=150.0, st_j60_uv=150.0) for n in ("II", "aVF")}
    codes, _, stemi = interpret(inferior, paced=True)
    assert stemi
    assert codes == {"ST_ELEVATION_STEMI_CRITERIA"}


@pytest.mark.parametrize(
    ("leads", "st_uv", "sex", "age", "alert"),
    [
        (("II", "aVF"), 100.0, "M", 55.0, True),
        (("II", "aVF"), 95.0, "M", 55.0, False),
        (("II", "V2"), 300.0, "M", 55.0, False),  # not contiguous
        (("V2", "V3"), 200.0, "M", 55.0, True),
        (("V2", "V3"), 195.0, "M", 55.0, False),
        (("V2", "V3"), 240.0, "M", 35.0, False),  # men under 40: 0.25 mV
        (("V2", "V3"), 250.0, "M", 35.0, True),
        (("V2", "V3"), 150.0, "F", 55.0, True),
        (("V2", "V3"), 145.0, "F", 55.0, False),
    ],
)
def test_st_elevation_at_the_j_point_by_the_fourth_universal_definition(
    leads: tuple[str, str], st_uv: float, sex: str, age: float, alert: bool
) -> None:
    changes = {n: replace(NORMAL_LEADS[n], st_j_uv=st_uv, st_j60_uv=st_uv) for n in leads}
    codes, found, stemi = interpret(changes, sex=sex, age=age)
    assert stemi is alert
    assert ("ST_ELEVATION_STEMI_CRITERIA" in codes) is alert
    if alert:
        text = next(f for f in found if f.code == "ST_ELEVATION_STEMI_CRITERIA")
        assert f"{leads[0]} {st_uv / 1000:.2f} mV" in text.text_en
        assert "STEMI" in text.text_zh


def test_j_point_elevation_gone_60_ms_later_is_no_stemi() -> None:
    changes = {n: replace(NORMAL_LEADS[n], st_j_uv=150.0, st_j60_uv=40.0) for n in ("II", "aVF")}
    _, _, stemi = interpret(changes)
    assert not stemi


def test_st_elevation_in_rbbb_still_alerts_outside_v1_v3() -> None:
    inferior = {n: replace(NORMAL_LEADS[n], st_j_uv=150.0, st_j60_uv=150.0) for n in ("II", "aVF")}
    codes, _, stemi = interpret({**RBBB_LEADS, **inferior}, qrs_ms=130.0)
    assert "RBBB" in codes
    assert stemi


@pytest.mark.parametrize(
    ("changes", "measurements", "code", "present"),
    [
        ({"aVL": lead(100, 800, 0, r_peak_time_ms=45.0)}, {"qrs_axis_deg": -60.0}, "LAFB", True),
        ({"aVL": lead(100, 800, 0, r_peak_time_ms=44.0)}, {"qrs_axis_deg": -60.0}, "LAFB", False),
        ({"aVL": lead(100, 800, 0, r_peak_time_ms=50.0)}, {"qrs_axis_deg": -44.0}, "LAFB", False),
        (
            {"aVL": lead(100, 800, 0, r_peak_time_ms=50.0)},
            {"qrs_axis_deg": -60.0, "qrs_ms": 120.0},
            "LAFB",
            False,
        ),
        (
            {
                "I": lead(0, 100, 500),
                "aVL": lead(0, 100, 400),
                "III": lead(100, 800, 0),
                "aVF": lead(100, 700, 0),
            },
            {"qrs_axis_deg": 110.0},
            "LPFB",
            True,
        ),
        (
            {
                "I": lead(0, 100, 500),
                "aVL": lead(0, 100, 400),
                "III": lead(100, 800, 0),
                "aVF": lead(100, 700, 0),
            },
            {"qrs_axis_deg": 90.0},
            "LPFB",
            False,
        ),
        ({}, {"qrs_ms": 111.0}, "IVCD", True),
        ({}, {"qrs_ms": 110.0}, "IVCD", False),
        ({}, {"qtc_bazett_ms": 340.0}, "SHORT_QTC", True),
        ({}, {"qtc_bazett_ms": 341.0}, "SHORT_QTC", False),
    ],
)
def test_fascicular_blocks_ivcd_and_short_qtc(
    changes: dict[str, LeadMorphology], measurements: dict[str, Any], code: str, present: bool
) -> None:
    codes, _, _ = interpret(changes, **measurements)
    assert (code in codes) is present


@pytest.mark.parametrize(
    ("age", "qrs_ms", "ivcd"),
    [
        (55.0, 111.0, True),
        (55.0, 110.0, False),
        (None, 111.0, True),
        (None, 110.0, False),
        (17.0, 110.0, False),
        (16.0, 92.0, True),
        (16.0, 90.0, False),
        (10.0, 91.0, True),
        (10.0, 90.0, False),
        (5.0, 81.0, True),
        (5.0, 80.0, False),
        (2.0, 81.0, True),
        (2.0, 80.0, False),
    ],
)
def test_nonspecific_ivcd_by_the_qrs_limit_of_the_age(
    age: float | None, qrs_ms: float, ivcd: bool
) -> None:
    codes, found, _ = interpret(age=age, qrs_ms=qrs_ms)
    assert ("IVCD" in codes) is ivcd
    if ivcd:
        text = next(f.text_en for f in found if f.code == "IVCD")
        assert f"{qrs_ms:.0f} ms, > {qrs_limits(age).ivcd_over_ms:.0f} ms" in text


@pytest.mark.parametrize(
    ("age", "qrs_ms", "code"),
    [
        (10.0, 102.0, "RBBB"),
        (10.0, 100.0, "INCOMPLETE_RBBB"),
        (10.0, 90.0, "INCOMPLETE_RBBB"),
        (6.0, 86.0, "INCOMPLETE_RBBB"),
        (3.0, 92.0, "RBBB"),
        (3.0, 90.0, "INCOMPLETE_RBBB"),
        (30.0, 118.0, "INCOMPLETE_RBBB"),
    ],
)
def test_a_childs_bundle_branch_block_by_the_qrs_limit_of_the_age(
    age: float, qrs_ms: float, code: str
) -> None:
    codes, _, _ = interpret(RBBB_LEADS, age=age, qrs_ms=qrs_ms)
    assert code in codes
    assert "IVCD" not in codes


def test_rbbb_morphology_short_of_a_childs_incomplete_block_is_no_block() -> None:
    codes, _, _ = interpret(RBBB_LEADS, age=10.0, qrs_ms=88.0)
    assert not codes & {"RBBB", "INCOMPLETE_RBBB", "IVCD"}


@pytest.mark.parametrize(
    ("pr_ms", "delta", "pre_excited"),
    [(110.0, True, True), (120.0, True, False), (110.0, False, False)],
)
def test_pre_excitation_needs_short_pr_delta_wave_and_wide_qrs(
    pr_ms: float, delta: bool, pre_excited: bool
) -> None:
    codes, _, _ = interpret(delta=delta, pr_ms=pr_ms, qrs_ms=130.0)
    assert ("PRE_EXCITATION" in codes) is pre_excited
    assert ("IVCD" in codes) is not pre_excited


@pytest.mark.parametrize(
    ("sv1", "rv5", "age", "lvh"),
    [(1800.0, 1700.0, 50.0, True), (1800.0, 1690.0, 50.0, False), (1800.0, 1700.0, 39.0, False)],
)
def test_lvh_by_sokolow_lyon(sv1: float, rv5: float, age: float, lvh: bool) -> None:
    changes = {"V1": lead(0, 200, sv1), "V5": lead(60, rv5, 200)}
    codes, found, _ = interpret(changes, age=age)
    assert ("LVH" in codes) is lvh
    if lvh:
        assert "Sokolow-Lyon SV1 + RV5/V6 = 3.50 mV" in next(f.text_en for f in found)


@pytest.mark.parametrize(
    ("sex", "total", "lvh"),
    [("F", 2010.0, True), ("F", 2000.0, False), ("M", 2810.0, True), ("M", 2800.0, False)],
)
def test_lvh_by_cornell_with_the_sex_thresholds(sex: str, total: float, lvh: bool) -> None:
    changes = {"aVL": lead(0, total - 900.0, 100), "V3": lead(0, 500, 900)}
    codes, _, _ = interpret(changes, sex=sex)
    assert ("LVH" in codes) is lvh


def test_lvh_strain_is_secondary_st_t_change() -> None:
    strain = {
        "V5": lead(60, 2000, 200, st_j_uv=-80.0, st_j60_uv=-100.0, t_uv=-200.0),
        "V6": lead(50, 1800, 100, st_j_uv=-80.0, st_j60_uv=-100.0, t_uv=-200.0),
        "V1": lead(0, 200, 1800),
    }
    codes, found, _ = interpret(strain)
    assert {"LVH", "SECONDARY_ST_T_CHANGES"} <= codes
    assert not codes & {"ST_DEPRESSION", "T_WAVE_INVERSION"}
    assert "left ventricular hypertrophy" in found[-1].text_en


@pytest.mark.parametrize(
    ("r_v1", "s_v1", "axis", "rvh"),
    [
        (800.0, 500.0, 100.0, True),
        (690.0, 500.0, 100.0, False),
        (800.0, 810.0, 100.0, False),
        (800.0, 500.0, 90.0, False),
    ],
)
def test_rvh_tall_r_in_v1_with_right_axis(r_v1: float, s_v1: float, axis: float, rvh: bool) -> None:
    codes, _, _ = interpret({"V1": lead(0, r_v1, s_v1)}, qrs_axis_deg=axis)
    assert ("RVH" in codes) is rvh


@pytest.mark.parametrize(("limb", "low"), [(499.0, True), (500.0, False)])
def test_low_voltage_in_the_limb_leads(limb: float, low: bool) -> None:
    changes = {
        n: replace(NORMAL_LEADS[n], qrs_peak_to_peak_uv=limb)
        for n in ("I", "II", "III", "aVR", "aVL", "aVF")
    }
    codes, _, _ = interpret(changes)
    assert ("LOW_VOLTAGE" in codes) is low


def test_low_voltage_in_the_precordial_leads() -> None:
    changes = {
        n: replace(NORMAL_LEADS[n], qrs_peak_to_peak_uv=990.0)
        for n in ("V1", "V2", "V3", "V4", "V5", "V6")
    }
    codes, found, _ = interpret(changes)
    assert "LOW_VOLTAGE" in codes
    assert "precordial" in found[0].text_en


@pytest.mark.parametrize(
    ("leads", "q", "code"),
    [
        (("II", "aVF"), {"q_uv": 150.0, "q_ms": 40.0}, "Q_WAVES_INFERIOR"),
        (("III", "aVF"), {"q_uv": 300.0, "q_ms": 30.0}, "Q_WAVES_INFERIOR"),  # >= 25 % of R
        (("V2", "V3"), {"q_uv": 200.0, "q_ms": 40.0}, "Q_WAVES_ANTERIOR"),
        (("I", "aVL"), {"q_uv": 200.0, "q_ms": 40.0}, "Q_WAVES_LATERAL"),
        (("II", "aVF"), {"q_uv": 150.0, "q_ms": 38.0}, None),  # < 40 ms, < 25 % of R
        (("III",), {"q_uv": 400.0, "q_ms": 50.0}, None),  # III alone
        (("V1", "aVR"), {"q_uv": 400.0, "q_ms": 50.0}, None),  # where a Q is normal
        (("II", "V2"), {"q_uv": 400.0, "q_ms": 50.0}, None),  # not contiguous
    ],
)
def test_pathological_q_waves_by_territory(
    leads: tuple[str, ...], q: dict[str, Any], code: str | None
) -> None:
    changes = {n: replace(NORMAL_LEADS[n], **q) for n in leads}
    codes, _, _ = interpret(changes)
    q_codes = {c for c in codes if c.startswith("Q_WAVES_")}
    assert q_codes == ({code} if code else set())


@pytest.mark.parametrize(
    ("j", "j60", "depressed"),
    [(-60.0, -60.0, True), (-50.0, -80.0, True), (-49.0, -60.0, False), (-100.0, -60.0, False)],
)
def test_st_depression_horizontal_or_downsloping_in_contiguous_leads(
    j: float, j60: float, depressed: bool
) -> None:
    # (-100 at J rising to -60: upsloping by 40 µV, not horizontal)
    changes = {n: replace(NORMAL_LEADS[n], st_j_uv=j, st_j60_uv=j60) for n in ("V4", "V5")}
    codes, found, stemi = interpret(changes)
    assert ("ST_DEPRESSION" in codes) is depressed
    assert not stemi
    if depressed:
        assert "V4" in next(f.text_en for f in found if f.code == "ST_DEPRESSION")


@pytest.mark.parametrize(
    ("leads", "t_uv", "inverted"),
    [
        (("V2", "V3"), -100.0, True),
        (("V2", "V3"), -99.0, False),
        (("V1",), -300.0, False),
        (("III",), -300.0, False),
        (("II", "III", "aVF"), -150.0, True),
        (("V1", "V2"), -300.0, False),  # V1 does not pair
    ],
)
def test_t_wave_inversion_by_territory(leads: tuple[str, ...], t_uv: float, inverted: bool) -> None:
    changes = {n: replace(NORMAL_LEADS[n], t_uv=t_uv) for n in leads}
    codes, _, _ = interpret(changes)
    assert ("T_WAVE_INVERSION" in codes) is inverted


def test_t_inversion_after_a_negative_limb_qrs_is_normal() -> None:
    changes = {n: lead(0, 100, 600, t_uv=-200.0) for n in ("III", "aVF")}
    codes, _, _ = interpret(changes)
    assert "T_WAVE_INVERSION" not in codes


def test_rbbb_t_inversion_in_v1_v3_is_secondary() -> None:
    inverted = {
        n: replace(RBBB_LEADS.get(n, NORMAL_LEADS[n]), t_uv=-300.0) for n in ("V1", "V2", "V3")
    }
    codes, _, _ = interpret({**RBBB_LEADS, **inverted}, qrs_ms=130.0)
    assert "SECONDARY_ST_T_CHANGES" in codes
    assert "T_WAVE_INVERSION" not in codes


def test_every_morphology_code_is_a_statement_code_and_reachable() -> None:
    seen: set[str] = set()
    cases: list[dict[str, Any]] = [
        {"changes": RBBB_LEADS, "qrs_ms": 130.0},
        {"changes": RBBB_LEADS, "qrs_ms": 115.0},
        {"changes": LBBB_LEADS, "qrs_ms": 150.0},
        {"changes": LBBB_LEADS, "qrs_ms": 150.0, "paced": True},
        {"changes": {"aVL": lead(100, 800, 0, r_peak_time_ms=50.0)}, "qrs_axis_deg": -60.0},
        {
            "changes": {
                "I": lead(0, 100, 500),
                "aVL": lead(0, 100, 400),
                "III": lead(100, 800, 0),
                "aVF": lead(100, 700, 0),
            },
            "qrs_axis_deg": 110.0,
        },
        {"delta": True, "pr_ms": 100.0, "qrs_ms": 130.0},
        {"qrs_ms": 115.0, "qtc_bazett_ms": 330.0},
        {
            "changes": {
                "V1": lead(0, 900, 600, t_uv=-300.0),
                "V5": lead(60, 3000, 0),
                "V2": lead(0, 500, 500, t_uv=-300.0),
                "V3": lead(0, 500, 500, t_uv=-300.0),
            },
            "qrs_axis_deg": 100.0,
        },
        {
            "changes": {
                n: replace(
                    NORMAL_LEADS[n],
                    qrs_peak_to_peak_uv=300.0,
                    q_uv=200.0,
                    q_ms=45.0,
                    st_j_uv=-60.0,
                    st_j60_uv=-60.0,
                )
                for n in ("I", "II", "III", "aVR", "aVL", "aVF", "V2", "V3")
            }
        },
        {
            "changes": {
                n: replace(NORMAL_LEADS[n], st_j_uv=200.0, st_j60_uv=200.0) for n in ("II", "aVF")
            }
        },
    ]
    for case in cases:
        case = dict(case)
        changes = case.pop("changes", None)
        seen |= interpret(changes, **case)[0]
    assert seen == set(CODES)
    assert {StatementCode(code) for code in CODES} <= set(StatementCode)


# ------------------------------------------------------------------ statements


def compose(morphology: Morphology, **measurements: float) -> tuple[set[StatementCode], bool]:
    statements, stemi = compose_statements(
        {"heart_rate_bpm": 70.0, "rr_max_ms": 900.0, **NORMAL_MEASUREMENTS, **measurements},
        st_deviation_uv={"II": 300.0, "aVF": 300.0},  # ignored once the leads are measured
        p_wave_fraction=1.0,
        rr_irregularity=0.02,
        n_premature=0,
        sampling_rate_hz=500.0,
        leads_off=[],
        noisy_leads=[],
        sex="M",
        age_years=60.0,
        morphology=morphology,
    )
    return {s.code for s in statements}, stemi


def test_a_named_block_replaces_the_wide_qrs_statement() -> None:
    codes, stemi = compose(Morphology(leads={**NORMAL_LEADS, **RBBB_LEADS}), qrs_ms=130.0)
    assert StatementCode.RBBB in codes
    assert StatementCode.WIDE_QRS not in codes
    assert not stemi  # the J-point levels of the leads decide, not st_deviation_uv


def test_the_suspected_stemi_follows_the_morphology_statement() -> None:
    lbbb = Morphology(leads={**NORMAL_LEADS, **LBBB_LEADS})
    assert compose(lbbb, qrs_ms=150.0)[1] is False
    concordant = replace(LBBB_LEADS["V6"], st_j_uv=200.0, st_j60_uv=200.0)
    codes, stemi = compose(
        Morphology(leads={**NORMAL_LEADS, **LBBB_LEADS, "V6": concordant}), qrs_ms=150.0
    )
    assert stemi
    assert StatementCode.ST_ELEVATION_STEMI_CRITERIA in codes


# ------------------------------------------------------------------ real records


def read_dev(name: str, age: float, sex: Sex) -> EcgRecord:
    val = io.loadmat(str(DATA / f"{name}.mat"))["val"].astype(np.float64)
    return EcgRecord(
        leads=LEADS,
        samples_uv=val,
        sampling_rate_hz=FS,
        source_format=EcgFormat.WFDB,
        patient=EcgPatient(sex=sex, age_years=age),
    )


def test_a_labelled_rbbb_is_stated_as_rbbb_without_a_stemi_alert() -> None:
    analysis = analyze_ecg(read_dev("E07509", 71.0, Sex.MALE))
    codes = {s.code for s in analysis.statements}
    assert StatementCode.RBBB in codes
    assert StatementCode.WIDE_QRS not in codes
    assert not analysis.suspected_stemi
    rbbb = next(s for s in analysis.statements if s.code is StatementCode.RBBB)
    assert "V1 rsR'" in rbbb.text_en


def test_a_labelled_rbbb_has_no_long_qt_from_its_wide_qrs() -> None:
    """E07509 (RBBB, QRS about 160 ms, 48 bpm): the Framingham QTc is over 450 ms only for
    the widened QRS; adjusted for it (about 414 ms) the QT is normal."""
    analysis = analyze_ecg(read_dev("E07509", 71.0, Sex.MALE))
    m = analysis.measurements
    qrs, qtc = m["qrs_ms"], m["qtc_framingham_ms"]
    assert qrs is not None
    assert qrs > 150
    assert qtc is not None
    assert qtc >= 450
    assert StatementCode.LONG_QTC not in {s.code for s in analysis.statements}


def test_a_labelled_normal_record_has_no_morphology_statement() -> None:
    analysis = analyze_ecg(read_dev("E07506", 66.0, Sex.FEMALE))
    codes = {s.code.value for s in analysis.statements}
    assert not codes & set(CODES)
    assert not analysis.suspected_stemi


def test_a_labelled_lvh_meets_the_cornell_voltage() -> None:
    analysis = analyze_ecg(read_dev("E07519", 73.0, Sex.FEMALE))
    lvh = [s for s in analysis.statements if s.code is StatementCode.LVH]
    assert len(lvh) == 1
    assert "Cornell RaVL + SV3" in lvh[0].text_en
    assert not analysis.suspected_stemi
