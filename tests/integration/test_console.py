"""The administrator's console over the API, on real PostgreSQL with the DICOM listener: a
village added under a township with its title bound to 127.0.0.1, moved, retiered within the
tier order, deactivated (its title refused on DICOM, its users out); users changed; DICOM
nodes added, changed and removed; every change audited with the values before and after;
another network's administrator sees and changes none of it. And the network written back
by `telemed network export` imports into an empty database as the same network."""

from __future__ import annotations

import asyncio
import io
import json
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import asyncpg
import pydicom
from pynetdicom import AE, StoragePresentationContexts

from storage import network
from storage.records import FacilitySpec, Role, Tier, UserSpec
from teleradiology.core.network_file import parse_network
from teleradiology.roles import DICOM
from teleradiology.services import administration, console
from tests.conftest import TEMPLATE, _with_database
from tests.factory import make_study
from tests.integration.conftest import Api
from tests.integration.test_network_accounts import _telemed

VILLAGE = {
    "code": "HB-XL-NEW",
    "name": "淮滨县新里镇新村卫生室",
    "tier": "village",
    "parent": "HB-XL",
    "workstations": [{"ae_title": "HBXLNEW01", "host": "127.0.0.1"}],
}
FACILITIES = "/api/v1/admin/facilities"
NODES = "/api/v1/admin/dicom-nodes"


async def _call(api: Api, user: str, method: str, path: str, body: object = None) -> Any:
    response = await api.client.request(method, path, json=body, headers=api.auth(user))
    return response.status, await response.json()


async def _ok(api: Api, user: str, method: str, path: str, body: object = None) -> Any:
    status, answer = await _call(api, user, method, path, body)
    assert status in (200, 201), (method, path, answer)
    return answer


async def other_network(api: Api) -> None:
    """A second network (周口), with its administrator holding a token as ``zk.admin``."""
    await administration.import_network(
        api.pool,
        [
            FacilitySpec(
                code="ZK-CITY", name="周口市中心医院", tier=Tier.CITY, parent=None, ae_titles=()
            )
        ],
        [
            UserSpec(
                username="zk.admin",
                display_name="周口管理员",
                role=Role.ADMIN,
                facility="ZK-CITY",
                specialties=(),
                password_hash=None,
            )
        ],
    )
    found = await network.user_by_username(api.pool, "zk.admin")
    assert found is not None
    api.tokens["zk.admin"] = await network.create_token(api.pool, found.id)


def _send(port: int, calling_ae: str, datasets: Sequence[bytes]) -> list[int] | None:
    """C-STORE the data sets as ``calling_ae``: their statuses, or None when refused."""
    ae = AE(ae_title=calling_ae)
    ae.acse_timeout = ae.network_timeout = 10
    ae.requested_contexts = StoragePresentationContexts[:100]
    assoc = ae.associate("127.0.0.1", port, ae_title="TELEMED")
    if not assoc.is_established:
        return None
    statuses = [int(assoc.send_c_store(pydicom.dcmread(io.BytesIO(b))).Status) for b in datasets]
    assoc.release()
    return statuses


async def store_as(api: Api, calling_ae: str) -> list[int] | None:
    await api.app[DICOM].refresh_callers()  # as the listener does by itself every 5 s
    return await asyncio.to_thread(_send, api.app[DICOM].port, calling_ae, make_study(count=1))


async def _audited(api: Api, object_type: str, object_id: str) -> list[dict[str, Any]]:
    rows = await api.pool.fetch(
        "select detail from audit where action = 'configure' and object_type = $1 "
        "and object_id = $2 order by seq",
        object_type,
        object_id,
    )
    return [json.loads(r["detail"]) for r in rows]


