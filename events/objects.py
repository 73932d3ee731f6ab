"""The definitions of database objects beyond tables (views today), checked before they are stored.

A view's definition is text the reconciler sends to a database as part of the one statement planned for
it, so it gets the same distrust as a data step (events.datasteps): each dialect's own parser must read
the statement it would make as exactly one CREATE of the named view, of the declared kind.

- PostgreSQL: ``CREATE [MATERIALIZED] VIEW name AS <definition>``, read by PostgreSQL's own parser
  (pglast), is one statement, a ViewStmt (a CreateTableAsStmt of a materialized view) naming the view.
  The definition is the view's query as ``pg_get_viewdef`` gives it back (its trailing ``;`` left out).
- MariaDB: the definition is the query, as ``SHOW CREATE VIEW`` gives it back after ``AS``; sqlglot's
  MySQL tokenizer must find no ``;`` and no comment in it (MariaDB runs ``/*! ... */``), and it must
  begin as a query does (SELECT, WITH, or a parenthesis).
- SQLite: the definition is the whole ``CREATE VIEW`` statement, as sqlite_master keeps it; sqlglot's
  SQLite tokenizer must find no ``;`` (but one at the very end, left out) and no comment, and it must
  begin ``CREATE VIEW [IF NOT EXISTS] <the view's name> AS``.

The parsers are imported on the first definition checked: a read command never loads them. The
reconciler proves each statement single again before it is sent (service.reconciler.statements).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

VIEW_DIALECTS = ("postgresql", "mysql", "sqlite")
DIALECT_ALIASES = {"postgres": "postgresql", "mariadb": "mysql"}
MAX_DEFINITION_CHARS = 200_000


class DefinitionError(ValueError):
    """A definition that is not exactly one CREATE of the object it names."""


def normalize_definitions(value: object) -> object:
    """A definitions mapping with the dialects' other names (postgres, mariadb) as the reconciler names them."""
    if isinstance(value, Mapping):
        out: dict[Any, Any] = {}
        for key, text in value.items():
            name = DIALECT_ALIASES.get(key, key) if isinstance(key, str) else key
            if name in out:
                raise ValueError(f"dialect {name!r} is given twice")
            out[name] = text
        return out
    return value


def _shown(text: str) -> str:
    return repr(text if len(text) <= 120 else text[:117] + "...")


def view_statement(
    dialect: str, name: str, definition: str, *, materialized: bool = False, replace: bool = False
) -> str:
    """The one statement that makes the view from its definition in ``dialect`` (quoted name as given)."""
    if dialect == "sqlite":
        return definition
    kind = "MATERIALIZED VIEW" if materialized else "VIEW"
    head = "CREATE OR REPLACE" if replace and not materialized else "CREATE"
    return f"{head} {kind} {quote_name(dialect, name)} AS {definition}"


def quote_name(dialect: str, name: str) -> str:
    """A view's (possibly schema-qualified) name, quoted as the dialect quotes it."""
    if dialect == "mysql":
        return ".".join("`" + part.replace("`", "``") + "`" for part in name.split("."))
    return ".".join('"' + part.replace('"', '""') + '"' for part in name.split("."))


@lru_cache(maxsize=4096)
def check_view_definition(name: str, dialect: str, text: str, materialized: bool) -> str:
    """The definition in its stored form (outer whitespace and a trailing ``;`` left out) if it is one
    view of that name and kind in ``dialect``; else DefinitionError naming why."""
    if not isinstance(text, str) or not text.strip():
        raise DefinitionError(f"view {name!r}: the {dialect} definition is empty")
    if len(text) > MAX_DEFINITION_CHARS:
        raise DefinitionError(f"view {name!r}: the {dialect} definition is longer than {MAX_DEFINITION_CHARS}")
    for ch in text:
        if (ord(ch) < 32 and ch not in "\t\n\r") or ord(ch) == 127:
            raise DefinitionError(f"view {name!r}: the {dialect} definition holds the control character {ch!r}")
    stored = text.strip()
    if stored.endswith(";"):
        stored = stored[:-1].rstrip()
    if dialect == "postgresql":
        _postgresql(name, stored, materialized)
    elif dialect == "mysql":
        if materialized:
            raise DefinitionError(f"view {name!r}: MariaDB has no materialized views")
        _mysql(name, stored)
    elif dialect == "sqlite":
        if materialized:
            raise DefinitionError(f"view {name!r}: SQLite has no materialized views")
        _sqlite(name, stored)
    else:
        raise DefinitionError(f"view {name!r}: unknown dialect {dialect!r} (one of {', '.join(VIEW_DIALECTS)})")
    return stored


def _postgresql(name: str, definition: str, materialized: bool) -> None:
    import orjson
    from pglast import parser as pg_parser

    sql = view_statement("postgresql", name, definition, materialized=materialized)
    try:
        tree = orjson.loads(pg_parser.parse_sql_json(sql))
    except pg_parser.ParseError as exc:
        raise DefinitionError(f"view {name!r}: PostgreSQL's parser does not read it: {exc}") from None
    statements = tree.get("stmts", [])
    if len(statements) != 1:
        raise DefinitionError(f"view {name!r}: the definition makes {len(statements)} statements, not one view")
    ((node_type, fields),) = statements[0]["stmt"].items()
    if materialized:
        relation = fields.get("into", {}).get("rel", {}) if node_type == "CreateTableAsStmt" else {}
        right = node_type == "CreateTableAsStmt" and fields.get("objtype") == "OBJECT_MATVIEW"
    else:
        relation = fields.get("view", {}) if node_type == "ViewStmt" else {}
        right = node_type == "ViewStmt"
    if not right:
        raise DefinitionError(f"view {name!r}: the definition makes a {node_type}, not a view")
    named = ".".join(p for p in (relation.get("schemaname"), relation.get("relname")) if p)
    if named != name:
        raise DefinitionError(f"view {name!r}: the statement makes {named!r}")


