"""PostgreSQL: the live schema from one read of the system catalogue."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Collection, Iterator, Mapping
from itertools import groupby, pairwise
from operator import itemgetter
from typing import Any, TypeVar

from events.model import (
    Column,
    ColumnType,
    Constraint,
    DomainCheck,
    DomainType,
    EnumType,
    Extension,
    Generated,
    IdentityOptions,
    Index,
    IndexElement,
    PartitionOf,
    Reference,
    Routine,
    Schema,
    Table,
    Trigger,
    View,
    construct,
    evolve,
    parse_type,
)
from projections.replay import gc_paused
from service.reconciler.dialects.postgresql.ddl import canonical_identity, default_pk_name
from service.reconciler.introspect import live_native_type
from service.reconciler.normalize import LiveSchema, canonical_check, canonical_default, canonical_expression

_PG_TABLE_FILTER = """
  c.relkind IN ('r', 'p')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
  AND c.relname NOT LIKE 'schemalog\\_%'
"""

PG_TABLES = f"""
SELECT c.oid, n.nspname AS schema, c.relname AS name, td.description AS comment,
       CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END AS partition_by,
       CASE WHEN c.relispartition THEN (SELECT h.inhparent FROM pg_inherits h WHERE h.inhrelid = c.oid) END AS parent,
       CASE WHEN c.relispartition THEN pg_get_expr(c.relpartbound, c.oid) END AS bound
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_description td ON td.objoid = c.oid AND td.classoid = 'pg_class'::regclass AND td.objsubid = 0
WHERE {_PG_TABLE_FILTER}
"""

# The collation where it is not the type's own (the log's None): looked up only for a column whose collation
# is neither none (0) nor the database's default (100), which is rare, so that most rows cost no lookup.
PG_COLUMNS = f"""
SELECT a.attrelid AS oid, a.attnum AS num, a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type,
       a.attnotnull AS notnull, a.attidentity <> '' AS identity, cd.description AS comment,
       a.attidentity = 'a' AS always, a.attgenerated <> '' AS generated,
       CASE WHEN a.attcollation <> 0 AND a.attcollation <> 100
                 AND a.attcollation <> (SELECT t.typcollation FROM pg_type t WHERE t.oid = a.atttypid)
            THEN (SELECT co.collname FROM pg_collation co WHERE co.oid = a.attcollation) END AS collation
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_description cd
       ON cd.objoid = a.attrelid AND cd.classoid = 'pg_class'::regclass AND cd.objsubid = a.attnum
WHERE {_PG_TABLE_FILTER} AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attrelid, a.attnum
"""

# Column defaults apart from the columns: fewer rows (most columns have none), and the columns' rows are
# then plain values the expected columns can be written in beforehand (PgCatalogue.expect_columns), where
# a default's text depends on how it was written (DEFAULT 0 reads 0, DEFAULT '0' on a smallint '0'::smallint).
# A generated column's expression is kept as its default is (pg_attrdef): told apart by attgenerated.
PG_DEFAULTS = f"""
SELECT d.adrelid AS oid, d.adnum AS num, pg_get_expr(d.adbin, d.adrelid) AS default,
       a.attgenerated <> '' AS generated
FROM pg_attrdef d JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
JOIN pg_class c ON c.oid = d.adrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE {_PG_TABLE_FILTER}
ORDER BY d.adrelid, d.adnum
"""

# Exclusion constraints ('x') are read only for the index they own (index_oid), like primary keys and
# unique constraints: those indexes are not indexes of the schema. Column numbers come as text ("1 2"):
# a text is nothing for the cycle collector to follow, where each array would be one more list it tracks
# (see PgCatalogue.take_constraints).
PG_CONSTRAINTS = f"""
SELECT con.conrelid AS oid, con.conname AS name, con.contype::text AS kind, con.conindid AS index_oid,
       array_to_string(con.conkey, ' ') AS columns, con.confrelid AS ref_oid,
       array_to_string(con.confkey, ' ') AS ref_columns,
       con.confdeltype::text AS on_delete, con.confupdtype::text AS on_update,
       CASE WHEN con.contype = 'c' THEN pg_get_expr(con.conbin, con.conrelid) END AS expression,
       con.condeferrable AS deferrable, con.condeferred AS deferred
FROM pg_constraint con
JOIN pg_class c ON c.oid = con.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE {_PG_TABLE_FILTER} AND con.contype IN ('p', 'u', 'f', 'c', 'x')
  AND con.conparentid = 0
"""

# A partition's keys, constraints and indexes made for it from its parent's (conparentid; an index attached
# to the parent's, in pg_inherits) are the parent's, not its own: left out, as attaching it makes them again.
#
# Every index of the tables but primary keys', those of unique and exclusion constraints too (told apart
# in Python by PG_CONSTRAINTS' index_oid: cheaper than an anti-join with pg_constraint, which has no index
# on conindid). Key columns (the first nkeys of columns, as text like PG_CONSTRAINTS'; the rest are INCLUDE
# columns); only for the rare index with order options (bit 1: DESC), them as text like columns (else
# NULL, not a list of zeros); only for the rare index with expressions, the text of each key element
# (pg_get_indexdef's, whose numbered elements are the expressions); only for the rare one with an
# operator class that is no default one, each key's class where it is not a default (the set of defaults
# is one InitPlan, read once); the predicate of a partial index.
PG_INDEXES = f"""
SELECT i.indrelid AS oid, i.indexrelid AS index_oid, ic.relname AS name, i.indisunique AS unique,
       i.indkey::text AS columns, i.indnkeyatts AS nkeys, am.amname AS method,
       CASE WHEN 0 <> ANY(i.indoption::int2[]) THEN i.indoption::text END AS options,
       CASE WHEN i.indexprs IS NOT NULL THEN
            ARRAY(SELECT pg_get_indexdef(i.indexrelid, k, true) FROM generate_series(1, i.indnkeyatts) k ORDER BY k)
       END AS expressions,
       CASE WHEN NOT i.indclass::oid[] <@ (SELECT array_agg(o.oid) FROM pg_opclass o WHERE o.opcdefault) THEN
            ARRAY(SELECT CASE WHEN NOT o.opcdefault THEN o.opcname::text END
                  FROM unnest(i.indclass::oid[]) WITH ORDINALITY AS u(oid, k) JOIN pg_opclass o ON o.oid = u.oid
                  ORDER BY u.k)
       END AS opclasses,
       pg_get_expr(i.indpred, i.indrelid, true) AS predicate
FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid LEFT JOIN pg_am am ON am.oid = ic.relam
JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE {_PG_TABLE_FILTER} AND NOT i.indisprimary
  AND (NOT c.relispartition OR NOT EXISTS (SELECT FROM pg_inherits h WHERE h.inhrelid = i.indexrelid))
"""

# Enum types, from pg_enum (few rows; each type's row by its oid): format_type's text is how a column of
# the type names it in PG_COLUMNS. Every array read is text[] (labels, operator classes; index options as
# text): asyncpg knows text[] from the start, while name[] or int2[] makes it introspect the type first
# (3 more round trips on every new connection, about 20 ms).
#
# Then the domains (kind 'd', after the enum types: a domain may be over one): the text of the type it is
# over, NOT NULL, the default as the database gives it back, and its checks by name (pg_get_constraintdef:
# ``CHECK (...)``).
PG_ENUMS = """
SELECT 'e' AS kind, n.nspname AS schema, t.typname AS name, format_type(t.oid, NULL) AS text,
       array_agg(e.enumlabel::text ORDER BY e.enumsortorder) AS values,
       NULL::text AS base, NULL::bool AS notnull, NULL::text AS "default",
       NULL::text[] AS check_names, NULL::text[] AS check_defs
FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
  AND NOT EXISTS (SELECT FROM pg_depend x WHERE x.objid = t.oid AND x.deptype = 'e')
GROUP BY n.nspname, t.typname, t.oid
UNION ALL
SELECT 'd', n.nspname, t.typname, format_type(t.oid, NULL), NULL, format_type(t.typbasetype, t.typtypmod),
       t.typnotnull, t.typdefault,
       ARRAY(SELECT c.conname::text FROM pg_constraint c WHERE c.contypid = t.oid AND c.contype = 'c'
             ORDER BY c.conname),
       ARRAY(SELECT pg_get_constraintdef(c.oid, true) FROM pg_constraint c WHERE c.contypid = t.oid
             AND c.contype = 'c' ORDER BY c.conname)
FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE t.typtype = 'd' AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
  AND NOT EXISTS (SELECT FROM pg_depend x WHERE x.objid = t.oid AND x.deptype = 'e')
