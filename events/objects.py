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

import re
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


# --------------------------------------------------------------------------- routines and triggers
#
# A routine's or trigger's definition is the whole statement that makes it, as the database gives it back
# (PostgreSQL: ``pg_get_functiondef`` / ``pg_get_triggerdef``; an aggregate's is built from pg_aggregate), in
# the stored form ``CREATE OR REPLACE ...`` (a ``CREATE`` alone is made so, and read again): the reconciler
# sends it as it is, for a creation and for a replacement alike. PostgreSQL's routines and triggers, and
# SQLite's and MariaDB's triggers (below) are accepted today; the others' are refused naming the dialect, never
# stored unchecked.

ROUTINE_KINDS = ("function", "procedure", "aggregate")
ROUTINE_DIALECTS = ("postgresql",)
_SIGNATURE_CHARS = frozenset('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_ ,.[]()"')


def routine_key(name: str, signature: str) -> str:
    """A routine's key in a schema: its name and argument types (``name(integer, text)``)."""
    return f"{name}({signature})"


def trigger_key(table: str, name: str) -> str:
    """A trigger's key in a schema: its table and name (``table.trigger``; PostgreSQL names triggers per table)."""
    return f"{table}.{name}"


def check_signature(signature: str) -> str:
    """A routine's argument types as written in a DROP (``integer, text``): type names only, no statement."""
    text = " ".join(signature.split())
    if len(text) > 1000 or not set(text) <= _SIGNATURE_CHARS or "--" in text:
        raise DefinitionError(f"signature {signature!r} is not a list of argument types")
    if text.count("(") != text.count(")") or text.count('"') % 2:
        raise DefinitionError(f"signature {signature!r} is not a list of argument types")
    return text


def _plain_text(what: str, dialect: str, text: str) -> str:
    if not isinstance(text, str) or not text.strip():
        raise DefinitionError(f"{what}: the {dialect} definition is empty")
    if len(text) > MAX_DEFINITION_CHARS:
        raise DefinitionError(f"{what}: the {dialect} definition is longer than {MAX_DEFINITION_CHARS}")
    for ch in text:
        if (ord(ch) < 32 and ch not in "\t\n\r") or ord(ch) == 127:
            raise DefinitionError(f"{what}: the {dialect} definition holds the control character {ch!r}")
    stored = text.strip()
    if stored.endswith(";"):
        stored = stored[:-1].rstrip()
    return stored


def _pg_one(what: str, sql: str) -> tuple[str, dict[str, Any]]:
    import orjson
    from pglast import parser as pg_parser

    try:
        tree = orjson.loads(pg_parser.parse_sql_json(sql))
    except pg_parser.ParseError as exc:
        raise DefinitionError(f"{what}: PostgreSQL's parser does not read it: {exc}") from None
    statements = tree.get("stmts", [])
    if len(statements) != 1:
        raise DefinitionError(f"{what}: the definition makes {len(statements)} statements, not one")
    ((node_type, fields),) = statements[0]["stmt"].items()
    return node_type, fields


def _pg_name(parts: list[Any]) -> str:
    names = [p.get("String", {}).get("sval", "") for p in parts]
    if len(names) == 2 and names[0] == "public":
        names = names[1:]
    return ".".join(names)


def _or_replace(what: str, stored: str, kind_word: str) -> str:
    """``CREATE <kind>`` made ``CREATE OR REPLACE <kind>`` (the head words only, read again by the caller)."""
    import re

    match = re.match(r"CREATE\s+(" + kind_word + r")\b", stored, re.IGNORECASE)
    if match is None:
        raise DefinitionError(f"{what}: the definition does not begin CREATE {kind_word.upper()}")
    return "CREATE OR REPLACE " + stored[match.start(1) :]


