"""The standard 12-lead ECG sheet, drawn as a cardiograph prints it.

A4 landscape, 25 mm/s and 10 mm/mV on millimetre paper: a 3 × 4 grid of 2.5-s lead
segments (I, II, III | aVR, aVL, aVF | V1–V3 | V4–V6; each column taken from the next 2.5 s
of the recording, as carts do) above a full-width 10-s rhythm strip of lead II, a 1 mV ×
200 ms calibration pulse at the start of each row, and a header with the patient, the
acquisition and the measurements and statements the caller passes in.

The grid and traces are drawn with opencv, the text with Pillow from the font bytes the
caller hands over (opencv cannot draw CJK). Nothing here reads files: font in, pixels out.
"""

from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, tzinfo
from enum import Enum
from types import MappingProxyType
from typing import BinaryIO, Literal, cast

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFont

from ecg.analysis import beyond_tolerance
from ecg.errors import EcgError
from ecg.filters import MainsFrequency, clean_ecg
from ecg.record import MEASUREMENT_KEYS, STANDARD_LEADS, EcgRecord, Sex

__all__ = [
    "A4_LANDSCAPE_MM",
    "GAIN_MM_PER_MV",
    "GRID_BOLD_BGR",
    "GRID_FINE_BGR",
    "PACER_MARK_BGR",
    "PAPER_BGR",
    "PAPER_SPEED_MM_PER_S",
    "SHEET_LAYOUT",
    "TRACE_BGR",
    "EcgRenderError",
    "SheetFilter",
    "SheetHeader",
    "SheetLayout",
    "filter_for_sheet",
    "render_pdf",
    "render_png",
    "render_sheet",
]

#: Paper speed of the sheet.
PAPER_SPEED_MM_PER_S = 25.0
#: Amplitude scale of the sheet (1 mV is 10 mm tall).
GAIN_MM_PER_MV = 10.0
#: Page size, width × height in millimetres.
A4_LANDSCAPE_MM = (297.0, 210.0)
_MM_PER_INCH = 25.4
MIN_DPI, MAX_DPI = 72, 600

#: Colours (BGR): white paper, pink 1 mm lines, red 5 mm lines, black ink.
PAPER_BGR = (255, 255, 255)
GRID_FINE_BGR = (210, 200, 255)
GRID_BOLD_BGR = (120, 110, 235)
TRACE_BGR = (0, 0, 0)
#: Pacemaker stimulus marks (blue), above each trace where a stimulus was found.
PACER_MARK_BGR = (200, 90, 0)
_TEXT_RGB = (0, 0, 0)
_NOTE_RGB = (90, 90, 90)

Language = Literal["zh", "en"]

#: Lead columns of the 3 × 4 layout, left to right, each top to bottom.
_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("I", "II", "III"),
    ("aVR", "aVL", "aVF"),
    ("V1", "V2", "V3"),
    ("V4", "V5", "V6"),
)
_RHYTHM_PREFERENCE = ("II", "I", "V1", "V2", "V5", "III", "aVF")


class EcgRenderError(EcgError, ValueError):
    """The sheet cannot be drawn: bad font bytes, resolution or header values."""


@dataclass(frozen=True)
class SheetLayout:
    """Where things sit on the page, in millimetres from the top-left corner.

    Every sheet is drawn with :data:`SHEET_LAYOUT`; the class is public so that callers
    (tests, an on-screen overlay, a caliper tool) can find leads and times on the image:
    multiply millimetres by ``dpi / 25.4`` for pixels.

    Attributes
    ----------
    grid_left_mm, grid_top_mm
        Top-left corner of the millimetre grid.
    grid_width_mm
        Width of the grid (a whole number of 5-mm boxes).
    row_height_mm, n_rows
        Height of each row and their number: three lead rows, then the rhythm strip.
    lead_in_mm
        Room at the start of each row for the calibration pulse; time zero is after it.
    baseline_offset_mm
        Distance from a row's top to its 0 mV baseline.
    column_duration_s, n_columns
        Seconds per lead column and the number of columns.
    """

    grid_left_mm: float = 15.0
    grid_top_mm: float = 38.0
    grid_width_mm: float = 265.0
    row_height_mm: float = 40.0
    n_rows: int = 4
    lead_in_mm: float = 10.0
    baseline_offset_mm: float = 22.0
    column_duration_s: float = 2.5
    n_columns: int = 4

    @property
    def grid_height_mm(self) -> float:
        """Height of the millimetre grid."""
        return self.row_height_mm * self.n_rows

    @property
    def trace_left_mm(self) -> float:
        """Horizontal position of time zero (after the calibration pulse)."""
        return self.grid_left_mm + self.lead_in_mm

    @property
    def strip_duration_s(self) -> float:
        """Seconds shown across the page (four 2.5-s columns, or the rhythm strip)."""
        return self.column_duration_s * self.n_columns

    def row_top_mm(self, row: int) -> float:
        """Top edge of a row (0–2: lead rows, 3: rhythm strip)."""
        return self.grid_top_mm + row * self.row_height_mm

    def baseline_mm(self, row: int) -> float:
        """Vertical position of 0 mV in a row."""
        return self.row_top_mm(row) + self.baseline_offset_mm

    def x_mm(self, time_s: float) -> float:
        """Horizontal position of a time (seconds from the start of the displayed window)."""
        return self.trace_left_mm + PAPER_SPEED_MM_PER_S * time_s


#: The layout every sheet uses.
SHEET_LAYOUT = SheetLayout()

