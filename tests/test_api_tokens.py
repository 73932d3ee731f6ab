"""/v1/tokens against a real server: an admin makes, lists and revokes tokens; the secret is in the answer
to its creation only (never listed, never in the server's log); everyone else is refused."""

from __future__ import annotations

import json
from pathlib import Path

from tests.test_api import Server, cli, client


def test_an_admin_makes_lists_and_revokes_tokens(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'log.db'}"
    cli(url, "init")
    admin = cli(url, "token", "create", "--name", "root", "--role", "admin")
    author = cli(url, "token", "create", "--name", "writer", "--role", "author")
    server = Server(url)
    try:
        with client(server, author) as c:
            assert c.get("/v1/tokens").status_code == 403
            assert c.post("/v1/tokens", json={"name": "x", "role": "reader"}).status_code == 403
        with client(server, admin) as c:
            made = c.post("/v1/tokens", json={"name": "ci", "role": "reader", "streams": ["app"], "expires": "90d"})
            assert made.status_code == 201, made.text
            assert made.headers["cache-control"] == "no-store"
            secret = made.json()["token"]
            assert made.json()["role"] == "reader" and made.json()["streams"] == ["app"]
            assert made.json()["expires_at"] is not None
            listed = c.get("/v1/tokens").json()
            assert [t["name"] for t in listed] == ["root", "writer", "ci"]
            assert secret not in json.dumps(listed) and all("hash" not in t for t in listed)
            bad = c.post("/v1/tokens", json={"name": "y", "role": "reader", "expires": "forever"})
            assert bad.status_code == 422 and bad.headers["content-type"].startswith("application/problem+json")
            taken = c.post("/v1/tokens", json={"name": "ci", "role": "reader"})
            assert taken.status_code == 422
        with client(server, secret) as c:
            assert c.get("/v1/whoami").json()["streams"] == ["app"]
        with client(server, admin) as c:
            r = c.delete("/v1/tokens/ci")
            assert r.status_code == 200 and r.json()["state"] == "revoked"
            assert c.delete("/v1/tokens/nobody").status_code == 404
            assert c.delete("/v1/tokens/ci").status_code == 422  # already revoked
        with client(server, secret) as c:
            assert c.get("/v1/whoami").status_code == 401
        assert secret not in json.dumps(server.lines)
    finally:
        server.stop()
