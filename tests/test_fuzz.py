"""Fuzzed changesets through the CLI, in-process: nothing exits 70, a rejection writes nothing, and
nothing accepted breaks a later command.

Each case is a valid-looking changeset (tables, columns, indexes, constraints, tags, reconciler
outcomes) with one to three mutations: wrong JSON shapes, numbers past 64 bits, odd Unicode, deep
nesting, hostile names and types, SQL in expressions, fields missing or added, text cut short.
Hypothesis draws each case's seed, derandomized (CI runs the same cases every time; a failure prints
its text), and :func:`generate` builds the case from it; bench/fuzz.py runs the same generator
longer, with a seed of its own (docs/RELIABILITY.md has its figures).

After every accepted changeset, in batches: ``history``, ``show``, ``show --format sql`` for each
dialect (exit 2, a refusal, is fine there), ``append`` of one more valid event to every stream, and
``verify`` must all work.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import io
import json
import random
import sqlite3
import sys
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from service import cli

# --------------------------------------------------------------------------- the generator

STREAMS = ["app", "db:main"]
TABLES = ["users", "orders", "t", "sales.orders", "Ünïcode tåble", "%s", "a`b"]
COLUMNS = ["id", "email", "note", "n", "prénom", "first name", "it's", "%s", "a`b", "名前", "Name", "name"]
LEGAL_TYPES = [
    "integer",
    "bigint",
    "smallint",
    "text",
    "varchar(20)",
    "VARCHAR( 255 )",
    "char",
    "numeric(10,2)",
    "boolean",
    "double precision",
    "timestamp",
    "timestamptz",
    "date",
    "json",
    "uuid",
    "bytes",
    "interval",
    "postgresql:jsonb",
    "postgresql:integer[]",
    "mysql:enum('Active','b')",
    "mysql:mediumtext",
    "sqlite:any",
]
HOSTILE_TYPES: list[Any] = [
    {"name": "foo"},
    {"name": "varchar", "params": [-5]},
    {"name": "integer", "dialect": "oracle"},
    "varchar(-5)",
    "oracle:integer",
    "text(1,2,3)",
    "varchar(99999999999999999999)",
    "varchar(10485761)",
    "char(0)",
    "numeric(1001)",
    "numeric(5,6)",
    "mysql:enum('a\\','b')",
    "mysql:enum(a, b)",
    "postgresql:int4; DROP TABLE users",
    'postgresql:"char"',
    "mysql:varchar(99999999999)",
    "mysql:",
    ":",
    "",
    " ",
    "varchar(٣)",
    "integer[]",
    5,
    None,
    [],
    True,
]
HOSTILE_NAMES: list[Any] = [
    "",
    " ",
    "\t",
    " x",
    "x ",
    "ctid",
    "xmin",
    "tableoid",
    "schemalog_events",
    "SQLITE_master",
    "a.b",
    "a.b.c",
    ".",
    "x" * 64,
    "é" * 32,
    "a\x00b",
    "a\nb",
    "a\u202eb",
    "a\u200bb",
    "\ufeffx",
    "a\u2028b",
    "\ud800",
    "x\udfff",
    "😀",
    "İ",
    "'; DROP TABLE users; --",
    '"; DROP TABLE users; --',
    "`; DROP TABLE users; --",
    "%s%s%s%n",
    "head",
    "12",
    "v3",
    "2026-01-01",
    5,
    None,
    ["x"],
    {"name": "x"},
]
ODD_TEXT = [
    "\ud800",
    "\udc00x",
    "\u202e",
    "\u200b",
    "\x00",
    "\x1b[2J",
    "\n",
    "😀",
    "é",
    "\u0301",
    "ﷺ",
    "\uffff",
    "İ",
    "\\",
    '"',
    "'",
    "%s",
    "' OR 1=1 --",
]
HUGE_NUMBERS: list[Any] = [
    2**63,
    2**63 - 1,
    -(2**63),
    -(2**63) - 1,
    2**64,
    2**70,
    10**30,
    -1,
    0,
    1e308,
    -0.0,
    0.5,
    10**4000,
]
DEEP = "\x00deep\x00"
"""A placeholder string: the text form replaces it with brackets nested this deep (json.dumps would
recurse); see changeset_text."""
DEPTHS = [5, 31, 32, 33, 64, 1000, 100_000]
DEFAULTS = ["0", "'x'", "NULL", "1 + 1", "'a''b'", "-1"]
HOSTILE_EXPRESSIONS = [
    "0; DROP TABLE users",
    "(SELECT 1)",
    "1=1); DROP TABLE users; --",
    "0 -- comment",
    "$$x$$",
    "pg_sleep(10)",
    "'a' || (SELECT current_user)",
    "",
    "(",
    "'",
]
CHECKS = ["n > 0", "n >= 0 AND n < 10", "true", "n IS NOT NULL"]


TEXT_CHARS = "abcxyz XYZ019_-'\"\\%;é名😀\u0301\u202e\u200b\n\t"


def text(rng: random.Random, size: int) -> str:
    """Short text, often with a character that is hard on some layer."""
    return "".join(rng.choice(TEXT_CHARS) for _ in range(rng.randint(0, size)))


def column(rng: random.Random) -> dict[str, Any]:
    out: dict[str, Any] = {"name": rng.choice(COLUMNS), "type": rng.choice(LEGAL_TYPES)}
    if rng.random() < 0.5:
        out["nullable"] = rng.random() < 0.5
    if rng.randint(0, 4) == 0:
        out["default"] = rng.choice(DEFAULTS)
    if rng.randint(0, 4) == 0:
        out["comment"] = text(rng, 12)
    return out


def some_columns(rng: random.Random, low: int = 1) -> list[str]:
    return rng.sample(COLUMNS, rng.randint(low, 3))


EVENT_KINDS = [
    "table_created",
    "table_created",
    "table_created",
    "column_added",
    "column_added",
    "column_renamed",
    "column_altered",
    "column_dropped",
    "index_created",
    "constraint_added",
    "table_altered",
    "table_renamed",
    "table_dropped",
    "primary_key_set",
    "tag_created",
    "index_dropped",
    "migration_applied",
    "migration_failed",
    "drift_found",
]


def schema_event(rng: random.Random, kind: str | None = None) -> dict[str, Any]:
    kind = kind or rng.choice(EVENT_KINDS)
    table = rng.choice(TABLES)
    if kind == "table_created":
        columns = [column(rng) for _ in range(rng.randint(1, 4))]
        names = list(dict.fromkeys(c["name"] for c in columns))
        columns = [next(c for c in columns if c["name"] == n) for n in names]
        event: dict[str, Any] = {"type": kind, "table": table, "columns": columns}
        if rng.random() < 0.5:
            event["primary_key"] = names[:1]
        if rng.randint(0, 2) == 0:
            event["indexes"] = [{"name": "ix", "columns": names[:1], "unique": rng.random() < 0.5}]
        return event
    if kind == "column_added":
        return {"type": kind, "table": table, "column": column(rng)}
    if kind == "column_renamed":
        return {
            "type": kind,
            "table": table,
            "column": rng.choice(COLUMNS),
            "new_name": rng.choice(COLUMNS),
        }
    if kind == "column_altered":
        event = {"type": kind, "table": table, "column": rng.choice(COLUMNS)}
        change = rng.choice(["new_type", "nullable", "default", "comment"])
        event[change] = {
            "new_type": rng.choice(LEGAL_TYPES),
            "nullable": rng.random() < 0.5,
            "default": rng.choice([*DEFAULTS, None]),
            "comment": text(rng, 8),
        }[change]
        return event
    if kind == "column_dropped":
        return {"type": kind, "table": table, "column": rng.choice(COLUMNS)}
    if kind == "index_created":
        index = {"name": rng.choice(["ix", "IX", "users", "ix é"]), "columns": some_columns(rng)}
        return {"type": kind, "table": table, "index": index}
    if kind == "index_dropped":
        return {"type": kind, "table": table, "name": rng.choice(["ix", "IX", "users_ix"])}
    if kind == "constraint_added":
        which = rng.choice(["unique", "check", "foreign_key"])
        constraint: dict[str, Any] = {"name": f"k_{which}", "kind": which}
        if which == "check":
            constraint["expression"] = rng.choice(CHECKS)
        else:
            constraint["columns"] = some_columns(rng)
        if which == "foreign_key":
            constraint["references"] = {"table": rng.choice(TABLES), "columns": constraint["columns"]}
            constraint["on_delete"] = rng.choice(["cascade", "set null", "restrict", "no action"])
        return {"type": kind, "table": table, "constraint": constraint}
    if kind == "table_altered":
        return {"type": kind, "table": table, "comment": rng.choice([None, text(rng, 10)])}
    if kind == "table_renamed":
        return {"type": kind, "table": table, "new_name": rng.choice(TABLES)}
    if kind == "table_dropped":
        return {"type": kind, "table": table}
    if kind == "primary_key_set":
        return {"type": kind, "table": table, "columns": some_columns(rng, 0)}
    if kind == "tag_created":
        return {
            "type": kind,
            "tag": rng.choice(["release-1", "rc", "é", "v1.2.0"]),
            "version": rng.randint(0, 3),
        }
    outcome = {
        "type": kind,
        "database": "main",
        "stream": rng.choice(STREAMS),
        "from_version": rng.randint(0, 5),
        "to_version": rng.randint(0, 5),
        "statements": [text(rng, 10) for _ in range(rng.randint(0, 2))],
        "duration_ms": rng.randint(0, 10**6),
    }
    if kind == "drift_found":
        outcome["drift"] = ["column users.x is missing"]
    return outcome


def paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every place in a JSON value (dict keys and list positions), the root first."""
    yield path
    if isinstance(value, dict):
        for key, child in value.items():
            yield from paths(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from paths(child, (*path, index))


def get(value: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        value = value[step]
    return value


def put(root: Any, path: tuple[Any, ...], new: Any) -> Any:
    """``root`` with ``new`` at ``path`` (a copy of it: the pools' values are never shared, nor changed)."""
    new = copy.deepcopy(new)
    if not path:
        return new
    get(root, path[:-1])[path[-1]] = new
    return root


HOSTILE = ["shape", "number", "unicode", "nesting", "name", "type", "expression", "delete", "extra"]
LEGAL_ODD_NAMES = ["prénom", "名前", "first name", "%s", "a`b", "it's", 'say "hi"', "$1", "[x]", "Ærø", "é" * 31 + "x"]
LEGAL_ODD_TEXT = ["é", "名前", "😀", " ", "'", '"', "\\n", "\u0301", "%s", "; DROP TABLE users; --"]


def coherent_events(rng: random.Random) -> list[dict[str, Any]]:
    """A table made and then changed in one changeset: valid on a store that lacks the table."""
    table = rng.choice(TABLES) + rng.choice(["", *(f"_{n}" for n in range(200))])
    first = schema_event(rng, "table_created")
    first["table"] = table
    for index in first.get("indexes", []):
        index["name"] = f"{table.split('.')[-1]}_ix"
    names = [c["name"] for c in first["columns"]]
    bare = table.split(".")[-1]
    events = [first]
    for _ in range(rng.randint(0, 2)):
        kind = rng.choice(["column_added", "index_created", "unique", "check", "renamed", "comment", "tag"])
        fresh = rng.choice([c for c in [*COLUMNS, *LEGAL_ODD_NAMES] if c not in names])
        if kind == "column_added":
            events.append({"type": kind, "table": table, "column": {"name": fresh, "type": rng.choice(LEGAL_TYPES)}})
            names.append(fresh)
        elif kind == "index_created":
            events.append(
                {"type": kind, "table": table, "index": {"name": f"{bare}_{len(events)}_ix", "columns": names[:1]}}
            )
        elif kind == "unique":
            constraint = {"name": f"{bare}_{len(events)}_key", "kind": "unique", "columns": names[-1:]}
            events.append({"type": "constraint_added", "table": table, "constraint": constraint})
        elif kind == "check":
            constraint = {
                "name": f"{bare}_{len(events)}_check",
                "kind": "check",
                "expression": f"{names[0]!r} IS NULL",
            }
            events.append({"type": "constraint_added", "table": table, "constraint": constraint})
        elif kind == "renamed":
            events.append({"type": "column_renamed", "table": table, "column": names[-1], "new_name": fresh})
            names[-1] = fresh
        elif kind == "comment":
            events.append({"type": "table_altered", "table": table, "comment": text(rng, 10)})
        else:
            events.append({"type": "tag_created", "tag": f"t{rng.randint(0, 10**6)}", "version": 0})
    return events


@st.composite
def mutated_changeset(draw: Callable[..., Any]) -> tuple[str, list[str]]:
    """One case: hypothesis draws its seed (fixed by derandomize, or by @seed); :func:`generate` builds
    it from that seed (one draw per case, where a draw per choice cost more than the CLI run itself)."""
    return generate(random.Random(draw(st.integers(0, 2**64 - 1))))


def generate(rng: random.Random) -> tuple[str, list[str]]:
    """One changeset's JSON text and the mutations made to it (one to three; about a third of the cases
    are mutated only in legal ways, so that they are accepted and the follow-up commands see them)."""
    coherent = rng.randint(0, 3) > 0
    events = coherent_events(rng) if coherent else [schema_event(rng) for _ in range(rng.randint(1, 3))]
    data: dict[str, Any] = {"stream": rng.choice(STREAMS), "events": events}
    if rng.random() < 0.5:
        data["actor"] = rng.choice(["alice", "bob é", "ünï"])
    if rng.random() < 0.5:
        data["message"] = text(rng, 10)
    data = json.loads(json.dumps(data))  # no object in two places: a mutation changes one place
    benign = rng.randint(0, 2) == 0
    if not benign and rng.randint(0, 3) == 0:
        data["expected_version"] = rng.randint(0, 6)
    if not benign and rng.randint(0, 5) == 0:
        data["changeset_id"] = rng.choice(["cs-1", "cs-2", "cs-3"])
    done: list[str] = []
    for _ in range(rng.randint(1, 3)):
        where = list(paths(data))
        path = rng.choice(where)
        target = get(data, path)
        last = path[-1] if path else None
        if benign:
            kind = "odd but legal"
            if last in ("message", "comment", "actor") and isinstance(target, str):
                data = put(data, path, target + rng.choice(LEGAL_ODD_TEXT))
            elif last == "type" and isinstance(target, str) and target in LEGAL_TYPES:
                data = put(data, path, rng.choice(LEGAL_TYPES))
            elif last == "name" and isinstance(target, str) and len(path) > 2 and path[-3] == "columns":
                data = put(data, path, rng.choice(LEGAL_ODD_NAMES))
            elif isinstance(target, dict) and "comment" not in target and target.get("type") == "table_created":
                target["comment"] = rng.choice(LEGAL_ODD_TEXT)
            else:
                kind = "none"
            done.append(f"{kind} at {list(path)}")
            continue
        kind = rng.choice(HOSTILE)
        done.append(f"{kind} at {list(path)}")
        if kind == "shape":
            shapes = [None, True, False, 0, -5, 0.5, -1e300, text(rng, 5), [], {}, [target], {"x": target}]
            data = put(data, path, rng.choice(shapes))
        elif kind == "number":
            data = put(data, path, rng.choice(HUGE_NUMBERS))
        elif kind == "unicode":
            old = target if isinstance(target, str) else "x"
            at = rng.randint(0, len(old))
            data = put(data, path, old[:at] + rng.choice(ODD_TEXT) + old[at:])
        elif kind == "nesting":
            data = put(data, path, DEEP + str(rng.choice(DEPTHS)))
        elif kind == "name":
            data = put(data, path, rng.choice(HOSTILE_NAMES))
        elif kind == "type":
            data = put(data, path, rng.choice(HOSTILE_TYPES))
        elif kind == "expression":
            data = put(data, path, rng.choice(HOSTILE_EXPRESSIONS))
        elif kind == "delete" and path:
            parent = get(data, path[:-1])
            del parent[path[-1]]
        elif kind == "extra" and isinstance(target, dict):
            target[rng.choice(["extra", "type", "version", "columns", "name"])] = rng.choice(
                [1, "x", None, [], {"a": 1}]
            )
    out = json.dumps(data, ensure_ascii=rng.random() < 0.5, allow_nan=True)
    for depth in DEPTHS:  # the nesting placeholders, written as text
        out = out.replace(json.dumps(DEEP + str(depth))[:-1] + '"', "[" * depth + "]" * depth)
    cut = rng.randint(0, 30)
    if benign:
        pass
    elif cut == 0:  # text cut short
        out = out[: rng.randint(0, len(out))]
        done.append("cut")
    elif cut == 1:
        out = out.replace("1", "NaN", 1) if rng.random() < 0.5 else out.replace("0", "1e999", 1)
        done.append("constant")
    return out, done


# --------------------------------------------------------------------------- the runner


def call(args: list[str], stdin: str = "") -> tuple[int, str, str]:
    """service.cli.main in-process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    saved = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli.main(args)
    finally:
        sys.stdin = saved
    return code, out.getvalue(), err.getvalue()


def dump(url: str) -> str:
    """Every row of the store's own tables, as text (SQLite directly; PostgreSQL through the tests' dump)."""
    if not url.startswith("sqlite"):
        from tests.test_store import dump as dump_any

        return dump_any(url)
    conn = sqlite3.connect(url[len("sqlite:///") :])
    try:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        return json.dumps(
            {n: conn.execute(f'SELECT * FROM "{n}" ORDER BY 1, 2').fetchall() for n in names}, default=str
        )
    finally:
        conn.close()


def streams(url: str) -> list[str]:
    """The store's streams, from its stream table. (Not from ``history --json``: there an outcome event's
    own ``stream`` field, the stream its database follows, stands where the envelope's is.)"""
    if url.startswith("sqlite"):
        conn = sqlite3.connect(url[len("sqlite:///") :])
        try:
            return [r[0] for r in conn.execute("SELECT stream FROM schemalog_streams ORDER BY stream")]
        finally:
            conn.close()
    import asyncio

    import asyncpg

    async def read() -> list[str]:
        conn = await asyncpg.connect(url)
        try:
            return [r[0] for r in await conn.fetch("SELECT stream FROM schemalog_streams ORDER BY stream")]
        finally:
            await conn.close()

    return asyncio.run(read())


class Broken(AssertionError):
    """A case broke a rule: the message names it."""


@dataclass
class Fuzz:
    """Feeds cases to one store; checks every rule; keeps the figures."""

    make_url: Callable[[int], str]
    batch: int = 50
    """Accepted changesets between two rounds of follow-up commands (each round checks them all)."""
    fresh_every: int = 250
    """Cases before a new store (so that no store grows past what a quick follow-up reads)."""
    codes: Counter[int] = field(default_factory=Counter)
    cases: int = 0
    accepted: int = 0
    follow_ups: int = 0
    stores: int = 0
    url: str = ""
    state: str = ""
    pending: list[str] = field(default_factory=list)
    checks: int = 0

    def open(self) -> None:
        self.url = self.make_url(self.stores)
        self.stores += 1
        code, out, err = call(["--store", self.url, "init"])
        assert code == 0, (out, err)
        self.state = dump(self.url)

    def feed(self, text: str, done: list[str]) -> None:
        if not self.url or (self.cases and self.cases % self.fresh_every == 0):
            self.finish_batch()
            self.open()
        self.cases += 1
        code, _out, err = call(["--store", self.url, "append", "-"], text)
        self.codes[code] += 1
        if code == 70 or "Traceback" in err:
            raise Broken(f"internal error on append: {err.strip()[:500]}\nmutations: {done}\ntext: {text[:2000]}")
        if code == 0:
            self.accepted += 1
            self.pending.append(text)
            self.state = dump(self.url)
            if len(self.pending) >= self.batch:
                self.finish_batch()
            return
        lines = err.strip().splitlines()
        if code not in (2, 3) or len(lines) != 1:
            raise Broken(f"rejection not one line with exit 2/3: {code} {err!r}\ntext: {text[:2000]}")
        if dump(self.url) != self.state:
            raise Broken(f"a rejected changeset changed the store: {err.strip()}\ntext: {text[:2000]}")

    def finish_batch(self) -> None:
        """history, show, show --format sql for each dialect, one more append to every stream, verify."""
        if not self.pending:
            return
        self.follow_ups += 1
        context = "\naccepted since the last check:\n" + "\n".join(t[:600] for t in self.pending)
        store = ["--store", self.url]
        self.expect([*store, "history"], "", (0,), context)
        self.expect([*store, "history", "--json"], "", (0,), context)
        for stream in streams(self.url):
            self.expect([*store, "show", "--stream", stream], "", (0,), context)
            for dialect in ("postgresql", "mysql", "sqlite"):
                args = [*store, "show", "--stream", stream, "--format", "sql", "--dialect", dialect]
                self.expect(args, "", (0, 2), context)
            one_more = {
                "stream": stream,
                "events": [
                    {
                        "type": "table_created",
                        "table": f"fuzz_check_{self.checks}",
                        "columns": [{"name": "c", "type": "text"}],
                    }
                ],
            }
            self.checks += 1
            self.expect([*store, "append", "-"], json.dumps(one_more), (0,), context)
        self.expect([*store, "verify"], "", (0,), context)
        self.state = dump(self.url)
        self.pending = []

    def expect(self, args: list[str], stdin: str, codes: tuple[int, ...], context: str) -> None:
        """Run a follow-up command; Broken (with the traceback of an internal error) unless it exits so."""
        code, _out, err = call(args, stdin)
        if code in codes and "Traceback" not in err and (not code or len(err.strip().splitlines()) == 1):
            return
        detail = ""
        if code == 70:  # again with -v, which lets the exception out: its traceback says where
            try:
                call(["-v", *args], stdin)
            except Exception:
                detail = "\n" + traceback.format_exc()[-3000:]
        what = " ".join(args[2:])
        raise Broken(f"{what} exited {code} after accepted changesets: {err.strip()[:800]}{detail}{context}")

    def figures(self) -> dict[str, Any]:
        return {
            "cases": self.cases,
            "accepted": self.accepted,
            "rejected": self.cases - self.accepted,
            "exits": {str(k): v for k, v in sorted(self.codes.items())},
            "follow_up_rounds": self.follow_ups,
            "stores": self.stores,
        }


def run_fuzz(fuzz: Fuzz, count: int, seed: int | None) -> dict[str, Any]:
    """Feed ``count`` generated cases (derandomized; ``seed`` picks another fixed sequence) to ``fuzz``."""
    started = time.monotonic()
    options: dict[str, Any] = {
        "max_examples": count,
        "deadline": None,
        "database": None,
        "phases": [Phase.generate],  # a failure is reported with its text, not shrunk (it would re-run the store)
        "suppress_health_check": list(HealthCheck),
    }
    if seed is None:
        options["derandomize"] = True

    @settings(**options)
    @given(case=mutated_changeset())
    def one(case: tuple[str, list[str]]) -> None:
        fuzz.feed(*case)

    if seed is not None:
        from hypothesis import seed as with_seed

        one = with_seed(seed)(one)
    fast = functools.cache(cli.build_parser)  # the parser is the same every call; build it once
    original, cli.build_parser = cli.build_parser, fast
    try:
        one()
        fuzz.finish_batch()
    finally:
        cli.build_parser = original
    return {**fuzz.figures(), "seconds": round(time.monotonic() - started, 1)}


# --------------------------------------------------------------------------- the tests

CASES_SQLITE = 5000
CASES_POSTGRESQL = 150


def test_fuzzed_changesets_on_sqlite(tmp_path: Path) -> None:
    fuzz = Fuzz(lambda n: f"sqlite:///{tmp_path / f'fuzz{n}.db'}")
    figures = run_fuzz(fuzz, CASES_SQLITE, None)
    print("fuzz (sqlite):", json.dumps(figures))  # noqa: T201
    assert figures["cases"] == CASES_SQLITE and "70" not in figures["exits"]
    assert figures["accepted"] > CASES_SQLITE // 10 and figures["rejected"] > CASES_SQLITE // 2  # both sides exercised


def test_fuzzed_changesets_on_postgresql() -> None:
    from tests.servers import postgres_database_url

    with contextlib.ExitStack() as stack:
        fuzz = Fuzz(lambda n: stack.enter_context(postgres_database_url()), fresh_every=CASES_POSTGRESQL)
        figures = run_fuzz(fuzz, CASES_POSTGRESQL, 12)
    print("fuzz (postgresql):", json.dumps(figures))  # noqa: T201
    assert figures["cases"] == CASES_POSTGRESQL and "70" not in figures["exits"]
    assert figures["accepted"] > 10


@pytest.mark.parametrize("depth", [33, 100_000])
def test_the_generator_nests_as_text(depth: int) -> None:
    text = json.dumps({"a": DEEP + str(depth)})
    for d in DEPTHS:
        text = text.replace(json.dumps(DEEP + str(d))[:-1] + '"', "[" * d + "]" * d)
    assert text == '{"a": ' + "[" * depth + "]" * depth + "}"


def test_programmatic_changesets_are_bounded() -> None:
    """What the CLI refuses in JSON text, Changeset refuses from code (the API's path): deep nesting,
    numbers past signed 64 bits, lone surrogates, NUL, a column type built around the grammar."""
    import pydantic

    from events.catalog import MigrationApplied, TableCreated, TagCreated
    from events.envelope import Changeset
    from events.model import Column, ColumnType, construct

    deep: list[Any] = []
    for _ in range(100_000):
        deep = [deep]
    table = TableCreated(table="t", columns=(Column(name="c", type="text"),))
    bad_type = construct(ColumnType, {"name": "foo", "params": (), "dialect": None})  # past the validator
    cases: list[tuple[dict[str, Any], str]] = [
        ({"stream": "app", "actor": "a", "events": deep}, "nested deeper than 32"),
        ({"stream": "app", "actor": "a", "expected_version": 2**63, "events": [table]}, "outside signed 64 bits"),
        ({"stream": "app", "actor": "a\ud800", "events": [table]}, "lone surrogate"),
        ({"stream": "app", "actor": "a", "message": "a\x00b", "events": [table]}, "NUL"),
        (
            {"stream": "app", "actor": "a", "events": [table.model_copy(update={"comment": "\udfff"})]},
            "lone surrogate",
        ),
        (
            {
                "stream": "app",
                "actor": "a",
                "events": [
                    table.model_copy(
                        update={"columns": (construct(Column, {**table.columns[0].__dict__, "type": bad_type}),)}
                    )
                ],
            },
            "unknown type 'foo'",
        ),
    ]
    for data, words in cases:
        with pytest.raises(pydantic.ValidationError) as caught:
            Changeset(**data)
        assert words in str(caught.value), (words, str(caught.value)[:300])
    with pytest.raises(pydantic.ValidationError):
        TagCreated(tag="t", version=2**63)
    with pytest.raises(pydantic.ValidationError):
        MigrationApplied(database="d", stream="s", from_version=2**70, to_version=0)
