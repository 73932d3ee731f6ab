"""MySQL/MariaDB: the live schema, read from information_schema in one query per catalogue table.

Every name comes from information_schema exactly as stored (SHOW CREATE TABLE, which SQLAlchemy's
Inspector parses, doubles a backtick inside a name and costs one round trip a table). What MariaDB
makes of its own accord is read back as the log says it: JSON is LONGTEXT with a ``json_valid``
check, a foreign key without an index of its own gets one named like the key, a long unique key is
a HASH index, a column's charset and collation are the table's unless the column says otherwise.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from events.model import (
    Column,
    ColumnType,
    Constraint,
    Generated,
    Index,
    IndexElement,
    Reference,
    Schema,
    Table,
    Trigger,
    View,
    construct,
)
from service.reconciler.introspect import SKIP_TABLES, live_native_type
from service.reconciler.introspect import fk_action as _fk_action
from service.reconciler.normalize import canonical_default, canonical_schema

MYSQL_COLUMNS = """
SELECT TABLE_NAME, COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, COLUMN_DEFAULT, EXTRA, COLUMN_COMMENT,
       CHARACTER_SET_NAME, COLLATION_NAME, IS_GENERATED, GENERATION_EXPRESSION
FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() ORDER BY TABLE_NAME, ORDINAL_POSITION
"""
MYSQL_TABLES = """
SELECT t.TABLE_NAME, t.TABLE_COMMENT, t.TABLE_COLLATION, c.CHARACTER_SET_NAME
FROM information_schema.TABLES t LEFT JOIN information_schema.COLLATIONS c ON c.COLLATION_NAME = t.TABLE_COLLATION
WHERE t.TABLE_SCHEMA = DATABASE() AND t.TABLE_TYPE = 'BASE TABLE'
"""
MYSQL_COLLATIONS = """
SELECT COLLATION_NAME, CHARACTER_SET_NAME, IS_DEFAULT FROM information_schema.COLLATIONS
"""
MYSQL_DATABASE_DEFAULTS = "SELECT @@character_set_database, @@collation_database"
MYSQL_INDEXES = """
SELECT TABLE_NAME, INDEX_NAME, COLUMN_NAME, NON_UNIQUE, INDEX_TYPE, COLLATION
FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX
"""
MYSQL_FOREIGN_KEYS = """
SELECT k.TABLE_NAME, k.CONSTRAINT_NAME, k.COLUMN_NAME, k.REFERENCED_TABLE_SCHEMA, k.REFERENCED_TABLE_NAME,
       k.REFERENCED_COLUMN_NAME, r.UPDATE_RULE, r.DELETE_RULE
FROM information_schema.KEY_COLUMN_USAGE k JOIN information_schema.REFERENTIAL_CONSTRAINTS r
  ON r.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA AND r.TABLE_NAME = k.TABLE_NAME AND r.CONSTRAINT_NAME = k.CONSTRAINT_NAME
WHERE k.TABLE_SCHEMA = DATABASE() AND k.REFERENCED_TABLE_NAME IS NOT NULL
ORDER BY k.TABLE_NAME, k.CONSTRAINT_NAME, k.ORDINAL_POSITION
"""
MYSQL_CHECKS = """
SELECT TABLE_NAME, CONSTRAINT_NAME, LEVEL, CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS
WHERE CONSTRAINT_SCHEMA = DATABASE() ORDER BY TABLE_NAME, CONSTRAINT_NAME
"""

MYSQL_TYPES = {
    "smallint": "smallint",
    "int": "integer",
    "integer": "integer",
    "bigint": "bigint",
    "tinyint(1)": "boolean",
    "float": "real",
    "double": "double",
    "text": "text",
    "date": "date",
    "time(6)": "time",
    "datetime(6)": "timestamp",
    "uuid": "uuid",
    "longblob": "bytes",
    "json": "json",
}
_MYSQL_PARAMS = re.compile(r"^([a-z]+)\(([\d,]+)\)( unsigned)?$")

METHODS = {"FULLTEXT": "fulltext", "SPATIAL": "spatial"}
"""INDEX_TYPE -> the log's method. BTREE is the default; HASH is MariaDB's own choice for a unique key
too long for a B-tree (InnoDB makes no hash index when asked: it makes a B-tree), so both read None."""

JSON_CHARSET, JSON_COLLATION = "utf8mb4", "utf8mb4_bin"
"""What MariaDB gives its JSON (LONGTEXT) columns whatever the table's default."""

