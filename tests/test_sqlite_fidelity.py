"""SQLite holds issue 13's vocabulary exactly: what a state makes, introspection reads back as that state
(in the dialect's normalized form), forward and back to nothing, with rows kept where the change keeps them.

Each test folds validated events (events.aggregate), emits each one's statements (service.reconciler.ddl),
proves each one planned kind (statements.py) and runs them in one transaction, as the SQLite target does;
then the live schema is introspected and compared with the state. Going back runs the events' inverses
(projections.diff) the same way. Enum types and named primary keys are driven from schemas made here.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from events.aggregate import State, apply_event
from events.catalog import (
    ColumnAdded,
    ColumnAltered,
    ColumnDropped,
    ConstraintAdded,
    ConstraintDropped,
    EnumCreated,
    EnumDropped,
    EnumValueAdded,
    EnumValueDropped,
    IndexCreated,
    TableCreated,
    TableDropped,
)
from events.envelope import Changeset
from events.log import EventLog
from events.model import (
    Column,
    Constraint,
    EnumType,
    Generated,
    IdentityOptions,
    Index,
    IndexElement,
    Reference,
    Schema,
    Table,
    evolve,
)
from events.store import EventStore
from projections.diff import inverses
from projections.schema import Point, Projector, normalized
from service.reconciler import capacity
from service.reconciler.apply import MigrateRequest, migrate
from service.reconciler.ddl import emit
from service.reconciler.dialects.sqlite.ddl import SqliteDialect
from service.reconciler.dialects.sqlite.introspect import (
    introspect_sqlite,
    read_index_sql,
    read_table_sql,
    sqlite_check_texts,
)
from service.reconciler.normalize import differences
from service.reconciler.statements import check_planned
from service.reconciler.targets import open_target
from tests.sqlexec import run_sql

DIALECT = SqliteDialect()


class Database:
    """One SQLite file, migrated event by event as the reconciler would."""

    def __init__(self, path: Path):
        self.engine = sa.create_engine(f"sqlite:///{path}", poolclass=NullPool, connect_args={"isolation_level": None})
        self.state = State()
        self.statements: list[str] = []

    def run(self, *sql: str) -> list[Any]:
        with self.engine.connect() as conn:
            raw = conn.connection.driver_connection
            assert raw is not None
            rows: list[Any] = []
            for statement in sql:
                rows = raw.execute(statement).fetchall()
            return rows

    def apply_statements(self, event: Any, before: Schema, after: Schema) -> list[str]:
        statements = emit(event, DIALECT, before, after)
        for sql in statements:
            check_planned("sqlite", sql, event.type)
        with self.engine.connect() as conn:
            raw = conn.connection.driver_connection
            assert raw is not None
            raw.execute("BEGIN")
            for sql in statements:
                raw.execute(sql)
            raw.execute("COMMIT")
        self.statements.extend(statements)
        return statements

    def forward(self, *events: Any) -> list[Any]:
        """Apply ``events``; return their inverses (in the order that undoes them)."""
        undo = inverses(list(events), self.state)
        self.back(*events)
        return undo

    def back(self, *events: Any) -> None:
        """Apply ``events`` (inverses, going back) without working out their own inverses."""
        for event in events:
            before = self.state.to_schema()
            apply_event(event, self.state)
            self.apply_statements(event, before, self.state.to_schema())
        self.assert_live_is(self.state.to_schema())

    def live(self) -> Schema:
        with self.engine.connect() as conn:
            return introspect_sqlite(conn)

    def assert_live_is(self, schema: Schema) -> None:
        expected = DIALECT.normalize(schema)
        live = self.live()
        assert differences(expected, live) == []
        assert normalized(live) == normalized(expected)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(tmp_path / "target.db")
    yield database
    database.engine.dispose()


def table(name: str, *columns: Column, **kw: Any) -> TableCreated:
    kw.setdefault("primary_key", ("id",))
    return TableCreated(table=name, columns=(Column(name="id", type="integer", nullable=False), *columns), **kw)


# --------------------------------------------------------------------------- collations


def test_collations_round_trip_and_change_by_rebuild_keeping_rows(db: Database) -> None:
    undo = db.forward(
        table(
            "people",
            Column(name="name", type="text", collation="NOCASE"),
            Column(name="code", type="varchar(10)", collation="rtrim"),
            Column(name="plain", type="text", collation="BINARY"),
            primary_key=("id",),
        )
    )
    assert DIALECT.normalize(db.state.to_schema()).tables["people"].column("plain").collation is None  # type: ignore[union-attr]
    assert db.live().tables["people"].column("code").collation == "RTRIM"  # type: ignore[union-attr]
    db.run("INSERT INTO people (id, name, code) VALUES (1, 'Ada', 'x  ')")
    assert db.run("SELECT id FROM people WHERE name = 'ADA' AND code = 'x'") == [(1,)]
    undo = db.forward(ColumnAltered.of("people", "name", collation="RTRIM")) + undo
    assert any(s.startswith("INSERT INTO") for s in db.statements[-4:])  # a rebuild, rows copied
    assert db.run("SELECT id FROM people WHERE name = 'ADA'") == []  # NOCASE is gone: the rebuild took it
    assert db.run("SELECT name FROM people") == [("Ada",)]
    for event in undo:
        db.back(event)
    assert db.live().tables == {}


def test_an_unknown_collation_is_refused_before_any_ddl() -> None:
    event = table("t", Column(name="name", type="text", collation="de_DE"), primary_key=("id",))
    problems = capacity.plan_problems(DIALECT, State(), [(1, event)])
    assert any("no collation 'de_DE'" in p and "NOCASE" in p for p in problems), problems


# --------------------------------------------------------------------------- generated columns


def test_generated_columns_virtual_and_stored_added_by_alter_or_rebuild(db: Database) -> None:
    undo = db.forward(
        table(
            "boxes",
            Column(name="w", type="integer", nullable=False, default="1"),
            Column(name="h", type="integer"),
            Column(name="area", type="integer", generated=Generated(expression="w * h", stored=False)),
            Column(name="twice", type="integer", generated=Generated(expression="(w + 1) * 2", stored=True)),
            primary_key=("id",),
        )
    )
    live = db.live().tables["boxes"]
    assert live.column("area").generated == Generated(expression="w*h", stored=False)  # type: ignore[union-attr]
    assert live.column("twice").generated.stored  # type: ignore[union-attr]
    db.run("INSERT INTO boxes (id, w, h) VALUES (1, 3, 4)")
    virtual = ColumnAdded(
        table="boxes", column=Column(name="half", type="real", generated=Generated(expression="w / 2.0", stored=False))
    )
    undo = db.forward(virtual) + undo
    assert db.statements[-1].startswith("ALTER TABLE") and "ADD COLUMN" in db.statements[-1]
    stored = ColumnAdded(
        table="boxes", column=Column(name="perimeter", type="integer", generated=Generated(expression="2 * (w + h)"))
    )
    undo = db.forward(stored) + undo
    assert any(s.startswith("INSERT INTO") for s in db.statements[-5:])  # ADD COLUMN cannot add it: a rebuild
    assert db.run("SELECT area, twice, half, perimeter FROM boxes") == [(12, 8, 1.5, 14)]
    for event in undo[:2]:
        db.back(event)
    assert db.run("SELECT id, w, h, area FROM boxes") == [(1, 3, 4, 12)]
    for event in undo[2:]:
        db.back(event)
    assert db.live().tables == {}


def test_a_generated_column_in_the_primary_key_is_refused() -> None:
    event = TableCreated(
        table="t",
        columns=(
            Column(name="a", type="integer", nullable=False),
            Column(name="b", type="integer", nullable=False, generated=Generated(expression="a + 1")),
        ),
        primary_key=("b",),
    )
    problems = capacity.plan_problems(DIALECT, State(), [(1, event)])
    assert any("generated column cannot be in SQLite's primary key" in p for p in problems), problems


# --------------------------------------------------------------------------- identity


def test_identity_options_are_normalized_away_and_the_rowid_alias_counts(db: Database) -> None:
    options = IdentityOptions(always=True, start=100, increment=5)
    db.forward(
        TableCreated(
            table="tickets",
            columns=(
                Column(name="id", type="bigint", nullable=False, identity=True, identity_options=options),
                Column(name="label", type="text"),
            ),
            primary_key=("id",),
        ),
        TableCreated(
            table="seats",
            columns=(
                Column(name="code", type="text", nullable=False),
                Column(name="n", type="integer", nullable=False, identity=True, identity_options=options),
            ),
            primary_key=("code",),
        ),
    )
    held = DIALECT.normalize(db.state.to_schema())
    assert held.tables["tickets"].column("id").identity  # type: ignore[union-attr]
    assert held.tables["tickets"].column("id").identity_options is None  # type: ignore[union-attr]
    assert not held.tables["seats"].column("n").identity  # type: ignore[union-attr]
    db.run("INSERT INTO tickets (label) VALUES ('a')", "INSERT INTO tickets (label) VALUES ('b')")
    assert db.run("SELECT id, label FROM tickets ORDER BY id") == [(1, "a"), (2, "b")]


# --------------------------------------------------------------------------- indexes


def test_partial_expression_and_descending_indexes_survive_rebuilds(db: Database) -> None:
    undo = db.forward(
        table(
            "posts",
            Column(name="title", type="text", nullable=False),
            Column(name="posted", type="timestamp"),
            Column(name="deleted", type="timestamp"),
            primary_key=("id",),
        ),
        IndexCreated(
            table="posts",
            index=Index(
                name="posts_title_live",
                unique=True,
                elements=(IndexElement(expression="lower(title)"), IndexElement(column="posted", descending=True)),
                where="deleted IS NULL",
            ),
        ),
        IndexCreated(
            table="posts", index=Index(name="posts_recent", columns=("posted",), where="posted > '2020-01-01'")
        ),
        IndexCreated(
            table="posts",
            index=Index(name="posts_desc", elements=(IndexElement(column="id", descending=True),)),
        ),
    )
    live = db.live().tables["posts"].index("posts_title_live")
    assert live is not None and live.unique and live.where == "deletedisnull"
    assert [e.descending for e in live.elements] == [False, True]
    db.run("INSERT INTO posts (id, title, posted) VALUES (1, 'Hello', '2024-01-01')")
    with pytest.raises(sqlite3.IntegrityError):
        db.run("INSERT INTO posts (id, title, posted) VALUES (2, 'HELLO', '2024-01-01')")
    db.run("INSERT INTO posts (id, title, posted, deleted) VALUES (3, 'HELLO', '2024-01-01', '2024-02-01')")
    # a rebuild (a column dropped) makes every index again, from the log's own text
    undo = (
        db.forward(
            ColumnAdded(table="posts", column=Column(name="x", type="integer")),
            ColumnDropped(table="posts", column="x"),
        )
        + undo
    )
    assert db.run("SELECT id FROM posts ORDER BY id") == [(1,), (3,)]
    for event in undo:
        db.back(event)
    assert db.live().tables == {}


@pytest.mark.parametrize(
    ("index", "says"),
    [
        (Index(name="i", columns=("name",), method="gin"), "no gin index"),
        (Index(name="i", columns=("name",), method="hash"), "no hash index"),
        (Index(name="i", elements=(IndexElement(column="name", opclass="text_pattern_ops"),)), "operator classes"),
        (Index(name="i", columns=("id",), include=("name",)), "include columns (name)"),
    ],
)
def test_indexes_sqlite_cannot_hold_are_refused(index: Index, says: str) -> None:
    events = [
        (1, table("t", Column(name="name", type="text"), primary_key=("id",))),
        (2, IndexCreated(table="t", index=index)),
    ]
    problems = capacity.plan_problems(DIALECT, State(), events)
    assert any(p.startswith("v2 (index_created): index t.i: SQLite has no") and says in p for p in problems), problems


# --------------------------------------------------------------------------- deferrable constraints


def test_deferrable_foreign_key_is_held_and_deferred_unique_normalized_away(db: Database) -> None:
    undo = db.forward(
        table("authors", Column(name="mail", type="text"), primary_key=("id",)),
        table("books", Column(name="author_id", type="integer"), primary_key=("id",)),
    )
    fk = Constraint(
        name="books_author_fk",
        kind="foreign_key",
        columns=("author_id",),
        references=Reference(table="authors", columns=("id",)),
        on_delete="cascade",
        deferrable=True,
        initially_deferred=True,
    )
    unique = Constraint(name="authors_mail_key", kind="unique", columns=("mail",), deferrable=True)
    db.run("INSERT INTO authors (id) VALUES (1)", "INSERT INTO books (id, author_id) VALUES (1, 1)")
    undo = (
        db.forward(ConstraintAdded(table="books", constraint=fk), ConstraintAdded(table="authors", constraint=unique))
        + undo
    )
    live = db.live()
    assert live.tables["books"].constraint("books_author_fk") == evolve(fk, on_delete="cascade")
    assert not live.tables["authors"].constraint("authors_mail_key").deferrable  # type: ignore[union-attr]
    # deferred for real: the child may come before its parent within a transaction
    with db.engine.connect() as conn:
        raw = conn.connection.driver_connection
        assert raw is not None
        raw.execute("PRAGMA foreign_keys = ON")
        raw.execute("BEGIN")
        raw.execute("INSERT INTO books (id, author_id) VALUES (2, 2)")
        raw.execute("INSERT INTO authors (id) VALUES (2)")
        raw.execute("COMMIT")
    assert db.run("SELECT id, author_id FROM books ORDER BY id") == [(1, 1), (2, 2)]
    for event in undo:
        db.back(event)
    assert db.live().tables == {}


# --------------------------------------------------------------------------- named primary keys


def test_named_primary_key_is_written_and_read_back_and_kept_by_rebuilds(db: Database) -> None:
    created = TableCreated(
        table="accounts",
        columns=(Column(name="a", type="integer", nullable=False), Column(name="b", type="text", nullable=False)),
        primary_key=("a", "b"),
        primary_key_name="accounts_key",
    )
    bare = Table(name="accounts", columns=created.columns, primary_key=created.primary_key)
    named = evolve(bare, primary_key_name="accounts_key")
    empty, after = Schema(), Schema(tables={"accounts": named})
    db.apply_statements(created, empty, after)
    assert "CONSTRAINT accounts_key PRIMARY KEY (a, b)" in db.statements[0]
    db.assert_live_is(after)
    assert db.live().tables["accounts"].primary_key_name == "accounts_key"
    db.run("INSERT INTO accounts (a, b) VALUES (1, 'x')")
    added = ColumnAdded(table="accounts", column=Column(name="n", type="integer", nullable=False), fill="7")
    wider = Schema(tables={"accounts": evolve(named, columns=(*named.columns, added.column))})
    db.apply_statements(added, after, wider)
    db.assert_live_is(wider)
    assert db.run("SELECT a, b, n FROM accounts") == [(1, "x", 7)]
    # the rowid alias is declared on its column, which takes no name: the name is normalized away
    rowid = Table(
        name="counters",
        columns=(Column(name="id", type="integer", nullable=False, identity=True),),
        primary_key=("id",),
        primary_key_name="counters_key",
    )
    assert DIALECT.normalize(Schema(tables={"counters": rowid})).tables["counters"].primary_key_name is None
    both = Schema(tables={**wider.tables, "counters": rowid})
    db.apply_statements(TableCreated(table="counters", columns=rowid.columns, primary_key=("id",)), wider, both)
    db.assert_live_is(both)
    db.apply_statements(TableDropped(table="counters"), both, wider)
    db.apply_statements(TableDropped(table="accounts"), wider, empty)
    db.assert_live_is(empty)


# --------------------------------------------------------------------------- enum types


def test_enum_columns_are_varchars_sized_by_their_longest_value(db: Database) -> None:
    mood = EnumType(name="mood", values=("ok", "sad"))
    created = TableCreated(
        table="days",
        columns=(Column(name="id", type="integer", nullable=False), Column(name="mood", type="enum:mood")),
        primary_key=("id",),
    )
    days = Table(name="days", columns=created.columns, primary_key=("id",))
    s0 = Schema()
    s1 = Schema(enums={"mood": mood})
    s2 = Schema(tables={"days": days}, enums={"mood": mood})
    assert db.apply_statements(EnumCreated(name="mood", values=mood.values), s0, s1) == []
    db.apply_statements(created, s1, s2)
    assert "VARCHAR(3)" in db.statements[-1]
    db.assert_live_is(s2)
    assert db.live().tables["days"].column("mood").type == DIALECT.normalize(s2).tables["days"].column("mood").type  # type: ignore[union-attr]
    db.run("INSERT INTO days (id, mood) VALUES (1, 'sad')")
    # a longer value: the column is VARCHAR(5) afterwards (a rebuild, rows kept)
    s3 = Schema(tables={"days": days}, enums={"mood": EnumType(name="mood", values=("happy", "ok", "sad"))})
    db.apply_statements(EnumValueAdded(name="mood", value="happy", before="ok"), s2, s3)
    db.assert_live_is(s3)
    assert str(db.live().tables["days"].column("mood").type) == "varchar(5)"  # type: ignore[union-attr]
    # a value no longer than the longest changes nothing
    s4 = Schema(tables={"days": days}, enums={"mood": EnumType(name="mood", values=("happy", "ok", "sad", "meh"))})
    assert db.apply_statements(EnumValueAdded(name="mood", value="meh"), s3, s4) == []
    db.assert_live_is(s4)
    # back: the values dropped again, the table, the type
    db.apply_statements(EnumValueDropped(name="mood", value="meh"), s4, s3)
    db.apply_statements(EnumValueDropped(name="mood", value="happy"), s3, s2)
    db.assert_live_is(s2)
    assert db.run("SELECT id, mood FROM days") == [(1, "sad")]
    db.apply_statements(TableDropped(table="days"), s2, s1)
    assert db.apply_statements(EnumDropped(name="mood"), s1, s0) == []
    db.assert_live_is(s0)


# --------------------------------------------------------------------------- fills


def test_fill_gives_existing_rows_a_value_and_leaves_no_default(db: Database) -> None:
    undo = db.forward(table("items", Column(name="note", type="text"), primary_key=("id",)))
    db.run("INSERT INTO items (id, note) VALUES (1, 'a'), (2, NULL)")
    added = ColumnAdded(table="items", column=Column(name="qty", type="integer", nullable=False), fill="1 + 2")
    undo = db.forward(added) + undo
    assert db.live().tables["items"].column("qty").default is None  # type: ignore[union-attr]
    assert db.run("SELECT id, qty FROM items ORDER BY id") == [(1, 3), (2, 3)]
    with pytest.raises(sqlite3.IntegrityError):
        db.run("INSERT INTO items (id) VALUES (3)")  # NOT NULL without a default, as the log says
    tightened = ColumnAltered(table="items", column="note", nullable=False, fill="'none'")
    undo = db.forward(tightened) + undo
    assert db.statements[-5].startswith("UPDATE") and "IS NULL" in db.statements[-5]
    assert db.run("SELECT id, note, qty FROM items ORDER BY id") == [(1, "a", 3), (2, "none", 3)]
    db.back(undo[0])  # note nullable again: rows kept
    assert db.run("SELECT id, note FROM items ORDER BY id") == [(1, "a"), (2, "none")]
    db.back(undo[1])  # qty dropped
    assert db.run("SELECT id, note FROM items ORDER BY id") == [(1, "a"), (2, "none")]
    db.back(undo[2])
    assert db.live().tables == {}


def test_add_column_with_a_non_constant_default_rebuilds(db: Database) -> None:
    db.forward(table("logs", primary_key=("id",)))
    db.run("INSERT INTO logs (id) VALUES (1)")
    db.forward(ColumnAdded(table="logs", column=Column(name="at", type="timestamp", default="CURRENT_TIMESTAMP")))
    assert db.run("SELECT count(*) FROM logs WHERE at IS NOT NULL") == [(1,)]


# --------------------------------------------------------------------------- reading SQLite's text


def test_create_table_text_is_read_through_quotes_literals_and_parentheses() -> None:
    text = read_table_sql(
        'CREATE TABLE "a ""b""" ("x,y" VARCHAR(3) COLLATE nocase DEFAULT (\'a,(b\') CHECK ("x,y" <> \'COLLATE rtrim\'),'
        ' [c] INTEGER GENERATED ALWAYS AS ((length("x,y") + 1) * 2) STORED,'
        " `d` TEXT AS (lower('AS (x)')) , -- a comment, with a comma\n"
        ' CONSTRAINT "the pk" PRIMARY KEY ("x,y"),'
        " CONSTRAINT ck CHECK (d != 'CONSTRAINT z PRIMARY KEY'),"
        ' CONSTRAINT fk FOREIGN KEY ([c]) REFERENCES "other t" ("o,id") ON DELETE SET NULL'
        " ON UPDATE NO ACTION DEFERRABLE INITIALLY DEFERRED,"
        " FOREIGN KEY (d) REFERENCES p (q) NOT DEFERRABLE)"
    )
    assert set(text.columns) == {"x,y", "c", "d"}
    assert text.columns["x,y"].collation == "NOCASE" and text.columns["x,y"].generated is None
    assert text.columns["c"].generated == '(length("x,y") + 1) * 2' and text.columns["c"].stored
    assert text.columns["d"].generated == "lower('AS (x)')" and not text.columns["d"].stored
    assert text.primary_key_name == "the pk"
    named, unnamed = text.foreign_keys
    assert (named.name, named.columns, named.table, named.ref_columns) == ("fk", ("c",), "other t", ("o,id",))
    assert named.on_delete == "set null" and named.on_update is None and named.deferrable and named.initially_deferred
    assert unnamed.name is None and not unnamed.deferrable


def test_create_index_text_is_read_element_by_element() -> None:
    text = read_index_sql(
        'CREATE UNIQUE INDEX "i, j" ON t ("a" DESC, (lower(b) || \',\') COLLATE NOCASE DESC, c ASC) WHERE a > 1'
    )
    assert text.elements == [('"a"', True), ("lower(b) || ','", False), ("c", True)]
    assert text.where == "a > 1"


def test_a_table_written_by_hand_introspects_with_what_it_says(db: Database) -> None:
    db.run(
        'CREATE TABLE "t" (id INTEGER NOT NULL, name TEXT COLLATE NOCASE, total INTEGER AS (id * 2) STORED,'
        ' CONSTRAINT "t pk" PRIMARY KEY (id))',
        "CREATE INDEX t_name ON t (lower(name) DESC) WHERE name IS NOT NULL",
    )
    live = db.live().tables["t"]
    assert live.primary_key_name == "t pk"
    assert live.column("name").collation == "NOCASE"  # type: ignore[union-attr]
    assert live.column("total").generated == Generated(expression="id*2", stored=True)  # type: ignore[union-attr]
    index = live.index("t_name")
    assert index is not None and index.elements == (IndexElement(expression="lowername", descending=True),)
    assert index.where == "nameisnotnull"


# --------------------------------------------------------------------------- through the log, as migrate runs


async def test_every_feature_through_the_log_forward_and_back_to_zero(log_store: EventStore, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'app.db'}"
    changesets: list[tuple[Any, ...]] = [
        (
            EnumCreated(name="status", values=("new", "done")),
            TableCreated(
                table="authors",
                columns=(
                    Column(name="id", type="integer", nullable=False, identity=True),
                    Column(name="name", type="text", nullable=False, collation="NOCASE"),
                ),
                primary_key=("id",),
            ),
            TableCreated(
                table="tasks",
                columns=(
                    Column(name="id", type="integer", nullable=False),
                    Column(name="author_id", type="integer"),
                    Column(name="title", type="varchar(50)", nullable=False),
                    Column(name="status", type="enum:status", nullable=False, default="'new'"),
                    Column(name="slug", type="text", generated=Generated(expression="lower(title)", stored=False)),
                    Column(name="done_at", type="timestamp"),
                ),
                primary_key=("id",),
                primary_key_name="tasks_key",
            ),
        ),
        (
            ConstraintAdded(
                table="tasks",
                constraint=Constraint(
                    name="tasks_author_fk",
                    kind="foreign_key",
                    columns=("author_id",),
                    references=Reference(table="authors", columns=("id",)),
                    deferrable=True,
                    initially_deferred=True,
                ),
            ),
            IndexCreated(
                table="tasks",
                index=Index(
                    name="tasks_open",
                    elements=(IndexElement(expression="lower(title)"), IndexElement(column="id", descending=True)),
                    where="done_at IS NULL",
                ),
            ),
        ),
        (ColumnAdded(table="tasks", column=Column(name="rank", type="integer", nullable=False), fill="10"),),
        (EnumValueAdded(name="status", value="blocked"),),
        (ColumnAltered.of("authors", "name", collation="RTRIM"),),
    ]
    versions = []
    for events in changesets:
        result = await EventLog(log_store).append(Changeset(stream="app", actor="dev", events=events))
        versions.append(result.last_version)

    async def at(version: int) -> None:
        outcome = await migrate(
            log_store,
            MigrateRequest(url=url, stream="app", actor="t", to=Point(version=version), allow_destructive=True),
        )
        assert outcome.status in ("applied", "up_to_date"), (version, outcome.detail, outcome.drift)
        target = await open_target(url)
        try:
            _, schema = await Projector(log_store).schema("app", Point(version=version))
            assert normalized(await target.introspect()) == normalized(target.expected(schema))
        finally:
            await target.close()

    await at(versions[1])
    sql(
        url,
        "INSERT INTO authors (name) VALUES ('Ada')",
        "INSERT INTO tasks (id, author_id, title) VALUES (1, 1, 'Write')",
    )
    await at(versions[-1])
    assert sql(url, "SELECT id, status, slug, rank FROM tasks") == [(1, "new", "write", 10)]
    assert sql(url, "SELECT name FROM authors") == [("Ada",)]
    live = introspected(url)
    assert live.tables["tasks"].primary_key_name == "tasks_key"
    assert str(live.tables["tasks"].column("status").type) == "varchar(7)"  # type: ignore[union-attr]
    await at(versions[1])
    assert sql(url, "SELECT id, status, slug FROM tasks") == [(1, "new", "write")]
    await at(0)
    assert introspected(url).tables == {}


def sql(url: str, *statements: str) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in run_sql(url, *statements)]


