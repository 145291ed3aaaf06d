"""Rhythm, ectopy and AV-conduction statements (ecg/rhythm.py): synthetic beat trains built
just inside and just outside each criterion, and the labelled development ECGs."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pytest
from scipy import signal as sps

from ecg import STANDARD_LEADS, EcgFormat, EcgRecord
from ecg.analysis import analyze_ecg
from ecg.atrial import assess_av_conduction
from ecg.formats.wfdb import read_wfdb
from ecg.rhythm import RhythmFindings, av_block, describe_rhythm
from ecg.statements import StatementCode
from tests.ecg_file import ECG12_DEV
from tests.unit.ecg.signal_support import gaussian

C = StatementCode
FS = 500.0
#: Lead gains of the synthetic beats (a frontal axis near +60, R progression in V1–V6).
GAINS = (0.8, 1.0, 0.4, -0.9, 0.2, 0.7, -0.5, 0.3, 0.8, 1.2, 1.1, 0.9)
#: ... and of the P waves (upright in I, II and aVF, inverted in aVR, small in the V leads):
#: atria and ventricles do not project alike.
P_GAINS = (0.6, 1.0, 0.5, -0.8, 0.1, 0.8, 0.3, 0.2, 0.2, 0.15, 0.1, 0.1)


@dataclass(frozen=True)
class Beat:
    """One synthetic beat: R time (s), PR (s) or None without P, ventricular or not."""

    at: float
    pr: float | None = 0.16
    ventricular: bool = False


def _record(
    beats: Sequence[Beat],
    *,
    f_waves: bool = False,
    duration: float = 10.0,
    blocked_p: Sequence[float] = (),
    flutter_uv: float = 0.0,
) -> EcgRecord:
    """12 leads of `beats`, with f waves, and with P waves that no QRS follows (onsets)."""
    t = np.arange(round(duration * FS)) / FS
    base = np.zeros_like(t)
    atrial = np.zeros_like(t)
    for onset in blocked_p:
        atrial += 120.0 * gaussian(t, onset + 0.04, 0.022)
    for beat in beats:
        b = beat.at
        if beat.pr is not None:
            atrial += 120.0 * gaussian(t, b - beat.pr + 0.04, 0.022)
        if beat.ventricular:
            base -= 900.0 * gaussian(t, b, 0.030)
            base += 500.0 * gaussian(t, b + 0.06, 0.025)
            base += 350.0 * gaussian(t, b + 0.30, 0.06)
        else:
            base -= 100.0 * gaussian(t, b - 0.03, 0.008)
            base += 1000.0 * gaussian(t, b, 0.010)
            base -= 200.0 * gaussian(t, b + 0.03, 0.008)
            base += 300.0 * gaussian(t, b + 0.22, 0.04)
    if flutter_uv:
        # Sawtooth flutter waves at 300/min, negative in the inferior leads.
        atrial += -flutter_uv * sps.sawtooth(2 * np.pi * 5.0 * t, width=0.8)
    rows = [gain * base + p_gain * atrial for gain, p_gain in zip(GAINS, P_GAINS, strict=True)]
    if f_waves:
        rng = np.random.default_rng(7)
        phase = np.cumsum(2 * np.pi * (6.0 + 0.8 * rng.standard_normal(t.size)) / FS)
        rows = [row + 40.0 * np.sin(phase + i) for i, row in enumerate(rows)]
    return EcgRecord(
        leads=STANDARD_LEADS,
        samples_uv=np.vstack(rows),
        sampling_rate_hz=FS,
        source_format=EcgFormat.CSV,
    )


def _train(rr: Sequence[float], start: float = 0.5) -> list[Beat]:
    times = start + np.concatenate([[0.0], np.cumsum(rr)])
    return [Beat(float(at)) for at in times if at < 9.4]


def _codes(record: EcgRecord) -> tuple[set[StatementCode], dict[StatementCode, str]]:
    statements = analyze_ecg(record).statements
    return {s.code for s in statements}, {s.code: s.text_en for s in statements}


def _sinus(rate: float = 72.0, pr: float = 0.16) -> list[Beat]:
    rr = 60.0 / rate
    return [Beat(float(at), pr=pr) for at in np.arange(0.5, 9.4, rr)]


def _with_ectopic(beats: list[Beat], index: int, coupling: float, ectopic: Beat) -> list[Beat]:
    """Beat `index` replaced by `ectopic` at `coupling` of the RR; the next beat after a
    compensatory (ventricular) or resetting (atrial) pause."""
    rr = beats[1].at - beats[0].at
    out = beats[:index]
    at = beats[index - 1].at + coupling * rr
    out.append(Beat(at, pr=ectopic.pr, ventricular=ectopic.ventricular))
    shift = (beats[index - 1].at + 2 * rr) if ectopic.ventricular else at + rr
    following = [Beat(b.at - beats[index + 1].at + shift, pr=b.pr) for b in beats[index + 1 :]]
    return out + [b for b in following if b.at < 9.4]


def test_sinus_rhythm_at_a_normal_rate_is_a_normal_ecg() -> None:
    codes, texts = _codes(_record(_sinus(72.0)))
    assert {C.NORMAL_ECG, C.SINUS_RHYTHM} <= codes
    assert not codes & {C.PAC, C.PVC, C.ATRIAL_FIBRILLATION, C.FIRST_DEGREE_AV_BLOCK}
    assert "rate 72 bpm" in texts[C.SINUS_RHYTHM]


@pytest.mark.parametrize(
    ("rate", "code"), [(50.0, C.SINUS_BRADYCARDIA), (120.0, C.SINUS_TACHYCARDIA)]
)
def test_sinus_rates_outside_60_to_100_are_named_and_not_normal(
    rate: float, code: StatementCode
) -> None:
    codes, _ = _codes(_record(_sinus(rate)))
    assert code in codes
    assert C.NORMAL_ECG not in codes


def test_a_premature_narrow_beat_with_a_p_wave_is_a_pac() -> None:
    beats = _with_ectopic(_sinus(72.0), 6, 0.70, Beat(0.0, pr=0.16))
    codes, texts = _codes(_record(beats))
    assert C.PAC in codes
    assert C.PVC not in codes
    assert "1 of" in texts[C.PAC]
    assert C.NORMAL_ECG not in codes


def test_a_premature_wide_beat_without_p_wave_is_a_pvc() -> None:
    beats = _with_ectopic(_sinus(72.0), 6, 0.65, Beat(0.0, pr=None, ventricular=True))
    codes, texts = _codes(_record(beats))
    assert C.PVC in codes
    assert C.PAC not in codes
    assert "Premature ventricular complexes: 1 of" in texts[C.PVC]
    assert C.SINUS_RHYTHM in codes


def test_a_beat_just_outside_the_prematurity_limit_is_not_ectopic() -> None:
    """At 90 % of the RR (limit: 85 %) a narrow beat with its P wave is not called a PAC;
    at 75 % it is."""
    late = _with_ectopic(_sinus(60.0), 5, 0.90, Beat(0.0, pr=0.16))
    early = _with_ectopic(_sinus(60.0), 5, 0.75, Beat(0.0, pr=0.16))
    assert C.PAC not in _codes(_record(late))[0]
    assert C.PAC in _codes(_record(early))[0]


def test_irregular_rr_without_p_waves_is_atrial_fibrillation_with_its_rate() -> None:
    rng = np.random.default_rng(3)
    rr = rng.uniform(0.45, 1.0, 20).tolist()
    beats = [Beat(b.at, pr=None) for b in _train(rr)]
    codes, texts = _codes(_record(beats, f_waves=True))
    assert C.ATRIAL_FIBRILLATION in codes
    assert not codes & {C.SINUS_RHYTHM, C.NORMAL_ECG, C.PAC}
    assert "ventricular" in texts[C.ATRIAL_FIBRILLATION]
    assert "bpm" in texts[C.ATRIAL_FIBRILLATION]


def test_irregular_rr_with_consistent_p_waves_is_not_atrial_fibrillation() -> None:
    rng = np.random.default_rng(3)
    rr = rng.uniform(0.75, 1.05, 20).tolist()
    codes, _ = _codes(_record(_train(rr)))
    assert C.ATRIAL_FIBRILLATION not in codes
    assert codes & {C.SINUS_RHYTHM, C.SINUS_BRADYCARDIA}


@pytest.mark.parametrize(("pr", "block"), [(0.25, True), (0.17, False)])
def test_first_degree_av_block_on_a_long_pr(pr: float, block: bool) -> None:
    codes, texts = _codes(_record(_sinus(70.0, pr=pr)))
    assert (C.FIRST_DEGREE_AV_BLOCK in codes) is block
    if block:
        assert "> 200 ms" in texts[C.FIRST_DEGREE_AV_BLOCK]


def _av_train(prs: Sequence[float | None], pp: float = 0.8) -> tuple[list[Beat], list[float]]:
    """Sinus P waves every `pp` s, each conducted at its PR (s) or blocked (None)."""
    beats: list[Beat] = []
    blocked: list[float] = []
    for k, pr in enumerate(prs):
        onset = 0.4 + k * pp
        if pr is None:
            blocked.append(onset)
        else:
            beats.append(Beat(onset + pr, pr=pr))
    return [b for b in beats if b.at < 9.4], [o for o in blocked if o < 9.3]


AV_CASES = {
    "2:1": [0.16, None] * 6,
    "mobitz_ii": [0.16, 0.16, 0.16, None] * 3,
    "mobitz_i": [0.16, 0.24, 0.29, None] * 3,
}


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("2:1", C.AV_BLOCK_2_TO_1),
        ("mobitz_ii", C.SECOND_DEGREE_AV_BLOCK_MOBITZ_II),
        ("mobitz_i", C.SECOND_DEGREE_AV_BLOCK_MOBITZ_I),
    ],
)
def test_second_degree_av_block_from_p_waves_found_apart_from_the_qrs(
    case: str, code: StatementCode
) -> None:
    beats, blocked = _av_train(AV_CASES[case])
    codes, texts = _codes(_record(beats, blocked_p=blocked))
    assert code in codes
    assert "not conducted" in texts[code]
    assert C.NORMAL_ECG not in codes


def test_every_p_wave_conducted_is_no_av_block() -> None:
    beats, blocked = _av_train([0.16] * 12)
    assert blocked == []
    codes, _ = _codes(_record(beats))
    assert not codes & {
        C.AV_BLOCK_2_TO_1,
        C.SECOND_DEGREE_AV_BLOCK_MOBITZ_I,
        C.SECOND_DEGREE_AV_BLOCK_MOBITZ_II,
        C.THIRD_DEGREE_AV_BLOCK,
    }


def _onsets(seconds: Sequence[float]) -> npt.NDArray[np.int64]:
    return np.round(np.asarray(seconds) * FS).astype(np.int64)


def test_av_dissociation_is_third_degree_av_block() -> None:
    p = [0.4 + 0.8 * k for k in range(12)]  # atria at 75 bpm
    q = [0.9 + 1.5 * k for k in range(6)]  # ventricles at 40 bpm, unrelated
    av = assess_av_conduction(_onsets(p), _onsets(q), FS)
    assert av is not None
    assert av.pattern == "third_degree"
    assert round(av.atrial_rate_bpm) == 75
    assert "THIRD_DEGREE_AV_BLOCK" in {t.code for t in av_block(av)}


def test_irregular_p_waves_say_nothing_about_av_conduction() -> None:
    """A blocked premature P wave breaks the P–P regularity: not an AV block."""
    p = [0.4, 1.2, 2.0, 2.5, 2.8, 3.6, 4.4, 5.2]
    q = [x + 0.16 for x in p if x != 2.5]
    assert assess_av_conduction(_onsets(p), _onsets(q), FS) is None


@pytest.mark.parametrize(
    ("prs", "pattern"),
    [
        ([0.16, 0.205, 0.21, None] * 3, "mobitz_i"),  # PR 50 ms longer before the drop
        ([0.16, 0.18, 0.195, None] * 3, "mobitz_ii"),  # PR range 35 ms: constant
    ],
)
def test_mobitz_i_and_ii_at_the_pr_limits(prs: list[float | None], pattern: str) -> None:
    p = [0.4 + 0.8 * k for k in range(len(prs))]
    q = [x + pr for x, pr in zip(p, prs, strict=True) if pr is not None]
    av = assess_av_conduction(_onsets(p), _onsets(q), FS)
    assert av is not None
    assert av.pattern == pattern


@pytest.mark.parametrize(("every", "ratio"), [(4, "4:1"), (5, "5:1")])
def test_flutter_waves_at_300_per_minute_are_atrial_flutter(every: int, ratio: str) -> None:
    """(With 3:1 conduction the T waves at the ventricular rate outweigh the flutter waves in
    the spectrum: not yet recognised, see ecg.atrial; 2:1 below.)"""
    beats = [Beat(0.5 + k * 0.2 * every, pr=None) for k in range(round(8.8 / (0.2 * every)))]
    codes, texts = _codes(_record(beats, flutter_uv=150.0))
    assert C.ATRIAL_FLUTTER in codes
    assert not codes & {C.SINUS_TACHYCARDIA, C.SINUS_RHYTHM, C.ATRIAL_FIBRILLATION}
    assert "300/min" in texts[C.ATRIAL_FLUTTER]
    assert f"{ratio} conduction" in texts[C.ATRIAL_FLUTTER]


#: Lead gains of a second, later T-wave component: the T loop is not a line over the leads.
T_LOOP_GAINS = (0.3, 0.9, 0.8, -0.6, -0.3, 0.9, 0.6, 1.0, 0.9, 0.6, 0.4, 0.3)


def _tachycardia(
    rate: float, *, flutter_uv: float = 0.0, pr: float | None = None, loop_uv: float = 0.0
) -> EcgRecord:
    """12 leads at a regular `rate`: narrow QRS, a T wave (with a second component of
    `loop_uv` in other proportions over the leads), P waves at `pr` before each QRS or
    sawtooth flutter waves at twice the rate, and 20 µV of white noise when `loop_uv`."""
    t = np.arange(round(10.0 * FS)) / FS
    base, late, atrial = np.zeros_like(t), np.zeros_like(t), np.zeros_like(t)
    for b in np.arange(0.5, 9.4, 60.0 / rate):
        base += 1000.0 * gaussian(t, b, 0.010) - 100.0 * gaussian(t, b - 0.03, 0.008)
        base += 300.0 * gaussian(t, b + 0.20, 0.04) - 200.0 * gaussian(t, b + 0.03, 0.008)
        late += loop_uv * gaussian(t, b + 0.24, 0.035)
        if pr is not None:
            atrial += 120.0 * gaussian(t, b - pr + 0.04, 0.022)
    if flutter_uv:
        atrial -= flutter_uv * sps.sawtooth(2 * np.pi * (2.0 * rate / 60.0) * t, width=0.8)
    noise = np.random.default_rng(3).normal(0.0, 20.0 if loop_uv else 0.0, (12, t.size))
    rows = [
        gain * base + loop * late + p_gain * atrial
        for gain, loop, p_gain in zip(GAINS, T_LOOP_GAINS, P_GAINS, strict=True)
    ]
    return EcgRecord(
        leads=STANDARD_LEADS,
        samples_uv=np.vstack(rows) + noise,
        sampling_rate_hz=FS,
        source_format=EcgFormat.CSV,
    )


@pytest.mark.parametrize(
    ("rate", "flutter_uv", "loop_uv"),
    [(150.0, 100.0, 0.0), (150.0, 150.0, 250.0), (140.0, 100.0, 150.0), (160.0, 150.0, 150.0)],
)
def test_flutter_with_2_to_1_conduction_near_150_is_atrial_flutter(
    rate: float, flutter_uv: float, loop_uv: float
) -> None:
    """Half of the flutter waves hidden in the QRS and T: the atrial activity repeats every
    half RR interval once the T wave's direction over the leads is projected out."""
    codes, texts = _codes(_tachycardia(rate, flutter_uv=flutter_uv, loop_uv=loop_uv))
    assert C.ATRIAL_FLUTTER in codes
    assert not codes & {C.SUPRAVENTRICULAR_TACHYCARDIA, C.SINUS_TACHYCARDIA}
    assert f"{2 * rate:.0f}/min" in texts[C.ATRIAL_FLUTTER]
    assert "2:1 conduction" in texts[C.ATRIAL_FLUTTER]


