"""MySQL and MariaDB: DDL is not transactional; AUTO_INCREMENT; inline comments.

What the dialect holds differently from the log, and how (``normalize`` is the log's state as MariaDB
can hold it, what introspection gives back):

- A unique constraint is a unique index; a primary key is always named PRIMARY (``primary_key_name``
  is dropped); foreign keys are never deferrable (the flags are dropped: the log keeps them for the
  dialects that have them; Django never makes a deferrable key on MariaDB); RESTRICT is InnoDB's
  NO ACTION and its default.
- An enum type of the log is no object here: a column ``enum:NAME`` is written ``ENUM('a', ...)``
  with the type's values, so creating or dropping the type emits nothing and changing its values
  restates each column that uses it.
- A generated column cannot be declared NULL or NOT NULL (MariaDB refuses either): it is nullable.
- AUTO_INCREMENT has no sequence options: those with no effect on the values (``cache``, and the
  defaults) are dropped; the rest are refused before a plan runs (service.reconciler.capacity).
- A column's collation names its character set: where both are given the character set is dropped.
- ``on_update`` is written ``ON UPDATE x`` after the column's default (SQLAlchemy has no clause for it).
"""

from __future__ import annotations

from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.dialects import mysql as sa_mysql
from sqlalchemy.engine import Dialect as SADialect
from sqlalchemy.ext.compiler import compiles

from events.model import Column, ColumnType, Constraint, Index, Schema, Table, evolve, parse_type, triggers_of, views_of
from service.reconciler.dialects.base import Dialect, NativeType, UnsupportedType, inline_domains


def enum_type(values: tuple[str, ...]) -> ColumnType:
    """The native type MariaDB holds a column of an enum type as: ``enum('a','b')``, quotes doubled."""
    literals = ",".join("'" + v.replace("'", "''") + "'" for v in values)
    try:
        return parse_type(f"mysql:enum({literals})")
    except ValueError as exc:  # a value the type grammar keeps out of quotes (a backslash, a control)
        raise UnsupportedType(f"enum values {list(values)!r}: {exc}") from None


def inline_enums(schema: Schema) -> Schema:
    """``schema`` with each column of an enum type of the log given its native ENUM type instead (and each
    column of a domain its type first: MariaDB has no domains)."""
    schema = inline_domains(schema)
    enums = getattr(schema, "enums", None) or {}
    if not any(c.type.is_enum for t in schema.tables.values() for c in t.columns):
        return schema
    tables = {}
    for name, table in schema.tables.items():
        if any(c.type.is_enum for c in table.columns):
            columns = []
            for column in table.columns:
                if column.type.is_enum:
                    found = enums.get(column.type.name)
                    if found is None:
                        raise UnsupportedType(f"column {name}.{column.name}: no enum type {column.type.name!r}")
                    column = evolve(column, type=enum_type(found.values))
                columns.append(column)
            table = evolve(table, columns=tuple(columns))
        tables[name] = table
    return evolve(schema, tables=tables)


def _without_indexes(schema: Schema) -> Schema:
    """For SQLAlchemy's objects, which write columns and keys; the indexes are written here."""
    return evolve(schema, tables={n: evolve(t, indexes=()) for n, t in schema.tables.items()})


def supports(index: Index, columns: tuple[str, ...]) -> bool:
    """Whether InnoDB can use ``index`` for a foreign key on ``columns``: they lead it, in order."""
    if index.method in ("fulltext", "spatial"):
        return False
    names: tuple[str | None, ...] = index.columns or tuple(e.column for e in index.elements)
    return names[: len(columns)] == columns


def _supported(table: Table, columns: tuple[str, ...]) -> bool:
    keys = list(table.indexes)
    keys += [Index(name=c.name, columns=c.columns) for c in table.constraints if c.kind == "unique"]
    if table.primary_key:
        keys.append(Index(name="PRIMARY", columns=table.primary_key))
    return any(supports(i, columns) for i in keys)


