"""The reader's worklist: the open cases of their pools, most urgent first."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from storage import (
    network,
    notifications,
)
from storage.network import PoolReader
from storage.records import (
    Case,
    Language,
    Specialty,
    User,
    UserId,
)
from teleradiology.core.language import N_, word
from teleradiology.core.words import WorklistFilter
from teleradiology.http.context import POOL, user_zone
from teleradiology.http.web.common import (
    base_context,
    facility_names,
    local_time,
    page_language,
    person,
    render,
    time_left,
)
from teleradiology.http.web.viewer import viewer_url
from teleradiology.services import reading


def _row(
    case: Case,
    user: User,
    readers: list[PoolReader],
    names: dict[UserId, str],
    facilities: dict[str, str],
    now: datetime,
    zone: ZoneInfo,
    language: Language,
) -> dict[str, Any]:
    """One case of the worklist: time left, sender, who holds it and whom the pool
    suggests (its least-loaded reader on duty)."""
    suggested = next(
        (
            r
            for r in readers
            if r.facility_id == case.pool_facility_id
            and r.specialty is case.specialty
            and r.on_duty
        ),
        None,
    )
    left, overdue = time_left(case.deadline, now, language)
    ecg_case = case.specialty is Specialty.ECG
    return {
        "case": case,
        "patient": person(case.patient_name),
        "modalities": ", ".join(case.modalities),
        "deadline": local_time(case.deadline, zone),
        "left": left,
        "overdue": overdue,
        "facility": facilities.get(case.facility_code, case.facility_code),
        "claimed_by": (
            names.get(case.claimed_by, f"#{case.claimed_by}") if case.claimed_by is not None else ""
        ),
        "mine": case.claimed_by == user.id,
        "suggested": (f"{suggested.display_name} ({suggested.username})" if suggested else ""),
        "href": f"/ecg/cases/{case.id}" if ecg_case else f"/cases/{case.id}",
        "viewer": "" if ecg_case else viewer_url(case.study_instance_uid),
    }


async def worklist_page(request: web.Request, user: User) -> web.Response:
    """Open cases of the reader's pools (an administrator: of their network), most urgent
    first, with time left, sender, who holds each and whom the pool suggests."""
    pool = request.app[POOL]
    # read first: what arrives while the page is made is replayed by its stream
    live_after = str(await notifications.now(pool))
    zone = await user_zone(request, user)
    now = datetime.now(UTC)
    language = page_language(request, user)
    chosen = request.query.get("status", "all")
    if chosen not in tuple(WorklistFilter):
        chosen = "all"
    found = await reading.worklist(pool, user, limit=500)
    readers = await network.pool_readers(pool, sorted({c.pool_facility_id for c in found}), now)
    names = {r.user_id: r.display_name for r in readers}
    facilities = await facility_names(request)
    counts = {f.value: 0 for f in WorklistFilter}
    rows: list[dict[str, Any]] = []
    for case in found:
        mine = case.claimed_by == user.id
        counts["all"] += 1
        counts[case.status.value] = counts.get(case.status.value, 0) + 1
        counts["mine"] += mine
        if chosen == "mine" and not mine:
            continue
        if chosen in ("scheduled", "in_progress") and case.status.value != chosen:
            continue
        rows.append(_row(case, user, readers, names, facilities, now, zone, language))
    context = await base_context(request, user)
    return render(
        "worklist.html",
        {
            **context,
            "title": context["_"](N_("待读病例")),
            "rows": rows,
            "filters": [
                {
                    "key": f.value,
                    "label": word(f, language),
                    "count": counts[f.value],
                    "active": f == chosen,
                }
                for f in WorklistFilter
            ],
            "now": local_time(now, zone),
            "live_after": live_after,
        },
    )
