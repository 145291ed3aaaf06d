"""The printable report: a zh-CN PDF with the reading hospital's letterhead, the CJK font
embedded (subset), the reader's signature and time. Pure and CPU-bound: call it off the
event loop (``asyncio.to_thread`` or the worker)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from fpdf import FPDF

from ecg.record import Sex
from storage.records import Conclusion, ReportDocument
from teleradiology.core.words import word

#: fonts-noto-cjk (Debian); the Simplified Chinese face is number 2 of the collection.
CJK_FONT = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
CJK_FACE_SC = 2
BEIJING = timezone(timedelta(hours=8), "CST")


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


def render_report_pdf(doc: ReportDocument, *, font: Path = CJK_FONT) -> bytes:
    """The report as PDF bytes (A4)."""
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

    pdf.set_font("cjk", size=10.5)
    rows = [
        ("姓名", (doc.patient_name or "").replace("^", " "), "患者编号", doc.patient_id),
        ("性别", sex_word(doc.patient_sex), "出生日期", dicom_date(doc.patient_birth_date)),
        ("送检机构", doc.sending_facility, "检查日期", dicom_date(doc.study_date)),
        ("检查类型", "/".join(doc.modalities), "检查号", doc.accession_number or ""),
        ("检查项目", doc.description or "", "报告编号", f"{report.id}（病例 {doc.case_id}）"),
    ]
    half = width / 2
    for left_label, left, right_label, right in rows:
        pdf.cell(22, 7, f"{left_label}：")
        pdf.cell(half - 22, 7, left)
        pdf.cell(22, 7, f"{right_label}：")
        pdf.cell(half - 22, 7, right, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)

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
    return bytes(pdf.output())
