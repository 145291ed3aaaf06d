"""Exam orders as DICOM sees them: a clinic's order checked, a Modality Worklist query
turned into the index's filter, an order turned into the worklist answer in the character
set the query asked for, and the MPPS and storage commitment data sets read.

Pure: pydicom data sets in, records out (and back).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from storage.records import Order, OrderMatch, OrderSpec, StepEnd, StepStatus
from teleradiology.core.errors import BadRequest
from teleradiology.core.language import N_
from teleradiology.core.query import date_range, time_range

#: Modalities an order may schedule (PS3.3 C.7.3.1.1.1), the ones the network's clinics run.
MODALITIES = frozenset({"CR", "DX", "CT", "MR", "US", "MG", "XA", "RF", "NM", "PT", "ECG", "OT"})
SEXES = frozenset({"M", "F", "O"})
#: The character sets a worklist answer is written in: what the query asks (PS3.5 6.1).
UTF8 = "ISO_IR 192"
GB18030 = "GB18030"
#: The Chinese character sets a query may be in, and its answers then are (PS3.3 C.12.1.1.2).
_CHINESE_CHARSETS = (GB18030, "GBK")
_AE = re.compile(r"^[\x20-\x5b\x5d-\x7e]{1,16}$")  # AE: 16 characters, no backslash


def check_spec(spec: OrderSpec) -> None:
    """An order the worklist can offer, or a BadRequest naming the value to fix."""
    if not spec.patient_id.strip() or len(spec.patient_id) > 64:
        raise BadRequest(N_("patient_id：1 到 64 个字符"))
    if "\\" in spec.patient_id or "*" in spec.patient_id or "?" in spec.patient_id:
        raise BadRequest(N_("%(field)s：不能含反斜杠和通配符（* ?）"), field="patient_id")
    if not spec.patient_name.strip():
        raise BadRequest(N_("patient_name：须写患者姓名（姓^名）"))
    groups = spec.patient_name.split("=")
    if len(groups) > 3 or any(len(g) > 64 or g.count("^") > 4 for g in groups):
        raise BadRequest(N_("patient_name：每组至多 64 个字符、5 个部分（^）"))
    if "\\" in spec.patient_name or "*" in spec.patient_name or "?" in spec.patient_name:
        raise BadRequest(N_("%(field)s：不能含反斜杠和通配符（* ?）"), field="patient_name")
    if spec.patient_sex is not None and spec.patient_sex not in SEXES:
        raise BadRequest(N_("patient_sex：M、F 或 O"))
    if spec.modality not in MODALITIES:
        raise BadRequest(
            N_("modality：须为以下之一：%(allowed)s"), allowed=", ".join(sorted(MODALITIES))
        )
    if spec.station_ae is not None and not _AE.match(spec.station_ae):
        raise BadRequest(N_("station_ae：1 到 16 个字符的 AE 标题"))
    if spec.patient_birth_date is not None and spec.patient_birth_date > spec.scheduled_date:
        raise BadRequest(N_("patient_birth_date：晚于预约日期"))
    for name, text, most in (
        ("procedure_description", spec.procedure_description, 64),
        ("clinical_question", spec.clinical_question, 1024),
        ("history", spec.history, 4096),
    ):
        if text is not None and len(text) > most:
            raise BadRequest(N_("%(field)s：至多 %(n)s 个字符"), field=name, n=most)


def reading_question(spec: OrderSpec) -> str | None:
    """What the reader is asked: the order's clinical question and its history, as the send
    page writes them."""
    parts = [spec.clinical_question, f"病史: {spec.history}" if spec.history else None]
    return "\n".join(p for p in parts if p) or None


def accession_number(day: date, number: int) -> str:
    """The facility's ``number``-th accession number of ``day``: YYYYMMDD and four digits
    (SH: at most 16 characters)."""
    if not 1 <= number <= 99_999_999:
        raise ValueError(f"order number {number} out of range")
    return f"{day:%Y%m%d}{number:04d}"


# --- the Modality Worklist query ----------------------------------------------------------------


def _like(value: str) -> str | None:
    """A DICOM match value (``*`` any, ``?`` one character) as a LIKE pattern; None for the
    universal match (empty or ``*`` alone)."""
    if value in ("", "*"):
        return None
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")


def _text(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword)
    return "" if value is None else str(value).strip()


def _exact(ds: Dataset, keyword: str) -> str | None:
    value = _text(ds, keyword)
    if value in ("", "*"):
        return None
    if "*" in value or "?" in value:
        raise BadRequest(N_("%(keyword)s：此键不匹配通配符"), keyword=keyword)
    return value


def _step_item(identifier: Dataset) -> Dataset:
    steps = identifier.get("ScheduledProcedureStepSequence")
    if not steps:
        return Dataset()
    if len(steps) != 1:
        raise BadRequest(N_("ScheduledProcedureStepSequence：查询中只能有一个条目"))
    item: Dataset = steps[0]
    return item


def worklist_filter(identifier: Dataset) -> OrderMatch:
    """The index's filter for a Modality Worklist C-FIND identifier (PS3.4 K.6.1.2).

    Raises
    ------
    BadRequest
        A key the worklist matches carries a value it cannot match (a malformed date range,
        a wildcard in an exact key, two scheduled steps).
    """
    step = _step_item(identifier)
    dates = _text(step, "ScheduledProcedureStepStartDate")
    low = high = None
    if dates:
        found = date_range("ScheduledProcedureStepStartDate", dates)
        low = _date(found.low) if found.low else None
        high = _date(found.high) if found.high else None
    time_low, time_high = _times(_text(step, "ScheduledProcedureStepStartTime"))
    if time_low and time_high and time_low > time_high and (low is None or low == high):
        raise BadRequest(N_("ScheduledProcedureStepStartTime：范围的结束早于开始"))
    return OrderMatch(
        modality=_exact(step, "Modality"),
        station_ae=_exact(step, "ScheduledStationAETitle"),
        date_from=low,
        date_to=high,
        time_from=time_low,
        time_to=time_high,
        accession_number=_exact(identifier, "AccessionNumber"),
        patient_id_like=_like(_text(identifier, "PatientID")),
        patient_name_like=_like(_name_group(_text(identifier, "PatientName"))),
    )


def _name_group(name: str) -> str:
    """The one group of a person name a query matches by: the whole name, or of a name
    with groups (``ZHANG^SAN=张^三=``) the ideographic one when given, else the first."""
    if "=" not in name:
        return name
    groups = name.split("=")
    ideographic = groups[1] if len(groups) > 1 else ""
    return ideographic if ideographic not in ("", "*") else groups[0]


def _date(text: str) -> date:
    try:
        return datetime.strptime(text, "%Y%m%d").date()
    except ValueError:
        raise BadRequest(
            N_("ScheduledProcedureStepStartDate：%(text)s 不是日期"), text=text
        ) from None


def _times(value: str) -> tuple[time | None, time | None]:
    """A TM matching value's bounds. A range may end before it starts when the date range
    spans days (22:00 one day to 06:00 the next), so its ends are read one by one."""
    if not value:
        return None, None
    name = "ScheduledProcedureStepStartTime"
    first, dash, last = value.partition("-")
    if not dash:
        last = first
    if not first and not last:
        raise BadRequest(N_("%(name)s=%(value)r 是空范围"), name=name, value=value)
    low = _time(time_range(name, first).low or "", ceil=False) if first else None
    high = _time(time_range(name, last).low or "", ceil=True) if last else None
    return low, high


def _time(text: str, *, ceil: bool) -> time:
    """A TM bound (HH, HHMM or HHMMSS) as a time of day: the earliest it names, or with
    `ceil` the latest (an upper bound of "1200" takes in 12:00:59)."""
    hour, minute, second = int(text[0:2]), text[2:4], text[4:6]
    top = 59 if ceil else 0
    try:
        return time(
            hour,
            int(minute) if minute else top,
            int(second) if second else top,
            999999 if ceil else 0,
        )
    except ValueError:
        raise BadRequest(
            N_("ScheduledProcedureStepStartTime：%(text)s 不是时间"), text=text
        ) from None


def answer_charset(identifier: Dataset) -> str:
    """The character set the answers are written in: GB18030 (or GBK) when the query is in
    it, else UTF-8 (Chinese names need one of them; ASCII is a subset)."""
    asked = identifier.get("SpecificCharacterSet")
    values = [asked] if isinstance(asked, str) else list(asked or [])
    return next((v for v in values if v in _CHINESE_CHARSETS), UTF8)


def _step(order: Order) -> Dataset:
    spec = order.spec
    step = Dataset()
    step.Modality = spec.modality
    step.ScheduledStationAETitle = spec.station_ae or ""
    step.ScheduledProcedureStepStartDate = f"{spec.scheduled_date:%Y%m%d}"
    step.ScheduledProcedureStepStartTime = (
        f"{spec.scheduled_time:%H%M%S}" if spec.scheduled_time else ""
    )
    step.ScheduledPerformingPhysicianName = ""
    step.ScheduledProcedureStepDescription = spec.procedure_description or ""
    step.ScheduledProcedureStepID = order.sps_id
    step.ScheduledProcedureStepStatus = "SCHEDULED"
    return step


def _full_answer(order: Order) -> Dataset:
    spec = order.spec
    ds = Dataset()
    ds.AccessionNumber = order.accession_number
    ds.ReferringPhysicianName = ""
    ds.PatientName = spec.patient_name
    ds.PatientID = spec.patient_id
    ds.IssuerOfPatientID = order.facility_code
    ds.PatientBirthDate = f"{spec.patient_birth_date:%Y%m%d}" if spec.patient_birth_date else ""
    ds.PatientSex = spec.patient_sex or ""
    ds.MedicalAlerts = ""
    ds.AdditionalPatientHistory = (spec.history or "")[:10240]
    ds.ReasonForTheRequestedProcedure = (spec.clinical_question or "")[:64]
    ds.StudyInstanceUID = order.study_instance_uid
    ds.RequestedProcedureID = order.requested_procedure_id
    ds.RequestedProcedureDescription = spec.procedure_description or ""
    ds.RequestedProcedurePriority = "STAT" if spec.urgency.value == "urgent" else "ROUTINE"
    ds.ScheduledProcedureStepSequence = Sequence([_step(order)])
    return ds


def _pruned(full: Dataset, asked: Dataset) -> Dataset:
    """The answer's elements the query asked for (an empty sequence item asks for all)."""
    answer = Dataset()
    for element in asked:
        if element.keyword == "SpecificCharacterSet" or element.tag not in full:
            continue
        value = full[element.tag]
        if element.VR == "SQ" and element.value and len(element.value[0]):
            items = [_pruned(item, element.value[0]) for item in value.value]
            answer[element.tag] = value
            answer[element.tag].value = Sequence(items)
        else:
            answer[element.tag] = value
    return answer


