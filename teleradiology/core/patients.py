"""The rules of the county patient index: a person's records at several facilities are linked
only explicitly (a national ID, kept as a keyed hash, or an administrator's merge), and a
record belongs to one person at a time.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

from teleradiology.core.errors import BadRequest, Conflict, InvalidState
from teleradiology.core.language import N_


def normalise_national_id(national_id: str) -> str:
    """The canonical form of a resident ID number (15 or 18 characters, X upper case)."""
    text = national_id.strip().upper()
    if (
        len(text) not in (15, 18)
        or not text[:-1].isdigit()
        or not (text[-1].isdigit() or text[-1] == "X")
    ):
        raise BadRequest(N_("身份证号为 15 或 18 位：数字，最后一位可为 X"))
    return text


def national_id_digest(key: bytes, canonical: str) -> str:
    """What is kept of a national ID: its HMAC-SHA256 under the network's own key."""
    return hmac.new(key, canonical.encode(), hashlib.sha256).hexdigest()


def check_link(patient: int, current: int | None, person: int) -> None:
    """A record linked to one person is not linked to another before it is unmerged."""
    if current is not None and current != person:
        raise Conflict(N_("患者 %(id)s 已关联到另一人；请先解除合并"), id=patient)


def check_merge(patients: Sequence[int]) -> None:
    """A merge names at least two different records."""
    if len(set(patients)) < 2:
        raise InvalidState(N_("请指明至少两条不同的患者记录来合并"))


def merged_person(persons: Sequence[int | None]) -> tuple[int | None, set[int]]:
    """The person records merge into (the first one linked, None: a new person), and the
    other persons whose records move to it."""
    person = next((p for p in persons if p is not None), None)
    return person, {p for p in persons if p is not None and p != person}


def check_unmerge(patient: int, person: int | None) -> int:
    """A record is unmerged from the person it was linked to."""
    if person is None:
        raise InvalidState(N_("患者 %(id)s 没有关联到任何人"), id=patient)
    return person


def check_pair(a: int, b: int) -> tuple[int, int]:
    """A candidate pair is two different records, the lower id first."""
    if a == b:
        raise InvalidState(N_("请指明两条不同的患者记录"))
    return (a, b) if a < b else (b, a)
