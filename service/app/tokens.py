"""API tokens: make, revoke, list, and authenticate a token's text to a principal.

A token's text is ``slt_`` + 32 random base62 characters + ``_`` + a 6-character base62 CRC32 of
what comes before it, so that a typo is ``malformed`` without a store lookup. It is shown once, when
made; the log keeps only the SHA-256 hex digest of the text (events.auth.TokenCreated), in the stream
``schemalog:tokens``, with the token's name, role, streams and expiry. The principal's actor, for
everything it records, is ``token:NAME``.

The last use of each token is no event: it is kept, to within ``LAST_USE_RESOLUTION`` seconds, in a small
mutable table of the store's database, ``schemalog_token_use (token_id, last_used_at)``, made when first
needed.

Roles (``ROLES``), each including every one before it: reader (read everything in scope), author
(append, tag, revert), deployer (migrate databases, set targets), admin (tokens, fleet, policies).
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import time
import weakref
import zlib
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any

from events.auth import ROLES, TOKENS_STREAM, TokenCreated, TokenRevoked, check_token_name
from events.envelope import Changeset, format_time
from events.log import EventLog
from events.store.base import ConcurrencyError, EventStore, StoreError
from projections.auth import AuthView, TokenRecord

__all__ = [
    "ROLES",
    "AuthError",
    "Principal",
    "TokenError",
    "TokenInfo",
    "TokenNotFound",
    "auth_view",
    "authenticate",
    "create_token",
    "error_line",
    "list_tokens",
    "parse_expiry",
    "revoke_token",
]

PREFIX = "slt_"
BODY_LENGTH = 32
CHECKSUM_LENGTH = 6
TOKEN_LENGTH = len(PREFIX) + BODY_LENGTH + 1 + CHECKSUM_LENGTH
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_BASE62_SET = frozenset(_BASE62)

LAST_USE_RESOLUTION = 5.0
"""Seconds: a token's last use is written again only when the one recorded is older than this."""

MAX_EXPIRY = timedelta(days=3650)
REASONS = ("missing", "malformed", "unknown", "expired", "revoked")


class AuthError(Exception):
    """A token text that authenticates no one; ``reason`` is one of ``REASONS``."""

    def __init__(self, reason: str, message: str | None = None):
        super().__init__(message or f"token {reason}")
        self.reason = reason


class TokenError(ValueError):
    """A token request that cannot be done (a bad name, role or expiry; a name in use; already revoked)."""


class TokenNotFound(TokenError):
    """No token has that name or id."""


@dataclass(frozen=True)
class Principal:
    name: str
    """The token's name; the actor recorded for what it does is ``actor`` (``token:NAME``)."""
    role: str
    """One of ROLES."""
    streams: tuple[str, ...] | None
    """None: every stream; else only these (and the outcomes of the databases that follow them)."""
    token_id: str

    @property
    def actor(self) -> str:
        return f"token:{self.name}"

    def sees(self, stream: str) -> bool:
        """Whether ``stream`` is in scope: every stream for an unscoped principal; for a scoped one, its
        streams only (never the service's own ``schemalog:`` streams, nor a ``db:`` stream, whose
        database the principal cannot name: for an outcome, ask about the schema stream it names)."""
        return self.streams is None or stream in self.streams

    def allows(self, role: str, stream: str | None = None) -> bool:
        """Whether the principal holds ``role`` (or a higher one) and, if ``stream`` is given, sees it.
        ``stream`` None: an operation on no one stream (the caller shows only what the principal sees)."""
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
        if ROLES.index(self.role) < ROLES.index(role):
            return False
        return stream is None or self.sees(stream)


@dataclass(frozen=True)
class TokenInfo(TokenRecord):
    """A token as listings show it: the log's record plus its last use (kept outside the log). Its
    ``public()`` form never holds the secret nor the hash."""

    last_used_at: datetime | None = None

    def expired(self, now: datetime | None = None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or datetime.now(UTC))

    def public(self) -> dict[str, Any]:
        return {
            **super().public(),
            "last_used_at": format_time(self.last_used_at) if self.last_used_at else None,
            "state": "revoked" if self.revoked else "expired" if self.expired() else "active",
        }


def _info(record: TokenRecord, last_used_at: datetime | None = None) -> TokenInfo:
    return TokenInfo(**{f.name: getattr(record, f.name) for f in fields(record)}, last_used_at=last_used_at)


# --------------------------------------------------------------------------- the token text


def _base62(number: int, width: int) -> str:
    digits = []
    for _ in range(width):
        number, digit = divmod(number, 62)
        digits.append(_BASE62[digit])
    return "".join(reversed(digits))


def _checksum(head: str) -> str:
    return _base62(zlib.crc32(head.encode("ascii")), CHECKSUM_LENGTH)


def new_token_text() -> str:
    head = PREFIX + "".join(secrets.choice(_BASE62) for _ in range(BODY_LENGTH))
    return f"{head}_{_checksum(head)}"


