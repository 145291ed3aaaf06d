"""Pixels out of stored instances: frames, bulk data, transcoding, rendered images.

Pure functions of the stored bytes (no I/O, no event loop), so they run in the process pool
of wado.py. Decoding uses pydicom with the pylibjpeg plugins and pyjpegls (JPEG, JPEG-LS,
JPEG 2000, RLE); rendering and thumbnails use opencv. What an instance declares it decodes
to is checked against the limits of pixel_limits.py before any decoder runs.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import cv2
import numpy as np
import pydicom
import pydicom.config
from pydicom.dataset import Dataset
from pydicom.encaps import get_frame
from pydicom.filewriter import dcmwrite
from pydicom.pixels import apply_modality_lut, pixel_array
from pydicom.tag import Tag
from pydicom.uid import UID, ExplicitVRLittleEndian

from teleradiology.core.pixel_limits import check_decodable

# Tolerant reading: these are the files clinics sent, stored as received.
pydicom.config.settings.reading_validation_mode = pydicom.config.IGNORE
# Parallelism comes from the pool's processes; opencv's own threads would only contend.
cv2.setNumThreads(1)


class FrameOutOfRange(ValueError):
    """The frame number is past the end of the instance's frames."""

    def __init__(self, number: int, count: int) -> None:
        super().__init__(f"frame {number} does not exist: the instance has {count} frame(s)")
        self.number = number
        self.count = count


class NoPixels(ValueError):
    """The instance holds no pixel data (a report, a waveform, ...)."""


def warm() -> None:
    """Nothing: calling it starts a pool worker, which imports this module."""


def read(data: bytes) -> Dataset:
    return pydicom.dcmread(io.BytesIO(data), force=True)


def frame_count(ds: Dataset) -> int:
    try:
        return max(1, int(ds.get("NumberOfFrames") or 1))
    except (TypeError, ValueError):
        return 1


def _check(ds: Dataset, numbers: list[int]) -> int:
    if "PixelData" not in ds:
        raise NoPixels("the instance has no pixel data, so it has no frames")
    count = frame_count(ds)
    for number in numbers:
        if not 1 <= number <= count:
            raise FrameOutOfRange(number, count)
    return count


def stored_frames(data: bytes, numbers: list[int]) -> list[bytes]:
    """Frames (1-based) as stored: native pixel bytes, or each compressed frame's bitstream."""
    ds = read(data)
    count = _check(ds, numbers)
    tsyntax = UID(ds.file_meta.TransferSyntaxUID)
    pixels = ds.PixelData
    if tsyntax.is_encapsulated:
        return [get_frame(pixels, n - 1, number_of_frames=count) for n in numbers]
    bits_per_frame = int(ds.Rows) * int(ds.Columns) * int(ds.get("SamplesPerPixel", 1))
    bits_per_frame *= int(ds.BitsAllocated)
    if bits_per_frame % 8 == 0:
        size = bits_per_frame // 8
        return [bytes(pixels[(n - 1) * size : n * size]) for n in numbers]
    # 1-bit data packs frames without byte alignment: unpack, cut, pack again.
    bits = np.unpackbits(np.frombuffer(pixels, dtype=np.uint8), bitorder="little")
    return [
        np.packbits(bits[(n - 1) * size : n * size], bitorder="little").tobytes()
        for n in numbers
        for size in (bits_per_frame,)
    ]


def decoded_frames(data: bytes, numbers: list[int]) -> list[bytes]:
    """Frames decoded to native little-endian pixel bytes (Explicit VR Little Endian)."""
    ds = read(data)
    _check(ds, numbers)
    tsyntax = UID(ds.file_meta.TransferSyntaxUID)
    if not tsyntax.is_compressed and tsyntax.is_little_endian and int(ds.BitsAllocated) != 1:
        return stored_frames(data, numbers)
    check_decodable(ds, numbers)
    out = []
    for n in numbers:
        arr = pixel_array(ds, index=n - 1)
        out.append(arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes())
    return out


def transcode_to_explicit_le(data: bytes) -> bytes:
    """The instance as a Part-10 file in Explicit VR Little Endian (decompressed if needed)."""
    ds = read(data)
    tsyntax = UID(ds.file_meta.TransferSyntaxUID)
    if tsyntax == ExplicitVRLittleEndian:
        return data
    if tsyntax.is_compressed:
        check_decodable(ds, list(range(1, frame_count(ds) + 1)))
        ds.decompress()
    elif not tsyntax.is_little_endian and "PixelData" in ds:
        ds.PixelData = _swap_words(ds)
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.preamble = bytes(128)
    out = io.BytesIO()
    # force_encoding: re-encode a data set read as implicit VR or big endian.
    dcmwrite(out, ds, implicit_vr=False, little_endian=True, force_encoding=True)
    return out.getvalue()


def _swap_words(ds: Dataset) -> bytes:
    """Big-endian pixel data in little-endian byte order: words of BitsAllocated (OB as is)."""
    raw = bytes(ds.PixelData)
    bits = int(ds.BitsAllocated)
    if bits > 8:
        size = bits // 8
    elif ds["PixelData"].VR == "OW":
        size = 2  # 8-bit samples in 16-bit words
    else:
        return raw
    usable = len(raw) - len(raw) % size
    words = np.frombuffer(raw[:usable], dtype=f">u{size}").astype(f"<u{size}")
    return words.tobytes() + raw[usable:]


