"""ECG file format readers: bytes in, :class:`~ecg.record.EcgRecord` out.

One module per format, each with a ``read_…`` function; :func:`detect_format` recognises a
file from its content (and, as a hint, its name) and :func:`read_ecg` dispatches.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable, Mapping
from pathlib import PurePath

from ecg.errors import EcgFormatError
from ecg.formats._common import local_name, namespace, parse_xml
from ecg.formats.contec import is_contec_ecg90a, read_contec_ecg90a
from ecg.formats.csv import read_csv
from ecg.formats.dicom_waveform import read_dicom_waveform
from ecg.formats.ge_muse import read_ge_muse
from ecg.formats.hl7_aecg import read_hl7_aecg
from ecg.formats.philips_xml import read_philips_xml
from ecg.formats.scp_ecg import (
    is_healforce_scp,
    is_scp_ecg,
    read_scp_ecg,
    read_scp_ecg_healforce,
)
from ecg.formats.wfdb import is_wfdb_header, read_wfdb
from ecg.record import EcgFormat, EcgRecord

__all__ = [
    "detect_format",
    "read_contec_ecg90a",
    "read_csv",
    "read_dicom_waveform",
    "read_ecg",
    "read_ge_muse",
    "read_hl7_aecg",
    "read_philips_xml",
    "read_scp_ecg",
    "read_scp_ecg_healforce",
    "read_wfdb",
]

#: (namespace, root element) of each XML format; the namespaces carts write, or none.
_XML_ROOTS: dict[tuple[str, str], EcgFormat] = {
    ("urn:hl7-org:v3", "AnnotatedECG"): EcgFormat.HL7_AECG,
    ("", "AnnotatedECG"): EcgFormat.HL7_AECG,
    ("http://www3.medical.philips.com", "restingecgdata"): EcgFormat.PHILIPS_XML,
    ("", "restingecgdata"): EcgFormat.PHILIPS_XML,
    ("", "RestingECG"): EcgFormat.GE_MUSE_XML,
}


def _is_xml(data: bytes) -> bool:
    """Whether the file is text whose first character is ``<``, in UTF-8 or UTF-16 (little or
    big endian, with or without a byte order mark): an XML document to parse."""
    head = data[:64]
    for bom in (codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        if head.startswith(bom):
            return True
    if head[:2] in (b"<\x00", b"\x00<"):
        return True
    return head.lstrip(b" \t\r\n").startswith(b"<")


def _xml_format(data: bytes) -> EcgFormat:
    """The format of an XML file, by the root element and namespace its parse gives."""
    root = parse_xml(data, "XML")
    name, space = local_name(root.tag), namespace(root.tag)
    fmt = _XML_ROOTS.get((space, name))
    if fmt is not None:
        return fmt
    known = {root_name for _, root_name in _XML_ROOTS}
    if name in known:
        raise EcgFormatError(
            f"XML document <{name}> in namespace {space or '(none)'!r} is not a variant we read: "
            "export the ECG from the cart as HL7 aECG, Philips or GE MUSE XML"
        )
    raise EcgFormatError(
        f"XML document with root element <{name}> is not a supported ECG format (expected "
        "AnnotatedECG, restingecgdata or RestingECG): export the ECG from the cart as HL7 "
        "aECG, Philips or GE MUSE XML"
    )


def _looks_like_dicom(data: bytes) -> bool:
    if len(data) >= 132 and data[128:132] == b"DICM":
        return True
    # no preamble: the first element is usually in group 0x0008 (implicit or explicit VR)
    return len(data) >= 8 and data[0:2] == b"\x08\x00" and data[3] == 0


def _looks_like_csv(data: bytes) -> bool:
    try:
        text = data[:8192].decode("utf-8-sig")
    except UnicodeDecodeError:
        return False
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    if len(lines) < 2:
        return False
    header = lines[0]
    delimiter = max((",", ";", "\t"), key=header.count)
    if header.count(delimiter) == 0:
        return False
    return lines[1].count(delimiter) == header.count(delimiter)


def detect_format(data: bytes, filename: str | None = None) -> EcgFormat:
    """Recognise an ECG file's format from its content.

    Parameters
    ----------
    data
        The file's bytes (for WFDB, the ``.hea`` header).
    filename
        Optional name; used only to tell WFDB headers and CSV apart from other text.

    Returns
    -------
    EcgFormat
        The recognised format.

    Raises
    ------
    EcgFormatError
        The content matches no supported format.
    """
    suffix = PurePath(filename).suffix.lower() if filename else ""
    if not data:
        raise EcgFormatError("the file is empty: send the file the cart saved again")
    if _looks_like_dicom(data):
        return EcgFormat.DICOM
    if _is_xml(data):
        return _xml_format(data)
    if is_scp_ecg(data):
        return EcgFormat.SCP_ECG
    if is_healforce_scp(data):
        return EcgFormat.SCP_ECG_HEALFORCE
    if is_contec_ecg90a(data):
        return EcgFormat.CONTEC_ECG90A
    if suffix == ".hea" or is_wfdb_header(data):
        return EcgFormat.WFDB
    if suffix in (".csv", ".tsv", ".txt") or _looks_like_csv(data):
        return EcgFormat.CSV
    raise EcgFormatError(
        f"unrecognised ECG format{f' for {filename}' if filename else ''}: not DICOM, HL7 aECG, "
        "SCP-ECG, Philips or GE MUSE XML, Contec ECG90A, WFDB or CSV: send the file the cart "
        "saved, not a photo, PDF or printout of the ECG"
    )


_READERS: dict[EcgFormat, Callable[[bytes], EcgRecord]] = {
    EcgFormat.DICOM: read_dicom_waveform,
    EcgFormat.HL7_AECG: read_hl7_aecg,
    EcgFormat.SCP_ECG: read_scp_ecg,
    EcgFormat.SCP_ECG_HEALFORCE: read_scp_ecg_healforce,
    EcgFormat.PHILIPS_XML: read_philips_xml,
    EcgFormat.GE_MUSE_XML: read_ge_muse,
    EcgFormat.CONTEC_ECG90A: read_contec_ecg90a,
    EcgFormat.CSV: read_csv,
}


def read_ecg(
    data: bytes,
    filename: str | None = None,
    *,
    related_files: Mapping[str, bytes] | None = None,
) -> EcgRecord:
    """Read an ECG file of any supported format.

    Parameters
    ----------
    data
        The file's bytes. For a WFDB record, the ``.hea`` header.
    filename
        Optional file name, a hint for format detection (and the header's name for WFDB).
    related_files
        For WFDB only: the signal files the header names, as ``{file name: bytes}``.

    Returns
    -------
    EcgRecord
        The normalised record (microvolts, leads in standard order).

    Raises
    ------
    EcgFormatError
        The format is not recognised, or the file is truncated, corrupted, hostile or uses
        an unsupported variant of its format.
    """
    fmt = detect_format(data, filename)
    if fmt is EcgFormat.WFDB:
        name = PurePath(filename).name if filename else "record.hea"
        if not name.endswith(".hea"):
            name += ".hea"
        files = dict(related_files or {})
        files = {k: v for k, v in files.items() if not k.endswith(".hea")}
        files[name] = data
        return read_wfdb(files)
    return _READERS[fmt](data)