def introspected(url: str) -> Schema:
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return introspect_sqlite(conn)
    finally:
        engine.dispose()


# --------------------------------------------------------------------------- what SQLite keeps only as text


HAND_WRITTEN = (
    "CREATE TABLE parent (id INTEGER NOT NULL PRIMARY KEY, code varchar(10) NOT NULL UNIQUE)",
    "CREATE TABLE child (id INTEGER NOT NULL, parent_id INT NOT NULL REFERENCES parent (id)"
    " DEFERRABLE INITIALLY DEFERRED, code VARCHAR(10) DEFAULT NULL REFERENCES parent (code) ON DELETE CASCADE,"
    " amount DECIMAL(5,2) CHECK (amount >= 0),"
    " at TIMESTAMP, made datetime NOT NULL, flag bool, PRIMARY KEY (id),"
    " UNIQUE (parent_id, code),"
    " CHECK (made IS NOT NULL OR flag))",
)


def test_unnamed_constraints_and_declared_types_round_trip(tmp_path: Path) -> None:
    """A table written by hand with SQLite's unnamed constraints, declared types the DDL writes otherwise and an
    explicit DEFAULT NULL: introspected (names invented by the rule of ddl.py's docstring), built again from
    that schema in an empty file, it reads back the same to schemalog and to SQLAlchemy's Inspector."""
    source, rebuilt = Database(tmp_path / "source.db"), Database(tmp_path / "rebuilt.db")
    source.run(*HAND_WRITTEN)
    live = source.live()
    child = live.tables["child"]
    assert {c.name for c in child.constraints} == {
        "child_parent_id_fkey",
        "child_code_fkey",
        "child_parent_id_code_key",
        "child_amount_check",
        "child_check",
    }
    fk = child.constraint("child_parent_id_fkey")
    assert fk is not None and fk.deferrable and fk.initially_deferred
    assert all(c.anonymous for t in live.tables.values() for c in t.constraints)  # the text names none
    assert {c.name for c in live.tables["parent"].constraints} == {"parent_code_key"}
    types = {c.name: str(c.type) for c in child.columns}
    assert types == {
        "id": "integer",
        "parent_id": "integer",  # INT, as SQLite reads it, where it is not the rowid question
        "code": "varchar(10)",
        "amount": "sqlite:decimal(5,2)",
        "at": "sqlite:timestamp",
        "made": "timestamp",  # DATETIME is what the DDL writes for timestamp
        "flag": "sqlite:bool",
    }
    assert child.column("code").default == "NULL"  # type: ignore[union-attr]
    # as import records them: each check in the table's own text (introspection gives the canonical form)
    with source.engine.connect() as conn:
        texts = sqlite_check_texts(conn, ["child"])
    assert texts == {
        ("child", "child_amount_check"): "amount >= 0",
        ("child", "child_check"): "made IS NOT NULL OR flag",
    }
    checks = {name: text for (_table, name), text in texts.items()}
    constraints = tuple(evolve(c, expression=checks[c.name]) if c.name in checks else c for c in child.constraints)
    live = evolve(live, tables={**live.tables, "child": evolve(child, constraints=constraints)})
    statements = DIALECT.create_script(live)
    assert "CONSTRAINT" not in " ".join(statements)  # every name was the invented one
    rebuilt.run(*statements)
    assert normalized(rebuilt.live()) == normalized(source.live())
    assert differences(DIALECT.normalize(live), rebuilt.live()) == []

    def inspected(db: Database) -> dict[str, Any]:
        insp = sa.inspect(db.engine)
        return {
            t: {
                "columns": [(c["name"], repr(c["type"]), c["default"]) for c in insp.get_columns(t)],
                "fks": [(f["constrained_columns"], f["options"]) for f in insp.get_foreign_keys(t)],
                "uniques": insp.get_unique_constraints(t),
                "checks": insp.get_check_constraints(t),
            }
            for t in ("parent", "child")
        }

    assert inspected(rebuilt) == inspected(source)


