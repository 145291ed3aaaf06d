"""Serial comparison: what changed since the patient's last ECG.

The current analysis and the prior's (measurements and statement codes) go in; the changes a
reader should look at come out, each with a stable code and its text in Chinese and English,
worded for the reader to confirm. Statements are compared by their stored code strings, so a
finding is compared as soon as the analysis names it: the codes of each finding are listed
once, here (:data:`FINDING_CODES`), and a code no analysis emits yet simply never matches.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from enum import Enum
from types import MappingProxyType
from typing import Any, Literal

__all__ = [
    "FINDING_CODES",
    "HEART_RATE_CHANGE_BPM",
    "QTC_CHANGE_MS",
    "Change",
    "ChangeCode",
    "Comparison",
    "SerialEcg",
    "compare_with_prior",
    "statement_codes",
]


class ChangeCode(Enum):
    """Stable codes of the serial changes (the values are stored; never rename)."""

    NEW_ATRIAL_FIBRILLATION = "NEW_ATRIAL_FIBRILLATION"
    NEW_LBBB = "NEW_LBBB"
    NEW_RBBB = "NEW_RBBB"
    NEW_Q_WAVES = "NEW_Q_WAVES"
    NEW_ST_ELEVATION = "NEW_ST_ELEVATION"
    NEW_ST_DEPRESSION = "NEW_ST_DEPRESSION"
    NEW_T_WAVE_INVERSION = "NEW_T_WAVE_INVERSION"
    QTC_CHANGE = "QTC_CHANGE"
    HEART_RATE_CHANGE = "HEART_RATE_CHANGE"


#: Territories a morphology code may name as its suffix (``Q_WAVES_INFERIOR``).
TERRITORIES: Mapping[str, tuple[str, str]] = {
    "ANTERIOR": ("前壁", "anterior"),
    "SEPTAL": ("间隔", "septal"),
    "LATERAL": ("侧壁", "lateral"),
    "INFERIOR": ("下壁", "inferior"),
}


#: The statement codes (stored values) that name each finding. ``IRREGULAR_RHYTHM_POSSIBLE_AF``
#: is the code older analyses gave atrial fibrillation; an incomplete RBBB is not a new RBBB.
FINDING_CODES: Mapping[ChangeCode, frozenset[str]] = MappingProxyType(
    {
        ChangeCode.NEW_ATRIAL_FIBRILLATION: frozenset(
            {"ATRIAL_FIBRILLATION", "IRREGULAR_RHYTHM_POSSIBLE_AF"}
        ),
        ChangeCode.NEW_LBBB: frozenset({"LBBB"}),
        ChangeCode.NEW_RBBB: frozenset({"RBBB"}),
        ChangeCode.NEW_Q_WAVES: frozenset(
            {"Q_WAVES_ANTERIOR", "Q_WAVES_LATERAL", "Q_WAVES_INFERIOR"}
        ),
        ChangeCode.NEW_ST_ELEVATION: frozenset(
            {"ST_ELEVATION_STEMI_CRITERIA", "ST_ELEVATION_PACED"}
        ),
        # one code each, the leads and territories in its values
        ChangeCode.NEW_ST_DEPRESSION: frozenset({"ST_DEPRESSION"}),
        ChangeCode.NEW_T_WAVE_INVERSION: frozenset({"T_WAVE_INVERSION"}),
    }
)

#: The wording of each new finding: Chinese, English.
_FINDING_TEXT: Mapping[ChangeCode, tuple[str, str]] = {
    ChangeCode.NEW_ATRIAL_FIBRILLATION: ("心房颤动", "atrial fibrillation"),
    ChangeCode.NEW_LBBB: ("完全性左束支阻滞", "complete left bundle branch block"),
    ChangeCode.NEW_RBBB: ("完全性右束支阻滞", "complete right bundle branch block"),
    ChangeCode.NEW_Q_WAVES: ("病理性 Q 波", "pathological Q waves"),
    ChangeCode.NEW_ST_ELEVATION: ("ST 段抬高", "ST elevation"),
    ChangeCode.NEW_ST_DEPRESSION: ("ST 段压低", "ST depression"),
    ChangeCode.NEW_T_WAVE_INVERSION: ("T 波倒置", "T-wave inversion"),
}

#: A QTc change this large (either way) is called: the ICH E14 guidance treats an increase
#: over 60 ms from baseline as a marker of pro-arrhythmic risk.
QTC_CHANGE_MS = 60.0
#: A heart-rate change this large (either way, beats per minute) is called.
HEART_RATE_CHANGE_BPM = 20.0


def statement_codes(statements: Iterable[object]) -> frozenset[str]:
    """The codes of stored statements (``{"code": ...}`` objects; others carry none).

    Parameters
    ----------
    statements
        Statements as stored: JSON objects with a ``code`` string, as
        :meth:`ecg.statements.Statement.to_dict` writes them, or a reader's free text.

    Returns
    -------
    frozenset of str
        The code strings found.
    """
    return frozenset(
        s["code"] for s in statements if isinstance(s, Mapping) and isinstance(s.get("code"), str)
    )


def _finite(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


@dataclass(frozen=True, kw_only=True)
class SerialEcg:
    """What of one analysis is compared: its measurements and statement codes.

    Parameters
    ----------
    measurements
        By the analysis' keys (``heart_rate_bpm``, ``qtc_bazett_ms``, or a reader's
        ``qtc_ms`` …); values that are not finite numbers count as unmeasured.
    codes
        Statement codes (see :func:`statement_codes`).
    """

    measurements: Mapping[str, object] = field(default_factory=dict)
    codes: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if not isinstance(self.measurements, Mapping):
            raise TypeError(f"SerialEcg.measurements must be a mapping, got {self.measurements!r}")
        object.__setattr__(self, "codes", frozenset(self.codes))

    def value(self, key: str) -> float | None:
        return _finite(self.measurements.get(key))

    @property
    def qtc_ms(self) -> float | None:
        """A reader's QTc when set, else Bazett's (as the sheet prints it)."""
        own = self.value("qtc_ms")
        return own if own is not None else self.value("qtc_bazett_ms")


@dataclass(frozen=True, kw_only=True)
class Change:
    """One change since the prior ECG: stable code, text, and the values it rests on."""

    code: ChangeCode
    text_zh: str
    text_en: str
    statement_codes: tuple[str, ...] = ()
    values: Mapping[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: ``code``, ``text_zh``, ``text_en``, ``statement_codes``,
        ``values``."""
        return {
            "code": self.code.value,
            "text_zh": self.text_zh,
            "text_en": self.text_en,
            "statement_codes": list(self.statement_codes),
            "values": dict(self.values),
        }


