"""Real schemas nobody on the team wrote, made by their own tools: imported, rebuilt, compared.

Each test makes a source database the way its authors make it (Django's own ``migrate``; the Sakila
scripts of ../shared/fixtures/sakila), and then uses schemalog as a user would: a schemalog.toml
naming the source and an empty database, ``schemalog init`` (a fresh store), ``schemalog import
--database source``, ``schemalog migrate --database rebuilt``, each run as the installed command.
Then the two databases must not differ:

- on PostgreSQL, migra finds nothing between the rebuilt database and the source, once what migra
  finds after a plain ``pg_dump | psql`` restore of the same source is taken away (the noise a
  dump and restore make by themselves; none so far);
- on MariaDB and SQLite, neither schemalog's introspection nor SQLAlchemy's Inspector (columns with
  their types, nullability, defaults, identity and generation; the primary key; foreign keys with
  their options; indexes with uniqueness; unique and check constraints) tells the two apart;
- and on every dialect, schemalog's own introspection of the two is the same.

Every difference found is listed in the one failure, so that a run says all that is left at once.
tests/test_chinook.py does the same for Chinook with these helpers.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from service.reconciler.targets import open_target
from tests.conftest import FIXTURES
from tests.servers import mariadb_database_url, postgres_database_url
from tests.sqlexec import engine_for

REPO = Path(__file__).resolve().parents[1]
SCHEMALOG = Path(sys.executable).with_name("schemalog")
SAKILA = FIXTURES / "sakila"
DIALECTS = ["postgresql", "mysql", "sqlite"]


# ---------------------------------------------------------------------------------------------------------
# Databases and the command


@contextmanager
def fresh_database(dialect: str, folder: Path, name: str) -> Iterator[str]:
    """A fresh, uniquely named database of the dialect (a file in ``folder`` on SQLite), dropped after."""
    if dialect == "sqlite":
        yield f"sqlite:///{folder / name}.db"
    elif dialect == "postgresql":
        with postgres_database_url() as url:
            yield url
    else:
        with mariadb_database_url() as url:
            yield url


@contextmanager
def source_and_rebuilt(dialect: str, folder: Path) -> Iterator[tuple[str, str]]:
    with fresh_database(dialect, folder, "source") as source, fresh_database(dialect, folder, "rebuilt") as rebuilt:
        yield source, rebuilt


def schemalog(config: Path, *args: str) -> str:
    """The installed ``schemalog`` command, as a user runs it; its output, or a failure with its own words."""
    proc = subprocess.run(
        [str(SCHEMALOG), "--config", str(config), *args], capture_output=True, text=True, timeout=300, check=False
    )
    assert proc.returncode == 0, (
        f"schemalog {' '.join(args)} exited {proc.returncode}: {(proc.stderr or proc.stdout).strip()}"
    )
    return proc.stdout


def write_config(folder: Path, source: str, rebuilt: str, stream: str) -> Path:
    """A schemalog.toml as the README shows it: the store and the two databases by name."""
    config = folder / "schemalog.toml"
    store = f"sqlite:///{folder / 'log.db'}"
    config.write_text(
        f"store = {json.dumps(store)}\n\n"
        f"[databases.source]\nurl = {json.dumps(source)}\nstream = {json.dumps(stream)}\n\n"
        f"[databases.rebuilt]\nurl = {json.dumps(rebuilt)}\nstream = {json.dumps(stream)}\n",
        encoding="utf-8",
    )
    return config


def import_and_rebuild(folder: Path, source: str, rebuilt: str, stream: str) -> Path:
    """A fresh store; the source imported into it; the log migrated into the empty database."""
    config = write_config(folder, source, rebuilt, stream)
    schemalog(config, "init")
    schemalog(config, "import", "--database", "source")
    schemalog(config, "migrate", "--database", "rebuilt")
    return config


# ---------------------------------------------------------------------------------------------------------
# Comparing: every difference as one line that names the object and both sides


def _keyed(value: Any) -> Any:
    """Lists of named things as dicts by name, so that a difference names the thing instead of a position."""
    if isinstance(value, dict):
        return {k: _keyed(v) for k, v in value.items()}
    if isinstance(value, list) and value and all(isinstance(v, dict) and v.get("name") for v in value):
        return {v["name"]: _keyed(v) for v in value}
    return value


def diff_views(source: Any, rebuilt: Any, path: str = "") -> list[str]:
    if source == rebuilt:
        return []
    if isinstance(source, dict) and isinstance(rebuilt, dict):
        out: list[str] = []
        for key in sorted(source.keys() | rebuilt.keys(), key=str):
            where = f"{path}.{key}" if path else str(key)
            if key not in rebuilt:
                out.append(f"{where}: only in the source: {source[key]!r}")
            elif key not in source:
                out.append(f"{where}: only in the rebuilt database: {rebuilt[key]!r}")
            else:
                out += diff_views(source[key], rebuilt[key], where)
        return out
    return [f"{path}: source {source!r}, rebuilt {rebuilt!r}"]


def schemalog_view(url: str) -> dict[str, Any]:
    """What schemalog's introspection sees: its tables (normalized as the projections compare them) and enums."""
    from projections.schema import normalized

    async def read() -> dict[str, Any]:
        target = await open_target(url)
        try:
            live = await target.introspect()
        finally:
            await target.close()
        enums = {name: enum.model_dump(mode="json") for name, enum in getattr(live, "enums", {}).items()}
        return {"tables": _keyed(normalized(live)), "enums": enums}

    return asyncio.run(read())


