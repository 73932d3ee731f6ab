"""Changesets as people look at them: the timeline of every stream, newest first, and one changeset's
page (its events, its hashes and whether its stream's chain holds, what it did to each database, its
SQL for each dialect, whether it can be reverted). The web UI reads these through the API."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from service.app.errors import BadRequest, NotFound
from service.app.streams import HistoryQuery, history

if TYPE_CHECKING:
    from events.envelope import RecordedEvent
    from events.store import EventStore

MAX_CHANGESETS = 200
DIALECT_NAMES = ("postgresql", "mysql", "sqlite")


def kind_of(stream: str) -> str:
    """schema (a stream of schema changes), outcome (a database's ``db:`` stream), fleet, approval, token."""
    if stream.startswith("db:"):
        return "outcome"
    if stream == "schemalog:fleet":
        return "fleet"
    if stream == "schemalog:approvals":
        return "approval"
    if stream == "schemalog:tokens":
        return "token"
    return "other" if stream.startswith("schemalog:") else "schema"


def words(data: dict[str, Any]) -> str:
    """One event's public form as a short line (history's words)."""
    from service.cli import describe_data

    try:
        return describe_data(data)
    except (KeyError, TypeError):  # a shape history's words do not know: its type at least
        return str(data.get("type", "event"))


@dataclass
class ChangesetView:
    stream: str
    changeset_id: str
    actor: str
    recorded_at: str
    message: str
    first_version: int
    last_version: int
    first_position: int
    last_position: int
    events: list[dict[str, Any]]
    tags: list[str] = field(default_factory=list)
    approvals: list[dict[str, Any]] = field(default_factory=list)

    def public(self) -> dict[str, Any]:
        return {
            "stream": self.stream,
            "changeset_id": self.changeset_id,
            "kind": kind_of(self.stream),
            "actor": self.actor,
            "recorded_at": self.recorded_at,
            "message": self.message,
            "first_version": self.first_version,
            "last_version": self.last_version,
            "first_position": self.first_position,
            "last_position": self.last_position,
            "events": self.events,
            "summary": [words(e) for e in self.events],
            "tags": self.tags,
            "approvals": self.approvals,
        }


@dataclass(frozen=True)
class ChangesetPage:
    changesets: list[ChangesetView]
    next_before: int | None
    """The ``before`` of the next (older) page; None on the last."""

    def public(self) -> dict[str, Any]:
        return {"changesets": [c.public() for c in self.changesets], "next_before": self.next_before}


async def _view(store: EventStore, recorded: list[RecordedEvent], extras: _Extras) -> ChangesetView:
    first, last = recorded[0], recorded[-1]
    view = ChangesetView(
        stream=first.stream,
        changeset_id=first.changeset_id,
        actor=first.actor,
        recorded_at=first.public()["recorded_at"],
        message=first.message,
        first_version=first.version,
        last_version=last.version,
        first_position=first.position,
        last_position=last.position,
        events=[r.public() for r in recorded],
    )
    await extras.fill(store, view)
    return view


class _Extras:
    """Tags and approvals, read once per listing."""

    def __init__(self) -> None:
        self._tags: dict[str, dict[int, list[str]]] = {}
        self._approvals: Any = None

    async def fill(self, store: EventStore, view: ChangesetView) -> None:
        if kind_of(view.stream) != "schema":
            return
        if view.stream not in self._tags:
            from service.app.streams import tags

            by_version: dict[int, list[str]] = {}
            for tag in await tags(store, view.stream):
                by_version.setdefault(tag.version, []).append(tag.name)
            self._tags[view.stream] = by_version
        found = self._tags[view.stream]
        view.tags = [n for v in range(view.first_version, view.last_version + 1) for n in found.get(v, [])]
        if self._approvals is None:
            from service.app.tokens import auth_view

            self._approvals = (await auth_view(store)).approvals
        given = self._approvals.get((view.stream, view.changeset_id), {})
        view.approvals = [
            {"actor": a.approver, "recorded_at": a.at.isoformat(), "comment": a.comment}
            for a in sorted(given.values(), key=lambda a: a.version)
        ]


async def _whole(store: EventStore, stream: str, changeset_id: str) -> list[RecordedEvent]:
    found = await store.find_changeset(changeset_id)
    if found is None or found.stream != stream:
        raise NotFound(f"no changeset {changeset_id!r} in stream {stream!r}", kind="changeset", name=changeset_id)
    return list(await store.read(stream, after_version=found.first_version - 1, to_version=found.last_version))


async def list_changesets(
    store: EventStore,
    query: HistoryQuery,
    *,
    limit: int = 50,
    before: int | None = None,
    sees: Callable[[str], bool] = lambda _stream: True,
) -> ChangesetPage:
    """The changesets holding an event that ``query``'s filters select, newest first, each whole (every
    event of it, not only those that matched), at most ``limit``; ``before`` = a global position, from
    the previous page's ``next_before``. Streams ``sees`` refuses are left out."""
    if not 1 <= limit <= MAX_CHANGESETS:
        raise BadRequest(f"limit must be from 1 to {MAX_CHANGESETS}, not {limit}", field="limit")
    selected = HistoryQuery(
        stream=query.stream,
        table=query.table,
        column=query.column,
        actor=query.actor,
        since=query.since,
        until=query.until,
        types=query.types,
        reverse=True,
        after=before,
    )
    order: list[tuple[str, str]] = []
    more = False
    rows = await history(store, selected)
    async with contextlib.aclosing(rows):
        async for chunk in rows:
            for row in chunk:
                if not sees(row.stream):
                    continue
                key = (row.stream, row.changeset_id)
                if key in order:
                    continue
                if len(order) == limit:
                    more = True
                    break
                order.append(key)
            if more:
                break
    extras = _Extras()
    views = [await _view(store, await _whole(store, s, c), extras) for s, c in order]
    next_before = min(v.first_position for v in views) if more and views else None
    return ChangesetPage(views, next_before)


@dataclass
class ChangesetDetail:
    view: ChangesetView
    hashes: list[dict[str, Any]]
    chain: dict[str, Any]
    outcomes: list[dict[str, Any]]
    sql: dict[str, list[str]]
    sql_errors: dict[str, str]
    revertible: bool
    revert_blocked: str | None

    def public(self) -> dict[str, Any]:
        return {
            **self.view.public(),
            "hashes": self.hashes,
            "chain": self.chain,
            "outcomes": self.outcomes,
            "sql": self.sql,
            "sql_errors": self.sql_errors,
            "revertible": self.revertible,
            "revert_blocked": self.revert_blocked,
        }


async def _chain(store: EventStore, stream: str) -> dict[str, Any]:
    from events.store.base import check_chain

    heads = await store.stream_heads()
    rows = [row async for row in store.raw_rows(stream)]
    count, problems = check_chain(stream, rows, heads.get(stream))
    if problems:
        return {"ok": False, "events": count, "detail": "; ".join(str(p) for p in problems[:3])}
    return {"ok": True, "events": count, "detail": None}


async def _outcomes(store: EventStore, stream: str, first: int, last: int) -> list[dict[str, Any]]:
    """The reconciler's outcomes, on every database, of runs that crossed one of versions first..last."""
    found: list[dict[str, Any]] = []
    for name in await store.event_streams():
        if not name.startswith("db:"):
            continue
        for r in await store.read(name):
            data = r.public()
            if data.get("stream") != stream or "from_version" not in data:
                continue
            low, high = sorted((int(data["from_version"]), int(data["to_version"])))
            if low < last and high >= first:
                found.append(
                    {
                        "database": data.get("database", name[3:]),
                        "status": data["type"],
                        "from_version": data["from_version"],
                        "to_version": data["to_version"],
                        "actor": r.actor,
                        "recorded_at": data["recorded_at"],
                        "detail": data.get("error") or data.get("detail") or r.message or None,
                        "statements": len(data.get("statements", []) or []),
                    }
                )
    found.sort(key=lambda o: str(o["recorded_at"]))
    return found


async def _sql(store: EventStore, stream: str, first: int, last: int) -> tuple[dict[str, list[str]], dict[str, str]]:
    from projections.schema import Point, Projector
    from service.reconciler.dialects import get_dialect
    from service.reconciler.plan import make_plan

    projector = Projector(store)
    sql: dict[str, list[str]] = {}
    errors: dict[str, str] = {}
    for name in DIALECT_NAMES:
        try:
            plan = await make_plan(projector, stream, first - 1, Point(version=last), get_dialect(name))
        except (ValueError, LookupError) as exc:  # PlanRefused, CannotHold, an unsupported type
            sql[name], errors[name] = [], str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            continue
        sql[name] = [step.sql for step in plan.steps]
    return sql, errors


async def _revert_check(store: EventStore, stream: str, changeset_id: str) -> tuple[bool, str | None]:
    from events.aggregate import InvalidChange
    from projections.diff import revert_changeset
    from service.app.streams import _check_revertible

    recorded = list(await store.read(stream))
    try:
        _check_revertible(recorded, changeset_id)
        undo = revert_changeset(recorded, changeset_id)
    except (BadRequest, InvalidChange) as exc:
        return False, str(exc)
    if not undo:
        return False, "the changeset changed no schema: nothing to revert"
    return True, None


async def changeset_detail(store: EventStore, stream: str, changeset_id: str) -> ChangesetDetail:
    """One changeset's page; NotFound if the stream holds no such changeset."""
    recorded = await _whole(store, stream, changeset_id)
    view = await _view(store, recorded, _Extras())
    hashes = [{"version": r.version, "hash": r.hash, "prev_hash": r.prev_hash} for r in recorded]
    schema = kind_of(stream) == "schema"
    outcomes = await _outcomes(store, stream, view.first_version, view.last_version) if schema else []
    sql, errors = await _sql(store, stream, view.first_version, view.last_version) if schema else ({}, {})
    revertible, blocked = await _revert_check(store, stream, changeset_id) if schema else (False, "not a schema stream")
    return ChangesetDetail(view, hashes, await _chain(store, stream), outcomes, sql, errors, revertible, blocked)
