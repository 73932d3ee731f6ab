"""SQL injection through the log (issue 12, item 1): refused at append, and refused by migrate before
anything runs when written into the store behind append's back.

Every hostile text is tried as a column default (``column_added``, ``table_created``), through
``column_altered`` and as a check expression: ``schemalog append`` refuses each (exit 2, one line naming
the event and the expression, nothing written). Then each is forged into a copy of a log (tests.forge:
a valid hash chain, no validation) and ``schemalog migrate`` is run against a PostgreSQL, a MariaDB and a
SQLite database, each holding a ``victim`` table with rows: refused (exit 2, naming the event version
and the object), and each database is as it was, no role ``pwned``, no file written.
"""

from __future__ import annotations

import asyncio
import io
import json
import shutil
import sqlite3
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from events.expressions import check_expression, describe, examine
from events.store import open_store
from service.cli import main
from service.reconciler.apply import MigrateRequest, Outcome, migrate
from service.reconciler.marker import Marker
from service.reconciler.plan import Plan, Step
from service.reconciler.statements import UnsafeStatement, check_planned, check_statement
from service.reconciler.targets import open_target
from tests.forge import forge
from tests.servers import mariadb_database_url, postgres_database_url
from tests.sqlexec import engine_for, run_sql
from tests.test_store import dump

PWN_FILE = f"/tmp/schemalog_pwned_{uuid.uuid4().hex[:12]}"
"""Where a COPY ... TO default would make the PostgreSQL server write (it runs on this machine)."""

ISSUE = [
    ("stacked-commit-drop-role", "0; COMMIT; DROP TABLE victim; CREATE ROLE pwned SUPERUSER LOGIN"),
    ("copy-to-file", f"0; COPY (SELECT 1) TO '{PWN_FILE}'"),
    ("check-closed-early", "1=1); DROP TABLE users; --"),
]

