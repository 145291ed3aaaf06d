"""Coverage-guided fuzzing (atheris, libFuzzer) of every byte-input target, beside the
hypothesis runs of ``bench/fuzz.py``: cases, failures, coverage reached, slowest case.

Usage::

    .venv/bin/python bench/fuzz_atheris.py                         # every byte target, 10,000 runs
    .venv/bin/python bench/fuzz_atheris.py --runs 2000 --target ecg.scp
    .venv/bin/python bench/fuzz_atheris.py --list

The targets and their seeds are those of ``tests/fuzzing.py`` (the repository's ECG files and
pydicom's test files); the project's modules and pydicom are instrumented, so libFuzzer keeps
the mutations that reach new code, and a target's checksums are recomputed after each
mutation (its ``fix``) so that they reach the decoders behind. Each target runs in its own
process. The contract is the suite's: a result or the target's clear refusal, within the time
and memory bounds of one case; an input that breaks it is kept under
``$TMPDIR/telemed-fuzz-failures/`` and its traceback's last lines are printed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

#: What libFuzzer may build per input beyond the largest seed.
EXTRA_BYTES = 4096


def _byte_targets() -> list[str]:
    from tests.fuzzing import targets

    return [name for name, target in targets().items() if target.seeds]


def _fuzz_one(name: str, runs: int, result: Path) -> None:
    """In this process: fuzz ``name`` for ``runs`` inputs, the tally in ``result`` after each
    (libFuzzer ends the process with ``_exit``: nothing runs after it)."""
    import atheris

    with atheris.instrument_imports(include=["ecg", "teleradiology", "pydicom"]):
        from tests.fuzzing import (
            CASE_MEMORY_BOUND_BYTES,
            CASE_TIME_BOUND_S,
            keep_failure,
            run_case,
            targets,
        )

    target = targets()[name]
    tally: dict[str, Any] = {"target": name, "cases": 0, "refused": 0, "failures": 0}
    tally |= {"slowest_s": 0.0, "peak_growth_mib": 0.0, "first_failure": None}
    started = time.monotonic()

    def one(data: bytes) -> None:
        value = target.fix(data) if target.fix is not None else data
        case = run_case(target, value)
        tally["cases"] += 1
        tally["refused"] += case.refused
        tally["slowest_s"] = max(tally["slowest_s"], case.seconds)
        tally["peak_growth_mib"] = max(tally["peak_growth_mib"], case.peak_bytes / 1024**2)
        broken = case.unexpected or (
            f"took {case.seconds:.1f} s" if case.seconds >= CASE_TIME_BOUND_S else None
        )
        if broken is None and case.peak_bytes >= CASE_MEMORY_BOUND_BYTES:
            broken = f"grew the process by {case.peak_bytes / 1024**2:.0f} MiB"
        if broken is not None:
            tally["failures"] += 1
            if tally["first_failure"] is None:
                kept = keep_failure(target, value)
                tally["first_failure"] = f"{kept}: {broken.strip().splitlines()[-1]}"
        tally["wall_s"] = round(time.monotonic() - started, 1)
        result.write_text(json.dumps(tally))

    corpus = Path(tempfile.mkdtemp(prefix=f"atheris-{name}-"))
    for n, seed in enumerate(target.seeds):
        (corpus / f"seed{n}").write_bytes(seed)
    longest = max(len(seed) for seed in target.seeds) + EXTRA_BYTES
    atheris.Setup(
        [sys.argv[0], f"-runs={runs}", f"-max_len={longest}", "-rss_limit_mb=4096", str(corpus)],
        one,
    )
    atheris.Fuzz()


def _coverage(log: str) -> str:
    """The last coverage figures libFuzzer printed (``cov: N ft: M``)."""
    for line in reversed(log.splitlines()):
        if " cov: " in line:
            words = line.split()
            return (
                f"{words[words.index('cov:') + 1]} edges, {words[words.index('ft:') + 1]} features"
            )
    return "?"


def _run(name: str, runs: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        tally = Path(folder) / "tally.json"
        done = subprocess.run(
            [sys.executable, __file__, "--child", name, "--runs", str(runs), "--tally", str(tally)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode == 0 and tally.exists():
            result: dict[str, Any] = json.loads(tally.read_text())
            result["coverage"] = _coverage(done.stderr)
            return result
    tail = "\n".join(done.stderr.splitlines()[-15:])
    failure = f"the fuzzer stopped (rc {done.returncode}):\n{tail}"
    return {"target": name, "failures": 1, "first_failure": failure}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--target", action="append", help="a target's name (repeat)")
    parser.add_argument("--list", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--tally", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _fuzz_one(args.child, args.runs, args.tally)
        return 0
    names = args.target or _byte_targets()
    if args.list:
        print("\n".join(names))
        return 0
    print(f"{'target':<26} {'cases':>6} {'refused':>7} {'failures':>8} {'slowest s':>9} "
          f"{'growth MiB':>10} {'wall s':>7}  coverage")  # fmt: skip
    failed = 0
    for name in names:
        r = _run(name, args.runs)
        failed += r["failures"]
        print(f"{name:<26} {r.get('cases', 0):>6} {r.get('refused', 0):>7} {r['failures']:>8} "
              f"{r.get('slowest_s', 0):>9.2f} {r.get('peak_growth_mib', 0):>10.1f} "
              f"{r.get('wall_s', 0):>7}  {r.get('coverage', '?')}", flush=True)  # fmt: skip
        if r.get("first_failure"):
            print(f"    first failure: {r['first_failure']}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
