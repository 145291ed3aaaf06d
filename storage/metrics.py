"""Gauges of the whole network for the Prometheus endpoint: counts, no patient data."""

from __future__ import annotations

from dataclasses import dataclass

from storage.db import Pool
from storage.queries import q


@dataclass(frozen=True, kw_only=True)
class OpenCases:
    pool: str
    specialty: str
    status: str
    priority: str
    cases: int
    overdue: int


@dataclass(frozen=True, kw_only=True)
class NetworkGauges:
    """What the index holds now, read in one go at scrape time."""

    open_cases: tuple[OpenCases, ...]
    #: (facility code, conclusion) → final reports not yet acknowledged by the clinic
    unacknowledged_reports: dict[tuple[str, str], int]
    #: status (pending, sent, failed) → DICOM copies of reports to clinics' workstations
    dicom_sends: dict[str, int]
    studies: int
    instances: int
    instance_bytes: int
    rejections: int


async def network_gauges(pool: Pool) -> NetworkGauges:
    """Read every gauge (a handful of aggregate queries)."""
    async with pool.acquire() as conn:
        cases = await conn.fetch(q("metrics_open_cases"))
        reports = await conn.fetch(q("metrics_reports"))
        sends = await conn.fetch(q("metrics_dicom_sends"))
        totals = await conn.fetchrow(q("metrics_totals"))
    assert totals is not None
    return NetworkGauges(
        open_cases=tuple(
            OpenCases(
                pool=r["pool"],
                specialty=r["specialty"],
                status=r["status"],
                priority=r["priority"],
                cases=r["cases"],
                overdue=r["overdue"],
            )
            for r in cases
        ),
        unacknowledged_reports={
            (r["facility"], r["conclusion"]): r["unacknowledged"] for r in reports
        },
        dicom_sends={r["status"]: r["sends"] for r in sends},
        studies=totals["studies"],
        instances=totals["instances"],
        instance_bytes=int(totals["instance_bytes"]),
        rejections=totals["rejections"],
    )
