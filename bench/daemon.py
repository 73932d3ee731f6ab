"""``schemalog daemon`` on a fleet: propagation beside the loops users run today, no-op checks, and scale.

Everything runs against a fresh PostgreSQL store (dropped after) and fresh target databases (SQLite
files in a temp folder by default; ``--targets postgresql`` makes PostgreSQL databases, dropped after).

1. Propagation (``--dbs 100``): the databases are registered (service.app.fleet.register, in process),
   brought to v1, then for each contender ``--changesets`` changesets are appended one at a time (each
   adds a nullable column). A database's latency is the ``recorded_at`` of the first migration_applied
   reaching the new head in its ``db:NAME`` stream minus the ``recorded_at`` of the appended changeset
   (both written on this machine's clock); the bench watches the store with one SQL query every 50 ms,
   bounded by ``--timeout``. Contenders, one after the other on the same databases:
   - the daemon, 1 replica, then 3 replicas (``schemalog daemon`` processes; poll 5 s, lease 15 s,
     concurrency 4: the defaults), measured after every replica has started, holds its share of the
     leases and has finished its start-up pass (a drift check of each database it holds);
   - ``while :; do schemalog migrate --all; done`` in bash (a schemalog.toml naming the databases),
     measured after its first pass; the latency counts from the append, as for the daemon;
   - a bash loop ``for url in ...; do alembic upgrade head; done`` over the same databases, last (its
     own alembic_version table and columns, so that schemalog's contenders never see it), one revision
     a round, equivalent to the changeset (add one nullable bigint column). A database's latency is from
     the start of the loop to the loop's line after its ``alembic upgrade head`` (a timestamp per
     database); the loop's total is the time to bring all to head.
   Every contender is whole processes; connecting is inside the clock for all of them.
2. Steady state: on the same databases at head, in process, ``migrate()`` called as the daemon calls it
   (the request a daemon builds for a drift check: the outcome stream's version, the known marker),
   every database ``--checks`` times: ms per check, and statements sent to the target and to the store
   per check, counted at the drivers (sqlite3 trace callback on every SQLite connection; asyncpg query
   loggers on the target's connection and on the store's pool). Also the daemon's own rate: the
   start-up pass of the 1-replica round of the scale part (every database already at head) timed from
   its first run_started to its last run_finished.
3. Scale (``--fleet 1000``; ``--fleet 10000`` for the full run): that many SQLite databases registered in
   bulk (changesets of 500 DatabaseRegistered events in the fleet stream), the first rollout with 3
   replicas, then a new changeset with 3 replicas and another with 1 replica: the time until all have it;
   the store's pg_database_size; ``schemalog status --json`` over the fleet as a process.

    .venv/bin/python bench/daemon.py                                   # 100 SQLite dbs, fleet 1000
    .venv/bin/python bench/daemon.py --targets postgresql --parts propagation,steady
    .venv/bin/python bench/daemon.py --parts scale --fleet 10000
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncpg

from events.catalog import parse_event
from events.envelope import Changeset
from events.fleet import FLEET_STREAM, DatabaseRegistered
from events.log import EventLog
from events.store import open_store
from events.store.base import EventStore
from projections.schema import Point
from service.app import fleet
from service.logging import configure
from service.reconciler.apply import MigrateRequest, migrate
from tests.daemon_harness import DaemonProcess

ROOT = Path(__file__).resolve().parents[1]
PG = "postgresql://postgres@127.0.0.1:5432"
BIN = Path(sys.executable).parent
STREAM = "app"


# --------------------------------------------------------------------------- databases


async def admin(sql: str) -> None:
    conn = await asyncpg.connect(f"{PG}/postgres")
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def create_pg(prefix: str) -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    await admin(f'CREATE DATABASE "{name}"')
    return name


async def drop_pg(names: list[str]) -> None:
    for name in names:
        await admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def table_event() -> dict[str, Any]:
    return {
        "type": "table_created",
        "table": "t0",
        "columns": [{"name": "id", "type": "integer", "nullable": False}, {"name": "label", "type": "varchar(40)"}],
        "primary_key": ["id"],
    }


def column_event(n: int) -> dict[str, Any]:
    return {"type": "column_added", "table": "t0", "column": {"name": f"c{n}", "type": "bigint"}}


async def append(store: EventStore, events: list[dict[str, Any]]) -> tuple[int, int, datetime]:
    """Append one changeset; (head version, its first global position, its recorded_at)."""
    result = await EventLog(store).append(
        Changeset(stream=STREAM, actor="bench", events=tuple(parse_event(e) for e in events))
    )
    conn = await asyncpg.connect(store_url_of(store))
    try:
        row = await conn.fetchrow(
            "SELECT position, recorded_at FROM schemalog_events WHERE stream = $1 AND version = $2",
            STREAM,
            result.last_version,
        )
    finally:
        await conn.close()
    return result.last_version, row["position"], row["recorded_at"]


_URLS: dict[int, str] = {}


def store_url_of(store: EventStore) -> str:
    return _URLS[id(store)]


async def reached(conn: Any, after: int, version: int) -> dict[str, datetime]:
    rows = await conn.fetch(
        "SELECT stream, min(recorded_at) AS at FROM schemalog_events"
        " WHERE position > $1 AND type = 'migration_applied' AND (data->>'to_version')::bigint >= $2"
        " GROUP BY stream",
        after,
        version,
    )
    return {r["stream"][3:]: r["at"] for r in rows}


async def wait_head(store_url: str, names: list[str], after: int, version: int, timeout: float) -> dict[str, float]:
    """Per database, seconds from the append (position ``after``, recorded at ...) to its migration_applied."""
    conn = await asyncpg.connect(store_url)
    try:
        deadline = time.monotonic() + timeout
        wanted = set(names)
        while True:
            got = await reached(conn, after, version)
            if wanted <= got.keys():
                return {n: got[n] for n in names}  # type: ignore[misc]
            if time.monotonic() > deadline:
                missing = sorted(wanted - got.keys())
                raise SystemExit(f"not all at v{version} within {timeout} s: {len(missing)} missing: {missing[:5]}")
            await asyncio.sleep(0.05)
    finally:
        await conn.close()


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


# --------------------------------------------------------------------------- daemons


def held(d: DaemonProcess) -> int:
    claimed = len(d.events("lease_claimed"))
    released = sum(int(e.get("released", 0)) for e in d.events("leases_rebalanced"))
    lost = len(d.events("lease_lost"))
    return claimed - released - lost


def settled(daemons: list[DaemonProcess], count: int, timeout: float) -> float:
    """Wait until the leases are spread (each replica holds its share) and no run is in flight after every
    held database had its start-up run; seconds it took from the first run_started."""
    share = -(-count // len(daemons))
    deadline = time.monotonic() + timeout
    while True:
        holds = [held(d) for d in daemons]
        started = [e for d in daemons for e in d.events("run_started")]
        finished = [e for d in daemons for e in d.events("run_finished")]
        ran = {e["database"] for e in finished}
        if sum(holds) == count and max(holds) <= share and len(ran) >= count and len(started) == len(finished):
            times = [e["_seen"] for e in started]
            return max(e["_seen"] for e in finished) - min(times) if times else 0.0
        if time.monotonic() > deadline:
            raise SystemExit(f"daemons not settled within {timeout} s: holds {holds}, ran {len(ran)}/{count}")
        time.sleep(0.1)


async def no_live_replicas(store_url: str, timeout: float) -> None:
    """Wait until the heartbeats of stopped replicas expired: a replica stopped with SIGTERM gives its leases
    back but its heartbeat row counts as live for the lease time, and a new replica sizes its share by it."""
    conn = await asyncpg.connect(store_url)
    try:
        deadline = time.monotonic() + timeout
        if not await conn.fetchval("SELECT to_regclass('schemalog_replicas') IS NOT NULL"):
            return
        live = "SELECT EXISTS (SELECT 1 FROM schemalog_replicas WHERE expires_at > clock_timestamp())"
        while await conn.fetchval(live):
            if time.monotonic() > deadline:
                raise SystemExit(f"replicas still live after {timeout} s")
            await asyncio.sleep(0.1)
    finally:
        await conn.close()


async def start_daemons(store_url: str, replicas: int, tag: str, extra: tuple[str, ...] = ()) -> list[DaemonProcess]:
    await no_live_replicas(store_url, 60)
    daemons = [
        DaemonProcess(store_url, f"{tag}{i}", poll=5.0, ttl=15.0, extra=("--concurrency", "4", *extra))
        for i in range(replicas)
    ]
    for d in daemons:
        d.event("daemon_started", 300)
    return daemons


def stop(daemons: list[DaemonProcess]) -> None:
    for d in daemons:
        d.signal(15)
    for d in daemons:
        d.stop()


# --------------------------------------------------------------------------- contenders


async def daemon_rounds(
    store: EventStore, store_url: str, names: list[str], replicas: int, rounds: int, first: int, timeout: float
) -> tuple[list[float], int]:
    daemons = await start_daemons(store_url, replicas, f"r{replicas}-")
    try:
        settled(daemons, len(names), timeout)
        latencies: list[float] = []
        for n in range(first, first + rounds):
            version, position, at = await append(store, [column_event(n)])
            got = await wait_head(store_url, names, position, version, timeout)
            latencies += [(t - at).total_seconds() for t in got.values()]
            await asyncio.to_thread(settled, daemons, len(names), timeout)
        return latencies, first + rounds
    finally:
        stop(daemons)


async def migrate_loop_rounds(
    store: EventStore, store_url: str, urls: dict[str, str], tmp: Path, rounds: int, first: int, timeout: float
) -> tuple[list[float], list[float], int]:
    config = tmp / "schemalog.toml"
    config.write_text(
        "".join(f'[databases.{n}]\nurl = "{u}"\nstream = "{STREAM}"\n\n' for n, u in urls.items()), encoding="utf-8"
    )
    passes = tmp / "passes"
    passes.write_text("", encoding="utf-8")
    script = (
        f"while :; do {BIN / 'schemalog'} --store '{store_url}' -q --config '{config}' migrate --all"
        f" >/dev/null 2>&1; date +%s.%N >> '{passes}'; done"
    )
    loop = subprocess.Popen(["bash", "-c", script], cwd=tmp, start_new_session=True)
    names = list(urls)
    try:
        wait_file_lines(passes, 1, timeout)
        latencies: list[float] = []
        for n in range(first, first + rounds):
            version, position, at = await append(store, [column_event(n)])
            got = await wait_head(store_url, names, position, version, timeout)
            latencies += [(t - at).total_seconds() for t in got.values()]
        stamps = [float(x) for x in wait_file_lines(passes, 2, timeout)]
        pass_seconds = [b - a for a, b in itertools.pairwise(stamps)]
        return latencies, pass_seconds, first + rounds
    finally:
        os.killpg(loop.pid, 15)
        loop.wait(30)


def wait_file_lines(path: Path, count: int, timeout: float) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        lines = path.read_text(encoding="utf-8").split()
        if len(lines) >= count:
            return lines
        if time.monotonic() > deadline:
            raise SystemExit(f"{path}: fewer than {count} lines within {timeout} s")
        time.sleep(0.05)


ALEMBIC_ENV = """
from alembic import context
from sqlalchemy import create_engine

