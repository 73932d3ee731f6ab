"""The ``schemalog`` command: a thin client of the store, the log and the projections.

Exit codes: 0 success; 1 "something differs / something to do" where a check is
asked for (``verify`` finding tampering); 2 usage or input error; 3 concurrency
conflict (the stream moved past ``expected_version``). Errors are one line on
stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sqlite3
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from service.settings import DEFAULT_STORE, Settings

# Every command imports what it uses inside its function, so that `--help`, `--version` and the read
# commands start without SQLAlchemy, the dialects, asyncpg or the reconciler (tests/test_cli_startup.py).
if TYPE_CHECKING:
    import pydantic

    from events.checkpoint import Checkpoint, CheckpointProblem
    from events.envelope import Changeset, RecordedEvent
    from events.store import EventStore
    from projections.diff import RenameCandidate
    from service.app.databases import Target
    from service.config import Config
    from service.reconciler.apply import Outcome

    Command = Callable[[argparse.Namespace, EventStore], Awaitable[int]]


_Key = TypeVar("_Key")

EXIT_OK = 0
EXIT_DIFFERS = 1
EXIT_USAGE = 2
EXIT_CONFLICT = 3
EXIT_INTERNAL = 70
EXIT_PIPE = 141  # 128 + SIGPIPE: the reader closed the output early (`| head`), as Unix tools end


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


class _Version(argparse.Action):
    """``--version``: ``schemalog <version>`` from the installed package's metadata, exit 0."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any):
        super().__init__(option_strings, dest, nargs=0, help="print the version and exit", **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *_args: Any, **_kwargs: Any) -> NoReturn:
        number = _dist_info_version()
        if number is None:  # not a plain dist-info on sys.path (an egg, a zip): what importlib.metadata finds
            from importlib.metadata import PackageNotFoundError, version

            try:
                number = version("schemalog")
            except PackageNotFoundError:  # run from a source tree that was never installed
                number = "unknown"
        sys.stdout.write(f"schemalog {number}\n")
        parser.exit(EXIT_OK)


def _dist_info_version() -> str | None:
    """The ``Version:`` of the first ``schemalog-*.dist-info/METADATA`` on sys.path (the one
    importlib.metadata would read), without importing importlib.metadata (email, zipfile, ...: a third
    of ``--version``'s time); None if there is none."""
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            if not (name.startswith("schemalog-") and name.endswith(".dist-info")):
                continue
            try:
                with open(os.path.join(entry, name, "METADATA"), encoding="utf-8") as f:
                    for line in f:
                        if not line.strip():
                            break
                        if line.startswith("Version:"):
                            return line.split(":", 1)[1].strip()
            except OSError:
                continue
    return None


# --------------------------------------------------------------------------- output helpers


def out(text: str = "") -> None:
    sys.stdout.write(text + "\n")


def out_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def pydantic_message(exc: pydantic.ValidationError) -> str:
    """The first error of a pydantic ValidationError as one readable line (service.app.errors')."""
    from service.app.errors import pydantic_message as message

    return message(exc)


def describe(recorded: RecordedEvent) -> str:
    return describe_event(recorded.event)


def plural(count: int, word: str) -> str:
    """``1 change``, ``2 changes``."""
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _change_text(key: str, value: Any) -> str:
    """One field of a column_altered, in the log's words: ``default dropped``, ``nullable=false``."""
    if value is None:
        return f"{key} dropped"
    if isinstance(value, bool):
        return f"{key}={'true' if value else 'false'}"
    return f"{key}={value!r}" if key in ("default", "comment") else f"{key}={value}"


def describe_event(event: Any) -> str:
    """One event as a short line of text."""
    from events.catalog import to_dict

    return describe_data(to_dict(event))


def describe_data(data: dict[str, Any]) -> str:
    """One event's public form (to_dict's, or the log's own stored JSON: no model built) as a short line."""
    kind = data["type"]
    table = data.get("table", "")
    detail = ""
    if kind in ("column_added",):
        detail = f".{data['column']['name']} {data['column']['type']}"
    elif kind in ("column_dropped", "column_altered"):
        detail = f".{data['column']}"
        if kind == "column_altered":
            from events.catalog import ALTERED_FIELDS

            # the fields given a value first, then those given null, each in the event's field order
            given = [k for k in ALTERED_FIELDS if k in data]
            changed = [k for k in given if data[k] is not None] + [k for k in given if data[k] is None]
            detail += " " + " ".join([_change_text(k, data[k]) for k in changed])
    elif kind == "column_renamed":
        detail = f".{data['column']} -> {data['new_name']}"
    elif kind == "table_renamed":
        detail = f" -> {data['new_name']}"
    elif kind == "index_created":
        shown = data["index"].get("columns") or [
            e.get("column") or e.get("expression", "") for e in data["index"].get("elements", [])
        ]
        detail = f" {data['index']['name']}({', '.join(shown)})"
    elif kind in ("index_dropped", "constraint_dropped"):
        detail = f" {data['name']}"
    elif kind == "constraint_added":
        detail = f" {data['constraint']['name']} {data['constraint']['kind']}"
    elif kind == "primary_key_set":
        detail = f" ({', '.join(data.get('columns', []))})"  # none: the key dropped (a default, left out)
    elif kind == "table_created":
        detail = f" ({len(data['columns'])} columns)"
    elif kind.startswith("enum_"):
        detail = f"{data['name']}" + (f" {data['value']!r}" if "value" in data else "")
    elif kind.startswith("domain_"):
        detail = f"{data['name']}" + (f" {data['base']}" if "base" in data else "")
    elif kind.startswith("view_"):
        detail = f"{data['name']}" + (f" [{', '.join(data['definitions'])}]" if "definitions" in data else "")
    elif kind == "tag_created":
        return f"tag_created {data['tag']} -> v{data['version']}"
    elif kind == "sql_run":
        dialects = ", ".join(data["forward"])
        back = " (irreversible)" if data.get("backward") is None else ""
        return f"sql_run {data.get('description') or 'data step'} [{dialects}]{back}"
    elif "database" in data:  # a reconciler outcome
        steps = len(data.get("statements", []))
        return f"{kind} {data['stream']} v{data['from_version']} -> v{data['to_version']} ({steps} statements)"
    return f"{kind} {table}{detail}".rstrip()


