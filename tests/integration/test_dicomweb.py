"""QIDO-RS and WADO-RS over the demo network: matching, answers, negotiation, scope, errors."""

from __future__ import annotations

import io
import zlib
from typing import Any

import cv2
import numpy as np
import pytest
from pydicom import dcmread
from pydicom.uid import generate_uid

from tests.factory import make_study
from tests.integration.conftest import Api
from tests.integration.dicomweb_support import route_all, store

READER = "wang.reader"
OCTETS_ANY_TS = "multipart/related; type=application/octet-stream; transfer-syntax=*"


def uids(body: list[dict[str, Any]], tag: str = "0020000D") -> set[str]:
    return {item[tag]["Value"][0] for item in body}


def study_with(
    *,
    name: str,
    patient_id: str,
    date: str = "20261120",
    time: str = "093000",
    modality: str = "CT",
    accession: str | None = None,
    charset: str = "ISO_IR 192",
    count: int = 2,
) -> list[bytes]:
    out = []
    study_uid = generate_uid()
    for data in make_study(
        modality=modality, count=count, patient_id=patient_id, study_uid=study_uid, size=16
    ):
        ds = dcmread(io.BytesIO(data))
        ds.SpecificCharacterSet = charset
        ds.PatientName = name
        ds.StudyDate = date
        ds.StudyTime = time
        if accession:
            ds.AccessionNumber = accession
        buffer = io.BytesIO()
        ds.save_as(buffer, enforce_file_format=True)
        out.append(buffer.getvalue())
    return out


async def qido(api: Api, path: str, user: str = READER, **params: str) -> list[dict[str, Any]]:
    response = await api.client.get(path, params=params, headers=api.auth(user))
    assert response.status == 200, await response.text()
    assert response.content_type == "application/dicom+json"
    body: list[dict[str, Any]] = await response.json()
    return body


@pytest.fixture
async def studies(api: Api) -> dict[str, str]:
    """Six studies of 王店村 and one of 李湾村, all routed to the county's radiology pool."""
    made = {
        "wang": await store(
            api, "HB-XL-WD", study_with(name="王^小明", patient_id="WD-1", accession="ACC-1")
        ),
        "wang_prior": await store(
            api,
            "HB-XL-WD",
            study_with(name="王^小明", patient_id="WD-1", date="20251101", modality="CR"),
        ),
        "gb": await store(
            api,
            "HB-XL-WD",
            study_with(name="张^伟", patient_id="WD-2", charset="GB18030", time="143000"),
        ),
        "muller": await store(
            api, "HB-XL-WD", study_with(name="Müller^Hans", patient_id="WD-3", date="20261118")
        ),
        "liu": await store(
            api,
            "HB-XL-WD",
            study_with(name="Liu^Tao=刘^涛", patient_id="WD-4", modality="MR", date="20261119"),
        ),
        "lw": await store(api, "HB-MJ-LW", study_with(name="李^秀英", patient_id="LW-1")),
    }
    await route_all(api)
    return made


async def test_patient_name_matching_wildcards_fuzzy_and_chinese(
    api: Api, studies: dict[str, str]
) -> None:
    search = "/dicomweb/studies"
    # Chinese as typed, in UTF-8 and from a GB18030 file, %-encoded on the wire.
    assert uids(await qido(api, search, PatientName="王^小明")) == {
        studies["wang"],
        studies["wang_prior"],
    }
    assert uids(await qido(api, search, PatientName="王*")) == {
        studies["wang"],
        studies["wang_prior"],
    }
    assert uids(await qido(api, search, PatientName="张^伟")) == {studies["gb"]}
    # Any component group matches: the ideographic one of Liu^Tao=刘^涛.
    assert uids(await qido(api, search, PatientName="刘*")) == {studies["liu"]}
    assert uids(await qido(api, search, PatientName="*tao*")) == {studies["liu"]}
    assert uids(await qido(api, search, PatientName="M?ller*")) == {studies["muller"]}
    # Accents only fold with fuzzy matching.
    assert await qido(api, search, PatientName="muller") == []
    assert uids(await qido(api, search, PatientName="muller", fuzzymatching="true")) == {
        studies["muller"]
    }
    assert uids(await qido(api, search, PatientName="HANS", fuzzymatching="true")) == {
        studies["muller"]
    }
    raw = await api.client.get(
        "/dicomweb/studies?PatientName=%E7%8E%8B%2A", headers=api.auth(READER)
    )
    assert uids(await raw.json()) == {studies["wang"], studies["wang_prior"]}


