"""Random valid histories migrated into real databases, forward, back and forward again, then back to 0.

On PostgreSQL, MariaDB and SQLite: after every step introspection equals the
projection at the marker, and a row inserted at the start (in an ``anchor``
table the history renames and alters but never drops) survives every step.
Every history that migrates forward also migrates back to version 0 (an empty
database, but for the marker). A history holding what the target's dialect
cannot hold (tests/histories.py draws every event type, some only one dialect
has) is refused before anything runs, and is not this dialect's example.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from events.catalog import (
    Event,
)
from events.envelope import Changeset
from events.log import EventLog
from events.store import open_store
from projections.audit import Lineage
from projections.schema import Point, Projector, normalized
from service.reconciler.apply import MigrateRequest, migrate
from service.reconciler.targets import dialect_of, open_target
from tests.histories import histories
from tests.servers import mariadb_database_url, postgres_database_url
from tests.sqlexec import run_sql


def anchor_names(recorded: list[Any], version: int) -> tuple[str, str]:
    """The anchor table's and its label column's names at ``version``."""
    lineage = Lineage()
    for r in recorded:
        if r.version > version:
            break
        lineage.step(r.event)
    tid = lineage.tables_named("anchor").pop()
    table = next(n for n, i in lineage.table_ids.items() if i == tid)
    label = next(c for (t, c), cid in lineage.column_ids.items() if t == tid and "label" in lineage.column_names[cid])
    return table, label


def quote(url: str, name: str) -> str:
    return f"`{name}`" if url.startswith("mysql") else '"' + name.replace('"', '""') + '"'


async def check_round(history: list[list[Event]], url: str, log_path: Path, moves: list[int]) -> None:
    store = await open_store(f"sqlite:///{log_path}")
    await store.init()
    try:
        ends = []
        for batch in history:
            ends.append(
                (await EventLog(store).append(Changeset(stream="app", actor="h", events=tuple(batch)))).last_version
            )
        recorded = await store.read("app")
        dialect = dialect_of(url)
        whole = await migrate(
            store, MigrateRequest(url=url, stream="app", actor="h", to=Point(version=ends[-1]), plan_only=True)
        )
        if whole.status == "refused" and (whole.detail or "").startswith(f"{dialect} cannot hold"):
            reject()  # what this dialect cannot hold, refused before anything ran: not an example here
        first = await migrate(store, MigrateRequest(url=url, stream="app", actor="h", to=Point(version=ends[0])))
        assert first.status == "applied", first.detail
        run_sql(url, "INSERT INTO anchor (id, label) VALUES (1, 'kept')")
        for pick in [len(ends) - 1, *moves, len(ends) - 1]:
            to = ends[pick % len(ends)]
            outcome = await migrate(
                store, MigrateRequest(url=url, stream="app", actor="h", to=Point(version=to), allow_destructive=True)
            )
            assert outcome.status in ("applied", "up_to_date"), (to, outcome.detail, outcome.drift, outcome.statements)
            target = await open_target(url)
            try:
                live = await target.introspect()
                marker = await target.read_marker("app")
                _, schema = await Projector(store).schema("app", Point(version=to))
                assert marker is not None and marker.version == to
                assert normalized(live) == normalized(target.expected(schema))
            finally:
                await target.close()
            table, label = anchor_names(recorded, to)
            rows = run_sql(url, f"SELECT {quote(url, label)} FROM {quote(url, table)}")
            assert [tuple(r) for r in rows] == [("kept",)]
        back = await migrate(
            store, MigrateRequest(url=url, stream="app", actor="h", to=Point(version=0), allow_destructive=True)
        )
        assert back.status == "applied", (back.detail, back.drift, back.statements)
        target = await open_target(url)
        try:
            live = await target.introspect()
            marker = await target.read_marker("app")
        finally:
            await target.close()
        assert live.tables == {} and marker is not None and marker.version == 0 and not marker.in_progress
    finally:
        await store.close()


SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql", "mysql"])
def test_random_histories_migrate_forward_back_and_forward(dialect: str, tmp_path: Path) -> None:
    counter = iter(range(10**6))

    @SETTINGS
    @given(history=histories(dialect=dialect), moves=st.lists(st.integers(0, 50), min_size=1, max_size=4))
    def run(history: list[list[Event]], moves: list[int]) -> None:
        n = next(counter)
        log_path = tmp_path / f"log{n}.db"
        if dialect == "sqlite":
            asyncio.run(check_round(history, f"sqlite:///{tmp_path / f'target{n}.db'}", log_path, moves))
            return
        make = postgres_database_url if dialect == "postgresql" else mariadb_database_url
        with make() as url:
            asyncio.run(check_round(history, url, log_path, moves))

    run()
