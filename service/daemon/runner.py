"""``schemalog daemon``: keep every database of the fleet at its target, on any number of replicas.

How one replica works (docs/ARCHITECTURE.md, "The daemon"):

- **The log is read from one cursor** (``read_all`` after the last global position): the fleet's
  events, the schema streams' heads and every database's outcomes fold into one
  ``projections.fleet.FleetView``. Nothing else is remembered between runs.
- **Leases** (service/daemon/leases.py): every database is run by the replica that holds its lease
  (holder, epoch, expiry from the store database's clock, claimed with SKIP LOCKED, renewed by a
  heartbeat). Each replica aims at its fair share (databases / live replicas), so that work spreads
  and a dead replica's databases are taken over once their leases expire. On the SQLite store one
  daemon runs alone: it holds the ``daemon`` lease, and a second one is refused.
- **Wake-ups**: LISTEN on the store's NOTIFY channel (PostgreSQL), on a connection that is checked
  every poll interval and re-opened with capped backoff when it dies; plus jittered polling, so that
  a missed notification costs at most one poll interval.
- **A run** is ``service.reconciler.apply.migrate`` with the lease as fence and the outcome stream's
  version as expected version: a replica that lost its lease records nothing, and the target's own
  lock and marker make sure a change is never applied twice to a database.
- **Drift** is checked every drift interval per database, recorded when first seen and when it
  changes (never every check), and handled by the database's policy: report and stop, or adopt.
- **Failures** back off per database (capped, exponential, jittered); the database is Stalled with
  its last error until it answers again. A failure in a wave halts that rollout for later waves
  (an event in the fleet stream) until it is fixed or resumed.
- **Shutdown**: the first SIGTERM/SIGINT stops claiming and starting runs, lets running ones finish,
  releases the leases and exits 0; a second cancels the running ones (PostgreSQL and SQLite roll
  back; MariaDB resumes on the next run) and exits 130.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import random
import signal
import socket
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from events.catalog import MigrationFaked
from events.envelope import Changeset
from events.fleet import FLEET_STREAM, RolloutHalted
from events.log import EventLog
from events.store import open_store
from events.store.base import (
    ConcurrencyError,
    EventStore,
    Fence,
    LeaseLost,
    StoreError,
    newer_problem,
    require_current_schema,
)
from projections.fleet import FleetDatabase, FleetView
from projections.schema import Point
from service import sdnotify
from service.daemon.leases import Lease, Leases, SqliteLeases, open_leases
from service.daemon.metrics import DaemonMetrics
from service.reconciler.apply import MigrateRequest, Outcome, migrate, outcome_stream
from service.secrets import SecretMissing, resolve_url

log = structlog.get_logger("schemalog.daemon")

EXIT_OK = 0
EXIT_ABORTED = 130


@dataclass(frozen=True)
class DaemonOptions:
    store: str
    replica: str = field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")
    poll_interval: float = 5.0
    lease_ttl: float = 15.0
    concurrency: int = 4
    drift_interval: float | None = None
    """Overrides every database's own drift interval (seconds)."""
    backoff_base: float = 1.0
    backoff_cap: float = 300.0
    lock_timeout: float = 30.0
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = None
    checkpoint_key: str | None = None
    checkpoint_file: str | None = None
    checkpoint_interval: float = 3600.0


@dataclass
class Slot:
    """A database this replica holds the lease of."""

    lease: Lease
    due: float = 0.0
    """Monotonic time of the next run (0: now)."""
    next_drift: float = 0.0
    failures: int = 0
    running: asyncio.Task[None] | None = None
    state: str = "reconciling"
    last_error: str | None = None
    next_attempt: datetime | None = None
    noted: tuple[str, str | None] | None = None


