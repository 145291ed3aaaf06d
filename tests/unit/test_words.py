"""The one table of words: every member of every enum people read has a zh-CN and an
English word, and the printable report, the DICOM SR and the pages say the same word for
the same conclusion."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime
from enum import Enum
from zoneinfo import ZoneInfo

import pypdf
import pytest
from pydicom import dcmread

from ecg.record import MEASUREMENT_KEYS, Sex
from ecg.render import SheetFilter
from storage.records import (
    CaseId,
    CaseStatus,
    Conclusion,
    EventKind,
    FacilityId,
    NotificationKind,
    Priority,
    ReferralDirection,
    ReferralStatus,
    Report,
    ReportDocument,
    ReportId,
    ReportStatus,
    ReturnReason,
    Specialty,
    TurnaroundSegment,
    Urgency,
    UserId,
)
from storage.records import Language as RecordLanguage
from storage.turnaround import SEGMENTS
from teleradiology.core.report_pdf import render_report_pdf
from teleradiology.core.report_sr import basic_text_sr
from teleradiology.core.words import (
    TABLES,
    EcgMeasurement,
    EcgUnit,
    Language,
    WorklistFilter,
    word,
)
from teleradiology.http.web.common import (
    TEMPLATES,
    language_context,
    report_context,
    stored_word,
)
from teleradiology.http.web.ecg_case import PAGE_MEASUREMENTS

SHOWN: tuple[type[Enum], ...] = (
    Priority,
    CaseStatus,
    Conclusion,
    ReportStatus,
    ReturnReason,
    EventKind,
    NotificationKind,
    ReferralStatus,
    Urgency,
    ReferralDirection,
    Specialty,
    TurnaroundSegment,
    WorklistFilter,
    SheetFilter,
    EcgMeasurement,
    EcgUnit,
    Sex,
)
_HAN = re.compile(r"[\u4e00-\u9fff]")


def test_the_enums_people_read_are_all_in_the_table() -> None:
    assert set(SHOWN) <= set(TABLES)


@pytest.mark.parametrize("kind", list(TABLES), ids=lambda k: k.__name__)
def test_every_member_has_a_word_in_each_language(kind: type[Enum]) -> None:
    table = TABLES[kind]
    assert set(table) == set(kind), "a member without words, or words of no member"
    for member in kind:
        for lang in Language:
            assert word(member, lang).strip(), (member, lang)


@pytest.mark.parametrize("kind", list(TABLES), ids=lambda k: k.__name__)
def test_words_are_not_the_code_and_the_chinese_is_chinese(kind: type[Enum]) -> None:
    """A word written in Chinese is in zh-CN; names the two languages share (QTc, ms, °)
    are the exceptions the table writes alike in both."""
    for member in kind:
        zh, en = word(member, Language.ZH), word(member, Language.EN)
        assert zh != member.value or zh == en, member
        assert _HAN.search(zh) or zh == en, member


def test_each_language_has_its_own_word() -> None:
    assert (word(Priority.HIGH), word(Priority.HIGH, Language.EN)) == ("紧急", "urgent")
    assert word(ReturnReason.WRONG_PATIENT, Language.EN) == "wrong patient"
    assert (word(EcgUnit.BPM), word(EcgUnit.BPM, Language.EN)) == ("次/分", "bpm")
    assert word(EcgUnit.MS) == word(EcgUnit.MS, Language.EN) == "ms"  # written alike
    assert word(Urgency.EMERGENCY, Language.EN) == "emergency"
    assert stored_word(EventKind, "stemi_suspected", RecordLanguage.EN) == "suspected STEMI"
    assert stored_word(EventKind, "an_older_kind", RecordLanguage.EN) == "an_older_kind"


def test_one_word_per_conclusion_as_the_printed_report_has_it() -> None:
    assert [word(c) for c in Conclusion] == ["未见异常", "异常", "危急值"]
    assert [word(c, Language.EN) for c in Conclusion] == ["normal", "abnormal", "critical"]


def test_the_ecg_page_rows_and_units_all_have_words() -> None:
    assert {m.value for m in EcgMeasurement} == set(PAGE_MEASUREMENTS)
    assert {u.value for u in EcgUnit} == set(MEASUREMENT_KEYS.values())


def test_the_turnaround_segments_are_those_measured() -> None:
    assert [s for s, _, _ in SEGMENTS] == list(TurnaroundSegment)


def _document(conclusion: Conclusion) -> ReportDocument:
    report = Report(
        id=ReportId(7),
        case_id=CaseId(3),
        study_instance_uid="1.2.826.0.1.3680043.8.498.1",
        facility_id=FacilityId(2),
        author_id=UserId(5),
        author_name="吴医生",
        status=ReportStatus.FINAL,
        findings="双肺纹理清晰。",
        impression="胸部正位片。",
        conclusion=conclusion,
        signed_at=datetime(2026, 12, 1, 2, 30, tzinfo=UTC),
        signature_sha256="0" * 64,
        delivered_at=None,
        acknowledged_at=None,
    )
    return ReportDocument(
        report=report,
        case_id=CaseId(3),
        specialty="radiology",
        sending_facility_id=9,
        sending_facility="王店村卫生室",
        reading_facility="淮滨县人民医院",
        patient_id="P-1",
        patient_name="王^小明",
        patient_birth_date="19600101",
        patient_sex="F",
        study_instance_uid=report.study_instance_uid,
        study_date="20261201",
        study_time="101010",
        accession_number="A-1",
        description="胸部正位片",
        modalities=("CR",),
        referring_physician=None,
        evidence=(),
        first_metadata_zlib=None,
    )


@pytest.mark.parametrize("conclusion", list(Conclusion))
def test_the_pdf_the_sr_and_the_page_say_the_same_conclusion(conclusion: Conclusion) -> None:
    doc = _document(conclusion)
    said = word(conclusion)
    pdf = pypdf.PdfReader(io.BytesIO(render_report_pdf(doc)))
    text = "".join(pdf.pages[0].extract_text().replace("\x00", "").split())
    assert f"结论：{said}" in text
    assert "性别：女" in text
    _, data = basic_text_sr(doc)
    sr = dcmread(io.BytesIO(data))
    texts = {
        i.ConceptNameCodeSequence[0].CodeMeaning: i.TextValue
        for i in sr.ContentSequence
        if i.ValueType == "TEXT"
    }
    assert texts["Conclusion"] == said
    # the report as the case and inbox pages show it
    shown = report_context(doc.report, ZoneInfo("Asia/Shanghai"))
    assert shown["conclusion_word"] == said
    in_english = report_context(doc.report, ZoneInfo("Asia/Shanghai"), RecordLanguage.EN)
    assert in_english["conclusion_word"] == word(conclusion, Language.EN)
    form = TEMPLATES.from_string(
        '{% import "report_fields.html" as f with context %}{{ f.conclusion_and_status(cs) }}'
    )
    assert f">{said}</option>" in form.render(cs=list(Conclusion))
    english = form.render(cs=list(Conclusion), **language_context(RecordLanguage.EN))
    assert f">{word(conclusion, Language.EN)}</option>" in english
    assert "Conclusion" in english
