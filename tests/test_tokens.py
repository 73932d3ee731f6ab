"""API tokens on the real stores (SQLite and PostgreSQL): made, shown once, kept as a hash only,
authenticated (ok, malformed, unknown, expired, revoked), scoped, ranked by role; last use kept out of
the log; the CLI's bad input one line, exit 2, nothing written."""

from __future__ import annotations

import asyncio
import hashlib
import re
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from events.auth import TOKENS_STREAM
from events.store import EventStore
from events.store.postgres import PostgresStore
from events.store.sqlite import SqliteStore
from service.app.tokens import (
    ROLES,
    AuthError,
    Principal,
    TokenError,
    TokenNotFound,
    authenticate,
    create_token,
    list_tokens,
    new_token_text,
    revoke_token,
)
from service.cli import main

TOKEN = re.compile(r"^slt_[0-9A-Za-z]{32}_[0-9A-Za-z]{6}$")


async def every_row(store: EventStore) -> str:
    """Every row of every table of the store's database, as text."""
    if isinstance(store, SqliteStore):
        conn = store._conn
        async with conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'") as cur:
            tables = [row[0] for row in await cur.fetchall()]
        texts = []
        for table in tables:
            async with conn.execute(f'SELECT * FROM "{table}"') as cur:
                texts.extend(repr(tuple(row)) for row in await cur.fetchall())
        return "\n".join(texts)
    assert isinstance(store, PostgresStore)
    rows = await store.pool.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    texts = []
    for row in rows:
        found = await store.pool.fetch(f'SELECT t::text AS t FROM "{row["tablename"]}" t')
        texts.extend(r["t"] for r in found)
    return "\n".join(texts)


async def test_a_token_is_kept_as_its_hash_only(store: EventStore) -> None:
    text, info = await create_token(
        store, name="ci", role="author", streams=("app",), expires_in=timedelta(days=90), actor="ops"
    )
    assert TOKEN.match(text), text
    assert info.name == "ci" and info.role == "author" and info.streams == ("app",) and info.created_by == "ops"
    assert info.expires_at is not None and info.expires_at - datetime.now(UTC) > timedelta(days=89)
    await authenticate(store, text)  # (the use table holds a row now too)
    rows = await every_row(store)
    assert hashlib.sha256(text.encode()).hexdigest() in rows
    secret = text[4:36]
    assert text not in rows and secret not in rows and secret[:16] not in rows
    (created,) = await store.read(TOKENS_STREAM)
    assert created.actor == "ops" and created.event.type == "token_created"
    listed = [t.public() for t in await list_tokens(store)]
    assert all("hash" not in t for t in listed) and text not in repr(listed)


async def test_authenticate_ok_malformed_unknown(store: EventStore) -> None:
    text, info = await create_token(store, name="deploy", role="deployer", streams=None, expires_in=None, actor="ops")
    principal = await authenticate(store, text)
    assert principal == Principal(name="deploy", role="deployer", streams=None, token_id=info.token_id)
    assert principal.actor == "token:deploy"
    assert (await authenticate(store, f"  {text}\n")).token_id == info.token_id
    last = text[-1]
    typo = text[:-1] + ("a" if last != "a" else "b")  # the checksum no longer matches
    swapped = text[:5] + text[6] + text[5] + text[7:]  # two characters of the body swapped
    bad = [typo, text[:-2], text + "x", "slx_" + text[4:], text.replace("slt_", "SLT_"), "Bearer " + text, "ä" * 43]
    if swapped != text:
        bad.append(swapped)
    for given in bad:
        with pytest.raises(AuthError) as caught:
            await authenticate(store, given)
        assert caught.value.reason == "malformed", given
    for given in ("", "   "):
        with pytest.raises(AuthError) as caught:
            await authenticate(store, given)
        assert caught.value.reason == "missing"
    with pytest.raises(AuthError) as caught:
        await authenticate(store, new_token_text())  # well formed, never made
    assert caught.value.reason == "unknown"


async def test_expired_and_revoked(store: EventStore) -> None:
    text, _ = await create_token(
        store, name="short", role="reader", streams=None, expires_in=timedelta(seconds=1.5), actor="ops"
    )
    assert (await authenticate(store, text)).name == "short"
    deadline = time.monotonic() + 15
    while True:
        try:
            await authenticate(store, text)
        except AuthError as exc:
            assert exc.reason == "expired"
            break
        assert time.monotonic() < deadline, "the token never expired"
        await asyncio.sleep(0.1)
    assert [t.public()["state"] for t in await list_tokens(store)] == ["expired"]

    kept, info = await create_token(store, name="gone", role="admin", streams=None, expires_in=None, actor="ops")
    await authenticate(store, kept)
    revoked = await revoke_token(store, "gone", actor="sec")
    assert revoked.revoked and revoked.revoked_by == "sec"
    with pytest.raises(AuthError) as caught:
        await authenticate(store, kept)
    assert caught.value.reason == "revoked"
    with pytest.raises(TokenError, match="already revoked"):
        await revoke_token(store, info.token_id, actor="sec")
    with pytest.raises(TokenNotFound):
        await revoke_token(store, "nobody", actor="sec")
    # the name is free again: a new token of that name is another token
    again, info2 = await create_token(store, name="gone", role="reader", streams=None, expires_in=None, actor="ops")
    assert info2.token_id != info.token_id and (await authenticate(store, again)).role == "reader"
    events = await store.read(TOKENS_STREAM)
    assert [e.event.type for e in events] == ["token_created", "token_created", "token_revoked", "token_created"]


