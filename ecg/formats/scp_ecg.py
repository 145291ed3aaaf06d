"""SCP-ECG (EN 1064 / ISO 11073-91064) and the Healforce non-conforming variant.

Standard files: sections located through section 0, Huffman-coded rhythm data (section 2's
default table or the file's own tables, or plain 16-bit samples when section 2 is absent),
first or second difference coding, patient and device data from section 1, global
measurements from section 7 and statements from sections 8 and 11. Every record and
section CRC (CRC-CCITT) is checked.

Healforce devices (Prince 180D and relatives) write files shaped like SCP-ECG that do not
conform: 0-based section offsets, all leads interleaved in one stream of 10-bit samples
(four 12-bit words packed into three 16-bit words), no Huffman coding, the sampling rate
in Hz where the standard has the sample interval in microseconds, and big-endian dates.
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone

import numpy as np

from ecg.errors import EcgFormatError
from ecg.formats._common import (
    MAX_TOTAL_SAMPLES,
    ByteReader,
    FloatArray,
    assemble_record,
    reader_boundary,
    safe_date,
    safe_datetime,
)
from ecg.record import EcgDevice, EcgFormat, EcgPatient, EcgRecord, Sex

__all__ = ["is_healforce_scp", "is_scp_ecg", "read_scp_ecg", "read_scp_ecg_healforce"]

_CONTEXT = "SCP-ECG"
_HEALFORCE = "SCP-ECG (Healforce)"
_UNDEFINED = 29999

#: EN 1064 lead identifiers (section 3) to lead names.
SCP_LEADS: dict[int, str] = {
    1: "I", 2: "II", 3: "V1", 4: "V2", 5: "V3", 6: "V4", 7: "V5", 8: "V6", 9: "V7",
    10: "V2R", 11: "V3R", 12: "V4R", 13: "V5R", 14: "V6R", 15: "V7R", 16: "X", 17: "Y",
    18: "Z", 19: "CC5", 20: "CM5", 21: "LA", 22: "RA", 23: "LL", 24: "fI", 25: "fE",
    26: "fC", 27: "fA", 28: "fM", 29: "fF", 30: "fH", 61: "III", 62: "aVR", 63: "aVL",
    64: "aVF", 65: "-aVR", 66: "V8", 67: "V9", 68: "V8R", 69: "V9R", 70: "D", 71: "A",
    72: "J",
}  # fmt: skip

_MANUFACTURERS: dict[int, str] = {
    1: "Burdick", 2: "Cambridge Heart", 3: "Compumed", 4: "Datamed", 5: "Fukuda",
    6: "Hewlett-Packard", 7: "Marquette", 8: "Mortara", 9: "Nihon Kohden", 10: "Okin",
    11: "Quinton", 12: "Siemens", 13: "Spacelabs", 14: "Telemed", 15: "Hellige",
    16: "ESA-OTE", 17: "Schiller", 18: "Picker-Schwarzer", 19: "et medical devices",
    20: "Zwönitz",
}  # fmt: skip


@dataclass(frozen=True)
class _Section:
    id: int
    offset: int  # 0-based offset of the section header in the file
    length: int  # including the 16-byte header

    @property
    def body(self) -> int:
        return self.offset + 16


@dataclass(frozen=True)
class _HuffmanCode:
    prefix_bits: int
    total_bits: int
    switch_table: bool
    base_value: int


def is_scp_ecg(data: bytes) -> bool:
    """Whether the bytes look like a standard SCP-ECG record (section 0 at byte 7, 1-based)."""
    if len(data) < 32:
        return False
    if data[16:22] == b"SCPECG":
        return True
    section_id = int.from_bytes(data[8:10], "little")
    first_entry_id = int.from_bytes(data[22:24], "little")
    first_entry_index = int.from_bytes(data[28:32], "little")
    declared = int.from_bytes(data[2:6], "little")
    return section_id == 0 and first_entry_id == 0 and first_entry_index == 7 and declared > 22


def is_healforce_scp(data: bytes) -> bool:
    """Whether the bytes look like a Healforce SCP-ECG file (section 0 at offset 6, 0-based)."""
    if len(data) < 32 or data[16:22] == b"SCPECG":
        return False
    section_id = int.from_bytes(data[8:10], "little")
    first_entry_id = int.from_bytes(data[22:24], "little")
    first_entry_index = int.from_bytes(data[28:32], "little")
    return section_id == 0 and first_entry_id == 0 and first_entry_index == 6


# --- section table ---------------------------------------------------------------------


def _read_sections(reader: ByteReader, *, one_based: bool) -> dict[int, _Section]:
    context = reader.context
    section0_length = reader.u32(10, "section 0 length")
    if section0_length < 16 or (section0_length - 16) % 10:
        raise EcgFormatError(
            f"{context} section 0: length {section0_length} is not 16 + a multiple of 10"
        )
    reader.need(6, section0_length, "section 0")
    sections: dict[int, _Section] = {}
    for entry in range(6 + 16, 6 + section0_length, 10):
        section_id, length, index = reader.unpack("<HII", entry, "section 0 pointer")
        if length == 0:
            continue
        offset = index - 1 if one_based else index
        if length < 16:
            raise EcgFormatError(f"{context} section {section_id}: length {length} is below 16")
        if offset < 6 or offset + length > len(reader.data):
            raise EcgFormatError(
                f"{context} section {section_id}: declared at offset {offset} with {length} "
                f"bytes, but the file has {len(reader.data)} bytes (truncated file?)"
            )
        header_id = reader.u16(offset + 2, f"section {section_id} header")
        if header_id != section_id:
            raise EcgFormatError(
                f"{context} section {section_id}: header at offset {offset} names section "
                f"{header_id}"
            )
        sections[section_id] = _Section(section_id, offset, length)
    return sections


def _check_crcs(reader: ByteReader, sections: dict[int, _Section]) -> None:
    data = reader.data
    stored = reader.u16(0, "record CRC")
    declared = reader.u32(2, "record length")
    if declared != len(data):
        raise EcgFormatError(
            f"{_CONTEXT}: record length field says {declared} bytes, the data has {len(data)} "
            "(truncated or padded file)"
        )
    computed = binascii.crc_hqx(data[2:], 0xFFFF)
    if stored != computed:
        raise EcgFormatError(
            f"{_CONTEXT}: record CRC mismatch (stored 0x{stored:04X}, computed 0x{computed:04X}):"
            " the file is corrupted"
        )
    for section in sections.values():
        stored = reader.u16(section.offset, f"section {section.id} CRC")
        computed = binascii.crc_hqx(
            data[section.offset + 2 : section.offset + section.length], 0xFFFF
        )
        if stored != computed:
            raise EcgFormatError(
                f"{_CONTEXT} section {section.id}: CRC mismatch (stored 0x{stored:04X}, "
                f"computed 0x{computed:04X})"
            )


# --- section 1: patient, device, time --------------------------------------------------


def _decode_text(raw: bytes) -> str | None:
    raw = raw.split(b"\x00", 1)[0]
    for encoding in ("utf-8", "gb18030"):
        try:
            text = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        text = raw.decode("latin-1")
    text = text.strip()
    return text or None


def _read_tags(reader: ByteReader, section: _Section) -> dict[int, bytes]:
    tags: dict[int, bytes] = {}
    position = section.body
    end = section.offset + section.length
    while position + 3 <= end:
        tag, length = reader.unpack("<BH", position, "section 1 tag")
        if tag == 255:
            break
        if position + 3 + length > end:
            raise EcgFormatError(
                f"{reader.context} section 1: tag {tag} declares {length} bytes, past the "
                "section end"
            )
        tags.setdefault(tag, reader.data[position + 3 : position + 3 + length])
        position += 3 + length
    return tags


def _patient_from_tags(tags: dict[int, bytes], *, big_endian_dates: bool) -> EcgPatient:
    names = [_decode_text(tags[t]) for t in (1, 0) if t in tags]
    name = " ".join(n for n in names if n) or None
    age: float | None = None
    if 4 in tags and len(tags[4]) >= 3:
        value = int.from_bytes(tags[4][:2], "little")
        per_year = {1: 1.0, 2: 12.0, 3: 52.1775, 4: 365.25, 5: 8766.0}.get(tags[4][2])
        if per_year is not None and 0 < value < 1000 * per_year:
            age = value / per_year
    birth = _date_from(tags.get(5), big_endian=big_endian_dates)
    sex = {1: Sex.MALE, 2: Sex.FEMALE}.get(tags[8][0]) if tags.get(8) else None
    return EcgPatient(
        id=_decode_text(tags[2]) if 2 in tags else None,
        name=name,
        sex=sex,
        birth_date=birth,
        age_years=age,
    )


def _date_from(raw: bytes | None, *, big_endian: bool) -> date | None:
    if raw is None or len(raw) < 4:
        return None
    year = int.from_bytes(raw[:2], "big" if big_endian else "little")
    return safe_date(year, raw[2], raw[3])


def _acquired_at(tags: dict[int, bytes], *, big_endian_dates: bool) -> datetime | None:
    day = _date_from(tags.get(25), big_endian=big_endian_dates)
    time = tags.get(26)
    if day is None or time is None or len(time) < 3:
        return None
    moment = safe_datetime(day.year, day.month, day.day, time[0], time[1], time[2])
    if moment is None:
        return None
    zone = tags.get(34)
    if zone is not None and len(zone) >= 2:
        offset = int.from_bytes(zone[:2], "little", signed=True)
        if offset != 0x7FFF and -14 * 60 <= offset <= 14 * 60:
            tz = UTC if offset == 0 else timezone(timedelta(minutes=offset))
            moment = moment.replace(tzinfo=tz)
    return moment


def _device_from_tags(tags: dict[int, bytes]) -> EcgDevice:
    raw = tags.get(14)
    if raw is None or len(raw) < 36:
        return EcgDevice()
    model = _decode_text(raw[8:14])
    manufacturer = _MANUFACTURERS.get(raw[7])
    strings: list[str | None] = []
    position = 36 + raw[35]
    while position < len(raw) and len(strings) < 4:
        end = raw.find(b"\x00", position)
        end = len(raw) if end < 0 else end
        strings.append(_decode_text(raw[position:end]))
        position = end + 1
    serial = strings[0] if strings else None
    trade_name = strings[3] if len(strings) > 3 else None
    unknown = {None, "unknown", "Unknown", "UNKNOWN"}
    return EcgDevice(
        manufacturer=trade_name if trade_name not in unknown else manufacturer,
        model=model,
        serial_number=serial if serial not in unknown else None,
    )


# --- section 2: Huffman tables ---------------------------------------------------------


def _default_table() -> dict[str, _HuffmanCode]:
    table = {"0": _HuffmanCode(1, 1, False, 0)}
    for magnitude in range(1, 9):
        ones = "1" * magnitude
        table[ones + "00"] = _HuffmanCode(magnitude + 2, magnitude + 2, False, magnitude)
        table[ones + "01"] = _HuffmanCode(magnitude + 2, magnitude + 2, False, -magnitude)
    table["1111111110"] = _HuffmanCode(10, 18, False, 0)
    table["1111111111"] = _HuffmanCode(10, 26, False, 0)
    return table


def _read_huffman_tables(reader: ByteReader, section: _Section) -> list[dict[str, _HuffmanCode]]:
    count = reader.u16(section.body, "section 2 table count")
    if count == 19999:
        return [_default_table()]
    tables: list[dict[str, _HuffmanCode]] = []
    position = section.body + 2
    for table_number in range(1, count + 1):
        n_codes = reader.u16(position, f"section 2 table {table_number} size")
        position += 2
        table: dict[str, _HuffmanCode] = {}
        for _ in range(n_codes):
            prefix, total, mode, base_value, base_code = reader.unpack(
                "<BBBhI", position, f"section 2 table {table_number} code"
            )
            position += 9
            if not 1 <= prefix <= 32 or total < prefix or total - prefix > 32:
                raise EcgFormatError(
                    f"{_CONTEXT} section 2 table {table_number}: invalid code lengths "
                    f"(prefix {prefix}, total {total})"
                )
            # base codes are stored with their first transmitted bit in the lowest bit
            code = format(base_code & ((1 << prefix) - 1), f"0{prefix}b")[::-1]
            table[code] = _HuffmanCode(prefix, total, mode == 0, base_value)
        tables.append(table)
    if not tables:
        raise EcgFormatError(f"{_CONTEXT} section 2: no Huffman table")
    return tables


def _huffman_decode(
    raw: bytes, n_samples: int, tables: list[dict[str, _HuffmanCode]], lead: str
) -> tuple[np.ndarray, int]:
    bits = "".join(format(byte, "08b") for byte in raw)
    n_bits = len(bits)
    values = np.empty(n_samples, dtype=np.int64)
    table = tables[0]
    lengths = sorted({len(code) for code in table})
    position = 0
    decoded = 0
    while decoded < n_samples:
        for length in lengths:
            entry = table.get(bits[position : position + length])
            if entry is not None and position + length <= n_bits:
                break
        else:
            if position >= n_bits - min(lengths) + 1 or position >= n_bits:
                raise EcgFormatError(
                    f"{_CONTEXT} section 6: expected {n_samples} samples for lead {lead}, "
                    f"found {decoded}"
                )
            raise EcgFormatError(
                f"{_CONTEXT} section 6: lead {lead}: bit pattern at bit {position} matches no "
                "Huffman code"
            )
        position += entry.prefix_bits
        if entry.switch_table:
            if not 1 <= entry.base_value <= len(tables):
                raise EcgFormatError(
                    f"{_CONTEXT} section 6: lead {lead}: switch to missing Huffman table "
                    f"{entry.base_value}"
                )
            table = tables[entry.base_value - 1]
            lengths = sorted({len(code) for code in table})
            continue
        extra = entry.total_bits - entry.prefix_bits
        if extra:
            if position + extra > n_bits:
                raise EcgFormatError(
                    f"{_CONTEXT} section 6: expected {n_samples} samples for lead {lead}, "
                    f"found {decoded}"
                )
            value = int(bits[position : position + extra], 2)
            if value >= 1 << (extra - 1):
                value -= 1 << extra
            position += extra
        else:
            value = entry.base_value
        values[decoded] = value
        decoded += 1
    return values, (position + 7) // 8


def _undo_differences(values: np.ndarray, order: int) -> np.ndarray:
    if order == 0 or len(values) == 0:
        return values
    if order == 1:
        return np.cumsum(values)
    if len(values) < 2:
        return values
    first_diff = np.empty(len(values), dtype=np.int64)
    first_diff[0] = 0
    first_diff[1] = values[1] - values[0]
    first_diff[2:] = first_diff[1] + np.cumsum(values[2:])
    return values[0] + np.cumsum(first_diff)


# --- standard reader -------------------------------------------------------------------


@reader_boundary(_CONTEXT)
def read_scp_ecg(data: bytes) -> EcgRecord:
    """Read a standard SCP-ECG (EN 1064) record.

    Parameters
    ----------
    data
        The whole ``.scp`` file.

    Returns
    -------
    EcgRecord
        Rhythm data of every lead of section 3, in microvolts, with the section 1
        demographics, section 7 measurements and section 8/11 statements.

    Raises
    ------
    EcgFormatError
        The record is truncated, a CRC does not match, a section is malformed, a lead
        decodes to the wrong number of samples, or the file uses reference-beat subtraction
        or bimodal compression (not supported).
    """
    reader = ByteReader(data, _CONTEXT)
    reader.need(0, 22, "record header and section 0 header")
    sections = _read_sections(reader, one_based=True)
    _check_crcs(reader, sections)
    warnings: list[str] = []
    for required in (3, 6):
        if required not in sections:
            raise EcgFormatError(
                f"{_CONTEXT}: section {required} is missing (the file holds no rhythm data)"
            )
    tags = _read_tags(reader, sections[1]) if 1 in sections else {}

    leads, ranges = _read_lead_definitions(reader, sections[3])
    tables = _read_huffman_tables(reader, sections[2]) if 2 in sections else None
    signals, rate = _read_rhythm(reader, sections[6], leads, ranges, tables, warnings)
    return assemble_record(
        signals=signals,
        sampling_rate_hz=rate,
        source_format=EcgFormat.SCP_ECG,
        context=_CONTEXT,
        acquired_at=_acquired_at(tags, big_endian_dates=False),
        patient=_patient_from_tags(tags, big_endian_dates=False),
        device=_device_from_tags(tags),
        device_measurements=_read_measurements(reader, sections.get(7)),
        device_statements=_read_statements(reader, sections.get(8), 8)
        + _read_statements(reader, sections.get(11), 11),
        warnings=warnings,
    )


def _read_lead_definitions(
    reader: ByteReader, section: _Section
) -> tuple[list[str], list[tuple[int, int]]]:
    n_leads = reader.u8(section.body, "section 3 lead count")
    flags = reader.u8(section.body + 1, "section 3 flags")
    if n_leads == 0:
        raise EcgFormatError(f"{_CONTEXT} section 3: the file declares 0 leads")
    if flags & 0x01:
        raise EcgFormatError(
            f"{_CONTEXT} section 3: reference-beat subtraction is used; decoding it is not "
            "supported"
        )
    if section.length < 16 + 2 + 9 * n_leads:
        raise EcgFormatError(
            f"{_CONTEXT} section 3: {n_leads} leads need {2 + 9 * n_leads} bytes, the section "
            f"has {section.length - 16}"
        )
    leads: list[str] = []
    ranges: list[tuple[int, int]] = []
    for index in range(n_leads):
        start, end, lead_id = reader.unpack("<IIB", section.body + 2 + 9 * index, "section 3 lead")
        name = SCP_LEADS.get(lead_id, f"SCP lead {lead_id}")
        if name in leads:
            raise EcgFormatError(f"{_CONTEXT} section 3: lead {name} is defined twice")
        if start < 1 or end < start:
            raise EcgFormatError(
                f"{_CONTEXT} section 3: lead {name} has invalid sample range {start}..{end}"
            )
        leads.append(name)
        ranges.append((start, end))
    return leads, ranges


def _read_rhythm(
    reader: ByteReader,
    section: _Section,
    leads: list[str],
    ranges: list[tuple[int, int]],
    tables: list[dict[str, _HuffmanCode]] | None,
    warnings: list[str],
) -> tuple[dict[str, FloatArray], float]:
    """Section 6: every lead's samples in microvolts over the span of all leads, and the rate.

    A lead recorded over part of the span is zero outside it (one warning names them all).
    """
    body = section.body
    avm_nv, interval_us, difference = _read_rhythm_header(reader, body)
    n_leads = len(leads)
    byte_counts = reader.unpack(f"<{n_leads}H", body + 6, "section 6 lead byte counts")
    position = body + 6 + 2 * n_leads
    end_of_section = section.offset + section.length
    first, span = _lead_span(ranges)
    signals: dict[str, FloatArray] = {}
    partial: list[str] = []
    for lead, (start, end), count in zip(leads, ranges, byte_counts, strict=True):
        if position + count > end_of_section:
            raise EcgFormatError(
                f"{_CONTEXT} section 6: lead {lead} declares {count} bytes, past the section end"
            )
        raw = reader.data[position : position + count]
        position += count
        n_samples = end - start + 1
        values = _lead_samples(raw, count, n_samples, tables, lead, warnings)
        values = _undo_differences(values, difference)
        signal = np.zeros(span, dtype=np.float64)
        signal[start - first : end - first + 1] = values * (avm_nv / 1000.0)
        if n_samples != span:
            partial.append(lead)
        signals[lead] = signal
    if partial:
        warnings.append(
            f"SCP-ECG: leads {', '.join(partial)} were not recorded over the whole "
            f"{span}-sample span; missing parts are zero"
        )
    return signals, 1e6 / interval_us


def _read_rhythm_header(reader: ByteReader, body: int) -> tuple[int, int, int]:
    """Section 6's amplitude multiplier (nV), sample interval (µs) and difference coding."""
    avm_nv, interval_us, difference, bimodal = reader.unpack("<HHBB", body, "section 6 header")
    if bimodal:
        raise EcgFormatError(
            f"{_CONTEXT} section 6: bimodal compression is used; decoding it is not supported"
        )
    if avm_nv == 0:
        raise EcgFormatError(f"{_CONTEXT} section 6: amplitude value multiplier is 0 nV")
    if interval_us == 0:
        raise EcgFormatError(f"{_CONTEXT} section 6: sample time interval is 0 µs")
    if difference not in (0, 1, 2):
        raise EcgFormatError(
            f"{_CONTEXT} section 6: difference coding {difference} is not 0, 1 or 2"
        )
    return avm_nv, interval_us, difference


