"""The SQL expression text the log holds, checked by each dialect's own parser before it is trusted.

Two fields of the event catalogue are SQL text that the reconciler writes into DDL as it is: a
column's ``default`` (one scalar expression) and a check constraint's ``expression`` (one boolean
expression). Text that holds anything more (a ``;`` and a second statement, a comment that hides
the rest of a statement, a sub-select, a call of a function with side effects) would run on every
database the log is migrated to, so each text is parsed, for each dialect, by a real parser:
PostgreSQL's own (pglast) and sqlglot's MySQL/MariaDB and SQLite readers. The text goes in as
``SELECT (<text>)``, which must come back as exactly one statement holding exactly one expression
and nothing else; the expression's tree is then walked against an allow-list (literals, casts,
operators, ``CASE``, ``IN``, ``BETWEEN``, ``LIKE``, column references in checks only, and calls of
a short list of side-effect-free functions).

An event does not name its dialect, so the policy spans them:

- *refused everywhere* (:attr:`Verdict.refused`): anything unsafe in any dialect's reading
  (comments, ``;``, dollar quoting, parameters and variables, sub-selects, statements, functions
  off the list, more than one expression, control characters, deep nesting);
- otherwise the text must be a clean expression of its kind in at least one dialect, and the
  dialects it is one in are remembered (:attr:`Verdict.dialects`): the reconciler refuses to send
  it to any other (``check_expression(text, kind, dialect)``).

Nothing is ever rewritten: the stored text keeps its meaning, it is only refused. Verdicts are
cached (texts repeat); the log's own replay (events.decode) builds events without validation and
never comes here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # imported by load_parsers, on the first text checked
    import sqlglot
    from pglast import ast as pg_ast
    from pglast import enums as pg_enums
    from pglast import parser as pg_parser
    from sqlglot import TokenType, exp
    from sqlglot.errors import SqlglotError

ExpressionKind = Literal["default", "check", "generated"]
"""default: a scalar without column references; check: a boolean over the row's columns (also a partial
index's predicate); generated: a scalar over the row's columns (a generated column, an index expression)."""

EXPRESSION_DIALECTS = ("postgresql", "mysql", "sqlite")
"""The dialects an expression is read in (the reconciler's targets; MariaDB reads as mysql)."""

MAX_EXPRESSION_CHARS = 4000
MAX_NESTING = 48
"""Parentheses and brackets deeper than this are refused before any parser sees the text."""

ALLOWED_FUNCTIONS = frozenset(
    {
        # time (PostgreSQL, MySQL/MariaDB, SQLite)
        "now",
        "current_timestamp",
        "current_date",
        "current_time",
        "localtimestamp",
        "localtime",
        "clock_timestamp",
        "statement_timestamp",
        "transaction_timestamp",
        "timezone",
        "date_trunc",
        "date_part",
        "extract",
        "to_char",
        "to_date",
        "to_timestamp",
        "make_date",
        "make_time",
        "make_timestamp",
        "make_timestamptz",
        "make_interval",
        "curdate",
        "curtime",
        "utc_timestamp",
        "utc_date",
        "utc_time",
        "unix_timestamp",
        "from_unixtime",
        "date_format",
        "str_to_date",
        "date_add",
        "date_sub",
        "datetime",
        "date",
        "time",
        "julianday",
        "strftime",
        "unixepoch",
        # identifiers
        "gen_random_uuid",
        "uuid_generate_v4",
        "uuid",
        "nextval",  # a serial column's sequence; defaults only, a literal sequence name only
        # text
        "lower",
        "upper",
        "length",
        "char_length",
        "character_length",
        "octet_length",
        "trim",
        "btrim",
        "ltrim",
        "rtrim",
        "substring",
        "substr",
        "replace",
        "concat",
        "concat_ws",
        "left",
        "right",
        "lpad",
        "rpad",
        "position",
        "strpos",
        "instr",
        "reverse",
        "repeat",
        "initcap",
        "split_part",
        "md5",
        "chr",
        "char",
        "ascii",
        "hex",
        "like_escape",  # PostgreSQL's reading of LIKE ... ESCAPE
        "similar_to_escape",  # and of SIMILAR TO
        # numbers and choices
        "abs",
        "round",
        "floor",
        "ceil",
        "ceiling",
        "trunc",
        "truncate",
        "mod",
        "sign",
        "power",
        "pow",
        "sqrt",
        "random",
        "rand",
        "coalesce",
        "nullif",
        "ifnull",
        "greatest",
        "least",
        "if",
        "iif",
        # json and arrays
        "json_build_object",
        "jsonb_build_object",
        "json_build_array",
        "jsonb_build_array",
        "json_object",
        "json_array",
        "json_valid",
        "array_length",
        "cardinality",
        # predicates
        "regexp_like",
        "isfinite",
        "starts_with",
    }
)
"""Functions an expression may call: side-effect free (``nextval`` aside, for serial columns)."""

BOOLEAN_FUNCTIONS = frozenset({"json_valid", "regexp_like", "isfinite", "starts_with"})
"""Of those, the ones a check may consist of (they return a truth value)."""


class ExpressionError(ValueError):
    """An expression refused: the message is one line that names it and says why."""


@dataclass(frozen=True)
class Verdict:
    """What the parsers made of one text of one kind."""

    text: str
    kind: ExpressionKind
    dialects: frozenset[str]
    """The dialects in which the text is one safe expression of its kind."""
    refused: str | None
    """Why the text is refused whatever the dialect (unsafe in some reading, or in none an expression)."""
    reasons: tuple[tuple[str, str], ...]
    """For each dialect it is not an expression in: why (as the parser or the allow-list says)."""

    def reason(self, dialect: str) -> str:
        return dict(self.reasons).get(dialect, "")


def describe(text: str, kind: ExpressionKind) -> str:
    """``default '...'`` or ``check expression '...'``, shortened to keep the message to one line."""
    shown = text if len(text) <= 120 else text[:117] + "..."
    label = {"default": "default", "check": "check expression", "generated": "expression"}[kind]
    return f"{label} {shown!r}"


def check_expression(text: str, kind: ExpressionKind, dialect: str | None = None) -> None:
    """Refuse ``text`` (ExpressionError) unless it is one safe ``kind`` expression.

    Without ``dialect`` (an event from input: its dialect is not known) it must be one in at least
    one dialect and unsafe in none; with ``dialect`` (the reconciler, for its target) it must be one
    in that dialect.
    """
    verdict = examine(text, kind)
    if verdict.refused is not None:
        raise ExpressionError(f"{describe(text, kind)} is refused: {verdict.refused}")
    if dialect is not None and dialect not in verdict.dialects:
        what = "boolean" if kind == "check" else "scalar"
        raise ExpressionError(
            f"{describe(text, kind)} is not one {what} expression in {dialect}: {verdict.reason(dialect)}"
        )


STORED: dict[str, bool] = {"schemalog_stored": True}
"""The validation context of an event read back from the log (``parse_event(data, stored=True)``):
its expressions were judged when it came in, and are judged again by the reconciler for its dialect,
so an old event keeps reading back whatever the allow-list says today."""


def expression_field(text: str | None, kind: ExpressionKind, context: Any = None) -> str | None:
    """A pydantic validator's body: ``text`` checked unless it is None (no default) or the log's own."""
    if text is not None and not (isinstance(context, dict) and context.get("schemalog_stored")):
        check_expression(text, kind)
    return text


def load_parsers() -> None:
    """Import pglast and sqlglot, binding them as this module's globals, on the first text checked.

    They take tens of milliseconds to import, and a command that only reads the log (``show``,
    ``history``: events.decode) checks no text, so it never loads them (tests/test_cli_startup.py).
    Every function here that parses is reached through :func:`examine`, which calls this first
    (events.datasteps does the same for its statements). ``SqlglotError`` is bound last: a thread
    that finds it finds every other name bound.
    """
    global sqlglot, pg_ast, pg_enums, pg_parser, TokenType, exp, SqlglotError
    if "SqlglotError" in globals():
        return
    import sqlglot
    from pglast import ast as pg_ast
    from pglast import enums as pg_enums
    from pglast import parser as pg_parser
    from sqlglot import TokenType, exp
    from sqlglot.errors import SqlglotError


@lru_cache(maxsize=16384)
def examine(text: str, kind: ExpressionKind) -> Verdict:
    """Parse ``text`` in every dialect and judge it (cached: the same texts come back again and again)."""
    load_parsers()
    refused = _lexical(text)
    if refused is not None:
        return Verdict(text, kind, frozenset(), refused, ())
    ok: list[str] = []
    reasons: list[tuple[str, str]] = []
    for dialect in EXPRESSION_DIALECTS:
        try:
            if dialect == "postgresql":
                _postgresql(text, kind)
            else:
                _sqlglot(text, kind, dialect)
        except _Unsafe as exc:
            return Verdict(text, kind, frozenset(), f"{exc} (as {dialect} reads it)", ())
        except _NotOne as exc:
            reasons.append((dialect, str(exc)))
            continue
        ok.append(dialect)
    if not ok:
        what = "boolean" if kind == "check" else "scalar"
        why = "; ".join(f"{d}: {r}" for d, r in reasons)
        return Verdict(text, kind, frozenset(), f"not one {what} expression in any dialect ({why})", tuple(reasons))
    return Verdict(text, kind, frozenset(ok), None, tuple(reasons))


class _Unsafe(Exception):
    """Something no expression may hold, in the reading of one dialect: refused whatever the target."""


class _NotOne(Exception):
    """Not one expression of the kind in one dialect (a syntax error, a column in a default, ...)."""


def _lexical(text: str) -> str | None:
    """What is wrong with the text before any parser reads it, if anything."""
    if not text.strip():
        return "it is empty"
    if len(text) > MAX_EXPRESSION_CHARS:
        return f"it is {len(text)} characters long; the limit is {MAX_EXPRESSION_CHARS}"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "it is not valid Unicode"
    for ch in text:
        if (ord(ch) < 32 and ch not in "\t\n\r") or ord(ch) == 127:
            return f"it holds the control character {ch!r}"
    depth = deepest = 0
    for ch in text:
        if ch in "([{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in ")]}":
            depth -= 1
    if deepest > MAX_NESTING:
        return f"it nests parentheses {deepest} deep; the limit is {MAX_NESTING}"
    return None


