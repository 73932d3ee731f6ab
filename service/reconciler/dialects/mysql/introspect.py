"""MySQL/MariaDB: the live schema from information_schema (through SQLAlchemy's Inspector)."""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa

from events.model import (
    Column,
    ColumnType,
    Constraint,
    Index,
    Reference,
    Schema,
    Table,
)
from service.reconciler.introspect import SKIP_TABLES, live_native_type
from service.reconciler.introspect import fk_action as _fk_action
from service.reconciler.normalize import canonical_schema

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


_JSON_CHECK = re.compile(r"^json_valid\(`?([^`]+)`?\)$", re.IGNORECASE)


def _mysql_name(name: Any) -> Any:
    """A name as the Inspector parsed it from SHOW CREATE TABLE, where a backtick inside a name is
    doubled (the Inspector keeps it so): the name itself. (Column names and table comments are read
    from information_schema, exactly.)"""
    return name.replace("``", "`") if isinstance(name, str) else name


def _mysql_names(names: Any) -> tuple[str, ...]:
    return tuple(_mysql_name(n) for n in names)


def introspect_mysql(conn: sa.Connection) -> Schema:
    # The Inspector's SHOW CREATE TABLE doubles a '%' in a table name for the driver's interpolation; on a
    # connection left without it (no_parameters, as apply runs DDL) `%s` would be looked up as `%%s`.
    conn = conn.execution_options(no_parameters=False)
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
                constraints.append(Constraint(name=_mysql_name(c["name"]), kind="check", expression=c["sqltext"]))
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
            indexes.append(Index(name=_mysql_name(i["name"]), columns=_mysql_names(cols), unique=bool(i["unique"])))
        for fk in fks:
            options = fk.get("options") or {}
            constraints.append(
                Constraint(
                    name=_mysql_name(fk["name"]),
                    kind="foreign_key",
                    columns=_mysql_names(fk["constrained_columns"]),
                    references=Reference(
                        table=_mysql_name(fk["referred_table"]), columns=_mysql_names(fk["referred_columns"])
                    ),
                    on_delete=_fk_action(options.get("ondelete")),
                    on_update=_fk_action(options.get("onupdate")),
                )
            )
        pk = _mysql_names(inspector.get_pk_constraint(name).get("constrained_columns") or [])
        tables[name] = Table(
            name=name,
            columns=tuple(columns),
            primary_key=tuple(pk),
            indexes=tuple(indexes),
            constraints=tuple(constraints),
            comment=comments.get(name),
        )
    return canonical_schema(Schema(tables=tables))
