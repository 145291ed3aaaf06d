"""The console's patient identity over the API and its pages, on real PostgreSQL: candidate
duplicates across facilities (by folded name, sex and birth date; by a national ID stated
for a record that is another person's), dismissing a pair, the merge screen, and the
identity conflicts at ingest with their resolution. Another network's administrator sees
none of it; every read is audited, every change with its values before and after."""

from __future__ import annotations

import json
import re
from typing import Any

from pydicom.uid import generate_uid

from storage import identity
from storage.queries import q
from tests.ecg_file import make_ecg
from tests.factory import make_study
from tests.integration.conftest import Api
from tests.integration.dicomweb_support import route_all, store
from tests.integration.test_console import other_network
from tests.integration.test_ecg_reading_page import session

PAGE = {"X-Telemed-Page": "1"}
DUPLICATES = "/api/v1/admin/patients/duplicates"
CONFLICTS = "/api/v1/admin/identity-conflicts"
#: No candidates, and no page after.
NONE: dict[str, object] = {"candidates": [], "next_before": None}


async def other_network_admin(api: Api) -> str:
    """An administrator of a network beside the demo's (周口): their token's user name."""
    await other_network(api)
    return "zk.admin"


def cookie_of(api: Api, username: str) -> dict[str, str]:
    """A session cookie header for a user with a token (a token is also a session)."""
    api.client.session.cookie_jar.clear()
    return {"Cookie": f"telemed_session={api.tokens[username]}"}


async def patient_of(api: Api, uid: str) -> int:
    ref: int = await api.pool.fetchval(
        "select patient_ref from study where study_instance_uid = $1", uid
    )
    return ref


async def get(api: Api, path: str, user: str) -> tuple[int, Any]:
    got = await api.client.get(path, headers=api.auth(user))
    return got.status, await got.json()


def pairs_of(answer: dict[str, Any]) -> list[tuple[int, int, list[str]]]:
    return [(c["a"]["id"], c["b"]["id"], c["reasons"]) for c in answer["candidates"]]


async def test_same_name_sex_and_birth_date_at_two_facilities_is_a_candidate_until_merged(
    api: Api,
) -> None:
    # the same person at two villages, their name written in two cases (folded alike)
    first = await store(
        api, "HB-XL-WD", make_study(count=1, patient_id="W-1", patient_name="Zhāng^Sān")
    )
    second = await store(
        api, "HB-MJ-LW", make_study(count=1, patient_id="L-7", patient_name="ZHANG^SAN")
    )
    # the same name at one facility under another ID, and another name: no candidates
    await store(api, "HB-XL-WD", make_study(count=1, patient_id="W-2", patient_name="ZHANG^SAN"))
    await store(api, "HB-MJ-LW", make_study(count=1, patient_id="L-8", patient_name="李^四"))
    a, b = await patient_of(api, first), await patient_of(api, second)
    same_place = await api.pool.fetchval("select id from patient where patient_id = 'W-2'")
    zk = await other_network_admin(api)

    status, answer = await get(api, DUPLICATES, "hb.admin")
    assert status == 200, answer
    assert pairs_of(answer) == [(b, same_place, ["demographics"]), (a, b, ["demographics"])]
    assert answer["next_before"] is None
    assert answer["candidates"][1]["a"]["facility"] == "HB-XL-WD"
    assert answer["candidates"][1]["b"]["patient_id"] == "L-7"
    # the city administrator above sees the county's pairs; another network's none; a page
    first_page = (await get(api, f"{DUPLICATES}?limit=1", "xy.admin"))[1]
    assert pairs_of(first_page) == [(b, same_place, ["demographics"])]
    assert first_page["next_before"] == f"{same_place},{b}"
    after = f"{DUPLICATES}?limit=1&before={first_page['next_before']}"
    assert pairs_of((await get(api, after, "xy.admin"))[1]) == [(a, b, ["demographics"])]
    assert (await get(api, f"{DUPLICATES}?before=1;2", "hb.admin"))[0] == 400
    assert await get(api, DUPLICATES, zk) == (200, NONE)
    assert (await get(api, DUPLICATES, "xlwd.clinic"))[0] == 403
    assert (await get(api, f"{DUPLICATES}?limit=0", "hb.admin"))[0] == 400
    # the read is audited, naming the records shown
    named = await api.pool.fetchval(
        "select patients from audit where object_type = 'patient' "
        "and object_id = 'duplicates' order by seq limit 1"
    )
    assert set(named) == {"HB-XL-WD:W-1", "HB-MJ-LW:L-7", "HB-XL-WD:W-2"}

    merged = await api.client.post(
        "/api/v1/patients/merge", json={"patients": [a, b]}, headers=api.auth("hb.admin")
    )
    assert merged.status == 200, await merged.text()
    assert pairs_of((await get(api, DUPLICATES, "hb.admin"))[1]) == [
        (b, same_place, ["demographics"])
    ]
    assert (
        await api.client.post(f"/api/v1/patients/{b}/unmerge", headers=api.auth("hb.admin"))
    ).status == 200
    assert (a, b, ["demographics"]) in pairs_of((await get(api, DUPLICATES, "hb.admin"))[1])


