"""Helpers shared by the format readers: bounds-checked bytes, lead names, XML, assembly."""

from __future__ import annotations

import functools
import math
import re
import struct
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime
from typing import Any, ParamSpec, TypeVar
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as SafeET
import numpy as np
import numpy.typing as npt
from defusedxml import DefusedXmlException

from ecg.errors import EcgFormatError, EcgRecordError
from ecg.record import (
    MEASUREMENT_KEYS,
    STANDARD_LEADS,
    EcgDevice,
    EcgFormat,
    EcgPatient,
    EcgRecord,
)

NAIVE_TIME_WARNING = "acquisition time carries no time zone; it is kept as the device's local time"
LOW_RATE_HZ = 500.0

FloatArray = npt.NDArray[np.float64]

_P = ParamSpec("_P")
_R = TypeVar("_R")

#: Largest signal a reader will allocate (leads × samples): ten hours of 12 leads at 1 kHz.
MAX_TOTAL_SAMPLES = 12 * 1000 * 3600 * 10


def reader_boundary(context: str) -> Callable[[Callable[_P, _R]], Callable[_P, _R]]:
    """Turn any unexpected decoding failure of a reader into :class:`EcgFormatError`.

    Readers check what they read and raise :class:`EcgFormatError` themselves; this is the
    net under them, so damaged input never escapes as ``IndexError``, ``struct.error``,
    ``KeyError`` or an out-of-memory from a corrupted length field.
    """

    def decorate(function: Callable[_P, _R]) -> Callable[_P, _R]:
        @functools.wraps(function)
        def guarded(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            try:
                return function(*args, **kwargs)
            except EcgFormatError:
                raise
            except (
                ArithmeticError,
                IndexError,
                KeyError,
                MemoryError,
                TypeError,
                ValueError,
                struct.error,
                UnicodeError,
            ) as exc:
                raise EcgFormatError(
                    f"{context}: damaged or unsupported data ({type(exc).__name__}: {exc})"
                ) from exc

        return guarded

    return decorate


class ByteReader:
    """Bounds-checked little/big-endian reads that fail with :class:`EcgFormatError`."""

    def __init__(self, data: bytes, context: str) -> None:
        self.data = data
        self.context = context

    def need(self, offset: int, size: int, what: str) -> None:
        if offset < 0 or size < 0 or offset + size > len(self.data):
            raise EcgFormatError(
                f"{self.context}: {what} needs {size} bytes at offset {offset}, "
                f"but the data has {len(self.data)} bytes (truncated file?)"
            )

    def take(self, offset: int, size: int, what: str) -> bytes:
        self.need(offset, size, what)
        return self.data[offset : offset + size]

    def unpack(self, fmt: str, offset: int, what: str) -> tuple[Any, ...]:
        size = struct.calcsize(fmt)
        return struct.unpack_from(fmt, self.take(offset, size, what))

    def u8(self, offset: int, what: str) -> int:
        return int(self.unpack("<B", offset, what)[0])

    def u16(self, offset: int, what: str) -> int:
        return int(self.unpack("<H", offset, what)[0])

    def i16(self, offset: int, what: str) -> int:
        return int(self.unpack("<h", offset, what)[0])

    def u32(self, offset: int, what: str) -> int:
        return int(self.unpack("<I", offset, what)[0])


_LEAD_ALIASES: dict[str, str] = {name.lower(): name for name in STANDARD_LEADS}
_LEAD_ALIASES.update(
    {
        "avr": "aVR",
        "avl": "aVL",
        "avf": "aVF",
        "-avr": "-aVR",
        "negavr": "-aVR",
    }
)
for _n in range(7, 10):
    _LEAD_ALIASES[f"v{_n}"] = f"V{_n}"
for _n in range(1, 10):
    _LEAD_ALIASES[f"v{_n}r"] = f"V{_n}R"


def normalize_lead_name(raw: str) -> str:
    """Map a lead label as a device writes it to the standard spelling when it is one.

    ``"MDC_ECG_LEAD_AVR"``, ``"Lead aVR"``, ``"ECG aVR"``, ``"avr"`` and ``"AVR"`` all become
    ``"aVR"``; labels that are not standard leads are kept as given (stripped of whitespace).
    """
    text = raw.strip()
    key = text
    key = re.sub(r"\(.*?\)", "", key).strip()
    lowered = key.lower()
    for prefix in ("mdc_ecg_lead_", "ecg_", "ecg-", "ecg ", "lead_", "lead-", "lead "):
        if lowered.startswith(prefix):  # "ECG Lead II": both in turn
            lowered = lowered[len(prefix) :].lstrip()
    lowered = lowered.strip().replace(" ", "")
    return _LEAD_ALIASES.get(lowered, text)


def order_leads(names: Iterable[str]) -> list[str]:
    """Standard leads first, in sheet order, then the others in their given order."""
    names = list(names)
    standard = [lead for lead in STANDARD_LEADS if lead in names]
    others = [lead for lead in names if lead not in STANDARD_LEADS]
    return standard + others


def derive_limb_leads(signals: dict[str, FloatArray]) -> list[str]:
    """Add III, aVR, aVL and aVF computed from I and II where they are missing.

    Returns the names of the leads that were derived (Einthoven's and Goldberger's
    equations: ``III = II − I``, ``aVR = −(I + II)/2``, ``aVL = I − II/2``,
    ``aVF = II − I/2``).
    """
    if "I" not in signals or "II" not in signals:
        return []
    lead_i, lead_ii = signals["I"], signals["II"]
    formulas = {
        "III": lambda: lead_ii - lead_i,
        "aVR": lambda: -(lead_i + lead_ii) / 2.0,
        "aVL": lambda: lead_i - lead_ii / 2.0,
        "aVF": lambda: lead_ii - lead_i / 2.0,
    }
    derived = []
    for name, formula in formulas.items():
        if name not in signals:
            signals[name] = formula()
            derived.append(name)
    return derived


def assemble_record(
    *,
    signals: Mapping[str, FloatArray],
    sampling_rate_hz: float,
    source_format: EcgFormat,
    context: str,
    acquired_at: datetime | None = None,
    patient: EcgPatient | None = None,
    device: EcgDevice | None = None,
    device_measurements: Mapping[str, float] | None = None,
    device_statements: Iterable[str] = (),
    warnings: Iterable[str] = (),
) -> EcgRecord:
    """Check the decoded signals and build the record, adding the common warnings."""
    if not signals:
        raise EcgFormatError(f"{context}: the file holds no ECG leads")
    if not math.isfinite(sampling_rate_hz) or sampling_rate_hz <= 0:
        raise EcgFormatError(
            f"{context}: sampling rate must be a positive number of Hz, got {sampling_rate_hz}"
        )
    names = order_leads(signals)
    lengths = {name: len(signals[name]) for name in names}
    if len(set(lengths.values())) != 1:
        raise EcgFormatError(
            f"{context}: leads have different lengths ({lengths}); expected equal sample counts"
        )
    n_samples = next(iter(lengths.values()))
    if n_samples == 0:
        raise EcgFormatError(f"{context}: the leads hold no samples")
    samples = np.vstack([np.asarray(signals[name], dtype=np.float64) for name in names])
    if not np.isfinite(samples).all():
        raise EcgFormatError(f"{context}: decoded samples are not finite")
    notes = list(warnings)
    if acquired_at is not None and acquired_at.tzinfo is None:
        notes.append(NAIVE_TIME_WARNING)
    if sampling_rate_hz < LOW_RATE_HZ:
        notes.append(
            f"low sampling rate {sampling_rate_hz:g} Hz: below the {LOW_RATE_HZ:g} Hz "
            "recommended for diagnostic 12-lead ECG, QRS detail and pacemaker spikes may be lost"
        )
    statements = tuple(dict.fromkeys(s.strip() for s in device_statements if s and s.strip()))
    measurements = {
        key: float(value)
        for key, value in (device_measurements or {}).items()
        if key in MEASUREMENT_KEYS and math.isfinite(value)
    }
    try:
        return EcgRecord(
            leads=tuple(names),
            samples_uv=samples,
            sampling_rate_hz=float(sampling_rate_hz),
            acquired_at=acquired_at,
            patient=patient or EcgPatient(),
            device=device or EcgDevice(),
            device_measurements=measurements,
            device_statements=statements,
            source_format=source_format,
            warnings=tuple(dict.fromkeys(notes)),
        )
    except EcgRecordError as exc:
        raise EcgFormatError(f"{context}: {exc}") from exc


# --- XML -------------------------------------------------------------------------------


def parse_xml(data: bytes, context: str) -> Element:
    """Parse untrusted XML with defusedxml: entity declarations and external references fail.

    Raises
    ------
    EcgFormatError
        The XML is malformed, or it declares entities or references external resources
        (billion laughs, XXE).
    """
    try:
        return SafeET.fromstring(
            _expat_readable(data), forbid_dtd=False, forbid_entities=True, forbid_external=True
        )
    except DefusedXmlException as exc:
        raise EcgFormatError(
            f"{context}: refused hostile XML ({type(exc).__name__}: entity declarations and "
            "external references are not allowed)"
        ) from exc
    except ParseError as exc:
        raise EcgFormatError(f"{context}: malformed XML: {exc}") from exc
    # LookupError: the XML declaration names an encoding Python does not know ("utf1").
    except (ValueError, UnicodeError, LookupError) as exc:
        raise EcgFormatError(f"{context}: unreadable XML: {exc}") from exc


#: Encodings expat decodes itself; any other the XML declaration names is decoded here.
_EXPAT_ENCODINGS = {"utf-8", "utf8", "utf-16", "utf16", "iso-8859-1", "latin-1", "us-ascii"}
_DECLARED_ENCODING = re.compile(
    rb"""^(\xef\xbb\xbf)?\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._\-]+)["']"""
)


def _expat_readable(data: bytes) -> bytes:
    """The document as expat can read it: a multi-byte encoding expat lacks (GB2312, GBK,
    GB18030, Big5, Shift_JIS, as Chinese carts declare) is decoded by Python's codec and
    handed over as UTF-8 with the declaration changed to match."""
    match = _DECLARED_ENCODING.match(data[:512])
    if match is None or match.group(2).decode("ascii").lower() in _EXPAT_ENCODINGS:
        return data
    encoding = match.group(2).decode("ascii")
    try:
        text = data.decode(encoding)
    except LookupError as exc:
        raise EcgFormatError(f"the XML declares encoding {encoding!r}, which is unknown") from exc
    except UnicodeDecodeError as exc:
        raise EcgFormatError(
            f"the XML declares encoding {encoding!r} but its bytes are not {encoding} ({exc.reason}"
            f" at byte {exc.start}): the file is damaged or was saved in another encoding"
        ) from exc
    head = text.lstrip("\ufeff")
    declared = head[: head.index("?>") + 2] if "?>" in head else ""
    fixed = re.sub(r"""encoding\s*=\s*["'][^"']*["']""", 'encoding="utf-8"', declared, count=1)
    return (fixed + head[len(declared) :]).encode("utf-8")


def local_name(tag: str) -> str:
    """Element tag without its ``{namespace}``."""
    return tag.rsplit("}", 1)[-1]


def namespace(tag: str) -> str:
    """The ``{namespace}`` of an element tag, ``""`` when it has none."""
    return tag[1:].split("}", 1)[0] if tag.startswith("{") else ""


def child(element: Element | None, name: str) -> Element | None:
    """First direct child with this local name."""
    if element is None:
        return None
    for item in element:
        if local_name(item.tag) == name:
            return item
    return None


def children(element: Element | None, name: str) -> list[Element]:
    """All direct children with this local name."""
    if element is None:
        return []
    return [item for item in element if local_name(item.tag) == name]


def descendant(element: Element | None, name: str) -> Element | None:
    """First descendant (depth first, document order) with this local name."""
    if element is None:
        return None
    for item in element.iter():
        if item is not element and local_name(item.tag) == name:
            return item
    return None


def descendants(element: Element | None, name: str) -> list[Element]:
    """All descendants with this local name, in document order."""
    if element is None:
        return []
    return [item for item in element.iter() if item is not element and local_name(item.tag) == name]


def path(element: Element | None, *names: str) -> Element | None:
    """Follow direct children by local name."""
    for name in names:
        element = child(element, name)
    return element


def text_of(element: Element | None) -> str | None:
    """Stripped text of an element, ``None`` when absent or empty."""
    if element is None or element.text is None:
        return None
    text = element.text.strip()
    return text or None


# --- values ----------------------------------------------------------------------------


def to_float(text: str | None) -> float | None:
    """A finite float from text, ``None`` for missing, blank or non-numeric values."""
    if text is None:
        return None
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def require_float(text: str | None, context: str, what: str) -> float:
    """A finite float from text, or :class:`EcgFormatError` naming the field."""
    value = to_float(text)
    if value is None:
        raise EcgFormatError(f"{context}: {what} must be a number, got {text!r}")
    return value


def require_int(text: str | None, context: str, what: str) -> int:
    """An integer from text, or :class:`EcgFormatError` naming the field."""
    value = require_float(text, context, what)
    if value != int(value):
        raise EcgFormatError(f"{context}: {what} must be an integer, got {text!r}")
    return int(value)


def safe_date(year: int, month: int, day: int) -> date | None:
    """A date, or ``None`` when the fields do not form one (0000-00-00 placeholders)."""
    try:
        return date(year, month, day)
    except ValueError:
        return None


def safe_datetime(
    year: int,
    month: int,
    day: int,
    hour: int = 0,
    minute: int = 0,
    second: int = 0,
    microsecond: int = 0,
) -> datetime | None:
    """A naive datetime, or ``None`` when the fields do not form one."""
    try:
        return datetime(year, month, day, hour, minute, second, microsecond)
    except ValueError:
        return None


VOLTAGE_UNITS_TO_UV: dict[str, float] = {
    "uv": 1.0,
    "µv": 1.0,
    "μv": 1.0,
    "microvolt": 1.0,
    "microvolts": 1.0,
    "mv": 1000.0,
    "millivolt": 1000.0,
    "millivolts": 1000.0,
    "v": 1e6,
    "volt": 1e6,
    "volts": 1e6,
    "nv": 1e-3,
    "nanovolt": 1e-3,
    "nanovolts": 1e-3,
}


def microvolts_per_unit(unit: str | None, context: str) -> float:
    """Factor from a voltage unit (``uV``, ``mV``, ``V``, ``nV``) to microvolts."""
    if unit is None:
        raise EcgFormatError(f"{context}: amplitude unit is missing")
    factor = VOLTAGE_UNITS_TO_UV.get(unit.strip().lower())
    if factor is None:
        raise EcgFormatError(
            f"{context}: amplitude unit {unit!r} is not a voltage (expected uV, mV, V or nV)"
        )
    return factor
