"""The fleet as the log says it is: registered databases, what each one reached, and the rollouts.

A pure fold, fed event by event in log order (``FleetView.apply``), so that the daemon keeps it up to
date from one cursor over the whole log, and ``schemalog status`` builds it from a scan:

- the fleet stream (``events.fleet.FLEET_STREAM``): databases registered, changed, retired; rollouts
  halted and resumed;
- each database's own stream (``db:NAME``): the reconciler's outcomes, from which the version a
  database is at (as the log knows it), its last outcome and its current drift follow;
- every other stream's head version, so that a target of ``head`` resolves without another read.

Rollouts go wave by wave: a database of wave ``w`` may move to version ``v`` of its stream only when
every active database of that stream in a lower wave is at ``v`` (:meth:`FleetView.gate`), or when the
rollout to ``v`` was resumed by hand after a halt.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from events.catalog import DriftFound, MigrationApplied, MigrationFailed, MigrationFaked
from events.envelope import RecordedEvent
from events.fleet import (
    FLEET_STREAM,
    DatabaseChanged,
    DatabaseRegistered,
    DatabaseRetired,
    RolloutHalted,
    RolloutResumed,
)

OUTCOME_PREFIX = "db:"


class FleetError(ValueError):
    """A fleet event that does not fit the fleet as it is (an unknown or a duplicate name)."""


@dataclass(frozen=True)
class FleetDatabase:
    name: str
    url: str
    stream: str
    target: str = "head"
    wave: int = 0
    allow_destructive: bool = False
    drift: str = "report"
    drift_interval: float = 300.0
    approvals: int = 0
    """Approvals each changeset needs before it is applied here (service/app/approvals.py)."""
    changed_by: str = ""
    changed_at: datetime | None = None
    fleet_version: int = 0
    """The fleet stream's version that last changed this entry."""

    def public(self) -> dict[str, Any]:
        shown: dict[str, Any] = {
            "name": self.name,
            "url": self.url,
            "stream": self.stream,
            "target": self.target,
            "wave": self.wave,
            "allow_destructive": self.allow_destructive,
            "drift": self.drift,
            "drift_interval": self.drift_interval,
            "changed_by": self.changed_by,
            "changed_at": self.changed_at.isoformat() if self.changed_at else None,
        }
        if self.approvals:
            shown["approvals"] = self.approvals
        return shown


@dataclass
class DatabaseRecord:
    """What a database's outcome stream says."""

    version: int = 0
    """The outcome stream's version (an outcome is appended expecting it)."""
    at: int | None = None
    """The schema version the last applied or faked outcome left it at (None: never migrated)."""
    last_type: str | None = None
    last_detail: str | None = None
    last_to: int | None = None
    last_time: datetime | None = None
    last_replica: str | None = None
    drift: tuple[str, ...] = ()
    """The drift last recorded (empty: none, or recorded as gone)."""
    failed_to: int | None = None
    """The target of the last failed run, while no later run succeeded."""