def worklist_answer(order: Order, identifier: Dataset) -> Dataset:
    """One worklist match as the query asked for it, in the character set it asked for."""
    answer = _pruned(_full_answer(order), identifier)
    answer.SpecificCharacterSet = answer_charset(identifier)
    return answer


# --- MPPS ---------------------------------------------------------------------------------------

#: Performed Procedure Step Status values (PS3.3 C.7.7.2 / PS3.4 F.7.2.1).
_STEP_STATUS = {
    "IN PROGRESS": StepStatus.IN_PROGRESS,
    "COMPLETED": StepStatus.COMPLETED,
    "DISCONTINUED": StepStatus.DISCONTINUED,
}


@dataclass(frozen=True, kw_only=True)
class StepStart:
    """What an N-CREATE says of the step: the order it performs and the study."""

    study_uid: str | None
    sps_id: str
    requested_id: str
    accession: str


def step_start(ds: Dataset) -> StepStart:
    """The order and study an MPPS N-CREATE names (PS3.4 F.7.2.1).

    Raises
    ------
    BadRequest
        The status is not IN PROGRESS.
    """
    status = _text(ds, "PerformedProcedureStepStatus")
    if status != "IN PROGRESS":
        raise BadRequest(
            N_("PerformedProcedureStepStatus 须为 IN PROGRESS，而非 %(status)r"), status=status
        )
    items = list(ds.get("ScheduledStepAttributesSequence") or [])
    item = items[0] if items else Dataset()
    return StepStart(
        study_uid=_text(item, "StudyInstanceUID") or None,
        sps_id=_text(item, "ScheduledProcedureStepID"),
        requested_id=_text(item, "RequestedProcedureID"),
        accession=_text(item, "AccessionNumber") or _text(ds, "AccessionNumber"),
    )


