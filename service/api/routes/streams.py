"""/v1/streams: streams, their events, changesets, schema at a point, diff, blame, tags and reverts."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from events.catalog import Event
from service.api.app import etag
from service.api.auth import Requires, RoleRoute, actor_of
from service.api.routes.common import (
    MAX_POSITION,
    READ_ERRORS,
    WRITE_ERRORS,
    IdempotencyKey,
    IfMatch,
    expected_version,
    next_link,
    store_of,
    visible,
)
from service.app import streams as app_streams
from service.app.errors import BadRequest
from service.app.tokens import Principal  # (at run time: FastAPI reads the signatures)

router = APIRouter(prefix="/v1/streams", tags=["streams"], route_class=RoleRoute)

StreamName = Annotated[str, Path(description="the stream's name", min_length=1, max_length=200)]
PointText = Annotated[
    str | None, Query(description="a version (12), a time (2026-11-20T10:00Z), a tag, or head", max_length=200)
]


class ChangesetBody(BaseModel):
    """A changeset: events appended together, all or none. The stream is the path's; the actor is the
    token's principal (`token:NAME`), never a field of the body."""

    model_config = ConfigDict(extra="forbid", title="ChangesetBody")

    message: str = Field(default="", description="why")
    changeset_id: str | None = Field(
        default=None, min_length=1, max_length=200, description="recorded once (also the Idempotency-Key header)"
    )
    expected_version: int | None = Field(default=None, ge=0, description="as If-Match: 409 when the stream moved")
    events: list[Event] = Field(min_length=1, description="the events, each with its `type` (the catalogue)")


class Appended(BaseModel):
    stream: str
    changeset_id: str
    first_version: int
    last_version: int
    versions: list[int] = Field(description="the versions recorded, first to last")


class StreamOut(BaseModel):
    name: str
    version: int
    hash: str


class EventPageOut(BaseModel):
    events: list[dict[str, Any]] = Field(description="each event's envelope and fields (`history --json`)")
    next_after: int | None = Field(description="the `after` of the next page (also in `Link`); null on the last")


class TagIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    at: str | None = Field(default=None, max_length=200, description="the point to name (default head)")
    message: str | None = None


class RevertIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    target: str = Field(min_length=1, max_length=200, description="a changeset id, or a version or tag inside it")
    message: str | None = None


CHANGESET_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ChangesetBody"}}},
    }
}


def _appended(result: app_streams.Appended) -> dict[str, Any]:
    return {
        "stream": result.stream,
        "changeset_id": result.changeset_id,
        "first_version": result.first_version,
        "last_version": result.last_version,
        "versions": list(range(result.first_version, result.last_version + 1)),
    }


def _answer(result: app_streams.Appended, status: int = 201) -> JSONResponse:
    headers = {"ETag": etag(result.last_version)}
    if result.duplicate:
        headers["Idempotent-Replayed"] = "true"
    return JSONResponse(_appended(result), status_code=status, headers=headers)


@router.get("", summary="Every stream with its head", response_model=list[StreamOut], responses=READ_ERRORS)
async def list_streams(
    request: Request, principal: Annotated[Principal, Depends(Requires("reader"))]
) -> list[dict[str, Any]]:
    async with store_of(request) as store:
        found = await app_streams.list_streams(store)
    return [s.public() for s in found if visible(principal, s.name)]


