"""Failures that are not bugs: one line, the documented exit code, nothing written (issue 14).

And the few that are bugs: one line naming the file with the details and where to report it.
"""

from __future__ import annotations

import io
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from service.cli import main
from tests.servers import MARIADB_HOST, MARIADB_PORT, MARIADB_USER, mariadb_database_url, require_server

CHANGESET = {
    "stream": "app",
    "actor": "alice",
    "message": "users",
    "events": [
        {
            "type": "table_created",
            "table": "users",
            "columns": [
                {"name": "id", "type": "bigint", "nullable": False},
                {"name": "email_address", "type": "varchar(255)", "default": "'x'"},
            ],
            "primary_key": ["id"],
        },
        {"type": "column_altered", "table": "users", "column": "email_address", "default": None},
    ],
}


def cli(capsys: pytest.CaptureFixture[str], store: str, *args: str, stdin: str | None = None) -> tuple[int, str, str]:
    if stdin is not None:
        import sys

        old, sys.stdin = sys.stdin, io.StringIO(stdin)
    try:
        code = main(["--store", store, *args])
    finally:
        if stdin is not None:
            sys.stdin = old
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def log_rows(store: str) -> list[tuple[Any, ...]]:
    path = store.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        return list(conn.execute("SELECT stream, version FROM schemalog_events ORDER BY position"))


