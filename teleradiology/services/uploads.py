"""The resumable upload: a session per study with its manifest, instances received whole or
in byte ranges until none is missing, and a commit that completes the study at once.

The rules (what a manifest says, which part covers what, whether a file is the one named) are
core/uploads.py's; this module runs them over the session in storage, assembles parts into a
file in the spool directory (one part in memory at a time, hashed as it is written: memory
does not grow with the instance), sends each whole file down the one ingest path and collects
the part objects nobody needs any more.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, BinaryIO
from uuid import UUID

from storage import collection, uploads
from storage.db import Conn, Pool, transaction
from storage.errors import ObjectNotFound
from storage.index import IndexOutcome
from storage.objects import ObjectStore
from storage.records import Facility, ManifestItem, Priority, ReceivedVia, UploadState, User
from storage.uploads import Part, Progress, UploadItem, UploadSession
from teleradiology.core import uploads as rules
from teleradiology.core.dicom import instance_identity
from teleradiology.core.errors import BadRequest, Conflict, InvalidState, NotFound, SendAgain
from teleradiology.core.language import N_
from teleradiology.services import routing
from teleradiology.services.intake import Ingestor, Stored

#: An instance's parts that do not make up its file.
PARTS_DIFFER = N_(
    "实例 %(sop)s 的各部分与清单中的文件不符（大小或 SHA-256 不同）；已丢弃：请重发该实例"
)


log = logging.getLogger(__name__)

#: Reads the request body, decompressed, refusing it past the limit it is given.
BodyReader = Callable[[int], Awaitable[bytes]]


@dataclass(frozen=True, kw_only=True)
class SessionView:
    """A session with how much of its manifest is stored and what is still missing."""

    session: UploadSession
    progress: Progress


@dataclass(frozen=True, kw_only=True)
class UploadRequest:
    """A clinic's manifest for one study, with its clinical request."""

    study_instance_uid: str
    items: Sequence[ManifestItem]
    key: str
    priority: Priority
    question: str | None


class Outcome(StrEnum):
    STORED = "stored"
    DUPLICATE = "duplicate"
    ALREADY_STORED = "already stored"
    PARTIAL = "partial"


@dataclass(frozen=True, kw_only=True)
class Received:
    """What became of one body: the instance stored, or a part held (with the byte ranges
    now held of that instance)."""

    outcome: Outcome
    held: tuple[tuple[int, int], ...] = ()


# --- sessions --------------------------------------------------------------------------------


async def open_upload(
    pool: Pool, facility: Facility, user: User, request: UploadRequest
) -> tuple[SessionView, bool]:
    """Open the facility's session for a study, or resume the one opened under the same key
    (adding manifest lines it lacks); True when it was opened now.

    Raises
    ------
    Conflict
        The key belongs to a session of another study, or a line names one of its instances
        with another size or SHA-256.
    InvalidState
        That session is committed and the manifest names instances it does not have.
    """
    async with transaction(pool) as conn:
        created = await uploads.insert_session(
            conn,
            facility_id=facility.id,
            user_id=user.id,
            client_key=request.key,
            study_instance_uid=request.study_instance_uid,
            priority=request.priority,
            clinical_question=request.question,
        )
        session = await _locked(conn, facility, request.key)
        committed = session.state is UploadState.COMMITTED
        rules.check_resume(
            key=request.key,
            session_study=session.study_instance_uid,
            study=request.study_instance_uid,
            conflicting=await uploads.conflicting_items(conn, session.id, request.items),
            committed=committed,
            new_items=await uploads.new_item_count(conn, session.id, request.items)
            if committed
            else 0,
            public_id=session.public_id,
        )
        if not committed:
            await uploads.insert_items(conn, session.id, request.items)
            if not created:
                await uploads.update_request(conn, session.id, request.priority, request.question)
                session = await _locked(conn, facility, request.key)
    if created:
        log.info(
            "upload %s opened by %s (%d instances)",
            session.public_id,
            facility.code,
            len(request.items),
        )
    return await _view(pool, session), created


async def _locked(conn: Conn, facility: Facility, key: str) -> UploadSession:
    session = await uploads.lock_session_by_key(conn, facility.id, key)
    if session is None:  # pragma: no cover - inserted or found under the same lock
        raise RuntimeError("upload session vanished while opening it")
    return session


async def session(pool: Pool, user: User, public_id: str) -> UploadSession:
    """One of the user's facility's sessions, by its public id.

    Raises
    ------
    NotFound
        No such session at the user's facility.
    """
    try:
        uuid = UUID(public_id)
    except ValueError:
        raise NotFound(N_("找不到上传 %(id)s"), id=public_id) from None
    found = await uploads.session_by_id(pool, uuid, user.facility_id)
    if found is None:
        raise NotFound(N_("找不到上传 %(id)s；请用 POST /api/v1/uploads 新开一个"), id=public_id)
    return found


