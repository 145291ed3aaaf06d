"""Ingest by C-STORE and STOW-RS: durable before success, bad input refused, nothing lost."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pydicom
from pydicom.data import get_testdata_file
from pynetdicom import AE, StoragePresentationContexts

from teleradiology.core.statuses import StoreStatus
from teleradiology.http.context import OBJECTS
from teleradiology.roles import DICOM
from tests.factory import make_study
from tests.integration.conftest import Api

BOUNDARY = "telemed-test-boundary"


def multipart(*parts: bytes, content_type: str = "application/dicom") -> bytes:
    out = b""
    for part in parts:
        out += f"--{BOUNDARY}\r\nContent-Type: {content_type}\r\n\r\n".encode() + part + b"\r\n"
    return out + f"--{BOUNDARY}--\r\n".encode()


async def stow(
    api: Api, body: bytes, *, user: str = "xlwd.clinic", ctype: str | None = None
) -> Any:
    headers = {
        **api.auth(user),
        "Content-Type": ctype
        or f'multipart/related; type="application/dicom"; boundary={BOUNDARY}',
    }
    return await api.client.post("/dicomweb/studies", data=body, headers=headers)


async def counts(api: Api) -> tuple[int, int]:
    instances = await api.pool.fetchval("select count(*) from instance")
    objects_root = Path(api.app[OBJECTS].root)  # type: ignore[attr-defined]
    files = sum(1 for p in objects_root.rglob("*") if p.is_file()) if objects_root.exists() else 0
    return instances, files


async def test_stow_stores_each_instance_and_answers_the_store_instances_response(api: Api) -> None:
    study = make_study(count=3)
    response = await stow(api, multipart(*study))
    assert response.status == 200
    assert response.headers["Content-Type"] == "application/dicom+json"
    body = await response.json()
    refs = body["00081199"]["Value"]
    assert len(refs) == 3
    assert all(r["00081190"]["Value"][0].startswith("http://") for r in refs)
    # Listed in the order the parts came (they are stored side by side).
    sent = [str(pydicom.dcmread(io.BytesIO(d)).SOPInstanceUID) for d in study]
    assert [r["00081155"]["Value"][0] for r in refs] == sent
    assert await counts(api) == (3, 3)
    # The stored object is the file as sent, with its preamble zeroed.
    key = await api.pool.fetchval(
        "select object_key from instance where sop_instance_uid = $1", sent[0]
    )
    stored = await api.app[OBJECTS].get(key)
    assert stored[:128] == bytes(128)
    assert stored[128:] == study[0][128:]


async def test_resending_the_same_instance_stores_it_once(api: Api) -> None:
    study = make_study(count=2)
    assert (await stow(api, multipart(*study))).status == 200
    again = await stow(api, multipart(*study))
    assert again.status == 200
    assert await counts(api) == (2, 2)
    assert await api.pool.fetchval("select num_instances from study") == 2


async def test_same_uid_with_other_content_is_refused_and_the_first_copy_kept(api: Api) -> None:
    (first,) = make_study(count=1)
    assert (await stow(api, multipart(first))).status == 200
    ds = pydicom.dcmread(io.BytesIO(first))
    ds.PatientName = "张^三"
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    response = await stow(api, multipart(buffer.getvalue()))
    assert response.status == 409
    failed = (await response.json())["00081198"]["Value"]
    assert failed[0]["00081197"]["Value"] == [0x0111]
    assert await counts(api) == (1, 1)
    assert await api.pool.fetchval("select name from patient") == "王^小明"
    reasons = await api.pool.fetch("select reason from ingest_rejection")
    assert len(reasons) == 1
    assert "different content" in reasons[0]["reason"]


async def test_stow_refuses_non_dicom_and_truncated_parts_and_stores_nothing(api: Api) -> None:
    truncated = Path(get_testdata_file("MR_truncated.dcm")).read_bytes()  # type: ignore[arg-type]
    response = await stow(api, multipart(b"this is a JPEG, honestly", truncated))
    assert response.status == 409
    failed = (await response.json())["00081198"]["Value"]
    assert [f["00081197"]["Value"] for f in failed] == [[0xC000], [0xC000]]
    assert await counts(api) == (0, 0)


async def test_stow_with_some_good_and_some_bad_parts_answers_202(api: Api) -> None:
    (good,) = make_study(count=1)
    response = await stow(api, multipart(good, b"not dicom"))
    assert response.status == 202
    body = await response.json()
    assert len(body["00081199"]["Value"]) == 1
    assert len(body["00081198"]["Value"]) == 1
    assert await counts(api) == (1, 1)


async def test_a_body_that_is_not_multipart_gets_415_problem_json(api: Api) -> None:
    response = await stow(api, b'{"hello": 1}', ctype="application/json")
    assert response.status == 415
    assert response.content_type == "application/problem+json"
    assert "multipart/related" in (await response.json())["detail"]
    response = await stow(
        api, b"x", ctype='multipart/related; type="application/dicom+xml"; boundary=a'
    )
    assert response.status == 415
    response = await stow(api, b"x", ctype='multipart/related; type="application/dicom"')
    assert response.status == 400
    assert await counts(api) == (0, 0)


async def test_a_malformed_multipart_body_is_a_400(api: Api) -> None:
    response = await stow(api, b"garbage without any boundary line")
    assert response.status == 400
    assert response.content_type == "application/problem+json"
    # a part whose headers are not headers
    bad_part = b'--%s\r\nContent-Type: application/dicom\r\nX-\x13: "\x13"\r\n\r\nx\r\n--%s--\r\n'
    response = await stow(api, bad_part % (BOUNDARY.encode(), BOUNDARY.encode()))
    assert response.status == 400
    detail = (await response.json())["detail"]
    assert detail.startswith("multipart 正文格式有误："), detail  # the clinic reads Chinese
    assert await counts(api) == (0, 0)


def _send(port: int, calling_ae: str, datasets: Sequence[pydicom.Dataset]) -> dict[str, Any]:
    ae = AE(ae_title=calling_ae)
    ae.requested_contexts = StoragePresentationContexts[:100]
    assoc = ae.associate("127.0.0.1", port, ae_title="TELEMED")
    if not assoc.is_established:
        return {"established": False, "rejected": assoc.is_rejected}
    statuses = []
    comments = []
    for ds in datasets:
        status = assoc.send_c_store(ds)
        statuses.append(int(status.Status))
        comments.append(str(status.get("ErrorComment", "")))
    assoc.release()
    return {"established": True, "statuses": statuses, "comments": comments}


async def test_c_store_from_a_known_ae_is_stored_and_a_truncated_file_refused(api: Api) -> None:
    port = api.app[DICOM].port
    good = [pydicom.dcmread(io.BytesIO(b)) for b in make_study(count=2)]
    truncated = pydicom.dcmread(get_testdata_file("MR_truncated.dcm"))  # type: ignore[arg-type]
    result = await asyncio.to_thread(_send, port, "HBXLWD01", [*good, truncated])
    assert result["established"]
    assert result["statuses"] == [
        StoreStatus.SUCCESS,
        StoreStatus.SUCCESS,
        StoreStatus.CANNOT_UNDERSTAND,
    ]
    assert "truncated" in result["comments"][2]
    assert await counts(api) == (2, 2)
    facility = await api.pool.fetchval(
        "select f.code from study s join facility f on f.id = s.facility_id"
    )
    assert facility == "HB-XL-WD"


async def test_c_store_from_an_unknown_ae_is_rejected_at_association(api: Api) -> None:
    port = api.app[DICOM].port
    good = [pydicom.dcmread(io.BytesIO(b)) for b in make_study(count=1)]
    result = await asyncio.to_thread(_send, port, "STRANGER", good)
    assert result == {"established": False, "rejected": True}
    assert await counts(api) == (0, 0)


async def test_a_study_marked_ready_is_completed_and_routed_without_the_stable_age(
    api: Api,
) -> None:
    from storage.index import mark_study_ready
    from teleradiology.http.context import SETTINGS
    from worker.runner import sweep_once

    study = make_study(count=2)
    assert (await stow(api, multipart(*study))).status == 200
    settings = api.app[SETTINGS].with_(stable_age_s=3600.0)
    assert await sweep_once(api.pool, settings) == 0  # not stable for an hour
    uid = pydicom.dcmread(io.BytesIO(study[0])).StudyInstanceUID
    facility_id = await api.pool.fetchval("select facility_id from study")
    assert await mark_study_ready(api.pool, uid, facility_id)
    assert await sweep_once(api.pool, settings) == 1
    assert await api.pool.fetchval("select state from study") == "complete"
    # Another facility cannot mark it, and a complete study is not marked again.
    assert not await mark_study_ready(api.pool, uid, facility_id)


async def test_an_instance_whose_audit_record_fails_is_not_indexed_nor_acknowledged(
    api: Api,
) -> None:
    """The received record commits with the index row: no row and no success without it."""
    await api.pool.execute(
        """
        create function refuse_receipts() returns trigger language plpgsql as $$
        begin
            if new.action in ('c-store', 'stow') then
                raise exception 'audit refused';
            end if;
            return new;
        end $$;
        create trigger refuse_receipts before insert on audit
            for each row execute function refuse_receipts();
        """
    )
    port = api.app[DICOM].port
    study = make_study(count=2)
    sent = [pydicom.dcmread(io.BytesIO(b)) for b in study]
    result = await asyncio.to_thread(_send, port, "HBXLWD01", sent)
    assert result["statuses"] == [StoreStatus.OUT_OF_RESOURCES] * 2
    response = await stow(api, multipart(study[0]))
    assert response.status >= 500
    assert await api.pool.fetchval("select count(*) from instance") == 0

    await api.pool.execute("drop trigger refuse_receipts on audit")
    result = await asyncio.to_thread(_send, port, "HBXLWD01", sent)
    assert result["statuses"] == [StoreStatus.SUCCESS] * 2
    assert await api.pool.fetchval("select count(*) from instance") == 2
    receipts = await api.pool.fetchval("select count(*) from audit where action = 'c-store'")
    assert receipts == 2
