"""A migrator killed with SIGKILL at random moments of apply, 20 times per dialect.

PostgreSQL and SQLite (transactional DDL): after every kill the database is exactly at the old or the
new version and its marker says which. MariaDB (DDL commits by itself): the marker records each statement
done, and the next run resumes to the target.
"""

from __future__ import annotations

import random
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from events.catalog import ColumnAdded, ColumnRenamed, ConstraintAdded, IndexCreated, TableCreated
from events.envelope import Changeset
from events.log import EventLog
from events.model import Column, Constraint, Index, Reference
from events.store import EventStore, open_store
from projections.schema import Point, Projector, normalized
from service.reconciler.apply import MigrateRequest, _marker, migrate
from service.reconciler.marker import state_hash
from service.reconciler.normalize import differences
from service.reconciler.plan import make_plan
from service.reconciler.targets import open_target
from tests.servers import mariadb_database_url
from tests.sqlexec import run_sql

ROOT = Path(__file__).resolve().parents[1]
KILLS = 20
TABLES = 14


@pytest.fixture
async def log(tmp_path: Path) -> AsyncIterator[tuple[str, EventStore]]:
    url = f"sqlite:///{tmp_path / 'log.db'}"
    store = await open_store(url)
    await store.init()
    try:
        yield url, store
    finally:
        await store.close()


async def build_history(store: EventStore) -> int:
    """Tables chained by foreign keys, each with indexes, then columns added and renamed: many statements."""
    log = EventLog(store)
    version = 0
    for n in range(TABLES):
        events: list[object] = [
            TableCreated(
                table=f"t{n}",
                columns=(
                    Column(name="id", type="bigint", nullable=False),
                    Column(name="name", type="varchar(80)", nullable=False, default="'x'"),
                    Column(name="amount", type="numeric(10,2)"),
                    Column(name="parent", type="bigint"),
                    Column(name="at", type="timestamp"),
                ),
                primary_key=("id",),
            ),
            IndexCreated(table=f"t{n}", index=Index(name=f"t{n}_name", columns=("name",))),
            IndexCreated(table=f"t{n}", index=Index(name=f"t{n}_at", columns=("at", "amount"))),
        ]
        if n:
            events.append(
                ConstraintAdded(
                    table=f"t{n}",
                    constraint=Constraint(
                        name=f"t{n}_parent_fk",
                        kind="foreign_key",
                        columns=("parent",),
                        references=Reference(table=f"t{n - 1}", columns=("id",)),
                    ),
                )
            )
        result = await log.append(Changeset(stream="app", actor="dev", events=tuple(events)))  # type: ignore[arg-type]
        version = result.last_version
    for n in range(TABLES):
        result = await log.append(
            Changeset(
                stream="app",
                actor="dev",
                events=(
                    ColumnAdded(table=f"t{n}", column=Column(name="note", type="text")),
                    ColumnRenamed(table=f"t{n}", column="name", new_name="title"),
                ),
            )
        )
        version = result.last_version
    return version


async def state_of(store: EventStore, url: str) -> tuple[int, bool, list[str]]:
    """(marker version, run in progress, differences between the live schema and the projection at the marker)."""
    target = await open_target(url)
    try:
        marker = await target.read_marker("app")
        live = await target.introspect()
        version = marker.version if marker is not None else 0
        _, schema = await Projector(store).schema("app", Point(version=version))
        diffs = (
            differences(target.expected(schema), live)
            if normalized(live) != normalized(target.expected(schema))
            else []
        )
        return version, bool(marker is not None and marker.in_progress), diffs
    finally:
        await target.close()


def start_worker(store_url: str, target_url: str, version: int) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.crash_worker", store_url, target_url, str(version)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready", proc.stderr
    return proc


def go(proc: subprocess.Popen[str]) -> float:
    assert proc.stdin is not None
    proc.stdin.write("go\n")
    proc.stdin.flush()
    return time.monotonic()


@pytest.mark.slow
async def test_killed_migrator_leaves_old_or_new_or_resumes(log: tuple[str, EventStore], target_url: str) -> None:
    store_url, store = log
    head = await build_history(store)
    transactional = not target_url.startswith("mysql")

    # calibrate: how long a whole forward run takes after "go" on this machine
    proc = start_worker(store_url, target_url, head)
    began = go(proc)
    out, err = proc.communicate(timeout=300)
    forward = time.monotonic() - began
    assert out.startswith("applied"), (out, err)
    assert (
        await migrate(
            store, MigrateRequest(url=target_url, stream="app", actor="t", to=Point(version=0), allow_destructive=True)
        )
    ).status == "applied"
    run_sql(target_url, "SELECT 1")

    rng = random.Random(20261124)
    interrupted = 0
    for attempt in range(KILLS):
        before, _, _ = await state_of(store, target_url)
        goal = 0 if before == head else head
        proc = start_worker(store_url, target_url, goal)
        delay = rng.uniform(0.0, forward * 1.1)
        go(proc)
        time.sleep(delay)
        proc.kill()
        proc.wait(timeout=60)
        version, in_progress, diffs = await state_of(store, target_url)
        if transactional:
            assert not in_progress
            assert version in (before, goal), (attempt, before, goal, version)
            assert diffs == [], (attempt, version, diffs)
            interrupted += version == before
        else:
            interrupted += version != goal
            outcome = await migrate(
                store,
                MigrateRequest(url=target_url, stream="app", actor="t", to=Point(version=goal), allow_destructive=True),
            )
            assert outcome.status in ("applied", "up_to_date"), (attempt, outcome.status, outcome.detail, outcome.drift)
            version, in_progress, diffs = await state_of(store, target_url)
            assert (version, in_progress, diffs) == (goal, False, []), attempt
    # the kills must have landed before the end of a run at least sometimes, or this proved nothing
    assert interrupted >= 3, f"only {interrupted} of {KILLS} kills interrupted a run (forward run {forward:.2f}s)"


@pytest.mark.mariadb
@pytest.mark.parametrize("done_before", [0, 3])
async def test_mariadb_resumes_when_the_statement_ran_but_its_step_was_not_recorded(
    log: tuple[str, EventStore], done_before: int
) -> None:
    """The window a kill can hit on MariaDB: DDL commits by itself, the marker's step is written after it.

    The interrupted run is rebuilt exactly: the marker says ``done_before`` steps are done while the
    database has also run the next one. The next migrate must finish the run, whichever step it was.
    """
    _, store = log
    head = await build_history(store)
    with mariadb_database_url() as url:
        request = MigrateRequest(url=url, stream="app", actor="t", to=Point(version=head))
        target = await open_target(url)
        try:
            plan = await make_plan(Projector(store), "app", 0, Point(version=head), target.dialect)
            marker = _marker(
                request,
                plan.from_version,
                state_hash(plan.start),
                target_version=plan.to_version,
                plan_hash=plan.digest(),
                steps_done=done_before,
            )
            await target.acquire("app", 5)
            await target.write_marker(marker)
            await target.release()
        finally:
            await target.close()
        run_sql(url, *(step.sql for step in plan.steps[: done_before + 1]))

        outcome = await migrate(store, request)
        assert outcome.status == "applied", (outcome.status, outcome.detail, outcome.drift)
        version, in_progress, diffs = await state_of(store, url)
        assert (version, in_progress, diffs) == (head, False, [])
