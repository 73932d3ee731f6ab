"""The schema at any point of a stream: head, a version, a time or a tag.

A projection is a plain fold of the log (events.aggregate's rules). Snapshots
are only a starting state for the fold: stored beside the log, rebuildable at
any time, and checked before use. A snapshot's digest is an HMAC-SHA256 with a
key kept outside the store (``$SCHEMALOG_SNAPSHOT_KEY``, else the file
``$XDG_CONFIG_HOME/schemalog/snapshot.key``, made with mode 0600 on first
need), so that someone who can write to the store cannot forge one. A snapshot
is used only if its digest verifies and the event hash it was taken at is
still the log's hash at that version; anything else is ignored (logged, the
fold starts further back, and the snapshot is taken again when the fold passes
its version). ``Projector.check_snapshots`` recomputes every snapshot by a
replay (``verify --deep``).
"""

from __future__ import annotations

import gc
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from events.store.base import ChainProblem, EventStore
from projections.replay import Replay, gc_paused

if TYPE_CHECKING:  # the models: imported where a fold's result is built, not by ``show`` (issue 14)
    from events.aggregate import State
    from events.model import Schema, Table


class _Log:
    """structlog's logger, imported on the first line logged: a fold that logs nothing (``show``, ``history``)
    never imports structlog (issue 14). Each call goes through ``structlog.get_logger`` as ever."""

    def __getattr__(self, name: str) -> Any:
        import structlog

        return getattr(structlog.get_logger("schemalog.projections"), name)


log = _Log()

SNAPSHOT_EVERY = 1000
"""Take a snapshot each time a fold passes a multiple of this many versions."""


READ_AT_ONCE = 20_000
"""The most event texts a fold takes from ``read_from_snapshot`` (the rest come from ``read_event_data``, in
chunks): a point past a snapshot has fewer than ``SNAPSHOT_EVERY``."""


class PointError(ValueError):
    """A point that names nothing in the stream (unknown tag, version past head, ...)."""


@dataclass(frozen=True)
class Point:
    """Where in a stream: exactly one of version, time, tag; none of them is the head."""

    version: int | None = None
    time: datetime | None = None
    tag: str | None = None

    def __str__(self) -> str:
        if self.version is not None:
            return str(self.version)
        if self.time is not None:
            return self.time.isoformat()
        if self.tag is not None:
            return self.tag
        return "head"


HEAD = Point()


def parse_time_text(text: str) -> datetime:
    """``2026-11-20``, ``2026-11-20T10:00Z``, ``2026-11-20 10:00:00+01:00``; naive means UTC."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise PointError(f"bad time {text!r}: write it as ISO 8601, such as 2026-11-20T10:00Z") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment


def parse_point(text: str | int | None) -> Point:
    """A point as users write it: ``head``, ``12`` (or ``v12``), an ISO time, or a tag name."""
    if text is None:
        return HEAD
    if isinstance(text, int):
        return Point(version=text)
    from events.catalog import POINT_HEAD, POINT_NEGATIVE, POINT_TIME, POINT_VERSION

    value = text.strip()
    if not value or POINT_HEAD.match(value):
        return HEAD
    if POINT_VERSION.match(value):
        return Point(version=int(value.lstrip("vV")))
    if POINT_TIME.match(value):
        return Point(time=parse_time_text(value))
    if POINT_NEGATIVE.match(value):
        raise PointError(f"bad version {value!r}: versions start at 0")
    return Point(tag=value)


# --------------------------------------------------------------------------- snapshots


SNAPSHOT_KEY_ENV = "SCHEMALOG_SNAPSHOT_KEY"
"""The snapshot key itself (any text); without it, the key file is used."""


def snapshot_key_file() -> Path:
    """``$XDG_CONFIG_HOME/schemalog/snapshot.key`` (``~/.config`` when that is unset or not absolute)."""
    base = os.environ.get("XDG_CONFIG_HOME", "")
    root = Path(base) if base and os.path.isabs(base) else Path.home() / ".config"
    return root / "schemalog" / "snapshot.key"


def load_snapshot_key() -> bytes:
    """The key of snapshot digests: ``$SCHEMALOG_SNAPSHOT_KEY``, else the key file, made (32 random bytes,
    hex, mode 0600) if missing. OSError or ValueError when neither can be had."""
    value = os.environ.get(SNAPSHOT_KEY_ENV)
    if value:
        return value.encode("utf-8")
    path = snapshot_key_file()
    if not path.exists():
        _make_key_file(path)
    key = path.read_bytes().strip()
    if not key:
        raise ValueError(f"the snapshot key file {path} is empty")
    return key


def _make_key_file(path: Path) -> None:
    """Write a new key beside ``path`` and link it into place: readers never see a partial key, and of
    two processes making one at once, the first one's stays."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(secrets.token_hex(32) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temp, path)
            log.info("snapshot_key_created", path=str(path))
        except FileExistsError:
            pass
    finally:
        temp.unlink(missing_ok=True)