_JSON_CHECK = re.compile(r"^json_valid\(`((?:[^`]|``)+)`\)$", re.IGNORECASE)


def mysql_type(declared: str) -> ColumnType:
    text = declared.lower().strip()
    if text in MYSQL_TYPES:
        return ColumnType(name=MYSQL_TYPES[text])
    match = _MYSQL_PARAMS.match(text)
    if match and not match.group(3):
        base, params = match.group(1), tuple(int(p) for p in match.group(2).split(","))
        if base in ("smallint", "int", "bigint"):  # display widths mean nothing
            return ColumnType(name=MYSQL_TYPES[base])
        try:  # within the portable grammar's bounds (MariaDB allows varchar(0), for one), else native
            if base == "decimal":
                return ColumnType(name="numeric", params=params)
            if base in ("varchar", "char"):
                return ColumnType(name=base, params=params)
        except ValueError:
            pass
    return live_native_type("mysql", declared.strip())


@dataclass(frozen=True)
class Collations:
    """The server's collations: what a column's character set and collation mean where one is not given."""

    charset_of: dict[str, str]
    """collation -> its character set"""
    default_of: dict[str, str]
    """character set -> its default collation"""
    database: tuple[str, str]
    """the database's default (character set, collation): what a table made here gets"""


def read_collations(conn: sa.Connection) -> Collations:
    charset_of, default_of = {}, {}
    for collation, charset, is_default in conn.execute(sa.text(MYSQL_COLLATIONS)):
        charset_of[collation] = charset
        if is_default == "Yes":
            default_of[charset] = collation
    charset, collation = conn.execute(sa.text(MYSQL_DATABASE_DEFAULTS)).one()
    return Collations(charset_of, default_of, (charset, collation))


def own_charset_collation(
    charset: str | None, collation: str | None, table: tuple[str | None, str | None], known: Collations
) -> tuple[str | None, str | None]:
    """A column's (character set, collation) in the canonical form: a collation only where it is not the
    table's (``table``: its character set and collation), the character set only where it is not the
    table's and the collation does not say it (a collation names its character set; a character set
    alone means its default collation)."""
    if charset is None and collation is None:
        return None, None
    if collation is None and charset is not None:
        collation = known.default_of.get(charset)
    if charset is None and collation is not None:
        charset = known.charset_of.get(collation, table[0])
    own_collation = collation if collation != table[1] else None
    own_charset = charset if charset != table[0] else None
    if own_charset is not None and own_collation == known.default_of.get(own_charset):
        own_collation = None
    if own_collation is not None:
        own_charset = None
    return own_charset, own_collation


def _by_table(conn: sa.Connection, sql: str) -> dict[str, list[Any]]:
    rows: dict[str, list[Any]] = {}
    for r in conn.execute(sa.text(sql)):
        rows.setdefault(r[0], []).append(r)
    return rows


def _column(row: Any, json_columns: set[str], table: tuple[str | None, str | None], known: Collations) -> Column:
    _table, name, declared, nullable, default, extra, comment, charset, collation, generated, expression = row
    if default is not None and default.upper() == "NULL":
        default = None
    extra = (extra or "").lower()
    ctype = ColumnType(name="json") if name in json_columns else mysql_type(declared)
    if ctype.portable and ctype.name == "json" and (charset, collation) == (JSON_CHARSET, JSON_COLLATION):
        charset = collation = None
    own_charset, own_collation = own_charset_collation(charset, collation, table, known)
    gen = None
    if generated == "ALWAYS" and expression is not None:
        gen = construct(Generated, {"expression": expression, "stored": "stored" in extra})
        default = None
    return construct(
        Column,
        {
            "name": name,
            "type": ctype,
            "nullable": nullable == "YES",
            "default": default,
            "identity": "auto_increment" in extra,
            "comment": comment or None,
            "collation": own_collation,
            "charset": own_charset,
            "generated": gen,
            "identity_options": None,
            "on_update": _on_update(extra),
        },
    )