async def view(pool: Pool, user: User, public_id: str) -> SessionView:
    """A session of the user's facility with what is stored and what is missing."""
    return await _view(pool, await session(pool, user, public_id))


async def _view(pool: Pool, found: UploadSession) -> SessionView:
    return SessionView(session=found, progress=await uploads.progress(pool, found.id))


async def recent(pool: Pool, user: User, state: UploadState | None) -> list[UploadSession]:
    """The user's facility's sessions, most recently active first."""
    return await uploads.sessions_of_facility(pool, user.facility_id, state=state, limit=100)


# --- instances -------------------------------------------------------------------------------


async def receive(
    pool: Pool,
    ingestor: Ingestor,
    objects: ObjectStore,
    found: UploadSession,
    facility: Facility,
    sop: str,
    *,
    content_range: str | None,
    read: BodyReader,
) -> Received:
    """Receive one instance of the manifest, or (``content_range``) one byte range of it;
    idempotent: an instance stored before is success. The body is read only when needed,
    and never past what the manifest and the range allow.

    Raises
    ------
    NotFound
        The instance is not in the session's manifest.
    BadRequest
        What arrived is not what the manifest or the range names (nothing is stored).
    """
    item = await uploads.item(pool, found.id, sop)
    if item is None:
        raise NotFound(
            N_("实例 %(sop)s 不在上传 %(id)s 的清单中；请用同一个键再次打开上传以加入"),
            sop=sop,
            id=found.public_id,
        )
    if item.stored:
        # Sent before (the answer was lost on the way back): success, stored once.
        return Received(outcome=Outcome.ALREADY_STORED)
    received = _Receiving(pool, ingestor, objects, found, facility, item)
    if content_range is None:
        data = await read(min(item.size_bytes, rules.MAX_BODY_BYTES))
        rules.check_file(data, _manifest_item(item))
        return await received.whole(data)
    start, end = rules.byte_range(content_range, item.size_bytes)
    chunk = await read(end - start)
    rules.check_part(len(chunk), start, end)
    return await received.part(start, chunk)


def _manifest_item(item: UploadItem) -> ManifestItem:
    return ManifestItem(
        sop_instance_uid=item.sop_instance_uid, size_bytes=item.size_bytes, sha256=item.sha256
    )


