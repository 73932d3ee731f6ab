"""MySQL and MariaDB: DDL is not transactional; AUTO_INCREMENT; inline comments."""

from __future__ import annotations

from typing import Any, ClassVar

from sqlalchemy.dialects import mysql as sa_mysql
from sqlalchemy.engine import Dialect as SADialect

from events.model import Column, Table
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
        "text": "LONGTEXT",
        "date": "DATE",
        "time": "TIME(6)",
        "timestamp": "DATETIME(6)",
        "timestamptz": "DATETIME(6)",
        "json": "JSON",
        "uuid": "UUID",
        "bytes": "LONGBLOB",
    }

    def sa_dialect(self) -> SADialect:
        return sa_mysql.dialect()  # type: ignore[no-untyped-call]

    def column_kwargs(self, table: Table, column: Column) -> dict[str, Any]:
        kwargs = super().column_kwargs(table, column)
        if column.identity:
            kwargs["autoincrement"] = True
        return kwargs
