"""One migrator run on one database: lock, read the marker, verify, plan, guard, apply, record.

The flow (ARCHITECTURE.md): the marker says where the database is; introspection
says whether that is true (drift stops the run); the plan is the history
between the marker and the target (inverted going back); destructive steps need
permission; the statements run under the database's lock, transactionally
where the dialect allows, and the result is introspected again and must equal
the target state. Every run that reached its database appends an outcome
event to the database's own stream (``db:NAME``); one that never connected records nothing.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import sqlalchemy as sa
import structlog

from events.catalog import DriftFound, MigrationApplied, MigrationFailed, MigrationFaked
from events.envelope import GENESIS_HASH, Changeset
from events.log import EventLog
from events.store.base import EventStore, Fence
from projections.schema import HEAD, Point, Projector
from service import progress as report
from service.reconciler.capacity import CannotHold
from service.reconciler.marker import Marker, now_text, state_hash
from service.reconciler.normalize import differences
from service.reconciler.plan import Plan, PlanRefused, make_plan
from service.reconciler.statements import UnsafeStatement
from service.reconciler.targets import (
    ConnectFailed,
    LockBusy,
    StatementFailed,
    Target,
    TargetError,
    VerifyFailed,
    display_url,
    open_target,
)

log = structlog.get_logger("schemalog.reconciler")


@dataclass(frozen=True)
class MigrateRequest:
    url: str
    stream: str
    actor: str
    database: str | None = None
    to: Point = HEAD
    fake: bool = False
    plan_only: bool = False
    allow_destructive: bool = False
    lock_timeout: float = 60.0
    progress: report.Observer | None = field(default=None, compare=False, repr=False)
    """Told each phase and each statement as the run goes (service/progress.py); None: no one."""
    # What the daemon passes (None for a run from the command line):
    fence: Fence | None = None
    """The lease the outcome is recorded under: a replica that lost it records nothing (LeaseLost)."""
    outcome_version: int | None = None
    """The outcome stream's version the caller last saw: the outcome is appended expecting it."""
    known_at: int | None = None
    """The version the log's outcomes say the database is at: a marker elsewhere (a run whose outcome
    was lost with its process) is recorded, from the marker, before this run's outcome."""
    known_drift: tuple[str, ...] | None = None
    """The drift last recorded: the same drift again is not recorded again; none where some was, is."""
    replica: str | None = None
    approvals: int | None = None
    """The fleet database's own approval requirement, when the caller knows it (the daemon)."""


@dataclass
class Outcome:
    database: str
    stream: str
    status: str
    """applied, faked, up_to_date, planned, drift, refused, locked, failed, unreachable (never connected:
    not recorded)"""
    from_version: int = 0
    to_version: int = 0
    statements: list[str] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)
    duration_ms: int = 0
    detail: str | None = None
    drift: list[str] = field(default_factory=list)
    destructive: list[str] = field(default_factory=list)
    failed_statement: str | None = None
    recovered: tuple[int, int, str] | None = None
    """(from, to, by): what the database's marker shows was applied without a recorded outcome."""
    recorded: bool = False

    @property
    def ok(self) -> bool:
        return self.status in ("applied", "faked", "up_to_date", "planned")

    def public(self) -> dict[str, Any]:
        return {
            "database": self.database,
            "stream": self.stream,
            "status": self.status,
            "from_version": self.from_version,
            "to_version": self.to_version,
            "statements": self.statements,
            "steps": self.steps,
            "duration_ms": self.duration_ms,
            "detail": self.detail,
            "drift": self.drift,
            "destructive": self.destructive,
            "failed_statement": self.failed_statement,
        }


class Refused(TargetError):
    """The run was refused before anything was done (a reason the user can act on)."""


def database_label(request: MigrateRequest) -> str:
    if request.database:
        return request.database
    return re.sub(r"\s+", "_", display_url(request.url))


def outcome_stream(database: str) -> str:
    return "db:" + re.sub(r"\s+", "_", database)[:190]


def _steps(plan: Plan) -> list[dict[str, Any]]:
    return [
        {"sql": s.sql, "source_version": s.source_version, "event_type": s.event_type, "inverse": s.backward}
        for s in plan.steps
    ]


