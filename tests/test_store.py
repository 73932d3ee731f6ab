"""The store contract, run on SQLite and PostgreSQL; immutability and tamper evidence."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from events.catalog import ColumnAdded, TableCreated
from events.envelope import Changeset
from events.model import Column
from events.store import ChangesetIdConflict, ConcurrencyError, EventStore, verify_store
from service.cli import main

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def table(name: str) -> TableCreated:
    return TableCreated(table=name, columns=(Column(name="id", type="integer"),))


def column(tbl: str, name: str) -> ColumnAdded:
    return ColumnAdded(table=tbl, column=Column(name=name, type="text"))


def cs(stream: str, *events: Any, expected: int | None = None, cid: str | None = None) -> Changeset:
    data: dict[str, Any] = {"stream": stream, "actor": "tester", "message": "m", "events": events}
    if expected is not None:
        data["expected_version"] = expected
    if cid is not None:
        data["changeset_id"] = cid
    return Changeset(**data)


async def test_append_and_read_by_version_time_and_position(store: EventStore) -> None:
    a1 = await store.append(cs("a", table("t"), column("t", "x"), expected=0), now=T0)
    b1 = await store.append(cs("b", table("u")), now=T0 + timedelta(minutes=1))
    a2 = await store.append(cs("a", column("t", "y"), expected=2), now=T0 + timedelta(minutes=2))
    assert (a1.first_version, a1.last_version, b1.last_version, a2.last_version) == (1, 2, 1, 3)
    assert await store.version("a") == 3 and await store.version("b") == 1 and await store.version("zz") == 0
    assert [s.name for s in await store.streams()] == ["a", "b"]
    assert [e.version for e in await store.read("a")] == [1, 2, 3]
    assert [e.version for e in await store.read("a", after_version=1, to_version=2)] == [2]
    assert [e.version for e in await store.read("a", until=T0 + timedelta(seconds=30))] == [1, 2]
    every = await store.read_all()
    assert [(e.stream, e.version) for e in every] == [("a", 1), ("a", 2), ("b", 1), ("a", 3)]
    assert [e.position for e in every] == sorted(e.position for e in every)
    later = await store.read_all(after_position=every[1].position, limit=1)
    assert [(e.stream, e.version) for e in later] == [("b", 1)]
    first = every[0]
    assert first.actor == "tester" and first.message == "m" and first.recorded_at == T0
    assert first.event == table("t")
    assert await store.version_at("a", T0 + timedelta(minutes=1)) == 2  # type: ignore[attr-defined]


async def test_stale_expected_version_writes_nothing(store: EventStore) -> None:
    await store.append(cs("a", table("t"), expected=0))
    with pytest.raises(ConcurrencyError) as caught:
        await store.append(cs("a", column("t", "x"), column("t", "y"), expected=0))
    assert caught.value.current == 1 and caught.value.expected == 0
    assert await store.version("a") == 1
    assert len(await store.read_all()) == 1


async def test_changeset_id_is_recorded_once(store: EventStore) -> None:
    first = await store.append(cs("a", table("t"), cid="retry-me", expected=0))
    again = await store.append(cs("a", table("t"), cid="retry-me", expected=0))
    assert not first.duplicate and again.duplicate
    assert (again.first_version, again.last_version) == (1, 1)
    assert await store.version("a") == 1
    with pytest.raises(ChangesetIdConflict):
        await store.append(cs("other", table("t"), cid="retry-me"))


async def test_recorded_time_never_goes_back_within_a_stream(store: EventStore) -> None:
    await store.append(cs("a", table("t")), now=T0)
    await store.append(cs("a", column("t", "x")), now=T0 - timedelta(hours=1))
    times = [e.recorded_at for e in await store.read("a")]
    assert times == sorted(times) and times[1] == T0


async def test_verify_is_clean_on_an_honest_log(store: EventStore) -> None:
    for i in range(5):
        await store.append(cs("a", table(f"t{i}")))
        await store.append(cs("b", table(f"u{i}"), column(f"u{i}", "x")))
    report = await verify_store(store)
    assert report.ok and report.streams == 2 and report.events == 15


# --------------------------------------------------------------------------- immutability


async def _sql(store_url: str, statement: str, *, bypass_trigger: bool = False) -> None:
    if store_url.startswith("sqlite"):
        path = store_url[len("sqlite:///") :]
        conn = sqlite3.connect(path)
        try:
            if bypass_trigger:
                conn.execute("DROP TRIGGER schemalog_events_no_update")
                conn.execute("DROP TRIGGER schemalog_events_no_delete")
            conn.execute(statement)
            conn.commit()
        finally:
            conn.close()
        return
    pg = await asyncpg.connect(store_url)
    try:
        if bypass_trigger:
            # the owner switches the guards off (replica mode no longer does: they are enabled ALWAYS)
            await pg.execute("ALTER TABLE schemalog_events DISABLE TRIGGER USER")
        await pg.execute(statement)
    finally:
        await pg.close()


async def test_update_and_delete_are_refused_by_the_database(store: EventStore, store_url: str) -> None:
    await store.append(cs("a", table("t")))
    for statement in ("UPDATE schemalog_events SET message = 'x'", "DELETE FROM schemalog_events"):
        with pytest.raises((sqlite3.DatabaseError, asyncpg.PostgresError), match="append-only"):
            await _sql(store_url, statement)
    if store_url.startswith("postgresql"):
        with pytest.raises(asyncpg.PostgresError, match="append-only"):
            await _sql(store_url, "TRUNCATE schemalog_events")
    assert len(await store.read_all()) == 1


@pytest.mark.parametrize(
    ("edit", "version", "words"),
    [
        ("UPDATE schemalog_events SET message = 'forged' WHERE stream = 'a' AND version = 2", 2, "edited"),
        (
            "UPDATE schemalog_events SET data = replace(data{cast}, 'x', 'z'){back} WHERE stream = 'a' AND version = 3",
            3,
            "edited",
        ),
        ("DELETE FROM schemalog_events WHERE stream = 'a' AND version = 2", 3, "gap"),
        ("DELETE FROM schemalog_events WHERE stream = 'a' AND version = 4", 3, "head"),
    ],
)
async def test_tampering_is_found_by_verify(
    store: EventStore, store_url: str, edit: str, version: int, words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    await store.append(cs("a", table("t")))
    await store.append(cs("a", column("t", "w"), column("t", "x"), column("t", "y")))
    await store.append(cs("b", table("u")))
    pg = store_url.startswith("postgresql")
    statement = edit.format(cast="::text" if pg else "", back="::jsonb" if pg else "")
    await _sql(store_url, statement, bypass_trigger=True)
    report = await verify_store(store)
    assert not report.ok
    found = [p for p in report.problems if p.stream == "a"]
    assert found and found[0].version == version and words in found[0].problem, report.problems
    assert all(p.stream == "a" for p in report.problems)  # the other stream is clean
    code = await asyncio.to_thread(main, ["--store", store_url, "verify"])
    assert code == 1
    err = capsys.readouterr().err
    assert f"stream 'a' version {version}" in err


# --------------------------------------------------------------------------- NOTIFY


@pytest.mark.postgres
async def test_postgres_append_sends_notify(pg_url: str) -> None:
    from events.store.postgres import PostgresStore

    store = await PostgresStore.open(pg_url)
    await store.init()
    got: asyncio.Queue[str] = asyncio.Queue()
    listener = await asyncpg.connect(pg_url)
    await listener.add_listener("schemalog", lambda *args: got.put_nowait(args[3]))
    try:
        await store.append(cs("a", table("t"), column("t", "x")))
        assert await asyncio.wait_for(got.get(), 5) == "a:2"
    finally:
        await listener.close()
        await store.close()


def dump(store_url: str) -> str:
    """Every row of the log's tables, as text (to show that nothing was written)."""

    async def go() -> str:
        rows: dict[str, Any] = {}
        if store_url.startswith("sqlite"):
            conn = sqlite3.connect(store_url[len("sqlite:///") :])
            try:
                for name in ("schemalog_events", "schemalog_streams", "schemalog_changesets"):
                    rows[name] = conn.execute(f"SELECT * FROM {name} ORDER BY 1, 2").fetchall()
            finally:
                conn.close()
        else:
            pg = await asyncpg.connect(store_url)
            try:
                for name in ("schemalog_events", "schemalog_streams", "schemalog_changesets"):
                    rows[name] = [tuple(r) for r in await pg.fetch(f"SELECT * FROM {name} ORDER BY 1, 2")]
            finally:
                await pg.close()
        return json.dumps(rows, default=str)

    return asyncio.run(go())


def test_seal_hashes_the_canonical_envelope() -> None:
    """The fast chain in seal() gives exactly chain_hash() of the canonical envelope."""
    from events.envelope import chain_hash, format_time, seal

    moment = datetime(2026, 11, 20, 10, 0, 0, 123456, tzinfo=UTC)
    events = [
        TableCreated(table='t"é', columns=(Column(name="id", type="integer", comment="ünï\n\\"),)),
        column('t"é', "x"),
    ]
    sealed = seal(stream="s☃", first_version=7, changeset_id="c-1", actor='a"b', message="m\né",
                  recorded_at=moment, events=events, prev_hash="f" * 64)
    prev = "f" * 64
    for item in sealed:
        assert item.prev_hash == prev
        assert item.hash == chain_hash(stream="s☃", version=item.version, changeset_id="c-1", actor='a"b',
                                       message="m\né", recorded_at=format_time(moment), event=item.data,
                                       prev_hash=prev)
        assert json.loads(item.text) == item.data
        prev = item.hash
    assert [i.version for i in sealed] == [7, 8]
