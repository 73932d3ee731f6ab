"""/v1/databases: the fleet's databases, their status, and their targets (service/app/fleet.py)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from service.api.auth import Forbidden, Requires, RoleRoute, actor_of
from service.api.problems import responses
from service.api.routes.common import READ_ERRORS, store_of
from service.app import fleet as app_fleet
from service.app.errors import BadRequest, NotFound
from service.app.tokens import Principal  # (at run time: FastAPI reads the signatures)

router = APIRouter(prefix="/v1/databases", tags=["fleet"], route_class=RoleRoute)

DatabaseName = Annotated[str, Path(min_length=1, max_length=200)]


class DatabaseSettings(BaseModel):
    """What a deployer changes (`db set`): fields left out are unchanged. The URL is the admin's (CLI)."""

    model_config = ConfigDict(extra="forbid")
    target: str | None = Field(default=None, max_length=200, description="head, a version or a tag")
    wave: int | None = Field(default=None, ge=0, le=1000)
    allow_destructive: bool | None = None
    drift: Literal["report", "adopt"] | None = None
    drift_interval: float | None = Field(default=None, gt=0, le=86400 * 30)


class TargetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    target: str = Field(min_length=1, max_length=200, description="head, a version or a tag")


async def _status(request: Request, principal: Principal, name: str, role: str) -> Any:
    async with store_of(request) as store:
        rows = await app_fleet.status(store)
    found = next((r for r in rows if r.name == name), None)
    if found is None or not principal.allows("reader", found.stream):
        raise NotFound(f"database {name!r} is not registered", kind="database", name=name)
    if not principal.allows(role, found.stream):
        raise Forbidden(
            f"token {principal.name!r} (role {principal.role}) may not do this on stream {found.stream!r}:"
            f" it needs role {role}",
            required_role=role,
            stream=found.stream,
        )
    return found


@router.get("", summary="The fleet's databases and their status", responses=responses(401, 403))
async def list_databases(
    request: Request, principal: Annotated[Principal, Depends(Requires("reader"))]
) -> list[dict[str, Any]]:
    """Ready, Reconciling, Stalled, Drifted or Halted, with marker, target, lag and last outcome."""
    async with store_of(request) as store:
        rows = await app_fleet.status(store)
    return [r.public() for r in rows if principal.allows("reader", r.stream)]


@router.get("/{name}", summary="One database's status", responses=READ_ERRORS)
async def get_database(
    request: Request, name: DatabaseName, principal: Annotated[Principal, Depends(Requires("reader"))]
) -> dict[str, Any]:
    found = await _status(request, principal, name, "reader")
    data: dict[str, Any] = found.public()
    return data


async def _change(request: Request, principal: Principal, name: str, fields: dict[str, Any]) -> dict[str, Any]:
    import pydantic

    from events.fleet import DatabaseChanged
    from service.app.errors import pydantic_message

    await _status(request, principal, name, "deployer")
    try:
        event = DatabaseChanged(name=name, **fields)
    except pydantic.ValidationError as exc:
        raise BadRequest(pydantic_message(exc)) from None
    async with store_of(request) as store:
        try:
            result = await app_fleet.change(store, actor_of(principal), event)
        except ValueError as exc:
            if isinstance(exc, (BadRequest, NotFound)):
                raise
            raise BadRequest(str(exc)) from None
    request.app.state.services.appended()
    found = await _status(request, principal, name, "reader")
    return {**found.public(), "fleet_version": result.last_version}


@router.patch("/{name}", summary="Change a database's settings (db set)", responses=responses(401, 403, 404, 422))
async def patch_database(
    request: Request,
    name: DatabaseName,
    body: DatabaseSettings,
    principal: Annotated[Principal, Depends(Requires("deployer"))],
) -> dict[str, Any]:
    """Recorded in the fleet stream; the daemon carries it out (its status shows the rollout)."""
    return await _change(request, principal, name, body.model_dump(exclude_none=True))


@router.put(
    "/{name}/target", summary="Set a database's target: a request to migrate", responses=responses(401, 403, 404, 422)
)
async def put_target(
    request: Request,
    name: DatabaseName,
    body: TargetIn,
    principal: Annotated[Principal, Depends(Requires("deployer"))],
) -> dict[str, Any]:
    """The daemon migrates the database to it (waves and approvals permitting)."""
    return await _change(request, principal, name, {"target": body.target})
