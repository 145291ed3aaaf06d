"""The one place errors become RFC 9457 problem+json responses.

A problem's ``detail`` is in the caller's language: the signed-in user's (bearer token or
the pages' session), else the one the request's ``Accept-Language`` prefers, else the sign-in
page's switch, else zh-CN. Its ``type``, ``title`` and ``status`` are the same in every
language: programs read those.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from http import HTTPStatus

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage

from storage import audit
from storage import errors as storage_errors
from storage.records import AuditAction, AuditResult, Language
from teleradiology.core import errors
from teleradiology.core.language import N_, accepted_language, gettext, parse_language
from teleradiology.http.context import POOL, USER
from teleradiology.http.session import LANGUAGE_COOKIE, session_user

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
    (errors.UnsupportedMediaType, 415),
    (errors.Unprocessable, 422),
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


def known_language(request: web.Request) -> Language:
    """The caller's language as far as the request itself tells it (no look-up)."""
    user = request.get(USER)
    if user is not None:
        return user.language
    return (
        accepted_language(request.headers.get("Accept-Language"))
        or parse_language(request.cookies.get(LANGUAGE_COOKIE))
        or Language.ZH_CN
    )


async def caller_language(request: web.Request) -> Language:
    """The caller's language: the signed-in user's, also when the error came before a page
    looked its user up (the session cookie's), else :func:`known_language`."""
    if request.get(USER) is None and POOL in request.app:
        try:
            user = await session_user(request)
        except Exception as exc:
            if not storage_errors.is_unavailable(exc):
                raise
            user = None  # the store is away: the answer says so in the header's language
        if user is not None:
            return user.language
    return known_language(request)


#: What a caller reads when the server itself failed.
FAILED = N_("服务器未能处理此请求，已记录在日志中")


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
        malformed = N_("无法读取请求正文：其 multipart 头部有误；请以有效的 multipart 正文重新发送")
        return problem(400, gettext(known_language(request))(malformed))
    except Exception as exc:
        if storage_errors.is_unavailable(exc):
            return unavailable(request, exc)
        # The traceback names code, not patients: messages of our errors carry no patient data.
        log.exception("unhandled error on %s %s", request.method, request.path)
        return problem(500, gettext(known_language(request))(FAILED))


async def _service_problem(request: web.Request, exc: Exception) -> web.Response:
    """The answer to one of our own errors: its status, and what the client may do next."""
    status = status_of(exc)
    if status is None:
        if storage_errors.is_unavailable(exc):
            return unavailable(request, exc)
        log.error("unhandled error on %s %s", request.method, request.path, exc_info=exc)
        return problem(500, gettext(known_language(request))(FAILED))
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
    if isinstance(exc, errors.ServiceError):
        detail = exc.say(await caller_language(request))
    else:
        detail = str(exc)  # storage's errors name records, in no language of their own
    return problem(status, detail, headers=headers, kind=kind)


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
    away = N_("数据库或对象存储暂无响应；已确认接收的不会丢失：请 %(s)s 秒后重发此请求")
    return problem(
        503,
        gettext(known_language(request))(away) % {"s": RETRY_AFTER_S},
        headers={"Retry-After": str(RETRY_AFTER_S)},
        kind=errors.SEND_AGAIN,
    )
