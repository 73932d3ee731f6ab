"""The reconciler on PostgreSQL, MariaDB and SQLite: the same tests on each dialect."""

from __future__ import annotations

import asyncio

from events.catalog import (
    ColumnAdded,
    ColumnAltered,
    ColumnRenamed,
    ConstraintAdded,
    IndexCreated,
    PrimaryKeySet,
    TableCreated,
    TableRenamed,
)
from events.envelope import Changeset
from events.log import EventLog
from events.model import Column, Constraint, Index, Reference
from events.store import EventStore
from projections.schema import HEAD, Point, Projector, normalized
from service.reconciler.apply import MigrateRequest, migrate, outcome_stream
from service.reconciler.targets import open_target
from tests.sqlexec import run_sql


async def append(store: EventStore, *events: object, actor: str = "dev", stream: str = "app") -> int:
    result = await EventLog(store).append(Changeset(stream=stream, actor=actor, events=tuple(events)))  # type: ignore[arg-type]
    return result.last_version


async def live_equals_projection(store: EventStore, url: str, version: int) -> None:
    target = await open_target(url)
    try:
        live = await target.introspect()
        marker = await target.read_marker("app")
        _, schema = await Projector(store).schema("app", Point(version=version))
        assert normalized(live) == normalized(target.expected(schema))
        assert marker is not None and marker.version == version and not marker.in_progress
    finally:
        await target.close()


def req(url: str, to: object = HEAD, **kw: object) -> MigrateRequest:
    point = to if isinstance(to, Point) else Point(version=int(to))  # type: ignore[arg-type]
    return MigrateRequest(url=url, stream="app", actor="tester", to=point, **kw)  # type: ignore[arg-type]


AWKWARD_TABLE = 'odd "name"; DROP TABLE x'
AWKWARD_COLUMN = "a column; --"


async def history(store: EventStore) -> list[int]:
    """A history touching every kind of change; returns the version after each changeset."""
    v = []
    v.append(
        await append(
            store,
            TableCreated(
                table="users",
                columns=(
                    Column(name="id", type="bigint", nullable=False, identity=True),
                    Column(name="mail", type="varchar(100)", nullable=False),
                    Column(name="score", type="integer", default="0"),
                ),
                primary_key=("id",),
            ),
            IndexCreated(table="users", index=Index(name="users_mail_key", columns=("mail",), unique=True)),
        )
    )
    v.append(
        await append(
            store,
            TableCreated(
                table="orders",
                columns=(
                    Column(name="id", type="integer", nullable=False),
                    Column(name="user_id", type="bigint"),
                    Column(name="total", type="numeric(10,2)", default="0"),
                    Column(name="note", type="varchar(20)", default="'none'", comment="free text"),
                ),
                primary_key=("id",),
                comment="what users bought",
            ),
            ConstraintAdded(
                table="orders",
                constraint=Constraint(
                    name="orders_user_fk",
                    kind="foreign_key",
                    columns=("user_id",),
                    references=Reference(table="users", columns=("id",)),
                    on_delete="cascade",
                ),
            ),
            ConstraintAdded(
                table="orders", constraint=Constraint(name="orders_total_pos", kind="check", expression="total >= 0")
            ),
        )
    )
    v.append(await append(store, ColumnRenamed(table="users", column="mail", new_name="email")))
    v.append(await append(store, TableRenamed(table="orders", new_name="purchases")))
    v.append(await append(store, ColumnAltered.of("purchases", "note", type="varchar(200)")))
    v.append(await append(store, ColumnAdded(table="users", column=Column(name="nick", type="text"))))
    v.append(
        await append(
            store,
            TableCreated(
                table=AWKWARD_TABLE,
                columns=(Column(name=AWKWARD_COLUMN, type="integer", nullable=False), Column(name="x", type="text")),
            ),
            PrimaryKeySet(table=AWKWARD_TABLE, columns=(AWKWARD_COLUMN,)),
            IndexCreated(table=AWKWARD_TABLE, index=Index(name="odd; index", columns=("x",))),
        )
    )
    v.append(
        await append(
            store,
            ConstraintAdded(
                table="users", constraint=Constraint(name="users_nick_key", kind="unique", columns=("nick",))
            ),
        )
    )
    return v


async def test_forward_back_and_forward_keep_rows(log_store: EventStore, target_url: str) -> None:
    versions = await history(log_store)
    first = await migrate(log_store, req(target_url, versions[1]))
    assert first.status == "applied", first.detail
    await live_equals_projection(log_store, target_url, versions[1])
    run_sql(
        target_url,
        "INSERT INTO users (mail, score) VALUES ('a@example.com', 5)",
        "INSERT INTO orders (id, user_id, total, note) VALUES (1, 1, 9.5, 'first')",
    )
    head = versions[-1]
    # forward to head, back to versions[1] (renames undone), forward again; rows survive
    for to in (head, versions[3], versions[1], head, versions[2], head):
        outcome = await migrate(log_store, req(target_url, to, allow_destructive=True))
        assert outcome.status in ("applied", "up_to_date"), (to, outcome.detail, outcome.drift)
        await live_equals_projection(log_store, target_url, to)
        _, schema = await Projector(log_store).schema("app", Point(version=to))
        users = "users"
        mail = "email" if "email" in schema.tables[users].column_names() else "mail"
        orders = "purchases" if "purchases" in schema.tables else "orders"
        assert run_sql(target_url, f"SELECT {mail}, score FROM {users}") == [("a@example.com", 5)]
        assert [tuple(r) for r in run_sql(target_url, f"SELECT id, note FROM {orders}")] == [(1, "first")]
    # every run recorded in the database's own stream
    outcomes = await log_store.read(outcome_stream(first.database))
    assert [e.event.type for e in outcomes].count("migration_applied") >= 6


