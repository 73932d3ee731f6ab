"""Issue 19, slice 1: domains (PostgreSQL's CREATE DOMAIN), through every layer, and Pagila's tables.

Pure, no database: the checked fold, the replay of the stored form and the fast decoding agree; each
event's inverse gives the state before back; what does not fit is refused, naming what uses it; a diff
makes a domain after the enum type it is over and before its columns, and drops it after them; each
dialect's statements (PostgreSQL a domain of its own, MariaDB and SQLite the domain's type in its place);
text that is not one expression never gets in, nor out to a database when it was stored behind
append's back.

Real databases: a domain migrates forward and back on every dialect, rows kept, the database introspecting
back to the state each time; a domain changed by hand is drift; and Pagila (../shared/fixtures/pagila, as
its author publishes it), whose rebuild failed at once with ``type "year" does not exist``, imports with its
domains and rebuilds with the same domains, enum type, tables, sequences, views, routines, triggers and
partitions (payment, range-partitioned, and its 7 partitions: tests/test_objects_partitions.py).
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import asyncpg
import pytest

from events import decode
from events.aggregate import InvalidChange, State, apply_event, fold
from events.catalog import (
    ColumnAdded,
    ColumnAltered,
    ColumnDropped,
    DomainCreated,
    DomainDropped,
    EnumCreated,
    EnumDropped,
    Event,
    ExtensionCreated,
    ExtensionDropped,
    TableCreated,
    TableRenamed,
    parse_event,
    to_dict,
)
from events.model import Column, DomainCheck, Schema, extensions_of
from events.store import EventStore
from projections.diff import inverse, schema_diff
from projections.replay import Replay
from projections.schema import Point, Projector, same_schema
from service.reconciler.apply import migrate
from service.reconciler.ddl import emit
from service.reconciler.dialects import get_dialect
from service.reconciler.normalize import differences
from service.reconciler.statements import check_planned
from service.reconciler.targets import open_target
from tests.conftest import FIXTURES
from tests.sqlexec import run_sql
from tests.test_real_schemas import SCHEMALOG, write_config
from tests.test_reconciler import append, req

YEAR = DomainCreated(
    name="year",
    base="integer",
    checks=(DomainCheck(name="year_check", expression="VALUE >= 1901 AND VALUE <= 2155"),),
)
RATING = EnumCreated(name="rating", values=("G", "PG", "R"))
GRADE = DomainCreated(name="grade", base="enum:rating", nullable=False, default="'G'")
FILMS = TableCreated(
    table="films",
    columns=(
        Column(name="id", type="integer", nullable=False),
        Column(name="released", type="domain:year"),
        Column(name="grade", type="domain:grade", nullable=False, default="'PG'"),
    ),
    primary_key=("id",),
)

HISTORY: list[Event] = [
    YEAR,
    RATING,
    GRADE,
    DomainCreated(name="spare", base="postgresql:text"),
    FILMS,
    ColumnAdded(table="films", column=Column(name="made", type="domain:year")),
    ColumnAltered.of("films", "made", type="integer"),
    ColumnAltered.of("films", "made", type="domain:year"),
    ColumnDropped(table="films", column="made"),
    TableRenamed(table="films", new_name="movies"),
    DomainDropped(name="spare"),
]


def test_the_fold_the_replay_and_the_decoding_agree() -> None:
    checked, replay = State(), Replay()
    for k, event in enumerate(HISTORY, start=1):
        text = json.dumps(to_dict(event))
        assert decode.event_from_text(text) == event and to_dict(decode.event_from_text(text)) == to_dict(event), k
        assert parse_event(json.loads(text), stored=True) == event, k
        apply_event(event, checked)
        replay.apply(json.loads(text))
        assert replay.to_state().to_schema() == checked.to_schema(), k
        again = Replay.from_body(replay.body())
        assert again.to_state().to_schema() == checked.to_schema() and again.body() == replay.body(), k
        assert replay.public() == checked.to_schema().sorted().model_dump(mode="json"), k
    schema = fold(HISTORY)
    assert sorted(schema.domains) == ["grade", "year"]
    assert schema.domains["grade"].type.is_enum and not schema.domains["grade"].nullable
    assert [c.type.is_domain for c in schema.tables["movies"].columns] == [False, True, True]
    assert '"domains"' not in Replay().body()  # a stream without domains keeps the body it had before them


def test_each_inverse_gives_the_state_before_back() -> None:
    state = State()
    for event in HISTORY:
        before = state.copy()
        undo = inverse(event, before)
        apply_event(event, state)
        assert undo is not None, event
        undone = state.copy()
        apply_event(undo, undone)
        assert same_schema(undone.to_schema(), before.to_schema()), event
        assert inverse(undo, state) == event, event


@pytest.mark.parametrize(
    ("events", "message"),
    [
        ([YEAR, YEAR], "domain 'year' already exists"),
        ([YEAR, FILMS.model_copy(update={"table": "year"})], "a domain has that name"),
        ([RATING, DomainCreated(name="rating", base="integer")], "an enum type has that name"),
        ([GRADE], "enum type 'rating', which does not exist"),
        ([TableCreated(table="t", columns=(Column(name="y", type="domain:year"),))], "domain 'year'"),
        ([YEAR, RATING, GRADE, FILMS, DomainDropped(name="year")], "used by column films.released"),
        ([YEAR, RATING, GRADE, EnumDropped(name="rating")], "domain 'grade' is over it"),
        ([DomainDropped(name="ghost")], "domain 'ghost' does not exist"),
    ],
)
def test_what_does_not_fit_is_refused(events: list[Event], message: str) -> None:
    with pytest.raises(InvalidChange, match=re.escape(message)):
        fold(events)


SUBSELECT = {"name": "c", "expression": "(SELECT 1)"}
POSITIVE = {"name": "c", "expression": "VALUE > 0"}


@pytest.mark.parametrize(
    "data",
    [
        {"type": "domain_created", "name": "d", "base": "integer", "default": "1; DROP TABLE films"},
        {"type": "domain_created", "name": "d", "base": "integer", "checks": [SUBSELECT]},
        {"type": "domain_created", "name": "d", "base": "integer", "checks": [POSITIVE, POSITIVE]},
        {
            "type": "domain_created",
            "name": "d",
            "base": "integer",
            "checks": [{"name": "c", "expression": "(SELECT 1)"}],
        },
        {"type": "domain_created", "name": "d", "base": "domain:year"},
        {
            "type": "domain_created",
            "name": "d",
            "base": "integer",
            "checks": [{"name": "c", "expression": "VALUE > 0"}] * 2,
        },
    ],
)
def test_a_domain_that_is_not_one_definition_is_refused_as_input(data: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        parse_event(data)


async def test_a_domain_stored_behind_appends_back_never_reaches_a_database(
    log_store: EventStore, target_url: str
) -> None:
    """Text the store holds without having passed append's check is judged again before any DDL."""
    from tests.forge import forge

    hostile = "VALUE > 0) ; DROP TABLE x; --"
    check = {"name": "c", "expression": hostile}
    (version,) = await forge(
        log_store.url, "app", [{"type": "domain_created", "name": "d", "base": "integer", "checks": [check]}]
    )
    outcome = await migrate(log_store, req(target_url))
    assert outcome.status == "refused", (outcome.status, outcome.detail)
    assert outcome.detail is not None and f"v{version} (" in outcome.detail and "domain d check c" in outcome.detail
    assert outcome.statements == []


