"""A small SCP-ECG writer for the tests: builds records in every coding the reader decodes.

It follows EN 1064 as the reader understands it and is written apart from the reader (no
code shared), so a test that decodes what it wrote checks the two against each other.
Huffman coding with the default table or with two custom tables that switch between each
other; first and second differences; reference-beat subtraction with decimation, with or
without bimodal compression; 16-bit byte counts that wrap for long recordings; version 1.3
layout (protocol version 13, 0-based sample numbers, no protected areas, no rate block).
"""

from __future__ import annotations

import binascii
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]

#: Custom tables (prefix code, total bits, mode, base value): table 1 codes 0 and ±1 and
#: switches to table 2, which codes 8-bit values and switches back; 16-bit escape in table 1.
CUSTOM_TABLES: tuple[tuple[tuple[str, int, int, int], ...], ...] = (
    (("0", 1, 1, 0), ("10", 2, 1, 1), ("110", 3, 1, -1), ("1110", 20, 1, 0), ("1111", 4, 0, 2)),
    (("0", 9, 1, 0), ("1", 1, 0, 1)),
)


@dataclass
class Reference:
    """Reference-beat subtraction: the beat of each lead, where it is subtracted, how the
    residual is decimated."""

    beats: Sequence[IntArray]  # one reference beat per lead, at the full rate
    fiducial: int  # 1-based sample of the beat's fiducial point
    zones: Sequence[tuple[int, int, int, int]]  # (type, first, fiducial, last), 1-based
    protected: Sequence[tuple[int, int]] = ()
    factor: int = 1
    bimodal: bool = False
    beat_avm_nv: int = 1000
    beat_difference: int = 0
    drop_last_block: bool = False  # a decimated lead's last, partial block left out


@dataclass
class ScpSpec:
    leads: Sequence[tuple[int, IntArray]]  # (lead code, samples in AVM units)
    interval_us: int = 2000
    avm_nv: int = 1000
    difference: int = 0
    huffman: str | None = None  # None (plain 16-bit), "default" or "custom"
    version: int = 20
    reference: Reference | None = None
    tags: dict[int, bytes] = field(default_factory=dict)
    extra_sections: dict[int, bytes] = field(default_factory=dict)
    zero_based: bool = False
    flags: int = 0x04  # leads recorded simultaneously
    saturate_counts: bool = False  # byte counts past 16 bits written as 65535


def _header(section_id: int, body: bytes, version: int) -> bytes:
    reserved = b"SCPECG" if section_id == 0 and version >= 20 else bytes(6)
    length = 16 + len(body)
    rest = struct.pack("<HIBB", section_id, length, version, version) + reserved + body
    return struct.pack("<H", binascii.crc_hqx(rest, 0xFFFF)) + rest


def _differences(values: IntArray, order: int) -> IntArray:
    out = values.astype(np.int64).copy()
    if order >= 1:
        out[1:] = values[1:] - values[:-1]
    if order == 2:  # the first two values as they are, then second differences
        out[1] = values[1]
        out[2:] = values[2:] - 2 * values[1:-1] + values[:-2]
    return out


def _twos(value: int, bits: int) -> str:
    assert -(1 << (bits - 1)) <= value < 1 << (bits - 1), (value, bits)
    return format(value & ((1 << bits) - 1), f"0{bits}b")


def _default_code(value: int) -> str:
    if value == 0:
        return "0"
    if abs(value) <= 8:
        return "1" * abs(value) + ("00" if value > 0 else "01")
    if -128 <= value <= 127:
        return "1111111110" + _twos(value, 8)
    return "1111111111" + _twos(value, 16)


def _custom_codes(values: IntArray) -> str:
    parts = []
    for value in values.tolist():
        if value == 0:
            parts.append("0")
        elif value == 1:
            parts.append("10")
        elif value == -1:
            parts.append("110")
        elif -128 <= value <= 127:
            parts.append("1111" + "0" + _twos(value, 8) + "1")  # to table 2 and back
        else:
            parts.append("1110" + _twos(value, 16))
    return "".join(parts)