def _pg_routine(name: str, kind: str, stored: str) -> tuple[bool, str]:
    what = f"{kind} {name!r}"
    node_type, fields = _pg_one(what, stored)
    if kind == "aggregate":
        if node_type != "DefineStmt" or fields.get("kind") != "OBJECT_AGGREGATE":
            raise DefinitionError(f"{what}: the definition makes a {node_type}, not an aggregate")
        named = _pg_name(fields.get("defnames", []))
    else:
        if node_type != "CreateFunctionStmt" or bool(fields.get("is_procedure")) != (kind == "procedure"):
            made = (
                "procedure"
                if fields.get("is_procedure")
                else "function"
                if node_type == "CreateFunctionStmt"
                else node_type
            )
            raise DefinitionError(f"{what}: the definition makes a {made}, not a {kind}")
        named = _pg_name(fields.get("funcname", []))
    if named != name:
        raise DefinitionError(f"{what}: the statement makes {named!r}")
    return bool(fields.get("replace")), what


@lru_cache(maxsize=4096)
def check_routine_definition(name: str, kind: str, dialect: str, text: str) -> str:
    """The definition in its stored form (``CREATE OR REPLACE ...``, no trailing ``;``) if it is one CREATE of the
    routine ``name`` of that kind in ``dialect``; else DefinitionError naming why."""
    if kind not in ROUTINE_KINDS:
        raise DefinitionError(f"routine {name!r}: kind {kind!r} is not one of {', '.join(ROUTINE_KINDS)}")
    stored = _plain_text(f"{kind} {name!r}", dialect, text)
    if dialect != "postgresql":
        raise DefinitionError(f"{kind} {name!r}: routines are recorded for PostgreSQL only today, not {dialect!r}")
    replace, what = _pg_routine(name, kind, stored)
    if not replace:
        stored = _or_replace(what, stored, kind)
        if not _pg_routine(name, kind, stored)[0]:
            raise DefinitionError(f"{what}: the definition cannot be made CREATE OR REPLACE")
    return stored


def _pg_trigger(name: str, table: str, stored: str) -> tuple[bool, str, str]:
    what = f"trigger {name!r} on {table!r}"
    node_type, fields = _pg_one(what, stored)
    if node_type != "CreateTrigStmt":
        raise DefinitionError(f"{what}: the definition makes a {node_type}, not a trigger")
    if fields.get("isconstraint"):
        raise DefinitionError(f"{what}: constraint triggers are not supported")
    relation = fields.get("relation", {})
    on = ".".join(p for p in (relation.get("schemaname"), relation.get("relname")) if p and p != "public")
    if fields.get("trigname") != name or on != table:
        raise DefinitionError(f"{what}: the statement makes trigger {fields.get('trigname')!r} on {on!r}")
    return bool(fields.get("replace")), what, _pg_name(fields.get("funcname", []))


@lru_cache(maxsize=4096)
def check_trigger_definition(name: str, table: str, dialect: str, text: str) -> str:
    """The definition in its stored form (``CREATE OR REPLACE TRIGGER ...``) if it is one CREATE of the trigger
    ``name`` on ``table`` in ``dialect``; else DefinitionError naming why."""
    stored = _plain_text(f"trigger {name!r}", dialect, text)
    if dialect == "sqlite":
        made = sqlite_trigger_target(stored)
        if made != (name, table):
            raise DefinitionError(
                f"trigger {name!r} on {table!r}: the statement makes trigger {made[0]!r} on {made[1]!r}"
            )
        return stored
    if dialect == "mysql":
        named, on, when, body = _mysql_trigger(mysql_canonical(stored))
        if (named, on) != (name, table):
            raise DefinitionError(f"trigger {name!r} on {table!r}: the statement makes trigger {named!r} on {on!r}")
        stored = mysql_trigger_statement(name, table, when, body)
        if _mysql_trigger(stored)[:2] != (name, table):
            raise DefinitionError(f"trigger {name!r} on {table!r}: its stored form does not read back")
        return stored
    if dialect != "postgresql":
        raise DefinitionError(f"trigger {name!r}: unknown dialect {dialect!r} (one of {', '.join(VIEW_DIALECTS)})")
    replace, what, _ = _pg_trigger(name, table, stored)
    if not replace:
        stored = _or_replace(what, stored, "trigger")
        if not _pg_trigger(name, table, stored)[0]:
            raise DefinitionError(f"{what}: the definition cannot be made CREATE OR REPLACE")
    return stored


