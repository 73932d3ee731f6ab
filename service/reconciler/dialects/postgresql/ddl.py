"""PostgreSQL: transactional DDL, identity columns, comments by COMMENT ON, enum types of its own."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as sa_postgresql
from sqlalchemy.engine import Dialect as SADialect

from events.model import (
    Column,
    ColumnType,
    Constraint,
    IdentityOptions,
    Index,
    IndexElement,
    Schema,
    Table,
    construct,
    domains_of,
    evolve,
    extensions_of,
    split_table_name,
)
from events.partitions import check_partition_bound, check_partition_key
from service.reconciler.dialects.base import Dialect, NativeType, UnsupportedType

NAME_BYTES = 63
"""NAMEDATALEN - 1: the bytes of a name PostgreSQL keeps."""

INTEGER_RANGES = {
    "smallint": (-(2**15), 2**15 - 1),
    "integer": (-(2**31), 2**31 - 1),
    "bigint": (-(2**63), 2**63 - 1),
}
"""What an identity column's sequence runs over by default, by the column's type."""


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


DEFAULT_OPCLASSES: dict[str, frozenset[str]] = {
    "btree": _words(
        "array_ops bit_ops bool_ops bpchar_ops bytea_ops char_ops date_ops enum_ops float4_ops float8_ops "
        "inet_ops int2_ops int4_ops int8_ops interval_ops jsonb_ops macaddr8_ops macaddr_ops money_ops "
        "multirange_ops name_ops numeric_ops oid_ops oidvector_ops pg_lsn_ops range_ops record_ops text_ops "
        "tid_ops time_ops timestamp_ops timestamptz_ops timetz_ops tsquery_ops tsvector_ops uuid_ops "
        "varbit_ops xid8_ops"
    ),
    "hash": _words(
        "aclitem_ops array_ops bool_ops bpchar_ops bytea_ops char_ops cid_ops date_ops enum_ops float4_ops "
        "float8_ops inet_ops int2_ops int4_ops int8_ops interval_ops jsonb_ops macaddr8_ops macaddr_ops "
        "multirange_ops name_ops numeric_ops oid_ops oidvector_ops pg_lsn_ops range_ops record_ops text_ops "
        "tid_ops time_ops timestamp_ops timestamptz_ops timetz_ops uuid_ops xid8_ops xid_ops"
    ),
    "gin": _words("array_ops jsonb_ops tsvector_ops"),
    "gist": _words("box_ops circle_ops multirange_ops point_ops poly_ops range_ops tsquery_ops tsvector_ops"),
    "spgist": _words("box_ops inet_ops poly_ops quad_point_ops range_ops text_ops"),
    "brin": _words(
        "bit_minmax_ops box_inclusion_ops bpchar_minmax_ops bytea_minmax_ops char_minmax_ops date_minmax_ops "
        "float4_minmax_ops float8_minmax_ops inet_inclusion_ops int2_minmax_ops int4_minmax_ops "
        "int8_minmax_ops interval_minmax_ops macaddr8_minmax_ops macaddr_minmax_ops name_minmax_ops "
        "numeric_minmax_ops oid_minmax_ops pg_lsn_minmax_ops range_inclusion_ops text_minmax_ops "
        "tid_minmax_ops time_minmax_ops timestamp_minmax_ops timestamptz_minmax_ops timetz_minmax_ops "
        "uuid_minmax_ops varbit_minmax_ops"
    ),
}
"""PostgreSQL 15's default operator classes by access method (pg_opclass.opcdefault): naming one is the
same as naming none, and the catalogue reports none (introspect.PG_INDEXES), so the log's is dropped."""

OLD_ENUM_PREFIX = "schemalog_old_"
"""The name an enum type is moved to while it is made again without a value (drop_enum_value): the
prefix no table of the log may have, so no table's row type holds it."""


def default_pk_name(table: str) -> str:
    """The name PostgreSQL gives a table's primary key: ``<table>_pkey``, the table's name cut (at a
    character's end) so that the whole fits in 63 bytes, as makeObjectName does."""
    bare = split_table_name(table)[1]
    room = NAME_BYTES - len("_pkey")
    raw = bare.encode()
    if len(raw) > room:
        bare = raw[:room].decode(errors="ignore")
    return f"{bare}_pkey"