def _encode(values: IntArray, huffman: str | None) -> bytes:
    if huffman is None:
        return values.astype("<i2").tobytes()
    bits = "".join(map(_default_code, values.tolist())) if huffman == "default" else None
    if bits is None:
        bits = _custom_codes(values)
    bits += "0" * (-len(bits) % 8)
    raw = int(bits, 2).to_bytes(len(bits) // 8, "big") if bits else b""
    return raw + b"\x00" * (len(raw) & 1)


def _section2(huffman: str) -> bytes:
    if huffman == "default":
        return struct.pack("<H", 19999)
    out = struct.pack("<H", len(CUSTOM_TABLES))
    for table in CUSTOM_TABLES:
        out += struct.pack("<H", len(table))
        for code, total, mode, base in table:
            out += struct.pack("<BBBhI", len(code), total, mode, base, int(code[::-1], 2))
    return out


def _coded(header: bytes, streams: list[bytes], *, saturate: bool = False) -> bytes:
    """A section 5 or 6 body; byte counts past 16 bits wrap (or stop at 65535: `saturate`)."""
    counts = b"".join(
        struct.pack("<H", min(len(s), 0xFFFF) if saturate else len(s) & 0xFFFF) for s in streams
    )
    return header + counts + b"".join(streams)


def _stored_residual(residual: IntArray, start: int, ref: Reference) -> IntArray:
    """The residual as section 6 stores it: block means outside the protected areas."""
    if ref.factor == 1:
        return residual
    end = start + len(residual) - 1
    protected = sorted(ref.protected) if ref.bimodal else []
    stored: list[int] = []
    at = start

    def blocks(first: int, last: int) -> None:
        for lo in range(first, last + 1, ref.factor):
            hi = min(lo + ref.factor - 1, last)
            stored.append(round(float(np.mean(residual[lo - start : hi - start + 1]))))

    for first, last in protected:
        first, last = max(first, at), min(last, end)
        if first > last:
            continue
        blocks(at, first - 1)
        stored.extend(residual[first - start : last - start + 1].tolist())
        at = last + 1
    blocks(at, end)
    return np.asarray(stored, dtype=np.int64)


def _subtract(samples: IntArray, beat: IntArray, start: int, ref: Reference) -> IntArray:
    residual = samples.astype(np.int64).copy()
    for kind, first, fiducial, last in ref.zones:
        if kind != 0:
            continue
        for t in range(first, last + 1):
            m = t - fiducial + ref.fiducial - 1
            if 0 <= m < len(beat) and 0 <= t - start < len(residual):
                residual[t - start] -= int(beat[m])
    return residual


def build_scp(spec: ScpSpec) -> bytes:
    """The bytes of an SCP-ECG record as `spec` describes it, every CRC right."""
    sections: dict[int, bytes] = {}
    if spec.tags:
        body = b"".join(struct.pack("<BH", t, len(v)) + v for t, v in spec.tags.items())
        sections[1] = body + struct.pack("<BH", 255, 0)
    if spec.huffman is not None:
        sections[2] = _section2(spec.huffman)
    shift = 1 if spec.zero_based else 0
    flags = spec.flags | (0x01 if spec.reference else 0) | (len(spec.leads) << 3)
    s3 = struct.pack("<BB", len(spec.leads), flags & 0xFF)
    for code, samples in spec.leads:
        s3 += struct.pack("<IIB", 1 - shift, len(samples) - shift, code)
    sections[3] = s3
    ref = spec.reference
    interval = spec.interval_us
    streams: list[bytes] = []
    if ref is None:
        for _, samples in spec.leads:
            streams.append(_encode(_differences(samples, spec.difference), spec.huffman))
    else:
        s4 = struct.pack("<HHH", len(ref.beats[0]) * interval // 1000, ref.fiducial, len(ref.zones))
        for kind, first, fiducial, last in ref.zones:
            s4 += struct.pack("<HIII", kind, first - shift, fiducial - shift, last - shift)
        for first, last in ref.protected:
            s4 += struct.pack("<II", first - shift, last - shift)
        sections[4] = s4 + b"\x00" * (len(s4) & 1)
        beat_streams = [
            _encode(_differences(beat, ref.beat_difference), spec.huffman) for beat in ref.beats
        ]
        s5_header = struct.pack("<HHBB", ref.beat_avm_nv, interval, ref.beat_difference, 0)
        sections[5] = _coded(s5_header, beat_streams)
        for (_, samples), beat in zip(spec.leads, ref.beats, strict=True):
            residual = _subtract(samples, beat, 1, ref)
            stored = _stored_residual(residual, 1, ref)
            if ref.drop_last_block:
                stored = stored[:-1]
            streams.append(_encode(_differences(stored, spec.difference), spec.huffman))
        interval *= ref.factor
    bimodal = 1 if ref is not None and ref.bimodal else 0
    s6_header = struct.pack("<HHBB", spec.avm_nv, interval, spec.difference, bimodal)
    sections[6] = _coded(s6_header, streams, saturate=spec.saturate_counts)
    sections.update(spec.extra_sections)
    return _assemble(sections, spec.version)


def _assemble(sections: dict[int, bytes], version: int) -> bytes:
    ids = sorted(set(range(12)) | set(sections))
    section0_length = 16 + 10 * len(ids)
    offset = 6 + section0_length + 1  # 1-based index of the first byte after section 0
    pointers = b""
    blobs = b""
    for section_id in ids:
        if section_id == 0:
            pointers += struct.pack("<HII", 0, section0_length, 7)
            continue
        if section_id not in sections:
            pointers += struct.pack("<HII", section_id, 0, 0)
            continue
        blob = _header(section_id, sections[section_id], version)
        pointers += struct.pack("<HII", section_id, len(blob), offset)
        blobs += blob
        offset += len(blob)
    record = _header(0, pointers, version) + blobs
    rest = struct.pack("<I", 6 + len(record)) + record
    return struct.pack("<H", binascii.crc_hqx(rest, 0xFFFF)) + rest


# --- sections 7, 8, 10, 11 ---------------------------------------------------------------


def section7(
    *,
    rr_ms: int,
    onsets: tuple[int, int, int, int, int],
    axes: tuple[int, int, int],
    spikes: Sequence[tuple[int, int, int, int]] = (),  # (time ms, µV, type, width µs)
    rates: tuple[int, int] | None = None,  # (ventricular rate, QTc)
) -> bytes:
    out = struct.pack("<BBHH", 1, len(spikes), rr_ms, rr_ms)
    out += struct.pack("<HHHHHhhh", *onsets, *axes)
    out += b"".join(struct.pack("<Hh", t, a) for t, a, _, _ in spikes)
    out += b"".join(struct.pack("<BBHH", k, 1, 0, w) for _, _, k, w in spikes)
    if rates is not None:
        out += struct.pack("<H", 0) + struct.pack("<HHH", rates[0], rates[0], rates[1])
    return out


def statements(texts: Sequence[str], *, universal: bool = False) -> bytes:
    out = bytes(8) + struct.pack("<B", len(texts))
    for number, text in enumerate(texts, start=1):
        raw = (b"\x01" if universal else b"") + text.encode() + b"\x00"
        out += struct.pack("<BH", number, len(raw)) + raw
    return out


def section10(per_lead: dict[int, Sequence[int]]) -> bytes:
    out = struct.pack("<HH", len(per_lead), 0)
    for code, values in per_lead.items():
        out += struct.pack("<HH", code, 2 * len(values))
        out += struct.pack(f"<{len(values)}h", *values)
    return out


def paced_scp() -> bytes:
    """A synthetic SCP-ECG file with the cart's stimuli, statements and lead measurements."""
    t = np.arange(2500)
    leads = [(code, np.rint(300 * np.sin(2 * np.pi * t / 400 + code)).astype(np.int64))
             for code in (1, 2, 3, 4, 5, 6, 7, 8)]  # fmt: skip
    extra = {
        7: section7(
            rr_ms=800,
            onsets=(40, 150, 180, 270, 560),
            axes=(50, 60, 40),
            spikes=[(490, 1200, 2, 500), (1290, 900, 3, 0), (2090, 800, 0, 0)],
        ),
        8: statements(["Atrial-sensed ventricular-paced rhythm"]),
        10: section10({3: [100, 140, 90, 380, 20, 40, 30, 0, 0, -120, 900, -300]}),  # V1
    }
    return build_scp(ScpSpec(leads=leads, extra_sections=extra))