# --------------------------------------------------------------------------- PostgreSQL (pglast)

PG_COMPARISONS = frozenset(
    {"=", "<>", "!=", "<", ">", "<=", ">=", "~", "~*", "!~", "!~*", "~~", "!~~", "~~*", "!~~*", "@>", "<@", "&&"}
    | {"?", "?|", "?&"}
)
"""PostgreSQL's operators that give a truth value (comparisons, pattern matches, containment, jsonb keys)."""
PG_OPERATORS = PG_COMPARISONS | {"+", "-", "*", "/", "%", "^", "||", "&", "|", "#", "<<", ">>", "@", "|/"}
PG_OPERATORS |= {"->", "->>", "#>", "#>>"}
"""Operators an expression may use: arithmetic, text, bits, json, and the comparisons."""
_PG_SELECT_CLAUSES = (
    "distinctClause",
    "intoClause",
    "fromClause",
    "whereClause",
    "groupClause",
    "havingClause",
    "windowClause",
    "valuesLists",
    "sortClause",
    "limitOffset",
    "limitCount",
    "lockingClause",
    "withClause",
    "larg",
    "rarg",
)
_PG_BOOLEAN_TYPES = frozenset({"bool", "boolean"})
_AT_INDEX = re.compile(r",? at index [0-9]+$")
_PG_BETWEEN = frozenset({"BETWEEN", "NOT BETWEEN", "BETWEEN SYMMETRIC", "NOT BETWEEN SYMMETRIC"})


