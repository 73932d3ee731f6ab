"""Progress of long work (issue 14): a small typed observer, and the CLI's two ways of showing it.

The work (a migrate's run, an import) reports what it does as events to an *observer*, a plain
``Callable[[Event], None]``: phases (locked, introspecting, introspected, planned, applied, recorded,
done) and each statement started and finished. Code deep in a run (a dialect's target, in a worker
thread too: ``asyncio.to_thread`` copies the context) finds the run's reporter with ``current()``;
``reporting(observer, database)`` sets it for one unit of work. With no observer nothing is built
and nothing changes. The CLI's observer is ``Display`` (``-v`` lines, a bar on a terminal); a daemon
can pass its own (metrics) the same way.

This module imports nothing heavy (not even structlog): ``rich`` is imported only when a bar is shown.
"""

from __future__ import annotations

import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Protocol, TextIO


@dataclass(frozen=True, slots=True)
class Phase:
    """A step of the run: ``locked``, ``introspecting``, ``introspected`` (count: tables), ``planned``
    (count: statements), ``checking`` (the result introspected again), ``applied`` (count: statements),
    ``recorded`` (count: events), ``done`` (detail: the outcome's status)."""

    database: str
    name: str
    count: int | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class BatchSent:
    """Statements ``first`` to ``last - 1`` (0-based) sent to the database in one message: each is
    started when the message is sent, and all are finished when it returns (PostgreSQL)."""

    database: str
    first: int
    last: int
    total: int


@dataclass(frozen=True, slots=True)
class StatementStarted:
    database: str
    index: int
    """0-based: the statement's place in the plan."""
    total: int
    version: int
    """The event the statement makes so (or undoes)."""
    event_type: str
    sql: str


@dataclass(frozen=True, slots=True)
class StatementFinished:
    database: str
    index: int
    total: int
    seconds: float
    """Since it started (for a batch: since the batch was sent)."""


Event = Phase | BatchSent | StatementStarted | StatementFinished
Observer = Callable[[Event], None]


class _Step(Protocol):
    @property
    def sql(self) -> str: ...
    @property
    def source_version(self) -> int: ...
    @property
    def event_type(self) -> str: ...


class Reporter:
    """One unit of work's side of the observer: builds the events (only when someone listens) and keeps
    a failing observer from failing the work (it is logged once and dropped)."""

    def __init__(self, observer: Observer | None, database: str) -> None:
        self.observer = observer
        self.database = database
        self._started: dict[int, float] = {}

    @property
    def active(self) -> bool:
        return self.observer is not None

    def emit(self, event: Event) -> None:
        observer = self.observer
        if observer is None:
            return
        try:
            observer(event)
        except Exception as exc:  # an observer's bug (a closed stderr) never stops a migrate half-way
            import structlog

            self.observer = None
            log = structlog.get_logger("schemalog.progress")
            log.warning("progress_observer_failed", error=f"{type(exc).__name__}: {exc}")

    def phase(self, name: str, count: int | None = None, detail: str = "") -> None:
        if self.observer is not None:
            self.emit(Phase(self.database, name, count, detail))

    def batch(self, first: int, last: int, total: int) -> None:
        if self.observer is not None:
            self.emit(BatchSent(self.database, first, last, total))

    def started(self, index: int, total: int, step: _Step) -> None:
        if self.observer is not None:
            self._started[index] = time.monotonic()
            self.emit(StatementStarted(self.database, index, total, step.source_version, step.event_type, step.sql))

    def finished(self, index: int, total: int) -> None:
        if self.observer is not None:
            began = self._started.pop(index, None)
            seconds = time.monotonic() - began if began is not None else 0.0
            self.emit(StatementFinished(self.database, index, total, seconds))


_SILENT = Reporter(None, "")
_current: ContextVar[Reporter] = ContextVar("schemalog_progress", default=_SILENT)


def current() -> Reporter:
    """The reporter of the work this code runs in (one that does nothing when no one listens)."""
    return _current.get()


@contextmanager
def reporting(observer: Observer | None, database: str) -> Iterator[Reporter]:
    """Report to ``observer`` (None: to no one) as ``database`` for the ``with`` block."""
    reporter = Reporter(observer, database) if observer is not None else _SILENT
    token = _current.set(reporter)
    try:
        yield reporter
    finally:
        _current.reset(token)


# --------------------------------------------------------------------------- the CLI's display

LINE_WIDTH = 120
"""A ``-v`` line's width when stderr is not a terminal (a terminal's own width otherwise)."""


def shorten(text: str, width: int) -> str:
    """``text`` on one line (runs of whitespace as one space), cut to ``width`` characters with ``...``."""
    flat = " ".join(text.split())
    if len(flat) <= width:
        return flat
    return flat[: max(width - 3, 0)] + "..."