_ON_UPDATE = re.compile(r"\bon update (\S+)")


def _on_update(extra: str) -> str | None:
    """``on update current_timestamp()`` of EXTRA (lower-cased), as the log writes it (canonical_default)."""
    match = _ON_UPDATE.search(extra)
    return canonical_default(match.group(1)) if match else None


def _indexes(rows: list[Any], fk_columns: dict[str, tuple[str, ...]]) -> tuple[tuple[str, ...], list[Index]]:
    """(the primary key's columns, the indexes) of one table, from its STATISTICS rows."""
    grouped: dict[str, list[Any]] = {}
    for r in rows:
        grouped.setdefault(r[1], []).append(r)
    primary_key: tuple[str, ...] = ()
    out = []
    for name, parts in grouped.items():
        columns = tuple(p[2] for p in parts)
        if name == "PRIMARY":
            primary_key = columns
            continue
        unique = not int(parts[0][3])
        if fk_columns.get(name) == columns and not unique:
            continue  # the index MariaDB made for a foreign key (named like it)
        method = METHODS.get(parts[0][4])
        elements: tuple[IndexElement, ...] = ()
        if any(p[5] == "D" for p in parts):
            elements = tuple(
                construct(
                    IndexElement, {"column": p[2], "expression": None, "opclass": None, "descending": p[5] == "D"}
                )
                for p in parts
            )
            columns = ()
        out.append(
            construct(
                Index,
                {
                    "name": name,
                    "columns": columns,
                    "unique": unique,
                    "method": method,
                    "elements": elements,
                    "where": None,
                    "include": (),
                },
            )
        )
    return primary_key, out


def _foreign_keys(rows: list[Any], database: str) -> list[Constraint]:
    grouped: dict[str, list[Any]] = {}
    for r in rows:
        grouped.setdefault(r[1], []).append(r)
    out = []
    for name, parts in grouped.items():
        _t, _n, _c, schema, table, _rc, on_update, on_delete = parts[0]
        referenced = table if schema is None or schema == database else f"{schema}.{table}"
        out.append(
            construct(
                Constraint,
                {
                    "name": name,
                    "kind": "foreign_key",
                    "columns": tuple(p[2] for p in parts),
                    "expression": None,
                    "references": construct(Reference, {"table": referenced, "columns": tuple(p[5] for p in parts)}),
                    "on_delete": _mysql_action(on_delete),
                    "on_update": _mysql_action(on_update),
                    "deferrable": False,
                    "initially_deferred": False,
                    "anonymous": False,  # MariaDB keeps every constraint's name
                },
            )
        )
    return out


def _mysql_action(rule: str | None) -> str | None:
    """InnoDB's RESTRICT is its NO ACTION and its default (information_schema says RESTRICT for a key
    given no action): all three read None."""
    action = _fk_action(rule)
    return None if action == "restrict" else action


