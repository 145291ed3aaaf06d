"""Records that cross layers: frozen, keyword-only, valid once built."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Any, NewType, Protocol, Self, TypeVar


class Row(Protocol):
    """A database row: asyncpg's Record, or any mapping by column name."""

    def __getitem__(self, key: str, /) -> Any: ...


_T = TypeVar("_T")


def _column(row: Row, name: str, default: Any) -> Any:
    """A column the row may not have (a query that does not read it): its value, or
    `default`."""
    try:
        return row[name]
    except KeyError:
        return default


FacilityId = NewType("FacilityId", int)
UserId = NewType("UserId", int)
StudyId = NewType("StudyId", int)
CaseId = NewType("CaseId", int)
ReportId = NewType("ReportId", int)
ReferralId = NewType("ReferralId", int)
PatientRef = NewType("PatientRef", int)
NotificationId = NewType("NotificationId", int)
ChannelId = NewType("ChannelId", int)


class Tier(StrEnum):
    VILLAGE = "village"
    TOWNSHIP = "township"
    COUNTY = "county"
    CITY = "city"


class Role(StrEnum):
    CLINIC = "clinic"
    READER = "reader"
    ADMIN = "admin"


class Language(StrEnum):
    """A language the service speaks to people in: zh-CN (the default) or English."""

    ZH_CN = "zh-CN"
    EN = "en"


class Specialty(StrEnum):
    RADIOLOGY = "radiology"
    ECG = "ecg"


class Priority(StrEnum):
    """UPS priorities: an urgent request is high, a routine one medium."""

    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class StudyState(StrEnum):
    RECEIVING = "receiving"
    COMPLETE = "complete"


class CaseStatus(StrEnum):
    """The UPS procedure step states."""

    SCHEDULED = "scheduled"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    CANCELED = "canceled"


class Conclusion(StrEnum):
    NORMAL = "normal"
    ABNORMAL = "abnormal"
    CRITICAL = "critical"


class ReportStatus(StrEnum):
    PRELIMINARY = "preliminary"
    FINAL = "final"


class ReceivedVia(StrEnum):
    DIMSE = "dimse"
    STOW = "stow"
    UPLOAD = "upload"
    API = "api"


class UploadState(StrEnum):
    """A resumable upload session: open until committed."""

    OPEN = "open"
    COMMITTED = "committed"


_SHA256 = re.compile(r"[0-9a-f]{64}")
_UID = re.compile(r"[0-9]+(\.[0-9]+)*")


@dataclass(frozen=True, kw_only=True)
class ManifestItem:
    """One instance an upload's client will send, described as the file it sends."""

    sop_instance_uid: str
    size_bytes: int
    sha256: str

    def __post_init__(self) -> None:
        if len(self.sop_instance_uid) > 64 or not _UID.fullmatch(self.sop_instance_uid):
            raise ValueError(
                f"SOP Instance UID {self.sop_instance_uid[:80]!r} is not a DICOM UID "
                "(digits and dots, at most 64 characters)"
            )
        if self.size_bytes <= 0:
            raise ValueError(f"instance {self.sop_instance_uid}: size must be positive")
        if not _SHA256.fullmatch(self.sha256):
            raise ValueError(
                f"instance {self.sop_instance_uid}: sha256 must be 64 lowercase hex characters"
            )


class EventKind(StrEnum):
    """A step of a study, case, report or referral, stamped with the server's UTC clock.

    Turnaround is measured between these; ``received``, ``identity_conflict`` and
    ``late_instance`` are written by the ingest statement itself (migration 0030).
    """

    RECEIVED = "received"
    IDENTITY_CONFLICT = "identity_conflict"
    LATE_INSTANCE = "late_instance"
    COMPLETE = "complete"
    ROUTED = "routed"
    PRIORITY = "priority"
    STEMI_SUSPECTED = "stemi_suspected"
    CLAIMED = "claimed"
    RELEASED = "released"
    LEASE_EXPIRED = "lease_expired"
    ESCALATED = "escalated"
    RETURNED = "returned"
    SECOND_READ = "second_read"
    DEADLINE_AT_RISK = "deadline_at_risk"
    PRELIMINARY = "preliminary"
    FINAL = "final"
    ADDENDUM = "addendum"
    DELIVERED = "delivered"
    ACKNOWLEDGED = "acknowledged"
    CRITICAL_RESENT = "critical_resent"
    CRITICAL_ALERT = "critical_alert"
    REFERRAL_REQUESTED = "referral_requested"
    REFERRAL_ACCEPTED = "referral_accepted"
    REFERRAL_DECLINED = "referral_declined"
    REFERRAL_ARRIVED = "referral_arrived"
    REFERRAL_RETURNED = "referral_returned"


class TurnaroundSegment(StrEnum):
    """A stretch of a case's life that turnaround measures, from one event to another
    (``storage.turnaround.SEGMENTS`` names the two events of each)."""

    RECEIVED_TO_COMPLETE = "received_to_complete"
    COMPLETE_TO_ROUTED = "complete_to_routed"
    ROUTED_TO_CLAIMED = "routed_to_claimed"
    CLAIMED_TO_ESCALATED = "claimed_to_escalated"
    CLAIMED_TO_PRELIMINARY = "claimed_to_preliminary"
    ESCALATED_TO_FINAL = "escalated_to_final"
    CLAIMED_TO_FINAL = "claimed_to_final"
    FINAL_TO_DELIVERED = "final_to_delivered"
    DELIVERED_TO_ACKNOWLEDGED = "delivered_to_acknowledged"
    RECEIVED_TO_FINAL = "received_to_final"
    RECEIVED_TO_ACKNOWLEDGED = "received_to_acknowledged"


