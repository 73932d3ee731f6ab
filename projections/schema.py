"""The schema at any point of a stream: head, a version, a time or a tag.

A projection is a plain fold of the log (events.aggregate's rules). Snapshots
are only a starting state for the fold: stored beside the log, rebuildable at
any time, and checked before use. A snapshot is used only if its digest matches
its body and the event hash it was taken at is still the log's hash at that
version; anything else is ignored (and the fold starts further back).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog

from events.aggregate import State
from events.catalog import POINT_HEAD, POINT_NEGATIVE, POINT_TIME, POINT_VERSION, TagCreated
from events.model import Schema, Table
from events.store.base import EventStore
from projections.replay import Replay, gc_paused

log = structlog.get_logger("schemalog.projections")

SNAPSHOT_EVERY = 1000
"""Take a snapshot each time a fold passes a multiple of this many versions."""


class PointError(ValueError):
    """A point that names nothing in the stream (unknown tag, version past head, ...)."""


@dataclass(frozen=True)
class Point:
    """Where in a stream: exactly one of version, time, tag; none of them is the head."""

    version: int | None = None
    time: datetime | None = None
    tag: str | None = None

    def __str__(self) -> str:
        if self.version is not None:
            return str(self.version)
        if self.time is not None:
            return self.time.isoformat()
        if self.tag is not None:
            return self.tag
        return "head"


HEAD = Point()


def parse_time_text(text: str) -> datetime:
    """``2026-11-20``, ``2026-11-20T10:00Z``, ``2026-11-20 10:00:00+01:00``; naive means UTC."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise PointError(f"bad time {text!r}: write it as ISO 8601, such as 2026-11-20T10:00Z") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment


def parse_point(text: str | int | None) -> Point:
    """A point as users write it: ``head``, ``12`` (or ``v12``), an ISO time, or a tag name."""
    if text is None:
        return HEAD
    if isinstance(text, int):
        return Point(version=text)
    value = text.strip()
    if not value or POINT_HEAD.match(value):
        return HEAD
    if POINT_VERSION.match(value):
        return Point(version=int(value.lstrip("vV")))
    if POINT_TIME.match(value):
        return Point(time=parse_time_text(value))
    if POINT_NEGATIVE.match(value):
        raise PointError(f"bad version {value!r}: versions start at 0")
    return Point(tag=value)


# --------------------------------------------------------------------------- snapshots


def snapshot_digest(stream: str, version: int, event_hash: str, body: str) -> str:
    text = f"{stream}\x00{version}\x00{event_hash}\x00{body}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------- the projector


class Projector:
    """Folds a stream to any point, using and taking snapshots."""

    def __init__(self, store: EventStore, *, snapshot_every: int = SNAPSHOT_EVERY, take_snapshots: bool = True):
        self.store = store
        self.snapshot_every = snapshot_every
        self.take_snapshots = take_snapshots

    async def resolve(self, stream: str, point: Point) -> int:
        """The stream version a point names (0 is the empty schema before the first event)."""
        head = await self.store.version(stream)
        if point.version is not None:
            if point.version > head:
                raise PointError(f"stream {stream!r} has no version {point.version}: its head is {head}")
            return point.version
        if point.time is not None:
            return await self.store.version_at(stream, point.time)
        if point.tag is not None:
            tags = await self.tags(stream)
            if point.tag not in tags:
                known = ", ".join(sorted(tags)) or "none"
                raise PointError(f"stream {stream!r} has no tag {point.tag!r} (tags: {known})")
            return tags[point.tag]
        return head

    async def tags(self, stream: str) -> dict[str, int]:
        events = await self.store.read(stream, types=["tag_created"])
        out: dict[str, int] = {}
        for recorded in events:
            assert isinstance(recorded.event, TagCreated)
            out[recorded.event.tag] = recorded.event.version
        return out

    async def state(self, stream: str, point: Point = HEAD) -> tuple[int, State]:
        """The version a point names and the working state there (a fresh object: yours to change)."""
        version = await self.resolve(stream, point)
        return version, await self.state_at_version(stream, version)

    async def schema(self, stream: str, point: Point = HEAD) -> tuple[int, Schema]:
        version, state = await self.state(stream, point)
        return version, state.to_schema()

    async def state_at_version(self, stream: str, version: int) -> State:
        with gc_paused():  # the fold and the objects built from it
            return (await self._replay(stream, version)).to_state()

    async def _replay(self, stream: str, version: int) -> Replay:
        """The stream folded to ``version`` in public form, from the best snapshot below it."""
        start_version, replay = await self._start(stream, version)
        current = start_version
        every = self.snapshot_every
        async for chunk in self.store.read_event_data(stream, after_version=start_version, to_version=version):
            # fold up to each snapshot boundary, snapshot, go on
            while chunk:
                room = every - current % every
                batch, chunk = chunk[:room], chunk[room:]
                replay.apply_texts(batch)
                current += len(batch)
                if current % every == 0:
                    await self._snapshot(stream, current, replay)
        return replay

    async def _start(self, stream: str, version: int) -> tuple[int, Replay]:
        """The best trustworthy snapshot at or below ``version``, else the empty state."""
        below = version
        while below > 0:
            found = await self.store.snapshot_below(stream, below)
            if found is None:
                break
            snap_version, event_hash, digest, body = found
            below = snap_version - 1
            if snapshot_digest(stream, snap_version, event_hash, body) != digest:
                log.warning("snapshot_ignored", stream=stream, version=snap_version, reason="digest mismatch")
                continue
            if await self.store.event_hash(stream, snap_version) != event_hash:
                log.warning("snapshot_ignored", stream=stream, version=snap_version, reason="log differs")
                continue
            try:
                return snap_version, Replay.from_body(body)
            except (ValueError, KeyError, TypeError) as exc:
                log.warning("snapshot_ignored", stream=stream, version=snap_version, reason=repr(exc))
        return 0, Replay()

    async def _snapshot(self, stream: str, version: int, replay: Replay) -> None:
        if not self.take_snapshots:
            return
        event_hash = await self.store.event_hash(stream, version)
        if event_hash is None:
            return
        body = replay.body()
        await self.store.save_snapshot(
            stream, version, event_hash, snapshot_digest(stream, version, event_hash, body), body
        )

    async def rebuild_snapshots(self, stream: str) -> list[int]:
        """Throw the stream's snapshots away and take them again from a full replay."""
        await self.store.drop_snapshots(stream)
        head = await self.store.version(stream)
        await self.state_at_version(stream, head)
        return await self.store.snapshot_versions(stream)


def normalized(schema: Schema) -> dict[str, Any]:
    """A schema's identity for comparison: column, index and constraint order do not count.

    Column order is kept for display, but it is not part of what a schema is: a
    dropped column that comes back comes back last, as it does in PostgreSQL.
    """
    return {name: _normalized_table(table) for name, table in sorted(schema.tables.items())}


def _normalized_table(table: Table) -> dict[str, Any]:
    data = table.model_dump(mode="json")
    data["columns"] = sorted(data["columns"], key=lambda c: c["name"])
    data["indexes"] = sorted(data["indexes"], key=lambda i: i["name"])
    data["constraints"] = sorted(data["constraints"], key=lambda c: c["name"])
    return data


def same_schema(a: Schema, b: Schema) -> bool:
    return normalized(a) == normalized(b)
