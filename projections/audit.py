"""Who changed what: history filters and blame, following renames.

Tables and columns get a lineage: an identity that survives renames. A history
filter on ``users`` finds the events of every table that was ever called
``users`` (before and after its renames); blame shows, for each column, index
and constraint, who created it and who last changed it, however often it was
renamed since.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from events.catalog import (
    ColumnAdded,
    ColumnAltered,
    ColumnDropped,
    ColumnRenamed,
    ConstraintAdded,
    ConstraintDropped,
    DomainCreated,
    DomainDropped,
    EnumCreated,
    EnumDropped,
    EnumValueAdded,
    EnumValueDropped,
    Event,
    ExtensionCreated,
    ExtensionDropped,
    IndexCreated,
    IndexDropped,
    PrimaryKeySet,
    RoutineCreated,
    RoutineDropped,
    RoutineReplaced,
    TableCreated,
    TableDropped,
    TableRenamed,
    TriggerCreated,
    TriggerDropped,
    TriggerReplaced,
    ViewCreated,
    ViewDropped,
    ViewReplaced,
)
from events.envelope import RecordedEvent, format_time
from events.model import Column, Constraint, Index
from projections.history import HistoryFilter, HistorySelection


@dataclass
class Touched:
    """The identities one event touches."""

    tables: set[int] = field(default_factory=set)
    columns: set[int] = field(default_factory=set)
    own: int | None = None
    """The identity of the event's own table (``tables`` adds tables its foreign keys reference)."""
    enums: set[str] = field(default_factory=set)
    """Enum types and domains the event changes, or whose type it gives a column (neither is ever renamed;
    they share one namespace)."""


ENUM_EVENTS = (
    EnumCreated,
    EnumValueAdded,
    EnumValueDropped,
    EnumDropped,
    DomainCreated,
    DomainDropped,
    ViewCreated,
    ViewReplaced,
    ViewDropped,
    ExtensionCreated,
    ExtensionDropped,
    RoutineCreated,
    RoutineReplaced,
    RoutineDropped,
)
"""The events of the log's named objects beside tables (enum types, domains, views, extensions, routines):
never renamed."""


def _enum_of(column: Column) -> set[str]:
    return {column.type.name} if column.type.is_enum or column.type.is_domain else set()


def _index_names(index: Index) -> list[str]:
    """The names an index uses as columns: its columns, included columns, names in its expressions."""
    from events.aggregate import referenced_names  # its expression parsers: only when an index has expressions

    names = list(index.column_names())
    texts = [e.expression for e in index.elements if e.expression is not None]
    if index.where is not None:
        texts.append(index.where)
    for text in texts:
        names.extend(name for name, _quoted in referenced_names(text))
    return names


