"""DICOM waveform objects holding an ECG: 12-lead, General and Ambulatory ECG Waveform
Storage, and the ECG channels of a Hemodynamic (or other) waveform object."""

from __future__ import annotations

import io
import math
import re
import warnings
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from ecg.errors import EcgFormatError
from ecg.formats._common import (
    VOLTAGE_UNITS_TO_UV,
    FloatArray,
    assemble_record,
    microvolts_per_unit,
    normalize_lead_name,
    reader_boundary,
    safe_date,
)
from ecg.formats.scp_ecg import SCP_LEADS
from ecg.record import (
    STANDARD_LEADS,
    EcgDevice,
    EcgFormat,
    EcgPacemakerSpike,
    EcgPatient,
    EcgRecord,
    Sex,
)

__all__ = [
    "ECG_SOP_CLASSES",
    "LEAD_MEASUREMENT_CODES",
    "MIXED_WAVEFORM_SOP_CLASSES",
    "PACE_SPIKE_CODES",
    "read_dicom_waveform",
]

_CONTEXT = "DICOM ECG"

#: SOP classes whose waveforms are ECGs.
ECG_SOP_CLASSES: dict[str, str] = {
    "1.2.840.10008.5.1.4.1.1.9.1.1": "12-lead ECG Waveform Storage",
    "1.2.840.10008.5.1.4.1.1.9.1.2": "General ECG Waveform Storage",
    "1.2.840.10008.5.1.4.1.1.9.1.3": "Ambulatory ECG Waveform Storage",
}
#: Waveform SOP classes that may carry ECG channels beside others (pressures, respiration):
#: only the channels whose source is an ECG lead are read.
MIXED_WAVEFORM_SOP_CLASSES: dict[str, str] = {
    "1.2.840.10008.5.1.4.1.1.9.2.1": "Hemodynamic Waveform Storage",
    "1.2.840.10008.5.1.4.1.1.9.3.1": "Basic Cardiac Electrophysiology Waveform Storage",
    "1.2.840.10008.5.1.4.1.1.9.6.1": "Respiratory Waveform Storage",
    "1.2.840.10008.5.1.4.1.1.9.8.1": "Body Position Waveform Storage",
    "1.2.840.10008.5.1.4.1.1.9.5.1": "Arterial Pulse Waveform Storage",
    "1.2.840.10008.5.1.4.1.1.9.4.1": "Basic Voice Audio Waveform Storage",
}

#: MDC codes (DICOM CID 3687 and 3688, per-lead durations and amplitudes) of the keys of
#: :data:`ecg.record.LEAD_MEASUREMENT_KEYS`: (code, meaning). An annotation with one of these
#: concept names that references one channel is that lead's measurement.
LEAD_MEASUREMENT_CODES: dict[str, tuple[str, str]] = {
    "p_ms": ("2:6656", "P duration per lead"),
    "pr_ms": ("2:7168", "PR interval per lead"),
    "qrs_ms": ("2:7936", "QRS duration per lead"),
    "qt_ms": ("2:8192", "QT duration, per lead"),
    "q_ms": ("2:7680", "Q duration, per lead"),
    "r_ms": ("2:11264", "R1 duration, per lead"),
    "s_ms": ("2:12032", "S1 duration, per lead"),
    "p_plus_uv": ("2:1280", "P maximum amplitude, per lead"),
    "p_minus_uv": ("2:1536", "P minimum amplitude, per lead"),
    "q_uv": ("2:1792", "Q amplitude, per lead"),
    "r_uv": ("2:2048", "R amplitude, per lead"),
    "s_uv": ("2:2304", "S amplitude, per lead"),
    "j_uv": ("2:1024", "J point Amplitude, per lead"),
    "t_plus_uv": ("2:2560", "T maximum amplitude, per lead"),
    "t_minus_uv": ("2:2816", "T minimum amplitude, per lead"),
    "st_j20_uv": ("2:14848", "Amplitude at 20 ms into ST segment, per lead"),
    "st_j60_uv": ("2:14336", "Amplitude at 60 ms into ST segment, per lead"),
    "st_j80_uv": ("2:14592", "Amplitude at 80 ms into ST segment, per lead"),
}
#: MDC codes (DICOM CID 3335, ECG annotations) of pacemaker stimuli, by what the stimulus
#: triggered (:attr:`ecg.record.EcgPacemakerSpike.triggers`; ``None``: not said).
PACE_SPIKE_CODES: dict[str | None, tuple[str, str]] = {
    None: ("10:4096", "Antibradycardia pace spike"),
    "P": ("10:4352", "atrium Antibradycardia pace spike"),
    "QRS": ("10:5120", "ventricular Antibradycardia pace spike"),
}
#: Other CID 3335 pace spike codes a device may write (the site: chamber, transthoracic,
#: anti-tachycardia), read as a stimulus of unknown effect.
_OTHER_PACE_SPIKES = frozenset(
    {"10:4608", "10:4864", "10:5376", "10:5632", "10:5888", "10:6144", "10:6400", "10:6656",
     "10:6912"}
)  # fmt: skip
_LEAD_CODES = {code: key for key, (code, _) in LEAD_MEASUREMENT_CODES.items()}
_SPIKE_TRIGGERS = {code: triggers for triggers, (code, _) in PACE_SPIKE_CODES.items()}

