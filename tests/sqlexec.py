"""Plain SQL against a target URL, for tests (inserting rows, making drift by hand)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.pool import NullPool


def engine_for(url: str) -> sa.Engine:
    scheme = url.split(":", 1)[0].split("+", 1)[0]
    if scheme in ("mysql", "mariadb"):
        return sa.create_engine(urlsplit(url)._replace(scheme="mysql+pymysql").geturl(), poolclass=NullPool)
    if scheme in ("postgresql", "postgres"):
        return sa.create_engine(urlsplit(url)._replace(scheme="postgresql+psycopg").geturl(), poolclass=NullPool)
    return sa.create_engine(url, poolclass=NullPool)


def run_sql(url: str, *statements: str, params: dict[str, Any] | None = None) -> list[Any]:
    engine = engine_for(url)
    rows: list[Any] = []
    try:
        with engine.begin() as conn:
            for statement in statements:
                result = conn.execute(sa.text(statement), params or {})
                if result.returns_rows:
                    rows = list(result)
    finally:
        engine.dispose()
    return rows
