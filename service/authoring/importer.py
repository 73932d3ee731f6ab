"""``import``: a live database into the log.

On an empty stream the live schema becomes a baseline changeset and the
database's marker is set to it. On a stream with history, the database's
difference from the state its marker claims (drift) becomes a changeset,
recorded as observed (the actor says where it came from), and the marker moves
to it: drift adopted instead of fought.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from events.envelope import Changeset
from events.expressions import ExpressionError, check_expression
from events.log import EventLog
from events.model import Constraint, Schema, Table, construct
from events.store.base import EventStore
from projections.diff import schema_diff
from projections.schema import Projector
from service.reconciler.marker import Marker, now_text, state_hash
from service.reconciler.normalize import canonical_check, differences
from service.reconciler.targets import Target, TargetError, _SyncTarget, display_url, open_target


class ImportRefused(TargetError):
    """An import that cannot be done as asked (the message says what to do instead)."""


@dataclass
class ImportResult:
    database: str
    stream: str
    kind: str  # baseline, drift, nothing
    events: int = 0
    first_version: int = 0
    last_version: int = 0
    warnings: list[str] = field(default_factory=list)


PG_CHECK_TEXTS = """
SELECT n.nspname, c.relname, con.conname, pg_get_expr(con.conbin, con.conrelid)
FROM pg_constraint con
JOIN pg_class c ON c.oid = con.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE con.contype = 'c' AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
"""
"""Every check constraint's expression as PostgreSQL writes it back (pg_get_expr, as introspection reads it)."""


async def database_check_texts(target: Target, tables: list[str]) -> dict[tuple[str, str], str]:
    """Each check constraint's expression as the database writes it, by (table, constraint name).

    Introspection gives checks in the canonical form the comparisons use (spaces, parentheses and quotes
    taken out, lower-cased: ``a>0andb<1``), which is no expression any parser reads, so import cannot
    record it. Until introspection keeps the database's own text beside it, import reads it here:
    PostgreSQL's pg_get_expr, SQLAlchemy's Inspector on MariaDB and SQLite.
    """
    if isinstance(target, _SyncTarget):

        def read(conn: sa.Connection) -> dict[tuple[str, str], str]:
            inspector = sa.inspect(conn.execution_options(no_parameters=False))
            return {
                (name, str(c["name"])): str(c["sqltext"])
                for name in tables
                for c in inspector.get_check_constraints(name)
                if c.get("name") and c.get("sqltext")
            }

        return await target._run(read)
    conn: Any = getattr(target, "conn", None)
    if target.dialect.name == "postgresql" and conn is not None:
        rows = await conn.fetch(PG_CHECK_TEXTS)
        return {(name if schema == "public" else f"{schema}.{name}", check): text for schema, name, check, text in rows}
    return {}


async def _as_written(target: Target, expected: Schema, live: Schema) -> Schema:
    """``live`` (canonical, as introspection gives it) with each check in the text the diff against
    ``expected`` should record: the log's own where it is the same check (so that it diffs equal), else
    the database's own text where that is one expression of the target's dialect (the canonical form
    drops spaces and lower-cases literals, ``'%Trailers%'``, so it is kept only where the database's
    text cannot be had). ImportRefused names a check that is neither."""
    dialect = target.dialect.name
    with_checks = sorted(name for name, t in live.tables.items() if any(c.kind == "check" for c in t.constraints))
    if not with_checks:
        return live
    texts = await database_check_texts(target, with_checks)

    def written(table: str, c: Constraint) -> Constraint:
        canonical = c.expression
        if c.kind != "check" or canonical is None:
            return c
        known = expected.tables[table].constraint(c.name) if table in expected.tables else None
        if known is not None and known.kind == "check" and canonical_check(known.expression) == canonical:
            return known
        text = texts.get((table, c.name))
        if text is not None and _accepted(text, dialect):
            return construct(Constraint, {**c.__dict__, "expression": text.strip()})
        if not _accepted(canonical, dialect):
            raise ImportRefused(
                f"check {c.name} on {table}: its expression {(text or canonical)!r} cannot be recorded"
                f" (it is not one boolean expression the log accepts for {dialect})"
            )
        return c

    tables = dict(live.tables)
    for name in with_checks:
        table = tables[name]
        constraints = tuple(written(name, c) for c in table.constraints)
        tables[name] = construct(Table, {**table.__dict__, "constraints": constraints})
    return construct(Schema, {"tables": tables, "enums": getattr(live, "enums", {})})


def _accepted(text: str, dialect: str) -> bool:
    try:
        check_expression(text, "check")
        check_expression(text, "check", dialect)
    except ExpressionError:
        return False
    return True


async def import_database(
    store: EventStore,
    url: str,
    stream: str,
    *,
    database: str | None = None,
    actor: str | None = None,
    lock_timeout: float = 60.0,
) -> ImportResult:
    label = database or display_url(url)
    who = actor or f"import:{label}"
    target = await open_target(url)
    try:
        await target.acquire(stream, lock_timeout)
        live = await target.introspect()
        others = [s for s in await target.marker_streams() if s != stream]
        if others:
            raise ImportRefused(f"this database follows stream {others[0]!r}, not {stream!r}")
        head = await store.version(stream)
        marker = await target.read_marker(stream)
        projector = Projector(store)
        if head == 0:
            if not live.tables:
                raise ImportRefused(f"{label} has no tables to import")
            events = schema_diff(Schema(), await _as_written(target, Schema(), live))
            kind, message = "baseline", f"baseline imported from {label}"
        else:
            if marker is None:
                raise ImportRefused(
                    f"stream {stream!r} has history and {label} has no marker: mark it with migrate --fake"
                    " (if it matches a version) or import it into a new stream"
                )
            if marker.version != head:
                raise ImportRefused(
                    f"{label} is at version {marker.version}, the stream at {head}: migrate it to the head first,"
                    " then import its drift"
                )
            expected = target.expected((await projector.schema(stream))[1])
            events = schema_diff(expected, await _as_written(target, expected, live))
            kind, message = "drift", f"drift observed in {label}, adopted"
        if not events:
            return ImportResult(label, stream, "nothing")
        result = await EventLog(store, Projector(store)).append(
            Changeset(stream=stream, actor=who, message=message, expected_version=head, events=tuple(events))
        )
        _, state = await projector.schema(stream)
        await target.write_marker(
            Marker(
                stream=stream,
                version=result.last_version,
                state_hash=state_hash(state),
                applied_at=now_text(),
                applied_by=who,
                event_hash=await store.event_hash(stream, result.last_version),
            )
        )
        out = ImportResult(label, stream, kind, len(events), result.first_version, result.last_version)
        want = target.expected(state)
        out.warnings = differences(want, await target.introspect(want))
        return out
    finally:
        try:
            await target.release()
        finally:
            await target.close()