def _pg_error(exc: Exception) -> str:
    """PostgreSQL's message, without the position (it counts in the wrapped text, not the expression)."""
    return _AT_INDEX.sub("", str(exc).splitlines()[0])


def _pg_parse(sql: str) -> tuple[Any, ...]:
    try:
        return tuple(pg_parser.parse_sql(sql))
    except pg_parser.ParseError as exc:
        raise _NotOne(f"PostgreSQL's parser: {_pg_error(exc)}") from None


def _postgresql(text: str, kind: ExpressionKind) -> None:
    try:
        tokens = pg_parser.scan(text)
    except pg_parser.ParseError as exc:
        raise _NotOne(f"PostgreSQL's scanner: {_pg_error(exc)}") from None
    for token in tokens:
        if token.name in ("SQL_COMMENT", "C_COMMENT"):
            raise _Unsafe("it holds a comment")
        if token.name == "ASCII_59":
            raise _Unsafe("it holds a ';', which ends a statement")
        if token.name == "PARAM":
            raise _Unsafe("it holds a parameter ($n)")
        if token.name == "SCONST" and text[token.start] == "$":
            raise _Unsafe("it holds a dollar-quoted string (write a plain 'literal')")
    statements = _pg_parse(f"SELECT ({text})")
    if len(statements) != 1:
        raise _Unsafe("it reads as more than one statement")
    select = statements[0].stmt
    if not isinstance(select, pg_ast.SelectStmt):
        raise _Unsafe("it reads as a statement")
    extra = [name for name in _PG_SELECT_CLAUSES if getattr(select, name) is not None]
    if extra or select.op != pg_enums.SetOperation.SETOP_NONE:
        raise _Unsafe(f"it adds a clause to the statement ({', '.join(extra) or 'a set operation'})")
    targets = select.targetList or ()
    if len(targets) != 1 or targets[0].name is not None or targets[0].indirection is not None:
        raise _Unsafe("it reads as more than one expression")
    node = targets[0].val
    _pg_node(node, kind, 0)
    if kind == "check":
        _pg_boolean(node)
    elif kind == "default":
        _pg_whole_default(text)