def snapshot_digest(stream: str, version: int, event_hash: str, body: str, key: bytes) -> str:
    """HMAC-SHA256 of a snapshot's stream, version, event hash and body."""
    text = f"{stream}\x00{version}\x00{event_hash}\x00{body}"
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).hexdigest()


def digest_verifies(expected: str, stored: object) -> bool:
    """A constant-time comparison with a stored digest, whatever was stored in its place."""
    return hmac.compare_digest(expected.encode("ascii"), str(stored).encode("utf-8", "replace"))


# --------------------------------------------------------------------------- the projector


class Projector:
    """Folds a stream to any point, using and taking snapshots."""

    def __init__(
        self,
        store: EventStore,
        *,
        snapshot_every: int = SNAPSHOT_EVERY,
        take_snapshots: bool = True,
        snapshot_key: bytes | None = None,
    ):
        self.store = store
        self.snapshot_every = snapshot_every
        self.take_snapshots = take_snapshots
        self._key = snapshot_key
        self._key_missing = False

    def _snapshot_key(self) -> bytes | None:
        """The snapshot key, loaded on first need; None (logged once) if it cannot be had: then no
        snapshot is trusted or taken, and every fold starts from the first event."""
        if self._key is None and not self._key_missing:
            try:
                self._key = load_snapshot_key()
            except (OSError, ValueError) as exc:
                self._key_missing = True
                log.warning("snapshot_key_unavailable", error=str(exc))
        return self._key

    async def resolve(self, stream: str, point: Point) -> int:
        """The stream version a point names (0 is the empty schema before the first event)."""
        head = await self.store.version(stream)
        if point.version is not None:
            if point.version > head:
                raise PointError(f"stream {stream!r} has no version {point.version}: its head is {head}")
            return point.version
        if point.time is not None:
            return await self.store.version_at(stream, point.time)
        if point.tag is not None:
            tags = await self.tags(stream)
            if point.tag not in tags:
                known = ", ".join(sorted(tags)) or "none"
                raise PointError(f"stream {stream!r} has no tag {point.tag!r} (tags: {known})")
            return tags[point.tag]
        return head

    async def tags(self, stream: str) -> dict[str, int]:
        from events.catalog import TagCreated

        events = await self.store.read(stream, types=["tag_created"])
        out: dict[str, int] = {}
        for recorded in events:
            assert isinstance(recorded.event, TagCreated)
            out[recorded.event.tag] = recorded.event.version
        return out

    async def state(self, stream: str, point: Point = HEAD) -> tuple[int, State]:
        """The version a point names and the working state there (a fresh object: yours to change)."""
        version = await self.resolve(stream, point)
        return version, await self.state_at_version(stream, version)

    async def schema(self, stream: str, point: Point = HEAD) -> tuple[int, Schema]:
        version, state = await self.state(stream, point)
        return version, state.to_schema()

    async def public_state(self, stream: str, point: Point = HEAD) -> tuple[int, Replay]:
        """The version a point names and the fold there in public form, no schema object built (``show``'s
        text: it needs no model, so it imports no pydantic; issue 14). The head or a version is resolved by
        the same read as the fold's start (``EventStore.read_from_snapshot``: one round trip on PostgreSQL)."""
        if point.time is None and point.tag is None:
            with gc_paused():
                return await self._read_replay(stream, point.version)
        version = await self.resolve(stream, point)
        with gc_paused():
            return await self._read_replay(stream, version)

    async def state_at_version(self, stream: str, version: int) -> State:
        """The working state at ``version`` (a fresh object: yours to change).

        The last state built is kept (one per process), under its store object, stream, version and the
        chain hash of the log's event at that version: the same point asked again of the same store (a
        daemon's drift checks, one after another) is a copy of it, after one look-up of that hash. The
        hash covers every event up to the version, so a log changed under it is a miss; the frozen
        schema objects are shared, the mutable indexes copied."""
        global _kept
        event_hash = await self.store.event_hash(stream, version) if version > 0 else None
        kept = _kept
        if (
            event_hash is not None
            and kept is not None
            and kept[0] is self.store
            and kept[1] == (stream, version, event_hash)
        ):
            return kept[2].copy()
        state = await self._fold(stream, version)
        _kept = None if event_hash is None else (self.store, (stream, version, event_hash), state.copy())
        return state

    async def _fold(self, stream: str, version: int) -> State:
        with gc_paused():  # the fold and the objects built from it
            state = (await self._replay(stream, version)).to_state()
        promote_to_old_generation()
        return state

    async def _replay(self, stream: str, version: int) -> Replay:
        """The stream folded to ``version`` in public form, from the best snapshot below it."""
        start_version, replay, ignored = await self._start(stream, version)
        return await self._fold_on(stream, replay, start_version, version, ignored, None)

    async def _read_replay(self, stream: str, version: int | None) -> tuple[int, Replay]:
        """:meth:`_replay` to ``version`` (None: the head), its start and the events after it read at once
        (``read_from_snapshot``); PointError for a version past the head. The snapshot read is checked as
        :meth:`_start` checks each one (its digest, then the log's hash at its version, then its body);
        one not to be trusted sends the fold to :meth:`_start` below it, as if it had been met there."""
        read = await self.store.read_from_snapshot(stream, version, limit=READ_AT_ONCE)
        if read.version > read.head:
            raise PointError(f"stream {stream!r} has no version {read.version}: its head is {read.head}")
        found = read.snapshot
        if found is None:
            return read.version, await self._fold_on(stream, Replay(), 0, read.version, [], read.events)
        key = self._snapshot_key()
        if key is None:  # no snapshot trusted: the fold starts from the first event, as _start's does
            return read.version, await self._fold_on(stream, Replay(), 0, read.version, [], None)
        replay = self._taken_at(stream, found, read.log_hash) if self._signed(stream, found, key) else None
        if replay is not None:
            return read.version, await self._fold_on(stream, replay, found[0], read.version, [], read.events)
        start_version, replay, ignored = await self._start(stream, found[0] - 1, [found[0]])
        return read.version, await self._fold_on(stream, replay, start_version, read.version, ignored, None)

    async def _fold_on(
        self, stream: str, replay: Replay, start_version: int, version: int, ignored: list[int], first: list[str] | None
    ) -> Replay:
        """Fold the events after ``start_version`` up to ``version`` into ``replay``, taking the snapshots it
        passes (and the ``ignored`` ones, again): ``first``, the first of them as already read (at most
        READ_AT_ONCE), then the rest from the store."""
        retake = sorted(v for v in ignored if start_version < v <= version)  # the ignored ones, taken again
        current = start_version
        if first is not None:
            current = await self._fold_texts(stream, replay, first, current, retake)
            if len(first) < READ_AT_ONCE:
                return replay
        async for chunk in self.store.read_event_data(stream, after_version=current, to_version=version):
            current = await self._fold_texts(stream, replay, chunk, current, retake)
        return replay

    async def _fold_texts(self, stream: str, replay: Replay, texts: list[str], current: int, retake: list[int]) -> int:
        """Fold event texts that follow version ``current``, up to each snapshot boundary (or a snapshot to
        take again, popped from ``retake``), snapshot, go on; the version reached."""
        every = self.snapshot_every
        while texts:
            stop = current + every - current % every
            if retake and retake[0] < stop:
                stop = retake[0]
            batch, texts = texts[: stop - current], texts[stop - current :]
            replay.apply_texts(batch)
            current += len(batch)
            if current == stop:
                if retake and retake[0] == stop:
                    retake.pop(0)
                await self._snapshot(stream, current, replay)
        return current

    async def _start(
        self, stream: str, version: int, ignored: list[int] | None = None
    ) -> tuple[int, Replay, list[int]]:
        """The best trustworthy snapshot at or below ``version`` (else the empty state), and the versions
        of the snapshots above it that were ignored (after those given)."""
        below = version
        ignored = list(ignored or ())
        while below > 0:
            found = await self.store.snapshot_below(stream, below)
            if found is None:
                break
            below = found[0] - 1
            key = self._snapshot_key()
            if key is None:
                break
            replay = (
                self._taken_at(stream, found, await self.store.event_hash(stream, found[0]))
                if self._signed(stream, found, key)
                else None
            )
            if replay is not None:
                return found[0], replay, ignored
            ignored.append(found[0])
        return 0, Replay(), ignored

    @staticmethod
    def _signed(stream: str, found: tuple[int, str, str, str], key: bytes) -> bool:
        """Whether a snapshot's digest verifies (logged when not)."""
        snap_version, event_hash, digest, body = found
        if digest_verifies(snapshot_digest(stream, snap_version, event_hash, body, key), digest):
            return True
        log.warning("snapshot_ignored", stream=stream, version=snap_version, reason="digest does not verify")
        return False

    @staticmethod
    def _taken_at(stream: str, found: tuple[int, str, str, str], log_hash: str | None) -> Replay | None:
        """The state a signed snapshot holds, if the log's hash at its version (``log_hash``) is still the
        one it was taken at and its body reads; else None (logged)."""
        snap_version, event_hash, _, body = found
        if log_hash != event_hash:
            log.warning("snapshot_ignored", stream=stream, version=snap_version, reason="log differs")
            return None
        try:
            return Replay.from_body(body)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning("snapshot_ignored", stream=stream, version=snap_version, reason=repr(exc))
            return None

    async def _snapshot(self, stream: str, version: int, replay: Replay) -> None:
        if not self.take_snapshots:
            return
        key = self._snapshot_key()
        if key is None:
            return
        event_hash = await self.store.event_hash(stream, version)
        if event_hash is None:
            return
        body = replay.body()
        await self.store.save_snapshot(
            stream, version, event_hash, snapshot_digest(stream, version, event_hash, body, key), body
        )

    async def check_snapshots(self, stream: str) -> list[ChainProblem]:
        """Recompute every stored snapshot of a stream by a replay from its first event, and report each
        one that differs (``verify --deep``): its body, or the event it says it was taken at."""
        versions = await self.store.snapshot_versions(stream)
        if not versions:
            return []
        key = self._snapshot_key()
        problems: list[ChainProblem] = []
        replay = Replay()
        current = 0
        pending = list(versions)
        with gc_paused():
            try:
                async for chunk in self.store.read_event_data(stream, to_version=pending[-1]):
                    while pending and (chunk or pending[0] == current):
                        batch, chunk = chunk[: pending[0] - current], chunk[pending[0] - current :]
                        replay.apply_texts(batch)
                        current += len(batch)
                        if current == pending[0]:
                            problems.extend(await self._check_snapshot(stream, pending.pop(0), replay, key))
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                problem = f"the log cannot be replayed up to this snapshot: {exc!r}"
                return [*problems, *(ChainProblem(stream, v, problem) for v in pending)]
        problems.extend(ChainProblem(stream, v, "a snapshot of a version the log does not have") for v in pending)
        return problems

    async def _check_snapshot(self, stream: str, version: int, replay: Replay, key: bytes | None) -> list[ChainProblem]:
        found = await self.store.snapshot_below(stream, version)
        if found is None or found[0] != version:
            return []  # dropped meanwhile
        _, event_hash, digest, body = found
        problems = []
        if await self.store.event_hash(stream, version) != event_hash:
            problems.append(ChainProblem(stream, version, "snapshot taken at another event than the log's"))
        signed = key is not None and digest_verifies(snapshot_digest(stream, version, event_hash, body, key), digest)
        try:
            stored = Replay.from_body(body).body()
        except (ValueError, KeyError, TypeError, AttributeError):
            stored = None
        if stored != Replay.from_body(replay.body()).body():
            why = (
                "its digest verifies: the snapshot key may be known to whoever wrote it"
                if signed
                else "its digest does not verify, so it was not used"
            )
            problems.append(ChainProblem(stream, version, f"snapshot differs from the replay of the log ({why})"))
        return problems

    async def rebuild_snapshots(self, stream: str) -> list[int]:
        """Throw the stream's snapshots away and take them again from a full replay."""
        await self.store.drop_snapshots(stream)
        head = await self.store.version(stream)
        await self._fold(stream, head)  # a fold, never the kept state: the fold takes the snapshots
        return await self.store.snapshot_versions(stream)


