"""A small blog's SQLAlchemy models through six versions, on PostgreSQL, MariaDB and SQLite, forward and back.

tests.model_history.blog(dialect, n) is each version (users, posts, tags, comments) with DateTime server
defaults (now(), CURRENT_TIMESTAMP), JSON, an Enum, a Computed column, an Identity, a collation, a deferrable
foreign key, a partial and an expression index, a NOT NULL column added with --default and a column renamed
with --rename. A dialect's models leave out what the dialect lacks (model_history.BLOG_LACKS: MariaDB has no
partial or expression index, no deferrable constraint, no identity options; SQLite no native enum, no identity
options), so each dialect has its own log and the comparison holds where the dialect has the feature.

Each version: makemigrations records it, ``--check`` then finds nothing, migrate builds it, Alembic's
compare_metadata finds no difference between the models and the database, and the rows inserted so far are
all there (a rename, a type's new value and added columns keep them; the added NOT NULL columns hold the value
given with --default). Then the database is migrated back one version at a time to 0: after each step
compare_metadata again finds nothing, and the rows are kept wherever the step keeps their table.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from service.cli import main
from service.reconciler.targets import dialect_of
from tests.model_history import BLOG_DESTRUCTIVE, BLOG_FILLS, BLOG_HINTS, BLOG_LACKS, blog
from tests.sqlexec import engine_for, run_sql

VERSIONS = range(1, 7)


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def alembic_differences(url: str, md: sa.MetaData) -> list[Any]:
    engine = engine_for(url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(
                conn, opts={"compare_type": True, "include_name": lambda name, kind, parent: name != "schemalog_marker"}
            )
            return list(compare_metadata(ctx, md))
    finally:
        engine.dispose()


def rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in run_sql(url, sql)]


def tables(url: str) -> set[str]:
    engine = engine_for(url)
    try:
        return set(sa.inspect(engine).get_table_names()) - {"schemalog_marker"}
    finally:
        engine.dispose()


INSERTS: dict[int, list[str]] = {
    1: [
        "INSERT INTO users (email, name) VALUES ('ada@example.org', 'Ada')",
        "INSERT INTO posts (author_id, title) SELECT id, 'Hello' FROM users",
    ],
    2: ["INSERT INTO tags (label) VALUES ('sql')", "INSERT INTO post_tags (post_id, tag_id) VALUES (1, 1)"],
    3: ["INSERT INTO comments (post_id, body, upvotes, downvotes) VALUES (1, 'Nice', 5, 1)"],
    4: [
        "INSERT INTO posts (author_id, title, body, status, slug) SELECT id, 'Second', 'text', 'published', 'second'"
        " FROM users"
    ],
}
"""Rows inserted once version n is migrated (the users' id comes from its identity)."""


def check_rows(url: str, dialect: str, n: int, inserted: int) -> None:
    """The rows at version ``n`` after the inserts of versions up to ``inserted`` (each kept or gone with its
    table or column, as the change between them says)."""
    if n == 0:
        assert tables(url) == set()
        return
    first_id = 1 if "identity_options" in BLOG_LACKS[dialect] else 1000  # sa.Identity(start=1000)
    name = "display_name" if n >= 5 else "name"
    assert rows(url, f"SELECT id, email, {name} FROM users") == [(first_id, "ada@example.org", "Ada")], n
    posts = [(1, "Hello")] + ([(2, "Second")] if inserted >= 4 else [])
    assert rows(url, "SELECT id, title FROM posts ORDER BY id") == posts, n
    body = "" if inserted >= 5 else None  # NULL until v5 made the column NOT NULL, filling it with ''
    assert rows(url, "SELECT body FROM posts WHERE id = 1") == [(body,)], n
    if n >= 2:
        statuses = [("draft",)] + ([("published",)] if inserted >= 4 else [])
        assert rows(url, "SELECT status FROM posts ORDER BY id") == statuses, n
        assert rows(url, "SELECT t.label, pt.post_id FROM tags t JOIN post_tags pt ON pt.tag_id = t.id") == [
            ("sql", 1)
        ], n
    if n >= 3:
        assert rows(url, "SELECT post_id, body, score FROM comments") == [(1, "Nice", 4)], n
    if n >= 4:
        slugs = [("untitled",)] + ([("second",)] if inserted >= 4 else [])  # v4's --default for the rows there
        assert rows(url, "SELECT slug FROM posts ORDER BY id") == slugs, n


def recorded_version(out: str) -> int:
    match = re.search(r" v[0-9]+\.\.v([0-9]+):", out)
    assert match is not None, out
    return int(match.group(1))


@pytest.fixture
def log_url(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    url = f"sqlite:///{tmp_path / 'log.db'}"
    assert cli(capsys, "--store", url, "init")[0] == 0
    return url


@pytest.mark.slow
@pytest.mark.parametrize("dialect", ["postgresql", "mysql", "sqlite"])
def test_blog_through_six_versions_and_back(
    dialect: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    log_url: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if dialect == "sqlite":
        url = f"sqlite:///{tmp_path / 'blog.db'}"
    else:
        url = request.getfixturevalue("pg_url" if dialect == "postgresql" else "mariadb_url")
    assert dialect_of(url) == dialect
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # not a terminal: renames and one-off values given as flags
    store = ["--store", log_url]
    versions: dict[int, int] = {0: 0}
    for n in VERSIONS:
        models = f"tests.model_history:blog_{dialect}_v{n}"
        args = [*store, "makemigrations", "--models", models, "--stream", "blog", "-m", f"blog v{n}"]
        args += [a for hint in BLOG_HINTS.get(n, []) for a in ("--rename", hint)]
        args += [a for fill in BLOG_FILLS.get(n, []) for a in ("--default", fill)]
        code, out, err = cli(capsys, *args)
        assert code == 0, (n, out, err)
        versions[n] = recorded_version(out)
        code, out, err = cli(capsys, *store, "makemigrations", "--models", models, "--stream", "blog", "--check")
        assert code == 0 and "No changes" in out, (n, out, err)
        migrate = [*store, "migrate", "--url", url, "--stream", "blog"]
        code, out, err = cli(capsys, *migrate, *(["--allow-destructive"] if n in BLOG_DESTRUCTIVE else []))
        assert code == 0, (n, out, err)
        assert alembic_differences(url, blog(dialect, n)) == [], n
        if n in INSERTS:
            run_sql(url, *INSERTS[n])
        check_rows(url, dialect, n, n)
        if n == 6 and "enum" not in BLOG_LACKS[dialect]:
            # the value the enum gained is usable; it is put back before going back past v6 (a value
            # taken out of its type takes no rows with it: migrating back refuses while a row holds it)
            run_sql(url, "UPDATE posts SET status = 'archived' WHERE id = 2")
            assert rows(url, "SELECT status FROM posts WHERE id = 2") == [("archived",)]
            run_sql(url, "UPDATE posts SET status = 'published' WHERE id = 2")
    for n in reversed(range(0, 6)):
        migrate = [*store, "migrate", "--url", url, "--stream", "blog", "--to", str(versions[n])]
        code, out, err = cli(capsys, *migrate, "--allow-destructive")
        assert code == 0, (n, out, err)
        if n:
            assert alembic_differences(url, blog(dialect, n)) == [], n
        check_rows(url, dialect, n, 6)
