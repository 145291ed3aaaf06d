"""Files as carts really write them: each variant built here from a real file of
tests/data/ecg/formats (or from a synthetic ECG), read as the cart meant it or refused in
words the sending clinic can act on."""

from __future__ import annotations

import codecs
import io
import re
from dataclasses import replace

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from ecg import EcgFormat, EcgFormatError, EcgRecord, detect_format, read_ecg
from ecg.analysis import analyze_ecg
from ecg.errors import EcgError
from ecg.formats import read_contec_ecg90a, read_dicom_waveform, read_hl7_aecg, read_philips_xml
from ecg.formats._common import normalize_lead_name
from ecg.statements import StatementCode

from .conftest import FORMATS
from .signal_support import synthetic_lead, synthetic_record

CONTEC = (FORMATS / "contec_ecg90a/0000053.ECG").read_bytes()
HL7 = (FORMATS / "hl7_aecg/Example_aECG.xml").read_bytes()
PHILIPS = (FORMATS / "philips_xml/129DYPRG_v1.03.XML").read_bytes()
GE = (FORMATS / "ge_muse_xml/braveheart_example1.xml").read_bytes()
DICOM = (FORMATS / "dicom_waveform/waveform_ecg.dcm").read_bytes()

# --- Contec: with or without the zero trailer ------------------------------------------


def test_contec_without_its_zero_trailer_reads_every_sample() -> None:
    assert CONTEC[-37:] == bytes(37)
    with_trailer = read_contec_ecg90a(CONTEC)
    without = read_ecg(CONTEC[:-37])
    assert without.source_format is EcgFormat.CONTEC_ECG90A
    assert without.leads == with_trailer.leads
    np.testing.assert_array_equal(without.samples_uv, with_trailer.samples_uv)
    assert without.patient == with_trailer.patient


def test_contec_trailer_holding_data_is_refused() -> None:
    damaged = CONTEC[:-37] + b"\x01" * 37
    with pytest.raises(EcgFormatError, match=r"zero trailer but hold data: .*send it again"):
        read_contec_ecg90a(damaged)


@pytest.mark.parametrize("cut", [1, 7, 15])
def test_contec_cut_inside_a_row_is_refused_with_what_to_do(cut: int) -> None:
    with pytest.raises(EcgFormatError, match="cut short in transfer, send it again from the cart"):
        read_contec_ecg90a(CONTEC[:-37][:-cut])


def test_contec_header_alone_is_refused() -> None:
    with pytest.raises(EcgFormatError, match="holds no ECG samples"):
        read_contec_ecg90a(CONTEC[:43])
    with pytest.raises(EcgFormatError, match="holds no ECG samples"):
        read_contec_ecg90a(CONTEC[:43] + bytes(37))


# --- XML recognised by its parsed root, in any declared encoding -----------------------


def _declared(data: bytes, encoding: str) -> str:
    text = data.decode("utf-8")
    return re.sub(r'encoding="[^"]*"', f'encoding="{encoding}"', text, count=1)


@pytest.mark.parametrize(
    ("codec", "bom"),
    [
        ("utf-16-le", codecs.BOM_UTF16_LE),
        ("utf-16-le", b""),
        ("utf-16-be", codecs.BOM_UTF16_BE),
        ("utf-16-be", b""),
    ],
)
def test_utf16_aecg_with_and_without_byte_order_mark(codec: str, bom: bytes) -> None:
    data = bom + _declared(HL7, "UTF-16").encode(codec)
    assert detect_format(data) is EcgFormat.HL7_AECG
    record = read_ecg(data)
    np.testing.assert_array_equal(record.samples_uv, read_hl7_aecg(HL7).samples_uv)
    assert record.patient.name == "Clark"


def test_a_comment_with_tag_like_text_does_not_hide_the_root() -> None:
    text = HL7.decode("utf-8")
    root = text.index("<AnnotatedECG")
    data = (text[:root] + "<!-- <date omitted> <RestingECG> -->\n" + text[root:]).encode()
    assert detect_format(data) is EcgFormat.HL7_AECG
    assert read_ecg(data).leads == read_hl7_aecg(HL7).leads


def test_a_gb2312_declared_file_is_decoded_as_declared() -> None:
    text = _declared(GE, "GB2312")
    text = text.replace(
        "<RestingECG>",
        "<RestingECG><PatientDemographics><PatientLastName>张伟</PatientLastName>"
        "</PatientDemographics>",
        1,
    )
    record = read_ecg(text.encode("gb2312"))
    assert record.source_format is EcgFormat.GE_MUSE_XML
    assert record.patient.name == "张伟"


