"""DICOM ECG export: strict, valid objects that round-trip every real file."""

from __future__ import annotations

import io
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from pydicom import config
from pydicom.dataset import Dataset

from ecg import STANDARD_LEADS, EcgFormat, EcgRecord, read_ecg
from ecg.dicom_export import (
    GENERAL_ECG_WAVEFORM_STORAGE,
    TWELVE_LEAD_ECG_WAVEFORM_STORAGE,
    DicomWaveformExport,
    EcgExportError,
    export_dicom_waveform,
    to_dicom_waveform,
)

from .conftest import FORMATS, read_file
from .scp_writer import paced_scp

TWELVE, GENERAL = TWELVE_LEAD_ECG_WAVEFORM_STORAGE, GENERAL_ECG_WAVEFORM_STORAGE
RECEIVED = datetime(2024, 3, 1, 9, 12, 30)

#: SOP class chosen for each real file, and why (PS3.3 A.34.3.4 / A.34.4.4)
EXPECTED_CLASS = {
    "contec_ecg90a/0000037.ECG": GENERAL,  # limb leads only
    "contec_ecg90a/0000053.ECG": GENERAL,  # 37 s at 800 Hz: 29748 samples > 16384
    "dicom_waveform/waveform_ecg.dcm": TWELVE,
    "ge_muse_xml/braveheart_example1.xml": TWELVE,
    "ge_muse_xml/braveheart_example2.xml": TWELVE,
    "ge_muse_xml/braveheart_example3.xml": TWELVE,
    "ge_muse_xml/braveheart_example4.xml": TWELVE,
    "hl7_aecg/Example_aECG.xml": TWELVE,
    "philips_xml/129DYPRG_v1.03.XML": TWELVE,
    "philips_xml/2020-5-18_15-48-11_v1.04.01.xml": TWELVE,
    "philips_xml/3191723_ZZDEMOPTONLY_v1.04.xml": TWELVE,
    "scp_ecg/ecgtoolkit_Example.scp": TWELVE,
    "scp_ecg/healforce_62.SCP": GENERAL,  # 3 leads at 150 Hz, resampled to 300 Hz
    "scp_ecg/healforce_63.SCP": GENERAL,
    "wfdb_12lead/s0010_re.hea": GENERAL,  # 15 leads (Frank vx, vy, vz), 38.4 s
}

# Type 1 and 2 attributes of the modules of both IODs (PS3.3 A.34.3.3 / A.34.4.3)
REQUIRED = {
    "Patient": ["PatientName", "PatientID", "PatientBirthDate", "PatientSex"],
    "General Study": [
        "StudyInstanceUID", "StudyDate", "StudyTime", "ReferringPhysicianName", "StudyID",
        "AccessionNumber",
    ],
    "General Series": ["Modality", "SeriesInstanceUID", "SeriesNumber"],
    "General Equipment": ["Manufacturer"],
    "Waveform Identification": [
        "InstanceNumber", "ContentDate", "ContentTime", "AcquisitionDateTime",
    ],
    "Acquisition Context": ["AcquisitionContextSequence"],
    "Waveform": ["WaveformSequence"],
    "SOP Common": ["SOPClassUID", "SOPInstanceUID", "SpecificCharacterSet"],
}  # fmt: skip
REQUIRED_GROUP = [
    "WaveformOriginality", "NumberOfWaveformChannels", "NumberOfWaveformSamples",
    "SamplingFrequency", "ChannelDefinitionSequence", "WaveformBitsAllocated",
    "WaveformSampleInterpretation", "WaveformData",
]  # fmt: skip
REQUIRED_CHANNEL = [
    "ChannelSourceSequence", "ChannelSensitivity", "ChannelSensitivityUnitsSequence",
    "ChannelSensitivityCorrectionFactor", "ChannelBaseline", "ChannelSampleSkew",
    "WaveformBitsStored",
]  # fmt: skip


def strict_read(data: bytes) -> Dataset:
    """Read with pydicom's reading validation raising, touching every value."""
    with config.strict_reading():
        dataset = pydicom.dcmread(io.BytesIO(data))
        dataset.to_json_dict()  # converts (and so validates) every element
    return dataset