def bulk_value(data: bytes, tag: int) -> bytes:
    """The raw value of a bulk data element (top level first, then inside sequences).

    Raises KeyError when the instance has no such element.
    """
    ds = read(data)
    wanted = Tag(tag)
    if wanted in ds:
        return _raw(ds[wanted].value)
    for elem in ds.iterall():
        if elem.tag == wanted:
            return _raw(elem.value)
    raise KeyError(f"the instance has no element {tag:08X}")


def _raw(value: object) -> bytes:
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, list | tuple):
        return b"\\".join(_raw(v) for v in value)
    return str(value).encode()


# --- rendering -------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Window:
    center: float
    width: float
    function: str = "linear"

    def __post_init__(self) -> None:
        if self.width < 1 and self.function != "linear-exact":
            raise ValueError(f"window width must be at least 1, got {self.width}")
        if self.width <= 0:
            raise ValueError(f"window width must be positive, got {self.width}")
        if self.function not in ("linear", "linear-exact", "sigmoid"):
            raise ValueError(
                f"window function {self.function!r}: use linear, linear-exact or sigmoid"
            )


@dataclass(frozen=True, kw_only=True)
class Viewport:
    width: int
    height: int
    #: Source region (x, y, width, height); a negative width or height flips that axis.
    region: tuple[int, int, int, int] | None = None

    def __post_init__(self) -> None:
        if not (1 <= self.width <= 8192 and 1 <= self.height <= 8192):
            raise ValueError(f"viewport {self.width}x{self.height}: each side 1 to 8192 pixels")


@dataclass(frozen=True, kw_only=True)
class RenderSpec:
    media_type: str = "image/jpeg"
    window: Window | None = None
    viewport: Viewport | None = None
    quality: int = 90


def _voi(values: np.ndarray, window: Window) -> np.ndarray:
    c, w = window.center, window.width
    out: np.ndarray
    if window.function == "linear-exact":
        out = ((values - c) / w + 0.5) * 255.0
    elif window.function == "sigmoid":
        out = 255.0 / (1.0 + np.exp(-4.0 * (values - c) / w))
    else:  # PS3.3 C.11.2.1.2.1
        out = ((values - (c - 0.5)) / (w - 1) + 0.5) * 255.0 if w > 1 else (values >= c) * 255.0
    return np.clip(out, 0, 255).astype(np.uint8)


def _first(value: object) -> float | None:
    if value is None:
        return None
    if not isinstance(value, str | bytes) and hasattr(value, "__getitem__"):
        try:
            value = value[0]  # a multi-valued window: the first one
        except (IndexError, TypeError, KeyError):
            return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _to_8bit(ds: Dataset, arr: np.ndarray, window: Window | None) -> np.ndarray:
    samples = int(ds.get("SamplesPerPixel", 1))
    if samples > 1:
        if arr.dtype == np.uint8:
            return arr
        top = float(2 ** int(ds.get("BitsStored", 8)) - 1)
        return np.clip(arr.astype(np.float64) * (255.0 / top), 0, 255).astype(np.uint8)
    values = apply_modality_lut(arr, ds).astype(np.float64)
    if window is None:
        center, width = _first(ds.get("WindowCenter")), _first(ds.get("WindowWidth"))
        if center is not None and width is not None and width >= 1:
            window = Window(center=center, width=width)
        else:
            low, high = float(values.min()), float(values.max())
            window = Window(center=(low + high) / 2, width=max(high - low, 1.0) + 1)
    out = _voi(values, window)
    if str(ds.get("PhotometricInterpretation", "")).strip() == "MONOCHROME1":
        out = 255 - out
    return out


def _viewport(image: np.ndarray, viewport: Viewport | None, default: int | None) -> np.ndarray:
    if viewport is not None and viewport.region is not None:
        x, y, w, h = viewport.region
        if w < 0:
            image = image[:, ::-1]
            x, w = image.shape[1] - x, -w
        if h < 0:
            image = image[::-1]
            y, h = image.shape[0] - y, -h
        image = image[max(y, 0) : max(y, 0) + h, max(x, 0) : max(x, 0) + w]
        if image.size == 0:
            raise ValueError("the viewport's source region lies outside the image")
    if viewport is None and default is None:
        return image
    if viewport is not None:
        target_w, target_h = viewport.width, viewport.height
    else:
        target_w = target_h = default or 1
    scale = min(target_w / image.shape[1], target_h / image.shape[0])
    size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cv2.resize(np.ascontiguousarray(image), size, interpolation=interpolation)


def render(data: bytes, number: int, spec: RenderSpec, *, thumbnail: int | None = None) -> bytes:
    """One frame (1-based) as a JPEG or PNG, windowed and fitted to the viewport."""
    ds = read(data)
    _check(ds, [number])
    check_decodable(ds, [number])
    arr = pixel_array(ds, index=number - 1)
    image = _to_8bit(ds, arr, spec.window)
    image = _viewport(image, spec.viewport, thumbnail)
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    if spec.media_type == "image/png":
        ok, encoded = cv2.imencode(".png", image)
    else:
        ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, spec.quality])
    if not ok:
        raise ValueError("the image could not be encoded")
    return bytes(encoded.tobytes())
