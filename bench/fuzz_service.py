"""Fuzz the service's ways in 10,000 times each: STOW-RS, resumable upload, C-STORE, ECG.

Usage::

    .venv/bin/python bench/fuzz_service.py                      # 10,000 requests each
    .venv/bin/python bench/fuzz_service.py --cases 500 --way stow

The service runs in this process (the API and the DICOM listener, as the integration tests
run it) on a fresh embedded PostgreSQL and a file object store, with the demo network. Each
request carries one mutated input (``tests/service_fuzz.py``): the answer must be a success
or a clear refusal, and a refused input must leave no index row and no object. Printed per
way in: requests, answers by status, failures (a broken contract, with the first message),
the slowest request and the process's resident set before and at its highest.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import sys
import tempfile
import time
import warnings
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pynetdicom._config  # noqa: E402

from storage.db import EmbeddedPostgres  # noqa: E402
from tests.factory import make_study  # noqa: E402
from tests.integration.conftest import Api, local_settings, serving  # noqa: E402
from tests.service_fuzz import (  # noqa: E402
    c_store_case,
    c_store_seeds,
    ecg_case,
    ecg_upload_seeds,
    stow_case,
    stow_seeds,
    upload_case,
)

WAYS = ("stow", "upload", "c-store", "ecg")


def _rss_mib(field_name: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field_name):
            return int(line.split()[1]) / 1024
    return 0.0


def _case(way: str, api: Api, work: Path) -> Callable[[int, random.Random], Awaitable[int]]:
    stow_inputs, store_inputs, ecg_inputs = stow_seeds(), c_store_seeds(), ecg_upload_seeds()

    async def one(n: int, rnd: random.Random) -> int:
        if way == "stow":
            return await stow_case(api, rnd, stow_inputs)
        if way == "upload":
            (original,) = make_study(count=1)
            return await upload_case(api, rnd, original, key=f"bench-{n}")
        if way == "ecg":
            return await ecg_case(api, rnd, ecg_inputs)
        return await c_store_case(api, rnd, store_inputs, work / "case.dcm")

    return one


async def _run_way(way: str, api: Api, cases: int, work: Path) -> None:
    one = _case(way, api, work)
    answers: Counter[str] = Counter()
    failures: Counter[str] = Counter()
    slowest = 0.0
    before = _rss_mib("VmRSS:")
    started = time.monotonic()
    for n in range(cases):
        rnd = random.Random(n)
        t0 = time.perf_counter()
        try:
            status = await one(n, rnd)
            answers[f"{status:#06x}" if way == "c-store" else str(status)] += 1
        except AssertionError as exc:
            failures[(str(exc).splitlines() or [type(exc).__name__])[0][:160]] += 1
        slowest = max(slowest, time.perf_counter() - t0)
    print(
        f"{way:8} {cases:7d} {sum(failures.values()):8d} {slowest:10.3f} {before:8.1f} "
        f"{_rss_mib('VmHWM:'):12.1f} {time.monotonic() - started:7.0f}   "
        + ", ".join(f"{k}: {v}" for k, v in sorted(answers.items())),
        flush=True,
    )
    for message, count in failures.most_common(10):
        print(f"    {count} × {message}")


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--way", action="append", choices=WAYS, help="default: all")
    args = parser.parse_args()
    # A workstation sends a file's bytes as they are, not as pydicom would rewrite them.
    pynetdicom._config.STORE_SEND_CHUNKED_DATASET = True
    # Every refusal is logged by the service: the table is the output here.
    logging.disable(logging.ERROR)
    warnings.simplefilter("ignore")  # pydicom's notes on what it tolerates
    with tempfile.TemporaryDirectory(prefix="telemed-fuzz-") as tmp:
        work = Path(tmp)
        embedded = EmbeddedPostgres(work / "pg")
        dsn = await embedded.start()
        try:
            # as the integration tests run it (the demo network's titles, bound to no host)
            async with serving(local_settings(dsn, work)) as api:
                print(
                    f"{'way in':8} {'cases':>7} {'failures':>8} {'slowest s':>10} "
                    f"{'RSS MiB':>8} {'peak RSS MiB':>12} {'wall s':>7}   answers"
                )
                for way in args.way or WAYS:
                    await _run_way(way, api, args.cases, work)
        finally:
            await embedded.stop()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