def check_iod(dataset: Dataset, sop_class: str) -> None:
    for module, keywords in REQUIRED.items():
        for keyword in keywords:
            assert keyword in dataset, f"{module} module: {keyword} missing"
    assert dataset.file_meta.MediaStorageSOPClassUID == dataset.SOPClassUID == sop_class
    assert dataset.file_meta.MediaStorageSOPInstanceUID == dataset.SOPInstanceUID
    assert dataset.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    assert dataset.Modality == "ECG"
    assert dataset.SpecificCharacterSet == "ISO_IR 192"
    groups = dataset.WaveformSequence
    assert len(groups) == 1
    group = groups[0]
    for keyword in REQUIRED_GROUP:
        assert keyword in group, keyword
    assert 200 <= float(group.SamplingFrequency) <= 1000
    assert group.WaveformSampleInterpretation == "SS"
    assert group.WaveformBitsAllocated == 16
    n_channels = int(group.NumberOfWaveformChannels)
    assert len(group.ChannelDefinitionSequence) == n_channels
    if sop_class == TWELVE:
        assert 1 <= n_channels <= 13
        assert int(group.NumberOfWaveformSamples) <= 16384
    else:
        assert 1 <= n_channels <= 24
    assert len(group.WaveformData) == 2 * n_channels * int(group.NumberOfWaveformSamples)
    for channel in group.ChannelDefinitionSequence:
        for keyword in REQUIRED_CHANNEL:
            assert keyword in channel, keyword
        assert channel.WaveformBitsStored == 16
        unit = channel.ChannelSensitivityUnitsSequence[0]
        assert (unit.CodeValue, unit.CodingSchemeDesignator) == ("uV", "UCUM")
        source = channel.ChannelSourceSequence[0]
        if sop_class == TWELVE:  # CID 3001 terms
            assert source.CodingSchemeDesignator == "MDC"
            assert source.CodeValue.startswith("2:")


def export(name: str) -> tuple[EcgRecord, DicomWaveformExport]:
    record = read_file(name)
    exported = export_dicom_waveform(
        record,
        patient_id="HB-XC01-0042",
        patient_name="王^小明",
        accession_number="A2024030101",
        institution_name="淮滨县新里镇卫生院",
        fallback_acquired_at=RECEIVED,
    )
    return record, exported


def test_every_file_of_the_formats_folder_is_covered() -> None:
    on_disk = {
        str(path.relative_to(FORMATS))
        for path in FORMATS.rglob("*")
        if path.is_file() and path.suffix not in (".dat", ".xyz")
    }
    assert on_disk == set(EXPECTED_CLASS)


@pytest.mark.parametrize("name", sorted(EXPECTED_CLASS))
def test_real_file_round_trips(name: str) -> None:
    record, exported = export(name)
    assert exported.sop_class_uid == EXPECTED_CLASS[name]
    dataset = strict_read(exported.data)
    check_iod(dataset, exported.sop_class_uid)

    back = read_ecg(exported.data, "exported.dcm")
    assert back.source_format is EcgFormat.DICOM
    assert set(back.leads) == set(record.leads)
    assert back.acquired_at == (record.acquired_at or RECEIVED)
    assert back.sampling_rate_hz == exported.sampling_rate_hz
    factor = round(exported.sampling_rate_hz / record.sampling_rate_hz)
    assert exported.sampling_rate_hz == record.sampling_rate_hz * factor
    if factor > 1:
        assert dataset.WaveformSequence[0].WaveformOriginality == "DERIVED"
        assert any("resampled" in note for note in exported.notes)
    assert back.n_samples == record.n_samples * factor

    reference = dataset.waveform_array(0)  # pydicom's own scaling: sensitivity, baseline
    for index, lead in enumerate(back.leads):
        step = exported.sensitivities_uv[index]
        original = record.lead(lead)
        # every original sample is kept (upsampling by an integer factor keeps them)
        np.testing.assert_allclose(back.lead(lead)[::factor], original, rtol=0, atol=step / 2)
        np.testing.assert_allclose(reference[::factor, index], original, rtol=0, atol=step / 2)

    assert back.device_statements == record.device_statements
    carried = {k: v for k, v in record.device_measurements.items() if k not in ("rr_ms", "p_ms")}
    assert back.device_measurements == carried
    assert back.patient.id == "HB-XC01-0042"
    assert back.patient.sex == record.patient.sex
    assert back.patient.birth_date == record.patient.birth_date


def test_source_quantisation_is_kept_losslessly() -> None:
    for name in ("ge_muse_xml/braveheart_example1.xml", "dicom_waveform/waveform_ecg.dcm"):
        record, exported = export(name)
        back = read_ecg(exported.data, "exported.dcm")
        for lead in record.leads:
            np.testing.assert_allclose(back.lead(lead), record.lead(lead), rtol=0, atol=1e-9)
    assert exported.sensitivities_uv[0] == 1.25


