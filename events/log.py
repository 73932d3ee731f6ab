"""The write side: validate a changeset against the head of its stream, then append it.

:class:`EventLog` keeps each stream's head state in memory and catches it up
from the store before every append, so validation costs the new events only.
The first append to a stream in a process needs the head state once: given a
:class:`HeadStates` (the projections' snapshot-backed ``Projector``, which the
service passes), it starts from the newest verified snapshot and folds only the
events after it, so that an append costs the same on a stream of 100 events and
one of 1,000,000; without one, it folds the whole stream.
A changeset without ``expected_version`` is appended at the head, retrying
when another writer got there first; with one, a stale version is a
ConcurrencyError and nothing is written.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

import structlog

from events.aggregate import InvalidChange, State, apply_events
from events.catalog import TagCreated
from events.envelope import Changeset
from events.store.base import AppendResult, ConcurrencyError, EventStore, Fence

log = structlog.get_logger("schemalog.log")

MAX_RETRIES = 50


class HeadStates(Protocol):
    """Where a cold head state comes from (``projections.schema.Projector`` is one)."""

    async def state_at_version(self, stream: str, version: int) -> State:
        """The working state of ``stream`` at ``version`` (a fresh object)."""
        ...


class EventLog:
    def __init__(self, store: EventStore, states: HeadStates | None = None):
        self.store = store
        self.states = states
        self._heads: dict[str, tuple[int, State]] = {}

    async def head(self, stream: str) -> tuple[int, State]:
        """The stream's current version and state (a cached state: copy before changing it)."""
        cached = self._heads.get(stream)
        if cached is None and self.states is not None:
            # the first look at this stream here: from the newest snapshot, not from version 1
            at = await self.store.version(stream)
            cached = (at, await self.states.state_at_version(stream, at))
            self._heads[stream] = cached
        version, state = cached if cached is not None else (0, State())
        newer = await self.store.read(stream, after_version=version)
        if newer:
            state = state.copy()
            apply_events(state, (e.event for e in newer))
            version = newer[-1].version
            self._heads[stream] = (version, state)
        return version, state

    async def append(
        self, changeset: Changeset, *, now: datetime | None = None, fence: Fence | None = None
    ) -> AppendResult:
        """Validate and append; InvalidChange (nothing written) if an event does not fit. With ``fence``,
        LeaseLost (nothing written) unless that lease is still held when the store writes."""
        earlier = await self.store.find_changeset(changeset.changeset_id)
        if earlier is not None:
            log.info("changeset_already_recorded", changeset_id=changeset.changeset_id)
            return earlier
        expected = changeset.expected_version
        for _attempt in range(MAX_RETRIES):
            version, state = await self.head(changeset.stream)
            if expected is not None and version != expected:
                raise ConcurrencyError(changeset.stream, expected, version)
            working = state.copy()
            apply_events(working, changeset.events)
            _check_tags(changeset, version)
            try:
                result = await self.store.append(
                    changeset.model_copy(update={"expected_version": version}), now=now, fence=fence
                )
            except ConcurrencyError:
                if expected is not None:
                    raise
                continue
            if not result.duplicate:
                self._heads[changeset.stream] = (result.last_version, working)
            log.info(
                "changeset_appended",
                stream=result.stream,
                changeset_id=result.changeset_id,
                first_version=result.first_version,
                last_version=result.last_version,
            )
            return result
        raise ConcurrencyError(changeset.stream, expected if expected is not None else -1, version)


def _check_tags(changeset: Changeset, head: int) -> None:
    """A tag names a version that exists when it is recorded (its own position at most)."""
    for index, event in enumerate(changeset.events):
        if isinstance(event, TagCreated) and event.version > head + index:
            raise InvalidChange(
                f"tag {event.tag!r} names version {event.version}, but the stream is at {head + index}",
                index,
                event.type,
            )
