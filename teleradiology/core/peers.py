"""Who may open a DICOM association: the peer rules of calling AE titles, and the refusal
limit per peer address. Pure: plain values in, plain values out (the clock is passed in).

A calling AE title is not a credential by itself. Each configured title may be bound to the
addresses it calls from (a host or a CIDR block) and to a client certificate (its SHA-256
fingerprint, over DICOM TLS). A title bound to a certificate is refused without it; a title
bound to addresses is refused from any other. Every refusal looks the same to the peer, so
that titles cannot be enumerated.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from teleradiology.core.errors import ConfigError
from teleradiology.core.language import N_

#: How a certificate fingerprint is written, and the command that prints it.
FINGERPRINT_FORM = N_(
    "证书指纹 %(text)r：须为 64 位十六进制（DER 证书的 SHA-256，即 %(command)s 的输出）"
)
FINGERPRINT_COMMAND = "`openssl x509 -noout -fingerprint -sha256`"

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_FINGERPRINT = re.compile(r"^[0-9a-f]{64}$")


def fingerprint(text: str) -> str:
    """A SHA-256 certificate fingerprint as stored: 64 lowercase hex digits (colons, spaces
    and case as ``openssl x509 -fingerprint -sha256`` prints them are accepted).

    Raises
    ------
    ConfigError
        It is not 32 bytes of hex.
    """
    cleaned = re.sub(r"[\s:]", "", text).lower()
    if cleaned.startswith("sha256="):
        cleaned = cleaned.removeprefix("sha256=")
    if not _FINGERPRINT.match(cleaned):
        raise ConfigError(FINGERPRINT_FORM, text=text, command=FINGERPRINT_COMMAND)
    return cleaned


def certificate_fingerprint(der: bytes) -> str:
    """The SHA-256 fingerprint of a certificate in DER form."""
    return hashlib.sha256(der).hexdigest()


def address_block(text: str) -> IpNetwork | None:
    """The network an address or CIDR text names, or None when it is a host name."""
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        return None


def check_peer_host(text: str) -> str:
    """A peer host as configured: an IP address, a CIDR block or a host name.

    Raises
    ------
    ConfigError
        It is none of these.
    """
    value = text.strip()
    if address_block(value) is not None:
        return value
    if "/" in value or not re.match(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$", value):
        raise ConfigError(
            N_("对端主机 %(text)r：须为 IP 地址（10.1.2.3）、CIDR 网段（10.1.2.0/24）或主机名"),
            text=text,
        )
    return value


@dataclass(frozen=True, kw_only=True)
class PeerRule:
    """What a calling AE title must show: an address in ``networks`` (when any is set) and
    a certificate among ``certificates`` (when any is set). ``bound`` is False for a title
    with neither (kept only while a network migrates)."""

    ae_title: str
    networks: tuple[IpNetwork, ...] = ()
    certificates: frozenset[str] = frozenset()
    #: An address was configured (a host name that did not resolve leaves ``networks``
    #: empty and still binds: nothing matches it).
    address_bound: bool = False

    @property
    def bound(self) -> bool:
        return self.address_bound or bool(self.certificates)


class Refusal(StrEnum):
    """Why an association was refused (for the operator's log; never sent to the peer)."""

    UNKNOWN_TITLE = "calling AE title not configured"
    WRONG_ADDRESS = "peer address not configured for this AE title"
    NO_CERTIFICATE = "this AE title needs its TLS client certificate"
    WRONG_CERTIFICATE = "TLS client certificate not configured for this AE title"
    UNBOUND = "AE title bound to neither an address nor a certificate"
    LOCKED_OUT = "too many refused associations from this address"


def admit(
    rule: PeerRule | None,
    address: str,
    certificate: str | None,
    *,
    allow_unbound: bool,
) -> Refusal | None:
    """Why the peer at ``address`` showing ``certificate`` (a fingerprint, or None without
    TLS or without a client certificate) may not call as the rule's title; None: it may."""
    if rule is None:
        return Refusal.UNKNOWN_TITLE
    if rule.certificates:
        if certificate is None:
            return Refusal.NO_CERTIFICATE
        if certificate not in rule.certificates:
            return Refusal.WRONG_CERTIFICATE
    if rule.address_bound:
        peer = _ip(address)
        if peer is None or not any(peer in net for net in rule.networks):
            return Refusal.WRONG_ADDRESS
    if not rule.bound and not allow_unbound:
        return Refusal.UNBOUND
    return None


def _ip(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def peer_rule(
    ae_title: str,
    *,
    hosts: Iterable[str] = (),
    resolved: Iterable[str] = (),
    certificates: Iterable[str] = (),
) -> PeerRule:
    """The rule of a title bound to ``hosts`` (addresses, CIDR blocks or host names, whose
    addresses are ``resolved``) and to client certificate fingerprints."""
    hosts = [h for h in hosts if h]
    networks = [n for n in (address_block(h) for h in hosts) if n is not None]
    networks += [n for n in (address_block(a) for a in resolved) if n is not None]
    return PeerRule(
        ae_title=ae_title,
        networks=tuple(dict.fromkeys(networks)),
        certificates=frozenset(c for c in certificates if c),
        address_bound=bool(hosts),
    )


# --- the refusal limit ------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class LimitPolicy:
    """After ``refusals`` refused associations within ``window_s``, an address is refused at
    once for ``first_block_s``; each further block doubles, up to ``longest_block_s``. An
    address quiet for ``forget_after_s`` starts afresh, so an honest peer is never locked
    out for good."""

    refusals: int = 5
    window_s: float = 60.0
    first_block_s: float = 30.0
    longest_block_s: float = 900.0
    forget_after_s: float = 3600.0
    #: Addresses remembered at most (the least recently refused are forgotten first).
    remembered: int = 10_000

    def __post_init__(self) -> None:
        if self.refusals < 1 or self.window_s <= 0 or self.first_block_s <= 0:
            raise ConfigError("the refusal limit needs at least 1 refusal and positive times")
        if self.longest_block_s < self.first_block_s:
            raise ConfigError("the longest block cannot be shorter than the first")


@dataclass
class _Record:
    refused_at: list[float] = field(default_factory=list)
    blocked_until: float = 0.0
    next_block_s: float = 0.0
    last_seen: float = 0.0


class RefusalLimit:
    """Refused associations counted per peer address (not thread-safe: callers lock)."""

    def __init__(self, policy: LimitPolicy | None = None) -> None:
        self.policy = policy or LimitPolicy()
        self._records: OrderedDict[str, _Record] = OrderedDict()

    def blocked(self, address: str, now: float) -> bool:
        """Whether associations from ``address`` are refused at once at ``now``."""
        record = self._fresh(address, now)
        return record is not None and now < record.blocked_until

    def refused(self, address: str, now: float) -> bool:
        """Count a refusal of ``address`` at ``now``; True when it starts a block."""
        p = self.policy
        record = self._fresh(address, now) or _Record(next_block_s=p.first_block_s)
        self._records[address] = record
        self._records.move_to_end(address)
        while len(self._records) > p.remembered:
            self._records.popitem(last=False)
        record.last_seen = now
        record.refused_at = [t for t in record.refused_at if now - t < p.window_s] + [now]
        if now < record.blocked_until or len(record.refused_at) < p.refusals:
            return False
        record.blocked_until = now + record.next_block_s
        record.next_block_s = min(record.next_block_s * 2, p.longest_block_s)
        record.refused_at = []
        return True

    def _fresh(self, address: str, now: float) -> _Record | None:
        record = self._records.get(address)
        if record is None:
            return None
        quiet = now - max(record.last_seen, record.blocked_until)
        if quiet >= self.policy.forget_after_s:
            del self._records[address]
            return None
        return record
