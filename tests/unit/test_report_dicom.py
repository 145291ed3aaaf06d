"""The report's DICOM copies: the Basic Text SR's content tree, title, evidence and names,
checked by dcmtk's dciodvfy."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zlib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydicom import dcmread

from storage.records import (
    CaseId,
    Conclusion,
    FacilityId,
    Report,
    ReportDocument,
    ReportId,
    ReportStatus,
    UserId,
)
from teleradiology.core.report_sr import basic_text_sr, encapsulated_pdf

DCIODVFY = Path(sys.executable).with_name("dciodvfy")
CT = "1.2.840.10008.5.1.4.1.1.2"


def _document(
    *, specialty: str = "radiology", discrepancy: str | None = None, study_id: str | None = None
) -> ReportDocument:
    report = Report(
        id=ReportId(7),
        case_id=CaseId(3),
        study_instance_uid="1.2.826.0.1.3680043.8.498.1",
        facility_id=FacilityId(2),
        author_id=UserId(5),
        author_name="新里镇卫生院 吴医生",
        status=ReportStatus.FINAL,
        findings="双肺纹理清晰。",
        impression="",
        conclusion=Conclusion.ABNORMAL,
        signed_at=datetime(2026, 12, 1, 2, 30, tzinfo=UTC),
        signature_sha256="0" * 64,
        delivered_at=None,
        acknowledged_at=None,
        discrepancy=discrepancy,
    )
    return ReportDocument(
        report=report,
        case_id=CaseId(3),
        specialty=specialty,
        sending_facility_id=9,
        sending_facility="王店村卫生室",
        reading_facility="淮滨县人民医院",
        patient_id="P-1",
        patient_name="王^小明",
        patient_birth_date="19600101",
        patient_sex="M",
        study_instance_uid=report.study_instance_uid,
        study_date="20261201",
        study_time="101010",
        accession_number="A-1",
        description="胸部CT",
        modalities=("CT",),
        referring_physician=None,
        evidence=(
            ("1.2.826.0.1.3680043.8.498.1.1", CT, "1.2.826.0.1.3680043.8.498.1.1.1"),
            ("1.2.826.0.1.3680043.8.498.1.1", CT, "1.2.826.0.1.3680043.8.498.1.1.2"),
            ("1.2.826.0.1.3680043.8.498.1.2", CT, "1.2.826.0.1.3680043.8.498.1.2.1"),
        ),
        first_metadata_zlib=None
        if study_id is None
        else zlib.compress(json.dumps({"00200010": {"vr": "SH", "Value": [study_id]}}).encode()),
    )


def _verify(data: bytes, tmp_path: Path) -> str:
    path = tmp_path / "object.dcm"
    path.write_bytes(data)
    check = subprocess.run([str(DCIODVFY), str(path)], capture_output=True, text=True, check=False)
    errors = [line for line in check.stderr.splitlines() if line.startswith("Error")]
    assert errors == [], check.stderr
    return check.stderr


@pytest.mark.dcmtk
def test_sr_holds_the_reader_the_texts_and_the_instances_read(tmp_path: Path) -> None:
    _, data = basic_text_sr(_document())
    assert "Person Name" not in _verify(data, tmp_path)
    sr = dcmread(io.BytesIO(data))
    assert sr.ConceptNameCodeSequence[0].CodeValue == "18748-4"
    kinds = [(i.RelationshipType, i.ValueType) for i in sr.ContentSequence]
    # observer type, name and organisation first; then the texts that are not empty
    context = ("HAS OBS CONTEXT", "CODE"), ("HAS OBS CONTEXT", "PNAME"), ("HAS OBS CONTEXT", "TEXT")
    assert tuple(kinds[:3]) == context
    texts = {i.ConceptNameCodeSequence[0].CodeMeaning: i.TextValue for i in sr.ContentSequence[3:]}
    assert texts == {"Finding": "双肺纹理清晰。", "Conclusion": "异常"}  # no empty impression
    assert sr.ContentSequence[1].PersonName.family_name == "新里镇卫生院 吴医生"
    (study,) = sr.CurrentRequestedProcedureEvidenceSequence
    series = {
        s.SeriesInstanceUID: len(s.ReferencedSOPSequence) for s in study.ReferencedSeriesSequence
    }
    assert series == {"1.2.826.0.1.3680043.8.498.1.1": 2, "1.2.826.0.1.3680043.8.498.1.2": 1}


@pytest.mark.dcmtk
def test_an_ecg_report_is_titled_as_one_and_keeps_the_second_readers_comment(
    tmp_path: Path,
) -> None:
    doc = _document(specialty="ecg", discrepancy="同意初读意见，补充：ST段改变。")
    _, data = basic_text_sr(doc)
    _verify(data, tmp_path)
    sr = dcmread(io.BytesIO(data))
    assert sr.ConceptNameCodeSequence[0].CodeValue == "11524-6"
    assert sr.ContentSequence[-1].TextValue == "同意初读意见，补充：ST段改变。"
    _, pdf = encapsulated_pdf(doc, b"%PDF-1.4\n%%EOF\n")
    _verify(pdf, tmp_path)
    assert dcmread(io.BytesIO(pdf)).ConceptNameCodeSequence[0].CodeValue == "11524-6"


@pytest.mark.dcmtk
def test_the_report_carries_the_studys_own_study_id(tmp_path: Path) -> None:
    doc = _document(study_id="CT20261201-118")
    for _, data in (basic_text_sr(doc), encapsulated_pdf(doc, b"%PDF-1.4\n%%EOF\n")):
        assert "Study ID" not in _verify(data, tmp_path)
        assert dcmread(io.BytesIO(data)).StudyID == "CT20261201-118"
    # a study sent without one: the report has none either (as the study's other instances)
    _, data = basic_text_sr(_document())
    assert dcmread(io.BytesIO(data)).StudyID == ""
