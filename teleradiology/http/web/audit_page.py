"""The administrator's audit page: the records of their network, searched and exported
through the API's own search (itself audited)."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from aiohttp import web

from storage.records import AuditAction, AuditResult, Role
from teleradiology.core.errors import Forbidden
from teleradiology.core.language import N_
from teleradiology.http.api.models.audit import AuditQuery
from teleradiology.http.context import POOL, user_zone
from teleradiology.http.params import validated
from teleradiology.http.web.common import base_context, local_time, render, signed_in
from teleradiology.services import audit

_FIELDS = ("since", "until", "username", "action", "patient", "study", "result")


async def audit_page(request: web.Request) -> web.StreamResponse:
    """Search form, the matching records newest first, a next page, CSV and JSON lines."""
    user = await signed_in(request)
    if user.role is not Role.ADMIN:
        raise Forbidden(N_("审计记录供网络管理员使用"))
    given = {k: v.strip() for k, v in request.query.items() if v.strip()}
    zone = await user_zone(request, user)
    asked = validated(AuditQuery, _local_times(given, zone))
    found = await audit.search(request.app[POOL], user, asked.filters(), limit=asked.limit)
    kept = {k: v for k, v in given.items() if k in _FIELDS}
    context = await base_context(request, user)
    context.update(
        title=context["_"](N_("审计记录")),
        asked=dict.fromkeys(_FIELDS, "") | kept,
        actions=[a.value for a in AuditAction],
        results=[r.value for r in AuditResult],
        rows=[
            {
                "seq": r.seq,
                "at": local_time(r.at, zone),
                "who": r.username or "",
                "role": r.role or "",
                "facility": r.facility or "",
                "action": r.action,
                "object": f"{r.object_type} {r.object_id}",
                "patients": ", ".join(r.patients),
                "studies": len(r.studies),
                "address": r.address or "",
                "result": r.result,
            }
            for r in found
        ],
        next_href=(
            "/admin/audit?" + urlencode(kept | {"before": found[-1].seq})
            if len(found) == asked.limit
            else None
        ),
        csv_href="/admin/audit/export?" + urlencode(kept | {"format": "csv"}),
        jsonl_href="/admin/audit/export?" + urlencode(kept | {"format": "jsonl"}),
    )
    return render("audit.html", context)


def _local_times(given: dict[str, str], zone: ZoneInfo) -> dict[str, str]:
    """The form's times are the network's local times (no offset): give them its offset."""
    out = dict(given)
    for name in ("since", "until"):
        try:
            at = datetime.fromisoformat(given[name])
        except (KeyError, ValueError):
            continue  # absent, or left for the model to refuse with its message
        out[name] = (at if at.tzinfo else at.replace(tzinfo=zone)).isoformat()
    return out
