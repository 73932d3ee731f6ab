"""Applying events to a schema state, and the validation that rejects a bad one.

One rule per event type (``functools.singledispatch``): each checks the event
against the state before it and then changes the state. The same rules serve
the write side (a changeset is validated by folding it onto the head) and the
projections (which fold the log). A rule that raises leaves the state as it
was: every check comes before the first change.

:class:`State` is the working state of a fold: mutable for speed, with two
indexes kept beside the tables (owners of index/constraint names, and who
references whom by foreign key). :class:`events.model.Schema` is its frozen,
public form.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache, singledispatch

from events.auth import ApprovalGiven, ApprovalsRequired, TokenCreated, TokenRevoked
from events.catalog import (
    ColumnAdded,
    ColumnAltered,
    ColumnDropped,
    ColumnRenamed,
    ConstraintAdded,
    ConstraintDropped,
    DomainCreated,
    DomainDropped,
    DriftFound,
    EnumCreated,
    EnumDropped,
    EnumValueAdded,
    EnumValueDropped,
    Event,
    ExtensionCreated,
    ExtensionDropped,
    IndexCreated,
    IndexDropped,
    MigrationApplied,
    MigrationFailed,
    MigrationFaked,
    PrimaryKeySet,
    RoutineCreated,
    RoutineDropped,
    RoutineReplaced,
    SqlRun,
    TableAltered,
    TableCreated,
    TableDropped,
    TableRenamed,
    TagCreated,
    TriggerCreated,
    TriggerDropped,
    TriggerReplaced,
    ViewCreated,
    ViewDropped,
    ViewReplaced,
)
from events.fleet import DatabaseChanged, DatabaseRegistered, DatabaseRetired, RolloutHalted, RolloutResumed
from events.model import (
    MAX_COLUMNS,
    Column,
    Constraint,
    DomainType,
    EnumType,
    Extension,
    Index,
    IndexElement,
    Reference,
    Routine,
    Schema,
    Table,
    Trigger,
    View,
    construct,
    domains_of,
    evolve,
    extensions_of,
    namespace_of,
    routines_of,
    split_table_name,
    triggers_of,
    views_of,
)


class InvalidChange(ValueError):
    """An event that does not apply to the state before it."""

    def __init__(self, message: str, index: int | None = None, event_type: str | None = None):
        self.reason = message
        self.index = index
        self.event_type = event_type
        prefix = ""
        if index is not None:
            prefix = f"events[{index}]"
            if event_type:
                prefix += f" ({event_type})"
            prefix += ": "
        super().__init__(prefix + message)


Owner = tuple[str, str]  # (namespace, object name)


class State:
    """The mutable working state of a fold. Copy it before folding if you keep the original."""

    __slots__ = (
        "domains",
        "enums",
        "extensions",
        "indexed",
        "owners",
        "referrers",
        "routines",
        "tables",
        "tags",
        "triggers",
        "views",
    )

    def __init__(self) -> None:
        self.tables: dict[str, Table] = {}
        # constraint names (and primary key names) -> the table holding them (unique per namespace, as
        # PostgreSQL requires of its keys and MySQL of foreign keys)
        self.owners: dict[Owner, str] = {}
        # index names -> the tables holding one of that name: unique per table only, as MySQL has them
        # (PostgreSQL's and SQLite's one namespace per schema is their capacity check's); no constraint
        # of the namespace may take one
        self.indexed: dict[Owner, set[str]] = {}
        # referenced table -> {(referring table, foreign key name)}
        self.referrers: dict[str, set[tuple[str, str]]] = {}
        # tag name -> the stream version it names
        self.tags: dict[str, int] = {}
        # enum type name -> its values (enum_created)
        self.enums: dict[str, EnumType] = {}
        # domain name -> its definition (domain_created)
        self.domains: dict[str, DomainType] = {}
        # view name -> its definition (view_created)
        self.views: dict[str, View] = {}
        # extension name -> where it is installed (extension_created)
        self.extensions: dict[str, Extension] = {}
        # routine key (name(signature)) -> its definition (routine_created)
        self.routines: dict[str, Routine] = {}
        # trigger key (table.name) -> its definition (trigger_created)
        self.triggers: dict[str, Trigger] = {}

    @classmethod
    def from_schema(cls, schema: Schema) -> State:
        state = cls()
        for table in schema.tables.values():
            state.tables[table.name] = table
            _register(state, table)
        state.enums = dict(schema.enums)
        state.domains = dict(domains_of(schema))
        state.views = dict(views_of(schema))
        state.extensions = dict(extensions_of(schema))
        state.routines = dict(routines_of(schema))
        state.triggers = dict(triggers_of(schema))
        return state

    def to_schema(self) -> Schema:
        return Schema.model_construct(
            tables=dict(self.tables),
            enums=dict(self.enums),
            domains=dict(self.domains),
            views=dict(self.views),
            extensions=dict(self.extensions),
            routines=dict(self.routines),
            triggers=dict(self.triggers),
        )

    def copy(self) -> State:
        other = State()
        other.tables = dict(self.tables)
        other.owners = dict(self.owners)
        other.indexed = {k: set(v) for k, v in self.indexed.items()}
        other.referrers = {k: set(v) for k, v in self.referrers.items() if v}
        other.tags = dict(self.tags)
        other.enums = dict(self.enums)
        other.domains = dict(self.domains)
        other.views = dict(self.views)
        other.extensions = dict(self.extensions)
        other.routines = dict(self.routines)
        other.triggers = dict(self.triggers)
        return other


def _register(state: State, table: Table) -> None:
    ns = namespace_of(table.name)
    if table.primary_key_name is not None:
        state.owners[(ns, table.primary_key_name)] = table.name
    for index in table.indexes:
        state.indexed.setdefault((ns, index.name), set()).add(table.name)
    for constraint in table.constraints:
        state.owners[(ns, constraint.name)] = table.name
        if constraint.kind == "foreign_key" and constraint.references is not None:
            state.referrers.setdefault(constraint.references.table, set()).add((table.name, constraint.name))


def _unregister(state: State, table: Table) -> None:
    ns = namespace_of(table.name)
    if table.primary_key_name is not None:
        state.owners.pop((ns, table.primary_key_name), None)
    for index in table.indexes:
        _unindex(state, ns, index.name, table.name)
    for constraint in table.constraints:
        state.owners.pop((ns, constraint.name), None)
        if constraint.kind == "foreign_key" and constraint.references is not None:
            refs = state.referrers.get(constraint.references.table)
            if refs is not None:
                refs.discard((table.name, constraint.name))


# --------------------------------------------------------------------------- helpers


def _table(state: State, name: str) -> Table:
    table = state.tables.get(name)
    if table is None:
        raise InvalidChange(f"table {name!r} does not exist")
    return table


def _column(table: Table, name: str) -> Column:
    column = table.column(name)
    if column is None:
        raise InvalidChange(f"table {table.name!r} has no column {name!r}")
    return column


def _columns_exist(table: Table, names: Iterable[str], what: str) -> None:
    have = set(table.column_names())
    for name in names:
        if name not in have:
            raise InvalidChange(f"{what} uses column {table.name}.{name}, which does not exist")


def _unindex(state: State, ns: str, name: str, table: str) -> None:
    holders = state.indexed.get((ns, name))
    if holders is not None:
        holders.discard(table)
        if not holders:
            del state.indexed[(ns, name)]


def _free_name(state: State, table: str, name: str, what: str) -> None:
    """A constraint or primary key name: unique in its namespace, among indexes too."""
    owner = state.owners.get((namespace_of(table), name))
    if owner is None:
        owner = min(state.indexed.get((namespace_of(table), name), ()), default=None)
    if owner is not None:
        raise InvalidChange(f"{what} name {name!r} is already used on table {owner!r}")


def _free_index_name(state: State, table: str, name: str) -> None:
    """An index name: unique among the table's indexes, and no constraint's of its namespace. Tables
    may share one (MySQL's index names are per table; PostgreSQL's and SQLite's capacity refuses it)."""
    owner = state.owners.get((namespace_of(table), name))
    if owner is None and table in state.indexed.get((namespace_of(table), name), ()):
        owner = table
    if owner is not None:
        raise InvalidChange(f"index name {name!r} is already used on table {owner!r}")


def unique_sets(table: Table) -> list[frozenset[str]]:
    """The column sets a foreign key may reference: primary key, unique indexes and constraints."""
    sets: list[frozenset[str]] = []
    if table.primary_key:
        sets.append(frozenset(table.primary_key))
    # an expression or partial unique index is no key a foreign key can reference (PostgreSQL refuses it)
    sets.extend(frozenset(i.columns) for i in table.indexes if i.unique and i.columns and i.where is None)
    sets.extend(frozenset(c.columns) for c in table.constraints if c.kind == "unique")
    return sets


def _incoming(state: State, table: str) -> list[tuple[str, Constraint]]:
    """Foreign keys that reference ``table`` (its own self-references included)."""
    out = []
    for referrer, name in sorted(state.referrers.get(table, ())):
        holder = state.tables[referrer]
        constraint = holder.constraint(name)
        if constraint is not None:
            out.append((referrer, constraint))
    return out


def _check_still_unique(state: State, before: Table, after: Table) -> None:
    """Refuse a change that removes the uniqueness a foreign key relies on."""
    remaining = unique_sets(after)
    for referrer, fk in _incoming(state, before.name):
        assert fk.references is not None
        wanted = frozenset(fk.references.columns)
        if wanted not in remaining:
            raise InvalidChange(
                f"foreign key {fk.name!r} on {referrer!r} relies on the uniqueness of"
                f" {before.name}({', '.join(fk.references.columns)}); drop it first"
            )


def _uses(table: Table, column: str) -> list[str]:
    """What in ``table`` uses ``column``: primary key, indexes (their columns, included columns and
    expressions), constraints, generated columns."""
    users = []
    if column in table.primary_key:
        users.append("the primary key")
    users.extend(f"index {i.name!r}" for i in table.indexes if column in index_columns(i, table))
    users.extend(f"{c.kind.replace('_', ' ')} {c.name!r}" for c in table.constraints if column in c.columns)
    users.extend(
        f"generated column {c.name!r}"
        for c in table.columns
        if c.generated is not None and c.name != column and column in expression_columns(c.generated.expression, table)
    )
    return users


@lru_cache(maxsize=16384)
def referenced_names(expression: str) -> tuple[tuple[str, bool], ...]:
    """The column names an expression refers to, as written: (name, quoted).

    Read by sqlglot as PostgreSQL, else SQLite, else MySQL reads it (an expression is one in at least
    one of them: events.expressions); nothing when none reads it (then nothing is checked here).
    sqlglot is imported here, on the first expression read: a fold without one (every read command's)
    never loads it.
    """
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import SqlglotError

    for reader in ("postgres", "sqlite", "mysql"):
        try:
            tree = sqlglot.parse_one(f"SELECT ({expression})", read=reader)
        except (SqlglotError, RecursionError, ValueError):
            continue
        out: list[tuple[str, bool]] = []
        for node in tree.find_all(exp.Column):
            quoted = isinstance(node.this, exp.Identifier) and bool(node.this.quoted)
            out.append((node.name, quoted))
        return tuple(sorted(set(out)))
    return ()


def expression_columns(expression: str, table: Table) -> set[str]:
    """The columns of ``table`` an expression names (an unquoted name matches whatever its case, as
    the databases fold it); a name that matches none is given as written."""
    have = table.column_names()
    out: set[str] = set()
    for name, quoted in referenced_names(expression):
        if name in have:
            out.add(name)
            continue
        folded = [] if quoted else [c for c in have if c.lower() == name.lower()]
        out.add(folded[0] if folded else name)
    return out


def index_columns(index: Index, table: Table) -> set[str]:
    """Every column an index uses: its columns and included columns, and those its expressions and
    ``where`` name."""
    names = set(index.column_names())
    for element in index.elements:
        if element.expression is not None:
            names |= expression_columns(element.expression, table)
    if index.where is not None:
        names |= expression_columns(index.where, table)
    return names


def _check_index(table: Table, index: Index) -> None:
    _columns_exist(table, index_columns(index, table), f"index {index.name!r}")


def _check_enum_type(state: State, table: str, column: Column) -> None:
    """A column of an enum type or a domain of the log: the type exists."""
    if column.type.is_enum and column.type.name not in state.enums:
        raise InvalidChange(f"column {table}.{column.name} is of enum type {column.type.name!r}, which does not exist")
    if column.type.is_domain and column.type.name not in state.domains:
        raise InvalidChange(f"column {table}.{column.name} is of domain {column.type.name!r}, which does not exist")


def _type_named(state: State, name: str) -> str | None:
    """What type of the log (enum type or domain) is named ``name``, if one is: tables, enum types and
    domains share one namespace (PostgreSQL keeps them all as types)."""
    if name in state.enums:
        return "an enum type"
    if name in state.domains:
        return "a domain"
    if name in state.views:
        return "a view"
    return None


def _readers(state: State, table: str, column: str | None = None) -> list[str]:
    """The views that read ``table`` (or its ``column``), by name: what a drop or rename of it would break
    (PostgreSQL refuses it, naming them)."""
    if not state.views:
        return []
    if column is None:
        return sorted(v.name for v in state.views.values() if table in v.uses)
    wanted = f"{table}.{column}"
    return sorted(v.name for v in state.views.values() if wanted in v.columns)


def _users(state: State, name: str) -> list[str]:
    """The routines and triggers that use ``name`` (a table, view or routine; a trigger uses its table), shown
    as ``function 'f'`` or ``trigger 't' on 'table'``: what a drop or rename of it would break."""
    out = [f"{r.kind} {r.name!r}" for r in state.routines.values() if name in r.uses]
    out += [f"trigger {t.name!r} on {t.table!r}" for t in state.triggers.values() if name in t.uses or t.table == name]
    return sorted(set(out))


def _refuse_if_used(state: State, what: str, name: str) -> None:
    users = _users(state, name)
    if users:
        shown = ", ".join(users[:5]) + (f" and {len(users) - 5} more" if len(users) > 5 else "")
        raise InvalidChange(
            f"cannot {what}: {shown} {'uses' if len(users) == 1 else 'use'} it; drop or replace"
            f" {'it' if len(users) == 1 else 'them'} first (in the same changeset, before this event)"
        )


def _refuse_if_read(state: State, what: str, table: str, column: str | None = None) -> None:
    if column is None and (state.routines or state.triggers):
        _refuse_if_used(state, what, table)
    readers = _readers(state, table, column)
    if readers:
        shown = ", ".join(repr(r) for r in readers[:5]) + (f" and {len(readers) - 5} more" if len(readers) > 5 else "")
        one = len(readers) == 1
        raise InvalidChange(
            f"cannot {what}: view {shown} {'uses' if one else 'use'} it; drop or replace"
            f" {'that view' if one else 'those views'} first (in the same changeset, before this event)"
        )


def _check_generated(table: Table, column: Column) -> None:
    """A generated column's expression names columns of its table, never itself."""
    if column.generated is None:
        return
    used = expression_columns(column.generated.expression, table)
    if column.name in used:
        raise InvalidChange(f"generated column {table.name}.{column.name} refers to itself")
    _columns_exist(table, used, f"generated column {column.name!r}")


def rename_in_expression(expression: str, old: str, new: str) -> str:
    """A check expression with column ``old`` renamed, as databases rewrite it.

    Whole identifiers only, outside string literals: bare (``old``), "quoted" or `quoted`.
    """
    parts = re.split(r"('(?:[^']|'')*')", expression)  # keep string literals as they are
    bare = re.compile(r"(?<![\w\"`])" + re.escape(old) + r"(?![\w\"`])")
    replacement = new if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", new) else '"' + new.replace('"', '""') + '"'
    out = []
    for i, part in enumerate(parts):
        if i % 2 == 1:
            out.append(part)
            continue
        part = part.replace('"' + old.replace('"', '""') + '"', replacement)
        part = part.replace("`" + old + "`", replacement)
        if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", old):
            part = bare.sub(lambda _m: replacement, part)
        out.append(part)
    return "".join(out)


def _rename_in(columns: tuple[str, ...], old: str, new: str) -> tuple[str, ...]:
    return tuple(new if c == old else c for c in columns)


def _replace(state: State, table: Table) -> None:
    state.tables[table.name] = table


# --------------------------------------------------------------------------- the rules


@singledispatch
def apply_event(event: object, state: State) -> None:
    """Check ``event`` against ``state`` and apply it (in place); InvalidChange if it does not fit."""
    raise InvalidChange(f"no rule for event {type(event).__name__}")


@apply_event.register
def _table_created(event: TableCreated, state: State) -> None:
    if event.table in state.tables:
        raise InvalidChange(f"table {event.table!r} already exists")
    names = [c.name for c in event.columns]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise InvalidChange(f"table {event.table!r} lists column {dup!r} twice")
    if len(set(event.primary_key)) != len(event.primary_key):
        raise InvalidChange(f"primary key of {event.table!r} lists a column twice")
    missing = [c for c in event.primary_key if c not in names]
    if missing:
        raise InvalidChange(f"primary key of {event.table!r} uses column {missing[0]!r}, which is not in the table")
    identities = [c.name for c in event.columns if c.identity]
    if len(identities) > 1:
        raise InvalidChange(f"table {event.table!r} has more than one identity column")
    if _type_named(state, event.table):
        raise InvalidChange(
            f"table {event.table!r}: {_type_named(state, event.table)} has that name (PostgreSQL keeps both as types)"
        )
    if event.primary_key_name is not None:
        if not event.primary_key:
            raise InvalidChange(f"table {event.table!r} names a primary key ({event.primary_key_name!r}) it has not")
        _free_name(state, event.table, event.primary_key_name, "primary key")
    for column in event.columns:
        _check_enum_type(state, event.table, column)
    _check_partitioning(event, state, names)
    bare = construct(
        Table,
        {
            "name": event.table,
            "columns": event.columns,
            "primary_key": event.primary_key,
            "indexes": (),
            "constraints": (),
            "comment": event.comment,
            "primary_key_name": event.primary_key_name,
            "partition_by": event.partition_by,
            "partition_of": event.partition_of,
        },
    )
    for column in event.columns:
        _check_generated(bare, column)
    if not event.indexes and not event.constraints:
        state.tables[event.table] = bare
        _register(state, bare)
        return
    # A whole table at once: its indexes and constraints checked by their own rules,
    # on a scratch copy so that a failure leaves the state untouched.
    scratch = state.copy()
    scratch.tables[event.table] = bare
    _register(scratch, bare)
    for index in event.indexes:
        apply_event(IndexCreated(table=event.table, index=index), scratch)
    for constraint in event.constraints:
        apply_event(ConstraintAdded(table=event.table, constraint=constraint), scratch)
    state.tables, state.owners, state.referrers = scratch.tables, scratch.owners, scratch.referrers
    state.indexed = scratch.indexed
    state.tags, state.enums = scratch.tags, scratch.enums


def _partitions_of(state: State, parent: str) -> list[str]:
    return sorted(
        name for name, t in state.tables.items() if t.partition_of is not None and t.partition_of.parent == parent
    )


def _refuse_if_partitioned(state: State, table: Table, what: str) -> None:
    """A partition's columns are its parent's, and PostgreSQL changes them all at once: the log carries
    no such change yet (issue 19), so it refuses one rather than let the partitions' columns part ways."""
    if table.partition_of is not None:
        raise InvalidChange(f"cannot {what} {table.name!r}: it is a partition of {table.partition_of.parent!r}")
    partitions = _partitions_of(state, table.name) if table.partition_by is not None else []
    if partitions:
        raise InvalidChange(f"cannot {what} {table.name!r}: it has partitions ({', '.join(partitions)})")


def _check_partitioning(event: TableCreated, state: State, names: list[str]) -> None:
    """A partitioned table's key is over its columns; a partition's parent is a partitioned table of the log,
    whose columns (names and types) the partition has, in PostgreSQL's way."""
    if event.partition_by is not None:
        from events.partitions import partition_key_columns

        try:
            keys = partition_key_columns(event.partition_by)
        except ValueError as exc:  # a key stored behind append's back
            raise InvalidChange(str(exc)) from None
        for key in keys:
            if key not in names:
                raise InvalidChange(f"partition key of {event.table!r} uses column {key!r}, which is not in the table")
    if event.partition_of is None:
        return
    parent = state.tables.get(event.partition_of.parent)
    if parent is None:
        raise InvalidChange(f"partition {event.table!r}: table {event.partition_of.parent!r} does not exist")
    if parent.partition_by is None:
        raise InvalidChange(f"partition {event.table!r}: table {parent.name!r} is not partitioned")
    mine = sorted((c.name, c.type) for c in event.columns)
    theirs = sorted((c.name, c.type) for c in parent.columns)
    if mine != theirs:
        raise InvalidChange(f"partition {event.table!r} has not the columns of {parent.name!r} (names and types)")


@apply_event.register
def _table_dropped(event: TableDropped, state: State) -> None:
    table = _table(state, event.table)
    partitions = _partitions_of(state, event.table) if table.partition_by is not None else []
    if partitions:
        raise InvalidChange(f"table {event.table!r} has partition {partitions[0]!r}; drop it first")
    incoming = [(r, fk) for r, fk in _incoming(state, event.table) if r != event.table]
    if incoming:
        referrer, fk = incoming[0]
        raise InvalidChange(
            f"table {event.table!r} is referenced by foreign key {fk.name!r} on {referrer!r}; drop it first"
        )
    _refuse_if_read(state, f"drop table {event.table!r}", event.table)
    _unregister(state, table)
    state.referrers.pop(event.table, None)
    del state.tables[event.table]


@apply_event.register
def _table_renamed(event: TableRenamed, state: State) -> None:
    table = _table(state, event.table)
    if event.new_name in state.tables:
        raise InvalidChange(f"cannot rename {event.table!r}: table {event.new_name!r} exists")
    if _type_named(state, event.new_name):
        raise InvalidChange(
            f"cannot rename {event.table!r}: {_type_named(state, event.new_name)} is named {event.new_name!r}"
        )
    if split_table_name(event.table)[0] != split_table_name(event.new_name)[0]:
        raise InvalidChange(f"cannot rename {event.table!r} to {event.new_name!r}: a rename keeps the schema")
    _refuse_if_read(state, f"rename table {event.table!r}", event.table)
    if table.partition_by is not None and _partitions_of(state, event.table):
        raise InvalidChange(f"cannot rename {event.table!r}: it has partitions")
    old, new = event.table, event.new_name
    incoming = _incoming(state, old)
    _unregister(state, table)
    del state.tables[old]
    state.referrers.pop(old, None)

    def retarget(constraints: tuple[Constraint, ...]) -> tuple[Constraint, ...]:
        out = []
        for c in constraints:
            if c.references is not None and c.references.table == old:
                ref = construct(Reference, {"table": new, "columns": c.references.columns})
                c = evolve(c, references=ref)
            out.append(c)
        return tuple(out)

    renamed = evolve(table, name=new, constraints=retarget(table.constraints))
    state.tables[new] = renamed
    _register(state, renamed)
    for referrer, _fk in incoming:
        if referrer == old:
            continue
        holder = state.tables[referrer]
        _unregister(state, holder)
        holder = evolve(holder, constraints=retarget(holder.constraints))
        state.tables[referrer] = holder
        _register(state, holder)


@apply_event.register
def _table_altered(event: TableAltered, state: State) -> None:
    table = _table(state, event.table)
    _replace(state, evolve(table, comment=event.comment))


@apply_event.register
def _column_added(event: ColumnAdded, state: State) -> None:
    table = _table(state, event.table)
    _refuse_if_partitioned(state, table, "add a column to")
    if table.column(event.column.name) is not None:
        raise InvalidChange(f"table {event.table!r} already has a column {event.column.name!r}")
    if event.column.identity and any(c.identity for c in table.columns):
        raise InvalidChange(f"table {event.table!r} already has an identity column")
    if len(table.columns) >= MAX_COLUMNS:
        raise InvalidChange(f"table {event.table!r} has {MAX_COLUMNS} columns, the limit (PostgreSQL)")
    _check_enum_type(state, event.table, event.column)
    _check_generated(table, event.column)
    _replace(state, evolve(table, columns=(*table.columns, event.column)))


@apply_event.register
def _column_dropped(event: ColumnDropped, state: State) -> None:
    table = _table(state, event.table)
    _refuse_if_partitioned(state, table, "drop a column of")
    _column(table, event.column)
    users = _uses(table, event.column)
    for referrer, fk in _incoming(state, event.table):
        assert fk.references is not None
        if event.column in fk.references.columns:
            users.append(f"foreign key {fk.name!r} on {referrer!r}")
    if users:
        raise InvalidChange(f"cannot drop {event.table}.{event.column}: used by {', '.join(users)}; drop those first")
    _refuse_if_read(state, f"drop {event.table}.{event.column}", event.table, event.column)
    if len(table.columns) == 1:
        raise InvalidChange(f"cannot drop {event.table}.{event.column}: it is the table's last column (drop the table)")
    columns = tuple(c for c in table.columns if c.name != event.column)
    _replace(state, evolve(table, columns=columns))


@apply_event.register
def _column_renamed(event: ColumnRenamed, state: State) -> None:
    table = _table(state, event.table)
    _refuse_if_partitioned(state, table, "rename a column of")
    _column(table, event.column)
    if table.column(event.new_name) is not None:
        raise InvalidChange(f"cannot rename {event.table}.{event.column}: column {event.new_name!r} exists")
    _refuse_if_read(state, f"rename {event.table}.{event.column}", event.table, event.column)
    old, new = event.column, event.new_name
    incoming = [(r, fk) for r, fk in _incoming(state, event.table) if r != event.table]

    def in_table(t: Table) -> Table:
        constraints = []
        for c in t.constraints:
            update: dict[str, object] = {}
            if t.name == event.table and old in c.columns:
                update["columns"] = _rename_in(c.columns, old, new)
            if t.name == event.table and c.kind == "check" and c.expression is not None:
                rewritten = rename_in_expression(c.expression, old, new)
                if rewritten != c.expression:
                    update["expression"] = rewritten
            if c.references is not None and c.references.table == event.table and old in c.references.columns:
                update["references"] = construct(
                    Reference, {"table": c.references.table, "columns": _rename_in(c.references.columns, old, new)}
                )
            constraints.append(evolve(c, **update) if update else c)
        if t.name != event.table:
            return evolve(t, constraints=tuple(constraints))
        return evolve(
            t,
            columns=tuple(_column_renamed_in(c, old, new) for c in t.columns),
            primary_key=_rename_in(t.primary_key, old, new),
            indexes=tuple(_index_renamed_in(i, old, new) for i in t.indexes),
            constraints=tuple(constraints),
        )

    _replace(state, in_table(table))
    for referrer in sorted({r for r, _ in incoming}):
        _replace(state, in_table(state.tables[referrer]))


def _column_renamed_in(column: Column, old: str, new: str) -> Column:
    """A column after its table's column ``old`` became ``new``: its name, its generated expression."""
    update: dict[str, object] = {}
    if column.name == old:
        update["name"] = new
    if column.generated is not None:
        rewritten = rename_in_expression(column.generated.expression, old, new)
        if rewritten != column.generated.expression:
            update["generated"] = evolve(column.generated, expression=rewritten)
    return evolve(column, **update) if update else column


def _index_renamed_in(index: Index, old: str, new: str) -> Index:
    """An index after its table's column ``old`` became ``new``: columns, elements, include, where."""
    update: dict[str, object] = {}
    if old in index.columns:
        update["columns"] = _rename_in(index.columns, old, new)
    if old in index.include:
        update["include"] = _rename_in(index.include, old, new)
    if index.where is not None:
        where = rename_in_expression(index.where, old, new)
        if where != index.where:
            update["where"] = where
    if index.elements:
        elements = tuple(_element_renamed_in(e, old, new) for e in index.elements)
        if elements != index.elements:
            update["elements"] = elements
    return evolve(index, **update) if update else index


def _element_renamed_in(element: IndexElement, old: str, new: str) -> IndexElement:
    if element.column == old:
        return evolve(element, column=new)
    if element.expression is not None:
        rewritten = rename_in_expression(element.expression, old, new)
        if rewritten != element.expression:
            return evolve(element, expression=rewritten)
    return element


@apply_event.register
def _column_altered(event: ColumnAltered, state: State) -> None:
    table = _table(state, event.table)
    column = _column(table, event.column)
    changes = event.changes()
    if "type" in changes:
        _refuse_if_partitioned(state, table, "change a column's type in")
    if "type" in changes and changes["type"] != column.type:
        _refuse_if_read(state, f"change the type of {event.table}.{event.column}", event.table, event.column)
    if changes.get("nullable") is True and event.column in table.primary_key:
        raise InvalidChange(f"{event.table}.{event.column} is in the primary key and cannot be nullable")
    if column.identity and changes.get("default") is not None:
        raise InvalidChange(f"{event.table}.{event.column} is an identity column: no default")
    if column.identity and "type" in changes and not changes["type"].counts:
        raise InvalidChange(f"{event.table}.{event.column} is an identity column: its type must stay an integer")
    if column.generated is not None and changes.get("default") is not None:
        raise InvalidChange(f"{event.table}.{event.column} is a generated column: no default")
    if changes.get("on_update") is not None and (column.identity or column.generated is not None):
        raise InvalidChange(f"{event.table}.{event.column} is an identity or generated column: no on_update")
    if changes.get("identity_options") is not None and not column.identity:
        raise InvalidChange(f"{event.table}.{event.column} is no identity column: it takes no identity_options")
    altered = evolve(column, **changes)
    _check_enum_type(state, event.table, altered)
    columns = tuple(altered if c.name == event.column else c for c in table.columns)
    _replace(state, evolve(table, columns=columns))


@apply_event.register
def _index_created(event: IndexCreated, state: State) -> None:
    table = _table(state, event.table)
    _free_index_name(state, event.table, event.index.name)
    _check_index(table, event.index)
    _replace(state, evolve(table, indexes=(*table.indexes, event.index)))
    state.indexed.setdefault((namespace_of(event.table), event.index.name), set()).add(event.table)


@apply_event.register
def _index_dropped(event: IndexDropped, state: State) -> None:
    table = _table(state, event.table)
    if table.index(event.name) is None:
        raise InvalidChange(f"table {event.table!r} has no index {event.name!r}")
    after = evolve(table, indexes=tuple(i for i in table.indexes if i.name != event.name))
    _check_still_unique(state, table, after)
    _replace(state, after)
    _unindex(state, namespace_of(event.table), event.name, event.table)


@apply_event.register
def _constraint_added(event: ConstraintAdded, state: State) -> None:
    table = _table(state, event.table)
    constraint = event.constraint
    _free_name(state, event.table, constraint.name, "constraint")
    what = f"{constraint.kind.replace('_', ' ')} {constraint.name!r}"
    _columns_exist(table, constraint.columns, what)
    if constraint.kind == "unique":
        same = [c.name for c in table.constraints if c.kind == "unique" and set(c.columns) == set(constraint.columns)]
        if same:
            raise InvalidChange(f"{what} repeats unique constraint {same[0]!r} on the same columns of {event.table!r}")
    if constraint.kind == "foreign_key":
        assert constraint.references is not None
        ref = constraint.references
        target = table if ref.table == event.table else state.tables.get(ref.table)
        if target is None:
            raise InvalidChange(f"{what} references table {ref.table!r}, which does not exist")
        missing = [c for c in ref.columns if target.column(c) is None]
        if missing:
            raise InvalidChange(f"{what} references column {ref.table}.{missing[0]}, which does not exist")
        if frozenset(ref.columns) not in unique_sets(target):
            raise InvalidChange(
                f"{what} references {ref.table}({', '.join(ref.columns)}), which is not"
                " unique: it must be the primary key or have a unique index or constraint"
            )
        for mine, theirs in zip(constraint.columns, ref.columns, strict=True):
            if table.column(mine).type != target.column(theirs).type:  # type: ignore[union-attr]
                raise InvalidChange(f"{what}: {event.table}.{mine} and {ref.table}.{theirs} have different types")
        state.referrers.setdefault(ref.table, set()).add((event.table, constraint.name))
    _replace(state, evolve(table, constraints=(*table.constraints, constraint)))
    state.owners[(namespace_of(event.table), constraint.name)] = event.table


@apply_event.register
def _constraint_dropped(event: ConstraintDropped, state: State) -> None:
    table = _table(state, event.table)
    constraint = table.constraint(event.name)
    if constraint is None:
        raise InvalidChange(f"table {event.table!r} has no constraint {event.name!r}")
    after = evolve(table, constraints=tuple(c for c in table.constraints if c.name != event.name))
    if constraint.kind == "unique":
        _check_still_unique(state, table, after)
    _replace(state, after)
    state.owners.pop((namespace_of(event.table), event.name), None)
    if constraint.kind == "foreign_key" and constraint.references is not None:
        refs = state.referrers.get(constraint.references.table)
        if refs is not None:
            refs.discard((event.table, event.name))


@apply_event.register
def _primary_key_set(event: PrimaryKeySet, state: State) -> None:
    table = _table(state, event.table)
    if len(set(event.columns)) != len(event.columns):
        raise InvalidChange(f"primary key of {event.table!r} lists a column twice")
    _columns_exist(table, event.columns, "primary key")
    if tuple(event.columns) == table.primary_key and event.name == table.primary_key_name:
        raise InvalidChange(f"table {event.table!r} already has this primary key")
    if event.name is not None and not event.columns:
        raise InvalidChange(f"table {event.table!r}: a primary key name ({event.name!r}) needs columns")
    if event.name is not None and event.name != table.primary_key_name:
        _free_name(state, event.table, event.name, "primary key")
    nullable = [c for c in event.columns if table.column(c).nullable]  # type: ignore[union-attr]
    if nullable:
        raise InvalidChange(
            f"primary key column {event.table}.{nullable[0]} is nullable: make it NOT NULL first (column_altered)"
        )
    after = evolve(table, primary_key=tuple(event.columns), primary_key_name=event.name)
    _check_still_unique(state, table, after)
    _unregister(state, table)
    _replace(state, after)
    _register(state, after)


@apply_event.register
def _enum_created(event: EnumCreated, state: State) -> None:
    if event.name in state.enums:
        raise InvalidChange(f"enum type {event.name!r} already exists")
    if event.name in state.domains:
        raise InvalidChange(f"enum type {event.name!r}: a domain has that name")
    if event.name in state.tables:
        raise InvalidChange(f"enum type {event.name!r}: a table has that name (PostgreSQL keeps both as types)")
    state.enums[event.name] = construct(EnumType, {"name": event.name, "values": tuple(event.values)})


def _enum(state: State, name: str) -> EnumType:
    enum = state.enums.get(name)
    if enum is None:
        raise InvalidChange(f"enum type {name!r} does not exist")
    return enum


@apply_event.register
def _enum_value_added(event: EnumValueAdded, state: State) -> None:
    enum = _enum(state, event.name)
    if event.value in enum.values:
        raise InvalidChange(f"enum type {event.name!r} already has the value {event.value!r}")
    values = list(enum.values)
    if event.before is None:
        values.append(event.value)
    elif event.before not in values:
        raise InvalidChange(f"enum type {event.name!r} has no value {event.before!r} to add {event.value!r} before")
    else:
        values.insert(values.index(event.before), event.value)
    state.enums[event.name] = evolve(enum, values=tuple(values))


@apply_event.register
def _enum_value_dropped(event: EnumValueDropped, state: State) -> None:
    enum = _enum(state, event.name)
    if event.value not in enum.values:
        raise InvalidChange(f"enum type {event.name!r} has no value {event.value!r}")
    if len(enum.values) == 1:
        raise InvalidChange(f"{event.value!r} is the last value of enum type {event.name!r} (drop the type)")
    state.enums[event.name] = evolve(enum, values=tuple(v for v in enum.values if v != event.value))


@apply_event.register
def _enum_dropped(event: EnumDropped, state: State) -> None:
    _enum(state, event.name)
    users = [
        f"{table.name}.{column.name}"
        for table in state.tables.values()
        for column in table.columns
        if column.type.is_enum and column.type.name == event.name
    ]
    if users:
        shown = ", ".join(sorted(users)[:5]) + (f" and {len(users) - 5} more" if len(users) > 5 else "")
        raise InvalidChange(f"cannot drop enum type {event.name!r}: used by column {shown}; change those first")
    domains = sorted(d.name for d in state.domains.values() if d.type.is_enum and d.type.name == event.name)
    if domains:
        raise InvalidChange(f"cannot drop enum type {event.name!r}: domain {domains[0]!r} is over it; drop it first")
    del state.enums[event.name]


@apply_event.register
def _domain_created(event: DomainCreated, state: State) -> None:
    if event.name in state.domains:
        raise InvalidChange(f"domain {event.name!r} already exists")
    if event.name in state.tables or event.name in state.enums:
        what = "a table" if event.name in state.tables else "an enum type"
        raise InvalidChange(f"domain {event.name!r}: {what} has that name (PostgreSQL keeps both as types)")
    if event.base.is_enum and event.base.name not in state.enums:
        raise InvalidChange(f"domain {event.name!r} is over enum type {event.base.name!r}, which does not exist")
    state.domains[event.name] = construct(
        DomainType,
        {
            "name": event.name,
            "type": event.base,
            "nullable": event.nullable,
            "default": event.default,
            "checks": tuple(event.checks),
        },
    )


@apply_event.register
def _domain_dropped(event: DomainDropped, state: State) -> None:
    if event.name not in state.domains:
        raise InvalidChange(f"domain {event.name!r} does not exist")
    users = [
        f"{table.name}.{column.name}"
        for table in state.tables.values()
        for column in table.columns
        if column.type.is_domain and column.type.name == event.name
    ]
    if users:
        shown = ", ".join(sorted(users)[:5]) + (f" and {len(users) - 5} more" if len(users) > 5 else "")
        raise InvalidChange(f"cannot drop domain {event.name!r}: used by column {shown}; change those first")
    del state.domains[event.name]


def _check_reads(state: State, name: str, uses: tuple[str, ...], columns: tuple[str, ...]) -> None:
    """What a view reads exists: its tables and views, and its columns (``table.column``)."""
    for used in uses:
        if used == name:
            raise InvalidChange(f"view {name!r} reads itself")
        if used not in state.tables and used not in state.views:
            raise InvalidChange(f"view {name!r} reads {used!r}, which is no table or view")
    for column in columns:
        table_name, _, column_name = column.rpartition(".")
        table = state.tables.get(table_name)
        if table is None or table.column(column_name) is None:
            raise InvalidChange(f"view {name!r} reads column {column}, which does not exist")
        if table_name not in uses:
            raise InvalidChange(f"view {name!r} reads column {column} of a table it does not name in uses")


@apply_event.register
def _view_created(event: ViewCreated, state: State) -> None:
    if event.name in state.views:
        raise InvalidChange(f"view {event.name!r} already exists")
    taken = "a table" if event.name in state.tables else _type_named(state, event.name)
    if taken:
        raise InvalidChange(f"view {event.name!r}: {taken} has that name")
    _check_reads(state, event.name, event.uses, event.columns)
    state.views[event.name] = construct(
        View,
        {
            "name": event.name,
            "definitions": dict(event.definitions),
            "materialized": event.materialized,
            "uses": tuple(event.uses),
            "columns": tuple(event.columns),
            "security": event.security,
        },
    )


@apply_event.register
def _view_replaced(event: ViewReplaced, state: State) -> None:
    view = state.views.get(event.name)
    if view is None:
        raise InvalidChange(f"view {event.name!r} does not exist")
    _check_reads(state, event.name, event.uses, event.columns)
    readers = [v.name for v in state.views.values() if event.name in v.uses]
    if readers and set(event.definitions) != set(view.definitions):
        raise InvalidChange(f"view {event.name!r}: view {readers[0]!r} reads it; its dialects must stay the same")
    state.views[event.name] = evolve(
        view,
        definitions=dict(event.definitions),
        uses=tuple(event.uses),
        columns=tuple(event.columns),
        security=event.security,
    )


@apply_event.register
def _view_dropped(event: ViewDropped, state: State) -> None:
    if event.name not in state.views:
        raise InvalidChange(f"view {event.name!r} does not exist")
    readers = sorted(v.name for v in state.views.values() if event.name in v.uses)
    if readers:
        raise InvalidChange(
            f"cannot drop view {event.name!r}: view {readers[0]!r} uses it; drop or replace that view first"
        )
    _refuse_if_used(state, f"drop view {event.name!r}", event.name)
    del state.views[event.name]


def _check_uses(state: State, what: str, uses: tuple[str, ...], own: str | None = None) -> None:
    """What a routine or trigger uses exists: tables, views and routines (by name)."""
    names = {r.name for r in state.routines.values()}
    for used in uses:
        if used == own:
            continue  # a recursive routine
        if used not in state.tables and used not in state.views and used not in names:
            raise InvalidChange(f"{what} uses {used!r}, which is no table, view or routine")


@apply_event.register
def _routine_created(event: RoutineCreated, state: State) -> None:
    from events.objects import routine_key

    key = routine_key(event.name, event.signature)
    if key in state.routines:
        raise InvalidChange(f"{state.routines[key].kind} {key} already exists")
    _check_uses(state, f"{event.kind} {event.name!r}", event.uses, event.name)
    state.routines[key] = construct(
        Routine,
        {
            "name": event.name,
            "kind": event.kind,
            "signature": event.signature,
            "definitions": dict(event.definitions),
            "uses": tuple(event.uses),
        },
    )


@apply_event.register
def _routine_replaced(event: RoutineReplaced, state: State) -> None:
    from events.objects import routine_key

    key = routine_key(event.name, event.signature)
    routine = state.routines.get(key)
    if routine is None:
        raise InvalidChange(f"routine {key} does not exist")
    if routine.kind != event.kind:
        raise InvalidChange(f"routine {key} is of kind {routine.kind}, not {event.kind}; drop it and create it again")
    _check_uses(state, f"{event.kind} {event.name!r}", event.uses, event.name)
    state.routines[key] = evolve(routine, definitions=dict(event.definitions), uses=tuple(event.uses))


@apply_event.register
def _routine_dropped(event: RoutineDropped, state: State) -> None:
    from events.objects import routine_key

    key = routine_key(event.name, event.signature)
    routine = state.routines.pop(key, None)
    if routine is None:
        raise InvalidChange(f"routine {key} does not exist")
    if not any(r.name == event.name for r in state.routines.values()):  # no other routine of that name remains
        users = [u for u in _users(state, event.name) if u != f"{routine.kind} {routine.name!r}"]
        if users:
            state.routines[key] = routine
            raise InvalidChange(
                f"cannot drop {routine.kind} {key}: {', '.join(users[:5])} {'uses' if len(users) == 1 else 'use'} it;"
                " drop or replace that first (in the same changeset, before this event)"
            )


def _trigger_fits(state: State, event: TriggerCreated | TriggerReplaced) -> tuple[str, ...]:
    """What the trigger uses (given, else the routine of the log its definition runs), checked to exist."""
    if event.table not in state.tables:
        raise InvalidChange(f"trigger {event.name!r}: table {event.table!r} does not exist")
    uses = tuple(event.uses)
    if not uses:
        from events.objects import DefinitionError, trigger_calls

        names = {r.name for r in state.routines.values()}
        try:
            uses = tuple(n for n in trigger_calls(event.name, event.table, event.definitions) if n in names)
        except DefinitionError:
            uses = ()
    _check_uses(state, f"trigger {event.name!r} on {event.table!r}", uses)
    return uses


@apply_event.register
def _trigger_created(event: TriggerCreated, state: State) -> None:
    from events.objects import trigger_key

    key = trigger_key(event.table, event.name)
    if key in state.triggers:
        raise InvalidChange(f"trigger {event.name!r} on {event.table!r} already exists")
    uses = _trigger_fits(state, event)
    state.triggers[key] = construct(
        Trigger,
        {"name": event.name, "table": event.table, "definitions": dict(event.definitions), "uses": uses},
    )


@apply_event.register
def _trigger_replaced(event: TriggerReplaced, state: State) -> None:
    from events.objects import trigger_key

    key = trigger_key(event.table, event.name)
    trigger = state.triggers.get(key)
    if trigger is None:
        raise InvalidChange(f"trigger {event.name!r} on {event.table!r} does not exist")
    uses = _trigger_fits(state, event)
    state.triggers[key] = evolve(trigger, definitions=dict(event.definitions), uses=uses)


@apply_event.register
def _trigger_dropped(event: TriggerDropped, state: State) -> None:
    from events.objects import trigger_key

    if state.triggers.pop(trigger_key(event.table, event.name), None) is None:
        raise InvalidChange(f"trigger {event.name!r} on {event.table!r} does not exist")


@apply_event.register
def _extension_created(event: ExtensionCreated, state: State) -> None:
    if event.name in state.extensions:
        raise InvalidChange(f"extension {event.name!r} already exists")
    state.extensions[event.name] = construct(Extension, {"name": event.name, "schema_name": event.schema_name})


@apply_event.register
def _extension_dropped(event: ExtensionDropped, state: State) -> None:
    if event.name not in state.extensions:
        raise InvalidChange(f"extension {event.name!r} does not exist")
    del state.extensions[event.name]


@apply_event.register
def _sql_run(event: SqlRun, state: State) -> None:
    """A data step changes rows, not the schema (its statements are checked as they come in)."""


@apply_event.register
def _tag_created(event: TagCreated, state: State) -> None:
    """Tags change no schema. That a tag names an existing version is checked by events.log."""
    if event.tag in state.tags:
        raise InvalidChange(f"tag {event.tag!r} already names version {state.tags[event.tag]}")
    state.tags[event.tag] = event.version


@apply_event.register(MigrationApplied)
@apply_event.register(MigrationFaked)
@apply_event.register(MigrationFailed)
@apply_event.register(DriftFound)
@apply_event.register(DatabaseRegistered)
@apply_event.register(DatabaseChanged)
@apply_event.register(DatabaseRetired)
@apply_event.register(RolloutHalted)
@apply_event.register(RolloutResumed)
@apply_event.register(TokenCreated)
@apply_event.register(TokenRevoked)
@apply_event.register(ApprovalGiven)
@apply_event.register(ApprovalsRequired)
def _outcome(event: object, state: State) -> None:
    """Outcomes of the reconciler and the fleet's events describe databases, not a schema change
    (the fleet's own rules are checked by projections.fleet when they are written)."""


# --------------------------------------------------------------------------- folds


def apply_events(state: State, events: Iterable[Event], *, first_index: int = 0) -> None:
    """Apply events in place, naming the failing event's index in any InvalidChange."""
    for index, event in enumerate(events, start=first_index):
        try:
            apply_event(event, state)
        except InvalidChange as exc:
            if exc.index is not None:
                raise
            raise InvalidChange(exc.reason, index, event.type) from None


def validate_changeset(head: Schema | State, events: Iterable[Event]) -> Schema:
    """The schema after ``events``, or InvalidChange for the first one that does not fit."""
    state = head.copy() if isinstance(head, State) else State.from_schema(head)
    apply_events(state, events)
    return state.to_schema()


def fold(events: Iterable[Event], start: Schema | None = None) -> Schema:
    """The schema made by ``events`` from ``start`` (empty by default)."""
    return validate_changeset(start or Schema(), events)