@dataclass
class FleetView:
    databases: dict[str, FleetDatabase] = field(default_factory=dict)
    retired: dict[str, FleetDatabase] = field(default_factory=dict)
    records: dict[str, DatabaseRecord] = field(default_factory=dict)
    heads: dict[str, int] = field(default_factory=dict)
    tags: dict[str, dict[str, int]] = field(default_factory=dict)
    halts: dict[tuple[str, int], RolloutHalted] = field(default_factory=dict)
    resumed: set[tuple[str, int]] = field(default_factory=set)
    fleet_version: int = 0
    position: int = 0
    """The global position of the last event folded."""

    # ------------------------------------------------------------------ folding

    _gates: dict[tuple[str, int, int], tuple[bool, str | None]] = field(default_factory=dict, repr=False)

    def apply(self, recorded: RecordedEvent) -> None:
        self.position = max(self.position, recorded.position)
        if self._gates:
            self._gates.clear()  # (every answer may change with any event)
        stream = recorded.stream
        if stream == FLEET_STREAM:
            self.fleet_version = recorded.version
            self._fleet(recorded)
        elif stream.startswith(OUTCOME_PREFIX):
            self._outcome(stream[len(OUTCOME_PREFIX) :], recorded)
        else:
            self.heads[stream] = recorded.version
            tag = getattr(recorded.event, "tag", None)
            if recorded.event.type == "tag_created" and isinstance(tag, str):
                self.tags.setdefault(stream, {})[tag] = int(getattr(recorded.event, "version", 0))

    def _fleet(self, recorded: RecordedEvent) -> None:
        event = recorded.event
        if isinstance(event, DatabaseRegistered):
            self.databases[event.name] = FleetDatabase(
                name=event.name,
                url=event.url,
                stream=event.stream,
                target=event.target,
                wave=event.wave,
                allow_destructive=event.allow_destructive,
                drift=event.drift,
                drift_interval=event.drift_interval,
                approvals=event.approvals,
                changed_by=recorded.actor,
                changed_at=recorded.recorded_at,
                fleet_version=recorded.version,
            )
            self.retired.pop(event.name, None)
        elif isinstance(event, DatabaseChanged) and event.name in self.databases:
            changed: Any = event.changes()
            self.databases[event.name] = replace(
                self.databases[event.name],
                **changed,
                changed_by=recorded.actor,
                changed_at=recorded.recorded_at,
                fleet_version=recorded.version,
            )
        elif isinstance(event, DatabaseRetired) and event.name in self.databases:
            self.retired[event.name] = self.databases.pop(event.name)
        elif isinstance(event, RolloutHalted):
            self.halts[(event.stream, event.to_version)] = event
            self.resumed.discard((event.stream, event.to_version))
        elif isinstance(event, RolloutResumed):
            self.resumed.add((event.stream, event.to_version))

    def _outcome(self, name: str, recorded: RecordedEvent) -> None:
        record = self.records.setdefault(name, DatabaseRecord())
        record.version = recorded.version
        event = recorded.event
        if not isinstance(event, MigrationApplied | MigrationFaked | MigrationFailed | DriftFound):
            return
        record.last_type = event.type
        record.last_detail = event.detail
        record.last_to = event.to_version
        record.last_time = recorded.recorded_at
        record.last_replica = event.replica
        if isinstance(event, MigrationApplied | MigrationFaked):
            record.at = event.to_version
            record.drift = ()
            record.failed_to = None
        elif isinstance(event, MigrationFailed):
            record.failed_to = event.to_version
        else:
            record.drift = event.drift

    # ------------------------------------------------------------------ checks for new fleet events

    def check(self, event: Any) -> None:
        """Raise FleetError if ``event`` does not fit the fleet as folded so far."""
        if isinstance(event, DatabaseRegistered):
            if event.name in self.databases:
                raise FleetError(f"database {event.name!r} is already registered (change it with db set)")
            for other in self.databases.values():
                if other.url == event.url:
                    raise FleetError(f"database {other.name!r} already has this URL")
        elif isinstance(event, DatabaseChanged | DatabaseRetired) and event.name not in self.databases:
            hint = " (it was retired)" if event.name in self.retired else ""
            known = ", ".join(sorted(self.databases)) or "none"
            raise FleetError(f"no database {event.name!r} in the fleet{hint}; registered: {known}")
        elif isinstance(event, RolloutResumed) and (event.stream, event.to_version) not in self.halts:
            halted = ", ".join(f"{s} v{v}" for s, v in sorted(self.halts) if (s, v) not in self.resumed) or "none"
            raise FleetError(f"no halted rollout of {event.stream!r} to version {event.to_version}; halted: {halted}")

    # ------------------------------------------------------------------ questions

    def resolve(self, db: FleetDatabase) -> int | None:
        """The version ``db.target`` names in its stream now (None: a tag that does not exist yet)."""
        text = db.target
        head = self.heads.get(db.stream, 0)
        if text.lower() == "head":
            return head
        digits = text[1:] if text[:1] in "vV" else text
        if digits.isdigit():
            return int(digits) if int(digits) <= head else None  # not in the log yet: wait for it
        return self.tags.get(db.stream, {}).get(text)

    def gate(self, db: FleetDatabase, version: int) -> tuple[bool, str | None]:
        """Whether ``db`` may move to ``version`` now: (allowed, why not). Remembered per (stream, wave,
        version) until the next event, so that a pass over the whole fleet costs one scan per wave."""
        key = (db.stream, db.wave, version)
        known = self._gates.get(key)
        if known is None:
            known = self._gates[key] = self._gate(db, version)
        return known

    def _gate(self, db: FleetDatabase, version: int) -> tuple[bool, str | None]:
        if (db.stream, version) in self.resumed:
            return True, None
        behind = [
            other
            for other in self.databases.values()
            if other.stream == db.stream and other.wave < db.wave and self.record(other.name).at != version
        ]
        if not behind:
            return True, None
        halt = self.halts.get((db.stream, version))
        first = min(behind, key=lambda o: (o.wave, o.name))
        if halt is not None:
            return False, (
                f"rollout of {db.stream} to v{version} halted: {halt.database} (wave {halt.wave}) failed;"
                f" fix it or run: schemalog rollout resume {db.stream} --to {version}"
            )
        return False, f"waiting for wave {first.wave} ({len(behind)} behind, e.g. {first.name})"

    def halted(self, stream: str, version: int) -> bool:
        return (stream, version) in self.halts and (stream, version) not in self.resumed

    def record(self, name: str) -> DatabaseRecord:
        return self.records.get(name) or DatabaseRecord()


def fold(events: list[RecordedEvent], view: FleetView | None = None) -> FleetView:
    view = view or FleetView()
    for recorded in events:
        view.apply(recorded)
    return view
