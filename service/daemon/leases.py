"""Leases: which replica runs which database, kept in the store's own database.

One row per resource in ``schemalog_leases`` (a fleet database's name, or ``daemon``: the SQLite store's
single-daemon lock): its holder, an epoch that goes up by one on every claim, and an expiry computed from
the store database's clock, never from a replica's. A replica claims free rows (no holder, or expired),
renews what it holds before the time runs out, and releases what it holds when it stops; a replica that
dies loses its rows to the others once they expire. Every outcome is appended under a
:class:`~events.store.base.Fence` (resource, holder, epoch), checked in the append's own transaction, so
a replica that lost a lease cannot record anything for that database.

PostgreSQL: claims take rows with ``FOR UPDATE SKIP LOCKED``, so replicas claiming at once split the free
rows without waiting for each other; a fenced append holds the lease row ``FOR SHARE`` until it commits,
so a takeover either waits for it (skips the row) or is seen by it. SQLite: every change is one
``BEGIN IMMEDIATE`` transaction on a connection of its own to the store's file, and the daemon runs alone
(:meth:`SqliteLeases.claim_daemon`).

``schemalog_replicas`` holds each replica's heartbeat, so that a replica can size its share of the fleet.
The runtime status (``note``) is kept in the lease row for ``schemalog status``; callers pass redacted
text only (no URL, no password).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from events.store.base import EventStore, Fence, StoreError

if TYPE_CHECKING:
    import aiosqlite
    import asyncpg

DAEMON_RESOURCE = "daemon"
"""The SQLite store's single-daemon lock."""

MAX_ERROR_CHARS = 2000
"""A note's error text is cut to this length (a status line, not a log)."""


@dataclass(frozen=True)
class Lease:
    resource: str
    """A fleet database's name, or ``daemon`` (the SQLite store's single-daemon lock)."""
    holder: str
    """The replica's name."""
    epoch: int
    """Goes up by one on every claim (a takeover or a fresh claim): the fence of everything done under it."""
    expires_at: datetime
    """By the store database's clock."""

    @property
    def fence(self) -> Fence:
        """What an append made under this lease passes as ``fence``."""
        return Fence(self.resource, self.holder, self.epoch)


@dataclass(frozen=True)
class LeaseRow:
    """A lease row as ``schemalog status`` shows it."""

    resource: str
    holder: str | None
    epoch: int
    expires_at: datetime | None
    live: bool
    """Held and not expired by the database's clock."""
    state: str | None
    last_error: str | None
    next_attempt: datetime | None
    updated_at: datetime | None


class DaemonAlreadyRunning(Exception):
    """Another daemon holds the SQLite store's lock."""


class Leases(Protocol):
    single: bool
    """True where the daemon runs alone (SQLite: :meth:`claim_daemon` first, and on every heartbeat)."""
    notifies: bool
    """True where the store sends NOTIFY on every append (PostgreSQL): LISTEN for wake-ups."""

    async def setup(self) -> None:
        """Create ``schemalog_leases`` and ``schemalog_replicas`` if missing (idempotent)."""

    async def heartbeat(self, replica: str, ttl: float) -> int:
        """Record that ``replica`` is alive for ``ttl`` more seconds; the number of live replicas (itself included)."""

    async def claim(self, replica: str, candidates: Sequence[str], limit: int, ttl: float) -> list[Lease]:
        """Make rows for candidates that have none, then take up to ``limit`` of the free ones (no holder,
        or expired): holder ``replica``, epoch + 1, expiry now + ``ttl``. Never a live lease of anyone."""

    async def renew(self, replica: str, held: Sequence[Lease], ttl: float) -> tuple[list[Lease], list[str]]:
        """Extend, in one statement, the leases still held at the same epoch and not expired:
        (the renewed leases, the resources lost)."""

    async def leave(self, replica: str) -> None:
        """The replica stops: its heartbeat row goes, so the others take their share at once."""

    async def release(self, replica: str, leases: Sequence[Lease]) -> None:
        """Give the leases up (only those still ours at the same epoch)."""

    async def note(self, lease: Lease, *, state: str, last_error: str | None, next_attempt: datetime | None) -> None:
        """Keep the runtime status in the lease row (only while it is ours at that epoch)."""

    async def rows(self) -> list[LeaseRow]:
        """Every lease row, by resource."""

    async def claim_daemon(self, replica: str, ttl: float) -> Lease:
        """Take (or, for its holder, extend) the single-daemon lock; DaemonAlreadyRunning while another
        replica's is live. Only where ``single``."""

    async def release_daemon(self, replica: str) -> None:
        """Give the single-daemon lock up, if ``replica`` holds it."""

    async def close(self) -> None: ...


