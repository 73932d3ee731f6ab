"""The databases witness the log: each marker keeps the chain hash of the event it is at.

``verify --databases`` reads the marker of every registered database and checks
it against the log: the log must still have the marker's version, with the hash
the database was migrated with. A log rewritten, cut short or deleted under a
database is found there even when its own chains were made to agree again
(their hashes need no key). A database that cannot be read is reported, not
crashed on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import sqlalchemy as sa

from events.envelope import GENESIS_HASH
from events.store.base import EventStore
from service.config import DatabaseConfig
from service.reconciler.marker import Marker
from service.reconciler.targets import TargetError, dialect_of, display_url, open_target

READ_TIMEOUT = 30.0
"""Seconds to read one database's markers before calling it unreachable."""


@dataclass(frozen=True)
class WitnessProblem:
    database: str
    problem: str
    stream: str | None = None
    version: int | None = None

    def __str__(self) -> str:
        if self.stream is None:
            return f"database {self.database!r}: {self.problem}"
        return f"database {self.database!r} stream {self.stream!r} version {self.version}: {self.problem}"


@dataclass
class WitnessReport:
    databases: int = 0
    markers: int = 0
    """Markers checked against the log."""
    problems: list[WitnessProblem] = field(default_factory=list)
    """A marker the log does not match (tampering)."""
    unreachable: list[WitnessProblem] = field(default_factory=list)
    notes: list[WitnessProblem] = field(default_factory=list)
    """Nothing to witness: no marker, or a marker from before markers kept the event hash."""


async def check_databases(store: EventStore, databases: Mapping[str, DatabaseConfig]) -> WitnessReport:
    """Every database's markers against the log, one database at a time."""
    report = WitnessReport()
    for name in sorted(databases):
        report.databases += 1
        try:
            markers = await asyncio.wait_for(_markers(databases[name].url), READ_TIMEOUT)
        except (TargetError, sa.exc.SQLAlchemyError, asyncpg.PostgresError, OSError, TimeoutError) as exc:
            detail = str(getattr(exc, "orig", None) or exc) or type(exc).__name__
            report.unreachable.append(WitnessProblem(name, f"unreachable: {detail.splitlines()[0]}"))
            continue
        if not markers:
            report.notes.append(WitnessProblem(name, "no marker: nothing to witness (never migrated)"))
        for marker in markers:
            await _check(store, name, marker, report)
    return report


async def _markers(url: str) -> list[Marker]:
    if dialect_of(url) == "sqlite":
        from events.store.sqlite import path_from_url

        path = path_from_url(url)
        if path != ":memory:" and not Path(path).exists():
            raise TargetError(f"{display_url(url)}: no such file")
    target = await open_target(url)
    try:
        found = []
        for stream in await target.marker_streams():
            marker = await target.read_marker(stream)
            if marker is not None:
                found.append(marker)
        return found
    finally:
        await target.close()


async def _check(store: EventStore, database: str, marker: Marker, report: WitnessReport) -> None:
    stream, version = marker.stream, marker.version
    if marker.event_hash is None:
        why = "the marker predates event hashes: witnessed from its next migrate"
        report.notes.append(WitnessProblem(database, why, stream, version))
        return
    report.markers += 1
    logged = GENESIS_HASH if version == 0 else await store.event_hash(stream, version)
    if logged is None:
        last = await store.version(stream)
        why = "the stream is gone from the log" if last == 0 else f"the log ends at version {last}"
        report.problems.append(
            WitnessProblem(database, f"the database is at this version, but {why} (events dropped)", stream, version)
        )
    elif logged != marker.event_hash:
        report.problems.append(
            WitnessProblem(
                database,
                "the log's event differs from the one the database was migrated to (history rewritten)",
                stream,
                version,
            )
        )