ORDER BY 1 DESC, 2, 3
"""

# The sequences of identity columns (an identity column's sequence depends on it internally, 'i'): few rows,
# from pg_sequence, each one's dependency by pg_depend's index on the depender. Then the sequences that
# column defaults draw from (a default depends on the sequence it names, by pg_depend's index on the
# referenced object): a serial column's, if its default is exactly nextval of it (regclass: the sequence's
# name as that default's text writes it). Their options are read against the column's type (type), as the
# log holds them; sequence and owned (OWNED BY that very column) are NULL for an identity column's.
PG_IDENTITIES = """
SELECT d.refobjid AS oid, d.refobjsubid AS num, format_type(s.seqtypid, NULL) AS type, s.seqstart AS start,
       s.seqincrement AS increment, s.seqmin AS minvalue, s.seqmax AS maxvalue, s.seqcache AS cache,
       s.seqcycle AS cycle, NULL::text AS regclass, NULL::text AS schema, NULL::text AS sequence, NULL AS owned
FROM pg_sequence s
JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = s.seqrelid AND d.objsubid = 0
WHERE d.refclassid = 'pg_class'::regclass AND d.deptype = 'i'
UNION ALL
SELECT ad.adrelid, ad.adnum, format_type(a.atttypid, NULL), s.seqstart, s.seqincrement, s.seqmin, s.seqmax,
       s.seqcache, s.seqcycle, s.seqrelid::regclass::text, sn.nspname::text, sc.relname::text,
       EXISTS (SELECT FROM pg_depend o
               WHERE o.classid = 'pg_class'::regclass AND o.objid = s.seqrelid AND o.objsubid = 0
                 AND o.refclassid = 'pg_class'::regclass AND o.refobjid = ad.adrelid AND o.refobjsubid = ad.adnum
                 AND o.deptype = 'a')