async def test_drift_is_reported_and_nothing_applied(log_store: EventStore, target_url: str) -> None:
    versions = await history(log_store)
    assert (await migrate(log_store, req(target_url, versions[0]))).status == "applied"
    run_sql(target_url, "ALTER TABLE users ADD COLUMN sneaky INTEGER")
    outcome = await migrate(log_store, req(target_url, versions[-1]))
    assert outcome.status == "drift"
    assert any("users.sneaky" in line and "not in the log" in line for line in outcome.drift), outcome.drift
    target = await open_target(target_url)
    try:
        marker = await target.read_marker("app")
        live = await target.introspect()
    finally:
        await target.close()
    assert marker is not None and marker.version == versions[0]
    assert "orders" not in live.tables  # nothing applied
    recorded = await log_store.read(outcome_stream(outcome.database))
    assert recorded[-1].event.type == "drift_found"


async def test_destructive_needs_permission_and_fake_moves_marker(log_store: EventStore, target_url: str) -> None:
    versions = await history(log_store)
    assert (await migrate(log_store, req(target_url, versions[-1]))).status == "applied"
    refused = await migrate(log_store, req(target_url, versions[4]))
    assert refused.status == "refused"
    assert "drop column users.nick" in (refused.detail or "") or "drop table" in (refused.detail or "")
    allowed = await migrate(log_store, req(target_url, versions[4], allow_destructive=True))
    assert allowed.status == "applied", allowed.detail
    await live_equals_projection(log_store, target_url, versions[4])
    # --fake moves the marker only, and says so
    faked = await migrate(log_store, req(target_url, versions[5], fake=True))
    assert faked.status == "faked"
    target = await open_target(target_url)
    try:
        assert (await target.read_marker("app")).version == versions[5]  # type: ignore[union-attr]
        assert "nick" not in (await target.introspect()).tables["users"].column_names()
    finally:
        await target.close()
    recorded = await log_store.read(outcome_stream(faked.database))
    assert recorded[-1].event.type == "migration_faked"


async def test_non_empty_database_without_marker_is_refused(log_store: EventStore, target_url: str) -> None:
    await history(log_store)
    run_sql(target_url, "CREATE TABLE legacy (id INTEGER)")
    outcome = await migrate(log_store, req(target_url))
    assert outcome.status == "refused"
    assert "no schemalog marker" in (outcome.detail or "")


async def test_two_migrators_apply_once(log_store: EventStore, target_url: str) -> None:
    versions = await history(log_store)
    first, second = await asyncio.gather(
        migrate(log_store, req(target_url, versions[-1], lock_timeout=30)),
        migrate(log_store, req(target_url, versions[-1], lock_timeout=30)),
    )
    statuses = sorted([first.status, second.status])
    assert statuses in (["applied", "up_to_date"], ["applied", "locked"]), (first.detail, second.detail)
    await live_equals_projection(log_store, target_url, versions[-1])
    applied = [e for e in await log_store.read(outcome_stream(first.database)) if e.event.type == "migration_applied"]
    assert len(applied) == 1


async def test_plan_runs_nothing(log_store: EventStore, target_url: str) -> None:
    await history(log_store)
    outcome = await migrate(log_store, req(target_url, plan_only=True))
    assert outcome.status == "planned" and outcome.statements
    assert all(step["source_version"] >= 1 for step in outcome.steps)
    target = await open_target(target_url)
    try:
        assert (await target.introspect()).tables == {}
    finally:
        await target.close()


async def test_percent_signs_in_checks_and_defaults_reach_the_database_as_written(
    log_store: EventStore, target_url: str
) -> None:
    """SQL text in events (a check's expression, a default) is sent as is: '%' stays one '%'."""
    version = await append(
        log_store,
        TableCreated(
            table="codes",
            columns=(
                Column(name="id", type="integer", nullable=False),
                Column(name="code", type="varchar(20)", default="'50%'"),
            ),
            primary_key=("id",),
        ),
        ConstraintAdded(
            table="codes",
            constraint=Constraint(name="codes_code_like", kind="check", expression="code LIKE '%5%'"),
        ),
    )
    outcome = await migrate(log_store, req(target_url, version))
    assert outcome.status == "applied", (outcome.detail, outcome.drift)
    await live_equals_projection(log_store, target_url, version)
    run_sql(target_url, "INSERT INTO codes (id) VALUES (1)")
    assert [tuple(r) for r in run_sql(target_url, "SELECT code FROM codes")] == [("50%",)]
