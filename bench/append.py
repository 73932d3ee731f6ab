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

    .venv/bin/python bench/append.py [--streams 1000] [--per-stream 100] [--batch 100]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from events.catalog import ColumnAdded, TableCreated
from events.envelope import Changeset, seal
from events.model import Column
from events.store.postgres import PostgresStore

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--per-stream", type=int, default=100)
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args()
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