def test_a_known_root_in_a_foreign_namespace_is_refused_by_name() -> None:
    data = b'<?xml version="1.0"?><RestingECG xmlns="urn:example:other"><a/></RestingECG>'
    with pytest.raises(EcgFormatError, match=r"<RestingECG> in namespace 'urn:example:other'"):
        detect_format(data)


def test_malformed_xml_is_refused_as_xml() -> None:
    with pytest.raises(EcgFormatError, match="malformed XML"):
        detect_format(b"<?xml version='1.0'?><AnnotatedECG><unclosed></AnnotatedECG>")


# --- leads the cart marks missing, flat or lead-off leads ------------------------------


def _philips_inops(leads: set[str] | None, words: str = "LEADS OFF") -> bytes:
    text = PHILIPS.decode("utf-8")

    def mark(match: re.Match[str]) -> str:
        name = re.search(r'leadname="([^"]*)"', match.group(0))
        hit = leads is None or (name is not None and name.group(1) in leads)
        return (
            re.sub(r"<inops></inops>", f"<inops>{words}</inops>", match.group(0))
            if hit
            else match.group(0)
        )

    return re.sub(r"<leadmeasurement .*?</leadqualitystates>", mark, text, flags=re.S).encode()


def test_philips_with_every_lead_marked_missing_is_refused() -> None:
    with pytest.raises(
        EcgFormatError, match="the cart marked every lead as missing \\(LEADS OFF\\)"
    ):
        read_ecg(_philips_inops(None))


def test_philips_with_no_valid_channel_is_refused() -> None:
    text = PHILIPS.decode("utf-8")
    text = re.sub(r"<numberchannelsvalid>\s*12", "<numberchannelsvalid>0", text)
    with pytest.raises(EcgFormatError, match="check them and record the ECG again"):
        read_philips_xml(text.encode())


def test_philips_lead_marked_missing_is_left_out_and_named() -> None:
    record = read_philips_xml(_philips_inops({"V3"}))
    assert "V3" not in record.leads
    assert len(record.leads) == 11
    assert any("lead(s) V3 left out: the cart marked them missing" in w for w in record.warnings)


def test_one_railed_lead_is_named_lead_off_and_the_rest_measured() -> None:
    record = synthetic_record()
    samples = record.samples_uv.copy()
    # an electrode off: the amplifier sits on its rail, with an occasional swing
    samples[7] = np.where(np.arange(samples.shape[1]) % 97 < 60, 5000.0, -5000.0)
    analysis = analyze_ecg(
        EcgRecord(
            leads=record.leads,
            samples_uv=samples,
            sampling_rate_hz=record.sampling_rate_hz,
            source_format=EcgFormat.CSV,
        )
    )
    lead_off = [s for s in analysis.statements if s.code is StatementCode.LEAD_OFF]
    assert lead_off
    assert record.leads[7] in lead_off[0].text_en
    assert analysis.measurements["heart_rate_bpm"] == pytest.approx(72.0, abs=1.0)


def test_a_record_with_no_usable_lead_is_refused_without_measurements() -> None:
    lead, _ = synthetic_lead()
    railed = np.clip(lead * 50.0, -3000.0, 3000.0)  # every lead saturated most of the time
    record = EcgRecord(
        leads=("I", "II"),
        samples_uv=np.vstack([railed, np.full_like(lead, 812.0)]),
        sampling_rate_hz=500.0,
        source_format=EcgFormat.CSV,
    )
    with pytest.raises(EcgError, match=r"no usable lead: .*check the electrodes"):
        analyze_ecg(record)


# --- a 100 Hz aECG --------------------------------------------------------------------


