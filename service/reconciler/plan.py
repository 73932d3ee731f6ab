"""Plans from history: the events between a database's marker and its target.

Forward, the recorded events; back, their inverses (projections.diff). Each
statement remembers the event that caused it. Destructive changes are named so
that apply can refuse them without ``--allow-destructive``. What cannot be
planned is refused before anything runs, naming the version: a data step
(``sql_run``) with no SQL for the target's dialect, or one that cannot be undone
when going back past it; an inverse the log's rules now refuse (a name or a
default that was allowed when it was recorded).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import pydantic

from events.aggregate import InvalidChange, State, apply_event
from events.catalog import (
    ColumnAdded,
    ColumnAltered,
    ColumnDropped,
    ColumnRenamed,
    ConstraintAdded,
    DomainCreated,
    Event,
    IndexCreated,
    SqlRun,
    TableCreated,
    TableDropped,
    TableRenamed,
)
from events.envelope import RecordedEvent
from events.expressions import ExpressionError, ExpressionKind, check_expression
from events.model import Column, ColumnType, Constraint, Index, Schema
from projections.diff import Change, changes_between, inverse
from projections.schema import Point, Projector
from service.reconciler import capacity
from service.reconciler.ddl import emit
from service.reconciler.dialects.base import Dialect
from service.reconciler.statements import UnsafeStatement, check_planned


class PlanRefused(ValueError):
    """The plan would send what the reconciler never sends (an expression or a statement that is not what
    it should be): refused before anything runs, naming the event and the object."""


@dataclass(frozen=True)
class Step:
    sql: str
    source_version: int
    """The recorded event this statement makes so (forward) or undoes (backward)."""
    event_type: str
    backward: bool
    kind: str
    """The kind of statement planned (service.reconciler.statements): what the text was proven to be."""


@dataclass(frozen=True)
class Destructive:
    source_version: int
    what: str
    null_check: tuple[str, str] | None = None
    """(table, column): destructive only if the column holds NULLs (checked against the data)."""


@dataclass
class Plan:
    stream: str
    from_version: int
    to_version: int
    steps: list[Step]
    start: Schema
    target: Schema
    events: list[tuple[int, Event]] = field(default_factory=list)
    destructive: list[Destructive] = field(default_factory=list)
    boundaries: list[int] = field(default_factory=list)
    """For each event, how many steps are done once it is done (for resuming)."""

    @property
    def backward(self) -> bool:
        return self.to_version < self.from_version

    @property
    def empty(self) -> bool:
        return self.from_version == self.to_version

    def digest(self) -> str:
        text = "\n".join(f"{s.source_version}\t{s.sql}" for s in self.steps)
        return hashlib.sha256(f"{self.stream}:{self.from_version}:{self.to_version}\n{text}".encode()).hexdigest()


def widens(old: ColumnType, new: ColumnType) -> bool:
    """Can every value of ``old`` be held by ``new``?"""
    if old == new:
        return True
    if not (old.portable and new.portable):
        return False
    ints = ["smallint", "integer", "bigint"]
    if old.name in ints and new.name in ints:
        return ints.index(new.name) >= ints.index(old.name)
    if old.name in ("varchar", "char") and new.name == "text":
        return True
    if old.name in ("varchar", "char") and new.name == "varchar":
        return new.params[0] >= old.params[0]
    if old.name == "real" and new.name == "double":
        return True
    if old.name == "numeric" and new.name == "numeric":
        if not new.params:
            return True
        if not old.params:
            return False
        p1, s1 = old.params[0], old.params[1] if len(old.params) > 1 else 0
        p2, s2 = new.params[0], new.params[1] if len(new.params) > 1 else 0
        return s2 >= s1 and p2 - s2 >= p1 - s1
    return old.name == "timestamp" and new.name == "timestamptz"


def destructive_in(event: Event, before: State, version: int) -> list[Destructive]:
    if isinstance(event, TableDropped):
        return [Destructive(version, f"drop table {event.table} (its rows are lost)")]
    if isinstance(event, ColumnDropped):
        return [Destructive(version, f"drop column {event.table}.{event.column} (its values are lost)")]
    if isinstance(event, ColumnAltered):
        out = []
        column = before.tables[event.table].column(event.column)
        assert column is not None
        changes = event.changes()
        if "type" in changes and not widens(column.type, changes["type"]):
            out.append(
                Destructive(version, f"narrow {event.table}.{event.column} from {column.type} to {changes['type']}")
            )
        if changes.get("nullable") is False and column.nullable and event.fill is None:
            # with a fill, the rows holding NULL get its value first: nothing is refused or lost
            out.append(
                Destructive(
                    version,
                    f"make {event.table}.{event.column} NOT NULL while it holds NULLs",
                    null_check=(event.table, event.column),
                )
            )
        return out
    return []


class _Made:
    """The tables and columns a plan itself creates (followed through renames): dropping or narrowing one
    of them loses nothing the database held before the run (a fresh database brought to a head that
    added a column and dropped it later is not a destructive run)."""

    def __init__(self) -> None:
        self.tables: set[str] = set()
        self.columns: set[tuple[str, str]] = set()

    def holds_only_this_plans(self, event: Event) -> bool:
        if isinstance(event, TableDropped):
            return event.table in self.tables
        if isinstance(event, ColumnDropped | ColumnAltered):
            return event.table in self.tables or (event.table, event.column) in self.columns
        return False

    def follow(self, event: Event) -> None:
        if isinstance(event, TableCreated):
            self.tables.add(event.table)
        elif isinstance(event, TableRenamed):
            if event.table in self.tables:
                self.tables.discard(event.table)
                self.tables.add(event.new_name)
            self.columns = {(event.new_name if t == event.table else t, c) for t, c in self.columns}
        elif isinstance(event, TableDropped):
            self.tables.discard(event.table)
            self.columns = {(t, c) for t, c in self.columns if t != event.table}
        elif isinstance(event, ColumnAdded):
            self.columns.add((event.table, event.column.name))
        elif isinstance(event, ColumnRenamed) and (event.table, event.column) in self.columns:
            self.columns.discard((event.table, event.column))
            self.columns.add((event.table, event.new_name))
        elif isinstance(event, ColumnDropped):
            self.columns.discard((event.table, event.column))


def expressions_in(event: Event) -> list[tuple[str, str, ExpressionKind]]:
    """The SQL expression text an event holds: (what holds it, the text, its kind)."""
    out: list[tuple[str, str, ExpressionKind]] = []

    def column(table: str, col: Column) -> None:
        if col.default is not None:
            out.append((f"{table}.{col.name}", col.default, "default"))
        if col.generated is not None:
            out.append((f"{table}.{col.name} generated", col.generated.expression, "generated"))

    def constraint(table: str, con: Constraint) -> None:
        if con.kind == "check" and con.expression is not None:
            out.append((f"{table} constraint {con.name}", con.expression, "check"))

    def index(table: str, idx: Index) -> None:
        for element in idx.elements:
            if element.expression is not None:
                out.append((f"{table} index {idx.name}", element.expression, "generated"))
        if idx.where is not None:
            out.append((f"{table} index {idx.name} where", idx.where, "check"))

    if isinstance(event, TableCreated):
        for col in event.columns:
            column(event.table, col)
        for con in event.constraints:
            constraint(event.table, con)
        for idx in event.indexes:
            index(event.table, idx)
    elif isinstance(event, ColumnAdded):
        column(event.table, event.column)
        if event.fill is not None:
            out.append((f"{event.table}.{event.column.name} fill", event.fill, "default"))
    elif isinstance(event, ColumnAltered):
        if event.changes().get("default") is not None:
            out.append((f"{event.table}.{event.column}", event.changes()["default"], "default"))
        if event.fill is not None:
            out.append((f"{event.table}.{event.column} fill", event.fill, "default"))
    elif isinstance(event, ConstraintAdded):
        constraint(event.table, event.constraint)
    elif isinstance(event, IndexCreated):
        index(event.table, event.index)
    elif isinstance(event, DomainCreated):
        if event.default is not None:
            out.append((f"domain {event.name}", event.default, "default"))
        for check in event.checks:
            out.append((f"domain {event.name} check {check.name}", check.expression, "check"))
    return out


def _refused(change_version: int, event: Event, backward: bool, problem: str) -> PlanRefused:
    what = f"undo v{change_version}" if backward else f"v{change_version}"
    return PlanRefused(f"{what} ({event.type}): {problem}")


def _why(exc: Exception) -> str:
    """One line for why an inverse could not be made (pydantic's errors are several lines)."""
    if isinstance(exc, pydantic.ValidationError):
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        return f"{where}: {message}" if where else message
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _irreversible(version: int, event: SqlRun) -> PlanRefused:
    what = f" ({event.description})" if event.description else ""
    return _refused(
        version,
        event,
        True,
        f"the data step{what} cannot be undone (its backward is null): a database can go back to version"
        f" {version} at the lowest",
    )


def undo_event(recorded: RecordedEvent, before: State) -> Event | None:
    """The event that undoes ``recorded`` (None: nothing to undo), given the state just before it.

    PlanRefused, naming the version, where there is none: a data step recorded as irreversible, or an
    inverse that the log's rules refuse today (it would make again a name or a default that was allowed
    when the event was recorded). ``migrate`` back and ``revert`` both come here first.
    """
    event = recorded.event
    if isinstance(event, SqlRun):
        if event.backward is None:
            raise _irreversible(recorded.version, event)
        if not event.backward:
            return None  # backward {}: nothing to undo
    try:
        return inverse(event, before)
    except (InvalidChange, ValueError) as exc:  # pydantic's ValidationError is a ValueError
        raise _refused(recorded.version, event, True, f"it cannot be undone: {_why(exc)}") from None


async def _changes(projector: Projector, stream: str, from_version: int, to: Point) -> tuple[int, int, list[Change]]:
    """(from, to, the steps): forward the recorded events; back their inverses, each made by undo_event so
    that a refusal names its version, and refused whole if any step back cannot be undone."""
    va = await projector.resolve(stream, Point(version=from_version))
    vb = await projector.resolve(stream, to)
    if vb >= va:
        return await changes_between(projector, stream, Point(version=va), Point(version=vb))
    recorded = await projector.store.read(stream, after_version=vb, to_version=va)
    for r in reversed(recorded):  # the first a run back would reach is the newest
        if isinstance(r.event, SqlRun) and r.event.backward is None:
            raise _irreversible(r.version, r.event)
    state = await projector.state_at_version(stream, vb)
    back: list[Change] = []
    for r in recorded:
        undo = undo_event(r, state)
        if undo is not None:
            back.append(Change(undo, r.version, True))
        apply_event(r.event, state)
    back.reverse()
    return va, vb, back


def _data_steps_runnable(changes: list[Change], dialect: Dialect) -> None:
    """A data step with no SQL for this dialect refuses the plan before anything runs (its version named):
    the reconciler never guesses how another dialect's SQL would read here."""
    for change in changes:
        event = change.event
        if isinstance(event, SqlRun) and dialect.name not in event.forward:
            given = ", ".join(event.forward) or "none"
            way = "to undo it" if change.backward else "to run"
            raise _refused(
                change.source_version,
                event,
                change.backward,
                f"the data step has no SQL for {dialect.name} {way} (it has SQL for: {given})",
            )


async def make_plan(projector: Projector, stream: str, from_version: int, to: Point, dialect: Dialect) -> Plan:
    """The plan from ``from_version`` (the marker) to the point ``to``, in ``dialect``.

    The log's text is not trusted here (it may have been written behind append's back): every
    expression an event of the plan holds is checked again for this dialect, and every statement is
    proven to be one statement of the kind the event emits. PlanRefused names the first that is not.
    """
    va, vb, changes = await _changes(projector, stream, from_version, to)
    _data_steps_runnable(changes, dialect)
    state = await projector.state_at_version(stream, va)
    capacity.check_plan(dialect, state, changes)  # what the dialect cannot hold: CannotHold, before any DDL
    start = state.to_schema()
    plan = Plan(stream=stream, from_version=va, to_version=vb, steps=[], start=start, target=start)
    after = start
    made = _Made()
    for change in changes:
        before = after  # the state is as the previous event left it
        if not made.holds_only_this_plans(change.event):
            plan.destructive.extend(destructive_in(change.event, state, change.source_version))
        made.follow(change.event)
        apply_event(change.event, state)
        after = state.to_schema()
        for holder, text, expression_kind in expressions_in(change.event):
            try:
                check_expression(text, expression_kind, dialect.name)
            except ExpressionError as exc:
                raise _refused(change.source_version, change.event, change.backward, f"{holder}: {exc}") from None
        for sql in emit(change.event, dialect, before, after):
            try:
                kind = check_planned(dialect.name, sql, change.event.type)
            except UnsafeStatement as exc:
                raise _refused(change.source_version, change.event, change.backward, str(exc)) from None
            plan.steps.append(Step(sql, change.source_version, change.event.type, change.backward, kind))
        plan.events.append((change.source_version, change.event))
        plan.boundaries.append(len(plan.steps))
    plan.target = after
    return plan
