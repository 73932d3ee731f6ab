"""Issue 19, slice 2: views and materialized views, through every layer, on every dialect.

A view's definition is kept per dialect as the database gives it back (PostgreSQL's pg_get_viewdef, the
query of MariaDB's SHOW CREATE VIEW, SQLite's CREATE VIEW statement from sqlite_master); the definitions
below are written in those forms, so that a database built from the log introspects back to it exactly.

Pure: the fold, the replay and the decoding agree; inverses; what a view reads cannot be dropped or renamed
(the refusal names the view); a definition that is not exactly one CREATE of the named view is refused as
input, and refused again by migrate when it was stored behind append's back; a diff drops views first and
makes them last, each after what it reads. Real databases: views made, replaced and dropped forward and
back, rows kept; a view changed by hand is drift; a view made by hand is adopted by import.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from events import decode
from events.aggregate import InvalidChange, State, apply_event, fold
from events.catalog import (
    ColumnAltered,
    ColumnDropped,
    ColumnRenamed,
    Event,
    TableCreated,
    TableDropped,
    TableRenamed,
    ViewCreated,
    ViewDropped,
    ViewReplaced,
    parse_event,
    to_dict,
)
from events.envelope import RecordedEvent
from events.model import Column, Schema
from events.store import EventStore
from projections.audit import blame
from projections.diff import inverse, schema_diff
from projections.replay import Replay
from projections.schema import Point, Projector, same_schema
from service.reconciler.apply import migrate
from service.reconciler.ddl import emit
from service.reconciler.dialects import get_dialect
from service.reconciler.normalize import differences
from service.reconciler.statements import check_planned
from service.reconciler.targets import open_target
from tests.sqlexec import run_sql
from tests.test_reconciler import append, req

PEOPLE = TableCreated(
    table="people",
    columns=(Column(name="id", type="integer", nullable=False), Column(name="name", type="varchar(50)")),
    primary_key=("id",),
)

LOUD = ViewCreated(
    name="loud",
    definitions={
        "postgresql": (
            "SELECT people.id,\n    upper((people.name)::text) AS loud\n   FROM people\n  WHERE (people.id > 0)"
        ),
        "mysql": "select `people`.`id` AS `id`,ucase(`people`.`name`) AS `loud` from `people` where `people`.`id` > 0",
        "sqlite": "CREATE VIEW loud AS SELECT id, upper(name) AS loud FROM people WHERE id > 0",
    },
    columns=("people.id", "people.name"),
)
LOUD_AGAIN = ViewReplaced(
    name="loud",
    definitions={
        "postgresql": "SELECT people.id,\n    lower((people.name)::text) AS loud\n   FROM people",
        "mysql": "select `people`.`id` AS `id`,lcase(`people`.`name`) AS `loud` from `people`",
        "sqlite": "CREATE VIEW loud AS SELECT id, lower(name) AS loud FROM people",
    },
    columns=("people.id", "people.name"),
)
LOUDER = ViewCreated(
    name="louder",
    definitions={
        "postgresql": "SELECT loud.loud\n   FROM loud",
        "mysql": "select `loud`.`loud` AS `loud` from `loud`",
        "sqlite": "CREATE VIEW louder AS SELECT loud FROM loud",
    },
)
COUNTS = ViewCreated(
    name="counts", definitions={"postgresql": "SELECT count(*) AS n\n   FROM people"}, materialized=True
)

HISTORY: list[Event] = [
    PEOPLE,
    LOUD,
    LOUDER,
    LOUD_AGAIN,
    COUNTS,
    ViewDropped(name="louder"),
    ViewDropped(name="counts"),
]


def test_what_a_view_reads_is_found_from_its_definitions() -> None:
    assert LOUD.uses == ("people",) and LOUDER.uses == ("loud",) and COUNTS.uses == ("people",)
    assert LOUD.definitions["postgresql"].endswith("> 0)")  # the stored form: no trailing ';', outer space
    given = ViewCreated(name="v", definitions={"postgres": " SELECT 1 AS one;\n"})
    assert given.definitions == {"postgresql": "SELECT 1 AS one"} and given.uses == ()


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
    assert sorted(fold(HISTORY[:5]).views) == ["counts", "loud", "louder"]
    assert fold(HISTORY[:5]).views["counts"].materialized
    assert fold(HISTORY).views["loud"].definitions["sqlite"].startswith("CREATE VIEW loud AS SELECT id, lower")


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
        ([PEOPLE, LOUD, TableDropped(table="people")], "cannot drop table 'people': view 'loud' uses it"),
        ([PEOPLE, LOUD, TableRenamed(table="people", new_name="folk")], "cannot rename table 'people': view 'loud'"),
        ([PEOPLE, LOUD, ColumnDropped(table="people", column="name")], "cannot drop people.name: view 'loud'"),
        ([PEOPLE, LOUD, ColumnRenamed(table="people", column="id", new_name="pid")], "rename people.id: view 'loud'"),
        ([PEOPLE, LOUD, ColumnAltered.of("people", "name", type="text")], "type of people.name: view 'loud'"),
        ([PEOPLE, LOUD, LOUDER, ViewDropped(name="loud")], "cannot drop view 'loud': view 'louder' uses it"),
        ([LOUD], "reads 'people', which is no table or view"),
        ([PEOPLE, LOUD, LOUD], "view 'loud' already exists"),
        ([PEOPLE, LOUD.model_copy(update={"name": "people"})], "a table has that name"),
        ([PEOPLE, LOUD.model_copy(update={"columns": ("people.ghost",)})], "column people.ghost, which does not"),
        ([PEOPLE, LOUD_AGAIN], "view 'loud' does not exist"),
        ([PEOPLE, LOUD, TableCreated(table="loud", columns=(Column(name="a", type="text"),))], "a view has that"),
    ],
)
def test_what_a_view_reads_cannot_go_from_under_it(events: list[Event], message: str) -> None:
    with pytest.raises(InvalidChange, match=re.escape(message)):
        fold(events)


def test_a_changeset_that_drops_the_view_first_may_drop_what_it_read() -> None:
    schema = fold([PEOPLE, LOUD, ViewDropped(name="loud"), TableDropped(table="people")])
    assert schema.tables == {} and schema.views == {}


@pytest.mark.parametrize(
    ("dialect", "text", "message"),
    [
        ("postgresql", "SELECT 1; DROP TABLE people", "2 statements"),
        ("postgresql", "SELECT 1 AS a WITH NO DATA", "PostgreSQL's parser"),
        ("mysql", "select 1; drop table people", "';'"),
        ("mysql", "select 1 /*! , sleep(10) */", "comment"),
        ("mysql", "drop table people", "its query"),
        ("sqlite", "CREATE VIEW other AS SELECT 1", "does not make the view 'v'"),
        ("sqlite", "CREATE TABLE v AS SELECT 1", "its CREATE VIEW statement"),
        ("sqlite", "CREATE VIEW v AS SELECT 1; DROP TABLE people", "';'"),
        ("sqlite", "CREATE VIEW v AS SELECT 1 -- and more", "comment"),
        ("oracle", "SELECT 1", "unknown dialect"),
    ],
)
def test_a_definition_that_is_not_one_view_is_refused_as_input(dialect: str, text: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_event({"type": "view_created", "name": "v", "definitions": {dialect: text}})


def test_a_materialized_view_is_postgresqls_alone() -> None:
    with pytest.raises(ValueError, match="no materialized views"):
        parse_event({"type": "view_created", "name": "v", "materialized": True, "definitions": {"mysql": "select 1"}})


async def test_a_view_stored_behind_appends_back_never_reaches_a_database(
    log_store: EventStore, target_url: str
) -> None:
    from tests.forge import forge

    dialect = "postgresql" if target_url.startswith("postgresql") else "sqlite"
    dialect = "mysql" if target_url.startswith("mysql") else dialect
    hostile = {
        "postgresql": "SELECT 1; DROP TABLE x",
        "mysql": "select 1; drop table x",
        "sqlite": "CREATE VIEW v AS SELECT 1; DROP TABLE x",
    }
    (version,) = await forge(
        log_store.url, "app", [{"type": "view_created", "name": "v", "definitions": {dialect: hostile[dialect]}}]
    )
    outcome = await migrate(log_store, req(target_url))
    assert outcome.status == "refused", (outcome.status, outcome.detail)
    assert outcome.detail is not None and f"v{version} (" in outcome.detail
    assert outcome.statements == []


def test_each_dialect_writes_a_view_its_own_way() -> None:
    before, after = fold([PEOPLE]), fold([PEOPLE, LOUD])
    replaced = fold([PEOPLE, LOUD, LOUD_AGAIN])
    out: dict[str, list[str]] = {}
    for name in ("postgresql", "mysql", "sqlite"):
        dialect = get_dialect(name)
        made = emit(LOUD, dialect, before, after)
        again = emit(LOUD_AGAIN, dialect, after, replaced)
        gone = emit(ViewDropped(name="loud"), dialect, after, before)
        for event, statements in ((LOUD, made), (LOUD_AGAIN, again), (ViewDropped(name="loud"), gone)):
            for statement in statements:
                check_planned(name, statement, event.type)
        out[name] = made + again + gone
    assert out["postgresql"] == [
        f"CREATE VIEW loud AS {LOUD.definitions['postgresql']}",
        f"CREATE OR REPLACE VIEW loud AS {LOUD_AGAIN.definitions['postgresql']}",
        "DROP VIEW loud",
    ]
    assert out["mysql"][1].startswith("CREATE OR REPLACE VIEW loud AS select `people`.`id`")
    assert out["sqlite"] == [
        LOUD.definitions["sqlite"],
        "DROP VIEW loud",
        LOUD_AGAIN.definitions["sqlite"],
        "DROP VIEW loud",
    ]
    matview = fold([PEOPLE, COUNTS])
    pg = get_dialect("postgresql")
    assert emit(COUNTS, pg, before, matview) == [
        "CREATE MATERIALIZED VIEW counts AS SELECT count(*) AS n\n   FROM people"
    ]
    assert emit(ViewDropped(name="counts"), pg, matview, before) == ["DROP MATERIALIZED VIEW counts"]
    script = pg.create_script(fold([PEOPLE, LOUD, LOUDER]))
    assert [s.split(" AS ")[0] for s in script[-2:]] == ["CREATE VIEW loud", "CREATE VIEW louder"]


def test_a_view_without_a_definition_for_the_dialect_is_refused_before_any_ddl() -> None:
    from service.reconciler.capacity import plan_problems

    only_pg = ViewCreated(name="v", definitions={"postgresql": "SELECT people.id\n   FROM people"})
    problems = plan_problems(get_dialect("sqlite"), State(), [(1, PEOPLE), (2, only_pg), (3, COUNTS)])
    assert problems == [
        "v2 (view_created): view v has no sqlite definition (it has: postgresql)",
        "v3 (view_created): view counts has no sqlite definition (it has: postgresql)",
        "v3 (view_created): view counts: sqlite has no materialized views",
    ]


def test_a_diff_drops_views_first_and_makes_them_last() -> None:
    new = fold([PEOPLE, LOUD, LOUDER])
    assert [e.type for e in schema_diff(Schema(), new)] == ["table_created", "view_created", "view_created"]
    assert [getattr(e, "name", None) for e in schema_diff(Schema(), new)][1:] == ["loud", "louder"]
    back = schema_diff(new, Schema())
    assert [(e.type, getattr(e, "name", None)) for e in back] == [
        ("view_dropped", "louder"),
        ("view_dropped", "loud"),
        ("table_dropped", None),
    ]
    changed = fold([PEOPLE, LOUD, LOUDER, LOUD_AGAIN])
    assert [e.type for e in schema_diff(new, changed)] == ["view_replaced"]


def test_blame_and_history_name_who_made_and_changed_a_view() -> None:
    from projections.audit import HistoryFilter, filter_history

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
    (line,) = blame(recorded, "loud") or []
    assert (line.kind, line.created.actor, line.changed.actor, line.changed.event_type) == (
        "view",
        "dev2",
        "dev4",
        "view_replaced",
    )
    assert blame(recorded, "louder") is None
    assert [r.version for r in filter_history(recorded, HistoryFilter(table="loud"))] == [2, 4]


# --------------------------------------------------------------------------- real databases


async def _state_is_live(store: EventStore, url: str, version: int) -> None:
    target = await open_target(url)
    try:
        _, schema = await Projector(store).schema("app", Point(version=version))
        want = target.expected(schema)
        assert differences(want, await target.introspect(want)) == []
        assert differences(want, await target.introspect()) == []
    finally:
        await target.close()


async def test_views_migrate_forward_and_back_with_the_rows(log_store: EventStore, target_url: str) -> None:
    first = await append(log_store, PEOPLE)
    assert (await migrate(log_store, req(target_url, first))).status == "applied"
    run_sql(target_url, "INSERT INTO people (id, name) VALUES (1, 'ada'), (2, 'bo'), (0, 'zero')")
    second = await append(log_store, LOUD, LOUDER)
    third = await append(log_store, LOUD_AGAIN)
    for version, rows in ((second, [("ADA",), ("BO",)]), (third, [("ada",), ("bo",), ("zero",)])):
        outcome = await migrate(log_store, req(target_url, version))
        assert outcome.status == "applied", (outcome.detail, outcome.drift)
        await _state_is_live(log_store, target_url, version)
        assert [tuple(r) for r in run_sql(target_url, "SELECT loud FROM louder ORDER BY loud")] == rows
    for version in (second, first):
        outcome = await migrate(log_store, req(target_url, version))
        assert outcome.status == "applied", (outcome.detail, outcome.drift)
        await _state_is_live(log_store, target_url, version)
    assert [tuple(r) for r in run_sql(target_url, "SELECT id, name FROM people ORDER BY id")] == [
        (0, "zero"),
        (1, "ada"),
        (2, "bo"),
    ]


@pytest.mark.postgres
async def test_a_materialized_view_migrates_forward_and_back(log_store: EventStore, pg_url: str) -> None:
    first = await append(log_store, PEOPLE)
    second = await append(log_store, COUNTS)
    for version in (first, second, first, second):
        outcome = await migrate(log_store, req(pg_url, version))
        assert outcome.status == "applied", (outcome.detail, outcome.drift)
        await _state_is_live(log_store, pg_url, version)
    assert [tuple(r) for r in run_sql(pg_url, "SELECT n FROM counts")] == [(0,)]


_BY_HAND = {
    "postgresql": "CREATE OR REPLACE VIEW loud AS SELECT id, upper(name) AS loud FROM people",
    "mysql": "CREATE OR REPLACE VIEW loud AS SELECT id, upper(name) AS loud FROM people",
    "sqlite": "DROP VIEW loud",
}


async def test_a_view_changed_by_hand_is_drift_and_one_made_by_hand_is_adopted(
    log_store: EventStore, target_url: str
) -> None:
    from service.authoring.importer import import_database

    version = await append(log_store, PEOPLE, LOUD)
    assert (await migrate(log_store, req(target_url, version))).status == "applied"
    dialect = next(d for d in _BY_HAND if target_url.startswith(d))
    run_sql(target_url, _BY_HAND[dialect])
    if dialect == "sqlite":
        run_sql(target_url, "CREATE VIEW loud AS SELECT id, upper(name) AS loud FROM people")
    run_sql(target_url, "CREATE VIEW quiet AS SELECT id FROM people")
    outcome = await migrate(log_store, req(target_url, version))
    assert outcome.status == "drift", outcome.detail
    drift = "\n".join(outcome.drift)
    assert "view quiet: in the database, not in the log" in drift
    assert re.search(r"view loud: definition .* in the log, .* in the database", drift), drift
    result = await import_database(log_store, target_url, "app")
    assert (result.kind, result.events, result.warnings) == ("drift", 2, [])
    recorded = (await log_store.read("app"))[version:]
    assert sorted(r.event.type for r in recorded) == ["view_created", "view_replaced"]
    made = next(r.event for r in recorded if isinstance(r.event, ViewCreated))
    assert made.name == "quiet" and made.uses == ("people",) and list(made.definitions) == [dialect]
    assert made.columns == ("people.id",)  # PostgreSQL's pg_depend; sqlglot's reading of the others' text
    assert (await migrate(log_store, req(target_url, result.last_version))).status == "up_to_date"


# --------------------------------------------------------------------------- Sakila, from its authors' files

SAKILA_VIEWS = {"mysql": 7, "sqlite": 5}  # SQLite's actor_info is inside a comment of its file
SAKILA_OBJECTS = {
    "mysql": (
        "SELECT TABLE_NAME, replace(VIEW_DEFINITION, concat('`', DATABASE(), '`.'), ''), CHECK_OPTION, IS_UPDATABLE,"
        " SECURITY_TYPE FROM information_schema.VIEWS WHERE TABLE_SCHEMA = DATABASE() ORDER BY 1"
    ),
    "sqlite": "SELECT name, sql FROM sqlite_master WHERE type = 'view' ORDER BY name",
}
"""The views as the database reads them out: MariaDB's information_schema (its own database's name left
out of the definition: the two databases have different names), SQLite's sqlite_master."""


