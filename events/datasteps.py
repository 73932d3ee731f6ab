"""The statements of a data step (``sql_run``), checked by each dialect's own parser before they are stored.

A data step is text the reconciler sends as it is, so it gets the same distrust as an expression
(events.expressions), with one difference: a whole statement is what it is for. Each must be exactly
one INSERT, UPDATE or DELETE of its dialect, as PostgreSQL's own parser (pglast) or sqlglot's MySQL and
SQLite readers read it, and nothing that reaches past the application's rows:

- no ``;``, no comment (MySQL runs ``/*! ... */``), no parameter or variable;
- no statement inside it that changes data (PostgreSQL's ``WITH d AS (DELETE ...) INSERT ...``), no
  ``SELECT ... INTO``: the one statement is the whole effect;
- no table of schemalog's own (``schemalog_*``), of SQLite's (``sqlite_*``) or of a system catalogue
  (``pg_*``, ``pg_catalog``, ``information_schema``, MySQL's ``mysql``, ``performance_schema``, ``sys``);
- calls only of the functions an expression may call (events.expressions.ALLOWED_FUNCTIONS) and of
  the aggregates and window functions a backfill needs: never ``pg_sleep``, ``load_file``,
  ``dblink_exec``, ``set_config``.

The reconciler checks every statement again for its target before it sends it
(service.reconciler.statements), so text written into the store behind append's back fares no better.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal

import orjson

from events.expressions import ALLOWED_FUNCTIONS, SQLGLOT_FUNCTIONS

if TYPE_CHECKING:  # imported by _load_parsers, on the first statement checked
    import sqlglot
    from pglast import parser as pg_parser
    from sqlglot import TokenType, exp
    from sqlglot.errors import SqlglotError

DataKind = Literal["insert", "update", "delete"]

DATA_DIALECTS = ("postgresql", "mysql", "sqlite")
DIALECT_ALIASES = {"postgres": "postgresql", "mariadb": "mysql"}
"""Other names a changeset may give a dialect; stored under the name the reconciler uses."""

MAX_STATEMENTS = 100
"""Statements of one dialect, one way (forward or backward)."""
MAX_STATEMENT_CHARS = 100_000

DATA_FUNCTIONS = ALLOWED_FUNCTIONS | frozenset(
    {
        "count",
        "sum",
        "min",
        "max",
        "avg",
        "group_concat",
        "string_agg",
        "array_agg",
        "json_agg",
        "jsonb_agg",
        "json_group_array",
        "bool_and",
        "bool_or",
        "every",
        "row_number",
        "rank",
        "dense_rank",
        "cast",
    }
)
"""What a data step may call: an expression's functions, and aggregates and window functions over rows."""

_SQLGLOT_DATA_FUNCTIONS = SQLGLOT_FUNCTIONS | frozenset(
    {
        "Count",
        "Sum",
        "Min",
        "Max",
        "Avg",
        "GroupConcat",
        "ArrayAgg",
        "LogicalAnd",
        "LogicalOr",
        "RowNumber",
        "Cast",
        "TryCast",
        "Case",
        "Exists",
        "Anonymous",  # judged by its name below
    }
)
"""sqlglot's classes for the allowed functions (and CASE, CAST, EXISTS, which it reads as functions)."""

_SYSTEM_SCHEMAS = frozenset(
    {"pg_catalog", "pg_toast", "information_schema", "mysql", "performance_schema", "sys", "temp"}
)
_SYSTEM_PREFIXES = ("schemalog_", "sqlite_", "pg_")

_PG_ROOTS: dict[str, DataKind] = {"InsertStmt": "insert", "UpdateStmt": "update", "DeleteStmt": "delete"}
_PG_MODIFYING = frozenset(_PG_ROOTS) | {"MergeStmt"}
_PG_REFUSED_TOKENS = {
    "ASCII_59": "it holds a ';' (one statement per entry)",
    "SQL_COMMENT": "it holds a comment",
    "C_COMMENT": "it holds a comment",
    "PARAM": "it holds a parameter ($1)",
}

_SQLGLOT_READERS = {"mysql": "mysql", "sqlite": "sqlite"}


def _load_parsers() -> None:
    """pglast and sqlglot as this module's globals, imported on the first statement checked (a command
    that only reads the log never checks one, as events.expressions.load_parsers)."""
    global sqlglot, pg_parser, TokenType, exp, SqlglotError
    if "SqlglotError" in globals():
        return
    import sqlglot
    from pglast import parser as pg_parser
    from sqlglot import TokenType, exp
    from sqlglot.errors import SqlglotError


