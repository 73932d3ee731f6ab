"""The daemon's leases and the fenced append, on the real stores (SQLite and PostgreSQL).

Every wait polls what the database reports (a lease's expiry by its clock, a lock in pg_locks), bounded.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import asyncpg
import pytest

from events.catalog import TableCreated
from events.envelope import Changeset
from events.log import EventLog
from events.model import Column
from events.store import EventStore, Fence, LeaseLost, StoreError, open_store
from events.store.postgres import _POSITION_LOCK, normalise_url
from service.daemon.leases import (
    DAEMON_RESOURCE,
    DaemonAlreadyRunning,
    Lease,
    Leases,
    PostgresLeases,
    SqliteLeases,
    open_leases,
)

T = TypeVar("T")
WAIT = 15.0  # seconds: the bound of every wait


async def until(check: Callable[[], Awaitable[T]], what: str, timeout: float = WAIT) -> T:
    """Poll ``check`` until it returns something true; fail naming ``what`` after ``timeout``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = await check()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.02)


@asynccontextmanager
async def replica(url: str) -> AsyncIterator[tuple[EventStore, Leases]]:
    """A store of its own (its own pool or connection) and its leases: one replica's view."""
    store = await open_store(url)
    await store.init()
    leases = await open_leases(store)
    try:
        yield store, leases
    finally:
        await leases.close()
        await store.close()


def outcome(stream: str, name: str, expected: int | None = None) -> Changeset:
    data: dict[str, Any] = {
        "stream": stream,
        "actor": "daemon",
        "message": "outcome",
        "events": (TableCreated(table=name, columns=(Column(name="id", type="integer"),)),),
    }
    if expected is not None:
        data["expected_version"] = expected
    return Changeset(**data)


async def expired(leases: Leases, resource: str) -> bool:
    rows = {row.resource: row for row in await leases.rows()}
    return resource in rows and not rows[resource].live


def is_postgres(url: str) -> bool:
    return url.startswith("postgres")


async def test_open_leases_picks_the_backend(store_url: str) -> None:
    async with replica(store_url) as (_store, leases):
        assert isinstance(leases, PostgresLeases if is_postgres(store_url) else SqliteLeases)
        await leases.setup()  # idempotent
        assert await leases.rows() == []


async def test_two_replicas_claiming_at_once_split_the_candidates(store_url: str) -> None:
    candidates = [f"db{i:02}" for i in range(20)]
    async with replica(store_url) as (_sa, a), replica(store_url) as (_sb, b):
        for round_ in range(1, 4):
            got_a, got_b = await asyncio.gather(a.claim("a", candidates, 10, 30.0), b.claim("b", candidates, 10, 30.0))
            names_a = {lease.resource for lease in got_a}
            names_b = {lease.resource for lease in got_b}
            assert not names_a & names_b, f"round {round_}: both replicas hold {sorted(names_a & names_b)}"
            assert names_a | names_b == set(candidates)
            assert len(got_a) == len(got_b) == 10
            assert {lease.holder for lease in got_a} == {"a"} and {lease.holder for lease in got_b} == {"b"}
            assert {lease.epoch for lease in got_a + got_b} == {round_}
            # nothing is free: a third replica gets nothing, and neither does a second claim
            async with replica(store_url) as (_sc, c):
                assert await c.claim("c", candidates, 20, 30.0) == []
            assert await a.claim("a", candidates, 20, 30.0) == []
            rows = await a.rows()
            assert [row.resource for row in rows] == candidates
            assert all(row.live for row in rows)
            assert {row.resource: row.holder for row in rows} == {
                **{n: "a" for n in names_a},
                **{n: "b" for n in names_b},
            }
            await a.release("a", got_a)
            await b.release("b", got_b)
            assert not any(row.live or row.holder for row in await a.rows())


