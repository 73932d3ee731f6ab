"""SQLite: declared types kept as written, no comments, ALTER by table rebuild."""

from __future__ import annotations

from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite as sa_sqlite
from sqlalchemy.engine import Dialect as SADialect

from events.model import Column, ColumnType, Table
from service.reconciler.dialects.base import Dialect


def rowid_alias(table: Table, column: Column) -> bool:
    """An identity column that is the whole primary key: SQLite's INTEGER PRIMARY KEY AUTOINCREMENT."""
    return column.identity and table.primary_key == (column.name,)


class SqliteDialect(Dialect):
    name = "sqlite"
    transactional_ddl = True
    supports_comments = False
    inline_foreign_keys = True
    type_names: ClassVar[dict[str, str]] = {
        "smallint": "SMALLINT",
        "integer": "INTEGER",
        "bigint": "BIGINT",
        "boolean": "BOOLEAN",
        "real": "REAL",
        "double": "DOUBLE",
        "numeric": "NUMERIC",
        "varchar": "VARCHAR",
        "char": "CHAR",
        "text": "TEXT",
        "date": "DATE",
        "time": "TIME",
        "timestamp": "TIMESTAMP",
        "timestamptz": "TIMESTAMPTZ",
        "interval": "INTERVAL",
        "json": "JSON",
        "uuid": "UUID",
        "bytes": "BLOB",
    }

    def sa_dialect(self) -> SADialect:
        return sa_sqlite.dialect()

    def normalize_column(self, table: Table, column: Column) -> Column:
        column = super().normalize_column(table, column)
        if column.identity:
            if rowid_alias(table, column):
                return column.model_copy(update={"type": ColumnType(name="integer")})
            return column.model_copy(update={"identity": False})
        return column

    def column_kwargs(self, table: Table, column: Column) -> dict[str, Any]:
        kwargs = super().column_kwargs(table, column)
        if rowid_alias(table, column):
            kwargs["autoincrement"] = True
        return kwargs

    def sa_type(self, column: Column) -> sa.types.TypeEngine[Any]:
        if column.identity:
            return sa.Integer()  # the rowid alias must be declared INTEGER
        return super().sa_type(column)

    def table_kwargs(self, table: Table) -> dict[str, Any]:
        kwargs = super().table_kwargs(table)
        if any(rowid_alias(table, c) for c in table.columns):
            kwargs["sqlite_autoincrement"] = True
        return kwargs