async def open_leases(store: EventStore) -> Leases:
    """The leases kept in ``store``'s database (tables made if missing)."""
    from events.store.sqlite import SqliteStore

    leases: Leases
    if isinstance(store, SqliteStore):
        leases = await SqliteLeases.open(store.url)
    else:
        from events.store.postgres import PostgresStore

        if not isinstance(store, PostgresStore):
            raise StoreError(f"no leases for the store {store.url}")
        leases = PostgresLeases(store.pool)
    try:
        await leases.setup()
    except BaseException:
        await leases.close()
        raise
    return leases


def _check_ttl(ttl: float) -> float:
    if not ttl > 0:
        raise ValueError(f"a lease time must be positive, not {ttl}")
    return float(ttl)


def _error_text(text: str | None) -> str | None:
    return text if text is None or len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 1] + "…"


def _lost(held: Sequence[Lease], renewed: Sequence[Lease]) -> list[str]:
    kept = {lease.resource for lease in renewed}
    return sorted({lease.resource for lease in held} - kept)


# ---------------------------------------------------------------------------------------------------------
# PostgreSQL: clock_timestamp() (not now(): a transaction may have waited) is the clock of every expiry.

_PG_SETUP_LOCK = 0x5C4E_6D12  # advisory lock key: CREATE TABLE IF NOT EXISTS run at once races on pg_type

PG_SETUP_SQL = """
CREATE TABLE IF NOT EXISTS schemalog_leases (
    resource     text        PRIMARY KEY,
    holder       text,
    epoch        bigint      NOT NULL DEFAULT 0,
    expires_at   timestamptz,
    state        text,
    last_error   text,
    next_attempt timestamptz,
    updated_at   timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE TABLE IF NOT EXISTS schemalog_replicas (
    replica      text        PRIMARY KEY,
    started_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    heartbeat_at timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL
);
"""

PG_READY_SQL = "SELECT to_regclass('schemalog_leases') IS NOT NULL AND to_regclass('schemalog_replicas') IS NOT NULL"

# One statement: this replica's heartbeat, the rows of replicas dead for a day pruned (rows another
# replica is pruning skipped), and the others alive counted (a CTE's own write is not visible to it).
PG_HEARTBEAT_SQL = """
WITH beat AS (
    INSERT INTO schemalog_replicas (replica, heartbeat_at, expires_at)
    VALUES ($1, clock_timestamp(), clock_timestamp() + make_interval(secs => $2))
    ON CONFLICT (replica) DO UPDATE SET heartbeat_at = EXCLUDED.heartbeat_at, expires_at = EXCLUDED.expires_at
    RETURNING 1
),
pruned AS (
    DELETE FROM schemalog_replicas WHERE replica IN (
        SELECT replica FROM schemalog_replicas
        WHERE replica <> $1 AND expires_at < clock_timestamp() - interval '1 day'
        FOR UPDATE SKIP LOCKED)
)
SELECT 1 + count(*) FROM schemalog_replicas WHERE replica <> $1 AND expires_at > clock_timestamp()
"""

# In resource order, so that two replicas making the same rows never wait on each other crosswise.
PG_ENSURE_SQL = """
INSERT INTO schemalog_leases (resource)
SELECT DISTINCT r FROM unnest($1::text[]) AS r ORDER BY r
ON CONFLICT (resource) DO NOTHING
"""

