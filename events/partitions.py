"""PostgreSQL declarative partitioning's two texts, checked before the log keeps them (issue 19, slice 4).

A partitioned table's key is the text ``pg_get_partkeydef`` gives back (``RANGE (payment_date)``); a
partition's bound the text ``pg_get_expr(relpartbound)`` gives back (``FOR VALUES FROM (...) TO (...)``,
``FOR VALUES IN (...)``, ``FOR VALUES WITH (modulus 4, remainder 1)`` or ``DEFAULT``). Each is parsed by
PostgreSQL's own parser (pglast) inside the one statement it belongs to, and refused unless it is that
clause and nothing else: a key over plain column names, a bound of constants (no function call, no
subquery, no second statement, no storage option or tablespace slipped in after it).
"""

from __future__ import annotations

from typing import Any

_BOUND_NODES = frozenset(
    {
        "PartitionBoundSpec",
        "A_Const",
        "TypeCast",
        "TypeName",
        "ColumnRef",
        "String",
        "Integer",
        "Float",
        "Boolean",
        "A_Star",
    }
)
_BOUND_WORDS = frozenset({"minvalue", "maxvalue"})
_MAX_TEXT = 4096


def _parse_one(sql: str, what: str, text: str) -> Any:
    from pglast import parser as pg_parser
    from pglast.ast import CreateStmt
    from pglast.parser import ParseError

    try:
        statements = pg_parser.parse_sql(sql)
    except ParseError as exc:
        raise ValueError(f"{what} {text!r} is not one (PostgreSQL: {exc})") from None
    if len(statements) != 1 or not isinstance(statements[0].stmt, CreateStmt):
        raise ValueError(f"{what} {text!r} is not one")
    stmt = statements[0].stmt
    if stmt.options or stmt.tablespacename or stmt.accessMethod or stmt.constraints:
        raise ValueError(f"{what} {text!r} says more than that")
    return stmt


def _nodes(node: Any) -> list[Any]:
    from pglast.ast import Node

    out: list[Any] = []
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, (list, tuple)):
            stack.extend(item)
        elif isinstance(item, Node):
            out.append(item)
            stack.extend(getattr(item, slot) for slot in getattr(item, "__slots__", ()))
    return out


def check_partition_key(text: str) -> str:
    """``text`` if it is a partition key (``RANGE (a)``, ``LIST (a, b)``, ``HASH (a)``), else ValueError."""
    if not text or len(text) > _MAX_TEXT or ";" in text:
        raise ValueError(f"partition key {text!r} is not one")
    stmt = _parse_one(f"CREATE TABLE x (a int) PARTITION BY {text}", "partition key", text)
    spec = stmt.partspec
    if spec is None or len(stmt.tableElts or ()) != 1 or stmt.inhRelations or stmt.partbound is not None:
        raise ValueError(f"partition key {text!r} is not one")
    for elem in spec.partParams or ():
        if elem.name is None or elem.expr is not None:
            raise ValueError(f"partition key {text!r}: only column names are carried, not expressions")
    if spec.strategy not in ("r", "l", "h") and str(spec.strategy).lower() not in ("range", "list", "hash"):
        raise ValueError(f"partition key {text!r} is not one")
    return text


def check_partition_bound(text: str) -> str:
    """``text`` if it is a partition bound of constants (``FOR VALUES ...`` or ``DEFAULT``), else ValueError."""
    if not text or len(text) > _MAX_TEXT or ";" in text:
        raise ValueError(f"partition bound {text!r} is not one")
    stmt = _parse_one(f"CREATE TABLE x PARTITION OF y {text}", "partition bound", text)
    if stmt.partbound is None or stmt.partspec is not None or stmt.tableElts or len(stmt.inhRelations or ()) != 1:
        raise ValueError(f"partition bound {text!r} is not one")
    for node in _nodes(stmt.partbound):
        kind = type(node).__name__
        if kind not in _BOUND_NODES:
            raise ValueError(f"partition bound {text!r}: only constants are carried ({kind})")
        if kind == "ColumnRef":
            fields = [getattr(f, "sval", None) for f in node.fields or ()]
            if len(fields) != 1 or fields[0] not in _BOUND_WORDS:
                raise ValueError(f"partition bound {text!r}: only constants are carried")
    return text


def partition_key_columns(text: str) -> list[str]:
    """The column names a checked partition key is over, in order."""
    stmt = _parse_one(f"CREATE TABLE x (a int) PARTITION BY {text}", "partition key", text)
    return [str(elem.name) for elem in stmt.partspec.partParams or ()]