def _aecg(fs: float, leads: dict[str, np.ndarray], scale_uv: float) -> bytes:
    increment_ms = 1000.0 / fs
    components = [
        '<component><sequence><code code="TIME_ABSOLUTE" codeSystem="2.16.840.1.113883.6.24"/>'
        '<value xsi:type="GLIST_TS"><head value="20240301101500.000"/>'
        f'<increment value="{increment_ms:g}" unit="ms"/></value></sequence></component>'
    ]
    for name, values in leads.items():
        digits = " ".join(str(int(v)) for v in np.round(values / scale_uv))
        components.append(
            f'<component><sequence><code code="MDC_ECG_LEAD_{name}"/>'
            f'<value xsi:type="SLIST_PQ"><origin value="0" unit="mV"/>'
            f'<scale value="{scale_uv / 1000.0:g}" unit="mV"/><digits>{digits}</digits>'
            "</value></sequence></component>"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<AnnotatedECG xmlns="urn:hl7-org:v3" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        '<component><series><code code="RHYTHM"/>'
        "<component><sequenceSet>" + "".join(components) + "</sequenceSet></component>"
        "<subjectOf><annotationSet><component><annotation>"
        '<code code="MDC_ECG_HEART_RATE"/><value xsi:type="PQ" value="60" unit="bpm"/>'
        "</annotation></component></annotationSet></subjectOf>"
        "</series></component></AnnotatedECG>"
    ).encode()


def test_a_100_hz_aecg_reads_in_microvolts_and_is_measured_with_the_low_rate_warning() -> None:
    lead, _ = synthetic_lead(fs=100.0, rate_bpm=60.0)
    data = _aecg(100.0, {"I": lead * 0.5, "II": lead}, scale_uv=5.0)
    record = read_ecg(data)
    assert record.source_format is EcgFormat.HL7_AECG
    assert record.sampling_rate_hz == 100.0
    assert record.n_samples == len(lead)
    np.testing.assert_allclose(record.lead("II"), lead, atol=2.5)  # 5 µV steps
    assert record.device_measurements == {"heart_rate_bpm": 60.0}
    assert any("low sampling rate 100 Hz" in w for w in record.warnings)
    analysis = analyze_ecg(record)
    assert StatementCode.LOW_SAMPLING_RATE in {s.code for s in analysis.statements}
    assert analysis.measurements["heart_rate_bpm"] is not None
    comparison = analysis.to_dict()["device_comparison"]
    assert [c["key"] for c in comparison] == ["heart_rate_bpm"]
    assert comparison[0]["device"] == 60.0


# --- DICOM under each waveform SOP class a cart uses -----------------------------------


def _dataset() -> Dataset:
    return pydicom.dcmread(io.BytesIO(DICOM))


def _bytes(dataset: Dataset) -> bytes:
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "sop_class",
    ["1.2.840.10008.5.1.4.1.1.9.1.2", "1.2.840.10008.5.1.4.1.1.9.1.3"],
    ids=["general_ecg", "ambulatory_ecg"],
)
def test_general_and_ambulatory_ecg_sop_classes_read_as_twelve_lead(sop_class: str) -> None:
    dataset = _dataset()
    dataset.SOPClassUID = pydicom.uid.UID(sop_class)
    dataset.file_meta.MediaStorageSOPClassUID = dataset.SOPClassUID
    record = read_ecg(_bytes(dataset))
    reference = read_dicom_waveform(DICOM)
    assert record.leads == reference.leads
    np.testing.assert_array_equal(record.samples_uv, reference.samples_uv)
    assert not any("SOP class" in w for w in record.warnings)


def _pressure_group(like: Dataset) -> Dataset:
    group = Dataset()
    group.MultiplexGroupLabel = "PRESSURE"
    group.WaveformOriginality = "ORIGINAL"
    group.NumberOfWaveformChannels = 1
    group.NumberOfWaveformSamples = 100
    group.SamplingFrequency = "100"
    group.WaveformBitsAllocated = 16
    group.WaveformSampleInterpretation = "SS"
    channel = Dataset()
    source = Dataset()
    source.CodeValue, source.CodingSchemeDesignator = "2:15936", "MDC"
    source.CodeMeaning = "Arterial blood pressure"
    channel.ChannelSourceSequence = Sequence([source])
    unit = Dataset()
    unit.CodeValue, unit.CodingSchemeDesignator, unit.CodeMeaning = "mm[Hg]", "UCUM", "mmHg"
    channel.ChannelSensitivityUnitsSequence = Sequence([unit])
    channel.ChannelSensitivity = "1"
    group.ChannelDefinitionSequence = Sequence([channel])
    group.WaveformData = np.arange(100, dtype="<i2").tobytes()
    return group


