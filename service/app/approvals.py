"""Approvals: a changeset approved by principals other than its author, and how many a stream (or a
fleet database) requires before the reconciler applies its changesets.

An approval is an event (events.auth.ApprovalGiven) in the stream ``schemalog:approvals``, naming the
changeset by its id and its hash (the chain hash of its last event): the approver is its recorded
actor. It counts for a changeset only while the log still holds that changeset with that hash, and
never when given by the changeset's author. A stream's requirement is an ApprovalsRequired event in the
same stream; a fleet database's is its ``approvals`` setting (``schemalog db add|set --approvals N``);
a database needs the larger of the two.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import NamedTuple

from events.auth import APPROVALS_STREAM, MAX_APPROVALS, ApprovalGiven, ApprovalsRequired
from events.catalog import SCHEMA_EVENT_TYPES
from events.envelope import Changeset
from events.log import EventLog
from events.store.base import AppendResult, ConcurrencyError, EventStore
from service.app.tokens import auth_view, error_line

_VERSION = re.compile(r"^[vV]?([0-9]{1,18})$")


class ApprovalError(ValueError):
    """An approval or a requirement that cannot be recorded (one line, the reason)."""


@dataclass(frozen=True)
class ChangesetRef:
    stream: str
    changeset_id: str
    first_version: int
    last_version: int
    author: str
    hash: str
    """The chain hash of its last event."""
    schema: bool
    """Whether it changes a schema (a changeset of tags only needs no approval)."""


class MissingApproval(NamedTuple):
    changeset_id: str
    have: int
    need: int
    first_version: int
    last_version: int

    def __str__(self) -> str:
        span = f"v{self.first_version}" + (f"..v{self.last_version}" if self.last_version != self.first_version else "")
        return f"changeset {self.changeset_id} ({span}) has {self.have} of {self.need} approvals"


@dataclass(frozen=True)
class ApprovalResult:
    changeset: ChangesetRef
    approvers: tuple[str, ...]
    """Everyone whose approval counts now, this one included."""
    need: int
    """What the stream requires (0: nothing)."""
    appended: AppendResult


async def find_changeset(store: EventStore, stream: str | None, reference: str) -> ChangesetRef:
    """The changeset with id ``reference`` (on ``stream`` if given), or holding version ``reference``
    (``5`` or ``v5``) of ``stream``; ApprovalError if there is none."""
    found = await store.find_changeset(reference)
    if found is None and stream is not None and (match := _VERSION.match(reference)):
        rows = await store.read(stream, after_version=int(match.group(1)) - 1, to_version=int(match.group(1)))
        if rows:
            found = await store.find_changeset(rows[0].changeset_id)
    if found is None:
        where = f" on stream {stream!r}" if stream is not None else ""
        raise ApprovalError(f"no changeset {reference!r}{where}")
    if stream is not None and found.stream != stream:
        raise ApprovalError(f"changeset {reference!r} is on stream {found.stream!r}, not {stream!r}")
    if found.stream.startswith(("schemalog:", "db:")):
        raise ApprovalError(
            f"changeset {reference!r} is on the service's own stream {found.stream!r}: nothing to approve"
        )
    events = await store.read(found.stream, after_version=found.first_version - 1, to_version=found.last_version)
    if not events:  # (find_changeset said it is there)
        raise ApprovalError(f"no changeset {reference!r}")
    return ChangesetRef(
        stream=found.stream,
        changeset_id=found.changeset_id,
        first_version=found.first_version,
        last_version=found.last_version,
        author=events[0].actor,
        hash=events[-1].hash,
        schema=any(e.event.type in SCHEMA_EVENT_TYPES for e in events),
    )


async def approve(
    store: EventStore, stream: str | None, changeset_id: str, actor: str, *, comment: str | None = None
) -> ApprovalResult:
    """Record ``actor``'s approval of a changeset (by id, or by a version of ``stream``). Refused for the
    changeset's own author, for a changeset not on that stream, and a second time for one approver."""
    ref = await find_changeset(store, stream, changeset_id)
    if actor == ref.author:
        raise ApprovalError(f"{actor} wrote changeset {ref.changeset_id}: its author cannot approve it")
    for _attempt in range(5):
        view = await auth_view(store)
        given = view.approvals.get((ref.stream, ref.changeset_id), {})
        if actor in given and given[actor].changeset_hash == ref.hash:
            raise ApprovalError(f"{actor} has already approved changeset {ref.changeset_id}")
        try:
            event = ApprovalGiven(
                stream=ref.stream, changeset_id=ref.changeset_id, changeset_hash=ref.hash, comment=comment or None
            )
        except ValueError as exc:
            raise ApprovalError(error_line(exc)) from None
        try:
            appended = await EventLog(store).append(
                Changeset(
                    stream=APPROVALS_STREAM,
                    actor=actor,
                    message=f"approve {ref.stream} changeset {ref.changeset_id}",
                    expected_version=view.approvals_version,
                    events=(event,),
                )
            )
        except ConcurrencyError:
            continue  # another approval meanwhile: look again
        view = await auth_view(store)
        approvers = view.approvers(ref.stream, ref.changeset_id, ref.hash, author=ref.author)
        return ApprovalResult(ref, tuple(approvers), view.required.get(ref.stream, 0), appended)
    raise ApprovalError("the approvals stream kept moving: try again")


