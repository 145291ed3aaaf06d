"""Exam orders (检查申请) as /api/v1/orders takes and answers them."""

from __future__ import annotations

from datetime import date, time
from typing import Literal, Self

from pydantic import Field

from storage.records import Order, OrderStatus, OrderUrgency
from teleradiology.http.models import Instant, Model, OptionalShortText, OptionalText, ShortText


class OrderIn(Model):
    """One exam a clinic registers: the patient, what to do and when."""

    patient_id: ShortText = Field(description="the clinic's patient ID (its own issuer)")
    patient_name: ShortText = Field(description="姓^名 (DICOM person name)")
    patient_sex: Literal["M", "F", "O"] | None = None
    patient_birth_date: date | None = None
    modality: ShortText = Field(description="CR, DX, CT, US, MR, ECG, ...")
    station_ae: OptionalShortText | None = Field(
        None, description="the AE title of the workstation that performs it (any, if absent)"
    )
    procedure_description: OptionalShortText | None = None
    urgency: OrderUrgency = OrderUrgency.ROUTINE
    clinical_question: OptionalText | None = None
    history: OptionalText | None = None
    scheduled_date: date
    scheduled_time: time | None = None


class OrderPatch(Model):
    """The one change a clinic makes to an order: cancel it (while it is scheduled)."""

    status: Literal["canceled"]


class OrdersQuery(Model):
    """A page of the clinic's orders, by scheduled date and status."""

    from_: date | None = Field(None, alias="from", description="scheduled on or after")
    until: date | None = Field(None, description="scheduled on or before")
    status: OrderStatus | None = None
    limit: int = Field(100, ge=1, le=1000)
    offset: int = Field(0, ge=0, le=10**9)


class OrderOut(Model):
    id: int
    facility: str
    accession_number: str
    requested_procedure_id: str
    scheduled_procedure_step_id: str
    study_instance_uid: str
    status: OrderStatus
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
    study_linked: bool = Field(description="a study arrived for it and was linked")
    created_at: Instant

    @classmethod
    def of(cls, order: Order) -> Self:
        s = order.spec
        return cls(
            id=order.id,
            facility=order.facility_code,
            accession_number=order.accession_number,
            requested_procedure_id=order.requested_procedure_id,
            scheduled_procedure_step_id=order.sps_id,
            study_instance_uid=order.study_instance_uid,
            status=order.status,
            patient_id=s.patient_id,
            patient_name=s.patient_name,
            patient_sex=s.patient_sex,
            patient_birth_date=s.patient_birth_date,
            modality=s.modality,
            station_ae=s.station_ae,
            procedure_description=s.procedure_description,
            urgency=s.urgency,
            clinical_question=s.clinical_question,
            history=s.history,
            scheduled_date=s.scheduled_date,
            scheduled_time=s.scheduled_time,
            study_linked=order.study_id is not None,
            created_at=order.created_at,
        )


class OrdersOut(Model):
    orders: list[OrderOut]