def _pg_whole_default(text: str) -> None:
    """A default is written ``DEFAULT <text>`` in a column's definition: it must read there as the
    default alone (PostgreSQL takes a narrower grammar there, and nothing may spill into the column)."""
    statements = _pg_parse(f"CREATE TABLE t (c integer DEFAULT {text})")
    create = statements[0].stmt if len(statements) == 1 else None
    elements = create.tableElts if isinstance(create, pg_ast.CreateStmt) else None
    column = elements[0] if elements and len(elements) == 1 else None
    constraints = column.constraints if isinstance(column, pg_ast.ColumnDef) else None
    if not constraints or len(constraints) != 1 or constraints[0].contype != pg_enums.ConstrType.CONSTR_DEFAULT:
        raise _NotOne("PostgreSQL does not read it as a column default alone")


def _pg_names(names: Iterable[Any] | None) -> list[str]:
    out: list[str] = []
    for name in names or ():
        if not isinstance(name, pg_ast.String) or name.sval is None:
            raise _NotOne(f"an unexpected name part ({type(name).__name__})")
        out.append(name.sval)
    return out


def _pg_last(names: Iterable[Any] | None) -> str:
    """The last part of a (possibly qualified) name: ``pg_catalog.bool`` -> ``bool``."""
    parts = _pg_names(names)
    return parts[-1] if parts else ""


