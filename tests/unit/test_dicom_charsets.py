"""Text labelled with the wrong character set is decoded as what it is; the file is kept."""

from __future__ import annotations

import io

import pydicom
import pytest

from teleradiology.core.dicom import parse_part10
from tests.factory import make_study, to_part10


def _with_raw_name(label: str | list[str], raw: bytes) -> bytes:
    (data,) = make_study(count=1)
    ds = pydicom.dcmread(io.BytesIO(data))
    ds.SpecificCharacterSet = label
    placeholder = "Q" * len(raw)
    ds.PatientName = placeholder
    data = to_part10(ds)
    assert data.count(placeholder.encode()) == 1
    return data.replace(placeholder.encode(), raw)


@pytest.mark.parametrize(
    ("label", "raw", "name"),
    [
        ("ISO_IR 100", "李^雷".encode("gbk"), "李^雷"),  # GBK labelled Latin-1
        ("", "欧阳^娜娜".encode("gb18030"), "欧阳^娜娜"),  # GBK with no label
        ("ISO_IR 100", "王^小明".encode(), "王^小明"),  # UTF-8 labelled Latin-1
        (["", "ISO 2022 IR 58"], "刘^德华".encode("gb2312"), "刘^德华"),  # no escapes
        (["", "ISO 2022 IR 58"], b"\x1b$)A" + "周^杰".encode("gb2312"), "周^杰"),
        ("ISO_IR 100", "Jérôme^Müller".encode("latin-1"), "Jérôme^Müller"),  # real Latin-1
        ("GB18030", "张^三丰".encode("gb18030"), "张^三丰"),
    ],
)
def test_names_are_indexed_as_written_whatever_the_label_says(
    label: str | list[str], raw: bytes, name: str
) -> None:
    data = _with_raw_name(label, raw)
    parsed = parse_part10(data)
    assert parsed.header.patient_name == name
    assert parsed.data[128:] == data[128:]  # the file keeps its bytes and its label
