"""Writing events into a store behind append's back: raw dicts, a valid hash chain, no validation at all.

What someone who can write to the store's tables could do without schemalog's help: each event is
stored as given (its canonical JSON text), chained to the stream's head with the same hash the
store's own append computes, its changeset recorded and the stream's head moved, in one transaction
and through plain INSERT and UPDATE (which the store's guards allow: appending is what they are for).
Nothing checks the events, so tests can put anything the reading side must survive or refuse:

    versions = await forge(store_url, "app", [{"type": "column_added", ...}], actor="mallory")
"""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg

from events.envelope import GENESIS_HASH, canonical_json, chain_hash, format_time, parse_time
from events.store.postgres import _POSITION_LOCK, normalise_url
from events.store.sqlite import path_from_url


async def forge(
    store_url: str,
    stream: str,
    events: list[dict[str, Any]],
    *,
    actor: str = "forger",
    message: str = "forged",
    changeset_id: str | None = None,
) -> list[int]:
    """Append ``events`` (public dicts, as stored) to ``stream`` of the store at ``store_url`` (SQLite or
    PostgreSQL, already initialised), unvalidated; return the versions they were given."""
    changeset_id = changeset_id or str(uuid.uuid4())
    if store_url.startswith("sqlite"):
        return await asyncio.to_thread(
            _forge_sqlite, path_from_url(store_url), stream, events, actor, message, changeset_id
        )
    return await _forge_postgres(store_url, stream, events, actor, message, changeset_id)


def _chain(
    stream: str,
    head: int,
    prev_hash: str,
    events: list[dict[str, Any]],
    actor: str,
    message: str,
    changeset_id: str,
    stamp: str,
) -> list[tuple[int, str, str, str, str]]:
    """(version, type, canonical text, prev_hash, hash) for each event, chained from the head."""
    out = []
    for offset, event in enumerate(events, start=1):
        version = head + offset
        digest = chain_hash(
            stream=stream,
            version=version,
            changeset_id=changeset_id,
            actor=actor,
            message=message,
            recorded_at=stamp,
            event=event,
            prev_hash=prev_hash,
        )
        out.append((version, str(event.get("type", "")), canonical_json(event), prev_hash, digest))
        prev_hash = digest
    return out


def _moment(last: datetime | None) -> datetime:
    """Now, or the head's time if that is later (a stream's times never go back)."""
    now = datetime.now(UTC)
    return last if last is not None and last > now else now


def _forge_sqlite(
    path: str, stream: str, events: list[dict[str, Any]], actor: str, message: str, changeset_id: str
) -> list[int]:
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    try:
        conn.execute("BEGIN IMMEDIATE")
        row = conn.execute(
            "SELECT version, hash, recorded_at FROM schemalog_streams WHERE stream = ?", (stream,)
        ).fetchone()
        head, prev_hash, last = (
            (row[0], row[1], parse_time(row[2]) if row[2] else None) if row else (0, GENESIS_HASH, None)
        )
        stamp = format_time(_moment(last))
        chained = _chain(stream, head, prev_hash, events, actor, message, changeset_id, stamp)
        conn.executemany(
            "INSERT INTO schemalog_events (stream, version, changeset_id, actor, message, recorded_at, type, data,"
            " prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(stream, v, changeset_id, actor, message, stamp, t, d, p, h) for v, t, d, p, h in chained],
        )
        conn.execute(
            "INSERT INTO schemalog_changesets (changeset_id, stream, first_version, last_version) VALUES (?, ?, ?, ?)",
            (changeset_id, stream, head + 1, chained[-1][0]),
        )
        if row is None:
            conn.execute(
                "INSERT INTO schemalog_streams (stream, version, hash, recorded_at) VALUES (?, ?, ?, ?)",
                (stream, chained[-1][0], chained[-1][4], stamp),
            )
        else:
            conn.execute(
                "UPDATE schemalog_streams SET version = ?, hash = ?, recorded_at = ? WHERE stream = ?",
                (chained[-1][0], chained[-1][4], stamp, stream),
            )
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    finally:
        conn.close()
    return [c[0] for c in chained]


async def _forge_postgres(
    url: str, stream: str, events: list[dict[str, Any]], actor: str, message: str, changeset_id: str
) -> list[int]:
    conn = await asyncpg.connect(normalise_url(url))
    try:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _POSITION_LOCK)  # the order of positions
            row = await conn.fetchrow(
                "SELECT version, hash, recorded_at FROM schemalog_streams WHERE stream = $1 FOR UPDATE", stream
            )
            head, prev_hash, last = (
                (row["version"], row["hash"], row["recorded_at"]) if row else (0, GENESIS_HASH, None)
            )
            moment = _moment(last)
            # the stored time is PostgreSQL's microseconds: hash the text it gives back
            stamp = format_time(moment)
            chained = _chain(stream, head, prev_hash, events, actor, message, changeset_id, stamp)
            await conn.executemany(
                "INSERT INTO schemalog_events (stream, version, changeset_id, actor, message, recorded_at, type, data,"
                " prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10)",
                [(stream, v, changeset_id, actor, message, moment, t, d, p, h) for v, t, d, p, h in chained],
            )
            await conn.execute(
                "INSERT INTO schemalog_changesets (changeset_id, stream, first_version, last_version)"
                " VALUES ($1, $2, $3, $4)",
                changeset_id,
                stream,
                head + 1,
                chained[-1][0],
            )
            if row is None:
                await conn.execute(
                    "INSERT INTO schemalog_streams (stream, version, hash, recorded_at) VALUES ($1, $2, $3, $4)",
                    stream,
                    chained[-1][0],
                    chained[-1][4],
                    moment,
                )
            else:
                await conn.execute(
                    "UPDATE schemalog_streams SET version = $1, hash = $2, recorded_at = $3 WHERE stream = $4",
                    chained[-1][0],
                    chained[-1][4],
                    moment,
                    stream,
                )
    finally:
        await conn.close()
    return [c[0] for c in chained]
