"""PostgreSQL introspection compares on the catalogue's rows, and, told the expected schema, compares most
of it while it reads and the columns as COPY writes them (PgCatalogue.readers, take_columns_text): both
shortcuts must decide exactly what comparing the built schema objects decides. Each drift below is made
by hand in a transaction, compared three ways, then rolled back.
"""

from __future__ import annotations

import asyncpg
import pytest

from events.catalog import ConstraintAdded, TableCreated
from events.model import Column, ColumnType, Constraint, Reference, Schema, check_new_name, parse_type
from events.store import EventStore
from projections.schema import Point, Projector
from service.reconciler.apply import migrate
from service.reconciler.dialects import get_dialect
from service.reconciler.dialects.postgresql import introspect
from service.reconciler.dialects.postgresql.introspect import introspect_postgresql, postgresql_type, read_postgresql
from service.reconciler.normalize import differences
from tests.test_reconciler import AWKWARD_TABLE, append, history, req

pytestmark = pytest.mark.postgres

RECREATE_C = (
    "DROP TABLE c; CREATE TABLE c (x integer, junk integer, y integer, z integer, CONSTRAINT c_z_key UNIQUE ({}));"
    " ALTER TABLE c DROP COLUMN junk"
)

# (what is done by hand, whether the database then differs from the log)
SCENARIOS = [
    ("", False),
    ("ALTER TABLE users ADD COLUMN sneaky integer", True),
    ("ALTER TABLE users DROP COLUMN score", True),
    # dropped and added back as it was: numbered 5, after nick; column order does not count
    ("ALTER TABLE users DROP COLUMN score; ALTER TABLE users ADD COLUMN score integer DEFAULT 0", False),
    # the same for a column with a unique index, made again on the new column number (beyond the
    # expected columns); purchases' foreign key references users, whose columns are now out of place
    (
        "ALTER TABLE users DROP COLUMN email; ALTER TABLE users ADD COLUMN email varchar(100) NOT NULL;"
        " CREATE UNIQUE INDEX users_mail_key ON users (email)",
        False,
    ),
    (
        "ALTER TABLE users DROP COLUMN email; ALTER TABLE users ADD COLUMN email varchar(100) NOT NULL;"
        " CREATE UNIQUE INDEX users_mail_key ON users (nick)",
        True,
    ),
    # two names swapped: every column is in its place by number, not by name
    (
        "ALTER TABLE users RENAME COLUMN email TO swap; ALTER TABLE users RENAME COLUMN nick TO email;"
        " ALTER TABLE users RENAME COLUMN swap TO nick",
        True,
    ),
    ("ALTER TABLE users RENAME COLUMN nick TO nickname", True),
    ("DROP INDEX users_mail_key; CREATE UNIQUE INDEX users_mail_key ON users (nick)", True),
    ("DROP INDEX users_mail_key; CREATE INDEX users_mail_key ON users (email)", True),
    ("CREATE INDEX users_extra ON users (score)", True),
    (
        "ALTER TABLE purchases DROP CONSTRAINT orders_user_fk; ALTER TABLE purchases ADD CONSTRAINT orders_user_fk"
        " FOREIGN KEY (id) REFERENCES users (id) ON DELETE CASCADE",
        True,
    ),
    (
        "ALTER TABLE purchases DROP CONSTRAINT orders_user_fk; ALTER TABLE purchases ADD CONSTRAINT orders_user_fk"
        " FOREIGN KEY (user_id) REFERENCES users (id)",
        True,
    ),
    (
        "ALTER TABLE purchases DROP CONSTRAINT orders_total_pos;"
        " ALTER TABLE purchases ADD CONSTRAINT orders_total_pos CHECK (total > 0)",
        True,
    ),
    ("ALTER TABLE purchases RENAME CONSTRAINT orders_total_pos TO total_pos", True),
    ("COMMENT ON TABLE purchases IS 'something else'", True),
    ("COMMENT ON COLUMN purchases.note IS NULL", True),
    ("ALTER TABLE purchases ALTER COLUMN note SET DEFAULT 'other'", True),
    ("ALTER TABLE users ALTER COLUMN score DROP DEFAULT", True),
    ("ALTER TABLE purchases ALTER COLUMN note DROP DEFAULT", True),  # its other default, total's, left
    ("ALTER TABLE users ALTER COLUMN score SET DEFAULT 1", True),
    ("ALTER TABLE purchases ALTER COLUMN user_id SET DEFAULT 0", True),
    # the same default written another way ('0'::numeric, not 0), and an explicit DEFAULT NULL (no default)
    ("ALTER TABLE purchases ALTER COLUMN total SET DEFAULT '0'", False),
    ("ALTER TABLE purchases ALTER COLUMN user_id SET DEFAULT NULL", False),
    ("ALTER TABLE purchases ALTER COLUMN note TYPE text", True),
    ("ALTER TABLE purchases ALTER COLUMN note SET NOT NULL", True),
    ("ALTER TABLE users ALTER COLUMN id DROP IDENTITY", True),
    # a serial column (a sequence's nextval as default) is the identity in another form: its sequence is
    # the log's to name (IdentityOptions.sequence), so an identity column made one has drifted
    (
        "ALTER TABLE users ALTER COLUMN id DROP IDENTITY; CREATE SEQUENCE users_id_seq OWNED BY users.id;"
        " ALTER TABLE users ALTER COLUMN id SET DEFAULT nextval('users_id_seq')",
        True,
    ),
    (
        "CREATE SEQUENCE purchases_id_seq OWNED BY purchases.id;"
        " ALTER TABLE purchases ALTER COLUMN id SET DEFAULT nextval('purchases_id_seq')",
        True,
    ),
    ("ALTER TABLE users DROP CONSTRAINT users_nick_key", True),
    (
        "ALTER TABLE users DROP CONSTRAINT users_nick_key;"
        " ALTER TABLE users ADD CONSTRAINT users_nick_key UNIQUE (email)",
        True,
    ),
    (
        "ALTER TABLE purchases DROP CONSTRAINT purchases_pkey CASCADE;"
        " ALTER TABLE purchases ADD PRIMARY KEY (id, user_id)",
        True,
    ),
    ("CREATE TABLE extra (id integer)", True),
    ("CREATE TABLE extra (id integer REFERENCES users (id))", True),
    ('DROP TABLE "odd ""name""; DROP TABLE x"', True),
    ("CREATE SCHEMA other; CREATE TABLE other.users (id integer)", True),
    # a and b (pair_events): a's two integer columns swap names, so each is still a column of a by name,
    # but b's foreign key now references what the catalogue calls x (column 2, y by position)
    (
        "ALTER TABLE a RENAME COLUMN x TO swap; ALTER TABLE a RENAME COLUMN y TO x;"
        " ALTER TABLE a RENAME COLUMN swap TO y",
        True,
    ),
    # a's columns out of place (x dropped and added back), b's foreign key to y the same as in the log
    ("ALTER TABLE a DROP COLUMN x; ALTER TABLE a ADD COLUMN x integer", False),
    # c made again with a column dropped between x and y: its columns in the log's order by name, but y is
    # column 3 and z column 4, numbers that name other columns by position (3 is z's position)
    (RECREATE_C.format("z"), False),
    (RECREATE_C.format("y"), True),
]


