"""Small, valid DICOM instances made for tests (real Part-10 files, written by pydicom)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

SOP_CLASSES = {
    "CT": CTImageStorage,
    "CR": "1.2.840.10008.5.1.4.1.1.1",
    "DX": "1.2.840.10008.5.1.4.1.1.1.1",
    "MR": "1.2.840.10008.5.1.4.1.1.4",
}


def make_study(
    *,
    modality: str = "CT",
    count: int = 3,
    patient_id: str = "P0001",
    patient_name: str = "王^小明",
    size: int = 64,
    study_uid: str | None = None,
) -> list[bytes]:
    """``count`` instances of one study and series, as Part-10 bytes (UTF-8 text)."""
    study_uid = study_uid or generate_uid()
    series_uid = generate_uid()
    rng = np.random.default_rng(len(patient_id) + count)
    out: list[bytes] = []
    for number in range(1, count + 1):
        ds = Dataset()
        ds.SpecificCharacterSet = "ISO_IR 192"
        ds.SOPClassUID = SOP_CLASSES[modality]
        ds.SOPInstanceUID = generate_uid()
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uid
        ds.FrameOfReferenceUID = study_uid + ".1" if len(study_uid) < 60 else generate_uid()
        ds.PatientID = patient_id
        ds.PatientName = patient_name
        ds.PatientBirthDate = "19580312"
        ds.PatientSex = "M"
        ds.StudyDate = "20261120"
        ds.StudyTime = "093000"
        ds.AccessionNumber = f"A{number:04d}"[:16]
        ds.StudyDescription = "胸部平扫"
        ds.Modality = modality
        ds.SeriesNumber = 1
        ds.InstanceNumber = number
        ds.ImagePositionPatient = [0.0, 0.0, float(number)]
        ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
        ds.PixelSpacing = [0.7, 0.7]
        ds.SliceThickness = 1.0
        ds.Rows = size
        ds.Columns = size
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated = 16
        ds.BitsStored = 12
        ds.HighBit = 11
        ds.PixelRepresentation = 0
        ds.PixelData = rng.integers(0, 4095, (size, size), dtype=np.uint16).tobytes()
        out.append(to_part10(ds))
    return out


def to_part10(ds: Dataset) -> bytes:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def write_files(folder: Path, instances: list[bytes]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, data in enumerate(instances):
        path = folder / f"IM{i:05d}.dcm"
        path.write_bytes(data)
        paths.append(path)
    return paths
