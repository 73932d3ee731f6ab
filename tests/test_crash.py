"""A migrator killed with SIGKILL inside apply, at 20 points it reported, per dialect.

The worker (tests/crash_worker.py) says where its run is (a statement or batch started, a MariaDB statement
done but not yet recorded, the final marker about to be written) and waits there for the test, which kills it
at chosen points: every kill interrupts a run, whatever the machine's speed.

PostgreSQL and SQLite (transactional DDL): after every kill the database is exactly at the old or the
new version and its marker says which. MariaDB (DDL commits by itself): the marker records each statement
done, and the next run resumes to the target.
"""

from __future__ import annotations

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
from tests.crash_worker import Worker
from tests.servers import mariadb_database_url
from tests.sqlexec import run_sql

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


def spread(points: int, count: int) -> list[int]:
    """``count`` points out of ``1..points``, evenly, the first and the last among them."""
    if points <= count:
        return list(range(1, points + 1))
    return sorted({1 + round(i * (points - 1) / (count - 1)) for i in range(count)})


async def migrate_to(store: EventStore, target_url: str, version: int) -> None:
    request = MigrateRequest(url=target_url, stream="app", actor="t", to=Point(version=version), allow_destructive=True)
    outcome = await migrate(store, request)
    assert outcome.status in ("applied", "up_to_date"), (outcome.status, outcome.detail, outcome.drift)


def whole_run(store_url: str, target_url: str, version: int) -> int:
    """One run of the worker to ``version``, answering every point: how many points it reported."""
    worker = Worker(store_url, target_url, str(version))
    worker.ready()
    points, code, out, err = worker.finish()
    assert code == 0 and out.startswith("applied"), (code, out, err)
    return points


@pytest.mark.slow
async def test_killed_migrator_leaves_old_or_new_or_resumes(log: tuple[str, EventStore], target_url: str) -> None:
    store_url, store = log
    head = await build_history(store)
    transactional = not target_url.startswith("mysql")

    # how many points a run reports forward and back (counted, not timed): the kills are chosen among them
    points = {head: whole_run(store_url, target_url, head), 0: whole_run(store_url, target_url, 0)}
    assert points[head] >= KILLS // 2 and points[0] >= KILLS // 2, points
    run_sql(target_url, "SELECT 1")

    kills = [(goal, k) for goal in (head, 0) for k in spread(points[goal], KILLS // 2)]
    for attempt, (goal, k) in enumerate(kills):
        before = head - goal  # 0 going forward, head going back
        await migrate_to(store, target_url, before)
        worker = Worker(store_url, target_url, str(goal))
        worker.ready()
        where = worker.until(k)
        worker.kill()  # SIGKILL, while the run waits at point k: inside the run, by construction
        version, in_progress, diffs = await state_of(store, target_url)
        if transactional:
            # killed before its commit: exactly the old version
            assert (version, in_progress, diffs) == (before, False, []), (attempt, where, version, diffs)
        else:
            # killed with statements still to run or to record: the marker says the run is in progress
            assert (version, in_progress) == (before, True), (attempt, where, version, in_progress)
            await migrate_to(store, target_url, goal)
            version, in_progress, diffs = await state_of(store, target_url)
            assert (version, in_progress, diffs) == (goal, False, []), (attempt, where, diffs)


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
