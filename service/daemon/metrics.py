"""The daemon's operations endpoint: ``/healthz``, ``/readyz`` and ``/metrics`` on ``--metrics-port``.

A small Starlette application served by uvicorn inside the daemon's own event loop (uvicorn's signal
handling is left out: the daemon owns SIGTERM and SIGINT). The metrics are the daemon's own
prometheus-client registry, so two daemons in one process (tests) do not mix their figures.

- ``/healthz``: 200 while the process's loop answers (liveness).
- ``/readyz``: 200 once the daemon has read the log and holds its place among the replicas, 503
  before that and while it shuts down (readiness).
- ``/metrics``: runs by outcome, run seconds, lag per database, leases held, live replicas,
  wake-ups by cause, drift found.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

if TYPE_CHECKING:
    import uvicorn


class DaemonMetrics:
    def __init__(self, replica: str):
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.runs = Counter("schemalog_daemon_runs", "Runs by outcome status", ["status"], registry=r)
        self.run_seconds = Histogram(
            "schemalog_daemon_run_seconds",
            "Seconds per run on one database",
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
            registry=r,
        )
        self.lag = Gauge(
            "schemalog_daemon_lag_events", "Events between a database and its target", ["database"], registry=r
        )
        self.leases_held = Gauge("schemalog_daemon_leases_held", "Database leases this replica holds", registry=r)
        self.replicas = Gauge("schemalog_daemon_live_replicas", "Live daemon replicas seen in the store", registry=r)
        self.wakeups = Counter("schemalog_daemon_wakeups", "Wake-ups by cause", ["cause"], registry=r)
        self.drift = Counter("schemalog_daemon_drift_found", "Drift found, by database", ["database"], registry=r)
        self.info = Gauge("schemalog_daemon_info", "The replica's name", ["replica"], registry=r)
        self.info.labels(replica).set(1)

    def text(self) -> bytes:
        return generate_latest(self.registry)

    async def serve(self, host: str, port: int, daemon: Any) -> _Served:
        import uvicorn
        from starlette.applications import Starlette
        from starlette.requests import Request
        from starlette.responses import PlainTextResponse, Response
        from starlette.routing import Route

        async def healthz(_: Request) -> Response:
            return PlainTextResponse("ok\n")

        async def readyz(_: Request) -> Response:
            if daemon.ready and not daemon.stopping.is_set():
                return PlainTextResponse("ready\n")
            return PlainTextResponse("not ready\n", status_code=503)

        async def metrics(_: Request) -> Response:
            return Response(self.text(), media_type=CONTENT_TYPE_LATEST)

        app = Starlette(
            routes=[Route("/healthz", healthz), Route("/readyz", readyz), Route("/metrics", metrics)],
        )
        config = uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False, lifespan="off")
        server = _quiet_server(config)
        task = asyncio.create_task(server.serve(), name="metrics")
        while not server.started:
            if task.done():
                task.result()  # raises what stopped it (the port is taken, say)
                raise OSError(f"the metrics server on {host}:{port} did not start")
            await asyncio.sleep(0.01)
        return _Served(server, task)


def _quiet_server(config: uvicorn.Config) -> Any:
    """uvicorn's Server without its signal handlers (the daemon has its own)."""
    import uvicorn

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    return Server(config)


class _Served:
    def __init__(self, server: Any, task: asyncio.Task[None]):
        self.server, self.task = server, task

    async def stop(self) -> None:
        self.server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.task, 5)
