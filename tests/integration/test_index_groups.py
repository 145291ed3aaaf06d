"""Index writes of instances arriving together commit in one transaction: each acknowledged only
after its group's commit, a bad instance failing alone, groups of two processes never waiting
on each other in a circle."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import asyncpg
import pytest

from storage import audit, index
from storage.db import create_pool
from storage.errors import Conflict, is_unavailable
from storage.records import AuditAction, FacilityId, InstanceHeader, Language, ReceivedVia
from teleradiology.core.dicom import parse_part10
from teleradiology.http.context import INGESTOR, OBJECTS
from teleradiology.services import intake
from tests.factory import make_study
from tests.integration.conftest import Api
from tests.integration.dicomweb_support import facility

SENDER = "HB-XL-WD"


async def _writes(api: Api, instances: list[bytes], facility_id: FacilityId) -> list[index.Write]:
    out = []
    for data in instances:
        header = parse_part10(data).header
        key = await api.app[OBJECTS].put(data)
        out.append(_write(header, key, len(data), facility_id))
    return out


def _write(header: InstanceHeader, key: str, size: int, facility_id: FacilityId) -> index.Write:
    return index.Write(
        header=header,
        object_key=key,
        size_bytes=size,
        facility_id=facility_id,
        sender_ae=None,
        via=ReceivedVia.STOW,
        receipt=audit.entry(
            user_id=None,
            action=AuditAction.STOW,
            object_type="instance",
            object_id=header.sop_instance_uid,
            studies=(header.study_instance_uid,),
        ),
    )


async def _indexed(api: Api, uids: list[str]) -> set[str]:
    rows = await api.pool.fetch(
        "select sop_instance_uid from instance where sop_instance_uid = any($1)", uids
    )
    return {r[0] for r in rows}


async def test_writes_arriving_together_commit_in_one_transaction_and_a_bad_one_fails_alone(
    api: Api,
) -> None:
    sender = await facility(api, SENDER)
    other = await facility(api, "HB-XL-ZZ")
    good = await _writes(api, make_study(count=5, patient_id="GRP-1"), sender.id)
    # An instance of this facility's study, sent under another facility: refused (Conflict).
    (first,) = await _writes(api, make_study(count=1, patient_id="GRP-2"), sender.id)
    await index.index_instance(api.pool, **_fields(first))
    (fresh,) = await _writes(api, make_study(count=1, patient_id="GRP-2"), other.id)
    taken = dataclasses.replace(
        fresh,
        header=dataclasses.replace(first.header, sop_instance_uid=fresh.header.sop_instance_uid),
    )
    # A facility that does not exist: the database refuses the row.
    (orphan,) = await _writes(api, make_study(count=1, patient_id="GRP-3"), FacilityId(999_999))

    groups = index.IndexGroups(api.pool)
    results = await asyncio.gather(
        *(groups.write(w) for w in [good[0], good[1], taken, good[2], orphan, good[3], good[4]]),
        return_exceptions=True,
    )
    assert isinstance(results[2], Conflict), results[2]
    assert isinstance(results[4], asyncpg.ForeignKeyViolationError), results[4]
    stored = [r for i, r in enumerate(results) if i not in (2, 4)]
    assert all(isinstance(r, index.IndexResult) for r in stored), stored
    uids = [w.header.sop_instance_uid for w in good]
    assert await _indexed(api, uids) == set(uids)
    assert not await _indexed(api, [taken.header.sop_instance_uid, orphan.header.sop_instance_uid])
    # One transaction: every row of the group was received at its transaction's start.
    assert (
        await api.pool.fetchval(
            "select count(distinct received_at) from instance where sop_instance_uid = any($1)",
            uids,
        )
        == 1
    )
    # The receipts of the stored ones only, each once, on an unbroken chain.
    receipts = await api.pool.fetch(
        "select object_id from audit where object_type = 'instance' and object_id = any($1)",
        [*uids, taken.header.sop_instance_uid, orphan.header.sop_instance_uid],
    )
    assert sorted(r[0] for r in receipts) == sorted(uids)


def _fields(w: index.Write) -> dict[str, Any]:
    return {
        "header": w.header,
        "object_key": w.object_key,
        "size_bytes": w.size_bytes,
        "facility_id": w.facility_id,
        "sender_ae": w.sender_ae,
        "via": w.via,
    }


async def _wait_for_lock_waiter(pool: asyncpg.Pool, blocker_pid: int) -> int:
    """The backend waiting behind ``blocker_pid``'s lock on the audit chain's head."""
    for _ in range(400):
        pid = await pool.fetchval(
            "select pid from pg_stat_activity where $1 = any(pg_blocking_pids(pid)) limit 1",
            blocker_pid,
        )
        if pid is not None:
            return int(pid)
        await asyncio.sleep(0.025)
    raise AssertionError("no group waited on the audit chain")


async def test_a_group_whose_commit_fails_acknowledges_none_of_its_instances(api: Api) -> None:
    sender = await facility(api, SENDER)
    study = make_study(count=6, patient_id="GRP-KILL")
    uids = [parse_part10(d).header.sop_instance_uid for d in study]
    ingestor = api.app[INGESTOR]
    blocker = await api.pool.acquire()
    try:
        # Every group writes its rows, then waits here for the audit chain's head.
        tx = blocker.transaction()
        await tx.start()
        await blocker.execute("select * from audit_head for update")
        sending = asyncio.gather(
            *(ingestor.ingest(d, facility=sender, via=ReceivedVia.STOW) for d in study),
            return_exceptions=True,
        )
        victim = await _wait_for_lock_waiter(api.pool, blocker.get_server_pid())
        await api.pool.execute("select pg_terminate_backend($1)", victim)
        await asyncio.sleep(0.2)
        await tx.rollback()
        async with asyncio.timeout(60):
            results = await sending
    finally:
        await api.pool.release(blocker)
    acknowledged = {u for u, r in zip(uids, results, strict=True) if not isinstance(r, Exception)}
    failed = set(uids) - acknowledged
    assert failed, results
    # Nothing acknowledged is missing; nothing failed was indexed behind the sender's back.
    assert await _indexed(api, uids) == acknowledged
    # Sent again, each is stored once.
    for data in study:
        await ingestor.ingest(data, facility=sender, via=ReceivedVia.STOW)
    assert await _indexed(api, uids) == set(uids)
    assert await api.pool.fetchval(
        "select count(*) from instance where sop_instance_uid = any($1)", uids
    ) == len(uids)


async def test_groups_of_two_processes_writing_the_same_studies_do_not_deadlock(
    api: Api, database_url: str
) -> None:
    sender = await facility(api, SENDER)
    studies = [make_study(count=4, patient_id=f"GRP-DL-{n}") for n in range(4)]
    writes = [w for s in studies for w in await _writes(api, s, sender.id)]
    other_pool = await create_pool(database_url)
    try:
        first, second = index.IndexGroups(api.pool), index.IndexGroups(other_pool)
        # Each side submits every instance, in opposite orders: both lock the same rows.
        async with asyncio.timeout(60):
            results = await asyncio.gather(
                *(first.write(w) for w in writes),
                *(second.write(w) for w in reversed(writes)),
                return_exceptions=True,
            )
    finally:
        await other_pool.close()
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, errors
    outcomes = sorted(r.outcome for r in results if isinstance(r, index.IndexResult))
    assert outcomes.count(index.IndexOutcome.STORED) == len(writes)
    assert outcomes.count(index.IndexOutcome.DUPLICATE) == len(writes)


@pytest.mark.parametrize("count", [1, 3])
async def test_a_write_alone_or_a_few_together_is_acknowledged_after_its_commit(
    api: Api, count: int
) -> None:
    sender = await facility(api, SENDER)
    writes = await _writes(api, make_study(count=count, patient_id=f"GRP-N{count}"), sender.id)
    groups = index.IndexGroups(api.pool)
    results = await asyncio.gather(*(groups.write(w) for w in writes))
    assert [r.outcome for r in results if isinstance(r, index.IndexResult)] == [
        index.IndexOutcome.STORED
    ] * count
    # Seen committed from another connection the moment the write returned.
    uids = [w.header.sop_instance_uid for w in writes]
    assert await _indexed(api, uids) == set(uids)


async def test_a_group_cut_off_inside_an_instance_is_answered_not_now(api: Api) -> None:
    sender = await facility(api, SENDER)
    first, *rest = await _writes(api, make_study(count=4, patient_id="GRP-CUT"), sender.id)
    await index.index_instance(api.pool, **_fields(first))
    uid = first.header.study_instance_uid
    groups = index.IndexGroups(api.pool)
    blocker = await api.pool.acquire()
    try:
        tx = blocker.transaction()
        await tx.start()
        # The group's first instance waits inside its savepoint for the study's row.
        await blocker.execute("select 1 from study where study_instance_uid = $1 for update", uid)
        writing = asyncio.gather(*(groups.write(w) for w in rest), return_exceptions=True)
        victim = await _wait_for_lock_waiter(api.pool, blocker.get_server_pid())
        await api.pool.execute("select pg_terminate_backend($1)", victim)
        async with asyncio.timeout(60):
            results = await writing
        await tx.rollback()
    finally:
        await api.pool.release(blocker)
    # Every instance of the group is "not now" (send again), none a server error.
    assert all(isinstance(r, Exception) and is_unavailable(r) for r in results), results
    assert not await _indexed(api, [w.header.sop_instance_uid for w in rest])
    # Sent again, each is stored.
    again = await asyncio.gather(*(groups.write(w) for w in rest))
    assert [r.outcome for r in again if isinstance(r, index.IndexResult)] == [
        index.IndexOutcome.STORED
    ] * len(rest)


async def test_each_refusal_of_the_index_names_its_kind_and_reads_in_the_senders_language(
    api: Api,
) -> None:
    """Storage says why it refused (a kind), the intake says it in Chinese: a reworded refusal
    in the index's SQL fails here, instead of reaching a clinic in English."""
    sender = await facility(api, SENDER)
    other = await facility(api, "HB-XL-ZZ")
    (first,) = await _writes(api, make_study(count=1, patient_id="RF-1"), sender.id)
    await index.index_instance(api.pool, **_fields(first))
    (fresh,) = await _writes(api, make_study(count=1, patient_id="RF-2"), sender.id)
    header = first.header
    changed = dataclasses.replace(header, dataset_sha256="0" * 64)
    in_other_study = dataclasses.replace(
        fresh.header, series_instance_uid=header.series_instance_uid
    )
    new_uid = fresh.header.sop_instance_uid
    cases = [
        (
            dataclasses.replace(first, facility_id=other.id),
            index.Refused.INSTANCE_OF_ANOTHER_FACILITY,
        ),
        (dataclasses.replace(first, header=changed), index.Refused.STORED_OTHERWISE),
        (
            dataclasses.replace(
                first,
                facility_id=other.id,
                header=dataclasses.replace(header, sop_instance_uid=new_uid),
            ),
            index.Refused.STUDY_OF_ANOTHER_FACILITY,
        ),
        (dataclasses.replace(fresh, header=in_other_study), index.Refused.SERIES_OF_ANOTHER_STUDY),
    ]
    for write, kind in cases:
        with pytest.raises(index.IndexRefusal) as refused:
            await index.index_instance(api.pool, **_fields(write))
        assert refused.value.kind is kind, (kind, str(refused.value))
        said = intake.refusal(refused.value, write.header)
        chinese, english = said.say(Language.ZH_CN), said.say(Language.EN)
        assert any("\u4e00" <= ch <= "\u9fff" for ch in chinese), chinese
        h = write.header
        assert any(
            uid in chinese
            for uid in (h.sop_instance_uid, h.study_instance_uid, h.series_instance_uid)
        )
        assert english.isascii(), english
        assert english != chinese
    # A refusal of no known kind keeps the index's words.
    unknown = intake.refusal(index.IndexRefusal("a new refusal", None), header)
    assert unknown.say(Language.ZH_CN) == "a new refusal"