def test_long_twelve_lead_record_is_written_in_full_as_general_ecg() -> None:
    record, exported = export("contec_ecg90a/0000053.ECG")
    assert record.n_samples > 16384
    assert exported.sop_class_uid == GENERAL
    assert any("16384" in note for note in exported.notes)
    assert strict_read(exported.data).WaveformSequence[0].NumberOfWaveformSamples == 29748


def synthetic(
    leads: tuple[str, ...] = STANDARD_LEADS,
    rate_hz: float = 500.0,
    n: int = 5000,
    acquired_at: datetime | None = RECEIVED,
    seed: int = 7,
) -> EcgRecord:
    rng = np.random.default_rng(seed)
    return EcgRecord(
        leads=leads,
        samples_uv=rng.normal(0, 300, (len(leads), n)),
        sampling_rate_hz=rate_hz,
        acquired_at=acquired_at,
        source_format=EcgFormat.CSV,
    )


def test_twelve_lead_limit_is_16384_samples() -> None:
    at_limit = export_dicom_waveform(
        synthetic(rate_hz=1000, n=16384), patient_id="1", patient_name=""
    )
    over = export_dicom_waveform(synthetic(rate_hz=1000, n=16385), patient_id="1", patient_name="")
    assert at_limit.sop_class_uid == TWELVE
    assert over.sop_class_uid == GENERAL


def test_nothing_clips_and_error_is_within_half_a_step() -> None:
    record = synthetic()
    samples = record.samples_uv.copy()
    samples[0] *= 150  # about ±150 mV peaks
    samples[1, 100] = -300_000.0  # one -300 mV spike
    samples[2] = 0.0  # flat
    big = EcgRecord(
        leads=record.leads,
        samples_uv=samples,
        sampling_rate_hz=500.0,
        acquired_at=RECEIVED,
        source_format=EcgFormat.CSV,
    )
    exported = export_dicom_waveform(big, patient_id="1", patient_name="")
    back = read_ecg(exported.data)
    for index, lead in enumerate(STANDARD_LEADS):
        step = exported.sensitivities_uv[index]
        np.testing.assert_allclose(back.lead(lead), big.lead(lead), rtol=0, atol=step / 2 + 1e-9)
    assert back.lead("II")[100] == pytest.approx(-300_000.0, abs=exported.sensitivities_uv[1])


def test_high_rate_is_resampled_to_1000_hz() -> None:
    exported = export_dicom_waveform(
        synthetic(rate_hz=2000.0, n=8000), patient_id="1", patient_name=""
    )
    assert exported.sampling_rate_hz == 1000.0
    dataset = strict_read(exported.data)
    assert dataset.WaveformSequence[0].NumberOfWaveformSamples == 4000
    assert dataset.WaveformSequence[0].WaveformOriginality == "DERIVED"


def test_chinese_name_and_institution_are_utf8() -> None:
    _, exported = export("ge_muse_xml/braveheart_example1.xml")
    assert "王^小明".encode() in exported.data
    assert "淮滨县新里镇卫生院".encode() in exported.data
    dataset = strict_read(exported.data)
    assert str(dataset.PatientName) == "王^小明"
    assert dataset.InstitutionName == "淮滨县新里镇卫生院"
    assert read_ecg(exported.data).patient.name == "王 小明"


def test_given_uids_are_used_and_output_is_deterministic() -> None:
    uids: dict[str, Any] = {
        "study_instance_uid": "1.2.826.0.1.3680043.8.498.1",
        "series_instance_uid": "1.2.826.0.1.3680043.8.498.2",
        "sop_instance_uid": "1.2.826.0.1.3680043.8.498.3",
    }
    record = synthetic()
    first = to_dicom_waveform(record, patient_id="P1", patient_name="Li^Lei", **uids)
    second = to_dicom_waveform(record, patient_id="P1", patient_name="Li^Lei", **uids)
    assert first == second
    dataset = strict_read(first)
    assert dataset.StudyInstanceUID == uids["study_instance_uid"]
    assert dataset.SeriesInstanceUID == uids["series_instance_uid"]
    assert dataset.SOPInstanceUID == uids["sop_instance_uid"]
    generated = export_dicom_waveform(record, patient_id="P1", patient_name="")
    assert pydicom.uid.UID(generated.sop_instance_uid).is_valid


def test_time_zone_is_written_and_read_back() -> None:
    moment = datetime(2024, 3, 1, 9, 12, 30, 250000, tzinfo=timezone(timedelta(hours=8)))
    data = to_dicom_waveform(synthetic(acquired_at=moment), patient_id="1", patient_name="")
    dataset = strict_read(data)
    assert dataset.AcquisitionDateTime == "20240301091230.250000+0800"
    assert dataset.TimezoneOffsetFromUTC == "+0800"
    assert read_ecg(data).acquired_at == moment
    utc = to_dicom_waveform(
        synthetic(acquired_at=moment.astimezone(UTC)), patient_id="1", patient_name=""
    )
    assert read_ecg(utc).acquired_at == moment


