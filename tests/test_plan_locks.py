"""A plan too large for one PostgreSQL transaction is refused before it starts, naming the setting it needs.

The estimate (service/reconciler/locks.py) is checked against what the server itself counts in
pg_locks at the end of the same plan run by hand in one transaction.
"""

from __future__ import annotations

import asyncpg
import pytest

from events.catalog import IndexCreated, TableCreated
from events.envelope import Changeset
from events.log import EventLog
from events.model import Column, Index
from events.store.base import EventStore
from projections.schema import Point, Projector
from service.reconciler.apply import MigrateRequest, migrate
from service.reconciler.dialects import get_dialect
from service.reconciler.locks import LockBudget, lock_problem, locks_needed
from service.reconciler.plan import make_plan

pytestmark = pytest.mark.postgres


def tables(count: int) -> list[object]:
    """``count`` tables of the bench's shape: a primary key, a text column, three indexes."""
    events: list[object] = []
    for i in range(count):
        name = f"t{i}"
        events.append(
            TableCreated(
                table=name,
                columns=(
                    Column(name="id", type="bigint", nullable=False),
                    Column(name="note", type="text"),
                    Column(name="a", type="integer"),
                    Column(name="b", type="integer"),
                    Column(name="c", type="integer"),
                ),
                primary_key=("id",),
            )
        )
        events.extend(IndexCreated(table=name, index=Index(name=f"{name}_{c}", columns=(c,))) for c in "abc")
    return events


async def record(store: EventStore, events: list[object]) -> int:
    log = EventLog(store, Projector(store))
    result = None
    for first in range(0, len(events), 2000):
        batch = tuple(events[first : first + 2000])
        result = await log.append(Changeset(stream="app", actor="t", events=batch))  # type: ignore[arg-type]
    assert result is not None
    return result.last_version


async def test_estimate_matches_what_the_server_counts(log_store: EventStore, pg_url: str) -> None:
    version = await record(log_store, tables(60))
    plan = await make_plan(Projector(log_store), "app", 0, Point(version=version), get_dialect("postgresql"))
    conn = await asyncpg.connect(pg_url)
    try:
        async with conn.transaction():
            for step in plan.steps:
                await conn.execute(step.sql)
            held = await conn.fetchval(
                "SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid() AND locktype IN ('relation', 'object')"
            )
            raise asyncpg.exceptions.UniqueViolationError("roll back")  # not a real error: end the transaction
    except asyncpg.exceptions.UniqueViolationError:
        pass
    finally:
        await conn.close()
    estimate = locks_needed(plan)
    assert held <= estimate <= held * 1.25, (held, estimate)


async def test_a_plan_past_the_lock_table_is_refused_before_it_starts(log_store: EventStore, pg_url: str) -> None:
    await record(log_store, tables(2000))
    for plan_only in (True, False):
        outcome = await migrate(
            log_store, MigrateRequest(url=pg_url, stream="app", actor="t", database="big", plan_only=plan_only)
        )
        assert outcome.status == "refused", outcome.detail
        assert outcome.detail is not None and "max_locks_per_transaction to at least" in outcome.detail
    conn = await asyncpg.connect(pg_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM pg_class WHERE relname LIKE 't%' AND relkind = 'r'") == 0
    finally:
        await conn.close()


def test_budget_arithmetic() -> None:
    budget = LockBudget(per_transaction=64, connections=100, prepared=0)
    assert budget.slots == 6400
    assert budget.usable() == 12800
    assert budget.needed_setting(25_000 * 11) == 1375  # 275,000 locks over 100 backends, two per slot


async def test_small_plans_are_not_refused(log_store: EventStore) -> None:
    version = await record(log_store, tables(1000))  # the apply bench's size: about 11,000 locks
    plan = await make_plan(Projector(log_store), "app", 0, Point(version=version), get_dialect("postgresql"))
    assert lock_problem(plan, LockBudget(64, 100, 0)) is None
    assert lock_problem(plan, LockBudget(32, 100, 0)) is not None
