"""The analysis recipe on real and synthetic ECGs: measurements, statements, STEMI, input."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import wfdb

from ecg import EcgFormat, EcgRecord
from ecg.analysis import MEASUREMENT_KEYS, analyze_ecg, merge_device_spikes
from ecg.delineate import delineate_beats
from ecg.detect import detect_r_peaks
from ecg.errors import EcgError
from ecg.filters import clean_ecg, remove_pacer_spikes
from ecg.record import EcgPacemakerSpike
from ecg.statements import StatementCode, meets_stemi_criteria
from tests.ecg_file import ECG_DATA
from tests.unit.ecg.conftest import read_file
from tests.unit.ecg.signal_support import gaussian, synthetic_record

MUSE_FILES = [f"ge_muse_xml/braveheart_example{i}.xml" for i in range(1, 5)]


@pytest.mark.parametrize("name", MUSE_FILES)
def test_rate_and_axes_agree_with_ge_muse(name: str) -> None:
    record = read_file(name)
    device = record.device_measurements
    ours = analyze_ecg(record).measurements
    assert ours["heart_rate_bpm"] == pytest.approx(device["heart_rate_bpm"], abs=5.0)
    for key in ("p_axis_deg", "qrs_axis_deg", "t_axis_deg"):
        assert ours[key] == pytest.approx(device[key], abs=15.0), key


@pytest.mark.parametrize("name", MUSE_FILES)
def test_intervals_agree_with_ge_muse_within_10_ms(name: str) -> None:
    record = read_file(name)
    device = record.device_measurements
    ours = analyze_ecg(record).measurements
    for key in ("pr_ms", "qrs_ms", "qt_ms"):
        assert ours[key] == pytest.approx(device[key], abs=10.0), key


def test_paced_ge_muse_example4_has_its_stimuli_removed() -> None:
    record = read_file(MUSE_FILES[3])
    analysis = analyze_ecg(record)
    assert any("pacemaker stimuli" in w for w in analysis.warnings)
    # 12SL measures the paced QRS itself, not from the stimulus, which would add ~25 ms.
    assert analysis.measurements["qrs_ms"] == pytest.approx(
        record.device_measurements["qrs_ms"], abs=10.0
    )


def test_ge_muse_example4_reads_as_an_atrial_sensed_ventricular_paced_rhythm() -> None:
    """Its P waves each followed by a ventricular stimulus: named as paced, and its wide,
    left-axis paced complexes and the programmed AV delay are not read as native ones."""
    analysis = analyze_ecg(read_file(MUSE_FILES[3]))
    codes = [s.code for s in analysis.statements]
    assert codes == [StatementCode.VENTRICULAR_PACED_RHYTHM]
    assert "atrial-sensed ventricular-paced" in analysis.statements[0].text_en
    assert "10 of 10 beats" in analysis.statements[0].text_en
    assert not analysis.suspected_stemi


def test_unpaced_ge_muse_files_have_no_pacing_statement() -> None:
    paced = {StatementCode.VENTRICULAR_PACED_RHYTHM, StatementCode.ATRIAL_PACED_RHYTHM,
             StatementCode.INTERMITTENT_PACING}  # fmt: skip
    for name in MUSE_FILES[:3]:
        assert not paced & {s.code for s in analyze_ecg(read_file(name)).statements}, name


def test_synthetic_inferior_st_elevation_is_flagged_as_suspected_stemi() -> None:
    # the hump peaks 140 ms after R: 400 µV there put the J point about 0.13 mV up
    record = synthetic_record(st_uv={"II": 400.0, "III": 400.0, "aVF": 400.0})
    analysis = analyze_ecg(record)
    assert analysis.suspected_stemi
    assert analysis.st_deviation_uv["III"] > 100.0
    stemi = [s for s in analysis.statements if s.code is StatementCode.ST_ELEVATION_STEMI_CRITERIA]
    assert len(stemi) == 1
    assert "II" in stemi[0].text_en
    assert "STEMI" in stemi[0].text_zh


def test_synthetic_normal_ecg_is_not_flagged() -> None:
    analysis = analyze_ecg(synthetic_record())
    assert not analysis.suspected_stemi
    assert analysis.measurements["heart_rate_bpm"] == pytest.approx(72.0, abs=1.0)
    assert StatementCode.SINUS_RHYTHM in {s.code for s in analysis.statements}


def test_ptb_infarction_record_shows_no_acute_st_elevation() -> None:
    """PTB s0010_re (old infarction, woman, 81): ST below the STEMI thresholds."""
    analysis = analyze_ecg(read_file("wfdb_12lead/s0010_re.hea"))
    assert not analysis.suspected_stemi
    assert analysis.measurements["heart_rate_bpm"] == pytest.approx(82.0, abs=5.0)
    assert max(analysis.st_deviation_uv[lead] for lead in ("V1", "V2", "V3")) < 0.0


def test_stemi_criteria_need_two_contiguous_leads() -> None:
    assert meets_stemi_criteria({"II": 150.0, "V4": 150.0}) == []
    assert meets_stemi_criteria({"V2": 160.0, "V3": 160.0}, sex="F") == ["V2", "V3"]
    assert meets_stemi_criteria({"V2": 160.0, "V3": 160.0}, sex="M", age_years=50) == []


def test_two_lead_mitdb_record_at_its_own_rate() -> None:
    path = str(ECG_DATA / "mitdb" / "100")
    raw = wfdb.rdrecord(path, sampto=360 * 30)
    record = EcgRecord(
        leads=tuple(raw.sig_name),
        samples_uv=raw.p_signal.T * 1000.0,
        sampling_rate_hz=float(raw.fs),
        source_format=EcgFormat.WFDB,
    )
    analysis = analyze_ecg(record)
    assert 30 <= analysis.r_peaks.size <= 45
    assert len(analysis.beats) == analysis.r_peaks.size
    assert analysis.measurements["qrs_axis_deg"] is None  # no limb-lead pair
    assert analysis.measurements["qrs_ms"] is not None


def test_qtdb_qrs_onsets_agree_with_cardiologist() -> None:
    """Clinical check on development window sel100: mean QRS-onset error within 10 ms."""
    path = str(ECG_DATA / "qtdb" / "sel100")
    raw = wfdb.rdrecord(path)
    fs = float(raw.fs)
    clean = clean_ecg(raw.p_signal.T * 1000.0, fs)
    peaks = detect_r_peaks(clean, fs)
    beats = delineate_beats(clean, fs, peaks)
    q1c = wfdb.rdann(path, "q1c")
    onsets = [q1c.sample[i - 1] for i, s in enumerate(q1c.symbol) if s == "N" and i > 0]
    errors = []
    for onset in onsets:
        k = int(np.argmin(np.abs(peaks - onset)))
        found = beats[k].qrs_on
        assert found is not None
        errors.append((found - onset) * 1000.0 / fs)
    assert abs(float(np.mean(errors))) < 10.0


def _q1c_errors_ms(name: str, wave: str, boundary: str) -> list[float]:
    """Our per-beat boundary minus cardiologist 1's, ms, on a development window."""
    path = str(ECG_DATA / "qtdb" / name)
    raw = wfdb.rdrecord(path)
    fs = float(raw.fs)
    clean = clean_ecg(np.nan_to_num(raw.p_signal.T * 1000.0), fs)
    peaks = detect_r_peaks(clean, fs)
    beats = delineate_beats(clean, fs, peaks)
    q1c = wfdb.rdann(path, "q1c")
    symbols = list(q1c.symbol)
    errors = []
    for i, sym in enumerate(symbols):
        if sym != wave:
            continue
        ref = {"on": i - 1, "peak": i, "off": i + 1}[boundary]
        if not 0 <= ref < len(symbols):
            continue
        k = int(np.argmin(np.abs(peaks - q1c.sample[i])))
        found = getattr(beats[k], {"t": "t_", "p": "p_"}[wave] + boundary)
        if found is not None:
            errors.append((found - int(q1c.sample[ref])) * 1000.0 / fs)
    return errors


