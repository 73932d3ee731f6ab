"""``make run``: the product on the embedded default, in one command.

On the SQLite store (``./schemalog.db``, or ``--store``): a small sample history on first run (four
changesets by two people: a table, a second table with a foreign key, a column added then renamed, a
tag), a sample SQLite database (``./sample.db``) in the fleet, and a fresh admin token for the web UI
(the previous ``make-run`` token revoked). Then ``schemalog serve`` and ``schemalog daemon`` run as
child processes until Ctrl-C (or SIGTERM), which stops both cleanly; the URL and the token are printed
once the server listens.

    python -m service.quickstart [--store URL] [--port 8000] [--sample-db PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

TOKEN_NAME = "make-run"
SAMPLE_STREAM = "app"

_USERS = {
    "type": "table_created",
    "table": "users",
    "columns": [
        {"name": "id", "type": "bigint", "nullable": False, "identity": True},
        {"name": "email", "type": "varchar(255)", "nullable": False},
    ],
    "primary_key": ["id"],
}
_POSTS = {
    "type": "table_created",
    "table": "posts",
    "columns": [
        {"name": "id", "type": "bigint", "nullable": False, "identity": True},
        {"name": "author_id", "type": "bigint", "nullable": False},
        {"name": "title", "type": "varchar(200)", "nullable": False},
        {"name": "body", "type": "text"},
    ],
    "primary_key": ["id"],
}
_POSTS_FK = {
    "type": "constraint_added",
    "table": "posts",
    "constraint": {
        "name": "posts_author_fk",
        "kind": "foreign_key",
        "columns": ["author_id"],
        "references": {"table": "users", "columns": ["id"]},
    },
}

SAMPLE_HISTORY: list[tuple[str, str, list[dict[str, Any]]]] = [
    ("alice", "users can sign up", [_USERS, {"type": "index_created", "table": "users",
     "index": {"name": "users_email_key", "columns": ["email"], "unique": True}}]),
    ("bob", "users write posts", [_POSTS, _POSTS_FK]),
    ("alice", "users get a display name", [
        {"type": "column_added", "table": "users", "column": {"name": "display_name", "type": "varchar(100)"}}]),
    ("bob", "display name is the full name", [
        {"type": "column_renamed", "table": "users", "column": "display_name", "new_name": "full_name"}]),
]  # fmt: skip


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="make run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", default=os.environ.get("SCHEMALOG_STORE", "sqlite:///schemalog.db"))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("SCHEMALOG_PORT", "8000")))
    parser.add_argument("--sample-db", default="sample.db", help="the sample database's file (sample.db)")
    parser.add_argument("--poll-interval", type=float, default=1.0, help="the daemon's poll interval (1)")
    return parser.parse_args(argv)


async def prepare(store_url: str, sample_db: Path) -> tuple[str, bool]:
    """The store made (or upgraded), the sample history and database on first run, a new token:
    (the token's text, whether the sample was written now)."""
    from events.catalog import parse_event
    from events.envelope import Changeset
    from events.fleet import DatabaseRegistered
    from events.store import open_store
    from service.app import fleet as app_fleet
    from service.app import streams as app_streams
    from service.app import tokens as app_tokens

    store = await open_store(store_url, create=True)
    try:
        await store.init()
        fresh = await store.version(SAMPLE_STREAM) == 0
        if fresh:
            for actor, message, events in SAMPLE_HISTORY:
                changeset = Changeset(
                    stream=SAMPLE_STREAM,
                    actor=actor,
                    message=message,
                    events=tuple(parse_event(e) for e in events),
                )
                await app_streams.append_changeset(store, changeset)
            await app_streams.create_tag(store, SAMPLE_STREAM, "release-1", actor="bob", at="3")
        view = await app_fleet.fleet_view(store)
        if "sample" not in view.databases:
            event = DatabaseRegistered(name="sample", url=f"sqlite:///{sample_db.resolve()}", stream=SAMPLE_STREAM)
            await app_fleet.register(store, "make-run", event)
        auth = await app_tokens.auth_view(store, approvals=False)
        if TOKEN_NAME in auth.live_names:
            await app_tokens.revoke_token(store, TOKEN_NAME, actor="make-run")
        text, _info = await app_tokens.create_token(
            store, name=TOKEN_NAME, role="admin", streams=None, expires_in=None, actor="make-run"
        )
        return text, fresh
    finally:
        await store.close()


class Child:
    """A child process whose JSON log lines on stderr are read as they come; ``ready`` is set by the first
    line ``is_ready`` accepts."""

    def __init__(self, name: str, command: list[str], is_ready: Any):
        self.name = name
        env = {**os.environ, "SCHEMALOG_LOG_FORMAT": "json", "SCHEMALOG_LOG_LEVEL": "info"}
        self.proc = subprocess.Popen(
            command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env, start_new_session=True
        )
        self.ready = threading.Event()
        self.ready_line: dict[str, Any] = {}
        self.last_lines: list[str] = []
        self._is_ready = is_ready
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            self.last_lines = [*self.last_lines[-9:], raw.rstrip()]
            try:
                line = json.loads(raw)
            except ValueError:
                continue
            if isinstance(line, dict) and not self.ready.is_set() and self._is_ready(line):
                self.ready_line = line
                self.ready.set()
        self.ready.set()  # it ended: whoever waits looks at poll()

    def stop(self, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(5)


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "service.cli", *args]


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    from service.logging import configure

    configure("warning")
    try:
        token, fresh = asyncio.run(prepare(args.store, Path(args.sample_db)))
    except (OSError, ValueError) as exc:
        sys.stderr.write(f"make run: {exc}\n")
        return 2
    serve = Child(
        "serve",
        _cli("serve", "--store", args.store, "--host", args.host, "--port", str(args.port)),
        lambda line: line.get("event") == "listening",
    )
    daemon = Child(
        "daemon",
        _cli("daemon", "--store", args.store, "--replica", "make-run", "--poll-interval", str(args.poll_interval)),
        lambda line: line.get("event") == "daemon_started",
    )
    stop = threading.Event()

    def on_signal(_signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        for child in (serve, daemon):
            while not child.ready.wait(0.2):
                if stop.is_set():
                    return 130
            if child.proc.poll() is not None:
                sys.stderr.write(f"make run: {child.name} ended (exit {child.proc.returncode}):\n")
                sys.stderr.write("\n".join(child.last_lines) + "\n")
                return 1
        url = serve.ready_line.get("url", f"http://{args.host}:{args.port}")
        sample = "a sample history (stream app) and " if fresh else ""
        sys.stdout.write(
            f"schemalog is running: {sample}the database 'sample' kept in line by the daemon.\n\n"
            f"  open      {url}/\n"
            f"  sign in   {token}\n\n"
            f"(an admin token, shown once; Ctrl-C stops the server and the daemon)\n"
        )
        sys.stdout.flush()
        while not stop.wait(0.5):
            for child in (serve, daemon):
                if child.proc.poll() is not None:
                    sys.stderr.write(f"make run: {child.name} ended (exit {child.proc.returncode}):\n")
                    sys.stderr.write("\n".join(child.last_lines) + "\n")
                    return 1
        return 0
    finally:
        codes = {child.name: child.stop() for child in (daemon, serve)}
        unclean = {name: code for name, code in codes.items() if code not in (0, -signal.SIGTERM)}
        if stop.is_set():
            sys.stdout.write("stopped" + (f" ({unclean})" if unclean else "") + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