# Free rows only, each locked as it is taken; a row another claimer (or a fenced append) has locked is
# skipped; a row taken and committed meanwhile is re-checked on its new version (and so left alone).
PG_CLAIM_SQL = """
WITH free AS (
    SELECT resource FROM schemalog_leases
    WHERE resource = ANY($2::text[]) AND (holder IS NULL OR expires_at IS NULL OR expires_at <= clock_timestamp())
    ORDER BY resource
    LIMIT $3
    FOR UPDATE SKIP LOCKED
)
UPDATE schemalog_leases AS l
SET holder = $1, epoch = l.epoch + 1, expires_at = clock_timestamp() + make_interval(secs => $4),
    updated_at = clock_timestamp()
FROM free WHERE l.resource = free.resource
RETURNING l.resource, l.holder, l.epoch, l.expires_at
"""

PG_RENEW_SQL = """
UPDATE schemalog_leases AS l
SET expires_at = clock_timestamp() + make_interval(secs => $4)
FROM unnest($2::text[], $3::bigint[]) AS h(resource, epoch)
WHERE l.resource = h.resource AND l.epoch = h.epoch AND l.holder = $1 AND l.expires_at > clock_timestamp()
RETURNING l.resource, l.holder, l.epoch, l.expires_at
"""

PG_RELEASE_SQL = """
UPDATE schemalog_leases AS l
SET holder = NULL, expires_at = NULL, updated_at = clock_timestamp()
FROM unnest($2::text[], $3::bigint[]) AS h(resource, epoch)
WHERE l.resource = h.resource AND l.epoch = h.epoch AND l.holder = $1
"""

PG_NOTE_SQL = """
UPDATE schemalog_leases
SET state = $4, last_error = $5, next_attempt = $6, updated_at = clock_timestamp()
WHERE resource = $1 AND holder = $2 AND epoch = $3
"""

PG_ROWS_SQL = """
SELECT resource, holder, epoch, expires_at,
       holder IS NOT NULL AND expires_at IS NOT NULL AND expires_at > clock_timestamp() AS live,
       state, last_error, next_attempt, updated_at
FROM schemalog_leases ORDER BY resource
"""


def _pg_lease(row: Any) -> Lease:
    return Lease(row["resource"], row["holder"], row["epoch"], row["expires_at"])


class PostgresLeases:
    """Leases in the PostgreSQL store, through the store's pool (closing them leaves the pool open)."""

    single = False
    notifies = True

    def __init__(self, pool: asyncpg.Pool):
        self._pool = pool

    async def setup(self) -> None:
        async with self._pool.acquire() as conn:
            if await conn.fetchval(PG_READY_SQL):
                return
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock($1)", _PG_SETUP_LOCK)
                await conn.execute(PG_SETUP_SQL)

    async def heartbeat(self, replica: str, ttl: float) -> int:
        return int(await self._pool.fetchval(PG_HEARTBEAT_SQL, replica, _check_ttl(ttl)))

    async def leave(self, replica: str) -> None:
        await self._pool.execute("DELETE FROM schemalog_replicas WHERE replica = $1", replica)

    async def claim(self, replica: str, candidates: Sequence[str], limit: int, ttl: float) -> list[Lease]:
        seconds = _check_ttl(ttl)
        names = list(candidates)
        if not names:
            return []
        await self._pool.execute(PG_ENSURE_SQL, names)
        if limit <= 0:
            return []
        rows = await self._pool.fetch(PG_CLAIM_SQL, replica, names, limit, seconds)
        return sorted((_pg_lease(r) for r in rows), key=lambda lease: lease.resource)

    async def renew(self, replica: str, held: Sequence[Lease], ttl: float) -> tuple[list[Lease], list[str]]:
        seconds = _check_ttl(ttl)
        if not held:
            return [], []
        rows = await self._pool.fetch(
            PG_RENEW_SQL, replica, [lease.resource for lease in held], [lease.epoch for lease in held], seconds
        )
        renewed = sorted((_pg_lease(r) for r in rows), key=lambda lease: lease.resource)
        return renewed, _lost(held, renewed)

    async def release(self, replica: str, leases: Sequence[Lease]) -> None:
        if leases:
            await self._pool.execute(
                PG_RELEASE_SQL, replica, [lease.resource for lease in leases], [lease.epoch for lease in leases]
            )

    async def note(self, lease: Lease, *, state: str, last_error: str | None, next_attempt: datetime | None) -> None:
        await self._pool.execute(
            PG_NOTE_SQL, lease.resource, lease.holder, lease.epoch, state, _error_text(last_error), next_attempt
        )

    async def rows(self) -> list[LeaseRow]:
        return [
            LeaseRow(
                resource=r["resource"],
                holder=r["holder"],
                epoch=r["epoch"],
                expires_at=r["expires_at"],
                live=bool(r["live"]),
                state=r["state"],
                last_error=r["last_error"],
                next_attempt=r["next_attempt"],
                updated_at=r["updated_at"],
            )
            for r in await self._pool.fetch(PG_ROWS_SQL)
        ]

    async def claim_daemon(self, replica: str, ttl: float) -> Lease:
        raise StoreError("a PostgreSQL store runs any number of daemons: it has no single-daemon lock")

    async def release_daemon(self, replica: str) -> None:
        """Nothing to release (no single-daemon lock here)."""

    async def close(self) -> None:
        """Nothing to close: the pool is the store's."""


