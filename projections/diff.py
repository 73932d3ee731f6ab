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

from events.aggregate import InvalidChange, State, apply_event, expression_columns, index_columns
from events.auth import ApprovalGiven, ApprovalsRequired, TokenCreated, TokenRevoked
from events.catalog import (
    ALTERABLE,
    SCHEMA_EVENT_TYPES,
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
from events.envelope import RecordedEvent
from events.expressions import STORED
from events.fleet import DatabaseChanged, DatabaseRegistered, DatabaseRetired, RolloutHalted, RolloutResumed
from events.model import (
    Column,
    DomainType,
    EnumType,
    Index,
    Routine,
    Schema,
    Table,
    Trigger,
    View,
    domains_of,
    extensions_of,
    routines_of,
    triggers_of,
    views_of,
)
from events.store.base import EventStore
from projections.audit import Lineage, Touched
from projections.schema import Point, Projector


def _table(state: State, name: str):  # type: ignore[no-untyped-def]
    table = state.tables.get(name)
    if table is None:
        raise InvalidChange(f"table {name!r} does not exist")
    return table


class Irreversible(InvalidChange):
    """An event that cannot be undone (a data step recorded without ``backward``)."""


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
        primary_key_name=table.primary_key_name,
        partition_by=table.partition_by,
        partition_of=table.partition_of,
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
    if not needs_fill(column):
        return ColumnAdded(table=event.table, column=column)
    fill = effective_fill(column, before.enums)
    if fill is not None:
        return ColumnAdded(table=event.table, column=column, fill=fill)
    # no value fits every type (a uuid, bytes): the column comes back as it was, as a stored event would
    return ColumnAdded.model_validate({"table": event.table, "column": column}, context=STORED)


def needs_fill(column: Column) -> bool:
    """Whether rows already in a table need a value when ``column`` is added (ColumnAdded.fill)."""
    return not column.nullable and column.default is None and column.generated is None and not column.identity


_ZERO_FILLS = {
    "smallint": "0",
    "integer": "0",
    "bigint": "0",
    "real": "0",
    "double": "0",
    "numeric": "0",
    "varchar": "''",
    "char": "''",
    "text": "''",
    "boolean": "false",
    "date": "CURRENT_DATE",
    "timestamp": "CURRENT_TIMESTAMP",
    "timestamptz": "CURRENT_TIMESTAMP",
}


def effective_fill(column: Column, enums: dict[str, EnumType]) -> str | None:
    """What rows get when a dropped NOT NULL column comes back (its values are gone): Django's
    "effective default", the type's zero (0, '', false, the current date or time), an enum's first
    value; None for a type without one."""
    if column.type.is_enum:
        enum = enums.get(column.type.name)
        return None if enum is None else "'" + enum.values[0].replace("'", "''") + "'"
    if not column.type.portable:
        return None
    return _ZERO_FILLS.get(column.type.name)


@inverse.register
def _(event: ColumnRenamed, before: State) -> Event:
    return ColumnRenamed(table=event.table, column=event.new_name, new_name=event.column)


@inverse.register
def _(event: ColumnAltered, before: State) -> Event:
    column = _table(before, event.table).column(event.column)
    if column is None:
        raise InvalidChange(f"table {event.table!r} has no column {event.column!r}")
    old = {key: getattr(column, key) for key in event.changes()}
    if column.nullable is False and event.changes().get("nullable") is True:
        # making it NOT NULL again: rows that got a NULL meanwhile get the column's zero
        fill = effective_fill(column, before.enums) if column.default is None else None
        if fill is not None:
            old["fill"] = fill
    return _altered(event.table, event.column, old)


def _altered(table: str, column: str, changes: dict[str, object]) -> ColumnAltered:
    """ColumnAltered.of, with ``fill`` (not an attribute of the column) beside the changes."""
    fill = changes.pop("fill", None)
    event = ColumnAltered.of(table, column, **changes)
    if fill is None:
        return event
    data = {("new_type" if k == "type" else k): (str(v) if k == "type" else v) for k, v in event.changes().items()}
    return ColumnAltered.model_validate({"table": table, "column": column, **data, "fill": fill})


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
    table = _table(before, event.table)
    return PrimaryKeySet(table=event.table, columns=table.primary_key, name=table.primary_key_name)


def _enum(before: State, name: str) -> EnumType:
    enum = before.enums.get(name)
    if enum is None:
        raise InvalidChange(f"enum type {name!r} does not exist")
    return enum


@inverse.register
def _(event: EnumCreated, before: State) -> Event:
    return EnumDropped(name=event.name)


@inverse.register
def _(event: EnumDropped, before: State) -> Event:
    return EnumCreated(name=event.name, values=_enum(before, event.name).values)


@inverse.register
def _(event: EnumValueAdded, before: State) -> Event:
    return EnumValueDropped(name=event.name, value=event.value)


@inverse.register
def _(event: EnumValueDropped, before: State) -> Event:
    values = _enum(before, event.name).values
    if event.value not in values:
        raise InvalidChange(f"enum type {event.name!r} has no value {event.value!r}")
    at = values.index(event.value)
    following = values[at + 1] if at + 1 < len(values) else None  # back at its old place
    return EnumValueAdded(name=event.name, value=event.value, before=following)


@inverse.register
def _(event: DomainCreated, before: State) -> Event:
    return DomainDropped(name=event.name)


@inverse.register
def _(event: DomainDropped, before: State) -> Event:
    domain = before.domains.get(event.name)
    if domain is None:
        raise InvalidChange(f"domain {event.name!r} does not exist")
    return domain_created(domain, stored=True)


def domain_created(domain: DomainType, *, stored: bool = False) -> DomainCreated:
    """The event that makes ``domain``; ``stored``: built as the log's own (its expressions were judged
    when it came in), else checked as input is (import, makemigrations)."""
    return DomainCreated.model_validate(
        {
            "name": domain.name,
            "base": str(domain.type),
            "nullable": domain.nullable,
            "default": domain.default,
            "checks": [c.model_dump() for c in domain.checks],
        },
        context=STORED if stored else None,
    )


@inverse.register
def _(event: ExtensionCreated, before: State) -> Event:
    return ExtensionDropped(name=event.name)


@inverse.register
def _(event: ExtensionDropped, before: State) -> Event:
    extension = before.extensions.get(event.name)
    if extension is None:
        raise InvalidChange(f"extension {event.name!r} does not exist")
    return ExtensionCreated(name=extension.name, schema_name=extension.schema_name)


@inverse.register
def _(event: ViewCreated, before: State) -> Event:
    return ViewDropped(name=event.name)


@inverse.register
def _(event: ViewDropped, before: State) -> Event:
    return view_created(_view(before, event.name), stored=True)


@inverse.register
def _(event: ViewReplaced, before: State) -> Event:
    return view_replaced(_view(before, event.name), stored=True)


def _view(before: State, name: str) -> View:
    view = before.views.get(name)
    if view is None:
        raise InvalidChange(f"view {name!r} does not exist")
    return view


def _view_data(view: View) -> dict[str, object]:
    return {
        "name": view.name,
        "definitions": dict(view.definitions),
        "uses": list(view.uses),
        "columns": list(view.columns),
        "security": view.security,
    }


def view_created(view: View, *, stored: bool = False) -> ViewCreated:
    """The event that makes ``view``; ``stored``: built as the log's own (its definitions were proven when
    they came in), else checked as input is (import)."""
    data = {**_view_data(view), "materialized": view.materialized}
    return ViewCreated.model_validate(data, context=STORED if stored else None)


def view_replaced(view: View, *, stored: bool = False) -> ViewReplaced:
    return ViewReplaced.model_validate(_view_data(view), context=STORED if stored else None)


@inverse.register
def _(event: RoutineCreated, before: State) -> Event:
    return RoutineDropped(name=event.name, signature=event.signature)


@inverse.register
def _(event: RoutineDropped, before: State) -> Event:
    return routine_created(_routine(before, event.name, event.signature), stored=True)


@inverse.register
def _(event: RoutineReplaced, before: State) -> Event:
    return routine_replaced(_routine(before, event.name, event.signature), stored=True)


def _routine(before: State, name: str, signature: str) -> Routine:
    from events.objects import routine_key

    routine = before.routines.get(routine_key(name, signature))
    if routine is None:
        raise InvalidChange(f"routine {routine_key(name, signature)} does not exist")
    return routine


def _routine_data(routine: Routine) -> dict[str, object]:
    return {
        "name": routine.name,
        "kind": routine.kind,
        "signature": routine.signature,
        "definitions": dict(routine.definitions),
        "uses": list(routine.uses),
    }


def routine_created(routine: Routine, *, stored: bool = False) -> RoutineCreated:
    """The event that makes ``routine``; ``stored``: built as the log's own, else checked as input is (import)."""
    return RoutineCreated.model_validate(_routine_data(routine), context=STORED if stored else None)


def routine_replaced(routine: Routine, *, stored: bool = False) -> RoutineReplaced:
    return RoutineReplaced.model_validate(_routine_data(routine), context=STORED if stored else None)


@inverse.register
def _(event: TriggerCreated, before: State) -> Event:
    return TriggerDropped(name=event.name, table=event.table)


@inverse.register
def _(event: TriggerDropped, before: State) -> Event:
    return trigger_created(_trigger(before, event.name, event.table), stored=True)


@inverse.register
def _(event: TriggerReplaced, before: State) -> Event:
    return trigger_replaced(_trigger(before, event.name, event.table), stored=True)


def _trigger(before: State, name: str, table: str) -> Trigger:
    from events.objects import trigger_key

    trigger = before.triggers.get(trigger_key(table, name))
    if trigger is None:
        raise InvalidChange(f"trigger {name!r} on {table!r} does not exist")
    return trigger


def _trigger_data(trigger: Trigger) -> dict[str, object]:
    return {
        "name": trigger.name,
        "table": trigger.table,
        "definitions": dict(trigger.definitions),
        "uses": list(trigger.uses),
    }


def trigger_created(trigger: Trigger, *, stored: bool = False) -> TriggerCreated:
    """The event that makes ``trigger``; ``stored``: built as the log's own, else checked as input is (import)."""
    return TriggerCreated.model_validate(_trigger_data(trigger), context=STORED if stored else None)


def trigger_replaced(trigger: Trigger, *, stored: bool = False) -> TriggerReplaced:
    return TriggerReplaced.model_validate(_trigger_data(trigger), context=STORED if stored else None)


@inverse.register
def _(event: SqlRun, before: State) -> Event:
    if event.backward is None:
        what = f" ({event.description})" if event.description else ""
        raise Irreversible(f"the data step{what} has no backward statements: it cannot be undone")
    # ``backward: {}`` is nothing to undo anywhere: going back runs nothing on each dialect it ran on
    forward = event.backward or {dialect: () for dialect in event.forward}
    # built as the log's own: its statements were judged when the step came in
    return SqlRun.model_validate(
        {"forward": forward, "backward": event.forward, "description": event.description}, context=STORED
    )


@inverse.register(TagCreated)
@inverse.register(MigrationApplied)
@inverse.register(MigrationFaked)
@inverse.register(MigrationFailed)
@inverse.register(DriftFound)
@inverse.register(DatabaseRegistered)
@inverse.register(DatabaseChanged)
@inverse.register(DatabaseRetired)
@inverse.register(RolloutHalted)
@inverse.register(RolloutResumed)
@inverse.register(TokenCreated)
@inverse.register(TokenRevoked)
@inverse.register(ApprovalGiven)
@inverse.register(ApprovalsRequired)
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
        try:
            undo = inverse(r.event, state)
        except Irreversible as exc:
            raise Irreversible(f"cannot go back past v{r.version} ({r.event.type}): {exc.reason}") from None
        if undo is not None:
            back.append(Change(undo, r.version, True))
        apply_event(r.event, state)
    back.reverse()
    return va, vb, back


@dataclass
class _Taken:
    """What a revert takes away or renames back, by identity (a lineage's), as the changeset left it."""

    tables: set[int] = field(default_factory=set)
    """Tables the changeset created: the revert drops them."""
    renamed_tables: set[int] = field(default_factory=set)
    columns: set[int] = field(default_factory=set)
    """Columns the changeset added or renamed: the revert drops them or gives them their old names."""
    altered: dict[int, set[str]] = field(default_factory=dict)
    """Column -> the attributes the changeset changed: the revert sets them back."""
    enums: set[str] = field(default_factory=set)
    domains: set[str] = field(default_factory=set)


def _column_name(lineage: Lineage, cid: int, event: Event) -> str:
    """The column's name after ``event`` (the one it dropped, if it dropped it)."""
    for (tid, name), column in lineage.column_ids.items():
        if column == cid:
            return f"{_table_name(lineage, tid, event)}.{name}"
    return f"{getattr(event, 'table', '?')}.{getattr(event, 'column', '?')}"


def _table_name(lineage: Lineage, tid: int, event: Event) -> str:
    return next((t for t, i in lineage.table_ids.items() if i == tid), getattr(event, "table", "?"))


def _dependency(event: Event, touched: Touched, taken: _Taken, lineage: Lineage) -> str | None:
    """What a later event uses that the revert takes away or renames back (None: nothing)."""
    for cid in sorted(touched.columns & taken.columns):
        return f"column {_column_name(lineage, cid, event)}"
    for tid in sorted(touched.tables & taken.tables):
        return f"table {_table_name(lineage, tid, event)}"
    for tid in sorted((touched.tables - {touched.own}) & taken.renamed_tables):
        return f"the name of table {_table_name(lineage, tid, event)}"  # a reference to it by its new name
    if isinstance(event, ColumnAltered):
        for cid in sorted(touched.columns & taken.altered.keys()):
            same = sorted(taken.altered[cid] & event.changes().keys())
            if same:
                return f"{', '.join(same)} of column {_column_name(lineage, cid, event)}"
    for name in sorted(touched.enums & taken.enums):
        return f"enum type {name}"
    for name in sorted(touched.enums & taken.domains):
        return f"domain or view {name}"
    return None


def _take(event: Event, touched: Touched, taken: _Taken) -> None:
    if isinstance(event, TableCreated):
        taken.tables |= touched.tables
    elif isinstance(event, TableRenamed):
        taken.renamed_tables |= touched.tables
    elif isinstance(event, (ColumnAdded, ColumnRenamed)):
        taken.columns |= touched.columns
    elif isinstance(event, ColumnAltered):
        for cid in touched.columns:
            taken.altered.setdefault(cid, set()).update(event.changes().keys())
    elif isinstance(event, (EnumCreated, EnumValueAdded)):
        taken.enums.add(event.name)  # dropped (the value taken away) by the revert
    elif isinstance(event, (DomainCreated, ViewCreated)):
        taken.domains.add(event.name)


def _applies(undo: Sequence[Event], state: State) -> InvalidChange | None:
    trial = state.copy()
    try:
        for event in undo:
            apply_event(event, trial)
    except InvalidChange as exc:
        return exc
    return None


def revert_changeset(recorded: Sequence[RecordedEvent], changeset_id: str) -> list[Event]:
    """The events that undo one changeset, if no later change depends on it.

    ``recorded`` is the whole stream up to its head, in order. Each inverse is computed from the state
    before the event it undoes (it needs the old definitions); together they must apply to the head, and
    no later event may use what they take away or rename back (a later index on a renamed column, a later
    foreign key to a created table). Later changes that touched the same table in other ways stay.
    Raises InvalidChange naming the later events it would break, and what each depends on.
    """
    lineage = Lineage()
    state = State()
    undo: list[Event] = []
    taken = _Taken()
    seen = False
    blockers: list[str] = []
    for r in recorded:
        touched = lineage.step(r.event)
        if r.changeset_id == changeset_id:
            seen = True
            back = inverse(r.event, state)
            if back is not None:
                undo.append(back)
            _take(r.event, touched, taken)
        elif seen:
            on = _dependency(r.event, touched, taken, lineage)
            if on is not None:
                blockers.append(f"v{r.version} {r.event.type} uses {on}")
        apply_event(r.event, state)
    if not seen:
        raise InvalidChange(f"no changeset {changeset_id!r} in this stream")
    undo.reverse()
    if not blockers:
        failed = _applies(undo, state)
        if failed is not None:
            blockers.append(_breaker(undo, recorded, changeset_id, failed))
    if blockers:
        shown = ", ".join(blockers[:5]) + (f" and {len(blockers) - 5} more" if len(blockers) > 5 else "")
        raise InvalidChange(f"cannot revert changeset {changeset_id}: later changes depend on it: {shown}")
    return undo


def _breaker(undo: Sequence[Event], recorded: Sequence[RecordedEvent], changeset_id: str, failed: InvalidChange) -> str:
    """The first later event after which ``undo`` no longer applies, and why (it applied right after the
    changeset: it is that changeset's exact inverse)."""
    state = State()
    seen = False
    for r in recorded:
        apply_event(r.event, state)
        if r.changeset_id == changeset_id:
            seen = True
        elif seen:
            exc = _applies(undo, state)
            if exc is not None:
                return f"v{r.version} {r.event.type} ({exc.reason})"
    return f"the head ({failed.reason})"


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


class FillNeeded(InvalidChange):
    """NOT NULL columns without a default added to tables that exist: their rows need a value (``fills``)."""

    def __init__(self, columns: list[tuple[str, str]]):
        self.columns = columns
        shown = ", ".join(f"{t}.{c}" for t, c in columns)
        hints = " ".join(f"--default {t}.{c}=EXPR" for t, c in columns)
        super().__init__(f"NOT NULL column(s) without a default added to existing tables: {shown}; give {hints}")


Fills = dict[tuple[str, str], str]


def _rebuilt(before: Table, after: Table) -> set[str]:
    """Columns that must be dropped and added again: generated (or no longer) or with another expression,
    which no column_altered can say."""
    return {
        col.name
        for col in after.columns
        if (was := before.column(col.name)) is not None and was.generated != col.generated
    }


def _index_uses(index: Index, table: Table, columns: set[str]) -> bool:
    return bool(columns) and bool(index_columns(index, table) & columns)


def _constraint_uses(
    constraint_columns: tuple[str, ...], expression: str | None, table: Table, columns: set[str]
) -> bool:
    if not columns:
        return False
    used = set(constraint_columns)
    if expression is not None:
        used |= expression_columns(expression, table)
    return bool(used & columns)


def _enum_values(name: str, old: tuple[str, ...], new: tuple[str, ...]) -> list[Event]:
    """Value changes that turn enum ``old`` into ``new`` in order: new values added, values gone (or out of
    place) dropped, the out-of-place ones added back where they go. The longest run of values both keep in
    order stays."""
    keep = _common(old, new)
    placed = set(keep)
    current = list(old)
    out: list[Event] = []

    def add(value: str) -> None:
        at = new.index(value)
        following = next((v for v in new[at + 1 :] if v in placed), None)
        out.append(EnumValueAdded(name=name, value=value, before=following))
        current.insert(current.index(following) if following is not None else len(current), value)
        placed.add(value)

    for value in new:
        if value not in old:
            add(value)
    for value in old:
        if value not in keep:
            out.append(EnumValueDropped(name=name, value=value))
            current.remove(value)
    for value in new:
        if value in old and value not in keep:
            add(value)
    assert tuple(current) == new
    return out


def _common(a: tuple[str, ...], b: tuple[str, ...]) -> list[str]:
    """The longest common subsequence of two short sequences (enum values)."""
    lengths = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) - 1, -1, -1):
        for j in range(len(b) - 1, -1, -1):
            lengths[i][j] = lengths[i + 1][j + 1] + 1 if a[i] == b[j] else max(lengths[i + 1][j], lengths[i][j + 1])
    out: list[str] = []
    i = j = 0
    while i < len(a) and j < len(b):
        if a[i] == b[j]:
            out.append(a[i])
            i, j = i + 1, j + 1
        elif lengths[i + 1][j] >= lengths[i][j + 1]:
            i += 1
        else:
            j += 1
    return out


