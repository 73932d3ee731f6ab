"""Tamper evidence against someone who can write to the store, on SQLite and PostgreSQL.

Each attack of issue 12 is made with raw SQL: first with the guards on (the
triggers refuse it), then with them switched off the way a store's owner can
(SQLite: DROP TRIGGER; PostgreSQL: DISABLE TRIGGER or DROP TRIGGER, replica mode
no longer being enough), with every hash and the head recomputed so that the
chains agree again. Each is then found by ``verify --checkpoints`` or ``verify
--databases`` (a real target database, migrated to the stream, witnesses it),
naming the stream and the version. The CLI runs in-process (service.cli.main).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import sqlite3
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from events.catalog import ColumnAdded, IndexCreated, TableCreated
from events.envelope import GENESIS_HASH, Changeset, canonical_json, chain_hash, format_time
from events.model import Column, Index
from events.store import EventStore, open_store
from events.store.postgres import GUARDS
from projections.schema import Projector, load_snapshot_key, snapshot_key_file
from service.cli import main
from tests.servers import postgres_database_url
from tests.test_store import dump

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
TABLES = ("schemalog_events", "schemalog_streams", "schemalog_changesets", "schemalog_snapshots", "schemalog_meta")


@pytest.fixture(autouse=True)
def _keys_outside(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A snapshot key of the test's own, and no checkpoint key from the environment."""
    monkeypatch.setenv("SCHEMALOG_SNAPSHOT_KEY", "the tests' snapshot key")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("SCHEMALOG_CHECKPOINT_KEY", raising=False)
    monkeypatch.chdir(tmp_path)


# --------------------------------------------------------------------------- helpers


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def changesets() -> list[tuple[Changeset, datetime]]:
    """app v1-2, other v1, app v3-4: fixed ids and times, so that a second store can hold the same chains."""
    users = TableCreated(
        table="users",
        columns=(Column(name="id", type="bigint", nullable=False), Column(name="email", type="varchar(255)")),
        primary_key=("id",),
    )
    email = IndexCreated(table="users", index=Index(name="users_email", columns=("email",)))
    note = ColumnAdded(table="users", column=Column(name="note", type="text"))
    orders = TableCreated(table="orders", columns=(Column(name="id", type="integer", nullable=False),))
    other = TableCreated(table="t", columns=(Column(name="id", type="integer"),))

    def cs(stream: str, cid: str, *events: Any) -> Changeset:
        return Changeset(stream=stream, actor="alice", message=cid, changeset_id=cid, events=events)

    return [
        (cs("app", "c1", users, email), T0),
        (cs("other", "c2", other), T0 + timedelta(minutes=1)),
        (cs("app", "c3", note, orders), T0 + timedelta(minutes=2)),
    ]


async def _append(url: str, items: list[tuple[Changeset, datetime]]) -> None:
    store = await open_store(url)
    try:
        for changeset, moment in items:
            await store.append(changeset, now=moment)
    finally:
        await store.close()


