"""Changes between two points of a stream, as events; every event's exact inverse.

Going forward, the changes from A to B are the events recorded between them
(renames stay renames). Going back, they are the inverses of those events in
reverse order, each computed from the state before the event it undoes: a
dropped column comes back with its type, default, nullability and comment; a
dropped table comes back with its indexes and constraints.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import singledispatch

from events.aggregate import InvalidChange, State, apply_event
from events.catalog import (
    SCHEMA_EVENT_TYPES,
    ColumnAdded,
    ColumnAltered,
    ColumnDropped,
    ColumnRenamed,
    ConstraintAdded,
    ConstraintDropped,
    DriftFound,
    Event,
    IndexCreated,
    IndexDropped,
    MigrationApplied,
    MigrationFailed,
    MigrationFaked,
    PrimaryKeySet,
    TableAltered,
    TableCreated,
    TableDropped,
    TableRenamed,
    TagCreated,
)
from events.envelope import RecordedEvent
from events.model import Column, Schema, Table
from events.store.base import EventStore
from projections.audit import Lineage
from projections.schema import Point, Projector


def _table(state: State, name: str):  # type: ignore[no-untyped-def]
    table = state.tables.get(name)
    if table is None:
        raise InvalidChange(f"table {name!r} does not exist")
    return table


@singledispatch
def inverse(event: object, before: State) -> Event | None:
    """The event that undoes ``event``, given the state just before it (None for tags)."""
    raise TypeError(f"no inverse for {type(event).__name__}")


@inverse.register
def _(event: TableCreated, before: State) -> Event:
    return TableDropped(table=event.table)


@inverse.register
def _(event: TableDropped, before: State) -> Event:
    table = _table(before, event.table)
    return TableCreated(
        table=table.name,
        columns=table.columns,
        primary_key=table.primary_key,
        comment=table.comment,
        indexes=table.indexes,
        constraints=table.constraints,
    )


@inverse.register
def _(event: TableRenamed, before: State) -> Event:
    return TableRenamed(table=event.new_name, new_name=event.table)


@inverse.register
def _(event: TableAltered, before: State) -> Event:
    return TableAltered(table=event.table, comment=_table(before, event.table).comment)


@inverse.register
def _(event: ColumnAdded, before: State) -> Event:
    return ColumnDropped(table=event.table, column=event.column.name)


@inverse.register
def _(event: ColumnDropped, before: State) -> Event:
    column = _table(before, event.table).column(event.column)
    if column is None:
        raise InvalidChange(f"table {event.table!r} has no column {event.column!r}")
    return ColumnAdded(table=event.table, column=column)


@inverse.register
def _(event: ColumnRenamed, before: State) -> Event:
    return ColumnRenamed(table=event.table, column=event.new_name, new_name=event.column)


@inverse.register
def _(event: ColumnAltered, before: State) -> Event:
    column = _table(before, event.table).column(event.column)
    if column is None:
        raise InvalidChange(f"table {event.table!r} has no column {event.column!r}")
    old = {key: getattr(column, key) for key in event.changes()}
    return ColumnAltered.of(event.table, event.column, **old)


@inverse.register
def _(event: IndexCreated, before: State) -> Event:
    return IndexDropped(table=event.table, name=event.index.name)


@inverse.register
def _(event: IndexDropped, before: State) -> Event:
    index = _table(before, event.table).index(event.name)
    if index is None:
        raise InvalidChange(f"table {event.table!r} has no index {event.name!r}")
    return IndexCreated(table=event.table, index=index)


@inverse.register
def _(event: ConstraintAdded, before: State) -> Event:
    return ConstraintDropped(table=event.table, name=event.constraint.name)


@inverse.register
def _(event: ConstraintDropped, before: State) -> Event:
    constraint = _table(before, event.table).constraint(event.name)
    if constraint is None:
        raise InvalidChange(f"table {event.table!r} has no constraint {event.name!r}")
    return ConstraintAdded(table=event.table, constraint=constraint)


@inverse.register
def _(event: PrimaryKeySet, before: State) -> Event:
    return PrimaryKeySet(table=event.table, columns=_table(before, event.table).primary_key)


@inverse.register(TagCreated)
@inverse.register(MigrationApplied)
@inverse.register(MigrationFaked)
@inverse.register(MigrationFailed)
@inverse.register(DriftFound)
def _(event: object, before: State) -> None:
    return None  # no schema change to undo


def inverses(events: Sequence[Event], start: State) -> list[Event]:
    """The events that undo ``events`` (applied from ``start``), in the order to apply them."""
    state = start.copy()
    undo: list[Event] = []
    for event in events:
        back = inverse(event, state)
        if back is not None:
            undo.append(back)
        apply_event(event, state)
    undo.reverse()
    return undo


@dataclass(frozen=True)
class Change:
    """One step from one point to another, and where it came from."""

    event: Event
    source_version: int
    """The recorded event this step is (forward) or undoes (backward)."""
    backward: bool


async def changes_between(projector: Projector, stream: str, a: Point, b: Point) -> tuple[int, int, list[Change]]:
    """The steps from point ``a`` to point ``b``: (version a, version b, steps)."""
    va = await projector.resolve(stream, a)
    vb = await projector.resolve(stream, b)
    store: EventStore = projector.store
    if va == vb:
        return va, vb, []
    low, high = min(va, vb), max(va, vb)
    recorded = await store.read(stream, after_version=low, to_version=high)
    if vb > va:
        steps = [Change(r.event, r.version, False) for r in recorded if r.event.type in SCHEMA_EVENT_TYPES]
        return va, vb, steps
    state = await projector.state_at_version(stream, low)
    back: list[Change] = []
    for r in recorded:
        undo = inverse(r.event, state)
        if undo is not None:
            back.append(Change(undo, r.version, True))
        apply_event(r.event, state)
    back.reverse()
    return va, vb, back


TABLE_LEVEL = frozenset({"table_created", "table_dropped", "table_renamed"})


def revert_changeset(recorded: Sequence[RecordedEvent], changeset_id: str) -> list[Event]:
    """The events that undo one changeset, if no later change depends on it.

    ``recorded`` is the whole stream up to its head, in order. Raises InvalidChange
    naming the later events that touch what the changeset touched (following renames).
    """
    lineage = Lineage()
    state = State()
    undo: list[Event] = []
    mine_tables: set[int] = set()
    mine_columns: set[int] = set()
    mine_table_level = False
    seen = False
    blockers: list[str] = []
    for r in recorded:
        touched = lineage.step(r.event)
        if r.changeset_id == changeset_id:
            seen = True
            back = inverse(r.event, state)
            if back is not None:
                undo.append(back)
            mine_tables |= touched.tables
            mine_columns |= touched.columns
            mine_table_level = mine_table_level or r.event.type in TABLE_LEVEL
        elif seen:
            overlap_columns = touched.columns & mine_columns
            overlap_tables = touched.tables & mine_tables
            if overlap_columns or (overlap_tables and (mine_table_level or r.event.type in TABLE_LEVEL)):
                blockers.append(f"v{r.version} {r.event.type} on {getattr(r.event, 'table', '?')}")
        apply_event(r.event, state)
    if not seen:
        raise InvalidChange(f"no changeset {changeset_id!r} in this stream")
    if blockers:
        shown = ", ".join(blockers[:5]) + (f" and {len(blockers) - 5} more" if len(blockers) > 5 else "")
        raise InvalidChange(f"cannot revert changeset {changeset_id}: later changes depend on it: {shown}")
    undo.reverse()
    return undo


# --------------------------------------------------------------------------- state A -> state B


@dataclass(frozen=True)
class Renames:
    """Renames the user confirmed: tables old -> new, columns (new table name, old column) -> new column."""

    tables: dict[str, str] = field(default_factory=dict)
    columns: dict[tuple[str, str], str] = field(default_factory=dict)


@dataclass(frozen=True)
class RenameCandidate:
    """A drop and an add of the same shape: maybe a rename. ``column`` is None for a table."""

    table: str
    new: str
    column: str | None = None

    def __str__(self) -> str:
        if self.column is None:
            return f"{self.table} -> {self.new}"
        return f"{self.table}.{self.column} -> {self.new}"

    def hint(self) -> str:
        return f"{self.table}={self.new}" if self.column is None else f"{self.table}.{self.column}={self.new}"


def _shape(column: Column) -> tuple[object, ...]:
    return (column.type, column.nullable, column.default, column.identity)


def _table_shape(table: Table) -> tuple[object, ...]:
    return tuple(sorted((c.name, *_shape(c)) for c in table.columns))


def rename_candidates(old: Schema, new: Schema, renames: Renames | None = None) -> list[RenameCandidate]:
    """Possible renames between two schemas that ``renames`` does not already settle."""
    renames = renames or Renames()
    out: list[RenameCandidate] = []
    dropped = [t for t in old.tables if t not in new.tables and t not in renames.tables]
    created = [t for t in new.tables if t not in old.tables and t not in renames.tables.values()]
    for d in dropped:
        for c in created:
            if _table_shape(old.tables[d]) == _table_shape(new.tables[c]):
                out.append(RenameCandidate(d, c))
    for name, table in new.tables.items():
        before_name = next((o for o, n in renames.tables.items() if n == name), name)
        before = old.tables.get(before_name)
        if before is None:
            continue
        settled_old = {o for (t, o) in renames.columns if t == name}
        settled_new = {n for (t, _), n in renames.columns.items() if t == name}
        gone = [c for c in before.columns if table.column(c.name) is None and c.name not in settled_old]
        came = [c for c in table.columns if before.column(c.name) is None and c.name not in settled_new]
        for g in gone:
            for a in came:
                if _shape(g) == _shape(a):
                    out.append(RenameCandidate(name, a.name, g.name))
    return out


def _renamed(old: Schema, renames: Renames) -> tuple[list[Event], State]:
    state = State.from_schema(old)
    events: list[Event] = []
    for o, n in sorted(renames.tables.items()):
        events.append(TableRenamed(table=o, new_name=n))
    for (table, o), n in sorted(renames.columns.items()):
        events.append(ColumnRenamed(table=table, column=o, new_name=n))
    for event in events:
        apply_event(event, state)
    return events, state


def _drops(old: Schema, new: Schema) -> list[Event]:
    """Foreign keys, indexes, constraints and primary keys that go or change; then columns; then tables."""
    out: list[Event] = []
    for name, table in sorted(old.tables.items()):
        after = new.tables.get(name)
        for c in table.constraints:
            if c.kind == "foreign_key" and (after is None or after.constraint(c.name) != c):
                out.append(ConstraintDropped(table=name, name=c.name))
    for name, table in sorted(old.tables.items()):
        after = new.tables.get(name)
        if after is None:
            continue
        for c in table.constraints:
            if c.kind != "foreign_key" and after.constraint(c.name) != c:
                out.append(ConstraintDropped(table=name, name=c.name))
        for i in table.indexes:
            if after.index(i.name) != i:
                out.append(IndexDropped(table=name, name=i.name))
        if table.primary_key and table.primary_key != after.primary_key:
            out.append(PrimaryKeySet(table=name, columns=()))
    for name in sorted(old.tables):
        if name not in new.tables:
            out.append(TableDropped(table=name))
    return out


def _creations(old: Schema, new: Schema) -> list[Event]:
    out: list[Event] = []
    for name, table in sorted(new.tables.items()):
        before = old.tables.get(name)
        if before is None:
            out.append(
                TableCreated(table=name, columns=table.columns, primary_key=table.primary_key, comment=table.comment)
            )
            continue
        for col in table.columns:
            if before.column(col.name) is None:
                out.append(ColumnAdded(table=name, column=col))
    return out


def _column_drops(old: Schema, new: Schema) -> list[Event]:
    """After the creations, so that a table whose columns are all replaced never goes empty."""
    out: list[Event] = []
    for name, table in sorted(old.tables.items()):
        after = new.tables.get(name)
        if after is None:
            continue
        for col in table.columns:
            if after.column(col.name) is None:
                out.append(ColumnDropped(table=name, column=col.name))
    return out


def _alterations(old: Schema, new: Schema) -> list[Event]:
    out: list[Event] = []
    for name, table in sorted(new.tables.items()):
        before = old.tables.get(name)
        if before is None:
            continue
        if table.comment != before.comment:
            out.append(TableAltered(table=name, comment=table.comment))
        for col in table.columns:
            was = before.column(col.name)
            if was is None or was == col:
                continue
            changes = {
                k: getattr(col, k)
                for k in ("type", "nullable", "default", "comment")
                if getattr(was, k) != getattr(col, k)
            }
            if changes:
                out.append(ColumnAltered.of(name, col.name, **changes))
        if table.primary_key and table.primary_key != before.primary_key:
            out.append(PrimaryKeySet(table=name, columns=table.primary_key))
    return out


def _indexes_and_constraints(old: Schema, new: Schema) -> list[Event]:
    out: list[Event] = []
    fks: list[Event] = []
    for name, table in sorted(new.tables.items()):
        before = old.tables.get(name)
        for i in table.indexes:
            if before is None or before.index(i.name) != i:
                out.append(IndexCreated(table=name, index=i))
        for c in table.constraints:
            if before is None or before.constraint(c.name) != c:
                (fks if c.kind == "foreign_key" else out).append(ConstraintAdded(table=name, constraint=c))
    return out + fks


def schema_diff(old: Schema, new: Schema, renames: Renames | None = None) -> list[Event]:
    """Events that turn ``old`` into ``new``: renames first (only those given), then drops
    (keys, indexes, constraints, tables), creations, column drops, alterations, and last
    indexes and constraints (foreign keys at the very end).

    Each step is a pure function of the two schemas; no rename is ever guessed.
    """
    events, state = _renamed(old, renames or Renames())
    middle = state.to_schema()
    for step in (_drops, _creations, _column_drops, _alterations, _indexes_and_constraints):
        events.extend(step(middle, new))
    return events
