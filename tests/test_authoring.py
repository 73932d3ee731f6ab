"""Authoring: makemigrations from ten versions of SQLAlchemy models, renames, import, on three dialects.

After each makemigrations + migrate, Alembic's compare_metadata between the models and the live database
finds no difference; data in renamed columns and tables survives.
"""

from __future__ import annotations

import io
import json
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from events.model import Generated, IdentityOptions, IndexElement
from service.authoring.models import ModelError, metadata_schema
from service.cli import main
from tests.model_history import DESTRUCTIVE, HINTS, blog, version
from tests.servers import mariadb_database_url, postgres_database_url
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


# --------------------------------------------------------------------------- what the models say


def test_models_say_what_the_catalogue_can_say() -> None:
    schema = metadata_schema(blog("postgresql", 6))
    users, posts, comments = schema.tables["users"], schema.tables["posts"], schema.tables["comments"]
    post_tags = schema.tables["post_tags"]
    # the clock, however the models spell it, in the one spelling every dialect reads alike
    assert users.column("created_at").default == "current_timestamp"  # func.now()
    assert posts.column("published_at").default == "current_timestamp"  # text("CURRENT_TIMESTAMP")
    assert comments.column("created_at").default == "current_timestamp"  # func.current_timestamp()
    assert str(posts.column("status").type) == "enum:post_status"
    assert posts.column("status").default == "'draft'"
    assert schema.enums["post_status"].values == ("draft", "published", "archived")
    assert comments.column("score").generated == Generated(expression="upvotes - downvotes", stored=True)
    assert users.column("id").identity and users.column("id").identity_options == IdentityOptions(start=1000)
    assert users.column("email").collation == "C"
    assert users.primary_key_name == "users_primary"
    tag_fk = post_tags.constraint("post_tags_tag_fk")
    assert tag_fk is not None and tag_fk.deferrable and tag_fk.initially_deferred
    post_fk = post_tags.constraint("post_tags_post_fk")
    assert post_fk is not None and not post_fk.deferrable
    lower = users.index("users_email_lower_ix")
    assert lower is not None and lower.unique and lower.elements == (IndexElement(expression="lower(email)"),)
    v5 = metadata_schema(blog("postgresql", 5)).tables["posts"]
    partial = v5.index("posts_published_ix")
    assert partial is not None and partial.where == "status = 'published'" and partial.columns == ("published_at",)
    assert str(v5.column("meta").type) == "json"
    # where the dialect lacks the feature, its models leave it out
    assert metadata_schema(blog("sqlite", 6)).enums == {}
    assert metadata_schema(blog("mysql", 6)).tables["users"].index("users_email_lower_ix") is None


def test_models_index_options_and_expressions_rendered_alike_or_refused() -> None:
    md = sa.MetaData()
    t = sa.Table(
        "docs",
        md,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("title", sa.String(100)),
        sa.Column("words", sa.Integer),
        sa.Column("score", sa.Integer, sa.Computed(sa.column("words") * 2, persisted=False)),
        sa.CheckConstraint(sa.column("words") >= 0, name="docs_words_check"),
    )
    sa.Index("docs_title_ix", t.c.title, postgresql_using="hash", postgresql_ops={"title": "text_pattern_ops"})
    sa.Index("docs_cover_ix", t.c.words.desc(), postgresql_include=["title"], postgresql_where=t.c.words > 10)
    docs = metadata_schema(md).tables["docs"]
    assert docs.column("score").generated == Generated(expression="words * 2", stored=False)
    check = docs.constraint("docs_words_check")
    assert check is not None and check.expression == "words >= 0"  # literal bound, no table prefix
    title = docs.index("docs_title_ix")
    assert title is not None and title.method == "hash"
    assert title.elements == (IndexElement(column="title", opclass="text_pattern_ops"),)
    cover = docs.index("docs_cover_ix")
    assert cover is not None and cover.include == ("title",) and cover.where == "words > 10"
    assert cover.elements == (IndexElement(column="words", descending=True),)
    # a || b on PostgreSQL and SQLite is concat(a, b) on MySQL (where || is OR): refused, asking for text()
    bad = sa.MetaData()
    sa.Table("t", bad, sa.Column("a", sa.String(5)), sa.Column("b", sa.String(10), sa.Computed(sa.column("a") + "x")))
    with pytest.raises(ModelError, match=r"t\.b: Computed: the expression renders differently.*sa\.text"):
        metadata_schema(bad)
    unsafe = sa.MetaData()
    sa.Table("t", unsafe, sa.Column("a", sa.Integer), sa.CheckConstraint(sa.text("a > (SELECT 1)"), name="t_sub"))
    with pytest.raises(ModelError, match="sub-select"):
        metadata_schema(unsafe)