def _pg_node(node: Any, kind: ExpressionKind, depth: int) -> None:
    """Walk one node of PostgreSQL's raw parse tree against the allow-list."""
    if depth > MAX_NESTING * 2:
        raise _Unsafe("it nests too deeply")
    if node is None:
        return
    if isinstance(node, tuple | list):
        for item in node:
            _pg_node(item, kind, depth + 1)
        return
    below = depth + 1
    if isinstance(node, pg_ast.A_Const | pg_ast.SQLValueFunction):
        return
    if isinstance(node, pg_ast.TypeCast):
        _pg_node(node.arg, kind, below)
        _pg_type(node.typeName)
    elif isinstance(node, pg_ast.A_Expr):
        # an operator off the list is no attack in itself (MySQL's `quoted` names read as PostgreSQL
        # operators): the text is just not a PostgreSQL expression
        names = _pg_names(node.name)
        if len(names) != 1:
            raise _NotOne("it uses a schema-qualified operator")
        operator = names[0]
        if operator not in PG_OPERATORS and operator not in _PG_BETWEEN:
            raise _NotOne(f"it reads as the operator {operator!r}, which is not among those allowed")
        _pg_node(node.lexpr, kind, below)
        _pg_node(node.rexpr, kind, below)
    elif isinstance(node, pg_ast.BoolExpr):
        _pg_node(node.args, kind, below)
    elif isinstance(node, pg_ast.NullTest | pg_ast.BooleanTest):
        _pg_node(node.arg, kind, below)
    elif isinstance(node, pg_ast.FuncCall):
        _pg_call(node, kind, below)
    elif isinstance(node, pg_ast.ColumnRef):
        if kind == "default":
            raise _NotOne("a default cannot refer to a column")
        fields = node.fields or ()
        if len(fields) != 1 or not isinstance(fields[0], pg_ast.String):
            raise _NotOne("a check refers to its own table's columns by their bare names")
    elif isinstance(node, pg_ast.A_ArrayExpr):
        _pg_node(node.elements, kind, below)
    elif isinstance(node, pg_ast.CaseExpr):
        _pg_node(node.arg, kind, below)
        _pg_node(node.args, kind, below)
        _pg_node(node.defresult, kind, below)
    elif isinstance(node, pg_ast.CaseWhen):
        _pg_node(node.expr, kind, below)
        _pg_node(node.result, kind, below)
    elif isinstance(node, pg_ast.CoalesceExpr | pg_ast.MinMaxExpr):
        _pg_node(node.args, kind, below)
    elif isinstance(node, pg_ast.CollateClause):
        _pg_node(node.arg, kind, below)
        _pg_names(node.collname)
    elif isinstance(node, pg_ast.SubLink):
        raise _Unsafe("it holds a sub-select")
    elif isinstance(node, pg_ast.ParamRef):
        raise _Unsafe("it holds a parameter ($n)")
    else:
        raise _NotOne(f"{type(node).__name__} is not among what an expression may hold")


def _pg_type(type_name: Any) -> None:
    if not isinstance(type_name, pg_ast.TypeName) or type_name.setof or type_name.pct_type:
        raise _NotOne("a cast to something that is not a plain type")
    _pg_names(type_name.names)
    for modifier in type_name.typmods or ():
        if not isinstance(modifier, pg_ast.A_Const):
            raise _NotOne("a type modifier that is not a constant")


def _pg_call(node: Any, kind: ExpressionKind, depth: int) -> None:
    names = _pg_names(node.funcname)
    if len(names) == 2 and names[0] == "pg_catalog":
        names = names[1:]
    if len(names) != 1:
        raise _Unsafe(f"it calls {'.'.join(names)}(), a function of another schema")
    name = names[0]
    if name not in ALLOWED_FUNCTIONS:
        raise _Unsafe(f"it calls {name}(), which is not among the functions an expression may call")
    if node.agg_order or node.agg_filter or node.over or node.agg_star or node.agg_distinct or node.agg_within_group:
        raise _Unsafe(f"it calls {name}() as an aggregate or window function")
    if node.func_variadic:
        raise _Unsafe(f"it calls {name}() with VARIADIC")
    if name == "nextval":
        _pg_nextval(node.args or (), kind)
    _pg_node(node.args, kind, depth)


