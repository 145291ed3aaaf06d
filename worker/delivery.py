"""Reports go home: render the PDF, put the report in the clinic's inbox (and push it),
and send its DICOM copies to the clinic's workstation by C-STORE, with retries."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from io import BytesIO

from pydicom import dcmread
from pynetdicom import AE

from storage import network, reports
from storage.db import Pool
from storage.objects import ObjectStore
from storage.records import Destination
from storage.reports import DicomCopy
from teleradiology.core.report_pdf import render_report_pdf
from teleradiology.core.report_sr import (
    BASIC_TEXT_SR,
    ENCAPSULATED_PDF,
    basic_text_sr,
    encapsulated_pdf,
)

log = logging.getLogger(__name__)

#: Attempts before a DICOM copy is given up: about a day with the backoff below (a
#: village workstation may be off overnight).
MAX_ATTEMPTS = 22
_FIRST_RETRY = timedelta(seconds=5)
_LONGEST_RETRY = timedelta(hours=2)


def retry_delay(attempts: int) -> timedelta | None:
    """How long to wait after ``attempts`` failed attempts; None: give up."""
    if attempts >= MAX_ATTEMPTS:
        return None
    return min(_FIRST_RETRY * 2 ** max(attempts - 1, 0), _LONGEST_RETRY)


async def deliver(pool: Pool, objects: ObjectStore, report_id: int, *, calling_ae: str) -> bool:
    """Deliver one final report; False when it already was (jobs may run twice)."""
    doc = await reports.report_document(pool, report_id)
    if doc.report.delivered_at is not None:
        return False
    pdf = await asyncio.to_thread(render_report_pdf, doc)
    pdf_key = await objects.put(pdf)
    destination = await network.report_destination(pool, doc.report.facility_id)
    copies: tuple[DicomCopy, ...] = ()
    if destination is not None:
        (pdf_uid, pdf_dcm), (sr_uid, sr_dcm) = await asyncio.to_thread(
            lambda: (encapsulated_pdf(doc, pdf), basic_text_sr(doc))
        )
        copies = (
            DicomCopy(
                object_key=await objects.put(pdf_dcm),
                sop_class_uid=ENCAPSULATED_PDF,
                sop_instance_uid=pdf_uid,
            ),
            DicomCopy(
                object_key=await objects.put(sr_dcm),
                sop_class_uid=BASIC_TEXT_SR,
                sop_instance_uid=sr_uid,
            ),
        )
    policy = await network.policy_of(pool, doc.report.facility_id)
    delivered = await reports.deliver_report(
        pool, report_id, pdf_key=pdf_key, destination=destination, copies=copies, policy=policy
    )
    if delivered:
        log.info("report %s delivered to facility %s", report_id, doc.sending_facility_id)
    if delivered and copies:
        await send_due(pool, objects, calling_ae=calling_ae)
    return delivered


def c_store(data: bytes, destination: Destination, *, calling_ae: str) -> None:
    """Send one Part-10 object by C-STORE (blocking: run it in a thread).

    Raises
    ------
    ConnectionError
        The association was refused or aborted, or the store did not succeed.
    """
    ds = dcmread(BytesIO(data))
    ae = AE(ae_title=calling_ae)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 30
    ae.add_requested_context(ENCAPSULATED_PDF)
    ae.add_requested_context(BASIC_TEXT_SR)
    assoc = ae.associate(destination.host, destination.port, ae_title=destination.ae_title)
    if not assoc.is_established:
        raise ConnectionError(
            f"{destination.ae_title}@{destination.host}:{destination.port} refused the association"
        )
    try:
        status = assoc.send_c_store(ds)
    finally:
        assoc.release()
    code = getattr(status, "Status", None)
    if code is None:
        raise ConnectionError(f"{destination.ae_title} did not answer the C-STORE")
    if code not in (0x0000, 0xB000, 0xB007, 0xB006):
        raise ConnectionError(f"{destination.ae_title} answered C-STORE status 0x{code:04X}")


async def send_due(pool: Pool, objects: ObjectStore, *, calling_ae: str) -> int:
    """Attempt every DICOM copy that is due; how many were sent."""
    sent = 0
    for item in await reports.due_dicom_sends(pool):
        try:
            data = await objects.get(item.object_key)
            await asyncio.to_thread(c_store, data, item.destination, calling_ae=calling_ae)
        except (OSError, ConnectionError, RuntimeError, ValueError) as exc:
            delay = retry_delay(item.attempts + 1)
            log.warning(
                "report %s to %s: attempt %d failed (%s)%s",
                item.report_id,
                item.destination.ae_title,
                item.attempts + 1,
                type(exc).__name__,
                f"; retry in {delay}" if delay else "; giving up",
            )
            await reports.dicom_send_done(pool, item.id, error=str(exc), retry_in=delay)
            continue
        await reports.dicom_send_done(pool, item.id, error=None, retry_in=None)
        sent += 1
    return sent
