"""Who may do what inside their scope: a clinic sees only final, delivered reports; only the
reader of an ECG changes its measurements; the shared templates are the network's to edit,
audited; addenda are the author's or a higher tier's; reports go only to configured nodes."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import ClientResponse

from storage import network, reports
from storage.records import FacilitySpec, Role, Specialty, Tier, UserSpec
from teleradiology.services import administration
from tests.e2e.harness import free_port
from tests.factory import make_study
from tests.integration.conftest import Api
from tests.integration.dicomweb_support import route_all, store, workstation_node
from tests.integration.test_ecg_flow import ecg_case
from tests.integration.test_ecg_reading_page import two_ecgs_of_one_patient
from tests.integration.test_reports_home import SEND

_FINDINGS = {"findings": "双肺纹理清晰。", "impression": "胸部正位片未见明显异常。"}
_DRAFT = "右下肺结节待查"


async def _call(api: Api, user: str, method: str, path: str, body: object = None) -> ClientResponse:
    return await api.client.request(method, path, json=body, headers=api.auth(user))


async def _ok(api: Api, user: str, method: str, path: str, body: object = None) -> Any:
    response = await _call(api, user, method, path, body)
    answer = await response.json()
    assert response.status in (200, 201), (path, answer)
    return answer


async def _routed_case(api: Api, patient_id: str) -> int:
    uid = await store(api, "HB-XL-WD", make_study(modality="CR", count=1, patient_id=patient_id))
    await route_all(api)
    case_id: int = await api.pool.fetchval(
        "select c.id from reading_case c join study s on s.id = c.study_id "
        "where s.study_instance_uid = $1",
        uid,
    )
    return case_id


async def _escalated_then_signed_by_the_city(
    api: Api, patient_id: str, draft: dict[str, str]
) -> tuple[int, Any]:
    """A case the county reader escalates with a draft (their preliminary report) and the
    city reader signs final; not delivered yet."""
    case_id = await _routed_case(api, patient_id)
    await _ok(api, "wang.reader", "POST", f"/api/v1/cases/{case_id}/claim")
    escalated = {**draft, "question": "请会诊"}
    await _ok(api, "wang.reader", "POST", f"/api/v1/cases/{case_id}/escalate", escalated)
    await _ok(api, "zhao.city", "POST", f"/api/v1/cases/{case_id}/claim")
    final = await _ok(
        api,
        "zhao.city",
        "POST",
        f"/api/v1/cases/{case_id}/report",
        {**_FINDINGS, "conclusion": "normal"},
    )
    return case_id, final


async def test_a_clinic_sees_only_the_final_reports_delivered_to_it(api: Api) -> None:
    from teleradiology.http.context import OBJECTS
    from teleradiology.services import delivery

    draft = {"findings": _DRAFT, "impression": "待会诊", "conclusion": "critical"}
    case_id, final = await _escalated_then_signed_by_the_city(api, "VIS-1", draft)
    preliminary_id = await api.pool.fetchval(
        "select id from report where case_id = $1 and status = 'preliminary'", case_id
    )

    # signed, not yet delivered: the readers see both reports, the clinic neither
    reader_view = await _ok(api, "zhao.city", "GET", f"/api/v1/cases/{case_id}")
    assert [r["status"] for r in reader_view["reports"]] == ["preliminary", "final"]
    clinic_view = await _ok(api, "xlwd.clinic", "GET", f"/api/v1/cases/{case_id}")
    assert clinic_view["reports"] == []
    # the preliminary step shows in its history, not what it concluded
    steps = {e["kind"]: e["detail"] for e in clinic_view["events"]}
    assert steps["preliminary"] == {}
    assert "discrepancy" not in steps["final"]
    shown = json.dumps(clinic_view, ensure_ascii=False)
    assert "critical" not in shown
    assert _DRAFT not in shown
    for report_id in (preliminary_id, final["id"]):
        for suffix in ("", "/notifications", "/pdf"):
            path = f"/api/v1/reports/{report_id}{suffix}"
            assert (await _call(api, "xlwd.clinic", "GET", path)).status == 404, path
        ack = await _call(api, "xlwd.clinic", "POST", f"/api/v1/reports/{report_id}/acknowledge")
        assert ack.status == 404

    # delivered: the final report is the clinic's, the preliminary never is
    assert await delivery.deliver(api.pool, api.app[OBJECTS], final["id"], send=SEND)
    clinic_view = await _ok(api, "xlwd.clinic", "GET", f"/api/v1/cases/{case_id}")
    assert [(r["id"], r["status"]) for r in clinic_view["reports"]] == [(final["id"], "final")]
    assert (await _call(api, "xlwd.clinic", "GET", f"/api/v1/reports/{final['id']}")).status == 200
    hidden = await _call(api, "xlwd.clinic", "GET", f"/api/v1/reports/{preliminary_id}")
    assert hidden.status == 404
    # the case's page says the same
    page = await api.client.get(
        f"/cases/{case_id}", headers={"Cookie": f"telemed_session={api.tokens['xlwd.clinic']}"}
    )
    assert page.status == 200
    text = await page.text()
    assert _FINDINGS["findings"] in text
    assert _DRAFT not in text


async def test_only_the_reader_of_an_ecg_changes_its_measurements(api: Api) -> None:
    prior, current = await two_ecgs_of_one_patient(api)
    prior_path = f"/api/v1/ecg/{prior['sop_instance_uid']}"
    current_path = f"/api/v1/ecg/{current['sop_instance_uid']}"
    change = {"measurements": {"pr_ms": 171}}
    case = await ecg_case(api, str(current["study_instance_uid"]))

    # a reader of the pool who has not claimed the case sees the ECG, and changes nothing
    assert (await _call(api, "xl.ecg", "GET", current_path)).status == 200
    refused = await _call(api, "xl.ecg", "PATCH", current_path, change)
    assert refused.status == 403
    assert "请先领取病例" in (await refused.json())["detail"]

    await _ok(api, "xl.ecg", "POST", f"/api/v1/cases/{case['id']}/claim")
    edited = await _ok(api, "xl.ecg", "PATCH", current_path, change)
    assert edited["measurements"]["pr_ms"] == 171
    # the patient's prior, which the reader sees beside it, is not theirs to change
    assert (await _call(api, "xl.ecg", "GET", prior_path)).status == 200
    assert (await _call(api, "xl.ecg", "PATCH", prior_path, change)).status == 403
    # nor is it for the county's ECG reader, nor the administrator of the network
    for user in ("li.ecg", "hb.admin"):
        assert (await _call(api, user, "PATCH", current_path, change)).status in (403, 404)
    # the reader who signed it may still correct it after the report
    await _ok(
        api,
        "xl.ecg",
        "POST",
        f"/api/v1/cases/{case['id']}/report",
        {"findings": "窦性心律。", "impression": "正常心电图", "conclusion": "normal"},
    )
    again = await _ok(api, "xl.ecg", "PATCH", current_path, {"measurements": {"pr_ms": 168}})
    assert again["measurements"]["pr_ms"] == 168
    edits = await api.pool.fetchval("select count(*) from ecg_edit")
    assert edits == 2


async def _another_network(api: Api) -> None:
    """A second city network beside the demo's, with its administrator and a reader."""
    city = FacilitySpec(
        code="ZK-CITY", name="周口市中心医院", tier=Tier.CITY, parent=None, ae_titles=()
    )
    people = [
        UserSpec(
            username=name,
            display_name=name,
            role=role,
            facility="ZK-CITY",
            specialties=specialties,
            password_hash=None,
        )
        for name, role, specialties in (
            ("zk.admin", Role.ADMIN, ()),
            ("zk.ecg", Role.READER, (Specialty.ECG,)),
        )
    ]
    await administration.import_network(api.pool, [city], people)
    for person in people:
        found = await network.user_by_username(api.pool, person.username)
        assert found is not None
        api.tokens[person.username] = await network.create_token(api.pool, found.id)