def _pg_nextval(args: tuple[Any, ...], kind: ExpressionKind) -> None:
    """``nextval('a_seq')`` or ``nextval('a_seq'::regclass)`` in a default, nothing else."""
    if kind != "default":
        raise _Unsafe("it calls nextval() outside a column default")
    arg = args[0] if len(args) == 1 else None
    if isinstance(arg, pg_ast.TypeCast) and arg.typeName is not None and _pg_last(arg.typeName.names) == "regclass":
        arg = arg.arg
    if not (isinstance(arg, pg_ast.A_Const) and isinstance(arg.val, pg_ast.String)):
        raise _Unsafe("it calls nextval() with something other than a sequence's name")


def _pg_boolean(node: Any) -> None:
    """A check's expression must be a truth value: a comparison, a test, AND/OR/NOT, true/false, ..."""
    if not _pg_is_boolean(node):
        raise _NotOne("a check must be a truth value (a comparison, IS, IN, LIKE, AND/OR/NOT, ...)")


def _pg_is_boolean(node: Any) -> bool:
    if isinstance(node, pg_ast.A_Expr):
        kinds = pg_enums.A_Expr_Kind
        if node.kind == kinds.AEXPR_NULLIF:
            return False  # NULLIF(a, b) is a value
        return node.kind != kinds.AEXPR_OP or _pg_last(node.name) in PG_COMPARISONS
    if isinstance(node, pg_ast.A_Const):
        return isinstance(node.val, pg_ast.Boolean)
    if isinstance(node, pg_ast.TypeCast):
        return node.typeName is not None and _pg_last(node.typeName.names) in _PG_BOOLEAN_TYPES
    if isinstance(node, pg_ast.FuncCall):
        return _pg_last(node.funcname) in BOOLEAN_FUNCTIONS
    return isinstance(node, pg_ast.BoolExpr | pg_ast.NullTest | pg_ast.BooleanTest | pg_ast.ColumnRef)


# --------------------------------------------------------------------------- MySQL/MariaDB and SQLite (sqlglot)

SQLGLOT_READERS = {"mysql": "mysql", "sqlite": "sqlite"}

# sqlglot reads many functions into classes of its own: those of the allowed ones, by class name
SQLGLOT_FUNCTIONS = frozenset(
    {
        "CurrentTimestamp",
        "CurrentDate",
        "CurrentTime",
        "Localtimestamp",
        "Localtime",
        "UtcTimestamp",
        "UtcDate",
        "UtcTime",
        "Uuid",
        "Lower",
        "Upper",
        "Length",
        "Trim",
        "Substring",
        "Replace",
        "Concat",
        "ConcatWs",
        "Left",
        "Right",
        "Pad",
        "StrPosition",
        "Reverse",
        "Repeat",
        "Initcap",
        "SplitPart",
        "MD5",
        "Chr",
        "Ascii",
        "Hex",
        "Abs",
        "Round",
        "Floor",
        "Ceil",
        "Trunc",
        "Sign",
        "Pow",
        "Sqrt",
        "Rand",
        "Coalesce",
        "Nullif",
        "Greatest",
        "Least",
        "If",
        "ArraySize",
        "JSONObject",
        "DateAdd",
        "DateSub",
        "DateTrunc",
        "TimestampTrunc",
        "Extract",
        "ToChar",
        "TimeToStr",
        "TsOrDsToTimestamp",
        "TsOrDsToDate",
        "StrToDate",
        "UnixToTime",
        "Datetime",
        "Date",
        "Time",
        "Year",
        "JSONExtract",  # ->, ->> (and their jsonb forms): reading a json value
        "JSONExtractScalar",
        "JSONBExtract",
        "JSONBExtractScalar",
    }
)


