"""Bad input to the CLI: exit 2, one clear line, no traceback, nothing written (on both stores)."""

from __future__ import annotations

import io
import json
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
        "64-byte identifier",
        event(type="column_added", table="users", column={"name": "x" * 64, "type": "text"}),
        "64 bytes",
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
