"""Ctrl-C (SIGINT) during `schemalog migrate` on MariaDB, while a statement runs on the server.

The worker (tests/crash_worker.py, ``--cli``) runs the real command and reports each statement before it
sends it. The test holds a metadata lock on the table the chosen statement alters, lets the statement go,
sees it waiting on the server (processlist), and sends SIGINT then: the interrupt lands during the
statement, whatever the machine's speed. The lock is let go only once the worker says its SIGINT handler
ran and the run took the cancel (the line "interrupt received"): the statement ends after the interrupt.
The run waits for it, stops before the next one, and says one line; exit 130; the next migrate finishes.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from events.catalog import ColumnAdded, IndexCreated, TableCreated
from events.envelope import Changeset
from events.log import EventLog
from events.model import Column, Index
from events.store import open_store
from projections.schema import Point, Projector
from service.cli import main
from service.reconciler.dialects import get_dialect
from service.reconciler.normalize import differences
from service.reconciler.plan import make_plan
from service.reconciler.targets import open_target
from tests.crash_worker import ANSWER_TIMEOUT, Worker
from tests.sqlexec import engine_for, run_sql

EXIT_INTERRUPTED = 130
INTERRUPTED = "schemalog: interrupted; the next migrate resumes where this one stopped"
RECEIVED = "interrupt received"

CHILD = f"""
import asyncio, runpy, signal, sys
install = signal.signal

def reporting(signum, handler):
    # asyncio.run's SIGINT handler cancels the main task; the line goes out once the task took the cancel
    if signum == signal.SIGINT and callable(handler) and handler is not signal.default_int_handler:
        inner = handler

        def handler(*args):
            inner(*args)
            asyncio.get_running_loop().call_soon(lambda: print({RECEIVED!r}, flush=True))

    return install(signum, handler)

signal.signal = reporting
runpy.run_module("tests.crash_worker", run_name="__main__", alter_sys=True)
"""
"""``python -m tests.crash_worker`` (which ``Worker`` starts), with one more line on stdout: RECEIVED, after
the SIGINT handler cancelled the main task and the task ran (callbacks run in order), so after the target
was told to stop."""


def reporting_worker(monkeypatch: pytest.MonkeyPatch, *args: str) -> Worker:
    start = subprocess.Popen

    def popen(command: list[str], **kwargs: Any) -> subprocess.Popen[str]:
        assert command[1:3] == ["-m", "tests.crash_worker"], command
        child: subprocess.Popen[str] = start([sys.executable, "-c", CHILD, *command[3:]], **kwargs)
        return child

    with monkeypatch.context() as m:
        m.setattr(subprocess, "Popen", popen)  # the one Worker calls: the module's, the same object
        return Worker(*args)


async def history(store_url: str) -> tuple[int, int]:
    """Two tables, then a column and an index on the second: (head, the plan's step adding the column)."""
    store = await open_store(store_url)
    try:
        await store.init()
        log = EventLog(store)
        columns = (Column(name="id", type="bigint", nullable=False), Column(name="name", type="varchar(80)"))
        await log.append(
            Changeset(
                stream="app",
                actor="dev",
                events=(
                    TableCreated(table="a", columns=columns, primary_key=("id",)),
                    TableCreated(table="b", columns=columns, primary_key=("id",)),
                ),
            )
        )
        result = await log.append(
            Changeset(
                stream="app",
                actor="dev",
                events=(
                    ColumnAdded(table="b", column=Column(name="note", type="text")),
                    IndexCreated(table="b", index=Index(name="b_name", columns=("name",))),
                ),
            )
        )
        plan = await make_plan(Projector(store), "app", 0, Point(version=result.last_version), get_dialect("mysql"))
        step = next(i for i, s in enumerate(plan.steps) if s.sql.startswith("ALTER TABLE") and "note" in s.sql)
        return result.last_version, step
    finally:
        await store.close()


async def state(store_url: str, url: str, head: int) -> tuple[int, int, bool, list[str]]:
    """(marker version, steps done, in progress, differences between the live schema and the log at ``head``)."""
    store = await open_store(store_url)
    target = await open_target(url)
    try:
        marker = await target.read_marker("app")
        assert marker is not None
        _, schema = await Projector(store).schema("app", Point(version=head))
        diffs = differences(target.expected(schema), await target.introspect())
        return marker.version, marker.steps_done, marker.in_progress, diffs
    finally:
        await target.close()
        await store.close()


def waiting_on_lock(url: str) -> bool:
    rows = run_sql(
        url,
        "SELECT COUNT(*) FROM information_schema.processlist WHERE db = DATABASE() AND info LIKE 'ALTER TABLE%'"
        " AND state LIKE 'Waiting for table metadata lock%'",
    )
    return bool(rows[0][0])


@pytest.mark.mariadb
def test_ctrl_c_during_a_mariadb_statement_says_one_line_and_the_next_migrate_finishes(
    tmp_path: Path, mariadb_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    store_url = f"sqlite:///{tmp_path / 'log.db'}"
    head, step = asyncio.run(history(store_url))
    command = ["--store", store_url, "migrate", "--url", mariadb_url, "--stream", "app"]
    worker = reporting_worker(monkeypatch, "--cli", *command)
    try:
        worker.until(f"statement {step} started")  # the point before the ALTER TABLE b
        holder = engine_for(mariadb_url).connect()
        try:
            holder.execute(sa.text("SELECT * FROM b"))  # an open transaction on b: the ALTER waits for it
            worker.say("go")
            deadline = time.monotonic() + ANSWER_TIMEOUT  # a bound on a hang, not a measure of speed
            while not waiting_on_lock(mariadb_url):
                assert worker.proc.poll() is None and time.monotonic() < deadline, worker.output()
            worker.proc.send_signal(signal.SIGINT)  # Ctrl-C, while the statement runs on the server
            assert worker.line() == RECEIVED, worker.output()
            assert waiting_on_lock(mariadb_url)  # the statement still runs: it ends after the interrupt
            holder.rollback()  # the ALTER goes on now
        finally:
            holder.close()
            holder.engine.dispose()
        code = worker.wait()  # stdin ends: any later point goes on without waiting
    finally:
        if worker.proc.poll() is None:
            worker.kill()
    out, err = worker.output()
    assert err.splitlines() == [INTERRUPTED], err
    assert code == EXIT_INTERRUPTED, (code, out, err)
    points = [line.rstrip("\n").split(" ", 2)[2] for line in worker.out if line.startswith("point ")]
    assert points[-1] == f"statement {step} done", points  # the statement it waited for; none after it
    version, done, in_progress, _ = asyncio.run(state(store_url, mariadb_url, head))
    assert (version, done, in_progress) == (0, step + 1, True)  # the marker says exactly how far it got

    assert main([*command, "--json"]) == 0
    assert f'"to_version": {head}' in capsys.readouterr().out
    version, _, in_progress, diffs = asyncio.run(state(store_url, mariadb_url, head))
    assert (version, in_progress, diffs) == (head, False, [])  # the database is the log's head
