"""Data steps (sql_run): judged at append, run by migrate in the log's order on PostgreSQL, MariaDB and
SQLite, undone going back, and refused (naming the version) where they cannot run."""

from __future__ import annotations

import asyncio
import io
import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from events.catalog import SqlRun, parse_event
from events.datasteps import DataStepError, check_data_statement
from service.cli import main
from service.reconciler.statements import UnsafeStatement, check_planned
from service.reconciler.targets import dialect_of, open_target
from tests.forge import forge
from tests.sqlexec import run_sql
from tests.test_store import dump

ROOT = Path(__file__).resolve().parents[1]
DIALECTS = ("postgresql", "mysql", "sqlite")
BACKFILL = "UPDATE people SET nick = lower(email) WHERE nick IS NULL"
UNDO = "UPDATE people SET nick = NULL"


def cli(args: list[str], capsys: pytest.CaptureFixture[str], stdin: str | None = None) -> tuple[int, str, str]:
    old = sys.stdin
    if stdin is not None:
        sys.stdin = io.StringIO(stdin)
    try:
        code = main(args)
    finally:
        sys.stdin = old
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def changeset(*events: dict[str, Any]) -> str:
    return json.dumps({"stream": "app", "actor": "dev", "events": list(events)})


def sql_run(
    forward: dict[str, list[str]] | None = None,
    backward: dict[str, list[str]] | None = None,
    **more: Any,
) -> dict[str, Any]:
    return {
        "type": "sql_run",
        "forward": forward if forward is not None else {d: [BACKFILL] for d in DIALECTS},
        "backward": backward,
        **more,
    }


PEOPLE = {
    "type": "table_created",
    "table": "people",
    "columns": [
        {"name": "id", "type": "integer", "nullable": False},
        {"name": "email", "type": "varchar(100)", "nullable": False},
        {"name": "nick", "type": "varchar(100)"},
    ],
    "primary_key": ["id"],
}


@pytest.fixture
def log_url(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    url = f"sqlite:///{tmp_path / 'log.db'}"
    assert cli(["--store", url, "init"], capsys)[0] == 0
    return url


def append(log_url: str, capsys: pytest.CaptureFixture[str], *events: dict[str, Any]) -> None:
    code, _out, err = cli(["--store", log_url, "append", "-"], capsys, changeset(*events))
    assert code == 0, err


def migrate(log_url: str, url: str, capsys: pytest.CaptureFixture[str], *more: str) -> tuple[int, str, str]:
    return cli(["--store", log_url, "migrate", "--url", url, "--stream", "app", *more], capsys)


def nicks(url: str) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in run_sql(url, "SELECT id, nick FROM people ORDER BY id")]


def marker_version(url: str) -> int | None:
    async def read() -> int | None:
        target = await open_target(url)
        try:
            marker = await target.read_marker("app")
            return marker.version if marker is not None else None
        finally:
            await target.close()

    return asyncio.run(read())


def people_with_rows(log_url: str, url: str, capsys: pytest.CaptureFixture[str]) -> None:
    """v1: the table, migrated; two rows in it."""
    append(log_url, capsys, PEOPLE)
    assert migrate(log_url, url, capsys)[0] == 0
    run_sql(url, "INSERT INTO people (id, email) VALUES (1, 'Ann@Example.org'), (2, 'BOB@example.org')")


# --------------------------------------------------------------------------- forward, back, on every dialect


