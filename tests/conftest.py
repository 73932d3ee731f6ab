from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from events.store import EventStore, open_store
from tests.servers import mariadb_database_url, postgres_database_url

FIXTURES = Path(os.environ.get("SCHEMALOG_FIXTURES", Path(__file__).resolve().parents[2] / "shared" / "fixtures"))


@pytest.fixture(autouse=True)
def _snapshot_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """Snapshot digests keyed by the tests' own key (workers inherit it), not by a file made in the home folder."""
    monkeypatch.setenv("SCHEMALOG_SNAPSHOT_KEY", "the tests' snapshot key")


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database (dropped after the test)."""
    with postgres_database_url() as url:
        yield url


@pytest.fixture
def mariadb_url() -> Iterator[str]:
    """A fresh MariaDB database (dropped after the test)."""
    with mariadb_database_url() as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'log.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The same test on every store backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'log.db'}"
    else:
        with postgres_database_url() as url:
            yield url


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[EventStore]:
    s = await open_store(store_url)
    await s.init()
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture
async def log_store(tmp_path: Path) -> AsyncIterator[EventStore]:
    """An empty event log in SQLite (the log the reconciler tests migrate from)."""
    store = await open_store(f"sqlite:///{tmp_path / 'log.db'}")
    await store.init()
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture(params=["postgresql", "mysql", "sqlite"])
def target_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty target database on every dialect."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'target.db'}"
    elif request.param == "postgresql":
        with postgres_database_url() as url:
            yield url
    else:
        with mariadb_database_url() as url:
            yield url
