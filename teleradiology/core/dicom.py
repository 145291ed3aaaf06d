"""Reading what clinics send: tolerant of what they write, strict about what we must know.

Only the header is decoded: the data set is read up to its pixel data, whose length is checked
from the element header (native pixels against the image attributes, encapsulated fragments
against the end of the file), and whatever follows the pixels is walked, not decoded. A file
that does not end exactly where its last element does is truncated and refused.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import io
import json
import re
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, cast

import pydicom
import pydicom.config
from pydicom.charset import convert_encodings
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.filereader import data_element_generator
from pydicom.pixels.utils import get_expected_length
from pydicom.uid import UID

from storage.instance_keys import PREAMBLE_LENGTH, dataset_offset, dataset_split, instance_key
from storage.records import InstanceHeader
from teleradiology.core.errors import InvalidDicom
from teleradiology.core.language import N_
from teleradiology.core.pixel_limits import DecodeTooLarge, check_declared_size

# Tolerant when reading what clinics send: odd values are kept as received, not refused.
pydicom.config.settings.reading_validation_mode = pydicom.config.IGNORE

#: An application entity title (PS3.5 AE VR: 1-16 characters, no backslash or control code).
AE_TITLE = re.compile(r"^[\x20-\x5b\x5d-\x7e]{1,16}$")

#: Media Storage Directory Storage: a DICOMDIR, the index of a disc, not an instance.
DICOMDIR_SOP_CLASS = "1.2.840.10008.1.3.10"
_HASH_CHUNK = 1024 * 1024
#: The most a deflated data set may inflate to. Deflate reaches 1000:1 on crafted input, and
#: pydicom inflates a deflated file whole before it reads a single element: a few hundred
#: kilobytes would otherwise become a gigabyte in the receiving process.
MAX_INFLATED_BYTES = 128 * 1024**2
_DEFLATED = "1.2.840.10008.1.2.1.99"
#: A file that ends inside its last data element.
CUT_SHORT = N_("DICOM 文件被截断：最后一个数据元素不完整")
CUT_IN_FRAGMENTS = N_("DICOM 文件在其压缩像素数据中被截断")
_TRANSFER_SYNTAX_TAG = 0x00020010
_PIXEL_TAGS = frozenset({0x7FE00010, 0x7FE00008, 0x7FE00009})
_UNDEFINED = 0xFFFFFFFF
_ITEM = 0xFFFEE000
_SEQUENCE_END = 0xFFFEE0DD
#: Explicit VRs whose element header has a 4-byte length (after two reserved bytes).
_LONG_VRS = frozenset(
    {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
)
#: Text VRs that carry the patient's and study's words (what a wrong character set breaks).
_TEXT_VRS = frozenset({"PN", "LO", "SH", "ST", "LT", "UT", "UC"})
#: Declared character sets under which GBK or UTF-8 bytes are mislabelled.
_LATIN_LABELS = frozenset({"", "ISO_IR 100", "ISO_IR 6", "ISO 2022 IR 100", "ISO 2022 IR 6"})
_ISO2022_ESCAPE = re.compile(r"\x1b[\x20-\x2f]*[\x30-\x7e]")
#: The same escapes as JSON writes them (control characters as \u001b).
_ISO2022_ESCAPE_JSON = re.compile(r"\\u001b[\x20-\x2f]*[\x30-\x7e]")
_HIGH_RUNS = re.compile(rb"[\x80-\xff]+")
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


@dataclass(frozen=True, kw_only=True)
class ParsedInstance:
    """A received Part-10 file, ready to store: its bytes (preamble zeroed), its header and
    the key it is stored under (``storage.instance_keys``)."""

    data: bytes
    header: InstanceHeader
    key: str


@dataclass(frozen=True, kw_only=True)
class ParsedFile:
    """A received Part-10 file on disk, checked: its header, the key it is stored under
    (``storage.instance_keys``) and its size."""

    header: InstanceHeader
    key: str
    size_bytes: int


def _text(ds: Dataset, keyword: str) -> str | None:
    plain = _ascii_value(ds, keyword)
    if plain is not None:
        return plain.replace("\x00", "").strip() or None
    value = ds.get(keyword)
    if value is None or value == "":
        return None
    # pydicom keeps the ISO 2022 escape sequences (ESC $ ) A) in text it decodes; NUL bytes
    # inside a value (a damaged or padded field) cannot be PostgreSQL text.
    text = _ISO2022_ESCAPE.sub("", str(value)).replace("\x00", "").strip()
    return text or None


def _int(ds: Dataset, keyword: str) -> int | None:
    plain = _ascii_value(ds, keyword)
    if plain is not None:
        plain = plain.replace("\x00", "").strip()
        if not plain:
            return None
        if _IS_VALUE.fullmatch(plain):
            return int(plain)
    value = ds.get(keyword)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


#: VRs whose single ASCII value pydicom reads as the text it is (less its padding).
_PLAIN_VRS = frozenset(
    {"AE", "AS", "CS", "DA", "DT", "TM", "UI", "LO", "SH", "UC", "ST", "LT", "UT", "PN", "IS", "DS"}
)


def _ascii_value(ds: Dataset, keyword: str) -> str | None:
    """The text of an element not yet decoded, when it is one plain ASCII value (no
    backslash, no escape sequence): the same text pydicom would decode, padding aside.
    None when pydicom must say it (decoded already, non-ASCII, several values, ...)."""
    tag = tag_for_keyword(keyword)
    item = ds.get_item(tag) if tag is not None else None
    if not isinstance(item, RawDataElement) or not isinstance(item.value, bytes):
        return None
    value = item.value
    if (item.VR or _dictionary_vr(item.tag)) not in _PLAIN_VRS or not value.isascii():
        return None
    if b"\\" in value or b"\x1b" in value:
        return None
    return value.decode("ascii")


@dataclass(frozen=True, kw_only=True)
class _Pixels:
    """The pixel data element as found in the file: its tag, VR and value length."""

    tag: int
    vr: str
    length: int
    encapsulated: bool
    #: The value itself when it is small enough to go inline in the metadata.
    inline: bytes | None = None


def parse_part10(data: bytes) -> ParsedInstance:
    """Check one received DICOM Part-10 file and take the values the index keeps.

    The file is stored as received, except that its 128-byte preamble is zeroed (it can carry
    an executable header).

    Raises
    ------
    InvalidDicom
        Not a DICOM file, truncated, or missing an identifying UID; the message says which.
    """
    header = _parse(io.BytesIO(data), len(data), dataset_digest(data))
    if data[:PREAMBLE_LENGTH].strip(b"\0"):  # most writers zero it already: no copy then
        data = bytes(PREAMBLE_LENGTH) + data[PREAMBLE_LENGTH:]
    key = instance_key(memoryview(data)[: dataset_split(data)], header.dataset_sha256)
    return ParsedInstance(data=data, header=header, key=key)


def parse_part10_file(path: Path) -> ParsedFile:
    """Check a received Part-10 file on disk, as `parse_part10`, without loading its pixels.

    The file's preamble must already be zeroed (the caller wrote it); its key is taken in the
    same pass as the data set's digest (each byte hashed once).

    Raises
    ------
    InvalidDicom
        As `parse_part10`.
    """
    with path.open("rb") as fp:
        key, dataset, size, first = _digests(fp)
        if len(first) == size:  # read whole already (most instances): parsed in memory
            header = _parse(io.BytesIO(first), size, dataset)
        else:
            fp.seek(0)
            header = _parse(cast(BinaryIO, _WithinSize(fp, size)), size, dataset)
    return ParsedFile(header=header, key=key, size_bytes=size)


class _WithinSize:
    """A file whose reads never ask for more than is left in it.

    pydicom reads an element's value with ``read(length)``, the length as the file says it;
    a file's ``read(n)`` reserves ``n`` bytes before reading, so a damaged length (4 GiB in a
    40 KB file) would reserve gigabytes per element. A buffer in memory has no such cost.
    """

    def __init__(self, fp: BinaryIO, size: int) -> None:
        self._fp = fp
        self._size = size

    def read(self, n: int | None = -1) -> bytes:
        left = max(0, self._size - self._fp.tell())
        return self._fp.read(left if n is None or n < 0 or n > left else n)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._fp.seek(offset, whence)

    def tell(self) -> int:
        return self._fp.tell()


def _digests(fp: BinaryIO) -> tuple[str, str, int, bytes]:
    """The file's key (``storage.instance_keys``) and its data set's SHA-256, each byte
    hashed once, its size, and its first chunk (up to 1 MiB)."""
    first = fp.read(_HASH_CHUNK)
    fp.seek(0, io.SEEK_END)
    total = fp.tell()
    fp.seek(len(first))
    split = dataset_split(first, total)
    head, dataset = hashlib.sha256(), hashlib.sha256()
    size, chunk = 0, first
    while chunk:
        cut = min(len(chunk), max(0, split - size))  # the chunk's bytes before the data set
        view = memoryview(chunk)
        head.update(view[:cut])
        dataset.update(view[cut:])
        size += len(chunk)
        chunk = fp.read(_HASH_CHUNK)
    head.update(dataset.digest())
    return head.hexdigest(), dataset.hexdigest(), size, first


def _parse(fp: BinaryIO, size: int, dataset_sha256: str) -> InstanceHeader:
    head = fp.read(PREAMBLE_LENGTH + 4)
    if len(head) < PREAMBLE_LENGTH + 4 or head[PREAMBLE_LENGTH:] != b"DICM":
        raise InvalidDicom(N_("不是 DICOM Part-10 文件：128 字节前导之后没有 'DICM' 标记"))
    if _meta_transfer_syntax(fp, size) == _DEFLATED:
        _check_inflated_size(fp, size)
    fp.seek(0)
    try:
        ds: Dataset = pydicom.dcmread(fp, force=False, stop_before_pixels=True)
    except InvalidDicomError as exc:
        raise InvalidDicom(N_("无法读取的 DICOM 文件：%(error)s"), error=str(exc)) from None
    except Exception as exc:  # pydicom raises many kinds on damaged input
        raise InvalidDicom(N_("DICOM 文件已损坏或被截断：%(error)s"), error=str(exc)) from None
    tsyntax_text = _text(ds.file_meta, "TransferSyntaxUID")
    if tsyntax_text is None:
        raise InvalidDicom(N_("文件元信息中没有 Transfer Syntax UID"))
    tsyntax = UID(tsyntax_text)
    # A UID under the DICOM root that pydicom does not know as a transfer syntax (a newer
    # syntax, or a SOP Class UID written there) has no is_deflated: ask what it is first.
    if not tsyntax.is_transfer_syntax or tsyntax.is_deflated:
        # The raw stream is not walkable: decode it whole (rare: deflate, private syntaxes).
        fp.seek(0)
        whole, pixel = _read_whole(fp)
        ds = whole
    else:
        trailing: list[RawDataElement] = []
        pixel = _walk_tail(fp, size, tsyntax, trailing)
        for raw in trailing:  # after the pixels (trailing padding, signatures): in the metadata
            ds[raw.tag] = raw
    try:
        _check_pixel_data(ds, pixel, tsyntax)
    except InvalidDicom:
        raise
    except Exception as exc:
        raise InvalidDicom(N_("DICOM 数据集已损坏或被截断：%(error)s"), error=str(exc)) from None
    try:
        return _header(ds, pixel, tsyntax_text, dataset_sha256)
    except InvalidDicom:
        raise
    except Exception as exc:
        # pydicom decodes a value when it is first read: a damaged one (an unknown VR, say)
        # fails here, long after the file was read.
        raise InvalidDicom(N_("DICOM 数据集有无法读取的值：%(error)s"), error=str(exc)) from None


def _header(
    ds: Dataset, pixel: _Pixels | None, tsyntax_text: str, dataset_sha256: str
) -> InstanceHeader:
    """The values the index keeps, from a data set whose structure was checked."""
    correct_character_set(ds)
    # Before the values below are read: what they decode is then decoded once more for JSON.
    metadata = _metadata(ds, pixel)
    missing = [
        k
        for k in ("SOPInstanceUID", "SOPClassUID", "StudyInstanceUID", "SeriesInstanceUID")
        if not _text(ds, k)
    ]
    if missing:
        raise InvalidDicom(N_("必需的属性缺失或为空：%(names)s"), names=", ".join(missing))
    return InstanceHeader(
        sop_instance_uid=_text(ds, "SOPInstanceUID") or "",
        sop_class_uid=_text(ds, "SOPClassUID") or "",
        transfer_syntax_uid=tsyntax_text,
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
        dataset_sha256=dataset_sha256,
        metadata_zlib=metadata,
    )


def check_inflated_size(data: bytes, limit: int = MAX_INFLATED_BYTES) -> None:
    """Refuse a deflated Part-10 file (an ECG's DICOM, say) that inflates past ``limit``
    before anything reads it whole; other bytes pass untouched.

    Raises
    ------
    InvalidDicom
        The deflated data set grows past ``limit``, or its stream is damaged.
    """
    if data[PREAMBLE_LENGTH : PREAMBLE_LENGTH + 4] != b"DICM":
        return
    fp = io.BytesIO(data)
    if _meta_transfer_syntax(fp, len(data)) == _DEFLATED:
        _check_inflated_size(fp, len(data), limit)


def _meta_transfer_syntax(fp: BinaryIO, size: int) -> str | None:
    """The Transfer Syntax UID of the file meta group, read without reading the data set."""
    fp.seek(0)
    head = fp.read(min(size, _HASH_CHUNK))
    start = dataset_offset(head, size)
    if start is None or start > len(head):
        return None
    meta = io.BytesIO(head[PREAMBLE_LENGTH + 4 : start])
    try:
        for raw in data_element_generator(meta, False, True):
            if raw.tag == _TRANSFER_SYNTAX_TAG and isinstance(raw.value, bytes):
                return raw.value.decode("ascii", errors="replace").strip("\x00 ")
    except Exception:  # a damaged meta group: pydicom's own reading says how
        return None
    return None


def _check_inflated_size(fp: BinaryIO, size: int, limit: int = MAX_INFLATED_BYTES) -> None:
    """Inflate the deflated data set in steps, holding one step at a time, and refuse it
    when it grows past ``limit``."""
    start = _dataset_start(fp, size)
    fp.seek(start)
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    inflated = 0
    try:
        while not inflater.eof:
            chunk = inflater.unconsumed_tail or fp.read(_HASH_CHUNK)
            if not chunk:
                break
            inflated += len(inflater.decompress(chunk, _HASH_CHUNK))
            if inflated > limit:
                raise InvalidDicom(
                    N_("deflate 压缩的数据集解压后超过 %(mib)s MiB（原 %(size)s 字节）；不予存储"),
                    mib=limit // 1024**2,
                    size=size - start,
                )
    except zlib.error as exc:
        raise InvalidDicom(N_("压缩（deflate）的数据集已损坏：%(error)s"), error=str(exc)) from None


def _read_whole(fp: BinaryIO) -> tuple[Dataset, _Pixels | None]:
    try:
        ds = pydicom.dcmread(fp, force=False)
    except Exception as exc:
        raise InvalidDicom(N_("DICOM 文件已损坏或被截断：%(error)s"), error=str(exc)) from None
    for tag in sorted(_PIXEL_TAGS & {int(t) for t in ds.keys()}):  # noqa: SIM118 - tags only
        try:
            element = ds[tag]  # decoded now: "OB or OW" needs Bits Allocated, say
        except Exception as exc:
            raise InvalidDicom(N_("像素数据元素无法读取：%(error)s"), error=str(exc)) from None
        pixels = _Pixels(
            tag=tag,
            vr=str(element.VR),
            length=len(element.value or b""),
            encapsulated=bool(getattr(element, "is_undefined_length", False)),
            inline=bytes(element.value)
            if len(element.value or b"") <= BULK_DATA_THRESHOLD
            else None,
        )
        del ds[tag]
        return ds, pixels
    return ds, None


def _walk_tail(
    fp: BinaryIO, size: int, tsyntax: UID, trailing: list[RawDataElement]
) -> _Pixels | None:
    """Walk the pixel data element and anything after it without decoding.

    pydicom stopped before the pixel data (or at the end of the data set); from there each
    element header is read and its value skipped. Returns the pixel element found, if any.

    Raises
    ------
    InvalidDicom
        An element runs past the end of the file, or the file ends inside an element header.
    """
    start = fp.tell()
    if start >= size:
        # No pixel data: walk the whole data set, pydicom may have stopped at a cut header.
        return _ends_cleanly_from(fp, _dataset_start(fp, size), size, tsyntax, None)
    endian = "<" if tsyntax.is_little_endian else ">"
    implicit = tsyntax.is_implicit_VR
    fp.seek(start)
    header = fp.read(8)
    if len(header) < 8:
        raise InvalidDicom(CUT_SHORT)
    group, elem = struct.unpack(endian + "HH", header[:4])
    tag = group << 16 | elem
    if tag not in _PIXEL_TAGS:
        # pydicom stopped early: something it could not read (a cut element header).
        return _ends_cleanly_from(fp, start, size, tsyntax, None)
    if implicit:
        vr = ""  # implicit: decided from the image attributes, as pydicom does
        (length,) = struct.unpack(endian + "L", header[4:8])
        value_at = start + 8
    elif not header[4:6].isalpha():
        # Explicit VR syntax, but the pixel element written implicitly (pydicom reads it too).
        vr = ""  # implicit: decided from the image attributes, as pydicom does
        (length,) = struct.unpack(endian + "L", header[4:8])
        value_at = start + 8
    else:
        vr_bytes = header[4:6]
        vr = vr_bytes.decode("ascii", "replace")
        if vr_bytes in _LONG_VRS:
            more = fp.read(4)
            if len(more) < 4:
                raise InvalidDicom(N_("DICOM 文件在像素数据的元素头处被截断"))
            (length,) = struct.unpack(endian + "L", more)
            value_at = start + 12
        else:
            (length,) = struct.unpack(endian + "H", header[6:8])
            value_at = start + 8
    if length == _UNDEFINED:
        end = _skip_fragments(fp, value_at, size, endian)
        # The value, as pydicom reads it, ends before the sequence delimiter item (8 bytes).
        pixels = _Pixels(tag=tag, vr=vr, length=end - 8 - value_at, encapsulated=True)
    else:
        end = value_at + length
        if end > size:
            raise InvalidDicom(
                N_("像素数据被截断：元素头为 %(length)s 字节，实有 %(got)s 字节"),
                got=size - value_at,
                length=length,
            )
        pixels = _Pixels(tag=tag, vr=vr, length=length, encapsulated=False)
    if pixels.length <= BULK_DATA_THRESHOLD:
        fp.seek(value_at)
        pixels = dataclasses.replace(pixels, inline=fp.read(pixels.length))
    return _ends_cleanly_from(fp, end, size, tsyntax, pixels, trailing)


def _skip_fragments(fp: BinaryIO, at: int, size: int, endian: str) -> int:
    """Where an encapsulated pixel data value ends (after its sequence delimiter)."""
    while True:
        fp.seek(at)
        header = fp.read(8)
        if len(header) < 8:
            raise InvalidDicom(CUT_IN_FRAGMENTS)
        group, elem, length = struct.unpack(endian + "HHL", header)
        tag = group << 16 | elem
        at += 8
        if tag == _SEQUENCE_END:
            return at
        if tag != _ITEM or length == _UNDEFINED:
            raise InvalidDicom(N_("压缩像素数据格式有误：此处应为一个条目（item）"))
        at += length
        if at > size:
            raise InvalidDicom(CUT_IN_FRAGMENTS)


def _ends_cleanly_from(
    fp: BinaryIO,
    at: int,
    size: int,
    tsyntax: UID,
    pixels: _Pixels | None,
    trailing: list[RawDataElement] | None = None,
) -> _Pixels | None:
    """Walk the raw elements from ``at``: the last complete one must end at the end of file.

    Elements found are appended to ``trailing`` when it is given (those after the pixels).

    pydicom stops quietly at an element header cut short; comparing where the last complete
    element ends with the file's length catches that cut.
    """
    fp.seek(at)
    end = at
    elements = data_element_generator(fp, tsyntax.is_implicit_VR, tsyntax.is_little_endian)
    while True:
        try:
            raw = next(elements)
        except StopIteration:
            break
        except Exception as exc:  # a sequence cut short: OSError, EOFError from pydicom
            raise InvalidDicom(N_("DICOM 文件被截断或已损坏：%(error)s"), error=str(exc)) from None
        end = fp.tell()
        # A value read short (its length past the end of the file) leaves the file position
        # at the end: the length in the element header says where the value really ends.
        if not isinstance(raw, RawDataElement):
            continue  # a sequence, read item by item to its end
        if raw.length != _UNDEFINED and raw.value_tell + raw.length > size:
            raise InvalidDicom(
                N_("DICOM 文件被截断：元素 %(tag)s 标明 %(length)s 字节，只剩 %(left)s 字节"),
                tag=f"({raw.tag.group:04X},{raw.tag.elem:04X})",
                length=raw.length,
                left=size - raw.value_tell,
            )
        if trailing is not None:
            trailing.append(raw)
    if end != size:
        raise InvalidDicom(CUT_SHORT)
    return pixels


def _check_pixel_data(ds: Dataset, pixels: _Pixels | None, tsyntax: UID) -> None:
    """A truncated native pixel data element is refused; compressed data is kept as sent,
    unless a frame declares more than this server decodes."""
    if pixels is None:
        if "Rows" in ds and "Columns" in ds:
            # A file cut at an element boundary reads as a valid data set without its pixels.
            raise InvalidDicom(N_("DICOM 文件被截断：有图像属性，没有像素数据"))
        return
    if not tsyntax.is_transfer_syntax:
        raise InvalidDicom(
            N_("Transfer Syntax UID %(uid)s 不是本服务器认识的传输语法：其像素数据无法读取"),
            uid=str(tsyntax),
        )
    if pixels.encapsulated or tsyntax.is_compressed:
        try:
            check_declared_size(ds)
        except DecodeTooLarge as exc:
            raise InvalidDicom(N_("本服务器无法解码该图像：%(error)s"), error=exc.phrase) from None
        return
    if pixels.tag != 0x7FE00010:
        return
    try:
        expected = get_expected_length(ds, unit="bytes")
    except (AttributeError, KeyError, TypeError, ValueError):
        return  # incomplete image attributes: kept as received, the viewer will say so
    if not isinstance(expected, int):
        return  # an unreadable Number of Frames ('1A'): the length cannot be checked
    # Odd lengths are padded to even on the wire.
    if pixels.length < expected:
        raise InvalidDicom(
            N_("像素数据被截断：图像属性需要 %(expected)s 字节，实有 %(got)s 字节"),
            got=pixels.length,
            expected=expected,
        )


def correct_character_set(ds: Dataset) -> str | None:
    """Decode text labelled Latin-1 (or not labelled) that is really UTF-8 or GBK.

    Workstations in China often write GBK (or UTF-8) without saying so, or label it
    ``ISO_IR 100``; some write ``ISO 2022 IR 58`` text without its escape sequences.
    When every top-level text value with bytes above 0x7F decodes as UTF-8,
    or else as GB18030 (a superset of GBK), and the result holds Chinese characters, the data
    set in memory is relabelled so the index gets the right names. The stored file is never
    changed. Returns the character set used, or None when the label was kept.
    """
    declared = ds.get_item("SpecificCharacterSet")
    label = ""
    if declared is not None:
        raw = declared.value
        text = raw.decode("ascii", "replace") if isinstance(raw, bytes) else str(raw or "")
        label = text.strip().strip("\\").strip()
    # ISO 2022 IR 58 text must switch to GB2312 with an escape sequence; some writers
    # (pydicom among them) leave it out, and the bytes then read as Latin-1.
    without_escapes = "ISO 2022 IR 58" in label
    if label not in _LATIN_LABELS and not without_escapes:
        return None
    values: list[bytes] = []
    # Tags, not elements: iterating the data set would decode them under the old label.
    for tag in list(ds.keys()):
        item = ds.get_item(tag)
        if (
            isinstance(item, RawDataElement)
            and item.VR in _TEXT_VRS
            and item.value
            and any(b > 0x7F for b in item.value)
        ):
            values.append(bytes(item.value))
    if not values or (without_escapes and any(b"\x1b" in v for v in values)):
        return None
    for codec, term in (("utf-8", "ISO_IR 192"), ("gb18030", "GB18030")):
        if codec == "gb18030" and not all(_paired_high_bytes(v) for v in values):
            # Latin-1 accents stand alone ("Jérôme"); GBK characters are pairs of high bytes.
            continue
        try:
            decoded = [v.decode(codec) for v in values]
        except UnicodeDecodeError:
            continue
        if any(_CJK.search(d) for d in decoded):
            ds.SpecificCharacterSet = term
            # pydicom decodes what it read with the encoding it read it under: change that too.
            implicit, little = ds.original_encoding
            if implicit is not None and little is not None:
                ds.set_original_encoding(implicit, little, convert_encodings(term))
            return term
    return None


def _paired_high_bytes(value: bytes) -> bool:
    """Whether every run of bytes above 0x7F has an even length (as GB2312/GBK text has)."""
    return all(len(run) % 2 == 0 for run in _HIGH_RUNS.findall(value))


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
    try:
        as_json = ds.to_json_dict(
            bulk_data_threshold=BULK_DATA_THRESHOLD, bulk_data_element_handler=_bulk_uri
        )
    except Exception:  # a value pydicom reads but cannot encode as JSON
        return None
    return zlib.compress(json.dumps(as_json, ensure_ascii=False).encode(), 6)


def _metadata(ds: Dataset, pixels: _Pixels | None) -> bytes | None:
    """`metadata_json` of a header read without its pixels, the pixels as a placeholder.

    Raises
    ------
    InvalidDicom
        A value cannot be decoded at all (a damaged data set).
    """
    as_json: dict[str, object] = {}
    for tag in ds.keys():  # noqa: SIM118 - one element at a time, each may fail
        try:
            as_json[f"{int(tag):08X}"] = _element_json(ds, tag)
        except Exception:  # noqa: S112 - the element stays in the file, only not in JSON
            # A value pydicom reads but cannot say in JSON (an IS of '1A'): tolerant, that
            # element is left out of the metadata and the rest kept.
            continue
    if pixels is not None:
        vr = pixels.vr
        if vr not in ("OB", "OW", "OF", "OD", "UN"):
            vr = _implicit_pixel_vr(ds, pixels)
        key = f"{pixels.tag:08X}"
        if pixels.inline is not None:
            as_json[key] = {"vr": vr, "InlineBinary": base64.b64encode(pixels.inline).decode()}
        else:
            as_json[key] = {"vr": vr, "BulkDataURI": f"{BULK_PREFIX}{key}"}
    text = json.dumps(as_json, ensure_ascii=False)
    if "\\u001b" in text:
        text = _ISO2022_ESCAPE_JSON.sub("", text)
    return zlib.compress(text.encode(), 6)


def _bulk_uri(element: DataElement) -> str:
    return f"{BULK_PREFIX}{element.tag:08X}"


def dataset_json(ds: Dataset) -> dict[str, object]:
    """``ds.to_json_dict`` (bulk data as placeholders), the plain values read from their bytes.

    Raises
    ------
    Exception
        As pydicom's: a value it cannot say in JSON.
    """
    return {f"{int(tag):08X}": _element_json(ds, tag) for tag in ds.keys()}  # noqa: SIM118


def _element_json(ds: Dataset, tag: int) -> dict[str, object]:
    """One element as pydicom's ``to_json_dict`` says it, without decoding it when its
    bytes can be said as they are (most of a header: codes, UIDs, dates, numbers, ASCII
    text); a sequence's items element by element in the same way."""
    item = ds.get_item(tag)
    if isinstance(item, RawDataElement):
        fast = raw_json(item)
        if fast is not None:
            return fast
    element = ds[tag]
    if element.VR == "SQ":
        return {"vr": "SQ", "Value": [dataset_json(child) for child in element.value]}
    return element.to_json_dict(_bulk_uri, BULK_DATA_THRESHOLD)


#: VRs whose value is ASCII in any character set (pydicom reads them as Latin-1).
_CODE_VRS = frozenset({"AE", "AS", "CS", "DA", "DT", "TM", "UI"})
#: Text VRs split at backslashes, each value without trailing spaces.
_MULTI_TEXT_VRS = frozenset({"LO", "SH", "UC"})
#: Text VRs of one value (backslashes are text).
_SINGLE_TEXT_VRS = frozenset({"ST", "LT", "UT"})
_BINARY_NUMBERS = {"US": "H", "SS": "h", "UL": "L", "SL": "l", "FL": "f", "FD": "d"}
_IS_VALUE = re.compile(r"[+-]?[0-9]+")
_DS_VALUE = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")


def raw_json(raw: RawDataElement) -> dict[str, object] | None:
    """The DICOM JSON of a raw element read straight from its bytes, exactly as pydicom's
    ``to_json_dict`` would say it; None when that takes pydicom (a person name, non-ASCII
    text, an empty value among several, an implicit or unusual VR, ...)."""
    vr, value = raw.VR or _dictionary_vr(raw.tag), raw.value
    if vr is None or not isinstance(value, bytes) or raw.length == _UNDEFINED:
        return None
    if not value:
        return {"vr": vr} if vr in _CODE_VRS or vr in _MULTI_TEXT_VRS else None
    if vr in _BINARY_NUMBERS:
        return _binary_json(vr, value, raw.is_little_endian)
    if not value.isascii() or b"\x1b" in value or pydicom.config.datetime_conversion:
        return None
    text = value.decode("ascii")
    if vr in _SINGLE_TEXT_VRS:
        stripped = text.rstrip("\0 ")
        return {"vr": vr, "Value": [stripped]} if stripped else {"vr": vr}
    parts = _text_parts(vr, text)
    if parts is None or not all(parts):
        # An empty value among several (or a VR said otherwise): pydicom's way.
        return {"vr": vr} if parts == [""] else None
    if vr in ("IS", "DS"):
        return _decimal_json(vr, parts)
    return {"vr": vr, "Value": parts}


def _text_parts(vr: str, text: str) -> list[str] | None:
    """The values of an ASCII text element, padding taken off as pydicom takes it off."""
    if vr in _MULTI_TEXT_VRS:
        return [part.rstrip("\0 ") for part in text.split("\\")]
    if vr == "AE":
        return [part.strip() for part in text.split("\\")]
    if vr == "UI":
        return [part.strip() for part in text.rstrip(" \0").split("\\")]
    if vr in _CODE_VRS or vr in ("IS", "DS"):
        return text.rstrip(" \0").split("\\")
    return None


def _dictionary_vr(tag: int) -> str | None:
    """The VR an implicit-VR element takes, as pydicom looks it up: None for private and
    unknown tags (pydicom decides those)."""
    if tag >> 16 & 1:
        return None
    try:
        return str(dictionary_VR(tag))
    except KeyError:
        return None


def _decimal_json(vr: str, parts: list[str]) -> dict[str, object] | None:
    """IS and DS values as JSON numbers, when each is plainly written."""
    numbers: list[object] = []
    pattern = _IS_VALUE if vr == "IS" else _DS_VALUE
    for part in parts:
        part = part.strip(" ")
        if not pattern.fullmatch(part):
            return None
        numbers.append(int(part) if vr == "IS" else float(part))
    return {"vr": vr, "Value": numbers}


def _binary_json(vr: str, value: bytes, little: bool) -> dict[str, object] | None:
    code = _BINARY_NUMBERS[vr]
    size = struct.calcsize("=" + code)
    if len(value) % size:
        return None  # pydicom refuses it: the element is left out by the caller's rule
    numbers = struct.unpack(f"{'<' if little else '>'}{len(value) // size}{code}", value)
    return {"vr": vr, "Value": list(numbers)}


def _implicit_pixel_vr(ds: Dataset, pixels: _Pixels) -> str:
    """The VR of pixel data written without one: OW (PS3.5 A.1), as pydicom reads it."""
    return {0x7FE00008: "OF", 0x7FE00009: "OD"}.get(pixels.tag, "OW")


def _dataset_start(fp: BinaryIO, size: int) -> int:
    fp.seek(0)
    head = fp.read(PREAMBLE_LENGTH + 16)
    start = dataset_offset(head, size)
    return PREAMBLE_LENGTH + 4 if start is None else start


def dataset_digest(data: bytes) -> str:
    """SHA-256 of the data set after the file meta group, so a new meta header is no change."""
    return hashlib.sha256(memoryview(data)[dataset_split(data) :]).hexdigest()


@dataclass(frozen=True, kw_only=True)
class Identity:
    study_instance_uid: str
    sop_instance_uid: str


def instance_identity(source: bytes | Path) -> Identity | None:
    """The study and SOP Instance UIDs of a Part-10 file, from its header only; None when it is
    not a DICOM instance (no preamble and meta, a DICOMDIR, no UIDs).

    Raises
    ------
    OSError
        The file cannot be opened (unreadable is not the same as "not DICOM").
    """
    with io.BytesIO(source) if isinstance(source, bytes) else source.open("rb") as fp:
        size = fp.seek(0, io.SEEK_END)
        fp.seek(0)
        try:
            ds = pydicom.dcmread(
                cast(BinaryIO, _WithinSize(fp, size)),
                stop_before_pixels=True,
                specific_tags=["StudyInstanceUID", "SOPInstanceUID", "SOPClassUID"],
            )
            # Values are decoded when first read: an unknown VR fails here, not above.
            meta_class = str(getattr(ds, "file_meta", {}).get("MediaStorageSOPClassUID", ""))
            study = str(ds.get("StudyInstanceUID", "") or "").strip()
            sop = str(ds.get("SOPInstanceUID", "") or "").strip()
        except Exception:  # not DICOM, or too broken for pydicom's header reader
            # pydicom says OSError of a damaged sequence item too: the file was opened, so
            # whatever it raises now is about the bytes.
            return None
    if meta_class == DICOMDIR_SOP_CLASS or not study or not sop:
        return None
    return Identity(study_instance_uid=study, sop_instance_uid=sop)
