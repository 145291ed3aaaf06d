"""Delimited text: a header row of lead names, one row per sample.

Accepted shape::

    # sampling_rate_hz: 500
    # units: uV
    I,II,III,aVR,...
    -12.5,40.0,52.5,...

Comment lines (``#``) before the header may give ``sampling_rate_hz`` (also ``fs``,
``sampling_rate``, ``sample_rate``) and ``units`` (``uV``, ``mV``, ``V``, ``nV``; default µV).
A column may carry its own unit in the header (``II (mV)``, ``II [mV]``). A first column
named ``time``/``t``/``time_s``/``time_ms`` gives the rate when no comment does. The
delimiter is a comma, semicolon or tab.
"""

from __future__ import annotations

import re

import numpy as np

from ecg.errors import EcgFormatError
from ecg.formats._common import (
    VOLTAGE_UNITS_TO_UV,
    FloatArray,
    assemble_record,
    microvolts_per_unit,
    normalize_lead_name,
    reader_boundary,
)
from ecg.record import EcgFormat, EcgRecord

__all__ = ["read_csv"]

_CONTEXT = "CSV"
_RATE_KEYS = {"sampling_rate_hz", "sampling_rate", "sample_rate", "fs", "sampling_frequency"}
_TIME_COLUMNS = {"time": 1.0, "t": 1.0, "time_s": 1.0, "seconds": 1.0, "time_ms": 1e-3, "ms": 1e-3}
_UNIT_SUFFIX = re.compile(r"^(?P<name>.*?)\s*[\(\[](?P<unit>[^\)\]]+)[\)\]]\s*$")
_MAX_BYTES = 200 * 1024 * 1024


@reader_boundary(_CONTEXT)
def read_csv(data: bytes, sampling_rate_hz: float | None = None) -> EcgRecord:
    """Read an ECG from delimited text with a header row of lead names.

    Parameters
    ----------
    data
        The file (UTF-8, optionally with byte order mark).
    sampling_rate_hz
        The rate when the file does not state it; a rate in the file wins.

    Returns
    -------
    EcgRecord
        One lead per column (a time column excluded), in microvolts.

    Raises
    ------
    EcgFormatError
        No header, an empty or non-numeric cell, rows of different widths, duplicate lead
        names, an unknown unit, or no way to know the sampling rate.
    """
    lines = _text_lines(data)
    settings, index = _read_settings(lines)
    if index >= len(lines):
        raise EcgFormatError(f"{_CONTEXT}: no header row")
    delimiter = _delimiter(lines[index])
    header = [cell.strip().strip('"') for cell in _split(lines[index], delimiter)]
    default_unit = settings.get("units", settings.get("unit", "uV"))
    columns, time_column, time_scale = _read_columns(header, default_unit)
    if _is_number(header[-1]):
        raise EcgFormatError(
            f"{_CONTEXT}: the first row holds numbers; a header row of lead names is required"
        )
    table = _read_table(lines, index, delimiter, len(header))
    rate = _rate(settings, table, time_column, time_scale, sampling_rate_hz)
    return assemble_record(
        signals=_lead_signals(table, columns, time_column),
        sampling_rate_hz=rate,
        source_format=EcgFormat.CSV,
        context=_CONTEXT,
    )


def _text_lines(data: bytes) -> list[str]:
    """The file's lines, once it is known to be UTF-8 text of a plausible size."""
    if len(data) > _MAX_BYTES:
        raise EcgFormatError(f"{_CONTEXT}: file of {len(data)} bytes exceeds {_MAX_BYTES} bytes")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise EcgFormatError(f"{_CONTEXT}: not UTF-8 text ({exc})") from exc
    return text.splitlines()


def _read_settings(lines: list[str]) -> tuple[dict[str, str], int]:
    """``key: value`` (or ``key=value``) settings of the comment lines before the header.

    Returns the settings, keys in lower case, and the index of the first line that is
    neither blank nor a comment (the header row; ``len(lines)`` when there is none).
    """
    settings: dict[str, str] = {}
    index = 0
    while index < len(lines) and (
        not lines[index].strip() or lines[index].lstrip().startswith("#")
    ):
        key, sep, value = lines[index].lstrip()[1:].partition(":" if ":" in lines[index] else "=")
        if sep:
            settings[key.strip().lower()] = value.strip()
        index += 1
    return settings, index


