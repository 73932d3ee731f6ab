"""What each target dialect can hold, checked before a plan runs: the dialect half of the name policy.

The log refuses at append what no supported dialect can hold (events.model.check_new_name). What only
some dialects cannot hold is refused here, for the target's dialect, by ``migrate --plan`` and
``migrate`` before any DDL, naming the object and the event that makes it:

- MariaDB folds the case of column, index, key and check names (and of foreign key names across a
  database), SQLite the (ASCII) case of column names and of table and index names, which share one
  namespace; names that differ only so collide there.
- PostgreSQL and SQLite keep tables and indexes in one namespace: an index named like a table collides,
  and so does one index name on two tables (the log keeps index names per table, as MariaDB does).
- PostgreSQL: names of at most 63 bytes (the log's are 64, MariaDB's limit; PostgreSQL would cut them).
- MariaDB: at most 1017 columns (InnoDB), char(n) up to 255, varchar(n) up to 16383 and rows of at most
  65,535 bytes in utf8mb4, names of at most 64 characters from the Basic Multilingual Plane, no index
  named PRIMARY.
- A type native to another dialect, or a portable type with no form in this one (MariaDB's interval).
- PostgreSQL and SQLite: a column's ``on_update`` (MariaDB's ON UPDATE; they would need a trigger).

One function per dialect takes the tables an event touched, as they are after it (the fold of the plan
is replayed on a copy of the starting state); the namespace rules are checked on the plan's target.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from events.aggregate import State, apply_event
from events.catalog import (
    ColumnAdded,
    ColumnAltered,
    DomainCreated,
    EnumCreated,
    Event,
    RoutineCreated,
    RoutineReplaced,
    TableCreated,
    TriggerCreated,
    TriggerReplaced,
    ViewCreated,
    ViewReplaced,
)
from events.model import Column, Index, Table, namespace_of, split_table_name
from service.reconciler.dialects.base import Dialect, UnsupportedType
from service.reconciler.dialects.sqlite.ddl import SQLITE_COLLATIONS

MARIADB_MAX_COLUMNS = 1017
"""InnoDB's limit of columns in a table."""
MARIADB_MAX_NAME = 64
"""MariaDB's limit of characters in a name."""
MARIADB_MAX_CHAR = 255
MARIADB_MAX_VARCHAR = 16383
"""varchar(n) in utf8mb4 (4 bytes a character): 65,535 bytes."""
MARIADB_MAX_ROW = 65535
"""Bytes in a row, not counting TEXT and BLOB columns."""


class CannotHold(Exception):
    """A plan that makes what the target's dialect cannot hold: refused before anything runs."""

    def __init__(self, dialect: str, problems: Sequence[str]):
        self.dialect = dialect
        self.problems = list(problems)
        more = len(problems) - 1
        suffix = f" (and {more} more)" if more else ""
        super().__init__(f"{dialect} cannot hold what this plan makes: {problems[0]}{suffix}")


def check_plan(dialect: Dialect, start: State, changes: Iterable[Any]) -> None:
    """Raise :class:`CannotHold` if any change of the plan (``projections.diff.Change``: an event and
    its source version) makes what ``dialect`` cannot hold; ``start`` is left as it is."""
    problems = plan_problems(dialect, start, [(c.source_version, c.event) for c in changes])
    if problems:
        raise CannotHold(dialect.name, problems)


def plan_problems(dialect: Dialect, start: State, events: Sequence[tuple[int, Event]]) -> list[str]:
    """Every problem of the plan's events for ``dialect``, each naming its event's version."""
    table_rules = TABLE_RULES[dialect.name]
    state = start.copy()
    problems: list[str] = []
    for version, event in events:
        where = f"v{version} ({event.type})"
        problems.extend(f"{where}: {p}" for p in type_problems(dialect, event))
        problems.extend(f"{where}: {p}" for p in on_update_problems(dialect, event))
        if dialect.name == "postgresql" and isinstance(event, EnumCreated):
            problems.extend(f"{where}: {p}" for p in postgresql_name("enum type", split_table_name(event.name)[1]))
        if isinstance(event, (ViewCreated, ViewReplaced)):
            problems.extend(f"{where}: {p}" for p in view_problems(dialect, event, state))
        if isinstance(event, (RoutineCreated, RoutineReplaced, TriggerCreated, TriggerReplaced)):
            problems.extend(f"{where}: {p}" for p in object_problems(dialect, event))
        if dialect.name == "postgresql" and isinstance(event, DomainCreated):
            problems.extend(f"{where}: {p}" for p in postgresql_name("domain", split_table_name(event.name)[1]))
        apply_event(event, state)
        for name in touched(event):
            table = state.tables.get(name)
            if table is not None:
                problems.extend(f"{where}: {p}" for p in table_rules(table))
        if len(problems) > 100:
            break
    if events:
        problems.extend(NAMESPACE_RULES[dialect.name](state.tables.values()))
    return list(dict.fromkeys(problems))  # in order, once each