def _by_name(items: list[dict[str, Any]], fields: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
    """Named things by name; an unnamed one (SQLite's foreign keys) by what it is instead."""
    out: dict[str, Any] = {}
    for item in items:
        shown = fields(item)
        out[item.get("name") or json.dumps(shown, sort_keys=True, default=str)] = shown
    return out


_SQLITE_PK_NAME = re.compile(r"CONSTRAINT\s+(?:\[([^\]]+)\]|`([^`]+)`)\s+PRIMARY\s+KEY", re.IGNORECASE)


def _sqlite_pk_name(insp: Any, table: str) -> str | None:
    """A SQLite primary key's name where the Inspector cannot read it: SQLAlchemy reads it only bare or in
    double quotes, and SQLite also takes [name] and `name` (Chinook writes CONSTRAINT [PK_Album])."""
    with insp.bind.connect() as conn:
        sql = conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)).scalar()
    found = _SQLITE_PK_NAME.search(sql or "")
    return next((g for g in found.groups() if g), None) if found else None


def inspector_view(url: str) -> dict[str, Any]:
    """What SQLAlchemy's Inspector sees of every table but schemalog's own, in comparable form."""
    engine = engine_for(url)
    try:
        insp = sa.inspect(engine)
        view: dict[str, Any] = {}
        for table in sorted(insp.get_table_names()):
            if table.startswith("schemalog_"):
                continue
            pk = insp.get_pk_constraint(table)
            if engine.dialect.name == "sqlite" and pk.get("constrained_columns") and not pk.get("name"):
                pk["name"] = _sqlite_pk_name(insp, table)
            view[table] = {
                "columns": {
                    c["name"]: {
                        "type": repr(c["type"]),  # repr keeps what str drops: charset, collation, unsigned
                        "nullable": c["nullable"],
                        "default": c.get("default"),
                        "autoincrement": c.get("autoincrement"),
                        "computed": c.get("computed"),
                        "identity": c.get("identity"),
                        "comment": c.get("comment"),
                    }
                    for c in insp.get_columns(table)
                },
                "pk": {"name": pk.get("name"), "columns": pk.get("constrained_columns")},
                "fks": _by_name(
                    insp.get_foreign_keys(table),
                    lambda f: {
                        "columns": f["constrained_columns"],
                        "referred_table": f["referred_table"],
                        "referred_columns": f["referred_columns"],
                        "options": dict(sorted((f.get("options") or {}).items())),
                    },
                ),
                "indexes": _by_name(
                    insp.get_indexes(table),
                    lambda i: {
                        "columns": i["column_names"],
                        "expressions": i.get("expressions"),
                        "unique": bool(i["unique"]),
                        "include": i.get("include_columns"),
                        "dialect_options": dict(sorted((i.get("dialect_options") or {}).items())),
                    },
                ),
                "unique_constraints": _by_name(
                    insp.get_unique_constraints(table), lambda u: {"columns": u["column_names"]}
                ),
                "checks": _by_name(insp.get_check_constraints(table), lambda c: {"sqltext": c["sqltext"]}),
            }
        return view
    finally:
        engine.dispose()