def _lead_span(ranges: list[tuple[int, int]]) -> tuple[int, int]:
    """The lowest first sample number of the leads, and how many samples the leads span."""
    n_leads = len(ranges)
    first = min(start for start, _ in ranges)
    span = max(end for _, end in ranges) - first + 1
    longest = max(end - start + 1 for start, end in ranges)
    if span > n_leads * longest or n_leads * span > MAX_TOTAL_SAMPLES:
        raise EcgFormatError(
            f"{_CONTEXT} section 3: lead sample ranges span {span} samples, implausible for "
            f"{n_leads} leads of at most {longest} samples"
        )
    return first, span


def _lead_samples(
    raw: bytes,
    count: int,
    n_samples: int,
    tables: list[dict[str, _HuffmanCode]] | None,
    lead: str,
    warnings: list[str],
) -> np.ndarray:
    """One lead's `n_samples` coded values from its `count` bytes of section 6.

    Huffman-decoded with `tables`, or plain 16-bit samples when the file has no section 2.
    """
    if tables is not None and n_samples > 8 * count:
        raise EcgFormatError(
            f"{_CONTEXT} section 6: expected {n_samples} samples for lead {lead}, but its "
            f"{count} bytes hold at most {8 * count}"
        )
    if tables is None:
        if count != 2 * n_samples:
            raise EcgFormatError(
                f"{_CONTEXT} section 6: expected {n_samples} samples for lead {lead}, "
                f"found {count // 2}"
            )
        return np.frombuffer(raw, dtype="<i2").astype(np.int64)
    values, used = _huffman_decode(raw, n_samples, tables, lead)
    if count - used > 2:
        warnings.append(
            f"SCP-ECG section 6: lead {lead} has {count - used} unused bytes after "
            f"{n_samples} samples"
        )
    return values


