"""ECG as pure functions: format readers, signal processing, measurements, rendering.

Nothing here performs I/O: functions take bytes or arrays and return values.
"""

from ecg.errors import EcgError, EcgFormatError, EcgRecordError
from ecg.formats import detect_format, read_ecg
from ecg.record import (
    LEAD_MEASUREMENT_KEYS,
    MEASUREMENT_KEYS,
    STANDARD_LEADS,
    EcgDevice,
    EcgFormat,
    EcgPacemakerSpike,
    EcgPatient,
    EcgRecord,
    Sex,
)

__all__ = [
    "LEAD_MEASUREMENT_KEYS",
    "MEASUREMENT_KEYS",
    "STANDARD_LEADS",
    "EcgDevice",
    "EcgError",
    "EcgFormat",
    "EcgFormatError",
    "EcgPacemakerSpike",
    "EcgPatient",
    "EcgRecord",
    "EcgRecordError",
    "Sex",
    "detect_format",
    "read_ecg",
]
