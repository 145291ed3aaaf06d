"""What one audit record costs: ``audit_append`` (the chain's lock, the hash, the insert),
alone on one connection and with ``--writers`` connections appending at once, on a fresh
embedded PostgreSQL with the schema and ``--records`` records already chained. Prints the
median and p99 of each write, against an empty statement and the same row inserted into a
plain table (what the commit alone costs), each in its own transaction as the service writes.

    .venv/bin/python bench/audit_append.py --writes 3000 --writers 4 --records 100000
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import asyncpg

from storage import audit
from storage.db import EmbeddedPostgres, close_pool, create_pool
from storage.records import AuditAction
from storage.schema import migrate

_STUDIES = tuple(f"1.2.826.0.1.3680043.8.498.{n}" for n in range(20))


_UNCHAINED = (
    "insert into unchained (at, action, object_type, object_id, studies, address, result,"
    " detail) values (clock_timestamp(), 'qido', 'study', 'query', $1, '127.0.0.1', 'ok', $2)"
)


async def _timed(conn: asyncpg.Connection, writes: int, *, plain: str | None) -> list[float]:
    took = []
    for n in range(writes):
        began = time.perf_counter()
        if plain == "select":
            await conn.execute("select 1")
        elif plain == "insert":
            await conn.execute(_UNCHAINED, list(_STUDIES), f'{{"count": 20, "n": {n}}}')
        else:
            await audit.record(
                conn,
                user_id=None,
                action=AuditAction.QIDO,
                object_type="study",
                object_id="query",
                detail={"count": 20, "n": n},
                studies=_STUDIES,
            )
        took.append(time.perf_counter() - began)
    return took


def _line(name: str, took: list[float]) -> str:
    ordered = sorted(took)
    p99 = ordered[max(0, round(0.99 * len(ordered)) - 1)]
    return f"{name:<34} median {statistics.median(took) * 1e6:8.1f} µs   p99 {p99 * 1e6:8.1f} µs"


async def _together(pool: asyncpg.Pool, writers: int, writes: int) -> list[float]:
    async def one() -> list[float]:
        async with pool.acquire() as conn:
            return await _timed(conn, writes // writers, plain=None)

    return [t for part in await asyncio.gather(*(one() for _ in range(writers))) for t in part]


async def main(writes: int, writers: int, records: int) -> None:
    with tempfile.TemporaryDirectory(prefix="audit-bench-") as tmp:
        embedded = EmbeddedPostgres(Path(tmp) / "pg")
        dsn = await embedded.start()
        pool = await create_pool(dsn, min_size=writers, max_size=writers, command_timeout_s=600)
        try:
            await migrate(pool)
            for _ in range(0, records, 500):  # in short transactions, as the service writes
                await pool.execute(
                    "select audit_append(null, 'bench', 'reader', null, 'read', 'case', n::text,"
                    " null, null, '127.0.0.1', 'ok', null) from generate_series(1, 500) n"
                )
            await pool.execute(
                "create table unchained (like audit including defaults);"
                " alter table unchained alter seq add generated always as identity,"
                " alter prev_hash drop not null, alter hash drop not null"
            )
            async with pool.acquire() as conn:
                plain = await _timed(conn, writes, plain="select")
                unchained = await _timed(conn, writes, plain="insert")
                alone = await _timed(conn, writes, plain=None)
            together = await _together(pool, writers, writes)
        finally:
            await close_pool(pool)
            await embedded.stop()
    print(f"{writes} writes after {records} chained records")
    print(_line("an empty statement", plain))
    print(_line("the same row, unchained, committed", unchained))
    print(_line("one audit record, one writer", alone))
    print(_line(f"one audit record, {writers} writers", together))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--writes", type=int, default=3000)
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--records", type=int, default=100_000)
    args = parser.parse_args()
    asyncio.run(main(args.writes, args.writers, args.records))
