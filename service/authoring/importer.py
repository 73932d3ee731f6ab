"""``import``: a live database into the log.

On an empty stream the live schema becomes a baseline changeset and the
database's marker is set to it. On a stream with history, the database's
difference from the state its marker claims (drift) becomes a changeset,
recorded as observed (the actor says where it came from), and the marker moves
to it: drift adopted instead of fought.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from events.catalog import Event
from events.envelope import Changeset
from events.expressions import ExpressionError, ExpressionKind, check_expression
from events.log import EventLog
from events.model import (
    Column,
    Constraint,
    DomainType,
    Generated,
    Index,
    IndexElement,
    Schema,
    Table,
    View,
    construct,
    domains_of,
    extensions_of,
    routines_of,
    triggers_of,
    views_of,
)
from events.store.base import EventStore
from projections.diff import schema_diff
from projections.schema import Projector
from service import progress as report
from service.reconciler.dialects.sqlite.introspect import sqlite_check_texts, sqlite_nullable_keys
from service.reconciler.marker import Marker, now_text, state_hash
from service.reconciler.normalize import (
    canonical_check,
    canonical_default,
    canonical_expression,
    canonical_index,
    differences,
    domain_differences,
    routine_differences,
    trigger_differences,
    view_differences,
)
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


_PG_TABLES = """
JOIN pg_class c ON c.oid = {table} JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
"""

PG_CHECK_TEXTS = (
    """
SELECT n.nspname, c.relname, con.conname, pg_get_expr(con.conbin, con.conrelid)
FROM pg_constraint con
"""
    + _PG_TABLES.format(table="con.conrelid")
    + " AND con.contype = 'c'"
)
"""Every check constraint's expression as PostgreSQL writes it back (pg_get_expr, as introspection reads it)."""

PG_DEFAULT_TEXTS = """
SELECT n.nspname, c.relname, a.attname, pg_get_expr(d.adbin, d.adrelid), a.attgenerated <> ''
FROM pg_attrdef d JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
""" + _PG_TABLES.format(table="d.adrelid")
"""Every column default and generated column's expression as PostgreSQL writes it back (told apart by the
last value)."""

PG_INDEX_TEXTS = (
    """
SELECT n.nspname, c.relname, ic.relname,
       CASE WHEN i.indexprs IS NOT NULL THEN
            ARRAY(SELECT pg_get_indexdef(i.indexrelid, k, true) FROM generate_series(1, i.indnkeyatts) k ORDER BY k)
       END,
       pg_get_expr(i.indpred, i.indrelid, true)
FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
"""
    + _PG_TABLES.format(table="i.indrelid")
    + " AND (i.indexprs IS NOT NULL OR i.indpred IS NOT NULL)"
)
"""The key elements' texts of every index with expressions (an expression's is its text) and the predicate
of every partial index, as PostgreSQL writes them back (the texts introspection reads, PG_INDEXES)."""

PG_INHERITS = (
    """
SELECT n.nspname, c.relname, pn.nspname, p.relname
FROM pg_inherits h JOIN pg_class p ON p.oid = h.inhparent JOIN pg_namespace pn ON pn.oid = p.relnamespace
"""
    + _PG_TABLES.format(table="h.inhrelid")
    + " AND NOT c.relispartition ORDER BY 1, 2, h.inhseqno"
)
"""Each table that inherits from another (INHERITS), with its parents; partitions are not read here."""


def _pg_name(schema: str, name: str) -> str:
    return name if schema == "public" else f"{schema}.{name}"


@dataclass
class DatabaseTexts:
    """Expressions as the database writes them back, where introspection gives their canonical form only.

    The canonical form (service.reconciler.normalize) is for comparing: casts, parentheses, spaces and
    case taken out, so that ``('now'::text)::date`` reads ``'now'`` and ``now()`` ``current_timestamp``.
    Recorded, it would be another expression (a fixed date instead of the day's), or none a parser reads
    (``a>0andb<1``): import records the database's own text instead.
    """

    checks: dict[tuple[str, str], str] = field(default_factory=dict)  # (table, constraint)
    defaults: dict[tuple[str, str], str] = field(default_factory=dict)  # (table, column)
    generated: dict[tuple[str, str], str] = field(default_factory=dict)  # (table, column)
    elements: dict[tuple[str, str], list[str]] = field(default_factory=dict)  # (table, index): by key position
    predicates: dict[tuple[str, str], str] = field(default_factory=dict)  # (table, index)


