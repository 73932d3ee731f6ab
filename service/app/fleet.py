"""The fleet's use cases: register, change and retire databases, resume a rollout, and status.

Each write reads the fleet as the log has it, checks the new event against it (``FleetView.check``)
and appends it to the fleet stream expecting the version it read, so that two writers cannot both
register one name. ``status`` is a projection of the log plus the lease rows (who runs each database
now, and its last error).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from events.envelope import Changeset, format_time
from events.fleet import (
    FLEET_STREAM,
    DatabaseChanged,
    DatabaseRegistered,
    DatabaseRetired,
    RolloutResumed,
)
from events.log import EventLog
from events.store.base import AppendResult, EventStore
from projections.fleet import FleetDatabase, FleetView

STATUSES = ("Ready", "Reconciling", "Stalled", "Drifted", "Halted")


async def fleet_view(store: EventStore) -> FleetView:
    """The fleet folded from the whole log (one scan, in position order)."""
    view = FleetView()
    while True:
        batch = await store.read_all(after_position=view.position, limit=10000)
        if not batch:
            return view
        for recorded in batch:
            view.apply(recorded)


async def _append(store: EventStore, view: FleetView, actor: str, message: str, event: Any) -> AppendResult:
    view.check(event)
    return await EventLog(store).append(
        Changeset(
            stream=FLEET_STREAM, actor=actor, message=message, expected_version=view.fleet_version, events=(event,)
        )
    )


async def register(store: EventStore, actor: str, event: DatabaseRegistered) -> AppendResult:
    view = await fleet_view(store)
    return await _append(store, view, actor, f"database {event.name} registered ({event.stream})", event)


async def change(store: EventStore, actor: str, event: DatabaseChanged) -> AppendResult:
    view = await fleet_view(store)
    if not event.changes():
        raise ValueError("nothing to change: give at least one setting")
    what = ", ".join(f"{k}={v}" for k, v in event.changes().items() if k != "url") or "url"
    return await _append(store, view, actor, f"database {event.name}: {what}", event)


async def retire(store: EventStore, actor: str, name: str) -> AppendResult:
    view = await fleet_view(store)
    return await _append(store, view, actor, f"database {name} retired", DatabaseRetired(name=name))


async def resume(store: EventStore, actor: str, stream: str, to_version: int | None) -> tuple[AppendResult, int]:
    view = await fleet_view(store)
    if to_version is None:
        open_halts = sorted(v for s, v in view.halts if s == stream and view.halted(s, v))
        if not open_halts:
            raise ValueError(f"no halted rollout of {stream!r}")
        to_version = open_halts[-1]
    event = RolloutResumed(stream=stream, to_version=to_version)
    result = await _append(store, view, actor, f"rollout of {stream} to v{to_version} resumed", event)
    return result, to_version


@dataclass(frozen=True)
class DatabaseStatus:
    name: str
    stream: str
    wave: int
    status: str
    marker: int | None
    """The version the log's outcomes say the database is at."""
    target: str
    target_version: int | None
    lag: int | None
    last_outcome: str | None
    last_outcome_at: datetime | None
    detail: str | None
    drift: tuple[str, ...]
    owner: str | None
    epoch: int | None
    next_attempt: datetime | None

    def public(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "stream": self.stream,
            "wave": self.wave,
            "status": self.status,
            "marker": self.marker,
            "target": self.target,
            "target_version": self.target_version,
            "lag": self.lag,
            "last_outcome": self.last_outcome,
            "last_outcome_at": format_time(self.last_outcome_at) if self.last_outcome_at else None,
            "detail": self.detail,
            "drift": list(self.drift),
            "owner": self.owner,
            "epoch": self.epoch,
            "next_attempt": format_time(self.next_attempt) if self.next_attempt else None,
        }


def database_status(view: FleetView, db: FleetDatabase, lease: Any | None) -> DatabaseStatus:
    record = view.record(db.name)
    desired = view.resolve(db)
    at = record.at
    owner = lease.holder if lease is not None and lease.live else None
    noted_state = lease.state if lease is not None and owner else None
    detail: str | None = None
    if record.drift:
        status, detail = "Drifted", record.last_detail
    elif noted_state == "stalled" and lease is not None:
        status, detail = "Stalled", lease.last_error
    elif desired is None:
        status, detail = "Reconciling", f"target {db.target!r} is not in stream {db.stream!r} yet"
    elif (at or 0) == desired:
        status = "Ready"  # (a database never migrated is at version 0)
    elif view.halted(db.stream, desired) and not view.gate(db, desired)[0]:
        status, detail = "Halted", view.gate(db, desired)[1]
    elif record.failed_to == desired:
        status, detail = "Stalled", record.last_detail
    else:
        status = "Reconciling"
        allowed, why = view.gate(db, desired)
        detail = why if not allowed else (None if owner else "no daemon replica holds its lease")
    lag = None if desired is None else abs(desired - (at or 0))
    return DatabaseStatus(
        name=db.name,
        stream=db.stream,
        wave=db.wave,
        status=status,
        marker=at,
        target=db.target,
        target_version=desired,
        lag=lag,
        last_outcome=record.last_type,
        last_outcome_at=record.last_time,
        detail=detail,
        drift=record.drift,
        owner=owner,
        epoch=lease.epoch if lease is not None else None,
        next_attempt=lease.next_attempt if lease is not None and owner and noted_state == "stalled" else None,
    )


async def status(store: EventStore) -> list[DatabaseStatus]:
    from service.daemon.leases import open_leases

    view = await fleet_view(store)
    leases = await open_leases(store)
    try:
        await leases.setup()
        rows = {row.resource: row for row in await leases.rows()}
    finally:
        await leases.close()
    return [database_status(view, db, rows.get(name)) for name, db in sorted(view.databases.items())]
