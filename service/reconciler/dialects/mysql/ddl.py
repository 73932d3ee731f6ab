"""MySQL and MariaDB: DDL is not transactional; AUTO_INCREMENT; inline comments."""

from __future__ import annotations

from typing import Any, ClassVar

from sqlalchemy.dialects import mysql as sa_mysql
from sqlalchemy.engine import Dialect as SADialect

from events.model import Column, ColumnType, Index, Schema, Table
from service.reconciler.dialects.base import Dialect


class MysqlDialect(Dialect):
    name = "mysql"
    transactional_ddl = False
    supports_comments = True
    inline_foreign_keys = False
    type_names: ClassVar[dict[str, str]] = {
        "smallint": "SMALLINT",
        "integer": "INTEGER",
        "bigint": "BIGINT",
        "boolean": "BOOL",
        "real": "FLOAT",
        "double": "DOUBLE",
        "numeric": "DECIMAL",
        "varchar": "VARCHAR",
        "char": "CHAR",
        "text": "TEXT",
        "date": "DATE",
        "time": "TIME(6)",
        "timestamp": "DATETIME(6)",
        "timestamptz": "DATETIME(6)",
        "json": "JSON",
        "uuid": "UUID",
        "bytes": "LONGBLOB",
    }

    def make_sa_dialect(self) -> SADialect:
        return sa_mysql.dialect(paramstyle="named")

    def column_kwargs(self, table: Table, column: Column) -> dict[str, Any]:
        kwargs = super().column_kwargs(table, column)
        if column.identity:
            kwargs["autoincrement"] = True
        return kwargs

    def normalize_column(self, table: Table, column: Column) -> Column:
        column = super().normalize_column(table, column)
        update: dict[str, Any] = {}
        if column.type.portable and column.type.name == "timestamptz":
            update["type"] = ColumnType(name="timestamp")  # DATETIME keeps no zone
        if column.type.portable and column.type.name == "boolean" and column.default is not None:
            update["default"] = {"true": "1", "false": "0"}.get(column.default.strip().lower(), column.default)
        return column.model_copy(update=update) if update else column

    def normalize(self, schema: Schema) -> Schema:
        """MySQL has no unique constraints apart from unique indexes: they become indexes."""
        schema = super().normalize(schema)
        tables = {}
        for name, table in schema.tables.items():
            uniques = [c for c in table.constraints if c.kind == "unique"]
            if uniques:
                table = table.model_copy(
                    update={
                        "indexes": table.indexes
                        + tuple(Index(name=c.name, columns=c.columns, unique=True) for c in uniques),
                        "constraints": tuple(c for c in table.constraints if c.kind != "unique"),
                    }
                )
            tables[name] = table
        return Schema.model_construct(tables=tables)

    def table_comment(self, after: Schema, table: str) -> list[str]:
        comment = after.tables[table].comment or ""
        return [f"ALTER TABLE {self.qualified(table)} COMMENT = {self.literal(comment).replace(chr(92), chr(92) * 2)}"]

    def rename_table(self, before: Schema, old: str, new: str) -> list[str]:
        return [f"RENAME TABLE {self.qualified(old)} TO {self.qualified(new)}"]

    def alter_column(
        self,
        before: Schema,
        after: Schema,
        table: str,
        column: str,
        changes: dict[str, Any],
        fill: str | None = None,
    ) -> list[str]:
        # MODIFY restates the whole column: one statement, whatever changed.
        return [f"ALTER TABLE {self.qualified(table)} MODIFY COLUMN {self.column_spec(after, table, column)}"]

    def drop_index(self, before: Schema, after: Schema, table: str, index: str) -> list[str]:
        return [f"DROP INDEX {self.quote(index)} ON {self.qualified(table)}"]

    def drop_constraint(self, before: Schema, after: Schema, table: str, name: str) -> list[str]:
        constraint = before.tables[table].constraint(name)
        assert constraint is not None
        if constraint.kind == "foreign_key":
            out = [f"ALTER TABLE {self.qualified(table)} DROP FOREIGN KEY {self.quote(name)}"]
            if after.tables[table].index(name) is None:
                # the index MySQL made for the key, if it made one, goes with it
                out.append(f"DROP INDEX IF EXISTS {self.quote(name)} ON {self.qualified(table)}")
            return out
        if constraint.kind == "unique":
            return [f"DROP INDEX {self.quote(name)} ON {self.qualified(table)}"]
        return [f"ALTER TABLE {self.qualified(table)} DROP CONSTRAINT {self.quote(name)}"]

    def set_primary_key(self, before: Schema, after: Schema, table: str) -> list[str]:
        parts = []
        if before.tables[table].primary_key:
            parts.append("DROP PRIMARY KEY")
        if after.tables[table].primary_key:
            parts.append(f"ADD PRIMARY KEY ({self.pk_columns(after, table)})")
        return [f"ALTER TABLE {self.qualified(table)} {', '.join(parts)}"]
