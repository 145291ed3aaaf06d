"""The file meta group pynetdicom writes before each received data set, encoded directly.

In chunked mode pynetdicom builds a pydicom ``FileMetaDataset`` for every C-STORE and has
pydicom encode it; the group is seven short elements that differ only in three UIDs, so
they are packed here with the same bytes as pydicom writes (pydicom still writes any group
whose values are not plain UIDs).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, BinaryIO, cast

from pydicom.filewriter import write_file_meta_info
from pynetdicom import PYNETDICOM_IMPLEMENTATION_UID, PYNETDICOM_IMPLEMENTATION_VERSION
from pynetdicom.dsutils import create_file_meta as _pydicom_file_meta

#: Explicit VRs written with a 4-byte length (after two reserved bytes).
_LONG = frozenset({b"OB"})
_UID_CHARACTERS = frozenset(b"0123456789.")


@dataclass(frozen=True, kw_only=True)
class FileMeta:
    """What one received data set's file meta group says (as pynetdicom's ``create_file_meta``
    takes it)."""

    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax: str
    implementation_uid: str = str(PYNETDICOM_IMPLEMENTATION_UID)
    implementation_version: str = PYNETDICOM_IMPLEMENTATION_VERSION


def _element(elem: int, vr: bytes, value: bytes, pad: bytes) -> bytes:
    if len(value) % 2:
        value += pad
    if vr in _LONG:
        return struct.pack("<HH2sHL", 2, elem, vr, 0, len(value)) + value
    return struct.pack("<HH2sH", 2, elem, vr, len(value)) + value


def _is_uid(value: str) -> bool:
    return 0 < len(value) <= 64 and value.isascii() and set(value.encode()) <= _UID_CHARACTERS


def encoded(meta: FileMeta) -> bytes | None:
    """The group as pydicom encodes it (Explicit VR Little Endian, group length first);
    None when a value is not a plain UID (pydicom then says what it makes of it)."""
    uids = (meta.sop_class_uid, meta.sop_instance_uid, meta.transfer_syntax)
    version = meta.implementation_version
    if not all(_is_uid(u) for u in (*uids, meta.implementation_uid)) or not (
        version.isascii() and 0 < len(version) <= 16
    ):
        return None
    body = b"".join(
        (
            _element(0x0001, b"OB", b"\x00\x01", b"\x00"),
            _element(0x0002, b"UI", uids[0].encode(), b"\x00"),
            _element(0x0003, b"UI", uids[1].encode(), b"\x00"),
            _element(0x0010, b"UI", uids[2].encode(), b"\x00"),
            _element(0x0012, b"UI", meta.implementation_uid.encode(), b"\x00"),
            _element(0x0013, b"SH", version.encode(), b" "),
        )
    )
    return _element(0x0000, b"UL", struct.pack("<L", len(body)), b"") + body


def write(fp: BinaryIO, meta: FileMeta) -> None:
    """Write the group of ``meta`` to ``fp``, as pydicom's ``write_file_meta_info`` would."""
    data = encoded(meta)
    if data is None:
        write_file_meta_info(
            cast(Any, fp),  # pydicom's DicomIO, or any file with write()
            _pydicom_file_meta(
                sop_class_uid=meta.sop_class_uid,  # type: ignore[arg-type]
                sop_instance_uid=meta.sop_instance_uid,  # type: ignore[arg-type]
                transfer_syntax=meta.transfer_syntax,  # type: ignore[arg-type]
                implementation_uid=meta.implementation_uid,  # type: ignore[arg-type]
                implementation_version=meta.implementation_version,
            ),
        )
        return
    fp.write(data)