async def test_names_are_unique_among_live_tokens(store: EventStore) -> None:
    await create_token(store, name="ci", role="author", streams=None, expires_in=None, actor="ops")
    with pytest.raises(TokenError, match="exists"):
        await create_token(store, name="ci", role="reader", streams=None, expires_in=None, actor="ops")
    for bad in ({"name": "bad name"}, {"role": "root"}, {"streams": ("db:x",)}, {"streams": ()}):
        fields: dict[str, Any] = {"name": "other", "role": "reader", "streams": None, **bad}
        with pytest.raises(TokenError):
            await create_token(store, expires_in=None, actor="ops", **fields)
    assert len(await store.read(TOKENS_STREAM)) == 1


async def test_scoped_streams_and_roles(store: EventStore) -> None:
    text, _ = await create_token(
        store, name="app-ci", role="author", streams=("app", "billing"), expires_in=None, actor="o"
    )
    scoped = await authenticate(store, text)
    assert scoped.streams == ("app", "billing")
    assert scoped.allows("reader", "app") and scoped.allows("author", "billing")
    assert not scoped.allows("author", "other") and not scoped.allows("reader", "schemalog:fleet")
    assert not scoped.allows("deployer", "app") and not scoped.allows("admin")
    assert scoped.allows("author")  # no one stream: the role alone
    everywhere = Principal(name="x", role="reader", streams=None, token_id="t")
    assert everywhere.allows("reader", "anything") and everywhere.allows("reader", "schemalog:fleet")
    for held in ROLES:
        principal = Principal(name="p", role=held, streams=None, token_id="t")
        for asked in ROLES:
            assert principal.allows(asked, "app") == (ROLES.index(held) >= ROLES.index(asked)), (held, asked)
    with pytest.raises(ValueError):
        everywhere.allows("root")


async def test_last_use_is_kept_out_of_the_log(store: EventStore) -> None:
    text, _ = await create_token(store, name="ci", role="reader", streams=None, expires_in=None, actor="ops")
    assert [t.last_used_at for t in await list_tokens(store)] == [None]
    positions = len(await store.read_all())
    before = datetime.now(UTC)
    await authenticate(store, text)
    (info,) = await list_tokens(store)
    assert info.last_used_at is not None and before - timedelta(seconds=1) <= info.last_used_at <= datetime.now(UTC)
    assert len(await store.read_all()) == positions
    assert await use_rows(store) == [info.token_id]


async def use_rows(store: EventStore) -> list[str]:
    sql = "SELECT token_id FROM schemalog_token_use"
    if isinstance(store, SqliteStore):
        async with store._conn.execute(sql) as cur:
            return [row[0] for row in await cur.fetchall()]
    assert isinstance(store, PostgresStore)
    return [row["token_id"] for row in await store.pool.fetch(sql)]


# --------------------------------------------------------------------------- the command line


def cli(capsys: pytest.CaptureFixture[str], store: str, *args: str) -> tuple[int, str, str]:
    try:
        code = main(["--store", store, *args])
    except SystemExit as exc:  # (argparse's own errors)
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def store_file(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'log.db'}"
    assert cli(capsys, url, "init")[0] == 0
    return url


def token_rows(url: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
        return list(conn.execute("SELECT version, type, data FROM schemalog_events WHERE stream = ?", (TOKENS_STREAM,)))


def test_create_prints_the_token_alone(store_file: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(
        capsys, store_file, "token", "create", "--name", "ci", "--role", "author", "--stream", "app", "--expires", "90d"
    )
    assert code == 0, err
    assert out.count("\n") == 1 and TOKEN.match(out.rstrip("\n")), out
    text = out.strip()
    code, listed, _ = cli(capsys, store_file, "token", "list", "--json")
    assert code == 0 and text not in listed and hashlib.sha256(text.encode()).hexdigest() not in listed
    assert '"name": "ci"' in listed and '"streams": [\n      "app"\n    ]' in listed
    code, plain, _ = cli(capsys, store_file, "token", "list")
    assert code == 0 and plain.startswith("ci ") and text not in plain
    code, out, _ = cli(capsys, store_file, "token", "revoke", "ci")
    assert code == 0 and out.startswith("revoked token ci")
    assert [row[1] for row in token_rows(store_file)] == ["token_created", "token_revoked"]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["create", "--name", "x", "--role", "root"], "invalid choice"),
        (["create", "--name", "bad name", "--role", "reader"], "token name"),
        (["create", "--name", "x", "--role", "reader", "--expires", "90"], "expiry"),
        (["create", "--name", "x", "--role", "reader", "--expires", "0d"], "more than 0"),
        (["create", "--name", "x", "--role", "reader", "--expires", "99999d"], "at most"),
        (["create", "--name", "x", "--role", "reader", "--stream", "db:eu"], "the service's own"),
        (["create", "--name", "ci", "--role", "reader"], "exists"),
        (["create", "--role", "reader"], "--name"),
        (["revoke", "nobody"], "no token named 'nobody'"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(
    store_file: str, capsys: pytest.CaptureFixture[str], args: list[str], says: str
) -> None:
    assert cli(capsys, store_file, "token", "create", "--name", "ci", "--role", "reader")[0] == 0
    before = token_rows(store_file)
    code, out, err = cli(capsys, store_file, "token", *args)
    assert code == 2, (out, err)
    assert says in err and err.count("\n") == 1, err
    assert out == ""
    assert token_rows(store_file) == before