def referenced_instances(ds: Dataset) -> tuple[str, ...]:
    """The SOP Instance UIDs an MPPS names (PerformedSeriesSequence → ReferencedImage /
    ReferencedNonImageComposite SOP Instance Sequences), in order, once each."""
    found: dict[str, None] = {}
    for series in ds.get("PerformedSeriesSequence") or []:
        for keyword in (
            "ReferencedImageSequence",
            "ReferencedNonImageCompositeSOPInstanceSequence",
        ):
            for ref in series.get(keyword) or []:
                uid = _text(ref, "ReferencedSOPInstanceUID")
                if not uid:
                    raise BadRequest(
                        N_("%(keyword)s：有条目没有 ReferencedSOPInstanceUID"), keyword=keyword
                    )
                found[uid] = None
    return tuple(found)


def step_end(ds: Dataset) -> StepEnd | None:
    """How an N-SET ends the step, or None when it only updates it (still IN PROGRESS).

    Raises
    ------
    BadRequest
        The status is not one of IN PROGRESS, COMPLETED, DISCONTINUED; or a referenced
        instance has no UID.
    """
    text = _text(ds, "PerformedProcedureStepStatus")
    status = _STEP_STATUS.get(text) if text else StepStatus.IN_PROGRESS
    if status is None:
        raise BadRequest(N_("PerformedProcedureStepStatus %(text)r 不是步骤状态"), text=text)
    if status is StepStatus.IN_PROGRESS:
        return None
    code = meaning = None
    reasons = ds.get("PerformedProcedureStepDiscontinuationReasonCodeSequence") or []
    if status is StepStatus.DISCONTINUED and reasons:
        code = _text(reasons[0], "CodeValue") or None
        meaning = _text(reasons[0], "CodeMeaning") or None
    return StepEnd(
        status=status,
        referenced_sops=referenced_instances(ds),
        reason_code=code,
        reason_meaning=meaning,
    )