def test_a_named_constraint_keeps_its_name_and_a_logged_null_default_is_no_drift(db: Database) -> None:
    """A named constraint is written with its name, even the name the rule would invent (SQLAlchemy's
    ``name="t_a_key"``), and reads back named; an anonymous one is written without; a default "NULL" in
    the log is written DEFAULT NULL and compares equal to what SQLite gives back."""
    db.forward(
        TableCreated(
            table="t",
            columns=(Column(name="id", type="integer", nullable=False), Column(name="a", type="text", default="NULL")),
            primary_key=("id",),
        ),
        ConstraintAdded(table="t", constraint=Constraint(name="t_a_key", kind="unique", columns=("a",))),
        ConstraintAdded(table="t", constraint=Constraint(name="mine", kind="check", expression="a <> ''")),
        ConstraintAdded(
            table="t", constraint=Constraint(name="t_id_check", kind="check", expression="id > 0", anonymous=True)
        ),
    )
    (text,) = db.run("SELECT sql FROM sqlite_master WHERE name = 't'")[0]
    assert "CONSTRAINT mine CHECK" in text and "CONSTRAINT t_a_key UNIQUE" in text and "t_id_check" not in text
    assert "id INTEGER NOT NULL CHECK (id > 0)" in text  # in its column's definition, where the rule puts it
    live = db.live().tables["t"]
    assert {c.name: c.anonymous for c in live.constraints} == {"t_a_key": False, "mine": False, "t_id_check": True}
    uniques = sa.inspect(db.engine).get_unique_constraints("t")
    assert [u["name"] for u in uniques] == ["t_a_key"]  # what Alembic compares a named UniqueConstraint with
    assert "DEFAULT NULL" in text


