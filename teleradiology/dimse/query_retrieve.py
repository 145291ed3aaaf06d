"""DIMSE query/retrieve: C-FIND, C-GET and C-MOVE for readers' desktop viewers.

Served on the DICOM listener (dimse.py) as one more `DimseService`. A calling AE title is
scoped like an HTTP caller: a configured DICOM node (table ``dicom_node``) acts as its
user (a reader sees their pool and the patients' priors), or as its facility; a facility's
workstation AE (``facility_ae``) sees its own facility's studies. C-MOVE sends only to
nodes configured as move destinations of the caller's own facility (or to the caller).
A workstation's PATIENT or STUDY C-FIND needs a real key; a C-GET or C-MOVE naming more
instances than the configured bound is refused whole (A701). Matching is QIDO-RS's on the
same index: the scoped, audited search is services/studies.py's; these handlers turn DICOM
into it and back.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import pydicom
from pydicom.dataset import Dataset
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AllStoragePresentationContexts, build_context, evt

from storage.errors import StorageError
from storage.objects import ObjectStore
from storage.qido import StoredObject
from storage.records import AuditAction
from storage.search import Hit
from teleradiology.core.errors import BadRequest, Forbidden, ServiceError
from teleradiology.core.query import metadata_of, result
from teleradiology.core.statuses import QueryStatus
from teleradiology.dimse.listener import ALL_TRANSFER_SYNTAXES, DimseService, on_loop
from teleradiology.services.studies import Found, Studies, TooManyInstances

log = logging.getLogger(__name__)

_T = TypeVar("_T")

PATIENT_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.1.1"
PATIENT_ROOT_MOVE = "1.2.840.10008.5.1.4.1.2.1.2"
PATIENT_ROOT_GET = "1.2.840.10008.5.1.4.1.2.1.3"
STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
STUDY_ROOT_MOVE = "1.2.840.10008.5.1.4.1.2.2.2"
STUDY_ROOT_GET = "1.2.840.10008.5.1.4.1.2.2.3"
_PATIENT_ROOT = frozenset({PATIENT_ROOT_FIND, PATIENT_ROOT_MOVE, PATIENT_ROOT_GET})
_QR_SYNTAXES = [str(ExplicitVRLittleEndian), str(ImplicitVRLittleEndian)]


class QueryRetrieve:
    """The C-FIND / C-GET / C-MOVE handlers; they run in pynetdicom's association threads and
    hand database and object store work to the event loop."""

    def __init__(
        self,
        *,
        studies: Studies,
        objects: ObjectStore,
        loop: asyncio.AbstractEventLoop,
        timeout_s: float = 60.0,
    ) -> None:
        self._studies = studies
        self._objects = objects
        self._loop = loop
        self._timeout = timeout_s

    def service(self) -> DimseService:
        """The presentation contexts and handlers for the listener."""
        contexts: list[tuple[str, list[str], bool | None]] = [
            (uid, _QR_SYNTAXES, None)
            for uid in (
                PATIENT_ROOT_FIND,
                PATIENT_ROOT_MOVE,
                PATIENT_ROOT_GET,
                STUDY_ROOT_FIND,
                STUDY_ROOT_MOVE,
                STUDY_ROOT_GET,
            )
        ]
        # C-GET sends C-STORE on the caller's association: the caller takes the SCP role.
        contexts += [
            (str(c.abstract_syntax), ALL_TRANSFER_SYNTAXES, True)
            for c in AllStoragePresentationContexts
        ]
        return DimseService(
            contexts=contexts,
            handlers=[
                (evt.EVT_C_FIND, self.on_find),
                (evt.EVT_C_GET, self.on_get),
                (evt.EVT_C_MOVE, self.on_move),
            ],
        )

    def _wait(self, coro: Coroutine[Any, Any, _T], event: evt.Event | None = None) -> _T:
        return on_loop(self._loop, coro, self._timeout, event)

    # --- C-FIND ----------------------------------------------------------------------------

    def on_find(self, event: evt.Event) -> Iterator[tuple[int | Dataset, Dataset | None]]:
        calling = event.assoc.requestor.ae_title.strip()
        identifier: Dataset = event.identifier
        try:
            found = self._wait(
                self._studies.find(calling, identifier, patient_root=_patient_root(event)), event
            )
        except Forbidden as exc:
            yield _failure(QueryStatus.UNABLE_TO_PROCESS, str(exc))
            return
        except StorageError:
            # No answer whose audit record could not be written (nor any other, for now).
            yield _failure(QueryStatus.UNABLE_TO_PROCESS, NOT_NOW)
            return
        except BadRequest as exc:
            yield _failure(QueryStatus.IDENTIFIER_MISMATCH, str(exc))
            return
        for hit in found.hits:
            if event.is_cancelled:
                yield QueryStatus.CANCEL, None
                return
            yield QueryStatus.PENDING, _find_answer(event, identifier, found, hit)

    # --- C-GET and C-MOVE ------------------------------------------------------------------

    def _matches(
        self, event: evt.Event, calling: str
    ) -> tuple[list[StoredObject], tuple[QueryStatus, str] | None]:
        """The instances the retrieve names, or the failure status and comment refusing it."""
        action = AuditAction.C_GET if event.event is evt.EVT_C_GET else AuditAction.C_MOVE
        try:
            found = self._wait(
                self._studies.retrieve(
                    calling, event.identifier, patient_root=_patient_root(event), action=action
                ),
                event,
            )
        except TooManyInstances as exc:
            return [], (QueryStatus.REFUSED_OUT_OF_RESOURCES, str(exc))
        except ServiceError as exc:
            return [], (QueryStatus.UNABLE_TO_PROCESS, str(exc))
        except StorageError:
            return [], (QueryStatus.UNABLE_TO_PROCESS, NOT_NOW)
        return found, None

    def _dataset(self, obj: StoredObject, accepted: set[tuple[str, str]]) -> Dataset:
        data = self._wait(self._objects.get(obj.object_key))
        ds = pydicom.dcmread(io.BytesIO(data))
        stored = UID(obj.transfer_syntax_uid)
        if stored.is_compressed and (obj.sop_class_uid, str(stored)) not in accepted:
            # The peer takes only uncompressed data for this class: decode it for them.
            ds.decompress()
        return ds

    def on_get(self, event: evt.Event) -> Iterator[Any]:
        calling = event.assoc.requestor.ae_title.strip()
        found, refusal = self._matches(event, calling)
        if refusal:
            # One failed "sub-operation" carries the refusal to the caller.
            yield 1
            yield _failure(*refusal)
            return
        accepted = {
            (str(c.abstract_syntax), str(c.transfer_syntax[0]))
            for c in event.assoc.accepted_contexts
            if c.as_scu
        }
        yield len(found)
        yield from self._send(event, found, accepted)

    def _send(
        self, event: evt.Event, found: list[StoredObject], accepted: set[tuple[str, str]]
    ) -> Iterator[tuple[int, Dataset | None]]:
        for obj in found:
            if event.is_cancelled:
                yield QueryStatus.CANCEL, None
                return
            try:
                ds = self._dataset(obj, accepted)
            except Exception:
                log.exception("could not read object %s for a retrieve", obj.object_key)
                yield QueryStatus.REFUSED_OUT_OF_RESOURCES, None
                continue
            yield QueryStatus.PENDING, ds

    def on_move(self, event: evt.Event) -> Iterator[Any]:
        calling = event.assoc.requestor.ae_title.strip()
        destination_ae = str(event.move_destination or "").strip()
        node = self._wait(self._studies.move_destination(destination_ae, calling))
        if node is None:
            # Unknown, or not the caller's: the same answer (A801), nothing to enumerate by.
            log.info("C-MOVE from %s refused: destination not one of its facility's", calling)
            yield None, None
            return
        found, refusal = self._matches(event, calling)
        contexts = _contexts_for(found)
        yield node.host, node.port, {"contexts": contexts, "ae_title": event.assoc.ae.ae_title}
        if refusal:
            yield 1
            yield _failure(*refusal)
            return
        accepted = {(o.sop_class_uid, o.transfer_syntax_uid) for o in found}
        yield len(found)
        yield from self._send(event, found, accepted)


#: The comment of a refusal while the database (or the audit) cannot be written.
NOT_NOW = "the archive cannot answer now (its database is not answering); try again shortly"


def _contexts_for(found: list[StoredObject]) -> list[Any]:
    """Presentation contexts for sending these instances: as stored, else uncompressed."""
    by_class: dict[str, list[str]] = {}
    for obj in found:
        syntaxes = by_class.setdefault(obj.sop_class_uid, [])
        if obj.transfer_syntax_uid not in syntaxes:
            syntaxes.append(obj.transfer_syntax_uid)
    contexts = []
    for sop_class, syntaxes in list(by_class.items())[:64]:
        stored = [s for s in syntaxes if s not in _QR_SYNTAXES]
        if stored:
            contexts.append(build_context(sop_class, stored))
        contexts.append(build_context(sop_class, _QR_SYNTAXES))
    return contexts or [build_context(str(AllStoragePresentationContexts[0].abstract_syntax))]


def _failure(status: int, comment: str) -> tuple[Dataset, None]:
    """A failure answer with its comment: in the status (a data set beside the status is
    an identifier, which a failed response does not carry)."""
    ds = Dataset()
    ds.Status = int(status)
    ds.ErrorComment = comment[:64]
    return ds, None


def _patient_root(event: evt.Event) -> bool:
    return str(event.context.abstract_syntax) in _PATIENT_ROOT


def _find_answer(event: evt.Event, identifier: Dataset, found: Found, hit: Hit) -> Dataset:
    """One C-FIND match as the identifier asked for it, in UTF-8."""
    body = result(
        hit, found.level, found.wanted, "", metadata_of(hit.metadata_zlib), include_all=False
    )
    body.pop("00081190", None)
    answer = Dataset.from_json(body)
    answer.SpecificCharacterSet = "ISO_IR 192"
    answer.QueryRetrieveLevel = identifier.QueryRetrieveLevel
    answer.RetrieveAETitle = event.assoc.acceptor.ae_title.strip()
    return answer
