"""One migrator process of the crash test: opens everything, says "ready", waits for "go", migrates.

The test kills it with SIGKILL at a random moment after "go".
"""

from __future__ import annotations

import asyncio
import sys

from events.store import open_store
from projections.schema import Point
from service.logging import configure
from service.reconciler.apply import MigrateRequest, migrate


async def run(store_url: str, target_url: str, version: int) -> str:
    store = await open_store(store_url)
    try:
        request = MigrateRequest(
            url=target_url, stream="app", actor="crash-test", to=Point(version=version), allow_destructive=True
        )
        sys.stdout.write("ready\n")
        sys.stdout.flush()
        sys.stdin.readline()
        outcome = await migrate(store, request)
        return f"{outcome.status} {outcome.detail or ''}"
    finally:
        await store.close()


if __name__ == "__main__":
    configure("warning")
    sys.stdout.write(asyncio.run(run(sys.argv[1], sys.argv[2], int(sys.argv[3]))) + "\n")
