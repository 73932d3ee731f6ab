"""One migrator process of the crash and interrupt tests; it reports each point where the test may stop it.

``python -m tests.crash_worker STORE_URL TARGET_URL VERSION`` opens everything, says "ready", waits for "go",
migrates and prints the outcome. ``python -m tests.crash_worker --cli ARGS...`` runs ``schemalog ARGS...``
(service.cli.main, exit code and all) instead.

Either way, before each point of a run the test may stop it at, the worker writes one line on stdout,
``point N WHAT`` (N counts from 1 in this process), and waits for a line on stdin before it goes on: the
test answers "go", or kills the process there, so that every kill lands inside the run, whatever the
machine's speed. An end of stdin lets the run go on without waiting again.

The points (real statements run on real servers; the worker only listens in):
- MariaDB: ``statement I started`` before each statement (I counts from 0 the statements this process
  sends: the plan's step in a run that starts at 0), and ``statement I done`` (the plan's step) after
  it, before the marker records it (the window where its DDL has committed and the marker lags);
- SQLite: ``statement I started`` before each statement (the run is one transaction);
- PostgreSQL: ``batch I started`` before each batch (one transaction; batches are made small here, so
  that a run has many of them), and ``marker written`` before the final marker, just before the commit.
"""

from __future__ import annotations

import asyncio
import functools
import queue
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from events.store import open_store
from projections.schema import Point
from service.logging import configure
from service.reconciler.apply import MigrateRequest, migrate
from service.reconciler.dialects.mysql import target as mysql_target
from service.reconciler.dialects.postgresql import target as pg_target
from service.reconciler.dialects.sqlite import target as sqlite_target
from service.reconciler.marker import Marker

ROOT = Path(__file__).resolve().parents[1]
ANSWER_TIMEOUT = 300.0
"""How long the test waits for the worker's next line: a bound on a hang, never a measure of speed."""

_count = 0
_waiting = True


def point(what: str) -> None:
    """Say where the run is, then wait for the test's answer (unless stdin has ended)."""
    global _count, _waiting
    _count += 1
    sys.stdout.write(f"point {_count} {what}\n")
    sys.stdout.flush()
    if _waiting and sys.stdin.readline() == "":
        _waiting = False


def _reporting_check(check: Callable[..., Any]) -> Callable[..., Any]:
    """``check_statement`` runs right before each statement is sent (MariaDB, SQLite): the point before it."""
    step = 0

    @functools.wraps(check)
    def wrapped(dialect: str, sql: str, kind: Any = None) -> Any:
        nonlocal step
        result = check(dialect, sql, kind)
        point(f"statement {step} started")
        step += 1
        return result

    return wrapped


def install() -> None:
    mysql_target.check_statement = _reporting_check(mysql_target.check_statement)  # type: ignore[attr-defined]
    sqlite_target.check_statement = _reporting_check(sqlite_target.check_statement)  # type: ignore[attr-defined]

    mysql_write = mysql_target.MysqlTarget._write_marker_sync

    def mysql_marker(self: mysql_target.MysqlTarget, conn: Any, marker: Marker) -> None:
        if marker.in_progress and marker.steps_done:
            point(f"statement {marker.steps_done - 1} done")
        mysql_write(self, conn, marker)

    mysql_target.MysqlTarget._write_marker_sync = mysql_marker  # type: ignore[method-assign]

    pg_target.BATCH_STATEMENTS = 1  # many small batches: many points (the run is one transaction all the same)
    pg_batch = pg_target.PostgresTarget._run_batch

    async def batch(self: pg_target.PostgresTarget, plan: Any, first: int, last: int) -> None:
        point(f"batch {first} started")
        await pg_batch(self, plan, first, last)

    pg_target.PostgresTarget._run_batch = batch  # type: ignore[method-assign]
    pg_write = pg_target.PostgresTarget._write_marker

    async def pg_marker(self: pg_target.PostgresTarget, marker: Marker) -> None:
        if not marker.in_progress:
            point("marker written")
        await pg_write(self, marker)

    pg_target.PostgresTarget._write_marker = pg_marker  # type: ignore[method-assign]


class Worker:
    """The test's side: starts the worker, reads its lines (within ANSWER_TIMEOUT each), answers its points."""

    def __init__(self, *args: str):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.crash_worker", *args],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self._lines: queue.Queue[str | None] = queue.Queue()
        self.out: list[str] = []
        self.err: list[str] = []
        self._readers = [
            threading.Thread(target=self._read, args=(self.proc.stdout, self._lines), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, None), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, stream: IO[str], lines: queue.Queue[str | None] | None) -> None:
        for line in stream:
            (self.out if lines is not None else self.err).append(line)
            if lines is not None:
                lines.put(line.rstrip("\n"))
        if lines is not None:
            lines.put(None)

    def line(self) -> str | None:
        """The next line on stdout (None: stdout ended)."""
        try:
            return self._lines.get(timeout=ANSWER_TIMEOUT)
        except queue.Empty:
            self.proc.kill()
            raise AssertionError(f"no line from the worker in {ANSWER_TIMEOUT:g}s: {''.join(self.err)}") from None

    def say(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()

    def ready(self) -> None:
        assert self.line() == "ready", "".join(self.err)
        self.say("go")

    def until(self, k: int | str) -> str:
        """Answer "go" to every point before point ``k`` (a number, or the words after it); return point
        ``k``'s line, unanswered (the worker waits there)."""
        while True:
            line = self.line()
            assert line is not None, f"the run ended before point {k}: {''.join(self.out)} {''.join(self.err)}"
            if line.startswith("point "):
                _, n, what = line.split(" ", 2)
                if k in (int(n), what):
                    return line
                self.say("go")

    def finish(self) -> tuple[int, int, str, str]:
        """Answer every point to the end: (points seen, exit code, stdout but the points, stderr)."""
        points = 0
        while (line := self.line()) is not None:
            if line.startswith("point "):
                points += 1
                self.say("go")
        return points, self.wait(), *self.output()

    def kill(self) -> None:
        self.proc.kill()
        self.wait()

    def wait(self) -> int:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.close()
        except BrokenPipeError:  # the worker is gone already
            pass
        code = self.proc.wait(timeout=ANSWER_TIMEOUT)
        for reader in self._readers:
            reader.join(timeout=ANSWER_TIMEOUT)
        return code

    def output(self) -> tuple[str, str]:
        return "".join(x for x in self.out if not x.startswith(("point ", "ready"))), "".join(self.err)


async def run(store_url: str, target_url: str, version: int) -> str:
    store = await open_store(store_url)
    try:
        request = MigrateRequest(
            url=target_url, stream="app", actor="crash-test", to=Point(version=version), allow_destructive=True
        )
        sys.stdout.write("ready\n")
        sys.stdout.flush()
        sys.stdin.readline()
        outcome = await migrate(store, request)
        return f"{outcome.status} {outcome.detail or ''}"
    finally:
        await store.close()


if __name__ == "__main__":
    install()
    if sys.argv[1] == "--cli":
        from service.cli import main

        sys.exit(main(sys.argv[2:]))
    configure("warning")
    sys.stdout.write(asyncio.run(run(sys.argv[1], sys.argv[2], int(sys.argv[3]))) + "\n")