_MEASUREMENT_CODES: dict[str, str] = {
    "5.10.2.1-3": "rr_ms",
    "5.13.5-7": "pr_ms",
    "5.13.5-9": "qrs_ms",
    "5.13.5-11": "qt_ms",
    "5.10.2.5-5": "qtc_ms",
    "5.10.3-11": "p_axis_deg",
    "5.10.3-13": "qrs_axis_deg",
    "5.10.3-15": "t_axis_deg",
    "2:16016": "heart_rate_bpm",
    "8867-4": "heart_rate_bpm",
    "8625-6": "pr_ms",
    "8633-0": "qrs_ms",
    "8634-8": "qt_ms",
    "8636-3": "qtc_ms",
    "8626-4": "p_axis_deg",
    "8632-2": "qrs_axis_deg",
    "8638-9": "t_axis_deg",
}
_MEASUREMENT_MEANINGS: dict[str, str] = {
    "ventricular heart rate": "heart_rate_bpm",
    "heart rate": "heart_rate_bpm",
    "rr interval": "rr_ms",
    "p duration": "p_ms",
    "pr interval": "pr_ms",
    "qrs duration": "qrs_ms",
    "qt interval": "qt_ms",
    "qtc interval": "qtc_ms",
    "p axis": "p_axis_deg",
    "qrs axis": "qrs_axis_deg",
    "t axis": "t_axis_deg",
}
_SAMPLE_TYPES = {
    ("SS", 16): "<i2",
    ("US", 16): "<u2",
    ("SB", 8): "i1",
    ("UB", 8): "u1",
    ("SL", 32): "<i4",
    ("UL", 32): "<u4",
}


