"""Searching and retrieving images is audited once, whichever edge asks: a QIDO-RS search,
a viewer opening a study over WADO-RS (hundreds of requests, one entry), a C-FIND or C-GET
from a reader's desktop viewer (in the reader's name)."""

from __future__ import annotations

import json

import pytest
from pydicom.dataset import Dataset

from storage import qido
from storage.network import user_by_username
from storage.qido import DicomNode
from storage.records import AuditAction
from teleradiology.core.errors import BadRequest, Forbidden
from teleradiology.http.context import STUDIES
from tests.factory import make_study
from tests.integration.conftest import Api
from tests.integration.dicomweb_support import route_all, store

READER = "wang.reader"


async def _audit(api: Api, action: AuditAction) -> list[tuple[str, str, int | None, str | None]]:
    rows = await api.pool.fetch(
        "select a.object_type, a.object_id, u.username, a.detail::text as detail "
        "from audit a left join app_user u on u.id = a.user_id where a.action = $1 order by a.seq",
        action.value,
    )
    return [
        (r["object_type"], r["object_id"], json.loads(r["detail"]).get("count"), r["username"])
        for r in rows
    ]


async def _routed_study(api: Api) -> str:
    study = await store(api, "HB-XL-WD", make_study(count=2, patient_id="WD-3", size=16))
    await route_all(api)
    return study


async def test_a_search_and_a_viewing_are_each_audited_once(api: Api) -> None:
    study = await _routed_study(api)
    found = await api.client.get("/dicomweb/studies", headers=api.auth(READER))
    assert found.status == 200
    series = await api.client.get(f"/dicomweb/studies/{study}/series", headers=api.auth(READER))
    assert series.status == 200
    assert await _audit(api, AuditAction.QIDO) == [
        ("study", "query", 1, READER),
        ("series", study, 1, READER),
    ]
    for _ in range(3):
        metadata = await api.client.get(
            f"/dicomweb/studies/{study}/metadata", headers=api.auth(READER)
        )
        assert metadata.status == 200
    retrieved = await api.client.get(f"/dicomweb/studies/{study}", headers=api.auth(READER))
    assert retrieved.status == 200
    await retrieved.read()
    # One viewing within the scope check's lifetime: one entry, under its first action.
    assert await _audit(api, AuditAction.METADATA) == [("study", study, None, READER)]
    assert await _audit(api, AuditAction.RETRIEVE) == []


async def test_a_study_outside_the_scope_is_not_found_and_not_audited(api: Api) -> None:
    study = await _routed_study(api)
    other = await api.client.get(
        f"/dicomweb/studies/{study}/metadata", headers=api.auth("zhao.city")
    )
    assert other.status == 404
    assert await _audit(api, AuditAction.METADATA) == []


def _identifier(level: str, **keys: str) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = level
    for keyword, value in keys.items():
        setattr(ds, keyword, value)
    return ds


async def test_a_dicom_peer_is_audited_as_its_user_and_refused_when_unknown(api: Api) -> None:
    study = await _routed_study(api)
    reader = await user_by_username(api.pool, READER)
    assert reader is not None
    await qido.save_dicom_node(
        api.pool,
        DicomNode(
            ae_title="WANGVIEW",
            user_id=reader.id,
            facility_id=None,
            host=None,
            port=None,
            may_query=True,
            move_destination=False,
        ),
    )
    studies = api.app[STUDIES]
    found = await studies.find(
        "WANGVIEW", _identifier("STUDY", StudyInstanceUID=""), patient_root=False
    )
    assert [h.study_instance_uid for h in found.hits] == [study]
    objects = await studies.retrieve(
        "WANGVIEW",
        _identifier("STUDY", StudyInstanceUID=study),
        patient_root=False,
        action=AuditAction.C_GET,
    )
    assert len(objects) == 2
    assert await _audit(api, AuditAction.C_FIND) == [("study", "WANGVIEW", 1, READER)]
    assert await _audit(api, AuditAction.C_GET) == [("study", "WANGVIEW", 2, READER)]
    disclosed = await api.pool.fetch(
        "select patients, studies from audit where action = any($1::text[]) order by seq",
        [AuditAction.C_FIND.value, AuditAction.C_GET.value],
    )
    assert [(r["patients"], r["studies"]) for r in disclosed] == [(["HB-XL-WD:WD-3"], [study])] * 2
    with pytest.raises(Forbidden, match="STRANGER may not query this archive"):
        await studies.find("STRANGER", _identifier("STUDY"), patient_root=False)
    with pytest.raises(BadRequest, match="names no UID"):
        await studies.retrieve(
            "WANGVIEW", _identifier("STUDY"), patient_root=False, action=AuditAction.C_GET
        )
    assert len(await _audit(api, AuditAction.C_GET)) == 1