@lru_cache(maxsize=1)
def _sqlglot_kinds() -> tuple[dict[TokenType, DataKind], dict[type[exp.Expr], DataKind], dict[TokenType, str]]:
    """The statement heads and roots sqlglot reads as data statements, and the tokens refused."""
    heads: dict[TokenType, DataKind] = {
        TokenType.INSERT: "insert",
        TokenType.UPDATE: "update",
        TokenType.DELETE: "delete",
    }
    roots: dict[type[exp.Expr], DataKind] = {
        exp.Insert: "insert",
        exp.Update: "update",
        exp.Delete: "delete",
    }
    refused = {
        TokenType.SEMICOLON: "it holds a ';' (one statement per entry)",
        TokenType.PARAMETER: "it holds a variable or parameter",
        TokenType.SESSION_PARAMETER: "it holds a session variable",
        TokenType.PLACEHOLDER: "it holds a parameter placeholder",
        TokenType.COLON_EQ: "it holds an assignment (:=)",
    }
    return heads, roots, refused


class DataStepError(ValueError):
    """A data step's statement refused: the message is one line that says why."""


def dialect_name(name: str) -> str:
    """The reconciler's name for a dialect a changeset names (``postgres`` -> ``postgresql``)."""
    canonical = DIALECT_ALIASES.get(name.lower(), name.lower())
    if canonical not in DATA_DIALECTS:
        known = ", ".join(DATA_DIALECTS + tuple(DIALECT_ALIASES))
        raise DataStepError(f"unknown dialect {name!r}; a data step names {known}")
    return canonical


def normalize_dialects(value: object) -> object:
    """A pydantic "before" validator's body: a mapping's dialect keys under their reconciler names, each
    once. Anything that is not a mapping of text keys is left to the field's own validation."""
    if not isinstance(value, Mapping) or not all(isinstance(key, str) for key in value):
        return value
    out: dict[str, Any] = {}
    for key, statements in value.items():
        name = dialect_name(key)
        if name in out:
            raise DataStepError(f"dialect {name} is given twice (as {key!r} too)")
        out[name] = statements
    return out


def check_sql_run(forward: Mapping[str, tuple[str, ...]], backward: Mapping[str, tuple[str, ...]] | None) -> None:
    """Refuse (DataStepError, naming the entry) unless every statement of both ways is one data statement."""
    if not forward:
        raise DataStepError("forward gives no dialect: give statements for postgresql, mysql or sqlite")
    ways = [("forward", forward)] + ([("backward", backward)] if backward is not None else [])
    for way, mapping in ways:
        for dialect, statements in mapping.items():
            if len(statements) > MAX_STATEMENTS:
                raise DataStepError(
                    f"{way}.{dialect}: {len(statements)} statements; the limit is {MAX_STATEMENTS} a dialect"
                )
            for index, sql in enumerate(statements):
                try:
                    check_data_statement(sql, dialect)
                except DataStepError as exc:
                    raise DataStepError(f"{way}.{dialect}[{index}]: {exc}") from None


def shown(sql: str) -> str:
    return repr(sql if len(sql) <= 120 else sql[:117] + "...")


@lru_cache(maxsize=4096)
def check_data_statement(sql: str, dialect: str) -> DataKind:
    """The kind of ``sql`` if it is one safe INSERT, UPDATE or DELETE in ``dialect``; else DataStepError.

    Cached: append judges a step once, and migrate, ``--plan`` and the targets judge it again.
    """
    if not sql.strip():
        raise DataStepError("the statement is empty")
    if len(sql) > MAX_STATEMENT_CHARS:
        raise DataStepError(f"the statement is {len(sql)} characters long; the limit is {MAX_STATEMENT_CHARS}")
    for ch in sql:
        if (ord(ch) < 32 and ch not in "\t\n\r") or ord(ch) == 127:
            raise DataStepError(f"{shown(sql)} holds the control character {ch!r}")
    _load_parsers()
    try:
        if dialect == "postgresql":
            return _postgresql(sql)
        if dialect in _SQLGLOT_READERS:
            return _sqlglot(sql, _SQLGLOT_READERS[dialect])
    except DataStepError as exc:
        raise DataStepError(f"{shown(sql)} is refused: {exc}") from None
    raise DataStepError(f"unknown dialect {dialect!r}")


def _name_refused(schema: str | None, name: str) -> str | None:
    if schema and schema.lower() in _SYSTEM_SCHEMAS:
        return f"it names {schema}.{name}, a table of the system's own catalogue"
    if name.lower().startswith(_SYSTEM_PREFIXES):
        return f"it names the table {name!r}: schemalog's, SQLite's and the system's own tables are not a data step's"
    return None


# --------------------------------------------------------------------------- PostgreSQL (pglast)


