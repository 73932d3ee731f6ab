"""The append-only log and its backends (SQLite embedded, PostgreSQL)."""

from __future__ import annotations

from events.store.base import (
    AppendResult,
    ChangesetIdConflict,
    ConcurrencyError,
    EventStore,
    Fence,
    LeaseLost,
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
    "Fence",
    "LeaseLost",
    "StoreError",
    "StreamInfo",
    "VerifyReport",
    "open_store",
    "verify_store",
]


async def open_store(url: str, *, create: bool = True) -> EventStore:
    """Open the store a URL names: ``sqlite:///file.db`` or ``postgresql://user@host/db``.

    ``create=False`` (every command but ``init``): the URL must name a schemalog store; no file, an
    empty file or a database without the schemalog tables is a StoreError. Either way a file that is
    not SQLite, or a store missing some of its tables, is a StoreError naming it, and nothing is left
    open.
    """
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    base = scheme.split("+", 1)[0]
    if base == "sqlite":
        from events.store.sqlite import SqliteStore

        return await SqliteStore.open(url, create=create)
    if base in ("postgresql", "postgres"):
        from events.store.postgres import PostgresStore

        return await PostgresStore.open(url, create=create)
    raise StoreError(f"unsupported store URL {url!r}: use sqlite:///path/file.db or postgresql://user@host/db")