_kept: tuple[EventStore, tuple[str, int, str], State] | None = None
"""The last state ``Projector.state_at_version`` built: (its store, (stream, version, event hash), the state)."""


def promote_to_old_generation() -> None:
    """Move every object the cyclic collector tracks into its oldest generation, without a scan.

    A state just built (hundreds of thousands of objects at 5,000 tables, made while collection was
    paused) is young: the next young collections would walk all of it, twice, and count it towards a
    full collection, about 0.4 s of whatever runs next (a drift check's read of the database). It lives
    as long as the run that asked for it, as old objects do. ``gc.freeze`` then ``gc.unfreeze`` moves the
    young generations into the oldest one, where they are walked at the next full collection only; a
    young cycle among them is collected then, later but not lost.
    """
    gc.freeze()
    gc.unfreeze()


def normalized(schema: Schema) -> dict[str, Any]:
    """A schema's tables for comparison: column, index and constraint order do not count.

    Column order is kept for display, but it is not part of what a schema is: a
    dropped column that comes back comes back last, as it does in PostgreSQL.
    Enum types are not in it (the markers' state hash is of this form, the same as
    before enum types existed): :func:`normalized_enums` gives them.
    """
    with gc_paused():  # plain dicts and lists, no cycles: a collection in the middle would walk them all
        return {name: _normalized_table(table) for name, table in sorted(schema.tables.items())}


