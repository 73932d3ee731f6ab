"""The marker: a table in each target database saying which stream and version it is at.

Written in the same transaction as the DDL where the dialect allows (PostgreSQL,
SQLite). On MySQL/MariaDB, where DDL commits by itself, the marker also records
the plan in progress and how many of its statements are done, so that a run
killed half-way resumes where it stopped.

The marker also keeps the chain hash of the log's event at its version (the
genesis hash at 0): each database is a witness of the log it was migrated from,
and ``verify --databases`` finds a log rewritten under it. A marker table made
before that column existed is upgraded when a run opens it (``marker_upgrades``).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import is_
from typing import Any

import orjson

from events.model import (
    Column,
    Constraint,
    EnumType,
    Generated,
    IdentityOptions,
    Index,
    IndexElement,
    Reference,
    Schema,
    Table,
    domains_of,
    extensions_of,
    routines_of,
    triggers_of,
    views_of,
)
from projections.schema import (
    LATER_FIELDS,
    normalized,
    normalized_domains,
    normalized_enums,
    normalized_extensions,
    normalized_routines,
    normalized_triggers,
    normalized_views,
)

MARKER_TABLE = "schemalog_marker"

MARKER_DDL = f"""
CREATE TABLE IF NOT EXISTS {MARKER_TABLE} (
    stream         VARCHAR(200) NOT NULL PRIMARY KEY,
    version        BIGINT       NOT NULL,
    state_hash     VARCHAR(64)  NOT NULL,
    applied_at     VARCHAR(40)  NOT NULL,
    applied_by     VARCHAR(200) NOT NULL,
    target_version BIGINT,
    plan_hash      VARCHAR(64),
    steps_done     INTEGER      NOT NULL DEFAULT 0,
    event_hash     VARCHAR(64)
)
"""

ADDED_COLUMNS = (("event_hash", "VARCHAR(64)"),)
"""Columns added to the marker table after its first release: (name, type), added to an older table."""

MARKER_SELECT = f"SELECT * FROM {MARKER_TABLE}"
"""Every column, whichever the table has (an older table lacks the added ones): see ``marker_from_row``."""


@dataclass(frozen=True)
class Marker:
    stream: str
    version: int
    state_hash: str
    applied_at: str
    applied_by: str
    target_version: int | None = None
    plan_hash: str | None = None
    steps_done: int = 0
    event_hash: str | None = None
    """The chain hash of the log's event at ``version`` (genesis at 0); None in a marker written before
    markers kept it."""

    @property
    def in_progress(self) -> bool:
        return self.target_version is not None


def marker_from_row(row: Mapping[str, Any]) -> Marker:
    """A marker from a row of the marker table (an older table's row lacks the added columns)."""
    return Marker(**{name: row[name] for name in _FIELDS if name in row})


def marker_upgrades(columns: Iterable[str]) -> list[str]:
    """The ALTER TABLE statements that add what a marker table with these columns lacks (portable)."""
    have = {name.lower() for name in columns}
    return [f"ALTER TABLE {MARKER_TABLE} ADD COLUMN {name} {kind}" for name, kind in ADDED_COLUMNS if name not in have]


def state_hash(schema: Schema) -> str:
    """The digest of a state a marker keeps. Its form is that of the first markers (tables only, the
    fields of that time): a schema with enum types adds them beside the tables.

    The digest is that of ``json.dumps(data, sort_keys=True, separators=(",", ":"))`` over
    ``projections.schema.normalized`` (and ``normalized_enums``): :func:`reference_state_hash` computes it
    that way, and tests hold the two equal. This computes it faster (issue 14: a migrate of 5,000 tables
    spent 0.4 s here), with the same value: the tables are dumped straight from the objects (each distinct
    column object once: equal columns are often one object, events.decode), and orjson writes the text;
    where its text could differ from json's (anything escaped, or not ASCII), json writes it. The last
    schema's digest is kept: a run asks for the start state's twice (the drift check, then the marker).
    """
    global _last
    tables = schema.tables
    enums = schema.enums
    others = (domains_of(schema), views_of(schema), extensions_of(schema), routines_of(schema), triggers_of(schema))
    if _last is not None:
        last_tables, last_enums, last_others, digest = _last
        if (
            len(last_tables) == len(tables)
            and all(map(is_, last_tables.values(), tables.values()))
            and last_tables.keys() == tables.keys()
            and last_enums == enums
            and last_others == others
        ):
            return digest
    data: dict[str, Any] | None = _fast_normalized(tables)
    if data is None:
        data = normalized(schema)
    data = _with_types(data, schema)
    digest = hashlib.sha256(_canonical_json(data)).hexdigest()
    _last = (dict(tables), dict(enums), others, digest)
    return digest


def _with_types(tables: dict[str, Any], schema: Schema) -> dict[str, Any]:
    """The hashed form: the tables alone, or beside them the enum types and domains where there are any
    (a schema without them hashes as it did before they existed)."""
    if (
        not schema.enums
        and not domains_of(schema)
        and not views_of(schema)
        and not extensions_of(schema)
        and not routines_of(schema)
        and not triggers_of(schema)
    ):
        return tables
    data: dict[str, Any] = {"tables": tables}
    if schema.enums:
        data["enums"] = normalized_enums(schema)
    if domains_of(schema):
        data["domains"] = normalized_domains(schema)
    if views_of(schema):
        data["views"] = normalized_views(schema)
    if extensions_of(schema):
        data["extensions"] = normalized_extensions(schema)
    if routines_of(schema):
        data["routines"] = normalized_routines(schema)
    if triggers_of(schema):
        data["triggers"] = normalized_triggers(schema)
    return data


def reference_state_hash(schema: Schema) -> str:
    """:func:`state_hash` the plain way (what the first markers did): the reference its tests compare with."""
    data = _with_types(normalized(schema), schema)
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


_last: tuple[dict[str, Table], dict[str, EnumType], tuple[dict[str, Any], ...], str] | None = None
"""The tables (the very objects: immutable), enum types, domains and digest of the last schema hashed."""

_PLAIN_TEXT = re.compile(rb"[ -\[\]-~]*")
"""JSON text in which nothing was escaped (printable ASCII, no backslash): there orjson's text is json's."""


def _canonical_json(data: Any) -> bytes:
    """``json.dumps(data, sort_keys=True, separators=(",", ":"))`` as UTF-8."""
    try:
        text = orjson.dumps(data, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # an integer past 64 bits, say
        text = b""
    else:
        if _PLAIN_TEXT.fullmatch(text):
            return text
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode("utf-8")


def _later(kind: str) -> tuple[tuple[str, Any], ...]:
    return tuple(LATER_FIELDS[kind].items())


_TABLE_LATER, _COLUMN_LATER, _INDEX_LATER, _CONSTRAINT_LATER = (
    _later(k) for k in ("table", "column", "index", "constraint")
)


def _without(data: dict[str, Any], later: tuple[tuple[str, Any], ...]) -> dict[str, Any]:
    for key, default in later:
        if data[key] == default:
            del data[key]
    return data


def _fast_normalized(tables: Mapping[str, Table]) -> dict[str, Any] | None:
    """``normalized`` of these tables, dumped from the objects' own fields (the public JSON form: pydantic's
    ``model_dump(mode="json")`` of these models is their fields, the type as its text, tuples as lists);
    None where an object is not exactly of its schema class (then ``normalized`` does it)."""
    columns: dict[int, dict[str, Any]] = {}  # id -> the dump of that column object (kept alive by ``tables``)
    out: dict[str, Any] = {}
    for name in sorted(tables):
        table = tables[name]
        if type(table) is not Table:
            return None
        data = table.__dict__.copy()
        dumped = []
        for column in data["columns"]:
            found = columns.get(id(column))
            if found is None:
                found = _column(column)
                if found is None:
                    return None
                columns[id(column)] = found
            dumped.append(found)
        dumped.sort(key=_by_name)
        data["columns"] = dumped
        data["primary_key"] = list(data["primary_key"])
        of = data.get("partition_of")
        if of is not None:  # a partition (issue 19): its parent and bound, as pydantic dumps them
            data["partition_of"] = {"parent": of.parent, "bound": of.bound}
        indexes = [_index(i) for i in data["indexes"]]
        constraints = [_constraint(c) for c in data["constraints"]]
        if None in indexes or None in constraints:
            return None
        data["indexes"] = sorted(indexes, key=_by_name)
        data["constraints"] = sorted(constraints, key=_by_name)
        out[name] = _without(data, _TABLE_LATER)
    return out


def _by_name(data: dict[str, Any] | None) -> Any:
    assert data is not None
    return data["name"]


def _column(column: Column) -> dict[str, Any] | None:
    if type(column) is not Column:
        return None
    data = column.__dict__.copy()
    data["type"] = str(data["type"])
    generated, options = data["generated"], data["identity_options"]
    if generated is not None:
        if type(generated) is not Generated:
            return None
        data["generated"] = generated.__dict__.copy()
    if options is not None:
        if type(options) is not IdentityOptions:
            return None
        data["identity_options"] = options.__dict__.copy()
    return _without(data, _COLUMN_LATER)


def _index(index: Index) -> dict[str, Any] | None:
    if type(index) is not Index:
        return None
    data = index.__dict__.copy()
    data["columns"] = list(data["columns"])
    data["include"] = list(data["include"])
    elements = []
    for element in data["elements"]:
        if type(element) is not IndexElement:
            return None
        elements.append(element.__dict__.copy())
    data["elements"] = elements
    return _without(data, _INDEX_LATER)


def _constraint(constraint: Constraint) -> dict[str, Any] | None:
    if type(constraint) is not Constraint:
        return None
    data = constraint.__dict__.copy()
    data["columns"] = list(data["columns"])
    ref = data["references"]
    if ref is not None:
        if type(ref) is not Reference:
            return None
        data["references"] = {"table": ref.table, "columns": list(ref.columns)}
    return _without(data, _CONSTRAINT_LATER)


def now_text() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def upsert_sql(paramstyle: str) -> tuple[str, str]:
    """(delete, insert) statements: a marker is replaced whole (portable across dialects)."""
    numeric = ["$" + str(i) for i in range(1, len(_FIELDS) + 1)]
    marks = {"numeric": numeric, "named": [":" + n for n in _FIELDS]}[paramstyle]
    delete = f"DELETE FROM {MARKER_TABLE} WHERE stream = {marks[0]}"
    insert = f"INSERT INTO {MARKER_TABLE} ({', '.join(_FIELDS)}) VALUES ({', '.join(marks)})"
    return delete, insert


_FIELDS = (
    "stream",
    "version",
    "state_hash",
    "applied_at",
    "applied_by",
    "target_version",
    "plan_hash",
    "steps_done",
    "event_hash",
)


def marker_params(marker: Marker) -> dict[str, object]:
    return {f: getattr(marker, f) for f in _FIELDS}


def mysql_upsert_sql() -> str:
    """One statement that replaces a marker: on MySQL, where each statement commits by itself, a marker must
    never be missing between a delete and an insert (a run killed there would leave none)."""
    names = ", ".join(_FIELDS)
    values = ", ".join(":" + n for n in _FIELDS)
    updates = ", ".join(f"{n} = VALUES({n})" for n in _FIELDS if n != "stream")
    return f"INSERT INTO {MARKER_TABLE} ({names}) VALUES ({values}) ON DUPLICATE KEY UPDATE {updates}"