@reader_boundary(_CONTEXT)
def read_dicom_waveform(data: bytes) -> EcgRecord:
    """Read a DICOM ECG waveform object (12-lead, General or Ambulatory ECG).

    The first multiplex group labelled ``RHYTHM`` (else the first ``ORIGINAL`` group, else
    the first group) is read; median-beat groups are not.

    Parameters
    ----------
    data
        A DICOM Part 10 file (with or without preamble).

    Returns
    -------
    EcgRecord
        One lead per channel in microvolts: ``sample × Channel Sensitivity × Channel
        Sensitivity Correction Factor + Channel Baseline``, converted from the channel's
        sensitivity unit; measurements from the Waveform Annotation Sequence.

    Raises
    ------
    EcgFormatError
        The bytes are not DICOM, not an ECG waveform object, the waveform data is shorter
        or longer than channels × samples × bytes, or a channel's unit is not a voltage.
    """
    notes: list[str] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            dataset = pydicom.dcmread(io.BytesIO(data), force=True)
            dataset.decode()
            sop_class = str(dataset.get("SOPClassUID", ""))
            groups = list(dataset.get("WaveformSequence", []))
        notes.extend(f"DICOM: {w.message}" for w in caught)
    except EcgFormatError:
        raise
    except Exception as exc:  # pydicom raises many types for damaged files
        raise EcgFormatError(f"{_CONTEXT}: not a readable DICOM file ({exc})") from exc
    if not groups:
        raise EcgFormatError(f"{_CONTEXT}: no Waveform Sequence (SOP class {sop_class or '?'})")
    if sop_class and sop_class not in ECG_SOP_CLASSES | MIXED_WAVEFORM_SOP_CLASSES:
        notes.append(f"SOP class {sop_class} is not a waveform class we know; read as ECG")
    if getattr(dataset, "original_encoding", (None, True))[1] is False:
        raise EcgFormatError(f"{_CONTEXT}: big-endian transfer syntax is not supported")
    every_channel = sop_class not in MIXED_WAVEFORM_SOP_CLASSES
    group = _choose_group(groups, every_channel)
    if group is None:
        kind = MIXED_WAVEFORM_SOP_CLASSES.get(sop_class, "waveform")
        raise EcgFormatError(
            f"{_CONTEXT}: this {kind} object holds no ECG channel (no channel's source is an ECG "
            "lead): send the ECG itself from the cart"
        )
    try:
        signals, rate, skipped, by_channel = _decode_group(group, every_channel)
        if skipped:
            notes.append(f"channels that are not ECG leads left out: {', '.join(skipped)}")
        group_number = groups.index(group) + 1
        record = assemble_record(
            signals=signals,
            sampling_rate_hz=rate,
            source_format=EcgFormat.DICOM,
            context=_CONTEXT,
            acquired_at=_acquired_at(dataset),
            patient=_patient(dataset),
            device=EcgDevice(
                manufacturer=_text(dataset, "Manufacturer"),
                model=_text(dataset, "ManufacturerModelName"),
                serial_number=_text(dataset, "DeviceSerialNumber"),
            ),
            device_measurements=_measurements(dataset),
            device_statements=_statements(dataset),
            warnings=notes,
        )
        return replace(
            record,
            device_lead_measurements=_lead_measurements(dataset, group_number, by_channel),
            device_pacemaker_spikes=_pacemaker_spikes(dataset, group_number, rate),
        )
    except EcgFormatError:
        raise
    except Exception as exc:  # damaged elements surface lazily while decoding
        raise EcgFormatError(f"{_CONTEXT}: damaged waveform attributes ({exc})") from exc


def _choose_group(groups: list[Dataset], every_channel: bool) -> Dataset | None:
    """The multiplex group holding the ECG: of those with an ECG channel, the first labelled
    ``RHYTHM``, else the first ``ORIGINAL``, else the one with the most ECG channels."""
    ecg = [g for g in groups if any(_is_ecg(c, every_channel) for c in _definitions(g))]
    for group in ecg:
        if "RHYTHM" in str(group.get("MultiplexGroupLabel", "")).upper():
            return group
    for group in ecg:
        if str(group.get("WaveformOriginality", "")).upper() == "ORIGINAL":
            return group
    return max(
        ecg, key=lambda g: sum(_is_ecg(c, every_channel) for c in _definitions(g)), default=None
    )


def _definitions(group: Dataset) -> list[Dataset]:
    return list(group.get("ChannelDefinitionSequence", []))


def _is_ecg(channel: Dataset, every_channel: bool) -> bool:
    """A channel of an ECG: its source is an ECG lead, or (in an ECG SOP class) it is in a
    voltage unit."""
    if _lead_of_source(channel) is not None:
        return True
    return every_channel and _unit(channel).lower() in VOLTAGE_UNITS_TO_UV


