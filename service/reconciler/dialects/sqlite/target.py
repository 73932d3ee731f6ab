"""SQLite target: one BEGIN EXCLUSIVE transaction (also the lock), through SQLAlchemy in a thread."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from events.model import Schema
from service import progress as report
from service.reconciler.dialects.sqlite.introspect import introspect_sqlite
from service.reconciler.marker import (
    MARKER_DDL,
    MARKER_TABLE,
    Marker,
    marker_upgrades,
)
from service.reconciler.normalize import differences
from service.reconciler.plan import Plan
from service.reconciler.statements import check_statement, check_steps
from service.reconciler.targets import (
    ConnectFailed,
    LockBusy,
    StatementFailed,
    VerifyFailed,
    _SyncTarget,
)


class SqliteTarget(_SyncTarget):
    @classmethod
    async def open(cls, url: str) -> SqliteTarget:
        from events.store.sqlite import path_from_url

        path = path_from_url(url)
        if path != ":memory:" and not Path(path).parent.exists():
            raise ConnectFailed(f"cannot open {url}: folder {Path(path).parent} does not exist")
        engine = sa.create_engine(
            f"sqlite:///{path}", poolclass=NullPool, connect_args={"isolation_level": None, "timeout": 1}
        )
        target = cls(url, engine, "sqlite")
        await target.connect()
        return target

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
            reporter, total = report.current(), len(plan.steps)
            for index, step in enumerate(plan.steps[start:], start=start):
                check_statement(self.dialect.name, step.sql, step.kind)
                reporter.started(index, total, step)
                try:
                    raw.execute(step.sql)
                except Exception as exc:
                    raise StatementFailed(step.sql, f"{type(exc).__name__}: {exc}", index) from exc
                reporter.finished(index, total)
            reporter.phase("checking")
            diffs = differences(self.expected(plan.target), introspect_sqlite(conn))
            if diffs:
                raise VerifyFailed("after the plan the database does not match the target state", diffs)
            self._write_marker_sync(conn, done)
            raw.execute("COMMIT")

        await self._run(run)
