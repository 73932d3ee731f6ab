"""MySQL/MariaDB target: GET_LOCK; DDL commits by itself, so the marker records each statement done."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from events.model import Schema, evolve
from service import progress as report
from service.reconciler.dialects.mysql.introspect import (
    Collations,
    introspect_mysql,
    own_charset_collation,
    read_collations,
)
from service.reconciler.marker import (
    MARKER_DDL,
    MARKER_TABLE,
    Marker,
    marker_params,
    marker_upgrades,
    mysql_upsert_sql,
)
from service.reconciler.normalize import differences
from service.reconciler.plan import Plan
from service.reconciler.statements import check_statement, check_steps
from service.reconciler.targets import (
    LockBusy,
    StatementFailed,
    TargetError,
    VerifyFailed,
    _SyncTarget,
    display_url,
    log,
)

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
    _collations: Collations | None = None
    """The server's, read once a run has a connection: what a column's charset and collation resolve to."""

    def _known(self, conn: sa.Connection) -> Collations:
        if self._collations is None:
            self._collations = read_collations(conn)
        return self._collations

    def _introspect(self, conn: sa.Connection) -> Schema:
        return introspect_mysql(conn, self._known(conn))

    def expected(self, schema: Schema) -> Schema:
        """The dialect's form, and each column's charset and collation as introspection gives them back:
        the database's defaults (which every table made here has) read None, a character set's own
        collation is said by the character set alone (see ``own_charset_collation``)."""
        normal = self.dialect.normalize(schema)
        known = self._collations
        if known is None:
            return normal
        tables = dict(normal.tables)
        for name, table in normal.tables.items():
            if not any(c.charset is not None or c.collation is not None for c in table.columns):
                continue
            columns = []
            for column in table.columns:
                charset, collation = own_charset_collation(column.charset, column.collation, known.database, known)
                if (charset, collation) != (column.charset, column.collation):
                    column = evolve(column, charset=charset, collation=collation)
                columns.append(column)
            tables[name] = evolve(table, columns=tuple(columns))
        return evolve(normal, tables=tables)

    @classmethod
    async def open(cls, url: str) -> MysqlTarget:
        parts = urlsplit(url)
        scheme = parts.scheme.split("+", 1)[0]
        if scheme not in ("mysql", "mariadb"):
            raise TargetError(f"not a MySQL URL: {display_url(url)}")
        engine = sa.create_engine(
            parts._replace(scheme="mysql+pymysql").geturl(), poolclass=NullPool, isolation_level="AUTOCOMMIT"
        )
        target = cls(url, engine, "mysql")
        await target.connect()
        return target

    async def acquire(self, stream: str, timeout: float) -> None:
        name = f"schemalog:{stream}"

        def lock(conn: sa.Connection) -> None:
            got = conn.execute(sa.text("SELECT GET_LOCK(:n, :t)"), {"n": name, "t": timeout}).scalar()
            if got != 1:
                raise LockBusy(f"another migrator holds the lock on {display_url(self.url)} (waited {timeout:g}s)")
            conn.exec_driver_sql(MARKER_DDL)
            self._known(conn)
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
        return await self._run(self._introspect)

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
            reporter, total = report.current(), len(plan.steps)
            for index, step in enumerate(plan.steps[start:], start=start):
                if self.interrupted.is_set():  # Ctrl-C: stop between statements; the marker says how far
                    return
                check_statement(self.dialect.name, step.sql, step.kind)
                reporter.started(index, total, step)
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
                reporter.finished(index, total)
            reporter.phase("checking")
            diffs = differences(self.expected(plan.target), self._introspect(conn))
            if diffs:
                raise VerifyFailed("after the plan the database does not match the target state", diffs)
            self._write_marker_sync(conn, done)

        await self._run(run)