def test_an_anonymous_constraint_the_rule_would_not_name_back_is_written_named(db: Database) -> None:
    """Two unnamed checks of a table are t_check and t_check1; once t_check is dropped, an unnamed t_check1
    would read back as t_check: it is written CONSTRAINT t_check1 (normalized to not anonymous), and the live
    schema is the log's (db.forward compares after each event). An anonymous one of a name the rule never
    gives (its table was renamed in the log) is written named too."""
    first = Constraint(name="t_check", kind="check", expression="id > 0", anonymous=True)
    second = Constraint(name="t_check1", kind="check", expression="id < 100", anonymous=True)
    undo = db.forward(
        table("t", constraints=(first, second)),
        ConstraintAdded(
            table="t",
            constraint=Constraint(
                name="u_id_fkey",
                kind="foreign_key",
                columns=("id",),
                references=Reference(table="t", columns=("id",)),
                anonymous=True,
            ),
        ),
    )
    (text,) = db.run("SELECT sql FROM sqlite_master WHERE name = 't'")[0]
    assert "CONSTRAINT" not in text.replace("CONSTRAINT u_id_fkey", "")  # both checks unnamed, the key named
    assert {c.name: c.anonymous for c in db.live().tables["t"].constraints} == {
        "t_check": True,
        "t_check1": True,
        "u_id_fkey": False,
    }
    db.forward(ConstraintDropped(table="t", name="t_check"))
    (text,) = db.run("SELECT sql FROM sqlite_master WHERE name = 't'")[0]
    assert "CONSTRAINT t_check1 CHECK" in text
    held = DIALECT.normalize(db.state.to_schema()).tables["t"].constraint("t_check1")
    assert held is not None and not held.anonymous
    db.back(ConstraintAdded(table="t", constraint=first), *undo)
    assert db.live().tables == {}