def _load_sakila_with_views(dialect: str, url: str) -> int:
    """Sakila's tables, indexes, constraints and views (not its triggers and routines: the issue's next
    slice); how many views."""
    import sqlite3

    from tests.test_real_schemas import SAKILA, _mysql_statements, _sqlite_statements

    views = 0
    if dialect == "mysql":
        import pymysql

        skipped = re.compile(
            r"^(DROP SCHEMA|CREATE SCHEMA|USE|CREATE TRIGGER|CREATE PROCEDURE|CREATE FUNCTION)\b", re.I
        )
        conn = pymysql.connect(host="127.0.0.1", user="root", database=url.rsplit("/", 1)[1], charset="utf8mb4")
        try:
            with conn.cursor() as cur:
                for statement in _mysql_statements((SAKILA / "mysql-sakila-schema.sql").read_text(encoding="utf-8")):
                    if skipped.match(statement):
                        continue
                    views += bool(re.match(r"^CREATE (DEFINER=\S+ )?(SQL SECURITY \w+ )?VIEW\b", statement, re.I))
                    cur.execute(re.sub(r"\bsakila\.", "", statement))  # loaded into a database of its own
            conn.commit()
        finally:
            conn.close()
    else:
        conn3 = sqlite3.connect(url.removeprefix("sqlite:///"))
        try:
            for statement in _sqlite_statements((SAKILA / "sqlite-sakila-schema.sql").read_text(encoding="utf-8")):
                if re.match(r"^CREATE\s+TRIGGER\b", statement, re.I):
                    continue
                views += bool(re.match(r"^CREATE\s+VIEW\b", statement, re.I))
                conn3.execute(statement)
            conn3.commit()
        finally:
            conn3.close()
    return views


