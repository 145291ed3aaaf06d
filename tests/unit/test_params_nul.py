"""Text with a NUL character is refused where it arrives (PostgreSQL text cannot hold one)."""

from __future__ import annotations

import pytest

from teleradiology.core.errors import BadRequest
from teleradiology.http.api.models.ecg import EcgEditIn
from teleradiology.http.api.models.reading import TemplatesQuery
from teleradiology.http.params import validated


@pytest.mark.parametrize(
    ("model", "data"),
    [
        (TemplatesQuery, {"modality": "\x00CR"}),
        (EcgEditIn, {"statements": [{"text_zh": "窦性\x00心律"}]}),
        (EcgEditIn, {"measurements": {"pr\x00": 1.0}}),
    ],
)
def test_a_nul_anywhere_in_what_is_sent_is_a_400(model: type, data: dict[str, object]) -> None:
    with pytest.raises(BadRequest, match="NUL"):
        validated(model, data)


def test_text_without_one_is_read() -> None:
    assert validated(TemplatesQuery, {"modality": "CR"}).modality == "CR"