def _enum_changes(old: Schema, new: Schema) -> list[Event]:
    """Enum types created and their values changed: first, before any table uses them."""
    out: list[Event] = []
    for name, enum in sorted(new.enums.items()):
        was = old.enums.get(name)
        if was is None:
            out.append(EnumCreated(name=name, values=enum.values))
        elif was.values != enum.values:
            out.extend(_enum_values(name, was.values, enum.values))
    return out


def _enum_drops(old: Schema, new: Schema) -> list[Event]:
    """Enum types that go: last, when no column uses them any more."""
    return [EnumDropped(name=name) for name in sorted(old.enums) if name not in new.enums]


def _domain_changes(old: Schema, new: Schema) -> list[Event]:
    """Domains created (after the enum types they may be over, before any table uses them); a domain whose
    definition changed is made again (dropped first by _domain_drops_changed)."""
    had = domains_of(old)
    return [domain_created(d) for name, d in sorted(domains_of(new).items()) if had.get(name) != d]


def _domain_drops_changed(old: Schema, new: Schema) -> list[Event]:
    """Domains whose definition changed, dropped to be made again (refused while a column uses one)."""
    now = domains_of(new)
    return [DomainDropped(name=n) for n, d in sorted(domains_of(old).items()) if n in now and now[n] != d]


