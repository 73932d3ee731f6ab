"""PostgreSQL holds every attribute the catalogue has, exactly both ways: a database built from a state
introspects back to exactly that state (no difference, decided on the catalogue's rows told the state, not
told, and on built objects), and every new event migrates forward and back.

Collations, generated columns, identity options, index methods, elements (expressions, operator classes,
DESC), partial and covering indexes, deferrable constraints, named primary keys, enum types, fills.
"""

from __future__ import annotations

from collections.abc import Iterator

import asyncpg
import pytest

from events.catalog import (
    ColumnAdded,
    ColumnAltered,
    ConstraintAdded,
    EnumCreated,
    EnumDropped,
    EnumValueAdded,
    EnumValueDropped,
    IndexCreated,
    PrimaryKeySet,
    TableCreated,
    TableRenamed,
)
from events.model import Column, Constraint, Generated, IdentityOptions, Index, IndexElement, Reference, Schema, Table
from events.store import EventStore
from projections.schema import Point, Projector, normalized
from service.authoring.importer import ImportRefused, import_database
from service.reconciler.apply import migrate
from service.reconciler.capacity import plan_problems
from service.reconciler.dialects import get_dialect
from service.reconciler.dialects.postgresql.ddl import canonical_identity, default_pk_name
from service.reconciler.dialects.postgresql.introspect import introspect_postgresql, read_postgresql
from service.reconciler.normalize import differences
from service.reconciler.statements import check_planned
from service.reconciler.targets import open_target
from tests.servers import postgres_database_url
from tests.test_reconciler import append, req

PG = get_dialect("postgresql")


def people_events() -> tuple[object, ...]:
    """An enum type, and two tables using nearly every attribute the catalogue has."""
    return (
        EnumCreated(name="mood", values=("happy", "sad")),
        TableCreated(
            table="teams",
            columns=(
                Column(name="id", type="integer", nullable=False, identity=True),
                Column(name="code", type="varchar(20)", nullable=False),
            ),
            primary_key=("id",),
            constraints=(Constraint(name="teams_code_key", kind="unique", columns=("code",), deferrable=True),),
        ),
        TableCreated(
            table="people",
            columns=(
                Column(
                    name="id",
                    type="bigint",
                    nullable=False,
                    identity=True,
                    identity_options=IdentityOptions(always=True, start=100, increment=5, cache=10),
                ),
                Column(name="name", type="text", nullable=False, collation="C"),
                Column(name="email", type="varchar(200)"),
                Column(name="price", type="numeric(10,2)", nullable=False, default="0"),
                Column(name="qty", type="integer", nullable=False, default="1"),
                Column(name="total", type="numeric", generated=Generated(expression="price * qty")),
                Column(name="feeling", type="enum:mood", default="'happy'"),
                Column(name="data", type="postgresql:jsonb"),
                Column(name="team_id", type="integer"),
                Column(name="deleted_at", type="timestamptz"),
            ),
            primary_key=("id",),
            primary_key_name="people_pk",
        ),
        ConstraintAdded(
            table="people",
            constraint=Constraint(
                name="people_team_fk",
                kind="foreign_key",
                columns=("team_id",),
                references=Reference(table="teams", columns=("id",)),
                deferrable=True,
                initially_deferred=True,
            ),
        ),
        IndexCreated(
            table="people",
            index=Index(
                name="people_data_gin",
                method="gin",
                elements=(IndexElement(column="data", opclass="jsonb_path_ops"),),
            ),
        ),
        IndexCreated(
            table="people", index=Index(name="people_lower_email", elements=(IndexElement(expression="lower(email)"),))
        ),
        IndexCreated(
            table="people",
            index=Index(name="people_email_live", columns=("email",), unique=True, where="deleted_at IS NULL"),
        ),
        IndexCreated(
            table="people",
            index=Index(
                name="people_email_pattern",
                elements=(
                    IndexElement(column="email", opclass="varchar_pattern_ops"),
                    IndexElement(column="price", descending=True),
                ),
                include=("qty",),
            ),
        ),
        # a default operator class named is the same index as none named
        IndexCreated(
            table="people",
            index=Index(name="people_name_ops", elements=(IndexElement(column="name", opclass="text_ops"),)),
        ),
        IndexCreated(table="people", index=Index(name="people_team_hash", columns=("team_id",), method="hash")),
        IndexCreated(table="people", index=Index(name="people_deleted_brin", columns=("deleted_at",), method="brin")),
        IndexCreated(table="people", index=Index(name="people_cover", columns=("team_id",), include=("name", "email"))),
    )