def _read_measurements(reader: ByteReader, section: _Section | None) -> dict[str, float]:
    """Section 7's global measurements: RR, the first beat type's intervals and axes, rate, QTc."""
    if section is None or section.length < 16 + 6:
        return {}
    body = section.body
    n_beat_types, n_spikes, rr, _pp = reader.unpack("<BBHH", body, "section 7 header")
    measurements: dict[str, float] = {}
    if 0 < rr < _UNDEFINED:
        measurements["rr_ms"] = rr
    if n_beat_types >= 1 and section.length >= 16 + 6 + 16:
        measurements.update(_read_beat_measurements(reader, body + 6))
    # after the beat types and pacemaker spikes: QRS types, then rates and QTc (optional)
    position = body + 6 + 16 * n_beat_types + 4 * n_spikes + 6 * n_spikes
    measurements.update(_read_rate_measurements(reader, position, section.offset + section.length))
    return {key: float(value) for key, value in measurements.items()}


def _defined(*values: int) -> bool:
    """None of the section 7 values is a placeholder for "not measured"."""
    return all(v != _UNDEFINED and v != 0xFFFF for v in values)


def _read_beat_measurements(reader: ByteReader, position: int) -> dict[str, float]:
    """P, PR, QRS and QT (ms) and the P, QRS and T axes (°) of the first beat type."""
    p_on, p_off, qrs_on, qrs_off, t_off, p_axis, qrs_axis, t_axis = reader.unpack(
        "<HHHHHhhh", position, "section 7 beat measurements"
    )
    measurements: dict[str, float] = {}
    for key, onset, offset in (
        ("p_ms", p_on, p_off),
        ("pr_ms", p_on, qrs_on),
        ("qrs_ms", qrs_on, qrs_off),
        ("qt_ms", qrs_on, t_off),
    ):
        if _defined(onset, offset) and offset > onset:
            measurements[key] = offset - onset
    for key, axis in (
        ("p_axis_deg", p_axis),
        ("qrs_axis_deg", qrs_axis),
        ("t_axis_deg", t_axis),
    ):
        if -180 <= axis <= 360:
            measurements[key] = axis
    return measurements


