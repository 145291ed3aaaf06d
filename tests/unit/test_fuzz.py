"""Fuzzing the inputs: every ECG reader, DICOM parsing at ingest and the resumable upload's
rules answer a mutated real file (or a hostile value) with a result or their own clear error,
never another exception, within a time and a memory bound per case.

The suite runs a few hundred cases per target; ``bench/fuzz.py`` runs 10,000. The
coverage-guided fuzzer (atheris, ``bench/fuzz_atheris.py``) runs here on two targets for a few
hundred inputs, to show it works; the bench runs it on every byte target.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
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


def test_coverage_guided_fuzzing_finds_no_broken_contract(tmp_path: Path) -> None:
    bench = Path(__file__).resolve().parents[2] / "bench" / "fuzz_atheris.py"
    for name in ("ecg.scp", "dicom.parse_part10"):
        tally = tmp_path / f"{name}.json"
        done = subprocess.run(
            [sys.executable, str(bench), "--child", name, "--runs", "200", "--tally", str(tally)],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        result = json.loads(tally.read_text())
        assert result["failures"] == 0, result["first_failure"]
        # libFuzzer's own runs (the seeds first, then its mutations) all reached the target
        assert result["cases"] >= 200
        assert " cov: " in done.stderr
