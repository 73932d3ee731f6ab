"""Every statement the reconciler sends is proven to be one statement of the kind it planned.

The dialects build DDL from fixed heads (``CREATE TABLE``, ``ALTER TABLE``, ...), quoted names
and the log's expression text. Whatever the text holds, what goes to a database must be exactly
the statement planned, never more: PostgreSQL takes several statements in one simple-query
message (the batches in service.reconciler.targets), so one stray ``;`` in a default would run
whatever follows it.

- PostgreSQL: the statement is parsed by PostgreSQL's own parser (pglast): exactly one statement,
  of the node type its kind names (``CreateStmt``, ``AlterTableStmt``, ...). The one ``DO`` block
  the dialect emits (dropping a primary key whose name the database chose) must be that block,
  word for word, around its table's name.
- MySQL/MariaDB and SQLite: sqlglot's tokenizer for the dialect: no ``;`` outside a literal, no
  comment (MySQL runs ``/*! ... */``), and the statement starts with its kind's keywords. A trigger's
  own statement (its body's statements end with ``;``) is proven one CREATE TRIGGER by events.objects.

A statement's kind comes from its head (:func:`kind_of`), and an event may only emit the kinds it
is known to (:data:`EVENT_KINDS`: ``index_created`` never emits a ``DROP TABLE``). make_plan checks
every statement (so ``migrate --plan`` and ``sqlmigrate`` refuse too) and the targets check again,
from the cache, right before a statement is sent.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Protocol

import orjson
import sqlglot
from pglast import parser as pg_parser
from sqlglot import TokenType
from sqlglot.errors import SqlglotError

from events.datasteps import DataStepError, check_data_statement


class UnsafeStatement(ValueError):
    """A statement the reconciler will not send (not exactly one statement of its planned kind)."""


# kind -> (the head it starts with, PostgreSQL's node type for it, the object type a DROP names)
KINDS: dict[str, tuple[re.Pattern[str], frozenset[str], str | None]] = {
    "create_table": (re.compile(r"CREATE TABLE\s"), frozenset({"CreateStmt"}), None),
    "create_index": (re.compile(r"CREATE (UNIQUE )?((FULLTEXT|SPATIAL) )?INDEX\s"), frozenset({"IndexStmt"}), None),
    # ALTER TABLE ... RENAME is PostgreSQL's RenameStmt
    "alter_table": (re.compile(r"ALTER TABLE\s"), frozenset({"AlterTableStmt", "RenameStmt"}), None),
    "drop_table": (re.compile(r"DROP TABLE\s"), frozenset({"DropStmt"}), "OBJECT_TABLE"),
    "drop_index": (re.compile(r"DROP INDEX\s"), frozenset({"DropStmt"}), "OBJECT_INDEX"),
    "comment": (re.compile(r"COMMENT ON\s"), frozenset({"CommentStmt"}), None),
    "rename_table": (re.compile(r"RENAME TABLE\s"), frozenset(), None),
    "copy_rows": (re.compile(r"INSERT INTO\s"), frozenset(), None),
    "drop_primary_key": (re.compile(r"DO \$schemalog_*\$"), frozenset({"DoStmt"}), None),
    # PostgreSQL's enum types: CREATE TYPE ... AS ENUM, ALTER TYPE ... ADD VALUE / RENAME TO, DROP TYPE
    "create_type": (re.compile(r"CREATE TYPE\s"), frozenset({"CreateEnumStmt"}), None),
    "alter_type": (re.compile(r"ALTER TYPE\s"), frozenset({"AlterEnumStmt", "RenameStmt"}), None),
    "drop_type": (re.compile(r"DROP TYPE\s"), frozenset({"DropStmt"}), "OBJECT_TYPE"),
    # PostgreSQL's domains
    "create_domain": (re.compile(r"CREATE DOMAIN\s"), frozenset({"CreateDomainStmt"}), None),
    "drop_domain": (re.compile(r"DROP DOMAIN\s"), frozenset({"DropStmt"}), "OBJECT_DOMAIN"),
    # PostgreSQL's extensions
    "create_extension": (re.compile(r"CREATE EXTENSION\s"), frozenset({"CreateExtensionStmt"}), None),
    "drop_extension": (re.compile(r"DROP EXTENSION\s"), frozenset({"DropStmt"}), "OBJECT_EXTENSION"),
    # views: a SQLite view's statement is its own text (events.objects), in any case
    "create_view": (
        re.compile(r"CREATE\s+(OR\s+REPLACE\s+)?(SQL\s+SECURITY\s+INVOKER\s+)?(MATERIALIZED\s+)?VIEW\s", re.IGNORECASE),
        frozenset({"ViewStmt", "CreateTableAsStmt"}),
        None,
    ),
    "drop_view": (re.compile(r"DROP VIEW\s"), frozenset({"DropStmt"}), "OBJECT_VIEW"),
    "drop_materialized_view": (re.compile(r"DROP MATERIALIZED VIEW\s"), frozenset({"DropStmt"}), "OBJECT_MATVIEW"),
    # routines and triggers: their statement is their own text (events.objects), in any case
    "create_function": (
        re.compile(r"CREATE\s+(OR\s+REPLACE\s+)?(FUNCTION|PROCEDURE)\s", re.IGNORECASE),
        frozenset({"CreateFunctionStmt"}),
        None,
    ),
    "create_aggregate": (
        re.compile(r"CREATE\s+(OR\s+REPLACE\s+)?AGGREGATE\s", re.IGNORECASE),
        frozenset({"DefineStmt"}),
        None,
    ),
    "create_trigger": (
        re.compile(r"CREATE\s+(OR\s+REPLACE\s+)?TRIGGER\s", re.IGNORECASE),
        frozenset({"CreateTrigStmt"}),
        None,
    ),
    "drop_function": (re.compile(r"DROP FUNCTION\s"), frozenset({"DropStmt"}), "OBJECT_FUNCTION"),
    "drop_procedure": (re.compile(r"DROP PROCEDURE\s"), frozenset({"DropStmt"}), "OBJECT_PROCEDURE"),
    "drop_aggregate": (re.compile(r"DROP AGGREGATE\s"), frozenset({"DropStmt"}), "OBJECT_AGGREGATE"),
    "drop_trigger": (re.compile(r"DROP TRIGGER\s"), frozenset({"DropStmt"}), "OBJECT_TRIGGER"),
    # PostgreSQL's serial columns (IdentityOptions.sequence): the sequence made, owned, dropped with them
    "create_sequence": (re.compile(r"CREATE SEQUENCE\s"), frozenset({"CreateSeqStmt"}), None),
    "alter_sequence": (re.compile(r"ALTER SEQUENCE\s"), frozenset({"AlterSeqStmt"}), None),
    "drop_sequence": (re.compile(r"DROP SEQUENCE\s"), frozenset({"DropStmt"}), "OBJECT_SEQUENCE"),
    # the rows a column made NOT NULL holds NULL in get its fill first (column_altered's fill)
    "update": (re.compile(r"UPDATE\s"), frozenset({"UpdateStmt"}), None),
    # a data step's own statements (sql_run), written by hand: any case, each judged whole by events.datasteps
    "data_insert": (re.compile(r"\s*INSERT\s", re.IGNORECASE), frozenset({"InsertStmt"}), None),
    "data_update": (re.compile(r"\s*UPDATE\s", re.IGNORECASE), frozenset({"UpdateStmt"}), None),
    "data_delete": (re.compile(r"\s*DELETE\s", re.IGNORECASE), frozenset({"DeleteStmt"}), None),
}

DATA_KINDS = frozenset({"data_insert", "data_update", "data_delete"})
"""The kinds of a data step's statements (sql_run), in every dialect."""

