"""Authoring: makemigrations from ten versions of SQLAlchemy models, renames, import, on three dialects.

After each makemigrations + migrate, Alembic's compare_metadata between the models and the live database
finds no difference; data in renamed columns and tables survives.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from service.cli import main
from tests.model_history import DESTRUCTIVE, HINTS, version
from tests.sqlexec import engine_for, run_sql


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def alembic_differences(url: str, md: sa.MetaData) -> list[object]:
    engine = engine_for(url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(
                conn, opts={"compare_type": True, "include_name": lambda name, kind, parent: name != "schemalog_marker"}
            )
            return list(compare_metadata(ctx, md))
    finally:
        engine.dispose()


@pytest.fixture
def log_url(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    url = f"sqlite:///{tmp_path / 'log.db'}"
    assert cli(capsys, "--store", url, "init")[0] == 0  # only init makes a store
    return url


@pytest.mark.slow
def test_ten_model_versions_migrate_to_what_alembic_sees(
    log_url: str, target_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # not a terminal: renames need hints
    for n in range(1, 11):
        models = f"tests.model_history:v{n}"
        args = ["--store", log_url, "makemigrations", "--models", models, "--stream", "app", "-m", f"v{n}"]
        for hint in HINTS.get(n, []):
            args += ["--rename", hint]
        code, out, err = cli(capsys, *args)
        assert code == 0, (n, out, err)
        assert "recorded" in out, (n, out)
        code, out, err = cli(capsys, "--store", log_url, "makemigrations", "--models", models, "--check")
        assert code == 0 and "No changes" in out, (n, out, err)
        migrate = ["--store", log_url, "migrate", "--url", target_url, "--stream", "app"]
        if n in DESTRUCTIVE:
            migrate.append("--allow-destructive")
        code, out, err = cli(capsys, *migrate)
        assert code == 0, (n, out, err)
        assert alembic_differences(target_url, version(n)) == [], n
        if n == 1:
            run_sql(
                target_url,
                "INSERT INTO authors (id, name, mail) VALUES (1, 'Le Guin', 'ursula@example.org')",
                "INSERT INTO books (id, title, author_id, price) VALUES (7, 'The Dispossessed', 1, 12.5)",
            )
        email = "email" if n >= 3 else "mail"
        books = "titles" if n >= 6 else "books"
        assert [tuple(r) for r in run_sql(target_url, f"SELECT id, {email} FROM authors")] == [
            (1, "ursula@example.org")
        ], n
        assert [tuple(r) for r in run_sql(target_url, f"SELECT id, title FROM {books}")] == [(7, "The Dispossessed")], n


def test_renames_without_hint_are_refused_listing_candidates(
    log_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert cli(capsys, "--store", log_url, "makemigrations", "--models", "tests.model_history:v2")[0] == 0
    before = cli(capsys, "--store", log_url, "history", "--json")[1]
    code, out, err = cli(capsys, "--store", log_url, "makemigrations", "--models", "tests.model_history:v3")
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "authors.mail -> email" in err and "--rename authors.mail=email" in err, err
    assert cli(capsys, "--store", log_url, "history", "--json")[1] == before  # nothing written
    # --check says they differ (exit 1) and names the candidate, without asking
    code, out, _ = cli(capsys, "--store", log_url, "makemigrations", "--models", "tests.model_history:v3", "--check")
    assert code == 1 and "possible renames" in out
    # --no-rename: a drop and an add, said explicitly
    code, out, _ = cli(
        capsys, "--store", log_url, "makemigrations", "--models", "tests.model_history:v3", "--no-rename", "--dry-run"
    )
    assert code == 0 and '"column_dropped"' in out and '"column_added"' in out
    # a table rename, too
    for n in (3, 4, 5):
        hints = [a for h in HINTS.get(n, []) for a in ("--rename", h)]
        assert (
            cli(capsys, "--store", log_url, "makemigrations", "--models", f"tests.model_history:v{n}", *hints)[0] == 0
        )
    code, _, err = cli(capsys, "--store", log_url, "makemigrations", "--models", "tests.model_history:v6")
    assert code == 2 and "--rename books=titles" in err, err


def test_nothing_to_do_appends_nothing(log_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(capsys, "--store", log_url, "makemigrations", "--models", "tests.model_history:v1")[0] == 0
    code, out, _ = cli(capsys, "--store", log_url, "makemigrations", "--models", "tests.model_history:v1")
    assert code == 0 and "No changes detected" in out
    history = cli(capsys, "--store", log_url, "history", "--json")[1]
    assert history.count('"changeset_id"') >= 1
    code, out, err = cli(capsys, "--store", log_url, "makemigrations", "--models", "tests.nowhere:models")
    assert code == 2 and "Traceback" not in err
