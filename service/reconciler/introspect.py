"""Live database -> the schema objects the projections produce.

Normalised per dialect so that a database built from state S introspects back
to the dialect's form of S (service.reconciler.dialects: Dialect.normalize).
SQLite and MySQL/MariaDB go through SQLAlchemy's Inspector; SQLite's declared
type text comes from ``PRAGMA table_xinfo`` (SQLite keeps it as written).
"""

from __future__ import annotations

import re
from typing import Any

from events.model import (
    ColumnType,
    construct,
    parse_type,
)

SKIP_TABLES = re.compile(r"^(sqlite_|schemalog_)")


def live_native_type(dialect: str, text: str) -> ColumnType:
    """A dialect-native type read from a live database: in the log's canonical form where the type
    grammar holds it (so that it compares equal to the log's own), else as read (then it equals nothing
    the log can hold, which is the truth)."""
    try:
        return parse_type(f"{dialect}:{text}")
    except ValueError:
        return construct(ColumnType, {"name": text, "params": (), "dialect": dialect})


def fk_action(value: Any) -> str | None:
    if not value:
        return None
    action = " ".join(str(value).lower().split())
    return None if action == "no action" else action