@pytest.mark.parametrize("dialect", ["mysql", "sqlite"])
def test_sakila_views_import_and_rebuild_as_they_were(dialect: str, tmp_path: Path) -> None:
    """Sakila as its authors publish it for MariaDB and SQLite, with its views: imported, rebuilt in an
    empty database, and every view read back from the catalogue equal to the original's."""
    import subprocess

    from tests.test_real_schemas import SCHEMALOG, assert_same, import_and_rebuild, source_and_rebuilt

    with source_and_rebuilt(dialect, tmp_path) as (source, rebuilt):
        assert _load_sakila_with_views(dialect, source) == SAKILA_VIEWS[dialect]
        config = import_and_rebuild(tmp_path, source, rebuilt, "sakila")
        # what the views read is known: a column film_list shows cannot be dropped from under it
        shown = subprocess.run(
            [str(SCHEMALOG), "--config", str(config), "show", "--stream", "sakila", "--format", "json"],
            capture_output=True,
            text=True,
            check=True,
        )
        head = decode.schema(**{k: v for k, v in json.loads(shown.stdout).items() if k not in ("stream", "version")})
        assert "film.description" in head.views["film_list"].columns
        with pytest.raises(InvalidChange, match=re.escape("cannot drop film.description: view 'film_list'")):
            fold([ColumnDropped(table="film", column="description")], head)
        original = [tuple(r) for r in run_sql(source, SAKILA_OBJECTS[dialect])]
        assert len(original) == SAKILA_VIEWS[dialect]
        assert [tuple(r) for r in run_sql(rebuilt, SAKILA_OBJECTS[dialect])] == original
        assert_same(dialect, source, rebuilt)
        rows = "SELECT count(*) FROM film_list"
        assert [tuple(r) for r in run_sql(rebuilt, rows)] == [tuple(r) for r in run_sql(source, rows)]