class NotificationKind(StrEnum):
    """What the service tells a facility's users (or one user); the event stream names it."""

    CASE = "case"
    ESCALATED = "escalated"
    RETURNED = "returned"
    STEMI = "stemi"
    LATE_INSTANCE = "late_instance"
    DEADLINE_AT_RISK = "deadline_at_risk"
    REPORT = "report"
    CRITICAL = "critical"
    ADDENDUM = "addendum"
    CRITICAL_ALERT = "critical_alert"
    REFERRAL = "referral"
    REFERRAL_ACCEPTED = "referral_accepted"
    REFERRAL_DECLINED = "referral_declined"
    REFERRAL_ARRIVED = "referral_arrived"
    REFERRAL_RETURNED = "referral_returned"
    #: A step of a clinic's study on its way to a report (complete, routed, claimed,
    #: released, escalated), for the clinic's pages to follow.
    STUDY_PROGRESS = "study_progress"


class TokenKind(StrEnum):
    """What made a bearer token: ``telemed token create``, a sign-in of the API, the
    browser's session cookie, ``serve --demo``."""

    CLI = "cli"
    SIGNIN = "signin"
    SESSION = "session"
    DEMO = "demo"


class AuditAction(StrEnum):
    """What a user (or a DICOM peer) did with patient data, as the audit log records it."""

    READ = "read"
    LIST = "list"
    QIDO = "qido"
    RETRIEVE = "retrieve"
    METADATA = "metadata"
    WADO = "wado"
    SHEET = "sheet"
    C_FIND = "c-find"
    C_GET = "c-get"
    C_MOVE = "c-move"
    CONFIGURE = "configure"
    #: A document read whole: an ECG's original file as it was received.
    ORIGINAL = "original"
    #: Images or an ECG received: STOW-RS, an ECG upload, a C-STORE.
    STOW = "stow"
    C_STORE = "c-store"
    #: A reader's change of an ECG's measurements or statements; of a report template.
    EDIT = "edit"
    #: A step of a two-way referral: raised (with its attachments), answered, the patient's
    #: arrival, the return down.
    REFER = "refer"
    #: A request refused on scope (403, or 404 for what is outside it).
    DENIED = "denied"
    SIGN_IN = "sign-in"
    #: An administrator's search or export of the audit itself.
    AUDIT = "audit"
    #: An exam order registered or canceled by its clinic.
    ORDER = "order"


class AuditResult(StrEnum):
    """How an audited request ended."""

    OK = "ok"
    DENIED = "denied"
    FAILED = "failed"


def _opt_id(kind: Callable[[Any], _T], value: Any) -> _T | None:
    return kind(value) if value is not None else None


def _aware(name: str, value: datetime | None) -> None:
    if value is not None and value.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {value.isoformat()}")


@dataclass(frozen=True, kw_only=True)
class Facility:
    id: FacilityId
    code: str
    name: str
    tier: Tier
    parent_id: FacilityId | None

    @classmethod
    def from_row(cls, row: Row) -> Self:
        return cls(
            id=FacilityId(row["id"]),
            code=row["code"],
            name=row["name"],
            tier=Tier(row["tier"]),
            parent_id=FacilityId(row["parent_id"]) if row["parent_id"] is not None else None,
        )


@dataclass(frozen=True, kw_only=True)
class User:
    id: UserId
    username: str
    display_name: str
    role: Role
    facility_id: FacilityId
    specialties: frozenset[Specialty] = field(default_factory=frozenset)
    active: bool = True
    #: What the user reads pages, PDFs and e-mails in.
    language: Language = Language.ZH_CN

    def __post_init__(self) -> None:
        if self.role is not Role.READER and self.specialties:
            raise ValueError(f"only readers have specialties, {self.username} is a {self.role}")

    @classmethod
    def from_row(cls, row: Row) -> Self:
        return cls(
            id=UserId(row["id"]),
            username=row["username"],
            display_name=row["display_name"],
            role=Role(row["role"]),
            facility_id=FacilityId(row["facility_id"]),
            specialties=frozenset(Specialty(s) for s in row["specialties"]),
            active=row["active"],
            language=Language(_column(row, "language", Language.ZH_CN)),
        )


@dataclass(frozen=True, kw_only=True)
class Study:
    id: StudyId
    study_instance_uid: str
    facility_id: FacilityId
    facility_code: str
    patient_id: str
    patient_name: str | None
    accession_number: str | None
    study_date: str | None
    description: str | None
    modalities: tuple[str, ...]
    state: StudyState
    priority: Priority
    num_series: int
    num_instances: int
    first_received_at: datetime
    last_received_at: datetime
    completed_at: datetime | None

    def __post_init__(self) -> None:
        _aware("first_received_at", self.first_received_at)
        _aware("last_received_at", self.last_received_at)
        _aware("completed_at", self.completed_at)

    @classmethod
    def from_row(cls, row: Row) -> Self:
        return cls(
            id=StudyId(row["id"]),
            study_instance_uid=row["study_instance_uid"],
            facility_id=FacilityId(row["facility_id"]),
            facility_code=row["facility_code"],
            patient_id=row["patient_id"],
            patient_name=row["patient_name"],
            accession_number=row["accession_number"],
            study_date=row["study_date"],
            description=row["description"],
            modalities=tuple(row["modalities"]),
            state=StudyState(row["state"]),
            priority=Priority(row["priority"]),
            num_series=row["num_series"],
            num_instances=row["num_instances"],
            first_received_at=row["first_received_at"],
            last_received_at=row["last_received_at"],
            completed_at=row["completed_at"],
        )


