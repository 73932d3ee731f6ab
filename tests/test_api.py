"""The HTTP API against a real server: ``schemalog serve`` as a subprocess on SQLite and PostgreSQL.

Every wait is on what the server reports (its ``listening`` line, /healthz) with a bound."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]

TABLE = {
    "type": "table_created",
    "table": "users",
    "columns": [{"name": "id", "type": "bigint", "nullable": False}],
    "primary_key": ["id"],
}

COLUMN = {"name": "x", "type": "text"}


def cli(url: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "service.cli", "--store", url, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


class Server:
    def __init__(self, url: str):
        env = {**os.environ, "SCHEMALOG_LOG_FORMAT": "json", "SCHEMALOG_LOG_LEVEL": "info"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "serve", "--store", url, "--port", "0", "--poll-interval", "0.2"],
            cwd=ROOT,
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        self.lines: list[dict[str, Any]] = []
        self._seen = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()
        line = self.wait_for(lambda x: x.get("event") == "listening", 30)
        self.base = line["url"]

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            try:
                line = json.loads(raw)
            except ValueError:
                line = {"raw": raw.rstrip()}
            with self._seen:
                self.lines.append(line if isinstance(line, dict) else {"raw": raw})
                self._seen.notify_all()

    def wait_for(self, match: Any, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with self._seen:
            while True:
                for line in self.lines:
                    if match(line):
                        return line
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise AssertionError(f"server never reported it; its lines: {self.lines[-20:]}")
                self._seen.wait(left)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


@pytest.fixture(params=["sqlite", "postgresql"])
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Server, str]]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'log.db'}"
        yield from _serve(url)
    else:
        from tests.servers import postgres_database_url

        with postgres_database_url() as url:
            yield from _serve(url)


def _serve(url: str) -> Iterator[tuple[str, Server, str]]:
    cli(url, "init")
    token = cli(url, "token", "create", "--name", "ci", "--role", "admin")
    server = Server(url)
    try:
        yield url, server, token
    finally:
        server.stop()


def client(server: Server, token: str | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=server.base, headers=headers, timeout=30)


def test_round_trips(served: tuple[str, Server, str]) -> None:
    _url, server, token = served
    with client(server, token) as c:
        r = c.post("/v1/streams/app/changesets", json={"message": "users", "events": [TABLE]})
        assert r.status_code == 201, r.text
        assert r.json()["versions"] == [1] and r.headers["etag"] == '"1"'
        add = {"type": "column_added", "table": "users", "column": {"name": "email", "type": "text"}}
        r = c.post("/v1/streams/app/changesets", json={"events": [add]}, headers={"If-Match": '"1"'})
        assert r.status_code == 201, r.text
        events = c.get("/v1/streams/app/events").json()["events"]
        assert [e["type"] for e in events] == ["table_created", "column_added"]
        assert {e["actor"] for e in events} == {"token:ci"}
        page = c.get("/v1/streams/app/events", params={"limit": 1})
        assert page.headers["link"].endswith('rel="next"')
        rest = c.get("/v1/streams/app/events", params={"limit": 1, "after": page.json()["next_after"]}).json()
        assert [e["type"] for e in rest["events"]] == ["column_added"] and rest["next_after"] is None
        schema = c.get("/v1/streams/app/schema", params={"at": "1"}).json()
        assert schema["version"] == 1 and [c_["name"] for c_ in schema["tables"]["users"]["columns"]] == ["id"]
        sql = c.get("/v1/streams/app/schema", params={"format": "sql", "dialect": "sqlite"})
        assert "CREATE TABLE users" in sql.text and "email" in sql.text
        diff = c.get("/v1/streams/app/diff", params={"from": "2", "to": "1"}).json()
        assert diff["direction"] == "backward" and diff["changes"][0]["type"] == "column_dropped"
        blame = c.get("/v1/streams/app/blame/users").json()
        assert {line["name"] for line in blame["lines"]} >= {"id", "email"}
        assert c.post("/v1/streams/app/tags", json={"name": "release-1"}).status_code == 201
        assert c.get("/v1/streams/app/tags").json() == [{"name": "release-1", "version": 2}]
        r = c.post("/v1/streams/app/reverts", json={"target": "2"})
        assert r.status_code == 201, r.text
        assert c.get("/v1/streams/app/schema").json()["tables"]["users"]["columns"][-1]["name"] == "id"
        assert c.post("/v1/verify").json()["ok"] is True
        audit = c.get("/v1/audit", params={"actor": "token:ci"}).json()["events"]
        assert [e["type"] for e in audit] == ["table_created", "column_added", "tag_created", "column_dropped"]
    line = server.wait_for(lambda x: x.get("event") == "request" and x.get("route") == "/v1/audit", 10)
    assert line["principal"] == "ci" and line["status"] == 200 and "ms" in line
    assert token not in json.dumps(server.lines)


def test_if_match_and_idempotency(served: tuple[str, Server, str]) -> None:
    _url, server, token = served
    with client(server, token) as c:
        body = {"events": [TABLE]}
        first = c.post("/v1/streams/app/changesets", json=body, headers={"Idempotency-Key": "k1", "If-Match": '"0"'})
        again = c.post("/v1/streams/app/changesets", json=body, headers={"Idempotency-Key": "k1", "If-Match": '"0"'})
        assert first.status_code == again.status_code == 201
        assert first.json() == again.json() and again.headers["idempotent-replayed"] == "true"
        add = {"type": "column_added", "table": "users", "column": {"name": "a", "type": "text"}}
        stale = c.post("/v1/streams/app/changesets", json={"events": [add]}, headers={"If-Match": '"0"'})
        assert stale.status_code == 412
        assert stale.headers["content-type"] == "application/problem+json"
        assert stale.json()["current_version"] == 1 and stale.headers["etag"] == '"1"'
        assert len(c.get("/v1/streams/app/events").json()["events"]) == 1


def test_problem_documents_write_nothing(served: tuple[str, Server, str]) -> None:
    _url, server, token = served
    with client(server, token) as c:
        assert c.post("/v1/streams/app/changesets", json={"events": [TABLE]}).status_code == 201
        bad = [
            (
                {"events": [{**TABLE, "table": "teams"}, {"type": "column_added", "table": "nope", "column": COLUMN}]},
                1,
            ),
            ({"events": [{"type": "no_such_type"}]}, None),
            ({"events": []}, None),
            ({"events": [TABLE], "actor": "someone"}, None),
        ]
        for body, index in bad:
            r = c.post("/v1/streams/app/changesets", json=body)
            assert r.status_code == 422, r.text
            doc = r.json()
            assert r.headers["content-type"] == "application/problem+json"
            assert {"type", "title", "status", "detail"} <= set(doc)
            if index is not None:
                assert doc["index"] == index, doc
        r = c.post("/v1/streams/app/changesets", content=b"{not json", headers={"content-type": "application/json"})
        assert r.status_code == 422 and r.json()["type"].endswith("validation")
        r = c.post("/v1/streams/app/changesets", content=b" " * (1024 * 1024 + 1))
        assert r.status_code == 413
        assert c.get("/v1/streams/nope/events").status_code == 404
        assert c.get("/v1/streams/app/schema", params={"at": "no-such-tag"}).status_code == 422
        assert c.get("/v1/streams/app/events", params={"limit": 0}).status_code == 422
        assert len(c.get("/v1/streams/app/events").json()["events"]) == 1
        assert c.post("/v1/verify").json()["ok"] is True
    with client(server, None) as anonymous:
        r = anonymous.get("/v1/streams")
        assert r.status_code == 401 and "bearer" in r.headers["www-authenticate"].lower()
        assert anonymous.get("/healthz").status_code == 200
    with client(server, "slt_not_a_real_token") as wrong:
        assert wrong.get("/v1/streams").status_code == 401


def test_concurrent_clients_with_if_match(served: tuple[str, Server, str]) -> None:
    _url, server, token = served
    with client(server, token) as c:
        assert c.post("/v1/streams/app/changesets", json={"events": [TABLE]}).status_code == 201

    def writer(n: int) -> list[int]:
        mine = []
        with client(server, token) as c:
            for i in range(6):
                key = f"w{n}-{i}"
                event = {"type": "column_added", "table": "users", "column": {"name": f"c{n}_{i}", "type": "text"}}
                for _attempt in range(200):
                    head = c.get("/v1/streams/app/events", params={"limit": 1}).headers["etag"]
                    r = c.post(
                        "/v1/streams/app/changesets",
                        json={"events": [event]},
                        headers={"If-Match": head, "Idempotency-Key": key},
                    )
                    if r.status_code == 201:
                        mine.append(r.json()["first_version"])
                        break
                    assert r.status_code == 412, r.text
                else:
                    raise AssertionError("never appended")
        return mine

    with ThreadPoolExecutor(8) as pool:
        versions = [v for got in pool.map(writer, range(8)) for v in got]
    assert sorted(versions) == list(range(2, 2 + 48))
    with client(server, token) as c:
        events = c.get("/v1/streams/app/events", params={"limit": 1000}).json()["events"]
        assert [e["version"] for e in events] == list(range(1, 50))
        names = [e["column"]["name"] for e in events[1:]]
        assert len(set(names)) == 48
        assert c.post("/v1/verify").json()["ok"] is True


def _sse(server: Server, token: str, last_id: str | None, want: int) -> list[tuple[str, dict[str, Any]]]:
    """Read ``want`` events from the feed (then disconnect)."""
    headers = {"Authorization": f"Bearer {token}"}
    if last_id is not None:
        headers["Last-Event-ID"] = last_id
    got: list[tuple[str, dict[str, Any]]] = []
    with (
        httpx.Client(base_url=server.base, timeout=httpx.Timeout(30, read=20)) as c,
        c.stream("GET", "/v1/feed", headers=headers) as r,
    ):
        assert r.status_code == 200
        event_id, data, kind = None, None, None
        for line in r.iter_lines():
            if line.startswith("id:"):
                event_id = line[3:].strip()
            elif line.startswith("event:"):
                kind = line[6:].strip()
            elif line.startswith("data:"):
                data = json.loads(line[5:].strip())
            elif line == "" and data is not None:
                assert kind == "event"
                got.append((str(event_id), data))
                event_id, data, kind = None, None, None
                if len(got) == want:
                    break
    return got


def test_feed_resumes_with_last_event_id(served: tuple[str, Server, str]) -> None:
    _url, server, token = served
    with client(server, token) as c:

        def column(i: int) -> None:
            event = {"type": "column_added", "table": "users", "column": {"name": f"c{i}", "type": "text"}}
            assert c.post("/v1/streams/app/changesets", json={"events": [event]}).status_code == 201

        assert c.post("/v1/streams/app/changesets", json={"events": [TABLE]}).status_code == 201
        column(0)
        first = _sse(server, token, "0", 3)  # the token's event, the table, c0: then the client goes away
        assert [d["type"] for _, d in first] == ["token_created", "table_created", "column_added"]
        for i in (1, 2, 3):  # appended while no one listens
            column(i)
        with ThreadPoolExecutor(1) as pool:
            reading = pool.submit(_sse, server, token, first[-1][0], 5)
            for i in (4, 5):  # appended while it reads (live, or caught up: either way once)
                column(i)
            second = reading.result(timeout=30)
    positions = [int(i) for i, _ in first + second]
    assert positions == sorted(set(positions)), positions
    columns = [d["column"]["name"] for _, d in first + second if d["type"] == "column_added"]
    assert columns == [f"c{i}" for i in range(6)]


async def _hold_lease(url: str, name: str, *, release: bool) -> None:
    """A daemon replica's claim on a database's lease (or its release), as service/daemon/runner makes it."""
    from events.store import open_store
    from service.daemon.leases import open_leases

    store = await open_store(url)
    try:
        leases = await open_leases(store)
        try:
            if release:
                held = [r for r in await leases.rows() if r.resource == name and r.holder == "replica-1"]
                assert held, "no lease to release"
                from service.daemon.leases import Lease

                row = held[0]
                assert row.expires_at is not None
                await leases.release("replica-1", [Lease(name, "replica-1", row.epoch, row.expires_at)])
            else:
                assert [lease.resource for lease in await leases.claim("replica-1", [name], 1, 120.0)] == [name]
        finally:
            await leases.close()
    finally:
        await store.close()


def _target_columns(path: Path, table: str) -> list[str]:
    import sqlite3

    conn = sqlite3.connect(path)
    try:
        return [row[1] for row in conn.execute(f'PRAGMA table_info("{table}")')]
    finally:
        conn.close()


def test_fleet_register_plan_migrate_retire(served: tuple[str, Server, str], tmp_path: Path) -> None:
    import asyncio

    url, server, token = served
    target = tmp_path / "target.db"
    reader = cli(url, "token", "create", "--name", "viewer", "--role", "reader")
    with client(server, token) as c, client(server, reader) as r:
        assert c.post("/v1/streams/app/changesets", json={"events": [TABLE]}).status_code == 201
        database = {"name": "local", "url": f"sqlite:///{target}", "stream": "app"}
        assert r.post("/v1/databases", json=database).status_code == 403
        made = c.post("/v1/databases", json=database)
        assert made.status_code == 201, made.text
        assert made.json()["name"] == "local" and made.json()["target"] == "head"
        again = c.post("/v1/databases", json=database)
        assert again.status_code == 409 and again.headers["content-type"] == "application/problem+json"
        assert c.post("/v1/databases", json={**database, "name": "bad name!"}).status_code == 422

        plan = r.get("/v1/databases/local/plan")  # a reader may look; nothing is run or recorded
        assert plan.status_code == 200, plan.text
        assert plan.json()["status"] == "planned" and plan.json()["to_version"] == 1
        assert any("CREATE TABLE" in s.upper() and "users" in s for s in plan.json()["statements"])
        assert _target_columns(target, "users") == []
        assert c.get("/v1/databases/nope/plan").status_code == 404

        assert r.post("/v1/databases/local/migrations", json={}).status_code == 403
        done = c.post("/v1/databases/local/migrations", json={})  # no daemon holds it: carried out at once
        assert done.status_code == 200, done.text
        assert done.json()["mode"] == "now" and done.json()["outcome"]["status"] == "applied"
        assert _target_columns(target, "users") == ["id"]
        status = c.get("/v1/databases/local").json()
        assert (status["status"], status["marker"]) == ("Ready", 1)
        assert c.get("/v1/streams/db:local/events").json()["events"][-1]["actor"] == "token:ci"

        add = {"type": "column_added", "table": "users", "column": {"name": "email", "type": "text"}}
        assert c.post("/v1/streams/app/changesets", json={"events": [add]}).status_code == 201
        assert c.get("/v1/databases/local/plan", params={"to": "1"}).json()["statements"] == []
        assert len(c.get("/v1/databases/local/plan").json()["statements"]) == 1

        asyncio.run(_hold_lease(url, "local", release=False))  # a daemon replica now holds it
        queued = c.post("/v1/databases/local/migrations", json={"target": "2"})
        assert queued.status_code == 202, queued.text
        assert queued.json()["mode"] == "daemon" and queued.json()["status"]["owner"] == "replica-1"
        assert c.get("/v1/databases/local").json()["target"] == "2"  # recorded for the daemon
        assert _target_columns(target, "users") == ["id"]  # and not run here
        asyncio.run(_hold_lease(url, "local", release=True))
        done = c.post("/v1/databases/local/migrations", json={})
        assert done.status_code == 200 and done.json()["outcome"]["status"] == "applied", done.text
        assert _target_columns(target, "users") == ["id", "email"]

        assert r.delete("/v1/databases/local").status_code == 403
        retired = c.delete("/v1/databases/local")
        assert retired.status_code == 200 and retired.json()["retired"] is True, retired.text
        assert c.get("/v1/databases/local").status_code == 404
        assert c.delete("/v1/databases/local").status_code == 404
        assert c.post("/v1/databases/local/migrations", json={}).status_code == 404
        assert _target_columns(target, "users") == ["id", "email"]  # the database itself is left as it is
        assert c.post("/v1/verify").json()["ok"] is True
    roles = {
        (path, method): op["x-required-role"]
        for path, ops in httpx.get(server.base + "/openapi.json").json()["paths"].items()
        for method, op in ops.items()
    }
    assert roles[("/v1/databases/{name}/plan", "get")] == "reader"
    assert roles[("/v1/databases/{name}/migrations", "post")] == "deployer"
    assert roles[("/v1/databases", "post")] == "admin"
    assert roles[("/v1/databases/{name}", "delete")] == "admin"


def test_schema_json_is_show_json(served: tuple[str, Server, str]) -> None:
    """GET .../schema (served from the fold's plain state) is `show --format json` (the models' form), byte
    for byte once parsed, at a version, a tag and the head."""
    url, server, token = served
    with client(server, token) as c:
        generated = {"name": "twice", "type": "bigint", "generated": {"expression": "id * 2"}}
        events = [
            TABLE,
            {"type": "column_added", "table": "users", "column": generated},
            {"type": "index_created", "table": "users", "index": {"name": "users_twice", "columns": ["twice"]}},
        ]
        assert c.post("/v1/streams/app/changesets", json={"events": events}).status_code == 201
        assert c.post("/v1/streams/app/tags", json={"name": "one", "at": "1"}).status_code == 201
        for at in ("1", "one", "head"):
            r = c.get("/v1/streams/app/schema", params={"at": at})
            assert r.status_code == 200 and r.headers["content-type"] == "application/json", r.text
            shown = cli(url, "show", "--stream", "app", "--at", at, "--format", "json")
            assert r.json() == json.loads(shown), at
            assert list(r.json()["tables"]["users"]) == list(json.loads(shown)["tables"]["users"])  # key order