def test_t_peak_on_a_fast_rhythm_is_not_the_next_p_wave() -> None:
    """sel41 (dev): P waves ride on the end of the T waves; the T peak must stay the T's."""
    errors = _q1c_errors_ms("sel41", "t", "peak")
    assert len(errors) >= 20
    assert abs(float(np.median(errors))) < 40.0


def test_long_qt_is_measured_not_clipped_by_the_t_peak_bound() -> None:
    """Synthetic 60 bpm beats with the T peak 420 ms after R: QT well over 500 ms."""
    fs = 500.0
    t = np.arange(round(10.0 * fs)) / fs
    rows = []
    for gain in (1.0, 0.8, 0.6):
        x = np.zeros_like(t)
        for b in np.arange(0.5, 9.5, 1.0):
            x += gain * 120.0 * gaussian(t, b - 0.16, 0.025)
            x += gain * 1000.0 * gaussian(t, b, 0.010)
            x -= gain * 200.0 * gaussian(t, b + 0.03, 0.008)
            x += gain * 300.0 * gaussian(t, b + 0.42, 0.05)
        rows.append(x)
    record = EcgRecord(
        leads=("I", "II", "V5"),
        samples_uv=np.vstack(rows),
        sampling_rate_hz=fs,
        source_format=EcgFormat.CSV,
    )
    qt = analyze_ecg(record).measurements["qt_ms"]
    assert qt is not None
    assert qt > 520.0


