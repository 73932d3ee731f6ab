"""SQLite: declared types kept as written, no comments, ALTER by table rebuild.

What SQLite holds of the log's vocabulary, and how (each choice is what introspection reads back):

- collations: BINARY (its default, so None), NOCASE and RTRIM, in the column definition; capacity.py
  refuses any other name.
- generated columns: ``GENERATED ALWAYS AS (expr) VIRTUAL|STORED``; ADD COLUMN cannot add a STORED one
  (nor a NOT NULL one), so those are added by a rebuild.
- identity: only the rowid alias (INTEGER PRIMARY KEY AUTOINCREMENT, an identity column that is the whole
  primary key); any other identity column is a plain integer, and identity options (start, increment,
  ...) are not held at all: normalized away, as SQLAlchemy ignores ``Identity()`` on SQLite.
- indexes: partial (WHERE), expression elements and DESC are SQLite's own; other methods, operator
  classes and INCLUDE are refused (capacity.py).
- foreign keys keep DEFERRABLE INITIALLY DEFERRED in the table's text; a unique constraint cannot be
  deferred in SQLite (it always checks at once): normalized away.
- a primary key's name is ``CONSTRAINT name PRIMARY KEY (...)``; the rowid alias is declared on its
  column (AUTOINCREMENT is only allowed there), which takes no name: normalized away.
- an ``enum:NAME`` column is ``VARCHAR(n)``, n the longest value (SQLAlchemy's non-native Enum); the
  type itself is nothing, and a value that changes n rebuilds the tables of its columns.
- MariaDB's per-column character set: normalized away (SQLite has one encoding per database).
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite as sa_sqlite
from sqlalchemy.engine import Dialect as SADialect

from events.model import (
    Column,
    ColumnType,
    Index,
    IndexElement,
    Schema,
    Table,
    evolve,
    parse_type,
    split_table_name,
)
from service.reconciler.dialects.base import Dialect, NativeType, UnsupportedType

SQLITE_COLLATIONS = frozenset({"BINARY", "NOCASE", "RTRIM"})
"""The collations every SQLite has (an application may register more, which a migrator cannot know)."""

_CONSTANT_DEFAULT = re.compile(
    r"^\s*(?:[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|'(?:[^']|'')*'|NULL|TRUE|FALSE)\s*$", re.IGNORECASE
)
"""A default ALTER TABLE ADD COLUMN accepts: a literal (not an expression, not CURRENT_TIMESTAMP)."""


def rowid_alias(table: Table, column: Column) -> bool:
    """An identity column that is the whole primary key: SQLite's INTEGER PRIMARY KEY AUTOINCREMENT."""
    return column.identity and table.primary_key == (column.name,)


def has_rowid_alias(table: Table) -> bool:
    return any(rowid_alias(table, c) for c in table.columns)