class Raw:
    """The store's tables through a plain connection, as an attacker with the store's credentials has."""

    def __init__(self, url: str):
        self.url = url
        self.pg = url.startswith("postgresql")

    def run(self, statements: list[tuple[str, tuple[Any, ...]]], *, guards: str = "on") -> None:
        """Run statements in one transaction. ``guards``: on; drop (DROP TRIGGER); disable (PostgreSQL's
        DISABLE TRIGGER USER); replica (PostgreSQL's session_replication_role, the old way around)."""
        if self.pg:
            asyncio.run(self._run_pg(statements, guards))
            return
        conn = sqlite3.connect(self.url[len("sqlite:///") :], isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            if guards == "drop":
                for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
                    conn.execute(f"DROP TRIGGER {name}")
            for sql, params in statements:
                conn.execute(sql.replace("{json}", ""), params)
            conn.execute("COMMIT")
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            conn.close()

    async def _run_pg(self, statements: list[tuple[str, tuple[Any, ...]]], guards: str) -> None:
        conn = await asyncpg.connect(self.url)
        try:
            async with conn.transaction():
                if guards == "replica":
                    await conn.execute("SET LOCAL session_replication_role = replica")
                elif guards == "disable":
                    for table in TABLES:
                        await conn.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
                elif guards == "drop":
                    for table, trigger in GUARDS:
                        await conn.execute(f"DROP TRIGGER {trigger} ON {table}")
                for sql, params in statements:
                    await conn.execute(_numbered(sql.replace("{json}", "::jsonb")), *params)
        finally:
            await conn.close()

    def rows(self, stream: str) -> list[dict[str, Any]]:
        sql = (
            "SELECT version, changeset_id, actor, message, recorded_at, data, prev_hash, hash"
            " FROM schemalog_events WHERE stream = ? ORDER BY version"
        )
        if self.pg:

            async def fetch() -> list[dict[str, Any]]:
                conn = await asyncpg.connect(self.url)
                try:
                    rows = await conn.fetch(_numbered(sql.replace("data,", "data::text AS data,")), stream)
                finally:
                    await conn.close()
                return [dict(r) | {"recorded_at": format_time(r["recorded_at"])} for r in rows]

            found = asyncio.run(fetch())
        else:
            conn = sqlite3.connect(self.url[len("sqlite:///") :])
            conn.row_factory = sqlite3.Row
            try:
                found = [dict(r) for r in conn.execute(sql, (stream,)).fetchall()]
            finally:
                conn.close()
        return [r | {"data": json.loads(r["data"])} for r in found]


def _numbered(sql: str) -> str:
    """``?`` placeholders as PostgreSQL's ``$1, $2, ...``."""
    count = iter(range(1, 1000))
    return re.sub(r"\?", lambda _: f"${next(count)}", sql)


def rehash_from(raw: Raw, stream: str, rows: list[dict[str, Any]]) -> list[tuple[str, tuple[Any, ...]]]:
    """UPDATEs that rewrite ``rows`` (a stream's rows from some version on, already edited) with every hash
    recomputed from the row before them, and the stream's head moved onto the new last hash."""
    first = rows[0]["version"]
    before = [r for r in raw.rows(stream) if r["version"] < first]
    prev = before[-1]["hash"] if before else GENESIS_HASH
    statements: list[tuple[str, tuple[Any, ...]]] = []
    for row in rows:
        digest = chain_hash(
            stream=stream,
            version=row["version"],
            changeset_id=row["changeset_id"],
            actor=row["actor"],
            message=row["message"],
            recorded_at=row["recorded_at"],
            event=row["data"],
            prev_hash=prev,
        )
        statements.append(
            (
                "UPDATE schemalog_events SET message = ?, data = ?{json}, prev_hash = ?, hash = ?"
                " WHERE stream = ? AND version = ?",
                (row["message"], canonical_json(row["data"]), prev, digest, stream, row["version"]),
            )
        )
        prev = digest
    statements.append(("UPDATE schemalog_streams SET hash = ? WHERE stream = ?", (prev, stream)))
    return statements


def rewrite_event(raw: Raw) -> list[tuple[str, tuple[Any, ...]]]:
    """app v3 (users.note text) becomes users.note bigint; v3 and v4 rehashed, the head moved onto them."""
    rows = [r for r in raw.rows("app") if r["version"] >= 3]
    rows[0]["data"]["column"]["type"] = "bigint"
    return rehash_from(raw, "app", rows)


def delete_tail(raw: Raw) -> list[tuple[str, tuple[Any, ...]]]:
    """app v3 and v4 gone, the head set back to v2 (its version and hash)."""
    v2 = raw.rows("app")[1]
    return [
        ("DELETE FROM schemalog_events WHERE stream = ? AND version > ?", ("app", 2)),
        ("DELETE FROM schemalog_changesets WHERE changeset_id = ?", ("c3",)),
        ("UPDATE schemalog_streams SET version = ?, hash = ? WHERE stream = ?", (2, v2["hash"], "app")),
    ]


def delete_stream(raw: Raw) -> list[tuple[str, tuple[Any, ...]]]:
    return [
        (f"DELETE FROM {table} WHERE stream = ?", ("app",))
        for table in ("schemalog_events", "schemalog_streams", "schemalog_changesets", "schemalog_snapshots")
    ]


def truncate(raw: Raw) -> list[tuple[str, tuple[Any, ...]]]:
    if raw.pg:
        return [("TRUNCATE schemalog_events, schemalog_streams, schemalog_changesets, schemalog_snapshots", ())]
    # SQLite has no TRUNCATE: its DELETE without WHERE is the same
    return [(f"DELETE FROM {table}", ()) for table in TABLES[:4]]


class Witnessed:
    """A store with a history, a target database migrated to it (its marker the witness), and two signed
    checkpoints: after app v2 and other v1, and after app v4."""

    def __init__(self, store_url: str, target_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
        self.store_url = store_url
        self.capsys = capsys
        self.config = tmp_path / "schemalog.toml"
        self.config.write_text(f'[databases.main]\nurl = "{target_url}"\nstream = "app"\n')
        self.key = str(tmp_path / "ck")
        self.checkpoints = str(tmp_path / "checkpoints.jsonl")
        items = changesets()
        assert self.cli("init")[0] == 0
        asyncio.run(_append(store_url, items[:2]))
        assert self.cli("keygen", "--out", self.key)[0] == 0
        assert self.cli("checkpoint", "--key", f"{self.key}.key", "--out", self.checkpoints)[0] == 0
        asyncio.run(_append(store_url, items[2:]))
        code, out, err = self.cli("migrate", "--database", "main")
        assert code == 0 and "applied app 0 -> 4" in out, err
        assert self.cli("checkpoint", "--key", f"{self.key}.key", "--out", self.checkpoints)[0] == 0

    def cli(self, *args: str) -> tuple[int, str, str]:
        return cli(self.capsys, "--store", self.store_url, "--config", str(self.config), *args)

    def verify(self, *args: str) -> tuple[int, str, str]:
        return self.cli("verify", *args)

    def verify_checkpoints(self) -> tuple[int, str, str]:
        return self.verify("--checkpoints", self.checkpoints, "--key", f"{self.key}.pub")


@pytest.fixture
def witnessed(store_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Iterator[Witnessed]:
    """The store's own kind of database as the target: SQLite for SQLite, PostgreSQL for PostgreSQL."""
    if store_url.startswith("sqlite"):
        yield Witnessed(store_url, f"sqlite:///{tmp_path / 'target.db'}", tmp_path, capsys)
    else:
        with postgres_database_url() as target:
            yield Witnessed(store_url, target, tmp_path, capsys)


# --------------------------------------------------------------------------- the guards


def _refused(raw: Raw, statements: list[tuple[str, tuple[Any, ...]]], guards: str = "on") -> None:
    with pytest.raises((sqlite3.DatabaseError, asyncpg.PostgresError)) as caught:
        raw.run(statements, guards=guards)
    assert re.search(r"refused|never", str(caught.value)), caught.value


def test_the_guards_refuse_what_would_rewrite_the_store(store_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(capsys, "--store", store_url, "init")[0] == 0
    asyncio.run(_append(store_url, changesets()))
    asyncio.run(_snapshots(store_url))
    raw = Raw(store_url)
    v2 = raw.rows("app")[1]
    before = dump(store_url)
    attempts: list[list[tuple[str, tuple[Any, ...]]]] = [
        [("UPDATE schemalog_events SET message = 'x' WHERE stream = 'app' AND version = 3", ())],
        [("DELETE FROM schemalog_events WHERE stream = 'app' AND version = 4", ())],
        # a head moved back, or onto a hash no event has, or deleted
        [("UPDATE schemalog_streams SET version = ?, hash = ? WHERE stream = 'app'", (2, v2["hash"]))],
        [("UPDATE schemalog_streams SET hash = ? WHERE stream = 'app'", ("f" * 64,))],
        [("DELETE FROM schemalog_streams WHERE stream = 'app'", ())],
        [("INSERT INTO schemalog_streams (stream, version, hash) VALUES ('ghost', 3, ?)", ("f" * 64,))],
        [("UPDATE schemalog_changesets SET last_version = 9", ())],
        [("DELETE FROM schemalog_changesets", ())],
        [("UPDATE schemalog_snapshots SET body = 'forged'", ())],
        [("UPDATE schemalog_meta SET store_id = 'another'", ())],
        [("DELETE FROM schemalog_meta", ())],
    ]
    if raw.pg:
        attempts += [[(f"TRUNCATE {table} CASCADE", ())] for table in TABLES]
    else:
        # INSERT OR REPLACE deletes the row it replaces without firing a delete trigger
        attempts += [
            [("INSERT OR REPLACE INTO schemalog_events SELECT * FROM schemalog_events WHERE version = 1", ())],
            [
                (
                    "INSERT OR REPLACE INTO schemalog_events (stream, version, changeset_id, actor, message,"
                    " recorded_at, type, data, prev_hash, hash) SELECT stream, version, changeset_id, actor,"
                    " 'forged', recorded_at, type, data, prev_hash, hash FROM schemalog_events"
                    " WHERE stream = 'app' AND version = 3",
                    (),
                )
            ],
            [("REPLACE INTO schemalog_streams (stream, version, hash) VALUES ('app', 2, ?)", (v2["hash"],))],
            [("INSERT OR REPLACE INTO schemalog_changesets VALUES ('c3', 'app', 3, 9)", ())],
            [
                (
                    "INSERT OR REPLACE INTO schemalog_snapshots SELECT stream, version, event_hash, digest, 'x'"
                    " FROM schemalog_snapshots",
                    (),
                )
            ],
            [("INSERT OR REPLACE INTO schemalog_meta VALUES (1, 'another', 2, '2026')", ())],
        ]
    for statements in attempts:
        _refused(raw, statements)
        if raw.pg:  # replica mode no longer switches the guards off
            _refused(raw, statements, guards="replica")
    assert dump(store_url) == before
    # what is allowed still is: snapshots deleted (they are derived), an append, the layout number raised
    raw.run([("DELETE FROM schemalog_snapshots WHERE stream = 'app'", ())])
    later = Changeset(
        stream="app", actor="a", events=(ColumnAdded(table="orders", column=Column(name="x", type="text")),)
    )
    asyncio.run(_append(store_url, [(later, T0 + timedelta(hours=1))]))
    code, out, _ = cli(capsys, "--store", store_url, "verify")
    assert code == 0 and "6 events" in out
    raw.run([("UPDATE schemalog_meta SET store_schema = 7", ())])  # (a layout this schemalog then refuses)
    code, _, err = cli(capsys, "--store", store_url, "verify")
    assert code == 2 and "the store's schema is version 7" in err


async def _snapshots(url: str) -> None:
    store = await open_store(url)
    try:
        await Projector(store, snapshot_every=2).rebuild_snapshots("app")
    finally:
        await store.close()


# --------------------------------------------------------------------------- the attacks


ATTACKS = {
    # attack: (the statements, how PostgreSQL's guards are switched off, what verify --checkpoints names)
    "rewrite": (rewrite_event, "disable", "stream 'app' version 4: the log's event differs"),
    "delete_tail": (delete_tail, "drop", "stream 'app' version 4: checkpointed, but the log has no version 4"),
    "delete_stream": (delete_stream, "disable", "stream 'app' version 2: the stream is gone"),
    "truncate": (truncate, "drop", "stream 'app' version 2: the stream is gone"),
}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_a_rewritten_store_is_found(witnessed: Witnessed, attack: str) -> None:
    make, pg_off, named = ATTACKS[attack]
    raw = Raw(witnessed.store_url)
    assert witnessed.verify_checkpoints()[0] == 0
    before = dump(witnessed.store_url)
    _refused(raw, make(raw))  # the guards on: refused, nothing changed
    if raw.pg:
        _refused(raw, make(raw), guards="replica")
    assert dump(witnessed.store_url) == before
    raw.run(make(raw), guards=pg_off if raw.pg else "drop")  # the guards off: done

    code, out, err = witnessed.verify()
    if attack != "truncate":
        # the chains agree again (hashes need no key): walking them alone finds nothing
        assert (code, out.split(":")[0]) == (0, "ok"), err
    code, out, err = witnessed.verify_checkpoints()
    assert code == 1 and named in err, err
    if attack == "rewrite":
        assert "the last checkpointed version that agrees is 2" in err
    code, out, err = witnessed.verify("--databases")
    assert code == 1, err
    assert "TAMPERED: database 'main' stream 'app' version 4:" in err, err
    assert ("history rewritten" if attack == "rewrite" else "events dropped") in err
    assert "Traceback" not in err


def test_a_swapped_in_store_is_found(store_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Another valid store with the very same chains (same events, ids and times): only its identity differs."""
    assert cli(capsys, "--store", store_url, "init")[0] == 0
    asyncio.run(_append(store_url, changesets()))
    assert cli(capsys, "keygen", "--out", str(tmp_path / "ck"))[0] == 0
    assert cli(capsys, "--store", store_url, "checkpoint", "--key", str(tmp_path / "ck.key"), "--out", "cp")[0] == 0
    with _another_store(store_url, tmp_path) as other:
        assert cli(capsys, "--store", other, "init")[0] == 0
        asyncio.run(_append(other, changesets()))
        assert Raw(other).rows("app") == Raw(store_url).rows("app")
        swapped = _swap(store_url, other)
        assert cli(capsys, "--store", swapped, "verify")[0] == 0
        code, _, err = cli(
            capsys, "--store", swapped, "verify", "--checkpoints", "cp", "--key", str(tmp_path / "ck.pub")
        )
        assert code == 1 and "checkpoint line 1: taken of store" in err and "another store swapped in" in err, err


@contextmanager
def _another_store(store_url: str, tmp_path: Path) -> Iterator[str]:
    if store_url.startswith("postgresql"):
        with postgres_database_url() as url:
            yield url
    else:
        yield f"sqlite:///{tmp_path / 'other.db'}"


def _swap(store_url: str, other: str) -> str:
    """The other store put where the first one was: its file copied over (SQLite), or its URL (PostgreSQL)."""
    if other.startswith("postgresql"):
        return other
    path = store_url[len("sqlite:///") :]
    for suffix in ("-wal", "-shm"):
        Path(path + suffix).unlink(missing_ok=True)
    shutil.copyfile(other[len("sqlite:///") :], path)
    return store_url


# --------------------------------------------------------------------------- snapshots


def test_a_forged_snapshot_is_ignored_replaced_and_found(witnessed: Witnessed) -> None:
    """A snapshot body rewritten with a digest anyone could compute (the old plain SHA-256): ``show`` prints
    the log's table, migrate finds the database up to date, ``verify --deep`` names the snapshot."""
    import hashlib

    asyncio.run(_snapshots(witnessed.store_url))
    raw = Raw(witnessed.store_url)
    event_hash = raw.rows("app")[3]["hash"]
    store_rows = _snapshot_rows(witnessed.store_url)
    body = json.loads(store_rows[4])
    body["tables"]["users"]["columns"].append({"name": "forged", "type": "text", "nullable": True})
    forged = canonical_json(body)
    digest = hashlib.sha256(f"app\x004\x00{event_hash}\x00{forged}".encode()).hexdigest()
    # snapshots may be deleted (they are derived) and inserted: no guard needs switching off
    raw.run(
        [
            ("DELETE FROM schemalog_snapshots WHERE stream = 'app' AND version = 4", ()),
            (
                "INSERT INTO schemalog_snapshots (stream, version, event_hash, digest, body) VALUES (?, ?, ?, ?, ?)",
                ("app", 4, event_hash, digest, forged),
            ),
        ]
    )
    code, out, err = witnessed.verify("--deep")
    assert code == 1 and "TAMPERED: stream 'app' version 4: snapshot differs from the replay" in err, err
    code, out, _ = witnessed.cli("show", "--stream", "app")
    assert code == 0 and "users" in out and "forged" not in out
    code, out, err = witnessed.cli("migrate", "--database", "main")
    assert code == 0 and "up to date" in out, err
    # the ignored snapshot was taken again from the log: nothing differs any more
    assert _snapshot_rows(witnessed.store_url)[4] != forged
    code, out, err = witnessed.verify("--deep")
    assert code == 0 and "2 snapshots match the replay" in out, err


def _snapshot_rows(url: str) -> dict[int, str]:
    async def go() -> dict[int, str]:
        store = await open_store(url)
        try:
            out = {}
            for version in await store.snapshot_versions("app"):
                found = await store.snapshot_below("app", version)
                assert found is not None
                out[version] = found[3]
            return out
        finally:
            await store.close()

    return asyncio.run(go())


def test_the_snapshot_key_file_is_made_private_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("SCHEMALOG_SNAPSHOT_KEY")
    path = snapshot_key_file()
    assert path == tmp_path / "config" / "schemalog" / "snapshot.key" and not path.exists()
    key = load_snapshot_key()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and len(key) == 64
    assert load_snapshot_key() == key
    monkeypatch.setenv("SCHEMALOG_SNAPSHOT_KEY", "another")
    assert load_snapshot_key() == b"another"


# --------------------------------------------------------------------------- upgrades


OLD_SQLITE = """
CREATE TABLE schemalog_events (position INTEGER PRIMARY KEY AUTOINCREMENT, stream TEXT NOT NULL,
    version INTEGER NOT NULL, changeset_id TEXT NOT NULL, actor TEXT NOT NULL, message TEXT NOT NULL,
    recorded_at TEXT NOT NULL, type TEXT NOT NULL, data TEXT NOT NULL, prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL, UNIQUE (stream, version));
CREATE INDEX schemalog_events_stream_time ON schemalog_events (stream, recorded_at);
CREATE TABLE schemalog_streams (stream TEXT PRIMARY KEY, version INTEGER NOT NULL, hash TEXT NOT NULL,
    recorded_at TEXT);
CREATE TABLE schemalog_changesets (changeset_id TEXT PRIMARY KEY, stream TEXT NOT NULL,
    first_version INTEGER NOT NULL, last_version INTEGER NOT NULL);
CREATE TABLE schemalog_snapshots (stream TEXT NOT NULL, version INTEGER NOT NULL, event_hash TEXT NOT NULL,
    digest TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (stream, version));
CREATE TRIGGER schemalog_events_no_update BEFORE UPDATE ON schemalog_events
BEGIN SELECT RAISE(ABORT, 'schemalog_events is append-only: UPDATE refused'); END;
CREATE TRIGGER schemalog_events_no_delete BEFORE DELETE ON schemalog_events
BEGIN SELECT RAISE(ABORT, 'schemalog_events is append-only: DELETE refused'); END;
"""
"""The layout the first release's init made (its SCHEMA_SQL), as a store made then has it."""

OLD_POSTGRES = """
CREATE TABLE schemalog_events (position bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    stream text NOT NULL, version bigint NOT NULL, changeset_id text NOT NULL, actor text NOT NULL,
    message text NOT NULL, recorded_at timestamptz NOT NULL, type text NOT NULL, data jsonb NOT NULL,
    prev_hash text NOT NULL, hash text NOT NULL,
    CONSTRAINT schemalog_events_stream_version UNIQUE (stream, version));
CREATE INDEX schemalog_events_stream_time ON schemalog_events (stream, recorded_at);
CREATE TABLE schemalog_streams (stream text PRIMARY KEY, version bigint NOT NULL, hash text NOT NULL,
    recorded_at timestamptz);
CREATE TABLE schemalog_changesets (changeset_id text PRIMARY KEY, stream text NOT NULL,
    first_version bigint NOT NULL, last_version bigint NOT NULL);
CREATE TABLE schemalog_snapshots (stream text NOT NULL, version bigint NOT NULL, event_hash text NOT NULL,
    digest text NOT NULL, body text NOT NULL, PRIMARY KEY (stream, version));
CREATE OR REPLACE FUNCTION schemalog_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'schemalog_events is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE OR REPLACE TRIGGER schemalog_events_immutable BEFORE UPDATE OR DELETE ON schemalog_events
    FOR EACH ROW EXECUTE FUNCTION schemalog_refuse_change();
CREATE OR REPLACE TRIGGER schemalog_events_no_truncate BEFORE TRUNCATE ON schemalog_events
    FOR EACH STATEMENT EXECUTE FUNCTION schemalog_refuse_change();
"""


def test_init_upgrades_a_store_of_the_first_layout(store_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    raw = Raw(store_url)
    if raw.pg:

        async def make() -> None:
            conn = await asyncpg.connect(store_url)
            try:
                await conn.execute(OLD_POSTGRES)
            finally:
                await conn.close()

        asyncio.run(make())
    else:
        conn = sqlite3.connect(store_url[len("sqlite:///") :])
        conn.executescript(OLD_SQLITE)
        conn.close()
    asyncio.run(_append(store_url, changesets()))  # written before the upgrade
    for _ in range(2):  # idempotent
        assert cli(capsys, "--store", store_url, "init")[0] == 0
    store_ids = {_store_id(store_url) for _ in range(2)}
    assert len(store_ids) == 1
    code, out, _ = cli(capsys, "--store", store_url, "verify")
    assert code == 0 and "2 streams, 5 events" in out
    v2 = raw.rows("app")[1]
    _refused(raw, [("UPDATE schemalog_streams SET version = ?, hash = ? WHERE stream = 'app'", (2, v2["hash"]))])
    if raw.pg:
        _refused(raw, [("UPDATE schemalog_events SET message = 'x'", ())], guards="replica")
    else:
        replace = "INSERT OR REPLACE INTO schemalog_events SELECT * FROM schemalog_events WHERE version = 1"
        _refused(raw, [(replace, ())])
    new = Changeset(
        stream="new", actor="a", events=(TableCreated(table="n", columns=(Column(name="id", type="integer"),)),)
    )
    asyncio.run(_append(store_url, [(new, T0)]))
    assert cli(capsys, "--store", store_url, "verify")[0] == 0


def _store_id(url: str) -> str:
    async def go() -> str:
        store: EventStore = await open_store(url)
        try:
            return await store.store_id()
        finally:
            await store.close()

    return asyncio.run(go())


OLD_MARKER_COLUMNS = "stream, version, state_hash, applied_at, applied_by, target_version, plan_hash, steps_done"


def test_an_old_marker_table_is_upgraded(target_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A marker table without event_hash (as the first release made it): read as it is, then upgraded by
    the next migrate, which records the event hash; every dialect."""
    import sqlalchemy as sa

    from service.reconciler.marker import MARKER_TABLE

    store_url = f"sqlite:///{tmp_path / 'log.db'}"
    config = tmp_path / "schemalog.toml"
    config.write_text(f'[databases.main]\nurl = "{target_url}"\nstream = "app"\n')
    base = ["--store", store_url, "--config", str(config)]
    assert cli(capsys, *base, "init")[0] == 0
    asyncio.run(_append(store_url, changesets()[:1]))
    assert cli(capsys, *base, "migrate", "--database", "main")[0] == 0
    url = target_url.replace("postgresql://", "postgresql+psycopg://").replace("mysql://", "mysql+pymysql://")
    engine = sa.create_engine(url)
    with engine.begin() as conn:  # back to the first release's marker table
        rows = conn.execute(sa.text(f"SELECT {OLD_MARKER_COLUMNS} FROM {MARKER_TABLE}")).mappings().all()
        conn.execute(sa.text(f"DROP TABLE {MARKER_TABLE}"))
        conn.execute(
            sa.text(
                f"CREATE TABLE {MARKER_TABLE} (stream VARCHAR(200) NOT NULL PRIMARY KEY, version BIGINT NOT NULL,"
                " state_hash VARCHAR(64) NOT NULL, applied_at VARCHAR(40) NOT NULL, applied_by VARCHAR(200) NOT NULL,"
                " target_version BIGINT, plan_hash VARCHAR(64), steps_done INTEGER NOT NULL DEFAULT 0)"
            )
        )
        names = OLD_MARKER_COLUMNS.split(", ")
        conn.execute(
            sa.text(f"INSERT INTO {MARKER_TABLE} ({OLD_MARKER_COLUMNS}) VALUES ({', '.join(':' + n for n in names)})"),
            [dict(r) for r in rows],
        )
    code, out, err = cli(capsys, *base, "verify", "--databases")
    assert code == 0 and "note: database 'main' stream 'app' version 2: the marker predates event hashes" in err
    asyncio.run(_append(store_url, changesets()[1:]))
    code, out, err = cli(capsys, *base, "migrate", "--database", "main")
    assert code == 0 and "applied app 2 -> 4" in out, err
    with engine.connect() as conn:
        marker = conn.execute(sa.text(f"SELECT version, event_hash FROM {MARKER_TABLE}")).one()
    engine.dispose()
    assert tuple(marker) == (4, Raw(store_url).rows("app")[3]["hash"])
    code, out, err = cli(capsys, *base, "verify", "--databases")
    assert code == 0 and "1 markers in 1 databases witness the log" in out, err


# --------------------------------------------------------------------------- bad input


def test_checkpoint_input_errors(
    sqlite_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    base = ["--store", sqlite_url]
    assert cli(capsys, *base, "init")[0] == 0
    asyncio.run(_append(sqlite_url, changesets()))
    assert cli(capsys, "keygen", "--out", "ck")[0] == 0
    assert stat.S_IMODE(os.stat("ck.key").st_mode) == 0o600
    assert cli(capsys, "keygen", "--out", "other")[0] == 0
    Path("notakey").write_text("hello\n")
    Path("garbage").write_text("not json\n\n")
    Path("empty").write_text("\n")
    before = dump(sqlite_url)

    def bad(*args: str, words: str) -> None:
        code, out, err = cli(capsys, *base, *args)
        assert code == 2 and out == "" and words in err and len(err.strip().splitlines()) == 1, (code, out, err)
        assert not Path("cp-bad").exists()

    bad("checkpoint", "--out", "cp-bad", words="--key")  # no key
    bad("checkpoint", "--key", "ck.pub", "--out", "cp-bad", words="is a public key")
    bad("checkpoint", "--key", "notakey", "--out", "cp-bad", words="not an unencrypted PEM private key")
    bad("checkpoint", "--key", "missing.key", "--out", "cp-bad", words="cannot read the key missing.key")
    bad("keygen", "--out", "ck", words="already exists")
    # the tour's commands (README.md), then the same with the key from the environment
    assert cli(capsys, *base, "checkpoint", "--key", "ck.key", "--out", "cp")[0] == 0
    code, out, _ = cli(capsys, *base, "verify", "--checkpoints", "cp", "--key", "ck.pub")
    assert code == 0 and "1 checkpoints hold" in out
    monkeypatch.setenv("SCHEMALOG_CHECKPOINT_KEY", "ck.key")
    assert cli(capsys, *base, "checkpoint", "--out", "cp2")[0] == 0
    monkeypatch.setenv("SCHEMALOG_CHECKPOINT_KEY", "ck.pub")
    code, out, _ = cli(capsys, *base, "verify", "--checkpoints", "cp2")
    assert code == 0 and "1 checkpoints hold" in out
    monkeypatch.delenv("SCHEMALOG_CHECKPOINT_KEY")
    bad("verify", "--checkpoints", "missing", "--key", "ck.pub", words="cannot read the checkpoints missing")
    bad("verify", "--checkpoints", "garbage", "--key", "ck.pub", words="holds no schemalog checkpoints")
    bad("verify", "--checkpoints", "empty", "--key", "ck.pub", words="holds no checkpoints")
    bad("verify", "--checkpoints", "cp", "--key", "notakey", words="not a PEM public or private key")
    bad("verify", "--checkpoints", "cp", words="--key")
    bad("verify", "--key", "ck.pub", words="--key goes with --checkpoints")
    bad("verify", "--databases", words="names no databases")
    assert dump(sqlite_url) == before

    # a checkpoint signed by another key, or changed after it was signed: found (exit 1)
    code, _, err = cli(capsys, *base, "verify", "--checkpoints", "cp", "--key", "other.pub")
    assert code == 1 and "checkpoint line 1: signed by key" in err
    line = json.loads(Path("cp").read_text())
    line["streams"]["app"]["version"] = 3
    Path("altered").write_text(Path("cp").read_text() + json.dumps(line) + "\n")
    code, _, err = cli(capsys, *base, "verify", "--checkpoints", "altered", "--key", "ck.key")
    assert code == 1 and "checkpoint line 2: the signature does not verify" in err, err
    assert "checkpoint line 1" not in err


def test_an_unreachable_database_is_reported(
    sqlite_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "schemalog.toml"
    config.write_text(
        '[databases.gone]\nurl = "postgresql://postgres@127.0.0.1:1/none"\nstream = "app"\n'
        f'[databases.nofile]\nurl = "sqlite:///{tmp_path / "nope.db"}"\nstream = "app"\n'
    )
    base = ["--store", sqlite_url, "--config", str(config)]
    assert cli(capsys, *base, "init")[0] == 0
    code, out, err = cli(capsys, *base, "verify", "--databases")
    assert code == 1 and out.startswith("FAILED: 0 problem(s), 2 unreachable"), (out, err)
    assert "UNREACHABLE: database 'gone': unreachable: cannot connect" in err
    assert "UNREACHABLE: database 'nofile': unreachable:" in err and "no such file" in err
    assert "Traceback" not in err and not (tmp_path / "nope.db").exists()
