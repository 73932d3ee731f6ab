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
- declared types: SQLite keeps a column's declared type as text, and that text matters (``INT PRIMARY KEY``
  is no rowid alias, ``INTEGER PRIMARY KEY`` is). A declared type is read as a portable type only when it
  is, but for case and spaces, exactly what this dialect writes for that type (``DATETIME`` is
  ``timestamp``, ``NUMERIC(5,2)`` is ``numeric(5,2)``); any other text is the native type
  ``sqlite:<text>`` (Sakila's ``TIMESTAMP``, ``DECIMAL(4,2)``, Django's ``bool``), which is written back
  as it was (but ``INT``, read as ``integer`` where it is not the rowid question: ddl._READ_ALIKE).
  The cost: a log imported from such a database is less portable (its native types have no
  form on the other dialects until they are altered to portable ones).
- ``DEFAULT NULL`` written out is kept (the default is the text ``NULL``): SQLite keeps it, and tools
  that read the table's text (SQLAlchemy's Inspector) show it. Elsewhere ``NULL`` and no default
  compare equal (normalize.canonical_default), as they mean the same.
- constraints without a name: the log names every constraint, so introspection invents a name for an
  unnamed one, a pure function of the table (without its schema) and the columns, as PostgreSQL would
  name it: a foreign key ``<table>_<col>_<col>_fkey``, a unique constraint ``<table>_<col>_<col>_key``,
  a check in a column's definition ``<table>_<col>_check``, a check of the table ``<table>_check``
  (a second unnamed one of the same name gets ``1``, then ``2``, ... appended, skipping names the text
  gives), and marks it ``anonymous``. The DDL writes an anonymous constraint without a name, in the
  place its name says (a one-column unique constraint and a ``<table>_<col>_check`` check in the
  column's definition, a one-column foreign key as the column's ``REFERENCES``), so that it reads back
  the same; every other constraint is written ``CONSTRAINT name``, even one named as the rule would name
  it (SQLAlchemy's ``name="tags_label_key"`` stays named). An anonymous constraint whose name the rule
  would not give it back (its table was renamed, or an earlier one of the same name was dropped) is
  written named too: normalized to not anonymous, which is what SQLite then holds.
  (A table-level ``UNIQUE (c)`` without a name therefore comes back in the column's definition.)
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite as sa_sqlite
from sqlalchemy.engine import Dialect as SADialect

from events.model import (
    Column,
    ColumnType,
    Constraint,
    Index,
    IndexElement,
    Schema,
    Table,
    evolve,
    parse_type,
    split_table_name,
    triggers_of,
    views_of,
)
from service.reconciler.dialects.base import Dialect, NativeType, UnsupportedType, inline_domains
from service.reconciler.introspect import live_native_type
from service.reconciler.normalize import canonical_default

SQLITE_COLLATIONS = frozenset({"BINARY", "NOCASE", "RTRIM"})
"""The collations every SQLite has (an application may register more, which a migrator cannot know)."""

_CONSTANT_DEFAULT = re.compile(
    r"^\s*(?:[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|'(?:[^']|'')*'|NULL|TRUE|FALSE)\s*$", re.IGNORECASE
)
"""A default ALTER TABLE ADD COLUMN accepts: a literal (not an expression, not CURRENT_TIMESTAMP)."""


# --------------------------------------------------------------------------- names SQLite does not keep


def bare_table(table: str) -> str:
    return split_table_name(table)[1]


def foreign_key_name(table: str, columns: tuple[str, ...]) -> str:
    """The name introspection gives a foreign key the table's text does not name."""
    return f"{bare_table(table)}_{'_'.join(columns)}_fkey"


def unique_name(table: str, columns: tuple[str, ...]) -> str:
    """The name introspection gives a unique constraint the table's text does not name."""
    return f"{bare_table(table)}_{'_'.join(columns)}_key"


def check_name(table: str, column: str | None) -> str:
    """The name introspection gives an unnamed check: of a column's definition, or of the table."""
    return f"{bare_table(table)}_{column}_check" if column is not None else f"{bare_table(table)}_check"


def _rule_place(table: Table, constraint: Constraint) -> tuple[str, str]:
    """The rule's name for an anonymous constraint (before any number is appended to it) and where the DDL
    writes it: "" in the table, a column's name in that column's definition."""
    if constraint.kind == "foreign_key":
        return foreign_key_name(table.name, constraint.columns), ""
    if constraint.kind == "unique":
        sole = table.column(constraint.columns[0]) if len(constraint.columns) == 1 else None
        place = sole.name if sole is not None and not sole.identity else ""
        return unique_name(table.name, constraint.columns), place
    prefix, suffix = f"{bare_table(table.name)}_", "_check"
    name = constraint.name.rstrip("0123456789")
    if name.startswith(prefix) and name.endswith(suffix):
        column = name[len(prefix) : -len(suffix)]
        if table.column(column) is not None:
            return check_name(table.name, column), column
    return check_name(table.name, None), ""


def written_unnamed(table: Table) -> dict[str, str]:
    """The anonymous constraints the DDL writes without a name, each with its place (see _rule_place):
    those introspection names back as they are named. It invents names as introspection does (the rule,
    then 1, 2, ... past the names taken), in the order the DDL writes them; one it would not name back
    is written ``CONSTRAINT name``, which takes that name, so the rest are tried again."""
    anonymous = [c for c in table.constraints if c.anonymous]
    if not anonymous:
        return {}
    pk_name = None if has_rowid_alias(table) else table.primary_key_name
    while True:
        kept = {c.name for c in anonymous}
        taken = {c.name for c in table.constraints if c.name not in kept}
        if pk_name is not None:
            taken.add(pk_name)
        out: dict[str, str] = {}
        inline_uniques: set[str] = set()
        # the text has uniques and checks first (column definitions, then the table's), foreign keys last
        for constraint in sorted(anonymous, key=lambda c: c.kind == "foreign_key"):
            base, place = _rule_place(table, constraint)
            if constraint.kind == "unique" and place:
                if place in inline_uniques:
                    continue  # a column's definition says UNIQUE once
                inline_uniques.add(place)
            name, n = base, 0
            while name in taken:
                n += 1
                name = f"{base}{n}"
            taken.add(name)
            if name == constraint.name:
                out[constraint.name] = place
        if len(out) == len(anonymous):
            return out
        anonymous = [c for c in anonymous if c.name in out]


def unnamed(table: Table, constraint: Constraint) -> str | None:
    """Where the DDL writes ``constraint`` without a name, so that introspection invents its name back:
    "" in the table, a column's name in that column's definition; None when it is written ``CONSTRAINT
    name`` (it is not anonymous, or the rule would not give its name back)."""
    if not constraint.anonymous:
        return None
    return written_unnamed(table).get(constraint.name)


def inline_foreign_key(table: Table, constraint: Constraint) -> bool:
    """An unnamed foreign key of one column (not the rowid alias): written in the column's definition."""
    if constraint.kind != "foreign_key" or len(constraint.columns) != 1 or unnamed(table, constraint) != "":
        return False
    column = table.column(constraint.columns[0])
    return column is not None and not column.identity


# --------------------------------------------------------------------------- declared types

SQLITE_TYPE_NAMES: dict[str, str] = {
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
"""Portable type -> what the DDL declares (and what introspection reads back as that portable type)."""
_WRITTEN_TYPES = {text: name for name, text in SQLITE_TYPE_NAMES.items()}
_PUNCTUATION_SPACES = re.compile(r"\s*([(),])\s*")


def _type_key(text: str) -> str:
    """A declared type's text with case and spaces taken out (SQLite reads neither)."""
    return _PUNCTUATION_SPACES.sub(r"\1", " ".join(text.split())).upper()


_READ_ALIKE = {"INT": "integer"}
"""Spellings read as the portable type although the DDL writes another: SQLite gives ``INT`` and ``INTEGER``
the same affinity (and SQLAlchemy reads both as INTEGER), and a foreign key's columns must have the same
type in the log (Sakila's INT columns reference INTEGER keys). Not for a table's only primary key column:
there ``INTEGER`` is the rowid alias and ``INT`` is not."""


def declared_type(declared: str, sole_key: bool = False) -> ColumnType:
    """A column's declared type as the log holds it: the portable type this dialect writes as exactly this
    text (but for case and spaces), else the native ``sqlite:<text>`` (see the module's docstring).
    ``sole_key``: the column is the table's whole primary key."""
    key = _type_key(declared)
    if not key:
        return ColumnType(name="bytes")  # no declared type: BLOB affinity
    if key in _READ_ALIKE and not sole_key:
        return ColumnType(name=_READ_ALIKE[key])
    head, paren, rest = key.partition("(")
    portable = _WRITTEN_TYPES.get(head.strip())
    if portable is not None:
        try:
            found = parse_type(f"{portable}{paren}{rest}".lower())
        except ValueError:
            found = None
        if found is not None and _type_key(SqliteDialect().type_text(found)) == key:
            return found
    return live_native_type("sqlite", " ".join(declared.split()))


def keep_null_defaults(source: Schema, canonical: Schema) -> Schema:
    """``canonical`` (``source`` in canonical form) with the defaults ``source`` writes as NULL put back as
    the text ``NULL``: canonical_default drops them, as they mean no default, but SQLite keeps the text."""
    tables = dict(canonical.tables)
    changed = False
    for name, table in source.tables.items():
        nulls = {c.name for c in table.columns if c.default is not None and canonical_default(c.default) is None}
        if not nulls or name not in tables:
            continue
        have = tables[name]
        columns = tuple(evolve(c, default="NULL") if c.name in nulls else c for c in have.columns)
        tables[name] = evolve(have, columns=columns)
        changed = True
    if not changed:
        return canonical
    return Schema.model_construct(
        tables=tables,
        enums=getattr(canonical, "enums", None) or {},
        views=views_of(canonical),
        triggers=triggers_of(canonical),
    )


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
    type_names: ClassVar[dict[str, str]] = SQLITE_TYPE_NAMES

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
        types (SQLite has none), each column of a domain of the domain's type. The DDL is made from this
        form, and introspection reads it back."""
        schema = inline_domains(schema)
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
        return Schema.model_construct(tables=tables, enums={}, views=views_of(schema))

    # ---------------------------------------------------------------- what SQLite holds

    def normalize(self, schema: Schema) -> Schema:
        original, schema = schema, self.held(schema)
        tables = {name: self.normalize_table(table) for name, table in schema.tables.items()}
        plain = Schema.model_construct(tables=tables, views=views_of(schema), triggers=triggers_of(original))
        return keep_null_defaults(plain, super().normalize(plain))

    def normalize_table(self, table: Table) -> Table:
        """The table-level half of what SQLite holds (the column half: normalize_column)."""
        update: dict[str, Any] = {}
        if table.primary_key_name is not None and (not table.primary_key or has_rowid_alias(table)):
            update["primary_key_name"] = None
        constraints = table.constraints
        if any(c.kind == "unique" and c.deferrable for c in constraints):
            constraints = tuple(
                evolve(c, deferrable=False, initially_deferred=False) if c.kind == "unique" else c for c in constraints
            )
        if any(c.anonymous for c in constraints):
            unnamed_here = written_unnamed(table)  # names and places do not depend on deferrable
            constraints = tuple(
                evolve(c, anonymous=False) if c.anonymous and c.name not in unnamed_here else c for c in constraints
            )
        if constraints is not table.constraints:
            update["constraints"] = constraints
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
        if column.type.dialect == self.name:
            # sqlite:datetime is written, and read back, as timestamp
            held = declared_type(self.type_text(column.type), table.primary_key == (column.name,))
            if held != column.type:
                update["type"] = held
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

    def sa_column(
        self, table: Table, column: Column, unique: bool = False, checks: tuple[Any, ...] = ()
    ) -> sa.Column[Any]:
        """A column; ``unique`` and ``checks``: the unnamed constraints its definition carries."""
        column_type = self.sa_type(column)
        if isinstance(column_type, NativeType):  # not the rowid alias's (sa_table keeps its own in the table)
            suffix = (" UNIQUE" if unique else "") + self.inline_reference(table, column)
            if suffix:
                column_type = NativeType(column_type.text + suffix)
        return sa.Column(
            column.name,
            column_type,
            *self.column_items(table, column),
            *checks,
            **self.column_kwargs(table, column),
        )

    def sa_table(self, md: sa.MetaData, table: Table) -> sa.Table:
        """One table (no foreign keys, no indexes); an anonymous constraint is written without a name, where
        introspection finds it and names it back (see the module's docstring)."""
        owner, bare = split_table_name(table.name)
        inline_unique: set[str] = set()
        inline_checks: dict[str, list[Any]] = {}
        items: list[Any] = []
        for constraint in table.constraints:
            if constraint.kind not in ("unique", "check"):
                continue
            where = unnamed(table, constraint)
            name = None if where is not None else constraint.name
            if constraint.kind == "unique":
                column = table.column(where) if where else None
                if column is not None and not column.identity:
                    inline_unique.add(column.name)
                else:  # UNIQUE (c) without a name reads back with the same name
                    items.append(sa.UniqueConstraint(*constraint.columns, name=name))
                continue
            check = sa.CheckConstraint(sa.text(constraint.expression or ""), name=name)
            if where:
                inline_checks.setdefault(where, []).append(check)
            else:
                items.append(check)
        columns = [
            self.sa_column(table, c, c.name in inline_unique, tuple(inline_checks.get(c.name, ())))
            for c in table.columns
        ]
        out = sa.Table(bare, md, *columns, *items, schema=owner, **self.table_kwargs(table))
        if table.primary_key:
            out.primary_key.name = self.primary_key_name(table)
        return out

    def metadata(self, schema: Schema, only: Iterable[str] | None = None) -> tuple[sa.MetaData, dict[str, sa.Table]]:
        """Base's, but an anonymous foreign key (unnamed()) is written without a name:
        in its column's definition (``REFERENCES t (c)``, as sa_table writes it) if it has one column, so
        that tools reading the table's text find it where the source had it, else in the table."""
        md, tables = super().metadata(schema, only)
        for name, sa_table in tables.items():
            table = schema.tables.get(name)
            if table is None:
                continue
            invented = {c.name for c in table.constraints if c.kind == "foreign_key" and unnamed(table, c) == ""}
            inline = {c.name for c in table.constraints if c.name in invented and inline_foreign_key(table, c)}
            for fk in list(sa_table.foreign_key_constraints):
                if fk.name in inline:  # its column's type text carries it (sa_table)
                    sa_table.constraints.discard(fk)
                    for element in fk.elements:
                        sa_table.foreign_keys.discard(element)
                        element.parent.foreign_keys.discard(element)
                elif fk.name in invented:
                    fk.name = None
        return md, tables

    def inline_reference(self, table: Table, column: Column) -> str:
        """The ``REFERENCES`` clause a column's definition carries for an unnamed one-column foreign key."""
        out = []
        for c in table.constraints:
            ref = c.references
            if ref is None or c.columns != (column.name,) or not inline_foreign_key(table, c):
                continue
            text = f" REFERENCES {self.quote(bare_table(ref.table))} ({', '.join(self.quote(r) for r in ref.columns)})"
            if c.on_delete:
                text += f" ON DELETE {c.on_delete.upper()}"
            if c.on_update:
                text += f" ON UPDATE {c.on_update.upper()}"
            if c.deferrable:
                text += " DEFERRABLE INITIALLY DEFERRED" if c.initially_deferred else " DEFERRABLE"
            out.append(text)
        return "".join(out)

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

    def table_script(self, schema: Schema) -> list[str]:
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

    # ---------------------------------------------------------------- views: SQLite keeps the statement itself

    def create_view(self, before: Schema, after: Schema, name: str) -> list[str]:
        return [self.view_definition(after, name)]

    def replace_view(self, before: Schema, after: Schema, name: str) -> list[str]:
        return self.drop_view(before, after, name) + self.create_view(before, after, name)

    # ---------------------------------------------------------------- triggers: SQLite keeps the statement
    # itself (events.objects.sqlite_trigger_target); it has no CREATE OR REPLACE TRIGGER, and names a
    # trigger once in a schema (DROP TRIGGER takes no table).

    def replace_trigger(self, before: Schema, after: Schema, key: str) -> list[str]:
        return self.drop_trigger(before, after, key) + self.create_trigger(before, after, key)

    def drop_trigger(self, before: Schema, after: Schema, key: str) -> list[str]:
        trigger = triggers_of(before)[key]
        self.object_definition(f"trigger {trigger.name} on {trigger.table}", trigger.definitions)
        return [f"DROP TRIGGER IF EXISTS {self.quote(trigger.name)}"]

    def table_triggers(self, schema: Schema, table: str) -> list[str]:
        """The statements that make ``table``'s triggers again (a rebuild's DROP TABLE dropped them)."""
        triggers = triggers_of(schema)
        return [
            triggers[k].definitions[self.name]
            for k in sorted(triggers)
            if triggers[k].table == table and self.name in triggers[k].definitions
        ]

    # SQLite alters little in place: what it cannot, a rebuild does (new table, copy, swap).

    TMP = "_schemalog_rebuild"

    def after_rename(self, before: Schema, after: Schema, old: str, new: str) -> list[str]:
        """SQLite keeps no name for an anonymous constraint: introspection invents it from the table's and
        columns' names, so a rename changes the names it reads back. Where that changes which anonymous
        constraints can be written without a name, the table is rebuilt as the log now has it (those the
        rule no longer names back are written ``CONSTRAINT name``)."""
        now = after.tables[new]
        if not any(c.anonymous for c in now.constraints) or written_unnamed(before.tables[old]) == written_unnamed(now):
            return []
        return self.rebuild(after, after, new)

    def rebuild(self, before: Schema, after: Schema, table: str, fills: dict[str, str] | None = None) -> list[str]:
        """Rebuild ``table`` into its ``after`` shape, keeping the rows of the columns it keeps; a new
        column named in ``fills`` gets that expression in the rows already there. The table's triggers are
        made again last (dropping the table dropped them)."""
        triggers = self.table_triggers(after, table)
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
        return out + triggers

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
