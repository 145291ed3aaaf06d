"""Fuzz every input target 10,000 times: cases, failures, slowest case and peak memory.

Usage::

    .venv/bin/python bench/fuzz.py                       # every target, 10,000 cases each
    .venv/bin/python bench/fuzz.py --cases 1000 --target ecg.scp --target dicom.parse_part10
    .venv/bin/python bench/fuzz.py --list

The targets are those of the suite (``tests/fuzzing.py``: every ECG reader and the sniffing
entry point, DICOM parsing at ingest, the resumable upload's rules), drawn by hypothesis from
mutations of real files. Each target runs in its own process, one after the other, so the
resident set printed is that target's alone: before the first case, the most one case grew
it by (its high-water mark is reset before each case), and its highest over the run. A
failure is an exception other than the target's own clear error; its input is kept under
``$TMPDIR/telemed-fuzz-failures/`` and the first lines of its traceback are printed.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402

from tests.fuzzing import keep_failure, run_case, targets  # noqa: E402


def _current_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def run_one(name: str, cases: int) -> dict[str, Any]:
    """Run one target in this process; what it found, as a JSON-able summary."""
    target = targets()[name]
    stats: dict[str, Any] = {"target": name, "cases": 0, "refused": 0, "failures": 0}
    slowest = 0.0
    largest = 0
    high = 0
    kinds: Counter[str] = Counter()
    examples: dict[str, str] = {}
    # Import everything a first case touches before the baseline is taken.
    run_case(target, None)
    stats["rss_before_mib"] = round(_current_rss_mib(), 1)

    @settings(
        max_examples=cases,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(target.inputs)
    def case(value: Any) -> None:
        nonlocal slowest, largest, high
        outcome = run_case(target, value)
        stats["cases"] += 1
        stats["refused"] += outcome.refused
        slowest = max(slowest, outcome.seconds)
        largest = max(largest, outcome.peak_bytes)
        high = max(high, outcome.rss_high_bytes)
        if outcome.unexpected is not None:
            stats["failures"] += 1
            # The exception and where it was raised, positions and sizes left out.
            lines = outcome.unexpected.strip().splitlines()
            where = next(
                (line.strip() for line in reversed(lines) if line.strip().startswith("File")), ""
            )
            kind = re.sub(
                r"\b(0x)?[0-9A-Fa-f]*\d[0-9A-Fa-f]*\b", "N", f"{lines[-1][:120]} ({where})"
            )
            kinds[kind] += 1
            if kind not in examples:
                kept = keep_failure(target, value)
                examples[kind] = f"{kept}\n" + "\n".join(outcome.unexpected.splitlines()[-8:])

    case()
    stats["slowest_s"] = round(slowest, 3)
    stats["largest_case_mib"] = round(largest / 1024**2, 1)
    stats["peak_rss_mib"] = round(high / 1024**2, 1)
    stats["kinds"] = dict(kinds)
    stats["examples"] = examples
    return stats


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--target", action="append", help="a target name (default: all)")
    parser.add_argument("--list", action="store_true", help="list the targets and stop")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # the child: run one target
    args = parser.parse_args()
    if args.list:
        print("\n".join(sorted(targets())))
        return 0
    if args.one:
        print(json.dumps(run_one(args.one, args.cases)))
        return 0
    names = args.target or sorted(targets())
    unknown = sorted(set(names) - set(targets()))
    if unknown:
        parser.error(f"unknown targets: {', '.join(unknown)} (see --list)")
    print(
        f"{'target':28} {'cases':>7} {'refused':>8} {'failures':>8} {'slowest s':>10} "
        f"{'RSS MiB':>8} {'max case +MiB':>13} {'peak RSS MiB':>12} {'wall s':>7}"
    )
    failed = 0
    for name in names:
        started = time.monotonic()
        child = subprocess.run(
            [sys.executable, __file__, "--one", name, "--cases", str(args.cases)],
            capture_output=True,
            text=True,
            check=False,
        )
        if child.returncode != 0:
            print(f"{name:28} the run itself failed:\n{child.stderr[-2000:]}")
            failed += 1
            continue
        stats = json.loads(child.stdout.strip().splitlines()[-1])
        print(
            f"{name:28} {stats['cases']:7d} {stats['refused']:8d} {stats['failures']:8d} "
            f"{stats['slowest_s']:10.3f} {stats['rss_before_mib']:8.1f} "
            f"{stats['largest_case_mib']:13.1f} {stats['peak_rss_mib']:12.1f} "
            f"{time.monotonic() - started:7.0f}",
            flush=True,
        )
        for kind, count in stats["kinds"].items():
            print(
                f"    {count} × {kind}\n      {stats['examples'][kind]}".replace("\n", "\n      ")
            )
        failed += stats["failures"] > 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