def _delimiter(header_line: str) -> str:
    """The commonest of comma, semicolon and tab in the header row; a space when none is."""
    delimiter = max((",", ";", "\t"), key=header_line.count)
    if header_line.count(delimiter) == 0 and len(header_line.split()) > 1:
        delimiter = " "
    return delimiter


def _read_columns(
    header: list[str], default_unit: str
) -> tuple[list[tuple[str, float]], int | None, float]:
    """Each header cell's lead name and factor to microvolts, and the time column if any.

    Returns the ``(name, factor)`` of every column (the time column included, factor 1),
    the position of the time column (``None`` without one) and its factor to seconds.
    """
    columns: list[tuple[str, float]] = []
    time_column: int | None = None
    time_scale = 1.0
    for position, cell in enumerate(header):
        if not cell:
            raise EcgFormatError(f"{_CONTEXT}: header column {position + 1} has no lead name")
        if position == 0 and cell.lower() in _TIME_COLUMNS:
            time_column, time_scale = 0, _TIME_COLUMNS[cell.lower()]
            columns.append((cell, 1.0))
            continue
        columns.append(_lead_column(cell, default_unit))
    return columns, time_column, time_scale


def _lead_column(cell: str, default_unit: str) -> tuple[str, float]:
    """A lead column's normalised name and factor to microvolts (its own unit, if it has one)."""
    match = _UNIT_SUFFIX.match(cell)
    if match and match["unit"].strip().lower() in VOLTAGE_UNITS_TO_UV:
        name, unit = match["name"], match["unit"]
    else:
        name, unit = cell, default_unit
    return normalize_lead_name(name), microvolts_per_unit(unit, f"{_CONTEXT} column {cell!r}")


def _read_table(lines: list[str], index: int, delimiter: str, width: int) -> FloatArray:
    """The sample rows after the header (line `index`), as a ``(rows, width)`` float array."""
    rows = [_split(line, delimiter) for line in lines[index + 1 :] if line.strip()]
    if not rows:
        raise EcgFormatError(f"{_CONTEXT}: no sample rows after the header")
    for number, row in enumerate(rows, start=index + 2):
        if len(row) != width:
            raise EcgFormatError(
                f"{_CONTEXT}: line {number} has {len(row)} cells, the header has {width}"
            )
    try:
        table = np.array([[float(cell) for cell in row] for row in rows], dtype=np.float64)
    except ValueError as exc:
        raise EcgFormatError(f"{_CONTEXT}: a cell is not a number ({exc})") from exc
    if not np.isfinite(table).all():
        line = index + 2 + int(np.argwhere(~np.isfinite(table))[0][0])
        raise EcgFormatError(f"{_CONTEXT}: line {line} holds a missing or non-finite value")
    return table


def _lead_signals(
    table: FloatArray, columns: list[tuple[str, float]], time_column: int | None
) -> dict[str, FloatArray]:
    """Each lead column of the table in microvolts, by lead name (the time column left out)."""
    signals: dict[str, FloatArray] = {}
    for position, (name, factor) in enumerate(columns):
        if position == time_column:
            continue
        if name in signals:
            raise EcgFormatError(f"{_CONTEXT}: lead {name} appears twice in the header")
        signals[name] = table[:, position] * factor
    return signals


def _split(line: str, delimiter: str) -> list[str]:
    return line.split() if delimiter == " " else [cell.strip() for cell in line.split(delimiter)]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _rate(
    settings: dict[str, str],
    table: np.ndarray,
    time_column: int | None,
    time_scale: float,
    given: float | None,
) -> float:
    for key in _RATE_KEYS:
        if key in settings:
            try:
                rate = float(settings[key].split()[0])
            except (ValueError, IndexError) as exc:
                raise EcgFormatError(
                    f"{_CONTEXT}: {key} {settings[key]!r} is not a number of Hz"
                ) from exc
            if rate > 0:
                return rate
            raise EcgFormatError(f"{_CONTEXT}: {key} must be positive, got {settings[key]!r}")
    if time_column is not None and len(table) > 1:
        steps = np.diff(table[:, time_column]) * time_scale
        step = float(np.median(steps))
        if step <= 0 or np.any(np.abs(steps - step) > 0.01 * step):
            raise EcgFormatError(f"{_CONTEXT}: the time column is not evenly spaced")
        return 1.0 / step
    if given is not None:
        return float(given)
    raise EcgFormatError(
        f"{_CONTEXT}: sampling rate unknown: add a '# sampling_rate_hz: N' line or a time column"
    )
