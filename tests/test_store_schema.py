"""The store's own layout is versioned (schemalog_meta.store_schema; events/store/base.py STORE_SCHEMA).

- A store of an older layout (the first release's, without schemalog_meta: the SQL committed in
  tests/test_tamper.py) is refused by serve and the daemon with "run `schemalog init`", and upgraded in
  place by ``init`` (two at once on PostgreSQL too), its events kept, then verified.
- A store of a newer layout than this schemalog knows is refused by every process, with one line and
  exit 2, before anything is written; a process already running when the store is upgraded under it stops
  (the daemon: exit 2) or turns unready (serve: /readyz 503, its watchdog pings withheld).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest

from events.catalog import TableCreated
from events.envelope import Changeset
from events.model import Column
from events.store import open_store
from events.store.base import STORE_SCHEMA, StoreError
from service.cli import main
from tests.deploy_harness import ROOT, NotifySocket, Proc, get, wait_http
from tests.servers import postgres_database_url
from tests.test_tamper import OLD_POSTGRES, OLD_SQLITE

NEWER = STORE_SCHEMA + 1
NEWER_LINE = f"the store's schema is version {NEWER}; this schemalog knows up to {STORE_SCHEMA}: upgrade schemalog"
OLDER_LINE = "run `schemalog init` to upgrade the store"
STOPPED = (0, -signal.SIGTERM)
"""How serve ends on SIGTERM: uvicorn re-raises the signal once it has shut down (systemd counts it clean)."""


@pytest.fixture(autouse=True)
def _keys_outside(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SCHEMALOG_SNAPSHOT_KEY", "the tests' snapshot key")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.chdir(tmp_path)


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def sql(url: str, statement: str) -> None:
    """A statement on the store's database, as its owner runs one (the layout raised, an old layout made)."""
    if url.startswith("postgresql"):

        async def go() -> None:
            conn = await asyncpg.connect(url)
            try:
                await conn.execute(statement)
            finally:
                await conn.close()

        asyncio.run(go())
    else:
        conn = sqlite3.connect(url[len("sqlite:///") :])
        try:
            conn.executescript(statement)
        finally:
            conn.close()


def raw_dump(url: str) -> list[tuple[str, list[str]]]:
    """Every row of the store's tables as text, read around the store's code (which refuses a newer store)."""
    tables = ("schemalog_events", "schemalog_streams", "schemalog_changesets", "schemalog_snapshots", "schemalog_meta")
    if url.startswith("postgresql"):

        async def go() -> list[tuple[str, list[str]]]:
            conn = await asyncpg.connect(url)
            try:
                return [(t, sorted(str(tuple(r)) for r in await conn.fetch(f"SELECT * FROM {t}"))) for t in tables]
            finally:
                await conn.close()

        return asyncio.run(go())
    conn = sqlite3.connect(url[len("sqlite:///") :])
    try:
        return [(t, sorted(str(r) for r in conn.execute(f"SELECT * FROM {t}"))) for t in tables]
    finally:
        conn.close()


def store_ids(url: str) -> list[str]:
    """The store's identity rows (none before layout 2), read around the store's code."""
    query = "SELECT store_id FROM schemalog_meta"
    if url.startswith("postgresql"):

        async def go() -> list[str]:
            conn = await asyncpg.connect(url)
            try:
                if await conn.fetchval("SELECT to_regclass('schemalog_meta') IS NULL"):
                    return []
                return [r[0] for r in await conn.fetch(query)]
            finally:
                await conn.close()

        return asyncio.run(go())
    conn = sqlite3.connect(url[len("sqlite:///") :])
    try:
        if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'schemalog_meta'").fetchone():
            return []
        return [r[0] for r in conn.execute(query)]
    finally:
        conn.close()


def append(url: str, stream: str, table: str) -> None:
    async def go() -> None:
        store = await open_store(url, create=False)
        try:
            changeset = Changeset(
                stream=stream,
                actor="t",
                events=(TableCreated(table=table, columns=(Column(name="id", type="integer"),)),),
            )
            await store.append(changeset, now=datetime(2026, 12, 1, tzinfo=UTC))
        finally:
            await store.close()

    asyncio.run(go())


def layout(url: str) -> int:
    async def go() -> int:
        store = await open_store(url, create=False)
        try:
            return await store.stored_schema()
        finally:
            await store.close()

    return asyncio.run(go())


def first_layout(url: str) -> None:
    """A store as the first release's init made it (no schemalog_meta), with events in it."""
    sql(url, OLD_POSTGRES if url.startswith("postgresql") else OLD_SQLITE)
    append(url, "app", "users")


def env_for(url: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "SCHEMALOG_STORE": url,
        "SCHEMALOG_LOG_FORMAT": "json",
        "SCHEMALOG_LOG_LEVEL": "info",
        "SCHEMALOG_SNAPSHOT_KEY": "the tests' snapshot key",
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        **extra,
    }


def run(url: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "service.cli", *args],
        cwd=ROOT,
        env=env_for(url, tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )


