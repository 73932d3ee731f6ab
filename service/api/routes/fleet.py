"""/v1/databases: the fleet's databases, their status, and their targets (service/app/fleet.py)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse
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


class MigrationIn(BaseModel):
    """A request to migrate: to ``target`` (recorded as the database's new target when it differs), else to
    the target the database has."""

    model_config = ConfigDict(extra="forbid")
    target: str | None = Field(default=None, min_length=1, max_length=200, description="head, a version or a tag")


class DatabaseIn(BaseModel):
    """A database joining the fleet (`db add`). The URL may name its password as `password_env=` or
    `password_file=` (resolved where it is used, never stored)."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    url: str = Field(min_length=1, max_length=2000)
    stream: str = Field(min_length=1, max_length=200)
    target: str = Field(default="head", min_length=1, max_length=200, description="head, a version or a tag")
    wave: int = Field(default=0, ge=0, le=1000)
    allow_destructive: bool = False
    drift: Literal["report", "adopt"] = "report"
    drift_interval: float = Field(default=300.0, gt=0, le=86400 * 30)
    approvals: int = Field(default=0, ge=0, le=100, description="approvals each changeset needs before it is applied")


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
    """Ready, Reconciling, Stalled, Drifted or Halted, with marker, target, lag and last outcome; a database
    held back for approvals lists the changesets it waits for (`awaiting_approval`)."""
    async with store_of(request) as store:
        rows = [r for r in await app_fleet.status(store) if principal.allows("reader", r.stream)]
        return [{**r.public(), "awaiting_approval": await _awaiting(store, r)} for r in rows]


async def _awaiting(store: Any, row: app_fleet.DatabaseStatus) -> list[dict[str, Any]]:
    """The changesets between the database's marker and its target that lack the approvals they need (read
    only for a database behind its target: the others wait for none)."""
    if row.target_version is None or (row.marker or 0) >= row.target_version:
        return []
    from service.app.approvals import missing_approvals

    missing = await missing_approvals(store, row.stream, row.marker or 0, row.target_version, database=row.name)
    return [m._asdict() for m in missing]


@router.get("/{name}", summary="One database's status", responses=READ_ERRORS)
async def get_database(
    request: Request, name: DatabaseName, principal: Annotated[Principal, Depends(Requires("reader"))]
) -> dict[str, Any]:
    found = await _status(request, principal, name, "reader")
    async with store_of(request) as store:
        return {**found.public(), "awaiting_approval": await _awaiting(store, found)}


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


def _fleet_problem(exc: ValueError) -> Exception:
    """A fleet write that does not fit the fleet: 409 for a name or URL already registered, else 422."""
    from fastapi import HTTPException

    if isinstance(exc, (BadRequest, NotFound)):
        return exc
    if "already" in str(exc):
        return HTTPException(409, str(exc))
    return BadRequest(str(exc))


async def _database(request: Request, name: str) -> Any:
    """The fleet's entry of a registered database (its URL as registered, secrets unresolved)."""
    async with store_of(request) as store:
        view = await app_fleet.fleet_view(store)
    found = view.databases.get(name)
    if found is None:
        raise NotFound(f"database {name!r} is not registered", kind="database", name=name)
    return found


async def _migrate(request: Request, principal: Principal, db: Any, *, target: str, plan_only: bool) -> Any:
    """``migrate`` (or ``migrate --plan``) of one registered database to ``target``, by the principal."""
    from service.app.databases import Target, migrate_targets
    from service.secrets import SecretMissing, resolve_url

    try:
        url = resolve_url(db.url)
    except SecretMissing as exc:
        raise BadRequest(str(exc), field="url") from None
    one = Target(db.name, url, db.stream, target, allow_destructive=db.allow_destructive)
    async with store_of(request) as store:
        (outcome,) = await migrate_targets(store, [one], actor=actor_of(principal), plan_only=plan_only)
    if outcome.recorded:
        request.app.state.services.appended()
    return outcome


@router.get("/{name}/plan", summary="What migrate would run (migrate --plan)", responses=READ_ERRORS)
async def get_plan(
    request: Request,
    name: DatabaseName,
    principal: Annotated[Principal, Depends(Requires("reader"))],
    to: Annotated[str | None, Query(max_length=200, description="a point (default: the database's target)")] = None,
) -> dict[str, Any]:
    """The statements that would bring the database to the point, read from the database and the log;
    nothing is run or recorded. `status` is `planned`, or why migrate would not run (refused, drift,
    unreachable, ...)."""
    await _status(request, principal, name, "reader")
    db = await _database(request, name)
    outcome = await _migrate(request, principal, db, target=to or db.target, plan_only=True)
    data: dict[str, Any] = outcome.public()
    return data


@router.post(
    "/{name}/migrations",
    summary="A request to migrate a database",
    responses={**responses(401, 403, 404, 409, 422), 202: {"description": "recorded for the daemon"}},
)
async def create_migration(
    request: Request,
    name: DatabaseName,
    body: MigrationIn,
    principal: Annotated[Principal, Depends(Requires("deployer"))],
) -> JSONResponse:
    """A target given that differs from the database's is recorded first (as `PUT .../target`). Then, when a
    daemon replica holds the database's lease, the daemon carries it out: 202 with the database's status.
    Else it is carried out at once, here: 200 with the migration's outcome (`applied`, `up_to_date`,
    `refused`, `failed`, ...), recorded in the database's outcome stream as `migrate` records it."""
    found = await _status(request, principal, name, "deployer")
    db = await _database(request, name)
    if body.target is not None and body.target != db.target:
        from service.app.streams import resolve_point

        async with store_of(request) as store:  # a point the stream lacks: 422 before anything is recorded
            await resolve_point(store, db.stream, body.target)
        await _change(request, principal, name, {"target": body.target})
        db = await _database(request, name)
    if found.owner is not None:
        status = await _status(request, principal, name, "reader")
        return JSONResponse({"mode": "daemon", "status": status.public()}, status_code=202)
    outcome = await _migrate(request, principal, db, target=db.target, plan_only=False)
    return JSONResponse({"mode": "now", "outcome": outcome.public()}, status_code=200)


@router.post("", summary="Register a database (db add)", status_code=201, responses=responses(401, 403, 409, 422))
async def register_database(
    request: Request, body: DatabaseIn, principal: Annotated[Principal, Depends(Requires("admin"))]
) -> JSONResponse:
    """Recorded in the fleet stream: the daemon brings the database to its target, wave by wave."""
    import pydantic

    from events.fleet import DatabaseRegistered
    from service.app.errors import pydantic_message

    if not principal.allows("admin", body.stream):
        raise Forbidden(
            f"token {principal.name!r} (role {principal.role}) may not register a database of stream"
            f" {body.stream!r}: it needs role admin there",
            required_role="admin",
            stream=body.stream,
        )
    try:
        event = DatabaseRegistered(**body.model_dump())
    except pydantic.ValidationError as exc:
        raise BadRequest(pydantic_message(exc)) from None
    async with store_of(request) as store:
        try:
            result = await app_fleet.register(store, actor_of(principal), event)
        except ValueError as exc:
            raise _fleet_problem(exc) from None
    request.app.state.services.appended()
    found = await _status(request, principal, body.name, "reader")
    return JSONResponse({**found.public(), "fleet_version": result.last_version}, status_code=201)


@router.delete("/{name}", summary="Retire a database (db retire)", responses=responses(401, 403, 404))
async def retire_database(
    request: Request, name: DatabaseName, principal: Annotated[Principal, Depends(Requires("admin"))]
) -> dict[str, Any]:
    """Taken out of the fleet (recorded); the database itself is left as it is, its outcomes kept."""
    found = await _status(request, principal, name, "admin")
    async with store_of(request) as store:
        try:
            result = await app_fleet.retire(store, actor_of(principal), name)
        except ValueError as exc:
            raise _fleet_problem(exc) from None
    request.app.state.services.appended()
    return {"name": name, "stream": found.stream, "retired": True, "fleet_version": result.last_version}
