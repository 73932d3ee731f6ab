"""A stream's use cases: append a changeset, list its history, the schema at a point, diff, blame, tags,
revert, and verify the store.

Each takes plain values (or a small dataclass) and returns a dataclass whose ``public()`` is its JSON form
(the CLI's ``--json``, the API's body); none prints. Errors are raised typed: the domain's own
(InvalidChange with ``.index``, ConcurrencyError with ``.current``, PointError, ChangesetIdConflict,
StoreError) and service.app.errors' BadRequest and NotFound.

Like service/cli.py, this module imports what a function uses inside it, so that the read paths (``show``,
``history``) load no pydantic model, parser, driver or structlog they do not need (tests/test_cli_startup.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeAlias

from service.app.errors import BadRequest, NotFound, nearest, pydantic_message

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator

    from events.checkpoint import Checkpoint, CheckpointProblem
    from events.envelope import Changeset, RecordedEvent
    from events.log import EventLog
    from events.model import Schema
    from events.store.base import EventRow, EventStore
    from projections.audit import BlameLine
    from projections.diff import Change
    from projections.history import HistorySelection
    from projections.replay import Replay
    from projections.schema import Point

    PointLike: TypeAlias = str | int | Point | None
    """A point as users write it (``head``, ``12``, ``v12``, an ISO time, a tag; None is head), or one parsed."""

OUTCOME_PREFIX = "db:"
"""A database's outcome stream: ``db:NAME`` (never a schema stream)."""


# --------------------------------------------------------------------------- streams


@dataclass(frozen=True)
class StreamSummary:
    name: str
    version: int
    hash: str

    def public(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "hash": self.hash}


async def list_streams(store: EventStore) -> list[StreamSummary]:
    """Every stream with its head (schema, outcome and the service's own streams), by name."""
    return sorted((StreamSummary(s.name, s.version, s.hash) for s in await store.streams()), key=lambda s: s.name)


async def default_stream(store: EventStore, given: str | None = None) -> str:
    """``given`` if there is one, else the only schema stream there is, else ``default``."""
    if given:
        return given
    streams = [s for s in await store.streams() if not s.name.startswith(OUTCOME_PREFIX)]
    if len(streams) == 1:
        return streams[0].name
    return "default"


async def check_stream(store: EventStore, stream: str | None) -> None:
    """NotFound (naming the nearest stream) if ``stream`` never existed; None names every stream."""
    if stream is not None:
        streams = {s.name for s in await store.streams()}
        if stream not in streams:
            raise NotFound(
                f"stream {stream!r} does not exist", kind="stream", name=stream, suggestion=nearest(stream, streams)
            )


# --------------------------------------------------------------------------- append


@dataclass(frozen=True)
class Appended:
    stream: str
    changeset_id: str
    first_version: int
    last_version: int
    duplicate: bool
    """True when the changeset id was already recorded (a retry): nothing new written, the first answer."""

    @property
    def count(self) -> int:
        return self.last_version - self.first_version + 1

    def public(self) -> dict[str, Any]:
        return {
            "stream": self.stream,
            "changeset_id": self.changeset_id,
            "first_version": self.first_version,
            "last_version": self.last_version,
            "duplicate": self.duplicate,
        }


def changeset_from_data(
    data: Any, *, actor: str | None = None, stream: str | None = None, default_actor: str | None = None
) -> Changeset:
    """A changeset from its JSON value (a dict), ``stream`` and ``actor`` put over the document's when given
    (the API gives the principal's), ``default_actor`` used when neither names one (the CLI's user);
    BadRequest (one line, the field at fault) if it is not a valid changeset."""
    import pydantic

    from events.envelope import Changeset

    if not isinstance(data, dict):
        raise BadRequest("a changeset is a JSON object with an 'events' list")
    data = dict(data)
    if stream is not None:
        data["stream"] = stream
    if actor is not None:
        data["actor"] = actor
    elif not data.get("actor") and default_actor is not None:
        data["actor"] = default_actor
    try:
        return Changeset.model_validate(data)
    except pydantic.ValidationError as exc:
        from service.app.errors import error_field

        raise BadRequest(pydantic_message(exc), field=error_field(exc)) from None


