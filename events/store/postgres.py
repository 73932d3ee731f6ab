"""The production log: PostgreSQL through asyncpg.

- One row per event in ``schemalog_events``; a trigger refuses UPDATE, DELETE and
  TRUNCATE on it. Every table is guarded so (a head only moves forward, to an
  event row of its stream; a snapshot is deleted, never changed; the store's
  identity in ``schemalog_meta`` never changes), and every guard is enabled
  ALWAYS, so that ``session_replication_role = replica`` does not switch it off.
  An owner who drops or disables them can still rewrite the log: signed
  checkpoints (events.checkpoint) and the target databases' markers find that.
- ``schemalog_streams`` holds each stream's head (version, hash); locking its row
  serialises writers of one stream, and the expected-version check reads it.
- ``schemalog_changesets`` makes a retried changeset id a no-op.
- Global positions are assigned under a transaction-scoped advisory lock, so a
  reader following positions never sees a later position commit before an
  earlier one.
- Each append sends ``NOTIFY schemalog`` with ``stream:version`` (the daemon
  LISTENs).
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg

from events.envelope import GENESIS_HASH, Changeset, RecordedEvent, format_time, seal
from events.store.base import (
    REQUIRED_TABLES,
    STORE_SCHEMA,
    AppendResult,
    ChangesetIdConflict,
    ConcurrencyError,
    EventRow,
    Fence,
    LeaseLost,
    RawRow,
    SnapshotRead,
    StoreError,
    StreamInfo,
    newer_problem,
    recorded,
    require_actor,
    tables_problem,
)

NOTIFY_CHANNEL = "schemalog"
_POSITION_LOCK = 0x5C4E_6D10  # advisory lock key: the order of global positions
_INIT_LOCK = 0x5C4E_6D11

SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS schemalog_events (
    position     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    stream       text        NOT NULL,
    version      bigint      NOT NULL,
    changeset_id text        NOT NULL,
    actor        text        NOT NULL,
    message      text        NOT NULL,
    recorded_at  timestamptz NOT NULL,
    type         text        NOT NULL,
    data         jsonb       NOT NULL,
    prev_hash    text        NOT NULL,
    hash         text        NOT NULL,
    CONSTRAINT schemalog_events_stream_version UNIQUE (stream, version)
);
CREATE INDEX IF NOT EXISTS schemalog_events_stream_time ON schemalog_events (stream, recorded_at);
CREATE TABLE IF NOT EXISTS schemalog_streams (
    stream      text   PRIMARY KEY,
    version     bigint NOT NULL,
    hash        text   NOT NULL,
    recorded_at timestamptz
);
CREATE TABLE IF NOT EXISTS schemalog_changesets (
    changeset_id  text   PRIMARY KEY,
    stream        text   NOT NULL,
    first_version bigint NOT NULL,
    last_version  bigint NOT NULL
);
CREATE TABLE IF NOT EXISTS schemalog_snapshots (
    stream     text   NOT NULL,
    version    bigint NOT NULL,
    event_hash text   NOT NULL,
    digest     text   NOT NULL,
    body       text   NOT NULL,
    PRIMARY KEY (stream, version)
);
CREATE TABLE IF NOT EXISTS schemalog_meta (
    id           integer     PRIMARY KEY CHECK (id = 1),
    store_id     text        NOT NULL,
    store_schema integer     NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE OR REPLACE FUNCTION schemalog_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is %: % refused', TG_TABLE_NAME,
        CASE WHEN TG_TABLE_NAME IN ('schemalog_events', 'schemalog_changesets') THEN 'append-only'
             ELSE 'guarded' END, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE OR REPLACE FUNCTION schemalog_head_forward() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- AFTER triggers: they see every row the statement wrote (the append's events included); their WHEN
    -- leaves out the row lock an append takes and a new stream's empty head, both checked here again
    IF TG_OP = 'UPDATE' AND NEW.stream = OLD.stream AND NEW.version = OLD.version AND NEW.hash = OLD.hash
       AND NEW.recorded_at IS NOT DISTINCT FROM OLD.recorded_at THEN
        RETURN NULL;  -- the row lock an append takes: nothing changes
    END IF;
    IF TG_OP = 'INSERT' AND NEW.version = 0 AND NEW.hash = '{genesis}' THEN
        RETURN NULL;  -- a new stream, before its first event
    END IF;
    IF (TG_OP = 'UPDATE' AND (NEW.stream <> OLD.stream OR NEW.version <= OLD.version))
       OR NOT EXISTS (SELECT 1 FROM schemalog_events
                      WHERE stream = NEW.stream AND version = NEW.version AND hash = NEW.hash) THEN
        RAISE EXCEPTION 'schemalog_streams: a head only moves forward, to an event of its stream (% refused)', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION schemalog_meta_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.id = OLD.id AND NEW.store_id = OLD.store_id AND NEW.created_at = OLD.created_at
       AND NEW.store_schema >= OLD.store_schema THEN
        RETURN NEW;  -- an upgrade of the layout
    END IF;
    RAISE EXCEPTION 'schemalog_meta: the store identity never changes (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE OR REPLACE TRIGGER schemalog_events_immutable
    BEFORE UPDATE OR DELETE ON schemalog_events
    FOR EACH ROW EXECUTE FUNCTION schemalog_refuse_change();
CREATE OR REPLACE TRIGGER schemalog_events_no_truncate
    BEFORE TRUNCATE ON schemalog_events
    FOR EACH STATEMENT EXECUTE FUNCTION schemalog_refuse_change();
CREATE OR REPLACE TRIGGER schemalog_streams_no_delete
    BEFORE DELETE ON schemalog_streams
    FOR EACH ROW EXECUTE FUNCTION schemalog_refuse_change();
CREATE OR REPLACE TRIGGER schemalog_streams_forward
    AFTER UPDATE ON schemalog_streams
    FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*)  -- not the row lock every append takes
    EXECUTE FUNCTION schemalog_head_forward();
CREATE OR REPLACE TRIGGER schemalog_streams_new_head
    AFTER INSERT ON schemalog_streams
    FOR EACH ROW WHEN (NEW.version <> 0 OR NEW.hash <> '{genesis}')  -- not a new stream's empty head
    EXECUTE FUNCTION schemalog_head_forward();
CREATE OR REPLACE TRIGGER schemalog_streams_no_truncate
    BEFORE TRUNCATE ON schemalog_streams
    FOR EACH STATEMENT EXECUTE FUNCTION schemalog_refuse_change();
CREATE OR REPLACE TRIGGER schemalog_changesets_immutable
    BEFORE UPDATE OR DELETE ON schemalog_changesets
    FOR EACH ROW EXECUTE FUNCTION schemalog_refuse_change();
CREATE OR REPLACE TRIGGER schemalog_changesets_no_truncate
    BEFORE TRUNCATE ON schemalog_changesets
    FOR EACH STATEMENT EXECUTE FUNCTION schemalog_refuse_change();
CREATE OR REPLACE TRIGGER schemalog_snapshots_no_update
    BEFORE UPDATE ON schemalog_snapshots
    FOR EACH ROW EXECUTE FUNCTION schemalog_refuse_change();
CREATE OR REPLACE TRIGGER schemalog_snapshots_no_truncate
    BEFORE TRUNCATE ON schemalog_snapshots
    FOR EACH STATEMENT EXECUTE FUNCTION schemalog_refuse_change();
CREATE OR REPLACE TRIGGER schemalog_meta_guard
    BEFORE UPDATE OR DELETE ON schemalog_meta
    FOR EACH ROW EXECUTE FUNCTION schemalog_meta_guard();
CREATE OR REPLACE TRIGGER schemalog_meta_no_truncate
    BEFORE TRUNCATE ON schemalog_meta
    FOR EACH STATEMENT EXECUTE FUNCTION schemalog_refuse_change();
""".replace("{genesis}", GENESIS_HASH)