@dataclass(frozen=True, kw_only=True)
class Comparison:
    """What changed since one prior ECG, taken on ``prior_date`` at ``prior_facility``."""

    prior_date: date | None
    prior_facility: str
    changes: tuple[Change, ...]

    def heading(self) -> tuple[str, str]:
        """The comparison's first line, Chinese and English, naming the prior."""
        when = self.prior_date.isoformat() if self.prior_date else "日期不详"
        when_en = self.prior_date.isoformat() if self.prior_date else "date unknown"
        where = f"，{self.prior_facility}" if self.prior_facility else ""
        where_en = f", {self.prior_facility}" if self.prior_facility else ""
        if not self.changes:
            return (
                f"与前次心电图（{when}{where}）比较，所比较项目未见明显变化",
                f"Compared with the prior ECG ({when_en}{where_en}): "
                "no change in the findings compared",
            )
        return (
            f"与前次心电图（{when}{where}）比较：",
            f"Compared with the prior ECG ({when_en}{where_en}):",
        )

    def summary(self, language: Literal["zh", "en"] = "zh") -> str:
        """The heading and the changes in one paragraph of `language` (for the sheet)."""
        zh, en = self.heading()
        if language == "en":
            return " ".join([en, "; ".join(c.text_en for c in self.changes)]).strip()
        return zh + "；".join(c.text_zh for c in self.changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: ``prior_date`` (ISO date or null), ``prior_facility``,
        ``heading_zh``, ``heading_en``, ``changes``."""
        zh, en = self.heading()
        return {
            "prior_date": self.prior_date.isoformat() if self.prior_date else None,
            "prior_facility": self.prior_facility,
            "heading_zh": zh,
            "heading_en": en,
            "changes": [c.to_dict() for c in self.changes],
        }


def _territory(code: str) -> str | None:
    """The territory a code names by its suffix, if any."""
    return next((t for t in TERRITORIES if code.endswith(f"_{t}")), None)


def _territories(codes: Iterable[str]) -> tuple[str, str]:
    """The territories named by codes' suffixes, Chinese and English ("" when none)."""
    named = [TERRITORIES[t] for t in TERRITORIES if t in {_territory(c) for c in codes}]
    return "、".join(zh for zh, _ in named), ", ".join(en for _, en in named)


def _new_codes(now: frozenset[str], before: frozenset[str]) -> list[str]:
    """The codes of one finding that are new: all when the prior had none of the finding's
    codes; else those in a territory the prior did not name (a prior code without a
    territory covers every one)."""
    if not before:
        return sorted(now)
    places = {_territory(c) for c in before}
    if None in places:
        return []
    return sorted(c for c in now if (t := _territory(c)) is not None and t not in places)


def _new_finding(kind: ChangeCode, current: SerialEcg, prior: SerialEcg) -> Change | None:
    """The finding ``kind`` named now and not (or not in this territory) before."""
    family = FINDING_CODES[kind]
    before = prior.codes & family
    new = _new_codes(current.codes & family, before)
    if not new:
        return None
    zh, en = _FINDING_TEXT[kind]
    where_zh, where_en = _territories(new)
    if where_zh:
        zh, en = f"{zh}（{where_zh}）", f"{en} ({where_en})"
    again = "前次心电图已见于其他部位" if before else "前次心电图未见"
    again_en = "the prior ECG had it elsewhere" if before else "not on the prior ECG"
    return Change(
        code=kind,
        text_zh=f"新出现{zh}（{again}），请确认",
        text_en=f"New {en} ({again_en}); please confirm",
        statement_codes=tuple(new),
    )


def _changed_by(now: float | None, then: float | None, at_least: float) -> float | None:
    """``now - then`` when both are measured and it is at least ``at_least`` either way."""
    if now is None or then is None or abs(now - then) < at_least:
        return None
    return now - then


def _qtc_change(current: SerialEcg, prior: SerialEcg) -> Change | None:
    now, then = current.qtc_ms, prior.qtc_ms
    delta = _changed_by(now, then, QTC_CHANGE_MS)
    if now is None or then is None or delta is None:
        return None
    zh, en = ("延长", "lengthened") if delta > 0 else ("缩短", "shortened")
    return Change(
        code=ChangeCode.QTC_CHANGE,
        text_zh=f"QTc 较前{zh} {abs(delta):.0f} ms（{then:.0f} → {now:.0f} ms），请确认",
        text_en=f"QTc {en} by {abs(delta):.0f} ms since the prior ECG "
        f"({then:.0f} → {now:.0f} ms); please confirm",
        values={"prior_ms": then, "current_ms": now, "change_ms": delta},
    )


def _heart_rate_change(current: SerialEcg, prior: SerialEcg) -> Change | None:
    now, then = current.value("heart_rate_bpm"), prior.value("heart_rate_bpm")
    delta = _changed_by(now, then, HEART_RATE_CHANGE_BPM)
    if now is None or then is None or delta is None:
        return None
    zh, en = ("增快", "faster") if delta > 0 else ("减慢", "slower")
    return Change(
        code=ChangeCode.HEART_RATE_CHANGE,
        text_zh=f"心率较前{zh} {abs(delta):.0f} 次/分（{then:.0f} → {now:.0f} 次/分）",
        text_en=f"Heart rate {abs(delta):.0f} bpm {en} than on the prior ECG "
        f"({then:.0f} → {now:.0f} bpm)",
        values={"prior_bpm": then, "current_bpm": now, "change_bpm": delta},
    )


def compare_with_prior(
    current: SerialEcg, prior: SerialEcg, *, prior_date: date | None, prior_facility: str
) -> Comparison:
    """What changed from the prior ECG to the current one.

    Parameters
    ----------
    current, prior
        The two analyses (the readers' corrections applied).
    prior_date
        When the prior was taken (the network's local date), ``None`` when unknown.
    prior_facility
        Display name of the facility that took the prior.

    Returns
    -------
    Comparison
        The changes in the order of :class:`ChangeCode`: each finding named now and not
        before, a QTc change of at least :data:`QTC_CHANGE_MS` and a heart-rate change of at
        least :data:`HEART_RATE_CHANGE_BPM` either way. Empty when nothing compared changed.
    """
    found = [_new_finding(kind, current, prior) for kind in FINDING_CODES]
    found += [_qtc_change(current, prior), _heart_rate_change(current, prior)]
    return Comparison(
        prior_date=prior_date,
        prior_facility=prior_facility,
        changes=tuple(c for c in found if c is not None),
    )
