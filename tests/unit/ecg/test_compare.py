"""Serial comparison: each change from analyses built here, just inside and just outside
each threshold, and findings compared by their stored code strings."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from ecg.compare import (
    FINDING_CODES,
    HEART_RATE_CHANGE_BPM,
    QTC_CHANGE_MS,
    ChangeCode,
    Comparison,
    SerialEcg,
    compare_with_prior,
    statement_codes,
)
from ecg.statements import StatementCode

C = ChangeCode
PRIOR_DAY = date(2026, 9, 14)
BASELINE = {"heart_rate_bpm": 72.0, "qtc_bazett_ms": 420.0, "pr_ms": 160.0}


def analysis(*codes: str, **measurements: Any) -> SerialEcg:
    """An analysis as stored: statements as JSON objects, measurements over the baseline."""
    statements = [{"code": c, "text_zh": c, "text_en": c} for c in codes]
    return SerialEcg(measurements={**BASELINE, **measurements}, codes=statement_codes(statements))


def compare(current: SerialEcg, prior: SerialEcg) -> Comparison:
    return compare_with_prior(
        current, prior, prior_date=PRIOR_DAY, prior_facility="淮滨县新里镇王店村卫生室"
    )


def codes_of(comparison: Comparison) -> list[ChangeCode]:
    return [c.code for c in comparison.changes]


def test_the_same_analysis_twice_has_no_change_and_says_so() -> None:
    same = analysis("SINUS_RHYTHM", "LBBB")
    found = compare(same, same)
    assert found.changes == ()
    zh, en = found.heading()
    assert "2026-09-14" in zh
    assert "王店村卫生室" in zh
    assert "未见明显变化" in zh
    assert en.startswith("Compared with the prior ECG (2026-09-14, ")
    assert found.summary() == zh
    assert found.summary("en") == en


@pytest.mark.parametrize(
    ("code", "change"),
    [
        ("ATRIAL_FIBRILLATION", C.NEW_ATRIAL_FIBRILLATION),
        ("IRREGULAR_RHYTHM_POSSIBLE_AF", C.NEW_ATRIAL_FIBRILLATION),  # older analyses' AF
        ("LBBB", C.NEW_LBBB),
        ("RBBB", C.NEW_RBBB),
        ("Q_WAVES_INFERIOR", C.NEW_Q_WAVES),
        ("ST_ELEVATION_STEMI_CRITERIA", C.NEW_ST_ELEVATION),
        ("ST_DEPRESSION", C.NEW_ST_DEPRESSION),
        ("T_WAVE_INVERSION", C.NEW_T_WAVE_INVERSION),
    ],
)
def test_a_finding_named_now_and_not_before_is_new(code: str, change: ChangeCode) -> None:
    found = compare(analysis("SINUS_RHYTHM", code), analysis("SINUS_RHYTHM"))
    assert codes_of(found) == [change]
    (only,) = found.changes
    assert only.statement_codes == (code,)
    assert only.text_zh.startswith("新出现")
    assert only.text_zh.endswith("请确认")
    assert only.text_en.startswith("New ")
    assert only.text_en.endswith("please confirm")
    # already there before: not new
    assert compare(analysis(code), analysis(code)).changes == ()
    # gone since: not a new finding either
    assert compare(analysis("SINUS_RHYTHM"), analysis(code)).changes == ()


def test_af_named_by_its_new_code_is_not_new_when_the_prior_had_the_old_one() -> None:
    found = compare(analysis("ATRIAL_FIBRILLATION"), analysis("IRREGULAR_RHYTHM_POSSIBLE_AF"))
    assert found.changes == ()


def test_an_incomplete_rbbb_is_not_a_new_rbbb_but_a_complete_one_after_it_is() -> None:
    assert compare(analysis("INCOMPLETE_RBBB"), analysis()).changes == ()
    assert codes_of(compare(analysis("RBBB"), analysis("INCOMPLETE_RBBB"))) == [C.NEW_RBBB]


def test_q_waves_in_a_new_territory_are_new_and_name_it() -> None:
    found = compare(analysis("Q_WAVES_INFERIOR", "Q_WAVES_ANTERIOR"), analysis("Q_WAVES_INFERIOR"))
    (change,) = found.changes
    assert change.code is C.NEW_Q_WAVES
    assert change.statement_codes == ("Q_WAVES_ANTERIOR",)
    assert "前壁" in change.text_zh
    assert "下壁" not in change.text_zh
    assert "anterior" in change.text_en
    assert "elsewhere" in change.text_en


def test_codes_no_analysis_emits_yet_are_listed_and_unknown_codes_never_match() -> None:
    emitted = {c.value for c in StatementCode}
    assert "IRREGULAR_RHYTHM_POSSIBLE_AF" in emitted
    assert "ST_ELEVATION_STEMI_CRITERIA" in emitted
    # a code of no finding (or a reader's free text without a code) changes nothing
    plain = SerialEcg(
        measurements=BASELINE, codes=statement_codes(["心房颤动？", {"text_zh": "无代码"}])
    )
    assert plain.codes == frozenset()
    assert compare(analysis("SOMETHING_NEW", "PAC"), plain).changes == ()
    every = set().union(*FINDING_CODES.values())
    assert "INCOMPLETE_RBBB" not in every
    assert "LONG_QTC" not in every


@pytest.mark.parametrize(
    ("prior_ms", "current_ms", "called"),
    [
        (420.0, 420.0 + QTC_CHANGE_MS, True),
        (420.0, 420.0 + QTC_CHANGE_MS - 1.0, False),
        (500.0, 500.0 - QTC_CHANGE_MS, True),
        (500.0, 500.0 - QTC_CHANGE_MS + 1.0, False),
    ],
)
def test_a_qtc_change_of_60_ms_either_way_is_called(
    prior_ms: float, current_ms: float, called: bool
) -> None:
    found = compare(analysis(qtc_bazett_ms=current_ms), analysis(qtc_bazett_ms=prior_ms))
    assert codes_of(found) == ([C.QTC_CHANGE] if called else [])
    if called:
        (change,) = found.changes
        assert change.values == {
            "prior_ms": prior_ms,
            "current_ms": current_ms,
            "change_ms": current_ms - prior_ms,
        }
        assert f"{prior_ms:.0f} → {current_ms:.0f} ms" in change.text_zh
        assert ("延长" if current_ms > prior_ms else "缩短") in change.text_zh


def test_a_readers_qtc_is_compared_over_bazetts_and_an_unmeasured_one_not_at_all() -> None:
    corrected = analysis(qtc_bazett_ms=420.0, qtc_ms=500.0)
    assert codes_of(compare(corrected, analysis(qtc_bazett_ms=430.0))) == [C.QTC_CHANGE]
    assert compare(analysis(qtc_bazett_ms=None), analysis(qtc_bazett_ms=300.0)).changes == ()
    assert compare(analysis(qtc_bazett_ms=float("nan")), analysis()).changes == ()
    assert compare(analysis(qtc_bazett_ms=True), analysis(qtc_bazett_ms=300.0)).changes == ()


@pytest.mark.parametrize(
    ("prior_bpm", "current_bpm", "called"),
    [
        (60.0, 60.0 + HEART_RATE_CHANGE_BPM, True),
        (60.0, 60.0 + HEART_RATE_CHANGE_BPM - 1.0, False),
        (100.0, 100.0 - HEART_RATE_CHANGE_BPM, True),
        (100.0, 100.0 - HEART_RATE_CHANGE_BPM + 1.0, False),
    ],
)
def test_a_heart_rate_change_is_called_from_its_threshold(
    prior_bpm: float, current_bpm: float, called: bool
) -> None:
    found = compare(analysis(heart_rate_bpm=current_bpm), analysis(heart_rate_bpm=prior_bpm))
    assert codes_of(found) == ([C.HEART_RATE_CHANGE] if called else [])
    if called:
        (change,) = found.changes
        assert change.values["change_bpm"] == current_bpm - prior_bpm
        assert f"{prior_bpm:.0f} → {current_bpm:.0f} bpm" in change.text_en


def test_several_changes_come_in_a_stable_order_with_the_prior_named() -> None:
    current = analysis(
        "ATRIAL_FIBRILLATION", "LBBB", "ST_DEPRESSION", heart_rate_bpm=118.0, qtc_bazett_ms=492.0
    )
    found = compare(current, analysis("SINUS_RHYTHM"))
    assert codes_of(found) == [
        C.NEW_ATRIAL_FIBRILLATION,
        C.NEW_LBBB,
        C.NEW_ST_DEPRESSION,
        C.QTC_CHANGE,
        C.HEART_RATE_CHANGE,
    ]
    out = found.to_dict()
    assert out["prior_date"] == "2026-09-14"
    assert out["prior_facility"] == "淮滨县新里镇王店村卫生室"
    assert [c["code"] for c in out["changes"]] == [c.value for c in codes_of(found)]
    summary = found.summary()
    assert summary.startswith("与前次心电图（2026-09-14，淮滨县新里镇王店村卫生室）比较：")
    assert "新出现心房颤动" in summary
    assert "QTc 较前延长 72 ms" in summary
    english = found.summary("en")
    assert english.startswith(
        "Compared with the prior ECG (2026-09-14, 淮滨县新里镇王店村卫生室): "
    )
    assert "New atrial fibrillation" in english
    assert not any(
        "\u4e00" <= ch <= "\u9fff" for ch in english.replace("淮滨县新里镇王店村卫生室", "")
    )


def test_an_unknown_prior_date_is_said_and_bad_measurements_are_refused() -> None:
    found = compare_with_prior(analysis(), analysis(), prior_date=None, prior_facility="")
    assert found.heading() == (
        "与前次心电图（日期不详）比较，所比较项目未见明显变化",
        "Compared with the prior ECG (date unknown): no change in the findings compared",
    )
    with pytest.raises(TypeError, match="measurements must be a mapping"):
        SerialEcg(measurements=[("heart_rate_bpm", 60.0)])  # type: ignore[arg-type]


def test_every_finding_code_is_a_statement_the_analysis_makes() -> None:
    from ecg.compare import FINDING_CODES
    from ecg.statements import StatementCode

    made = {c.value for c in StatementCode}
    for kind, codes in FINDING_CODES.items():
        assert codes <= made, (kind, codes - made)