GUARDS = (
    ("schemalog_events", "schemalog_events_immutable"),
    ("schemalog_events", "schemalog_events_no_truncate"),
    ("schemalog_streams", "schemalog_streams_no_delete"),
    ("schemalog_streams", "schemalog_streams_forward"),
    ("schemalog_streams", "schemalog_streams_new_head"),
    ("schemalog_streams", "schemalog_streams_no_truncate"),
    ("schemalog_changesets", "schemalog_changesets_immutable"),
    ("schemalog_changesets", "schemalog_changesets_no_truncate"),
    ("schemalog_snapshots", "schemalog_snapshots_no_update"),
    ("schemalog_snapshots", "schemalog_snapshots_no_truncate"),
    ("schemalog_meta", "schemalog_meta_guard"),
    ("schemalog_meta", "schemalog_meta_no_truncate"),
)
"""(table, trigger): every guard, each made to fire in replica mode too (``ENABLE ALWAYS``), so that
``SET session_replication_role = replica`` does not switch it off."""

# After SCHEMA_SQL (CREATE OR REPLACE TRIGGER leaves a trigger enabled in origin mode only): the guards
# fire whatever the session's replication role, and the store gets its identity if it has none.
GUARD_SQL = (
    "".join(f"ALTER TABLE {table} ENABLE ALWAYS TRIGGER {trigger};\n" for table, trigger in GUARDS)
    + "INSERT INTO schemalog_meta (id, store_id, store_schema)"
    f" SELECT 1, gen_random_uuid()::text, {STORE_SCHEMA} WHERE NOT EXISTS (SELECT 1 FROM schemalog_meta);\n"
    f"UPDATE schemalog_meta SET store_schema = {STORE_SCHEMA} WHERE store_schema < {STORE_SCHEMA};\n"
)