def test_each_dialect_writes_a_domain_its_own_way() -> None:
    before = fold([YEAR, RATING, GRADE])
    after = fold([YEAR, RATING, GRADE, FILMS])
    pg = get_dialect("postgresql")
    made = emit(GRADE, pg, fold([YEAR, RATING]), before)
    assert made == ["CREATE DOMAIN grade AS rating DEFAULT 'G' NOT NULL"]
    assert emit(YEAR, pg, Schema(), fold([YEAR])) == [
        "CREATE DOMAIN year AS INTEGER CONSTRAINT year_check CHECK (VALUE >= 1901 AND VALUE <= 2155)"
    ]
    assert emit(DomainDropped(name="year"), pg, fold([YEAR]), Schema()) == ["DROP DOMAIN year"]
    for statement in made:
        check_planned("postgresql", statement, "domain_created")
    (table,) = [s for s in emit(FILMS, pg, before, after) if s.startswith("CREATE TABLE")]
    assert "released year" in table and "grade grade" in table
    for name in ("mysql", "sqlite"):
        dialect = get_dialect(name)
        assert emit(YEAR, dialect, Schema(), fold([YEAR])) == [] and emit(GRADE, dialect, before, before) == []
        (table,) = [s for s in emit(FILMS, dialect, before, after) if s.startswith("CREATE TABLE")]
        assert "released INTEGER" in table, table
        assert ("grade ENUM('G','PG','R')" if name == "mysql" else "grade VARCHAR(2)") in table, table
        assert dialect.normalize(after).domains == {}


