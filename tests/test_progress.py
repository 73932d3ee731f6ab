"""Progress (issue 14): `-v` announces each statement as it starts and the run's phases, on stderr, while
the migrate runs; a bar on a terminal's stderr only (never with -q, never in a pipe); the observer hook.

Real processes and real databases: the CLI runs as a subprocess against SQLite and PostgreSQL targets.
"""

from __future__ import annotations

import asyncio
import os
import pty
import queue
import re
import select
import subprocess
import sys
import threading
import time
from pathlib import Path

import asyncpg
import pytest

from events.store import open_store
from service.progress import (
    BatchSent,
    Event,
    Phase,
    StatementFinished,
    StatementStarted,
    describe,
    display_for,
    shorten,
)
from service.reconciler.apply import MigrateRequest, migrate

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
BOUND = 60.0  # seconds: every wait below ends when the awaited line or exit arrives, or fails at this bound


def cli(args: list[str], cwd: Path) -> list[str]:
    return [sys.executable, "-m", "service.cli", "--store", f"sqlite:///{cwd / 'log.db'}", *args]


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "TERM": "xterm", "COLUMNS": "100", "LINES": "30"}


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cli(args, cwd), cwd=cwd, capture_output=True, text=True, env=env(), timeout=BOUND)


def log_with_two_changesets(tmp_path: Path) -> None:
    """The tour's log: v1..v2 (a table, an index), v3..v4 (a column, a data step)."""
    assert run(["init"], tmp_path).returncode == 0
    for name in ("first-changeset.json", "display-name.json"):
        done = run(["append", str(EXAMPLES / name)], tmp_path)
        assert done.returncode == 0, done.stderr


ANNOUNCED = re.compile(r"^\[(?P<db>[^\]]+)\] (?P<n>\d+)/(?P<total>\d+) v(?P<version>\d+) (?P<sql>.+)$")


def test_verbose_announces_each_statement_in_order_before_the_end(tmp_path: Path) -> None:
    log_with_two_changesets(tmp_path)
    # (a relative URL: the database's label, its URL, leaves the statement its room whatever the temp path)
    done = run(["-v", "migrate", "--url", "sqlite:///app.db", "--stream", "app"], tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    announced = [(i, m) for i, line in enumerate(lines) if (m := ANNOUNCED.match(line))]
    assert [(int(m["n"]), int(m["total"]), int(m["version"])) for _, m in announced] == [
        (1, 4, 1),
        (2, 4, 2),
        (3, 4, 3),
        (4, 4, 4),
    ]
    assert announced[0][1]["sql"].startswith("CREATE TABLE users")
    assert announced[3][1]["sql"].startswith("UPDATE users SET display_name")
    assert all(len(lines[i]) <= 120 for i, _ in announced)  # one line each, cut to a sane width

    def at(prefix: str) -> int:
        return next(i for i, line in enumerate(lines) if line.startswith(f"[sqlite:///app.db] {prefix}"))

    first, last = announced[0][0], announced[-1][0]
    assert at("locked") < at("planned: 4 statements") < at("introspected: 0 tables") < first
    assert last < at("applied: 4 statements") < at("recorded: 1 event") < at("done: applied in")
    assert at("done:") == max(i for i, line in enumerate(lines) if line.startswith("["))  # the end line is last
    assert "\x1b" not in done.stderr  # a pipe: no bar, no escape codes
    assert done.stdout.startswith("sqlite:///app.db: applied app 0 -> 4 (4 statements")


def test_without_verbose_a_pipe_gets_what_it_got_before(tmp_path: Path) -> None:
    log_with_two_changesets(tmp_path)
    done = run(["migrate", "--url", f"sqlite:///{tmp_path / 'app.db'}", "--stream", "app"], tmp_path)
    assert done.returncode == 0
    assert done.stderr == ""
    assert re.fullmatch(r"sqlite:///\S+: applied app 0 -> 4 \(4 statements, \d+ ms\)\n", done.stdout)


def test_quiet_and_verbose_do_not_go_together(tmp_path: Path) -> None:
    done = run(["-q", "-v", "show"], tmp_path)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1


# --------------------------------------------------------------------------- a bar on a terminal only


def on_a_terminal(args: list[str], cwd: Path) -> tuple[int, str, str]:
    """Run the CLI with stderr on a pseudo-terminal (stdout a pipe): (exit code, stdout, what the terminal got)."""
    leader, follower = pty.openpty()
    child = subprocess.Popen(cli(args, cwd), cwd=cwd, stdout=subprocess.PIPE, stderr=follower, env=env())
    os.close(follower)
    got = b""
    deadline = time.monotonic() + BOUND
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], deadline - time.monotonic())
            if not ready:
                break
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the child closed the terminal's last handle
                break
            if not chunk:
                break
            got += chunk
        code = child.wait(timeout=max(deadline - time.monotonic(), 1))
    finally:
        os.close(leader)
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.stdout is not None
    out = child.stdout.read().decode()
    child.stdout.close()
    return code, out, got.decode(errors="replace")