_HEADER_TOP_MM = 6.0
# Three text sizes (em height in mm): each size is a FreeType face holding its own copy of
# the font (about 20 MB for Noto Sans CJK), so the sheet keeps to three.
_LARGE_MM, _TEXT_MM, _SMALL_MM = 4.6, 3.3, 2.8
#: Where a pacemaker mark runs, from a row's top (mm): under the lead's label.
_PACER_MARK_MM = (6.0, 9.0)
_FOOTER_TOP_MM = SHEET_LAYOUT.grid_top_mm + SHEET_LAYOUT.grid_height_mm + 1.5

_LABELS: dict[str, dict[str, str]] = {
    "zh": {
        "id": "ID",
        "sex": "性别",
        "age": "年龄",
        "facility": "机构",
        "acquired": "采集时间",
        "device": "设备",
        "hr": "心率",
        "bpm": "次/分",
        "axes": "P/QRS/T 电轴",
        "rr_p": "RR / P 时限",
        "cart": "机器",
        "cart_statements": "机器诊断",
        "interpretation": "自动分析（未经医师确认）",
        "no_statements": "无",
        "not_recorded": "未记录",
        "rate": "采样率",
        "missing": "未记录导联",
        "not_shown": "未显示导联",
        "short": "记录仅",
        "seconds": "秒",
        "no_name": "（未提供姓名）",
        "filtered": "滤波",
        "notch": "陷波",
        "unfiltered": "未滤波",
    },
    "en": {
        "id": "ID",
        "sex": "Sex",
        "age": "Age",
        "facility": "Facility",
        "acquired": "Acquired",
        "device": "Device",
        "hr": "HR",
        "bpm": "bpm",
        "axes": "P/QRS/T axes",
        "rr_p": "RR / P dur.",
        "cart": "cart",
        "cart_statements": "cart",
        "interpretation": "Automated analysis (not confirmed by a physician)",
        "no_statements": "none",
        "not_recorded": "not recorded",
        "rate": "sampling",
        "missing": "leads not recorded",
        "not_shown": "leads not shown",
        "short": "record is only",
        "seconds": "s",
        "no_name": "(no name given)",
        "filtered": "filter",
        "notch": "notch",
        "unfiltered": "unfiltered",
    },
}
_SEX_TEXT: dict[str, dict[Sex, str]] = {
    "zh": {Sex.MALE: "男", Sex.FEMALE: "女", Sex.OTHER: "其他"},
    "en": {Sex.MALE: "male", Sex.FEMALE: "female", Sex.OTHER: "other"},
}


def _check_text(name: str, value: object) -> None:
    if not isinstance(value, str):
        raise EcgRenderError(f"SheetHeader.{name} must be a str, got {value!r}")


class SheetFilter(Enum):
    """How the sheet's traces are filtered, as a cart offers it (the analysis filters apart)."""

    #: Baseline wander and mains removed, diagnostic bandwidth kept (pacemaker stimuli show).
    DIAGNOSTIC = "diagnostic"
    #: ... and muscle noise: the 40 Hz low-pass the analysis measures on.
    MUSCLE = "muscle"
    #: The signal as the cart sent it.
    NONE = "none"


#: High-pass and low-pass corners of each filtered choice, Hz; both also notch the mains.
_SHEET_BANDS = {SheetFilter.DIAGNOSTIC: (0.67, 100.0), SheetFilter.MUSCLE: (0.67, 40.0)}


def filter_for_sheet(
    record: EcgRecord,
    choice: SheetFilter = SheetFilter.DIAGNOSTIC,
    *,
    mains: MainsFrequency = MainsFrequency.HZ_50,
    language: Language = "zh",
) -> tuple[EcgRecord, str]:
    """The record with its traces filtered for the sheet, and the filter as printed on it.

    Zero-phase filters (the ST segment keeps its level): baseline wander above 0.67 Hz, the
    mains notch, and a low-pass that is left out when the sampling rate cannot carry it.

    Parameters
    ----------
    record
        The ECG as received.
    choice
        :class:`SheetFilter`.
    mains
        Mains frequency to notch (50 Hz in China).
    language
        Of the printed label.

    Returns
    -------
    record : EcgRecord
        A copy with filtered samples (the same record for :attr:`SheetFilter.NONE`).
    label : str
        E.g. ``"滤波 0.67–100 Hz · 50 Hz 陷波"``.
    """
    labels = _LABELS[language]
    if choice is SheetFilter.NONE:
        return record, labels["unfiltered"]
    high, low = _SHEET_BANDS[choice]
    fs = record.sampling_rate_hz
    samples = clean_ecg(record.samples_uv, fs, mains=mains, highpass_hz=high, lowpass_hz=low)
    band = f"{high:g}–{low:g} Hz" if low < 0.45 * fs else f"≥ {high:g} Hz"
    notch = f" · {mains.value:g} Hz {labels['notch']}" if mains.value < 0.475 * fs else ""
    filtered = replace(record, samples_uv=samples)
    return filtered, f"{labels['filtered']} {band}{notch}"