@pytest.mark.parametrize(
    ("rate", "flutter"), [(121.0, True), (117.0, False), (168.0, True), (173.0, False)]
)
def test_2_to_1_flutter_waves_must_be_at_240_to_340_per_minute(rate: float, flutter: bool) -> None:
    """Ventricles at 121 and 168/min put 2:1 flutter waves at 242 and 336/min, inside the
    flutter range; at 117 and 173/min they would be at 234 and 346/min, outside it."""
    codes, _ = _codes(_tachycardia(rate, flutter_uv=100.0))
    assert (C.ATRIAL_FLUTTER in codes) is flutter


@pytest.mark.parametrize("rate", [140.0, 150.0, 160.0])
@pytest.mark.parametrize(("pr", "loop_uv"), [(0.12, 0.0), (0.16, 0.0), (0.16, 250.0)])
def test_sinus_tachycardia_with_p_on_t_is_not_2_to_1_flutter(
    rate: float, pr: float, loop_uv: float
) -> None:
    """One P wave per RR does not repeat every half RR, and the T waves' second harmonic at
    twice the rate (in the flutter band) is not taken for flutter waves."""
    codes, _ = _codes(_tachycardia(rate, pr=pr, loop_uv=loop_uv))
    assert C.ATRIAL_FLUTTER not in codes


