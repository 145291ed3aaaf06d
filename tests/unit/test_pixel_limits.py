"""Pixel bombs: small files declaring huge images are refused before a decoder allocates.

Sizes: each file below is a few kilobytes; what it declares decodes to 4 GiB (65535 × 65535
at 8 bits) or 8 TiB (65535 × 65535 × 1000 frames at 16 bits)."""

from __future__ import annotations

import io
import resource
import struct

import cv2
import numpy as np
import pytest
from pydicom import dcmread
from pydicom.encaps import encapsulate
from pydicom.uid import JPEG2000Lossless, JPEGBaseline8Bit, RLELossless

from teleradiology.core import rendering
from teleradiology.core.dicom import parse_part10
from teleradiology.core.errors import InvalidDicom
from teleradiology.core.pixel_limits import DecodeTooLarge, codestream_size
from tests.factory import make_study


def _image(size: int = 64) -> np.ndarray:
    return (np.arange(size * size, dtype=np.uint16).reshape(size, size) * 7 % 4096).astype(
        np.uint16
    )


def _jpeg_instance(rows: int = 64, columns: int = 64) -> bytes:
    """An 8-bit JPEG baseline instance whose SOF header declares ``rows`` × ``columns``."""
    ok, encoded = cv2.imencode(".jpg", (_image() % 256).astype(np.uint8))
    assert ok
    stream = bytearray(encoded.tobytes())
    sof = stream.find(b"\xff\xc0")
    stream[sof + 5 : sof + 9] = struct.pack(">HH", rows, columns)
    ds = dcmread(io.BytesIO(make_study(count=1, size=64)[0]))
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    ds.PixelData = encapsulate([bytes(stream)])
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    return _saved(ds)


def _j2k_instance(rows: int = 64, columns: int = 64) -> bytes:
    """A JPEG 2000 instance whose SIZ marker declares ``rows`` × ``columns``."""
    ds = dcmread(io.BytesIO(make_study(count=1, size=64)[0]))
    ds.compress(JPEG2000Lossless, _image(), encoding_plugin="pylibjpeg")
    frame = bytearray(next(iter(_frames(ds))))
    frame[8:16] = struct.pack(">II", columns, rows)
    ds.PixelData = encapsulate([bytes(frame)])
    return _saved(ds)


def _frames(ds: object) -> list[bytes]:
    from pydicom.encaps import generate_frames

    return list(generate_frames(ds.PixelData, number_of_frames=1))  # type: ignore[attr-defined]


def _rle_bomb(rows: int, columns: int, frames: int) -> bytes:
    """An RLE instance of one tiny frame whose image attributes declare a huge image."""
    ds = dcmread(io.BytesIO(make_study(count=1, size=64)[0]))
    ds.compress(RLELossless, _image())
    ds.Rows, ds.Columns = rows, columns
    if frames > 1:
        ds.NumberOfFrames = frames
    return _saved(ds)


def _saved(ds: object) -> bytes:
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)  # type: ignore[attr-defined]
    return out.getvalue()


def _grown_mib(before_kib: int) -> float:
    return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before_kib) / 1024


SPEC = rendering.RenderSpec(media_type="image/png")


def test_honest_compressed_images_decode_and_their_codestreams_are_read() -> None:
    jpeg, j2k = _jpeg_instance(), _j2k_instance()
    assert codestream_size(_frames(dcmread(io.BytesIO(jpeg)))[0]) == (64, 64, 1)
    assert codestream_size(_frames(dcmread(io.BytesIO(j2k)))[0]) == (64, 64, 1)
    for data in (jpeg, j2k):
        assert rendering.render(data, 1, SPEC)[:4] == b"\x89PNG"
        assert len(rendering.decoded_frames(data, [1])[0]) in (4096, 8192)


@pytest.mark.parametrize("make", [_jpeg_instance, _j2k_instance], ids=["jpeg", "jpeg2000"])
def test_a_codestream_declaring_65535_squared_pixels_is_not_decoded(make: object) -> None:
    bomb = make(65535, 65535)  # type: ignore[operator]
    assert len(bomb) < 8 * 1024
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for decode in (
        lambda: rendering.render(bomb, 1, SPEC),
        lambda: rendering.decoded_frames(bomb, [1]),
        lambda: rendering.transcode_to_explicit_le(bomb),
    ):
        with pytest.raises(DecodeTooLarge, match="65535 × 65535"):
            decode()
    assert _grown_mib(before) < 50


def test_image_attributes_declaring_terabytes_are_refused_at_ingest_and_at_decode() -> None:
    bomb = _rle_bomb(65535, 65535, 1000)
    assert len(bomb) < 8 * 1024
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(InvalidDicom, match="more than the 128 MiB"):
        parse_part10(bomb)
    with pytest.raises(DecodeTooLarge, match="more than the 128 MiB"):
        rendering.render(bomb, 1, SPEC)
    # Frames each within the frame limit, together past the whole-instance limit.
    many = _rle_bomb(4096, 4096, 200)
    parse_part10(many)  # stored: its frames decode one at a time
    with pytest.raises(DecodeTooLarge, match="200 frames"):
        rendering.transcode_to_explicit_le(many)
    assert _grown_mib(before) < 50