def test_a_bar_on_a_terminal_shows_statements_done_of_total(tmp_path: Path) -> None:
    log_with_two_changesets(tmp_path)
    code, out, screen = on_a_terminal(
        ["migrate", "--url", f"sqlite:///{tmp_path / 'app.db'}", "--stream", "app"], tmp_path
    )
    assert code == 0, screen
    assert "\x1b[" in screen  # drawn (and redrawn) in place
    assert "statements" in screen or "applied" in screen
    assert "4/4" in screen  # statements done of total, per database
    assert "/app.db] " in screen  # the database's name (its end), not eaten as markup
    assert re.fullmatch(r"sqlite:///\S+: applied app 0 -> 4 \(4 statements, \d+ ms\)\n", out)  # stdout as ever


def test_quiet_on_a_terminal_draws_nothing(tmp_path: Path) -> None:
    log_with_two_changesets(tmp_path)
    code, out, screen = on_a_terminal(
        ["-q", "migrate", "--url", f"sqlite:///{tmp_path / 'app.db'}", "--stream", "app"], tmp_path
    )
    assert code == 0
    assert screen == ""
    assert "applied app 0 -> 4" in out


def test_import_shows_tables_introspected(tmp_path: Path) -> None:
    import sqlite3

    with sqlite3.connect(tmp_path / "legacy.db") as conn:
        conn.execute("CREATE TABLE customers (id integer NOT NULL PRIMARY KEY)")
        conn.execute(
            "CREATE TABLE orders (id integer NOT NULL PRIMARY KEY, customer integer REFERENCES customers (id))"
        )
    assert run(["init"], tmp_path).returncode == 0
    args = ["import", "--url", f"sqlite:///{tmp_path / 'legacy.db'}", "--stream", "legacy"]
    code, out, screen = on_a_terminal(args, tmp_path)
    assert code == 0, screen
    assert "tables introspected" in screen and "2/2" in screen
    assert "baseline" in out
    verbose = run(["-v", "import", "--url", f"sqlite:///{tmp_path / 'legacy.db'}", "--stream", "legacy"], tmp_path)
    assert verbose.returncode == 0
    assert "] introspected: 2 tables" in verbose.stderr
    assert "] done: nothing" in verbose.stderr


# --------------------------------------------------------------------------- output while a statement runs


def lines_of(stream: object) -> queue.Queue[str | None]:
    """A queue of the lines a child writes to ``stream`` (None at its end), read by a thread."""
    found: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        for line in stream:  # type: ignore[attr-defined]
            found.put(line.rstrip("\n"))
        found.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return found