async def _ecg_template(api: Api, user: str) -> dict[str, Any]:
    listed = await _ok(api, user, "GET", "/api/v1/templates?specialty=ecg&modality=ECG")
    normal = [t for t in listed["templates"] if t["name"] == "十二导联心电图 正常"]
    assert len(normal) == 1, listed
    found: dict[str, Any] = normal[0]
    return found


async def test_templates_are_each_networks_own_edited_by_its_administrator_audited(
    api: Api,
) -> None:
    await _another_network(api)
    shared = await _ecg_template(api, "li.ecg")
    path = f"/api/v1/templates/{shared['id']}"
    edit = {"findings": "窦性心律。", "impression": "正常心电图。"}
    # not a reader's, a clinic's, nor a county administrator's to change
    for user in ("li.ecg", "xl.clinic", "hb.admin"):
        assert (await _call(api, user, "PUT", path, edit)).status == 403, user
    audited = "select count(*) from audit where object_type = 'report_template'"
    assert await api.pool.fetchval(audited) == 0

    # the city's administrator changes it for the city's network: a copy its readers read
    saved = await _ok(api, "xy.admin", "PUT", path, edit)
    assert saved["id"] != shared["id"]
    mine = await _ecg_template(api, "li.ecg")
    assert (mine["id"], mine["findings"]) == (saved["id"], edit["findings"])
    # another network's readers still read the shared one; their administrator makes
    # their own copy, which leaves the city's as it is
    assert await _ecg_template(api, "zk.ecg") == shared
    theirs = {"findings": "心律齐。", "impression": "大致正常心电图。"}
    copied = await _ok(api, "zk.admin", "PUT", path, theirs)
    assert (await _ecg_template(api, "zk.ecg"))["findings"] == theirs["findings"]
    assert (await _ecg_template(api, "li.ecg"))["findings"] == edit["findings"]
    # nor does it reach the city's copy
    other = await _call(api, "zk.admin", "PUT", f"/api/v1/templates/{saved['id']}", theirs)
    assert other.status == 404
    kept = await api.pool.fetchval(
        "select findings from report_template where id = $1", shared["id"]
    )
    assert kept == shared["findings"]

    rows = await api.pool.fetch(
        "select a.user_id, a.object_id, a.detail from audit a "
        "where a.object_type = 'report_template' and a.action = 'configure' order by a.seq"
    )
    ids = {u.username: u.id for u in await network.list_users(api.pool)}
    assert [(r["user_id"], r["object_id"]) for r in rows] == [
        (ids["xy.admin"], str(saved["id"])),
        (ids["zk.admin"], str(copied["id"])),
    ]
    first = json.loads(rows[0]["detail"])
    assert (first["network"], first["from_template"]) == ("XY-CITY", shared["id"])
    assert first["before"]["findings"] == shared["findings"]
    assert {k: first["after"][k] for k in edit} == edit
    assert first["after"]["name"] == first["before"]["name"] == shared["name"]
    missing = await _call(api, "xy.admin", "PUT", "/api/v1/templates/999999", edit)
    assert missing.status == 404


