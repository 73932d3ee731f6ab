"""The point schema's fast JSON form (the fold's plain state, no model built) equals the models' form.

``public_schema_at(...).public()`` serves ``GET /v1/streams/{stream}/schema``; it must be the document
``schema_at(...).public()`` gives (``show --format json``), key for key and in the same order (so the same
bytes once dumped), at every version of random valid histories (through snapshots taken every few versions
too), and at the head of real schemas imported from SQLite (Chinook, Sakila).
"""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from events.catalog import Event
from events.envelope import Changeset
from events.log import EventLog
from events.store import open_store
from projections.schema import Point, Projector
from service.app import streams as app
from service.cli import main
from tests.conftest import FIXTURES
from tests.histories import histories

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


def dumped(data: object) -> str:
    return json.dumps(data, ensure_ascii=False)


async def _compare_every_version(history: list[list[Event]], url: str) -> None:
    store = await open_store(url)
    try:
        await store.init()
        log = EventLog(store)
        for batch in history:
            await log.append(Changeset(stream="s", actor="p", events=tuple(batch)))
        head = await store.version("s")
        small = Projector(store, snapshot_every=3)  # snapshots at 3, 6, ...: folds start from them
        for version in range(head + 1):
            slow = (await app.schema_at(store, "s", version)).public()
            fast = (await app.public_schema_at(store, "s", version)).public()
            assert fast == slow, version
            assert dumped(fast) == dumped(slow), version  # the same keys in the same order
            _, replay = await small.public_state("s", Point(version=version))
            assert dumped({"stream": "s", "version": version, **replay.public()}) == dumped(slow), version
    finally:
        await store.close()


def test_public_form_equals_the_models_at_every_version(tmp_path: Path) -> None:
    counter = iter(range(10**6))

    @SETTINGS
    @given(history=histories(max_changesets=8, dialect="any"))
    def run(history: list[list[Event]]) -> None:
        asyncio.run(_compare_every_version(history, f"sqlite:///{tmp_path / f'log{next(counter)}.db'}"))

    run()


async def _compare_head(url: str, stream: str) -> int:
    store = await open_store(url)
    try:
        slow = (await app.schema_at(store, stream)).public()
        fast = (await app.public_schema_at(store, stream)).public()
        assert dumped(fast) == dumped(slow)
        return len(fast["tables"])
    finally:
        await store.close()


async def _init(url: str) -> None:
    store = await open_store(url)
    await store.init()
    await store.close()


SKIP = re.compile(r"^\s*(DROP DATABASE|CREATE DATABASE|USE )", re.IGNORECASE)


@pytest.mark.parametrize(
    ("source", "tables"), [("chinook/Chinook_Sqlite.sql", 11), ("sakila/sqlite-sakila-schema.sql", 16)]
)
def test_public_form_equals_the_models_for_real_schemas(tmp_path: Path, source: str, tables: int) -> None:
    path = FIXTURES / source
    if not path.exists():
        pytest.skip(f"no fixture {path}")
    text = path.read_text(encoding="utf-8-sig")
    database = tmp_path / "source.db"
    conn = sqlite3.connect(database)
    conn.executescript("\n".join(line for line in text.splitlines() if not SKIP.match(line)))
    conn.close()
    store = f"sqlite:///{tmp_path / 'log.db'}"
    asyncio.run(_init(store))
    assert main(["--store", store, "import", "--url", f"sqlite:///{database}", "--stream", "real"]) == 0
    assert asyncio.run(_compare_head(store, "real")) >= tables
