"""The fleet's events: which databases the daemon keeps in line, to what, and how rollouts went.

They live in one stream of their own (``FLEET_STREAM``), change no schema, and are written by
``schemalog db add|set|retire``, ``schemalog rollout resume`` and the daemon itself (a halted rollout).
A database's URL never carries a secret: a password is written as ``${ENV_VAR}`` (read from the
environment of the process that connects) or given by ``password_file=PATH`` in the query string,
and a URL with a literal password is refused before anything is stored.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field

from events.model import Frozen, Int64

FLEET_STREAM = "schemalog:fleet"
"""The stream of the fleet's events (the ``schemalog:`` prefix is the service's own)."""

SERVICE_STREAM_PREFIXES = ("schemalog:", "db:")
"""Streams the service writes itself (fleet, tokens, approvals; each database's outcomes): no changeset
goes there, and no database follows one."""

DRIFT_POLICIES = ("report", "adopt")
MAX_WAVE = 1000

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_PLACEHOLDER = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*\}$")
_POINT = re.compile(r"^(head|[vV]?[0-9]{1,18}|[A-Za-z_][A-Za-z0-9_.-]{0,62})$")
_SCHEMES = ("postgresql", "postgres", "mysql", "mariadb", "sqlite")


def check_database_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(
            f"database name {name!r}: 1 to 63 letters, digits, '_', '.' or '-', starting with a letter or digit"
        )
    return name


def check_database_url(url: str) -> str:
    """A URL fit for the log: a supported scheme, and no literal password (``${VAR}`` or password_file)."""
    if not isinstance(url, str) or not url or len(url) > 2000 or any(c.isspace() or c == "\0" for c in url):
        raise ValueError("database URL must be 1 to 2000 characters without spaces")
    parts = urlsplit(url)
    scheme = parts.scheme.split("+", 1)[0].lower()
    if scheme not in _SCHEMES:
        raise ValueError(f"unsupported database URL scheme {parts.scheme!r}: use postgresql://, mysql:// or sqlite:///")
    if scheme != "sqlite" and not parts.hostname:
        raise ValueError("database URL names no host")
    password = _password_of(parts.netloc)
    if password is not None and not _PLACEHOLDER.match(password):
        raise ValueError(
            "database URL holds a password: the log keeps no secret; write it as ${ENV_VAR} or add ?password_file=PATH"
        )
    return url


def _password_of(netloc: str) -> str | None:
    userinfo, at, _host = netloc.rpartition("@")
    if not at or ":" not in userinfo:
        return None
    return userinfo.split(":", 1)[1]


def check_point_text(point: str) -> str:
    if not isinstance(point, str) or not _POINT.match(point):
        raise ValueError(f"target {point!r}: give head, a version (12 or v12) or a tag name")
    return point


def _stream(name: str) -> str:
    from events.envelope import check_stream_name  # (envelope imports the catalogue, which imports this)

    check_stream_name(name)
    if name.startswith(SERVICE_STREAM_PREFIXES):
        raise ValueError(f"stream {name!r} is the service's own; a database follows a schema stream")
    return name


DatabaseName = Annotated[str, AfterValidator(check_database_name)]
DatabaseUrl = Annotated[str, AfterValidator(check_database_url)]
PointText = Annotated[str, AfterValidator(check_point_text)]
SchemaStream = Annotated[str, AfterValidator(_stream)]
DriftPolicy = Literal["report", "adopt"]
Wave = Annotated[int, Field(ge=0, le=MAX_WAVE)]
DriftInterval = Annotated[float, Field(ge=1, le=86400)]
ApprovalCount = Annotated[int, Field(ge=0, le=20)]
"""Approvals each changeset needs before it is applied to the database (events.auth; 0: none)."""


class DatabaseRegistered(Frozen):
    """A database joins the fleet: the daemon brings it to ``target`` of ``stream``, wave by wave."""

    type: Literal["database_registered"] = "database_registered"
    name: DatabaseName
    url: DatabaseUrl
    stream: SchemaStream
    target: PointText = "head"
    wave: Wave = 0
    allow_destructive: bool = False
    drift: DriftPolicy = "report"
    drift_interval: DriftInterval = 300.0
    approvals: ApprovalCount = 0


class DatabaseChanged(Frozen):
    """A registered database's settings changed: each field given is the new value, the rest stay."""

    type: Literal["database_changed"] = "database_changed"
    name: DatabaseName
    url: DatabaseUrl | None = None
    target: PointText | None = None
    wave: Wave | None = None
    allow_destructive: bool | None = None
    drift: DriftPolicy | None = None
    drift_interval: DriftInterval | None = None
    approvals: ApprovalCount | None = None

    def changes(self) -> dict[str, object]:
        return {k: v for k, v in self.model_dump(exclude={"type", "name"}).items() if v is not None}


class DatabaseRetired(Frozen):
    """The database leaves the fleet: the daemon stops touching it (the database itself is left as it is)."""

    type: Literal["database_retired"] = "database_retired"
    name: DatabaseName


class RolloutHalted(Frozen):
    """A database of ``wave`` failed to reach ``to_version`` of ``stream``: later waves wait."""

    type: Literal["rollout_halted"] = "rollout_halted"
    stream: SchemaStream
    to_version: Int64
    wave: Wave
    database: DatabaseName
    reason: str = Field(max_length=2000)


class RolloutResumed(Frozen):
    """Someone let the halted rollout of ``stream`` to ``to_version`` go on to the later waves."""

    type: Literal["rollout_resumed"] = "rollout_resumed"
    stream: SchemaStream
    to_version: Int64


FLEET_TYPES = (DatabaseRegistered, DatabaseChanged, DatabaseRetired, RolloutHalted, RolloutResumed)