def test_a_create_script_makes_the_domains_before_their_tables() -> None:
    """``show --format sql``: PostgreSQL's script makes the enum type, then the domains, then the tables."""
    schema = fold([YEAR, RATING, GRADE, FILMS])
    script = get_dialect("postgresql").create_script(schema)
    heads = [s.split(" AS ")[0] if s.startswith("CREATE DOMAIN") else s.split(" (")[0] for s in script]
    assert heads[:4] == [
        "CREATE TYPE rating AS ENUM",
        "CREATE DOMAIN grade",
        "CREATE DOMAIN year",
        "CREATE TABLE films",
    ]
    for name in ("mysql", "sqlite"):
        (table,) = get_dialect(name).create_script(schema)
        assert "released INTEGER" in table and "DOMAIN" not in table


def test_a_diff_makes_a_domain_between_its_enum_type_and_its_columns() -> None:
    new = fold([YEAR, RATING, GRADE, FILMS])
    events = schema_diff(Schema(), new)
    kinds = [e.type for e in events]
    assert kinds == ["enum_created", "domain_created", "domain_created", "table_created"], kinds
    assert same_schema(fold(events), new)
    back = schema_diff(new, Schema())
    assert [e.type for e in back] == ["table_dropped", "domain_dropped", "domain_dropped", "enum_dropped"]
    changed = fold([YEAR.model_copy(update={"nullable": False})])
    again = schema_diff(fold([YEAR]), changed)
    assert [e.type for e in again] == ["domain_dropped", "domain_created"] and same_schema(
        fold(again, fold([YEAR])), changed
    )


def test_blame_and_history_name_who_made_and_changed_a_domain() -> None:
    from datetime import UTC, datetime

    from events.envelope import RecordedEvent
    from projections.audit import HistoryFilter, blame, filter_history

    recorded = [
        RecordedEvent(
            stream="s",
            version=k,
            position=k,
            changeset_id=f"c{k}",
            actor=f"dev{k}",
            message="m",
            recorded_at=datetime(2026, 1, 1, tzinfo=UTC),
            event=e,
            hash="0" * 64,
            prev_hash="0" * 64,
        )
        for k, e in enumerate(HISTORY, start=1)
    ]
    (line,) = blame(recorded, "year") or []
    assert (line.kind, line.name, line.created.actor, line.created.event_type) == (
        "domain",
        "year",
        "dev1",
        "domain_created",
    )
    assert blame(recorded, "spare") is None  # dropped at the end
    assert blame(recorded[:4], "spare") is not None
    found = [r.version for r in filter_history(recorded, HistoryFilter(table="year"))]
    assert found == [1, 5, 6, 8]  # made, then given to a column: films.released, films.made (twice)


# --------------------------------------------------------------------------- real databases


def _insert(url: str, table: str) -> None:
    run_sql(url, f"INSERT INTO {table} (id, released, grade) VALUES (1, 1999, 'R'), (2, NULL, 'PG')")


async def _state_is_live(store: EventStore, url: str, version: int) -> None:
    target = await open_target(url)
    try:
        _, schema = await Projector(store).schema("app", Point(version=version))
        want = target.expected(schema)
        assert differences(want, await target.introspect(want)) == []
        assert differences(want, await target.introspect()) == []
    finally:
        await target.close()


async def test_a_domain_migrates_forward_and_back_with_its_rows(log_store: EventStore, target_url: str) -> None:
    first = await append(log_store, YEAR, RATING, GRADE, FILMS)
    outcome = await migrate(log_store, req(target_url, first))
    assert outcome.status == "applied", (outcome.detail, outcome.drift)
    await _state_is_live(log_store, target_url, first)
    _insert(target_url, "films")
    second = await append(
        log_store,
        ColumnAdded(table="films", column=Column(name="made", type="domain:year")),
        TableRenamed(table="films", new_name="movies"),
    )
    outcome = await migrate(log_store, req(target_url, second))
    assert outcome.status == "applied", (outcome.detail, outcome.drift)
    await _state_is_live(log_store, target_url, second)
    if target_url.startswith("postgresql"):  # the domain's check holds there
        with pytest.raises(Exception, match="year_check"):
            run_sql(target_url, "INSERT INTO movies (id, released, grade) VALUES (3, 1800, 'G')")
    outcome = await migrate(log_store, req(target_url, first, allow_destructive=True))
    assert outcome.status == "applied", (outcome.detail, outcome.drift)
    await _state_is_live(log_store, target_url, first)
    rows = run_sql(target_url, "SELECT id, released, grade FROM films ORDER BY id")
    assert [tuple(r) for r in rows] == [(1, 1999, "R"), (2, None, "PG")]
    outcome = await migrate(log_store, req(target_url, 0, allow_destructive=True))
    assert outcome.status == "applied", (outcome.detail, outcome.drift)
    await _state_is_live(log_store, target_url, 0)