def object_problems(
    dialect: Dialect, event: RoutineCreated | RoutineReplaced | TriggerCreated | TriggerReplaced
) -> list[str]:
    """A routine or trigger with no definition for the dialect."""
    if dialect.name in event.definitions:
        return []
    if isinstance(event, (TriggerCreated, TriggerReplaced)):
        what = f"trigger {event.name} on {event.table}"
    else:
        what = f"{event.kind} {event.name}"
    return [f"{what} has no {dialect.name} definition (it has: {', '.join(event.definitions)})"]


def view_problems(dialect: Dialect, event: ViewCreated | ViewReplaced, before: State) -> list[str]:
    """A view with no definition for the dialect, or a materialized view where there are none."""
    out = []
    if dialect.name not in event.definitions:
        out.append(f"view {event.name} has no {dialect.name} definition (it has: {', '.join(event.definitions)})")
    was = before.views.get(event.name)
    materialized = event.materialized if isinstance(event, ViewCreated) else was is not None and was.materialized
    if materialized and dialect.name != "postgresql":
        out.append(f"view {event.name}: {dialect.name} has no materialized views")
    return out


def touched(event: Event) -> list[str]:
    """The tables an event makes or changes, by their names after it."""
    new_name = getattr(event, "new_name", None)
    if event.type == "table_renamed" and isinstance(new_name, str):
        return [new_name]
    table = getattr(event, "table", None)
    return [table] if isinstance(table, str) else []


def type_problems(dialect: Dialect, event: Event) -> list[str]:
    """The column types an event gives that the dialect has no form for (a domain's base type: each
    dialect holds a column of the domain with it)."""
    if isinstance(event, DomainCreated):
        if event.base.is_enum:
            return []
        try:
            dialect.type_text(event.base)
        except UnsupportedType as exc:
            return [f"domain {event.name}: {exc}"]
        return []
    if isinstance(event, TableCreated):
        columns = [(c.name, c.type, c.identity) for c in event.columns]
    elif isinstance(event, ColumnAdded):
        columns = [(event.column.name, event.column.type, event.column.identity)]
    elif isinstance(event, ColumnAltered) and event.new_type is not None:
        columns = [(event.column, event.new_type, False)]
    else:
        return []
    out = []
    for name, column_type, identity in columns:
        if (identity and column_type.portable) or column_type.is_enum or column_type.is_domain:
            continue  # an integer, written by SQLAlchemy's own types; a type of the log, held its own way
        try:
            dialect.type_text(column_type)
        except UnsupportedType as exc:
            out.append(f"column {event.table}.{name}: {exc}")
    return out


ON_UPDATE_DIALECTS = ("mysql",)
"""The dialects that hold a column's ``on_update`` (MariaDB's ON UPDATE); the others would need a trigger."""


def on_update_problems(dialect: Dialect, event: Event) -> list[str]:
    """The columns an event gives an ``on_update`` in a dialect without one: checked on the event that
    gives it, so the refusal is one line however many later events touch the table."""
    if dialect.name in ON_UPDATE_DIALECTS:
        return []
    if isinstance(event, TableCreated):
        columns = [(c.name, c.on_update) for c in event.columns]
    elif isinstance(event, ColumnAdded):
        columns = [(event.column.name, event.column.on_update)]
    elif isinstance(event, ColumnAltered):
        columns = [(event.column, event.on_update)]
    else:
        return []
    return [
        f"column {event.table}.{name}: on_update {on_update!r} (MariaDB's ON UPDATE) has no form in {dialect.name}"
        " (it would need a trigger)"
        for name, on_update in columns
        if on_update is not None
    ]


