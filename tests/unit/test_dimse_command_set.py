"""Command sets packed directly are byte for byte those pydicom encodes."""

from __future__ import annotations

import pytest
from pydicom.dataset import Dataset
from pynetdicom.dimse_messages import C_ECHO_RSP, C_FIND_RSP, C_STORE_RSP
from pynetdicom.dimse_primitives import C_ECHO, C_FIND, C_STORE
from pynetdicom.dsutils import encode

from teleradiology.dimse import command_set


def _store_response(status: int, comment: str | None, instance: str) -> Dataset:
    primitive = C_STORE()
    primitive.MessageIDBeingRespondedTo = 7
    primitive.AffectedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    primitive.AffectedSOPInstanceUID = instance
    primitive.Status = status
    message = C_STORE_RSP()
    message.primitive_to_message(primitive)
    if comment is not None:
        message.command_set.ErrorComment = comment
    return message.command_set


@pytest.mark.parametrize(
    ("status", "comment", "instance"),
    [
        (0x0000, None, "1.2.3.4"),
        (0x0000, None, "1.2.3.45"),
        (0xA700, "storage did not answer in time", "2.25.1"),
        (0xC000, "odd", "2.25.12"),
        (0xB000, "stored; differs from its study in PatientName", "1.2"),
    ],
)
def test_a_store_response_is_packed_as_pydicom_encodes_it(
    status: int, comment: str | None, instance: str
) -> None:
    ds = _store_response(status, comment, instance)
    assert command_set.encoded(ds) == encode(ds, True, True)
    assert command_set.fast_encode(encode)(ds, True, True) == encode(ds, True, True)


def test_other_responses_are_packed_as_pydicom_encodes_them() -> None:
    for message, primitive in ((C_ECHO_RSP(), C_ECHO()), (C_FIND_RSP(), C_FIND())):
        primitive.MessageIDBeingRespondedTo = 1
        primitive.AffectedSOPClassUID = "1.2.840.10008.1.1"
        primitive.Status = 0xFF00
        message.primitive_to_message(primitive)
        assert command_set.encoded(message.command_set) == encode(message.command_set, True, True)


def test_what_is_not_plain_goes_to_pydicom() -> None:
    ds = _store_response(0xC000, "疑问", "1.2.3")
    assert command_set.encoded(ds) is None
    assert command_set.fast_encode(encode)(ds, True, True) == encode(ds, True, True)
    ds = _store_response(0, None, "1.2.3")
    ds.OffendingElement = [0x00100010]
    assert command_set.encoded(ds) is None
    ds = Dataset()
    ds.PatientID = "X"
    assert command_set.encoded(ds) is None  # not group 0000
