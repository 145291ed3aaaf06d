"""Real ECG files for the tests: the root of the ECG data the repository carries, and a real
12-lead DICOM ECG waveform (pydicom's test file) as a new instance of a patient."""

from __future__ import annotations

from pathlib import Path

from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

from tests.factory import to_part10

#: The real ECG files every test reads (development records only; see its README.md and
#: SHA256SUMS). The one definition of where test ECG data lives.
ECG_DATA = Path(__file__).resolve().parent / "data" / "ecg"
#: The 12-lead files in the interchange formats carts export.
FORMATS = ECG_DATA / "formats"
#: The 50 labelled 12-lead development ECGs (PhysioNet/CinC Challenge 2021, CC BY 4.0; see
#: its README.md): WFDB headers and MATLAB v4 signal files, labels.csv, the original headers.
ECG12_DEV = ECG_DATA.parent / "ecg12-dev"


def make_ecg(*, patient_id: str, patient_name: str, study_uid: str | None = None) -> bytes:
    path = get_testdata_file("waveform_ecg.dcm")
    assert path is not None
    ds = dcmread(path)
    ds.StudyInstanceUID = study_uid or generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.SOPInstanceUID = generate_uid()
    ds.PatientID = patient_id
    ds.PatientName = patient_name
    ds.SpecificCharacterSet = "ISO_IR 192"
    return to_part10(ds)