async def test_study_matching_on_ids_dates_times_modalities_and_uid_lists(
    api: Api, studies: dict[str, str]
) -> None:
    search = "/dicomweb/studies"
    assert uids(await qido(api, search, PatientID="WD-1")) == {
        studies["wang"],
        studies["wang_prior"],
    }
    assert uids(await qido(api, search, AccessionNumber="ACC-*")) == {studies["wang"]}
    assert uids(await qido(api, search, StudyDate="20261118-20261119")) == {
        studies["muller"],
        studies["liu"],
    }
    assert uids(await qido(api, search, StudyDate="-20251231")) == {studies["wang_prior"]}
    assert uids(await qido(api, search, StudyTime="1400-1500")) == {studies["gb"]}
    assert uids(await qido(api, search, ModalitiesInStudy="MR")) == {studies["liu"]}
    assert uids(await qido(api, search, ModalitiesInStudy="MR\\CR")) == {
        studies["liu"],
        studies["wang_prior"],
    }
    both = f"{studies['gb']}\\{studies['liu']}"
    assert uids(await qido(api, search, StudyInstanceUID=both)) == {studies["gb"], studies["liu"]}
    repeated = await api.client.get(
        f"{search}?StudyInstanceUID={studies['gb']}&StudyInstanceUID={studies['muller']}",
        headers=api.auth(READER),
    )
    assert uids(await repeated.json()) == {studies["gb"], studies["muller"]}


async def test_study_answers_carry_the_required_attributes_counts_and_includefield(
    api: Api, studies: dict[str, str]
) -> None:
    body = await qido(api, "/dicomweb/studies", PatientID="WD-3", includefield="00081030,Modality")
    (study,) = body
    for tag in (
        "00080005",  # SpecificCharacterSet
        "00080020",
        "00080030",
        "00080050",
        "00080056",
        "00080061",  # ModalitiesInStudy
        "00080090",
        "00081190",  # RetrieveURL
        "00100010",
        "00100020",
        "00100030",
        "00100040",
        "0020000D",
        "00200010",
        "00201206",  # NumberOfStudyRelatedSeries
        "00201208",  # NumberOfStudyRelatedInstances
    ):
        assert tag in study, tag
    assert study["00100010"]["Value"] == [{"Alphabetic": "Müller^Hans"}]
    assert study["00201206"]["Value"] == [1]
    assert study["00201208"]["Value"] == [2]
    assert study["00080061"]["Value"] == ["CT"]
    # includefield of an attribute beyond the columns comes from the kept metadata.
    assert study["00080060"]["Value"] == ["CT"]
    everything = await qido(api, "/dicomweb/studies", PatientID="WD-3", includefield="all")
    assert "00100021" in everything[0]  # IssuerOfPatientID
    keywords = await qido(api, "/dicomweb/studies", PatientID="WD-3", includefield="PixelSpacing")
    assert keywords[0]["00280030"]["Value"] == [0.7, 0.7]
    liu = await qido(api, "/dicomweb/studies", PatientID="WD-4")
    assert liu[0]["00100010"]["Value"] == [{"Alphabetic": "Liu^Tao", "Ideographic": "刘^涛"}]


async def test_limit_and_offset_page_through_a_stable_order(
    api: Api, studies: dict[str, str]
) -> None:
    everything = await qido(api, "/dicomweb/studies")
    assert len(everything) == 6
    pages = [
        await qido(api, "/dicomweb/studies", limit="4", offset="0"),
        await qido(api, "/dicomweb/studies", limit="4", offset="4"),
    ]
    assert [len(p) for p in pages] == [4, 2]
    assert [s["0020000D"] for s in pages[0] + pages[1]] == [s["0020000D"] for s in everything]
    response = await api.client.get(
        "/dicomweb/studies", params={"limit": "5000"}, headers=api.auth(READER)
    )
    assert response.status == 200
    assert response.headers["Warning"].startswith("299 ")


