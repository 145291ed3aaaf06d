"""Contec ECG90A native ``.ECG`` files (reverse-engineered layout, no vendor specification).

A 43-byte header (case number, ``YYYY-MM-DD HH:MM:SS`` timestamp, patient name, sex, age,
weight), then rows of eight little-endian 16-bit samples at 800 Hz — II, III, V1…V6 —
offset by 2048, 5 µV per count, with 0x6800 marking "no signal" (unconnected electrode).
Carts close the file with a 37-byte trailer of zeros, or with nothing: as 37 is not a
multiple of the 16-byte row, the file's own length says which (43 + 16 n bytes: no trailer;
43 + 16 n + 37: a trailer, which must then be zeros); any other length is a file cut short
in the middle of a row. I, aVR, aVL and aVF are derived from II and III.
"""

from __future__ import annotations

import re
from datetime import datetime

import numpy as np

from ecg.errors import EcgFormatError
from ecg.formats._common import FloatArray, assemble_record, reader_boundary
from ecg.record import EcgDevice, EcgFormat, EcgPatient, EcgRecord, Sex

__all__ = ["CONTEC_RATE_HZ", "CONTEC_UV_PER_COUNT", "is_contec_ecg90a", "read_contec_ecg90a"]

_CONTEXT = "Contec ECG90A"
HEADER_BYTES = 43
TRAILER_BYTES = 37
CONTEC_RATE_HZ = 800.0
CONTEC_UV_PER_COUNT = 5.0
_ZERO = 2048
_NO_SIGNAL = 0x6800
_STORED = ("II", "III", "V1", "V2", "V3", "V4", "V5", "V6")
_TIMESTAMP = re.compile(rb"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")


def is_contec_ecg90a(data: bytes) -> bool:
    """Whether the bytes start with a Contec ECG90A header (case number and timestamp)."""
    return (
        len(data) >= HEADER_BYTES
        and re.fullmatch(rb"[0-9A-Za-z]{1,7}\x00*", data[:8]) is not None
        and _TIMESTAMP.fullmatch(data[10:29]) is not None
    )


@reader_boundary(_CONTEXT)
def read_contec_ecg90a(data: bytes) -> EcgRecord:
    """Read a Contec ECG90A ``.ECG`` file.

    Parameters
    ----------
    data
        The whole file.

    Returns
    -------
    EcgRecord
        At 800 Hz, microvolts: the limb leads I, II, III, aVR, aVL, aVF (I and the augmented
        leads derived from II and III) and V1–V6 when their electrodes were connected; leads
        whose every sample is the device's "no signal" code are left out, with a warning.

    Raises
    ------
    EcgFormatError
        The header is not a Contec header, the file holds no samples, or its length is not
        the header and whole rows of eight 16-bit samples, with or without the zero trailer
        (a file cut short in transfer, or corrupted).
    """
    if not is_contec_ecg90a(data):
        raise EcgFormatError(
            f"{_CONTEXT}: header missing or damaged (expected a case number and a "
            "'YYYY-MM-DD HH:MM:SS' timestamp in the first 30 bytes)"
        )
    payload = _payload(data)
    rows = np.frombuffer(payload, dtype="<u2").reshape(-1, len(_STORED)).astype(np.int64)
    # an all-zero row ends the recording early
    end_rows = np.flatnonzero(np.all(rows == 0, axis=1))
    if len(end_rows):
        rows = rows[: end_rows[0]]
    if len(rows) == 0:
        raise EcgFormatError(
            f"{_CONTEXT}: the file holds no ECG samples: record the ECG again on the cart"
        )
    warnings: list[str] = [
        "Contec ECG90A layout is reverse-engineered: 800 Hz and 5 µV per count are assumed"
    ]
    missing = rows == _NO_SIGNAL
    signals: dict[str, FloatArray] = {}
    absent: list[str] = []
    for index, name in enumerate(_STORED):
        if missing[:, index].all():
            absent.append(name)
            continue
        values = (rows[:, index] - _ZERO).astype(np.float64) * CONTEC_UV_PER_COUNT
        if missing[:, index].any():
            values[missing[:, index]] = 0.0
            warnings.append(
                f"lead {name}: {int(missing[:, index].sum())} samples marked 'no signal' set to 0"
            )
        signals[name] = values
    if "II" not in signals or "III" not in signals:
        raise EcgFormatError(
            f"{_CONTEXT}: leads II and III carry no signal (the limb electrodes were not "
            "connected): check the arm and leg electrodes and record the ECG again"
        )
    if absent:
        warnings.append(f"leads {', '.join(absent)} not recorded (electrodes not connected)")
    lead_ii, lead_iii = signals["II"], signals["III"]
    signals["I"] = lead_ii - lead_iii
    signals["aVR"] = lead_iii / 2.0 - lead_ii  # −(I + II)/2
    signals["aVL"] = lead_ii / 2.0 - lead_iii  # (I − III)/2
    signals["aVF"] = (lead_ii + lead_iii) / 2.0
    return assemble_record(
        signals=signals,
        sampling_rate_hz=CONTEC_RATE_HZ,
        source_format=EcgFormat.CONTEC_ECG90A,
        context=_CONTEXT,
        acquired_at=_timestamp(data),
        patient=_patient(data),
        device=EcgDevice(manufacturer="Contec", model="ECG90A"),
        warnings=warnings,
    )


_ROW_BYTES = 2 * len(_STORED)


def _payload(data: bytes) -> bytes:
    """The sample rows: what follows the header, less the zero trailer when the length says
    the file has one."""
    body = len(data) - HEADER_BYTES
    if body < _ROW_BYTES or body == TRAILER_BYTES:
        raise EcgFormatError(
            f"{_CONTEXT}: the file ({len(data)} bytes) holds no ECG samples: record the ECG "
            "again on the cart and send the new file"
        )
    if body % _ROW_BYTES == 0:
        return data[HEADER_BYTES:]
    if body % _ROW_BYTES == TRAILER_BYTES % _ROW_BYTES:
        if any(data[-TRAILER_BYTES:]):
            raise EcgFormatError(
                f"{_CONTEXT}: the file's last {TRAILER_BYTES} bytes should be the cart's zero "
                "trailer but hold data: the file is damaged, send it again from the cart"
            )
        return data[HEADER_BYTES:-TRAILER_BYTES]
    raise EcgFormatError(
        f"{_CONTEXT}: the file ({len(data)} bytes) ends in the middle of a sample row: it was "
        "cut short in transfer, send it again from the cart"
    )


def _text(raw: bytes) -> str | None:
    raw = raw.split(b"\x00", 1)[0]
    for encoding in ("utf-8", "gb18030", "latin-1"):
        try:
            text = raw.decode(encoding).strip()
            return text or None
        except UnicodeDecodeError:
            continue
    return None  # pragma: no cover - latin-1 decodes everything


def _timestamp(data: bytes) -> datetime | None:
    try:
        return datetime.strptime(data[10:29].decode("ascii"), "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return None


def _patient(data: bytes) -> EcgPatient:
    sex_code, age = data[40], data[41]
    return EcgPatient(
        id=_text(data[:8]),
        name=_text(data[32:40]),
        sex={0: Sex.FEMALE, 1: Sex.MALE}.get(sex_code),
        age_years=float(age) if 0 < age <= 200 else None,
    )
