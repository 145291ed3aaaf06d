"""DIMSE query/retrieve: C-FIND, C-GET and C-MOVE for readers' desktop viewers.

Served on the DICOM listener (dimse.py) as one more `DimseService`. A calling AE title is
scoped like an HTTP caller: a configured DICOM node (table ``dicom_node``) acts as its
user (a reader sees their pool and the patients' priors), or as its facility; a facility's
workstation AE (``facility_ae``) sees its own facility's studies. C-MOVE sends only to
nodes configured as move destinations. Matching is QIDO-RS's (qido.py) on the same index.

Nodes are configured in PostgreSQL; ``TELEMED_DICOM_NODES`` may name a TOML file loaded at
start (``[[dicom_node]]`` with ``ae_title``, ``user`` or ``facility``, optional ``host``,
``port``, ``move_destination``, ``may_query``).
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import tomllib
from collections.abc import Coroutine, Iterator
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any, TypeVar

import pydicom
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AllStoragePresentationContexts, build_context, evt

from storage import audit, network, qido
from storage.db import Pool
from storage.objects import ObjectStore
from storage.qido import DicomNode, StoredObject
from storage.records import AuditAction, FacilityId, UserId
from storage.search import Level
from teleradiology.core.errors import BadRequest, ConfigError
from teleradiology.core.query import build, keyword_of, metadata_of, result
from teleradiology.dimse.listener import ALL_TRANSFER_SYNTAXES, DimseService

log = logging.getLogger(__name__)

_T = TypeVar("_T")

PATIENT_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.1.1"
PATIENT_ROOT_MOVE = "1.2.840.10008.5.1.4.1.2.1.2"
PATIENT_ROOT_GET = "1.2.840.10008.5.1.4.1.2.1.3"
STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
STUDY_ROOT_MOVE = "1.2.840.10008.5.1.4.1.2.2.2"
STUDY_ROOT_GET = "1.2.840.10008.5.1.4.1.2.2.3"
_QR_SYNTAXES = [str(ExplicitVRLittleEndian), str(ImplicitVRLittleEndian)]
#: Most matches one C-FIND returns (a desktop viewer's study list; narrow the query for more).
FIND_LIMIT = 5000
#: Most instances one C-GET or C-MOVE sends.
RETRIEVE_LIMIT = 100_000
_LEVELS = {"PATIENT": Level.PATIENT, "STUDY": Level.STUDY, "SERIES": Level.SERIES}
_LEVELS["IMAGE"] = Level.IMAGE

# PS3.4 C.4 statuses
PENDING = 0xFF00
SUCCESS = 0x0000
CANCEL = 0xFE00
UNABLE_TO_PROCESS = 0xC000
IDENTIFIER_MISMATCH = 0xA900
MOVE_DESTINATION_UNKNOWN = 0xA801
REFUSED_OUT_OF_RESOURCES = 0xA701


class QueryRetrieve:
    """The C-FIND / C-GET / C-MOVE handlers; they run in pynetdicom's association threads and
    hand database and object store work to the event loop."""

    def __init__(
        self,
        *,
        pool: Pool,
        objects: ObjectStore,
        loop: asyncio.AbstractEventLoop,
        timeout_s: float = 60.0,
    ) -> None:
        self._pool = pool
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

    def _wait(self, coro: Coroutine[Any, Any, _T]) -> _T:
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(timeout=self._timeout)
        except FutureTimeout:
            future.cancel()
            raise

    # --- C-FIND ----------------------------------------------------------------------------

    def on_find(self, event: evt.Event) -> Iterator[tuple[int, Dataset | None]]:
        calling = event.assoc.requestor.ae_title.strip()
        scope = self._wait(qido.caller_scope(self._pool, calling))
        if scope is None:
            yield _failure(UNABLE_TO_PROCESS, f"{calling} may not query this archive")
            return
        identifier: Dataset = event.identifier
        try:
            level, criteria, wanted = _identifier(identifier, event.context.abstract_syntax)
            parsed = build(level, criteria, set(wanted), limit=FIND_LIMIT)
        except BadRequest as exc:
            yield _failure(IDENTIFIER_MISMATCH, str(exc))
            return
        hits = self._wait(qido.search(self._pool, parsed.query, scope))
        self._wait(
            audit.record(
                self._pool,
                user_id=scope.user_id,
                action=AuditAction.C_FIND,
                object_type=level.value.lower(),
                object_id=calling,
                detail={"count": len(hits)},
            )
        )
        for hit in hits:
            if event.is_cancelled:
                yield CANCEL, None
                return
            body = result(hit, level, wanted, "", metadata_of(hit.metadata_zlib), include_all=False)
            body.pop("00081190", None)
            answer = Dataset.from_json(body)
            answer.SpecificCharacterSet = "ISO_IR 192"
            answer.QueryRetrieveLevel = identifier.QueryRetrieveLevel
            answer.RetrieveAETitle = event.assoc.acceptor.ae_title.strip()
            yield PENDING, answer

    # --- C-GET and C-MOVE ------------------------------------------------------------------

    def _matches(self, event: evt.Event, calling: str) -> tuple[list[StoredObject], str | None]:
        scope = self._wait(qido.caller_scope(self._pool, calling))
        if scope is None:
            return [], f"{calling} may not retrieve from this archive"
        try:
            level, criteria, _ = _identifier(event.identifier, event.context.abstract_syntax)
        except BadRequest as exc:
            return [], str(exc)
        unique = {
            k: v
            for k, v in criteria.items()
            if k in ("PatientID", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")
        }
        if not unique:
            return [], "the identifier names no UID (nor PatientID) to retrieve"
        parsed = build(Level.IMAGE, unique, set(), limit=RETRIEVE_LIMIT)
        found = self._wait(qido.retrieve_objects(self._pool, parsed.query, scope))
        self._wait(
            audit.record(
                self._pool,
                user_id=scope.user_id,
                action=AuditAction.C_GET if event.event is evt.EVT_C_GET else AuditAction.C_MOVE,
                object_type=level.value.lower(),
                object_id=calling,
                detail={"count": len(found)},
            )
        )
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
            yield _failure(UNABLE_TO_PROCESS, refusal)
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
                yield CANCEL, None
                return
            try:
                ds = self._dataset(obj, accepted)
            except Exception:
                log.exception("could not read object %s for a retrieve", obj.object_key)
                yield REFUSED_OUT_OF_RESOURCES, None
                continue
            yield PENDING, ds

    def on_move(self, event: evt.Event) -> Iterator[Any]:
        calling = event.assoc.requestor.ae_title.strip()
        destination_ae = str(event.move_destination or "").strip()
        node = self._wait(qido.dicom_node(self._pool, destination_ae))
        if node is None or not node.move_destination:
            log.info("C-MOVE from %s to unknown destination %s", calling, destination_ae)
            yield None, None
            return
        found, refusal = self._matches(event, calling)
        contexts = _contexts_for(found)
        yield node.host, node.port, {"contexts": contexts, "ae_title": event.assoc.ae.ae_title}
        if refusal:
            yield 1
            yield _failure(UNABLE_TO_PROCESS, refusal)
            return
        accepted = {(o.sop_class_uid, o.transfer_syntax_uid) for o in found}
        yield len(found)
        yield from self._send(event, found, accepted)


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


def _failure(status: int, comment: str) -> tuple[int, Dataset]:
    ds = Dataset()
    ds.ErrorComment = comment[:64]
    return status, ds


def _identifier(identifier: Dataset, model: str) -> tuple[Level, dict[str, list[str]], list[int]]:
    """The level, matching criteria and return keys of a C-FIND/C-GET/C-MOVE identifier."""
    text = str(identifier.get("QueryRetrieveLevel", "")).strip().upper()
    level = _LEVELS.get(text)
    if level is None:
        raise BadRequest(f"QueryRetrieveLevel {text!r}: use PATIENT, STUDY, SERIES or IMAGE")
    if level is Level.PATIENT and str(model) not in (
        PATIENT_ROOT_FIND,
        PATIENT_ROOT_MOVE,
        PATIENT_ROOT_GET,
    ):
        raise BadRequest("the PATIENT level is only in the Patient Root model")
    criteria: dict[str, list[str]] = {}
    wanted: list[int] = []
    for element in identifier:
        if element.tag.group == 0x0008 and element.tag.element in (0x0005, 0x0052, 0x0054):
            continue
        if element.tag.is_private or element.VR == "SQ":
            continue
        wanted.append(int(element.tag))
        value = element.value
        if value is None or value == "":
            continue
        if isinstance(value, MultiValue | list | tuple):
            text_value = "\\".join(str(v) for v in value)
        else:
            text_value = str(value)
        criteria[keyword_of(int(element.tag))] = [text_value]
    return level, criteria, wanted


# --- configuration -------------------------------------------------------------------------


async def load_nodes_file(pool: Pool, path: Path) -> int:
    """Add or update the DICOM nodes a TOML file declares; how many were saved."""
    try:
        text = await asyncio.to_thread(path.read_text, "utf-8")
        declared = tomllib.loads(text).get("dicom_node", [])
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"DICOM nodes file {path}: {exc}") from None
    saved = 0
    for entry in declared:
        ae = str(entry.get("ae_title", "")).strip()
        if not ae or len(ae) > 16:
            raise ConfigError(f"{path}: every dicom_node needs an ae_title of 1 to 16 characters")
        user_id: UserId | None = None
        facility_id: FacilityId | None = None
        if "user" in entry:
            user = await network.user_by_username(pool, str(entry["user"]))
            if user is None:
                raise ConfigError(f"{path}: dicom_node {ae}: no user {entry['user']}")
            user_id = user.id
        if "facility" in entry:
            found = [f for f in await network.list_facilities(pool) if f.code == entry["facility"]]
            if not found:
                raise ConfigError(f"{path}: dicom_node {ae}: no facility {entry['facility']}")
            facility_id = found[0].id
        try:
            node = DicomNode(
                ae_title=ae,
                user_id=user_id,
                facility_id=facility_id,
                host=entry.get("host"),
                port=entry.get("port"),
                may_query=bool(entry.get("may_query", True)),
                move_destination=bool(entry.get("move_destination", False)),
            )
        except ValueError as exc:
            raise ConfigError(f"{path}: {exc}") from None
        await qido.save_dicom_node(pool, node)
        saved += 1
    return saved


async def configured_nodes(pool: Pool) -> None:
    """Load TELEMED_DICOM_NODES when it is set (at the DICOM role's start)."""
    path = os.environ.get("TELEMED_DICOM_NODES")
    if path:
        count = await load_nodes_file(pool, Path(path))
        log.info("loaded %d DICOM node(s) from %s", count, path)
