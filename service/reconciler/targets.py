"""Target databases: connecting, locking, markers, introspection and running statements.

One class per dialect, the same methods on each:
- PostgreSQL through asyncpg: a session advisory lock; the whole plan, the check
  of the result and the marker in one transaction. The statements go in batches
  (several in one message, each batch in a savepoint); a batch that fails is run
  again a statement at a time, so a failure still names its exact statement.
- SQLite through SQLAlchemy (in a thread): the run is one ``BEGIN EXCLUSIVE``
  transaction, which is also the lock.
- MySQL/MariaDB through SQLAlchemy + PyMySQL (in a thread): ``GET_LOCK``; DDL
  commits by itself, so the marker records each statement done.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

import sqlalchemy as sa
import structlog

from events.model import Schema
from service.reconciler.dialects import get_dialect
from service.reconciler.dialects.base import Dialect
from service.reconciler.marker import (
    MARKER_SELECT,
    MARKER_TABLE,
    Marker,
    marker_from_row,
    marker_params,
    upsert_sql,
)
from service.reconciler.plan import Plan

log = structlog.get_logger("schemalog.reconciler")

T = TypeVar("T")


class TargetError(Exception):
    """A target database problem worth a clear message."""


class ConnectFailed(TargetError):
    """The database could not be reached (no server, wrong credentials, no such folder): one line."""


def connect_message(url: str, exc: BaseException) -> str:
    """``cannot connect to URL: the driver's first line`` (the password left out)."""
    detail = str(getattr(exc, "orig", None) or exc).strip() or type(exc).__name__
    return f"cannot connect to {display_url(url)}: {' '.join(detail.splitlines()[0].split())}"


class LockBusy(TargetError):
    """Another migrator holds the database's lock."""


class VerifyFailed(TargetError):
    def __init__(self, message: str, differences: list[str]):
        super().__init__(message)
        self.differences = differences


class StatementFailed(TargetError):
    def __init__(self, statement: str, error: str, done: int):
        super().__init__(f"{error} (in: {statement})")
        self.statement = statement
        self.error = error
        self.done = done


def lock_key(stream: str) -> int:
    digest = hashlib.sha256(f"schemalog:{stream}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def dialect_of(url: str) -> str:
    scheme = url.split(":", 1)[0].split("+", 1)[0].lower()
    return {"postgres": "postgresql", "mariadb": "mysql"}.get(scheme, scheme)


def display_url(url: str) -> str:
    """A URL fit for logs and outcome events: no password."""
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return parts._replace(netloc=netloc).geturl()
    return url


class Target:
    dialect: Dialect
    url: str

    async def close(self) -> None: ...
    async def acquire(self, stream: str, timeout: float) -> None: ...
    async def release(self) -> None: ...
    async def read_marker(self, stream: str) -> Marker | None:
        raise NotImplementedError

    async def marker_streams(self) -> list[str]:
        raise NotImplementedError

    async def introspect(self, expected: Schema | None = None) -> Schema:
        """The database's schema. ``expected``: the schema (in this target's form, ``expected()``) it is
        about to be compared with, where known: a target may compare while it reads."""
        raise NotImplementedError

    async def has_nulls(self, table: str, column: str) -> bool:
        raise NotImplementedError

    async def plan_problem(self, plan: Plan) -> str | None:
        """Why this server cannot run ``plan`` as planned (known before anything runs), else None."""
        return None

    async def write_marker(self, marker: Marker) -> None: ...

    async def apply(
        self, plan: Plan, start: int, done: Marker, progress: Callable[[int], Marker], *, resuming: bool = False
    ) -> None:
        """Run ``plan.steps[start:]``, check the result against ``plan.target``, then write ``done``.

        ``progress(i)`` is the marker to record after ``i`` steps (used where DDL is not
        transactional). ``resuming``: an interrupted run is being finished, so step ``start``
        may have run already (its marker not written yet). Raises StatementFailed or VerifyFailed.
        Each statement is told to the run's reporter (``service.progress.current()``) as it starts and
        when it is done, and the check of the result as the ``checking`` phase.
        """

    def expected(self, schema: Schema) -> Schema:
        return self.dialect.normalize(schema)


# --------------------------------------------------------------------------- SQLAlchemy-based (in a thread)


class _SyncTarget(Target):
    def __init__(self, url: str, engine: sa.Engine, dialect: str):
        self.url = url
        self.engine = engine
        self.dialect = get_dialect(dialect)
        self.conn: sa.Connection | None = None
        self.interrupted = threading.Event()

    async def _run(self, fn: Callable[[sa.Connection], T]) -> T:
        """``fn`` on the connection, in a thread. Cancelled (Ctrl-C), it waits for the thread to be done
        with the connection before it says so: what runs next (release, close) uses that connection, and
        two threads on one connection break it. ``interrupted`` tells a long ``fn`` to stop at its next
        safe point (the MySQL apply loop: between statements)."""

        def call() -> T:
            if self.conn is None:
                self.conn = self.engine.connect()
            return fn(self.conn)

        running = asyncio.ensure_future(asyncio.to_thread(call))
        try:
            return await asyncio.shield(running)
        except asyncio.CancelledError:
            self.interrupted.set()
            try:
                await running
            except Exception as exc:  # the cancel is what is said; the statement's own error is logged
                log.info("interrupted_statement_failed", error=str(exc))
            raise

    async def connect(self) -> None:
        """Connect now, so that an unreachable database is a ConnectFailed before anything else runs."""
        try:
            await self._run(lambda conn: None)
        except (sa.exc.SQLAlchemyError, OSError) as exc:
            self.engine.dispose()
            raise ConnectFailed(connect_message(self.url, exc)) from exc

    async def close(self) -> None:
        def shut() -> None:
            if self.conn is not None:
                self.conn.close()
                self.conn = None
            self.engine.dispose()

        await asyncio.to_thread(shut)

    def _marker_rows_sync(self, conn: sa.Connection) -> list[Any]:
        if MARKER_TABLE not in sa.inspect(conn).get_table_names():
            return []
        return list(conn.execute(sa.text(MARKER_SELECT)).mappings())

    async def read_marker(self, stream: str) -> Marker | None:
        rows = await self._run(self._marker_rows_sync)
        for row in rows:
            if row["stream"] == stream:
                return marker_from_row(dict(row))
        return None

    async def marker_streams(self) -> list[str]:
        return [r["stream"] for r in await self._run(self._marker_rows_sync)]

    async def has_nulls(self, table: str, column: str) -> bool:
        q = self.dialect
        sql = f"SELECT 1 FROM {q.qualified(table)} WHERE {q.quote(column)} IS NULL LIMIT 1"
        return await self._run(lambda c: c.exec_driver_sql(sql).first() is not None)

    def _write_marker_sync(self, conn: sa.Connection, marker: Marker) -> None:
        delete, insert = upsert_sql("named")
        params = marker_params(marker)
        conn.execute(sa.text(delete), {"stream": params["stream"]})
        conn.execute(sa.text(insert), params)


async def open_target(url: str) -> Target:
    kind = dialect_of(url)
    if kind == "postgresql":
        from service.reconciler.dialects.postgresql.target import PostgresTarget

        return await PostgresTarget.open(url)
    if kind == "mysql":
        from service.reconciler.dialects.mysql.target import MysqlTarget

        return await MysqlTarget.open(url)
    if kind == "sqlite":
        from service.reconciler.dialects.sqlite.target import SqliteTarget

        return await SqliteTarget.open(url)
    raise TargetError(
        f"unsupported database URL {display_url(url)!r}: use postgresql://, mysql:// (or mariadb://) or sqlite:///"
    )