_SEQUENCE_NUMBERS = ("start", "increment", "minvalue", "maxvalue", "cache")


def resolved_identity(options: IdentityOptions, type_name: str) -> dict[str, Any]:
    """Every sequence option of an identity as PostgreSQL holds it for this integer type (None resolved)."""
    low, high = INTEGER_RANGES.get(type_name, INTEGER_RANGES["bigint"])
    increment = 1 if options.increment is None else options.increment
    minvalue = options.minvalue if options.minvalue is not None else (1 if increment > 0 else low)
    maxvalue = options.maxvalue if options.maxvalue is not None else (high if increment > 0 else -1)
    start = options.start if options.start is not None else (minvalue if increment > 0 else maxvalue)
    return {
        "increment": increment,
        "minvalue": minvalue,
        "maxvalue": maxvalue,
        "start": start,
        "cache": options.cache or 1,
        "cycle": options.cycle,
    }


def canonical_identity(options: IdentityOptions | None, type_name: str) -> IdentityOptions | None:
    """An identity column's options with each one PostgreSQL would choose by itself for this integer type
    left out (None), and None for options that are all PostgreSQL's own."""
    if options is None:
        return None
    low, high = INTEGER_RANGES.get(type_name, INTEGER_RANGES["bigint"])
    increment = 1 if options.increment is None else options.increment
    minvalue = options.minvalue if options.minvalue is not None else (1 if increment > 0 else low)
    maxvalue = options.maxvalue if options.maxvalue is not None else (high if increment > 0 else -1)
    start = minvalue if increment > 0 else maxvalue
    values = {
        "always": options.always,
        "start": None if options.start == start else options.start,
        "increment": None if increment == 1 else increment,
        "minvalue": None if minvalue == (1 if increment > 0 else low) else minvalue,
        "maxvalue": None if maxvalue == (high if increment > 0 else -1) else maxvalue,
        "cycle": options.cycle,
        "cache": None if options.cache in (None, 1) else options.cache,
        "sequence": options.sequence,
        "owned": options.owned,
    }
    if (
        not values["always"]
        and not values["cycle"]
        and options.sequence is None
        and all(values[k] is None for k in _SEQUENCE_NUMBERS)
    ):
        return None
    return construct(IdentityOptions, values)


def serial_sequence(column: Column) -> IdentityOptions | None:
    """The options of a column of PostgreSQL's serial form (IdentityOptions.sequence), else None."""
    options = column.identity_options
    if column.identity and options is not None and options.sequence is not None:
        return options
    return None


def sequence_type(options: IdentityOptions, type_name: str) -> str:
    """The type a serial column's sequence runs as: the column's own where the sequence's range fits it
    (as SERIAL makes it), else bigint (CREATE SEQUENCE's own). Its options are those that differ from the
    column type's defaults (canonical_identity), so a bigint sequence on an integer column keeps its
    maxvalue, which does not fit an integer: that is what says it was a bigint one."""
    low, high = INTEGER_RANGES.get(type_name, INTEGER_RANGES["bigint"])
    numbers = (options.start, options.minvalue, options.maxvalue)
    if type_name in INTEGER_RANGES and all(n is None or low <= n <= high for n in numbers):
        return type_name
    return "bigint"


def _sequence_users(schema: Schema, sequence: str, *, besides: str) -> bool:
    """Whether a table of ``schema`` but ``besides`` has a column drawing from ``sequence``."""
    return bool(_users_of(schema).get(sequence, set()) - {besides})


_USERS: dict[int, tuple[Schema, dict[str, set[str]]]] = {}
"""id(schema) -> (the schema, sequence -> the tables drawing from it): a plan asks once per serial column
of the same states; the schema is held so that its id is not reused while it is here."""