class _Receiving:
    """One instance of a session on its way in."""

    def __init__(
        self,
        pool: Pool,
        ingestor: Ingestor,
        objects: ObjectStore,
        found: UploadSession,
        facility: Facility,
        item: UploadItem,
    ) -> None:
        self._pool, self._ingestor, self._objects = pool, ingestor, objects
        self._session, self._facility, self._item = found, facility, item
        self._sop = item.sop_instance_uid

    async def whole(self, data: bytes) -> Received:
        """The whole file (checked against the manifest): ingest it, forget its parts."""
        identity = await asyncio.to_thread(instance_identity, data)
        rules.check_identity(identity, self._sop, self._session.study_instance_uid)
        return await self._stored(
            await self._ingestor.ingest(data, facility=self._facility, **self._request())
        )

    async def whole_file(self, path: Path) -> Received:
        """The whole file assembled on disk (checked against the manifest), consumed."""
        try:
            identity = await asyncio.to_thread(instance_identity, path)
            rules.check_identity(identity, self._sop, self._session.study_instance_uid)
        except BaseException:
            await asyncio.to_thread(path.unlink, True)
            raise
        return await self._stored(
            await self._ingestor.ingest_file(path, facility=self._facility, **self._request())
        )

    def _request(self) -> dict[str, Any]:
        return {
            "via": ReceivedVia.UPLOAD,
            "priority": self._session.priority,
            "clinical_question": self._session.clinical_question,
        }

    async def _stored(self, stored: Stored) -> Received:
        duplicate = stored.outcome is IndexOutcome.DUPLICATE
        await uploads.mark_item_stored(self._pool, self._session.id, self._sop, duplicate=duplicate)
        await self._drop_parts()
        return Received(outcome=Outcome.DUPLICATE if duplicate else Outcome.STORED)

    async def part(self, start: int, chunk: bytes) -> Received:
        """One byte range, kept durably; the whole file once the parts cover it."""
        key = await self._objects.put(chunk)  # durable before the part is acknowledged

        async def write() -> str | None:
            return await uploads.add_part(
                self._pool,
                self._session.id,
                self._sop,
                start_byte=start,
                object_key=key,
                length_bytes=len(chunk),
            )

        replaced = await collection.referring(
            self._pool, self._objects, [key], write, rewrite=lambda: self._objects.put(chunk)
        )
        if replaced is not None:
            await collect(self._pool, self._objects, [replaced])
        assembled = await self._assembled()
        if assembled is None:
            return Received(outcome=Outcome.PARTIAL, held=await self._held())
        path, size, sha256 = assembled
        try:
            rules.check_received(size, sha256, _manifest_item(self._item))
        except (BadRequest, SendAgain):
            await asyncio.to_thread(path.unlink, True)
            await self._drop_parts()
            raise BadRequest(PARTS_DIFFER, sop=self._sop) from None
        return await self.whole_file(path)

    async def _assembled(self) -> tuple[Path, int, str] | None:
        """When the parts held cover the file: the file assembled in the spool directory
        (one part in memory at a time, hashed as it is written), its size and SHA-256."""
        held = await uploads.parts(self._pool, self._session.id, self._sop)
        if not rules.covers([(p.start_byte, p.end_byte) for p in held], self._item.size_bytes):
            return None
        path = await asyncio.to_thread(self._ingestor.new_spool_file)
        out = await asyncio.to_thread(path.open, "wb")
        digest, written = hashlib.sha256(), 0
        try:
            for part in held:
                if part.end_byte <= written:
                    continue  # inside what earlier parts covered
                piece = await self._piece(part)
                if piece is None:
                    await asyncio.to_thread(out.close)
                    await asyncio.to_thread(path.unlink, True)
                    return None
                fresh = memoryview(piece)[written - part.start_byte : part.length_bytes]
                await asyncio.to_thread(_append, out, digest, fresh)
                written += len(fresh)
            await asyncio.to_thread(out.close)
        except BaseException:
            await asyncio.to_thread(out.close)
            await asyncio.to_thread(path.unlink, True)
            raise
        return path, written, digest.hexdigest()

    async def _piece(self, part: Part) -> bytes | None:
        try:
            return await self._objects.get(part.object_key)
        except ObjectNotFound:
            # Collected by a concurrent upload of the same bytes: that part must come again.
            await uploads.forget_part(self._pool, self._session.id, self._sop, part.start_byte)
            return None

    async def _held(self) -> tuple[tuple[int, int], ...]:
        done = await uploads.progress(self._pool, self._session.id)
        return next((m.received for m in done.missing if m.sop_instance_uid == self._sop), ())

    async def _drop_parts(self) -> None:
        keys = await uploads.drop_parts(self._pool, self._session.id, self._sop)
        await collect(self._pool, self._objects, keys)


def _append(out: BinaryIO, digest: Any, piece: memoryview) -> None:
    out.write(piece)
    digest.update(piece)


async def remove(pool: Pool, objects: ObjectStore, found: UploadSession, sop: str) -> SessionView:
    """Take an instance that will not be sent out of the manifest (it was refused, say).

    Raises
    ------
    Conflict
        The session is committed.
    NotFound
        The instance is not in the manifest.
    InvalidState
        The instance is stored already; it stays part of the upload.
    """
    if found.state is UploadState.COMMITTED:
        raise Conflict(N_("上传 %(id)s 已提交；没有可移除的"), id=found.public_id)
    async with transaction(pool) as conn:
        keys = await uploads.drop_parts(conn, found.id, sop)
        if not await uploads.delete_item(conn, found.id, sop):
            if await uploads.item(conn, found.id, sop) is None:
                raise NotFound(N_("实例 %(sop)s 不在此上传的清单中"), sop=sop)
            raise InvalidState(N_("实例 %(sop)s 已存储；保留"), sop=sop)
        await uploads.touch_session(conn, found.id)
    await collect(pool, objects, keys)
    return await _view(pool, found)


async def commit(pool: Pool, facility: Facility, found: UploadSession) -> SessionView:
    """Every manifest instance stored: the study is complete now. Idempotent.

    Raises
    ------
    Conflict
        Instances are still missing (the message names the first).
    """
    if found.state is UploadState.OPEN:
        done = await uploads.progress(pool, found.id)
        missing = [m.sop_instance_uid for m in done.missing]
        rules.check_complete(missing, done.total, found.public_id)
        # Ready first, then committed: a retry after a failure in between does both again.
        await routing.mark_ready(pool, found.study_instance_uid, facility.id)
        if await uploads.commit(pool, found.id) is None:
            raise Conflict(N_("提交时又加入了实例；请再次提交"))
        log.info("upload %s committed by %s", found.public_id, facility.code)
        found = await uploads.session_by_id(pool, found.public_id, facility.id) or found
    return await _view(pool, found)


async def collect(pool: Pool, objects: ObjectStore, keys: Sequence[str]) -> None:
    """Delete the part objects no row refers to any more."""
    for key in set(keys):
        await collection.collect(pool, objects, key)