async def database_texts(target: Target, tables: list[str]) -> DatabaseTexts:
    """The expressions of ``tables`` as the database writes them (DatabaseTexts): on PostgreSQL every kind
    (pg_get_expr, pg_get_indexdef); on MariaDB and SQLite the checks, by SQLAlchemy's Inspector (their
    other expressions are recorded in the form introspection gives)."""
    if isinstance(target, _SyncTarget):

        def read(conn: sa.Connection) -> dict[tuple[str, str], str]:
            if target.dialect.name == "sqlite":  # the table's own text, unnamed checks by their invented names
                return sqlite_check_texts(conn, tables)
            inspector = sa.inspect(conn.execution_options(no_parameters=False))
            return {
                (name, str(c["name"])): str(c["sqltext"])
                for name in tables
                for c in inspector.get_check_constraints(name)
                if c.get("name") and c.get("sqltext")
            }

        return DatabaseTexts(checks=await target._run(read))
    conn: Any = getattr(target, "conn", None)
    out = DatabaseTexts()
    if target.dialect.name != "postgresql" or conn is None:
        return out
    for schema, name, check, text in await conn.fetch(PG_CHECK_TEXTS):
        out.checks[(_pg_name(schema, name), check)] = text
    for schema, name, column, text, generated in await conn.fetch(PG_DEFAULT_TEXTS):
        (out.generated if generated else out.defaults)[(_pg_name(schema, name), column)] = text
    for schema, name, index, elements, predicate in await conn.fetch(PG_INDEX_TEXTS):
        if elements is not None:
            out.elements[(_pg_name(schema, name), index)] = list(elements)
        if predicate is not None:
            out.predicates[(_pg_name(schema, name), index)] = predicate
    return out


async def refuse_inheritance(target: Target) -> None:
    """ImportRefused for a table that inherits from another (PostgreSQL's INHERITS): recorded as a table
    of its own, its rows would no longer be its parent's, and the catalogue has no way to say it yet."""
    conn: Any = getattr(target, "conn", None)
    if target.dialect.name != "postgresql" or conn is None:
        return
    rows = await conn.fetch(PG_INHERITS)
    if rows:
        schema, name, parent_schema, parent = rows[0]
        raise ImportRefused(
            f"table {_pg_name(schema, name)} inherits from {_pg_name(parent_schema, parent)}:"
            " table inheritance is not in the catalogue yet"
        )


class _Written:
    """Chooses, for each expression of the live schema (canonical), the text import records (pick)."""

    def __init__(self, dialect: str) -> None:
        self.dialect = dialect

    def pick(
        self,
        what: str,
        canonical: str,
        kind: ExpressionKind,
        known: str | None,
        canon: Callable[[str], str | None],
        text: str | None,
    ) -> str:
        """The log's own text where it is the same expression (``known``, so that the diff finds them
        equal); else the database's (``text``) where it is one expression of the target's dialect; else
        the canonical form where that is one and the database's text could not be had (or, for a check,
        was not one). ImportRefused when neither is."""
        if known is not None and canon(known) == canonical:
            return known
        if text is not None and _accepted(text, kind, self.dialect):
            return text.strip()
        if (text is None or kind == "check") and _accepted(canonical, kind, self.dialect):
            return canonical  # a check's canonical form reads the same (a default's need not: 'now')
        shape = "boolean" if kind == "check" else "scalar"
        raise ImportRefused(
            f"{what}: its expression {(text or canonical)!r} cannot be recorded"
            f" (it is not one {shape} expression the log accepts for {self.dialect})"
        )


