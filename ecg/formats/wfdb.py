"""WFDB records (PhysioNet): a ``.hea`` header and its signal files in format 16 or 212,
or MATLAB v4 ``.mat`` signal files (format 16 after the matrix header) as the
PhysioNet/CinC Challenge publishes them."""

from __future__ import annotations

import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import numpy.typing as npt

from ecg.errors import EcgFormatError
from ecg.formats._common import (
    FloatArray,
    assemble_record,
    microvolts_per_unit,
    normalize_lead_name,
    reader_boundary,
)
from ecg.record import EcgFormat, EcgPatient, EcgRecord, Sex

__all__ = ["is_wfdb_header", "read_wfdb"]

_CONTEXT = "WFDB"
_SUPPORTED_FORMATS = (16, 212)
_INVALID = {16: -32768, 212: -2048}

_RECORD_LINE = re.compile(
    r"(?P<name>[\w\-.]+)(?:/(?P<segments>\d+))?\s+(?P<nsig>\d+)"
    r"(?:\s+(?P<fs>[\d.eE+\-]+)(?:/[\d.eE+\-]+)?(?:\([\d.eE+\-]+\))?"
    r"(?:\s+(?P<nsamp>\d+)(?:\s+(?P<when>\S.*?))?)?)?\s*"
)
#: Base time and date as WFDB writes them (``HH:MM:SS dd/mm/yyyy``), and as some exporters do
#: (the PhysioNet/CinC 2021 headers: ``dd-Mon-yyyy HH:MM:SS``).
_BASE_LAYOUTS = (
    "%H:%M:%S %d/%m/%Y",
    "%H:%M:%S.%f %d/%m/%Y",
    "%H:%M %d/%m/%Y",
    "%d-%b-%Y %H:%M:%S",
    "%d-%b-%Y %H:%M:%S.%f",
)
#: A MATLAB v4 matrix header: type (MOPT), rows, columns, imaginary flag, name length.
_MAT4_HEADER = struct.Struct("<5i")
#: MOPT of a little-endian full numeric int16 matrix (M=0, O=0, P=3, T=0).
_MAT4_INT16_LE = 30
_GAIN = re.compile(r"(?P<gain>[\d.eE+\-]+)?(?:\((?P<baseline>-?\d+)\))?(?:/(?P<units>\S+))?")


@dataclass(frozen=True)
class _Signal:
    file_name: str
    fmt: int
    gain: float
    baseline: int
    units: str
    initial: int | None
    checksum: int | None
    description: str
    byte_offset: int


def is_wfdb_header(data: bytes) -> bool:
    """Whether the bytes look like a WFDB header (record line, then signal lines)."""
    try:
        text = data[:4096].decode("ascii")
    except UnicodeDecodeError:
        return False
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    if len(lines) < 2 or _RECORD_LINE.fullmatch(lines[0].strip()) is None:
        return False
    fields = lines[1].split()
    return len(fields) >= 2 and re.fullmatch(r"\d+(x\d+)?(:\d+)?(\+\d+)?", fields[1]) is not None