class Lineage:
    """Follows table and column identities through an event sequence."""

    def __init__(self) -> None:
        self._next = 0
        self.table_ids: dict[str, int] = {}  # current name -> identity
        self.column_ids: dict[tuple[int, str], int] = {}  # (table identity, current name) -> identity
        self.table_names: dict[int, set[str]] = {}  # identity -> every name it had
        self.column_names: dict[int, set[str]] = {}
        self.column_table: dict[int, int] = {}
        # indexes that keep each step and each lookup independent of the schema's size (history at scale)
        self._columns_of: dict[int, dict[str, int]] = {}  # table identity -> current name -> column identity
        self._tables_called: dict[str, set[int]] = {}  # any name a table ever had -> identities
        self._columns_called: dict[tuple[int, str], set[int]] = {}  # (table identity, any name) -> identities

    def _new(self) -> int:
        self._next += 1
        return self._next

    def _add_column(self, tid: int, name: str) -> int:
        cid = self._new()
        self.column_ids[(tid, name)] = cid
        self.column_names[cid] = {name}
        self.column_table[cid] = tid
        self._columns_of.setdefault(tid, {})[name] = cid
        self._columns_called.setdefault((tid, name), set()).add(cid)
        return cid

    def _columns(self, tid: int, names: Sequence[str]) -> set[int]:
        return {self.column_ids[(tid, n)] for n in names if (tid, n) in self.column_ids}

    def step(self, event: Event) -> Touched:
        """Advance over one (valid) event; return what it touched."""
        touched = Touched()
        if isinstance(event, ENUM_EVENTS):
            touched.enums.add(event.name)
            return touched
        table = getattr(event, "table", None)
        if isinstance(event, TableCreated):
            for column in event.columns:
                touched.enums |= _enum_of(column)
            tid = self._new()
            self.table_ids[event.table] = tid
            self.table_names[tid] = {event.table}
            self._tables_called.setdefault(event.table, set()).add(tid)
            touched.tables.add(tid)
            touched.own = tid
            touched.columns = {self._add_column(tid, c.name) for c in event.columns}
            for constraint in event.constraints:
                self._references(constraint, touched)
            return touched
        if table is None or table not in self.table_ids:
            return touched
        tid = self.table_ids[table]
        touched.tables.add(tid)
        touched.own = tid
        if isinstance(event, TableDropped):
            del self.table_ids[table]
            current = self._columns_of.pop(tid, {})
            touched.columns = set(current.values())
            for name in current:
                del self.column_ids[(tid, name)]
        elif isinstance(event, TableRenamed):
            del self.table_ids[table]
            self.table_ids[event.new_name] = tid
            self.table_names[tid].add(event.new_name)
            self._tables_called.setdefault(event.new_name, set()).add(tid)
        elif isinstance(event, ColumnAdded):
            touched.columns.add(self._add_column(tid, event.column.name))
            touched.enums |= _enum_of(event.column)
        elif isinstance(event, ColumnDropped):
            cid = self.column_ids.pop((tid, event.column), None)
            if cid is not None:
                del self._columns_of[tid][event.column]
                touched.columns.add(cid)
        elif isinstance(event, ColumnRenamed):
            cid = self.column_ids.pop((tid, event.column), None)
            if cid is not None:
                del self._columns_of[tid][event.column]
                self.column_ids[(tid, event.new_name)] = cid
                self._columns_of[tid][event.new_name] = cid
                self.column_names[cid].add(event.new_name)
                self._columns_called.setdefault((tid, event.new_name), set()).add(cid)
                touched.columns.add(cid)
        elif isinstance(event, ColumnAltered):
            touched.columns |= self._columns(tid, [event.column])
            if event.new_type is not None and (event.new_type.is_enum or event.new_type.is_domain):
                touched.enums.add(event.new_type.name)
        elif isinstance(event, IndexCreated):
            touched.columns |= self._columns(tid, _index_names(event.index))
        elif isinstance(event, ConstraintAdded):
            touched.columns |= self._columns(tid, event.constraint.columns)
            self._references(event.constraint, touched)
        elif isinstance(event, PrimaryKeySet):
            touched.columns |= self._columns(tid, event.columns)
        return touched

    def _references(self, constraint: Constraint, touched: Touched) -> None:
        ref = constraint.references
        if ref is not None and ref.table in self.table_ids:
            target = self.table_ids[ref.table]
            touched.tables.add(target)
            touched.columns |= self._columns(target, ref.columns)

    def names_ever(self) -> Iterable[str]:
        """Every name a table has had."""
        return self._tables_called.keys()

    def tables_named(self, name: str) -> set[int]:
        """Every table that was ever called ``name``."""
        return set(self._tables_called.get(name, ()))

    def columns_named(self, tables: set[int], name: str) -> set[int]:
        """Every column of ``tables`` that was ever called ``name``."""
        found: set[int] = set()
        for tid in tables:
            found |= self._columns_called.get((tid, name), set())
        return found


def filter_history(events: Sequence[RecordedEvent], f: HistoryFilter) -> list[RecordedEvent]:
    """The events matching every given filter; table and column filters follow renames.

    ``events`` must be whole streams in version order (lineage needs every event).
    """
    selection = HistorySelection(f)
    if selection.follows_renames:
        for recorded in events:
            selection._learn_recorded(recorded)
        selection.learned()
    return [recorded for recorded in events if selection.keep_recorded(recorded)]


# --------------------------------------------------------------------------- blame


@dataclass(frozen=True)
class Mark:
    """Who did something to an object, when, in which version, why."""

    version: int
    actor: str
    recorded_at: datetime
    message: str
    changeset_id: str
    event_type: str

    def public(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "actor": self.actor,
            "recorded_at": format_time(self.recorded_at),
            "message": self.message,
            "changeset_id": self.changeset_id,
            "type": self.event_type,
        }


def _mark(recorded: RecordedEvent) -> Mark:
    return Mark(
        recorded.version,
        recorded.actor,
        recorded.recorded_at,
        recorded.message,
        recorded.changeset_id,
        recorded.event.type,
    )


