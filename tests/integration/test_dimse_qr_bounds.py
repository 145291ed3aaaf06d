"""What query/retrieve will not do: list a facility without a real key, send more instances
than one retrieve may, or move a study to a node of another facility (dcmtk peers)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from storage import qido
from storage.qido import DicomNode
from teleradiology.roles import DICOM
from tests.factory import make_study
from tests.integration.conftest import Api, local_settings, serving
from tests.integration.dicomweb_support import facility, route_all, store
from tests.integration.test_dimse_qr import VIEWER_AE, _read_all, add_viewer, free_port, run

pytestmark = pytest.mark.dcmtk


@pytest.fixture
async def api(database_url: str, tmp_path: Path) -> AsyncIterator[Api]:
    """The service with a retrieve bound of 3 instances."""
    settings = local_settings(database_url, tmp_path, dicom_retrieve_max=3)
    async with serving(settings) as served:
        yield served


async def _studies(api: Api) -> tuple[str, str]:
    """A study of 3 instances and one of 4, sent by 王店村."""
    small = await store(api, "HB-XL-WD", make_study(count=3, patient_id="WD-7", size=16))
    big = await store(api, "HB-XL-WD", make_study(count=4, patient_id="WD-8", size=16))
    await route_all(api)
    return small, big


async def test_a_workstation_cannot_list_its_facility_without_a_real_key(
    api: Api, tmp_path: Path
) -> None:
    small, _ = await _studies(api)
    port = str(api.app[DICOM].port)
    for key in ("PatientName=*", "PatientID=*", "PatientID="):
        out = tmp_path / key.replace("=", "_").replace("*", "star")
        out.mkdir()
        code, log = await run(
            "findscu", "-d", "-S", "-aet", "HBXLWD01", "-aec", "TELEMED", "-X", "-od", str(out),
            "127.0.0.1", port, "-k", "QueryRetrieveLevel=STUDY", "-k", key,
            "-k", "StudyInstanceUID",
        )  # fmt: skip
        assert "Unable to process" in log, log
        assert "real key" in log, log
        assert _read_all(out) == []
    out = tmp_path / "real"
    out.mkdir()
    code, log = await run(
        "findscu", "-d", "-S", "-aet", "HBXLWD01", "-aec", "TELEMED", "-X", "-od", str(out),
        "127.0.0.1", port, "-k", "QueryRetrieveLevel=STUDY", "-k", "PatientID=WD-7",
        "-k", "StudyInstanceUID",
    )  # fmt: skip
    assert code == 0, log
    assert [d.StudyInstanceUID for d in _read_all(out)] == [small]


async def test_a_retrieve_above_the_bound_is_refused_whole(api: Api, tmp_path: Path) -> None:
    small, big = await _studies(api)
    await add_viewer(api, port=free_port())
    port = str(api.app[DICOM].port)
    refused = tmp_path / "refused"
    refused.mkdir()
    code, log = await run(
        "getscu", "-d", "-S", "-aet", VIEWER_AE, "-aec", "TELEMED", "-od", str(refused),
        "127.0.0.1", port, "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={big}",
    )  # fmt: skip
    assert "0xa701" in log.lower(), log
    assert "more than 3 instances" in log, log
    assert _read_all(refused) == []
    # A wildcard is no way around it: a retrieve names values.
    code, log = await run(
        "getscu", "-d", "-P", "-aet", VIEWER_AE, "-aec", "TELEMED", "-od", str(refused),
        "127.0.0.1", port, "-k", "QueryRetrieveLevel=PATIENT", "-k", "PatientID=*",
    )  # fmt: skip
    assert "no wildcards" in log, log
    assert _read_all(refused) == []
    got = tmp_path / "got"
    got.mkdir()
    code, log = await run(
        "getscu", "-d", "-S", "-aet", VIEWER_AE, "-aec", "TELEMED", "-od", str(got),
        "127.0.0.1", port, "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={small}",
    )  # fmt: skip
    assert code == 0, log
    assert len(_read_all(got)) == 3


async def _destination(api: Api, ae_title: str, code: str, port: int) -> None:
    owner = await facility(api, code)
    await qido.save_dicom_node(
        api.pool,
        DicomNode(
            ae_title=ae_title,
            user_id=None,
            facility_id=owner.id,
            host="127.0.0.1",
            port=port,
            may_query=False,
            move_destination=True,
        ),
    )


async def test_c_move_sends_only_to_the_callers_own_facility(api: Api, tmp_path: Path) -> None:
    small, _ = await _studies(api)
    await add_viewer(api, port=free_port())  # wang.reader's viewer, of HB-COUNTY
    port = free_port()
    await _destination(api, "COUNTYPACS", "HB-COUNTY", port)
    await _destination(api, "LWSTORE", "HB-MJ-LW", port)  # another facility's node
    received = tmp_path / "received"
    received.mkdir()
    storescp = await asyncio.create_subprocess_exec(
        "storescp", "-od", str(received), str(port),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    try:
        await asyncio.sleep(0.5)
        dicom_port = str(api.app[DICOM].port)
        move = ["-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={small}"]
        code, log = await run(
            "movescu", "-v", "-S", "-aet", VIEWER_AE, "-aec", "TELEMED", "-aem", "LWSTORE",
            "127.0.0.1", dicom_port, *move,
        )  # fmt: skip
        assert "MoveDestinationUnknown" in log, log
        assert list(received.iterdir()) == []
        code, log = await run(
            "movescu", "-v", "-S", "-aet", VIEWER_AE, "-aec", "TELEMED", "-aem", "COUNTYPACS",
            "127.0.0.1", dicom_port, *move,
        )  # fmt: skip
        assert code == 0, log
        for _ in range(50):
            if len(list(received.iterdir())) >= 3:
                break
            await asyncio.sleep(0.1)
        assert {d.StudyInstanceUID for d in _read_all(received)} == {small}
    finally:
        storescp.terminate()
        await storescp.wait()
