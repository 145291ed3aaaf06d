"""Modality Worklist (C-FIND), Modality Performed Procedure Step (N-CREATE, N-SET) and
Storage Commitment push model (N-ACTION, answered by N-EVENT-REPORT) for the network's
workstations, on the DICOM listener as one more `DimseService`.

The calling AE title's facility is the scope: a workstation sees its own facility's open
orders, reports its own steps and asks commitment for its own instances. The use cases are
services/orders.py's; these handlers turn DICOM into them and back, with named statuses.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Coroutine, Iterator
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid
from pynetdicom import AE, evt

from storage.db import Pool
from storage.errors import StorageError, is_unavailable
from teleradiology.core.errors import BadRequest, Forbidden
from teleradiology.core.statuses import NStatus, QueryStatus
from teleradiology.dimse.listener import DimseService, on_loop
from teleradiology.services import orders
from teleradiology.services.orders import Commitment

log = logging.getLogger(__name__)

MODALITY_WORKLIST_FIND = "1.2.840.10008.5.1.4.31"
MPPS = "1.2.840.10008.3.1.2.3.3"
STORAGE_COMMITMENT_PUSH = "1.2.840.10008.1.20.1"
#: The well-known SOP Instance UID of the Storage Commitment Push Model (PS3.4 J.3.5).
STORAGE_COMMITMENT_INSTANCE = "1.2.840.10008.1.20.1.1"
_SYNTAXES = [str(ExplicitVRLittleEndian), str(ImplicitVRLittleEndian)]
#: How long the commitment's report waits for the requester's association to take it.
_REPORT_TIMEOUT_S = 30
#: How long a requester has to release its association before the report goes on it.
SAME_ASSOCIATION_GRACE_S = 0.5
_NOT_NOW = "the archive cannot answer now (its database is not answering); try again shortly"


class Orders:
    """The worklist, MPPS and storage commitment handlers; they run in pynetdicom's
    association threads and hand the work to the event loop."""

    def __init__(
        self,
        *,
        pool: Pool,
        loop: asyncio.AbstractEventLoop,
        ae_title: str,
        timeout_s: float = 60.0,
    ) -> None:
        self._pool = pool
        self._loop = loop
        self._ae_title = ae_title
        self._timeout = timeout_s

    def service(self) -> DimseService:
        return DimseService(
            contexts=[
                (MODALITY_WORKLIST_FIND, _SYNTAXES, None),
                (MPPS, _SYNTAXES, None),
                (STORAGE_COMMITMENT_PUSH, _SYNTAXES, None),
            ],
            handlers=[
                (evt.EVT_C_FIND, self.on_find),
                (evt.EVT_N_CREATE, self.on_create),
                (evt.EVT_N_SET, self.on_set),
                (evt.EVT_N_ACTION, self.on_action),
            ],
        )

    # --- worklist ---------------------------------------------------------------------------

    def on_find(self, event: evt.Event) -> Iterator[tuple[int | Dataset, Dataset | None]]:
        calling = event.assoc.requestor.ae_title.strip()
        try:
            answers = on_loop(
                self._loop,
                orders.worklist(self._pool, calling, event.identifier),
                self._timeout,
                event,
            )
        except Forbidden as exc:
            log.info("worklist query from %s refused: not a workstation", calling)
            yield _comment(QueryStatus.UNABLE_TO_PROCESS, str(exc)), None
            return
        except BadRequest as exc:
            yield _comment(QueryStatus.IDENTIFIER_MISMATCH, str(exc)), None
            return
        except (StorageError, FutureTimeout):
            yield _comment(QueryStatus.UNABLE_TO_PROCESS, _NOT_NOW), None
            return
        for answer in answers:
            if event.is_cancelled:
                yield QueryStatus.CANCEL, None
                return
            yield QueryStatus.PENDING, answer

    # --- MPPS -------------------------------------------------------------------------------

    def on_create(self, event: evt.Event) -> tuple[Dataset | int, Dataset | None]:
        calling = event.assoc.requestor.ae_title.strip()
        request: Any = event.request
        uid = str(request.AffectedSOPInstanceUID or "") or generate_uid()
        ds: Dataset = event.attribute_list
        refused = self._attempt(event, "N-CREATE", orders.start_step(self._pool, calling, uid, ds))
        if refused is not None:
            return refused, None
        answer = Dataset()
        answer.AffectedSOPInstanceUID = uid
        answer.PerformedProcedureStepStatus = "IN PROGRESS"
        return NStatus.SUCCESS, answer

    def on_set(self, event: evt.Event) -> tuple[Dataset | int, Dataset | None]:
        calling = event.assoc.requestor.ae_title.strip()
        request: Any = event.request
        uid = str(request.RequestedSOPInstanceUID or "")
        ds: Dataset = event.modification_list
        refused = self._attempt(event, "N-SET", orders.update_step(self._pool, calling, uid, ds))
        if refused is not None:
            return refused, None
        return NStatus.SUCCESS, ds

    def _attempt(
        self, event: evt.Event, what: str, work: Coroutine[Any, Any, object]
    ) -> Dataset | None:
        """Run the use case; None when it succeeded, else the refusal's status."""
        try:
            on_loop(self._loop, work, self._timeout, event)
        except Exception as exc:
            return _n_failure(exc, event.assoc.requestor.ae_title.strip(), what)
        return None

    # --- storage commitment -------------------------------------------------------------------

    def on_action(self, event: evt.Event) -> tuple[Dataset | int, Dataset | None]:
        calling = event.assoc.requestor.ae_title.strip()
        request: Any = event.request
        if str(request.RequestedSOPClassUID) != STORAGE_COMMITMENT_PUSH:
            return NStatus.PROCESSING_FAILURE, None
        if int(request.ActionTypeID or 0) != 1:
            return _comment(NStatus.INVALID_ATTRIBUTE_VALUE, "Action Type ID must be 1"), None
        ds: Dataset = event.action_information
        try:
            found = on_loop(
                self._loop, orders.commit(self._pool, calling, ds), self._timeout, event
            )
        except Exception as exc:
            return _n_failure(exc, calling, "N-ACTION"), None
        # Answered on this association once the N-ACTION response is out (pynetdicom's
        # reactor takes the report after it), else on a new one to the modality's node.
        threading.Thread(
            target=self._report,
            args=(event.assoc, calling, found),
            name="storage-commitment-report",
            daemon=True,
        ).start()
        return NStatus.SUCCESS, None

    def _report(self, assoc: Any, calling: str, found: Commitment) -> None:
        # A requester that releases at once after the N-ACTION response wants the report
        # on a new association: it is given a moment to, rather than raced.
        deadline = time.monotonic() + SAME_ASSOCIATION_GRACE_S
        while assoc.is_established and time.monotonic() < deadline:
            time.sleep(0.02)
        try:
            if assoc.is_established and _send_report(assoc, found):
                return
        except Exception as exc:
            log.info(
                "commitment report to %s not taken on its association (%s)",
                calling,
                type(exc).__name__,
            )
        if found.node is None:
            log.warning(
                "commitment report to %s: association closed and no node configured", calling
            )
            return
        host, port = found.node
        ae = AE(ae_title=self._ae_title)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = _REPORT_TIMEOUT_S
        ae.add_requested_context(STORAGE_COMMITMENT_PUSH, _SYNTAXES)
        other = ae.associate(host, port, ae_title=calling)
        if not other.is_established:
            log.warning(
                "commitment report to %s at %s:%d: association refused", calling, host, port
            )
            return
        try:
            if not _send_report(other, found):
                log.warning("commitment report to %s: not acknowledged", calling)
        finally:
            other.release()


