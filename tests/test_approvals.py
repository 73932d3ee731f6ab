"""Approvals on the real stores (SQLite and PostgreSQL), and the reconciler refusing an unapproved
changeset on a real SQLite target until another principal approves it."""

from __future__ import annotations

from pathlib import Path

import pytest

from events.auth import APPROVALS_STREAM
from events.catalog import ColumnAdded, TableCreated, TagCreated
from events.envelope import Changeset
from events.fleet import DatabaseRegistered
from events.log import EventLog
from events.model import Column
from events.store import EventStore
from service.app import fleet
from service.app.approvals import ApprovalError, approve, missing_approvals, require
from service.app.tokens import authenticate, create_token
from service.cli import main
from service.reconciler.apply import MigrateRequest, migrate


async def changeset(store: EventStore, *events: object, actor: str = "alice", stream: str = "app") -> str:
    result = await EventLog(store).append(Changeset(stream=stream, actor=actor, events=tuple(events)))  # type: ignore[arg-type]
    return result.changeset_id


USERS = TableCreated(table="users", columns=(Column(name="id", type="bigint", nullable=False),), primary_key=("id",))
NAME = ColumnAdded(table="users", column=Column(name="name", type="text"))


async def test_approve_refusals(store: EventStore) -> None:
    first = await changeset(store, USERS, NAME)
    with pytest.raises(ApprovalError, match="its author cannot approve it"):
        await approve(store, "app", first, "alice")
    with pytest.raises(ApprovalError, match="no changeset 'nope'"):
        await approve(store, "app", "nope", "bob")
    with pytest.raises(ApprovalError, match="is on stream 'app', not 'other'"):
        await approve(store, "other", first, "bob")
    result = await approve(store, None, first, "bob", comment="looks right")
    assert result.approvers == ("bob",) and result.need == 0
    assert (result.changeset.first_version, result.changeset.last_version) == (1, 2)
    with pytest.raises(ApprovalError, match="already approved"):
        await approve(store, "app", first, "bob")
    (given,) = await store.read(APPROVALS_STREAM)
    assert given.actor == "bob" and given.event.type == "approval_given"
    assert given.event.changeset_hash == await store.event_hash("app", 2)  # type: ignore[union-attr]
    assert await store.version("app") == 2  # the approved stream consumed no version
    # by a version the changeset holds
    assert (await approve(store, "app", "v1", "carol")).approvers == ("bob", "carol")
    with pytest.raises(ApprovalError, match="0 to 20"):
        await require(store, "app", 21, "ops")
    with pytest.raises(ApprovalError, match="service's own"):
        await require(store, "schemalog:fleet", 1, "ops")


async def test_missing_approvals(store: EventStore) -> None:
    first = await changeset(store, USERS)
    second = await changeset(store, NAME, actor="bob")
    await changeset(store, TagCreated(tag="r1", version=2), actor="bob")  # tags only: nothing to approve
    assert await missing_approvals(store, "app", 0, 3) == []  # no rule yet
    await require(store, "app", 1, "ops")
    missing = await missing_approvals(store, "app", 0, 3)
    assert [(m.changeset_id, m.have, m.need) for m in missing] == [(first, 0, 1), (second, 0, 1)]
    assert str(missing[0]) == f"changeset {first} (v1) has 0 of 1 approvals"
    await approve(store, "app", second, "alice")
    assert [m.changeset_id for m in await missing_approvals(store, "app", 0, 3)] == [first]
    assert await missing_approvals(store, "app", 1, 3) == []
    assert await missing_approvals(store, "app", 3, 0) == []  # going back applies no changeset
    await require(store, "app", 0, "ops")
    assert await missing_approvals(store, "app", 0, 3) == []


async def test_migrate_refuses_until_another_principal_approves(store: EventStore, tmp_path: Path) -> None:
    author_text, _ = await create_token(store, name="dev", role="author", streams=("app",), expires_in=None, actor="o")
    reviewer_text, _ = await create_token(store, name="lead", role="author", streams=None, expires_in=None, actor="o")
    author = await authenticate(store, author_text)
    reviewer = await authenticate(store, reviewer_text)
    first = await changeset(store, USERS, NAME, actor=author.actor)
    await require(store, "app", 1, "ops")
    target = f"sqlite:///{tmp_path / 'target.db'}"
    request = MigrateRequest(url=target, stream="app", actor="deployer")

    planned = await migrate(store, MigrateRequest(url=target, stream="app", actor="deployer", plan_only=True))
    assert planned.status == "planned" and planned.detail is not None
    assert f"changeset {first} (v1..v2) has 0 of 1 approvals" in planned.detail

    refused = await migrate(store, request)
    assert refused.status == "refused"
    assert refused.detail is not None and f"changeset {first} (v1..v2) has 0 of 1 approvals" in refused.detail
    assert not (tmp_path / "target.db").exists() or "users" not in (tmp_path / "target.db").read_bytes().decode(
        "latin-1"
    )
    with pytest.raises(ApprovalError, match="its author cannot approve it"):
        await approve(store, "app", first, author.actor)
    assert (await migrate(store, request)).status == "refused"

    await approve(store, "app", first, reviewer.actor)
    applied = await migrate(store, request)
    assert applied.status == "applied", applied.detail
    assert (applied.from_version, applied.to_version) == (0, 2)