def later_events() -> list[tuple[object, ...]]:
    """One changeset each: every new event, and the new attributes of the old ones."""
    return [
        # a value added and used in the same run: the run commits after ADD VALUE
        (
            EnumValueAdded(name="mood", value="calm", before="sad"),
            ColumnAltered.of("people", "feeling", default="'calm'"),
        ),
        (ColumnAdded(table="people", column=Column(name="rank", type="integer", nullable=False), fill="7"),),
        (ColumnAltered(table="people", column="email", nullable=False, fill="'nobody@example.com'"),),
        (ColumnAltered.of("people", "email", collation="C"),),
        (TableRenamed(table="teams", new_name="squads"),),  # its primary key is renamed with it
        (TableRenamed(table="people", new_name="persons"),),  # its named primary key keeps its name
        (PrimaryKeySet(table="persons", columns=("id", "name"), name="persons_id_name"),),
        (EnumValueDropped(name="mood", value="sad"),),
        (
            EnumCreated(name="unused", values=("a", "b")),
            EnumValueAdded(name="unused", value="c"),
        ),
        (EnumDropped(name="unused"),),
    ]


async def no_differences(url: str, expected: Schema) -> None:
    """The database introspects back to exactly ``expected``: on the rows told it, on the rows not told,
    and on the built objects."""
    conn = await asyncpg.connect(url)
    try:
        told = differences(expected, await introspect_postgresql(conn, expected))
        untold = differences(expected, await introspect_postgresql(conn))
        built = await introspect_postgresql(conn)
        assert built.tables is not None
        assert (told, untold, differences(expected, built)) == ([], [], [])
        assert normalized(built) == normalized(expected) and built.enums == expected.enums  # order aside
    finally:
        await conn.close()


async def expected_at(store: EventStore, version: int) -> Schema:
    return PG.normalize((await Projector(store).schema("app", Point(version=version)))[1])


@pytest.mark.postgres
async def test_every_attribute_introspects_back_as_built(log_store: EventStore, pg_url: str) -> None:
    version = await append(log_store, *people_events())
    outcome = await migrate(log_store, req(pg_url, version))
    assert outcome.status == "applied", (outcome.detail, outcome.drift)
    expected = await expected_at(log_store, version)
    people = expected.tables["people"]
    assert people.index("people_name_ops") == Index(name="people_name_ops", columns=("name",))
    assert expected.tables["teams"].column("id").identity_options is None  # type: ignore[union-attr]
    assert set(expected.enums) == {"mood"}
    await no_differences(pg_url, expected)
    conn = await asyncpg.connect(pg_url)
    try:
        catalogue = await read_postgresql(conn, expected)
        assert catalogue._all_in_place  # the columns, copied, are exactly what was written for them
        assert catalogue.matching(expected) == set(expected.tables)
        row = await conn.fetchrow(
            "SELECT condeferrable, condeferred FROM pg_constraint WHERE conname = 'people_team_fk'"
        )
        assert tuple(row) == (True, True)
        assert (
            await conn.fetchval(
                "SELECT conname FROM pg_constraint WHERE contype = 'p' AND conrelid = 'people'::regclass"
            )
            == "people_pk"
        )
    finally:
        await conn.close()


