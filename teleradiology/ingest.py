"""One ingest path for every way an instance arrives: C-STORE, STOW-RS, uploads."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from storage import index, network
from storage.db import Pool
from storage.errors import Conflict
from storage.index import IndexOutcome
from storage.objects import ObjectStore
from storage.records import Facility, Priority, ReceivedVia, StudyId
from teleradiology.dicom import parse_part10
from teleradiology.errors import DuplicateConflict

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class Stored:
    """The outcome of storing one instance."""

    sop_instance_uid: str
    sop_class_uid: str
    study_instance_uid: str
    outcome: IndexOutcome
    study_id: StudyId


class Ingestor:
    """Parses, writes the object durably, then commits the index row: only then success."""

    def __init__(self, pool: Pool, objects: ObjectStore, *, ae_cache_s: float = 5.0) -> None:
        self._pool = pool
        self._objects = objects
        self._ae_cache_s = ae_cache_s
        self._ae_cache: dict[str, tuple[float, Facility | None]] = {}

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
    ) -> Stored:
        """Store one Part-10 file for a facility.

        Raises
        ------
        InvalidDicom
            The bytes are not a storable DICOM instance; nothing is stored.
        DuplicateConflict
            Same SOP Instance UID as a stored instance, other content; the first copy stays.
        """
        parsed = await asyncio.to_thread(parse_part10, data)
        header = parsed.header
        key = await self._objects.put(parsed.data)
        try:
            result = await index.index_instance(
                self._pool,
                header=header,
                object_key=key,
                size_bytes=len(parsed.data),
                facility_id=facility.id,
                sender_ae=sender_ae,
                via=via,
                priority=priority,
                clinical_question=clinical_question,
            )
        except Conflict as exc:
            await index.record_rejection(
                self._pool,
                facility_id=facility.id,
                sender_ae=sender_ae,
                sop_instance_uid=header.sop_instance_uid,
                reason=str(exc),
                object_key=key,
            )
            await self._collect(key)
            log.warning("refused an instance from %s: conflicting content", facility.code)
            raise DuplicateConflict(str(exc)) from None
        if result.outcome is IndexOutcome.DUPLICATE and result.object_key != key:
            # Same data set under another file meta header: the first file is kept.
            await self._collect(key)
        return Stored(
            sop_instance_uid=header.sop_instance_uid,
            sop_class_uid=header.sop_class_uid,
            study_instance_uid=header.study_instance_uid,
            outcome=result.outcome,
            study_id=result.study_id,
        )

    async def _collect(self, key: str) -> None:
        """Delete an object no index row points at."""
        if not await index.object_key_referenced(self._pool, key):
            await self._objects.delete(key)
