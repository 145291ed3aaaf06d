"""The audit chain's keeping: anchoring its head outside the database, verifying it, and an
administrator's search and export of their network's records (itself audited).

An anchor is a note in the object store, ``audit-anchors/<seq>``, holding the head's record
number and hash: a chain rewritten in the database (every hash recomputed) no longer
matches what was anchored before.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from storage import audit
from storage.audit import Filters, Record
from storage.db import Pool, Queryable
from storage.errors import ObjectNotFound
from storage.objects import ObjectStore
from storage.records import AuditAction, Role, User
from teleradiology.core.access import require_role
from teleradiology.core.audit_chain import ChainWalk, Finding

log = logging.getLogger(__name__)

ANCHORS = "audit-anchors"
#: Records read per page while verifying.
VERIFY_PAGE = 5000


@dataclass(frozen=True, kw_only=True)
class Anchor:
    seq: int
    hash: bytes
    at: datetime


def _anchor_name(seq: int) -> str:
    return f"{ANCHORS}/{seq:020d}"


async def anchor_head(pool: Queryable, objects: ObjectStore) -> Anchor | None:
    """Anchor the chain's head now (nothing when the chain is empty or already anchored
    there)."""
    seq, head_hash = await audit.head(pool)
    if seq == 0:
        return None
    try:
        await objects.get_note(_anchor_name(seq))
    except ObjectNotFound:
        pass
    else:
        return None
    anchor = Anchor(seq=seq, hash=head_hash, at=datetime.now(UTC))
    body = {"seq": seq, "hash": head_hash.hex(), "at": anchor.at.isoformat()}
    await objects.put_note(_anchor_name(seq), json.dumps(body).encode())
    return anchor


async def anchors(objects: ObjectStore) -> dict[int, bytes]:
    """Every anchor in the object store: record number → the hash it had."""
    found: dict[int, bytes] = {}
    for name in await objects.note_names(ANCHORS):
        try:
            note = json.loads(await objects.get_note(name))
            found[int(note["seq"])] = bytes.fromhex(note["hash"])
        except ObjectNotFound:
            continue
        except (ValueError, KeyError, TypeError):
            log.warning("audit anchor %s is unreadable", name)
    return found


@dataclass(frozen=True, kw_only=True)
class Verdict:
    checked: int
    anchors: int
    head_seq: int
    findings: list[Finding]


async def verify(pool: Queryable, objects: ObjectStore, *, page: int = VERIFY_PAGE) -> Verdict:
    """Walk the whole chain and the anchors; the findings name each record that was changed,
    removed or moved."""
    anchored = await anchors(objects)
    head_seq, head_hash = await audit.head(pool)
    walk = ChainWalk(anchors=anchored)
    while links := await audit.chain_page(pool, walk.last_seq, page):
        walk.feed(links)
    findings = walk.finish(head_seq, head_hash)
    return Verdict(
        checked=walk.checked, anchors=len(anchored), head_seq=head_seq, findings=findings
    )


# --- an administrator's search -------------------------------------------------------------

#: Most records one search or one export page returns.
SEARCH_MAX = 10_000


async def search(
    pool: Pool, admin: User, filters: Filters, *, limit: int, export: str | None = None
) -> list[Record]:
    """The records of the administrator's network matching ``filters``, newest first; the
    search is itself audited (``export``: the format, when the records leave as a file).

    Raises
    ------
    Forbidden
        The caller is not an administrator.
    """
    require_role(admin, Role.ADMIN)
    found = await audit.search(pool, admin.id, filters, min(limit, SEARCH_MAX))
    await audit.record(
        pool,
        user_id=admin.id,
        action=AuditAction.AUDIT,
        object_type="audit",
        object_id=export or "search",
        detail={"count": len(found)} | {k: v for k, v in vars(filters).items() if v is not None},
    )
    return found
