"""Changesets as the web UI shows them (service/app/timeline.py), who the caller is, approvals and the
resumption of a halted rollout: /v1/whoami, /v1/changesets, /v1/streams/{stream}/changesets/{id}, its
approvals, /v1/streams/{stream}/rollout/resume."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from service.api.auth import Requires, RoleRoute, actor_of
from service.api.problems import responses
from service.api.routes.common import MAX_POSITION, READ_ERRORS, WRITE_ERRORS, store_of, visible
from service.app import timeline as app_timeline
from service.app.errors import BadRequest
from service.app.streams import HistoryQuery
from service.app.tokens import Principal  # (at run time: FastAPI reads the signatures)

router = APIRouter(tags=["changesets"], route_class=RoleRoute)

StreamName = Annotated[str, Path(description="the stream's name", min_length=1, max_length=200)]
ChangesetId = Annotated[str, Path(description="the changeset's id", min_length=1, max_length=200)]


class WhoAmI(BaseModel):
    name: str
    actor: str = Field(description="what the log records as the actor of this token's changes")
    role: str
    roles: list[str] = Field(description="the roles this token holds (its own and every one below it)")
    streams: list[str] | None = Field(description="the streams in scope; null: every stream")


@router.get("/v1/whoami", summary="The caller: the token's name, role and scope", response_model=WhoAmI)
async def whoami(principal: Annotated[Principal, Depends(Requires("reader"))]) -> dict[str, Any]:
    from service.app.tokens import ROLES

    return {
        "name": principal.name,
        "actor": actor_of(principal),
        "role": principal.role,
        "roles": list(ROLES[: ROLES.index(principal.role) + 1]),
        "streams": list(principal.streams) if principal.streams is not None else None,
    }


@router.get("/v1/changesets", summary="The timeline: every stream's changesets, newest first", responses=READ_ERRORS)
async def list_changesets(
    request: Request,
    principal: Annotated[Principal, Depends(Requires("reader"))],
    stream: Annotated[str | None, Query(max_length=200, description="this stream's only")] = None,
    table: Annotated[str | None, Query(max_length=200, description="touching this table (under any name)")] = None,
    column: Annotated[str | None, Query(max_length=400, description="touching this column (with table)")] = None,
    actor: Annotated[str | None, Query(max_length=200)] = None,
    type: Annotated[list[str] | None, Query(description="holding events of these types (repeatable)")] = None,
    since: Annotated[str | None, Query(max_length=64, description="recorded at or after (ISO 8601)")] = None,
    until: Annotated[str | None, Query(max_length=64, description="recorded at or before (ISO 8601)")] = None,
    before: Annotated[
        int | None, Query(ge=0, le=MAX_POSITION, description="older than this global position (the cursor)")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=app_timeline.MAX_CHANGESETS)] = 50,
) -> JSONResponse:
    """Each changeset whole (every event, in words too), with its tags and approvals; a filter selects the
    changesets holding a matching event. The next page: `Link: <...>; rel="next"` (and `next_before`)."""
    query = HistoryQuery(
        stream=stream,
        table=table,
        column=column,
        actor=actor,
        since=since,
        until=until,
        types=tuple(type) if type else None,
    )
    async with store_of(request) as store:
        if stream is not None:
            from service.app.streams import check_stream

            await check_stream(store, stream)
        page = await app_timeline.list_changesets(
            store, query, limit=limit, before=before, sees=lambda s: visible(principal, s)
        )
    headers = {}
    if page.next_before is not None:
        params = [(k, v) for k, v in request.query_params.multi_items() if k != "before"]
        params.append(("before", str(page.next_before)))
        headers["Link"] = f'<{request.url.path}?{urlencode(params)}>; rel="next"'
    return JSONResponse(page.public(), headers=headers)


@router.get("/v1/streams/{stream}/changesets/{changeset_id}", summary="One changeset's page", responses=READ_ERRORS)
async def changeset(
    request: Request,
    stream: StreamName,
    changeset_id: ChangesetId,
    principal: Annotated[Principal, Depends(Requires("reader"))],
) -> JSONResponse:
    """Its events, hashes and whether the stream's chain verifies, its outcomes on each database, the SQL
    for each dialect (`sql_errors` says why a dialect has none), and whether it can be reverted."""
    async with store_of(request) as store:
        from service.app.streams import check_stream

        await check_stream(store, stream)
        found = await app_timeline.changeset_detail(store, stream, changeset_id)
    return JSONResponse(found.public())


class ApprovalIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    comment: str | None = Field(default=None, max_length=2000)


@router.post(
    "/v1/streams/{stream}/changesets/{changeset_id}/approvals",
    summary="Approve a changeset",
    status_code=201,
    responses=WRITE_ERRORS,
)
async def approve(
    request: Request,
    stream: StreamName,
    changeset_id: ChangesetId,
    principal: Annotated[Principal, Depends(Requires("deployer"))],
    body: ApprovalIn | None = None,
) -> JSONResponse:
    """The caller's approval recorded (never its author's own); who has approved now and how many the
    stream needs."""
    from service.app.approvals import ApprovalError
    from service.app.approvals import approve as approve_changeset

    async with store_of(request) as store:
        try:
            result = await approve_changeset(
                store, stream, changeset_id, actor_of(principal), comment=body.comment if body else None
            )
        except ApprovalError as exc:
            raise BadRequest(str(exc)) from None
    request.app.state.services.appended()
    return JSONResponse(
        {
            "stream": result.changeset.stream,
            "changeset_id": result.changeset.changeset_id,
            "approvers": list(result.approvers),
            "required": result.need,
        },
        status_code=201,
    )


class ResumeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to_version: int | None = Field(default=None, ge=1, description="the halted rollout's version (default: the last)")


@router.post(
    "/v1/streams/{stream}/rollout/resume",
    summary="Resume a halted rollout (rollout resume)",
    responses=responses(401, 403, 404, 422),
)
async def resume(
    request: Request,
    stream: StreamName,
    principal: Annotated[Principal, Depends(Requires("deployer"))],
    body: ResumeIn | None = None,
) -> JSONResponse:
    from service.app.fleet import resume as resume_rollout

    async with store_of(request) as store:
        try:
            appended, version = await resume_rollout(
                store, actor_of(principal), stream, body.to_version if body else None
            )
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
    request.app.state.services.appended()
    return JSONResponse({"stream": stream, "to_version": version, "recorded_version": appended.last_version})