# --------------------------------------------------------------------------- folding case


def mariadb_fold(name: str) -> str:
    """How MariaDB compares column, index and constraint names: each character lower-cased by itself
    (so 'ß' and 'ss' differ, and 'İ' is 'i')."""
    return name.replace("\u0130", "i").lower()


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def sqlite_fold(name: str) -> str:
    """How SQLite compares names: ASCII letters without case, every other character as it is."""
    return name.translate(_ASCII_LOWER)


def collisions(names: Iterable[str], fold: Callable[[str], str], what: str) -> list[str]:
    """Names that are distinct but fold to the same text."""
    seen: dict[str, str] = {}
    out = []
    for name in names:
        key = fold(name)
        other = seen.setdefault(key, name)
        if other != name:
            out.append(f"{what} {other!r} and {name!r} differ only in case, which this dialect ignores")
    return out


# --------------------------------------------------------------------------- one function per dialect


POSTGRESQL_MAX_NAME = 63
"""PostgreSQL's limit of bytes in a name (NAMEDATALEN - 1): it cuts a longer one short, silently."""


def postgresql_name(kind: str, name: str) -> list[str]:
    size = len(name.encode("utf-8"))
    if size <= POSTGRESQL_MAX_NAME:
        return []
    return [
        f"{kind} name {name!r} is {size} bytes; PostgreSQL's limit is {POSTGRESQL_MAX_NAME} (it would cut the"
        " name short): rename it"
    ]


def postgresql_table(table: Table) -> list[str]:
    """PostgreSQL holds what the log holds, table by table, but names over 63 bytes and virtual generated
    columns: its generated columns are all stored."""
    schema, bare = split_table_name(table.name)
    names = [("schema", schema)] if schema is not None else []
    names += [("table", bare)] + [("column", c.name) for c in table.columns]
    if table.primary_key_name is not None:
        names.append(("primary key", table.primary_key_name))
    names += [("index", i.name) for i in table.indexes] + [("constraint", c.name) for c in table.constraints]
    out = [problem for kind, name in names for problem in postgresql_name(kind, name)]
    return out + [
        f"column {table.name}.{c.name}: a virtual generated column (stored: false); PostgreSQL's generated"
        " columns are all stored (give stored: true)"
        for c in table.columns
        if c.generated is not None and not c.generated.stored
    ]


def postgresql_namespace(tables: Iterable[Table]) -> list[str]:
    """A table, an index and a unique constraint (which is an index) share a schema's namespace."""
    listed = list(tables)
    return _shared_index_names(listed, "PostgreSQL keeps index names unique in a schema") + _relation_clashes(
        listed, lambda name: name
    )


def partitioning_problems(table: Table, dialect: str) -> list[str]:
    """PostgreSQL's declarative partitioning is carried for PostgreSQL only (issue 19): a partitioned table
    or a partition is refused on MariaDB and SQLite, rather than made as a plain table that would differ."""
    if table.__dict__.get("partition_by") is not None:
        return [f"table {table.name!r} is partitioned ({table.partition_by}): {dialect} holds no partitioned tables"]
    of = table.__dict__.get("partition_of")
    if of is not None:
        return [f"table {table.name!r} is a partition of {of.parent!r}: {dialect} holds no partitions"]
    return []


def sqlite_table(table: Table) -> list[str]:
    out = partitioning_problems(table, "SQLite")
    out += collisions(table.column_names(), sqlite_fold, f"in table {table.name!r}, columns")
    for column in table.columns:
        out += sqlite_column(table, column)
    for index in table.indexes:
        out += sqlite_index(table, index)
    return out


def sqlite_column(table: Table, column: Column) -> list[str]:
    """SQLite's own collations only (one an application registers is not there for a migrator); a
    generated column cannot be part of its primary key."""
    out = []
    if column.collation is not None and column.collation.upper() not in SQLITE_COLLATIONS:
        out.append(
            f"column {table.name}.{column.name}: SQLite has no collation {column.collation!r}"
            f" (it has {', '.join(sorted(SQLITE_COLLATIONS))})"
        )
    if column.generated is not None and column.name in table.primary_key:
        out.append(f"column {table.name}.{column.name}: a generated column cannot be in SQLite's primary key")
    return out