def one_line_refusal(done: subprocess.CompletedProcess[str], phrase: str) -> None:
    lines = [line for line in done.stderr.splitlines() if line.startswith("schemalog:")]
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert len(lines) == 1 and phrase in lines[0], done.stderr
    assert "Traceback" not in done.stderr


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'log.db'}"
    else:
        with postgres_database_url() as pg:
            yield pg


def test_an_older_store_is_refused_by_the_services_and_upgraded_by_init(
    url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first_layout(url)
    assert layout(url) == 1
    # the long-running processes, which never change the layout, refuse it: one line, exit 2
    one_line_refusal(run(url, tmp_path, "serve", "--port", "0"), OLDER_LINE)
    one_line_refusal(run(url, tmp_path, "daemon"), OLDER_LINE)
    assert layout(url) == 1
    # init upgrades it in place, once (idempotent), keeping every event; verify walks the chains
    for _ in range(2):
        code, out, _ = cli(capsys, "--store", url, "init")
        assert code == 0, out
    assert layout(url) == STORE_SCHEMA
    code, out, _ = cli(capsys, "--store", url, "history", "--json")
    assert code == 0 and '"users"' in out  # the event written before the upgrade
    code, out, _ = cli(capsys, "--store", url, "verify")
    assert code == 0, out
    # and now serve runs on it
    serve = Proc("serve", [sys.executable, "-m", "service.cli", "serve", "--port", "0"], env_for(url, tmp_path), ROOT)
    try:
        base = serve.wait_for(lambda line: line.get("event") == "listening", 30)["url"]
        status, body = wait_http(base + "/readyz", serve)
        assert status == 200 and f'"store_schema":{STORE_SCHEMA}' in body
    finally:
        assert serve.stop() in STOPPED


def test_a_newer_store_is_refused_by_every_process_and_left_as_it_is(
    url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(capsys, "--store", url, "init")[0] == 0
    append(url, "app", "users")
    sql(url, f"UPDATE schemalog_meta SET store_schema = {NEWER}")  # what a newer schemalog's init leaves
    before = raw_dump(url)
    assert before[0][1], "the event appended"
    changeset = tmp_path / "c.json"
    changeset.write_text('{"stream": "app", "events": [{"type": "table_dropped", "table": "users"}]}')
    for args in (("history",), ("verify",), ("init",), ("append", "--actor", "t", str(changeset)), ("status",)):
        code, _, err = cli(capsys, "--store", url, *args)
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and NEWER_LINE in lines[0], (args, code, err)
    one_line_refusal(run(url, tmp_path, "serve", "--port", "0"), NEWER_LINE)
    one_line_refusal(run(url, tmp_path, "daemon"), NEWER_LINE)
    assert raw_dump(url) == before  # nothing written, the layout still the newer one


def test_init_refuses_a_store_upgraded_by_a_newer_schemalog_after_it_was_opened(url: str) -> None:
    """The check inside init itself (PostgreSQL: under its advisory lock), not only the one at open."""

    async def go() -> str:
        store = await open_store(url, create=True)
        try:
            await store.init()
            await asyncio.to_thread(sql, url, f"UPDATE schemalog_meta SET store_schema = {NEWER}")  # a newer init
            with pytest.raises(StoreError) as refused:
                await store.init()
            return str(refused.value)
        finally:
            await store.close()

    assert NEWER_LINE in asyncio.run(go())
    assert layout_raw(url) == NEWER


def layout_raw(url: str) -> int:
    rows = [r for t, rows in raw_dump(url) if t == "schemalog_meta" for r in rows]
    assert len(rows) == 1
    return int(rows[0].split(",")[2])


def test_processes_running_when_a_newer_schemalog_upgrades_the_store(tmp_path: Path) -> None:
    """serve turns unready and withholds its watchdog pings; the daemon stops with the line, exit 2."""
    with postgres_database_url() as url:
        assert run(url, tmp_path, "init").returncode == 0
        notify = NotifySocket(str(tmp_path / "notify"))
        env = env_for(url, tmp_path, NOTIFY_SOCKET=notify.address, WATCHDOG_USEC="400000")
        serve = Proc("serve", [sys.executable, "-m", "service.cli", "serve", "--port", "0"], env, ROOT)
        argv = [sys.executable, "-m", "service.cli", "daemon", "--poll-interval", "0.2"]
        daemon = Proc("daemon", argv, env_for(url, tmp_path), ROOT)
        try:
            base = serve.wait_for(lambda line: line.get("event") == "listening", 30)["url"]
            notify.wait_for("WATCHDOG=1", 30, after="READY=1")
            daemon.wait_for(lambda line: line.get("event") == "daemon_started", 30)
            assert wait_http(base + "/readyz", serve)[0] == 200

            sql(url, f"UPDATE schemalog_meta SET store_schema = {NEWER}")

            assert daemon.wait_exit(30) == 2
            daemon.wait_for(lambda line: line.get("event") == "store_schema_newer" and line["error"] == NEWER_LINE, 1)
            serve.wait_for(lambda line: line.get("event") == "watchdog_withheld", 30)
            status, body = get(base + "/readyz")
            assert status == 503 and NEWER_LINE in body
        finally:
            serve.stop()
            daemon.stop()
            notify.close()


# --------------------------------------------------------------------------- every layout committed

FIXTURES = ROOT / "tests/fixtures/store_schema"
"""``N.sqlite.sql`` and ``N.postgresql.sql``: the SQL the code of layout N ran to make a store, committed when
N was the newest (``python -m tests.test_store_schema`` writes the current one). Layout 1 is
tests/test_tamper.py's OLD_SQLITE and OLD_POSTGRES (the first release's)."""


def layout_sql(backend: str) -> str:
    """The SQL this code's init runs on an empty database (the store's identity fixed, for a stable file)."""
    if backend == "postgresql":
        from events.store import postgres

        return postgres.SCHEMA_SQL + postgres.GUARD_SQL
    from events.store import sqlite

    script = sqlite._init_script("00000000-0000-4000-8000-000000000000", "2026-12-01T00:00:00.000000Z")
    return script.removeprefix("BEGIN IMMEDIATE;").removesuffix("COMMIT;")


def committed_layouts(backend: str) -> list[tuple[int, str]]:
    layouts = [(1, OLD_POSTGRES if backend == "postgresql" else OLD_SQLITE)]
    for path in sorted(FIXTURES.glob(f"*.{backend}.sql"), key=lambda p: int(p.name.split(".")[0])):
        layouts.append((int(path.name.split(".")[0]), path.read_text()))
    return layouts


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_newest_committed_layout_is_the_code_s(backend: str) -> None:
    """Changing the store's SQL without a new STORE_SCHEMA (and its file here) fails: a store made before
    the change would pass for one of the new layout."""
    path = FIXTURES / f"{STORE_SCHEMA}.{backend}.sql"
    assert path.exists(), f"no {path.name}: a new STORE_SCHEMA commits its layout (python -m tests.test_store_schema)"
    assert path.read_text() == layout_sql(backend), f"{path.name} differs from the code's layout: bump STORE_SCHEMA"
    assert max(n for n, _ in committed_layouts(backend)) == STORE_SCHEMA


def test_every_committed_layout_is_upgraded_by_init_and_verifies(
    url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each layout made as its code made it (in a database of its own), events written at that layout, then
    this schemalog's init: the store is at this layout, its events and identity kept, verify passes."""
    backend = "postgresql" if url.startswith("postgresql") else "sqlite"
    for n, text in committed_layouts(backend):
        if backend == "postgresql":
            target_cm = postgres_database_url()
            target = target_cm.__enter__()
        else:
            target_cm, target = None, f"sqlite:///{tmp_path / f'layout{n}.db'}"
        try:
            sql(target, text)
            assert layout(target) == n
            append(target, "app", "users")
            identity = store_ids(target)
            assert len(identity) == (0 if n == 1 else 1)
            code, out, err = cli(capsys, "--store", target, "init")
            assert code == 0, err
            assert layout(target) == STORE_SCHEMA
            assert len(store_ids(target)) == 1 and store_ids(target)[: len(identity)] == identity  # kept, or made
            code, out, err = cli(capsys, "--store", target, "history", "--json")
            assert code == 0 and '"users"' in out, (n, err)
            code, out, err = cli(capsys, "--store", target, "verify")
            assert code == 0, (n, out, err)
        finally:
            if target_cm is not None:
                target_cm.__exit__(None, None, None)


def test_two_inits_upgrade_an_older_store_at_once(tmp_path: Path) -> None:
    with postgres_database_url() as url:
        first_layout(url)
        argv = [sys.executable, "-m", "service.cli", "init"]
        inits = [subprocess.Popen(argv, cwd=ROOT, env=env_for(url, tmp_path), stderr=subprocess.PIPE, text=True)]
        inits.append(subprocess.Popen(argv, cwd=ROOT, env=env_for(url, tmp_path), stderr=subprocess.PIPE, text=True))
        results = [(p.wait(60), p.stderr.read() if p.stderr else "") for p in inits]
        assert [code for code, _ in results] == [0, 0], results
        done = run(url, tmp_path, "verify")
        assert done.returncode == 0, done.stderr

        async def meta_rows() -> list[tuple[int, str]]:
            conn = await asyncpg.connect(url)
            try:
                return [(r["store_schema"], r["store_id"]) for r in await conn.fetch("SELECT * FROM schemalog_meta")]
            finally:
                await conn.close()

        rows = asyncio.run(meta_rows())
        assert len(rows) == 1 and rows[0][0] == STORE_SCHEMA


if __name__ == "__main__":  # commit the current layout: python -m tests.test_store_schema
    FIXTURES.mkdir(parents=True, exist_ok=True)
    for name in ("sqlite", "postgresql"):
        (FIXTURES / f"{STORE_SCHEMA}.{name}.sql").write_text(layout_sql(name))
        print(f"wrote {FIXTURES / f'{STORE_SCHEMA}.{name}.sql'}")  # noqa: T201