# (what is done by hand, what the difference names)
DRIFTS = [
    ("ALTER TABLE people ALTER COLUMN name TYPE text COLLATE \"POSIX\"", "collation"),
    ("ALTER TABLE people ALTER COLUMN id SET GENERATED BY DEFAULT", "identity_options"),
    ("ALTER TABLE people ALTER COLUMN id RESTART WITH 7;"
     " ALTER TABLE people ALTER COLUMN id SET INCREMENT BY 2", "identity_options"),
    ("ALTER TABLE teams ALTER COLUMN id SET MAXVALUE 1000", "identity_options"),
    ("ALTER TABLE people DROP COLUMN total;"
     " ALTER TABLE people ADD COLUMN total numeric GENERATED ALWAYS AS (price + qty) STORED", "generated"),
    ("DROP INDEX people_data_gin; CREATE INDEX people_data_gin ON people USING gin (data)", "people_data_gin"),
    ("DROP INDEX people_lower_email; CREATE INDEX people_lower_email ON people (upper(email))", "people_lower_email"),
    ("DROP INDEX people_email_live; CREATE UNIQUE INDEX people_email_live ON people (email)", "people_email_live"),
    ("DROP INDEX people_email_pattern;"
     " CREATE INDEX people_email_pattern ON people (email, price DESC) INCLUDE (qty)", "people_email_pattern"),
    ("DROP INDEX people_email_pattern;"
     " CREATE INDEX people_email_pattern ON people (email varchar_pattern_ops, price) INCLUDE (qty)",
     "people_email_pattern"),
    ("DROP INDEX people_team_hash; CREATE INDEX people_team_hash ON people (team_id)", "people_team_hash"),
    ("DROP INDEX people_cover; CREATE INDEX people_cover ON people (team_id) INCLUDE (name)", "people_cover"),
    ("ALTER TABLE people ALTER CONSTRAINT people_team_fk NOT DEFERRABLE", "people_team_fk"),
    ("ALTER TABLE people ALTER CONSTRAINT people_team_fk DEFERRABLE INITIALLY IMMEDIATE", "people_team_fk"),
    ("ALTER TABLE teams DROP CONSTRAINT teams_code_key CASCADE;"
     " ALTER TABLE teams ADD CONSTRAINT teams_code_key UNIQUE (code)", "teams_code_key"),
    ("ALTER TABLE people RENAME CONSTRAINT people_pk TO people_pkey", "primary key name"),
    ("ALTER TABLE teams RENAME CONSTRAINT teams_pkey TO teams_key", "primary key name"),
    ("ALTER TYPE mood ADD VALUE 'angry'", "enum type mood"),
    ("ALTER TYPE mood RENAME VALUE 'sad' TO 'blue'", "enum type mood"),
    ("CREATE TYPE other AS ENUM ('x')", "enum type other"),
]  # fmt: skip


@pytest.mark.postgres
async def test_each_new_attribute_changed_by_hand_is_found(log_store: EventStore, pg_url: str) -> None:
    """Each drift of a new attribute is found, the same way on the rows (told, not told) and on objects."""
    version = await append(log_store, *people_events())
    outcome = await migrate(log_store, req(pg_url, version))
    assert outcome.status == "applied", (outcome.detail, outcome.drift)
    expected = await expected_at(log_store, version)
    conn = await asyncpg.connect(pg_url)
    try:
        for sql, named in DRIFTS:
            transaction = conn.transaction()
            await transaction.start()
            try:
                await conn.execute(sql)
                told = differences(expected, await introspect_postgresql(conn, expected))
                untold = differences(expected, await introspect_postgresql(conn))
                built = await introspect_postgresql(conn)
                assert built.tables is not None
                assert told == untold == differences(expected, built), sql
                assert told and any(named in line for line in told), (sql, told)
            finally:
                await transaction.rollback()
    finally:
        await conn.close()