DIALECT_KINDS: dict[str, frozenset[str]] = {
    "postgresql": frozenset(
        {"create_table", "create_index", "alter_table", "drop_table", "drop_index", "comment", "drop_primary_key"}
        | {"create_type", "alter_type", "drop_type", "update", "create_domain", "drop_domain"}
        | {"create_view", "drop_view", "drop_materialized_view", "create_extension", "drop_extension"}
        | {"create_sequence", "alter_sequence", "drop_sequence"}
        | {"create_function", "create_aggregate", "create_trigger"}
        | {"drop_function", "drop_procedure", "drop_aggregate", "drop_trigger"}
    ),
    "mysql": frozenset({"create_table", "create_index", "alter_table", "drop_table", "drop_index", "rename_table"})
    | {"update", "create_view", "drop_view", "create_trigger", "drop_trigger"},
    "sqlite": frozenset({"create_table", "create_index", "alter_table", "drop_table", "drop_index", "copy_rows"})
    | {"update", "create_view", "drop_view", "create_trigger", "drop_trigger"},
}
for _dialect in DIALECT_KINDS:  # a data step runs on every dialect
    DIALECT_KINDS[_dialect] |= DATA_KINDS
"""The kinds of statement each dialect's DDL is made of (SQLite copies rows when it rebuilds a table)."""

