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
    if len(data) > _MAX_BYTES:
        raise EcgFormatError(f"{_CONTEXT}: file of {len(data)} bytes exceeds {_MAX_BYTES} bytes")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise EcgFormatError(f"{_CONTEXT}: not UTF-8 text ({exc})") from exc
    lines = text.splitlines()
    settings: dict[str, str] = {}
    index = 0
    while index < len(lines) and (
        not lines[index].strip() or lines[index].lstrip().startswith("#")
    ):
        key, sep, value = lines[index].lstrip()[1:].partition(":" if ":" in lines[index] else "=")
        if sep:
            settings[key.strip().lower()] = value.strip()
        index += 1
    if index >= len(lines):
        raise EcgFormatError(f"{_CONTEXT}: no header row")
    header_line = lines[index]
    delimiter = max((",", ";", "\t"), key=header_line.count)
    if header_line.count(delimiter) == 0 and len(header_line.split()) > 1:
        delimiter = " "
    header = [cell.strip().strip('"') for cell in _split(header_line, delimiter)]
    default_unit = settings.get("units", settings.get("unit", "uV"))
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
        match = _UNIT_SUFFIX.match(cell)
        if match and match["unit"].strip().lower() in VOLTAGE_UNITS_TO_UV:
            name, unit = match["name"], match["unit"]
        else:
            name, unit = cell, default_unit
        columns.append(
            (normalize_lead_name(name), microvolts_per_unit(unit, f"{_CONTEXT} column {cell!r}"))
        )
    if _is_number(header[-1]):
        raise EcgFormatError(
            f"{_CONTEXT}: the first row holds numbers; a header row of lead names is required"
        )
    rows = [_split(line, delimiter) for line in lines[index + 1 :] if line.strip()]
    if not rows:
        raise EcgFormatError(f"{_CONTEXT}: no sample rows after the header")
    for number, row in enumerate(rows, start=index + 2):
        if len(row) != len(header):
            raise EcgFormatError(
                f"{_CONTEXT}: line {number} has {len(row)} cells, the header has {len(header)}"
            )
    try:
        table = np.array([[float(cell) for cell in row] for row in rows], dtype=np.float64)
    except ValueError as exc:
        raise EcgFormatError(f"{_CONTEXT}: a cell is not a number ({exc})") from exc
    if not np.isfinite(table).all():
        line = index + 2 + int(np.argwhere(~np.isfinite(table))[0][0])
        raise EcgFormatError(f"{_CONTEXT}: line {line} holds a missing or non-finite value")
    rate = _rate(settings, table, time_column, time_scale, sampling_rate_hz)
    signals: dict[str, FloatArray] = {}
    for position, (name, factor) in enumerate(columns):
        if position == time_column:
            continue
        if name in signals:
            raise EcgFormatError(f"{_CONTEXT}: lead {name} appears twice in the header")
        signals[name] = table[:, position] * factor
    return assemble_record(
        signals=signals,
        sampling_rate_hz=rate,
        source_format=EcgFormat.CSV,
        context=_CONTEXT,
    )


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