def _postgresql(sql: str) -> DataKind:
    try:
        tokens = pg_parser.scan(sql)
        tree = orjson.loads(pg_parser.parse_sql_json(sql))
    except pg_parser.ParseError as exc:
        raise DataStepError(f"PostgreSQL's parser does not read it: {exc}") from None
    for token in tokens:
        problem = _PG_REFUSED_TOKENS.get(token.name)
        if problem is not None:
            raise DataStepError(problem)
    statements = tree.get("stmts", [])
    if len(statements) != 1:
        raise DataStepError(f"it is {len(statements)} statements, where one was given")
    ((node_type, fields),) = statements[0]["stmt"].items()
    kind = _PG_ROOTS.get(node_type)
    if kind is None:
        raise DataStepError(f"it is a {node_type}, not an INSERT, UPDATE or DELETE")
    for key, child in _pg_nodes(fields):
        _pg_node(key, child)
    return kind


def _pg_nodes(value: Any) -> Iterator[tuple[str, Any]]:
    """Every (field or node name, value) below ``value`` in pglast's JSON tree, depth first."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, child in item.items():
                yield key, child
                stack.append(child)
        elif isinstance(item, list):
            stack.extend(item)


def _pg_node(key: str, value: Any) -> None:
    if key in _PG_MODIFYING:
        raise DataStepError(f"it holds another statement that changes data (a {key}), as in WITH ... AS (DELETE ...)")
    if key == "intoClause":
        raise DataStepError("it holds SELECT ... INTO, which makes a table")
    if key in ("ParamRef",):
        raise DataStepError("it holds a parameter")
    if key == "relname" and isinstance(value, str):
        return  # judged with its schema, from the RangeVar that holds it (below)
    if isinstance(value, dict) and isinstance(value.get("relname"), str):
        problem = _name_refused(value.get("schemaname"), value["relname"])
        if problem is not None:
            raise DataStepError(problem)
    if key == "FuncCall" and isinstance(value, dict):
        names = [n.get("String", {}).get("sval", "") for n in value.get("funcname", []) if isinstance(n, dict)]
        if len(names) == 2 and names[0] == "pg_catalog":
            names = names[1:]
        if len(names) != 1:
            raise DataStepError(f"it calls {'.'.join(names)}(), a function of another schema")
        if names[0].lower() not in DATA_FUNCTIONS:
            raise DataStepError(f"it calls {names[0]}(), which is not among the functions a data step may call")


# --------------------------------------------------------------------------- MySQL/MariaDB and SQLite (sqlglot)


def _sqlglot(sql: str, reader: str) -> DataKind:
    try:
        tokens = sqlglot.tokenize(sql, read=reader)
    except SqlglotError as exc:
        raise DataStepError(f"sqlglot's {reader} tokenizer does not read it: {str(exc).splitlines()[0]}") from None
    for token in tokens:
        if token.comments:
            raise DataStepError("it holds a comment")
        problem = _sqlglot_kinds()[2].get(token.token_type)
        if token.token_type == TokenType.VAR and token.text.startswith("$"):
            problem = "it holds a parameter ($name, as SQLite reads it)"
        if problem is not None:
            raise DataStepError(problem)
    kind = _sqlglot_kinds()[0].get(tokens[0].token_type) if tokens else None
    if kind is None:
        raise DataStepError("it does not begin with INSERT, UPDATE or DELETE")
    try:
        trees = sqlglot.parse(sql, read=reader)
    except (SqlglotError, RecursionError) as exc:
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataStepError(f"sqlglot's {reader} parser does not read it: {why}") from None
    if len(trees) != 1 or trees[0] is None:
        raise DataStepError(f"it is {len(trees)} statements, where one was given")
    root = trees[0]
    if _sqlglot_kinds()[1].get(type(root)) != kind:
        raise DataStepError(f"it reads as a {type(root).__name__}, not as one {kind.upper()}")
    for node in root.walk():
        if node is not root:
            _sqlglot_node(node)
    return kind


def _sqlglot_node(node: exp.Expr) -> None:
    if isinstance(node, exp.Insert | exp.Update | exp.Delete | exp.Merge | exp.Command):
        raise DataStepError(f"it holds another statement ({type(node).__name__})")
    if isinstance(node, exp.Into):
        raise DataStepError("it holds SELECT ... INTO")
    if isinstance(node, exp.Placeholder | exp.Parameter | exp.SessionParameter):
        raise DataStepError("it holds a parameter or variable")
    if isinstance(node, exp.Table):
        problem = _name_refused(node.db or node.catalog or None, node.name)
        if problem is not None:
            raise DataStepError(problem)
    if isinstance(node, exp.Func):
        name = type(node).__name__
        if name == "Anonymous":
            called = str(node.name)
            allowed = called.lower() in DATA_FUNCTIONS
        else:
            called = node.sql_name()
            allowed = name in _SQLGLOT_DATA_FUNCTIONS or called.lower() in DATA_FUNCTIONS
        if not allowed:
            raise DataStepError(f"it calls {called.lower()}(), which is not among the functions a data step may call")