# --------------------------------------------------------------------------- commands


async def cmd_init(args: argparse.Namespace, store: EventStore) -> int:
    await store.init()
    out(f"store ready: {store.url}")
    return EXIT_OK


def _write_config(args: argparse.Namespace) -> None:
    """``init --config [PATH]``: a commented schemalog.toml; an existing file is kept unless --force."""
    from service.config import write_config_template

    out(f"config written: {write_config_template(args.write_config, force=args.force)}")


# the arguments that name a file or a path prefix: completed as paths
_PATH_ARGS = frozenset({"file", "config", "write_config", "checkpoints", "key", "out"})


async def cmd_completion(args: argparse.Namespace, _store: None) -> int:
    """A static completion script generated from the parser (shtab), imported here only."""
    import shtab

    parser = build_parser()
    actions = list(parser._actions)
    while actions:
        action = actions.pop()
        if action.dest in _PATH_ARGS:
            action.complete = shtab.FILE  # type: ignore[attr-defined]
        if isinstance(action, argparse._SubParsersAction):
            actions.extend(a for command in action.choices.values() for a in command._actions)
    out(shtab.complete(parser, shell=args.shell).rstrip("\n"))
    return EXIT_OK


def _read_changeset_text(source: str) -> str:
    try:
        if source == "-":
            return sys.stdin.read()
        with open(source, encoding="utf-8") as handle:
            return handle.read()
    except OSError as exc:
        raise UsageError(f"cannot read {source}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        where = "standard input" if source == "-" else source
        raise UsageError(f"cannot read {where}: not UTF-8 text (byte {exc.start})") from None


def parse_changeset(text: str, *, actor: str | None, stream: str | None) -> Changeset:
    """A changeset from its JSON text, with CLI defaults applied (the user's name when it names no actor);
    BadRequest if bad."""
    from service.app.streams import changeset_from_text

    return changeset_from_text(text, actor=actor, stream=stream, default_actor=default_actor())


def default_actor() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return os.environ.get("USER", "unknown")


async def cmd_append(args: argparse.Namespace, store: EventStore) -> int:
    from service.app.streams import append_changeset

    changeset = parse_changeset(_read_changeset_text(args.file), actor=args.actor, stream=args.stream)
    await store.init()
    result = await append_changeset(store, changeset)
    if args.json:
        out_json(result.public())
    elif result.duplicate:
        out(
            f"changeset {result.changeset_id} was already recorded as {result.stream}"
            f" v{result.first_version}..v{result.last_version}; nothing appended"
        )
    else:
        count = result.count
        out(
            f"appended {count} event{'s' if count != 1 else ''} to {result.stream}:"
            f" v{result.first_version}..v{result.last_version} (changeset {result.changeset_id})"
        )
    return EXIT_OK


async def resolve_stream(args: argparse.Namespace, store: EventStore) -> str:
    """--stream, else $SCHEMALOG_STREAM, else the only stream there is, else ``default``."""
    from service.app.streams import default_stream

    return await default_stream(store, getattr(args, "stream", None) or os.environ.get("SCHEMALOG_STREAM"))


async def cmd_history(args: argparse.Namespace, store: EventStore) -> int:
    import contextlib

    import orjson

    from service.app.streams import HistoryQuery, history

    await store.init()
    if args.column and "." not in args.column and not args.table:
        raise UsageError("--column needs --table (or write --column TABLE.COLUMN)")
    if args.limit is not None and args.limit < 1:
        raise UsageError(f"--limit must be at least 1, not {args.limit}")
    if args.after is not None and args.after < 0:
        raise UsageError(f"--after must be a position (0 or more), not {args.after}")
    query = HistoryQuery(
        stream=args.stream,
        table=args.table,
        column=args.column,
        actor=args.actor,
        since=args.since,
        until=args.until,
        types=tuple(args.type) if args.type else None,
        reverse=args.reverse,
        after=args.after,
    )
    write, loads = sys.stdout.write, orjson.loads
    listed, last, more = 0, 0, False
    rows = await history(store, query)
    async with contextlib.aclosing(rows):
        async for chunk in rows:
            if args.limit is not None and listed + len(chunk) > args.limit:
                chunk, more = chunk[: args.limit - listed], True
            for row in chunk:
                if args.json:  # one element of the array at a time, as json.dumps(list, indent=2) writes them
                    text = json.dumps(row.to_recorded().public(), indent=2, ensure_ascii=False)
                    write(("[\n  " if not listed else ",\n  ") + text.replace("\n", "\n  "))
                else:
                    when = row.recorded_at[:19].replace("T", " ")
                    message = f"  {row.message}" if row.message else ""
                    what = describe_data(loads(row.data))  # the stored public form: no model built
                    write(f"{row.stream} v{row.version}  {when}  {row.actor}  {what}{message}\n")
                listed += 1
                last = row.position
            if more:
                break
    if args.json:
        write("\n]\n" if listed else "[]\n")
    elif not listed:
        out("no events" + (f" in stream {args.stream!r}" if args.stream else ""))
    if more:
        sys.stderr.write(f"schemalog: more events: the next page is --after {last}\n")
    return EXIT_OK


def _point(text: str | None) -> Any:
    from projections.schema import PointError, parse_point

    try:
        return parse_point(text)
    except PointError as exc:
        raise UsageError(str(exc)) from None


async def cmd_tag(args: argparse.Namespace, store: EventStore) -> int:
    from service.app.streams import create_tag

    await store.init()
    stream = await resolve_stream(args, store)
    actor = args.actor or default_actor()
    tagged = await create_tag(store, stream, args.name, at=args.at, actor=actor, message=args.message)
    out(f"tagged {stream} version {tagged.version} as {args.name!r} (recorded as v{tagged.recorded_version})")
    return EXIT_OK


def schema_text(schema: Any) -> list[str]:
    lines = []
    for name in sorted(schema.tables):
        table = schema.tables[name]
        lines.append(f"table {name}" + (f"  -- {table.comment}" if table.comment else ""))
        for c in table.columns:
            bits = [f"  {c.name} {c.type}"]
            if not c.nullable:
                bits.append("not null")
            if c.identity:
                bits.append("identity")
            if c.default is not None:
                bits.append(f"default {c.default}")
            if c.comment:
                bits.append(f"-- {c.comment}")
            lines.append(" ".join(bits))
        if table.primary_key:
            lines.append(f"  primary key ({', '.join(table.primary_key)})")
        for i in table.indexes:
            lines.append(f"  {'unique ' if i.unique else ''}index {i.name} ({', '.join(i.columns)})")
        for k in table.constraints:
            if k.kind == "foreign_key" and k.references is not None:
                extra = "".join(f" on {w} {a}" for w, a in (("delete", k.on_delete), ("update", k.on_update)) if a)
                lines.append(
                    f"  foreign key {k.name} ({', '.join(k.columns)}) references"
                    f" {k.references.table} ({', '.join(k.references.columns)}){extra}"
                )
            elif k.kind == "unique":
                lines.append(f"  unique {k.name} ({', '.join(k.columns)})")
            else:
                lines.append(f"  check {k.name} ({k.expression})")
    return lines


def public_schema_text(tables: dict[str, dict[str, Any]]) -> list[str]:
    """:func:`schema_text` of the schema in public form (a fold's, projections.replay): the same lines, with
    a public form's defaults where it leaves a field out, and no model built (tests/test_cli_startup.py
    compares the two)."""
    lines = []
    for name in sorted(tables):
        table = tables[name]
        lines.append(f"table {name}" + (f"  -- {table['comment']}" if table.get("comment") else ""))
        for c in table["columns"]:
            bits = [f"  {c['name']} {c['type']}"]
            if not c.get("nullable", True):
                bits.append("not null")
            if c.get("identity"):
                bits.append("identity")
            if c.get("default") is not None:
                bits.append(f"default {c['default']}")
            if c.get("comment"):
                bits.append(f"-- {c['comment']}")
            lines.append(" ".join(bits))
        if table.get("primary_key"):
            lines.append(f"  primary key ({', '.join(table['primary_key'])})")
        for i in table.get("indexes") or ():
            unique = "unique " if i.get("unique") else ""
            lines.append(f"  {unique}index {i['name']} ({', '.join(i.get('columns', ()))})")
        for k in table.get("constraints") or ():
            ref = k.get("references")
            if k["kind"] == "foreign_key" and ref is not None:
                actions = (("delete", k.get("on_delete")), ("update", k.get("on_update")))
                extra = "".join(f" on {w} {a}" for w, a in actions if a)
                lines.append(
                    f"  foreign key {k['name']} ({', '.join(k.get('columns', ()))}) references"
                    f" {ref['table']} ({', '.join(ref['columns'])}){extra}"
                )
            elif k["kind"] == "unique":
                lines.append(f"  unique {k['name']} ({', '.join(k.get('columns', ()))})")
            else:
                lines.append(f"  check {k['name']} ({k.get('expression')})")
    return lines


async def cmd_show(args: argparse.Namespace, store: EventStore) -> int:
    from service.app.streams import public_schema_at, schema_at, schema_sql

    await store.init()
    stream = await resolve_stream(args, store)
    if args.format == "text":  # from the fold's public form: no model built, pydantic never imported
        shown = await public_schema_at(store, stream, args.at)
        out(f"-- stream {stream} at version {shown.version}: {len(shown.tables)} tables")
        for line in public_schema_text(shown.tables):
            out(line)
        return EXIT_OK
    at = await schema_at(store, stream, args.at)
    if args.format == "json":
        out_json(at.public())
    elif args.format == "sql":
        script = schema_sql(at.schema, args.dialect)
        out(f"-- schemalog: stream {stream} at version {at.version}, {script.dialect}")
        for statement in script.statements:
            out(statement + ";")
    else:
        out(f"-- stream {stream} at version {at.version}: {len(at.schema.tables)} tables")
        for line in schema_text(at.schema):
            out(line)
    return EXIT_OK


async def cmd_diff(args: argparse.Namespace, store: EventStore) -> int:
    from service.app.streams import diff_points

    await store.init()
    stream = await resolve_stream(args, store)
    diff = await diff_points(store, stream, args.from_, args.to)
    va, vb, steps = diff.from_version, diff.to_version, diff.changes
    if args.json:
        out_json(diff.public())
        return EXIT_OK
    if not steps:
        out(f"no changes between version {va} and version {vb}")
        return EXIT_OK
    direction = "back" if vb < va else "forward"
    out(f"-- {stream}: version {va} -> {vb} ({direction}, {len(steps)} changes)")
    for c in steps:
        tag = f"undo v{c.source_version}" if c.backward else f"v{c.source_version}"
        out(f"{tag}: {describe_event(c.event)}")
    return EXIT_OK


async def cmd_revert(args: argparse.Namespace, store: EventStore) -> int:
    from service.app.streams import revert

    await store.init()
    stream = await resolve_stream(args, store)
    actor = args.actor or default_actor()
    result = await revert(store, stream, args.target, actor=actor, message=args.message)
    if result.appended is None:
        out(f"changeset {result.changeset_id} changed no schema; nothing to revert")
        return EXIT_OK
    appended = result.appended
    out(
        f"reverted changeset {result.changeset_id}: appended {appended.count} events to {stream}"
        f" v{appended.first_version}..v{appended.last_version}"
    )
    return EXIT_OK


async def cmd_blame(args: argparse.Namespace, store: EventStore) -> int:
    from events.envelope import format_time
    from service.app.streams import blame_table

    await store.init()
    stream = await resolve_stream(args, store)
    found = await blame_table(store, stream, args.table, args.at, require_stream=bool(args.stream))
    if args.json:
        out_json(found.public())
        return EXIT_OK
    out(f"-- {stream} {args.table} at version {found.version}")
    rows = []
    for b in found.lines:
        created = f"v{b.created.version} {b.created.actor} {format_time(b.created.recorded_at)[:10]}"
        changed = f"v{b.changed.version} {b.changed.actor} {format_time(b.changed.recorded_at)[:10]}"
        former = f" (was {', '.join(b.names)})" if b.names else ""
        why = f"  {b.changed.message}" if b.changed.message else ""
        rows.append((b.kind, f"{b.name}{former}", created, changed, why))
    kind_w = max((len(r[0]) for r in rows), default=0)
    name_w = max((len(r[1]) for r in rows), default=0)
    created_w = max((len(r[2]) for r in rows), default=0)
    for kind, name, created, changed, why in rows:
        out(f"{kind:<{kind_w}}  {name:<{name_w}}  created {created:<{created_w}}  last changed {changed}{why}")
    return EXIT_OK


async def cmd_verify(args: argparse.Namespace, store: EventStore) -> int:
    """The chains; with --checkpoints, the signed heads; with --databases, the markers; with --deep, the
    snapshots. Every input is read before the store is: bad input writes nothing and exits 2."""
    from events.checkpoint import CheckpointError, load_trusted_key, parse_checkpoints, read_checkpoint_file
    from service.app.streams import VerifyRequest, verify

    checkpoints: list[Checkpoint] = []
    line_problems: list[CheckpointProblem] = []
    if args.checkpoints:
        trusted = _checkpoint_key(args.key, load_trusted_key)
        try:
            lines = read_checkpoint_file(args.checkpoints)
            checkpoints, line_problems = parse_checkpoints(lines, trusted, source=args.checkpoints)
        except CheckpointError as exc:
            raise UsageError(str(exc)) from None
    elif args.key:
        raise UsageError("--key goes with --checkpoints FILE")
    config: Config = args.config_obj
    if args.databases and not config.databases:
        raise UsageError("--databases: schemalog.toml names no databases")
    await store.init()
    request = VerifyRequest(
        checkpoints=checkpoints,
        checkpoint_problems=line_problems,
        checked_checkpoints=bool(args.checkpoints),
        deep=args.deep,
        databases=config.databases if args.databases else None,
    )
    result = await verify(store, request)
    for note in result.notes:
        sys.stderr.write(f"note: {note}\n")
    if args.json:
        out_json(result.public())
    else:
        for problem in result.problems:
            sys.stderr.write(f"TAMPERED: {problem['text']}\n")
        for item in result.unreachable:
            sys.stderr.write(f"UNREACHABLE: {item['text']}\n")
        if result.ok:
            out("ok: " + "; ".join(result.done))
        else:
            unreachable = f", {len(result.unreachable)} unreachable" if result.unreachable else ""
            count = f"{len(result.problems)} problem(s)" + unreachable
            out(f"FAILED: {count} in {result.streams} streams, {result.events} events")
    return EXIT_OK if result.ok else EXIT_DIFFERS


def _checkpoint_key(given: str | None, load: Callable[[str], _Key]) -> _Key:
    """A checkpoint key from --key, else $SCHEMALOG_CHECKPOINT_KEY; UsageError if missing or bad."""
    from events.checkpoint import KEY_ENV as CHECKPOINT_KEY_ENV
    from events.checkpoint import CheckpointError

    source = given or os.environ.get(CHECKPOINT_KEY_ENV)
    if not source:
        raise UsageError(f"give --key FILE (or set ${CHECKPOINT_KEY_ENV})")
    try:
        return load(source)
    except CheckpointError as exc:
        raise UsageError(str(exc)) from None


async def cmd_keygen(args: argparse.Namespace, store: EventStore | None) -> int:
    from events.checkpoint import CheckpointError, generate_keypair

    try:
        private, public, key = generate_keypair(args.out)
    except CheckpointError as exc:
        raise UsageError(str(exc)) from None
    out(f"wrote {private} (the private key: keep it away from the store) and {public} (key id {key})")
    return EXIT_OK


async def cmd_checkpoint(args: argparse.Namespace, store: EventStore) -> int:
    from events.checkpoint import (
        CheckpointError,
        CheckpointRefused,
        append_checkpoint,
        load_signing_key,
        take_checkpoint,
    )

    key = _checkpoint_key(args.key, load_signing_key)
    await store.init()
    try:
        checkpoint = await take_checkpoint(store, key)
    except CheckpointRefused as exc:
        for problem in exc.problems:
            sys.stderr.write(f"TAMPERED: {problem}\n")
        sys.stderr.write(f"schemalog: {exc}\n")
        return EXIT_DIFFERS
    try:
        append_checkpoint(args.out, checkpoint)
    except CheckpointError as exc:
        raise UsageError(str(exc)) from None
    out(
        f"checkpoint of {len(checkpoint['streams'])} streams appended to {args.out}"
        f" (store {checkpoint['store_id']}, key {checkpoint['key_id']})"
    )
    return EXIT_OK


def _targets(args: argparse.Namespace, config: Config) -> list[Target]:
    """The databases asked for by --url, --database, --all and --stream (service/app/databases.py)."""
    from service.app.databases import select_targets

    return select_targets(
        config, url=args.url, database=args.database, stream=args.stream, all_=getattr(args, "all", False)
    )


def _print_outcome(o: Outcome) -> None:
    span = f"{o.from_version} -> {o.to_version}"
    if o.status == "planned":
        out(f"-- {o.database}: plan {o.stream} {span} ({len(o.statements)} statements)")
        for step in o.steps:
            what = f"undo v{step['source_version']}" if step["inverse"] else f"v{step['source_version']}"
            out(f"-- {what} {step['event_type']}")
            out(step["sql"] + ";")
        for item in o.destructive:
            out(f"-- destructive: {item}")
        if o.detail:  # (what migrate would refuse: approvals missing; an interrupted run finished first)
            out(f"-- {one_line(o.detail)}")
        return
    if o.status == "up_to_date":
        out(f"{o.database}: up to date at {o.stream} version {o.to_version}")
    elif o.status == "applied":
        out(f"{o.database}: applied {o.stream} {span} ({len(o.statements)} statements, {o.duration_ms} ms)")
    elif o.status == "faked":
        out(f"{o.database}: marker moved to {o.stream} version {o.to_version} (faked, nothing run)")
        for line in o.drift:
            sys.stderr.write(f"  warning: {line}\n")
    else:
        sys.stderr.write(f"schemalog: {o.database}: {o.status}: {o.detail}\n")
        for line in o.drift[:50]:
            sys.stderr.write(f"  drift: {line}\n")
        if o.failed_statement:
            sys.stderr.write(f"  statement: {o.failed_statement}\n")


def _exit_for(outcomes: list[Outcome]) -> int:
    if all(o.ok for o in outcomes):
        return EXIT_OK
    if any(o.status == "refused" for o in outcomes) and all(o.ok or o.status == "refused" for o in outcomes):
        return EXIT_USAGE
    return EXIT_DIFFERS


def _check_outcomes(outcomes: list[Outcome], *, as_json: bool) -> int:
    """``migrate --check``: one line per database; 0 when every one is at its target, 1 when one is behind
    (or ahead: migrate would move it), drifted or unreachable, 2 when migrate would refuse."""
    from service.app.databases import check_outcomes

    checks = check_outcomes(outcomes)
    if as_json:
        out_json([c.public() for c in checks])
    else:
        for c in checks:
            if c.state in ("up_to_date", "behind"):
                out(one_line(c.text))
            else:
                sys.stderr.write(f"schemalog: {one_line(c.text)}\n")
    if all(c.state == "up_to_date" for c in checks):
        return EXIT_OK
    if all(c.state in ("up_to_date", "refused") for c in checks):
        return EXIT_USAGE
    return EXIT_DIFFERS


async def cmd_migrate(args: argparse.Namespace, store: EventStore) -> int:
    from service.app.databases import migrate_targets
    from service.progress import display_for

    await store.init()
    config: Config = args.config_obj
    targets = _targets(args, config)
    _point(args.to)  # (a bad --to: one line before anything else)
    if args.plan and args.fake:
        raise UsageError("--plan and --fake do not go together")
    if args.check and (args.plan or args.fake):
        raise UsageError("--check reads only: it does not go with --plan or --fake")
    display = display_for(verbose=args.verbose, quiet=args.quiet)
    try:
        outcomes = await migrate_targets(
            store,
            targets,
            actor=args.actor or default_actor(),
            to=args.to,
            fake=args.fake,
            plan_only=args.plan or args.check,  # --check: read as a plan; nothing applied, nothing recorded
            allow_destructive=args.allow_destructive,
            lock_timeout=args.lock_timeout,
            progress=display,
        )
    finally:
        if display is not None:
            display.close()  # the bar ends before anything is printed
    if args.check:
        return _check_outcomes(outcomes, as_json=args.json)
    if args.json:
        out_json([o.public() for o in outcomes])
    else:
        for o in outcomes:
            _print_outcome(o)
    return _exit_for(outcomes)


async def cmd_sqlmigrate(args: argparse.Namespace, store: EventStore) -> int:
    from service.app.databases import dialect_sql, known_dialect, plan_targets

    await store.init()
    if args.dialect:
        if args.database or args.url:
            raise UsageError("--dialect is for printing SQL without a database; drop --database/--url")
        known_dialect(args.dialect)  # (an unknown dialect: said before the stream is looked for)
        stream = await resolve_stream(args, store)
        outcomes = [await dialect_sql(store, stream, args.dialect, from_=args.from_, to=args.to)]
    else:
        outcomes = await plan_targets(store, _targets(args, args.config_obj), actor=default_actor(), to=args.to)
    if args.json:
        out_json([o.public() for o in outcomes])
    else:
        for o in outcomes:
            _print_outcome(o)
    return _exit_for(outcomes)


async def cmd_showmigrations(args: argparse.Namespace, store: EventStore) -> int:
    from service.app.databases import show_migrations

    await store.init()
    config: Config = args.config_obj
    if not args.url and not args.database:
        args.all = True
        if not config.databases:
            raise UsageError("schemalog.toml names no databases; give --url URL")
    rows = await show_migrations(store, _targets(args, config))
    if args.json:
        out_json([r.public() for r in rows])
    else:
        for r in rows:
            if r.status in ("unreachable", "failed"):
                sys.stderr.write(f"schemalog: {r.database}: {r.status}: {one_line(r.error or '')}\n")
                continue
            where = "no marker" if r.marker_version is None else f"at v{r.marker_version}"
            out(
                f"{r.database} ({r.stream}): {where}, target v{r.target_version},"
                f" {r.pending} pending, {r.status}"
            )
            for line in (r.drift or [])[:20]:
                out(f"  drift: {line}")
    return EXIT_OK if all(r.ok for r in rows) else EXIT_DIFFERS


def _ask(question: str) -> bool:
    sys.stdout.write(question + " [y/N] ")
    sys.stdout.flush()
    answer = sys.stdin.readline().strip().lower()
    return answer in ("y", "yes")


def _ask_fill(table: str, column: str) -> str:
    """Django's one-off default: an expression read from the terminal, asked again until it is one."""
    from events.expressions import ExpressionError, check_expression

    while True:
        sys.stdout.write(
            f"{table}.{column} is NOT NULL without a default: a one-off value for the rows already in {table}"
            " (an SQL expression, such as 0 or 'none'; empty to stop): "
        )
        sys.stdout.flush()
        answer = sys.stdin.readline().strip()
        if not answer:
            raise UsageError(f"stopped at {table}.{column}: nothing written (--default {table}.{column}=EXPR)")
        try:
            check_expression(answer, "default")
        except ExpressionError as exc:
            out(f"  {exc}")
            continue
        return answer


def _confirm_rename(c: RenameCandidate) -> bool:
    if c.column is None:
        return _ask(f"Did you rename table {c.table} to {c.new}?")
    return _ask(f"Did you rename {c.table}.{c.column} to {c.table}.{c.new}?")


async def cmd_makemigrations(args: argparse.Namespace, store: EventStore) -> int:
    from service.app.authoring import load_models, parse_fills, parse_renames, propose, record

    await store.init()
    models = load_models(args.models)
    stream = args.stream or os.environ.get("SCHEMALOG_STREAM") or await resolve_stream(args, store)
    interactive = sys.stdin.isatty() and not args.check
    proposal = await propose(
        store,
        models,
        stream,
        renames=parse_renames(args.rename),
        fills=parse_fills(args.default),
        detect_renames=not args.no_rename,
        confirm_rename=_confirm_rename if interactive else None,
        ask_fill=_ask_fill if interactive else None,
        listing=args.check,
    )
    version, events = proposal.version, proposal.events
    if not events:
        out(f"No changes detected in {args.models} against {stream} version {version}")
        return EXIT_OK
    if args.check:
        out(f"{plural(len(events), 'change')} between {args.models} and {stream} version {version}:")
        for e in events:
            out(f"  {describe_event(e)}")
        if proposal.candidates:
            out("  (possible renames: " + ", ".join(str(c) for c in proposal.candidates) + ")")
        return EXIT_DIFFERS
    message = args.message or f"makemigrations from {args.models}"
    if args.dry_run:
        out_json(proposal.public(message))
        return EXIT_OK
    result = await record(store, proposal, actor=args.actor or default_actor(), message=message)
    out(f"recorded {plural(len(events), 'change')} in {stream} v{result.first_version}..v{result.last_version}:")
    for e in events:
        out(f"  {describe_event(e)}")
    return EXIT_OK


async def cmd_import(args: argparse.Namespace, store: EventStore) -> int:
    from service.app.databases import import_into, import_target
    from service.progress import display_for

    await store.init()
    target = import_target(args.config_obj, url=args.url, database=args.database, stream=args.stream)
    stream = target.stream
    display = display_for(verbose=args.verbose, quiet=args.quiet)
    try:
        result = await import_into(store, target, actor=args.actor, progress=display)
    finally:
        if display is not None:
            display.close()
    if result.kind == "nothing":
        out(f"{result.database}: matches {stream}; nothing to import")
        return EXIT_OK
    what = "baseline" if result.kind == "baseline" else "drift adopted"
    out(
        f"{result.database}: {what}: {result.events} events recorded in {stream}"
        f" v{result.first_version}..v{result.last_version}; marker set to v{result.last_version}"
    )
    for line in result.warnings:
        sys.stderr.write(f"  warning: {line}\n")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="schemalog",
        description="Event-sourced schema history: every schema change an event in an append-only log.",
    )
    parser.add_argument(
        "--store",
        help="the event log URL (default: $SCHEMALOG_STORE or sqlite:///schemalog.db)",
    )
    parser.add_argument("--config", help="the config file (default: $SCHEMALOG_CONFIG or ./schemalog.toml)")
    talk = parser.add_mutually_exclusive_group()
    talk.add_argument(
        "-v", "--verbose", action="store_true", help="log what happens on stderr, each statement as it starts"
    )
    talk.add_argument("-q", "--quiet", action="store_true", help="no progress bar on a terminal")
    parser.add_argument("--version", action=_Version)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("init", help="create the store's tables (idempotent)")
    p.add_argument(
        "--config",
        dest="write_config",
        nargs="?",
        const="schemalog.toml",
        metavar="PATH",
        help="first write a commented config file there (default ./schemalog.toml)",
    )
    p.add_argument("--force", action="store_true", help="with --config: overwrite the file if it exists")
    p.set_defaults(run=cmd_init)

    p = sub.add_parser("append", help="append a changeset (JSON file, or - for stdin)")
    p.add_argument("file", metavar="FILE", help="changeset JSON file, or - for standard input")
    p.add_argument("--actor", help="who makes the change (default: the changeset's, else the OS user)")
    p.add_argument("--stream", help="append to this stream (overrides the file's)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(run=cmd_append)

    p = sub.add_parser("history", help="list recorded events (filters follow renames)")
    p.add_argument("--stream", help="only this stream")
    p.add_argument("--table", help="events of this table (under any of its names)")
    p.add_argument("--column", help="events of this column (with --table, or TABLE.COLUMN)")
    p.add_argument("--actor", help="events by this actor")
    p.add_argument("--since", help="recorded at or after this time (ISO 8601)")
    p.add_argument("--until", help="recorded at or before this time (ISO 8601)")
    p.add_argument("--type", action="append", help="events of this type (repeatable)")
    p.add_argument("--json", action="store_true", help="one JSON object per event, in an array")
    p.add_argument("--limit", type=int, metavar="N", help="at most N events (the next page's --after: on stderr)")
    p.add_argument("--reverse", action="store_true", help="newest first")
    p.add_argument(
        "--after",
        type=int,
        metavar="POSITION",
        help="only events past this global position in the listing's order (before it with --reverse)",
    )
    p.set_defaults(run=cmd_history)

    point_help = "a version (12), a time (2026-11-20T10:00Z), a tag, or head"
    p = sub.add_parser("tag", help="name a point of a stream")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--at", help=f"the point to name (default: head): {point_help}")
    p.add_argument("--stream")
    p.add_argument("--actor")
    p.add_argument("-m", "--message")
    p.set_defaults(run=cmd_tag)

    p = sub.add_parser("show", help="the schema at a point")
    p.add_argument("--at", help=point_help)
    p.add_argument("--stream")
    p.add_argument("--format", choices=["text", "json", "sql"], default="text")
    p.add_argument("--dialect", default="postgresql", help="for --format sql: postgresql, mysql or sqlite")
    p.set_defaults(run=cmd_show)

    p = sub.add_parser("diff", help="the changes between two points (inverses when going back)")
    p.add_argument("from_", metavar="FROM", help=point_help)
    p.add_argument("to", metavar="TO", help=point_help)
    p.add_argument("--stream")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_diff)

    p = sub.add_parser("revert", help="append the inverse of a changeset (like git revert)")
    p.add_argument("target", metavar="POINT|CHANGESET", help="a changeset id, or a version or tag inside it")
    p.add_argument("--stream")
    p.add_argument("--actor")
    p.add_argument("-m", "--message")
    p.set_defaults(run=cmd_revert)

    p = sub.add_parser("blame", help="who created and last changed each column, index and constraint")
    p.add_argument("table", metavar="TABLE")
    p.add_argument("--at", help=point_help)
    p.add_argument("--stream")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_blame)

    def database_args(p: argparse.ArgumentParser, *, all_: bool = True) -> None:
        p.add_argument("--database", help="a database named in schemalog.toml")
        p.add_argument("--url", help="a database URL: postgresql://, mysql:// (mariadb://), sqlite:///")
        if all_:
            p.add_argument("--all", action="store_true", help="every database in schemalog.toml, concurrently")
        p.add_argument("--stream", help="the stream the database follows (default: its config, else default)")

    p = sub.add_parser("migrate", help="bring databases to a point of their stream (forward or back)")
    database_args(p)
    p.add_argument("--to", help=f"the target point (default: the config's target, else head): {point_help}")
    p.add_argument("--fake", action="store_true", help="move the marker only; run nothing (recorded as faked)")
    p.add_argument("--plan", action="store_true", help="show what would run; run nothing")
    p.add_argument(
        "--check", action="store_true", help="CI: exit 1 if a database is behind its target or drifted; run nothing"
    )
    p.add_argument("--allow-destructive", action="store_true", help="let drops, narrowing and NOT NULL through")
    p.add_argument("--lock-timeout", type=float, help="seconds to wait for another migrator (default 60)")
    p.add_argument("--actor")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_migrate)

    p = sub.add_parser("sqlmigrate", help="the SQL a migration would run; nothing is run")
    database_args(p, all_=False)
    p.add_argument("--dialect", help="print for this dialect without a database: postgresql, mysql, sqlite")
    p.add_argument("--from", dest="from_", help="with --dialect: the starting point (default 0)")
    p.add_argument("--to", help=point_help)
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_sqlmigrate)

    p = sub.add_parser("showmigrations", help="each database: marker, target, pending, drift")
    database_args(p, all_=False)
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_showmigrations)

    p = sub.add_parser("makemigrations", help="record the difference between SQLAlchemy models and the head")
    p.add_argument("--models", required=True, help="MODULE:ATTR, a MetaData or a declarative base")
    p.add_argument("--stream")
    p.add_argument("-m", "--message")
    p.add_argument("--actor")
    p.add_argument("--check", action="store_true", help="exit 1 if the models and the head differ; record nothing")
    p.add_argument("--dry-run", action="store_true", help="print the changeset; record nothing")
    p.add_argument(
        "--rename",
        action="append",
        metavar="OLD=NEW",
        help="confirm a rename: users.mail=email or old_table=new_table (repeatable)",
    )
    p.add_argument("--no-rename", action="store_true", help="treat every drop+add as a drop and an add")
    p.add_argument(
        "--default",
        action="append",
        metavar="TABLE.COLUMN=EXPR",
        help="the one-off value for rows already in a table, of a NOT NULL column added (or made NOT NULL)"
        " without a default (repeatable; asked on a terminal)",
    )
    p.set_defaults(run=cmd_makemigrations)

    p = sub.add_parser("import", help="a live database into the log: a baseline, or its drift adopted")
    p.add_argument("--database", help="a database of schemalog.toml (or the name to record with --url)")
    p.add_argument("--url", help="the database URL")
    p.add_argument("--stream")
    p.add_argument("--actor", help="who to record (default import:DATABASE)")
    p.set_defaults(run=cmd_import, all=False)

    p = sub.add_parser("verify", help="walk every hash chain; exit 1 if anything was tampered with")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--checkpoints", metavar="FILE", help="check the store against these signed checkpoints")
    p.add_argument(
        "--key", help="with --checkpoints: the trusted key, public or private (default: $SCHEMALOG_CHECKPOINT_KEY)"
    )
    p.add_argument("--databases", action="store_true", help="check every schemalog.toml database's marker")
    p.add_argument("--deep", action="store_true", help="recompute every snapshot by replay")
    p.set_defaults(run=cmd_verify)

    p = sub.add_parser("keygen", help="make a key pair for signed checkpoints: PREFIX.key and PREFIX.pub")
    p.add_argument("--out", required=True, metavar="PREFIX", help="write PREFIX.key (mode 0600) and PREFIX.pub")
    p.set_defaults(run=cmd_keygen, no_store=True)

    p = sub.add_parser("checkpoint", help="sign the head of every stream; append the line to a file")
    p.add_argument("--key", help="the private key (PREFIX.key; default: $SCHEMALOG_CHECKPOINT_KEY)")
    p.add_argument("--out", required=True, metavar="FILE", help="the checkpoint file (one JSON line appended)")
    p.set_defaults(run=cmd_checkpoint)

    from service.cli_fleet import add_parsers as add_fleet_parsers  # (imports nothing heavy)

    add_fleet_parsers(sub)
    from service.cli_auth import add_parsers as add_auth_parsers  # (imports nothing heavy)

    add_auth_parsers(sub)
    __import__("service.cli_api").cli_api.add_parsers(sub)  # `serve` (imports nothing heavy)

    p = sub.add_parser("completion", help="print a shell completion script: bash or zsh")
    p.add_argument("shell", choices=["bash", "zsh"])
    p.set_defaults(run=cmd_completion, no_store=True)
    return parser