async def test_an_instance_alone_commits_with_its_receipt_in_one_transaction(api: Api) -> None:
    """No other write waiting: one statement writes the study, the row and the receipt,
    which names the patient of the study made by that same statement. (A receipt that fails
    leaves no row: `test_ingest`.)"""
    sender = await facility(api, SENDER)
    (alone,) = await _writes(api, make_study(count=1, patient_id="ALONE-1"), sender.id)
    result = await index.IndexGroups(api.pool).write(alone)
    assert isinstance(result, index.IndexResult)
    assert result.outcome is index.IndexOutcome.STORED
    uid = alone.header.sop_instance_uid
    row = await api.pool.fetchrow(
        "select a.patients, a.studies from instance i, audit a"
        " where i.sop_instance_uid = $1 and a.object_type = 'instance' and a.object_id = $1",
        uid,
    )
    assert row is not None
    assert row["patients"] == ["HB-XL-WD:ALONE-1"]
    assert row["studies"] == [alone.header.study_instance_uid]
    # Sent again: a duplicate, answered as one, its receipt appended again.
    again = await index.IndexGroups(api.pool).write(alone)
    assert isinstance(again, index.IndexResult)
    assert again.outcome is index.IndexOutcome.DUPLICATE
    receipts = await api.pool.fetchval(
        "select count(*) from audit where object_type = 'instance' and object_id = $1", uid
    )
    assert receipts == 2


async def test_an_instance_alone_whose_receipt_fails_is_not_indexed(api: Api) -> None:
    sender = await facility(api, SENDER)
    (alone,) = await _writes(api, make_study(count=1, patient_id="ALONE-2"), sender.id)
    await api.pool.execute(
        """
        create function refuse_receipts() returns trigger language plpgsql as $$
        begin raise exception 'audit refused'; end $$;
        create trigger refuse_receipts before insert on audit
            for each row execute function refuse_receipts();
        """
    )
    try:
        with pytest.raises(audit.AuditUnavailable):
            await index.IndexGroups(api.pool).write(alone)
    finally:
        await api.pool.execute("drop trigger refuse_receipts on audit")
    assert not await _indexed(api, [alone.header.sop_instance_uid])