async def test_an_expired_lease_is_taken_over_and_its_renewal_reports_it_lost(store_url: str) -> None:
    async with replica(store_url) as (_sa, a), replica(store_url) as (_sb, b):
        [first] = await a.claim("a", ["db1", "db2"], 1, 1.5)
        assert (first.resource, first.holder, first.epoch) == ("db1", "a", 1)
        [other] = await b.claim("b", ["db1", "db2"], 5, 30.0)  # the live one is left alone
        assert other.resource == "db2"
        await until(lambda: expired(b, "db1"), "db1's lease to expire by the database's clock")
        [taken] = await b.claim("b", ["db1"], 1, 30.0)
        assert (taken.resource, taken.holder, taken.epoch) == ("db1", "b", 2)
        assert taken.expires_at > first.expires_at
        renewed, lost = await a.renew("a", [first], 30.0)
        assert (renewed, lost) == ([], ["db1"])
        renewed, lost = await b.renew("b", [taken, other], 60.0)
        assert lost == [] and [lease.resource for lease in renewed] == ["db1", "db2"]
        assert all(n.expires_at > o.expires_at for n, o in zip(renewed, [taken, other], strict=True))
        assert [lease.epoch for lease in renewed] == [2, 1]
        # a lease that expired without a takeover is lost too: renewal never revives it
        [short] = await a.claim("a", ["db3"], 1, 0.3)
        await until(lambda: expired(a, "db3"), "db3's lease to expire")
        assert await a.renew("a", [short], 30.0) == ([], ["db3"])
        # a stale release changes nothing
        await a.release("a", [first])
        rows = {row.resource: row for row in await b.rows()}
        assert rows["db1"].holder == "b" and rows["db1"].live


async def test_a_fenced_append_writes_only_under_the_current_lease(store_url: str) -> None:
    async with replica(store_url) as (store, a), replica(store_url) as (_sb, b):
        [old] = await a.claim("a", ["db1"], 1, 30.0)
        done = await store.append(outcome("db:db1", "t1", expected=0), fence=old.fence)
        assert done.last_version == 1
        await a.release("a", [old])
        [new] = await b.claim("b", ["db1"], 1, 30.0)
        assert new.epoch == old.epoch + 1
        for stale in (old.fence, Fence("db1", "a", new.epoch), Fence("db1", "b", old.epoch), Fence("db9", "b", 1)):
            with pytest.raises(LeaseLost) as caught:
                await store.append(outcome("db:db1", "t2", expected=1), fence=stale)
            assert caught.value.fence == stale
            assert await store.version("db:db1") == 1
        # a new stream is not made by a refused append either
        with pytest.raises(LeaseLost):
            await store.append(outcome("db:fresh", "t1"), fence=old.fence)
        assert await store.version("db:fresh") == 0 and "db:fresh" not in await store.stream_heads()
        # through the write path too
        log = EventLog(store)
        with pytest.raises(LeaseLost):
            await log.append(outcome("db:db1", "t2"), fence=old.fence)
        result = await log.append(outcome("db:db1", "t2"), fence=new.fence)
        assert (result.first_version, result.last_version) == (2, 2)
        assert [e.version for e in await store.read("db:db1")] == [1, 2]


async def test_a_fenced_append_under_an_expired_lease_is_refused(store_url: str) -> None:
    async with replica(store_url) as (store, leases):
        [lease] = await leases.claim("a", ["db1"], 1, 0.3)
        await until(lambda: expired(leases, "db1"), "the lease to expire")
        with pytest.raises(LeaseLost):
            await store.append(outcome("db:db1", "t1"), fence=lease.fence)
        assert await store.version("db:db1") == 0


async def test_a_fenced_append_on_a_store_without_leases_is_refused(store_url: str) -> None:
    store = await open_store(store_url)
    await store.init()
    try:
        with pytest.raises(LeaseLost):
            await store.append(outcome("db:db1", "t1"), fence=Fence("db1", "a", 1))
        assert await store.version("db:db1") == 0
        await store.append(outcome("db:db1", "t1"))  # unfenced: as ever
        assert await store.version("db:db1") == 1
    finally:
        await store.close()


