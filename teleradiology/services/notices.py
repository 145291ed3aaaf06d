"""Notifications beyond the page: each notification of a report queues one outbound message
per channel it goes to (a durable job, in the notification's transaction), and the worker
sends each by the ``carrier`` it hands in (e-mail, a robot's or a webhook's URL), records
the attempt, and tries again with backoff until it is taken or given up for administrators.

What goes to whom and the words are ``core.notices``; how it travels is the worker's.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from storage import channels, jobs, reports
from storage.channels import Outbound
from storage.db import Conn, Pool, transaction
from storage.records import (
    Channel,
    ChannelKind,
    ChannelSpec,
    FacilityId,
    NoticeKind,
    OutboundStatus,
    ReportDocument,
    ReportId,
    UserId,
)
from teleradiology.core.backoff import retry_delay
from teleradiology.core.notices import (
    Answer,
    Message,
    NoticeFacts,
    channels_for,
    compose,
    webhook_body,
)

log = logging.getLogger(__name__)

#: The job that sends one outbound message (queued with its notification).
SEND_NOTICE = "send_notice"
#: Attempts before a message is given up and listed for administrators: with the delivery
#: backoff (5 s doubling), about 40 minutes.
NOTICE_ATTEMPTS = 10
#: A pending message untouched this long with no job has lost it: queued again (longer than
#: the longest wait between attempts).
LOST_AFTER = timedelta(hours=3)
#: The notices no longer sent once the critical result is acknowledged.
_MOOT_WHEN_ACKNOWLEDGED = frozenset({NoticeKind.CRITICAL_RESEND, NoticeKind.CRITICAL_ALERT})


class Carrier(Protocol):
    """How messages travel (the worker's SMTP client and HTTP session)."""

    async def mail(self, to: str, message: Message) -> Answer: ...

    async def post(self, spec: ChannelSpec, body: dict[str, Any]) -> Answer: ...


# --- queueing, in the caller's transaction ---------------------------------------------------


async def _queue(
    conn: Conn,
    kind: NoticeKind,
    found: Sequence[Channel],
    *,
    notification_id: int,
    report_id: ReportId,
    resend: int,
) -> int:
    queued = 0
    for channel in channels_for(kind, found):
        message_id = await channels.queue_message(
            conn,
            notification_id=notification_id,
            channel_id=channel.id,
            report_id=report_id,
            kind=kind,
            resend=resend,
        )
        if message_id is not None:
            await jobs.enqueue(conn, SEND_NOTICE, {"message_id": message_id})
            queued += 1
    return queued


async def to_clinic(
    conn: Conn,
    kind: NoticeKind,
    *,
    facility_id: FacilityId,
    notification_id: int,
    report_id: ReportId,
    resend: int = 0,
) -> int:
    """Queue a notice of the clinic's notification on the clinic's channels (the
    facility's and its clinic users' own); how many messages."""
    found = await channels.of_clinic(conn, facility_id)
    return await _queue(
        conn, kind, found, notification_id=notification_id, report_id=report_id, resend=resend
    )


async def to_user(
    conn: Conn,
    kind: NoticeKind,
    *,
    user_id: UserId,
    notification_id: int,
    report_id: ReportId,
    resend: int = 0,
) -> int:
    """Queue a notice of one user's notification (a duty administrator's alert) on that
    user's own channels; how many messages."""
    found = await channels.of_users(conn, [user_id])
    return await _queue(
        conn, kind, found, notification_id=notification_id, report_id=report_id, resend=resend
    )


# --- sending, in the worker ------------------------------------------------------------------


class Outcome(StrEnum):
    SENT = "sent"
    #: not taken: the job tries again after ``retry_in``
    RETRY = "retry"
    #: not taken after the last attempt: listed for administrators
    FAILED = "failed"
    #: no longer needed (the critical result was acknowledged)
    SKIPPED = "skipped"
    #: nothing to do: sent or given up before, removed, or another worker has it
    NONE = "none"


@dataclass(frozen=True, kw_only=True)
class Tried:
    outcome: Outcome
    retry_in: timedelta | None = None
    answer: Answer | None = None


def facts_of(doc: ReportDocument, message: Outbound, base_url: str) -> NoticeFacts:
    """What a message may tell of its report; the link opens the clinic's inbox at the
    report (the administrator's alert: the dashboard)."""
    base = base_url.rstrip("/")
    link = (
        f"{base}/admin"
        if message.kind is NoticeKind.CRITICAL_ALERT
        else f"{base}/#report-{doc.report.id}"
    )
    return NoticeFacts(
        kind=message.kind,
        report_id=int(doc.report.id),
        case_id=int(doc.case_id),
        clinic=doc.sending_facility,
        modality="/".join(doc.modalities) or doc.specialty.upper(),
        conclusion=doc.report.conclusion,
        resend=message.resend,
        link=link,
        patient_name=doc.patient_name,
        patient_id=doc.patient_id,
    )


async def _carry(carrier: Carrier, message: Outbound, facts: NoticeFacts) -> Answer:
    """Send the message in its recipient's language (a user's own channel: theirs; a
    facility's: the network's, zh-CN)."""
    spec = message.channel.spec
    text = compose(
        facts, allow_patient_name=spec.allow_patient_name, language=message.channel.language
    )
    if spec.kind is ChannelKind.EMAIL:
        return await carrier.mail(spec.target, text)
    return await carrier.post(spec, webhook_body(spec, text, facts))


async def send_notice(pool: Pool, message_id: int, *, carrier: Carrier, base_url: str) -> Tried:
    """Attempt one outbound message, record the attempt, and say what follows. The message
    is locked while it is tried, so two workers never send it twice at once."""
    async with transaction(pool) as conn:
        message = await channels.lock_message(conn, message_id)
        if message is None or message.status is not OutboundStatus.PENDING:
            return Tried(outcome=Outcome.NONE)
        if message.acknowledged and message.kind in _MOOT_WHEN_ACKNOWLEDGED:
            await channels.mark(conn, message.id, OutboundStatus.SKIPPED, message.attempts)
            return Tried(outcome=Outcome.SKIPPED)
        doc = await reports.report_document(pool, message.report_id)
        if doc is None:
            return Tried(outcome=Outcome.NONE)
        answer = await _carry(carrier, message, facts_of(doc, message, base_url))
        attempts = message.attempts + 1
        delay = None if answer.ok else retry_delay(attempts, NOTICE_ATTEMPTS)
        status = (
            OutboundStatus.SENT
            if answer.ok
            else OutboundStatus.PENDING
            if delay is not None
            else OutboundStatus.FAILED
        )
        await channels.record_attempt(
            conn,
            message.id,
            ok=answer.ok,
            code=answer.code,
            answer=answer.text,
            status=status,
            attempts=attempts,
        )
    _log_attempt(message, attempts, answer, delay)
    if answer.ok:
        return Tried(outcome=Outcome.SENT, answer=answer)
    if delay is None:
        return Tried(outcome=Outcome.FAILED, answer=answer)
    return Tried(outcome=Outcome.RETRY, retry_in=delay, answer=answer)


def _log_attempt(message: Outbound, attempts: int, answer: Answer, delay: timedelta | None) -> None:
    """Ids, kinds and codes only: no target (a robot's URL holds its key), no text."""
    channel = message.channel
    if answer.ok:
        log.info(
            "notice %s (%s, report %s) sent on %s channel %s",
            message.id,
            message.kind.value,
            message.report_id,
            channel.spec.kind.value,
            channel.id,
        )
        return
    log.warning(
        "notice %s (%s, report %s) on %s channel %s: attempt %d not taken (%s)%s",
        message.id,
        message.kind.value,
        message.report_id,
        channel.spec.kind.value,
        channel.id,
        attempts,
        answer.code,
        f"; retry in {delay}" if delay else "; given up, listed for administrators",
    )


async def requeue_lost(pool: Pool, *, now: datetime | None = None) -> int:
    """Queue again the messages whose job was lost; how many. Sending is idempotent (a
    message sent is not sent again), so a job queued twice sends once."""
    at = now or datetime.now(UTC)
    lost = await channels.messages_without_job(pool, SEND_NOTICE, untouched_since=at - LOST_AFTER)
    await jobs.enqueue_each(pool, SEND_NOTICE, "message_id", lost)
    if lost:
        log.warning("%d notification message(s) had no job; queued again", len(lost))
    return len(lost)


async def retry(pool: Pool, user_id: UserId, message_id: int) -> bool:
    """Try a given-up message again from its first attempt; False when there is no such
    failed message in the user's scope."""
    async with transaction(pool) as conn:
        if not await channels.retry_for_user(conn, user_id, message_id):
            return False
        await jobs.enqueue(conn, SEND_NOTICE, {"message_id": message_id})
    return True