def test_sinus_tachycardia_at_150_and_tiny_undulation_are_not_flutter() -> None:
    assert C.ATRIAL_FLUTTER not in _codes(_record(_sinus(150.0)))[0]
    beats = [Beat(0.5 + k * 0.8) for k in range(11)]
    assert C.ATRIAL_FLUTTER not in _codes(_record(beats, flutter_uv=10.0))[0]


def _findings(**changes: object) -> RhythmFindings:
    values: dict[str, object] = {
        "kinds": ("N",) * 10,
        "rr_ms": (800.0,) * 9,
        "irregularity": 0.02,
        "p_share": 1.0,
        "pr_ms": 160.0,
        "qrs_ms": 90.0,
        "p_axis_deg": 50.0,
    }
    values.update(changes)
    return RhythmFindings(**values)  # type: ignore[arg-type]


def _described(findings: RhythmFindings, rate: float = 75.0, pr: float | None = None) -> set[str]:
    return {text.code for text in describe_rhythm(findings, rate, pr)}


@pytest.mark.parametrize(
    ("changes", "rate", "present", "absent"),
    [
        ({"pr_ms": 201.0}, 75.0, "FIRST_DEGREE_AV_BLOCK", "SINUS_TACHYCARDIA"),
        ({"pr_ms": 200.0}, 75.0, "SINUS_RHYTHM", "FIRST_DEGREE_AV_BLOCK"),
        (
            {"irregularity": 0.09, "p_share": 0.4, "median_p_wave": False},
            90.0,
            "ATRIAL_FIBRILLATION",
            "SINUS_RHYTHM",
        ),
        (
            {"irregularity": 0.07, "p_share": 0.4, "median_p_wave": False},
            90.0,
            None,
            "ATRIAL_FIBRILLATION",
        ),
        ({"irregularity": 0.09, "p_share": 0.5}, 90.0, "SINUS_RHYTHM", "ATRIAL_FIBRILLATION"),
        ({"p_share": 0.1, "median_p_wave": False}, 150.0, "SUPRAVENTRICULAR_TACHYCARDIA", None),
        ({"p_share": 0.1, "median_p_wave": False}, 55.0, "JUNCTIONAL_RHYTHM", None),
        (
            {"p_share": 0.1, "median_p_wave": False, "qrs_ms": 150.0},
            40.0,
            "VENTRICULAR_RHYTHM",
            "JUNCTIONAL_RHYTHM",
        ),
        ({"p_share": 0.3, "median_p_wave": False}, 55.0, None, "JUNCTIONAL_RHYTHM"),
        ({"p_axis_deg": -60.0}, 130.0, "ATRIAL_TACHYCARDIA", "SINUS_TACHYCARDIA"),
        ({"rr_ms": (700.0, 880.0) * 4 + (800.0,)}, 75.0, "SINUS_ARRHYTHMIA", None),
        ({"rr_ms": (740.0, 880.0) * 4 + (800.0,)}, 75.0, None, "SINUS_ARRHYTHMIA"),
    ],
)
def test_rhythm_criteria_just_inside_and_outside(
    changes: dict[str, object], rate: float, present: str | None, absent: str | None
) -> None:
    codes = _described(_findings(**changes), rate)
    if present is not None:
        assert present in codes
    if absent is not None:
        assert absent not in codes