async def test_heartbeats_count_the_live_replicas(store_url: str) -> None:
    async with replica(store_url) as (_sa, a), replica(store_url) as (_sb, b):
        assert await a.heartbeat("a", 30.0) == 1
        assert await b.heartbeat("b", 1.5) == 2
        assert await a.heartbeat("a", 30.0) == 2

        async def alone() -> bool:
            return await a.heartbeat("a", 30.0) == 1

        await until(alone, "replica b's heartbeat to expire")
        assert await b.heartbeat("b", 30.0) == 2  # back


async def test_notes_are_kept_in_the_lease_row_while_it_is_ours(store_url: str) -> None:
    async with replica(store_url) as (_s, leases):
        [lease] = await leases.claim("a", ["db1"], 1, 30.0)
        retry = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=2)
        await leases.note(lease, state="Stalled", last_error="connection refused", next_attempt=retry)
        [row] = await leases.rows()
        assert (row.resource, row.holder, row.epoch, row.live) == ("db1", "a", 1, True)
        assert (row.state, row.last_error, row.next_attempt) == ("Stalled", "connection refused", retry)
        assert row.updated_at is not None and row.expires_at == lease.expires_at
        await leases.note(lease, state="Ready", last_error="x" * 5000, next_attempt=None)
        [row] = await leases.rows()
        assert row.state == "Ready" and row.next_attempt is None
        assert row.last_error is not None and len(row.last_error) == 2000
        stale = Lease(lease.resource, lease.holder, lease.epoch - 1, lease.expires_at)
        await leases.note(stale, state="Halted", last_error=None, next_attempt=None)
        await leases.release("a", [lease])
        [row] = await leases.rows()
        assert row.state == "Ready" and row.holder is None and row.expires_at is None and not row.live
        await leases.note(lease, state="Halted", last_error=None, next_attempt=None)  # no longer ours
        assert (await leases.rows())[0].state == "Ready"


# PostgreSQL: a takeover and a fenced append at the same moment are serialised by the lease row's lock.


async def _waiting_locks(admin: asyncpg.Connection, locktype: str) -> int:
    return int(await admin.fetchval("SELECT count(*) FROM pg_locks WHERE NOT granted AND locktype = $1", locktype))


async def test_a_takeover_waits_for_a_fenced_append_in_flight(pg_url: str) -> None:
    admin = await asyncpg.connect(normalise_url(pg_url))
    try:
        async with replica(pg_url) as (store, a), replica(pg_url) as (_sb, b):
            [lease] = await a.claim("a", ["db1"], 1, 2.0)
            # hold the append after its fence check: it waits for the position lock, holding the lease row
            await admin.execute("SELECT pg_advisory_lock($1)", _POSITION_LOCK)
            append = asyncio.create_task(store.append(outcome("db:db1", "t1", expected=0), fence=lease.fence))
            await until(lambda: _waiting_locks(admin, "advisory"), "the append to wait for the position lock")
            await until(lambda: expired(b, "db1"), "the lease to expire while the append is in flight")
            assert await b.claim("b", ["db1"], 1, 30.0) == []  # the row is the append's until it commits
            await admin.execute("SELECT pg_advisory_unlock($1)", _POSITION_LOCK)
            result = await asyncio.wait_for(append, WAIT)  # no LeaseLost: its fence was valid
            assert result.last_version == 1 and await store.version("db:db1") == 1
            [taken] = await b.claim("b", ["db1"], 1, 30.0)
            assert (taken.holder, taken.epoch) == ("b", 2)
            with pytest.raises(LeaseLost):
                await store.append(outcome("db:db1", "t2", expected=1), fence=lease.fence)
            assert await store.version("db:db1") == 1
    finally:
        await admin.close()


