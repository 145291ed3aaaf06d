"""Server-sent events on /api/v1/events: each user's notifications, pushed as they happen.

One poller per process reads new notification rows and hands each to the streams of the
users it is addressed to; a stream that reconnects with ``Last-Event-ID`` first replays
what it missed from the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from storage import notifications
from storage.db import Pool
from storage.records import Notification, User
from teleradiology.http.context import POOL, current_user
from teleradiology.http.params import iso

log = logging.getLogger(__name__)

POLL_S = 0.5
HEARTBEAT_S = 15.0


class Broadcaster:
    """Fans new notifications out to the open streams (each an asyncio queue)."""

    def __init__(self) -> None:
        self._streams: set[asyncio.Queue[Notification]] = set()

    def subscribe(self) -> asyncio.Queue[Notification]:
        queue: asyncio.Queue[Notification] = asyncio.Queue(maxsize=1000)
        self._streams.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[Notification]) -> None:
        self._streams.discard(queue)

    def publish(self, item: Notification) -> None:
        for queue in self._streams:
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(item)

    async def run(self, pool: Pool) -> None:
        last = await notifications.last_id(pool)
        while True:
            try:
                for item in await notifications.after(pool, last):
                    last = item.id
                    self.publish(item)
            except Exception:
                log.exception("reading notifications failed; retrying")
            await asyncio.sleep(POLL_S)


BROADCASTER = web.AppKey("broadcaster", Broadcaster)


async def _broadcasting(app: web.Application) -> AsyncIterator[None]:
    broadcaster = Broadcaster()
    app[BROADCASTER] = broadcaster
    task = asyncio.create_task(broadcaster.run(app[POOL]), name="notifications")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _frame(item: Notification) -> bytes:
    data = {
        "id": item.id,
        "at": iso(item.at),
        "kind": item.kind,
        "case_id": item.case_id,
        "report_id": item.report_id,
        "detail": item.detail,
    }
    text = json.dumps(data, ensure_ascii=False)
    return f"id: {item.id}\nevent: {item.kind}\ndata: {text}\n\n".encode()


async def stream(request: web.Request) -> web.StreamResponse:
    user = current_user(request)
    pool = request.app[POOL]
    queue = request.app[BROADCASTER].subscribe()
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        }
    )
    try:
        await response.prepare(request)
        await _push(request, response, queue, user, pool)
    except ConnectionResetError:
        # The browser closed the page or lost the link: the stream ends, nothing failed.
        pass
    finally:
        request.app[BROADCASTER].unsubscribe(queue)
    return response


async def _push(
    request: web.Request,
    response: web.StreamResponse,
    queue: asyncio.Queue[Notification],
    user: User,
    pool: Pool,
) -> None:
    """Replay what the client missed (``Last-Event-ID``), then push as notifications come."""
    await response.write(b"retry: 3000\n\n")
    text = request.headers.get("Last-Event-ID") or request.query.get("after")
    last = int(text) if text and text.isdigit() else None
    if last is not None:
        for item in await notifications.for_user(pool, user, last):
            await response.write(_frame(item))
            last = item.id
    while True:
        try:
            item = await asyncio.wait_for(queue.get(), HEARTBEAT_S)
        except TimeoutError:
            await response.write(b": keep-alive\n\n")
            continue
        if item.for_user(user) and (last is None or item.id > last):
            await response.write(_frame(item))
            last = item.id


def add_routes(app: web.Application) -> None:
    app.cleanup_ctx.append(_broadcasting)
    app.router.add_get("/api/v1/events", stream)
