"""Changes between two points of a stream, as events; every event's exact inverse.

Going forward, the changes from A to B are the events recorded between them
(renames stay renames). Going back, they are the inverses of those events in
reverse order, each computed from the state before the event it undoes: a
dropped column comes back with its type, default, nullability and comment; a
dropped table comes back with its indexes and constraints.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
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
    TableCreated,
    TableDropped,
    TableRenamed,
    TagCreated,
)
from events.envelope import RecordedEvent
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