def _psycopg2(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg2://", 1)


def migra_statements(from_url: str, to_url: str) -> list[str]:
    """migra's statements that would turn ``from_url``'s schema into ``to_url``'s."""
    from migra import Migration
    from sqlbag import S

    with S(_psycopg2(from_url)) as a, S(_psycopg2(to_url)) as b:
        m = Migration(a, b)
        m.set_safety(False)
        m.add_all_changes()
        return [s.strip() for s in m.statements if s.strip()]


def dump_and_restore(source: str, into: str) -> None:
    """A plain ``pg_dump | psql`` of the source into an empty database."""
    dump = subprocess.Popen(["pg_dump", "--dbname", source], stdout=subprocess.PIPE)
    assert dump.stdout is not None
    restore = subprocess.run(
        ["psql", "-q", "-X", "-v", "ON_ERROR_STOP=1", "--dbname", into],
        stdin=dump.stdout,
        stdout=subprocess.DEVNULL,
        check=False,
    )
    dump.stdout.close()
    assert dump.wait() == 0 and restore.returncode == 0, "pg_dump | psql of the source failed"


def migra_differences(source: str, rebuilt: str) -> list[str]:
    """What migra finds between the rebuilt database and the source, less what a dump and restore make."""
    with postgres_database_url() as restored:
        dump_and_restore(source, restored)
        noise = set(migra_statements(restored, source))
    return [s for s in migra_statements(rebuilt, source) if s not in noise]


def differences(dialect: str, source: str, rebuilt: str) -> list[str]:
    found = [f"schemalog: {d}" for d in diff_views(schemalog_view(source), schemalog_view(rebuilt))]
    if dialect == "postgresql":
        found += [f"migra: {s}" for s in migra_differences(source, rebuilt)]
    else:
        found += [f"inspector: {d}" for d in diff_views(inspector_view(source), inspector_view(rebuilt))]
    return found


def assert_same(dialect: str, source: str, rebuilt: str) -> None:
    found = differences(dialect, source, rebuilt)
    assert not found, f"{len(found)} differences between the source and the rebuilt database:\n" + "\n".join(found)


# ---------------------------------------------------------------------------------------------------------
# Django: the contrib apps' schema, as Django's own migrate makes it


def django_migrate(url: str) -> None:
    """``python -m django migrate`` with tests/realschemas/settings.py, against the database at ``url``."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.realschemas.settings",
        "SCHEMALOG_DJANGO_DATABASE": url,
        "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "django", "migrate", "--noinput", "--verbosity", "0"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, f"django migrate failed: {proc.stderr.strip()[-2000:]}"


DJANGO_TABLES = {
    "auth_group",
    "auth_group_permissions",
    "auth_permission",
    "auth_user",
    "auth_user_groups",
    "auth_user_user_permissions",
    "django_admin_log",
    "django_content_type",
    "django_flatpage",
    "django_flatpage_sites",
    "django_migrations",
    "django_redirect",
    "django_session",
    "django_site",
}


@pytest.mark.parametrize("dialect", DIALECTS)
def test_django_contrib_round_trip(dialect: str, tmp_path: Path) -> None:
    """Django's contrib apps (admin, auth, contenttypes, sessions, messages, sites, redirects, flatpages):
    the database Django's migrate makes, imported and rebuilt, is the same database."""
    with source_and_rebuilt(dialect, tmp_path) as (source, rebuilt):
        django_migrate(source)
        config = import_and_rebuild(tmp_path, source, rebuilt, "django")
        shown = json.loads(schemalog(config, "show", "--stream", "django", "--format", "json"))
        assert set(shown["tables"]) == DJANGO_TABLES
        assert_same(dialect, source, rebuilt)


# ---------------------------------------------------------------------------------------------------------
# Sakila: its tables, indexes and constraints (its views, triggers and routines are a later issue)


def _pg_statements(text: str) -> Iterator[tuple[str, str, str | None]]:
    """Each statement of a PostgreSQL script with its kind and the table it is on (a CREATE TABLE's, an
    index's, an ALTER TABLE's; else None), as PostgreSQL's own parser (pglast) reads it. A CREATE TABLE
    that inherits from another (INHERITS) is of the kind ``CreateStmt:INHERITS``."""
    import pglast
    from pglast.enums import AlterTableType

    data = text.encode("utf-8")
    for raw in pglast.parse_sql(text):
        node = raw.stmt
        kind = type(node).__name__
        if kind == "AlterTableStmt":
            kind += ":" + ",".join(sorted({AlterTableType(cmd.subtype).name for cmd in node.cmds}))
        if kind == "CreateStmt" and node.inhRelations:
            kind += ":INHERITS"
        relation = getattr(node, "relation", None)
        table = getattr(relation, "relname", None) if kind.split(":")[0] in PG_TABLE_KINDS else None
        end = raw.stmt_location + raw.stmt_len if raw.stmt_len else len(data)
        yield kind, data[raw.stmt_location : end].decode("utf-8").strip(), table


PG_TABLE_KINDS = {"CreateStmt", "IndexStmt", "AlterTableStmt"}
"""The kinds of statement whose table _pg_statements names."""


PG_SAKILA_KEPT = {
    "VariableSetStmt",  # the dump's session settings
    "CreateSeqStmt",  # the sequences the id columns' defaults draw from
    "CreateEnumStmt",  # mpaa_rating: enum types are this issue's
    "CreateDomainStmt",  # year: a domain, a column's type (the log carries it)
    "CreateStmt",  # the tables (but payment_p2007_*: PG_SAKILA_CHILDREN)
    "AlterTableStmt:AT_AddConstraint",  # primary and foreign keys
    "IndexStmt",
}
PG_SAKILA_SKIPPED = {
    "ViewStmt": "views: the issue on views and routines",
    "CreateFunctionStmt": "functions: the issue on views and routines",
    "DefineStmt": "the group_concat aggregate: a routine",
    "CreateTrigStmt": "triggers: the issue on views and routines",
    "RuleStmt": "payment's insert rules (routing rows to payment_p2007_*): rewrite rules, like triggers",
    "CreateExtensionStmt": "CREATE LANGUAGE plpgsql (the routines' language; PostgreSQL has it already)",
    "AlterOwnerStmt": "OWNER TO postgres: who owns an object, not what it is (and the tests run as postgres)",
    "AlterTableStmt:AT_ChangeOwner": "OWNER TO postgres of tables and sequences, as above",
    "CommentStmt": "COMMENT ON SCHEMA public: the schema's comment, not a table's",
    "GrantStmt": "REVOKE/GRANT on schema public: privileges",
}
PG_SAKILA_CHILDREN = {
    "CreateStmt:INHERITS": "payment_p2007_*, payment's monthly children by INHERITS (payment): issue 19",
    "IndexStmt": "the indexes of payment_p2007_*",
    "AlterTableStmt:AT_AddConstraint": "the foreign keys of payment_p2007_*",
}
"""The statements that make and fill out the tables that inherit from another (left out: see
test_sakila_round_trip), by kind; the count of each is kept with ``:child`` after its kind."""


def _mysql_statements(text: str) -> Iterator[str]:
    """The statements of a mysql client script, with its DELIMITER changes followed."""
    delimiter, lines = ";", []
    for line in text.splitlines():
        if line.strip().upper().startswith("DELIMITER ") and not _mysql_body("\n".join(lines)):
            delimiter, lines = line.split()[1], []
            continue
        lines.append(line)
        if line.rstrip().endswith(delimiter):
            body = _mysql_body("\n".join(lines).rstrip()[: -len(delimiter)])
            lines = []
            if body:
                yield body
    assert not _mysql_body("\n".join(lines)), "the script ends inside a statement"


def _mysql_body(text: str) -> str:
    """A statement without the comment lines and blank lines before it."""
    return re.sub(r"^(\s*--[^\n]*(\n|$)|\s+)*", "", text).strip()


MYSQL_SAKILA_SKIPPED = re.compile(
    r"^(?P<kind>DROP SCHEMA|CREATE SCHEMA|USE|CREATE (DEFINER=\S+ )?(SQL SECURITY \w+ )?VIEW|CREATE TRIGGER"
    r"|CREATE PROCEDURE|CREATE FUNCTION)\b",
    re.IGNORECASE,
)
MYSQL_SAKILA_KEPT = re.compile(r"^(SET|CREATE TABLE)\b", re.IGNORECASE)


def _sqlite_statements(text: str) -> Iterator[str]:
    """The statements of a SQLite script, split where SQLite itself would end them (complete_statement)."""
    lines: list[str] = []
    for line in text.splitlines():
        lines.append(line)
        statement = "\n".join(lines)
        if sqlite3.complete_statement(statement):
            lines = []
            body = re.sub(r"^(\s*--[^\n]*\n|\s*/\*.*?\*/|\s+)*", "", statement, flags=re.DOTALL).strip()
            if body.rstrip(";").strip():
                yield body


SQLITE_SAKILA_SKIPPED = re.compile(r"^CREATE\s+(?P<kind>VIEW|TRIGGER)\b", re.IGNORECASE)
SQLITE_SAKILA_KEPT = re.compile(r"^CREATE\s+(TABLE|INDEX|UNIQUE\s+INDEX)\b", re.IGNORECASE)


def load_sakila(dialect: str, url: str) -> dict[str, int]:
    """Sakila's tables, indexes and constraints into the database at ``url``; how many statements of each
    skipped kind were left out (test_sakila_round_trip's docstring says which and why)."""
    skipped: dict[str, int] = {}
    if dialect == "postgresql":
        kept, children = [], set()
        for kind, statement, table in _pg_statements(
            (SAKILA / "postgres-sakila-schema.sql").read_text(encoding="utf-8")
        ):
            if kind in PG_SAKILA_SKIPPED:
                skipped[kind] = skipped.get(kind, 0) + 1
            elif kind in PG_SAKILA_CHILDREN and (kind == "CreateStmt:INHERITS" or table in children):
                children.add(table)
                skipped[kind + ":child"] = skipped.get(kind + ":child", 0) + 1
            else:
                assert kind in PG_SAKILA_KEPT, f"a statement of a kind this test does not know: {statement[:200]}"
                kept.append(statement + ";")
        subprocess.run(
            ["psql", "-q", "-X", "-v", "ON_ERROR_STOP=1", "--dbname", url],
            input="\n".join(kept),
            text=True,
            check=True,
            stdout=subprocess.DEVNULL,
        )
    elif dialect == "mysql":
        import pymysql

        database = url.rsplit("/", 1)[1]
        conn = pymysql.connect(host="127.0.0.1", user="root", database=database, charset="utf8mb4")
        try:
            with conn.cursor() as cur:
                for statement in _mysql_statements((SAKILA / "mysql-sakila-schema.sql").read_text(encoding="utf-8")):
                    found = MYSQL_SAKILA_SKIPPED.match(statement)
                    if found:
                        kind = re.sub(r"DEFINER=\S+ |SQL SECURITY \w+ ", "", found["kind"].upper())
                        skipped[kind] = skipped.get(kind, 0) + 1
                        continue
                    assert MYSQL_SAKILA_KEPT.match(statement), f"a statement this test does not know: {statement[:200]}"
                    cur.execute(statement)
            conn.commit()
        finally:
            conn.close()
    else:
        conn3 = sqlite3.connect(url.removeprefix("sqlite:///"))
        try:
            for statement in _sqlite_statements((SAKILA / "sqlite-sakila-schema.sql").read_text(encoding="utf-8")):
                found = SQLITE_SAKILA_SKIPPED.match(statement)
                if found:
                    kind = "CREATE " + found["kind"].upper()
                    skipped[kind] = skipped.get(kind, 0) + 1
                    continue
                assert SQLITE_SAKILA_KEPT.match(statement), f"a statement this test does not know: {statement[:200]}"
                conn3.execute(statement)
            conn3.commit()
        finally:
            conn3.close()
    return skipped


SAKILA_SKIPPED = {
    "postgresql": {
        "ViewStmt": 7,
        "CreateFunctionStmt": 9,
        "DefineStmt": 1,
        "CreateTrigStmt": 15,
        "RuleStmt": 6,
        "CreateExtensionStmt": 1,
        "AlterOwnerStmt": 13,
        "AlterTableStmt:AT_ChangeOwner": 41,
        "CommentStmt": 1,
        "GrantStmt": 3,
        "CreateStmt:INHERITS:child": 6,
        "IndexStmt:child": 12,
        "AlterTableStmt:AT_AddConstraint:child": 18,
    },
    "mysql": {
        "DROP SCHEMA": 1,
        "CREATE SCHEMA": 1,
        "USE": 1,
        "CREATE VIEW": 7,
        "CREATE TRIGGER": 3,
        "CREATE PROCEDURE": 3,
        "CREATE FUNCTION": 3,
    },
    "sqlite": {"CREATE VIEW": 5, "CREATE TRIGGER": 30},  # its actor_info view is inside a comment
}
SAKILA_TABLES = {
    "postgresql": 15,  # payment's six monthly children (payment_p2007_01 .. 06) left out
    "mysql": 16,  # 15 and film_text (FULLTEXT)
    "sqlite": 16,
}


@pytest.mark.parametrize("dialect", DIALECTS)
def test_sakila_round_trip(dialect: str, tmp_path: Path) -> None:
    """Sakila (../shared/fixtures/sakila, the script for the dialect): its tables, indexes and constraints.

    Loaded statement by statement, and only these are left out (SAKILA_SKIPPED counts them, so a changed
    fixture is noticed): views, functions, procedures, the group_concat aggregate, triggers and
    PostgreSQL's insert rules on payment (they belong to the issue on views and routines, and schemalog's
    introspection does not read them yet); on MariaDB the script's own DROP SCHEMA / CREATE SCHEMA / USE
    sakila (the test loads into its own database); on PostgreSQL what is not the schema's shape: OWNER TO
    postgres, the comment and privileges on schema public, and CREATE LANGUAGE plpgsql (the routines'
    language). The tables are loaded as written, PostgreSQL's enum type mpaa_rating (enum types are this
    issue's: the log must carry it) and the sequences its id columns' defaults draw from among them
    (serial columns: the log carries each sequence, IdentityOptions.sequence).

    But on PostgreSQL payment's six monthly children payment_p2007_01 .. 06 (CREATE TABLE ... INHERITS
    (payment)), with their 12 indexes and 18 foreign keys, are left out too (PG_SAKILA_CHILDREN):
    partitions, by table inheritance or declared, are issue 19, and import refuses a table that
    inherits rather than record it as a table of its own (tests/test_pg_fidelity.py). Their rules and
    triggers are skipped above with payment's.

    PostgreSQL's film.release_year is of the DOMAIN year: the log carries the domain (``domain_created``)
    and the column as ``domain:year``, and the rebuild makes it (tests/test_objects_domains.py).
    """
    with source_and_rebuilt(dialect, tmp_path) as (source, rebuilt):
        assert load_sakila(dialect, source) == SAKILA_SKIPPED[dialect]
        config = import_and_rebuild(tmp_path, source, rebuilt, "sakila")
        shown = json.loads(schemalog(config, "show", "--stream", "sakila", "--format", "json"))
        assert len(shown["tables"]) == SAKILA_TABLES[dialect], sorted(shown["tables"])
        assert_same(dialect, source, rebuilt)