# A SQLite trigger's definition is its CREATE TRIGGER statement as sqlite_master keeps it (no trailing ``;``).
# SQLite has no CREATE OR REPLACE TRIGGER: a replacement drops the trigger and makes it again. Its body holds
# statements, each ended by ``;``, so the check reads sqlglot's SQLite tokens and proves, conservatively:
# ``CREATE TRIGGER [IF NOT EXISTS] name`` (not TEMP, not schema-qualified) ... ``ON table`` ... ``BEGIN``,
# then statements each beginning SELECT, INSERT, UPDATE, DELETE, REPLACE or WITH and ended by ``;`` (no ``;``
# inside parentheses), then the ``END`` closing the body as the very last token (CASE ... END counted), no
# other BEGIN, no statement of any other kind anywhere, no comment.

_SQLITE_BODY_HEADS = frozenset({"SELECT", "INSERT", "UPDATE", "DELETE", "REPLACE", "WITH"})
_SQLITE_REFUSED_WORDS = frozenset(
    {"CREATE", "DROP", "ALTER", "ATTACH", "DETACH", "PRAGMA", "VACUUM", "BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT"}
)
"""Words no trigger's text holds unquoted (but RAISE(ROLLBACK, ...)): statements of other kinds."""


@lru_cache(maxsize=4096)
def sqlite_trigger_target(statement: str) -> tuple[str, str]:
    """The (trigger, table) a SQLite CREATE TRIGGER statement makes, if it is provably one such statement and
    nothing else (see above); else DefinitionError naming why."""
    import sqlglot
    from sqlglot import TokenType
    from sqlglot.errors import SqlglotError

    what = f"the SQLite trigger {_shown(statement)}"
    try:
        tokens = list(sqlglot.tokenize(statement, read="sqlite"))
    except SqlglotError as exc:
        raise DefinitionError(f"{what}: sqlglot's sqlite tokenizer does not read it: {exc}") from None
    stripped = _without_strings(statement)
    if any(t.comments for t in tokens) or "/*" in stripped or "--" in stripped:
        raise DefinitionError(f"{what}: a comment in the definition")
    words = [t.text.upper() if t.token_type not in (TokenType.STRING, TokenType.IDENTIFIER) else "" for t in tokens]
    if words[:2] != ["CREATE", "TRIGGER"]:
        raise DefinitionError(f"{what}: a SQLite definition is its CREATE TRIGGER statement (not TEMP)")
    at = 5 if words[2:5] == ["IF", "NOT", "EXISTS"] else 2
    if len(tokens) <= at + 1 or tokens[at + 1].token_type == TokenType.DOT or not _is_name(tokens[at]):
        raise DefinitionError(f"{what}: no trigger name (a schema-qualified one is refused)")
    name = _unquoted(tokens[at].text)
    try:
        on = words.index("ON", at + 1)
    except ValueError:
        raise DefinitionError(f"{what}: no ON table") from None
    if len(tokens) <= on + 2 or not _is_name(tokens[on + 1]) or tokens[on + 2].token_type == TokenType.DOT:
        raise DefinitionError(f"{what}: no table name after ON (a schema-qualified one is refused)")
    table = _unquoted(tokens[on + 1].text)
    _sqlite_trigger_body(what, tokens, words, at + 1)
    return name, table


def _is_name(token: Any) -> bool:
    from sqlglot import TokenType

    return bool(token.token_type in (TokenType.IDENTIFIER, TokenType.VAR) and token.text)


