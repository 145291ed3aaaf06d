"""The 12-lead sheet: page size, physical scale, grid, text, PNG/PDF output, every real file."""

from __future__ import annotations

import re
import struct
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from ecg import STANDARD_LEADS, EcgFormat, EcgRecord, Sex
from ecg.record import EcgDevice, EcgPatient
from ecg.render import (
    GRID_BOLD_BGR,
    GRID_FINE_BGR,
    PACER_MARK_BGR,
    SHEET_LAYOUT,
    EcgRenderError,
    SheetFilter,
    SheetHeader,
    _Fonts,
    _statement_texts,
    filter_for_sheet,
    render_pdf,
    render_png,
    render_sheet,
)

from .conftest import FORMATS, read_file
from .signal_support import synthetic_record

FONT_PATH = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
PX_PER_MM_300 = 300 / 25.4  # 11.811
Image = npt.NDArray[np.uint8]


@pytest.fixture(scope="module")
def font_bytes() -> bytes:
    if not FONT_PATH.is_file():
        pytest.fail(
            f"{FONT_PATH} is missing: install the Debian package fonts-noto-cjk "
            "(`make test` installs it; by hand: sudo apt-get install fonts-noto-cjk)"
        )
    return FONT_PATH.read_bytes()


def synthetic(
    leads: tuple[str, ...] = STANDARD_LEADS,
    *,
    rate_hz: float = 500.0,
    seconds: float = 10.0,
    signals: Mapping[str, npt.NDArray[np.float64]] | None = None,
) -> EcgRecord:
    n = round(rate_hz * seconds)
    samples = np.zeros((len(leads), n))
    for name, values in (signals or {}).items():
        samples[leads.index(name)] = values
    return EcgRecord(
        leads=leads, samples_uv=samples, sampling_rate_hz=rate_hz, source_format=EcgFormat.CSV
    )


def square_pulse(rate_hz: float, seconds: float, start_s: float, stop_s: float) -> np.ndarray:
    t = np.arange(round(rate_hz * seconds)) / rate_hz
    return np.where((t >= start_s) & (t < stop_s), 1000.0, 0.0)  # 1 mV


def ink(image: Image) -> npt.NDArray[np.bool_]:
    """Black trace and text pixels (the pink and red grid has a bright red channel)."""
    return np.asarray(image.max(axis=2) < 128)


def px(mm: float) -> int:
    return round(mm * PX_PER_MM_300)


def ink_centre_row(image: Image, x: int, top_mm: float, bottom_mm: float) -> float:
    rows = np.flatnonzero(ink(image)[px(top_mm) : px(bottom_mm), x])
    assert rows.size, f"no ink in column {x}"
    return float(px(top_mm) + rows.mean())


