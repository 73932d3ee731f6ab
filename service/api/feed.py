"""The change feed: every event appended to the log, to every subscriber, as server-sent events.

One ``FeedHub`` per server follows the log from its head: it wakes on PostgreSQL's ``NOTIFY schemalog``
(a LISTEN connection of its own, re-opened with backoff when it dies, as the daemon's), on an append
made through this server, and on a poll (the only wake-up on SQLite, where nothing notifies; on
PostgreSQL a notification missed costs one poll at most), reads what is new in position order and
puts it in each subscriber's queue. A queue is bounded: the subscriber that lets it fill (a slow
reader) is cut off (its stream ends with a ``cutoff`` event naming where to resume), and the hub
never waits for anyone.

A subscriber that gives ``Last-Event-ID`` (or ``after``) first reads what it missed from the store,
while the hub queues what comes next; positions increase, so what both deliver is dropped once:
nothing missed, nothing twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
import structlog

if TYPE_CHECKING:
    from events.store.base import EventRow
    from service.api.app import Services

log = structlog.get_logger("schemalog.api.feed")

QUEUE_SIZE = 1000
"""Events held for one subscriber before it counts as too slow and is cut off."""

CATCH_UP_CHUNK = 500


def public_row(row: EventRow) -> dict[str, Any]:
    """An event row's public form (``RecordedEvent.public``) from its stored text: no model built."""
    data: dict[str, Any] = {
        "stream": row.stream,
        "version": row.version,
        "position": row.position,
        "changeset_id": row.changeset_id,
        "actor": row.actor,
        "message": row.message,
        "recorded_at": row.recorded_at,
        "prev_hash": row.prev_hash,
        "hash": row.hash,
    }
    event = orjson.loads(row.data)
    data["type"] = event.pop("type", row.type)
    data.update(event)
    return data


@dataclass(eq=False)
class Subscriber:
    queue: asyncio.Queue[list[EventRow]] = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))
    cut: asyncio.Event = field(default_factory=asyncio.Event)


class FeedHub:
    def __init__(self, services: Services, *, poll_interval: float, listen_url: str | None):
        self.services = services
        self.poll_interval = poll_interval
        self.listen_url = listen_url
        self.position = 0
        self.subscribers: set[Subscriber] = set()
        self.wake = asyncio.Event()
        self.stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self.position = await self.head_position()
        self._tasks.append(asyncio.create_task(self._pump(), name="feed-pump"))
        if self.listen_url is not None:
            self._tasks.append(asyncio.create_task(self._listen(self.listen_url), name="feed-listen"))

    async def stop(self) -> None:
        self.stopping.set()
        for sub in list(self.subscribers):
            sub.cut.set()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def head_position(self) -> int:
        """The log's last global position (0 when empty)."""
        async with self.services.store() as store:
            newest = store.scan(descending=True, chunk=1)
            async with contextlib.aclosing(newest):
                async for chunk in newest:
                    if chunk:
                        return chunk[0].position
        return 0

    def notify(self) -> None:
        """Something was appended (by this server): read it now rather than at the next poll."""
        self.wake.set()

    def subscribe(self) -> Subscriber:
        sub = Subscriber()
        self.subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self.subscribers.discard(sub)

    async def read_after(self, position: int, limit: int) -> list[EventRow]:
        async with self.services.store() as store:
            rows: list[EventRow] = []
            chunks = store.scan(after_position=position, chunk=limit)
            async with contextlib.aclosing(chunks):
                async for chunk in chunks:
                    rows.extend(chunk)
                    if len(rows) >= limit:
                        break
            return rows[:limit]

    async def _pump(self) -> None:
        while not self.stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), self.poll_interval)
            self.wake.clear()
            try:
                while True:
                    rows = await self.read_after(self.position, CATCH_UP_CHUNK)
                    if not rows:
                        break
                    self.position = rows[-1].position
                    self._fan_out(rows)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the store away for a moment: the next wake-up reads on from the same place
                log.warning("feed_read_failed", error=f"{type(exc).__name__}: {exc}")

    def _fan_out(self, rows: list[EventRow]) -> None:
        for sub in list(self.subscribers):
            if sub.cut.is_set():
                continue
            try:
                sub.queue.put_nowait(rows)
            except asyncio.QueueFull:
                sub.cut.set()
                self.subscribers.discard(sub)
                log.info("feed_subscriber_cut_off", queued=sub.queue.qsize())

    async def _listen(self, url: str) -> None:
        import asyncpg

        from events.store.postgres import NOTIFY_CHANNEL, normalise_url

        backoff = 0.2
        while not self.stopping.is_set():
            conn: Any = None
            dead = asyncio.Event()
            try:
                conn = await asyncio.wait_for(asyncpg.connect(normalise_url(url)), 10)
                await conn.add_listener(NOTIFY_CHANNEL, lambda *_args: self.wake.set())
                conn.add_termination_listener(lambda _c, dead=dead: dead.set())
                log.info("feed_listening", channel=NOTIFY_CHANNEL)
                self.wake.set()  # what was appended while no one listened
                backoff = 0.2
                while not self.stopping.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(dead.wait(), max(self.poll_interval, 1.0))
                    if dead.is_set():
                        raise ConnectionError("the listening connection was closed by the server")
                    await asyncio.wait_for(conn.fetchval("SELECT 1"), 10)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("feed_listen_lost", error=f"{type(exc).__name__}: {exc}", retry_in=round(backoff, 2))
            finally:
                if conn is not None:
                    with contextlib.suppress(Exception):
                        conn.terminate()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), backoff * random.uniform(0.5, 1.0))
            backoff = min(backoff * 2, 30.0)

    async def events(self, after: int | None, visible: Callable[[str], bool]) -> AsyncIterator[dict[str, Any]]:
        """One subscriber's server-sent events: those past ``after`` (None: from now on) that ``visible``
        lets through, then each new one; a ``cutoff`` event, and the end, when it falls behind."""
        sub = self.subscribe()
        try:
            sent = self.position if after is None else after
            if after is not None:  # what was missed, from the store, while the hub queues what is new
                while True:
                    rows = await self.read_after(sent, CATCH_UP_CHUNK)
                    if not rows:
                        break
                    for row in rows:
                        if visible(row.stream):
                            yield _message(row)
                    sent = rows[-1].position
                    if sub.cut.is_set():
                        break
            while not sub.cut.is_set():
                getting = asyncio.ensure_future(sub.queue.get())
                cutting = asyncio.ensure_future(sub.cut.wait())
                try:
                    await asyncio.wait({getting, cutting}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    cutting.cancel()
                    if not getting.done():
                        getting.cancel()
                if not getting.done() or getting.cancelled():
                    break
                for row in getting.result():
                    if row.position <= sent:
                        continue
                    sent = row.position
                    if visible(row.stream):
                        yield _message(row)
            if not self.stopping.is_set():
                yield {
                    "event": "cutoff",
                    "data": orjson.dumps(
                        {"detail": "this subscriber fell too far behind: reconnect with Last-Event-ID", "after": sent}
                    ).decode(),
                    "id": str(sent),
                }
        finally:
            self.unsubscribe(sub)


def _message(row: EventRow) -> dict[str, Any]:
    return {"id": str(row.position), "event": "event", "data": orjson.dumps(public_row(row)).decode()}
