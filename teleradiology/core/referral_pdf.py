"""The printable documents of a two-way referral, as PDFs in one language (zh-CN unless
asked): the referral form (转诊单) with its attached results, the receiving hospital's answer
(接诊单), and the return form (转回单) the referring clinic keeps. Made as report PDFs are
(fpdf2, the CJK font embedded); pure and CPU-bound: call it off the event loop."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from fpdf import FPDF

from storage.records import (
    Language,
    Referral,
    ReferralAttachment,
    ReferralDocumentKind,
    ReferralPapers,
    ReferralStatus,
)
from teleradiology.core.language import N_, gettext, word
from teleradiology.core.report_pdf import (
    CJK_FONT,
    beijing_time,
    dicom_date,
    label_pairs,
    labelled,
    sex_word,
    start_document,
)


@dataclass(frozen=True, kw_only=True)
class ReferralSheet:
    """A referral with what its documents print beside it."""

    referral: Referral
    papers: ReferralPapers
    attachments: Sequence[ReferralAttachment]


@dataclass(frozen=True)
class _Page:
    """A document being written, in its language."""

    pdf: FPDF
    language: Language

    def pairs(self, rows: Sequence[tuple[str, str, str, str]]) -> None:
        label_pairs(self.pdf, self.language, rows, least=24)
        self.pdf.ln(2)

    def section(self, heading: str, text: str | None) -> None:
        pdf = self.pdf
        pdf.set_font("cjk", size=12)
        pdf.cell(pdf.epw, 8, gettext(self.language)(heading), new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("cjk", size=10.5)
        pdf.multi_cell(pdf.epw, 6.5, text or "—", new_x="LMARGIN", new_y="NEXT")
        pdf.ln(1)

    def time(self, at: datetime | None) -> str:
        return beijing_time(at, self.language)


def _start(title: str, letterhead: str, made_at: datetime, font: Path, lang: Language) -> _Page:
    return _Page(start_document(gettext(lang)(title), letterhead, made_at, font), lang)


def _patient(page: _Page, sheet: ReferralSheet) -> None:
    r, p, lang = sheet.referral, sheet.papers, page.language
    digest = p.national_id_digest
    identity = (
        gettext(lang)(N_("已核验（散列 %(digest)s…）")) % {"digest": digest[:16]}
        if digest
        else gettext(lang)(N_("未登记"))
    )
    page.pairs(
        [
            (N_("姓名"), (r.patient_name or "").replace("^", " "), N_("患者编号"), p.patient_id),
            (
                N_("性别"),
                sex_word(p.patient_sex, lang),
                N_("出生日期"),
                dicom_date(p.patient_birth_date),
            ),
            (N_("建档机构"), p.issuer_name, N_("身份证"), identity),
            (N_("转出机构"), p.from_name, N_("转入机构"), p.to_name),
            (N_("转诊编号"), str(r.id), N_("紧急程度"), word(r.urgency, lang)),
        ]
    )


def _attachments(page: _Page, attachments: Sequence[ReferralAttachment]) -> None:
    pdf, lang = page.pdf, page.language
    _ = gettext(lang)
    pdf.set_font("cjk", size=12)
    pdf.cell(pdf.epw, 8, _(N_("附检查结果")), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("cjk", size=10)
    if not attachments:
        pdf.cell(pdf.epw, 6.5, _(N_("无")), new_x="LMARGIN", new_y="NEXT")
    for n, a in enumerate(attachments, start=1):
        what = f"{n}. {word(a.kind, lang)}  {'/'.join(a.modalities)}  {dicom_date(a.study_date)}"
        if a.description:
            what += f"  {a.description}"
        if a.impression:
            impression = labelled(lang, N_("诊断意见"), a.impression)
            what += f"  {impression}"
        pdf.multi_cell(pdf.epw, 6, what, new_x="LMARGIN", new_y="NEXT")
        pdf.set_text_color(90, 90, 90)
        pdf.set_font("cjk", size=8)
        uid = labelled(lang, N_("检查实例 UID"), a.study_instance_uid)
        pdf.cell(pdf.epw, 5, f"   {uid}", new_x="LMARGIN", new_y="NEXT")
        pdf.set_text_color(0, 0, 0)
        pdf.set_font("cjk", size=10)
    pdf.ln(1)


def _signed(page: _Page, who: str | None, label: str, at: datetime | None) -> None:
    pdf, lang = page.pdf, page.language
    pdf.ln(4)
    pdf.set_font("cjk", size=10.5)
    half = pdf.epw / 2
    pdf.cell(half, 7, labelled(lang, label, who or ""))
    pdf.cell(half, 7, labelled(lang, N_("时间"), page.time(at)), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("cjk", size=8)
    pdf.set_text_color(90, 90, 90)
    note = N_("本单经县域远程诊断网络双向转诊系统生成；请随患者携带，并妥善保管。")
    pdf.multi_cell(pdf.epw, 5, gettext(lang)(note), new_x="LMARGIN", new_y="NEXT")


def _form(sheet: ReferralSheet, font: Path, lang: Language) -> bytes:
    r = sheet.referral
    page = _start(N_("双向转诊单（转出）"), sheet.papers.from_name, r.created_at, font, lang)
    _patient(page, sheet)
    page.section(N_("初步诊断"), r.preliminary_diagnosis)
    page.section(N_("转诊原因"), r.reason)
    page.section(N_("病史摘要"), r.history)
    page.section(N_("检查所见"), r.findings)
    _attachments(page, sheet.attachments)
    _signed(page, sheet.papers.created_by_name, N_("转诊医生"), r.created_at)
    return bytes(page.pdf.output())


def _answer(sheet: ReferralSheet, font: Path, lang: Language) -> bytes:
    r, p = sheet.referral, sheet.papers
    _ = gettext(lang)
    page = _start(N_("接诊单"), p.to_name, r.responded_at or r.created_at, font, lang)
    _patient(page, sheet)
    accepted = r.status is not ReferralStatus.DECLINED
    page.pairs(
        [
            (
                N_("接诊结果"),
                _(N_("已同意")) if accepted else _(N_("已拒绝")),
                N_("绿色通道"),
                _(N_("是")) if r.green_channel else _(N_("否")),
            ),
            (N_("接诊科室"), r.department or "", N_("接诊医生"), r.doctor or ""),
            (
                N_("预约时间"),
                page.time(r.appointment_at),
                N_("到诊时间"),
                page.time(r.arrived_at),
            ),
        ]
    )
    if not accepted:
        page.section(N_("不予接诊原因"), r.decline_reason)
    if r.arrived_at is not None:
        page.pairs([(N_("到诊登记"), p.arrived_by_name or "", "", "")])
    _signed(page, p.responded_by_name, N_("答复人"), r.responded_at)
    return bytes(page.pdf.output())


def _return(sheet: ReferralSheet, font: Path, lang: Language) -> bytes:
    r, p = sheet.referral, sheet.papers
    page = _start(N_("双向转诊单（转回）"), p.to_name, r.returned_at or r.created_at, font, lang)
    _patient(page, sheet)
    kind = word(r.return_kind, lang) if r.return_kind else ""
    page.pairs(
        [
            (N_("小结类型"), kind, N_("转回机构"), p.from_name),
            (N_("到诊时间"), page.time(r.arrived_at), N_("转回时间"), page.time(r.returned_at)),
        ]
    )
    page.section(N_("诊断及治疗经过"), r.return_diagnosis)
    page.section(N_("医嘱及处方"), r.return_orders)
    page.section(N_("随访及康复指导"), r.return_follow_up)
    _signed(page, p.returned_by_name, N_("转回医生"), r.returned_at)
    return bytes(page.pdf.output())


_RENDER: dict[ReferralDocumentKind, Callable[[ReferralSheet, Path, Language], bytes]] = {
    ReferralDocumentKind.FORM: _form,
    ReferralDocumentKind.ANSWER: _answer,
    ReferralDocumentKind.RETURN: _return,
}


def render_referral_pdf(
    sheet: ReferralSheet,
    kind: ReferralDocumentKind,
    *,
    font: Path = CJK_FONT,
    language: Language = Language.ZH_CN,
) -> bytes:
    """One document of the referral as PDF bytes (A4), its words in `language`."""
    return _RENDER[kind](sheet, font, language)