def test_to_dict_is_json_with_the_public_contract_keys() -> None:
    analysis = analyze_ecg(synthetic_record())
    data = json.loads(json.dumps(analysis.to_dict(), ensure_ascii=False))
    for key in MEASUREMENT_KEYS:
        assert key in data
        assert key in data["measurements"]
    assert data["r_peaks"] == [int(p) for p in analysis.r_peaks]
    assert set(data["beats"][0]) == {"p_on", "p_off", "qrs_on", "qrs_off", "t_peak", "t_off"}
    assert {"code", "text_zh", "text_en"} <= set(data["statements"][0])
    assert data["suspected_stemi"] is False


def test_flat_record_is_refused_as_lead_off() -> None:
    record = EcgRecord(
        leads=("I", "II"),
        samples_uv=np.zeros((2, 5000)),
        sampling_rate_hz=500.0,
        source_format=EcgFormat.CSV,
    )
    with pytest.raises(EcgError, match=r"no usable lead: every lead \(I, II\) is flat"):
        analyze_ecg(record)


def test_one_flat_lead_is_named_and_the_rest_analysed() -> None:
    record = synthetic_record()
    samples = record.samples_uv.copy()
    samples[1] = 0.0
    analysis = analyze_ecg(
        EcgRecord(
            leads=record.leads,
            samples_uv=samples,
            sampling_rate_hz=500.0,
            source_format=EcgFormat.CSV,
            patient=record.patient,
        )
    )
    lead_off = [s for s in analysis.statements if s.code is StatementCode.LEAD_OFF]
    assert lead_off
    assert "II" in lead_off[0].text_en
    assert analysis.measurements["heart_rate_bpm"] == pytest.approx(72.0, abs=1.0)


def test_very_short_record_is_refused() -> None:
    record = EcgRecord(
        leads=("I",),
        samples_uv=np.zeros((1, 300)),
        sampling_rate_hz=500.0,
        source_format=EcgFormat.CSV,
    )
    with pytest.raises(EcgError, match="at least 2 s"):
        analyze_ecg(record)


def test_low_sampling_rate_is_warned() -> None:
    record = synthetic_record(fs=125.0)
    codes = {s.code for s in analyze_ecg(record).statements}
    assert StatementCode.LOW_SAMPLING_RATE in codes