@pytest.mark.postgres
async def test_every_new_event_migrates_forward_and_back(log_store: EventStore, pg_url: str) -> None:
    """Forward one changeset at a time, each state introspected back exactly; then back to 0 the same way."""
    versions = [await append(log_store, *people_events())]
    for changeset in later_events():
        versions.append(await append(log_store, *changeset))
    for number, version in enumerate(versions):
        # (a NOT NULL with a fill is still named destructive by the plan while the column holds NULLs)
        outcome = await migrate(log_store, req(pg_url, version, allow_destructive=True))
        assert outcome.status == "applied", (version, outcome.detail, outcome.drift)
        await no_differences(pg_url, await expected_at(log_store, version))
        if number == 0:  # rows that the later changes keep, fill and convert
            conn = await asyncpg.connect(pg_url)
            try:
                await conn.execute("INSERT INTO teams (id, code) VALUES (1, 'a')")
                await conn.execute(
                    "INSERT INTO people (name, email, price, qty, feeling, team_id) VALUES"
                    " ('x', NULL, 2, 3, 'happy', 1), ('y', 'y@example.com', 1, 1, 'happy', NULL)"
                )
            finally:
                await conn.close()
    conn = await asyncpg.connect(pg_url)
    try:
        rows = await conn.fetch("SELECT name, email, rank, total, feeling::text FROM persons ORDER BY name")
        assert [tuple(r) for r in rows] == [
            ("x", "nobody@example.com", 7, 6, "happy"),
            ("y", "y@example.com", 7, 1, "happy"),
        ]
        assert (
            await conn.fetchval(
                "SELECT conname FROM pg_constraint WHERE conrelid = 'persons'::regclass AND contype = 'p'"
            )
            == "persons_id_name"
        )
        # the squads' key, renamed with its table (PostgreSQL's own name)
        assert await conn.fetchval("SELECT count(*) FROM pg_constraint WHERE conname = 'squads_pkey'") == 1
    finally:
        await conn.close()
    for version in [*reversed(versions[:-1]), 0]:
        outcome = await migrate(log_store, req(pg_url, version, allow_destructive=True))
        assert outcome.status == "applied", (version, outcome.detail, outcome.drift)
        await no_differences(pg_url, await expected_at(log_store, version))


@pytest.mark.postgres
async def test_a_failure_after_a_value_was_added_resumes(log_store: EventStore, pg_url: str) -> None:
    """The run commits after ADD VALUE (its value cannot be used before): a statement failing after that
    leaves the marker in progress at what was done, and the next migrate, the cause fixed, finishes."""
    first = await append(
        log_store,
        EnumCreated(name="state", values=("new",)),
        TableCreated(
            table="jobs",
            columns=(Column(name="id", type="integer", nullable=False), Column(name="s", type="enum:state")),
        ),
    )
    assert (await migrate(log_store, req(pg_url, first))).status == "applied"
    second = await append(
        log_store,
        EnumValueAdded(name="state", value="done"),
        ConstraintAdded(table="jobs", constraint=Constraint(name="jobs_id_key", kind="unique", columns=("id",))),
    )
    conn = await asyncpg.connect(pg_url)
    try:
        await conn.execute("INSERT INTO jobs VALUES (1, 'new'), (1, 'new')")  # the unique constraint fails
        outcome = await migrate(log_store, req(pg_url, second))
        assert outcome.status == "failed", outcome
        target = await open_target(pg_url)
        try:
            marker = await target.read_marker("app")
        finally:
            await target.close()
        assert marker is not None and (marker.version, marker.target_version, marker.steps_done) == (first, second, 1)
        assert await conn.fetchval("SELECT count(*) FROM pg_enum WHERE enumlabel = 'done'") == 1
        await conn.execute("DELETE FROM jobs")
        outcome = await migrate(log_store, req(pg_url, second))
        assert outcome.status == "applied", (outcome.detail, outcome.drift)
    finally:
        await conn.close()
    await no_differences(pg_url, await expected_at(log_store, second))