def _sqlite_trigger_body(what: str, tokens: list[Any], words: list[str], start: int) -> None:
    """The tokens from ``start``: a head without ``;`` up to the one BEGIN, statements, and the closing END last."""
    from sqlglot import TokenType

    cases = parens = 0
    body = False
    statement_start = False
    for i in range(start, len(tokens)):
        token, word = tokens[i], words[i]
        kind = token.token_type
        if body and statement_start:
            if word == "END" and cases == 0:
                if i != len(tokens) - 1:
                    raise DefinitionError(f"{what}: something follows the END of the trigger's body")
                return
            if word not in _SQLITE_BODY_HEADS:
                raise DefinitionError(f"{what}: a statement in the body that is not SELECT, INSERT, UPDATE or DELETE")
            statement_start = False
            continue
        if kind == TokenType.BEGIN and not body and cases == 0 and parens == 0:
            body = statement_start = True
            continue
        raised = word == "ROLLBACK" and words[i - 2 : i] == ["RAISE", "("]  # RAISE(ROLLBACK, 'message')
        if (word in _SQLITE_REFUSED_WORDS and not raised) or kind == TokenType.BEGIN:
            raise DefinitionError(f"{what}: {token.text!r} where a trigger holds none")
        if kind == TokenType.L_PAREN:
            parens += 1
        elif kind == TokenType.R_PAREN:
            parens -= 1
            if parens < 0:
                raise DefinitionError(f"{what}: a ')' that closes nothing")
        elif kind == TokenType.CASE:
            cases += 1
        elif word == "END":
            if cases == 0:
                raise DefinitionError(f"{what}: an END before the statement in the body ends")
            cases -= 1
        elif kind == TokenType.SEMICOLON:
            if not body or parens or cases:
                raise DefinitionError(f"{what}: a ';' outside the statements of the body")
            statement_start = True
    raise DefinitionError(f"{what}: the body does not end with END")


# A MariaDB trigger's definition is its statement as SHOW CREATE TRIGGER gives it back, stored without its
# ``DEFINER=...`` (the account that made it: another database's may not exist) and as ``CREATE OR REPLACE
# TRIGGER`` (MariaDB 10.11 has it), so a creation and a replacement send the same text. sqlglot's MySQL
# tokens prove it, conservatively: ``CREATE OR REPLACE TRIGGER name`` (not schema-qualified) ``BEFORE|AFTER
# INSERT|UPDATE|DELETE ON table FOR EACH ROW`` (no FOLLOWS / PRECEDES: information_schema gives no such
# clause back), then the body: one statement with no ``;`` and no BEGIN (SET, INSERT, UPDATE, DELETE, REPLACE
# or CALL), or one ``BEGIN ... END`` compound whose END (BEGIN ... END, CASE ... END and CASE ... END CASE
# counted; END IF / LOOP / WHILE / REPEAT close nothing counted) is the very last token; no comment (MariaDB
# runs ``/*! ... */``), no word of a statement no trigger runs (CREATE, DROP, ALTER, ...). The stored form is
# made again from its parts (names quoted, words upper case, the body as written), as introspection makes it
# from information_schema.TRIGGERS, so a trigger written by hand and the one read back compare equal.

_MYSQL_DEFINER = re.compile(
    r"\ACREATE\s+(OR\s+REPLACE\s+)?(DEFINER\s*=\s*(CURRENT_USER(\s*\(\s*\))?"
    r"|(`(?:[^`]|``)*`|'(?:[^']|'')*'|[A-Za-z0-9_.$%-]+)(\s*@\s*(`(?:[^`]|``)*`|'(?:[^']|'')*'|[A-Za-z0-9_.$%-]+))?)"
    r"\s+)?(?P<kind>TRIGGER|FUNCTION|PROCEDURE)\s",
    re.IGNORECASE,
)
_MYSQL_STATEMENT_HEADS = frozenset({"SET", "INSERT", "UPDATE", "DELETE", "REPLACE", "CALL"})
_MYSQL_REFUSED_WORDS = frozenset(
    {"CREATE", "DROP", "ALTER", "TRUNCATE", "RENAME", "GRANT", "REVOKE", "DELIMITER", "PREPARE", "EXECUTE"}
    | {"DEALLOCATE", "COMMIT", "ROLLBACK", "SAVEPOINT", "LOCK", "UNLOCK", "FLUSH", "INSTALL", "UNINSTALL"}
    | {"SHUTDOWN", "KILL", "LOAD", "HANDLER", "USE", "START", "XA", "DEFINER", "TRIGGER", "PROCEDURE"}
)
"""Words no MariaDB trigger's or routine's body holds unquoted: statements of kinds they do not run."""
_MYSQL_BLOCK_ENDS = frozenset({"IF", "LOOP", "WHILE", "REPEAT"})