def test_first_degree_needs_both_the_median_and_the_beat_by_beat_pr_over_200() -> None:
    assert "FIRST_DEGREE_AV_BLOCK" in _described(_findings(pr_ms=230.0), pr=210.0)
    assert "FIRST_DEGREE_AV_BLOCK" not in _described(_findings(pr_ms=230.0), pr=196.0)
    assert "FIRST_DEGREE_AV_BLOCK" not in _described(_findings(pr_ms=150.0), pr=222.0)


@pytest.mark.parametrize(
    ("kinds", "words"),
    [
        ("NVNVNVNNNN", "bigeminy"),
        ("NNVNNVNNVN", "trigeminy"),
        ("NNVVNNNNNN", "1 couplet(s)"),
        ("NNVVVVNNNN", "run(s) of three or more (longest 4 beats)"),
    ],
)
def test_ectopy_patterns_are_named(kinds: str, words: str) -> None:
    texts = describe_rhythm(_findings(kinds=tuple(kinds)), 75.0)
    pvc = next(t for t in texts if t.code == "PVC")
    assert words in pvc.en
    assert f"{kinds.count('V')} of 10 beats" in pvc.en


def test_supraventricular_ectopy_is_not_named_in_atrial_fibrillation() -> None:
    findings = _findings(
        kinds=tuple("NSNNVNSNNN"), irregularity=0.2, p_share=0.1, median_p_wave=False
    )
    codes = _described(findings, 95.0)
    assert {"ATRIAL_FIBRILLATION", "PVC"} <= codes
    assert "PAC" not in codes