def _users_of(schema: Schema) -> dict[str, set[str]]:
    hit = _USERS.get(id(schema))
    if hit is None or hit[0] is not schema:
        if len(_USERS) >= 64:
            _USERS.clear()
        users: dict[str, set[str]] = {}
        for name, table in schema.tables.items():
            for column in table.columns:
                options = serial_sequence(column)
                if options is not None and options.sequence is not None:
                    users.setdefault(options.sequence, set()).add(name)
        hit = _USERS[id(schema)] = (schema, users)
    return hit[1]


def canonical_element_index(index: Index) -> Index:
    """An index of elements with the default operator classes left out: plain columns if that is all
    that is left (the shape events.model.Index gives such an index)."""
    defaults = DEFAULT_OPCLASSES.get(index.method or "btree", frozenset())
    elements = tuple(
        evolve(e, opclass=None) if e.opclass is not None and e.opclass in defaults else e for e in index.elements
    )
    if all(e.plain for e in elements):
        names = tuple(e.column for e in elements if e.column is not None)
        return evolve(index, columns=names, elements=())
    if all(a is b for a, b in zip(elements, index.elements, strict=True)):
        return index
    return evolve(index, elements=elements)


class PostgresqlDialect(Dialect):
    name = "postgresql"
    transactional_ddl = True
    supports_comments = True
    inline_foreign_keys = False
    type_names: ClassVar[dict[str, str]] = {
        "smallint": "SMALLINT",
        "integer": "INTEGER",
        "bigint": "BIGINT",
        "boolean": "BOOLEAN",
        "real": "REAL",
        "double": "DOUBLE PRECISION",
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
        "bytes": "BYTEA",
    }

    def make_sa_dialect(self) -> SADialect:
        return sa_postgresql.dialect(paramstyle="named")  # type: ignore[no-untyped-call]

    # ---------------------------------------------------------------- types and columns

    def type_text(self, column_type: ColumnType) -> str:
        if column_type.is_enum or column_type.is_domain:
            return self.qualified(column_type.name)  # the log's enum type or domain, made before its columns
        return super().type_text(column_type)

    def collate(self, collation: str | None) -> str:
        """`` COLLATE "x"``: a collation's name is always quoted (``C`` and ``en_US.utf8`` keep their case
        and dot only so)."""
        if collation is None:
            return ""
        return ' COLLATE "' + collation.replace('"', '""') + '"'

    def sa_type(self, column: Column) -> sa.types.TypeEngine[Any]:
        if column.identity or column.collation is None:
            return super().sa_type(column)
        return NativeType(self.type_text(column.type) + self.collate(column.collation))

    def column_items(self, table: Table, column: Column) -> list[Any]:
        if column.generated is not None:
            if not column.generated.stored:
                raise UnsupportedType(f"column {table.name}.{column.name}: PostgreSQL has no virtual generated columns")
            return [sa.Computed(sa.text(column.generated.expression), persisted=True)]
        if not column.identity or serial_sequence(column) is not None:
            return []  # a serial column's values come from its default (column_kwargs)
        options = column.identity_options
        if options is None:
            return [sa.Identity(always=False)]  # GENERATED BY DEFAULT AS IDENTITY
        return [
            sa.Identity(
                always=options.always,
                start=options.start,
                increment=options.increment,
                minvalue=options.minvalue,
                maxvalue=options.maxvalue,
                cycle=True if options.cycle else None,
                cache=options.cache,
            )
        ]

    def column_kwargs(self, table: Table, column: Column) -> dict[str, Any]:
        kwargs = super().column_kwargs(table, column)
        if column.generated is not None:
            kwargs.pop("server_default", None)
        options = serial_sequence(column)
        if options is not None and options.sequence is not None:
            kwargs["server_default"] = sa.text(self.nextval(options.sequence))
            kwargs["autoincrement"] = False  # else SQLAlchemy writes SERIAL, a sequence of its own
        return kwargs

    # ---------------------------------------------------------------- serial columns' sequences

    def nextval(self, sequence: str) -> str:
        """A serial column's default, as PostgreSQL writes it back (pg_get_expr)."""
        return f"nextval({self.literal(self.qualified(sequence))}::regclass)"

    def create_sequence(self, column: Column) -> list[str]:
        """CREATE SEQUENCE for a serial column's sequence, with the options that are not the column type's
        defaults (sequence_type says what it runs as)."""
        options = serial_sequence(column)
        if options is None or options.sequence is None:
            return []
        text = f"CREATE SEQUENCE {self.qualified(options.sequence)} AS {sequence_type(options, column.type.name)}"
        for word, value in (
            ("INCREMENT BY", options.increment),
            ("MINVALUE", options.minvalue),
            ("MAXVALUE", options.maxvalue),
            ("START WITH", options.start),
            ("CACHE", options.cache),
        ):
            if value is not None:
                text += f" {word} {value}"
        if options.cycle:
            text += " CYCLE"
        return [text]

    def own_sequence(self, table: str, column: Column) -> list[str]:
        """OWNED BY, for a serial column whose sequence is dropped with it."""
        options = serial_sequence(column)
        if options is None or options.sequence is None or not options.owned:
            return []
        owner = f"{self.qualified(table)}.{self.quote(column.name)}"
        return [f"ALTER SEQUENCE {self.qualified(options.sequence)} OWNED BY {owner}"]

    def new_sequences(
        self, after: Schema, table: str, columns: tuple[Column, ...], made: Callable[[str], bool] | None = None
    ) -> tuple[list[str], list[str]]:
        """What creates the sequences of these serial columns of ``table`` (those no other table of
        ``after`` draws from already, or those not ``made`` already where that is given), and what makes
        the owned ones the columns' own."""
        before, owned = [], []
        for column in columns:
            options = serial_sequence(column)
            if options is None or options.sequence is None:
                continue
            exists = made(options.sequence) if made is not None else None
            if exists is None:
                exists = _sequence_users(after, options.sequence, besides=table)
            if not exists:
                before += self.create_sequence(column)
            owned += self.own_sequence(table, column)
        return before, owned

    def old_sequences(self, before: Schema, table: str, columns: tuple[Column, ...]) -> list[str]:
        """DROP SEQUENCE for the sequences of these serial columns that outlive them (not owned by them)
        and that no other table of ``before`` draws from."""
        out = []
        for column in columns:
            options = serial_sequence(column)
            if options is None or options.sequence is None or options.owned:
                continue
            if not _sequence_users(before, options.sequence, besides=table):
                out.append(f"DROP SEQUENCE {self.qualified(options.sequence)}")
        return out

    def normalize_column(self, table: Table, column: Column) -> Column:
        column = super().normalize_column(table, column)
        if column.charset is not None:  # MariaDB's; PostgreSQL has one encoding per database
            column = evolve(column, charset=None)
        if column.identity_options is not None:
            options = canonical_identity(column.identity_options, column.type.name)
            if options is not column.identity_options:
                column = evolve(column, identity_options=options)
        return column

    def normalize(self, schema: Schema) -> Schema:
        """The dialect's form (base), with the default operator classes left out of index elements, no
        anonymous constraints (PostgreSQL keeps the name the log gives each), and the enum types
        (PostgreSQL holds them as types of their own)."""
        out = super().normalize(schema)
        tables = out.tables
        for name, table in tables.items():
            if any(i.elements for i in table.indexes):
                indexes = tuple(canonical_element_index(i) if i.elements else i for i in table.indexes)
                table = tables[name] = evolve(table, indexes=indexes)
            if any(c.anonymous for c in table.constraints):
                constraints = tuple(evolve(c, anonymous=False) if c.anonymous else c for c in table.constraints)
                tables[name] = evolve(table, constraints=constraints)
        enums = getattr(schema, "enums", None) or {}
        if enums:
            out = evolve(out, enums=dict(enums))
        domains = domains_of(schema)
        if domains:
            out = evolve(out, domains=dict(domains))
        extensions = extensions_of(schema)
        if extensions:
            out = evolve(out, extensions=dict(extensions))
        return out

    # ---------------------------------------------------------------- tables

    def primary_key_name(self, table: Table) -> str | None:
        return table.primary_key_name or default_pk_name(table.name)

    def create_table(self, after: Schema, name: str) -> list[str]:
        """The table, with its serial columns' sequences made before it and owned after it; a partition
        made as a table of its own (its indexes and keys with it) and then attached to its parent, which
        takes those of its indexes and keys that match its own in place of making new ones."""
        sequences, owned = self.new_sequences(after, name, after.tables[name].columns)
        return sequences + super().create_table(after, name) + owned + self.attach_partition(after, name)

    def table_kwargs(self, table: Table) -> dict[str, Any]:
        kwargs = super().table_kwargs(table)
        if table.__dict__.get("partition_by") is not None:
            kwargs["postgresql_partition_by"] = check_partition_key(table.partition_by or "")  # again, at migrate
        return kwargs

    def attach_partition(self, after: Schema, name: str) -> list[str]:
        of = after.tables[name].__dict__.get("partition_of")
        if of is None:
            return []
        bound = check_partition_bound(of.bound)  # the log's text, checked again before it goes out
        return [f"ALTER TABLE {self.qualified(of.parent)} ATTACH PARTITION {self.qualified(name)} {bound}"]

    def drop_table(self, before: Schema, name: str) -> list[str]:
        """The table, and the sequences its serial columns drew from that it does not own."""
        return super().drop_table(before, name) + self.old_sequences(before, name, before.tables[name].columns)

    def sa_table(self, md: sa.MetaData, table: Table) -> sa.Table:
        out = super().sa_table(md, table)
        wanted = {c.name: c for c in table.constraints if c.kind == "unique" and c.deferrable}
        for constraint in out.constraints:
            found = wanted.get(str(constraint.name))
            if found is not None and isinstance(constraint, sa.UniqueConstraint):
                constraint.deferrable = True
                constraint.initially = "DEFERRED" if found.initially_deferred else None
        return out

    def table_script(self, schema: Schema) -> list[str]:
        """Enum types, domains, then each table with its indexes, then every foreign key (they may name any
        table). A sequence several tables draw from is made once, with the first."""
        out: list[str] = []
        for name in sorted(extensions_of(schema)):
            out.extend(self.create_extension(Schema(), schema, name))
        for name in sorted(getattr(schema, "enums", None) or {}):
            out.extend(self.create_enum(Schema(), schema, name))
        for name in sorted(domains_of(schema)):
            out.extend(self.create_domain(Schema(), schema, name))
        keys: list[str] = []
        made: set[str] = set()
        for name in sorted(schema.tables, key=lambda n: (_partition_depth(schema, n), n)):  # parents first
            model = schema.tables[name]
            sequences, owned = self.new_sequences(schema, name, model.columns, made.__contains__)
            made.update(o.sequence for o in map(serial_sequence, model.columns) if o is not None and o.sequence)
            made_table = super().create_table(schema, name) + owned + self.attach_partition(schema, name)
            for statement in sequences + made_table:
                (keys if statement.startswith("ALTER TABLE") and " FOREIGN KEY" in statement else out).append(statement)
        return out + keys

    def rename_table(self, before: Schema, old: str, new: str) -> list[str]:
        """Renamed, and its primary key with it where the key has PostgreSQL's own name (``<table>_pkey``,
        which the log does not keep: after the rename, it is the new table's)."""
        out = super().rename_table(before, old, new)
        table = before.tables[old]
        if table.primary_key and table.primary_key_name is None:
            was, now = default_pk_name(old), default_pk_name(new)
            if was != now:
                renamed = split_table_name(old)[0]
                target = f"{renamed}.{split_table_name(new)[1]}" if renamed else split_table_name(new)[1]
                out.append(
                    f"ALTER TABLE {self.qualified(target)} RENAME CONSTRAINT {self.quote(was)} TO {self.quote(now)}"
                )
        return out

    def set_primary_key(self, before: Schema, after: Schema, table: str) -> list[str]:
        out = []
        if before.tables[table].primary_key:
            # The primary key's name is whatever the database gave it; look it up where it runs.
            regclass = self.literal(self.qualified(table))
            body = (
                " DECLARE pk text; BEGIN"
                f" SELECT conname INTO pk FROM pg_constraint WHERE conrelid = {regclass}::regclass AND contype = 'p';"
                f" EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', {regclass}, pk); END "
            )
            tag = "$schemalog$"
            while tag in body:  # a table named with the tag in it would end the block early
                tag = tag[:-1] + "_$"
            out.append(f"DO {tag}{body}{tag}")
        model = after.tables[table]
        if model.primary_key:
            name = self.quote(self.primary_key_name(model) or default_pk_name(table))
            columns = self.pk_columns(after, table)
            out.append(f"ALTER TABLE {self.qualified(table)} ADD CONSTRAINT {name} PRIMARY KEY ({columns})")
        return out

    # ---------------------------------------------------------------- comments

    def comment_statements(self, table: sa.Table) -> list[str]:
        out = []
        if table.comment is not None:
            out.append(self.compile(sa.schema.SetTableComment(table)))
        for column in table.columns:
            if column.comment is not None:
                out.append(self.compile(sa.schema.SetColumnComment(column)))
        return out

    def column_comment(self, after: Schema, table: str, column: str) -> list[str]:
        comment = after.tables[table].column(column).comment  # type: ignore[union-attr]
        if comment is None:
            return []
        return [f"COMMENT ON COLUMN {self.qualified(table)}.{self.quote(column)} IS {self.literal(comment)}"]

    def table_comment(self, after: Schema, table: str) -> list[str]:
        return [f"COMMENT ON TABLE {self.qualified(table)} IS {self.literal(after.tables[table].comment)}"]

    # ---------------------------------------------------------------- columns

    def add_column(self, before: Schema, after: Schema, table: str, column: str, fill: str | None = None) -> list[str]:
        """With ``fill``: added with the fill as its default, so that the rows there get it as the column
        comes (NOT NULL holds from the start), then the default dropped, as Django does."""
        model = after.tables[table].column(column)
        assert model is not None
        sequences, owned = self.new_sequences(after, table, (model,))
        if fill is None:
            return sequences + super().add_column(before, after, table, column) + owned
        head = f"ALTER TABLE {self.qualified(table)}"
        out = [
            f"{head} ADD COLUMN {self.column_spec(after, table, column)} DEFAULT ({fill})",
            f"{head} ALTER COLUMN {self.quote(column)} DROP DEFAULT",
        ]
        return sequences + out + self.column_comment(after, table, column) + owned

    def drop_column(self, before: Schema, after: Schema, table: str, column: str) -> list[str]:
        """The column, and the sequence it drew from where it does not own it and nothing else draws from it."""
        model = before.tables[table].column(column)
        assert model is not None
        return super().drop_column(before, after, table, column) + self.old_sequences(before, table, (model,))

    def alter_column(
        self,
        before: Schema,
        after: Schema,
        table: str,
        column: str,
        changes: dict[str, Any],
        fill: str | None = None,
    ) -> list[str]:
        col = after.tables[table].column(column)
        assert col is not None
        name = self.quote(column)
        head = f"ALTER TABLE {self.qualified(table)} ALTER COLUMN {name}"
        out = []
        if "type" in changes or "collation" in changes:
            text = self.type_text(col.type)
            statement = f"{head} TYPE {text}{self.collate(col.collation)}"
            if "type" in changes:
                # an enum type reads only text; any type reads as text
                cast = f"::text::{text}" if col.type.is_enum else f"::{text}"
                statement += f" USING {name}{cast}"
            out.append(statement)
        if "default" in changes:
            out.append(f"{head} DROP DEFAULT" if col.default is None else f"{head} SET DEFAULT {col.default}")
        if "nullable" in changes:
            if fill is not None and not col.nullable:
                out.append(f"UPDATE {self.qualified(table)} SET {name} = ({fill}) WHERE {name} IS NULL")
            out.append(f"{head} {'DROP' if col.nullable else 'SET'} NOT NULL")
        if "comment" in changes:
            out.append(f"COMMENT ON COLUMN {self.qualified(table)}.{name} IS {self.literal(col.comment)}")
        if "identity_options" in changes and col.identity:
            was = before.tables[table].column(column)
            assert was is not None
            out.extend(self.identity_changes(table, was, col))
        return out

    def identity_changes(self, table: str, was: Column, now: Column) -> list[str]:
        """An identity's sequence options changed in place (ALTER COLUMN ... SET ..., or ALTER SEQUENCE for
        the serial form), each option given whole, as PostgreSQL resolves it for the column's type."""
        old = was.identity_options or IdentityOptions()
        new = now.identity_options or IdentityOptions()
        if (old.sequence, old.owned) != (new.sequence, new.owned):
            raise UnsupportedType(
                f"column {table}.{now.name}: changing an identity between its serial form (a sequence of its own"
                " name) and GENERATED AS IDENTITY, or to another sequence, is not done in place: drop and add it"
            )
        before, after = resolved_identity(old, was.type.name), resolved_identity(new, now.type.name)
        options = []
        for key, template in (
            ("increment", "INCREMENT BY {}"),
            ("minvalue", "MINVALUE {}"),
            ("maxvalue", "MAXVALUE {}"),
            ("start", "START WITH {}"),
            ("cache", "CACHE {}"),
        ):
            if before[key] != after[key]:
                options.append(template.format(after[key]))
        if before["cycle"] != after["cycle"]:
            options.append("CYCLE" if after["cycle"] else "NO CYCLE")
        if new.sequence is not None:
            owner, _ = split_table_name(table)
            sequence = f"{self.quote(owner)}.{self.quote(new.sequence)}" if owner else self.quote(new.sequence)
            return [f"ALTER SEQUENCE {sequence} {' '.join(options)}"] if options else []
        clauses = [f"SET {option}" for option in options]
        if old.always != new.always:
            clauses.insert(0, "SET GENERATED ALWAYS" if new.always else "SET GENERATED BY DEFAULT")
        if not clauses:
            return []
        return [f"ALTER TABLE {self.qualified(table)} ALTER COLUMN {self.quote(now.name)} {' '.join(clauses)}"]

    # ---------------------------------------------------------------- indexes and constraints

    def index_element(self, element: IndexElement) -> str:
        text = f"({element.expression})" if element.expression is not None else self.quote(element.column or "")
        if element.opclass is not None:
            text += " " + ".".join(self.quote(part) for part in element.opclass.split("."))
        if element.descending:
            text += " DESC"
        return text

    def create_index_sql(self, table: str, index: Index) -> str:
        if index.method is None and not index.elements and index.where is None and not index.include:
            return super().create_index_sql(table, index)
        unique = "UNIQUE " if index.unique else ""
        method = f" USING {index.method}" if index.method is not None else ""
        if index.elements:
            elements = ", ".join(self.index_element(e) for e in index.elements)
        else:
            elements = ", ".join(self.quote(c) for c in index.columns)
        name, on = self.index_name(table, index.name), self.index_table(table)
        text = f"CREATE {unique}INDEX {name} ON {on}{method} ({elements})"
        if index.include:
            text += " INCLUDE (" + ", ".join(self.quote(c) for c in index.include) + ")"
        if index.where is not None:
            text += f" WHERE ({index.where})"
        return text

    def add_constraint_sql(self, table: str, constraint: Constraint) -> str:
        text = super().add_constraint_sql(table, constraint)
        if constraint.deferrable:
            text += " DEFERRABLE INITIALLY DEFERRED" if constraint.initially_deferred else " DEFERRABLE"
        return text

    # ---------------------------------------------------------------- enum types

    def enum_values(self, values: tuple[str, ...]) -> str:
        return ", ".join(self.literal(v) for v in values)

    def create_enum(self, before: Schema, after: Schema, name: str) -> list[str]:
        return [f"CREATE TYPE {self.qualified(name)} AS ENUM ({self.enum_values(after.enums[name].values)})"]

    def add_enum_value(
        self, before: Schema, after: Schema, name: str, value: str, before_value: str | None
    ) -> list[str]:
        """ADD VALUE: the new value cannot be used in the transaction that added it ("unsafe use of new
        value"), so the target commits after it when more follows (target.PostgresTarget.apply)."""
        text = f"ALTER TYPE {self.qualified(name)} ADD VALUE {self.literal(value)}"
        if before_value is not None:
            text += f" BEFORE {self.literal(before_value)}"
        return [text]

    def drop_enum_value(self, before: Schema, after: Schema, name: str, value: str) -> list[str]:
        """PostgreSQL cannot take a value out of an enum type: the type is moved aside, made again without
        the value, each column of it moved to the new type (through text; a default dropped and set again
        around it, since it cannot be cast), and the old type dropped."""
        schema_name, bare = split_table_name(name)
        aside = (OLD_ENUM_PREFIX + bare).encode()[:NAME_BYTES].decode(errors="ignore")
        moved = f"{schema_name}.{aside}" if schema_name else aside
        out = [f"ALTER TYPE {self.qualified(name)} RENAME TO {self.quote(aside)}"]
        out += self.create_enum(before, after, name)
        type_text = self.qualified(name)
        again: list[str] = []
        for table_name in sorted(after.tables):
            table = after.tables[table_name]
            columns = [c for c in table.columns if c.type.is_enum and c.type.name == name]
            if not columns:
                continue
            # A partial index's predicate, an index expression and a check keep their constants typed as
            # the old type: moving the column would fail on them ("operator does not exist"). They go
            # first and come back last, written again against the new type.
            for index in sorted(table.indexes, key=lambda i: i.name):
                if index.where is not None or any(e.expression is not None for e in index.elements):
                    out += self.drop_index(before, after, table_name, index.name)
                    again.append(self.create_index_sql(table_name, index))
            for check in sorted((c for c in table.constraints if c.kind == "check"), key=lambda c: c.name):
                out += self.drop_constraint(before, after, table_name, check.name)
                again += self.add_constraint(before, after, table_name, check.name)
            for column in columns:
                head = f"ALTER TABLE {self.qualified(table_name)} ALTER COLUMN {self.quote(column.name)}"
                if column.default is not None:
                    out.append(f"{head} DROP DEFAULT")
                out.append(f"{head} TYPE {type_text} USING {self.quote(column.name)}::text::{type_text}")
                if column.default is not None:
                    out.append(f"{head} SET DEFAULT {column.default}")
        out.append(f"DROP TYPE {self.qualified(moved)}")
        return out + again

    def drop_enum(self, before: Schema, after: Schema, name: str) -> list[str]:
        return [f"DROP TYPE {self.qualified(name)}"]

    # ---------------------------------------------------------------- extensions

    def create_extension(self, before: Schema, after: Schema, name: str) -> list[str]:
        extension = extensions_of(after)[name]
        where = f" SCHEMA {self.quote(extension.schema_name)}" if extension.schema_name else ""
        return [f'CREATE EXTENSION "{name}"{where}']

    def drop_extension(self, before: Schema, after: Schema, name: str) -> list[str]:
        return [f'DROP EXTENSION "{name}"']

    # ---------------------------------------------------------------- domains

    def create_domain(self, before: Schema, after: Schema, name: str) -> list[str]:
        domain = domains_of(after)[name]
        text = f"CREATE DOMAIN {self.qualified(name)} AS {self.type_text(domain.type)}"
        if domain.default is not None:
            text += f" DEFAULT {domain.default}"
        if not domain.nullable:
            text += " NOT NULL"
        for check in domain.checks:
            text += f" CONSTRAINT {self.quote(check.name)} CHECK ({check.expression})"
        return [text]

    def drop_domain(self, before: Schema, after: Schema, name: str) -> list[str]:
        return [f"DROP DOMAIN {self.qualified(name)}"]


def _partition_depth(schema: Schema, name: str) -> int:
    """How many parents up a table's partitioning goes (0: not a partition)."""
    depth, seen = 0, {name}
    of = schema.tables[name].__dict__.get("partition_of")
    while of is not None and of.parent in schema.tables and of.parent not in seen:
        depth += 1
        seen.add(of.parent)
        of = schema.tables[of.parent].__dict__.get("partition_of")
    return depth
