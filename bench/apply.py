"""Creating a 1,000-table PostgreSQL schema from empty: schemalog migrate beside psql and Alembic.

All three run the same schema (12 columns, 3 indexes, 1 foreign key per table) on a fresh database each:

- the floor: the DDL schemalog plans for it (same statements, same order) sent by asyncpg in one message
  (a simple-query batch) in one transaction; connecting is inside the clock, as it is for schemalog.
- psql -1 -f: the same script through psql (a new process, which sends the statements one at a time).
- schemalog migrate (in process, as the daemon and the API call it): reads the state from the log,
  plans, checks the empty database first, applies in one transaction under the advisory lock, introspects
  and compares the result with the target state, writes the marker, records the outcome event.
- schemalog migrate as a command (a new process: interpreter start and imports included).
- schemalog migrate --plan (in process): the same reading, planning and check of the empty database,
  no DDL: what migrate adds to the statements, before them.
- alembic upgrade head (in process) of the migration Alembic's autogenerate writes for the same models.

    .venv/bin/pip install -e '.[bench]'
    .venv/bin/python bench/apply.py [--tables 1000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from pgschema import drop, fresh_database, metadata

from events.envelope import Changeset
from events.log import EventLog
from events.model import Schema
from events.store import open_store
from projections.diff import schema_diff
from projections.schema import HEAD
from service.authoring.models import metadata_schema
from service.logging import configure
from service.reconciler.apply import MigrateRequest, migrate

ROOT = Path(__file__).resolve().parents[1]


async def make_log(md: sa.MetaData, path: Path) -> str:
    url = f"sqlite:///{path}"
    store = await open_store(url)
    await store.init()
    events = schema_diff(Schema(), metadata_schema(md))
    await EventLog(store).append(Changeset(stream="bench", actor="bench", events=tuple(events)))
    await store.close()
    return url


async def planned_sql(log_url: str, db_url: str) -> list[str]:
    store = await open_store(log_url)
    try:
        outcome = await migrate(store, MigrateRequest(url=db_url, stream="bench", actor="bench", plan_only=True))
    finally:
        await store.close()
    assert outcome.status == "planned", outcome.detail
    return outcome.statements


async def schemalog_plan_only(log_url: str, db_url: str) -> float:
    store = await open_store(log_url)
    try:
        started = time.perf_counter()
        outcome = await migrate(store, MigrateRequest(url=db_url, stream="bench", actor="bench", plan_only=True))
        seconds = time.perf_counter() - started
    finally:
        await store.close()
    assert outcome.status == "planned", (outcome.status, outcome.detail)
    return seconds


async def schemalog_in_process(log_url: str, db_url: str) -> float:
    store = await open_store(log_url)
    try:
        started = time.perf_counter()
        outcome = await migrate(store, MigrateRequest(url=db_url, stream="bench", actor="bench", to=HEAD))
        seconds = time.perf_counter() - started
    finally:
        await store.close()
    assert outcome.status == "applied", (outcome.status, outcome.detail)
    return seconds


def schemalog_command(log_url: str, db_url: str) -> float:
    env = {**os.environ, "SCHEMALOG_STORE": log_url}
    started = time.perf_counter()
    subprocess.run(
        [str(ROOT / ".venv" / "bin" / "schemalog"), "migrate", "--url", db_url, "--stream", "bench"],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


async def asyncpg_floor(script: str, db_url: str) -> float:
    import asyncpg

    started = time.perf_counter()
    conn = await asyncpg.connect(db_url)
    try:
        async with conn.transaction():
            await conn.execute(script)
    finally:
        await conn.close()
    return time.perf_counter() - started


def psql(script: Path, db_url: str) -> float:
    started = time.perf_counter()
    subprocess.run(["psql", "-q", "-X", "-v", "ON_ERROR_STOP=1", "-1", "-f", str(script), db_url], check=True)
    return time.perf_counter() - started


def alembic_project(md: sa.MetaData, folder: Path, empty_url: str) -> Path:
    """An Alembic project whose one revision is what autogenerate writes for the models."""
    from alembic import command
    from alembic.autogenerate import produce_migrations, render_python_code
    from alembic.config import Config
    from alembic.migration import MigrationContext

    cfg = Config(str(folder.parent / "alembic.ini"))
    command.init(cfg, str(folder), template="generic")
    engine = sa.create_engine(empty_url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as conn:
        ops = produce_migrations(MigrationContext.configure(conn), md).upgrade_ops
    engine.dispose()
    assert ops is not None
    body = render_python_code(ops)
    (folder / "versions" / "0001_initial.py").write_text(
        'revision = "0001"\ndown_revision = None\nbranch_labels = None\ndepends_on = None\n\n'
        "import sqlalchemy as sa\nfrom alembic import op\n\n\ndef upgrade():\n"
        + "\n".join("    " + line if line.strip() else "" for line in body.strip().splitlines()[1:-1])
        + "\n\n\ndef downgrade():\n    pass\n"
    )
    return folder


def alembic_upgrade(folder: Path, db_url: str) -> float:
    from alembic import command
    from alembic.config import Config

    cfg = Config(str(folder.parent / "alembic.ini"))
    cfg.set_main_option("script_location", str(folder))
    cfg.set_main_option("sqlalchemy.url", db_url.replace("postgresql://", "postgresql+psycopg://"))
    started = time.perf_counter()
    command.upgrade(cfg, "head")
    return time.perf_counter() - started


def on_fresh(prefix: str, run):  # type: ignore[no-untyped-def]
    name, url = asyncio.run(fresh_database(prefix))
    try:
        return run(url)
    finally:
        drop(name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tables", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    configure("warning")
    md = metadata(args.tables)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        log_url = asyncio.run(make_log(md, work / "log.db"))
        statements = on_fresh("bench_apply", lambda url: asyncio.run(planned_sql(log_url, url)))
        script = work / "schema.sql"
        script.write_text("".join(s.rstrip().rstrip(";") + ";\n" for s in statements))
        folder = on_fresh("bench_apply", lambda url: alembic_project(md, work / "alembic", url))
        results: dict[str, list[float]] = {"floor": [], "psql": [], "in": [], "cmd": [], "alembic": [], "plan": []}
        text = script.read_text()
        for _ in range(args.repeat):
            results["floor"].append(on_fresh("bench_apply", lambda url: asyncio.run(asyncpg_floor(text, url))))
            results["psql"].append(on_fresh("bench_apply", lambda url: psql(script, url)))
            results["in"].append(on_fresh("bench_apply", lambda url: asyncio.run(schemalog_in_process(log_url, url))))
            results["cmd"].append(on_fresh("bench_apply", lambda url: schemalog_command(log_url, url)))
            results["alembic"].append(on_fresh("bench_apply", lambda url: alembic_upgrade(folder, url)))
            results["plan"].append(on_fresh("bench_apply", lambda url: asyncio.run(schemalog_plan_only(log_url, url))))
    med = {k: statistics.median(v) for k, v in results.items()}
    base = med["floor"]
    print(f"{args.tables:,} tables, {len(statements):,} statements; median of {args.repeat}, a fresh database each")
    print(f"| {'contender':<58} | {'seconds':>8} | {'vs floor':>8} |")
    print(f"|{'-' * 60}|{'-' * 9}:|{'-' * 9}:|")
    rows = [
        ("asyncpg, the same DDL in one message (the floor)", med["floor"]),
        ("psql -1 -f (same DDL, one transaction, a new process)", med["psql"]),
        ("schemalog migrate (in process: checked, marker, outcome)", med["in"]),
        ("schemalog migrate (command, new process)", med["cmd"]),
        ("alembic upgrade head (autogenerated revision)", med["alembic"]),
        ("schemalog migrate --plan (read, plan, check; no DDL)", med["plan"]),
    ]
    for label, seconds in rows:
        print(f"| {label:<58} | {seconds:8.3f} | {seconds / base:7.2f}x |")
    verdict = "PASS" if med["in"] <= 1.3 * base else "FAIL"
    print(f"goal schemalog migrate within 1.3x of the floor: {verdict} ({med['in'] / base:.2f}x)")


if __name__ == "__main__":
    main()
