"""SCP-ECG in full: every coding of EN 1064 on records the tests build, and the real file."""

from __future__ import annotations

import random
import struct

import numpy as np
import pytest

from ecg import EcgFormatError, read_ecg
from ecg.errors import EcgRecordError
from ecg.formats import read_scp_ecg
from ecg.formats.scp_ecg import SCP_LEADS
from ecg.record import EcgFormat, EcgPacemakerSpike, EcgRecord
from tests.fuzzing import fix_scp_crcs, mutate

from .conftest import FORMATS
from .scp_writer import Reference, ScpSpec, build_scp, section7, section10, statements

RATE = 500
EIGHT = (1, 2, 3, 4, 5, 6, 7, 8)  # I II V1..V6
BEAT = 300  # samples of the reference beat (600 ms at 500 Hz)
FIDUCIAL = 100  # its R peak
PEAKS = (250, 650, 1050, 1450, 1850, 2250)


def _template(lead: int) -> np.ndarray:
    """A beat: P, a sharp QRS and a T wave, differently scaled per lead (µV)."""
    t = np.arange(BEAT, dtype=np.float64)
    qrs = (800 + 60 * lead) * np.exp(-(((t - FIDUCIAL) / 6.0) ** 2))
    q = -150 * np.exp(-(((t - FIDUCIAL + 14) / 4.0) ** 2))
    p = 90 * np.exp(-(((t - 40) / 12.0) ** 2))
    wave_t = (200 + 10 * lead) * np.exp(-(((t - 230) / 25.0) ** 2))
    return np.rint(qrs + q + p + wave_t).astype(np.int64)


def _signal(lead: int, n: int = 2500, *, noise: int = 3, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed + lead)
    t = np.arange(n, dtype=np.float64)
    out = 120 * np.sin(2 * np.pi * 0.3 * t / RATE + lead) + rng.integers(-noise, noise + 1, n)
    out = np.rint(out).astype(np.int64)
    beat = _template(lead)
    for peak in PEAKS:
        first = peak - FIDUCIAL
        out[first : first + BEAT] += beat[: max(0, min(BEAT, n - first))]
    return out


def _leads(codes: tuple[int, ...] = EIGHT, **kwargs: int) -> list[tuple[int, np.ndarray]]:
    return [(code, _signal(code, **kwargs)) for code in codes]


def _zones() -> list[tuple[int, int, int, int]]:
    # 1-based sample numbers: the R peak of beat k is sample PEAKS[k] + 1
    return [(0, p + 1 - FIDUCIAL, p + 1, p + BEAT - FIDUCIAL) for p in PEAKS]


def _protected() -> list[tuple[int, int]]:
    return [(p + 1 - 30, p + 1 + 40) for p in PEAKS]


def _reference(leads: list[tuple[int, np.ndarray]], **kwargs: object) -> Reference:
    return Reference(
        beats=[_template(code) for code, _ in leads],
        fiducial=FIDUCIAL + 1,
        zones=_zones(),
        **kwargs,  # type: ignore[arg-type]
    )


def _assert_exact(leads: list[tuple[int, np.ndarray]], data: bytes, uv_per_unit: float) -> None:
    record = read_scp_ecg(data)
    assert record.sampling_rate_hz == RATE
    for code, samples in leads:
        np.testing.assert_array_equal(record.lead(SCP_LEADS[code]), samples * uv_per_unit)


# --- the real file ----------------------------------------------------------------------


def test_the_ecg_toolkit_example_reads_with_its_cart_measurements() -> None:
    record = read_scp_ecg((FORMATS / "scp_ecg/ecgtoolkit_Example.scp").read_bytes())
    assert record.source_format is EcgFormat.SCP_ECG
    assert record.leads[:3] == ("I", "II", "III")
    assert len(record.leads) == 12
    assert record.n_samples == 5000
    assert record.sampling_rate_hz == 500
    assert record.device_measurements["qrs_ms"] > 0
    assert record.device_pacemaker_spikes == ()
    # the QRS peak-to-peak of lead II is that of a real ECG (not noise, not saturated)
    assert 300 < np.ptp(record.lead("II")) < 5000


