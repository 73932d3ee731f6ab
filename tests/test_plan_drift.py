"""A plan reads the database as the run would (issue 13, found 5): on a drifted database `migrate --plan`
and `sqlmigrate --database` report the drift `migrate` stops on, with its exit code (1), not "0 statements"."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from service.reconciler.apply import outcome_stream
from tests.sqlexec import run_sql
from tests.test_sql_run import PEOPLE, append, cli, column_names, migrate


@pytest.fixture
def log_url(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    url = f"sqlite:///{tmp_path / 'log.db'}"
    assert cli(["--store", url, "init"], capsys)[0] == 0
    return url


def outcomes(log_url: str, url: str, capsys: pytest.CaptureFixture[str]) -> list[str]:
    """The types of the outcome events recorded in the database's own stream."""
    code, out, err = cli(["--store", log_url, "history", "--stream", outcome_stream(url), "--json"], capsys)
    assert code == 0, err
    return [r["type"] for r in json.loads(out)]


def drifted(log_url: str, url: str, capsys: pytest.CaptureFixture[str]) -> None:
    """v1 migrated; a column added by hand behind the log's back; v2 pending."""
    append(log_url, capsys, PEOPLE)
    assert migrate(log_url, url, capsys)[0] == 0
    run_sql(url, "ALTER TABLE people ADD COLUMN by_hand integer")
    append(log_url, capsys, {"type": "column_added", "table": "people", "column": {"name": "age", "type": "integer"}})


def drift_lines(err: str) -> list[str]:
    return [line.strip() for line in err.splitlines() if line.strip().startswith("drift:")]


def test_a_plan_on_a_drifted_database_reports_what_migrate_would_stop_on(
    log_url: str, target_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    drifted(log_url, target_url, capsys)
    code, out, err = migrate(log_url, target_url, capsys, "--plan")
    planned = drift_lines(err)
    assert code == 1, (out, err)
    assert out == "", "no plan is shown: the run would send none of it"
    assert planned and any("by_hand" in line for line in planned), err
    assert "migrate would stop here" in err

    config = tmp_path / "schemalog.toml"
    config.write_text(f'[databases.main]\nurl = "{target_url}"\nstream = "app"\n', encoding="utf-8")
    code, out, err = cli(["--store", log_url, "--config", str(config), "sqlmigrate", "--database", "main"], capsys)
    assert code == 1, (out, err)
    assert drift_lines(err) == planned

    code, out, err = migrate(log_url, target_url, capsys, "--plan", "--json")
    assert code == 1
    (outcome,) = json.loads(out)
    assert outcome["status"] == "drift" and outcome["drift"] == [line.removeprefix("drift: ") for line in planned]
    assert outcome["statements"], "the statements the run would send are still in the JSON"

    # the run itself stops on the same lines with the same code, and records it; the plans recorded nothing
    before = outcomes(log_url, target_url, capsys)
    assert before == ["migration_applied"]
    code, out, err = migrate(log_url, target_url, capsys)
    assert code == 1 and drift_lines(err) == planned, err
    assert outcomes(log_url, target_url, capsys) == [*before, "drift_found"]
    assert "age" not in column_names(target_url)


def test_a_plan_on_a_database_that_matches_still_shows_its_statements(
    log_url: str, target_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    append(log_url, capsys, PEOPLE)
    assert migrate(log_url, target_url, capsys)[0] == 0
    append(log_url, capsys, {"type": "column_added", "table": "people", "column": {"name": "age", "type": "integer"}})
    code, out, err = migrate(log_url, target_url, capsys, "--plan")
    assert code == 0, err
    assert "(1 statements)" in out and "-- v2 column_added" in out, out
    assert drift_lines(err) == []
    code, out, err = cli(["--store", log_url, "sqlmigrate", "--url", target_url, "--stream", "app"], capsys)
    assert code == 0 and "-- v2 column_added" in out, err


def test_a_plan_on_tables_without_a_marker_is_refused_as_migrate_is(
    log_url: str, target_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    append(log_url, capsys, PEOPLE)
    run_sql(target_url, "CREATE TABLE someone_elses (id integer)")
    for more in ([], ["--plan"]):
        code, _out, err = migrate(log_url, target_url, capsys, *more)
        assert code == 2 and "no schemalog marker" in err and len(err.strip().splitlines()) == 1, (more, err)


def test_sqlmigrate_for_a_dialect_reads_no_database(
    log_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Text only: the configured database is not even reachable, and it does not matter."""
    append(log_url, capsys, PEOPLE)
    config = tmp_path / "schemalog.toml"
    config.write_text('[databases.main]\nurl = "postgresql://nobody@127.0.0.1:1/none"\nstream = "app"\n')
    code, out, err = cli(["--store", log_url, "--config", str(config), "sqlmigrate", "--dialect", "sqlite"], capsys)
    assert code == 0, err
    assert "CREATE TABLE" in out and "-- v1 table_created" in out