def _domain_drops(old: Schema, new: Schema) -> list[Event]:
    """Domains that go: last but the enum types, when no column uses them any more."""
    now = domains_of(new)
    return [DomainDropped(name=name) for name in sorted(domains_of(old)) if name not in now]


def view_order(views: dict[str, View]) -> list[str]:
    """The views' names, each after the views it reads (then by name)."""
    done: list[str] = []
    seen: set[str] = set()

    def visit(name: str, path: frozenset[str]) -> None:
        if name in seen or name in path:
            return
        for used in sorted(views[name].uses):
            if used in views:
                visit(used, path | {name})
        seen.add(name)
        done.append(name)

    for name in sorted(views):
        visit(name, frozenset())
    return done


def _view_drops(old: Schema, new: Schema) -> list[Event]:
    """Views that go or whose kind changes: first of all (before what they read goes), readers first."""
    now = views_of(new)
    was = views_of(old)
    gone = [n for n in view_order(was) if n not in now or now[n].materialized != was[n].materialized]
    return [ViewDropped(name=name) for name in reversed(gone)]


def _view_changes(old: Schema, new: Schema) -> list[Event]:
    """Views made (or made again) and views whose definitions changed: last of all, each after what it
    reads, as the new schema has them."""
    was = views_of(old)
    out: list[Event] = []
    for name in view_order(views_of(new)):
        view = views_of(new)[name]
        before = was.get(name)
        if before is None or before.materialized != view.materialized:
            out.append(view_created(view))
        elif before != view:
            out.append(view_replaced(view))
    return out


