"""The FastAPI application: one store for the server's lifetime, the change feed, the error handlers
(every error a problem document, never a traceback), a body size limit and one log line per request.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.api.auth import Forbidden, Unauthenticated
from service.api.problems import PROBLEM_TYPE, STATUS_KINDS, problem

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from events.log import EventLog
    from events.store import EventStore
    from service.api.feed import FeedHub

log = structlog.get_logger("schemalog.api")

MAX_BODY = 1024 * 1024
"""The largest request body accepted (413 past it)."""


@dataclass
class Services:
    """What the routes share: the store (its use serialised on SQLite, whose one connection holds one
    transaction at a time), the feed."""

    url: str
    _store: EventStore | None = None
    _lock: Any = None
    feed: FeedHub | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    _log: EventLog | None = None

    def event_log(self, store: EventStore) -> EventLog:
        """The server's one EventLog of its store, for appends: it keeps each stream's head state between
        requests (brought up to date from the log on each append, so a write made elsewhere is seen), so an
        append folds only what is new rather than the stream from its newest snapshot."""
        from events.log import EventLog
        from projections.schema import Projector

        if self._log is None or self._log.store is not store:
            self._log = EventLog(store, Projector(store))
        return self._log

    @contextlib.asynccontextmanager
    async def store(self) -> AsyncIterator[EventStore]:
        if self._store is None:
            raise RuntimeError("the store is not open")
        if self._lock is None:
            yield self._store
            return
        async with self._lock:
            yield self._store

    def appended(self) -> None:
        if self.feed is not None:
            self.feed.notify()


def create_app(
    store_url: str,
    *,
    poll_interval: float = 0.5,
    on_ready: Callable[[], None] | None = None,
    max_body: int = MAX_BODY,
) -> FastAPI:
    """The API over the store at ``store_url`` (opened at startup, closed at shutdown; it must exist)."""
    import asyncio

    services = Services(url=store_url)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        from events.store import open_store
        from service.api.feed import FeedHub

        store = await open_store(store_url, create=False)
        services._store = store
        is_postgres = not store_url.lower().startswith("sqlite")
        services._lock = None if is_postgres else asyncio.Lock()
        hub = FeedHub(services, poll_interval=poll_interval, listen_url=store_url if is_postgres else None)
        services.feed = hub
        try:
            await hub.start()
            if on_ready is not None:
                on_ready()
            yield
        finally:
            await hub.stop()
            services._store = None
            await store.close()
            log.info("store_closed")

    app = FastAPI(
        title="schemalog",
        version=_version(),
        summary="Event-sourced schema history: every schema change an event in an append-only log.",
        description="Every error is an RFC 9457 problem document (`application/problem+json`). Every route but"
        " `/healthz` and `/readyz` needs a bearer token (`schemalog token create`); each operation states the"
        " role it requires (`x-required-role`).",
        lifespan=lifespan,
    )
    app.state.services = services

    from service.api.routes import changesets, fleet, streams, system, tokens

    app.include_router(system.router)
    app.include_router(streams.router)
    app.include_router(changesets.router)
    app.include_router(fleet.router)
    app.include_router(tokens.router)
    from service.web import mount

    mount(app)  # after the API's routes: /v1 and /healthz match first
    _add_handlers(app)
    app.add_middleware(_BodyLimit, max_body=max_body)
    app.add_middleware(_RequestLog)  # outermost: it sees every answer
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("schemalog")
    except PackageNotFoundError:
        return "unknown"


# --------------------------------------------------------------------------- errors


def _index_of(field_name: str | None) -> int | None:
    """The event index a field path names (``events[2].table`` -> 2)."""
    if field_name and field_name.startswith("events["):
        number = field_name[len("events[") :].split("]", 1)[0]
        if number.isascii() and number.isdigit():
            return int(number)
    return None


def _add_handlers(app: FastAPI) -> None:
    from events.aggregate import InvalidChange
    from events.store import ChangesetIdConflict, ConcurrencyError, LeaseLost, StoreError
    from projections.schema import PointError
    from service.app.errors import BadRequest, NotFound

    def where(request: Request) -> str:
        return request.url.path

    def handle(kind: type[Exception]) -> Callable[[Callable[..., Response]], Callable[..., Response]]:
        def register(fn: Callable[[Request, Any], Response]) -> Callable[[Request, Any], Response]:
            async def handler(request: Request, exc: Any) -> Response:
                return fn(request, exc)

            app.add_exception_handler(kind, handler)
            return fn

        return register

    @handle(Unauthenticated)
    def _unauthenticated(request: Request, exc: Unauthenticated) -> Response:
        challenge = 'Bearer realm="schemalog"'
        if exc.reason != "missing":
            challenge += f', error="invalid_token", error_description="{exc.reason}"'
        return problem(
            "unauthenticated",
            str(exc),
            instance=where(request),
            reason=exc.reason,
            headers={"WWW-Authenticate": challenge},
        )

    @handle(Forbidden)
    def _forbidden(request: Request, exc: Forbidden) -> Response:
        return problem("forbidden", str(exc), instance=where(request), required_role=exc.required_role)

    @handle(InvalidChange)
    def _invalid(request: Request, exc: InvalidChange) -> Response:
        return problem("invalid-change", str(exc), instance=where(request), index=exc.index, event_type=exc.event_type)

    @handle(BadRequest)
    def _bad(request: Request, exc: BadRequest) -> Response:
        return problem("validation", str(exc), instance=where(request), field=exc.field, index=_index_of(exc.field))

    @handle(NotFound)
    def _not_found(request: Request, exc: NotFound) -> Response:
        return problem(
            "not-found", str(exc), instance=where(request), resource=exc.kind, name=exc.name, suggestion=exc.suggestion
        )

    @handle(PointError)
    def _point(request: Request, exc: PointError) -> Response:
        return problem("bad-point", str(exc), instance=where(request))

    @handle(ConcurrencyError)
    def _conflict(request: Request, exc: ConcurrencyError) -> Response:
        if getattr(request.state, "if_match", None) is not None:  # the client's precondition: 412
            return problem(
                "precondition-failed",
                f"{exc}; read the stream again and retry",
                instance=where(request),
                current_version=exc.current,
                headers={"ETag": etag(exc.current)},
            )
        return problem("conflict", str(exc), instance=where(request), current_version=exc.current)

    @handle(ChangesetIdConflict)
    def _id_conflict(request: Request, exc: ChangesetIdConflict) -> Response:
        return problem("changeset-id-conflict", str(exc), instance=where(request))

    @handle(LeaseLost)
    def _lease(request: Request, exc: LeaseLost) -> Response:
        return problem("conflict", str(exc), instance=where(request))

    @handle(StoreError)
    def _store(request: Request, exc: StoreError) -> Response:
        log.warning("store_error", error=str(exc), route=_route_of(request.scope))
        return problem("unavailable", str(exc), instance=where(request))

    @handle(RequestValidationError)
    def _validation(request: Request, exc: RequestValidationError) -> Response:
        errors = [
            {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
            for e in exc.errors()
        ]
        place = ".".join(errors[0]["loc"]) if errors else ""
        message = str(errors[0]["msg"]) if errors else "invalid request"
        return problem(
            "validation", f"{place}: {message}" if place else message, instance=where(request), errors=errors
        )

    @handle(StarletteHTTPException)
    def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 400 and isinstance(exc.__cause__, ValueError):
            # FastAPI's "error parsing the body" (bytes that are not UTF-8 JSON): a malformed body is 422
            # here, as on the changesets route, and as the document says
            return problem("validation", f"malformed JSON body: {exc.__cause__}", instance=where(request))
        kind = STATUS_KINDS.get(exc.status_code, "bad-request")
        detail: str = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        return problem(kind, detail, instance=where(request), status=exc.status_code, headers=dict(exc.headers or {}))


def etag(version: int) -> str:
    """A stream's entity tag: its head version."""
    return f'"{version}"'