def _labelled() -> dict[str, set[str]]:
    with (ECG12_DEV / "labels.csv").open(encoding="utf-8") as handle:
        return {row["record"]: set(row["snomed_ct"].split(";")) for row in csv.DictReader(handle)}


def _analysed(name: str) -> set[StatementCode]:
    folder = ECG12_DEV / "records"
    files = {f"{name}{s}": (folder / f"{name}{s}").read_bytes() for s in (".hea", ".mat")}
    return {s.code for s in analyze_ecg(read_wfdb(files)).statements}


#: JS20005 (sinus tachycardia, frequent PACs and a PVC): the delineator finds P waves before
#: under a third of its beats and none on the median beat, so it reads as AF, whose PACs are
#: not stated. A known miss, kept visible in test_no_development_record_is_called_af.
KNOWN_FALSE_AF = {"JS20005"}
PAC_RECORDS = sorted(
    n for n, labels in _labelled().items() if "284470004" in labels and n not in KNOWN_FALSE_AF
)


@pytest.mark.parametrize("name", PAC_RECORDS)
def test_labelled_pac_records_have_a_pac_statement(name: str) -> None:
    assert C.PAC in _analysed(name)


@pytest.mark.parametrize("name", ["JS20004", "JS20005", "JS20006", "JS20012"])
def test_labelled_pvc_records_have_a_pvc_statement(name: str) -> None:
    assert C.PVC in _analysed(name)


