"""Collecting objects no row refers to: orphans older than the grace period go, referenced and
young objects stay, uploads given up are forgotten and their parts collected, and the same
bytes sent again while the collector deletes their old orphan are stored and indexed whole."""

from __future__ import annotations

import asyncio
import io
import os
import time
from datetime import timedelta

import pydicom

from storage import collection
from storage.instance_keys import instance_key_of
from storage.objects import FileObjectStore, ObjectStore
from storage.queries import q
from storage.records import ReceivedVia
from teleradiology.core.dicom import parse_part10
from teleradiology.http.context import OBJECTS
from teleradiology.services.intake import Ingestor
from tests.factory import make_study
from tests.integration.conftest import Api
from tests.integration.dicomweb_support import facility

WEEK = timedelta(days=7)


async def _age(store: ObjectStore, key: str, by: timedelta) -> None:
    """Make an object look written ``by`` ago (files only: S3 keeps its own clock)."""
    if isinstance(store, FileObjectStore):
        then = time.time() - by.total_seconds()
        await asyncio.to_thread(os.utime, store.path_of(key), (then, then))


async def test_old_orphans_go_and_referenced_or_young_objects_stay(
    api: Api, object_store: ObjectStore
) -> None:
    ingestor = Ingestor(api.pool, object_store)
    sender = await facility(api, "HB-XL-WD")
    stored = await ingestor.ingest(
        make_study(modality="CR", count=1)[0], facility=sender, via=ReceivedVia.STOW
    )
    kept = await api.pool.fetchval(
        "select object_key from instance where sop_instance_uid = $1", stored.sop_instance_uid
    )
    orphan = await object_store.put(b"written, then the process died before its index commit")
    young = await object_store.put(b"written a moment ago, its commit on the way")
    file_store = isinstance(object_store, FileObjectStore)
    for key in (kept, orphan):
        await _age(object_store, key, 2 * WEEK)

    # A week's grace: on files only the aged orphan is old enough; on S3 nothing is.
    done = await collection.collect_orphans(api.pool, object_store, grace=WEEK)
    assert done.collected == (1 if file_store else 0)
    assert await object_store.exists(young)
    assert await object_store.exists(kept)
    assert await object_store.exists(orphan) is not file_store

    # No grace: every unreferenced object goes, the indexed one stays.
    await asyncio.sleep(1.1)  # S3 stamps whole seconds
    done = await collection.collect_orphans(api.pool, object_store, grace=timedelta(0))
    assert done.looked_at >= 2
    assert not await object_store.exists(orphan)
    assert not await object_store.exists(young)
    data = await object_store.get(kept)
    assert instance_key_of(data) == kept


async def test_an_upload_given_up_is_forgotten_and_its_parts_collected(api: Api) -> None:
    store = api.app[OBJECTS]
    part = await store.put(b"the first megabyte of a CT a village never finished sending")
    session = await api.pool.fetchval(
        """insert into upload_session (facility_id, created_by, client_key, study_instance_uid,
                                       priority, updated_at)
           select f.id, u.id, 'given-up', '1.2.3', 'medium', now() - interval '8 days'
           from facility f, app_user u where f.code = 'HB-XL-WD' and u.username = 'xlwd.clinic'
           returning id"""
    )
    await api.pool.execute(
        "insert into upload_item (session_id, sop_instance_uid, size_bytes, sha256)"
        " values ($1, '1.2.3.4', 1000, repeat('0', 64))",
        session,
    )
    await api.pool.execute(
        "insert into upload_part (session_id, sop_instance_uid, start_byte, length_bytes,"
        " object_key) values ($1, '1.2.3.4', 0, 60, $2)",
        session,
        part,
    )
    done = await collection.collect_orphans(api.pool, store, grace=timedelta(0))
    assert done.uploads_forgotten == 1
    assert not await store.exists(part)
    assert await api.pool.fetchval("select count(*) from upload_session") == 0


async def test_the_same_bytes_sent_while_their_old_orphan_is_collected_are_stored_whole(
    api: Api, object_store: ObjectStore
) -> None:
    """The collector deletes an orphan at the moment the same instance arrives again (its
    object found already stored, so not written): the ingest waits for the collector, sees the
    object gone, writes it again and indexes it, so no row points at a missing object."""
    ingestor = Ingestor(api.pool, object_store)
    sender = await facility(api, "HB-XL-WD")
    data = make_study(modality="CR", count=1)[0]
    sop_uid = pydicom.dcmread(io.BytesIO(data)).SOPInstanceUID
    # The orphan: the same data set, stored as the archive stores it, never indexed.
    parsed = parse_part10(data)
    key = await object_store.put(parsed.data, key=parsed.key)

    async with api.pool.acquire() as collector, collector.transaction():
        await collector.execute(q("object_lock_exclusive"), key)
        arriving = asyncio.create_task(ingestor.ingest(data, facility=sender, via=ReceivedVia.STOW))
        # The ingest found the object stored and now waits for the collector's lock.
        for _ in range(100):
            waiting = await api.pool.fetchval(
                "select count(*) from pg_locks where locktype = 'advisory' and not granted"
            )
            if waiting:
                break
            await asyncio.sleep(0.05)
        assert waiting == 1
        assert await collector.fetchval(q("objects_unreferenced"), [key]) == key
        await collector.execute(q("object_tombstone_put"), key)
        await object_store.delete(key)
    stored = await arriving

    assert stored.sop_instance_uid == sop_uid
    indexed = await api.pool.fetchval(
        "select object_key from instance where sop_instance_uid = $1", sop_uid
    )
    assert indexed == key
    assert instance_key_of(await object_store.get(key)) == key
    assert await api.pool.fetchval("select count(*) from object_tombstone") == 0