# --- every compression mode -------------------------------------------------------------


def test_no_compression_reads_plain_16_bit_samples() -> None:
    leads = _leads()
    _assert_exact(leads, build_scp(ScpSpec(leads=leads, avm_nv=2500)), 2.5)


@pytest.mark.parametrize("difference", [0, 1, 2])
def test_huffman_default_table_with_each_difference_coding(difference: int) -> None:
    leads = _leads()
    data = build_scp(ScpSpec(leads=leads, huffman="default", difference=difference))
    _assert_exact(leads, data, 1.0)


@pytest.mark.parametrize("difference", [1, 2])
def test_custom_huffman_tables_switching_between_each_other(difference: int) -> None:
    leads = _leads()
    data = build_scp(ScpSpec(leads=leads, huffman="custom", difference=difference))
    _assert_exact(leads, data, 1.0)


@pytest.mark.parametrize("huffman", [None, "default", "custom"])
def test_reference_beat_subtraction_adds_the_beat_back(huffman: str | None) -> None:
    leads = _leads()
    reference = _reference(leads, beat_difference=1)
    data = build_scp(ScpSpec(leads=leads, huffman=huffman, difference=2, reference=reference))
    _assert_exact(leads, data, 1.0)


def test_reference_beat_with_its_own_amplitude_multiplier() -> None:
    leads = _leads()
    # the beat is stored in 2 µV units, the residual in 1 µV units
    reference = _reference(leads, beat_avm_nv=2000)
    reference.beats = [beat // 2 for beat in reference.beats]
    record = read_scp_ecg(build_scp(ScpSpec(leads=leads, huffman="default", reference=reference)))
    for code, samples in leads:
        # the writer subtracted the stored values, the reader adds them back at 2 µV each
        expected = samples + _embedded(code, halved=True)
        np.testing.assert_array_equal(record.lead(SCP_LEADS[code]), expected)


def _embedded(code: int, *, halved: bool = False) -> np.ndarray:
    """The beats `_signal` adds to a lead, optionally from the halved template."""
    beat = _template(code) // 2 if halved else _template(code)
    out = np.zeros(2500, dtype=np.int64)
    for peak in PEAKS:
        first = peak - FIDUCIAL
        out[first : first + BEAT] += beat[: max(0, min(BEAT, 2500 - first))]
    return out


def test_bimodal_compression_keeps_the_qrs_at_full_rate() -> None:
    leads = _leads()
    reference = _reference(leads, protected=_protected(), factor=4, bimodal=True)
    data = build_scp(ScpSpec(leads=leads, huffman="default", difference=1, reference=reference))
    record = read_scp_ecg(data)
    assert record.sampling_rate_hz == RATE
    assert record.n_samples == 2500
    inside = np.zeros(2500, dtype=bool)
    for first, last in _protected():
        inside[first - 1 : last] = True
    for code, samples in leads:
        decoded = record.lead(SCP_LEADS[code])
        np.testing.assert_array_equal(decoded[inside], samples[inside])
        # between the QRS complexes the residual is a slow wave decimated by 4: within noise
        assert np.max(np.abs(decoded[~inside] - samples[~inside])) < 12
    # the 6 protected areas of 71 samples and 4-sample blocks elsewhere: about a third
    assert len(data) < 0.5 * len(build_scp(ScpSpec(leads=leads, huffman="default", difference=1)))


@pytest.mark.parametrize(
    ("huffman", "drop_last_block"),
    [("custom", False), ("custom", True), (None, True)],
    ids=["custom", "custom-last-block-rounded-down", "plain-last-block-rounded-down"],
)
def test_decimated_residual_without_bimodal_is_interpolated_back(
    huffman: str | None, drop_last_block: bool
) -> None:
    leads = _leads(noise=0, n=2499)  # 2499 samples: 1250 blocks of 2, the last one partial
    reference = _reference(leads, factor=2, drop_last_block=drop_last_block)
    data = build_scp(ScpSpec(leads=leads, huffman=huffman, difference=1, reference=reference))
    record = read_scp_ecg(data)
    assert record.sampling_rate_hz == RATE
    for code, samples in leads:
        assert np.max(np.abs(record.lead(SCP_LEADS[code]) - samples)) < 4


def test_version_1_3_layout_with_zero_based_sample_numbers() -> None:
    # the 1.x layout: protocol 13 in every header, no SCPECG mark, samples numbered from 0,
    # section 4 without protected areas, section 7 without the rate block
    leads = _leads()
    reference = Reference(
        beats=[_template(code) for code, _ in leads],
        fiducial=FIDUCIAL + 1,
        zones=_zones(),
    )
    spec = ScpSpec(
        leads=leads,
        huffman="default",
        difference=2,
        version=13,
        zero_based=True,
        reference=reference,
        extra_sections={7: section7(rr_ms=800, onsets=(40, 150, 180, 270, 560), axes=(50, 60, 40))},
    )
    data = build_scp(spec)
    assert data[16:22] != b"SCPECG"
    assert data[6 + 9] == 13
    _assert_exact(leads, data, 1.0)
    record = read_ecg(data)  # recognised without the SCPECG mark of version 2.0
    assert record.source_format is EcgFormat.SCP_ECG
    assert any("count from 0" in w for w in record.warnings)
    assert record.device_measurements["qrs_ms"] == 90
    assert "heart_rate_bpm" not in (record.device_measurements)


# --- long recordings ------------------------------------------------------------------


@pytest.mark.parametrize("saturate", [False, True], ids=["wrapped", "saturated"])
@pytest.mark.parametrize("huffman", [None, "default"])
def test_long_recording_past_the_16_bit_byte_counts(huffman: str | None, saturate: bool) -> None:
    # 47 s at 800 Hz: 37855 samples per lead, more bytes per lead than 16 bits can count
    n = 37855
    rng = np.random.default_rng(7)
    leads = [(code, rng.integers(-3000, 3000, n)) for code in (1, 2, 3)]
    spec = ScpSpec(leads=leads, interval_us=1250, huffman=huffman, saturate_counts=saturate)
    data = build_scp(spec)
    section6_counts = _section6_counts(data, 3)
    # wrapped at 65536, or stuck at 65535 (the old reader found "32767 samples" in those)
    assert all(count == 0xFFFF if saturate else count < 2 * n for count in section6_counts)
    record = read_scp_ecg(data)
    assert record.sampling_rate_hz == 800
    assert record.n_samples == n
    for code, samples in leads:
        np.testing.assert_array_equal(record.lead(SCP_LEADS[code]), samples)


def _section6_counts(data: bytes, n_leads: int) -> tuple[int, ...]:
    for entry in range(22, 6 + struct.unpack_from("<I", data, 10)[0], 10):
        section_id, _length, index = struct.unpack_from("<HII", data, entry)
        if section_id == 6:
            return struct.unpack_from(f"<{n_leads}H", data, index - 1 + 16 + 6)
    raise AssertionError("no section 6")


def test_truncated_long_recording_is_refused_with_the_lead_and_counts() -> None:
    n = 37855
    leads = [(1, np.arange(n) % 2000), (2, np.arange(n) % 1500)]
    data = bytearray(build_scp(ScpSpec(leads=leads, interval_us=1250)))
    # section 6 is the last section: drop the last lead's second half, fix the lengths
    cut = data[: len(data) - n]
    struct.pack_into("<I", cut, 2, len(cut))
    for entry in range(22, 6 + struct.unpack_from("<I", cut, 10)[0], 10):
        section_id, length, index = struct.unpack_from("<HII", cut, entry)
        if section_id == 6:
            struct.pack_into("<I", cut, entry + 2, length - n)
            struct.pack_into("<I", cut, index - 1 + 4, length - n)
    with pytest.raises(EcgFormatError, match=r"lead II needs 75710 bytes, past the section end"):
        read_scp_ecg(fix_scp_crcs(bytes(cut)))


# --- lead sets -----------------------------------------------------------------------


def test_pediatric_and_derived_leads_take_their_names() -> None:
    # I, II, V1, V2, V4R, V3R, V7 recorded; III, aVR, aVL, aVF derived by the cart
    codes = (1, 2, 3, 4, 12, 11, 9, 111, 112, 113, 114)
    leads = _leads(codes)
    record = read_scp_ecg(build_scp(ScpSpec(leads=leads, huffman="default", difference=1)))
    assert record.leads == (
        "I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V4R", "V3R", "V7",
    )  # fmt: skip
    np.testing.assert_array_equal(record.lead("aVF"), leads[-1][1])
    assert any("III, aVR, aVL, aVF are derived" in w for w in record.warnings)


def test_every_lead_code_of_section_3_has_a_name() -> None:
    assert len(SCP_LEADS) == 184
    assert (SCP_LEADS[1], SCP_LEADS[61], SCP_LEADS[65], SCP_LEADS[151]) == (
        "I", "III", "-aVR", "V10",
    )  # fmt: skip
    assert len(set(SCP_LEADS.values())) == 184


# --- the cart's measurements, spikes and statements ----------------------------------


def test_pacemaker_spikes_measurements_and_statements_are_kept() -> None:
    leads = _leads()
    extra = {
        7: section7(
            rr_ms=800,
            onsets=(40, 150, 180, 270, 560),
            axes=(50, 60, 40),
            spikes=[(490, 1200, 2, 500), (1290, 29999, 3, 0)],
            rates=(75, 420),
        ),
        8: statements(["Atrial-sensed ventricular-paced rhythm", "Abnormal ECG"]),
        10: section10({1: [100, 140, 90, 380, 20, 40, 30, 0, 0, -120, 900, -300]}),
        11: statements(["Pacemaker rhythm"], universal=True),
    }
    record = read_scp_ecg(build_scp(ScpSpec(leads=leads, extra_sections=extra)))
    assert record.device_measurements == {
        "rr_ms": 800, "p_ms": 110, "pr_ms": 140, "qrs_ms": 90, "qt_ms": 380,
        "p_axis_deg": 50, "qrs_axis_deg": 60, "t_axis_deg": 40, "heart_rate_bpm": 75,
        "qtc_ms": 420,
    }  # fmt: skip
    assert record.device_pacemaker_spikes == (
        EcgPacemakerSpike(time_ms=490, amplitude_uv=1200, pulse_width_us=500, triggers="QRS"),
        EcgPacemakerSpike(time_ms=1290, amplitude_uv=None, pulse_width_us=None, triggers="P"),
    )
    assert record.device_statements == (
        "Atrial-sensed ventricular-paced rhythm",
        "Abnormal ECG",
        "Pacemaker rhythm",
    )
    assert record.device_lead_measurements == {
        "I": {"p_ms": 100, "pr_ms": 140, "qrs_ms": 90, "qt_ms": 380, "q_ms": 20, "r_ms": 40,
              "s_ms": 30, "q_uv": -120, "r_uv": 900, "s_uv": -300},
    }  # fmt: skip


# --- refusals ------------------------------------------------------------------------


def _without(data: bytes, section_id: int) -> bytes:
    out = bytearray(data)
    for entry in range(22, 6 + struct.unpack_from("<I", out, 10)[0], 10):
        if struct.unpack_from("<H", out, entry)[0] == section_id:
            struct.pack_into("<II", out, entry + 2, 0, 0)
    return fix_scp_crcs(bytes(out))


def test_reference_beat_subtraction_without_the_beat_is_refused_in_plain_words() -> None:
    leads = _leads()
    data = build_scp(ScpSpec(leads=leads, huffman="default", reference=_reference(leads)))
    with pytest.raises(EcgFormatError, match=r"no section 5 \(reference beat\).*export the ECG"):
        read_scp_ecg(_without(data, 5))


def test_bimodal_without_protected_areas_is_refused() -> None:
    leads = _leads()
    reference = _reference(leads, factor=4, bimodal=True)
    data = build_scp(ScpSpec(leads=leads, huffman="default", reference=reference))
    with pytest.raises(EcgFormatError, match="bimodal compression needs protected areas"):
        read_scp_ecg(data)


def test_a_damaged_file_is_refused_with_what_to_do() -> None:
    data = bytearray(build_scp(ScpSpec(leads=_leads(), huffman="default")))
    data[-10] ^= 0x40
    with pytest.raises(EcgFormatError, match=r"CRC mismatch .* send the ECG again from the cart"):
        read_scp_ecg(bytes(data))


def test_rhythm_interval_not_a_multiple_of_the_beat_interval_is_refused() -> None:
    leads = _leads()
    data = bytearray(build_scp(ScpSpec(leads=leads, reference=_reference(leads))))
    for entry in range(22, 6 + struct.unpack_from("<I", data, 10)[0], 10):
        section_id, _, index = struct.unpack_from("<HII", data, entry)
        if section_id == 6:
            struct.pack_into("<H", data, index - 1 + 16 + 2, 3000)
    with pytest.raises(EcgFormatError, match=r"not a whole multiple"):
        read_scp_ecg(fix_scp_crcs(bytes(data)))


def _synthetic_seeds() -> list[bytes]:
    leads = _leads((1, 2, 3), n=600)
    zones = [(0, 150 + 1 - FIDUCIAL, 151, 150 + BEAT - FIDUCIAL)]
    reference = Reference(
        beats=[_template(code) for code, _ in leads],
        fiducial=FIDUCIAL + 1,
        zones=zones,
        protected=[(120, 190)],
        factor=2,
        bimodal=True,
    )
    extra = {7: section7(rr_ms=800, onsets=(1, 2, 3, 4, 5), axes=(0, 0, 0), spikes=[(5, 5, 1, 5)])}
    return [
        build_scp(ScpSpec(leads=leads, huffman="custom", difference=2, reference=reference)),
        build_scp(ScpSpec(leads=leads, huffman="default", extra_sections=extra, version=13)),
    ]


def test_damaged_synthetic_files_fail_only_with_the_format_error() -> None:
    seeds = _synthetic_seeds()
    for seed in seeds:
        read_scp_ecg(seed)
    rnd = random.Random(19)
    refusals: list[str] = []
    for case in range(300):
        data = fix_scp_crcs(mutate(seeds[case % len(seeds)], rnd))
        try:
            read_scp_ecg(data)
        except EcgFormatError as exc:
            refusals.append(str(exc))
    assert len(refusals) > 100
    # each refusal is one the reader words itself, none the net for unexpected failures
    assert [r for r in refusals if "damaged or unsupported data" in r] == []


# --- the record's fields for what the cart adds ---------------------------------------


def _record(**fields: object) -> EcgRecord:
    return EcgRecord(
        leads=("I", "II"),
        samples_uv=np.zeros((2, 10)),
        sampling_rate_hz=500,
        source_format=EcgFormat.SCP_ECG,
        **fields,  # type: ignore[arg-type]
    )


def test_per_lead_measurements_must_name_a_lead_of_the_record_and_a_known_key() -> None:
    assert _record(device_lead_measurements={"I": {"r_uv": 900}}).device_lead_measurements == {
        "I": {"r_uv": 900.0}
    }
    with pytest.raises(EcgRecordError, match=r"device_lead_measurements\['V1'\]"):
        _record(device_lead_measurements={"V1": {"r_uv": 900}})
    with pytest.raises(EcgRecordError, match="must map"):
        _record(device_lead_measurements={"I": {"r_height": 900}})
    with pytest.raises(EcgRecordError, match="must map"):
        _record(device_lead_measurements={"I": {"r_uv": float("nan")}})


def test_pacemaker_spikes_are_checked() -> None:
    spike = EcgPacemakerSpike(time_ms=12.0, triggers="QRS")
    assert _record(device_pacemaker_spikes=(spike,)).device_pacemaker_spikes == (spike,)
    with pytest.raises(EcgRecordError, match="time_ms"):
        EcgPacemakerSpike(time_ms=-1.0)
    with pytest.raises(EcgRecordError, match="tuple of EcgPacemakerSpike"):
        _record(device_pacemaker_spikes=[spike])
