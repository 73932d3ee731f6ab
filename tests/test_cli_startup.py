"""Start-up: `--help`, `--version` and the read commands import only what they use (issue 14).

Structural, not timed: each case runs the CLI in a fresh interpreter and lists the heavy packages
left in sys.modules afterwards.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.histories import histories

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("sqlalchemy", "asyncpg", "pymysql", "pglast", "sqlglot", "pydantic", "pydantic_settings", "cryptography")
# the read commands fold events (pydantic, sqlglot, pglast), but never touch a target database
NEVER_FOR_READS = ("sqlalchemy", "asyncpg", "pymysql", "pydantic_settings", "cryptography", "service.reconciler")
# a read command folds the log's own events (events.decode): no expression is parsed, so no parser is loaded
PARSERS = ("sqlglot", "pglast")
# --help and --version: not even the package metadata machinery, nor dataclasses (settings are a NamedTuple)
NEVER_AT_START = ("importlib.metadata", "dataclasses")

PROBE = """
import json, sys
from service.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
sys.stdout.flush()
mods = sorted(m for m in sys.modules if m.split(".")[0] in {heavy!r} or m.startswith("service.reconciler"))
sys.stderr.write("\\nMODULES " + json.dumps({{"code": code, "modules": mods}}) + "\\n")
"""


def probe(args: list[str], cwd: Path) -> tuple[int, str, list[str]]:
    """Run the CLI with ``args`` in a new interpreter: (exit code, stdout, heavy modules imported)."""
    heavy = tuple({m.split(".")[0] for m in HEAVY + NEVER_FOR_READS + NEVER_AT_START})
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=heavy), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": str(cwd)},
        timeout=120,
    )
    line = done.stderr.rsplit("MODULES ", 1)[-1]
    report = json.loads(line)
    return report["code"], done.stdout, report["modules"]


def heavy_in(modules: list[str], packages: tuple[str, ...]) -> list[str]:
    return [m for m in modules if any(m == p or m.startswith(p + ".") for p in packages)]


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["show", "--help"], ["migrate", "--help"]])
def test_help_and_version_import_nothing_heavy(args: list[str], tmp_path: Path) -> None:
    code, _out, modules = probe(args, tmp_path)
    assert code == 0
    assert heavy_in(modules, (*HEAVY, "service.reconciler")) == []


def test_version_prints_the_package_version(tmp_path: Path) -> None:
    from importlib.metadata import version

    code, out, _modules = probe(["--version"], tmp_path)
    assert code == 0
    assert out == f"schemalog {version('schemalog')}\n"


def test_usage_error_imports_nothing_heavy(tmp_path: Path) -> None:
    code, _out, modules = probe(["no-such-command"], tmp_path)
    assert code == 2
    assert heavy_in(modules, HEAVY) == []


def test_read_commands_skip_the_reconciler_and_sqlalchemy(tmp_path: Path) -> None:
    assert probe(["init"], tmp_path)[0] == 0
    assert probe(["append", str(ROOT / "examples" / "first-changeset.json")], tmp_path)[0] == 0
    for args in (["show"], ["history"]):
        code, out, modules = probe(args, tmp_path)
        assert code == 0, args
        assert "users" in out
        assert heavy_in(modules, NEVER_FOR_READS) == [], args


def test_show_as_sql_still_loads_its_dialect(tmp_path: Path) -> None:
    assert probe(["init"], tmp_path)[0] == 0
    assert probe(["append", str(ROOT / "examples" / "first-changeset.json")], tmp_path)[0] == 0
    code, out, modules = probe(["show", "--format", "sql", "--dialect", "sqlite"], tmp_path)
    assert code == 0
    assert "CREATE TABLE" in out.upper()
    assert any(m.startswith("service.reconciler.dialects") for m in modules)


@pytest.mark.parametrize("args", [["--help"], ["--version"]])
def test_help_and_version_skip_package_metadata(args: list[str], tmp_path: Path) -> None:
    code, out, modules = probe(args, tmp_path)
    assert code == 0
    assert out.startswith("schemalog ") if args == ["--version"] else "usage:" in out
    assert heavy_in(modules, NEVER_AT_START) == []


# a log whose fold meets every kind of expression: a default, a generated column, a check, an expression
# index, and a rename that rewrites the check
EXPRESSIONS = {
    "stream": "app",
    "message": "expressions",
    "events": [
        {
            "type": "table_created",
            "table": "items",
            "columns": [
                {"name": "id", "type": "bigint", "nullable": False},
                {"name": "price", "type": "integer", "nullable": False, "default": "0"},
                {"name": "total", "type": "integer", "generated": {"expression": "price * 2"}},
            ],
            "primary_key": ["id"],
            "constraints": [{"name": "price_positive", "kind": "check", "expression": "price >= 0"}],
        },
        {
            "type": "index_created",
            "table": "items",
            "index": {"name": "items_next", "elements": [{"expression": "price + 1"}]},
        },
        {"type": "column_renamed", "table": "items", "column": "price", "new_name": "cost"},
    ],
}


def test_read_commands_load_no_expression_parser(tmp_path: Path) -> None:
    changeset = tmp_path / "expressions.json"
    changeset.write_text(json.dumps(EXPRESSIONS))
    assert probe(["init"], tmp_path)[0] == 0
    code, _out, modules = probe(["append", str(changeset)], tmp_path)
    assert code == 0
    # the write path checks each expression with both parsers: the probe sees them when they are loaded
    assert heavy_in(modules, PARSERS) != []
    code, out, modules = probe(["show"], tmp_path)
    assert code == 0
    assert "check price_positive (cost >= 0)" in out  # the fold rewrote the check, without a parser
    assert heavy_in(modules, PARSERS) == []
    # (``history --table`` follows the table's lineage: an expression index's columns are read by sqlglot there)
    for args in (["history"], ["history", "--json"], ["history", "--actor", "nobody-else"]):
        code, out, modules = probe(args, tmp_path)
        assert code == 0, args
        assert ("cost" in out) == (args[-1] != "nobody-else"), args
        assert heavy_in(modules, PARSERS) == [], args


LOGGING = ("structlog", "rich")


def run_cli(args: list[str], cwd: Path, key: str) -> subprocess.CompletedProcess[str]:
    """The CLI in a new interpreter (its stderr a pipe: log lines are JSON), the snapshot key given."""
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": str(cwd), "SCHEMALOG_SNAPSHOT_KEY": key}
    return subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=LOGGING), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def modules_of(done: subprocess.CompletedProcess[str]) -> list[str]:
    report = json.loads(done.stderr.rsplit("MODULES ", 1)[-1])
    assert report["code"] == 0, done.stderr
    modules: list[str] = report["modules"]
    return modules


def test_read_commands_import_structlog_only_to_log(tmp_path: Path) -> None:
    """show and history log nothing on a sound store: structlog (and rich) are never imported. When the fold
    has something to say (a snapshot whose digest does not verify under another key), structlog is imported
    then, configured as ever: one JSON line on stderr, and the same schema on stdout."""
    changeset = tmp_path / "many.json"
    events: list[dict[str, object]] = [
        {"type": "table_created", "table": "t", "columns": [{"name": "id", "type": "bigint"}]},
    ]
    events += [{"type": "table_altered", "table": "t", "comment": f"c{i}"} for i in range(1000)]
    changeset.write_text(json.dumps({"stream": "app", "message": "many", "events": events}))
    for args in (["init"], ["append", str(changeset)]):
        assert modules_of(run_cli(args, tmp_path, "key one")) is not None
    shown = run_cli(["show", "--stream", "app"], tmp_path, "key one")  # takes the snapshot at v1000
    quiet = run_cli(["show", "--stream", "app"], tmp_path, "key one")  # starts from it
    assert "-- stream app at version 1001: 1 tables" in quiet.stdout and quiet.stdout == shown.stdout
    assert modules_of(quiet) == [] and quiet.stderr.startswith("\nMODULES ")  # nothing imported, nothing logged
    listed = run_cli(["history", "--stream", "app"], tmp_path, "key one")
    assert "table_altered t" in listed.stdout and modules_of(listed) == []
    other = run_cli(["show", "--stream", "app"], tmp_path, "another key")
    assert other.stdout == quiet.stdout
    assert "structlog" in modules_of(other) and "rich" not in modules_of(other)
    lines = [json.loads(line) for line in other.stderr.splitlines() if line.startswith("{")]
    assert [(line["event"], line["level"], line["reason"]) for line in lines][:1] == [
        ("snapshot_ignored", "warning", "digest does not verify")
    ]


BUILT = """
import sys
from service.cli import main
code = main(sys.argv[1:])
from pydantic import BaseModel
import events.catalog, events.model
built = sorted(
    c.__name__ for m in (events.catalog, events.model) for c in vars(m).values()
    if isinstance(c, type) and issubclass(c, BaseModel) and c.__pydantic_complete__
)
sys.stderr.write(f"\\nBUILT {code} {events.catalog.EVENT_ADAPTER.pydantic_complete} {' '.join(built)}\\n")
"""


def built_by(args: list[str], cwd: Path) -> str:
    """Run the CLI with ``args`` in a new interpreter: its exit code, whether the event adapter was built
    and the models whose schema was, as one line."""
    done = subprocess.run(
        [sys.executable, "-c", BUILT, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": str(cwd)},
        timeout=120,
    )
    return done.stderr.rsplit("BUILT ", 1)[-1].strip()


def test_read_commands_build_no_validator(tmp_path: Path) -> None:
    """The event and schema models are built on their first validation (defer_build): show and history
    decode the log's own events without one, so no model's schema is built (the append before does).
    (``history --json`` dumps each event through its model, in its field order: it builds their serializers.)"""
    assert probe(["init"], tmp_path)[0] == 0
    appended = built_by(["append", str(ROOT / "examples" / "first-changeset.json")], tmp_path).split()
    assert appended[0] == "0" and "TableCreated" in appended  # input is validated: its models built
    for args in (["show"], ["history"]):
        assert built_by(args, tmp_path) == "0 False", args


MODULES_OF_RUN = """
import sys
from service.cli import main
code = main(sys.argv[1:])
sys.stderr.write("\\nRUN " + " ".join([str(code), *sorted(sys.modules)]) + "\\n")
"""


def modules_of_run(args: list[str], cwd: Path) -> tuple[int, set[str]]:
    """Run the CLI in a new interpreter: its exit code and every module it imported."""
    done = subprocess.run(
        [sys.executable, "-c", MODULES_OF_RUN, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": str(cwd)},
        timeout=120,
    )
    code, *modules = done.stderr.rsplit("RUN ", 1)[-1].split()
    return int(code), set(modules)


def test_show_imports_no_pydantic(tmp_path: Path) -> None:
    """``show`` renders the fold's public form: no model, so neither pydantic nor the event catalogue is
    imported, nor, without schemalog.toml (or --config, $SCHEMALOG_CONFIG), the config's models. A config
    file is still validated, and its errors told (exit 2)."""
    assert probe(["init"], tmp_path)[0] == 0
    assert probe(["append", str(ROOT / "examples" / "first-changeset.json")], tmp_path)[0] == 0
    code, modules = modules_of_run(["show"], tmp_path)
    assert code == 0
    assert [m for m in modules if m.split(".")[0] in ("pydantic", "pydantic_core")] == []
    assert "importlib.metadata" not in modules  # (pydantic's plugin discovery, on a first model build)
    assert {"events.catalog", "events.model", "events.envelope", "service.config_models"}.isdisjoint(modules)
    code, modules = modules_of_run(["history"], tmp_path)
    assert code == 0 and "service.config_models" not in modules
    (tmp_path / "schemalog.toml").write_text('[databases.main]\nurl = "sqlite:///app.db"\n')
    code, modules = modules_of_run(["show"], tmp_path)
    assert code == 0 and "service.config_models" in modules
    (tmp_path / "schemalog.toml").write_text('[databases.main]\nurl = "sqlite:///app.db"\nstrem = "x"\n')
    assert probe(["show"], tmp_path)[0] == 2


@given(history=histories(max_changesets=10, dialect="any"), cut=st.integers(0, 60))
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_show_text_of_the_public_form_is_the_models_text(history: list[list[Any]], cut: int) -> None:
    """``show``'s text from the fold's public form is schema_text of the models, at every version (and from
    a snapshot body read back)."""
    from events.catalog import to_dict
    from projections.replay import Replay
    from service.cli import public_schema_text, schema_text

    events = [e for changeset in history for e in changeset]
    cut %= len(events) + 1
    replay = Replay()
    for k, event in enumerate(events, start=1):
        replay.apply(json.loads(json.dumps(to_dict(event))))
        assert public_schema_text(replay.tables) == schema_text(replay.to_state().to_schema()), k
        if k == cut:
            replay = Replay.from_body(replay.body())
            assert public_schema_text(replay.tables) == schema_text(replay.to_state().to_schema()), k


def test_sqlite_store_constants_are_the_envelopes() -> None:
    """events/store/sqlite.py keeps its own copy of the genesis hash and the chain's time format (importing
    events.envelope would load the models): they are the envelope's."""
    from datetime import UTC, datetime

    from events import envelope
    from events.store import sqlite

    assert sqlite.GENESIS_HASH == envelope.GENESIS_HASH
    moment = datetime(2026, 11, 24, 10, 0, 0, 12, tzinfo=UTC)
    assert moment.strftime(sqlite.CHAIN_TIME) == envelope.format_time(moment)


