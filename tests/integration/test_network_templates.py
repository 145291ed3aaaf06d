"""The network's report templates as its administrator keeps them (add, change, set aside,
take back; audited with before and after), as its readers are offered them, and a
notification channel's test message to a real receiver; another network's administrator
sees and changes none of it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from storage import network
from teleradiology.services import administration
from tests.e2e.harness import free_port
from tests.integration.conftest import Api
from tests.integration.test_authz_matrix import _other_network as other_network

ADMIN = "/api/v1/admin/templates"
NEW = {
    "specialty": "radiology",
    "modality": "DX",
    "name": "胸部正位片 肺炎",
    "findings": "右下肺野见斑片状模糊影。",
    "impression": "右下肺炎，建议抗感染治疗后复查。",
}


@pytest.fixture(autouse=True)
async def _other_network(api: Api) -> None:
    facilities, users = other_network()
    await administration.import_network(api.pool, facilities, users)
    for name in ("zk.admin", "zk.city"):
        found = await network.user_by_username(api.pool, name)
        assert found is not None
        api.tokens[name] = await network.create_token(api.pool, found.id)


async def _call(api: Api, user: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    response = await api.client.request(method, path, json=body, headers=api.auth(user))
    return response.status, await response.json()


async def _reader_sees(api: Api, user: str = "wang.reader") -> dict[str, dict[str, Any]]:
    status, body = await _call(api, user, "GET", "/api/v1/templates?specialty=radiology")
    assert status == 200, body
    return {t["name"]: t for t in body["templates"]}


async def _reader_sees_all(api: Api, user: str) -> list[dict[str, Any]]:
    status, body = await _call(api, user, "GET", "/api/v1/templates")
    assert status == 200, body
    found: list[dict[str, Any]] = body["templates"]
    return found


async def test_the_network_adds_changes_and_sets_aside_its_templates(api: Api) -> None:
    # the county administrator sees the network's templates but does not change them
    status, listed = await _call(api, "hb.admin", "GET", ADMIN)
    assert status == 200, listed
    assert listed["may_change"] is False
    assert listed["templates"]
    assert all(not t["own"] and t["active"] for t in listed["templates"])
    assert (await _call(api, "hb.admin", "POST", ADMIN, NEW))[0] == 403

    # the city's administrator (the network's top) adds one; the county's readers get it
    status, made = await _call(api, "xy.admin", "POST", ADMIN, NEW)
    assert status == 201, made
    assert (made["own"], made["active"], made["modality"]) == (True, True, "DX")
    assert NEW["name"] in await _reader_sees(api)
    assert (await _call(api, "xy.admin", "POST", ADMIN, NEW))[0] == 409
    # another network neither sees it nor changes it
    assert NEW["name"] not in {
        t["name"] for t in (await _call(api, "zk.admin", "GET", ADMIN))[1]["templates"]
    }
    assert NEW["name"] not in await _reader_sees(api, "zk.city")
    one = f"{ADMIN}/{made['id']}"
    assert (await _call(api, "zk.admin", "PATCH", one, {"active": False}))[0] == 404
    assert (await _call(api, "xy.admin", "PATCH", one, {"modality": "dx"}))[0] == 400

    # changed, then set aside: no longer offered to readers, still listed for the network
    status, changed = await _call(
        api, "xy.admin", "PATCH", one, {"impression": "右下肺炎。", "name": "胸片 肺炎"}
    )
    assert status == 200, changed
    assert (changed["name"], changed["impression"]) == ("胸片 肺炎", "右下肺炎。")
    status, aside = await _call(api, "xy.admin", "PATCH", one, {"active": False})
    assert (status, aside["active"]) == (200, False)
    assert "胸片 肺炎" not in await _reader_sees(api)
    listed = (await _call(api, "hb.admin", "GET", ADMIN))[1]["templates"]
    assert [t["active"] for t in listed if t["id"] == made["id"]] == [False]
    await _call(api, "xy.admin", "PATCH", one, {"active": True})
    assert "胸片 肺炎" in await _reader_sees(api)

    rows = await api.pool.fetch(
        "select a.detail, u.username from audit a join app_user u on u.id = a.user_id "
        "where a.object_type = 'report_template' and a.object_id = $1 order by a.seq",
        str(made["id"]),
    )
    assert [r["username"] for r in rows] == ["xy.admin"] * 4
    details = [json.loads(r["detail"]) for r in rows]
    assert details[0]["before"] is None
    assert details[0]["after"]["name"] == NEW["name"]
    assert (details[1]["before"]["name"], details[1]["after"]["name"]) == (NEW["name"], "胸片 肺炎")
    assert (details[2]["before"]["active"], details[2]["after"]["active"]) == (True, False)


async def test_a_shared_template_set_aside_is_the_networks_alone(api: Api) -> None:
    shared = next(iter((await _reader_sees(api)).values()))
    one = f"{ADMIN}/{shared['id']}"
    # the network's text first (the report form's own edit), then set aside: the text kept
    edit = {"findings": "本网络的所见。", "impression": "本网络的印象。"}
    assert (await _call(api, "xy.admin", "PUT", f"/api/v1/templates/{shared['id']}", edit))[
        0
    ] == 200
    status, aside = await _call(api, "xy.admin", "PATCH", one, {"active": False})
    assert status == 200, aside
    assert (aside["own"], aside["active"], aside["name"]) == (True, False, shared["name"])
    assert (aside["findings"], aside["impression"]) == (edit["findings"], edit["impression"])
    seen = {t["id"] for t in (await _reader_sees_all(api, "wang.reader"))}
    assert shared["id"] not in seen
    assert aside["id"] not in seen
    # editing its text again leaves it set aside
    again = {"findings": "再改的所见。", "impression": "再改的印象。"}
    assert (await _call(api, "xy.admin", "PUT", f"/api/v1/templates/{shared['id']}", again))[
        0
    ] == 200
    listed = (await _call(api, "xy.admin", "GET", ADMIN))[1]["templates"]
    (copy,) = [t for t in listed if t["id"] == aside["id"]]
    assert (copy["active"], copy["findings"]) == (False, again["findings"])
    # another network still reads the shared template, as shipped
    theirs = {t["id"]: t for t in await _reader_sees_all(api, "zk.city")}
    assert theirs[shared["id"]]["findings"] == shared["findings"]
    # the copy stands in the shared one's place: it keeps its name
    renamed = {"name": "另一个名字"}
    assert (await _call(api, "xy.admin", "PATCH", one, renamed))[0] == 400
    assert (await _call(api, "xy.admin", "PATCH", f"{ADMIN}/{aside['id']}", renamed))[0] == 400


async def test_a_channel_test_message_reaches_its_receiver(
    api: Api, webhook_receiver: tuple[str, list[Any]]
) -> None:
    url, taken = webhook_receiver
    status, channel = await _call(
        api,
        "hb.admin",
        "POST",
        "/api/v1/admin/notification-channels",
        {"facility": "HB-XL-WD", "kind": "webhook", "target": url, "active": False},
    )
    assert status == 201, channel
    trial = f"/api/v1/admin/notification-channels/{channel['id']}/test"
    assert (await _call(api, "zk.admin", "POST", trial))[0] == 404
    assert taken == []
    status, answer = await _call(api, "hb.admin", "POST", trial)
    assert status == 200, answer
    assert (answer["ok"], answer["code"]) == (True, "200")
    (body,) = taken
    assert body["event"] == "test"
    assert "HB-XL-WD" in body["text"]
    # a receiver that is gone: the answer says so
    closed = f"http://127.0.0.1:{free_port()}/hook"
    await _call(
        api,
        "hb.admin",
        "PATCH",
        f"/api/v1/admin/notification-channels/{channel['id']}",
        {"target": closed},
    )
    status, answer = await _call(api, "hb.admin", "POST", trial)
    assert (status, answer["ok"], answer["code"]) == (200, False, "error")
    audited = await api.pool.fetch(
        "select detail from audit where object_type = 'notification_channel' "
        "and object_id = $1 order by seq",
        str(channel["id"]),
    )
    details = [json.loads(r["detail"]) for r in audited]
    assert [(d.get("trial"), d.get("ok")) for d in details if d.get("trial")] == [
        (True, True),
        (True, False),
    ]
    changed = next(d for d in details if "changed" in d)
    assert changed["before"]["target"] != changed["target"]