def _written_table(table: Table, known: Table | None, texts: DatabaseTexts, chooser: _Written) -> Table:
    """``table`` (live, canonical) with each expression as chooser.pick chooses it."""
    name = table.name
    pick = chooser.pick
    columns = []
    for c in table.columns:
        was = known.column(c.name) if known is not None else None
        update: dict[str, Any] = {}
        if c.default is not None:
            text = texts.defaults.get((name, c.name))
            if text is not None or chooser.dialect == "postgresql":
                update["default"] = pick(
                    f"default of {name}.{c.name}",
                    c.default,
                    "default",
                    was.default if was is not None else None,
                    canonical_default,
                    text,
                )
        if c.generated is not None:
            text = texts.generated.get((name, c.name))
            if text is not None:
                before = was.generated.expression if was is not None and was.generated is not None else None
                expression = pick(
                    f"generated column {name}.{c.name}",
                    c.generated.expression,
                    "generated",
                    before,
                    canonical_expression,
                    text,
                )
                update["generated"] = construct(Generated, {**c.generated.__dict__, "expression": expression})
        columns.append(construct(Column, {**c.__dict__, **update}) if update else c)
    indexes = []
    for index in table.indexes:
        old = next((i for i in known.indexes if i.name == index.name), None) if known is not None else None
        if old is not None and canonical_index(old) == index:
            indexes.append(old)
            continue
        key = (name, index.name)
        elements, where = index.elements, index.where
        raw = texts.elements.get(key)
        if raw is not None and any(e.expression is not None for e in elements):
            elements = tuple(
                e
                if e.expression is None or k >= len(raw)
                else construct(
                    IndexElement,
                    {
                        **e.__dict__,
                        "expression": pick(
                            f"index {name}.{index.name}", e.expression, "generated", None, canonical_expression, raw[k]
                        ),
                    },
                )
                for k, e in enumerate(elements)
            )
        if where is not None and key in texts.predicates:
            where = pick(
                f"predicate of index {name}.{index.name}",
                where,
                "check",
                None,
                canonical_expression,
                texts.predicates[key],
            )
        indexes.append(construct(Index, {**index.__dict__, "elements": elements, "where": where}))
    constraints = []
    for check in table.constraints:
        if check.kind != "check" or check.expression is None:
            constraints.append(check)
            continue
        was_check = known.constraint(check.name) if known is not None else None
        if (
            was_check is not None
            and was_check.kind == "check"
            and canonical_check(was_check.expression) == check.expression
        ):
            constraints.append(was_check)
            continue
        expression = pick(
            f"check {check.name} on {name}",
            check.expression,
            "check",
            None,
            canonical_check,
            texts.checks.get((name, check.name)),
        )
        constraints.append(construct(Constraint, {**check.__dict__, "expression": expression}))
    return construct(
        Table,
        {**table.__dict__, "columns": tuple(columns), "indexes": tuple(indexes), "constraints": tuple(constraints)},
    )


async def _as_written(target: Target, expected: Schema, live: Schema) -> Schema:
    """``live`` (canonical, as introspection gives it) with each expression (defaults, generated columns,
    index expressions and predicates, checks) in the text the diff against ``expected`` should record
    (_Written.pick). ImportRefused names an expression that cannot be recorded."""
    dialect = target.dialect.name
    texts = await database_texts(target, sorted(live.tables))
    chooser = _Written(dialect)
    tables = {name: _written_table(t, expected.tables.get(name), texts, chooser) for name, t in live.tables.items()}
    return construct(
        Schema,
        {
            "tables": tables,
            "enums": getattr(live, "enums", {}),
            "domains": _domains(expected, live),
            "views": _views(expected, live),
            "extensions": extensions_of(live),
            "routines": _kept(routines_of(expected), routines_of(live), routine_differences),
            "triggers": _kept(triggers_of(expected), triggers_of(live), trigger_differences),
        },
    )


def _kept(had: dict[str, Any], read: dict[str, Any], differences: Callable[[Any, Any], list[str]]) -> dict[str, Any]:
    """The routines (or triggers) read, each one the log already has with the same definition (whitespace
    aside) kept as the log has it (with what the log says it uses), so that only a real change is recorded."""
    out = {}
    for key, thing in read.items():
        was = had.get(key)
        out[key] = was if was is not None and not differences({key: was}, {key: thing}) else thing
    return out


def _views(expected: Schema, live: Schema) -> dict[str, View]:
    """The views read, each one the log already has with the same definition (whitespace aside) kept as the
    log has it, so that only a real change is recorded."""
    had = views_of(expected)
    out = {}
    for name, view in views_of(live).items():
        was = had.get(name)
        out[name] = was if was is not None and not view_differences({name: was}, {name: view}) else view
    return out


