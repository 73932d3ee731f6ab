"""The append-only log and its backends (SQLite embedded, PostgreSQL)."""

from __future__ import annotations

from events.store.base import (
    AppendResult,
    ChangesetIdConflict,
    ConcurrencyError,
    EventStore,
    StoreError,
    StreamInfo,
    VerifyReport,
    verify_store,
)

__all__ = [
    "AppendResult",
    "ChangesetIdConflict",
    "ConcurrencyError",
    "EventStore",
    "StoreError",
    "StreamInfo",
    "VerifyReport",
    "open_store",
    "verify_store",
]


async def open_store(url: str) -> EventStore:
    """Open the store a URL names: ``sqlite:///file.db`` or ``postgresql://user@host/db``."""
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    base = scheme.split("+", 1)[0]
    if base == "sqlite":
        from events.store.sqlite import SqliteStore

        return await SqliteStore.open(url)
    if base in ("postgresql", "postgres"):
        from events.store.postgres import PostgresStore

        return await PostgresStore.open(url)
    raise StoreError(f"unsupported store URL {url!r}: use sqlite:///path/file.db or postgresql://user@host/db")
