"""PostgreSQL target: asyncpg, a session advisory lock, the plan and the marker in one transaction."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import asyncpg

from events.model import Schema
from service import progress as report
from service.reconciler.dialects import get_dialect
from service.reconciler.dialects.postgresql.introspect import introspect_postgresql
from service.reconciler.locks import LOCK_SETTINGS_SQL, OUT_OF_LOCKS_HINT, LockBudget, lock_problem
from service.reconciler.marker import (
    MARKER_DDL,
    MARKER_SELECT,
    MARKER_TABLE,
    Marker,
    marker_from_row,
    marker_params,
    marker_upgrades,
    upsert_sql,
)
from service.reconciler.normalize import differences
from service.reconciler.plan import Plan
from service.reconciler.statements import check_steps
from service.reconciler.targets import (
    ConnectFailed,
    LockBusy,
    StatementFailed,
    Target,
    VerifyFailed,
    connect_message,
    display_url,
    lock_key,
    log,
)

OUT_OF_MEMORY = "53200"
"""PostgreSQL's SQLSTATE for "out of shared memory" (the lock table full, among others)."""

BATCH_STATEMENTS = 200
"""Statements sent to PostgreSQL in one message (at least; see batch_bounds)."""
BATCH_SAVEPOINT = "schemalog_batch"
MAX_BATCHES = 48
"""Each batch is a subtransaction: past 64 in one transaction, PostgreSQL's per-backend cache of their
ids overflows and every other session's snapshot checks get slower while the run lasts."""


def commit_points(plan: Plan, start: int) -> list[int]:
    """Where the run commits before the plan's end: after each run of ``ALTER TYPE ... ADD VALUE``
    statements that more statements follow. PostgreSQL refuses to use an enum value in the transaction
    that added it ("unsafe use of new value"), and a later statement may (a default, a check, rows); the
    work before the point is committed with a marker in progress, so that a failure after it leaves a
    run that the next migrate resumes."""
    points = []
    steps = plan.steps
    for index in range(start, len(steps) - 1):
        if steps[index].event_type == "enum_value_added" and steps[index + 1].event_type != "enum_value_added":
            points.append(index + 1)
    return points


class StatementFailedAfterCommit(StatementFailed):
    """A statement failed after the run had committed part of the plan (commit_points): statements 1 to
    ``committed`` are done, and the marker records it (in progress)."""

    def __init__(self, failed: StatementFailed, committed: int):
        super().__init__(failed.statement, failed.error, failed.done)
        self.committed = committed


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
            raise ConnectFailed(connect_message(url, exc)) from exc
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
        reporter, total = report.current(), len(plan.steps)
        if len(steps) == 1:
            await self._run_one(steps[0].sql, first, plan)
            return
        body = "".join(f"{step.sql}\n;\n" for step in steps)  # the newline ends a statement's trailing -- comment
        if reporter.active:  # all of them start when the message is sent, and are done when it returns
            reporter.batch(first, last, total)
            for index, step in enumerate(steps, start=first):
                reporter.started(index, total, step)
        try:
            await self.conn.execute(f"SAVEPOINT {BATCH_SAVEPOINT};\n{body}RELEASE SAVEPOINT {BATCH_SAVEPOINT}")
        except asyncpg.PostgresError as exc:
            log.info("batch_failed", first=first, last=last, error=f"{type(exc).__name__}: {exc}")
            await self.conn.execute(f"ROLLBACK TO SAVEPOINT {BATCH_SAVEPOINT}")
            for index, step in enumerate(steps, start=first):
                await self._run_one(step.sql, index, plan)
            # every statement ran this time (the failure did not repeat): the batch is done
            await self.conn.execute(f"RELEASE SAVEPOINT {BATCH_SAVEPOINT}")
            return
        if reporter.active:
            for index in range(first, last):
                reporter.finished(index, total)

    async def _run_one(self, sql: str, index: int, plan: Plan) -> None:
        reporter, total = report.current(), len(plan.steps)
        reporter.started(index, total, plan.steps[index])
        try:
            await self.conn.execute(sql)
        except asyncpg.PostgresError as exc:
            hint = f" ({OUT_OF_LOCKS_HINT})" if exc.sqlstate == OUT_OF_MEMORY else ""
            raise StatementFailed(sql, f"{type(exc).__name__}: {exc}{hint}", index) from exc
        reporter.finished(index, total)

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
        total, committed = len(plan.steps), start
        for point in commit_points(plan, start):
            try:
                async with self.conn.transaction():
                    for first, last in batch_bounds(point, committed):
                        await self._run_batch(plan, first, last)
                    await self._write_marker(progress(point))
            except StatementFailed as exc:
                if committed == 0:
                    raise
                raise StatementFailedAfterCommit(exc, committed) from exc
            committed = point
        try:
            async with self.conn.transaction():
                for first, last in batch_bounds(total, committed):
                    await self._run_batch(plan, first, last)
                report.current().phase("checking")
                expected = self.expected(plan.target)
                diffs = differences(expected, await self.introspect(expected))
                if diffs:
                    raise VerifyFailed("after the plan the database does not match the target state", diffs)
                await self._write_marker(done)
        except StatementFailed as exc:
            if committed == 0:
                raise
            raise StatementFailedAfterCommit(exc, committed) from exc