def orphaned_keys(before: Table | None, after: Table) -> list[Constraint]:
    """The foreign keys of ``after`` that lose the index InnoDB used for them: one that ``before`` had
    and ``after`` has not. (Where ``before`` had none, InnoDB has one of its own, named like the key.)"""
    if before is None:
        return []
    out = []
    for fk in after.constraints:
        if fk.kind != "foreign_key" or before.constraint(fk.name) is None:
            continue
        if _supported(before, fk.columns) and not _supported(after, fk.columns):
            out.append(fk)
    return out


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

    # ---------------------------------------------------------------- columns as SQLAlchemy writes them

    def column_kwargs(self, table: Table, column: Column) -> dict[str, Any]:
        kwargs = super().column_kwargs(table, column)
        if column.identity:
            kwargs["autoincrement"] = True
        if column.generated is not None:
            kwargs["nullable"] = True  # MariaDB takes neither NULL nor NOT NULL on a generated column
        if column.on_update is not None and column.default is not None:
            # SQLAlchemy has no ON UPDATE of its own (server_onupdate writes nothing): it follows the default
            kwargs["server_default"] = sa.text(f"{column.default} ON UPDATE {column.on_update}")
        return kwargs

    def column_items(self, table: Table, column: Column) -> list[Any]:
        items: list[Any] = []
        if column.generated is not None:
            items.append(sa.Computed(column.generated.expression, persisted=column.generated.stored))
        check = table.constraint(column.name)
        if check is not None and check.kind == "check":
            # unnamed: MariaDB takes no CONSTRAINT name in a column's definition, and gives it the column's
            items.append(sa.CheckConstraint(sa.text(check.expression or "")))
        return items

    def sa_type(self, column: Column) -> sa.types.TypeEngine[Any]:
        if column.identity and not column.type.portable:
            return NativeInteger(self.type_text(column.type))  # int(10) unsigned AUTO_INCREMENT (Sakila)
        on_update = column.on_update is not None and column.default is None
        if column.identity or (column.charset is None and column.collation is None and not on_update):
            return super().sa_type(column)
        text = self.type_text(column.type)
        if column.charset is not None:
            text += f" CHARACTER SET {self.quote(column.charset)}"
        if column.collation is not None:
            text += f" COLLATE {self.quote(column.collation)}"
        if on_update:  # no default for it to follow (column_kwargs): MariaDB takes a column's attributes in any order
            text += f" ON UPDATE {column.on_update}"
        return NativeType(text)

    # ---------------------------------------------------------------- what the dialect can hold

    def normalize_column(self, table: Table, column: Column) -> Column:
        column = super().normalize_column(table, column)
        update: dict[str, Any] = {}
        if column.type.portable and column.type.name == "timestamptz":
            update["type"] = ColumnType(name="timestamp")  # DATETIME keeps no zone
        if column.type.portable and column.type.name == "boolean" and column.default is not None:
            update["default"] = {"true": "1", "false": "0"}.get(column.default.strip().lower(), column.default)
        if column.identity_options is not None:
            update["identity_options"] = None  # AUTO_INCREMENT has none (what it cannot hold is refused)
        if column.generated is not None and not column.nullable:
            update["nullable"] = True
        if column.collation is not None and column.charset is not None:
            update["charset"] = None  # the collation says it
        return column.model_copy(update=update) if update else column

    def normalize(self, schema: Schema) -> Schema:
        """Unique constraints become unique indexes; what MariaDB has no place for is dropped (above)."""
        schema = super().normalize(inline_enums(schema))
        tables = {}
        for name, table in schema.tables.items():
            uniques = [c for c in table.constraints if c.kind == "unique"]
            update: dict[str, Any] = {}
            if uniques:
                update["indexes"] = table.indexes + tuple(
                    Index(name=c.name, columns=c.columns, unique=True) for c in uniques
                )
            constraints = tuple(self._normalize_constraint(c) for c in table.constraints if c.kind != "unique")
            if uniques or any(a is not b for a, b in zip(constraints, table.constraints, strict=False)):
                update["constraints"] = constraints
            if "primary_key_name" not in table.__dict__ or table.primary_key_name is not None:
                update["primary_key_name"] = None
            tables[name] = table.model_copy(update=update) if update else table
        return Schema.model_construct(tables=tables, views=views_of(schema), triggers=triggers_of(schema))

    @staticmethod
    def _normalize_constraint(constraint: Constraint) -> Constraint:
        update: dict[str, Any] = {}
        if constraint.deferrable or constraint.initially_deferred:
            update.update(deferrable=False, initially_deferred=False)
        if constraint.anonymous:
            update["anonymous"] = False  # MariaDB keeps the name the log gives it
        if constraint.on_delete == "restrict":
            update["on_delete"] = None
        if constraint.on_update == "restrict":
            update["on_update"] = None
        return constraint.model_copy(update=update) if update else constraint

    # ---------------------------------------------------------------- whole tables

    def metadata(self, schema: Schema, only: Any = None) -> Any:
        return super().metadata(_without_indexes(inline_enums(schema)), only)

    def sa_table(self, md: sa.MetaData, table: Table) -> sa.Table:
        """A check named like a column of its table is written with that column (``a INT CHECK (a >= 0)``):
        MariaDB names a column's check after the column, so that is how such a check reads back, and
        SHOW CREATE TABLE (which SQLAlchemy's Inspector reads) shows it there, not as a CONSTRAINT."""
        if any(c.type.is_enum or c.type.is_domain for c in table.columns):
            raise UnsupportedType(f"table {table.name}: enum and domain columns need the schema's types")
        out = super().sa_table(md, table)
        inline = {c.name for c in table.constraints if c.kind == "check" and table.column(c.name) is not None}
        for item in list(out.constraints):
            if isinstance(item, sa.CheckConstraint) and item.name in inline and not item.is_column_level:
                out.constraints.discard(item)  # written with its column (column_items)
        return out

    def create_table(self, after: Schema, name: str) -> list[str]:
        after = inline_enums(after)
        table = self.sa_table(sa.MetaData(), evolve(after.tables[name], indexes=()))
        out = [self.compile(sa.schema.CreateTable(table, include_foreign_key_constraints=[]))]
        model = after.tables[name]
        for index in sorted(model.indexes, key=lambda i: i.name):
            out.append(self.create_index_sql(name, index))
        keys = [c for c in model.constraints if c.kind == "foreign_key" and c.references is not None]
        for fk in sorted(keys, key=lambda c: c.name):
            out.append(self.add_constraint_sql(name, fk))
        return out

    def table_script(self, schema: Schema) -> list[str]:
        md, _ = self.metadata(schema)
        out = [self.compile(sa.schema.CreateTable(t, include_foreign_key_constraints=[])) for t in md.sorted_tables]
        for name in sorted(schema.tables):
            out.extend(
                self.create_index_sql(name, i) for i in sorted(schema.tables[name].indexes, key=lambda i: i.name)
            )
        for name in sorted(schema.tables):
            keys = [c for c in schema.tables[name].constraints if c.kind == "foreign_key"]
            out.extend(self.add_constraint_sql(name, fk) for fk in sorted(keys, key=lambda c: c.name))
        return out

    # ---------------------------------------------------------------- views: SQL SECURITY INVOKER kept

    def create_view(self, before: Schema, after: Schema, name: str) -> list[str]:
        return [
            f"CREATE {self._security(after, name)}VIEW {self.qualified(name)} AS {self.view_definition(after, name)}"
        ]

    def replace_view(self, before: Schema, after: Schema, name: str) -> list[str]:
        head = f"CREATE OR REPLACE {self._security(after, name)}VIEW {self.qualified(name)}"
        return [f"{head} AS {self.view_definition(after, name)}"]

    @staticmethod
    def _security(schema: Schema, name: str) -> str:
        return "SQL SECURITY INVOKER " if views_of(schema)[name].security == "invoker" else ""

    # ---------------------------------------------------------------- triggers: the definition is the whole
    # ``CREATE OR REPLACE TRIGGER`` (events.objects.mysql_trigger_target), so a replacement sends it as a
    # creation does; MariaDB names a trigger once in a database (DROP TRIGGER takes no table).

    def drop_trigger(self, before: Schema, after: Schema, key: str) -> list[str]:
        trigger = triggers_of(before)[key]
        self.object_definition(f"trigger {trigger.name} on {trigger.table}", trigger.definitions)
        return [f"DROP TRIGGER IF EXISTS {self.quote(trigger.name)}"]

    def table_comment(self, after: Schema, table: str) -> list[str]:
        comment = after.tables[table].comment or ""
        return [f"ALTER TABLE {self.qualified(table)} COMMENT = {self.literal(comment).replace(chr(92), chr(92) * 2)}"]

    def rename_table(self, before: Schema, old: str, new: str) -> list[str]:
        return [f"RENAME TABLE {self.qualified(old)} TO {self.qualified(new)}"]

    # ---------------------------------------------------------------- columns

    def add_column(self, before: Schema, after: Schema, table: str, column: str, fill: str | None = None) -> list[str]:
        if fill is None:
            return [f"ALTER TABLE {self.qualified(table)} ADD COLUMN {self.column_spec(after, table, column)}"]
        # the rows already there get ``fill`` as a default for the moment the column is added; the column
        # keeps no default (MariaDB would otherwise fill '' or 0 for a NOT NULL column without one)
        model = after.tables[table]
        filled = tuple(evolve(c, default=fill) if c.name == column else c for c in model.columns)
        with_fill = evolve(after, tables={**after.tables, table: evolve(model, columns=filled)})
        head = f"ALTER TABLE {self.qualified(table)}"
        return [
            f"{head} ADD COLUMN {self.column_spec(with_fill, table, column)}",
            f"{head} ALTER COLUMN {self.quote(column)} DROP DEFAULT",
        ]

    def alter_column(
        self,
        before: Schema,
        after: Schema,
        table: str,
        column: str,
        changes: dict[str, Any],
        fill: str | None = None,
    ) -> list[str]:
        out = []
        if fill is not None:  # rows holding NULL get the fill before the column refuses NULL
            quoted = self.quote(column)
            out.append(f"UPDATE {self.qualified(table)} SET {quoted} = {fill} WHERE {quoted} IS NULL")
        # MODIFY restates the whole column (type, collation, default, comment): one statement, whatever changed.
        out.append(f"ALTER TABLE {self.qualified(table)} MODIFY COLUMN {self.column_spec(after, table, column)}")
        return out

    # ---------------------------------------------------------------- enum types: the columns that use them

    def _enum_columns(self, after: Schema, name: str) -> list[str]:
        out = []
        for table in sorted(after.tables):
            for column in after.tables[table].columns:
                if column.type.is_enum and column.type.name == name:
                    spec = self.column_spec(after, table, column.name)
                    out.append(f"ALTER TABLE {self.qualified(table)} MODIFY COLUMN {spec}")
        return out

    def add_enum_value(
        self, before: Schema, after: Schema, name: str, value: str, before_value: str | None
    ) -> list[str]:
        return self._enum_columns(after, name)

    def drop_enum_value(self, before: Schema, after: Schema, name: str, value: str) -> list[str]:
        return self._enum_columns(after, name)

    # ---------------------------------------------------------------- indexes and keys

    def create_index_sql(self, table: str, index: Index) -> str:
        if index.columns:
            columns = ", ".join(self.quote(c) for c in index.columns)
        else:  # descending columns (what else an element can be, MariaDB cannot hold: capacity refuses it)
            parts = []
            for element in index.elements:
                if element.column is None:
                    raise UnsupportedType(f"index {index.name}: MariaDB has no expression indexes")
                parts.append(self.quote(element.column) + (" DESC" if element.descending else ""))
            columns = ", ".join(parts)
        kind = {"fulltext": "FULLTEXT ", "spatial": "SPATIAL "}.get(index.method or "", "")
        unique = "UNIQUE " if index.unique else ""
        return f"CREATE {unique}{kind}INDEX {self.quote(index.name)} ON {self.qualified(table)} ({columns})"

    def _keep_keys_indexed(self, before: Schema, after: Schema, table: str, parts: list[str]) -> str:
        """One ALTER TABLE doing ``parts`` and giving each foreign key that loses its index by them an
        index of its own (named like the key, as InnoDB names the one it makes): InnoDB refuses to drop
        the index a foreign key uses ("needed in a foreign key constraint"), even going back."""
        for fk in orphaned_keys(before.tables.get(table), after.tables[table]):
            parts.append(
                f"ADD INDEX IF NOT EXISTS {self.quote(fk.name)} ({', '.join(self.quote(c) for c in fk.columns)})"
            )
        return f"ALTER TABLE {self.qualified(table)} {', '.join(parts)}"

    def drop_index(self, before: Schema, after: Schema, table: str, index: str) -> list[str]:
        if orphaned_keys(before.tables.get(table), after.tables[table]):
            return [self._keep_keys_indexed(before, after, table, [f"DROP INDEX {self.quote(index)}"])]
        return [f"DROP INDEX {self.quote(index)} ON {self.qualified(table)}"]

    def add_constraint(self, before: Schema, after: Schema, table: str, name: str) -> list[str]:
        wanted = after.tables[table].constraint(name)
        if wanted is not None and wanted.kind == "check" and after.tables[table].column(name) is not None:
            # a check named like its column is the column's (sa_table): the column restated with it
            return [f"ALTER TABLE {self.qualified(table)} MODIFY COLUMN {self.column_spec(after, table, name)}"]
        return super().add_constraint(before, after, table, name)

    def drop_constraint(self, before: Schema, after: Schema, table: str, name: str) -> list[str]:
        constraint = before.tables[table].constraint(name)
        assert constraint is not None
        if constraint.kind == "check" and after.tables[table].column(name) is not None:
            # the column restated without it; DROP CONSTRAINT finds a column's check in no version of
            # MariaDB, but one written at table level (before checks went with their columns) it does
            return [
                f"ALTER TABLE {self.qualified(table)} DROP CONSTRAINT IF EXISTS {self.quote(name)},"
                f" MODIFY COLUMN {self.column_spec(after, table, name)}"
            ]
        if constraint.kind == "foreign_key":
            out = [f"ALTER TABLE {self.qualified(table)} DROP FOREIGN KEY {self.quote(name)}"]
            if after.tables[table].index(name) is None:
                # the index MySQL made for the key, if it made one, goes with it
                out.append(f"DROP INDEX IF EXISTS {self.quote(name)} ON {self.qualified(table)}")
            return out
        if constraint.kind == "unique":
            if orphaned_keys(before.tables[table], after.tables[table]):
                return [self._keep_keys_indexed(before, after, table, [f"DROP INDEX {self.quote(name)}"])]
            return [f"DROP INDEX {self.quote(name)} ON {self.qualified(table)}"]
        return [f"ALTER TABLE {self.qualified(table)} DROP CONSTRAINT {self.quote(name)}"]

    def set_primary_key(self, before: Schema, after: Schema, table: str) -> list[str]:
        parts = []
        if before.tables[table].primary_key:
            parts.append("DROP PRIMARY KEY")
        if after.tables[table].primary_key:
            parts.append(f"ADD PRIMARY KEY ({self.pk_columns(after, table)})")
        return [self._keep_keys_indexed(before, after, table, parts)]


class NativeInteger(sa.Integer):
    """A native integer type (``INT(10) UNSIGNED``) that SQLAlchemy still knows for an integer, so that it
    writes AUTO_INCREMENT for an identity column of that type."""

    def __init__(self, text: str):
        self.text = text


@compiles(NativeInteger)
def _native_integer(element: NativeInteger, compiler: Any, **kw: Any) -> str:
    return element.text