def _read_rate_measurements(reader: ByteReader, position: int, end: int) -> dict[str, float]:
    """Ventricular rate (bpm) and QTc (ms) after the QRS types, where the section has them."""
    if position + 2 > end:
        return {}
    n_qrs = reader.u16(position, "section 7 QRS count")
    position += 2 + n_qrs
    if position + 6 > end:
        return {}
    ventricular_rate, _atrial_rate, qtc = reader.unpack("<HHH", position, "section 7 rates")
    measurements: dict[str, float] = {}
    if 0 < ventricular_rate < 400:
        measurements["heart_rate_bpm"] = ventricular_rate
    if 0 < qtc < _UNDEFINED:
        measurements["qtc_ms"] = qtc
    return measurements


def _read_statements(reader: ByteReader, section: _Section | None, number: int) -> list[str]:
    if section is None or section.length <= 16 + 9:
        return []
    body = section.body
    end = section.offset + section.length
    count = reader.u8(body + 8, f"section {number} statement count")
    position = body + 9
    statements: list[str] = []
    for _ in range(count):
        if position + 3 > end:
            break
        _sequence, length = reader.unpack("<BH", position, f"section {number} statement")
        position += 3
        if position + length > end:
            raise EcgFormatError(
                f"{_CONTEXT} section {number}: a statement declares {length} bytes, past the "
                "section end"
            )
        text = reader.data[position : position + length]
        if number == 11 and text:
            text = text[1:]  # statement type byte
        decoded = _decode_text(text)
        if decoded:
            statements.append(decoded)
        position += length
    return statements