@lru_cache(maxsize=1)
def _sqlglot_kinds() -> tuple[tuple[type[exp.Expression], ...], tuple[type[exp.Expression], ...], dict[TokenType, str]]:
    """sqlglot's operator and literal classes, and the tokens refused (built once sqlglot is loaded)."""
    operators: tuple[type[exp.Expression], ...] = (
        exp.Add,
        exp.Sub,
        exp.Mul,
        exp.Div,
        exp.IntDiv,
        exp.Mod,
        exp.DPipe,
        exp.EQ,
        exp.NEQ,
        exp.GT,
        exp.GTE,
        exp.LT,
        exp.LTE,
        exp.NullSafeEQ,
        exp.NullSafeNEQ,
        exp.And,
        exp.Or,
        exp.Xor,
        exp.Is,
        exp.Like,
        exp.ILike,
        exp.Glob,
        exp.SimilarTo,
        exp.RegexpLike,
        exp.Escape,
        exp.BitwiseAnd,
        exp.BitwiseOr,
        exp.BitwiseXor,
        exp.BitwiseLeftShift,
        exp.BitwiseRightShift,
    )
    literals: tuple[type[exp.Expression], ...] = (
        exp.Literal,
        exp.Boolean,
        exp.Null,
        exp.HexString,
        exp.BitString,
        exp.National,
        exp.ByteString,
    )
    unsafe = {
        TokenType.SEMICOLON: "it holds a ';', which ends a statement",
        TokenType.PARAMETER: "it holds a variable or parameter",
        TokenType.SESSION_PARAMETER: "it holds a session variable",
        TokenType.PLACEHOLDER: "it holds a parameter placeholder",
        TokenType.COLON_EQ: "it holds an assignment (:=)",
        TokenType.HEREDOC_STRING: "it holds a dollar-quoted string (write a plain 'literal')",
    }
    return operators, literals, unsafe


