"""A C-STORE (dcmtk storescu) into a study whose case a reader has claimed is held for them,
not added under them: listed on the case, let in or discarded by that reader or an
administrator."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from pydicom import dcmread

from storage.records import Language, ReceivedVia
from teleradiology.core.errors import DuplicateConflict
from teleradiology.http.context import INGESTOR, OBJECTS
from teleradiology.roles import DICOM
from tests.factory import make_study
from tests.integration.conftest import Api
from tests.integration.dicomweb_support import facility, route_all, store
from tests.integration.test_dicom_peers import storescu

pytestmark = pytest.mark.dcmtk


async def _send(api: Api, tmp_path: Path, data: bytes, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    code, log = await storescu(
        "-aet", "HBXLWD01", "-aec", "TELEMED", "127.0.0.1", str(api.app[DICOM].port), str(path)
    )
    assert code == 0, log


async def _count(api: Api) -> int:
    n: int = await api.pool.fetchval("select num_instances from study")
    return n


async def test_a_c_store_into_a_claimed_case_is_held_for_its_reader(
    api: Api, tmp_path: Path
) -> None:
    study = make_study(count=6, patient_id="WD-7", size=16)
    await store(api, "HB-XL-WD", study[:2])
    await route_all(api)
    case_id = await api.pool.fetchval("select id from reading_case")
    # Not yet claimed: a late instance is added (and the pool told), as before.
    await _send(api, tmp_path, study[2], "late.dcm")
    assert await _count(api) == 3

    wang = api.auth("wang.reader")
    assert (await api.client.post(f"/api/v1/cases/{case_id}/claim", headers=wang)).status == 200
    await _send(api, tmp_path, study[3], "held.dcm")
    await _send(api, tmp_path, study[3], "held.dcm")  # sent again: held once
    assert await _count(api) == 3  # not added under the reader
    # The same instance with other content: refused, the held copy kept, said in Chinese.
    changed = dcmread(io.BytesIO(study[3]))
    changed.StudyDescription = "changed"
    out = io.BytesIO()
    changed.save_as(out, enforce_file_format=True)
    sender = await facility(api, "HB-XL-WD")
    with pytest.raises(DuplicateConflict) as conflict:
        await api.app[INGESTOR].ingest(
            out.getvalue(), facility=sender, via=ReceivedVia.DIMSE, sender_ae="HBXLWD01"
        )
    assert "已以不同内容暂存" in conflict.value.say(Language.ZH_CN)

    response = await api.client.get(f"/api/v1/cases/{case_id}/held", headers=wang)
    assert response.status == 200
    (held,) = (await response.json())["instances"]
    assert held["sender_ae"] == "HBXLWD01"
    sop_uid = held["sop_instance_uid"]
    assert (
        await api.pool.fetchval(
            "select count(*) from instance where sop_instance_uid = $1", sop_uid
        )
        == 0
    )
    # The case's log and its reader were told.
    detail = await api.client.get(f"/api/v1/cases/{case_id}", headers=wang)
    body = await detail.json()
    assert body["held_instances"] == 1
    events = body["events"]
    assert [e for e in events if e["kind"] == "late_instance"]
    told = await api.pool.fetch(
        "select user_id, detail->>'held' as held from notification where case_id = $1"
        " and detail ? 'held'",
        case_id,
    )
    wang_id = await api.pool.fetchval("select id from app_user where username = 'wang.reader'")
    assert [(r["user_id"], r["held"]) for r in told] == [(wang_id, "true")]
    # An administrator of the network sees it too.
    admin = api.auth("hb.admin")
    response = await api.client.get(f"/api/v1/cases/{case_id}/held", headers=admin)
    assert [h["sop_instance_uid"] for h in (await response.json())["instances"]] == [sop_uid]

    # Another reader of the pool decides nothing on it.
    zhou = api.auth("zhou.reader")
    refused = await api.client.post(f"/api/v1/cases/{case_id}/held/let-in", headers=zhou)
    assert refused.status == 403
    assert "持有病例的阅片医生" in (await refused.json())["detail"]

    # The reader lets it in: the study has it now, and nothing is held.
    let_in = await api.client.post(f"/api/v1/cases/{case_id}/held/let-in", headers=wang)
    assert await let_in.json() == {"case_id": case_id, "decision": "let_in", "count": 1}
    assert await _count(api) == 4
    response = await api.client.get(f"/api/v1/cases/{case_id}/held", headers=wang)
    assert (await response.json())["instances"] == []

    # Another one held, and discarded by an administrator: never added, its object gone.
    await _send(api, tmp_path, study[4], "discard.dcm")
    key = await api.pool.fetchval("select object_key from held_instance")
    assert await api.app[OBJECTS].exists(key)
    discard = await api.client.post(f"/api/v1/cases/{case_id}/held/discard", headers=admin)
    assert (await discard.json())["count"] == 1
    assert await _count(api) == 4
    assert await api.pool.fetchval("select count(*) from held_instance") == 0
    assert not await api.app[OBJECTS].exists(key)