async def test_a_village_added_under_a_township_sends_until_it_is_deactivated(api: Api) -> None:
    created = await _ok(api, "hb.admin", "POST", FACILITIES, VILLAGE)
    assert created["parent"] == "HB-XL"
    assert created["workstations"] == [
        {"ae_title": "HBXLNEW01", "host": "127.0.0.1", "certificate_sha256": None}
    ]
    assert created["report_destination_href"].endswith("/HB-XL-NEW/report-destination")
    listed = await _ok(api, "hb.admin", "GET", FACILITIES)
    assert "HB-XL-NEW" in [f["code"] for f in listed["facilities"]]

    assert await store_as(api, "HBXLNEW01") == [0]

    changed = await _ok(api, "hb.admin", "PATCH", f"{FACILITIES}/HB-XL-NEW", {"active": False})
    assert changed["active"] is False
    assert await store_as(api, "HBXLNEW01") is None
    again = await _ok(api, "hb.admin", "PATCH", f"{FACILITIES}/HB-XL-NEW", {"active": True})
    assert again["active"] is True
    assert await store_as(api, "HBXLNEW01") == [0]

    (first, second, third) = await _audited(api, "facility", "HB-XL-NEW")
    assert first["before"] is None
    assert first["after"]["workstations"] == [
        {"ae_title": "HBXLNEW01", "host": "127.0.0.1", "cert_sha256": None}
    ]
    assert (second["before"]["active"], second["after"]["active"]) == (True, False)
    assert (third["before"]["active"], third["after"]["active"]) == (False, True)


async def test_a_facility_moves_only_where_the_tier_order_holds_and_never_below_itself(
    api: Api,
) -> None:
    await _ok(api, "hb.admin", "POST", FACILITIES, VILLAGE)
    moved = await _ok(api, "hb.admin", "PATCH", f"{FACILITIES}/HB-XL-NEW", {"parent": "HB-MJ"})
    assert moved["parent"] == "HB-MJ"
    # straight under the county is allowed for a village
    await _ok(api, "hb.admin", "PATCH", f"{FACILITIES}/HB-XL-NEW", {"parent": "HB-COUNTY"})
    refusals = [
        # a township under one of its own villages: below itself
        ("HB-XL", {"parent": "HB-XL-WD"}, "在它之下"),
        ("HB-XL", {"parent": "HB-XL"}, "那就是它自己"),
        # a township under another township
        ("HB-XL", {"parent": "HB-MJ"}, "不能位于 HB-MJ"),
        # a township with villages under it cannot become a village
        ("HB-XL", {"tier": "village"}, "位于其下"),
        # a new village under a village
        ("HB-XL-NEW", {"parent": "HB-XL-WD"}, "不能位于"),
    ]
    for code, body, said in refusals:
        status, answer = await _call(api, "hb.admin", "PATCH", f"{FACILITIES}/{code}", body)
        assert status == 400, (code, body, answer)
        assert said in answer["detail"], answer
    status, answer = await _call(api, "hb.admin", "POST", FACILITIES, {**VILLAGE, "code": "X1"})
    assert status == 409  # the title is the new village's already
    assert "HB-XL-NEW" in answer["detail"]
    # the administrator's own facility is moved and deactivated by the one above
    status, _ = await _call(api, "hb.admin", "PATCH", f"{FACILITIES}/HB-COUNTY", {"active": False})
    assert status == 403
    renamed = await _ok(api, "hb.admin", "PATCH", f"{FACILITIES}/HB-COUNTY", {"name": "淮滨县医院"})
    assert renamed["name"] == "淮滨县医院"


async def test_the_users_of_a_deactivated_facility_cannot_sign_in(api: Api) -> None:
    signin = {"username": "xlwd.clinic", "password": "demo-xlwd.clinic"}
    assert (await api.client.post("/api/v1/login", json=signin)).status == 200
    assert (await api.client.get("/api/v1/me", headers=api.auth("xlwd.clinic"))).status == 200
    await _ok(api, "hb.admin", "PATCH", f"{FACILITIES}/HB-XL-WD", {"active": False})
    assert (await api.client.post("/api/v1/login", json=signin)).status == 401
    assert (await api.client.get("/api/v1/me", headers=api.auth("xlwd.clinic"))).status == 401
    await _ok(api, "hb.admin", "PATCH", f"{FACILITIES}/HB-XL-WD", {"active": True})
    assert (await api.client.get("/api/v1/me", headers=api.auth("xlwd.clinic"))).status == 200


