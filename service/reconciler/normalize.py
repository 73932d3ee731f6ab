"""Canonical forms for comparing what a database reports with what the log says.

Databases rewrite what they are given: PostgreSQL adds casts (``'x'::text``,
``(0)::numeric``), MariaDB pads decimals (``0.00``) and quotes names in check
expressions. Both sides of a comparison go through the same functions here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from operator import is_
from typing import Any, Protocol

import orjson
from pydantic import PrivateAttr

from events.model import (
    Column,
    Constraint,
    DomainType,
    EnumType,
    Extension,
    Generated,
    Index,
    IndexElement,
    Routine,
    Schema,
    Table,
    Trigger,
    View,
    construct,
    domains_of,
    extensions_of,
    routines_of,
    triggers_of,
    views_of,
)

_CAST = re.compile(r"::\s*(\"[^\"]+\"|[a-z_][a-z0-9_ ]*(\([0-9, ]*\))?)(\[\])*", re.IGNORECASE)
_QUOTED = re.compile(r"^'((?:[^']|'')*)'$")
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_KNOWN_CALLS = {
    "now()": "current_timestamp",
    "current_timestamp()": "current_timestamp",
    "current_timestamp": "current_timestamp",
    "localtimestamp": "current_timestamp",
    "transaction_timestamp()": "current_timestamp",
    "current_date()": "current_date",
    "curdate()": "current_date",
}


_TIMESTAMP_CALL = re.compile(r"^(current_timestamp|now|localtimestamp)\s*\(\s*[0-6]?\s*\)$")
"""The time now with a precision: MariaDB gives ``now()`` back as ``current_timestamp(6)`` in a
DATETIME(6) column (the column's own precision), ``current_timestamp()`` in a DATETIME."""


def _strip_parens(text: str) -> str:
    while text.startswith("(") and text.endswith(")"):
        depth = 0
        for i, ch in enumerate(text):
            depth += ch == "("
            depth -= ch == ")"
            if depth == 0 and i < len(text) - 1:
                return text
        text = text[1:-1].strip()
    return text


@lru_cache(maxsize=4096)
def canonical_default(text: str | None) -> str | None:
    """A default expression in a form both sides agree on; None for no default (or NULL)."""
    if text is None:
        return None
    value = _strip_parens(text.strip())
    if value.upper() == "NULL":
        return None
    # 'x'::text, '-1'::integer, ('0'::numeric)
    stripped = _CAST.sub("", value).strip()
    stripped = _strip_parens(stripped)
    quoted = _QUOTED.match(stripped)
    if quoted and _NUMBER.match(quoted.group(1)):
        stripped = quoted.group(1)  # '-1'::integer is the number -1; '0' in a text column reads the same
    if _NUMBER.match(stripped):
        try:
            number = Decimal(stripped)
        except InvalidOperation:
            return stripped
        if number == number.to_integral_value():
            return str(int(number))
        return format(number.normalize(), "f")
    if quoted:
        return stripped
    lowered = stripped.lower()
    if lowered in ("true", "false"):
        return lowered
    if _TIMESTAMP_CALL.match(lowered):
        return "current_timestamp"
    return _KNOWN_CALLS.get(lowered, lowered)


# PostgreSQL gives LIKE back as its operator: code LIKE 'a%' reads code ~~ 'a%'::text
_LIKE = re.compile(r"\s(NOT\s+I?LIKE|I?LIKE)\s", re.IGNORECASE)
_LIKE_OPERATORS = {"LIKE": " ~~ ", "NOT LIKE": " !~~ ", "ILIKE": " ~~* ", "NOT ILIKE": " !~~* "}


@lru_cache(maxsize=4096)
def canonical_check(text: str | None) -> str | None:
    """A check expression with casts, parentheses, quotes, case and spaces taken out."""
    if text is None:
        return None
    value = text.strip()
    if value.upper().startswith("CHECK"):
        value = value[5:]
    value = _CAST.sub("", value)
    value = _LIKE.sub(lambda m: _LIKE_OPERATORS[" ".join(m.group(1).upper().split())], value)
    value = re.sub(r"'([+-]?\d+(?:\.\d+)?)'", r"\1", value)  # '-1000'::integer was the number -1000
    value = re.sub(r"[()`\"\s]", "", value)
    return value.lower()


def canonical_expression(text: str) -> str:
    """A generated column's or an index's expression, or a partial index's predicate, in the form both
    sides agree on: what :func:`canonical_check` does to a check (databases give these back rewritten
    the same ways)."""
    return canonical_check(text) or ""


def canonical_column(column: Column) -> Column:
    if column.generated is not None:
        expression = canonical_expression(column.generated.expression)
        if expression != column.generated.expression:
            generated = construct(Generated, {**column.generated.__dict__, "expression": expression})
            column = construct(Column, {**column.__dict__, "generated": generated})
    if column.on_update is not None:  # an expression of the kind a default is, read back the same ways
        on_update = canonical_default(column.on_update)
        if on_update != column.on_update:
            column = construct(Column, {**column.__dict__, "on_update": on_update})
    if column.default is None:
        return column
    default = canonical_default(column.default)
    if default != column.default:
        return construct(Column, {**column.__dict__, "default": default})
    return column


def canonical_index(index: Index) -> Index:
    """An index with its expressions and predicate in their canonical form."""
    if index.where is None and not any(e.expression is not None for e in index.elements):
        return index
    elements = tuple(
        e
        if e.expression is None
        else construct(IndexElement, {**e.__dict__, "expression": canonical_expression(e.expression)})
        for e in index.elements
    )
    where = canonical_expression(index.where) if index.where is not None else None
    return construct(Index, {**index.__dict__, "elements": elements, "where": where})


def canonical_constraint(constraint: Constraint) -> Constraint:
    if constraint.kind == "check":
        expression = canonical_check(constraint.expression)
        if expression == constraint.expression:
            return constraint
        return construct(Constraint, {**constraint.__dict__, "expression": expression})
    if constraint.kind == "foreign_key":
        update: dict[str, str | None] = {}
        if constraint.on_delete == "no action":
            update["on_delete"] = None
        if constraint.on_update == "no action":
            update["on_update"] = None
        if update:
            return construct(Constraint, {**constraint.__dict__, **update})
    return constraint


def canonical_table(table: Table) -> Table:
    # only what canonical_column, _constraint and _index can change is looked at (most columns have no
    # default, generated expression or ON UPDATE; most indexes no expression or predicate): a table already
    # canonical, as the log's usually are, is returned as it is, having made nothing
    columns = tuple(
        c if c.default is None and c.generated is None and c.on_update is None else canonical_column(c)
        for c in table.columns
    )
    constraints = tuple(canonical_constraint(c) if c.kind in ("check", "foreign_key") else c for c in table.constraints)
    indexes = tuple(i if i.where is None and not i.elements else canonical_index(i) for i in table.indexes)
    same = (
        all(map(is_, columns, table.columns))
        and all(map(is_, constraints, table.constraints))
        and all(map(is_, indexes, table.indexes))
    )
    if same:
        return table
    return construct(Table, {**table.__dict__, "columns": columns, "constraints": constraints, "indexes": indexes})


def canonical_schema(schema: Schema) -> Schema:
    tables = {n: canonical_table(t) for n, t in schema.tables.items()}
    return construct(
        Schema,
        {
            "tables": tables,
            "enums": getattr(schema, "enums", None) or {},
            "domains": domains_of(schema),
            "views": views_of(schema),
            "extensions": extensions_of(schema),
            "routines": routines_of(schema),
            "triggers": triggers_of(schema),
        },
    )


class TableSource(Protocol):
    """Where a :class:`LiveSchema` gets its tables: a database catalogue read, kept as rows."""

    def names(self) -> Collection[str]:
        """The names of the tables read."""
        ...

    def table(self, name: str) -> Table:
        """One table as a schema object, in its canonical form (built once, then kept)."""
        ...

    def matching(self, expected: Schema) -> set[str]:
        """Names of the tables whose rows equal the table of that name in ``expected`` (in a dialect's
        form), decided on the rows themselves. Sound, not complete: a name left out may still be equal."""
        ...


class LiveSchema(Schema):
    """A schema read from a database, whose table objects are built from the catalogue rows on first use.

    It is a :class:`Schema` in every way once anything reads its tables (or dumps, copies or compares it):
    then every table is built, the rows are let go and it behaves as the schema it stands for (it equals
    a plain Schema with the same tables). Until then :func:`differences` compares the rows with the
    expected schema directly and builds only the tables that differ (for the report).
    """

    _source: TableSource | None = PrivateAttr(default=None)

    @classmethod
    def of(
        cls,
        source: TableSource,
        enums: dict[str, EnumType] | None = None,
        domains: dict[str, DomainType] | None = None,
        views: dict[str, View] | None = None,
        extensions: dict[str, Extension] | None = None,
        routines: dict[str, Routine] | None = None,
        triggers: dict[str, Trigger] | None = None,
    ) -> LiveSchema:
        """``enums``, ``domains``, ``views``, ...: the enum types, domains, views, extensions, routines and
        triggers read (few; kept as they are, not built on first use)."""
        schema = object.__new__(cls)
        values = {
            "enums": enums or {},
            "domains": domains or {},
            "views": views or {},
            "extensions": extensions or {},
            "routines": routines or {},
            "triggers": triggers or {},
        }
        object.__setattr__(schema, "__dict__", values)
        object.__setattr__(schema, "__pydantic_fields_set__", {"tables"})
        object.__setattr__(schema, "__pydantic_extra__", None)
        object.__setattr__(schema, "__pydantic_private__", {"_source": source})
        return schema

    def __getattribute__(self, name: str) -> Any:
        # pydantic reads the fields through __dict__ (dumps, copies, ==, repr); everything else through .tables
        if name == "tables" or name == "__dict__":
            LiveSchema._build(self)
        return object.__getattribute__(self, name)

    def _build(self) -> None:
        """Every table, built from the rows (once); then the rows are let go."""
        values = object.__getattribute__(self, "__dict__")
        if "tables" not in values:
            private = object.__getattribute__(self, "__pydantic_private__")
            source = private["_source"]
            values["tables"] = {n: source.table(n) for n in source.names()}
            private["_source"] = None

    def __getstate__(self) -> dict[Any, Any]:
        LiveSchema._build(self)  # pickled as the schema it stands for, not its rows
        return super().__getstate__()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Schema):
            return (
                self.tables == other.tables
                and self.enums == getattr(other, "enums", {})
                and domains_of(self) == domains_of(other)
                and views_of(self) == views_of(other)
                and extensions_of(self) == extensions_of(other)
                and routines_of(self) == routines_of(other)
                and triggers_of(self) == triggers_of(other)
            )
        return NotImplemented

    __hash__ = Schema.__hash__

    def pending(self) -> TableSource | None:
        """The rows, while no table has been built from them all (else None: use ``tables``)."""
        return object.__getattribute__(self, "__pydantic_private__")["_source"]  # type: ignore[no-any-return]


