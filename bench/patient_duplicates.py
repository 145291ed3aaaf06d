"""How fast the console's candidate duplicates answer with ``--patients`` records in the
county patient index: a fresh embedded PostgreSQL with the schema migrated, a Huaibin-sized
network, the records spread over its clinics (random names, sexes and birth dates; one in
``--every`` also registered at another clinic, one in ten of those with the same national
ID stated at both), then the first page and a deep page timed ``--repeats`` times for the
city's administrator (the whole network) and one county's, with the plan of the first page.
``--every 1000`` makes candidates rare (a page then reads more records to fill).

    PYTHONPATH=$PWD .venv/bin/python bench/patient_duplicates.py --patients 100000
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

import asyncpg

from storage import identity, network
from storage.db import EmbeddedPostgres, close_pool, create_pool
from storage.queries import q
from storage.records import FacilityId
from storage.schema import migrate
from tests.dashboard_data import make_network

#: The records, over the clinics ($1): random names (a surname of 400, a given name of two
#: characters), sexes and birth dates; one in $3 registered at a second clinic too (in the
#: order they came, so the pairs are spread over the index).
_RECORDS = """
insert into patient (issuer_facility_id, patient_id, name, birth_date, sex)
select ($1::bigint[])[1 + ((i + 7 * k) % cardinality($1::bigint[]))], 'P' || i || '-' || k,
       r.name, r.birth_date, r.sex
from generate_series(1, $2::int) i
cross join lateral (
    select chr(19968 + (random() * 400)::int) || '^' || chr(19968 + (random() * 20000)::int)
               || chr(19968 + (random() * 20000)::int) as name,
           to_char(date '1940-01-01' + (random() * 29000)::int, 'YYYYMMDD') as birth_date,
           case when random() < 0.5 then 'M' else 'F' end as sex
    where i > 0) r
cross join lateral generate_series(1, case when i % $3 = 0 then 2 else 1 end) k
order by i, k
"""
#: One in ten of the registered twice with the same national ID stated at both clinics.
_NATIONAL_IDS = """
insert into patient_national_id (patient_id, national_id_digest)
select p.id, md5(split_part(p.patient_id, '-', 1)) from patient p
where substr(split_part(p.patient_id, '-', 1), 2)::bigint % ($1 * 10) = 0
"""


async def _load(pool: asyncpg.Pool, clinics: list[FacilityId], patients: int, every: int) -> None:
    began = time.perf_counter()
    async with pool.acquire() as conn:
        await conn.execute("select setseed(0.42)")
        await conn.execute(_RECORDS, clinics, patients, every)
        await conn.execute(_NATIONAL_IDS, every)
        await conn.execute("analyze patient; analyze patient_national_id")
    total = await pool.fetchval("select count(*) from patient")
    print(f"loaded {total} patient records in {time.perf_counter() - began:.1f} s")


async def _time(pool: asyncpg.Pool, name: str, facilities: list[FacilityId], repeats: int) -> None:
    """The first page, and the twentieth (reached by the cursor of each page before)."""
    before: tuple[int, int] | None = None
    for page in range(1, 21):
        if page in (1, 20):
            took = []
            for _ in range(repeats):
                began = time.perf_counter()
                pairs = await identity.duplicate_candidates(
                    pool, facilities, before=before, limit=50
                )
                took.append(time.perf_counter() - began)
            print(
                f"{name:<8} page {page:<3} {len(pairs):>3} pairs   "
                f"p50 {statistics.median(took) * 1e3:7.1f} ms   max {max(took) * 1e3:7.1f} ms"
            )
        pairs = await identity.duplicate_candidates(pool, facilities, before=before, limit=50)
        if not pairs:
            break
        before = (pairs[-1].b, pairs[-1].a)


def _steps(lines: Iterable[str]) -> list[str]:
    """The plan's scans and joins, and its time (the facility lists left out)."""
    keep = ("Scan", "Join", "Nested Loop", "Execution Time")
    return [line.split(" (cost")[0] for line in lines if any(k in line for k in keep)]


async def main(patients: int, every: int, repeats: int) -> None:
    with tempfile.TemporaryDirectory(prefix="duplicates-bench-") as tmp:
        embedded = EmbeddedPostgres(Path(tmp) / "pg")
        dsn = await embedded.start()
        pool = await create_pool(dsn, min_size=1, max_size=4, command_timeout_s=3600)
        try:
            await migrate(pool)
            net = await make_network(pool)
            clinics = [
                FacilityId(f)
                for f in await pool.fetchval(
                    "select array_agg(id) from facility where code = any($1::text[])",
                    list(net.clinics),
                )
            ]
            await _load(pool, clinics, patients, every)
            admin = await network.user_by_username(pool, net.admin)
            assert admin is not None
            city = await identity.admin_facilities(pool, admin.id)
            county = await pool.fetchval(
                "select array(select facility_subtree(id)) from facility where code = $1",
                net.counties[0],
            )
            await _time(pool, "city", city, repeats)
            await _time(pool, "county", [FacilityId(f) for f in county], repeats)
            for name, facilities in (("city", city), ("county", county)):
                plan = await pool.fetch(
                    "explain analyze " + q("duplicate_candidates"), facilities, 2**62, 2**62, 50
                )
                print(f"plan of the first page, {name}'s administrator:")
                print("\n".join(_steps(r[0] for r in plan)))
        finally:
            await close_pool(pool)
            await embedded.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--every", type=int, default=100, help="one in this many has a copy")
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    asyncio.run(main(args.patients, args.every, args.repeats))
