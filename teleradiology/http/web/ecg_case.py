"""The ECG reading page: the sheet, measurements and statements with their edit history,
the patient's prior ECGs side by side, and the report form.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from ecg.analysis import OUR_KEY
from ecg.record import MEASUREMENT_KEYS
from ecg.render import SheetFilter
from storage import (
    ecg,
    reports,
)
from storage.records import (
    Case,
    Conclusion,
    Language,
)
from teleradiology.core.casework import OPEN_STATES, CaseAction
from teleradiology.core.language import N_, word
from teleradiology.core.words import EcgMeasurement, EcgUnit
from teleradiology.http.api import ecg as ecg_api
from teleradiology.http.context import POOL, user_zone
from teleradiology.http.params import path_id
from teleradiology.http.web.common import (
    base_context,
    local_time,
    page_language,
    person,
    render,
    report_context,
    signed_in,
    time_left,
)
from teleradiology.services import ecg as ecg_service
from teleradiology.services import reading

#: The rows of the measurement tables: the analysis' own keys (both QTc formulas).
PAGE_MEASUREMENTS: dict[str, str] = {
    (k2 if k == "qtc_ms" else k): u
    for k, u in MEASUREMENT_KEYS.items()
    for k2 in (("qtc_bazett_ms", "qtc_fridericia_ms") if k == "qtc_ms" else (k,))
}
#: A difference from the prior worth a reader's eye: 10 ms, 10 bpm, 30°.
NOTABLE_CHANGE = {"ms": 10.0, "beats per minute": 10.0, "degrees": 30.0}


def _number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return ""
    return f"{value:.0f}"


def _statement_text(statement: Any, language: Language) -> str:
    """A statement in `language` (in the other when it has no text in this one)."""
    if isinstance(statement, dict):
        zh, en = statement.get("text_zh"), statement.get("text_en")
        first, second = (en, zh) if language is Language.EN else (zh, en)
        return str(first or second or statement.get("code"))
    return str(statement)


def _joined(statements: list[Any], language: Language) -> str:
    return ("; " if language is Language.EN else "；").join(
        _statement_text(s, language) for s in statements
    )


async def ecg_case_page(request: web.Request) -> web.Response:
    """An ECG case for its reader: sheet, measurements and statements with their edit
    history, the patient's prior ECGs side by side, and the report form."""
    user = await signed_in(request)
    pool = request.app[POOL]
    case = await reading.open_case(pool, user, path_id(request))
    offered = await reading.offered_actions(pool, user, case)
    zone = await user_zone(request, user)
    sops = await ecg.ecg_instances_of_study(pool, case.study_id)
    found = await ecg_service.read(pool, user, sops[0], zone=zone) if sops else None
    language = page_language(request, user)
    left, overdue = time_left(case.deadline, datetime.now(UTC), language)
    open_case = case.status in OPEN_STATES
    context = await base_context(request, user)
    heading = context["_"](N_("心电图判读"))
    context.update(
        title=f"{heading} · {person(case.patient_name)}",
        case=case,
        view=found.view if found else None,
        sop=found.view.sop_instance_uid if found else None,
        patient=person(case.patient_name),
        deadline=local_time(case.deadline, zone),
        left=left if open_case else "",
        overdue=overdue and open_case,
        can_claim=CaseAction.CLAIM in offered,
        reports=[
            report_context(r, zone, language)
            for r in await reports.reports_of_case(pool, case.id, user)
        ],
        conclusions=list(Conclusion),
        **_no_ecg(),
    )
    if found is not None:
        context.update(_ecg_context(request, case, found, zone, language))
    return render("ecg_case.html", context)


def _no_ecg() -> dict[str, Any]:
    """What the page shows of an ECG while the case has none (yet)."""
    return {
        "findings_draft": "",
        "measurements": [],
        "statements": [],
        "statements_json": "[]",
        "edits": [],
        "priors": [],
        "comparison": None,
        "acquired": "",
        "sheet_png": "",
        "sheet_pdf": "",
        "sheet_filters": [],
        "cart": None,
        "cart_column": False,
    }