_REBUILD = frozenset({"create_table", "copy_rows", "drop_table", "alter_table", "create_index", "create_trigger"})
"""What SQLite's table rebuild emits: new table, rows copied, old dropped, new renamed, indexes and triggers
again (dropping the table dropped its triggers)."""

EVENT_KINDS: dict[str, frozenset[str]] = {
    "table_created": frozenset({"create_table", "comment", "create_index", "alter_table"}),
    "table_dropped": frozenset({"drop_table"}),
    "table_renamed": frozenset({"alter_table", "rename_table"}) | _REBUILD,
    "table_altered": frozenset({"comment", "alter_table"}),
    "column_added": frozenset({"alter_table", "comment"}) | _REBUILD,
    "column_dropped": frozenset({"alter_table"}) | _REBUILD,
    "column_renamed": frozenset({"alter_table"}) | _REBUILD,
    "column_altered": frozenset({"alter_table", "comment", "update"}) | _REBUILD,
    "index_created": frozenset({"create_index"}),
    "index_dropped": frozenset({"drop_index", "alter_table"}),  # MariaDB: an index for a foreign key in its place
    "constraint_added": frozenset({"alter_table"}) | _REBUILD,
    "constraint_dropped": frozenset({"alter_table", "drop_index"}) | _REBUILD,
    "primary_key_set": frozenset({"alter_table", "drop_primary_key"}) | _REBUILD,
    # PostgreSQL's enum types; a value is dropped by making the type again and moving its columns to it
    "enum_created": frozenset({"create_type"}),
    "domain_created": frozenset({"create_domain"}),
    "domain_dropped": frozenset({"drop_domain"}),
    "extension_created": frozenset({"create_extension"}),
    "extension_dropped": frozenset({"drop_extension"}),
    "view_created": frozenset({"create_view"}),
    "view_replaced": frozenset({"create_view", "drop_view", "drop_materialized_view"}),
    "view_dropped": frozenset({"drop_view", "drop_materialized_view"}),
    "routine_created": frozenset({"create_function", "create_aggregate"}),
    "routine_replaced": frozenset({"create_function", "create_aggregate"}),
    "routine_dropped": frozenset({"drop_function", "drop_procedure", "drop_aggregate"}),
    "trigger_created": frozenset({"create_trigger"}),
    "trigger_replaced": frozenset({"create_trigger", "drop_trigger"}),  # SQLite: dropped and made again
    "trigger_dropped": frozenset({"drop_trigger"}),
    "enum_value_added": frozenset({"alter_type", "alter_table"})  # MariaDB: each column of the type restated
    | _REBUILD,  # SQLite: the tables of its columns rebuilt when the longest value changes
    "enum_value_dropped": frozenset({"alter_type", "create_type", "alter_table", "drop_type", "drop_index"}) | _REBUILD,
    "enum_dropped": frozenset({"drop_type"}),
    "sql_run": DATA_KINDS,
}
"""The kinds of statement each event type may emit, in any dialect."""
for _event, _kinds in (  # PostgreSQL's serial columns' sequences come and go with them
    ("table_created", {"create_sequence", "alter_sequence"}),
    ("table_dropped", {"drop_sequence"}),
    ("column_added", {"create_sequence", "alter_sequence"}),
    ("column_dropped", {"drop_sequence"}),
    ("column_altered", {"alter_sequence"}),  # a serial column's options changed in place
):
    EVENT_KINDS[_event] |= _kinds