async def test_a_fleet_database_may_require_approvals(store: EventStore, tmp_path: Path) -> None:
    first = await changeset(store, USERS)
    target = f"sqlite:///{tmp_path / 'eu.db'}"
    await fleet.register(store, "ops", DatabaseRegistered(name="eu", url=target, stream="app", approvals=2))
    view = await fleet.fleet_view(store)
    assert view.databases["eu"].approvals == 2 and view.databases["eu"].public()["approvals"] == 2
    request = MigrateRequest(url=target, stream="app", actor="daemon:test", database="eu")
    refused = await migrate(store, request)
    assert refused.status == "refused" and f"changeset {first} (v1) has 0 of 2 approvals" in (refused.detail or "")
    # the same stream to a database that requires nothing goes through
    other = MigrateRequest(url=f"sqlite:///{tmp_path / 'us.db'}", stream="app", actor="me", database="us")
    assert (await migrate(store, other)).status == "applied"
    await approve(store, "app", first, "bob")
    assert "has 1 of 2" in ((await migrate(store, request)).detail or "")
    await approve(store, "app", first, "carol")
    assert (await migrate(store, request)).status == "applied"


def test_cli_approve_and_migrate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'log.db'}"
    target = f"sqlite:///{tmp_path / 'target.db'}"

    def cli(*args: str) -> tuple[int, str, str]:
        code = main(["--store", url, *args])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    assert cli("init")[0] == 0
    (tmp_path / "cs.json").write_text(
        '{"stream": "app", "changeset_id": "cs-1", "events": [{"type": "table_created", "table": "t",'
        ' "columns": [{"name": "id", "type": "bigint", "nullable": false}], "primary_key": ["id"]}]}'
    )
    assert cli("append", "cs.json", "--actor", "alice")[0] == 0
    code, out, _ = cli("approvals", "require", "app", "1", "--actor", "ops")
    assert code == 0 and "needs 1 approval " in out
    code, out, _ = cli("migrate", "--url", target, "--stream", "app", "--plan")
    assert code == 0 and "-- migrate would refuse: approval required: changeset cs-1 (v1) has 0 of 1 approvals" in out
    code, _, err = cli("migrate", "--url", target, "--stream", "app")
    assert code == 2 and "changeset cs-1 (v1) has 0 of 1 approvals" in err and err.count("\n") == 1, err
    code, _, err = cli("approve", "cs-1", "--actor", "alice")
    assert code == 2 and "its author cannot approve it" in err and err.count("\n") == 1
    code, out, err = cli("approve", "cs-1", "--stream", "app", "--actor", "bob", "-m", "ok")
    assert code == 0 and "1 approval of the 1 the stream requires" in out, err
    code, out, err = cli("migrate", "--url", target, "--stream", "app")
    assert code == 0 and "applied app 0 -> 1" in out, err


def test_the_daemon_stalls_until_approved_then_applies(tmp_path: Path) -> None:
    import asyncio

    from events.store import open_store
    from tests.daemon_harness import DaemonProcess, wait_until

    url = f"sqlite:///{tmp_path / 'log.db'}"
    target = f"sqlite:///{tmp_path / 'eu.db'}"

    async def setup() -> str:
        store = await open_store(url)
        try:
            await store.init()
            first = await changeset(store, USERS, NAME)
            await fleet.register(store, "ops", DatabaseRegistered(name="eu", url=target, stream="app", approvals=1))
            return first
        finally:
            await store.close()

    async def status() -> fleet.DatabaseStatus:
        store = await open_store(url, create=False)
        try:
            (row,) = await fleet.status(store)
            return row
        finally:
            await store.close()

    async def approve_it(changeset_id: str) -> None:
        store = await open_store(url, create=False)
        try:
            await approve(store, "app", changeset_id, "bob")
        finally:
            await store.close()

    first = asyncio.run(setup())
    daemon = DaemonProcess(url, "solo", poll=0.5)
    try:
        stalled = wait_until(
            lambda: (r := asyncio.run(status())).status == "Stalled" and r, 60, "the database Stalled for approval"
        )
        assert f"changeset {first} (v1..v2) has 0 of 1 approvals" in (stalled.detail or ""), stalled.detail
        asyncio.run(approve_it(first))
        ready = wait_until(lambda: (r := asyncio.run(status())).status == "Ready" and r, 60, "Ready once approved")
        assert ready.marker == 2
    finally:
        daemon.stop()
