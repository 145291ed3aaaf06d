"""The clinic's orders page: register an exam for the modality's worklist (the patient's
name typed once, here, rather than at the modality), and the facility's orders of a day
with their state; a scheduled one can be canceled."""

from __future__ import annotations

from datetime import date, datetime

from aiohttp import web

from ecg.record import Sex
from storage.records import OrderStatus, OrderUrgency, Role
from teleradiology.core.access import require_role
from teleradiology.core.errors import BadRequest
from teleradiology.core.language import N_, word
from teleradiology.core.orders import MODALITIES
from teleradiology.http.context import POOL, user_zone
from teleradiology.http.web.common import base_context, page_language, person, render, signed_in
from teleradiology.services import orders


def _day(text: str | None, today: date) -> date:
    if not text:
        return today
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise BadRequest(N_("date：须为 YYYY-MM-DD")) from None


async def orders_page(request: web.Request) -> web.StreamResponse:
    """The clinic's form to register an order, and its orders of the day asked for."""
    user = await signed_in(request)
    require_role(user, Role.CLINIC)
    zone = await user_zone(request, user)
    today = datetime.now(zone).date()
    day = _day(request.query.get("date"), today)
    found = await orders.list_orders(request.app[POOL], user, date_from=day, date_to=day, limit=500)
    language = page_language(request, user)
    context = await base_context(request, user)
    context.update(
        title=context["_"]("检查申请"),
        day=day.isoformat(),
        modalities=sorted(MODALITIES),
        sexes=list(Sex),
        urgencies=[{"value": u.value, "label": word(u, language)} for u in OrderUrgency],
        orders=[
            {
                "id": o.id,
                "accession": o.accession_number,
                "time": f"{o.spec.scheduled_time:%H:%M}" if o.spec.scheduled_time else "",
                "patient": person(o.spec.patient_name),
                "patient_id": o.spec.patient_id,
                "modality": o.spec.modality,
                "station": o.spec.station_ae or "",
                "urgency": word(o.spec.urgency, language),
                "urgent": o.spec.urgency is OrderUrgency.URGENT,
                "status": o.status.value,
                "status_word": word(o.status, language),
                "cancelable": o.status is OrderStatus.SCHEDULED,
            }
            for o in found
        ],
    )
    return render("orders.html", context)