@dataclass(frozen=True, kw_only=True)
class Case:
    id: CaseId
    study_id: StudyId
    study_instance_uid: str
    facility_id: FacilityId
    facility_code: str
    specialty: Specialty
    priority: Priority
    status: CaseStatus
    pool_facility_id: FacilityId
    escalation_facility_id: FacilityId | None
    claimed_by: UserId | None
    lease_expires_at: datetime | None
    deadline: datetime
    created_at: datetime
    modalities: tuple[str, ...]
    patient_name: str | None
    first_pool_facility_id: FacilityId | None = None
    pool_code: str | None = None
    question: str | None = None
    escalated_at: datetime | None = None
    stemi: bool = False
    second_read_of: CaseId | None = None
    return_code: str | None = None
    #: What the sending clinic asked when it requested the reading (not the escalation's).
    clinical_question: str | None = None

    def __post_init__(self) -> None:
        _aware("escalated_at", self.escalated_at)
        _aware("deadline", self.deadline)
        _aware("created_at", self.created_at)
        _aware("lease_expires_at", self.lease_expires_at)
        if (self.status is CaseStatus.IN_PROGRESS) != (self.claimed_by is not None):
            raise ValueError(
                f"case {self.id}: status {self.status} with claimed_by={self.claimed_by}"
            )

    @classmethod
    def from_row(cls, row: Row) -> Self:
        esc = row["escalation_facility_id"]
        return cls(
            id=CaseId(row["id"]),
            study_id=StudyId(row["study_id"]),
            study_instance_uid=row["study_instance_uid"],
            facility_id=FacilityId(row["facility_id"]),
            facility_code=row["facility_code"],
            specialty=Specialty(row["specialty"]),
            priority=Priority(row["priority"]),
            status=CaseStatus(row["status"]),
            pool_facility_id=FacilityId(row["pool_facility_id"]),
            escalation_facility_id=FacilityId(esc) if esc is not None else None,
            claimed_by=UserId(row["claimed_by"]) if row["claimed_by"] is not None else None,
            lease_expires_at=row["lease_expires_at"],
            deadline=row["deadline"],
            created_at=row["created_at"],
            modalities=tuple(row["modalities"]),
            patient_name=row["patient_name"],
            first_pool_facility_id=FacilityId(row["first_pool_facility_id"]),
            pool_code=row["pool_code"],
            question=row["question"],
            escalated_at=row["escalated_at"],
            stemi=row["stemi"],
            second_read_of=_opt_id(CaseId, row["second_read_of"]),
            return_code=row["return_code"],
            clinical_question=row["clinical_question"],
        )

    @property
    def escalated(self) -> bool:
        return self.escalated_at is not None


@dataclass(frozen=True, kw_only=True)
class Report:
    id: ReportId
    case_id: CaseId
    study_instance_uid: str
    facility_id: FacilityId
    author_id: UserId
    author_name: str
    status: ReportStatus
    findings: str
    impression: str
    conclusion: Conclusion
    signed_at: datetime
    signature_sha256: str
    delivered_at: datetime | None
    acknowledged_at: datetime | None
    #: an addendum names the report it amends; versions count up per case
    amends_report_id: ReportId | None = None
    version: int = 1
    #: on an escalated case: whether the finalising reader agreed with the first reader
    agreed: bool | None = None
    discrepancy: str | None = None
    has_pdf: bool = False
    acknowledged_name: str | None = None
    #: what the person who took a critical result repeated back (复述)
    acknowledged_read_back: str | None = None
    critical_due_at: datetime | None = None

    def __post_init__(self) -> None:
        _aware("critical_due_at", self.critical_due_at)
        if self.version < 1:
            raise ValueError(f"report {self.id}: version {self.version} must be 1 or more")
        _aware("signed_at", self.signed_at)
        _aware("delivered_at", self.delivered_at)
        _aware("acknowledged_at", self.acknowledged_at)

    @classmethod
    def from_row(cls, row: Row) -> Self:
        return cls(
            id=ReportId(row["id"]),
            case_id=CaseId(row["case_id"]),
            study_instance_uid=row["study_instance_uid"],
            facility_id=FacilityId(row["facility_id"]),
            author_id=UserId(row["author_id"]),
            author_name=row["author_name"],
            status=ReportStatus(row["status"]),
            findings=row["findings"],
            impression=row["impression"],
            conclusion=Conclusion(row["conclusion"]),
            signed_at=row["signed_at"],
            signature_sha256=row["signature_sha256"],
            delivered_at=row["delivered_at"],
            acknowledged_at=row["acknowledged_at"],
            amends_report_id=_opt_id(ReportId, row["amends_report_id"]),
            version=row["version"],
            agreed=row["agreed"],
            discrepancy=row["discrepancy"],
            has_pdf=row["pdf_key"] is not None,
            acknowledged_name=row["acknowledged_name"],
            acknowledged_read_back=row["acknowledged_read_back"],
            critical_due_at=row["critical_due_at"],
        )