def _ecg_context(
    request: web.Request,
    case: Case,
    found: ecg_service.EcgReading,
    zone: ZoneInfo,
    language: Language,
) -> dict[str, Any]:
    """The sheet, the measurements (automatic and as edited), the statements, their edit
    history and the priors of the case's ECG."""
    view = found.view
    automatic = dict((view.result or {}).get("measurements", {}))
    current = ecg_service.current_measurements(view)
    statements = ecg_service.current_statements(view)
    cart = _cart_values(view)
    base = f"/ecg/cases/{case.id}/sheets"
    chosen = ecg_api.sheet_filter(request)
    query = "" if chosen is SheetFilter.DIAGNOSTIC else f"?filter={chosen.value}"
    return {
        "sheet_png": f"{base}/{view.sop_instance_uid}.png{query}",
        "sheet_pdf": f"{base}/{view.sop_instance_uid}.pdf{query}",
        "sheet_filters": [
            {"value": f.value, "label": word(f, language), "active": f is chosen}
            for f in SheetFilter
        ],
        "acquired": local_time(view.analyzed_at, zone),
        "measurements": [
            {
                "key": key,
                "label": word(EcgMeasurement(key), language),
                "unit": word(EcgUnit(unit), language),
                "automatic": _number(automatic.get(key)),
                "current": _number(current.get(key)),
                "edited": key in view.edited_measurements,
                "cart": cart.get(key),
            }
            for key, unit in PAGE_MEASUREMENTS.items()
        ],
        "cart_column": bool(cart),
        "cart": _cart_context(view),
        "statements": [{"text": _statement_text(s, language)} for s in statements],
        # "<" escaped: the JSON sits in a <script> element
        "statements_json": json.dumps(statements, ensure_ascii=False).replace("<", "\\u003c"),
        "findings_draft": _joined(statements, language),
        "edits": [
            {
                "at": local_time(e.at, zone),
                "by": f"{e.display_name} ({e.username})",
                "field": e.field,
                "old": _edit_value(e.old_value, language),
                "new": _edit_value(e.new_value, language),
            }
            for e in found.edits
        ],
        "priors": [_prior_context(case, p, current, zone, query, language) for p in found.priors],
        "comparison": _comparison_context(found, language),
    }


def _cart_values(view: ecg.EcgView) -> dict[str, dict[str, Any]]:
    """The cart's own value of each measurement row it gives, and whether ours differs from
    it beyond the tolerance (the analysis' ``device_comparison``)."""
    values: dict[str, dict[str, Any]] = {}
    for row in (view.result or {}).get("device_comparison") or []:
        if not isinstance(row, dict) or row.get("key") is None:
            continue
        key = OUR_KEY.get(str(row["key"]), str(row["key"]))
        difference = row.get("difference")
        values[key] = {
            "value": _number(row.get("device")),
            "beyond": bool(row.get("beyond_tolerance")),
            "difference": _number(difference) if difference is not None else "",
            "tolerance": _number(row.get("tolerance")),
        }
    return values


def _cart_context(view: ecg.EcgView) -> dict[str, Any] | None:
    """The cart's statements and pacemaker stimuli, as its file states them (None when it
    states neither)."""
    found = ecg_service.cart_findings(view)
    if not found.statements and not found.pacemaker_spikes:
        return None
    return {"statements": found.statements, "spikes": len(found.pacemaker_spikes)}


def _comparison_context(found: ecg_service.EcgReading, language: Language) -> dict[str, Any] | None:
    """What changed since the last prior, in `language`, and which prior that was."""
    if found.comparison is None or found.compared_with is None:
        return None
    zh, en = found.comparison.heading()
    english = language is Language.EN
    return {
        "sop": found.compared_with.sop_instance_uid,
        "heading": en if english else zh,
        "changes": [
            {"code": c.code.value, "text": c.text_en if english else c.text_zh}
            for c in found.comparison.changes
        ],
    }


def _edit_value(value: Any, language: Language) -> str:
    if isinstance(value, list):
        return _joined(value, language)
    return "—" if value is None else str(value)


def _prior_context(
    case: Case,
    prior: ecg.EcgPrior,
    current: dict[str, Any],
    zone: ZoneInfo,
    query: str,
    language: Language,
) -> dict[str, Any]:
    measured = {**dict((prior.result or {}).get("measurements", {})), **prior.edited_measurements}
    rows: list[dict[str, Any]] = []
    for key, unit in PAGE_MEASUREMENTS.items():
        now, then = current.get(key), measured.get(key)
        comparable = isinstance(now, int | float) and isinstance(then, int | float)
        delta = float(now) - float(then) if comparable else None  # type: ignore[arg-type]
        rows.append(
            {
                "key": key,
                "label": word(EcgMeasurement(key), language),
                "now": _number(now),
                "prior": _number(then),
                "delta": f"{delta:+.0f}" if delta is not None else "",
                "changed": delta is not None and abs(delta) >= NOTABLE_CHANGE.get(unit, 10.0),
            }
        )
    return {
        "sop": prior.sop_instance_uid,
        "received": local_time(prior.received_at, zone),
        "facility": prior.facility_name,
        "sheet_png": f"/ecg/cases/{case.id}/sheets/{prior.sop_instance_uid}.png{query}",
        "rows": rows,
        "statements": _joined((prior.result or {}).get("statements", []), language),
    }
