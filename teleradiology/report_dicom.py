"""The report as DICOM for the clinic's workstation: an Encapsulated PDF and a Basic Text
SR, both referencing the study read. Strict: built with pydicom's writing validation set to
raise, so a value that breaks its VR is an error here, not at the clinic."""

from __future__ import annotations

import io
from datetime import datetime, timedelta, timezone

from pydicom import config
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from storage.reports import ReportDocument

ENCAPSULATED_PDF = "1.2.840.10008.5.1.4.1.1.104.1"
BASIC_TEXT_SR = "1.2.840.10008.5.1.4.1.1.88.11"
_BEIJING = timezone(timedelta(hours=8))
_MANUFACTURER = "telemed"


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = scheme
    item.CodeMeaning = meaning
    return item


def _common(doc: ReportDocument, sop_class: str, modality: str, when: datetime) -> Dataset:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = doc.study_instance_uid
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = modality
    ds.PatientName = doc.patient_name or ""
    ds.PatientID = doc.patient_id
    ds.PatientBirthDate = doc.patient_birth_date or ""
    ds.PatientSex = doc.patient_sex if doc.patient_sex in ("M", "F", "O") else ""
    ds.StudyDate = doc.study_date or ""
    ds.StudyTime = doc.study_time or ""
    ds.AccessionNumber = (doc.accession_number or "")[:16]
    ds.ReferringPhysicianName = doc.referring_physician or ""
    ds.StudyID = ""
    ds.SeriesNumber = 900 + doc.report.version
    ds.InstanceNumber = 1
    ds.Manufacturer = _MANUFACTURER
    ds.InstitutionName = doc.reading_facility[:64]
    local = when.astimezone(_BEIJING)
    ds.ContentDate = local.strftime("%Y%m%d")
    ds.ContentTime = local.strftime("%H%M%S")
    ds.InstanceCreationDate = ds.ContentDate
    ds.InstanceCreationTime = ds.ContentTime
    ds.TimezoneOffsetFromUTC = "+0800"
    return ds


def _part10(ds: Dataset) -> bytes:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


class _StrictWriting:
    def __enter__(self) -> None:
        self._mode = config.settings.writing_validation_mode
        config.settings.writing_validation_mode = config.RAISE

    def __exit__(self, *exc: object) -> None:
        config.settings.writing_validation_mode = self._mode


def encapsulated_pdf(doc: ReportDocument, pdf: bytes) -> tuple[str, bytes]:
    """An Encapsulated PDF instance (PS3.3 A.45.1): its SOP Instance UID and Part-10 bytes."""
    with _StrictWriting():
        ds = _common(doc, ENCAPSULATED_PDF, "DOC", doc.report.signed_at)
        ds.ConversionType = "SD"
        ds.BurnedInAnnotation = "YES"
        ds.DocumentTitle = f"诊断报告 {doc.report.id}"
        ds.ConceptNameCodeSequence = Sequence([_code("18748-4", "LN", "Diagnostic imaging report")])
        ds.AcquisitionDateTime = doc.report.signed_at.astimezone(_BEIJING).strftime("%Y%m%d%H%M%S")
        ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
        ds.EncapsulatedDocument = pdf + (b"\0" if len(pdf) % 2 else b"")
        ds.EncapsulatedDocumentLength = len(pdf)
        return ds.SOPInstanceUID, _part10(ds)


def _text_item(relation: str, code: Dataset, text: str) -> Dataset:
    item = Dataset()
    item.RelationshipType = relation
    item.ValueType = "TEXT"
    item.ConceptNameCodeSequence = Sequence([code])
    item.TextValue = text
    return item


def basic_text_sr(doc: ReportDocument) -> tuple[str, bytes]:
    """A Basic Text SR (PS3.3 A.35.1) of the report: findings, impression and conclusion
    under a diagnostic imaging report container, verified by the signing reader."""
    report = doc.report
    with _StrictWriting():
        ds = _common(doc, BASIC_TEXT_SR, "SR", report.signed_at)
        ds.ValueType = "CONTAINER"
        ds.ContinuityOfContent = "SEPARATE"
        ds.ConceptNameCodeSequence = Sequence([_code("18748-4", "LN", "Diagnostic imaging report")])
        ds.CompletionFlag = "COMPLETE"
        ds.VerificationFlag = "VERIFIED"
        signed = report.signed_at.astimezone(_BEIJING).strftime("%Y%m%d%H%M%S")
        observer = Dataset()
        observer.VerifyingObserverName = report.author_name
        observer.VerificationDateTime = signed
        observer.VerifyingOrganization = doc.reading_facility[:64]
        observer.VerifyingObserverIdentificationCodeSequence = Sequence()
        ds.VerifyingObserverSequence = Sequence([observer])
        ds.PerformedProcedureCodeSequence = Sequence()
        ds.ReferencedPerformedProcedureStepSequence = Sequence()
        conclusion = {"normal": "未见异常", "abnormal": "异常", "critical": "危急值"}
        children = [
            _text_item("CONTAINS", _code("121071", "DCM", "Finding"), report.findings),
            _text_item("CONTAINS", _code("121073", "DCM", "Impression"), report.impression),
            _text_item(
                "CONTAINS",
                _code("121077", "DCM", "Conclusion"),
                conclusion[report.conclusion.value],
            ),
        ]
        if report.discrepancy:
            children.append(
                _text_item("CONTAINS", _code("121106", "DCM", "Comment"), report.discrepancy)
            )
        ds.ContentSequence = Sequence(children)
        if report.amends_report_id is not None:
            ds.PreliminaryFlag = "FINAL"
        return ds.SOPInstanceUID, _part10(ds)