async def test_a_national_id_stated_for_a_record_of_another_person_makes_a_candidate(
    api: Api,
) -> None:
    uids = [
        await store(api, code, make_study(count=1, patient_id=pid, patient_name=name))
        for code, pid, name in (
            ("HB-XL-WD", "N-1", "赵^一"),
            ("HB-MJ-LW", "N-2", "钱^二"),
            ("HB-MJ-LW", "N-3", "孙^三"),
        )
    ]
    one, two, three = [await patient_of(api, u) for u in uids]
    national_id = "41152719580312001X"
    linked = await api.client.post(
        f"/api/v1/patients/{one}/national-id",
        json={"national_id": national_id},
        headers=api.auth("xlwd.clinic"),
    )
    assert linked.status == 200
    merged = await api.client.post(
        "/api/v1/patients/merge", json={"patients": [two, three]}, headers=api.auth("hb.admin")
    )
    assert merged.status == 200
    assert await get(api, DUPLICATES, "hb.admin") == (200, NONE)
    # the clinic states the same national ID for a record merged with another: refused, kept
    refused = await api.client.post(
        f"/api/v1/patients/{two}/national-id",
        json={"national_id": national_id},
        headers=api.auth("mjlw.clinic"),
    )
    assert refused.status == 409
    _status, answer = await get(api, DUPLICATES, "hb.admin")
    assert pairs_of(answer) == [(one, two, ["national_id"])]
    assert answer["candidates"][0]["b"]["national_id_stated"] is True
    stored = await api.pool.fetch("select national_id_digest from patient_national_id")
    assert all(national_id not in r[0] and "411527" not in r[0] for r in stored)


async def test_a_dismissed_pair_leaves_the_candidates_and_the_change_is_audited(
    api: Api,
) -> None:
    first = await store(api, "HB-XL-WD", make_study(count=1, patient_id="D-1"))
    second = await store(api, "HB-FH-CG", make_study(count=1, patient_id="D-2"))
    a, b = await patient_of(api, first), await patient_of(api, second)
    zk = await other_network_admin(api)
    assert pairs_of((await get(api, DUPLICATES, "hb.admin"))[1]) == [(a, b, ["demographics"])]
    path = f"{DUPLICATES}/dismiss"
    elsewhere = await api.client.post(path, json={"patients": [b, a]}, headers=api.auth(zk))
    assert elsewhere.status == 404
    twice = await api.client.post(path, json={"patients": [a, a]}, headers=api.auth("hb.admin"))
    assert twice.status == 409
    one = await api.client.post(path, json={"patients": [a]}, headers=api.auth("hb.admin"))
    assert one.status == 400
    dismissed = await api.client.post(
        path, json={"patients": [b, a], "note": "同名不同人"}, headers=api.auth("hb.admin")
    )
    assert dismissed.status == 200, await dismissed.text()
    assert await get(api, DUPLICATES, "hb.admin") == (200, NONE)
    again = await api.client.post(path, json={"patients": [a, b]}, headers=api.auth("hb.admin"))
    assert again.status == 200
    screen = await api.client.get(
        f"/admin/patients/merge?a={b}&b={a}", headers=await session(api, "hb.admin")
    )
    text = await screen.text()
    assert 'id="dismissed"' in text
    assert "同名不同人" in text
    assert "dismiss-form" not in text
    records = await api.pool.fetch(
        "select object_id, detail from audit where action = 'configure' "
        "and object_type = 'patient_pair'"
    )
    assert [(r["object_id"], json.loads(r["detail"])) for r in records] == [
        (
            f"{a},{b}",
            {"before": {"dismissed": False}, "after": {"dismissed": True, "note": "同名不同人"}},
        )
    ]