FROM pg_sequence s
JOIN pg_depend d ON d.refclassid = 'pg_class'::regclass AND d.refobjid = s.seqrelid AND d.refobjsubid = 0
JOIN pg_attrdef ad ON ad.oid = d.objid
JOIN pg_attribute a ON a.attrelid = ad.adrelid AND a.attnum = ad.adnum
JOIN pg_class sc ON sc.oid = s.seqrelid JOIN pg_namespace sn ON sn.oid = sc.relnamespace
WHERE d.classid = 'pg_attrdef'::regclass AND a.attidentity = '' AND a.attgenerated = ''
"""

PG_QUERIES = (PG_ENUMS, PG_TABLES, PG_DEFAULTS, PG_IDENTITIES, PG_CONSTRAINTS, PG_INDEXES, PG_COLUMNS)
"""Everything introspect_postgresql reads, in the order it reads them (see read_postgresql). The identities,
few rows, come while the defaults are taken in (a moment's work); the constraints' and indexes' rows, which
take longer to take in and compare, while the next long query runs."""

PG_STEP = 128
"""How many tables PgCatalogue's steps compare between two yields (PgCatalogue.readers)."""

Step = Callable[[], Iterator[None]]
"""A part of the comparison with the expected schema, done a little at a time (PgCatalogue.readers)."""

PG_FK_ACTIONS = {"a": None, "r": "restrict", "c": "cascade", "n": "set null", "d": "set default"}

PG_TYPES = {
    "smallint": "smallint",
    "integer": "integer",
    "bigint": "bigint",
    "boolean": "boolean",
    "real": "real",
    "double precision": "double",
    "text": "text",
    "date": "date",
    "time without time zone": "time",
    "timestamp without time zone": "timestamp",
    "timestamp with time zone": "timestamptz",
    "interval": "interval",
    "json": "json",
    "uuid": "uuid",
    "bytea": "bytes",
    "numeric": "numeric",
    "character varying": "varchar",
    "character": "char",
}
_PG_PARAMS = re.compile(r"^([a-z ]+?)\(([\d,]+)\)$")


_V = TypeVar("_V")


class _Memo(dict[str, _V]):
    """A catalogue text -> what ``make`` makes of it, made on the first lookup (``memo[text]``); emptied
    when it holds 65,536 texts."""

    def __init__(self, make: Callable[[str], _V]) -> None:
        super().__init__()
        self.make = make

    def __missing__(self, text: str) -> _V:
        if len(self) >= 1 << 16:
            self.clear()
        value = self[text] = self.make(text)
        return value


def postgresql_type(text: str) -> ColumnType:
    return _PG_TYPE_OF[text]


def _postgresql_type(text: str) -> ColumnType:
    if text in PG_TYPES:
        found = ColumnType(name=PG_TYPES[text])
    else:
        match = _PG_PARAMS.match(text)
        try:  # within the portable grammar's bounds (PostgreSQL allows numeric(2,5), for one), else native
            if not (match and match.group(1) in ("numeric", "character varying", "character")):
                raise ValueError(text)
            params = tuple(int(p) for p in match.group(2).split(","))
            found = ColumnType(name=PG_TYPES[match.group(1)], params=params)
        except ValueError:
            found = live_native_type("postgresql", text)
    return _shared_type(found)


def _shared_type(found: ColumnType) -> ColumnType:
    """The equal ColumnType the log's own type text gives (parse_type keeps one per text), where there is
    one: then a column read back usually holds the very object the projection's column holds."""
    try:
        shared = parse_type(str(found))
    except ValueError:
        return found
    return shared if shared == found else found


_PG_TYPE_OF = _Memo(_postgresql_type)

_PG_TYPE_NAMES = {portable: text for text, portable in PG_TYPES.items()}


def _pg_type_text(found: ColumnType) -> str | None:
    """The catalogue's text for a type (format_type's), where that text reads back as this very type
    (postgresql_type); else None."""
    if found.dialect == "postgresql" and not found.params:
        text = found.name
    elif found.dialect is None and found.name in _PG_TYPE_NAMES:
        text = _PG_TYPE_NAMES[found.name]
        if found.params:
            text += "(" + ",".join(map(str, found.params)) + ")"
    else:
        return None
    return text if _PG_TYPE_OF[text] == found else None


_PG_TYPE_TEXTS: dict[int, tuple[ColumnType, str | None, str | None]] = {}
"""id(type) -> (the type, its catalogue text, as COPY writes it): types are shared objects (parse_type),
and hashing one is dearer than a lookup by id; the type is held, so that its id is not reused while it is
here."""


def _pg_type_texts(found: ColumnType) -> tuple[ColumnType, str | None, str | None]:
    """_pg_type_text and its COPY form, kept by id (_PG_TYPE_TEXTS)."""
    hit = _PG_TYPE_TEXTS.get(id(found))
    if hit is None or hit[0] is not found:
        if len(_PG_TYPE_TEXTS) >= 4096:
            _PG_TYPE_TEXTS.clear()
        text = _pg_type_text(found)
        hit = _PG_TYPE_TEXTS[id(found)] = (found, text, None if text is None else _copy_text(text))
    return hit


def _pg_name(schema: str, name: str) -> str:
    return name if schema == "public" else f"{schema}.{name}"


def _check_body(definition: str) -> str:
    """A check's expression from pg_get_constraintdef's ``CHECK (expression)`` (NOT VALID left out)."""
    text = definition.strip()
    if text.endswith(" NOT VALID"):
        text = text[: -len(" NOT VALID")]
    if text.startswith("CHECK (") and text.endswith(")"):
        return text[len("CHECK (") : -1]
    return text


def _find(items: tuple[Any, ...], name: str) -> Any:
    for item in items:
        if item.name == name:
            return item
    return None


class PgCatalogue:
    """One read of the PostgreSQL catalogue (the rows of PG_QUERIES), by table: a LiveSchema's source.

    The rows are taken in as they arrive (``take_*``, while the server runs the next query; see
    read_postgresql) and kept (grouped by table when needed), with column numbers where the catalogue has
    them.
    ``matching`` compares them with the expected objects field by field, as ``differences`` compares
    objects (items by name, whole fields by ``==``, in the canonical form ``canonical_schema`` gives), so
    that a migrate that finds nothing changed builds nothing; ``table`` builds a table's objects when
    asked. Nothing is made per column until then.

    Told the expected schema, the catalogue prepares while the server works (``readers``): it writes the
    expected columns as COPY writes PG_COLUMNS' rows, and compares defaults, comment, primary key, indexes
    and constraints, naming column numbers by the expected columns' positions. The columns, copied, are
    first compared whole with what was written (take_columns_text): equal, every table's columns are the
    expected ones, column n the n-th, and that comparison stands. Else they are read as rows, and a table
    whose rows are exactly those the expected columns give (_rows_of) keeps it, if its defaults were equal
    and the tables its foreign keys reference are in place too; any other table is compared field by
    field with its columns named from the catalogue, as when not told. Defaults go the same way: all
    compared in one go, else table by table, else (a table whose defaults differ) field by field.
    """

    def __init__(self) -> None:
        self._names: dict[int, str] = {}  # every table read, columns or not (foreign keys name them)
        self._comments: dict[int, str | None] = {}
        # partitioning (issue 19): a partitioned table's key, a partition's parent (oid) and bound
        self._partition_by: dict[int, str] = {}
        self._partition_of: dict[int, tuple[int, str]] = {}
        self._oids: dict[str, int] = {}  # the tables of the schema: those with columns
        self._columns: dict[int, list[Any]] | None = None  # PG_COLUMNS' rows by table (_grouped)
        self._default_rows: list[Any] = []  # PG_DEFAULTS' rows, ordered by table and column number
        self._defaults: dict[int, dict[int, str]] | None = None  # table -> number -> text (_by_number)
        self._numbers: dict[int, dict[int, str]] = {}  # column number -> name, where not the position
        self._primary_keys: dict[int, tuple[int, ...]] = {}  # column numbers
        # (name, kind, column numbers, expression, referenced table's oid, its column numbers, on delete,
        # on update)
        self._constraints: dict[int, list[tuple[Any, ...]]] = {}
        self._owned: set[int] = set()  # the indexes of primary keys, unique and exclusion constraints
        # name, unique, key column numbers, and for an index that is not of plain columns in a B-tree: (method,
        # key elements as (number, canonical expression, operator class, descending), predicate, INCLUDE numbers)
        self._indexes: dict[int, list[tuple[str, bool, tuple[int, ...], tuple[Any, ...] | None]]] = {}
        self._pk_names: dict[int, str | None] = {}  # the primary key's name, None where it is <table>_pkey
        self._enums: dict[str, EnumType] = {}  # by the log's name
        self._enum_texts: dict[str, str] = {}  # the log's name -> format_type's text for it (domains too)
        self._domains: dict[str, DomainType] = {}  # by the log's name
        self._types: _Memo[ColumnType] | dict[str, ColumnType] = _PG_TYPE_OF  # a column's type by its text
        # the rare column attributes, by table and column number: generated expressions (canonical), and
        # identity sequences' options other than PostgreSQL's own (canonical, with always False)
        self._generated: dict[int, dict[int, str]] = {}
        self._identities: dict[int, dict[int, IdentityOptions]] = {}
        # the same for the expected tables, by column position (expect_columns)
        self._want_generated: dict[int, dict[int, str]] = {}
        self._want_identities: dict[int, dict[int, IdentityOptions]] = {}
        self._built: dict[str, Table] = {}
        # what the steps of ``readers`` found, for the schema it was told
        self._told: Schema | None = None  # set when all of it is done
        self._want: dict[int, list[tuple[Any, ...]] | None] = {}  # table -> rows PG_COLUMNS would give (_rows_of)
        self._want_text: bytes | None = None  # all of them as COPY writes PG_COLUMNS, if every type is known
        self._all_in_place = False  # PG_COLUMNS, copied, was exactly _want_text
        self._want_defaults: list[tuple[int, int, str | None]] = []  # (table, number, canonical default), in order
        self._expected: dict[int, dict[str, Any]] = {}  # table read -> the expected table's fields
        self._expected_names: dict[int, tuple[str, ...]] = {}  # table -> its expected columns' names
        self._defaults_in_place: dict[int, bool] = {}  # its defaults, by position, are the expected ones
        self._prematch: dict[int, bool | None] = {}  # comment, keys, indexes, constraints (None: undecided)
        self._referenced: dict[int, tuple[int, ...]] = {}  # tables a table's foreign keys name columns of

    def readers(self, expected: Schema | None) -> dict[str, tuple[Callable[[list[Any]], None], Step | None]]:
        """For each of PG_QUERIES, what takes in its rows, and, told the ``expected`` schema (a dialect's
        form), the step that compares what they bring with it: to be run in PG_QUERIES' order, each once
        the steps before it are done (it relies on what they found), while the server runs the queries
        after, so that ``matching(expected)`` has little left to do. A step yields now and then (every
        PG_STEP tables), for the caller to see to the connection; ``told`` ends them. The columns have
        no step: compared whole (take_columns_text)."""
        told = expected is not None
        return {
            PG_ENUMS: (self.take_enums, None),
            PG_TABLES: (self.take_tables, (lambda: self.expect_columns(expected)) if expected is not None else None),
            PG_DEFAULTS: (self.take_defaults, self.expect_defaults if told else None),
            PG_CONSTRAINTS: (self.take_constraints, self.expect_keys if told else None),
            PG_INDEXES: (self.take_indexes, self.expect_indexes if told else None),
            PG_IDENTITIES: (self.take_identities, None),
            PG_COLUMNS: (self.take_columns, None),
        }

    def told(self, expected: Schema) -> None:
        """Every step of ``readers(expected)`` is done: ``matching(expected)`` may rely on them."""
        self._told = expected

    # ------------------------------------------------------------------ taking the rows in

    def take_tables(self, rows: list[Any]) -> None:
        """PG_TABLES' rows."""
        names, comments = self._names, self._comments
        for oid, schema, name, comment, partition_by, parent, bound in rows:
            names[oid] = _pg_name(schema, name)
            comments[oid] = comment
            if partition_by is not None:
                self._partition_by[oid] = partition_by
            if parent is not None:
                self._partition_of[oid] = (parent, bound)

    def take_constraints(self, rows: list[Any]) -> None:
        """PG_CONSTRAINTS' rows. The indexes of primary keys, unique and exclusion constraints are theirs.
        Column numbers (read as text) are kept as tuples: tuples of numbers and texts are left alone by the
        collector of cycles, where lists are followed by it. Every list (or row) that lives through two young
        collections counts towards a full one, which in a process holding the expected schema costs more
        than the whole comparison."""
        constraints, owned, names = self._constraints, self._owned, self._names
        for row in rows:
            (
                oid,
                name,
                kind,
                index_oid,
                key,
                ref_oid,
                ref_key,
                on_delete,
                on_update,
                expression,
                deferrable,
                deferred,
            ) = row
            nums = None if key is None else tuple(map(int, key.split()))
            ref_nums = None if ref_key is None else tuple(map(int, ref_key.split()))
            if kind == "f":
                entry: tuple[Any, ...] = (
                    name,
                    "foreign_key",
                    nums,
                    None,
                    ref_oid,
                    ref_nums,
                    PG_FK_ACTIONS.get(on_delete),
                    PG_FK_ACTIONS.get(on_update),
                    deferrable,
                    deferred,
                )
            elif kind == "c":
                entry = (name, "check", None, canonical_check(expression), None, None, None, None, False, False)
            else:
                owned.add(index_oid)
                if kind == "p":
                    self._primary_keys[oid] = nums or ()
                    table = names.get(oid)
                    self._pk_names[oid] = None if table is None or name == default_pk_name(table) else name
                    continue
                if kind != "u":
                    continue
                entry = (name, "unique", nums, None, None, None, None, None, deferrable, deferred)
            if oid in constraints:
                constraints[oid].append(entry)
            else:
                constraints[oid] = [entry]

    def take_indexes(self, rows: list[Any]) -> None:
        """PG_INDEXES' rows, once PG_CONSTRAINTS' are in: the indexes of constraints are theirs. An index of
        plain columns in a B-tree (the usual one) is kept as its column numbers; any other with what else
        it has (_pg_index_detail)."""
        indexes, owned = self._indexes, self._owned
        for oid, index_oid, name, unique, text, nkeys, method, options, expressions, opclasses, predicate in rows:
            if index_oid in owned:
                continue
            nums = tuple(map(int, text.split()))  # a tuple: see take_constraints
            if not nums:
                continue
            keys = nums if len(nums) == nkeys else nums[:nkeys]
            detail = None
            if (
                method != "btree"
                or expressions is not None
                or opclasses is not None
                or predicate is not None
                or options is not None
                or len(nums) != nkeys
            ):
                flags = None if options is None else [int(x) for x in options.split()]
                detail = _pg_index_detail(nums, nkeys, method, flags, expressions, opclasses, predicate)
            entry = (name, unique, keys, detail)
            if oid in indexes:
                indexes[oid].append(entry)
            else:
                indexes[oid] = [entry]

    def take_defaults(self, rows: list[Any]) -> None:
        """PG_DEFAULTS' rows (ordered by table and column number), grouped when needed (_by_number); kept
        as tuples (see take_constraints). A generated column's expression is no default: kept apart, in its
        canonical form."""
        kept = []
        generated = self._generated
        for oid, num, text, is_generated in rows:
            if is_generated:
                generated.setdefault(oid, {})[num] = canonical_expression(text)
            else:
                kept.append((oid, num, text))
        self._default_rows = kept

    def take_enums(self, rows: list[Any]) -> None:
        """PG_ENUMS' rows: the enum types and domains, and the text a column of each reads as (then its
        type is ``enum:NAME`` or ``domain:NAME``)."""
        types: dict[str, ColumnType] = {}
        for kind, schema, name, text, values, base, notnull, default, check_names, check_defs in rows:
            logged = _pg_name(schema, name)
            self._enum_texts[logged] = text
            if kind == "e":
                self._enums[logged] = construct(EnumType, {"name": logged, "values": tuple(values)})
                types[text] = construct(ColumnType, {"name": logged, "params": (), "dialect": "enum"})
                continue
            checks = tuple(
                construct(DomainCheck, {"name": check, "expression": _check_body(definition)})
                for check, definition in zip(check_names, check_defs, strict=True)
            )
            over = types.get(base) or _PG_TYPE_OF[base]
            self._domains[logged] = construct(
                DomainType,
                {"name": logged, "type": over, "nullable": not notnull, "default": default, "checks": checks},
            )
            types[text] = construct(ColumnType, {"name": logged, "params": (), "dialect": "domain"})
        if types:
            self._types = _Memo(lambda text: types.get(text) or _PG_TYPE_OF[text])

    def domains(self) -> dict[str, DomainType]:
        """The domains read, by the log's names."""
        return dict(self._domains)

    def take_identities(self, rows: list[Any]) -> None:
        """PG_IDENTITIES' rows, once PG_DEFAULTS' are in: each identity column's sequence options but
        PostgreSQL's own; each serial column's sequence (its default exactly nextval of it) with its
        options but those of the column's type and whether the column owns it."""
        identities = self._identities
        defaults = None
        for (
            oid,
            num,
            type_text,
            start,
            increment,
            minvalue,
            maxvalue,
            cache,
            cycle,
            regclass,
            schema,
            name,
            owned,
        ) in rows:
            values = {"always": False, "start": start, "increment": increment, "minvalue": minvalue}
            values.update({"maxvalue": maxvalue, "cycle": cycle, "cache": cache, "sequence": None, "owned": False})
            if regclass is not None:
                defaults = self._by_number() if defaults is None else defaults
                if (defaults.get(oid) or {}).get(num) != _nextval_text(regclass):
                    continue  # a default that draws from a sequence some other way: no serial column's
                values.update(sequence=_pg_name(schema, name), owned=bool(owned))
            options = canonical_identity(construct(IdentityOptions, values), PG_TYPES.get(type_text, "bigint"))
            if options is not None:
                identities.setdefault(oid, {})[num] = options

    def enums(self) -> dict[str, EnumType]:
        """The enum types read, by the log's names."""
        return dict(self._enums)

    def _by_number(self) -> dict[int, dict[int, str]]:
        """PG_DEFAULTS' rows by table: column number -> the default's text."""
        if self._defaults is None:
            self._defaults = {
                oid: {r[1]: r[2] for r in group} for oid, group in groupby(self._default_rows, itemgetter(0))
            }
        return self._defaults

    def take_columns(self, rows: list[Any]) -> None:
        """PG_COLUMNS' rows (ordered by table and column number)."""
        self._columns = {oid: list(group) for oid, group in groupby(rows, itemgetter(0))}
        names = self._names
        self._oids = {names[oid]: oid for oid in self._columns if oid in names}

    def take_columns_text(self, text: bytes) -> bool:
        """PG_COLUMNS as COPY writes it (text format): whether it is exactly what was written for the
        expected columns (expect_columns), in one comparison; then the rows are those written, and
        nothing else is needed. Else take_columns must have the rows."""
        if self._want_text is None or text != self._want_text:
            return False
        self._all_in_place, names = True, self._names
        self._oids = {names[oid]: oid for oid, fields in self._expected.items() if fields["columns"]}
        return True

    def _grouped(self) -> dict[int, list[Any]]:
        """PG_COLUMNS' rows by table; where they were only compared as text, the rows written for the
        expected columns (as they were exactly), made when first needed."""
        if self._columns is None:
            self._columns = {oid: self._rows_of(oid) or [] for oid in self._oids.values()}
        return self._columns

    def _rows_of(self, oid: int) -> list[tuple[Any, ...]] | None:
        """The rows PG_COLUMNS would give for an expected table (its oid), made when first asked: None for
        a table with a type whose catalogue text is not known."""
        if oid not in self._want:
            self._want[oid] = _pg_rows_of(oid, self._expected[oid]["columns"], self._enum_texts)
        return self._want[oid]

    # ------------------------------------------------------------------ comparing while reading

    def expect_columns(self, expected: Schema) -> Iterator[None]:
        """Once the tables are in: for each expected table read, its columns' names (whose positions name
        column numbers: _by_position); all of their rows as COPY writes PG_COLUMNS (by oid, as it orders
        them; none if a type's catalogue text is not known); and the expected defaults as
        _pg_defaults_read makes PG_DEFAULTS' rows, in their order."""
        wanted, names = expected.tables, self._names
        defaults, expected_names = self._want_defaults, self._expected_names
        rare = (self._enum_texts, self._want_generated, self._want_identities)
        written: list[str] | None = []
        for count, oid in enumerate(sorted(names), 1):
            if not count % PG_STEP:
                yield
            table = wanted.get(names[oid])
            if table is None:
                continue
            fields = self._expected[oid] = table.__dict__
            names_of, lines = _pg_lines_of(oid, fields["columns"], defaults, rare)
            expected_names[oid] = tuple(names_of)  # see take_constraints
            if lines is None:
                written = None
            elif written is not None:
                written += lines
        self._want_text = None if written is None else "".join(written).encode()

    def expect_defaults(self) -> Iterator[None]:
        """Once the defaults are in: whether each expected table's are the expected ones by position (as
        _pg_defaults_read makes them: (table, number, canonical text), a serial column's matching none),
        all in one comparison first, else table by table."""
        live, want = _pg_defaults_read(self._default_rows), self._want_defaults
        if live == want:
            self._defaults_in_place = dict.fromkeys(self._expected, True)
            return
        live_of, want_of = _by_table(live), _by_table(want)
        in_place = self._defaults_in_place
        for count, oid in enumerate(self._expected, 1):
            if not count % PG_STEP:
                yield
            in_place[oid] = live_of.get(oid) == want_of.get(oid)

    def expect_keys(self) -> Iterator[None]:
        """Once the constraints are in: compare comment, primary key and constraints of each expected table
        read, naming column numbers by the positions of the expected columns."""
        names, named, prematch, referenced = self._names, self._by_position, self._prematch, self._referenced
        for count, (oid, fields) in enumerate(self._expected.items(), 1):
            if not count % PG_STEP:
                yield
            refs = [r[4] for r in self._constraints.get(oid, ()) if r[1] == "foreign_key" and r[4] in names]
            if refs:
                referenced[oid] = tuple(refs)
            try:
                prematch[oid] = self._keys_match(oid, fields, named)
            except (KeyError, IndexError):
                prematch[oid] = None  # a number beyond the expected columns: decided on the catalogue's names

    def expect_indexes(self) -> Iterator[None]:
        """Once the indexes are in: compare them too, where all else was equal (expect_keys)."""
        expected, named, prematch = self._expected, self._by_position, self._prematch
        for count, (oid, decided) in enumerate(prematch.items(), 1):
            if not count % PG_STEP:
                yield
            if decided:
                try:
                    prematch[oid] = self._indexes_match(expected[oid]["indexes"], oid, named)
                except (KeyError, IndexError):
                    prematch[oid] = None

    # ------------------------------------------------------------------ reading them

    def names(self) -> Collection[str]:
        return self._oids.keys()

    def _named(self, oid: int, nums: tuple[int, ...] | None) -> tuple[str, ...]:
        """Column numbers of a table -> their names in the catalogue (KeyError for a number it lacks)."""
        if not nums:
            return ()
        rows = self._grouped()[oid]
        if len(nums) == 1:  # the common case; the n-th row is column n unless a column was dropped
            n = nums[0]
            if 0 < n <= len(rows) and rows[n - 1][1] == n:
                return (rows[n - 1][2],)
        numbers = self._numbers.get(oid)
        if numbers is None:
            numbers = self._numbers[oid] = {r[1]: r[2] for r in rows}
        return tuple([numbers[n] for n in nums])

    def _by_position(self, oid: int, nums: tuple[int, ...] | None) -> tuple[str, ...]:
        """Column numbers of a table -> the names of the expected columns at those positions (KeyError for
        a table not expected, IndexError for a position beyond its columns)."""
        if not nums:
            return ()
        names = self._expected_names[oid]
        if len(nums) == 1:
            n = nums[0]
            if 0 < n <= len(names):
                return (names[n - 1],)
            raise IndexError(n)
        if min(nums) < 1:
            raise IndexError(min(nums))
        return tuple([names[n - 1] for n in nums])

    def table(self, name: str) -> Table:
        built = self._built.get(name)
        if built is None:
            built = self._built[name] = self._build(self._oids[name])
        return built

    def _build(self, oid: int) -> Table:
        try:
            return self._build_named(oid)
        except KeyError:
            raise KeyError(f"table {self._names[oid]}: an index or constraint names a column it lacks") from None

    def _build_named(self, oid: int) -> Table:
        named, names = self._named, self._names
        constraints = []
        for (
            name,
            kind,
            nums,
            expression,
            ref_oid,
            ref_nums,
            on_delete,
            on_update,
            deferrable,
            deferred,
        ) in self._constraints.get(oid, ()):
            reference = None
            if kind == "foreign_key":
                if ref_oid not in names:
                    continue  # a foreign key to a table not read is left out
                reference = construct(Reference, {"table": names[ref_oid], "columns": named(ref_oid, ref_nums)})
            values = {
                "name": name,
                "kind": kind,
                "columns": named(oid, nums),
                "expression": expression,
                "references": reference,
                "on_delete": on_delete,
                "on_update": on_update,
                "deferrable": deferrable,
                "initially_deferred": deferred,
                "anonymous": False,  # PostgreSQL keeps every constraint's name
            }
            constraints.append(construct(Constraint, values))
        defaults = self._by_number().get(oid)
        rare = self._generated.get(oid), self._identities.get(oid)
        return construct(
            Table,
            {
                "name": names[oid],
                "columns": tuple(
                    construct(Column, _pg_column(r, defaults, self._types, rare)) for r in self._grouped()[oid]
                ),
                "primary_key": named(oid, self._primary_keys.get(oid)),
                "indexes": tuple(
                    _pg_index(oid, name, unique, nums, detail, named)
                    for name, unique, nums, detail in self._indexes.get(oid, ())
                ),
                "constraints": tuple(constraints),
                "comment": self._comments[oid],
                "primary_key_name": self._pk_names.get(oid),
                "partition_by": self._partition_by.get(oid),
                "partition_of": self._partition_of_table(oid),
            },
        )

    def _partition_of_table(self, oid: int) -> PartitionOf | None:
        found = self._partition_of.get(oid)
        if found is None:
            return None
        return construct(PartitionOf, {"parent": self._names[found[0]], "bound": found[1]})

    # ------------------------------------------------------------------ comparison on the rows

    def matching(self, expected: Schema) -> set[str]:
        wanted = expected.tables
        told = expected is self._told
        in_place = self._defaults_in_place if told else {}
        all_in_place = told and self._all_in_place
        placed: dict[int, int] = {}  # table -> how its columns stand to the expected ones (_pg_columns_placed)
        rare = self._generated, self._identities
        for name, oid in self._oids.items():
            table = wanted.get(name)
            if table is None:
                continue
            if (
                in_place.get(oid)
                and (all_in_place or self._grouped()[oid] == self._rows_of(oid))
                and self._want_generated.get(oid) == self._generated.get(oid)
                and self._want_identities.get(oid) == self._identities.get(oid)
            ):
                placed[oid] = EQUAL  # the rows written for it, and its defaults by position
            else:
                rows, defaults = self._grouped()[oid], self._by_number().get(oid)
                placed[oid] = _pg_columns_placed(table.__dict__["columns"], rows, defaults, self._types, rare)
        prematch = self._prematch if told else {}
        referenced, names = self._referenced, self._names
        same = set()
        for oid, place in placed.items():
            decided = prematch.get(oid)
            if decided is not None and place:
                refs = referenced.get(oid)
                if refs is None or all(map(placed.get, refs)):  # so are the referenced tables' columns
                    # every column number named by position, as the catalogue names it: decided (see expect_keys)
                    if decided and place == EQUAL:
                        same.add(names[oid])
                    continue
            if place == DIFFERENT:
                continue
            name = names[oid]
            fields = wanted[name].__dict__
            if place == OUT_OF_PLACE and not _pg_columns_match(
                fields["columns"], self._grouped()[oid], self._by_number().get(oid), self._types, rare
            ):
                continue
            try:
                if self._others_match(oid, fields, self._named):
                    same.add(name)
            except KeyError:
                continue  # an index or constraint on a column the table lacks: not the same
        return same

    def _others_match(self, oid: int, fields: dict[str, Any], named: Callable[[int, Any], tuple[str, ...]]) -> bool:
        """Comment, primary key, constraints and indexes, as ``differences`` decides (column numbers named
        by ``named``)."""
        return self._keys_match(oid, fields, named) and self._indexes_match(fields["indexes"], oid, named)

    def _keys_match(self, oid: int, fields: dict[str, Any], named: Callable[[int, Any], tuple[str, ...]]) -> bool:
        """Comment, primary key and constraints (_others_match but the indexes)."""
        return (
            fields["comment"] == self._comments[oid]
            and fields["primary_key"] == named(oid, self._primary_keys.get(oid))
            and fields["primary_key_name"] == self._pk_names.get(oid)
            and fields.get("partition_by") == self._partition_by.get(oid)
            and fields.get("partition_of") == self._partition_of_table(oid)
            and self._constraints_match(fields["constraints"], oid, named)
        )

    def _indexes_match(self, wanted: tuple[Index, ...], oid: int, named: Callable[[int, Any], tuple[str, ...]]) -> bool:
        """What ``differences`` decides for a table's indexes (normalize._same_items)."""
        live = self._indexes.get(oid, ())
        if len(live) != len(wanted):
            return False
        for position, (name, unique, nums, detail) in enumerate(live):
            have = wanted[position]  # positionally first (the order they were made in), else by name
            if have.name != name:
                have = _find(wanted, name)
                if have is None:
                    return False
            fields = have.__dict__
            if detail is not None:  # rare: compared as the object it builds
                if fields != _pg_index(oid, name, unique, nums, detail, named).__dict__:
                    return False
            elif (
                fields["unique"] != unique
                or fields["columns"] != named(oid, nums)
                or fields["method"] is not None
                or fields["elements"]
                or fields["where"] is not None
                or fields["include"]
            ):
                return False
        return True

    def _constraints_match(
        self, wanted: tuple[Constraint, ...], oid: int, named: Callable[[int, Any], tuple[str, ...]]
    ) -> bool:
        """What ``differences`` decides for a table's constraints (normalize._same_items)."""
        names, count = self._names, 0
        for (
            name,
            kind,
            nums,
            expression,
            ref_oid,
            ref_nums,
            on_delete,
            on_update,
            deferrable,
            deferred,
        ) in self._constraints.get(oid, ()):
            if kind == "foreign_key" and ref_oid not in names:
                continue  # a foreign key to a table not read is left out
            have = wanted[count] if count < len(wanted) else None
            if have is None or have.name != name:
                have = _find(wanted, name)
                if have is None:
                    return False
            count += 1
            fields, reference = have.__dict__, have.references
            if (
                fields["kind"] != kind
                or fields["expression"] != expression
                or fields["on_delete"] != on_delete
                or fields["on_update"] != on_update
                or fields["deferrable"] != deferrable
                or fields["initially_deferred"] != deferred
                or fields["anonymous"]
                or fields["columns"] != named(oid, nums)
            ):
                return False
            if kind != "foreign_key":
                if reference is not None:
                    return False
            elif (
                reference is None or reference.table != names[ref_oid] or reference.columns != named(ref_oid, ref_nums)
            ):
                return False
        return count == len(wanted)


def _nextval_text(regclass: str) -> str:
    """A serial column's default as pg_get_expr writes it, for its sequence's regclass text."""
    return "nextval('" + regclass.replace("'", "''") + "'::regclass)"


def _pg_default(text: str) -> tuple[str | None, bool]:
    """A column default's text -> (its canonical form, whether it makes the column an identity column):
    a serial column's ``nextval(...)`` makes it one, with no default."""
    if text.startswith("nextval("):
        return None, True
    return canonical_default(text), False


_PG_DEFAULTS = _Memo(_pg_default)


Rare = tuple[dict[int, dict[int, str]], dict[int, dict[int, IdentityOptions]]]
"""A catalogue's generated expressions and identity sequences' options, by table and column number."""


def _pg_identity(always: bool, part: IdentityOptions | None, found: ColumnType) -> IdentityOptions | None:
    """An identity column's options in the canonical form: GENERATED ALWAYS or not, and its sequence's
    options but PostgreSQL's own (``part``, read with always False)."""
    if part is None:
        return construct(IdentityOptions, {**_NO_OPTIONS, "always": True}) if always else None
    return canonical_identity(evolve(part, always=always), found.name)


_NO_OPTIONS = {
    "always": False,
    "start": None,
    "increment": None,
    "minvalue": None,
    "maxvalue": None,
    "cycle": False,
    "cache": None,
}


def _pg_column(
    r: Any,
    defaults: dict[int, str] | None,
    types: Mapping[str, ColumnType],
    rare: tuple[dict[int, str] | None, dict[int, IdentityOptions] | None],
) -> dict[str, Any]:
    """A Column's field values from a PG_COLUMNS row, its table's defaults by column number and its rare
    attributes by column number (generated expressions, identity options)."""
    identity, default = r[5], None
    text = defaults.get(r[1]) if defaults else None
    if text is not None:
        default, serial = _PG_DEFAULTS[text]
        identity = identity or serial
    found = types[r[3]]
    generated_of, identities_of = rare
    generated = None
    if r[8]:
        expression = generated_of.get(r[1], "") if generated_of else ""
        generated = construct(Generated, {"expression": expression, "stored": True})
    options = None
    if identity:  # an identity column, or a serial one (its sequence in identities_of)
        options = _pg_identity(r[7], identities_of.get(r[1]) if identities_of else None, found)
    return {
        "name": r[2],
        "type": found,
        "nullable": not r[4],
        "default": default,
        "identity": identity,
        "comment": r[6],
        "collation": r[9],
        "charset": None,
        "generated": generated,
        "identity_options": options,
        "on_update": None,  # MariaDB's ON UPDATE: PostgreSQL has none (a trigger does it there)
    }


def _pg_type_line(found: ColumnType, enum_texts: Mapping[str, str]) -> tuple[str | None, str | None]:
    """A type's catalogue text and its COPY form (None where not known): an enum type's or a domain's is
    the database's own (PG_ENUMS)."""
    if found.dialect == "enum" or found.dialect == "domain":
        text = enum_texts.get(found.name)
        return text, None if text is None else _copy_text(text)
    hit = _PG_TYPE_TEXTS.get(id(found))
    if hit is None or hit[0] is not found:
        hit = _pg_type_texts(found)
    return hit[1], hit[2]


def _pg_rows_of(oid: int, columns: tuple[Column, ...], enum_texts: Mapping[str, str]) -> list[tuple[Any, ...]] | None:
    """The rows PG_COLUMNS gives for a table (its oid) whose columns are exactly ``columns``, in place
    (column n the n-th), with no serial column; None if a type's catalogue text is not known."""
    rows = []
    for num, column in enumerate(columns, 1):
        c = column.__dict__
        text = _pg_type_line(c["type"], enum_texts)[0]
        if text is None:
            return None
        options = c["identity_options"]
        always = options is not None and options.always
        generated = c["generated"] is not None
        rows.append(
            (
                oid,
                num,
                c["name"],
                text,
                not c["nullable"],
                c["identity"] and (options is None or options.sequence is None),  # a serial one is by default
                c["comment"],
                always,
                generated,
                c["collation"],
            )
        )
    return rows


_COPY_NULL = "\\N"
_COPY_BOOLEAN = ("f", "t")  # by the value
_COPY_NOT_NULL = ("t", "f")  # notnull, by nullable
_COPY_ESCAPES = str.maketrans(
    {"\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}
)


def _copy_text(value: str) -> str:
    """A text value as COPY's text format writes it: a backslash before a backslash, and the control
    characters it names by letter (\\b \\f \\n \\r \\t \\v); any other character as it is."""
    return value if value.isprintable() and "\\" not in value else value.translate(_COPY_ESCAPES)


def _copy_tail(
    nullable: bool, identity: bool, comment: str | None, always: bool, generated: bool, collation: str | None
) -> str:
    """A PG_COLUMNS line as COPY writes it from its not-null value on (tab first, newline last)."""
    comment_text = _COPY_NULL if comment is None else _copy_text(comment)
    collation_text = _COPY_NULL if collation is None else _copy_text(collation)
    return (
        f"\t{_COPY_NOT_NULL[nullable]}\t{_COPY_BOOLEAN[identity]}\t{comment_text}"
        f"\t{_COPY_BOOLEAN[always]}\t{_COPY_BOOLEAN[generated]}\t{collation_text}\n"
    )


_COPY_PLAIN_TAILS = {
    (nullable, identity): _copy_tail(nullable, identity, None, False, False, None)
    for nullable in (False, True)
    for identity in (False, True)
}
"""_copy_tail of a column with no comment, collation, generated expression or identity options (most
columns), by (nullable, identity): written once, not per column."""

_COPY_NAMES = _Memo(_copy_text)
"""A column name -> as COPY writes it: names repeat from table to table."""


def _pg_lines_of(
    oid: int,
    columns: tuple[Column, ...],
    defaults: list[tuple[int, int, str | None]],
    rare: tuple[Mapping[str, str], dict[int, dict[int, str]], dict[int, dict[int, IdentityOptions]]],
) -> tuple[list[str], list[str] | None]:
    """The columns' names, and the rows PG_COLUMNS gives for a table (its oid) whose columns are exactly
    ``columns``, in place and with no serial column, as COPY writes them (text format, tab between
    values, \\N for NULL, t and f for booleans): one line each; None if a type's catalogue text is not
    known. Appends (table, column number, default) to ``defaults`` for each column with a default, and
    notes, by position, generated expressions and identity options but PostgreSQL's own in ``rare``'s
    dicts (enum type texts first). Runs once per expected column on every told read: a column with none
    of the rare attributes takes the short way (_COPY_PLAIN_TAILS)."""
    names: list[str] = []
    lines: list[str] = []
    prefix, texts, plain, copy_names = f"{oid}\t", _PG_TYPE_TEXTS, _COPY_PLAIN_TAILS, _COPY_NAMES
    enum_texts, want_generated, want_identities = rare
    written: list[str] | None = lines
    for num, column in enumerate(columns, 1):
        c = column.__dict__
        name, default, found = c["name"], c["default"], c["type"]
        names.append(name)
        if default is not None:
            defaults.append((oid, num, default))
        generated, options, collation, comment = c["generated"], c["identity_options"], c["collation"], c["comment"]
        if generated is None and options is None and collation is None and comment is None:
            tail = plain[c["nullable"], c["identity"]]
        else:
            if generated is not None:
                want_generated.setdefault(oid, {})[num] = generated.expression
            always, identity = False, c["identity"]
            if options is not None:
                always = options.always
                part = canonical_identity(evolve(options, always=False), found.name)
                if part is not None:
                    want_identities.setdefault(oid, {})[num] = part
                if options.sequence is not None:  # a serial column: no identity, and a default (nextval) read as None
                    identity = False
                    defaults.append((oid, num, None))
            tail = _copy_tail(c["nullable"], identity, comment, always, generated is not None, collation)
        hit = texts.get(id(found))
        if hit is None or hit[0] is not found:
            hit = (found, *_pg_type_line(found, enum_texts))
        if hit[2] is None:
            written = None
        elif written is not None:
            lines.append(f"{prefix}{num}\t{copy_names[name]}\t{hit[2]}{tail}")
    return names, written


def _pg_defaults_read(rows: list[Any]) -> list[tuple[int, int, str | None]]:
    """PG_DEFAULTS' rows as (table, column number, canonical default): a serial column's reads None."""
    canonical = _PG_DEFAULTS
    return [(oid, num, canonical[text][0]) for oid, num, text in rows]


def _by_table(rows: list[tuple[Any, ...]]) -> dict[Any, list[tuple[Any, ...]]]:
    """Rows ordered by their first value (a table's oid), grouped by it."""
    return {oid: list(group) for oid, group in groupby(rows, itemgetter(0))}


def _pg_columns_match(
    want: tuple[Column, ...],
    rows: list[Any],
    defaults: dict[int, str] | None,
    types: Mapping[str, ColumnType],
    rare: Rare,
) -> bool:
    """Whether the columns built from these rows (_pg_column) would equal ``want`` as ``differences``
    decides (normalize._same_items): as many, each equal to the one of its name, every field by ==."""
    if len(want) != len(rows):
        return False
    by_name = {r[2]: r for r in rows}
    if any(c.name not in by_name for c in want):
        return False
    ordered = [by_name[c.name] for c in want]
    return _pg_columns_placed(want, ordered, defaults, types, rare, numbered=False) == EQUAL


OUT_OF_PLACE, DIFFERENT, EQUAL = 0, 1, 2
"""How a table's column rows stand to the expected columns (_pg_columns_placed)."""


def _pg_columns_placed(
    want: tuple[Column, ...],
    rows: list[Any],
    defaults: dict[int, str] | None,
    types: Mapping[str, ColumnType],
    rare: Rare,
    numbered: bool = True,
) -> int:
    """EQUAL: column n (numbered from 1, as many as expected) is the n-th expected column, equal in every
    field as ``differences`` decides; DIFFERENT: each in its place by name, but a field differs;
    OUT_OF_PLACE: not so (another count, name, order or numbering). ``defaults``: the table's, by column
    number; ``rare``: the catalogue's generated expressions and identity options. ``numbered=False``: rows
    already in the expected order, numbers aside."""
    if len(want) != len(rows) or (numbered and rows[-1][1] != len(rows)):  # numbers rise: these are 1..n
        return OUT_OF_PLACE
    canonical = _PG_DEFAULTS
    default_of: Callable[[int], str | None] = (defaults or {}).get
    oid = rows[0][0]
    generated_of, identities_of = rare[0].get(oid) or {}, rare[1].get(oid)
    for column, r in zip(want, rows, strict=True):
        c = column.__dict__
        if c["name"] != r[2]:
            return OUT_OF_PLACE
        text = default_of(r[1])
        if text is None:
            default, identity = None, r[5]
        else:
            default, serial = canonical[text]
            identity = serial or r[5]
        live_type, want_type = types[r[3]], c["type"]
        if (
            c["default"] != default
            or c["identity"] != identity
            or c["nullable"] == r[4]
            or c["comment"] != r[6]
            or c["collation"] != r[9]
            or (want_type is not live_type and want_type != live_type)
        ):
            break
        generated, options = c["generated"], c["identity_options"]
        if (generated is not None or r[8]) and (
            generated is None or not r[8] or not generated.stored or generated.expression != generated_of.get(r[1], "")
        ):
            break
        if (options is not None or r[7] or (identities_of and r[1] in identities_of)) and options != (
            _pg_identity(r[7], identities_of.get(r[1]) if identities_of else None, live_type) if identity else None
        ):
            break
    else:
        return EQUAL
    return DIFFERENT if [r[2] for r in rows] == [c.name for c in want] else OUT_OF_PLACE


def _pg_index_detail(
    nums: tuple[int, ...],
    nkeys: int,
    method: str | None,
    options: list[int] | None,
    expressions: list[str] | None,
    opclasses: list[str | None] | None,
    predicate: str | None,
) -> tuple[Any, ...]:
    """What an index that is not of plain columns in a B-tree has: (method, its key elements as
    (column number or 0, canonical expression or None, operator class or None, descending), canonical
    predicate, INCLUDE column numbers); the operator classes are those that are no default."""
    elements = []
    for k in range(nkeys):
        num = nums[k]
        expression = canonical_expression(expressions[k]) if num == 0 and expressions is not None else None
        opclass = opclasses[k] if opclasses is not None and k < len(opclasses) else None
        descending = bool(options[k] & 1) if options is not None and k < len(options) else False
        elements.append((num, expression, opclass, descending))
    where = canonical_expression(predicate) if predicate is not None else None
    return (None if method == "btree" else method, tuple(elements), where, nums[nkeys:])


def _pg_index(
    oid: int,
    name: str,
    unique: bool,
    nums: tuple[int, ...],
    detail: tuple[Any, ...] | None,
    named: Callable[[int, Any], tuple[str, ...]],
) -> Index:
    """The Index a row of PG_INDEXES gives (column numbers named by ``named``), in the canonical form
    (events.model.Index): plain columns where every element is one."""
    values: dict[str, Any] = {
        "name": name,
        "columns": (),
        "unique": unique,
        "method": None,
        "elements": (),
        "where": None,
        "include": (),
    }
    if detail is None:
        values["columns"] = named(oid, nums)
        return construct(Index, values)
    method, elements, where, include = detail
    values.update(method=method, where=where, include=named(oid, include))
    built = []
    for num, expression, opclass, descending in elements:
        column = named(oid, (num,))[0] if num else None
        built.append(
            construct(
                IndexElement,
                {"column": column, "expression": expression, "opclass": opclass, "descending": descending},
            )
        )
    if all(e.plain for e in built):
        values["columns"] = tuple(e.column for e in built)
    else:
        values["elements"] = tuple(built)
    return construct(Index, values)


async def read_postgresql(conn: Any, expected: Schema | None = None) -> PgCatalogue:
    """The catalogue rows introspection needs (PG_QUERIES; asyncpg connection).

    One query at a time, as a connection allows, each sent as soon as the one before has answered, and
    the columns, the longest by far, last. Given the ``expected`` schema (a dialect's form), the
    catalogue compares with it what it has (PgCatalogue.readers) while the server runs the queries
    after, a little at a time in between seeing to the connection, so that the server does not wait for
    Python. The columns are then read as COPY writes them and compared whole with what was written for
    the expected columns; read as rows only if they differ (or a type's text is not known).
    """
    catalogue = PgCatalogue()
    readers = catalogue.readers(expected)
    work: list[Iterator[None]] = []  # the steps under way, in order
    rows: Any = await conn.fetch(PG_QUERIES[0])
    for done, query in pairwise(PG_QUERIES):  # done: the query whose rows are in
        if query is PG_COLUMNS and expected is not None:
            following = asyncio.ensure_future(read_copied(conn, query))
        else:
            following = asyncio.ensure_future(conn.fetch(query))
        await asyncio.sleep(0)  # the task sends the query
        try:
            take, step = readers[done]
            take(rows)
            if step is not None:
                work.append(step())
            while work and not following.done():
                if next(work[0], _DONE) is _DONE:
                    work.pop(0)
                await asyncio.sleep(0)  # the connection takes in what has come, and the server goes on
        finally:
            rows = await following  # the connection is free again only when it has answered
    for rest in work:
        for _ in rest:
            pass
    if expected is not None:
        catalogue.told(expected)
        if catalogue.take_columns_text(rows):
            return catalogue
        rows = await conn.fetch(PG_COLUMNS)  # not as written: the rows, to compare one by one
    catalogue.take_columns(rows)
    return catalogue


_DONE = object()


async def read_copied(conn: Any, query: str) -> bytes:
    """What COPY (query) TO STDOUT writes, in its text format (asyncpg connection)."""
    chunks: list[bytes] = []

    async def take(chunk: bytes) -> None:
        chunks.append(chunk)

    await conn.copy_from_query(query, output=take)
    return b"".join(chunks)


async def introspect_postgresql(conn: Any, expected: Schema | None = None) -> LiveSchema:
    """The schema of a PostgreSQL database (asyncpg connection): its objects are built when first read;
    ``differences`` with it compares the catalogue rows and builds only the tables that differ. Given the
    schema it will be compared with (``expected``, a dialect's form), most of that comparison is done
    while the catalogue is read.

    No cyclic garbage collection meanwhile (the read makes no cycles): a process that has just built the
    expected schema (migrate's, from the log) holds it young, and each collection the rows set off would
    walk all of it again (about 0.4 s at 5,000 tables)."""
    with gc_paused():
        catalogue = await read_postgresql(conn, expected)
        views = await read_views(conn)
        routines = await read_routines(conn)
        triggers = await read_triggers(conn, routines)
        extensions = {
            name: construct(Extension, {"name": name, "schema_name": None if schema == "public" else schema})
            for name, schema in await conn.fetch(PG_EXTENSIONS)
        }
    return LiveSchema.of(
        catalogue,
        enums=catalogue.enums(),
        domains=catalogue.domains(),
        views=views,
        extensions=extensions,
        routines=routines,
        triggers=triggers,
    )


# The extensions a schema needs (plpgsql: every database has it), with the schema each is in
PG_EXTENSIONS = """
SELECT e.extname::text, n.nspname::text FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
WHERE e.extname <> 'plpgsql' ORDER BY 1
"""


# Views and materialized views: each one's query as pg_get_viewdef gives it back (as pg_dump reads it), and
# what it reads, from its rewrite rule's dependencies (pg_depend): the tables and views, and the columns of
# tables (a whole-row reference, column 0, names the table only).
PG_VIEWS = """
SELECT n.nspname AS schema, c.relname AS name, c.relkind = 'm' AS materialized, pg_get_viewdef(c.oid) AS definition
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('v', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
  AND NOT EXISTS (SELECT FROM pg_depend x WHERE x.objid = c.oid AND x.deptype = 'e')
ORDER BY 1, 2
"""
PG_VIEW_READS = """
SELECT DISTINCT vn.nspname AS schema, v.relname AS name, tn.nspname AS used_schema, t.relname AS used,
       t.relkind IN ('r', 'p') AS is_table, a.attname::text AS column
FROM pg_rewrite r
JOIN pg_class v ON v.oid = r.ev_class JOIN pg_namespace vn ON vn.oid = v.relnamespace
JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid AND d.refclassid = 'pg_class'::regclass
JOIN pg_class t ON t.oid = d.refobjid AND t.oid <> v.oid JOIN pg_namespace tn ON tn.oid = t.relnamespace
LEFT JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid AND d.refobjsubid > 0
WHERE v.relkind IN ('v', 'm') AND t.relkind IN ('r', 'p', 'v', 'm')
  AND vn.nspname NOT IN ('pg_catalog', 'information_schema') AND vn.nspname NOT LIKE 'pg\\_%'
  AND tn.nspname NOT IN ('pg_catalog', 'information_schema') AND tn.nspname NOT LIKE 'pg\\_%'
"""


async def read_views(conn: Any) -> dict[str, View]:
    """The views of the database, by the log's names (PG_VIEWS, PG_VIEW_READS): none, one round trip."""
    rows = await conn.fetch(PG_VIEWS)
    if not rows:
        return {}
    uses: dict[str, set[str]] = {}
    columns: dict[str, set[str]] = {}
    for schema, name, used_schema, used, is_table, column in await conn.fetch(PG_VIEW_READS):
        logged, table = _pg_name(schema, name), _pg_name(used_schema, used)
        uses.setdefault(logged, set()).add(table)
        if is_table and column is not None:
            columns.setdefault(logged, set()).add(f"{table}.{column}")
    out = {}
    for schema, name, materialized, definition in rows:
        logged = _pg_name(schema, name)
        text = definition.strip()
        text = text[:-1].rstrip() if text.endswith(";") else text
        out[logged] = construct(
            View,
            {
                "name": logged,
                "definitions": {"postgresql": text},
                "materialized": bool(materialized),
                "uses": tuple(sorted(uses.get(logged, ()))),
                "columns": tuple(sorted(columns.get(logged, ()))),
                "security": None,
            },
        )
    return out


# Routines (functions, procedures, plain aggregates) of the schemas the log holds, not an extension's: each
# one's definition as pg_get_functiondef gives it back (an aggregate's made from pg_aggregate, as pg_dump
# makes it: its state function and type, final and combine functions, initial value), and what it uses
# (pg_depend: other such routines, and tables whose row type it takes or gives).
_PG_ROUTINE_FILTER = """
  p.prokind IN ('f', 'p', 'a') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
  AND p.proname NOT LIKE 'schemalog\\_%'
  AND NOT EXISTS (SELECT FROM pg_depend x WHERE x.classid = 'pg_proc'::regclass AND x.objid = p.oid AND x.deptype = 'e')
"""
PG_ROUTINES = f"""
SELECT n.nspname::text AS schema, p.proname::text AS name, p.prokind::text AS kind,
       oidvectortypes(p.proargtypes) AS signature,
       CASE WHEN p.prokind <> 'a' THEN pg_get_functiondef(p.oid) END AS definition,
       a.aggkind::text AS aggkind, a.aggtransfn::regproc::text AS sfunc, format_type(a.aggtranstype, NULL) AS stype,
       NULLIF(a.aggfinalfn, 0)::regproc::text AS finalfunc, NULLIF(a.aggcombinefn, 0)::regproc::text AS combinefunc,
       a.agginitval AS initcond
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace LEFT JOIN pg_aggregate a ON a.aggfnoid = p.oid
WHERE {_PG_ROUTINE_FILTER}
ORDER BY 1, 2, 4
"""
PG_ROUTINE_USES = f"""
SELECT p.oid::regprocedure::text AS routine, n.nspname::text AS schema, p.proname::text AS name,
       oidvectortypes(p.proargtypes) AS signature, un.nspname::text AS used_schema,
       COALESCE(u.proname, c.relname)::text AS used
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'n'
LEFT JOIN pg_proc u ON d.refclassid = 'pg_proc'::regclass AND u.oid = d.refobjid
LEFT JOIN pg_type t ON d.refclassid = 'pg_type'::regclass AND t.oid = d.refobjid
LEFT JOIN pg_class c ON c.oid = t.typrelid AND c.relkind IN ('r', 'p', 'v', 'm')
JOIN pg_namespace un ON un.oid = COALESCE(u.pronamespace, c.relnamespace)
WHERE {_PG_ROUTINE_FILTER} AND (u.oid IS NOT NULL OR c.oid IS NOT NULL)
  AND un.nspname NOT IN ('pg_catalog', 'information_schema') AND un.nspname NOT LIKE 'pg\\_%'
"""


def _aggregate_definition(name: str, signature: str, row: Any) -> str:
    """CREATE OR REPLACE AGGREGATE for a plain aggregate, from its pg_aggregate row (an ordered-set or
    hypothetical one is said as such, a definition no check lets in: import refuses it, drift names it)."""
    if row["aggkind"] != "n":
        return f"-- the ordered-set or hypothetical aggregate {name}({signature}) (not supported)"
    parts = [f"SFUNC = {row['sfunc']}", f"STYPE = {row['stype']}"]
    if row["finalfunc"] is not None:
        parts.append(f"FINALFUNC = {row['finalfunc']}")
    if row["combinefunc"] is not None:
        parts.append(f"COMBINEFUNC = {row['combinefunc']}")
    if row["initcond"] is not None:
        parts.append("INITCOND = '" + row["initcond"].replace("'", "''") + "'")
    quoted = ".".join('"' + part.replace('"', '""') + '"' for part in name.split("."))
    return f"CREATE OR REPLACE AGGREGATE {quoted}({signature}) ({', '.join(parts)})"


async def read_routines(conn: Any) -> dict[str, Routine]:
    """The routines of the database by key (``name(signature)``): PG_ROUTINES, PG_ROUTINE_USES."""
    from events.objects import DefinitionError, check_routine_definition, routine_calls, routine_key

    rows = await conn.fetch(PG_ROUTINES)
    if not rows:
        return {}
    uses: dict[str, set[str]] = {}
    for row in await conn.fetch(PG_ROUTINE_USES):
        key = routine_key(_pg_name(row["schema"], row["name"]), row["signature"])
        used = _pg_name(row["used_schema"], row["used"])
        if used != _pg_name(row["schema"], row["name"]):
            uses.setdefault(key, set()).add(used)
    kinds = {"f": "function", "p": "procedure", "a": "aggregate"}
    names = {_pg_name(row["schema"], row["name"]) for row in rows}
    out = {}
    for row in rows:
        name, kind, signature = _pg_name(row["schema"], row["name"]), kinds[row["kind"]], row["signature"]
        text = row["definition"] if kind != "aggregate" else _aggregate_definition(name, signature, row)
        try:
            text = check_routine_definition(name, kind, "postgresql", text)
        except DefinitionError:
            text = text.strip()
        key = routine_key(name, signature)
        if kind != "aggregate":  # a SQL body is checked when it is made: what it calls comes first
            uses.setdefault(key, set()).update(n for n in routine_calls(text) if n in names and n != name)
        out[key] = construct(
            Routine,
            {
                "name": name,
                "kind": kind,
                "signature": signature,
                "definitions": {"postgresql": text},
                "uses": tuple(sorted(uses.get(key, ()))),
            },
        )
    return out


# Triggers a user made (not a foreign key's, not a constraint's), on the tables the log holds: each one's
# definition as pg_get_triggerdef gives it back, and the routine it runs.
PG_TRIGGERS = """
SELECT n.nspname::text AS schema, c.relname::text AS table_name, t.tgname::text AS name,
       pg_get_triggerdef(t.oid) AS definition, pn.nspname::text AS routine_schema, p.proname::text AS routine
FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_proc p ON p.oid = t.tgfoid JOIN pg_namespace pn ON pn.oid = p.pronamespace
WHERE NOT t.tgisinternal AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
  AND c.relname NOT LIKE 'schemalog\\_%'
ORDER BY 1, 2, 3
"""


async def read_triggers(conn: Any, routines: dict[str, Routine]) -> dict[str, Trigger]:
    """The triggers of the database by key (``table.name``); what each uses: the routine it runs, where that
    is one of ``routines`` (a built-in such as tsvector_update_trigger is not)."""
    from events.objects import DefinitionError, check_trigger_definition, trigger_key

    rows = await conn.fetch(PG_TRIGGERS)
    names = {r.name for r in routines.values()}
    out = {}
    for row in rows:
        table, name = _pg_name(row["schema"], row["table_name"]), row["name"]
        try:
            text = check_trigger_definition(name, table, "postgresql", row["definition"])
        except DefinitionError:
            text = row["definition"].strip()
        called = _pg_name(row["routine_schema"], row["routine"])
        out[trigger_key(table, name)] = construct(
            Trigger,
            {
                "name": name,
                "table": table,
                "definitions": {"postgresql": text},
                "uses": (called,) if called in names else (),
            },
        )
    return out