def well_formed(text: str) -> bool:
    """The prefix, the length, the alphabet and the checksum: no store lookup."""
    if len(text) != TOKEN_LENGTH or not text.startswith(PREFIX) or text[-CHECKSUM_LENGTH - 1] != "_":
        return False
    head, checksum = text[: -CHECKSUM_LENGTH - 1], text[-CHECKSUM_LENGTH:]
    if not _BASE62_SET.issuperset(head[len(PREFIX) :]) or not _BASE62_SET.issuperset(checksum):
        return False
    return secrets.compare_digest(_checksum(head), checksum)


def token_hash(text: str) -> str:
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def parse_expiry(text: str) -> timedelta:
    """``90d``, ``12h``, ``30m``, ``45s`` or ``2w`` (a whole number and a unit): TokenError if not."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
    body, unit = text[:-1], text[-1:].lower()
    if unit not in units or not body.isdigit() or not body.isascii() or len(body) > 9:
        raise TokenError(f"expiry {text!r}: a whole number and a unit, s, m, h, d or w (such as 90d)")
    delta = timedelta(seconds=int(body) * units[unit])
    if not timedelta(0) < delta <= MAX_EXPIRY:
        raise TokenError(f"expiry {text!r}: more than 0 and at most {MAX_EXPIRY.days} days")
    return delta


# --------------------------------------------------------------------------- the fold, kept per store

_VIEWS: weakref.WeakKeyDictionary[Any, AuthView] = weakref.WeakKeyDictionary()


async def auth_view(store: EventStore, *, approvals: bool = True) -> AuthView:
    """The tokens and approvals folded from the log, brought up to date (only what is new is read;
    ``approvals`` False: the tokens only)."""
    from events.auth import APPROVALS_STREAM

    view = _VIEWS.get(store)
    if view is None:
        view = AuthView()
        try:
            _VIEWS[store] = view
        except TypeError:  # a store that cannot be weakly referenced: folded afresh each time
            pass
    streams = [(TOKENS_STREAM, view.tokens_version)]
    if approvals:
        streams.append((APPROVALS_STREAM, view.approvals_version))
    for stream, after in streams:
        for recorded in await store.read(stream, after_version=after):
            view.apply(recorded)
    return view


# --------------------------------------------------------------------------- use cases


async def create_token(
    store: EventStore,
    *,
    name: str,
    role: str,
    streams: tuple[str, ...] | None,
    expires_in: timedelta | None,
    actor: str,
) -> tuple[str, TokenInfo]:
    """A new token: (its text, shown once and kept nowhere; what the log now says of it)."""
    try:
        check_token_name(name)
    except ValueError as exc:
        raise TokenError(str(exc)) from None
    if role not in ROLES:
        raise TokenError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
    if expires_in is not None and not timedelta(0) < expires_in <= MAX_EXPIRY:
        raise TokenError(f"a token's expiry is more than 0 and at most {MAX_EXPIRY.days} days")
    if streams is not None:
        streams = tuple(dict.fromkeys(streams))
        if not streams:
            raise TokenError("a token scoped to streams needs at least one stream")
    for _attempt in range(5):
        view = await auth_view(store)
        text = new_token_text()
        expires_at = datetime.now(UTC) + expires_in if expires_in is not None else None
        try:
            event = TokenCreated(
                token_id=secrets.token_hex(8),
                name=name,
                role=role,  # (checked against ROLES above)
                streams=streams,
                expires_at=expires_at,
                hash=token_hash(text),
            )
            view.check_token(event)
        except ValueError as exc:
            raise TokenError(error_line(exc)) from None
        scope = "every stream" if streams is None else ", ".join(streams)
        try:
            await EventLog(store).append(
                Changeset(
                    stream=TOKENS_STREAM,
                    actor=actor,
                    message=f"token {name} created ({role}, {scope})",
                    expected_version=view.tokens_version,
                    events=(event,),
                )
            )
        except ConcurrencyError:
            continue  # another token was made meanwhile: look again (its name may be this one)
        view = await auth_view(store)
        return text, _info(view.tokens[event.token_id])
    raise TokenError("the tokens stream kept moving: try again")


async def revoke_token(store: EventStore, name_or_id: str, *, actor: str) -> TokenInfo:
    for _attempt in range(5):
        view = await auth_view(store)
        record = view.find_token(name_or_id)
        if record is None:
            if any(t.name == name_or_id for t in view.tokens.values()):
                raise TokenError(f"every token named {name_or_id!r} is already revoked")
            raise TokenNotFound(f"no token named {name_or_id!r} (nor with that id)")
        if record.revoked:
            raise TokenError(f"token {record.name} ({record.token_id}) is already revoked")
        try:
            await EventLog(store).append(
                Changeset(
                    stream=TOKENS_STREAM,
                    actor=actor,
                    message=f"token {record.name} revoked",
                    expected_version=view.tokens_version,
                    events=(TokenRevoked(token_id=record.token_id),),
                )
            )
        except ConcurrencyError:
            continue
        view = await auth_view(store)
        return _info(view.tokens[record.token_id])
    raise TokenError("the tokens stream kept moving: try again")


async def list_tokens(store: EventStore) -> list[TokenInfo]:
    """Every token made, revoked ones too, oldest first, with its last use."""
    view = await auth_view(store)
    used = await _uses(store).read()
    return [_info(r, used.get(r.token_id)) for r in sorted(view.tokens.values(), key=lambda r: r.created_at)]


async def authenticate(store: EventStore, token_text: str) -> Principal:
    """The principal a token's text stands for; AuthError (with its reason) otherwise. Records the use."""
    text = (token_text or "").strip()
    if not text:
        raise AuthError("missing", "no token given")
    if not text.isascii() or not well_formed(text):
        raise AuthError("malformed", "not a schemalog token (slt_..., with a checksum): mistyped or cut short")
    view = await auth_view(store, approvals=False)
    token_id = view.by_hash.get(token_hash(text))
    if token_id is None:
        raise AuthError("unknown", "no such token")
    record = view.tokens[token_id]
    if record.revoked:
        raise AuthError("revoked", f"token {record.name} was revoked")
    now = datetime.now(UTC)
    if record.expires_at is not None and record.expires_at <= now:
        raise AuthError("expired", f"token {record.name} expired at {format_time(record.expires_at)}")
    await _uses(store).touch(token_id, now)
    return Principal(name=record.name, role=record.role, streams=record.streams, token_id=record.token_id)