class ReturnReason(StrEnum):
    """Why a reader returns a study to the clinic: the clinic answers for data quality."""

    MOTION = "motion"
    POSITIONING = "positioning"
    EXPOSURE = "exposure"
    #: a series or an ECG lead is missing
    INCOMPLETE = "incomplete"
    ARTIFACT = "artifact"
    WRONG_PATIENT = "wrong_patient"
    #: an ECG's baseline wander or muscle noise
    NOISE = "noise"
    OTHER = "other"


class ReferralDirection(StrEnum):
    """Up to a county or city hospital, or down (back) to the clinic."""

    UP = "up"
    DOWN = "down"


class ReferralStatus(StrEnum):
    REQUESTED = "requested"
    #: the receiving facility takes the patient in
    ACCEPTED = "accepted"
    DECLINED = "declined"
    #: the patient came to the receiving facility (到诊)
    ARRIVED = "arrived"
    #: sent back down to the referring clinic with the return form (转回单)
    RETURNED = "returned"


class ReturnKind(StrEnum):
    """What the return form (转回单) summarises: an outpatient visit or a hospital stay."""

    OUTPATIENT = "outpatient"
    DISCHARGE = "discharge"


class ReferralDocumentKind(StrEnum):
    """A referral's printable documents: its form, the answer, the return down."""

    #: 转诊单
    FORM = "form"
    #: 接诊单
    ANSWER = "answer"
    #: 转回单
    RETURN = "return"


class Urgency(StrEnum):
    ROUTINE = "routine"
    URGENT = "urgent"
    EMERGENCY = "emergency"


@dataclass(frozen=True, kw_only=True)
class ReferralSubject:
    """Whom a referral is about: the patient, the clinic that sent their case, the case."""

    patient_ref: PatientRef
    clinic_id: FacilityId
    case_id: CaseId | None


@dataclass(frozen=True, kw_only=True)
class ReferralState:
    """A referral as its answer needs it."""

    id: ReferralId
    direction: ReferralDirection
    status: ReferralStatus
    case_id: CaseId | None
    from_facility_id: FacilityId
    to_facility_id: FacilityId
    created_at: datetime | None = None

    @classmethod
    def from_row(cls, row: Row) -> Self:
        return cls(
            id=ReferralId(row["id"]),
            direction=ReferralDirection(row["direction"]),
            status=ReferralStatus(row["status"]),
            case_id=_opt_id(CaseId, row["case_id"]),
            from_facility_id=FacilityId(row["from_facility_id"]),
            to_facility_id=FacilityId(row["to_facility_id"]),
            created_at=row["created_at"],
        )


@dataclass(frozen=True, kw_only=True)
class Referral:
    id: ReferralId
    direction: ReferralDirection
    patient_ref: PatientRef
    case_id: CaseId | None
    in_reply_to: ReferralId | None
    from_facility_id: FacilityId
    from_facility_code: str
    to_facility_id: FacilityId
    to_facility_code: str
    urgency: Urgency
    reason: str
    discharge_summary: str | None
    follow_up_plan: str | None
    status: ReferralStatus
    created_by: UserId
    created_at: datetime
    responded_by: UserId | None
    responded_at: datetime | None
    appointment_at: datetime | None
    decline_reason: str | None
    patient_name: str | None
    #: the referral form (转诊单)
    preliminary_diagnosis: str | None = None
    history: str | None = None
    findings: str | None = None
    #: the answer (接诊单)
    department: str | None = None
    doctor: str | None = None
    green_channel: bool = False
    #: the arrival (到诊)
    arrived_at: datetime | None = None
    arrived_by: UserId | None = None
    #: the return down (转回单)
    return_kind: ReturnKind | None = None
    return_diagnosis: str | None = None
    return_orders: str | None = None
    return_follow_up: str | None = None
    returned_at: datetime | None = None
    returned_by: UserId | None = None

    def __post_init__(self) -> None:
        for name in ("created_at", "responded_at", "appointment_at", "arrived_at", "returned_at"):
            _aware(name, getattr(self, name))
        if self.direction is ReferralDirection.DOWN and not (
            self.discharge_summary and self.follow_up_plan
        ):
            raise ValueError(f"referral {self.id}: a down-referral needs a discharge summary")

    @classmethod
    def from_row(cls, row: Row) -> Self:
        return cls(
            id=ReferralId(row["id"]),
            direction=ReferralDirection(row["direction"]),
            patient_ref=PatientRef(row["patient_ref"]),
            case_id=_opt_id(CaseId, row["case_id"]),
            in_reply_to=_opt_id(ReferralId, row["in_reply_to"]),
            from_facility_id=FacilityId(row["from_facility_id"]),
            from_facility_code=row["from_code"],
            to_facility_id=FacilityId(row["to_facility_id"]),
            to_facility_code=row["to_code"],
            urgency=Urgency(row["urgency"]),
            reason=row["reason"],
            discharge_summary=row["discharge_summary"],
            follow_up_plan=row["follow_up_plan"],
            status=ReferralStatus(row["status"]),
            created_by=UserId(row["created_by"]),
            created_at=row["created_at"],
            responded_by=_opt_id(UserId, row["responded_by"]),
            responded_at=row["responded_at"],
            appointment_at=row["appointment_at"],
            decline_reason=row["decline_reason"],
            patient_name=row["patient_name"],
            preliminary_diagnosis=row["preliminary_diagnosis"],
            history=row["history"],
            findings=row["findings"],
            department=row["department"],
            doctor=row["doctor"],
            green_channel=row["green_channel"],
            arrived_at=row["arrived_at"],
            arrived_by=_opt_id(UserId, row["arrived_by"]),
            return_kind=_opt_id(ReturnKind, row["return_kind"]),
            return_diagnosis=row["return_diagnosis"],
            return_orders=row["return_orders"],
            return_follow_up=row["return_follow_up"],
            returned_at=row["returned_at"],
            returned_by=_opt_id(UserId, row["returned_by"]),
        )


