"""The file meta group written before each received data set is byte for byte pydicom's."""

from __future__ import annotations

import io
from typing import Any, cast

import pytest
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import UID
from pynetdicom.dsutils import create_file_meta

from teleradiology.dimse import file_meta


def _pydicom(sop_class: str, sop_instance: str, syntax: str) -> bytes:
    out = io.BytesIO()
    write_file_meta_info(
        cast(Any, out),
        create_file_meta(
            sop_class_uid=UID(sop_class),
            sop_instance_uid=UID(sop_instance),
            transfer_syntax=UID(syntax),
        ),
    )
    return out.getvalue()


@pytest.mark.parametrize(
    ("sop_class", "sop_instance", "syntax"),
    [
        ("1.2.840.10008.5.1.4.1.1.2", "1.2.3.4", "1.2.840.10008.1.2.1"),
        ("1.2.840.10008.5.1.4.1.1.4", "1.2.3.45", "1.2.840.10008.1.2"),
        ("1.2.840.10008.5.1.4.1.1.1.1", "2.25." + "9" * 59, "1.2.840.10008.1.2.4.50"),
    ],
)
def test_a_plain_group_is_the_one_pydicom_writes(
    sop_class: str, sop_instance: str, syntax: str
) -> None:
    meta = file_meta.FileMeta(
        sop_class_uid=sop_class, sop_instance_uid=sop_instance, transfer_syntax=syntax
    )
    assert file_meta.encoded(meta) == _pydicom(sop_class, sop_instance, syntax)
    out = io.BytesIO()
    file_meta.write(out, meta)
    assert out.getvalue() == _pydicom(sop_class, sop_instance, syntax)


def test_a_group_with_an_odd_uid_is_left_to_pydicom() -> None:
    odd = "1.2.3.x "
    meta = file_meta.FileMeta(
        sop_class_uid="1.2.840.10008.5.1.4.1.1.2",
        sop_instance_uid=odd,
        transfer_syntax="1.2.840.10008.1.2.1",
    )
    assert file_meta.encoded(meta) is None
    out = io.BytesIO()
    file_meta.write(out, meta)
    assert out.getvalue() == _pydicom("1.2.840.10008.5.1.4.1.1.2", odd, "1.2.840.10008.1.2.1")
