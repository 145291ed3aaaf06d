"""The rules of a facility's daily intake limit: which limits apply, and what a refusal says.
Plain values in, plain values (or the error to raise) out."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from storage.records import IntakeLimits
from teleradiology.core.errors import QuotaExceeded
from teleradiology.core.language import N_, Phrase

#: A facility over its daily intake, and what can be done.
OVER_THE_LIMIT = N_("%(code)s 今天（UTC 日）%(what)s：此实例未存储。%(remedy)s")
RAISE_THE_LIMIT = N_("请于 UTC 00:00 后重发，或请网络管理员提高该机构的每日上限")


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
        what = Phrase(N_("已发送 %(n)s 个实例，达到上限"), {"n": limits.instances_per_day})
    else:
        what = Phrase(
            N_("已发送 %(sent)s 字节（上限 %(limit)s），此实例另有 %(size)s 字节"),
            {"sent": sent_bytes, "limit": limits.bytes_per_day, "size": size_bytes},
        )
    said = {"code": facility_code, "what": what, "remedy": Phrase(RAISE_THE_LIMIT)}
    return QuotaExceeded(Phrase(OVER_THE_LIMIT, said), retry_after_s=wait_s)
