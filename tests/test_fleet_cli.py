"""The fleet's commands: ``db add|set|retire|list``, ``status``, ``rollout resume``; secrets in URLs."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from events.fleet import check_database_url
from service.cli import main
from service.secrets import SecretMissing, resolve_url


def cli(capsys: pytest.CaptureFixture[str], store: str, *args: str) -> tuple[int, str, str]:
    code = main(["--store", store, *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def store(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'log.db'}"
    assert cli(capsys, url, "init")[0] == 0
    return url


def fleet_rows(store: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(store.removeprefix("sqlite:///")) as conn:
        return list(conn.execute("SELECT version, type, data FROM schemalog_events WHERE stream = 'schemalog:fleet'"))


def test_add_list_set_retire(store: str, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, err = cli(capsys, store, "db", "add", "eu", "--url", f"sqlite:///{tmp_path}/eu.db", "--stream", "app")
    assert code == 0, err
    assert out.startswith("registered eu:") and "wave 0" in out
    code, _, err = cli(
        capsys,
        store,
        "db",
        "add",
        "us",
        "--url",
        "postgresql://app:${SHOP_PW}@127.0.0.1/shop",
        "--stream",
        "app",
        "--wave",
        "1",
        "--target",
        "v3",
        "--allow-destructive",
        "--drift",
        "adopt",
        "--drift-interval",
        "60",
        "--actor",
        "ops",
    )
    assert code == 0, err
    code, out, _ = cli(capsys, store, "db", "list", "--json")
    rows = {r["name"]: r for r in json.loads(out)}
    assert rows["us"] == {
        "name": "us",
        "url": "postgresql://app:${SHOP_PW}@127.0.0.1/shop",
        "stream": "app",
        "target": "v3",
        "wave": 1,
        "allow_destructive": True,
        "drift": "adopt",
        "drift_interval": 60.0,
        "changed_by": "ops",
        "changed_at": rows["us"]["changed_at"],
    }
    assert cli(capsys, store, "db", "set", "us", "--target", "head", "--no-allow-destructive")[0] == 0
    _, out, _ = cli(capsys, store, "db", "list", "--json")
    us = {r["name"]: r for r in json.loads(out)}["us"]
    assert (us["target"], us["allow_destructive"], us["wave"]) == ("head", False, 1)
    code, out, _ = cli(capsys, store, "db", "retire", "us")
    assert code == 0 and "retired us" in out
    _, out, _ = cli(capsys, store, "db", "list")
    assert out.startswith("eu") and "us " not in out
    assert [row[1] for row in fleet_rows(store)] == [
        "database_registered",
        "database_registered",
        "database_changed",
        "database_retired",
    ]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["add", "x", "--url", "postgresql://app:hunter2@127.0.0.1/shop", "--stream", "app"], "holds a password"),
        (["add", "x", "--url", "ftp://h/x", "--stream", "app"], "unsupported database URL scheme"),
        (["add", "bad name", "--url", "sqlite:///x.db", "--stream", "app"], "database name"),
        (["add", "x", "--url", "sqlite:///x.db", "--stream", "db:y"], "the service's own"),
        (["add", "x", "--url", "sqlite:///x.db", "--stream", "app", "--wave", "-1"], "wave"),
        (["add", "x", "--url", "sqlite:///x.db", "--stream", "app", "--target", "v 1"], "target"),
        (["set", "nobody", "--wave", "2"], "no database 'nobody' in the fleet"),
        (["set", "eu"], "nothing to change"),
        (["retire", "nobody"], "no database 'nobody'"),
        (["add", "eu", "--url", "sqlite:///other.db", "--stream", "app"], "already registered"),
        (["add", "eu2", "--url", "sqlite:///eu.db", "--stream", "app"], "already has this URL"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(
    store: str, capsys: pytest.CaptureFixture[str], args: list[str], says: str
) -> None:
    assert cli(capsys, store, "db", "add", "eu", "--url", "sqlite:///eu.db", "--stream", "app")[0] == 0
    before = fleet_rows(store)
    code, out, err = cli(capsys, store, "db", *args)
    assert code == 2, (out, err)
    assert says in err and err.count("\n") == 1, err
    assert "hunter2" not in err
    assert fleet_rows(store) == before


def test_rollout_resume_without_a_halt_is_refused(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, store, "rollout", "resume", "app")
    assert code == 2 and "no halted rollout of 'app'" in err


def test_status_of_databases_never_run(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(capsys, store, "status")[1] == "no databases registered\n"
    assert cli(capsys, store, "db", "add", "eu", "--url", "sqlite:///eu.db", "--stream", "app")[0] == 0
    code, out, _ = cli(capsys, store, "status", "--json")
    (row,) = json.loads(out)
    assert code == 0
    # an empty stream: a database never migrated is at version 0, its target
    assert (row["status"], row["marker"], row["target_version"], row["owner"]) == ("Ready", None, 0, None)
    changeset = {
        "stream": "app",
        "events": [{"type": "table_created", "table": "t", "columns": [{"name": "a", "type": "integer"}]}],
    }
    (Path(store.removeprefix("sqlite:///")).parent / "cs.json").write_text(json.dumps(changeset))
    assert cli(capsys, store, "append", "cs.json")[0] == 0
    code, out, err = cli(capsys, store, "status", "--wait", "0")
    assert code == 1 and "eu" in out and "Reconciling" in out and "no daemon replica holds its lease" in out
    assert "not every database is Ready" in err


def test_a_url_secret_is_found_where_the_url_says(tmp_path: Path) -> None:
    assert resolve_url("postgresql://app:${PW}@h/db", {"PW": "s3cr:t"}) == "postgresql://app:s3cr%3At@h/db"
    secret = tmp_path / "pw"
    secret.write_text("from-a-file\n")
    assert (
        resolve_url(f"postgresql://app@h/db?password_file={secret}&sslmode=disable", {})
        == "postgresql://app:from-a-file@h/db?sslmode=disable"
    )
    assert resolve_url("sqlite:///x.db", {}) == "sqlite:///x.db"
    with pytest.raises(SecretMissing, match=r"\$\{PW\}, and PW is not set"):
        resolve_url("postgresql://app:${PW}@h/db", {})
    with pytest.raises(SecretMissing, match="cannot read the password file"):
        resolve_url(f"mysql://app@h/db?password_file={tmp_path}/none", {})
    check_database_url("mysql://root:${MY_PW}@127.0.0.1/x")
    with pytest.raises(ValueError, match="holds a password"):
        check_database_url("mysql://root:pw@127.0.0.1/x")
