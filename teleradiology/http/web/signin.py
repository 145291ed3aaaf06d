"""Signing in and out with a password; the session cookie."""

from __future__ import annotations

from urllib.parse import unquote

from aiohttp import web

from teleradiology.core.language import N_, parse_language
from teleradiology.http.session import set_cookie, sign_in, sign_out
from teleradiology.http.web.common import LANGUAGE_COOKIE, base_context, render


def _safe_next(target: str | None) -> str:
    """Only a path on this site (no scheme, no //host) may follow sign-in; browsers drop
    tabs and line breaks from a URL, so ``/%09/evil.example`` would be ``//evil.example``."""
    if not target:
        return "/"
    decoded = unquote(target)
    if (
        any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F or c == "\\" for c in decoded)
        or not target.startswith("/")
        or target.startswith("//")
        or decoded.startswith("//")
    ):
        return "/"
    return target


async def _login(
    request: web.Request, next_path: str, error: str = "", status: int = 200
) -> web.Response:
    context = await base_context(request, None)
    context.update(title=context["_"]("登录"), next=next_path, error=error)
    return render("login.html", context, status=status)


async def login_page(request: web.Request) -> web.Response:
    return await _login(request, _safe_next(request.query.get("next")))


async def login_submit(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    username, password = form.get("username"), form.get("password")
    next_path = _safe_next(str(form.get("next") or "/"))
    if not isinstance(username, str) or not isinstance(password, str):
        return await _login(request, next_path, N_("请输入用户名和密码"), 400)
    token = await sign_in(request, username, password)
    if token is None:
        error = N_("用户名或密码错误")
        return await _login(request, next_path, error, 401)
    response = web.Response(
        status=303, headers={"Location": next_path, "Cache-Control": "no-store"}
    )
    set_cookie(request, response, token)
    return response


async def logout(request: web.Request) -> web.StreamResponse:
    response = web.Response(status=303, headers={"Location": "/login", "Cache-Control": "no-store"})
    await sign_out(request, response)
    return response


async def choose_language(request: web.Request) -> web.StreamResponse:
    """The sign-in page's language switch: kept in a cookie until the visitor signs in
    (then their account's language is theirs)."""
    form = await request.post()
    chosen = parse_language(str(form.get("language") or ""))
    next_path = _safe_next(str(form.get("next") or "/login"))
    response = web.Response(
        status=303, headers={"Location": next_path, "Cache-Control": "no-store"}
    )
    if chosen is not None:
        response.set_cookie(
            LANGUAGE_COOKIE,
            chosen.value,
            max_age=365 * 24 * 3600,
            path="/",
            samesite="Strict",
            httponly=True,
            secure=request.secure,
        )
    return response
