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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from events.model import Schema
from projections.schema import normalized, normalized_enums

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
    fields of that time): a schema with enum types adds them beside the tables."""
    data: dict[str, Any] = normalized(schema)
    if schema.enums:
        data = {"tables": data, "enums": normalized_enums(schema)}
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


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