def sqlite_index(table: Table, index: Index) -> list[str]:
    """SQLite's indexes are B-trees of columns and expressions, ascending or descending, and partial:
    no other method, no operator classes, no INCLUDE."""
    where = f"index {table.name}.{index.name}: SQLite has no"
    out = []
    if index.method is not None:
        out.append(f"{where} {index.method} index (only B-tree indexes)")
    for element in index.elements:
        if element.opclass is not None:
            out.append(f"{where} operator classes ({element.opclass})")
    if index.include:
        out.append(f"{where} include columns ({', '.join(index.include)})")
    return out


def sqlite_namespace(tables: Iterable[Table]) -> list[str]:
    """Tables and indexes share one namespace per schema, without ASCII case."""
    listed = list(tables)
    tables_by: dict[str, list[str]] = {}
    indexes_by: dict[str, list[str]] = {}
    for table in listed:
        schema, bare = split_table_name(table.name)
        tables_by.setdefault(schema or "", []).append(bare)
        indexes_by.setdefault(schema or "", []).extend(i.name for i in table.indexes)
    out = []
    for names in tables_by.values():
        out += collisions(names, sqlite_fold, "tables")
    for names in indexes_by.values():
        out += collisions(names, sqlite_fold, "indexes")
    out += _shared_index_names(listed, "SQLite keeps index names unique in a database")
    return out + _relation_clashes(listed, sqlite_fold, unique_constraints=False)


def mysql_table(table: Table) -> list[str]:
    out: list[str] = partitioning_problems(table, "MariaDB")
    if len(table.columns) > MARIADB_MAX_COLUMNS:
        out.append(f"table {table.name!r} has {len(table.columns)} columns; InnoDB's limit is {MARIADB_MAX_COLUMNS}")
    keys = [i.name for i in table.indexes] + [c.name for c in table.constraints if c.kind != "check"]
    names = [("table", split_table_name(table.name)[1])]
    names += [("column", c.name) for c in table.columns]
    names += [("index", n) for n in keys] + [("constraint", c.name) for c in table.constraints if c.kind == "check"]
    for kind, name in names:
        if len(name) > MARIADB_MAX_NAME:
            out.append(f"{kind} name {name!r} is {len(name)} characters; MariaDB's limit is {MARIADB_MAX_NAME}")
        if any(ord(char) > 0xFFFF for char in name):
            out.append(f"{kind} name {name!r} has a character beyond the Basic Multilingual Plane (MariaDB)")
        if kind == "index" and mariadb_fold(name) == "primary":
            out.append(f"index name {name!r} is the primary key's in MariaDB")
    for column in table.columns:
        out += mysql_identity(table, column)
    for index in table.indexes:
        out += mysql_index(table, index)
    out += collisions(table.column_names(), mariadb_fold, f"in table {table.name!r}, columns")
    out += collisions(keys, mariadb_fold, f"in table {table.name!r}, indexes and keys")
    checks = [c.name for c in table.constraints if c.kind == "check"]
    out += collisions(checks, mariadb_fold, f"in table {table.name!r}, check constraints")
    row = 0
    for column in table.columns:
        kind, params = column.type.name, column.type.params
        if not column.type.portable or not params or kind not in ("char", "varchar"):
            continue
        limit = MARIADB_MAX_CHAR if kind == "char" else MARIADB_MAX_VARCHAR
        if params[0] > limit:
            out.append(f"column {table.name}.{column.name}: {column.type} is over MariaDB's {kind}({limit})")
        row += 4 * params[0] + (2 if kind == "varchar" else 0)
    if row > MARIADB_MAX_ROW:
        out.append(
            f"table {table.name!r}: its char and varchar columns need {row} bytes a row in utf8mb4;"
            f" MariaDB's limit is {MARIADB_MAX_ROW} (use text for the longest)"
        )
    return out


MARIADB_INDEX_METHODS = (None, "fulltext", "spatial")
"""The index methods MariaDB (InnoDB) holds: a B-tree, FULLTEXT and SPATIAL. It takes USING HASH and
makes a B-tree, so a hash index is refused with PostgreSQL's gin, gist, brin and spgist."""


