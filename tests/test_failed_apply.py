"""A run that fails part-way leaves a way forward, on every dialect.

The plan below creates a table, then adds a unique constraint that the rows already in the database
break. PostgreSQL and SQLite run a plan in one transaction: the failure leaves the database and its
marker at the old version. MariaDB commits each DDL statement by itself: the failure leaves the first
statement done and the marker "in progress", and the next run resumes where it stopped. Either way the
outcome says what to do next, and once the rows are fixed the next ``migrate`` finishes.
"""

from __future__ import annotations

from events.catalog import ConstraintAdded, TableCreated
from events.model import Column, Constraint
from events.store import EventStore
from projections.schema import HEAD, Point, Projector, normalized
from service.reconciler.apply import migrate
from service.reconciler.dialects.base import Dialect
from service.reconciler.targets import dialect_of, open_target
from tests.sqlexec import run_sql
from tests.test_reconciler import append, live_equals_projection, req


async def test_a_failed_run_leaves_the_old_version_or_resumes(log_store: EventStore, target_url: str) -> None:
    v1 = await append(
        log_store,
        TableCreated(
            table="people",
            columns=(Column(name="id", type="integer", nullable=False), Column(name="mail", type="varchar(50)")),
            primary_key=("id",),
        ),
    )
    v2 = await append(
        log_store,
        TableCreated(table="audit", columns=(Column(name="id", type="integer", nullable=False),), primary_key=("id",)),
        ConstraintAdded(
            table="people", constraint=Constraint(name="people_mail_key", kind="unique", columns=("mail",))
        ),
    )
    assert (await migrate(log_store, req(target_url, Point(version=v1)))).status == "applied"
    run_sql(target_url, "INSERT INTO people (id, mail) VALUES (1, 'a@example.org'), (2, 'a@example.org')")

    failed = await migrate(log_store, req(target_url, HEAD))
    assert failed.status == "failed"
    # the constraint's statement (SQLite rebuilds the table: the failing one copies the rows)
    assert failed.failed_statement in failed.statements[1:], failed.failed_statement
    detail = failed.detail or ""
    assert "\n" not in detail

    target = await open_target(target_url)
    try:
        marker = await target.read_marker("app")
        live = await target.introspect()
        transactional = target.dialect.transactional_ddl
    finally:
        await target.close()
    assert marker is not None
    if transactional:
        # nothing of the run stays: the database is exactly version 1, and the outcome says so
        assert marker.version == v1 and not marker.in_progress
        _, at_v1 = await Projector(log_store).schema("app", Point(version=v1))
        assert normalized(live) == normalized(_expected(target_url, at_v1))
        assert f"still at version {v1}" in detail, detail
    else:
        # the first statement is done and recorded: the next run goes on from the second
        assert marker.in_progress and marker.target_version == v2 and marker.steps_done == 1
        assert "audit" in live.tables
        assert "resume" in detail, detail
    assert "run migrate again" in detail, detail

    # the same run again, with the rows still wrong: the same failure, nothing lost, nothing doubled
    again = await migrate(log_store, req(target_url, HEAD))
    assert again.status == "failed" and again.failed_statement == failed.failed_statement

    run_sql(target_url, "DELETE FROM people WHERE id = 2")
    finished = await migrate(log_store, req(target_url, HEAD))
    assert finished.status == "applied", finished.detail
    await live_equals_projection(log_store, target_url, v2)
    assert run_sql(target_url, "SELECT id, mail FROM people") == [(1, "a@example.org")]


def _expected(url: str, schema: object) -> object:
    from service.reconciler.dialects import get_dialect

    dialect: Dialect = get_dialect(dialect_of(url))
    return dialect.normalize(schema)  # type: ignore[arg-type]
