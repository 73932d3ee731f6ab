"""Replaying history: a 1,000,000-event stream in PostgreSQL, beside Django replaying Wagtail.

- schemalog full replay: the fold of the whole stream from version 1, no
  snapshots (events/s).
- schemalog state at 20 random versions with snapshots (every 1,000 events),
  each from a fresh Projector (nothing cached in the process): median and max ms.
- Django: MigrationLoader(...).project_state() over Wagtail's migrations and
  their dependencies (the whole graph), in the same run.

    .venv/bin/pip install -e '.[bench]' wagtail
    .venv/bin/python bench/replay.py [--events 1000000] [--points 20]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import random
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from events.aggregate import InvalidChange, State, apply_event
from events.catalog import (
    ColumnAdded,
    ColumnAltered,
    ColumnDropped,
    ColumnRenamed,
    ConstraintAdded,
    ConstraintDropped,
    IndexCreated,
    IndexDropped,
    TableCreated,
    TableDropped,
    TableRenamed,
)
from events.envelope import Changeset
from events.model import Column, Constraint, Index, Reference, Schema
from events.store.postgres import PostgresStore
from projections.schema import Point, Projector

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
LIVE_TABLES = 300
TYPES = ["integer", "bigint", "varchar(80)", "text", "numeric(12,2)", "boolean", "timestamp", "date"]


def history(total: int, seed: int = 7) -> tuple[list[Any], State]:
    """A deterministic, valid history of ``total`` schema events over a rolling set of tables,
    and the state it makes (folded with events.aggregate's checked rules as it is generated)."""
    rng = random.Random(seed)
    state = State()
    events: list[Any] = []
    serial = 0
    while len(events) < total:
        serial += 1
        tables = list(state.tables)
        roll = rng.random()
        event: Any
        if len(tables) < LIVE_TABLES * 0.8 or roll < 0.05:
            name = f"t{serial}"
            cols = tuple(Column(name=f"c{i}", type=rng.choice(TYPES)) for i in range(1, rng.randint(3, 9)))
            event = TableCreated(table=name, columns=(Column(name="id", type="bigint", nullable=False), *cols),
                                 primary_key=("id",))
        elif len(tables) > LIVE_TABLES and roll < 0.15:
            unreferenced = [t for t in tables if not state.referrers.get(t)]
            if not unreferenced:
                continue
            event = TableDropped(table=rng.choice(unreferenced))
        else:
            name = rng.choice(tables)
            table = state.tables[name]
            free = [c for c in table.columns if c.name != "id" and not any(
                c.name in i.columns for i in table.indexes) and not any(c.name in k.columns for k in table.constraints)]
            kind = rng.random()
            if len(table.columns) > 24 and free:  # keep tables a realistic width: drop before adding more
                kind = 0.35
            elif len(table.indexes) > 6 and kind >= 0.62:
                kind = 0.80
            if 0.82 <= kind < 0.90 and sum(k.kind == "foreign_key" for k in table.constraints) >= 3:
                kind = 0.92  # drop a foreign key rather than add a fourth: tables stay droppable
            if kind < 0.30:
                event = ColumnAdded(table=name, column=Column(name=f"a{serial}", type=rng.choice(TYPES)))
            elif kind < 0.40 and free and len(table.columns) > 3:
                event = ColumnDropped(table=name, column=rng.choice(free).name)
            elif kind < 0.50 and free:
                event = ColumnRenamed(table=name, column=rng.choice(free).name, new_name=f"r{serial}")
            elif kind < 0.62 and free:
                event = ColumnAltered.of(name, rng.choice(free).name, comment=f"note {serial}")
            elif kind < 0.75 and free:
                event = IndexCreated(table=name, index=Index(name=f"ix{serial}", columns=(rng.choice(free).name,)))
            elif kind < 0.82 and table.indexes:
                event = IndexDropped(table=name, name=rng.choice(table.indexes).name)
            elif kind < 0.90 and len(events) + 2 <= total:
                other = rng.choice(tables)
                event = ColumnAdded(table=name, column=Column(name=f"f{serial}", type="bigint"))
                events.append(event)
                apply_event(event, state)
                event = ConstraintAdded(table=name, constraint=Constraint(
                    name=f"fk{serial}", kind="foreign_key", columns=(f"f{serial}",),
                    references=Reference(table=other, columns=("id",))))
            elif kind < 0.95 and any(k.kind == "foreign_key" for k in table.constraints):
                fk = rng.choice([k for k in table.constraints if k.kind == "foreign_key"])
                event = ConstraintDropped(table=name, name=fk.name)
            elif not state.referrers.get(name):
                event = TableRenamed(table=name, new_name=f"t{serial}")
            else:
                continue
        try:
            apply_event(event, state)
        except InvalidChange:
            continue
        events.append(event)
    return events, state


async def load(url: str, events: list[Any]) -> float:
    store = await PostgresStore.open(url, max_size=4)
    await store.init()
    started = time.perf_counter()
    batches = [events[i : i + 1000] for i in range(0, len(events), 1000)]
    for n, batch in enumerate(batches):
        await store.append(Changeset(stream="big", actor="bench", expected_version=n * 1000, events=tuple(batch)))
    await store.close()
    return time.perf_counter() - started


async def replay(url: str, expected: Schema) -> tuple[float, int]:
    store = await PostgresStore.open(url)
    await store.drop_snapshots("big")
    head = await store.version("big")
    projector = Projector(store, take_snapshots=False)
    started = time.perf_counter()
    state = await projector.state_at_version("big", head)
    elapsed = time.perf_counter() - started
    await store.close()
    # the replay of the stored log gives exactly what the checked rules gave while generating it
    assert state.to_schema() == expected, "replay differs from the checked fold"
    return elapsed, head


async def points(url: str, count: int, every: int) -> tuple[list[float], float]:
    store = await PostgresStore.open(url)
    started = time.perf_counter()
    await Projector(store, snapshot_every=every).rebuild_snapshots("big")
    build = time.perf_counter() - started
    head = await store.version("big")
    rng = random.Random(11)
    times = []
    for _ in range(count):
        version = rng.randint(1, head)
        t0 = time.perf_counter()
        await Projector(store, snapshot_every=every, take_snapshots=False).schema("big", Point(version=version))
        times.append((time.perf_counter() - t0) * 1000)
    await store.close()
    return times, build


def django_wagtail() -> tuple[float, int, int] | str:
    try:
        import django
        from django.conf import settings
    except ImportError:
        return "n/a (Django not installed)"
    try:
        import wagtail  # noqa: F401
    except ImportError:
        return "n/a (wagtail not installed: pip install wagtail)"
    settings.configure(
        INSTALLED_APPS=[
            "django.contrib.admin", "django.contrib.auth", "django.contrib.contenttypes",
            "django.contrib.sessions", "django.contrib.messages", "django.contrib.staticfiles",
            "wagtail.contrib.forms", "wagtail.contrib.redirects", "wagtail.embeds", "wagtail.sites",
            "wagtail.users", "wagtail.snippets", "wagtail.documents", "wagtail.images", "wagtail.search",
            "wagtail.admin", "wagtail", "modelcluster", "taggit",
        ],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        USE_TZ=True,
        SECRET_KEY="bench",
        STATIC_URL="/static/",
        DEFAULT_AUTO_FIELD="django.db.models.AutoField",
    )
    django.setup()
    from django.db.migrations.loader import MigrationLoader

    loader = MigrationLoader(None, ignore_no_migrations=True)
    wagtail_migrations = [k for k in loader.disk_migrations if k[0].startswith("wagtail")]
    operations = sum(len(m.operations) for m in loader.disk_migrations.values())
    started = time.perf_counter()
    loader.project_state()
    return time.perf_counter() - started, len(wagtail_migrations), operations


async def fresh() -> str:
    name = f"bench_replay_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(ADMIN)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    return name


async def drop(name: str) -> None:
    conn = await asyncpg.connect(ADMIN)
    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--points", type=int, default=20)
    parser.add_argument("--snapshot-every", type=int, default=1000)
    args = parser.parse_args()
    started = time.perf_counter()
    events, state = history(args.events)
    expected = state.to_schema()
    generated = time.perf_counter() - started
    name = asyncio.run(fresh())
    url = ADMIN.rsplit("/", 1)[0] + "/" + name
    try:
        loaded = asyncio.run(load(url, events))
        del events, state  # measure replay in a process that does not also hold a million generated events
        gc.collect()
        full, head = asyncio.run(replay(url, expected))
        times, build = asyncio.run(points(url, args.points, args.snapshot_every))
    finally:
        asyncio.run(drop(name))
    peer = django_wagtail()
    rate = head / full
    print(f"stream: {head:,} events (generated in {generated:.1f} s, appended in {loaded:.1f} s);"
          f" snapshots every {args.snapshot_every} built in {build:.1f} s")
    print(f"| {'figure':<44} | {'schemalog':>14} | {'goal':>14} | {'peer':>34} |")
    print(f"|{'-' * 46}|{'-' * 15}:|{'-' * 15}:|{'-' * 35}:|")
    if isinstance(peer, str):
        peer_text = peer
        peer_rate = None
    else:
        seconds, migrations, operations = peer
        peer_rate = operations / seconds
        peer_text = f"Django: {migrations} wagtail migrations, {operations} ops in {seconds:.2f} s"
    print(f"| {'full replay (events/s)':<44} | {rate:14,.0f} | {'>= 200,000':>14} | {peer_text:>34} |")
    if peer_rate:
        print(f"| {'  ratio: schemalog events/s / Django ops/s':<44} | {rate / peer_rate:13.1f}x | {'':>14} |"
              f" {peer_rate:28,.0f} ops/s |")
    print(f"| {'state at a random version, median (ms)':<44} | {statistics.median(times):14.1f} | {'< 20':>14} |"
          f" {'':>34} |")
    print(f"| {'state at a random version, max (ms)':<44} | {max(times):14.1f} | {'< 20':>14} | {'':>34} |")
    print(f"goal full replay >= 200,000 events/s: {'PASS' if rate >= 200_000 else 'FAIL'};"
          f" any point < 20 ms: {'PASS' if max(times) < 20 else 'FAIL'}")


if __name__ == "__main__":
    main()