def mysql_identity(table: Table, column: Column) -> list[str]:
    """AUTO_INCREMENT counts up by one from one, for ever: the identity options that say otherwise are
    refused; ``cache`` (how many values a session takes at once, never what they are) is dropped."""
    options = column.identity_options
    if options is None:
        return []
    where = f"column {table.name}.{column.name}: MariaDB's AUTO_INCREMENT has no"
    out = []
    if options.always:
        out.append(f"{where} GENERATED ALWAYS (an insert can always give the value): use always: false")
    # a serial column's sequence (PostgreSQL's, options.sequence) may be wider than its column: a bigint
    # sequence's maxvalue says no more than AUTO_INCREMENT's own limit does
    widest = 2**63 - 1 if options.sequence is not None else None
    for option, harmless in (("start", 1), ("increment", 1), ("minvalue", 1), ("maxvalue", None)):
        value = getattr(options, option)
        if value is not None and value != harmless and not (option == "maxvalue" and value == widest):
            out.append(f"{where} {option} (it is {value})")
    if options.cycle:
        out.append(f"{where} cycle")
    return out


def mysql_index(table: Table, index: Index) -> list[str]:
    where = f"index {table.name}.{index.name}: MariaDB has no"
    out = []
    if index.method not in MARIADB_INDEX_METHODS:
        out.append(f"{where} {index.method} index (it has B-tree, fulltext and spatial)")
    elif index.method is not None and index.unique:
        out.append(f"{where} unique {index.method} index")
    for element in index.elements:
        if element.expression is not None:
            out.append(f"{where} expression index ({element.expression})")
        if element.opclass is not None:
            out.append(f"{where} operator classes ({element.opclass})")
        if element.descending and index.method is not None:
            out.append(f"{where} descending {index.method} index")
    if index.where is not None:
        out.append(f"{where} partial index (where {index.where})")
    if index.include:
        out.append(f"{where} include columns ({', '.join(index.include)})")
    return out


def mysql_namespace(tables: Iterable[Table]) -> list[str]:
    """Foreign key names are unique in a MariaDB database, without case."""
    by_namespace: dict[str, list[str]] = {}
    for table in tables:
        keys = [c.name for c in table.constraints if c.kind == "foreign_key"]
        by_namespace.setdefault(namespace_of(table.name), []).extend(keys)
    out = []
    for names in by_namespace.values():
        out += collisions(names, mariadb_fold, "foreign keys")
    return out


def _shared_index_names(tables: Iterable[Table], why: str) -> list[str]:
    """One index name on two tables of a schema: the log holds it (MariaDB's index names are per table),
    a dialect with one namespace of index names cannot."""
    holders: dict[tuple[str, str], list[str]] = {}
    for table in tables:
        for index in table.indexes:
            holders.setdefault((namespace_of(table.name), index.name), []).append(table.name)
    return [
        f"index {name!r} is on both table {names[0]!r} and table {other!r}; {why}: rename one"
        for (_, name), names in holders.items()
        for other in names[1:]
    ]


def _relation_clashes(
    tables: Iterable[Table], fold: Callable[[str], str], *, unique_constraints: bool = True
) -> list[str]:
    """Indexes (and unique constraints, where they are indexes) named like a table of their schema,
    once folded. Index against index is the log's own rule; here a table is involved."""
    listed = list(tables)
    owners = {(namespace_of(t.name), fold(split_table_name(t.name)[1])): t.name for t in listed}
    out = []
    for table in listed:
        names = [i.name for i in table.indexes]
        if unique_constraints:
            names += [c.name for c in table.constraints if c.kind == "unique"]
        for name in names:
            other = owners.get((namespace_of(table.name), fold(name)))
            if other is None:
                continue
            if split_table_name(other)[1] == name:
                out.append(f"index {name!r} of table {table.name!r} has the name of table {other!r} (one namespace)")
            else:
                out.append(f"index {name!r} of table {table.name!r} and table {other!r} differ only in case")
    return out


TABLE_RULES: dict[str, Callable[[Table], list[str]]] = {
    "postgresql": postgresql_table,
    "mysql": mysql_table,
    "sqlite": sqlite_table,
}
NAMESPACE_RULES: dict[str, Callable[[Iterable[Table]], list[str]]] = {
    "postgresql": postgresql_namespace,
    "mysql": mysql_namespace,
    "sqlite": sqlite_namespace,
}
