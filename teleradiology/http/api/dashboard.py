"""The administrator's dashboard under /api/v1/admin/dashboard: the figures of their own
network as JSON, and each of its tables as CSV."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

from aiohttp import web

from teleradiology.core.words import DashboardTable
from teleradiology.http.api.cases import csv_cell
from teleradiology.http.api.endpoints import Routes, reply
from teleradiology.http.api.models.dashboard import DashboardOut, DashboardQuery
from teleradiology.http.context import POOL, current_user, user_zone
from teleradiology.http.models import Model
from teleradiology.http.params import path_of, query_of
from teleradiology.services import dashboard

routes = Routes(tag="admin")


async def dashboard_of(request: web.Request) -> DashboardOut:
    """The dashboard the query string asks for, of the caller's network."""
    user = current_user(request)
    asked = query_of(request, DashboardQuery)
    zone = await user_zone(request, user)
    found = await dashboard.dashboard(
        request.app[POOL], user, asked.ask(), zone, now=datetime.now(UTC)
    )
    return DashboardOut.of(found, asked, user.language)


@routes.get(
    "/api/v1/admin/dashboard",
    query=DashboardQuery,
    answer=DashboardOut,
    summary="The administrator's network dashboard: received->final and final->acknowledged "
    "turnaround (p50, p90) and deadlines kept, in all and by sending tier, facility, "
    "specialty, modality, priority and reader; the trend by day, week or month; volumes; "
    "returns for quality per clinic; escalations to the city (escalation->final p50, p90) "
    "by pool, specialty and priority; second-read discrepancy rates by first reader, "
    "specialty and facility; referrals up and down",
)
async def get_dashboard(request: web.Request) -> web.Response:
    return reply(await dashboard_of(request))


class TablePath(Model):
    table: DashboardTable


_CSV_ANSWER = {
    "text/csv": {
        "schema": {
            "type": "string",
            "description": "one table of the dashboard, its columns as the JSON answer's "
            "fields of that table (UTF-8 with a byte order mark)",
        }
    }
}


@routes.get(
    "/api/v1/admin/dashboard/{table}.csv",
    query=DashboardQuery,
    path=TablePath,
    media=_CSV_ANSWER,
    summary="One table of the dashboard as CSV, for the same period and filters",
)
async def dashboard_csv(request: web.Request) -> web.Response:
    table = path_of(request, TablePath).table
    found = await dashboard_of(request)
    rows = found.table(table)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    columns = list(rows[0]) if rows else _columns(table)
    writer.writerow(columns)
    for row in rows:
        writer.writerow(csv_cell(row[c]) for c in columns)
    name = f"dashboard-{table.value}-{found.since:%Y%m%d}-{found.until:%Y%m%d}.csv"
    return web.Response(
        body=("\ufeff" + out.getvalue()).encode("utf-8"),
        content_type="text/csv",
        charset="utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
        },
    )


def _columns(table: DashboardTable) -> list[str]:
    """The columns of an empty table: its row model's fields."""
    model = DashboardOut.model_fields[table.value].annotation
    row_model = getattr(model, "__args__", (Model,))[0]
    return list(row_model.model_fields)


def add_routes(app: web.Application) -> None:
    routes.add_to(app)
