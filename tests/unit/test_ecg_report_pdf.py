"""The printable ECG report: measurements and statements on the first page, each sheet on an
A4 landscape page of its own; an ECG that could not be drawn is said so, and the report is
still made."""

from __future__ import annotations

import io
from dataclasses import replace

import pypdf

from ecg.render import SheetHeader, render_png
from storage.records import Conclusion
from teleradiology.core.report_pdf import CJK_FONT, ReportEcg, render_report_pdf
from tests.unit.ecg.signal_support import synthetic_record
from tests.unit.test_words import _document

MEASURED = {"heart_rate_bpm": 71.6, "pr_ms": 158.0, "qrs_ms": 92.0, "qt_ms": 380.0}


def test_each_drawn_sheet_has_its_page_and_an_undrawn_one_is_said_so() -> None:
    record = synthetic_record()
    sheet = render_png(record, header=SheetHeader(), font_bytes=CJK_FONT.read_bytes(), dpi=100)
    doc = replace(_document(Conclusion.ABNORMAL), specialty="ecg", modalities=("ECG",))
    ecgs = [
        ReportEcg(measurements=MEASURED, statements=("窦性心律",), sheet_png=sheet),
        ReportEcg(measurements={}, statements=(), sheet_png=None),
    ]
    pdf = pypdf.PdfReader(io.BytesIO(render_report_pdf(doc, ecgs=ecgs)))
    assert len(pdf.pages) == 2  # the undrawn ECG has no page
    text = "".join(pdf.pages[0].extract_text().replace("\x00", "").split())
    assert text.startswith("淮滨县人民医院心电图诊断报告")
    assert "心电图测量与自动分析（1）" in text
    assert "心电图测量与自动分析（2）" in text
    assert "心率：72次/分" in text  # rounded as a cart prints it
    assert "PR间期：158ms" in text
    assert "QTc：—" in text  # not measured
    assert "自动分析（需医师确认）：窦性心律" in text
    assert "12导联心电图见第2页" in text
    assert "12导联心电图未能从存储的记录绘制" in text
    landscape = pdf.pages[1]
    assert float(landscape.mediabox.width) > float(landscape.mediabox.height)
    (image,) = landscape.images
    assert image.image is not None
    assert image.image.size == (1169, 827)  # 297 × 210 mm at 100 dpi
