"""The command line as a user runs it: whole-process time and peak memory of `schemalog` commands.

Every contender is a new process started cold (nothing of it kept between runs), timed the same way:
wall clock from spawn to exit, peak resident memory (ru_maxrss of that child, from os.wait4); one
untimed run first (the OS's file cache, the first snapshots a fold takes), then the median of
``--repeat`` runs, and the ratio to ``python -c pass`` (the interpreter's own start).

- ``schemalog --help`` and ``--version``;
- ``schemalog show`` and ``schemalog history`` (every event listed, to /dev/null) on a SQLite store of
  N events (bench/append.py's valid stream, loaded in bulk: 50 tables, then comment changes);
- a no-op ``schemalog migrate`` of a SQLite database already at head with 1,000 tables (one
  changeset a table), beside ``alembic check`` and ``alembic history`` on the same schema (an alembic
  environment made here, one revision a table, the models as SQLAlchemy tables for ``check``), all
  against databases already at head.

    .venv/bin/pip install -e '.[bench]'
    .venv/bin/python bench/cli.py [--sizes 10000,100000] [--repeat 7] [--tables 1000]
    .venv/bin/python bench/cli.py --sizes 10000,100000,1000000      # the full run
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import structlog

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from append import LATENCY_STREAM, build_sqlite, log_progress, sizes_list  # noqa: E402

from events.catalog import IndexCreated, TableCreated  # noqa: E402
from events.envelope import Changeset  # noqa: E402
from events.log import EventLog  # noqa: E402
from events.model import Column, Index  # noqa: E402
from events.store import open_store  # noqa: E402
from projections.schema import SNAPSHOT_KEY_ENV, Projector  # noqa: E402

BIN = Path(sys.executable).parent
SCHEMALOG = str(BIN / "schemalog")
ALEMBIC = str(BIN / "alembic")
TIME = "/usr/bin/time"
DEFAULT_SIZES = "10000,100000"
PER_CHANGESET = 100
MIGRATE_STREAM = "app"
GOALS = {"schemalog --help": 3.0, "schemalog --version": 3.0, "show": 5.0, "history": 5.0}
"""Issue 14: --help and --version within 3x of python -c pass; show and history within 5x (small store)."""


@dataclass
class Measured:
    label: str
    seconds: list[float]
    peak_kb: list[int]

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


def run_once(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, int]:
    """One cold process: (wall seconds, its peak RSS in KB).

    Started through /usr/bin/time, which reports its child's own ru_maxrss: a child forked from this
    process (subprocess, posix_spawn) would count this process's memory in its peak (Linux carries
    the high-water mark over exec). The same small C launcher is in every contender's time.
    """
    with tempfile.NamedTemporaryFile("r", prefix="rss-", suffix=".txt") as report:
        started = time.perf_counter()
        done = subprocess.run(
            [TIME, "-f", "%M", "-o", report.name, *argv], cwd=cwd, env=env, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, check=False,
        )  # fmt: skip
        elapsed = time.perf_counter() - started
        if done.returncode != 0:
            why = done.stderr.decode(errors="replace").strip()
            raise SystemExit(f"{' '.join(argv)} exited {done.returncode}: {why}")
        peak = int(report.read().split()[-1])
    return elapsed, peak


def measure(label: str, argv: list[str], cwd: Path, env: dict[str, str], repeat: int) -> Measured:
    run_once(argv, cwd, env)  # untimed: the file cache, a first fold's snapshots
    found = Measured(label, [], [])
    for _ in range(repeat):
        seconds, peak = run_once(argv, cwd, env)
        found.seconds.append(seconds)
        found.peak_kb.append(peak)
    log_progress(f"{label}: {found.median * 1000:.0f} ms")
    return found


# --------------------------------------------------------------------------- the 1,000-table schema


COLUMNS = (
    ("id", "bigint", False),
    ("name", "varchar(100)", False),
    ("note", "text", True),
    ("amount", "integer", True),
)


def table_events(i: int) -> tuple[TableCreated, IndexCreated]:
    name = f"t{i:04d}"
    created = TableCreated(
        table=name,
        columns=tuple(Column(name=c, type=t, nullable=n) for c, t, n in COLUMNS),
        primary_key=("id",),
    )
    return created, IndexCreated(table=name, index=Index(name=f"ix_{name}_name", columns=("name",)))


async def build_migrate_store(path: Path, tables: int) -> None:
    """A SQLite store whose stream ``app`` creates ``tables`` tables, one changeset (table + index) each."""
    store = await open_store(f"sqlite:///{path}")
    await store.init()
    log = EventLog(store, Projector(store))
    for i in range(tables):
        await log.append(Changeset(stream=MIGRATE_STREAM, actor="bench", message=f"table {i}", events=table_events(i)))
    await store.close()


ALEMBIC_INI = """\
[alembic]
script_location = {folder}/migrations
sqlalchemy.url = sqlite:///{folder}/alembic_target.db

