"""The OpenAPI 3.1 description of /api/v1, served at /api/v1/openapi.json."""

from __future__ import annotations

from typing import Any

from storage.records import ReturnReason
from teleradiology.http.api import uploads

_PROBLEM = {"$ref": "#/components/responses/Problem"}


def _op(summary: str, *, body: str | None = None, ok: str = "200", tag: str) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "tags": [tag],
        "responses": {
            ok: {"description": "success", "content": {"application/json": {}}},
            "400": _PROBLEM,
            "401": _PROBLEM,
            "403": _PROBLEM,
            "404": _PROBLEM,
            "409": _PROBLEM,
        },
    }
    if body:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{body}"}}},
        }
    return op


_SHEET_FILTER = {
    "name": "filter",
    "in": "query",
    "required": False,
    "description": "The traces' filter, printed on the sheet: diagnostic (0.67-100 Hz and "
    "the mains notch; the default), muscle (0.67-40 Hz and the notch) or none",
    "schema": {"type": "string", "enum": ["diagnostic", "muscle", "none"]},
}


def _turnaround_csv() -> dict[str, Any]:
    op = _op(
        "The turnaround statistics as CSV (UTF-8 with BOM, for spreadsheets), scoped like "
        "the JSON: one row per sending facility (received to final report), then one per "
        "workflow segment; ?since=, ?until= (ISO 8601), ?case_id=",
        tag="admin",
    )
    op["parameters"] = [
        {"name": n, "in": "query", "required": False, "schema": {"type": "string"}}
        for n in ("since", "until")
    ] + [{"name": "case_id", "in": "query", "required": False, "schema": {"type": "integer"}}]
    op["responses"]["200"] = {
        "description": "columns: row (facility | segment), facility, name, segment, "
        "segment_name (in words, zh-CN and English), count, median_minutes, p90_minutes, "
        "mean_minutes, max_minutes, since, until",
        "content": {"text/csv": {"schema": {"type": "string"}}},
        "headers": {
            "Content-Disposition": {
                "schema": {"type": "string"},
                "description": 'attachment; filename="turnaround-YYYYMMDD.csv"',
            }
        },
    }
    return op


_ID = [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}]
_CODE = [{"name": "code", "in": "path", "required": True, "schema": {"type": "string"}}]
_SOP = [{"name": "sop", "in": "path", "required": True, "schema": {"type": "string"}}]
_MINUTES = {"type": "number", "exclusiveMinimum": 0}


