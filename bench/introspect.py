"""Introspecting a large PostgreSQL schema and comparing it with the log's state, beside the peers.

For each size (default 1,000 and 5,000 tables; 12 columns, 3 indexes and 1 foreign key each), every
contender is timed the same two ways, each in a new process of its own (this script, run with --worker),
started after the database and the log are made:

- warm: one process; what the contender needs before it can start (Alembic's models, the imports) and
  its database connection are made before the clock; one untimed run, then the median of --repeat runs
  on that connection (queries already prepared, caches filled).
- cold: --repeat new processes, one run each; the clock covers opening the connection (and, for
  schemalog, the log's store) and the one run; interpreter start and imports are outside it, for all.

The contenders:

- raw asyncpg: the very catalog queries introspect_postgresql runs (PG_QUERIES: enum types, tables with
  comments, column defaults and generated expressions, identity and serial sequences, constraints with
  check expressions and deferrability, indexes with methods, elements, predicates and INCLUDE columns,
  columns with types, identity, collations and comments), one after the other, rows fetched and nothing
  more: the floor for reading what schemalog needs.
- raw asyncpg, the columns copied: the same queries, but the columns' as COPY ... TO STDOUT writes them
  (text, not rows), as schemalog reads them when told the expected schema; for reference.
- schemalog drift check (the headline): what migrate does before it applies anything: the state at the
  marker's version read from the log (SQLite store, from its snapshot, digest checked), in the
  dialect's form (Target.expected), introspect_postgresql told it, the differences (checked to be none).
  Warm, the second run of a process finds the state the projector kept (Projector.state_at_version keeps
  the last one, under the chain hash of its version's event) and the dialect's table forms: what a
  daemon's drift checks, one after another, pay. Cold is a new process: the state folded from the snapshot.
- the same, the state folded again each run (everything kept forgotten first): a warm process paying what
  a new one does for the state.
- the same plus the marker's state hash (migrate compares it with the marker's too).
- schemalog introspect + compare: the same without reading the state (the expected schema built before
  the clock, held by the process): what the check after apply pays.
- schemalog, not told: the same, the expected schema handed over only after the read.
- SQLAlchemy Inspector: get_multi_columns, _pk_constraint, _foreign_keys, _indexes, _unique_constraints,
  _check_constraints (psycopg 3).
- Alembic: compare_metadata(MigrationContext, models) (the models built before the clock: they are its
  input, as the log is schemalog's).
- migra: Migration(db, db) with add_all_changes (it inspects both sides, as a drift check would).

A process per contender: a process holding the SQLAlchemy models of 5,000 tables (three million objects)
runs the same Python a third slower and collects garbage at other moments. Every timed run starts with
gc.collect(), so that a full collection of what was made before it does not land in it.

    .venv/bin/pip install -e '.[bench]'
    .venv/bin/python bench/introspect.py [--tables 1000,5000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import asyncpg
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import structlog
from pgschema import ddl, drop, fresh_database, metadata

from events.envelope import Changeset
from events.log import EventLog
from events.model import Schema
from events.store import open_store
from projections.diff import schema_diff
from projections.schema import Projector
from service.authoring.models import metadata_schema
from service.logging import configure
from service.reconciler.dialects import get_dialect
from service.reconciler.dialects.postgresql.introspect import PG_COLUMNS, PG_QUERIES, introspect_postgresql, read_copied
from service.reconciler.marker import state_hash
from service.reconciler.normalize import differences

STREAM = "bench"

Run = Callable[[], Awaitable[Any]]


@contextmanager
def clock(times: list[float]) -> Iterator[None]:
    gc.collect()
    started = time.perf_counter()
    yield
    times.append(time.perf_counter() - started)


# --------------------------------------------------------------------------- asyncpg-based contenders


async def drift_check(conn: Any, store: Any, version: int, with_hash: bool, keep: bool = True) -> list[str]:
    """What migrate does before applying (service/reconciler/apply.py, _run): the state at the marker's
    version, in the target's form, the database read told it, the differences. ``keep=False``: the
    projector's kept state (and the kept forms and digest) forgotten first, so that a warm run folds the
    state from the snapshot as a new process does."""
    if not keep:
        forget_kept()
    state = await Projector(store).state_at_version(STREAM, version)
    start = state.to_schema()
    expected = get_dialect("postgresql").normalize(start)  # PostgresTarget.expected
    found = differences(expected, await introspect_postgresql(conn, expected))
    if with_hash:
        state_hash(start)
    return found


async def expected_schema(log_url: str) -> Schema:
    store = await open_store(log_url)
    try:
        _, schema = await Projector(store).schema(STREAM)
    finally:
        await store.close()
    return get_dialect("postgresql").normalize(schema)


async def asyncpg_contender(contender: str, mode: str, url: str, log_url: str, repeat: int) -> dict[str, Any]:
    expected = await expected_schema(log_url) if contender in ("compare", "untold") else None
    store = await open_store(log_url) if mode == "warm" and contender.startswith("drift") else None
    version = 0
    if contender.startswith("drift"):
        probe = await open_store(log_url)
        version = await probe.version(STREAM)
        await probe.close()

    async def work(conn: Any, store: Any) -> Any:
        if contender in ("raw", "copied"):
            rows = 0
            for query in PG_QUERIES:
                if contender == "copied" and query is PG_COLUMNS:
                    rows += (await read_copied(conn, query)).count(b"\n")
                else:
                    rows += len(await conn.fetch(query))
            return rows
        if contender == "compare":
            assert expected is not None
            return differences(expected, await introspect_postgresql(conn, expected))
        if contender == "untold":
            assert expected is not None
            return differences(expected, await introspect_postgresql(conn))
        return await drift_check(conn, store, version, contender == "drift_hash", keep=contender != "drift_fold")

    times: list[float] = []
    result: Any = None
    if mode == "warm":
        conn = await asyncpg.connect(url)
        try:
            result = await work(conn, store)  # untimed: prepares the queries, fills the caches
            for _ in range(repeat):
                with clock(times):
                    result = await work(conn, store)
        finally:
            await conn.close()
            if store is not None:
                await store.close()
    else:
        with clock(times):
            conn = await asyncpg.connect(url)
            opened = await open_store(log_url) if contender.startswith("drift") else None
            result = await work(conn, opened)
        await conn.close()
        if opened is not None:
            await opened.close()
    if isinstance(result, list):
        assert result == [], result[:5]
        return {"times": times, "differences": 0}
    return {"times": times, "rows": result}


# --------------------------------------------------------------------------- SQLAlchemy-based contenders


def sync_contender(contender: str, mode: str, url: str, tables: int, repeat: int) -> dict[str, Any]:
    if contender == "migra":
        try:
            from migra import Migration
            from sqlbag import S
        except ImportError:
            return {"missing": "n/a (pip install migra psycopg2-binary)"}
        psycopg2_url = url.replace("postgresql://", "postgresql+psycopg2://")

        def migra_run(a: Any, b: Any) -> int:
            m = Migration(a, b)
            m.set_safety(False)
            m.add_all_changes()
            return len([s for s in m.statements if s.strip()])

        times: list[float] = []
        if mode == "warm":
            with S(psycopg2_url) as a, S(psycopg2_url) as b:
                found = migra_run(a, b)
                for _ in range(repeat):
                    with clock(times):
                        found = migra_run(a, b)
        else:
            with clock(times), S(psycopg2_url) as a, S(psycopg2_url) as b:
                found = migra_run(a, b)
        return {"times": times, "statements": found}

    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    md = metadata(tables) if contender == "alembic" else None  # its input, built before the clock

    def sync_run(conn: Any) -> int:
        if contender == "alembic":
            return len(compare_metadata(MigrationContext.configure(conn), md))
        insp = sa.inspect(conn)
        insp.get_multi_columns()
        insp.get_multi_pk_constraint()
        insp.get_multi_foreign_keys()
        insp.get_multi_indexes()
        insp.get_multi_unique_constraints()
        insp.get_multi_check_constraints()
        return 0

    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"), poolclass=sa.pool.NullPool)
    times = []
    try:
        if mode == "warm":
            with engine.connect() as conn:
                found = sync_run(conn)
                for _ in range(repeat):
                    with clock(times):
                        found = sync_run(conn)
        else:
            with clock(times), engine.connect() as conn:
                found = sync_run(conn)
    finally:
        engine.dispose()
    return {"times": times, "differences": found}


# --------------------------------------------------------------------------- the runs

CONTENDERS = (
    "raw",
    "copied",
    "drift",
    "drift_fold",
    "drift_hash",
    "compare",
    "untold",
    "inspector",
    "alembic",
    "migra",
)
LABELS = {
    "raw": ("raw asyncpg catalog read (schemalog's queries)", "the floor"),
    "copied": ("raw asyncpg, columns copied (as told reads)", "COPY text, not rows"),
    "drift": ("schemalog drift check, state from the log", "headline; goal <= 2.00x"),
    "drift_fold": ("  the same, the state folded again each run", "nothing kept between runs"),
    "drift_hash": ("  the same + the marker's state hash", "all of migrate's check"),
    "compare": ("schemalog introspect + compare (state held)", "the check after apply"),
    "untold": ("schemalog, not told the expected schema", "state held"),
    "inspector": ("SQLAlchemy Inspector get_multi_*", "psycopg 3; reads only"),
    "alembic": ("Alembic compare_metadata", "models built before"),
    "migra": ("migra (db vs itself)", "inspects both sides"),
}


def forget_kept() -> None:
    """What the drift check keeps between runs of one process: the projector's state, the dialects' table
    forms, the marker's last digest."""
    import projections.schema
    import service.reconciler.dialects.base
    import service.reconciler.marker

    projections.schema._kept = None
    service.reconciler.dialects.base._NORMALIZED.clear()
    service.reconciler.marker._last = None


