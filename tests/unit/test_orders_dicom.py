"""Orders as DICOM sees them (core/orders.py): worklist queries into filters, answers in
the character set asked for, MPPS and storage commitment data sets read and answered."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, time

import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from storage.records import (
    FacilityId,
    Order,
    OrderId,
    OrderSpec,
    OrderStatus,
    OrderUrgency,
    StepStatus,
)
from teleradiology.core import orders as rules
from teleradiology.core.errors import BadRequest


def spec(**changes: object) -> OrderSpec:
    values: dict[str, object] = {
        "patient_id": "WD-1",
        "patient_name": "张^三丰",
        "patient_sex": "M",
        "patient_birth_date": date(1958, 3, 12),
        "modality": "CT",
        "station_ae": "HBXLWD01",
        "procedure_description": "胸部平扫",
        "urgency": OrderUrgency.URGENT,
        "clinical_question": "咳嗽两周",
        "history": None,
        "scheduled_date": date(2026, 12, 7),
        "scheduled_time": time(9, 30),
    }
    values.update(changes)
    return OrderSpec(**values)  # type: ignore[arg-type]


def order() -> Order:
    return Order(
        id=OrderId(1),
        facility_id=FacilityId(5),
        facility_code="HB-XL-WD",
        accession_number="202612070001",
        requested_procedure_id="202612070001",
        sps_id="202612070001",
        study_instance_uid="1.2.3.4",
        spec=spec(),
        status=OrderStatus.SCHEDULED,
        study_id=None,
        created_at=datetime(2026, 12, 7, 1, 0, tzinfo=UTC),
    )


def query(charset: str | None = None, **step: str) -> Dataset:
    ds = Dataset()
    if charset:
        ds.SpecificCharacterSet = charset
    ds.PatientName = ""
    ds.PatientID = ""
    ds.AccessionNumber = ""
    item = Dataset()
    item.Modality = step.get("Modality", "")
    item.ScheduledProcedureStepStartDate = step.get("date", "")
    item.ScheduledStationAETitle = ""
    ds.ScheduledProcedureStepSequence = Sequence([item])
    return ds


def test_accession_numbers_fit_the_short_string() -> None:
    assert rules.accession_number(date(2026, 12, 7), 1) == "202612070001"
    assert len(rules.accession_number(date(2026, 12, 7), 99_999_999)) == 16
    with pytest.raises(ValueError, match="out of range"):
        rules.accession_number(date(2026, 12, 7), 0)


@pytest.mark.parametrize(
    ("changes", "word"),
    [
        ({"modality": "XY"}, "modality"),
        ({"patient_name": "张*"}, "patient_name"),
        ({"patient_id": "A\\B"}, "patient_id"),
        ({"patient_sex": "U"}, "patient_sex"),
        ({"station_ae": "ä"}, "station_ae"),
        ({"patient_birth_date": date(2027, 1, 1)}, "patient_birth_date"),
    ],
)
def test_an_order_the_worklist_cannot_carry_is_refused_naming_the_value(
    changes: dict[str, object], word: str
) -> None:
    with pytest.raises(BadRequest, match=word):
        rules.check_spec(spec(**changes))


def test_a_worklist_query_becomes_the_index_filter() -> None:
    ds = query(Modality="CT", date="20261201-20261210")
    ds.PatientName = "张*"
    ds.PatientID = "WD_1?"
    found = rules.worklist_filter(ds)
    assert found.modality == "CT"
    assert found.date_from == date(2026, 12, 1)
    assert found.date_to == date(2026, 12, 10)
    assert found.patient_name_like == "张%"
    # LIKE's own wildcards are escaped; DICOM's become LIKE's.
    assert found.patient_id_like == "WD\\_1_"
    assert rules.worklist_filter(query()).patient_name_like is None
    # A name with groups matches by its ideographic group when it has one.
    ds.PatientName = "ZHANG*=张*="
    assert rules.worklist_filter(ds).patient_name_like == "张%"
    ds.PatientName = "ZHANG*=="
    assert rules.worklist_filter(ds).patient_name_like == "ZHANG%"
    open_end = rules.worklist_filter(query(date="20261201-"))
    assert open_end.date_from == date(2026, 12, 1)
    assert open_end.date_to is None


@pytest.mark.parametrize("bad", ["2026-12-01", "20261301", "20261210-20261201"])
def test_a_malformed_date_range_is_refused(bad: str) -> None:
    with pytest.raises(BadRequest, match="ScheduledProcedureStepStartDate"):
        rules.worklist_filter(query(date=bad))


def _written(ds: Dataset) -> bytes:
    """The answer as it goes on the wire (pydicom encodes the text in its character set)."""
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=False)
    return out.getvalue()


@pytest.mark.parametrize(
    ("charset", "encoding"),
    [("GB18030", "gb18030"), ("GBK", "gbk"), ("ISO_IR 192", "utf-8"), (None, "utf-8")],
)
def test_the_answer_is_written_in_the_character_set_asked(
    charset: str | None, encoding: str
) -> None:
    answer = rules.worklist_answer(order(), query(charset))
    data = _written(answer)
    assert "张^三丰".encode(encoding) in data
    again = pydicom.dcmread(io.BytesIO(data), force=True)
    assert str(again.PatientName) == "张^三丰"
    # Only what was asked for, and the scheduled step's keys asked for.
    assert "StudyInstanceUID" not in answer
    step = answer.ScheduledProcedureStepSequence[0]
    assert step.Modality == "CT"
    assert step.ScheduledProcedureStepStartDate == "20261207"
    assert "ScheduledProcedureStepID" not in step


def test_mpps_steps_are_read() -> None:
    start = Dataset()
    start.PerformedProcedureStepStatus = "IN PROGRESS"
    item = Dataset()
    item.StudyInstanceUID = "1.2.3"
    item.ScheduledProcedureStepID = "S1"
    item.AccessionNumber = "A1"
    item.RequestedProcedureID = "R1"
    start.ScheduledStepAttributesSequence = Sequence([item])
    got = rules.step_start(start)
    assert (got.study_uid, got.sps_id, got.accession, got.requested_id) == (
        "1.2.3",
        "S1",
        "A1",
        "R1",
    )
    start.PerformedProcedureStepStatus = "COMPLETED"
    with pytest.raises(BadRequest, match="IN PROGRESS"):
        rules.step_start(start)

    done = Dataset()
    done.PerformedProcedureStepStatus = "COMPLETED"
    series = Dataset()
    uids = [generate_uid() for _ in range(3)]
    series.ReferencedImageSequence = Sequence()
    for uid in [*uids, uids[0]]:
        ref = Dataset()
        ref.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
        ref.ReferencedSOPInstanceUID = uid
        series.ReferencedImageSequence.append(ref)
    done.PerformedSeriesSequence = Sequence([series])
    end = rules.step_end(done)
    assert end is not None
    assert end.status is StepStatus.COMPLETED
    assert end.referenced_sops == tuple(uids)
    # An N-SET that keeps it in progress ends nothing; an unknown status is refused.
    still = Dataset()
    still.PerformedProcedureStepStatus = "IN PROGRESS"
    assert rules.step_end(still) is None
    still.PerformedProcedureStepStatus = "DONE"
    with pytest.raises(BadRequest, match="DONE"):
        rules.step_end(still)


def test_a_commitment_answers_each_instance() -> None:
    request = Dataset()
    request.TransactionUID = "9.9"
    request.ReferencedSOPSequence = Sequence()
    for uid in ("1.1", "1.2", "1.3"):
        item = Dataset()
        item.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
        item.ReferencedSOPInstanceUID = uid
        request.ReferencedSOPSequence.append(item)
    transaction, asked = rules.commitment_request(request)
    assert transaction == "9.9"
    event_type, report = rules.commitment_result(
        transaction, asked, {"1.1": "1.2.840.10008.5.1.4.1.1.2", "1.2": "1.2.840.10008.5.1.4.1.1.7"}
    )
    assert event_type == 2
    assert [i.ReferencedSOPInstanceUID for i in report.ReferencedSOPSequence] == ["1.1"]
    failures = {i.ReferencedSOPInstanceUID: i.FailureReason for i in report.FailedSOPSequence}
    assert failures == {"1.2": rules.CLASS_INSTANCE_CONFLICT, "1.3": rules.NO_SUCH_OBJECT}
    all_ok, report = rules.commitment_result(transaction, asked[:1], {"1.1": asked[0][0]})
    assert all_ok == 1
    assert "FailedSOPSequence" not in report
    empty = Dataset()
    empty.TransactionUID = "9.9"
    with pytest.raises(BadRequest, match="names no instance"):
        rules.commitment_request(empty)


def test_the_reader_is_asked_the_question_with_the_history() -> None:
    assert rules.reading_question(spec(history="吸烟三十年")) == "咳嗽两周\n病史: 吸烟三十年"
    assert rules.reading_question(spec(clinical_question=None)) is None


def _timed(dates: str, times: str) -> Dataset:
    ds = query(date=dates)
    ds.ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartTime = times
    return ds


def test_a_worklist_time_range_bounds_the_scheduled_start() -> None:
    found = rules.worklist_filter(_timed("20261207", "0800-1200"))
    assert (found.date_from, found.time_from) == (date(2026, 12, 7), time(8, 0))
    # the upper end takes in the whole minute it names
    assert found.time_to == time(12, 0, 59, 999999)
    single = rules.worklist_filter(_timed("", "09"))
    assert (single.time_from, single.time_to) == (time(9, 0), time(9, 59, 59, 999999))
    open_end = rules.worklist_filter(_timed("", "1330-"))
    assert (open_end.time_from, open_end.time_to) == (time(13, 30), None)
    # across days the range may end at an earlier time of day than it starts
    night = rules.worklist_filter(_timed("20261207-20261208", "2200-0600"))
    assert (night.time_from, night.time_to) == (time(22, 0), time(6, 0, 59, 999999))


@pytest.mark.parametrize(
    ("dates", "times"), [("20261207", "1200-0800"), ("", "25"), ("", "08:00"), ("", "-")]
)
def test_a_malformed_time_range_is_refused(dates: str, times: str) -> None:
    with pytest.raises(BadRequest, match="ScheduledProcedureStepStartTime"):
        rules.worklist_filter(_timed(dates, times))
