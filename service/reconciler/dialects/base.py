"""What every target dialect says about itself: type names, what it can hold, how DDL looks.

A dialect is a small subclass configured by class attributes and registered in
service.reconciler.dialects.DIALECTS (explicitly, no import side effects).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cached_property
from operator import is_
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.engine import Dialect as SADialect
from sqlalchemy.types import UserDefinedType

from events.model import (
    Column,
    ColumnType,
    Constraint,
    Index,
    Routine,
    Schema,
    Table,
    Trigger,
    View,
    construct,
    domains_of,
    evolve,
    routines_of,
    split_table_name,
    triggers_of,
    views_of,
)
from service.reconciler.normalize import canonical_definition, canonical_table

_QUOTED_OR_NOT = re.compile(r"'(?:[^']|'')*'|[^']+")


def _upper_unquoted(match: re.Match[str]) -> str:
    text = match.group(0)
    return text if text.startswith("'") else text.upper()


class UnsupportedType(ValueError):
    """A type this dialect cannot hold (a native type of another dialect, MySQL intervals, ...)."""


def inline_domains(schema: Schema) -> Schema:
    """``schema`` with each column of a domain of the log given the domain's own type instead, and no
    domains: how a dialect without domains (MariaDB, SQLite) holds them."""
    domains = domains_of(schema)
    if not domains:
        return schema
    tables = {}
    for name, table in schema.tables.items():
        if any(c.type.is_domain for c in table.columns):
            columns = []
            for column in table.columns:
                if column.type.is_domain:
                    found = domains.get(column.type.name)
                    if found is None:
                        raise UnsupportedType(f"column {name}.{column.name}: no domain {column.type.name!r}")
                    column = evolve(column, type=found.type)
                columns.append(column)
            table = evolve(table, columns=tuple(columns))
        tables[name] = table
    return evolve(schema, tables=tables, domains={})


class NativeType(UserDefinedType[Any]):
    """A column type rendered exactly as given: the dialect class chose the text."""

    cache_ok = True

    def __init__(self, text: str):
        self.text = text

    def get_col_spec(self, **kw: Any) -> str:
        return self.text


INTEGER_TYPES: dict[str, type[sa.types.Integer]] = {
    "smallint": sa.SmallInteger,
    "integer": sa.Integer,
    "bigint": sa.BigInteger,
}


_NORMALIZED: dict[type[Dialect], dict[int, tuple[Table, Table]]] = {}
"""Per dialect class, the tables the last ``normalize`` met, by id: (the table, held so that its id is not
reused while it is here; its form in that dialect)."""


class Dialect:
    name: ClassVar[str] = ""
    transactional_ddl: ClassVar[bool] = False
    supports_comments: ClassVar[bool] = True
    inline_foreign_keys: ClassVar[bool] = False
    """True: foreign keys inside CREATE TABLE; False: ALTER TABLE ... ADD CONSTRAINT afterwards."""
    type_names: ClassVar[dict[str, str]] = {}
    """Portable type -> this dialect's name; parameters are appended (``NUMERIC(10,2)``) unless
    the name already has its own (``TINYINT(1)``)."""

    def make_sa_dialect(self) -> SADialect:
        """A new SQLAlchemy dialect object for this dialect (``sa_dialect`` keeps one)."""
        raise NotImplementedError

    @cached_property
    def _sa_dialect(self) -> SADialect:
        return self.make_sa_dialect()

    def sa_dialect(self) -> SADialect:
        """SQLAlchemy's dialect, one per instance: its identifier preparer caches the names it quoted."""
        return self._sa_dialect

    # ---------------------------------------------------------------- types

    def type_text(self, column_type: ColumnType) -> str:
        if column_type.dialect is not None:
            if column_type.dialect != self.name:
                raise UnsupportedType(f"type {column_type} is native to {column_type.dialect}, not {self.name}")
            # upper case but inside quoted parameters (ENUM('Active','b')), which the grammar keeps as given
            return _QUOTED_OR_NOT.sub(_upper_unquoted, column_type.name)
        template = self.type_names.get(column_type.name)
        if template is None:
            raise UnsupportedType(f"type {column_type.name} has no {self.name} form")
        if column_type.params and "(" not in template:
            return f"{template}({','.join(str(p) for p in column_type.params)})"
        return template

    # ---------------------------------------------------------------- what the dialect can hold

    def normalize_column(self, table: Table, column: Column) -> Column:
        """The column as this dialect holds it (what introspection can give back)."""
        if not self.supports_comments and column.comment is not None:
            column = column.model_copy(update={"comment": None})
        return column

    def normalize(self, schema: Schema) -> Schema:
        """The schema as this dialect can hold it: the projection to compare introspection with.

        Each table's form is a function of the table alone (and of the dialect's class: dialects hold no
        state of their own), so the forms made by the last call are kept, by table object, and a table
        met again (the start and the target of a plan share every table the plan leaves alone; a state
        the projector kept) is not made again."""
        previous = _NORMALIZED.get(type(self), {})
        made: dict[int, tuple[Table, Table]] = {}
        tables = {}
        for name, table in schema.tables.items():
            hit = previous.get(id(table))
            if hit is None or hit[0] is not table:
                hit = (table, canonical_table(self._normalize_table(table)))
            made[id(table)] = hit
            tables[name] = hit[1]
        _NORMALIZED[type(self)] = made
        return construct(
            Schema,
            {
                "tables": tables,
                "enums": {},
                "domains": {},
                "views": self.normalize_views(schema),
                "extensions": {},
                "routines": self.normalize_routines(schema),
                "triggers": self.normalize_triggers(schema),
            },
        )

    def normalize_routines(self, schema: Schema) -> dict[str, Routine]:
        """The routines this dialect holds (those with a definition for it): its own definition only (as
        written: normalize.routine_differences compares them as the dialect's parser reads them); what they
        use is the log's, not compared."""
        out = {}
        for key, routine in routines_of(schema).items():
            text = routine.definitions.get(self.name)
            if text is not None:
                out[key] = evolve(routine, definitions={self.name: text}, uses=())
        return out

    def normalize_triggers(self, schema: Schema) -> dict[str, Trigger]:
        """The triggers this dialect holds (those with a definition for it), as normalize_routines."""
        out = {}
        for key, trigger in triggers_of(schema).items():
            text = trigger.definitions.get(self.name)
            if text is not None:
                out[key] = evolve(trigger, definitions={self.name: text}, uses=())
        return out

    def normalize_views(self, schema: Schema) -> dict[str, View]:
        """The views as this dialect holds them: its own definition only (whitespace runs as one space),
        whether materialized; what they read is the log's (the databases say it other ways), not compared."""
        out = {}
        for name, view in views_of(schema).items():
            text = view.definitions.get(self.name)
            definitions = {} if text is None else {self.name: canonical_definition(text)}
            out[name] = construct(
                View,
                {
                    "name": name,
                    "definitions": definitions,
                    "materialized": view.materialized,
                    "uses": (),
                    "columns": (),
                    "security": view.security if self.name == "mysql" else None,
                },
            )
        return out

    def _normalize_table(self, table: Table) -> Table:
        columns = tuple(self.normalize_column(table, c) for c in table.columns)
        if all(map(is_, columns, table.columns)) and (self.supports_comments or table.comment is None):
            return table  # as this dialect holds it already (objects are immutable: shared)
        update: dict[str, Any] = {"columns": columns}
        if not self.supports_comments:
            update["comment"] = None
        return table.model_copy(update=update)

    # ---------------------------------------------------------------- SQLAlchemy objects

    def column_kwargs(self, table: Table, column: Column) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"nullable": column.nullable, "primary_key": column.name in table.primary_key}
        if column.default is not None:
            kwargs["server_default"] = sa.text(column.default)
        if column.comment is not None and self.supports_comments:
            kwargs["comment"] = column.comment
        if not column.identity:
            kwargs["autoincrement"] = False
        return kwargs

    def column_items(self, table: Table, column: Column) -> list[Any]:
        """Positional extras of a column (PostgreSQL's Identity)."""
        return []

    def table_kwargs(self, table: Table) -> dict[str, Any]:
        kwargs: dict[str, Any] = {}
        if table.comment is not None and self.supports_comments:
            kwargs["comment"] = table.comment
        return kwargs

    def sa_type(self, column: Column) -> sa.types.TypeEngine[Any]:
        if column.identity:  # SQLAlchemy's own integer types, so that it knows the column counts
            return INTEGER_TYPES[column.type.name]()
        return NativeType(self.type_text(column.type))

    def sa_column(self, table: Table, column: Column) -> sa.Column[Any]:
        return sa.Column(
            column.name,
            self.sa_type(column),
            *self.column_items(table, column),
            **self.column_kwargs(table, column),
        )

    def metadata(self, schema: Schema, only: Iterable[str] | None = None) -> tuple[sa.MetaData, dict[str, sa.Table]]:
        """SQLAlchemy objects for a schema (foreign keys resolved to Column objects).

        With ``only``, just those tables and the tables their foreign keys reference.
        """
        md = sa.MetaData()
        tables: dict[str, sa.Table] = {}
        referenced: dict[str, set[str]] = {}
        if only is None:
            wanted = set(schema.tables)
        else:
            wanted = set(only)
            for name in list(wanted):
                for c in schema.tables[name].constraints:
                    if c.references is not None and c.references.table not in wanted:
                        referenced.setdefault(c.references.table, set()).update(c.references.columns)
        for name, columns in referenced.items():  # only what a foreign key names: the statement needs no more
            tables[name] = self._partial(md, schema, name, columns)
        for name in sorted(wanted):
            tables[name] = self.sa_table(md, schema.tables[name])
        for name in wanted:
            table = schema.tables[name]
            for constraint in table.constraints:
                if constraint.kind != "foreign_key" or constraint.references is None:
                    continue
                target = tables.get(constraint.references.table)
                if target is None:
                    continue
                tables[name].append_constraint(self.sa_foreign_key(constraint, target))
            for index in table.indexes:
                sa.Index(index.name, *(tables[name].c[c] for c in index.columns), unique=index.unique)
        return md, tables

    def sa_table(self, md: sa.MetaData, table: Table) -> sa.Table:
        """One table: columns, primary key, unique and check constraints (no foreign keys, no indexes)."""
        owner, bare = split_table_name(table.name)
        items: list[Any] = [self.sa_column(table, c) for c in table.columns]
        for constraint in table.constraints:
            if constraint.kind == "unique":
                items.append(sa.UniqueConstraint(*constraint.columns, name=constraint.name))
            elif constraint.kind == "check":
                items.append(sa.CheckConstraint(sa.text(constraint.expression or ""), name=constraint.name))
        out = sa.Table(bare, md, *items, schema=owner, **self.table_kwargs(table))
        in_order = [c.name for c in table.columns if c.name in table.primary_key]
        if table.primary_key and list(table.primary_key) != in_order:
            # a key whose columns are not in the table's column order: SQLAlchemy writes them in column order
            out.append_constraint(sa.PrimaryKeyConstraint(*table.primary_key))
        if table.primary_key:
            out.primary_key.name = self.primary_key_name(table)
        return out

    def _partial(self, md: sa.MetaData, schema: Schema, name: str, columns: Iterable[str]) -> sa.Table:
        """A table with only some of its columns, no constraints: enough to name it in a statement."""
        table = schema.tables[name]
        owner, bare = split_table_name(name)
        keep = set(columns)
        items = [self.sa_column(table, c) for c in table.columns if c.name in keep]
        return sa.Table(bare, md, *items, schema=owner)

    def primary_key_name(self, table: Table) -> str | None:
        return None

    def sa_foreign_key(self, constraint: Any, target: sa.Table) -> sa.ForeignKeyConstraint:
        return sa.ForeignKeyConstraint(
            list(constraint.columns),
            [target.c[c] for c in constraint.references.columns],
            name=constraint.name,
            ondelete=constraint.on_delete.upper() if constraint.on_delete else None,
            onupdate=constraint.on_update.upper() if constraint.on_update else None,
            use_alter=not self.inline_foreign_keys,
        )

    def compile(self, element: Any) -> str:
        return str(element.compile(dialect=self.sa_dialect())).strip()

    def view_script(self, schema: Schema) -> list[str]:
        """The statements that make the schema's views, each after what it reads (create_script's last)."""
        from projections.diff import view_order

        out: list[str] = []
        for name in view_order(views_of(schema)):
            out.extend(self.create_view(Schema(), schema, name))
        return out

    def routine_script(self, schema: Schema) -> list[str]:
        """The statements that make the schema's routines this dialect has a definition of, each after the
        routines it uses (after the tables, before the views)."""
        from projections.diff import routine_order

        routines = routines_of(schema)
        return [
            routines[k].definitions[self.name] for k in routine_order(routines) if self.name in routines[k].definitions
        ]

    def trigger_script(self, schema: Schema) -> list[str]:
        """The statements that make the schema's triggers this dialect has a definition of (create_script's last)."""
        triggers = triggers_of(schema)
        return [triggers[k].definitions[self.name] for k in sorted(triggers) if self.name in triggers[k].definitions]

    def create_script(self, schema: Schema) -> list[str]:
        """Statements that create ``schema`` in an empty database, in a runnable order."""
        return (
            self.table_script(schema)
            + self.routine_script(schema)
            + self.view_script(schema)
            + self.trigger_script(schema)
        )

    def table_script(self, schema: Schema) -> list[str]:
        """create_script's tables, with their indexes and keys."""
        md, _ = self.metadata(schema)
        statements: list[str] = []
        ordered = [t for t in md.sorted_tables]
        for table in ordered:
            if self.inline_foreign_keys:
                statements.append(self.compile(sa.schema.CreateTable(table)))
            else:
                statements.append(self.compile(sa.schema.CreateTable(table, include_foreign_key_constraints=[])))
            statements.extend(self.comment_statements(table))
            for index in sorted(table.indexes, key=lambda i: str(i.name)):
                statements.append(self.compile(sa.schema.CreateIndex(index)))
        if not self.inline_foreign_keys:
            for table in ordered:
                for fk in sorted(table.foreign_key_constraints, key=lambda c: str(c.name)):
                    statements.append(self.compile(sa.schema.AddConstraint(fk)))
        return statements

    def comment_statements(self, table: sa.Table) -> list[str]:
        return []

    # ---------------------------------------------------------------- one change at a time
    # Each takes the tables as they are before and/or after the change, and returns statements.

    def quote(self, name: str) -> str:
        return str(self.sa_dialect().identifier_preparer.quote(name))

    def qualified(self, table: str) -> str:
        owner, bare = split_table_name(table)
        return f"{self.quote(owner)}.{self.quote(bare)}" if owner else self.quote(bare)

    def create_table(self, after: Schema, name: str) -> list[str]:
        model = after.tables[name]
        if self.inline_foreign_keys:
            _md, tables = self.metadata(after, only=[name])
            table = tables[name]
            out = [self.compile(sa.schema.CreateTable(table))]
        else:  # the foreign keys follow as ALTER TABLE: the table alone is enough
            table = self.sa_table(sa.MetaData(), model)
            out = [self.compile(sa.schema.CreateTable(table, include_foreign_key_constraints=[]))]
        out.extend(self.comment_statements(table))
        for index in sorted(model.indexes, key=lambda i: i.name):
            out.append(self.create_index_sql(name, index))
        if not self.inline_foreign_keys:
            keys = [c for c in model.constraints if c.kind == "foreign_key" and c.references is not None]
            for fk in sorted(keys, key=lambda c: c.name):
                out.append(self.add_constraint_sql(name, fk))
        return out

    def drop_table(self, before: Schema, name: str) -> list[str]:
        return [f"DROP TABLE {self.qualified(name)}"]

    def rename_table(self, before: Schema, old: str, new: str) -> list[str]:
        return [f"ALTER TABLE {self.qualified(old)} RENAME TO {self.quote(split_table_name(new)[1])}"]

    def after_rename(self, before: Schema, after: Schema, old: str, new: str) -> list[str]:
        """What a rename of a table (``old`` to ``new``) or of one of its columns (``old == new``) needs
        beyond the rename itself: nothing, but where a dialect derives something from the names (SQLite)."""
        return []

    def column_spec(self, after: Schema, table: str, column: str) -> str:
        _, tables = self.metadata(after, only=[table])
        return self.compile(sa.schema.CreateColumn(tables[table].c[column]))

    def add_column(self, before: Schema, after: Schema, table: str, column: str, fill: str | None = None) -> list[str]:
        """``fill``: the expression the rows already in the table get (a NOT NULL column without a
        default); each dialect says how (a default added and dropped again, or an UPDATE)."""
        if fill is not None:
            raise NotImplementedError(f"{self.name}: add_column with fill")
        out = [f"ALTER TABLE {self.qualified(table)} ADD COLUMN {self.column_spec(after, table, column)}"]
        return out + self.column_comment(after, table, column)

    def column_comment(self, after: Schema, table: str, column: str) -> list[str]:
        return []

    def table_comment(self, after: Schema, table: str) -> list[str]:
        return []  # dialects without comments (SQLite) have nothing to do

    def literal(self, text: str | None) -> str:
        if text is None:
            return "NULL"
        return "'" + text.replace("'", "''") + "'"

    def drop_column(self, before: Schema, after: Schema, table: str, column: str) -> list[str]:
        return [f"ALTER TABLE {self.qualified(table)} DROP COLUMN {self.quote(column)}"]

    def rename_column(self, before: Schema, after: Schema, table: str, old: str, new: str) -> list[str]:
        return [f"ALTER TABLE {self.qualified(table)} RENAME COLUMN {self.quote(old)} TO {self.quote(new)}"]

    def alter_column(
        self,
        before: Schema,
        after: Schema,
        table: str,
        column: str,
        changes: dict[str, Any],
        fill: str | None = None,
    ) -> list[str]:
        """``fill`` (with ``nullable`` false in ``changes``): what rows holding NULL get first."""
        raise NotImplementedError

    # ---------------------------------------------------------------- enum types (Schema.enums)
    # A dialect without types of its own (MariaDB, SQLite) writes an enum column inline: creating or
    # dropping the type is nothing, changing its values changes the columns that use it.

    def create_enum(self, before: Schema, after: Schema, name: str) -> list[str]:
        return []

    def add_enum_value(
        self, before: Schema, after: Schema, name: str, value: str, before_value: str | None
    ) -> list[str]:
        return []

    def drop_enum_value(self, before: Schema, after: Schema, name: str, value: str) -> list[str]:
        return []

    def drop_enum(self, before: Schema, after: Schema, name: str) -> list[str]:
        return []

    # ---------------------------------------------------------------- domains (Schema.domains)
    # A dialect without domains (MariaDB, SQLite) holds a column of one as a column of its type
    # (inline_domains): creating or dropping the domain is nothing there.

    def create_domain(self, before: Schema, after: Schema, name: str) -> list[str]:
        return []

    def drop_domain(self, before: Schema, after: Schema, name: str) -> list[str]:
        return []

    # ---------------------------------------------------------------- extensions (Schema.extensions)
    # PostgreSQL's alone: the others leave them out (normalize) and make nothing of them.

    def create_extension(self, before: Schema, after: Schema, name: str) -> list[str]:
        return []

    def drop_extension(self, before: Schema, after: Schema, name: str) -> list[str]:
        return []

    # ---------------------------------------------------------------- views (Schema.views)
    # The view's definition for this dialect (events.objects: proven one CREATE of the view when it came in,
    # and each statement proven single again before it is sent, service.reconciler.statements).

    def view_definition(self, schema: Schema, name: str) -> str:
        view = views_of(schema)[name]
        text = view.definitions.get(self.name)
        if text is None:
            raise UnsupportedType(f"view {name} has no {self.name} definition (it has: {', '.join(view.definitions)})")
        return text

    def create_view(self, before: Schema, after: Schema, name: str) -> list[str]:
        view = views_of(after)[name]
        kind = "MATERIALIZED VIEW" if view.materialized else "VIEW"
        return [f"CREATE {kind} {self.qualified(name)} AS {self.view_definition(after, name)}"]

    def replace_view(self, before: Schema, after: Schema, name: str) -> list[str]:
        if views_of(after)[name].materialized:
            return self.drop_view(before, after, name) + self.create_view(before, after, name)
        return [f"CREATE OR REPLACE VIEW {self.qualified(name)} AS {self.view_definition(after, name)}"]

    def drop_view(self, before: Schema, after: Schema, name: str) -> list[str]:
        kind = "MATERIALIZED VIEW" if views_of(before)[name].materialized else "VIEW"
        return [f"DROP {kind} {self.qualified(name)}"]

    # ---------------------------------------------------------------- routines and triggers
    # Their definition for this dialect is the whole statement (events.objects: ``CREATE OR REPLACE ...``,
    # proven one CREATE of the object when it came in, and proven single again before it is sent), so a
    # creation and a replacement send the same text.

    def object_definition(self, what: str, definitions: dict[str, str]) -> str:
        text = definitions.get(self.name)
        if text is None:
            raise UnsupportedType(f"{what} has no {self.name} definition (it has: {', '.join(definitions)})")
        return text

    def create_routine(self, before: Schema, after: Schema, key: str) -> list[str]:
        routine = routines_of(after)[key]
        return [self.object_definition(f"{routine.kind} {key}", routine.definitions)]

    def replace_routine(self, before: Schema, after: Schema, key: str) -> list[str]:
        return self.create_routine(before, after, key)

    def drop_routine(self, before: Schema, after: Schema, key: str) -> list[str]:
        routine = routines_of(before)[key]
        self.object_definition(f"{routine.kind} {key}", routine.definitions)
        return [f"DROP {routine.kind.upper()} {self.qualified(routine.name)}({routine.signature})"]

    def create_trigger(self, before: Schema, after: Schema, key: str) -> list[str]:
        trigger = triggers_of(after)[key]
        return [self.object_definition(f"trigger {trigger.name} on {trigger.table}", trigger.definitions)]

    def replace_trigger(self, before: Schema, after: Schema, key: str) -> list[str]:
        return self.create_trigger(before, after, key)

    def drop_trigger(self, before: Schema, after: Schema, key: str) -> list[str]:
        trigger = triggers_of(before)[key]
        self.object_definition(f"trigger {trigger.name} on {trigger.table}", trigger.definitions)
        return [f"DROP TRIGGER {self.quote(trigger.name)} ON {self.qualified(trigger.table)}"]

    def create_index(self, before: Schema, after: Schema, table: str, index: str) -> list[str]:
        (wanted,) = [i for i in after.tables[table].indexes if i.name == index]
        return [self.create_index_sql(table, wanted)]

    # Plain indexes, unique constraints and foreign keys are written here rather than compiled: SQLAlchemy
    # needs a Table object for each and compiles at about 0.1 ms a statement. The text is exactly what
    # its CreateIndex and AddConstraint give for these objects (names are at most 63 bytes, so never
    # truncated; quoting is its identifier preparer's); check constraints and tables still go through it.

    def index_name(self, table: str, name: str) -> str:
        """The index's name as CREATE INDEX writes it (SQLAlchemy: unqualified, the table carries the schema)."""
        return self.quote(name)

    def index_table(self, table: str) -> str:
        """The table as CREATE INDEX ... ON writes it."""
        return self.qualified(table)

    def create_index_sql(self, table: str, index: Index) -> str:
        columns = ", ".join(self.quote(c) for c in index.columns)
        unique = "UNIQUE " if index.unique else ""
        return f"CREATE {unique}INDEX {self.index_name(table, index.name)} ON {self.index_table(table)} ({columns})"

    def add_constraint_sql(self, table: str, constraint: Constraint) -> str:
        """ALTER TABLE ... ADD CONSTRAINT for a foreign key or a unique constraint."""
        columns = ", ".join(self.quote(c) for c in constraint.columns)
        head = f"ALTER TABLE {self.qualified(table)} ADD CONSTRAINT {self.quote(constraint.name)}"
        if constraint.kind == "unique":
            return f"{head} UNIQUE ({columns})"
        ref = constraint.references
        assert constraint.kind == "foreign_key" and ref is not None, constraint
        text = f"{head} FOREIGN KEY({columns}) REFERENCES {self.qualified(ref.table)} ("
        text += ", ".join(self.quote(c) for c in ref.columns) + ")"
        if constraint.on_delete:
            text += f" ON DELETE {constraint.on_delete.upper()}"
        if constraint.on_update:
            text += f" ON UPDATE {constraint.on_update.upper()}"
        return text

    def drop_index(self, before: Schema, after: Schema, table: str, index: str) -> list[str]:
        owner, _ = split_table_name(table)
        name = f"{self.quote(owner)}.{self.quote(index)}" if owner else self.quote(index)
        return [f"DROP INDEX {name}"]

    def add_constraint(self, before: Schema, after: Schema, table: str, name: str) -> list[str]:
        (wanted,) = [c for c in after.tables[table].constraints if c.name == name]
        if wanted.kind != "check":
            return [self.add_constraint_sql(table, wanted)]
        # a check's expression is SQL text: SQLAlchemy's compiler renders it (as it always has)
        own = self._partial(sa.MetaData(), after, table, ())
        found = sa.CheckConstraint(sa.text(wanted.expression or ""), name=wanted.name)
        own.append_constraint(found)
        return [self.compile(sa.schema.AddConstraint(found))]

    def drop_constraint(self, before: Schema, after: Schema, table: str, name: str) -> list[str]:
        return [f"ALTER TABLE {self.qualified(table)} DROP CONSTRAINT {self.quote(name)}"]

    def set_primary_key(self, before: Schema, after: Schema, table: str) -> list[str]:
        raise NotImplementedError

    def pk_columns(self, after: Schema, table: str) -> str:
        return ", ".join(self.quote(c) for c in after.tables[table].primary_key)
