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
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import asyncpg
import sqlalchemy as sa
import structlog
from sqlalchemy.pool import NullPool

from events.model import Schema
from service.reconciler.dialects import get_dialect
from service.reconciler.dialects.base import Dialect
from service.reconciler.introspect import introspect_mysql, introspect_postgresql, introspect_sqlite
from service.reconciler.locks import LOCK_SETTINGS_SQL, OUT_OF_LOCKS_HINT, LockBudget, lock_problem
from service.reconciler.marker import (
    MARKER_DDL,
    MARKER_SELECT,
    MARKER_TABLE,
    Marker,
    marker_from_row,
    marker_params,
    marker_upgrades,
    mysql_upsert_sql,
    upsert_sql,
)
from service.reconciler.normalize import differences
from service.reconciler.plan import Plan
from service.reconciler.statements import check_statement, check_steps

log = structlog.get_logger("schemalog.reconciler")

T = TypeVar("T")


class TargetError(Exception):
    """A target database problem worth a clear message."""


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
        """

    def expected(self, schema: Schema) -> Schema:
        return self.dialect.normalize(schema)


# --------------------------------------------------------------------------- PostgreSQL


OUT_OF_MEMORY = "53200"
"""PostgreSQL's SQLSTATE for "out of shared memory" (the lock table full, among others)."""

BATCH_STATEMENTS = 200
"""Statements sent to PostgreSQL in one message (at least; see batch_bounds)."""
BATCH_SAVEPOINT = "schemalog_batch"
MAX_BATCHES = 48
"""Each batch is a subtransaction: past 64 in one transaction, PostgreSQL's per-backend cache of their
ids overflows and every other session's snapshot checks get slower while the run lasts."""