def routine_order(routines: dict[str, Routine]) -> list[str]:
    """The routines' keys, each after the routines it uses (then functions before aggregates, then by key)."""
    by_name: dict[str, list[str]] = {}
    for key, routine in routines.items():
        by_name.setdefault(routine.name, []).append(key)
    done: list[str] = []
    seen: set[str] = set()

    def visit(key: str, path: frozenset[str]) -> None:
        if key in seen or key in path:
            return
        for used in sorted(routines[key].uses):
            for other in sorted(by_name.get(used, ())):
                visit(other, path | {key})
        seen.add(key)
        done.append(key)

    for key in sorted(routines, key=lambda k: (routines[k].kind == "aggregate", k)):
        visit(key, frozenset())
    return done


def _trigger_drops(old: Schema, new: Schema) -> list[Event]:
    """Triggers that go: first of all (before their tables and the routines they run go)."""
    now = triggers_of(new)
    return [TriggerDropped(name=t.name, table=t.table) for k, t in sorted(triggers_of(old).items()) if k not in now]


def _routine_drops(old: Schema, new: Schema) -> list[Event]:
    """Routines that go or whose kind changes: after the views and triggers that go, users first."""
    now = routines_of(new)
    was = routines_of(old)
    gone = [k for k in routine_order(was) if k not in now or now[k].kind != was[k].kind]
    return [RoutineDropped(name=was[k].name, signature=was[k].signature) for k in reversed(gone)]