# --- Healforce variant -----------------------------------------------------------------

_HEALFORCE_LEADS: dict[int, tuple[str, ...]] = {1: ("I",), 3: ("I", "II", "III")}


@reader_boundary(_HEALFORCE)
def read_scp_ecg_healforce(data: bytes) -> EcgRecord:
    """Read a Healforce (Prince 180D family) "SCP-ECG" file, which does not follow EN 1064.

    Parameters
    ----------
    data
        The whole ``.SCP`` file.

    Returns
    -------
    EcgRecord
        Leads I, II, III (three-lead recordings) or I (single lead), microvolts, at the rate
        the file states (150 Hz on the Prince 180D).

    Raises
    ------
    EcgFormatError
        The file is truncated, its CRC does not match, the section table is inconsistent,
        or the interleaved stream does not hold a whole number of samples per lead.
    """
    reader = ByteReader(data, _HEALFORCE)
    reader.need(0, 22, "file header and section 0 header")
    # the vendor stores a 16-bit used length and a big-endian CRC-CCITT (XMODEM, init 0)
    # over the used bytes; the rest of the 32 KiB file is padding
    used = reader.u16(4, "used length")
    if used < 22 or used > len(data):
        raise EcgFormatError(
            f"{_HEALFORCE}: header says {used} bytes are used, the file has {len(data)} "
            "(truncated file?)"
        )
    stored = int.from_bytes(data[:2], "big")
    computed = binascii.crc_hqx(data[2:used], 0)
    if stored != computed:
        raise EcgFormatError(
            f"{_HEALFORCE}: file CRC mismatch (stored 0x{stored:04X}, computed "
            f"0x{computed:04X}): the file is corrupted"
        )
    sections = _read_sections(reader, one_based=False)
    for required in (3, 6):
        if required not in sections:
            raise EcgFormatError(f"{_HEALFORCE}: section {required} is missing")
    n_leads = reader.u8(sections[3].body, "section 3 lead count")
    names = _HEALFORCE_LEADS.get(n_leads)
    if names is None:
        raise EcgFormatError(
            f"{_HEALFORCE} section 3: {n_leads} leads; only 1 or 3 lead recordings are known"
        )
    body = sections[6].body
    avm_nv, rate_hz, difference, bimodal, count = reader.unpack("<HHBBH", body, "section 6 header")
    if difference or bimodal:
        raise EcgFormatError(
            f"{_HEALFORCE} section 6: difference coding {difference} / bimodal {bimodal} is "
            "not expected in this variant"
        )
    if avm_nv == 0 or rate_hz == 0:
        raise EcgFormatError(
            f"{_HEALFORCE} section 6: amplitude multiplier {avm_nv} nV and rate {rate_hz} Hz "
            "must be positive"
        )
    if body + 8 + count > sections[6].offset + sections[6].length:
        raise EcgFormatError(
            f"{_HEALFORCE} section 6: the sample stream declares {count} bytes, past the "
            "section end"
        )
    stream = reader.take(body + 8, count, "section 6 sample stream")
    if count == 0 or count % 6:
        raise EcgFormatError(
            f"{_HEALFORCE} section 6: sample stream of {count} bytes is not whole groups of "
            "three 16-bit words"
        )
    words = np.frombuffer(stream, dtype="<u2").astype(np.int64).reshape(-1, 3)
    packed = np.empty((len(words), 4), dtype=np.int64)
    packed[:, :3] = words
    # the fourth 12-bit word is spread over bits 10..13 of the other three
    packed[:, 3] = (
        ((words[:, 0] >> 10) & 0xF) << 8
        | ((words[:, 1] >> 10) & 0xF) << 4
        | (words[:, 2] >> 10) & 0xF
    )
    values = (packed.reshape(-1) & 0x3FF) - 512
    if len(values) % n_leads:
        raise EcgFormatError(
            f"{_HEALFORCE} section 6: {len(values)} samples do not split into {n_leads} leads"
        )
    per_lead = values.reshape(-1, n_leads).T * (avm_nv / 1000.0)
    signals = {name: per_lead[i].astype(np.float64) for i, name in enumerate(names)}
    tags = _read_tags(reader, sections[1]) if 1 in sections else {}
    return assemble_record(
        signals=signals,
        sampling_rate_hz=float(rate_hz),
        source_format=EcgFormat.SCP_ECG_HEALFORCE,
        context=_HEALFORCE,
        acquired_at=_acquired_at(tags, big_endian_dates=True),
        patient=_patient_from_tags(tags, big_endian_dates=True),
        device=EcgDevice(manufacturer="Healforce"),
        warnings=[
            "Healforce SCP-ECG variant (not EN 1064 conformant): 10-bit samples, lead names "
            "and scaling inferred from the device family",
        ],
    )
