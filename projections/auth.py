"""Tokens and approvals as the log says they are: a plain fold of two of the service's own streams.

- ``schemalog:tokens`` (events.auth.TOKENS_STREAM): each token by id, by its hash, and the live
  token of each name (a revoked token's name may be given to a new one); revocations.
- ``schemalog:approvals`` (events.auth.APPROVALS_STREAM): the approvals of each (stream, changeset id),
  one per approver (the recorded actor), and each stream's required count.

Fed event by event in version order of each stream (:meth:`AuthView.apply`); an event at or below a
stream's version already folded is skipped, so that feeding the same events twice changes nothing.
The rules for new events (a name in use, a second approval by the same principal) are checked by
:meth:`AuthView.check_token` and service/app/approvals.py before they are written.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from events.auth import APPROVALS_STREAM, TOKENS_STREAM, ApprovalGiven, ApprovalsRequired, TokenCreated, TokenRevoked
from events.envelope import RecordedEvent, format_time


@dataclass(frozen=True)
class TokenRecord:
    token_id: str
    name: str
    role: str
    streams: tuple[str, ...] | None
    expires_at: datetime | None
    hash: str
    created_by: str
    created_at: datetime
    revoked_by: str | None = None
    revoked_at: datetime | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def public(self) -> dict[str, Any]:
        """What a listing shows: never the hash."""
        return {
            "token_id": self.token_id,
            "name": self.name,
            "role": self.role,
            "streams": list(self.streams) if self.streams is not None else None,
            "expires_at": format_time(self.expires_at) if self.expires_at else None,
            "created_by": self.created_by,
            "created_at": format_time(self.created_at),
            "revoked_by": self.revoked_by,
            "revoked_at": format_time(self.revoked_at) if self.revoked_at else None,
        }


@dataclass(frozen=True)
class Approval:
    approver: str
    changeset_hash: str
    comment: str | None
    at: datetime
    version: int
    """The approvals stream's version that holds it."""


@dataclass
class AuthView:
    tokens: dict[str, TokenRecord] = field(default_factory=dict)
    """Every token ever made, by id."""
    by_hash: dict[str, str] = field(default_factory=dict)
    """Token hash -> token id."""
    live_names: dict[str, str] = field(default_factory=dict)
    """Name -> id of the token of that name not revoked."""
    approvals: dict[tuple[str, str], dict[str, Approval]] = field(default_factory=dict)
    """(stream, changeset id) -> approver -> approval."""
    required: dict[str, int] = field(default_factory=dict)
    """Stream -> approvals each of its changesets needs (streams needing none are left out)."""
    tokens_version: int = 0
    approvals_version: int = 0

    def apply(self, recorded: RecordedEvent) -> None:
        if recorded.stream == TOKENS_STREAM:
            if recorded.version > self.tokens_version:
                self.tokens_version = recorded.version
                self._token(recorded)
        elif recorded.stream == APPROVALS_STREAM and recorded.version > self.approvals_version:
            self.approvals_version = recorded.version
            self._approval(recorded)

    def _token(self, recorded: RecordedEvent) -> None:
        event = recorded.event
        if isinstance(event, TokenCreated) and event.token_id not in self.tokens:
            self.tokens[event.token_id] = TokenRecord(
                token_id=event.token_id,
                name=event.name,
                role=event.role,
                streams=event.streams,
                expires_at=event.expires_at,
                hash=event.hash,
                created_by=recorded.actor,
                created_at=recorded.recorded_at,
            )
            self.by_hash[event.hash] = event.token_id
            self.live_names[event.name] = event.token_id
        elif isinstance(event, TokenRevoked) and event.token_id in self.tokens:
            token = self.tokens[event.token_id]
            if token.revoked:
                return
            self.tokens[event.token_id] = replace(token, revoked_by=recorded.actor, revoked_at=recorded.recorded_at)
            if self.live_names.get(token.name) == token.token_id:
                del self.live_names[token.name]

    def _approval(self, recorded: RecordedEvent) -> None:
        event = recorded.event
        if isinstance(event, ApprovalGiven):
            given = self.approvals.setdefault((event.stream, event.changeset_id), {})
            given.setdefault(
                recorded.actor,
                Approval(recorded.actor, event.changeset_hash, event.comment, recorded.recorded_at, recorded.version),
            )
        elif isinstance(event, ApprovalsRequired):
            if event.count:
                self.required[event.stream] = event.count
            else:
                self.required.pop(event.stream, None)

    # ------------------------------------------------------------------ reading

    def find_token(self, name_or_id: str) -> TokenRecord | None:
        """The token of that id, else the live token of that name."""
        found = self.tokens.get(name_or_id)
        if found is not None:
            return found
        token_id = self.live_names.get(name_or_id)
        return self.tokens[token_id] if token_id is not None else None

    def approvers(self, stream: str, changeset_id: str, changeset_hash: str, *, author: str) -> list[str]:
        """Who approved that changeset as it is (its hash) and is not its author, in approval order."""
        given = self.approvals.get((stream, changeset_id), {})
        found = [a for a in given.values() if a.changeset_hash == changeset_hash and a.approver != author]
        return [a.approver for a in sorted(found, key=lambda a: a.version)]

    def check_token(self, event: TokenCreated) -> None:
        """ValueError unless the new token fits: its id and hash new, its name not held by a live token."""
        if event.token_id in self.tokens or event.hash in self.by_hash:
            raise ValueError(f"token id {event.token_id!r} is already used")
        if event.name in self.live_names:
            raise ValueError(f"a token named {event.name!r} exists: revoke it first, or choose another name")