async def test_renames_keep_anonymous_constraints_as_the_log_has_them(tmp_path: Path) -> None:
    """SQLite invents an anonymous constraint's name from its table's and columns' names: after a rename
    the rule gives another name, so the table is rebuilt with the log's names written out, and the
    database matches the log at every version, forward and back."""
    from events.catalog import ColumnRenamed, TableRenamed
    from events.store import open_store
    from service.reconciler.apply import migrate
    from tests.test_reconciler import append, live_equals_projection, req

    store = await open_store(f"sqlite:///{tmp_path / 'log.db'}")
    await store.init()
    url = f"sqlite:///{tmp_path / 'target.db'}"
    try:
        v1 = await append(
            store,
            TableCreated(
                table="owners",
                columns=(Column(name="id", type="integer", nullable=False),),
                primary_key=("id",),
            ),
            TableCreated(
                table="pets",
                columns=(
                    Column(name="id", type="integer", nullable=False),
                    Column(name="tag", type="varchar(20)"),
                    Column(name="owner", type="integer"),
                ),
                primary_key=("id",),
                constraints=(
                    Constraint(name="pets_tag_key", kind="unique", columns=("tag",), anonymous=True),
                    Constraint(name="pets_tag_check", kind="check", expression="tag <> ''", anonymous=True),
                    Constraint(
                        name="pets_owner_fkey",
                        kind="foreign_key",
                        columns=("owner",),
                        references=Reference(table="owners", columns=("id",)),
                        anonymous=True,
                    ),
                ),
            ),
        )
        v2 = await append(store, TableRenamed(table="pets", new_name="animals"))
        v3 = await append(store, ColumnRenamed(table="animals", column="tag", new_name="label"))
        for version in (v1, v2, v3, v1, v3):
            outcome = await migrate(store, req(url, version))
            assert outcome.status in ("applied", "up_to_date"), outcome.detail
            await live_equals_projection(store, url, version)
    finally:
        await store.close()
