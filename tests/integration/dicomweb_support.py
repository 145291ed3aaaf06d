"""Helpers for the DICOMweb and query/retrieve tests: store studies, route them to readers."""

from __future__ import annotations

import io
from datetime import timedelta

from pydicom import dcmread

from storage import network, qido
from storage.qido import DicomNode
from storage.records import Facility, ReceivedVia
from teleradiology.http.context import INGESTOR
from teleradiology.services import routing
from tests.integration.conftest import Api


async def facility(api: Api, code: str) -> Facility:
    found = [f for f in await network.list_facilities(api.pool) if f.code == code]
    assert found, code
    return found[0]


async def store(api: Api, code: str, instances: list[bytes]) -> str:
    """Ingest Part-10 files as sent by facility ``code``; the study UID of the first."""
    sender = await facility(api, code)
    for data in instances:
        await api.app[INGESTOR].ingest(data, facility=sender, via=ReceivedVia.STOW)
    return str(dcmread(io.BytesIO(instances[0]), stop_before_pixels=True).StudyInstanceUID)


async def route_all(api: Api) -> int:
    """Complete every receiving study now and route it (what the worker's sweep does)."""
    await api.pool.execute("update study set ready_at = now() where state = 'receiving'")
    # every one, not the sweep's batch of 50: a test may have stored more before routing
    created = await routing.complete_stable_studies(
        api.pool, stable_age=timedelta(hours=1), limit=100_000
    )
    return len(created)


async def workstation_node(api: Api, code: str, ae_title: str, port: int) -> None:
    """The operator configures a facility's workstation as a DICOM node (on loopback, at
    ``port``) that reports may be sent back to."""
    sender = await facility(api, code)
    node = DicomNode(
        ae_title=ae_title,
        user_id=None,
        facility_id=sender.id,
        host="127.0.0.1",
        port=port,
        may_query=False,
        move_destination=False,
    )
    await qido.save_dicom_node(api.pool, node)
