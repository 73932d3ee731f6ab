"""What the web UI reads, against a real server: who am I, the timeline across streams (newest first, whole
changesets, filters, the cursor), one changeset's page (hashes, chain, outcomes, SQL per dialect,
revertible), approvals and the resumption of a halted rollout."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.test_api import TABLE, Server, cli, client


@pytest.fixture(params=["sqlite", "postgresql"])
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Server, dict[str, str]]]:
    if request.param == "sqlite":
        yield from _serve(f"sqlite:///{tmp_path / 'log.db'}")
    else:
        from tests.servers import postgres_database_url

        with postgres_database_url() as url:
            yield from _serve(url)


def _serve(url: str) -> Iterator[tuple[str, Server, dict[str, str]]]:
    cli(url, "init")
    tokens = {
        role: cli(url, "token", "create", "--name", f"t-{role}", "--role", role)
        for role in ("reader", "author", "deployer")
    }
    tokens["other"] = cli(url, "token", "create", "--name", "t-other", "--role", "deployer")
    server = Server(url)
    try:
        yield url, server, tokens
    finally:
        server.stop()


def _column(table: str, name: str) -> dict[str, object]:
    return {"type": "column_added", "table": table, "column": {"name": name, "type": "text"}}


def test_whoami_names_the_role_and_what_it_includes(served: tuple[str, Server, dict[str, str]]) -> None:
    _url, server, tokens = served
    with client(server, tokens["author"]) as c:
        me = c.get("/v1/whoami").json()
    assert me == {
        "name": "t-author",
        "actor": "token:t-author",
        "role": "author",
        "roles": ["reader", "author"],
        "streams": None,
    }
    with client(server, None) as c:
        r = c.get("/v1/whoami")
    assert r.status_code == 401 and r.headers["content-type"].startswith("application/problem+json")


def test_timeline_newest_first_whole_changesets_filters_and_cursor(served: tuple[str, Server, dict[str, str]]) -> None:
    _url, server, tokens = served
    with client(server, tokens["author"]) as c:
        orders = {**TABLE, "table": "orders"}
        assert c.post("/v1/streams/app/changesets", json={"message": "users", "events": [TABLE]}).status_code == 201
        assert c.post("/v1/streams/shop/changesets", json={"message": "orders", "events": [orders]}).status_code == 201
        two = {"message": "two columns", "events": [_column("users", "email"), _column("users", "name")]}
        assert c.post("/v1/streams/app/changesets", json=two).status_code == 201
        rename = {"type": "column_renamed", "table": "users", "column": "name", "new_name": "full_name"}
        assert c.post("/v1/streams/app/changesets", json={"message": "rename", "events": [rename]}).status_code == 201
        assert c.post("/v1/streams/app/tags", json={"name": "release-1"}).status_code == 201

        page = c.get("/v1/changesets", params={"stream": "app"}).json()
        messages = [cs["message"] for cs in page["changesets"]]
        assert messages == ["tag release-1 at version 4", "rename", "two columns", "users"]
        assert page["changesets"][1]["tags"] == ["release-1"]  # the tag names the rename's version
        two_columns = page["changesets"][2]
        assert two_columns["summary"] == ["column_added users.email text", "column_added users.name text"]
        assert two_columns["actor"] == "token:t-author" and two_columns["kind"] == "schema"
        assert (two_columns["first_version"], two_columns["last_version"]) == (2, 3)

        everything = c.get("/v1/changesets").json()["changesets"]
        assert {"orders", "users"} <= {cs["message"] for cs in everything}

        # a column filter follows the rename; a table filter selects whole changesets
        by_column = c.get("/v1/changesets", params={"table": "users", "column": "full_name"}).json()["changesets"]
        assert [cs["message"] for cs in by_column] == ["rename", "two columns"]
        assert len(by_column[1]["events"]) == 2  # whole, though only one event touches the column
        by_table = c.get("/v1/changesets", params={"table": "orders"}).json()["changesets"]
        assert [cs["message"] for cs in by_table] == ["orders"]

        first = c.get("/v1/changesets", params={"stream": "app", "limit": 2})
        assert first.headers["link"].endswith('rel="next"')
        rest = c.get(
            "/v1/changesets", params={"stream": "app", "limit": 2, "before": first.json()["next_before"]}
        ).json()
        assert [cs["message"] for cs in rest["changesets"]] == ["two columns", "users"] and rest["next_before"] is None

        r = c.get("/v1/changesets", params={"stream": "nope"})
        assert r.status_code == 404


def test_changeset_page_hashes_chain_sql_outcomes_and_revert(
    served: tuple[str, Server, dict[str, str]], tmp_path: Path
) -> None:
    url, server, tokens = served
    with client(server, tokens["author"]) as c:
        assert (
            c.post("/v1/streams/app/changesets", json={"events": [TABLE], "changeset_id": "cs-users"}).status_code
            == 201
        )
        body = {"events": [_column("users", "email")], "changeset_id": "cs-email", "message": "email"}
        assert c.post("/v1/streams/app/changesets", json=body).status_code == 201
    target = tmp_path / "target.db"
    cli(url, "db", "add", "local", "--url", f"sqlite:///{target}", "--stream", "app")
    with client(server, tokens["deployer"]) as c:
        r = c.post("/v1/databases/local/migrations", json={})  # no daemon runs: carried out at once
        assert r.status_code in (200, 201, 202), r.text
    with client(server, tokens["reader"]) as c:
        page = c.get("/v1/streams/app/changesets/cs-email").json()
        missing = c.get("/v1/streams/app/changesets/nope")
    assert missing.status_code == 404
    assert page["chain"]["ok"] is True and len(page["hashes"]) == 1 and len(page["hashes"][0]["hash"]) == 64
    assert (
        page["sql"]["postgresql"]
        and "ALTER TABLE" in page["sql"]["postgresql"][0]
        and "email" in page["sql"]["sqlite"][0]
    )
    assert page["revertible"] is True and page["revert_blocked"] is None
    assert [(o["database"], o["status"], o["to_version"]) for o in page["outcomes"]] == [
        ("local", "migration_applied", 2)
    ]
    with client(server, tokens["reader"]) as c:
        first = c.get("/v1/streams/app/changesets/cs-users").json()
    assert first["revertible"] is False and "v2 column_added uses table users" in (first["revert_blocked"] or "")


def test_approvals_and_resume_need_a_deployer(served: tuple[str, Server, dict[str, str]]) -> None:
    _url, server, tokens = served
    with client(server, tokens["author"]) as c:
        assert c.post("/v1/streams/app/changesets", json={"events": [TABLE], "changeset_id": "cs-1"}).status_code == 201
        assert c.post("/v1/streams/app/changesets/cs-1/approvals", json={}).status_code == 403
        assert c.post("/v1/streams/app/rollout/resume", json={}).status_code == 403
    with client(server, tokens["deployer"]) as c:
        r = c.post("/v1/streams/app/changesets/cs-1/approvals", json={"comment": "looks right"})
        assert r.status_code == 201, r.text
        assert r.json()["approvers"] == ["token:t-deployer"]
        again = c.post("/v1/streams/app/changesets/cs-1/approvals", json={})
        assert again.status_code == 422 and "already approved" in again.json()["detail"]
        r = c.post("/v1/streams/app/rollout/resume", json={})
        assert r.status_code == 422 and "no halted rollout" in r.json()["detail"]
    with client(server, tokens["reader"]) as c:
        listed = c.get("/v1/changesets", params={"stream": "app"}).json()["changesets"][0]
    assert [a["actor"] for a in listed["approvals"]] == ["token:t-deployer"]
    assert listed["approvals"][0]["comment"] == "looks right"


def test_a_database_held_for_approval_names_the_changeset(
    served: tuple[str, Server, dict[str, str]], tmp_path: Path
) -> None:
    url, server, tokens = served
    cli(url, "approvals", "require", "app", "1")
    with client(server, tokens["author"]) as c:
        assert c.post("/v1/streams/app/changesets", json={"events": [TABLE], "changeset_id": "cs-t"}).status_code == 201
    cli(url, "db", "add", "local", "--url", f"sqlite:///{tmp_path / 'target.db'}", "--stream", "app")
    with client(server, tokens["deployer"]) as c:
        refused = c.post("/v1/databases/local/migrations", json={})
        assert refused.status_code < 500, refused.text
        row = c.get("/v1/databases/local").json()
        assert row["awaiting_approval"] == [
            {"changeset_id": "cs-t", "have": 0, "need": 1, "first_version": 1, "last_version": 1}
        ], row
        assert c.get("/v1/databases").json()[0]["awaiting_approval"][0]["changeset_id"] == "cs-t"
        assert c.post("/v1/streams/app/changesets/cs-t/approvals", json={}).status_code == 201
        done = c.post("/v1/databases/local/migrations", json={})
        assert done.status_code < 300, done.text
        row = c.get("/v1/databases/local").json()
    assert row["marker"] == 1 and row["awaiting_approval"] == []
