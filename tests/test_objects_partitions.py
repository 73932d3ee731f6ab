"""Issue 19, slice 4: PostgreSQL's declarative partitioning (a table's ``partition_by``, a partition's
``partition_of``), through every layer.

Pure, no database: the checked fold, the replay of the stored form and the fast decoding agree, and each
event's inverse gives the state before back; a key over anything but column names, or a bound that is not
constants (a function call, a subquery, a second statement, a storage option after it) never gets in, nor
out to a database when it was stored behind append's back; a partition needs a partitioned parent of the
log with the same columns, and a parent keeps its partitions; a diff makes parents before partitions and
drops partitions first; PostgreSQL makes a partition as a table then attaches it; MariaDB and SQLite refuse.

PostgreSQL: a partitioned table and a partition migrate, a second partition comes through the log and goes
back (the rows of the first kept), the database introspecting back to the state each time; a partition
detached by hand is drift. Pagila's payment and its 7 partitions: tests/test_objects_domains.py.
"""

from __future__ import annotations

import json

import pytest

from events import decode
from events.aggregate import InvalidChange, State, apply_event, fold
from events.catalog import (
    ColumnAdded,
    ColumnAltered,
    ColumnDropped,
    TableCreated,
    TableDropped,
    TableRenamed,
    parse_event,
    to_dict,
)
from events.model import Column, PartitionOf, Schema, Table
from events.partitions import check_partition_bound, check_partition_key
from events.store import EventStore
from projections.diff import inverse, schema_diff
from projections.replay import Replay
from projections.schema import same_schema
from service.reconciler.apply import migrate
from service.reconciler.capacity import plan_problems
from service.reconciler.ddl import emit
from service.reconciler.dialects import get_dialect
from service.reconciler.statements import check_planned
from tests.sqlexec import run_sql
from tests.test_objects_domains import _state_is_live
from tests.test_reconciler import append, req

COLUMNS = (
    Column(name="id", type="integer", nullable=False),
    Column(name="at", type="date", nullable=False),
    Column(name="amount", type="integer"),
)
PARENT = TableCreated(table="sales", columns=COLUMNS, primary_key=("id", "at"), partition_by="RANGE (at)")
JAN = TableCreated(
    table="sales_2024_01",
    columns=COLUMNS,
    partition_of=PartitionOf(parent="sales", bound="FOR VALUES FROM ('2024-01-01') TO ('2024-02-01')"),
)
REST = TableCreated(table="sales_rest", columns=COLUMNS, partition_of=PartitionOf(parent="sales", bound="DEFAULT"))
HISTORY = [PARENT, JAN, REST, TableDropped(table="sales_rest")]


def test_the_fold_the_replay_the_decoding_and_the_inverses_agree() -> None:
    checked, replay = State(), Replay()
    for k, event in enumerate(HISTORY, start=1):
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
    schema = fold(HISTORY)
    assert schema.tables["sales"].partition_by == "RANGE (at)"
    assert schema.tables["sales_2024_01"].partition_of == JAN.partition_of
    assert schema.tables["sales"].partition_of is None and schema.tables["sales_2024_01"].partition_by is None


@pytest.mark.parametrize(
    "bound",
    [
        "FOR VALUES IN (now())",
        "FOR VALUES IN ((SELECT 1))",
        "DEFAULT; DROP TABLE sales",
        "DEFAULT WITH (fillfactor=10)",
        "DEFAULT TABLESPACE pg_default",
        "DEFAULT PARTITION BY RANGE (at)",
        "FOR VALUES IN (amount)",
        "",
    ],
)
def test_a_bound_that_is_not_constants_never_gets_in_nor_out(bound: str) -> None:
    with pytest.raises(ValueError, match="partition bound"):
        check_partition_bound(bound)
    with pytest.raises(ValueError, match="partition bound"):
        parse_event({**to_dict(JAN), "partition_of": {"parent": "sales", "bound": bound}})
    stored = parse_event({**to_dict(JAN), "partition_of": {"parent": "sales", "bound": bound}}, stored=True)
    state = State()
    apply_event(PARENT, state)
    apply_event(stored, state)  # behind append's back ...
    with pytest.raises(ValueError, match="partition bound"):  # ... it does not go out
        emit(stored, get_dialect("postgresql"), fold([PARENT]), state.to_schema())


@pytest.mark.parametrize(
    "key", ["RANGE (lower(at))", "RANGE (at) WITH (fillfactor=1)", "RANGE (at); DROP TABLE x", "at"]
)
def test_a_key_that_is_not_column_names_never_gets_in(key: str) -> None:
    with pytest.raises(ValueError, match="partition key"):
        check_partition_key(key)
    with pytest.raises(ValueError, match="partition key"):
        parse_event({**to_dict(PARENT), "partition_by": key})
    with pytest.raises(ValueError, match="partition key"):
        Table(name="t", columns=COLUMNS, partition_by=key)


