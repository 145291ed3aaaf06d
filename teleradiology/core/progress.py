"""Where a clinic's study is, as the clinic sees it: sending, received, complete, waiting for
a reader, in reading (at which tier), reported, or returned for quality.

Plain values in, one :class:`StudyProgress` out; the words are core/words.py's.
"""

from __future__ import annotations

from enum import StrEnum

from storage.records import CaseStatus, EventKind, StudyState


class StudyProgress(StrEnum):
    SENDING = "sending"
    RECEIVED = "received"
    COMPLETE = "complete"
    WAITING = "waiting"
    READING = "reading"
    REPORTED = "reported"
    RETURNED = "returned"


def study_progress(
    *,
    study_state: StudyState,
    uploading: bool,
    open_case: CaseStatus | None,
    reported: bool,
    returned: bool,
) -> StudyProgress:
    """The study's progress: its final report first, then its open case, then an upload
    still open (a study returned for quality may be on its way again), then a return not yet
    answered by a new case, then how far its instances have come."""
    if reported:
        return StudyProgress.REPORTED
    if open_case is CaseStatus.IN_PROGRESS:
        return StudyProgress.READING
    if open_case is CaseStatus.SCHEDULED:
        return StudyProgress.WAITING
    if uploading:
        return StudyProgress.SENDING
    if returned:
        return StudyProgress.RETURNED
    if study_state is StudyState.RECEIVING:
        return StudyProgress.RECEIVED
    return StudyProgress.COMPLETE


#: The steps of a study's way to a report that the sending clinic's pages follow live (a
#: report and a return for quality are notifications of their own).
FOLLOWED_STEPS = frozenset(
    {
        EventKind.COMPLETE,
        EventKind.ROUTED,
        EventKind.CLAIMED,
        EventKind.RELEASED,
        EventKind.LEASE_EXPIRED,
        EventKind.ESCALATED,
    }
)