def _unit(channel: Dataset) -> str:
    units = channel.get("ChannelSensitivityUnitsSequence")
    return str(units[0].get("CodeValue", "uV")) if units else "uV"


def _lead_of_source(channel: Dataset) -> str | None:
    """The lead a channel's source code names: SCP-ECG ``5.6.3-9-N``, MDC ``2:N`` (the same
    numbering), or a code meaning or label that is a standard lead's name."""
    sources = channel.get("ChannelSourceSequence")
    source = sources[0] if sources else None
    code = str(source.get("CodeValue", "")) if source is not None else ""
    match = re.fullmatch(r"5\.6\.3-9-(\d+)|2:(\d+)", code)
    if match and int(match.group(1) or match.group(2)) in SCP_LEADS:
        return SCP_LEADS[int(match.group(1) or match.group(2))]
    for text in (
        str(source.get("CodeMeaning", "")) if source is not None else "",
        str(channel.get("ChannelLabel", "")),
    ):
        name = normalize_lead_name(text) if text.strip() else ""
        if name in STANDARD_LEADS:
            return name
    return None


def _decode_group(
    group: Dataset, every_channel: bool
) -> tuple[dict[str, FloatArray], float, list[str], dict[int, str]]:
    """The ECG leads of a multiplex group, its rate, the channels left out, and the lead
    name of each channel read, by its (1-based) channel number."""
    n_channels = int(group.get("NumberOfWaveformChannels", 0) or 0)
    n_samples = int(group.get("NumberOfWaveformSamples", 0) or 0)
    rate = float(group.get("SamplingFrequency", 0) or 0)
    bits = int(group.get("WaveformBitsAllocated", 0) or 0)
    interpretation = str(group.get("WaveformSampleInterpretation", ""))
    if n_channels <= 0 or n_samples <= 0:
        raise EcgFormatError(
            f"{_CONTEXT}: waveform declares {n_channels} channels × {n_samples} samples"
        )
    if rate <= 0:
        raise EcgFormatError(f"{_CONTEXT}: Sampling Frequency must be positive, got {rate}")
    dtype = _SAMPLE_TYPES.get((interpretation, bits))
    if dtype is None:
        raise EcgFormatError(
            f"{_CONTEXT}: sample interpretation {interpretation!r} with {bits} bits allocated is "
            "not supported"
        )
    payload = bytes(group.get("WaveformData") or b"")
    expected = n_channels * n_samples * bits // 8
    if len(payload) < expected:
        raise EcgFormatError(
            f"{_CONTEXT}: Waveform Data holds {len(payload)} bytes, {n_channels} channels × "
            f"{n_samples} samples need {expected} (truncated file?)"
        )
    if len(payload) > expected + 1:  # one pad byte keeps the element length even
        raise EcgFormatError(
            f"{_CONTEXT}: Waveform Data holds {len(payload)} bytes, expected {expected}"
        )
    samples = np.frombuffer(payload[:expected], dtype=dtype).reshape(n_samples, n_channels)
    definitions = _definitions(group)
    if len(definitions) != n_channels:
        raise EcgFormatError(
            f"{_CONTEXT}: {len(definitions)} channel definitions for {n_channels} channels"
        )
    signals: dict[str, FloatArray] = {}
    skipped: list[str] = []
    by_channel: dict[int, str] = {}
    for index, channel in enumerate(definitions):
        name = _channel_name(channel, index)
        if not _is_ecg(channel, every_channel):
            skipped.append(name)
            continue
        if name in signals:
            name = f"{name} ({index + 1})"
        by_channel[index + 1] = name
        sensitivity = float(channel.get("ChannelSensitivity", 1.0) or 1.0)
        correction = float(channel.get("ChannelSensitivityCorrectionFactor", 1.0) or 1.0)
        baseline = float(channel.get("ChannelBaseline", 0.0) or 0.0)
        factor = microvolts_per_unit(_unit(channel), f"{_CONTEXT} channel {name}")
        values = samples[:, index].astype(np.float64)
        signals[name] = (values * sensitivity * correction + baseline) * factor
    return signals, rate, skipped, by_channel


