"""structlog set-up: key-value lines on stderr (JSON with SCHEMALOG_LOG_FORMAT=json)."""

from __future__ import annotations

import logging
import os
import sys

import structlog


def configure(level: str = "warning") -> None:
    numeric = getattr(logging, level.upper(), logging.WARNING)
    renderer: structlog.typing.Processor
    if os.environ.get("SCHEMALOG_LOG_FORMAT") == "json":
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
