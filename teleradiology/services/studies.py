"""Searching and retrieving images, whichever edge asks: QIDO-RS and WADO-RS over HTTP,
C-FIND, C-GET and C-MOVE over DICOM.

Every search and every lookup runs in the caller's scope (a user's, or a calling AE title's)
and is audited here, once. A viewer opening a study makes hundreds of WADO-RS requests: the
scope check of a (user, study) is trusted for `SCOPE_TTL_S`, so it is one query and one
audit entry, not hundreds.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pydicom.dataset import Dataset

from storage import audit, qido
from storage.db import Pool
from storage.qido import DicomNode, StoredObject
from storage.records import AuditAction, AuditResult, StudyId, User
from storage.search import Hit, Level, Query, Scope
from teleradiology.core.errors import Forbidden, NotFound, ServiceError
from teleradiology.core.language import N_
from teleradiology.core.query import (
    Parsed,
    build,
    encoded,
    identifier_query,
    require_real_key,
    retrieve_query,
    scope_of,
    study_elements,
)

#: How long a (user, study) scope check is trusted, so the hundreds of frame requests of one
#: viewing are not hundreds of scope queries (and one audit entry, not hundreds).
SCOPE_TTL_S = 15.0
#: Most matches one C-FIND returns (a desktop viewer's study list; narrow the query for more).
FIND_LIMIT = 5000
#: Most instances one C-GET or C-MOVE sends, unless the service is told otherwise.
RETRIEVE_LIMIT = 10_000
#: Answers with more hits than this are encoded off the event loop.
_ENCODE_INLINE_MAX = 50
_CACHE_MAX = 10_000
#: What a study does not hold, said by the kind of object asked for.
INSTANCE_NOT_IN_STUDY = N_("检查 %(study)s 中找不到实例 %(uid)s")
SERIES_NOT_IN_STUDY = N_("检查 %(study)s 中找不到序列 %(uid)s")
#: A DICOM node refused, by what it asked to do.
_MAY_NOT = {
    "query": N_("%(ae)s 不能查询本档案库"),
    "retrieve from": N_("%(ae)s 不能从本档案库取回"),
}


class TooManyInstances(ServiceError):
    """A C-GET or C-MOVE names more instances than one retrieve may send."""


@dataclass(frozen=True, kw_only=True)
class Answer:
    """A QIDO-RS answer: how many matched, and the DICOM JSON body."""

    count: int
    body: bytes


@dataclass(frozen=True, kw_only=True)
class Found:
    """A C-FIND's matches, with the level and return keys its identifier asked for."""

    level: Level
    wanted: list[int]
    hits: list[Hit]