def _sqlglot(text: str, kind: ExpressionKind, dialect: str) -> None:
    reader = SQLGLOT_READERS[dialect]
    try:
        tokens = sqlglot.tokenize(text, read=reader)
    except SqlglotError as exc:
        raise _NotOne(f"sqlglot's tokenizer: {str(exc).splitlines()[0]}") from None
    for token in tokens:
        if token.comments:
            raise _Unsafe("it holds a comment")
        unsafe = _sqlglot_kinds()[2].get(token.token_type)
        if unsafe is not None:
            raise _Unsafe(unsafe)
        if token.token_type == TokenType.DCOLON:
            raise _NotOne("'::' is PostgreSQL's cast")
    try:
        statements = sqlglot.parse(f"SELECT ({text})", read=reader)
    except (SqlglotError, RecursionError) as exc:
        raise _NotOne(f"sqlglot's parser: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    if len(statements) != 1 or statements[0] is None:
        raise _Unsafe("it reads as more than one statement")
    select = statements[0]
    if not isinstance(select, exp.Select):
        raise _Unsafe("it reads as a statement")
    extra = sorted(key for key, value in select.args.items() if value and key != "expressions")
    if extra:
        raise _Unsafe(f"it adds a clause to the statement ({', '.join(extra)})")
    if len(select.expressions) != 1:
        raise _Unsafe("it reads as more than one expression")
    outer = select.expressions[0]
    if isinstance(outer, exp.Subquery | exp.Query):
        raise _Unsafe("it holds a sub-select")
    if not isinstance(outer, exp.Paren):
        raise _NotOne("it does not read as one expression")
    node = outer.this
    _sqlglot_node(node, kind, 0)
    if kind == "check":
        _sqlglot_boolean(node)


def _sqlglot_node(node: Any, kind: ExpressionKind, depth: int) -> None:
    """Walk one node of sqlglot's tree against the allow-list."""
    if depth > MAX_NESTING * 2:
        raise _Unsafe("it nests too deeply")
    if node is None:
        return
    if isinstance(node, list):
        for item in node:
            _sqlglot_node(item, kind, depth + 1)
        return
    below = depth + 1
    if isinstance(node, _sqlglot_kinds()[1]):
        return
    if isinstance(node, exp.Query | exp.Subquery | exp.Exists | exp.SubqueryPredicate):
        raise _Unsafe("it holds a sub-select")
    if isinstance(node, exp.DDL | exp.DML | exp.Command):
        raise _Unsafe("it holds a statement")
    if isinstance(node, exp.Parameter | exp.SessionParameter | exp.Placeholder | exp.PropertyEQ):
        raise _Unsafe("it holds a variable, parameter or assignment")
    if isinstance(node, exp.Paren | exp.Neg | exp.Not | exp.BitwiseNot):
        _sqlglot_node(node.this, kind, below)
    elif isinstance(node, _sqlglot_kinds()[0]):
        _sqlglot_node(node.this, kind, below)
        _sqlglot_node(node.expression, kind, below)
    elif isinstance(node, exp.In):
        if any(node.args.get(key) for key in ("query", "unnest", "field")):
            raise _Unsafe("it holds a sub-select")
        _sqlglot_node(node.this, kind, below)
        _sqlglot_node(node.expressions, kind, below)
    elif isinstance(node, exp.Between):
        for key in ("this", "low", "high"):
            _sqlglot_node(node.args.get(key), kind, below)
    elif isinstance(node, exp.Cast | exp.TryCast):
        _sqlglot_node(node.this, kind, below)
        if not isinstance(node.args.get("to"), exp.DataType):
            raise _NotOne("a cast to something that is not a type")
    elif isinstance(node, exp.Interval):
        _sqlglot_node(node.this, kind, below)
    elif isinstance(node, exp.Column):
        if kind == "default":
            raise _NotOne("a default cannot refer to a column")
        if any(node.args.get(key) for key in ("table", "db", "catalog")) or not isinstance(node.this, exp.Identifier):
            raise _NotOne("a check refers to its own table's columns by their bare names")
    elif isinstance(node, exp.Collate):
        _sqlglot_node(node.this, kind, below)
        if not isinstance(node.expression, exp.Literal | exp.Identifier | exp.Var | exp.Column):
            raise _NotOne("a collation that is not a name")
    elif isinstance(node, exp.Case):
        _sqlglot_node(node.this, kind, below)
        _sqlglot_node(node.args.get("ifs"), kind, below)
        _sqlglot_node(node.args.get("default"), kind, below)
    elif isinstance(node, exp.If):
        for key in ("this", "true", "false"):
            _sqlglot_node(node.args.get(key), kind, below)
    elif isinstance(node, exp.Array):
        _sqlglot_node(node.expressions, kind, below)
    elif isinstance(node, exp.Anonymous):
        name = str(node.name).lower()
        if name not in ALLOWED_FUNCTIONS:
            raise _Unsafe(f"it calls {name}(), which is not among the functions an expression may call")
        if name == "nextval" and kind != "default":
            raise _Unsafe("it calls nextval() outside a column default")
        _sqlglot_node(node.expressions, kind, below)
    elif isinstance(node, exp.Func):
        name = type(node).__name__
        if name not in SQLGLOT_FUNCTIONS:
            called = node.sql_name().lower()
            raise _Unsafe(f"it calls {called}(), which is not among the functions an expression may call")
        for child in node.iter_expressions():
            if not isinstance(child, exp.Var | exp.DataType):
                _sqlglot_node(child, kind, below)
    else:
        raise _NotOne(f"{type(node).__name__} is not among what an expression may hold")


def _sqlglot_boolean(node: Any) -> None:
    while isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, exp.Predicate | exp.Connector | exp.Not | exp.Boolean | exp.Column | exp.Escape | exp.Xor):
        return
    if isinstance(node, exp.Cast) and node.to.is_type(exp.DataType.Type.BOOLEAN):
        return
    if isinstance(node, exp.Anonymous) and str(node.name).lower() in BOOLEAN_FUNCTIONS:
        return
    raise _NotOne("a check must be a truth value (a comparison, IS, IN, LIKE, AND/OR/NOT, ...)")
