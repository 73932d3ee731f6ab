"""History filters applied row by row, so that a listing streams (``schemalog history``, the API's
events and audit). Without a table or column filter nothing here imports the event catalogue or decodes
an event: rows are judged by their stored fields (the chain's time text sorts as the times do). A table
or column filter follows renames through ``projections.audit.Lineage``, loaded only then.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import orjson

if TYPE_CHECKING:
    from events.catalog import Event
    from events.envelope import RecordedEvent
    from events.store.base import EventRow
    from projections.audit import Lineage


def _chain_time(moment: datetime) -> str:
    """events.envelope.format_time, without importing the envelope (and with it pydantic)."""
    if moment.tzinfo is None:
        raise ValueError("recorded times must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _decode(text: str) -> Event:
    from events.decode import event_from_text

    return event_from_text(text)


@dataclass(frozen=True)
class HistoryFilter:
    table: str | None = None
    column: str | None = None
    actor: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    types: frozenset[str] | None = None


NAMING_TYPES = frozenset(
    {"table_created", "table_dropped", "table_renamed", "column_added", "column_dropped", "column_renamed"}
)
"""The events that change a lineage (the others only read it)."""


class HistorySelection:
    """A history filter applied event by event, in log order, so that a listing can stream.

    Table and column filters follow renames, and find the events of every table (column) that was ever
    so called, before and after its renames. With one (``follows_renames``) the log is read twice: first
    ``learn`` is given every event of each stream listed, in order (the names the tables and columns
    come to have: only the events that name something are decoded), then ``keep`` each again from the
    stream's first. Both in time linear in the log, in memory of the size of the schemas. Without one,
    ``keep`` alone, and no event is decoded.
    """

    def __init__(self, f: HistoryFilter) -> None:
        self.filter = f
        self.follows_renames = f.table is not None
        self.active = f != HistoryFilter()
        """False when nothing is filtered: every event is kept (``keep`` need not be asked)."""
        # the chain's time text sorts as the times do: rows are compared without parsing their times
        self._since = _chain_time(f.since) if f.since is not None else None
        self._until = _chain_time(f.until) if f.until is not None else None
        self._lineages: dict[str, Lineage] = {}
        self._targets: dict[str, tuple[set[int], set[int]]] = {}  # stream -> (tables, columns) so called ever
        self._learned = False
        self._enums: set[str] = set()  # enum types and domains created (a table filter may name one)

    def _lineage(self, stream: str) -> Lineage:
        lineage = self._lineages.get(stream)
        if lineage is None:
            from projections.audit import Lineage  # the catalogue's classes: only for a table or column filter

            lineage = self._lineages[stream] = Lineage()
        return lineage

    def learn(self, row: EventRow) -> None:
        """The first reading (``follows_renames``): one event, in log order."""
        if row.type in NAMING_TYPES:
            self._lineage(row.stream).step(_decode(row.data))
        elif row.type in ("enum_created", "domain_created", "view_created", "routine_created"):
            self._enums.add(str(orjson.loads(row.data)["name"]))

    def _learn_recorded(self, recorded: RecordedEvent) -> None:
        if recorded.event.type in NAMING_TYPES:
            self._lineage(recorded.stream).step(recorded.event)
        elif recorded.event.type in ("enum_created", "domain_created", "view_created", "routine_created"):
            self._enums.add(str(getattr(recorded.event, "name", "")))

    def names(self) -> set[str]:
        """After the first reading: every name a table or an enum type ever had in the streams read."""
        out = set(self._enums)
        for lineage in self._lineages.values():
            out.update(lineage.names_ever())
        return out

    def learned(self) -> None:
        """The first reading is done: what the filter's names ever named is known; ``keep`` may begin."""
        f = self.filter
        for stream, lineage in self._lineages.items():
            tables = lineage.tables_named(f.table) if f.table is not None else set()
            columns = lineage.columns_named(tables, f.column) if f.column is not None else set()
            self._targets[stream] = (tables, columns)
        self._lineages = {}  # identities are given in the same order the second time
        self._learned = True

    def keep(self, row: EventRow) -> bool:
        """Whether a stored row matches (its event decoded only when the lineage needs it)."""
        return self._keep(row.stream, row.actor, row.recorded_at, row.type, lambda: _decode(row.data))

    def keep_recorded(self, recorded: RecordedEvent) -> bool:
        return self._keep(
            recorded.stream,
            recorded.actor,
            _chain_time(recorded.recorded_at),
            recorded.event.type,
            lambda: recorded.event,
        )

    def _keep(self, stream: str, actor: str, recorded_at: str, event_type: str, event: Callable[[], Event]) -> bool:
        f = self.filter
        cheap = (
            (f.actor is None or actor == f.actor)
            and (self._since is None or recorded_at >= self._since)
            and (self._until is None or recorded_at <= self._until)
            and (f.types is None or event_type in f.types)
        )
        if not self.follows_renames:
            return cheap
        if not self._learned:
            raise RuntimeError("a filter that follows renames needs learn() over the log, then learned()")
        if not cheap:
            if event_type in NAMING_TYPES:  # not listed, but the lineage must follow it
                self._lineage(stream).step(event())
            return False
        touch = self._lineage(stream).step(event())
        tables, columns = self._targets.get(stream, (set(), set()))
        # a table's name, or an enum type's: its own events and the columns given its type
        of_enum = f.column is None and f.table in touch.enums
        if not touch.tables & tables and not of_enum:
            return False
        return f.column is None or bool(touch.columns & columns)
