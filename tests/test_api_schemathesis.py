"""schemathesis against the live OpenAPI document of ``schemalog serve`` (a subprocess on a real store).

Every operation of the document, with cases generated from it (valid data; valid data with the path
naming the seeded stream, table or database; invalid data), sent with an admin token to a store seeded
with real history (a stream with tables, a tag, a registered database). hypothesis is derandomized, so
every run sends the same cases; over 2,000 in all (the total is asserted). Each answer must be no 5xx
and conform to the document (status code, content type, headers, body schema); each 4xx answer must
leave the log exactly as it was: the events table (count, last position) and every stream's head
(version, hash), read from the store's own database before and after the call.
"""

from __future__ import annotations

import asyncio
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
import structlog

from tests.test_api import Server, cli

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

RANDOM_CASES = 60
"""Examples per operation from the document as it is (valid data; most path names match nothing)."""
REAL_CASES = 50
"""Examples per operation with a path naming the seeded stream, table or database."""
NEGATIVE_CASES = 40
"""Examples per operation with invalid data (a parameter or body the document refuses)."""

REAL_PATH = {"stream": "app", "table": "users", "name": "prod"}
REAL_QUERY = {
    "/v1/streams/{stream}/schema": {"at": "release-1"},
    "/v1/streams/{stream}/diff": {"from": "1", "to": "head"},
    "/v1/streams/{stream}/blame/{table}": {"at": "2"},
}
"""Points of the seeded stream, for the real-path cases (the other parameters generated)."""

TOTAL_AT_LEAST = 2000

log = structlog.get_logger("tests.schemathesis")

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]

LOG_STATE_SQL = (
    "SELECT count(*), coalesce(max(position), 0) FROM schemalog_events",
    "SELECT stream, version, hash FROM schemalog_streams ORDER BY stream",
)

SEED = [
    {
        "message": "users",
        "events": [
            {
                "type": "table_created",
                "table": "users",
                "columns": [
                    {"name": "id", "type": "bigint", "nullable": False, "identity": True},
                    {"name": "email", "type": "varchar(255)", "nullable": False},
                ],
                "primary_key": ["id"],
            },
            {
                "type": "index_created",
                "table": "users",
                "index": {"name": "users_email_key", "columns": ["email"], "unique": True},
            },
        ],
    },
    {
        "message": "teams",
        "events": [
            {
                "type": "table_created",
                "table": "teams",
                "columns": [{"name": "id", "type": "bigint", "nullable": False}],
                "primary_key": ["id"],
            },
            {"type": "column_added", "table": "users", "column": {"name": "team_id", "type": "bigint"}},
        ],
    },
    {
        "message": "a name",
        "events": [{"type": "column_added", "table": "users", "column": {"name": "n", "type": "text"}}],
    },
]


class LogState:
    """The log as its store's database holds it: (event count, last position, every stream's head)."""

    def __init__(self, url: str):
        self.url = url
        if url.startswith("sqlite"):
            self._db = sqlite3.connect(url.split(":///", 1)[1], timeout=30)
            self._loop: asyncio.AbstractEventLoop | None = None
        else:
            import asyncpg

            self._loop = asyncio.new_event_loop()
            self._pg = self._loop.run_until_complete(asyncpg.connect(url))

    def read(self) -> tuple[Any, ...]:
        if self._loop is None:
            self._db.rollback()  # a fresh snapshot
            count = self._db.execute(LOG_STATE_SQL[0]).fetchone()
            heads = self._db.execute(LOG_STATE_SQL[1]).fetchall()
            return (tuple(count), tuple(map(tuple, heads)))

        async def go() -> tuple[Any, ...]:
            count = await self._pg.fetchrow(LOG_STATE_SQL[0])
            heads = await self._pg.fetch(LOG_STATE_SQL[1])
            return (tuple(count), tuple(tuple(r) for r in heads))

        return self._loop.run_until_complete(go())

    def close(self) -> None:
        if self._loop is None:
            self._db.close()
        else:
            self._loop.run_until_complete(self._pg.close())
            self._loop.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def live(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Server, str, LogState]]:
    if request.param == "sqlite":
        yield from _live(f"sqlite:///{tmp_path / 'log.db'}", tmp_path)
    else:
        from tests.servers import postgres_database_url

        with postgres_database_url() as url:
            yield from _live(url, tmp_path)