HOSTILE = [
    # stacked statements
    ("stacked-drop", "0; DROP TABLE victim"),
    ("stacked-after-call", "now(); DROP TABLE victim"),
    ("stacked-role", "1; CREATE ROLE pwned SUPERUSER LOGIN"),
    ("stacked-in-parens", "(0); DELETE FROM victim"),
    ("stacked-trailing-semicolon", "0;"),
    ("stacked-reset-role", "CURRENT_USER; RESET ROLE"),
    ("stacked-copy-table", f"0; COPY victim TO '{PWN_FILE}'"),
    # comments
    ("comment-dash", "0 -- the rest is gone"),
    ("comment-dash-newline", "0 --\n, pwned text"),
    ("comment-block", "0 /* hidden */"),
    ("comment-unterminated", "0 /* never closed"),
    ("comment-dash-no-space", "0 --1"),
    # dollar quoting (PostgreSQL)
    ("dollar-empty-tag", "$$ x $$"),
    ("dollar-tag", "$q$; DROP TABLE victim; $q$"),
    ("dollar-schemalog-tag", "$schemalog$ END $schemalog$"),
    ("dollar-param", "$1"),
    # unbalanced parentheses: closing the DDL's own
    ("close-paren", "0)"),
    ("open-paren", "(0"),
    ("close-twice", "1))"),
    ("spill-into-table", "0) , pwned text DEFAULT (pg_read_file('/etc/passwd')"),
    ("clause-from", "1) FROM victim WHERE (1"),
    ("two-expressions", "1), (2"),
    ("deep-nesting", "(" * 80 + "1" + ")" * 80),
    # COPY and DO
    ("copy-alone", f"COPY victim TO '{PWN_FILE}'"),
    ("copy-program", "0; COPY victim TO PROGRAM 'touch /tmp/x'"),
    ("do-block", "DO $$ BEGIN PERFORM pg_sleep(1); END $$"),
    ("do-stacked", "0; DO $$ BEGIN DROP TABLE victim; END $$"),
    # set_config and friends
    ("set-config", "set_config('search_path', 'evil', false)"),
    ("set-config-in-text", "'a' || set_config('role', 'postgres', false)"),
    ("current-setting", "current_setting('data_directory')"),
    # sub-selects
    ("subselect", "(SELECT 1)"),
    ("subselect-roles", "(SELECT rolname FROM pg_roles LIMIT 1)"),
    ("exists", "EXISTS (SELECT 1 FROM victim)"),
    ("in-subselect", "1 IN (SELECT id FROM victim)"),
    ("array-subselect", "ARRAY(SELECT name FROM victim)"),
    ("subselect-in-call", "lower((SELECT name FROM victim LIMIT 1))"),
    ("union", "1 UNION SELECT 2"),
    # functions with side effects (PostgreSQL)
    ("pg-sleep", "pg_sleep(10)"),
    ("pg-sleep-qualified", "pg_catalog.pg_sleep(10)"),
    ("pg-read-file", "pg_read_file('/etc/passwd')"),
    ("pg-ls-dir", "pg_ls_dir('.')"),
    ("lo-import", "lo_import('/etc/passwd')"),
    ("lo-export", f"lo_export(1, '{PWN_FILE}')"),
    ("dblink", "dblink_exec('dbname=postgres', 'DROP TABLE victim')"),
    ("query-to-xml", "query_to_xml('DROP TABLE victim', true, true, '')"),
    ("terminate-backend", "pg_terminate_backend(1)"),
    ("advisory-lock", "pg_advisory_lock(1)"),
    ("setval", "setval('victim_seq', 1)"),
    ("nextval-subselect", "nextval((SELECT 'victim_seq'))"),
    ("function-of-other-schema", "public.evil()"),
    ("quoted-function-name", '"NOW"()'),
    ("aggregate", "count(*)"),
    ("window", "now() OVER ()"),
    ("cast-of-call", "CAST(pg_sleep(1) AS text)"),
    ("call-in-operand", "'a' || pg_read_file('/etc/passwd')"),
    # MySQL / MariaDB
    ("mysql-backslash-quote", "'a\\'; DROP TABLE victim; -- '"),
    ("mysql-hash-comment", "1 # the rest"),
    ("mysql-executable-comment", "/*! 1), ADD COLUMN pwned int DEFAULT (1 */ 0"),
    ("mysql-versioned-comment", "0 /*!50000 , ADD COLUMN pwned int */"),
    ("mysql-user-variable", "@x := 1"),
    ("mysql-session-variable", "@@global.read_only"),
    ("mysql-sleep", "sleep(10)"),
    ("mysql-benchmark", "benchmark(100000000, md5('x'))"),
    ("mysql-load-file", "load_file('/etc/passwd')"),
    ("mysql-get-lock", "get_lock('x', 10)"),
    ("mysql-into-outfile", f"0 INTO OUTFILE '{PWN_FILE}'"),
    ("mysql-placeholder", "?"),
    ("mysql-database", "database()"),
    ("mysql-udf", "sys_exec('touch /tmp/x')"),
    # SQLite
    ("sqlite-load-extension", "load_extension('/tmp/evil.so')"),
    ("sqlite-attach", "1); ATTACH DATABASE '/tmp/pwned.db' AS pwn; --"),
    ("sqlite-attach-alone", "ATTACH DATABASE '/tmp/pwned.db' AS pwn"),
    ("sqlite-pragma", "0); PRAGMA writable_schema = 1; --"),
    ("sqlite-pragma-alone", "PRAGMA writable_schema = 1"),
    ("sqlite-readfile", "readfile('/etc/passwd')"),
    ("sqlite-writefile", f"writefile('{PWN_FILE}', 'x')"),
    ("sqlite-fts3-tokenizer", "fts3_tokenizer('simple')"),
    ("sqlite-randomblob", "randomblob(1000000000)"),
    ("sqlite-master", "(SELECT sql FROM sqlite_master)"),
    # what no parser should see at all
    ("nul", "0\x00; DROP TABLE victim"),
    ("control-character", "0\x0b; DROP TABLE victim"),
    ("too-long", "'" + "a" * 5000 + "'"),
]

