"""Requests that came through a reverse proxy: the client's address, scheme and host are
taken from X-Forwarded-For, -Proto and -Host only when the connection itself comes from a
configured trusted proxy (``TELEMED_TRUSTED_PROXIES``); from anyone else those headers are
ignored, so a client cannot choose the address the audit and the sign-in limits see, nor
claim HTTPS for itself."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from ipaddress import IPv4Network, IPv6Network, ip_address

from aiohttp import web

from teleradiology.http.context import SETTINGS

Networks = Sequence[IPv4Network | IPv6Network]


def trusted(address: str | None, proxies: Networks) -> bool:
    """Whether ``address`` is one of the trusted proxies."""
    if not address or not proxies:
        return False
    try:
        ip = ip_address(address.strip().strip("[]"))
    except ValueError:
        return False
    return any(ip in network for network in proxies)


def client_address(forwarded_for: str, peer: str, proxies: Networks) -> str:
    """The client behind the chain of proxies: the right-most address of X-Forwarded-For
    that is not a trusted proxy (each proxy appends the address it was called from)."""
    chain = [peer, *reversed([a.strip() for a in forwarded_for.split(",") if a.strip()])]
    for hop in chain[:-1]:
        if not trusted(hop, proxies):
            return hop
    return chain[-1]


def _last(value: str | None) -> str | None:
    """The value the nearest proxy set (the last of a comma-separated list)."""
    if not value:
        return None
    last = value.split(",")[-1].strip()
    return last or None


@web.middleware
async def forwarded_by_trusted_proxy(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    proxies = request.app[SETTINGS].trusted_proxies
    if not trusted(request.remote, proxies):
        return await handler(request)
    changes: dict[str, str] = {}
    forwarded_for = request.headers.get("X-Forwarded-For")
    if forwarded_for:
        changes["remote"] = client_address(forwarded_for, request.remote or "", proxies)
    scheme = _last(request.headers.get("X-Forwarded-Proto"))
    if scheme in ("http", "https"):
        changes["scheme"] = scheme
    host = _last(request.headers.get("X-Forwarded-Host"))
    if host:
        changes["host"] = host
    return await handler(request.clone(**changes) if changes else request)  # type: ignore[arg-type]
