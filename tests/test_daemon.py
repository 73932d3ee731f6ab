"""``schemalog daemon`` against the real servers: replicas killed and restarted, a listener cut by the
server, a database gone and back, drift by hand, a failing canary, SIGTERM during a run.

Each daemon is a real process (tests/daemon_harness.py), waited on through what it logs or what the
databases hold, with a bound.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import signal
import sqlite3
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from events.catalog import parse_event
from events.envelope import Changeset
from events.fleet import FLEET_STREAM, DatabaseRegistered
from events.log import EventLog
from events.store import open_store
from service.app import fleet
from tests.daemon_harness import DaemonProcess, run_intervals, wait_until
from tests.servers import mariadb_database_url, postgres_database_url

pytestmark = [pytest.mark.postgres]


def _table(i: int) -> dict[str, Any]:
    return {
        "type": "table_created",
        "table": f"t{i}",
        "columns": [
            {"name": "id", "type": "integer", "nullable": False},
            {"name": "label", "type": "varchar(40)"},
        ],
        "primary_key": ["id"],
    }


def _changesets(count: int) -> list[list[dict[str, Any]]]:
    """``count`` changesets valid on every dialect: tables, columns and indexes."""
    out: list[list[dict[str, Any]]] = []
    tables = 0
    for n in range(count):
        if n % 3 == 0:
            out.append([_table(tables)])
            tables += 1
        elif n % 3 == 1:
            out.append(
                [{"type": "column_added", "table": f"t{tables - 1}", "column": {"name": f"c{n}", "type": "bigint"}}]
            )
        else:
            out.append(
                [
                    {
                        "type": "index_created",
                        "table": f"t{tables - 1}",
                        "index": {"name": f"t{tables - 1}_label_{n}", "columns": ["label"]},
                    }
                ]
            )
    return out


async def _append(store_url: str, events: list[dict[str, Any]], stream: str = "app", actor: str = "dev") -> int:
    store = await open_store(store_url)
    try:
        result = await EventLog(store).append(
            Changeset(stream=stream, actor=actor, events=tuple(parse_event(e) for e in events))
        )
        return result.last_version
    finally:
        await store.close()


async def _register(store_url: str, *events: DatabaseRegistered) -> None:
    store = await open_store(store_url)
    try:
        for event in events:
            await fleet.register(store, "ops", event)
    finally:
        await store.close()


async def _status(store_url: str) -> dict[str, Any]:
    store = await open_store(store_url)
    try:
        return {row.name: row for row in await fleet.status(store)}
    finally:
        await store.close()


async def _outcomes(store_url: str, database: str) -> list[Any]:
    store = await open_store(store_url)
    try:
        return list(await store.read("db:" + database))
    finally:
        await store.close()


async def _fleet_events(store_url: str) -> list[Any]:
    store = await open_store(store_url)
    try:
        return list(await store.read(FLEET_STREAM))
    finally:
        await store.close()


async def _marker_version(url: str, stream: str = "app") -> int | None:
    from service.reconciler.targets import open_target

    target = await open_target(url)
    try:
        marker = await target.read_marker(stream)
        return None if marker is None else marker.version
    finally:
        await target.close()


def _sync(coro: Any) -> Any:
    return asyncio.run(coro)


@pytest.fixture
def pg_store() -> Iterator[str]:
    with postgres_database_url() as url:
        _sync(_init(url))
        yield url


async def _init(url: str) -> None:
    store = await open_store(url)
    try:
        await store.init()
    finally:
        await store.close()


def _story(store_url: str, daemons: list[DaemonProcess] | None = None) -> str:
    """How the fleet stands, and what each daemon said last (a failed wait's message)."""
    lines = [
        f"  {r.name}: {r.status} at {r.marker} -> {r.target_version} on {r.owner}: {r.detail}"
        for r in _sync(_status(store_url)).values()
        if r.status != "Ready"
    ]
    for d in daemons or []:
        alive = "alive" if d.proc.poll() is None else f"exited {d.proc.returncode}"
        lines.append(f"  daemon {d.replica} ({alive}), last lines:")
        lines.extend(f"    {line}" for line in d.lines[-8:])
    return "\n".join(lines)


def _all_ready(store_url: str, names: list[str], version: int) -> bool:
    rows = _sync(_status(store_url))
    return all(rows[n].status == "Ready" and (rows[n].marker or 0) == version for n in names)


def _check_exactly_once(store_url: str, name: str, head: int) -> None:
    """The outcomes' applied ranges chain from 0 to head with no overlap and no gap."""
    at = 0
    epochs: dict[int, str] = {}
    outcomes = _sync(_outcomes(store_url, name))
    story = "\n".join(
        f"  v{r.version} {r.event.type} {r.event.from_version}->{r.event.to_version} by {r.event.replica}"
        f" epoch {r.event.lease_epoch}: {r.event.detail}"
        for r in outcomes
    )
    for recorded in outcomes:
        event = recorded.event
        if event.type not in ("migration_applied", "migration_faked"):
            continue
        assert event.from_version == at, f"{name}: an outcome from v{event.from_version} after v{at}:\n{story}"
        assert event.to_version > event.from_version or event.to_version == at
        at = event.to_version
        if event.lease_epoch is not None:
            holder = epochs.setdefault(event.lease_epoch, event.replica)
            assert holder == event.replica, f"{name}: epoch {event.lease_epoch} held by {holder} and {event.replica}"
    assert at == head, f"{name}: the outcomes reach v{at}, the head is v{head}"


def _first_to_report(daemons: list[DaemonProcess], marks: list[int], point: dict[str, Any], timeout: float) -> int:
    """The index of the first daemon whose log, from its mark on, has a line with ``point``'s fields."""

    def seen() -> int | None:
        for index, d in enumerate(daemons):
            with d._cond:
                if any(all(line.get(k) == v for k, v in point.items()) for line in d.lines[marks[index] :]):
                    return index + 1
        return None

    found = wait_until(seen, timeout, f"a replica reporting {point}", interval=0.05)
    return int(found) - 1


def _check_no_overlap(daemons: list[DaemonProcess]) -> None:
    for database, runs in run_intervals(daemons).items():
        runs.sort()
        for (s1, e1, r1), (s2, _e2, r2) in itertools.pairwise(runs):
            assert r1 == r2 or s2 >= e1, f"{database}: {r1} ran {s1:.3f}-{e1:.3f} and {r2} from {s2:.3f}"


# --------------------------------------------------------------------------- the fleet under kills


def test_three_replicas_thirty_databases_with_kills(pg_store: str, tmp_path: Path) -> None:
    rng = random.Random(20261203)
    with ExitStack() as stack:
        urls: dict[str, str] = {}
        for i in range(10):
            urls[f"pg{i}"] = stack.enter_context(postgres_database_url())
            urls[f"my{i}"] = stack.enter_context(mariadb_database_url())
            urls[f"lite{i}"] = f"sqlite:///{tmp_path / f'lite{i}.db'}"
        _sync(_register(pg_store, *(DatabaseRegistered(name=n, url=u, stream="app") for n, u in urls.items())))
        daemons = [DaemonProcess(pg_store, f"r{i}", extra=("--concurrency", "4")) for i in range(3)]
        everyone = list(daemons)
        try:
            for d in daemons:
                d.event("daemon_started", 120)
            head = 0
            kills = 0
            for n, events in enumerate(_changesets(20)):
                marks = [d.mark() for d in daemons]
                head = _sync(_append(pg_store, events))
                if n % 3 == 1:
                    # kill a replica at a point it reports for this change: whichever reports it first
                    if rng.random() < 0.5:  # while it connects or plans
                        point: dict[str, Any] = {"event": "run_started"}
                    else:  # committed on a database, its outcome not yet recorded
                        point = {"event": "run_phase", "phase": "applied"}
                    index = _first_to_report(daemons, marks, point, 120)
                    victim = daemons[index]
                    victim.kill()
                    kills += 1
                    daemons[index] = DaemonProcess(pg_store, f"r{index}-{kills}", extra=("--concurrency", "4"))
                    everyone.append(daemons[index])
            names = sorted(urls)
            wait_until(
                lambda: _all_ready(pg_store, names, head),
                300,
                f"all 30 databases at v{head}",
                describe=lambda: _story(pg_store, [d for d in daemons]),
            )
            for name, url in urls.items():
                assert _sync(_marker_version(url)) == head, name
                _check_exactly_once(pg_store, name, head)
            _check_no_overlap(everyone)
            assert kills >= 6

            def spread() -> bool:  # the work spreads over the live replicas: each holds its share
                owners = [row.owner for row in _sync(_status(pg_store)).values()]
                return all(owners.count(d.replica) >= 8 for d in daemons)

            wait_until(spread, 60, "each live replica holding about a third of the 30 databases")
        finally:
            for d in everyone:
                d.stop()


# --------------------------------------------------------------------------- wake-ups


def test_listener_terminated_by_the_server(pg_store: str, tmp_path: Path) -> None:
    target = f"sqlite:///{tmp_path / 'a.db'}"
    _sync(_register(pg_store, DatabaseRegistered(name="a", url=target, stream="app")))
    daemon = DaemonProcess(pg_store, "solo", poll=2.0)
    try:
        daemon.event("listening", 60)
        mark = daemon.mark()

        async def cut() -> int:
            conn = await asyncpg.connect(pg_store)
            try:
                return int(
                    await conn.fetchval(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                        " WHERE datname = current_database() AND query LIKE 'LISTEN%'"
                    )
                )
            finally:
                await conn.close()

        assert _sync(cut()) == 1
        daemon.event("listen_lost", 30, since=mark)
        daemon.event("listening", 30, since=mark)
        head = _sync(_append(pg_store, [_table(0)]))
        wait_until(
            lambda: _all_ready(pg_store, ["a"], head),
            120,
            "the database at head after the reconnect",
            describe=lambda: _story(pg_store, [daemon]),
        )
    finally:
        daemon.stop()


def test_converges_by_polling_with_no_notification(pg_store: str, tmp_path: Path) -> None:
    """An append whose NOTIFY never arrives (sent while no one listened) is found by the next poll."""
    target = f"sqlite:///{tmp_path / 'a.db'}"
    _sync(_register(pg_store, DatabaseRegistered(name="a", url=target, stream="app")))
    daemon = DaemonProcess(pg_store, "solo", poll=1.0)
    try:
        daemon.event("run_finished", 60)
        mark = daemon.mark()

        async def append_silently() -> None:
            # the store's append with NOTIFY sent to a channel no one listens on
            conn = await asyncpg.connect(pg_store)
            try:
                await conn.execute("SET application_name = 'test'")
            finally:
                await conn.close()
            await _append(pg_store, [_table(0)])

        _sync(append_silently())
        daemon.event("run_started", 30, since=mark)
        wait_until(lambda: _all_ready(pg_store, ["a"], 1), 30, "the database at head")
    finally:
        daemon.stop()


# --------------------------------------------------------------------------- failures


def test_database_gone_then_back_goes_stalled_then_ready(pg_store: str) -> None:
    with postgres_database_url() as target:
        name = target.rsplit("/", 1)[1]
        _sync(_register(pg_store, DatabaseRegistered(name="gone", url=target, stream="app")))
        _sync(_append(pg_store, [_table(0)]))
        daemon = DaemonProcess(pg_store, "solo")
        try:
            wait_until(lambda: _all_ready(pg_store, ["gone"], 1), 60, "the database at v1")

            async def admin(sql: str) -> None:
                conn = await asyncpg.connect(pg_store)
                try:
                    await conn.execute(sql)
                finally:
                    await conn.close()

            _sync(admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
            _sync(admin(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"))
            head = _sync(_append(pg_store, [_table(1)]))
            row = wait_until(
                lambda: (r := _sync(_status(pg_store))["gone"]).status == "Stalled" and r, 60, "status Stalled"
            )
            assert "does not allow connections" in (row.detail or "") or "unreachable" in (row.detail or "")
            _sync(admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
            wait_until(lambda: _all_ready(pg_store, ["gone"], head), 60, "Ready again, with no restart")
            assert daemon.proc.poll() is None
        finally:
            daemon.stop()


def test_drift_by_hand_found_once_and_nothing_applied(pg_store: str, tmp_path: Path) -> None:
    path = tmp_path / "d.db"
    _sync(_register(pg_store, DatabaseRegistered(name="d", url=f"sqlite:///{path}", stream="app", drift_interval=1)))
    _sync(_append(pg_store, [_table(0)]))
    daemon = DaemonProcess(pg_store, "solo")
    try:
        wait_until(lambda: _all_ready(pg_store, ["d"], 1), 60, "the database at v1")
        with sqlite3.connect(path) as conn:
            conn.execute("ALTER TABLE t0 ADD COLUMN by_hand integer")
        mark = daemon.mark()
        wait_until(lambda: _sync(_status(pg_store))["d"].status == "Drifted", 30, "Drifted within a drift interval")
        # three more drift checks: the same drift is not recorded again
        for _ in range(3):
            seen = daemon.event("run_finished", 30, since=mark, database="d")
            mark = daemon.lines.index(seen) + 1
        drift = [r for r in _sync(_outcomes(pg_store, "d")) if r.event.type == "drift_found"]
        assert len(drift) == 1, drift
        assert any("by_hand" in line for line in drift[0].event.drift)
        head = _sync(_append(pg_store, [_table(1)]))
        seen = daemon.event("run_finished", 30, since=mark, database="d")
        assert _sync(_marker_version(f"sqlite:///{path}")) == 1 < head
        with sqlite3.connect(path) as conn:
            assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 't1'").fetchone() == (0,)
    finally:
        daemon.stop()


def test_failing_canary_halts_the_later_waves(pg_store: str, tmp_path: Path) -> None:
    canary = tmp_path / "canary.db"
    later = [tmp_path / "w1a.db", tmp_path / "w1b.db"]
    _sync(
        _register(
            pg_store,
            DatabaseRegistered(name="canary", url=f"sqlite:///{canary}", stream="app", wave=0),
            *(DatabaseRegistered(name=p.stem, url=f"sqlite:///{p}", stream="app", wave=1) for p in later),
        )
    )
    _sync(_append(pg_store, [_table(0)]))
    daemon = DaemonProcess(pg_store, "solo")
    try:
        wait_until(lambda: _all_ready(pg_store, ["canary", "w1a", "w1b"], 1), 60, "every database at v1")
        with sqlite3.connect(canary) as conn:  # data the next change cannot hold: two rows with one label
            conn.execute("INSERT INTO t0 (id, label) VALUES (1, 'same'), (2, 'same')")
        unique = {
            "type": "index_created",
            "table": "t0",
            "index": {"name": "t0_label", "columns": ["label"], "unique": True},
        }
        head = _sync(_append(pg_store, [unique]))
        halts = wait_until(
            lambda: [r for r in _sync(_fleet_events(pg_store)) if r.event.type == "rollout_halted"], 60, "a halt"
        )
        assert halts[0].event.database == "canary" and halts[0].event.to_version == head
        rows = _sync(_status(pg_store))
        assert rows["canary"].status == "Stalled"
        assert rows["w1a"].status == rows["w1b"].status == "Halted"
        for p in later:  # not touched
            assert _sync(_marker_version(f"sqlite:///{p}")) == 1
            with sqlite3.connect(p) as conn:
                assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 't0_label'").fetchone() == (0,)
        # the failure fixed: the canary applies on its next attempt, then the later waves follow
        with sqlite3.connect(canary) as conn:
            conn.execute("DELETE FROM t0 WHERE id = 2")
        wait_until(lambda: _all_ready(pg_store, ["canary", "w1a", "w1b"], head), 60, "every database at head")
    finally:
        daemon.stop()


def test_rollout_resume_lets_later_waves_go(pg_store: str, tmp_path: Path) -> None:
    import subprocess
    import sys

    canary = tmp_path / "canary.db"
    other = tmp_path / "w1.db"
    _sync(
        _register(
            pg_store,
            DatabaseRegistered(name="canary", url=f"sqlite:///{canary}", stream="app", wave=0),
            DatabaseRegistered(name="w1", url=f"sqlite:///{other}", stream="app", wave=1),
        )
    )
    _sync(_append(pg_store, [_table(0)]))
    daemon = DaemonProcess(pg_store, "solo")
    try:
        wait_until(lambda: _all_ready(pg_store, ["canary", "w1"], 1), 60, "both at v1")
        with sqlite3.connect(canary) as conn:
            conn.execute("INSERT INTO t0 (id, label) VALUES (1, 'same'), (2, 'same')")
        unique = {
            "type": "index_created",
            "table": "t0",
            "index": {"name": "t0_label", "columns": ["label"], "unique": True},
        }
        head = _sync(_append(pg_store, [unique]))
        wait_until(lambda: _sync(_status(pg_store))["w1"].status == "Halted", 60, "w1 Halted")
        done = subprocess.run(
            [sys.executable, "-m", "service.cli", "--store", pg_store, "rollout", "resume", "app", "--actor", "ops"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert f"rollout of app to v{head} resumed" in done.stdout
        wait_until(lambda: _all_ready(pg_store, ["w1"], head), 60, "w1 at head after the resume")
        assert _sync(_status(pg_store))["canary"].status == "Stalled"
    finally:
        daemon.stop()


# --------------------------------------------------------------------------- shutdown


def test_sigterm_during_a_run_finishes_it_and_releases_the_leases(pg_store: str) -> None:
    with postgres_database_url() as target:
        _sync(_register(pg_store, DatabaseRegistered(name="slow", url=target, stream="app")))
        _sync(_append(pg_store, [_table(0)]))
        daemon = DaemonProcess(pg_store, "solo", extra=("--metrics-port", "0"))
        try:
            wait_until(lambda: _all_ready(pg_store, ["slow"], 1), 60, "at v1")

            async def hold_lock() -> tuple[asyncpg.Connection, Any]:
                conn = await asyncpg.connect(target)
                tx = conn.transaction()
                await tx.start()
                await conn.execute("LOCK TABLE t0 IN ACCESS EXCLUSIVE MODE")
                return conn, tx

            loop = asyncio.new_event_loop()
            try:
                conn, tx = loop.run_until_complete(hold_lock())
                mark = daemon.mark()
                head = _sync(
                    _append(
                        pg_store, [{"type": "column_added", "table": "t0", "column": {"name": "x", "type": "integer"}}]
                    )
                )
                daemon.event("run_started", 30, since=mark, database="slow")

                async def waiting() -> bool:
                    probe = await asyncpg.connect(target)
                    try:
                        return bool(
                            await probe.fetchval(
                                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                                " AND wait_event_type = 'Lock'"
                            )
                        )
                    finally:
                        await probe.close()

                wait_until(lambda: _sync(waiting()), 30, "the run's ALTER waiting on the lock")
                daemon.signal(signal.SIGTERM)
                daemon.event("daemon_stopping", 30, since=mark)
                loop.run_until_complete(tx.rollback())
                loop.run_until_complete(conn.close())
            finally:
                loop.close()
            assert daemon.wait(60) == 0
            finished = daemon.event("run_finished", 5, since=mark, database="slow")
            assert finished["status"] == "applied"
            assert _sync(_marker_version(target)) == head

            async def holders() -> list[Any]:
                c = await asyncpg.connect(pg_store)
                try:
                    return list(await c.fetch("SELECT resource, holder FROM schemalog_leases WHERE holder IS NOT NULL"))
                finally:
                    await c.close()

            assert _sync(holders()) == []
        finally:
            daemon.stop()


def test_second_daemon_on_a_sqlite_store_is_refused(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'log.db'}"
    _sync(_init(store))
    first = DaemonProcess(store, "one")
    try:
        first.event("daemon_started", 60)
        second = DaemonProcess(store, "two")
        assert second.wait(60) == 1
        refusal = [line.get("raw", "") for line in second.lines]
        assert any("another daemon (replica one) holds this SQLite store" in r for r in refusal), refusal
    finally:
        first.stop()
    assert first.proc.returncode == 0


def test_health_ready_and_metrics(pg_store: str, tmp_path: Path) -> None:
    import socket
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    _sync(_register(pg_store, DatabaseRegistered(name="m", url=f"sqlite:///{tmp_path / 'm.db'}", stream="app")))
    _sync(_append(pg_store, [_table(0)]))
    daemon = DaemonProcess(pg_store, "solo", extra=("--metrics-port", str(port)))
    try:
        wait_until(lambda: _all_ready(pg_store, ["m"], 1), 60, "at v1")
        base = f"http://127.0.0.1:{port}"
        assert urllib.request.urlopen(base + "/healthz", timeout=10).status == 200
        assert urllib.request.urlopen(base + "/readyz", timeout=10).status == 200
        text = urllib.request.urlopen(base + "/metrics", timeout=10).read().decode()
        assert 'schemalog_daemon_runs_total{status="applied"}' in text
        assert "schemalog_daemon_leases_held 1.0" in text
        assert 'schemalog_daemon_wakeups_total{cause="notify"}' in text
    finally:
        daemon.stop()


def test_second_signal_aborts_the_run_at_once(pg_store: str) -> None:
    with postgres_database_url() as target:
        _sync(_register(pg_store, DatabaseRegistered(name="slow", url=target, stream="app")))
        _sync(_append(pg_store, [_table(0)]))
        daemon = DaemonProcess(pg_store, "solo")
        try:
            wait_until(lambda: _all_ready(pg_store, ["slow"], 1), 60, "at v1")
            loop = asyncio.new_event_loop()
            try:
                conn = loop.run_until_complete(asyncpg.connect(target))
                tx = conn.transaction()
                loop.run_until_complete(tx.start())
                loop.run_until_complete(conn.execute("LOCK TABLE t0 IN ACCESS EXCLUSIVE MODE"))
                mark = daemon.mark()
                added = {"type": "column_added", "table": "t0", "column": {"name": "x", "type": "integer"}}
                _sync(_append(pg_store, [added]))
                daemon.event("run_phase", 30, since=mark, database="slow", phase="planned")
                daemon.signal(signal.SIGTERM)
                daemon.event("daemon_stopping", 30, since=mark)
                daemon.signal(signal.SIGTERM)
                assert daemon.wait(60) == 130
                daemon.event("run_cancelled", 5, since=mark, database="slow")
                loop.run_until_complete(tx.rollback())
                loop.run_until_complete(conn.close())
            finally:
                loop.close()
            assert _sync(_marker_version(target)) == 1  # rolled back: still at v1, nothing half-done
        finally:
            daemon.stop()


def test_url_secret_from_the_environment_and_missing(pg_store: str) -> None:
    with postgres_database_url() as target:
        with_secret = target.replace("postgres@", "postgres:${SL_TEST_TARGET_PW}@", 1)
        _sync(
            _register(
                pg_store,
                DatabaseRegistered(name="env", url=with_secret, stream="app"),
                DatabaseRegistered(
                    name="unset", url=with_secret.replace("SL_TEST_TARGET_PW", "SL_TEST_UNSET"), stream="app"
                ),
            )
        )
        _sync(_append(pg_store, [_table(0)]))
        daemon = DaemonProcess(pg_store, "solo", env={"SL_TEST_TARGET_PW": "not-in-the-log-7f3a"})
        try:
            wait_until(lambda: _all_ready(pg_store, ["env"], 1), 60, "the database with ${VAR} at v1")
            row = wait_until(lambda: (r := _sync(_status(pg_store))["unset"]).status == "Stalled" and r, 60, "Stalled")
            assert "SL_TEST_UNSET is not set" in (row.detail or "")
        finally:
            daemon.stop()

        async def everything() -> str:
            conn = await asyncpg.connect(pg_store)
            try:
                rows = await conn.fetch("SELECT data::text FROM schemalog_events")
                leases = await conn.fetch("SELECT coalesce(last_error, '') FROM schemalog_leases")
                return "\n".join([r[0] for r in rows] + [r[0] for r in leases])
            finally:
                await conn.close()

        assert "not-in-the-log-7f3a" not in _sync(everything())
        assert not any("not-in-the-log-7f3a" in str(line) for line in daemon.lines)


def test_drift_adopted_by_policy(pg_store: str, tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    _sync(
        _register(
            pg_store,
            DatabaseRegistered(name="a", url=f"sqlite:///{path}", stream="app", drift="adopt", drift_interval=1),
        )
    )
    _sync(_append(pg_store, [_table(0)]))
    daemon = DaemonProcess(pg_store, "solo")
    try:
        wait_until(lambda: _all_ready(pg_store, ["a"], 1), 60, "at v1")
        with sqlite3.connect(path) as conn:
            conn.execute("ALTER TABLE t0 ADD COLUMN by_hand integer")
        daemon.event("drift_adopted", 30)

        async def app_events() -> list[Any]:
            store = await open_store(pg_store)
            try:
                return list(await store.read("app"))
            finally:
                await store.close()

        events = _sync(app_events())
        assert events[-1].event.type == "column_added" and events[-1].event.column.name == "by_hand"
        assert events[-1].actor == "daemon:solo"
        wait_until(lambda: _all_ready(pg_store, ["a"], events[-1].version), 30, "Ready at the adopted version")
    finally:
        daemon.stop()


def test_a_marker_that_does_not_match_the_chain_is_an_alarm(pg_store: str, tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    _sync(_register(pg_store, DatabaseRegistered(name="w", url=f"sqlite:///{path}", stream="app", drift_interval=1)))
    _sync(_append(pg_store, [_table(0)]))
    daemon = DaemonProcess(pg_store, "solo")
    try:
        wait_until(lambda: _all_ready(pg_store, ["w"], 1), 60, "at v1")
        with sqlite3.connect(path) as conn:  # the database now witnesses another log
            conn.execute("UPDATE schemalog_marker SET event_hash = ?", ("0" * 64,))
        _sync(_append(pg_store, [_table(1)]))
        row = wait_until(lambda: (r := _sync(_status(pg_store))["w"]).status == "Drifted" and r, 30, "the alarm")
        assert any("marker witnesses" in line for line in row.drift)
        with sqlite3.connect(path) as conn:
            assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 't1'").fetchone() == (0,)
    finally:
        daemon.stop()


def test_checkpoints_on_a_schedule(pg_store: str, tmp_path: Path) -> None:
    import subprocess
    import sys

    prefix = tmp_path / "ck"
    made = subprocess.run(
        [sys.executable, "-m", "service.cli", "keygen", "--out", str(prefix)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert made.returncode == 0, made.stderr
    _sync(_append(pg_store, [_table(0)]))
    file = tmp_path / "checkpoints.jsonl"
    daemon = DaemonProcess(
        pg_store,
        "solo",
        extra=("--checkpoint-key", f"{prefix}.key", "--checkpoint-file", str(file), "--checkpoint-interval", "1"),
    )
    try:
        daemon.event("checkpoint_written", 30)
        daemon.event("checkpoint_written", 30, since=daemon.lines.index(daemon.events("checkpoint_written")[0]) + 1)
    finally:
        daemon.stop()
    checked = subprocess.run(
        [
            sys.executable,
            "-m",
            "service.cli",
            "--store",
            pg_store,
            "verify",
            "--checkpoints",
            str(file),
            "--key",
            f"{prefix}.pub",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert len(file.read_text().splitlines()) >= 2
