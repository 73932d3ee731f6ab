"""Live database -> the schema objects the projections produce.

Normalised per dialect so that a database built from state S introspects back
to the dialect's form of S (service.reconciler.dialects: Dialect.normalize).
SQLite and MySQL/MariaDB go through SQLAlchemy's Inspector; SQLite's declared
type text comes from ``PRAGMA table_xinfo`` (SQLite keeps it as written).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import sqlalchemy as sa

from events.decode import construct
from events.model import (
    Column,
    ColumnType,
    Constraint,
    Index,
    Reference,
    Schema,
    Table,
    parse_type,
)
from service.reconciler.normalize import canonical_schema

SKIP_TABLES = re.compile(r"^(sqlite_|schemalog_)")

SQLITE_COLUMNS = 'SELECT cid, name, type, "notnull", dflt_value, pk, hidden FROM pragma_table_xinfo(:t)'
SQLITE_TABLE_SQL = "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = :t"

SQLITE_TYPES = {"blob": "bytes", "double": "double", "boolean": "boolean", "datetime": "timestamp"}


def sqlite_type(declared: str) -> ColumnType:
    text = " ".join(declared.lower().split())
    if text in SQLITE_TYPES:
        return ColumnType(name=SQLITE_TYPES[text])
    try:
        return parse_type(text)
    except ValueError:
        return ColumnType(name=text or "blob", dialect="sqlite") if text else ColumnType(name="bytes")


def _fk_action(value: Any) -> str | None:
    if not value:
        return None
    action = " ".join(str(value).lower().split())
    return None if action == "no action" else action


def _unescape(name: str) -> str:
    """SQLAlchemy's SQLite reflection keeps a quoted name's doubled quotes: undo that."""
    return name.replace('""', '"')


_SQLITE_IDENT = r'(?:"(?:[^"]|"")*"|\[[^\]]*\]|`(?:[^`]|``)*`|[A-Za-z_][A-Za-z0-9_$]*)'
_SQLITE_FK = re.compile(
    rf"CONSTRAINT\s+({_SQLITE_IDENT})\s+FOREIGN\s+KEY\s*\(((?:\s*{_SQLITE_IDENT}\s*,?)+)\)\s*"
    rf"REFERENCES\s+({_SQLITE_IDENT})\s*\(((?:\s*{_SQLITE_IDENT}\s*,?)+)\)"
    r"((?:\s+ON\s+(?:DELETE|UPDATE)\s+(?:SET\s+NULL|SET\s+DEFAULT|CASCADE|RESTRICT|NO\s+ACTION))*)",
    re.IGNORECASE,
)
_SQLITE_FK_ACTION = re.compile(
    r"ON\s+(DELETE|UPDATE)\s+(SET\s+NULL|SET\s+DEFAULT|CASCADE|RESTRICT|NO\s+ACTION)", re.IGNORECASE
)


def _sqlite_name(token: str) -> str:
    token = token.strip()
    if token[:1] == '"':
        return token[1:-1].replace('""', '"')
    if token[:1] == "`":
        return token[1:-1].replace("``", "`")
    if token[:1] == "[":
        return token[1:-1]
    return token


def _sqlite_names(text: str) -> tuple[str, ...]:
    return tuple(_sqlite_name(t) for t in re.findall(_SQLITE_IDENT, text))


_SQLITE_UNIQUE = re.compile(
    rf"CONSTRAINT\s+({_SQLITE_IDENT})\s+UNIQUE\s*\(((?:\s*{_SQLITE_IDENT}\s*,?)+)\)", re.IGNORECASE
)


def sqlite_unique_constraints(sql: str) -> list[Constraint]:
    """Named unique constraints from a CREATE TABLE text."""
    return [
        Constraint(name=_sqlite_name(m.group(1)), kind="unique", columns=_sqlite_names(m.group(2)))
        for m in _SQLITE_UNIQUE.finditer(sql)
    ]


def sqlite_foreign_keys(sql: str) -> list[Constraint]:
    """Named foreign keys from a CREATE TABLE text (SQLite keeps their names nowhere else)."""
    out = []
    for match in _SQLITE_FK.finditer(sql):
        actions = {m.group(1).lower(): _fk_action(m.group(2)) for m in _SQLITE_FK_ACTION.finditer(match.group(5))}
        out.append(
            Constraint(
                name=_sqlite_name(match.group(1)),
                kind="foreign_key",
                columns=_sqlite_names(match.group(2)),
                references=Reference(table=_sqlite_name(match.group(3)), columns=_sqlite_names(match.group(4))),
                on_delete=actions.get("delete"),
                on_update=actions.get("update"),
            )
        )
    return out


SQLITE_FK_LIST = 'SELECT id, seq, "table", "from", "to", on_update, on_delete FROM pragma_foreign_key_list(:t)'


def sqlite_all_foreign_keys(conn: sa.Connection, table: str, sql: str) -> list[Constraint]:
    """Every foreign key (PRAGMA foreign_key_list is the truth), named as the CREATE TABLE text names it;
    an unnamed one (``FOREIGN KEY (a) REFERENCES t (b)`` or a column's ``REFERENCES``) gets the name
    PostgreSQL would give it, ``<table>_<columns>_fkey``."""
    named = {(k.columns, k.references.table, k.references.columns): k for k in sqlite_foreign_keys(sql) if k.references}
    groups: dict[int, list[Any]] = {}
    for r in conn.execute(sa.text(SQLITE_FK_LIST), {"t": table}):
        groups.setdefault(r[0], []).append(r)
    out = []
    for rows in (sorted(g, key=lambda r: r[1]) for _, g in sorted(groups.items(), reverse=True)):
        columns = tuple(r[3] for r in rows)
        ref_table = rows[0][2]
        ref_columns = tuple(r[4] for r in rows) if rows[0][4] is not None else ()
        found = named.get((columns, ref_table, ref_columns))
        if found is not None:
            out.append(found)
            continue
        out.append(
            Constraint(
                name=f"{table}_{'_'.join(columns)}_fkey",
                kind="foreign_key",
                columns=columns,
                references=Reference(table=ref_table, columns=ref_columns or columns),
                on_delete=_fk_action(rows[0][6]),
                on_update=_fk_action(rows[0][5]),
            )
        )
    return out


def introspect_sqlite(conn: sa.Connection) -> Schema:
    inspector = sa.inspect(conn)
    tables: dict[str, Table] = {}
    for name in inspector.get_table_names():
        if SKIP_TABLES.match(name):
            continue
        sql = conn.execute(sa.text(SQLITE_TABLE_SQL), {"t": name}).scalar() or ""
        autoincrement = "AUTOINCREMENT" in sql.upper()
        rows = conn.execute(sa.text(SQLITE_COLUMNS), {"t": name}).mappings().all()
        pk = [r["name"] for r in sorted((r for r in rows if r["pk"]), key=lambda r: r["pk"])]
        columns = []
        for r in rows:
            if r["hidden"]:
                continue
            identity = autoincrement and pk == [r["name"]] and (r["type"] or "").upper() == "INTEGER"
            columns.append(
                Column(
                    name=r["name"],
                    type=sqlite_type(r["type"] or ""),
                    nullable=not r["notnull"],
                    default=r["dflt_value"],
                    identity=identity,
                )
            )
        indexes = tuple(
            Index(name=i["name"], columns=tuple(i["column_names"]), unique=bool(i["unique"]))
            for i in inspector.get_indexes(name)
            if i.get("name") and all(c is not None for c in i["column_names"])
        )
        constraints: list[Constraint] = []
        constraints.extend(sqlite_unique_constraints(sql))
        for c in inspector.get_check_constraints(name):
            if c.get("name"):
                constraints.append(Constraint(name=_unescape(c["name"]), kind="check", expression=c["sqltext"]))
        constraints.extend(sqlite_all_foreign_keys(conn, name, sql))
        tables[name] = Table(
            name=name,
            columns=tuple(columns),
            primary_key=tuple(pk),
            indexes=indexes,
            constraints=tuple(constraints),
        )
    return canonical_schema(Schema(tables=tables))


# --------------------------------------------------------------------------- PostgreSQL (asyncpg, catalog)

# Every query reads the same tables (joined on the same filter rather than handed a list of oids, which
# PostgreSQL would scan once per catalogue row); column numbers are turned into names in Python.
_PG_TABLE_FILTER = """
  c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
  AND c.relname NOT LIKE 'schemalog\\_%'
"""

PG_TABLES = f"""
SELECT c.oid, n.nspname AS schema, c.relname AS name, td.description AS comment
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_description td ON td.objoid = c.oid AND td.classoid = 'pg_class'::regclass AND td.objsubid = 0
WHERE {_PG_TABLE_FILTER}
"""

PG_COLUMNS = f"""
SELECT a.attrelid AS oid, a.attnum AS num, a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type,
       a.attnotnull AS notnull, pg_get_expr(d.adbin, d.adrelid) AS default, a.attidentity::text AS identity,
       cd.description AS comment
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
LEFT JOIN pg_description cd
       ON cd.objoid = a.attrelid AND cd.classoid = 'pg_class'::regclass AND cd.objsubid = a.attnum
WHERE {_PG_TABLE_FILTER} AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attrelid, a.attnum
"""

PG_CONSTRAINTS = f"""
SELECT con.conrelid AS oid, con.conname AS name, con.contype::text AS kind, con.conkey AS columns,
       con.confrelid AS ref_oid, con.confkey AS ref_columns,
       con.confdeltype::text AS on_delete, con.confupdtype::text AS on_update,
       CASE WHEN con.contype = 'c' THEN pg_get_expr(con.conbin, con.conrelid) END AS expression
FROM pg_constraint con
JOIN pg_class c ON c.oid = con.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE {_PG_TABLE_FILTER} AND con.contype IN ('p', 'u', 'f', 'c')
"""

PG_INDEXES = f"""
SELECT i.indrelid AS oid, ic.relname AS name, i.indisunique AS unique, i.indkey::int2[] AS columns,
       i.indnkeyatts AS nkeys, i.indexprs IS NOT NULL OR i.indpred IS NOT NULL AS partial
FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_constraint own ON own.conindid = i.indexrelid AND own.contype IN ('p', 'u', 'x')
WHERE {_PG_TABLE_FILTER} AND own.oid IS NULL
"""

PG_FK_ACTIONS = {"a": None, "r": "restrict", "c": "cascade", "n": "set null", "d": "set default"}

PG_TYPES = {
    "smallint": "smallint",
    "integer": "integer",
    "bigint": "bigint",
    "boolean": "boolean",
    "real": "real",
    "double precision": "double",
    "text": "text",
    "date": "date",
    "time without time zone": "time",
    "timestamp without time zone": "timestamp",
    "timestamp with time zone": "timestamptz",
    "interval": "interval",
    "json": "json",
    "uuid": "uuid",
    "bytea": "bytes",
    "numeric": "numeric",
    "character varying": "varchar",
    "character": "char",
}
_PG_PARAMS = re.compile(r"^([a-z ]+?)\(([\d,]+)\)$")


@lru_cache(maxsize=1024)
def postgresql_type(text: str) -> ColumnType:
    if text in PG_TYPES:
        return ColumnType(name=PG_TYPES[text])
    match = _PG_PARAMS.match(text)
    if match and match.group(1) in ("numeric", "character varying", "character"):
        return ColumnType(name=PG_TYPES[match.group(1)], params=tuple(int(p) for p in match.group(2).split(",")))
    return ColumnType(name=text, dialect="postgresql")


def _pg_name(schema: str, name: str) -> str:
    return name if schema == "public" else f"{schema}.{name}"


async def introspect_postgresql(conn: Any) -> Schema:
    """The schema of a PostgreSQL database through four catalog queries (asyncpg connection)."""
    table_rows = await conn.fetch(PG_TABLES)
    names = {r["oid"]: _pg_name(r["schema"], r["name"]) for r in table_rows}
    oids = list(names)
    columns: dict[int, list[Column]] = {oid: [] for oid in oids}
    numbers: dict[int, dict[int, str]] = {oid: {} for oid in oids}

    def named(oid: int, nums: list[int] | None) -> tuple[str, ...]:
        by_number = numbers[oid]
        return tuple(by_number[n] for n in nums or ())

    for r in await conn.fetch(PG_COLUMNS):
        numbers[r["oid"]][r["num"]] = r["name"]
        default = r["default"]
        identity = r["identity"] in ("a", "d")
        if default is not None and default.startswith("nextval("):
            identity, default = True, None  # a serial column
        columns[r["oid"]].append(
            construct(
                Column,
                dict(
                    name=r["name"],
                    type=postgresql_type(r["type"]),
                    nullable=not r["notnull"],
                    default=default,
                    identity=identity,
                    comment=r["comment"],
                ),
            )
        )
    pks: dict[int, tuple[str, ...]] = {}
    constraints: dict[int, list[Constraint]] = {oid: [] for oid in oids}
    for r in await conn.fetch(PG_CONSTRAINTS):
        kind = r["kind"]
        if kind == "p":
            pks[r["oid"]] = named(r["oid"], r["columns"])
        elif kind == "u":
            constraints[r["oid"]].append(
                construct(
                    Constraint,
                    dict(
                        name=r["name"],
                        kind="unique",
                        columns=named(r["oid"], r["columns"]),
                        expression=None,
                        references=None,
                        on_delete=None,
                        on_update=None,
                    ),
                )
            )
        elif kind == "c":
            constraints[r["oid"]].append(
                construct(
                    Constraint,
                    dict(
                        name=r["name"],
                        kind="check",
                        columns=(),
                        expression=r["expression"],
                        references=None,
                        on_delete=None,
                        on_update=None,
                    ),
                )
            )
        elif r["ref_oid"] in names:
            constraints[r["oid"]].append(
                construct(
                    Constraint,
                    dict(
                        name=r["name"],
                        kind="foreign_key",
                        columns=named(r["oid"], r["columns"]),
                        expression=None,
                        references=construct(
                            Reference, dict(table=names[r["ref_oid"]], columns=named(r["ref_oid"], r["ref_columns"]))
                        ),
                        on_delete=PG_FK_ACTIONS.get(r["on_delete"]),
                        on_update=PG_FK_ACTIONS.get(r["on_update"]),
                    ),
                )
            )
    indexes: dict[int, list[Index]] = {oid: [] for oid in oids}
    for r in await conn.fetch(PG_INDEXES):
        if r["partial"] or not r["columns"] or 0 in r["columns"]:
            continue  # expression and partial indexes are not in the catalogue of events
        indexes[r["oid"]].append(
            construct(
                Index, dict(name=r["name"], columns=named(r["oid"], r["columns"][: r["nkeys"]]), unique=r["unique"])
            )
        )
    tables = {}
    for r in table_rows:
        oid = r["oid"]
        if not columns[oid]:
            continue
        tables[names[oid]] = construct(
            Table,
            dict(
                name=names[oid],
                columns=tuple(columns[oid]),
                primary_key=pks.get(oid, ()),
                indexes=tuple(indexes[oid]),
                constraints=tuple(constraints[oid]),
                comment=r["comment"],
            ),
        )
    return canonical_schema(construct(Schema, {"tables": tables}))


# --------------------------------------------------------------------------- MySQL / MariaDB (Inspector)

MYSQL_COLUMNS = """
SELECT TABLE_NAME, COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, COLUMN_DEFAULT, EXTRA, COLUMN_COMMENT
FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() ORDER BY TABLE_NAME, ORDINAL_POSITION
"""
MYSQL_TABLES = """
SELECT TABLE_NAME, TABLE_COMMENT FROM information_schema.TABLES
WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE'
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


def mysql_type(text: str) -> ColumnType:
    text = text.lower().strip()
    if text in MYSQL_TYPES:
        return ColumnType(name=MYSQL_TYPES[text])
    match = _MYSQL_PARAMS.match(text)
    if match and not match.group(3):
        base, params = match.group(1), tuple(int(p) for p in match.group(2).split(","))
        if base in ("smallint", "int", "bigint"):  # display widths mean nothing
            return ColumnType(name=MYSQL_TYPES[base])
        if base == "decimal":
            return ColumnType(name="numeric", params=params)
        if base in ("varchar", "char"):
            return ColumnType(name=base, params=params)
    return ColumnType(name=text, dialect="mysql")


_JSON_CHECK = re.compile(r"^json_valid\(`?([^`]+)`?\)$", re.IGNORECASE)


def introspect_mysql(conn: sa.Connection) -> Schema:
    inspector = sa.inspect(conn)
    comments = {r[0]: r[1] or None for r in conn.execute(sa.text(MYSQL_TABLES))}
    raw: dict[str, list[Any]] = {}
    for r in conn.execute(sa.text(MYSQL_COLUMNS)):
        raw.setdefault(r[0], []).append(r)
    tables: dict[str, Table] = {}
    for name in sorted(comments):
        if SKIP_TABLES.match(name) or name not in raw:
            continue
        checks = inspector.get_check_constraints(name)
        json_columns = set()
        constraints: list[Constraint] = []
        for c in checks:
            match = _JSON_CHECK.match((c.get("sqltext") or "").strip())
            if match and match.group(1) == c.get("name"):
                json_columns.add(match.group(1))  # MariaDB's JSON is LONGTEXT with this check
                continue
            if c.get("name"):
                constraints.append(Constraint(name=c["name"], kind="check", expression=c["sqltext"]))
        columns = []
        for r in raw[name]:
            default = r[4]
            if default is not None and default.upper() == "NULL":
                default = None
            ctype = ColumnType(name="json") if r[1] in json_columns else mysql_type(r[2])
            columns.append(
                Column(
                    name=r[1],
                    type=ctype,
                    nullable=r[3] == "YES",
                    default=default,
                    identity="auto_increment" in (r[5] or "").lower(),
                    comment=r[6] or None,
                )
            )
        fks = inspector.get_foreign_keys(name)
        fk_names = {fk["name"]: tuple(fk["constrained_columns"]) for fk in fks if fk.get("name")}
        indexes = []
        for i in inspector.get_indexes(name):
            cols = tuple(i["column_names"])
            if fk_names.get(i["name"]) == cols and not i["unique"]:
                continue  # the index MySQL makes for a foreign key
            indexes.append(Index(name=i["name"], columns=cols, unique=bool(i["unique"])))
        for fk in fks:
            options = fk.get("options") or {}
            constraints.append(
                Constraint(
                    name=fk["name"],
                    kind="foreign_key",
                    columns=tuple(fk["constrained_columns"]),
                    references=Reference(table=fk["referred_table"], columns=tuple(fk["referred_columns"])),
                    on_delete=_fk_action(options.get("ondelete")),
                    on_update=_fk_action(options.get("onupdate")),
                )
            )
        pk = inspector.get_pk_constraint(name).get("constrained_columns") or []
        tables[name] = Table(
            name=name,
            columns=tuple(columns),
            primary_key=tuple(pk),
            indexes=tuple(indexes),
            constraints=tuple(constraints),
            comment=comments.get(name),
        )
    return canonical_schema(Schema(tables=tables))
