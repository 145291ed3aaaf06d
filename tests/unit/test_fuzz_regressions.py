"""Inputs the fuzzer found that escaped as other exceptions, each now a clear refusal."""

from __future__ import annotations

import io
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid

from ecg import EcgFormatError, read_ecg
from ecg.formats import read_ge_muse, read_hl7_aecg, read_philips_xml
from teleradiology.core.dicom import instance_identity, parse_part10, parse_part10_file
from teleradiology.core.errors import InvalidDicom
from tests.ecg_file import FORMATS
from tests.factory import make_study


def _without_pixels() -> bytes:
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def test_an_undefined_length_element_cut_at_the_end_is_not_an_instance() -> None:
    # A private UN element of undefined length (read as a sequence) and nothing after it:
    # pydicom raises OSError ("No tag to read"), which is about the bytes, not the disk.
    data = _without_pixels() + b"\x09\x00\x10\x10UN\x00\x00\xff\xff\xff\xff"
    assert instance_identity(data) is None
    with pytest.raises(InvalidDicom):
        parse_part10(data)


def test_an_unreadable_file_on_disk_still_raises_os_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        instance_identity(tmp_path / "absent.dcm")


def test_a_transfer_syntax_uid_that_is_no_transfer_syntax_is_refused_by_name() -> None:
    path = get_testdata_file("CT_small.dcm")
    assert path is not None
    with open(path, "rb") as fp:
        data = fp.read()
    # A UID under the DICOM root pydicom does not know as a transfer syntax, same length.
    unknown = data.replace(b"1.2.840.10008.1.2.1\x00", b"1.2.840.10008.1.2.9\x00", 1)
    assert unknown != data
    with pytest.raises(InvalidDicom, match=r"1\.2\.840\.10008\.1\.2\.9 is not a transfer syntax"):
        parse_part10(unknown)
    assert pydicom.dcmread(io.BytesIO(data)).SOPInstanceUID  # the original still reads


@pytest.mark.parametrize(
    ("relative", "reader"),
    [
        ("hl7_aecg/Example_aECG.xml", read_hl7_aecg),
        ("philips_xml/129DYPRG_v1.03.XML", read_philips_xml),
        ("ge_muse_xml/braveheart_example1.xml", read_ge_muse),
    ],
)
def test_an_xml_declaration_naming_an_unknown_encoding_is_refused(
    relative: str, reader: Callable[[bytes], object]
) -> None:
    data = (FORMATS / relative).read_bytes()
    head = data[:200]
    assert b"encoding=" in head.lower()
    start = head.lower().index(b"encoding=") + len(b"encoding=") + 1
    quote = head[start - 1 : start]
    end = head.index(quote, start)
    crafted = data[:start] + b"utf1" + data[end:]
    with pytest.raises(EcgFormatError, match="encoding 'utf1', which is unknown"):
        reader(crafted)
    with pytest.raises(EcgFormatError, match="encoding 'utf1', which is unknown"):
        read_ecg(crafted)


def test_a_length_field_of_gigabytes_costs_no_memory_when_parsed_from_disk(tmp_path: Path) -> None:
    # A private OB element whose length says 3.75 GiB, in a file of a few hundred bytes: a
    # file's read(n) reserves n bytes, so pydicom's read(length) must not reach the file.
    data = _without_pixels() + b"\x09\x00\x10\x10OB\x00\x00" + (0xF0000000).to_bytes(4, "little")
    path = tmp_path / "length-bomb.dcm"
    path.write_bytes(data + bytes(64))
    tracemalloc.start()
    try:
        with pytest.raises(InvalidDicom, match="truncated"):
            parse_part10_file(path)
        assert instance_identity(path) is not None  # its UIDs come before the damage
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * 1024**2, f"parsing allocated {peak / 1024**2:.0f} MiB"


def test_an_unknown_value_representation_of_a_uid_is_not_an_instance() -> None:
    data = _without_pixels()
    at = data.index(b"\x08\x00\x18\x00UI")  # SOP Instance UID, explicit VR
    damaged = data[: at + 4] + b"QI" + data[at + 6 :]
    assert instance_identity(damaged) is None  # pydicom raises NotImplementedError on reading


def test_nul_bytes_inside_a_text_value_are_left_out_of_the_index() -> None:
    (data,) = make_study(count=1, patient_name="ABC^DEF")
    damaged = data.replace(b"ABC^DEF", b"AB\x00^DEF", 1)
    assert damaged != data
    header = parse_part10(damaged).header
    assert header.patient_name == "AB^DEF"  # PostgreSQL text cannot hold NUL


def test_an_unknown_value_representation_in_the_data_set_is_refused_as_damaged(
    tmp_path: Path,
) -> None:
    (data,) = make_study(count=1, patient_id="WD-77")
    at = data.index(b"\x10\x00\x20\x00LO")  # Patient ID, explicit VR
    damaged = data[: at + 4] + b"L\x00" + data[at + 6 :]
    with pytest.raises(InvalidDicom, match="Unknown Value Representation"):
        parse_part10(damaged)
    path = tmp_path / "bad-vr.dcm"
    path.write_bytes(damaged)
    with pytest.raises(InvalidDicom, match="Unknown Value Representation"):
        parse_part10_file(path)  # the C-STORE path: once answered "out of resources"


@pytest.mark.parametrize(
    "tail",
    [
        b"\xfe\xff\x00\xe0\x04\x00\x00\x00abcd",  # an item, then no sequence delimiter
        b"\xfe\xff\x00\xe0\x04\x00",  # an item header cut short
    ],
)
def test_a_sequence_after_the_pixels_cut_short_is_refused_as_truncated(
    tail: bytes, tmp_path: Path
) -> None:
    (data,) = make_study(count=1)
    damaged = data + b"\x09\x00\x10\x10UN\x00\x00\xff\xff\xff\xff" + tail
    with pytest.raises(InvalidDicom, match="truncated"):
        parse_part10(damaged)
    path = tmp_path / "cut-sequence.dcm"
    path.write_bytes(damaged)
    with pytest.raises(InvalidDicom, match="truncated"):
        parse_part10_file(path)


def test_pixel_data_of_a_private_syntax_without_bits_allocated_is_refused() -> None:
    # A private transfer syntax is read whole; implicit VR pixel data is "OB or OW" until
    # Bits Allocated says which, and without it pydicom raises AttributeError.
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.PixelData = bytes(16)
    ds["PixelData"].VR = "OW"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    private = out.getvalue().replace(b"1.2.840.10008.1.2\x00", b"1.2.3.4.5.6.7.8.9\x00", 1)
    with pytest.raises(InvalidDicom, match="pixel data element cannot be read"):
        parse_part10(private)
