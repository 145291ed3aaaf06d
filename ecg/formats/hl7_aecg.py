"""HL7 v3 annotated ECG (FDA aECG, ``AnnotatedECG``)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone
from xml.etree.ElementTree import Element

import numpy as np

from ecg.errors import EcgFormatError
from ecg.formats._common import (
    FloatArray,
    assemble_record,
    child,
    children,
    descendant,
    descendants,
    local_name,
    microvolts_per_unit,
    normalize_lead_name,
    parse_xml,
    path,
    reader_boundary,
    require_float,
    safe_date,
    text_of,
    to_float,
)
from ecg.record import EcgDevice, EcgFormat, EcgPatient, EcgRecord, Sex

__all__ = ["read_hl7_aecg"]

_CONTEXT = "HL7 aECG"

_MEASUREMENTS = {
    "MDC_ECG_HEART_RATE": "heart_rate_bpm",
    "MDC_ECG_TIME_PD_RR": "rr_ms",
    "MDC_ECG_TIME_PD_P": "p_ms",
    "MDC_ECG_TIME_PD_PR": "pr_ms",
    "MDC_ECG_TIME_PD_QRS": "qrs_ms",
    "MDC_ECG_TIME_PD_QT": "qt_ms",
    "MDC_ECG_TIME_PD_QTC": "qtc_ms",  # files spell it MDC_ECG_TIME_PD_QTc
    "MDC_ECG_ANGLE_P_FRONT": "p_axis_deg",
    "MDC_ECG_ANGLE_QRS_FRONT": "qrs_axis_deg",
    "MDC_ECG_ANGLE_T_FRONT": "t_axis_deg",
}
_TIME_UNITS_S = {"s": 1.0, "ms": 1e-3, "us": 1e-6}
_STATEMENT_CODES = {
    "MDC_ECG_INTERPRETATION_STATEMENT",
    "MDC_ECG_INTERPRETATION_SUMMARY",
    "MDC_ECG_INTERPRETATION",
    "MDC_ECG_RHY",
}


@reader_boundary(_CONTEXT)
def read_hl7_aecg(data: bytes) -> EcgRecord:
    """Read an HL7 v3 annotated ECG (``AnnotatedECG``) file.

    The rhythm series (``code="RHYTHM"``, else the first series) is read; representative
    beats are not.

    Parameters
    ----------
    data
        The XML file.

    Returns
    -------
    EcgRecord
        Leads in microvolts (``origin + scale × digit``), the sampling rate from the time
        sequence increment, the global measurements and interpretation statements.

    Raises
    ------
    EcgFormatError
        Malformed or hostile XML, no rhythm series or time sequence, a non-numeric digit, an
        unknown unit, or leads of different lengths.
    """
    root = parse_xml(data, _CONTEXT)
    if local_name(root.tag) != "AnnotatedECG":
        raise EcgFormatError(
            f"{_CONTEXT}: root element is <{local_name(root.tag)}>, expected <AnnotatedECG>"
        )
    series = _rhythm_series(root)
    sequence_set = path(series, "component", "sequenceSet")
    if sequence_set is None:
        raise EcgFormatError(f"{_CONTEXT}: the rhythm series has no <sequenceSet>")
    rate: float | None = None
    start: datetime | None = None
    signals: dict[str, FloatArray] = {}
    for component in children(sequence_set, "component"):
        sequence = child(component, "sequence")
        code = child(sequence, "code") if sequence is not None else None
        code_value = code.attrib.get("code", "") if code is not None else ""
        value = child(sequence, "value")
        if value is None:
            continue
        if code_value in ("TIME_ABSOLUTE", "TIME_RELATIVE"):
            rate, start = _time_axis(value, code_value)
        elif code_value.startswith("MDC_ECG_LEAD_"):
            name = normalize_lead_name(code_value)
            if name in signals:
                raise EcgFormatError(f"{_CONTEXT}: lead {name} appears twice in the rhythm series")
            signals[name] = _lead_values(value, name)
    if rate is None:
        raise EcgFormatError(
            f"{_CONTEXT}: the rhythm series has no time sequence (no sampling rate)"
        )
    if start is None:
        start = _parse_ts(_effective_time(series) or _effective_time(root))
    return assemble_record(
        signals=signals,
        sampling_rate_hz=rate,
        source_format=EcgFormat.HL7_AECG,
        context=_CONTEXT,
        acquired_at=start,
        patient=_patient(root),
        device=_device(series),
        device_measurements=_measurements(root),
        device_statements=_statements(root),
    )


def _rhythm_series(root: Element) -> Element:
    all_series = descendants(root, "series")
    for series in all_series:
        code = child(series, "code")
        if code is not None and code.attrib.get("code") == "RHYTHM":
            return series
    if all_series:
        return all_series[0]
    raise EcgFormatError(f"{_CONTEXT}: no <series> element")


def _time_axis(value: Element, code: str) -> tuple[float, datetime | None]:
    increment = child(value, "increment")
    if increment is None:
        raise EcgFormatError(f"{_CONTEXT}: the time sequence has no <increment>")
    step = require_float(increment.attrib.get("value"), _CONTEXT, "time increment")
    unit = increment.attrib.get("unit", "s")
    if unit not in _TIME_UNITS_S:
        raise EcgFormatError(f"{_CONTEXT}: time increment unit {unit!r} is not s, ms or us")
    step_s = step * _TIME_UNITS_S[unit]
    if step_s <= 0:
        raise EcgFormatError(f"{_CONTEXT}: time increment must be positive, got {step} {unit}")
    head = child(value, "head")
    start = (
        _parse_ts(head.attrib.get("value"))
        if head is not None and code == "TIME_ABSOLUTE"
        else None
    )
    return 1.0 / step_s, start


def _lead_values(value: Element, name: str) -> FloatArray:
    where = f"{_CONTEXT} lead {name}"
    kind = value.attrib.get("{http://www.w3.org/2001/XMLSchema-instance}type", "")
    origin_element = child(value, "origin")
    scale_element = child(value, "scale")
    digits = child(value, "digits")
    if digits is None:
        raise EcgFormatError(f"{where}: value of type {kind or '?'} has no <digits>")
    origin = 0.0
    origin_factor = 1.0
    if origin_element is not None:
        origin = require_float(origin_element.attrib.get("value"), where, "origin")
        origin_factor = microvolts_per_unit(origin_element.attrib.get("unit", "uV"), where)
    if scale_element is None:
        raise EcgFormatError(f"{where}: no <scale>, the amplitude unit is unknown")
    scale = require_float(scale_element.attrib.get("value"), where, "scale")
    scale_factor = microvolts_per_unit(scale_element.attrib.get("unit"), where)
    text = digits.text or ""
    try:
        raw = np.array(text.split(), dtype=np.float64)
    except ValueError as exc:
        raise EcgFormatError(f"{where}: <digits> holds a non-numeric value ({exc})") from exc
    if raw.size == 0:
        raise EcgFormatError(f"{where}: <digits> is empty")
    if not np.isfinite(raw).all():
        raise EcgFormatError(f"{where}: <digits> holds non-finite values")
    with np.errstate(over="ignore", invalid="ignore"):
        microvolts = origin * origin_factor + raw * scale * scale_factor
    if not np.isfinite(microvolts).all():
        raise EcgFormatError(f"{where}: <origin>, <scale> and <digits> give values out of range")
    return microvolts


def _effective_time(element: Element | None) -> str | None:
    effective = child(element, "effectiveTime")
    for tag in ("low", "center"):
        item = child(effective, tag)
        if item is not None and item.attrib.get("value"):
            return item.attrib["value"]
    return None


_TS = re.compile(
    r"(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:\.(\d{1,6}))?(?:([+-])(\d{2})(\d{2}))?"
)


def _parse_ts(text: str | None) -> datetime | None:
    """HL7 v3 TS ``YYYYMMDDHHMMSS.UUUU[+|-ZZzz]``; naive unless the zone is given."""
    match = _TS.fullmatch(text or "")
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, sign, tz_h, tz_m = match.groups()
    try:
        moment = datetime(
            int(year),
            int(month or 1),
            int(day or 1),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            int((fraction or "0").ljust(6, "0")),
        )
    except ValueError:
        return None
    if sign:
        offset = timedelta(hours=int(tz_h), minutes=int(tz_m)) * (1 if sign == "+" else -1)
        moment = moment.replace(tzinfo=UTC if not offset else timezone(offset))
    return moment


def _patient(root: Element) -> EcgPatient:
    subject = descendant(root, "trialSubject")
    person = descendant(subject, "subjectDemographicPerson")
    identifier = child(subject, "id")
    name_element = child(person, "name")
    name = " ".join("".join(name_element.itertext()).split()) if name_element is not None else ""
    gender = child(person, "administrativeGenderCode")
    birth = child(person, "birthTime")
    birth_ts = _parse_ts(birth.attrib.get("value")) if birth is not None else None
    birth_date: date | None = (
        safe_date(birth_ts.year, birth_ts.month, birth_ts.day) if birth_ts is not None else None
    )
    age: float | None = None
    for observation in descendants(root, "relatedObservation"):
        code = child(observation, "code")
        value = child(observation, "value")
        if code is not None and value is not None and code.attrib.get("code") == "21612-7":
            years = to_float(value.attrib.get("value"))
            per_year = {"a": 1.0, "mo": 12.0, "wk": 52.1775, "d": 365.25}.get(
                value.attrib.get("unit", "a")
            )
            if years is not None and per_year and years >= 0:
                age = years / per_year
            break
    return EcgPatient(
        id=(identifier.attrib.get("extension") or identifier.attrib.get("root"))
        if identifier is not None
        else None,
        name=name or None,
        sex={"M": Sex.MALE, "F": Sex.FEMALE}.get(gender.attrib.get("code", ""))
        if gender is not None
        else None,
        birth_date=birth_date,
        age_years=age,
    )


def _device(series: Element) -> EcgDevice:
    author = descendant(series, "seriesAuthor")
    device = child(author, "manufacturedSeriesDevice")
    identifier = child(device, "id")
    serial = identifier.attrib.get("extension") if identifier is not None else None
    return EcgDevice(
        manufacturer=text_of(path(author, "manufacturerOrganization", "name")),
        model=text_of(child(device, "manufacturerModelName")),
        serial_number=serial if serial and serial != "0" else None,
    )


def _annotation_value(annotation: Element) -> tuple[str, Element | None]:
    code = child(annotation, "code")
    return (code.attrib.get("code", "") if code is not None else ""), child(annotation, "value")


def _measurements(root: Element) -> dict[str, float]:
    # prefer the representative-beat (global) annotations, then any annotation in the file
    derived = descendant(root, "derivedSeries")
    scopes = [derived, root] if derived is not None else [root]
    measurements: dict[str, float] = {}
    for scope in scopes:
        for annotation in descendants(scope, "annotation"):
            code, value = _annotation_value(annotation)
            key = _MEASUREMENTS.get(code.upper())
            if key is None or key in measurements or value is None:
                continue
            number = to_float(value.attrib.get("value"))
            unit = value.attrib.get("unit", "")
            if number is None:
                continue
            if key.endswith("_ms") and unit == "s":
                number *= 1000.0
            measurements[key] = number
    return measurements


def _statements(root: Element) -> list[str]:
    statements: list[str] = []
    for annotation in descendants(root, "annotation"):
        code, value = _annotation_value(annotation)
        if code not in _STATEMENT_CODES or value is None:
            continue
        text = value.attrib.get("displayName") or "".join(value.itertext()).strip()
        if not text and value.attrib.get("code"):
            text = value.attrib["code"]
        if text:
            statements.append(text)
    return statements