def _live(url: str, tmp_path: Path) -> Iterator[tuple[Server, str, LogState]]:
    cli(url, "init")
    token = cli(url, "token", "create", "--name", "fuzz", "--role", "admin")
    server = Server(url)
    state = LogState(url)
    try:
        with httpx.Client(base_url=server.base, headers={"Authorization": f"Bearer {token}"}, timeout=30) as c:
            for body in SEED:
                r = c.post("/v1/streams/app/changesets", json=body)
                assert r.status_code == 201, r.text
            assert c.post("/v1/streams/app/tags", json={"name": "release-1"}).status_code == 201
        cli(url, "db", "add", "prod", "--url", f"sqlite:///{tmp_path / 'prod.db'}", "--stream", "app")
        yield server, token, state
    finally:
        state.close()
        server.stop()


def test_schemathesis_every_operation(live: tuple[Server, str, LogState]) -> None:
    server, token, state = live
    schema = schemathesis.openapi.from_url(server.base + "/openapi.json", timeout=30)
    auth = {"Authorization": f"Bearer {token}"}
    session = requests.Session()
    counts: dict[str, int] = {}
    statuses: dict[int, int] = {}
    rejected_unchanged = 0
    started = time.monotonic()

    def run_case(case: Any) -> None:
        nonlocal rejected_unchanged
        label = f"{case.method} {case.path}"
        counts[label] = counts.get(label, 0) + 1
        _keep_targets_local(case, server)
        before = state.read()
        if case.path == "/v1/feed":
            response = _call_feed(case, server.base, auth, session)
        else:
            response = case.call(base_url=server.base, session=session, headers=auth, timeout=30)
        case.validate_response(response, checks=CHECKS, headers=auth)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        if 400 <= response.status_code < 500:
            after = state.read()
            assert after == before, f"{label} answered {response.status_code} and the log changed: {case!r}"
            rejected_unchanged += 1

    operations = [result.ok() for result in schema.get_all_operations()]
    operations.sort(key=lambda op: op.method.upper() == "DELETE")  # retiring the seeded database: last
    for operation in operations:
        mark = time.monotonic()
        label = f"{operation.method.upper()} {operation.path}"
        real = {k: v for k, v in REAL_PATH.items() if "{" + k + "}" in operation.path}
        runs = [(GenerationMode.POSITIVE, None, RANDOM_CASES)]
        if real:  # the seeded stream, table and database, so that reads find real data
            runs.append((GenerationMode.POSITIVE, real, REAL_CASES))
        if _has_inputs(operation):  # nothing to make invalid in /healthz, /v1/verify, ...
            runs.append((GenerationMode.NEGATIVE, None, NEGATIVE_CASES))
        for mode, path, examples in runs:
            query = REAL_QUERY.get(operation.path) if path else None
            strategy = operation.as_strategy(generation_mode=mode, path_parameters=path, query=query)
            _run(strategy, run_case, examples)
        log.info("operation_fuzzed", operation=label, cases=counts.get(label), s=round(time.monotonic() - mark, 1))

    total = sum(counts.values())
    seconds = time.monotonic() - started
    log.info(
        "schemathesis",
        cases=total,
        operations=len(counts),
        s=round(seconds, 1),
        statuses=statuses,
        rejected_unchanged=rejected_unchanged,
    )
    documented = {f"{op.method.upper()} {op.path}" for op in operations}
    assert set(counts) == documented, documented - set(counts)
    assert total >= TOTAL_AT_LEAST, counts


def _run(strategy: Any, body: Callable[[Any], None], examples: int) -> None:
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def test(case: Any) -> None:
        body(case)

    test()


def _call_feed(case: Any, base: str, auth: dict[str, str], session: requests.Session) -> requests.Response:
    """The feed never ends when it answers 200: read its head, check it, and hang up."""
    kwargs = case.as_transport_kwargs(base_url=base, headers=auth)
    kwargs.pop("stream", None)
    response = session.request(**kwargs, stream=True, timeout=30)
    if response.status_code == 200:
        assert response.headers["content-type"].startswith("text/event-stream")
        response.close()
        response._content = b""  # what was read: nothing (the stream is endless)
    else:
        response.content  # noqa: B018
    return response


def _keep_targets_local(case: Any, server: Any) -> None:
    """A generated database URL the server would accept becomes a SQLite file of the test's: the plan and
    migrate routes connect to a registered database, and only loopback may ever be a target."""
    from events.fleet import check_database_url

    body = getattr(case, "body", None)
    if not (case.path.startswith("/v1/databases") and isinstance(body, dict) and isinstance(body.get("url"), str)):
        return
    try:
        check_database_url(body["url"])
    except ValueError:
        return  # refused by the server as it is: nothing to keep local
    body["url"] = f"sqlite:///{Path(tempfile.gettempdir()) / ('sl_fuzz_' + uuid.uuid4().hex[:12] + '.db')}"


def _has_inputs(operation: Any) -> bool:
    definition = operation.definition.raw
    return bool(definition.get("parameters") or definition.get("requestBody"))
