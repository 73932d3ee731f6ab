"""The recorded event: an event plus where, when, by whom and why, in a hash chain.

Each stream is its own SHA-256 chain: an event's hash covers its envelope fields,
its public form and the previous event's hash, all in one canonical JSON text
(keys sorted, no spaces, UTF-8). Editing any stored field, removing or
reordering events breaks the chain, which ``verify`` walks.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import Field, field_validator, model_validator

from events.catalog import EVENT_TYPES, Event, to_dict
from events.model import INT64_MAX, MAX_NESTING, Frozen, check_plain

GENESIS_HASH = "0" * 64
DEFAULT_STREAM = "default"
MAX_STREAM_NAME = 200


def canonical_json(data: Any) -> str:
    """One text per value: sorted keys, no whitespace, non-ASCII kept as is.

    orjson writes exactly what ``json.dumps(sort_keys=True, separators=(",", ":"),
    ensure_ascii=False)`` writes for the values the log holds (tests/test_log_properties.py
    checks it on random text), several times faster; what it refuses (a number past 64
    bits, a key that is not a string) goes through ``json``, the definition.
    """
    try:
        return orjson.dumps(data, option=orjson.OPT_SORT_KEYS).decode()
    except (TypeError, orjson.JSONEncodeError):
        return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def format_time(moment: datetime) -> str:
    """Times in the chain: UTC, microseconds, 'Z' (``2026-11-24T10:00:00.000000Z``)."""
    if moment.tzinfo is None:
        raise ValueError("recorded times must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def chain_hash(
    *,
    stream: str,
    version: int,
    changeset_id: str,
    actor: str,
    message: str,
    recorded_at: str,
    event: dict[str, Any],
    prev_hash: str,
) -> str:
    """The hash of one link of a stream's chain, from stored (textual) values."""
    body = canonical_json(
        {
            "stream": stream,
            "version": version,
            "changeset_id": changeset_id,
            "actor": actor,
            "message": message,
            "recorded_at": recorded_at,
            "event": event,
            "prev_hash": prev_hash,
        }
    )
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def check_stream_name(name: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ValueError("stream name is empty")
    if len(name) > MAX_STREAM_NAME or "\x00" in name or any(c.isspace() for c in name):
        raise ValueError(f"stream name {name!r} must be at most {MAX_STREAM_NAME} characters, no spaces or NUL")
    return name


_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_JSON_BRACKET = re.compile(r"[\[\]{}]")


def check_json_nesting(text: str, limit: int = MAX_NESTING) -> None:
    """ValueError if JSON text nests deeper than ``limit``: checked before it is parsed, since the
    parser recurses (and a deep enough text exhausts the stack)."""
    depth = 0
    for match in _JSON_BRACKET.finditer(_JSON_STRING.sub('""', text)):
        if match.group() in "[{":
            depth += 1
            if depth > limit:
                raise ValueError(f"JSON nested deeper than {limit} levels")
        else:
            depth -= 1


def new_changeset_id() -> str:
    return str(uuid.uuid4())


class Changeset(Frozen):
    """A command: events proposed together, appended all or none."""

    stream: str = DEFAULT_STREAM
    actor: str | None = None
    message: str = ""
    expected_version: int | None = Field(default=None, ge=0, le=INT64_MAX)
    changeset_id: str = Field(default_factory=new_changeset_id, min_length=1, max_length=200)
    events: tuple[Event, ...] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _plain(cls, data: Any) -> Any:
        # What no stored event can hold (deep nesting, numbers past 64 bits, lone surrogates), refused
        # before the fields are looked at: pydantic's own errors on such input are no better.
        check_plain(data)
        return data

    @field_validator("stream")
    @classmethod
    def _stream(cls, value: str) -> str:
        return check_stream_name(value)

    @field_validator("events", mode="before")
    @classmethod
    def _events(cls, value: Any) -> Any:
        # Name unknown event types ourselves, before pydantic's union error.
        if isinstance(value, (list, tuple)):
            for index, item in enumerate(value):
                if isinstance(item, dict):
                    kind = item.get("type")
                    if not isinstance(kind, str) or kind not in EVENT_TYPES:
                        what = "has no 'type'" if kind is None else f"has unknown type {str(kind)[:60]!r}"
                        raise ValueError(f"events[{index}] {what}; known types: {', '.join(EVENT_TYPES)}")
        return value


class RecordedEvent(Frozen):
    """One event as the log holds it."""

    stream: str
    version: int
    position: int
    changeset_id: str
    actor: str
    message: str
    recorded_at: datetime
    event: Event
    prev_hash: str
    hash: str

    def public(self) -> dict[str, Any]:
        """The envelope fields plus the event's own (``history --json``)."""
        data: dict[str, Any] = {
            "stream": self.stream,
            "version": self.version,
            "position": self.position,
            "changeset_id": self.changeset_id,
            "actor": self.actor,
            "message": self.message,
            "recorded_at": format_time(self.recorded_at),
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }
        event = to_dict(self.event)
        data["type"] = event.pop("type")
        data.update(event)
        return data


@dataclass(frozen=True)
class Sealed:
    """One event of a changeset, chained: its public form (and that form's canonical text)."""

    version: int
    data: dict[str, Any]
    text: str
    prev_hash: str
    hash: str


def seal(
    *,
    stream: str,
    first_version: int,
    changeset_id: str,
    actor: str,
    message: str,
    recorded_at: datetime,
    events: tuple[Event, ...] | list[Event],
    prev_hash: str,
) -> list[Sealed]:
    """Chain a changeset's events.

    The hashed text is exactly ``canonical_json`` of the envelope (keys in sorted
    order), built once per changeset around each event's canonical text, so that
    the event is serialised once and that text is also what the store keeps.
    """
    moment = format_time(recorded_at)
    head = '{"actor":' + canonical_json(actor) + ',"changeset_id":' + canonical_json(changeset_id) + ',"event":'
    middle = ',"message":' + canonical_json(message) + ',"prev_hash":'
    tail = ',"recorded_at":' + canonical_json(moment) + ',"stream":' + canonical_json(stream) + ',"version":'
    out = []
    for offset, event in enumerate(events):
        version = first_version + offset
        data = to_dict(event)
        text = canonical_json(data)
        body = head + text + middle + canonical_json(prev_hash) + tail + str(version) + "}"
        digest = hashlib.sha256(body.encode("utf-8")).hexdigest()
        out.append(Sealed(version, data, text, prev_hash, digest))
        prev_hash = digest
    return out