async def test_series_and_instance_searches(api: Api, studies: dict[str, str]) -> None:
    study = studies["liu"]
    (series,) = await qido(api, f"/dicomweb/studies/{study}/series")
    assert series["00080060"]["Value"] == ["MR"]
    assert series["00201209"]["Value"] == [2]
    series_uid = series["0020000E"]["Value"][0]
    assert await qido(api, f"/dicomweb/studies/{study}/series", Modality="CT") == []
    instances = await qido(api, f"/dicomweb/studies/{study}/series/{series_uid}/instances")
    assert [i["00200013"]["Value"] for i in instances] == [[1], [2]]
    assert instances[0]["00280010"]["Value"] == [16]  # Rows, from the kept metadata
    one = await qido(api, f"/dicomweb/studies/{study}/instances", InstanceNumber="2")
    assert len(one) == 1
    across = await qido(api, "/dicomweb/series", Modality="MR")
    assert uids(across, "0020000E") == {series_uid}
    assert across[0]["00100010"]["Value"][0]["Ideographic"] == "刘^涛"  # study attributes too
    everywhere = await qido(api, "/dicomweb/instances", PatientID="WD-4", includefield="all")
    assert len(everywhere) == 2
    assert everywhere[0]["00280030"]["Value"] == [0.7, 0.7]


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("limit=-1", "limit"),
        ("limit=abc", "limit"),
        ("offset=-5", "offset"),
        ("StudyDate=2026-11-01", "日期"),
        ("StudyDate=20261301x", "日期"),
        ("StudyDate=20261120-20261101", "before it starts"),
        ("StudyTime=25h", "时间"),
        ("StudyInstanceUID=1.2.abc", "UID"),
        ("NotAKeyword=1", "关键字"),
        ("includefield=NotAKeyword", "关键字"),
        ("includefield=00091234x", "关键字"),
        ("FFFE0000=1", "标签"),
        ("fuzzymatching=maybe", "fuzzymatching"),
        ("SeriesNumber=one", "整数"),
        ("PatientName=a&PatientName=b", "一次"),
    ],
)
async def test_malformed_queries_are_400_problems(
    api: Api, studies: dict[str, str], query: str, reason: str
) -> None:
    response = await api.client.get(f"/dicomweb/instances?{query}", headers=api.auth(READER))
    assert response.status == 400, query
    assert response.content_type == "application/problem+json"
    assert reason in (await response.json())["detail"]


async def test_unsupported_matching_keys_are_ignored_with_a_warning(
    api: Api, studies: dict[str, str]
) -> None:
    response = await api.client.get(
        "/dicomweb/studies", params={"InstitutionName": "x"}, headers=api.auth(READER)
    )
    assert response.status == 200
    assert "InstitutionName" in response.headers["Warning"]


async def test_scope_reader_pool_and_priors_clinic_own_admin_network(
    api: Api, studies: dict[str, str]
) -> None:
    everything = set(studies.values())
    # Every village here routes to the county hospital's radiology pool.
    assert uids(await qido(api, "/dicomweb/studies", user=READER)) == everything
    assert await qido(api, "/dicomweb/studies", user="zhao.city") == []
    assert uids(await qido(api, "/dicomweb/studies", user="xlwd.clinic")) == everything - {
        studies["lw"]
    }
    assert uids(await qido(api, "/dicomweb/studies", user="mjlw.clinic")) == {studies["lw"]}
    assert uids(await qido(api, "/dicomweb/studies", user="hb.admin")) == everything
    assert await qido(api, "/dicomweb/studies", user="li.ecg") == []  # no ECG cases

    async def reroute_to_city(study_uid: str) -> None:
        await api.pool.execute(
            "update reading_case set pool_facility_id = (select id from facility where code = "
            "'XY-CITY') where study_id = (select id from study where study_instance_uid = $1)",
            study_uid,
        )

    await reroute_to_city(studies["lw"])
    await reroute_to_city(studies["wang"])
    county = uids(await qido(api, "/dicomweb/studies", user=READER))
    assert studies["lw"] not in county
    # Priors: the patient's other study is still routed here, so both stay visible.
    assert studies["wang"] in county
    city = uids(await qido(api, "/dicomweb/studies", user="zhao.city"))
    assert city == {studies["wang"], studies["wang_prior"], studies["lw"]}
    # The JSON API scopes the same way (study_visible_to).
    response = await api.client.get("/api/v1/studies", headers=api.auth("zhao.city"))
    listed = {s["study_instance_uid"] for s in (await response.json())["studies"]}
    assert listed == city