def test_show_at_a_point_before_and_after_a_views_change_gives_both_definitions(tmp_path: Path) -> None:
    """The history of a view: ``schemalog show --at`` at the version before its change and after it; and
    ``show --format sql`` makes it after the table it reads; ``blame`` names who changed it."""
    import subprocess

    from tests.test_real_schemas import SCHEMALOG

    store = f"sqlite:///{tmp_path / 'log.db'}"

    def run(*args: str, stdin: str | None = None) -> str:
        proc = subprocess.run(
            [str(SCHEMALOG), "--store", store, *args], input=stdin, capture_output=True, text=True, check=False
        )
        assert proc.returncode == 0, (args, proc.stderr)
        return proc.stdout

    run("init")
    for actor, events in (("ada", [PEOPLE, LOUD]), ("bo", [LOUD_AGAIN])):
        changeset = {"stream": "app", "message": f"by {actor}", "events": [to_dict(e) for e in events]}
        (tmp_path / "c.json").write_text(json.dumps(changeset), encoding="utf-8")
        run("append", str(tmp_path / "c.json"), "--actor", actor)
    before = json.loads(run("show", "--stream", "app", "--at", "2", "--format", "json"))
    after = json.loads(run("show", "--stream", "app", "--at", "3", "--format", "json"))
    assert before["views"]["loud"]["definitions"] == LOUD.definitions
    assert after["views"]["loud"]["definitions"] == LOUD_AGAIN.definitions
    script = run("show", "--stream", "app", "--format", "sql", "--dialect", "sqlite").splitlines()
    assert script[-1] == LOUD_AGAIN.definitions["sqlite"] + ";" and script[1].startswith("CREATE TABLE people")
    blamed = json.loads(run("blame", "loud", "--stream", "app", "--json"))
    (line,) = blamed["lines"]
    assert (line["kind"], line["created"]["actor"], line["last_changed"]["actor"]) == ("view", "ada", "bo")
    history = run("history", "--stream", "app")
    assert "view_created loud [mysql, postgresql, sqlite]" in history and "view_replaced loud" in history


