"""The report as DICOM for the clinic's workstation: an Encapsulated PDF and a Basic Text
SR, both referencing the study read. Strict: built with pydicom's writing validation set to
raise, so a value that breaks its VR is an error here, not at the clinic."""

from __future__ import annotations

import io
from datetime import datetime, timedelta, timezone

from highdicom.sr import (
    CodedConcept,
    ContainerContentItem,
    ContentSequence,
    ObserverContext,
    PersonObserverIdentifyingAttributes,
    RelationshipTypeValues,
    TextContentItem,
)
from pydicom import config
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.sr.codedict import codes
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from storage.records import ReportDocument
from teleradiology.core.query import metadata_of
from teleradiology.core.words import word

ENCAPSULATED_PDF = "1.2.840.10008.5.1.4.1.1.104.1"
BASIC_TEXT_SR = "1.2.840.10008.5.1.4.1.1.88.11"
_BEIJING = timezone(timedelta(hours=8))
_MANUFACTURER = "telemed"


#: The report's document title by specialty (LOINC).
_TITLES = {
    "ecg": CodedConcept("11524-6", "LN", "EKG study"),
}
_IMAGING_REPORT = CodedConcept("18748-4", "LN", "Diagnostic imaging report")


def _person_name(display_name: str) -> str:
    """A reader's display name as a DICOM person name: kept whole as the family-name
    component (a Chinese name is not split at a space), marked so by the trailing caret."""
    return display_name if "^" in display_name else f"{display_name}^"


def _title(doc: ReportDocument) -> CodedConcept:
    return _TITLES.get(doc.specialty, _IMAGING_REPORT)


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
    # the study's own Study ID, from its first instance (the index does not keep it)
    study_id = metadata_of(doc.first_metadata_zlib).get("00200010", {}).get("Value", [""])
    ds.StudyID = str(study_id[0])[:16] if study_id else ""
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
        ds.ConceptNameCodeSequence = Sequence([_title(doc)])
        ds.AcquisitionDateTime = doc.report.signed_at.astimezone(_BEIJING).strftime("%Y%m%d%H%M%S")
        ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
        ds.EncapsulatedDocument = pdf + (b"\0" if len(pdf) % 2 else b"")
        ds.EncapsulatedDocumentLength = len(pdf)
        return ds.SOPInstanceUID, _part10(ds)


def _evidence(doc: ReportDocument) -> Sequence:
    """The instances read, as the SR's Current Requested Procedure Evidence (PS3.3 C.17.2)."""
    series: dict[str, list[Dataset]] = {}
    for series_uid, sop_class, sop_instance in doc.evidence:
        ref = Dataset()
        ref.ReferencedSOPClassUID = sop_class
        ref.ReferencedSOPInstanceUID = sop_instance
        series.setdefault(series_uid, []).append(ref)
    study = Dataset()
    study.StudyInstanceUID = doc.study_instance_uid
    study.ReferencedSeriesSequence = Sequence()
    for series_uid, refs in series.items():
        item = Dataset()
        item.SeriesInstanceUID = series_uid
        item.ReferencedSOPSequence = Sequence(refs)
        study.ReferencedSeriesSequence.append(item)
    return Sequence([study])


def _content(doc: ReportDocument) -> ContainerContentItem:
    """The report's content tree: who read it, then findings, impression and conclusion."""
    report = doc.report
    observer = ObserverContext(
        observer_type=codes.DCM.Person,
        observer_identifying_attributes=PersonObserverIdentifyingAttributes(
            name=_person_name(report.author_name), organization_name=doc.reading_facility[:64]
        ),
    )
    contains = RelationshipTypeValues.CONTAINS
    sections = [
        (CodedConcept("121071", "DCM", "Finding"), report.findings),
        (CodedConcept("121073", "DCM", "Impression"), report.impression),
        (CodedConcept("121077", "DCM", "Conclusion"), word(report.conclusion)),
        (CodedConcept("121106", "DCM", "Comment"), report.discrepancy or ""),
    ]
    root = ContainerContentItem(name=_title(doc), is_content_continuous=False)
    root.ContentSequence = ContentSequence(
        [
            *observer,
            *(
                TextContentItem(name=name, value=text, relationship_type=contains)
                for name, text in sections
                if text.strip()
            ),
        ]
    )
    return root


def basic_text_sr(doc: ReportDocument) -> tuple[str, bytes]:
    """A Basic Text SR (PS3.3 A.35.1) of the report: the reader as observer context, then
    findings, impression and conclusion, verified by the signing reader, with the study's
    instances as its evidence. The content tree is highdicom's; the IOD is Basic Text SR,
    which clinics' workstations take most widely."""
    report = doc.report
    with _StrictWriting():
        ds = _common(doc, BASIC_TEXT_SR, "SR", report.signed_at)
        for element in _content(doc):
            ds.add(element)
        ds.CompletionFlag = "COMPLETE"
        ds.VerificationFlag = "VERIFIED"
        signed = report.signed_at.astimezone(_BEIJING).strftime("%Y%m%d%H%M%S")
        verifier = Dataset()
        verifier.VerifyingObserverName = _person_name(report.author_name)
        verifier.VerificationDateTime = signed
        verifier.VerifyingOrganization = doc.reading_facility[:64]
        verifier.VerifyingObserverIdentificationCodeSequence = Sequence()
        ds.VerifyingObserverSequence = Sequence([verifier])
        ds.PerformedProcedureCodeSequence = Sequence()
        ds.ReferencedPerformedProcedureStepSequence = Sequence()
        if doc.evidence:
            ds.CurrentRequestedProcedureEvidenceSequence = _evidence(doc)
        if report.amends_report_id is not None:
            ds.PreliminaryFlag = "FINAL"
        return ds.SOPInstanceUID, _part10(ds)