@pytest.mark.postgres
async def test_a_domain_changed_by_hand_is_drift(log_store: EventStore, pg_url: str) -> None:
    version = await append(log_store, YEAR, RATING, GRADE, FILMS)
    assert (await migrate(log_store, req(pg_url, version))).status == "applied"
    run_sql(
        pg_url,
        "ALTER DOMAIN year DROP CONSTRAINT year_check",
        "ALTER DOMAIN year ADD CONSTRAINT year_check CHECK (VALUE >= 1800)",
        "ALTER DOMAIN grade DROP NOT NULL",
        "CREATE DOMAIN extra AS text",
    )
    outcome = await migrate(log_store, req(pg_url, version))
    assert outcome.status == "drift", outcome.detail
    drift = "\n".join(outcome.drift)
    assert "domain extra: in the database, not in the log" in drift
    assert "domain grade: nullable False in the log, True in the database" in drift
    assert re.search(r"domain year: check year_check .*1901.* in the log, .*1800.* in the database", drift), drift


@pytest.mark.postgres
async def test_a_domain_made_by_hand_is_adopted_by_import(log_store: EventStore, pg_url: str) -> None:
    from service.authoring.importer import import_database

    version = await append(log_store, YEAR, RATING, GRADE, FILMS)
    assert (await migrate(log_store, req(pg_url, version))).status == "applied"
    run_sql(
        pg_url,
        "CREATE DOMAIN score AS smallint NOT NULL DEFAULT 0 CONSTRAINT score_range CHECK (VALUE BETWEEN 0 AND 10)",
        "ALTER TABLE films ADD COLUMN score score",
    )
    result = await import_database(log_store, pg_url, "app")
    assert (result.kind, result.events, result.warnings) == ("drift", 2, [])
    recorded = (await log_store.read("app"))[version:]
    assert [r.event.type for r in recorded] == ["domain_created", "column_added"]
    made = recorded[0].event
    assert isinstance(made, DomainCreated)
    assert (str(made.base), made.nullable, made.default) == ("smallint", False, "0")
    assert [c.name for c in made.checks] == ["score_range"]
    assert (await migrate(log_store, req(pg_url, result.last_version))).status == "up_to_date"


# --------------------------------------------------------------------------- Pagila

PAGILA = FIXTURES / "pagila" / "pagila-schema.sql"

PAGILA_LATER = {
    "FUNCTION": 9,
    "AGGREGATE": 1,
    "TRIGGER": 15,
    "TABLE (partition)": 7,
}
"""Pagila's routines, triggers and partitions, as the file makes them. The log carries its routines (its
views read its aggregate group_concat, over the function _group_concat) and triggers (issue 19, slice 3),
and its partitions (slice 4)."""