def _domains(expected: Schema, live: Schema) -> dict[str, DomainType]:
    """The domains read, each one the log already has in the same form (its texts as the database gives them
    back: ``'G'::rating`` for ``'G'``) kept in the log's own text, so that only a real change is recorded."""
    had = domains_of(expected)
    out = {}
    for name, domain in domains_of(live).items():
        was = had.get(name)
        out[name] = was if was is not None and not domain_differences({name: was}, {name: domain}) else domain
    return out


async def nullable_key_warnings(target: Target, tables: list[str]) -> list[str]:
    """A warning for each primary key column of ``tables`` that the database lets hold NULL though the log
    records it NOT NULL, as every key column (SQLite's rowid tables: sqlite_nullable_keys)."""
    if not isinstance(target, _SyncTarget) or target.dialect.name != "sqlite" or not tables:
        return []
    found = await target._run(lambda conn: sqlite_nullable_keys(conn, tables))
    out = []
    for table, column, nulls in found:
        held = f"; {nulls} row{' holds' if nulls == 1 else 's hold'} NULL there" if nulls else ""
        out.append(
            f"column {table}.{column}: in the primary key of a rowid table without NOT NULL, SQLite lets it hold"
            f" NULL; recorded NOT NULL, as every primary key column (a database migrated from the log enforces it)"
            f"{held}"
        )
    return out


def _accepted(text: str, kind: ExpressionKind, dialect: str) -> bool:
    try:
        check_expression(text, kind)
        check_expression(text, kind, dialect)
    except ExpressionError:
        return False
    return True


def _recordable(expected: Schema, written: Schema) -> list[Event]:
    """The events that record ``written``; ImportRefused naming an object whose definition cannot be recorded
    (a routine or trigger the checks of events.objects refuse: a constraint trigger, an ordered-set aggregate)."""
    from pydantic import ValidationError

    try:
        return schema_diff(expected, written)
    except ValidationError as exc:
        reason = exc.errors()[0]["msg"].removeprefix("Value error, ")
        raise ImportRefused(f"cannot record what the database holds: {reason}") from None


async def import_database(
    store: EventStore,
    url: str,
    stream: str,
    *,
    database: str | None = None,
    actor: str | None = None,
    lock_timeout: float = 60.0,
    progress: report.Observer | None = None,
) -> ImportResult:
    """``progress``: told each phase as the import goes (service/progress.py)."""
    label = database or display_url(url)
    with report.reporting(progress, label) as reporter:
        result = await _import(store, url, stream, label, actor or f"import:{label}", lock_timeout, reporter)
        reporter.phase("done", detail=result.kind)
        return result


async def _import(
    store: EventStore, url: str, stream: str, label: str, who: str, lock_timeout: float, reporter: report.Reporter
) -> ImportResult:
    target = await open_target(url)
    try:
        await target.acquire(stream, lock_timeout)
        reporter.phase("locked")
        await refuse_inheritance(target)
        reporter.phase("introspecting")
        live = await target.introspect()
        reporter.phase("introspected", len(live.tables))
        others = [s for s in await target.marker_streams() if s != stream]
        if others:
            raise ImportRefused(f"this database follows stream {others[0]!r}, not {stream!r}")
        head = await store.version(stream)
        marker = await target.read_marker(stream)
        projector = Projector(store)
        if head == 0:
            if not live.tables:
                raise ImportRefused(f"{label} has no tables to import")
            events = _recordable(Schema(), await _as_written(target, Schema(), live))
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
            events = _recordable(expected, await _as_written(target, expected, live))
            kind, message = "drift", f"drift observed in {label}, adopted"
        if not events:
            return ImportResult(label, stream, "nothing")
        result = await EventLog(store, Projector(store)).append(
            Changeset(stream=stream, actor=who, message=message, expected_version=head, events=tuple(events))
        )
        reporter.phase("recorded", len(events), detail=f"{stream} v{result.first_version}..v{result.last_version}")
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
        reporter.phase("checking")
        out.warnings = differences(want, await target.introspect(want))
        touched = sorted({t for e in events if isinstance(t := getattr(e, "table", None), str)})
        out.warnings += await nullable_key_warnings(target, touched)
        return out
    finally:
        try:
            await target.release()
        finally:
            await target.close()