def pair_events() -> tuple[object, ...]:
    """Table a (x, y unique, z) and b, whose foreign key references a's second column; c (x, y, z unique)."""
    return (
        TableCreated(table="a", columns=tuple(Column(name=name, type="integer") for name in ("x", "y", "z"))),
        ConstraintAdded(table="a", constraint=Constraint(name="a_y_key", kind="unique", columns=("y",))),
        TableCreated(table="c", columns=tuple(Column(name=name, type="integer") for name in ("x", "y", "z"))),
        ConstraintAdded(table="c", constraint=Constraint(name="c_z_key", kind="unique", columns=("z",))),
        TableCreated(table="b", columns=(Column(name="r", type="integer"),)),
        ConstraintAdded(
            table="b",
            constraint=Constraint(
                name="b_r_fk", kind="foreign_key", columns=("r",), references=Reference(table="a", columns=("y",))
            ),
        ),
    )


async def three_ways(conn: asyncpg.Connection, expected: Schema) -> list[list[str]]:
    """Differences on the rows told ``expected`` while reading, on the rows not told, and on built objects."""
    told = differences(expected, await introspect_postgresql(conn, expected))
    untold = differences(expected, await introspect_postgresql(conn))
    built = await introspect_postgresql(conn)
    assert built.tables is not None  # every table object built: the plain comparison of objects
    return [told, untold, differences(expected, built)]