# ---------------------------------------------------------------------------------------------------------
# SQLite: times are REAL seconds since 1970 by the database's clock (julianday('now')); candidates and
# held leases travel as one JSON parameter each (no limit on their number, unlike bound variables).


def _sqlite_now() -> str:
    from events.store.sqlite import UNIX_NOW_SQL

    return UNIX_NOW_SQL


SQLITE_SETUP_SQL = """
CREATE TABLE IF NOT EXISTS schemalog_leases (
    resource     TEXT    PRIMARY KEY,
    holder       TEXT,
    epoch        INTEGER NOT NULL DEFAULT 0,
    expires_at   REAL,
    state        TEXT,
    last_error   TEXT,
    next_attempt REAL,
    updated_at   REAL
);
CREATE TABLE IF NOT EXISTS schemalog_replicas (
    replica      TEXT PRIMARY KEY,
    started_at   REAL NOT NULL,
    heartbeat_at REAL NOT NULL,
    expires_at   REAL NOT NULL
);
"""


def _sqlite_sql() -> dict[str, str]:
    now = _sqlite_now()
    return {
        "heartbeat": (
            "INSERT INTO schemalog_replicas (replica, started_at, heartbeat_at, expires_at)"
            f" VALUES (?1, {now}, {now}, {now} + ?2)"
            " ON CONFLICT (replica) DO UPDATE"
            " SET heartbeat_at = excluded.heartbeat_at, expires_at = excluded.expires_at"
        ),
        "prune": f"DELETE FROM schemalog_replicas WHERE replica <> ?1 AND expires_at < {now} - 86400",
        "live": f"SELECT 1 + count(*) FROM schemalog_replicas WHERE replica <> ?1 AND expires_at > {now}",
        "ensure": (
            f"INSERT OR IGNORE INTO schemalog_leases (resource, updated_at) SELECT DISTINCT value, {now}"
            " FROM json_each(?1)"
        ),
        "claim": (
            f"UPDATE schemalog_leases SET holder = ?1, epoch = epoch + 1, expires_at = {now} + ?4, updated_at = {now}"
            " WHERE resource IN (SELECT resource FROM schemalog_leases"
            "   WHERE resource IN (SELECT value FROM json_each(?2))"
            f"     AND (holder IS NULL OR expires_at IS NULL OR expires_at <= {now})"
            "   ORDER BY resource LIMIT ?3)"
            " RETURNING resource, holder, epoch, expires_at"
        ),
        "renew": (
            f"UPDATE schemalog_leases SET expires_at = {now} + ?3"
            f" WHERE holder = ?1 AND expires_at > {now} AND (resource, epoch) IN"
            "   (SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?2))"
            " RETURNING resource, holder, epoch, expires_at"
        ),
        "release": (
            f"UPDATE schemalog_leases SET holder = NULL, expires_at = NULL, updated_at = {now}"
            " WHERE holder = ?1 AND (resource, epoch) IN"
            "   (SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?2))"
        ),
        "keep": (
            f"UPDATE schemalog_leases SET expires_at = {now} + ?3"
            f" WHERE resource = ?2 AND holder = ?1 AND expires_at > {now}"
            " RETURNING resource, holder, epoch, expires_at"
        ),
        "release_one": (
            f"UPDATE schemalog_leases SET holder = NULL, expires_at = NULL, updated_at = {now}"
            " WHERE resource = ?2 AND holder = ?1"
        ),
        "note": (
            f"UPDATE schemalog_leases SET state = ?4, last_error = ?5, next_attempt = ?6, updated_at = {now}"
            " WHERE resource = ?1 AND holder = ?2 AND epoch = ?3"
        ),
        "rows": (
            "SELECT resource, holder, epoch, expires_at,"
            f" holder IS NOT NULL AND expires_at IS NOT NULL AND expires_at > {now} AS live,"
            " state, last_error, next_attempt, updated_at FROM schemalog_leases ORDER BY resource"
        ),
        "one": (
            f"SELECT holder, expires_at, holder IS NOT NULL AND expires_at > {now} AS live"
            " FROM schemalog_leases WHERE resource = ?1"
        ),
    }


