"""The append-only log: the protocol every backend keeps, and what they share.

A store records changesets atomically (all events or none) with optimistic
concurrency on the stream's version, is idempotent on the changeset id, and
keeps each stream a SHA-256 chain (see events.envelope). It does not validate
events against the schema: events.log does that before appending.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

if TYPE_CHECKING:  # the models: imported where rows become events, not by a listing or a fold (issue 14)
    from events.envelope import Changeset, RecordedEvent


class StoreError(Exception):
    """A store problem worth a clear message (bad URL, unreachable server, ...)."""


class ConcurrencyError(StoreError):
    """The stream is not at the version the writer expected."""

    def __init__(self, stream: str, expected: int, current: int):
        self.stream = stream
        self.expected = expected
        self.current = current
        super().__init__(f"stream {stream!r} is at version {current}, not the expected {expected}")


class ChangesetIdConflict(StoreError):
    """A changeset id reused for different content (not a retry)."""


@dataclass(frozen=True)
class Fence:
    """A lease an append is made under (the daemon's outcome events): the append writes only if
    ``schemalog_leases`` still gives ``resource`` to ``holder`` at ``epoch``, unexpired by the store
    database's clock, checked in the append's own transaction."""

    resource: str
    holder: str
    epoch: int


class LeaseLost(StoreError):
    """A fenced append whose lease is no longer held (taken over, expired or released): nothing written."""

    def __init__(self, fence: Fence):
        self.fence = fence
        super().__init__(
            f"the lease on {fence.resource!r} (replica {fence.holder}, epoch {fence.epoch}) is no longer held:"
            " nothing written"
        )


@dataclass(frozen=True)
class AppendResult:
    stream: str
    changeset_id: str
    first_version: int
    last_version: int
    duplicate: bool = False
    """True when this changeset id was already recorded (a retry): nothing new written."""


@dataclass(frozen=True)
class StreamInfo:
    name: str
    version: int
    hash: str


@dataclass(frozen=True)
class RawRow:
    """An event row as stored, before any parsing: what ``verify`` checks."""

    position: int
    stream: str
    version: int
    changeset_id: str
    actor: str
    message: str
    recorded_at: str
    data: dict[str, Any]
    prev_hash: str
    hash: str


class EventRow(NamedTuple):
    """An event row as stored, its event still JSON text and its time the chain's text: what ``history``
    lists (nothing parsed that a listing does not need)."""

    position: int
    stream: str
    version: int
    changeset_id: str
    actor: str
    message: str
    recorded_at: str
    """``format_time``'s text (``2026-11-24T10:00:00.000000Z``): sorts as the times do."""
    type: str
    data: str
    prev_hash: str
    hash: str

    def to_recorded(self) -> RecordedEvent:
        """The row as a RecordedEvent (its event decoded, its time parsed)."""
        return recorded(
            position=self.position,
            stream=self.stream,
            version=self.version,
            changeset_id=self.changeset_id,
            actor=self.actor,
            message=self.message,
            recorded_at=datetime.fromisoformat(self.recorded_at),  # the chain's text is ISO 8601: no strptime
            data=self.data,
            prev_hash=self.prev_hash,
            hash=self.hash,
        )


@dataclass(frozen=True)
class SnapshotRead:
    """What ``EventStore.read_from_snapshot`` reads at once: a point's fold start and the events after it."""

    head: int
    """The stream's last version (0 for an empty or unknown stream)."""
    version: int
    """The version read to: the one asked, else the head. Past the head: no snapshot and no events."""
    snapshot: tuple[int, str, str, str] | None
    """The newest snapshot at or below ``version``, as ``snapshot_below`` gives it, or None."""
    log_hash: str | None
    """The log's chain hash at the snapshot's version (None: no snapshot, or no such event)."""
    events: list[str]
    """The public JSON texts of the events after the snapshot (after 0 without one) up to ``version``, in
    version order, at most the ``limit`` asked: fewer than ``version`` less the start leaves the rest to
    ``read_event_data``."""


@dataclass
class ChainProblem:
    stream: str
    version: int
    problem: str

    def __str__(self) -> str:
        return f"stream {self.stream!r} version {self.version}: {self.problem}"


@dataclass
class VerifyReport:
    streams: int = 0
    events: int = 0
    problems: list[ChainProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


class EventStore(Protocol):
    """What every backend provides. All methods are coroutines; a store is used by one task."""

    url: str

    schema_version: int
    """The store's layout (``STORE_SCHEMA``'s numbers) as found when opened, or as ``init`` left it: 0 for a
    database with no store yet, 1 for a store made before ``schemalog_meta``."""

    async def init(self) -> None:
        """Create the tables and triggers if missing, or upgrade an older layout in place (idempotent, in one
        transaction, safe to run concurrently)."""

    async def stored_schema(self) -> int:
        """The store's layout read again now (a running process checks that no newer schemalog upgraded it)."""

    async def close(self) -> None: ...

    async def append(
        self, changeset: Changeset, *, now: datetime | None = None, fence: Fence | None = None
    ) -> AppendResult:
        """Record the changeset atomically. ``changeset.actor`` must be set.

        Raises ConcurrencyError when ``expected_version`` is given and stale. A changeset
        id already recorded returns the earlier result with ``duplicate=True``. With ``fence``,
        LeaseLost (nothing written) unless the lease is still held, checked under the stream's
        lock in the append's transaction (a duplicate is reported as one whatever the fence).
        """

    async def version(self, stream: str) -> int:
        """The stream's last version (0 for an empty or unknown stream)."""

    async def find_changeset(self, changeset_id: str) -> AppendResult | None:
        """Where a changeset id was recorded (``duplicate=True``), or None."""

    async def streams(self) -> list[StreamInfo]: ...

    async def read(
        self,
        stream: str,
        *,
        after_version: int = 0,
        to_version: int | None = None,
        until: datetime | None = None,
        types: Sequence[str] | None = None,
    ) -> list[RecordedEvent]:
        """Events of a stream with ``after_version < version <= to_version``, recorded at or
        before ``until``, of the given types."""

    async def read_all(self, *, after_position: int = 0, limit: int | None = None) -> list[RecordedEvent]:
        """Events of every stream in global order."""

    def raw_rows(self, stream: str) -> AsyncIterator[RawRow]:
        """A stream's rows as stored, in version order."""

    def scan(
        self,
        *,
        stream: str | None = None,
        after_position: int = 0,
        before_position: int | None = None,
        descending: bool = False,
        chunk: int = 5000,
    ) -> AsyncGenerator[list[EventRow], None]:
        """Event rows with ``after_position < position < before_position`` (of one stream, or all), in
        position order (``descending``: newest first), in chunks of at most ``chunk``, read as they are
        consumed: memory stays flat whatever the log's size (``history``)."""

    async def stream_heads(self) -> dict[str, tuple[int, str]]:
        """What the stream table says each stream's head is: (version, hash)."""

    async def event_streams(self) -> list[str]:
        """Every stream that has rows in the event table."""

    async def version_at(self, stream: str, moment: datetime) -> int:
        """The last version recorded at or before ``moment`` (0 if none)."""

    async def event_hash(self, stream: str, version: int) -> str | None:
        """The chain hash of one event, or None if there is no such event."""

    async def store_id(self) -> str:
        """The store's identity: a random UUID made by the first ``init``, never changed (checkpoints name
        it, so that another store swapped in is found). StoreError if the store has none."""

    def read_event_data(
        self, stream: str, *, after_version: int = 0, to_version: int | None = None
    ) -> AsyncIterator[list[str]]:
        """Only the events' public JSON texts, in chunks, in version order: the replay path."""

    # Snapshots: derived data, rebuildable; the projections check them against the log.
    async def save_snapshot(self, stream: str, version: int, event_hash: str, digest: str, body: str) -> None: ...

    async def snapshot_below(self, stream: str, version: int) -> tuple[int, str, str, str] | None:
        """The newest snapshot at or below ``version``: (version, event_hash, digest, body), or None."""

    async def read_from_snapshot(self, stream: str, version: int | None, *, limit: int) -> SnapshotRead:
        """In one read of one state of the store (PostgreSQL: one statement, one round trip): the stream's
        head, the newest snapshot at or below ``version`` (None: the head), the log's hash at that
        snapshot's version and the first ``limit`` event texts after it up to ``version``. Nothing is
        checked here: the projections check the snapshot (its digest, that hash) before they use it."""

    async def snapshot_versions(self, stream: str) -> list[int]: ...

    async def drop_snapshots(self, stream: str | None = None) -> int: ...


def check_chain(stream: str, rows: Iterable[RawRow], head: tuple[int, str] | None) -> tuple[int, list[ChainProblem]]:
    """Walk one stream's chain; return the number of rows and the problems found."""
    from events.catalog import parse_event
    from events.envelope import GENESIS_HASH, chain_hash

    problems: list[ChainProblem] = []
    expected_version = 1
    prev = GENESIS_HASH
    count = 0
    for row in rows:
        count += 1
        if row.version != expected_version:
            problems.append(ChainProblem(stream, row.version, f"version gap: expected {expected_version}"))
        if row.prev_hash != prev:
            problems.append(ChainProblem(stream, row.version, "previous hash does not match"))
        digest = chain_hash(
            stream=row.stream,
            version=row.version,
            changeset_id=row.changeset_id,
            actor=row.actor,
            message=row.message,
            recorded_at=row.recorded_at,
            event=row.data,
            prev_hash=row.prev_hash,
        )
        if digest != row.hash:
            problems.append(ChainProblem(stream, row.version, "content does not match its hash (edited)"))
        else:
            try:
                parse_event(row.data, stored=True)
            except ValueError as exc:
                problems.append(ChainProblem(stream, row.version, f"unreadable event: {exc}"))
        prev = row.hash
        expected_version = row.version + 1
    last_version = expected_version - 1
    if head is not None:
        head_version, head_hash = head
        if head_version != last_version:
            problems.append(
                ChainProblem(
                    stream,
                    last_version,
                    f"stream head says version {head_version} but the log ends at {last_version}"
                    " (events removed or added behind the store's back)",
                )
            )
        elif head_hash != prev:
            problems.append(ChainProblem(stream, last_version, "stream head hash does not match"))
    return count, problems


async def verify_store(store: EventStore) -> VerifyReport:
    """Walk every stream's chain (shared by all backends)."""
    report = VerifyReport()
    heads = await store.stream_heads()
    names = sorted(set(heads) | set(await store.event_streams()))
    for name in names:
        rows = [row async for row in store.raw_rows(name)]
        count, problems = check_chain(name, rows, heads.get(name))
        report.streams += 1
        report.events += count
        report.problems.extend(problems)
    return report


def recorded(
    *,
    position: int,
    stream: str,
    version: int,
    changeset_id: str,
    actor: str,
    message: str,
    recorded_at: datetime,
    data: str | dict[str, Any],
    prev_hash: str,
    hash: str,
) -> RecordedEvent:
    """Build a RecordedEvent from stored values (events are validated on the way in)."""
    from_text, from_dict, recorded_event = _decoding()
    event = from_text(data) if isinstance(data, str) else from_dict(data)
    return recorded_event.model_construct(
        stream=stream,
        version=version,
        position=position,
        changeset_id=changeset_id,
        actor=actor,
        message=message,
        recorded_at=recorded_at,
        event=event,
        prev_hash=prev_hash,
        hash=hash,
    )


@cache
def _decoding() -> tuple[Callable[[str], Any], Callable[[dict[str, Any]], Any], type[RecordedEvent]]:
    """events.decode's decoders and RecordedEvent, imported on the first row made an event (once: ``recorded``
    runs for every row read), so that importing the store loads no model (issue 14)."""
    from events import decode
    from events.envelope import RecordedEvent

    return decode.event_from_text, decode.event_from_dict, RecordedEvent


def require_actor(changeset: Changeset) -> str:
    if not changeset.actor:
        raise StoreError("a changeset needs an actor")
    return changeset.actor


REQUIRED_TABLES = ("schemalog_events", "schemalog_streams", "schemalog_changesets", "schemalog_snapshots")
"""The tables every schemalog store has had from the start: a store missing some of them is damaged."""

NOT_A_STORE = "not a schemalog store (run `schemalog init` to make one here, or give --store)"

STORE_SCHEMA = 2
"""The store's layout this schemalog makes and knows, kept in ``schemalog_meta.store_schema``: 1 the first
(the four tables above, without ``schemalog_meta`` and the guards on every table), 2 the identity and the
guards. ``init`` upgrades an older store in place; every process refuses a newer one (newer_problem), and
the long-running ones (serve, the daemon) an older one too (require_current_schema), so that a rolling
upgrade never has a process write a layout it does not know."""


def newer_problem(found: int) -> str | None:
    """The one line refusing a store whose layout is newer than this schemalog's (None: it is not)."""
    if found > STORE_SCHEMA:
        return f"the store's schema is version {found}; this schemalog knows up to {STORE_SCHEMA}: upgrade schemalog"
    return None


def require_current_schema(found: int) -> None:
    """StoreError unless the store's layout is this schemalog's own (what serve and the daemon need)."""
    problem = newer_problem(found)
    if problem is None and found < STORE_SCHEMA:
        problem = (
            f"the store's schema is version {found}; this schemalog needs {STORE_SCHEMA}:"
            " run `schemalog init` to upgrade the store"
        )
    if problem is not None:
        raise StoreError(problem)


def tables_problem(found: set[str], *, create: bool) -> str | None:
    """What is wrong with a database holding the tables ``found`` as a store (None: nothing)."""
    missing = [name for name in REQUIRED_TABLES if name not in found]
    if not missing:
        return None
    if len(missing) == len(REQUIRED_TABLES):
        return None if create else "the database has no schemalog tables: " + NOT_A_STORE
    return (
        f"table{'s' if len(missing) > 1 else ''} {', '.join(missing)} missing: a damaged schemalog store"
        " (init does not repair it: restore it from a backup)"
    )
