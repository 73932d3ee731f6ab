"""Authoring from SQLAlchemy models (makemigrations): the models' schema against the head of a stream,
as the events that turn one into the other.

Renames and one-off fills are given as data; what only a person can answer (is this drop and add a
rename? what value do the rows already there get?) is asked through callbacks the caller passes (the
command line asks at its terminal; a caller without one passes none and gets ``BadRequest`` saying
what to give). Nothing is printed; nothing is written until ``record``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from service.app.errors import BadRequest

if TYPE_CHECKING:
    from events.catalog import Event
    from events.model import Schema
    from events.store.base import AppendResult, EventStore
    from projections.diff import Fills, RenameCandidate, Renames

ConfirmRename = Callable[["RenameCandidate"], bool]
"""Asked of each possible rename the given renames do not settle: True if it is one."""
AskFill = Callable[[str, str], str]
"""Asked for (table, column): the SQL expression the rows already in the table get."""


@dataclass(frozen=True)
class Proposal:
    """The events that bring ``stream`` from ``version`` to the models, and the renames that were possible."""

    stream: str
    version: int
    events: tuple[Event, ...]
    candidates: tuple[RenameCandidate, ...]

    def public(self, message: str) -> dict[str, Any]:
        from events.catalog import to_dict

        return {
            "stream": self.stream,
            "expected_version": self.version,
            "message": message,
            "events": [to_dict(e) for e in self.events],
        }


def load_models(spec: str) -> Schema:
    """The schema of SQLAlchemy models (``package.module`` or ``path.py``, optionally ``:metadata``)."""
    from service.authoring.models import ModelError, load_metadata, metadata_schema

    try:
        return metadata_schema(load_metadata(spec))
    except ModelError as exc:
        raise BadRequest(str(exc), field="models") from None


def parse_renames(hints: list[str] | None) -> Renames:
    """``OLD=NEW`` hints (``users.mail=email``, ``old_table=new_table``) as Renames."""
    from projections.diff import Renames

    tables: dict[str, str] = {}
    columns: dict[tuple[str, str], str] = {}
    for hint in hints or []:
        if "=" not in hint:
            raise BadRequest(
                f"--rename wants OLD=NEW (users.mail=email or old_table=new_table), not {hint!r}", field="rename"
            )
        old, new = (part.strip() for part in hint.split("=", 1))
        if not old or not new:
            raise BadRequest(f"--rename {hint!r}: both sides are needed", field="rename")
        if "." in old and "." not in new:
            table, column = old.rsplit(".", 1)
            columns[(tables.get(table, table), column)] = new
        else:
            tables[old] = new
    # column hints name the table as it is after any table rename
    columns = {(tables.get(t, t), c): n for (t, c), n in columns.items()}
    return Renames(tables=tables, columns=columns)


def parse_fills(given: list[str] | None) -> Fills:
    """``TABLE.COLUMN=EXPR`` items -> {(table, column): expression}, each expression checked."""
    from events.expressions import ExpressionError, check_expression

    fills: dict[tuple[str, str], str] = {}
    for item in given or []:
        target, sep, expression = item.partition("=")
        table, dot, column = target.strip().rpartition(".")
        if not sep or not dot or not table or not column or not expression.strip():
            raise BadRequest(
                f"--default wants TABLE.COLUMN=EXPR (such as posts.slug='untitled'), not {item!r}", field="default"
            )
        try:
            check_expression(expression.strip(), "default")
        except ExpressionError as exc:
            raise BadRequest(f"--default {target.strip()}: {exc}", field="default") from None
        fills[(table, column)] = expression.strip()
    return fills


def fills_needed(
    head: Schema, models: Schema, renames: Renames
) -> tuple[list[tuple[str, str]], dict[tuple[str, str], Any]]:
    """The columns whose rows already in the table need a one-off value, by the models' names: (NOT NULL
    columns added to an existing table without a default, {nullable columns made NOT NULL: their new
    default or None})."""
    from projections.diff import needs_fill

    added: list[tuple[str, str]] = []
    tightened: dict[tuple[str, str], Any] = {}
    old_table_of = {new: old for old, new in renames.tables.items()}
    for name, table in sorted(models.tables.items()):
        before = head.tables.get(old_table_of.get(name, name))
        if before is None:
            continue
        old_column_of = {n: o for (t, o), n in renames.columns.items() if t == name}
        for column in table.columns:
            was = before.column(old_column_of.get(column.name, column.name))
            if was is None:
                if needs_fill(column):
                    added.append((name, column.name))
            elif was.nullable and not column.nullable:
                tightened[(name, column.name)] = column.default
    return added, tightened


def _resolve_fills(
    needed: list[tuple[str, str]], given: Fills, *, ask: AskFill | None, placeholder: bool
) -> dict[tuple[str, str], str]:
    fills: dict[tuple[str, str], str] = {}
    for table, column in needed:
        if (table, column) in given:
            fills[(table, column)] = given[(table, column)]
        elif placeholder:  # a listing records nothing: any value lets the changes be listed
            fills[(table, column)] = "NULL"
        elif ask is not None:
            fills[(table, column)] = ask(table, column)
        else:
            raise BadRequest(
                f"{table}.{column} is NOT NULL without a default and {table} may have rows:"
                f" give their value with --default {table}.{column}=EXPR (or a server default, or make it nullable)",
                field="default",
            )
    return fills


def with_log_objects(head: Schema, models: Schema) -> Schema:
    """``models`` (SQLAlchemy's tables and enum types) with what models cannot say kept as the log has it:
    the head's domains, views, extensions, routines and triggers, and each column of a domain whose model
    gives the domain's own type. A makemigrations never proposes to drop them."""
    from events.model import domains_of, evolve, extensions_of, routines_of, triggers_of, views_of

    domains = domains_of(head)
    if (
        not domains
        and not views_of(head)
        and not extensions_of(head)
        and not routines_of(head)
        and not triggers_of(head)
    ):
        return models
    tables = dict(models.tables)
    for name, table in models.tables.items():
        was = head.tables.get(name)
        if was is None:
            continue
        columns = []
        for column in table.columns:
            logged = was.column(column.name)
            if logged is not None and logged.type.is_domain:
                domain = domains.get(logged.type.name)
                if domain is not None and domain.type == column.type:
                    column = evolve(column, type=logged.type)
            columns.append(column)
        tables[name] = evolve(table, columns=tuple(columns))
    return evolve(
        models,
        tables=tables,
        domains={**domains, **domains_of(models)},
        views={**views_of(head), **views_of(models)},
        extensions={**extensions_of(head), **extensions_of(models)},
        routines={**routines_of(head), **routines_of(models)},
        triggers={**triggers_of(head), **triggers_of(models)},
    )


async def propose(
    store: EventStore,
    models: Schema,
    stream: str,
    *,
    renames: Renames,
    fills: Fills,
    detect_renames: bool = True,
    confirm_rename: ConfirmRename | None = None,
    ask_fill: AskFill | None = None,
    listing: bool = False,
) -> Proposal:
    """The events from the head of ``stream`` to ``models``. A possible rename not settled by ``renames``
    is asked of ``confirm_rename`` (without one: BadRequest listing them); a row value not in ``fills`` of
    ``ask_fill`` (without one: BadRequest). ``listing`` (makemigrations --check): neither is asked nor
    refused, the changes are only listed (rows' values as NULL)."""
    from projections.diff import Renames, rename_candidates, schema_diff
    from projections.schema import Projector

    version, head = await Projector(store).schema(stream)
    for old in renames.tables:
        if old not in head.tables:
            raise BadRequest(f"--rename {old}=...: no table {old!r} at the head of {stream!r}", field="rename")
    candidates = rename_candidates(head, models, renames) if detect_renames else []
    if candidates and confirm_rename is not None and not listing:
        tables = dict(renames.tables)
        columns = dict(renames.columns)
        for c in candidates:
            if c.column is None:
                if c.table not in tables and c.new not in tables.values() and confirm_rename(c):
                    tables[c.table] = c.new
            elif (c.table, c.column) not in columns and confirm_rename(c):
                columns[(c.table, c.column)] = c.new
        renames = Renames(tables=tables, columns=columns)
    elif candidates and not listing:
        listed = ", ".join(f"{c} (--rename {c.hint()})" for c in candidates)
        raise BadRequest(f"possible renames, say which: {listed}; or --no-rename to drop and add", field="rename")
    added, tightened = fills_needed(head, models, renames)
    asked = [key for key, default in tightened.items() if default is None]
    for key in fills:
        if key not in added and key not in tightened:
            raise BadRequest(
                f"--default {key[0]}.{key[1]}: not a NOT NULL column added or made NOT NULL without a default",
                field="default",
            )
    ask = None if listing else ask_fill
    added_fills = _resolve_fills(added, fills, ask=ask, placeholder=listing)
    tightened_fills = {key: default for key, default in tightened.items() if default is not None}
    tightened_fills.update({k: fills[k] for k in tightened if k in fills})  # a given fill wins over the default
    tightened_fills.update(_resolve_fills([k for k in asked if k not in fills], fills, ask=ask, placeholder=listing))
    models = with_log_objects(head, models)
    events = schema_diff(head, models, renames, fills={**added_fills, **tightened_fills})
    return Proposal(stream=stream, version=version, events=tuple(events), candidates=tuple(candidates))


async def record(store: EventStore, proposal: Proposal, *, actor: str, message: str) -> AppendResult:
    """The proposal appended to its stream, expecting the version it was made against."""
    from events.envelope import Changeset
    from events.log import EventLog
    from projections.schema import Projector

    changeset = Changeset(
        stream=proposal.stream,
        actor=actor,
        message=message,
        expected_version=proposal.version,
        events=proposal.events,
    )
    return await EventLog(store, Projector(store)).append(changeset)