@dataclass(frozen=True, kw_only=True)
class SheetHeader:
    """What the sheet prints above the grid; display strings, formatted by the caller.

    Parameters
    ----------
    patient_name, patient_id, sex, age, facility, acquired_at, device
        Display text (``""`` when unknown), e.g. ``sex="男"``, ``age="54岁"``,
        ``acquired_at="2020-11-15 12:59:50"``.
    measurements
        Global measurements by the keys of :data:`ecg.record.MEASUREMENT_KEYS`
        (``heart_rate_bpm``, ``pr_ms``, ``qrs_ms``, ``qt_ms``, ``qtc_ms``, ``p_axis_deg``,
        ``qrs_axis_deg``, ``t_axis_deg``, ``rr_ms``, ``p_ms``); a missing key or ``None``
        prints as ``—``. Values in the units of that table.
    device_measurements
        The cart's own measurements (same keys), printed beside `measurements` when those
        are ours; a pair further apart than :data:`ecg.analysis.DEVICE_TOLERANCE` is marked
        ``!`` for the reader.
    statements
        Interpretation statements, printed in order under a heading that says they are an
        unconfirmed automated analysis.
    device_statements
        The cart's own statements, printed under `statements` on one line marked as the
        cart's (``机器诊断:`` / ``cart:``), cut with an ellipsis where it runs out.
    notes
        Extra lines for the footer (e.g. ``"leads III, aVR, aVL, aVF derived from I and II"``).
    filters
        The traces' filter, printed beside the scale (e.g. from :func:`filter_for_sheet`).
    language
        Language of the printed labels: ``"zh"`` (default) or ``"en"``.

    Raises
    ------
    EcgRenderError
        A field has the wrong type, a measurement key is unknown or a value is not finite.
    """

    patient_name: str = ""
    patient_id: str = ""
    sex: str = ""
    age: str = ""
    facility: str = ""
    acquired_at: str = ""
    device: str = ""
    measurements: Mapping[str, float | None] = field(default_factory=dict)
    device_measurements: Mapping[str, float | None] = field(default_factory=dict)
    statements: tuple[str, ...] = ()
    device_statements: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    filters: str = ""
    language: Language = "zh"

    def __post_init__(self) -> None:
        for name in (
            "patient_name",
            "patient_id",
            "sex",
            "age",
            "facility",
            "acquired_at",
            "device",
        ):
            _check_text(name, getattr(self, name))
        if self.language not in _LABELS:
            raise EcgRenderError(
                f"SheetHeader.language must be one of {sorted(_LABELS)}, got {self.language!r}"
            )
        for name in ("measurements", "device_measurements"):
            object.__setattr__(self, name, _checked_measurements(name, getattr(self, name)))
        for name in ("statements", "device_statements", "notes"):
            value = getattr(self, name)
            if isinstance(value, str) or not isinstance(value, Sequence):
                raise EcgRenderError(f"SheetHeader.{name} must be a sequence of str, got {value!r}")
            items = tuple(value)
            for item in items:
                _check_text(name, item)
            object.__setattr__(self, name, items)

    @classmethod
    def from_record(
        cls,
        record: EcgRecord,
        *,
        facility: str = "",
        language: Language = "zh",
        patient_name: str | None = None,
        patient_id: str | None = None,
        measurements: Mapping[str, float | None] | None = None,
        statements: Sequence[str] | None = None,
        timezone: tzinfo | None = None,
    ) -> SheetHeader:
        """Build a header from what the ECG file itself states.

        Parameters
        ----------
        record
            The ECG; its demographics, device, acquisition time, device measurements and
            statements fill the header, its warnings become footer notes.
        facility
            The sending facility's display name.
        language
            Label language, ``"zh"`` or ``"en"``.
        patient_name, patient_id, measurements, statements
            Override the values from the file (e.g. the index's patient, or the
            measurements of our own analysis) when given. With `measurements` given, the
            file's own measurements are printed beside them; with `statements` given, the
            file's own statements are printed after them, on the cart's line.
        timezone
            Print the acquisition time in this zone (the network's, e.g. Asia/Shanghai)
            when the record's time is timezone-aware; as stated in the file otherwise.

        Returns
        -------
        SheetHeader
            The header, every field formatted for display.
        """
        patient = record.patient
        sex = _SEX_TEXT[language].get(patient.sex, "") if patient.sex else ""
        device = " ".join(
            part
            for part in (record.device.manufacturer, record.device.model)
            if part and part.strip()
        )
        if record.device.serial_number:
            device += f" SN {record.device.serial_number}"
        return cls(
            patient_name=(patient.name or "") if patient_name is None else patient_name,
            patient_id=(patient.id or "") if patient_id is None else patient_id,
            sex=sex,
            age=_format_age(patient.age_years, language),
            facility=facility,
            acquired_at=_format_time(_in_zone(record.acquired_at, timezone)),
            device=device.strip(),
            measurements=dict(record.device_measurements if measurements is None else measurements),
            # the cart's own beside ours; not twice when the cart's are all there is
            device_measurements={} if measurements is None else dict(record.device_measurements),
            statements=tuple(record.device_statements if statements is None else statements),
            device_statements=() if statements is None else record.device_statements,
            notes=record.warnings,
            language=language,
        )


