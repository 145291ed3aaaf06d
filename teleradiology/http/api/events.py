"""The server-sent events of /api/v1/events, declared as the API's other routes are (the
stream and its broadcaster are ``http/sse.py``'s)."""

from __future__ import annotations

from aiohttp import web

from teleradiology.http import sse
from teleradiology.http.api.endpoints import Routes
from teleradiology.http.models import EventsQuery

routes = Routes(tag="clinic")

routes.get(
    "/api/v1/events",
    query=EventsQuery,
    media={
        "text/event-stream": {
            "schema": {
                "type": "string",
                "description": "frames of 'id:', 'event:' (the kind) and 'data:' (an "
                "EventData as JSON)",
            }
        }
    },
    summary="Server-sent events: the caller's notifications (reports, critical results, "
    "returned studies, new cases); resume with Last-Event-ID or ?after=",
)(sse.stream)


def add_routes(app: web.Application) -> None:
    routes.add_to(app)
