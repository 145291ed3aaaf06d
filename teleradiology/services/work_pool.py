"""A process pool for CPU-heavy parsing (pixel decoding and rendering, ECG files), whose
children run under a memory limit and each call under a time limit, and which replaces
itself when a child is lost.

A child that runs past its memory limit fails its call (MemoryError) or dies; one killed
(the kernel's OOM killer, SIGKILL) breaks a `ProcessPoolExecutor` for good, and a call past
its time limit cannot be stopped inside a pool. Either way the pool is replaced by a new one,
the calls that were in it answer `WorkLost` (the request may be sent again), and the next
call runs in the new pool: one hostile image costs one answer, never the service.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import multiprocessing
import resource
import threading
import time
from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from teleradiology.core.errors import WorkLost
from teleradiology.core.language import N_

__all__ = ["WorkLost", "WorkPool"]

log = logging.getLogger(__name__)

_P = ParamSpec("_P")
_T = TypeVar("_T")

#: Address space one child may map (its libraries take about 500 MiB of it).
DEFAULT_MEMORY_BYTES = 3 * 1024**3
#: Longest one call may take.
DEFAULT_TIMEOUT_S = 60.0


def _limit_memory(memory_bytes: int) -> None:
    """In each child, first: refuse it more address space than ``memory_bytes``."""
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        memory_bytes = min(memory_bytes, hard)
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, hard))


def _warm() -> None:
    """Nothing: calling it starts a child."""


@dataclass(frozen=True)
class _Partial:
    """A picklable function-with-keywords."""

    fn: Callable[..., Any]
    kwargs: dict[str, Any]

    def __call__(self, *args: Any) -> Any:
        return self.fn(*args, **self.kwargs)


class WorkPool:
    """Run pure functions in child processes, each call at most ``timeout_s``, each child
    with at most ``memory_bytes`` of address space."""

    def __init__(
        self,
        workers: int,
        *,
        memory_bytes: int = DEFAULT_MEMORY_BYTES,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        name: str = "work",
    ) -> None:
        if workers < 1:
            raise ValueError(f"a work pool needs at least one process, not {workers}")
        if timeout_s <= 0 or memory_bytes <= 0:
            raise ValueError("a work pool's time and memory limits must be positive")
        self.workers = workers
        self.memory_bytes = memory_bytes
        self.timeout_s = timeout_s
        self.name = name
        self._lock = threading.Lock()
        self._executor = self._new_executor()
        #: How many times the pool was replaced (a lost child, a call past its time).
        self.replaced = 0

    def _new_executor(self) -> concurrent.futures.ProcessPoolExecutor:
        # spawn: the service has threads (pynetdicom, asyncpg), so forking it is unsafe.
        return concurrent.futures.ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_limit_memory,
            initargs=(self.memory_bytes,),
        )

    @property
    def executor(self) -> concurrent.futures.ProcessPoolExecutor:
        """The pool of the moment (for `loop.run_in_executor` callers with their own waits)."""
        return self._executor

    def child_pids(self) -> list[int]:
        """The process ids of the present children (for operators and tests)."""
        processes = getattr(self._executor, "_processes", None) or {}
        return list(processes)

    async def warm(self) -> None:
        """Start every child now (imports take about a second), not on the first call."""
        loop = asyncio.get_running_loop()
        executor = self._executor
        with contextlib.suppress(BrokenProcessPool, RuntimeError):
            await asyncio.gather(
                *(loop.run_in_executor(executor, _warm) for _ in range(self.workers))
            )

    async def run(self, fn: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        """``fn(*args, **kwargs)`` in a child; what it raises is raised here.

        Raises
        ------
        WorkLost
            The child was lost or the call ran past the time limit (the pool is replaced).
        MemoryError
            The call needed more memory than a child may have (the child lives on).
        """
        loop = asyncio.get_running_loop()
        call = fn if not kwargs else _Partial(fn, kwargs)
        executor = self._executor
        what = getattr(fn, "__name__", "work")
        try:
            future = loop.run_in_executor(executor, call, *args)
        except (BrokenProcessPool, RuntimeError):
            # Broken (or shut down by a replacement) between two calls.
            self._replace(executor, f"{self.name} pool found broken")
            future = loop.run_in_executor(self._executor, call, *args)
            executor = self._executor
        try:
            async with asyncio.timeout(self.timeout_s):
                return await future
        except TimeoutError:
            self._replace(executor, f"{what} ran past {self.timeout_s:.0f} s", kill=True)
            raise WorkLost(
                N_("处理超过 %(s)s 秒，已停止；请稍后再试"), s=f"{self.timeout_s:.0f}"
            ) from None
        except BrokenProcessPool:
            self._replace(executor, f"a {self.name} process was lost during {what}")
            raise WorkLost(N_("处理此请求的进程已丢失（内存不足或被终止）；请稍后再试")) from None

    def _replace(
        self, broken: concurrent.futures.ProcessPoolExecutor, why: str, *, kill: bool = False
    ) -> None:
        """Put a new pool in place of ``broken`` (once, however many calls saw it break)."""
        with self._lock:
            if self._executor is not broken:
                return
            self._executor = self._new_executor()
            self.replaced += 1
        log.warning("%s: the %s pool is replaced by a new one", why, self.name)
        if kill:
            # A call past its time keeps its child busy: the children go with their pool.
            for process in list((getattr(broken, "_processes", None) or {}).values()):
                with contextlib.suppress(Exception):
                    process.kill()
        broken.shutdown(wait=False, cancel_futures=True)

    def shutdown(self, grace_s: float = 5.0) -> None:
        """Stop the children: a call still running gets ``grace_s`` to end, then it is killed
        (a stop never waits out a stuck call)."""
        with self._lock:
            executor = self._executor
        processes = list((getattr(executor, "_processes", None) or {}).values())
        executor.shutdown(wait=False, cancel_futures=True)
        deadline = time.monotonic() + grace_s
        for process in processes:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join(1.0)


async def offload(
    work: WorkPool | None, fn: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs
) -> _T:
    """``fn`` in the work pool, or in a thread where there is none (the CLI, some tests)."""
    if work is None:
        return await asyncio.to_thread(fn, *args, **kwargs)
    return await work.run(fn, *args, **kwargs)
