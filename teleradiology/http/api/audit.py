"""The audit of an administrator's network under /api/v1/admin/audit: a search, page by page,
and an export as CSV or JSON lines. Both are audited themselves."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

from aiohttp import web

from teleradiology.http.api.cases import csv_cell
from teleradiology.http.api.endpoints import Routes, reply
from teleradiology.http.api.models.audit import (
    AuditExportQuery,
    AuditPageOut,
    AuditQuery,
    AuditRecordOut,
)
from teleradiology.http.context import POOL, current_user
from teleradiology.http.params import query_of
from teleradiology.services import audit

routes = Routes(tag="admin")

COLUMNS = tuple(AuditRecordOut.model_fields)

_EXPORT_ANSWER = {
    "text/csv": {"schema": {"type": "string", "description": "columns: " + ", ".join(COLUMNS)}},
    "application/jsonl": {"schema": {"type": "string", "description": "one record per line"}},
}
_EXPORT_HEADERS = {
    "Content-Disposition": {
        "schema": {"type": "string"},
        "description": 'attachment; filename="audit-YYYYMMDD.csv" (or .jsonl)',
    }
}


@routes.get(
    "/api/v1/admin/audit",
    query=AuditQuery,
    answer=AuditPageOut,
    summary="Search the audit of your network, newest first",
)
async def search(request: web.Request) -> web.Response:
    asked = query_of(request, AuditQuery)
    found = await audit.search(
        request.app[POOL], current_user(request), asked.filters(), limit=asked.limit
    )
    return reply(
        AuditPageOut(
            records=[AuditRecordOut.of(r) for r in found],
            next_before=found[-1].seq if len(found) == asked.limit else None,
        )
    )


@routes.get(
    "/api/v1/admin/audit/export",
    query=AuditExportQuery,
    media=_EXPORT_ANSWER,
    headers=_EXPORT_HEADERS,
    summary="Export the audit of your network as CSV (UTF-8 with BOM) or JSON lines",
)
async def export(request: web.Request) -> web.Response:
    asked = query_of(request, AuditExportQuery)
    found = await audit.search(
        request.app[POOL],
        current_user(request),
        asked.filters(),
        limit=asked.limit,
        export=asked.format,
    )
    rows = [AuditRecordOut.of(r) for r in found]
    day = datetime.now(UTC).strftime("%Y%m%d")
    if asked.format == "jsonl":
        body = "".join(r.model_dump_json() + "\n" for r in rows).encode("utf-8")
        media = "application/jsonl"
    else:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(COLUMNS)
        for r in rows:
            cells = r.model_dump(mode="json")
            cells["patients"] = " ".join(r.patients)
            cells["studies"] = " ".join(r.studies)
            writer.writerow(csv_cell(cells[c]) for c in COLUMNS)
        body = ("\ufeff" + out.getvalue()).encode("utf-8")
        media = "text/csv"
    return web.Response(
        body=body,
        content_type=media,
        charset="utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="audit-{day}.{asked.format}"',
            "Cache-Control": "no-store",
        },
    )


def add_routes(app: web.Application) -> None:
    routes.add_to(app)
