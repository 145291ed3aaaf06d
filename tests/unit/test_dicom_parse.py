from __future__ import annotations

import io
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file

from teleradiology.core.dicom import dataset_digest, parse_part10
from teleradiology.core.errors import InvalidDicom
from tests.factory import make_study, to_part10


def _testdata(name: str) -> bytes:
    path = get_testdata_file(name)
    assert path is not None
    return Path(str(path)).read_bytes()


def test_the_header_values_are_taken_and_the_preamble_zeroed() -> None:
    (data,) = make_study(count=1, patient_name="王^小明", patient_id="WD-1")
    data = b"MZ" + data[2:]  # an executable header hidden in the preamble
    parsed = parse_part10(data)
    assert parsed.data[:128] == bytes(128)
    assert parsed.data[128:] == data[128:]
    header = parsed.header
    assert header.patient_name == "王^小明"
    assert header.patient_id == "WD-1"
    assert header.modality == "CT"
    assert header.instance_number == 1
    assert header.transfer_syntax_uid == "1.2.840.10008.1.2.1"


def test_the_content_digest_ignores_the_file_meta_header() -> None:
    (data,) = make_study(count=1)
    ds = pydicom.dcmread(io.BytesIO(data))
    ds.file_meta.ImplementationVersionName = "OTHER_SCU_1"
    other = io.BytesIO()
    ds.save_as(other, enforce_file_format=True)
    assert other.getvalue() != data
    assert dataset_digest(other.getvalue()) == dataset_digest(data)
    ds.PatientName = "李^四"
    assert dataset_digest(to_part10(ds)) != dataset_digest(data)


@pytest.mark.parametrize(
    "name", ["CT_small.dcm", "MR_small_RLE.dcm", "JPEG2000.dcm", "waveform_ecg.dcm", "rtplan.dcm"]
)
def test_real_files_of_many_kinds_are_accepted(name: str) -> None:
    parsed = parse_part10(_testdata(name))
    assert parsed.header.sop_instance_uid


def test_a_truncated_file_is_refused() -> None:
    with pytest.raises(InvalidDicom, match="truncated"):
        parse_part10(_testdata("MR_truncated.dcm"))


@pytest.mark.parametrize("cut", [140, 400, 1000])
def test_a_file_cut_short_anywhere_is_refused(cut: int) -> None:
    (data,) = make_study(count=1)
    with pytest.raises(InvalidDicom):
        parse_part10(data[:cut])


def test_non_dicom_bytes_are_refused_with_a_reason() -> None:
    with pytest.raises(InvalidDicom, match="DICM"):
        parse_part10(b"%PDF-1.7\n" + bytes(300))


def test_an_instance_without_its_uids_is_refused_naming_them() -> None:
    (data,) = make_study(count=1)
    ds = pydicom.dcmread(io.BytesIO(data))
    del ds.StudyInstanceUID
    with pytest.raises(InvalidDicom, match="StudyInstanceUID"):
        parse_part10(to_part10(ds))


def test_metadata_is_dicom_json_without_bulk_data() -> None:
    import json
    import zlib

    (data,) = make_study(count=1, size=64)
    parsed = parse_part10(data)
    assert parsed.header.metadata_zlib is not None
    metadata = json.loads(zlib.decompress(parsed.header.metadata_zlib))
    assert metadata["00100010"] == {"vr": "PN", "Value": [{"Alphabetic": "王^小明"}]}
    assert metadata["7FE00010"] == {"vr": "OW", "BulkDataURI": "bulk:7FE00010"}
    assert metadata["00280010"]["Value"] == [64]


def test_a_file_with_a_zeroed_preamble_is_kept_without_a_copy() -> None:
    (data,) = make_study(count=1)
    assert data[:128] == bytes(128)
    assert parse_part10(data).data is data
