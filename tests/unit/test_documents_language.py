"""The printable report in one language at a time: the words of the reader's language
(zh-CN, the network's, by default), the patient's data and the report's text as written."""

from __future__ import annotations

import io
import re
from dataclasses import replace

import pypdf

from ecg.render import SheetHeader, render_png
from storage.records import Conclusion, Language, ReportId
from teleradiology.core.report_pdf import CJK_FONT, ReportEcg, render_report_pdf
from tests.unit.ecg.signal_support import synthetic_record
from tests.unit.test_words import _document

#: Chinese characters.
CJK = re.compile(r"[\u4e00-\u9fff]")
#: What the report prints as it was written or named, in any language.
AS_WRITTEN = ("淮滨县人民医院", "王店村卫生室", "王 小明", "胸部正位片", "双肺纹理清晰", "吴医生")


def _text(data: bytes) -> list[str]:
    """Each page's text as pypdf extracts it (the font's spaces kept)."""
    return [
        page.extract_text().replace("\x00", "") for page in pypdf.PdfReader(io.BytesIO(data)).pages
    ]


def _amended_critical() -> bytes:
    doc = _document(Conclusion.CRITICAL)
    report = replace(
        doc.report, amends_report_id=ReportId(6), version=2, discrepancy="漏诊右侧气胸"
    )
    return render_report_pdf(replace(doc, report=report), language=Language.EN)


def test_an_english_readers_report_has_english_words_and_the_patient_as_written() -> None:
    (text,) = _text(_amended_critical())
    for heading in (
        "Medical imaging report (addendum, version 2)",
        "Name: 王 小明",  # the patient's name is never translated
        "Patient ID: P-1",
        "Sex: female",
        "Findings of the examination",
        "Impression",
        "Conclusion: critical — act at once and confirm by telephone",
        "Senior reader's opinion: 漏诊右侧气胸",
        "Reporting physician: 吴医生",
        "Signed: 2026-12-01 10:30:00 (Beijing time)",
        "Electronic signature (SHA-256): " + "0" * 16,
        "Report no.: 7 (case 3)",
    ):
        assert heading in text, heading
    rest = text
    for written in (*AS_WRITTEN, "漏诊右侧气胸"):
        rest = rest.replace(written, "")
    assert not CJK.findall(rest), "Chinese words left in the English report"


def test_a_chinese_readers_report_has_no_english_heading() -> None:
    (text,) = _text(render_report_pdf(_document(Conclusion.NORMAL)))
    flat = "".join(text.split())
    assert flat.startswith("淮滨县人民医院医学影像诊断报告")
    assert "结论：未见异常" in flat
    assert "报告医师：吴医生" in flat
    # nothing but the study's codes, IDs and the digest in Latin letters
    assert set(re.findall(r"[A-Za-z]{2,}", text)) <= {"CR", "SHA"}


def test_an_ecg_report_in_english_names_its_measurements_and_sheet_page() -> None:
    sheet = render_png(
        synthetic_record(),
        header=SheetHeader(language="en"),
        font_bytes=CJK_FONT.read_bytes(),
        dpi=72,
    )
    doc = replace(_document(Conclusion.ABNORMAL), specialty="ecg", modalities=("ECG",))
    ecgs = [
        ReportEcg(
            measurements={"heart_rate_bpm": 71.6, "pr_ms": 158.0},
            statements=("Sinus rhythm", "Left axis deviation"),
            sheet_png=sheet,
        )
    ]
    first, _ = _text(render_report_pdf(doc, ecgs=ecgs, language=Language.EN))
    assert first.startswith("淮滨县人民医院")
    for said in (
        "ECG report",
        "ECG measurements and automated analysis",
        "Heart rate: 72 bpm",
        "QTc: —",
        "Automated analysis (to be confirmed by a physician): Sinus rhythm; Left axis deviation",
        "The 12-lead ECG is on page 2 (25 mm/s, 10 mm/mV; print at actual size)",
    ):
        assert said in first, said
