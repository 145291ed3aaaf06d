"""What the audit records: who (name, role, facility), from which address, what was
disclosed (the patients and studies a QIDO-RS search or a C-FIND answered), how it ended;
sign-ins and refusals; and a read whose record cannot be written is refused (503) without
disclosing anything."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from typing import Any

import pytest
from pydicom.dataset import Dataset
from pynetdicom import AE
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    StudyRootQueryRetrieveInformationModelFind,
)

from storage.network import user_by_username
from teleradiology.core.statuses import QueryStatus
from teleradiology.roles import DICOM
from tests.factory import make_study
from tests.integration.conftest import Api
from tests.integration.dicomweb_support import route_all, store
from tests.integration.test_dimse_qr import VIEWER_AE, add_viewer, free_port, run
from tests.integration.test_ecg_reading_page import session

READER = "wang.reader"


async def _records(api: Api, action: str) -> list[dict[str, Any]]:
    rows = await api.pool.fetch(
        "select seq, username, role, facility_id, object_type, object_id, patients, studies,"
        " address, result, detail::text as detail from audit where action = $1 order by seq",
        action,
    )
    return [dict(r) | {"detail": json.loads(r["detail"])} for r in rows]


async def _two_patients(api: Api) -> tuple[str, str]:
    first = await store(api, "HB-XL-WD", make_study(count=1, patient_id="WD-7", size=16))
    second = await store(api, "HB-XL-WD", make_study(count=1, patient_id="WD-8", size=16))
    await route_all(api)
    return first, second


async def test_a_qido_search_names_the_patients_and_studies_it_answered(api: Api) -> None:
    first, second = await _two_patients(api)
    reader = await user_by_username(api.pool, READER)
    assert reader is not None
    found = await api.client.get("/dicomweb/studies", headers=api.auth(READER))
    assert found.status == 200
    assert len(await found.json()) == 2
    narrowed = await api.client.get(
        "/dicomweb/studies", params={"PatientID": "WD-8"}, headers=api.auth(READER)
    )
    assert len(await narrowed.json()) == 1
    (everything, one) = await _records(api, "qido")
    assert everything["patients"] == ["HB-XL-WD:WD-7", "HB-XL-WD:WD-8"]
    assert sorted(everything["studies"]) == sorted([first, second])
    assert (everything["username"], everything["role"], everything["facility_id"]) == (
        READER,
        "reader",
        reader.facility_id,
    )
    assert everything["address"] == "127.0.0.1"
    assert everything["result"] == "ok"
    assert (one["patients"], one["studies"]) == (["HB-XL-WD:WD-8"], [second])


@pytest.mark.dcmtk
async def test_a_c_find_names_the_patients_it_answered_and_the_peer(api: Api) -> None:
    first, second = await _two_patients(api)
    await add_viewer(api, port=free_port())
    code, log = await run(
        "findscu", "-S", "-aet", VIEWER_AE, "-aec", "TELEMED", "127.0.0.1",
        str(api.app[DICOM].port), "-k", "QueryRetrieveLevel=STUDY", "-k", "PatientID=WD-7",
        "-k", "StudyInstanceUID",
    )  # fmt: skip
    assert code == 0, log
    (found,) = await _records(api, "c-find")
    assert (found["username"], found["object_id"]) == (READER, VIEWER_AE)
    assert (found["patients"], found["studies"]) == (["HB-XL-WD:WD-7"], [first])
    assert found["address"].startswith("127.0.0.1:")
    assert second not in found["studies"]


async def test_sign_ins_are_recorded_without_the_password(api: Api) -> None:
    for password in ("wrong-password-123", "demo-wang.reader"):
        await api.client.post("/api/v1/login", json={"username": READER, "password": password})
    await api.client.post(
        "/api/v1/login", json={"username": "nobody.here", "password": "secret-xyz"}
    )
    signins = await _records(api, "sign-in")
    assert [(r["username"], r["result"], r["detail"].get("reason")) for r in signins] == [
        (READER, "failed", "wrong password"),
        (READER, "ok", None),
        ("nobody.here", "failed", "unknown user"),
    ]
    assert all(r["address"] == "127.0.0.1" for r in signins)
    dumped = await api.pool.fetchval("select string_agg(audit::text, ' ') from audit")
    assert "wrong-password-123" not in dumped
    assert "secret-xyz" not in dumped


async def test_a_refusal_on_scope_is_recorded(api: Api) -> None:
    first, _ = await _two_patients(api)
    refused = await api.client.get(
        f"/dicomweb/studies/{first}/metadata", headers=api.auth("zhao.city")
    )
    assert refused.status == 404
    (denied,) = await _records(api, "denied")
    assert denied["username"] == "zhao.city"
    assert denied["object_id"] == f"GET /dicomweb/studies/{first}/metadata"
    assert (denied["result"], denied["detail"]["status"]) == ("denied", 404)


async def test_a_read_whose_record_cannot_be_written_is_refused(api: Api) -> None:
    first, _ = await _two_patients(api)
    await api.pool.execute("alter table audit add constraint audit_refused check (false) not valid")
    for path in ("/dicomweb/studies", f"/dicomweb/studies/{first}/metadata", "/api/v1/worklist"):
        refused = await api.client.get(path, headers=api.auth(READER))
        assert refused.status == 503, path
        body = await refused.text()
        assert first not in body
        assert "WD-7" not in body
    await api.pool.execute("alter table audit drop constraint audit_refused")
    # The study opened while the audit was down is not trusted without its record.
    opened = await api.client.get(f"/dicomweb/studies/{first}/metadata", headers=api.auth(READER))
    assert opened.status == 200
    assert [r["object_id"] for r in await _records(api, "metadata")] == [first]


# --- an administrator's search and export -------------------------------------------------


async def _searched(api: Api, admin: str, **params: str) -> list[dict[str, Any]]:
    answer = await api.client.get("/api/v1/admin/audit", params=params, headers=api.auth(admin))
    assert answer.status == 200, await answer.text()
    records: list[dict[str, Any]] = (await answer.json())["records"]
    return records


async def test_administrators_search_the_audit_of_their_own_network(api: Api) -> None:
    await _two_patients(api)
    for user in ("wang.reader", "gs.reader", "zhao.city"):
        found = await api.client.get("/dicomweb/studies", headers=api.auth(user))
        assert found.status == 200
    county = await _searched(api, "hb.admin", action="qido")
    assert [(r["username"], r["facility"]) for r in county] == [("wang.reader", "HB-COUNTY")]
    city = await _searched(api, "xy.admin", action="qido")
    assert [r["username"] for r in city] == ["zhao.city", "gs.reader", "wang.reader"]
    by_patient = await _searched(api, "xy.admin", patient="HB-XL-WD:WD-8")
    # Its arrival (STOW-RS, from the village) and the one search that answered it.
    assert [(r["action"], r["username"]) for r in by_patient] == [
        ("qido", "wang.reader"),
        ("stow", None),
    ]
    assert all("HB-XL-WD:WD-8" in r["patients"] for r in by_patient)
    paged = await _searched(api, "xy.admin", action="qido", limit="2")
    older = await _searched(api, "xy.admin", action="qido", before=str(paged[-1]["seq"]))
    assert [r["username"] for r in paged + older] == [r["username"] for r in city]
    refused = await api.client.get("/api/v1/admin/audit", headers=api.auth(READER))
    assert refused.status == 403
    searches = await _records(api, "audit")
    assert [(r["username"], r["result"]) for r in searches][:5] == [("hb.admin", "ok")] + [
        ("xy.admin", "ok")
    ] * 4


async def test_administrators_export_their_network_as_csv_and_json_lines(api: Api) -> None:
    await _two_patients(api)
    for user in ("wang.reader", "gs.reader"):
        await api.client.get("/dicomweb/studies", headers=api.auth(user))
    lines = await api.client.get(
        "/api/v1/admin/audit/export",
        params={"format": "jsonl", "action": "qido"},
        headers=api.auth("hb.admin"),
    )
    assert lines.status == 200
    assert lines.content_type == "application/jsonl"
    exported = [json.loads(line) for line in (await lines.text()).splitlines()]
    assert [(r["username"], r["patients"]) for r in exported] == [
        ("wang.reader", ["HB-XL-WD:WD-7", "HB-XL-WD:WD-8"])
    ]
    table = await api.client.get(
        "/api/v1/admin/audit/export",
        params={"format": "csv", "action": "qido"},
        headers=api.auth("xy.admin"),
    )
    assert table.status == 200
    assert "attachment" in table.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO((await table.read()).decode("utf-8-sig"))))
    assert [(r["username"], r["patients"]) for r in rows] == [
        ("gs.reader", ""),
        ("wang.reader", "HB-XL-WD:WD-7 HB-XL-WD:WD-8"),
    ]
    assert [r["object_id"] for r in await _records(api, "audit")] == ["jsonl", "csv"]


async def test_the_audit_page_shows_the_network_and_exports_it(api: Api) -> None:
    await _two_patients(api)
    for user in ("wang.reader", "gs.reader"):
        await api.client.get("/dicomweb/studies", headers=api.auth(user))
    cookie = await session(api, "hb.admin")
    shown = await api.client.get(
        "/admin/audit",
        params={"action": "qido", "patient": "", "since": "2020-01-01T00:00"},
        headers=cookie,
    )
    assert shown.status == 200
    html = await shown.text()
    assert "wang.reader" in html
    assert "HB-XL-WD:WD-7, HB-XL-WD:WD-8" in html
    assert "gs.reader" not in html
    assert (
        'href="/admin/audit/export?action=qido&amp;since=2020-01-01T00%3A00&amp;format=csv"' in html
    )
    exported = await api.client.get(
        "/admin/audit/export", params={"action": "qido", "format": "csv"}, headers=cookie
    )
    assert exported.status == 200
    rows = list(csv.DictReader(io.StringIO((await exported.read()).decode("utf-8-sig"))))
    assert [r["username"] for r in rows] == ["wang.reader"]
    reader = await api.client.get("/admin/audit", headers=await session(api, READER))
    assert reader.status == 403


def _c_find(port: int) -> list[tuple[int, str | None]]:
    ae = AE(ae_title=VIEWER_AE)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
    assoc = ae.associate("127.0.0.1", port, ae_title="TELEMED")
    assert assoc.is_established
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.PatientID = ""
    query.StudyInstanceUID = ""
    try:
        return [
            (int(status.Status), str(found.PatientID) if found is not None else None)
            for status, found in assoc.send_c_find(
                query, StudyRootQueryRetrieveInformationModelFind
            )
        ]
    finally:
        assoc.release()


async def test_a_c_find_whose_record_cannot_be_written_answers_nothing(api: Api) -> None:
    await _two_patients(api)
    await add_viewer(api, port=free_port())
    await api.pool.execute("alter table audit add constraint audit_refused check (false) not valid")
    answered = await asyncio.to_thread(_c_find, api.app[DICOM].port)
    assert answered == [(QueryStatus.UNABLE_TO_PROCESS, None)]
