"""The use cases on target databases: which databases a request names, migrate (or plan) them, the SQL
of a plan for a dialect without a database, the state of each database (showmigrations), and import.

Each returns typed results (``Outcome``, ``MigrationState``, ``Check``, ``ImportResult``) and prints
nothing; input the request gets wrong raises ``BadRequest`` or ``NotFound`` (service/app/errors.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from service.app.errors import BadRequest, NotFound

if TYPE_CHECKING:
    from events.store.base import EventStore
    from projections.schema import Point
    from service import progress as report
    from service.authoring.importer import ImportResult
    from service.config import Config
    from service.reconciler.apply import Outcome

SUPPORTED = ("postgresql", "mysql", "sqlite")


@dataclass(frozen=True)
class Target:
    """One database a command runs on: by its name in schemalog.toml (None for a bare URL)."""

    name: str | None
    url: str
    stream: str
    point: str = "head"
    allow_destructive: bool = False
    lock_timeout: float = 60.0


def _point(text: str | None) -> Point:
    """A point as written (PointError, as the domain raises it, when it is none)."""
    from projections.schema import parse_point

    return parse_point(text)


def select_targets(
    config: Config,
    *,
    url: str | None = None,
    database: str | None = None,
    stream: str | None = None,
    all_: bool = False,
) -> list[Target]:
    """The databases asked for: one URL, one name from schemalog.toml, all of them, or the only one there."""
    from service.reconciler.targets import dialect_of, display_url

    for given in [url] + [db.url for db in config.databases.values()]:
        if given and dialect_of(given) not in SUPPORTED:
            raise BadRequest(
                f"unsupported database URL {display_url(given)!r}:"
                " use postgresql://, mysql:// (or mariadb://) or sqlite:///",
                field="url",
            )
    if url:
        if database or all_:
            raise BadRequest("give one of --database, --url, --all")
        return [Target(None, url, stream or "default")]
    names: list[str]
    if all_:
        if database:
            raise BadRequest("give one of --database, --url, --all")
        names = sorted(config.databases)
        if not names:
            raise BadRequest("--all: schemalog.toml names no databases")
    elif database:
        if database not in config.databases:
            known = ", ".join(sorted(config.databases)) or "none"
            raise NotFound(
                f"no database {database!r} in schemalog.toml (databases: {known})", kind="database", name=database
            )
        names = [database]
    elif len(config.databases) == 1:
        names = list(config.databases)
    else:
        raise BadRequest("which database? give --database NAME (from schemalog.toml), --url URL or --all")
    return [
        Target(name, db.url, stream or db.stream, db.target, db.allow_destructive, db.lock_timeout)
        for name in names
        for db in (config.databases[name],)
    ]


async def migrate_targets(
    store: EventStore,
    targets: list[Target],
    *,
    actor: str,
    to: str | None = None,
    fake: bool = False,
    plan_only: bool = False,
    allow_destructive: bool = False,
    lock_timeout: float | None = None,
    progress: report.Observer | None = None,
) -> list[Outcome]:
    """Migrate (``plan_only``: plan, nothing run or recorded) each target, all at once, to ``to`` (default:
    each one's own target point); one outcome each, in the targets' order."""
    import asyncio

    from service.reconciler.apply import MigrateRequest, migrate

    if plan_only and fake:
        raise BadRequest("--plan and --fake do not go together")
    requests = [
        MigrateRequest(
            url=t.url,
            stream=t.stream,
            actor=actor,
            database=t.name,
            to=_point(to or t.point),
            fake=fake,
            plan_only=plan_only,
            allow_destructive=allow_destructive or t.allow_destructive,
            lock_timeout=lock_timeout or t.lock_timeout,
            progress=progress,
        )
        for t in targets
    ]
    return list(await asyncio.gather(*(migrate(store, r) for r in requests)))


async def plan_targets(store: EventStore, targets: list[Target], *, actor: str, to: str | None = None) -> list[Outcome]:
    """What migrate would run on each target, one after the other (``sqlmigrate`` with databases)."""
    from service.reconciler.apply import MigrateRequest, migrate

    outcomes = []
    for t in targets:
        request = MigrateRequest(
            url=t.url, stream=t.stream, actor=actor, database=t.name, to=_point(to or t.point), plan_only=True
        )
        outcomes.append(await migrate(store, request))
    return outcomes


def known_dialect(name: str) -> Any:
    """The dialect of that name (postgresql, mysql, sqlite), or BadRequest naming those there are."""
    from service.reconciler.dialects import get_dialect

    try:
        return get_dialect(name)
    except ValueError as exc:
        raise BadRequest(str(exc), field="dialect") from None


async def dialect_sql(
    store: EventStore, stream: str, dialect_name: str, *, from_: str | None = None, to: str | None = None
) -> Outcome:
    """The plan from ``from_`` (default 0) to ``to`` (default head) for a dialect, without a database."""
    from projections.schema import Projector
    from service.reconciler.apply import Outcome
    from service.reconciler.capacity import CannotHold
    from service.reconciler.dialects import UnsupportedType
    from service.reconciler.plan import PlanRefused, make_plan

    dialect = known_dialect(dialect_name)
    projector = Projector(store)
    start = await projector.resolve(stream, _point(from_ or "0"))
    try:
        plan = await make_plan(projector, stream, start, _point(to), dialect)
    except (UnsupportedType, PlanRefused, CannotHold) as exc:
        raise BadRequest(str(exc)) from None
    return Outcome(
        database=dialect.name,
        stream=stream,
        status="planned",
        from_version=plan.from_version,
        to_version=plan.to_version,
        statements=[s.sql for s in plan.steps],
        steps=[
            {"sql": s.sql, "source_version": s.source_version, "event_type": s.event_type, "inverse": s.backward}
            for s in plan.steps
        ],
        destructive=[f"v{d.source_version}: {d.what}" for d in plan.destructive],
    )


@dataclass(frozen=True)
class Check:
    """``migrate --check`` of one database: ``up_to_date``, ``behind`` (or ahead: migrate would move it),
    or the outcome's status (refused, drift, unreachable, ...), with its line of text."""

    outcome: Outcome
    state: str
    text: str

    def public(self) -> dict[str, Any]:
        return {**self.outcome.public(), "check": self.state}


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def check_outcomes(outcomes: list[Outcome]) -> list[Check]:
    """The planned outcomes of ``migrate --check`` read as one state each."""
    checks = []
    for o in outcomes:
        if o.status == "planned" and o.from_version == o.to_version and not o.statements and not o.detail:
            state, text = "up_to_date", f"{o.database}: up to date at {o.stream} version {o.to_version}"
        elif o.status == "planned":
            direction = "behind" if o.to_version >= o.from_version else "ahead of its target"
            text = (
                f"{o.database}: {direction}: at {o.stream} v{o.from_version}, target v{o.to_version}"
                f" ({_plural(len(o.statements), 'statement')} to run)" + (f"; {o.detail}" if o.detail else "")
            )
            state = "behind"
        else:
            state = o.status
            counted = f" ({_plural(len(o.drift), 'difference')})" if o.drift else ""
            text = f"{o.database}: {o.status}: {o.detail}{counted}"
        checks.append(Check(o, state, text))
    return checks


def database_error(exc: BaseException) -> str | None:
    """A database driver's error as one line (``Type: first line``); None for anything else (a bug)."""
    import asyncpg
    import sqlalchemy as sa

    if not isinstance(exc, (sa.exc.SQLAlchemyError, asyncpg.PostgresError, OSError)):
        return None
    first = (str(getattr(exc, "orig", None) or exc).strip() or type(exc).__name__).splitlines()[0]
    return f"{type(exc).__name__}: {first}"


@dataclass
class MigrationState:
    """One row of ``showmigrations``: where the database's marker is, its target, what is pending, drift."""

    database: str
    stream: str
    status: str = "failed"
    marker_version: int | None = None
    target_version: int | None = None
    pending: int | None = None
    in_progress: bool | None = None
    drift: list[str] | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status in ("up_to_date", "pending", "empty")

    def public(self) -> dict[str, Any]:
        data: dict[str, Any] = {"database": self.database, "stream": self.stream}
        if self.target_version is not None:
            data.update(
                marker_version=self.marker_version,
                target_version=self.target_version,
                pending=self.pending,
                in_progress=self.in_progress,
            )
        if self.drift is not None:
            data["drift"] = self.drift
        data["status"] = self.status
        if self.error is not None:
            data["error"] = self.error
        return data


async def _state_of(store: EventStore, t: Target) -> MigrationState:
    from projections.schema import PointError, Projector
    from service.reconciler.normalize import differences
    from service.reconciler.targets import ConnectFailed, TargetError, display_url, open_target

    row = MigrationState(database=t.name or display_url(t.url), stream=t.stream)
    point = _point(t.point)  # (a point that is none: the request's error, not the database's)
    try:
        projector = Projector(store)
        head = await projector.resolve(t.stream, point)
        target = await open_target(t.url)
        try:
            marker = await target.read_marker(t.stream)
            version = marker.version if marker else None
            row.marker_version = version
            row.target_version = head
            row.pending = max(0, head - (version or 0)) if version is not None else head
            row.in_progress = bool(marker and marker.in_progress)
            expected = await projector.state_at_version(t.stream, version or 0)
            want = target.expected(expected.to_schema())
            live = await target.introspect(want)
            row.drift = differences(want, live)
            row.status = "drift" if row.drift else ("pending" if row.pending else "up_to_date")
            if version is None:
                row.status = "unmanaged" if live.tables else "empty"
        finally:
            await target.close()
    except ConnectFailed as exc:
        row.status, row.error = "unreachable", str(exc)
    except (TargetError, PointError) as exc:
        row.status, row.error = "failed", str(exc)
    except Exception as exc:
        if not database_error(exc):
            raise
        row.status, row.error = "failed", database_error(exc)
    return row


async def show_migrations(store: EventStore, targets: list[Target]) -> list[MigrationState]:
    """Each target's state, one after the other; a database that cannot be read is a row saying why."""
    return [await _state_of(store, t) for t in targets]


def import_target(
    config: Config, *, url: str | None = None, database: str | None = None, stream: str | None = None
) -> Target:
    """The one database ``import`` reads: a URL (named ``database`` in the log if given) or one from the file."""
    if url and database and database in config.databases:
        raise BadRequest("give --url or --database, not both")
    if url:
        return Target(database, url, stream or "default")
    (target,) = select_targets(config, database=database, stream=stream)
    return target


async def import_into(
    store: EventStore, target: Target, *, actor: str | None = None, progress: report.Observer | None = None
) -> ImportResult:
    """A live database's schema recorded in the target's stream (a baseline, or its drift adopted)."""
    from service.authoring.importer import import_database

    return await import_database(store, target.url, target.stream, database=target.name, actor=actor, progress=progress)