url = context.get_x_argument(as_dictionary=True)["url"]
engine = create_engine(url)
with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=None, version_table="bench_alembic_version")
    with context.begin_transaction():
        context.run_migrations()
"""

ALEMBIC_REVISION = """
import sqlalchemy as sa
from alembic import op

revision = "r{n}"
down_revision = {down!r}


def upgrade():
    op.add_column("t0", sa.Column("a{n}", sa.BigInteger(), nullable=True))
"""


def alembic_rounds(urls: dict[str, str], tmp: Path, rounds: int, timeout: float) -> tuple[list[float], list[float]]:
    env = tmp / "alembic"
    (env / "versions").mkdir(parents=True, exist_ok=True)
    (env / "env.py").write_text(ALEMBIC_ENV, encoding="utf-8")
    ini = tmp / "alembic.ini"
    ini.write_text(f"[alembic]\nscript_location = {env}\n", encoding="utf-8")
    url_file = tmp / "alembic_urls"
    url_file.write_text("\n".join(alembic_url(u) for u in urls.values()) + "\n", encoding="utf-8")
    latencies: list[float] = []
    totals: list[float] = []
    for n in range(rounds):
        down = f"r{n - 1}" if n else None
        (env / "versions" / f"r{n}.py").write_text(ALEMBIC_REVISION.format(n=n, down=down), encoding="utf-8")
        script = (
            f"while read -r url; do {BIN / 'alembic'} -c '{ini}' -x url=\"$url\" upgrade head >/dev/null 2>&1"
            " || exit 1; date +%s.%N; done < " + str(url_file)
        )
        started = time.time()
        out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=timeout, check=True)
        totals.append(time.time() - started)
        latencies += [float(x) - started for x in out.stdout.split()]
    return latencies, totals


def alembic_url(url: str) -> str:
    return url  # sqlite:////abs/path.db and postgresql://user@host/db are SQLAlchemy URLs as they are


# --------------------------------------------------------------------------- steady state


def count_store(counter: Counter, query: str) -> None:
    if query.startswith("SELECT pg_advisory_unlock_all()"):
        counter.resets += 1
    else:
        counter.store += 1


class Counter:
    def __init__(self) -> None:
        self.target = 0
        self.store = 0
        self.resets = 0
        """asyncpg's pool reset query, sent on every release of a store connection."""