async def run(args: argparse.Namespace, settings: Settings) -> int:
    from events.store import StoreError, open_store
    from service.config import load_config

    if getattr(args, "no_store", False):  # keygen: no store, no config
        no_store: Callable[[argparse.Namespace, None], Awaitable[int]] = args.run
        return await no_store(args, None)
    if getattr(args, "write_config", None):  # init --config: the file first, so that a refusal makes no store
        _write_config(args)
    args.config_obj = load_config(args.config)
    url = args.store or os.environ.get("SCHEMALOG_STORE") or args.config_obj.store or DEFAULT_STORE
    store = await open_store(url, create=args.command == "init")  # only init makes a store
    try:
        command: Command = args.run
        return await command(args, store)
    except sqlite3.DatabaseError as exc:
        # the store's own SQLite file found damaged while reading it (a target's errors come wrapped
        # by SQLAlchemy): the file's fault, not a bug
        if getattr(exc, "sqlite_errorcode", 0) & 0xFF not in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
            raise
        raise StoreError(f"the store {url} is damaged: {exc}") from exc
    finally:
        await store.close()


def one_line(message: str) -> str:
    """An error message as one line: a line break or other control character in it (a name quoted
    without repr, say) written as its escape."""
    if message.isprintable():
        return message
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in message)


