"""systemd's readiness and watchdog protocol (sd_notify), written for schemalog's two long-running commands.

A unit of ``Type=notify`` starts the process with ``NOTIFY_SOCKET`` (a unix datagram socket: a path, or an
abstract name written with a leading ``@``); the process sends ``READY=1`` once it serves, and, when the
unit sets ``WatchdogSec=``, ``WATCHDOG=1`` more often than ``WATCHDOG_USEC`` microseconds while it is
healthy (here: at half that interval, and only while its health check passes). systemd restarts a process
whose pings stop. Outside systemd (no ``NOTIFY_SOCKET``) every call does nothing.

``serve`` sends READY=1 once it listens and pings while its event loop runs and its store answers; the
daemon sends READY=1 once it has read the log and pings from its main loop (service/daemon/runner.py).
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Awaitable, Callable

import structlog

log = structlog.get_logger("schemalog.sdnotify")


def _address(name: str) -> str | bytes:
    """A NOTIFY_SOCKET value as socket.connect wants it: ``@name`` is the abstract name ``\\0name``."""
    if name.startswith("@"):
        return b"\0" + name[1:].encode()
    return name


def notify(*fields: str, environ: dict[str, str] | None = None) -> bool:
    """Send ``fields`` (``READY=1``, ``WATCHDOG=1``, ``STATUS=...``, ``STOPPING=1``) as one datagram to
    $NOTIFY_SOCKET. False when there is no socket to tell, or it could not be reached (logged, never raised:
    a supervisor that went away must not stop the service)."""
    name = (environ if environ is not None else os.environ).get("NOTIFY_SOCKET", "")
    if not name or not fields:
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(_address(name))
            sock.sendall("\n".join(fields).encode())
    except OSError as exc:
        log.warning("sd_notify_failed", socket=name, error=exc.strerror or str(exc))
        return False
    return True


def watchdog_interval(environ: dict[str, str] | None = None) -> float | None:
    """Seconds between watchdog pings: half of $WATCHDOG_USEC, when it is set for this process
    ($WATCHDOG_PID absent or this pid); None when no watchdog is asked for."""
    env = environ if environ is not None else os.environ
    usec, pid = env.get("WATCHDOG_USEC", ""), env.get("WATCHDOG_PID", "")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        value = int(usec)
    except ValueError:
        log.warning("watchdog_usec_invalid", value=usec)
        return None
    return value / 2_000_000 if value > 0 else None


async def watchdog(healthy: Callable[[], Awaitable[bool]], interval: float) -> None:
    """Ping every ``interval`` seconds for as long as ``healthy()`` says so (cancel to stop). A failed or
    slow check (more than the interval) sends no ping for that round, so systemd sees the process as hung."""
    was_healthy = True
    while True:
        try:
            ok = await asyncio.wait_for(healthy(), interval)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the health check's own failure is an unhealthy round
            ok = False
            if was_healthy:
                log.warning("watchdog_check_failed", error=str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        if ok:
            notify("WATCHDOG=1")
        elif was_healthy:
            log.warning("watchdog_withheld", reason="the health check failed")
        was_healthy = ok
        await asyncio.sleep(interval)


class Pinger:
    """Watchdog pings driven by a loop of one's own (the daemon's main loop): ``ping()`` on every pass sends
    WATCHDOG=1 when one is due; ``wait_cap()`` bounds the loop's sleep so that a ping is never late."""

    def __init__(self, interval: float | None):
        self.interval = interval
        self._next = 0.0

    def ping(self) -> bool:
        """True when a ping was due (and sent)."""
        if self.interval is None:
            return False
        now = time.monotonic()
        if now < self._next:
            return False
        self._next = now + self.interval
        notify("WATCHDOG=1")
        return True

    def wait_cap(self) -> float | None:
        """Seconds until the next ping is due (None: no watchdog)."""
        if self.interval is None:
            return None
        return max(0.0, self._next - time.monotonic())