# --- storage commitment ------------------------------------------------------------------------


def commitment_request(ds: Dataset) -> tuple[str, list[tuple[str, str]]]:
    """The Transaction UID and the (SOP Class UID, SOP Instance UID) pairs a storage
    commitment N-ACTION names (PS3.4 J.3.2).

    Raises
    ------
    BadRequest
        No Transaction UID, no referenced instance, or an item missing a UID.
    """
    transaction = _text(ds, "TransactionUID")
    if not transaction:
        raise BadRequest(N_("缺少 TransactionUID"))
    pairs = []
    for item in ds.get("ReferencedSOPSequence") or []:
        sop_class = _text(item, "ReferencedSOPClassUID")
        sop = _text(item, "ReferencedSOPInstanceUID")
        if not sop_class or not sop:
            raise BadRequest(
                N_("ReferencedSOPSequence：有条目缺少 SOP Class UID 或 SOP Instance UID")
            )
        pairs.append((sop_class, sop))
    if not pairs:
        raise BadRequest(N_("ReferencedSOPSequence 未指明任何实例"))
    return transaction, pairs


#: FailureReason: no such object instance (PS3.4 J.3.3.1.1).
NO_SUCH_OBJECT = 0x0112
#: FailureReason: classInstance conflict (the instance is stored as another SOP class).
CLASS_INSTANCE_CONFLICT = 0x0119


def commitment_result(
    transaction: str, asked: Iterable[tuple[str, str]], stored: dict[str, str]
) -> tuple[int, Dataset]:
    """The N-EVENT-REPORT of a commitment: event type 1 (all committed) or 2 (some failed),
    and its data set; ``stored`` maps each stored instance of the caller's to its class."""
    ok, failed = Sequence(), Sequence()
    for sop_class, sop in asked:
        item = Dataset()
        item.ReferencedSOPClassUID = sop_class
        item.ReferencedSOPInstanceUID = sop
        if sop not in stored:
            item.FailureReason = NO_SUCH_OBJECT
            failed.append(item)
        elif stored[sop] != sop_class:
            item.FailureReason = CLASS_INSTANCE_CONFLICT
            failed.append(item)
        else:
            ok.append(item)
    ds = Dataset()
    ds.TransactionUID = transaction
    if ok:
        ds.ReferencedSOPSequence = ok
    if failed:
        ds.FailedSOPSequence = failed
    return (2 if failed else 1), ds