@router.post(
    "/{stream}/changesets",
    summary="Append a changeset",
    status_code=201,
    response_model=Appended,
    responses=WRITE_ERRORS,
    openapi_extra=CHANGESET_BODY,
)
async def append_changeset(
    request: Request,
    stream: StreamName,
    principal: Annotated[Principal, Depends(Requires("author"))],
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Validated against the stream's head, appended all or none: 201 with the versions recorded and the
    stream's new ETag. `If-Match` (or the body's `expected_version`) makes a moved stream 412 (409), with
    the current version; an `Idempotency-Key` (the changeset id) already recorded gets the first answer
    again (`Idempotent-Replayed: true`), nothing written."""
    import orjson

    expected = expected_version(request, if_match)
    body = await request.body()
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"malformed JSON: {exc}") from None
    if not isinstance(data, dict):
        raise BadRequest("a changeset is a JSON object with an 'events' list")
    for name in ("actor", "stream"):
        if (
            name in data
            and data[name] is not None
            and data[name] != (actor_of(principal) if name == "actor" else stream)
        ):
            raise BadRequest(
                "the actor is the token's principal: leave it out"
                if name == "actor"
                else f"the body names stream {data[name]!r} but the path {stream!r}: leave it out",
                field=name,
            )
    if idempotency_key is not None:
        if data.get("changeset_id") not in (None, idempotency_key):
            raise BadRequest("the body's changeset_id and the Idempotency-Key differ", field="changeset_id")
        data["changeset_id"] = idempotency_key
    changeset = app_streams.changeset_from_data(data, actor=actor_of(principal), stream=stream)
    async with store_of(request) as store:
        log = request.app.state.services.event_log(store)
        result = await app_streams.append_changeset(store, changeset, expected_version=expected, log=log)
    if not result.duplicate:
        request.app.state.services.appended()
    return _answer(result)


@router.get("/{stream}/events", summary="A stream's events", response_model=EventPageOut, responses=READ_ERRORS)
async def list_events(
    request: Request,
    stream: StreamName,
    principal: Annotated[Principal, Depends(Requires("reader"))],
    table: Annotated[str | None, Query(description="events of this table (under any of its names)")] = None,
    column: Annotated[str | None, Query(description="events of this column (with table, or TABLE.COLUMN)")] = None,
    actor: Annotated[str | None, Query(description="events by this actor")] = None,
    type: Annotated[list[str] | None, Query(description="events of these types (repeatable)")] = None,
    since: Annotated[str | None, Query(description="recorded at or after (ISO 8601)")] = None,
    until: Annotated[str | None, Query(description="recorded at or before (ISO 8601)")] = None,
    after: Annotated[
        int | None, Query(ge=0, le=MAX_POSITION, description="only events past this global position (the cursor)")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="at most this many events")] = 100,
) -> JSONResponse:
    """Oldest first; filters follow renames. The next page is `Link: <...>; rel="next"` (and `next_after`)."""
    query = app_streams.HistoryQuery(
        stream=stream,
        table=table,
        column=column,
        actor=actor,
        since=since,
        until=until,
        types=tuple(type) if type else None,
        after=after,
    )
    async with store_of(request) as store:
        page = await app_streams.list_events(store, query, limit=limit)
        head = await store.version(stream)
    headers = {"ETag": etag(head)}
    if page.next_after is not None:
        headers["Link"] = next_link(request, page.next_after)
    return JSONResponse(page.public(), headers=headers)


@router.get(
    "/{stream}/schema",
    summary="The schema at a point",
    responses={**READ_ERRORS, 200: {"content": {"application/json": {}, "text/plain": {}}}},
)
async def schema(
    request: Request,
    stream: StreamName,
    principal: Annotated[Principal, Depends(Requires("reader"))],
    at: PointText = None,
    format: Annotated[Literal["json", "sql"], Query(description="JSON, or a runnable CREATE script")] = "json",
    dialect: Annotated[str, Query(description="for sql: postgresql, mysql or sqlite", max_length=40)] = "postgresql",
) -> Any:
    """JSON: `show --format json`'s document, served from the fold's plain state (no schema objects built)."""
    if format == "json":
        import orjson

        async with store_of(request) as store:
            await app_streams.check_stream(store, stream)
            public = await app_streams.public_schema_at(store, stream, at)
        return Response(orjson.dumps(public.public()), media_type="application/json")
    async with store_of(request) as store:
        await app_streams.check_stream(store, stream)
        found = await app_streams.schema_at(store, stream, at)
    script = app_streams.schema_sql(found.schema, dialect)
    head = f"-- schemalog: stream {stream} at version {found.version}, {script.dialect}\n"
    return PlainTextResponse(head + script.script())


@router.get("/{stream}/diff", summary="The changes between two points", responses=READ_ERRORS)
async def diff(
    request: Request,
    stream: StreamName,
    principal: Annotated[Principal, Depends(Requires("reader"))],
    from_: Annotated[str, Query(alias="from", max_length=200, description="a point")],
    to: Annotated[str, Query(max_length=200, description="a point")],
) -> dict[str, Any]:
    """The events from one point to the other; going back, their inverses (newest first)."""
    async with store_of(request) as store:
        await app_streams.check_stream(store, stream)
        found = await app_streams.diff_points(store, stream, from_, to)
    return found.public()


@router.get("/{stream}/blame/{table}", summary="Who made each part of a table", responses=READ_ERRORS)
async def blame(
    request: Request,
    stream: StreamName,
    table: Annotated[str, Path(min_length=1, max_length=200)],
    principal: Annotated[Principal, Depends(Requires("reader"))],
    at: PointText = None,
) -> dict[str, Any]:
    async with store_of(request) as store:
        found = await app_streams.blame_table(store, stream, table, at)
    return found.public()


@router.get("/{stream}/tags", summary="A stream's tags", responses=READ_ERRORS)
async def list_tags(
    request: Request, stream: StreamName, principal: Annotated[Principal, Depends(Requires("reader"))]
) -> list[dict[str, Any]]:
    async with store_of(request) as store:
        await app_streams.check_stream(store, stream)
        found = await app_streams.tags(store, stream)
    return [t.public() for t in found]


@router.post("/{stream}/tags", summary="Name a point", status_code=201, responses=WRITE_ERRORS)
async def create_tag(
    request: Request,
    stream: StreamName,
    body: TagIn,
    principal: Annotated[Principal, Depends(Requires("author"))],
    if_match: IfMatch = None,
) -> JSONResponse:
    expected = expected_version(request, if_match)
    async with store_of(request) as store:
        await app_streams.check_stream(store, stream)
        tagged = await app_streams.create_tag(
            store,
            stream,
            body.name,
            at=body.at,
            actor=actor_of(principal),
            message=body.message,
            expected_version=expected,
        )
    request.app.state.services.appended()
    return JSONResponse(tagged.public(), status_code=201, headers={"ETag": etag(tagged.recorded_version)})


@router.post(
    "/{stream}/reverts",
    summary="Append the inverse of a changeset",
    status_code=201,
    responses={**WRITE_ERRORS, 200: {"description": "the changeset changed no schema: nothing appended"}},
)
async def create_revert(
    request: Request,
    stream: StreamName,
    body: RevertIn,
    principal: Annotated[Principal, Depends(Requires("author"))],
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """201 with the revert's changeset; 200 with `appended: null` when the changeset changed no schema."""
    async with store_of(request) as store:
        await app_streams.check_stream(store, stream)
        reverted = await app_streams.revert(
            store, stream, body.target, actor=actor_of(principal), message=body.message, changeset_id=idempotency_key
        )
    if reverted.appended is None:
        return JSONResponse(reverted.public(), status_code=200)
    request.app.state.services.appended()
    data = reverted.public()
    data["appended"] = _appended(reverted.appended)
    return JSONResponse(data, status_code=201, headers={"ETag": etag(reverted.appended.last_version)})