def introspect_mysql(conn: sa.Connection, known: Collations | None = None) -> Schema:
    database = conn.execute(sa.text("SELECT DATABASE()")).scalar_one()
    tables_rows = {r[0]: r for r in conn.execute(sa.text(MYSQL_TABLES))}
    known = known or read_collations(conn)
    columns_rows = _by_table(conn, MYSQL_COLUMNS)
    index_rows = _by_table(conn, MYSQL_INDEXES)
    fk_rows = _by_table(conn, MYSQL_FOREIGN_KEYS)
    check_rows = _by_table(conn, MYSQL_CHECKS)
    tables: dict[str, Table] = {}
    for name in sorted(tables_rows):
        if SKIP_TABLES.match(name) or name not in columns_rows:
            continue
        _n, comment, collation, charset = tables_rows[name]
        json_columns: set[str] = set()
        constraints: list[Constraint] = []
        for _t, check_name, level, clause in check_rows.get(name, ()):
            match = _JSON_CHECK.match((clause or "").strip())
            if level == "Column" and match and match.group(1).replace("``", "`") == check_name:
                json_columns.add(check_name)  # MariaDB's JSON is LONGTEXT with this check
                continue
            constraints.append(
                construct(
                    Constraint,
                    {
                        "name": check_name,
                        "kind": "check",
                        "columns": (),
                        "expression": clause,
                        "references": None,
                        "on_delete": None,
                        "on_update": None,
                        "deferrable": False,
                        "initially_deferred": False,
                        "anonymous": False,
                    },
                )
            )
        columns = tuple(_column(r, json_columns, (charset, collation), known) for r in columns_rows[name])
        foreign_keys = _foreign_keys(fk_rows.get(name, []), database)
        fk_columns = {c.name: c.columns for c in foreign_keys}
        primary_key, indexes = _indexes(index_rows.get(name, []), fk_columns)
        tables[name] = construct(
            Table,
            {
                "name": name,
                "columns": columns,
                "primary_key": primary_key,
                "indexes": tuple(indexes),
                "constraints": tuple(constraints + foreign_keys),
                "comment": comment or None,
                "primary_key_name": None,
                "partition_by": None,
                "partition_of": None,
            },
        )
    views = read_mysql_views(conn, {name: tuple(c.name for c in t.columns) for name, t in tables.items()})
    triggers = read_mysql_triggers(conn)
    return canonical_schema(construct(Schema, {"tables": tables, "enums": {}, "views": views, "triggers": triggers}))


MYSQL_VIEWS = """
SELECT TABLE_NAME, VIEW_DEFINITION, SECURITY_TYPE, DATABASE() FROM information_schema.VIEWS
WHERE TABLE_SCHEMA = DATABASE() ORDER BY TABLE_NAME
"""


def read_mysql_views(conn: sa.Connection, columns: dict[str, tuple[str, ...]]) -> dict[str, View]:
    """The database's views (one query, whatever their number): each one's query as MariaDB gives it back,
    its own database's name taken out of the qualified names (as SHOW CREATE VIEW writes it: a view is
    rebuilt in another database), what it reads (tables and views; the columns of ``columns``, a table's
    names) found by sqlglot."""
    from events.objects import columns_read, tables_read

    out = {}
    for name, text, security, database in conn.execute(sa.text(MYSQL_VIEWS)).all():
        definition = str(text).replace("`" + str(database).replace("`", "``") + "`.", "")
        reads = tuple(t for t in tables_read({"mysql": definition}) if t != name)
        out[name] = construct(
            View,
            {
                "name": name,
                "definitions": {"mysql": definition},
                "materialized": False,
                "uses": reads,
                "columns": columns_read("mysql", definition, {t: columns[t] for t in reads if t in columns}),
                "security": "invoker" if str(security).upper() == "INVOKER" else None,
            },
        )
    return out


MYSQL_TRIGGERS = """
SELECT TRIGGER_NAME, EVENT_OBJECT_TABLE, ACTION_TIMING, EVENT_MANIPULATION, ACTION_STATEMENT
FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE() ORDER BY EVENT_OBJECT_TABLE, TRIGGER_NAME
"""


def read_mysql_triggers(conn: sa.Connection) -> dict[str, Trigger]:
    """The database's triggers by key (``table.name``), in one query whatever their number: each one's statement
    as SHOW CREATE TRIGGER gives it back, but for its ``DEFINER=...`` (the stored form, events.objects), made
    from information_schema.TRIGGERS (its body is ACTION_STATEMENT, as MariaDB keeps it). One events.objects
    refuses is kept as read: drift, and an import that names why it cannot record it."""
    from events.objects import DefinitionError, check_trigger_definition, mysql_trigger_statement, trigger_key

    out = {}
    for name, table, timing, event, body in conn.execute(sa.text(MYSQL_TRIGGERS)).all():
        text = mysql_trigger_statement(name, table, f"{timing} {event}", str(body))
        try:
            text = check_trigger_definition(name, table, "mysql", text)
        except DefinitionError:
            pass
        out[trigger_key(table, name)] = construct(
            Trigger, {"name": name, "table": table, "definitions": {"mysql": text}, "uses": ()}
        )
    return out
