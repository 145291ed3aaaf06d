"""The worker's ECG step: analyze every ECG waveform instance, whichever way it arrived.

An ECG uploaded by ``POST /api/v1/ecg`` (made into a DICOM waveform), sent by C-STORE or by
STOW-RS is one ``instance`` row of an ECG waveform SOP class; the sweep analyzes each once,
before studies are routed, so a suspected STEMI is routed at the STEMI priority from the
start, and a case routed earlier is raised to it (``reading.raise_to_stemi``). The analysis
itself is services/ecg.py's, run in this job's process pool.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from storage.db import Pool
from storage.objects import ObjectStore
from teleradiology.services import ecg, reading
from teleradiology.services.work_pool import WorkPool
from teleradiology.settings import Settings

log = logging.getLogger(__name__)

#: At most this many ECGs per pass; the sweep loops until none is left.
BATCH = 8


def analysis_pool(settings: Settings, workers: int = 1) -> WorkPool:
    """A small process pool for ECG analysis, so numpy work never blocks the event loop;
    its children have the work limits of ``settings``, and a lost child is replaced."""
    return WorkPool(
        workers,
        memory_bytes=settings.work_memory_bytes,
        timeout_s=settings.work_timeout_s,
        name="ECG analysis",
    )


async def _raise_to_stemi(pool: Pool, study_id: int) -> object:
    return await reading.raise_to_stemi(pool, study_id)


async def analyze_new_ecgs(
    pool: Pool,
    objects: ObjectStore,
    executor: WorkPool | None,
    on_stemi: Callable[[Pool, int], Awaitable[object]] | None = _raise_to_stemi,
) -> int:
    """Analyze every unanalyzed ECG; a suspected STEMI raises its study (and its open ECG
    cases) to the STEMI priority and deadline. Returns how many were analyzed."""
    total = 0
    while True:
        done = await ecg.analyze_pending(pool, objects, executor, limit=BATCH)
        for item in done:
            if item.suspected_stemi:
                log.warning(
                    "suspected STEMI in study %s: raised to the STEMI priority", item.study_id
                )
                if on_stemi is not None:
                    await on_stemi(pool, item.study_id)
        total += len(done)
        if len(done) < BATCH:
            return total
