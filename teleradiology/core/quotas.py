"""The rules of a facility's daily intake limit: which limits apply, and what a refusal says.
Plain values in, plain values (or the error to raise) out."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from storage.records import IntakeLimits
from teleradiology.core.errors import QuotaExceeded


def effective(
    defaults: IntakeLimits, own_bytes_per_day: int | None, own_instances_per_day: int | None
) -> IntakeLimits:
    """A facility's own limits where it has them, the service's defaults for the rest."""
    return IntakeLimits(
        bytes_per_day=defaults.bytes_per_day if own_bytes_per_day is None else own_bytes_per_day,
        instances_per_day=defaults.instances_per_day
        if own_instances_per_day is None
        else own_instances_per_day,
    )


def seconds_to_next_day(now: datetime) -> int:
    """Seconds from ``now`` (timezone-aware) to the next 00:00 UTC, when the count restarts."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    utc = now.astimezone(UTC)
    tomorrow = (utc + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return max(1, math.ceil((tomorrow - utc).total_seconds()))


def exceeded(
    facility_code: str,
    sent_bytes: int,
    sent_instances: int,
    size_bytes: int,
    limits: IntakeLimits,
    now: datetime,
) -> QuotaExceeded:
    """The refusal of an instance of ``size_bytes`` after what the facility sent today."""
    wait_s = seconds_to_next_day(now)
    if limits.instances_per_day and sent_instances + 1 > limits.instances_per_day:
        what = f"its {limits.instances_per_day} instances for today"
    else:
        what = (
            f"{sent_bytes} of its {limits.bytes_per_day} bytes for today, and this instance "
            f"has {size_bytes}"
        )
    return QuotaExceeded(
        f"{facility_code} has sent {what} (UTC day): it was not stored. Send it again after "
        "00:00 UTC, or ask the network administrator to raise the facility's daily limit",
        retry_after_s=wait_s,
    )