def error_line(exc: Exception) -> str:
    """An input error as one line (pydantic's first error: where, and what)."""
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        return f"{where}: {message}" if where else message
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


# --------------------------------------------------------------------------- last use (no event)

SQLITE_USE_SQL = (
    "CREATE TABLE IF NOT EXISTS schemalog_token_use (token_id TEXT PRIMARY KEY, last_used_at TEXT NOT NULL)"
)
SQLITE_TOUCH_SQL = (
    "INSERT INTO schemalog_token_use (token_id, last_used_at) VALUES (?, ?)"
    " ON CONFLICT (token_id) DO UPDATE SET last_used_at = excluded.last_used_at"
    " WHERE excluded.last_used_at > schemalog_token_use.last_used_at"
)
PG_USE_SQL = (
    "CREATE TABLE IF NOT EXISTS schemalog_token_use (token_id text PRIMARY KEY, last_used_at timestamptz NOT NULL)"
)
PG_TOUCH_SQL = (
    "INSERT INTO schemalog_token_use (token_id, last_used_at) VALUES ($1, $2)"
    " ON CONFLICT (token_id) DO UPDATE SET last_used_at = EXCLUDED.last_used_at"
    " WHERE EXCLUDED.last_used_at > schemalog_token_use.last_used_at"
)
_PG_SETUP_LOCK = 0x5C4E_7A01  # advisory lock key: CREATE TABLE IF NOT EXISTS run at once races on pg_type


class _Uses:
    """The ``schemalog_token_use`` table of one store, made when first needed."""

    def __init__(self, store: EventStore):
        self._store = store
        self._ready = False
        self._written: dict[str, float] = {}

    async def _setup(self) -> None:
        if self._ready:
            return
        from events.store.sqlite import SqliteStore

        store = self._store
        if isinstance(store, SqliteStore):
            await store._conn.execute(SQLITE_USE_SQL)
        else:
            async with _pg_pool(store).acquire() as conn, conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock($1)", _PG_SETUP_LOCK)
                await conn.execute(PG_USE_SQL)
        self._ready = True

    async def touch(self, token_id: str, now: datetime) -> None:
        tick = time.monotonic()
        if tick - self._written.get(token_id, -LAST_USE_RESOLUTION) < LAST_USE_RESOLUTION:
            return
        from events.store.sqlite import SqliteStore

        await self._setup()
        store = self._store
        if isinstance(store, SqliteStore):
            try:
                await store._conn.execute(SQLITE_TOUCH_SQL, (token_id, format_time(now)))
            except sqlite3.OperationalError as exc:  # the file busy past its timeout: a lost use, not an error
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                return
        else:
            await _pg_pool(store).execute(PG_TOUCH_SQL, token_id, now)
        self._written[token_id] = tick

    async def read(self) -> dict[str, datetime]:
        from events.envelope import parse_time
        from events.store.sqlite import SqliteStore

        await self._setup()
        store = self._store
        if isinstance(store, SqliteStore):
            async with store._conn.execute("SELECT token_id, last_used_at FROM schemalog_token_use") as cur:
                return {row[0]: parse_time(row[1]) for row in await cur.fetchall()}
        rows = await _pg_pool(store).fetch("SELECT token_id, last_used_at FROM schemalog_token_use")
        return {row["token_id"]: row["last_used_at"] for row in rows}


def _pg_pool(store: EventStore) -> Any:
    from events.store.postgres import PostgresStore

    if not isinstance(store, PostgresStore):
        raise StoreError(f"no token use table for the store {store.url}")
    return store.pool


_USES: weakref.WeakKeyDictionary[Any, _Uses] = weakref.WeakKeyDictionary()


def _uses(store: EventStore) -> _Uses:
    found = _USES.get(store)
    if found is None:
        found = _USES[store] = _Uses(store)
    return found