REPORT_TO = "the schemalog issue tracker (schemalog issues)"


def _write_error_details(exc: BaseException) -> str | None:
    """The traceback of an internal error, written to a new file under ~/.cache/schemalog/ (or
    $XDG_CACHE_HOME/schemalog/), else the system temp folder; its path, or None if neither could be written."""
    import tempfile
    import time
    import traceback
    from pathlib import Path

    text = "".join(traceback.format_exception(exc))
    header = f"schemalog internal error, {time.strftime('%Y-%m-%d %H:%M:%S')}\nargv: {sys.argv!r}\n\n"
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "schemalog"
    for folder in (cache, Path(tempfile.gettempdir())):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix="schemalog-error-", suffix=".txt", dir=folder)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(header + text)
            return name
        except OSError:
            continue
    return None


class _NeverRaised(Exception):
    """Stands for the error class of a module this run never imported: nothing can have raised it."""


def _error_of(module: str, name: str) -> type[Exception]:
    """``module.name`` if this run imported ``module``, else a class nothing raises (so that catching
    a reconciler error does not import the reconciler for a command that never used it)."""
    loaded = sys.modules.get(module)
    found: type[Exception] = getattr(loaded, name) if loaded is not None else _NeverRaised
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # pydantic looks its plugins up through every installed package's metadata on the first model it
    # builds (about 10 ms a process); schemalog uses none. PYDANTIC_DISABLE_PLUGINS is pydantic's own
    # switch; a value the user set wins.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    from service import logging as service_logging

    settings = Settings.from_env()
    # before anything imports structlog: configured when first imported (show and history never import it,
    # nor rich: a progress bar's rich is imported only for a bar)
    service_logging.configure("info" if args.verbose else settings.log_level)
    # imported after parsing, so that --help, --version and usage errors need none of them
    import asyncio

    from events.store import ChangesetIdConflict, ConcurrencyError, StoreError
    from service.config import ConfigError

    try:
        code = asyncio.run(run(args, settings))
        sys.stdout.flush()  # a reader that closed our output is found here, not in an error at exit
        return code
    except BrokenPipeError:  # the reader closed our output (`| head`): quiet, 141 as if SIGPIPE ended us
        try:  # what is still buffered goes nowhere, not into a second error at exit
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return EXIT_PIPE
    except UsageError as exc:
        message = str(exc)
    # (the classes of modules this run never imported: nothing of theirs can have raised)
    except (_error_of("service.app.errors", "BadRequest"), _error_of("service.app.errors", "NotFound")) as exc:
        message = str(exc)  # the application layer's input errors (service/app/errors.py)
    except _error_of("events.aggregate", "InvalidChange") as exc:
        message = f"rejected, nothing written: {exc}"
    # an event or changeset the code built from bad input (pydantic's error: show and history never import it)
    except _error_of("pydantic_core", "ValidationError") as exc:
        message = f"rejected: {pydantic_message(exc)}"  # type: ignore[arg-type]  # (a ValidationError)
    except ConcurrencyError as exc:
        sys.stderr.write(f"schemalog: conflict: {one_line(str(exc))}; current version {exc.current}\n")
        return EXIT_CONFLICT
    # the database could not be reached (import): exit 1, as migrate says it
    except _error_of("service.reconciler.targets", "ConnectFailed") as exc:
        sys.stderr.write(f"schemalog: error: {one_line(str(exc))}\n")
        return EXIT_DIFFERS
    except (
        _error_of("projections.schema", "PointError"),
        ConfigError,
        _error_of("service.reconciler.targets", "TargetError"),
    ) as exc:
        message = str(exc)
    except (ChangesetIdConflict, StoreError) as exc:
        message = str(exc)
    except KeyboardInterrupt:  # a migrate stops between statements, its marker saying how far it got
        resumes = "; the next migrate resumes where this one stopped" if args.command == "migrate" else ""
        sys.stderr.write(f"schemalog: interrupted{resumes}\n")
        return 130
    except Exception as exc:  # a bug: one line naming the file with the traceback; -v prints it
        if args.verbose:
            raise
        where = _write_error_details(exc)
        details = f"details in {where}" if where else "run with -v for details"
        sys.stderr.write(
            f"schemalog: internal error: {type(exc).__name__}: {one_line(str(exc))}; {details};"
            f" please report it at {REPORT_TO} with that file\n"
        )
        return EXIT_INTERNAL
    sys.stderr.write(f"schemalog: error: {one_line(message)}\n")
    return EXIT_USAGE


def entry() -> NoReturn:
    sys.exit(main())


if __name__ == "__main__":
    entry()