def test_non_standard_lead_names_survive() -> None:
    record = synthetic(("I", "II", "vx", "V7"))
    exported = export_dicom_waveform(record, patient_id="1", patient_name="")
    assert exported.sop_class_uid == GENERAL
    sources = [
        channel.ChannelSourceSequence[0]
        for channel in strict_read(exported.data).WaveformSequence[0].ChannelDefinitionSequence
    ]
    assert [(s.CodingSchemeDesignator, s.CodeValue) for s in sources] == [
        ("MDC", "2:1"), ("MDC", "2:2"), ("99TELEMED", "vx"), ("MDC", "2:9"),
    ]  # fmt: skip
    assert read_ecg(exported.data).leads == ("I", "II", "vx", "V7")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"patient_id": "x" * 65}, "exceeds the maximum length of 64"),
        ({"patient_id": "a\\b"}, "patient_id must be a single value"),
        ({"patient_name": "Li^Lei\\Wang"}, "patient_name must be a single value"),
        ({"accession_number": "A" * 17}, "exceeds the maximum length of 16"),
        ({"study_instance_uid": "1.2.3.abc"}, "study_instance_uid must be a valid DICOM UID"),
        ({"sop_instance_uid": "1." + "2" * 70}, "sop_instance_uid must be a valid DICOM UID"),
    ],
)
def test_invalid_values_are_refused(arguments: dict[str, str], message: str) -> None:
    values: dict[str, Any] = {"patient_id": "1", "patient_name": "", **arguments}
    with pytest.raises(EcgExportError, match=message):
        to_dicom_waveform(synthetic(), **values)


def test_unknown_acquisition_time_needs_a_fallback() -> None:
    with pytest.raises(EcgExportError, match="no acquisition time"):
        to_dicom_waveform(synthetic(acquired_at=None), patient_id="1", patient_name="")


def test_too_many_leads_are_refused() -> None:
    record = synthetic(tuple(f"ch{i}" for i in range(25)))
    with pytest.raises(EcgExportError, match="at most 24"):
        to_dicom_waveform(record, patient_id="1", patient_name="")


DCIODVFY = Path(sys.executable).with_name("dciodvfy")


@pytest.mark.parametrize("name", sorted(EXPECTED_CLASS))
def test_every_exported_file_passes_dciodvfy(name: str, tmp_path: Path) -> None:
    """dicom3tools' IOD checker finds no error in what we write (strict when writing)."""
    _, exported = export(name)
    path = tmp_path / "ecg.dcm"
    path.write_bytes(exported.data)
    checked = subprocess.run(
        [str(DCIODVFY), str(path)], capture_output=True, text=True, check=False, timeout=60
    )
    report = checked.stdout + checked.stderr
    errors = [line for line in report.splitlines() if line.startswith("Error")]
    assert errors == [], report
    assert "Multiplex Group Time Offset" not in report
    assert strict_read(exported.data).WaveformSequence[0].get("MultiplexGroupTimeOffset") is None


def test_the_carts_lead_measurements_and_stimuli_survive_the_dicom_copy(tmp_path: Path) -> None:
    """What the analysis of the stored copy reads back: each per-lead measurement on its
    lead's channel, each stimulus at its sample with what it triggered (the amplitude and
    width have no place in a DICOM annotation)."""
    record = read_ecg(paced_scp(), "paced.scp")
    assert record.device_pacemaker_spikes
    assert record.device_lead_measurements
    exported = export_dicom_waveform(
        record, patient_id="HB-XC01-0042", patient_name="", fallback_acquired_at=RECEIVED
    )
    back = read_ecg(exported.data, "exported.dcm")
    assert back.device_statements == ("Atrial-sensed ventricular-paced rhythm",)
    assert back.device_lead_measurements == record.device_lead_measurements
    assert [(s.time_ms, s.triggers) for s in back.device_pacemaker_spikes] == [
        (490.0, "QRS"), (1290.0, "P"), (2090.0, None)
    ]  # fmt: skip
    path = tmp_path / "ecg.dcm"
    path.write_bytes(exported.data)
    checked = subprocess.run(
        [str(DCIODVFY), str(path)], capture_output=True, text=True, check=False, timeout=60
    )
    report = checked.stdout + checked.stderr
    assert [line for line in report.splitlines() if line.startswith("Error")] == [], report
