"""SQLite: the live schema from sqlite_master and the pragmas (through SQLAlchemy's Inspector)."""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa

from events.model import (
    Column,
    ColumnType,
    Constraint,
    Index,
    Reference,
    Schema,
    Table,
    parse_type,
)
from service.reconciler.introspect import SKIP_TABLES, live_native_type
from service.reconciler.introspect import fk_action as _fk_action
from service.reconciler.normalize import canonical_schema

SQLITE_COLUMNS = 'SELECT cid, name, type, "notnull", dflt_value, pk, hidden FROM pragma_table_xinfo(:t)'
SQLITE_TABLE_SQL = "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = :t"

SQLITE_TYPES = {"blob": "bytes", "double": "double", "boolean": "boolean", "datetime": "timestamp"}


def sqlite_type(declared: str) -> ColumnType:
    text = " ".join(declared.lower().split())
    if text in SQLITE_TYPES:
        return ColumnType(name=SQLITE_TYPES[text])
    if not text:
        return ColumnType(name="bytes")
    try:
        return parse_type(text)
    except ValueError:
        return live_native_type("sqlite", declared.strip())


def _unescape(name: str) -> str:
    """SQLAlchemy's SQLite reflection keeps a quoted name's doubled quotes: undo that."""
    return name.replace('""', '"')


_SQLITE_IDENT = r'(?:"(?:[^"]|"")*"|\[[^\]]*\]|`(?:[^`]|``)*`|[A-Za-z_][A-Za-z0-9_$]*)'
_SQLITE_FK = re.compile(
    rf"CONSTRAINT\s+({_SQLITE_IDENT})\s+FOREIGN\s+KEY\s*\(((?:\s*{_SQLITE_IDENT}\s*,?)+)\)\s*"
    rf"REFERENCES\s+({_SQLITE_IDENT})\s*\(((?:\s*{_SQLITE_IDENT}\s*,?)+)\)"
    r"((?:\s+ON\s+(?:DELETE|UPDATE)\s+(?:SET\s+NULL|SET\s+DEFAULT|CASCADE|RESTRICT|NO\s+ACTION))*)",
    re.IGNORECASE,
)
_SQLITE_FK_ACTION = re.compile(
    r"ON\s+(DELETE|UPDATE)\s+(SET\s+NULL|SET\s+DEFAULT|CASCADE|RESTRICT|NO\s+ACTION)", re.IGNORECASE
)


def _sqlite_name(token: str) -> str:
    token = token.strip()
    if token[:1] == '"':
        return token[1:-1].replace('""', '"')
    if token[:1] == "`":
        return token[1:-1].replace("``", "`")
    if token[:1] == "[":
        return token[1:-1]
    return token


def _sqlite_names(text: str) -> tuple[str, ...]:
    return tuple(_sqlite_name(t) for t in re.findall(_SQLITE_IDENT, text))


_SQLITE_UNIQUE = re.compile(
    rf"CONSTRAINT\s+({_SQLITE_IDENT})\s+UNIQUE\s*\(((?:\s*{_SQLITE_IDENT}\s*,?)+)\)", re.IGNORECASE
)


def sqlite_unique_constraints(sql: str) -> list[Constraint]:
    """Named unique constraints from a CREATE TABLE text."""
    return [
        Constraint(name=_sqlite_name(m.group(1)), kind="unique", columns=_sqlite_names(m.group(2)))
        for m in _SQLITE_UNIQUE.finditer(sql)
    ]


def sqlite_foreign_keys(sql: str) -> list[Constraint]:
    """Named foreign keys from a CREATE TABLE text (SQLite keeps their names nowhere else)."""
    out = []
    for match in _SQLITE_FK.finditer(sql):
        actions = {m.group(1).lower(): _fk_action(m.group(2)) for m in _SQLITE_FK_ACTION.finditer(match.group(5))}
        out.append(
            Constraint(
                name=_sqlite_name(match.group(1)),
                kind="foreign_key",
                columns=_sqlite_names(match.group(2)),
                references=Reference(table=_sqlite_name(match.group(3)), columns=_sqlite_names(match.group(4))),
                on_delete=actions.get("delete"),
                on_update=actions.get("update"),
            )
        )
    return out