def enum_length(schema: Schema, name: str) -> int | None:
    """The length of the VARCHAR an enum type's columns are (its longest value), None if it is unknown."""
    enums = getattr(schema, "enums", None) or {}
    enum = enums.get(name)
    return max(len(v) for v in enum.values) if enum is not None else None


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

    # ---------------------------------------------------------------- enum columns as SQLite holds them

    def type_text(self, column_type: ColumnType) -> str:
        if column_type.is_enum:
            # Only capacity's type check comes here (the DDL sizes it from the schema: held()); a varchar
            # of any length is what SQLite makes of it.
            return "VARCHAR"
        return super().type_text(column_type)

    def held(self, schema: Schema) -> Schema:
        """``schema`` with every ``enum:NAME`` column as the VARCHAR(n) SQLite holds it as, and no enum
        types (SQLite has none). The DDL is made from this form, and introspection reads it back."""
        enums = getattr(schema, "enums", None) or {}
        if not enums:
            return schema
        sizes = {name: enum_length(schema, name) for name in enums}
        tables = {}
        for name, table in schema.tables.items():
            if any(c.type.is_enum and sizes.get(c.type.name) for c in table.columns):
                columns = tuple(
                    evolve(c, type=parse_type(f"varchar({sizes[c.type.name]})"))
                    if c.type.is_enum and sizes.get(c.type.name)
                    else c
                    for c in table.columns
                )
                table = evolve(table, columns=columns)
            tables[name] = table
        return Schema.model_construct(tables=tables, enums={})

    # ---------------------------------------------------------------- what SQLite holds

    def normalize(self, schema: Schema) -> Schema:
        schema = self.held(schema)
        tables = {name: self.normalize_table(table) for name, table in schema.tables.items()}
        return super().normalize(Schema.model_construct(tables=tables))

    def normalize_table(self, table: Table) -> Table:
        """The table-level half of what SQLite holds (the column half: normalize_column)."""
        update: dict[str, Any] = {}
        if table.primary_key_name is not None and (not table.primary_key or has_rowid_alias(table)):
            update["primary_key_name"] = None
        if any(c.kind == "unique" and c.deferrable for c in table.constraints):
            update["constraints"] = tuple(
                evolve(c, deferrable=False, initially_deferred=False) if c.kind == "unique" else c
                for c in table.constraints
            )
        return evolve(table, **update) if update else table

    def normalize_column(self, table: Table, column: Column) -> Column:
        column = super().normalize_column(table, column)
        update: dict[str, Any] = {}
        if column.collation is not None:
            collation = column.collation.upper()
            update["collation"] = None if collation == "BINARY" else collation
        if column.charset is not None:
            update["charset"] = None
        if column.identity_options is not None:
            update["identity_options"] = None
        if column.identity:
            if rowid_alias(table, column):
                update["type"] = ColumnType(name="integer")
            else:
                update["identity"] = False
        if any(column.__dict__[k] != v for k, v in update.items()):
            return evolve(column, **update)
        return column

    # ---------------------------------------------------------------- SQLAlchemy objects

    def column_kwargs(self, table: Table, column: Column) -> dict[str, Any]:
        kwargs = super().column_kwargs(table, column)
        if rowid_alias(table, column):
            kwargs["autoincrement"] = True
        return kwargs

    def column_items(self, table: Table, column: Column) -> list[Any]:
        if column.generated is None:
            return []
        return [sa.Computed(sa.text(column.generated.expression), persisted=column.generated.stored)]

    def sa_type(self, column: Column) -> sa.types.TypeEngine[Any]:
        if column.identity:
            return sa.Integer()  # the rowid alias must be declared INTEGER
        if column.collation is not None:
            return NativeType(f"{self.type_text(column.type)} COLLATE {self.collation(column.collation)}")
        return super().sa_type(column)

    def collation(self, name: str) -> str:
        """A collation as the DDL writes it: one of SQLite's own, bare (capacity.py refused the others)."""
        upper = name.upper()
        if upper not in SQLITE_COLLATIONS:
            raise UnsupportedType(f"SQLite has no collation {name!r} (it has {', '.join(sorted(SQLITE_COLLATIONS))})")
        return upper

    def table_kwargs(self, table: Table) -> dict[str, Any]:
        kwargs = super().table_kwargs(table)
        if has_rowid_alias(table):
            kwargs["sqlite_autoincrement"] = True
        return kwargs

    def primary_key_name(self, table: Table) -> str | None:
        return None if has_rowid_alias(table) else table.primary_key_name

    def sa_foreign_key(self, constraint: Any, target: sa.Table) -> sa.ForeignKeyConstraint:
        fk = super().sa_foreign_key(constraint, target)
        if constraint.deferrable:
            fk.deferrable = True
            fk.initially = "DEFERRED" if constraint.initially_deferred else None
        return fk

    # ---------------------------------------------------------------- indexes

    def create_index_sql(self, table: str, index: Index) -> str:
        if index.method is not None or index.include or any(e.opclass for e in index.elements):
            raise UnsupportedType(f"index {index.name!r}: SQLite has B-tree indexes only, without INCLUDE or opclasses")
        if index.columns:
            parts = [self.quote(c) for c in index.columns]
        else:
            parts = [self.index_element(e) for e in index.elements]
        unique = "UNIQUE " if index.unique else ""
        head = f"CREATE {unique}INDEX {self.index_name(table, index.name)} ON {self.index_table(table)}"
        text = f"{head} ({', '.join(parts)})"
        if index.where is not None:
            text += f" WHERE {index.where}"
        return text

    def index_element(self, element: IndexElement) -> str:
        # an expression in parentheses: a COLLATE or DESC of its own would otherwise be read as the element's
        text = self.quote(element.column) if element.column is not None else f"({element.expression})"
        return text + " DESC" if element.descending else text

    def create_script(self, schema: Schema) -> list[str]:
        schema = self.held(schema)
        md, tables = self.metadata(schema)
        names = {id(t): name for name, t in tables.items()}
        out: list[str] = []
        for sa_table in md.sorted_tables:
            name = names[id(sa_table)]
            out.append(self.compile(sa.schema.CreateTable(sa_table)))
            for index in sorted(schema.tables[name].indexes, key=lambda i: i.name):
                out.append(self.create_index_sql(name, index))
        return out

    def create_table(self, after: Schema, name: str) -> list[str]:
        return super().create_table(self.held(after), name)

    # SQLite alters little in place: what it cannot, a rebuild does (new table, copy, swap).

    TMP = "_schemalog_rebuild"

    def rebuild(self, before: Schema, after: Schema, table: str, fills: dict[str, str] | None = None) -> list[str]:
        """Rebuild ``table`` into its ``after`` shape, keeping the rows of the columns it keeps; a new
        column named in ``fills`` gets that expression in the rows already there."""
        after = self.held(after)
        _md, tables = self.metadata(after, only=[table])
        create = self.compile(sa.schema.CreateTable(tables[table]))
        header = f"CREATE TABLE {self.qualified(table)} ("
        assert create.startswith(header), create[:80]
        create = f"CREATE TABLE {self.quote(self.TMP)} (" + create[len(header) :]
        old_columns = set(before.tables[table].column_names())
        targets: list[str] = []
        sources: list[str] = []
        for column in after.tables[table].columns:
            if column.generated is not None:
                continue  # computed by SQLite: no value can be given to it
            if column.name in old_columns:
                targets.append(self.quote(column.name))
                sources.append(self.quote(column.name))
            elif fills and column.name in fills:
                targets.append(self.quote(column.name))
                sources.append(f"({fills[column.name]})")
        out = [create]
        if targets:
            out.append(
                f"INSERT INTO {self.quote(self.TMP)} ({', '.join(targets)})"
                f" SELECT {', '.join(sources)} FROM {self.qualified(table)}"
            )
        out += [
            f"DROP TABLE {self.qualified(table)}",
            f"ALTER TABLE {self.quote(self.TMP)} RENAME TO {self.quote(table)}",
        ]
        for index in sorted(after.tables[table].indexes, key=lambda i: i.name):
            out.append(self.create_index_sql(table, index))
        return out

    def add_column(self, before: Schema, after: Schema, table: str, column: str, fill: str | None = None) -> list[str]:
        """ALTER TABLE ADD COLUMN where SQLite allows it: a nullable column or one with a literal default,
        not a STORED generated one. Else a rebuild; ``fill`` (a NOT NULL column without a default) is
        what the copied rows get, so the column never holds a default it does not have in the log."""
        col = after.tables[table].column(column)
        assert col is not None
        if fill is not None:
            return self.rebuild(before, after, table, {column: fill})
        if col.generated is not None:
            if col.generated.stored or not col.nullable:
                return self.rebuild(before, after, table)
        elif not col.nullable and col.default is None:
            return self.rebuild(before, after, table)
        if col.default is not None and not _CONSTANT_DEFAULT.match(col.default):
            return self.rebuild(before, after, table)  # "Cannot add a column with non-constant default"
        held = self.held(after)
        return [f"ALTER TABLE {self.qualified(table)} ADD COLUMN {self.column_spec(held, table, column)}"]

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
        """A rebuild (SQLite alters no column in place); with ``fill``, the rows holding NULL get it first,
        so that the copy into the NOT NULL column keeps them."""
        if set(changes) == {"comment"}:
            return []  # SQLite keeps no comments
        out = []
        if fill is not None:
            name = self.quote(column)
            out.append(f"UPDATE {self.qualified(table)} SET {name} = ({fill}) WHERE {name} IS NULL")
        return out + self.rebuild(before, after, table)

    def add_constraint(self, before: Schema, after: Schema, table: str, name: str) -> list[str]:
        return self.rebuild(before, after, table)

    def drop_constraint(self, before: Schema, after: Schema, table: str, name: str) -> list[str]:
        return self.rebuild(before, after, table)

    def set_primary_key(self, before: Schema, after: Schema, table: str) -> list[str]:
        return self.rebuild(before, after, table)

    # ---------------------------------------------------------------- enum types
    # No type of its own: an enum's columns are VARCHAR(n). A value that changes n changes their
    # declared type, so their tables are rebuilt (SQLite would not enforce n, but introspection reads it).

    def add_enum_value(
        self, before: Schema, after: Schema, name: str, value: str, before_value: str | None
    ) -> list[str]:
        return self.resize_enum(before, after, name)

    def drop_enum_value(self, before: Schema, after: Schema, name: str, value: str) -> list[str]:
        return self.resize_enum(before, after, name)

    def resize_enum(self, before: Schema, after: Schema, name: str) -> list[str]:
        if enum_length(before, name) == enum_length(after, name):
            return []
        out: list[str] = []
        for table_name in sorted(after.tables):
            table = after.tables[table_name]
            if any(c.type.is_enum and c.type.name == name for c in table.columns):
                out.extend(self.rebuild(before, after, table_name))
        return out