async def migrate(store: EventStore, request: MigrateRequest) -> Outcome:
    """Bring one database to ``request.to`` (or plan it, or fake it). Never raises for a database problem:
    the outcome says what happened, and is recorded in the database's own stream."""
    database = database_label(request)
    started = time.monotonic()
    outcome = Outcome(database=database, stream=request.stream, status="failed")
    with (
        structlog.contextvars.bound_contextvars(database=database, stream=request.stream),
        report.reporting(request.progress, database) as reporter,
    ):
        try:
            target = await open_target(request.url)
        except TargetError as exc:
            # never reached the database: nothing is recorded (no db: stream for a mistyped URL)
            outcome.status = "unreachable" if isinstance(exc, ConnectFailed) else "failed"
            outcome.detail = str(exc)
            log.info("migrate_done", status=outcome.status)
            reporter.phase("done", detail=outcome.status)
            return outcome
        try:
            await _run(store, target, request, outcome)
        except LockBusy as exc:
            outcome.status, outcome.detail = "locked", str(exc)
        except (Refused, PlanRefused, UnsafeStatement, CannotHold) as exc:  # before anything ran
            outcome.status, outcome.detail = "refused", str(exc)
        except TargetError as exc:
            outcome.status, outcome.detail = "failed", str(exc)
        except (sa.exc.SQLAlchemyError, asyncpg.PostgresError, OSError) as exc:
            first_line = str(getattr(exc, "orig", None) or exc).splitlines()[0]
            outcome.status, outcome.detail = "failed", f"{type(exc).__name__}: {first_line}"
        finally:
            try:
                await target.release()
            finally:
                await target.close()
        outcome.duration_ms = int((time.monotonic() - started) * 1000)
        if not request.plan_only and _worth_recording(request, outcome):
            await _record(store, request, outcome)
            outcome.recorded = True
            reporter.phase("recorded", 1, detail=outcome_stream(outcome.database))
        log.info(
            "migrate_done", status=outcome.status, from_version=outcome.from_version, to_version=outcome.to_version
        )
        reporter.phase("done", detail=f"{outcome.status} in {outcome.duration_ms / 1000:.2f}s")
    return outcome


def _worth_recording(request: MigrateRequest, outcome: Outcome) -> bool:
    if outcome.recovered is not None:
        return True
    if outcome.status == "drift":
        return request.known_drift is None or tuple(outcome.drift) != request.known_drift
    if outcome.status == "up_to_date":
        return bool(request.known_drift)  # the drift recorded before is gone
    return outcome.status in ("applied", "faked", "failed")


async def _record(store: EventStore, request: MigrateRequest, outcome: Outcome) -> None:
    common: dict[str, Any] = {
        "database": outcome.database,
        "stream": outcome.stream,
        "from_version": outcome.from_version,
        "to_version": outcome.to_version,
        "statements": tuple(outcome.statements),
        "duration_ms": outcome.duration_ms,
        "detail": outcome.detail,
        "replica": request.replica,
        "lease_epoch": request.fence.epoch if request.fence else None,
    }
    events: list[Any] = []
    if outcome.recovered is not None:
        start, end, by = outcome.recovered
        events.append(
            MigrationApplied(
                database=outcome.database,
                stream=outcome.stream,
                from_version=start,
                to_version=end,
                detail=f"recorded from the database's marker (applied by {by}); that run's outcome was lost",
                replica=request.replica,
                lease_epoch=common["lease_epoch"],
            )
        )
    event: Any
    if outcome.status == "up_to_date" and outcome.recovered is not None and not request.known_drift:
        event = None
    elif outcome.status == "up_to_date":
        event = DriftFound(
            **{**common, "detail": f"the drift recorded before is gone: the database matches v{outcome.to_version}"}
        )
    elif outcome.status == "applied":
        event = MigrationApplied(**common)
    elif outcome.status == "faked":
        event = MigrationFaked(**common)
    elif outcome.status == "drift":
        event = DriftFound(**common, drift=tuple(outcome.drift))
    else:
        event = MigrationFailed(**common, statement=outcome.failed_statement)
    if event is not None:
        events.append(event)
    message = f"migrate {outcome.stream} {outcome.from_version} -> {outcome.to_version}: {outcome.status}"
    await EventLog(store, Projector(store)).append(
        Changeset(
            stream=outcome_stream(outcome.database),
            actor=request.actor,
            message=message,
            expected_version=request.outcome_version,
            events=tuple(events),
        ),
        fence=request.fence,
    )


def _marker(
    request: MigrateRequest, version: int, schema_hash: str, event_hash: str | None = None, **extra: Any
) -> Marker:
    """``event_hash``: the log's at ``version`` (every run passes it; None leaves the marker unwitnessed)."""
    return Marker(
        stream=request.stream,
        version=version,
        state_hash=schema_hash,
        applied_at=now_text(),
        applied_by=request.actor,
        event_hash=event_hash,
        **extra,
    )


async def _log_hash(store: EventStore, stream: str, version: int) -> str:
    """The chain hash of the log's event at ``version`` (genesis at 0): what the marker witnesses."""
    if version == 0:
        return GENESIS_HASH
    found = await store.event_hash(stream, version)
    if found is None:
        raise Refused(f"stream {stream!r} has no version {version} in the log")
    return found


