"""The printable documents of a two-way referral, as zh-CN PDFs: the referral form (转诊单)
with its attached results, the receiving hospital's answer (接诊单), and the return form
(转回单) the referring clinic keeps. Made as report PDFs are (fpdf2, the CJK font embedded);
pure and CPU-bound: call it off the event loop."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from fpdf import FPDF

from storage.records import (
    Referral,
    ReferralAttachment,
    ReferralDocumentKind,
    ReferralPapers,
    ReferralStatus,
)
from teleradiology.core.report_pdf import CJK_FACE_SC, CJK_FONT, beijing_time, dicom_date, sex_word
from teleradiology.core.words import word


@dataclass(frozen=True, kw_only=True)
class ReferralSheet:
    """A referral with what its documents print beside it."""

    referral: Referral
    papers: ReferralPapers
    attachments: Sequence[ReferralAttachment]


def _start(title: str, letterhead: str, made_at: datetime, font: Path) -> FPDF:
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


def _pairs(pdf: FPDF, rows: Sequence[tuple[str, str, str, str]]) -> None:
    half = pdf.epw / 2
    pdf.set_font("cjk", size=10.5)
    for left_label, left, right_label, right in rows:
        pdf.cell(24, 7, f"{left_label}：")
        pdf.cell(half - 24, 7, left)
        pdf.cell(24, 7, f"{right_label}：")
        pdf.cell(half - 24, 7, right, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)


def _section(pdf: FPDF, heading: str, text: str | None) -> None:
    pdf.set_font("cjk", size=12)
    pdf.cell(pdf.epw, 8, heading, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("cjk", size=10.5)
    pdf.multi_cell(pdf.epw, 6.5, text or "—", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(1)


def _patient(pdf: FPDF, sheet: ReferralSheet) -> None:
    r, p = sheet.referral, sheet.papers
    digest = p.national_id_digest
    _pairs(
        pdf,
        [
            ("姓名", (r.patient_name or "").replace("^", " "), "患者编号", p.patient_id),
            ("性别", sex_word(p.patient_sex), "出生日期", dicom_date(p.patient_birth_date)),
            (
                "建档机构",
                p.issuer_name,
                "身份证",
                f"已核验（散列 {digest[:16]}…）" if digest else "未登记",
            ),
            ("转出机构", p.from_name, "转入机构", p.to_name),
            ("转诊编号", str(r.id), "紧急程度", word(r.urgency)),
        ],
    )


def _attachments(pdf: FPDF, attachments: Sequence[ReferralAttachment]) -> None:
    pdf.set_font("cjk", size=12)
    pdf.cell(pdf.epw, 8, "附检查结果", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("cjk", size=10)
    if not attachments:
        pdf.cell(pdf.epw, 6.5, "无", new_x="LMARGIN", new_y="NEXT")
    for n, a in enumerate(attachments, start=1):
        what = f"{n}. {word(a.kind)}  {'/'.join(a.modalities)}  {dicom_date(a.study_date)}"
        if a.description:
            what += f"  {a.description}"
        if a.impression:
            what += f"  诊断意见：{a.impression}"
        pdf.multi_cell(pdf.epw, 6, what, new_x="LMARGIN", new_y="NEXT")
        pdf.set_text_color(90, 90, 90)
        pdf.set_font("cjk", size=8)
        pdf.cell(
            pdf.epw, 5, f"   检查实例 UID：{a.study_instance_uid}", new_x="LMARGIN", new_y="NEXT"
        )
        pdf.set_text_color(0, 0, 0)
        pdf.set_font("cjk", size=10)
    pdf.ln(1)


def _signed(pdf: FPDF, who: str | None, label: str, at: datetime | None) -> None:
    pdf.ln(4)
    pdf.set_font("cjk", size=10.5)
    half = pdf.epw / 2
    pdf.cell(half, 7, f"{label}：{who or ''}")
    pdf.cell(half, 7, f"时间：{beijing_time(at)}", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("cjk", size=8)
    pdf.set_text_color(90, 90, 90)
    pdf.multi_cell(
        pdf.epw,
        5,
        "本单经县域远程诊断网络双向转诊系统生成；请随患者携带，并妥善保管。",
        new_x="LMARGIN",
        new_y="NEXT",
    )


def _form(sheet: ReferralSheet, font: Path) -> bytes:
    r = sheet.referral
    pdf = _start("双向转诊单（转出）", sheet.papers.from_name, r.created_at, font)
    _patient(pdf, sheet)
    _section(pdf, "初步诊断", r.preliminary_diagnosis)
    _section(pdf, "转诊原因", r.reason)
    _section(pdf, "病史摘要", r.history)
    _section(pdf, "检查所见", r.findings)
    _attachments(pdf, sheet.attachments)
    _signed(pdf, sheet.papers.created_by_name, "转诊医生", r.created_at)
    return bytes(pdf.output())


def _answer(sheet: ReferralSheet, font: Path) -> bytes:
    r, p = sheet.referral, sheet.papers
    made = r.responded_at or r.created_at
    pdf = _start("接诊单", p.to_name, made, font)
    _patient(pdf, sheet)
    accepted = r.status is not ReferralStatus.DECLINED
    _pairs(
        pdf,
        [
            (
                "接诊结果",
                "同意接诊" if accepted else "不予接诊",
                "绿色通道",
                "是" if r.green_channel else "否",
            ),
            ("接诊科室", r.department or "", "接诊医生", r.doctor or ""),
            ("预约时间", beijing_time(r.appointment_at), "到诊时间", beijing_time(r.arrived_at)),
        ],
    )
    if not accepted:
        _section(pdf, "不予接诊原因", r.decline_reason)
    if r.arrived_at is not None:
        _pairs(pdf, [("到诊登记", p.arrived_by_name or "", "", "")])
    _signed(pdf, p.responded_by_name, "答复人", r.responded_at)
    return bytes(pdf.output())


def _return(sheet: ReferralSheet, font: Path) -> bytes:
    r, p = sheet.referral, sheet.papers
    made = r.returned_at or r.created_at
    pdf = _start("双向转诊单（转回）", p.to_name, made, font)
    _patient(pdf, sheet)
    kind = word(r.return_kind) if r.return_kind else ""
    _pairs(
        pdf,
        [
            ("小结类型", kind, "转回机构", p.from_name),
            ("到诊时间", beijing_time(r.arrived_at), "转回时间", beijing_time(r.returned_at)),
        ],
    )
    _section(pdf, "诊断及治疗经过", r.return_diagnosis)
    _section(pdf, "医嘱及处方", r.return_orders)
    _section(pdf, "随访及康复指导", r.return_follow_up)
    _signed(pdf, p.returned_by_name, "转回医生", r.returned_at)
    return bytes(pdf.output())


_RENDER = {
    ReferralDocumentKind.FORM: _form,
    ReferralDocumentKind.ANSWER: _answer,
    ReferralDocumentKind.RETURN: _return,
}


def render_referral_pdf(
    sheet: ReferralSheet, kind: ReferralDocumentKind, *, font: Path = CJK_FONT
) -> bytes:
    """One document of the referral as PDF bytes (A4)."""
    return _RENDER[kind](sheet, font)
