"""The service's own events for who may do what: API tokens, approvals and approval policies.

They change no schema and live in streams of their own:

- ``TOKENS_STREAM``: ``token_created`` and ``token_revoked``. A token's secret is never in the log,
  only the SHA-256 hex digest of the whole token text (service/app/tokens.py makes and checks tokens).
- ``APPROVALS_STREAM``: ``approval_given`` (the approver is the recorded actor) and
  ``approvals_required`` (a stream's policy; ``count`` 0 removes it). They are kept apart from the
  approved schema stream so that approving never consumes one of its versions.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from events.model import Frozen

TOKENS_STREAM = "schemalog:tokens"
APPROVALS_STREAM = "schemalog:approvals"

ROLES = ("reader", "author", "deployer", "admin")
"""Each role includes every one before it."""

MAX_APPROVALS = 20

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_TOKEN_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def check_token_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(
            f"token name {name!r}: 1 to 63 letters, digits, '_', '.' or '-', starting with a letter or digit"
        )
    return name


def _token_id(value: str) -> str:
    if not isinstance(value, str) or not _TOKEN_ID.match(value):
        raise ValueError(f"token id {value!r}: 1 to 64 letters, digits, '_' or '-'")
    return value


def _sha256(value: str) -> str:
    if not isinstance(value, str) or not _SHA256.match(value):
        raise ValueError("a hash is 64 lowercase hex digits (SHA-256)")
    return value


def _schema_stream(name: str) -> str:
    from events.envelope import check_stream_name  # (envelope imports the catalogue, which imports this)

    check_stream_name(name)
    if name.startswith("schemalog:") or name.startswith("db:"):
        raise ValueError(f"stream {name!r} is the service's own, not a schema stream")
    return name


def _changeset_id(value: str) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= 200 or any(c.isspace() or c == "\0" for c in value):
        raise ValueError("a changeset id is 1 to 200 characters without spaces")
    return value


TokenName = Annotated[str, AfterValidator(check_token_name)]
TokenId = Annotated[str, AfterValidator(_token_id)]
Sha256Hex = Annotated[str, AfterValidator(_sha256)]
SchemaStreamName = Annotated[str, AfterValidator(_schema_stream)]
ChangesetId = Annotated[str, AfterValidator(_changeset_id)]
Role = Literal["reader", "author", "deployer", "admin"]


class TokenCreated(Frozen):
    """An API token was made: its name (the actor of what it does is ``token:NAME``), its role, the
    streams it is limited to (none: every stream), when it expires (none: never), and the SHA-256 hex
    digest of the token text. The secret itself is shown once and kept nowhere."""

    type: Literal["token_created"] = "token_created"
    token_id: TokenId
    name: TokenName
    role: Role
    streams: tuple[SchemaStreamName, ...] | None = Field(default=None, max_length=100)
    expires_at: datetime | None = None
    hash: Sha256Hex


class TokenRevoked(Frozen):
    """The token no longer authenticates anyone."""

    type: Literal["token_revoked"] = "token_revoked"
    token_id: TokenId


class ApprovalGiven(Frozen):
    """The recorded actor approves the changeset ``changeset_id`` of ``stream``, named by its hash (the
    chain hash of its last event, which covers everything before it)."""

    type: Literal["approval_given"] = "approval_given"
    stream: SchemaStreamName
    changeset_id: ChangesetId
    changeset_hash: Sha256Hex
    comment: str | None = Field(default=None, max_length=2000)


class ApprovalsRequired(Frozen):
    """From now on a changeset of ``stream`` is applied to a database only with ``count`` approvals by
    principals other than its author (0: no approval needed)."""

    type: Literal["approvals_required"] = "approvals_required"
    stream: SchemaStreamName
    count: Annotated[int, Field(ge=0, le=MAX_APPROVALS)]


AUTH_TYPES = (TokenCreated, TokenRevoked, ApprovalGiven, ApprovalsRequired)