def openapi_document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Telemed remote diagnosis network API",
            "version": "1",
            "description": (
                "Worklists, cases and reports of the county–township–village diagnosis "
                "network. Every call but login needs 'Authorization: Bearer <token>'. "
                "Errors are application/problem+json (RFC 9457)."
            ),
        },
        "security": [{"bearer": []}],
        "paths": {
            "/api/v1/login": {
                "post": {
                    **_op("Sign in; returns a bearer token", body="Login", tag="auth"),
                    "security": [],
                }
            },
            "/api/v1/me": {"get": _op("The signed-in user", tag="auth")},
            "/api/v1/worklist": {
                "get": _op("Open cases of the reader's pools, most urgent first", tag="reading")
            },
            "/api/v1/cases/{id}": {
                "parameters": _ID,
                "get": _op("One case with its reports and events", tag="reading"),
            },
            "/api/v1/cases/{id}/claim": {
                "parameters": _ID,
                "post": _op("Claim (or renew the lease on) a case", tag="reading"),
            },
            "/api/v1/cases/{id}/release": {
                "parameters": _ID,
                "post": _op("Give a claimed case back to its pool", tag="reading"),
            },
            "/api/v1/cases/{id}/report": {
                "parameters": _ID,
                "post": _op(
                    "Sign a report on a claimed case", body="ReportIn", ok="201", tag="reading"
                ),
            },
            "/api/v1/reports": {"get": _op("The clinic's report inbox", tag="clinic")},
            "/api/v1/reports/{id}": {
                "parameters": _ID,
                "get": _op("One delivered report", tag="clinic"),
            },
            "/api/v1/reports/{id}/acknowledge": {
                "parameters": _ID,
                "post": _op(
                    "The clinic confirms it received the report (a critical result: by name)",
                    body="AcknowledgeIn",
                    tag="clinic",
                ),
            },
            "/api/v1/studies": {"get": _op("Studies in the caller's scope", tag="clinic")},
            "/api/v1/worklist/next": {
                "post": _op("Claim the most urgent unclaimed case of your pools", tag="reading")
            },
            "/api/v1/cases/{id}/escalate": {
                "parameters": _ID,
                "post": _op(
                    "Escalate a claimed case with a question (and a draft, signed as preliminary)",
                    body="EscalateIn",
                    tag="reading",
                ),
            },
            "/api/v1/cases/{id}/return": {
                "parameters": _ID,
                "post": _op(
                    "Return a study to the clinic for poor quality, with a coded reason",
                    body="ReturnIn",
                    tag="reading",
                ),
            },
            "/api/v1/cases/{id}/second-read": {
                "parameters": _ID,
                "post": _op(
                    "Open a second, independent read (double reading)", ok="201", tag="reading"
                ),
            },
            "/api/v1/reports/{id}/addendum": {
                "parameters": _ID,
                "post": _op(
                    "Add an addendum (a new version) to a final report you signed",
                    body="AddendumIn",
                    ok="201",
                    tag="reading",
                ),
            },
            "/api/v1/reports/{id}/pdf": {
                "parameters": _ID,
                "get": _op("The printable report (zh-CN PDF)", tag="clinic"),
            },
            "/api/v1/reports/{id}/notifications": {
                "parameters": _ID,
                "get": _op(
                    "Who was told what about a report, when; its DICOM copies", tag="clinic"
                ),
            },
            "/api/v1/studies/{uid}/reading-request": {
                "parameters": [
                    {"name": "uid", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "post": _op(
                    "Ask for a reading: urgent or routine, with a question",
                    body="ReadingRequestIn",
                    tag="clinic",
                ),
            },
            "/api/v1/templates": {
                "get": _op("Report templates per specialty and modality", tag="reading")
            },
            "/api/v1/templates/{id}": {
                "parameters": _ID,
                "put": _op("Edit a report template", body="TemplateIn", tag="admin"),
            },
            "/api/v1/events": {
                "get": _op(
                    "Server-sent events: the caller's notifications (reports, critical results, "
                    "returned studies, new cases); resume with Last-Event-ID or ?after=",
                    tag="clinic",
                )
            },
            "/api/v1/referrals": {
                "get": _op("Referrals of the caller's facility", tag="referral"),
                "post": _op(
                    "Raise an up-referral (上转) or a down-referral (下转)",
                    body="ReferralIn",
                    ok="201",
                    tag="referral",
                ),
            },
            "/api/v1/referrals/{id}": {
                "parameters": _ID,
                "get": _op("One referral", tag="referral"),
            },
            "/api/v1/referrals/{id}/respond": {
                "parameters": _ID,
                "post": _op(
                    "Accept (接诊, with a time) or decline (with a reason)",
                    body="ReferralAnswer",
                    tag="referral",
                ),
            },
            "/api/v1/stats/referrals": {
                "get": _op("Referrals per facility, direction and status", tag="admin")
            },
            "/api/v1/patients/{id}/national-id": {
                "parameters": _ID,
                "post": _op(
                    "Link a patient record by national ID (kept as a keyed hash)",
                    body="NationalIdIn",
                    tag="patients",
                ),
            },
            "/api/v1/patients/merge": {
                "post": _op("Merge patient records into one person", body="MergeIn", tag="patients")
            },
            "/api/v1/patients/{id}/unmerge": {
                "parameters": _ID,
                "post": _op("Unlink a patient record", tag="patients"),
            },
            "/api/v1/patients/{id}/links": {
                "parameters": _ID,
                "get": _op("The audit of a record's links", tag="patients"),
            },
            "/api/v1/ecg": {
                "post": {
                    **_op(
                        "Upload an ECG file from a cart (DICOM waveform, HL7 aECG, SCP-ECG, "
                        "Philips XML, GE MUSE XML, Contec, CSV; a WFDB record as its .hea and "
                        "signal files): stored, converted to a DICOM ECG waveform, analyzed "
                        "and routed to an ECG reading pool; a re-sent file answers 200",
                        ok="201",
                        tag="ecg",
                    ),
                    "requestBody": {
                        "required": True,
                        "content": {
                            "multipart/form-data": {
                                "schema": {
                                    "type": "object",
                                    "required": ["file"],
                                    "properties": {
                                        "file": {"type": "string", "format": "binary"},
                                        "patient_id": {"type": "string"},
                                        "patient_name": {"type": "string"},
                                        "urgency": {"enum": ["routine", "urgent"]},
                                        "question": {"type": "string"},
                                    },
                                }
                            },
                            "application/octet-stream": {},
                        },
                    },
                }
            },
            "/api/v1/ecg/{sop}": {
                "parameters": _SOP,
                "get": _op(
                    "An ECG: automatic analysis, current measurements and statements, who "
                    "changed what, the patient's prior ECGs, links to the sheet and original",
                    tag="ecg",
                ),
                "patch": _op(
                    "A reader's change to measurements (null removes it) or statements",
                    tag="ecg",
                ),
            },
            "/api/v1/ecg/{sop}/sheet.png": {
                "parameters": [*_SOP, _SHEET_FILTER],
                "get": _op("The standard 12-lead sheet at 300 dpi (PNG)", tag="ecg"),
            },
            "/api/v1/ecg/{sop}/sheet.pdf": {
                "parameters": [*_SOP, _SHEET_FILTER],
                "get": _op("The standard 12-lead sheet on one A4 page (PDF)", tag="ecg"),
            },
            "/api/v1/ecg/{sop}/original": {
                "parameters": _SOP,
                "get": _op("The cart's original file, unchanged", tag="ecg"),
            },
            "/api/v1/stats/turnaround": {
                "get": _op(
                    "Turnaround per sending facility and per segment (received, complete, "
                    "routed, claimed, preliminary, escalated, final, delivered, acknowledged); "
                    "?case_id= for one case",
                    tag="admin",
                )
            },
            "/api/v1/stats/turnaround.csv": {"get": _turnaround_csv()},
            "/api/v1/admin/deliveries/failed": {
                "get": _op(
                    "Report deliveries (kind report) and DICOM copies of reports (kind "
                    "dicom_copy) given up after their last attempt, in the administrator's "
                    "network, the latest first",
                    tag="admin",
                )
            },
            "/api/v1/admin/deliveries/failed/{kind}/{id}/retry": {
                "parameters": [
                    {
                        "name": "kind",
                        "in": "path",
                        "required": True,
                        "schema": {"enum": ["report", "dicom_copy"]},
                    },
                    {"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}},
                ],
                "post": _op(
                    "Try a given-up delivery again from its first attempt (404 when it is not "
                    "failed, or not in your network)",
                    tag="admin",
                ),
            },
            "/api/v1/admin/routing": {
                "get": _op(
                    "The administrator's network as routing sees it: policies (deadlines per "
                    "priority and STEMI, critical-result window), routing rules, report "
                    "destinations, duty rosters",
                    tag="admin",
                )
            },
            "/api/v1/admin/facilities/{code}/policy": {
                "parameters": _CODE,
                "put": _op(
                    "Set the deadlines and timings of a network", body="PolicyIn", tag="admin"
                ),
            },
            "/api/v1/admin/facilities/{code}/routes": {
                "parameters": _CODE,
                "put": _op(
                    "Replace the routing rules of a sending facility (empty: the defaults)",
                    body="RoutesIn",
                    tag="admin",
                ),
            },
            "/api/v1/admin/facilities/{code}/report-destination": {
                "parameters": _CODE,
                "put": _op(
                    "Set the clinic workstation's DICOM node that takes reports back",
                    body="DestinationIn",
                    tag="admin",
                ),
            },
            "/api/v1/admin/users/{username}/duty": {
                "parameters": [
                    {
                        "name": "username",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                    }
                ],
                "put": _op(
                    "Replace a user's weekly on-duty shifts (empty: always on duty)",
                    body="DutyIn",
                    tag="admin",
                ),
            },
            **uploads.openapi_paths(),
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "responses": {
                "Problem": {
                    "description": "an RFC 9457 problem",
                    "content": {
                        "application/problem+json": {
                            "schema": {"$ref": "#/components/schemas/Problem"}
                        }
                    },
                }
            },
            "schemas": {
                **uploads.openapi_schemas(),
                "Problem": {
                    "type": "object",
                    "properties": {
                        "type": {"type": "string"},
                        "title": {"type": "string"},
                        "status": {"type": "integer"},
                        "detail": {"type": "string"},
                    },
                },
                "Login": {
                    "type": "object",
                    "required": ["username", "password"],
                    "properties": {
                        "username": {"type": "string"},
                        "password": {"type": "string"},
                    },
                },
                "EscalateIn": {
                    "type": "object",
                    "required": ["question"],
                    "properties": {
                        "question": {"type": "string"},
                        "findings": {"type": "string"},
                        "impression": {"type": "string"},
                        "conclusion": {"enum": ["normal", "abnormal", "critical"]},
                    },
                },
                "ReturnIn": {
                    "type": "object",
                    "required": ["reason"],
                    "properties": {
                        "reason": {"enum": [r.value for r in ReturnReason]},
                        "note": {"type": "string"},
                    },
                },
                "AddendumIn": {
                    "type": "object",
                    "required": ["text"],
                    "properties": {"text": {"type": "string"}},
                },
                "ReadingRequestIn": {
                    "type": "object",
                    "properties": {
                        "urgency": {"enum": ["urgent", "routine", "low"]},
                        "question": {"type": "string"},
                    },
                },
                "TemplateIn": {
                    "type": "object",
                    "required": ["findings", "impression"],
                    "properties": {
                        "findings": {"type": "string"},
                        "impression": {"type": "string"},
                    },
                },
                "AcknowledgeIn": {
                    "type": "object",
                    "properties": {
                        "name": {
                            "type": "string",
                            "description": "who took it (required for critical results)",
                        }
                    },
                },
                "ReferralIn": {
                    "type": "object",
                    "required": ["to", "reason"],
                    "properties": {
                        "direction": {"enum": ["up", "down"], "default": "up"},
                        "to": {"type": "string", "description": "facility code"},
                        "urgency": {"enum": ["routine", "urgent", "emergency"]},
                        "reason": {"type": "string"},
                        "case_id": {"type": "integer"},
                        "in_reply_to": {"type": "integer"},
                        "discharge_summary": {"type": "string"},
                        "follow_up_plan": {"type": "string"},
                    },
                },
                "ReferralAnswer": {
                    "type": "object",
                    "required": ["accept"],
                    "properties": {
                        "accept": {"type": "boolean"},
                        "appointment_at": {"type": "string", "format": "date-time"},
                        "reason": {"type": "string"},
                    },
                },
                "NationalIdIn": {
                    "type": "object",
                    "required": ["national_id"],
                    "properties": {"national_id": {"type": "string"}},
                },
                "MergeIn": {
                    "type": "object",
                    "required": ["patients"],
                    "properties": {"patients": {"type": "array", "items": {"type": "integer"}}},
                },
                "PolicyIn": {
                    "type": "object",
                    "properties": {
                        "timezone": {"type": "string", "default": "Asia/Shanghai"},
                        "deadline_minutes": {
                            "type": "object",
                            "properties": {
                                "urgent": _MINUTES,
                                "routine": _MINUTES,
                                "low": _MINUTES,
                                "stemi": _MINUTES,
                            },
                        },
                        "critical_ack_minutes": _MINUTES,
                        "at_risk_share": {"type": "number", "minimum": 0, "exclusiveMaximum": 1},
                    },
                },
                "RoutesIn": {
                    "type": "object",
                    "required": ["routes"],
                    "properties": {
                        "routes": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["first_read"],
                                "properties": {
                                    "modality": {"type": "string"},
                                    "specialty": {"enum": ["radiology", "ecg"]},
                                    "priority": {"enum": ["urgent", "routine", "low"]},
                                    "first_read": {"type": "string"},
                                    "escalation": {"type": "string"},
                                    "deadline_minutes": _MINUTES,
                                },
                            },
                        }
                    },
                },
                "DestinationIn": {
                    "type": "object",
                    "required": ["ae_title", "host", "port"],
                    "properties": {
                        "ae_title": {"type": "string", "maxLength": 16},
                        "host": {"type": "string"},
                        "port": {"type": "integer", "minimum": 1, "maximum": 65535},
                    },
                },
                "DutyIn": {
                    "type": "object",
                    "required": ["duty"],
                    "properties": {
                        "duty": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["from", "until"],
                                "properties": {
                                    "days": {
                                        "type": "array",
                                        "items": {
                                            "enum": [
                                                "mon",
                                                "tue",
                                                "wed",
                                                "thu",
                                                "fri",
                                                "sat",
                                                "sun",
                                            ]
                                        },
                                    },
                                    "from": {"type": "string", "examples": ["08:00"]},
                                    "until": {"type": "string", "examples": ["18:00", "24:00"]},
                                },
                            },
                        }
                    },
                },
                "ReportIn": {
                    "type": "object",
                    "required": ["conclusion"],
                    "description": "findings and impression, or a template_id to start from",
                    "properties": {
                        "template_id": {"type": "integer"},
                        "findings": {"type": "string"},
                        "impression": {"type": "string"},
                        "conclusion": {"enum": ["normal", "abnormal", "critical"]},
                        "status": {"enum": ["preliminary", "final"], "default": "final"},
                        "agreed": {"type": "boolean"},
                        "discrepancy": {"type": "string"},
                    },
                },
            },
        },
    }