# Each object the log carries, as the catalogue has it, in a form to compare two databases by. Payment is
# range-partitioned in Pagila: its primary key's index is ``ON ONLY``, and each partition's key (made when
# it was attached) is compared with the partition's own indexes and foreign keys.
PAGILA_OBJECTS = {
    "domains": """
        SELECT t.typname, format_type(t.typbasetype, t.typtypmod), t.typnotnull, t.typdefault,
               ARRAY(SELECT c.conname || ' ' || pg_get_constraintdef(c.oid) FROM pg_constraint c
                     WHERE c.contypid = t.oid ORDER BY c.conname)::text
        FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE t.typtype = 'd' AND n.nspname = 'public' ORDER BY 1""",
    "enum types": """
        SELECT t.typname, array_agg(e.enumlabel ORDER BY e.enumsortorder)::text
        FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid GROUP BY t.typname ORDER BY 1""",
    "columns": """
        SELECT c.table_name, c.column_name, c.data_type, c.domain_name, c.udt_name, c.is_nullable,
               c.column_default, c.character_maximum_length, c.numeric_precision, c.numeric_scale
        FROM information_schema.columns c JOIN pg_class r ON r.relname = c.table_name
        WHERE c.table_schema = 'public' AND r.relkind IN ('r', 'p')
          AND c.table_name <> 'schemalog_marker' ORDER BY 1, 2""",
    "constraints and indexes": """
        SELECT r.relname, c.conname, pg_get_constraintdef(c.oid) FROM pg_constraint c
        JOIN pg_class r ON r.oid = c.conrelid WHERE r.relnamespace = 'public'::regnamespace
          AND r.relname <> 'schemalog_marker'
        UNION ALL
        SELECT tablename, indexname, replace(indexdef, ' ON ONLY ', ' ON ') FROM pg_indexes i
        JOIN pg_class r ON r.relname = i.tablename
        WHERE schemaname = 'public' AND r.relkind IN ('r', 'p')
          AND tablename <> 'schemalog_marker' ORDER BY 1, 2, 3""",
    "tables": """
        SELECT relname, relkind::text FROM pg_class WHERE relnamespace = 'public'::regnamespace
          AND relkind IN ('r', 'p') AND relname <> 'schemalog_marker' ORDER BY 1""",
    "partitioning": """
        SELECT c.relname, CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END, p.relname,
               pg_get_expr(c.relpartbound, c.oid)
        FROM pg_class c LEFT JOIN pg_inherits h ON h.inhrelid = c.oid LEFT JOIN pg_class p ON p.oid = h.inhparent
        WHERE c.relnamespace = 'public'::regnamespace AND (c.relkind = 'p' OR c.relispartition) ORDER BY 1""",
    "views": """
        SELECT c.relname, c.relkind::text, pg_get_viewdef(c.oid) FROM pg_class c
        WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('v', 'm') ORDER BY 1""",
    "sequences": """
        SELECT sequencename, data_type::text, start_value, increment_by, max_value, cache_size, cycle
        FROM pg_sequences WHERE schemaname = 'public' ORDER BY 1""",
    "routines": """
        SELECT p.proname, p.prokind::text, oidvectortypes(p.proargtypes),
               CASE WHEN p.prokind <> 'a' THEN pg_get_functiondef(p.oid) END,
               a.aggtransfn::regproc::text, format_type(a.aggtranstype, NULL), a.aggfinalfn::regproc::text,
               a.agginitval
        FROM pg_proc p LEFT JOIN pg_aggregate a ON a.aggfnoid = p.oid
        WHERE p.pronamespace = 'public'::regnamespace ORDER BY 1, 3""",
    "triggers": """
        SELECT c.relname, t.tgname, pg_get_triggerdef(t.oid) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
        WHERE NOT t.tgisinternal AND c.relnamespace = 'public'::regnamespace ORDER BY 1, 2""",
}


def _pagila_later_objects(text: str) -> dict[str, int]:
    import pglast

    counts: dict[str, int] = {}
    for raw in pglast.parse_sql(text):
        node = raw.stmt
        kind = type(node).__name__
        if kind == "CreateFunctionStmt":
            name = "FUNCTION"
        elif kind == "DefineStmt" and node.kind.name == "OBJECT_AGGREGATE":
            name = "AGGREGATE"
        elif kind == "CreateTrigStmt":
            name = "TRIGGER"
        elif kind == "AlterTableStmt" and any(cmd.subtype.name == "AT_AttachPartition" for cmd in node.cmds):
            name = "TABLE (partition)"
        else:
            continue
        counts[name] = counts.get(name, 0) + 1
    return counts


async def _objects(url: str) -> dict[str, list[tuple[object, ...]]]:
    conn = await asyncpg.connect(url)
    try:
        return {what: [tuple(r) for r in await conn.fetch(query)] for what, query in PAGILA_OBJECTS.items()}
    finally:
        await conn.close()