def _parse_header(
    text: str, warnings: list[str]
) -> tuple[str, int, float, int | None, datetime | None, list[_Signal], list[str]]:
    """The header's record line, signal lines and comments; what it does not understand
    (a base date in a foreign layout, a record name with a file extension) is noted in
    `warnings` and left out."""
    lines = text.splitlines()
    comments = [line[1:].strip() for line in lines if line.startswith("#")]
    content = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    if not content:
        raise EcgFormatError(f"{_CONTEXT}: header is empty")
    record = _RECORD_LINE.fullmatch(content[0])
    if record is None:
        raise EcgFormatError(f"{_CONTEXT}: record line {content[0]!r} is malformed")
    if record["segments"]:
        raise EcgFormatError(f"{_CONTEXT}: multi-segment records are not supported")
    n_signals = int(record["nsig"])
    rate = float(record["fs"]) if record["fs"] else 250.0
    n_samples = int(record["nsamp"]) if record["nsamp"] else None
    start = _start_time(record["when"], warnings)
    name = record["name"]
    if re.search(r"\.(mat|dat|hea)$", name, re.IGNORECASE):
        warnings.append(f"record name {name!r} carries a file extension; read as {name[:-4]!r}")
        name = name[:-4]
    if len(content) - 1 < n_signals:
        raise EcgFormatError(
            f"{_CONTEXT}: header declares {n_signals} signals but has {len(content) - 1} "
            "signal lines (truncated header?)"
        )
    signals: list[_Signal] = []
    for line in content[1 : 1 + n_signals]:
        fields = line.split(maxsplit=8)
        if len(fields) < 2:
            raise EcgFormatError(f"{_CONTEXT}: signal line {line!r} is malformed")
        fmt_match = re.fullmatch(r"(\d+)(?:x(\d+))?(?::(\d+))?(?:\+(\d+))?", fields[1])
        if fmt_match is None:
            raise EcgFormatError(f"{_CONTEXT}: signal format {fields[1]!r} is malformed")
        fmt = int(fmt_match[1])
        if fmt_match[2] and fmt_match[2] != "1":
            raise EcgFormatError(f"{_CONTEXT}: multi-frequency signals are not supported")
        gain_match = _GAIN.fullmatch(fields[2]) if len(fields) > 2 else None
        if len(fields) > 2 and gain_match is None:
            raise EcgFormatError(f"{_CONTEXT}: gain field {fields[2]!r} is malformed")
        gain = float(gain_match["gain"]) if gain_match and gain_match["gain"] else 0.0
        adc_zero = int(fields[4]) if len(fields) > 4 else 0
        baseline = (
            int(gain_match["baseline"]) if gain_match and gain_match["baseline"] else adc_zero
        )
        signals.append(
            _Signal(
                file_name=fields[0],
                fmt=fmt,
                gain=gain if gain > 0 else 200.0,
                baseline=baseline,
                units=(gain_match["units"] if gain_match and gain_match["units"] else "mV"),
                initial=int(fields[5]) if len(fields) > 5 else None,
                checksum=int(fields[6]) if len(fields) > 6 else None,
                description=fields[8].strip() if len(fields) > 8 else f"signal {len(signals)}",
                byte_offset=int(fmt_match[4] or 0),
            )
        )
    return name, n_signals, rate, n_samples, start, signals, comments


def _start_time(when: str | None, warnings: list[str]) -> datetime | None:
    """The record line's base time and date, if in a layout of :data:`_BASE_LAYOUTS`."""
    if not when:
        return None
    for layout in _BASE_LAYOUTS:
        try:
            return datetime.strptime(when, layout)
        except ValueError:
            continue
    if re.fullmatch(r"[\d:.]+", when) is None:
        warnings.append(f"base time/date {when!r} not understood; ignored")
    return None


def _decode(raw: bytes, fmt: int, n_columns: int) -> npt.NDArray[np.int64]:
    if fmt == 16:
        usable = len(raw) - len(raw) % (2 * n_columns)
        return np.frombuffer(raw[:usable], dtype="<i2").astype(np.int64).reshape(-1, n_columns)
    # format 212: pairs of 12-bit samples in three bytes
    usable = len(raw) - len(raw) % 3
    triples = np.frombuffer(raw[:usable], dtype=np.uint8).astype(np.int64).reshape(-1, 3)
    first = triples[:, 0] | ((triples[:, 1] & 0x0F) << 8)
    second = triples[:, 2] | ((triples[:, 1] & 0xF0) << 4)
    values = np.empty(2 * len(triples), dtype=np.int64)
    values[0::2] = first
    values[1::2] = second
    values = np.where(values >= 2048, values - 4096, values)
    usable_values = len(values) - len(values) % n_columns
    return values[:usable_values].reshape(-1, n_columns)