_LITERAL = r"'(?:[^']|'')*'"
_DROP_PRIMARY_KEY = re.compile(
    r" DECLARE pk text; BEGIN SELECT conname INTO pk FROM pg_constraint"
    rf" WHERE conrelid = (?P<table>{_LITERAL})::regclass AND contype = 'p';"
    rf" EXECUTE format\('ALTER TABLE %s DROP CONSTRAINT %I', (?P<again>{_LITERAL}), pk\); END "
)
"""The body of the one DO block the PostgreSQL dialect emits, around its table's name (a literal)."""

_SQLGLOT_READERS = {"mysql": "mysql", "sqlite": "sqlite"}


def shown(sql: str) -> str:
    return repr(sql if len(sql) <= 200 else sql[:197] + "...")


def kind_of(sql: str, among: Iterable[str] | None = None) -> str:
    """The kind of statement ``sql`` starts as (its head); UnsafeStatement if none the reconciler plans.

    ``among``: the kinds to try first (an event's own), since kinds may share a head: SQLite's rebuild
    copies rows with an INSERT, and a data step inserts rows too.
    """
    first = [k for k in KINDS if among is not None and k in among]
    for kind in first + [k for k in KINDS if k not in first]:
        head, _nodes, _object = KINDS[kind]
        if head.match(sql):
            return kind
    raise UnsafeStatement(f"{shown(sql)} is no kind of statement the reconciler plans")


def check_planned(dialect_name: str, sql: str, event_type: str) -> str:
    """Check a statement emitted for an event of ``event_type``; return its kind."""
    allowed = EVENT_KINDS.get(event_type, frozenset())
    kind = kind_of(sql, allowed)
    if kind not in allowed:
        raise UnsafeStatement(f"a {kind.replace('_', ' ')} statement is not what {event_type} emits: {shown(sql)}")
    check_statement(dialect_name, sql, kind)
    return kind


class Planned(Protocol):
    """A statement as a plan holds it (service.reconciler.plan.Step)."""

    @property
    def sql(self) -> str: ...
    @property
    def kind(self) -> str: ...


def check_steps(dialect_name: str, steps: Iterable[Planned]) -> None:
    """The targets' last guard, right before statements are sent: each is (still) what it was proven to be."""
    for step in steps:
        check_statement(dialect_name, step.sql, step.kind)


@lru_cache(maxsize=65536)
def check_statement(dialect_name: str, sql: str, expected_kind: str) -> None:
    """Refuse (UnsafeStatement) unless ``sql`` is exactly one ``expected_kind`` statement of the dialect.

    Cached: make_plan checks every statement, and the targets check each again right before it is
    sent (a cache hit). A refusal is not cached (an exception), so it is refused every time.
    """
    if dialect_name not in DIALECT_KINDS:
        raise UnsafeStatement(f"unknown dialect {dialect_name!r}")
    if expected_kind not in DIALECT_KINDS[dialect_name]:
        raise UnsafeStatement(f"{dialect_name} is sent no {expected_kind.replace('_', ' ')} statement: {shown(sql)}")
    head, _nodes, _object = KINDS[expected_kind]
    if not head.match(sql):
        raise UnsafeStatement(f"not a {expected_kind.replace('_', ' ')} statement: {shown(sql)}")
    if "\x00" in sql:
        raise UnsafeStatement(f"a statement holds a NUL character: {shown(sql)}")
    if dialect_name == "postgresql":
        _postgresql(sql, expected_kind)
    elif dialect_name == "sqlite" and expected_kind == "create_trigger":
        _sqlite_trigger(sql)  # its body's statements end with ';': proven one CREATE TRIGGER another way
    elif dialect_name == "mysql" and expected_kind == "create_trigger":
        _mysql_trigger(sql)  # a BEGIN ... END body's statements end with ';': proven one CREATE TRIGGER so
    else:
        _tokens(sql, _SQLGLOT_READERS[dialect_name])
    if expected_kind in DATA_KINDS:
        _data_statement(dialect_name, sql, expected_kind)


