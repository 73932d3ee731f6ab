"""One writer process of the concurrency test: appends changesets, retrying on conflict."""

from __future__ import annotations

import asyncio
import sys

from events.catalog import ColumnAdded
from events.envelope import Changeset
from events.model import Column
from events.store import ConcurrencyError
from events.store.postgres import PostgresStore


async def write(url: str, worker: int, count: int, streams: list[str]) -> tuple[int, int]:
    store = await PostgresStore.open(url, min_size=1, max_size=1)
    conflicts = duplicates = 0
    versions = {s: 0 for s in streams}
    try:
        for i in range(count):
            stream = streams[(i + worker) % len(streams)]
            changeset_id = f"w{worker}-{i}"
            event = ColumnAdded(table="t", column=Column(name=f"c_{worker}_{i}", type="integer"))
            while True:
                changeset = Changeset(
                    stream=stream,
                    actor=f"writer-{worker}",
                    changeset_id=changeset_id,
                    expected_version=versions[stream],
                    events=(event,),
                )
                try:
                    result = await store.append(changeset)
                except ConcurrencyError as exc:
                    conflicts += 1
                    versions[stream] = exc.current
                    continue
                versions[stream] = result.last_version
                break
            if i % 50 == 0:  # a client retrying a request that had in fact succeeded
                again = await store.append(changeset)
                assert again.duplicate and again.first_version == result.first_version
                duplicates += 1
    finally:
        await store.close()
    return conflicts, duplicates


if __name__ == "__main__":
    url, worker, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    streams = sys.argv[4].split(",")
    conflicts, duplicates = asyncio.run(write(url, worker, count, streams))
    sys.stdout.write(f"{conflicts} {duplicates}\n")