def _from_unix(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def _to_unix(moment: datetime | None) -> float | None:
    if moment is None:
        return None
    return (moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)).timestamp()


def _sqlite_lease(row: Any) -> Lease:
    expires = _from_unix(row[3])
    assert expires is not None
    return Lease(row[0], row[1], int(row[2]), expires)


def _pairs(leases: Sequence[Lease]) -> str:
    return json.dumps([[lease.resource, lease.epoch] for lease in leases])


class SqliteLeases:
    """Leases in the SQLite store's file, on a connection of their own. Create with :meth:`open`."""

    single = True
    notifies = False

    def __init__(self, url: str, conn: aiosqlite.Connection):
        self.url = url
        self._conn = conn
        self._sql = _sqlite_sql()
        self._lock = asyncio.Lock()  # one transaction at a time on this connection, whichever task asks

    @classmethod
    async def open(cls, url: str) -> SqliteLeases:
        import aiosqlite

        from events.store.sqlite import path_from_url

        path = path_from_url(url)
        if path == ":memory:":
            raise StoreError("the daemon needs a store file, not :memory: (another connection cannot see it)")
        try:
            conn = await aiosqlite.connect(path, isolation_level=None, timeout=60)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the store {url}: {exc}") from exc
        try:
            await conn.execute("PRAGMA busy_timeout = 60000")
            await conn.execute("PRAGMA journal_mode = WAL")
            await conn.execute("PRAGMA synchronous = NORMAL")
        except BaseException:
            await conn.close()
            raise
        return cls(url, conn)

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[aiosqlite.Connection]:
        """One write transaction (``BEGIN IMMEDIATE``: writers of the file take turns, the store's appends too)."""
        async with self._lock:
            conn = self._conn
            await conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                await conn.execute("ROLLBACK")
                raise
            await conn.execute("COMMIT")

    async def _all(self, conn: aiosqlite.Connection, sql: str, args: tuple[Any, ...]) -> list[Any]:
        async with conn.execute(sql, args) as cur:
            return list(await cur.fetchall())

    async def setup(self) -> None:
        async with self._write() as conn:
            for statement in SQLITE_SETUP_SQL.split(";"):
                if statement.strip():
                    await conn.execute(statement)

    async def heartbeat(self, replica: str, ttl: float) -> int:
        seconds = _check_ttl(ttl)
        async with self._write() as conn:
            await conn.execute(self._sql["heartbeat"], (replica, seconds))
            await conn.execute(self._sql["prune"], (replica,))
            rows = await self._all(conn, self._sql["live"], (replica,))
        return int(rows[0][0])

    async def leave(self, replica: str) -> None:
        async with self._write() as conn:
            await conn.execute("DELETE FROM schemalog_replicas WHERE replica = ?", (replica,))

    async def _claim(
        self, conn: aiosqlite.Connection, replica: str, candidates: Sequence[str], limit: int, seconds: float
    ) -> list[Lease]:
        names = json.dumps(list(candidates))
        await conn.execute(self._sql["ensure"], (names,))
        if limit <= 0:
            return []
        rows = await self._all(conn, self._sql["claim"], (replica, names, limit, seconds))
        return sorted((_sqlite_lease(r) for r in rows), key=lambda lease: lease.resource)

    async def claim(self, replica: str, candidates: Sequence[str], limit: int, ttl: float) -> list[Lease]:
        seconds = _check_ttl(ttl)
        if not candidates:
            return []
        async with self._write() as conn:
            return await self._claim(conn, replica, candidates, limit, seconds)

    async def claim_daemon(self, replica: str, ttl: float) -> Lease:
        """Take the store's single-daemon lock (epoch + 1), or extend it for the replica holding it (the
        same epoch: the daemon calls this on every heartbeat); DaemonAlreadyRunning while another
        replica's is live."""
        seconds = _check_ttl(ttl)
        async with self._write() as conn:
            kept = await self._all(conn, self._sql["keep"], (replica, DAEMON_RESOURCE, seconds))
            if kept:
                return _sqlite_lease(kept[0])
            taken = await self._claim(conn, replica, [DAEMON_RESOURCE], 1, seconds)
            if taken:
                return taken[0]
            rows = await self._all(conn, self._sql["one"], (DAEMON_RESOURCE,))
        holder, expires = rows[0][0], _from_unix(rows[0][1])
        until = expires.isoformat(timespec="seconds") if expires is not None else "it is released"
        raise DaemonAlreadyRunning(
            f"another daemon (replica {holder}) holds this SQLite store until {until}; stop it first"
        )

    async def release_daemon(self, replica: str) -> None:
        async with self._write() as conn:
            await conn.execute(self._sql["release_one"], (replica, DAEMON_RESOURCE))

    async def renew(self, replica: str, held: Sequence[Lease], ttl: float) -> tuple[list[Lease], list[str]]:
        seconds = _check_ttl(ttl)
        if not held:
            return [], []
        async with self._write() as conn:
            rows = await self._all(conn, self._sql["renew"], (replica, _pairs(held), seconds))
        renewed = sorted((_sqlite_lease(r) for r in rows), key=lambda lease: lease.resource)
        return renewed, _lost(held, renewed)

    async def release(self, replica: str, leases: Sequence[Lease]) -> None:
        if leases:
            async with self._write() as conn:
                await conn.execute(self._sql["release"], (replica, _pairs(leases)))

    async def note(self, lease: Lease, *, state: str, last_error: str | None, next_attempt: datetime | None) -> None:
        async with self._write() as conn:
            await conn.execute(
                self._sql["note"],
                (lease.resource, lease.holder, lease.epoch, state, _error_text(last_error), _to_unix(next_attempt)),
            )

    async def rows(self) -> list[LeaseRow]:
        async with self._lock:
            rows = await self._all(self._conn, self._sql["rows"], ())
        return [
            LeaseRow(
                resource=r[0],
                holder=r[1],
                epoch=int(r[2]),
                expires_at=_from_unix(r[3]),
                live=bool(r[4]),
                state=r[5],
                last_error=r[6],
                next_attempt=_from_unix(r[7]),
                updated_at=_from_unix(r[8]),
            )
            for r in rows
        ]

    async def close(self) -> None:
        await self._conn.close()
