"""Philips PageWriter / IntelliSpace "SierraECG" XML (1.03, 1.04, 1.04.01, 1.04.02).

Waveforms are base64, either plain 16-bit little-endian samples or XLI-compressed. XLI,
per lead: an 8-byte chunk header (int32 byte count, uint16 unused, int16 first residual),
then LZW with fixed 10-bit codes (MSB first; codes 0–255 literal bytes, the dictionary
grows to code 1022, code 1023 ends the chunk). The decompressed bytes hold the high bytes of
all 16-bit words, then all low bytes. The words are second-order prediction residuals
(bias 64). After decoding, III, aVR, aVL and aVF are residuals against the values predicted
from I and II and are restored from them.
"""

from __future__ import annotations

import base64
import binascii
import re
import struct
from datetime import datetime
from xml.etree.ElementTree import Element

import numpy as np
import numpy.typing as npt

from ecg.errors import EcgFormatError
from ecg.formats._common import (
    assemble_record,
    child,
    children,
    descendant,
    descendants,
    local_name,
    normalize_lead_name,
    parse_xml,
    path,
    reader_boundary,
    require_float,
    safe_date,
    safe_datetime,
    text_of,
    to_float,
)
from ecg.record import STANDARD_LEADS, EcgDevice, EcgFormat, EcgPatient, EcgRecord, Sex

__all__ = ["decode_xli", "read_philips_xml"]

_CONTEXT = "Philips XML"
_MAX_CODE = 1022
_END_CODE = 1023
#: The most one XLI lead may decode to: ten minutes at 1,000 samples/s, two bytes a sample.
MAX_LEAD_BYTES = 600 * 1000 * 2

Int64Array = npt.NDArray[np.int64]

# SierraECG names of the global measurements, in order of preference per key
_MEASUREMENTS: dict[str, tuple[str, ...]] = {
    "heart_rate_bpm": ("heartrate", "meanventrate"),
    "rr_ms": ("rrint",),
    "p_ms": ("pdur",),
    "pr_ms": ("print", "meanprint"),
    "qrs_ms": ("qrsdur", "meanqrsdur"),
    "qt_ms": ("qtint", "meanqtint"),
    "qtc_ms": ("qtcb", "qtc", "meanqtc"),
    "p_axis_deg": ("pfrontaxis",),
    "qrs_axis_deg": ("qrsfrontaxis",),
    "t_axis_deg": ("tfrontaxis",),
}


@reader_boundary(_CONTEXT)
def read_philips_xml(data: bytes) -> EcgRecord:
    """Read a Philips SierraECG / PhilipsECG XML file.

    Parameters
    ----------
    data
        The XML file (UTF-8 or UTF-16 with byte order mark).

    Returns
    -------
    EcgRecord
        The 12 leads in microvolts (``resolution`` µV per count), without the trailing
        flat segment and 1 mV calibration pulse PageWriters append, plus the device's global
        measurements and interpretation statements.

    Raises
    ------
    EcgFormatError
        Malformed or hostile XML, unknown waveform encoding or compression, an XLI chunk that
        is truncated or holds an invalid LZW code, or leads of the wrong length.
    """
    root = parse_xml(data, _CONTEXT)
    if local_name(root.tag) != "restingecgdata":
        raise EcgFormatError(
            f"{_CONTEXT}: root element is <{local_name(root.tag)}>, expected <restingecgdata>"
        )
    signal_info = path(root, "dataacquisition", "signalcharacteristics")
    waveforms = descendant(root, "parsedwaveforms")
    if waveforms is None:
        raise EcgFormatError(f"{_CONTEXT}: no <parsedwaveforms> element")
    attrs = waveforms.attrib
    rate = to_float(attrs.get("samplespersecond")) or require_float(
        text_of(child(signal_info, "samplingrate")), _CONTEXT, "samplingrate"
    )
    resolution = to_float(attrs.get("resolution")) or require_float(
        text_of(child(signal_info, "resolution"))
        or text_of(child(signal_info, "signalresolution")),
        _CONTEXT,
        "signal resolution",
    )
    names = _lead_names(attrs, signal_info)
    duration_ms = to_float(attrs.get("durationperchannel"))
    expected = round(duration_ms * rate / 1000.0) if duration_ms else None
    leads = _decode_waveforms(waveforms, names)
    expected = expected if expected is not None else len(leads[0])
    for name, lead in zip(names, leads, strict=True):
        if len(lead) != expected:
            raise EcgFormatError(
                f"{_CONTEXT}: expected {expected} samples for lead {name} "
                f"({duration_ms or 0:g} ms at {rate:g} Hz), found {len(lead)}"
            )
    warnings: list[str] = []
    end = _end_of_signal(leads, round(1000.0 / resolution))
    if end < len(leads[0]):
        warnings.append(
            f"dropped the last {len(leads[0]) - end} samples (flat segment and 1 mV "
            "calibration pulse appended by the cart)"
        )
    missing = _marked_missing(root, names)
    if len(missing) == len(names):
        raise EcgFormatError(
            f"{_CONTEXT}: the cart marked every lead as missing ({_reasons(missing)}): the "
            "electrodes were off or not connected; check them and record the ECG again"
        )
    if missing:
        warnings.append(
            f"lead(s) {', '.join(missing)} left out: the cart marked them missing "
            f"({_reasons(missing)})"
        )
    signals = {
        name: lead[:end].astype(np.float64) * resolution
        for name, lead in zip(names, leads, strict=True)
        if name not in missing
    }
    return assemble_record(
        signals=signals,
        sampling_rate_hz=rate,
        source_format=EcgFormat.PHILIPS_XML,
        context=_CONTEXT,
        acquired_at=_acquired_at(root),
        patient=_patient(root),
        device=_device(root),
        device_measurements=_measurements(root),
        device_statements=_statements(root),
        warnings=warnings,
    )


