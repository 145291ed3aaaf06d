"""How long to wait before trying again what did not arrive: doubling from 5 s, at most
two hours between attempts, given up after the last."""

from __future__ import annotations

from datetime import timedelta

FIRST_RETRY = timedelta(seconds=5)
LONGEST_RETRY = timedelta(hours=2)


def retry_delay(attempts: int, most: int) -> timedelta | None:
    """How long to wait after ``attempts`` failed attempts of at most ``most``; None: give
    up."""
    if attempts >= most:
        return None
    return min(FIRST_RETRY * 2 ** max(attempts - 1, 0), LONGEST_RETRY)
