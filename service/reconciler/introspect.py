"""Live database -> the schema objects the projections produce.

Normalised per dialect so that a database built from state S introspects back
to the dialect's form of S (service.reconciler.dialects: Dialect.normalize).
SQLite and MySQL/MariaDB go through SQLAlchemy's Inspector; SQLite's declared
type text comes from ``PRAGMA table_xinfo`` (SQLite keeps it as written).
"""

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

SKIP_TABLES = re.compile(r"^(sqlite_|schemalog_)")

SQLITE_COLUMNS = 'SELECT cid, name, type, "notnull", dflt_value, pk, hidden FROM pragma_table_xinfo(:t)'
SQLITE_TABLE_SQL = "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = :t"

SQLITE_TYPES = {"blob": "bytes", "double": "double", "boolean": "boolean"}


def sqlite_type(declared: str) -> ColumnType:
    text = " ".join(declared.lower().split())
    if text in SQLITE_TYPES:
        return ColumnType(name=SQLITE_TYPES[text])
    try:
        return parse_type(text)
    except ValueError:
        return ColumnType(name=text or "blob", dialect="sqlite") if text else ColumnType(name="bytes")


def _fk_action(value: Any) -> str | None:
    if not value:
        return None
    action = " ".join(str(value).lower().split())
    return None if action == "no action" else action


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
        for u in inspector.get_unique_constraints(name):
            if u.get("name"):
                constraints.append(Constraint(name=u["name"], kind="unique", columns=tuple(u["column_names"])))
        for c in inspector.get_check_constraints(name):
            if c.get("name"):
                constraints.append(Constraint(name=c["name"], kind="check", expression=c["sqltext"]))
        for fk in inspector.get_foreign_keys(name):
            if not fk.get("name"):
                continue
            options = fk.get("options") or {}
            constraints.append(
                Constraint(
                    name=fk["name"],
                    kind="foreign_key",
                    columns=tuple(fk["constrained_columns"]),
                    references=Reference(table=fk["referred_table"], columns=tuple(fk["referred_columns"])),
                    on_delete=_fk_action(options.get("ondelete")),
                    on_update=_fk_action(options.get("onupdate")),
                )
            )
        tables[name] = Table(
            name=name,
            columns=tuple(columns),
            primary_key=tuple(pk),
            indexes=indexes,
            constraints=tuple(constraints),
        )
    return Schema(tables=tables)
