"""Issue 19, next slice: MariaDB's triggers, through every layer, and Sakila's on MariaDB.

Pure, no database: a MariaDB trigger's definition is its statement as SHOW CREATE TRIGGER gives it back, stored
without its ``DEFINER=...``, as ``CREATE OR REPLACE TRIGGER`` with its names quoted, proven one CREATE TRIGGER
of the named trigger on the named table (one statement, or one BEGIN ... END and nothing after its END) before
it is stored and again before it is sent; each event's statements are what the dialect plans (a replacement is
the same CREATE OR REPLACE, a drop DROP TRIGGER IF EXISTS).

Real MariaDB: a trigger changed through the log migrates forward and back with the rows kept, the database
introspecting back to the state each time; a forged definition in the store is refused before any DDL; a
trigger changed by hand is drift, and adopted; Sakila's three triggers are imported, rebuilt in an empty
database, and read back (information_schema.TRIGGERS, SHOW CREATE TRIGGER) as they were.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from events.aggregate import State, apply_event, fold
from events.catalog import Event, TableCreated, TriggerCreated, TriggerDropped, TriggerReplaced, parse_event
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
STORED = "CREATE OR REPLACE TRIGGER `bumped` BEFORE UPDATE ON `people` FOR EACH ROW "
SIMPLE = "SET NEW.changed = OLD.changed + 1"
COMPOUND = "BEGIN\n  IF NEW.name <> OLD.name THEN\n    SET NEW.changed = OLD.changed + {step};\n  END IF;\nEND"
AS_SHOWN = "CREATE DEFINER=`root`@`localhost` TRIGGER `bumped` BEFORE UPDATE ON `people` FOR EACH ROW " + SIMPLE
ON_UPDATE = TriggerCreated(name="bumped", table="people", definitions={"mariadb": AS_SHOWN})
MORE = TriggerReplaced(
    name="bumped",
    table="people",
    definitions={"mysql": "CREATE TRIGGER bumped before update ON people FOR EACH ROW " + COMPOUND.format(step=10)},
)
HISTORY: list[Event] = [PEOPLE, ON_UPDATE, MORE, TriggerDropped(name="bumped", table="people")]
HOSTILE = STORED + SIMPLE + "; DROP TABLE people"


def test_the_stored_form_is_show_create_trigger_without_its_definer() -> None:
    assert ON_UPDATE.definitions == {"mysql": STORED + SIMPLE}  # DEFINER left out, OR REPLACE, names quoted
    assert MORE.definitions == {"mysql": STORED + COMPOUND.format(step=10)}  # the body as written
    case = (
        "CREATE OR REPLACE DEFINER=CURRENT_USER TRIGGER `odd one` AFTER INSERT ON people FOR EACH ROW BEGIN"
        " DECLARE n INT DEFAULT (SELECT CASE WHEN NEW.id > 0 THEN 1 ELSE 0 END);"
        " CASE n WHEN 1 THEN INSERT INTO people (id) VALUES (NEW.id + 1000); ELSE BEGIN END; END CASE;"
        " IF n = 0 THEN SET @x = 'END; DROP TABLE people'; END IF; END"
    )
    stored = check_trigger_definition("odd one", "people", "mysql", case)
    assert (
        stored
        == "CREATE OR REPLACE TRIGGER `odd one` AFTER INSERT ON `people` FOR EACH ROW "
        + case.split("FOR EACH ROW ", 1)[1]
    )
    assert check_trigger_definition("odd one", "people", "mysql", stored) == stored  # the stored form is kept
    schema = fold(HISTORY[:2])
    assert schema.triggers["people.bumped"].definitions == {"mysql": STORED + SIMPLE}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (AS_SHOWN.replace("`bumped`", "`other`"), "makes trigger 'other' on 'people'"),
        (AS_SHOWN.replace("`people`", "`others`"), "makes trigger 'bumped' on 'others'"),
        (AS_SHOWN + "; DROP TABLE people", "a ';' outside a BEGIN"),
        (STORED + COMPOUND.format(step=1) + "; DROP TABLE people", "follows the END"),
        (STORED + COMPOUND.format(step=1) + " lbl", "follows the END"),
        (STORED + COMPOUND.format(step=1).replace("IF NEW", "DROP TABLE people; IF NEW"), "'DROP' where"),
        (STORED + COMPOUND.format(step=1).replace("BEGIN", "BEGIN /*! DROP TABLE people */"), "comment"),
        (STORED + COMPOUND.format(step=1).replace("BEGIN", "BEGIN -- hi\n"), "comment"),
        (STORED + COMPOUND.format(step=1).replace("BEGIN", "BEGIN # hi\n"), "comment"),
        (AS_SHOWN.replace("ON `people`", "ON `db`.`people`"), "schema-qualified"),
        (AS_SHOWN.replace("TRIGGER `bumped`", "TRIGGER `db`.`bumped`"), "schema-qualified"),
        (STORED + COMPOUND.format(step=1).removesuffix("END"), "does not end with the END"),
        (STORED + COMPOUND.format(step=1).replace("END IF;\nEND", "END IF;\nEND CASE"), "END CASE that closes"),
        (STORED + SIMPLE + " BEGIN END", "a BEGIN that does not open the body"),
        (AS_SHOWN.replace("FOR EACH ROW", "FOR EACH ROW FOLLOWS other"), "FOLLOWS / PRECEDES"),
        (AS_SHOWN.replace("SET NEW", "SELECT NEW"), "a body that is not"),
        (AS_SHOWN.replace("BEFORE UPDATE", "INSTEAD OF UPDATE"), "no BEFORE|AFTER"),
        ("DROP TABLE people", "CREATE [OR REPLACE] TRIGGER statement"),
    ],
)
def test_a_definition_that_is_not_one_create_trigger_is_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_event({"type": "trigger_created", "name": "bumped", "table": "people", "definitions": {"mysql": text}})
    with pytest.raises(DefinitionError):
        check_trigger_definition("bumped", "people", "mysql", text)


def test_each_statement_is_planned() -> None:
    dialect = get_dialect("mysql")
    state = State()
    emitted: list[list[str]] = []
    for event in HISTORY:
        before = state.to_schema()
        apply_event(event, state)
        statements = emit(event, dialect, before, state.to_schema())
        for sql in statements:
            check_planned("mysql", sql, event.type)
        emitted.append(statements)
    assert emitted[1] == [STORED + SIMPLE]
    assert emitted[2] == [STORED + COMPOUND.format(step=10)]  # CREATE OR REPLACE: no drop first
    assert emitted[3] == ["DROP TRIGGER IF EXISTS bumped"]
    with pytest.raises(UnsafeStatement, match="not one CREATE TRIGGER"):
        check_planned("mysql", HOSTILE, "trigger_created")
    with pytest.raises(UnsafeStatement, match="not one CREATE TRIGGER"):
        check_planned("mysql", STORED + COMPOUND.format(step=1) + "; DROP TABLE people", "trigger_replaced")
    with pytest.raises(UnsafeStatement, match="outside its literals"):
        check_planned("mysql", "DROP TRIGGER IF EXISTS `bumped`; DROP TABLE people", "trigger_dropped")


# --------------------------------------------------------------------------- real MariaDB


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
    run_sql(url, f"UPDATE people SET name = CONCAT(name, 'x') WHERE id = {key}")
    return int(run_sql(url, f"SELECT changed FROM people WHERE id = {key}")[0][0]) - int(before)


async def test_a_trigger_changed_through_the_log_migrates_forward_and_back(
    log_store: EventStore, mariadb_url: str
) -> None:
    url = mariadb_url
    first = await append(log_store, PEOPLE)
    second = await append(log_store, ON_UPDATE)
    third = await append(log_store, MORE)
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
        (1, "adaxx", 11),
        (2, "boxx", 1),
    ]


async def test_a_forged_trigger_never_reaches_the_database(log_store: EventStore, mariadb_url: str) -> None:
    from tests.forge import forge

    url = mariadb_url
    first = await append(log_store, PEOPLE)
    assert (await migrate(log_store, req(url, first))).status == "applied"
    (version,) = await forge(
        log_store.url,
        "app",
        [{"type": "trigger_created", "name": "bumped", "table": "people", "definitions": {"mysql": HOSTILE}}],
    )
    outcome = await migrate(log_store, req(url))
    assert outcome.status == "refused", (outcome.status, outcome.detail)
    assert outcome.detail is not None and f"v{version} (" in outcome.detail
    assert outcome.statements == []
    assert run_sql(url, "SELECT count(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE()")[0][0] == 0
    assert run_sql(url, "SELECT count(*) FROM people")[0][0] == 0


async def test_a_trigger_changed_by_hand_is_drift_and_adopted(log_store: EventStore, mariadb_url: str) -> None:
    from service.authoring.importer import import_database

    url = mariadb_url
    version = await append(log_store, PEOPLE, ON_UPDATE)
    assert (await migrate(log_store, req(url, version))).status == "applied"
    run_sql(url, AS_SHOWN.replace("CREATE ", "CREATE OR REPLACE ", 1).replace("+ 1", "+ 5"))
    outcome = await migrate(log_store, req(url, version))
    assert outcome.status == "drift", outcome.detail
    assert re.search(r"trigger bumped on people: definition .*\+ 1.* in the log, .*\+ 5.*", "\n".join(outcome.drift))
    result = await import_database(log_store, url, "app")
    assert (result.kind, result.events) == ("drift", 1)
    (recorded,) = (await log_store.read("app"))[version:]
    assert isinstance(recorded.event, TriggerReplaced)
    assert recorded.event.definitions == {"mysql": STORED + SIMPLE.replace("+ 1", "+ 5")}
    assert (await migrate(log_store, req(url, result.last_version))).status == "up_to_date"


MARIADB_TRIGGERS = (
    "SELECT TRIGGER_NAME, EVENT_OBJECT_TABLE, ACTION_TIMING, EVENT_MANIPULATION, ACTION_ORIENTATION,"
    " ACTION_STATEMENT FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE() ORDER BY TRIGGER_NAME"
)


def _shown_triggers(url: str, tables: dict[str, str]) -> dict[str, str]:
    """Each trigger's SHOW CREATE TRIGGER (its SQL Original Statement) in its stored form (DEFINER left out)."""
    out = {}
    for name, table in tables.items():
        (row,) = run_sql(url, f"SHOW CREATE TRIGGER `{name}`")
        out[name] = check_trigger_definition(name, table, "mysql", str(row[2]))
    return out


