"""Exam orders under /api/v1/orders: a clinic registers, lists and cancels its own; its
modalities find them in the DICOM Modality Worklist."""

from __future__ import annotations

from aiohttp import web

from storage.records import OrderSpec
from teleradiology.http.api.endpoints import Routes, reply
from teleradiology.http.api.models.orders import (
    OrderIn,
    OrderOut,
    OrderPatch,
    OrdersOut,
    OrdersQuery,
)
from teleradiology.http.context import POOL, current_user
from teleradiology.http.models import RecordPath
from teleradiology.http.params import body_of, path_id, query_of
from teleradiology.services import orders

routes = Routes(tag="orders")


def spec_of(body: OrderIn) -> OrderSpec:
    """The order a body describes (blank optional text is none)."""
    return OrderSpec(
        patient_id=body.patient_id.strip(),
        patient_name=body.patient_name.strip(),
        patient_sex=body.patient_sex,
        patient_birth_date=body.patient_birth_date,
        modality=body.modality.strip().upper(),
        station_ae=(body.station_ae or "").strip() or None,
        procedure_description=(body.procedure_description or "").strip() or None,
        urgency=body.urgency,
        clinical_question=(body.clinical_question or "").strip() or None,
        history=(body.history or "").strip() or None,
        scheduled_date=body.scheduled_date,
        scheduled_time=body.scheduled_time,
    )


@routes.post(
    "/api/v1/orders",
    body=OrderIn,
    answer=OrderOut,
    status=201,
    summary="Register an exam order (the modality finds it in its worklist)",
)
async def create(request: web.Request) -> web.Response:
    body = await body_of(request, OrderIn)
    found = await orders.create(request.app[POOL], current_user(request), spec_of(body))
    return reply(OrderOut.of(found), status=201)


@routes.get(
    "/api/v1/orders", query=OrdersQuery, answer=OrdersOut, summary="The clinic's exam orders"
)
async def listing(request: web.Request) -> web.Response:
    ask = query_of(request, OrdersQuery)
    found = await orders.list_orders(
        request.app[POOL],
        current_user(request),
        date_from=ask.from_,
        date_to=ask.until,
        status=ask.status,
        limit=ask.limit,
        offset=ask.offset,
    )
    return reply(OrdersOut(orders=[OrderOut.of(o) for o in found]))


@routes.get("/api/v1/orders/{id}", path=RecordPath, answer=OrderOut, summary="One exam order")
async def one(request: web.Request) -> web.Response:
    found = await orders.get(request.app[POOL], current_user(request), path_id(request))
    return reply(OrderOut.of(found))


@routes.patch(
    "/api/v1/orders/{id}",
    path=RecordPath,
    body=OrderPatch,
    answer=OrderOut,
    summary="Cancel a scheduled exam order",
)
async def change(request: web.Request) -> web.Response:
    await body_of(request, OrderPatch)  # its one change: canceled
    found = await orders.cancel(request.app[POOL], current_user(request), path_id(request))
    return reply(OrderOut.of(found))


def add_routes(app: web.Application) -> None:
    routes.add_to(app)
