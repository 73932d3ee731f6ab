"""Properties of the projections over random valid histories, on the SQLite and PostgreSQL stores."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events.aggregate import State, apply_event, apply_events, fold
from events.catalog import Event, to_dict
from events.envelope import Changeset
from events.log import EventLog
from events.store import open_store
from projections.diff import FillNeeded, changes_between, effective_fill, inverse, schema_diff
from projections.replay import Replay
from projections.schema import Point, Projector, normalized, same_schema
from service.reconciler.dialects import get_dialect
from service.reconciler.dialects.sqlite.introspect import introspect_sqlite
from tests.histories import histories
from tests.servers import postgres_database_url

FAST = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
STORE = settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


def flat(history: list[list[Event]]) -> list[Event]:
    return [e for batch in history for e in batch]


@FAST
@given(history=histories(max_changesets=8, dialect="any"))
def test_inverse_of_inverse_is_the_event(history: list[list[Event]]) -> None:
    state = State()
    for event in flat(history):
        before = state.copy()
        undo = inverse(event, before)
        apply_event(event, state)
        assert undo is not None
        assert inverse(undo, state) == event
        undone = state.copy()
        apply_event(undo, undone)
        assert same_schema(undone.to_schema(), before.to_schema())


@FAST
@given(a=histories(max_changesets=6, dialect="any"), b=histories(max_changesets=6, dialect="any"))
def test_schema_diff_turns_a_into_b(a: list[list[Event]], b: list[list[Event]]) -> None:
    sa_, sb = fold(flat(a)), fold(flat(b))
    try:
        events = schema_diff(sa_, sb)
    except FillNeeded as exc:  # makemigrations asks for these; here each gets its type's zero
        fills = {}
        for table, name in exc.columns:
            column = sb.tables[table].column(name)
            assert column is not None
            fill = effective_fill(column, sb.enums)
            fills[(table, name)] = fill if fill is not None else "NULL"
        events = schema_diff(sa_, sb, fills=fills)
    state = State.from_schema(sa_)
    apply_events(state, events)
    assert same_schema(state.to_schema(), sb)


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(history=histories(max_changesets=10, dialect="any"), cut=st.integers(0, 60))
def test_replay_of_the_stored_form_equals_the_checked_fold(history: list[list[Event]], cut: int) -> None:
    """projections.replay applies exactly the changes of events.aggregate's rules, at every version."""
    events = flat(history)
    texts = [json.dumps(to_dict(e)) for e in events]
    cut %= len(events) + 1
    replay = Replay()
    checked = State()
    for k, (event, text) in enumerate(zip(events, texts, strict=True), start=1):
        replay.apply(json.loads(text))
        apply_event(event, checked)
        assert replay.to_state().to_schema() == checked.to_schema(), k
        if k == cut:  # a snapshot body taken here and read back goes on the same way
            replay = Replay.from_body(replay.body())
            assert replay.to_state().to_schema() == checked.to_schema(), k


async def _snapshots_and_diffs(history: list[list[Event]], url: str, picks: list[tuple[int, int]]) -> None:
    store = await open_store(url)
    await store.init()
    try:
        for batch in history:
            await EventLog(store).append(Changeset(stream="s", actor="p", events=tuple(batch)))
        events = flat(history)
        head = len(events)
        projector = Projector(store, snapshot_every=3)
        await projector.rebuild_snapshots("s")
        for k in range(head + 1):
            _, by_snapshot = await projector.schema("s", Point(version=k))
            assert by_snapshot == fold(events[:k]), k
        for a, b in picks:
            va, vb = a % (head + 1), b % (head + 1)
            _, _, steps = await changes_between(projector, "s", Point(version=va), Point(version=vb))
            state = State.from_schema(fold(events[:va]))
            apply_events(state, [c.event for c in steps])
            assert same_schema(state.to_schema(), fold(events[:vb])), (va, vb)
    finally:
        await store.close()


PICKS = st.lists(st.tuples(st.integers(0, 60), st.integers(0, 60)), min_size=1, max_size=4)


def test_snapshot_equals_replay_and_diff_applies_sqlite(tmp_path: Path) -> None:
    counter = iter(range(10**6))

    @STORE
    @given(history=histories(max_changesets=8, dialect="any"), picks=PICKS)
    def run(history: list[list[Event]], picks: list[tuple[int, int]]) -> None:
        asyncio.run(_snapshots_and_diffs(history, f"sqlite:///{tmp_path / f'log{next(counter)}.db'}", picks))

    run()


@pytest.mark.postgres
def test_snapshot_equals_replay_and_diff_applies_postgresql() -> None:
    @STORE
    @given(history=histories(max_changesets=8, dialect="any"), picks=PICKS)
    def run(history: list[list[Event]], picks: list[tuple[int, int]]) -> None:
        with postgres_database_url() as url:
            asyncio.run(_snapshots_and_diffs(history, url, picks))

    run()


def test_sqlite_script_of_any_state_introspects_back(tmp_path: Path) -> None:
    counter = iter(range(10**6))
    dialect = get_dialect("sqlite")

    @STORE
    @given(history=histories(max_changesets=8, dialect="sqlite"), cut=st.integers(0, 60))
    def run(history: list[list[Event]], cut: int) -> None:
        events = flat(history)
        schema = fold(events[: cut % (len(events) + 1)])
        path = tmp_path / f"show{next(counter)}.db"
        with sqlite3.connect(path) as conn:
            conn.executescript(";\n".join(dialect.create_script(schema)) + ";")
        engine = sa.create_engine(f"sqlite:///{path}")
        try:
            with engine.connect() as conn:
                live = introspect_sqlite(conn)
        finally:
            engine.dispose()
        assert normalized(live) == normalized(dialect.normalize(schema))

    run()
