"""Instances held for a reader: a C-STORE into a study whose case is claimed is stored but
not added under the reader (storage.index.index_or_hold). The reader who holds the case, or
an administrator of its network, lets the held instances in (indexed as if just received)
or discards them (their objects collected). Each decision is audited.
"""

from __future__ import annotations

import asyncio
from enum import StrEnum

from storage import audit, collection, index
from storage.db import Pool
from storage.index import HeldInstance
from storage.objects import ObjectStore
from storage.records import AuditAction, Role, User
from teleradiology.core.dicom import parse_part10
from teleradiology.core.errors import Forbidden
from teleradiology.core.language import N_
from teleradiology.services import reading


class Decision(StrEnum):
    LET_IN = "let_in"
    DISCARD = "discard"


async def held_for_case(pool: Pool, user: User, case_id: int) -> list[HeldInstance]:
    """The instances held for a case the user may open (its reading audited)."""
    case = await reading.open_case(pool, user, case_id)
    return await index.held_of_case(pool, case.id)


async def decide(
    pool: Pool, objects: ObjectStore, user: User, case_id: int, decision: Decision
) -> int:
    """Let in or discard every instance held for the case; how many.

    Raises
    ------
    Forbidden
        The user neither holds the case nor administers its network.
    NotFound
        The case is not in the user's scope.
    """
    case = await reading.open_case(pool, user, case_id)
    if user.role is not Role.ADMIN and case.claimed_by != user.id:
        raise Forbidden(N_("只有持有病例的阅片医生或管理员能处理暂扣的实例"))
    held = await index.held_of_case(pool, case.id)
    for h in held:
        if decision is Decision.LET_IN:
            await _let_in(pool, objects, h)
        else:
            await index.forget_held(pool, h.id)
            await collection.collect(pool, objects, h.object_key)
    await audit.record(
        pool,
        user_id=user.id,
        action=AuditAction.CONFIGURE,
        object_type="held_instances",
        object_id=case.id,
        detail={
            "decision": decision.value,
            "sop_instance_uids": [h.sop_instance_uid for h in held],
        },
    )
    return len(held)


async def _let_in(pool: Pool, objects: ObjectStore, held: HeldInstance) -> None:
    """Index a held instance from its stored object, then forget the hold (a crash between
    the two leaves a hold whose instance is indexed: letting it in again is a duplicate)."""
    data = await objects.get(held.object_key)
    parsed = await asyncio.to_thread(parse_part10, data)
    await index.index_instance(
        pool,
        header=parsed.header,
        object_key=held.object_key,
        size_bytes=held.size_bytes,
        facility_id=held.facility_id,
        sender_ae=held.sender_ae,
        via=held.via,
    )
    await index.forget_held(pool, held.id)
