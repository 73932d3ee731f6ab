"""``import`` of SQLite primary keys without NOT NULL: the log records every primary key column NOT NULL.

An ``INTEGER PRIMARY KEY`` column is the rowid and never holds NULL; a WITHOUT ROWID table's key columns are
NOT NULL too. Other key columns of a rowid table may hold NULL (SQLite's documented quirk): the log records
them NOT NULL all the same (the catalogue has no nullable key column), and import says so in a warning.
Each case: import, import again (nothing to adopt), migrate the log into a fresh database, import that
(nothing to adopt), on real SQLite files through the CLI.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from service.cli import main


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def make_db(path: Path, *statements: str) -> str:
    conn = sqlite3.connect(path)
    try:
        for statement in statements:
            conn.execute(statement)
        conn.commit()
    finally:
        conn.close()
    return f"sqlite:///{path}"


def nullable_columns(capsys: pytest.CaptureFixture[str], store: str, stream: str, table: str) -> dict[str, bool]:
    code, out, err = cli(capsys, "--store", store, "show", "--stream", stream, "--format", "json")
    assert code == 0, err
    return {c["name"]: c["nullable"] for c in json.loads(out)["tables"][table]["columns"]}


def round_trip(capsys: pytest.CaptureFixture[str], tmp_path: Path, url: str, table: str) -> tuple[dict[str, bool], str]:
    """Import ``url``, import it again, migrate into a fresh file and import that: each later step finds
    nothing. The key columns' nullability as recorded, and the first import's stderr."""
    store = f"sqlite:///{tmp_path / 'log.db'}"
    assert cli(capsys, "--store", store, "init")[0] == 0
    code, out, first_err = cli(capsys, "--store", store, "import", "--url", url, "--stream", "legacy")
    assert code == 0 and "baseline: 1 events" in out, (out, first_err)
    recorded = nullable_columns(capsys, store, "legacy", table)
    code, out, err = cli(capsys, "--store", store, "import", "--url", url, "--stream", "legacy")
    assert (code, err) == (0, "") and "nothing to import" in out, (out, err)
    code, out, err = cli(capsys, "--store", store, "migrate", "--url", url, "--stream", "legacy", "--check")
    assert code == 0, (out, err)  # the original database: no drift from the log

    rebuilt = f"sqlite:///{tmp_path / 'rebuilt.db'}"
    code, out, err = cli(capsys, "--store", store, "migrate", "--url", rebuilt, "--stream", "legacy")
    assert code == 0, (out, err)
    code, out, err = cli(capsys, "--store", store, "import", "--url", rebuilt, "--stream", "legacy")
    assert (code, err) == (0, "") and "nothing to import" in out, (out, err)
    conn = sqlite3.connect(tmp_path / "rebuilt.db")
    try:  # the rebuilt database enforces what the log recorded
        declared = {row[1]: not row[3] for row in conn.execute(f'pragma table_info("{table}")')}
    finally:
        conn.close()
    assert declared == recorded
    return recorded, first_err


def test_integer_primary_key_is_the_rowid_never_null(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    url = make_db(tmp_path / "legacy.db", "CREATE TABLE customers (id integer PRIMARY KEY, name text)")
    recorded, err = round_trip(capsys, tmp_path, url, "customers")
    assert recorded == {"id": False, "name": True}
    assert err == ""  # the rowid alias is NOT NULL in fact: nothing to warn about


def test_table_level_integer_primary_key_is_the_rowid(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    url = make_db(tmp_path / "legacy.db", "CREATE TABLE customers (id INTEGER, name text, PRIMARY KEY (id DESC))")
    recorded, err = round_trip(capsys, tmp_path, url, "customers")
    assert recorded == {"id": False, "name": True} and err == ""


def test_without_rowid_key_columns(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    url = make_db(
        tmp_path / "legacy.db",
        "CREATE TABLE codes (code text PRIMARY KEY, region text, label text) WITHOUT ROWID",
    )
    recorded, err = round_trip(capsys, tmp_path, url, "codes")
    assert recorded == {"code": False, "region": True, "label": True} and err == ""


def test_without_rowid_composite_key(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    url = make_db(
        tmp_path / "legacy.db",
        "CREATE TABLE stock (shop integer, item text, qty integer, PRIMARY KEY (shop, item)) WITHOUT ROWID",
    )
    recorded, err = round_trip(capsys, tmp_path, url, "stock")
    assert recorded == {"shop": False, "item": False, "qty": True} and err == ""


def test_composite_key_of_a_rowid_table(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Neither column is the rowid: SQLite lets both hold NULL. Recorded NOT NULL, with a warning each."""
    url = make_db(
        tmp_path / "legacy.db",
        "CREATE TABLE stock (shop integer, item text, qty integer, PRIMARY KEY (shop, item))",
        "INSERT INTO stock VALUES (1, NULL, 5)",
    )
    recorded, err = round_trip(capsys, tmp_path, url, "stock")
    assert recorded == {"shop": False, "item": False, "qty": True}
    lines = err.splitlines()
    assert len(lines) == 2 and all(line.startswith("  warning: ") for line in lines), err
    assert "stock.shop" in lines[0] and "NULL" in lines[0] and "rows" not in lines[0], err
    assert "stock.item" in lines[1] and "1 row holds NULL" in lines[1], err


@pytest.mark.parametrize(
    "definition",
    ["id INT PRIMARY KEY, name text", "id INTEGER PRIMARY KEY DESC, name text", "id text PRIMARY KEY, name text"],
)
def test_other_single_keys_are_not_the_rowid(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, definition: str
) -> None:
    """``INT PRIMARY KEY`` and ``INTEGER PRIMARY KEY DESC`` are no rowid alias (SQLite's own rule)."""
    url = make_db(tmp_path / "legacy.db", f"CREATE TABLE customers ({definition})")
    recorded, err = round_trip(capsys, tmp_path, url, "customers")
    assert recorded == {"id": False, "name": True}
    assert err.count("warning") == 1 and "customers.id" in err, err


def test_declared_not_null_key_needs_no_warning(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    url = make_db(tmp_path / "legacy.db", "CREATE TABLE customers (id text NOT NULL PRIMARY KEY, name text)")
    recorded, err = round_trip(capsys, tmp_path, url, "customers")
    assert recorded == {"id": False, "name": True} and err == ""