def test_statements_for_the_new_attributes() -> None:
    """The text of each new kind of statement (no database), each proven one statement of its kind."""
    schema = Schema(
        tables={"t": Table(name="t", columns=(Column(name="a", type="text"), Column(name="b", type="integer")))}
    )
    index = Index(
        name="t_x",
        method="gist",
        elements=(
            IndexElement(expression="lower(a)", opclass="text_pattern_ops"),
            IndexElement(column="b", descending=True),
        ),
        where="b > 0",
        include=("a",),
    )
    sql = PG.create_index_sql("t", index)
    assert sql == "CREATE INDEX t_x ON t USING gist ((lower(a)) text_pattern_ops, b DESC) INCLUDE (a) WHERE (b > 0)"
    check_planned("postgresql", sql, "index_created")
    fk = Constraint(
        name="t_fk", kind="foreign_key", columns=("b",), references=Reference(table="u", columns=("id",)),
        deferrable=True, initially_deferred=True,
    )  # fmt: skip
    assert PG.add_constraint_sql("t", fk).endswith("FOREIGN KEY(b) REFERENCES u (id) DEFERRABLE INITIALLY DEFERRED")
    after = Schema(
        tables={
            "t": Table(
                name="t", columns=(*schema.tables["t"].columns, Column(name="c", type="integer", nullable=False))
            )
        }
    )
    added = PG.add_column(schema, after, "t", "c", fill="0")
    assert added == [
        "ALTER TABLE t ADD COLUMN c INTEGER NOT NULL DEFAULT (0)",
        "ALTER TABLE t ALTER COLUMN c DROP DEFAULT",
    ]
    notnull = Schema(
        tables={
            "t": Table(
                name="t",
                columns=(
                    Column(name="a", type="text", nullable=False, collation="C"),
                    Column(name="b", type="integer"),
                ),
            )
        }
    )
    altered = PG.alter_column(schema, notnull, "t", "a", {"nullable": False, "collation": "C"}, fill="'x'")
    assert altered == [
        'ALTER TABLE t ALTER COLUMN a TYPE TEXT COLLATE "C"',
        "UPDATE t SET a = ('x') WHERE a IS NULL",
        "ALTER TABLE t ALTER COLUMN a SET NOT NULL",
    ]
    for statement in altered:
        check_planned("postgresql", statement, "column_altered")
    enums = Schema(enums={"e": {"name": "e", "values": ("a", "b")}})  # type: ignore[dict-item]
    for statement in PG.create_enum(Schema(), enums, "e"):
        check_planned("postgresql", statement, "enum_created")
    check_planned("postgresql", PG.add_enum_value(enums, enums, "e", "c", "b")[0], "enum_value_added")
    check_planned("postgresql", PG.drop_enum(enums, Schema(), "e")[0], "enum_dropped")
    # names: PostgreSQL's own for a primary key, cut to 63 bytes at a character's end
    assert default_pk_name("sales.orders") == "orders_pkey"
    assert default_pk_name("é" * 40) == "é" * 29 + "_pkey"


def test_identity_options_equal_to_postgresqls_own_are_none() -> None:
    assert canonical_identity(IdentityOptions(start=1, increment=1, minvalue=1, cache=1), "integer") is None
    assert canonical_identity(IdentityOptions(maxvalue=2**31 - 1), "integer") is None
    assert canonical_identity(IdentityOptions(maxvalue=2**31 - 1), "bigint") == IdentityOptions(maxvalue=2**31 - 1)
    assert canonical_identity(IdentityOptions(minvalue=10, start=10), "bigint") == IdentityOptions(minvalue=10)
    assert canonical_identity(IdentityOptions(increment=-1, start=-1, maxvalue=-1), "smallint") == IdentityOptions(
        increment=-1
    )
    assert canonical_identity(IdentityOptions(always=True), "integer") == IdentityOptions(always=True)


def test_a_virtual_generated_column_is_refused_on_postgresql() -> None:
    from events.aggregate import State

    virtual = Column(name="b", type="integer", generated=Generated(expression="a + 1", stored=False))
    event = TableCreated(table="v", columns=(Column(name="a", type="integer"), virtual))
    problems = plan_problems(PG, State(), [(1, event)])
    assert problems == [
        "v1 (table_created): column v.b: a virtual generated column (stored: false); PostgreSQL's generated"
        " columns are all stored (give stored: true)"
    ]


