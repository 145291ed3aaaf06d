"""GE MUSE RestingECG XML: base64 rhythm waveforms and the 12SL measurements."""

from __future__ import annotations

import base64
import binascii
import re
import zlib
from datetime import date, datetime
from xml.etree.ElementTree import Element

import numpy as np

from ecg.errors import EcgFormatError
from ecg.formats._common import (
    FloatArray,
    assemble_record,
    child,
    children,
    derive_limb_leads,
    microvolts_per_unit,
    normalize_lead_name,
    parse_xml,
    path,
    reader_boundary,
    require_float,
    require_int,
    safe_date,
    safe_datetime,
    text_of,
    to_float,
)
from ecg.record import EcgDevice, EcgFormat, EcgPatient, EcgRecord, Sex

__all__ = ["read_ge_muse"]

_CONTEXT = "GE MUSE XML"

_MEASUREMENTS = {
    "VentricularRate": "heart_rate_bpm",
    "PRInterval": "pr_ms",
    "QRSDuration": "qrs_ms",
    "QTInterval": "qt_ms",
    "QTCorrected": "qtc_ms",
    "PAxis": "p_axis_deg",
    "RAxis": "qrs_axis_deg",
    "TAxis": "t_axis_deg",
}


@reader_boundary(_CONTEXT)
def read_ge_muse(data: bytes) -> EcgRecord:
    """Read a GE MUSE ``RestingECG`` XML export.

    The rhythm waveform is used (the median beats are not). MUSE stores I, II and V1–V6;
    III, aVR, aVL and aVF are derived from I and II when the file does not carry them.

    Parameters
    ----------
    data
        The XML file (any encoding its XML declaration names).

    Returns
    -------
    EcgRecord
        Leads in microvolts (``LeadAmplitudeUnitsPerBit`` × sample), the 12SL
        measurements (``RestingECGMeasurements``) and the diagnosis statements.

    Raises
    ------
    EcgFormatError
        Malformed or hostile XML, no rhythm waveform, a lead whose byte or sample count or
        CRC-32 disagrees with its declaration, or an unknown amplitude unit.
    """
    root = parse_xml(data, _CONTEXT)
    if root.tag != "RestingECG":
        raise EcgFormatError(f"{_CONTEXT}: root element is <{root.tag}>, expected <RestingECG>")
    waveform = _rhythm_waveform(root)
    base = require_float(text_of(child(waveform, "SampleBase")), _CONTEXT, "SampleBase")
    exponent = to_float(text_of(child(waveform, "SampleExponent"))) or 0.0
    rate = base * 10.0**exponent
    signals: dict[str, FloatArray] = {}
    for lead_data in children(waveform, "LeadData"):
        name, signal = _read_lead(lead_data)
        if name in signals:
            raise EcgFormatError(f"{_CONTEXT}: lead {name} appears twice in the rhythm waveform")
        signals[name] = signal
    warnings: list[str] = []
    derived = derive_limb_leads(signals)
    if derived:
        warnings.append(f"leads {', '.join(derived)} derived from I and II")
    return assemble_record(
        signals=signals,
        sampling_rate_hz=rate,
        source_format=EcgFormat.GE_MUSE_XML,
        context=_CONTEXT,
        acquired_at=_acquired_at(root),
        patient=_patient(root),
        device=_device(root),
        device_measurements=_measurements(root),
        device_statements=_statements(root),
        warnings=warnings,
    )


def _rhythm_waveform(root: Element) -> Element:
    waveforms = children(root, "Waveform")
    for waveform in waveforms:
        if (text_of(child(waveform, "WaveformType")) or "").lower() == "rhythm":
            return waveform
    raise EcgFormatError(f"{_CONTEXT}: no <Waveform> of type Rhythm ({len(waveforms)} waveforms)")