_LATER_FIELDS: dict[str, dict[str, Any]] = {
    "table": {"primary_key_name": None, "partition_by": None, "partition_of": None},
    "column": {"collation": None, "charset": None, "generated": None, "identity_options": None, "on_update": None},
    "index": {"method": None, "elements": [], "where": None, "include": []},
    "constraint": {"deferrable": False, "initially_deferred": False, "anonymous": False},
}
"""Fields added to the schema objects after markers began to keep a hash of this form: left out while they
hold their default, so that a database migrated before they existed still matches its marker."""
LATER_FIELDS = _LATER_FIELDS  # (service.reconciler.marker dumps the same form itself)


def _without_later(data: dict[str, Any], kind: str) -> dict[str, Any]:
    for key, default in _LATER_FIELDS[kind].items():
        if key in data and data[key] == default:
            del data[key]
    return data


def _normalized_table(table: Table) -> dict[str, Any]:
    data = _without_later(table.model_dump(mode="json"), "table")
    data["columns"] = sorted((_without_later(c, "column") for c in data["columns"]), key=lambda c: c["name"])
    data["indexes"] = sorted((_without_later(i, "index") for i in data["indexes"]), key=lambda i: i["name"])
    data["constraints"] = sorted(
        (_without_later(c, "constraint") for c in data["constraints"]), key=lambda c: c["name"]
    )
    return data