def batch_bounds(total: int, start: int) -> list[tuple[int, int]]:
    """``[first, last)`` ranges covering steps ``start`` to ``total``: at most MAX_BATCHES batches of
    at least BATCH_STATEMENTS statements (fewer in the last)."""
    size = max(BATCH_STATEMENTS, -(-(total - start) // MAX_BATCHES))
    return [(first, min(first + size, total)) for first in range(start, total, size)]


PG_SESSION_SQL = "SET standard_conforming_strings = on"
"""Statements are proven single by PostgreSQL's parser read the way the server reads them only with this
on (the default since 9.1): with it off, a backslash in a literal would end the literal elsewhere."""


class PostgresTarget(Target):
    def __init__(self, url: str, conn: asyncpg.Connection):
        self.url = url
        self.conn = conn
        self.dialect = get_dialect("postgresql")
        self._key: int | None = None

    @classmethod
    async def open(cls, url: str) -> PostgresTarget:
        from events.store.postgres import normalise_url

        try:
            conn = await asyncpg.connect(normalise_url(url))
        except (OSError, asyncpg.PostgresError, ValueError) as exc:
            raise TargetError(f"cannot connect to {display_url(url)}: {exc}") from exc
        return cls(url, conn)

    async def close(self) -> None:
        await self.conn.close()

    async def acquire(self, stream: str, timeout: float) -> None:
        key = lock_key(stream)
        deadline = time.monotonic() + timeout
        waited = False
        while not await self.conn.fetchval("SELECT pg_try_advisory_lock($1)", key):
            if not waited:
                log.info("waiting_for_lock", database=display_url(self.url))
                waited = True
            if time.monotonic() >= deadline:
                raise LockBusy(f"another migrator holds the lock on {display_url(self.url)} (waited {timeout:g}s)")
            await asyncio.sleep(0.1)
        self._key = key
        await self._marker_table()

    async def release(self) -> None:
        if self._key is not None and not self.conn.is_closed():
            await self.conn.execute("SELECT pg_advisory_unlock($1)", self._key)
            self._key = None

    async def _marker_rows(self) -> list[asyncpg.Record]:
        exists = await self.conn.fetchval("SELECT to_regclass($1) IS NOT NULL", MARKER_TABLE)
        if not exists:
            return []
        return list(await self.conn.fetch(MARKER_SELECT))

    async def read_marker(self, stream: str) -> Marker | None:
        for row in await self._marker_rows():
            if row["stream"] == stream:
                return marker_from_row(dict(row))
        return None

    async def marker_streams(self) -> list[str]:
        return [r["stream"] for r in await self._marker_rows()]

    async def introspect(self, expected: Schema | None = None) -> Schema:
        return await introspect_postgresql(self.conn, expected)

    async def has_nulls(self, table: str, column: str) -> bool:
        q = self.dialect
        sql = f"SELECT 1 FROM {q.qualified(table)} WHERE {q.quote(column)} IS NULL LIMIT 1"
        return await self.conn.fetchval(sql) is not None

    async def plan_problem(self, plan: Plan) -> str | None:
        row = await self.conn.fetchrow(LOCK_SETTINGS_SQL)
        assert row is not None
        return lock_problem(plan, LockBudget(row["per_transaction"], row["connections"], row["prepared"]))

    async def _run_batch(self, plan: Plan, first: int, last: int) -> None:
        """Run ``plan.steps[first:last]`` in one simple-query message, inside a savepoint.

        If the batch fails, it is rolled back to the savepoint and run again a statement at a time, so
        that the failure names the exact statement and its own error (as a statement at a time would).
        """
        steps = plan.steps[first:last]
        check_steps(self.dialect.name, steps)  # batched only because each statement is proven one statement
        if len(steps) == 1:
            await self._run_one(steps[0].sql, first)
            return
        body = "".join(f"{step.sql}\n;\n" for step in steps)  # the newline ends a statement's trailing -- comment
        try:
            await self.conn.execute(f"SAVEPOINT {BATCH_SAVEPOINT};\n{body}RELEASE SAVEPOINT {BATCH_SAVEPOINT}")
        except asyncpg.PostgresError as exc:
            log.info("batch_failed", first=first, last=last, error=f"{type(exc).__name__}: {exc}")
            await self.conn.execute(f"ROLLBACK TO SAVEPOINT {BATCH_SAVEPOINT}")
            for index, step in enumerate(steps, start=first):
                await self._run_one(step.sql, index)
            # every statement ran this time (the failure did not repeat): the batch is done
            await self.conn.execute(f"RELEASE SAVEPOINT {BATCH_SAVEPOINT}")

    async def _run_one(self, sql: str, index: int) -> None:
        try:
            await self.conn.execute(sql)
        except asyncpg.PostgresError as exc:
            hint = f" ({OUT_OF_LOCKS_HINT})" if exc.sqlstate == OUT_OF_MEMORY else ""
            raise StatementFailed(sql, f"{type(exc).__name__}: {exc}{hint}", index) from exc

    async def _write_marker(self, marker: Marker) -> None:
        delete, insert = upsert_sql("numeric")
        params = list(marker_params(marker).values())
        await self.conn.execute(delete, params[0])
        await self.conn.execute(insert, *params)

    async def write_marker(self, marker: Marker) -> None:
        async with self.conn.transaction():
            await self._marker_table()
            await self._write_marker(marker)

    async def _marker_table(self) -> None:
        """The marker table, made or brought up to date (an older one lacks the added columns)."""
        await self.conn.execute(MARKER_DDL)
        columns = await self.conn.fetch(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND table_name = $1",
            MARKER_TABLE,
        )
        for statement in marker_upgrades(r["column_name"] for r in columns):
            await self.conn.execute(statement)

    async def apply(
        self, plan: Plan, start: int, done: Marker, progress: Callable[[int], Marker], *, resuming: bool = False
    ) -> None:
        check_steps(self.dialect.name, plan.steps[start:])  # refused before the first statement is sent
        await self.conn.execute(PG_SESSION_SQL)
        async with self.conn.transaction():
            for first, last in batch_bounds(len(plan.steps), start):
                await self._run_batch(plan, first, last)
            expected = self.expected(plan.target)
            diffs = differences(expected, await self.introspect(expected))
            if diffs:
                raise VerifyFailed("after the plan the database does not match the target state", diffs)
            await self._write_marker(done)


# --------------------------------------------------------------------------- SQLAlchemy-based (in a thread)


class _SyncTarget(Target):
    def __init__(self, url: str, engine: sa.Engine, dialect: str):
        self.url = url
        self.engine = engine
        self.dialect = get_dialect(dialect)
        self.conn: sa.Connection | None = None

    async def _run(self, fn: Callable[[sa.Connection], T]) -> T:
        def call() -> T:
            if self.conn is None:
                self.conn = self.engine.connect()
            return fn(self.conn)

        return await asyncio.to_thread(call)

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


class SqliteTarget(_SyncTarget):
    @classmethod
    async def open(cls, url: str) -> SqliteTarget:
        from events.store.sqlite import path_from_url

        path = path_from_url(url)
        if path != ":memory:" and not Path(path).parent.exists():
            raise TargetError(f"cannot open {url}: folder {Path(path).parent} does not exist")
        engine = sa.create_engine(
            f"sqlite:///{path}", poolclass=NullPool, connect_args={"isolation_level": None, "timeout": 1}
        )
        return cls(url, engine, "sqlite")

    async def acquire(self, stream: str, timeout: float) -> None:
        def begin(conn: sa.Connection) -> None:
            raw = conn.connection.driver_connection
            assert raw is not None
            raw.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            try:
                raw.execute("BEGIN EXCLUSIVE")
            except Exception as exc:  # sqlite3.OperationalError: database is locked
                raise LockBusy(f"another migrator holds the lock on {self.url} (waited {timeout:g}s): {exc}") from exc
            raw.execute(MARKER_DDL)
            for statement in marker_upgrades(r[1] for r in raw.execute(f"PRAGMA table_info({MARKER_TABLE})")):
                raw.execute(statement)

        await self._run(begin)

    async def release(self) -> None:
        def end(conn: sa.Connection) -> None:
            raw = conn.connection.driver_connection
            if raw is not None and raw.in_transaction:
                raw.execute("ROLLBACK")

        if self.conn is not None:
            await self._run(end)

    async def introspect(self, expected: Schema | None = None) -> Schema:
        return await self._run(introspect_sqlite)

    async def write_marker(self, marker: Marker) -> None:
        def write(conn: sa.Connection) -> None:
            raw = conn.connection.driver_connection
            assert raw is not None
            self._write_marker_sync(conn, marker)
            if raw.in_transaction:
                raw.execute("COMMIT")

        await self._run(write)

    async def apply(
        self, plan: Plan, start: int, done: Marker, progress: Callable[[int], Marker], *, resuming: bool = False
    ) -> None:
        def run(conn: sa.Connection) -> None:
            raw = conn.connection.driver_connection
            assert raw is not None and raw.in_transaction, "acquire() first"
            check_steps(self.dialect.name, plan.steps[start:])  # refused before the first statement is sent
            for index, step in enumerate(plan.steps[start:], start=start):
                check_statement(self.dialect.name, step.sql, step.kind)
                try:
                    raw.execute(step.sql)
                except Exception as exc:
                    raise StatementFailed(step.sql, f"{type(exc).__name__}: {exc}", index) from exc
            diffs = differences(self.expected(plan.target), introspect_sqlite(conn))
            if diffs:
                raise VerifyFailed("after the plan the database does not match the target state", diffs)
            self._write_marker_sync(conn, done)
            raw.execute("COMMIT")

        await self._run(run)


# errors that mean "that statement had already run" when a MySQL plan resumes: table exists (1050), unknown
# table (1051, 1146: renamed or dropped already), unknown column (1054), duplicate column (1060) or key name
# (1061), multiple primary keys (1068), cannot drop (1091), duplicate constraint (1826, 4031); 1005 only with
# InnoDB's errno 121, a foreign key name that already exists. The check after the plan catches the rest.
MYSQL_ALREADY_DONE = {1050, 1051, 1054, 1060, 1061, 1068, 1091, 1146, 1826, 4031}


def _already_done(code: object, message: str) -> bool:
    return code in MYSQL_ALREADY_DONE or (code == 1005 and "errno: 121" in message)


MYSQL_SESSION_SQL = (
    "SET SESSION sql_mode = TRIM(BOTH ',' FROM REPLACE(REPLACE(REPLACE(CONCAT(',', @@SESSION.sql_mode, ','),"
    " ',NO_BACKSLASH_ESCAPES,', ','), ',ANSI_QUOTES,', ','), ',ANSI,', ','))"
)
"""The statements are checked (sqlglot's MySQL tokenizer) and written (SQLAlchemy's MySQL dialect) as
MySQL reads them by default: a backslash escapes in a literal, a double quote starts one. A server
configured otherwise would read the literals differently, so the run's session is put back to that."""


class MysqlTarget(_SyncTarget):
    _lock_name: str | None = None

    @classmethod
    async def open(cls, url: str) -> MysqlTarget:
        parts = urlsplit(url)
        scheme = parts.scheme.split("+", 1)[0]
        if scheme not in ("mysql", "mariadb"):
            raise TargetError(f"not a MySQL URL: {display_url(url)}")
        engine = sa.create_engine(
            parts._replace(scheme="mysql+pymysql").geturl(), poolclass=NullPool, isolation_level="AUTOCOMMIT"
        )
        return cls(url, engine, "mysql")

    async def acquire(self, stream: str, timeout: float) -> None:
        name = f"schemalog:{stream}"

        def lock(conn: sa.Connection) -> None:
            got = conn.execute(sa.text("SELECT GET_LOCK(:n, :t)"), {"n": name, "t": timeout}).scalar()
            if got != 1:
                raise LockBusy(f"another migrator holds the lock on {display_url(self.url)} (waited {timeout:g}s)")
            conn.exec_driver_sql(MARKER_DDL)
            columns = conn.execute(
                sa.text(
                    "SELECT column_name FROM information_schema.columns"
                    " WHERE table_schema = DATABASE() AND table_name = :t"
                ),
                {"t": MARKER_TABLE},
            ).scalars()
            for statement in marker_upgrades(columns):
                conn.exec_driver_sql(statement)

        try:
            await self._run(lock)
        except sa.exc.OperationalError as exc:
            raise TargetError(f"cannot connect to {display_url(self.url)}: {exc.orig}") from exc
        self._lock_name = name

    async def release(self) -> None:
        name = self._lock_name
        if name is not None and self.conn is not None:
            await self._run(lambda c: c.execute(sa.text("SELECT RELEASE_LOCK(:n)"), {"n": name}))
            self._lock_name = None

    async def introspect(self, expected: Schema | None = None) -> Schema:
        return await self._run(introspect_mysql)

    async def write_marker(self, marker: Marker) -> None:
        await self._run(lambda c: self._write_marker_sync(c, marker))

    def _write_marker_sync(self, conn: sa.Connection, marker: Marker) -> None:
        conn.execute(sa.text(mysql_upsert_sql()), marker_params(marker))

    async def apply(
        self, plan: Plan, start: int, done: Marker, progress: Callable[[int], Marker], *, resuming: bool = False
    ) -> None:
        def run(conn: sa.Connection) -> None:
            check_steps(self.dialect.name, plan.steps[start:])  # refused before the first statement is sent
            conn.exec_driver_sql(MYSQL_SESSION_SQL)
            for index, step in enumerate(plan.steps[start:], start=start):
                check_statement(self.dialect.name, step.sql, step.kind)
                try:
                    conn.execution_options(no_parameters=True).exec_driver_sql(step.sql)
                except sa.exc.DBAPIError as exc:
                    code = exc.orig.args[0] if exc.orig is not None and exc.orig.args else None
                    if index == start and resuming and _already_done(code, str(exc.orig)):
                        # resuming: this statement ran before the marker could say so
                        log.info("statement_already_done", statement=step.sql, code=code)
                    else:
                        raise StatementFailed(step.sql, f"{exc.orig}", index) from exc
                self._write_marker_sync(conn, progress(index + 1))
            diffs = differences(self.expected(plan.target), introspect_mysql(conn))
            if diffs:
                raise VerifyFailed("after the plan the database does not match the target state", diffs)
            self._write_marker_sync(conn, done)

        await self._run(run)


async def open_target(url: str) -> Target:
    kind = dialect_of(url)
    if kind == "postgresql":
        return await PostgresTarget.open(url)
    if kind == "mysql":
        return await MysqlTarget.open(url)
    if kind == "sqlite":
        return await SqliteTarget.open(url)
    raise TargetError(
        f"unsupported database URL {display_url(url)!r}: use postgresql://, mysql:// (or mariadb://) or sqlite:///"
    )
