"""`schemalog init --config [PATH] [--force]`: a commented schemalog.toml that loads and migrates as written."""

from __future__ import annotations

import json
import sqlite3
import tomllib
from pathlib import Path
from typing import Any

import pytest

from service.cli import main
from service.config import CONFIG_TEMPLATE, Config, DatabaseConfig, load_config


@pytest.fixture(autouse=True)
def _fresh_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test in an empty directory, with no store or config named by the environment."""
    monkeypatch.chdir(tmp_path)
    for name in ("SCHEMALOG_CONFIG", "SCHEMALOG_STORE", "SCHEMALOG_STREAM"):
        monkeypatch.delenv(name, raising=False)


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def changeset(tmp_path: Path, name: str, events: list[dict[str, Any]]) -> str:
    path = tmp_path / name
    path.write_text(json.dumps({"message": name, "events": events}), encoding="utf-8")
    return str(path)


def test_init_config_writes_a_file_the_loader_reads(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "init", "--config")
    assert (code, err) == (0, "")
    assert out.splitlines() == ["config written: schemalog.toml", "store ready: sqlite:///schemalog.db"]
    assert (tmp_path / "schemalog.toml").read_text(encoding="utf-8") == CONFIG_TEMPLATE
    assert (tmp_path / "schemalog.db").is_file()
    config = load_config()  # ./schemalog.toml, as every command reads it
    assert config.store is None  # commented out: the embedded default
    assert config.databases == {
        "main": DatabaseConfig(url="sqlite:///app.db", stream="default", target="head", allow_destructive=False)
    }
    # the written values are the defaults, so that uncommenting nothing changes nothing
    assert config.databases["main"].lock_timeout == DatabaseConfig.model_fields["lock_timeout"].default


def test_every_setting_is_explained(tmp_path: Path) -> None:
    """A setting added to the loader and left out of the template fails here."""
    lines = CONFIG_TEMPLATE.splitlines()
    for field in Config.model_fields:  # a key, or a table of tables ([databases.main])
        assert any(line.lstrip("# ").startswith((f"{field} =", f"[{field}.")) for line in lines), field
        assert any(line.startswith((f"# {field}", f"# [{field}.")) for line in lines), f"{field} has no comment"
    for field in DatabaseConfig.model_fields:
        assert any(line.startswith(f"{field} =") for line in lines), field  # set, not only commented
        assert any(line.startswith(f"# {field}") for line in lines), f"{field} has no comment"
    # the commented second database is valid too, once uncommented
    uncommented = CONFIG_TEMPLATE.replace("# [databases.reporting]", "[databases.reporting]").replace(
        '# url = "postgresql://app', 'url = "postgresql://app'
    )
    uncommented = uncommented.replace('# stream = "app"', 'stream = "app"')
    both = Config.model_validate(tomllib.loads(uncommented))
    assert sorted(both.databases) == ["main", "reporting"]
    assert both.databases["reporting"].stream == "app"


def test_an_existing_file_is_kept_unless_forced(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mine = '[databases.mine]\nurl = "sqlite:///mine.db"\n'
    (tmp_path / "schemalog.toml").write_text(mine, encoding="utf-8")
    code, out, err = cli(capsys, "init", "--config")
    assert (code, out) == (2, "")
    assert err == "schemalog: error: schemalog.toml already exists; --force overwrites it\n"
    assert (tmp_path / "schemalog.toml").read_text(encoding="utf-8") == mine
    assert not (tmp_path / "schemalog.db").exists()  # refused before the store was made

    code, out, err = cli(capsys, "init", "--config", "--force")
    assert (code, err) == (0, "")
    assert (tmp_path / "schemalog.toml").read_text(encoding="utf-8") == CONFIG_TEMPLATE
    assert sorted(load_config().databases) == ["main"]


def test_a_path_of_ones_own(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "conf").mkdir()
    code, out, err = cli(capsys, "init", "--config", "conf/db.toml")
    assert (code, err) == (0, "")
    assert out.splitlines()[0] == "config written: conf/db.toml"
    assert load_config("conf/db.toml").databases["main"].url == "sqlite:///app.db"
    assert not (tmp_path / "schemalog.toml").exists()
    # the global --config (the file read) is not init's --config (the file written)
    code, _out, err = cli(capsys, "--config", "conf/db.toml", "init", "--config", "conf/db.toml")
    assert code == 2 and "conf/db.toml already exists" in err
    code, _out, err = cli(capsys, "init", "--config", "no/such/folder/x.toml")
    assert code == 2
    assert err.count("\n") == 1 and "cannot write no/such/folder/x.toml" in err


def test_migrate_with_the_written_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The example database as written: a real SQLite file, migrated forward, refused a drop, then allowed."""
    assert cli(capsys, "init", "--config")[0] == 0
    columns = [{"name": n, "type": "text"} for n in ("a", "b", "c")]
    first = [{"type": "table_created", "table": "t", "columns": [{"name": "id", "type": "bigint"}, *columns]}]
    assert cli(capsys, "append", changeset(tmp_path, "one.json", first))[0] == 0

    code, out, err = cli(capsys, "migrate")  # the only database of schemalog.toml
    assert code == 0, err
    assert out.startswith("main: applied default 0 -> 1")
    with sqlite3.connect(tmp_path / "app.db") as db:
        assert [r[1] for r in db.execute("PRAGMA table_info(t)")] == ["id", "a", "b", "c"]

    drops = [{"type": "column_dropped", "table": "t", "column": n} for n in ("a", "b")]
    assert cli(capsys, "append", changeset(tmp_path, "two.json", drops))[0] == 0  # v2, v3
    code, out, err = cli(capsys, "migrate", "--database", "main")
    assert (code, out) == (2, "")
    assert "refused: 2 destructive changes need --allow-destructive: v2: drop column t.a" in err
    assert "; v3: drop column t.b" in err
    code, out, err = cli(capsys, "migrate", "--allow-destructive")
    assert code == 0, err
    assert out.startswith("main: applied default 1 -> 3")

    drop = [{"type": "column_dropped", "table": "t", "column": "c"}]
    assert cli(capsys, "append", changeset(tmp_path, "three.json", drop))[0] == 0  # v4
    code, out, err = cli(capsys, "migrate")
    assert (code, out) == (2, "")
    assert "refused: 1 destructive change needs --allow-destructive: v4: drop column t.c" in err
    # the policy in the file lets it through without the flag
    text = (tmp_path / "schemalog.toml").read_text(encoding="utf-8")
    assert text.count("allow_destructive = false") == 1
    (tmp_path / "schemalog.toml").write_text(
        text.replace("allow_destructive = false", "allow_destructive = true"), encoding="utf-8"
    )
    code, out, err = cli(capsys, "migrate")
    assert code == 0, err
    assert out.startswith("main: applied default 3 -> 4")
    with sqlite3.connect(tmp_path / "app.db") as db:
        assert [r[1] for r in db.execute("PRAGMA table_info(t)")] == ["id"]
