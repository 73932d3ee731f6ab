"""Issue 19, next slice: SQLite's triggers, through every layer, and Sakila's on SQLite.

Pure, no database: a SQLite trigger's definition is its CREATE TRIGGER statement as sqlite_master keeps it,
proven one CREATE TRIGGER of the named trigger on the named table (its body's statements and nothing
after the END) before it is stored and again before it is sent; each event's statements are what the
dialect plans (a replacement drops and makes again; a rebuild of the table makes its triggers again).

Real SQLite: a trigger changed through the log migrates forward and back with the rows kept, through a
table rebuild, the database introspecting back to the state each time; a forged definition in the store
is refused before any DDL; a trigger changed by hand is drift, and adopted; Sakila's 30 triggers are
imported, rebuilt in an empty database, and read back from sqlite_master as they were.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from events.aggregate import State, apply_event, fold
from events.catalog import (
    ColumnAdded,
    ColumnAltered,
    Event,
    TableCreated,
    TriggerCreated,
    TriggerDropped,
    TriggerReplaced,
    parse_event,
)
from events.model import Column
from events.objects import DefinitionError, check_trigger_definition
from events.store import EventStore
from projections.schema import Point, Projector
from service.reconciler.apply import migrate
from service.reconciler.ddl import emit
from service.reconciler.dialects import get_dialect
from service.reconciler.normalize import differences
from service.reconciler.statements import UnsafeStatement, check_planned
from service.reconciler.targets import open_target
from tests.sqlexec import run_sql
from tests.test_reconciler import append, req

PEOPLE = TableCreated(
    table="people",
    columns=(
        Column(name="id", type="integer", nullable=False),
        Column(name="name", type="text"),
        Column(name="changed", type="integer", nullable=False, default="0"),
    ),
    primary_key=("id",),
)
BUMP = (
    "CREATE TRIGGER bumped AFTER UPDATE OF name ON people\nBEGIN\n"
    "  UPDATE people SET changed = changed + {step} WHERE id = new.id;\nEND"
)
ON_UPDATE = TriggerCreated(name="bumped", table="people", definitions={"sqlite": BUMP.format(step=1)})
MORE = TriggerReplaced(name="bumped", table="people", definitions={"sqlite": BUMP.format(step=10) + ";"})
NOTE = ColumnAdded(table="people", column=Column(name="note", type="text"))
WIDER = ColumnAltered(table="people", column="name", nullable=False, fill="'nobody'")
HISTORY: list[Event] = [PEOPLE, ON_UPDATE, MORE, NOTE, WIDER, TriggerDropped(name="bumped", table="people")]


def test_the_stored_form_is_the_statement_as_sqlite_keeps_it() -> None:
    assert MORE.definitions == {"sqlite": BUMP.format(step=10)}  # the trailing ';' left out, nothing made of it
    case = (
        'CREATE TRIGGER IF NOT EXISTS "odd one" BEFORE INSERT ON [people] FOR EACH ROW WHEN new.id > 0 BEGIN'
        " SELECT CASE WHEN new.name IS NULL THEN RAISE(ABORT, 'no name; END') END;"
        " INSERT INTO people (id) SELECT 0 WHERE 0; END"
    )
    assert check_trigger_definition("odd one", "people", "sqlite", case) == case
    schema = fold(HISTORY[:2])
    assert schema.triggers["people.bumped"].definitions == {"sqlite": BUMP.format(step=1)}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (BUMP.format(step=1).replace("bumped", "other", 1), "makes trigger 'other' on 'people'"),
        (BUMP.format(step=1).replace("ON people", "ON others"), "makes trigger 'bumped' on 'others'"),
        (BUMP.format(step=1) + "; DROP TABLE people", "follows the END"),
        (BUMP.format(step=1) + "; CREATE TRIGGER x AFTER INSERT ON people BEGIN SELECT 1; END", "follows the END"),
        (BUMP.format(step=1).replace("UPDATE people SET", "DROP TABLE people; UPDATE people SET"), "not SELECT"),
        (BUMP.format(step=1).replace("CREATE TRIGGER", "CREATE TEMP TRIGGER"), "not TEMP"),
        (BUMP.format(step=1).replace("BEGIN", "BEGIN -- hi\n"), "comment"),
        (BUMP.format(step=1).replace("BEGIN", "BEGIN /* hi */"), "comment"),
        (BUMP.format(step=1).replace("ON people", "ON main.people"), "schema-qualified"),
        (BUMP.format(step=1).replace("CREATE TRIGGER bumped", "CREATE TRIGGER main.bumped"), "schema-qualified"),
        (BUMP.format(step=1).replace("AFTER UPDATE", "AFTER UPDATE; SELECT 1;"), "outside the statements"),
        (BUMP.format(step=1).replace(";\nEND", "\nEND"), "END before the statement"),
        (BUMP.format(step=1).replace("WHERE id", "WHERE BEGIN id"), "where a trigger holds none"),
        (BUMP.format(step=1).replace("UPDATE people", "BEGIN UPDATE people"), "not SELECT"),
        (BUMP.format(step=1).removesuffix("END"), "does not end with END"),
        ("DROP TABLE people", "CREATE TRIGGER statement"),
    ],
)
def test_a_definition_that_is_not_one_create_trigger_is_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_event({"type": "trigger_created", "name": "bumped", "table": "people", "definitions": {"sqlite": text}})
    with pytest.raises(DefinitionError):
        check_trigger_definition("bumped", "people", "sqlite", text)


def test_each_statement_is_planned_and_a_rebuild_makes_the_triggers_again() -> None:
    dialect = get_dialect("sqlite")
    state = State()
    emitted: list[list[str]] = []
    for event in HISTORY:
        before = state.to_schema()
        apply_event(event, state)
        statements = emit(event, dialect, before, state.to_schema())
        for sql in statements:
            check_planned("sqlite", sql, event.type)
        emitted.append(statements)
    assert emitted[1] == [BUMP.format(step=1)]
    assert emitted[2] == ["DROP TRIGGER IF EXISTS bumped", BUMP.format(step=10)]
    assert emitted[3] == ["ALTER TABLE people ADD COLUMN note TEXT"]  # no rebuild: the trigger stays
    assert any(sql.startswith("CREATE TABLE _schemalog_rebuild") for sql in emitted[4])  # a rebuild ...
    assert emitted[4][-1] == BUMP.format(step=10)  # ... makes the table's trigger again, last
    assert emitted[5] == ["DROP TRIGGER IF EXISTS bumped"]
    hostile = BUMP.format(step=1) + "; DROP TABLE people"
    with pytest.raises(UnsafeStatement, match="not one CREATE TRIGGER"):
        check_planned("sqlite", hostile, "trigger_created")
    with pytest.raises(UnsafeStatement, match="not what trigger_created emits"):
        check_planned("sqlite", "DROP TABLE people", "trigger_created")


# --------------------------------------------------------------------------- real SQLite


async def _state_is_live(store: EventStore, url: str, version: int) -> None:
    target = await open_target(url)
    try:
        _, schema = await Projector(store).schema("app", Point(version=version))
        want = target.expected(schema)
        assert differences(want, await target.introspect(want)) == []
        assert differences(want, await target.introspect()) == []
    finally:
        await target.close()


def _changed(url: str, key: int) -> int:
    before = run_sql(url, f"SELECT changed FROM people WHERE id = {key}")[0][0]
    run_sql(url, f"UPDATE people SET name = name || '' WHERE id = {key}")
    return int(run_sql(url, f"SELECT changed FROM people WHERE id = {key}")[0][0]) - int(before)


async def test_a_trigger_changed_through_the_log_migrates_forward_and_back(
    log_store: EventStore, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'target.db'}"
    first = await append(log_store, PEOPLE)
    second = await append(log_store, ON_UPDATE)
    third = await append(log_store, MORE, WIDER)  # the rebuild for the wider column makes the trigger again
    assert (await migrate(log_store, req(url, first))).status == "applied"
    run_sql(url, "INSERT INTO people (id, name) VALUES (1, 'ada'), (2, 'bo')")
    for version, step in ((second, 1), (third, 10)):
        outcome = await migrate(log_store, req(url, version))
        assert outcome.status == "applied", (outcome.detail, outcome.drift)
        await _state_is_live(log_store, url, version)
        assert _changed(url, 1) == step
    for version, step in ((second, 1), (first, 0)):
        outcome = await migrate(log_store, req(url, version))
        assert outcome.status == "applied", (outcome.detail, outcome.drift)
        await _state_is_live(log_store, url, version)
        assert _changed(url, 2) == step
    assert [tuple(r) for r in run_sql(url, "SELECT id, name, changed FROM people ORDER BY id")] == [
        (1, "ada", 11),
        (2, "bo", 1),
    ]


async def test_a_forged_trigger_never_reaches_the_database(log_store: EventStore, tmp_path: Path) -> None:
    from tests.forge import forge

    url = f"sqlite:///{tmp_path / 'target.db'}"
    first = await append(log_store, PEOPLE)
    assert (await migrate(log_store, req(url, first))).status == "applied"
    hostile = BUMP.format(step=1) + "; DROP TABLE people"
    (version,) = await forge(
        log_store.url,
        "app",
        [{"type": "trigger_created", "name": "bumped", "table": "people", "definitions": {"sqlite": hostile}}],
    )
    outcome = await migrate(log_store, req(url))
    assert outcome.status == "refused", (outcome.status, outcome.detail)
    assert outcome.detail is not None and f"v{version} (" in outcome.detail
    assert outcome.statements == []
    assert run_sql(url, "SELECT count(*) FROM people")[0][0] == 0


async def test_a_trigger_changed_by_hand_is_drift_and_adopted(log_store: EventStore, tmp_path: Path) -> None:
    from service.authoring.importer import import_database

    url = f"sqlite:///{tmp_path / 'target.db'}"
    version = await append(log_store, PEOPLE, ON_UPDATE)
    assert (await migrate(log_store, req(url, version))).status == "applied"
    run_sql(url, "DROP TRIGGER bumped")
    run_sql(url, BUMP.format(step=5))
    outcome = await migrate(log_store, req(url, version))
    assert outcome.status == "drift", outcome.detail
    assert re.search(r"trigger bumped on people: definition .*\+ 1 .* in the log, .*\+ 5 .*", "\n".join(outcome.drift))
    result = await import_database(log_store, url, "app")
    assert (result.kind, result.events) == ("drift", 1)
    (recorded,) = (await log_store.read("app"))[version:]
    assert isinstance(recorded.event, TriggerReplaced)
    assert recorded.event.definitions == {"sqlite": BUMP.format(step=5)}
    assert (await migrate(log_store, req(url, result.last_version))).status == "up_to_date"


SAKILA_TRIGGERS = "SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'trigger' ORDER BY name"


def test_sakila_triggers_import_and_rebuild_as_they_were(tmp_path: Path) -> None:
    """Sakila as its authors publish it for SQLite, triggers and all: imported, rebuilt in an empty
    database, and every trigger read back from sqlite_master equal to the original's."""
    import sqlite3

    from tests.test_real_schemas import SAKILA, _sqlite_statements, assert_same, import_and_rebuild

    source, rebuilt = f"sqlite:///{tmp_path / 'source.db'}", f"sqlite:///{tmp_path / 'rebuilt.db'}"
    conn = sqlite3.connect(tmp_path / "source.db")
    try:
        for statement in _sqlite_statements((SAKILA / "sqlite-sakila-schema.sql").read_text(encoding="utf-8")):
            conn.execute(statement)
        conn.commit()
    finally:
        conn.close()
    original = [tuple(r) for r in run_sql(source, SAKILA_TRIGGERS)]
    assert len(original) == 30
    import_and_rebuild(tmp_path, source, rebuilt, "sakila")
    assert [tuple(r) for r in run_sql(rebuilt, SAKILA_TRIGGERS)] == original
    assert_same("sqlite", source, rebuilt)
    run_sql(rebuilt, "INSERT INTO language (language_id, name, last_update) VALUES (1, 'English', '2000-01-01')")
    assert run_sql(rebuilt, "SELECT last_update FROM language")[0][0] != "2000-01-01"  # the trigger ran
