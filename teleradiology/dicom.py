"""Reading what clinics send: tolerant of what they write, strict about what we must know."""

from __future__ import annotations

import hashlib
import io
import json
import zlib
from dataclasses import dataclass

import pydicom
import pydicom.config
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.filereader import data_element_generator, read_preamble
from pydicom.pixels.utils import get_expected_length
from pydicom.uid import UID

from storage.index import InstanceHeader
from teleradiology.errors import InvalidDicom

# Tolerant when reading what clinics send: odd values are kept as received, not refused.
pydicom.config.settings.reading_validation_mode = pydicom.config.IGNORE

PREAMBLE_LENGTH = 128


@dataclass(frozen=True, kw_only=True)
class ParsedInstance:
    """A received Part-10 file, ready to store: its bytes (preamble zeroed) and its header."""

    data: bytes
    header: InstanceHeader


def _text(ds: Dataset, keyword: str) -> str | None:
    value = ds.get(keyword)
    if value is None or value == "":
        return None
    text = str(value).strip()
    return text or None


def _int(ds: Dataset, keyword: str) -> int | None:
    value = ds.get(keyword)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


_PIXEL_DATA = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")


def _check_pixel_data(ds: Dataset) -> None:
    """A truncated native pixel data element is refused; compressed data is kept as sent."""
    if "PixelData" not in ds:
        if "Rows" in ds and "Columns" in ds and not any(k in ds for k in _PIXEL_DATA):
            # A file cut at an element boundary reads as a valid data set without its pixels.
            raise InvalidDicom("the DICOM file is truncated: it has image attributes, no pixels")
        return
    tsyntax = ds.file_meta.get("TransferSyntaxUID")
    if tsyntax is None or UID(tsyntax).is_compressed:
        return
    try:
        expected = get_expected_length(ds, unit="bytes")
    except (AttributeError, KeyError, TypeError, ValueError):
        return  # incomplete image attributes: kept as received, the viewer will say so
    actual = len(ds.PixelData)
    # Odd lengths are padded to even on the wire.
    if actual < expected:
        raise InvalidDicom(
            f"pixel data is truncated: {actual} bytes where the image attributes need {expected}"
        )


def parse_part10(data: bytes) -> ParsedInstance:
    """Check one received DICOM Part-10 file and take the values the index keeps.

    The file is stored as received, except that its 128-byte preamble is zeroed (it can carry
    an executable header).

    Raises
    ------
    InvalidDicom
        Not a DICOM file, truncated, or missing an identifying UID; the message says which.
    """
    if len(data) < PREAMBLE_LENGTH + 4 or data[PREAMBLE_LENGTH : PREAMBLE_LENGTH + 4] != b"DICM":
        raise InvalidDicom("not a DICOM Part-10 file: no 'DICM' marker after the 128-byte preamble")
    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=False)
        read_preamble(io.BytesIO(data), force=False)
    except InvalidDicomError as exc:
        raise InvalidDicom(f"not a readable DICOM file: {exc}") from None
    except Exception as exc:  # pydicom raises many kinds on damaged input
        raise InvalidDicom(f"the DICOM file is damaged or truncated: {exc}") from None
    meta = ds.file_meta
    tsyntax = _text(meta, "TransferSyntaxUID")
    if tsyntax is None:
        raise InvalidDicom("the file meta information has no Transfer Syntax UID")
    try:
        # Reading every element now catches truncation and bad values before we store.
        for _ in ds.iterall():
            pass
        _check_pixel_data(ds)
    except InvalidDicom:
        raise
    except Exception as exc:
        raise InvalidDicom(f"the DICOM data set is damaged or truncated: {exc}") from None

    if not _ends_cleanly(data, UID(tsyntax)):
        raise InvalidDicom("the DICOM file is truncated: its last data element is cut short")
    missing = [
        k
        for k in ("SOPInstanceUID", "SOPClassUID", "StudyInstanceUID", "SeriesInstanceUID")
        if not _text(ds, k)
    ]
    if missing:
        raise InvalidDicom(f"required attribute missing or empty: {', '.join(missing)}")

    zeroed = bytes(PREAMBLE_LENGTH) + data[PREAMBLE_LENGTH:]
    header = InstanceHeader(
        sop_instance_uid=_text(ds, "SOPInstanceUID") or "",
        sop_class_uid=_text(ds, "SOPClassUID") or "",
        transfer_syntax_uid=tsyntax,
        study_instance_uid=_text(ds, "StudyInstanceUID") or "",
        series_instance_uid=_text(ds, "SeriesInstanceUID") or "",
        patient_id=_text(ds, "PatientID") or "",
        patient_name=_text(ds, "PatientName"),
        patient_birth_date=_text(ds, "PatientBirthDate"),
        patient_sex=_text(ds, "PatientSex"),
        accession_number=_text(ds, "AccessionNumber"),
        study_date=_text(ds, "StudyDate"),
        study_time=_text(ds, "StudyTime"),
        study_description=_text(ds, "StudyDescription"),
        referring_physician=_text(ds, "ReferringPhysicianName"),
        modality=_text(ds, "Modality"),
        series_number=_int(ds, "SeriesNumber"),
        series_description=_text(ds, "SeriesDescription"),
        body_part=_text(ds, "BodyPartExamined"),
        instance_number=_int(ds, "InstanceNumber"),
        dataset_sha256=dataset_digest(data),
        metadata_zlib=metadata_json(ds),
    )
    return ParsedInstance(data=zeroed, header=header)