@reader_boundary(_CONTEXT)
def read_wfdb(files: Mapping[str, bytes], record_name: str | None = None) -> EcgRecord:
    """Read a WFDB record from its header and signal files.

    Parameters
    ----------
    files
        ``{file name: bytes}`` holding the ``.hea`` header and every signal file it names
        (``.dat``, ``.xyz``, …). Annotation files are ignored.
    record_name
        Which record to read when `files` holds several headers.

    Returns
    -------
    EcgRecord
        Every signal in microvolts (``(sample − baseline) / gain``, converted from the
        header's units). Lead names are normalised (``i`` → ``I``, ``avr`` → ``aVR``);
        other signal descriptions are kept as given.

    Raises
    ------
    EcgFormatError
        No header, a malformed header, a missing signal file, an unsupported format (only
        16 and 212), a signal file shorter than the header says, a ``.mat`` file that is not
        one int16 MATLAB v4 matrix of the header's signals, or a checksum or first-sample
        mismatch. What the reader can do without (a base date in a foreign layout, a record
        name with a file extension) is noted in the record's warnings instead.
    """
    header_name, header = _select_header(files, record_name)
    try:
        text = header.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EcgFormatError(f"{_CONTEXT}: header {header_name} is not text ({exc})") from exc
    warnings: list[str] = []
    _, _, rate, n_samples, start, signals, comments = _parse_header(text, warnings)
    columns = _columns_by_file(signals)
    by_base = {name.rsplit("/", 1)[-1]: data for name, data in files.items()}
    decoded: dict[int, npt.NDArray[np.int64]] = {}
    for file_name, indices in columns.items():
        if file_name not in by_base:
            raise EcgFormatError(f"{_CONTEXT}: signal file {file_name} was not provided")
        data = by_base[file_name]
        frames = _read_signal_file(file_name, data, signals, indices, n_samples, warnings)
        for column, index in enumerate(indices):
            decoded[index] = frames[:, column]
    lead_signals: dict[str, FloatArray] = {}
    for index, signal in enumerate(signals):
        name = normalize_lead_name(signal.description)
        physical = _signal_uv(signal, name, decoded[index], warnings)
        if name in lead_signals:
            raise EcgFormatError(f"{_CONTEXT}: signal {name} appears twice")
        lead_signals[name] = physical
    return assemble_record(
        signals=lead_signals,
        sampling_rate_hz=rate,
        source_format=EcgFormat.WFDB,
        context=_CONTEXT,
        acquired_at=start,
        patient=_patient(comments),
        warnings=warnings,
    )


def _select_header(files: Mapping[str, bytes], record_name: str | None) -> tuple[str, bytes]:
    """The one ``.hea`` file among `files` (of `record_name` when given), name and bytes."""
    headers = {name: data for name, data in files.items() if name.endswith(".hea")}
    if record_name is not None:
        headers = {n: d for n, d in headers.items() if n.rsplit("/", 1)[-1] == f"{record_name}.hea"}
    if len(headers) != 1:
        raise EcgFormatError(
            f"{_CONTEXT}: expected one .hea header, got {sorted(headers) or 'none'}"
        )
    return next(iter(headers.items()))


def _columns_by_file(signals: list[_Signal]) -> dict[str, list[int]]:
    """Which signals (by index, in header order) each signal file holds, in frame order."""
    columns: dict[str, list[int]] = {}
    for index, signal in enumerate(signals):
        if signal.fmt not in _SUPPORTED_FORMATS:
            raise EcgFormatError(
                f"{_CONTEXT}: signal {signal.description!r} uses format {signal.fmt}; only "
                f"{', '.join(map(str, _SUPPORTED_FORMATS))} are supported"
            )
        columns.setdefault(signal.file_name, []).append(index)
    return columns


def _read_signal_file(
    file_name: str,
    data: bytes,
    signals: list[_Signal],
    indices: list[int],
    n_samples: int | None,
    warnings: list[str],
) -> npt.NDArray[np.int64]:
    """The frames of one signal file, ``(samples, signals)``, cut to the header's length."""
    formats = {signals[i].fmt for i in indices}
    if len(formats) != 1:
        raise EcgFormatError(f"{_CONTEXT}: {file_name} mixes formats {sorted(formats)}")
    fmt = formats.pop()
    offset = signals[indices[0]].byte_offset
    if file_name.lower().endswith(".mat"):
        frames = _read_mat4(file_name, data, fmt, offset, len(indices), warnings)
    else:
        frames = _decode(data[offset:], fmt, len(indices))
    if n_samples is not None:
        if len(frames) < n_samples:
            raise EcgFormatError(
                f"{_CONTEXT}: {file_name} holds {len(frames)} samples per signal, the header "
                f"says {n_samples} (truncated file?)"
            )
        frames = frames[:n_samples]
    return frames


