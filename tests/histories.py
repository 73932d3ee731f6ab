"""Random valid histories for the reconciler and projection property tests.

Every history starts with an ``anchor`` table that later events may rename and
alter but never drop (so a row put in it must survive every migration).

``dialect`` says where the history is migrated, and so what it may draw
(:data:`FEATURES`): None (the default) is every one of PostgreSQL, MariaDB and
SQLite, so only what all three hold; a dialect's name adds what that dialect
holds (index methods, elements, partial indexes, deferrable keys, ...); "any" is
for histories that never reach a database (folds, replays, inverses, diffs) and
draws everything the catalogue can say.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from events.aggregate import InvalidChange, State, apply_event, expression_columns, index_columns
from events.catalog import (
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
    IndexDropped,
    PrimaryKeySet,
    SqlRun,
    TableAltered,
    TableCreated,
    TableDropped,
    TableRenamed,
)
from events.model import Column, Constraint, Generated, IdentityOptions, Index, IndexElement, Reference, Table
from projections.diff import effective_fill

COMMON = frozenset({"enum", "sql_run", "generated", "fill"})
"""What every dialect holds: enum types (a PostgreSQL type, MariaDB's inline ENUM, SQLite's text), data
steps, generated columns (over plain columns, which are then not renamed nor retyped: MariaDB), NOT NULL
columns added or made so with a fill."""
FEATURES: dict[str | None, frozenset[str]] = {
    None: COMMON,
    "mysql": COMMON,
    "sqlite": COMMON | {"deferrable", "index_elements", "index_where", "generated_renames", "virtual"},
    "postgresql": COMMON
    | {
        "deferrable",
        "index_elements",
        "index_where",
        "index_include",
        "index_method",
        "opclass",
        "pk_name",
        "identity_options",
        "generated_renames",
        "collation",
    },
}
FEATURES["any"] = frozenset().union(*FEATURES.values())
COLLATIONS = {"postgresql": ["C", "POSIX"], "sqlite": ["NOCASE", "RTRIM"], "mysql": ["utf8mb4_bin"]}
ENUM_VALUES = ["a", "b", "it's", "c d", "E", "zz"]

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
    return {name for (_, name) in state.owners} | {name for (_, name) in state.indexed}


@st.composite
def histories(draw: Any, max_changesets: int = 6, dialect: str | None = None) -> list[list[Event]]:
    features = FEATURES[dialect]
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
            event = _one(draw, state, features, dialect)
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


def _sources(t: Table) -> set[str]:
    """The columns the table's generated columns are computed from."""
    out: set[str] = set()
    for column in t.columns:
        if column.generated is not None:
            out |= expression_columns(column.generated.expression, t)
    return out


def _quote(dialect: str, name: str) -> str:
    return "`" + name.replace("`", "``") + "`" if dialect == "mysql" else '"' + name.replace('"', '""') + '"'


def _data_step(state: State) -> SqlRun:
    """A data step that runs everywhere and changes nothing: the anchor's label set to itself, for no row."""
    table = next(t for t in state.tables.values() if t.name.startswith("anchor"))
    label = next(c.name for c in table.columns if c.name.startswith("label"))
    statements = {
        d: (f"UPDATE {_quote(d, table.name)} SET {_quote(d, label)} = {_quote(d, label)} WHERE 1 = 0",)
        for d in ("postgresql", "mysql", "sqlite")
    }
    return SqlRun(forward=statements, backward={d: () for d in statements}, description="touch the anchor")


def _enum_event(draw: Any, state: State, kind: str) -> Event | None:
    names = sorted(state.enums)
    if kind == "enum_change":
        if not names:
            return None
        kind = draw(st.sampled_from(["enum_add", "enum_drop_value", "enum_drop"]))
    if kind == "enum_create":
        name = _fresh(state, "e", set(names) | set(state.tables), draw)
        values = draw(st.lists(st.sampled_from(ENUM_VALUES), min_size=1, max_size=3, unique=True))
        return EnumCreated(name=name, values=tuple(values))
    name = draw(st.sampled_from(names))
    values = state.enums[name].values
    if kind == "enum_add":
        free = [v for v in ENUM_VALUES if v not in values]
        if free:
            before = draw(st.sampled_from([None, *values]))
            return EnumValueAdded(name=name, value=draw(st.sampled_from(free)), before=before)
    if kind == "enum_drop_value" and len(values) > 1:
        return EnumValueDropped(name=name, value=draw(st.sampled_from(values)))
    if kind == "enum_drop":
        return EnumDropped(name=name)  # refused (and skipped) while a column uses it
    return None


