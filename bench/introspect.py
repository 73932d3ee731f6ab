"""Introspecting a large PostgreSQL schema and comparing it with the log's state, beside the peers.

For each size (default 1,000 and 5,000 tables; 12 columns, 3 indexes and 1 foreign key each), one run:

- raw asyncpg: the very catalog queries introspect_postgresql runs (PG_QUERIES: enum types, tables with
  comments, column defaults and generated expressions, identity and serial sequences, constraints with
  check expressions and deferrability, indexes with methods, elements, predicates and INCLUDE columns,
  columns with types, identity, collations and comments), one after the other, rows fetched and nothing
  more: the floor for reading what schemalog needs.
- raw asyncpg, the columns copied: the same queries, but the columns' as COPY ... TO STDOUT writes them
  (text, not rows), as schemalog reads them when told the expected schema; for reference.
- raw asyncpg, narrower: the four queries this bench used as its floor until 2026-11-25, which read less
  (no comments, check expressions, key counts or partial-index flags; only the public schema); for reference.
- schemalog: introspect_postgresql (the same reads) plus the comparison with the projection (what every
  migrate does before and after applying): checked to find no difference. The comparison works on the
  rows and builds schema objects only for tables that differ, so here it builds none. Told the expected
  schema, as migrate tells it, it compares keys, indexes and defaults and writes the expected columns as
  COPY writes them while the server runs the queries; the columns, copied, are then compared whole (and
  read as rows only if they differ).
- schemalog, not told: the same, the expected schema handed over only after the read (all the comparison
  after the last rows arrive).
- schemalog drift check: the same, plus reading the state at head from the log (SQLite, snapshot).
- SQLAlchemy Inspector: get_multi_columns, _pk_constraint, _foreign_keys, _indexes, _unique_constraints,
  _check_constraints (psycopg 3).
- Alembic: compare_metadata(MigrationContext, models).
- migra: Migration(db, db) with add_all_changes (it inspects both sides, as a drift check would).

Each contender is measured in a new process of its own (this script, run with --worker), after the
database and the log are made: what it holds then is what it needs (Alembic's models, schemalog's
state read from the log), not what this process built for every contender. A process holding the
SQLAlchemy models of 5,000 tables (three million objects) runs the same Python a third slower and
collects garbage at other moments, which moved schemalog's figure from run to run (--in-process measures
everything in this process, as this bench did until 2026-11-25). Every timed run starts with
gc.collect(), so that a full collection of what was made before it does not land in it.

    .venv/bin/pip install -e '.[bench]'
    .venv/bin/python bench/introspect.py [--tables 1000,5000] [--repeat 3] [--in-process]
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
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import asyncpg
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import structlog
from pgschema import ddl, drop, fresh_database, header, metadata, table_row

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
from service.reconciler.normalize import differences

RAW = PG_QUERIES
"""The floor: what introspect_postgresql reads, fetched and left as rows."""

NARROWER = [
    """SELECT c.oid, n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE c.relkind IN ('r', 'p') AND n.nspname = 'public'""",
    """SELECT a.attrelid, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
              pg_get_expr(d.adbin, d.adrelid), a.attidentity
       FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
       JOIN pg_namespace n ON n.oid = c.relnamespace
       LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
       WHERE c.relkind IN ('r', 'p') AND n.nspname = 'public' AND a.attnum > 0 AND NOT a.attisdropped""",
    """SELECT con.conrelid, con.conname, con.contype, con.conkey, con.confrelid, con.confkey,
              con.confdeltype, con.confupdtype
       FROM pg_constraint con JOIN pg_namespace n ON n.oid = con.connamespace WHERE n.nspname = 'public'""",
    """SELECT i.indrelid, ic.relname, i.indisunique, i.indkey::int2[]
       FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
       JOIN pg_namespace n ON n.oid = ic.relnamespace WHERE n.nspname = 'public'""",
]


async def timed(fn: Callable[[], Awaitable[Any]], repeat: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        gc.collect()
        started = time.perf_counter()
        result = await fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


async def raw_read(url: str, repeat: int, queries: Sequence[str] = RAW, copied: bool = False) -> tuple[float, int]:
    """The queries' rows fetched; ``copied``: the columns' copied instead (COPY ... TO STDOUT, text), as
    schemalog reads them when told the expected schema."""
    conn = await asyncpg.connect(url)

    async def rows(query: str) -> int:
        if copied and query is PG_COLUMNS:
            return (await read_copied(conn, query)).count(b"\n")
        return len(await conn.fetch(query))

    async def read() -> int:
        return sum([await rows(q) for q in queries])

    try:
        return await timed(read, repeat)
    finally:
        await conn.close()


async def schemalog_compare(url: str, log_url: str, repeat: int) -> tuple[float, float, float, list[str]]:
    store = await open_store(log_url)
    projector = Projector(store)
    _, schema = await projector.schema("bench")
    expected = get_dialect("postgresql").normalize(schema)
    conn = await asyncpg.connect(url)

    async def compare() -> list[str]:
        return differences(expected, await introspect_postgresql(conn, expected))

    async def compare_untold() -> list[str]:
        return differences(expected, await introspect_postgresql(conn))

    async def drift_check() -> list[str]:
        _, at_head = await Projector(store).schema("bench")
        want = get_dialect("postgresql").normalize(at_head)
        return differences(want, await introspect_postgresql(conn, want))

    try:
        seconds, diffs = await timed(compare, repeat)
        untold, untold_diffs = await timed(compare_untold, repeat)
        with_log, log_diffs = await timed(drift_check, repeat)
        assert untold_diffs == log_diffs == diffs, (untold_diffs[:5], log_diffs[:5])
        return seconds, untold, with_log, diffs
    finally:
        await conn.close()
        await store.close()


def inspector_read(url: str, repeat: int) -> float:
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    times = []
    for _ in range(repeat):
        with engine.connect() as conn:
            gc.collect()
            started = time.perf_counter()
            insp = sa.inspect(conn)
            insp.get_multi_columns()
            insp.get_multi_pk_constraint()
            insp.get_multi_foreign_keys()
            insp.get_multi_indexes()
            insp.get_multi_unique_constraints()
            insp.get_multi_check_constraints()
            times.append(time.perf_counter() - started)
    engine.dispose()
    return statistics.median(times)


def alembic_compare(url: str, md: sa.MetaData) -> tuple[float, int]:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as conn:
        gc.collect()
        started = time.perf_counter()
        diffs = compare_metadata(MigrationContext.configure(conn), md)
        seconds = time.perf_counter() - started
    engine.dispose()
    return seconds, len(diffs)


def migra_compare(url: str) -> tuple[float, int] | str:
    try:
        from migra import Migration
        from sqlbag import S
    except ImportError:
        return "n/a (pip install migra psycopg2-binary)"
    psycopg2_url = url.replace("postgresql://", "postgresql+psycopg2://")
    gc.collect()
    started = time.perf_counter()
    with S(psycopg2_url) as a, S(psycopg2_url) as b:
        m = Migration(a, b)
        m.set_safety(False)
        m.add_all_changes()
        statements = [s for s in m.statements if s.strip()]
    return time.perf_counter() - started, len(statements)


async def log_of(md: sa.MetaData, path: Path) -> str:
    url = f"sqlite:///{path}"
    store = await open_store(url)
    await store.init()
    events = schema_diff(Schema(), metadata_schema(md))
    await EventLog(store).append(Changeset(stream="bench", actor="bench", events=tuple(events)))
    await Projector(store).rebuild_snapshots("bench")
    await store.close()
    return url


CONTENDERS = ("raw", "copied", "narrower", "schemalog", "inspector", "alembic", "migra")


def measure(contender: str, url: str, log_url: str, tables: int, repeat: int) -> dict[str, Any]:
    """One contender's figures (seconds, and what it found)."""
    if contender in ("raw", "copied", "narrower"):
        queries = NARROWER if contender == "narrower" else RAW
        seconds, rows = asyncio.run(raw_read(url, repeat, queries, copied=contender == "copied"))
        return {"seconds": seconds, "rows": rows}
    if contender == "schemalog":
        ours, untold, with_log, diffs = asyncio.run(schemalog_compare(url, log_url, repeat))
        assert diffs == [], diffs[:5]
        return {"seconds": ours, "untold": untold, "with_log": with_log}
    if contender == "inspector":
        return {"seconds": inspector_read(url, repeat)}
    if contender == "alembic":
        seconds, found = alembic_compare(url, metadata(tables))  # the models, built before the clock starts
        return {"seconds": seconds, "differences": found}
    migra = migra_compare(url)
    return {"missing": migra} if isinstance(migra, str) else {"seconds": migra[0], "statements": migra[1]}


