"""Where a clinic's study is, as its pages say: the order the facts are weighed in."""

from __future__ import annotations

import pytest

from storage.records import CaseStatus, EventKind, StudyState
from teleradiology.core.progress import FOLLOWED_STEPS, StudyProgress, study_progress
from teleradiology.core.words import Language, word


def _progress(**changes: object) -> StudyProgress:
    facts: dict[str, object] = {
        "study_state": StudyState.COMPLETE,
        "uploading": False,
        "open_case": None,
        "reported": False,
        "returned": False,
    }
    return study_progress(**{**facts, **changes})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("facts", "expected"),
    [
        ({"study_state": StudyState.RECEIVING, "uploading": True}, StudyProgress.SENDING),
        ({"study_state": StudyState.RECEIVING}, StudyProgress.RECEIVED),
        ({}, StudyProgress.COMPLETE),
        ({"open_case": CaseStatus.SCHEDULED}, StudyProgress.WAITING),
        ({"open_case": CaseStatus.IN_PROGRESS}, StudyProgress.READING),
        ({"returned": True}, StudyProgress.RETURNED),
        # sent again after a return: the new case is what the clinic waits for
        ({"returned": True, "open_case": CaseStatus.SCHEDULED}, StudyProgress.WAITING),
        # a second read still open does not hide the final report
        ({"reported": True, "open_case": CaseStatus.IN_PROGRESS}, StudyProgress.REPORTED),
        # a returned study whose instances arrive again is being sent, not returned
        ({"returned": True, "uploading": True}, StudyProgress.SENDING),
    ],
)
def test_the_progress_weighs_the_report_then_the_case_then_the_instances(
    facts: dict[str, object], expected: StudyProgress
) -> None:
    assert _progress(**facts) is expected


def test_each_progress_has_its_words_and_the_clinic_follows_the_case_steps() -> None:
    assert word(StudyProgress.WAITING) == "等待判读"
    assert word(StudyProgress.WAITING, Language.EN) == "waiting for a reader"
    assert all(word(p) and word(p, Language.EN) for p in StudyProgress)
    assert EventKind.RECEIVED not in FOLLOWED_STEPS  # one per instance: the page would churn
    assert {EventKind.ROUTED, EventKind.CLAIMED, EventKind.ESCALATED} <= FOLLOWED_STEPS