def _channel_name(channel: Dataset, index: int) -> str:
    lead = _lead_of_source(channel)
    if lead is not None:
        return lead
    sources = channel.get("ChannelSourceSequence")
    meaning = str(sources[0].get("CodeMeaning", "")).strip() if sources else ""
    if meaning:
        return normalize_lead_name(meaning)
    label = str(channel.get("ChannelLabel", "")).strip()
    return normalize_lead_name(label) if label else f"channel {index + 1}"


def _text(dataset: Dataset, keyword: str) -> str | None:
    value = dataset.get(keyword)
    text = str(value).strip() if value is not None else ""
    return text or None


def _dicom_date(text: str | None) -> date | None:
    match = re.fullmatch(r"(\d{4})(\d{2})(\d{2})", text or "")
    return safe_date(*(int(g) for g in match.groups())) if match else None


_DT = re.compile(r"(\d{4})(\d{2})(\d{2})(\d{2})?(\d{2})?(\d{2})?(?:\.(\d{1,6}))?([+-]\d{4})?")


def _parse_dt(text: str, zone: str | None) -> datetime | None:
    match = _DT.fullmatch(text.strip())
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    try:
        moment = datetime(
            int(year), int(month), int(day), int(hour or 0), int(minute or 0),
            int(second or 0), int((fraction or "0").ljust(6, "0")),
        )  # fmt: skip
    except ValueError:
        return None
    offset = offset or zone
    if offset and re.fullmatch(r"[+-]\d{4}", offset):
        sign = 1 if offset[0] == "+" else -1
        delta = timedelta(hours=int(offset[1:3]), minutes=int(offset[3:5])) * sign
        moment = moment.replace(tzinfo=UTC if not delta else timezone(delta))
    return moment


def _acquired_at(dataset: Dataset) -> datetime | None:
    zone = _text(dataset, "TimezoneOffsetFromUTC")
    acquisition = _text(dataset, "AcquisitionDateTime")
    if acquisition:
        return _parse_dt(acquisition, zone)
    for date_keyword, time_keyword in (
        ("AcquisitionDate", "AcquisitionTime"),
        ("ContentDate", "ContentTime"),
        ("StudyDate", "StudyTime"),
    ):
        day = _text(dataset, date_keyword)
        if day:
            return _parse_dt(day + (_text(dataset, time_keyword) or ""), zone)
    return None


def _patient(dataset: Dataset) -> EcgPatient:
    age_text = _text(dataset, "PatientAge") or ""
    age: float | None = None
    match = re.fullmatch(r"(\d{3})([DWMY])", age_text)
    if match:
        per_year = {"Y": 1.0, "M": 12.0, "W": 52.1775, "D": 365.25}[match.group(2)]
        age = int(match.group(1)) / per_year
    name = _text(dataset, "PatientName")
    return EcgPatient(
        id=_text(dataset, "PatientID"),
        name=name.replace("^", " ").strip() if name else None,
        sex={"M": Sex.MALE, "F": Sex.FEMALE, "O": Sex.OTHER}.get(
            _text(dataset, "PatientSex") or ""
        ),
        birth_date=_dicom_date(_text(dataset, "PatientBirthDate")),
        age_years=age,
    )


def _code(item: Any, keyword: str) -> tuple[str, str]:
    sequence = item.get(keyword)
    if not sequence:
        return "", ""
    return str(sequence[0].get("CodeValue", "")), str(sequence[0].get("CodeMeaning", ""))