def changeset_from_text(
    text: str, *, actor: str | None = None, stream: str | None = None, default_actor: str | None = None
) -> Changeset:
    """:func:`changeset_from_data` of JSON text: BadRequest if it is not JSON (too deep, NaN, Infinity)."""
    import json

    from events.envelope import check_json_nesting

    try:
        check_json_nesting(text)
        data = json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise BadRequest(f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except ValueError as exc:  # too deep, NaN or Infinity, a number of more than 4300 digits
        raise BadRequest(f"malformed JSON: {exc}") from None
    return changeset_from_data(data, actor=actor, stream=stream, default_actor=default_actor)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


async def append_changeset(
    store: EventStore, changeset: Changeset, *, expected_version: int | None = None, log: EventLog | None = None
) -> Appended:
    """Validate against the head and append (all or nothing). ``expected_version`` (HTTP's If-Match), when
    given, is put over the changeset's: ConcurrencyError (``.current``) if the stream is elsewhere. Without
    either, appended at the head, retried when another writer got there first. A changeset id recorded before
    gives the first answer again (``duplicate``). InvalidChange (``.index``) if an event does not apply.
    ``log``: an EventLog of ``store`` kept between calls (a server's: each stream's head state is then
    brought up to date rather than folded again from its snapshot); else a new one."""
    from events.aggregate import InvalidChange
    from events.catalog import SCHEMA_EVENT_TYPES
    from events.fleet import SERVICE_STREAM_PREFIXES
    from events.log import EventLog
    from projections.schema import Projector

    # a forged token, outcome or fleet event there would be believed by the folds that read them
    if changeset.stream.startswith(SERVICE_STREAM_PREFIXES):
        raise BadRequest(
            f"stream {changeset.stream!r} is the service's own (tokens, fleet, approvals, outcomes):"
            " it is written by its own commands, never by a changeset",
            field="stream",
        )
    for index, event in enumerate(changeset.events):
        if event.type not in SCHEMA_EVENT_TYPES and event.type != "tag_created":
            raise InvalidChange(
                f"a changeset holds schema changes, data steps and tags; {event.type!r} is written by the"
                " service itself",
                index,
                event.type,
            )
    if expected_version is not None:
        changeset = changeset.model_copy(update={"expected_version": expected_version})
    result = await (log if log is not None else EventLog(store, Projector(store))).append(changeset)
    return Appended(result.stream, result.changeset_id, result.first_version, result.last_version, result.duplicate)


# --------------------------------------------------------------------------- history


@dataclass(frozen=True)
class HistoryQuery:
    """What history lists: filters (a table or column filter follows renames), order and where to start."""

    stream: str | None = None
    table: str | None = None
    column: str | None = None
    """With ``table``; or ``TABLE.COLUMN`` alone."""
    actor: str | None = None
    since: datetime | str | None = None
    until: datetime | str | None = None
    """ISO 8601 text (naive is UTC) or a datetime; inclusive."""
    types: tuple[str, ...] | None = None
    reverse: bool = False
    """Newest first."""
    after: int | None = None
    """Only events past this global position in the listing's order (before it with ``reverse``)."""


@dataclass(frozen=True)
class EventPage:
    events: list[dict[str, Any]]
    """Each event's public form (RecordedEvent.public())."""
    next_after: int | None
    """The ``after`` of the next page; None when this page is the last."""

    def public(self) -> dict[str, Any]:
        return {"events": self.events, "next_after": self.next_after}


def _time(value: datetime | str | None, name: str) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    from projections.schema import PointError, parse_time_text

    try:
        return parse_time_text(value)
    except PointError as exc:
        raise BadRequest(str(exc), field=name) from None


def history_selection(query: HistoryQuery) -> HistorySelection:
    """The query's filters checked and built: BadRequest naming the field at fault."""
    from projections.history import HistoryFilter, HistorySelection

    table, column = query.table, query.column
    if column and "." in column and not table:
        table, column = column.rsplit(".", 1)
    if column and not table:
        raise BadRequest("a column filter needs a table (or the column as TABLE.COLUMN)", field="column")
    if query.after is not None and query.after < 0:
        raise BadRequest(f"after must be a position (0 or more), not {query.after}", field="after")
    types = None
    if query.types:
        from events.catalog import EVENT_TYPES

        unknown = [t for t in query.types if t not in EVENT_TYPES]
        if unknown:
            raise BadRequest(f"unknown event type {unknown[0]!r}; known: {', '.join(EVENT_TYPES)}", field="type")
        types = frozenset(query.types)
    return HistorySelection(
        HistoryFilter(
            table=table,
            column=column,
            actor=query.actor,
            since=_time(query.since, "since"),
            until=_time(query.until, "until"),
            types=types,
        )
    )


async def history(store: EventStore, query: HistoryQuery) -> AsyncGenerator[list[EventRow], None]:
    """The rows the query lists, in its order, a chunk at a time, read as they are consumed: memory stays flat
    whatever the log's size. The query is checked first (NotFound for a stream that never existed, BadRequest);
    a table filter naming a table that never existed raises NotFound on the first chunk asked for. Close the
    generator when done early (``contextlib.aclosing``)."""
    await check_stream(store, query.stream)
    selection = history_selection(query)
    return _history_rows(store, selection, query)


async def _history_rows(
    store: EventStore, selection: HistorySelection, query: HistoryQuery
) -> AsyncGenerator[list[EventRow], None]:
    import array
    import contextlib

    after, stream = query.after, query.stream
    if not selection.follows_renames:
        if query.reverse:
            chunks = store.scan(stream=stream, before_position=after, descending=True)
        else:
            chunks = store.scan(stream=stream, after_position=after or 0)
        async with contextlib.aclosing(chunks):
            async for chunk in chunks:
                yield [row for row in chunk if selection.keep(row)] if selection.active else chunk
        return
    # the lineage: the names the tables and columns ever had, from the whole log; then every event again
    # from the streams' first (the listing only those past ``after``)
    learning = store.scan(stream=stream)
    async with contextlib.aclosing(learning):
        async for chunk in learning:
            for row in chunk:
                selection.learn(row)
    table, known = selection.filter.table, selection.names()
    if table is not None and table not in known:  # a table that never existed is an input error
        where = f" in stream {stream!r}" if stream is not None else ""
        raise NotFound(
            f"table {table!r} does not exist{where}", kind="table", name=table, suggestion=nearest(table, known)
        )
    selection.learned()
    chunks = store.scan(stream=stream, before_position=after if query.reverse else None)
    if not query.reverse:
        async with contextlib.aclosing(chunks):
            async for chunk in chunks:
                yield [row for row in chunk if selection.keep(row) and row.position > (after or 0)]
        return
    found = array.array("q")  # newest first: the matches' positions found going forward, then read back
    async with contextlib.aclosing(chunks):
        async for chunk in chunks:
            found.extend(row.position for row in chunk if selection.keep(row))
    if not found:
        return
    back = store.scan(stream=stream, after_position=found[0] - 1, before_position=found[-1] + 1, descending=True)
    i = len(found) - 1
    async with contextlib.aclosing(back):
        async for chunk in back:
            kept = []
            for row in chunk:
                if i >= 0 and row.position == found[i]:
                    kept.append(row)
                    i -= 1
            yield kept
            if i < 0:
                return


MAX_PAGE = 10000
"""The largest page :func:`list_events` gives."""


async def list_events(store: EventStore, query: HistoryQuery, *, limit: int) -> EventPage:
    """One page of :func:`history`: at most ``limit`` events in public form, and the ``after`` of the next
    page (None when there is no more). BadRequest if ``limit`` is not 1..MAX_PAGE."""
    import contextlib

    if not 1 <= limit <= MAX_PAGE:
        raise BadRequest(f"limit must be from 1 to {MAX_PAGE}, not {limit}", field="limit")
    events: list[dict[str, Any]] = []
    last, more = 0, False
    rows = await history(store, query)
    async with contextlib.aclosing(rows):
        async for chunk in rows:
            if len(events) + len(chunk) > limit:
                chunk, more = chunk[: limit - len(events)], True
            for row in chunk:
                events.append(row.to_recorded().public())
                last = row.position
            if more:
                break
    return EventPage(events, last if more else None)


# --------------------------------------------------------------------------- points


@dataclass(frozen=True)
class SchemaAt:
    stream: str
    version: int
    schema: Schema

    def public(self) -> dict[str, Any]:
        """``show --format json``: the stream, the version and the schema (tables and enums by name)."""
        return {"stream": self.stream, "version": self.version, **self.schema.sorted().model_dump(mode="json")}


@dataclass(frozen=True)
class PublicSchemaAt:
    """The fold at a point in public form, no model built (fast: ``show``'s text, the API's JSON)."""

    stream: str
    version: int
    replay: Replay

    @property
    def tables(self) -> dict[str, dict[str, Any]]:
        return self.replay.tables

    def public(self) -> dict[str, Any]:
        """:meth:`SchemaAt.public`, equal to it key for key (and in the same order), from the fold's plain state."""
        return {"stream": self.stream, "version": self.version, **self.replay.public()}


def _point(point: PointLike) -> Point:
    """A point as written (``head``, ``12``, ``v12``, a time, a tag), or one parsed; PointError if malformed."""
    from projections.schema import Point, parse_point

    return point if isinstance(point, Point) else parse_point(point)


async def resolve_point(store: EventStore, stream: str, point: PointLike) -> int:
    """The version a point names in ``stream``: PointError if it names nothing there."""
    from projections.schema import Projector

    return await Projector(store).resolve(stream, _point(point))


async def schema_at(store: EventStore, stream: str, point: PointLike = None) -> SchemaAt:
    """The schema at a point (default head): PointError if the point names nothing in the stream."""
    from projections.schema import Projector

    version, schema = await Projector(store).schema(stream, _point(point))
    return SchemaAt(stream, version, schema)


async def public_schema_at(store: EventStore, stream: str, point: PointLike = None) -> PublicSchemaAt:
    """:func:`schema_at` as the fold's public form: no pydantic model built or imported."""
    from projections.schema import Projector

    version, replay = await Projector(store).public_state(stream, _point(point))
    return PublicSchemaAt(stream, version, replay)


@dataclass(frozen=True)
class SchemaSql:
    dialect: str
    """The dialect's own name (``postgresql``, ``mysql``, ``sqlite``)."""
    statements: list[str]

    def script(self) -> str:
        """The statements, each ended with ``;`` on its own line."""
        return "".join(statement + ";\n" for statement in self.statements)


def schema_sql(schema: Schema, dialect: str) -> SchemaSql:
    """The CREATE script of a schema for a dialect: BadRequest for an unknown dialect or a type it lacks."""
    from service.reconciler.dialects import UnsupportedType, get_dialect

    try:
        found = get_dialect(dialect)
    except ValueError as exc:
        raise BadRequest(str(exc), field="dialect") from None
    try:
        statements = found.create_script(schema)
    except UnsupportedType as exc:
        raise BadRequest(str(exc), field="dialect") from None
    return SchemaSql(found.name, list(statements))


# --------------------------------------------------------------------------- diff, blame


@dataclass(frozen=True)
class Diff:
    stream: str
    from_version: int
    to_version: int
    changes: list[Change]
    """Going forward the events themselves; going back their inverses, newest first."""

    @property
    def direction(self) -> str:
        return "backward" if self.to_version < self.from_version else "forward"

    def public(self) -> dict[str, Any]:
        from events.catalog import to_dict

        return {
            "stream": self.stream,
            "from_version": self.from_version,
            "to_version": self.to_version,
            "direction": self.direction,
            "changes": [
                {"source_version": c.source_version, "inverse": c.backward, **to_dict(c.event)} for c in self.changes
            ],
        }


async def diff_points(store: EventStore, stream: str, a: PointLike, b: PointLike) -> Diff:
    """The changes from point ``a`` to point ``b`` (inverses when going back): PointError if a point names
    nothing; projections.diff.Irreversible (an InvalidChange) if going back passes an irreversible step."""
    from projections.diff import changes_between
    from projections.schema import Projector

    va, vb, steps = await changes_between(Projector(store), stream, _point(a), _point(b))
    return Diff(stream, va, vb, steps)


@dataclass(frozen=True)
class Blame:
    stream: str
    version: int
    table: str
    lines: list[BlameLine]
    """Columns in the table's order, then the primary key, indexes and constraints."""

    def public(self) -> dict[str, Any]:
        return {
            "stream": self.stream,
            "version": self.version,
            "table": self.table,
            "lines": [b.public() for b in self.lines],
        }


async def blame_table(
    store: EventStore, stream: str, table: str, at: PointLike = None, *, require_stream: bool = True
) -> Blame:
    """Who created and last changed each column, index and constraint of ``table`` at a point (default
    head). NotFound for a stream that never existed (unless ``require_stream`` is False: then an unknown
    stream is an empty one) or a table not in the schema there, naming the nearest."""
    from projections.audit import blame
    from projections.schema import Projector

    if require_stream:
        await check_stream(store, stream)
    version, schema = await Projector(store).schema(stream, _point(at))
    found = schema.tables.get(table)
    others = ("domains", "views", "extensions")  # the log's objects beside tables: blamed as a whole
    routines = (getattr(schema, "routines", None) or {}).values()  # blamed by name, any signature
    if found is None and (
        table in schema.enums
        or any(table in (getattr(schema, o, None) or {}) for o in others)
        or any(r.name == table for r in routines)
    ):
        return Blame(stream, version, table, blame(await store.read(stream, to_version=version), table) or [])
    if found is None:
        raise NotFound(
            f"no table {table!r} in stream {stream!r} at version {version}",
            kind="table",
            name=table,
            suggestion=nearest(table, list(schema.tables)),
        )
    lines = blame(await store.read(stream, to_version=version), table) or []
    order = {c.name: i for i, c in enumerate(found.columns)}
    kinds = {"column": 0, "primary_key": 1, "index": 2, "constraint": 3, "trigger": 4}
    lines.sort(key=lambda b: (kinds[b.kind], order.get(b.name, 0), b.name))
    return Blame(stream, version, table, lines)


# --------------------------------------------------------------------------- tags


@dataclass(frozen=True)
class Tag:
    name: str
    version: int

    def public(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version}


async def tags(store: EventStore, stream: str) -> list[Tag]:
    """A stream's tags, by version then name."""
    from projections.schema import Projector

    found = await Projector(store).tags(stream)
    return sorted((Tag(name, version) for name, version in found.items()), key=lambda t: (t.version, t.name))


@dataclass(frozen=True)
class Tagged:
    stream: str
    tag: str
    version: int
    """The version the tag names."""
    recorded_version: int
    """The version of the tag_created event itself."""
    changeset_id: str

    def public(self) -> dict[str, Any]:
        return {
            "stream": self.stream,
            "tag": self.tag,
            "version": self.version,
            "recorded_version": self.recorded_version,
            "changeset_id": self.changeset_id,
        }


async def create_tag(
    store: EventStore,
    stream: str,
    name: str,
    *,
    at: PointLike = None,
    actor: str,
    message: str | None = None,
    expected_version: int | None = None,
) -> Tagged:
    """Name a point (default head) of ``stream``: BadRequest for a bad tag name, PointError for a point that
    names nothing, InvalidChange for a name already taken."""
    import pydantic

    from events.catalog import TagCreated
    from events.envelope import Changeset

    version = await resolve_point(store, stream, at)
    try:
        tag = TagCreated(tag=name, version=version)
    except pydantic.ValidationError as exc:
        raise BadRequest(pydantic_message(exc), field="tag") from None
    changeset = Changeset(
        stream=stream,
        actor=actor,
        message=message or f"tag {name} at version {version}",
        expected_version=expected_version,
        events=(tag,),
    )
    result = await append_changeset(store, changeset)
    return Tagged(stream, name, version, result.last_version, result.changeset_id)


# --------------------------------------------------------------------------- revert


@dataclass(frozen=True)
class Reverted:
    stream: str
    changeset_id: str
    """The changeset reverted."""
    appended: Appended | None
    """The revert's own changeset; None when the changeset changed no schema (nothing appended)."""

    def public(self) -> dict[str, Any]:
        return {
            "stream": self.stream,
            "reverted_changeset_id": self.changeset_id,
            "appended": self.appended.public() if self.appended is not None else None,
        }


def _check_revertible(recorded: Sequence[RecordedEvent], changeset_id: str) -> None:
    """BadRequest naming the version if an event of the changeset cannot be undone (an irreversible data
    step, or an inverse that would make again what the log's rules now refuse)."""
    from events.aggregate import State, apply_event
    from service.reconciler.plan import PlanRefused, undo_event

    state = State()
    for r in recorded:
        if r.changeset_id == changeset_id:
            try:
                undo = undo_event(r, state)
            except PlanRefused as exc:
                raise BadRequest(f"cannot revert changeset {changeset_id}: {exc}") from None
            if undo is not None:
                _new_input(undo, r.version, changeset_id)
        apply_event(r.event, state)


def _new_input(undo: Any, version: int, changeset_id: str) -> None:
    """A revert appends new events, so each meets the rules of new input: BadRequest naming the version if
    it would make again what the log allowed when it was recorded but refuses now (a name, a default)."""
    import pydantic

    from events.catalog import parse_event, to_dict

    try:
        parse_event(to_dict(undo))
    except pydantic.ValidationError as exc:
        why = pydantic_message(exc)
    except ValueError as exc:
        why = str(exc)
    else:
        return
    raise BadRequest(
        f"cannot revert changeset {changeset_id}: undo v{version} ({undo.type}) would make what the log refuses"
        f" now: {why}"
    )


async def revert(
    store: EventStore,
    stream: str,
    target: str,
    *,
    actor: str,
    message: str | None = None,
    changeset_id: str | None = None,
) -> Reverted:
    """Append the inverse of a changeset, named by its id or by a point (version, tag) inside it, expecting
    the head it was computed at. NotFound if the target names no changeset; BadRequest if an event of it
    cannot be undone; InvalidChange if later changes depend on it; ConcurrencyError if the stream moved
    meanwhile. ``changeset_id`` is the revert's own id (a retry records it once)."""
    from events.envelope import Changeset
    from projections.diff import revert_changeset

    recorded = await store.read(stream)
    reverted: str
    if any(r.changeset_id == target for r in recorded):
        reverted = target
    else:
        version = await resolve_point(store, stream, target)
        match = [r for r in recorded if r.version == version]
        if not match:
            raise NotFound(f"nothing to revert at {target!r} in stream {stream!r}", kind="changeset", name=target)
        reverted = match[0].changeset_id
    _check_revertible(recorded, reverted)
    undo = revert_changeset(recorded, reverted)
    if not undo:
        return Reverted(stream, reverted, None)
    head = recorded[-1].version if recorded else 0
    given: dict[str, Any] = {"changeset_id": changeset_id} if changeset_id else {}
    changeset = Changeset(
        stream=stream,
        actor=actor,
        message=message or f"revert changeset {reverted}",
        expected_version=head,
        events=tuple(undo),
        **given,
    )
    return Reverted(stream, reverted, await append_changeset(store, changeset))


# --------------------------------------------------------------------------- verify


@dataclass(frozen=True)
class VerifyRequest:
    checkpoints: Sequence[Checkpoint] = ()
    """Signed checkpoints to hold the store to (parsed and their signatures checked by the caller)."""
    checkpoint_problems: Sequence[CheckpointProblem] = ()
    """Problems found reading the checkpoints (lines that do not verify): reported with the rest."""
    checked_checkpoints: bool = False
    """True when checkpoints were asked for (even none): their line is part of the report."""
    deep: bool = False
    """Recompute every snapshot by replay."""
    databases: Mapping[str, Any] | None = None
    """Databases (service.config's DatabaseConfig by name) whose markers to check against the log."""


@dataclass
class VerifyResult:
    streams: int
    events: int
    problems: list[dict[str, Any]] = field(default_factory=list)
    """Each: check (chain, checkpoint, snapshot, database), where, stream, version, problem, text."""
    unreachable: list[dict[str, Any]] = field(default_factory=list)
    """Databases that could not be read: database, problem, text."""
    notes: list[str] = field(default_factory=list)
    done: list[str] = field(default_factory=list)
    """What held, one phrase per check (``3 streams, 40 events, every chain intact``)."""

    @property
    def ok(self) -> bool:
        return not self.problems and not self.unreachable

    def public(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "streams": self.streams,
            "events": self.events,
            "problems": [{k: v for k, v in p.items() if k != "text"} for p in self.problems],
            "unreachable": [{k: v for k, v in u.items() if k != "text"} for u in self.unreachable],
        }


def _found(check: str, problem: Any, **where: Any) -> dict[str, Any]:
    return {
        "check": check,
        **where,
        "stream": problem.stream,
        "version": problem.version,
        "problem": problem.problem,
        "text": str(problem),
    }


async def verify(store: EventStore, request: VerifyRequest | None = None) -> VerifyResult:
    """Every hash chain walked; with the request's checkpoints, the signed heads; with ``deep``, the snapshots;
    with ``databases``, their markers. A result, never an exception, for anything found."""
    from events.store import verify_store

    request = request or VerifyRequest()
    report = await verify_store(store)
    result = VerifyResult(report.streams, report.events)
    result.problems += [_found("chain", p) for p in report.problems]
    result.done.append(f"{report.streams} streams, {report.events} events, every chain intact")
    if request.checked_checkpoints or request.checkpoints or request.checkpoint_problems:
        from events.checkpoint import check_checkpoints

        found = list(request.checkpoint_problems)
        found += await check_checkpoints(store, list(request.checkpoints), report.problems)
        result.problems += [_found("checkpoint", p, line=p.line) for p in found]
        result.done.append(f"{len(request.checkpoints)} checkpoints hold")
    if request.deep:
        from projections.schema import Projector

        projector = Projector(store)
        snapshots = 0
        for name in await store.event_streams():
            snapshots += len(await store.snapshot_versions(name))
            result.problems += [_found("snapshot", p) for p in await projector.check_snapshots(name)]
        result.done.append(f"{snapshots} snapshots match the replay")
    if request.databases is not None:
        from service.reconciler.witness import check_databases

        witnessed = await check_databases(store, request.databases)
        result.problems += [_found("database", p, database=p.database) for p in witnessed.problems]
        result.unreachable += [
            {"database": p.database, "problem": p.problem, "text": str(p)} for p in witnessed.unreachable
        ]
        result.notes += [str(note) for note in witnessed.notes]
        result.done.append(f"{witnessed.markers} markers in {witnessed.databases} databases witness the log")
    return result


__all__ = [
    "Appended",
    "BadRequest",
    "Blame",
    "Diff",
    "EventPage",
    "HistoryQuery",
    "NotFound",
    "PublicSchemaAt",
    "Reverted",
    "SchemaAt",
    "SchemaSql",
    "StreamSummary",
    "Tag",
    "Tagged",
    "VerifyRequest",
    "VerifyResult",
    "append_changeset",
    "blame_table",
    "changeset_from_data",
    "changeset_from_text",
    "check_stream",
    "create_tag",
    "default_stream",
    "diff_points",
    "history",
    "history_selection",
    "list_events",
    "list_streams",
    "public_schema_at",
    "resolve_point",
    "revert",
    "schema_at",
    "schema_sql",
    "tags",
    "verify",
]