def test_hemodynamic_waveform_gives_its_ecg_group_by_mdc_source_codes() -> None:
    dataset = _dataset()
    dataset.SOPClassUID = pydicom.uid.UID("1.2.840.10008.5.1.4.1.1.9.2.1")
    dataset.file_meta.MediaStorageSOPClassUID = dataset.SOPClassUID
    ecg_group = dataset.WaveformSequence[0]
    ecg_group.MultiplexGroupLabel = "ECG"
    scp_to_mdc = {"5.6.3-9-": "2:"}
    for channel in ecg_group.ChannelDefinitionSequence:
        source = channel.ChannelSourceSequence[0]
        for old, new in scp_to_mdc.items():
            source.CodeValue = str(source.CodeValue).replace(old, new)
        source.CodingSchemeDesignator = "MDC"
        source.CodeMeaning = "an ECG lead"  # the code alone names the lead
    dataset.WaveformSequence = Sequence([_pressure_group(ecg_group), *dataset.WaveformSequence])
    record = read_dicom_waveform(_bytes(dataset))
    reference = read_dicom_waveform(DICOM)
    assert record.leads == reference.leads
    np.testing.assert_array_equal(record.samples_uv, reference.samples_uv)


def test_hemodynamic_waveform_without_ecg_is_refused_in_words() -> None:
    dataset = _dataset()
    dataset.SOPClassUID = "1.2.840.10008.5.1.4.1.1.9.2.1"
    dataset.WaveformSequence = Sequence([_pressure_group(dataset.WaveformSequence[0])])
    with pytest.raises(EcgFormatError, match="Hemodynamic Waveform Storage object holds no ECG"):
        read_dicom_waveform(_bytes(dataset))


def test_channel_sensitivity_baseline_and_correction_are_honoured() -> None:
    dataset = _dataset()
    channel = dataset.WaveformSequence[0].ChannelDefinitionSequence[1]  # lead II
    channel.ChannelSensitivity = "2.5"
    channel.ChannelSensitivityCorrectionFactor = "0.8"
    channel.ChannelBaseline = "-40"
    unit = channel.ChannelSensitivityUnitsSequence[0]
    unit.CodeValue = "mV"
    data = _bytes(dataset)
    record = read_dicom_waveform(data)
    expected = pydicom.dcmread(io.BytesIO(data)).waveform_array(0)[:, 1] * 1000.0  # mV → µV
    np.testing.assert_allclose(record.lead("II"), expected)


# --- the cart's own measurements beside ours --------------------------------------------


def test_the_analysis_json_carries_the_carts_measurements_and_flags_a_gap() -> None:
    # Mortara: QT 420 ms, as ours; its QTc of 443 is not Bazett's, ours is (test_real_files)
    record = read_hl7_aecg(HL7)
    result = analyze_ecg(record).to_dict()
    assert result["device_measurements"]["qt_ms"] == 420.0
    by_key = {c["key"]: c for c in result["device_comparison"]}
    assert by_key["qt_ms"]["beyond_tolerance"] is False
    assert by_key["qtc_ms"]["beyond_tolerance"] is True
    assert by_key["qtc_ms"]["difference"] > 10.0
    assert by_key["pr_ms"]["tolerance"] == 10.0
    assert by_key["pr_ms"]["beyond_tolerance"] is (abs(by_key["pr_ms"]["difference"]) > 10.0)
    assert any(w.startswith("qtc_ms: ours") and "443" in w for w in result["warnings"])


def test_the_sheet_prints_the_carts_measurements_beside_ours_and_marks_a_gap() -> None:
    from ecg.render import SHEET_LAYOUT, SheetHeader, _device_texts

    record = read_hl7_aecg(HL7)
    ours = {"heart_rate_bpm": 60.0, "pr_ms": 150.0, "qrs_ms": 120.0, "qt_ms": 462.0}
    header = SheetHeader.from_record(record, measurements=ours, language="en")
    assert dict(header.device_measurements) == record.device_measurements
    texts = {t.text for t in _device_texts(header, 158.0, SHEET_LAYOUT.grid_left_mm, 4.4)}
    assert "cart 148" in texts  # PR 150 against 148: within 10 ms
    assert "cart 120" in texts
    assert "! cart 420/443" in texts  # QT 462 against 420: marked for the reader
    # the cart's values alone on the sheet: not printed twice
    assert dict(SheetHeader.from_record(record).device_measurements) == {}