def mysql_canonical(statement: str) -> str:
    """A MariaDB CREATE TRIGGER / FUNCTION / PROCEDURE as stored: ``CREATE OR REPLACE`` and no ``DEFINER=...``
    (the text unchanged when its head is none of these: the check that follows refuses it)."""
    match = _MYSQL_DEFINER.match(statement)
    if match is None:
        return statement
    return f"CREATE OR REPLACE {match['kind'].upper()} " + statement[match.end() :].lstrip()


def _mysql_words(what: str, statement: str) -> tuple[list[Any], list[str]]:
    import sqlglot
    from sqlglot import TokenType
    from sqlglot.errors import SqlglotError

    try:
        tokens = list(sqlglot.tokenize(statement, read="mysql"))
    except SqlglotError as exc:
        raise DefinitionError(f"{what}: sqlglot's mysql tokenizer does not read it: {exc}") from None
    stripped = _without_strings(statement)
    if any(t.comments for t in tokens) or "/*" in stripped or "--" in stripped or "#" in stripped:
        raise DefinitionError(f"{what}: a comment in the definition")
    words = [t.text.upper() if t.token_type not in (TokenType.STRING, TokenType.IDENTIFIER) else "" for t in tokens]
    return tokens, words


def _mysql_name(what: str, tokens: list[Any], at: int, role: str) -> str:
    from sqlglot import TokenType

    if len(tokens) <= at + 1 or not _is_name(tokens[at]) or tokens[at + 1].token_type == TokenType.DOT:
        raise DefinitionError(f"{what}: no {role} name where one is due (a schema-qualified one is refused)")
    return str(tokens[at].text)


def _mysql_body(what: str, tokens: list[Any], words: list[str], start: int) -> None:
    """The tokens from ``start``: one statement with no ``;`` and no BEGIN, or a ``BEGIN`` at ``start`` whose
    compound the very last token closes."""
    from sqlglot import TokenType

    stack: list[str] = []
    parens = 0
    i = start
    while i < len(tokens):
        token, word = tokens[i], words[i]
        kind = token.token_type
        if word in _MYSQL_REFUSED_WORDS:
            raise DefinitionError(f"{what}: {token.text!r} where a body holds none")
        if kind == TokenType.L_PAREN:
            parens += 1
        elif kind == TokenType.R_PAREN:
            parens -= 1
            if parens < 0:
                raise DefinitionError(f"{what}: a ')' that closes nothing")
        elif kind == TokenType.SEMICOLON:
            if not stack or parens:
                raise DefinitionError(f"{what}: a ';' outside a BEGIN ... END compound")
        elif kind == TokenType.BEGIN:
            if parens or (i != start and not stack):
                raise DefinitionError(f"{what}: a BEGIN that does not open the body nor sit inside it")
            stack.append("BEGIN")
        elif kind == TokenType.CASE and words[i - 1] != "END":
            stack.append("CASE")
        elif word == "END":
            following = words[i + 1] if i + 1 < len(words) else ""
            if following in _MYSQL_BLOCK_ENDS:
                i += 2
                continue
            if not stack:
                raise DefinitionError(f"{what}: an END that closes nothing")
            opened = stack.pop()
            if following == "CASE":
                if opened != "CASE":
                    raise DefinitionError(f"{what}: an END CASE that closes a {opened}")
                i += 2
                continue
            if not stack and opened == "BEGIN":
                if i != len(tokens) - 1:
                    raise DefinitionError(f"{what}: something follows the END of the body")
                return
        i += 1
    if stack or parens:
        raise DefinitionError(f"{what}: the body does not end with the END of its BEGIN")


def mysql_trigger_target(statement: str) -> tuple[str, str]:
    """The (trigger, table) a MariaDB ``CREATE OR REPLACE TRIGGER`` statement makes, if it is provably one such
    statement and nothing else (see above); else DefinitionError naming why."""
    name, table, _when, _body = _mysql_trigger(statement)
    return name, table


