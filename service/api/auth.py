"""Who is calling: the bearer token of every request but ``/healthz``, and the role each route requires.

A route names its role once, in its signature: ``principal: Principal = Depends(Requires("author"))``.
The dependency answers 401 (with ``WWW-Authenticate``) for no token or one that does not authenticate
(malformed, unknown, expired, revoked) and 403 for a principal whose role or stream scope does not
allow the route; ``RoleRoute`` finds the dependency and writes the role into the route's OpenAPI
operation (``x-required-role`` and its description), so that the document states what the code checks.
"""

# (no `from __future__ import annotations`: FastAPI reads Requires.__call__'s annotations, and an instance
# has no module globals to resolve them in)
from typing import TYPE_CHECKING, Any

from fastapi import Request
from fastapi.routing import APIRoute
from fastapi.security import HTTPBearer

if TYPE_CHECKING:
    from collections.abc import Callable

    from service.app.tokens import Principal

BEARER = HTTPBearer(auto_error=False, description="an API token made by `schemalog token create`")
"""The security scheme the OpenAPI document names (the check itself is ``Requires``)."""


class Unauthenticated(Exception):
    """No token, or one that does not authenticate: 401."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason


class Forbidden(Exception):
    """A principal whose role or scope does not allow the operation: 403."""

    def __init__(self, detail: str, *, required_role: str, stream: str | None):
        super().__init__(detail)
        self.required_role = required_role
        self.stream = stream


AUTH_DETAILS = {
    "missing": "no bearer token: send `Authorization: Bearer <token>` (made by `schemalog token create`)",
    "malformed": "the bearer token is malformed (its checksum does not match: a typo or a cut-off copy)",
    "unknown": "the bearer token is not known to this store",
    "expired": "the bearer token has expired",
    "revoked": "the bearer token was revoked",
}


async def authenticate_request(request: Request) -> "Principal":
    """The principal of the request's bearer token (cached on the request); Unauthenticated if none."""
    known: Principal | None = getattr(request.state, "principal", None)
    if known is not None:
        return known
    from service.app.tokens import AuthError, authenticate

    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if not header:
        raise Unauthenticated("missing", AUTH_DETAILS["missing"])
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("malformed", "the Authorization header is not `Bearer <token>`")
    services = request.app.state.services
    try:
        async with services.store() as store:
            principal = await authenticate(store, token.strip())
    except AuthError as exc:
        raise Unauthenticated(exc.reason, AUTH_DETAILS.get(exc.reason, str(exc))) from None
    request.state.principal = principal
    return principal


class Requires:
    """The dependency of a route that needs ``role`` (over the route's ``{stream}``, when it has one)."""

    def __init__(self, role: str):
        from service.app.tokens import ROLES

        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}")
        self.role = role

    async def __call__(self, request: Request) -> "Principal":
        principal = await authenticate_request(request)
        stream = request.path_params.get("stream")
        if not principal.allows(self.role, stream):
            scope = f" on stream {stream!r}" if stream is not None else ""
            raise Forbidden(
                f"token {principal.name!r} (role {principal.role}) may not do this{scope}: it needs role {self.role}"
                + (" in its scope" if stream is not None else ""),
                required_role=self.role,
                stream=stream,
            )
        return principal


def actor_of(principal: "Principal") -> str:
    """The actor recorded for a principal's changes (never a field of the request body)."""
    return f"token:{principal.name}"


def _required_role(call: "Callable[..., Any] | None", dependant: Any) -> str | None:
    if isinstance(call, Requires):
        return call.role
    for sub in dependant.dependencies:
        found = _required_role(sub.call, sub)
        if found is not None:
            return found
    return None


class RoleRoute(APIRoute):
    """A route whose OpenAPI operation states the role its ``Requires`` dependency checks."""

    def __init__(self, path: str, endpoint: "Callable[..., Any]", **kwargs: Any):
        super().__init__(path, endpoint, **kwargs)
        role = _required_role(None, self.dependant)
        extra = dict(self.openapi_extra or {})
        if role is None:
            extra["x-required-role"] = "none"
            extra["security"] = []
            note = "Required role: none (no token needed)."
        else:
            extra["x-required-role"] = role
            extra["security"] = [{"HTTPBearer": []}]
            note = f"Required role: **{role}** (or a role above it), over the stream when the path names one."
        self.openapi_extra = extra
        self.description = f"{self.description}\n\n{note}".strip()