def _routine_changes(old: Schema, new: Schema) -> list[Event]:
    """Routines made (or made again) and replaced: after the tables, before the views (which may use them)."""
    was = routines_of(old)
    out: list[Event] = []
    for key in routine_order(routines_of(new)):
        routine = routines_of(new)[key]
        before = was.get(key)
        if before is None or before.kind != routine.kind:
            out.append(routine_created(routine))
        elif before != routine:
            out.append(routine_replaced(routine))
    return out


def _trigger_changes(old: Schema, new: Schema) -> list[Event]:
    """Triggers made and replaced: last of all the objects (their tables and routines exist by then)."""
    was = triggers_of(old)
    out: list[Event] = []
    for key, trigger in sorted(triggers_of(new).items()):
        before = was.get(key)
        if before is None:
            out.append(trigger_created(trigger))
        elif before != trigger:
            out.append(trigger_replaced(trigger))
    return out


def _extension_changes(old: Schema, new: Schema) -> list[Event]:
    """Extensions made (or made again elsewhere): first of all, before the types and tables that use them."""
    had = extensions_of(old)
    out: list[Event] = []
    for name, extension in sorted(extensions_of(new).items()):
        if had.get(name) != extension:
            if name in had:
                out.append(ExtensionDropped(name=name))
            out.append(ExtensionCreated(name=name, schema_name=extension.schema_name))
    return out


