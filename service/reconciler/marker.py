"""The marker: a table in each target database saying which stream and version it is at.

Written in the same transaction as the DDL where the dialect allows (PostgreSQL,
SQLite). On MySQL/MariaDB, where DDL commits by itself, the marker also records
the plan in progress and how many of its statements are done, so that a run
killed half-way resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime

from events.model import Schema
from projections.schema import normalized

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
    steps_done     INTEGER      NOT NULL DEFAULT 0
)
"""

MARKER_SELECT = (
    f"SELECT stream, version, state_hash, applied_at, applied_by, target_version, plan_hash, steps_done"
    f" FROM {MARKER_TABLE}"
)


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

    @property
    def in_progress(self) -> bool:
        return self.target_version is not None


def state_hash(schema: Schema) -> str:
    text = json.dumps(normalized(schema), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def now_text() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def upsert_sql(paramstyle: str) -> tuple[str, str]:
    """(delete, insert) statements: a marker is replaced whole (portable across dialects)."""
    marks = {"numeric": ["$" + str(i) for i in range(1, 9)], "named": [":" + n for n in _FIELDS]}[paramstyle]
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
