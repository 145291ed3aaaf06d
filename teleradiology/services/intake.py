"""One ingest path for every way an instance arrives: C-STORE, STOW-RS, uploads.

Parse the header (pixels checked, not decoded), write the object durably under the SHA-256 of
its bytes, commit the index row in one statement: only then is the instance stored. Bytes
arrive whole (`Ingestor.ingest`) or as a file received on disk (`Ingestor.ingest_file`: a
C-STORE data set streamed by pynetdicom, a large STOW-RS part), which is hashed and renamed
into the object store without being read into memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from storage import audit, collection, index, network, quotas
from storage.db import Pool
from storage.errors import Conflict, ObjectCollected
from storage.index import Held, IndexOutcome, IndexResult
from storage.objects import FileObjectStore, ObjectStore
from storage.records import (
    AuditAction,
    AuditResult,
    Facility,
    InstanceHeader,
    IntakeLimits,
    Priority,
    ReceivedVia,
    Role,
    StudyId,
    User,
)
from teleradiology.core import quotas as quota_rules
from teleradiology.core.access import require_role
from teleradiology.core.dicom import PREAMBLE_LENGTH, ParsedFile, parse_part10, parse_part10_file
from teleradiology.core.errors import (
    DuplicateConflict,
    NotFound,
    QuotaExceeded,
    SendAgain,
    ServiceError,
)
from teleradiology.core.language import N_

log = logging.getLogger(__name__)


class StudyMismatch(ServiceError):
    """The instance belongs to another study than the one the request named; not stored."""


@dataclass(frozen=True, kw_only=True)
class Stored:
    """The outcome of storing one instance."""

    sop_instance_uid: str
    sop_class_uid: str
    study_instance_uid: str
    outcome: IndexOutcome
    study_id: StudyId
    #: Patient attributes that differ from the study's: stored, recorded for administrators.
    identity_conflicts: tuple[str, ...] = ()
    #: The study was already complete (a late instance; its readers were told).
    late: bool = False
    #: Held for the reader who claimed the study's case (C-STORE): stored, not yet added.
    held: bool = False


async def sending_facility(pool: Pool, user: User) -> Facility:
    """The facility a clinic user sends studies and ECGs for.

    Raises
    ------
    Forbidden
        The user is not a clinic operator.
    NotFound
        Their facility has left the network.
    """
    require_role(user, Role.CLINIC)
    facility = await network.facility_by_id(pool, user.facility_id)
    if facility is None:
        raise NotFound(N_("您的机构已不在网络中"))
    return facility


@dataclass
class _Counted:
    """An instance counted against its facility's intake: the count under way, and whether
    it was stored as new (``kept``)."""

    reserving: asyncio.Future[date | None]
    over: Callable[[], Awaitable[QuotaExceeded]]
    known: Callable[[str], Awaitable[bool]]
    kept: bool = False

    async def check(self, sop_instance_uid: str) -> None:
        """Wait for the count. An instance past the facility's daily limit is refused,
        unless it is stored already (the index decides: a duplicate, or a conflict).

        Raises
        ------
        QuotaExceeded
            It would take the facility past its daily limit; nothing is counted.
        """
        if await self.reserving is None and not await self.known(sop_instance_uid):
            raise await self.over()


async def _settled(reserving: asyncio.Future[date | None]) -> date | None:
    """The day an instance was counted on, once counting ended; None when it was not
    counted (or counting failed: its error reached the caller, or the block failed first)."""
    try:
        return await reserving
    except Exception:
        return None


class Ingestor:
    """Parses, writes the object durably, then commits the index row: only then success."""

    def __init__(
        self,
        pool: Pool,
        objects: ObjectStore,
        *,
        ae_cache_s: float = 5.0,
        limits: IntakeLimits | None = None,
        spool_dir: Path | None = None,
    ) -> None:
        self._pool = pool
        self._objects = objects
        #: Each facility's daily intake limits by default (a facility's own come first).
        self._limits = limits or IntakeLimits(bytes_per_day=0, instances_per_day=0)
        self._ae_cache_s = ae_cache_s
        self._ae_cache: dict[str, tuple[float, Facility | None]] = {}
        if isinstance(objects, FileObjectStore):
            self._spool = objects.spool_dir
        else:
            # Large: C-STORE data sets, STOW-RS parts and assembled uploads of up to
            # max_instance_bytes each wait here (the data directory, not a small /tmp).
            self._spool = spool_dir or Path(tempfile.gettempdir()) / "telemed-spool"
        self._spool_ready = False
        #: Index writes of instances arriving together commit together.
        self._groups = index.IndexGroups(pool)

    @property
    def spool_dir(self) -> Path:
        """Where received files wait for `ingest_file`: beside the objects when on disk, else
        the ``spool_dir`` given (the data directory's)."""
        if not self._spool_ready:
            self._spool.mkdir(parents=True, exist_ok=True)
            _remove_stale(self._spool)
            self._spool_ready = True
        return self._spool

    def new_spool_file(self) -> Path:
        """An empty file in `spool_dir` for a caller to write one received instance into."""
        fd, name = tempfile.mkstemp(dir=self.spool_dir, prefix="rx-", suffix=".dcm")
        os.close(fd)
        return Path(name)

    async def facility_for_ae(self, ae_title: str) -> Facility | None:
        """The facility a calling AE title belongs to (cached briefly), or None."""
        ae_title = ae_title.strip()
        now = time.monotonic()
        cached = self._ae_cache.get(ae_title)
        if cached is not None and now - cached[0] < self._ae_cache_s:
            return cached[1]
        facility = await network.facility_by_ae(self._pool, ae_title)
        self._ae_cache[ae_title] = (now, facility)
        return facility

    async def ingest(
        self,
        data: bytes,
        *,
        facility: Facility,
        via: ReceivedVia,
        sender_ae: str | None = None,
        priority: Priority = Priority.MEDIUM,
        clinical_question: str | None = None,
        study_instance_uid: str | None = None,
    ) -> Stored:
        """Store one Part-10 file for a facility.

        ``study_instance_uid``, when given, is the study the request named: an instance of
        another study is refused before anything is stored.

        Raises
        ------
        InvalidDicom
            The bytes are not a storable DICOM instance; nothing is stored.
        StudyMismatch
            The instance is not of the named study; nothing is stored.
        DuplicateConflict
            Same SOP Instance UID as a stored instance, other content; the first copy stays.
        """
        async with self._counted(facility, len(data)) as counted:
            parsed = await asyncio.to_thread(parse_part10, data)
            _check_study(parsed.header, study_instance_uid)
            await counted.check(parsed.header.sop_instance_uid)
            key = await self._objects.put(parsed.data, key=parsed.key)
            stored = await self._commit(
                parsed.header,
                key,
                len(parsed.data),
                facility=facility,
                via=via,
                sender_ae=sender_ae,
                priority=priority,
                clinical_question=clinical_question,
                rewrite=lambda: self._objects.put(parsed.data, key=parsed.key),
            )
            counted.kept = stored.outcome is IndexOutcome.STORED
        return stored

    async def ingest_file(
        self,
        path: Path,
        *,
        facility: Facility,
        via: ReceivedVia,
        sender_ae: str | None = None,
        priority: Priority = Priority.MEDIUM,
        clinical_question: str | None = None,
        study_instance_uid: str | None = None,
        size_bytes: int | None = None,
    ) -> Stored:
        """Store one Part-10 file received on disk, as `ingest`, without loading its pixels.

        The file is consumed: renamed into the object store (when it is in `spool_dir` of a
        file store) or copied and removed. Its preamble is zeroed in place first.
        ``size_bytes`` is the file's size when the caller has it (it wrote the file).

        Raises
        ------
        InvalidDicom, StudyMismatch, DuplicateConflict
            As `ingest`; the file is removed.
        """
        path = Path(path)
        adopted = False
        async with contextlib.AsyncExitStack() as stack:
            try:
                # The intake is counted while the file is read (the counters' commit and
                # the parse overlap); the file's size is what it counts.
                size = size_bytes
                if size is None:
                    size = (await asyncio.to_thread(path.stat)).st_size
                counted = await stack.enter_async_context(self._counted(facility, size))
                parsed = await asyncio.to_thread(_parse_file, path)
                _check_study(parsed.header, study_instance_uid)
                await counted.check(parsed.header.sop_instance_uid)
                if isinstance(self._objects, FileObjectStore) and path.parent == self.spool_dir:
                    key = await self._objects.adopt_file(path, parsed.key)
                    adopted = True  # renamed into place or removed: nothing left to clean up
                else:
                    key = await self._objects.put_file(path)
            finally:
                if not adopted:
                    with contextlib.suppress(FileNotFoundError):
                        await asyncio.to_thread(path.unlink)
            stored = await self._commit(
                parsed.header,
                key,
                parsed.size_bytes,
                facility=facility,
                via=via,
                sender_ae=sender_ae,
                priority=priority,
                clinical_question=clinical_question,
            )
            counted.kept = stored.outcome is IndexOutcome.STORED
        return stored

    @contextlib.asynccontextmanager
    async def _counted(self, facility: Facility, size_bytes: int) -> AsyncIterator[_Counted]:
        """Count an instance against the facility's daily intake while the block stores it
        (the count starts at once; the block calls ``check`` before it stores anything);
        given back unless the block sets ``kept`` (a new instance was stored). An instance
        stored before is not counted past the limit: a resend stays safe (stored once)."""
        counted = _Counted(
            reserving=asyncio.ensure_future(
                quotas.reserve(self._pool, facility.id, size_bytes, self._limits)
            ),
            over=lambda: self._over_quota(facility, size_bytes),
            known=lambda uid: quotas.known_instance(self._pool, uid),
        )
        try:
            yield counted
        finally:
            day = await _settled(counted.reserving)
            if day is not None and not counted.kept:
                try:
                    await quotas.release(self._pool, facility.id, day, size_bytes)
                except Exception as exc:  # the count stays high until the day ends
                    log.warning("intake count not given back (%s)", type(exc).__name__)

    async def _over_quota(self, facility: Facility, size_bytes: int) -> QuotaExceeded:
        sent = await quotas.today(self._pool, facility.id)
        limits = quota_rules.effective(
            self._limits, sent.own_bytes_per_day, sent.own_instances_per_day
        )
        log.warning("refused an instance from %s: daily intake limit reached", facility.code)
        return quota_rules.exceeded(
            facility.code, sent.bytes, sent.instances, size_bytes, limits, datetime.now(UTC)
        )

    async def _commit(
        self,
        header: InstanceHeader,
        key: str,
        size_bytes: int,
        *,
        facility: Facility,
        via: ReceivedVia,
        sender_ae: str | None,
        priority: Priority,
        clinical_question: str | None,
        rewrite: Callable[[], Awaitable[object]] | None = None,
    ) -> Stored:
        pending = index.Write(
            header=header,
            object_key=key,
            size_bytes=size_bytes,
            facility_id=facility.id,
            sender_ae=sender_ae,
            via=via,
            priority=priority,
            clinical_question=clinical_question,
            # A C-STORE (the calling AE title's word) does not change a case under its
            # reader: held for them. Uploads and STOW-RS come from signed-in users.
            hold_for_reader=via is ReceivedVia.DIMSE,
            # Acknowledged only once on the record: the audit record commits with the row.
            receipt=_receipt(header, facility, via, sender_ae, AuditResult.OK),
        )

        def write() -> Awaitable[IndexResult | Held]:
            return self._groups.write(pending)

        try:
            result = await self._referring(key, write, rewrite)
        except Conflict as exc:
            await self._refuse_conflict(exc, header, key, facility, via, sender_ae)
            raise refusal(exc, header) from None
        if isinstance(result, Held):
            if result.object_key != key:
                await self._collect(key)
            if result.new:
                log.info(
                    "instance from %s held for the reader of case %d", facility.code, result.case_id
                )
            return Stored(
                sop_instance_uid=header.sop_instance_uid,
                sop_class_uid=header.sop_class_uid,
                study_instance_uid=header.study_instance_uid,
                outcome=IndexOutcome.STORED,
                study_id=result.study_id,
                held=True,
            )
        if result.outcome is IndexOutcome.DUPLICATE and result.object_key != key:
            # Same data set under another file meta header: the first file is kept.
            await self._collect(key)
        if result.identity_conflicts:
            log.warning(
                "instance from %s differs from its study in %s; recorded",
                facility.code,
                ", ".join(result.identity_conflicts),
            )
        return Stored(
            sop_instance_uid=header.sop_instance_uid,
            sop_class_uid=header.sop_class_uid,
            study_instance_uid=header.study_instance_uid,
            outcome=result.outcome,
            study_id=result.study_id,
            identity_conflicts=result.identity_conflicts,
            late=result.late,
        )

    async def _refuse_conflict(
        self,
        exc: Conflict,
        header: InstanceHeader,
        key: str,
        facility: Facility,
        via: ReceivedVia,
        sender_ae: str | None,
    ) -> None:
        """Record an instance refused for content conflicting with its first copy, and
        collect its object (the first copy is kept)."""
        await index.record_rejection(
            self._pool,
            facility_id=facility.id,
            sender_ae=sender_ae,
            sop_instance_uid=header.sop_instance_uid,
            reason=str(exc),
            object_key=key,
            sop_class_uid=header.sop_class_uid or None,
        )
        await self._collect(key)
        log.warning("refused an instance from %s: conflicting content", facility.code)
        await audit.record_all(
            self._pool, [_receipt(header, facility, via, sender_ae, AuditResult.FAILED)]
        )

    async def _referring(
        self,
        key: str,
        write: Callable[[], Awaitable[IndexResult | Held]],
        rewrite: Callable[[], Awaitable[object]] | None,
    ) -> IndexResult | Held:
        """Index the instance; if its object was collected meanwhile (the same bytes, once an
        orphan, sent again), write it again when the bytes are still at hand, else ask the
        sender to send again."""
        try:
            return await collection.referring(
                self._pool, self._objects, [key], write, rewrite=rewrite
            )
        except ObjectCollected:
            raise SendAgain(N_("此实例到达时，档案库正在清除它的一个旧副本；请重发")) from None

    async def _collect(self, key: str) -> None:
        """Delete an object no row refers to (the lock keeps a concurrent writer safe)."""
        await collection.collect(self._pool, self._objects, key)


#: Each refusal of the index as its sender reads it: the phrase, and the header's UID it names.
_REFUSALS: dict[index.Refused, tuple[str, str]] = {
    index.Refused.INSTANCE_OF_ANOTHER_FACILITY: (
        N_("实例 %(uid)s 由另一机构发送"),
        "sop_instance_uid",
    ),
    index.Refused.STORED_OTHERWISE: (
        N_("实例 %(uid)s 已以不同内容存储；保留先存的副本"),
        "sop_instance_uid",
    ),
    index.Refused.HELD_OTHERWISE: (
        N_("实例 %(uid)s 已以不同内容暂存；保留暂存的副本"),
        "sop_instance_uid",
    ),
    index.Refused.STUDY_OF_ANOTHER_FACILITY: (
        N_("检查 %(uid)s 由另一机构发送；一个检查只属于一个机构"),
        "study_instance_uid",
    ),
    index.Refused.SERIES_OF_ANOTHER_STUDY: (
        N_("序列 %(uid)s 已属于另一个检查"),
        "series_instance_uid",
    ),
}


def refusal(exc: Conflict, header: InstanceHeader) -> DuplicateConflict:
    """The index's refusal of an instance as its sender reads it (the index's own words for
    a refusal of no known kind)."""
    kind = exc.kind if isinstance(exc, index.IndexRefusal) else None
    known = _REFUSALS.get(kind) if kind is not None else None
    if known is None:
        return DuplicateConflict(str(exc))
    phrase, uid = known
    return DuplicateConflict(phrase, uid=getattr(header, uid))


def _check_study(header: InstanceHeader, study_instance_uid: str | None) -> None:
    if study_instance_uid and header.study_instance_uid != study_instance_uid:
        raise StudyMismatch(
            N_("该实例属于检查 %(actual)s，而不是请求中指明的 %(named)s"),
            actual=header.study_instance_uid,
            named=study_instance_uid,
        )


def _parse_file(path: Path) -> ParsedFile:
    """Zero the preamble in place (it can carry an executable header), then check the file."""
    with path.open("r+b") as fp:
        if fp.read(PREAMBLE_LENGTH).strip(b"\0"):
            fp.seek(0)
            fp.write(bytes(PREAMBLE_LENGTH))
    return parse_part10_file(path)


#: A spooled file this old was left by a process that died while receiving it.
STALE_SPOOL_S = 3600.0


def _remove_stale(spool: Path) -> None:
    cutoff = time.time() - STALE_SPOOL_S
    for entry in spool.iterdir():
        with contextlib.suppress(OSError):
            if entry.is_file() and entry.stat().st_mtime < cutoff:
                entry.unlink()


def _receipt(
    header: InstanceHeader,
    facility: Facility,
    via: ReceivedVia,
    sender_ae: str | None,
    result: AuditResult,
) -> audit.Entry:
    """The audit record of one instance received (C-STORE, STOW-RS, an upload), for the
    sending facility."""
    return audit.entry(
        user_id=audit.SIGNED_IN.get(),
        action=AuditAction.C_STORE if via is ReceivedVia.DIMSE else AuditAction.STOW,
        object_type="instance",
        object_id=header.sop_instance_uid,
        detail={"via": via.value} | ({"sender_ae": sender_ae} if sender_ae else {}),
        studies=(header.study_instance_uid,),
        result=result,
        who=audit.Who(facility_id=facility.id),
    )