async def test_scan_of_one_stream_is_the_same_by_position_or_by_index(tmp_path: Path) -> None:
    """history's scan of one stream reads the position range in order when the stream is most of it, else
    the stream's index: the same rows in the same order either way, whatever the bounds and direction."""
    from events.catalog import TableAltered, TableCreated
    from events.envelope import Changeset
    from events.model import Column
    from events.store import open_store

    store = await open_store(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        await store.init()
        for stream in ("big", "small"):
            created = TableCreated(table="t", columns=(Column(name="id", type="bigint"),))
            await store.append(Changeset(stream=stream, actor="a", events=(created,)))
        for i in range(30):
            events = tuple(TableAltered(table="t", comment=f"c{i}.{j}") for j in range(3))
            await store.append(Changeset(stream="big", actor="a", events=events))
            if i % 10 == 0:
                await store.append(Changeset(stream="small", actor="a", events=events[:1]))

        async def rows(**kwargs: Any) -> list[Any]:
            return [row async for chunk in store.scan(chunk=7, **kwargs) for row in chunk]

        everything = await rows()
        assert len(everything) == 2 + 90 + 3
        choose = store._scan_by_position  # type: ignore[attr-defined]
        assert await choose("big", 0, 2**62) and not await choose("small", 0, 2**62)
        assert not await choose("big", 0, 1)  # an empty range
        for stream in ("big", "small", "none"):
            for after, before in ((0, None), (10, None), (0, 50), (20, 60), (94, None)):
                for descending in (False, True):
                    got = await rows(stream=stream, after_position=after, before_position=before, descending=descending)
                    want = [r for r in everything if r.stream == stream and after < r.position < (before or 2**62)]
                    assert got == (want[::-1] if descending else want), (stream, after, before, descending)
    finally:
        await store.close()