# ---------------------------------------------------------------------------------------------------------
# Import: the database's own expressions, serial columns with their sequences, inheritance refused

SERIAL_SOURCE = """
CREATE SEQUENCE shared_seq INCREMENT BY 1 NO MAXVALUE NO MINVALUE CACHE 1;
CREATE SEQUENCE stepped_seq AS integer START WITH 10 INCREMENT BY 5 CACHE 3;
CREATE TABLE films (
    id integer DEFAULT nextval('shared_seq'::regclass) NOT NULL PRIMARY KEY,
    made date DEFAULT ('now'::text)::date NOT NULL,
    seen timestamp without time zone DEFAULT now() NOT NULL,
    title text,
    folded text GENERATED ALWAYS AS (lower(title)) STORED
);
CREATE INDEX films_title_lower ON films (lower(title)) WHERE title IS NOT NULL;
CREATE TABLE reels (id serial PRIMARY KEY, n integer);
CREATE TABLE spools (id integer DEFAULT nextval('stepped_seq'::regclass) NOT NULL, n integer);
"""
"""A serial column of each kind: a stand-alone bigint sequence (not owned), SERIAL's own (owned, integer),
and one with options of its own; and expressions whose canonical form is another expression ('now')."""

PG_COLUMN_DEFAULTS = """
SELECT c.relname, a.attname, pg_get_expr(d.adbin, d.adrelid)
FROM pg_attrdef d JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
JOIN pg_class c ON c.oid = d.adrelid WHERE c.relname IN ('films', 'reels', 'spools') ORDER BY 1, 2
"""
PG_SEQUENCES = """
SELECT c.relname, format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement, s.seqmin, s.seqmax, s.seqcache,
       s.seqcycle, (SELECT o.refobjid::regclass::text || '.' || o.refobjsubid FROM pg_depend o
                    WHERE o.objid = s.seqrelid AND o.classid = 'pg_class'::regclass AND o.deptype = 'a')
FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid ORDER BY 1
"""


async def _rows(url: str, query: str) -> list[tuple[object, ...]]:
    conn = await asyncpg.connect(url)
    try:
        return [tuple(r) for r in await conn.fetch(query)]
    finally:
        await conn.close()


@pytest.fixture
def rebuilt_url() -> Iterator[str]:
    """A second fresh PostgreSQL database, to rebuild an imported one in."""
    with postgres_database_url() as url:
        yield url


@pytest.mark.postgres
async def test_import_records_the_databases_own_expressions_and_serial_sequences(
    log_store: EventStore, pg_url: str, rebuilt_url: str
) -> None:
    """Import records each expression as PostgreSQL writes it (pg_get_expr), not its canonical form: a
    rebuilt ('now'::text)::date is still the day's date, not the day of the import. A serial column keeps
    its sequence (IdentityOptions.sequence: name, options against the column's type, ownership): the
    rebuild has the same sequences, defaults and OWNED BY; migrated back, they are gone."""
    conn = await asyncpg.connect(pg_url)
    try:
        await conn.execute(SERIAL_SOURCE)
    finally:
        await conn.close()
    result = await import_database(log_store, pg_url, "app")
    assert result.kind == "baseline"
    _, state = await Projector(log_store).schema("app")
    films, reels, spools = (state.tables[n] for n in ("films", "reels", "spools"))
    assert [(c.name, c.default) for c in films.columns if c.default] == [
        ("made", "('now'::text)::date"),
        ("seen", "now()"),
    ]
    assert films.column("folded").generated == Generated(expression="lower(title)")  # type: ignore[union-attr]
    index = films.index("films_title_lower")
    assert index is not None and index.elements == (IndexElement(expression="lower(title)"),)
    assert index.where == "title IS NOT NULL"
    assert films.column("id").identity_options == IdentityOptions(  # type: ignore[union-attr]
        sequence="shared_seq", maxvalue=2**63 - 1
    )  # a bigint sequence on an integer column: its maxvalue says so
    assert reels.column("id").identity_options == IdentityOptions(sequence="reels_id_seq", owned=True)  # type: ignore[union-attr]
    assert spools.column("id").identity_options == IdentityOptions(  # type: ignore[union-attr]
        sequence="stepped_seq", start=10, increment=5, cache=3
    )
    assert all(c.identity for c in (films.column("id"), reels.column("id"), spools.column("id")))  # type: ignore[union-attr]
    version = await log_store.version("app")
    rebuilt = rebuilt_url
    outcome = await migrate(log_store, req(rebuilt, version))
    assert outcome.status == "applied", (outcome.detail, outcome.drift)
    await no_differences(rebuilt, PG.normalize(state))
    assert await _rows(rebuilt, PG_COLUMN_DEFAULTS) == await _rows(pg_url, PG_COLUMN_DEFAULTS)
    assert await _rows(rebuilt, PG_SEQUENCES) == await _rows(pg_url, PG_SEQUENCES)
    outcome = await migrate(log_store, req(rebuilt, 0, allow_destructive=True))
    assert outcome.status == "applied", (outcome.detail, outcome.drift)
    assert await _rows(rebuilt, PG_SEQUENCES) == []