def wait_for(found: queue.Queue[str | None], pattern: str, seen: list[str]) -> str:
    deadline = time.monotonic() + BOUND
    while True:
        try:
            line = found.get(timeout=max(deadline - time.monotonic(), 0.01))
        except queue.Empty:
            pytest.fail(f"no line matching {pattern!r} within {BOUND:g}s; stderr so far: {seen}")
        if line is None:
            pytest.fail(f"stderr ended without a line matching {pattern!r}: {seen}")
        seen.append(line)
        if re.search(pattern, line):
            return line


async def _blocked_pids(url: str, table: str) -> list[int]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT pid FROM pg_locks WHERE NOT granted AND relation = to_regclass($1)", table)
        return [r["pid"] for r in rows]
    finally:
        await conn.close()


@pytest.mark.postgres
def test_a_blocked_statement_is_announced_while_it_waits(tmp_path: Path, pg_url: str) -> None:
    log_with_two_changesets(tmp_path)
    first = run(["migrate", "--url", pg_url, "--stream", "app", "--to", "2"], tmp_path)
    assert first.returncode == 0, first.stderr

    async def hold() -> asyncpg.Connection:
        conn = await asyncpg.connect(pg_url)
        await conn.execute("BEGIN; LOCK TABLE users IN ACCESS SHARE MODE")  # what a long SELECT holds
        return conn

    loop = asyncio.new_event_loop()
    holder = loop.run_until_complete(hold())
    child = subprocess.Popen(
        cli(["-v", "migrate", "--url", pg_url, "--stream", "app"], tmp_path),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env(),
    )
    seen: list[str] = []
    try:
        assert child.stderr is not None
        found = lines_of(child.stderr)
        wait_for(found, r"\] planned: 2 statements \(v2 -> v4\)", seen)
        line = wait_for(found, r"^\[.+\] 1/2 v3 ALTER TABLE users ADD COLUMN display_name", seen)
        assert "\n" not in line
        # announced, and still running: the ALTER waits for the lock this test holds
        deadline = time.monotonic() + BOUND
        while not loop.run_until_complete(_blocked_pids(pg_url, "users")):
            assert child.poll() is None, seen
            assert time.monotonic() < deadline, "the ALTER never waited for the lock"
            loop.run_until_complete(asyncio.sleep(0.05))
        assert child.poll() is None
        assert not any("done:" in s for s in seen)
    finally:
        loop.run_until_complete(holder.execute("ROLLBACK"))
        loop.run_until_complete(holder.close())
        loop.close()
    wait_for(found, r"\] 2/2 v4 UPDATE users", seen)
    wait_for(found, r"\] applied: 2 statements$", seen)
    wait_for(found, r"\] done: applied in ", seen)
    assert child.wait(timeout=BOUND) == 0, seen
    assert child.stdout is not None
    assert "applied app 2 -> 4 (2 statements" in child.stdout.read()
    child.stdout.close()
    child.stderr.close()
    batch = [s for s in seen if "sent in one batch" in s]
    assert batch and "statements 1-2 of 2" in batch[0]


# --------------------------------------------------------------------------- the observer hook


async def _log(tmp_path: Path) -> object:
    for args in (
        ["init"],
        ["append", str(EXAMPLES / "first-changeset.json")],
        ["append", str(EXAMPLES / "display-name.json")],
    ):
        assert run(args, tmp_path).returncode == 0
    return await open_store(f"sqlite:///{tmp_path / 'log.db'}")


async def test_the_observer_sees_phases_and_each_statement_on_sqlite(tmp_path: Path) -> None:
    await observed(tmp_path, f"sqlite:///{tmp_path / 'app.db'}", batched=False)


@pytest.mark.postgres
async def test_the_observer_sees_phases_and_each_statement_on_postgresql(tmp_path: Path, pg_url: str) -> None:
    await observed(tmp_path, pg_url, batched=True)


