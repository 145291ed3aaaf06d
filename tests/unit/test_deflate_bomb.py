"""A deflated data set that inflates a thousandfold is refused by its inflated size, holding
no more than a step of it in memory; a real deflated file still reads."""

from __future__ import annotations

import io
import tracemalloc
import zlib

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import DeflatedExplicitVRLittleEndian, generate_uid

from teleradiology.core.dicom import MAX_INFLATED_BYTES, parse_part10
from teleradiology.core.errors import InvalidDicom

MIB = 1024**2


def _deflated_from(data: bytes) -> int:
    """Where the deflated data set starts: after the file meta group."""
    start = data.index(b"DICM") + 4
    meta_length = int.from_bytes(data[start + 8 : start + 12], "little")
    return start + 12 + meta_length


def _bomb(inflated_mib: int) -> bytes:
    """A Part-10 file, deflated, whose data set holds ``inflated_mib`` MiB of zeros."""
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.1"
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientID = "BOMB-1"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    small = out.getvalue()
    # The file as written, inflated, then a private OB element of zeros, deflated again.
    body_at = _deflated_from(small)
    elements = zlib.decompress(small[body_at:], -zlib.MAX_WBITS)
    deflater = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    parts = [deflater.compress(elements)]
    length = inflated_mib * MIB
    parts.append(deflater.compress(b"\x09\x00\x10\x10OB\x00\x00" + length.to_bytes(4, "little")))
    zeros = bytes(MIB)
    parts.extend(deflater.compress(zeros) for _ in range(inflated_mib))
    parts.append(deflater.flush())
    return small[:body_at] + b"".join(parts)


def test_a_deflate_bomb_is_refused_by_its_inflated_size_in_bounded_memory() -> None:
    data = _bomb(MAX_INFLATED_BYTES // MIB + 64)
    assert len(data) < MAX_INFLATED_BYTES // 200  # a thousandfold, more or less
    tracemalloc.start()
    try:
        with pytest.raises(InvalidDicom, match="inflates past 128 MiB"):
            parse_part10(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * MIB, f"{peak / MIB:.0f} MiB held while refusing it"


def test_a_deflated_instance_under_the_limit_still_reads() -> None:
    data = _bomb(4)
    parsed = parse_part10(data)
    assert parsed.header.patient_id == "BOMB-1"
    path = get_testdata_file("image_dfl.dcm")
    assert path is not None
    with open(path, "rb") as f:
        real = f.read()
    header = parse_part10(real).header
    assert header.transfer_syntax_uid == DeflatedExplicitVRLittleEndian
    assert header.sop_instance_uid == str(pydicom.dcmread(path).SOPInstanceUID)


def test_a_damaged_deflate_stream_is_a_clear_refusal() -> None:
    data = bytearray(_bomb(1))
    # The first block header says block type 3, which deflate reserves: never a valid stream
    # (bytes overwritten at random sometimes still inflate to something).
    data[_deflated_from(bytes(data))] |= 0b110
    with pytest.raises(InvalidDicom, match="damaged"):
        parse_part10(bytes(data))