SQLITE_FK_LIST = 'SELECT id, seq, "table", "from", "to", on_update, on_delete FROM pragma_foreign_key_list(:t)'


def sqlite_all_foreign_keys(conn: sa.Connection, table: str, sql: str) -> list[Constraint]:
    """Every foreign key (PRAGMA foreign_key_list is the truth), named as the CREATE TABLE text names it;
    an unnamed one (``FOREIGN KEY (a) REFERENCES t (b)`` or a column's ``REFERENCES``) gets the name
    PostgreSQL would give it, ``<table>_<columns>_fkey``."""
    named = {(k.columns, k.references.table, k.references.columns): k for k in sqlite_foreign_keys(sql) if k.references}
    groups: dict[int, list[Any]] = {}
    for r in conn.execute(sa.text(SQLITE_FK_LIST), {"t": table}):
        groups.setdefault(r[0], []).append(r)
    out = []
    for rows in (sorted(g, key=lambda r: r[1]) for _, g in sorted(groups.items(), reverse=True)):
        columns = tuple(r[3] for r in rows)
        ref_table = rows[0][2]
        ref_columns = tuple(r[4] for r in rows) if rows[0][4] is not None else ()
        found = named.get((columns, ref_table, ref_columns))
        if found is not None:
            out.append(found)
            continue
        out.append(
            Constraint(
                name=f"{table}_{'_'.join(columns)}_fkey",
                kind="foreign_key",
                columns=columns,
                references=Reference(table=ref_table, columns=ref_columns or columns),
                on_delete=_fk_action(rows[0][6]),
                on_update=_fk_action(rows[0][5]),
            )
        )
    return out


def introspect_sqlite(conn: sa.Connection) -> Schema:
    inspector = sa.inspect(conn)
    tables: dict[str, Table] = {}
    for name in inspector.get_table_names():
        if SKIP_TABLES.match(name):
            continue
        sql = conn.execute(sa.text(SQLITE_TABLE_SQL), {"t": name}).scalar() or ""
        autoincrement = "AUTOINCREMENT" in sql.upper()
        rows = conn.execute(sa.text(SQLITE_COLUMNS), {"t": name}).mappings().all()
        pk = [r["name"] for r in sorted((r for r in rows if r["pk"]), key=lambda r: r["pk"])]
        columns = []
        for r in rows:
            if r["hidden"]:
                continue
            identity = autoincrement and pk == [r["name"]] and (r["type"] or "").upper() == "INTEGER"
            columns.append(
                Column(
                    name=r["name"],
                    type=sqlite_type(r["type"] or ""),
                    nullable=not r["notnull"],
                    default=r["dflt_value"],
                    identity=identity,
                )
            )
        indexes = tuple(
            Index(name=i["name"], columns=tuple(i["column_names"]), unique=bool(i["unique"]))
            for i in inspector.get_indexes(name)
            if i.get("name") and all(c is not None for c in i["column_names"])
        )
        constraints: list[Constraint] = []
        constraints.extend(sqlite_unique_constraints(sql))
        for c in inspector.get_check_constraints(name):
            check_name = c.get("name")
            if check_name:
                constraints.append(Constraint(name=_unescape(check_name), kind="check", expression=c["sqltext"]))
        constraints.extend(sqlite_all_foreign_keys(conn, name, sql))
        tables[name] = Table(
            name=name,
            columns=tuple(columns),
            primary_key=tuple(pk),
            indexes=indexes,
            constraints=tuple(constraints),
        )
    return canonical_schema(Schema(tables=tables))


# --------------------------------------------------------------------------- PostgreSQL (asyncpg, catalog)

# Every query reads the same tables (joined on the same filter rather than handed a list of oids, which
# PostgreSQL would scan once per catalogue row); column numbers are turned into names in Python. The rows
# are read by position (PgCatalogue), in the order of each SELECT list; PG_COLUMNS' list and order are
# also what _pg_lines_of and _pg_rows_of write for the expected columns (change them together: the tests
# check that a database as migrate made it compares whole).
