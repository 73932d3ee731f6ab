"""The ``schemalog`` command: a thin client of the store, the log and the projections.

Exit codes: 0 success; 1 "something differs / something to do" where a check is
asked for (``verify`` finding tampering); 2 usage or input error; 3 concurrency
conflict (the stream moved past ``expected_version``). Errors are one line on
stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, NoReturn

import pydantic
import structlog

from events.aggregate import InvalidChange
from events.envelope import Changeset, RecordedEvent, format_time
from events.log import EventLog
from events.store import (
    ChangesetIdConflict,
    ConcurrencyError,
    EventStore,
    StoreError,
    open_store,
    verify_store,
)
from service import logging as service_logging
from service.settings import Settings

log = structlog.get_logger("schemalog.cli")

EXIT_OK = 0
EXIT_DIFFERS = 1
EXIT_USAGE = 2
EXIT_CONFLICT = 3


class UsageError(Exception):
    """Bad input: reported as one line, exit code 2."""


class Failure(Exception):
    """An error with its own exit code."""

    def __init__(self, message: str, code: int):
        super().__init__(message)
        self.code = code


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"schemalog: error: {message}\n")


# --------------------------------------------------------------------------- output helpers


def out(text: str = "") -> None:
    sys.stdout.write(text + "\n")


def out_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def pydantic_message(exc: pydantic.ValidationError) -> str:
    """The first error of a pydantic ValidationError as one readable line."""
    from events.catalog import EVENT_TYPES

    errors = exc.errors()
    # An error on a container that also has errors inside is a consequence of those.
    errors = [
        e
        for e in errors
        if not any(
            o is not e and len(o["loc"]) > len(e["loc"]) and o["loc"][: len(e["loc"])] == e["loc"]
            for o in errors
        )
    ] or errors
    err = errors[0]
    parts: list[str] = []
    for item in err["loc"]:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif item in EVENT_TYPES or item.startswith("function-"):
            continue
        else:
            parts.append(("." if parts else "") + str(item))
    where = "".join(parts)
    msg = str(err["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix) :]
    if err["type"] == "missing":
        msg = "field required"
    elif err["type"] == "extra_forbidden":
        msg = "unknown field"
    more = len(errors) - 1
    suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    if not where or msg.startswith(where):
        return msg + suffix
    return f"{where}: {msg}{suffix}"


def describe(event: RecordedEvent) -> str:
    """One event as a short line of text."""
    data = event.public()
    kind = data["type"]
    table = data.get("table", "")
    detail = ""
    if kind in ("column_added",):
        detail = f".{data['column']['name']} {data['column']['type']}"
    elif kind in ("column_dropped", "column_altered"):
        detail = f".{data['column']}"
        if kind == "column_altered":
            changes = {k: v for k, v in data.items() if k in ("new_type", "nullable", "default", "comment")}
            detail += " " + " ".join(f"{k}={v!r}" for k, v in changes.items())
    elif kind == "column_renamed":
        detail = f".{data['column']} -> {data['new_name']}"
    elif kind == "table_renamed":
        detail = f" -> {data['new_name']}"
    elif kind == "index_created":
        detail = f" {data['index']['name']}({', '.join(data['index']['columns'])})"
    elif kind in ("index_dropped", "constraint_dropped"):
        detail = f" {data['name']}"
    elif kind == "constraint_added":
        detail = f" {data['constraint']['name']} {data['constraint']['kind']}"
    elif kind == "primary_key_set":
        detail = f" ({', '.join(data['columns'])})"
    elif kind == "table_created":
        detail = f" ({len(data['columns'])} columns)"
    return f"{kind} {table}{detail}".rstrip()


# --------------------------------------------------------------------------- commands


async def cmd_init(args: argparse.Namespace, store: EventStore) -> int:
    await store.init()
    out(f"store ready: {store.url}")
    return EXIT_OK


def _read_changeset_text(source: str) -> str:
    if source == "-":
        return sys.stdin.read()
    try:
        with open(source, encoding="utf-8") as handle:
            return handle.read()
    except OSError as exc:
        raise UsageError(f"cannot read {source}: {exc.strerror}") from None


def parse_changeset(text: str, *, actor: str | None, stream: str | None) -> Changeset:
    """A changeset from its JSON text, with CLI defaults applied; UsageError if bad."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    if not isinstance(data, dict):
        raise UsageError("a changeset is a JSON object with an 'events' list")
    if stream is not None:
        data["stream"] = stream
    if actor is not None:
        data["actor"] = actor
    elif not data.get("actor"):
        data["actor"] = default_actor()
    try:
        return Changeset.model_validate(data)
    except pydantic.ValidationError as exc:
        raise UsageError(pydantic_message(exc)) from None


def default_actor() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return os.environ.get("USER", "unknown")