def measure(contender: str, mode: str, url: str, log_url: str, tables: int, repeat: int) -> dict[str, Any]:
    if contender in ("inspector", "alembic", "migra"):
        return sync_contender(contender, mode, url, tables, repeat)
    return asyncio.run(asyncpg_contender(contender, mode, url, log_url, repeat))


def measure_apart(contender: str, mode: str, url: str, log_url: str, tables: int, repeat: int) -> dict[str, Any]:
    command = [sys.executable, __file__, "--worker", contender, "--mode", mode, "--url", url, "--log-url", log_url]
    command += ["--tables", str(tables), "--repeat", str(repeat)]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


async def log_of(md: sa.MetaData, path: Path) -> str:
    url = f"sqlite:///{path}"
    store = await open_store(url)
    await store.init()
    events = schema_diff(Schema(), metadata_schema(md))
    await EventLog(store).append(Changeset(stream=STREAM, actor="bench", events=tuple(events)))
    await Projector(store).rebuild_snapshots(STREAM)
    await store.close()
    return url


def run_size(tables: int, repeat: int, workdir: Path, only: list[str]) -> None:
    md = metadata(tables)
    script = workdir / f"schema_{tables}.sql"
    script.write_text(ddl(md))
    name, url = asyncio.run(fresh_database("bench_introspect"))
    warm: dict[str, dict[str, Any]] = {}
    cold: dict[str, list[float]] = {c: [] for c in only}
    try:
        started = time.perf_counter()
        # statement by statement: 5,000 tables in one transaction exceed the default max_locks_per_transaction
        subprocess.run(["psql", "-q", "-X", "-v", "ON_ERROR_STOP=1", "-f", str(script), url], check=True)
        created = time.perf_counter() - started
        log_url = asyncio.run(log_of(md, workdir / f"log_{tables}.db"))
        del md
        for contender in only:
            warm[contender] = measure_apart(contender, "warm", url, log_url, tables, repeat)
        for _ in range(repeat):  # the cold runs in turn, so that a noisy moment does not fall on one contender
            for contender in only:
                if "missing" not in warm[contender]:
                    cold[contender] += measure_apart(contender, "cold", url, log_url, tables, 1)["times"]
    finally:
        drop(name)
    base_warm = statistics.median(warm["raw"]["times"])
    base_cold = statistics.median(cold["raw"])
    print(
        f"\n{tables:,} tables ({tables * 12:,} columns, {tables * 3:,} indexes, {tables:,} foreign keys;"
        f" created by psql in {created:.1f} s; raw read {warm['raw']['rows']:,} rows; each contender in new"
        f" processes; warm: median of {repeat} after one untimed run, connection open; cold: median of"
        f" {repeat} new processes, connecting inside the clock)"
    )
    print(f"| {'contender':<46} | {'warm s':>7} | {'vs raw':>7} | {'cold s':>7} | {'vs raw':>7} | {'note':<26} |")
    print(f"|{'-' * 48}|{'-' * 8}:|{'-' * 8}:|{'-' * 8}:|{'-' * 8}:|{'-' * 28}|")
    for contender in only:
        label, note = LABELS[contender]
        got = warm[contender]
        if "missing" in got:
            print(f"| {label:<46} | {got['missing']:>62} |")
            continue
        w, c = statistics.median(got["times"]), statistics.median(cold[contender])
        if "statements" in got:
            note = f"{got['statements']} statements"
        print(f"| {label:<46} | {w:7.3f} | {w / base_warm:6.2f}x | {c:7.3f} | {c / base_cold:6.2f}x | {note:<26} |")
    if "drift" in warm:
        w, c = statistics.median(warm["drift"]["times"]), statistics.median(cold["drift"])
        verdict = "PASS" if w <= 2 * base_warm and c <= 2 * base_cold else "FAIL"
        print(
            f"goal: drift check with the state within 2x of the raw read: {verdict}"
            f" (warm {w / base_warm:.2f}x, cold {c / base_cold:.2f}x)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tables", default="1000,5000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", default=",".join(CONTENDERS), help="contenders to run (raw always runs)")
    parser.add_argument("--worker", choices=CONTENDERS, help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=("warm", "cold"), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--log-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    configure("warning")
    if args.worker:
        print(json.dumps(measure(args.worker, args.mode, args.url, args.log_url, int(args.tables), args.repeat)))
        return
    only = ["raw", *(c for c in CONTENDERS if c in args.only.split(",") and c != "raw")]
    structlog.get_logger().info("bench_introspect", tables=args.tables)
    with tempfile.TemporaryDirectory() as tmp:
        for size in (int(s) for s in args.tables.split(",")):
            run_size(size, args.repeat, Path(tmp), only)


if __name__ == "__main__":
    main()
