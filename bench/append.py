"""Appending events: schemalog's PostgreSQL store beside asyncpg COPY and the eventsourcing library.

All three write the same 100,000 events (1,000 streams x 100, in batches of 100)
into a fresh database each, in one run:

- schemalog: PostgresStore.append, one changeset (batch) per call, expected
  version checked under the stream's row lock, SHA-256 hash chain, changeset id
  recorded, NOTIFY sent; sequential (one client) and with 4 concurrent clients.
- asyncpg COPY: the same rows, precomputed, copied into the same table layout:
  the physical bound, with none of the checks.
- eventsourcing: PostgresApplicationRecorder.insert_events, one batch per call
  (its optimistic concurrency on (originator_id, version) and global
  notification ids; no hash chain).

Then the latency of one one-event append on a stream of N events (100,
100,000 and 1,000,000), on the SQLite store (a file in a temporary folder)
and the PostgreSQL store (a fresh database). Each stream is valid (50 tables
created, then table and column comment changes cycling over them, chained by
seal()) and loaded in bulk in the store's own tables (events, changesets,
stream head); verify_store checks the smallest; one Projector fold to the head
then takes the snapshots a running service's projector takes (timed: the
one-time cost). Timed, connections opened before the clock, the first round
not kept, floor, warm, cold and the peer taking turns:

- floor: one precomputed event row inserted and the head row moved, in one
  transaction, through the store's driver (aiosqlite, asyncpg).
- schemalog warm: one EventLog reused (an API worker's later appends).
- schemalog cold: a new EventLog(store, Projector(store)) per append (a new
  CLI process, a new worker): the head state from the newest verified snapshot
  plus the events after it. Also its worst case, 979 to 998 events past the
  newest snapshot (one is taken every 1,000).
- schemalog old path: EventLog(store), no snapshots: a full fold per append,
  at N <= 100,000 only.
- eventsourcing: the application recorder's insert_events of one event for an
  aggregate of N events in its own table (filled in bulk; its SQLite connection
  set to synchronous NORMAL as schemalog's is).

    .venv/bin/python bench/append.py [--streams 1000] [--per-stream 100] [--batch 100]
        [--latency | --throughput] [--sizes 100,100000,1000000] [--stores sqlite,postgresql]
        [--repeat 30] [--old-repeat 3] [--changeset-events 1]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import logging
import math
import os
import secrets
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiosqlite
import asyncpg
import structlog

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from events.catalog import ColumnAdded, ColumnAltered, Event, TableAltered, TableCreated
from events.envelope import GENESIS_HASH, Changeset, format_time, new_changeset_id, seal
from events.log import EventLog
from events.model import Column
from events.store import EventStore, open_store, verify_store
from events.store.postgres import PostgresStore
from projections.schema import SNAPSHOT_EVERY, SNAPSHOT_KEY_ENV, Projector

HOST, PORT, USER = "127.0.0.1", 5432, "postgres"
GOAL = 40_000


def admin_url(db: str = "postgres") -> str:
    return f"postgresql://{USER}@{HOST}:{PORT}/{db}"


async def fresh_database(tag: str) -> str:
    name = f"bench_append_{tag}_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(admin_url())
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    return name


async def drop_database(name: str) -> None:
    conn = await asyncpg.connect(admin_url())
    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await conn.close()


def changesets(streams: int, per_stream: int, batch: int) -> list[Changeset]:
    out = []
    for s in range(streams):
        events: list = [TableCreated(table=f"t{s}", columns=(Column(name="id", type="bigint", nullable=False),))]
        events += [
            ColumnAdded(table=f"t{s}", column=Column(name=f"c{i}", type="varchar(40)", default="'x'"))
            for i in range(1, per_stream)
        ]
        for start in range(0, per_stream, batch):
            out.append(
                Changeset(
                    stream=f"stream-{s}",
                    actor="bench",
                    message="bench",
                    expected_version=start,
                    events=tuple(events[start : start + batch]),
                )
            )
    return out


async def bench_schemalog(work: list[Changeset], clients: int) -> float:
    name = await fresh_database("schemalog")
    try:
        store = await PostgresStore.open(admin_url(name), min_size=clients, max_size=clients)
        await store.init()
        queue: asyncio.Queue[Changeset] = asyncio.Queue()
        for cs in work:
            queue.put_nowait(cs)

        async def client() -> None:
            while not queue.empty():
                await store.append(queue.get_nowait())

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        elapsed = time.perf_counter() - started
        await store.close()
        return elapsed
    finally:
        await drop_database(name)


async def bench_copy(work: list[Changeset]) -> float:
    name = await fresh_database("copy")
    try:
        store = await PostgresStore.open(admin_url(name))
        await store.init()
        await store.close()
        now = datetime.now(UTC)
        records = []
        for cs in work:
            sealed = seal(stream=cs.stream, first_version=(cs.expected_version or 0) + 1, changeset_id=cs.changeset_id,
                          actor="bench", message=cs.message, recorded_at=now, events=cs.events,
                          prev_hash="0" * 64)
            for item in sealed:
                records.append((cs.stream, item.version, cs.changeset_id, "bench", cs.message, now,
                                item.data["type"], item.text, item.prev_hash, item.hash))
        conn = await asyncpg.connect(admin_url(name))
        columns = ["stream", "version", "changeset_id", "actor", "message", "recorded_at", "type", "data",
                   "prev_hash", "hash"]
        started = time.perf_counter()
        await conn.copy_records_to_table("schemalog_events", records=records, columns=columns)
        elapsed = time.perf_counter() - started
        await conn.close()
        return elapsed
    finally:
        await drop_database(name)


def bench_eventsourcing(work: list[Changeset]) -> float:
    from eventsourcing.persistence import StoredEvent
    from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore

    name = asyncio.run(fresh_database("eventsourcing"))
    try:
        datastore = PostgresDatastore(dbname=name, host=HOST, port=PORT, user=USER, password="")
        recorder = PostgresApplicationRecorder(datastore, events_table_name="stored_events")
        recorder.create_table()
        ids = {}
        batches = []
        for cs in work:
            oid = ids.setdefault(cs.stream, uuid.uuid4())
            first = (cs.expected_version or 0) + 1
            batches.append([
                StoredEvent(originator_id=oid, originator_version=first + i, topic=f"schemalog:{e.type}",
                            state=json.dumps(e.model_dump(mode="json")).encode())
                for i, e in enumerate(cs.events)
            ])
        started = time.perf_counter()
        for batch in batches:
            recorder.insert_events(batch)
        elapsed = time.perf_counter() - started
        datastore.close()
        return elapsed
    finally:
        asyncio.run(drop_database(name))


# --------------------------------------------------------------------------- one-event append latency

LATENCY_SIZES = (100, 100_000, 1_000_000)
LATENCY_STREAM = "bench"
LATENCY_TABLES = 50
LATENCY_ACTOR = "bench"
LATENCY_GOAL = 1.5
OLD_PATH_MAX = 100_000
WORST_REPEAT = 20
LOAD_CHUNK = 20_000
EVENT_COLUMNS = (
    "stream", "version", "changeset_id", "actor", "message", "recorded_at", "type", "data", "prev_hash", "hash",
)
INSERT_EVENT_SQLITE = (
    f"INSERT INTO schemalog_events ({', '.join(EVENT_COLUMNS)}) VALUES ({', '.join('?' * len(EVENT_COLUMNS))})"
)
INSERT_EVENT_PG = (
    f"INSERT INTO schemalog_events ({', '.join(EVENT_COLUMNS)})"
    f" VALUES ({', '.join(f'${i}' for i in range(1, len(EVENT_COLUMNS) + 1))})"
)
CHANGESET_COLUMNS = ("changeset_id", "stream", "first_version", "last_version")
PEER_COLUMNS = ("originator_id", "originator_version", "topic", "state")
INSERT_CHANGESET_SQLITE = f"INSERT INTO schemalog_changesets ({', '.join(CHANGESET_COLUMNS)}) VALUES (?, ?, ?, ?)"
INSERT_PEER_SQLITE = f"INSERT INTO stored_events ({', '.join(PEER_COLUMNS)}) VALUES (?, ?, ?, ?)"
INSERT_HEAD_SQLITE = "INSERT INTO schemalog_streams (stream, version, hash, recorded_at) VALUES (?, ?, ?, ?)"
INSERT_HEAD_PG = "INSERT INTO schemalog_streams (stream, version, hash, recorded_at) VALUES ($1, $2, $3, $4)"
MOVE_HEAD_SQLITE = "UPDATE schemalog_streams SET version = ?, hash = ?, recorded_at = ? WHERE stream = ?"
MOVE_HEAD_PG = "UPDATE schemalog_streams SET version = $1, hash = $2, recorded_at = $3 WHERE stream = $4"

CONTENDERS = (
    "raw INSERT + head UPDATE (floor)",
    "schemalog warm (one EventLog reused)",
    "schemalog cold (new EventLog + Projector)",
    "schemalog cold, head 979-998 past snapshot",
    "schemalog old path (EventLog, full fold)",
    "eventsourcing recorder.insert_events",
)
FLOOR, WARM, COLD, COLD_WORST, OLD, PEER = CONTENDERS


def stream_event(index: int) -> Event:
    """Event ``index`` (from 0) of a long stream whose schema stays bounded: 50 tables created, then
    comment changes cycling over them, a pass of table comments, then a pass of column comments."""
    if index < LATENCY_TABLES:
        return TableCreated(
            table=f"t{index}",
            columns=(Column(name="id", type="bigint", nullable=False), Column(name="note", type="text")),
            primary_key=("id",),
        )
    turn, table = divmod(index - LATENCY_TABLES, LATENCY_TABLES)
    if turn % 2:
        return ColumnAltered(table=f"t{table}", column="note", comment=f"note {index}")
    return TableAltered(table=f"t{table}", comment=f"table {index}")


def stream_rows(total: int, per_changeset: int) -> Iterator[tuple[list[tuple], list[tuple]]]:
    """The rows of a valid stream of ``total`` events in changesets of ``per_changeset``, recorded a
    millisecond apart from a day ago and chained by seal() as the store chains them, in chunks:
    (event rows in EVENT_COLUMNS order, recorded_at a datetime; changeset rows)."""
    start = datetime.now(UTC) - timedelta(days=1)
    prev_hash = GENESIS_HASH
    events: list[tuple] = []
    changesets: list[tuple] = []
    for first in range(1, total + 1, per_changeset):
        last = min(first + per_changeset - 1, total)
        changeset_id = new_changeset_id()
        moment = start + timedelta(milliseconds=first)
        sealed = seal(
            stream=LATENCY_STREAM,
            first_version=first,
            changeset_id=changeset_id,
            actor=LATENCY_ACTOR,
            message="built",
            recorded_at=moment,
            events=[stream_event(v - 1) for v in range(first, last + 1)],
            prev_hash=prev_hash,
        )
        for item in sealed:
            events.append((LATENCY_STREAM, item.version, changeset_id, LATENCY_ACTOR, "built", moment,
                           item.data["type"], item.text, item.prev_hash, item.hash))
        prev_hash = sealed[-1].hash
        changesets.append((changeset_id, LATENCY_STREAM, first, last))
        if len(events) >= LOAD_CHUNK:
            yield events, changesets
            events, changesets = [], []
    if events:
        yield events, changesets


def peer_row(row: tuple) -> tuple:
    """The same event as eventsourcing stores it, after its originator id: (originator_version, topic, state)."""
    return (row[1], f"schemalog:{row[6]}", row[7].encode())


@dataclass
class Peer:
    """eventsourcing's application recorder over a table holding one aggregate of N events."""

    recorder: Any
    datastore: Any
    originator: uuid.UUID
    version: int
    state: bytes

    def insert_one(self) -> float:
        from eventsourcing.persistence import StoredEvent

        self.version += 1
        event = StoredEvent(originator_id=self.originator, originator_version=self.version,
                            topic="schemalog:table_altered", state=self.state)
        started = time.perf_counter()
        self.recorder.insert_events([event])
        return time.perf_counter() - started


