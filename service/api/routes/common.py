"""What the route modules share: the store of a request, the If-Match header, the Link header."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlencode

from fastapi import Header, Request

from service.api.problems import responses
from service.app.errors import BadRequest

if TYPE_CHECKING:
    from events.store import EventStore
    from service.app.tokens import Principal

MAX_POSITION = 2**63 - 1
"""The largest position or version a store holds (a 64-bit integer): a larger cursor is refused (422)."""

READ_ERRORS = responses(401, 403, 404, 422)
WRITE_ERRORS = responses(401, 403, 404, 409, 412, 413, 422)


@asynccontextmanager
async def store_of(request: Request) -> AsyncIterator[EventStore]:
    async with request.app.state.services.store() as store:
        yield store


IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        description='the stream\'s ETag (its head version, as `"12"`) the write expects: 412 when it moved',
    ),
]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="the changeset id: a retry with the same key is recorded once and gets the same answer",
        min_length=1,
        max_length=200,
    ),
]


def expected_version(request: Request, if_match: str | None) -> int | None:
    """The version an If-Match header expects (None without one); BadRequest if it names no version."""
    if if_match is None:
        return None
    text = if_match.strip()
    if text.startswith("W/"):
        text = text[2:]
    text = text.strip('"')
    if not (text.isascii() and text.isdigit()) or len(text) > 18:  # (isdigit alone passes '²', which int() refuses)
        raise BadRequest(
            f'If-Match must be a stream\'s ETag (its version, as "12"), not {if_match!r}', field="If-Match"
        )
    request.state.if_match = int(text)
    return int(text)


def next_link(request: Request, after: int) -> str:
    """The ``Link: <...>; rel="next"`` of a listing's next page (the same query, ``after`` moved on)."""
    query: list[tuple[str, Any]] = [(k, v) for k, v in request.query_params.multi_items() if k != "after"]
    query.append(("after", after))
    return f'<{request.url.path}?{urlencode(query)}>; rel="next"'


def visible(principal: Principal, stream: str) -> bool:
    """Whether a principal may read a stream (the tokens' own stream: admins only)."""
    if stream.startswith("schemalog:tokens"):
        return principal.allows("admin", stream)
    return principal.allows("reader", stream)