def differences(expected: Schema, live: Schema) -> list[str]:
    """What differs between two schemas (both already in a dialect's form), one line each.

    Column, index and constraint order do not count. A :class:`LiveSchema` not yet built is compared
    on its rows: only the tables that differ are built, to name what differs.
    """
    enums = _enum_differences(getattr(expected, "enums", None) or {}, getattr(live, "enums", None) or {})
    enums += domain_differences(domains_of(expected), domains_of(live))
    enums += view_differences(views_of(expected), views_of(live))
    enums += extension_differences(extensions_of(expected), extensions_of(live))
    enums += routine_differences(routines_of(expected), routines_of(live))
    enums += trigger_differences(triggers_of(expected), triggers_of(live))
    source = live.pending() if isinstance(live, LiveSchema) else None
    if source is None:
        return enums + _differences(expected, live.tables.get, live.tables)
    live_names = source.names()
    same = source.matching(expected)
    if len(same) == len(live_names) == len(expected.tables) and same.issuperset(expected.tables):
        return enums

    def table(name: str) -> Table | None:
        return source.table(name) if name in live_names else None

    return enums + _differences(expected, table, live_names, same)


def _enum_differences(want: dict[str, EnumType], have: dict[str, EnumType]) -> list[str]:
    """Enum types (Schema.enums) by name: each in both, with the same values in the same order."""
    out = []
    for name in sorted(set(want) | set(have)):
        a, b = want.get(name), have.get(name)
        if a is None:
            out.append(f"enum type {name}: in the database, not in the log")
        elif b is None:
            out.append(f"enum type {name}: in the log, missing from the database")
        elif a.values != b.values:
            out.append(f"enum type {name}: values {list(a.values)} in the log, {list(b.values)} in the database")
    return out