async def require(store: EventStore, stream: str, count: int, actor: str) -> AppendResult:
    """From now on every changeset of ``stream`` needs ``count`` approvals (0: none) to be applied."""
    if not 0 <= count <= MAX_APPROVALS:
        raise ApprovalError(f"approvals required: 0 to {MAX_APPROVALS}, not {count}")
    try:
        event = ApprovalsRequired(stream=stream, count=count)
    except ValueError as exc:
        raise ApprovalError(error_line(exc)) from None
    for _attempt in range(5):
        view = await auth_view(store)
        if view.required.get(stream, 0) == count:
            raise ApprovalError(f"stream {stream!r} already requires {count} approvals")
        try:
            return await EventLog(store).append(
                Changeset(
                    stream=APPROVALS_STREAM,
                    actor=actor,
                    message=f"stream {stream} requires {count} approvals",
                    expected_version=view.approvals_version,
                    events=(event,),
                )
            )
        except ConcurrencyError:
            continue
    raise ApprovalError("the approvals stream kept moving: try again")


async def required_for(
    store: EventStore, stream: str, database: str | None = None, *, database_approvals: int | None = None
) -> int:
    """The approvals a changeset of ``stream`` needs to reach ``database`` (the stream's rule, or the
    fleet database's own, whichever is larger). ``database_approvals``: the fleet database's own, when the
    caller has it (the daemon's fleet view), so the fleet stream is not read for it."""
    view = await auth_view(store)
    need = view.required.get(stream, 0)
    if database_approvals is not None:
        need = max(need, database_approvals)
    elif database is not None:
        need = max(need, await _database_approvals(store, database))
    return need


async def _database_approvals(store: EventStore, database: str) -> int:
    from events.fleet import FLEET_STREAM
    from projections.fleet import FleetView

    fleet = FleetView()
    for recorded in await store.read(FLEET_STREAM):
        fleet.apply(recorded)
    found = fleet.databases.get(database)
    return int(getattr(found, "approvals", 0) or 0) if found is not None else 0


async def missing_approvals(
    store: EventStore,
    stream: str,
    from_version: int,
    to_version: int,
    *,
    database: str | None = None,
    database_approvals: int | None = None,
) -> list[MissingApproval]:
    """The changesets that bringing a database from ``from_version`` to ``to_version`` of ``stream`` would
    apply without the approvals they need, in version order. Going back applies no changeset (only the
    inverses of ones applied before): nothing is missing then."""
    if to_version <= from_version:  # (first: a run with nothing to apply reads nothing for it)
        return []
    need = await required_for(store, stream, database, database_approvals=database_approvals)
    if need == 0:
        return []
    view = await auth_view(store)
    events = await store.read(stream, after_version=from_version, to_version=to_version)
    refs: dict[str, ChangesetRef] = {}
    for recorded in events:
        ref = refs.get(recorded.changeset_id)
        schema = recorded.event.type in SCHEMA_EVENT_TYPES
        if ref is None:
            ref = ChangesetRef(
                stream, recorded.changeset_id, recorded.version, recorded.version, recorded.actor, recorded.hash, schema
            )
        else:
            ref = replace(ref, last_version=recorded.version, hash=recorded.hash, schema=ref.schema or schema)
        refs[recorded.changeset_id] = ref
    # the changesets at either end may reach past the range: read them whole (their author, their hash)
    for edge in {events[0].changeset_id, events[-1].changeset_id} if events else ():
        refs[edge] = await find_changeset(store, stream, edge)
    missing = []
    for ref in refs.values():
        if not ref.schema:
            continue
        have = len(view.approvers(stream, ref.changeset_id, ref.hash, author=ref.author))
        if have < need:
            missing.append(MissingApproval(ref.changeset_id, have, need, ref.first_version, ref.last_version))
    return missing


def describe(missing: list[MissingApproval]) -> str:
    """One line: ``approval required: changeset X (v5..v7) has 0 of 2 approvals; ...``."""
    shown = "; ".join(str(m) for m in missing[:5])
    more = f"; and {len(missing) - 5} more" if len(missing) > 5 else ""
    return f"approval required: {shown}{more} (schemalog approve CHANGESET_ID, by someone other than its author)"
