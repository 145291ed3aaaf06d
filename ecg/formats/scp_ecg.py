"""SCP-ECG (EN 1064 / ISO 11073-91064) and the Healforce non-conforming variant.

Standard files, protocol versions 1.0 to 3.0: sections located through section 0,
Huffman-coded rhythm data (section 2's default table or the file's own tables, switching
between them, or plain 16-bit samples when section 2 is absent), first or second difference
coding. Files compressed with reference-beat subtraction hold a residual in section 6: the
reference beat of section 5 is added back in the subtraction zones of section 4, and a
residual stored at a lower rate (decimated; with bimodal compression only outside the
protected areas around each QRS) is interpolated back to the reference beat's rate. Byte
counts that wrapped past 16 bits on long recordings are recovered from the sample counts of
section 3; version 1.x files numbering samples from 0 are read. Patient and device data from
section 1, the cart's global measurements and pacemaker spikes from section 7, its per-lead
measurements from section 10 and its statements from sections 8 and 11. Every record and
section CRC (CRC-CCITT) is checked.

Healforce devices (Prince 180D and relatives) write files shaped like SCP-ECG that do not
conform: 0-based section offsets, all leads interleaved in one stream of 10-bit samples
(four 12-bit words packed into three 16-bit words), no Huffman coding, the sampling rate
in Hz where the standard has the sample interval in microseconds, and big-endian dates.
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass, replace
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
from ecg.record import EcgDevice, EcgFormat, EcgPacemakerSpike, EcgPatient, EcgRecord, Sex

__all__ = ["is_healforce_scp", "is_scp_ecg", "read_scp_ecg", "read_scp_ecg_healforce"]

_CONTEXT = "SCP-ECG"
_HEALFORCE = "SCP-ECG (Healforce)"
_UNDEFINED = 29999
#: What an operator does about a damaged or incomplete file.
_SEND_AGAIN = "send the ECG again from the cart"

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
                f"bytes, but the file has {len(reader.data)} bytes (the file is incomplete: "
                f"{_SEND_AGAIN})"
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
            f"(the file is incomplete or padded: {_SEND_AGAIN})"
        )
    computed = binascii.crc_hqx(data[2:], 0xFFFF)
    if stored != computed:
        raise EcgFormatError(
            f"{_CONTEXT}: record CRC mismatch (stored 0x{stored:04X}, computed 0x{computed:04X}):"
            f" the file is corrupted, {_SEND_AGAIN}"
        )
    for section in sections.values():
        stored = reader.u16(section.offset, f"section {section.id} CRC")
        computed = binascii.crc_hqx(
            data[section.offset + 2 : section.offset + section.length], 0xFFFF
        )
        if stored != computed:
            raise EcgFormatError(
                f"{_CONTEXT} section {section.id}: CRC mismatch (stored 0x{stored:04X}, "
                f"computed 0x{computed:04X}): the file is corrupted, {_SEND_AGAIN}"
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


class _StreamEnded(EcgFormatError):
    """A lead's coded bytes ended before its samples did."""


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
    """Section 2: the default table (19999) or the file's own tables, in file order."""
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
                    f"(prefix {prefix}, total {total}); the file is damaged: {_SEND_AGAIN}"
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
    """`n_samples` values from the bit stream `raw`, and the number of bytes they used.

    Raises
    ------
    _StreamEnded
        The bits ran out before `n_samples` values were decoded.
    """
    bits = (np.unpackbits(np.frombuffer(raw, dtype=np.uint8)) + ord("0")).tobytes().decode("ascii")
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
            if position + lengths[-1] > n_bits:
                raise _StreamEnded(
                    f"{_CONTEXT}: expected {n_samples} samples for lead {lead}, found {decoded}"
                )
            raise EcgFormatError(
                f"{_CONTEXT}: lead {lead}: bit pattern at bit {position} matches no Huffman code "
                f"(the file is damaged: {_SEND_AGAIN})"
            )
        position += entry.prefix_bits
        if entry.switch_table:
            if not 1 <= entry.base_value <= len(tables):
                raise EcgFormatError(
                    f"{_CONTEXT}: lead {lead}: switch to missing Huffman table {entry.base_value}"
                )
            table = tables[entry.base_value - 1]
            lengths = sorted({len(code) for code in table})
            continue
        extra = entry.total_bits - entry.prefix_bits
        if extra:
            if position + extra > n_bits:
                raise _StreamEnded(
                    f"{_CONTEXT}: expected {n_samples} samples for lead {lead}, found {decoded}"
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


# --- sections 3 to 6: leads, QRS locations, reference beats, rhythm ---------------------

#: EN 1064 lead identifiers (section 3) in code order from 1: the leads a cart records, the
#: pediatric and Frank leads, derived leads (prefix d), Nehb, monitoring and bipolar leads.
_LEAD_CODE_NAMES = (
    "I II V1 V2 V3 V4 V5 V6 V7 V2R V3R V4R V5R V6R V7R X Y Z CC5 CM5 LA RA LL fI fE fC "
    "fA fM fF fH dI dII dV1 dV2 dV3 dV4 dV5 dV6 dV7 dV2R dV3R dV4R dV5R dV6R dV7R dX dY "
    "dZ dCC5 dCM5 dLA dRA dLL dfI dfE dfC dfA dfM dfF dfH III aVR aVL aVF -aVR V8 V9 V8R "
    "V9R D A J Defib Extern A1 A2 A3 A4 dV8 dV9 dV8R dV9R dD dA dJ Chest V VR VL VF MCL "
    "MCL1 MCL2 MCL3 MCL4 MCL5 MCL6 CC CC1 CC2 CC3 CC4 CC6 CC7 CM CM1 CM2 CM3 CM4 CM6 "
    "dIII daVR daVL daVF d-aVR dChest dV dVR dVL dVF CM7 CH5 CS5 CB5 CR5 ML AB1 AB2 AB3 "
    "AB4 ES AS AI S dDefib dExtern dA1 dA2 dA3 dA4 dMCL1 dMCL2 dMCL3 dMCL4 dMCL5 dMCL6 "
    "RL CV5RL CV6LL CV6LU V10 dMCL dCC dCC1 dCC2 dCC3 dCC4 dCC6 dCC7 dCM dCM1 dCM2 dCM3 "
    "dCM4 dCM6 dCM7 dCH5 dCS5 dCB5 dCR5 dML dAB1 dAB2 dAB3 dAB4 dES dAS dAI dS dRL "
    "dCV5RL dCV6LL dCV6LU dV10"
)
_LEAD_CODES = tuple(_LEAD_CODE_NAMES.split())
#: EN 1064 lead identifiers (section 3) to lead names.
SCP_LEADS: dict[int, str] = {code: name for code, name in enumerate(_LEAD_CODES, start=1)}
_KNOWN_VERSIONS = {10, 11, 12, 13, 20, 21, 22, 29, 30}


@dataclass(frozen=True)
class _LeadSet:
    names: list[str]
    ranges: list[tuple[int, int]]  # first and last sample number of each lead, 1-based
    subtraction: bool  # reference beat subtracted from the rhythm data
    shift: int  # added to the file's sample numbers (1 for 0-based numbering)


@dataclass(frozen=True)
class _QrsLocations:
    """Section 4: the reference beat's length and fiducial, subtraction and protected zones."""

    length_ms: int
    fiducial: int  # sample number of the fiducial point in the reference beat, 1-based
    zones: tuple[tuple[int, int, int, int], ...]  # beat type, first, fiducial, last sample
    protected: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class _Coded:
    """The header of section 5 or 6: scale, interval, coding and each lead's byte count."""

    number: int
    avm_nv: int
    interval_us: int
    difference: int
    bimodal: bool
    counts: tuple[int, ...]
    data_start: int
    end: int


def _lead_name(code: int) -> str:
    return SCP_LEADS.get(code, f"SCP lead {code}")


def _read_lead_definitions(reader: ByteReader, section: _Section, warnings: list[str]) -> _LeadSet:
    n_leads = reader.u8(section.body, "section 3 lead count")
    flags = reader.u8(section.body + 1, "section 3 flags")
    if n_leads == 0:
        raise EcgFormatError(f"{_CONTEXT} section 3: the file declares 0 leads")
    if section.length < 16 + 2 + 9 * n_leads:
        raise EcgFormatError(
            f"{_CONTEXT} section 3: {n_leads} leads need {2 + 9 * n_leads} bytes, the section "
            f"has {section.length - 16} (the file is incomplete: {_SEND_AGAIN})"
        )
    entries = [
        reader.unpack("<IIB", section.body + 2 + 9 * index, "section 3 lead")
        for index in range(n_leads)
    ]
    codes = [code for _, _, code in entries]
    names = [_lead_name(code) for code in codes]
    derived = [n for n in names if n.startswith("d") and n[1:] in SCP_LEADS.values()]
    # a derived lead takes the name of the lead it stands for when that one is not recorded
    names = [n[1:] if n in derived and n[1:] not in names else n for n in names]
    if derived:
        warnings.append(
            f"SCP-ECG: leads {', '.join(d[1:] for d in derived)} are derived by the cart "
            "(computed from other leads), not recorded"
        )
    shift = 1 if min(start for start, _, _ in entries) == 0 else 0
    if shift:
        warnings.append("SCP-ECG section 3: sample numbers count from 0 (read as counting from 1)")
    ranges: list[tuple[int, int]] = []
    for name, (start, end, _) in zip(names, entries, strict=True):
        if names.count(name) > 1:
            raise EcgFormatError(f"{_CONTEXT} section 3: lead {name} is defined twice")
        if end < start:
            raise EcgFormatError(
                f"{_CONTEXT} section 3: lead {name} has invalid sample range {start}..{end}"
            )
        ranges.append((start + shift, end + shift))
    return _LeadSet(names, ranges, bool(flags & 0x01), shift)


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


def _read_qrs_locations(reader: ByteReader, section: _Section, shift: int) -> _QrsLocations:
    body, end = section.body, section.offset + section.length
    length_ms, fiducial, n_qrs = reader.unpack("<HHH", body, "section 4 header")
    position = body + 6
    if position + 14 * n_qrs > end:
        raise EcgFormatError(
            f"{_CONTEXT} section 4: {n_qrs} QRS complexes declared, the section holds "
            f"{(end - position) // 14} (the file is incomplete: {_SEND_AGAIN})"
        )
    zones = []
    for _ in range(n_qrs):
        kind, first, fid, last = reader.unpack("<HIII", position, "section 4 subtraction zone")
        zones.append((kind, first + shift, fid + shift, last + shift))
        position += 14
    protected = []
    if position + 8 * n_qrs <= end:  # the protected areas are optional before version 2.0
        for _ in range(n_qrs):
            first, last = reader.unpack("<II", position, "section 4 protected area")
            if last >= first and first + shift >= 1:  # (0, 0): no protected area
                protected.append((first + shift, last + shift))
            position += 8
    return _QrsLocations(length_ms, fiducial, tuple(zones), tuple(protected))


def _read_coded_header(reader: ByteReader, section: _Section, n_leads: int, number: int) -> _Coded:
    body = section.body
    avm_nv, interval_us, difference, bimodal = reader.unpack(
        "<HHBB", body, f"section {number} header"
    )
    counts = reader.unpack(f"<{n_leads}H", body + 6, f"section {number} lead byte counts")
    if avm_nv == 0:
        raise EcgFormatError(f"{_CONTEXT} section {number}: amplitude value multiplier is 0 nV")
    if interval_us == 0:
        raise EcgFormatError(f"{_CONTEXT} section {number}: sample time interval is 0 µs")
    if difference not in (0, 1, 2):
        raise EcgFormatError(
            f"{_CONTEXT} section {number}: difference coding {difference} is not 0, 1 or 2"
        )
    return _Coded(
        number,
        avm_nv,
        interval_us,
        difference,
        number == 6 and bimodal == 1,
        counts,
        body + 6 + 2 * n_leads,
        section.offset + section.length,
    )


def _decode_leads(
    reader: ByteReader,
    coded: _Coded,
    wanted: list[int],
    names: list[str],
    tables: list[dict[str, _HuffmanCode]] | None,
    slack: int = 0,
) -> list[np.ndarray]:
    """Each lead's coded values of section 5 or 6, differences undone.

    A recording longer than a 16-bit byte count can describe (32767 plain samples, or 64 KiB
    of Huffman code) has counts that wrapped or saturated: the lead's real length is then
    found by decoding its samples (section 3 gives how many) from the stream. A lead may
    hold up to `slack` values fewer than `wanted` (its last block left out): its last value
    is then held.
    """
    position = coded.data_start
    leads: list[np.ndarray] = []
    for name, count, n in zip(names, coded.counts, wanted, strict=True):
        available = coded.end - position
        for short in range(slack + 1):
            try:
                if tables is None:
                    values, used = _plain_samples(
                        reader, position, available, count, n - short, name, coded
                    )
                else:
                    values, used = _huffman_lead(
                        reader, position, available, count, n - short, name, tables
                    )
                break
            except EcgFormatError:
                if short == slack or n - short <= 1:
                    raise
        values = _undo_differences(values, coded.difference)
        if len(values) < n:
            values = np.concatenate([values, np.full(n - len(values), values[-1])])
        leads.append(values)
        position += used
    return leads


def _plain_samples(
    reader: ByteReader, position: int, available: int, count: int, n: int, lead: str, coded: _Coded
) -> tuple[np.ndarray, int]:
    need = 2 * n
    if count != need and count not in (need & 0xFFFF, 0xFFFF, 0xFFFE):  # wrapped, saturated
        raise EcgFormatError(
            f"{_CONTEXT} section {coded.number}: expected {n} samples for lead {lead}, found "
            f"{count // 2}"
        )
    if need > available:
        raise EcgFormatError(
            f"{_CONTEXT} section {coded.number}: lead {lead} needs {need} bytes, past the section "
            f"end (the file is incomplete: {_SEND_AGAIN})"
        )
    raw = reader.data[position : position + need]
    return np.frombuffer(raw, dtype="<i2").astype(np.int64), need


def _huffman_lead(
    reader: ByteReader,
    position: int,
    available: int,
    count: int,
    n: int,
    lead: str,
    tables: list[dict[str, _HuffmanCode]],
) -> tuple[np.ndarray, int]:
    if n > 8 * available:
        raise EcgFormatError(
            f"{_CONTEXT}: expected {n} samples for lead {lead}, but the section holds at most "
            f"{8 * available} (the file is incomplete: {_SEND_AGAIN})"
        )
    if count > available:
        raise EcgFormatError(
            f"{_CONTEXT}: lead {lead} declares {count} bytes, past the section end "
            f"(the file is incomplete: {_SEND_AGAIN})"
        )
    data = reader.data
    try:
        values, _ = _huffman_decode(data[position : position + count], n, tables, lead)
        return values, count
    except _StreamEnded:
        if count < 0xFFFF - 1 and available < count + 0x10000:
            raise
    # the 16-bit byte count wrapped or saturated: the lead ends where its samples do
    values, used = _huffman_decode(data[position : position + available], n, tables, lead)
    wrapped = count + 0x10000 * -(-(used - count) // 0x10000)
    if count < 0xFFFE and wrapped <= available:
        return values, wrapped
    return values, min(used + (used & 1), available)  # leads padded to an even length


def _runs(
    start: int, end: int, protected: tuple[tuple[int, int], ...], factor: int, bimodal: bool
) -> list[tuple[int, int, bool]]:
    """A lead's sample runs (first, last, kept at full rate) as section 6 stores them.

    Without decimation the whole lead is one full-rate run; decimated without bimodal
    compression, one decimated run; bimodal: full rate inside the protected areas (the QRS
    complexes), decimated between them.
    """
    if factor == 1:
        return [(start, end, True)]
    if not bimodal:
        return [(start, end, False)]
    runs: list[tuple[int, int, bool]] = []
    at = start
    for first, last in sorted(protected):
        first, last = max(first, at), min(last, end)
        if first > last:
            continue
        if first > at:
            runs.append((at, first - 1, False))
        runs.append((first, last, True))
        at = last + 1
    if at <= end:
        runs.append((at, end, False))
    return runs


def _stored_count(runs: list[tuple[int, int, bool]], factor: int) -> int:
    return sum(
        last - first + 1 if full else -(-(last - first + 1) // factor) for first, last, full in runs
    )


def _expand(values: np.ndarray, runs: list[tuple[int, int, bool]], factor: int) -> FloatArray:
    """Full-rate samples from stored ones: decimated runs interpolated between block centres."""
    out: list[FloatArray] = []
    at = 0
    for first, last, full in runs:
        length = last - first + 1
        if full:
            out.append(values[at : at + length].astype(np.float64))
            at += length
            continue
        blocks = -(-length // factor)
        stored = values[at : at + blocks].astype(np.float64)
        at += blocks
        centres = np.arange(blocks) * factor + (factor - 1) / 2.0
        centres[-1] = ((blocks - 1) * factor + length - 1) / 2.0
        out.append(np.interp(np.arange(length, dtype=np.float64), centres, stored))
    return np.concatenate(out)


def _read_rhythm(
    reader: ByteReader,
    sections: dict[int, _Section],
    leads: _LeadSet,
    tables: list[dict[str, _HuffmanCode]] | None,
    warnings: list[str],
) -> tuple[dict[str, FloatArray], float]:
    """Every lead's samples in microvolts over the span of all leads, and the rate.

    Rhythm data of section 6, with the reference beat of section 5 added back in the
    subtraction zones of section 4 and decimated parts interpolated back to the reference
    beat's rate, where the file is compressed so. A lead recorded over part of the span is
    zero outside it (one warning names them all).
    """
    rhythm = _read_coded_header(reader, sections[6], len(leads.names), 6)
    if not leads.subtraction and not rhythm.bimodal:
        values = _decode_leads(
            reader, rhythm, [e - s + 1 for s, e in leads.ranges], leads.names, tables
        )
        scaled = [v * (rhythm.avm_nv / 1000.0) for v in values]
        return _place(leads, scaled, warnings), 1e6 / rhythm.interval_us
    what = "reference-beat subtraction" if leads.subtraction else "bimodal compression"
    for needed in (4, 5):
        if needed not in sections:
            raise EcgFormatError(
                f"{_CONTEXT}: the file uses {what} but has no section {needed} "
                f"({'QRS locations' if needed == 4 else 'reference beat'}); the cart's export is "
                "incomplete, export the ECG again"
            )
    qrs = _read_qrs_locations(reader, sections[4], leads.shift)
    beat = _read_coded_header(reader, sections[5], len(leads.names), 5)
    factor = _decimation_factor(rhythm, beat)
    if rhythm.bimodal and factor > 1 and not qrs.protected:
        raise EcgFormatError(
            f"{_CONTEXT} section 4: bimodal compression needs protected areas, the section has none"
        )
    runs = [_runs(s, e, qrs.protected, factor, rhythm.bimodal) for s, e in leads.ranges]
    # a lead decimated in one run may end a block short (rounded down, not up)
    slack = 1 if factor > 1 and not rhythm.bimodal else 0
    residual = _decode_leads(
        reader, rhythm, [_stored_count(r, factor) for r in runs], leads.names, tables, slack
    )
    signals = [
        _expand(values, lead_runs, factor) * (rhythm.avm_nv / 1000.0)
        for values, lead_runs in zip(residual, runs, strict=True)
    ]
    if leads.subtraction:
        _add_reference_beats(reader, leads, qrs, beat, tables, signals)
    return _place(leads, signals, warnings), 1e6 / beat.interval_us


def _decimation_factor(rhythm: _Coded, beat: _Coded) -> int:
    factor, rest = divmod(rhythm.interval_us, beat.interval_us)
    if rest or not 1 <= factor <= 16:
        raise EcgFormatError(
            f"{_CONTEXT}: the rhythm data's sample interval ({rhythm.interval_us} µs) is not a "
            f"whole multiple of the reference beat's ({beat.interval_us} µs)"
        )
    return factor


def _add_reference_beats(
    reader: ByteReader,
    leads: _LeadSet,
    qrs: _QrsLocations,
    beat: _Coded,
    tables: list[dict[str, _HuffmanCode]] | None,
    signals: list[FloatArray],
) -> None:
    """Add each lead's reference beat back over the residual in the type-0 zones."""
    length = qrs.length_ms * 1000 // beat.interval_us
    if length <= 0 or length > 60 * 1_000_000 // beat.interval_us:
        raise EcgFormatError(
            f"{_CONTEXT} section 4: reference beat length {qrs.length_ms} ms is implausible"
        )
    if not 1 <= qrs.fiducial <= length:
        raise EcgFormatError(
            f"{_CONTEXT} section 4: reference beat fiducial {qrs.fiducial} is outside its "
            f"{length} samples"
        )
    beats = _decode_leads(reader, beat, [length] * len(leads.names), leads.names, tables)
    for signal, reference, (start, end) in zip(signals, beats, leads.ranges, strict=True):
        reference_uv = reference * (beat.avm_nv / 1000.0)
        for kind, first, fiducial, last in qrs.zones:
            if kind != 0:
                continue
            # sample t of the lead lines up with sample t - fiducial + fcM of the beat
            lo = max(first, start, fiducial - qrs.fiducial + 1)
            hi = min(last, end, fiducial - qrs.fiducial + length)
            if lo > hi:
                continue
            beat_lo = lo - fiducial + qrs.fiducial - 1
            signal[lo - start : hi - start + 1] += reference_uv[beat_lo : beat_lo + hi - lo + 1]


def _place(leads: _LeadSet, values: list[FloatArray], warnings: list[str]) -> dict[str, FloatArray]:
    first, span = _lead_span(leads.ranges)
    signals: dict[str, FloatArray] = {}
    partial: list[str] = []
    for name, (start, end), lead in zip(leads.names, leads.ranges, values, strict=True):
        signal = np.zeros(span, dtype=np.float64)
        signal[start - first : end - first + 1] = lead
        if end - start + 1 != span:
            partial.append(name)
        signals[name] = signal
    if partial:
        warnings.append(
            f"SCP-ECG: leads {', '.join(partial)} were not recorded over the whole "
            f"{span}-sample span; missing parts are zero"
        )
    return signals


# --- sections 7, 8, 10, 11: the cart's measurements and statements ----------------------


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


_SPIKE_TRIGGERS = {1: "neither", 2: "QRS", 3: "P"}


def _read_pacemaker_spikes(
    reader: ByteReader, section: _Section | None
) -> tuple[EcgPacemakerSpike, ...]:
    """Section 7's pacemaker spikes: time and amplitude, then type and pulse width when given."""
    if section is None or section.length < 16 + 6:
        return ()
    body, end = section.body, section.offset + section.length
    n_beat_types, n_spikes = reader.unpack("<BB", body, "section 7 header")
    position = body + 6 + 16 * n_beat_types
    if position + 4 * n_spikes > end:
        raise EcgFormatError(
            f"{_CONTEXT} section 7: {n_spikes} pacemaker spikes declared, past the section end "
            f"(the file is incomplete: {_SEND_AGAIN})"
        )
    info_at = position + 4 * n_spikes
    has_info = info_at + 6 * n_spikes <= end
    spikes: list[EcgPacemakerSpike] = []
    for index in range(n_spikes):
        time_ms, amplitude = reader.unpack("<Hh", position + 4 * index, "section 7 spike")
        if time_ms == _UNDEFINED:
            continue
        triggers: str | None = None
        width: float | None = None
        if has_info:
            kind, _source, _qrs, width_us = reader.unpack(
                "<BBHH", info_at + 6 * index, "section 7 spike information"
            )
            triggers = _SPIKE_TRIGGERS.get(kind)
            width = float(width_us) if 0 < width_us < _UNDEFINED else None
        spikes.append(
            EcgPacemakerSpike(
                time_ms=float(time_ms),
                amplitude_uv=float(amplitude) if amplitude != _UNDEFINED else None,
                pulse_width_us=width,
                triggers=triggers,
            )
        )
    return tuple(spikes)


#: Section 10's measurement order (after the lead code and length), by our keys (None: kept
#: by the cart only: R'/S' waves, slope, morphology codes, isoelectric segments, quality).
_LEAD_MEASUREMENT_ORDER = (
    "p_ms", "pr_ms", "qrs_ms", "qt_ms", "q_ms", "r_ms", "s_ms", None, None, "q_uv", "r_uv",
    "s_uv", None, None, "j_uv", "p_plus_uv", "p_minus_uv", "t_plus_uv", "t_minus_uv", None,
    None, None, None, None, None, None, "st_j20_uv", "st_j60_uv", "st_j80_uv",
)  # fmt: skip


def _read_lead_measurements(
    reader: ByteReader, section: _Section | None, names: list[str]
) -> dict[str, dict[str, float]]:
    """Section 10: the cart's measurements of each lead, for the leads the record has."""
    if section is None or section.length < 16 + 4:
        return {}
    body, end = section.body, section.offset + section.length
    n_leads = reader.u16(body, "section 10 lead count")
    position = body + 4
    result: dict[str, dict[str, float]] = {}
    for _ in range(n_leads):
        code, length = reader.unpack("<HH", position, "section 10 lead")
        position += 4
        if position + length > end:
            raise EcgFormatError(
                f"{_CONTEXT} section 10: lead {_lead_name(code)} declares {length} bytes, past "
                f"the section end (the file is incomplete: {_SEND_AGAIN})"
            )
        values = reader.unpack(f"<{length // 2}h", position, "section 10 measurements")
        position += length
        name = _lead_name(code)
        if name not in names and name.startswith("d") and name[1:] in names:
            name = name[1:]  # a derived lead read under the name of the lead it stands for
        if name not in names:
            continue
        measured = {
            key: float(value)
            for key, value in zip(_LEAD_MEASUREMENT_ORDER, values, strict=False)
            if key is not None and value not in (_UNDEFINED, -_UNDEFINED)
        }
        if measured:
            result[name] = measured
    return result


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


# --- standard reader -------------------------------------------------------------------


@reader_boundary(_CONTEXT)
def read_scp_ecg(data: bytes) -> EcgRecord:
    """Read a standard SCP-ECG (EN 1064, ISO 11073-91064) record, versions 1.0 to 3.0.

    Parameters
    ----------
    data
        The whole ``.scp`` file.

    Returns
    -------
    EcgRecord
        Rhythm data of every lead of section 3, in microvolts (reference beats added back
        and decimated parts interpolated where the file is compressed so), with the section
        1 demographics, the cart's section 7 global and section 10 per-lead measurements,
        its pacemaker spikes (section 7) and its statements (sections 8 and 11).

    Raises
    ------
    EcgFormatError
        The record is truncated or damaged (a CRC does not match, a section is malformed, a
        lead decodes to the wrong number of samples) or lacks a section its compression
        needs; the message says what to do.
    """
    reader = ByteReader(data, _CONTEXT)
    reader.need(0, 22, "record header and section 0 header")
    sections = _read_sections(reader, one_based=True)
    _check_crcs(reader, sections)
    warnings: list[str] = []
    version = reader.u8(6 + 9, "section 0 protocol version")
    if version not in _KNOWN_VERSIONS:
        warnings.append(f"SCP-ECG protocol version {version / 10:.1f} is not one this reader knows")
    if 6 not in sections and 12 in sections:
        raise EcgFormatError(
            f"{_CONTEXT}: the file holds long-term (Holter) rhythm data in section 12, not a "
            "resting ECG; export the resting ECG from the cart"
        )
    for required in (3, 6):
        if required not in sections:
            raise EcgFormatError(
                f"{_CONTEXT}: section {required} is missing (the file holds no rhythm data); "
                "export the ECG from the cart again"
            )
    tags = _read_tags(reader, sections[1]) if 1 in sections else {}
    leads = _read_lead_definitions(reader, sections[3], warnings)
    tables = _read_huffman_tables(reader, sections[2]) if 2 in sections else None
    signals, rate = _read_rhythm(reader, sections, leads, tables, warnings)
    record = assemble_record(
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
    return replace(
        record,
        device_lead_measurements=_read_lead_measurements(reader, sections.get(10), leads.names),
        device_pacemaker_spikes=_read_pacemaker_spikes(reader, sections.get(7)),
    )


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
    if 6 not in sections and 12 in sections:
        raise EcgFormatError(
            f"{_CONTEXT}: the file holds long-term (Holter) rhythm data in section 12, not a "
            "resting ECG; export the resting ECG from the cart"
        )
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