def domain_differences(want: dict[str, DomainType], have: dict[str, DomainType]) -> list[str]:
    """Domains (Schema.domains) by name: each in both, with the same type, default, nullability and checks
    (in any order), each difference said as a column's is."""
    out = []
    for name in sorted(set(want) | set(have)):
        a, b = want.get(name), have.get(name)
        if a is None:
            out.append(f"domain {name}: in the database, not in the log")
            continue
        if b is None:
            out.append(f"domain {name}: in the log, missing from the database")
            continue
        if a.type != b.type:
            out.append(f"domain {name}: type {a.type} in the log, {b.type} in the database")
        if a.nullable != b.nullable:
            out.append(f"domain {name}: nullable {a.nullable} in the log, {b.nullable} in the database")
        if canonical_default(a.default) != canonical_default(b.default):
            out.append(f"domain {name}: default {a.default!r} in the log, {b.default!r} in the database")
        checks_a = {c.name: canonical_check(c.expression) for c in a.checks}
        checks_b = {c.name: canonical_check(c.expression) for c in b.checks}
        for check in sorted(set(checks_a) | set(checks_b)):
            if checks_a.get(check) != checks_b.get(check):
                out.append(
                    f"domain {name}: check {check} {checks_a.get(check)!r} in the log,"
                    f" {checks_b.get(check)!r} in the database"
                )
    return out


