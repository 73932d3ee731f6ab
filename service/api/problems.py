"""RFC 9457 problem documents: every error the API answers is one (``application/problem+json``).

Each kind of problem has its own ``type`` URI (``urn:schemalog:problem:<slug>``), a short ``title`` and
the status it goes with; ``detail`` says what happened this time, and extension members carry what a
client acts on (the offending event ``index`` of a rejected changeset, the stream's ``current_version``
after a precondition failed). Nothing in a problem document comes from a traceback.
"""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

PROBLEM_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:schemalog:problem:"


class Problem(BaseModel):
    """A problem document (RFC 9457); extension members beside the standard ones."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(description="a URI naming the kind of problem", examples=[TYPE_PREFIX + "invalid-change"])
    title: str = Field(description="a short summary of the kind of problem")
    status: int = Field(description="the HTTP status code")
    detail: str = Field(description="what went wrong this time")
    instance: str | None = Field(default=None, description="the request path")


KINDS: dict[str, tuple[int, str]] = {
    "bad-request": (400, "Bad request"),
    "unauthenticated": (401, "Authentication required"),
    "forbidden": (403, "Not allowed"),
    "not-found": (404, "Not found"),
    "method-not-allowed": (405, "Method not allowed"),
    "not-acceptable": (406, "Not acceptable"),
    "conflict": (409, "Conflict"),
    "changeset-id-conflict": (409, "Changeset id already used"),
    "precondition-failed": (412, "Precondition failed: the stream moved"),
    "body-too-large": (413, "Request body too large"),
    "unsupported-media-type": (415, "Unsupported media type"),
    "validation": (422, "Request does not validate"),
    "invalid-change": (422, "Changeset rejected, nothing written"),
    "bad-point": (422, "Not a point of the stream"),
    "unavailable": (503, "The store is unavailable"),
    "internal": (500, "Internal error"),
}
"""Each problem kind: its status and title."""

STATUS_KINDS = {
    400: "bad-request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    406: "not-acceptable",
    409: "conflict",
    412: "precondition-failed",
    413: "body-too-large",
    415: "unsupported-media-type",
    422: "validation",
    503: "unavailable",
}
"""The kind an HTTP error of a status is, when nothing more is known of it (starlette's own 404, 405)."""


def problem(
    kind: str,
    detail: str,
    *,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    status: int | None = None,
    **extensions: Any,
) -> JSONResponse:
    """The response for a problem of ``kind`` (a key of KINDS)."""
    code, title = KINDS[kind]
    body: dict[str, Any] = {"type": TYPE_PREFIX + kind, "title": title, "status": status or code, "detail": detail}
    if instance is not None:
        body["instance"] = instance
    body.update({k: v for k, v in extensions.items() if v is not None})
    return JSONResponse(body, status_code=status or code, headers=headers, media_type=PROBLEM_TYPE)


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` entries of a route's problem statuses (each a Problem)."""
    return {
        code: {
            "model": Problem,
            "description": KINDS[STATUS_KINDS.get(code, "internal")][1],
            "content": {PROBLEM_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for code in statuses
    }