ALL = ISSUE + HOSTILE
ACCEPTED = [
    # what real schemas hold (Chinook, Pagila, Sakila imports, MariaDB's own forms) and the tests use,
    # with the dialects each is one expression in
    ("default", "nextval('film_film_id_seq'::regclass)", {"postgresql"}),
    ("default", "nextval('public.payment_payment_id_seq'::regclass)", {"postgresql"}),
    ("default", "now()", {"postgresql", "mysql", "sqlite"}),
    ("default", "'2006-02-15 09:34:33'::timestamp", {"postgresql"}),
    ("default", "'2007-06-01 00:00:00'::timestamp without time zone", {"postgresql"}),
    ("default", "CURRENT_TIMESTAMP", {"postgresql", "mysql", "sqlite"}),
    ("default", "current_timestamp()", {"mysql", "sqlite"}),
    ("default", "current_date", {"postgresql", "mysql", "sqlite"}),
    ("default", "'G'::mpaa_rating", {"postgresql"}),
    ("default", "'G'::public.mpaa_rating", {"postgresql"}),
    ("default", "ARRAY[]::text[]", {"postgresql"}),
    ("default", "'{}'::jsonb", {"postgresql"}),
    ("default", "('now'::text)::date", {"postgresql"}),
    ("default", "'abc'::character varying", {"postgresql"}),
    ("default", "gen_random_uuid()", {"postgresql", "mysql", "sqlite"}),
    ("default", "uuid()", {"postgresql", "mysql", "sqlite"}),
    ("default", "(datetime('now'))", {"postgresql", "mysql", "sqlite"}),
    ("default", "timezone('utc'::text, now())", {"postgresql"}),
    ("default", "now() + interval '1 day'", {"postgresql", "mysql", "sqlite"}),
    ("default", "'it''s'", {"postgresql", "mysql", "sqlite"}),
    ("default", "'a\\'b'", {"mysql"}),
    # one literal as MySQL reads it (a backslash escapes), so nothing to PostgreSQL or SQLite, which read more
    ("default", "'a\\') , ADD COLUMN pwned int DEFAULT (1'", {"mysql"}),
    ("default", "'50%'", {"postgresql", "mysql", "sqlite"}),
    ("default", "-1", {"postgresql", "mysql", "sqlite"}),
    ("default", "4.99", {"postgresql", "mysql", "sqlite"}),
    ("default", "true", {"postgresql", "mysql", "sqlite"}),
    ("default", "NULL", {"postgresql", "mysql", "sqlite"}),
    ("check", "(rating >= 0)", {"postgresql", "mysql", "sqlite"}),
    ("check", "`rating` >= 0", {"mysql", "sqlite"}),
    ("check", "code LIKE '%5%'", {"postgresql", "mysql", "sqlite"}),
    ("check", "total >= 0", {"postgresql", "mysql", "sqlite"}),
    ("check", "rating in ('G','PG','PG-13','R','NC-17')", {"postgresql", "mysql", "sqlite"}),
    (
        "check",
        "special_features is null or special_features like '%Trailers%' or special_features like '%Deleted Scenes%'",
        {"postgresql", "mysql", "sqlite"},
    ),
    (
        "check",
        "((payment_date >= '2007-06-01 00:00:00'::timestamp without time zone)"
        " AND (payment_date < '2007-07-01 00:00:00'::timestamp without time zone))",
        {"postgresql"},
    ),
    ("check", '"with space" > 0', {"postgresql", "mysql", "sqlite"}),
    ("check", "json_valid(`doc`)", {"mysql", "sqlite"}),
    ("check", "length(name) > 0 AND name IS NOT NULL", {"postgresql", "mysql", "sqlite"}),
]


# --------------------------------------------------------------------------- the parsers' verdicts


@pytest.mark.parametrize(("name", "text"), ALL, ids=[a[0] for a in ALL])
def test_every_hostile_text_is_refused_as_a_default_and_as_a_check(name: str, text: str) -> None:
    for kind in ("default", "check"):
        with pytest.raises(ValueError) as caught:
            check_expression(text, kind)  # type: ignore[arg-type]
        message = str(caught.value)
        assert "\n" not in message and describe(text, kind) in message, message  # type: ignore[arg-type]
        for dialect in ("postgresql", "mysql", "sqlite"):
            with pytest.raises(ValueError):
                check_expression(text, kind, dialect)  # type: ignore[arg-type]