def extension_differences(want: dict[str, Extension], have: dict[str, Extension]) -> list[str]:
    """Extensions (Schema.extensions; PostgreSQL's) by name: each in both, in the same schema."""
    out = []
    for name in sorted(set(want) | set(have)):
        a, b = want.get(name), have.get(name)
        if a is None:
            out.append(f"extension {name}: in the database, not in the log")
        elif b is None:
            out.append(f"extension {name}: in the log, missing from the database")
        elif a.schema_name != b.schema_name:
            where = [e.schema_name or "the default schema" for e in (a, b)]
            out.append(f"extension {name}: in {where[0]} in the log, in {where[1]} in the database")
    return out


def canonical_definition(text: str) -> str:
    """A view's definition to compare: its whitespace runs as one space, no trailing ``;``."""
    out = " ".join(text.split())
    return out[:-1].rstrip() if out.endswith(";") else out


def view_differences(want: dict[str, View], have: dict[str, View]) -> list[str]:
    """Views (Schema.views, in a dialect's form) by name: each in both, of the same kind, with the same
    definition (whitespace runs aside: the dialect's normalize_views), each difference said as a column's."""
    out = []
    for name in sorted(set(want) | set(have)):
        a, b = want.get(name), have.get(name)
        if a is None:
            out.append(f"view {name}: in the database, not in the log")
        elif b is None:
            out.append(f"view {name}: in the log, missing from the database")
        elif a.security != b.security:
            held = [v.security or "definer" for v in (a, b)]
            out.append(f"view {name}: security {held[0]} in the log, {held[1]} in the database")
        elif a.materialized != b.materialized:
            kinds = ["materialized" if v.materialized else "plain" for v in (a, b)]
            out.append(f"view {name}: {kinds[0]} in the log, {kinds[1]} in the database")
        else:
            mine = next(iter(a.definitions.values()), None)
            theirs = next(iter(b.definitions.values()), None)
            if mine is not None and theirs is not None and canonical_definition(mine) == canonical_definition(theirs):
                continue
            out.append(f"view {name}: definition {_short(mine)} in the log, {_short(theirs)} in the database")
    return out