class AttachmentKind(StrEnum):
    """What a result attached to a referral form is."""

    STUDY = "study"
    ECG = "ecg"
    REPORT = "report"


@dataclass(frozen=True, kw_only=True)
class ReferralAttachment:
    """A result attached to a referral form: a study (an ECG when its modality is ECG) or a
    report, with what the form lists of it."""

    kind: AttachmentKind
    study_id: StudyId | None
    report_id: ReportId | None
    study_instance_uid: str
    modalities: tuple[str, ...]
    study_date: str | None
    description: str | None
    conclusion: str | None
    impression: str | None
    #: an ECG study's waveform instance, which its sheet is drawn from
    ecg_sop_instance_uid: str | None = None

    def __post_init__(self) -> None:
        if (self.study_id is None) == (self.report_id is None):
            raise ValueError("an attachment is a study or a report, exactly one of them")

    @classmethod
    def from_row(cls, row: Row) -> Self:
        modalities = tuple(row["modalities"] or ())
        if row["report_id"] is not None:
            kind = AttachmentKind.REPORT
        else:
            kind = AttachmentKind.ECG if "ECG" in modalities else AttachmentKind.STUDY
        return cls(
            kind=kind,
            study_id=_opt_id(StudyId, row["study_id"]),
            report_id=_opt_id(ReportId, row["report_id"]),
            study_instance_uid=row["study_instance_uid"],
            modalities=modalities,
            study_date=row["study_date"],
            description=row["description"],
            conclusion=row["conclusion"],
            impression=row["impression"],
            ecg_sop_instance_uid=row["ecg_sop"],
        )


@dataclass(frozen=True, kw_only=True)
class ReferralMonth:
    """One facility's referral steps in one month (local time); the total of several has
    neither facility code nor month."""

    facility_code: str | None
    facility_name: str
    month: str | None
    up: int
    accepted: int
    declined: int
    arrived: int
    returned: int
    down: int


@dataclass(frozen=True, kw_only=True)
class ReferralPapers:
    """What the printed documents show beside the referral itself."""

    patient_id: str
    patient_sex: str | None
    patient_birth_date: str | None
    issuer_name: str
    #: the keyed hash of the national ID, as the patient index stores it (never the ID)
    national_id_digest: str | None
    from_name: str
    to_name: str
    created_by_name: str
    responded_by_name: str | None
    arrived_by_name: str | None
    returned_by_name: str | None


@dataclass(frozen=True, kw_only=True, order=True)
class Cursor:
    """A place in the notification record: the writing transaction and the id of the last
    notification seen. Notifications are read in this order, and only once every
    transaction below them has ended, so none can appear behind a cursor later."""

    tx: int
    id: int

    def __str__(self) -> str:
        return f"{self.tx}-{self.id}"

    @classmethod
    def parse(cls, text: str) -> Cursor | None:
        """The cursor ``str()`` wrote; None for anything else."""
        tx, sep, n = text.strip().partition("-")
        if not (sep and tx.isdigit() and n.isdigit()):
            return None
        return cls(tx=int(tx), id=int(n))


@dataclass(frozen=True, kw_only=True)
class Notification:
    """Something the service told a facility's users of one role, or one named user."""

    id: NotificationId
    #: The transaction that wrote it: with the id, its place in the record (``cursor``).
    tx: int
    at: datetime
    kind: NotificationKind
    facility_id: FacilityId
    audience: Role
    user_id: UserId | None
    case_id: CaseId | None
    report_id: ReportId | None
    detail: dict[str, Any]

    def __post_init__(self) -> None:
        _aware("at", self.at)

    @property
    def cursor(self) -> Cursor:
        return Cursor(tx=self.tx, id=self.id)

    def for_user(self, user: User) -> bool:
        """Whether this notification is addressed to ``user``."""
        if self.user_id is not None:
            return self.user_id == user.id
        return self.facility_id == user.facility_id and self.audience is user.role


def _default_deadlines() -> dict[Priority, timedelta]:
    return {
        Priority.HIGH: timedelta(minutes=30),
        Priority.MEDIUM: timedelta(hours=24),
        Priority.LOW: timedelta(hours=72),
    }


