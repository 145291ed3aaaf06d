"""The dashboard's grouping of the period's cases in memory: each group's counts and its
percentiles as ``percentile_cont`` reads them (numpy's linear percentile), whatever the
keys' size (codes, ids past what is counted by value, a single group)."""

from __future__ import annotations

import numpy as np
import pytest

from storage import dashboard
from storage.dashboard import _grouped, _Reported, _Sorted


def _cases(n: int, seed: int) -> _Reported:
    rng = np.random.default_rng(seed)
    ack = rng.exponential(3600.0, n)
    ack[rng.random(n) < 0.2] = np.nan  # not acknowledged
    empty = np.zeros(n, dtype=np.int64)
    return _Reported(
        ids=dict.fromkeys(("facility", "reader", *dashboard.KNOWN), empty),
        sla=rng.integers(0, 3, n),
        bucket=empty,
        final=rng.exponential(7200.0, n).round(3),  # rounded: ties among the seconds
        ack=ack,
    )


def _expected(key: np.ndarray, cases: _Reported) -> list[tuple[int, tuple]]:
    found = []
    for k in np.unique(key):
        mine = key == k
        final, ack = cases.final[mine], cases.ack[mine]
        ack = ack[~np.isnan(ack)]
        found.append(
            (
                int(k),
                (
                    int(mine.sum()),
                    *np.percentile(final, [50, 90]).tolist(),
                    len(ack),
                    *(np.percentile(ack, [50, 90]).tolist() if len(ack) else (None, None)),
                    int((cases.sla[mine] == 1).sum()),
                ),
            )
        )
    return found


@pytest.mark.parametrize(
    ("groups", "offset"), [(1, 0), (3, 0), (400, 0), (400, 2**40), (5, 2**31 - 10)]
)
def test_each_group_has_its_counts_and_percentiles(groups: int, offset: int) -> None:
    cases = _cases(5000, seed=groups)
    key = np.random.default_rng(7).integers(0, groups, 5000) * 3 + offset
    ours = [
        (
            k,
            (
                f.cases,
                f.final_p50_s,
                f.final_p90_s,
                f.acknowledged,
                f.ack_p50_s,
                f.ack_p90_s,
                f.sla_met,
            ),
        )
        for k, f in _grouped(key, _Sorted.of(cases))
    ]
    expected = _expected(key, cases)
    assert [k for k, _ in ours] == [k for k, _ in expected]
    for (_, got), (_, want) in zip(ours, expected, strict=True):
        assert got == pytest.approx(want, rel=1e-12)


def test_a_group_of_no_acknowledged_case_has_no_ack_percentiles() -> None:
    cases = _cases(10, seed=1)
    cases.ack[:] = np.nan
    [(key, figures)] = _grouped(np.zeros(10, dtype=np.int64), _Sorted.of(cases))
    assert (key, figures.cases, figures.acknowledged) == (0, 10, 0)
    assert (figures.ack_p50_s, figures.ack_p90_s) == (None, None)
    assert figures.final_p50_s == pytest.approx(float(np.median(cases.final)))
