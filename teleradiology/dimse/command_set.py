"""DIMSE command sets (C-STORE responses, mostly) encoded directly.

pynetdicom has pydicom's ``write_dataset`` encode each command set twice (once to measure
its group length, once to send it). A command set is a handful of group 0000 elements in
Implicit VR Little Endian: those of plain numbers and ASCII text are packed here with the
same bytes; any other goes to pydicom as before.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from pydicom.dataset import Dataset

_TEXT_PAD = {"UI": b"\x00", "AE": b" ", "LO": b" ", "SH": b" ", "CS": b" ", "ST": b" "}
_NUMBERS = {"US": ("<H", 0xFFFF), "UL": ("<L", 0xFFFFFFFF)}


def _value(vr: str, value: Any) -> bytes | None:
    if vr in _NUMBERS:
        code, top = _NUMBERS[vr]
        if type(value) is not int or not 0 <= value <= top:
            return None
        return struct.pack(code, value)
    pad = _TEXT_PAD.get(vr)
    if pad is None or not isinstance(value, str) or not value.isascii() or "\\" in value:
        return None
    encoded = value.encode()
    return encoded + pad if len(encoded) % 2 else encoded


def encoded(ds: Dataset) -> bytes | None:
    """``ds`` as pydicom's ``write_dataset`` writes it in Implicit VR Little Endian, when
    it is a command set of plain values; None otherwise."""
    out = []
    for tag in sorted(ds.keys()):
        if tag >> 16:
            return None
        element = ds[tag]
        value = _value(element.VR, element.value)
        if value is None or not value:
            return None
        out.append(struct.pack("<HHL", 0, tag & 0xFFFF, len(value)) + value)
    return b"".join(out)


def fast_encode(slow: Callable[..., bytes | None]) -> Callable[..., bytes | None]:
    """pynetdicom's ``encode(ds, is_implicit_vr, is_little_endian, deflated=False)``, with
    plain command sets packed directly and everything else handed to ``slow``."""

    def encode(
        ds: Dataset, is_implicit_vr: bool, is_little_endian: bool, deflated: bool = False
    ) -> bytes | None:
        if is_implicit_vr and is_little_endian and not deflated:
            data = encoded(ds)
            if data is not None:
                return data
        return slow(ds, is_implicit_vr, is_little_endian, deflated)

    return encode