def instrument(counter: Counter, store_db: str) -> None:
    """Count statements at the drivers: every sqlite3 connection, every asyncpg connection (by database)."""
    import sqlalchemy as sa

    @sa.event.listens_for(sa.Engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        if hasattr(dbapi_conn, "set_trace_callback"):

            def seen(sql: str) -> None:
                if not sql.startswith("--"):  # (sqlite3 reports a virtual table's own reads as comments)
                    counter.target += 1

            dbapi_conn.set_trace_callback(seen)

    original = asyncpg.connect

    async def connect(*args: Any, **kwargs: Any) -> Any:
        conn = await original(*args, **kwargs)
        on_store = conn._params.database == store_db

        def seen(_record: Any) -> None:
            if on_store:
                counter.store += 1
            else:
                counter.target += 1

        conn.add_query_logger(seen)
        return conn

    asyncpg.connect = connect  # PostgresTarget.open connects through the module attribute
    original_pool = asyncpg.create_pool

    def create_pool(*args: Any, **kwargs: Any) -> Any:
        async def init(conn: Any) -> None:
            conn.add_query_logger(lambda r: count_store(counter, r.query))

        return original_pool(*args, init=init, **kwargs)

    asyncpg.create_pool = create_pool


async def steady(store_url: str, urls: dict[str, str], checks: int, counter: Counter) -> dict[str, float]:
    store = await open_store(store_url, create=False)
    try:
        view = await fleet.fleet_view(store)
        seconds: list[float] = []
        target_q: list[int] = []
        store_q: list[int] = []
        resets: list[int] = []
        for _ in range(checks):
            for name, url in urls.items():
                db = view.databases[name]
                record = view.record(name)
                desired = view.resolve(db)
                assert desired is not None
                request = MigrateRequest(
                    url=url,
                    stream=db.stream,
                    actor="daemon:bench",
                    database=name,
                    to=Point(version=desired),
                    lock_timeout=30,
                    outcome_version=record.version,
                    known_at=record.at if record.at is not None else 0,
                    known_drift=record.drift if record.version else None,
                    replica="bench",
                )
                t0, s0, r0 = counter.target, counter.store, counter.resets
                started = time.perf_counter()
                outcome = await migrate(store, request)
                seconds.append(time.perf_counter() - started)
                target_q.append(counter.target - t0)
                store_q.append(counter.store - s0)
                resets.append(counter.resets - r0)
                if outcome.status != "up_to_date" or outcome.recorded:
                    raise SystemExit(f"{name}: a no-op check gave {outcome.status} ({outcome.detail})")
        return {
            "ms_p50": statistics.median(seconds) * 1000,
            "ms_p99": quantile(seconds, 0.99) * 1000,
            "target_q": statistics.median(target_q),
            "store_q": statistics.median(store_q),
            "resets": statistics.median(resets),
            "checks": len(seconds),
        }
    finally:
        await store.close()


# --------------------------------------------------------------------------- setup


async def make_store() -> tuple[str, str, EventStore]:
    name = await create_pg("sl_bench_store")
    url = f"{PG}/{name}"
    store = await open_store(url)
    await store.init()
    _URLS[id(store)] = url
    return name, url, store


async def register_one_by_one(store: EventStore, urls: dict[str, str]) -> float:
    started = time.perf_counter()
    for name, url in urls.items():
        await fleet.register(store, "bench", DatabaseRegistered(name=name, url=url, stream=STREAM))
    return time.perf_counter() - started


async def register_bulk(store: EventStore, urls: dict[str, str]) -> None:
    items = list(urls.items())
    for i in range(0, len(items), 500):
        events = tuple(DatabaseRegistered(name=n, url=u, stream=STREAM) for n, u in items[i : i + 500])
        await EventLog(store).append(Changeset(stream=FLEET_STREAM, actor="bench", message="bulk", events=events))


async def targets(kind: str, count: int, folder: Path, pg_names: list[str], prefix: str) -> dict[str, str]:
    urls: dict[str, str] = {}
    for i in range(count):
        if kind == "postgresql":
            name = await create_pg(f"sl_bench_t{i}")
            pg_names.append(name)
            urls[f"{prefix}{i}"] = f"{PG}/{name}"
        else:
            urls[f"{prefix}{i}"] = f"sqlite:///{folder / f'{prefix}{i}.db'}"
    return urls


def row(label: str, values: list[float]) -> str:
    return f"| {label:<46} | {quantile(values, 0.5):7.2f} | {quantile(values, 0.99):7.2f} | {max(values):7.2f} |"


# --------------------------------------------------------------------------- parts


async def propagation_and_steady(args: argparse.Namespace, tmp: Path, pg_names: list[str], parts: set[str]) -> None:
    name, store_url, store = await make_store()
    pg_names.append(name)
    try:
        urls = await targets(args.targets, args.dbs, tmp, pg_names, "db")
        reg = await register_one_by_one(store, urls)
        print(f"registered {len(urls)} {args.targets} databases one by one (fleet.register): {reg:.2f} s", flush=True)
        names = list(urls)
        version, position, _at = await append(store, [table_event()])
        daemons = await start_daemons(store_url, 3, "boot-")
        try:
            await wait_head(store_url, names, position, version, args.timeout)
        finally:
            stop(daemons)
        results: dict[str, list[float]] = {}
        n = 1
        if "propagation" in parts:
            results["daemon, 1 replica"], n = await daemon_rounds(
                store, store_url, names, 1, args.changesets, n, args.timeout
            )
            print(row("daemon, 1 replica", results["daemon, 1 replica"]), flush=True)
            results["daemon, 3 replicas"], n = await daemon_rounds(
                store, store_url, names, 3, args.changesets, n, args.timeout
            )
            print(row("daemon, 3 replicas", results["daemon, 3 replicas"]), flush=True)
        if "steady" in parts:
            counter = Counter()
            instrument(counter, name)
            s = await steady(store_url, urls, args.checks, counter)
            print(
                f"no-op check, {args.targets}, {s['checks']} checks:"
                f" p50 {s['ms_p50']:.1f} ms, p99 {s['ms_p99']:.1f} ms,"
                f" {s['target_q']:.0f} statements to the target, {s['store_q']:.0f} to the store"
                f" (+{s['resets']:.0f} pool resets) per check;"
                f" one at a time: {60000 / s['ms_p50']:.0f} checks a minute",
                flush=True,
            )
        if "propagation" in parts:
            loop, pass_s, n = await migrate_loop_rounds(
                store, store_url, urls, tmp, args.loop_changesets, n, args.timeout
            )
            results["migrate --all in a bash loop"] = loop
            print(row("migrate --all in a bash loop", loop), f"(passes: {statistics.median(pass_s):.2f} s)", flush=True)
            lat, totals = alembic_rounds(urls, tmp, args.loop_changesets, args.timeout * 10)
            results["alembic upgrade head, bash loop"] = lat
            print(row("alembic upgrade head, bash loop", lat), flush=True)
            print(f"\n{args.dbs} {args.targets} databases; seconds from the append to the database at head")
            print("| contender                                      |     p50 |     p99 |     max |")
            print("|------------------------------------------------|--------:|--------:|--------:|")
            for label, values in results.items():
                print(row(label, values))
            alembic_p99 = quantile(lat, 0.99)
            alembic_total = statistics.median(totals)
            print(f"alembic loop total (median of {len(totals)}): {alembic_total:.1f} s")
            for label in ("daemon, 1 replica", "daemon, 3 replicas", "migrate --all in a bash loop"):
                p99 = quantile(results[label], 0.99)
                print(f"{label}: p99 {p99:.2f} s; alembic loop's p99 / this p99 = {alembic_p99 / p99:.1f}x")
    finally:
        await store.close()


async def scale(args: argparse.Namespace, tmp: Path, pg_names: list[str]) -> None:
    name, store_url, store = await make_store()
    pg_names.append(name)
    folder = tmp / "fleet"
    folder.mkdir()
    try:
        urls = await targets("sqlite", args.fleet, folder, pg_names, "f")
        names = list(urls)
        started = time.perf_counter()
        await register_bulk(store, urls)
        print(f"fleet of {args.fleet}: registered in bulk in {time.perf_counter() - started:.1f} s", flush=True)
        started = time.perf_counter()
        extra = DatabaseRegistered(name="extra", url=f"sqlite:///{folder}/x.db", stream=STREAM)
        await fleet.register(store, "bench", extra)
        print(f"one more fleet.register at {args.fleet}: {time.perf_counter() - started:.2f} s", flush=True)
        await fleet.retire(store, "bench", "extra")
        timeout = args.timeout * max(1, args.fleet // 100)
        version, position, _at = await append(store, [table_event()])
        daemons = await start_daemons(store_url, 3, "s3-")
        rows: list[tuple[str, float, float]] = []
        try:
            got = await wait_head(store_url, names, position, version, timeout)
            first = [(t - _at).total_seconds() for t in got.values()]
            rows.append(("first rollout (v1, markers made), 3 replicas", quantile(first, 0.5), max(first)))
            settled(daemons, len(names), timeout)
            version, position, at = await append(store, [column_event(1)])
            got = await wait_head(store_url, names, position, version, timeout)
            lat = [(t - at).total_seconds() for t in got.values()]
            rows.append(("new changeset, 3 replicas", quantile(lat, 0.5), max(lat)))
            print(rows[-1], flush=True)
        finally:
            stop(daemons)
        daemons = await start_daemons(store_url, 1, "s1-")
        try:
            pass_seconds = settled(daemons, len(names), timeout)
            print(
                f"1 replica start-up pass: {len(names)} no-op checks in {pass_seconds:.1f} s"
                f" = {len(names) / pass_seconds * 60:.0f} a minute",
                flush=True,
            )
            version, position, at = await append(store, [column_event(2)])
            got = await wait_head(store_url, names, position, version, timeout)
            lat = [(t - at).total_seconds() for t in got.values()]
            rows.append(("new changeset, 1 replica", quantile(lat, 0.5), max(lat)))
        finally:
            stop(daemons)
        status_s: list[float] = []
        for _ in range(3):
            started = time.perf_counter()
            subprocess.run(
                [str(BIN / "schemalog"), "--store", store_url, "status", "--json"],
                stdout=subprocess.DEVNULL,
                check=True,
                timeout=timeout,
            )
            status_s.append(time.perf_counter() - started)
        conn = await asyncpg.connect(store_url)
        try:
            size = await conn.fetchval("SELECT pg_database_size(current_database())")
            events = await conn.fetchval("SELECT count(*) FROM schemalog_events")
            streams = await conn.fetchval("SELECT count(*) FROM schemalog_streams")
        finally:
            await conn.close()
        print(f"\nfleet of {args.fleet} SQLite databases; seconds from the append until each has it")
        print("| round                                          |     p50 | all at head |")
        print("|------------------------------------------------|--------:|------------:|")
        for label, p50, last in rows:
            print(f"| {label:<46} | {p50:7.1f} | {last:11.1f} |")
        print(
            f"store: {size / 1e6:.0f} MB ({events} events, {streams} streams);"
            f" schemalog status --json: {statistics.median(status_s):.2f} s (median of 3, a process)"
        )
    finally:
        await store.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--dbs", type=int, default=100)
    parser.add_argument("--changesets", type=int, default=5, help="changesets per daemon round")
    parser.add_argument("--loop-changesets", type=int, default=3, help="changesets for migrate --all and alembic")
    parser.add_argument("--checks", type=int, default=3, help="no-op checks per database")
    parser.add_argument("--fleet", type=int, default=1000)
    parser.add_argument("--parts", default="propagation,steady,scale")
    parser.add_argument("--timeout", type=float, default=120.0, help="bound of each wait (scale: x fleet/100)")
    args = parser.parse_args()
    configure(level="warning")
    parts = set(args.parts.split(","))
    tmp = Path(tempfile.mkdtemp(prefix="sl_bench_daemon_"))
    pg_names: list[str] = []
    try:
        if parts & {"propagation", "steady"}:
            await propagation_and_steady(args, tmp, pg_names, parts)
        if "scale" in parts:
            await scale(args, tmp, pg_names)
    finally:
        await drop_pg(pg_names)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