async def test_makemigrations_keeps_what_models_cannot_say(log_store: EventStore) -> None:
    """SQLAlchemy models have no views, domains or extensions: a proposal from models equal to the log's
    tables proposes nothing, and a model that drops a table a view reads is refused, naming the view."""
    from events.catalog import DomainCreated, ExtensionCreated
    from events.model import DomainCheck, Table
    from projections.diff import Renames
    from service.app.authoring import propose

    year = DomainCreated(name="year", base="integer", checks=(DomainCheck(name="c", expression="VALUE > 0"),))
    films = TableCreated(
        table="films",
        columns=(Column(name="id", type="integer", nullable=False), Column(name="released", type="domain:year")),
        primary_key=("id",),
    )
    await append(log_store, ExtensionCreated(name="citext"), year, PEOPLE, films, LOUD)
    models = Schema(
        tables={
            "people": Table(name="people", columns=PEOPLE.columns, primary_key=("id",)),
            "films": Table(
                name="films",
                columns=(Column(name="id", type="integer", nullable=False), Column(name="released", type="integer")),
                primary_key=("id",),
            ),
        }
    )
    proposal = await propose(log_store, models, "app", renames=Renames(), fills={})
    assert proposal.events == ()
    without_people = Schema(tables={"films": models.tables["films"]})
    dropping = await propose(log_store, without_people, "app", renames=Renames(), fills={}, detect_renames=False)
    assert [e.type for e in dropping.events] == ["table_dropped"]  # the view is not dropped with it ...
    _, head = await Projector(log_store).schema("app")
    with pytest.raises(InvalidChange, match="view 'loud' uses it"):  # ... so recording it is refused
        fold(list(dropping.events), head)
