"""The daily intake limit's rules: which limits apply, when the count restarts, what a
refusal says."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from storage.records import IntakeLimits
from teleradiology.core import quotas

DEFAULTS = IntakeLimits(bytes_per_day=1000, instances_per_day=10)


def test_a_facilitys_own_limits_replace_the_defaults_one_by_one() -> None:
    assert quotas.effective(DEFAULTS, None, None) == DEFAULTS
    assert quotas.effective(DEFAULTS, 0, None) == IntakeLimits(
        bytes_per_day=0, instances_per_day=10
    )
    assert quotas.effective(DEFAULTS, None, 3).instances_per_day == 3
    with pytest.raises(ValueError, match="0 \\(none\\) or more"):
        IntakeLimits(bytes_per_day=-1, instances_per_day=0)


def test_the_count_restarts_at_midnight_utc_whatever_the_local_zone() -> None:
    shanghai = timezone(timedelta(hours=8))
    # 07:59:30 in Shanghai is 23:59:30 UTC: 30 s to go.
    assert quotas.seconds_to_next_day(datetime(2026, 12, 5, 7, 59, 30, tzinfo=shanghai)) == 30
    assert quotas.seconds_to_next_day(datetime(2026, 12, 4, 0, 0, tzinfo=UTC)) == 86400
    with pytest.raises(ValueError, match="timezone-aware"):
        quotas.seconds_to_next_day(datetime(2026, 12, 4))


def test_a_refusal_names_the_limit_that_was_reached() -> None:
    now = datetime(2026, 12, 4, 23, 0, tzinfo=UTC)
    by_count = quotas.exceeded("HB-XL-WD", 10, 10, 5, DEFAULTS, now)
    assert "its 10 instances for today" in str(by_count)
    assert by_count.retry_after_s == 3600
    by_bytes = quotas.exceeded("HB-XL-WD", 900, 2, 200, DEFAULTS, now)
    assert "900 of its 1000 bytes" in str(by_bytes)
    assert "this instance has 200" in str(by_bytes)
