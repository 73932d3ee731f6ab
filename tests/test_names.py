"""The name policy (README, "Names"), on the real servers.

What no dialect can hold is refused at append (tests/test_cli_input.py); what the target's dialect
cannot hold is refused by ``migrate --plan`` and ``migrate`` before any DDL, naming the object; every
name the log accepts is read back exactly by each dialect's introspection.
"""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path
from typing import Any

import pytest

from events.model import ColumnType, Schema, parse_type
from projections.schema import Point, Projector, normalized
from service.cli import main
from service.reconciler.dialects import get_dialect
from service.reconciler.targets import open_target
from tests.test_store import dump

LONG = "é" * 31 + "x"  # 63 bytes: PostgreSQL's limit
assert len(LONG.encode()) == 63
LONGER = "é" * 32  # 64 bytes: MariaDB's limit, the log's (Django's long foreign key names); PostgreSQL refuses it
assert len(LONGER.encode()) == 64

# Unusual but legal everywhere: non-ASCII, quotes of every kind, spaces inside, SQL punctuation, printf and
# LIKE patterns, a backtick, a backslash, the longest name PostgreSQL keeps.
ODD_TABLE = "%s"
ODD_COLUMNS = [
    "prénom",
    "名前",
    'it\'s "quoted"',
    "first name",
    "%s",
    "100%",
    "a`b",
    "back\\slash",
    "semi;colon -- x",
    "$1",
    "[bracket]",
    "Ärger ø",
    LONG,
]
OTHER_TABLE = "Tåble ünï %d `x`"


def unusual_changeset() -> dict[str, Any]:
    columns = [{"name": "id", "type": "bigint", "nullable": False}]
    columns += [{"name": name, "type": "varchar(40)"} for name in ODD_COLUMNS]
    return {
        "stream": "names",
        "actor": "tester",
        "events": [
            {
                "type": "table_created",
                "table": ODD_TABLE,
                "columns": columns,
                "primary_key": ["id"],
                "indexes": [{"name": "index %s `é` 'q'", "columns": ["prénom", "a`b"]}],
                "constraints": [{"name": 'uq "名前"', "kind": "unique", "columns": ["名前"]}],
            },
            {
                "type": "table_created",
                "table": OTHER_TABLE,
                "columns": [
                    {"name": LONG, "type": "bigint", "nullable": False},
                    {"name": "ref `%s`", "type": "bigint"},
                ],
                "primary_key": [LONG],
            },
            {
                "type": "constraint_added",
                "table": OTHER_TABLE,
                "constraint": {
                    "name": "fk `%` é",
                    "kind": "foreign_key",
                    "columns": ["ref `%s`"],
                    "references": {"table": ODD_TABLE, "columns": ["id"]},
                },
            },
            {"type": "table_created", "table": LONG, "columns": [{"name": "x", "type": "text"}]},
        ],
    }


