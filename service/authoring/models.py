"""SQLAlchemy models -> the schema objects of the log (for ``makemigrations``).

``--models MODULE:ATTR`` names a MetaData or a declarative base (its ``.metadata``).
Types map to the portable types where one fits, else to a dialect-native type
(``postgresql:jsonb``); a type with no such mapping is an error naming the column.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import TextClause

from events.model import Column, ColumnType, Constraint, Index, Reference, Schema, Table, parse_type
from service.reconciler.normalize import canonical_default


class ModelError(ValueError):
    """Models that cannot be read or mapped: the message names what and where."""


def load_metadata(spec: str) -> sa.MetaData:
    """``package.module:attr`` -> its MetaData (the current directory is importable)."""
    if ":" not in spec:
        raise ModelError(f"--models wants MODULE:ATTR (such as myapp.models:Base), not {spec!r}")
    module_name, attr = spec.split(":", 1)
    if str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # the user's module can fail in any way
        raise ModelError(f"cannot import {module_name}: {type(exc).__name__}: {exc}") from None
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ModelError(f"{module_name} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if isinstance(obj, sa.MetaData):
        return obj
    metadata = getattr(obj, "metadata", None)
    if isinstance(metadata, sa.MetaData):
        return metadata
    raise ModelError(f"{spec} is neither a MetaData nor a declarative base")


_SIMPLE: list[tuple[type[Any], str]] = [
    (sa.BigInteger, "bigint"),
    (sa.SmallInteger, "smallint"),
    (sa.Integer, "integer"),
    (sa.Boolean, "boolean"),
    (sa.REAL, "real"),
    (sa.Double, "double"),
    (sa.Float, "double"),
    (sa.Text, "text"),
    (sa.Date, "date"),
    (sa.Interval, "interval"),
    (sa.JSON, "json"),
    (sa.Uuid, "uuid"),
    (sa.LargeBinary, "bytes"),
]


def column_type(table: str, column: sa.Column[Any]) -> ColumnType:
    t = column.type
    module = type(t).__module__
    for dialect in ("postgresql", "mysql", "sqlite"):
        if f"sqlalchemy.dialects.{dialect}" in module and type(t).__name__.upper() not in ("INTEGER", "VARCHAR"):
            text = str(t.compile(dialect=_dialect(dialect)))
            try:
                return parse_type(f"{dialect}:{text}")
            except ValueError as exc:
                raise ModelError(f"{table}.{column.name}: {exc}") from None
    if isinstance(t, sa.Numeric) and not isinstance(t, sa.Float):
        params = tuple(p for p in (t.precision, t.scale) if p is not None)
        return parse_type(f"numeric({','.join(map(str, params))})" if params else "numeric")
    if isinstance(t, sa.CHAR) or (isinstance(t, sa.String) and type(t).__name__ in ("CHAR", "NCHAR")):
        return parse_type(f"char({t.length or 1})")
    if isinstance(t, sa.String) and not isinstance(t, sa.Text):
        return parse_type(f"varchar({t.length})") if t.length else ColumnType(name="text")
    if isinstance(t, sa.DateTime):
        return ColumnType(name="timestamptz" if t.timezone else "timestamp")
    if isinstance(t, sa.Time):
        return ColumnType(name="time")
    for cls, name in _SIMPLE:
        if isinstance(t, cls):
            return ColumnType(name=name)
    raise ModelError(f"{table}.{column.name}: no schemalog type for {type(t).__name__}")


def _dialect(name: str) -> Any:
    from sqlalchemy.dialects import mysql, postgresql, sqlite

    return {"postgresql": postgresql, "mysql": mysql, "sqlite": sqlite}[name].dialect()


def _default(column: sa.Column[Any]) -> str | None:
    default = column.server_default
    if default is None:
        return None
    arg = getattr(default, "arg", None)
    if isinstance(arg, TextClause):
        return canonical_default(arg.text)
    if isinstance(arg, str):
        return "'" + arg.replace("'", "''") + "'"
    if isinstance(arg, sa.sql.ClauseElement):  # sa.true(), sa.func.now(), sa.literal(0) ...
        try:
            compiled = arg.compile(dialect=_dialect("postgresql"), compile_kwargs={"literal_binds": True})
        except sa.exc.SQLAlchemyError as exc:
            raise ModelError(f"{column.table.name}.{column.name}: server_default cannot be rendered: {exc}") from exc
        return canonical_default(str(compiled))
    raise ModelError(f"{column.table.name}.{column.name}: server_default must be text, a string or an expression")


def _fk_action(value: str | None) -> str | None:
    if value is None:
        return None
    action = " ".join(value.lower().split())
    return None if action == "no action" else action


def _name(table: sa.Table) -> str:
    return f"{table.schema}.{table.name}" if table.schema else table.name


def metadata_schema(metadata: sa.MetaData) -> Schema:
    """The schema the models describe. Unnamed indexes and constraints get PostgreSQL-style names."""
    tables: dict[str, Table] = {}
    for table in metadata.sorted_tables:
        name = _name(table)
        auto = table.autoincrement_column
        pk = tuple(c.name for c in table.primary_key.columns)
        columns = []
        for col in table.columns:
            identity = col.identity is not None or (col is auto and col.autoincrement in (True, "auto"))
            columns.append(
                Column(
                    name=col.name,
                    type=column_type(name, col),
                    nullable=bool(col.nullable) and col.name not in pk,
                    default=_default(col),
                    identity=identity and col.type._type_affinity is sa.Integer,
                    comment=col.comment,
                )
            )
        indexes = []
        for index in sorted(table.indexes, key=lambda i: str(i.name)):
            cols = tuple(c.name for c in index.columns)
            indexes.append(
                Index(
                    name=str(index.name or f"ix_{table.name}_{'_'.join(cols)}"), columns=cols, unique=bool(index.unique)
                )
            )
        constraints = []
        for c in sorted(table.constraints, key=lambda c: str(c.name)):
            cols = tuple(col.name for col in getattr(c, "columns", ()))
            if isinstance(c, sa.PrimaryKeyConstraint):
                continue
            if isinstance(c, sa.UniqueConstraint):
                constraints.append(
                    Constraint(name=str(c.name or f"{table.name}_{'_'.join(cols)}_key"), kind="unique", columns=cols)
                )
            elif isinstance(c, sa.CheckConstraint):
                constraints.append(
                    Constraint(name=str(c.name or f"{table.name}_check"), kind="check", expression=str(c.sqltext))
                )
            elif isinstance(c, sa.ForeignKeyConstraint):
                target = c.elements[0].column.table
                constraints.append(
                    Constraint(
                        name=str(c.name or f"{table.name}_{'_'.join(cols)}_fkey"),
                        kind="foreign_key",
                        columns=cols,
                        references=Reference(table=_name(target), columns=tuple(e.column.name for e in c.elements)),
                        on_delete=_fk_action(c.ondelete),
                        on_update=_fk_action(c.onupdate),
                    )
                )
        tables[name] = Table(
            name=name,
            columns=tuple(columns),
            primary_key=pk,
            indexes=tuple(indexes),
            constraints=tuple(constraints),
            comment=table.comment,
        )
    return Schema(tables=tables)