async def test_an_administrator_changes_a_users_role_facility_and_specialties(api: Api) -> None:
    path = "/api/v1/admin/users/zhou.reader"
    changed = await _ok(api, "hb.admin", "PATCH", path, {"specialties": ["ecg"]})
    assert changed["specialties"] == ["ecg"]
    # a clinic has no specialties: the reader's go with the role
    moved = await _ok(api, "hb.admin", "PATCH", path, {"role": "clinic", "facility": "HB-XL"})
    assert (moved["role"], moved["facility"], moved["specialties"]) == ("clinic", "HB-XL", [])
    # the same user's token works on as the clinic
    me = await api.client.get("/api/v1/me", headers=api.auth("zhou.reader"))
    assert (await me.json())["role"] == "clinic"
    status, answer = await _call(api, "hb.admin", "PATCH", path, {"role": "reader"})
    assert status == 400
    assert "阅片医生至少须有一个专业" in answer["detail"]  # the administrator reads Chinese
    status, _ = await _call(api, "hb.admin", "PATCH", path, {"facility": "GS-COUNTY"})
    assert status == 404  # another county is not the administrator's network
    status, _ = await _call(api, "hb.admin", "PATCH", path, {})
    assert status == 400
    (*_, last) = await _audited(api, "user", "zhou.reader")
    assert last["before"]["role"] == "reader"
    assert last["after"] == last["before"] | {
        "role": "clinic",
        "facility": "HB-XL",
        "specialties": [],
    }


async def test_dicom_nodes_are_added_changed_and_removed_from_the_console(api: Api) -> None:
    viewer = {"ae_title": "WANGVIEW", "username": "wang.reader", "host": "127.0.0.1", "port": 11113}
    created = await _ok(api, "hb.admin", "POST", NODES, viewer)
    assert (created["facility"], created["username"], created["tls"]) == (
        "HB-COUNTY",
        "wang.reader",
        False,
    )
    # a node of the village's workstation takes its reports back; the destination follows it
    node = {
        "ae_title": "WDPRINT",
        "facility": "HB-XL-WD",
        "host": "127.0.0.1",
        "port": 11114,
        "move_destination": True,
    }
    printer = await _ok(api, "hb.admin", "POST", NODES, node)
    await _ok(
        api,
        "hb.admin",
        "PUT",
        f"{FACILITIES}/HB-XL-WD/report-destination",
        {"ae_title": "WDPRINT"},
    )
    await _ok(
        api, "hb.admin", "PATCH", f"{NODES}/{printer['id']}", {**node, "port": 11115, "tls": True}
    )
    facility = [
        f
        for f in (await _ok(api, "hb.admin", "GET", FACILITIES))["facilities"]
        if f["code"] == "HB-XL-WD"
    ]
    assert facility[0]["report_destination"] == {
        "ae_title": "WDPRINT",
        "host": "127.0.0.1",
        "port": 11115,
    }
    status, answer = await _call(api, "hb.admin", "DELETE", f"{NODES}/{printer['id']}")
    assert status == 409
    assert "HB-XL-WD" in answer["detail"]
    bad = [
        {**viewer, "ae_title": "WANGVIEW2", "facility": "HB-XL"},  # bound to two
        {**node, "ae_title": "NOPORT", "port": None},  # a move destination needs its port
        {**viewer, "ae_title": "BADCERT", "certificate_sha256": "00"},
    ]
    for body in bad:
        status, answer = await _call(api, "hb.admin", "POST", NODES, body)
        assert status == 400, (body, answer)
    status, _ = await _call(api, "hb.admin", "POST", NODES, viewer)
    assert status == 409
    deleted = await _ok(api, "hb.admin", "DELETE", f"{NODES}/{created['id']}")
    assert deleted == {"id": created["id"], "deleted": True}
    listed = await _ok(api, "hb.admin", "GET", NODES)
    assert [n["ae_title"] for n in listed["dicom_nodes"]] == ["WDPRINT"]
    audited = await _audited(api, "dicom_node", str(printer["id"]))
    assert audited[1]["before"]["port"] == 11114
    assert audited[1]["after"]["port"] == 11115
    assert (await _audited(api, "dicom_node", str(created["id"])))[-1]["after"] is None