# --------------------------------------------------------------------------- middleware


def _route_of(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return str(path) if path else "(unmatched)"


class _RequestLog:
    """One structured line per request: principal, method, route (its template), status, ms. Never a
    header, so never a token."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500
        started = False

        async def sending(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status, started = int(message["status"]), True
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception as exc:  # a bug: its traceback in the log, a problem document to the client
            log.error("internal_error", route=_route_of(scope), method=scope.get("method"), exc_info=exc)
            if status == 500 and not started:
                await problem(
                    "internal",
                    "an internal error (a bug): the server's log has the details",
                    instance=scope.get("path"),
                )(scope, receive, sending)
        finally:
            state = scope.get("state") or {}
            principal = state.get("principal")
            log.info(
                "request",
                principal=getattr(principal, "name", None),
                method=scope.get("method"),
                route=_route_of(scope),
                status=status,
                ms=round((time.perf_counter() - start) * 1000, 2),
            )


class _TooLarge(Exception):
    pass


class _BodyLimit:
    """413 for a body past ``max_body`` bytes: at once by its Content-Length, else as it is read."""

    def __init__(self, app: ASGIApp, max_body: int):
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared < 0 or declared > self.max_body:
                    await self._refuse(scope, receive, send)
                    return
        seen = 0
        started = False

        async def receiving() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    raise _TooLarge
            return message

        async def sending(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receiving, sending)
        except _TooLarge:
            if not started:
                await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem(
            "body-too-large", f"the request body is larger than {self.max_body} bytes", instance=scope.get("path")
        )
        await response(scope, receive, send)


# --------------------------------------------------------------------------- the OpenAPI document


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document, with every 4xx/5xx answer a problem document and FastAPI's own 422 schema
    replaced by it."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    from service.api.problems import Problem

    document = get_openapi(
        title=app.title,
        version=app.version,
        summary=app.summary,
        description=app.description,
        routes=app.routes,
    )
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    from service.api.routes.streams import ChangesetBody  # read as text by its route: its schema put here

    body = ChangesetBody.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(body.pop("$defs", {}))
    schemas["ChangesetBody"] = body
    problem_content = {PROBLEM_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for path_item in document.get("paths", {}).values():
        for operation in path_item.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            for code, response in operation["responses"].items():
                if str(code)[0] in "45":
                    response["content"] = problem_content
    app.openapi_schema = document
    return document


__all__ = ["MAX_BODY", "Services", "create_app", "etag"]
