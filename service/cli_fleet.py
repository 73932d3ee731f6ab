"""The fleet's commands: ``db add|set|retire|list``, ``status``, ``rollout resume`` and ``daemon``.

Parse, call service/app/fleet.py (or the daemon), render; nothing else. Registered on the main parser
by ``add_parsers``; every heavy import is inside a command, as in service/cli.py.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from events.store import EventStore


def add_parsers(sub: Any) -> None:
    point_help = "head (default), a version (12) or a tag of the stream"

    def settings(p: argparse.ArgumentParser, *, adding: bool) -> None:
        p.add_argument("--target", help=point_help if adding else "the new target: " + point_help)
        p.add_argument("--wave", type=int, help="rollout wave, 0 first (canary); a wave waits for the lower ones")
        if adding:
            p.add_argument("--allow-destructive", action="store_true", help="let drops and narrowing through")
        else:
            p.add_argument(
                "--allow-destructive", action=argparse.BooleanOptionalAction, help="let drops and narrowing through"
            )
        p.add_argument("--drift", choices=["report", "adopt"], help="on drift: report and stop (default), or adopt")
        p.add_argument("--drift-interval", type=float, metavar="SECONDS", help="how often drift is checked (300)")
        p.add_argument("--approvals", type=int, metavar="N", help="approvals each changeset needs to be applied (0)")
        p.add_argument("--actor", help="who makes the change (default: the OS user)")

    p = sub.add_parser("db", help="the fleet: databases the daemon keeps at their target")
    dbs = p.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    q = dbs.add_parser("add", help="register a database")
    q.add_argument("name", metavar="NAME")
    q.add_argument("--url", required=True, help="its URL; a password only as ${ENV_VAR} or ?password_file=PATH")
    q.add_argument("--stream", required=True, help="the schema stream it follows")
    settings(q, adding=True)
    q.set_defaults(run=cmd_db_add)
    q = dbs.add_parser("set", help="change a registered database's settings")
    q.add_argument("name", metavar="NAME")
    q.add_argument("--url", help="a new URL (same rules as db add)")
    settings(q, adding=False)
    q.set_defaults(run=cmd_db_set)
    q = dbs.add_parser("retire", help="take a database out of the fleet (the database is left as it is)")
    q.add_argument("name", metavar="NAME")
    q.add_argument("--actor")
    q.set_defaults(run=cmd_db_retire)
    q = dbs.add_parser("list", help="the registered databases")
    q.add_argument("--json", action="store_true")
    q.set_defaults(run=cmd_db_list)

    p = sub.add_parser("status", help="each fleet database: Ready, Reconciling, Stalled, Drifted or Halted")
    p.add_argument("--json", action="store_true")
    p.add_argument(
        "--wait",
        type=float,
        metavar="SECONDS",
        help="wait until every database is Ready; exit 1 if they are not within SECONDS (a rollout in CI)",
    )
    p.set_defaults(run=cmd_status)

    p = sub.add_parser("rollout", help="rollouts across waves")
    ro = p.add_subparsers(dest="rollout_command", required=True, metavar="ACTION")
    q = ro.add_parser("resume", help="let a halted rollout go on to the later waves")
    q.add_argument("stream", metavar="STREAM")
    q.add_argument("--to", type=int, metavar="VERSION", help="the halted rollout's version (default: the latest)")
    q.add_argument("--actor")
    q.set_defaults(run=cmd_rollout_resume)

    p = sub.add_parser("daemon", help="keep every fleet database at its target until stopped (SIGTERM)")
    p.add_argument("--store", dest="daemon_store", metavar="URL", help="the event log (same as the global --store)")
    p.add_argument("--replica", help="this replica's name (default: HOST-PID)")
    p.add_argument("--poll-interval", type=float, default=5.0, metavar="SECONDS", help="look at the log (5)")
    p.add_argument("--lease-ttl", type=float, default=15.0, metavar="SECONDS", help="lease time (15)")
    p.add_argument("--concurrency", type=int, default=4, help="databases run at once by this replica (4)")
    p.add_argument("--drift-interval", type=float, metavar="SECONDS", help="override every database's")
    p.add_argument("--backoff-cap", type=float, default=300.0, metavar="SECONDS", help="longest retry wait (300)")
    p.add_argument("--metrics-port", type=int, help="serve /healthz, /readyz and /metrics on this port")
    p.add_argument("--metrics-host", default="127.0.0.1")
    p.add_argument("--checkpoint-key", help="sign checkpoints with this key (PREFIX.key) ...")
    p.add_argument("--checkpoint-file", help="... appended to this file")
    p.add_argument("--checkpoint-interval", type=float, default=3600.0, metavar="SECONDS")
    p.set_defaults(run=cmd_daemon, no_store=True)


def _actor(args: argparse.Namespace) -> str:
    from service.cli import default_actor

    return getattr(args, "actor", None) or default_actor()


def _fleet_error(exc: Exception) -> Exception:
    from service.cli import UsageError

    return UsageError(str(exc))


async def cmd_db_add(args: argparse.Namespace, store: EventStore) -> int:
    from events.fleet import DatabaseRegistered
    from service.app import fleet
    from service.cli import out
    from service.reconciler.targets import display_url

    await store.init()
    fields: dict[str, Any] = {"name": args.name, "url": args.url, "stream": args.stream}
    for key in ("target", "wave", "drift", "drift_interval", "approvals"):
        if getattr(args, key) is not None:
            fields[key] = getattr(args, key)
    if args.allow_destructive:
        fields["allow_destructive"] = True
    event = DatabaseRegistered(**fields)
    try:
        result = await fleet.register(store, _actor(args), event)
    except ValueError as exc:
        raise _fleet_error(exc) from None
    out(
        f"registered {event.name}: {display_url(event.url)} follows {event.stream} to {event.target},"
        f" wave {event.wave} (fleet v{result.last_version})"
    )
    return 0


async def cmd_db_set(args: argparse.Namespace, store: EventStore) -> int:
    from events.fleet import DatabaseChanged
    from service.app import fleet
    from service.cli import out

    fields: dict[str, Any] = {"name": args.name}
    for key in ("url", "target", "wave", "allow_destructive", "drift", "drift_interval", "approvals"):
        if getattr(args, key) is not None:
            fields[key] = getattr(args, key)
    event = DatabaseChanged(**fields)
    try:
        result = await fleet.change(store, _actor(args), event)
    except ValueError as exc:
        raise _fleet_error(exc) from None
    shown = ", ".join(f"{k}={v}" for k, v in event.changes().items() if k != "url")
    if "url" in event.changes():
        shown = ", ".join(x for x in (shown, "url changed") if x)
    out(f"changed {event.name}: {shown} (fleet v{result.last_version})")
    return 0


async def cmd_db_retire(args: argparse.Namespace, store: EventStore) -> int:
    from service.app import fleet
    from service.cli import out

    try:
        result = await fleet.retire(store, _actor(args), args.name)
    except ValueError as exc:
        raise _fleet_error(exc) from None
    out(f"retired {args.name} (fleet v{result.last_version}); the database itself is left as it is")
    return 0


async def cmd_db_list(args: argparse.Namespace, store: EventStore) -> int:
    from service.app import fleet
    from service.cli import out, out_json
    from service.reconciler.targets import display_url

    view = await fleet.fleet_view(store)
    rows = [db.public() for _, db in sorted(view.databases.items())]
    if args.json:
        out_json(rows)
        return 0
    if not rows:
        out("no databases registered (add one with: schemalog db add NAME --url URL --stream STREAM)")
        return 0
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        flags = " allow-destructive" if r["allow_destructive"] else ""
        out(
            f"{r['name']:<{width}}  {r['stream']} -> {r['target']}  wave {r['wave']}  drift {r['drift']}"
            f"{flags}  {display_url(r['url'])}"
        )
    return 0


async def cmd_status(args: argparse.Namespace, store: EventStore) -> int:
    import asyncio
    import time

    from service.app import fleet
    from service.cli import one_line, out, out_json

    if args.wait is not None and not 0 <= args.wait <= 86400:
        raise _fleet_error(ValueError("--wait takes 0 to 86400 seconds"))
    deadline = time.monotonic() + (args.wait or 0)
    while True:
        rows = await fleet.status(store)
        ready = all(r.status == "Ready" for r in rows)
        if args.wait is None or ready or time.monotonic() >= deadline:
            break
        await asyncio.sleep(min(0.5, max(0.0, deadline - time.monotonic())))
    code = 0 if args.wait is None or ready else 1
    if args.json:
        out_json([r.public() for r in rows])
        return code
    if not rows:
        out("no databases registered")
        return code
    width = max(len(r.name) for r in rows)
    for r in rows:
        at = "-" if r.marker is None else f"v{r.marker}"
        to = "?" if r.target_version is None else f"v{r.target_version}"
        who = f"  on {r.owner}" if r.owner else ""
        why = f"  {one_line(r.detail)}" if r.detail else ""
        out(f"{r.name:<{width}}  {r.status:<11}  {r.stream} {at} -> {to}  wave {r.wave}{who}{why}")
    if code:
        sys.stderr.write(f"schemalog: not every database is Ready after {args.wait:g} s\n")
    return code


async def cmd_rollout_resume(args: argparse.Namespace, store: EventStore) -> int:
    from service.app import fleet
    from service.cli import out

    try:
        result, version = await fleet.resume(store, _actor(args), args.stream, args.to)
    except ValueError as exc:
        raise _fleet_error(exc) from None
    out(f"rollout of {args.stream} to v{version} resumed (fleet v{result.last_version})")
    return 0


async def cmd_daemon(args: argparse.Namespace, _store: None) -> int:
    from service import logging as service_logging
    from service.cli import UsageError
    from service.config import load_config
    from service.daemon.leases import DaemonAlreadyRunning
    from service.daemon.runner import DaemonOptions, run_daemon
    from service.settings import DEFAULT_STORE

    if not os.environ.get("SCHEMALOG_LOG_LEVEL") and not args.quiet:
        service_logging.configure("info")  # a daemon says what it does (its runs, its leases) by default
    config = load_config(args.config)
    url = args.daemon_store or args.store or os.environ.get("SCHEMALOG_STORE") or config.store or DEFAULT_STORE
    for name, value in (("--poll-interval", args.poll_interval), ("--lease-ttl", args.lease_ttl)):
        if not value > 0:
            raise UsageError(f"{name} must be more than 0 seconds")
    if args.concurrency < 1:
        raise UsageError("--concurrency must be at least 1")
    if bool(args.checkpoint_key) != bool(args.checkpoint_file):
        raise UsageError("give --checkpoint-key and --checkpoint-file together")
    options = DaemonOptions(
        store=url,
        poll_interval=args.poll_interval,
        lease_ttl=args.lease_ttl,
        concurrency=args.concurrency,
        drift_interval=args.drift_interval,
        backoff_cap=args.backoff_cap,
        metrics_host=args.metrics_host,
        metrics_port=args.metrics_port,
        checkpoint_key=args.checkpoint_key,
        checkpoint_file=args.checkpoint_file,
        checkpoint_interval=args.checkpoint_interval,
        **({"replica": args.replica} if args.replica else {}),
    )
    try:
        return await run_daemon(options)
    except DaemonAlreadyRunning as exc:
        sys.stderr.write(f"schemalog: {exc}\n")
        return 1