async def _plan_hashes(store: EventStore, stream: str, plan: Plan) -> tuple[str, str]:
    return await _log_hash(store, stream, plan.from_version), await _log_hash(store, stream, plan.to_version)


async def _check_approvals(store: EventStore, request: MigrateRequest, plan: Plan, outcome: Outcome) -> None:
    """Refused when the plan would apply a changeset without the approvals its stream (or its fleet
    database) requires, naming each one; a plan only says so in its detail."""
    from service.app.approvals import describe, missing_approvals

    missing = await missing_approvals(
        store,
        request.stream,
        plan.from_version,
        plan.to_version,
        database=request.database,
        database_approvals=request.approvals,
    )
    if not missing:
        return
    if request.plan_only:
        outcome.detail = "migrate would refuse: " + describe(missing)
        return
    raise Refused(describe(missing))


async def _run(store: EventStore, target: Target, request: MigrateRequest, outcome: Outcome) -> None:
    projector = Projector(store)
    dialect = target.dialect
    reporter = report.current()
    if not request.plan_only:
        await target.acquire(request.stream, request.lock_timeout)
        reporter.phase("locked")
    others = [s for s in await target.marker_streams() if s != request.stream]
    if others:
        raise Refused(f"this database follows stream {others[0]!r}, not {request.stream!r}")
    marker = await target.read_marker(request.stream)
    if (
        request.known_at is not None
        and marker is not None
        and marker.version != request.known_at
        and not (request.plan_only or request.fake)
    ):
        outcome.recovered = (request.known_at, marker.version, marker.applied_by or "unknown")
    if marker is not None and marker.event_hash is not None and not request.fake:
        # the database witnesses the log (service/reconciler/witness.py): a mismatch is an alarm, not a plan
        logged = GENESIS_HASH if marker.version == 0 else await store.event_hash(request.stream, marker.version)
        if logged != marker.event_hash:
            outcome.from_version = outcome.to_version = marker.version
            outcome.status = "drift"
            outcome.drift = [
                f"the marker witnesses event hash {marker.event_hash} at v{marker.version} of {request.stream};"
                f" the log has {logged or 'no such version'}: the log or the marker was rewritten"
            ]
            outcome.detail = "the database's marker does not match the log's chain; nothing applied"
            return

    resumed = False
    if marker is not None and marker.in_progress and not request.plan_only and not request.fake:
        # (--fake moves an in-progress marker too: it is the way out when what ran is known to be right)
        # a run that stopped half-way (MySQL): finish it first, statement by statement
        assert marker.target_version is not None
        plan = await make_plan(projector, request.stream, marker.version, Point(version=marker.target_version), dialect)
        if plan.digest() != marker.plan_hash:
            raise Refused(
                f"an interrupted run to version {marker.target_version} left a plan this log no longer gives;"
                " repair by hand and reset the marker with migrate --fake"
            )
        log.info("resuming", from_version=plan.from_version, to_version=plan.to_version, done=marker.steps_done)
        hashes = await _plan_hashes(store, request.stream, plan)
        outcome.from_version, outcome.to_version = plan.from_version, plan.to_version
        outcome.statements = [s.sql for s in plan.steps]
        outcome.steps = _steps(plan)
        await _apply(target, request, plan, marker.steps_done, outcome, hashes, resuming=True)
        if outcome.status == "failed":
            return
        resumed = True
        marker = await target.read_marker(request.stream)

    from_version = marker.version if marker is not None else 0
    plan = await make_plan(projector, request.stream, from_version, request.to, dialect)
    if resumed and plan.empty:
        return  # finishing the interrupted run was the whole job: its outcome ("applied") stands
    # after finishing an interrupted run, the outcome covers both: from where that run started
    finished_first = (outcome.statements, outcome.steps) if resumed else ([], [])
    outcome.from_version = outcome.from_version if resumed else plan.from_version
    outcome.to_version = plan.to_version
    outcome.statements = finished_first[0] + [s.sql for s in plan.steps]
    outcome.steps = finished_first[1] + _steps(plan)
    problem = await target.plan_problem(plan)
    if problem is not None:
        raise Refused(problem)
    if not request.fake:
        await _check_approvals(store, request, plan, outcome)
    if request.plan_only and marker is not None and marker.in_progress:
        # the run would finish the interrupted one first, and the database is half-way there: no drift check
        outcome.status = "planned"
        outcome.detail = f"an interrupted run to version {marker.target_version} is finished first"
        return

    # A plan reads the database as the run would, so that it reports what would stop the run (drift, a
    # database without a marker) instead of statements that would never be sent.
    reporter.phase("planned", len(plan.steps), detail=f"v{plan.from_version} -> v{plan.to_version}")
    expected = target.expected(plan.target if request.fake else plan.start)
    reporter.phase("introspecting")
    live = await target.introspect(expected)
    reporter.phase("introspected", len(live.tables))
    if marker is None and not request.fake and live.tables:
        raise Refused(
            f"the database has {len(live.tables)} tables and no schemalog marker: if it already matches"
            f" version {plan.to_version}, mark it with migrate --fake; to adopt it, import it"
        )
    if request.fake:
        drift = differences(expected, live)
        to_event = await _log_hash(store, request.stream, plan.to_version)
        await target.write_marker(_marker(request, plan.to_version, state_hash(plan.target), to_event))
        outcome.status = "faked"
        outcome.statements = []
        outcome.drift = drift
        if drift:
            outcome.detail = f"marker moved; the database differs from version {plan.to_version} in {len(drift)} ways"
        return

    drift = differences(expected, live)
    if marker is not None and marker.state_hash != state_hash(plan.start):
        drift.insert(0, f"marker's state hash does not match the log's state at version {marker.version}")
    if drift:
        outcome.status = "drift"
        outcome.drift = drift
        done = "migrate would stop here and apply nothing" if request.plan_only else "nothing applied"
        outcome.detail = (
            f"the database differs from version {plan.from_version} of {request.stream}; {done}"
            " (fix the database, or record what it has with schemalog import)"
        )
        return

    if plan.empty and request.plan_only:
        outcome.status = "planned"
        return
    if plan.empty:
        outcome.status = "up_to_date"
        if marker is None:
            to_event = await _log_hash(store, request.stream, plan.to_version)
            await target.write_marker(_marker(request, plan.to_version, state_hash(plan.target), to_event))
        return

    destructive = []
    for item in plan.destructive:
        if item.null_check is not None:
            table, column = item.null_check
            # a column this plan makes holds no values from before it, so none can be lost
            if table not in live.tables or live.tables[table].column(column) is None:
                continue
            if not await target.has_nulls(table, column):
                continue
        destructive.append(f"v{item.source_version}: {item.what}")
    outcome.destructive = destructive
    if request.plan_only:
        outcome.status = "planned"
        return
    if destructive and not request.allow_destructive:
        many = len(destructive) != 1
        count = f"{len(destructive)} destructive change{'s' if many else ''} need{'' if many else 's'}"
        raise Refused(f"{count} --allow-destructive: " + "; ".join(destructive))
    await _apply(target, request, plan, 0, outcome, await _plan_hashes(store, request.stream, plan))