def peer_missing() -> str | None:
    """Why the eventsourcing peer cannot run here, or None."""
    try:
        for module in ("eventsourcing.postgres", "eventsourcing.sqlite"):
            importlib.import_module(module)
    except ImportError as exc:
        return f"eventsourcing not installed ({exc}): pip install -e '.[bench]'"
    return None


@dataclass
class Target:
    """One store holding a stream of N events, what each contender writes with, and the one-time costs."""

    kind: str
    size: int
    store: EventStore
    raw: Any  # aiosqlite.Connection or asyncpg.Connection: the floor's own connection
    peer: Peer | None
    build_seconds: float = 0.0
    snapshot_seconds: float = 0.0
    snapshots: int = 0
    verified: str = ""
    counter: int = 0
    warm: EventLog | None = None

    def next_event(self) -> Event:
        self.counter += 1
        return stream_event(self.size + self.counter)

    def changeset(self, events: int = 1) -> Changeset:
        return Changeset(stream=LATENCY_STREAM, actor=LATENCY_ACTOR, message="latency",
                         events=tuple(self.next_event() for _ in range(events)))

    async def floor_once(self) -> float:
        """One precomputed event row inserted and the head moved, in one transaction, on the raw connection."""
        version, prev_hash = (await self.store.stream_heads())[LATENCY_STREAM]
        moment = datetime.now(UTC)
        changeset_id = new_changeset_id()
        item = seal(stream=LATENCY_STREAM, first_version=version + 1, changeset_id=changeset_id,
                    actor=LATENCY_ACTOR, message="floor", recorded_at=moment, events=[self.next_event()],
                    prev_hash=prev_hash)[0]
        if self.kind == "sqlite":
            stamp = format_time(moment)
            row = (LATENCY_STREAM, item.version, changeset_id, LATENCY_ACTOR, "floor", stamp, item.data["type"],
                   item.text, item.prev_hash, item.hash)
            started = time.perf_counter()
            await self.raw.execute("BEGIN IMMEDIATE")
            await self.raw.execute(INSERT_EVENT_SQLITE, row)
            await self.raw.execute(MOVE_HEAD_SQLITE, (item.version, item.hash, stamp, LATENCY_STREAM))
            await self.raw.execute("COMMIT")
            return time.perf_counter() - started
        started = time.perf_counter()
        async with self.raw.transaction():
            await self.raw.execute(INSERT_EVENT_PG, LATENCY_STREAM, item.version, changeset_id, LATENCY_ACTOR,
                                   "floor", moment, item.data["type"], item.text, item.prev_hash, item.hash)
            await self.raw.execute(MOVE_HEAD_PG, item.version, item.hash, moment, LATENCY_STREAM)
        return time.perf_counter() - started

    async def schemalog_once(self, make_log: Callable[[], EventLog]) -> float:
        changeset = self.changeset()  # parsed before the clock, as the CLI parses its file
        started = time.perf_counter()
        await make_log().append(changeset)
        return time.perf_counter() - started

    def warm_log(self) -> EventLog:
        if self.warm is None:
            self.warm = EventLog(self.store, Projector(self.store))
        return self.warm

    def cold_log(self) -> EventLog:
        return EventLog(self.store, Projector(self.store))

    def old_log(self) -> EventLog:
        return EventLog(self.store)

    async def snapshot_pass(self) -> None:
        """What a running service's projector does: fold the stream to its head, taking the snapshots it passes."""
        await Projector(self.store).state_at_version(LATENCY_STREAM, await self.store.version(LATENCY_STREAM))