@pytest.mark.postgres
def test_pagila_imports_its_domains_and_its_tables_rebuild(tmp_path: Path) -> None:
    from tests.servers import postgres_database_url

    text = PAGILA.read_text(encoding="utf-8")
    assert _pagila_later_objects(text) == PAGILA_LATER
    with postgres_database_url() as source, postgres_database_url() as rebuilt:
        subprocess.run(
            ["psql", "-q", "-X", "-v", "ON_ERROR_STOP=1", "--dbname", source, "-f", str(PAGILA)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        config = write_config(tmp_path, source, rebuilt, "pagila")
        for args in (("init",), ("import", "--database", "source"), ("migrate", "--database", "rebuilt")):
            proc = subprocess.run(
                [str(SCHEMALOG), "--config", str(config), *args], capture_output=True, text=True, check=False
            )
            assert proc.returncode == 0, (args, proc.stderr or proc.stdout)
        shown = subprocess.run(
            [str(SCHEMALOG), "--config", str(config), "show", "--stream", "pagila", "--format", "json"],
            capture_output=True,
            text=True,
            check=True,
        )
        schema = json.loads(shown.stdout)
        assert sorted(schema["domains"]) == ["b\u0131g\u0131nt", "year"]
        assert schema["domains"]["year"]["checks"][0]["name"] == "year_check"
        assert schema["tables"]["film"]["columns"][3]["type"] == "domain:year"
        blamed = subprocess.run(
            [str(SCHEMALOG), "--config", str(config), "blame", "year", "--stream", "pagila", "--json"],
            capture_output=True,
            text=True,
            check=True,
        )
        (line,) = json.loads(blamed.stdout)["lines"]
        assert line["kind"] == "domain" and line["created"]["actor"] == "import:source"
        blamed = subprocess.run(
            [str(SCHEMALOG), "--config", str(config), "blame", "group_concat", "--stream", "pagila", "--json"],
            capture_output=True,
            text=True,
            check=True,
        )
        (line,) = json.loads(blamed.stdout)["lines"]
        assert line["kind"] == "aggregate" and line["created"]["actor"] == "import:source"
        blamed = subprocess.run(
            [str(SCHEMALOG), "--config", str(config), "blame", "actor", "--stream", "pagila", "--json"],
            capture_output=True,
            text=True,
            check=True,
        )
        assert [(b["kind"], b["name"]) for b in json.loads(blamed.stdout)["lines"]][-1] == ("trigger", "last_updated")
        import asyncio

        source_objects, rebuilt_objects = asyncio.run(_objects(source)), asyncio.run(_objects(rebuilt))
        assert len(source_objects["domains"]) == 2 and len(source_objects["views"]) == 8
        assert len(source_objects["routines"]) == 10 and len(source_objects["triggers"]) == 15
        assert len(schema["routines"]) == 10 and len(schema["triggers"]) == 15
        assert schema["routines"]["group_concat(text)"]["uses"] == ["_group_concat"]
        assert schema["triggers"]["actor.last_updated"]["uses"] == ["last_updated"]
        assert schema["triggers"]["film.film_fulltext_trigger"]["uses"] == []  # a built-in's
        script = subprocess.run(
            [str(SCHEMALOG), "--config", str(config), "show", "--stream", "pagila", "--format", "sql"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert script.index("CREATE OR REPLACE AGGREGATE") < script.index("CREATE VIEW")
        assert script.count("CREATE OR REPLACE TRIGGER") == 15
        assert sorted(schema["views"]) == sorted(r[0] for r in source_objects["views"])
        assert len(source_objects["columns"]) == sum(len(t["columns"]) for t in schema["tables"].values())
        for what in PAGILA_OBJECTS:
            assert rebuilt_objects[what] == source_objects[what], what
        assert schema["tables"]["payment"]["partition_by"] == "RANGE (payment_date)"
        partitions = sorted(n for n, t in schema["tables"].items() if (t.get("partition_of") or {}).get("parent"))
        assert partitions == [f"payment_p2022_0{m}" for m in range(1, 8)]
        # payment, its 7 partitions, and the 7 partitions' primary key indexes attached to payment_pkey
        parted = rebuilt_objects["partitioning"]
        assert len(parted) == 15 and parted[0] == ("payment", "RANGE (payment_date)", None, None)
        assert sorted(r[0] for r in parted if r[2] == "payment") == partitions
        assert sorted(r[0] for r in parted if r[2] == "payment_pkey") == [f"{p}_pkey" for p in partitions]
        assert script.index("PARTITION BY RANGE (payment_date)") < script.index("ATTACH PARTITION")


# --------------------------------------------------------------------------- extensions

EXTENSIONS: list[Event] = [
    ExtensionCreated(name="citext"),
    ExtensionCreated(name="uuid-ossp"),
    TableCreated(table="handles", columns=(Column(name="handle", type="postgresql:citext"),)),
    ExtensionDropped(name="uuid-ossp"),
]


def test_extensions_through_every_layer() -> None:
    checked, replay = State(), Replay()
    for k, event in enumerate(EXTENSIONS, start=1):
        text = json.dumps(to_dict(event))
        assert decode.event_from_text(text) == event and parse_event(json.loads(text), stored=True) == event, k
        before = checked.copy()
        undo = inverse(event, before)
        apply_event(event, checked)
        replay.apply(json.loads(text))
        assert replay.to_state().to_schema() == checked.to_schema(), k
        assert Replay.from_body(replay.body()).to_state().to_schema() == checked.to_schema(), k
        assert replay.public() == checked.to_schema().sorted().model_dump(mode="json"), k
        assert undo is not None
        undone = checked.copy()
        apply_event(undo, undone)
        assert same_schema(undone.to_schema(), before.to_schema()), k
    assert sorted(fold(EXTENSIONS).extensions) == ["citext"]
    with pytest.raises(InvalidChange, match="extension 'citext' already exists"):
        fold([*EXTENSIONS, ExtensionCreated(name="citext")])
    with pytest.raises(InvalidChange, match="extension 'ghost' does not exist"):
        fold([ExtensionDropped(name="ghost")])
    with pytest.raises(ValueError, match="is not a name"):
        parse_event({"type": "extension_created", "name": 'citext"; DROP TABLE x; --'})
    new = fold(EXTENSIONS)
    assert [e.type for e in schema_diff(Schema(), new)] == ["extension_created", "table_created"]
    assert [e.type for e in schema_diff(new, Schema())] == ["table_dropped", "extension_dropped"]
    pg = get_dialect("postgresql")
    assert emit(EXTENSIONS[0], pg, Schema(), fold(EXTENSIONS[:1])) == ['CREATE EXTENSION "citext"']
    assert emit(EXTENSIONS[3], pg, fold(EXTENSIONS[:3]), new) == ['DROP EXTENSION "uuid-ossp"']
    assert pg.create_script(new)[0] == 'CREATE EXTENSION "citext"'
    for statement in ('CREATE EXTENSION "citext"', 'DROP EXTENSION "uuid-ossp"'):
        check_planned("postgresql", statement, "extension_created" if "CREATE" in statement else "extension_dropped")
    for name in ("mysql", "sqlite"):
        assert emit(EXTENSIONS[0], get_dialect(name), Schema(), fold(EXTENSIONS[:1])) == []
        assert extensions_of(get_dialect(name).normalize(fold(EXTENSIONS[:2]))) == {}


@pytest.mark.postgres
async def test_an_extension_migrates_and_one_made_by_hand_is_drift_then_adopted(
    log_store: EventStore, pg_url: str
) -> None:
    from service.authoring.importer import import_database

    version = await append(log_store, *EXTENSIONS[:3])
    outcome = await migrate(log_store, req(pg_url, version))
    assert outcome.status == "applied", (outcome.detail, outcome.drift)
    await _state_is_live(log_store, pg_url, version)
    run_sql(pg_url, "INSERT INTO handles VALUES ('Ada')")
    assert [tuple(r) for r in run_sql(pg_url, "SELECT count(*) FROM handles WHERE handle = 'ADA'")] == [(1,)]
    run_sql(pg_url, "CREATE EXTENSION hstore")
    outcome = await migrate(log_store, req(pg_url, version))
    assert outcome.status == "drift" and outcome.drift == ["extension hstore: in the database, not in the log"]
    result = await import_database(log_store, pg_url, "app")
    assert (result.kind, result.events) == ("drift", 1)
    last = await append(log_store, ExtensionDropped(name="hstore"), ExtensionDropped(name="uuid-ossp"))
    outcome = await migrate(log_store, req(pg_url, last))
    assert outcome.status == "applied", (outcome.detail, outcome.drift)
    await _state_is_live(log_store, pg_url, last)
    outcome = await migrate(log_store, req(pg_url, 0, allow_destructive=True))
    assert outcome.status == "applied", (outcome.detail, outcome.drift)
    assert [tuple(r) for r in run_sql(pg_url, "SELECT count(*) FROM pg_extension WHERE extname <> 'plpgsql'")] == [(0,)]
