"""The work pool's limits, on real child processes: a call past its time, a call past its
memory, a child killed during a call; after each, the next call succeeds."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from concurrent.futures.process import BrokenProcessPool

import pytest

from teleradiology.core import rendering
from teleradiology.services.work_pool import WorkLost, WorkPool

MIB = 1024**2


async def _busy(pool: WorkPool) -> None:
    """Wait until the pool has a call running in a child."""
    for _ in range(500):
        if getattr(pool.executor, "_pending_work_items", None) and pool.child_pids():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("no call reached the pool")


async def test_a_child_killed_during_a_call_is_replaced_and_the_next_call_succeeds() -> None:
    pool = WorkPool(2, memory_bytes=1024 * MIB, timeout_s=30, name="test")
    try:
        await pool.warm()
        first = set(pool.child_pids())
        call = asyncio.ensure_future(pool.run(time.sleep, 20))
        await _busy(pool)
        for pid in first:
            os.kill(pid, signal.SIGKILL)
        with pytest.raises(WorkLost, match="lost"):
            async with asyncio.timeout(10):
                await call
        assert pool.replaced == 1
        pids = await asyncio.gather(*(pool.run(os.getpid) for _ in range(4)))
        assert not set(pids) & first
        assert await pool.run(sum, [1, 2, 3]) == 6
    finally:
        pool.shutdown()


async def test_a_call_past_its_time_is_stopped_and_its_child_does_not_linger() -> None:
    pool = WorkPool(1, memory_bytes=1024 * MIB, timeout_s=1.0, name="test")
    try:
        await pool.warm()
        (stuck,) = pool.child_pids()
        started = time.monotonic()
        with pytest.raises(WorkLost, match="longer than 1 s"):
            await pool.run(time.sleep, 60)
        assert time.monotonic() - started < 5
        for _ in range(100):
            try:
                os.kill(stuck, 0)
            except ProcessLookupError:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the stuck child is still running")
        assert await pool.run(os.getpid) != stuck
    finally:
        pool.shutdown()


async def test_a_call_past_the_memory_limit_fails_and_the_child_serves_on() -> None:
    pool = WorkPool(1, memory_bytes=1024 * MIB, timeout_s=30, name="test")
    try:
        before = await pool.run(os.getpid)
        # 2 GiB in a child allowed 1 GiB of address space: refused before it is touched.
        with pytest.raises(MemoryError):
            await pool.run(bytearray, 2 * 1024 * MIB)
        assert len(await pool.run(bytearray, 64 * MIB)) == 64 * MIB
        assert await pool.run(os.getpid) == before
        assert pool.replaced == 0
    finally:
        pool.shutdown()


async def test_a_stop_does_not_wait_out_a_stuck_call() -> None:
    pool = WorkPool(1, memory_bytes=1024 * MIB, timeout_s=60, name="test")
    await pool.warm()
    (child,) = pool.child_pids()
    stuck = asyncio.ensure_future(pool.run(time.sleep, 60))
    await _busy(pool)
    started = time.monotonic()
    await asyncio.to_thread(pool.shutdown, 1.0)
    assert time.monotonic() - started < 5
    with pytest.raises(ProcessLookupError):
        os.kill(child, 0)
    stuck.cancel()
    with contextlib.suppress(asyncio.CancelledError, WorkLost, BrokenProcessPool):
        await stuck


def _loaded(module: str) -> bool:
    return module in sys.modules


async def test_a_warmed_child_holds_only_what_the_pool_needs() -> None:
    """A child imports what its calls need: a rendering child never loads the word tables
    of every layer (they cost the service about 100 MB for each child)."""
    pool = WorkPool(1, memory_bytes=1024 * MIB, timeout_s=30, name="test")
    try:
        await pool.warm()
        await pool.run(rendering.warm)
        assert await pool.run(_loaded, "teleradiology.core.rendering")
        assert not await pool.run(_loaded, "teleradiology.core.words")
    finally:
        await asyncio.to_thread(pool.shutdown)
