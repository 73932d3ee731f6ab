"""``schemalog serve``: the HTTP API (service/api/) on uvicorn.

Registered on the main parser by ``add_parsers``; FastAPI, uvicorn and the routes are imported only
when the command runs (tests/test_cli_startup.py).
"""

from __future__ import annotations

import argparse
import os
from typing import Any


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("serve", help="serve the HTTP API (FastAPI on uvicorn) until stopped (SIGTERM)")
    p.add_argument("--host", default="127.0.0.1", help="the address to listen on (127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="the port (8000; 0: any free one, logged)")
    p.add_argument("--store", dest="serve_store", metavar="URL", help="the event log (same as the global --store)")
    p.add_argument(
        "--poll-interval",
        type=float,
        default=0.5,
        metavar="SECONDS",
        help="how often the change feed looks at the log (0.5; on PostgreSQL NOTIFY wakes it at once)",
    )
    p.set_defaults(run=cmd_serve, no_store=True)


async def cmd_serve(args: argparse.Namespace, _store: None) -> int:
    import asyncio
    import contextlib
    import socket

    from service import logging as service_logging
    from service.cli import UsageError
    from service.config import load_config
    from service.settings import DEFAULT_STORE

    if not os.environ.get("SCHEMALOG_LOG_LEVEL") and not args.quiet:
        service_logging.configure("info")  # a server logs each request by default
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be 0 to 65535, not {args.port}")
    if not args.poll_interval > 0:
        raise UsageError("--poll-interval must be more than 0 seconds")
    config = load_config(args.config)
    url = args.serve_store or args.store or os.environ.get("SCHEMALOG_STORE") or config.store or DEFAULT_STORE

    import structlog
    import uvicorn

    from events.store import open_store
    from events.store.base import newer_problem, require_current_schema
    from service import sdnotify
    from service.api.app import create_app

    log = structlog.get_logger("schemalog.api")
    store = await open_store(url, create=False)  # a missing or damaged store: one line, exit 2, before binding
    try:
        require_current_schema(store.schema_version)  # an older layout: run `schemalog init` first
    finally:
        await store.close()
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    # IPPROTO_TCP named: asyncio sets TCP_NODELAY only on sockets whose proto says TCP (else every answer on a
    # kept-alive connection waits ~40 ms for the client's delayed ACK)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((args.host, args.port))
    except OSError as exc:
        sock.close()
        raise UsageError(f"cannot listen on {args.host}:{args.port}: {exc.strerror}") from None
    port = sock.getsockname()[1]
    sock.listen(2048)  # connections queue from now on: "listening" and READY=1 are true when said

    interval = sdnotify.watchdog_interval()
    pinger: list[asyncio.Task[None]] = []

    def ready() -> None:
        log.info("listening", host=args.host, port=port, url=f"http://{args.host}:{port}")
        sdnotify.notify("READY=1", f"STATUS=listening on {args.host}:{port}")
        if interval:  # systemd's watchdog: pings from now on, while healthy
            pinger.append(asyncio.create_task(sdnotify.watchdog(healthy, interval), name="watchdog"))

    app = create_app(url, poll_interval=args.poll_interval, on_ready=ready)

    async def healthy() -> bool:
        """The watchdog's check: the event loop runs (this runs at all) and the store answers, at a layout
        this server knows (a newer schemalog's init stops the pings: systemd restarts serve, which refuses)."""
        async with app.state.services.store() as current:
            problem = newer_problem(await current.stored_schema())
        if problem is not None:
            log.error("store_schema_newer", error=problem)
        return problem is None

    server = uvicorn.Server(
        uvicorn.Config(app, log_config=None, access_log=False, timeout_graceful_shutdown=5, lifespan="on")
    )
    try:
        await server.serve(sockets=[sock])
    finally:
        for task in pinger:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        sdnotify.notify("STOPPING=1")
    return 0