def mysql_trigger_statement(name: str, table: str, when: str, body: str) -> str:
    """A MariaDB trigger's stored form: its names quoted, its words upper case, its body as written."""
    return f"CREATE OR REPLACE TRIGGER {_backticked(name)} {when} ON {_backticked(table)} FOR EACH ROW {body}"


def _backticked(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


@lru_cache(maxsize=4096)
def _mysql_trigger(statement: str) -> tuple[str, str, str, str]:
    """(trigger, table, ``BEFORE|AFTER INSERT|UPDATE|DELETE``, body) of a provable MariaDB CREATE OR REPLACE
    TRIGGER."""
    what = f"the MariaDB trigger {_shown(statement)}"
    tokens, words = _mysql_words(what, statement)
    if words[:4] != ["CREATE", "OR", "REPLACE", "TRIGGER"]:
        raise DefinitionError(f"{what}: a MariaDB definition is its CREATE [OR REPLACE] TRIGGER statement")
    name = _mysql_name(what, tokens, 4, "trigger")
    if len(words) < 13 or words[5] not in ("BEFORE", "AFTER") or words[6] not in ("INSERT", "UPDATE", "DELETE"):
        raise DefinitionError(f"{what}: no BEFORE|AFTER INSERT|UPDATE|DELETE after the trigger's name")
    if words[7] != "ON":
        raise DefinitionError(f"{what}: no ON table")
    table = _mysql_name(what, tokens, 8, "table")
    if words[9:12] != ["FOR", "EACH", "ROW"]:
        raise DefinitionError(f"{what}: no FOR EACH ROW after the table")
    at = 12
    if words[at] in ("FOLLOWS", "PRECEDES"):
        raise DefinitionError(f"{what}: FOLLOWS / PRECEDES (an order among triggers) is not recorded")
    if words[at] != "BEGIN" and words[at] not in _MYSQL_STATEMENT_HEADS:
        raise DefinitionError(f"{what}: a body that is not BEGIN ... END nor SET, INSERT, UPDATE, DELETE or CALL")
    _mysql_body(what, tokens, words, at)
    return name, table, f"{words[5]} {words[6]}", statement[tokens[at].start :]


def trigger_calls(name: str, table: str, definitions: Mapping[str, str]) -> tuple[str, ...]:
    """The routine a trigger's PostgreSQL definition runs, by name (() without one)."""
    text = definitions.get("postgresql")
    if text is None:
        return ()
    return (_trigger_call(name, table, text),)


@lru_cache(maxsize=4096)
def _trigger_call(name: str, table: str, text: str) -> str:
    return _pg_trigger(name, table, text)[2]


def routine_calls(text: str) -> tuple[str, ...]:
    """The functions a PostgreSQL ``LANGUAGE sql`` routine's body calls, by name (``public.`` left out), as
    PostgreSQL's parser reads the body: PostgreSQL checks such a body when the routine is made, so what it
    calls must be made first. () for any other language, or a body the parser cannot read."""
    import orjson
    from pglast import parser as pg_parser

    try:
        tree = orjson.loads(pg_parser.parse_sql_json(text))
        (statement,) = tree.get("stmts", [])
        fields = statement["stmt"].get("CreateFunctionStmt", {})
        options = {o["DefElem"]["defname"]: o["DefElem"].get("arg") for o in fields.get("options", [])}
        if options.get("language", {}).get("String", {}).get("sval") != "sql":
            return ()
        body = options["as"]["List"]["items"][0]["String"]["sval"]
        found: set[str] = set()
        _calls(orjson.loads(pg_parser.parse_sql_json(body)), found)
    except (pg_parser.ParseError, KeyError, IndexError, TypeError, ValueError, AttributeError):
        return ()
    return tuple(sorted(found))


def _calls(node: Any, found: set[str]) -> None:
    if isinstance(node, list):
        for item in node:
            _calls(item, found)
    elif isinstance(node, dict):
        call = node.get("FuncCall")
        if isinstance(call, dict):
            name = _pg_name(call.get("funcname", []))
            if not name.startswith("pg_catalog."):
                found.add(name)
        for value in node.values():
            _calls(value, found)
