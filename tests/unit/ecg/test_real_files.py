"""Every file of tests/data/ecg/formats is read and its content is plausible.

Expected values (lead sets, rates, durations, device measurements) come from the files
themselves as documented in tests/data/ecg/README.md and the vendors' own fields.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pydicom
import pytest

from ecg import STANDARD_LEADS, EcgFormat, EcgRecord, Sex, detect_format
from ecg.analysis import DEVICE_TOLERANCE, INTERVAL_TOLERANCE_MS, analyze_ecg
from ecg.formats import read_dicom_waveform, read_hl7_aecg, read_scp_ecg

from .conftest import FORMATS, read_file

LIMB = ("I", "II", "III", "aVR", "aVL", "aVF")
TWELVE = STANDARD_LEADS


@dataclass(frozen=True)
class Expected:
    fmt: EcgFormat
    leads: tuple[str, ...]
    rate_hz: float
    duration_s: float
    measurements: Mapping[str, float] = field(default_factory=dict)
    statements: tuple[str, ...] = ()
    lead_ii_qrs_mv: tuple[float, float] = (0.3, 5.0)
    einthoven_max_uv: float | None = 15.0  # None: check the RMS ratio instead


GE_1: dict[str, float] = {
    "heart_rate_bpm": 48, "pr_ms": 138, "qrs_ms": 96, "qt_ms": 452, "qtc_ms": 403,
    "p_axis_deg": 51, "qrs_axis_deg": 20, "t_axis_deg": 40,
}  # fmt: skip
MORTARA_CLARK: dict[str, float] = {
    "p_ms": 102, "pr_ms": 148, "qrs_ms": 120, "qt_ms": 420, "qtc_ms": 443,
    "p_axis_deg": 44, "qrs_axis_deg": -61, "t_axis_deg": 86,
}  # fmt: skip

EXPECTED: dict[str, Expected] = {
    "contec_ecg90a/0000037.ECG": Expected(
        EcgFormat.CONTEC_ECG90A, LIMB, 800, 10.469,
        # this subject's lead II is low-voltage (largest limb lead is about 1 mV)
        lead_ii_qrs_mv=(0.15, 5.0),
    ),
    "contec_ecg90a/0000053.ECG": Expected(EcgFormat.CONTEC_ECG90A, TWELVE, 800, 37.185),
    "dicom_waveform/waveform_ecg.dcm": Expected(
        EcgFormat.DICOM, TWELVE, 1000, 10.0,
        {"rr_ms": 982, "pr_ms": 161, "qrs_ms": 75, "qt_ms": 368, "qtc_ms": 370,
         "p_axis_deg": 74, "qrs_axis_deg": 52, "t_axis_deg": 57},
        ("RITMO SINUSALE", "ECG NORMALE"),
    ),
    "ge_muse_xml/braveheart_example1.xml": Expected(
        EcgFormat.GE_MUSE_XML, TWELVE, 500, 10.0, GE_1
    ),
    "ge_muse_xml/braveheart_example2.xml": Expected(
        EcgFormat.GE_MUSE_XML, TWELVE, 500, 10.0,
        {"heart_rate_bpm": 65, "pr_ms": 184, "qrs_ms": 100, "qt_ms": 420, "qtc_ms": 437,
         "p_axis_deg": 42, "qrs_axis_deg": -2, "t_axis_deg": 12},
    ),
    "ge_muse_xml/braveheart_example3.xml": Expected(
        EcgFormat.GE_MUSE_XML, TWELVE, 500, 10.0,
        {"heart_rate_bpm": 59, "pr_ms": 164, "qrs_ms": 106, "qt_ms": 436, "qtc_ms": 432},
    ),
    "ge_muse_xml/braveheart_example4.xml": Expected(
        EcgFormat.GE_MUSE_XML, TWELVE, 500, 10.0,
        {"heart_rate_bpm": 61, "pr_ms": 209, "qrs_ms": 128, "qt_ms": 459, "qtc_ms": 463,
         "qrs_axis_deg": -66},
    ),
    "hl7_aecg/Example_aECG.xml": Expected(
        EcgFormat.HL7_AECG, TWELVE, 500, 10.0, MORTARA_CLARK, ("Sinus Rhythm",)
    ),
    "philips_xml/129DYPRG_v1.03.XML": Expected(
        EcgFormat.PHILIPS_XML, TWELVE, 500, 10.528,
        {"heart_rate_bpm": 41, "pr_ms": 151, "qrs_ms": 135, "qt_ms": 476, "qtc_ms": 393,
         "p_axis_deg": 66, "qrs_axis_deg": -21, "t_axis_deg": 59},
        ("Sinus bradycardia", "Inferior infarct, acute (LCx)"),
    ),
    "philips_xml/3191723_ZZDEMOPTONLY_v1.04.xml": Expected(
        EcgFormat.PHILIPS_XML, TWELVE, 500, 10.6,
        {"heart_rate_bpm": 84, "rr_ms": 714, "pr_ms": 144, "qrs_ms": 84, "qt_ms": 352,
         "qtc_ms": 417, "p_axis_deg": 81, "qrs_axis_deg": 78, "t_axis_deg": 67},
        ("SINUS RHYTHM", "PROBABLE LEFT VENTRICULAR HYPERTROPHY"),
    ),
    "philips_xml/2020-5-18_15-48-11_v1.04.01.xml": Expected(
        EcgFormat.PHILIPS_XML, TWELVE, 500, 10.6,
        {"heart_rate_bpm": 64, "rr_ms": 938, "pr_ms": 164, "qrs_ms": 102, "qt_ms": 399,
         "qtc_ms": 412, "p_axis_deg": 27, "qrs_axis_deg": 22, "t_axis_deg": 80},
        ("Sinus rhythm",),
    ),
    "scp_ecg/ecgtoolkit_Example.scp": Expected(
        EcgFormat.SCP_ECG, TWELVE, 500, 10.0, MORTARA_CLARK
    ),
    "scp_ecg/healforce_62.SCP": Expected(
        EcgFormat.SCP_ECG_HEALFORCE, ("I", "II", "III"), 150, 30.0, einthoven_max_uv=None
    ),
    "scp_ecg/healforce_63.SCP": Expected(
        EcgFormat.SCP_ECG_HEALFORCE, ("I", "II", "III"), 150, 30.0, einthoven_max_uv=None
    ),
    "wfdb_12lead/s0010_re.hea": Expected(
        EcgFormat.WFDB, (*TWELVE, "vx", "vy", "vz"), 1000, 38.4
    ),
}  # fmt: skip


def qrs_peak_to_peak_mv(signal: npt.NDArray[np.float64], rate_hz: float) -> float:
    """Median peak-to-peak over 2-s windows after a 20 ms moving average (nulls 50 Hz)."""
    width = max(1, round(rate_hz * 0.02))
    smooth = np.convolve(signal, np.ones(width) / width, mode="same")
    window = int(2 * rate_hz)
    spans = [
        np.ptp(smooth[i : i + window]) for i in range(window // 2, len(smooth) - window, window)
    ]
    return float(np.median(spans)) / 1000.0


def test_every_file_of_the_formats_folder_is_covered() -> None:
    on_disk = {
        str(path.relative_to(FORMATS))
        for path in FORMATS.rglob("*")
        if path.is_file() and path.suffix not in (".dat", ".xyz")  # WFDB signal files
    }
    assert on_disk == set(EXPECTED)


@pytest.fixture(scope="module")
def records() -> dict[str, EcgRecord]:
    return {name: read_file(name) for name in EXPECTED}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_file_content(name: str, records: dict[str, EcgRecord]) -> None:
    expected = EXPECTED[name]
    record = records[name]
    assert record.source_format is expected.fmt
    assert record.leads == expected.leads
    assert record.sampling_rate_hz == expected.rate_hz
    assert record.duration_s == pytest.approx(expected.duration_s, abs=0.002)
    assert record.samples_uv.dtype == np.float64
    low, high = expected.lead_ii_qrs_mv
    assert low <= qrs_peak_to_peak_mv(record.lead("II"), record.sampling_rate_hz) <= high
    assert all(
        qrs_peak_to_peak_mv(record.lead(lead), record.sampling_rate_hz) <= 6.0
        for lead in record.leads
    )
    for key, value in expected.measurements.items():
        assert record.device_measurements.get(key) == value, key
    for statement in expected.statements:
        assert statement in record.device_statements


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_einthoven_iii_equals_ii_minus_i(name: str, records: dict[str, EcgRecord]) -> None:
    record = records[name]
    residual = record.lead("III") - (record.lead("II") - record.lead("I"))
    tolerance = EXPECTED[name].einthoven_max_uv
    if tolerance is not None:
        assert np.abs(residual).max() <= tolerance
    else:  # leads quantised independently by the device: compare noise to signal
        lead_ii = record.lead("II") - record.lead("II").mean()
        assert np.sqrt(np.mean(residual**2)) <= 0.2 * np.sqrt(np.mean(lead_ii**2))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_detect_format_from_content_alone(name: str) -> None:
    assert detect_format((FORMATS / name).read_bytes()) is EXPECTED[name].fmt


def test_ge_muse_example1_device_measurements_exactly(records: dict[str, EcgRecord]) -> None:
    record = records["ge_muse_xml/braveheart_example1.xml"]
    assert {k: record.device_measurements[k] for k in GE_1} == GE_1
    assert "leads III, aVR, aVL, aVF derived from I and II" in record.warnings


def test_dicom_samples_match_pydicom_waveform_array() -> None:
    data = (FORMATS / "dicom_waveform/waveform_ecg.dcm").read_bytes()
    record = read_dicom_waveform(data)
    dataset = pydicom.dcmread(io.BytesIO(data))
    reference = dataset.waveform_array(0)  # already scaled by sensitivity, correction, baseline
    channels = dataset.WaveformSequence[0].ChannelDefinitionSequence
    names = [str(c.ChannelSourceSequence[0].CodeMeaning) for c in channels]
    assert names[0] == "Lead I (Einthoven)"
    assert names[3] == "Lead aVR"
    for index, lead in enumerate(STANDARD_LEADS):  # the file stores them in this order
        np.testing.assert_allclose(record.lead(lead), reference[:, index])


def test_dicom_demographics(records: dict[str, EcgRecord]) -> None:
    record = records["dicom_waveform/waveform_ecg.dcm"]
    assert record.patient.id == "642341"
    assert record.patient.sex is Sex.FEMALE
    assert record.patient.age_years == 42
    assert record.device.manufacturer == "Mortara Instrument, Inc."
    assert record.acquired_at is not None
    assert record.acquired_at.tzinfo is None
    assert any("no time zone" in w for w in record.warnings)


def test_hl7_and_scp_copies_of_one_ecg_decode_identically() -> None:
    # the ECG Toolkit example.scp is the HL7 example ECG converted (same subject, same cart)
    hl7 = read_hl7_aecg((FORMATS / "hl7_aecg/Example_aECG.xml").read_bytes())
    scp = read_scp_ecg((FORMATS / "scp_ecg/ecgtoolkit_Example.scp").read_bytes())
    assert hl7.leads == scp.leads
    np.testing.assert_array_equal(hl7.samples_uv, scp.samples_uv)
    assert hl7.patient.name == scp.patient.name == "Clark"
    assert hl7.acquired_at == scp.acquired_at


def test_contec_limb_only_recording_drops_unconnected_chest_leads(
    records: dict[str, EcgRecord],
) -> None:
    record = records["contec_ecg90a/0000037.ECG"]
    assert any("V1, V2, V3, V4, V5, V6 not recorded" in w for w in record.warnings)
    assert record.patient.name == "Niccolo"
    assert record.patient.sex is Sex.MALE
    assert record.patient.age_years == 54


def test_contec_0000037_carries_strong_mains_noise(records: dict[str, EcgRecord]) -> None:
    record = records["contec_ecg90a/0000037.ECG"]
    spectrum = np.abs(np.fft.rfft(record.lead("II") - record.lead("II").mean()))
    freqs = np.fft.rfftfreq(record.n_samples, 1 / record.sampling_rate_hz)
    mains = spectrum[(freqs > 49) & (freqs < 51)].max()
    neighbours = np.median(spectrum[(freqs > 40) & (freqs < 60)])
    assert mains > 20 * neighbours


def test_healforce_is_a_low_rate_three_lead_variant(records: dict[str, EcgRecord]) -> None:
    record = records["scp_ecg/healforce_62.SCP"]
    assert any("low sampling rate 150 Hz" in w for w in record.warnings)
    assert any("not EN 1064 conformant" in w for w in record.warnings)


def test_philips_trailing_calibration_pulse_is_dropped(records: dict[str, EcgRecord]) -> None:
    record = records["philips_xml/3191723_ZZDEMOPTONLY_v1.04.xml"]
    assert record.n_samples == 5300
    assert any("calibration pulse" in w for w in record.warnings)
    assert record.device.model == "PageWriter Touch"


def test_wfdb_ptb_header_comments_give_age_and_sex(records: dict[str, EcgRecord]) -> None:
    record = records["wfdb_12lead/s0010_re.hea"]
    assert record.patient.age_years == 81
    assert record.patient.sex is Sex.FEMALE


# --- our measurements against the device's own, for the non-GE files ---------------------
# (GE MUSE files are compared in test_analysis.py, to the 10 ms / 5 bpm / 15° bounds.)

#: The issue's bounds: 5 bpm for rate, 10 ms for intervals, 15° for axes (RR: 25 ms, as 5 bpm
#: at 60 bpm is more than that).
#: (The analysis flags a gap to the reader by the same bounds.)
TOLERANCE = DEVICE_TOLERANCE
INTERVAL_MS = INTERVAL_TOLERANCE_MS
#: Where our analysis and the device disagree by more than the bounds today (strict xfails:
#: each one fails the suite once it is fixed, so the list stays true). Mortara's QTc is not
#: Bazett's: its QT of 420 ms gives 459 by Bazett at this rate, against the 443 it prints,
#: while we agree with its QT. The DICOM cart's QRS starts ~19 ms later than ours, which
#: takes its QT and QTc with it. Philips' QRS of 135 ms on 129DYPRG ends ~18 ms into an ST
#: segment whose slope is already at its baseline level (inferior ST elevation), where all
#: twelve leads have left the QRS.
KNOWN_GAPS = {
    ("dicom_waveform/waveform_ecg.dcm", "qrs_ms"): "94 ms against the device's 75",
    ("dicom_waveform/waveform_ecg.dcm", "qt_ms"): "383 ms against the device's 368 "
    "(our QRS is 19 ms the longer)",
    ("dicom_waveform/waveform_ecg.dcm", "qtc_ms"): "386 ms against the device's 370",
    ("hl7_aecg/Example_aECG.xml", "qtc_ms"): "465 ms against Mortara's 443 "
    "(Bazett turns Mortara's own QT of 420 into 459 at this rate)",
    ("scp_ecg/ecgtoolkit_Example.scp", "qtc_ms"): "465 ms against Mortara's 443 "
    "(Bazett turns Mortara's own QT of 420 into 459 at this rate)",
    ("philips_xml/129DYPRG_v1.03.XML", "qrs_ms"): "98 ms against Philips' 135",
}
#: Our name of what the device calls QTc: Bazett, as the carts print it.
OURS = {"qtc_ms": "qtc_bazett_ms"}
DEVICE_PAIRS = [
    pytest.param(
        name,
        key,
        marks=[pytest.mark.xfail(strict=True, reason=KNOWN_GAPS[name, key])]
        if (name, key) in KNOWN_GAPS
        else [],
        id=f"{name}:{key}",
    )
    for name, expected in sorted(EXPECTED.items())
    if expected.fmt is not EcgFormat.GE_MUSE_XML
    for key in sorted(expected.measurements)
    if key != "p_ms"  # the P duration is not one of the measurements
]


@pytest.fixture(scope="module")
def our_measurements() -> dict[str, Mapping[str, float | None]]:
    return {
        name: analyze_ecg(read_file(name)).measurements
        for name, expected in EXPECTED.items()
        if expected.measurements and expected.fmt is not EcgFormat.GE_MUSE_XML
    }


@pytest.mark.parametrize(("name", "key"), DEVICE_PAIRS)
def test_our_measurements_agree_with_the_devices_own(
    name: str, key: str, our_measurements: dict[str, Mapping[str, float | None]]
) -> None:
    device = EXPECTED[name].measurements[key]
    ours = our_measurements[name].get(OURS.get(key, key))
    assert ours is not None, f"{key} not measured"
    assert abs(ours - device) <= TOLERANCE.get(key, INTERVAL_MS), (ours, device)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_file_gets_its_rate_and_intervals(name: str) -> None:
    """Every ECG of the folder, of whatever cart, gets a rate, PR, QRS, QT and QTc: none is
    left for the reader to measure by hand (the PTB MI record's T wave never returns to a
    tenth of its velocity before the next P wave, and ends at its trough)."""
    measurements = analyze_ecg(read_file(name)).measurements
    for key in ("heart_rate_bpm", "pr_ms", "qrs_ms", "qt_ms", "qtc_bazett_ms"):
        assert measurements[key] is not None, key
    qt = measurements["qt_ms"]
    assert qt is not None
    assert 300.0 <= qt <= 520.0


def test_the_analysis_flags_exactly_the_known_gaps_to_the_reader() -> None:
    flagged = set()
    for name, expected in EXPECTED.items():
        if not expected.measurements:
            continue
        for difference in analyze_ecg(read_file(name)).device_comparison:
            if difference.beyond_tolerance and difference.key != "p_ms":
                flagged.add((name, difference.key))
    assert flagged == set(KNOWN_GAPS)


#: Every statement each real file's cart wrote, in file order (Philips interpretation
#: statements, the HL7 aECG interpretation annotation, the DICOM waveform's unformatted-text
#: annotations). The GE MUSE examples carry no <Diagnosis>, the SCP files no section 8 or 11,
#: the Contec and WFDB files no interpretation at all.
CART_STATEMENTS: dict[str, tuple[str, ...]] = {
    "dicom_waveform/waveform_ecg.dcm": ("RITMO SINUSALE", "ECG NORMALE"),
    "hl7_aecg/Example_aECG.xml": ("Sinus Rhythm",),
    "philips_xml/129DYPRG_v1.03.XML": (
        "Sinus bradycardia", "Nonspecific intraventricular conduction delay",
        "Inferior infarct, acute (LCx)", ">>> Acute MI <<<", "ABNORMAL ECG",
    ),
    "philips_xml/2020-5-18_15-48-11_v1.04.01.xml": (
        "Sinus rhythm", "Abnormal R-wave progression, early transition", "OTHERWISE NORMAL ECG",
    ),
    "philips_xml/3191723_ZZDEMOPTONLY_v1.04.xml": (
        "SINUS RHYTHM", "PROBABLE LEFT VENTRICULAR HYPERTROPHY",
        "ANTERIOR ST ELEVATION, PROBABLY DUE TO LVH", "ABNORMAL ECG",
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_the_carts_statements_are_read_from_every_format(
    name: str, records: dict[str, EcgRecord]
) -> None:
    assert records[name].device_statements == CART_STATEMENTS.get(name, ())
