"""structlog set-up: on stderr, JSON lines when stderr is not a terminal (a daemon under systemd or
Kubernetes, a CI log), key-value lines on a terminal; SCHEMALOG_LOG_FORMAT=json or console decides.

structlog is configured when it is first imported, not before: a command whose code never logs (``show``,
``history``: their modules import structlog only when they log) does not pay its start-up (issue 14)."""

from __future__ import annotations

import logging
import os
import sys
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from importlib.abc import Loader

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
    """Send structlog's lines to stderr at ``level`` and above: now if structlog is imported, else the
    moment it is (its first importer finds it configured before it can log a line)."""
    if "structlog" in sys.modules:
        _configure_now(level)
    else:
        _ON_IMPORT.arm(level)


def _configure_now(level: str) -> None:
    import structlog

    numeric = getattr(logging, level.upper(), logging.WARNING)
    renderer: structlog.typing.Processor
    chosen = os.environ.get("SCHEMALOG_LOG_FORMAT", "").lower()
    terminal = sys.stderr is not None and sys.stderr.isatty()
    as_json = chosen == "json" or (chosen != "console" and not terminal)
    if as_json:
        renderer = structlog.processors.JSONRenderer()
    else:
        # plain tracebacks whether or not rich is installed (structlog would pick rich's otherwise)
        renderer = structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            *([structlog.processors.format_exc_info] if as_json else []),  # a traceback stays in its one line
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=False,
    )
    _route_stdlib_logging(numeric)


class _ToStructlog(logging.Handler):
    """Lines logged by libraries through the standard library (asyncio's "exception never retrieved",
    asyncpg, uvicorn) go out as structlog's lines, not as a bare multi-line traceback on stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        import structlog

        try:
            logger = structlog.get_logger(record.name)
            fields: dict[str, Any] = {"logger": record.name}
            if record.exc_info:
                fields["exc_info"] = record.exc_info
            logger.log(record.levelno, record.getMessage(), **fields)
        except Exception:  # a log line must never take the process down
            self.handleError(record)


def _route_stdlib_logging(level: int) -> None:
    root = logging.getLogger()
    if not any(isinstance(h, _ToStructlog) for h in root.handlers):
        root.addHandler(_ToStructlog())
    root.setLevel(level)


class _ConfigureOnImport:
    """A finder on ``sys.meta_path`` that lets the first ``import structlog`` load it as ever, then
    configures it before the importer's next line (and takes itself off the path).

    While structlog loads, ``rich`` is made unimportable (as service.progress.keep_rich_lazy does):
    structlog would import it for tracebacks this set-up does not use; it stays importable for a bar.
    """

    def __init__(self) -> None:
        self.level = "warning"

    def arm(self, level: str) -> None:
        self.level = level
        if self not in sys.meta_path:
            sys.meta_path.insert(0, self)

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name != "structlog":
            return None
        sys.meta_path.remove(self)
        import importlib.util

        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        spec.loader = cast("Loader", _ThenConfigure(spec.loader, self.level))  # (duck-typed: no importlib.abc)
        return spec


class _ThenConfigure:
    """structlog's own loader, then :func:`_configure_now`."""

    def __init__(self, loader: Any, level: str) -> None:
        self.loader, self.level = loader, level

    def create_module(self, spec: Any) -> Any:
        return self.loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        hide_rich = "rich" not in sys.modules
        if hide_rich:
            sys.modules["rich"] = None  # type: ignore[assignment]  # an import of it fails: structlog does without
        try:
            self.loader.exec_module(module)
        finally:
            if hide_rich and "rich" in sys.modules and sys.modules["rich"] is None:
                del sys.modules["rich"]
        _configure_now(self.level)

    def __getattr__(self, name: str) -> Any:  # the rest of the loader's interface (get_resource_reader, ...)
        return getattr(self.loader, name)


_ON_IMPORT = _ConfigureOnImport()