def test_sakila_triggers_import_and_rebuild_as_they_were(tmp_path: Path) -> None:
    """Sakila as its authors publish it for MySQL, its tables and its three triggers: imported, rebuilt in an
    empty database, and every trigger read back (information_schema.TRIGGERS, SHOW CREATE TRIGGER) equal to
    the original's; the rebuilt ins_film fills film_text."""
    from tests.test_real_schemas import (
        SAKILA,
        _mysql_statements,
        assert_same,
        import_and_rebuild,
        load_sakila,
        source_and_rebuilt,
    )

    with source_and_rebuilt("mysql", tmp_path) as (source, rebuilt):
        load_sakila("mysql", source)
        script = (SAKILA / "mysql-sakila-schema.sql").read_text(encoding="utf-8")
        triggers = [s for s in _mysql_statements(script) if s.upper().startswith("CREATE TRIGGER")]
        assert len(triggers) == 3
        run_sql(source, *triggers)
        original = [tuple(r) for r in run_sql(source, MARIADB_TRIGGERS)]
        assert [r[0] for r in original] == ["del_film", "ins_film", "upd_film"]
        import_and_rebuild(tmp_path, source, rebuilt, "sakila")
        assert [tuple(r) for r in run_sql(rebuilt, MARIADB_TRIGGERS)] == original
        tables = {str(r[0]): str(r[1]) for r in original}
        assert _shown_triggers(rebuilt, tables) == _shown_triggers(source, tables)
        assert_same("mysql", source, rebuilt)
        run_sql(
            rebuilt,
            "INSERT INTO language (language_id, name) VALUES (1, 'English')",
            "INSERT INTO film (film_id, title, language_id) VALUES (7, 'Arrival', 1)",
        )
        assert [tuple(r) for r in run_sql(rebuilt, "SELECT film_id, title FROM film_text")] == [(7, "Arrival")]