# Whether init has anything to do: every guard present and always enabled, the identity at this layout.
READY_SQL = """
SELECT (SELECT count(*) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
        WHERE c.relnamespace = current_schema()::regnamespace AND t.tgname = ANY($1::text[])
          AND t.tgenabled = 'A') = cardinality($1::text[])
   AND to_regclass('schemalog_meta') IS NOT NULL
   AND EXISTS (SELECT 1 FROM schemalog_meta WHERE store_schema = $2)  -- newer: init's locked path refuses it
"""

# One statement: lock the stream's row (creating it if new), read its head, and look the
# changeset id up. A retry that commits while this waits for the lock is caught by the
# changesets' primary key at write time (and reported as the duplicate it is).
LOCK_STREAM_SQL = """
WITH head AS (
    INSERT INTO schemalog_streams (stream, version, hash) VALUES ($1, 0, $2)
    ON CONFLICT (stream) DO UPDATE SET stream = EXCLUDED.stream
    RETURNING version, hash, recorded_at
)
SELECT head.version, head.hash, head.recorded_at,
       cs.stream AS cs_stream, cs.first_version, cs.last_version
FROM head LEFT JOIN schemalog_changesets cs ON cs.changeset_id = $3
"""

# A fenced append's check, under the stream's lock: the lease row still names this holder and epoch and
# has not expired by the server's clock (clock_timestamp: the transaction may have waited for the lock).
# FOR SHARE conflicts with the row lock a takeover or a renewal takes: a takeover waits for this append
# to commit, or this append waits for the takeover and then finds the row no longer matching.
FENCE_SQL = """
SELECT 1 FROM schemalog_leases
WHERE resource = $1 AND holder = $2 AND epoch = $3 AND expires_at > clock_timestamp()
FOR SHARE
"""

FIND_CHANGESET_SQL = """
SELECT stream, first_version, last_version FROM schemalog_changesets WHERE changeset_id = $1
"""

# One statement: take the position lock, insert the events, record the changeset, move the
# stream's head and notify listeners (delivered at commit).
WRITE_SQL = """
WITH position_lock AS (SELECT pg_advisory_xact_lock($11)),
written AS (
    INSERT INTO schemalog_events
        (stream, version, changeset_id, actor, message, recorded_at, type, data, prev_hash, hash)
    SELECT $1, v, $2, $3, $4, $5, t, d::jsonb, p, h
    FROM position_lock, unnest($6::bigint[], $7::text[], $8::text[], $9::text[], $10::text[]) AS x(v, t, d, p, h)
    RETURNING 1
),
changeset AS (
    INSERT INTO schemalog_changesets (changeset_id, stream, first_version, last_version)
    VALUES ($2, $1, $12, $13)
),
moved AS (
    UPDATE schemalog_streams SET version = $13, hash = $14, recorded_at = $5 WHERE stream = $1
)
SELECT pg_notify($15, $1 || ':' || $13::text), (SELECT count(*) FROM written)
"""

