"""Processes for the deploy tests: started from a command and an environment, their JSON log lines read as
they come, their HTTP paths polled until they answer (with a bound), a systemd notify socket listened on.

Every wait is on something a process reports (a log line, an HTTP answer, a datagram) with a bound.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(os.environ.get("VIRTUAL_ENV") or ROOT / ".venv") / "bin"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Proc:
    """One process of a deploy file, its stderr read line by line (JSON lines, or raw text)."""

    def __init__(self, name: str, argv: Sequence[str], env: dict[str, str], cwd: Path):
        self.name = name
        self.argv = list(argv)
        self.proc = subprocess.Popen(
            self.argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self._terminated = False
        self.lines: list[dict[str, Any]] = []
        self.out: list[str] = []
        self._seen = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_out, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            try:
                line = json.loads(raw)
            except ValueError:
                line = None
            with self._seen:
                self.lines.append(line if isinstance(line, dict) else {"raw": raw.rstrip()})
                self._seen.notify_all()

    def _read_out(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self.out.append(raw.rstrip())

    def tail(self) -> str:
        return f"{self.name} {self.argv[1:]}: exit {self.proc.poll()}, last lines {self.lines[-8:]}"

    def wait_for(self, match: Callable[[dict[str, Any]], bool], timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with self._seen:
            while True:
                for line in self.lines:
                    if match(line):
                        return line
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise AssertionError(f"never reported: {self.tail()}")
                self._seen.wait(min(left, 0.5))

    def wait_exit(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"did not exit within {timeout} s: {self.tail()}") from None

    def terminate(self) -> None:
        """One SIGTERM, as a supervisor stops a process (a second one would abort the daemon's runs)."""
        if self.proc.poll() is None and not self._terminated:
            self._terminated = True
            self.proc.send_signal(signal.SIGTERM)

    def stop(self) -> int:
        """SIGTERM (once), then its exit code."""
        self.terminate()
        try:
            return self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise AssertionError(f"ignored SIGTERM: {self.tail()}") from None


def get(url: str, timeout: float = 5) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            return int(answer.status), answer.read().decode()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read().decode()


def wait_http(url: str, proc: Proc, bound: float = 30) -> tuple[int, str]:
    """GET ``url`` until it answers 200 (the process's probe passing), at most ``bound`` seconds."""
    deadline = time.monotonic() + bound
    last: object = None
    while time.monotonic() < deadline:
        if proc.proc.poll() is not None:
            raise AssertionError(f"{url}: the process ended: {proc.tail()}")
        try:
            status, body = get(url, timeout=2)
            if status == 200:
                return status, body
            last = (status, body)
        except OSError as exc:  # not listening yet
            last = exc
        time.sleep(0.05)  # a poll's pace, not a wait for time to pass: the bound is the deadline
    raise AssertionError(f"{url} never answered 200 within {bound} s (last: {last}): {proc.tail()}")


class NotifySocket:
    """A unix datagram socket standing in for systemd's: what a process sends to $NOTIFY_SOCKET."""

    def __init__(self, address: str):
        """``address``: a path, or ``@name`` for an abstract name (as $NOTIFY_SOCKET writes it)."""
        self.address = address
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + address[1:] if address.startswith("@") else address)
        self.messages: list[str] = []
        self._seen = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        while True:
            try:
                data = self.sock.recv(4096)
            except OSError:
                return
            with self._seen:
                self.messages.extend(data.decode().split("\n"))
                self._seen.notify_all()

    def wait_for(self, field: str, timeout: float, *, after: str | None = None) -> int:
        """The index of the first ``field`` message (after the first ``after`` one, if given)."""
        deadline = time.monotonic() + timeout
        with self._seen:
            while True:
                start: int | None = 0
                if after is not None:
                    start = self.messages.index(after) + 1 if after in self.messages else None
                if start is not None and field in self.messages[start:]:
                    return self.messages.index(field, start)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no {field} (after {after}) within {timeout} s: {self.messages}")
                self._seen.wait(left)

    def close(self) -> None:
        self.sock.close()