def _extension_drops(old: Schema, new: Schema) -> list[Event]:
    """Extensions that go: last of all."""
    now = extensions_of(new)
    return [ExtensionDropped(name=name) for name in sorted(extensions_of(old)) if name not in now]


def _drops(old: Schema, new: Schema) -> list[Event]:
    """Foreign keys, indexes, constraints and primary keys that go or change (or use a column that is
    rebuilt); then columns; then tables."""
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
        rebuilt = _rebuilt(table, after)
        for c in table.constraints:
            if c.kind == "foreign_key" and after.constraint(c.name) == c:
                if _constraint_uses(c.columns, None, table, rebuilt):
                    out.append(ConstraintDropped(table=name, name=c.name))
            elif c.kind != "foreign_key" and (
                after.constraint(c.name) != c or _constraint_uses(c.columns, c.expression, table, rebuilt)
            ):
                out.append(ConstraintDropped(table=name, name=c.name))
        for i in table.indexes:
            if after.index(i.name) != i or _index_uses(i, table, rebuilt):
                out.append(IndexDropped(table=name, name=i.name))
        if table.primary_key and table.primary_key != after.primary_key:
            out.append(PrimaryKeySet(table=name, columns=()))
    for name in sorted(old.tables, key=lambda n: (old.tables[n].partition_of is None, n)):  # partitions first
        if name not in new.tables:
            out.append(TableDropped(table=name))
    return out