def test_the_carts_column_is_drawn_on_the_sheet() -> None:
    from ecg.render import SheetHeader, render_sheet

    from .test_render import FONT_PATH, PX_PER_MM_300

    record = read_hl7_aecg(HL7)
    ours = {"heart_rate_bpm": 60.0, "qt_ms": 462.0}
    header = SheetHeader.from_record(record, measurements=ours, language="en")
    font = FONT_PATH.read_bytes()
    with_cart = render_sheet(record, header=header, font_bytes=font)
    without = render_sheet(record, header=replace(header, device_measurements={}), font_bytes=font)
    changed = np.flatnonzero(np.any(with_cart != without, axis=(0, 2))) / PX_PER_MM_300
    assert changed.size
    assert changed.min() >= 157.0  # the column beside ours,
    assert changed.max() <= 178.0  # left of the statements


def test_a_hemodynamic_ecg_channel_known_by_its_label_alone() -> None:
    dataset = _dataset()
    dataset.SOPClassUID = pydicom.uid.UID("1.2.840.10008.5.1.4.1.1.9.2.1")
    for channel in dataset.WaveformSequence[0].ChannelDefinitionSequence:
        lead = normalize_lead_name(str(channel.ChannelSourceSequence[0].CodeMeaning))
        del channel.ChannelSourceSequence
        channel.ChannelLabel = f"ECG {lead}"
    dataset.WaveformSequence = Sequence([_pressure_group(dataset), *dataset.WaveformSequence])
    record = read_dicom_waveform(_bytes(dataset))
    assert record.leads == read_dicom_waveform(DICOM).leads


def _annotation(concept: tuple[str, str], channels: list[int], **values: object) -> Dataset:
    item = Dataset()
    item.ReferencedWaveformChannels = channels
    for keyword, value in values.items():
        setattr(item, keyword, value)
    name = Dataset()
    name.CodeValue, name.CodingSchemeDesignator, name.CodeMeaning = concept[0], "MDC", concept[1]
    item.ConceptNameCodeSequence = Sequence([name])
    return item


def test_dicom_coded_statements_lead_measurements_and_stimuli_of_the_ecg_group() -> None:
    """A cart's coded statement (concept code, no text), a per-lead measurement on one
    channel and a pace spike at a sample position, read from the ECG group when it is the
    second one (a pressure group first); what references the other group is left."""
    dataset = _dataset()
    dataset.WaveformSequence = Sequence([_pressure_group(dataset.WaveformSequence[0]),
                                         *dataset.WaveformSequence])  # fmt: skip
    finding = _annotation(("", ""), [2, 0])
    del finding.ConceptNameCodeSequence
    concept = Dataset()
    concept.CodeValue, concept.CodingSchemeDesignator = "SR-1", "99CART"
    concept.CodeMeaning = "Atrial fibrillation"
    finding.ConceptCodeSequence = Sequence([concept])
    r_v1 = _annotation(("2:2048", "R amplitude, per lead"), [2, 7], NumericValue="1350")
    elsewhere = _annotation(("2:2048", "R amplitude, per lead"), [1, 1], NumericValue="9")
    spike = _annotation(
        ("10:5120", "ventricular Antibradycardia pace spike"), [2, 0],
        TemporalRangeType="POINT", ReferencedSamplePositions=[1001, 2001],
    )  # fmt: skip
    dataset.WaveformAnnotationSequence = Sequence(
        [*dataset.WaveformAnnotationSequence, finding, r_v1, elsewhere, spike]
    )
    dataset.SOPClassUID = pydicom.uid.UID("1.2.840.10008.5.1.4.1.1.9.2.1")
    dataset.file_meta.MediaStorageSOPClassUID = dataset.SOPClassUID
    record = read_dicom_waveform(_bytes(dataset))
    assert record.device_statements == ("RITMO SINUSALE", "ECG NORMALE", "Atrial fibrillation")
    assert record.device_lead_measurements == {"V1": {"r_uv": 1350.0}}
    assert [(s.time_ms, s.triggers) for s in record.device_pacemaker_spikes] == [
        (1000.0, "QRS"), (2000.0, "QRS")
    ]  # fmt: skip


def test_a_damaged_dicom_lead_measurement_is_left_out_not_the_file() -> None:
    dataset = _dataset()
    dataset.WaveformAnnotationSequence = Sequence(
        [
            *dataset.WaveformAnnotationSequence,
            _annotation(("2:2048", "R amplitude, per lead"), [1, 1], NumericValue="nan"),
            _annotation(("2:2304", "S amplitude, per lead"), [1, 1], NumericValue="-220"),
        ]
    )
    assert read_dicom_waveform(_bytes(dataset)).device_lead_measurements == {"I": {"s_uv": -220.0}}
