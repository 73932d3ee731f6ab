"""8 writer processes x 1,000 changesets on one PostgreSQL log: each recorded once, gapless, verifiable."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import pytest
import structlog

from events.catalog import TableCreated
from events.envelope import Changeset
from events.model import Column
from events.store import verify_store
from events.store.postgres import PostgresStore
from projections.schema import Projector
from service.cli import main

ROOT = Path(__file__).resolve().parents[1]
WRITERS, EACH, STREAMS = 8, 1000, ["s1", "s2", "s3", "s4"]


@pytest.mark.slow
@pytest.mark.postgres
def test_concurrent_writers(pg_url: str) -> None:
    async def setup() -> None:
        store = await PostgresStore.open(pg_url)
        await store.init()
        for s in STREAMS:
            await store.append(
                Changeset(
                    stream=s,
                    actor="setup",
                    expected_version=0,
                    events=(TableCreated(table="t", columns=(Column(name="id", type="integer"),)),),
                )
            )
        await store.close()

    asyncio.run(setup())
    started = time.monotonic()
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.concurrency_worker", pg_url, str(w), str(EACH), ",".join(STREAMS)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(WRITERS)
    ]
    results = [p.communicate(timeout=600) for p in procs]
    for p, (_out, err) in zip(procs, results, strict=True):
        assert p.returncode == 0, err
    conflicts = sum(int(out.split()[0]) for out, _ in results)
    elapsed = time.monotonic() - started

    async def check() -> None:
        store = await PostgresStore.open(pg_url)
        conn = await asyncpg.connect(pg_url)
        try:
            ids = await conn.fetch("SELECT changeset_id, count(*) AS n FROM schemalog_events GROUP BY changeset_id")
            counts = {r["changeset_id"]: r["n"] for r in ids}
            expected = {f"w{w}-{i}" for w in range(WRITERS) for i in range(EACH)}
            assert expected <= set(counts)
            assert all(counts[c] == 1 for c in expected)  # each changeset exactly once
            assert len(counts) == WRITERS * EACH + len(STREAMS)
            for s in STREAMS:
                rows = await conn.fetch(
                    "SELECT version, position FROM schemalog_events WHERE stream=$1 ORDER BY version", s
                )
                assert [r["version"] for r in rows] == list(range(1, len(rows) + 1))  # gapless
                positions = [r["position"] for r in rows]
                assert positions == sorted(positions)
                assert await store.version(s) == len(rows)
                _, schema = await Projector(store).schema(s)  # the stream still folds
                assert len(schema.tables["t"].columns) == len(rows)
            report = await verify_store(store)
            assert report.ok, report.problems[:5]
            assert report.events == WRITERS * EACH + len(STREAMS)
        finally:
            await conn.close()
            await store.close()

    asyncio.run(check())
    assert main(["--store", pg_url, "verify"]) == 0
    structlog.get_logger("tests").info(
        "concurrent_writers", writers=WRITERS, changesets=EACH, seconds=round(elapsed, 1), conflicts=conflicts
    )
