"""``make run`` (service/quickstart.py) as a user runs it: the sample history, the sample database kept in
line by the daemon, the printed URL and token working against the server, Ctrl-C stopping both; a second
run adds no second sample and makes a new token (the old one revoked)."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


class Run:
    def __init__(self, cwd: Path):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "service.quickstart", "--port", "0", "--poll-interval", "0.3"],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.errors: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_errors, daemon=True).start()

    def _read_errors(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.errors = [*self.errors[-30:], line.rstrip()]

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip())
        self.lines.put(None)  # the end of its output

    def until(self, prefix: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                break
            if line.strip().startswith(prefix):
                return line.strip()
        errors = "\n".join(self.errors)
        raise AssertionError(f"make run never printed {prefix!r} (exit {self.proc.poll()}); its stderr:\n{errors}")

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(30)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()


def _wait_ready(c: httpx.Client, version: int, timeout: float = 60) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    row: dict[str, object] = {}
    while time.monotonic() < deadline:
        rows = c.get("/v1/databases").json()
        row = rows[0] if rows else {}
        if row.get("status") == "Ready" and row.get("marker") == version:
            return row
        time.sleep(0.2)
    raise AssertionError(f"the sample database never reached v{version}: {row}")  # (the daemon's lines: run.errors)


def test_make_run_serves_the_sample_and_stops_cleanly(tmp_path: Path) -> None:
    run = Run(tmp_path)
    try:
        url = run.until("open").split()[-1]
        token = run.until("sign in").split()[-1]
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as c:
            assert c.get("/").headers["content-type"].startswith("text/html")
            messages = [cs["message"] for cs in c.get("/v1/changesets", params={"stream": "app"}).json()["changesets"]]
            assert messages[1:] == [
                "display name is the full name",
                "users get a display name",
                "users write posts",
                "users can sign up",
            ]
            row = _wait_ready(c, 7)
            assert row["name"] == "sample"
        assert (tmp_path / "sample.db").exists()
    finally:
        code = run.stop()
    assert code == 0
    assert run.until("stopped", 10) == "stopped"

    again = Run(tmp_path)
    try:
        url = again.until("open").split()[-1]
        fresh = again.until("sign in").split()[-1]
        with httpx.Client(base_url=url, timeout=30) as c:
            assert c.get("/v1/whoami", headers={"Authorization": f"Bearer {token}"}).status_code == 401
            me = c.get("/v1/whoami", headers={"Authorization": f"Bearer {fresh}"}).json()
            assert me["role"] == "admin"
            streams = c.get("/v1/streams", headers={"Authorization": f"Bearer {fresh}"}).json()
            assert next(s for s in streams if s["name"] == "app")["version"] == 7  # no second sample
    finally:
        assert again.stop() == 0
