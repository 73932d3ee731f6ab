"""The authorization matrix: every operation of the live OpenAPI document x every role x every way a token
can fail (none, malformed, expired, revoked, scoped to another stream), against ``schemalog serve``.

The role each operation needs is read from the document (``x-required-role``); the request for each comes
from EXAMPLES, which must name every operation the document has (a new route cannot dodge the matrix).
Expected: 401 for no token or one that does not authenticate; 403 for a role below the one required, or a
stream outside the token's scope; neither when allowed (the answer may still be 404 or 422). A denied
request (401/403) leaves the log as it was.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog

from tests.test_api import Server, cli
from tests.test_api_schemathesis import LogState

log = structlog.get_logger("tests.authz")

ROLES = ("reader", "author", "deployer", "admin")

Request = dict[str, Any]


@dataclass(frozen=True)
class Example:
    """How to call one operation, and what a token scoped to another stream gets from it:
    ``stream``: 403 (the request names a stream, ``app``); ``hidden``: 403 or 404 (the request names a
    database of ``app``, which a token that cannot see the stream cannot see either); ``filtered``: allowed
    (the answer holds only what the token sees); ``whole``: 403 (it needs every stream)."""

    build: Callable[[int], Request]
    scope: str


def _column(n: int) -> Request:
    event = {"type": "column_added", "table": "users", "column": {"name": f"c{n}", "type": "text"}}
    return {"json": {"message": "authz", "events": [event]}}


EXAMPLES: dict[str, Example] = {
    "GET /v1/feed": Example(lambda n: {"params": {"after": 0}}, "filtered"),
    "POST /v1/verify": Example(lambda n: {}, "whole"),
    "GET /v1/audit": Example(lambda n: {"params": {"limit": 5}}, "filtered"),
    "GET /v1/streams": Example(lambda n: {}, "filtered"),
    "POST /v1/streams/{stream}/changesets": Example(_column, "stream"),
    "GET /v1/streams/{stream}/events": Example(lambda n: {"params": {"table": "users", "limit": 5}}, "stream"),
    "GET /v1/streams/{stream}/schema": Example(lambda n: {"params": {"at": "1", "format": "json"}}, "stream"),
    "GET /v1/streams/{stream}/diff": Example(lambda n: {"params": {"from": "1", "to": "head"}}, "stream"),
    "GET /v1/streams/{stream}/blame/{table}": Example(lambda n: {"path": {"table": "users"}}, "stream"),
    "GET /v1/streams/{stream}/tags": Example(lambda n: {}, "stream"),
    "POST /v1/streams/{stream}/tags": Example(lambda n: {"json": {"name": f"t{n}"}}, "stream"),
    "POST /v1/streams/{stream}/reverts": Example(lambda n: {"json": {"target": "2"}}, "stream"),
    "GET /v1/databases": Example(lambda n: {}, "filtered"),
    "POST /v1/databases": Example(
        lambda n: {"json": {"name": f"db{n}", "url": f"sqlite:///db{n}.db", "stream": "app"}}, "stream"
    ),
    "GET /v1/databases/{name}": Example(lambda n: {}, "hidden"),
    "PATCH /v1/databases/{name}": Example(lambda n: {"json": {"wave": n % 5}}, "hidden"),
    "PUT /v1/databases/{name}/target": Example(lambda n: {"json": {"target": "head"}}, "hidden"),
    "GET /v1/databases/{name}/plan": Example(lambda n: {}, "hidden"),
    "POST /v1/databases/{name}/migrations": Example(lambda n: {"json": {}}, "hidden"),
    "DELETE /v1/databases/{name}": Example(lambda n: {}, "hidden"),
    "GET /v1/whoami": Example(lambda n: {}, "filtered"),
    "GET /v1/changesets": Example(lambda n: {"params": {"table": "users", "limit": 5}}, "filtered"),
    "GET /v1/streams/{stream}/changesets/{changeset_id}": Example(lambda n: {}, "stream"),
    "POST /v1/streams/{stream}/changesets/{changeset_id}/approvals": Example(lambda n: {"json": {}}, "stream"),
    "POST /v1/streams/{stream}/rollout/resume": Example(lambda n: {"json": {}}, "stream"),
    "GET /v1/tokens": Example(lambda n: {}, "whole"),
    "POST /v1/tokens": Example(lambda n: {"json": {"name": f"made-{n}", "role": "reader"}}, "whole"),
    "DELETE /v1/tokens/{name}": Example(lambda n: {"path": {"name": f"made-{n - 1}"}}, "whole"),
}
"""Every operation that needs a token; ``{stream}`` is ``app``, ``{name}`` the database ``prod`` (of ``app``)."""

PATH_DEFAULTS = {"stream": "app", "name": "prod", "changeset_id": "cs-app-1"}

TABLE = {
    "type": "table_created",
    "table": "users",
    "columns": [{"name": "id", "type": "bigint", "nullable": False}],
    "primary_key": ["id"],
}


async def _tokens(url: str) -> dict[str, str]:
    """For each role: a valid token, one scoped to stream ``other``, one revoked, one about to expire."""
    from events.store import open_store
    from service.app.tokens import create_token, revoke_token

    store = await open_store(url, create=False)
    made: dict[str, str] = {}
    try:
        for role in ROLES:
            for kind, streams, expires in (
                ("valid", None, None),
                ("scoped", ("other",), None),
                ("revoked", None, None),
                ("expired", None, timedelta(seconds=1)),
            ):
                name = f"{role}-{kind}"
                made[name], _ = await create_token(
                    store, name=name, role=role, streams=streams, expires_in=expires, actor="authz-test"
                )
            await revoke_token(store, f"{role}-revoked", actor="authz-test")
    finally:
        await store.close()
    return made


@pytest.fixture(params=["sqlite", "postgresql"])
def matrix_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Server, dict[str, str], LogState]]:
    if request.param == "sqlite":
        yield from _serve(f"sqlite:///{tmp_path / 'log.db'}", tmp_path)
    else:
        from tests.servers import postgres_database_url

        with postgres_database_url() as url:
            yield from _serve(url, tmp_path)


def _serve(url: str, tmp_path: Path) -> Iterator[tuple[Server, dict[str, str], LogState]]:
    cli(url, "init")
    tokens = asyncio.run(_tokens(url))
    server = Server(url)
    state = LogState(url)
    try:
        with httpx.Client(base_url=server.base, timeout=30) as c:
            auth = {"Authorization": f"Bearer {tokens['admin-valid']}"}
            for stream, body in (
                ("app", {"events": [TABLE], "changeset_id": "cs-app-1"}),
                ("app", _column(0)["json"]),
                ("other", {"events": [TABLE]}),
            ):
                r = c.post(f"/v1/streams/{stream}/changesets", json=body, headers=auth)
                assert r.status_code == 201, r.text
        cli(url, "db", "add", "prod", "--url", f"sqlite:///{tmp_path / 'prod.db'}", "--stream", "app")
        yield server, tokens, state
    finally:
        state.close()
        server.stop()


def _malformed(token: str) -> str:
    """The token with its last checksum character changed: a typo the checksum catches."""
    last = "A" if token[-1] != "A" else "B"
    return token[:-1] + last


def _send(client: httpx.Client, method: str, path: str, request: Request, headers: dict[str, str]) -> int:
    url = path.format(**{**PATH_DEFAULTS, **request.get("path", {})})
    with client.stream(
        method, url, params=request.get("params"), json=request.get("json"), headers=headers
    ) as response:  # (the feed, when it answers 200, never ends: only its status is read)
        return response.status_code


def _wait_expired(client: httpx.Client, tokens: dict[str, str]) -> None:
    """Until every ``*-expired`` token is refused as expired (they were made to last one second)."""
    deadline = time.monotonic() + 20
    for role in ROLES:
        while True:
            r = client.get("/v1/streams", headers={"Authorization": f"Bearer {tokens[f'{role}-expired']}"})
            if r.status_code == 401 and r.json().get("reason") == "expired":
                break
            assert r.status_code == 200, r.text
            assert time.monotonic() < deadline, "the one-second tokens never expired"
            time.sleep(0.1)


def test_authorization_matrix(matrix_server: tuple[Server, dict[str, str], LogState]) -> None:
    server, tokens, state = matrix_server
    document = httpx.get(server.base + "/openapi.json", timeout=30).json()
    operations = [
        (method.upper(), path, op["x-required-role"])
        for path, item in document["paths"].items()
        for method, op in item.items()
        if isinstance(op, dict) and "responses" in op
    ]
    documented = {f"{m} {p}" for m, p, role in operations if role != "none"}
    missing = documented - set(EXAMPLES)
    assert not missing, f"operations of the document with no example in the matrix: {sorted(missing)}"
    assert not set(EXAMPLES) - documented, f"examples of no operation: {sorted(set(EXAMPLES) - documented)}"
    assert {role for _, _, role in operations} <= {"none", *ROLES}
    operations.sort(key=lambda o: o[0] == "DELETE")  # retiring the database: last

    counter = iter(range(1, 1_000_000))
    outcomes: list[tuple[str, str, int]] = []
    wrong: list[str] = []
    with httpx.Client(base_url=server.base, timeout=30) as client:
        _wait_expired(client, tokens)
        for method, path, required in operations:
            label = f"{method} {path}"
            if required == "none":  # /healthz: anyone, with any token or none
                for header in ({}, {"Authorization": "Bearer nonsense"}):
                    status = _send(client, method, path, {}, header)
                    outcomes.append((label, "open", status))
                    if status != 200:
                        wrong.append(f"{label} open: {status}")
                continue
            example = EXAMPLES[label]
            cases: list[tuple[str, dict[str, str], set[int] | None]] = [
                ("no token", {}, {401}),
                ("not bearer", {"Authorization": f"Basic {tokens['admin-valid']}"}, {401}),
            ]
            for role in ROLES:
                allowed = ROLES.index(role) >= ROLES.index(required)
                denied_scope = {"stream": {403}, "hidden": {403, 404}, "whole": {403}, "filtered": None}
                cases += [
                    (f"{role} malformed", {"Authorization": f"Bearer {_malformed(tokens[f'{role}-valid'])}"}, {401}),
                    (f"{role} expired", {"Authorization": f"Bearer {tokens[f'{role}-expired']}"}, {401}),
                    (f"{role} revoked", {"Authorization": f"Bearer {tokens[f'{role}-revoked']}"}, {401}),
                    (
                        f"{role} wrong scope",
                        {"Authorization": f"Bearer {tokens[f'{role}-scoped']}"},
                        denied_scope[example.scope] if allowed else {403},
                    ),
                    (f"{role}", {"Authorization": f"Bearer {tokens[f'{role}-valid']}"}, None if allowed else {403}),
                ]
            for who, headers, expected in cases:
                before = state.read()
                status = _send(client, method, path, example.build(next(counter)), headers)
                outcomes.append((label, who, status))
                if expected is None:
                    if status in (401, 403) or status >= 500:
                        wrong.append(f"{label} as {who}: {status}, expected allowed")
                elif status not in expected:
                    wrong.append(f"{label} as {who}: {status}, expected {sorted(expected)}")
                if status in (401, 403) and state.read() != before:
                    wrong.append(f"{label} as {who}: denied ({status}) but the log changed")
    tally: dict[int, int] = {}
    for _, _, status in outcomes:
        tally[status] = tally.get(status, 0) + 1
    log.info("authz_matrix", requests=len(outcomes), operations=len(operations), statuses=tally)
    assert not wrong, "\n".join(wrong)
    assert len({o[0] for o in outcomes}) == len(operations)
    allowed_ok = sum(1 for _, who, status in outcomes if who in ROLES and status < 300)
    assert allowed_ok >= len(documented), f"too few allowed requests succeeded ({allowed_ok}): check EXAMPLES"