async def cmd_append(args: argparse.Namespace, store: EventStore) -> int:
    changeset = parse_changeset(_read_changeset_text(args.file), actor=args.actor, stream=args.stream)
    await store.init()
    result = await EventLog(store).append(changeset)
    if args.json:
        out_json(
            {
                "stream": result.stream,
                "changeset_id": result.changeset_id,
                "first_version": result.first_version,
                "last_version": result.last_version,
                "duplicate": result.duplicate,
            }
        )
    elif result.duplicate:
        out(
            f"changeset {result.changeset_id} was already recorded as {result.stream}"
            f" v{result.first_version}..v{result.last_version}; nothing appended"
        )
    else:
        count = result.last_version - result.first_version + 1
        out(
            f"appended {count} event{'s' if count != 1 else ''} to {result.stream}:"
            f" v{result.first_version}..v{result.last_version} (changeset {result.changeset_id})"
        )
    return EXIT_OK


async def cmd_history(args: argparse.Namespace, store: EventStore) -> int:
    await store.init()
    if args.stream:
        events = await store.read(args.stream)
    else:
        events = await store.read_all()
    if args.json:
        out_json([e.public() for e in events])
        return EXIT_OK
    if not events:
        out("no events" + (f" in stream {args.stream!r}" if args.stream else ""))
        return EXIT_OK
    for e in events:
        when = format_time(e.recorded_at)[:19].replace("T", " ")
        message = f"  {e.message}" if e.message else ""
        out(f"{e.stream} v{e.version}  {when}  {e.actor}  {describe(e)}{message}")
    return EXIT_OK


async def cmd_verify(args: argparse.Namespace, store: EventStore) -> int:
    await store.init()
    report = await verify_store(store)
    if args.json:
        out_json(
            {
                "ok": report.ok,
                "streams": report.streams,
                "events": report.events,
                "problems": [
                    {"stream": p.stream, "version": p.version, "problem": p.problem} for p in report.problems
                ],
            }
        )
    else:
        for problem in report.problems:
            sys.stderr.write(f"TAMPERED: {problem}\n")
        if report.ok:
            out(f"ok: {report.streams} streams, {report.events} events, every chain intact")
        else:
            out(
                f"FAILED: {len(report.problems)} problem(s) in {report.streams} streams, {report.events} events"
            )
    return EXIT_OK if report.ok else EXIT_DIFFERS


Command = Callable[[argparse.Namespace, EventStore], Awaitable[int]]


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="schemalog",
        description="Event-sourced schema history: every schema change an event in an append-only log.",
    )
    parser.add_argument(
        "--store",
        help="the event log URL (default: $SCHEMALOG_STORE or sqlite:///schemalog.db)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens on stderr")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("init", help="create the store's tables (idempotent)")
    p.set_defaults(run=cmd_init)

    p = sub.add_parser("append", help="append a changeset (JSON file, or - for stdin)")
    p.add_argument("file", metavar="FILE", help="changeset JSON file, or - for standard input")
    p.add_argument("--actor", help="who makes the change (default: the changeset's, else the OS user)")
    p.add_argument("--stream", help="append to this stream (overrides the file's)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(run=cmd_append)

    p = sub.add_parser("history", help="list recorded events")
    p.add_argument("--stream", help="only this stream")
    p.add_argument("--json", action="store_true", help="one JSON object per event, in an array")
    p.set_defaults(run=cmd_history)

    p = sub.add_parser("verify", help="walk every hash chain; exit 1 if anything was tampered with")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(run=cmd_verify)
    return parser


async def run(args: argparse.Namespace, settings: Settings) -> int:
    url = args.store or settings.store
    store = await open_store(url)
    try:
        command: Command = args.run
        return await command(args, store)
    finally:
        await store.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = Settings()
    except pydantic.ValidationError as exc:
        sys.stderr.write(f"schemalog: error: bad setting: {pydantic_message(exc)}\n")
        return EXIT_USAGE
    service_logging.configure("info" if args.verbose else settings.log_level)
    try:
        return asyncio.run(run(args, settings))
    except UsageError as exc:
        message = str(exc)
    except InvalidChange as exc:
        message = f"rejected, nothing written: {exc}"
    except ConcurrencyError as exc:
        sys.stderr.write(f"schemalog: conflict: {exc}; current version {exc.current}\n")
        return EXIT_CONFLICT
    except (ChangesetIdConflict, StoreError) as exc:
        message = str(exc)
    except KeyboardInterrupt:
        sys.stderr.write("schemalog: interrupted\n")
        return 130
    sys.stderr.write(f"schemalog: error: {message}\n")
    return EXIT_USAGE


def entry() -> NoReturn:
    sys.exit(main())


if __name__ == "__main__":
    entry()
