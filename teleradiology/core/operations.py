"""The operations page's lights: each measure of the queue and the stores judged green,
amber or red against thresholds stated with it (a higher value is worse for each)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Light(StrEnum):
    GREEN = "green"
    AMBER = "amber"
    RED = "red"


@dataclass(frozen=True, kw_only=True)
class Threshold:
    """Amber from ``amber``, red from ``red`` (in ``unit``)."""

    amber: float
    red: float
    unit: str

    def __post_init__(self) -> None:
        if not 0 <= self.amber <= self.red:
            raise ValueError(f"thresholds must be 0 <= amber <= red, not {self.amber}, {self.red}")

    def judge(self, value: float | None) -> Light:
        """The light of ``value``; None (not measured: the store did not answer) is red."""
        if value is None or value >= self.red:
            return Light.RED
        return Light.AMBER if value >= self.amber else Light.GREEN

    def stated(self) -> str:
        return f"amber ≥ {self.amber:g} {self.unit}, red ≥ {self.red:g} {self.unit}".strip()


class Measure(StrEnum):
    #: how long the oldest job due now has waited for a runner
    OLDEST_DUE_S = "oldest_due_s"
    #: picked jobs whose runner stopped sending heartbeats
    STALE_JOBS = "stale_jobs"
    #: jobs held as failed, waiting for an administrator
    FAILED_JOBS = "failed_jobs"
    DATABASE_MS = "database_ms"
    OBJECTS_MS = "objects_ms"
    DISK_USED_PCT = "disk_used_pct"


#: A job runner takes a due job within seconds; a minute's wait is a runner short, ten
#: minutes none running. A stale picked job is taken again by the next runner, but one means
#: a worker died. Failed jobs wait for an administrator: one is work, ten a pattern.
THRESHOLDS: dict[Measure, Threshold] = {
    Measure.OLDEST_DUE_S: Threshold(amber=60, red=600, unit="s"),
    Measure.STALE_JOBS: Threshold(amber=1, red=5, unit="jobs"),
    Measure.FAILED_JOBS: Threshold(amber=1, red=10, unit="jobs"),
    Measure.DATABASE_MS: Threshold(amber=50, red=500, unit="ms"),
    Measure.OBJECTS_MS: Threshold(amber=250, red=2000, unit="ms"),
    Measure.DISK_USED_PCT: Threshold(amber=80, red=90, unit="%"),
}


def worst(lights: list[Light]) -> Light:
    """The page's overall light: its worst measure's."""
    order = [Light.GREEN, Light.AMBER, Light.RED]
    return max(lights, key=order.index, default=Light.GREEN)
