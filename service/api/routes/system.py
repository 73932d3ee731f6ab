"""/healthz, /readyz, the change feed (/v1/feed), /v1/verify and the audit (/v1/audit)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse

from service.api.auth import Requires, RoleRoute
from service.api.problems import responses
from service.api.routes.common import MAX_POSITION, READ_ERRORS, next_link, store_of, visible
from service.app import streams as app_streams
from service.app.errors import BadRequest
from service.app.tokens import Principal  # (at run time: FastAPI reads the signatures)

router = APIRouter(route_class=RoleRoute)

KEEP_ALIVE = 15.0
"""Seconds between the feed's keep-alive comments."""


@router.get("/healthz", tags=["system"], summary="Liveness: the server answers and its store is open")
async def healthz(request: Request) -> dict[str, Any]:
    async with store_of(request) as store:
        streams = len(await store.streams())
    return {"ok": True, "streams": streams}


@router.get(
    "/readyz",
    tags=["system"],
    summary="Readiness: the store answers and its layout is the one this server knows (503 otherwise)",
    responses=responses(503),
)
async def readyz(request: Request) -> dict[str, Any]:
    from events.store.base import STORE_SCHEMA, require_current_schema

    async with store_of(request) as store:
        require_current_schema(await store.stored_schema())  # a StoreError: 503, the one line as its detail
    return {"ready": True, "store_schema": STORE_SCHEMA}


@router.get(
    "/v1/feed",
    tags=["feed"],
    summary="The change feed: every appended event, as server-sent events",
    responses={**responses(401, 403, 422), 200: {"content": {"text/event-stream": {}}}},
)
async def feed(
    request: Request,
    principal: Annotated[Principal, Depends(Requires("reader"))],
    last_event_id: Annotated[
        str | None, Header(alias="Last-Event-ID", description="resume after this position", max_length=20)
    ] = None,
    after: Annotated[
        int | None, Query(ge=0, le=MAX_POSITION, description="start after this global position (as Last-Event-ID)")
    ] = None,
) -> Any:
    """Each event a server-sent event `event: event`, its `id` the event's global position and its `data` the
    event's JSON (envelope and fields); from now on, or after `Last-Event-ID` (or `after`) with nothing missed
    and nothing twice. Keep-alive comments every 15 s. A client that falls behind is sent `event: cutoff`
    (its `id` where to resume) and the stream ends."""
    from sse_starlette.sse import EventSourceResponse

    start = after
    if last_event_id is not None:
        text = last_event_id.strip()
        if not (text.isascii() and text.isdigit()) or int(text) > MAX_POSITION:  # (isdigit alone: '²')
            raise BadRequest(f"Last-Event-ID must be a position, not {last_event_id!r}", field="Last-Event-ID")
        start = int(last_event_id.strip())
    hub = request.app.state.services.feed
    return EventSourceResponse(
        hub.events(start, lambda stream: visible(principal, stream)), ping=KEEP_ALIVE, send_timeout=30
    )


@router.post("/v1/verify", tags=["system"], summary="Walk every hash chain", responses=responses(401, 403))
async def verify(request: Request, principal: Annotated[Principal, Depends(Requires("reader"))]) -> dict[str, Any]:
    """Every stream's chain walked (the whole store: a token scoped to some streams may not)."""
    if principal.streams is not None:
        from service.api.auth import Forbidden

        raise Forbidden(
            "verify walks every stream: it needs a token for every stream", required_role="reader", stream=None
        )
    async with store_of(request) as store:
        result = await app_streams.verify(store)
    return {**result.public(), "done": result.done}


@router.get("/v1/audit", tags=["system"], summary="Who did what: events across streams", responses=READ_ERRORS)
async def audit(
    request: Request,
    principal: Annotated[Principal, Depends(Requires("reader"))],
    actor: Annotated[str | None, Query(description="events by this actor (token:NAME, a user)")] = None,
    type: Annotated[list[str] | None, Query(description="events of these types (repeatable)")] = None,
    since: Annotated[str | None, Query(description="recorded at or after (ISO 8601)")] = None,
    until: Annotated[str | None, Query(description="recorded at or before (ISO 8601)")] = None,
    after: Annotated[
        int | None, Query(ge=0, le=MAX_POSITION, description="only events past this global position")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> JSONResponse:
    """Every stream's events the token sees, oldest first (a page may hold fewer than `limit` for a scoped
    token: follow `Link` rel=next)."""
    query = app_streams.HistoryQuery(
        actor=actor, types=tuple(type) if type else None, since=since, until=until, after=after
    )
    async with store_of(request) as store:
        page = await app_streams.list_events(store, query, limit=limit)
    events = [e for e in page.events if visible(principal, e["stream"])]
    headers = {}
    if page.next_after is not None:
        headers["Link"] = next_link(request, page.next_after)
    return JSONResponse({"events": events, "next_after": page.next_after}, headers=headers)