async def observed(tmp_path: Path, url: str, *, batched: bool) -> None:
    store = await _log(tmp_path)
    events: list[Event] = []
    try:
        outcome = await migrate(
            store,  # type: ignore[arg-type]
            MigrateRequest(url=url, stream="app", actor="t", database="main", progress=events.append),
        )
    finally:
        await store.close()  # type: ignore[attr-defined]
    assert outcome.status == "applied"
    assert {e.database for e in events} == {"main"}
    phases = [e.name for e in events if isinstance(e, Phase)]
    assert phases == ["locked", "planned", "introspecting", "introspected", "checking", "applied", "recorded", "done"]
    started = [e for e in events if isinstance(e, StatementStarted)]
    finished = [e for e in events if isinstance(e, StatementFinished)]
    assert [(e.index, e.total, e.version) for e in started] == [(0, 4, 1), (1, 4, 2), (2, 4, 3), (3, 4, 4)]
    assert [e.sql for e in started] == outcome.statements
    assert [e.index for e in finished] == [0, 1, 2, 3]
    assert all(e.seconds >= 0 for e in finished)
    for e in finished:  # each finishes after it starts
        assert events.index(e) > events.index(started[e.index])
    assert any(isinstance(e, BatchSent) for e in events) == batched


async def test_a_failing_observer_does_not_fail_the_run(tmp_path: Path) -> None:
    store = await _log(tmp_path)
    calls: list[Event] = []

    def broken(event: Event) -> None:
        calls.append(event)
        raise OSError("stderr went away")

    try:
        outcome = await migrate(
            store,  # type: ignore[arg-type]
            MigrateRequest(url=f"sqlite:///{tmp_path / 'app.db'}", stream="app", actor="t", progress=broken),
        )
    finally:
        await store.close()  # type: ignore[attr-defined]
    assert outcome.status == "applied"
    assert len(calls) == 1  # dropped after its first failure


def test_lines_are_one_line_and_cut_to_width() -> None:
    sql = "ALTER TABLE users\n   ADD COLUMN " + "x" * 500
    line = describe(StatementStarted("db", 2, 12, 5, "column_added", sql), 80)
    assert line.startswith("[db] 3/12 v5 ALTER TABLE users ADD COLUMN xxx")
    assert line.endswith("...") and len(line) == 80 and "\n" not in line
    assert shorten("a  b\tc", 10) == "a b c"
    assert describe(Phase("db", "planned", 1, "v0 -> v1")) == "[db] planned: 1 statement (v0 -> v1)"
    assert describe(Phase("db", "introspected", 3)) == "[db] introspected: 3 tables"
    assert describe(BatchSent("db", 0, 200, 450)) == "[db] statements 1-200 of 450 sent in one batch"


def test_no_display_for_a_pipe_without_verbose(tmp_path: Path) -> None:
    with open(tmp_path / "err", "w") as pipe_like:
        assert display_for(verbose=False, quiet=False, stream=pipe_like) is None
        shown = display_for(verbose=True, quiet=False, stream=pipe_like)
        assert shown is not None and not shown.bar


def test_rich_is_imported_only_for_a_bar(tmp_path: Path) -> None:
    """A -v run in a pipe and --help never import rich (start-up time); a run on a terminal does."""
    log_with_two_changesets(tmp_path)
    probe = (
        "import sys\nfrom service.cli import main\n"
        "try:\n    code = main(sys.argv[1:])\nexcept SystemExit as exc:\n    code = exc.code\n"
        "sys.stdout.write('\\nRICH ' + str(any(m.split('.')[0] == 'rich' for m in sys.modules)) + '\\n')\n"
    )
    for args in (["--help"], ["-v", "migrate", "--url", f"sqlite:///{tmp_path / 'app.db'}", "--stream", "app"]):
        done = subprocess.run(
            [sys.executable, "-c", probe, "--store", f"sqlite:///{tmp_path / 'log.db'}", *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            env=env(),
            timeout=BOUND,
        )
        assert done.stdout.rstrip().endswith("RICH False"), (args, done.stdout, done.stderr)
