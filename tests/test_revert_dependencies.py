"""`revert` refuses only when a later change depends on what the revert takes away or renames back (issue 14).

The inverse of a changeset is computed from the state before it and applied to the head: later changes that
touched the same table in other ways stay, and `show` after the revert is the head without the changeset.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.test_sql_run import cli, sql_run
from tests.test_store import dump

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
RENAME = {"type": "column_renamed", "table": "people", "column": "email", "new_name": "mail"}
AGE = {"type": "column_added", "table": "people", "column": {"name": "age", "type": "integer"}}


@pytest.fixture
def log_url(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    url = f"sqlite:///{tmp_path / 'log.db'}"
    assert cli(["--store", url, "init"], capsys)[0] == 0
    return url


def append(log_url: str, capsys: pytest.CaptureFixture[str], *events: dict[str, Any]) -> None:
    text = json.dumps({"stream": "app", "actor": "dev", "events": list(events)})
    code, _out, err = cli(["--store", log_url, "append", "-"], capsys, text)
    assert code == 0, err


def show(log_url: str, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    code, out, err = cli(["--store", log_url, "show", "--stream", "app", "--format", "json"], capsys)
    assert code == 0, err
    shown: dict[str, Any] = json.loads(out)
    return shown


def columns(schema: dict[str, Any], table: str) -> list[str]:
    assert table in schema["tables"], (table, schema)
    return [c["name"] for c in schema["tables"][table]["columns"]]


def refused(log_url: str, capsys: pytest.CaptureFixture[str], target: str) -> str:
    """The revert is refused in one line, exit 2, and nothing is written."""
    before = dump(log_url)
    code, out, err = cli(["--store", log_url, "revert", target], capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, (code, out, err)
    assert dump(log_url) == before
    return lines[0]


def test_a_rename_reverts_past_an_unrelated_later_change_of_the_same_table(
    log_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    append(log_url, capsys, PEOPLE)  # v1
    append(log_url, capsys, RENAME)  # v2
    append(log_url, capsys, AGE)  # v3: another column of the same table
    append(log_url, capsys, {"type": "column_altered", "table": "people", "column": "nick", "nullable": False})  # v4
    code, out, err = cli(["--store", log_url, "revert", "2"], capsys)
    assert code == 0, err
    assert "reverted changeset" in out
    schema = show(log_url, capsys)
    # the head without v2: the column has its old name back, v3's column and v4's change stay
    assert columns(schema, "people") == ["id", "email", "nick", "age"]
    nick = [c for c in schema["tables"]["people"]["columns"] if c["name"] == "nick"]
    assert nick and nick[0]["nullable"] is False


def test_a_table_rename_reverts_past_a_column_added_to_it(log_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    append(log_url, capsys, PEOPLE)
    append(log_url, capsys, {"type": "table_renamed", "table": "people", "new_name": "persons"})  # v2
    append(log_url, capsys, {**AGE, "table": "persons"})  # v3
    code, _out, err = cli(["--store", log_url, "revert", "2"], capsys)
    assert code == 0, err
    schema = show(log_url, capsys)
    assert columns(schema, "people") == ["id", "email", "nick", "age"]
    assert "persons" not in schema["tables"]


def test_a_later_index_on_the_renamed_column_refuses_naming_it(
    log_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    append(log_url, capsys, PEOPLE)
    append(log_url, capsys, RENAME)  # v2
    append(log_url, capsys, AGE)  # v3: unrelated, not named
    by_mail = {"name": "by_mail", "columns": ["mail"]}
    append(log_url, capsys, {"type": "index_created", "table": "people", "index": by_mail})  # v4
    line = refused(log_url, capsys, "2")
    assert "v4 index_created" in line and "people.mail" in line, line
    assert "v3" not in line, line


def test_a_later_foreign_key_to_a_created_table_refuses_naming_it(
    log_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    append(log_url, capsys, PEOPLE)
    teams = {
        "type": "table_created",
        "table": "teams",
        "columns": [{"name": "id", "type": "integer", "nullable": False}],
        "primary_key": ["id"],
    }
    append(log_url, capsys, teams)  # v2
    append(log_url, capsys, {**AGE, "column": {"name": "team_id", "type": "integer"}})  # v3
    fk = {
        "name": "people_team",
        "kind": "foreign_key",
        "columns": ["team_id"],
        "references": {"table": "teams", "columns": ["id"]},
    }
    append(log_url, capsys, {"type": "constraint_added", "table": "people", "constraint": fk})  # v4
    line = refused(log_url, capsys, "2")
    assert "v4 constraint_added" in line and "table teams" in line and "v3" not in line, line


def test_a_later_change_the_undo_no_longer_applies_to_refuses_naming_it(
    log_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """v2 renames email to mail, v3 adds another email: renaming mail back would clash with v3's column."""
    append(log_url, capsys, PEOPLE)
    append(log_url, capsys, RENAME)  # v2
    append(log_url, capsys, {**AGE, "column": {"name": "email", "type": "text"}})  # v3
    line = refused(log_url, capsys, "2")
    assert "v3 column_added" in line and "'email'" in line, line


def test_data_steps_revert_as_before(log_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    append(log_url, capsys, PEOPLE)
    append(log_url, capsys, sql_run())  # v2: no backward, cannot be undone
    append(log_url, capsys, sql_run(backward={}))  # v3: backward {} is nothing to undo
    append(log_url, capsys, AGE)  # v4
    assert "undo v2 (sql_run)" in refused(log_url, capsys, "2")
    code, _out, err = cli(["--store", log_url, "revert", "3"], capsys)
    assert code == 0, err
    assert columns(show(log_url, capsys), "people") == ["id", "email", "nick", "age"]


def test_a_later_change_of_the_same_attribute_refuses_and_of_another_reverts(
    log_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Setting an attribute back over a later change of it would undo that change too: refused, naming it."""
    append(log_url, capsys, PEOPLE)
    append(log_url, capsys, {"type": "column_altered", "table": "people", "column": "nick", "new_type": "text"})  # v2
    append(log_url, capsys, {"type": "column_altered", "table": "people", "column": "nick", "nullable": False})  # v3
    append(log_url, capsys, {"type": "column_altered", "table": "people", "column": "nick", "new_type": "varchar(9)"})
    line = refused(log_url, capsys, "2")
    assert "v4 column_altered" in line and "type of column people.nick" in line and "v3" not in line, line
    code, _out, err = cli(["--store", log_url, "revert", "3"], capsys)  # nullable: changed by no later event
    assert code == 0, err
    nick = [c for c in show(log_url, capsys)["tables"]["people"]["columns"] if c["name"] == "nick"]
    assert nick[0]["nullable"] is True and nick[0]["type"] == "varchar(9)", nick