def test_makemigrations_creates_the_enum_before_its_table(log_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(
        capsys, "--store", log_url, "makemigrations", "--models", "tests.model_history:blog_postgresql_v2", "--dry-run"
    )
    assert code == 0, err
    types = [e["type"] for e in json.loads(out)["events"]]
    assert types[0] == "enum_created" and types.count("enum_created") == 1
    assert types.index("enum_created") < types.index("table_created")


# --------------------------------------------------------------------------- one-off values (Django's)


class Terminal(io.StringIO):
    """Answers typed at a terminal."""

    def isatty(self) -> bool:
        return True


def _notes_history(log_url: str, capsys: pytest.CaptureFixture[str]) -> str:
    return cli(capsys, "--store", log_url, "history", "--json")[1]


@pytest.fixture
def notes_log(log_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    code, out, err = cli(capsys, "--store", log_url, "makemigrations", "--models", "tests.model_history:notes_v1")
    assert code == 0, (out, err)
    return log_url


def test_not_null_column_without_default_refused_without_a_terminal(
    notes_log: str, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _notes_history(notes_log, capsys)
    code, out, err = cli(capsys, "--store", notes_log, "makemigrations", "--models", "tests.model_history:notes_v2")
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert "notes.slug" in err and "--default notes.slug=EXPR" in err, err  # added columns first
    code, out, err = cli(
        capsys,
        "--store",
        notes_log,
        "makemigrations",
        "--models",
        "tests.model_history:notes_v2",
        "--default",
        "notes.slug='untitled'",
    )
    assert code == 2 and "notes.body" in err and "--default notes.body=EXPR" in err, err
    for bad, says in (
        ("notes.body=(SELECT 1)", "sub-select"),
        ("notes.slug", "TABLE.COLUMN=EXPR"),
        ("notes.rank=1", "not a NOT NULL column added or made NOT NULL without a default"),
    ):
        code, out, err = cli(
            capsys,
            "--store",
            notes_log,
            "makemigrations",
            "--models",
            "tests.model_history:notes_v2",
            "--default",
            "notes.slug='untitled'",
            "--default",
            bad,
        )
        assert code == 2 and says in err and err.count("\n") == 1, (bad, err)
    assert _notes_history(notes_log, capsys) == before  # nothing written
    # --check lists the changes without asking (exit 1: they differ)
    code, out, _ = cli(
        capsys, "--store", notes_log, "makemigrations", "--models", "tests.model_history:notes_v2", "--check"
    )
    assert code == 1 and "column_added notes.slug" in out


def test_one_off_values_given_as_flags_are_carried_by_the_events(
    notes_log: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(
        capsys,
        "--store",
        notes_log,
        "makemigrations",
        "--models",
        "tests.model_history:notes_v2",
        "--default",
        "notes.slug='untitled'",
        "--default",
        "notes.body=''",
    )
    assert code == 0, err
    events = json.loads(_notes_history(notes_log, capsys))
    slug = next(e for e in events if e["type"] == "column_added" and e["column"]["name"] == "slug")
    assert slug["fill"] == "'untitled'" and "default" not in slug["column"]  # a one-off value, not a default
    rank = next(e for e in events if e["type"] == "column_added" and e["column"]["name"] == "rank")
    assert "fill" not in rank and rank["column"]["default"] == "0"  # its default fills the rows
    body = next(e for e in events if e["type"] == "column_altered")
    assert body["column"] == "body" and body["nullable"] is False and body["fill"] == "''"
    code, out, _ = cli(
        capsys, "--store", notes_log, "makemigrations", "--models", "tests.model_history:notes_v2", "--check"
    )
    assert code == 0 and "No changes" in out


def test_one_off_values_asked_on_a_terminal_until_they_are_expressions(
    notes_log: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", Terminal("\n"))  # an empty answer stops, writing nothing
    before = _notes_history(notes_log, capsys)
    code, out, err = cli(capsys, "--store", notes_log, "makemigrations", "--models", "tests.model_history:notes_v2")
    assert code == 2 and "stopped at notes.slug" in err and "nothing written" in err
    assert _notes_history(notes_log, capsys) == before
    monkeypatch.setattr("sys.stdin", Terminal("1; DROP TABLE notes\n'none'\nlower('Untitled')\n"))
    code, out, err = cli(capsys, "--store", notes_log, "makemigrations", "--models", "tests.model_history:notes_v2")
    assert code == 0, (out, err)
    assert out.count("notes.slug is NOT NULL without a default") == 2, out  # asked again after the bad answer
    assert out.count("notes.body is NOT NULL without a default") == 1, out
    assert "refused" in out and "DROP" in out  # the reason the first answer was not taken
    events = json.loads(_notes_history(notes_log, capsys))
    slug = next(e for e in events if e["type"] == "column_added" and e["column"]["name"] == "slug")
    assert slug["fill"] == "'none'"
    assert next(e for e in events if e["type"] == "column_altered")["fill"] == "lower('Untitled')"


# --------------------------------------------------------------------------- import keeps the database's text


def test_import_records_checks_as_the_database_writes_them(
    log_url: str, target_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Introspection's canonical form of a check (``code~~'a%'andqty>0``) is no expression: import records
    the database's own text, literals' case kept, and it rebuilds the same check elsewhere."""
    run_sql(
        target_url,
        "CREATE TABLE items (id integer NOT NULL PRIMARY KEY, code varchar(10) NOT NULL, qty integer NOT NULL,"
        " CONSTRAINT items_code_check CHECK (code LIKE 'A%' AND qty > 0))",
    )
    code, out, err = cli(capsys, "--store", log_url, "import", "--url", target_url, "--stream", "shop")
    assert code == 0 and "warning" not in err, (out, err)
    history = json.loads(cli(capsys, "--store", log_url, "history", "--json")[1])
    found = [c for e in history for c in [*e.get("constraints", []), e.get("constraint", {})] if c.get("kind")]
    check = next(c for c in found if c["kind"] == "check")
    assert "'A%'" in check["expression"] and " " in check["expression"], check  # as written back, not squashed
    if not target_url.startswith("sqlite"):  # drift: only the new check is recorded, in the database's text
        run_sql(target_url, "ALTER TABLE items ADD CONSTRAINT items_qty_max CHECK (qty < 1000 OR code = 'Bulk')")
        code, out, err = cli(capsys, "--store", log_url, "import", "--url", target_url, "--stream", "shop")
        assert code == 0 and "drift adopted: 1 events" in out and "warning" not in err, (out, err)
        added = json.loads(cli(capsys, "--store", log_url, "history", "--json")[1])[-1]
        assert added["type"] == "constraint_added" and "'Bulk'" in added["constraint"]["expression"], added
    if target_url.startswith("sqlite"):
        rebuilt: Any = nullcontext(f"sqlite:///{tmp_path / 'rebuilt.db'}")
    elif target_url.startswith("postgresql"):
        rebuilt = postgres_database_url()
    else:
        rebuilt = mariadb_database_url()
    with rebuilt as url:
        code, out, err = cli(capsys, "--store", log_url, "migrate", "--url", url, "--stream", "shop")
        assert code == 0, (out, err)
        run_sql(url, "INSERT INTO items (id, code, qty) VALUES (1, 'Ab', 2)")
        with pytest.raises(sa.exc.DBAPIError):  # the check holds there too
            run_sql(url, "INSERT INTO items (id, code, qty) VALUES (2, 'Ab', 0)")