@dataclass(frozen=True, kw_only=True)
class NetworkPolicy:
    """Deadlines and timings of one network (the demo defaults unless configured)."""

    deadlines: dict[Priority, timedelta] = field(default_factory=_default_deadlines)
    stemi_deadline: timedelta = timedelta(minutes=10)
    critical_ack: timedelta = timedelta(minutes=15)
    at_risk_share: float = 0.1
    timezone: str = "Asia/Shanghai"

    def __post_init__(self) -> None:
        missing = set(Priority) - set(self.deadlines)
        if missing:
            raise ValueError(f"no deadline for priority {', '.join(sorted(missing))}")
        durations = [*self.deadlines.values(), self.stemi_deadline, self.critical_ack]
        if any(d <= timedelta(0) for d in durations):
            raise ValueError("deadlines and the critical acknowledgement time must be positive")
        if not 0 <= self.at_risk_share < 1:
            raise ValueError(f"at_risk_share {self.at_risk_share} must be in [0, 1)")

    @classmethod
    def from_row(cls, row: Row) -> Self:
        return cls(
            deadlines={
                Priority.HIGH: row["deadline_high"],
                Priority.MEDIUM: row["deadline_medium"],
                Priority.LOW: row["deadline_low"],
            },
            stemi_deadline=row["deadline_stemi"],
            critical_ack=row["critical_ack"],
            at_risk_share=row["at_risk_share"],
            timezone=row["timezone"],
        )


@dataclass(frozen=True, kw_only=True)
class RoutingRule:
    """Cases from ``sender_facility_id`` (or below) matching the optional filters go to
    ``first_read_facility_id``; escalation None means the county or city above it."""

    sender_facility_id: FacilityId
    modality: str | None
    specialty: Specialty | None
    priority: Priority | None
    first_read_facility_id: FacilityId
    escalation_facility_id: FacilityId | None
    deadline: timedelta | None
    #: The reading pool (at ``first_read_facility_id``) the rule names, if any
    pool_id: int | None = None

    @property
    def specificity(self) -> int:
        return sum(v is not None for v in (self.modality, self.specialty, self.priority))

    @classmethod
    def from_row(cls, row: Row) -> Self:
        return cls(
            sender_facility_id=FacilityId(row["sender_facility_id"]),
            modality=row["modality"],
            specialty=_opt_id(Specialty, row["specialty"]),
            priority=_opt_id(Priority, row["priority"]),
            first_read_facility_id=FacilityId(row["first_read_facility_id"]),
            escalation_facility_id=_opt_id(FacilityId, row["escalation_facility_id"]),
            deadline=row["deadline"],
            pool_id=row["pool_id"],
        )


@dataclass(frozen=True, kw_only=True)
class InstanceHeader:
    """What the index keeps of one instance's header (parsed by the service, not here)."""

    sop_instance_uid: str
    sop_class_uid: str
    transfer_syntax_uid: str
    study_instance_uid: str
    series_instance_uid: str
    patient_id: str
    patient_name: str | None
    patient_birth_date: str | None
    patient_sex: str | None
    accession_number: str | None
    study_date: str | None
    study_time: str | None
    study_description: str | None
    referring_physician: str | None
    modality: str | None
    series_number: int | None
    series_description: str | None
    body_part: str | None
    instance_number: int | None
    dataset_sha256: str
    #: The instance's DICOM JSON (PS3.18 F.2) without bulk data, zlib-compressed.
    metadata_zlib: bytes | None = None

    def __post_init__(self) -> None:
        for name in (
            "sop_instance_uid",
            "sop_class_uid",
            "study_instance_uid",
            "series_instance_uid",
        ):
            if not getattr(self, name):
                raise ValueError(f"{name} is empty")
        if len(self.dataset_sha256) != 64:
            raise ValueError("dataset_sha256 must be 64 hex characters")


@dataclass(frozen=True, kw_only=True)
class RouteSpec:
    """A routing rule as an import file declares it, by facility codes: the first read at
    ``first_read``, or in the reading ``pool`` of that code (read at the pool's facility)."""

    modality: str | None = None
    specialty: Specialty | None = None
    priority: Priority | None = None
    first_read: str | None = None
    escalation: str | None = None
    deadline: timedelta | None = None
    pool: str | None = None

    def __post_init__(self) -> None:
        if self.first_read is None and self.pool is None:
            raise ValueError("a route names the facility that reads first, or a reading pool")


@dataclass(frozen=True, kw_only=True)
class Destination:
    """A clinic workstation's DICOM node that takes reports back by C-STORE."""

    ae_title: str
    host: str
    port: int
    #: Reached over DICOM TLS (the listener's certificate as the client's, the server's
    #: checked against the configured CA).
    tls: bool = False


@dataclass(frozen=True, kw_only=True)
class AePeer:
    """What binds a workstation's calling AE title: the host or CIDR block it calls from,
    and the SHA-256 fingerprint of its TLS client certificate (either may be None)."""

    ae_title: str
    host: str | None = None
    cert_sha256: str | None = None


@dataclass(frozen=True, kw_only=True)
class DutyShift:
    """A weekly on-duty shift in the network's local time; ``ends <= starts`` runs past
    midnight. ISO weekdays: 1 is Monday."""

    weekdays: frozenset[int]
    starts: time
    ends: time

    def __post_init__(self) -> None:
        if not self.weekdays or not self.weekdays <= set(range(1, 8)):
            raise ValueError(f"weekdays {sorted(self.weekdays)} must be among 1 (Mon) to 7 (Sun)")


