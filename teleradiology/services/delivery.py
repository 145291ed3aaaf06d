"""Reports go home: render the PDF, put the report in the clinic's inbox (and push it), and
send its DICOM copies to the clinic's workstation, with retries.

The copies are sent by the ``send`` the caller hands in (the DICOM role's C-STORE): this
ring decides what goes where and when to try again, not how the network carries it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from storage import collection, jobs, network, reports
from storage.db import Pool, transaction
from storage.eventlog import notify, record_event
from storage.objects import ObjectStore
from storage.records import (
    Conclusion,
    Destination,
    EventKind,
    FacilityId,
    Language,
    NoticeKind,
    NotificationKind,
    ReportDocument,
    ReportId,
    Role,
)
from storage.reports import DicomCopy
from teleradiology.core import backoff
from teleradiology.core.errors import NotFound
from teleradiology.core.language import N_
from teleradiology.core.report_pdf import ReportEcg, render_report_pdf
from teleradiology.core.report_sr import (
    BASIC_TEXT_SR,
    ENCAPSULATED_PDF,
    basic_text_sr,
    encapsulated_pdf,
)
from teleradiology.services import ecg, notices
from teleradiology.services.work_pool import WorkPool, offload

log = logging.getLogger(__name__)

#: The job that delivers a final report (queued with it, in its transaction).
DELIVER_REPORT = "deliver_report"

#: Sends one Part-10 object to a destination; raises OSError, ConnectionError,
#: RuntimeError or ValueError when it did not arrive.
SendCopy = Callable[[bytes, Destination], Awaitable[None]]

#: Attempts before a DICOM copy is given up: about a day with the backoff below (a
#: village workstation may be off overnight).
MAX_ATTEMPTS = 22
#: Attempts before a report's delivery job is held for an administrator: about three hours
#: (what fails here is ours, the object store or the database, not the clinic's node).
DELIVERY_ATTEMPTS = 12
#: A final report undelivered this long with no delivery job has lost it: queued again.
LOST_AFTER = timedelta(minutes=5)


def retry_delay(attempts: int, most: int = MAX_ATTEMPTS) -> timedelta | None:
    """How long to wait after ``attempts`` failed attempts of at most ``most``; None: give
    up."""
    return backoff.retry_delay(attempts, most)


async def requeue_lost(pool: Pool, *, now: datetime | None = None) -> int:
    """Queue the delivery of final reports whose job was lost; how many. Delivery is
    idempotent, so a job queued twice delivers once."""
    at = now or datetime.now(UTC)
    lost = await jobs.reports_without_delivery(pool, DELIVER_REPORT, signed_before=at - LOST_AFTER)
    await jobs.enqueue_each(pool, DELIVER_REPORT, "report_id", list(lost))
    if lost:
        log.warning("%d final report(s) had no delivery job; queued again", len(lost))
    return len(lost)


async def deliver(
    pool: Pool,
    objects: ObjectStore,
    report_id: int,
    *,
    send: SendCopy,
    work: WorkPool | None = None,
) -> bool:
    """Deliver one final report; False when it already was (jobs may run twice). An ECG
    report's PDF carries its ECGs' tracings, drawn in ``work``.

    The PDF (and, when the clinic has a DICOM destination, the encapsulated PDF and the SR)
    are stored first; the report is then delivered, the clinic told and the copies queued in
    one transaction, and the copies sent.
    """
    doc = await reports.report_document(pool, report_id)
    if doc is None:
        raise NotFound(N_("找不到报告 %(id)s"), id=report_id)
    if doc.report.delivered_at is not None:
        return False
    pdf = await printable(pool, objects, doc, work=work)
    pdf_key = await objects.put(pdf)
    destination = await network.report_destination(pool, doc.report.facility_id)
    copies = await _dicom_copies(objects, doc, pdf) if destination is not None else ()
    delivered = await collection.referring(
        pool,
        objects,
        [pdf_key, *(c.object_key for c in copies)],
        lambda: _mark_delivered(pool, doc, pdf_key, destination, copies),
    )
    if delivered:
        log.info("report %s delivered to facility %s", report_id, doc.sending_facility_id)
    if delivered and copies:
        await send_due(pool, objects, send=send)
    return delivered


async def printable(
    pool: Pool,
    objects: ObjectStore,
    doc: ReportDocument,
    *,
    language: Language = Language.ZH_CN,
    work: WorkPool | None = None,
) -> bytes:
    """The printable report in `language` (zh-CN: the one delivered, kept and sent in
    DICOM); an ECG report with its ECGs' sheets, drawn in ``work``."""
    ecgs = await _report_ecgs(pool, objects, doc, work, language)
    # With ECG sheets the PDF takes seconds of CPU: in the work pool, as the sheets were.
    return await offload(
        work if ecgs else None, render_report_pdf, doc, ecgs=ecgs, language=language
    )