@pytest.fixture
def store(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.chdir(tmp_path)  # no schemalog.toml from elsewhere
    url = f"sqlite:///{tmp_path / 'log.db'}"
    assert cli(capsys, url, "init")[0] == 0
    code, _, err = cli(capsys, url, "append", "-", stdin=json.dumps(CHANGESET))
    assert code == 0, err
    return url


# --------------------------------------------------------------------------- databases that cannot be reached


def _mariadb_wrong_password() -> str:
    require_server("MariaDB", MARIADB_HOST, MARIADB_PORT)
    return f"mysql://{MARIADB_USER}:not-the-password@{MARIADB_HOST}:{MARIADB_PORT}/mysql"


UNREACHABLE = {
    "mysql-wrong-password": _mariadb_wrong_password,
    "mysql-no-server": lambda: "mysql://root@127.0.0.1:1/none",
    "postgresql-no-server": lambda: "postgresql://postgres@127.0.0.1:1/none",
    "sqlite-no-folder": lambda: "sqlite:////nonexistent-folder-of-schemalog/target.db",
}


@pytest.fixture(params=sorted(UNREACHABLE))
def bad_url(request: pytest.FixtureRequest) -> str:
    url: str = UNREACHABLE[request.param]()
    return url


def _one_line_unreachable(code: int, out: str, err: str) -> None:
    assert code == 1, (code, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "internal error" not in err and "Traceback" not in err, err
    assert "cannot connect to" in err or "does not exist" in err, err
    assert "not-the-password" not in err + out


COMMANDS = {
    "showmigrations": ["showmigrations", "--url"],
    "migrate": ["migrate", "--stream", "app", "--url"],
    "migrate-check": ["migrate", "--check", "--stream", "app", "--url"],
    "sqlmigrate": ["sqlmigrate", "--stream", "app", "--url"],
    "import": ["import", "--stream", "app", "--url"],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_an_unreachable_database_is_one_line_exit_1_and_nothing_is_logged(
    store: str, bad_url: str, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    before = log_rows(store)
    code, out, err = cli(capsys, store, *COMMANDS[command], bad_url)
    _one_line_unreachable(code, out, err)
    assert log_rows(store) == before  # no db:<url> stream for a run that never reached its database


def test_verify_databases_reports_an_unreachable_database(
    store: str, bad_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "schemalog.toml"
    config.write_text(f'[databases.main]\nurl = "{bad_url}"\nstream = "app"\n')
    code, out, err = cli(capsys, store, "--config", str(config), "verify", "--databases")
    assert code == 1 and "UNREACHABLE: database 'main'" in err, (out, err)
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err and "not-the-password" not in err


def test_a_migrate_that_connected_is_still_recorded(
    store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = cli(capsys, store, "migrate", "--stream", "app", "--url", f"sqlite:///{tmp_path / 't.db'}")
    assert code == 0, err
    assert [r for r in log_rows(store) if r[0].startswith("db:")]


# --------------------------------------------------------------------------- internal errors


def test_an_internal_error_names_its_details_file_and_where_to_report(
    store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(args: Any, store: Any) -> int:
        raise RuntimeError("a bug in show")

    monkeypatch.setattr("service.cli.cmd_show", broken)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    code, _, err = cli(capsys, store, "show")
    assert code == 70
    assert len(err.strip().splitlines()) == 1, err
    assert "internal error: RuntimeError: a bug in show" in err and "report" in err
    named = [Path(w.rstrip(";,.)")) for w in err.split() if "schemalog-error" in w]
    assert named and named[0].exists(), err
    details = named[0].read_text()
    assert "Traceback" in details and "a bug in show" in details and "broken" in details

    with pytest.raises(RuntimeError):  # -v: the traceback itself
        main(["--store", store, "-v", "show"])


# --------------------------------------------------------------------------- migrate --check


@pytest.fixture(params=["sqlite", "mysql"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'target.db'}"
    else:
        with mariadb_database_url() as url:
            yield url


def test_migrate_check_says_behind_then_up_to_date_and_writes_nothing(
    store: str, target: str, capsys: pytest.CaptureFixture[str]
) -> None:
    before = log_rows(store)
    code, out, err = cli(capsys, store, "migrate", "--check", "--stream", "app", "--url", target)
    assert code == 1, (out, err)
    assert len(out.strip().splitlines()) == 1 and "behind" in out and "v0" in out and "v2" in out, out
    assert log_rows(store) == before
    code, out, err = cli(capsys, store, "showmigrations", "--stream", "app", "--url", target)
    assert code == 0 and "no marker" in out, (out, err)  # the check wrote no marker either

    assert cli(capsys, store, "migrate", "--stream", "app", "--url", target)[0] == 0
    before = log_rows(store)
    code, out, err = cli(capsys, store, "migrate", "--check", "--stream", "app", "--url", target)
    assert code == 0 and "up to date" in out and len(out.strip().splitlines()) == 1, (out, err)
    assert log_rows(store) == before


def test_migrate_check_says_drift(store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = f"sqlite:///{tmp_path / 'target.db'}"
    assert cli(capsys, store, "migrate", "--stream", "app", "--url", target)[0] == 0
    with sqlite3.connect(tmp_path / "target.db") as conn:
        conn.execute("CREATE TABLE extra (id integer)")
    before = log_rows(store)
    code, out, err = cli(capsys, store, "migrate", "--check", "--stream", "app", "--url", target)
    assert code == 1 and "drift" in out + err, (out, err)
    assert log_rows(store) == before


@pytest.mark.parametrize("flag", ["--plan", "--fake"])
def test_migrate_check_refuses_plan_and_fake(store: str, flag: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, store, "migrate", "--check", flag, "--url", "sqlite:///x.db")
    assert code == 2 and "--check" in err and len(err.strip().splitlines()) == 1


# --------------------------------------------------------------------------- names that never existed


def test_history_of_a_stream_that_never_existed(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, store, "history", "--stream", "ap")
    assert code == 2 and out == "", (out, err)
    assert "stream 'ap' does not exist" in err and "did you mean 'app'?" in err, err


def test_history_of_a_table_that_never_existed(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, store, "history", "--table", "user")
    assert code == 2 and out == "", (out, err)
    assert "table 'user' does not exist" in err and "did you mean 'users'?" in err, err
    code, out, err = cli(capsys, store, "history", "--stream", "app", "--table", "zzz")
    assert code == 2 and "table 'zzz' does not exist in stream 'app'" in err and "did you mean" not in err, err
    assert cli(capsys, store, "history", "--table", "users")[0] == 0  # one that exists still lists


def test_history_of_an_enum_type_and_a_renamed_table(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    """An enum type's name and a table's later name exist too (the filter follows both)."""
    changeset = {
        "stream": "app",
        "events": [
            {"type": "enum_created", "name": "mood", "values": ["ok", "sad"]},
            {"type": "table_renamed", "table": "users", "new_name": "people"},
        ],
    }
    assert cli(capsys, store, "append", "-", stdin=json.dumps(changeset))[0] == 0
    for name in ("mood", "people", "users"):
        code, out, err = cli(capsys, store, "history", "--table", name)
        assert code == 0 and out and not err, (name, out, err)


def test_blame_of_a_stream_that_never_existed(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, store, "blame", "users", "--stream", "apps")
    assert code == 2 and "stream 'apps' does not exist" in err and "did you mean 'app'?" in err, err
    code, _, err = cli(capsys, store, "blame", "user", "--stream", "app")
    assert code == 2 and "did you mean 'users'?" in err, err


# --------------------------------------------------------------------------- wording


def test_history_says_a_default_was_dropped_in_plain_words(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, store, "history", "--stream", "app")
    assert code == 0
    altered = [line for line in out.splitlines() if "column_altered" in line]
    assert altered and "None" not in altered[0] and "default dropped" in altered[0], out


def test_history_names_every_attribute_a_column_altered_changes(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    """The newer attributes (collation, on_update, ...) are named in a history line as the older ones are,
    the same whether the line is built from the stored row or from the event."""
    from events.catalog import parse_event
    from service.cli import describe_event

    changeset = {
        "stream": "app",
        "events": [
            {"type": "column_altered", "table": "users", "column": "email_address", "collation": "C", "comment": None}
        ],
    }
    assert cli(capsys, store, "append", "-", stdin=json.dumps(changeset))[0] == 0
    code, out, _ = cli(capsys, store, "history", "--stream", "app", "--type", "column_altered")
    last = out.strip().splitlines()[-1]
    assert code == 0 and last.endswith(".email_address collation=C comment dropped"), out
    assert describe_event(parse_event(changeset["events"][0])) in last


def test_blame_columns_line_up(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, store, "blame", "users", "--stream", "app")
    assert code == 0
    lines = [line for line in out.splitlines() if not line.startswith("--")]
    assert len(lines) >= 3, out
    assert len({line.index(" created ") for line in lines}) == 1, out
    assert len({line.index(" last changed ") for line in lines}) == 1, out


@pytest.mark.parametrize(("count", "text"), [(0, "0 changes"), (1, "1 change"), (2, "2 changes")])
def test_counts_are_said_in_words(count: int, text: str) -> None:
    from service.cli import plural

    assert plural(count, "change") == text