@pytest.mark.postgres
async def test_a_serial_column_made_an_identity_column_by_hand_is_drift(log_store: EventStore, pg_url: str) -> None:
    """The sequence is part of the column: its name, options and ownership are compared like the rest."""
    version = await append(
        log_store,
        TableCreated(
            table="t",
            columns=(
                Column(
                    name="id",
                    type="integer",
                    nullable=False,
                    identity=True,
                    identity_options=IdentityOptions(sequence="t_seq", owned=True),
                ),
            ),
        ),
    )
    outcome = await migrate(log_store, req(pg_url, version))
    assert outcome.status == "applied", (outcome.detail, outcome.drift)
    expected = await expected_at(log_store, version)
    await no_differences(pg_url, expected)
    conn = await asyncpg.connect(pg_url)
    try:
        for sql in (
            "ALTER SEQUENCE t_seq OWNED BY NONE",
            "ALTER SEQUENCE t_seq INCREMENT BY 2",
            "ALTER TABLE t ALTER COLUMN id DROP DEFAULT;"
            " ALTER TABLE t ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY",
            "CREATE SEQUENCE other_seq; ALTER TABLE t ALTER COLUMN id SET DEFAULT nextval('other_seq'::regclass)",
        ):
            transaction = conn.transaction()
            await transaction.start()
            try:
                await conn.execute(sql)
                told = differences(expected, await introspect_postgresql(conn, expected))
                untold = differences(expected, await introspect_postgresql(conn))
                assert told == untold and any("t.id" in line and "identity" in line for line in told), (sql, told)
            finally:
                await transaction.rollback()
    finally:
        await conn.close()


@pytest.mark.postgres
async def test_a_table_that_inherits_is_refused_at_import(log_store: EventStore, pg_url: str) -> None:
    """Recorded as a table of its own, an INHERITS child would lose what it is (its rows its parent's):
    import refuses it in one line and writes nothing."""
    conn = await asyncpg.connect(pg_url)
    try:
        await conn.execute(
            "CREATE TABLE payments (id integer, amount numeric); CREATE TABLE payments_2007 () INHERITS (payments)"
        )
    finally:
        await conn.close()
    with pytest.raises(ImportRefused) as refused:
        await import_database(log_store, pg_url, "app")
    assert str(refused.value) == (
        "table payments_2007 inherits from payments: table inheritance is not in the catalogue yet"
    )
    assert await log_store.version("app") == 0


