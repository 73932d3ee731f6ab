"""Daemon processes for tests: started as a user starts them, their JSON log lines read as they come.

Every wait is on something a process reports (a log line) or on the state of a real database, with a
bound; nothing waits a fixed time.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


class DaemonProcess:
    def __init__(
        self,
        store_url: str,
        replica: str,
        *,
        poll: float = 1.0,
        ttl: float = 3.0,
        extra: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
    ):
        self.replica = replica
        command = [
            sys.executable,
            "-m",
            "service.cli",
            "--store",
            store_url,
            "daemon",
            "--replica",
            replica,
            "--poll-interval",
            str(poll),
            "--lease-ttl",
            str(ttl),
            "--backoff-cap",
            "2",
            *extra,
        ]
        environment = {
            **os.environ,
            "SCHEMALOG_LOG_FORMAT": "json",
            "SCHEMALOG_LOG_LEVEL": "info",
            **(env or {}),
        }
        self.proc = subprocess.Popen(
            command,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=environment,
        )
        self.lines: list[dict[str, Any]] = []
        self.killed_at: float | None = None
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            try:
                line = json.loads(raw)
                if not isinstance(line, dict):
                    line = {"raw": raw.rstrip()}
            except ValueError:
                line = {"raw": raw.rstrip()}
            line["_seen"] = time.time()
            with self._cond:
                self.lines.append(line)
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def mark(self) -> int:
        with self._cond:
            return len(self.lines)

    def wait_for(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 30.0, *, since: int = 0
    ) -> dict[str, Any]:
        """The first line from ``since`` on that satisfies ``predicate``; AssertionError after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            index = since
            while True:
                while index < len(self.lines):
                    if predicate(self.lines[index]):
                        return self.lines[index]
                    index += 1
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._reader.is_alive()):
                    tail = "\n".join(str(x) for x in self.lines[-15:])
                    raise AssertionError(f"{self.replica}: no such line within {timeout} s; last lines:\n{tail}")
                self._cond.wait(min(left, 0.5))

    def event(self, name: str, timeout: float = 30.0, *, since: int = 0, **fields: Any) -> dict[str, Any]:
        return self.wait_for(
            lambda line: line.get("event") == name and all(line.get(k) == v for k, v in fields.items()),
            timeout,
            since=since,
        )

    def events(self, name: str) -> list[dict[str, Any]]:
        with self._cond:
            return [line for line in self.lines if line.get("event") == name]

    def kill(self) -> None:
        self.killed_at = time.time()
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 30.0) -> int:
        code = self.proc.wait(timeout)
        self._reader.join(5)
        return code

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()
        self._reader.join(5)


def wait_until(
    check: Callable[[], Any],
    timeout: float,
    what: str,
    interval: float = 0.2,
    describe: Callable[[], str] | None = None,
) -> Any:
    """Call ``check`` until it returns something true (returned), at most ``timeout`` seconds; then the
    failure says ``what`` and, with ``describe``, how things stood."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = check()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}" + (f"\n{describe()}" if describe else ""))
        time.sleep(interval)


def run_intervals(daemons: list[DaemonProcess]) -> dict[str, list[tuple[float, float, str]]]:
    """Per database, the (start, end, replica) of every run the daemons logged; a run still open when its
    process was killed ends at the kill."""
    from datetime import datetime

    def at(line: dict[str, Any]) -> float:
        return datetime.fromisoformat(line["timestamp"].replace("Z", "+00:00")).timestamp()

    out: dict[str, list[tuple[float, float, str]]] = {}
    for d in daemons:
        open_runs: dict[str, float] = {}
        for line in d.lines:
            if line.get("event") == "run_started":
                open_runs[line["database"]] = at(line)
            elif line.get("event") == "run_finished" and line.get("database") in open_runs:
                start = open_runs.pop(line["database"])
                out.setdefault(line["database"], []).append((start, at(line), d.replica))
        for database, start in open_runs.items():
            end = d.killed_at if d.killed_at is not None else time.time()
            out.setdefault(database, []).append((start, end, d.replica))
    return out