@pytest.mark.parametrize("types_known", [True, False], ids=["types-known", "text-unknown"])
async def test_comparing_on_rows_decides_what_comparing_objects_decides(
    log_store: EventStore, pg_url: str, types_known: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every scenario, with the catalogue's text of every type known (the expected columns written as
    rows), and with text's unknown (users and the oddly named table, which have a text column, compared
    field by field; the others still as rows)."""
    if not types_known:
        monkeypatch.setattr(introspect, "_PG_TYPE_TEXTS", {})
        known = introspect._pg_type_text
        monkeypatch.setattr(introspect, "_pg_type_text", lambda t: None if t.name == "text" else known(t))
    versions = await history(log_store)
    versions.append(await append(log_store, *pair_events()))
    outcome = await migrate(log_store, req(pg_url, versions[-1]))
    assert outcome.status == "applied", (outcome.detail, outcome.drift)
    dialect = get_dialect("postgresql")
    projector = Projector(log_store)
    expected = dialect.normalize((await projector.schema("app", Point(version=versions[-1])))[1])
    earlier = dialect.normalize((await projector.schema("app", Point(version=versions[2])))[1])
    conn = await asyncpg.connect(pg_url)
    try:
        for sql, drifted in SCENARIOS:
            transaction = conn.transaction()
            await transaction.start()
            try:
                if sql:
                    await conn.execute(sql)
                told, untold, built = await three_ways(conn, expected)
                assert told == untold == built, sql
                assert bool(built) == drifted, (sql, built)
                if not sql:  # as migrate made it: every column row and default compared in one go
                    catalogue = await read_postgresql(conn, expected)
                    assert catalogue._all_in_place == types_known == (catalogue._columns is None)
                    assert all(catalogue._defaults_in_place.values())
                    assert catalogue.matching(expected) == set(expected.tables)
                    written = {catalogue._names[oid] for oid, rows in catalogue._want.items() if rows is not None}
                    # each table's rows compared with those written for it, where its types are known
                    assert written == (set() if types_known else set(expected.tables) - {"users", AWKWARD_TABLE})
                if not drifted:  # decided on the rows for every table: no table object built
                    for live in (await introspect_postgresql(conn, expected), await introspect_postgresql(conn)):
                        source = live.pending()
                        assert source is not None and source.matching(expected) == set(expected.tables), sql
                # told one schema, compared with another: decided on the catalogue's names
                mismatched = differences(earlier, await introspect_postgresql(conn, expected))
                reference = await introspect_postgresql(conn)
                assert reference.tables is not None
                assert mismatched == differences(earlier, reference) != [], sql
            finally:
                await transaction.rollback()
    finally:
        await conn.close()


@pytest.mark.parametrize(
    "text",
    ["smallint", "integer", "bigint", "boolean", "real", "double", "text", "date", "time", "timestamp",
     "timestamptz", "interval", "json", "uuid", "bytes", "numeric", "numeric(12,2)", "varchar(100)",
     "char(8)", "postgresql:inet", "postgresql:jsonb", "postgresql:integer[]"],
)  # fmt: skip
def test_a_types_catalogue_text_reads_back_as_that_type(text: str) -> None:
    found = parse_type(text)
    written = introspect._pg_type_text(found)
    assert written is not None and postgresql_type(written) == found


def test_a_type_the_catalogue_writes_otherwise_has_no_text() -> None:
    # read back, "character varying(20)" is the portable varchar(20), not this native type
    assert introspect._pg_type_text(ColumnType(name="character varying(20)", dialect="postgresql")) is None
    assert introspect._pg_type_text(ColumnType(name="mediumtext", dialect="mysql")) is None


ODD_TEXTS = ("back\\slash", "tab\there", "new\nline", "cr\rlf", "bell\x07 and \x01", "nbsp\xa0é", "bs\b ff\f vt\v")


def legal_name(text: str, n: int) -> str:
    """``text`` where the name policy lets a name hold it; control characters stay in the comments."""
    try:
        return check_new_name(text, "column", "column name")
    except ValueError:
        return f"odd {n} \\ é"


async def test_odd_names_and_comments_are_written_as_copy_writes_them(log_store: EventStore, pg_url: str) -> None:
    """The expected columns, written as COPY writes PG_COLUMNS, equal what the server writes, byte for byte,
    whatever characters the names and comments hold (else every read would compare row by row)."""
    odd = [Column(name=legal_name(text, n), type="text", comment=ODD_TEXTS[-1 - n]) for n, text in enumerate(ODD_TEXTS)]
    columns = (*odd, Column(name="plain", type="integer"))
    version = await append(log_store, TableCreated(table="odd table\\", columns=columns, comment="a\nb"))
    outcome = await migrate(log_store, req(pg_url, version))
    assert outcome.status == "applied", (outcome.detail, outcome.drift)
    expected = get_dialect("postgresql").normalize((await Projector(log_store).schema("app"))[1])
    conn = await asyncpg.connect(pg_url)
    try:
        catalogue = await read_postgresql(conn, expected)
        assert catalogue._all_in_place and catalogue._columns is None
        assert catalogue.matching(expected) == set(expected.tables)
        told, untold, built = await three_ways(conn, expected)
        assert told == untold == built == []
        live = await introspect_postgresql(conn, expected)
        assert live == expected  # the tables built from the rows written, as they were exactly
    finally:
        await conn.close()