async def test_a_fenced_append_waits_for_a_change_of_its_lease_in_flight_and_sees_it(pg_url: str) -> None:
    """A renewal in flight (the row locked by its UPDATE) does not make a valid fence fail; a release in
    flight is seen once it commits. (A takeover needs the lease expired: the append refuses at once.)"""
    from service.daemon.leases import PG_RELEASE_SQL, PG_RENEW_SQL

    admin = await asyncpg.connect(normalise_url(pg_url))
    try:
        async with replica(pg_url) as (store, a):
            [lease] = await a.claim("a", ["db1"], 1, 30.0)
            async with admin.transaction():  # replica a's heartbeat renewing, its transaction held open
                [renewed] = await admin.fetch(PG_RENEW_SQL, "a", ["db1"], [lease.epoch], 60.0)
                assert renewed["epoch"] == lease.epoch
                append = asyncio.create_task(store.append(outcome("db:db1", "t1", expected=0), fence=lease.fence))
                await until(lambda: _waiting_locks(admin, "transactionid"), "the append to wait for the renewal")
                assert not append.done()
            result = await asyncio.wait_for(append, WAIT)
            assert result.last_version == 1
            async with admin.transaction():  # replica a releasing, held open
                await admin.execute(PG_RELEASE_SQL, "a", ["db1"], [lease.epoch])
                append = asyncio.create_task(store.append(outcome("db:db1", "t2", expected=1), fence=lease.fence))
                await until(lambda: _waiting_locks(admin, "transactionid"), "the append to wait for the release")
                assert not append.done()
            with pytest.raises(LeaseLost):
                await asyncio.wait_for(append, WAIT)
            assert await store.version("db:db1") == 1
    finally:
        await admin.close()


# SQLite: the daemon runs alone.


async def test_sqlite_a_second_daemon_is_refused_while_the_first_is_live(sqlite_url: str) -> None:
    async with replica(sqlite_url) as (_sa, a), replica(sqlite_url) as (_sb, b):
        assert isinstance(a, SqliteLeases) and isinstance(b, SqliteLeases)
        first = await a.claim_daemon("one", 5.0)
        assert (first.resource, first.holder, first.epoch) == (DAEMON_RESOURCE, "one", 1)
        with pytest.raises(DaemonAlreadyRunning) as caught:
            await b.claim_daemon("two", 30.0)
        message = str(caught.value)
        assert message.startswith("another daemon (replica one) holds this SQLite store until ")
        assert message.endswith("; stop it first")
        kept = await a.claim_daemon("one", 0.3)  # its holder's heartbeat: kept, the same epoch (now to expire soon)
        assert (kept.holder, kept.epoch) == ("one", 1) and kept.expires_at < first.expires_at
        await until(lambda: expired(b, DAEMON_RESOURCE), "the first daemon's lock to expire")
        second = await b.claim_daemon("two", 30.0)
        assert (second.holder, second.epoch) == ("two", 2)
        assert await a.renew("one", [first], 30.0) == ([], [DAEMON_RESOURCE])
        with pytest.raises(DaemonAlreadyRunning):
            await a.claim_daemon("one", 30.0)  # lost: not given back to the first
        await a.release_daemon("one")  # not its own: nothing changes
        assert [row.holder for row in await a.rows()] == ["two"]
        await b.release_daemon("two")
        third = await a.claim_daemon("one", 30.0)  # released: free at once
        assert (third.holder, third.epoch) == ("one", 3)
        assert (a.single, a.notifies) == (True, False)


async def test_postgresql_has_no_single_daemon_lock(pg_url: str) -> None:
    async with replica(pg_url) as (_s, leases):
        assert (leases.single, leases.notifies) == (False, True)
        with pytest.raises(StoreError):
            await leases.claim_daemon("one", 30.0)
        await leases.release_daemon("one")
        assert await leases.rows() == []