_POSITIONS = frozenset({"location", "stmt_location", "stmt_len", "arg_location"})


def _pg_tree(node: Any) -> Any:
    """A parse tree with what does not change the object left out: positions, OR REPLACE, the default schema
    ``public`` in a function's, aggregate's or trigger's table name, the order of options."""
    if isinstance(node, list):
        return [_pg_tree(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _pg_tree(v) for k, v in node.items() if k not in _POSITIONS and k != "replace"}
    for key in ("funcname", "defnames"):
        names = out.get(key)
        if isinstance(names, list) and len(names) == 2 and names[0] == {"String": {"sval": "public"}}:
            out[key] = names[1:]
    if out.get("schemaname") == "public":
        del out["schemaname"]
    for key in ("options", "definition"):  # a function's options, an aggregate's parts: in any order
        if isinstance(out.get(key), list):
            out[key] = sorted(out[key], key=lambda o: orjson.dumps(o, option=orjson.OPT_SORT_KEYS))
    return out


@lru_cache(maxsize=4096)
def canonical_object_definition(dialect: str, text: str) -> str:
    """A routine's or trigger's definition to compare: PostgreSQL's as its parser reads it (so that the text
    written and the text ``pg_get_functiondef`` gives back compare equal: quoting, dollar quotes, layout,
    ``public.``, the order of options aside); any other (or one it cannot read) with its whitespace runs as one."""
    if dialect == "postgresql":
        from pglast import parser as pg_parser

        try:
            tree = orjson.loads(pg_parser.parse_sql_json(text))
        except pg_parser.ParseError:
            return canonical_definition(text)
        return orjson.dumps(_pg_tree(tree), option=orjson.OPT_SORT_KEYS).decode()
    return canonical_definition(text)


def _same_definitions(a: dict[str, str], b: dict[str, str]) -> bool:
    (dialect, mine), (_, theirs) = next(iter(a.items())), next(iter(b.items()))
    return canonical_object_definition(dialect, mine) == canonical_object_definition(dialect, theirs)


def routine_differences(want: dict[str, Routine], have: dict[str, Routine]) -> list[str]:
    """Routines (Schema.routines, in a dialect's form) by name and signature: each in both, of the same kind,
    with the same definition (whitespace runs aside), each difference said as a column's."""
    out = []
    for key in sorted(set(want) | set(have)):
        a, b = want.get(key), have.get(key)
        if a is None:
            out.append(f"{b.kind if b else 'routine'} {key}: in the database, not in the log")
        elif b is None:
            out.append(f"{a.kind} {key}: in the log, missing from the database")
        elif a.kind != b.kind:
            out.append(f"routine {key}: a {a.kind} in the log, a {b.kind} in the database")
        else:
            mine, theirs = next(iter(a.definitions.values()), None), next(iter(b.definitions.values()), None)
            if mine is not None and theirs is not None and _same_definitions(a.definitions, b.definitions):
                continue
            out.append(f"{a.kind} {key}: definition {_short(mine)} in the log, {_short(theirs)} in the database")
    return out


def trigger_differences(want: dict[str, Trigger], have: dict[str, Trigger]) -> list[str]:
    """Triggers (Schema.triggers, in a dialect's form) by table and name: each in both, with the same
    definition (whitespace runs aside), each difference said as a column's."""
    out = []
    for key in sorted(set(want) | set(have)):
        a, b = want.get(key), have.get(key)
        shown = f"trigger {(a or b).name} on {(a or b).table}"  # type: ignore[union-attr]
        if a is None:
            out.append(f"{shown}: in the database, not in the log")
        elif b is None:
            out.append(f"{shown}: in the log, missing from the database")
        else:
            mine, theirs = next(iter(a.definitions.values()), None), next(iter(b.definitions.values()), None)
            if mine is not None and theirs is not None and _same_definitions(a.definitions, b.definitions):
                continue
            out.append(f"{shown}: definition {_short(mine)} in the log, {_short(theirs)} in the database")
    return out


def _short(text: str | None) -> str:
    if text is None:
        return "none"
    return repr(text if len(text) <= 200 else text[:197] + "...")


def _differences(
    expected: Schema,
    live_table: Callable[[str], Table | None],
    live_names: Collection[str],
    same: Collection[str] = (),
) -> list[str]:
    out: list[str] = []
    for name in sorted(set(expected.tables) | set(live_names)):
        if name in same:
            continue
        want, have = expected.tables.get(name), live_table(name)
        if want is None:
            out.append(f"table {name}: in the database, not in the log")
            continue
        if have is None:
            out.append(f"table {name}: in the log, missing from the database")
            continue
        out.extend(_table_differences(name, want, have))
    return out


def _same_items(mine: tuple[object, ...], theirs: tuple[object, ...]) -> bool:
    if len(mine) != len(theirs):
        return False
    by_name = _by_name(theirs)
    for a in mine:
        b = by_name.get(str(getattr(a, "name")))  # noqa: B009
        if b is None or not _same(a, b):
            return False
    return True


def _by_name(items: tuple[object, ...]) -> dict[str, object]:
    return {str(getattr(i, "name")): i for i in items}  # noqa: B009


def _same(a: object, b: object) -> bool:
    """Equality of two frozen schema objects (what pydantic's ``==`` decides, without its overhead)."""
    return a is b or a.__dict__ == b.__dict__


def _table_differences(name: str, want: Table, have: Table) -> list[str]:
    out: list[str] = []
    if (
        want.primary_key == have.primary_key
        and want.primary_key_name == have.primary_key_name
        and want.comment == have.comment
        and _partitioning(want) == _partitioning(have)
        and _same_items(want.columns, have.columns)
        and _same_items(want.indexes, have.indexes)
        and _same_items(want.constraints, have.constraints)
    ):
        return out
    for what, mine, theirs in (
        ("column", _by_name(want.columns), _by_name(have.columns)),
        ("index", _by_name(want.indexes), _by_name(have.indexes)),
        ("constraint", _by_name(want.constraints), _by_name(have.constraints)),
    ):
        for key in sorted(set(mine) | set(theirs)):
            a, b = mine.get(key), theirs.get(key)
            if a is None:
                out.append(f"{what} {name}.{key}: in the database, not in the log")
            elif b is None:
                out.append(f"{what} {name}.{key}: in the log, missing from the database")
            elif not _same(a, b):
                da, db = a.model_dump(mode="json"), b.model_dump(mode="json")  # type: ignore[attr-defined]
                changed = [f"{k} {da[k]!r} in the log, {db[k]!r} in the database" for k in da if da[k] != db.get(k)]
                out.append(f"{what} {name}.{key}: " + "; ".join(changed))
    if tuple(want.primary_key) != tuple(have.primary_key):
        out.append(
            f"primary key of {name}: {list(want.primary_key)} in the log, {list(have.primary_key)} in the database"
        )
    if want.primary_key_name != have.primary_key_name:
        out.append(
            f"primary key name of {name}: {want.primary_key_name!r} in the log,"
            f" {have.primary_key_name!r} in the database"
        )
    if want.comment != have.comment:
        out.append(f"comment of {name}: {want.comment!r} in the log, {have.comment!r} in the database")
    (part_key, of), (live_key, live_of) = _partitioning(want), _partitioning(have)
    if part_key != live_key:
        out.append(f"partition key of {name}: {part_key!r} in the log, {live_key!r} in the database")
    if of != live_of:
        out.append(f"partition of {name}: {_partition_text(of)} in the log, {_partition_text(live_of)} in the database")
    return out


def _partitioning(table: Table) -> tuple[str | None, tuple[str, str] | None]:
    """A table's partition key and (parent, bound), None where it has none (a table built before they were)."""
    of = table.__dict__.get("partition_of")
    return table.__dict__.get("partition_by"), None if of is None else (of.parent, of.bound)


def _partition_text(of: tuple[str, str] | None) -> str:
    return "none" if of is None else f"{of[0]} {of[1]}"
