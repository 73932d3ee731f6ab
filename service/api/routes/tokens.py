"""/v1/tokens: API tokens for an admin (what `schemalog token create|list|revoke` do): the secret is in the
answer to its creation only, never stored, listed or logged."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from service.api.auth import Requires, RoleRoute, actor_of
from service.api.problems import responses
from service.api.routes.common import store_of
from service.app import tokens as app_tokens
from service.app.errors import BadRequest, NotFound
from service.app.tokens import Principal  # (at run time: FastAPI reads the signatures)

router = APIRouter(prefix="/v1/tokens", tags=["tokens"], route_class=RoleRoute)


def _unscoped(principal: Principal) -> None:
    """Tokens are the whole store's: an admin token scoped to some streams could otherwise make itself one
    for every stream."""
    if principal.streams is not None:
        from service.api.auth import Forbidden

        raise Forbidden(
            "managing tokens needs an admin token for every stream (this one is scoped)",
            required_role="admin",
            stream=None,
        )


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=64)
    role: Literal["reader", "author", "deployer", "admin"]
    streams: list[str] | None = Field(default=None, max_length=100, description="only these streams; null: all")
    expires: str | None = Field(default=None, max_length=16, description="90d, 12h, 30m, 2w ...; null: never")


@router.get("", summary="Every token made, revoked ones too (never a secret)", responses=responses(401, 403))
async def list_tokens(
    request: Request, principal: Annotated[Principal, Depends(Requires("admin"))]
) -> list[dict[str, Any]]:
    _unscoped(principal)
    async with store_of(request) as store:
        return [t.public() for t in await app_tokens.list_tokens(store)]


@router.post(
    "", summary="Make a token: its text is in this answer only", status_code=201, responses=responses(401, 403, 422)
)
async def create_token(
    request: Request, body: TokenIn, principal: Annotated[Principal, Depends(Requires("admin"))]
) -> JSONResponse:
    _unscoped(principal)
    try:
        expires_in = app_tokens.parse_expiry(body.expires) if body.expires is not None else None
    except ValueError as exc:
        raise BadRequest(str(exc), field="expires") from None
    async with store_of(request) as store:
        try:
            text, info = await app_tokens.create_token(
                store,
                name=body.name,
                role=body.role,
                streams=tuple(body.streams) if body.streams is not None else None,
                expires_in=expires_in,
                actor=actor_of(principal),
            )
        except app_tokens.TokenError as exc:
            raise BadRequest(str(exc)) from None
    request.app.state.services.appended()
    return JSONResponse({"token": text, **info.public()}, status_code=201, headers={"Cache-Control": "no-store"})


@router.delete("/{name}", summary="Revoke a token (by name or id)", responses=responses(401, 403, 404, 422))
async def revoke_token(
    request: Request,
    name: Annotated[str, Path(min_length=1, max_length=64)],
    principal: Annotated[Principal, Depends(Requires("admin"))],
) -> dict[str, Any]:
    _unscoped(principal)
    async with store_of(request) as store:
        try:
            info = await app_tokens.revoke_token(store, name, actor=actor_of(principal))
        except app_tokens.TokenNotFound as exc:
            raise NotFound(str(exc), kind="token", name=name) from None
        except app_tokens.TokenError as exc:
            raise BadRequest(str(exc)) from None
    request.app.state.services.appended()
    return info.public()
