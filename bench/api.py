"""The HTTP API (``schemalog serve``) beside the same work done in process, on the PostgreSQL store.

Three measures, each in one run against a real server (a ``schemalog serve`` subprocess on 127.0.0.1,
an admin token made by ``schemalog token create``) and a fresh PostgreSQL database:

- appends: changesets of 100 events (a table created, then columns added), POSTed with If-Match to
  /v1/streams/{stream}/changesets by an httpx keep-alive client, one client and 4 at once, as events/s,
  beside the store's own append (EventLog.append in this process, one EventLog reused) of the same
  changesets into other streams of the same database, and beside the same from each one's JSON body
  (parsed and validated as the server does); in rounds, the three taking turns. Goal: HTTP at least
  0.5x of EventLog.append.
- point schema: a valid stream of N events (bench/append.py's bulk loader; 50 tables, then comment
  changes), snapshots taken by one fold to its head as a running service takes them; then the schema as
  JSON at random versions: GET /v1/streams/bench/schema?at=V over HTTP (keep-alive), beside in process
  ``public_schema_at(...).public()`` dumped by orjson (what the route serves) and the models' form
  ``schema_at(...).public()`` dumped by json (what it served before). p50 and p99. Goals: p99 under
  30 ms over HTTP, under 5 ms in process.
- change feed: 100 SSE subscribers of /v1/feed; one-event changesets appended in process (the store's
  NOTIFY wakes the server's feed) a fixed interval apart; the latency from just before each append to
  its delivery at each subscriber, p50/p99/max. Goal: p99 under 500 ms. (The subscribers share this one
  process: their own parsing is in the figure.)

Every wait is bounded; the server is stopped and the databases dropped at the end, whatever happened.

    env -u PYTHONDONTWRITEBYTECODE .venv/bin/python bench/api.py [--size 100000] [--repeat 300]
        [--streams 50] [--per-stream 200] [--rounds 5] [--subscribers 100] [--feed-events 50]
        [--only appends,schema,feed]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
import structlog

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.append import (  # noqa: E402  (the bulk loader of valid histories, reused)
    LATENCY_STREAM,
    admin_url,
    build_postgres,
    changesets,
    drop_database,
    fresh_database,
    log_progress,
    percentile,
)
from events.catalog import ColumnAltered, to_dict  # noqa: E402
from events.envelope import Changeset, new_changeset_id  # noqa: E402
from events.log import EventLog  # noqa: E402
from events.store import open_store  # noqa: E402
from projections.schema import SNAPSHOT_KEY_ENV, Projector  # noqa: E402

APPEND_GOAL = 0.5
HTTP_P99_GOAL_MS = 30.0
IN_PROCESS_P99_GOAL_MS = 5.0
FEED_P99_GOAL_MS = 500.0
START_TIMEOUT = 60.0


# --------------------------------------------------------------------------- the server


class Server:
    """``schemalog serve`` on a free port of 127.0.0.1; its JSON log lines read by a thread."""

    def __init__(self, url: str):
        env = {**os.environ, "SCHEMALOG_LOG_FORMAT": "json", "SCHEMALOG_LOG_LEVEL": "info"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "serve", "--store", url, "--port", "0"],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.lines: list[dict[str, Any]] = []
        self._seen = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()
        self.base = str(self.wait_for(lambda x: x.get("event") == "listening", START_TIMEOUT)["url"])

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            if '"event": "request"' in raw or '"event":"request"' in raw:
                continue  # one a request: not parsed here, where the clients measured run
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
                    raise RuntimeError(f"the server never reported it; its last lines: {self.lines[-10:]}")
                self._seen.wait(left)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def make_token(url: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "service.cli", "--store", url, "token", "create", "--name", "bench", "--role", "admin"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if done.returncode != 0:
        raise RuntimeError(f"token create failed: {done.stderr.strip()}")
    return done.stdout.strip()


@contextmanager
def serving(url: str) -> Iterator[tuple[Server, str]]:
    token = make_token(url)
    server = Server(url)
    try:
        yield server, token
    finally:
        server.stop()


def http_client(server: Server, token: str, **kwargs: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=server.base, headers={"Authorization": f"Bearer {token}"}, timeout=httpx.Timeout(60.0), **kwargs
    )


# --------------------------------------------------------------------------- appends


def renamed(work: list[Changeset], prefix: str) -> list[Changeset]:
    """The same changesets into other streams, each with a new id (an id already recorded is not appended again)."""
    return [
        cs.model_copy(update={"stream": f"{prefix}-{cs.stream}", "changeset_id": new_changeset_id()}) for cs in work
    ]


def body_of(cs: Changeset, *, with_id: bool = False) -> bytes:
    data: dict[str, Any] = {"message": cs.message, "events": [to_dict(e) for e in cs.events]}
    if with_id:
        data["changeset_id"] = cs.changeset_id
    return orjson.dumps(data)


async def appends_in_process(url: str, work: list[Changeset], clients: int, *, from_json: bool = False) -> float:
    """Seconds for EventLog.append of every changeset, ``clients`` at once (a stream each at a time);
    ``from_json``: each read from its JSON body first (parsed and validated, as the server does)."""
    from service.app.streams import changeset_from_data

    store = await open_store(url)
    try:
        log = EventLog(store, Projector(store))
        by_stream: dict[str, list[tuple[Changeset, bytes]]] = {}
        for cs in work:
            by_stream.setdefault(cs.stream, []).append((cs, body_of(cs) if from_json else b""))
        queue = list(by_stream.values())

        async def worker() -> None:
            while queue:
                for cs, body in queue.pop():
                    if from_json:
                        data = orjson.loads(body)
                        data["changeset_id"] = cs.changeset_id
                        parsed = changeset_from_data(data, actor="bench", stream=cs.stream)
                        cs = parsed.model_copy(update={"expected_version": cs.expected_version})
                    if (await log.append(cs)).duplicate:
                        raise RuntimeError(f"changeset {cs.changeset_id} was already recorded: nothing appended")

        started = time.perf_counter()
        await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(clients))), 600)
        return time.perf_counter() - started
    finally:
        await store.close()


async def appends_over_http(server: Server, token: str, work: list[Changeset], clients: int) -> float:
    """Seconds for POSTing every changeset (If-Match: its expected version), ``clients`` at once."""
    bodies: dict[str, list[tuple[int, bytes]]] = {}
    for cs in work:
        bodies.setdefault(cs.stream, []).append((cs.expected_version or 0, body_of(cs, with_id=True)))
    queue = list(bodies.items())
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with http_client(server, token, limits=limits) as client:

        async def worker() -> None:
            while queue:
                stream, items = queue.pop()
                for expected, body in items:
                    r = await client.post(
                        f"/v1/streams/{stream}/changesets",
                        content=body,
                        headers={"Content-Type": "application/json", "If-Match": f'"{expected}"'},
                    )
                    if r.status_code != 201 or "idempotent-replayed" in r.headers:
                        raise RuntimeError(f"append over HTTP answered {r.status_code}: {r.text[:300]}")

        started = time.perf_counter()
        await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(clients))), 600)
        return time.perf_counter() - started


async def bench_appends(args: argparse.Namespace) -> list[str]:
    name = await fresh_database("api")
    rows = []
    try:
        url = admin_url(name)
        store = await open_store(url)
        await store.init()
        await store.close()
        work = changesets(args.streams, args.per_stream, 100)
        events = sum(len(cs.events) for cs in work)
        with serving(url) as (server, token):
            warm = work[: min(8, len(work))]  # untimed: imports, validators, connections, on both sides
            await appends_in_process(url, renamed(warm, "warm-local"), 1, from_json=True)
            await appends_over_http(server, token, renamed(warm, "warm-http"), 1)
            # in rounds, the contenders taking turns in each: a machine whose load moves during the run
            # moves all three alike
            streams = sorted({cs.stream for cs in work})
            rounds = [[cs for cs in work if cs.stream in set(streams[k :: args.rounds])] for k in range(args.rounds)]
            for clients in (1, 4):
                log_progress(f"appends: {events:,} events, {clients} client(s), {args.rounds} rounds")
                local_s = json_s = remote_s = 0.0
                for k, part in enumerate(rounds):
                    local_s += await appends_in_process(url, renamed(part, f"local{clients}-{k}"), clients)
                    json_s += await appends_in_process(
                        url, renamed(part, f"json{clients}-{k}"), clients, from_json=True
                    )
                    remote_s += await appends_over_http(server, token, renamed(part, f"http{clients}-{k}"), clients)
                ratio = local_s / remote_s
                verdict = "met" if ratio >= APPEND_GOAL else "NOT met"
                rows.append(
                    f"| {clients} | {events:,} | {events / local_s:,.0f} | {events / json_s:,.0f}"
                    f" | {events / remote_s:,.0f} | {ratio:.2f}x | >= {APPEND_GOAL}x: {verdict} |"
                )
    finally:
        await drop_database(name)
    return [
        "| clients | events (100 a changeset) | in process: EventLog.append, events/s"
        " | in process from the JSON body (parse, validate, append), events/s | over HTTP, events/s"
        " | HTTP / EventLog.append | goal |",
        "|---:|---:|---:|---:|---:|---:|---|",
        *rows,
    ]


# --------------------------------------------------------------------------- point schema


def summary(values: list[float]) -> tuple[float, float, float]:
    return percentile(values, 0.5), percentile(values, 0.99), max(values)


async def bench_schema(args: argparse.Namespace) -> list[str]:
    from service.app import streams as app_streams

    names: list[str] = []
    rows = []
    try:
        log_progress(f"point schema: loading a valid stream of {args.size:,} events")
        store, raw, _peer = await build_postgres(args.size, 100, False, names)
        await raw.close()
        url = admin_url(names[0])
        try:
            started = time.perf_counter()
            await Projector(store).state_at_version(LATENCY_STREAM, args.size)  # the snapshots a service takes
            log_progress(f"point schema: snapshots taken in {time.perf_counter() - started:.1f} s")
            picks = random.Random(16).choices(range(1, args.size + 1), k=args.repeat)
            warm = picks[: min(20, len(picks))]

            async def fast(v: int) -> None:
                orjson.dumps((await app_streams.public_schema_at(store, LATENCY_STREAM, v)).public())

            async def slow(v: int) -> None:
                json.dumps((await app_streams.schema_at(store, LATENCY_STREAM, v)).public())

            timings: dict[str, list[float]] = {}
            for label, call in (("fast", fast), ("slow", slow)):
                for v in warm:
                    await call(v)
                times = []
                for v in picks:
                    t = time.perf_counter()
                    await call(v)
                    times.append((time.perf_counter() - t) * 1000)
                timings[label] = times
            with serving(url) as (server, token):
                async with http_client(server, token) as client:
                    path = f"/v1/streams/{LATENCY_STREAM}/schema"
                    first = await client.get(path, params={"at": str(picks[0])})
                    expected = (await app_streams.schema_at(store, LATENCY_STREAM, picks[0])).public()
                    if first.status_code != 200 or first.json() != expected:
                        raise RuntimeError(f"the served schema differs from schema_at's: {first.text[:300]}")
                    for v in warm:
                        (await client.get(path, params={"at": str(v)})).raise_for_status()
                    times = []
                    for v in picks:
                        t = time.perf_counter()
                        r = await client.get(path, params={"at": str(v)})
                        times.append((time.perf_counter() - t) * 1000)
                        if r.status_code != 200:
                            raise RuntimeError(f"schema over HTTP answered {r.status_code}: {r.text[:300]}")
                    timings["http"] = times
        finally:
            await store.close()
    finally:
        for name in names:
            await drop_database(name)
    labels = {
        "slow": ("in process, before: schema_at().public() (frozen models), json.dumps", None),
        "fast": ("in process: public_schema_at().public() (the fold's plain state), orjson", IN_PROCESS_P99_GOAL_MS),
        "http": ("over HTTP: GET /v1/streams/bench/schema?at=V (keep-alive)", HTTP_P99_GOAL_MS),
    }
    for key in ("slow", "fast", "http"):
        label, goal = labels[key]
        p50, p99, top = summary(timings[key])
        verdict = "" if goal is None else f"p99 < {goal:g} ms: {'met' if p99 < goal else 'NOT met'}"
        count = len(timings[key])
        rows.append(f"| {label} | {args.size:,} | {count} | {p50:.2f} | {p99:.2f} | {top:.2f} | {verdict} |")
    return [
        "| schema as JSON at a random version | stream length | requests | p50 ms | p99 ms | max ms | goal |",
        "|---|---:|---:|---:|---:|---:|---|",
        *rows,
    ]


# --------------------------------------------------------------------------- change feed


async def subscriber(
    server: Server, token: str, ready: asyncio.Event, arrived: dict[int, list[float]], want: int, counter: list[int]
) -> None:
    """Reads the feed from the head, noting when each event (by stream version) arrives, until ``want``."""
    got = 0
    async with (
        http_client(server, token) as client,
        # from the start of the log: an event appended before the hub has this subscriber is read from the
        # store instead (nothing missed, nothing twice), never lost
        client.stream("GET", "/v1/feed", headers={"Accept": "text/event-stream", "Last-Event-ID": "0"}) as r,
    ):
        if r.status_code != 200:
            raise RuntimeError(f"feed answered {r.status_code}")
        counter[0] += 1
        if counter[0] == counter[1]:
            ready.set()
        async for line in r.aiter_lines():
            if line.startswith("data:"):
                now = time.perf_counter()
                data = orjson.loads(line[5:])
                if data.get("stream") == "feed" and data["version"] >= 2:  # the appends timed
                    arrived.setdefault(int(data["version"]), []).append(now)
                    got += 1
                    if got == want:
                        return


async def bench_feed(args: argparse.Namespace) -> list[str]:
    name = await fresh_database("api_feed")
    try:
        url = admin_url(name)
        store = await open_store(url)
        try:
            await store.init()
            log = EventLog(store, Projector(store))
            first = changesets(1, 1, 1)[0].model_copy(update={"stream": "feed"})
            await log.append(first)
            with serving(url) as (server, token):
                arrived: dict[int, list[float]] = {}
                ready = asyncio.Event()
                counter = [0, args.subscribers]
                readers = [
                    asyncio.create_task(subscriber(server, token, ready, arrived, args.feed_events, counter))
                    for _ in range(args.subscribers)
                ]
                try:
                    await asyncio.wait_for(ready.wait(), 60)
                    sent: dict[int, float] = {}
                    for i in range(args.feed_events):
                        event = ColumnAltered(table="t0", column="id", comment=f"feed {i}")
                        cs = Changeset(stream="feed", actor="bench", message="feed", events=(event,))
                        sent[i + 2] = time.perf_counter()
                        await log.append(cs)
                        await asyncio.sleep(args.feed_interval)
                    await asyncio.wait_for(asyncio.gather(*readers), 120)
                finally:
                    for task in readers:
                        task.cancel()
                    await asyncio.gather(*readers, return_exceptions=True)
        finally:
            await store.close()
    finally:
        await drop_database(name)
    latencies = [(t - sent[v]) * 1000 for v, times in arrived.items() for t in times]
    expected = args.subscribers * args.feed_events
    p50, p99, top = summary(latencies)
    verdict = "met" if p99 < FEED_P99_GOAL_MS and len(latencies) == expected else "NOT met"
    return [
        "| subscribers | events appended | deliveries (expected) | p50 ms | p99 ms | max ms | goal |",
        "|---:|---:|---:|---:|---:|---:|---|",
        f"| {args.subscribers} | {args.feed_events} | {len(latencies):,} ({expected:,}) | {p50:.1f} | {p99:.1f}"
        f" | {top:.1f} | p99 < {FEED_P99_GOAL_MS:g} ms: {verdict} |",
    ]


# --------------------------------------------------------------------------- main


async def run(args: argparse.Namespace) -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    os.environ.setdefault(SNAPSHOT_KEY_ENV, secrets.token_hex(32))  # the server (a child) gets the same key
    parts = {"appends": bench_appends, "schema": bench_schema, "feed": bench_feed}
    for part in args.only:
        before = os.getloadavg()[0]
        lines = await parts[part](args)
        after = os.getloadavg()[0]
        print(f"\n### {part}\n", flush=True)
        print("\n".join(lines), flush=True)
        print(f"\n(load average {before:.1f} before, {after:.1f} after, on {os.cpu_count()} cores)", flush=True)


def only_list(text: str) -> list[str]:
    parts = [p.strip() for p in text.split(",") if p.strip()]
    bad = [p for p in parts if p not in ("appends", "schema", "feed")]
    if bad or not parts:
        raise argparse.ArgumentTypeError(f"bad --only {text!r}: some of appends,schema,feed")
    return parts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=100_000, help="events in the point-schema stream (100000)")
    parser.add_argument("--repeat", type=int, default=300, help="timed point-schema requests per contender")
    parser.add_argument("--streams", type=int, default=50, help="append streams per contender")
    parser.add_argument("--per-stream", type=int, default=200, help="events per append stream (100 a changeset)")
    parser.add_argument("--rounds", type=int, default=5, help="append rounds, the contenders taking turns in each")
    parser.add_argument("--subscribers", type=int, default=100)
    parser.add_argument("--feed-events", type=int, default=50, help="one-event changesets appended to the feed")
    parser.add_argument("--feed-interval", type=float, default=0.05, help="seconds between feed appends")
    parser.add_argument("--only", type=only_list, default=["appends", "schema", "feed"], help="appends,schema,feed")
    args = parser.parse_args()
    if min(args.size, args.repeat, args.subscribers, args.feed_events, args.rounds) < 1:
        parser.error("--size, --repeat, --subscribers, --feed-events and --rounds must be at least 1")
    if args.rounds > args.streams:
        parser.error("--rounds cannot be more than --streams")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
