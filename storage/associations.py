"""Open DICOM associations, counted in PostgreSQL across listener processes and nodes.

A listener asks for a place before it accepts an association (``open_association``), gives it
back when the association ends (``close_association``), and keeps its places fresh while it
runs (``keep_open``). A process that dies stops keeping its places fresh: after ``STALE_S`` they
no longer count, so a killed process does not hold a facility's places for good.
"""

from __future__ import annotations

from storage.db import Pool, transaction
from storage.queries import q

#: Places not kept fresh for this long belong to a process that is gone.
STALE_S = 60.0
#: How often a running listener keeps its places fresh (well inside ``STALE_S``).
KEEP_EVERY_S = 15.0


async def open_association(pool: Pool, facility: str, holder: str, limit: int) -> int | None:
    """A place for one more association of ``facility``, or None when it holds ``limit``."""
    async with transaction(pool) as conn:
        await conn.execute(q("association_lock"), facility)
        count = await conn.fetchval(q("association_count"), facility, STALE_S)
        if count >= limit:
            return None
        place: int = await conn.fetchval(q("association_open"), facility, holder)
        return place


async def close_association(pool: Pool, place: int) -> None:
    await pool.execute(q("association_close"), place)


async def keep_open(pool: Pool, holder: str) -> None:
    """The holder's places are still in use; forget places that went stale."""
    await pool.execute(q("association_keep"), holder, STALE_S)


async def forget_holder(pool: Pool, holder: str) -> None:
    """Give back every place of a holder that stops."""
    await pool.execute(q("association_forget"), holder)


async def open_counts(pool: Pool) -> dict[str, int]:
    """Open associations per facility, across every process."""
    rows = await pool.fetch(q("association_counts"), STALE_S)
    return {r["facility"]: int(r["open"]) for r in rows}