def runs(mask: npt.NDArray[np.bool_]) -> list[float]:
    """Centres of the runs of True in a 1-D mask."""
    padded = np.concatenate([[False], mask, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return [(start + stop - 1) / 2 for start, stop in zip(edges[::2], edges[1::2], strict=True)]


HEADER = SheetHeader(
    patient_name="王小明",
    patient_id="HB-0001",
    sex="男",
    age="54岁",
    facility="淮滨县新里镇卫生院",
    acquired_at="2024-03-01 09:12:30",
    device="Contec ECG90A",
    measurements={"heart_rate_bpm": 72, "pr_ms": 160, "qrs_ms": 92, "qt_ms": 380},
    statements=("窦性心律", "正常心电图"),
)


@pytest.fixture(scope="module")
def pulse_sheet(font_bytes: bytes) -> Image:
    record = synthetic(signals={"II": square_pulse(500.0, 10.0, 1.0, 2.0)})
    return render_sheet(record, header=HEADER, font_bytes=font_bytes)


def test_page_is_a4_landscape_at_the_resolution(pulse_sheet: Image, font_bytes: bytes) -> None:
    assert pulse_sheet.shape == (2480, 3508, 3)  # 210 × 297 mm at 300 dpi
    assert pulse_sheet.dtype == np.uint8
    small = render_sheet(synthetic(), header=HEADER, font_bytes=font_bytes, dpi=150)
    assert small.shape == (1240, 1754, 3)


def test_one_millivolt_is_ten_millimetres(pulse_sheet: Image) -> None:
    row = 3  # the lead II rhythm strip
    top, bottom = SHEET_LAYOUT.row_top_mm(row), SHEET_LAYOUT.row_top_mm(row + 1)
    baseline = ink_centre_row(pulse_sheet, px(SHEET_LAYOUT.x_mm(0.5)), top, bottom)
    plateau = ink_centre_row(pulse_sheet, px(SHEET_LAYOUT.x_mm(1.5)), top, bottom)
    assert baseline == pytest.approx(SHEET_LAYOUT.baseline_mm(row) * PX_PER_MM_300, abs=1.5)
    assert baseline - plateau == pytest.approx(118.11, abs=1.5)


def test_one_second_is_twenty_five_millimetres(pulse_sheet: Image) -> None:
    for row, start_s in ((3, 0.0), (1, 0.0)):  # rhythm strip, and lead II in the first column
        half_way_mm = SHEET_LAYOUT.baseline_mm(row) - 5.0
        line = ink(pulse_sheet)[px(half_way_mm)]
        window = slice(px(SHEET_LAYOUT.x_mm(start_s + 0.5)), px(SHEET_LAYOUT.x_mm(2.4)))
        edges = [px(SHEET_LAYOUT.x_mm(start_s + 0.5)) + c for c in runs(line[window])]
        assert len(edges) == 2, edges  # the rising and the falling edge
        assert edges[1] - edges[0] == pytest.approx(295.3, abs=1.5)
        assert edges[0] == pytest.approx(SHEET_LAYOUT.x_mm(0.999) * PX_PER_MM_300, abs=1.5)


def test_calibration_pulse_at_the_start_of_every_row(pulse_sheet: Image) -> None:
    left = SHEET_LAYOUT.grid_left_mm
    for row in range(4):
        top, bottom = SHEET_LAYOUT.row_top_mm(row), SHEET_LAYOUT.row_top_mm(row + 1)
        base = ink_centre_row(pulse_sheet, px(left + 1.5), top, bottom)
        high = ink_centre_row(pulse_sheet, px(left + 5.0), top, bottom)
        assert base - high == pytest.approx(118.11, abs=1.5)
        # 200 ms wide: the two vertical edges 5 mm apart
        line = ink(pulse_sheet)[px(SHEET_LAYOUT.baseline_mm(row) - 5.0)]
        edges = runs(line[px(left) : px(left + 9.5)])
        assert len(edges) == 2
        assert edges[1] - edges[0] == pytest.approx(59.06, abs=1.5)


def test_grid_bold_lines_every_five_and_fine_lines_every_millimetre(
    font_bytes: bytes,
) -> None:
    sheet = render_sheet(synthetic(), header=HEADER, font_bytes=font_bytes)
    y = px(SHEET_LAYOUT.grid_top_mm + 7.5)  # between fine lines, clear of labels and traces
    line = sheet[y]
    bold = runs(np.all(line == GRID_BOLD_BGR, axis=1))
    fine = runs(np.all(line == GRID_FINE_BGR, axis=1))
    assert len(bold) == round(SHEET_LAYOUT.grid_width_mm / 5) + 1
    np.testing.assert_allclose(np.diff(bold), 5 * PX_PER_MM_300, atol=1.0)
    assert bold[0] == pytest.approx(SHEET_LAYOUT.grid_left_mm * PX_PER_MM_300, abs=1.0)
    assert len(fine) == round(SHEET_LAYOUT.grid_width_mm) + 1 - len(bold)
    all_lines = np.sort(np.concatenate([bold, fine]))
    np.testing.assert_allclose(np.diff(all_lines), PX_PER_MM_300, atol=1.0)
    # and horizontally: bold rows every 5 mm down a column between fine lines
    column = sheet[:, px(SHEET_LAYOUT.grid_left_mm + 0.5)]
    bold_rows = runs(np.all(column == GRID_BOLD_BGR, axis=1))
    assert len(bold_rows) == round(SHEET_LAYOUT.grid_height_mm / 5) + 1
    np.testing.assert_allclose(np.diff(bold_rows), 5 * PX_PER_MM_300, atol=1.0)


def test_huge_amplitudes_are_clipped_at_the_row(font_bytes: bytes) -> None:
    t = np.arange(5000) / 500.0
    huge = 50_000.0 * np.sign(np.sin(2 * np.pi * 1.3 * t))  # ±50 mV
    flat = render_sheet(synthetic(), header=HEADER, font_bytes=font_bytes)
    clipped = render_sheet(synthetic(signals={"I": huge}), header=HEADER, font_bytes=font_bytes)
    changed = np.flatnonzero(np.any(flat != clipped, axis=(1, 2)))
    assert changed.size
    assert changed.min() >= px(SHEET_LAYOUT.row_top_mm(0))
    assert changed.max() < px(SHEET_LAYOUT.row_top_mm(1))


def test_missing_leads_are_flat_and_noted(font_bytes: bytes) -> None:
    limb = ("I", "II", "III", "aVR", "aVL", "aVF")
    signals = {lead: square_pulse(500.0, 10.0, 0.0, 10.0) * 0.5 for lead in limb}
    sheet = render_sheet(synthetic(limb, signals=signals), header=HEADER, font_bytes=font_bytes)
    for row in range(3):
        base = SHEET_LAYOUT.baseline_mm(row)
        cell = ink(sheet)[
            px(SHEET_LAYOUT.row_top_mm(row) + 6) : px(SHEET_LAYOUT.row_top_mm(row + 1)),
            px(SHEET_LAYOUT.x_mm(5.1)) : px(SHEET_LAYOUT.x_mm(7.4)),
        ]  # the V1–V3 cells below their labels, clear of the lead-change mark
        rows = np.flatnonzero(cell.any(axis=1)) + px(SHEET_LAYOUT.row_top_mm(row) + 6)
        on_baseline = np.abs(rows - base * PX_PER_MM_300) <= 2
        assert on_baseline.any()  # the flat "—" line
        assert (~on_baseline).any()  # the "not recorded" note below it
        assert rows[~on_baseline].min() > base * PX_PER_MM_300  # nothing above: flat
        dashed = cell[px(base) - px(SHEET_LAYOUT.row_top_mm(row) + 6)]
        assert 0.2 < dashed.mean() < 0.8  # a dashed line, not a trace


def test_chinese_header_text_is_drawn(font_bytes: bytes) -> None:
    record = synthetic()
    region = (slice(0, px(SHEET_LAYOUT.grid_top_mm - 0.5)), slice(None))

    def header_pixels(name: str) -> Image:
        header = replace(HEADER, patient_name=name)
        return render_sheet(record, header=header, font_bytes=font_bytes, dpi=150)[region]

    chinese, latin = header_pixels("王小明"), header_pixels("Wang Xiaoming")
    assert np.any(chinese != latin)
    wang, tian = header_pixels("王"), header_pixels("田")
    missing_glyph = header_pixels("\U000f0000")  # private use: the font has no glyph
    name_box = (slice(0, 70), slice(60, 150))  # the name's place at 150 dpi (x 15 mm)
    assert ink(wang[name_box]).sum() > 50  # the glyph put ink on the paper
    assert np.any(wang[name_box] != tian[name_box])
    assert np.any(wang[name_box] != missing_glyph[name_box])  # a real glyph, not a box


def test_header_from_record(font_bytes: bytes) -> None:
    record = read_file("contec_ecg90a/0000037.ECG")
    header = SheetHeader.from_record(record, facility="淮滨县新里镇卫生院")
    assert header.sex == "男"
    assert header.age == "54岁"
    assert header.acquired_at == "2020-11-15 12:59:50"
    assert header.device == "Contec ECG90A"
    assert header.patient_id == "0000037"
    assert header.notes == record.warnings
    english = SheetHeader.from_record(record, language="en", patient_name="Niccolo B.")
    assert (english.sex, english.age, english.patient_name) == ("male", "54 y", "Niccolo B.")


def test_header_validation() -> None:
    with pytest.raises(EcgRenderError, match="unknown key 'hr'"):
        SheetHeader(measurements={"hr": 70})
    with pytest.raises(EcgRenderError, match="finite number"):
        SheetHeader(measurements={"pr_ms": float("nan")})
    with pytest.raises(EcgRenderError, match="patient_name"):
        SheetHeader(patient_name=None)  # type: ignore[arg-type]
    with pytest.raises(EcgRenderError, match="statements"):
        SheetHeader(statements="窦性心律")  # type: ignore[arg-type]
    assert SheetHeader(measurements={"qt_ms": None}).measurements == {"qt_ms": None}


def test_bad_font_and_resolution_are_refused(font_bytes: bytes) -> None:
    with pytest.raises(EcgRenderError, match="not a TrueType"):
        render_sheet(synthetic(), header=HEADER, font_bytes=b"not a font")
    with pytest.raises(EcgRenderError, match="dpi"):
        render_sheet(synthetic(), header=HEADER, font_bytes=font_bytes, dpi=20)


def test_png_decodes_and_states_its_resolution(font_bytes: bytes) -> None:
    png = render_png(synthetic(), header=HEADER, font_bytes=font_bytes)
    decoded = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    assert decoded is not None
    assert decoded.shape == (2480, 3508, 3)
    phys = png.index(b"pHYs")
    x_ppm, y_ppm, unit = struct.unpack(">IIB", png[phys + 4 : phys + 13])
    assert (x_ppm, y_ppm, unit) == (11811, 11811, 1)  # 300 dpi in pixels per metre
    assert render_png(synthetic(), header=HEADER, font_bytes=font_bytes) == png


def test_pdf_is_one_a4_landscape_page_with_the_full_raster(font_bytes: bytes) -> None:
    pdf = render_pdf(synthetic(), header=HEADER, font_bytes=font_bytes)
    assert pdf.startswith(b"%PDF")
    boxes = re.findall(rb"/MediaBox\s*\[\s*([\d.\s]+)\]", pdf)
    assert len(boxes) == 1
    assert [float(v) for v in boxes[0].split()] == pytest.approx([0, 0, 841.89, 595.28])
    assert re.search(rb"/Width 3508\b", pdf)
    assert re.search(rb"/Height 2480\b", pdf)
    assert len(re.findall(rb"/Type\s*/Page\b", pdf)) == 1
    assert render_pdf(synthetic(), header=HEADER, font_bytes=font_bytes) == pdf


def test_other_lead_sets_render(font_bytes: bytes) -> None:
    three = synthetic(("I", "II", "III"), rate_hz=150.0, seconds=30.0)
    others = synthetic(("X", "Y", "Z"), seconds=3.0)  # no standard lead, and short
    short = synthetic(seconds=1.2)
    for record in (three, others, short):
        sheet = render_sheet(record, header=SheetHeader(), font_bytes=font_bytes, dpi=100)
        assert sheet.shape == (827, 1169, 3)


def test_a_record_with_patient_and_device_renders_in_english(font_bytes: bytes) -> None:
    record = EcgRecord(
        leads=STANDARD_LEADS,
        samples_uv=np.zeros((12, 5000)),
        sampling_rate_hz=500.0,
        patient=EcgPatient(name="Clark", sex=Sex.MALE, age_years=0.5),
        device=EcgDevice(manufacturer="Mortara", model="ELI250", serial_number="7"),
        device_statements=("Sinus rhythm. " * 30,),  # long: wrapped and cut
        source_format=EcgFormat.HL7_AECG,
    )
    header = SheetHeader.from_record(record, language="en")
    assert header.age == "6 mo"
    assert header.device == "Mortara ELI250 SN 7"
    sheet = render_sheet(record, header=header, font_bytes=font_bytes, dpi=100)
    assert sheet.shape == (827, 1169, 3)


REAL_FILES = sorted(
    str(path.relative_to(FORMATS))
    for path in FORMATS.rglob("*")
    if path.is_file() and path.suffix not in (".dat", ".xyz")
)


@pytest.mark.parametrize("name", REAL_FILES)
def test_every_real_file_renders(name: str, font_bytes: bytes) -> None:
    record = read_file(name)
    header = SheetHeader.from_record(record, facility="淮滨县人民医院")
    sheet = render_sheet(record, header=header, font_bytes=font_bytes, dpi=100)
    assert sheet.shape == (827, 1169, 3)
    scale = 100 / 25.4
    for row in range(4):  # every row has a calibration pulse and a trace
        band = ink(sheet)[
            round(SHEET_LAYOUT.row_top_mm(row) * scale) : round(
                SHEET_LAYOUT.row_top_mm(row + 1) * scale
            ),
            round(SHEET_LAYOUT.x_mm(0.1) * scale) : round(SHEET_LAYOUT.x_mm(2.4) * scale),
        ]
        assert band.any(axis=0).mean() > 0.9


def test_the_header_prints_the_acquisition_time_in_the_networks_zone() -> None:
    record = synthetic_record()
    record = replace(record, acquired_at=datetime(2026, 11, 30, 23, 5, tzinfo=UTC))
    beijing = SheetHeader.from_record(record, timezone=ZoneInfo("Asia/Shanghai"))
    assert beijing.acquired_at == "2026-12-01 07:05:00 UTC+08:00"
    assert SheetHeader.from_record(record).acquired_at == "2026-11-30 23:05:00 UTC+00:00"


def _mains_share(record: EcgRecord) -> float:
    lead = record.lead("II") - record.lead("II").mean()
    spectrum = np.abs(np.fft.rfft(lead))
    freqs = np.fft.rfftfreq(lead.size, 1 / record.sampling_rate_hz)
    return float(spectrum[(freqs > 49) & (freqs < 51)].max() / spectrum[freqs > 0.5].max())


def test_the_sheet_filter_takes_the_mains_hum_and_wander_off_the_traces_and_says_so() -> None:
    record = read_file("contec_ecg90a/0000037.ECG")  # a village cart's strong 50 Hz hum
    clean, label = filter_for_sheet(record)
    assert _mains_share(clean) < 0.05 * _mains_share(record)
    assert label == "滤波 0.67–100 Hz · 50 Hz 陷波"
    assert clean.leads == record.leads
    assert clean.patient == record.patient
    muscle, label = filter_for_sheet(record, SheetFilter.MUSCLE, language="en")
    assert label == "filter 0.67–40 Hz · 50 Hz notch"
    high = np.fft.rfftfreq(record.n_samples, 1 / record.sampling_rate_hz) > 60
    assert (
        np.abs(np.fft.rfft(muscle.lead("II")))[high].sum()
        < np.abs(np.fft.rfft(clean.lead("II")))[high].sum()
    )
    unfiltered, label = filter_for_sheet(record, SheetFilter.NONE)
    assert unfiltered is record
    assert label == "未滤波"


def test_a_low_rate_recording_keeps_what_its_rate_can_carry() -> None:
    # 150 Hz: no 100 Hz low-pass to apply, the 50 Hz notch still fits under Nyquist
    _, label = filter_for_sheet(read_file("scp_ecg/healforce_62.SCP"))
    assert label == "滤波 ≥ 0.67 Hz · 50 Hz 陷波"


def test_the_filter_is_printed_beside_the_scale(font_bytes: bytes) -> None:
    record = synthetic()
    footer = (slice(px(SHEET_LAYOUT.grid_top_mm + SHEET_LAYOUT.grid_height_mm), None), slice(None))
    plain = render_sheet(record, header=HEADER, font_bytes=font_bytes)[footer]
    labelled = render_sheet(
        record,
        header=replace(HEADER, filters="滤波 0.67–100 Hz · 50 Hz 陷波"),
        font_bytes=font_bytes,
    )[footer]
    assert ink(labelled).sum() > ink(plain).sum()


def test_pacemaker_stimuli_are_marked_above_every_trace_they_fall_in(font_bytes: bytes) -> None:
    record = synthetic()
    spike = round(1.0 * record.sampling_rate_hz)  # 1 s: the first column and the strip

    def marks(pacer_spikes: list[int]) -> npt.NDArray[np.bool_]:
        sheet = render_sheet(
            record, header=HEADER, font_bytes=font_bytes, dpi=150, pacer_spikes=pacer_spikes
        )
        diff = np.abs(sheet.astype(int) - np.array(PACER_MARK_BGR)).sum(axis=2)
        return np.asarray(diff < 60)

    assert not marks([]).any()
    found = marks([spike])
    rows, cols = np.nonzero(found)
    px150 = 150 / 25.4
    x = (SHEET_LAYOUT.trace_left_mm + 25.0 * 1.0) * px150
    assert np.all(np.abs(cols - x) <= 2)
    # one mark per row: the three cells of the first column and the rhythm strip
    row_of = {
        row
        for r in rows
        for row in range(SHEET_LAYOUT.n_rows)
        if SHEET_LAYOUT.row_top_mm(row) * px150 <= r < SHEET_LAYOUT.row_top_mm(row + 1) * px150
    }
    assert row_of == {0, 1, 2, 3}


def _statement_lines(header: SheetHeader, font_bytes: bytes) -> list[str]:
    fonts = _Fonts(font_bytes, PX_PER_MM_300)
    return [t.text for t in _statement_texts(header, fonts, PX_PER_MM_300)]


def test_the_carts_statements_are_printed_on_a_line_of_their_own(font_bytes: bytes) -> None:
    record = read_file("philips_xml/129DYPRG_v1.03.XML")
    header = SheetHeader.from_record(record, statements=["窦性心动过缓", "下壁心肌梗死"])
    assert header.device_statements == record.device_statements
    lines = _statement_lines(header, font_bytes)
    assert lines[1:3] == ["窦性心动过缓", "下壁心肌梗死"]
    cart = lines[3]
    assert cart.startswith("机器诊断: Sinus bradycardia; Nonspecific")
    assert cart.endswith("…")  # five statements cut to one line
    # the file's statements are printed once: as ours when nothing of ours is given
    alone = SheetHeader.from_record(record)
    assert alone.device_statements == ()
    assert not any(line.startswith("机器诊断") for line in _statement_lines(alone, font_bytes))


def test_the_carts_line_keeps_its_place_below_many_statements_of_ours(
    font_bytes: bytes,
) -> None:
    header = replace(
        HEADER,
        language="en",
        statements=tuple(f"Statement number {i}" for i in range(10)),
        device_statements=("Sinus rhythm",),
    )
    lines = _statement_lines(header, font_bytes)
    assert len(lines) == 1 + 6  # the heading, five of ours, the cart's
    assert lines[-2].endswith("…")
    assert lines[-1] == "cart: Sinus rhythm"
    with_cart = render_sheet(synthetic(), header=header, font_bytes=font_bytes, dpi=150)
    without = render_sheet(
        synthetic(), header=replace(header, device_statements=()), font_bytes=font_bytes, dpi=150
    )
    column = (
        slice(0, round(SHEET_LAYOUT.grid_top_mm * 150 / 25.4)),
        slice(round(178 * 150 / 25.4), None),
    )
    assert np.any(with_cart[column] != without[column])