#: Values longer than this are left out of the metadata and referenced as bulk data.
BULK_DATA_THRESHOLD = 1024
#: Placeholder scheme for bulk data in stored metadata; DICOMweb turns it into a BulkDataURI
#: under the public base URL when it serves the metadata.
BULK_PREFIX = "bulk:"


def metadata_json(ds: Dataset) -> bytes | None:
    """The data set as DICOM JSON (PS3.18 F.2) without bulk data, zlib-compressed.

    Large values become ``{"BulkDataURI": "bulk:GGGGEEEE"}`` placeholders. None when pydicom
    cannot express a value in JSON (the instance is still stored; metadata is then read
    from the object on demand).
    """

    def bulk(element: DataElement) -> str:
        return f"{BULK_PREFIX}{element.tag:08X}"

    try:
        as_json = ds.to_json_dict(
            bulk_data_threshold=BULK_DATA_THRESHOLD, bulk_data_element_handler=bulk
        )
    except Exception:  # a value pydicom reads but cannot encode as JSON
        return None
    return zlib.compress(json.dumps(as_json, ensure_ascii=False).encode(), 6)


def _dataset_offset(data: bytes) -> int | None:
    """Where the data set starts, from the meta group length; None when it has none."""
    meta_length_offset = PREAMBLE_LENGTH + 4 + 8  # (0002,0000) UL, explicit VR: tag VR len
    group_length = int.from_bytes(data[meta_length_offset : meta_length_offset + 4], "little")
    start = meta_length_offset + 4 + group_length
    if data[PREAMBLE_LENGTH + 4 : PREAMBLE_LENGTH + 8] != b"\x02\x00\x00\x00" or start > len(data):
        return None
    return start


def dataset_digest(data: bytes) -> str:
    """SHA-256 of the data set after the file meta group, so a new meta header is no change."""
    start = _dataset_offset(data)
    return hashlib.sha256(data[PREAMBLE_LENGTH if start is None else start :]).hexdigest()


def _ends_cleanly(data: bytes, tsyntax: UID) -> bool:
    """Whether the last data element ends exactly at the end of the file.

    pydicom stops quietly at an element header cut short; walking the raw elements and
    comparing where the last complete one ends with the file's length catches that cut.
    """
    start = _dataset_offset(data)
    if start is None or tsyntax.is_deflated or not tsyntax.is_transfer_syntax:
        return True
    fp = io.BytesIO(data)
    fp.seek(start)
    end = start
    for _ in data_element_generator(fp, tsyntax.is_implicit_VR, tsyntax.is_little_endian):
        end = fp.tell()
    return end == len(data)