@pytest.mark.parametrize(("kind", "text", "dialects"), ACCEPTED, ids=[a[1][:40] for a in ACCEPTED])
def test_what_real_schemas_hold_is_accepted_for_the_dialects_that_read_it(
    kind: str, text: str, dialects: set[str]
) -> None:
    check_expression(text, kind)  # type: ignore[arg-type]
    verdict = examine(text, kind)  # type: ignore[arg-type]
    assert verdict.refused is None and set(verdict.dialects) == dialects, verdict
    for dialect in {"postgresql", "mysql", "sqlite"} - dialects:
        with pytest.raises(ValueError, match=f"not one .* expression in {dialect}"):
            check_expression(text, kind, dialect)  # type: ignore[arg-type]


def test_a_column_is_no_default_and_nextval_is_for_defaults_only() -> None:
    with pytest.raises(ValueError, match="cannot refer to a column"):
        check_expression("id", "default")
    check_expression("id > 0", "check")
    with pytest.raises(ValueError, match="nextval"):
        check_expression("nextval('s') > 0", "check")
    with pytest.raises(ValueError, match="truth value"):
        check_expression("1 + 2", "check")


# --------------------------------------------------------------------------- statements


def test_statements_are_one_statement_of_their_planned_kind() -> None:
    check_planned("postgresql", 'CREATE TABLE "t" (id INTEGER DEFAULT 0)', "table_created")
    check_planned("postgresql", 'ALTER TABLE "t" RENAME COLUMN "a" TO "b"', "column_renamed")
    check_planned("postgresql", "COMMENT ON TABLE \"t\" IS 'a; b -- c'", "table_altered")
    check_planned("mysql", "ALTER TABLE `t` MODIFY COLUMN `c` TEXT DEFAULT 'a\\'; b'", "column_altered")
    check_planned("sqlite", 'INSERT INTO "_schemalog_rebuild" ("a") SELECT "a" FROM "t"', "column_dropped")
    # one literal as MySQL reads it: the backslash escapes the quote
    check_planned("mysql", "ALTER TABLE `t` COMMENT = 'a\\'; DROP TABLE victim; -- '", "table_altered")
    refused = [
        ("postgresql", 'CREATE TABLE "t" (id INTEGER DEFAULT 0); DROP TABLE victim', "table_created"),
        ("postgresql", 'ALTER TABLE "t" ALTER COLUMN "c" SET DEFAULT 0; COMMIT', "column_altered"),
        ("postgresql", 'CREATE TABLE "t" AS SELECT 1', "table_created"),  # not a CreateStmt
        ("postgresql", 'DROP TABLE "t"', "index_dropped"),  # a drop_table is not what index_dropped emits
        ("postgresql", "DROP INDEX victim", "table_dropped"),  # kind drop_table, but it drops an index
        ("postgresql", "DO $schemalog$ BEGIN DROP TABLE victim; END $schemalog$", "primary_key_set"),
        ("postgresql", "COPY victim TO '/tmp/x'", "table_created"),
        ("postgresql", "INSERT INTO victim SELECT 1", "column_added"),  # not a PostgreSQL kind
        ("mysql", "ALTER TABLE `t` ADD COLUMN `c` INT DEFAULT 0; DROP TABLE victim", "column_added"),
        ("mysql", "ALTER TABLE `t` ADD COLUMN `c` INT /*! , DROP COLUMN id */", "column_added"),
        ("mysql", "ALTER TABLE `t` ADD COLUMN `c` INT # , DROP COLUMN id", "column_added"),
        ("mysql", "ALTER TABLE `t` COMMENT = 'a\\\\'; DROP TABLE victim; -- '", "table_altered"),  # \\ then '
        ("sqlite", 'CREATE TABLE "t" (a INT); ATTACH DATABASE "x" AS y', "table_created"),
        ("sqlite", 'CREATE TABLE "t" (a INT) -- x', "table_created"),
        ("sqlite", "PRAGMA writable_schema = 1", "column_added"),
    ]
    for dialect, sql, event_type in refused:
        with pytest.raises(UnsafeStatement):
            check_planned(dialect, sql, event_type)
    with pytest.raises(UnsafeStatement):
        check_statement("postgresql", 'CREATE TABLE "t" (a int); DROP TABLE victim', "create_table")


# --------------------------------------------------------------------------- append refuses