async def test_the_merge_screen_shows_both_records_and_merges_through_the_patient_index(
    api: Api,
) -> None:
    film = await store(api, "HB-XL-WD", make_study(modality="DX", count=1, patient_id="S-1"))
    ct = await store(api, "HB-MJ-LW", make_study(modality="CT", count=2, patient_id="S-9"))
    ecg = await store(api, "HB-MJ-LW", [make_ecg(patient_id="S-9", patient_name="王^小明")])
    await route_all(api)
    a, b = await patient_of(api, film), await patient_of(api, ct)
    assert await patient_of(api, ecg) == b
    zk = await other_network_admin(api)
    cookie = await session(api, "hb.admin")
    screen = await api.client.get(f"/admin/patients/merge?a={a}&b={b}", headers=cookie)
    assert screen.status == 200
    text = await screen.text()
    for shown in ("王 小明", "1958-03-12", "<code>S-1</code>", "<code>S-9</code>", film, ct):
        assert shown in text, shown
    assert "合并为同一人" in text
    assert "疑似原因：姓名、性别、出生日期相同" in text
    assert "拆分此记录" not in text
    # studies / ECGs / reports of each record
    counts = re.findall(r'<dd class="counts">([^<]*)</dd>', text)
    assert counts == ["1 / 0 / 0", "1 / 1 / 0"]
    read = await api.pool.fetchrow(
        "select action, studies, patients from audit where object_type = 'patient' "
        "and object_id = $1",
        f"{a},{b}",
    )
    assert read is not None
    assert read["action"] == "read"
    assert set(read["studies"]) == {film, ct, ecg}
    # the merge button posts to the patient index's own merge
    merged = await api.client.post(
        "/admin/patients/merge", json={"patients": [a, b]}, headers={**cookie, **PAGE}
    )
    assert merged.status == 200, await merged.text()
    text = await (await api.client.get(f"/admin/patients/merge?a={a}&b={b}", headers=cookie)).text()
    assert 'id="one-person"' in text
    assert text.count('class="unmerge"') == 2
    unmerged = await api.client.post(f"/admin/patients/{a}/unmerge", headers={**cookie, **PAGE})
    assert unmerged.status == 200
    # another network's administrator gets a page that shows nothing of the patient
    other = cookie_of(api, zk)
    refused = await api.client.get(f"/admin/patients/merge?a={a}&b={b}", headers=other)
    assert refused.status == 404
    assert "S-1" not in await refused.text()
    assert "王" not in await refused.text()
    listed = await (await api.client.get("/admin/patients/duplicates", headers=other)).text()
    assert "无疑似重复" in listed
    bad = await api.client.get("/admin/patients/merge?a=x", headers=cookie)
    assert bad.status == 400


async def _conflicting_instance(api: Api) -> str:
    """A study of 王 小明, then an instance of it naming another patient."""
    uid = generate_uid()
    await store(api, "HB-XL-WD", make_study(count=1, patient_id="C-1", study_uid=uid))
    await store(
        api,
        "HB-XL-WD",
        make_study(count=1, patient_id="C-1", patient_name="李^小红", study_uid=uid),
    )
    return uid


async def test_identity_conflicts_are_listed_and_resolved_with_a_note(api: Api) -> None:
    uid = await _conflicting_instance(api)
    zk = await other_network_admin(api)
    status, answer = await get(api, CONFLICTS, "hb.admin")
    assert status == 200, answer
    assert answer["total"] == 1
    (conflict,) = answer["conflicts"]
    assert (conflict["facility"], conflict["study_instance_uid"], conflict["attribute"]) == (
        "HB-XL-WD",
        uid,
        "PatientName",
    )
    assert (conflict["stored_value"], conflict["received_value"]) == ("王^小明", "李^小红")
    assert conflict["patient"] == await patient_of(api, uid)
    assert await get(api, CONFLICTS, zk) == (200, {"conflicts": [], "total": 0})
    assert (await get(api, CONFLICTS, "xlwd.clinic"))[0] == 403
    listed = await api.pool.fetchval(
        "select studies from audit where object_type = 'identity_conflict' "
        "and action = 'list' order by seq limit 1"
    )
    assert listed == [uid]

    resolve = f"{CONFLICTS}/{conflict['id']}/resolve"
    assert (await api.client.post(resolve, json={"note": "x"}, headers=api.auth(zk))).status == 404
    empty = await api.client.post(resolve, json={"note": ""}, headers=api.auth("hb.admin"))
    assert empty.status == 400
    done = await api.client.post(
        resolve, json={"note": "已与诊所核对：录入错误"}, headers=api.auth("hb.admin")
    )
    assert done.status == 200, await done.text()
    again = await api.client.post(resolve, json={"note": "x"}, headers=api.auth("hb.admin"))
    assert again.status == 409
    assert await get(api, CONFLICTS, "hb.admin") == (200, {"conflicts": [], "total": 0})
    (kept,) = (await get(api, f"{CONFLICTS}?status=all", "hb.admin"))[1]["conflicts"]
    assert (kept["resolved_by"], kept["resolution_note"]) == ("hb.admin", "已与诊所核对：录入错误")
    change = await api.pool.fetchval(
        "select detail from audit where action = 'configure' "
        "and object_type = 'identity_conflict' and object_id = $1",
        str(conflict["id"]),
    )
    detail = json.loads(change)
    assert detail["before"] == {"resolved": False}
    assert detail["after"]["resolved"] is True
    assert detail["after"]["note"] == "已与诊所核对：录入错误"