def _measurements(dataset: Dataset) -> dict[str, float]:
    measurements: dict[str, float] = {}
    for annotation in dataset.get("WaveformAnnotationSequence", []):
        if "NumericValue" not in annotation:
            continue
        code, meaning = _code(annotation, "ConceptNameCodeSequence")
        key = _MEASUREMENT_CODES.get(code) or _MEASUREMENT_MEANINGS.get(meaning.strip().lower())
        if key is None or key in measurements:
            continue
        raw = annotation.NumericValue
        value = float(raw[0] if isinstance(raw, MultiValue) else raw)
        unit, _ = _code(annotation, "MeasurementUnitsCodeSequence")
        if key.endswith("_ms"):
            if unit == "s":
                value *= 1000.0
            if value <= 0:  # carts write 0 for "not measured"
                continue
        measurements[key] = value
    return measurements


def _numbers(value: Any) -> list[float]:
    """A multi-valued (or single) numeric element as a list."""
    if value is None:
        return []
    return [float(v) for v in (value if isinstance(value, MultiValue | list | tuple) else [value])]


def _channel(annotation: Dataset) -> tuple[int, int] | None:
    """The (multiplex group, channel) an annotation references first, ``None`` without."""
    pairs = _numbers(annotation.get("ReferencedWaveformChannels"))
    return (int(pairs[0]), int(pairs[1])) if len(pairs) >= 2 else None


def _lead_measurements(
    dataset: Dataset, group_number: int, by_channel: dict[int, str]
) -> dict[str, dict[str, float]]:
    """Per-lead measurements: numeric annotations with a per-lead concept code
    (:data:`LEAD_MEASUREMENT_CODES`) on one channel of the group read."""
    out: dict[str, dict[str, float]] = {}
    for annotation in dataset.get("WaveformAnnotationSequence", []):
        key = _LEAD_CODES.get(_code(annotation, "ConceptNameCodeSequence")[0])
        where = _channel(annotation)
        values = _numbers(annotation.get("NumericValue"))
        if key is None or where is None or not values or where[0] != group_number:
            continue
        if not math.isfinite(values[0]):
            continue  # a damaged value: the lead's other measurements still count
        lead = by_channel.get(where[1])
        if lead is not None:
            out.setdefault(lead, {}).setdefault(key, values[0])
    return out


def _pacemaker_spikes(
    dataset: Dataset, group_number: int, rate: float
) -> tuple[EcgPacemakerSpike, ...]:
    """Pacemaker stimuli: annotations with a CID 3335 pace spike code at a sample position
    (numbered from 1) of the group read."""
    spikes: list[EcgPacemakerSpike] = []
    for annotation in dataset.get("WaveformAnnotationSequence", []):
        code = _code(annotation, "ConceptNameCodeSequence")[0]
        if code not in _SPIKE_TRIGGERS and code not in _OTHER_PACE_SPIKES:
            continue
        where = _channel(annotation)
        if where is not None and where[0] != group_number:
            continue
        spikes.extend(
            EcgPacemakerSpike(
                time_ms=1000.0 * (position - 1) / rate, triggers=_SPIKE_TRIGGERS.get(code)
            )
            for position in _numbers(annotation.get("ReferencedSamplePositions"))
            if position >= 1
        )
    return tuple(sorted(spikes, key=lambda s: s.time_ms))


def _statements(dataset: Dataset) -> list[str]:
    """The cart's statements: each annotation's unformatted text, or the meaning of its
    coded concept (a coded statement, e.g. concept name "Finding", concept "Sinus rhythm")."""
    statements: list[str] = []
    for annotation in dataset.get("WaveformAnnotationSequence", []):
        if "UnformattedTextValue" in annotation:
            statements.append(str(annotation.UnformattedTextValue).strip())
        elif "NumericValue" not in annotation:
            statements.append(_code(annotation, "ConceptCodeSequence")[1].strip())
    return [s for s in statements if s]
