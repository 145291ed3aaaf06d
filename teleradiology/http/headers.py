"""The headers every answer carries so that a browser keeps the service's pages to
themselves: no sniffing of types, no framing by other sites, no referrer sent on, a strict
content policy for the service's own pages, and HSTS when the public address is https."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from teleradiology.http.context import SETTINGS

#: The service's own pages load their scripts, styles and images from the service alone.
PAGE_POLICY = (
    "default-src 'self'; img-src 'self' data: blob:; object-src 'none'; base-uri 'self';"
    " form-action 'self'; frame-ancestors 'self'"
)
#: The OHIF viewer compiles its codecs (WebAssembly) and runs workers from blobs.
VIEWER_POLICY = (
    "default-src 'self' blob: data:; script-src 'self' 'wasm-unsafe-eval' blob:;"
    " style-src 'self' 'unsafe-inline'; object-src 'none'; base-uri 'self';"
    " frame-ancestors 'self'"
)
HSTS = "max-age=31536000; includeSubDomains"


def site_origin(request: web.Request) -> str:
    """The origin people reach the service at: the configured public address, else this
    connection's own (never a client's X-Forwarded-* header)."""
    configured = request.app[SETTINGS].public_base_url
    if configured:
        scheme, _, rest = configured.partition("://")
        return f"{scheme}://{rest.split('/', 1)[0]}"
    return f"{request.scheme}://{request.host}"


@web.middleware
async def security_headers(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        _add(request, exc)
        raise
    _add(request, response)
    return response


def _add(request: web.Request, response: web.StreamResponse) -> None:
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "SAMEORIGIN")
    headers.setdefault("Referrer-Policy", "no-referrer")
    if (response.content_type or "").startswith("text/html"):
        viewer = request.path == "/viewer" or request.path.startswith("/viewer/")
        headers.setdefault("Content-Security-Policy", VIEWER_POLICY if viewer else PAGE_POLICY)
    if site_origin(request).startswith("https://"):
        headers.setdefault("Strict-Transport-Security", HSTS)
