"""The authorisation matrix: every route of the application, called as each kind of user
from the right and the wrong facility, answers what the matrix says.

The routes come from the application's own router, pages and viewer files included, so a
new route that is not in the matrix fails this test until someone decides who may call it.
The answer classes: allowed (2xx, or a redirect that is not the sign-in page) and refused
(401, 403, 404, or the redirect to the sign-in page). A call that changes something runs on
a state prepared for it (a fresh case, a claim), refused callers first, so that an allowed
call is shown to succeed and a refused one to change nothing it needs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import re
from collections.abc import Awaitable, Callable, Mapping
from datetime import date, timedelta
from typing import Any

import aiohttp
import pydicom
from aiohttp import ClientResponse, web
from pydicom.uid import generate_uid

from storage import channels, network
from storage.records import (
    ChannelKind,
    ChannelSpec,
    Conclusion,
    FacilitySpec,
    Role,
    Specialty,
    Tier,
    UserSpec,
)
from storage.rosters import ExceptionKind
from teleradiology.http.context import OBJECTS
from teleradiology.http.web.common import PAGE_HEADER
from teleradiology.services import administration, console, delivery, identity, reading, rosters
from teleradiology.services.reading import ReportDraft
from tests.factory import make_study
from tests.integration.conftest import Api
from tests.integration.dicomweb_support import route_all, store, workstation_node
from tests.integration.test_ecg_flow import csv_of, sweep
from tests.integration.test_reports_home import SEND

# --- who calls --------------------------------------------------------------------------------

#: Each kind of caller, by the name the matrix uses, and the demo user (or fixture user) it is.
#: "Right" is the facility the fixtures belong to: a village clinic of Huaibin county.
CALLERS: dict[str, str | None] = {
    "anonymous": None,
    "clinic": "fhcg.clinic",  # the village clinic that sent the study and the ECG
    "clinic_elsewhere": "xlwd.clinic",  # another village's clinic, same county
    "county_reader": "hb.county",  # reads radiology and ECG for the county pool
    "county_reader_elsewhere": "gs.reader",  # another county's reader
    "city_reader": "xy.city",  # the city above (sees a case once escalated to it)
    "city_reader_elsewhere": "zk.city",  # another network's city reader
    "admin": "hb.admin",  # the county's administrator
    "network_admin": "xy.admin",  # the administrator of the whole network (the city)
    "admin_other_network": "zk.admin",  # the administrator of another network
}
SIGNED_IN = frozenset(CALLERS) - {"anonymous"}
EVERYONE = frozenset(CALLERS)
NOBODY: frozenset[str] = frozenset()
CLINICS = frozenset({"clinic", "clinic_elsewhere"})
READERS = frozenset(
    {"county_reader", "county_reader_elsewhere", "city_reader", "city_reader_elsewhere"}
)
ADMINS = frozenset({"admin", "network_admin", "admin_other_network"})
#: Who sees the fixtures' study, case, report and ECG: its clinic, the county's reader, the
#: administrators of its network.
SCOPE = frozenset({"clinic", "county_reader", "admin", "network_admin"})
NETWORK_ADMINS = frozenset({"admin", "network_admin"})


def _other_network() -> tuple[list[FacilitySpec], list[UserSpec]]:
    """A second network beside the demo's, and the fixture users of both."""
    facilities = [
        FacilitySpec(
            code="ZK-CITY", name="周口市中心医院", tier=Tier.CITY, parent=None, ae_titles=()
        )
    ]

    def user(name: str, role: Role, facility: str, *specialties: Specialty) -> UserSpec:
        return UserSpec(
            username=name,
            display_name=name,
            role=role,
            facility=facility,
            specialties=specialties,
            password_hash=None,
        )

    both = (Specialty.RADIOLOGY, Specialty.ECG)
    users = [
        user("hb.county", Role.READER, "HB-COUNTY", *both),
        user("xy.city", Role.READER, "XY-CITY", *both),
        user("zk.city", Role.READER, "ZK-CITY", *both),
        user("zk.admin", Role.ADMIN, "ZK-CITY"),
    ]
    return facilities, users


# --- the fixtures -----------------------------------------------------------------------------


@dataclasses.dataclass
class World:
    """Real records every route is called on: made through the service's own paths."""

    api: Api
    values: dict[str, Any]
    sessions: dict[str, str]

    async def user(self, name: str) -> Any:
        found = await network.user_by_username(self.api.pool, name)
        assert found is not None
        return found


SENDER = "HB-FH-CG"
_PATIENTS = iter(range(1, 10_000))


async def new_case(world: World, *, claimed_by: str | None = None) -> int:
    """A fresh radiology case of the clinic's, routed to the county pool (claimed when
    asked)."""
    pid = f"MX-{next(_PATIENTS)}"
    uid = await store(world.api, SENDER, make_study(modality="CR", count=1, patient_id=pid))
    await route_all(world.api)
    case_id: int = await world.api.pool.fetchval(
        "select c.id from reading_case c join study s on s.id = c.study_id "
        "where s.study_instance_uid = $1",
        uid,
    )
    if claimed_by is not None:
        reader = await world.user(claimed_by)
        await reading.claim(world.api.pool, reader, case_id, lease=timedelta(minutes=30))
    return case_id


async def new_final_report(world: World) -> tuple[int, int]:
    """A fresh case with a final report by the county reader, delivered to the clinic."""
    case_id = await new_case(world, claimed_by="hb.county")
    draft = ReportDraft(
        findings="双肺纹理清晰。", impression="未见异常。", conclusion=Conclusion.NORMAL
    )
    saved = await reading.submit_report(
        world.api.pool, await world.user("hb.county"), case_id, draft
    )
    assert await delivery.deliver(world.api.pool, world.api.app[OBJECTS], saved.id, send=SEND)
    return case_id, int(saved.id)


def _ecg_file() -> bytes:
    """A 12-lead ECG no one sent before (its ST level differs by a microvolt)."""
    return csv_of({"V5": float(next(_PATIENTS))})


async def _ecg(world: World) -> tuple[str, int]:
    form = aiohttp.FormData()
    form.add_field("patient_id", "MX-ECG")
    form.add_field("patient_name", "陈^一")
    form.add_field("file", _ecg_file(), filename="e.csv", content_type="application/octet-stream")
    response = await world.api.client.post(
        "/api/v1/ecg", data=form, headers=world.api.auth("fhcg.clinic")
    )
    body = await response.json()
    assert response.status == 201, body
    await sweep(world.api)
    case_id: int = await world.api.pool.fetchval(
        "select c.id from reading_case c join study s on s.id = c.study_id "
        "where s.study_instance_uid = $1 and c.specialty = 'ecg'",
        body["study_instance_uid"],
    )
    return str(body["sop_instance_uid"]), case_id


async def _refused_ecg(world: World) -> int:
    """A file the clinic sent that could not be read, kept as refused."""
    form = aiohttp.FormData()
    form.add_field("patient_id", "MX-ECG")
    form.add_field("file", b"not an ECG" * 20, filename="bad.scp")
    response = await world.api.client.post(
        "/api/v1/ecg", data=form, headers=world.api.auth("fhcg.clinic")
    )
    assert response.status == 400
    refused: int = await world.api.pool.fetchval("select max(id) from refused_ecg")
    return refused


async def build_world(api: Api) -> World:
    facilities, users = _other_network()
    await administration.import_network(api.pool, facilities, users)
    world = World(api=api, values={}, sessions={})
    for name in CALLERS.values():
        if name is not None:
            found = await world.user(name)
            api.tokens[name] = await network.create_token(api.pool, found.id)
            world.sessions[name] = await network.create_token(api.pool, found.id)
    case_id = await new_case(world)
    study = await api.pool.fetchrow(
        "select s.study_instance_uid as study, se.series_instance_uid as series, "
        "i.sop_instance_uid as sop, s.patient_ref from reading_case c "
        "join study s on s.id = c.study_id join series se on se.study_id = s.id "
        "join instance i on i.series_id = se.id where c.id = $1",
        case_id,
    )
    assert study is not None
    report_case, report_id = await new_final_report(world)
    ecg_sop, ecg_case = await _ecg(world)
    await workstation_node(api, "HB-FH-ZL", "FHZLWS", 11199)
    world.values.update(
        case=case_id,
        study=study["study"],
        series=study["series"],
        sop=study["sop"],
        patient=study["patient_ref"],
        report=report_id,
        report_case=report_case,
        report_study=await api.pool.fetchval(
            "select s.study_instance_uid from reading_case c join study s on s.id = c.study_id "
            "where c.id = $1",
            report_case,
        ),
        ecg=ecg_sop,
        ecg_case=ecg_case,
        refused_ecg=await _refused_ecg(world),
        template=await api.pool.fetchval(
            "select id from report_template where specialty = 'radiology' order by id limit 1"
        ),
    )
    world.values["referral"] = (await _referral(world))["referral"]
    world.values.update(await fresh_order(world))
    world.values.update(await _upload(world))
    return world