def _cli(args: list[str], capsys: pytest.CaptureFixture[str], stdin: str | None = None) -> tuple[int, str, str]:
    if stdin is not None:
        import sys

        old = sys.stdin
        sys.stdin = io.StringIO(stdin)
        try:
            code = main(args)
        finally:
            sys.stdin = old
    else:
        code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


BASE = {
    "stream": "app",
    "actor": "alice",
    "events": [
        {
            "type": "table_created",
            "table": "victim",
            "columns": [
                {"name": "id", "type": "integer", "nullable": False},
                {"name": "name", "type": "varchar(50)"},
            ],
            "primary_key": ["id"],
        }
    ],
}


def placements(text: str) -> dict[str, tuple[dict[str, Any], str, str]]:
    """Each way an event holds SQL text: (the event, the object it names, the kind of expression)."""
    return {
        "column_added": (
            {"type": "column_added", "table": "victim", "column": {"name": "pwn", "type": "integer", "default": text}},
            "victim.pwn",
            "default",
        ),
        "column_altered": (
            {"type": "column_altered", "table": "victim", "column": "name", "default": text},
            "victim.name",
            "default",
        ),
        "constraint_added": (
            {
                "type": "constraint_added",
                "table": "victim",
                "constraint": {"name": "pwn_check", "kind": "check", "expression": text},
            },
            "victim constraint pwn_check",
            "check",
        ),
        "table_created": (
            {
                "type": "table_created",
                "table": "pwn",
                "columns": [{"name": "id", "type": "integer", "default": text}],
                "constraints": [{"name": "pwn_ok", "kind": "check", "expression": "id > 0"}],
            },
            "pwn.id",
            "default",
        ),
    }


def _append_refused(store_url: str, text: str, capsys: pytest.CaptureFixture[str]) -> None:
    before = dump(store_url)
    for place, (event, _what, kind) in placements(text).items():
        changeset = json.dumps({"stream": "app", "actor": "mallory", "events": [event]})
        code, out, err = _cli(["--store", store_url, "append", "-"], capsys, changeset)
        lines = err.strip().splitlines()
        assert code == 2, (place, out, err)
        assert len(lines) == 1 and lines[0].startswith("schemalog: error:"), (place, err)
        # a NUL is refused before the expression is read, by the rule for every string (its own message)
        named = "NUL" if "\x00" in text else describe(text, kind)  # type: ignore[arg-type]
        assert "events[0]" in lines[0] and named in lines[0], (place, lines[0])
        assert dump(store_url) == before, place


