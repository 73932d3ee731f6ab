"""Target dialects, registered explicitly by the names SQLAlchemy gives them."""

from __future__ import annotations

from service.reconciler.dialects.base import Dialect, NativeType, UnsupportedType
from service.reconciler.dialects.mysql.ddl import MysqlDialect
from service.reconciler.dialects.postgresql.ddl import PostgresqlDialect
from service.reconciler.dialects.sqlite.ddl import SqliteDialect

DIALECTS: dict[str, type[Dialect]] = {
    "postgresql": PostgresqlDialect,
    "mysql": MysqlDialect,
    "sqlite": SqliteDialect,
}

ALIASES = {"postgres": "postgresql", "mariadb": "mysql"}

__all__ = ["DIALECTS", "Dialect", "NativeType", "UnsupportedType", "get_dialect"]


def get_dialect(name: str) -> Dialect:
    key = ALIASES.get(name.lower(), name.lower())
    if key not in DIALECTS:
        raise ValueError(f"unknown dialect {name!r}: one of {', '.join(DIALECTS)}")
    return DIALECTS[key]()