@dataclass(frozen=True, kw_only=True)
class FacilitySpec:
    """A facility as an import file declares it. ``routes`` None leaves the facility's
    routing rules as they are; a tuple replaces them."""

    code: str
    name: str
    tier: Tier
    parent: str | None
    ae_titles: tuple[str, ...]
    #: Bindings of some of those titles (a title without one is bound to nothing).
    workstations: tuple[AePeer, ...] = ()
    policy: NetworkPolicy | None = None
    routes: tuple[RouteSpec, ...] | None = None
    report_destination: Destination | None = None
    #: None leaves an existing facility as active or inactive as it is (a new one is active)
    active: bool | None = None
    #: The facility's notification channels: each added or updated (None: left as they are).
    channels: tuple[ChannelSpec, ...] | None = None


@dataclass(frozen=True, kw_only=True)
class UserSpec:
    """A user as an import file declares it; ``password_hash`` is already hashed."""

    username: str
    display_name: str
    role: Role
    facility: str
    specialties: tuple[Specialty, ...]
    password_hash: str | None
    #: None leaves the user's schedule as it is; a tuple replaces it (empty: always on duty)
    duty: tuple[DutyShift, ...] | None = None
    #: None leaves an existing user as active or inactive as they are (a new one is active)
    active: bool | None = None
    #: The password is the public demo one (``demo-`` + username): refused outside the demo
    demo_password: bool = False


@dataclass(frozen=True, kw_only=True)
class RoutingData:
    """What routing needs beyond the facility chain: the network's policy, the rules of the
    senders in the chain, and which pools (facility, specialty) have a reader on duty."""

    policy: NetworkPolicy
    rules: tuple[RoutingRule, ...] = ()
    #: None: unknown, every pool counts as staffed
    staffed: frozenset[tuple[FacilityId, Specialty]] | None = None
    #: The named reading pools (ids) with a member on duty; None: every one counts as staffed
    staffed_pools: frozenset[int] | None = None


@dataclass(frozen=True, kw_only=True)
class StudyToRoute:
    """What routing needs to know of a study that has just become complete, and of the
    network it was sent in (policy, rules, staffed pools)."""

    id: StudyId
    study_instance_uid: str
    facility_id: FacilityId
    modalities: tuple[str, ...]
    priority: Priority
    suspected_stemi: bool = False
    routing: RoutingData | None = None


@dataclass(frozen=True, kw_only=True)
class CasePlan:
    """Where one case of a study goes: its pool, escalation and deadline."""

    specialty: Specialty
    priority: Priority
    pool_facility_id: FacilityId
    escalation_facility_id: FacilityId | None
    due_in: timedelta
    stemi: bool = False
    #: why this pool: a routing rule, the default, or no reader on duty at the first choice
    reason: str = "default"
    #: The named reading pool the case goes to (a rule's), if any
    reading_pool_id: int | None = None


@dataclass(frozen=True, kw_only=True)
class ReportDocument:
    """Everything the printable report and its DICOM copies show."""

    report: Report
    case_id: CaseId
    specialty: str
    sending_facility_id: int
    sending_facility: str
    reading_facility: str
    patient_id: str
    patient_name: str | None
    patient_birth_date: str | None
    patient_sex: str | None
    study_instance_uid: str
    study_date: str | None
    study_time: str | None
    accession_number: str | None
    description: str | None
    modalities: tuple[str, ...]
    referring_physician: str | None
    #: the study's instances the report was made from: (series, SOP class, SOP instance) UIDs
    evidence: tuple[tuple[str, str, str], ...] = ()
    #: the DICOM JSON (zlib) of the study's first instance, for what the index does not keep
    first_metadata_zlib: bytes | None = None


@dataclass(frozen=True, kw_only=True)
class IntakeLimits:
    """What a facility may send in a UTC day, by every way in together (0: no limit)."""

    bytes_per_day: int
    instances_per_day: int

    def __post_init__(self) -> None:
        if self.bytes_per_day < 0 or self.instances_per_day < 0:
            raise ValueError(f"daily limits are 0 (none) or more, not {self}")


class ChannelKind(StrEnum):
    """How a notification leaves the network: e-mail, a WeChat Work (企业微信) or DingTalk
    (钉钉) group robot, or a generic JSON webhook (an SMS gateway, a hospital's own bus)."""

    EMAIL = "email"
    WECHAT_WORK = "wechat_work"
    DINGTALK = "dingtalk"
    WEBHOOK = "webhook"


class NoticeKind(StrEnum):
    """What an outbound message tells: a final report, an addendum, a critical result (at
    once), its re-send when nobody acknowledged it, the duty administrator's alert."""

    REPORT = "report"
    ADDENDUM = "addendum"
    CRITICAL = "critical"
    CRITICAL_RESEND = "critical_resend"
    CRITICAL_ALERT = "critical_alert"


class OutboundStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    #: given up after its last attempt: an administrator may try it again
    FAILED = "failed"
    #: not sent: the critical result was acknowledged before its re-send went out
    SKIPPED = "skipped"


