"""Pure parts of the DICOMweb read side: Accept parsing, wildcard patterns, ranges."""

from __future__ import annotations

import pytest

from storage.qido import like_pattern
from storage.search import Range
from teleradiology.core.dicomweb import parse_accept
from teleradiology.core.errors import BadRequest
from teleradiology.core.query import date_range, tag_of, time_range


def test_accept_ranges_sort_by_q_then_specificity_then_order() -> None:
    ranges = parse_accept("image/*;q=0.5, image/png;q=0.5, image/jpeg;q=0.9, text/html;q=0")
    assert [r.type for r in ranges] == ["image/jpeg", "image/png", "image/*"]


def test_accept_parameters_quoted_or_not() -> None:
    (ohif,) = parse_accept("multipart/related; type=application/octet-stream; transfer-syntax=*")
    assert ohif.params == {"type": "application/octet-stream", "transfer-syntax": "*"}
    (quoted,) = parse_accept('multipart/related; type="application/dicom"')
    assert quoted.params["type"] == "application/dicom"
    assert [r.type for r in parse_accept(None)] == ["*/*"]


def test_dicom_wildcards_become_escaped_like_patterns() -> None:
    assert like_pattern("WANG*") == "WANG%"
    assert like_pattern("W?NG") == "W_NG"
    assert like_pattern("100%_A*") == "100\\%\\_A%"


def test_date_and_time_ranges() -> None:
    assert date_range("StudyDate", "20261101-20261107") == Range("20261101", "20261107")
    assert date_range("StudyDate", "-20261107") == Range(None, "20261107")
    assert date_range("StudyDate", "20261101") == Range("20261101", "20261101")
    assert time_range("StudyTime", "0930-120000.5") == Range("0930", "120000")
    for bad in ("2026-11-01", "20261101-20261001", "-", "2026110"):
        with pytest.raises(BadRequest):
            date_range("StudyDate", bad)


def test_attribute_names_are_keywords_or_known_tags() -> None:
    assert tag_of("PatientName") == 0x00100010
    assert tag_of("00100010") == 0x00100010
    assert tag_of("00091001") == 0x00091001  # a private tag is a valid name
    for bad in ("patientname", "Nonsense", "FFFE0001"):
        with pytest.raises(BadRequest):
            tag_of(bad)
