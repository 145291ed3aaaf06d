"""What the object guard costs each write that makes a row refer to an object.

Every such statement (an instance's ingest, an upload part, a report's PDF, a DICOM copy, an
ECG's original) calls ``object_guard(key)`` in its transaction: a shared advisory lock on the
key and one look into the tombstones. This times a transaction that only calls it against an
empty one, on a fresh embedded PostgreSQL with the schema and ``--tombstones`` collected keys,
and prints the median and p99 of each and the difference.

    .venv/bin/python bench/object_guard.py --transactions 5000 --tombstones 100000
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import statistics
import tempfile
import time
from pathlib import Path

import asyncpg

from storage.db import EmbeddedPostgres, close_pool, create_pool
from storage.schema import migrate


def _key(n: int, salt: str) -> str:
    return hashlib.sha256(f"{salt}{n}".encode()).hexdigest()


async def _timed(pool: asyncpg.Pool, sql: str, keys: list[str]) -> list[float]:
    took = []
    async with pool.acquire() as conn:
        for key in keys:
            began = time.perf_counter()
            async with conn.transaction():
                await conn.execute(sql, key)
            took.append(time.perf_counter() - began)
    return took


def _line(name: str, took: list[float]) -> str:
    ordered = sorted(took)
    p99 = ordered[max(0, round(0.99 * len(ordered)) - 1)]
    return f"{name:<22} median {statistics.median(took) * 1e6:7.1f} µs   p99 {p99 * 1e6:7.1f} µs"


async def main(transactions: int, tombstones: int) -> None:
    with tempfile.TemporaryDirectory(prefix="guard-bench-") as tmp:
        embedded = EmbeddedPostgres(Path(tmp) / "pg")
        pool = await create_pool(await embedded.start(), min_size=1, max_size=2)
        try:
            await migrate(pool)
            await pool.execute(
                "insert into object_tombstone (object_key)"
                " select encode(sha256(('gone' || n)::bytea), 'hex') from generate_series(1, $1) n",
                tombstones,
            )
            await pool.execute("analyze object_tombstone")
            keys = [_key(n, "live") for n in range(transactions)]
            plain = await _timed(pool, "select $1::text", keys)
            guarded = await _timed(pool, "select object_guard($1)", keys)
        finally:
            await close_pool(pool)
            await embedded.stop()
    print(f"{transactions} transactions, {tombstones} tombstones")
    print(_line("without the guard", plain))
    print(_line("with object_guard", guarded))
    extra = (statistics.median(guarded) - statistics.median(plain)) * 1e6
    print(f"the guard adds {extra:.1f} µs to the median write transaction")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--transactions", type=int, default=5000)
    parser.add_argument("--tombstones", type=int, default=100_000)
    args = parser.parse_args()
    asyncio.run(main(args.transactions, args.tombstones))
