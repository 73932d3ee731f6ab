"""Random valid histories migrated into real databases, forward, back and forward again.

On PostgreSQL, MariaDB and SQLite: after every step introspection equals the
projection at the marker, and a row inserted at the start (in an ``anchor``
table the history renames and alters but never drops) survives every step.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events.aggregate import InvalidChange, State, apply_event
from events.catalog import (
    ColumnAdded,
    ColumnAltered,
    ColumnDropped,
    ColumnRenamed,
    ConstraintAdded,
    ConstraintDropped,
    Event,
    IndexCreated,
    IndexDropped,
    PrimaryKeySet,
    TableCreated,
    TableDropped,
    TableRenamed,
)
from events.envelope import Changeset
from events.log import EventLog
from events.model import Column, Constraint, Index, Reference
from events.store import open_store
from projections.audit import Lineage
from projections.schema import Point, Projector, normalized
from service.reconciler.apply import MigrateRequest, migrate
from service.reconciler.targets import open_target
from tests.servers import mariadb_database_url, postgres_database_url
from tests.sqlexec import run_sql

KEYABLE = ["integer", "bigint", "smallint", "varchar(40)", "varchar(120)", "numeric(10,2)", "date", "boolean"]
OTHER = ["text", "double", "timestamp"]
NAMES = [
    "alpha",
    "beta",
    "gamma",
    "delta",
    "eps",
    "zeta",
    "eta",
    "theta",
    "iota",
    "kappa",
    "with space",
    'q"uote',
    "semi;colon",
]
WIDER = {"smallint": "integer", "integer": "bigint", "varchar(40)": "varchar(120)", "varchar(120)": "text"}


def _fresh(state: State, prefix: str, taken: set[str], draw: Any) -> str:
    base = draw(st.sampled_from(NAMES))
    name = f"{prefix}_{base}"
    n = 2
    while name in taken:
        name = f"{prefix}_{base}{n}"
        n += 1
    return name


def _objects(state: State) -> set[str]:
    return {name for (_, name) in state.owners}


@st.composite
def histories(draw: Any, max_changesets: int = 6) -> list[list[Event]]:
    state = State()
    anchor = TableCreated(
        table="anchor",
        columns=(Column(name="id", type="integer", nullable=False), Column(name="label", type="varchar(50)")),
        primary_key=("id",),
    )
    apply_event(anchor, state)
    changesets: list[list[Event]] = [[anchor]]
    for _ in range(draw(st.integers(1, max_changesets))):
        batch: list[Event] = []
        for _ in range(draw(st.integers(1, 4))):
            event = _one(draw, state)
            if event is None:
                continue
            try:
                trial = state.copy()
                apply_event(event, trial)
            except InvalidChange:
                continue
            state = trial
            batch.append(event)
        if batch:
            changesets.append(batch)
    return changesets


def _one(draw: Any, state: State) -> Event | None:
    tables = sorted(state.tables)
    kind = draw(
        st.sampled_from(
            [
                "create",
                "create",
                "drop_table",
                "rename_table",
                "add",
                "add",
                "drop_col",
                "rename_col",
                "alter",
                "index",
                "drop_index",
                "unique",
                "check",
                "fk",
                "drop_constraint",
                "pk",
            ]
        )
    )
    table = draw(st.sampled_from(tables))
    t = state.tables[table]
    columns = list(t.columns)
    keyable = [c for c in columns if str(c.type) in KEYABLE]
    if kind == "create":
        name = _fresh(state, "t", set(tables), draw)
        count = draw(st.integers(1, 4))
        cols = []
        for i in range(count):
            ctype = draw(st.sampled_from(KEYABLE + OTHER))
            cols.append(
                Column(
                    name=f"c{i}_{draw(st.sampled_from(NAMES))}",
                    type=ctype,
                    nullable=i != 0,
                    default="0" if ctype in ("integer", "bigint") and i else None,
                )
            )
        with_pk = str(cols[0].type) in ("integer", "bigint") and draw(st.booleans())
        return TableCreated(
            table=name,
            columns=tuple(cols),
            primary_key=(cols[0].name,) if with_pk else (),
            comment=draw(st.sampled_from([None, "a table"])),
        )
    if kind == "drop_table" and not table.startswith("anchor") and not state.referrers.get(table):
        return TableDropped(table=table)
    if kind == "rename_table":
        prefix = "anchor" if table.startswith("anchor") else "r"  # the anchor keeps its prefix: never dropped
        return TableRenamed(table=table, new_name=_fresh(state, prefix, set(tables), draw))
    if kind == "add":
        ctype = draw(st.sampled_from(KEYABLE + OTHER))
        default = draw(st.sampled_from([None, "'x'"])) if ctype.startswith("varchar") else None
        return ColumnAdded(
            table=table,
            column=Column(
                name=_fresh(state, "n", {c.name for c in columns}, draw),
                type=ctype,
                default=default,
                comment=draw(st.sampled_from([None, "added"])),
            ),
        )
    if kind == "drop_col" and len(columns) > 1:
        col = draw(st.sampled_from(columns))
        if table.startswith("anchor") and col.name.startswith(("id", "label")):
            return None
        return ColumnDropped(table=table, column=col.name)
    if kind == "rename_col":
        col = draw(st.sampled_from(columns))
        prefix = col.name.split("_")[0] if col.name.startswith(("id", "label")) else "m"
        return ColumnRenamed(
            table=table, column=col.name, new_name=_fresh(state, prefix, {c.name for c in columns}, draw)
        )
    if kind == "alter":
        col = draw(st.sampled_from(columns))
        wider = WIDER.get(str(col.type))
        uses = any(col.name in i.columns for i in t.indexes) or any(col.name in c.columns for c in t.constraints)
        options: list[dict[str, Any]] = [{"comment": "changed"}]
        if wider and not uses and not col.identity and col.name not in t.primary_key:
            options.append({"type": wider})
        if table.startswith("anchor") and col.name.startswith("label") and wider == "varchar(120)":
            options = [{"type": wider}]  # widening keeps the anchored row
        if col.nullable is False and col.name not in t.primary_key:
            options.append({"nullable": True})
        if str(col.type) in ("integer", "bigint", "smallint") and not col.identity:
            options.append({"default": None if col.default else "7"})
        return ColumnAltered.of(table, col.name, **draw(st.sampled_from(options)))
    if kind == "index" and keyable:
        cols = draw(st.lists(st.sampled_from([c.name for c in keyable]), min_size=1, max_size=2, unique=True))
        return IndexCreated(
            table=table,
            index=Index(
                name=_fresh(state, "ix", _objects(state), draw), columns=tuple(cols), unique=draw(st.booleans())
            ),
        )
    if kind == "drop_index" and t.indexes:
        return IndexDropped(table=table, name=draw(st.sampled_from([i.name for i in t.indexes])))
    if kind == "unique" and keyable:
        col = draw(st.sampled_from(keyable))
        return ConstraintAdded(
            table=table,
            constraint=Constraint(name=_fresh(state, "uq", _objects(state), draw), kind="unique", columns=(col.name,)),
        )
    if kind == "check":
        simple = [c for c in columns if str(c.type) in ("integer", "bigint", "smallint") and c.name.isidentifier()]
        if simple:
            col = draw(st.sampled_from(simple))
            return ConstraintAdded(
                table=table,
                constraint=Constraint(
                    name=_fresh(state, "ck", _objects(state), draw), kind="check", expression=f"{col.name} > -1000"
                ),
            )
    if kind == "fk":
        targets = [(n, x) for n, x in state.tables.items() if len(x.primary_key) == 1]
        if targets:
            ref_name, ref = draw(st.sampled_from(targets))
            pk_col = ref.column(ref.primary_key[0])
            assert pk_col is not None
            mine = [c for c in columns if c.type == pk_col.type and c.nullable]
            if mine:
                col = draw(st.sampled_from(mine))
                return ConstraintAdded(
                    table=table,
                    constraint=Constraint(
                        name=_fresh(state, "fk", _objects(state), draw),
                        kind="foreign_key",
                        columns=(col.name,),
                        references=Reference(table=ref_name, columns=(pk_col.name,)),
                        on_delete=draw(st.sampled_from([None, "cascade", "set null"])),
                    ),
                )
    if kind == "drop_constraint" and t.constraints:
        return ConstraintDropped(table=table, name=draw(st.sampled_from([c.name for c in t.constraints])))
    if kind == "pk" and not t.primary_key:
        candidates = [c for c in keyable if not c.nullable]
        if candidates:
            return PrimaryKeySet(table=table, columns=(draw(st.sampled_from(candidates)).name,))
    return None


def anchor_names(recorded: list[Any], version: int) -> tuple[str, str]:
    """The anchor table's and its label column's names at ``version``."""
    lineage = Lineage()
    for r in recorded:
        if r.version > version:
            break
        lineage.step(r.event)
    tid = lineage.tables_named("anchor").pop()
    table = next(n for n, i in lineage.table_ids.items() if i == tid)
    label = next(c for (t, c), cid in lineage.column_ids.items() if t == tid and "label" in lineage.column_names[cid])
    return table, label


def quote(url: str, name: str) -> str:
    return f"`{name}`" if url.startswith("mysql") else '"' + name.replace('"', '""') + '"'


async def check_round(history: list[list[Event]], url: str, log_path: Path, moves: list[int]) -> None:
    store = await open_store(f"sqlite:///{log_path}")
    await store.init()
    try:
        ends = []
        for batch in history:
            ends.append(
                (await EventLog(store).append(Changeset(stream="app", actor="h", events=tuple(batch)))).last_version
            )
        recorded = await store.read("app")
        first = await migrate(store, MigrateRequest(url=url, stream="app", actor="h", to=Point(version=ends[0])))
        assert first.status == "applied", first.detail
        run_sql(url, "INSERT INTO anchor (id, label) VALUES (1, 'kept')")
        for pick in [len(ends) - 1, *moves, len(ends) - 1]:
            to = ends[pick % len(ends)]
            outcome = await migrate(
                store, MigrateRequest(url=url, stream="app", actor="h", to=Point(version=to), allow_destructive=True)
            )
            assert outcome.status in ("applied", "up_to_date"), (to, outcome.detail, outcome.drift, outcome.statements)
            target = await open_target(url)
            try:
                live = await target.introspect()
                marker = await target.read_marker("app")
                _, schema = await Projector(store).schema("app", Point(version=to))
                assert marker is not None and marker.version == to
                assert normalized(live) == normalized(target.expected(schema))
            finally:
                await target.close()
            table, label = anchor_names(recorded, to)
            rows = run_sql(url, f"SELECT {quote(url, label)} FROM {quote(url, table)}")
            assert [tuple(r) for r in rows] == [("kept",)]
    finally:
        await store.close()


SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql", "mysql"])
def test_random_histories_migrate_forward_back_and_forward(dialect: str, tmp_path: Path) -> None:
    counter = iter(range(10**6))

    @SETTINGS
    @given(history=histories(), moves=st.lists(st.integers(0, 50), min_size=1, max_size=4))
    def run(history: list[list[Event]], moves: list[int]) -> None:
        n = next(counter)
        log_path = tmp_path / f"log{n}.db"
        if dialect == "sqlite":
            asyncio.run(check_round(history, f"sqlite:///{tmp_path / f'target{n}.db'}", log_path, moves))
            return
        make = postgres_database_url if dialect == "postgresql" else mariadb_database_url
        with make() as url:
            asyncio.run(check_round(history, url, log_path, moves))

    run()