def measure_apart(contender: str, url: str, log_url: str, tables: int, repeat: int) -> dict[str, Any]:
    """measure() in a new process: what each contender's figure depends on is its own work, not what this
    process holds (the models of every table, the log it built) nor when its collector happens to run."""
    command = [sys.executable, __file__, "--worker", contender, "--url", url, "--log-url", log_url]
    command += ["--tables", str(tables), "--repeat", str(repeat)]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def run_size(tables: int, repeat: int, workdir: Path, in_process: bool) -> None:
    md = metadata(tables)
    script = workdir / f"schema_{tables}.sql"
    script.write_text(ddl(md))
    name, url = asyncio.run(fresh_database("bench_introspect"))
    measured = measure if in_process else measure_apart
    try:
        started = time.perf_counter()
        # statement by statement: 5,000 tables in one transaction exceed the default max_locks_per_transaction
        subprocess.run(["psql", "-q", "-X", "-v", "ON_ERROR_STOP=1", "-f", str(script), url], check=True)
        created = time.perf_counter() - started
        log_url = asyncio.run(log_of(md, workdir / f"log_{tables}.db"))
        if not in_process:
            del md
        got = {contender: measured(contender, url, log_url, tables, repeat) for contender in CONTENDERS}
    finally:
        drop(name)
    raw, ours = got["raw"]["seconds"], got["schemalog"]
    where = "each in a new process" if not in_process else "all in this process"
    print(
        f"\n{tables:,} tables ({tables * 12:,} columns, {tables * 3:,} indexes, {tables:,} foreign keys;"
        f" created by psql in {created:.1f} s; raw read {got['raw']['rows']:,} rows; median of {repeat}; {where})"
    )
    print(header())
    print(table_row("raw asyncpg catalog read (schemalog's queries)", raw, raw, "the floor"))
    copied = got["copied"]["seconds"]
    print(table_row("raw asyncpg, columns copied (as told reads)", copied, raw, "COPY text, not rows"))
    narrower = got["narrower"]
    print(
        table_row(
            "raw asyncpg, narrower reads (earlier floor)",
            narrower["seconds"],
            raw,
            f"{narrower['rows']:,} rows; less read",
        )
    )
    verdict = "PASS" if ours["seconds"] <= 1.5 * raw else "FAIL"
    print(table_row("schemalog introspect + compare", ours["seconds"], raw, f"goal <= 1.50x: {verdict}"))
    print(table_row("schemalog, not told the expected schema", ours["untold"], raw, "0 differences"))
    print(table_row("schemalog drift check (+ state from the log)", ours["with_log"], raw, "0 differences"))
    print(table_row("SQLAlchemy Inspector get_multi_*", got["inspector"]["seconds"], raw, "psycopg 3"))
    alembic = got["alembic"]
    print(
        table_row("Alembic compare_metadata", alembic["seconds"], raw, f"{alembic['differences']} differences reported")
    )
    migra = got["migra"]
    if "missing" in migra:
        print(f"| {'migra':<46} | {migra['missing']:>52} |")
    else:
        print(table_row("migra (db vs itself)", migra["seconds"], raw, f"{migra['statements']} statements"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tables", default="1000,5000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--in-process", action="store_true", help="measure every contender in this process")
    parser.add_argument("--worker", choices=CONTENDERS, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--log-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    configure("warning")
    if args.worker:
        print(json.dumps(measure(args.worker, args.url, args.log_url, int(args.tables), args.repeat)))
        return
    structlog.get_logger().info("bench_introspect", tables=args.tables)
    with tempfile.TemporaryDirectory() as tmp:
        for size in (int(s) for s in args.tables.split(",")):
            run_size(size, args.repeat, Path(tmp), args.in_process)


if __name__ == "__main__":
    main()
