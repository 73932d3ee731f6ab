"""Issue 19, slice 3: routines (functions, procedures, aggregates) and triggers, PostgreSQL's, through every layer.

Pure, no database: the checked fold, the replay of the stored form and the fast decoding agree; each
event's inverse gives the state before back; a definition that is not one CREATE of the named routine or
trigger never gets in, nor out to a database when it was stored behind append's back; what a routine or
trigger uses cannot go from under it, and the message names it; a diff makes routines after the tables and
before the views, triggers last, and drops them in the other order; blame names who made and changed them.

Real PostgreSQL: a trigger changed through the log migrates forward and back with the rows kept, the
database introspecting back to the state each time; a trigger changed by hand is drift, and adopted.
(Pagila's functions, aggregate and triggers: tests/test_objects_domains.py.)
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest

from events import decode
from events.aggregate import InvalidChange, State, apply_event, fold
from events.catalog import (
    Event,
    RoutineCreated,
    RoutineDropped,
    RoutineReplaced,
    TableCreated,
    TableDropped,
    TableRenamed,
    TriggerCreated,
    TriggerDropped,
    TriggerReplaced,
    ViewCreated,
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
from service.reconciler.statements import UnsafeStatement, check_planned
from service.reconciler.targets import open_target
from tests.sqlexec import run_sql
from tests.test_reconciler import append, req

PEOPLE = TableCreated(
    table="people",
    columns=(
        Column(name="id", type="integer", nullable=False),
        Column(name="name", type="text"),
        Column(name="changed", type="integer", nullable=False, default="0"),
    ),
    primary_key=("id",),
)
BUMP_BODY = "BEGIN NEW.changed = OLD.changed + {step}; RETURN NEW; END"
BUMP = RoutineCreated(
    name="bump",
    definitions={
        "postgresql": "CREATE FUNCTION public.bump() RETURNS trigger LANGUAGE plpgsql AS $f$"
        + BUMP_BODY.format(step=1)
        + "$f$"
    },
)
BUMP_MORE = RoutineReplaced(
    name="bump",
    definitions={
        "postgresql": "CREATE OR REPLACE FUNCTION public.bump() RETURNS trigger LANGUAGE plpgsql AS $f$"
        + BUMP_BODY.format(step=10)
        + "$f$"
    },
)
JOIN = RoutineCreated(
    name="_join",
    signature="text, text",
    definitions={
        "postgresql": "CREATE FUNCTION _join(text, text) RETURNS text LANGUAGE sql IMMUTABLE"
        " AS $$ SELECT CASE WHEN $2 IS NULL THEN $1 WHEN $1 IS NULL THEN $2 ELSE $1 || ', ' || $2 END $$"
    },
)
JOINED = RoutineCreated(
    name="joined",
    kind="aggregate",
    signature="text",
    uses=("_join",),
    definitions={"postgresql": "CREATE AGGREGATE joined(text) (SFUNC = _join, STYPE = text)"},
)
ON_UPDATE = TriggerCreated(
    name="bumped",
    table="people",
    definitions={"postgresql": "CREATE TRIGGER bumped BEFORE UPDATE ON people FOR EACH ROW EXECUTE FUNCTION bump()"},
)
ON_INSERT_TOO = TriggerReplaced(
    name="bumped",
    table="people",
    definitions={
        "postgresql": "CREATE OR REPLACE TRIGGER bumped BEFORE INSERT OR UPDATE ON public.people"
        " FOR EACH ROW EXECUTE FUNCTION bump()"
    },
)

HISTORY: list[Event] = [
    PEOPLE,
    BUMP,
    JOIN,
    JOINED,
    ON_UPDATE,
    BUMP_MORE,
    ON_INSERT_TOO,
    TriggerDropped(name="bumped", table="people"),
    RoutineDropped(name="joined", signature="text"),
]


def test_the_stored_form_is_create_or_replace_and_a_trigger_uses_its_routine() -> None:
    assert BUMP.definitions["postgresql"].startswith("CREATE OR REPLACE FUNCTION public.bump()")
    assert ON_UPDATE.definitions["postgresql"].startswith("CREATE OR REPLACE TRIGGER bumped BEFORE UPDATE")
    state = fold(HISTORY[:5])
    assert state.triggers["people.bumped"].uses == ("bump",)
    assert sorted(state.routines) == ["_join(text, text)", "bump()", "joined(text)"]
    assert state.routines["joined(text)"].kind == "aggregate"


def test_the_fold_the_replay_and_the_decoding_agree() -> None:
    checked, replay = State(), Replay()
    for k, event in enumerate(HISTORY, start=1):
        text = json.dumps(to_dict(event))
        assert decode.event_from_text(text) == event and parse_event(json.loads(text), stored=True) == event, k
        apply_event(event, checked)
        replay.apply(json.loads(text))
        assert replay.to_state().to_schema() == checked.to_schema(), k
        assert Replay.from_body(replay.body()).to_state().to_schema() == checked.to_schema(), k
        assert replay.public() == checked.to_schema().sorted().model_dump(mode="json"), k


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
        assert undone.to_schema().routines == before.to_schema().routines, event
        assert undone.to_schema().triggers == before.to_schema().triggers, event


@pytest.mark.parametrize(
    ("events", "message"),
    [
        ([PEOPLE, BUMP, ON_UPDATE, TableDropped(table="people")], "cannot drop table 'people': trigger 'bumped' on"),
        (
            [PEOPLE, BUMP, ON_UPDATE, TableRenamed(table="people", new_name="folk")],
            "cannot rename table 'people': trigger 'bumped' on 'people' uses it",
        ),
        ([PEOPLE, BUMP, ON_UPDATE, RoutineDropped(name="bump")], r"cannot drop function bump\(\): trigger 'bumped'"),
        ([JOIN, JOINED, RoutineDropped(name="_join", signature="text, text")], "aggregate 'joined' uses it"),
        ([JOINED], "aggregate 'joined' uses '_join', which is no table, view or routine"),
        ([BUMP, ON_UPDATE], "table 'people' does not exist"),
        ([PEOPLE, BUMP, BUMP], r"function bump\(\) already exists"),
        ([PEOPLE, BUMP, ON_UPDATE, ON_UPDATE], "trigger 'bumped' on 'people' already exists"),
        ([BUMP_MORE], r"routine bump\(\) does not exist"),
        ([PEOPLE, TriggerDropped(name="bumped", table="people")], "trigger 'bumped' on 'people' does not exist"),
        (
            [
                JOIN,
                JOINED,
                RoutineReplaced(
                    name="joined",
                    signature="text",
                    definitions={
                        "postgresql": "CREATE FUNCTION joined(text) RETURNS text LANGUAGE sql AS $$ SELECT $1 $$"
                    },
                ),
            ],
            r"routine joined\(text\) is of kind aggregate, not function",
        ),
    ],
)
def test_what_does_not_fit_is_refused(events: list[Event], message: str) -> None:
    with pytest.raises((InvalidChange, ValueError), match=message):
        fold(events)


def test_dropping_the_trigger_first_lets_its_table_and_routine_go() -> None:
    schema = fold([PEOPLE, BUMP, ON_UPDATE, TriggerDropped(name="bumped", table="people"), RoutineDropped(name="bump")])
    assert schema.routines == {} and schema.triggers == {}
    fold([PEOPLE, BUMP, ON_UPDATE, TriggerDropped(name="bumped", table="people"), TableDropped(table="people")])


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {
                "type": "routine_created",
                "name": "f",
                "definitions": {"postgresql": "CREATE FUNCTION g() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$"},
            },
            "the statement makes 'g'",
        ),
        (
            {
                "type": "routine_created",
                "name": "f",
                "definitions": {
                    "postgresql": "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$; DROP TABLE people"
                },
            },
            "2 statements",
        ),
        ({"type": "routine_created", "name": "f", "definitions": {"postgresql": "DROP TABLE people"}}, "DropStmt"),
        (
            {
                "type": "routine_created",
                "name": "f",
                "kind": "procedure",
                "definitions": {"postgresql": "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$"},
            },
            "makes a function, not a procedure",
        ),
        (
            {
                "type": "routine_created",
                "name": "f",
                "definitions": {"mysql": "CREATE FUNCTION f() RETURNS int RETURN 1"},
            },
            "PostgreSQL only",
        ),
        ({"type": "routine_dropped", "name": "f", "signature": "int); DROP TABLE people; --"}, "not a list"),
        (
            {
                "type": "trigger_created",
                "name": "t",
                "table": "people",
                "definitions": {
                    "postgresql": "CREATE TRIGGER t BEFORE UPDATE ON other FOR EACH ROW EXECUTE FUNCTION bump()"
                },
            },
            "makes trigger 't' on 'other'",
        ),
        (
            {
                "type": "trigger_created",
                "name": "t",
                "table": "people",
                "definitions": {
                    "postgresql": "CREATE TRIGGER t BEFORE UPDATE ON people FOR EACH ROW EXECUTE FUNCTION bump();"
                    " SELECT 1"
                },
            },
            "2 statements",
        ),
    ],
)
def test_a_definition_that_is_not_one_create_of_the_object_is_refused(data: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_event(data)


def test_each_statement_is_the_definition_and_is_proven_single() -> None:
    dialect = get_dialect("postgresql")
    state = State()
    kinds = []
    for event in HISTORY:
        before = state.to_schema()
        apply_event(event, state)
        for sql in emit(event, dialect, before, state.to_schema()):
            kinds.append(check_planned("postgresql", sql, event.type))
    assert kinds.count("create_function") == 3 and kinds.count("create_aggregate") == 1
    assert kinds.count("create_trigger") == 2 and "drop_trigger" in kinds and "drop_aggregate" in kinds
    assert emit(HISTORY[-1], dialect, fold(HISTORY[:-1]), fold(HISTORY)) == ["DROP AGGREGATE joined(text)"]
    hostile = 'CREATE OR REPLACE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$; DROP TABLE "people"'
    with pytest.raises(UnsafeStatement, match="2 statements"):
        check_planned("postgresql", hostile, "routine_created")
    with pytest.raises(UnsafeStatement, match="not what routine_created emits"):
        check_planned("postgresql", 'DROP TABLE "people"', "routine_created")


def test_a_diff_makes_routines_before_views_and_triggers_last() -> None:
    view = ViewCreated(name="names", definitions={"postgresql": "SELECT joined(name) AS all_names FROM people"})
    new = fold([PEOPLE, BUMP, JOIN, JOINED, ON_UPDATE, view])
    made = [e.type for e in schema_diff(Schema(), new)]
    assert made == [
        "table_created",
        "routine_created",
        "routine_created",
        "routine_created",
        "view_created",
        "trigger_created",
    ]
    order = [getattr(e, "name", "") for e in schema_diff(Schema(), new) if e.type == "routine_created"]
    assert order.index("_join") < order.index("joined")
    gone = schema_diff(new, Schema())
    assert [e.type for e in gone][:2] == ["trigger_dropped", "view_dropped"]
    assert [getattr(e, "name", "") for e in gone if e.type == "routine_dropped"].index("joined") == 0
    assert gone[-1].type == "table_dropped"
    assert [e.type for e in schema_diff(fold(HISTORY[:5]), fold(HISTORY[:7]))] == [
        "routine_replaced",
        "trigger_replaced",
    ]
    script = get_dialect("postgresql").create_script(new)
    assert script[-1].startswith("CREATE OR REPLACE TRIGGER bumped")
    assert [s.split("(")[0] for s in script if re.match(r"CREATE OR REPLACE (FUNCTION|AGGREGATE)", s)] == [
        "CREATE OR REPLACE FUNCTION _join",
        "CREATE OR REPLACE FUNCTION public.bump",
        "CREATE OR REPLACE AGGREGATE joined",
    ]


def test_blame_names_who_made_and_changed_a_routine_and_a_trigger() -> None:
    recorded = [
        RecordedEvent(
            stream="s",
            version=k,
            position=k,
            changeset_id=f"c{k}",
            actor=f"actor{k}",
            message="m",
            recorded_at=datetime(2026, 1, 1, tzinfo=UTC),
            event=e,
            hash="0" * 64,
            prev_hash="0" * 64,
        )
        for k, e in enumerate(HISTORY[:7], start=1)
    ]
    (line,) = blame(recorded, "bump") or []
    assert (line.kind, line.created.actor, line.changed.actor) == ("function", "actor2", "actor6")
    lines = {(b.kind, b.name): b for b in blame(recorded, "people") or []}
    trigger = lines[("trigger", "bumped")]
    assert (trigger.created.actor, trigger.changed.actor) == ("actor5", "actor7")


# --------------------------------------------------------------------------- real PostgreSQL


async def _state_is_live(store: EventStore, url: str, version: int) -> None:
    target = await open_target(url)
    try:
        _, schema = await Projector(store).schema("app", Point(version=version))
        want = target.expected(schema)
        assert differences(want, await target.introspect(want)) == []
    finally:
        await target.close()


@pytest.mark.postgres
async def test_a_trigger_changed_through_the_log_migrates_forward_and_back(log_store: EventStore, pg_url: str) -> None:
    first = await append(log_store, PEOPLE, BUMP, JOIN, JOINED)
    second = await append(log_store, ON_UPDATE)
    third = await append(log_store, BUMP_MORE, ON_INSERT_TOO)
    assert (await migrate(log_store, req(pg_url, first))).status == "applied"
    await _state_is_live(log_store, pg_url, first)
    run_sql(pg_url, "INSERT INTO people (id, name) VALUES (1, 'ada'), (2, 'bo')")
    assert [tuple(r) for r in run_sql(pg_url, "SELECT joined(name ORDER BY name) FROM people")] == [("ada, bo",)]
    for version, step in ((second, 1), (third, 10)):
        outcome = await migrate(log_store, req(pg_url, version))
        assert outcome.status == "applied", (outcome.detail, outcome.drift)
        await _state_is_live(log_store, pg_url, version)
        before = run_sql(pg_url, "SELECT changed FROM people WHERE id = 1")[0][0]
        run_sql(pg_url, "UPDATE people SET name = name WHERE id = 1")
        assert run_sql(pg_url, "SELECT changed FROM people WHERE id = 1")[0][0] == before + step
    for version in (second, first):
        outcome = await migrate(log_store, req(pg_url, version))
        assert outcome.status == "applied", (outcome.detail, outcome.drift)
        await _state_is_live(log_store, pg_url, version)
    run_sql(pg_url, "UPDATE people SET name = name WHERE id = 2")  # no trigger any more
    assert [tuple(r) for r in run_sql(pg_url, "SELECT id, name, changed FROM people ORDER BY id")] == [
        (1, "ada", 11),
        (2, "bo", 0),
    ]


@pytest.mark.postgres
async def test_a_trigger_changed_by_hand_is_drift_and_adopted(log_store: EventStore, pg_url: str) -> None:
    from service.authoring.importer import import_database

    version = await append(log_store, PEOPLE, BUMP, ON_UPDATE)
    assert (await migrate(log_store, req(pg_url, version))).status == "applied"
    run_sql(pg_url, "CREATE OR REPLACE TRIGGER bumped AFTER UPDATE ON people FOR EACH ROW EXECUTE FUNCTION bump()")
    outcome = await migrate(log_store, req(pg_url, version))
    assert outcome.status == "drift", outcome.detail
    drift = "\n".join(outcome.drift)
    assert re.search(r"trigger bumped on people: definition .*BEFORE UPDATE.* in the log, .*AFTER UPDATE.*", drift)
    result = await import_database(log_store, pg_url, "app")
    assert (result.kind, result.events) == ("drift", 1)
    (recorded,) = (await log_store.read("app"))[version:]
    assert isinstance(recorded.event, TriggerReplaced) and recorded.event.uses == ("bump",)
    assert (await migrate(log_store, req(pg_url, result.last_version))).status == "up_to_date"


@pytest.mark.postgres
async def test_a_trigger_the_log_cannot_hold_is_drift_and_its_import_is_refused_in_one_line(
    log_store: EventStore, pg_url: str
) -> None:
    from service.authoring.importer import ImportRefused, import_database

    version = await append(log_store, PEOPLE, BUMP)
    assert (await migrate(log_store, req(pg_url, version))).status == "applied"
    run_sql(
        pg_url,
        "CREATE CONSTRAINT TRIGGER checked AFTER UPDATE ON people DEFERRABLE FOR EACH ROW EXECUTE FUNCTION bump()",
    )
    outcome = await migrate(log_store, req(pg_url, version))
    assert outcome.status == "drift" and outcome.drift == ["trigger checked on people: in the database, not in the log"]
    with pytest.raises(ImportRefused, match=r"^cannot record .*constraint triggers are not supported$"):
        await import_database(log_store, pg_url, "app")
    assert len(await log_store.read("app")) == version