async def test_outside_the_scope_every_resource_is_404(api: Api, studies: dict[str, str]) -> None:
    other = studies["wang"]
    (series,) = await qido(api, f"/dicomweb/studies/{other}/series")
    (instance,) = await qido(api, f"/dicomweb/studies/{other}/instances", InstanceNumber="1")
    series_uid, sop = series["0020000E"]["Value"][0], instance["00080018"]["Value"][0]
    base = f"/dicomweb/studies/{other}"
    for path in (
        base,
        f"{base}/metadata",
        f"{base}/series",
        f"{base}/instances",
        f"{base}/thumbnail",
        f"{base}/series/{series_uid}/metadata",
        f"{base}/series/{series_uid}/instances/{sop}",
        f"{base}/series/{series_uid}/instances/{sop}/frames/1",
        f"{base}/series/{series_uid}/instances/{sop}/rendered",
        f"{base}/series/{series_uid}/instances/{sop}/bulk/7FE00010",
    ):
        response = await api.client.get(path, headers=api.auth("mjlw.clinic"))
        assert response.status == 404, path
        assert response.content_type == "application/problem+json"


async def test_frames_as_stored_decoded_and_past_the_end(api: Api, studies: dict[str, str]) -> None:
    study = studies["wang"]
    (instance,) = await qido(api, f"/dicomweb/studies/{study}/instances", InstanceNumber="1")
    series_uid, sop = instance["0020000E"]["Value"][0], instance["00080018"]["Value"][0]
    path = f"/dicomweb/studies/{study}/series/{series_uid}/instances/{sop}/frames/1"
    stored = await api.client.get(path, headers={**api.auth(READER), "Accept": OCTETS_ANY_TS})
    assert stored.status == 200
    assert 'type="application/octet-stream"' in stored.headers["Content-Type"]
    body = await stored.read()
    assert b"transfer-syntax=1.2.840.10008.1.2.1" in body
    assert len(body) > 16 * 16 * 2
    past = await api.client.get(path[:-1] + "2", headers=api.auth(READER))
    assert past.status == 404
    assert (await past.json())["detail"] == "第 2 帧不存在：该实例有 1 帧"
    zero = await api.client.get(path[:-1] + "0", headers=api.auth(READER))
    assert zero.status == 400
    refused = await api.client.get(
        path, headers={**api.auth(READER), "Accept": "multipart/related; type=image/png"}
    )
    assert refused.status == 406
    assert "application/octet-stream" in (await refused.json())["detail"]


async def test_rendered_and_thumbnails_for_study_series_and_instance(
    api: Api, studies: dict[str, str]
) -> None:
    study = studies["wang"]
    (instance,) = await qido(api, f"/dicomweb/studies/{study}/instances", InstanceNumber="1")
    series_uid, sop = instance["0020000E"]["Value"][0], instance["00080018"]["Value"][0]
    instance_path = f"/dicomweb/studies/{study}/series/{series_uid}/instances/{sop}"
    png = await api.client.get(
        f"{instance_path}/rendered",
        params={"window": "2000,4000,linear", "viewport": "64,32"},
        headers={**api.auth(READER), "Accept": "image/png"},
    )
    assert png.status == 200
    assert png.content_type == "image/png"
    image = cv2.imdecode(np.frombuffer(await png.read(), np.uint8), cv2.IMREAD_UNCHANGED)
    assert image is not None
    assert image.shape[:2] == (32, 32)  # fitted into 64x32, aspect kept
    jpeg = await api.client.get(
        f"{instance_path}/rendered", params={"quality": "50"}, headers=api.auth(READER)
    )
    assert jpeg.content_type == "image/jpeg"
    for path in (
        f"/dicomweb/studies/{study}/thumbnail",
        f"/dicomweb/studies/{study}/series/{series_uid}/thumbnail",
        f"{instance_path}/thumbnail",
    ):
        thumb = await api.client.get(path, headers=api.auth(READER))
        assert thumb.status == 200, path
        decoded = cv2.imdecode(np.frombuffer(await thumb.read(), np.uint8), cv2.IMREAD_UNCHANGED)
        assert decoded is not None
        assert max(decoded.shape[:2]) == 128
    series_rendered = await api.client.get(
        f"/dicomweb/studies/{study}/series/{series_uid}/rendered", headers=api.auth(READER)
    )
    assert series_rendered.status == 200
    assert series_rendered.headers["Content-Type"].startswith("multipart/related")
    for bad in ({"window": "40"}, {"viewport": "0,0"}, {"quality": "101"}, {"window": "1,2,cubic"}):
        response = await api.client.get(
            f"{instance_path}/rendered", params=bad, headers=api.auth(READER)
        )
        assert response.status == 400, bad
    refused = await api.client.get(
        f"{instance_path}/rendered", headers={**api.auth(READER), "Accept": "image/gif"}
    )
    assert refused.status == 406
    assert "image/jpeg" in (await refused.json())["detail"]


