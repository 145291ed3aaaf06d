"""ECG as pure functions: format readers, signal processing, measurements, rendering.

Nothing here performs I/O: functions take bytes or arrays and return values.
"""

from ecg.errors import EcgError, EcgFormatError, EcgRecordError
from ecg.formats import detect_format, read_ecg
from ecg.record import (
    MEASUREMENT_KEYS,
    STANDARD_LEADS,
    EcgDevice,
    EcgFormat,
    EcgPatient,
    EcgRecord,
    Sex,
)

__all__ = [
    "MEASUREMENT_KEYS",
    "STANDARD_LEADS",
    "EcgDevice",
    "EcgError",
    "EcgFormat",
    "EcgFormatError",
    "EcgPatient",
    "EcgRecord",
    "EcgRecordError",
    "Sex",
    "detect_format",
    "read_ecg",
]
