"""An append's cost does not grow with the stream: the head state comes from the newest snapshot.

Counted, not timed: a proxy around the real store counts the event texts the fold reads.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from events.catalog import TableAltered, TableCreated
from events.envelope import Changeset
from events.log import EventLog
from events.model import Column
from events.store.base import EventStore
from projections.schema import Projector


class Counting:
    """The real store, counting the event texts the replay path reads."""

    def __init__(self, store: EventStore) -> None:
        self._store = store
        self.texts = 0
        self.rows = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def read_event_data(self, stream: str, **kw: Any) -> AsyncIterator[list[str]]:
        async for chunk in self._store.read_event_data(stream, **kw):
            self.texts += len(chunk)
            yield chunk

    async def read(self, stream: str, **kw: Any) -> Any:
        rows = await self._store.read(stream, **kw)
        self.rows += len(rows)
        return rows


async def test_a_cold_append_folds_only_what_follows_the_newest_snapshot(store: EventStore) -> None:
    log = EventLog(store, Projector(store))
    await log.append(
        Changeset(stream="s", actor="t", events=(TableCreated(table="t", columns=(Column(name="id", type="bigint"),)),))
    )
    for first in range(0, 2400, 400):
        events = tuple(TableAltered(table="t", comment=f"c{first + i}") for i in range(400))
        await log.append(Changeset(stream="s", actor="t", events=events))
    head = await store.version("s")
    assert head == 2401
    await Projector(store).state_at_version("s", head)  # a read takes the snapshots at 1,000 and 2,000
    assert await store.snapshot_versions("s") == [1000, 2000]

    counting = Counting(store)
    cold = EventLog(counting, Projector(counting))  # type: ignore[arg-type]
    result = await cold.append(Changeset(stream="s", actor="t", events=(TableAltered(table="t", comment="x"),)))
    assert result.last_version == head + 1
    assert counting.texts + counting.rows == head - 2000  # the 401 events after the snapshot, not 2,401

    whole = Counting(store)  # without a source of head states, the whole stream is folded
    await EventLog(whole).append(Changeset(stream="s", actor="t", events=(TableAltered(table="t", comment="y"),)))  # type: ignore[arg-type]
    assert whole.texts + whole.rows == head + 1