@pytest.mark.parametrize("name", ["E07506", "E07515", "E07518", "HR06004", "HR06005"])
def test_labelled_normal_sinus_records_are_normal_ecgs(name: str) -> None:
    codes = _analysed(name)
    assert C.SINUS_RHYTHM in codes
    assert not codes & {C.ATRIAL_FIBRILLATION, C.PAC, C.PVC, C.FIRST_DEGREE_AV_BLOCK}
    # normal unless a criterion elsewhere is met (HR06005: Cornell voltage 2.04 mV in a woman,
    # just past 2.0 mV; the statement says so and the reader decides)
    assert (C.NORMAL_ECG in codes) is not any(code.abnormal for code in codes)


def test_no_development_record_has_a_second_or_third_degree_av_block() -> None:
    """None of the 50 is labelled with one; the P-wave search must not invent dropped beats."""
    blocks = {
        C.AV_BLOCK_2_TO_1,
        C.SECOND_DEGREE_AV_BLOCK_MOBITZ_I,
        C.SECOND_DEGREE_AV_BLOCK_MOBITZ_II,
        C.THIRD_DEGREE_AV_BLOCK,
    }
    assert [name for name in _labelled() if _analysed(name) & blocks] == []


def test_no_development_record_is_called_atrial_flutter() -> None:
    """None of the 50 is labelled flutter; among them are regular sinus and atrial
    tachycardias at 120-150/min (E07501, HR06003, JS20013), where 2:1 flutter is looked for."""
    assert [name for name in _labelled() if C.ATRIAL_FLUTTER in _analysed(name)] == []


def test_no_development_record_is_called_af() -> None:
    """None of the 50 has AF (many are sinus tachycardia with PACs, the usual false alarm);
    only the known miss is called so."""
    called = {name for name in _labelled() if C.ATRIAL_FIBRILLATION in _analysed(name)}
    assert called <= KNOWN_FALSE_AF
