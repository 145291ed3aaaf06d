"""The rules of the county patient index, without a database."""

from __future__ import annotations

import pytest

from teleradiology.core import patients
from teleradiology.core.errors import BadRequest, Conflict, InvalidState


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        (" 41152719580312001x ", "41152719580312001X"),
        ("411527580312001", "411527580312001"),
        ("4115271958031200", None),  # 16 characters
        ("41152719580312001Y", None),
        ("4115271958031200X1", None),  # X only last
    ],
)
def test_a_national_id_is_15_or_18_characters(text: str, canonical: str | None) -> None:
    if canonical is None:
        with pytest.raises(BadRequest, match="15 or 18 characters"):
            patients.normalise_national_id(text)
    else:
        assert patients.normalise_national_id(text) == canonical


def test_a_national_id_is_kept_as_a_keyed_digest() -> None:
    digest = patients.national_id_digest(b"k" * 32, "41152719580312001X")
    assert len(digest) == 64
    assert "41152719580312001X" not in digest
    assert digest != patients.national_id_digest(b"j" * 32, "41152719580312001X")


@pytest.mark.parametrize(
    ("persons", "into", "moved"),
    [
        ([None, None], None, set()),
        ([None, 4], 4, set()),
        ([4, 4, None], 4, set()),
        ([4, 5, None, 6, 5], 4, {5, 6}),
    ],
)
def test_records_merge_into_the_first_linked_person(
    persons: list[int | None], into: int | None, moved: set[int]
) -> None:
    assert patients.merged_person(persons) == (into, moved)


def test_what_merging_linking_and_unmerging_refuse() -> None:
    with pytest.raises(InvalidState, match="at least two different"):
        patients.check_merge([3, 3])
    patients.check_merge([3, 4])
    with pytest.raises(Conflict, match="unmerge it first"):
        patients.check_link(3, current=7, person=8)
    patients.check_link(3, current=None, person=8)
    patients.check_link(3, current=8, person=8)
    with pytest.raises(InvalidState, match="patient 3 is not linked to anyone"):
        patients.check_unmerge(3, None)
    assert patients.check_unmerge(3, 8) == 8


def test_a_candidate_pair_is_two_records_the_lower_first() -> None:
    assert patients.check_pair(9, 4) == (4, 9)
    assert patients.check_pair(4, 9) == (4, 9)
    with pytest.raises(InvalidState, match="two different"):
        patients.check_pair(4, 4)