def _creations(old: Schema, new: Schema, fills: Fills) -> list[Event]:
    out: list[Event] = []
    missing: list[tuple[str, str]] = []
    for name, table in sorted(new.tables.items(), key=lambda t: (t[1].partition_of is not None, t[0])):
        before = old.tables.get(name)
        if before is None:
            out.append(
                TableCreated(
                    table=name,
                    columns=table.columns,
                    primary_key=table.primary_key,
                    comment=table.comment,
                    primary_key_name=table.primary_key_name,
                    partition_by=table.partition_by,
                    partition_of=table.partition_of,
                )
            )
            continue
        for col in sorted(table.columns, key=lambda c: c.generated is not None):  # what they compute from first
            if before.column(col.name) is None:
                fill = fills.get((name, col.name)) if needs_fill(col) else None
                if needs_fill(col) and fill is None:
                    missing.append((name, col.name))
                    continue
                out.append(ColumnAdded(table=name, column=col, fill=fill))
    if missing:
        raise FillNeeded(missing)
    return out


def _column_drops(old: Schema, new: Schema) -> list[Event]:
    """After the creations, so that a table whose columns are all replaced never goes empty."""
    out: list[Event] = []
    for name, table in sorted(old.tables.items()):
        after = new.tables.get(name)
        if after is None:
            continue
        for col in sorted(table.columns, key=lambda c: c.generated is None):  # generated ones first
            if after.column(col.name) is None:
                out.append(ColumnDropped(table=name, column=col.name))
    return out


def _rebuilds(old: Schema, new: Schema, fills: Fills) -> list[Event]:
    """Generated columns whose expression (or kind) changed: dropped and added again (they hold no data of
    their own; the indexes and constraints on them were dropped before and come back after)."""
    out: list[Event] = []
    missing: list[tuple[str, str]] = []
    for name, table in sorted(new.tables.items()):
        before = old.tables.get(name)
        if before is None:
            continue
        for col in table.columns:
            if col.name in _rebuilt(before, table):
                fill = fills.get((name, col.name)) if needs_fill(col) else None
                if needs_fill(col) and fill is None:
                    missing.append((name, col.name))
                    continue
                out.append(ColumnDropped(table=name, column=col.name))
                out.append(ColumnAdded(table=name, column=col, fill=fill))
    if missing:
        raise FillNeeded(missing)
    return out


