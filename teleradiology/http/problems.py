"""The one place errors become RFC 9457 problem+json responses."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from http import HTTPStatus

from aiohttp import web

from storage import errors as storage_errors
from teleradiology.core import errors

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"

_STATUS: list[tuple[type[Exception], int]] = [
    (errors.Unauthorized, 401),
    (errors.Forbidden, 403),
    (errors.NotFound, 404),
    (storage_errors.NotFound, 404),
    (errors.SendAgain, 409),
    (errors.BadRequest, 400),
    (errors.TooLarge, 413),
    (errors.NotAcceptable, 406),
    (errors.InvalidDicom, 400),
    (errors.UnknownSender, 403),
    (errors.DuplicateConflict, 409),
    (errors.Conflict, 409),
    (errors.InvalidState, 409),
    (storage_errors.Conflict, 409),
    (storage_errors.InvalidState, 409),
    (errors.ConfigError, 400),
]


def problem(
    status: int,
    detail: str,
    *,
    title: str | None = None,
    headers: dict[str, str] | None = None,
    kind: str = "about:blank",
) -> web.Response:
    """A problem+json response; ``detail`` is written for the person who must act on it, and
    ``kind`` (its ``type``) for the program that must: ``SEND_AGAIN`` asks for a retry."""
    body = {
        "type": kind,
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    return web.Response(
        status=status,
        text=json.dumps(body, ensure_ascii=False),
        content_type=PROBLEM_JSON,
        headers=headers,
    )


def status_of(exc: Exception) -> int | None:
    for kind, status in _STATUS:
        if isinstance(exc, kind):
            return status
    return None


@web.middleware
async def problem_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        detail = exc.text if exc.text and not exc.text.startswith(f"{exc.status}:") else exc.reason
        headers = {
            k: v for k, v in exc.headers.items() if k.lower() in ("allow", "www-authenticate")
        }
        return problem(exc.status, detail or exc.reason, headers=headers)
    except (errors.ServiceError, storage_errors.StorageError) as exc:
        status = status_of(exc)
        if status is None:
            raise
        challenge = {"WWW-Authenticate": 'Bearer realm="telemed"'} if status == 401 else None
        kind = errors.SEND_AGAIN if isinstance(exc, errors.SendAgain) else "about:blank"
        return problem(status, str(exc), headers=challenge, kind=kind)
    except Exception:
        # The traceback names code, not patients: messages of our errors carry no patient data.
        log.exception("unhandled error on %s %s", request.method, request.path)
        return problem(500, "the server failed to handle this request; it has been logged")
