"""Server-sent events on /api/v1/events: each user's notifications, pushed as they happen.

One poller per process reads the notification record in cursor order (see
``storage.records.Cursor``: a notification committed late is never skipped), woken by
LISTEN/NOTIFY and polling only as a fallback, and hands each to the streams of the users it is
addressed to. A stream that reconnects with ``Last-Event-ID`` (or ``?after=``) first replays
what it missed from the database; a stream too slow to keep up is told to resync and closed,
and its reconnection replays the rest. A stream whose token is revoked or expires, or whose
user is deactivated, is told so and closed within ``ACCESS_CHECK_S``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from aiohttp import web

from storage import accounts, audit, notifications
from storage.db import Pool
from storage.records import AuditAction, Cursor, Notification, User
from teleradiology.http.context import POOL, TOKEN, current_user
from teleradiology.http.models import EventData, EventsQuery
from teleradiology.http.params import query_of

log = logging.getLogger(__name__)

#: Without a wake-up from LISTEN (lost, or not yet back), the record is read this often.
POLL_S = 2.0
#: A notification held behind a transaction still running is looked for again this soon.
HELD_S = 0.1
HEARTBEAT_S = 15.0
#: Notifications waiting for one stream before it is told to resync.
STREAM_BACKLOG = 1000
#: How often the tokens of the open streams are checked (one query for them all).
ACCESS_CHECK_S = 2.0


@dataclass(eq=False)
class Stream:
    """One open event stream: the token it was opened with, what waits to be written
    (None: its access ended), and whether some was lost."""

    token: str
    queue: asyncio.Queue[Notification | None] = field(
        default_factory=lambda: asyncio.Queue(maxsize=STREAM_BACKLOG)
    )
    overflowed: asyncio.Event = field(default_factory=asyncio.Event)
    access_ended: bool = False

    def end_access(self) -> None:
        self.access_ended = True
        try:
            self.queue.put_nowait(None)
        except asyncio.QueueFull:
            self.overflowed.set()


class Broadcaster:
    """Fans new notifications out to the open streams, from ``cursor`` on."""

    def __init__(self) -> None:
        self._streams: set[Stream] = set()
        self.cursor = Cursor(tx=0, id=0)

    def subscribe(self, token: str) -> Stream:
        stream = Stream(token=token)
        self._streams.add(stream)
        return stream

    async def check_access(self, pool: Pool) -> None:
        """End the streams whose token no longer lets their user in."""
        open_streams = [s for s in self._streams if not s.access_ended]
        if not open_streams:
            return
        valid = await accounts.still_valid(pool, sorted({s.token for s in open_streams}))
        for s in open_streams:
            if s.token not in valid:
                s.end_access()

    async def watch_access(self, pool: Pool) -> None:
        while True:
            await asyncio.sleep(ACCESS_CHECK_S)
            try:
                await self.check_access(pool)
            except Exception as exc:  # the database is away: the next round tries again
                log.warning("checking the event streams' tokens failed (%s)", type(exc).__name__)

    def unsubscribe(self, stream: Stream) -> None:
        self._streams.discard(stream)

    def publish(self, item: Notification) -> None:
        for stream in self._streams:
            try:
                stream.queue.put_nowait(item)
            except asyncio.QueueFull:
                stream.overflowed.set()

    async def run(self, pool: Pool) -> None:
        self.cursor = await _first_cursor(pool)
        while True:
            try:
                async with notifications.listening(pool) as listening:
                    await self._follow(pool, listening)
                log.warning("the notification listener lost its connection; listening again")
            except Exception as exc:  # the database is away: poll until it is back
                log.warning("listening for notifications failed (%s); polling", type(exc).__name__)
            await self._publish_new(pool)
            await asyncio.sleep(POLL_S)

    async def _follow(self, pool: Pool, listening: notifications.Listening) -> None:
        """Publish as notifications commit, until the listening connection is lost."""
        while not listening.lost.is_set():
            listening.woken.clear()
            await self._publish_new(pool)
            wait = HELD_S if await notifications.held(pool) else POLL_S
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await listening.woken.wait()

    async def _publish_new(self, pool: Pool) -> None:
        """Publish every notification after the cursor whose place is final."""
        try:
            while batch := await notifications.after(pool, self.cursor):
                for item in batch:
                    self.publish(item)
                    self.cursor = item.cursor
        except Exception as exc:
            log.warning("reading notifications failed (%s); retrying", type(exc).__name__)


async def _first_cursor(pool: Pool) -> Cursor:
    while True:
        try:
            return await notifications.now(pool)
        except Exception:
            log.exception("reading the notification record failed; retrying")
            await asyncio.sleep(POLL_S)


BROADCASTER = web.AppKey("broadcaster", Broadcaster)


async def _broadcasting(app: web.Application) -> AsyncIterator[None]:
    broadcaster = Broadcaster()
    app[BROADCASTER] = broadcaster
    tasks = [
        asyncio.create_task(broadcaster.run(app[POOL]), name="notifications"),
        asyncio.create_task(broadcaster.watch_access(app[POOL]), name="stream-access"),
    ]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _frame(item: Notification) -> bytes:
    text = json.dumps(EventData.from_record(item).model_dump(mode="json"), ensure_ascii=False)
    return f"id: {item.cursor}\nevent: {item.kind}\ndata: {text}\n\n".encode()


#: Sent to a stream that fell too far behind, before it is closed: reconnecting (as an
#: EventSource does by itself) replays what it missed from the record.
RESYNC = b'event: resync\ndata: {"reason": "too many notifications waited for this stream"}\n\n'
#: Sent before a stream whose token stopped working is closed (reconnecting answers 401).
SIGNED_OUT = (
    b'event: signed-out\ndata: {"reason": "the token is revoked or expired, or the user '
    b'is deactivated"}\n\n'
)


async def stream(request: web.Request) -> web.StreamResponse:
    user = current_user(request)
    pool = request.app[POOL]
    subscribed = request.app[BROADCASTER].subscribe(request[TOKEN])
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        }
    )
    try:
        await response.prepare(request)
        await _push(request, response, subscribed, user, pool)
    except ConnectionResetError:
        # The browser closed the page or lost the link: the stream ends, nothing failed.
        pass
    finally:
        request.app[BROADCASTER].unsubscribe(subscribed)
    return response


async def _start(request: web.Request, pool: Pool) -> Cursor | None:
    """Where the client asks to start: ``Last-Event-ID`` or ``?after=`` (a cursor, or a
    notification id as an older release wrote it); None: from now."""
    text = request.headers.get("Last-Event-ID") or query_of(request, EventsQuery).after or ""
    if text.strip().isdigit():
        # ``0``: from the start; an id no longer found: from the start too (a duplicate is
        # better than a gap)
        found = await notifications.cursor_of(pool, int(text)) if int(text) else None
        return found or Cursor(tx=0, id=0)
    return Cursor.parse(text)


async def _push(
    request: web.Request,
    response: web.StreamResponse,
    subscribed: Stream,
    user: User,
    pool: Pool,
) -> None:
    """Replay what the client missed, then push as notifications come; a stream that falls
    too far behind is told to resync and ends."""
    await response.write(b"retry: 3000\n\n")
    last = await _start(request, pool)
    if last is not None:
        while replay := await notifications.for_user(pool, user, last):
            for old in replay:
                await _tell(response, pool, user, old)
                last = old.cursor
    while not subscribed.overflowed.is_set():
        try:
            async with asyncio.timeout(HEARTBEAT_S):
                item = await subscribed.queue.get()
        except TimeoutError:
            await response.write(b": keep-alive\n\n")
            continue
        if item is None:  # the token stopped working
            break
        if item.for_user(user) and (last is None or last < item.cursor):
            await _tell(response, pool, user, item)
            last = item.cursor
    await response.write(SIGNED_OUT if subscribed.access_ended else RESYNC)


async def _tell(response: web.StreamResponse, pool: Pool, user: User, item: Notification) -> None:
    """Push one notification to the user, on the record first (it names a case or a report)."""
    await audit.record(
        pool,
        user_id=user.id,
        action=AuditAction.READ,
        object_type="notification",
        object_id=item.id,
        detail={"kind": str(item.kind)}
        | ({"case": item.case_id} if item.case_id else {})
        | ({"report": item.report_id} if item.report_id else {}),
    )
    await response.write(_frame(item))


def add_routes(app: web.Application) -> None:
    """The broadcaster; the stream's route is declared in ``api/events.py``."""
    app.cleanup_ctx.append(_broadcasting)
