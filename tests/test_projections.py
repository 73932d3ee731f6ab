"""Projections on both stores: points, snapshots, diffs, inverses, revert, blame, history."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pydantic
import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from events.aggregate import InvalidChange, State, fold
from events.catalog import (
    ColumnAdded,
    ColumnAltered,
    ColumnDropped,
    ColumnRenamed,
    ConstraintAdded,
    IndexCreated,
    TableCreated,
    TableDropped,
    TableRenamed,
    TagCreated,
)
from events.envelope import Changeset
from events.log import EventLog
from events.model import Column, Constraint, Index, Reference, Schema
from events.store import EventStore
from projections.audit import HistoryFilter, blame, filter_history
from projections.diff import changes_between, inverse, revert_changeset
from projections.schema import HEAD, Point, PointError, Projector, normalized, parse_point, same_schema
from service.reconciler.dialects import get_dialect
from service.reconciler.dialects.sqlite.introspect import introspect_sqlite

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def users_table() -> TableCreated:
    return TableCreated(
        table="users",
        columns=(
            Column(name="id", type="bigint", nullable=False, identity=True),
            Column(name="mail", type="varchar(255)", nullable=False, comment="login"),
            Column(name="age", type="integer", default="0"),
        ),
        primary_key=("id",),
    )


HISTORY: list[tuple[str, list]] = [
    (
        "alice",
        [
            users_table(),
            IndexCreated(table="users", index=Index(name="users_mail_key", columns=("mail",), unique=True)),
        ],
    ),
    (
        "bob",
        [
            TableCreated(
                table="orders",
                columns=(
                    Column(name="id", type="integer", nullable=False),
                    Column(name="user_id", type="bigint"),
                    Column(name="total", type="numeric(10,2)", default="0"),
                ),
                primary_key=("id",),
            ),
            ConstraintAdded(
                table="orders",
                constraint=Constraint(
                    name="orders_user_fk",
                    kind="foreign_key",
                    columns=("user_id",),
                    references=Reference(table="users", columns=("id",)),
                    on_delete="cascade",
                ),
            ),
        ],
    ),
    ("carol", [ColumnRenamed(table="users", column="mail", new_name="email")]),
    ("dave", [TableRenamed(table="users", new_name="people")]),
    ("erin", [ColumnAltered.of("people", "email", type="text", comment=None)]),
    ("frank", [ColumnDropped(table="people", column="age")]),
    ("grace", [ColumnAdded(table="orders", column=Column(name="note", type="text", default="'none'"))]),
]


async def load(store: EventStore, stream: str = "app") -> list[int]:
    """Append HISTORY one changeset a day; return the last version of each changeset."""
    log = EventLog(store)
    ends = []
    for day, (actor, events) in enumerate(HISTORY):
        result = await log.append(
            Changeset(stream=stream, actor=actor, message=f"change by {actor}", events=tuple(events)),
            now=T0 + timedelta(days=day),
        )
        ends.append(result.last_version)
    return ends


def expected_at(version: int) -> Schema:
    events = [e for _, batch in HISTORY for e in batch]
    return fold(events[:version])


# --------------------------------------------------------------------------- points


def test_parse_point() -> None:
    assert parse_point(None) == HEAD
    assert parse_point("head") == HEAD
    assert parse_point("12") == Point(version=12)
    assert parse_point("v7") == Point(version=7)
    assert parse_point("2026-11-20T10:00Z") == Point(time=T0)
    assert parse_point("release-1") == Point(tag="release-1")
    with pytest.raises(PointError):
        parse_point("2026-13-45")


async def test_state_at_version_time_and_tag(store: EventStore) -> None:
    ends = await load(store)
    projector = Projector(store, snapshot_every=3)
    head = ends[-1]
    for version in range(head + 1):
        got_version, schema = await projector.schema("app", Point(version=version))
        assert got_version == version
        assert schema == expected_at(version), version
    # time: the end of day 2 is after the third changeset
    version, _ = await projector.schema("app", Point(time=T0 + timedelta(days=2, hours=1)))
    assert version == ends[2]
    version, schema = await projector.schema("app", Point(time=T0 - timedelta(days=1)))
    assert version == 0 and schema.tables == {}
    # tag
    await EventLog(store).append(
        Changeset(stream="app", actor="rel", events=(TagCreated(tag="release-1", version=ends[1]),))
    )
    version, schema = await projector.schema("app", Point(tag="release-1"))
    assert version == ends[1]
    assert schema == expected_at(ends[1])
    with pytest.raises(PointError, match="no tag 'nope'"):
        await projector.resolve("app", Point(tag="nope"))
    with pytest.raises(PointError, match="no version 999"):
        await projector.resolve("app", Point(version=999))
    # a tag name is used once; a tag cannot name the future
    with pytest.raises(InvalidChange, match="already names"):
        await EventLog(store).append(
            Changeset(stream="app", actor="rel", events=(TagCreated(tag="release-1", version=1),))
        )
    with pytest.raises(InvalidChange, match="names version 500"):
        await EventLog(store).append(
            Changeset(stream="app", actor="rel", events=(TagCreated(tag="later", version=500),))
        )


async def test_snapshots_equal_replay_and_bad_ones_are_ignored(store: EventStore) -> None:
    ends = await load(store)
    head = ends[-1]
    taking = Projector(store, snapshot_every=2)
    await taking.rebuild_snapshots("app")
    versions = await store.snapshot_versions("app")  # type: ignore[attr-defined]
    assert versions == list(range(2, head + 1, 2))
    replay = Projector(store, take_snapshots=False)
    await store.drop_snapshots("app")  # type: ignore[attr-defined]
    expected = {v: (await replay.schema("app", Point(version=v)))[1] for v in range(head + 1)}
    await taking.rebuild_snapshots("app")
    for v in range(head + 1):
        assert (await taking.schema("app", Point(version=v)))[1] == expected[v]
    # a snapshot whose body was changed is ignored, not trusted
    version, event_hash, digest, body = await store.snapshot_below("app", 4)  # type: ignore[attr-defined,misc]
    forged = body.replace('"people"', '"forged"').replace('"users"', '"forged"')
    assert forged != body
    await store.save_snapshot("app", version, event_hash, digest, forged)  # type: ignore[attr-defined]
    assert (await Projector(store).schema("app", Point(version=version)))[1] == expected[version]
    # a snapshot taken against another log (its event hash differs) is ignored too
    await store.save_snapshot("app", version, "0" * 64, digest, body)  # type: ignore[attr-defined]
    assert (await Projector(store).schema("app", Point(version=version)))[1] == expected[version]


# --------------------------------------------------------------------------- inverses and diffs


def test_every_event_has_an_exact_inverse() -> None:
    state = State()
    events = [e for _, batch in HISTORY for e in batch]
    events.append(TableDropped(table="orders"))
    from events.aggregate import apply_event

    for event in events:
        before = state.copy()
        undo = inverse(event, before)
        after = state.copy()
        apply_event(event, after)
        assert undo is not None
        # undoing gives the state before back (order of columns aside)
        undone = after.copy()
        apply_event(undo, undone)
        assert same_schema(undone.to_schema(), before.to_schema()), event
        # and the inverse of the inverse is the event itself
        assert inverse(undo, after) == event
        state = after


def test_dropped_column_comes_back_whole() -> None:
    state = State()
    from events.aggregate import apply_event

    apply_event(users_table(), state)
    undo = inverse(ColumnDropped(table="users", column="mail"), state)
    # NOT NULL without a default: the rows get the type's zero, as Django's effective default
    assert undo == ColumnAdded(
        table="users",
        column=Column(name="mail", type="varchar(255)", nullable=False, comment="login"),
        fill="''",
    )


async def test_diff_forward_and_back(store: EventStore) -> None:
    ends = await load(store)
    projector = Projector(store)
    _va, _vb, forward = await changes_between(projector, "app", Point(version=ends[1]), HEAD)
    assert [c.event.type for c in forward] == [
        "column_renamed",
        "table_renamed",
        "column_altered",
        "column_dropped",
        "column_added",
    ]
    assert all(not c.backward for c in forward)
    _, _, back = await changes_between(projector, "app", HEAD, Point(version=ends[1]))
    assert [c.source_version for c in back] == sorted((c.source_version for c in forward), reverse=True)
    # renames stay renames both ways
    assert back[-1].event == ColumnRenamed(table="users", column="email", new_name="mail")
    # applying the changes to state a gives state b, both ways
    for a, b in [(0, ends[-1]), (ends[-1], 0), (ends[1], ends[-1]), (ends[-1], ends[1]), (ends[3], ends[2])]:
        _, _, steps = await changes_between(projector, "app", Point(version=a), Point(version=b))
        state_a = await projector.state_at_version("app", a)
        from events.aggregate import apply_events

        apply_events(state_a, [c.event for c in steps])
        assert same_schema(state_a.to_schema(), expected_at(b)), (a, b)


async def test_revert_and_its_refusal(store: EventStore) -> None:
    await load(store)
    recorded = await store.read("app")
    last = recorded[-1].changeset_id
    undo = revert_changeset(recorded, last)
    assert undo == [ColumnDropped(table="orders", column="note")]
    # the first changeset: later changes depend on users
    with pytest.raises(InvalidChange, match="later changes depend on it: v"):
        revert_changeset(recorded, recorded[0].changeset_id)
    with pytest.raises(InvalidChange, match="no changeset"):
        revert_changeset(recorded, "nope")


# --------------------------------------------------------------------------- audit


async def test_blame_follows_renames(store: EventStore) -> None:
    await load(store)
    recorded = await store.read("app")
    lines = {(b.kind, b.name): b for b in blame(recorded, "people") or []}
    email = lines[("column", "email")]
    assert email.created.actor == "alice"
    assert email.changed.actor == "erin"  # altered after carol renamed it
    assert email.names == ["mail"]
    assert lines[("column", "id")].created.actor == "alice"
    assert lines[("column", "id")].changed.actor == "alice"
    assert ("column", "age") not in lines  # dropped by frank
    assert lines[("index", "users_mail_key")].created.actor == "alice"
    # blame at an earlier point, under the old name
    early = [r for r in recorded if r.version <= 5]
    old = {(b.kind, b.name): b for b in blame(early, "users") or []}
    assert old[("column", "email")].changed.actor == "carol"
    assert blame(recorded, "users") is None


async def test_history_filters_follow_renames(store: EventStore) -> None:
    await load(store)
    recorded = await store.read("app")
    by_new_name = filter_history(recorded, HistoryFilter(table="people"))
    by_old_name = filter_history(recorded, HistoryFilter(table="users"))
    assert by_new_name == by_old_name
    assert [r.actor for r in by_new_name] == ["alice", "alice", "bob", "carol", "dave", "erin", "frank"]
    column = filter_history(recorded, HistoryFilter(table="people", column="email"))
    assert [r.actor for r in column] == ["alice", "alice", "carol", "erin"]
    assert [r.actor for r in filter_history(recorded, HistoryFilter(actor="bob"))] == ["bob", "bob"]
    since = filter_history(recorded, HistoryFilter(since=T0 + timedelta(days=5)))
    assert [r.actor for r in since] == ["frank", "grace"]
    until = filter_history(recorded, HistoryFilter(until=T0 + timedelta(hours=1)))
    assert [r.actor for r in until] == ["alice", "alice"]
    typed = filter_history(recorded, HistoryFilter(types=frozenset({"table_renamed", "column_renamed"})))
    assert [r.actor for r in typed] == ["carol", "dave"]


# --------------------------------------------------------------------------- show --format sql


@pytest.mark.parametrize("version", [1, 2, 4, 6, 7, 9])
async def test_sqlite_script_introspects_back_to_the_projection(sqlite_url: str, tmp_path: Path, version: int) -> None:
    from events.store import open_store

    store = await open_store(sqlite_url)
    await store.init()
    try:
        await load(store)
        _, schema = await Projector(store).schema("app", Point(version=version))
    finally:
        await store.close()
    dialect = get_dialect("sqlite")
    target = tmp_path / f"target{version}.db"
    with sqlite3.connect(target) as conn:
        conn.executescript(";\n".join(dialect.create_script(schema)) + ";")
    engine = sa.create_engine(f"sqlite:///{target}")
    with engine.connect() as conn:
        live = introspect_sqlite(conn)
    engine.dispose()
    assert normalized(live) == normalized(dialect.normalize(schema))


@settings(max_examples=500, deadline=None, derandomize=True)
@given(
    name=st.one_of(
        st.text(min_size=1, max_size=12),
        st.from_regex(r"[vV]?-?[0-9]{1,4}", fullmatch=True),
        st.from_regex(r"[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}Z)?", fullmatch=True),
        st.sampled_from(["head", "HEAD", "Head", " v1", "v1 ", "release-1", "\u00b2", "\u0661\u0662", "v\u0661"]),
    )
)
def test_a_tag_is_recorded_only_under_a_name_that_points_read_back_as_it(name: str) -> None:
    """A tag can be used wherever a version can: a name that would read as a version, time or head is refused."""
    try:
        TagCreated(tag=name, version=1)
    except pydantic.ValidationError:
        return
    assert parse_point(name) == Point(tag=name)