def _decode_waveforms(waveforms: Element, names: list[str]) -> list[Int64Array]:
    """The leads' sample counts: base64, plain 16-bit or XLI (limb leads restored)."""
    attrs = waveforms.attrib
    encoding = attrs.get("dataencoding", "Base64")
    if encoding != "Base64":
        raise EcgFormatError(f"{_CONTEXT}: waveform data encoding {encoding!r} is not supported")
    try:
        raw = base64.b64decode("".join((waveforms.text or "").split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise EcgFormatError(f"{_CONTEXT}: waveform data is not valid base64 ({exc})") from exc
    compression = attrs.get("compressmethod") or attrs.get("compression") or "Uncompressed"
    if compression == "XLI":
        decoded = decode_xli(raw)
        if len(decoded) < len(names):
            raise EcgFormatError(
                f"{_CONTEXT}: XLI data holds {len(decoded)} leads, the file declares {len(names)}"
            )
        leads = decoded[: len(names)]
        if len({len(lead) for lead in leads}) == 1:  # else refused for its lengths
            _restore_limb_leads(names, leads)
    elif compression.lower() in ("uncompressed", "none", ""):
        leads = _split_plain(raw, len(names))
    else:
        raise EcgFormatError(f"{_CONTEXT}: waveform compression {compression!r} is not supported")
    return leads


def _marked_missing(root: Element, names: list[str]) -> dict[str, str]:
    """Leads the cart marks missing, with its words: none valid (``numberchannelsvalid`` 0),
    or a lead whose quality states carry an INOP (lead off, lead fail)."""
    signal_info = path(root, "dataacquisition", "signalcharacteristics")
    valid = to_float(text_of(child(signal_info, "numberchannelsvalid")))
    if valid == 0:
        return dict.fromkeys(names, "no valid channel")
    missing: dict[str, str] = {}
    for measurement in descendants(root, "leadmeasurement"):
        name = normalize_lead_name(measurement.attrib.get("leadname", ""))
        inops = child(child(measurement, "leadqualitystates"), "inops")
        words = " ".join("".join(inops.itertext()).split()) if inops is not None else ""
        if name in names and words:
            missing[name] = words
    return {name: missing[name] for name in names if name in missing}


def _reasons(missing: dict[str, str]) -> str:
    return "; ".join(sorted(set(missing.values())))


def _lead_names(attrs: dict[str, str], signal_info: Element | None) -> list[str]:
    labels = attrs.get("leadlabels")
    if labels:
        names = [normalize_lead_name(label) for label in labels.split()]
        count = to_float(attrs.get("numberofleads"))
        return names[: int(count)] if count else names
    channels = to_float(text_of(child(signal_info, "numberchannelsvalid"))) or to_float(
        text_of(child(signal_info, "numberchannelsallocated"))
    )
    lead_set = text_of(child(signal_info, "acquisitiontype")) or text_of(
        child(signal_info, "leadset")
    )
    if lead_set in ("STD-12", "10-WIRE") and channels in (None, 12):
        return list(STANDARD_LEADS)
    raise EcgFormatError(
        f"{_CONTEXT}: no lead labels and an unknown lead set {lead_set!r} with {channels} channels"
    )


def _split_plain(raw: bytes, n_leads: int) -> list[Int64Array]:
    if len(raw) % (2 * n_leads):
        raise EcgFormatError(
            f"{_CONTEXT}: {len(raw)} bytes of uncompressed samples do not split into "
            f"{n_leads} leads"
        )
    samples = np.frombuffer(raw, dtype="<i2").astype(np.int64).reshape(n_leads, -1)
    return list(samples)


def _lzw_decode(chunk: bytes, lead_number: int, limit: int = MAX_LEAD_BYTES) -> bytes:
    """LZW with fixed 10-bit codes; reading stops when the last byte is loaded (as the cart).

    Each code is read from the two or three bytes that hold it, so decoding takes time in
    proportion to its output, which may not grow past ``limit`` bytes: LZW expands
    crafted input quadratically (a repeated byte doubles its entry's reach at every code)."""
    n_bytes = len(chunk)
    padded = chunk + b"\x00\x00\x00"
    table: list[bytes] = [bytes([i]) for i in range(256)]
    out = bytearray()
    previous = b""
    index = 0
    # the encoder's reader keeps more than 24 bits buffered; it stops once the input is
    # exhausted, so the final (padding) codes are never emitted
    while (24 + 10 * index) // 8 + 1 < n_bytes:
        bit = 10 * index
        word = int.from_bytes(padded[bit >> 3 : (bit >> 3) + 3], "big")
        code = (word >> (14 - (bit & 7))) & 0x3FF
        index += 1
        if code >= _END_CODE:
            break
        if code < len(table):
            entry = table[code]
        elif code == len(table) and previous:
            entry = previous + previous[:1]
        else:
            raise EcgFormatError(
                f"{_CONTEXT}: XLI lead {lead_number}: invalid LZW code {code} (dictionary has "
                f"{len(table)} entries): the data is corrupted"
            )
        out += entry
        if len(out) > limit:
            raise EcgFormatError(
                f"{_CONTEXT}: XLI lead {lead_number} decodes to more than {limit // 1024} KiB"
                f" (from {n_bytes} bytes): not an ECG lead"
            )
        if previous and len(table) <= _MAX_CODE:
            table.append(previous + entry[:1])
        previous = entry
    return bytes(out)


def _undo_prediction(words: Int64Array, first_residual: int) -> Int64Array:
    """Invert the second-order predictor ``s[i] = 2 s[i-1] − s[i-2] − r[i]``."""
    n = len(words)
    if n < 3:
        return words
    residual = np.empty(n, dtype=np.int64)
    residual[:2] = 0
    residual[2] = first_residual
    residual[3:] = words[2:-1] - 64
    step = np.empty(n, dtype=np.int64)
    step[0] = 0
    step[1] = words[1] - words[0]
    step[2:] = step[1] - np.cumsum(residual[2:])
    samples = words[0] + np.cumsum(step)
    return ((samples + 32768) % 65536) - 32768  # the cart computes in wrapping int16


def decode_xli(raw: bytes) -> list[Int64Array]:
    """Decode Philips XLI-compressed waveform bytes into one integer array per chunk.

    Parameters
    ----------
    raw
        The base64-decoded content of ``<parsedwaveforms>``.

    Returns
    -------
    list of numpy.ndarray
        One ``int64`` array of sample counts per chunk (lead), in file order. Leads III, aVR,
        aVL and aVF are still residuals here (see :func:`read_philips_xml`).

    Raises
    ------
    EcgFormatError
        A chunk header or body is truncated, or an LZW code is invalid.
    """
    leads: list[Int64Array] = []
    offset = 0
    while offset < len(raw):
        if offset + 8 > len(raw):
            raise EcgFormatError(
                f"{_CONTEXT}: XLI chunk {len(leads) + 1} header truncated at byte {offset}"
            )
        size, _unused, first_residual = struct.unpack_from("<iHh", raw, offset)
        offset += 8
        if size <= 0 or offset + size > len(raw):
            raise EcgFormatError(
                f"{_CONTEXT}: XLI chunk {len(leads) + 1} declares {size} bytes, "
                f"{len(raw) - offset} remain (truncated or corrupted data)"
            )
        out = _lzw_decode(raw[offset : offset + size], len(leads) + 1)
        offset += size
        if len(out) < 4:
            raise EcgFormatError(f"{_CONTEXT}: XLI chunk {len(leads) + 1} decodes to no samples")
        half = (len(out) + 1) // 2
        padded = np.frombuffer(out + b"\x00" * (2 * half - len(out)), dtype=np.uint8)
        high = padded[:half].astype(np.int64)
        low = padded[half:].astype(np.int64)
        words = (high << 8) | low
        words = np.where(words >= 32768, words - 65536, words)
        leads.append(_undo_prediction(words, first_residual))
    return leads


def _restore_limb_leads(names: list[str], leads: list[Int64Array]) -> None:
    index = {name: i for i, name in enumerate(names)}
    if not all(name in index for name in ("I", "II", "III", "aVR", "aVL", "aVF")):
        return
    lead_i, lead_ii = leads[index["I"]], leads[index["II"]]
    lead_iii = lead_ii - lead_i - leads[index["III"]]
    leads[index["III"]] = lead_iii
    leads[index["aVR"]] = -leads[index["aVR"]] - np.floor_divide(lead_i + lead_ii, 2)
    leads[index["aVL"]] = np.floor_divide(lead_i - lead_iii, 2) - leads[index["aVL"]]
    leads[index["aVF"]] = np.floor_divide(lead_ii + lead_iii, 2) - leads[index["aVF"]]


def _end_of_signal(leads: list[Int64Array], calibration: int) -> int:
    """Index after the last sample before the trailing zeros-and-calibration-pulse tail."""
    stacked = np.vstack(leads)
    in_tail = np.all((stacked == 0) | (stacked == calibration), axis=0)
    if not in_tail[-1]:
        return stacked.shape[1]
    signal = np.flatnonzero(~in_tail)
    end = int(signal[-1]) + 1 if len(signal) else 0
    pulse = np.all(stacked[:, end:] == calibration, axis=0)
    # only a tail that holds the pulse in every lead is the cart's calibration block
    if not pulse.any() or end < stacked.shape[1] // 2:
        return stacked.shape[1]
    return end


def _acquired_at(root: Element) -> datetime | None:
    acquisition = child(root, "dataacquisition")
    if acquisition is None:
        return None
    day = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})", acquisition.attrib.get("date", ""))
    time = re.fullmatch(r"(\d{2}):(\d{2}):(\d{2})", acquisition.attrib.get("time", ""))
    if day is None:
        return None
    hms = [int(g) for g in time.groups()] if time else [0, 0, 0]
    year, month, dd = (int(g) for g in day.groups())
    return safe_datetime(year, month, dd, *hms)