# --- what each changing call is prepared with --------------------------------------------------

Prepared = dict[str, Any]
Prepare = Callable[[World], Awaitable[Prepared]]


async def a_token_of(world: World, username: str) -> Prepared:
    """A fresh bearer token of the user, by its id (for the revoke routes)."""
    found = await world.user(username)
    await network.create_token(world.api.pool, found.id)
    token_id = await world.api.pool.fetchval(
        "select max(id) from api_token where user_id = $1", found.id
    )
    return {"token": token_id}


async def a_channel(world: World, username: str | None = None) -> Prepared:
    """A fresh e-mail channel of the sending clinic (or of one of its users)."""
    pool = world.api.pool
    facility = await pool.fetchval("select id from facility where code = $1", SENDER)
    user_id = (await world.user(username)).id if username else None
    spec = ChannelSpec(kind=ChannelKind.EMAIL, target=f"mx{next(_PATIENTS)}@example.org")
    return {"channel": await channels.upsert(pool, facility, user_id, spec)}


async def a_clinic_channel(world: World) -> Prepared:
    return await a_channel(world, "fhcg.clinic")


async def a_reader_token(world: World) -> Prepared:
    return await a_token_of(world, "wang.reader")


async def a_clinic_token(world: World) -> Prepared:
    return await a_token_of(world, "fhcg.clinic")


async def fresh_case(world: World) -> Prepared:
    return {"case": await new_case(world)}


async def only_a_fresh_case(world: World) -> Prepared:
    """One claimable case in the county's pool, none in any other (cases the other routes
    escalated to the city are closed)."""
    await world.api.pool.execute(
        "update reading_case set status = 'canceled', claimed_by = null, "
        "lease_expires_at = null where status in ('scheduled', 'in_progress') "
        "and not (id = any($1::bigint[]))",
        [world.values["case"], world.values["ecg_case"]],
    )
    return await fresh_case(world)


async def claimed_case(world: World) -> Prepared:
    return {"case": await new_case(world, claimed_by="hb.county")}


async def completed_case(world: World) -> Prepared:
    case_id, report_id = await new_final_report(world)
    return {"case": case_id, "report": report_id}


async def claimed_ecg(world: World) -> Prepared:
    """The fixture ECG's case held by the county reader."""
    reader = await world.user("hb.county")
    await world.api.pool.execute(
        "update reading_case set status = 'scheduled', claimed_by = null, "
        "lease_expires_at = null where id = $1 and status = 'in_progress'",
        world.values["ecg_case"],
    )
    await reading.claim(
        world.api.pool, reader, world.values["ecg_case"], lease=timedelta(minutes=30)
    )
    return {}


async def ecg_case_to_report(world: World) -> Prepared:
    """A fresh ECG, its case held by the county reader, to sign."""
    sop, case_id = await _ecg(world)
    reader = await world.user("hb.county")
    await reading.claim(world.api.pool, reader, case_id, lease=timedelta(minutes=30))
    return {"ecg": sop, "ecg_case": case_id}


async def unclaimed_ecg(world: World) -> Prepared:
    sop, case_id = await _ecg(world)
    return {"ecg": sop, "ecg_case": case_id}


async def _referral(world: World) -> Prepared:
    response = await world.api.client.post(
        "/api/v1/referrals",
        json={"to": "HB-COUNTY", "reason": "转上级医院进一步检查", "case_id": world.values["case"]},
        headers=world.api.auth("fhcg.clinic"),
    )
    body = await response.json()
    assert response.status == 201, body
    return {"referral": body["id"]}


async def _referral_step(world: World, path: str, body: Mapping[str, Any]) -> None:
    response = await world.api.client.post(path, json=body, headers=world.api.auth("hb.admin"))
    assert response.status == 200, await response.text()


async def accepted_referral(world: World) -> Prepared:
    """A fresh up-referral of the clinic's, accepted by the county."""
    prepared = await _referral(world)
    await _referral_step(
        world,
        f"/api/v1/referrals/{prepared['referral']}/respond",
        {"accept": True, "appointment_at": "2026-12-08T09:00:00+08:00"},
    )
    return prepared


async def arrived_referral(world: World) -> Prepared:
    """A fresh up-referral of the clinic's whose patient arrived at the county."""
    prepared = await accepted_referral(world)
    await _referral_step(world, f"/api/v1/referrals/{prepared['referral']}/arrive", {})
    return prepared


RETURN_BODY = {
    "kind": "outpatient",
    "diagnosis": "肺炎，门诊抗感染治疗。",
    "follow_up": "一周后村卫生室复诊。",
}


async def failed_delivery(world: World) -> Prepared:
    """The fixture report's delivery job, held as failed after its last attempt."""
    job = await world.api.pool.fetchval(
        "update pgqueuer set status = 'failed' where id = (select id from pgqueuer "
        "where entrypoint = $1 and convert_from(payload, 'UTF8')::jsonb ->> 'report_id' = $2 "
        "order by id desc limit 1) returning id",
        delivery.DELIVER_REPORT,
        str(world.values["report"]),
    )
    assert job is not None
    return {"job": job}


def _instance() -> tuple[bytes, str, str]:
    data = make_study(modality="CR", count=1, patient_id=f"UP-{next(_PATIENTS)}")[0]
    ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
    return data, str(ds.StudyInstanceUID), str(ds.SOPInstanceUID)


