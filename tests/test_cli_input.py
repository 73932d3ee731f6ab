"""Bad input to the CLI: exit 2, one clear line, no traceback, nothing written (on both stores)."""

from __future__ import annotations

import asyncio
import io
import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from service.cli import main
from tests.test_store import dump

BASE = {
    "stream": "app",
    "actor": "alice",
    "events": [
        {
            "type": "table_created",
            "table": "users",
            "columns": [
                {"name": "id", "type": "bigint", "nullable": False},
                {"name": "email", "type": "varchar(255)"},
                {"name": "note", "type": "text"},
            ],
            "primary_key": ["id"],
        },
        {"type": "index_created", "table": "users", "index": {"name": "users_note", "columns": ["note"]}},
    ],
}


def run(
    store_url: str,
    args: list[str],
    stdin: str | None,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[int, str, str]:
    if stdin is not None:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = main(["--store", store_url, *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def event(**fields: Any) -> str:
    return json.dumps({"stream": "app", "events": [fields]})


BAD: list[tuple[str, str, str]] = [
    ("malformed JSON", '{"events": [', "malformed JSON"),
    ("not an object", "[1, 2]", "JSON object"),
    ("no events", '{"stream": "app", "events": []}', "events"),
    ("unknown event type", event(type="column_addd", table="users"), "unknown type 'column_addd'"),
    ("missing type", json.dumps({"events": [{"table": "users"}]}), "no 'type'"),
    ("bad type varchar", event(type="column_added", table="users", column={"name": "x", "type": "varchar"}), "varchar"),
    ("bad type intt", event(type="column_added", table="users", column={"name": "x", "type": "intt"}), "intt"),
    (
        "bad type numeric",
        event(type="column_added", table="users", column={"name": "x", "type": "numeric(1,2,3)"}),
        "numeric(1,2,3)",
    ),
    ("empty identifier", event(type="column_added", table="users", column={"name": "", "type": "text"}), "empty"),
    (
        "65-byte identifier",
        event(type="column_added", table="users", column={"name": "x" * 65, "type": "text"}),
        "65 bytes",
    ),
    (
        "NUL in identifier",
        event(type="column_added", table="users", column={"name": "a\u0000b", "type": "text"}),
        "NUL",
    ),
    (
        "column on missing table",
        event(type="column_added", table="nope", column={"name": "x", "type": "text"}),
        "table 'nope' does not exist",
    ),
    (
        "duplicate column",
        event(type="column_added", table="users", column={"name": "email", "type": "text"}),
        "already has a column 'email'",
    ),
    (
        "index on missing column",
        event(type="index_created", table="users", index={"name": "i", "columns": ["zz"]}),
        "users.zz",
    ),
    (
        "fk to missing table",
        event(
            type="constraint_added",
            table="users",
            constraint={
                "name": "fk",
                "kind": "foreign_key",
                "columns": ["id"],
                "references": {"table": "ghost", "columns": ["id"]},
            },
        ),
        "'ghost'",
    ),
    (
        "fk to non-unique columns",
        event(
            type="constraint_added",
            table="users",
            constraint={
                "name": "fk",
                "kind": "foreign_key",
                "columns": ["email"],
                "references": {"table": "users", "columns": ["note"]},
            },
        ),
        "not unique",
    ),
    ("drop a column an index uses", event(type="column_dropped", table="users", column="note"), "users_note"),
    ("unknown field", event(type="column_dropped", table="users", column="note", extra=1), "unknown field"),
]


def column(name: str = "x", type: Any = "text") -> str:
    return event(type="column_added", table="users", column={"name": name, "type": type})


def table(name: str, columns: int = 1) -> str:
    cols = [{"name": f"c{n}", "type": "integer"} for n in range(columns)]
    return event(type="table_created", table=name, columns=cols)


def outcome(**numbers: int) -> str:
    fields = {"database": "main", "stream": "app", "from_version": 0, "to_version": 1, **numbers}
    return event(type="migration_applied", **fields)


def nested(depth: int) -> str:
    return '{"stream": "app", "events": [' + "[" * depth + "]" * depth + "]}"


# Issue 12: what was accepted and then bricked the stream, or could never be migrated, or exited 70.
BAD += [
    ("type as an object", column(type={"name": "foo"}), "not a JSON object"),
    ("type object with params", column(type={"name": "varchar", "params": [-5]}), "not a JSON object"),
    ("type object with dialect", column(type={"name": "integer", "dialect": "oracle"}), "not a JSON object"),
    ("negative length", column(type="varchar(-5)"), "varchar(-5)"),
    ("unknown dialect", column(type="oracle:integer"), "dialect prefix"),
    ("text with parameters", column(type="text(1,2,3)"), "takes no parameters"),
    ("20-digit length", column(type="varchar(99999999999999999999)"), "at most 10 digits"),
    ("length past PostgreSQL's", column(type="varchar(10485761)"), "10485760"),
    ("char past PostgreSQL's", column(type="char(2147483647)"), "10485760"),
    ("numeric precision", column(type="numeric(1001)"), "precision"),
    ("native backslash", column(type="mysql:enum('a\\','b')"), "bad native type"),
    ("native bare words", column(type="mysql:enum(a,b)"), "quoted strings"),
    ("native empty parameters", column(type="mysql:enum()"), "quoted strings"),
    ("native trailing text", column(type="postgresql:int4; drop table x"), "bad native type"),
    ("native quoted name", column(type='postgresql:"char"'), "bad native type"),
    ("native huge number", column(type="mysql:varchar(99999999999)"), "larger than"),
    ("outcome version past 64 bits", outcome(from_version=2**70), "outside signed 64 bits"),
    ("outcome version just past 64 bits", outcome(to_version=2**63), "outside signed 64 bits"),
    ("outcome duration negative past 64 bits", outcome(duration_ms=-(2**63) - 1), "outside signed 64 bits"),
    (
        "expected version past 64 bits",
        json.dumps({"stream": "app", "expected_version": 2**64, "events": [json.loads(column())["events"][0]]}),
        "outside signed 64 bits",
    ),
    ("tag version past 64 bits", event(type="tag_created", tag="t", version=2**63), "outside signed 64 bits"),
    ("4301-digit number", '{"stream": "app", "expected_version": ' + "9" * 4301 + ', "events": []}', "4300"),
    ("NaN", '{"stream": "app", "expected_version": NaN, "events": []}', "NaN"),
    ("lone surrogate in actor", json.dumps({"stream": "app", "actor": "\ud800", "events": []}), "surrogate"),
    (
        "lone surrogate in message",
        json.dumps({"stream": "app", "message": "a\udfffb", "events": [json.loads(column())["events"][0]]}),
        "surrogate",
    ),
    ("lone surrogate in a comment", event(type="table_altered", table="users", comment="\ud83d"), "surrogate"),
    ("lone surrogate in a name", column(name="\udc80"), "surrogate"),
    ("nesting 33 deep", nested(32), "nested deeper than 32"),
    ("nesting 100000 deep", nested(100_000), "nested deeper than 32"),
    ("PostgreSQL system column ctid", column(name="ctid"), "system column"),
    (
        "PostgreSQL system column xmin",
        event(type="table_created", table="t2", columns=[{"name": "xmin", "type": "text"}]),
        "system column",
    ),
    ("leading space", column(name=" x"), "whitespace"),
    ("trailing space", column(name="x "), "whitespace"),
    ("only whitespace", column(name="   "), "only whitespace"),
    ("newline", column(name="a\nb"), "control character"),
    ("tab", column(name="a\tb"), "control character"),
    ("bidi override", column(name="a\u202eb"), "format character"),
    ("zero-width space", column(name="a\u200bb"), "format character"),
    ("byte order mark", column(name="\ufeffx"), "format character"),
    ("line separator", column(name="a\u2028b"), "line separator"),
    ("dot in a column", column(name="a.b"), "contains a dot"),
    ("two dots in a table", table("a.b.c"), "contains a dot"),
    ("schemalog_ table", table("schemalog_events"), "reserved prefix"),
    ("SQLITE_ table", table("SQLITE_x"), "reserved prefix"),
    (
        "sqlite_ index",
        event(type="index_created", table="users", index={"name": "sqlite_i", "columns": ["id"]}),
        "reserved prefix",
    ),
    (
        "schemalog_ table by rename",
        event(type="table_renamed", table="users", new_name="Schemalog_users"),
        "reserved prefix",
    ),
    (
        "control character by rename",
        event(type="column_renamed", table="users", column="note", new_name="n\x07"),
        "control character",
    ),
    ("1601 columns", table("wide", columns=1601), "1601 columns"),
]


@pytest.mark.parametrize(("what", "text", "words"), BAD, ids=[b[0] for b in BAD])
def test_bad_changesets_exit_2_and_write_nothing(
    store_url: str,
    what: str,
    text: str,
    words: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert run(store_url, ["init"], None, capsys, monkeypatch)[0] == 0
    code, _, _ = run(store_url, ["append", "-"], json.dumps(BASE), capsys, monkeypatch)
    assert code == 0
    before = dump(store_url)
    code, out, err = run(store_url, ["append", "-"], text, capsys, monkeypatch)
    assert code == 2, (what, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("schemalog: error:"), err
    assert words in lines[0], lines[0]
    assert "Traceback" not in err
    assert dump(store_url) == before


def test_rejections_name_the_event_index(
    store_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run(store_url, ["init"], None, capsys, monkeypatch)[0] == 0
    assert run(store_url, ["append", "-"], json.dumps(BASE), capsys, monkeypatch)[0] == 0
    text = json.dumps(
        {
            "stream": "app",
            "events": [
                {"type": "column_added", "table": "users", "column": {"name": "ok", "type": "text"}},
                {"type": "column_dropped", "table": "users", "column": "missing"},
            ],
        }
    )
    code, _, err = run(store_url, ["append", "-"], text, capsys, monkeypatch)
    assert code == 2
    assert "events[1] (column_dropped)" in err and "users" in err and "missing" in err
    assert "ok" not in json.dumps(
        json.loads(run(store_url, ["show", "--format", "json"], None, capsys, monkeypatch)[1])["tables"]["users"][
            "columns"
        ]
    )


def test_conflict_retry_and_init(
    store_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run(store_url, ["init"], None, capsys, monkeypatch)[0] == 0
    assert run(store_url, ["init"], None, capsys, monkeypatch)[0] == 0
    first = dict(BASE, changeset_id="cs-1", expected_version=0)
    assert run(store_url, ["append", "-"], json.dumps(first), capsys, monkeypatch)[0] == 0
    code, out, _ = run(store_url, ["append", "-"], json.dumps(first), capsys, monkeypatch)
    assert code == 0 and "already recorded" in out
    stale = {
        "stream": "app",
        "expected_version": 0,
        "events": [{"type": "column_added", "table": "users", "column": {"name": "x", "type": "text"}}],
    }
    before = dump(store_url)
    code, _, err = run(store_url, ["append", "-"], json.dumps(stale), capsys, monkeypatch)
    assert code == 3 and "current version 2" in err
    assert dump(store_url) == before
    code, _, err = run(store_url, ["append", "/no/such/file.json"], None, capsys, monkeypatch)
    assert code == 2 and "cannot read" in err


def test_bad_usage_is_exit_2(
    store_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run(store_url, ["init"], None, capsys, monkeypatch)[0] == 0
    for args in (
        ["show", "--at", "nope-tag"],
        ["show", "--at", "99"],
        ["history", "--type", "bogus"],
        ["history", "--since", "yesterday-ish"],
        ["show", "--format", "sql", "--dialect", "oracle"],
        ["blame", "ghost"],
    ):
        code, _, err = run(store_url, args, None, capsys, monkeypatch)
        assert code == 2, (args, err)
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    with pytest.raises(SystemExit) as caught:
        main(["--store", store_url, "frobnicate"])
    assert caught.value.code == 2


# --------------------------------------------------------------------------- damaged stores


def sqlite_store(path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> str:
    """A store in ``path`` with a few events, its file as SQLite leaves it when the last connection closes."""
    url = f"sqlite:///{path}"
    assert run(url, ["init"], None, capsys, monkeypatch)[0] == 0
    for n in range(20):
        changeset = {
            "stream": "app",
            "events": [
                {
                    "type": "table_created",
                    "table": f"t{n}",
                    "columns": [{"name": "c", "type": "text", "comment": "x" * 2000}],
                }
            ],
        }
        assert run(url, ["append", "-"], json.dumps(changeset), capsys, monkeypatch)[0] == 0
    return url


def damage(kind: str, path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    if kind == "text":
        path.write_text("id,name\n1,alice\n")
    elif kind == "random":
        path.write_bytes(bytes((n * 7919 + 13) % 256 for n in range(8192)))
    elif kind == "truncated":
        sqlite_store(path, capsys, monkeypatch)
        with path.open("r+b") as handle:
            handle.truncate(path.stat().st_size // 3)
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "heads dropped":
        sqlite_store(path, capsys, monkeypatch)
        conn = sqlite3.connect(path)
        conn.execute("DROP TABLE schemalog_streams")
        conn.commit()
        conn.close()
    else:
        assert kind == "missing"


COMMANDS: list[list[str]] = [
    ["history"],
    ["show"],
    ["verify"],
    ["append", "-"],
    ["tag", "release-1"],
    ["diff", "0", "head"],
    ["migrate", "--url", "sqlite:///never.db", "--plan"],
]
WHAT_IS_WRONG = {
    "text": "not a SQLite database",
    "random": "not a SQLite database",
    "truncated": "truncated",
    "empty": "not a schemalog store",
    "missing": "not a schemalog store",
    "heads dropped": "schemalog_streams missing",
}


@pytest.mark.parametrize("kind", list(WHAT_IS_WRONG))
def test_a_damaged_sqlite_store_fails_fast_for_every_command(
    kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "log.db"
    damage(kind, path, capsys, monkeypatch)
    url = f"sqlite:///{path}"
    before = path.read_bytes() if path.exists() else None
    monkeypatch.chdir(tmp_path)
    for args in COMMANDS:
        code, out, err = run(url, args, json.dumps(BASE), capsys, monkeypatch)
        lines = err.strip().splitlines()
        assert code == 2, (kind, args, out, err)
        assert len(lines) == 1 and str(path) in lines[0] and WHAT_IS_WRONG[kind] in lines[0], (kind, args, lines)
    assert (path.read_bytes() if path.exists() else None) == before  # nothing made, nothing changed
    assert not (tmp_path / "never.db").exists()
    code, out, err = run(url, ["init"], None, capsys, monkeypatch)
    if kind in ("empty", "missing"):  # a store yet to be made: init makes it, and then it is one
        assert code == 0, err
        assert run(url, ["history"], None, capsys, monkeypatch)[:2] == (0, "no events\n")
    else:  # init does not take a foreign or damaged file for a new store
        assert code == 2 and WHAT_IS_WRONG[kind] in err, err


@pytest.mark.parametrize("kind", ["text", "random", "truncated"])
def test_a_damaged_store_never_hangs(
    kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The process ends (it hung after "internal error": the connection's thread was never closed)."""
    path = tmp_path / "log.db"
    damage(kind, path, capsys, monkeypatch)
    for command in ("history", "verify"):
        done = subprocess.run(
            [sys.executable, "-m", "service.cli", "--store", f"sqlite:///{path}", command],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=Path(__file__).resolve().parents[1],
        )
        assert done.returncode == 2, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1 and str(path) in done.stderr


def test_read_commands_make_no_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the default store (./schemalog.db) and none there, only init makes one."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SCHEMALOG_STORE", raising=False)
    for args in (["history"], ["show"], ["verify"], ["append", "-"]):
        monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(BASE)))
        code = main(args)
        err = capsys.readouterr().err
        assert code == 2 and "schemalog.db" in err and "schemalog init" in err, err
        assert list(tmp_path.iterdir()) == []
    assert main(["init"]) == 0
    assert (tmp_path / "schemalog.db").exists()


def test_a_postgresql_database_without_the_tables_is_not_a_store(
    pg_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncpg

    for args in (["history"], ["verify"], ["append", "-"]):
        code, _, err = run(pg_url, args, json.dumps(BASE), capsys, monkeypatch)
        assert code == 2 and "no schemalog tables" in err and len(err.strip().splitlines()) == 1, err

    async def tables() -> list[str]:
        conn = await asyncpg.connect(pg_url)
        try:
            return [r[0] for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        finally:
            await conn.close()

    assert asyncio.run(tables()) == []  # nothing was made
    assert run(pg_url, ["init"], None, capsys, monkeypatch)[0] == 0
    assert run(pg_url, ["append", "-"], json.dumps(BASE), capsys, monkeypatch)[0] == 0

    async def drop_heads() -> None:
        conn = await asyncpg.connect(pg_url)
        try:
            await conn.execute("DROP TABLE schemalog_streams CASCADE")
        finally:
            await conn.close()

    asyncio.run(drop_heads())
    for args in (["history"], ["verify"], ["init"]):
        code, _, err = run(pg_url, args, None, capsys, monkeypatch)
        assert code == 2 and "schemalog_streams missing" in err and len(err.strip().splitlines()) == 1, err


def test_a_store_damaged_while_read_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pages overwritten past the header: SQLite finds them malformed when it reads them."""
    path = tmp_path / "log.db"
    url = sqlite_store(path, capsys, monkeypatch)
    with path.open("r+b") as handle:
        handle.seek(4096 * 2)
        handle.write(b"\xff" * 4096 * 4)
    for args in (["verify"], ["show"]):
        code, _, err = run(url, args, None, capsys, monkeypatch)
        assert code == 2 and "damaged" in err and len(err.strip().splitlines()) == 1, err


def test_invalid_utf8_in_a_changeset_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'log.db'}"
    assert run(url, ["init"], None, capsys, monkeypatch)[0] == 0
    path = tmp_path / "bad.json"
    path.write_bytes(b'{"stream": "app", "events": [], "message": "\xff\xfe"}')
    code, _, err = run(url, ["append", str(path)], None, capsys, monkeypatch)
    assert code == 2 and "not UTF-8" in err, err


def test_history_after_a_primary_key_is_dropped(
    store_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by the fuzz (tests/test_fuzz.py): ``primary_key_set`` with no columns made history exit 70."""
    assert run(store_url, ["init"], None, capsys, monkeypatch)[0] == 0
    assert run(store_url, ["append", "-"], json.dumps(BASE), capsys, monkeypatch)[0] == 0
    drop = event(type="primary_key_set", table="users", columns=[])
    assert run(store_url, ["append", "-"], drop, capsys, monkeypatch)[0] == 0
    code, out, err = run(store_url, ["history"], None, capsys, monkeypatch)
    assert code == 0 and "primary_key_set users ()" in out, err
