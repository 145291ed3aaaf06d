"""How large decoded pixels may be, checked before a decoder allocates them.

A compressed frame of a few hundred bytes can declare 65535 × 65535 pixels, in its image
attributes (Rows, Columns, Samples per Pixel, Bits Allocated, Number of Frames) or in its own
codestream header (a JPEG SOF segment, a JPEG 2000 SIZ marker), and the decoders (pylibjpeg,
openjpeg, pyjpegls, RLE) allocate what is declared before they find the data missing. So the
size an instance decodes to is worked out from what it declares, and refused past the limits
here, before any decoder runs; a codestream declaring more than the image attributes is
refused too (the attributes are what the limits were checked against).
"""

from __future__ import annotations

import math
import struct

from pydicom.dataset import Dataset
from pydicom.encaps import generate_frames
from pydicom.uid import UID

from storage.records import Language
from teleradiology.core.language import N_, Phrase

#: The most one decoded frame may take: 8192 × 8192 at 16 bits (a mammogram), or a
#: 6000 × 7000 colour photograph.
MAX_DECODED_FRAME_BYTES = 128 * 1024**2
#: The most a whole instance may decode to (a multi-frame instance transcoded at once).
MAX_DECODED_BYTES = 1024**3

_SOF = frozenset(
    {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF, 0xF7}
)
_JP2_SIGNATURE = b"\x00\x00\x00\x0cjP  "


class DecodeTooLarge(ValueError):
    """The instance declares more decoded pixels than this server decodes; its message
    (``phrase``) said in its reader's language, ``str()`` in English."""

    def __init__(self, text: str, /, **values: object) -> None:
        self.phrase = Phrase(text, values)
        super().__init__(self.phrase.say(Language.EN))

    def __reduce__(self) -> tuple[object, ...]:
        # across the render pool's processes: the phrase, not its English
        return (_decode_too_large, (self.phrase.text, dict(self.phrase.values)))


def _decode_too_large(text: str, values: dict[str, object]) -> DecodeTooLarge:
    return DecodeTooLarge(text, **values)


def declared_frame_bytes(ds: Dataset) -> int | None:
    """The bytes one frame decodes to, from the image attributes; None when they are absent
    or unreadable."""
    try:
        rows, columns = int(ds.Rows), int(ds.Columns)
        samples = int(ds.get("SamplesPerPixel", 1) or 1)
        bits = int(ds.BitsAllocated)
    except (AttributeError, KeyError, TypeError, ValueError):
        return None
    return rows * columns * samples * math.ceil(max(bits, 1) / 8)


def declared_frames(ds: Dataset) -> int:
    try:
        return max(1, int(ds.get("NumberOfFrames") or 1))
    except (TypeError, ValueError):
        return 1


def check_declared_size(ds: Dataset, *, frames: int = 1) -> None:
    """Refuse an image whose frame, or ``frames`` of whose frames, decode past the limits."""
    frame_bytes = declared_frame_bytes(ds)
    if frame_bytes is None:
        return
    if frame_bytes > MAX_DECODED_FRAME_BYTES:
        raise DecodeTooLarge(
            N_("一帧标明 %(size)s 像素（解码后 %(mib)s MiB），超过本服务器可解码的 %(most)s MiB"),
            size=f"{ds.Rows} × {ds.Columns}",
            mib=frame_bytes // 1024**2,
            most=MAX_DECODED_FRAME_BYTES // 1024**2,
        )
    if frame_bytes * frames > MAX_DECODED_BYTES:
        raise DecodeTooLarge(
            N_("%(frames)s 帧、每帧 %(mib)s MiB，解码后超过本服务器一次可解码的 %(most)s MiB"),
            frames=frames,
            mib=frame_bytes // 1024**2,
            most=MAX_DECODED_BYTES // 1024**2,
        )


def check_decodable(ds: Dataset, numbers: list[int]) -> None:
    """Before decoding frames ``numbers`` (1-based) of ``ds``: their decoded size within the
    limits, and each compressed frame's codestream no larger than the image attributes."""
    check_declared_size(ds, frames=len(numbers))
    tsyntax = UID(ds.file_meta.get("TransferSyntaxUID", ""))
    if not tsyntax.is_encapsulated or "PixelData" not in ds:
        return
    wanted = set(numbers)
    count = declared_frames(ds)
    for index, frame in enumerate(generate_frames(ds.PixelData, number_of_frames=count)):
        if index + 1 in wanted:
            _check_codestream(ds, frame)
        if index + 1 >= max(wanted):
            return


def _check_codestream(ds: Dataset, frame: bytes) -> None:
    found = codestream_size(frame)
    if found is None:
        return
    rows, columns, samples = found
    declared = (int(ds.Rows), int(ds.Columns), int(ds.get("SamplesPerPixel", 1) or 1))
    if rows > declared[0] or columns > declared[1] or samples > max(declared[2], 4):
        raise DecodeTooLarge(
            N_("压缩帧标明 %(size)s 像素、%(samples)s 个分量，大于图像的 %(image)s：不予解码"),
            size=f"{rows} × {columns}",
            samples=samples,
            image=f"{declared[0]} × {declared[1]}",
        )


def codestream_size(frame: bytes) -> tuple[int, int, int] | None:
    """(rows, columns, components) a JPEG, JPEG-LS or JPEG 2000 codestream declares; None
    for other data (RLE: its size is the image attributes') or an unreadable header."""
    try:
        if frame[:2] == b"\xff\xd8":
            return _jpeg_size(frame)
        if frame.startswith(_JP2_SIGNATURE):
            start = frame.find(b"jp2c")
            return _j2k_size(frame[start + 4 :]) if start >= 0 else None
        if frame[:2] == b"\xff\x4f":
            return _j2k_size(frame)
    except (IndexError, struct.error):
        return None
    return None


def _jpeg_size(frame: bytes) -> tuple[int, int, int] | None:
    offset = 2
    while offset + 4 <= len(frame):
        if frame[offset] != 0xFF:
            return None
        marker = frame[offset + 1]
        if marker == 0xFF:  # fill byte
            offset += 1
            continue
        (length,) = struct.unpack(">H", frame[offset + 2 : offset + 4])
        if marker in _SOF:
            rows, columns = struct.unpack(">HH", frame[offset + 5 : offset + 9])
            return rows, columns, frame[offset + 9]
        if marker == 0xDA:  # start of scan before any frame header
            return None
        offset += 2 + length
    return None


def _j2k_size(codestream: bytes) -> tuple[int, int, int] | None:
    # SOC, then SIZ (15444-1 A.5.1): Lsiz, Rsiz, Xsiz, Ysiz, XOsiz, YOsiz, ..., Csiz.
    if codestream[:4] != b"\xff\x4f\xff\x51":
        return None
    xsiz, ysiz, xosiz, yosiz = struct.unpack(">IIII", codestream[8:24])
    (csiz,) = struct.unpack(">H", codestream[40:42])
    return max(0, ysiz - yosiz), max(0, xsiz - xosiz), csiz