def cli(capsys: pytest.CaptureFixture[str], *args: str, stdin: str | None = None) -> tuple[int, str, str]:
    if stdin is not None:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr("sys.stdin", io.StringIO(stdin))
            code = main(list(args))
    else:
        code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def log(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    url = f"sqlite:///{tmp_path / 'log.db'}"
    assert cli(capsys, "--store", url, "init")[0] == 0
    return url


def append(capsys: pytest.CaptureFixture[str], log: str, changeset: dict[str, Any]) -> None:
    code, out, err = cli(capsys, "--store", log, "append", "-", stdin=json.dumps(changeset))
    assert code == 0, (out, err)


async def live_schema(log: str, target_url: str, stream: str) -> tuple[Schema, Schema]:
    """(the database as introspected, the log's head as this target holds it)."""
    from events.store import open_store

    store = await open_store(log)
    target = await open_target(target_url)
    try:
        _, schema = await Projector(store).schema(stream, Point())
        return await target.introspect(), target.expected(schema)
    finally:
        await target.close()
        await store.close()


def test_unusual_names_read_back_exactly(log: str, target_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    append(capsys, log, unusual_changeset())
    code, out, err = cli(capsys, "--store", log, "migrate", "--url", target_url, "--stream", "names")
    assert code == 0, (out, err)  # the run's own check: the database introspects as the log's head
    live, want = asyncio.run(live_schema(log, target_url, "names"))
    assert normalized(live) == normalized(want)
    assert set(live.tables) == {ODD_TABLE, OTHER_TABLE, LONG}
    assert [c.name for c in live.tables[ODD_TABLE].columns] == ["id", *ODD_COLUMNS]
    keys = {i.name for i in live.tables[ODD_TABLE].indexes} | {c.name for c in live.tables[ODD_TABLE].constraints}
    assert {"index %s `é` 'q'", 'uq "名前"'} <= keys
    (fk,) = [c for c in live.tables[OTHER_TABLE].constraints if c.kind == "foreign_key"]
    assert (fk.name, fk.columns, fk.references.table if fk.references else None) == ("fk `%` é", ("ref `%s`",), "%s")
    assert live.tables[OTHER_TABLE].primary_key == (LONG,)
    # and back to nothing, through every name again
    migrate = ["--store", log, "migrate", "--url", target_url, "--stream", "names"]
    code, out, err = cli(capsys, *migrate, "--to", "0", "--allow-destructive")
    assert code == 0, (out, err)
    assert asyncio.run(live_schema(log, target_url, "names"))[0].tables == {}


def test_native_type_keeps_its_quoted_case(log: str, mariadb_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    """``mysql:enum('Active','b')`` is stored, created and read back as written (it was lower-cased)."""
    kind = "mysql:ENUM( 'Active' , 'b''c' )"
    append(
        capsys,
        log,
        {
            "stream": "enum",
            "events": [{"type": "table_created", "table": "t", "columns": [{"name": "state", "type": kind}]}],
        },
    )
    code, out, _ = cli(capsys, "--store", log, "show", "--stream", "enum", "--format", "json")
    assert json.loads(out)["tables"]["t"]["columns"][0]["type"] == "mysql:enum('Active','b''c')"
    code, out, _ = cli(capsys, "--store", log, "show", "--stream", "enum", "--format", "sql", "--dialect", "mysql")
    assert "ENUM('Active','b''c')" in out
    code, out, err = cli(capsys, "--store", log, "migrate", "--url", mariadb_url, "--stream", "enum")
    assert code == 0, (out, err)
    live, want = asyncio.run(live_schema(log, mariadb_url, "enum"))
    assert normalized(live) == normalized(want)
    assert str(live.tables["t"].columns[0].type) == "mysql:enum('Active','b''c')"


def test_a_type_built_in_code_obeys_the_grammar() -> None:
    for fields in (
        {"name": "foo"},
        {"name": "varchar", "params": (-5,)},
        {"name": "varchar", "params": (10**20,)},
        {"name": "text", "params": (1, 2, 3)},
        {"name": "integer", "dialect": "oracle"},
        {"name": "enum(a); drop table x", "dialect": "mysql"},
        {"name": "ENUM('A')", "dialect": "mysql"},  # not canonical: words are lower-case
    ):
        with pytest.raises(ValueError):
            ColumnType(**fields)
    assert ColumnType(name="enum('A')", dialect="mysql") == parse_type("mysql:ENUM('A')")
    assert ColumnType(name="varchar", params=(10,)) is not None


# What one dialect cannot hold, each a stream of its own: (stream, events, the dialects refusing, words).
TEXT = {"type": "text"}


def created(table: str, *columns: str, **extra: Any) -> dict[str, Any]:
    return {"type": "table_created", "table": table, "columns": [{"name": c, **TEXT} for c in columns], **extra}


def typed(table: str, kind: str, count: int = 1) -> dict[str, Any]:
    columns = [{"name": f"c{n}", "type": kind} for n in range(count)]
    return {"type": "table_created", "table": table, "columns": columns}


def foreign_key(name: str) -> dict[str, Any]:
    return {"name": name, "kind": "foreign_key", "columns": ["x"], "references": {"table": "p", "columns": ["id"]}}


CASES: list[tuple[str, list[dict[str, Any]], set[str], str]] = [
    (
        "column-case",
        [created("t", "Name", "name")],
        {"mysql", "sqlite"},
        "v1 (table_created): in table 't', columns 'Name' and 'name' differ only in case",
    ),
    ("unicode-case", [created("t", "Ärger", "äRGER")], {"mysql"}, "'Ärger' and 'äRGER'"),
    (
        "index-case",
        [created("t", "a", "b", indexes=[{"name": "ix", "columns": ["a"]}, {"name": "IX", "columns": ["b"]}])],
        {"mysql", "sqlite"},
        "'ix' and 'IX'",
    ),
    ("table-case", [created("Users", "a"), created("users", "a")], {"sqlite"}, "'users'"),
    (
        "index-named-like-a-table",
        [created("users", "a"), created("orders", "a", indexes=[{"name": "users", "columns": ["a"]}])],
        {"postgresql", "sqlite"},
        "has the name of table 'users'",
    ),
    (
        "fk-case",
        [
            {**created("p", "id"), "primary_key": ["id"]},
            created("a", "x", constraints=[foreign_key("fk")]),
            created("b", "x", constraints=[foreign_key("FK")]),
        ],
        {"mysql"},
        "foreign keys 'fk' and 'FK'",
    ),
    ("wide", [typed("wide", "integer", 1018)], {"mysql"}, "1018 columns"),
    ("char-256", [typed("t", "char(256)")], {"mysql"}, "char(255)"),
    ("varchar-20000", [typed("t", "varchar(20000)")], {"mysql"}, "varchar(16383)"),
    ("row-size", [typed("t", "varchar(4000)", 5)], {"mysql"}, "bytes a row"),
    ("beyond-bmp", [created("t", "smile 😀")], {"mysql"}, "Basic Multilingual Plane"),
    ("primary-index", [created("t", "a", indexes=[{"name": "Primary", "columns": ["a"]}])], {"mysql"}, "primary key"),
    ("jsonb", [typed("t", "postgresql:jsonb")], {"mysql", "sqlite"}, "native to postgresql"),
    ("mediumtext", [typed("t", "mysql:mediumtext")], {"postgresql", "sqlite"}, "native to mysql"),
    ("interval", [typed("t", "interval")], {"mysql"}, "no mysql form"),
    ("long-table", [created(LONGER, "a")], {"postgresql"}, f"table name {LONGER!r} is 64 bytes"),
    ("long-column", [created("t", LONGER)], {"postgresql"}, f"column name {LONGER!r} is 64 bytes"),
    (
        "long-index",
        [created("t", "a", indexes=[{"name": LONGER, "columns": ["a"]}])],
        {"postgresql"},
        f"index name {LONGER!r} is 64 bytes; PostgreSQL's limit is 63",
    ),
    (
        "long-foreign-key",
        [{**created("p", "id"), "primary_key": ["id"]}, created("a", "x", constraints=[foreign_key(LONGER)])],
        {"postgresql"},
        f"constraint name {LONGER!r} is 64 bytes",
    ),
    ("long-enum", [{"type": "enum_created", "name": LONGER, "values": ["a"]}], {"postgresql"}, "enum type name"),
    (
        # MariaDB's index names are per table (Sakila's idx_fk_film_id is on film_actor and inventory)
        "index-on-two-tables",
        [
            created("a", "x", indexes=[{"name": "ix_x", "columns": ["x"]}]),
            created("b", "x"),
            {"type": "index_created", "table": "b", "index": {"name": "ix_x", "columns": ["x"]}},
        ],
        {"postgresql", "sqlite"},
        "index 'ix_x' is on both table 'a' and table 'b'",
    ),
    (
        "identity-unsigned",
        [
            {
                "type": "table_created",
                "table": "t",
                "columns": [{"name": "id", "type": "mysql:int(10) unsigned", "nullable": False, "identity": True}],
                "primary_key": ["id"],
            }
        ],
        {"postgresql", "sqlite"},
        "native to mysql",
    ),
]


def test_what_the_dialect_cannot_hold_is_refused_before_any_ddl(
    log: str, target_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    dialect = get_dialect(target_url.split(":", 1)[0]).name
    for stream, events, _refusing, _words in CASES:
        append(capsys, log, {"stream": stream, "events": events})
    before = dump(log)
    for stream, _events, refusing, words in CASES:
        plan = ["--store", log, "migrate", "--url", target_url, "--stream", stream, "--plan"]
        code, out, err = cli(capsys, *plan)
        if dialect not in refusing:
            assert code == 0, (stream, out, err)
            continue
        assert code == 2, (stream, dialect, out, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and f"{dialect} cannot hold" in lines[0] and words in lines[0], (stream, lines)
        # migrate itself refuses the same way, before anything runs
        code, out, err = cli(capsys, *plan[:-1])
        assert code == 2 and words in err, (stream, out, err)
        code, out, err = cli(capsys, "--store", log, "sqlmigrate", "--dialect", dialect, "--stream", stream)
        assert code == 2 and words in err, (stream, out, err)
    live, _ = asyncio.run(live_schema(log, target_url, CASES[0][0]))
    assert live.tables == {}  # nothing was created
    assert dump(log) == before  # and nothing recorded: a refusal is not an outcome


def test_the_log_holds_64_bytes_and_index_names_per_table() -> None:
    """The log's own limits are what any dialect holds: 64 bytes a name (65 refused), an index name once per
    table (two tables may share one), a constraint name once per schema (no index may take it either)."""
    from events.aggregate import InvalidChange, State, apply_event
    from events.catalog import ConstraintAdded, IndexCreated, TableCreated
    from events.model import Column, Constraint, Index

    assert TableCreated(table=LONGER, columns=(Column(name=LONGER, type="text"),)).table == LONGER
    with pytest.raises(ValueError, match="65 bytes long; the limit is 64"):
        TableCreated(table=LONGER + "x", columns=(Column(name="a", type="text"),))
    state = State()
    for table in ("a", "b"):
        apply_event(TableCreated(table=table, columns=(Column(name="x", type="text"),)), state)
        apply_event(IndexCreated(table=table, index=Index(name="ix", columns=("x",))), state)
    with pytest.raises(InvalidChange, match="index name 'ix' is already used on table 'a'"):
        apply_event(IndexCreated(table="a", index=Index(name="ix", columns=("x",))), state)
    check = Constraint(name="ix", kind="check", expression="x <> ''")
    with pytest.raises(InvalidChange, match="constraint name 'ix' is already used on table 'a'"):
        apply_event(ConstraintAdded(table="b", constraint=check), state)
    apply_event(ConstraintAdded(table="b", constraint=evolve_name(check, "ck")), state)
    with pytest.raises(InvalidChange, match="index name 'ck' is already used on table 'b'"):
        apply_event(IndexCreated(table="a", index=Index(name="ck", columns=("x",))), state)


def evolve_name(constraint: Any, name: str) -> Any:
    return constraint.model_copy(update={"name": name})