def describe(event: Event, width: int = LINE_WIDTH) -> str:
    """The ``-v`` line for ``event``: ``[db] 3/12 v5 ALTER TABLE ...``, ``[db] planned: 12 statements``."""
    head = f"[{event.database}]"
    if isinstance(event, StatementStarted):
        prefix = f"{head} {event.index + 1}/{event.total} v{event.version} "
        return prefix + shorten(event.sql, max(width - len(prefix), 20))
    if isinstance(event, BatchSent):
        return f"{head} statements {event.first + 1}-{event.last} of {event.total} sent in one batch"
    if isinstance(event, StatementFinished):
        return f"{head} {event.index + 1}/{event.total} done in {event.seconds:.3f}s"
    text = f"{head} {event.name}"
    if event.count is not None:
        noun = {"introspected": "table", "recorded": "event"}.get(event.name, "statement")
        text += f": {event.count} {noun}{'' if event.count == 1 else 's'}"
    if event.detail:
        text += f" ({event.detail})" if event.count is not None else f": {event.detail}"
    return shorten(text, width)


BAR_LABEL = 32
"""A database's name in the bar: at most this many characters (the end kept), so the counts fit."""


def _tail(text: str, width: int) -> str:
    return text if len(text) <= width else "..." + text[-(width - 3) :]


class Display:
    """The CLI's observer: with ``verbose``, one line on stderr per phase and per statement as it starts;
    with ``bar``, a rich progress bar on stderr (one task per database). Thread-safe (the SQLite and
    MariaDB targets report from a worker thread). ``close()`` ends the bar before the command prints."""

    def __init__(self, *, verbose: bool, bar: bool, stream: TextIO | None = None) -> None:
        self.verbose = verbose
        self.bar = bar
        self.stream = stream if stream is not None else sys.stderr
        self._lock = threading.RLock()
        self._progress: Any = None
        self._tasks: dict[str, Any] = {}
        self._closed = False

    def __call__(self, event: Event) -> None:
        with self._lock:
            if self._closed:
                return
            if self.bar:
                self._update_bar(event)
            if self.verbose and not isinstance(event, StatementFinished):
                self._say(event)

    def _width(self) -> int:
        if self.bar:
            return max(shutil.get_terminal_size((LINE_WIDTH, 24)).columns - 1, 40)
        return LINE_WIDTH

    def _say(self, event: Event) -> None:
        line = describe(event, self._width())
        if self._progress is not None:  # above the bar
            self._progress.console.print(line, markup=False, highlight=False, emoji=False, soft_wrap=True)
        else:
            self.stream.write(line + "\n")
            self.stream.flush()

    def _start_bar(self) -> Any:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        progress = Progress(
            TextColumn("{task.description}", markup=False),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(file=self.stream, stderr=self.stream is sys.__stderr__),
            redirect_stdout=False,  # stdout may be a file while stderr is the terminal
            redirect_stderr=True,  # log lines go above the bar
            transient=False,
        )
        progress.start()
        return progress

    def _update_bar(self, event: Event) -> None:
        if self._progress is None:
            self._progress = self._start_bar()
        progress = self._progress
        task = self._tasks.get(event.database)
        if task is None:
            task = progress.add_task(f"[{_tail(event.database, BAR_LABEL)}] starting", total=None)
            self._tasks[event.database] = task
        label = f"[{_tail(event.database, BAR_LABEL)}]"
        if isinstance(event, Phase):
            if event.name == "introspecting":
                progress.update(task, description=f"{label} introspecting")
            elif event.name == "introspected":
                tables = event.count or 0
                progress.update(task, description=f"{label} tables introspected", total=tables, completed=tables)
            elif event.name == "planned":
                progress.update(task, description=f"{label} statements", total=event.count or 0, completed=0)
            elif event.name in ("checking", "applied", "recorded"):
                progress.update(task, description=f"{label} {event.name}")
            elif event.name == "done":
                progress.update(task, description=f"{label} {event.detail or 'done'}")
            progress.refresh()  # each phase drawn (statements: at the bar's own pace)
        elif isinstance(event, StatementStarted):
            progress.update(task, description=f"{label} statements", total=event.total)
        elif isinstance(event, StatementFinished):
            progress.update(task, completed=event.index + 1)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._progress is not None:
                self._progress.stop()
                self._progress = None


def display_for(*, verbose: bool, quiet: bool, stream: TextIO | None = None) -> Display | None:
    """The CLI's observer for this run: -v lines, a bar when ``stream`` (stderr) is a terminal and not
    ``quiet``; None when neither (the work then reports to no one: output as before)."""
    stream = stream if stream is not None else sys.stderr
    try:
        terminal = stream.isatty()
    except (AttributeError, ValueError):
        terminal = False
    bar = terminal and not quiet
    if not verbose and not bar:
        return None
    return Display(verbose=verbose and not quiet, bar=bar, stream=stream)


def keep_rich_lazy() -> None:
    """Make structlog, imported next, find no ``rich``. structlog imports rich when it is installed (for its
    tracebacks, which service/logging.py does not use), which would cost every command some 30 ms of
    start-up; called before structlog is first imported (the CLI, after parsing), rich stays unimported
    until a bar needs it, and is importable then as ever."""
    if "structlog" in sys.modules or "rich" in sys.modules:
        return
    sys.modules["rich"] = None  # type: ignore[assignment]  # an import of it fails: structlog does without
    try:
        import structlog.dev  # noqa: F401
    finally:
        if "rich" in sys.modules and sys.modules["rich"] is None:
            del sys.modules["rich"]