class Daemon:
    def __init__(self, options: DaemonOptions):
        self.options = options
        self.replica = options.replica
        self.view = FleetView()
        self.slots: dict[str, Slot] = {}
        self.metrics = DaemonMetrics(options.replica)
        self.stopping = asyncio.Event()
        self.aborting = False
        self.wake = asyncio.Event()
        self.ready = False
        self.live_replicas = 1
        self._store: EventStore | None = None
        self._leases: Leases | None = None
        self._resumes: dict[tuple[str, int], int] = {}
        self._halting: set[tuple[str, int]] = set()
        self._rng = random.Random()
        self._daemon_lease: Lease | None = None
        self._active: dict[str, asyncio.Task[None]] = {}
        """The runs going on, by database (one at a time each, even across a lease lost and taken back)."""
        self._watchdog = sdnotify.Pinger(sdnotify.watchdog_interval())
        self._refused: str | None = None
        self._layout_due = 0.0
        """Set when the store's layout was found newer than this daemon knows: it stops, and exits 2."""

    # ------------------------------------------------------------------ life

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_signal, sig)
        structlog.contextvars.bind_contextvars(replica=self.replica)
        server = None
        try:
            self._store = await open_store(self.options.store, create=False)
            require_current_schema(self._store.schema_version)  # an older layout: run `schemalog init` first
            self._leases = await open_leases(self._store)
            await self._leases.setup()
            if isinstance(self._leases, SqliteLeases):  # the SQLite store: this daemon runs alone
                self._daemon_lease = await self._leases.claim_daemon(self.replica, self.options.lease_ttl)
            if self.options.metrics_port is not None:
                server = await self.metrics.serve(self.options.metrics_host, self.options.metrics_port, self)
            await self._catch_up()
            log.info(
                "daemon_started",
                store=_store_label(self.options.store),
                databases=len(self.view.databases),
                poll_interval=self.options.poll_interval,
                lease_ttl=self.options.lease_ttl,
            )
            background = [asyncio.create_task(self._maintain(), name="leases")]
            if not isinstance(self._leases, SqliteLeases):  # PostgreSQL: LISTEN
                background.append(asyncio.create_task(self._listen(), name="listen"))
            if self.options.checkpoint_key and self.options.checkpoint_file:
                background.append(asyncio.create_task(self._checkpoints(), name="checkpoints"))
            self.ready = True
            sdnotify.notify("READY=1", f"STATUS=replica {self.replica}: {len(self.view.databases)} databases")
            try:
                await self._main()
            finally:
                self.ready = False
                for task in background:
                    task.cancel()
                await asyncio.gather(*background, return_exceptions=True)
                await self._drain()
            log.info("daemon_stopped", aborted=self.aborting)
            if self._refused is not None:
                raise StoreError(self._refused)  # the CLI's one line, exit 2
            return EXIT_ABORTED if self.aborting else EXIT_OK
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
            if server is not None:
                await server.stop()
            if self._leases is not None:
                await self._leases.close()
            if self._store is not None:
                await self._store.close()

    def _on_signal(self, sig: int) -> None:
        if self.stopping.is_set():
            log.warning("daemon_aborting", signal=signal.Signals(sig).name)
            self.aborting = True
            for task in self._active.values():
                task.cancel()
        else:
            log.info("daemon_stopping", signal=signal.Signals(sig).name, running=self._running_count())
        self.stopping.set()
        self.wake.set()

    async def _drain(self) -> None:
        """Let the running databases finish (or be cancelled), then give every lease back."""
        running = list(self._active.values())
        if running:
            await asyncio.gather(*running, return_exceptions=True)
        assert self._leases is not None
        held = [s.lease for s in self.slots.values()]
        with contextlib.suppress(Exception):
            if held:
                await self._leases.release(self.replica, held)
            if self._daemon_lease is not None:
                await self._leases.release(self.replica, [self._daemon_lease])
            await self._leases.leave(self.replica)
        log.info("leases_released", count=len(held))
        self.slots.clear()
        self.metrics.leases_held.set(0)

    # ------------------------------------------------------------------ the main loop

    async def _main(self) -> None:
        while not self.stopping.is_set():
            self.wake.clear()
            self._watchdog.ping()  # the loop runs: systemd's watchdog fed (when it asks for pings)
            if time.monotonic() >= self._layout_due:  # once a poll interval: no newer schemalog upgraded the store
                self._layout_due = time.monotonic() + self.options.poll_interval
                await self._check_layout()
                if self.stopping.is_set():
                    break
            try:
                await self._catch_up()
            except (StoreError, OSError) as exc:
                log.warning("store_unreachable", error=_line(exc))
            self._schedule()
            timeout = self._next_timeout()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout)
                continue
            self.metrics.wakeups.labels("poll").inc()

    def _next_timeout(self) -> float:
        now = time.monotonic()
        poll = self.options.poll_interval * self._rng.uniform(0.8, 1.0)
        dues = [min(s.due, s.next_drift) - now for s in self.slots.values() if s.running is None]
        ping = self._watchdog.wait_cap()
        return max(0.05, min([poll, *dues, *([] if ping is None else [ping])]))

    async def _check_layout(self) -> None:
        """Stop (exit 2) once a newer schemalog's init has upgraded the store under this replica."""
        assert self._store is not None
        try:
            problem = newer_problem(await self._store.stored_schema())
        except Exception as exc:  # unreachable now: the next pass looks again
            log.warning("store_unreachable", error=_line(exc))
            return
        if problem is not None:
            log.error("store_schema_newer", error=problem)
            self._refused = problem
            self.stopping.set()
            self.wake.set()

    async def _catch_up(self) -> None:
        """Fold what was appended since the last look; wake the databases it concerns."""
        assert self._store is not None
        moved: set[str] = set()
        outcome_waves: dict[str, int] = {}  # stream -> the lowest wave an outcome arrived from
        fleet_moved = False
        while True:
            batch = await self._store.read_all(after_position=self.view.position, limit=5000)
            if not batch:
                break
            for recorded in batch:
                self.view.apply(recorded)
                if recorded.stream == FLEET_STREAM:
                    fleet_moved = True
                    if recorded.event.type == "rollout_resumed":
                        key = (recorded.event.stream, recorded.event.to_version)
                        self._resumes[key] = self._resumes.get(key, 0) + 1
                elif recorded.stream.startswith("db:"):
                    # an outcome matters to the later waves of its stream only (their gate)
                    db = self.view.databases.get(recorded.stream[3:])
                    if db is not None:
                        outcome_waves[db.stream] = min(outcome_waves.get(db.stream, db.wave), db.wave)
                else:
                    moved.add(recorded.stream)
        if not (moved or fleet_moved or outcome_waves):
            return
        for name, slot in self.slots.items():
            db = self.view.databases.get(name)
            if db is None:
                continue
            if fleet_moved or db.stream in moved or db.wave > outcome_waves.get(db.stream, db.wave):
                slot.due = 0.0

    # ------------------------------------------------------------------ scheduling

    def _running_count(self) -> int:
        return len(self._active)

    def _schedule(self) -> None:
        if self.stopping.is_set():
            return
        now = time.monotonic()
        due = [
            name
            for name, slot in self.slots.items()
            if slot.running is None and name not in self._active and min(slot.due, slot.next_drift) <= now
        ]
        due.sort(key=lambda n: min(self.slots[n].due, self.slots[n].next_drift))
        for name in due:
            if self._running_count() >= self.options.concurrency:
                return
            slot = self.slots[name]
            db = self.view.databases.get(name)
            if db is None:
                continue  # retired: released by the next maintenance pass
            plan = self._decide(db, slot, now)
            if plan is None:
                continue
            to_version, reason = plan
            slot.running = asyncio.create_task(self._reconcile(db, slot, to_version, reason), name=f"run:{name}")
            self._active[name] = slot.running

    def _decide(self, db: FleetDatabase, slot: Slot, now: float) -> tuple[int, str] | None:
        """Where to take ``db`` now and why, or None (then ``slot.due`` says when to look again)."""
        record = self.view.record(db.name)
        desired = self.view.resolve(db)
        drift_due = slot.next_drift <= now
        here = record.at if record.at is not None else 0
        if desired is None:
            self._set_state(slot, "reconciling", f"target {db.target!r} is not in stream {db.stream!r} yet")
            slot.due = math.inf
            return (here, "drift check") if drift_due else None
        allowed, why = self.view.gate(db, desired)
        if not allowed:
            halted = self.view.halted(db.stream, desired)
            self._set_state(slot, "halted" if halted else "reconciling", why)
            slot.due = math.inf  # woken again when the lower waves' outcomes arrive
            return (here, "drift check") if drift_due else None
        if desired != here:
            if slot.failures and slot.due > now:
                return None
            return desired, "behind" if desired > here else "rollback"
        if drift_due or slot.failures:
            return desired, "drift check"
        slot.due = math.inf
        return None

    # ------------------------------------------------------------------ one run

    async def _reconcile(self, db: FleetDatabase, slot: Slot, to_version: int, reason: str) -> None:
        assert self._store is not None
        record = self.view.record(db.name)
        lease = slot.lease
        started = time.monotonic()
        bound = structlog.contextvars.bound_contextvars(database=db.name, stream=db.stream, epoch=lease.epoch)
        with bound:
            log.info(
                "run_started", reason=reason, known_at=record.at, outcome_version=record.version, to_version=to_version
            )
            outcome: Outcome | None = None
            try:
                try:
                    url = resolve_url(db.url)
                except SecretMissing as exc:
                    self._failed(db, slot, to_version, "unreachable", str(exc))
                    return
                await self._note(slot, "reconciling", None)
                request = MigrateRequest(
                    url=url,
                    stream=db.stream,
                    actor=f"daemon:{self.replica}",
                    database=db.name,
                    to=Point(version=to_version),
                    allow_destructive=db.allow_destructive,
                    lock_timeout=self.options.lock_timeout,
                    fence=Fence(db.name, self.replica, lease.epoch),
                    outcome_version=record.version,
                    known_at=record.at if record.at is not None else 0,
                    known_drift=record.drift if record.version else None,
                    replica=self.replica,
                    approvals=int(getattr(db, "approvals", 0) or 0),
                    progress=_phase_log,
                )
                outcome = await migrate(self._store, request)
                self.metrics.runs.labels(outcome.status).inc()
                await self._handle(db, slot, to_version, outcome)
            except LeaseLost:
                log.warning("lease_lost_outcome_not_recorded")
                self.metrics.runs.labels("lease_lost").inc()
                self.slots.pop(db.name, None)
            except ConcurrencyError as exc:
                # another writer (a migrate from the command line) recorded meanwhile: look again at once
                log.info("outcome_stream_moved", detail=str(exc))
                slot.due = 0.0
            except (StoreError, OSError) as exc:
                self._failed(db, slot, to_version, "failed", f"the store: {_line(exc)}")
            except asyncio.CancelledError:
                log.warning("run_cancelled")
                raise
            except Exception as exc:  # a bug: never let it kill the daemon or hide
                if self.aborting:
                    # a cancel that landed inside the driver can surface as its own error (asyncpg:
                    # "got result for unknown protocol state"): the run was cancelled all the same
                    log.warning("run_cancelled", detail=_line(exc))
                    raise asyncio.CancelledError from exc
                log.exception("run_crashed")
                self._failed(db, slot, to_version, "failed", f"internal error: {type(exc).__name__}: {_line(exc)}")
            finally:
                seconds = time.monotonic() - started
                self.metrics.run_seconds.observe(seconds)
                log.info(
                    "run_finished",
                    status=outcome.status if outcome else None,
                    from_version=outcome.from_version if outcome else None,
                    to_version=outcome.to_version if outcome else None,
                    recovered=list(outcome.recovered) if outcome and outcome.recovered else None,
                    seconds=round(seconds, 3),
                    recorded=bool(outcome and outcome.recorded),
                )
                slot.running = None
                self._active.pop(db.name, None)
                self.wake.set()
                if db.name in self.slots and slot.noted != (slot.state, slot.last_error) and not self.aborting:
                    await self._note(slot, slot.state, slot.last_error)

    async def _handle(self, db: FleetDatabase, slot: Slot, to_version: int, outcome: Outcome) -> None:
        now = time.monotonic()
        interval = self.options.drift_interval or db.drift_interval
        if outcome.status in ("applied", "up_to_date"):
            slot.failures = 0
            slot.next_drift = now + interval * self._rng.uniform(0.9, 1.0)
            slot.due = math.inf
            slot.next_attempt = None
            self._set_state(slot, "ready", None)
            self.metrics.lag.labels(db.name).set(0)
        elif outcome.status == "drift":
            self.metrics.drift.labels(db.name).inc()
            slot.failures = 0
            slot.next_drift = now + interval
            slot.due = math.inf
            if db.drift == "adopt" and not any("marker witnesses" in d for d in outcome.drift):
                await self._adopt(db, slot)
            else:
                self._set_state(slot, "drifted", outcome.detail)
        else:
            self._failed(db, slot, to_version, outcome.status, outcome.detail or outcome.status)
            if outcome.status in ("failed", "refused"):
                await self._halt(db, to_version, outcome.detail or outcome.status)
        await self._note(slot, slot.state, slot.last_error)

    def _failed(self, db: FleetDatabase, slot: Slot, to_version: int, status: str, detail: str) -> None:
        slot.failures += 1
        ceiling = min(self.options.backoff_cap, self.options.backoff_base * 2 ** (slot.failures - 1))
        delay = self._rng.uniform(ceiling / 2, ceiling)
        slot.due = time.monotonic() + delay
        slot.next_attempt = datetime.now(UTC) + timedelta(seconds=delay)
        self._set_state(slot, "stalled", f"{status}: {detail}")
        log.warning("run_failed", status=status, detail=detail, retry_in=round(delay, 2), failures=slot.failures)

    async def _halt(self, db: FleetDatabase, to_version: int, reason: str) -> None:
        """Record that the rollout of ``db.stream`` to ``to_version`` stops before the later waves."""
        key = (db.stream, to_version)
        later = [o for o in self.view.databases.values() if o.stream == db.stream and o.wave > db.wave]
        if not later or self.view.halted(*key) or key in self._halting:
            return
        assert self._store is not None
        self._halting.add(key)
        try:
            event = RolloutHalted(
                stream=db.stream, to_version=to_version, wave=db.wave, database=db.name, reason=reason[:2000]
            )
            changeset = Changeset(
                stream=FLEET_STREAM,
                actor=f"daemon:{self.replica}",
                message=f"rollout of {db.stream} to v{to_version} halted at wave {db.wave}",
                changeset_id=f"halt:{db.stream}:{to_version}:{self._resumes.get(key, 0)}",
                events=(event,),
            )
            await EventLog(self._store).append(changeset)
            log.warning("rollout_halted", to_version=to_version, wave=db.wave, later=len(later))
        finally:
            self._halting.discard(key)

    async def _adopt(self, db: FleetDatabase, slot: Slot) -> None:
        """The policy ``adopt``: what the database has becomes the log's (import of its drift)."""
        from service.authoring.importer import ImportRefused, import_database

        assert self._store is not None
        record = self.view.record(db.name)
        try:
            result = await import_database(
                self._store, resolve_url(db.url), db.stream, database=db.name, actor=f"daemon:{self.replica}"
            )
        except (ImportRefused, SecretMissing) as exc:
            self._set_state(slot, "drifted", f"drift not adopted: {exc}")
            return
        except Exception as exc:
            self._set_state(slot, "drifted", f"drift not adopted: {type(exc).__name__}: {_line(exc)}")
            return
        if result.first_version is not None and result.last_version is not None:
            event = MigrationFaked(
                database=db.name,
                stream=db.stream,
                from_version=record.at or 0,
                to_version=result.last_version,
                detail=f"drift adopted into the log as v{result.first_version}..v{result.last_version}",
                replica=self.replica,
                lease_epoch=slot.lease.epoch,
            )
            await EventLog(self._store).append(
                Changeset(
                    stream=outcome_stream(db.name),
                    actor=f"daemon:{self.replica}",
                    message="drift adopted",
                    events=(event,),
                ),
                fence=Fence(db.name, self.replica, slot.lease.epoch),
            )
        log.info("drift_adopted", events=result.events)
        self._set_state(slot, "ready", None)
        slot.due = 0.0

    def _set_state(self, slot: Slot, state: str, error: str | None) -> None:
        slot.state, slot.last_error = state, error

    async def _note(self, slot: Slot, state: str, error: str | None) -> None:
        """Keep the runtime status in the lease row, when it changed (for status, from any replica)."""
        if slot.noted == (state, error) or self._leases is None:
            return
        try:
            await self._leases.note(slot.lease, state=state, last_error=error, next_attempt=slot.next_attempt)
            slot.noted = (state, error)
        except Exception as exc:  # the status line is kept next time; the work goes on
            log.warning("status_not_noted", error=_line(exc))

    # ------------------------------------------------------------------ leases

    async def _maintain(self) -> None:
        """Heartbeat, renew, take the fair share, give back extras; every third of the lease time."""
        assert self._leases is not None
        period = self.options.lease_ttl / 3
        while True:
            try:
                await self._lease_pass()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("lease_pass_failed", error=_line(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), period)
            if self.stopping.is_set():
                return

    async def _lease_pass(self) -> None:
        assert self._leases is not None
        ttl = self.options.lease_ttl
        self.live_replicas = max(1, await self._leases.heartbeat(self.replica, ttl))
        if self._daemon_lease is not None:
            kept, lost_daemon = await self._leases.renew(self.replica, [self._daemon_lease], ttl)
            if lost_daemon:  # (another daemon can only take it after it expired: this one was stuck that long)
                log.error("daemon_lease_lost")
                self.stopping.set()
                self.wake.set()
                return
            self._daemon_lease = kept[0]
        if self.slots:
            renewed, lost = await self._leases.renew(self.replica, [s.lease for s in self.slots.values()], ttl)
            for lease in renewed:
                if lease.resource in self.slots:
                    self.slots[lease.resource].lease = lease
            for name in lost:
                slot = self.slots.pop(name, None)
                log.warning("lease_lost", database=name, running=bool(slot and slot.running))
        active = sorted(self.view.databases)
        for name in [n for n in self.slots if n not in self.view.databases]:
            slot = self.slots[name]
            if slot.running is None:
                await self._leases.release(self.replica, [slot.lease])
                del self.slots[name]
                log.info("lease_released", database=name, why="retired")
        share = math.ceil(len(active) / self.live_replicas) if active else 0
        if len(self.slots) < share:
            wanted = [n for n in active if n not in self.slots]
            self._rng.shuffle(wanted)
            for lease in await self._leases.claim(self.replica, wanted, share - len(self.slots), ttl):
                self.slots[lease.resource] = Slot(lease=lease)
                log.info("lease_claimed", database=lease.resource, epoch=lease.epoch)
            self.wake.set()
        elif len(self.slots) > share and self.live_replicas > 1:
            idle = [n for n, s in self.slots.items() if s.running is None]
            extra = idle[: len(self.slots) - share]
            if extra:
                await self._leases.release(self.replica, [self.slots[n].lease for n in extra])
                for name in extra:
                    del self.slots[name]
                log.info("leases_rebalanced", released=len(extra), share=share)
        self.metrics.leases_held.set(len(self.slots))
        self.metrics.replicas.set(self.live_replicas)

    # ------------------------------------------------------------------ wake-ups

    async def _listen(self) -> None:
        """LISTEN for appends; check the connection every poll interval; re-open it with capped backoff."""
        import asyncpg

        from events.store.postgres import NOTIFY_CHANNEL, normalise_url

        backoff = 0.2
        while not self.stopping.is_set():
            conn: Any = None
            dead = asyncio.Event()
            try:
                conn = await asyncio.wait_for(asyncpg.connect(normalise_url(self.options.store)), 10)
                await conn.add_listener(NOTIFY_CHANNEL, self._notified)
                conn.add_termination_listener(lambda _c, dead=dead: dead.set())
                log.info("listening", channel=NOTIFY_CHANNEL)
                self.metrics.wakeups.labels("listen_connected").inc()
                self.wake.set()  # what was appended while no one listened
                backoff = 0.2
                while not self.stopping.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(dead.wait(), self.options.poll_interval)
                    if dead.is_set():
                        raise ConnectionError("the listening connection was closed by the server")
                    await asyncio.wait_for(conn.fetchval("SELECT 1"), self.options.poll_interval)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("listen_lost", error=_line(exc), retry_in=round(backoff, 2))
                self.metrics.wakeups.labels("listen_lost").inc()
            finally:
                if conn is not None:
                    with contextlib.suppress(Exception):
                        conn.terminate()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), backoff * self._rng.uniform(0.5, 1.0))
            backoff = min(backoff * 2, 30.0)

    def _notified(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        self.metrics.wakeups.labels("notify").inc()
        self.wake.set()

    # ------------------------------------------------------------------ checkpoints

    async def _checkpoints(self) -> None:
        from events.checkpoint import append_checkpoint, load_signing_key, take_checkpoint

        assert self._store is not None and self.options.checkpoint_key and self.options.checkpoint_file
        key = load_signing_key(self.options.checkpoint_key)
        while not self.stopping.is_set():
            try:
                checkpoint = await take_checkpoint(self._store, key)
                await asyncio.to_thread(append_checkpoint, self.options.checkpoint_file, checkpoint)
                log.info("checkpoint_written", file=self.options.checkpoint_file, streams=len(checkpoint["streams"]))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("checkpoint_failed", error=_line(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), self.options.checkpoint_interval)


def _phase_log(event: object) -> None:
    """A run's phases in the daemon's log: ``planned`` (what it will run) and ``applied`` (committed on the
    database, the outcome not yet recorded)."""
    from service.progress import Phase

    if isinstance(event, Phase) and event.name in ("planned", "applied"):
        log.info("run_phase", phase=event.name, count=event.count, detail=event.detail or None)


def _line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _store_label(url: str) -> str:
    from service.reconciler.targets import display_url

    return display_url(url)


async def run_daemon(options: DaemonOptions) -> int:
    """DaemonAlreadyRunning (the SQLite store's lock is another daemon's) goes to the caller."""
    return await Daemon(options).run()