def _read_lead(lead_data: Element) -> tuple[str, FloatArray]:
    raw_name = text_of(child(lead_data, "LeadID"))
    if raw_name is None:
        raise EcgFormatError(f"{_CONTEXT}: a <LeadData> has no <LeadID>")
    name = normalize_lead_name(raw_name)
    where = f"{_CONTEXT} lead {name}"
    sample_size = require_int(
        text_of(child(lead_data, "LeadSampleSize")) or "2", where, "LeadSampleSize"
    )
    if sample_size != 2:
        raise EcgFormatError(
            f"{where}: LeadSampleSize {sample_size}, only 2-byte samples are known"
        )
    count = require_int(
        text_of(child(lead_data, "LeadSampleCountTotal")), where, "LeadSampleCountTotal"
    )
    per_bit = require_float(
        text_of(child(lead_data, "LeadAmplitudeUnitsPerBit")), where, "LeadAmplitudeUnitsPerBit"
    )
    unit = text_of(child(lead_data, "LeadAmplitudeUnits")) or "MICROVOLTS"
    factor = microvolts_per_unit(unit, where)
    text = child(lead_data, "WaveFormData")
    encoded = "".join((text.text or "").split()) if text is not None else ""
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise EcgFormatError(f"{where}: WaveFormData is not valid base64 ({exc})") from exc
    declared_bytes = to_float(text_of(child(lead_data, "LeadByteCountTotal")))
    if declared_bytes is not None and int(declared_bytes) != len(raw):
        raise EcgFormatError(
            f"{where}: LeadByteCountTotal says {int(declared_bytes)} bytes, WaveFormData holds "
            f"{len(raw)}"
        )
    if len(raw) != 2 * count:
        raise EcgFormatError(
            f"{where}: expected {count} samples ({2 * count} bytes), WaveFormData holds "
            f"{len(raw)} bytes"
        )
    crc = to_float(text_of(child(lead_data, "LeadDataCRC32")))
    if crc is not None and int(crc) != zlib.crc32(raw):
        raise EcgFormatError(
            f"{where}: CRC-32 mismatch (stored {int(crc)}, computed {zlib.crc32(raw)}): the "
            "waveform is corrupted"
        )
    samples = np.frombuffer(raw, dtype="<i2").astype(np.float64)
    return name, samples * per_bit * factor


def _measurements(root: Element) -> dict[str, float]:
    block = child(root, "RestingECGMeasurements")
    if block is None:
        block = child(root, "OriginalRestingECGMeasurements")
    measurements: dict[str, float] = {}
    for tag, key in _MEASUREMENTS.items():
        value = to_float(text_of(child(block, tag)))
        if value is not None:
            measurements[key] = value
    sample_base = to_float(text_of(child(block, "ECGSampleBase")))
    p_on = to_float(text_of(child(block, "POnset")))
    p_off = to_float(text_of(child(block, "POffset")))
    if sample_base and p_on is not None and p_off is not None and p_off > p_on:
        measurements["p_ms"] = (p_off - p_on) * 1000.0 / sample_base
    rr = to_float(text_of(path(root, "PharmaData", "PharmaRRinterval")))
    if rr is not None and rr > 0:
        measurements["rr_ms"] = rr
    return measurements


def _statements(root: Element) -> list[str]:
    diagnosis = child(root, "Diagnosis")
    if diagnosis is None:
        diagnosis = child(root, "OriginalDiagnosis")
    statements: list[str] = []
    current: list[str] = []
    for statement in children(diagnosis, "DiagnosisStatement"):
        text = text_of(child(statement, "StmtText"))
        if text:
            current.append(text)
        flags = {text_of(flag) for flag in children(statement, "StmtFlag")}
        if "ENDSLINE" in flags and current:
            statements.append(" ".join(current))
            current = []
    if current:
        statements.append(" ".join(current))
    return statements


def _muse_date(text: str | None) -> date | None:
    match = re.fullmatch(r"(\d{1,2})[-/](\d{1,2})[-/](\d{4})", text or "")
    if match is None:
        return None
    month, day, year = (int(g) for g in match.groups())
    return safe_date(year, month, day)


def _acquired_at(root: Element) -> datetime | None:
    demographics = child(root, "TestDemographics")
    day = _muse_date(text_of(child(demographics, "AcquisitionDate")))
    time = re.fullmatch(
        r"(\d{1,2}):(\d{2}):(\d{2})", text_of(child(demographics, "AcquisitionTime")) or ""
    )
    if day is None:
        return None
    hour, minute, second = (int(g) for g in time.groups()) if time else (0, 0, 0)
    return safe_datetime(day.year, day.month, day.day, hour, minute, second)


def _patient(root: Element) -> EcgPatient:
    demographics = child(root, "PatientDemographics")
    if demographics is None:
        return EcgPatient()
    names = [text_of(child(demographics, tag)) for tag in ("PatientFirstName", "PatientLastName")]
    age = to_float(text_of(child(demographics, "PatientAge")))
    unit = (text_of(child(demographics, "AgeUnits")) or "YEARS").upper()
    per_year = {"YEARS": 1.0, "MONTHS": 12.0, "WEEKS": 52.1775, "DAYS": 365.25, "HOURS": 8766.0}
    gender = (text_of(child(demographics, "Gender")) or "").upper()
    return EcgPatient(
        id=text_of(child(demographics, "PatientID")),
        name=" ".join(n for n in names if n) or None,
        sex={"MALE": Sex.MALE, "FEMALE": Sex.FEMALE}.get(gender),
        birth_date=_muse_date(text_of(child(demographics, "DateofBirth"))),
        age_years=age / per_year[unit]
        if age is not None and age >= 0 and unit in per_year
        else None,
    )


def _device(root: Element) -> EcgDevice:
    demographics = child(root, "TestDemographics")
    return EcgDevice(
        manufacturer=None,
        model=text_of(child(demographics, "AcquisitionDevice")),
        serial_number=None,
    )