async def test_an_addendum_is_the_authors_or_a_higher_tiers(api: Api) -> None:
    draft = {**_FINDINGS, "conclusion": "abnormal"}
    case_id, final = await _escalated_then_signed_by_the_city(api, "ADD-9", draft)
    path = f"/api/v1/reports/{final['id']}/addendum"
    # the county reader follows the escalated case and sees the city's report, a lower tier
    assert (await _call(api, "wang.reader", "GET", f"/api/v1/cases/{case_id}")).status == 200
    lower = await _call(api, "wang.reader", "POST", path, {"text": "补充。"})
    assert lower.status == 403
    assert "上级机构" in (await lower.json())["detail"]
    assert (await _call(api, "xy.admin", "POST", path, {"text": "补充。"})).status == 403
    await _ok(api, "zhao.city", "POST", path, {"text": "补充：心影不大。"})

    # who reads above whom: the city over the county's readers and the township's, in
    # their own line; not a colleague, not another county, not downwards
    ids = {u.username: u.id for u in await network.list_users(api.pool)}
    above = {
        (user, author): await reports.reads_above_author(api.pool, ids[user], ids[author])
        for user, author in [
            ("zhao.city", "wang.reader"),
            ("sun.city.ecg", "xl.ecg"),
            ("li.ecg", "xl.ecg"),
            ("zhou.reader", "wang.reader"),
            ("gs.reader", "xl.ecg"),
            ("wang.reader", "zhao.city"),
            ("zhao.city", "zhao.city"),
        ]
    }
    assert above == {
        ("zhao.city", "wang.reader"): True,
        ("sun.city.ecg", "xl.ecg"): True,
        ("li.ecg", "xl.ecg"): True,
        ("zhou.reader", "wang.reader"): False,
        ("gs.reader", "xl.ecg"): False,
        ("wang.reader", "zhao.city"): False,
        ("zhao.city", "zhao.city"): False,
    }


async def test_reports_go_back_only_to_a_configured_node_of_the_facility(api: Api) -> None:
    path = "/api/v1/admin/facilities/HB-MJ-HZ/report-destination"
    port = free_port()
    await workstation_node(api, "HB-MJ-HZ", "HBMJHZWS", port)
    await workstation_node(api, "HB-MJ-LW", "HBMJLWWS", free_port())
    before = await api.pool.fetchrow(
        "select d.ae_title, d.host, d.port from report_destination d "
        "join facility f on f.id = d.facility_id where f.code = 'HB-MJ-HZ'"
    )
    refusals = [
        # an address from the request body is never taken
        {"ae_title": "HBMJHZWS", "host": "203.0.113.9", "port": 104},
        # an AE title no one configured, and another facility's node
        {"ae_title": "ROGUE"},
        {"ae_title": "HBMJLWWS"},
    ]
    for body in refusals:
        response = await _call(api, "hb.admin", "PUT", path, body)
        assert response.status == 400, body
        assert response.content_type == "application/problem+json"
    # a clinic does not choose it
    assert (await _call(api, "mjhz.clinic", "PUT", path, {"ae_title": "HBMJHZWS"})).status == 403
    after = await api.pool.fetchrow(
        "select d.ae_title, d.host, d.port from report_destination d "
        "join facility f on f.id = d.facility_id where f.code = 'HB-MJ-HZ'"
    )
    assert after == before

    saved = await _ok(api, "hb.admin", "PUT", path, {"ae_title": "HBMJHZWS"})
    assert saved["report_destination"] == {
        "ae_title": "HBMJHZWS",
        "host": "127.0.0.1",
        "port": port,
    }
    stored = await api.pool.fetchrow(
        "select d.ae_title, d.host, d.port from report_destination d "
        "join facility f on f.id = d.facility_id where f.code = 'HB-MJ-HZ'"
    )
    assert stored is not None
    assert tuple(stored) == ("HBMJHZWS", "127.0.0.1", port)
    audited = await api.pool.fetchval(
        "select detail from audit where object_type = 'facility_routing' "
        "and object_id = 'HB-MJ-HZ' order by seq desc limit 1"
    )
    assert json.loads(audited)["report_destination"]["port"] == port