class Studies:
    """The scoped, audited searches and lookups of stored studies."""

    def __init__(
        self, pool: Pool, *, scope_ttl_s: float = SCOPE_TTL_S, retrieve_max: int = RETRIEVE_LIMIT
    ) -> None:
        self._pool = pool
        self._retrieve_max = retrieve_max
        self._ttl = scope_ttl_s
        self._opened: dict[tuple[int, str], tuple[float, StudyId]] = {}

    # --- QIDO-RS -------------------------------------------------------------------------

    async def search(
        self, user: User, parsed: Parsed, level: Level, fixed: Mapping[str, str], base: str
    ) -> Answer:
        """A QIDO-RS search in the user's scope; ``fixed`` are the UIDs of the path (a study
        outside the scope does not exist), ``base`` the public origin of the answer's URLs.

        Raises
        ------
        NotFound
            The study of the path is not in the user's scope.
        """
        scope = scope_of(user)
        study_uid = fixed.get("StudyInstanceUID")
        if (
            study_uid is not None
            and await qido.study_in_scope(self._pool, study_uid, scope) is None
        ):
            raise NotFound(N_("找不到检查 %(id)s"), id=study_uid)
        elements = study_elements(parsed) if level is Level.STUDY else None
        if elements is not None:
            built = await qido.search_studies_json(
                self._pool, parsed.query, scope, elements, retrieve_base=f"{base}/dicomweb/studies/"
            )
            count, body = built.count, built.body
            studies, patients = list(built.study_uids), list(built.patients)
        else:
            hits = await qido.search(self._pool, parsed.query, scope)
            count, body = len(hits), await _encode(hits, level, parsed, base, fixed)
            studies, patients = _disclosed(hits)
        # Before the answer leaves: a search whose record cannot be written is not answered.
        await audit.record(
            self._pool,
            user_id=user.id,
            action=AuditAction.QIDO,
            object_type=level.value.lower(),
            object_id=study_uid or "query",
            detail={"count": count},
            studies=studies,
            patients=patients,
        )
        return Answer(count=count, body=body)

    # --- WADO-RS -------------------------------------------------------------------------

    async def open_study(self, user: User, study_uid: str, action: AuditAction) -> StudyId:
        """The study the user asks for, when in scope; audited once per `SCOPE_TTL_S`.

        Raises
        ------
        NotFound
            The study does not exist in the user's scope.
        """
        now = time.monotonic()
        cached = self._opened.get((user.id, study_uid))
        if cached is not None and cached[0] > now:
            return cached[1]
        study_id = await qido.study_in_scope(self._pool, study_uid, scope_of(user))
        if study_id is None:
            raise NotFound(N_("找不到检查 %(id)s"), id=study_uid)
        if len(self._opened) > _CACHE_MAX:
            self._opened.clear()
        self._opened[(user.id, study_uid)] = (now + self._ttl, study_id)
        try:
            await audit.record(
                self._pool,
                user_id=user.id,
                action=action,
                object_type="study",
                object_id=study_uid,
                studies=(study_uid,),
            )
        except audit.AuditUnavailable:
            del self._opened[(user.id, study_uid)]
            raise
        return study_id

    async def objects(
        self,
        study_id: StudyId,
        study_uid: str,
        *,
        series_uid: str | None = None,
        sop_uid: str | None = None,
        with_metadata: bool = False,
    ) -> list[StoredObject]:
        """The stored instances of an opened study (`open_study`), or of one series or
        instance of it.

        Raises
        ------
        NotFound
            The study holds no such series or instance.
        """
        found = await qido.stored_objects(
            self._pool,
            study_id,
            series_uid=series_uid,
            sop_uid=sop_uid,
            with_metadata=with_metadata,
        )
        if not found:
            if sop_uid:
                raise NotFound(INSTANCE_NOT_IN_STUDY, uid=sop_uid, study=study_uid)
            if series_uid:
                raise NotFound(SERIES_NOT_IN_STUDY, uid=series_uid, study=study_uid)
            raise NotFound(N_("检查 %(study)s 中没有存储的对象"), study=study_uid)
        return found

    async def series_of(self, user: User, study_uid: str) -> list[str]:
        """The Series Instance UIDs of a study in the user's scope."""
        query = Query(level=Level.SERIES, study_uids=(study_uid,), limit=10_000)
        hits = await qido.search(self._pool, query, scope_of(user))
        return [h.series_instance_uid for h in hits if h.series_instance_uid]

    # --- C-FIND, C-GET, C-MOVE -----------------------------------------------------------

    async def find(self, calling_ae: str, identifier: Dataset, *, patient_root: bool) -> Found:
        """A C-FIND in the calling AE title's scope.

        Raises
        ------
        Forbidden
            The AE title may not query, or a workstation's query names no real key
            (`require_real_key`).
        BadRequest
            The identifier is not a query we answer.
        """
        scope = await self._scope_of_ae(calling_ae, "query")
        level, criteria, wanted = identifier_query(identifier, patient_root=patient_root)
        if scope.user_id is None:
            # A workstation (a facility's scope, not a signed-in reader's pool) lists no
            # facility whole: its title is all that stands for it.
            require_real_key(level, criteria)
        parsed = build(level, criteria, set(wanted), limit=FIND_LIMIT)
        hits = await qido.search(self._pool, parsed.query, scope)
        studies, patients = _disclosed(hits)
        await self._audit_peer(
            scope, AuditAction.C_FIND, level, calling_ae, len(hits), studies, patients
        )
        return Found(level=level, wanted=wanted, hits=hits)

    async def retrieve(
        self, calling_ae: str, identifier: Dataset, *, patient_root: bool, action: AuditAction
    ) -> list[StoredObject]:
        """The instances a C-GET or C-MOVE (``action``) names, in the caller's scope.

        Raises
        ------
        Forbidden
            The AE title may not retrieve.
        BadRequest
            The identifier names nothing to retrieve, or names it with wildcards.
        TooManyInstances
            It names more instances than one retrieve sends (nothing is sent).
        """
        scope = await self._scope_of_ae(calling_ae, "retrieve from")
        level, criteria, _ = identifier_query(identifier, patient_root=patient_root)
        parsed = retrieve_query(criteria, limit=self._retrieve_max + 1)
        found = await qido.retrieve_objects(self._pool, parsed.query, scope)
        if len(found) > self._retrieve_max:
            await self._audit_peer(scope, action, level, calling_ae, 0, [], [])
            raise TooManyInstances(
                N_("超过 %(most)s 个实例：请每次取回一个检查或序列"), most=self._retrieve_max
            )
        studies = list(dict.fromkeys(o.study_instance_uid for o in found if o.study_instance_uid))
        patients = list(dict.fromkeys(o.patient for o in found if o.patient))
        await self._audit_peer(scope, action, level, calling_ae, len(found), studies, patients)
        return found

    async def move_destination(self, ae_title: str, calling_ae: str) -> DicomNode | None:
        """The configured node a C-MOVE from ``calling_ae`` may send to under this AE title:
        the caller itself, or a destination of the caller's own facility; else None."""
        node = await qido.dicom_node(self._pool, ae_title)
        if node is None or not node.move_destination:
            return None
        if node.ae_title == calling_ae:
            return node
        scope = await qido.caller_scope(self._pool, calling_ae)
        if scope is None or node.owner_facility_id != scope.facility_id:
            return None
        return node

    async def _scope_of_ae(self, calling_ae: str, verb: str) -> Scope:
        scope = await qido.caller_scope(self._pool, calling_ae)
        if scope is None:
            with contextlib.suppress(audit.AuditUnavailable):  # refused either way
                await audit.record(
                    self._pool,
                    user_id=None,
                    action=AuditAction.DENIED,
                    object_type="dicom",
                    object_id=calling_ae,
                    detail={"asked": verb},
                    result=AuditResult.DENIED,
                )
            raise Forbidden(_MAY_NOT[verb], ae=calling_ae)
        return scope

    async def _audit_peer(
        self,
        scope: Scope,
        action: AuditAction,
        level: Level,
        calling_ae: str,
        count: int,
        studies: Sequence[str],
        patients: Sequence[str],
    ) -> None:
        await audit.record(
            self._pool,
            user_id=scope.user_id,
            action=action,
            object_type=level.value.lower(),
            object_id=calling_ae,
            detail={"count": count},
            studies=studies,
            patients=patients,
            who=audit.Who(role=scope.role.value, facility_id=scope.facility_id),
        )


def _disclosed(hits: Sequence[Hit]) -> tuple[list[str], list[str]]:
    """The studies and the patients (``issuer:patient ID``) a search's answer names, once
    each, in the answer's order."""
    studies = dict.fromkeys(h.study_instance_uid for h in hits if h.study_instance_uid)
    patients = dict.fromkeys(f"{h.issuer}:{h.patient_id}" for h in hits if h.patient_id)
    return list(studies), list(patients)


async def _encode(
    hits: list[Hit], level: Level, parsed: Parsed, base: str, fixed: Mapping[str, str]
) -> bytes:
    in_study = "StudyInstanceUID" in fixed
    in_series = "SeriesInstanceUID" in fixed

    def build_body() -> bytes:
        return encoded(hits, level, parsed, base, in_study=in_study, in_series=in_series)

    if len(hits) > _ENCODE_INLINE_MAX:
        return await asyncio.to_thread(build_body)
    return build_body()
