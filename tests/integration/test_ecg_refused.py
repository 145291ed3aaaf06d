"""An ECG file the service cannot read is refused in words, and its original is kept with
why: the clinic and its administrators list and fetch it (audited), nobody else does, the
collector leaves it, and a cart sending garbage in a loop fills no store."""

from __future__ import annotations

import pytest

from storage import collection
from teleradiology.http.context import OBJECTS
from teleradiology.services import ecg as ecg_service
from tests.integration.conftest import Api
from tests.integration.test_ecg_flow import upload

GARBAGE = b"SCPECG" + bytes(range(256)) * 4
NAME = 'cart "0001".scp'


async def _refused(api: Api, user: str) -> tuple[int, object]:
    answer = await api.client.get("/api/v1/refused-ecgs", headers=api.auth(user))
    return answer.status, await answer.json()


async def test_a_refused_file_is_kept_for_its_clinic_and_administrators(api: Api) -> None:
    status, body = await upload(api, [(NAME, GARBAGE)])
    assert status == 400, body
    assert "文件已作为被拒心电图" in body["detail"]
    assert await api.pool.fetchval("select count(*) from instance") == 0
    status, listed = await _refused(api, "xlwd.clinic")
    assert status == 200
    (item,) = listed["refused"]  # type: ignore[index]
    assert item["facility"] == "HB-XL-WD"
    assert item["filename"] == NAME
    assert item["size_bytes"] == len(GARBAGE)
    assert item["reason"].startswith("the ECG file cannot be read")
    assert f"被拒心电图 {item['id']} 保留" in body["detail"]
    for user in ("xlwd.clinic", "hb.admin"):
        got = await api.client.get(
            f"/api/v1/refused-ecgs/{item['id']}/original", headers=api.auth(user)
        )
        assert got.status == 200
        assert await got.read() == GARBAGE
        assert "filename*=UTF-8''" in got.headers["Content-Disposition"]
    audited = await api.pool.fetch(
        "select username from audit where action = 'original' and object_type = 'refused_ecg'"
    )
    assert sorted(r["username"] for r in audited) == ["hb.admin", "xlwd.clinic"]
    # the city's administrator, above the county, sees it too
    assert [r["id"] for r in (await _refused(api, "xy.admin"))[1]["refused"]] == [item["id"]]  # type: ignore[index]
    # another village, a reader: not theirs
    assert (await _refused(api, "mjlw.clinic"))[1] == {"refused": []}
    assert (await _refused(api, "wang.reader"))[0] == 403
    other = await api.client.get(
        f"/api/v1/refused-ecgs/{item['id']}/original", headers=api.auth("mjlw.clinic")
    )
    assert other.status == 404
    # the object collector leaves what a row refers to
    key = await api.pool.fetchval("select object_key from refused_ecg")
    assert await collection.collect(api.pool, api.app[OBJECTS], key) is False
    assert await api.app[OBJECTS].get(key) == GARBAGE


async def test_past_the_days_limit_a_refusal_keeps_nothing(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ecg_service, "REFUSED_KEPT_PER_DAY", 2)
    details = []
    for n in range(3):
        status, body = await upload(api, [(f"bad{n}.scp", GARBAGE + bytes([n]))])
        assert status == 400
        details.append(body["detail"])
    assert ["文件已作为被拒心电图" in d for d in details] == [True, True, False]
    assert await api.pool.fetchval("select count(*) from refused_ecg") == 2
    # the third file's object is no row's: the collector takes it
    keys = {r["object_key"] for r in await api.pool.fetch("select object_key from refused_ecg")}
    assert len(keys) == 2
