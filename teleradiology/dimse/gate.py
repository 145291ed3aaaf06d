"""Who may associate: each calling AE title's peer rule, checked when an association is
requested, and refused associations counted per peer address.

Every refusal goes back the same way (A-ASSOCIATE-RJ rejected-permanent, service user, no
reason given) whether the title is unknown, calls from the wrong address, lacks its
certificate or shows another, or the address is blocked: a peer learns nothing about which
titles exist. The reason is for the operator's log only, and a guessed title is not echoed
there above debug level.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from prometheus_client import Counter

from teleradiology.core.peers import (
    LimitPolicy,
    PeerRule,
    Refusal,
    RefusalLimit,
    admit,
    certificate_fingerprint,
)

log = logging.getLogger(__name__)

#: The one refusal every refused association gets: (result, source, reason) of PS3.8 9.3.4,
#: rejected-permanent, DICOM UL service-user, no reason given.
REJECT = (0x01, 0x01, 0x01)
#: A TLS handshake must finish within this (it runs in the accepting thread).
HANDSHAKE_S = 10.0

DICOM_REFUSALS = Counter(
    "telemed_dicom_refusals",
    "DICOM associations refused (and TLS handshakes failed), by reason",
    ["reason"],
)


class Gate:
    """The peer rules of the calling AE titles we accept, and the refusal limit."""

    def __init__(
        self,
        *,
        allow_unbound: bool = True,
        limit: LimitPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._allow_unbound = allow_unbound
        self._limit = RefusalLimit(limit)
        self._clock = clock
        self._lock = threading.Lock()
        self._rules: Mapping[str, PeerRule] = {}

    def set_rules(self, rules: Iterable[PeerRule]) -> None:
        found = {r.ae_title: r for r in rules}
        self._rules = found

    def knows(self, calling: str) -> bool:
        return calling in self._rules

    def unbound_titles(self) -> int:
        """How many accepted titles are bound to neither an address nor a certificate."""
        return sum(1 for r in self._rules.values() if not r.bound)

    def check(self, calling: str, address: str, certificate: str | None) -> Refusal | None:
        """Why an association from ``address`` as ``calling`` is refused, or None; a refusal
        is counted against the address."""
        now = self._clock()
        with self._lock:
            if self._limit.blocked(address, now):
                return Refusal.LOCKED_OUT
        reason = admit(
            self._rules.get(calling), address, certificate, allow_unbound=self._allow_unbound
        )
        if reason is not None:
            self.refused(address)
        return reason

    def handshake_failed(self, address: str) -> None:
        DICOM_REFUSALS.labels("tls_handshake").inc()
        self.refused(address)

    def refused(self, address: str) -> None:
        """Count one refusal of ``address`` (a refused association or a failed handshake)."""
        with self._lock:
            started = self._limit.refused(address, self._clock())
        if started:
            log.warning(
                "DICOM peer %s refused too often: associations from it are refused for a while",
                address,
            )


def log_refusal(reason: Refusal, calling: str, address: str) -> None:
    """What the operator needs: a known title's failed proof names the title; an unknown
    title (a guess, perhaps) is named only at debug level."""
    DICOM_REFUSALS.labels(reason.name.lower()).inc()
    if reason is Refusal.LOCKED_OUT:
        log.debug("association from %s as %r refused: %s", address, calling, reason.value)
    elif reason is Refusal.UNKNOWN_TITLE:
        log.info("association from %s refused: %s", address, reason.value)
        log.debug("association from %s: unknown calling AE title %r", address, calling)
    else:
        log.warning("association from %s as %s refused: %s", address, calling, reason.value)


def peer_certificate(assoc: Any) -> str | None:
    """The SHA-256 fingerprint of the client certificate the association's peer showed over
    TLS, or None (plain TCP, or no certificate)."""
    sock = getattr(getattr(assoc.dul, "socket", None), "socket", None)
    if not isinstance(sock, ssl.SSLSocket):
        return None
    der = sock.getpeercert(binary_form=True)
    return certificate_fingerprint(der) if der else None


def server_context(cert: Path, key: Path, ca: Path | None) -> ssl.SSLContext:
    """The listener's TLS context: TLS 1.2 or later; with ``ca``, clients' certificates are
    asked for and must be signed by it (a client without one may still connect: a title
    bound to a certificate is then refused at association)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(certfile=str(cert), keyfile=str(key))
    if ca is not None:
        context.load_verify_locations(cafile=str(ca))
        context.verify_mode = ssl.CERT_OPTIONAL
    return context


def client_context(cert: Path | None, key: Path | None, ca: Path | None) -> ssl.SSLContext:
    """The TLS context for sending to a destination: its server certificate checked against
    ``ca`` (else the system's), ours shown when configured."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca) if ca else None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if cert is not None and key is not None:
        context.load_cert_chain(certfile=str(cert), keyfile=str(key))
    return context