def _one(draw: Any, state: State, features: frozenset[str], dialect: str | None) -> Event | None:
    tables = sorted(state.tables)
    enum_kinds = ["enum_create", "enum_change"] if "enum" in features else []
    kind = draw(
        st.sampled_from(
            enum_kinds
            + (["sql_run"] if "sql_run" in features else [])
            + [
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
    if kind.startswith("enum_"):
        return _enum_event(draw, state, kind)
    if kind == "sql_run":
        return _data_step(state)
    table = draw(st.sampled_from(tables))
    t = state.tables[table]
    columns = list(t.columns)
    keyable = [c for c in columns if str(c.type) in KEYABLE and c.generated is None]
    sources = _sources(t) if "generated_renames" not in features else set()
    enum_types = [f"enum:{name}" for name in sorted(state.enums)]
    collations = COLLATIONS.get(dialect or "", []) if "collation" in features else []
    if dialect == "any" and "collation" in features:
        collations = COLLATIONS["postgresql"]
    if kind == "create":
        name = _fresh(state, "t", set(tables), draw)
        count = draw(st.integers(1, 4))
        cols = []
        for i in range(count):
            ctype = draw(st.sampled_from(KEYABLE + OTHER + (enum_types if i else [])))
            cols.append(
                Column(
                    name=f"c{i}_{draw(st.sampled_from(NAMES))}",
                    type=ctype,
                    nullable=i != 0,
                    default="0" if ctype in ("integer", "bigint") and i else None,
                )
            )
        if "identity_options" in features and draw(st.booleans()):
            options = IdentityOptions(
                always=draw(st.booleans()), start=draw(st.integers(1, 100)), increment=draw(st.integers(1, 3))
            )
            cols[0] = Column(name=cols[0].name, type="bigint", nullable=False, identity=True, identity_options=options)
        with_pk = str(cols[0].type) in ("integer", "bigint") and draw(st.booleans())
        pk_name = None
        if with_pk and "pk_name" in features and draw(st.booleans()):
            pk_name = _fresh(state, "pk", _objects(state), draw)
        return TableCreated(
            table=name,
            columns=tuple(cols),
            primary_key=(cols[0].name,) if with_pk else (),
            comment=draw(st.sampled_from([None, "a table"])),
            primary_key_name=pk_name,
        )
    if kind == "comment":
        return TableAltered(table=table, comment=draw(st.sampled_from([None, "it's a table", "renamed?"])))
    if kind == "drop_table" and not table.startswith("anchor") and not state.referrers.get(table):
        return TableDropped(table=table)
    if kind == "rename_table":
        prefix = "anchor" if table.startswith("anchor") else "r"  # the anchor keeps its prefix: never dropped
        return TableRenamed(table=table, new_name=_fresh(state, prefix, set(tables), draw))
    if kind == "add":
        name = _fresh(state, "n", {c.name for c in columns}, draw)
        plain = [c.name for c in columns if c.generated is None and c.name.isidentifier() and c.type.is_integer]
        if "generated" in features and plain and draw(st.integers(0, 4)) == 0:
            stored = draw(st.booleans()) if "virtual" in features else True
            expression = f"{draw(st.sampled_from(plain))} + 1"
            column = Column(name=name, type="bigint", generated=Generated(expression=expression, stored=stored))
            return ColumnAdded(table=table, column=column)
        ctype = draw(st.sampled_from(KEYABLE + OTHER + enum_types))
        default = draw(st.sampled_from([None, "'x'"])) if ctype.startswith("varchar") else None
        collation = draw(st.sampled_from([None, *collations])) if ctype.startswith(("varchar", "text")) else None
        column = Column(
            name=name,
            type=ctype,
            default=default,
            comment=draw(st.sampled_from([None, "added"])),
            collation=collation,
        )
        if "fill" in features and default is None and draw(st.integers(0, 3)) == 0:
            fill = effective_fill(column, state.enums)
            if fill is not None:
                not_null = column.model_copy(update={"nullable": False})
                return ColumnAdded(table=table, column=not_null, fill=fill)
        return ColumnAdded(table=table, column=column)
    if kind == "drop_col" and len(columns) > 1:
        col = draw(st.sampled_from(columns))
        if table.startswith("anchor") and col.name.startswith(("id", "label")):
            return None
        return ColumnDropped(table=table, column=col.name)
    if kind == "rename_col":
        col = draw(st.sampled_from(columns))
        if col.name in sources:
            return None
        prefix = col.name.split("_")[0] if col.name.startswith(("id", "label")) else "m"
        return ColumnRenamed(
            table=table, column=col.name, new_name=_fresh(state, prefix, {c.name for c in columns}, draw)
        )
    if kind == "alter":
        col = draw(st.sampled_from(columns))
        wider = WIDER.get(str(col.type))
        uses = any(col.name in index_columns(i, t) for i in t.indexes) or any(
            col.name in c.columns for c in t.constraints
        )
        uses = uses or col.name in _sources(t)
        options: list[dict[str, Any]] = [{"comment": "changed"}]
        if col.generated is not None:
            return ColumnAltered.of(table, col.name, comment=draw(st.sampled_from(["changed", None])))
        if col.identity and col.identity_options is not None:
            options.append({"identity_options": IdentityOptions(start=draw(st.integers(1, 50)))})
        if collations and str(col.type).startswith(("varchar", "text")) and not uses:
            options.append({"collation": draw(st.sampled_from([None, *collations]))})
        if wider and not uses and not col.identity and col.name not in t.primary_key:
            options.append({"type": wider})
        if table.startswith("anchor") and col.name.startswith("label") and wider == "varchar(120)":
            options = [{"type": wider}]  # widening keeps the anchored row
        if col.nullable is False and col.name not in t.primary_key:
            options.append({"nullable": True})
        if str(col.type) in ("integer", "bigint", "smallint") and not col.identity:
            options.append({"default": None if col.default else "7"})
        fill = effective_fill(col, state.enums) if col.default is None else None
        if "fill" in features and col.nullable and fill is not None:
            options.append({"nullable": False, "fill": fill})
        chosen = draw(st.sampled_from(options))
        if "fill" in chosen:
            return ColumnAltered.model_validate({"table": table, "column": col.name, **chosen})
        return ColumnAltered.of(table, col.name, **chosen)
    if kind == "index" and keyable:
        cols = draw(st.lists(st.sampled_from([c.name for c in keyable]), min_size=1, max_size=2, unique=True))
        return IndexCreated(table=table, index=_index(draw, state, t, cols, features))
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
            mine = [c for c in columns if c.type == pk_col.type and c.nullable and c.generated is None]
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
                        **_deferral(draw, features),
                    ),
                )
    if kind == "drop_constraint" and t.constraints:
        return ConstraintDropped(table=table, name=draw(st.sampled_from([c.name for c in t.constraints])))
    if kind == "pk" and not t.primary_key:
        candidates = [c for c in keyable if not c.nullable]
        if candidates:
            pk_name = None
            if "pk_name" in features and draw(st.booleans()):
                pk_name = _fresh(state, "pk", _objects(state), draw)
            return PrimaryKeySet(table=table, columns=(draw(st.sampled_from(candidates)).name,), name=pk_name)
    if kind == "pk" and t.primary_key and "pk_name" in features:
        return PrimaryKeySet(table=table, columns=t.primary_key, name=_fresh(state, "pk", _objects(state), draw))
    return None


def _deferral(draw: Any, features: frozenset[str]) -> dict[str, bool]:
    if "deferrable" not in features or not draw(st.booleans()):
        return {}
    return {"deferrable": True, "initially_deferred": draw(st.booleans())}


def _index(draw: Any, state: State, t: Table, cols: list[str], features: frozenset[str]) -> Index:
    """An index on ``cols``: plain, or (where the dialect has them) with a method, elements (an
    expression, an operator class, a descending order), a predicate, included columns."""
    name = _fresh(state, "ix", _objects(state), draw)
    unique = draw(st.booleans())
    extra: dict[str, Any] = {}
    if "index_method" in features and len(cols) == 1 and not unique and draw(st.integers(0, 3)) == 0:
        return Index(name=name, columns=tuple(cols), method=draw(st.sampled_from(["hash", "brin"])))
    if "index_elements" in features and draw(st.booleans()):
        elements = []
        for col in cols:
            column = t.column(col)
            assert column is not None
            shape = draw(st.sampled_from(["desc", "expression", "opclass", "plain"]))
            if shape == "expression" and col.isidentifier():
                text = f"lower({col})" if str(column.type).startswith("varchar") else f"({col} + 1)"
                elements.append(IndexElement(expression=text))
            elif shape == "opclass" and "opclass" in features and str(column.type).startswith("varchar"):
                elements.append(IndexElement(column=col, opclass="varchar_pattern_ops"))
            else:
                elements.append(IndexElement(column=col, descending=shape == "desc"))
        extra["elements"] = tuple(elements)
    else:
        extra["columns"] = tuple(cols)
    numbers = [c.name for c in t.columns if c.type.is_integer and c.name.isidentifier() and c.generated is None]
    if "index_where" in features and numbers and draw(st.integers(0, 2)) == 0:
        extra["where"] = f"{draw(st.sampled_from(numbers))} > 0"
    others = [c.name for c in t.columns if c.name not in cols and c.generated is None]
    if "index_include" in features and others and draw(st.integers(0, 3)) == 0:
        extra["include"] = (draw(st.sampled_from(others)),)
    return Index(name=name, unique=unique, **extra)
