"""Random valid histories for the reconciler and projection property tests.

Every history starts with an ``anchor`` table that later events may rename and
alter but never drop (so a row put in it must survive every migration). Types,
indexes and keys stay within what all three dialects can hold.
"""

from __future__ import annotations

from typing import Any

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
    TableAltered,
    TableCreated,
    TableDropped,
    TableRenamed,
)
from events.model import Column, Constraint, Index, Reference

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
                "comment",
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
    if kind == "comment":
        return TableAltered(table=table, comment=draw(st.sampled_from([None, "it's a table", "renamed?"])))
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
