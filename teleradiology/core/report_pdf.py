"""The printable report: a zh-CN PDF with the reading hospital's letterhead, the CJK font
embedded (subset), the reader's signature and time. Pure and CPU-bound: call it off the
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
from storage.records import Conclusion, ReportDocument
from teleradiology.core.words import EcgMeasurement, EcgUnit, word

#: fonts-noto-cjk (Debian); the Simplified Chinese face is number 2 of the collection.
CJK_FONT = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
CJK_FACE_SC = 2
BEIJING = timezone(timedelta(hours=8), "CST")


@dataclass(frozen=True, kw_only=True)
class ReportEcg:
    """An ECG an ECG report prints: its measurements (keys of
    ``ecg.record.MEASUREMENT_KEYS``), statements, and its 12-lead sheet as drawn by
    ``ecg.render`` (PNG, A4 landscape at 25 mm/s and 10 mm/mV); None when the stored ECG
    could not be drawn (the report says so, and still goes home)."""

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


def _measurement_label(key: str) -> str:
    return "QTc" if key == "qtc_ms" else word(EcgMeasurement(key))


def _measurement_text(key: str, values: Mapping[str, float]) -> str:
    value = values.get(key)
    if value is None:
        return "—"
    return f"{value:.0f} {word(EcgUnit(MEASUREMENT_KEYS[key]))}".replace(" °", "°")


def beijing_time(value: datetime | None) -> str:
    return value.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S（北京时间）") if value else ""


def sex_word(code: str | None) -> str:
    """A DICOM Patient's Sex (M, F, O) in words; nothing for a value outside those."""
    try:
        return word(Sex(code))
    except ValueError:
        return ""


def dicom_date(text: str | None) -> str:
    if text and len(text) == 8 and text.isdigit():
        return f"{text[:4]}-{text[4:6]}-{text[6:]}"
    return text or ""


def render_report_pdf(
    doc: ReportDocument, *, font: Path = CJK_FONT, ecgs: Sequence[ReportEcg] = ()
) -> bytes:
    """The report as PDF bytes (A4); an ECG report's ECGs (``ecgs``) with their
    measurements and statements on the first page and each one's 12-lead sheet on a page of
    its own (A4 landscape, the sheet over the whole page: at 100 % it prints true to scale)."""
    report = doc.report
    pdf = FPDF(format="A4")
    pdf.set_creator("telemed")
    pdf.set_title(f"{doc.reading_facility} 诊断报告")
    pdf.set_creation_date(report.signed_at.astimezone(UTC))
    pdf.add_font("cjk", fname=str(font), collection_font_number=CJK_FACE_SC)
    pdf.set_auto_page_break(auto=True, margin=18)
    pdf.add_page()
    width = pdf.epw

    pdf.set_font("cjk", size=18)
    pdf.cell(width, 10, doc.reading_facility, align="C", new_x="LMARGIN", new_y="NEXT")
    title = "心电图诊断报告" if doc.specialty == "ecg" else "医学影像诊断报告"
    if report.amends_report_id is not None:
        title += f"（补充报告 第{report.version}版）"
    pdf.set_font("cjk", size=14)
    pdf.cell(width, 9, title, align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_draw_color(60, 60, 60)
    pdf.line(pdf.l_margin, pdf.get_y() + 1, pdf.l_margin + width, pdf.get_y() + 1)
    pdf.ln(4)

    _patient_rows(pdf, doc)
    sheet_page = 1
    for number, part in enumerate(ecgs, 1):
        heading = f"心电图测量与自动分析{f'（{number}）' if len(ecgs) > 1 else ''}"
        sheet_page += part.sheet_png is not None
        _ecg_summary(pdf, part, heading, sheet_page=sheet_page)

    for heading, text in (("检查所见", report.findings), ("诊断意见", report.impression)):
        pdf.set_font("cjk", size=12)
        pdf.cell(width, 8, heading, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("cjk", size=10.5)
        pdf.multi_cell(width, 6.5, text or "—", new_x="LMARGIN", new_y="NEXT")
        pdf.ln(2)

    pdf.set_font("cjk", size=12)
    conclusion = word(report.conclusion)
    if report.conclusion is Conclusion.CRITICAL:
        pdf.set_text_color(200, 0, 0)
        conclusion += " —— 请立即处置并电话确认"
    pdf.cell(width, 8, f"结论：{conclusion}", new_x="LMARGIN", new_y="NEXT")
    pdf.set_text_color(0, 0, 0)
    if report.discrepancy:
        pdf.set_font("cjk", size=10)
        pdf.multi_cell(
            width, 6, f"上级审核意见：{report.discrepancy}", new_x="LMARGIN", new_y="NEXT"
        )
    pdf.ln(6)

    half = width / 2
    pdf.set_font("cjk", size=10.5)
    pdf.cell(half, 7, f"报告医师：{report.author_name}")
    pdf.cell(half, 7, f"签发时间：{beijing_time(report.signed_at)}", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("cjk", size=8)
    pdf.set_text_color(90, 90, 90)
    pdf.multi_cell(
        width,
        5,
        f"电子签名（SHA-256）：{report.signature_sha256}\n"
        "本报告经县域远程诊断网络签发，仅供临床参考；如有疑问请联系报告医院。",
        new_x="LMARGIN",
        new_y="NEXT",
    )
    for part in ecgs:
        _sheet_page(pdf, part)
    return bytes(pdf.output())


def _patient_rows(pdf: FPDF, doc: ReportDocument) -> None:
    """Who, from where, which examination: two columns of label and value."""
    pdf.set_font("cjk", size=10.5)
    rows = [
        ("姓名", (doc.patient_name or "").replace("^", " "), "患者编号", doc.patient_id),
        ("性别", sex_word(doc.patient_sex), "出生日期", dicom_date(doc.patient_birth_date)),
        ("送检机构", doc.sending_facility, "检查日期", dicom_date(doc.study_date)),
        ("检查类型", "/".join(doc.modalities), "检查号", doc.accession_number or ""),
        ("检查项目", doc.description or "", "报告编号", f"{doc.report.id}（病例 {doc.case_id}）"),
    ]
    half = pdf.epw / 2
    for left_label, left, right_label, right in rows:
        pdf.cell(22, 7, f"{left_label}：")
        pdf.cell(half - 22, 7, left)
        pdf.cell(22, 7, f"{right_label}：")
        pdf.cell(half - 22, 7, right, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)


def _ecg_summary(pdf: FPDF, part: ReportEcg, heading: str, *, sheet_page: int) -> None:
    """The measurements in a table of two rows of four, the statements, and where the
    tracing is."""
    width = pdf.epw
    pdf.set_font("cjk", size=12)
    pdf.cell(width, 8, heading, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("cjk", size=10)
    column = width / 4
    for row in (REPORT_MEASUREMENTS[:4], REPORT_MEASUREMENTS[4:]):
        for key in row:
            label = _measurement_label(key)
            pdf.cell(column, 6.5, f"{label}：{_measurement_text(key, part.measurements)}", border=1)
        pdf.ln(6.5)
    pdf.ln(1)
    lines = "；".join(part.statements) or "—"
    pdf.multi_cell(width, 6, f"自动分析（需医师确认）：{lines}", new_x="LMARGIN", new_y="NEXT")
    where = (
        f"12导联心电图见第 {sheet_page} 页（25 mm/s，10 mm/mV；请按实际大小打印）"
        if part.sheet_png is not None
        else "12导联心电图未能从存储的记录绘制，请在系统中查看原始文件"
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