@pytest.mark.parametrize(
    ("before_r_s", "code"),
    [
        (0.065, StatementCode.VENTRICULAR_PACED_RHYTHM),  # just before the QRS
        (0.25, StatementCode.ATRIAL_PACED_RHYTHM),  # just before the P wave
    ],
)
def test_stimuli_before_the_qrs_or_the_p_wave_name_the_paced_chamber(
    before_r_s: float, code: StatementCode
) -> None:
    record = synthetic_record()
    samples = np.array(record.samples_uv, dtype=np.float64)
    fs = record.sampling_rate_hz
    beats = np.arange(0.4, record.duration_s - 0.6, 60.0 / 72.0)
    for b in beats:
        at = round((b - before_r_s) * fs)
        samples[:, at] += 3000.0  # a 2 ms stimulus in every lead
        samples[:, at + 1] -= 1500.0
    paced = EcgRecord(
        leads=record.leads,
        samples_uv=samples,
        sampling_rate_hz=fs,
        source_format=EcgFormat.CSV,
    )
    analysis = analyze_ecg(paced)
    assert code in {s.code for s in analysis.statements}
    assert StatementCode.SINUS_RHYTHM not in {s.code for s in analysis.statements}


# --- what the cart wrote into its file -------------------------------------------------------


def _without_stimuli(record: EcgRecord, spikes: tuple[EcgPacemakerSpike, ...]) -> EcgRecord:
    """The record as a cart that filters its stimuli out of the trace stores it."""
    samples, _ = remove_pacer_spikes(record.samples_uv, record.sampling_rate_hz)
    return replace(record, samples_uv=samples, device_pacemaker_spikes=spikes)


def test_the_carts_stimuli_pace_a_trace_that_no_longer_shows_them() -> None:
    """GE MUSE example 4 with its stimuli taken out of the trace: our filter finds none, and
    only the cart's stored stimuli (at the same instants) name the rhythm paced."""
    record = read_file(MUSE_FILES[3])
    _, found = remove_pacer_spikes(record.samples_uv, record.sampling_rate_hz)
    assert found.size >= 10
    cart = tuple(
        EcgPacemakerSpike(time_ms=1000.0 * s / record.sampling_rate_hz, triggers="QRS")
        for s in found
    )
    paced = {StatementCode.VENTRICULAR_PACED_RHYTHM, StatementCode.INTERMITTENT_PACING}

    blind = analyze_ecg(_without_stimuli(record, ()))
    assert blind.pacer_spikes.size == 0
    assert not paced & {s.code for s in blind.statements}

    told = analyze_ecg(_without_stimuli(record, cart))
    assert [s.code for s in told.statements][:1] == [StatementCode.VENTRICULAR_PACED_RHYTHM]
    assert told.pacer_spikes.tolist() == found.tolist()
    assert any(f"{found.size} pacemaker stimuli taken from the cart" in w for w in told.warnings)
    spikes = told.to_dict()["device_pacemaker_spikes"]
    assert [s["sample"] for s in spikes] == found.tolist()
    assert spikes[0]["triggers"] == "QRS"


def test_the_carts_stimuli_join_ours_once_each() -> None:
    cart = (
        EcgPacemakerSpike(time_ms=104.0),  # sample 52: ours at 50 is the same stimulus
        EcgPacemakerSpike(time_ms=600.0),  # sample 300: ours missed it
        EcgPacemakerSpike(time_ms=5000.0),  # past the end of the recording
    )
    merged = merge_device_spikes(np.array([50, 900], dtype=np.int64), cart, 500.0, 1000)
    assert merged.tolist() == [50, 300, 900]
    assert merge_device_spikes(np.zeros(0, np.int64), (), 500.0, 1000).tolist() == []


def test_the_carts_statements_and_lead_measurements_are_in_the_json() -> None:
    record = replace(
        synthetic_record(duration_s=4.0),
        device_statements=("Sinus rhythm", "Normal ECG"),
        device_lead_measurements={"V1": {"r_uv": 350.0, "s_uv": -1210.0, "qrs_ms": 96.0}},
    )
    out = json.loads(json.dumps(analyze_ecg(record).to_dict()))
    assert out["device_statements"] == ["Sinus rhythm", "Normal ECG"]
    assert out["device_lead_measurements"] == {
        "V1": {"r_uv": 350.0, "s_uv": -1210.0, "qrs_ms": 96.0}
    }
    assert out["device_pacemaker_spikes"] == []
