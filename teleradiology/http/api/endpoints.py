"""One declaration per route of /api/v1: the aiohttp route and its OpenAPI operation are both
made from it.

A module declares its routes on a ``Routes`` table with a decorator per handler::

    routes = Routes(tag="reading")

    @routes.post("/api/v1/cases/{id}/claim", path=RecordPath, answer=CaseOut,
                 summary="Claim (or renew the lease on) a case")
    async def claim(request: web.Request) -> web.Response: ...

``routes.add_to(app)`` registers them; ``openapi.openapi_document`` describes them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
H = TypeVar("H", bound=Handler)

#: The problems every operation may answer.
PROBLEMS = (400, 401, 403, 404, 409)


@dataclass(frozen=True, kw_only=True)
class Endpoint:
    """A route of the API and what it takes and answers."""

    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    #: The JSON body's model, or ``body_media``: the content of a body that is not JSON.
    body: type[BaseModel] | None = None
    body_media: Mapping[str, Any] | None = None
    query: type[BaseModel] | None = None
    #: The path parameters' model (without one, each ``{name}`` is text).
    path_params: type[BaseModel] | None = None
    #: The JSON answer's model, or ``media``: the content of an answer that is not JSON.
    answer: type[BaseModel] | None = None
    media: Mapping[str, Any] | None = None
    headers: Mapping[str, Any] | None = None
    #: The success status, and others that answer the same.
    status: int = 200
    also: tuple[int, ...] = ()
    problems: tuple[int, ...] = PROBLEMS
    #: Callable without a token.
    public: bool = False


@dataclass
class Routes:
    """The routes one module declares."""

    tag: str
    endpoints: list[Endpoint] = field(default_factory=list)

    def route(self, method: str, url: str, /, **declared: Any) -> Callable[[H], H]:
        tag = declared.pop("tag", self.tag)
        if "path" in declared:
            declared["path_params"] = declared.pop("path")

        def register(handler: H) -> H:
            self.endpoints.append(
                Endpoint(method=method, path=url, handler=handler, tag=tag, **declared)
            )
            return handler

        return register

    def get(self, url: str, /, **declared: Any) -> Callable[[H], H]:
        return self.route("GET", url, **declared)

    def post(self, url: str, /, **declared: Any) -> Callable[[H], H]:
        return self.route("POST", url, **declared)

    def put(self, url: str, /, **declared: Any) -> Callable[[H], H]:
        return self.route("PUT", url, **declared)

    def patch(self, url: str, /, **declared: Any) -> Callable[[H], H]:
        return self.route("PATCH", url, **declared)

    def delete(self, url: str, /, **declared: Any) -> Callable[[H], H]:
        return self.route("DELETE", url, **declared)

    def add_to(self, app: web.Application) -> None:
        for e in self.endpoints:
            if e.method == "GET":
                app.router.add_get(e.path, e.handler)
            else:
                app.router.add_route(e.method, e.path, e.handler)


def reply(
    answer: BaseModel,
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    exclude_none: bool = False,
) -> web.Response:
    """A JSON answer: the response model as the document describes it."""
    return web.json_response(
        answer.model_dump(mode="json", by_alias=True, exclude_none=exclude_none),
        status=status,
        headers=headers,
    )
