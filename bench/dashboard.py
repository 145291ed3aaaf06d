"""How fast the administrator's dashboard answers with ``--cases`` cases in the index: a
fresh embedded PostgreSQL with the schema migrated, a Huaibin-sized network, the cases
(received over ``--days`` days, most reported and acknowledged, a few returned, one in
twenty-five escalated to the city after a county draft) and
referrals loaded by COPY, then each dashboard query, the whole dashboard, its JSON API and
its page timed ``--repeats`` times (``--keep DIR`` keeps the database there, and a later
run with the same ``--keep`` measures it again without loading) for the default period (the
last 30 days), a quarter and a year, unfiltered and filtered. Prints p50 and p95 of each,
and the median CPU time one call took in this process and the PostgreSQL server's together
(what other work on the machine changes least).

    PYTHONPATH=$PWD .venv/bin/python bench/dashboard.py --cases 1000000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import psutil
from aiohttp import web

from storage import dashboard, network
from storage.dashboard import Bucket
from storage.db import EmbeddedPostgres, close_pool, create_pool
from storage.schema import migrate
from teleradiology.http.context import WORK_POOL
from teleradiology.roles import create_app
from teleradiology.services.dashboard import DashboardAsk
from teleradiology.services.dashboard import dashboard as whole
from teleradiology.settings import Role, Settings
from tests.dashboard_data import (
    load_cases,
    load_referrals,
    make_network,
    random_cases,
    random_referrals,
)

ZONE = ZoneInfo("Asia/Shanghai")
_BATCH = 100_000


def _line(name: str, took: tuple[list[float], list[float]]) -> str:
    wall, cpu = took
    ordered = sorted(wall)
    p95 = ordered[max(0, round(0.95 * len(ordered)) - 1)]
    return (
        f"{name:<44} p50 {statistics.median(wall) * 1e3:8.1f} ms   p95 {p95 * 1e3:8.1f} ms"
        f"   cpu {statistics.median(cpu) * 1e3:7.0f} ms"
    )


def _cpu_s(server: psutil.Process) -> float:
    """The CPU seconds this process and the PostgreSQL server's processes used so far."""
    total = 0.0
    for process in (psutil.Process(), server, *server.children()):
        with contextlib.suppress(psutil.NoSuchProcess):
            times = process.cpu_times()
            total += times.user + times.system
    return total


async def _timed(
    repeats: int, call: Callable[[], Awaitable[Any]], server: psutil.Process
) -> tuple[list[float], list[float]]:
    """Each call's wall time and CPU time (seconds), after a first call that warms up."""
    await call()  # warm: plans cached, pages in memory
    took, cpu = [], []
    for _ in range(repeats):
        used = _cpu_s(server)
        began = time.perf_counter()
        await call()
        took.append(time.perf_counter() - began)
        cpu.append(_cpu_s(server) - used)
    return took, cpu