[loggers]
keys = root

[handlers]
keys = console

[formatters]
keys = generic

[logger_root]
level = WARNING
handlers = console

[handler_console]
class = StreamHandler
args = (sys.stderr,)
formatter = generic

[formatter_generic]
format = %(levelname)s %(message)s
"""

ALEMBIC_ENV = """\
from alembic import context
from sqlalchemy import engine_from_config, pool

from models import metadata

config = context.config

section = config.get_section(config.config_ini_section)
connectable = engine_from_config(section, prefix="sqlalchemy.", poolclass=pool.NullPool)
with connectable.connect() as connection:
    context.configure(connection=connection, target_metadata=metadata)
    with context.begin_transaction():
        context.run_migrations()
"""

ALEMBIC_MODELS_HEAD = """\
import sqlalchemy as sa

metadata = sa.MetaData()


def table(name):
    return sa.Table(
        name,
        metadata,
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("note", sa.Text),
        sa.Column("amount", sa.Integer),
        sa.Index(f"ix_{name}_name", "name"),
    )


"""

ALEMBIC_REVISION = '''\
"""table {name}"""
import sqlalchemy as sa
from alembic import op

revision = "{rev}"
down_revision = {down!r}
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "{name}",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("note", sa.Text),
        sa.Column("amount", sa.Integer),
    )
    op.create_index("ix_{name}_name", "{name}", ["name"])


def downgrade():
    op.drop_index("ix_{name}_name", table_name="{name}")
    op.drop_table("{name}")
'''


def build_alembic(folder: Path, tables: int) -> None:
    """An alembic environment in ``folder``: one revision a table, the same tables as models."""
    versions = folder / "migrations" / "versions"
    versions.mkdir(parents=True)
    (folder / "alembic.ini").write_text(ALEMBIC_INI.format(folder=folder))
    (folder / "migrations" / "env.py").write_text(ALEMBIC_ENV)
    (folder / "migrations" / "script.py.mako").write_text("")
    names = [f"t{i:04d}" for i in range(tables)]
    (folder / "models.py").write_text(ALEMBIC_MODELS_HEAD + "".join(f"table({n!r})\n" for n in names))
    down = None
    for i, name in enumerate(names):
        rev = f"{i + 1:012x}"
        (versions / f"{rev}_{name}.py").write_text(ALEMBIC_REVISION.format(name=name, rev=rev, down=down))
        down = rev


# --------------------------------------------------------------------------- the run


def ratio_row(m: Measured, floor: float) -> str:
    peak = statistics.median(m.peak_kb) / 1024
    ms, worst = m.median * 1000, max(m.seconds) * 1000
    return f"| {m.label:<52} | {ms:8.0f} | {worst:8.0f} | {peak:8.1f} | {m.median / floor:6.1f}x |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--sizes", type=sizes_list, default=sizes_list(DEFAULT_SIZES), help="store sizes: 10000,100000,1000000"
    )
    parser.add_argument("--repeat", type=int, default=7, help="timed runs per contender (median shown)")
    parser.add_argument("--tables", type=int, default=1000, help="tables of the migrate and alembic schema")
    parser.add_argument("--no-alembic", action="store_true", help="skip the migrate / alembic comparison")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    key = os.environ.get(SNAPSHOT_KEY_ENV) or secrets.token_hex(32)
    os.environ[SNAPSHOT_KEY_ENV] = key
    results: list[Measured] = []
    with tempfile.TemporaryDirectory(prefix="schemalog-bench-cli-") as tmp:
        folder = Path(tmp)
        env = {**os.environ, SNAPSHOT_KEY_ENV: key, "HOME": tmp}
        env.pop("SCHEMALOG_STORE", None)
        floor = measure("python -c pass", [sys.executable, "-c", "pass"], folder, env, args.repeat)
        results.append(floor)
        results.append(measure("schemalog --help", [SCHEMALOG, "--help"], folder, env, args.repeat))
        results.append(measure("schemalog --version", [SCHEMALOG, "--version"], folder, env, args.repeat))
        for size in args.sizes:
            place = folder / f"n{size}"
            place.mkdir()
            log_progress(f"building a SQLite store of {size:,} events")
            store, raw, _peer = asyncio.run(build_sqlite(size, PER_CHANGESET, False, str(place)))
            asyncio.run(raw.close())
            asyncio.run(store.close())
            url = f"sqlite:///{place / 'store.db'}"
            base = [SCHEMALOG, "--store", url]
            results.append(
                measure(
                    f"schemalog show, {size:,} events",
                    [*base, "show", "--stream", LATENCY_STREAM],
                    place,
                    env,
                    args.repeat,
                )
            )
            results.append(
                measure(
                    f"schemalog history, {size:,} events (all listed)",
                    [*base, "history", "--stream", LATENCY_STREAM],
                    place,
                    env,
                    args.repeat,
                )
            )
        if not args.no_alembic:
            place = folder / "migrate"
            place.mkdir()
            log_progress(f"building a store of {args.tables:,} tables and bringing a SQLite database to its head")
            asyncio.run(build_migrate_store(place / "store.db", args.tables))
            migrate = [
                SCHEMALOG, "--store", f"sqlite:///{place / 'store.db'}", "migrate",
                "--url", f"sqlite:///{place / 'target.db'}", "--stream", MIGRATE_STREAM,
            ]  # fmt: skip
            run_once(migrate, place, env)  # to head: every table created
            results.append(
                measure(f"schemalog migrate, no-op, {args.tables:,} tables", migrate, place, env, args.repeat)
            )
            log_progress(f"building an alembic environment of {args.tables:,} revisions and upgrading to head")
            build_alembic(place, args.tables)
            alembic_env = {**env, "PYTHONPATH": str(place)}
            alembic = [ALEMBIC, "-c", str(place / "alembic.ini")]
            run_once([*alembic, "upgrade", "head"], place, alembic_env)
            results.append(
                measure(f"alembic check, {args.tables:,} tables", [*alembic, "check"], place, alembic_env, args.repeat)
            )
            results.append(
                measure(
                    f"alembic history, {args.tables:,} revisions",
                    [*alembic, "history"],
                    place,
                    alembic_env,
                    args.repeat,
                )
            )
    base_floor = floor.median
    print(f"whole processes, cold; median of {args.repeat} runs (one untimed run first); peak RSS of the child")
    print(f"| {'command':<52} | {'ms':>8} | {'max ms':>8} | {'peak MB':>8} | {'vs pass':>7} |")
    print(f"|{'-' * 54}|{'-' * 9}:|{'-' * 9}:|{'-' * 9}:|{'-' * 8}:|")
    for m in results:
        print(ratio_row(m, base_floor))
    smallest = f"{args.sizes[0]:,} events"
    for m in results:
        goal = next(
            (
                g
                for key, g in GOALS.items()
                if m.label == key or (m.label.startswith(f"schemalog {key},") and smallest in m.label)
            ),
            None,
        )
        if goal is not None:
            ratio = m.median / base_floor
            verdict = "PASS" if ratio <= goal else "FAIL"
            print(f"goal: {m.label} within {goal:.0f}x of python -c pass: {ratio:.1f}x -> {verdict}")


if __name__ == "__main__":
    main()