@dataclass(frozen=True, kw_only=True)
class ChannelSpec:
    """A notification channel as the network file or an administrator declares it."""

    kind: ChannelKind
    #: an e-mail address, or the robot's or webhook's URL
    target: str
    label: str = ""
    #: DingTalk's signing secret (the URL is then signed); never shown back
    secret: str | None = field(default=None, repr=False)
    #: WeChat Work and DingTalk: a markdown message instead of plain text
    markdown: bool = False
    #: the patient's name and ID may leave the network on this channel
    allow_patient_name: bool = False
    #: final normal and abnormal reports too (critical results go on every channel)
    reports: bool = True
    active: bool = True


@dataclass(frozen=True, kw_only=True)
class Channel:
    """A stored channel: a facility's, or (``user_id``) one user's own."""

    id: ChannelId
    facility_id: FacilityId
    facility_code: str
    user_id: UserId | None
    username: str | None
    spec: ChannelSpec
    created_at: datetime
    #: what its messages are written in: its user's language; a facility's channel, the
    #: network's (zh-CN)
    language: Language = Language.ZH_CN

    def __post_init__(self) -> None:
        _aware("created_at", self.created_at)

    @classmethod
    def from_row(cls, row: Row) -> Self:
        return cls(
            id=ChannelId(row["id"]),
            facility_id=FacilityId(row["facility_id"]),
            facility_code=row["facility_code"],
            user_id=_opt_id(UserId, row["user_id"]),
            username=row["username"],
            spec=ChannelSpec(
                kind=ChannelKind(row["kind"]),
                target=row["target"],
                label=row["label"],
                secret=row["secret"],
                markdown=row["markdown"],
                allow_patient_name=row["allow_patient_name"],
                reports=row["reports"],
                active=row["active"],
            ),
            created_at=row["created_at"],
            language=Language(_column(row, "language", Language.ZH_CN)),
        )


# --- exam orders and performed procedure steps ---------------------------------------------

OrderId = NewType("OrderId", int)


class OrderStatus(StrEnum):
    SCHEDULED = "scheduled"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    DISCONTINUED = "discontinued"
    CANCELED = "canceled"


class OrderUrgency(StrEnum):
    ROUTINE = "routine"
    URGENT = "urgent"

    @property
    def priority(self) -> Priority:
        """The case priority an order of this urgency gives its study."""
        return Priority.HIGH if self is OrderUrgency.URGENT else Priority.MEDIUM


class StepStatus(StrEnum):
    """A performed procedure step's status (PS3.3 C.7.7.2 Performed Procedure Step)."""

    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    DISCONTINUED = "discontinued"


@dataclass(frozen=True, kw_only=True)
class OrderSpec:
    """What a clinic registers for one exam."""

    patient_id: str
    patient_name: str
    patient_sex: str | None
    patient_birth_date: date | None
    modality: str
    station_ae: str | None
    procedure_description: str | None
    urgency: OrderUrgency
    clinical_question: str | None
    history: str | None
    scheduled_date: date
    scheduled_time: time | None


@dataclass(frozen=True, kw_only=True)
class Order:
    id: OrderId
    facility_id: FacilityId
    facility_code: str
    accession_number: str
    requested_procedure_id: str
    sps_id: str
    study_instance_uid: str
    spec: OrderSpec
    status: OrderStatus
    study_id: StudyId | None
    created_at: datetime

    def __post_init__(self) -> None:
        if self.created_at.tzinfo is None:
            raise ValueError("created_at must be timezone-aware")

    @classmethod
    def from_row(cls, row: Row) -> Self:
        return cls(
            id=OrderId(row["id"]),
            facility_id=FacilityId(row["facility_id"]),
            facility_code=row["facility_code"],
            accession_number=row["accession_number"],
            requested_procedure_id=row["requested_procedure_id"],
            sps_id=row["sps_id"],
            study_instance_uid=row["study_instance_uid"],
            spec=OrderSpec(
                patient_id=row["patient_id"],
                patient_name=row["patient_name"],
                patient_sex=row["patient_sex"],
                patient_birth_date=row["patient_birth_date"],
                modality=row["modality"],
                station_ae=row["station_ae"],
                procedure_description=row["procedure_description"],
                urgency=OrderUrgency(row["urgency"]),
                clinical_question=row["clinical_question"],
                history=row["history"],
                scheduled_date=row["scheduled_date"],
                scheduled_time=row["scheduled_time"],
            ),
            status=OrderStatus(row["status"]),
            study_id=StudyId(row["study_id"]) if row["study_id"] is not None else None,
            created_at=row["created_at"],
        )


@dataclass(frozen=True, kw_only=True)
class OrderMatch:
    """A Modality Worklist query as the index matches it (None matches everything; the
    patterns are SQL LIKE patterns with backslash as the escape)."""

    modality: str | None = None
    station_ae: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    #: Times of day; with the dates, one combined range from (date_from, time_from) to
    #: (date_to, time_to) (PS3.4 C.2.2.2.5.2); an order scheduled without a time matches.
    time_from: time | None = None
    time_to: time | None = None
    accession_number: str | None = None
    patient_id_like: str | None = None
    patient_name_like: str | None = None


@dataclass(frozen=True, kw_only=True)
class StepEnd:
    """How a modality ended its step (N-SET to COMPLETED or DISCONTINUED)."""

    status: StepStatus
    referenced_sops: tuple[str, ...] = ()
    reason_code: str | None = None
    reason_meaning: str | None = None
    study_uid: str | None = None