@pytest.mark.parametrize(("name", "text"), ISSUE, ids=[a[0] for a in ISSUE])
def test_the_issues_texts_are_refused_at_append(
    store_url: str, name: str, text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _cli(["--store", store_url, "init"], capsys)[0] == 0
    assert _cli(["--store", store_url, "append", "-"], capsys, json.dumps(BASE))[0] == 0
    _append_refused(store_url, text, capsys)


@pytest.fixture(scope="module")
def base_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A log with stream app at v1 (table victim), to be copied by each test that needs one."""
    path = tmp_path_factory.mktemp("injection") / "base.db"
    url = f"sqlite:///{path}"
    assert main(["--store", url, "init"]) == 0
    import sys

    old = sys.stdin
    sys.stdin = io.StringIO(json.dumps(BASE))
    try:
        assert main(["--store", url, "append", "-"]) == 0
    finally:
        sys.stdin = old
    return path


def _copy(base: Path, tmp_path: Path) -> str:
    path = tmp_path / "log.db"
    shutil.copyfile(base, path)
    return f"sqlite:///{path}"


@pytest.mark.parametrize(("name", "text"), HOSTILE, ids=[a[0] for a in HOSTILE])
def test_hostile_texts_are_refused_at_append(
    base_log: Path, tmp_path: Path, name: str, text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _append_refused(_copy(base_log, tmp_path), text, capsys)


# --------------------------------------------------------------------------- forged, then migrate


@dataclass
class Targets:
    """One database per dialect, each with the victim table (rows in it) and its marker at v1."""

    urls: dict[str, str]
    engines: dict[str, sa.Engine]
    before: dict[str, str]

    def fingerprint(self, dialect: str) -> str:
        return _fingerprint(dialect, self.engines[dialect])


def _fingerprint(dialect: str, engine: sa.Engine) -> str:
    """What a database holds, cheaply: its tables' definitions, the victim's rows, the markers."""
    with engine.connect() as conn:
        parts: list[Any] = []
        if dialect == "postgresql":
            parts.append(
                conn.execute(
                    sa.text(
                        "SELECT c.relname, c.relkind, a.attname, format_type(a.atttypid, a.atttypmod),"
                        " a.attnotnull, pg_get_expr(d.adbin, d.adrelid)"
                        " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                        " LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0"
                        " LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum"
                        " WHERE n.nspname = 'public' ORDER BY 1, 3"
                    )
                ).all()
            )
            parts.append(
                conn.execute(
                    sa.text(
                        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
                        " WHERE connamespace = 'public'::regnamespace ORDER BY 1"
                    )
                ).all()
            )
        elif dialect == "mysql":
            names = [r[0] for r in conn.execute(sa.text("SHOW TABLES")).all()]
            parts.extend(conn.execute(sa.text(f"SHOW CREATE TABLE `{n}`")).all() for n in sorted(names))
        else:
            parts.append(conn.execute(sa.text("SELECT type, name, sql FROM sqlite_master ORDER BY name")).all())
        parts.append(conn.execute(sa.text("SELECT * FROM victim ORDER BY id")).all())
        parts.append(conn.execute(sa.text("SELECT * FROM schemalog_marker ORDER BY 1")).all())
        return repr(parts)


@pytest.fixture(scope="module")
def targets(base_log: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Targets]:
    sqlite_path = tmp_path_factory.mktemp("injection-target") / "target.db"
    with postgres_database_url() as pg, mariadb_database_url() as maria:
        urls = {"postgresql": pg, "mysql": maria, "sqlite": f"sqlite:///{sqlite_path}"}
        for url in urls.values():
            assert main(["--store", f"sqlite:///{base_log}", "migrate", "--url", url, "--stream", "app"]) == 0
            run_sql(url, "INSERT INTO victim (id, name) VALUES (1, 'alice'), (2, 'bob'), (3, 'it''s me')")
        engines = {d: engine_for(u) for d, u in urls.items()}
        try:
            yield Targets(urls, engines, {d: _fingerprint(d, e) for d, e in engines.items()})
        finally:
            for engine in engines.values():
                engine.dispose()


def _no_trace_of_the_attack(targets: Targets) -> None:
    for dialect in targets.urls:
        assert targets.fingerprint(dialect) == targets.before[dialect], dialect
    roles = run_sql(targets.urls["postgresql"], "SELECT rolname FROM pg_roles WHERE rolname = 'pwned'")
    assert roles == []
    assert not Path(PWN_FILE).exists()


def _migrate_refused(log_url: str, url: str, version: int, what: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _cli(["--store", log_url, "migrate", "--url", url, "--stream", "app"], capsys)
    lines = err.strip().splitlines()
    assert code == 2, (url, out, err)
    assert len(lines) == 1 and "refused" in lines[0], err
    assert f"v{version} (" in lines[0] and what in lines[0], lines[0]


def _forged_copy(base_log: Path, tmp_path: Path, event: dict[str, Any]) -> tuple[str, int]:
    log_url = _copy(base_log, tmp_path)
    (version,) = asyncio.run(forge(log_url, "app", [event], actor="mallory", message="nothing to see"))
    return log_url, version


PLACES = list(placements("0"))


@pytest.mark.mariadb
@pytest.mark.postgres
@pytest.mark.parametrize(("name", "text"), HOSTILE, ids=[a[0] for a in HOSTILE])
def test_forged_hostile_texts_are_refused_by_migrate_before_anything_runs(
    targets: Targets, base_log: Path, tmp_path: Path, name: str, text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each text in one of the four places (in turn, so that every place sees a quarter of them)."""
    place = PLACES[[h[0] for h in HOSTILE].index(name) % len(PLACES)]
    event, what, _kind = placements(text)[place]
    log_url, version = _forged_copy(base_log, tmp_path, event)
    for outcome in asyncio.run(_migrate_each(log_url, list(targets.urls.values()))):
        assert outcome.status == "refused", (outcome.database, outcome.status, outcome.detail)
        assert outcome.detail is not None and "\n" not in outcome.detail
        assert f"v{version} (" in outcome.detail and what in outcome.detail, outcome.detail
        assert outcome.statements == []  # not even planned
    _no_trace_of_the_attack(targets)


async def _migrate_each(log_url: str, urls: list[str]) -> list[Outcome]:
    """migrate (as the CLI, the API and the daemon call it) to every database at once."""
    store = await open_store(log_url, create=False)
    try:
        return list(
            await asyncio.gather(*(migrate(store, MigrateRequest(url=u, stream="app", actor="mallory")) for u in urls))
        )
    finally:
        await store.close()


def _pg_dump(url: str) -> str:
    """pg_dump's schema of the database and the victim's rows (without the random key of its \\restrict lines)."""
    schema = subprocess.run(["pg_dump", "--schema-only", url], check=True, capture_output=True, text=True).stdout
    data = subprocess.run(["pg_dump", "--data-only", "-t", "victim", url], check=True, capture_output=True, text=True)
    lines = (schema + data.stdout).splitlines()
    return "\n".join(line for line in lines if not line.startswith(("\\restrict", "\\unrestrict")))


@pytest.mark.mariadb
@pytest.mark.postgres
@pytest.mark.parametrize(("name", "text"), ISSUE, ids=[a[0] for a in ISSUE])
def test_the_issues_texts_forged_are_refused_everywhere_and_pg_dump_is_unchanged(
    targets: Targets, base_log: Path, tmp_path: Path, name: str, text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    pg = targets.urls["postgresql"]
    dumped = _pg_dump(pg)
    for place, (event, what, _kind) in placements(text).items():
        folder = tmp_path / place
        folder.mkdir()
        log_url, version = _forged_copy(base_log, folder, event)
        for dialect, url in targets.urls.items():
            _migrate_refused(log_url, url, version, what, capsys)
            code, _out, err = _cli(["--store", log_url, "migrate", "--url", url, "--stream", "app", "--plan"], capsys)
            assert code == 2 and f"v{version} (" in err, (place, dialect, err)
            code, _out, err = _cli(["--store", log_url, "sqlmigrate", "--dialect", dialect, "--stream", "app"], capsys)
            assert code == 2 and f"v{version} (" in err and len(err.strip().splitlines()) == 1, (place, dialect, err)
    assert _pg_dump(pg) == dumped
    _no_trace_of_the_attack(targets)


# --------------------------------------------------------------------------- what parses in one dialect only


def test_an_expression_goes_only_to_the_dialects_that_read_it(
    base_log: Path, tmp_path: Path, pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A PostgreSQL cast is accepted (it is one safe expression there), migrated to PostgreSQL, and
    refused for SQLite before anything runs."""
    log_url = _copy(base_log, tmp_path)
    added = {
        "type": "column_added",
        "table": "victim",
        "column": {"name": "tag", "type": "text", "default": "'x'::text"},
    }
    code, _out, err = _cli(
        ["--store", log_url, "append", "-"], capsys, json.dumps({"stream": "app", "events": [added]})
    )
    assert code == 0, err
    sqlite_url = f"sqlite:///{tmp_path / 'target.db'}"
    code, _out, err = _cli(["--store", log_url, "migrate", "--url", sqlite_url, "--stream", "app"], capsys)
    assert code == 2 and "v2 (column_added)" in err and "victim.tag" in err and "in sqlite" in err, err
    assert sqlite3.connect(tmp_path / "target.db").execute("SELECT name FROM sqlite_master").fetchall() == []
    code, _out, err = _cli(["--store", log_url, "migrate", "--url", pg_url, "--stream", "app"], capsys)
    assert code == 0, err
    run_sql(pg_url, "INSERT INTO victim (id) VALUES (1)")
    assert [tuple(r) for r in run_sql(pg_url, "SELECT tag FROM victim")] == [("x",)]


# --------------------------------------------------------------------------- the statements themselves


@pytest.mark.postgres
def test_a_table_named_to_end_the_do_block_early_is_migrated_as_named(
    base_log: Path, tmp_path: Path, pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The primary key's drop is a DO block around the table's name: a name holding the block's own
    dollar tag must not end it (the dialect picks another tag; the statement check would refuse it)."""
    name = "t$schemalog$;DROP TABLE victim;--"
    changeset = {
        "stream": "app",
        "events": [
            {
                "type": "table_created",
                "table": name,
                "columns": [
                    {"name": "id", "type": "integer", "nullable": False},
                    {"name": "x", "type": "integer", "nullable": False},
                ],
                "primary_key": ["id"],
            },
            {"type": "primary_key_set", "table": name, "columns": ["x"]},
        ],
    }
    log_url = _copy(base_log, tmp_path)
    assert _cli(["--store", log_url, "append", "-"], capsys, json.dumps(changeset))[0] == 0
    code, out, err = _cli(["--store", log_url, "migrate", "--url", pg_url, "--stream", "app"], capsys)
    assert code == 0, (out, err)
    keys = run_sql(
        pg_url,
        "SELECT a.attname FROM pg_constraint c JOIN pg_attribute a ON a.attrelid = c.conrelid"
        " AND a.attnum = ANY(c.conkey) WHERE c.contype = 'p' AND c.conrelid = to_regclass(:t)",
        params={"t": '"' + name + '"'},
    )
    assert [r[0] for r in keys] == ["x"]
    assert run_sql(pg_url, "SELECT count(*) FROM victim")[0][0] == 0  # still there


async def test_the_last_guard_refuses_a_statement_no_plan_proved(target_url: str) -> None:
    """A step that did not come from make_plan (or whose text changed since) is refused by the target
    before anything is sent, even in a batch."""
    from events.model import Schema

    run_sql(target_url, "CREATE TABLE victim (id integer)")
    sneaky = Step('CREATE TABLE "a" (x integer); DROP TABLE victim', 1, "table_created", False, "create_table")
    honest = Step('CREATE TABLE "b" (x integer)', 1, "table_created", False, "create_table")
    plan = Plan(stream="app", from_version=0, to_version=1, steps=[honest, sneaky], start=Schema(), target=Schema())
    marker = Marker(stream="app", version=1, state_hash="x", applied_at="now", applied_by="test")
    target = await open_target(target_url)
    try:
        await target.acquire("app", 5)
        with pytest.raises(UnsafeStatement):
            await target.apply(plan, 0, marker, lambda _done: marker)
    finally:
        await target.release()
        await target.close()
    engine = engine_for(target_url)
    try:
        names = set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert "victim" in names and not names & {"a", "b"}, names


@pytest.mark.parametrize(
    ("dialect", "setting", "default"),
    [
        ("postgresql", "?standard_conforming_strings=off", "'a\\b'"),
        ("mysql", "?init_command=SET%20SESSION%20sql_mode%3D%27NO_BACKSLASH_ESCAPES%27", "'a\\\\b'"),
    ],
    ids=["postgresql-standard_conforming_strings-off", "mariadb-NO_BACKSLASH_ESCAPES"],
)
def test_a_server_configured_to_read_backslashes_otherwise_reads_the_checked_text(
    dialect: str, setting: str, default: str, base_log: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The statements are proven single, and the literals in them read, as the parsers read them: a server
    whose session says otherwise about backslashes is put back to that for the run (else ``a\\b`` would
    be stored as ``a<backspace>`` on PostgreSQL, ``a\\\\b`` on MariaDB)."""
    log_url = _copy(base_log, tmp_path)
    added = {"type": "column_added", "table": "victim", "column": {"name": "path", "type": "text", "default": default}}
    assert _cli(["--store", log_url, "append", "-"], capsys, json.dumps({"stream": "app", "events": [added]}))[0] == 0
    with postgres_database_url() if dialect == "postgresql" else mariadb_database_url() as url:
        code, out, err = _cli(["--store", log_url, "migrate", "--url", url + setting, "--stream", "app"], capsys)
        assert code == 0, (out, err)
        run_sql(url, "INSERT INTO victim (id) VALUES (1)")
        assert [tuple(r) for r in run_sql(url, "SELECT path FROM victim")] == [("a\\b",)]