# One statement, so one round trip and one state of the store: the stream's head, the newest snapshot at or
# below the version asked ($2; NULL: the head), the log's hash at that snapshot's version and the first $3
# event texts after it up to that version. A version past the head reads no snapshot and no events.
READ_FROM_SNAPSHOT_SQL = """
WITH bounds AS (
    SELECT h.head, coalesce($2::bigint, h.head) AS upto
    FROM (SELECT coalesce((SELECT version FROM schemalog_streams WHERE stream = $1), 0) AS head) h
),
snap AS (
    SELECT s.version, s.event_hash, s.digest, s.body
    FROM schemalog_snapshots s, bounds b
    WHERE s.stream = $1 AND s.version <= b.upto AND b.upto <= b.head
    ORDER BY s.version DESC LIMIT 1
)
SELECT b.head, b.upto, snap.version AS snap_version, snap.event_hash, snap.digest, snap.body,
       (SELECT e.hash FROM schemalog_events e WHERE e.stream = $1 AND e.version = snap.version) AS log_hash,
       ARRAY(SELECT e.data::text FROM schemalog_events e
             WHERE e.stream = $1 AND e.version > coalesce(snap.version, 0) AND e.version <= b.upto
               AND b.upto <= b.head
             ORDER BY e.version LIMIT $3) AS data
FROM bounds b LEFT JOIN snap ON true
"""

TABLES_SQL = "SELECT name FROM unnest($1::text[]) AS name WHERE to_regclass(quote_ident(name)) IS NOT NULL"
"""Which of the tables named exist (on the search path, where the store's statements find them)."""

LAYOUT_SQL = "SELECT coalesce(max(store_schema), 1) FROM schemalog_meta"
"""The store's layout (STORE_SCHEMA), where ``schemalog_meta`` exists (a store without it is at 1)."""

SELECT_COLUMNS = (
    "position, stream, version, changeset_id, actor, message, recorded_at, data::text AS data, prev_hash, hash"
)