def _send_report(assoc: Any, found: Commitment) -> bool:
    # pynetdicom answers (status, event reply); an empty status when no answer came
    status, _reply = assoc.send_n_event_report(
        found.report, found.event_type, STORAGE_COMMITMENT_PUSH, STORAGE_COMMITMENT_INSTANCE
    )
    code = getattr(status, "Status", None)
    return code is not None and int(code) == 0


def _comment(status: NStatus | QueryStatus, comment: str) -> Dataset:
    """A failure status with its comment (ErrorComment is LO: 64 characters)."""
    ds = Dataset()
    ds.Status = int(status)
    ds.ErrorComment = comment[:64]
    return ds


def _n_failure(exc: Exception, calling: str, what: str) -> Dataset:
    """The named status of a refused N-CREATE, N-SET or N-ACTION, with its comment."""
    if isinstance(exc, Forbidden):
        log.info("%s from %s refused: not a workstation", what, calling)
        return _comment(NStatus.NOT_AUTHORIZED, str(exc))
    if isinstance(exc, orders.DuplicateStep):
        return _comment(NStatus.DUPLICATE_SOP_INSTANCE, str(exc))
    if isinstance(exc, orders.NoSuchStep):
        return _comment(NStatus.NO_SUCH_OBJECT_INSTANCE, "no such performed procedure step")
    if isinstance(exc, orders.StepClosed):
        return _comment(NStatus.MAY_NO_LONGER_BE_UPDATED, str(exc))
    if isinstance(exc, BadRequest):
        log.info("%s from %s: %s", what, calling, exc)
        return _comment(NStatus.INVALID_ATTRIBUTE_VALUE, str(exc))
    if isinstance(exc, (StorageError, FutureTimeout)) or is_unavailable(exc):
        return _comment(NStatus.PROCESSING_FAILURE, _NOT_NOW)
    log.error("%s from %s failed", what, calling, exc_info=exc)
    return _comment(NStatus.PROCESSING_FAILURE, "the archive could not process it")