async def _load(pool: Any, cases: int, days: int) -> Any:
    net = await make_network(pool)
    end = datetime.now(UTC)
    began = time.perf_counter()
    batches = -(-cases // _BATCH)
    for n in range(batches):  # in the order of time, as the service writes them
        batch = random_cases(
            net,
            min(_BATCH, cases - n * _BATCH),
            end=end - timedelta(days=days * (batches - 1 - n) / batches),
            days=days / batches,
            seed=n,
        )
        await load_cases(pool, batch)
    await load_referrals(pool, random_referrals(net, cases // 30, end=end, days=days))
    await pool.execute("vacuum analyze")
    print(f"loaded {cases} cases in {time.perf_counter() - began:.0f} s")
    return net


async def _queries(pool: Any, net: Any, repeats: int, today: date, server: psutil.Process) -> None:
    admin = await network.user_by_username(pool, net.admin)
    assert admin is not None
    county = await network.facility_id_by_code(pool, net.counties[0])
    for days, label in ((30, "30 days"), (91, "quarter"), (365, "year")):
        since = datetime.combine(today - timedelta(days=days - 1), datetime.min.time(), ZONE)
        until = datetime.combine(today + timedelta(days=1), datetime.min.time(), ZONE)
        by = Bucket.DAY if days <= 62 else Bucket.WEEK if days <= 183 else Bucket.MONTH
        scope = dashboard.DashboardScope(root=admin.facility_id, since=since, until=until)
        narrow = dashboard.DashboardScope(
            root=admin.facility_id,
            since=since,
            until=until,
            facility_id=county,
            specialty="radiology",
        )
        for name, call in (
            (
                "figures (7 dimensions and the trend)",
                lambda s=scope, b=by: dashboard.figures(pool, s, b, ZONE.key),
            ),
            ("intake", lambda s=scope, b=by: dashboard.intake(pool, s, b, ZONE.key)),
            ("referrals", lambda s=scope, b=by: dashboard.referrals(pool, s, b, ZONE.key)),
            ("escalations", lambda s=scope: dashboard.escalations(pool, s)),
            ("second reads", lambda s=scope: dashboard.second_reads(pool, s)),
            ("facilities", lambda s=scope: dashboard.facilities(pool, s.root)),
            (
                "figures, one county's radiology",
                lambda s=narrow, b=by: dashboard.figures(pool, s, b, ZONE.key),
            ),
        ):
            print(_line(f"{label}: {name}", await _timed(repeats, call, server)))
        ask = DashboardAsk(since=today - timedelta(days=days - 1), until=today)
        now = datetime.now(UTC)

        async def the_whole(a: DashboardAsk = ask, n: datetime = now) -> None:
            await whole(pool, admin, a, ZONE, now=n)

        took = await _timed(repeats, the_whole, server)
        print(_line(f"{label}: whole dashboard (13 queries at once)", took))


async def _http(
    dsn: str, data_dir: Path, pool: Any, net: Any, repeats: int, server: psutil.Process
) -> None:
    """The JSON API and the page, through a real server on a free port."""
    settings = Settings(
        data_dir=data_dir,
        database_url=dsn,
        http_host="127.0.0.1",
        roles=frozenset({Role.API}),
        national_id_key=bytes(range(32)),
    )
    app = create_app(settings)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    # Measured once the service has started: its render processes import pydicom and
    # opencv for a few seconds after the start, on the same cores as the requests.
    await app[WORK_POOL].warm()
    admin = await network.user_by_username(pool, net.admin)
    assert admin is not None
    token = await network.create_token(
        pool, admin.id, expires_at=datetime.now(UTC) + timedelta(hours=1)
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession(cookies={"telemed_session": token}) as http:
            year = (date.today() - timedelta(days=364)).isoformat()
            for path in (
                "/api/v1/admin/dashboard",
                "/api/v1/admin/dashboard?by=month&since=" + year,
                "/admin",
                "/admin?by=month&since=" + year,
            ):

                async def get(p: str = path) -> None:
                    headers = {"Authorization": f"Bearer {token}"} if p.startswith("/api") else {}
                    async with http.get(base + p, headers=headers) as r:
                        assert r.status == 200, (p, r.status, await r.text())
                        await r.read()

                print(_line(f"GET {path[:50]}", await _timed(repeats, get, server)))
    finally:
        await runner.cleanup()


async def main(cases: int, days: int, repeats: int, keep: Path | None) -> None:
    with tempfile.TemporaryDirectory(prefix="dashboard-bench-") as tmp:
        folder = keep or Path(tmp)
        embedded = EmbeddedPostgres(folder / "pg")
        dsn = await embedded.start()
        pool = await create_pool(dsn, min_size=2, max_size=8, command_timeout_s=3600)
        try:
            await migrate(pool)
            if await pool.fetchval("select count(*) from case_turnaround") == 0:
                net = await _load(pool, cases, days)
            else:
                print("measuring the cases loaded before in", folder)
                net = await make_network(pool)  # the same network again: an update
            # the server's first process (postmaster.pid's first line); its children serve
            server = psutil.Process(int((folder / "pg" / "postmaster.pid").read_text().split()[0]))
            await _queries(pool, net, repeats, datetime.now(ZONE).date(), server)
            await _http(dsn, Path(tmp) / "data", pool, net, repeats, server)
        finally:
            await close_pool(pool)
            await embedded.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=730, help="the cases are received over")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument(
        "--keep", type=Path, help="a folder for the database, kept to measure again later"
    )
    args = parser.parse_args()
    asyncio.run(main(args.cases, args.days, args.repeats, args.keep))