async def _upload(world: World, *, stored: bool = False) -> Prepared:
    """An upload session of the clinic's, for one instance (sent already when ``stored``)."""
    data, study, sop = _instance()
    line = {"sop_instance_uid": sop, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    response = await world.api.client.post(
        "/api/v1/uploads",
        json={"study_instance_uid": study, "instances": [line]},
        headers=world.api.auth("fhcg.clinic"),
    )
    body = await response.json()
    assert response.status == 201, body
    if stored:
        put = await world.api.client.put(
            f"/api/v1/uploads/{body['id']}/instances/{sop}",
            data=data,
            headers={**world.api.auth("fhcg.clinic"), "Content-Type": "application/dicom"},
        )
        assert put.status == 201, await put.text()
    return {"upload": body["id"], "upload_sop": sop, "upload_bytes": data}


async def new_upload(world: World) -> Prepared:
    return await _upload(world)


async def stored_upload(world: World) -> Prepared:
    return await _upload(world, stored=True)


async def new_instance(world: World) -> Prepared:
    data, study, _ = _instance()
    return {"new_study": study, "new_bytes": data}


async def two_patients(world: World) -> Prepared:
    """Two records of the clinic's (two patients' studies), to merge."""
    first = await new_case(world)
    second = await new_case(world)
    refs = await world.api.pool.fetch(
        "select s.patient_ref from reading_case c join study s on s.id = c.study_id "
        "where c.id = any($1::bigint[]) order by c.id",
        [first, second],
    )
    return {"merge": [r["patient_ref"] for r in refs]}


async def merged_patients(world: World) -> Prepared:
    """Two records of the clinic's merged into one person, to unlink."""
    refs = (await two_patients(world))["merge"]
    merged = await world.api.client.post(
        "/api/v1/patients/merge", json={"patients": refs}, headers=world.api.auth("hb.admin")
    )
    assert merged.status == 200, await merged.text()
    return {"patient": refs[1]}


ORDER_BODY = {
    "patient_id": "MX-ORDER",
    "patient_name": "陈^一",
    "modality": "DX",
    "scheduled_date": date.today().isoformat(),
}


async def fresh_order(world: World) -> Prepared:
    """A scheduled exam order of the clinic's, to read or cancel."""
    response = await world.api.client.post(
        "/api/v1/orders", json=ORDER_BODY, headers=world.api.auth("fhcg.clinic")
    )
    body = await response.json()
    assert response.status == 201, body
    return {"order": body["id"]}


async def renewed_session(world: World) -> Prepared:
    """A session of its own for each sign-out (signing out ends it)."""
    return {"fresh_session": True}


# --- the matrix -------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Call:
    """Who may call a route, and how it is called: ``url`` is filled from the fixtures."""

    allowed: frozenset[str]
    url: str = ""
    body: Callable[[Mapping[str, Any]], Any] | None = None
    #: "json" (the default), "form", "dicom" (the instance bytes), "multipart" (a STOW body),
    #: "ecg" (an ECG upload form)
    kind: str = "json"
    prepare: Prepare | None = None
    #: a browser page or its action: the session cookie instead of the bearer token
    page: bool = False
    #: a stream: only its status is read
    stream: bool = False
    #: a listing: the fixture value named (a study UID) is in its answer for ``sees`` only
    reveals: str | None = None
    sees: frozenset[str] = frozenset()


def _json(value: Any) -> Callable[[Mapping[str, Any]], Any]:
    return lambda v: value


REPORT_BODY = _json(
    {"findings": "双肺纹理清晰。", "impression": "未见异常。", "conclusion": "normal"}
)
CASE = "/api/v1/cases/{case}"
REPORT = "/api/v1/reports/{report}"
WADO = "/dicomweb/studies/{study}/series/{series}/instances/{sop}"
PAGE_CASE = "/cases/{case}"
PAGE_ECG = "/ecg/cases/{ecg_case}"
SCOPE_READER = frozenset({"county_reader"})
#: Who sees the fixtures' referral (the clinic's, up to the county), and who works it.
REFERRAL_SCOPE = frozenset({"clinic", "county_reader", "admin", "network_admin"})
REFERRAL_RECEIVERS = frozenset({"county_reader", "admin"})


def _case_actions(pattern: str, url: str, *, page: bool = False) -> dict[tuple[str, str], Call]:
    """The reader's actions on a case, the API's and the page's alike."""
    question = _json({"question": "请会诊"})
    actions = {
        "/claim": Call(SCOPE_READER, prepare=fresh_case),
        "/release": Call(SCOPE_READER | NETWORK_ADMINS, prepare=claimed_case),
        "/report": Call(SCOPE_READER, body=REPORT_BODY, prepare=claimed_case),
        "/escalate": Call(SCOPE_READER, body=question, prepare=claimed_case),
        "/return": Call(SCOPE_READER, body=_json({"reason": "positioning"}), prepare=claimed_case),
        "/second-read": Call(SCOPE_READER | NETWORK_ADMINS, prepare=completed_case),
    }
    return {
        ("POST", pattern + suffix): dataclasses.replace(action, url=url + suffix, page=page)
        for suffix, action in actions.items()
    }


def _api_matrix() -> dict[tuple[str, str], Call]:
    return {
        ("GET", "/healthz"): Call(EVERYONE),
        ("GET", "/readyz"): Call(EVERYONE),
        ("GET", "/metrics"): Call(EVERYONE),
        ("GET", "/api/v1/openapi.json"): Call(EVERYONE),
        ("POST", "/api/v1/login"): Call(
            EVERYONE, body=_json({"username": "fhcg.clinic", "password": "demo-fhcg.clinic"})
        ),
        ("GET", "/api/v1/me"): Call(SIGNED_IN),
        ("GET", "/api/v1/worklist"): Call(
            READERS | ADMINS, reveals="study", sees=SCOPE - {"clinic"}
        ),
        ("GET", "/api/v1/cases/{id}"): Call(SCOPE, CASE),
        **_case_actions("/api/v1/cases/{id}", CASE),
        ("POST", "/api/v1/worklist/next"): Call(SCOPE_READER, prepare=only_a_fresh_case),
        ("GET", "/api/v1/reports"): Call(SIGNED_IN, reveals="report_study", sees=SCOPE),
        ("GET", "/api/v1/reports/{id}"): Call(SCOPE, REPORT),
        ("POST", "/api/v1/reports/{id}/acknowledge"): Call(
            frozenset({"clinic"}), REPORT + "/acknowledge", body=_json({})
        ),
        ("POST", "/api/v1/reports/{id}/addendum"): Call(
            SCOPE_READER, REPORT + "/addendum", body=_json({"text": "补充：无。"})
        ),
        ("GET", "/api/v1/reports/{id}/pdf"): Call(SCOPE, REPORT + "/pdf"),
        ("GET", "/api/v1/reports/{id}/notifications"): Call(SCOPE, REPORT + "/notifications"),
        ("GET", "/api/v1/studies"): Call(SIGNED_IN, reveals="study", sees=SCOPE),
        ("POST", "/api/v1/studies/{uid}/reading-request"): Call(
            frozenset({"clinic"}),
            "/api/v1/studies/{study}/reading-request",
            body=_json({"urgency": "urgent", "question": "胸痛"}),
        ),
        ("GET", "/api/v1/stats/turnaround"): Call(CLINICS | ADMINS),
        ("GET", "/api/v1/stats/turnaround.csv"): Call(CLINICS | ADMINS),
        ("GET", "/api/v1/templates"): Call(SIGNED_IN),
        ("PUT", "/api/v1/templates/{id}"): Call(
            frozenset({"network_admin", "admin_other_network"}),
            "/api/v1/templates/{template}",
            body=_json({"findings": "胸廓对称。", "impression": "未见异常。"}),
        ),
        ("GET", "/api/v1/events"): Call(SIGNED_IN, stream=True),
        ("POST", "/api/v1/referrals"): Call(
            SCOPE,
            body=lambda v: {"to": "HB-COUNTY", "reason": "转诊", "case_id": v["case"]},
        ),
        ("POST", "/api/v1/referrals/{id}/respond"): Call(
            REFERRAL_RECEIVERS,
            "/api/v1/referrals/{referral}/respond",
            body=_json({"accept": False, "reason": "请先完善检查"}),
            prepare=_referral,
        ),
        ("GET", "/api/v1/referrals"): Call(SIGNED_IN),
        ("POST", "/api/v1/orders"): Call(CLINICS, body=_json(ORDER_BODY)),
        ("GET", "/api/v1/orders"): Call(CLINICS),
        ("GET", "/api/v1/orders/{id}"): Call(frozenset({"clinic"}), "/api/v1/orders/{order}"),
        ("PATCH", "/api/v1/orders/{id}"): Call(
            frozenset({"clinic"}),
            "/api/v1/orders/{order}",
            body=_json({"status": "canceled"}),
            prepare=fresh_order,
        ),
        ("GET", "/api/v1/referrals/{id}"): Call(REFERRAL_SCOPE, "/api/v1/referrals/{referral}"),
        ("POST", "/api/v1/referrals/{id}/arrive"): Call(
            REFERRAL_RECEIVERS,
            "/api/v1/referrals/{referral}/arrive",
            body=_json({}),
            prepare=accepted_referral,
        ),
        ("POST", "/api/v1/referrals/{id}/return"): Call(
            REFERRAL_RECEIVERS,
            "/api/v1/referrals/{referral}/return",
            body=_json(RETURN_BODY),
            prepare=arrived_referral,
        ),
        ("GET", "/api/v1/referrals/{id}/documents/{kind}"): Call(
            REFERRAL_SCOPE, "/api/v1/referrals/{referral}/documents/form"
        ),
        ("GET", "/api/v1/referrals/statistics"): Call(ADMINS),
        ("GET", "/api/v1/patients/{id}/referral-results"): Call(
            SCOPE, "/api/v1/patients/{patient}/referral-results"
        ),
        ("GET", "/api/v1/stats/referrals"): Call(ADMINS),
        ("GET", "/api/v1/admin/routing"): Call(ADMINS),
        ("PUT", "/api/v1/admin/facilities/{code}/policy"): Call(
            NETWORK_ADMINS, f"/api/v1/admin/facilities/{SENDER}/policy", body=_json({})
        ),
        ("PUT", "/api/v1/admin/facilities/{code}/routes"): Call(
            NETWORK_ADMINS, f"/api/v1/admin/facilities/{SENDER}/routes", body=_json({"routes": []})
        ),
        ("PUT", "/api/v1/admin/facilities/{code}/report-destination"): Call(
            NETWORK_ADMINS,
            "/api/v1/admin/facilities/HB-FH-ZL/report-destination",
            body=_json({"ae_title": "FHZLWS"}),
        ),
        ("PUT", "/api/v1/admin/users/{username}/duty"): Call(
            NETWORK_ADMINS, "/api/v1/admin/users/hb.county/duty", body=_json({"duty": []})
        ),
        ("GET", "/api/v1/admin/deliveries/failed"): Call(ADMINS),
        ("GET", "/api/v1/admin/dashboard"): Call(ADMINS),
        ("GET", "/api/v1/admin/dashboard/{table}.csv"): Call(
            ADMINS, "/api/v1/admin/dashboard/facility.csv"
        ),
        ("POST", "/api/v1/admin/deliveries/failed/{kind}/{id}/retry"): Call(
            NETWORK_ADMINS,
            "/api/v1/admin/deliveries/failed/report/{job}/retry",
            prepare=failed_delivery,
        ),
        ("POST", "/api/v1/patients/{id}/national-id"): Call(
            frozenset({"clinic"}) | NETWORK_ADMINS,
            "/api/v1/patients/{patient}/national-id",
            body=_json({"national_id": "11010519491231002X"}),
        ),
        ("POST", "/api/v1/patients/merge"): Call(
            NETWORK_ADMINS, body=lambda v: {"patients": v["merge"]}, prepare=two_patients
        ),
        ("POST", "/api/v1/patients/{id}/unmerge"): Call(
            NETWORK_ADMINS, "/api/v1/patients/{patient}/unmerge", prepare=merged_patients
        ),
        ("GET", "/api/v1/patients/{id}/links"): Call(
            NETWORK_ADMINS, "/api/v1/patients/{patient}/links"
        ),
        # uploads: the clinic's own sessions
        ("POST", "/api/v1/uploads"): Call(
            CLINICS,
            body=lambda v: {
                "study_instance_uid": v["new_study"],
                "instances": [
                    {
                        "sop_instance_uid": generate_uid(),
                        "size": 10,
                        "sha256": "0" * 64,
                    }
                ],
            },
            prepare=new_instance,
        ),
        ("GET", "/api/v1/uploads"): Call(CLINICS),
        ("GET", "/api/v1/uploads/{id}"): Call(frozenset({"clinic"}), "/api/v1/uploads/{upload}"),
        ("PUT", "/api/v1/uploads/{id}/instances/{sop}"): Call(
            frozenset({"clinic"}),
            "/api/v1/uploads/{upload}/instances/{upload_sop}",
            body=lambda v: v["upload_bytes"],
            kind="dicom",
            prepare=new_upload,
        ),
        ("DELETE", "/api/v1/uploads/{id}/instances/{sop}"): Call(
            frozenset({"clinic"}),
            "/api/v1/uploads/{upload}/instances/{upload_sop}",
            prepare=new_upload,
        ),
        ("POST", "/api/v1/uploads/{id}/commit"): Call(
            frozenset({"clinic"}), "/api/v1/uploads/{upload}/commit", prepare=stored_upload
        ),
        # ECG
        ("POST", "/api/v1/ecg"): Call(CLINICS, kind="ecg"),
        ("GET", "/api/v1/ecg/{sop}"): Call(SCOPE, "/api/v1/ecg/{ecg}"),
        ("PATCH", "/api/v1/ecg/{sop}"): Call(
            SCOPE_READER,
            "/api/v1/ecg/{ecg}",
            body=_json({"measurements": {"pr_ms": 160}}),
            prepare=claimed_ecg,
        ),
        ("GET", "/api/v1/ecg/{sop}/sheet.pdf"): Call(SCOPE, "/api/v1/ecg/{ecg}/sheet.pdf"),
        ("GET", "/api/v1/ecg/{sop}/sheet.png"): Call(SCOPE, "/api/v1/ecg/{ecg}/sheet.png"),
        ("GET", "/api/v1/ecg/{sop}/original"): Call(SCOPE, "/api/v1/ecg/{ecg}/original"),
        ("GET", "/api/v1/refused-ecgs"): Call(CLINICS | ADMINS),
        # the clinic that sent it and the administrators above it
        ("GET", "/api/v1/refused-ecgs/{id}/original"): Call(
            frozenset({"clinic"}) | NETWORK_ADMINS, "/api/v1/refused-ecgs/{refused_ecg}/original"
        ),
        # the catch-alls: nothing there, whoever asks
        ("*", "/api/{tail}"): Call(NOBODY, "/api/v2/anything"),
        ("*", "/dicomweb/{tail}"): Call(NOBODY, "/dicomweb/anything"),
    }


def _dicomweb_matrix() -> dict[tuple[str, str], Call]:
    found: dict[tuple[str, str], Call] = {
        ("POST", "/dicomweb/studies"): Call(CLINICS, kind="multipart", prepare=new_instance),
        ("POST", "/dicomweb/studies/{study}"): Call(
            CLINICS, "/dicomweb/studies/{new_study}", kind="multipart", prepare=new_instance
        ),
        ("OPTIONS", "/dicomweb/{tail}"): Call(EVERYONE, "/dicomweb/studies"),
        # searches answer everyone signed in, each with what is in their scope
        ("GET", "/dicomweb/studies"): Call(SIGNED_IN, reveals="study", sees=SCOPE),
        ("GET", "/dicomweb/series"): Call(SIGNED_IN, reveals="series", sees=SCOPE),
        ("GET", "/dicomweb/instances"): Call(SIGNED_IN, reveals="sop", sees=SCOPE),
    }
    levels = {
        "/dicomweb/studies/{study}": "/dicomweb/studies/{study}",
        "/dicomweb/studies/{study}/series/{series}": "/dicomweb/studies/{study}/series/{series}",
        "/dicomweb/studies/{study}/series/{series}/instances/{instance}": WADO,
    }
    for pattern, url in levels.items():
        for suffix in ("", "/metadata", "/rendered", "/thumbnail"):
            found[("GET", pattern + suffix)] = Call(SCOPE, url + suffix)
    found[("GET", "/dicomweb/studies/{study}/series")] = Call(
        SCOPE, "/dicomweb/studies/{study}/series"
    )
    found[("GET", "/dicomweb/studies/{study}/instances")] = Call(
        SCOPE, "/dicomweb/studies/{study}/instances"
    )
    found[("GET", "/dicomweb/studies/{study}/series/{series}/instances")] = Call(
        SCOPE, "/dicomweb/studies/{study}/series/{series}/instances"
    )
    instance = "/dicomweb/studies/{study}/series/{series}/instances/{instance}"
    for suffix in ("/frames/{frames}", "/frames/{frames}/rendered", "/frames/{frames}/thumbnail"):
        found[("GET", instance + suffix)] = Call(SCOPE, WADO + suffix.replace("{frames}", "1"))
    found[("GET", instance + "/bulk/{tag}")] = Call(SCOPE, WADO + "/bulk/7FE00010")
    return found


def _send_routes() -> dict[tuple[str, str], Call]:
    """The send page's routes: the upload API's calls, on the session cookie."""
    api = _api_matrix()
    found = {}
    for method, path in [
        ("POST", "/api/v1/uploads"),
        ("GET", "/api/v1/uploads/{id}"),
        ("PUT", "/api/v1/uploads/{id}/instances/{sop}"),
        ("DELETE", "/api/v1/uploads/{id}/instances/{sop}"),
        ("POST", "/api/v1/uploads/{id}/commit"),
        ("POST", "/api/v1/ecg"),
    ]:
        spec = api[(method, path)]
        url = (spec.url or path).replace("/api/v1/uploads", "/send/uploads")
        page_path = path.replace("/api/v1/uploads", "/send/uploads")
        page_path = page_path.replace("/api/v1/ecg", "/send/ecg")
        found[(method, page_path)] = dataclasses.replace(
            spec, url=url.replace("/api/v1/ecg", "/send/ecg"), page=True
        )
    return found


def _page_matrix() -> dict[tuple[str, str], Call]:
    def page(allowed: frozenset[str], url: str, **more: Any) -> Call:
        return Call(allowed, url, page=True, **more)

    return {
        ("GET", "/"): page(SIGNED_IN, "/"),
        ("GET", "/login"): page(EVERYONE, "/login"),
        ("POST", "/login"): Call(
            EVERYONE,
            "/login",
            kind="form",
            body=_json({"username": "fhcg.clinic", "password": "demo-fhcg.clinic", "next": "/"}),
        ),
        ("POST", "/logout"): page(EVERYONE, "/logout", prepare=renewed_session),
        ("POST", "/language"): Call(
            EVERYONE, "/language", kind="form", body=_json({"language": "en", "next": "/login"})
        ),
        ("GET", "/events"): page(SIGNED_IN, "/events", stream=True),
        ("GET", "/cases/{id}"): page(SCOPE, PAGE_CASE),
        ("POST", "/worklist/next"): page(SCOPE_READER, "/worklist/next", prepare=only_a_fresh_case),
        **_case_actions("/cases/{id}", PAGE_CASE, page=True),
        ("GET", "/reports/{id}/pdf"): page(SCOPE, "/reports/{report}/pdf"),
        ("POST", "/reports/{id}/acknowledge"): page(
            frozenset({"clinic"}), "/reports/{report}/acknowledge", body=_json({})
        ),
        ("POST", "/reports/{id}/addendum"): page(
            SCOPE_READER, "/reports/{report}/addendum", body=_json({"text": "补充。"})
        ),
        ("POST", "/referrals"): page(
            SCOPE,
            "/referrals",
            body=lambda v: {"to": "HB-COUNTY", "reason": "转诊", "case_id": v["case"]},
        ),
        ("GET", "/referrals"): page(SIGNED_IN, "/referrals"),
        ("GET", "/orders"): page(CLINICS, "/orders"),
        ("POST", "/orders"): page(CLINICS, "/orders", body=_json(ORDER_BODY)),
        ("PATCH", "/orders/{id}"): page(
            frozenset({"clinic"}),
            "/orders/{order}",
            body=_json({"status": "canceled"}),
            prepare=fresh_order,
        ),
        ("GET", "/referrals/new"): page(CLINICS, "/referrals/new"),
        ("GET", "/referrals/{id}"): page(REFERRAL_SCOPE, "/referrals/{referral}"),
        ("POST", "/referrals/{id}/respond"): page(
            REFERRAL_RECEIVERS,
            "/referrals/{referral}/respond",
            body=_json({"accept": False, "reason": "请先完善检查"}),
            prepare=_referral,
        ),
        ("POST", "/referrals/{id}/arrive"): page(
            REFERRAL_RECEIVERS,
            "/referrals/{referral}/arrive",
            body=_json({}),
            prepare=accepted_referral,
        ),
        ("POST", "/referrals/{id}/return"): page(
            REFERRAL_RECEIVERS,
            "/referrals/{referral}/return",
            body=_json(RETURN_BODY),
            prepare=arrived_referral,
        ),
        ("GET", "/ecg/{sop}/sheet.{kind}"): page(SCOPE, "/ecg/{ecg}/sheet.png"),
        ("GET", "/referrals/{id}/documents/{kind}"): page(
            REFERRAL_SCOPE, "/referrals/{referral}/documents/form"
        ),
        ("GET", "/admin"): page(ADMINS, "/admin"),
        ("GET", "/admin/turnaround.csv"): page(CLINICS | ADMINS, "/admin/turnaround.csv"),
        ("GET", "/admin/dashboard/{table}.csv"): page(ADMINS, "/admin/dashboard/facility.csv"),
        ("POST", "/admin/deliveries/failed/{kind}/{id}/retry"): page(
            NETWORK_ADMINS, "/admin/deliveries/failed/report/{job}/retry", prepare=failed_delivery
        ),
        ("GET", "/ecg/cases/{id}"): page(SCOPE, PAGE_ECG),
        ("GET", "/ecg/cases/{id}/sheets/{sop}.{kind}"): page(SCOPE, PAGE_ECG + "/sheets/{ecg}.png"),
        ("PATCH", "/ecg/cases/{id}/ecg/{sop}"): page(
            SCOPE_READER,
            PAGE_ECG + "/ecg/{ecg}",
            body=_json({"measurements": {"pr_ms": 162}}),
            prepare=claimed_ecg,
        ),
        ("POST", "/ecg/cases/{id}/claim"): page(
            SCOPE_READER, PAGE_ECG + "/claim", prepare=unclaimed_ecg
        ),
        ("POST", "/ecg/cases/{id}/report"): page(
            SCOPE_READER,
            PAGE_ECG + "/report",
            body=_json({"findings": "窦性心律。", "impression": "正常", "conclusion": "normal"}),
            prepare=ecg_case_to_report,
        ),
        # the clinic's send page, its header reader, and its upload and ECG routes
        ("GET", "/send"): page(CLINICS, "/send"),
        ("GET", "/send/dicom-parser.js"): Call(EVERYONE, "/send/dicom-parser.js"),
        **_send_routes(),
        # the viewer: its pages for the signed in, its configuration public
        ("GET", "/viewer"): page(SIGNED_IN, "/viewer"),
        ("GET", "/viewer/{tail}"): page(SIGNED_IN, "/viewer/dicomjson"),
        ("GET", "/app-config.js"): Call(EVERYONE, "/app-config.js"),
        ("GET", "/{tail}"): page(SIGNED_IN, "/local"),
    }


def _account_matrix() -> dict[tuple[str, str], Call]:
    """Accounts, the audit, quotas and held instances: what each may read, and the changes
    that leave the fixtures as they were (an active user set active, an unlock)."""

    def page(allowed: frozenset[str], url: str, **more: Any) -> Call:
        return Call(allowed, url, page=True, **more)

    return {
        ("GET", "/api/v1/me/tokens"): Call(SIGNED_IN),
        ("PUT", "/api/v1/me/language"): Call(SIGNED_IN, body=_json({"language": "zh-CN"})),
        # notification channels: the network's for its administrators, one's own for each
        ("GET", "/api/v1/admin/notification-channels"): Call(ADMINS),
        ("POST", "/api/v1/admin/notification-channels"): Call(
            NETWORK_ADMINS,
            body=lambda v: {
                "facility": SENDER,
                "kind": "email",
                "target": f"mx{next(_PATIENTS)}@example.org",
            },
        ),
        ("PATCH", "/api/v1/admin/notification-channels/{id}"): Call(
            NETWORK_ADMINS,
            "/api/v1/admin/notification-channels/{channel}",
            body=_json({"label": "门诊"}),
            prepare=a_channel,
        ),
        ("DELETE", "/api/v1/admin/notification-channels/{id}"): Call(
            NETWORK_ADMINS, "/api/v1/admin/notification-channels/{channel}", prepare=a_channel
        ),
        ("GET", "/api/v1/me/notification-channels"): Call(SIGNED_IN),
        ("POST", "/api/v1/me/notification-channels"): Call(
            SIGNED_IN, body=_json({"address": "me@example.org"})
        ),
        ("DELETE", "/api/v1/me/notification-channels/{id}"): Call(
            frozenset({"clinic"}),
            "/api/v1/me/notification-channels/{channel}",
            prepare=a_clinic_channel,
        ),
        ("POST", "/account/notification-channels"): page(
            SIGNED_IN, "/account/notification-channels", body=_json({"address": "me@example.org"})
        ),
        ("POST", "/account/notification-channels/{id}/remove"): page(
            frozenset({"clinic"}),
            "/account/notification-channels/{channel}/remove",
            prepare=a_clinic_channel,
        ),
        ("GET", "/api/v1/admin/tokens"): Call(ADMINS),
        ("GET", "/api/v1/admin/users"): Call(ADMINS),
        ("PATCH", "/api/v1/admin/users/{username}"): Call(
            NETWORK_ADMINS, "/api/v1/admin/users/hb.county", body=_json({"active": True})
        ),
        ("POST", "/api/v1/admin/users/{username}/unlock"): Call(
            NETWORK_ADMINS, "/api/v1/admin/users/hb.county/unlock", body=_json({})
        ),
        ("GET", "/api/v1/admin/audit"): Call(ADMINS),
        ("GET", "/api/v1/admin/audit/export"): Call(ADMINS),
        ("GET", "/api/v1/cases/{id}/held"): Call(SCOPE, CASE + "/held"),
        ("GET", "/account"): page(SIGNED_IN, "/account"),
        ("PUT", "/account/language"): page(
            SIGNED_IN, "/account/language", body=_json({"language": "zh-CN"})
        ),
        ("GET", "/admin/accounts"): page(ADMINS, "/admin/accounts"),
        ("GET", "/admin/audit"): page(ADMINS, "/admin/audit"),
        ("GET", "/admin/audit/export"): page(ADMINS, "/admin/audit/export"),
        ("GET", "/password"): Call(EVERYONE, "/password"),
        ("POST", "/admin/users/{username}/unlock"): page(
            NETWORK_ADMINS, "/admin/users/hb.county/unlock"
        ),
        ("POST", "/admin/users/{username}/activate"): page(
            NETWORK_ADMINS, "/admin/users/hb.county/activate"
        ),
        # a fresh token of a user of the network who is not one of the callers
        ("DELETE", "/api/v1/tokens/{id}"): Call(
            NETWORK_ADMINS, "/api/v1/tokens/{token}", prepare=a_reader_token
        ),
        ("POST", "/admin/tokens/{id}/revoke"): page(
            NETWORK_ADMINS, "/admin/tokens/{token}/revoke", prepare=a_reader_token
        ),
        ("POST", "/account/tokens/{id}/revoke"): page(
            frozenset({"clinic"}) | NETWORK_ADMINS,
            "/account/tokens/{token}/revoke",
            prepare=a_clinic_token,
        ),
        ("POST", "/api/v1/admin/users"): Call(
            NETWORK_ADMINS,
            body=lambda v: {
                "username": f"mx.new{next(_PATIENTS)}",
                "role": "clinic",
                "facility": SENDER,
            },
        ),
        ("POST", "/api/v1/admin/users/{username}/password-reset"): Call(
            NETWORK_ADMINS, "/api/v1/admin/users/wang.reader/password-reset", body=_json({})
        ),
        ("POST", "/admin/users/{username}/password-reset"): page(
            NETWORK_ADMINS, "/admin/users/wang.reader/password-reset"
        ),
        ("POST", "/admin/users/{username}/deactivate"): page(
            NETWORK_ADMINS, "/admin/users/wang.reader/deactivate"
        ),
        ("PUT", "/api/v1/admin/facilities/{code}/quota"): Call(
            NETWORK_ADMINS,
            f"/api/v1/admin/facilities/{SENDER}/quota",
            body=_json({"bytes_per_day": None, "instances_per_day": None}),
        ),
        # Refused to every caller here, by what the call carries; the allowed path of each is
        # tested where its state is made (test_accounts.py): a wrong current password,
        ("POST", "/api/v1/me/password"): Call(
            NOBODY,
            body=_json({"current_password": "not-the-password", "new_password": "n3w-passw0rd"}),
        ),
        ("POST", "/account/password"): page(
            NOBODY,
            "/account/password",
            body=_json({"current_password": "not-the-password", "new_password": "n3w-passw0rd"}),
        ),
        # a link never issued.
        ("POST", "/api/v1/password/link"): Call(
            NOBODY, body=_json({"link": "never-issued", "new_password": "n3w-passw0rd"})
        ),
        # Nothing is held on the fixture case: letting in or discarding nothing is allowed to
        # those who may decide (test_held_instances.py has instances held).
        ("POST", "/api/v1/cases/{id}/held/let-in"): Call(
            SCOPE_READER | NETWORK_ADMINS, CASE + "/held/let-in"
        ),
        ("POST", "/api/v1/cases/{id}/held/discard"): Call(
            SCOPE_READER | NETWORK_ADMINS, CASE + "/held/discard"
        ),
    }


async def a_dicom_node(world: World) -> Prepared:
    """A fresh DICOM node of the village clinic's, to change or remove."""
    admin = await world.user("hb.admin")
    made = await console.create_node(
        world.api.pool,
        admin,
        console.NodeSpec(ae_title=f"MXN{next(_PATIENTS)}", facility=SENDER, host="127.0.0.1"),
    )
    return {"node": made.id}


def _new_facility(v: Mapping[str, Any]) -> dict[str, Any]:
    return {"code": f"MX-V{next(_PATIENTS)}", "name": "新村", "tier": "village", "parent": "HB-FH"}


def _new_node(v: Mapping[str, Any]) -> dict[str, Any]:
    return {"ae_title": f"MXN{next(_PATIENTS)}", "facility": SENDER, "host": "127.0.0.1"}


def _node_change(v: Mapping[str, Any]) -> dict[str, Any]:
    return {"ae_title": f"MXC{next(_PATIENTS)}", "facility": SENDER, "host": "127.0.0.2"}


async def candidate_pair(world: World) -> Prepared:
    """Two records of one name, sex and birth date at two villages: a candidate pair."""
    n = next(_PATIENTS)
    uids = [
        await store(
            world.api, code, make_study(count=1, patient_id=f"MX-D{n}", patient_name=f"候选^{n}")
        )
        for code in (SENDER, "HB-XL-WD")
    ]
    refs = [
        await world.api.pool.fetchval(
            "select patient_ref from study where study_instance_uid = $1", uid
        )
        for uid in uids
    ]
    return {"pair": sorted(refs), "pa": min(refs), "pb": max(refs), "dup_patient": f"MX-D{n}"}


async def dismissed_pair(world: World) -> Prepared:
    """A candidate pair the county's administrator judged not one person."""
    prepared = await candidate_pair(world)
    a, b = prepared["pair"]
    await identity.dismiss(world.api.pool, await world.user("hb.admin"), a, b, note="两个人")
    return prepared


async def identity_conflict(world: World) -> Prepared:
    """An instance of the clinic's naming another patient than its study's."""
    n = next(_PATIENTS)
    uid = generate_uid()
    for name in ("王^小明", f"冲突^{n}"):
        await store(
            world.api,
            SENDER,
            make_study(count=1, patient_id=f"MX-C{n}", patient_name=name, study_uid=uid),
        )
    conflict = await world.api.pool.fetchval(
        "select c.id from ingest_identity_conflict c join study s on s.id = c.study_id "
        "where s.study_instance_uid = $1",
        uid,
    )
    return {"conflict": conflict, "conflict_study": uid}


def _identity_matrix() -> dict[tuple[str, str], Call]:
    """The console's patient identity: each administrator lists their own network's
    candidates and conflicts (another network's none); only the village's own network's
    administrators open, merge, dismiss and resolve (another network's get 404)."""
    calls: dict[tuple[str, str], Call] = {}
    for prefix, page in (("/api/v1/admin", False), ("/admin", True)):
        calls |= {
            ("GET", f"{prefix}/patients/duplicates"): Call(
                ADMINS,
                prepare=candidate_pair,
                reveals="dup_patient",
                sees=NETWORK_ADMINS,
                page=page,
            ),
            ("POST", f"{prefix}/patients/duplicates/dismiss"): Call(
                NETWORK_ADMINS,
                body=lambda v: {"patients": v["pair"]},
                prepare=candidate_pair,
                page=page,
            ),
            ("DELETE", f"{prefix}/patients/dismissals/{{a}}/{{b}}"): Call(
                NETWORK_ADMINS,
                f"{prefix}/patients/dismissals/{{pa}}/{{pb}}",
                prepare=dismissed_pair,
                page=page,
            ),
            ("GET", f"{prefix}/identity-conflicts"): Call(
                ADMINS,
                prepare=identity_conflict,
                reveals="conflict_study",
                sees=NETWORK_ADMINS,
                page=page,
            ),
            ("POST", f"{prefix}/identity-conflicts/{{id}}/resolve"): Call(
                NETWORK_ADMINS,
                f"{prefix}/identity-conflicts/{{conflict}}/resolve",
                body=_json({"note": "已核对"}),
                prepare=identity_conflict,
                page=page,
            ),
        }
    calls |= {
        ("GET", "/api/v1/admin/patients/dismissals"): Call(
            ADMINS, prepare=dismissed_pair, reveals="dup_patient", sees=NETWORK_ADMINS
        ),
        ("GET", "/admin/patients/merge"): Call(
            NETWORK_ADMINS, "/admin/patients/merge?a={pa}&b={pb}", prepare=candidate_pair, page=True
        ),
        ("POST", "/admin/patients/merge"): Call(
            NETWORK_ADMINS,
            body=lambda v: {"patients": v["merge"]},
            prepare=two_patients,
            page=True,
        ),
        ("POST", "/admin/patients/{id}/unmerge"): Call(
            NETWORK_ADMINS, "/admin/patients/{patient}/unmerge", prepare=merged_patients, page=True
        ),
    }
    return calls


def _console_matrix() -> dict[tuple[str, str], Call]:
    """The console: each administrator lists their own network; only the village's own
    network's administrators change it (another network's get 404)."""
    calls: dict[tuple[str, str], Call] = {}
    for prefix, page in (("/api/v1/admin", False), ("/admin", True)):
        calls |= {
            ("POST", f"{prefix}/facilities"): Call(NETWORK_ADMINS, body=_new_facility, page=page),
            ("PATCH", f"{prefix}/facilities/{{code}}"): Call(
                NETWORK_ADMINS,
                f"{prefix}/facilities/{SENDER}",
                body=_json({"active": True}),
                page=page,
            ),
            ("POST", f"{prefix}/dicom-nodes"): Call(NETWORK_ADMINS, body=_new_node, page=page),
            ("PATCH", f"{prefix}/dicom-nodes/{{id}}"): Call(
                NETWORK_ADMINS,
                f"{prefix}/dicom-nodes/{{node}}",
                body=_node_change,
                prepare=a_dicom_node,
                page=page,
            ),
            ("DELETE", f"{prefix}/dicom-nodes/{{id}}"): Call(
                NETWORK_ADMINS, f"{prefix}/dicom-nodes/{{node}}", prepare=a_dicom_node, page=page
            ),
        }
    calls |= {
        ("GET", "/api/v1/admin/facilities"): Call(ADMINS),
        ("GET", "/api/v1/admin/dicom-nodes"): Call(ADMINS),
        ("GET", "/admin/facilities"): Call(ADMINS, page=True),
        ("GET", "/admin/users"): Call(ADMINS, page=True),
        ("GET", "/admin/dicom-nodes"): Call(ADMINS, page=True),
        ("GET", "/admin/users/{username}"): Call(
            NETWORK_ADMINS, "/admin/users/hb.county", page=True
        ),
        ("PATCH", "/admin/users/{username}"): Call(
            NETWORK_ADMINS,
            "/admin/users/hb.county",
            body=_json({"specialties": ["radiology", "ecg"]}),
            page=True,
        ),
        ("POST", "/admin/users"): Call(
            NETWORK_ADMINS,
            body=lambda v: {
                "username": f"mx.page{next(_PATIENTS)}",
                "role": "clinic",
                "facility": SENDER,
            },
            page=True,
        ),
        ("PUT", "/admin/facilities/{code}/report-destination"): Call(
            NETWORK_ADMINS,
            "/admin/facilities/HB-FH-ZL/report-destination",
            body=_json({"ae_title": "FHZLWS"}),
            page=True,
        ),
    }
    return calls


async def a_pool(world: World) -> Prepared:
    """A reading pool of the county, made by its administrator."""
    code = f"MX-POOL-{next(_PATIENTS)}"
    admin = await world.user("hb.admin")
    await rosters.create_pool(
        world.api.pool,
        admin,
        code=code,
        name="县放射组",
        specialty=Specialty.RADIOLOGY,
        facility="HB-COUNTY",
        members=["hb.county"],
    )
    return {"pool": code}


async def a_duty_exception(world: World) -> Prepared:
    admin = await world.user("hb.admin")
    made = await rosters.add_exception(
        world.api.pool,
        admin,
        "hb.county",
        day=date(2030, 1, 1),
        kind=ExceptionKind.LEAVE,
        starts=None,
        ends=None,
    )
    return {"exception": made.id}


def _routing_matrix() -> dict[tuple[str, str], Call]:
    """Reading pools, the duty roster, a rule added and the preview: the API's and the
    pages' alike; a new pool gets a code of its own each call."""

    def new_pool(v: Mapping[str, Any]) -> Any:
        return {
            "code": f"MX-NEW-{next(_PATIENTS)}",
            "name": "新阅片组",
            "specialty": "radiology",
            "facility": "HB-COUNTY",
        }

    # a rule and shifts that leave the fixtures' routing and duty as they were
    rule = _json({"modality": "XA", "first_read": "HB-COUNTY"})
    shift = _json({"from": "00:00", "until": "24:00"})
    leave = _json({"date": "2030-01-02", "kind": "leave"})
    found: dict[tuple[str, str], Call] = {
        ("GET", "/api/v1/admin/pools"): Call(ADMINS),
        ("GET", "/api/v1/admin/routing/preview"): Call(
            NETWORK_ADMINS, f"/api/v1/admin/routing/preview?facility={SENDER}&modality=DX"
        ),
        ("GET", "/admin/routing"): Call(ADMINS, "/admin/routing", page=True),
        ("GET", "/api/v1/admin/pools/{code}/roster"): Call(
            NETWORK_ADMINS, "/api/v1/admin/pools/{pool}/roster", prepare=a_pool
        ),
        ("GET", "/admin/routing/pools/{code}/roster"): Call(
            NETWORK_ADMINS, "/admin/routing/pools/{pool}/roster", prepare=a_pool, page=True
        ),
        ("DELETE", "/api/v1/admin/duty-exceptions/{id}"): Call(
            NETWORK_ADMINS, "/api/v1/admin/duty-exceptions/{exception}", prepare=a_duty_exception
        ),
        ("POST", "/admin/routing/duty-exceptions/{id}/delete"): Call(
            NETWORK_ADMINS,
            "/admin/routing/duty-exceptions/{exception}/delete",
            prepare=a_duty_exception,
            page=True,
        ),
        ("PATCH", "/api/v1/admin/pools/{code}"): Call(
            NETWORK_ADMINS,
            "/api/v1/admin/pools/{pool}",
            body=_json({"name": "改名"}),
            prepare=a_pool,
        ),
        ("POST", "/admin/routing/pools/{code}"): Call(
            NETWORK_ADMINS,
            "/admin/routing/pools/{pool}",
            body=_json({"name": "改名"}),
            prepare=a_pool,
            page=True,
        ),
    }
    found[("POST", "/admin/routing/facilities/{code}/policy")] = Call(
        NETWORK_ADMINS,
        "/admin/routing/facilities/HB-COUNTY/policy",
        body=_json(
            {"urgent": 30, "routine": 1440, "low": 4320, "stemi": 10, "critical_ack": 15}
            | {"at_risk_share": 0.1}
        ),
        page=True,
    )
    for prefix, page in (("/api/v1/admin", False), ("/admin/routing", True)):
        for path, body in (
            ("/pools", new_pool),
            ("/facilities/{code}/routes", rule),
            ("/users/{username}/shifts", shift),
            ("/users/{username}/duty-exceptions", leave),
        ):
            url = path.replace("{code}", SENDER).replace("{username}", "hb.county")
            found[("POST", prefix + path)] = Call(
                NETWORK_ADMINS, prefix + url, body=body, page=page
            )
    return found


def matrix() -> dict[tuple[str, str], Call]:
    return {
        **_api_matrix(),
        **_dicomweb_matrix(),
        **_page_matrix(),
        **_account_matrix(),
        **_console_matrix(),
        **_routing_matrix(),
        **_operations_matrix(),
        **_identity_matrix(),
    }


#: The administrators of a network's top facility: they change its report templates.
TOP_ADMINS = frozenset({"network_admin", "admin_other_network"})


def _new_template(v: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "specialty": "radiology",
        "modality": "DX",
        "name": f"模板 {next(_PATIENTS)}",
        "findings": "胸廓对称。",
        "impression": "未见异常。",
    }


def _operations_matrix() -> dict[tuple[str, str], Call]:
    """The operations page and its JSON, the network's report templates and its channels'
    pages: each administrator reads their own network; another network's changes nothing
    of the fixtures' (its failed job, its channel: 404)."""
    calls: dict[tuple[str, str], Call] = {}
    for prefix, page in (("/api/v1/admin", False), ("/admin", True)):
        calls |= {
            ("POST", f"{prefix}/jobs/{{id}}/retry"): Call(
                NETWORK_ADMINS, f"{prefix}/jobs/{{job}}/retry", prepare=failed_delivery, page=page
            ),
            ("POST", f"{prefix}/templates"): Call(TOP_ADMINS, body=_new_template, page=page),
            ("PATCH", f"{prefix}/templates/{{id}}"): Call(
                TOP_ADMINS,
                f"{prefix}/templates/{{template}}",
                body=_json({"findings": "胸廓对称，气管居中。"}),
                page=page,
            ),
            ("POST", f"{prefix}/notification-channels/{{id}}/test"): Call(
                NETWORK_ADMINS,
                f"{prefix}/notification-channels/{{channel}}/test",
                prepare=a_channel,
                page=page,
            ),
        }
    calls |= {
        ("GET", "/api/v1/admin/operations/rejections"): Call(ADMINS),
        ("GET", "/api/v1/admin/operations/returned"): Call(ADMINS),
        ("GET", "/api/v1/admin/operations/health"): Call(ADMINS),
        ("GET", "/api/v1/admin/jobs/failed"): Call(ADMINS),
        ("GET", "/api/v1/admin/templates"): Call(ADMINS),
        ("GET", "/admin/operations"): Call(ADMINS, page=True),
        ("GET", "/admin/templates"): Call(ADMINS, page=True),
        ("GET", "/admin/notification-channels"): Call(ADMINS, page=True),
        ("POST", "/admin/notification-channels"): Call(
            NETWORK_ADMINS,
            body=lambda v: {
                "facility": SENDER,
                "kind": "email",
                "target": f"mx{next(_PATIENTS)}@example.org",
            },
            page=True,
        ),
        ("PATCH", "/admin/notification-channels/{id}"): Call(
            NETWORK_ADMINS,
            "/admin/notification-channels/{channel}",
            body=_json({"label": "门诊"}),
            prepare=a_channel,
            page=True,
        ),
    }
    return calls


# --- the router's routes -----------------------------------------------------------------------

#: The viewer's own files (OHIF's dist, and our static folder): public, served alike to all.
ASSET = "<a file of the viewer or the pages>"


def route_key(route: web.AbstractRoute) -> tuple[str, str]:
    """The matrix key of a route: its method and path pattern (a file: ``ASSET``)."""
    resource = route.resource
    assert resource is not None
    if isinstance(resource, web.StaticResource) or getattr(
        route.handler, "__qualname__", ""
    ).startswith("_file_handler."):
        return ("GET", ASSET)
    info = resource.get_info()
    path = info.get("path") or info.get("formatter")
    assert path, info
    # a path parameter's own pattern is not part of its name
    return (route.method, re.sub(r"\{(\w+):[^}]*\}", r"{\1}", path))


def _asset_url(route: web.AbstractRoute) -> str:
    resource = route.resource
    assert resource is not None
    if isinstance(resource, web.StaticResource):
        folder = resource.get_info()["directory"]
        first = next(p for p in sorted(folder.rglob("*")) if p.is_file())
        return f"{resource.canonical}/{first.relative_to(folder).as_posix()}"
    return str(resource.get_info()["path"])


# --- calling ---------------------------------------------------------------------------------


def answer_class(response: ClientResponse) -> str:
    status = response.status
    if 200 <= status < 300:
        return "allowed"
    if 300 <= status < 400:
        return (
            "refused" if response.headers.get("Location", "").startswith("/login?") else "allowed"
        )
    if status in (401, 403, 404):
        return "refused"
    return f"unexpected {status}"


async def call(
    world: World, method: str, spec: Call, caller: str, values: Mapping[str, Any]
) -> str:
    api = world.api
    user = CALLERS[caller]
    headers: dict[str, str] = {}
    if user is not None and spec.page:
        session = world.sessions[user]
        if values.get("fresh_session"):
            found = await world.user(user)
            session = await network.create_token(api.pool, found.id)
        headers["Cookie"] = f"telemed_session={session}"
        headers[PAGE_HEADER] = "1"
    elif user is not None:
        headers["Authorization"] = f"Bearer {api.tokens[user]}"
    url = spec.url.format(**values)
    kwargs: dict[str, Any] = {}
    body = spec.body(values) if spec.body else None
    if spec.kind == "form":
        kwargs["data"] = body
    elif spec.kind == "dicom":
        kwargs["data"] = body
        headers["Content-Type"] = "application/dicom"
    elif spec.kind == "multipart":
        from tests.integration.test_ingest import BOUNDARY, multipart

        kwargs["data"] = multipart(values["new_bytes"])
        headers["Content-Type"] = (
            f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'
        )
    elif spec.kind == "ecg":
        form = aiohttp.FormData()
        form.add_field("patient_id", f"MX-E{next(_PATIENTS)}")
        form.add_field("patient_name", "陈^二")
        form.add_field(
            "file", _ecg_file(), filename="e.csv", content_type="application/octet-stream"
        )
        kwargs["data"] = form
    elif body is not None:
        kwargs["json"] = body
    verb = "GET" if method == "*" else method
    response = await api.client.request(verb, url, headers=headers, allow_redirects=False, **kwargs)
    try:
        got = answer_class(response)
        if spec.stream:
            return got
        text = (await response.read()).decode("utf-8", "replace")
        if spec.reveals and got == "allowed" and method == "GET":
            shown = str(values[spec.reveals]) in text
            if shown != (caller in spec.sees):
                return f"allowed, {'showing' if shown else 'not showing'} the {spec.reveals}"
        return got
    finally:
        response.close()


async def run_route(world: World, method: str, spec: Call, callers: frozenset[str]) -> list[str]:
    """Call the route as each caller (the refused first, all on the prepared state; each
    allowed caller on a state of its own); the callers whose answer is not the matrix's."""
    wrong: list[str] = []
    base = dict(world.values)
    prepared = await spec.prepare(world) if spec.prepare else {}
    refused = sorted(callers - spec.allowed)
    for caller in refused:
        got = await call(world, method, spec, caller, {**base, **prepared})
        if got != "refused":
            wrong.append(f"{caller}: {got}, the matrix says refused")
    for n, caller in enumerate(sorted(callers & spec.allowed)):
        if spec.prepare and n > 0:
            prepared = await spec.prepare(world)
        got = await call(world, method, spec, caller, {**base, **prepared})
        if got != "allowed":
            wrong.append(f"{caller}: {got}, the matrix says allowed")
    return wrong


async def test_every_route_answers_each_caller_as_the_matrix_says(api: Api) -> None:
    world = await build_world(api)
    table = matrix()
    routes = list(api.app.router.routes())
    keys = {route_key(r) for r in routes}
    # HEAD is GET's answer without the body; the matrix names GET
    unlisted = sorted(k for k in keys if k not in table and k[0] != "HEAD" and k[1] != ASSET)
    assert unlisted == [], f"routes not in the authorisation matrix: {unlisted}"
    stale = sorted(k for k in table if k not in keys)
    assert stale == [], f"the matrix names routes the application does not have: {stale}"

    wrong: dict[str, list[str]] = {}
    for (method, path), spec in table.items():
        spec = spec if spec.url else dataclasses.replace(spec, url=path)
        got = await run_route(world, method, spec, EVERYONE)
        if got:
            wrong[f"{method} {path}"] = got
    # HEAD of every GET as the anonymous caller and one allowed caller
    heads = {k[1] for k in keys if k[0] == "HEAD"}
    for (method, path), spec in table.items():
        if method != "GET" or spec.stream or path not in heads:
            continue
        spec = spec if spec.url else dataclasses.replace(spec, url=path)
        head_callers = {"anonymous"} | set(sorted(spec.allowed)[:1])
        got = await run_route(world, "HEAD", spec, frozenset(head_callers))
        if got:
            wrong[f"HEAD {path}"] = got
    # the viewer's files: public, and alike for the anonymous and the signed in
    assets = [r for r in routes if route_key(r) == ("GET", ASSET) and r.method == "GET"]
    assert len(assets) > 20
    for route in assets:
        spec = Call(EVERYONE, _asset_url(route))
        got = await run_route(world, "GET", spec, frozenset({"anonymous", "clinic"}))
        if got:
            wrong[f"GET {spec.url}"] = got
    assert wrong == {}, "\n".join(f"{k}: {v}" for k, v in sorted(wrong.items()))