def _checked_measurements(name: str, values: object) -> Mapping[str, float | None]:
    if not isinstance(values, Mapping):
        raise EcgRenderError(f"SheetHeader.{name} must be a mapping, got {values!r}")
    checked: dict[str, float | None] = {}
    for key, value in values.items():
        if key not in MEASUREMENT_KEYS:
            raise EcgRenderError(
                f"SheetHeader.{name} has unknown key {key!r}; "
                f"allowed: {', '.join(MEASUREMENT_KEYS)}"
            )
        if value is not None and (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise EcgRenderError(
                f"SheetHeader.{name}[{key!r}] must be a finite number or None, got {value!r}"
            )
        checked[key] = None if value is None else float(value)
    return MappingProxyType(checked)


def _format_age(age_years: float | None, language: Language) -> str:
    if age_years is None:
        return ""
    zh = language == "zh"
    if age_years >= 2:
        years = int(age_years)
        return f"{years}岁" if zh else f"{years} y"
    months = int(age_years * 12)
    if months >= 1:
        return f"{months}个月" if zh else f"{months} mo"
    days = round(age_years * 365.25)
    return f"{days}天" if zh else f"{days} d"


def _in_zone(moment: datetime | None, zone: tzinfo | None) -> datetime | None:
    if moment is None or zone is None or moment.utcoffset() is None:
        return moment
    return moment.astimezone(zone)


def _format_time(moment: datetime | None) -> str:
    if moment is None:
        return ""
    text = moment.strftime("%Y-%m-%d %H:%M:%S")
    offset = moment.utcoffset()
    if offset is not None:
        minutes = int(offset.total_seconds() // 60)
        sign = "+" if minutes >= 0 else "-"
        text += f" UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    return text


# ---------------------------------------------------------------------------------------
# fonts and text


class _SharedBytes:
    """A read-only file-like object handing Pillow the same bytes object on every read.

    Pillow keeps what ``read()`` returns alive for FreeType; sharing one object instead of
    a fresh copy per face and size saves ~20 MB (the Noto CJK collection) per font size.
    """

    def __init__(self, data: bytes) -> None:
        self._data = data

    def read(self, size: int = -1) -> bytes:
        return self._data


_FACE_INDEX: dict[tuple[int, int, int], int] = {}


class _Fonts:
    """Faces of the caller's font at the sizes the sheet uses (sizes in mm)."""

    def __init__(self, font_bytes: bytes, px_per_mm: float) -> None:
        if not isinstance(font_bytes, bytes | bytearray | memoryview) or not font_bytes:
            raise EcgRenderError("font_bytes must be the non-empty bytes of a TrueType font")
        self._data = bytes(font_bytes)
        self._px_per_mm = px_per_mm
        self._index = self._simplified_chinese_index()
        self._cache: dict[float, ImageFont.FreeTypeFont] = {}

    def _open(self, size_px: int, index: int) -> ImageFont.FreeTypeFont:
        source = cast("BinaryIO", _SharedBytes(self._data))
        return ImageFont.truetype(source, size=size_px, index=index)

    def _simplified_chinese_index(self) -> int:
        # A .ttc collection (Noto Sans CJK) holds JP, KR, SC, TC, ... faces; the SC face
        # draws simplified Chinese with the mainland glyph shapes. Remember the answer per
        # font, since each probe copies the whole font.
        key = (len(self._data), zlib.crc32(self._data[:65536]), zlib.crc32(self._data[-65536:]))
        if key in _FACE_INDEX:
            return _FACE_INDEX[key]
        chosen = 0
        for index in range(16):
            try:
                family = self._open(12, index).getname()[0] or ""
            except OSError as exc:
                if index == 0:
                    raise EcgRenderError(
                        f"font_bytes is not a TrueType/OpenType font ({exc})"
                    ) from exc
                break
            if "SC" in family.split():
                chosen = index
                break
        _FACE_INDEX[key] = chosen
        return chosen

    def get(self, size_mm: float) -> ImageFont.FreeTypeFont:
        if size_mm not in self._cache:
            size_px = max(6, round(size_mm * self._px_per_mm))
            self._cache[size_mm] = self._open(size_px, self._index)
        return self._cache[size_mm]


@dataclass(frozen=True)
class _Text:
    x_mm: float
    y_mm: float  # top of the text line
    text: str
    size_mm: float
    bold: bool = False
    rgb: tuple[int, int, int] = _TEXT_RGB


def _fit(text: str, font: ImageFont.FreeTypeFont, width_px: float) -> str:
    """The text, cut with an ellipsis so it fits the width."""
    if font.getlength(text) <= width_px:
        return text
    while text and font.getlength(text + "…") > width_px:
        text = text[:-1]
    return text + "…"


def _wrap(text: str, font: ImageFont.FreeTypeFont, width_px: float) -> list[str]:
    """Greedy line breaking: at spaces for Latin text, anywhere between CJK characters."""
    lines: list[str] = []
    current = ""
    for char in text:
        candidate = current + char
        if font.getlength(candidate) <= width_px or not current:
            current = candidate
            continue
        cut = current.rfind(" ")
        if cut > 0 and char != " " and all(ord(c) < 0x2E80 for c in current[cut:]):
            lines.append(current[:cut])
            current = current[cut + 1 :] + char
        else:
            lines.append(current.rstrip())
            current = char.lstrip()
    if current.strip():
        lines.append(current.rstrip())
    return lines


# ---------------------------------------------------------------------------------------
# drawing


def _check_dpi(dpi: object) -> int:
    if isinstance(dpi, bool) or not isinstance(dpi, int) or not MIN_DPI <= dpi <= MAX_DPI:
        raise EcgRenderError(f"dpi must be an integer from {MIN_DPI} to {MAX_DPI}, got {dpi!r}")
    return dpi


def _page_px(dpi: int) -> tuple[int, int]:
    width_mm, height_mm = A4_LANDSCAPE_MM
    return round(width_mm / _MM_PER_INCH * dpi), round(height_mm / _MM_PER_INCH * dpi)


def _draw_grid(canvas: npt.NDArray[np.uint8], px_per_mm: float) -> None:
    layout = SHEET_LAYOUT
    left, top = layout.grid_left_mm, layout.grid_top_mm
    n_x, n_y = round(layout.grid_width_mm), round(layout.grid_height_mm)
    x0, x1 = round(left * px_per_mm), round((left + n_x) * px_per_mm)
    y0, y1 = round(top * px_per_mm), round((top + n_y) * px_per_mm)
    bold = 2 * max(1, round(0.1 * px_per_mm)) + 1  # odd: centred on the millimetre
    fine = max(1, round(0.08 * px_per_mm))
    for pass_bold in (False, True):
        colour = GRID_BOLD_BGR if pass_bold else GRID_FINE_BGR
        width = bold if pass_bold else fine
        for i in range(n_x + 1):
            if (i % 5 == 0) != pass_bold:
                continue
            x = round((left + i) * px_per_mm) - width // 2
            canvas[y0 : y1 + 1, max(x, 0) : x + width] = colour
        for j in range(n_y + 1):
            if (j % 5 == 0) != pass_bold:
                continue
            y = round((top + j) * px_per_mm) - width // 2
            canvas[max(y, 0) : y + width, x0 : x1 + 1] = colour


_SHIFT = 4  # cv2 fixed-point bits: draw at 1/16 px
_ONE = 1 << _SHIFT


def _polyline(
    canvas: npt.NDArray[np.uint8],
    x_px: npt.NDArray[np.float64],
    y_px: npt.NDArray[np.float64],
    thickness: int,
    color: tuple[int, int, int] = TRACE_BGR,
) -> None:
    points = np.stack([x_px, y_px], axis=1) * _ONE
    cv2.polylines(
        canvas,
        [np.round(points).astype(np.int32).reshape(-1, 1, 2)],
        isClosed=False,
        color=color,
        thickness=thickness,
        lineType=cv2.LINE_AA,
        shift=_SHIFT,
    )


@dataclass(frozen=True)
class _Cell:
    row: int
    column: int  # -1: the full-width rhythm strip
    lead: str
    present: bool


def _cells(record: EcgRecord) -> tuple[list[_Cell], list[str]]:
    """The 12 lead cells and the rhythm strip, and the record's leads left off the sheet."""
    leads = set(record.leads)
    if leads & set(STANDARD_LEADS):
        names = [lead for column in _COLUMNS for lead in column]
    else:  # no standard lead at all: show the record's own leads in the 12 slots
        names = list(record.leads[:12]) + [""] * max(0, 12 - len(record.leads))
    cells = [
        _Cell(row=index % 3, column=index // 3, lead=name, present=name in leads)
        for index, name in enumerate(names)
    ]
    rhythm = next((lead for lead in _RHYTHM_PREFERENCE if lead in leads), record.leads[0])
    cells.append(_Cell(row=3, column=-1, lead=rhythm, present=True))
    shown = {cell.lead for cell in cells}
    return cells, [lead for lead in record.leads if lead not in shown]


def _draw_traces(
    canvas: npt.NDArray[np.uint8],
    record: EcgRecord,
    cells: list[_Cell],
    px_per_mm: float,
    labels: dict[str, str],
    pacer_spikes: npt.NDArray[np.int64],
) -> list[_Text]:
    layout = SHEET_LAYOUT
    rate = record.sampling_rate_hz
    thickness = max(1, round(0.17 * px_per_mm))
    thin = max(1, round(0.1 * px_per_mm))
    texts: list[_Text] = []
    for row in range(layout.n_rows):
        base = layout.baseline_mm(row)
        left = layout.grid_left_mm
        pulse_x = np.array([left + 1, left + 2.5, left + 2.5, left + 7.5, left + 7.5, left + 10])
        pulse_y = np.array([base, base, base - GAIN_MM_PER_MV, base - GAIN_MM_PER_MV, base, base])
        _polyline(canvas, pulse_x * px_per_mm, pulse_y * px_per_mm, thickness)
    for cell in cells:
        if cell.column < 0:
            t0, t1 = 0.0, layout.strip_duration_s
        else:
            t0 = cell.column * layout.column_duration_s
            t1 = t0 + layout.column_duration_s
        top = layout.row_top_mm(cell.row)
        base = layout.baseline_mm(cell.row)
        label_x = layout.x_mm(t0) + 1.0
        if cell.column > 0:  # lead change mark, as carts print it
            x = layout.x_mm(t0) * px_per_mm
            _polyline(
                canvas,
                np.array([x, x]),
                np.array([base - 2.5, base + 2.5]) * px_per_mm,
                thin,
            )
        if not cell.lead:
            continue
        if not cell.present:
            # a flat dashed line where the lead would be, and a note
            for start in np.arange(layout.x_mm(t0) + 2.0, layout.x_mm(t1) - 2.0, 4.0):
                _polyline(
                    canvas,
                    np.array([start, min(start + 2.0, layout.x_mm(t1) - 2.0)]) * px_per_mm,
                    np.array([base, base]) * px_per_mm,
                    thin,
                )
            texts.append(_Text(label_x, top + 1.5, cell.lead, _TEXT_MM, bold=True))
            note = f"— {labels['not_recorded']}"
            texts.append(_Text(label_x, base + 1.5, note, _SMALL_MM, rgb=_NOTE_RGB))
            continue
        signal = record.lead(cell.lead)
        first = max(0, math.ceil(t0 * rate - 1e-9))
        last = min(record.n_samples, math.floor(t1 * rate + 1e-9) + 1)
        texts.append(_Text(label_x, top + 1.5, cell.lead, _TEXT_MM, bold=True))
        if last - first < 2:
            continue
        segment = signal[first:last]
        # remove the DC offset so the trace sits on its baseline; no filtering here
        millivolts = (segment - np.median(segment)) / 1000.0
        x_mm = layout.trace_left_mm + PAPER_SPEED_MM_PER_S * (np.arange(first, last) / rate)
        y_mm = base - millivolts * GAIN_MM_PER_MV
        # keep huge deflections inside the row, clear of the neighbours' ink
        margin_mm = (thickness + 2) / px_per_mm
        y_mm = np.clip(y_mm, top + margin_mm, top + layout.row_height_mm - margin_mm)
        _polyline(canvas, x_mm * px_per_mm, y_mm * px_per_mm, thickness)
        # pacemaker stimuli, marked as carts mark them: a filter may have taken the spike off
        for spike in pacer_spikes[(pacer_spikes >= first) & (pacer_spikes < last)]:
            x = (layout.trace_left_mm + PAPER_SPEED_MM_PER_S * spike / rate) * px_per_mm
            mark = np.array([top + _PACER_MARK_MM[0], top + _PACER_MARK_MM[1]]) * px_per_mm
            _polyline(canvas, np.array([x, x]), mark, thickness, PACER_MARK_BGR)
    return texts


def _header_texts(
    record: EcgRecord,
    header: SheetHeader,
    fonts: _Fonts,
    px_per_mm: float,
    missing: list[str],
    not_shown: list[str],
) -> list[_Text]:
    labels = _LABELS[header.language]
    layout = SHEET_LAYOUT
    texts: list[_Text] = []
    line = 4.4
    top = _HEADER_TOP_MM
    left = layout.grid_left_mm
    dash = "—"

    # left block: patient and acquisition
    name = header.patient_name or labels["no_name"]
    name_font = fonts.get(_LARGE_MM)
    name = _fit(name, name_font, 62 * px_per_mm)
    texts.append(_Text(left, top - 0.6, name, _LARGE_MM, bold=True))
    id_x = left + name_font.getlength(name) / px_per_mm + 4.0
    texts.append(_Text(id_x, top + 0.4, f"{labels['id']}: {header.patient_id or dash}", _TEXT_MM))
    rows = [
        f"{labels['sex']}: {header.sex or dash}    {labels['age']}: {header.age or dash}",
        f"{labels['facility']}: {header.facility or dash}",
        f"{labels['acquired']}: {header.acquired_at or dash}",
        f"{labels['device']}: {header.device or dash}",
    ]
    for index, text in enumerate(rows):
        texts.append(_Text(left, top + 6.0 + index * line, text, _TEXT_MM))

    # middle block: measurements
    m = header.measurements

    def value(key: str) -> str:
        number = m.get(key)
        return dash if number is None else f"{number:.0f}"

    mid = 112.0
    measurements = [
        (f"{labels['hr']}", f"{value('heart_rate_bpm')} {labels['bpm']}"),
        ("PR", f"{value('pr_ms')} ms"),
        ("QRS", f"{value('qrs_ms')} ms"),
        ("QT/QTc", f"{value('qt_ms')}/{value('qtc_ms')} ms"),
        (labels["axes"], f"{value('p_axis_deg')}/{value('qrs_axis_deg')}/{value('t_axis_deg')}°"),
    ]
    if m.get("rr_ms") is not None or m.get("p_ms") is not None:
        measurements.append((labels["rr_p"], f"{value('rr_ms')}/{value('p_ms')} ms"))
    for index, (label, text) in enumerate(measurements):
        y = top + index * line
        texts.append(_Text(mid, y, label, _TEXT_MM))
        texts.append(_Text(mid + 27.0, y, text, _TEXT_MM, bold=True))
    # up to the statements' column
    texts.extend(
        _device_texts(header, mid + 46.0, top, line, fit=(fonts.get(_SMALL_MM), 19.0 * px_per_mm))
    )

    texts.extend(_statement_texts(header, fonts, px_per_mm))

    # footer: scale, sampling rate, notes
    footer = [
        f"{PAPER_SPEED_MM_PER_S:g} mm/s   {GAIN_MM_PER_MV:g} mm/mV",
        f"{labels['rate']} {record.sampling_rate_hz:g} Hz   {header.filters}".rstrip(),
    ]
    if record.duration_s < layout.strip_duration_s - 1e-6:
        footer.append(f"{labels['short']} {record.duration_s:.1f} {labels['seconds']}")
    if missing:
        footer.append(f"{labels['missing']}: {', '.join(missing)}")
    if not_shown:
        footer.append(f"{labels['not_shown']}: {', '.join(not_shown)}")
    footer.extend(header.notes)
    footer_font = fonts.get(_SMALL_MM)
    footer_width = layout.grid_width_mm * px_per_mm
    first_line = _fit("    ".join(footer[:2]), footer_font, footer_width)
    texts.append(_Text(left, _FOOTER_TOP_MM, first_line, _SMALL_MM, bold=True))
    if len(footer) > 2:
        # the notes follow the scale line (its bold strokes a little wider than measured)
        after_mm = max(60.0, footer_font.getlength(first_line) / px_per_mm + 5.0)
        rest_width = footer_width - after_mm * px_per_mm
        rest = _fit(" · ".join(footer[2:]), footer_font, rest_width)
        texts.append(_Text(left + after_mm, _FOOTER_TOP_MM, rest, _SMALL_MM, rgb=_NOTE_RGB))
    return texts


#: Where the statements' column starts (mm from the page's left) and how many lines it holds.
_STATEMENTS_LEFT_MM = 178.0
_STATEMENT_LINES = 6


def _statement_texts(header: SheetHeader, fonts: _Fonts, px_per_mm: float) -> list[_Text]:
    """The statements' column: the heading, ours wrapped, and the cart's on its own last
    line, marked as the cart's and cut short (ours keep the lines above it)."""
    labels = _LABELS[header.language]
    right, top = _STATEMENTS_LEFT_MM, _HEADER_TOP_MM
    width_px = (SHEET_LAYOUT.grid_left_mm + SHEET_LAYOUT.grid_width_mm - right) * px_per_mm
    texts = [_Text(right, top, labels["interpretation"], _SMALL_MM, rgb=_NOTE_RGB)]
    font = fonts.get(_TEXT_MM)
    lines: list[str] = []
    for statement in header.statements or (labels["no_statements"],):
        lines.extend(_wrap(statement, font, width_px))
    max_lines = _STATEMENT_LINES - (1 if header.device_statements else 0)
    if len(lines) > max_lines:
        lines = [*lines[: max_lines - 1], _fit(lines[max_lines - 1] + " …", font, width_px)]
    for index, text in enumerate(lines):
        texts.append(_Text(right, top + 5.0 + index * 4.6, text, _TEXT_MM, bold=True))
    if header.device_statements:
        cart = f"{labels['cart_statements']}: {'; '.join(header.device_statements)}"
        cart = _fit(cart, fonts.get(_SMALL_MM), width_px)
        y = top + 5.0 + len(lines) * 4.6 + 0.4
        texts.append(_Text(right, y, cart, _SMALL_MM, rgb=_NOTE_RGB))
    return texts


#: The header rows, by the measurement keys each prints (as in `_header_texts`).
_ROW_KEYS: tuple[tuple[str, ...], ...] = (
    ("heart_rate_bpm",),
    ("pr_ms",),
    ("qrs_ms",),
    ("qt_ms", "qtc_ms"),
    ("p_axis_deg", "qrs_axis_deg", "t_axis_deg"),
    ("rr_ms", "p_ms"),
)


def _device_texts(
    header: SheetHeader,
    x_mm: float,
    top: float,
    line: float,
    *,
    fit: tuple[ImageFont.FreeTypeFont, float] | None = None,
) -> list[_Text]:
    """The cart's own measurements beside ours, row by row; ``!`` where they differ by more
    than the tolerance (first, so that a line cut to ``fit`` (font, width) keeps it)."""
    device, ours = header.device_measurements, header.measurements
    texts: list[_Text] = []
    if not any(v is not None for v in device.values()):
        return texts
    label = _LABELS[header.language]["cart"]
    for index, keys in enumerate(_ROW_KEYS):
        if all(device.get(k) is None for k in keys):
            continue
        if index == 5 and ours.get("rr_ms") is None and ours.get("p_ms") is None:
            continue  # the RR / P row is printed only with our values
        shown = "/".join("—" if device.get(k) is None else f"{device[k]:.0f}" for k in keys)
        flagged = any(beyond_tolerance(k, ours.get(k), device.get(k)) for k in keys)
        text = ("! " if flagged else "") + f"{label} {shown}"
        if fit is not None:
            text = _fit(text, *fit)
        rgb = _TEXT_RGB if flagged else _NOTE_RGB
        texts.append(_Text(x_mm, top + index * line + 0.4, text, _SMALL_MM, bold=flagged, rgb=rgb))
    return texts


def _draw_texts(
    canvas: npt.NDArray[np.uint8], texts: list[_Text], fonts: _Fonts, px_per_mm: float
) -> None:
    """Print the texts onto the canvas in place.

    Pillow draws the glyphs into a one-byte coverage mask (anti-aliased; 255 is full black
    ink), which darkens the canvas like ink on paper, so no RGB copy of the page is made.
    """
    height, width = canvas.shape[:2]
    mask = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(mask)
    for item in texts:
        darkness = 255 - round(sum(item.rgb) / 3)
        draw.text(
            (item.x_mm * px_per_mm, item.y_mm * px_per_mm),
            item.text,
            font=fonts.get(item.size_mm),
            fill=darkness,
            stroke_width=max(1, round(0.04 * px_per_mm)) if item.bold else 0,
            stroke_fill=darkness,
        )
    coverage = np.asarray(mask, dtype=np.uint8)
    rows, columns = np.nonzero(coverage)
    alpha = coverage[rows, columns].astype(np.uint16)[:, None]
    paper = canvas[rows, columns].astype(np.uint16)
    canvas[rows, columns] = ((paper * (255 - alpha) + 127) // 255).astype(np.uint8)


def render_sheet(
    record: EcgRecord,
    *,
    header: SheetHeader,
    font_bytes: bytes,
    dpi: int = 300,
    pacer_spikes: Sequence[int] = (),
) -> npt.NDArray[np.uint8]:
    """Draw the standard 12-lead sheet of a record.

    Parameters
    ----------
    record
        The ECG. The first 10 s are shown; each 2.5-s column of the 3 × 4 grid takes the next
        2.5 s of the recording, the rhythm strip (lead II, else the first of I, V1, V2, V5,
        III, aVF present) runs the whole 10 s. Standard leads the record lacks are drawn flat
        and labelled as not recorded; leads other than the twelve are listed in the footer.
        Each drawn segment is shifted by its median so a DC offset does not push it off its
        row; no filtering is applied (pass a filtered record for a cleaned sheet).
        Deflections beyond the row are clipped at its edge.
    header
        Patient, acquisition, measurements and statements to print.
    font_bytes
        A TrueType/OpenType font or collection with CJK glyphs (Noto Sans CJK ``.ttc``; its
        simplified-Chinese face is chosen).
    dpi
        Resolution, 72–600. At 300 dpi 1 mm is 11.811 px: 1 s of trace spans 295.3 px and
        1 mV 118.1 px.
    pacer_spikes
        Sample indices of pacemaker stimuli (the analysis finds them): each is marked above
        the traces it falls in, so the stimulus shows whatever filter drew the trace.

    Returns
    -------
    numpy.ndarray
        BGR ``uint8`` image, shape ``(round(210 mm × dpi / 25.4), round(297 mm × dpi / 25.4),
        3)``: ``(2480, 3508, 3)`` at 300 dpi.

    Raises
    ------
    EcgRenderError
        `dpi` is out of range, `font_bytes` is not a font, or `header` is not a
        :class:`SheetHeader`.
    """
    dpi = _check_dpi(dpi)
    if not isinstance(header, SheetHeader):
        raise EcgRenderError(f"header must be a SheetHeader, got {type(header).__name__}")
    if not isinstance(record, EcgRecord):
        raise EcgRenderError(f"record must be an EcgRecord, got {type(record).__name__}")
    px_per_mm = dpi / _MM_PER_INCH
    fonts = _Fonts(font_bytes, px_per_mm)
    width, height = _page_px(dpi)
    canvas = np.empty((height, width, 3), dtype=np.uint8)
    canvas[...] = np.array(PAPER_BGR, dtype=np.uint8)
    _draw_grid(canvas, px_per_mm)
    cells, not_shown = _cells(record)
    missing = [cell.lead for cell in cells if cell.lead and not cell.present]
    spikes = np.asarray(pacer_spikes, dtype=np.int64).reshape(-1)
    texts = _draw_traces(canvas, record, cells, px_per_mm, _LABELS[header.language], spikes)
    texts += _header_texts(record, header, fonts, px_per_mm, missing, not_shown)
    _draw_texts(canvas, texts, fonts, px_per_mm)
    return canvas


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return (
        struct.pack(">I", len(payload))
        + kind
        + payload
        + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)
    )


def _encode_png(image: npt.NDArray[np.uint8], dpi: int) -> bytes:
    ok, encoded = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 3])
    if not ok:  # pragma: no cover - opencv fails only on impossible shapes
        raise EcgRenderError("PNG encoding failed")
    data = encoded.tobytes()
    # a pHYs chunk right after IHDR, so viewers and printers know the true scale
    pixels_per_metre = round(dpi / 0.0254)
    phys = _png_chunk(b"pHYs", struct.pack(">IIB", pixels_per_metre, pixels_per_metre, 1))
    ihdr_end = 8 + 4 + 4 + 13 + 4
    return data[:ihdr_end] + phys + data[ihdr_end:]


def render_png(
    record: EcgRecord,
    *,
    header: SheetHeader,
    font_bytes: bytes,
    dpi: int = 300,
    pacer_spikes: Sequence[int] = (),
) -> bytes:
    """Draw the sheet (see :func:`render_sheet`) and encode it as PNG.

    Parameters
    ----------
    record, header, font_bytes, dpi, pacer_spikes
        As for :func:`render_sheet`.

    Returns
    -------
    bytes
        A PNG (8-bit RGB) whose ``pHYs`` chunk states the resolution, so it prints at true
        scale.

    Raises
    ------
    EcgRenderError
        As for :func:`render_sheet`.
    """
    image = render_sheet(
        record, header=header, font_bytes=font_bytes, dpi=dpi, pacer_spikes=pacer_spikes
    )
    return _encode_png(image, dpi)


def render_pdf(
    record: EcgRecord,
    *,
    header: SheetHeader,
    font_bytes: bytes,
    dpi: int = 300,
    created_at: datetime | None = None,
    pacer_spikes: Sequence[int] = (),
) -> bytes:
    """Draw the sheet (see :func:`render_sheet`) as a one-page A4 landscape PDF.

    The raster is embedded losslessly at full resolution and placed over the whole page
    (297 × 210 mm), so the printout keeps 25 mm/s and 10 mm/mV when printed at 100 %
    ("actual size", not "fit to page").

    Parameters
    ----------
    record, header, font_bytes, dpi, pacer_spikes
        As for :func:`render_sheet`.
    created_at
        The document's creation date. When ``None`` the Unix epoch is written (as
        reproducible builds do), so the bytes depend only on the inputs and the same sheet
        is stored once in a content-addressed store.

    Returns
    -------
    bytes
        The PDF document (MediaBox 841.89 × 595.28 pt).

    Raises
    ------
    EcgRenderError
        As for :func:`render_sheet`.
    """
    from fpdf import FPDF  # imported here: fpdf2 is only needed for PDF output

    image = render_sheet(
        record, header=header, font_bytes=font_bytes, dpi=dpi, pacer_spikes=pacer_spikes
    )
    width_mm, height_mm = A4_LANDSCAPE_MM
    pdf = FPDF(orientation="L", unit="mm", format="A4")
    pdf.set_margins(0, 0, 0)
    pdf.set_auto_page_break(False)
    pdf.set_creator("telemed ecg.render")
    pdf.set_title("12-lead ECG")
    pdf.set_creation_date(created_at or datetime(1970, 1, 1, tzinfo=UTC))
    pdf.add_page()
    rgb = Image.fromarray(np.ascontiguousarray(image[:, :, ::-1]), mode="RGB")
    pdf.image(rgb, x=0, y=0, w=width_mm, h=height_mm)
    return bytes(pdf.output())
