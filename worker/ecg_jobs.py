"""The worker's ECG step: analyze every ECG waveform instance, whichever way it arrived."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor

from ecg.analysis import analyze_ecg
from ecg.errors import EcgError
from ecg.formats import read_ecg
from storage import ecg
from storage.db import Pool
from storage.ecg import EcgOutcome
from storage.objects import ObjectStore

log = logging.getLogger(__name__)


def analyze_bytes(data: bytes) -> EcgOutcome:
    """Read a stored ECG waveform object and analyze it (CPU-bound: runs in a process pool)."""
    try:
        record = read_ecg(data, None)
        analysis = analyze_ecg(record)
    except (EcgError, ValueError) as exc:
        return EcgOutcome(result=None, error=str(exc)[:500])
    return EcgOutcome(
        result=analysis.to_dict(), error=None, suspected_stemi=bool(analysis.suspected_stemi)
    )


def in_executor(executor: Executor | None) -> Callable[[bytes], Awaitable[EcgOutcome]]:
    async def run(data: bytes) -> EcgOutcome:
        return await asyncio.get_running_loop().run_in_executor(executor, analyze_bytes, data)

    return run


async def analyze_new_ecgs(
    pool: Pool,
    objects: ObjectStore,
    executor: Executor | None,
    on_stemi: Callable[[Pool, int], Awaitable[object]] | None = None,
) -> int:
    """One pass over unanalyzed ECGs; a suspected STEMI raises its study to the STEMI priority."""
    done = await ecg.analyze_pending(pool, objects, in_executor(executor))
    for item in done:
        if item.suspected_stemi:
            log.warning("suspected STEMI in study %s: raised to the STEMI priority", item.study_id)
            if on_stemi is not None:
                await on_stemi(pool, item.study_id)
    return len(done)
