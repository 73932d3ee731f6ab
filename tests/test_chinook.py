"""A real third-party schema (Chinook, as its authors publish it for each dialect): import, migrate, compare.

The source database is loaded from ../shared/fixtures/chinook (the lines that drop, create and switch
database are skipped: the test loads into its own database); then, as tests/test_real_schemas.py does
for Django and Sakila and with its helpers, the installed ``schemalog`` with a schemalog.toml naming the
two databases: ``init``, ``import`` (a baseline), ``migrate`` into an empty database, and the two compare
equal (migra less a dump/restore's noise on PostgreSQL; schemalog's introspection and SQLAlchemy's
Inspector on MariaDB and SQLite). Then a change made through the log (a rename, a new column) is migrated
into both, and the loaded database's rows survive it.
"""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
from pathlib import Path

import pytest

from tests.conftest import FIXTURES
from tests.sqlexec import run_sql
from tests.test_real_schemas import (
    DIALECTS,
    assert_same,
    import_and_rebuild,
    schemalog,
    schemalog_view,
    source_and_rebuilt,
)

CHINOOK = FIXTURES / "chinook"
FILES = {"postgresql": "Chinook_PostgreSql.sql", "mysql": "Chinook_MySql.sql", "sqlite": "Chinook_Sqlite.sql"}
SKIP = re.compile(r"^\s*(DROP DATABASE|CREATE DATABASE|USE |\\c )", re.IGNORECASE)


def load(dialect: str, url: str, tmp: Path) -> None:
    source = CHINOOK / FILES[dialect]
    text = source.read_text(encoding="utf-8-sig")
    script = "\n".join(line for line in text.splitlines() if not SKIP.match(line))
    if dialect == "sqlite":
        conn = sqlite3.connect(url.removeprefix("sqlite:///"))
        conn.executescript(script)
        conn.close()
        return
    path = tmp / FILES[dialect]
    path.write_text(script, encoding="utf-8")
    if dialect == "postgresql":
        subprocess.run(
            ["psql", "-q", "-X", "-v", "ON_ERROR_STOP=1", "-f", str(path), url], check=True, stdout=subprocess.DEVNULL
        )
    else:
        database = url.rsplit("/", 1)[1]
        with path.open("rb") as f:
            subprocess.run(
                ["mysql", "-h", "127.0.0.1", "-u", "root", "--default-character-set=utf8mb4", database],
                stdin=f,
                check=True,
            )


@pytest.mark.slow
@pytest.mark.parametrize("dialect", DIALECTS)
def test_chinook_import_migrate_compare(dialect: str, tmp_path: Path) -> None:
    with source_and_rebuilt(dialect, tmp_path) as (source, rebuilt):
        load(dialect, source, tmp_path)
        config = import_and_rebuild(tmp_path, source, rebuilt, "chinook")
        tables = json.loads(schemalog(config, "show", "--stream", "chinook", "--format", "json"))["tables"]
        assert len(tables) == 11, sorted(tables)
        assert_same(dialect, source, rebuilt)

        # a change made through the log reaches the loaded database and its rows survive
        track = next(t for t in tables if t.lower() == "track")
        composer = next(c["name"] for c in tables[track]["columns"] if c["name"].lower() == "composer")
        rows_before = run_sql(source, f"SELECT COUNT(*), COUNT({composer}) FROM {track}")
        change = {
            "stream": "chinook",
            "events": [
                {"type": "column_renamed", "table": track, "column": composer, "new_name": "written_by"},
                {"type": "column_added", "table": track, "column": {"name": "plays", "type": "bigint"}},
            ],
        }
        path = tmp_path / "change.json"
        path.write_text(json.dumps(change))
        schemalog(config, "append", str(path))
        schemalog(config, "migrate", "--database", "source")
        schemalog(config, "migrate", "--database", "rebuilt")
        assert run_sql(source, f"SELECT COUNT(*), COUNT(written_by) FROM {track}") == rows_before
        assert rows_before[0][0] > 3000
        assert schemalog_view(source) == schemalog_view(rebuilt)
