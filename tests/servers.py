"""Real database servers for tests: a fresh, uniquely named database per test, dropped after.

Outside CI a missing server skips the test with the reason; with CI=true it fails.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

PG_HOST = os.environ.get("SCHEMALOG_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("SCHEMALOG_TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("SCHEMALOG_TEST_PG_USER", "postgres")
MARIADB_HOST = os.environ.get("SCHEMALOG_TEST_MARIADB_HOST", "127.0.0.1")
MARIADB_PORT = int(os.environ.get("SCHEMALOG_TEST_MARIADB_PORT", "3306"))
MARIADB_USER = os.environ.get("SCHEMALOG_TEST_MARIADB_USER", "root")

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def require_server(name: str, host: str, port: int) -> None:
    if _reachable(host, port):
        return
    reason = f"{name} is not reachable at {host}:{port}"
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: servers are required)")
    pytest.skip(reason)


def unique_name(prefix: str = "sl_test") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def _pg_admin(sql: str) -> None:
    import asyncio

    import asyncpg

    async def go() -> None:
        conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database="postgres")
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(go())


@contextmanager
def postgres_database_url() -> Iterator[str]:
    require_server("PostgreSQL", PG_HOST, PG_PORT)
    name = unique_name()
    _pg_admin(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _mariadb_admin(sql: str) -> None:
    import pymysql

    conn = pymysql.connect(host=MARIADB_HOST, port=MARIADB_PORT, user=MARIADB_USER, password="")
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
        conn.commit()
    finally:
        conn.close()


@contextmanager
def mariadb_database_url() -> Iterator[str]:
    require_server("MariaDB", MARIADB_HOST, MARIADB_PORT)
    name = unique_name()
    _mariadb_admin(f"CREATE DATABASE `{name}`")
    try:
        yield f"mysql://{MARIADB_USER}@{MARIADB_HOST}:{MARIADB_PORT}/{name}"
    finally:
        _mariadb_admin(f"DROP DATABASE IF EXISTS `{name}`")