def _alterations(old: Schema, new: Schema, fills: Fills) -> list[Event]:
    out: list[Event] = []
    for name, table in sorted(new.tables.items()):
        before = old.tables.get(name)
        if before is None:
            continue
        if table.comment != before.comment:
            out.append(TableAltered(table=name, comment=table.comment))
        rebuilt = _rebuilt(before, table)
        for col in table.columns:
            was = before.column(col.name)
            if was is None or was == col or col.name in rebuilt:
                continue
            changes: dict[str, object] = {k: getattr(col, k) for k in ALTERABLE if getattr(was, k) != getattr(col, k)}
            if not (was.identity and col.identity):
                changes.pop("identity_options", None)  # identity itself is not altered in place
            if changes.get("nullable") is False and (name, col.name) in fills:
                changes["fill"] = fills[(name, col.name)]
            if changes:
                out.append(_altered(name, col.name, changes))
        if table.primary_key and (
            table.primary_key != before.primary_key or table.primary_key_name != before.primary_key_name
        ):
            out.append(PrimaryKeySet(table=name, columns=table.primary_key, name=table.primary_key_name))
    return out


def _indexes_and_constraints(old: Schema, new: Schema) -> list[Event]:
    out: list[Event] = []
    fks: list[Event] = []
    for name, table in sorted(new.tables.items()):
        before = old.tables.get(name)
        rebuilt = _rebuilt(before, table) if before is not None else set()
        for i in table.indexes:
            if before is None or before.index(i.name) != i or _index_uses(i, table, rebuilt):
                out.append(IndexCreated(table=name, index=i))
        for c in table.constraints:
            expression = c.expression if c.kind == "check" else None
            if (
                before is None
                or before.constraint(c.name) != c
                or _constraint_uses(c.columns, expression, table, rebuilt)
            ):
                (fks if c.kind == "foreign_key" else out).append(ConstraintAdded(table=name, constraint=c))
    return out + fks


def schema_diff(old: Schema, new: Schema, renames: Renames | None = None, *, fills: Fills | None = None) -> list[Event]:
    """Events that turn ``old`` into ``new``: renames first (only those given), the triggers, views and routines
    that go (users first), then enum types
    created and their values changed, domains created (or made again), drops (keys, indexes,
    constraints, tables), creations, column drops, generated columns rebuilt, alterations, indexes and
    constraints (foreign keys at the very end), routines made or replaced (each after what it uses), views made
    or replaced, triggers made or replaced, and last the domains and the enum types that go.

    ``fills``: for each NOT NULL column without a default added to a table that exists, (table,
    column) -> the expression its rows get (ColumnAdded.fill); FillNeeded names any missing. Also
    used for columns made NOT NULL (ColumnAltered.fill), where it is optional.

    Each step is a pure function of the two schemas; no rename is ever guessed.
    """
    events, state = _renamed(old, renames or Renames())
    middle = state.to_schema()
    given = fills or {}
    events.extend(_trigger_drops(middle, new))
    events.extend(_view_drops(middle, new))
    events.extend(_routine_drops(middle, new))
    events.extend(_extension_changes(middle, new))
    events.extend(_enum_changes(middle, new))
    events.extend(_domain_drops_changed(middle, new))
    events.extend(_domain_changes(middle, new))
    events.extend(_drops(middle, new))
    events.extend(_creations(middle, new, given))
    events.extend(_column_drops(middle, new))
    events.extend(_rebuilds(middle, new, given))
    events.extend(_alterations(middle, new, given))
    events.extend(_indexes_and_constraints(middle, new))
    events.extend(_routine_changes(middle, new))
    events.extend(_view_changes(middle, new))
    events.extend(_trigger_changes(middle, new))
    events.extend(_domain_drops(middle, new))
    events.extend(_enum_drops(middle, new))
    events.extend(_extension_drops(middle, new))
    return events