async def test_the_conflicts_page_lists_and_resolves_for_its_network_only(api: Api) -> None:
    uid = await _conflicting_instance(api)
    zk = await other_network_admin(api)
    cookie = await session(api, "hb.admin")
    text = await (await api.client.get("/admin/identity-conflicts", headers=cookie)).text()
    assert uid in text
    assert "PatientName" in text
    assert "李^小红" in text
    conflict = await api.pool.fetchval("select id from ingest_identity_conflict")
    # the patient's link opens that one record on the merge screen
    record = await (
        await api.client.get(
            f"/admin/patients/merge?a={await patient_of(api, uid)}", headers=cookie
        )
    ).text()
    assert "<code>C-1</code>" in record
    assert uid in record
    assert "merge-form" not in record
    done = await api.client.post(
        f"/admin/identity-conflicts/{conflict}/resolve",
        json={"note": "已核对"},
        headers={**cookie, **PAGE},
    )
    assert done.status == 200
    text = await (
        await api.client.get("/admin/identity-conflicts?status=all", headers=cookie)
    ).text()
    assert "已处理" in text
    assert "已核对" in text
    other = cookie_of(api, zk)
    elsewhere = await (
        await api.client.get("/admin/identity-conflicts?status=all", headers=other)
    ).text()
    assert uid not in elsewhere
    assert "李^小红" not in elsewhere


def _plan_nodes(node: dict[str, Any]) -> list[dict[str, Any]]:
    return [node, *(n for child in node.get("Plans", []) for n in _plan_nodes(child))]


async def test_a_page_of_candidates_looks_each_record_up_by_index(api: Api) -> None:
    """On an analysed index of 6 000 records (2 000 of them registered again at another
    village) the planner walks the records by primary key and finds each one's partners
    through indexes: no scan of the whole patient table."""
    clinics = await api.pool.fetchval(
        "select array_agg(id) from facility where tier = 'village' and code like 'HB-%'"
    )
    await api.pool.execute(
        "insert into patient (issuer_facility_id, patient_id, name, birth_date, sex) "
        "select ($1::bigint[])[1 + i / 4000], 'PLAN-' || i, "
        "'名^' || (i % 4000), to_char(date '1950-01-01' + i % 2000, 'YYYYMMDD'), 'F' "
        "from generate_series(1, 6000) i",
        clinics,
    )
    await api.pool.execute("analyze patient; analyze patient_national_id; analyze patient_link")
    facilities = await api.pool.fetchval("select array_agg(id) from facility")
    explained = await api.pool.fetchval(
        "explain (format json) " + q("duplicate_candidates"), facilities, 2**62, 2**62, 51
    )
    nodes = _plan_nodes(json.loads(explained)[0]["Plan"])
    scans = {
        (n["Node Type"], n.get("Relation Name"), n.get("Index Name"), n.get("Scan Direction"))
        for n in nodes
    }
    assert ("Index Scan", "patient", "patient_pkey", "Backward") in scans, scans
    assert any(index == "patient_name_fold_idx" for _, _, index, _ in scans), scans
    assert not any(kind == "Seq Scan" and table == "patient" for kind, table, *_ in scans), scans
    pairs = await identity.duplicate_candidates(api.pool, facilities, before=None, limit=50)
    assert len(pairs) == 50
    assert all(p.reasons == ("demographics",) for p in pairs)
