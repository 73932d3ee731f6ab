"""The fields and event types of issue 13, through every layer of the fold.

For each new field and event type: the checked fold (events.aggregate), the replay of the stored
form (projections.replay) and the fast decoding of the stored form (events.decode) give the same
schema; each event's inverse, applied after it, gives the state before back; an event stored
before the fields existed reads back exactly as it was (the same public form, so the same hash).
And a walk of the whole catalogue: every event type has its rule in every layer.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from events import decode
from events.aggregate import InvalidChange, State, apply_event, fold
from events.catalog import (
    EVENT_TYPES,
    SCHEMA_EVENT_TYPES,
    ColumnAdded,
    ColumnAltered,
    ColumnDropped,
    ColumnRenamed,
    ConstraintAdded,
    ConstraintDropped,
    EnumCreated,
    EnumDropped,
    EnumValueAdded,
    EnumValueDropped,
    Event,
    IndexCreated,
    PrimaryKeySet,
    RoutineCreated,
    RoutineDropped,
    RoutineReplaced,
    SqlRun,
    TableCreated,
    TableDropped,
    TableRenamed,
    TriggerCreated,
    TriggerDropped,
    parse_event,
    to_dict,
)
from events.envelope import canonical_json, chain_hash
from events.model import Column, Constraint, Generated, IdentityOptions, Index, IndexElement, Reference
from projections import replay as replay_module
from projections.audit import HistoryFilter, filter_history
from projections.diff import Irreversible, inverse, inverses, schema_diff
from projections.replay import Replay
from projections.schema import same_schema

ROOT = Path(__file__).resolve().parent.parent


def users(**extra: Any) -> TableCreated:
    return TableCreated(
        table="users",
        columns=(
            Column(name="id", type="bigint", nullable=False),
            Column(name="mail", type="varchar(100)"),
            Column(name="age", type="integer"),
        ),
        primary_key=("id",),
        **extra,
    )


MOOD = EnumCreated(name="mood", values=("sad", "ok", "happy"))

# name -> a history whose last events use one new field or event type
CASES: dict[str, list[Event]] = {
    "enum types": [
        MOOD,
        EnumValueAdded(name="mood", value="meh", before="ok"),
        EnumValueAdded(name="mood", value="great"),
        EnumValueDropped(name="mood", value="sad"),
        users(),
        ColumnAdded(table="users", column=Column(name="feeling", type="enum:mood")),
        ColumnAltered.of("users", "age", type="enum:mood"),
        ColumnDropped(table="users", column="feeling"),
        ColumnAltered.of("users", "age", type="integer"),
        EnumDropped(name="mood"),
    ],
    "an enum column from the start": [
        MOOD,
        TableCreated(table="moods", columns=(Column(name="m", type="enum:mood", nullable=False),)),
    ],
    "collation and charset": [
        users(),
        ColumnAdded(table="users", column=Column(name="nick", type="varchar(20)", collation="C")),
        ColumnAltered.of("users", "nick", collation="POSIX"),
        ColumnAltered.of("users", "mail", collation="C", charset="utf8mb4"),
        ColumnAltered.of("users", "mail", collation=None),
    ],
    "on update": [
        TableCreated(
            table="films",
            columns=(
                Column(name="id", type="bigint", nullable=False),
                Column(
                    name="last_update",
                    type="timestamp",
                    nullable=False,
                    default="current_timestamp",
                    on_update="current_timestamp",
                ),
            ),
            primary_key=("id",),
        ),
        ColumnAdded(table="films", column=Column(name="seen", type="timestamp", on_update="current_timestamp")),
        ColumnAltered.of("films", "seen", on_update=None),
        ColumnAltered.of("films", "seen", on_update="current_timestamp", default="current_timestamp"),
        ColumnRenamed(table="films", column="last_update", new_name="changed"),
    ],
    "generated columns": [
        users(),
        ColumnAdded(
            table="users",
            column=Column(name="next_age", type="integer", generated=Generated(expression="age + 1", stored=False)),
        ),
        ColumnRenamed(table="users", column="age", new_name="years"),
        ColumnAdded(
            table="users", column=Column(name="tag", type="text", generated=Generated(expression="lower(mail)"))
        ),
        ColumnDropped(table="users", column="tag"),
    ],
    "identity options": [
        TableCreated(
            table="seq",
            columns=(
                Column(
                    name="id",
                    type="bigint",
                    nullable=False,
                    identity=True,
                    identity_options=IdentityOptions(always=True, start=10, increment=5),
                ),
            ),
            primary_key=("id",),
        ),
        ColumnAltered.of("seq", "id", identity_options=IdentityOptions(start=100, cycle=True)),
        ColumnAltered.of("seq", "id", identity_options=None),
    ],
    "indexes with elements, where, include, method": [
        users(),
        IndexCreated(
            table="users",
            index=Index(
                name="users_mail_lower",
                elements=(IndexElement(expression="lower(mail)"), IndexElement(column="age", descending=True)),
                where="age > 0",
                include=("id",),
                unique=True,
            ),
        ),
        IndexCreated(
            table="users",
            index=Index(name="users_mail_ops", elements=(IndexElement(column="mail", opclass="varchar_pattern_ops"),)),
        ),
        IndexCreated(table="users", index=Index(name="users_age_brin", columns=("age",), method="brin")),
        ColumnRenamed(table="users", column="mail", new_name="email"),
        ColumnRenamed(table="users", column="age", new_name="years"),
        ColumnRenamed(table="users", column="id", new_name="uid"),
    ],
    "deferrable foreign keys": [
        users(),
        TableCreated(
            table="posts",
            columns=(Column(name="id", type="bigint", nullable=False), Column(name="author", type="bigint")),
        ),
        ConstraintAdded(
            table="posts",
            constraint=Constraint(
                name="posts_author_fk",
                kind="foreign_key",
                columns=("author",),
                references=Reference(table="users", columns=("id",)),
                deferrable=True,
                initially_deferred=True,
            ),
        ),
    ],
    "anonymous constraints": [
        users(
            constraints=(
                Constraint(name="users_mail_key", kind="unique", columns=("mail",), anonymous=True),
                Constraint(name="users_check", kind="check", expression="age > 0", anonymous=True),
            )
        ),
        ConstraintAdded(
            table="users",
            constraint=Constraint(name="users_age_key", kind="unique", columns=("age",)),  # named like the rule
        ),
        ConstraintAdded(
            table="users",
            constraint=Constraint(
                name="users_id_fkey",
                kind="foreign_key",
                columns=("id",),
                references=Reference(table="users", columns=("id",)),
                anonymous=True,
            ),
        ),
        TableRenamed(table="users", new_name="people"),
        ConstraintDropped(table="people", name="users_check"),
    ],
    "named primary keys": [
        users(primary_key_name="users_key"),
        TableRenamed(table="users", new_name="people"),
        PrimaryKeySet(table="people", columns=("id",), name="people_key"),
        PrimaryKeySet(table="people", columns=()),
        PrimaryKeySet(table="people", columns=("id",), name="pk_again"),
        TableDropped(table="people"),
    ],
    "fills": [
        users(),
        ColumnAdded(table="users", column=Column(name="score", type="integer", nullable=False), fill="0"),
        ColumnAltered.model_validate({"table": "users", "column": "mail", "nullable": False, "fill": "''"}),
    ],
    "data steps": [
        users(),
        SqlRun(
            forward={
                "postgresql": ["UPDATE users SET age = 0 WHERE age IS NULL"],
                "sqlite": ["UPDATE users SET age = 0"],
            },
            backward={"postgresql": [], "sqlite": []},
            description="ages",
        ),
    ],
    "routines and triggers": [
        users(),
        RoutineCreated(
            name="touch",
            definitions={
                "postgresql": "CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$"
            },
        ),
        TriggerCreated(
            name="touched",
            table="users",
            uses=("touch",),
            definitions={
                "postgresql": "CREATE TRIGGER touched BEFORE UPDATE ON users FOR EACH ROW EXECUTE FUNCTION touch()"
            },
        ),
        RoutineReplaced(
            name="touch",
            definitions={
                "postgresql": "CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN OLD; END$$"
            },
        ),
        TriggerDropped(name="touched", table="users"),
        RoutineDropped(name="touch"),
    ],
}


def stored(events: list[Event]) -> list[str]:
    return [json.dumps(to_dict(e)) for e in events]


@pytest.mark.parametrize("case", sorted(CASES))
def test_aggregate_replay_and_decode_agree(case: str) -> None:
    events = CASES[case]
    texts = stored(events)
    checked = State()
    replay = Replay()
    for k, (event, text) in enumerate(zip(events, texts, strict=True), start=1):
        decoded = decode.event_from_text(text)
        assert decoded == event and to_dict(decoded) == to_dict(event), k  # the fast path builds the same event
        assert parse_event(json.loads(text), stored=True) == event, k
        apply_event(event, checked)
        replay.apply(json.loads(text))
        assert replay.to_state().to_schema() == checked.to_schema(), (case, k)
        again = Replay.from_body(replay.body())  # a snapshot taken here goes on the same way
        assert again.to_state().to_schema() == checked.to_schema(), (case, k)
        assert again.body() == replay.body()
    assert fold([decode.event_from_text(t) for t in texts]) == checked.to_schema()


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_inverse_gives_the_state_before_back(case: str) -> None:
    state = State()
    for event in CASES[case]:
        before = state.copy()
        undo = inverse(event, before)
        apply_event(event, state)
        assert undo is not None, event
        undone = state.copy()
        apply_event(undo, undone)
        assert same_schema(undone.to_schema(), before.to_schema()), event
        assert undone.to_schema().enums == before.to_schema().enums, event  # values in their order too
        assert inverse(undo, state) == event


def test_anonymous_is_kept_by_every_fold_and_is_part_of_a_schema() -> None:
    events = CASES["anonymous constraints"]
    people = fold(events).tables["people"]
    assert [(c.name, c.anonymous) for c in sorted(people.constraints, key=lambda c: c.name)] == [
        ("users_age_key", False),
        ("users_id_fkey", True),
        ("users_mail_key", True),
    ]
    undone = State()
    for event in events[:-1]:
        apply_event(event, undone)
    undo = inverse(events[-1], undone.copy())
    apply_event(events[-1], undone)
    assert undo is not None
    apply_event(undo, undone)  # the dropped check comes back as it was
    check = undone.tables["people"].constraint("users_check")
    assert check is not None and check.anonymous
    named = fold([users(constraints=(Constraint(name="users_mail_key", kind="unique", columns=("mail",)),))])
    assert not same_schema(named, fold(events[:1]))  # a name the database keeps is not a handle


def test_what_the_folds_hold() -> None:
    schema = fold(CASES["enum types"][:4])
    assert schema.enums["mood"].values == ("meh", "ok", "happy", "great")
    state = State()
    for event in CASES["indexes with elements, where, include, method"]:
        apply_event(event, state)
    index = state.tables["users"].index("users_mail_lower")
    assert index is not None
    assert [e.expression or e.column for e in index.elements] == ["lower(email)", "years"]
    assert index.where == "years > 0" and index.include == ("uid",)
    generated = fold(CASES["generated columns"][:3]).tables["users"].column("next_age")
    assert generated is not None and generated.generated == Generated(expression="years + 1", stored=False)
    films = fold(CASES["on update"]).tables["films"]
    assert [(c.name, c.on_update) for c in films.columns] == [
        ("id", None),
        ("changed", "current_timestamp"),
        ("seen", "current_timestamp"),
    ]
    assert fold(CASES["on update"][:3]).tables["films"].column("seen") == Column(name="seen", type="timestamp")
    people = fold(CASES["named primary keys"][:2]).tables["people"]
    assert people.primary_key_name == "users_key"  # a rename keeps the key's name
    assert fold(CASES["named primary keys"][:3]).tables["people"].primary_key_name == "people_key"
    assert fold(CASES["named primary keys"][:4]).tables["people"].primary_key_name is None


REFUSED: list[tuple[str, list[Event], str]] = [
    ("enum twice", [MOOD, MOOD], "already exists"),
    ("value twice", [MOOD, EnumValueAdded(name="mood", value="ok")], "already has the value"),
    ("before nothing", [MOOD, EnumValueAdded(name="mood", value="x", before="nope")], "no value 'nope'"),
    ("last value", [EnumCreated(name="one", values=("a",)), EnumValueDropped(name="one", value="a")], "last value"),
    ("missing value", [MOOD, EnumValueDropped(name="mood", value="nope")], "no value 'nope'"),
    (
        "enum in use",
        [MOOD, TableCreated(table="t", columns=(Column(name="m", type="enum:mood"),)), EnumDropped(name="mood")],
        "used by column t.m",
    ),
    ("no such enum", [TableCreated(table="t", columns=(Column(name="m", type="enum:ghost"),))], "enum type 'ghost'"),
    (
        "no such enum, added",
        [users(), ColumnAdded(table="users", column=Column(name="m", type="enum:ghost"))],
        "enum type 'ghost'",
    ),
    ("no such enum, altered", [users(), ColumnAltered.of("users", "age", type="enum:ghost")], "enum type 'ghost'"),
    ("enum named as a table", [users(), EnumCreated(name="users", values=("a",))], "a table has that name"),
    (
        "table named as an enum",
        [MOOD, TableCreated(table="mood", columns=(Column(name="a", type="text"),))],
        "an enum type",
    ),
    (
        "index expression on a missing column",
        [
            users(),
            IndexCreated(table="users", index=Index(name="i", elements=(IndexElement(expression="lower(ghost)"),))),
        ],
        "users.ghost",
    ),
    (
        "index where on a missing column",
        [users(), IndexCreated(table="users", index=Index(name="i", columns=("age",), where="ghost > 1"))],
        "users.ghost",
    ),
    (
        "index include of a missing column",
        [users(), IndexCreated(table="users", index=Index(name="i", columns=("age",), include=("ghost",)))],
        "users.ghost",
    ),
    (
        "index element of a missing column",
        [
            users(),
            IndexCreated(
                table="users", index=Index(name="i", elements=(IndexElement(column="ghost", descending=True),))
            ),
        ],
        "users.ghost",
    ),
    (
        "generated over a missing column",
        [
            users(),
            ColumnAdded(
                table="users", column=Column(name="g", type="integer", generated=Generated(expression="ghost + 1"))
            ),
        ],
        "users.ghost",
    ),
    (
        "on update of an identity column",
        [
            TableCreated(table="t", columns=(Column(name="id", type="bigint", nullable=False, identity=True),)),
            ColumnAltered.of("t", "id", on_update="current_timestamp"),
        ],
        "t.id is an identity or generated column: no on_update",
    ),
    (
        "generated over itself",
        [
            users(),
            ColumnAdded(
                table="users", column=Column(name="g", type="integer", generated=Generated(expression="g + 1"))
            ),
        ],
        "refers to itself",
    ),
    (
        "drop a generated column's source",
        [*CASES["generated columns"][:2], ColumnDropped(table="users", column="age")],
        "generated column 'next_age'",
    ),
    (
        "drop an index expression's column",
        [*CASES["indexes with elements, where, include, method"][:2], ColumnDropped(table="users", column="mail")],
        "index 'users_mail_lower'",
    ),
    (
        "drop an index where's column",
        [
            users(),
            IndexCreated(table="users", index=Index(name="i", columns=("mail",), where="age > 1")),
            ColumnDropped(table="users", column="age"),
        ],
        "index 'i'",
    ),
    (
        "drop an included column",
        [
            users(),
            IndexCreated(table="users", index=Index(name="i", columns=("mail",), include=("age",))),
            ColumnDropped(table="users", column="age"),
        ],
        "index 'i'",
    ),
    (
        "a default for a generated column",
        [*CASES["generated columns"][:2], ColumnAltered.of("users", "next_age", default="1")],
        "generated column",
    ),
    (
        "identity options without identity",
        [users(), ColumnAltered.of("users", "age", identity_options=IdentityOptions(start=3))],
        "no identity column",
    ),
    (
        "primary key name taken",
        [
            users(),
            IndexCreated(table="users", index=Index(name="taken", columns=("age",))),
            PrimaryKeySet(table="users", columns=("id",), name="taken"),
        ],
        "already used",
    ),
    (
        "primary key name without key",
        [TableCreated(table="t", columns=(Column(name="a", type="text"),), primary_key_name="t_key")],
        "names a primary key",
    ),
    (
        "the same primary key",
        [users(primary_key_name="k"), PrimaryKeySet(table="users", columns=("id",), name="k")],
        "already has this primary key",
    ),
    (
        "a foreign key to a partial unique index",
        [
            users(),
            IndexCreated(table="users", index=Index(name="uq_age", columns=("age",), unique=True, where="age > 0")),
            TableCreated(table="t", columns=(Column(name="a", type="integer"),)),
            ConstraintAdded(
                table="t",
                constraint=Constraint(
                    name="fk", kind="foreign_key", columns=("a",), references=Reference(table="users", columns=("age",))
                ),
            ),
        ],
        "not unique",
    ),
]


@pytest.mark.parametrize(("case", "events", "message"), REFUSED, ids=[r[0] for r in REFUSED])
def test_what_does_not_fit_is_refused(case: str, events: list[Event], message: str) -> None:
    with pytest.raises(InvalidChange, match=re.escape(message)):
        fold(events)


def test_an_on_update_is_one_expression_of_a_plain_column() -> None:
    with pytest.raises(ValueError, match="cannot have on_update"):
        Column(name="g", type="integer", generated=Generated(expression="1 + 1"), on_update="current_timestamp")
    with pytest.raises(ValueError, match="on_update"):
        Column(name="t", type="timestamp", on_update="current_timestamp; DROP TABLE users")
    with pytest.raises(ValueError, match="on_update"):
        ColumnAltered.model_validate({"table": "t", "column": "c", "on_update": "(SELECT 1)"})
    altered = ColumnAltered.model_validate({"table": "t", "column": "c", "on_update": None})
    assert altered.changes() == {"on_update": None} and to_dict(altered)["on_update"] is None


def test_an_irreversible_data_step_has_no_inverse() -> None:
    step = SqlRun(forward={"postgresql": ["DELETE FROM users WHERE age < 0"]}, description="purge")
    state = State()
    apply_event(users(), state)
    with pytest.raises(Irreversible, match=r"purge.*cannot be undone"):
        inverse(step, state)
    with pytest.raises(Irreversible):
        inverses([step], state)
    assert isinstance(Irreversible("x"), ValueError)  # the CLI and the plan report it as bad input


def test_a_data_steps_inverse_swaps_its_statements() -> None:
    step = CASES["data steps"][-1]
    assert isinstance(step, SqlRun)
    back = inverse(step, State())
    assert isinstance(back, SqlRun)
    assert back.forward == step.backward and back.backward == step.forward and back.description == "ages"


def test_a_data_step_with_nothing_to_undo_undoes_nothing_where_it_ran() -> None:
    step = SqlRun(
        forward={"postgresql": ["UPDATE users SET age = 1"], "mysql": ["UPDATE users SET age = 1"]}, backward={}
    )
    back = inverse(step, State())
    assert isinstance(back, SqlRun)
    assert back.forward == {"postgresql": (), "mysql": ()} and back.backward == step.forward


def test_an_enum_value_comes_back_where_it_was() -> None:
    state = State()
    apply_event(MOOD, state)
    assert inverse(EnumValueDropped(name="mood", value="ok"), state) == EnumValueAdded(
        name="mood", value="ok", before="happy"
    )
    assert inverse(EnumValueDropped(name="mood", value="happy"), state) == EnumValueAdded(name="mood", value="happy")


# --------------------------------------------------------------------------- events stored before issue 13

OLD_EVENTS: list[dict[str, Any]] = [
    {
        "type": "table_created",
        "table": "users",
        "columns": [
            {"name": "id", "type": "bigint", "nullable": False, "identity": True},
            {"name": "mail", "type": "varchar(255)", "nullable": False, "comment": "login"},
        ],
        "primary_key": ["id"],
        "indexes": [{"name": "users_mail_key", "columns": ["mail"], "unique": True}],
    },
    {"type": "column_added", "table": "users", "column": {"name": "age", "type": "integer", "default": "0"}},
    # NOT NULL without a default, no fill: refused as input today, but a stored one keeps its meaning
    {"type": "column_added", "table": "users", "column": {"name": "nick", "type": "text", "nullable": False}},
    {"type": "column_altered", "table": "users", "column": "age", "new_type": "bigint", "default": None},
    {"type": "index_created", "table": "users", "index": {"name": "users_age", "columns": ["age"]}},
    {
        "type": "table_created",
        "table": "orders",
        "columns": [{"name": "id", "type": "integer", "nullable": False}, {"name": "user_id", "type": "bigint"}],
        "primary_key": ["id"],
    },
    {
        "type": "constraint_added",
        "table": "orders",
        "constraint": {
            "name": "orders_user_fk",
            "kind": "foreign_key",
            "columns": ["user_id"],
            "references": {"table": "users", "columns": ["id"]},
            "on_delete": "cascade",
        },
    },
    {"type": "primary_key_set", "table": "orders"},
    {"type": "table_renamed", "table": "orders", "new_name": "purchases"},
    {"type": "tag_created", "tag": "release-1", "version": 3},
]


@pytest.mark.parametrize("data", OLD_EVENTS, ids=[f"{i}-{d['type']}" for i, d in enumerate(OLD_EVENTS)])
def test_an_old_stored_event_reads_back_as_it_was(data: dict[str, Any]) -> None:
    for event in (parse_event(data, stored=True), decode.event_from_dict(json.loads(json.dumps(data)))):
        assert to_dict(event) == data  # no new key in its public form
        link = {"stream": "s", "version": 1, "changeset_id": "c", "actor": "a", "message": "m"}
        assert chain_hash(**link, recorded_at="t", event=to_dict(event), prev_hash="0") == chain_hash(
            **link, recorded_at="t", event=data, prev_hash="0"
        )
        assert canonical_json(to_dict(event)) == canonical_json(data)


def test_old_stored_events_fold_as_before() -> None:
    events = [decode.event_from_dict(json.loads(json.dumps(d))) for d in OLD_EVENTS]
    schema = fold(events)
    assert schema.enums == {}
    users_table = schema.tables["users"]
    assert users_table.primary_key_name is None and all(c.collation is None for c in users_table.columns)
    assert all(c.on_update is None for c in users_table.columns)
    assert all(not i.elements and i.where is None and i.method is None for i in users_table.indexes)
    replay = Replay()
    for d in OLD_EVENTS:
        replay.apply(json.loads(json.dumps(d)))
    assert replay.to_state().to_schema() == schema
    body = json.loads(replay.body())
    assert set(body) == {"tables", "tags"}  # a body without enum types is the body it was before them
    assert all("primary_key_name" not in t for t in body["tables"].values())


# --------------------------------------------------------------------------- schema_diff


def test_schema_diff_says_the_new_fields() -> None:
    old = fold([MOOD, *CASES["indexes with elements, where, include, method"][:3], CASES["deferrable foreign keys"][1]])
    new_events: list[Event] = [
        EnumCreated(name="mood", values=("ok", "great", "sad")),
        EnumCreated(name="size", values=("s", "m")),
        users(primary_key_name="users_key"),
        IndexCreated(
            table="users",
            index=Index(name="users_mail_lower", elements=(IndexElement(expression="lower(mail)"),), where="age > 1"),
        ),
        IndexCreated(
            table="users",
            index=Index(name="users_mail_ops", elements=(IndexElement(column="mail", opclass="text_pattern_ops"),)),
        ),
        ColumnAltered.of("users", "mail", collation="C"),
        ColumnAltered.of("users", "age", on_update="current_timestamp"),
        ColumnAdded(table="users", column=Column(name="shirt", type="enum:size")),
        ColumnAdded(table="users", column=Column(name="g", type="integer", generated=Generated(expression="age * 2"))),
        TableCreated(
            table="posts",
            columns=(Column(name="id", type="bigint", nullable=False), Column(name="author", type="bigint")),
        ),
        ConstraintAdded(
            table="posts",
            constraint=Constraint(
                name="posts_author_fk",
                kind="foreign_key",
                columns=("author",),
                references=Reference(table="users", columns=("id",)),
                deferrable=True,
            ),
        ),
    ]
    new = fold(new_events)
    events = schema_diff(old, new)
    state = State.from_schema(old)
    for event in events:
        apply_event(event, state)
    assert same_schema(state.to_schema(), new)
    assert state.to_schema().enums == new.enums
    types = [e.type for e in events]
    assert types.index("enum_created") < types.index("column_added")  # a type before its columns
    assert any(isinstance(e, PrimaryKeySet) and e.name == "users_key" for e in events)
    assert any(isinstance(e, ColumnAltered) and e.changes() == {"collation": "C"} for e in events)
    assert any(isinstance(e, ColumnAltered) and e.changes() == {"on_update": "current_timestamp"} for e in events)
    # and back: the enum type that goes is dropped after the column that used it
    back = schema_diff(new, old)
    kinds = [e.type for e in back]
    assert kinds.index("column_dropped") < kinds.index("enum_dropped")
    state = State.from_schema(new)
    for event in back:
        apply_event(event, state)
    assert same_schema(state.to_schema(), old) and state.to_schema().enums == old.enums


def test_schema_diff_regenerates_a_changed_generated_column() -> None:
    base = [
        users(),
        ColumnAdded(table="users", column=Column(name="g", type="integer", generated=Generated(expression="age + 1"))),
    ]
    old = fold([*base, IndexCreated(table="users", index=Index(name="users_g", columns=("g",)))])
    changed = ColumnAdded(
        table="users", column=Column(name="g", type="integer", generated=Generated(expression="age + 2"))
    )
    new = fold([users(), changed, IndexCreated(table="users", index=Index(name="users_g", columns=("g",)))])
    events = schema_diff(old, new)
    assert [e.type for e in events] == ["index_dropped", "column_dropped", "column_added", "index_created"]
    state = State.from_schema(old)
    for event in events:
        apply_event(event, state)
    assert same_schema(state.to_schema(), new)


def test_history_of_an_enum_follows_its_events() -> None:
    from datetime import UTC, datetime

    from events.envelope import RecordedEvent

    events = CASES["enum types"]
    recorded = [
        RecordedEvent(
            stream="s",
            version=k,
            position=k,
            changeset_id=f"c{k}",
            actor="a",
            message="m",
            recorded_at=datetime(2026, 1, 1, tzinfo=UTC),
            event=e,
            hash="0" * 64,
            prev_hash="0" * 64,
        )
        for k, e in enumerate(events, start=1)
    ]
    found = [r.event.type for r in filter_history(recorded, HistoryFilter(table="mood"))]
    assert found == [
        "enum_created",
        "enum_value_added",
        "enum_value_added",
        "enum_value_dropped",
        "column_added",
        "column_altered",
        "enum_dropped",
    ]
    assert "enum_created" not in [r.event.type for r in filter_history(recorded, HistoryFilter(table="users"))]


# --------------------------------------------------------------------------- the catalogue, layer by layer


def _readme_catalogue() -> str:
    """The README's section listing the event types (a heading naming the event catalogue)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    lines = text.splitlines()
    for at, line in enumerate(lines):
        heading = re.match(r"^(#+)\s+(.*)$", line)
        if heading and "catalogue" in heading.group(2).lower() and "not" not in heading.group(2).lower():
            level = len(heading.group(1))
            end = next(
                (k for k in range(at + 1, len(lines)) if re.match(rf"^#{{1,{level}}}\s", lines[k])),
                len(lines),
            )
            return "\n".join(lines[at:end])
    return ""