def _patient(root: Element) -> EcgPatient:
    general = path(root, "patient", "generalpatientdata")
    if general is None:
        return EcgPatient()
    name = child(general, "name")
    parts = [text_of(child(name, tag)) for tag in ("firstname", "middlename", "lastname")]
    age_element = child(general, "age")
    age = to_float(text_of(child(age_element, "years")))
    if age is None:
        months = to_float(text_of(child(age_element, "months")))
        age = months / 12.0 if months is not None else None
    birth_text = text_of(child(age_element, "dateofbirth")) or ""
    birth = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})", birth_text)
    sex = (text_of(child(general, "sex")) or "").lower()
    return EcgPatient(
        id=text_of(child(general, "patientid")),
        name=" ".join(p for p in parts if p) or None,
        sex={"male": Sex.MALE, "female": Sex.FEMALE}.get(sex),
        birth_date=safe_date(*(int(g) for g in birth.groups())) if birth else None,
        age_years=age if age is not None and age >= 0 else None,
    )


def _device(root: Element) -> EcgDevice:
    machine = path(root, "dataacquisition", "machine")
    if machine is None:
        return EcgDevice(manufacturer="Philips")
    return EcgDevice(
        manufacturer="Philips",
        model=text_of(machine),
        serial_number=machine.attrib.get("machineid") or None,
    )


def _measurements(root: Element) -> dict[str, float]:
    interpretation = descendant(root, "interpretation")
    blocks = [
        child(interpretation, "globalmeasurements"),
        child(interpretation, "interpretationmeasurements"),
        path(root, "internalmeasurements", "crossleadmeasurements"),
        path(root, "measurements", "globalmeasurements"),
    ]
    measurements: dict[str, float] = {}
    for key, tags in _MEASUREMENTS.items():
        for block in blocks:
            for tag in tags:
                value = to_float(text_of(child(block, tag)))
                if value is not None:
                    measurements[key] = value
                    break
            if key in measurements:
                break
    return measurements


def _statements(root: Element) -> list[str]:
    interpretation = descendant(root, "interpretation")
    statements = [
        text
        for statement in children(interpretation, "statement")
        if (text := text_of(child(statement, "leftstatement")))
    ]
    severity = text_of(child(interpretation, "severity"))
    if severity:
        statements.append(severity.strip(" -"))
    return statements
