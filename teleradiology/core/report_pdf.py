"""The printable report: a PDF with the reading hospital's letterhead, the CJK font embedded
(subset), the reader's signature and time, its words in one language (zh-CN, the network's,
unless asked; patient data and report text as written). Pure and CPU-bound: call it off the
event loop (``asyncio.to_thread`` or the worker)."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from fpdf import FPDF

from ecg.record import MEASUREMENT_KEYS, Sex
from ecg.render import A4_LANDSCAPE_MM
from storage.records import Conclusion, Language, ReportDocument
from teleradiology.core.language import N_, gettext, word
from teleradiology.core.words import EcgMeasurement, EcgUnit

#: fonts-noto-cjk (Debian); the Simplified Chinese face is number 2 of the collection. Its
#: Latin letters print the English documents.
CJK_FONT = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
CJK_FACE_SC = 2
BEIJING = timezone(timedelta(hours=8), "CST")


@dataclass(frozen=True, kw_only=True)
class ReportEcg:
    """An ECG an ECG report prints: its measurements (keys of
    ``ecg.record.MEASUREMENT_KEYS``), statements (in the report's language), and its 12-lead
    sheet as drawn by ``ecg.render`` (PNG, A4 landscape at 25 mm/s and 10 mm/mV); None when
    the stored ECG could not be drawn (the report says so, and still goes home)."""

    measurements: Mapping[str, float]
    statements: tuple[str, ...]
    sheet_png: bytes | None


#: The measurements the report prints, in a cart's order (QTc as the sheet prints it).
REPORT_MEASUREMENTS = (
    "heart_rate_bpm",
    "pr_ms",
    "qrs_ms",
    "qt_ms",
    "qtc_ms",
    "p_axis_deg",
    "qrs_axis_deg",
    "t_axis_deg",
)


def labelled(language: Language, label: str, value: str) -> str:
    """``label`` (Chinese, marked with ``N_``) in `language`, its colon, and the value as
    it is: "结论：未见异常", "Conclusion: normal"."""
    colon = "：" if language is Language.ZH_CN else ": "
    return f"{gettext(language)(label)}{colon}{value}"


def _measurement_label(key: str, language: Language) -> str:
    """A measurement's name as a label (its first letter capital)."""
    if key == "qtc_ms":
        return "QTc"
    name = word(EcgMeasurement(key), language)
    return name[:1].upper() + name[1:]


def _measurement_text(key: str, values: Mapping[str, float], language: Language) -> str:
    value = values.get(key)
    if value is None:
        return "—"
    unit = word(EcgUnit(MEASUREMENT_KEYS[key]), language)
    return f"{value:.0f} {unit}".replace(" °", "°")


def beijing_time(value: datetime | None, language: Language = Language.ZH_CN) -> str:
    """A moment as the network's clocks show it, said to be Beijing time."""
    if value is None:
        return ""
    shown = value.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")
    return gettext(language)(N_("%(time)s（北京时间）")) % {"time": shown}


def sex_word(code: str | None, language: Language = Language.ZH_CN) -> str:
    """A DICOM Patient's Sex (M, F, O) in words; nothing for a value outside those."""
    try:
        return word(Sex(code), language)
    except ValueError:
        return ""


def dicom_date(text: str | None) -> str:
    if text and len(text) == 8 and text.isdigit():
        return f"{text[:4]}-{text[4:6]}-{text[6:]}"
    return text or ""


def start_document(title: str, letterhead: str, made_at: datetime, font: Path) -> FPDF:
    """An A4 document with the CJK font, its first page headed by the letterhead and the
    title over a rule."""
    pdf = FPDF(format="A4")
    pdf.set_creator("telemed")
    pdf.set_title(f"{letterhead} {title}")
    pdf.set_creation_date(made_at.astimezone(UTC))
    pdf.add_font("cjk", fname=str(font), collection_font_number=CJK_FACE_SC)
    pdf.set_auto_page_break(auto=True, margin=18)
    pdf.add_page()
    pdf.set_font("cjk", size=18)
    pdf.cell(pdf.epw, 10, letterhead, align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("cjk", size=14)
    pdf.cell(pdf.epw, 9, title, align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_draw_color(60, 60, 60)
    pdf.line(pdf.l_margin, pdf.get_y() + 1, pdf.l_margin + pdf.epw, pdf.get_y() + 1)
    pdf.ln(4)
    return pdf


def label_pairs(
    pdf: FPDF, language: Language, rows: Sequence[tuple[str, str, str, str]], *, least: float
) -> None:
    """Two columns of label (Chinese, marked) and value; each label column as wide as its
    longest label in `language` (at least ``least`` mm)."""
    pdf.set_font("cjk", size=10.5)
    half = pdf.epw / 2
    lefts = [labelled(language, r[0], "") if r[0] else "" for r in rows]
    rights = [labelled(language, r[2], "") if r[2] else "" for r in rows]
    left_w = max(least, *(pdf.get_string_width(t) + 1.5 for t in lefts))
    right_w = max(least, *(pdf.get_string_width(t) + 1.5 for t in rights))
    for (_, left, _, right), left_label, right_label in zip(rows, lefts, rights, strict=True):
        pdf.cell(left_w, 7, left_label)
        pdf.cell(half - left_w, 7, left)
        pdf.cell(right_w, 7, right_label)
        pdf.cell(half - right_w, 7, right, new_x="LMARGIN", new_y="NEXT")


def _title(doc: ReportDocument, language: Language) -> str:
    _ = gettext(language)
    title = _(N_("心电图诊断报告")) if doc.specialty == "ecg" else _(N_("医学影像诊断报告"))
    report = doc.report
    if report.amends_report_id is not None:
        title = _(N_("%(title)s（补充报告 第%(version)s版）")) % {
            "title": title,
            "version": report.version,
        }
    return title


def render_report_pdf(
    doc: ReportDocument,
    *,
    font: Path = CJK_FONT,
    ecgs: Sequence[ReportEcg] = (),
    language: Language = Language.ZH_CN,
) -> bytes:
    """The report as PDF bytes (A4), its words in `language`; an ECG report's ECGs
    (``ecgs``) with their measurements and statements on the first page and each one's
    12-lead sheet on a page of its own (A4 landscape, the sheet over the whole page: at
    100 % it prints true to scale)."""
    _ = gettext(language)
    pdf = start_document(_title(doc, language), doc.reading_facility, doc.report.signed_at, font)
    _patient_rows(pdf, doc, language)
    sheet_page = 1
    for number, part in enumerate(ecgs, 1):
        heading = _(N_("心电图测量与自动分析"))
        if len(ecgs) > 1:
            heading = _(N_("心电图测量与自动分析（%(n)s）")) % {"n": number}
        sheet_page += part.sheet_png is not None
        _ecg_summary(pdf, part, heading, sheet_page=sheet_page, language=language)
    for heading, text in (
        (N_("检查所见"), doc.report.findings),
        (N_("诊断意见"), doc.report.impression),
    ):
        pdf.set_font("cjk", size=12)
        pdf.cell(pdf.epw, 8, _(heading), new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("cjk", size=10.5)
        pdf.multi_cell(pdf.epw, 6.5, text or "—", new_x="LMARGIN", new_y="NEXT")
        pdf.ln(2)
    _conclusion(pdf, doc, language)
    _signature(pdf, doc, language)
    for part in ecgs:
        _sheet_page(pdf, part)
    return bytes(pdf.output())


def _conclusion(pdf: FPDF, doc: ReportDocument, language: Language) -> None:
    """The conclusion (a critical one in red, asking for a telephone confirmation), and a
    senior reader's opinion of a second read."""
    report = doc.report
    pdf.set_font("cjk", size=12)
    conclusion = word(report.conclusion, language)
    if report.conclusion is Conclusion.CRITICAL:
        pdf.set_text_color(200, 0, 0)
        conclusion = gettext(language)(N_("%(conclusion)s —— 请立即处置并电话确认")) % {
            "conclusion": conclusion
        }
    pdf.cell(pdf.epw, 8, labelled(language, N_("结论"), conclusion), new_x="LMARGIN", new_y="NEXT")
    pdf.set_text_color(0, 0, 0)
    if report.discrepancy:
        pdf.set_font("cjk", size=10)
        said = labelled(language, N_("上级审核意见"), report.discrepancy)
        pdf.multi_cell(pdf.epw, 6, said, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(6)


def _signature(pdf: FPDF, doc: ReportDocument, language: Language) -> None:
    """Who signed, when, the signature's digest and what the report is for."""
    report = doc.report
    half = pdf.epw / 2
    pdf.set_font("cjk", size=10.5)
    pdf.cell(half, 7, labelled(language, N_("报告医师"), report.author_name))
    signed = labelled(language, N_("签发时间"), beijing_time(report.signed_at, language))
    pdf.cell(half, 7, signed, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("cjk", size=8)
    pdf.set_text_color(90, 90, 90)
    digest = labelled(language, N_("电子签名（SHA-256）"), report.signature_sha256)
    note = gettext(language)(
        N_("本报告经县域远程诊断网络签发，仅供临床参考；如有疑问请联系报告医院。")
    )
    pdf.multi_cell(pdf.epw, 5, f"{digest}\n{note}", new_x="LMARGIN", new_y="NEXT")


def _patient_rows(pdf: FPDF, doc: ReportDocument, language: Language) -> None:
    """Who, from where, which examination: two columns of label and value."""
    number = gettext(language)(N_("%(report)s（病例 %(case)s）")) % {
        "report": doc.report.id,
        "case": doc.case_id,
    }
    name = (doc.patient_name or "").replace("^", " ")
    rows = [
        (N_("姓名"), name, N_("患者编号"), doc.patient_id),
        (
            N_("性别"),
            sex_word(doc.patient_sex, language),
            N_("出生日期"),
            dicom_date(doc.patient_birth_date),
        ),
        (N_("送检机构"), doc.sending_facility, N_("检查日期"), dicom_date(doc.study_date)),
        (N_("检查类型"), "/".join(doc.modalities), N_("检查号"), doc.accession_number or ""),
        (N_("检查项目"), doc.description or "", N_("报告编号"), number),
    ]
    label_pairs(pdf, language, rows, least=22)
    pdf.ln(3)


def _ecg_summary(
    pdf: FPDF, part: ReportEcg, heading: str, *, sheet_page: int, language: Language
) -> None:
    """The measurements in a table of two rows of four, the statements, and where the
    tracing is."""
    _ = gettext(language)
    width = pdf.epw
    pdf.set_font("cjk", size=12)
    pdf.cell(width, 8, heading, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("cjk", size=10)
    column = width / 4
    for row in (REPORT_MEASUREMENTS[:4], REPORT_MEASUREMENTS[4:]):
        for key in row:
            label = _measurement_label(key, language)
            value = _measurement_text(key, part.measurements, language)
            pdf.cell(column, 6.5, labelled(language, label, value), border=1)
        pdf.ln(6.5)
    pdf.ln(1)
    joiner = "；" if language is Language.ZH_CN else "; "
    lines = joiner.join(part.statements) or "—"
    said = labelled(language, N_("自动分析（需医师确认）"), lines)
    pdf.multi_cell(width, 6, said, new_x="LMARGIN", new_y="NEXT")
    where = (
        _(N_("12导联心电图见第 %(page)s 页（25 mm/s，10 mm/mV；请按实际大小打印）"))
        % {"page": sheet_page}
        if part.sheet_png is not None
        else _(N_("12导联心电图未能从存储的记录绘制，请在系统中查看原始文件"))
    )
    pdf.multi_cell(width, 6, where, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)


def _sheet_page(pdf: FPDF, part: ReportEcg) -> None:
    """One A4 landscape page holding the sheet edge to edge, at its true scale."""
    if part.sheet_png is None:
        return
    width_mm, height_mm = A4_LANDSCAPE_MM
    pdf.add_page(orientation="L")
    pdf.set_auto_page_break(False)
    pdf.image(io.BytesIO(part.sheet_png), x=0, y=0, w=width_mm, h=height_mm)