def normalized_enums(schema: Schema) -> dict[str, list[str]]:
    """A schema's enum types for comparison: by name, each with its values in order (order counts)."""
    return {name: list(schema.enums[name].values) for name in sorted(schema.enums)}


def normalized_domains(schema: Schema) -> dict[str, dict[str, Any]]:
    """A schema's domains for comparison: by name, each in its public form (checks in name order)."""
    out: dict[str, dict[str, Any]] = {}
    for name, domain in sorted((getattr(schema, "domains", None) or {}).items()):
        data = domain.model_dump(mode="json")
        data["checks"] = sorted(data["checks"], key=lambda c: c["name"])
        out[name] = data
    return out


def normalized_views(schema: Schema) -> dict[str, dict[str, Any]]:
    """A schema's views for comparison: by name, each in its public form (what it reads sorted)."""
    out: dict[str, dict[str, Any]] = {}
    for name, view in sorted((getattr(schema, "views", None) or {}).items()):
        data = view.model_dump(mode="json")
        data["uses"], data["columns"] = sorted(data["uses"]), sorted(data["columns"])
        out[name] = data
    return out


def normalized_extensions(schema: Schema) -> dict[str, dict[str, Any]]:
    """A schema's extensions for comparison: by name, each in its public form."""
    found = getattr(schema, "extensions", None) or {}
    return {name: found[name].model_dump(mode="json") for name in sorted(found)}


def normalized_routines(schema: Schema) -> dict[str, dict[str, Any]]:
    """A schema's routines for comparison: by key (``name(signature)``), each in its public form (uses sorted)."""
    found = getattr(schema, "routines", None) or {}
    out: dict[str, dict[str, Any]] = {}
    for key in sorted(found):
        data = found[key].model_dump(mode="json")
        data["uses"] = sorted(data["uses"])
        out[key] = data
    return out


def normalized_triggers(schema: Schema) -> dict[str, dict[str, Any]]:
    """A schema's triggers for comparison: by key (``table.name``), each in its public form (uses sorted)."""
    found = getattr(schema, "triggers", None) or {}
    out: dict[str, dict[str, Any]] = {}
    for key in sorted(found):
        data = found[key].model_dump(mode="json")
        data["uses"] = sorted(data["uses"])
        out[key] = data
    return out


def same_schema(a: Schema, b: Schema) -> bool:
    """The same tables (in any order), the same enum types, domains, views, extensions, routines and triggers."""
    return (
        normalized_extensions(a) == normalized_extensions(b)
        and normalized_routines(a) == normalized_routines(b)
        and normalized_triggers(a) == normalized_triggers(b)
    ) and (
        normalized(a) == normalized(b)
        and normalized_enums(a) == normalized_enums(b)
        and normalized_domains(a) == normalized_domains(b)
        and normalized_views(a) == normalized_views(b)
    )