@dataclass
class BlameLine:
    kind: str  # column, index, constraint, primary_key; enum, domain, view (the blame of such an object)
    name: str
    created: Mark
    changed: Mark
    names: list[str]
    """Earlier names, oldest first (renames)."""

    def public(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "created": self.created.public(),
            "last_changed": self.changed.public(),
            "former_names": self.names,
        }


def blame(events: Sequence[RecordedEvent], table: str) -> list[BlameLine] | None:
    """Blame for ``table`` after ``events`` (one stream, from version 1); None if it does not exist then."""
    lineage = Lineage()
    created: dict[int, Mark] = {}
    changed: dict[int, Mark] = {}
    history: dict[int, list[str]] = {}
    other: dict[tuple[int, str, str], tuple[Mark, Mark]] = {}  # (table id, kind, name) -> marks
    types: dict[str, tuple[str, Mark, Mark]] = {}  # enum type or domain name -> (kind, created, last changed)
    for recorded in events:
        event = recorded.event
        mark = _mark(recorded)
        touched = lineage.step(event)
        if isinstance(event, ENUM_EVENTS):
            kind = "domain" if isinstance(event, (DomainCreated, DomainDropped)) else "enum"
            if isinstance(event, (ViewCreated, ViewReplaced, ViewDropped)):
                kind = "view"
            if isinstance(event, (ExtensionCreated, ExtensionDropped)):
                kind = "extension"
            if isinstance(event, (RoutineCreated, RoutineReplaced)):
                kind = event.kind
            if isinstance(event, RoutineDropped):
                continue  # another routine of that name may stay; blame names the last change of any
            if isinstance(event, (EnumDropped, DomainDropped, ViewDropped, ExtensionDropped)):
                types.pop(event.name, None)
            else:
                first = types[event.name][1] if event.name in types else mark
                types[event.name] = (kind, first, mark)
            continue
        for cid in touched.columns:
            if lineage.column_table.get(cid) != touched.own:
                continue  # a referenced column of another table: not changed by this event
            if isinstance(event, (TableCreated, ColumnAdded)):
                created.setdefault(cid, mark)
                changed[cid] = mark
                history.setdefault(cid, [])
            elif isinstance(event, (ColumnRenamed, ColumnAltered)):
                changed[cid] = mark
                if isinstance(event, ColumnRenamed):
                    history[cid].append(event.column)
        tid = touched.own
        if tid is None:
            continue
        if isinstance(event, TableCreated):
            for index in event.indexes:
                other[(tid, "index", index.name)] = (mark, mark)
            for constraint in event.constraints:
                other[(tid, "constraint", constraint.name)] = (mark, mark)
            if event.primary_key:
                other[(tid, "primary_key", "")] = (mark, mark)
        elif isinstance(event, IndexCreated):
            other[(tid, "index", event.index.name)] = (mark, mark)
        elif isinstance(event, IndexDropped):
            other.pop((tid, "index", event.name), None)
        elif isinstance(event, ConstraintAdded):
            other[(tid, "constraint", event.constraint.name)] = (mark, mark)
        elif isinstance(event, ConstraintDropped):
            other.pop((tid, "constraint", event.name), None)
        elif isinstance(event, (TriggerCreated, TriggerReplaced)):
            first = other.get((tid, "trigger", event.name), (mark, mark))[0]
            other[(tid, "trigger", event.name)] = (first, mark)
        elif isinstance(event, TriggerDropped):
            other.pop((tid, "trigger", event.name), None)
        elif isinstance(event, PrimaryKeySet):
            key = (tid, "primary_key", "")
            if event.columns:
                first = other.get(key, (mark, mark))[0]
                other[key] = (first, mark)
            else:
                other.pop(key, None)
    tid = lineage.table_ids.get(table)
    if tid is None:
        if table in types:  # an enum type or a domain: who made it and who changed it last
            kind, first, last = types[table]
            return [BlameLine(kind, table, first, last, [])]
        return None
    lines: list[BlameLine] = []
    for (t, name), cid in lineage.column_ids.items():
        if t == tid:
            lines.append(BlameLine("column", name, created[cid], changed[cid], history.get(cid, [])))
    for (t, kind, name), (first, last) in other.items():
        if t == tid:
            lines.append(BlameLine(kind, name or "primary key", first, last, []))
    return lines