async def test_accept_headers_with_several_types_and_q_values(
    api: Api, studies: dict[str, str]
) -> None:
    study = studies["wang"]
    (instance,) = await qido(api, f"/dicomweb/studies/{study}/instances", InstanceNumber="1")
    series_uid, sop = instance["0020000E"]["Value"][0], instance["00080018"]["Value"][0]
    rendered = f"/dicomweb/studies/{study}/series/{series_uid}/instances/{sop}/rendered"
    for accept, expected in (
        ("image/gif, image/png;q=0.5, image/jpeg;q=0.9", "image/jpeg"),
        ("image/jpeg;q=0.2, image/png", "image/png"),
        ("image/*;q=0.1, text/html", "image/jpeg"),
        ("*/*", "image/jpeg"),
    ):
        response = await api.client.get(rendered, headers={**api.auth(READER), "Accept": accept})
        assert response.status == 200, accept
        assert response.content_type == expected, accept
    zero = await api.client.get(
        rendered, headers={**api.auth(READER), "Accept": "image/jpeg;q=0, image/gif"}
    )
    assert zero.status == 406
    qido_json = await api.client.get(
        "/dicomweb/studies", headers={**api.auth(READER), "Accept": "application/dicom+xml"}
    )
    assert qido_json.status == 406


async def test_urls_follow_the_public_base_and_cors_answers_preflight(
    api: Api, studies: dict[str, str]
) -> None:
    study = studies["wang"]
    response = await api.client.get(
        "/dicomweb/studies",
        params={"StudyInstanceUID": study},
        headers={
            **api.auth(READER),
            "X-Forwarded-Proto": "https",
            "X-Forwarded-Host": "pacs.hb.example",
        },
    )
    body = await response.json()
    # a client's own X-Forwarded-* is not believed (no trusted proxy is configured here:
    # tests/integration/test_proxies.py has one)
    origin = f"http://{api.client.host}:{api.client.port}"
    assert body[0]["00081190"]["Value"] == [f"{origin}/dicomweb/studies/{study}"]
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    # 64x64 pixels: 8 KiB of pixel data, a bulk value (over 1 KiB) in the metadata.
    study = await store(api, "HB-XL-WD", make_study(count=1, patient_id="WD-9", size=64))
    (series,) = await qido(api, f"/dicomweb/studies/{study}/series", user="xlwd.clinic")
    series_uid = series["0020000E"]["Value"][0]
    metadata = await api.client.get(
        f"/dicomweb/studies/{study}/series/{series_uid}/metadata",
        headers={**api.auth("xlwd.clinic"), "X-Forwarded-Host": "pacs.hb.example"},
    )
    text = await metadata.text()
    assert f'"BulkDataURI": "{origin}/dicomweb/studies/' in text
    assert "bulk:" not in text
    preflight = await api.client.options(
        "/dicomweb/studies",
        headers={"Origin": "https://other.example", "Access-Control-Request-Method": "GET"},
    )
    assert preflight.status == 204
    assert "Authorization" in preflight.headers["Access-Control-Allow-Headers"]


async def test_series_metadata_is_kept_and_rebuilt_when_the_series_grows(
    api: Api, studies: dict[str, str]
) -> None:
    study = studies["liu"]
    (series,) = await qido(api, f"/dicomweb/studies/{study}/series")
    series_uid = series["0020000E"]["Value"][0]
    path = f"/dicomweb/studies/{study}/series/{series_uid}/metadata"
    first = await (await api.client.get(path, headers=api.auth(READER))).json()
    assert len(first) == 2
    kept = await api.pool.fetchrow("select num_instances, body_zlib from series_metadata")
    assert kept is not None
    assert kept["num_instances"] == 2
    assert zlib.decompress(kept["body_zlib"]).startswith(b"[")
    # A late third instance: the kept copy is stale and rebuilt from three.
    late = make_study(modality="MR", count=3, patient_id="WD-4", study_uid=study, size=16)[2]
    ds = dcmread(io.BytesIO(late))
    ds.SeriesInstanceUID = series_uid
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    await store(api, "HB-XL-WD", [buffer.getvalue()])
    again = await (await api.client.get(path, headers=api.auth(READER))).json()
    assert len(again) == 3
    study_level = await (
        await api.client.get(f"/dicomweb/studies/{study}/metadata", headers=api.auth(READER))
    ).json()
    assert len(study_level) == 3