def _layers() -> dict[str, set[str]]:
    """For each layer, the event types it knows."""
    from events.aggregate import apply_event as rule
    from projections.diff import inverse as inverse_rule
    from service.reconciler.ddl import emit
    from service.reconciler.statements import EVENT_KINDS

    by_class = {cls: name for name, cls in EVENT_TYPES.items()}
    catalogue = _readme_catalogue()
    return {
        "aggregate rule (events.aggregate.apply_event)": {by_class[c] for c in rule.registry if c in by_class},
        "replay change (projections.replay._CHANGES)": set(replay_module._CHANGES),
        "decode builder (events.decode._BUILDERS)": set(decode._BUILDERS),
        "inverse (projections.diff.inverse)": {by_class[c] for c in inverse_rule.registry if c in by_class},
        "DDL emission (service.reconciler.ddl.emit)": {by_class[c] for c in emit.registry if c in by_class}
        | (set(EVENT_TYPES) - SCHEMA_EVENT_TYPES),
        "statement kinds (service.reconciler.statements.EVENT_KINDS)": set(EVENT_KINDS)
        | (set(EVENT_TYPES) - SCHEMA_EVENT_TYPES),
        "README event catalogue section": {name for name in EVENT_TYPES if re.search(rf"`{name}\b", catalogue)},
    }


@pytest.mark.parametrize("layer", sorted(_layers()))
def test_every_event_type_is_known_to_every_layer(layer: str) -> None:
    known = _layers()[layer]
    missing = sorted(set(EVENT_TYPES) - known)
    assert not missing, f"{layer} lacks: {', '.join(missing)}"