def _tokens(name: str, sql: str, reader: str) -> list[Any]:
    import sqlglot
    from sqlglot import TokenType
    from sqlglot.errors import SqlglotError

    try:
        tokens = sqlglot.tokenize(sql, read=reader)
    except SqlglotError as exc:
        raise DefinitionError(f"view {name!r}: sqlglot's {reader} tokenizer does not read it: {exc}") from None
    for token in tokens:
        if token.token_type == TokenType.SEMICOLON:
            raise DefinitionError(f"view {name!r}: a ';' in the definition: {_shown(sql)}")
        if token.comments:
            raise DefinitionError(f"view {name!r}: a comment in the definition: {_shown(sql)}")
    stripped = _without_strings(sql)  # a comment the tokenizer keeps with no token (MariaDB's /*! ... */)
    if "/*" in stripped or "--" in stripped or ("#" in stripped and reader == "mysql"):
        raise DefinitionError(f"view {name!r}: a comment in the definition: {_shown(sql)}")
    return list(tokens)


def _without_strings(sql: str) -> str:
    """``sql`` with its quoted strings and quoted names taken out (for finding comment marks outside them)."""
    out, quote = [], ""
    for ch in sql:
        if quote:
            if ch == quote:
                quote = ""
            continue
        if ch in "'\"`":
            quote = ch
            continue
        out.append(ch)
    return "".join(out)


def _mysql(name: str, definition: str) -> None:
    tokens = _tokens(name, definition, "mysql")
    first = tokens[0].text.upper() if tokens else ""
    if first not in ("SELECT", "WITH", "("):
        raise DefinitionError(
            f"view {name!r}: a MariaDB definition is its query (SELECT ...), not {_shown(definition)}"
        )


def _sqlite(name: str, statement: str) -> None:
    tokens = _tokens(name, statement, "sqlite")
    words = [t.text for t in tokens[:8]]
    upper = [w.upper() for w in words]
    at = 2
    if upper[:2] != ["CREATE", "VIEW"]:
        raise DefinitionError(
            f"view {name!r}: a SQLite definition is its CREATE VIEW statement, not {_shown(statement)}"
        )
    if upper[2:5] == ["IF", "NOT", "EXISTS"]:
        at = 5
    if len(words) <= at + 1 or _unquoted(words[at]) != name or upper[at + 1] not in ("AS", "("):
        raise DefinitionError(f"view {name!r}: the statement does not make the view {name!r}: {_shown(statement)}")


def _unquoted(word: str) -> str:
    if len(word) >= 2 and word[0] == word[-1] and word[0] in '"`[':
        return word[1:-1]
    if len(word) >= 2 and word[0] == "[" and word[-1] == "]":
        return word[1:-1]
    return word


def tables_read(definitions: Mapping[str, str]) -> tuple[str, ...]:
    """The tables and views a view's definitions read (by name, as written; CTE names left out), as sqlglot
    reads the first definition it can parse; () when it reads none."""
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import SqlglotError

    readers = {"postgresql": "postgres", "mysql": "mysql", "sqlite": "sqlite"}
    for dialect in VIEW_DIALECTS:
        text = definitions.get(dialect)
        if text is None:
            continue
        try:
            tree = sqlglot.parse_one(text, read=readers[dialect])
        except (SqlglotError, RecursionError, ValueError):
            continue
        if isinstance(tree, exp.Create):
            tree = tree.expression
        if tree is None:
            continue
        ctes = {c.alias_or_name for c in tree.find_all(exp.CTE)}
        names = set()
        for table in tree.find_all(exp.Table):
            if not table.name or table.name in ctes:
                continue
            names.add(f"{table.db}.{table.name}" if table.db and table.db != "public" else table.name)
        return tuple(sorted(names))
    return ()


def columns_read(dialect: str, definition: str, tables: Mapping[str, tuple[str, ...]]) -> tuple[str, ...]:
    """The columns (``table.column``) of ``tables`` (name -> its columns) a view's definition reads, as sqlglot
    resolves its names against them (names compared without case, as MariaDB and SQLite compare them); ()
    when sqlglot cannot read it."""
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import SqlglotError
    from sqlglot.optimizer.qualify import qualify
    from sqlglot.optimizer.scope import traverse_scope

    readers = {"postgresql": "postgres", "mysql": "mysql", "sqlite": "sqlite"}
    by_lower = {name.lower(): (name, {c.lower(): c for c in columns}) for name, columns in tables.items()}
    mapping: dict[str, object] = {
        name.lower(): {c.lower(): "text" for c in columns} for name, columns in tables.items()
    }
    try:
        tree = sqlglot.parse_one(definition, read=readers[dialect])
        if isinstance(tree, exp.Create):
            tree = tree.expression
        if tree is None:
            return ()
        tree = qualify(tree, schema=mapping, dialect=readers[dialect], validate_qualify_columns=False)
        out: set[str] = set()
        for scope in traverse_scope(tree):
            for column in scope.columns:
                source = scope.sources.get(column.table)
                if not isinstance(source, exp.Table):
                    continue
                found = by_lower.get(source.name.lower())
                if found is not None and column.name.lower() in found[1]:
                    out.add(f"{found[0]}.{found[1][column.name.lower()]}")
    except (SqlglotError, RecursionError, ValueError, KeyError, AttributeError):
        return ()
    return tuple(sorted(out))
