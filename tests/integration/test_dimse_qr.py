"""C-FIND, C-GET and C-MOVE with dcmtk's findscu, getscu and movescu (and pynetdicom for the
levels dcmtk's command line makes awkward), scoped by the calling AE title's user."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset
from pynetdicom import AE
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    PatientRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelFind,
)

from storage import qido
from storage.network import user_by_username
from storage.qido import DicomNode
from teleradiology.roles import DICOM
from tests.factory import make_study
from tests.integration.conftest import Api
from tests.integration.dicomweb_support import facility, route_all, store

pytestmark = pytest.mark.dcmtk

VIEWER_AE = "WANGVIEW"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def run(*args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={"TCP_NODELAY": "1", "PATH": "/usr/bin:/bin"},
    )
    async with asyncio.timeout(60):
        out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode(errors="replace")


async def add_viewer(api: Api, *, port: int) -> None:
    reader = await user_by_username(api.pool, "wang.reader")
    assert reader is not None
    await qido.save_dicom_node(
        api.pool,
        DicomNode(
            ae_title=VIEWER_AE,
            user_id=reader.id,
            facility_id=None,
            host="127.0.0.1",
            port=port,
            may_query=True,
            move_destination=True,
        ),
    )
    lw = await facility(api, "HB-MJ-LW")
    await qido.save_dicom_node(
        api.pool,
        DicomNode(
            ae_title="LWVIEW",
            user_id=None,
            facility_id=lw.id,
            host=None,
            port=None,
            may_query=True,
            move_destination=False,
        ),
    )
    await api.app[DICOM].refresh_callers()


@pytest.fixture
async def ct(api: Api) -> str:
    study = await store(
        api, "HB-XL-WD", make_study(count=3, patient_id="WD-7", patient_name="王^小明", size=32)
    )
    await route_all(api)
    return study


def _read_all(folder: Path) -> list[Dataset]:
    return [pydicom.dcmread(p) for p in sorted(folder.iterdir()) if p.is_file()]


async def test_findscu_finds_a_routed_study_by_chinese_name_in_the_readers_scope(
    api: Api, ct: str, tmp_path: Path
) -> None:
    await add_viewer(api, port=free_port())
    port = str(api.app[DICOM].port)
    keys = [
        "-k", "QueryRetrieveLevel=STUDY",
        "-k", "SpecificCharacterSet=ISO_IR 192",
        "-k", "PatientName=王*",
        "-k", "StudyInstanceUID",
        "-k", "NumberOfStudyRelatedInstances",
        "-k", "ModalitiesInStudy",
    ]  # fmt: skip
    out = tmp_path / "found"
    out.mkdir()
    code, log = await run(
        "findscu", "-S", "-aet", VIEWER_AE, "-aec", "TELEMED", "-X", "-od", str(out),
        "127.0.0.1", port, *keys,
    )  # fmt: skip
    assert code == 0, log
    (answer,) = _read_all(out)
    assert answer.StudyInstanceUID == ct
    assert str(answer.PatientName) == "王^小明"
    assert int(answer.NumberOfStudyRelatedInstances) == 3
    assert answer.ModalitiesInStudy == "CT"
    # 李湾村's viewer is scoped to its own facility: nothing of 王店村's.
    other = tmp_path / "other"
    other.mkdir()
    code, log = await run(
        "findscu", "-S", "-aet", "LWVIEW", "-aec", "TELEMED", "-X", "-od", str(other),
        "127.0.0.1", port, *keys,
    )  # fmt: skip
    assert code == 0, log
    assert _read_all(other) == []
    # An AE title nobody configured cannot even associate.
    code, log = await run(
        "findscu", "-S", "-aet", "STRANGER", "-aec", "TELEMED", "127.0.0.1", port, *keys
    )
    assert "Rejected" in log or "rejected" in log or code != 0


async def test_getscu_retrieves_the_study(api: Api, ct: str, tmp_path: Path) -> None:
    await add_viewer(api, port=free_port())
    out = tmp_path / "got"
    out.mkdir()
    code, log = await run(
        "getscu", "-S", "-aet", VIEWER_AE, "-aec", "TELEMED", "-od", str(out),
        "127.0.0.1", str(api.app[DICOM].port),
        "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={ct}",
    )  # fmt: skip
    assert code == 0, log
    got = _read_all(out)
    assert len(got) == 3
    assert {d.StudyInstanceUID for d in got} == {ct}
    assert all(len(d.PixelData) == 32 * 32 * 2 for d in got)


async def test_movescu_moves_the_study_to_a_configured_destination(
    api: Api, ct: str, tmp_path: Path
) -> None:
    port = free_port()
    await add_viewer(api, port=port)
    received = tmp_path / "received"
    received.mkdir()
    storescp = await asyncio.create_subprocess_exec(
        "storescp", "-aet", VIEWER_AE, "-od", str(received), str(port),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        env={"TCP_NODELAY": "1", "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    try:
        await asyncio.sleep(0.5)
        dicom_port = str(api.app[DICOM].port)
        code, log = await run(
            "movescu", "-S", "-aet", VIEWER_AE, "-aec", "TELEMED", "-aem", VIEWER_AE,
            "127.0.0.1", dicom_port,
            "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={ct}",
        )  # fmt: skip
        assert code == 0, log
        for _ in range(50):
            if len(list(received.iterdir())) >= 3:
                break
            await asyncio.sleep(0.1)
        got = _read_all(received)
        assert {d.StudyInstanceUID for d in got} == {ct}
        assert len(got) == 3
        # A destination nobody configured is refused (PS3.4: A801).
        code, log = await run(
            "movescu", "-S", "-aet", VIEWER_AE, "-aec", "TELEMED", "-aem", "NOWHERE",
            "127.0.0.1", dicom_port,
            "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={ct}",
        )  # fmt: skip
        assert "MoveDestinationUnknown" in log, log
    finally:
        storescp.terminate()
        await storescp.wait()


def _find(port: int, model: str, query: Dataset) -> list[Dataset]:
    ae = AE(ae_title=VIEWER_AE)
    ae.add_requested_context(model)
    assoc = ae.associate("127.0.0.1", port, ae_title="TELEMED")
    assert assoc.is_established
    try:
        return [
            identifier
            for status, identifier in assoc.send_c_find(query, model)
            if status and status.Status == 0xFF00 and identifier is not None
        ]
    finally:
        assoc.release()


async def test_c_find_at_patient_series_and_image_levels(api: Api, ct: str) -> None:
    await add_viewer(api, port=free_port())
    port = api.app[DICOM].port

    patient = Dataset()
    patient.QueryRetrieveLevel = "PATIENT"
    patient.PatientID = "WD-7"
    patient.PatientName = ""
    patient.NumberOfPatientRelatedStudies = None
    (found,) = await asyncio.to_thread(
        _find, port, PatientRootQueryRetrieveInformationModelFind, patient
    )
    assert str(found.PatientName) == "王^小明"
    assert int(found.NumberOfPatientRelatedStudies) == 1

    series = Dataset()
    series.QueryRetrieveLevel = "SERIES"
    series.StudyInstanceUID = ct
    series.SeriesInstanceUID = ""
    series.Modality = "CT"
    series.NumberOfSeriesRelatedInstances = None
    (one,) = await asyncio.to_thread(
        _find, port, StudyRootQueryRetrieveInformationModelFind, series
    )
    assert int(one.NumberOfSeriesRelatedInstances) == 3

    images = Dataset()
    images.QueryRetrieveLevel = "IMAGE"
    images.StudyInstanceUID = ct
    images.SeriesInstanceUID = one.SeriesInstanceUID
    images.SOPInstanceUID = ""
    images.InstanceNumber = None
    images.Rows = None
    found_images = await asyncio.to_thread(
        _find, port, StudyRootQueryRetrieveInformationModelFind, images
    )
    assert sorted(int(i.InstanceNumber) for i in found_images) == [1, 2, 3]
    assert {int(i.Rows) for i in found_images} == {32}


async def test_a_workstation_queries_only_its_own_facility(api: Api, ct: str) -> None:
    """A clinic's AE title (facility_ae) finds its own studies; another clinic's, none."""
    port = api.app[DICOM].port
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = ""
    query.PatientID = "WD-7"

    def find_as(ae_title: str) -> list[Dataset]:
        ae = AE(ae_title=ae_title)
        ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
        assoc = ae.associate("127.0.0.1", port, ae_title="TELEMED")
        assert assoc.is_established
        try:
            return [
                i
                for s, i in assoc.send_c_find(query, StudyRootQueryRetrieveInformationModelFind)
                if s and s.Status == 0xFF00 and i is not None
            ]
        finally:
            assoc.release()

    own = await asyncio.to_thread(find_as, "HBXLWD01")
    assert [d.StudyInstanceUID for d in own] == [ct]
    assert await asyncio.to_thread(find_as, "HBMJLW01") == []
