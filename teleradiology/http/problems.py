"""The one place errors become RFC 9457 problem+json responses."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from http import HTTPStatus

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage

from storage import audit
from storage import errors as storage_errors
from storage.records import AuditAction, AuditResult
from teleradiology.core import errors
from teleradiology.http.context import POOL, USER

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"

_STATUS: list[tuple[type[Exception], int]] = [
    (errors.Unauthorized, 401),
    (errors.TooManyAttempts, 429),
    (errors.QuotaExceeded, 429),
    (errors.Forbidden, 403),
    (errors.NotFound, 404),
    (storage_errors.NotFound, 404),
    (errors.SendAgain, 409),
    (errors.BadRequest, 400),
    (errors.TooLarge, 413),
    (errors.NotAcceptable, 406),
    (errors.WorkLost, 503),
    (errors.InvalidDicom, 400),
    (errors.UnknownSender, 403),
    (errors.DuplicateConflict, 409),
    (errors.Conflict, 409),
    (errors.InvalidState, 409),
    (storage_errors.Conflict, 409),
    (storage_errors.InvalidState, 409),
    (errors.ConfigError, 400),
    (errors.NotConfigured, 501),
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
        return await _service_problem(request, exc)
    except BadHttpMessage:
        # a body aiohttp could not parse as it read it (a multipart part's bad headers)
        return problem(
            400,
            "the request body could not be read: its multipart headers are malformed; "
            "send it again as a valid multipart body",
        )
    except Exception as exc:
        if storage_errors.is_unavailable(exc):
            return unavailable(request, exc)
        # The traceback names code, not patients: messages of our errors carry no patient data.
        log.exception("unhandled error on %s %s", request.method, request.path)
        return problem(500, "the server failed to handle this request; it has been logged")


async def _service_problem(request: web.Request, exc: Exception) -> web.Response:
    """The answer to one of our own errors: its status, and what the client may do next."""
    status = status_of(exc)
    if status is None:
        if storage_errors.is_unavailable(exc):
            return unavailable(request, exc)
        log.error("unhandled error on %s %s", request.method, request.path, exc_info=exc)
        return problem(500, "the server failed to handle this request; it has been logged")
    if status in (403, 404):
        await audit_denied(request, exc)
    headers = {"WWW-Authenticate": 'Bearer realm="telemed"'} if status == 401 else None
    kind = errors.SEND_AGAIN if isinstance(exc, errors.SendAgain) else "about:blank"
    if isinstance(exc, errors.TooManyAttempts):
        headers = {"Retry-After": str(exc.wait_s)}
    elif isinstance(exc, errors.WorkLost):
        headers = {"Retry-After": "1"}
    elif isinstance(exc, errors.QuotaExceeded):
        headers = {"Retry-After": str(exc.retry_after_s)}
        kind = errors.QUOTA_EXCEEDED
    return problem(status, str(exc), headers=headers, kind=kind)


async def audit_denied(request: web.Request, exc: Exception) -> None:
    """A signed-in caller refused on scope (403, or 404 for what lies outside it) is audited;
    the refusal stands whether or not its record could be written."""
    user = request.get(USER)
    if user is None or POOL not in request.app:
        return
    try:
        await audit.record(
            request.app[POOL],
            user_id=user.id,
            action=AuditAction.DENIED,
            object_type="request",
            object_id=f"{request.method} {request.path}",
            detail={"status": status_of(exc), "error": type(exc).__name__},
            result=AuditResult.DENIED,
        )
    except audit.AuditUnavailable:
        log.warning("a refusal on %s could not be audited", request.method)


#: Seconds a client is asked to wait before it sends again while a store is away.
RETRY_AFTER_S = 5


def unavailable(request: web.Request, exc: BaseException) -> web.Response:
    """503 with Retry-After: the database or the object store is away for now. What was
    acknowledged before stays stored; this request can be sent again as it is."""
    log.warning(
        "%s %s answered 503: a store is not answering (%s)",
        request.method,
        request.path,
        type(exc).__name__,
    )
    return problem(
        503,
        "the archive's database or object store is not answering just now; nothing is lost "
        f"of what was acknowledged before: send this request again in {RETRY_AFTER_S} s",
        headers={"Retry-After": str(RETRY_AFTER_S)},
        kind=errors.SEND_AGAIN,
    )