async def _report_ecgs(
    pool: Pool,
    objects: ObjectStore,
    doc: ReportDocument,
    work: WorkPool | None,
    language: Language,
) -> list[ReportEcg]:
    """An ECG report's ECGs with their sheets, times in the network's zone; none for
    radiology."""
    if doc.specialty != "ecg":
        return []
    policy = await network.policy_of(pool, FacilityId(doc.sending_facility_id))
    return await ecg.report_ecgs(
        pool, objects, doc.report, zone=ZoneInfo(policy.timezone), work=work, language=language
    )


async def _dicom_copies(
    objects: ObjectStore, doc: ReportDocument, pdf: bytes
) -> tuple[DicomCopy, ...]:
    (pdf_uid, pdf_dcm), (sr_uid, sr_dcm) = await asyncio.to_thread(
        lambda: (encapsulated_pdf(doc, pdf), basic_text_sr(doc))
    )
    return (
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


async def _mark_delivered(
    pool: Pool,
    doc: ReportDocument,
    pdf_key: str,
    destination: Destination | None,
    copies: tuple[DicomCopy, ...],
) -> bool:
    """Put the report in the clinic's inbox and push it; a critical result starts its
    acknowledgement clock; the copies are queued for the clinic's node."""
    report_id = ReportId(doc.report.id)
    policy = await network.policy_of(pool, doc.report.facility_id)
    async with transaction(pool) as conn:
        await collection.guard(conn, [pdf_key, *(c.object_key for c in copies)])
        done = await reports.mark_delivered(
            conn, report_id, pdf_key=pdf_key, critical_ack=policy.critical_ack
        )
        if done is None:
            return False
        await record_event(
            conn,
            EventKind.DELIVERED,
            facility_id=done.facility_id,
            study_id=done.study_id,
            case_id=done.case_id,
            report_id=report_id,
        )
        kind, notice = _kinds_of(done)
        notification_id = await notify(
            conn,
            kind,
            facility_id=done.facility_id,
            audience=Role.CLINIC,
            case_id=done.case_id,
            report_id=report_id,
            detail={"conclusion": done.conclusion.value, "version": done.version},
        )
        await notices.to_clinic(
            conn,
            notice,
            facility_id=done.facility_id,
            notification_id=notification_id,
            report_id=report_id,
        )
        if destination is not None:
            await reports.queue_dicom_copies(conn, report_id, destination, copies)
    return True


def _kinds_of(done: reports.Delivered) -> tuple[NotificationKind, NoticeKind]:
    """What the page and the outbound channels are told of a delivered report."""
    if done.amends_report_id is not None:
        return NotificationKind.ADDENDUM, NoticeKind.ADDENDUM
    if done.conclusion is Conclusion.CRITICAL:
        return NotificationKind.CRITICAL, NoticeKind.CRITICAL
    return NotificationKind.REPORT, NoticeKind.REPORT


async def send_due(pool: Pool, objects: ObjectStore, *, send: SendCopy) -> int:
    """Attempt every DICOM copy that is due; how many were sent."""
    sent = 0
    for item in await reports.due_dicom_sends(pool):
        try:
            data = await objects.get(item.object_key)
            await send(data, item.destination)
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