async def _apply(
    target: Target,
    request: MigrateRequest,
    plan: Plan,
    start: int,
    outcome: Outcome,
    hashes: tuple[str, str],
    *,
    resuming: bool = False,
) -> None:
    """``hashes``: the log's event hashes at the plan's first and last versions (the markers keep them)."""
    digest = plan.digest()
    start_hash = state_hash(plan.start)
    from_event, to_event = hashes
    reporter = report.current()

    def progress(done: int) -> Marker:
        return _marker(
            request,
            plan.from_version,
            start_hash,
            from_event,
            target_version=plan.to_version,
            plan_hash=digest,
            steps_done=done,
        )

    done = _marker(request, plan.to_version, state_hash(plan.target), to_event)
    # (the caller has set the outcome's versions and statements: a run that finished an interrupted one
    # first reports both)
    if not target.dialect.transactional_ddl and start == 0:
        await target.write_marker(progress(0))
    try:
        await target.apply(plan, start, done, progress, resuming=resuming)
    except StatementFailed as exc:
        outcome.status = "failed"
        error = " ".join(str(exc.error).split())
        # PostgreSQL and SQLite roll the run back, unless it had to commit part-way (PostgreSQL after
        # ALTER TYPE ... ADD VALUE); MariaDB commits each statement and records it in the marker
        committed = exc.done if not target.dialect.transactional_ddl else getattr(exc, "committed", 0)
        if committed == 0 and start == 0:
            forward = (
                f"nothing was applied: the database is still at version {plan.from_version};"
                " fix the cause and run migrate again"
            )
        else:
            forward = (
                f"statements 1 to {max(committed, start)} are done and recorded, so the next run will resume"
                f" at statement {max(committed, start) + 1}: fix the cause and run migrate again"
            )
        outcome.detail = f"statement {exc.done + 1} of {len(plan.steps)} failed: {error}; {forward}"
        outcome.failed_statement = exc.statement
        return
    except VerifyFailed as exc:
        outcome.status = "failed"
        outcome.detail = f"{exc}: " + "; ".join(exc.differences[:10])
        if not target.dialect.transactional_ddl:
            outcome.detail += (
                f"; every statement ran and the run to version {plan.to_version} is recorded as in progress:"
                " make the database match and run migrate again (it checks again), or, if it is at another"
                " version, record that one with migrate --fake --to VERSION"
            )
        outcome.drift = exc.differences
        return
    outcome.status = "applied"
    reporter.phase("applied", len(plan.steps) - start)