def test_statements_for_serial_columns() -> None:
    """A serial column's sequence is made before its table (as the column's type unless its range does not
    fit), owned after it, and dropped with it unless owned; each statement one of its kind."""
    owned = Column(
        name="id", type="integer", nullable=False, identity=True,
        identity_options=IdentityOptions(sequence="t_id_seq", owned=True),
    )  # fmt: skip
    free = Column(
        name="id", type="integer", nullable=False, identity=True,
        identity_options=IdentityOptions(sequence="sales.ids", maxvalue=2**63 - 1, cache=5),
    )  # fmt: skip
    one = Schema(tables={"t": Table(name="t", columns=(owned,))})
    two = Schema(tables={"t": Table(name="t", columns=(owned,)), "sales.u": Table(name="sales.u", columns=(free,))})
    created = PG.create_table(one, "t")
    assert created == [
        "CREATE SEQUENCE t_id_seq AS integer",
        "CREATE TABLE t (\n\tid INTEGER DEFAULT nextval('t_id_seq'::regclass) NOT NULL\n)",
        "ALTER SEQUENCE t_id_seq OWNED BY t.id",
    ]
    for statement in created:
        check_planned("postgresql", statement, "table_created")
    assert (
        PG.create_table(two, "sales.u")[0] == "CREATE SEQUENCE sales.ids AS bigint MAXVALUE 9223372036854775807 CACHE 5"
    )
    dropped = PG.drop_table(two, "sales.u")
    assert dropped == ["DROP TABLE sales.u", "DROP SEQUENCE sales.ids"]
    for statement in dropped:
        check_planned("postgresql", statement, "table_dropped")
    assert PG.drop_table(one, "t") == ["DROP TABLE t"]  # an owned sequence goes with its column
    # a sequence two tables draw from is made once and dropped with the last
    shared = Schema(tables={"a": Table(name="a", columns=(free,)), "b": Table(name="b", columns=(free,))})
    script = PG.create_script(shared)
    assert sum(s.startswith("CREATE SEQUENCE") for s in script) == 1
    assert PG.create_table(shared, "b") == [
        "CREATE TABLE b (\n\tid INTEGER DEFAULT nextval('sales.ids'::regclass) NOT NULL\n)"
    ]
    assert PG.drop_table(shared, "a") == ["DROP TABLE a"]
    # MariaDB and SQLite: such a column is their auto-increment
    keyed = Schema(tables={"t": Table(name="t", columns=(owned,), primary_key=("id",))})
    for name in ("mysql", "sqlite"):
        column = get_dialect(name).normalize(keyed).tables["t"].columns[0]
        assert column.identity and column.identity_options is None, name


async def test_identity_options_change_in_place(log_store: EventStore, pg_url: str) -> None:
    """column_altered identity_options: the identity's sequence changes in place, its rows and next values kept."""
    from events.catalog import ColumnAltered as Altered
    from tests.sqlexec import run_sql
    from tests.test_reconciler import live_equals_projection

    v1 = await append(
        log_store,
        TableCreated(
            table="tickets",
            columns=(
                Column(name="id", type="integer", nullable=False, identity=True),
                Column(name="what", type="text"),
            ),
            primary_key=("id",),
        ),
    )
    assert (await migrate(log_store, req(pg_url))).status == "applied"
    run_sql(pg_url, "INSERT INTO tickets (what) VALUES ('a'), ('b')")
    options = {"always": True, "increment": 10, "maxvalue": 100000, "cycle": True, "cache": 5}
    v2 = await append(log_store, Altered.of("tickets", "id", identity_options=options))
    outcome = await migrate(log_store, req(pg_url))
    assert outcome.status == "applied", outcome.detail
    assert any("SET GENERATED ALWAYS" in s and "SET INCREMENT BY 10" in s for s in outcome.statements)
    run_sql(pg_url, "INSERT INTO tickets (what) VALUES ('c')")
    assert [r[0] for r in run_sql(pg_url, "SELECT id FROM tickets ORDER BY id")] == [1, 2, 12]
    await live_equals_projection(log_store, pg_url, v2)
    back = await migrate(log_store, req(pg_url, v1))
    assert back.status == "applied", back.detail
    await live_equals_projection(log_store, pg_url, v1)