def _data_statement(dialect_name: str, sql: str, expected_kind: str) -> None:
    """A data step's statement is the log's text as it was written: judged whole again, for this dialect
    (one statement, no other statement inside it, no system or schemalog table, allowed functions only)."""
    try:
        kind = check_data_statement(sql, dialect_name)
    except DataStepError as exc:
        raise UnsafeStatement(str(exc)) from None
    if f"data_{kind}" != expected_kind:
        raise UnsafeStatement(f"a {kind.upper()} where a {expected_kind[5:].upper()} was planned: {shown(sql)}")


def _postgresql(sql: str, kind: str) -> None:
    try:
        tree = orjson.loads(pg_parser.parse_sql_json(sql))
    except pg_parser.ParseError as exc:
        raise UnsafeStatement(f"PostgreSQL's parser does not read it: {exc}: {shown(sql)}") from None
    statements = tree.get("stmts", [])
    if len(statements) != 1:
        raise UnsafeStatement(f"{len(statements)} statements where one was planned: {shown(sql)}")
    node = statements[0]["stmt"]
    (node_type,) = node
    _head, nodes, object_type = KINDS[kind]
    if node_type not in nodes:
        raise UnsafeStatement(f"a {node_type} where a {kind.replace('_', ' ')} statement was planned: {shown(sql)}")
    fields = node[node_type]
    if object_type is not None and fields.get("removeType") != object_type:
        raise UnsafeStatement(f"a DROP of {fields.get('removeType')} where {object_type} was planned: {shown(sql)}")
    if kind == "drop_primary_key":
        _do_block(fields, sql)


def _do_block(fields: dict[str, object], sql: str) -> None:
    """The DO block is the dialect's own: its body exactly the template, for one table named twice."""
    args = fields.get("args")
    body = None
    if isinstance(args, list) and len(args) == 1:
        element = args[0].get("DefElem", {}) if isinstance(args[0], dict) else {}
        if element.get("defname") == "as":
            body = element.get("arg", {}).get("String", {}).get("sval")
    match = _DROP_PRIMARY_KEY.fullmatch(body) if isinstance(body, str) else None
    if match is None or match.group("table") != match.group("again"):
        raise UnsafeStatement(f"a DO block that is not the primary key's drop: {shown(sql)}")


def _sqlite_trigger(sql: str) -> None:
    from events.objects import DefinitionError, sqlite_trigger_target

    try:
        sqlite_trigger_target(sql)
    except DefinitionError as exc:
        raise UnsafeStatement(f"not one CREATE TRIGGER statement: {exc}") from None


def _mysql_trigger(sql: str) -> None:
    from events.objects import DefinitionError, mysql_trigger_target

    try:
        mysql_trigger_target(sql)
    except DefinitionError as exc:
        raise UnsafeStatement(f"not one CREATE TRIGGER statement: {exc}") from None


def _tokens(sql: str, reader: str) -> None:
    try:
        tokens = sqlglot.tokenize(sql, read=reader)
    except SqlglotError as exc:
        raise UnsafeStatement(f"sqlglot's {reader} tokenizer does not read it: {exc}: {shown(sql)}") from None
    for token in tokens:
        if token.comments:
            raise UnsafeStatement(f"a statement holds a comment: {shown(sql)}")
        if token.token_type == TokenType.SEMICOLON:
            raise UnsafeStatement(f"a statement holds a ';' outside its literals: {shown(sql)}")