def test_a_backfill_runs_forward_and_its_backward_runs_going_back(
    log_url: str, target_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    people_with_rows(log_url, target_url, capsys)
    append(log_url, capsys, sql_run(backward={d: [UNDO] for d in DIALECTS}, description="nicks from emails"))

    code, out, err = migrate(log_url, target_url, capsys, "--plan")
    assert code == 0, err
    assert "-- v2 sql_run" in out and BACKFILL + ";" in out, out
    assert nicks(target_url) == [(1, None), (2, None)]  # a plan runs nothing

    code, _out, err = migrate(log_url, target_url, capsys)
    assert code == 0, err
    assert nicks(target_url) == [(1, "ann@example.org"), (2, "bob@example.org")]
    assert marker_version(target_url) == 2

    code, out, err = migrate(log_url, target_url, capsys, "--to", "1", "--plan")
    assert code == 0, err
    assert "-- undo v2 sql_run" in out and UNDO + ";" in out, out
    code, out, err = migrate(log_url, target_url, capsys, "--to", "1")
    assert code == 0, err
    assert nicks(target_url) == [(1, None), (2, None)]
    assert marker_version(target_url) == 1


def test_steps_run_in_the_logs_order_between_schema_changes(
    log_url: str, target_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A column added, filled by a data step, then made NOT NULL: each only works after the one before."""
    people_with_rows(log_url, target_url, capsys)
    append(
        log_url,
        capsys,
        {"type": "column_added", "table": "people", "column": {"name": "handle", "type": "varchar(100)"}},
        sql_run({d: ["UPDATE people SET handle = upper(email)"] for d in DIALECTS}, backward={}),
        {"type": "column_altered", "table": "people", "column": "handle", "nullable": False},
    )
    code, _out, err = migrate(log_url, target_url, capsys)
    assert code == 0, err
    rows = run_sql(target_url, "SELECT handle FROM people ORDER BY id")
    assert [r[0] for r in rows] == ["ANN@EXAMPLE.ORG", "BOB@EXAMPLE.ORG"]
    # backward {}: nothing to undo; the column's own undo drops it
    code, _out, err = migrate(log_url, target_url, capsys, "--to", "1", "--allow-destructive")
    assert code == 0, err
    assert nicks(target_url) == [(1, None), (2, None)]


def test_a_dialect_without_sql_is_refused_before_anything_runs(
    log_url: str, target_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    dialect = dialect_of(target_url)
    people_with_rows(log_url, target_url, capsys)
    others = [d for d in DIALECTS if d != dialect]
    append(
        log_url,
        capsys,
        {"type": "column_added", "table": "people", "column": {"name": "extra", "type": "integer"}},
        sql_run({d: [BACKFILL] for d in others}, backward={d: [] for d in DIALECTS}),
    )
    for more in ([], ["--plan"]):
        code, out, err = migrate(log_url, target_url, capsys, *more)
        lines = err.strip().splitlines()
        assert code == 2, (more, out, err)
        assert len(lines) == 1 and "refused" in lines[0] and "v3 (sql_run)" in lines[0], lines
        assert f"no SQL for {dialect}" in lines[0], lines
    # nothing ran: not even the column of v2, which comes before it
    assert marker_version(target_url) == 1
    assert nicks(target_url) == [(1, None), (2, None)]
    assert "extra" not in column_names(target_url)

    code, out, err = cli(["--store", log_url, "sqlmigrate", "--dialect", dialect], capsys)
    assert code == 2 and "v3 (sql_run)" in err and len(err.strip().splitlines()) == 1, err


def test_going_back_past_an_irreversible_step_is_refused_naming_it(
    log_url: str, target_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    people_with_rows(log_url, target_url, capsys)
    append(log_url, capsys, sql_run(description="nicks from emails"))  # backward null: irreversible
    append(log_url, capsys, {"type": "column_added", "table": "people", "column": {"name": "x", "type": "integer"}})
    assert migrate(log_url, target_url, capsys)[0] == 0
    assert marker_version(target_url) == 3

    for more in (["--to", "1"], ["--to", "1", "--plan"], ["--to", "0", "--allow-destructive"]):
        code, out, err = migrate(log_url, target_url, capsys, *more)
        lines = err.strip().splitlines()
        assert code == 2, (more, out, err)
        assert len(lines) == 1 and "undo v2 (sql_run)" in lines[0] and "cannot be undone" in lines[0], lines
    # nothing was undone, not even v3 (which could be)
    assert marker_version(target_url) == 3
    assert "x" in column_names(target_url)
    assert nicks(target_url) == [(1, "ann@example.org"), (2, "bob@example.org")]

    # back to the step itself is allowed: only what comes before it is out of reach
    code, out, err = migrate(log_url, target_url, capsys, "--to", "2", "--allow-destructive")
    assert code == 0, err
    assert marker_version(target_url) == 2

    code, out, err = cli(["--store", log_url, "revert", "2"], capsys)
    assert code == 2 and "undo v2 (sql_run)" in err and len(err.strip().splitlines()) == 1, err


def column_names(url: str, table: str = "people") -> set[str]:
    if url.startswith("sqlite"):
        return {str(r[1]) for r in run_sql(url, "SELECT * FROM pragma_table_info(:t)", params={"t": table})}
    query = "SELECT column_name FROM information_schema.columns WHERE table_name = :t"
    if url.startswith("mysql"):
        query += " AND table_schema = DATABASE()"
    return {str(r[0]) for r in run_sql(url, query, params={"t": table})}


# --------------------------------------------------------------------------- refused at append


BAD_STATEMENTS = [
    ("two statements", f"{BACKFILL}; DROP TABLE people", "';'"),
    ("a trailing semicolon", f"{BACKFILL};", "';'"),
    ("DDL", "DROP TABLE people", "INSERT, UPDATE or DELETE"),
    ("a select", "SELECT * FROM people", "INSERT, UPDATE or DELETE"),
    ("a line comment hiding the WHERE", "DELETE FROM people -- WHERE id = 1", "comment"),
    ("a block comment", "UPDATE people SET nick = 'x' /* WHERE id = 1 */", "comment"),
    ("MySQL's executable comment", "UPDATE people SET nick = 'x' /*! , email = 'y' */", "comment"),
    ("schemalog's marker", "DELETE FROM schemalog_marker", "schemalog_marker"),
    ("schemalog's events, any case", "UPDATE SchemaLog_Events SET actor = 'x'", "SchemaLog_Events"),
    ("a system catalogue", "INSERT INTO people (id, email) SELECT 1, rolname FROM pg_authid", "pg_authid"),
    ("MySQL's users", "INSERT INTO people (id, email) SELECT 1, user FROM mysql.user", "mysql.user"),
    ("a function with side effects", "UPDATE people SET nick = pg_sleep(1)", "pg_sleep"),
    ("a file read", "UPDATE people SET nick = load_file('/etc/passwd')", "load_file"),
    (
        "a data-modifying CTE",
        "INSERT INTO people WITH d AS (DELETE FROM people RETURNING *) SELECT * FROM d",
        "statement",
    ),
    ("a parameter", "UPDATE people SET nick = $1", "parameter"),
    ("empty", "  ", "empty"),
]


@pytest.mark.parametrize(("name", "sql", "named"), BAD_STATEMENTS, ids=[b[0] for b in BAD_STATEMENTS])
def test_bad_statements_are_refused_at_append_in_one_line(
    log_url: str, name: str, sql: str, named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    append(log_url, capsys, PEOPLE)
    before = dump(log_url)
    for dialect in DIALECTS:
        text = changeset(sql_run({dialect: [sql]}))
        code, out, err = cli(["--store", log_url, "append", "-"], capsys, text)
        lines = err.strip().splitlines()
        assert code == 2, (dialect, out, err)
        assert len(lines) == 1 and lines[0].startswith("schemalog: error:"), (dialect, err)
        assert f"forward.{dialect}[0]" in lines[0] and named in lines[0], (dialect, lines[0])
        assert dump(log_url) == before


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"forward": {}}, "forward gives no dialect"),
        ({"forward": {"oracle": [BACKFILL]}}, "unknown dialect 'oracle'"),
        ({"forward": {"mysql": [BACKFILL], "mariadb": [BACKFILL]}}, "given twice"),
        ({"forward": {"sqlite": [BACKFILL] * 101}}, "the limit is 100"),
        ({"forward": {"sqlite": ["UPDATE people SET nick = '" + "x" * 100_000 + "'"]}}, "the limit is 100000"),
        ({"forward": {"sqlite": [BACKFILL]}, "backward": {"sqlite": ["DROP TABLE people"]}}, "backward.sqlite[0]"),
    ],
    ids=["no dialect", "unknown dialect", "a dialect twice", "too many", "too long", "a bad backward"],
)
def test_bad_steps_are_refused_at_append(
    log_url: str, fields: dict[str, Any], named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    append(log_url, capsys, PEOPLE)
    before = dump(log_url)
    code, _out, err = cli(["--store", log_url, "append", "-"], capsys, changeset({"type": "sql_run", **fields}))
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and named in lines[0], err
    assert dump(log_url) == before


def test_dialect_aliases_are_stored_under_the_reconcilers_names() -> None:
    event = parse_event({"type": "sql_run", "forward": {"postgres": [BACKFILL], "MariaDB": [BACKFILL]}})
    assert isinstance(event, SqlRun)
    assert sorted(event.forward) == ["mysql", "postgresql"]
    assert event.backward is None


def test_good_statements_pass_on_every_dialect() -> None:
    good = [
        BACKFILL,
        "insert into people (id, email) values (3, 'a; -- b'), (4, 'c')",
        "DELETE FROM people WHERE id IN (SELECT id FROM people WHERE email LIKE '%@old.example')",
        "UPDATE people SET nick = CASE WHEN id > 1 THEN coalesce(nick, 'x') ELSE CAST(id AS CHAR(10)) END",
        "INSERT INTO people (id, email) SELECT max(id) + 1, 'new@example.org' FROM people",
    ]
    for sql in good:
        for dialect in DIALECTS:
            kind = check_data_statement(sql, dialect)
            assert kind == sql.split()[0].lower(), (sql, dialect)
            assert check_planned(dialect, sql, "sql_run") == f"data_{kind}"


def test_the_reconciler_judges_the_text_again_whatever_the_store_holds() -> None:
    """A stored event is not judged again as it is read (its meaning is kept), but migrate's check is."""
    forged = {"type": "sql_run", "forward": {"sqlite": ["DELETE FROM people; DROP TABLE people"]}}
    event = parse_event(forged, stored=True)
    assert isinstance(event, SqlRun)
    with pytest.raises(ValueError):
        parse_event(forged)
    for sql, event_type in [
        ("DELETE FROM people; DROP TABLE people", "sql_run"),
        ("DROP TABLE people", "sql_run"),
        ("INSERT INTO people SELECT * FROM schemalog_marker", "sql_run"),
        ("UPDATE people SET nick = NULL", "table_created"),  # a data statement is only a data step's
    ]:
        for dialect in DIALECTS:
            with pytest.raises(UnsafeStatement):
                check_planned(dialect, sql, event_type)
    with pytest.raises(DataStepError):
        check_data_statement("UPDATE people SET nick = NULL", "oracle")


def test_a_forged_step_is_refused_by_migrate_and_nothing_runs(
    log_url: str, target_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    people_with_rows(log_url, target_url, capsys)
    hostile = "DELETE FROM people WHERE id = 1; DROP TABLE people"
    asyncio.run(forge(log_url, "app", [{"type": "sql_run", "forward": {d: [hostile] for d in DIALECTS}}]))
    code, _out, err = migrate(log_url, target_url, capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "v2 (sql_run)" in lines[0], err
    assert nicks(target_url) == [(1, None), (2, None)]
    assert marker_version(target_url) == 1


# --------------------------------------------------------------------------- the README's example, as written


def readme_example() -> str:
    """The README's sql_run changeset: the one JSON block of it that holds a data step."""
    blocks = re.findall(r"```json\n(.*?)```", (ROOT / "README.md").read_text(encoding="utf-8"), re.DOTALL)
    (block,) = [b for b in blocks if '"sql_run"' in b]
    return str(block)


def test_the_readmes_example_runs_as_written(log_url: str, target_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _out, err = cli(["--store", log_url, "append", str(ROOT / "examples" / "first-changeset.json")], capsys)
    assert code == 0, err
    assert migrate(log_url, target_url, capsys)[0] == 0
    run_sql(target_url, "INSERT INTO users (id, email) VALUES (1, 'Ann@Example.org'), (2, 'bob@example.org')")
    code, _out, err = cli(["--store", log_url, "append", "-"], capsys, readme_example())
    assert code == 0, err
    code, _out, err = migrate(log_url, target_url, capsys)
    assert code == 0, err
    rows = run_sql(target_url, "SELECT id, display_name FROM users ORDER BY id")
    assert [tuple(r) for r in rows] == [(1, "ann@example.org"), (2, "bob@example.org")]
    code, _out, err = migrate(log_url, target_url, capsys, "--to", "2", "--allow-destructive")
    assert code == 0, err
    assert [tuple(r) for r in run_sql(target_url, "SELECT id, email FROM users ORDER BY id")] == [
        (1, "Ann@Example.org"),
        (2, "bob@example.org"),
    ]


# --------------------------------------------------------------------------- undoing what the log now refuses


@pytest.mark.parametrize(
    ("created", "named"),
    [
        (
            {
                "type": "table_created",
                "table": "t",
                "columns": [{"name": "id", "type": "integer", "default": "pg_sleep(1)"}],
            },
            "pg_sleep",
        ),
        (
            {"type": "table_created", "table": "schemalog_old", "columns": [{"name": "id", "type": "integer"}]},
            "schemalog_",
        ),
    ],
    ids=["a default", "a name"],
)
def test_undoing_what_would_make_again_what_the_log_now_refuses_names_the_version(
    log_url: str, created: dict[str, Any], named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Recorded when the rules allowed it (forged here), dropped later: a plan back to it and a revert of the
    drop are refused, in one line naming the version of the drop, and nothing is written."""
    asyncio.run(forge(log_url, "app", [created]))
    asyncio.run(forge(log_url, "app", [{"type": "table_dropped", "table": created["table"]}]))
    before = dump(log_url)
    for args in (["sqlmigrate", "--dialect", "sqlite", "--from", "2", "--to", "1"], ["revert", "2"]):
        code, out, err = cli(["--store", log_url, *args], capsys)
        lines = err.strip().splitlines()
        assert code == 2, (args, out, err)
        assert len(lines) == 1 and "undo v2 (" in lines[0] and named in lines[0], (args, lines)
    assert dump(log_url) == before
