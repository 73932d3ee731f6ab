"""structlog set-up: on stderr, JSON lines when stderr is not a terminal (a daemon under systemd or
Kubernetes, a CI log), key-value lines on a terminal; SCHEMALOG_LOG_FORMAT=json or console decides."""

from __future__ import annotations

import logging
import os
import sys

import structlog


class _StderrLogger:
    """Writes each line to whatever ``sys.stderr`` is when the line is logged (not when logging was set up),
    so that a replaced stream (a test's capture, a closed pipe) never receives a late line."""

    def msg(self, message: str) -> None:
        stream = sys.stderr
        if stream is not None and not stream.closed:
            stream.write(message + "\n")
            stream.flush()

    log = debug = info = warning = warn = error = critical = exception = fatal = failure = err = msg


def _stderr_logger(*_args: object) -> _StderrLogger:
    return _StderrLogger()


def configure(level: str = "warning") -> None:
    numeric = getattr(logging, level.upper(), logging.WARNING)
    renderer: structlog.typing.Processor
    chosen = os.environ.get("SCHEMALOG_LOG_FORMAT", "").lower()
    terminal = sys.stderr is not None and sys.stderr.isatty()
    if chosen == "json" or (chosen != "console" and not terminal):
        renderer = structlog.processors.JSONRenderer()
    else:
        # plain tracebacks whether or not rich is installed (structlog would pick rich's otherwise)
        renderer = structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=False,
    )
