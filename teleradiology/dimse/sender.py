"""Outbound C-STORE: the DICOM copies of reports, sent to a clinic's own workstation."""

from __future__ import annotations

import asyncio
import ssl
from io import BytesIO

from pydicom import dcmread
from pynetdicom import AE

from storage.records import Destination
from teleradiology.core.report_sr import BASIC_TEXT_SR, ENCAPSULATED_PDF
from teleradiology.core.statuses import StoreStatus
from teleradiology.services.delivery import SendCopy

#: The answers that mean the copy is stored.
STORED = frozenset(
    {
        StoreStatus.SUCCESS,
        StoreStatus.COERCION_OF_DATA_ELEMENTS,
        StoreStatus.ELEMENTS_DISCARDED,
        StoreStatus.DATA_SET_DOES_NOT_MATCH_SOP_CLASS_WARNING,
    }
)
_TIMEOUT_S = 30


def report_sender(calling_ae: str, *, tls: ssl.SSLContext | None = None) -> SendCopy:
    """Send report copies by C-STORE as ``calling_ae``, each association in a thread; to a
    destination configured for TLS over ``tls``."""

    async def send(data: bytes, destination: Destination) -> None:
        await asyncio.to_thread(c_store, data, destination, calling_ae=calling_ae, tls=tls)

    return send


def c_store(
    data: bytes, destination: Destination, *, calling_ae: str, tls: ssl.SSLContext | None = None
) -> None:
    """Send one Part-10 object by C-STORE (blocking: run it in a thread), over DICOM TLS
    when the destination is configured for it.

    Raises
    ------
    ConnectionError
        The association was refused or aborted, or the store did not succeed; or the
        destination is configured for TLS and this service has no TLS context.
    """
    ds = dcmread(BytesIO(data))
    ae = AE(ae_title=calling_ae)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = _TIMEOUT_S
    ae.add_requested_context(ENCAPSULATED_PDF)
    ae.add_requested_context(BASIC_TEXT_SR)
    tls_args = None
    if destination.tls:
        if tls is None:
            raise ConnectionError(
                f"{destination.ae_title} takes DICOM TLS: configure TELEMED_DICOM_TLS_CERT/_KEY"
            )
        tls_args = (tls, destination.host)
    assoc = ae.associate(
        destination.host, destination.port, ae_title=destination.ae_title, tls_args=tls_args
    )
    if not assoc.is_established:
        raise ConnectionError(
            f"{destination.ae_title}@{destination.host}:{destination.port} refused the association"
        )
    try:
        status = assoc.send_c_store(ds)
    finally:
        assoc.release()
    code = getattr(status, "Status", None)
    if code is None:
        raise ConnectionError(f"{destination.ae_title} did not answer the C-STORE")
    if code not in STORED:
        raise ConnectionError(f"{destination.ae_title} answered C-STORE status 0x{code:04X}")
