"""The web UI: static files (service/web/static) served by ``schemalog serve`` at ``/``.

No build step and nothing fetched from elsewhere: plain ES modules, the UI's own CSS and the vendored,
pinned libraries in ``static/vendor`` (their licences in ``static/vendor/LICENSES.md``). The UI reads only
the HTTP API (``/v1``), with the token the user signs in with.

Every answer carries a Content-Security-Policy of ``default-src 'self'`` (no inline script or style, no
other origin), ``X-Content-Type-Options: nosniff`` and a cache policy: the page and the UI's own modules
are revalidated on every load (``no-cache`` with an ETag: a new release is seen at once), the vendored
files, whose names carry their version, are kept for a year.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import Request
from fastapi.responses import Response

from service.api.problems import problem

if TYPE_CHECKING:
    from fastapi import FastAPI

STATIC = Path(__file__).resolve().parent / "static"
"""The UI's files (shipped as package data)."""

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
    ".md": "text/markdown; charset=utf-8",
}

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self';"
    " font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
"""Only this origin: no inline script or style, no CDN, nothing framed."""

REVALIDATE = "no-cache"
IMMUTABLE = "public, max-age=31536000, immutable"


def _headers(cache: str, tag: str | None = None) -> dict[str, str]:
    headers = {
        "Content-Security-Policy": CSP,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": cache,
    }
    if tag is not None:
        headers["ETag"] = tag
    return headers


def _file(request: Request, path: Path, cache: str) -> Response:
    """A file's bytes with its content type, ETag and cache policy; 304 when the client has it."""
    data = path.read_bytes()
    tag = '"' + hashlib.sha256(data).hexdigest()[:32] + '"'
    headers = _headers(cache, tag)
    if tag in [t.strip() for t in request.headers.get("if-none-match", "").split(",")]:
        return Response(status_code=304, headers=headers)
    media = CONTENT_TYPES.get(path.suffix.lower(), "application/octet-stream")
    return Response(data, media_type=media, headers=headers)


def _resolve(relative: str) -> Path | None:
    """The file under STATIC that ``relative`` names, or None (outside it, hidden, missing, a folder)."""
    parts = [p for p in relative.split("/") if p]
    if not parts or any(p.startswith(".") or "\\" in p for p in parts):
        return None
    path = STATIC.joinpath(*parts).resolve()
    if not path.is_relative_to(STATIC) or not path.is_file():
        return None
    return path


def mount(app: FastAPI) -> None:
    """The UI's routes on ``app``: ``/`` the page, ``/static/...`` its files. Mounted after the API's routes
    (theirs match first); left out of the OpenAPI document."""

    @app.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
    async def index(request: Request) -> Response:
        return _file(request, STATIC / "index.html", REVALIDATE)

    @app.api_route("/static/{relative:path}", methods=["GET", "HEAD"], include_in_schema=False)
    async def static(request: Request, relative: str) -> Response:
        path = _resolve(relative)
        if path is None:
            response = problem("not-found", f"no file {relative!r} in the UI", instance=request.url.path)
            response.headers.update(_headers(REVALIDATE))
            return response
        cache = IMMUTABLE if path.parent.name == "vendor" else REVALIDATE
        return _file(request, path, cache)


__all__ = ["CSP", "STATIC", "mount"]
