"""Any ECG record as a DICOM waveform object (12-lead or General ECG Waveform Storage).

Viewers and PACS read DICOM ECG, not the vendors' formats, so every record is also offered
as DICOM. What we generate is strict: every element is built with pydicom's writing
validation set to raise, and the IOD content constraints of PS3.3 are checked here:

* 12-lead ECG (PS3.3 A.34.3.4): 1–13 channels, at most 16384 samples per channel,
  200–1000 Hz, samples ``SS``.
* General ECG (PS3.3 A.34.4.4): 1–24 channels, 200–1000 Hz, samples ``SS``; no limit on the
  number of samples.

So a record with exactly the twelve standard leads that fits in 16384 samples is written as
12-lead ECG; anything else (other lead sets, extra leads such as Frank X/Y/Z, or recordings
longer than 16384 samples, e.g. 37 s at 800 Hz) as General ECG, in full: nothing is cut.
A sampling rate outside 200–1000 Hz is resampled into the range (band-limited polyphase
resampling, by the smallest integer factor for low rates so every original sample is kept),
the multiplex group is then marked ``DERIVED`` and :attr:`DicomWaveformExport.notes` says so.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Any

import numpy as np
import numpy.typing as npt
import pydicom
from pydicom import config
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    UID,
    ExplicitVRLittleEndian,
    generate_uid,
)
from pydicom.valuerep import format_number_as_ds

from ecg.errors import EcgError
from ecg.formats.dicom_waveform import LEAD_MEASUREMENT_CODES, PACE_SPIKE_CODES
from ecg.formats.scp_ecg import SCP_LEADS
from ecg.record import LEAD_MEASUREMENT_KEYS, STANDARD_LEADS, EcgRecord, Sex

__all__ = [
    "GENERAL_ECG_WAVEFORM_STORAGE",
    "TWELVE_LEAD_ECG_WAVEFORM_STORAGE",
    "DicomWaveformExport",
    "EcgExportError",
    "export_dicom_waveform",
    "to_dicom_waveform",
]

#: SOP Class UID of 12-lead ECG Waveform Storage.
TWELVE_LEAD_ECG_WAVEFORM_STORAGE = "1.2.840.10008.5.1.4.1.1.9.1.1"
#: SOP Class UID of General ECG Waveform Storage.
GENERAL_ECG_WAVEFORM_STORAGE = "1.2.840.10008.5.1.4.1.1.9.1.2"

MIN_RATE_HZ, MAX_RATE_HZ = 200.0, 1000.0
TWELVE_LEAD_MAX_SAMPLES = 16384
TWELVE_LEAD_MAX_CHANNELS = 13
GENERAL_ECG_MAX_CHANNELS = 24
_INT16_LIMIT = 32767  # -32768 left unused so the range is symmetric
_SCP_CODE = {name: number for number, name in SCP_LEADS.items()}
_PRIVATE_SCHEME = "99TELEMED"

# LOINC codes of the global measurements (the concept names carts write into DICOM ECG)
_MEASUREMENT_CODES: dict[str, tuple[str, str, str, str]] = {
    # key: (LOINC code, meaning, UCUM unit, unit meaning)
    "heart_rate_bpm": ("8867-4", "Heart rate", "/min", "per minute"),
    "pr_ms": ("8625-6", "P-R interval", "ms", "millisecond"),
    "qrs_ms": ("8633-0", "QRS duration", "ms", "millisecond"),
    "qt_ms": ("8634-8", "Q-T interval", "ms", "millisecond"),
    "qtc_ms": ("8636-3", "Q-T interval corrected", "ms", "millisecond"),
    "p_axis_deg": ("8626-4", "P wave axis", "deg", "degree"),
    "qrs_axis_deg": ("8632-2", "QRS axis", "deg", "degree"),
    "t_axis_deg": ("8638-9", "T wave axis", "deg", "degree"),
}


class EcgExportError(EcgError, ValueError):
    """The record or the identifiers cannot be written as a valid DICOM ECG object."""


@dataclass(frozen=True, kw_only=True)
class DicomWaveformExport:
    """A generated DICOM ECG object and what had to be decided to write it.

    Parameters
    ----------
    data
        The DICOM Part 10 file (preamble, ``DICM``, Explicit VR Little Endian).
    sop_class_uid
        :data:`TWELVE_LEAD_ECG_WAVEFORM_STORAGE` or :data:`GENERAL_ECG_WAVEFORM_STORAGE`.
    sop_instance_uid, study_instance_uid, series_instance_uid
        The UIDs written (generated where the caller passed none).
    sampling_rate_hz
        Sampling rate of the written waveform (differs from the record's when resampled).
    sensitivities_uv
        Channel Sensitivity of each written channel, microvolts per count: the quantisation
        step, so each sample is within half of it of the record's value.
    notes
        Human-readable notes (why General ECG was chosen, resampling).
    """

    data: bytes
    sop_class_uid: str
    sop_instance_uid: str
    study_instance_uid: str
    series_instance_uid: str
    sampling_rate_hz: float
    sensitivities_uv: tuple[float, ...]
    notes: tuple[str, ...]


def _element(keyword: str, value: Any) -> DataElement:
    """A data element validated strictly (wrong VR length or characters raise)."""
    tag = tag_for_keyword(keyword)
    if tag is None:  # pragma: no cover - keywords are ours
        raise KeyError(keyword)
    return DataElement(tag, dictionary_VR(tag), value, validation_mode=config.RAISE)


def _dataset(**values: Any) -> Dataset:
    dataset = Dataset()
    for keyword, value in values.items():
        element = _element(keyword, value)
        dataset[element.tag] = element
    return dataset


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    return _dataset(CodeValue=value, CodingSchemeDesignator=scheme, CodeMeaning=meaning)


def _ds(value: float) -> str:
    """A Decimal String (at most 16 characters) for a value."""
    text = repr(float(value))
    if text.endswith(".0"):
        text = text[:-2]
    if len(text) > 16 or "e" in text:
        text = format_number_as_ds(float(value))
    return text


def _check_uid(name: str, uid: str | None) -> str:
    if uid is None:  # a UUID-derived UID (2.25.…), needing no organisation root
        return str(generate_uid(prefix=None))
    if not isinstance(uid, str) or not UID(uid).is_valid:
        raise EcgExportError(
            f"{name} must be a valid DICOM UID (digits and dots, at most 64 characters), "
            f"got {uid!r}"
        )
    return uid


def _check_single(name: str, value: str | None) -> None:
    if value is not None and not isinstance(value, str):
        raise EcgExportError(f"{name} must be a str, got {value!r}")
    if value and "\\" in value:
        raise EcgExportError(
            f"{name} must be a single value: a backslash separates DICOM values, got {value!r}"
        )


def _clean(text: str | None, max_chars: int) -> str | None:
    """Text from the ECG file made fit for a single-valued LO/SH element."""
    if not text:
        return None
    cleaned = re.sub(r"[\\\x00-\x1f\x7f]", " ", text).strip()[:max_chars].strip()
    return cleaned or None


def _dt(moment: datetime) -> tuple[str, str, str, str | None]:
    """DICOM DA, TM, DT and the UTC offset (``+hhmm``) of a datetime."""
    date_text = moment.strftime("%Y%m%d")
    time_text = moment.strftime("%H%M%S")
    if moment.microsecond:
        time_text += f".{moment.microsecond:06d}"
    offset = moment.utcoffset()
    zone = None
    if offset is not None:
        minutes = int(offset / timedelta(minutes=1))
        sign = "+" if minutes >= 0 else "-"
        zone = f"{sign}{abs(minutes) // 60:02d}{abs(minutes) % 60:02d}"
    return date_text, time_text, date_text + time_text + (zone or ""), zone


def _age(age_years: float | None) -> str | None:
    if age_years is None:
        return None
    if age_years >= 1:
        return f"{min(int(age_years), 999):03d}Y"
    if age_years * 12 >= 1:
        return f"{int(age_years * 12):03d}M"
    if age_years * 52.1775 >= 1:
        return f"{int(age_years * 52.1775):03d}W"
    return f"{round(age_years * 365.25):03d}D"


# ---------------------------------------------------------------------------------------
# samples


def _target_rate(rate_hz: float) -> tuple[float, int, int]:
    """The written rate and the resampling ratio (up, down) that gets there."""
    if MIN_RATE_HZ <= rate_hz <= MAX_RATE_HZ:
        return rate_hz, 1, 1
    if rate_hz < MIN_RATE_HZ:
        factor = math.ceil(MIN_RATE_HZ / rate_hz)
        return rate_hz * factor, factor, 1
    ratio = (Fraction(MAX_RATE_HZ) / Fraction(rate_hz)).limit_denominator(1000)
    while float(rate_hz * ratio) > MAX_RATE_HZ:  # limit_denominator may round up
        ratio = Fraction(ratio.numerator, ratio.denominator + 1)
    return float(rate_hz * ratio), ratio.numerator, ratio.denominator


def _resample(samples: npt.NDArray[np.float64], up: int, down: int) -> npt.NDArray[np.float64]:
    if up == down == 1:
        return np.asarray(samples, dtype=np.float64)
    from scipy.signal import resample_poly  # only needed for out-of-range rates

    resampled = np.asarray(resample_poly(samples, up, down, axis=1), dtype=np.float64)
    if down == 1:  # upsampled by an integer factor: keep the original samples exactly
        resampled[:, ::up] = samples
    return resampled


def _sensitivity(channel: npt.NDArray[np.float64]) -> float:
    """The quantisation step (µV per count) for one channel, chosen so nothing clips.

    When the values already lie on a grid (a device's ADC step, e.g. 4.88 µV or 5 µV) that
    fits in 16 bits, that step is used and the conversion is lossless; otherwise the full
    16-bit range is spread over the channel's largest magnitude (rounded up to three
    significant digits, so the written Channel Sensitivity reads plainly).
    """
    peak = float(np.max(np.abs(channel))) if channel.size else 0.0
    if peak == 0.0:
        return 1.0
    values = np.unique(np.abs(channel))
    steps = np.diff(values)
    steps = steps[steps > 1e-9 * peak]
    if steps.size:
        guess = float(steps.min())
        counts = np.round(channel / guess)
        # least-squares step for those counts: removes the float noise of the differences
        step = float(np.dot(channel, counts) / np.dot(counts, counts))
        step = float(_ds(float(f"{step:.12g}")))
        residual = np.max(np.abs(channel / step - counts))
        if peak / step <= _INT16_LIMIT and residual <= 1e-6:
            return step
    needed = peak / _INT16_LIMIT
    exponent = math.floor(math.log10(needed)) - 2
    return float(_ds(math.ceil(needed / 10.0**exponent) * 10.0**exponent))


# ---------------------------------------------------------------------------------------
# the object


def _lead_code(name: str) -> Dataset:
    number = _SCP_CODE.get(name)
    if number is not None:  # CID 3001 (MDC): the term numbers follow the SCP-ECG lead ids
        return _code(f"2:{number}", "MDC", f"Lead {name}")
    # a lead the record names but no standard term identifies: a private code that keeps
    # the name (PS3.3 8.2: coding scheme designators starting with "99" are private)
    value = re.sub(r"[^A-Za-z0-9_.:-]", "_", name)[:16] or "UNKNOWN"
    return _code(value, _PRIVATE_SCHEME, _clean(name, 64) or value)


def _choose_class(record: EcgRecord, n_samples: int) -> tuple[str, list[str], list[str]]:
    notes: list[str] = []
    if set(record.leads) == set(STANDARD_LEADS) and n_samples <= TWELVE_LEAD_MAX_SAMPLES:
        return TWELVE_LEAD_ECG_WAVEFORM_STORAGE, list(STANDARD_LEADS), notes
    if len(record.leads) > GENERAL_ECG_MAX_CHANNELS:
        raise EcgExportError(
            f"the record has {len(record.leads)} leads; General ECG Waveform Storage holds at "
            f"most {GENERAL_ECG_MAX_CHANNELS} channels per multiplex group"
        )
    if set(record.leads) == set(STANDARD_LEADS):
        notes.append(
            f"{n_samples} samples per lead exceed the {TWELVE_LEAD_MAX_SAMPLES} allowed in "
            "12-lead ECG Waveform Storage (PS3.3 A.34.3.4); written in full as General ECG "
            "Waveform Storage"
        )
    else:
        notes.append(
            f"leads {', '.join(record.leads)} are not exactly the twelve standard leads; "
            "written as General ECG Waveform Storage"
        )
    standard = [lead for lead in STANDARD_LEADS if lead in record.leads]
    others = [lead for lead in record.leads if lead not in STANDARD_LEADS]
    return GENERAL_ECG_WAVEFORM_STORAGE, standard + others, notes


def _lead_annotations(record: EcgRecord, order: Sequence[str]) -> list[Dataset]:
    """The cart's per-lead measurements, each on its lead's channel (MDC, CID 3687/3688)."""
    items: list[Dataset] = []
    for lead, values in record.device_lead_measurements.items():
        if lead not in order:
            continue
        for key, value in values.items():
            code, meaning = LEAD_MEASUREMENT_CODES[key]
            unit = "ms" if LEAD_MEASUREMENT_KEYS[key] == "ms" else "uV"
            item = _dataset(
                NumericValue=_ds(value), ReferencedWaveformChannels=[1, order.index(lead) + 1]
            )
            item.ConceptNameCodeSequence = DicomSequence([_code(code, "MDC", meaning)])
            item.MeasurementUnitsCodeSequence = DicomSequence(
                [_code(unit, "UCUM", "millisecond" if unit == "ms" else "microvolt")]
            )
            items.append(item)
    return items


def _spike_annotations(record: EcgRecord, rate: float, n_samples: int) -> list[Dataset]:
    """The cart's pacemaker stimuli, one annotation each at its sample (numbered from 1) of
    the written waveform, coded by what it triggered (MDC, CID 3335)."""
    items: list[Dataset] = []
    for spike in record.device_pacemaker_spikes:
        position = round(spike.time_ms * rate / 1000.0) + 1
        if position > n_samples:
            continue
        code, meaning = PACE_SPIKE_CODES.get(spike.triggers, PACE_SPIKE_CODES[None])
        item = _dataset(
            ReferencedWaveformChannels=[1, 0],
            TemporalRangeType="POINT",
            ReferencedSamplePositions=position,
        )
        item.ConceptNameCodeSequence = DicomSequence([_code(code, "MDC", meaning)])
        items.append(item)
    return items


def _annotations(record: EcgRecord) -> list[Dataset]:
    items: list[Dataset] = []
    for statement in record.device_statements:
        text = statement.strip()
        if text:
            items.append(
                _dataset(UnformattedTextValue=text[:10240], ReferencedWaveformChannels=[1, 0])
            )
    for key, (code, meaning, unit, unit_meaning) in _MEASUREMENT_CODES.items():
        value = record.device_measurements.get(key)
        if value is None:
            continue
        item = _dataset(NumericValue=_ds(value), ReferencedWaveformChannels=[1, 0])
        item.ConceptNameCodeSequence = DicomSequence([_code(code, "LN", meaning)])
        item.MeasurementUnitsCodeSequence = DicomSequence([_code(unit, "UCUM", unit_meaning)])
        items.append(item)
    return items


def export_dicom_waveform(
    record: EcgRecord,
    *,
    patient_id: str,
    patient_name: str,
    study_instance_uid: str | None = None,
    series_instance_uid: str | None = None,
    sop_instance_uid: str | None = None,
    accession_number: str | None = None,
    institution_name: str | None = None,
    fallback_acquired_at: datetime | None = None,
) -> DicomWaveformExport:
    """Write a record as a DICOM ECG waveform object and say what was decided.

    Parameters
    ----------
    record
        The ECG. All its leads are written, one channel each, in standard order then the
        others; its device measurements (global and per lead), statements and pacemaker
        stimuli become waveform annotations.
    patient_id
        Patient ID (LO, at most 64 characters, no backslash).
    patient_name
        Patient name (PN, e.g. ``"王^小明"`` or ``"王小明"``; ``""`` when unknown). Text is
        encoded as UTF-8 (Specific Character Set ``ISO_IR 192``).
    study_instance_uid, series_instance_uid, sop_instance_uid
        UIDs to use; generated (``2.25.`` + a random UUID) when ``None``.
    accession_number
        Accession Number (SH, at most 16 characters), empty when ``None``.
    institution_name
        Institution Name (LO), omitted when ``None``.
    fallback_acquired_at
        Acquisition time to write when the record has none (Acquisition DateTime is Type 1),
        e.g. the time the ECG was received.

    Returns
    -------
    DicomWaveformExport
        The Part 10 bytes, the SOP class chosen, the UIDs, the rate and the notes.

    Raises
    ------
    EcgExportError
        A UID is malformed, a value breaks its VR (too long, bad characters), the record has
        more than 24 leads, or neither the record nor `fallback_acquired_at` gives an
        acquisition time.
    """
    if not isinstance(record, EcgRecord):
        raise EcgExportError(f"record must be an EcgRecord, got {type(record).__name__}")
    for name, value in (
        ("patient_id", patient_id),
        ("patient_name", patient_name),
        ("accession_number", accession_number),
        ("institution_name", institution_name),
    ):
        _check_single(name, value)
    study_uid = _check_uid("study_instance_uid", study_instance_uid)
    series_uid = _check_uid("series_instance_uid", series_instance_uid)
    instance_uid = _check_uid("sop_instance_uid", sop_instance_uid)
    acquired_at = record.acquired_at or fallback_acquired_at
    if acquired_at is None:
        raise EcgExportError(
            "the record has no acquisition time and no fallback_acquired_at was given; "
            "DICOM Acquisition DateTime (0008,002A) is required"
        )

    rate, up, down = _target_rate(record.sampling_rate_hz)
    samples = _resample(record.samples_uv, up, down)
    notes: list[str] = []
    if (up, down) != (1, 1):
        notes.append(
            f"sampling rate {record.sampling_rate_hz:g} Hz is outside the 200–1000 Hz DICOM "
            f"ECG waveforms allow; resampled to {rate:g} Hz (waveform marked DERIVED)"
        )
    if record.acquired_at is None:
        notes.append("the record has no acquisition time; fallback_acquired_at was written")
    sop_class, order, class_notes = _choose_class(record, samples.shape[1])
    notes.extend(class_notes)
    rows = [record.leads.index(lead) for lead in order]
    samples = samples[rows]

    try:
        return _build(
            record=record,
            samples=samples,
            order=order,
            rate=rate,
            derived=(up, down) != (1, 1),
            sop_class=sop_class,
            uids=(study_uid, series_uid, instance_uid),
            acquired_at=acquired_at,
            patient_id=patient_id,
            patient_name=patient_name,
            accession_number=accession_number,
            institution_name=institution_name,
            notes=notes,
        )
    except EcgExportError:
        raise
    except (ValueError, TypeError, OverflowError) as exc:  # pydicom's strict validation
        raise EcgExportError(f"cannot write a valid DICOM ECG object: {exc}") from exc


def _build(
    *,
    record: EcgRecord,
    samples: npt.NDArray[np.float64],
    order: Sequence[str],
    rate: float,
    derived: bool,
    sop_class: str,
    uids: tuple[str, str, str],
    acquired_at: datetime,
    patient_id: str,
    patient_name: str,
    accession_number: str | None,
    institution_name: str | None,
    notes: list[str],
) -> DicomWaveformExport:
    study_uid, series_uid, instance_uid = uids
    date_text, time_text, datetime_text, zone = _dt(acquired_at)
    patient = record.patient
    ds = _dataset(
        SpecificCharacterSet="ISO_IR 192",
        SOPClassUID=sop_class,
        SOPInstanceUID=instance_uid,
        StudyDate=date_text,
        ContentDate=date_text,
        AcquisitionDateTime=datetime_text,
        StudyTime=time_text,
        ContentTime=time_text,
        AccessionNumber=accession_number or "",
        Modality="ECG",
        Manufacturer=_clean(record.device.manufacturer, 64) or "",
        ReferringPhysicianName="",
        PatientName=patient_name,
        PatientID=patient_id,
        PatientBirthDate=patient.birth_date.strftime("%Y%m%d") if patient.birth_date else "",
        PatientSex={Sex.MALE: "M", Sex.FEMALE: "F", Sex.OTHER: "O"}.get(patient.sex, "")
        if patient.sex
        else "",
        StudyInstanceUID=study_uid,
        SeriesInstanceUID=series_uid,
        StudyID="",
        SeriesNumber=1,
        InstanceNumber=1,
    )
    optional = {
        "InstitutionName": institution_name,
        "ManufacturerModelName": _clean(record.device.model, 64),
        "DeviceSerialNumber": _clean(record.device.serial_number, 64),
        "PatientAge": _age(patient.age_years),
        "TimezoneOffsetFromUTC": zone,
    }
    for keyword, value in optional.items():
        if value:
            element = _element(keyword, value)
            ds[element.tag] = element
    ds.AcquisitionContextSequence = DicomSequence([])

    sensitivities = [_sensitivity(channel) for channel in samples]
    counts = np.round(samples / np.array(sensitivities)[:, None])
    if np.abs(counts).max(initial=0) > _INT16_LIMIT:  # pragma: no cover - _sensitivity's job
        raise EcgExportError("internal error: quantised samples exceed 16 bits")
    channels = []
    for number, (lead, sensitivity) in enumerate(zip(order, sensitivities, strict=True), 1):
        channel = _dataset(
            WaveformChannelNumber=number,
            ChannelLabel=_clean(lead, 16) or f"channel {number}",
            ChannelSensitivity=_ds(sensitivity),
            ChannelSensitivityCorrectionFactor="1",
            ChannelBaseline="0",
            ChannelSampleSkew="0",
            WaveformBitsStored=16,
        )
        channel.ChannelSourceSequence = DicomSequence([_lead_code(lead)])
        channel.ChannelSensitivityUnitsSequence = DicomSequence([_code("uV", "UCUM", "microvolt")])
        channels.append(channel)
    # No Multiplex Group Time Offset: it is Type 1C, only when Acquisition DateTime is absent
    # (PS3.3 C.10.9), and we always write Acquisition DateTime (dciodvfy flags it otherwise).
    group = _dataset(
        WaveformOriginality="DERIVED" if derived else "ORIGINAL",
        NumberOfWaveformChannels=len(order),
        NumberOfWaveformSamples=samples.shape[1],
        SamplingFrequency=_ds(rate),
        MultiplexGroupLabel="RHYTHM",
        WaveformBitsAllocated=16,
        WaveformSampleInterpretation="SS",
    )
    group.ChannelDefinitionSequence = DicomSequence(channels)
    interleaved = counts.T.astype("<i2", copy=False)
    group.add(
        DataElement(
            0x54001010,  # Waveform Data
            "OW",  # 16-bit samples (PS3.5 8.3)
            interleaved.tobytes(),
            validation_mode=config.RAISE,
        )
    )
    ds.WaveformSequence = DicomSequence([group])
    annotations = [
        *_annotations(record),
        *_lead_annotations(record, order),
        *_spike_annotations(record, rate, samples.shape[1]),
    ]
    if annotations:
        ds.WaveformAnnotationSequence = DicomSequence(annotations)

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(sop_class)
    meta.MediaStorageSOPInstanceUID = UID(instance_uid)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds.file_meta = meta
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
    return DicomWaveformExport(
        data=buffer.getvalue(),
        sop_class_uid=sop_class,
        sop_instance_uid=instance_uid,
        study_instance_uid=study_uid,
        series_instance_uid=series_uid,
        sampling_rate_hz=rate,
        sensitivities_uv=tuple(sensitivities),
        notes=tuple(notes),
    )


def to_dicom_waveform(
    record: EcgRecord,
    *,
    patient_id: str,
    patient_name: str,
    study_instance_uid: str | None = None,
    series_instance_uid: str | None = None,
    sop_instance_uid: str | None = None,
    accession_number: str | None = None,
    institution_name: str | None = None,
    fallback_acquired_at: datetime | None = None,
) -> bytes:
    """Write a record as a DICOM Part 10 ECG waveform file.

    12-lead ECG Waveform Storage when the record has exactly the twelve standard leads and
    at most 16384 samples per lead, General ECG Waveform Storage otherwise; see
    :func:`export_dicom_waveform`, which also returns the notes (resampling, class choice).

    Parameters
    ----------
    record, patient_id, patient_name, study_instance_uid, series_instance_uid, \
sop_instance_uid, accession_number, institution_name, fallback_acquired_at
        As for :func:`export_dicom_waveform`.

    Returns
    -------
    bytes
        The DICOM file.

    Raises
    ------
    EcgExportError
        As for :func:`export_dicom_waveform`.
    """
    return export_dicom_waveform(
        record,
        patient_id=patient_id,
        patient_name=patient_name,
        study_instance_uid=study_instance_uid,
        series_instance_uid=series_instance_uid,
        sop_instance_uid=sop_instance_uid,
        accession_number=accession_number,
        institution_name=institution_name,
        fallback_acquired_at=fallback_acquired_at,
    ).data