def normalise_url(url: str) -> str:
    """``postgresql+asyncpg://`` and ``postgres://`` as asyncpg wants them."""
    for prefix in ("postgresql+asyncpg://", "postgres+asyncpg://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix) :]
    return url


def _row_to_event(row: asyncpg.Record) -> RecordedEvent:
    return recorded(
        position=row["position"],
        stream=row["stream"],
        version=row["version"],
        changeset_id=row["changeset_id"],
        actor=row["actor"],
        message=row["message"],
        recorded_at=row["recorded_at"],
        data=row["data"],
        prev_hash=row["prev_hash"],
        hash=row["hash"],
    )


class PostgresStore:
    """The event log in PostgreSQL. Create with :meth:`open`."""

    def __init__(self, url: str, pool: asyncpg.Pool, schema_version: int = STORE_SCHEMA):
        self.url = url
        self._pool = pool
        self.schema_version = schema_version

    @classmethod
    async def open(cls, url: str, *, min_size: int = 1, max_size: int = 4, create: bool = True) -> PostgresStore:
        """Connect. With ``create`` (what ``init`` needs), a database without the schemalog tables is a
        store yet to be made; without, it must hold a schemalog store. A store with some of its tables
        missing is a StoreError either way."""
        dsn = normalise_url(url)
        try:
            pool = await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size)
        except (OSError, asyncpg.PostgresError, ValueError) as exc:
            raise StoreError(f"cannot connect to the store {url}: {exc}") from exc
        assert pool is not None
        try:
            found = {row[0] for row in await pool.fetch(TABLES_SQL, [*REQUIRED_TABLES, "schemalog_meta"])}
            problem = tables_problem(found, create=create)
            layout = 0 if not found else 1
            if problem is None and "schemalog_meta" in found:
                layout = int(await pool.fetchval(LAYOUT_SQL))
                problem = newer_problem(layout)
        except BaseException:
            await pool.close()
            raise
        if problem is not None:
            await pool.close()
            raise StoreError(f"cannot open the store {url}: {problem}")
        return cls(url, pool, layout)

    @property
    def pool(self) -> asyncpg.Pool:
        """The store's connection pool (the daemon's leases share it)."""
        return self._pool

    async def close(self) -> None:
        await self._pool.close()

    async def init(self) -> None:
        async with self._pool.acquire() as conn:
            if await self._ready(conn):
                self.schema_version = STORE_SCHEMA
                return  # nothing to do: no DDL, no lock taken on the tables
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock($1)", _INIT_LOCK)
                # under the lock: a newer schemalog's init may have upgraded the store since it was opened
                if await conn.fetchval("SELECT to_regclass('schemalog_meta') IS NOT NULL"):
                    problem = newer_problem(int(await conn.fetchval(LAYOUT_SQL)))
                    if problem is not None:
                        raise StoreError(f"cannot initialise the store {self.url}: {problem}")
                await conn.execute(SCHEMA_SQL)
                await conn.execute(GUARD_SQL)
        self.schema_version = STORE_SCHEMA

    async def stored_schema(self) -> int:
        async with self._pool.acquire() as conn:
            if await conn.fetchval("SELECT to_regclass('schemalog_meta') IS NULL"):
                return 1
            return int(await conn.fetchval(LAYOUT_SQL))

    @staticmethod
    async def _ready(conn: asyncpg.Connection) -> bool:
        """Whether the store is complete at this layout (checked before any DDL: init runs on every command)."""
        if await conn.fetchval("SELECT to_regclass('schemalog_meta') IS NULL"):
            return False
        return bool(await conn.fetchval(READY_SQL, [trigger for _, trigger in GUARDS], STORE_SCHEMA))

    async def append(
        self, changeset: Changeset, *, now: datetime | None = None, fence: Fence | None = None
    ) -> AppendResult:
        actor = require_actor(changeset)
        stream = changeset.stream
        async with self._pool.acquire() as conn:
            try:
                async with conn.transaction():
                    return await self._append(conn, changeset, actor, now, fence)
            except asyncpg.UniqueViolationError:
                # A concurrent retry of the same changeset id won; report it as such.
                existing = await conn.fetchrow(FIND_CHANGESET_SQL, changeset.changeset_id)
                if existing is None:
                    raise
                return self._duplicate(changeset, existing, stream)

    def _duplicate(self, changeset: Changeset, existing: Any, stream: str) -> AppendResult:
        if existing["stream"] != stream:
            raise ChangesetIdConflict(
                f"changeset id {changeset.changeset_id!r} is already used on stream {existing['stream']!r}"
            )
        return AppendResult(
            stream=stream,
            changeset_id=changeset.changeset_id,
            first_version=existing["first_version"],
            last_version=existing["last_version"],
            duplicate=True,
        )

    async def _append(
        self, conn: asyncpg.Connection, changeset: Changeset, actor: str, now: datetime | None, fence: Fence | None
    ) -> AppendResult:
        stream = changeset.stream
        head = await conn.fetchrow(LOCK_STREAM_SQL, stream, GENESIS_HASH, changeset.changeset_id)
        assert head is not None
        if head["cs_stream"] is not None:
            return self._duplicate(
                changeset,
                {
                    "stream": head["cs_stream"],
                    "first_version": head["first_version"],
                    "last_version": head["last_version"],
                },
                stream,
            )
        if fence is not None:
            await self._check_fence(conn, fence)
        current = head["version"]
        if changeset.expected_version is not None and changeset.expected_version != current:
            # A retry of a changeset that committed while we waited is a duplicate, not a conflict.
            existing = await conn.fetchrow(FIND_CHANGESET_SQL, changeset.changeset_id)
            if existing is not None:
                return self._duplicate(changeset, existing, stream)
            raise ConcurrencyError(stream, changeset.expected_version, current)
        moment = now or datetime.now(UTC)
        if head["recorded_at"] is not None and moment < head["recorded_at"]:
            moment = head["recorded_at"]  # keep time order within a stream
        sealed = seal(
            stream=stream,
            first_version=current + 1,
            changeset_id=changeset.changeset_id,
            actor=actor,
            message=changeset.message,
            recorded_at=moment,
            events=changeset.events,
            prev_hash=head["hash"],
        )
        last = sealed[-1]
        await conn.execute(
            WRITE_SQL,
            stream,
            changeset.changeset_id,
            actor,
            changeset.message,
            moment,
            [s.version for s in sealed],
            [s.data["type"] for s in sealed],
            [s.text for s in sealed],
            [s.prev_hash for s in sealed],
            [s.hash for s in sealed],
            _POSITION_LOCK,
            current + 1,
            last.version,
            last.hash,
            NOTIFY_CHANNEL,
        )
        return AppendResult(
            stream=stream,
            changeset_id=changeset.changeset_id,
            first_version=current + 1,
            last_version=last.version,
        )

    @staticmethod
    async def _check_fence(conn: asyncpg.Connection, fence: Fence) -> None:
        """LeaseLost unless the fence's lease is still held (a store without a lease table holds none)."""
        try:
            held = await conn.fetchval(FENCE_SQL, fence.resource, fence.holder, fence.epoch)
        except asyncpg.UndefinedTableError:
            held = None
        if held is None:
            raise LeaseLost(fence)

    async def find_changeset(self, changeset_id: str) -> AppendResult | None:
        row = await self._pool.fetchrow(FIND_CHANGESET_SQL, changeset_id)
        if row is None:
            return None
        return AppendResult(row["stream"], changeset_id, row["first_version"], row["last_version"], True)

    async def version(self, stream: str) -> int:
        value = await self._pool.fetchval("SELECT version FROM schemalog_streams WHERE stream = $1", stream)
        return int(value or 0)

    async def streams(self) -> list[StreamInfo]:
        rows = await self._pool.fetch(
            "SELECT stream, version, hash FROM schemalog_streams WHERE version > 0 ORDER BY stream"
        )
        return [StreamInfo(r["stream"], r["version"], r["hash"]) for r in rows]

    async def read(
        self,
        stream: str,
        *,
        after_version: int = 0,
        to_version: int | None = None,
        until: datetime | None = None,
        types: Sequence[str] | None = None,
    ) -> list[RecordedEvent]:
        sql = f"SELECT {SELECT_COLUMNS} FROM schemalog_events WHERE stream = $1 AND version > $2"
        args: list[Any] = [stream, after_version]
        if to_version is not None:
            args.append(to_version)
            sql += f" AND version <= ${len(args)}"
        if until is not None:
            args.append(until)
            sql += f" AND recorded_at <= ${len(args)}"
        if types is not None:
            args.append(list(types))
            sql += f" AND type = ANY(${len(args)}::text[])"
        rows = await self._pool.fetch(sql + " ORDER BY version", *args)
        return [_row_to_event(r) for r in rows]

    async def read_all(self, *, after_position: int = 0, limit: int | None = None) -> list[RecordedEvent]:
        sql = f"SELECT {SELECT_COLUMNS} FROM schemalog_events WHERE position > $1 ORDER BY position"
        args: list[Any] = [after_position]
        if limit is not None:
            sql += " LIMIT $2"
            args.append(limit)
        rows = await self._pool.fetch(sql, *args)
        return [_row_to_event(r) for r in rows]

    async def raw_rows(self, stream: str) -> AsyncIterator[RawRow]:
        async with self._pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
            cursor = conn.cursor(
                f"SELECT {SELECT_COLUMNS} FROM schemalog_events WHERE stream = $1 ORDER BY version",
                stream,
                prefetch=2000,
            )
            async for row in cursor:
                yield RawRow(
                    position=row["position"],
                    stream=row["stream"],
                    version=row["version"],
                    changeset_id=row["changeset_id"],
                    actor=row["actor"],
                    message=row["message"],
                    recorded_at=format_time(row["recorded_at"]),
                    data=json.loads(row["data"]),
                    prev_hash=row["prev_hash"],
                    hash=row["hash"],
                )

    async def scan(
        self,
        *,
        stream: str | None = None,
        after_position: int = 0,
        before_position: int | None = None,
        descending: bool = False,
        chunk: int = 5000,
    ) -> AsyncGenerator[list[EventRow], None]:
        sql = (
            "SELECT position, stream, version, changeset_id, actor, message, recorded_at, type, data::text,"
            " prev_hash, hash FROM schemalog_events WHERE position > $1 AND position < $2"
        )
        args: list[Any] = [after_position, before_position if before_position is not None else 2**62]
        if stream is not None:
            sql += " AND stream = $3"
            args.append(stream)
        sql += " ORDER BY position DESC" if descending else " ORDER BY position"
        async with self._pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            cursor = await conn.cursor(sql, *args)
            while True:
                rows = await cursor.fetch(chunk)
                if not rows:
                    return
                yield [
                    EventRow(r[0], r[1], r[2], r[3], r[4], r[5], format_time(r[6]), r[7], r[8], r[9], r[10])
                    for r in rows
                ]

    async def stream_heads(self) -> dict[str, tuple[int, str]]:
        rows = await self._pool.fetch("SELECT stream, version, hash FROM schemalog_streams")
        return {r["stream"]: (r["version"], r["hash"]) for r in rows}

    async def event_streams(self) -> list[str]:
        rows = await self._pool.fetch("SELECT DISTINCT stream FROM schemalog_events ORDER BY stream")
        return [r["stream"] for r in rows]

    async def version_at(self, stream: str, moment: datetime) -> int:
        value = await self._pool.fetchval(
            "SELECT max(version) FROM schemalog_events WHERE stream = $1 AND recorded_at <= $2", stream, moment
        )
        return int(value or 0)

    async def event_hash(self, stream: str, version: int) -> str | None:
        value = await self._pool.fetchval(
            "SELECT hash FROM schemalog_events WHERE stream = $1 AND version = $2", stream, version
        )
        return str(value) if value is not None else None

    async def store_id(self) -> str:
        try:
            value = await self._pool.fetchval("SELECT store_id FROM schemalog_meta")
        except asyncpg.UndefinedTableError:
            value = None
        if value is None:
            raise StoreError(f"the store {self.url} has no identity (run schemalog init)")
        return str(value)

    async def read_event_data(
        self, stream: str, *, after_version: int = 0, to_version: int | None = None
    ) -> AsyncIterator[list[str]]:
        """The events' public JSON texts only, in version order, in chunks (the fast replay path)."""
        async with self._pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            upper = to_version if to_version is not None else 2**62
            cursor = await conn.cursor(
                "SELECT data::text FROM schemalog_events WHERE stream = $1 AND version > $2 AND version <= $3"
                " ORDER BY version",
                stream,
                after_version,
                upper,
            )
            while True:
                rows = await cursor.fetch(20000)
                if not rows:
                    return
                yield [r[0] for r in rows]

    async def save_snapshot(self, stream: str, version: int, event_hash: str, digest: str, body: str) -> None:
        """Store a snapshot, replacing any at that version: a delete and an insert in one transaction
        (snapshots are never updated); of two writers at once, the first one's stays."""
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("DELETE FROM schemalog_snapshots WHERE stream = $1 AND version = $2", stream, version)
            await conn.execute(
                "INSERT INTO schemalog_snapshots (stream, version, event_hash, digest, body)"
                " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (stream, version) DO NOTHING",
                stream,
                version,
                event_hash,
                digest,
                body,
            )

    async def snapshot_below(self, stream: str, version: int) -> tuple[int, str, str, str] | None:
        """The newest snapshot at or below ``version``: (version, event_hash, digest, body), or None."""
        row = await self._pool.fetchrow(
            "SELECT version, event_hash, digest, body FROM schemalog_snapshots WHERE stream = $1 AND version <= $2"
            " ORDER BY version DESC LIMIT 1",
            stream,
            version,
        )
        return (row["version"], row["event_hash"], row["digest"], row["body"]) if row is not None else None

    async def read_from_snapshot(self, stream: str, version: int | None, *, limit: int) -> SnapshotRead:
        row = await self._pool.fetchrow(READ_FROM_SNAPSHOT_SQL, stream, version, limit)
        assert row is not None
        snap_version = row["snap_version"]
        snapshot = None if snap_version is None else (snap_version, row["event_hash"], row["digest"], row["body"])
        return SnapshotRead(row["head"], row["upto"], snapshot, row["log_hash"], list(row["data"]))

    async def snapshot_versions(self, stream: str) -> list[int]:
        rows = await self._pool.fetch(
            "SELECT version FROM schemalog_snapshots WHERE stream = $1 ORDER BY version", stream
        )
        return [r["version"] for r in rows]

    async def drop_snapshots(self, stream: str | None = None) -> int:
        if stream is None:
            status = await self._pool.execute("DELETE FROM schemalog_snapshots")
        else:
            status = await self._pool.execute("DELETE FROM schemalog_snapshots WHERE stream = $1", stream)
        return int(status.split()[-1])