def log_progress(text: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


Built = tuple[EventStore, Any, "Peer | None"]
"""A loaded store, the floor's raw connection to it, and the peer (if it runs)."""


async def build_sqlite(size: int, per_changeset: int, with_peer: bool, folder: str) -> Built:
    """A SQLite store file in ``folder`` holding the stream (and the peer's file), loaded through sqlite3."""
    path = str(Path(folder) / "store.db")
    store = await open_store(f"sqlite:///{path}")
    await store.init()
    await store.close()
    load = sqlite3.connect(path, isolation_level=None)
    load.execute("PRAGMA synchronous = OFF")  # the load only: the store opens with its own settings
    peer: Peer | None = None
    peer_load: sqlite3.Connection | None = None
    if with_peer:
        from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteDatastore

        peer_path = str(Path(folder) / "eventsourcing.db")
        datastore = SQLiteDatastore(db_name=peer_path, pool_size=1, max_overflow=0)
        recorder = SQLiteApplicationRecorder(datastore, events_table_name="stored_events")
        recorder.create_table()
        # the durability of schemalog's store (WAL, synchronous NORMAL), on the pool's one connection
        with datastore.get_connection(commit=True) as conn, conn.cursor() as cursor:
            cursor.execute("PRAGMA synchronous = NORMAL")
        peer = Peer(recorder, datastore, uuid.uuid4(), size, b"")
        peer_load = sqlite3.connect(peer_path, isolation_level=None)
        peer_load.execute("PRAGMA synchronous = OFF")
    head: tuple = ()
    for events, changesets in stream_rows(size, per_changeset):
        rows = [(*r[:5], format_time(r[5]), *r[6:]) for r in events]
        load.execute("BEGIN")
        load.executemany(INSERT_EVENT_SQLITE, rows)
        load.executemany(INSERT_CHANGESET_SQLITE, changesets)
        load.execute("COMMIT")
        if peer is not None and peer_load is not None:
            peer_load.execute("BEGIN")
            peer_load.executemany(INSERT_PEER_SQLITE, [(peer.originator.hex, *peer_row(r)) for r in events])
            peer_load.execute("COMMIT")
            peer.state = events[-1][7].encode()
        head = rows[-1]
    load.execute(INSERT_HEAD_SQLITE, (LATENCY_STREAM, head[1], head[9], head[5]))
    load.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    load.close()
    if peer_load is not None:
        peer_load.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        peer_load.close()
    raw = await aiosqlite.connect(path, isolation_level=None)
    for pragma in ("busy_timeout = 60000", "journal_mode = WAL", "synchronous = NORMAL"):  # as SqliteStore.open
        await raw.execute(f"PRAGMA {pragma}")
    return await open_store(f"sqlite:///{path}"), raw, peer


async def build_postgres(size: int, per_changeset: int, with_peer: bool, names: list[str]) -> Built:
    """A PostgreSQL store in a fresh database holding the stream (the peer in another), loaded by COPY;
    the databases made are added to ``names``."""
    name = await fresh_database("latency")
    names.append(name)
    store = await open_store(admin_url(name))
    await store.init()
    await store.close()
    load = await asyncpg.connect(admin_url(name))
    peer: Peer | None = None
    peer_load: asyncpg.Connection | None = None
    if with_peer:
        from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore

        peer_name = await fresh_database("latency_es")
        names.append(peer_name)
        datastore = PostgresDatastore(dbname=peer_name, host=HOST, port=PORT, user=USER, password="")
        recorder = PostgresApplicationRecorder(datastore, events_table_name="stored_events")
        recorder.create_table()
        peer = Peer(recorder, datastore, uuid.uuid4(), size, b"")
        peer_load = await asyncpg.connect(admin_url(peer_name))
    head: tuple = ()
    for events, changesets in stream_rows(size, per_changeset):
        async with load.transaction():
            await load.copy_records_to_table("schemalog_events", records=events, columns=EVENT_COLUMNS)
            await load.copy_records_to_table("schemalog_changesets", records=changesets, columns=CHANGESET_COLUMNS)
        if peer is not None and peer_load is not None:
            await peer_load.copy_records_to_table("stored_events", columns=PEER_COLUMNS,
                                                  records=[(peer.originator, *peer_row(r)) for r in events])
            peer.state = events[-1][7].encode()
        head = events[-1]
    await load.execute(INSERT_HEAD_PG, LATENCY_STREAM, head[1], head[9], head[5])
    # what autovacuum does to a store that grew over time, then a clean WAL, before anything is timed
    await load.execute("VACUUM ANALYZE")
    if peer_load is not None:
        await peer_load.execute("VACUUM ANALYZE")
        await peer_load.close()
    await load.execute("CHECKPOINT")
    await load.close()
    return await open_store(admin_url(name)), await asyncpg.connect(admin_url(name)), peer


@asynccontextmanager
async def latency_target(kind: str, size: int, per_changeset: int, *, with_peer: bool,
                         verify: bool) -> AsyncIterator[Target]:
    """A store of ``kind`` holding a valid stream of ``size`` events (and the peer's table of as many),
    loaded in bulk in the store's own layout, with the projector's snapshots taken; removed afterwards."""
    folder = tempfile.mkdtemp(prefix="bench_latency_")
    databases: list[str] = []
    target: Target | None = None
    try:
        started = time.perf_counter()
        if kind == "sqlite":
            store, raw, peer = await build_sqlite(size, per_changeset, with_peer, folder)
        else:
            store, raw, peer = await build_postgres(size, per_changeset, with_peer, databases)
        target = Target(kind, size, store, raw, peer, build_seconds=time.perf_counter() - started)
        log_progress(f"{kind} N={size:,}: built in {target.build_seconds:.1f} s")
        started = time.perf_counter()
        await target.snapshot_pass()
        target.snapshot_seconds = time.perf_counter() - started
        target.snapshots = len(await store.snapshot_versions(LATENCY_STREAM))
        if verify:
            report = await verify_store(store)
            if not report.ok:
                raise SystemExit(f"the generated {kind} store does not verify: {report.problems[:3]}")
            target.verified = f"verify_store: ok, {report.streams} stream, {report.events:,} events"
        yield target
    finally:
        if target is not None:
            await target.store.close()
            await target.raw.close()
            if target.peer is not None:
                target.peer.datastore.close()
        for name in databases:
            await drop_database(name)
        shutil.rmtree(folder, ignore_errors=True)


def percentile(values: list[float], share: float) -> float:
    """Nearest rank: the smallest value with at least ``share`` of the values at or below it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


async def measure_latency(targets: list[Target], repeat: int, old_repeat: int) -> dict[int, dict[str, list[float]]]:
    """Every contender's one-event append times (seconds) on each target (one store, all lengths), by length.

    All lengths are measured together: each round gives every target, in turn, one append by the floor,
    warm, cold and the peer, so that a slow moment of the (shared) machine falls on all lengths and all
    contenders alike. The first round opens connections and prepares statements and is not kept.
    """
    times: dict[int, dict[str, list[float]]] = {}
    for target in targets:
        times[target.size] = {FLOOR: [], WARM: [], COLD: []} | ({PEER: []} if target.peer is not None else {})
    for round_ in range(repeat + 1):
        for target in targets:
            got = {
                FLOOR: await target.floor_once(),
                WARM: await target.schemalog_once(target.warm_log),
                COLD: await target.schemalog_once(target.cold_log),
            }
            if target.peer is not None:
                got[PEER] = target.peer.insert_one()
            if round_:
                for label, seconds in got.items():
                    times[target.size][label].append(seconds)
    old = [t for t in targets if t.size <= OLD_PATH_MAX]
    log_progress(f"{targets[0].kind}: the old path, {old_repeat} appends at N={', '.join(f'{t.size:,}' for t in old)}")
    for target in old:
        times[target.size][OLD] = []
    for _ in range(old_repeat):
        for target in old:
            times[target.size][OLD].append(await target.schemalog_once(target.old_log))
    # the cold path's worst case: the stream's head 979 to 998 events past its newest snapshot
    every = SNAPSHOT_EVERY
    for target in targets:
        head = await target.store.version(LATENCY_STREAM)
        pad = (every - WORST_REPEAT - 1 - head % every) % every
        if pad:
            await target.warm_log().append(target.changeset(pad))
        await target.snapshot_pass()  # any snapshot the padding passed, as the service's projector takes it
        times[target.size][COLD_WORST] = []
    for _ in range(WORST_REPEAT):
        for target in targets:
            times[target.size][COLD_WORST].append(await target.schemalog_once(target.cold_log))
    return times


async def run_latency(kinds: list[str], sizes: list[int], repeat: int, old_repeat: int,
                      per_changeset: int) -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    # the snapshots' HMAC key from the environment, as a service may have it: the bench's temporary stores
    # need no key file in the user's configuration folder
    os.environ.setdefault(SNAPSHOT_KEY_ENV, secrets.token_hex(32))
    missing = peer_missing()
    results: dict[tuple[str, int], dict[str, list[float]]] = {}
    builds: list[Target] = []
    skipped: list[str] = []
    if missing:
        skipped.append(f"{PEER}: {missing}")
    skipped.extend(f"{OLD} at N={size:,}: not run (a full fold of the stream per append; it grows with N)"
                   for size in sizes if size > OLD_PATH_MAX)
    for kind in kinds:
        async with AsyncExitStack() as stack:
            targets = [
                await stack.enter_async_context(
                    latency_target(kind, size, per_changeset, with_peer=missing is None, verify=size == sizes[0])
                )
                for size in sizes
            ]
            for size, times in (await measure_latency(targets, repeat, old_repeat)).items():
                results[(kind, size)] = times
            # the smallest store again, with every contender's appends on it: still one valid chain
            report = await verify_store(targets[0].store)
            if not report.ok:
                raise SystemExit(f"the {kind} store does not verify after the appends: {report.problems[:3]}")
            targets[0].verified += f"; after the appends: ok, {report.events:,} events"
            builds.extend(targets)
            log_progress(f"{kind}: measured")
    print(f"one-event append latency: {repeat} appends per contender ({old_repeat} for the old path,"
          f" {WORST_REPEAT} for the worst case), after one untimed round; streams built in changesets of"
          f" {per_changeset} event(s)")
    print()
    print(f"| {'store':<10} | {'N':>9} | {'build s':>7} | {'snapshots':>9} | {'snapshot pass s':>15} | check |")
    print(f"|{'-' * 12}|{'-' * 10}:|{'-' * 8}:|{'-' * 10}:|{'-' * 16}:|-------|")
    for t in builds:
        print(f"| {t.kind:<10} | {t.size:>9,} | {t.build_seconds:7.1f} | {t.snapshots:>9,} |"
              f" {t.snapshot_seconds:15.2f} | {t.verified or '-'} |")
    print()
    same = f"vs same at N={sizes[0]:,}"
    width = len(same)
    print(f"| {'store':<10} | {'N':>9} | {'contender':<42} | {'median ms':>9} | {'p95 ms':>7} |"
          f" {'vs floor':>10} | {same} |")
    print(f"|{'-' * 12}|{'-' * 10}:|{'-' * 44}|{'-' * 10}:|{'-' * 8}:|{'-' * 11}:|{'-' * (width + 1)}:|")
    for kind in kinds:
        for size in sizes:
            times = results[(kind, size)]
            floor = statistics.median(times[FLOOR])
            for label in CONTENDERS:
                if label not in times:
                    continue
                median = statistics.median(times[label])
                base = results[(kind, sizes[0])].get(label)
                versus = f"{median / statistics.median(base):{width - 1}.2f}x" if base else f"{'-':>{width}}"
                print(f"| {kind:<10} | {size:>9,} | {label:<42} | {median * 1000:9.2f} |"
                      f" {percentile(times[label], 0.95) * 1000:7.2f} | {median / floor:9.2f}x | {versus} |")
    print()
    for line in dict.fromkeys(skipped):
        print(f"skipped: {line}")
    small, large = sizes[0], sizes[-1]
    for kind in kinds:
        ratio = statistics.median(results[(kind, large)][COLD]) / statistics.median(results[(kind, small)][COLD])
        verdict = "PASS" if ratio <= LATENCY_GOAL else "FAIL"
        print(f"goal: {kind} cold one-event append at N={large:,} within {LATENCY_GOAL}x of N={small:,}:"
              f" {ratio:.2f}x -> {verdict}")


def sizes_list(text: str) -> list[int]:
    sizes = sorted({int(part.replace("_", "")) for part in text.split(",") if part.strip()})
    if not sizes or sizes[0] < 1:
        raise argparse.ArgumentTypeError(f"bad sizes {text!r}: write them as 100,100000,1000000")
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--per-stream", type=int, default=100)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--latency", action="store_true", help="only the one-event append latency")
    parser.add_argument("--throughput", action="store_true", help="only the 100,000-event throughput")
    parser.add_argument("--sizes", type=sizes_list, default=list(LATENCY_SIZES), help="stream lengths: 100,100000")
    parser.add_argument("--stores", default="sqlite,postgresql", help="sqlite,postgresql")
    parser.add_argument("--repeat", type=int, default=30, help="timed appends per contender")
    parser.add_argument("--old-repeat", type=int, default=3, help="timed appends of the old path (a full fold each)")
    parser.add_argument("--changeset-events", type=int, default=1, help="events per changeset when building")
    args = parser.parse_args()
    if not args.latency:
        run_throughput(args)
    if not args.throughput:
        if not args.latency:
            print()
        kinds = [k.strip() for k in args.stores.split(",") if k.strip()]
        if not kinds or set(kinds) - {"sqlite", "postgresql"}:
            parser.error(f"bad --stores {args.stores!r}: sqlite, postgresql or both")
        asyncio.run(run_latency(kinds, args.sizes, args.repeat, args.old_repeat, args.changeset_events))


def run_throughput(args: argparse.Namespace) -> None:
    work = changesets(args.streams, args.per_stream, args.batch)
    total = args.streams * args.per_stream
    results = {
        "schemalog (1 client)": asyncio.run(bench_schemalog(work, 1)),
        "schemalog (4 clients)": asyncio.run(bench_schemalog(work, 4)),
        "schemalog (8 clients)": asyncio.run(bench_schemalog(work, 8)),
        "asyncpg COPY (no checks)": asyncio.run(bench_copy(work)),
        "eventsourcing PostgresApplicationRecorder": bench_eventsourcing(work),
    }
    ours = results["schemalog (1 client)"]
    print(f"appending {total:,} events: {args.streams} streams x {args.per_stream}, batches of {args.batch}")
    print(f"| {'contender':<42} | {'seconds':>8} | {'events/s':>9} | {'speed vs schemalog 1 client':>27} |")
    print(f"|{'-' * 44}|{'-' * 9}:|{'-' * 10}:|{'-' * 28}:|")
    for label, seconds in results.items():
        print(f"| {label:<42} | {seconds:8.2f} | {total / seconds:9,.0f} | {ours / seconds:26.2f}x |")
    for label in ("schemalog (1 client)", "schemalog (4 clients)"):
        rate = total / results[label]
        print(f"goal: at least {GOAL:,} events/s, {label}: {rate:,.0f} -> {'PASS' if rate >= GOAL else 'FAIL'}")


if __name__ == "__main__":
    main()