def test_what_does_not_fit_is_refused() -> None:
    with pytest.raises(InvalidChange, match="table 'sales' does not exist"):
        fold([JAN])
    plain = PARENT.model_copy(update={"partition_by": None})
    with pytest.raises(InvalidChange, match="'sales' is not partitioned"):
        fold([plain, JAN])
    other = JAN.model_copy(update={"columns": COLUMNS[:2]})
    with pytest.raises(InvalidChange, match="has not the columns of 'sales'"):
        fold([PARENT, other])
    with pytest.raises(InvalidChange, match="uses column 'day'"):
        fold([PARENT.model_copy(update={"partition_by": "LIST (day)"})])
    with pytest.raises(InvalidChange, match="table 'sales' has partition 'sales_2024_01'; drop it first"):
        fold([PARENT, JAN, TableDropped(table="sales")])
    with pytest.raises(InvalidChange, match="cannot rename 'sales': it has partitions"):
        fold([PARENT, JAN, TableRenamed(table="sales", new_name="sold")])
    extra = Column(name="note", type="text")
    with pytest.raises(InvalidChange, match=r"cannot add a column to 'sales': it has partitions \(sales_2024_01\)"):
        fold([PARENT, JAN, ColumnAdded(table="sales", column=extra)])
    with pytest.raises(InvalidChange, match="cannot drop a column of 'sales_2024_01': it is a partition of 'sales'"):
        fold([PARENT, JAN, ColumnDropped(table="sales_2024_01", column="amount")])
    with pytest.raises(InvalidChange, match="cannot change a column's type in 'sales'"):
        fold([PARENT, JAN, ColumnAltered.of("sales", "amount", type="bigint")])
    assert "note" in fold([PARENT, ColumnAdded(table="sales", column=extra)]).tables["sales"].column_names()


def test_a_diff_makes_parents_first_and_drops_partitions_first() -> None:
    schema = fold(HISTORY[:3])
    made = schema_diff(Schema(), schema)
    assert [e.table for e in made if isinstance(e, TableCreated)] == ["sales", "sales_2024_01", "sales_rest"]
    assert fold(made).tables == schema.tables
    gone = schema_diff(schema, Schema())
    assert [e.table for e in gone if isinstance(e, TableDropped)] == ["sales_2024_01", "sales_rest", "sales"]


def test_each_dialect_makes_it_or_refuses_it() -> None:
    pg = get_dialect("postgresql")
    after = fold(HISTORY[:2])
    statements = emit(JAN, pg, fold(HISTORY[:1]), after)
    assert statements[-1] == (
        "ALTER TABLE sales ATTACH PARTITION sales_2024_01 FOR VALUES FROM ('2024-01-01') TO ('2024-02-01')"
    )
    parent = emit(PARENT, pg, Schema(), fold(HISTORY[:1]))
    assert parent[0].rstrip().endswith("PARTITION BY RANGE (at)"), parent
    for statement in [*parent, *statements]:
        check_planned("postgresql", statement, "table_created")
    script = "\n".join(pg.create_script(after))
    assert script.index("CREATE TABLE sales ") < script.index("ATTACH PARTITION")
    events = list(enumerate(HISTORY[:2], start=1))
    assert plan_problems(pg, State(), events) == []
    for name, word in (("mysql", "MariaDB"), ("sqlite", "SQLite")):
        problems = plan_problems(get_dialect(name), State(), events)
        assert f"v1 (table_created): table 'sales' is partitioned (RANGE (at)): {word} holds no partitioned tables" in (
            problems
        )
        assert f"v2 (table_created): table 'sales_2024_01' is a partition of 'sales': {word} holds no partitions" in (
            problems
        )


@pytest.mark.postgres
async def test_a_partition_migrates_forward_and_back_with_its_rows(log_store: EventStore, pg_url: str) -> None:
    first = await append(log_store, PARENT, JAN)
    outcome = await migrate(log_store, req(pg_url, first))
    assert outcome.status == "applied", (outcome.detail, outcome.drift)
    await _state_is_live(log_store, pg_url, first)
    run_sql(pg_url, "INSERT INTO sales VALUES (1, '2024-01-05', 10), (2, '2024-01-20', 20)")
    second = await append(log_store, REST)
    outcome = await migrate(log_store, req(pg_url, second))
    assert outcome.status == "applied", (outcome.detail, outcome.drift)
    await _state_is_live(log_store, pg_url, second)
    run_sql(pg_url, "INSERT INTO sales VALUES (3, '2024-03-01', 30)")
    where = "SELECT tableoid::regclass::text, count(*) FROM sales GROUP BY 1 ORDER BY 1"
    assert [tuple(r) for r in run_sql(pg_url, where)] == [("sales_2024_01", 2), ("sales_rest", 1)]
    bound = "SELECT pg_get_expr(relpartbound, oid) FROM pg_class WHERE relname = 'sales_rest'"
    assert [tuple(r) for r in run_sql(pg_url, bound)] == [("DEFAULT",)]
    outcome = await migrate(log_store, req(pg_url, first, allow_destructive=True))
    assert outcome.status == "applied", (outcome.detail, outcome.drift)
    await _state_is_live(log_store, pg_url, first)
    assert [tuple(r) for r in run_sql(pg_url, where)] == [("sales_2024_01", 2)]  # the first one's rows kept
    run_sql(pg_url, "ALTER TABLE sales DETACH PARTITION sales_2024_01")
    outcome = await migrate(log_store, req(pg_url, first))
    assert outcome.status == "drift"
    assert any(
        "partition of sales_2024_01: sales FOR VALUES" in d and "none in the database" in d for d in outcome.drift
    )
