"""A point's fold start read at once (``EventStore.read_from_snapshot``, issue 16), on every backend.

- it gives what the separate reads give (the head, the newest snapshot below, the log's hash there, the
  events after it), at every version, with its limit, and nothing past the head;
- ``Projector.public_state`` built from it equals a fold from the first event at every point, and checks
  the snapshot it reads as strictly as ever: a digest that does not verify, a snapshot signed for another
  event, a body that does not read are each ignored (logged), the fold starting further back and the
  snapshot taken again;
- with a trusted snapshot the point's schema costs that one read, and nothing else of the store.
"""

from __future__ import annotations

from typing import Any

import pytest
from structlog.testing import capture_logs

from events.catalog import TableAltered, TableCreated
from events.envelope import Changeset
from events.log import EventLog
from events.model import Column
from events.store.base import EventStore, SnapshotRead
from projections import schema as projections_schema
from projections.schema import HEAD, Point, PointError, Projector, load_snapshot_key, snapshot_digest


async def load(store: EventStore, events: int) -> int:
    log = EventLog(store)
    await log.append(
        Changeset(stream="s", actor="t", events=(TableCreated(table="t", columns=(Column(name="id", type="bigint"),)),))
    )
    for first in range(0, events - 1, 50):
        batch = tuple(TableAltered(table="t", comment=f"c{first + i}") for i in range(min(50, events - 1 - first)))
        await log.append(Changeset(stream="s", actor="t", events=batch))
    return await store.version("s")


async def separately(store: EventStore, version: int | None, limit: int) -> SnapshotRead:
    head = await store.version("s")
    upto = head if version is None else version
    if upto > head:
        return SnapshotRead(head, upto, None, None, [])
    found = await store.snapshot_below("s", upto)
    log_hash = await store.event_hash("s", found[0]) if found is not None else None
    texts = [
        t
        async for chunk in store.read_event_data("s", after_version=found[0] if found else 0, to_version=upto)
        for t in chunk
    ]
    return SnapshotRead(head, upto, found, log_hash, texts[:limit])


async def test_one_read_gives_what_the_separate_reads_give(store: EventStore) -> None:
    empty = await store.read_from_snapshot("s", None, limit=10)
    assert empty == SnapshotRead(0, 0, None, None, [])
    head = await load(store, 120)
    assert head == 120
    await Projector(store, snapshot_every=25).public_state("s")  # snapshots at 25, 50, 75, 100
    assert await store.snapshot_versions("s") == [25, 50, 75, 100]
    for version in [None, *range(head + 1)]:
        for limit in (3, 1000):
            assert await store.read_from_snapshot("s", version, limit=limit) == await separately(store, version, limit)
    past = await store.read_from_snapshot("s", head + 1, limit=1000)
    assert past == SnapshotRead(head, head + 1, None, None, [])


async def test_public_state_from_one_read_equals_the_fold_and_checks_snapshots(
    store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    head = await load(store, 120)
    plain = Projector(store, take_snapshots=False)
    expected = {v: (await plain._replay("s", v)).public() for v in range(head + 1)}  # no snapshot: from event 1
    taking = Projector(store, snapshot_every=25)
    for version in range(head + 1):
        assert (await taking.public_state("s", Point(version=version)))[1].public() == expected[version]
    assert (await taking.public_state("s", HEAD))[0] == head
    assert await store.snapshot_versions("s") == [25, 50, 75, 100]
    monkeypatch.setattr(projections_schema, "READ_AT_ONCE", 7)  # the rest of the events from read_event_data
    for version in (0, 3, 24, 25, 49, 99, 100, head):
        assert (await taking.public_state("s", Point(version=version)))[1].public() == expected[version]
    with pytest.raises(PointError, match="has no version 121: its head is 120"):
        await taking.public_state("s", Point(version=head + 1))

    key = load_snapshot_key()
    found = (await store.read_from_snapshot("s", 110, limit=1)).snapshot
    assert found is not None
    version, event_hash, digest, body = found
    assert version == 100
    other = await store.event_hash("s", 99)
    assert other is not None and other != event_hash
    bad = {
        "digest does not verify": (event_hash, digest, body.replace('"c', '"forged')),
        "log differs": (other, snapshot_digest("s", 100, other, body, key), body),  # signed, for another event
        "KeyError('tables')": (event_hash, snapshot_digest("s", 100, event_hash, "{}", key), "{}"),
    }
    for reason, (stored_hash, stored_digest, stored_body) in bad.items():
        await store.save_snapshot("s", 100, stored_hash, stored_digest, stored_body)
        with capture_logs() as logs:
            assert (await Projector(store, snapshot_every=25).public_state("s", Point(version=110)))[1].public() == (
                expected[110]
            )
        assert [(e["event"], e["version"], e["reason"]) for e in logs] == [("snapshot_ignored", 100, reason)]
        retaken = await store.snapshot_below("s", 100)
        assert retaken == (100, event_hash, digest, body)  # taken again by the fold from 75


class Counting:
    """The real store, counting the calls made of it."""

    def __init__(self, store: EventStore) -> None:
        self._store = store
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        self.calls.append(name)
        return getattr(self._store, name)


async def test_a_point_past_a_trusted_snapshot_is_one_read(store: EventStore) -> None:
    head = await load(store, 120)
    await Projector(store, snapshot_every=25).public_state("s")
    counting = Counting(store)
    projector = Projector(counting, snapshot_every=25)
    for point in (Point(version=60), HEAD, Point(version=0), Point(version=10)):
        counting.calls.clear()
        version, _ = await projector.public_state("s", point)
        assert version == (head if point == HEAD else point.version)
        assert counting.calls == ["read_from_snapshot"]