def _read_mat4(
    file_name: str, data: bytes, fmt: int, offset: int, n_columns: int, warnings: list[str]
) -> npt.NDArray[np.int64]:
    """The frames of a MATLAB v4 signal file (one int16 matrix, signals by samples, as the
    PhysioNet/CinC Challenge writes them): format 16 after the matrix header."""
    if fmt != 16 or len(data) < _MAT4_HEADER.size:
        raise EcgFormatError(f"{_CONTEXT}: {file_name} is not a MATLAB v4 file of format 16")
    mopt, rows, columns, imaginary, name_length = _MAT4_HEADER.unpack_from(data)
    if mopt != _MAT4_INT16_LE or imaginary or not 0 < name_length < 64:
        raise EcgFormatError(
            f"{_CONTEXT}: {file_name} is not a little-endian int16 MATLAB v4 matrix (type {mopt})"
        )
    start = _MAT4_HEADER.size + name_length
    if offset and offset != start:
        warnings.append(
            f"{file_name}: the header's byte offset {offset} is not the matrix data's {start}; "
            "read from the matrix data"
        )
    if n_columns not in (rows, columns):
        raise EcgFormatError(
            f"{_CONTEXT}: {file_name} holds a {rows} x {columns} matrix, not {n_columns} signals"
        )
    values = _decode(data[start : start + 2 * rows * columns], 16, 1)[:, 0]
    if len(values) < rows * columns:
        raise EcgFormatError(f"{_CONTEXT}: {file_name} is shorter than its matrix (truncated?)")
    # Column-major: a signals-by-samples matrix is stored frame by frame.
    if rows == n_columns:
        return values.reshape(columns, rows)
    return values.reshape(columns, rows).T.copy()


def _signal_uv(
    signal: _Signal, name: str, values: npt.NDArray[np.int64], warnings: list[str]
) -> FloatArray:
    """One signal in microvolts, after its first sample and checksum are checked.

    Invalid samples (the format's reserved value) become 0, with a warning in `warnings`.
    """
    _check_signal(signal, name, values)
    invalid = values == _INVALID[signal.fmt]
    physical = (values - signal.baseline) / signal.gain
    physical = physical * microvolts_per_unit(signal.units, f"{_CONTEXT} signal {name}")
    if invalid.any():
        physical = np.where(invalid, 0.0, physical)
        warnings.append(f"signal {name}: {int(invalid.sum())} invalid samples set to 0")
    return physical.astype(np.float64)


def _check_signal(signal: _Signal, name: str, values: npt.NDArray[np.int64]) -> None:
    """The header's first sample and 16-bit checksum, where it gives them, must match."""
    if signal.initial is not None and len(values) and values[0] != signal.initial:
        raise EcgFormatError(
            f"{_CONTEXT}: signal {name}: first sample {values[0]} differs from the header's "
            f"{signal.initial} (corrupted file?)"
        )
    if signal.checksum is not None:
        checksum = int(values.sum()) & 0xFFFF
        checksum = checksum - 0x10000 if checksum >= 0x8000 else checksum
        if checksum != signal.checksum:
            raise EcgFormatError(
                f"{_CONTEXT}: signal {name}: checksum {checksum} differs from the header's "
                f"{signal.checksum} (corrupted file?)"
            )


def _patient(comments: list[str]) -> EcgPatient:
    values: dict[str, str] = {}
    for comment in comments:
        key, sep, value = comment.partition(":")
        if sep:
            values.setdefault(key.strip().lower(), value.strip())
    age_text = values.get("age", "")
    age = float(age_text) if re.fullmatch(r"\d+(\.\d+)?", age_text) else None
    sex = {"male": Sex.MALE, "m": Sex.MALE, "female": Sex.FEMALE, "f": Sex.FEMALE}.get(
        values.get("sex", "").lower()
    )
    return EcgPatient(sex=sex, age_years=age)
