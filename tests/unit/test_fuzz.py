"""Fuzzing the inputs: every ECG reader, DICOM parsing at ingest and the resumable upload's
rules answer a mutated real file (or a hostile value) with a result or their own clear error,
never another exception, within a time and a memory bound per case.

The suite runs a few hundred cases per target; ``bench/fuzz.py`` runs 10,000.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from tests.fuzzing import assert_contract, targets

#: Per target in the suite: enough to cover each seed and each mutation many times over.
CI_CASES = 200


@pytest.mark.parametrize("name", sorted(targets()))
def test_fuzzed_input_gets_a_result_or_a_clear_refusal(name: str) -> None:
    target = targets()[name]

    @settings(
        max_examples=CI_CASES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(target.inputs)
    def case(value: Any) -> None:
        assert_contract(target, value)

    case()