async def test_another_networks_administrator_sees_and_changes_none_of_it(api: Api) -> None:
    await other_network(api)
    await _ok(api, "hb.admin", "POST", FACILITIES, VILLAGE)
    node = await _ok(
        api, "hb.admin", "POST", NODES, {"ae_title": "WANGVIEW", "username": "wang.reader"}
    )
    theirs = await _ok(api, "zk.admin", "GET", FACILITIES)
    assert [f["code"] for f in theirs["facilities"]] == ["ZK-CITY"]
    assert (await _ok(api, "zk.admin", "GET", NODES))["dicom_nodes"] == []
    attempts = [
        ("PATCH", f"{FACILITIES}/HB-XL-NEW", {"active": False}),
        ("PATCH", f"{FACILITIES}/HB-XL-NEW", {"parent": "ZK-CITY"}),
        ("POST", FACILITIES, {**VILLAGE, "code": "ZK-X", "workstations": []}),
        ("PATCH", f"{NODES}/{node['id']}", {"ae_title": "WANGVIEW", "facility": "ZK-CITY"}),
        ("DELETE", f"{NODES}/{node['id']}", None),
        ("POST", NODES, {"ae_title": "ZKVIEW", "username": "wang.reader"}),
        ("PATCH", "/api/v1/admin/users/wang.reader", {"role": "clinic", "specialties": []}),
    ]
    for method, path, body in attempts:
        status, _ = await _call(api, "zk.admin", method, path, body)
        assert status == 404, (method, path)
    # and the county's administrator does not reach into the city's other county
    status, _ = await _call(api, "hb.admin", "PATCH", f"{FACILITIES}/GS-COUNTY", {"name": "x"})
    assert status == 404
    after = await _ok(api, "hb.admin", "GET", FACILITIES)
    assert {f["code"]: f["active"] for f in after["facilities"]}["HB-XL-NEW"] is True
    assert len((await _ok(api, "hb.admin", "GET", NODES))["dicom_nodes"]) == 1


async def test_the_exported_network_imports_into_an_empty_database_as_the_same_network(
    api: Api, database_url: str, pg_admin_dsn: str, tmp_path: Path
) -> None:
    await _ok(api, "hb.admin", "POST", FACILITIES, VILLAGE)
    await _ok(api, "hb.admin", "PATCH", f"{FACILITIES}/HB-XL-ZZ", {"active": False})
    await _ok(api, "hb.admin", "PATCH", "/api/v1/admin/users/xlzz.clinic", {"active": False})
    data_dir = tmp_path / "var"
    first, again = tmp_path / "network.toml", tmp_path / "again.toml"
    status, said = await asyncio.to_thread(
        _telemed, database_url, data_dir, "network", "export", str(first)
    )
    assert status == 0, said
    exported = first.read_text("utf-8")
    assert exported == await console.export_network(api.pool)
    assert "password =" not in exported
    assert "password_hash" not in exported
    assert 'host = "127.0.0.1"' in exported
    assert exported.count("active = false") == 2

    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(pg_admin_dsn)
    await admin.execute(f"create database {name} template {TEMPLATE}")
    try:
        empty = _with_database(pg_admin_dsn, name)
        status, said = await asyncio.to_thread(
            _telemed, empty, data_dir, "network", "import", str(first)
        )
        assert status == 0, said
        # every user gets a one-time link: no password travelled
        linked = {line.split()[0] for line in said.splitlines() if "/password#" in line}
        assert linked == {u.username for u in parse_network(exported)[1]}
        status, said = await asyncio.to_thread(
            _telemed, empty, data_dir, "network", "export", str(again)
        )
        assert status == 0, said
        assert again.read_text("utf-8") == exported
    finally:
        await admin.execute(f"drop database if exists {name} with (force)")
        await admin.close()
