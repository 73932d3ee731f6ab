"""``import``: a live database into the log.

On an empty stream the live schema becomes a baseline changeset and the
database's marker is set to it. On a stream with history, the database's
difference from the state its marker claims (drift) becomes a changeset,
recorded as observed (the actor says where it came from), and the marker moves
to it: drift adopted instead of fought.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from events.envelope import Changeset
from events.log import EventLog
from events.model import Schema
from events.store.base import EventStore
from projections.diff import schema_diff
from projections.schema import Projector
from service.reconciler.marker import Marker, now_text, state_hash
from service.reconciler.normalize import differences
from service.reconciler.targets import TargetError, display_url, open_target


class ImportRefused(TargetError):
    """An import that cannot be done as asked (the message says what to do instead)."""


@dataclass
class ImportResult:
    database: str
    stream: str
    kind: str  # baseline, drift, nothing
    events: int = 0
    first_version: int = 0
    last_version: int = 0
    warnings: list[str] = field(default_factory=list)


async def import_database(
    store: EventStore,
    url: str,
    stream: str,
    *,
    database: str | None = None,
    actor: str | None = None,
    lock_timeout: float = 60.0,
) -> ImportResult:
    label = database or display_url(url)
    who = actor or f"import:{label}"
    target = await open_target(url)
    try:
        await target.acquire(stream, lock_timeout)
        live = await target.introspect()
        others = [s for s in await target.marker_streams() if s != stream]
        if others:
            raise ImportRefused(f"this database follows stream {others[0]!r}, not {stream!r}")
        head = await store.version(stream)
        marker = await target.read_marker(stream)
        projector = Projector(store)
        if head == 0:
            if not live.tables:
                raise ImportRefused(f"{label} has no tables to import")
            events = schema_diff(Schema(), live)
            kind, message = "baseline", f"baseline imported from {label}"
        else:
            if marker is None:
                raise ImportRefused(
                    f"stream {stream!r} has history and {label} has no marker: mark it with migrate --fake"
                    " (if it matches a version) or import it into a new stream"
                )
            if marker.version != head:
                raise ImportRefused(
                    f"{label} is at version {marker.version}, the stream at {head}: migrate it to the head first,"
                    " then import its drift"
                )
            expected = target.expected((await projector.schema(stream))[1])
            events = schema_diff(expected, live)
            kind, message = "drift", f"drift observed in {label}, adopted"
        if not events:
            return ImportResult(label, stream, "nothing")
        result = await EventLog(store, Projector(store)).append(
            Changeset(stream=stream, actor=who, message=message, expected_version=head, events=tuple(events))
        )
        _, state = await projector.schema(stream)
        await target.write_marker(
            Marker(
                stream=stream,
                version=result.last_version,
                state_hash=state_hash(state),
                applied_at=now_text(),
                applied_by=who,
                event_hash=await store.event_hash(stream, result.last_version),
            )
        )
        out = ImportResult(label, stream, kind, len(events), result.first_version, result.last_version)
        want = target.expected(state)
        out.warnings = differences(want, await target.introspect(want))
        return out
    finally:
        try:
            await target.release()
        finally:
            await target.close()
