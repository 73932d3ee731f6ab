"""SQLite: declared types kept as written, no comments, ALTER by table rebuild."""

from __future__ import annotations

from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite as sa_sqlite
from sqlalchemy.engine import Dialect as SADialect

from events.model import Column, ColumnType, Schema, Table, split_table_name
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
        "timestamp": "DATETIME",
        "timestamptz": "TIMESTAMPTZ",
        "interval": "INTERVAL",
        "json": "JSON",
        "uuid": "UUID",
        "bytes": "BLOB",
    }

    def make_sa_dialect(self) -> SADialect:
        return sa_sqlite.dialect()

    def index_name(self, table: str, name: str) -> str:
        owner, _ = split_table_name(table)  # SQLite names the schema on the index, not on its table
        return f"{self.quote(owner)}.{self.quote(name)}" if owner else self.quote(name)

    def index_table(self, table: str) -> str:
        return self.quote(split_table_name(table)[1])

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

    # SQLite alters little in place: what it cannot, a rebuild does (new table, copy, swap).

    TMP = "_schemalog_rebuild"

    def rebuild(self, before: Schema, after: Schema, table: str) -> list[str]:
        """Rebuild ``table`` into its ``after`` shape, keeping the rows of the columns it keeps."""
        _md, tables = self.metadata(after, only=[table])
        sa_table = tables[table]
        create = self.compile(sa.schema.CreateTable(sa_table))
        header = f"CREATE TABLE {self.qualified(table)} ("
        assert create.startswith(header), create[:80]
        create = f"CREATE TABLE {self.quote(self.TMP)} (" + create[len(header) :]
        old_columns = set(before.tables[table].column_names())
        kept = [c.name for c in after.tables[table].columns if c.name in old_columns]
        cols = ", ".join(self.quote(c) for c in kept)
        out = [
            create,
            f"INSERT INTO {self.quote(self.TMP)} ({cols}) SELECT {cols} FROM {self.qualified(table)}",
            f"DROP TABLE {self.qualified(table)}",
            f"ALTER TABLE {self.quote(self.TMP)} RENAME TO {self.quote(table)}",
        ]
        for index in sorted(sa_table.indexes, key=lambda i: str(i.name)):
            out.append(self.compile(sa.schema.CreateIndex(index)))
        return out

    def add_column(
        self, before: Schema, after: Schema, table: str, column: str, fill: str | None = None
    ) -> list[str]:
        col = after.tables[table].column(column)
        assert col is not None
        if col.nullable or col.default is not None:
            return [f"ALTER TABLE {self.qualified(table)} ADD COLUMN {self.column_spec(after, table, column)}"]
        return self.rebuild(before, after, table)

    def drop_column(self, before: Schema, after: Schema, table: str, column: str) -> list[str]:
        return self.rebuild(before, after, table)

    def alter_column(
        self,
        before: Schema,
        after: Schema,
        table: str,
        column: str,
        changes: dict[str, Any],
        fill: str | None = None,
    ) -> list[str]:
        if set(changes) == {"comment"}:
            return []  # SQLite keeps no comments
        return self.rebuild(before, after, table)

    def add_constraint(self, before: Schema, after: Schema, table: str, name: str) -> list[str]:
        return self.rebuild(before, after, table)

    def drop_constraint(self, before: Schema, after: Schema, table: str, name: str) -> list[str]:
        return self.rebuild(before, after, table)

    def set_primary_key(self, before: Schema, after: Schema, table: str) -> list[str]:
        return self.rebuild(before, after, table)
