"""MariaDB holds what the log says, exactly both ways (issue 13).

Each reported bug first, as it was found: a run that now succeeds, or fails leaving a way out the
message names. Then each field and event type MariaDB can hold, migrated forward, introspected equal
to the log's state (in the dialect's form) and migrated back to version 0; what it cannot hold is
refused before anything runs, naming it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from events.aggregate import State
from events.catalog import (
    ColumnAdded,
    ColumnAltered,
    ConstraintAdded,
    ConstraintDropped,
    EnumCreated,
    EnumValueAdded,
    EnumValueDropped,
    IndexCreated,
    PrimaryKeySet,
    TableCreated,
)
from events.model import (
    Column,
    Constraint,
    EnumType,
    Generated,
    IdentityOptions,
    Index,
    IndexElement,
    Reference,
    Schema,
    Table,
)
from events.store import EventStore
from projections.schema import HEAD, Projector, normalized
from service.authoring.models import metadata_schema
from service.reconciler.apply import migrate
from service.reconciler.capacity import mysql_table, plan_problems
from service.reconciler.dialects import get_dialect
from service.reconciler.dialects.mysql.introspect import introspect_mysql
from service.reconciler.targets import open_target
from tests.sqlexec import engine_for, run_sql
from tests.test_reconciler import append, live_equals_projection, req

MYSQL = get_dialect("mysql")


async def forward_and_back(store: EventStore, url: str, *versions: int) -> None:
    """Migrate to each version in turn (checking each), then back to 0 (nothing of the log left)."""
    for version in versions:
        outcome = await migrate(store, req(url, version, allow_destructive=True))
        assert outcome.status in ("applied", "up_to_date"), (outcome.detail, outcome.statements)
        await live_equals_projection(store, url, version)
    back = await migrate(store, req(url, 0, allow_destructive=True))
    assert back.status == "applied", (back.detail, back.statements)
    await live_equals_projection(store, url, 0)


def build_and_read(url: str, schema: Schema) -> Schema:
    """``schema`` made by the dialect's own script in the empty database, then read back."""
    engine = engine_for(url)
    try:
        with engine.connect() as conn:
            for statement in MYSQL.create_script(schema):
                conn.execution_options(no_parameters=True).exec_driver_sql(statement)
            return introspect_mysql(conn)
    finally:
        engine.dispose()


def column_rows(url: str, table: str) -> dict[str, tuple[Any, ...]]:
    rows = run_sql(
        url,
        "SELECT COLUMN_NAME, COLUMN_TYPE, COLUMN_DEFAULT, IS_NULLABLE FROM information_schema.COLUMNS"
        " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = :t",
        params={"t": table},
    )
    return {r[0]: tuple(r[1:]) for r in rows}


# --------------------------------------------------------------------------- the bugs as reported


@pytest.mark.parametrize("default", ["current_timestamp", "now()", "current_timestamp()", "CURRENT_TIMESTAMP"])
async def test_bug1_timestamp_defaults_round_trip(log_store: EventStore, mariadb_url: str, default: str) -> None:
    v1 = await append(
        log_store,
        TableCreated(
            table="posts",
            columns=(
                Column(name="id", type="integer", nullable=False),
                Column(name="created", type="timestamp", nullable=False, default=default),
                Column(name="seen", type="mysql:datetime", default=default),
                Column(name="zoned", type="timestamptz", default=default),
            ),
            primary_key=("id",),
        ),
    )
    await forward_and_back(log_store, mariadb_url, v1)
    # as MariaDB reports them: the column's own precision
    await migrate(log_store, req(mariadb_url, v1))
    rows = column_rows(mariadb_url, "posts")
    assert rows["created"][1] == "current_timestamp(6)" and rows["seen"][1] == "current_timestamp()"


async def test_bug1_a_failed_check_leaves_a_way_forward(log_store: EventStore, mariadb_url: str) -> None:
    """A check after the plan that fails (here a native type MariaDB spells its own way) leaves the run
    in progress; the message says what to do, the same run again fails the same way (nothing doubled),
    and ``migrate --fake`` at the version the database is really at moves the marker out of it."""
    v1 = await append(
        log_store,
        TableCreated(
            table="flags",
            columns=(Column(name="id", type="integer", nullable=False), Column(name="on", type="mysql:bool")),
            primary_key=("id",),
        ),
    )
    failed = await migrate(log_store, req(mariadb_url, v1))
    assert failed.status == "failed"
    detail = failed.detail or ""
    assert "migrate --fake" in detail and "run migrate again" in detail, detail
    assert any("flags.on" in d for d in failed.drift), failed.drift

    again = await migrate(log_store, req(mariadb_url, v1))
    assert again.status == "failed" and again.detail == failed.detail

    faked = await migrate(log_store, req(mariadb_url, v1, fake=True))
    assert faked.status == "faked", faked.detail
    target = await open_target(mariadb_url)
    try:
        marker = await target.read_marker("app")
    finally:
        await target.close()
    assert marker is not None and marker.version == v1 and not marker.in_progress
    assert faked.drift and any("flags.on" in d for d in faked.drift)  # the difference is still reported


async def test_bug2_json_columns_round_trip(log_store: EventStore, mariadb_url: str) -> None:
    v1 = await append(
        log_store,
        TableCreated(
            table="docs",
            columns=(
                Column(name="id", type="integer", nullable=False),
                Column(name="body", type="json"),
                Column(name="meta", type="json", nullable=False),
                Column(name="note", type="text"),
            ),
            primary_key=("id",),
            constraints=(Constraint(name="docs_id_pos", kind="check", expression="id > 0"),),
        ),
    )
    v2 = await append(log_store, ColumnAdded(table="docs", column=Column(name="extra", type="json")))
    await forward_and_back(log_store, mariadb_url, v1, v2)
    assert column_rows(mariadb_url, "docs") == {}  # back at 0: the table is gone


async def bug3_history(store: EventStore) -> list[int]:
    """Foreign keys whose index InnoDB swaps for an explicit one on the same columns."""
    v = [
        await append(
            store,
            TableCreated(
                table="users", columns=(Column(name="id", type="integer", nullable=False),), primary_key=("id",)
            ),
        ),
        await append(
            store,
            TableCreated(
                table="orders",
                columns=(
                    Column(name="id", type="integer", nullable=False),
                    Column(name="user_id", type="integer"),
                    Column(name="seq", type="integer", nullable=False),
                ),
            ),
            ConstraintAdded(
                table="orders",
                constraint=Constraint(
                    name="orders_user_fk",
                    kind="foreign_key",
                    columns=("user_id",),
                    references=Reference(table="users", columns=("id",)),
                ),
            ),
        ),
    ]
    v.append(
        await append(store, IndexCreated(table="orders", index=Index(name="orders_user_idx", columns=("user_id",))))
    )
    v.append(
        await append(
            store,
            ConstraintAdded(
                table="orders",
                constraint=Constraint(name="orders_user_seq_key", kind="unique", columns=("user_id", "seq")),
            ),
            ConstraintAdded(
                table="orders",
                constraint=Constraint(
                    name="orders_self_fk",
                    kind="foreign_key",
                    columns=("id",),
                    references=Reference(table="users", columns=("id",)),
                ),
            ),
            PrimaryKeySet(table="orders", columns=("id", "seq")),
        )
    )
    return v


async def test_bug3_keys_sharing_an_index_migrate_back(log_store: EventStore, mariadb_url: str) -> None:
    versions = await bug3_history(log_store)
    await forward_and_back(log_store, mariadb_url, *versions)
    # and step by step back: each undo on its own
    for version in versions:
        assert (await migrate(log_store, req(mariadb_url, version))).status in ("applied", "up_to_date")
    for version in reversed([0, *versions[:-1]]):
        outcome = await migrate(log_store, req(mariadb_url, version, allow_destructive=True))
        assert outcome.status == "applied", (version, outcome.detail, outcome.statements)
        await live_equals_projection(log_store, mariadb_url, version)


def test_bug3_the_undo_gives_the_key_an_index_of_its_own() -> None:
    before = Schema(
        tables={
            "users": Table(
                name="users", columns=(Column(name="id", type="integer", nullable=False),), primary_key=("id",)
            ),
            "orders": Table(
                name="orders",
                columns=(Column(name="id", type="integer"), Column(name="user_id", type="integer")),
                indexes=(Index(name="orders_user_idx", columns=("user_id",)),),
                constraints=(
                    Constraint(
                        name="orders_user_fk",
                        kind="foreign_key",
                        columns=("user_id",),
                        references=Reference(table="users", columns=("id",)),
                    ),
                ),
            ),
        }
    )
    after = before.model_copy(
        update={"tables": {**before.tables, "orders": before.tables["orders"].model_copy(update={"indexes": ()})}}
    )
    assert MYSQL.drop_index(before, after, "orders", "orders_user_idx") == [
        "ALTER TABLE orders DROP INDEX orders_user_idx, ADD INDEX IF NOT EXISTS orders_user_fk (user_id)"
    ]
    # with another index still leading with the key's columns, InnoDB takes that one: a plain drop
    other = Index(name="orders_user_id2", columns=("user_id", "id"))
    with_other = before.model_copy(
        update={
            "tables": {
                **before.tables,
                "orders": before.tables["orders"].model_copy(
                    update={"indexes": (*before.tables["orders"].indexes, other)}
                ),
            }
        }
    )
    still = with_other.model_copy(
        update={"tables": {**before.tables, "orders": before.tables["orders"].model_copy(update={"indexes": (other,)})}}
    )
    assert MYSQL.drop_index(with_other, still, "orders", "orders_user_idx") == ["DROP INDEX orders_user_idx ON orders"]


# --------------------------------------------------------------------------- new fields


async def test_collations_and_character_sets(log_store: EventStore, mariadb_url: str) -> None:
    v1 = await append(
        log_store,
        TableCreated(
            table="names",
            columns=(
                Column(name="id", type="integer", nullable=False),
                Column(name="plain", type="varchar(20)"),
                Column(name="exact", type="varchar(20)", collation="utf8mb4_bin"),
                Column(name="latin", type="varchar(20)", charset="latin1"),
                Column(name="latin_exact", type="text", charset="latin1", collation="latin1_bin"),
                Column(name="by_collation", type="char(3)", collation="latin1_general_ci"),
            ),
            primary_key=("id",),
        ),
    )
    v2 = await append(log_store, ColumnAltered.of("names", "plain", collation="utf8mb4_unicode_ci"))
    v3 = await append(log_store, ColumnAltered.of("names", "exact", collation="utf8mb4_general_ci"))
    await forward_and_back(log_store, mariadb_url, v1, v2, v3)


def test_a_table_made_without_collations_reads_them_back_none(mariadb_url: str) -> None:
    run_sql(mariadb_url, "CREATE TABLE t (a VARCHAR(5), b TEXT, c JSON, d ENUM('x','y')) COLLATE utf8mb4_unicode_ci")
    engine = engine_for(mariadb_url)
    try:
        with engine.connect() as conn:
            live = introspect_mysql(conn)
    finally:
        engine.dispose()
    assert [(c.name, c.collation, c.charset) for c in live.tables["t"].columns] == [
        ("a", None, None),
        ("b", None, None),
        ("c", None, None),
        ("d", None, None),
    ]


async def test_generated_columns(log_store: EventStore, mariadb_url: str) -> None:
    v1 = await append(
        log_store,
        TableCreated(
            table="lines",
            columns=(
                Column(name="id", type="integer", nullable=False),
                Column(name="price", type="numeric(10,2)", nullable=False, default="0"),
                Column(name="qty", type="integer", nullable=False, default="1"),
                Column(name="total", type="numeric(12,2)", generated=Generated(expression="price * qty", stored=True)),
                Column(
                    name="label",
                    type="varchar(40)",
                    generated=Generated(expression="concat(id, '-', qty)", stored=False),
                ),
            ),
            primary_key=("id",),
        ),
    )
    v2 = await append(
        log_store,
        ColumnAdded(
            table="lines",
            column=Column(name="double_qty", type="integer", generated=Generated(expression="qty * 2", stored=False)),
        ),
    )
    await forward_and_back(log_store, mariadb_url, v1, v2)
    await migrate(log_store, req(mariadb_url, v2))
    run_sql(mariadb_url, "INSERT INTO `lines` (id, price, qty) VALUES (1, 2.50, 4)")
    assert run_sql(mariadb_url, "SELECT total, label, double_qty FROM `lines`") == [(10, "1-4", 8)]


async def test_identity_options_mariadb_cannot_hold_are_refused(log_store: EventStore, mariadb_url: str) -> None:
    def table(name: str, options: IdentityOptions) -> TableCreated:
        column = Column(name="id", type="bigint", nullable=False, identity=True, identity_options=options)
        return TableCreated(table=name, columns=(column,), primary_key=("id",))

    # what changes no value is dropped: the cache, and the options at AUTO_INCREMENT's own values
    v1 = await append(log_store, table("harmless", IdentityOptions(cache=20, start=1, increment=1)))
    await forward_and_back(log_store, mariadb_url, v1)
    v2 = await append(log_store, table("always", IdentityOptions(always=True)))
    refused = await migrate(log_store, req(mariadb_url, v2))
    assert refused.status == "refused", refused.detail
    assert "AUTO_INCREMENT has no GENERATED ALWAYS" in (refused.detail or ""), refused.detail
    assert await _tables(mariadb_url) == set()  # refused before anything ran


@pytest.mark.parametrize(
    ("options", "words"),
    [
        (IdentityOptions(increment=5), "no increment (it is 5)"),
        (IdentityOptions(start=100), "no start (it is 100)"),
        (IdentityOptions(minvalue=-5), "no minvalue (it is -5)"),
        (IdentityOptions(maxvalue=10), "no maxvalue (it is 10)"),
        (IdentityOptions(cycle=True), "no cycle"),
    ],
)
def test_each_identity_option_is_named(options: IdentityOptions, words: str) -> None:
    column = Column(name="id", type="bigint", nullable=False, identity=True, identity_options=options)
    (problem,) = mysql_table(Table(name="t", columns=(column,), primary_key=("id",)))
    assert problem == f"column t.id: MariaDB's AUTO_INCREMENT has {words}"


async def _tables(url: str) -> set[str]:
    rows = run_sql(url, "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()")
    return {r[0] for r in rows if not r[0].startswith("schemalog_")}


async def test_index_methods_and_descending_columns(log_store: EventStore, mariadb_url: str) -> None:
    v1 = await append(
        log_store,
        TableCreated(
            table="places",
            columns=(
                Column(name="id", type="integer", nullable=False),
                Column(name="title", type="varchar(100)"),
                Column(name="body", type="text"),
                Column(name="spot", type="mysql:point", nullable=False),
                Column(name="rank", type="integer"),
            ),
            primary_key=("id",),
            indexes=(Index(name="places_text", columns=("title", "body"), method="fulltext"),),
        ),
    )
    v2 = await append(
        log_store,
        IndexCreated(table="places", index=Index(name="places_spot", columns=("spot",), method="spatial")),
        IndexCreated(
            table="places",
            index=Index(
                name="places_rank",
                elements=(IndexElement(column="rank", descending=True), IndexElement(column="title")),
            ),
        ),
        IndexCreated(table="places", index=Index(name="places_btree", columns=("rank",), method="btree")),
    )
    await forward_and_back(log_store, mariadb_url, v1, v2)


@pytest.mark.parametrize(
    ("index", "words"),
    [
        (Index(name="ix", columns=("a",), method="hash"), "hash index"),
        (Index(name="ix", columns=("a",), method="gin"), "gin index"),
        (Index(name="ix", columns=("a",), method="gist"), "gist index"),
        (Index(name="ix", columns=("a",), method="brin"), "brin index"),
        (Index(name="ix", elements=(IndexElement(expression="lower(b)"),)), "expression index"),
        (Index(name="ix", elements=(IndexElement(column="b", opclass="varchar_pattern_ops"),)), "operator classes"),
        (Index(name="ix", columns=("a",), where="a > 0"), "partial index"),
        (Index(name="ix", columns=("a",), include=("b",)), "include columns"),
        (Index(name="ix", columns=("b",), method="fulltext", unique=True), "unique fulltext"),
    ],
)
async def test_indexes_mariadb_cannot_hold_are_refused(
    log_store: EventStore, mariadb_url: str, index: Index, words: str
) -> None:
    v1 = await append(
        log_store,
        TableCreated(
            table="t",
            columns=(Column(name="a", type="integer", nullable=False), Column(name="b", type="varchar(20)")),
            primary_key=("a",),
        ),
        IndexCreated(table="t", index=index),
    )
    refused = await migrate(log_store, req(mariadb_url, v1))
    assert refused.status == "refused", refused.detail
    detail = refused.detail or ""
    assert detail.startswith("mysql cannot hold what this plan makes") and words in detail, detail
    assert await _tables(mariadb_url) == set()  # refused before anything ran


async def test_deferrable_keys_and_named_primary_keys_are_normalized(log_store: EventStore, mariadb_url: str) -> None:
    """MariaDB has no deferrable keys and calls every primary key PRIMARY: the log keeps both, the
    dialect's form drops them, and the database matches that form."""
    v1 = await append(
        log_store,
        TableCreated(
            table="authors",
            columns=(Column(name="id", type="integer", nullable=False),),
            primary_key=("id",),
            primary_key_name="authors_pk",
        ),
        TableCreated(
            table="books",
            columns=(Column(name="id", type="integer", nullable=False), Column(name="author", type="integer")),
            primary_key=("id",),
            constraints=(
                Constraint(
                    name="books_author_fk",
                    kind="foreign_key",
                    columns=("author",),
                    references=Reference(table="authors", columns=("id",)),
                    deferrable=True,
                    initially_deferred=True,
                    on_delete="restrict",
                ),
            ),
        ),
    )
    await forward_and_back(log_store, mariadb_url, v1)
    _, schema = await Projector(log_store).schema("app", HEAD)
    normal = MYSQL.normalize(schema)
    assert normal.tables["authors"].primary_key_name is None
    (fk,) = normal.tables["books"].constraints
    assert (fk.deferrable, fk.initially_deferred, fk.on_delete) == (False, False, None)


async def test_enum_types_are_inline_enums(log_store: EventStore, mariadb_url: str) -> None:
    v1 = await append(
        log_store,
        EnumCreated(name="mood", values=("happy", "sad", "it's ok")),
        TableCreated(
            table="people",
            columns=(
                Column(name="id", type="integer", nullable=False),
                Column(name="mood", type="enum:mood", nullable=False, default="'happy'"),
                Column(name="was", type="enum:mood"),
            ),
            primary_key=("id",),
        ),
    )
    v2 = await append(log_store, EnumValueAdded(name="mood", value="calm", before="sad"))
    v3 = await append(log_store, EnumValueAdded(name="mood", value="angry"))
    v4 = await append(log_store, EnumValueDropped(name="mood", value="sad"))
    await forward_and_back(log_store, mariadb_url, v1, v2, v3)
    await migrate(log_store, req(mariadb_url, v3))
    run_sql(mariadb_url, "INSERT INTO people (id, mood, was) VALUES (1, 'calm', 'angry')")
    assert column_rows(mariadb_url, "people")["mood"][0] == "enum('happy','calm','sad','it''s ok','angry')"
    run_sql(mariadb_url, "DELETE FROM people")  # going back drops 'angry': no row may hold it then
    await forward_and_back(log_store, mariadb_url, v4)


def test_enum_columns_read_back_as_their_type(mariadb_url: str) -> None:
    """Without the log: the dialect's script for a schema with an enum type, read back, equals the
    schema in the dialect's form (enum:NAME there is MariaDB's ENUM of the type's values)."""
    schema = Schema(
        tables={
            "t": Table(
                name="t",
                columns=(Column(name="id", type="integer", nullable=False), Column(name="e", type="enum:e")),
                primary_key=("id",),
            )
        },
        enums={"e": EnumType(name="e", values=("a", "b c", "d'e"))},
    )
    live = build_and_read(mariadb_url, schema)
    assert normalized(live) == normalized(MYSQL.normalize(schema))
    grown = schema.model_copy(update={"enums": {"e": EnumType(name="e", values=("a", "b c", "d'e", "f"))}})
    statements = MYSQL.add_enum_value(schema, grown, "e", "f", None)
    assert statements == ["ALTER TABLE t MODIFY COLUMN e ENUM('a','b c','d''e','f')"]
    assert MYSQL.create_enum(Schema(), schema, "e") == [] and MYSQL.drop_enum(schema, Schema(), "e") == []


async def test_fills_give_the_rows_already_there_a_value(log_store: EventStore, mariadb_url: str) -> None:
    v1 = await append(
        log_store,
        TableCreated(
            table="items",
            columns=(Column(name="id", type="integer", nullable=False), Column(name="note", type="varchar(20)")),
            primary_key=("id",),
        ),
    )
    v2 = await append(
        log_store,
        ColumnAdded(table="items", column=Column(name="code", type="varchar(10)", nullable=False), fill="'none'"),
        ColumnAdded(table="items", column=Column(name="qty", type="integer", nullable=False), fill="7"),
    )
    v3 = await append(log_store, ColumnAltered(table="items", column="note", nullable=False, fill="'empty'"))
    assert (await migrate(log_store, req(mariadb_url, v1))).status == "applied"
    run_sql(mariadb_url, "INSERT INTO items (id, note) VALUES (1, 'a'), (2, NULL)")
    filled = await migrate(log_store, req(mariadb_url, v3, allow_destructive=True))
    assert filled.status == "applied", filled.detail
    await live_equals_projection(log_store, mariadb_url, v3)
    assert run_sql(mariadb_url, "SELECT id, note, code, qty FROM items ORDER BY id") == [
        (1, "a", "none", 7),
        (2, "empty", "none", 7),
    ]
    rows = column_rows(mariadb_url, "items")
    assert rows["code"][1:] == (None, "NO") and rows["qty"][1:] == (None, "NO")  # no default kept
    await forward_and_back(log_store, mariadb_url, v1, v2, v3)


def test_statements_for_fills_and_collations() -> None:
    before = Schema(tables={"t": Table(name="t", columns=(Column(name="id", type="integer", nullable=False),))})
    added = Column(name="c", type="varchar(5)", nullable=False)
    after = Schema(tables={"t": Table(name="t", columns=(*before.tables["t"].columns, added))})
    assert MYSQL.add_column(before, after, "t", "c", fill="'x'") == [
        "ALTER TABLE t ADD COLUMN c VARCHAR(5) NOT NULL DEFAULT 'x'",
        "ALTER TABLE t ALTER COLUMN c DROP DEFAULT",
    ]
    collated = Column(name="c", type="varchar(5)", nullable=False, collation="utf8mb4_bin")
    changed = Schema(tables={"t": Table(name="t", columns=(*before.tables["t"].columns, collated))})
    assert MYSQL.alter_column(after, changed, "t", "c", {"collation": "utf8mb4_bin"}) == [
        "ALTER TABLE t MODIFY COLUMN c VARCHAR(5) COLLATE utf8mb4_bin NOT NULL"
    ]
    assert MYSQL.alter_column(after, changed, "t", "c", {"nullable": False}, fill="'y'")[0] == (
        "UPDATE t SET c = 'y' WHERE c IS NULL"
    )


def test_the_introspection_reads_information_schema_only(mariadb_url: str) -> None:
    """No SHOW CREATE TABLE (a round trip a table): the whole schema in a fixed number of queries (the views
    among them: one query, information_schema.VIEWS; the triggers: one query, information_schema.TRIGGERS, no
    SHOW CREATE TRIGGER a trigger)."""
    run_sql(mariadb_url, *(f"CREATE TABLE t{i} (id INT PRIMARY KEY, v INT, KEY v{i} (v))" for i in range(30)))
    run_sql(mariadb_url, *(f"CREATE TRIGGER g{i} BEFORE INSERT ON t{i} FOR EACH ROW SET NEW.v = 1" for i in range(5)))
    engine = engine_for(mariadb_url)
    seen: list[str] = []
    try:
        with engine.connect() as conn:
            sa.event.listen(conn, "before_cursor_execute", lambda *a: seen.append(a[2]))
            live = introspect_mysql(conn)
    finally:
        engine.dispose()
    assert len(live.tables) == 30 and len(live.triggers) == 5 and len(seen) <= 10, seen


async def test_a_check_named_like_its_column_is_the_columns(log_store: EventStore, mariadb_url: str) -> None:
    """MariaDB names a column's own check after the column (Django: ``action_flag ... CHECK (action_flag >= 0)``):
    such a check is written with its column, created, added, kept through a MODIFY and dropped, so that
    information_schema and SHOW CREATE TABLE (SQLAlchemy's Inspector) both see it as MariaDB made it."""
    flag = Column(name="flag", type="mysql:smallint(5) unsigned", nullable=False)
    v1 = await append(
        log_store,
        TableCreated(
            table="log",
            columns=(Column(name="id", type="mysql:int(10) unsigned", nullable=False, identity=True), flag),
            primary_key=("id",),
            constraints=(Constraint(name="flag", kind="check", expression="`flag` >= 0"),),
        ),
    )
    v2 = await append(log_store, ColumnAdded(table="log", column=Column(name="n", type="integer")))
    v3 = await append(
        log_store, ConstraintAdded(table="log", constraint=Constraint(name="n", kind="check", expression="`n` < 9"))
    )
    v4 = await append(log_store, ColumnAltered.of("log", "n", type="bigint"))
    v5 = await append(log_store, ConstraintDropped(table="log", name="flag"))
    for version, levels in ((v1, {"flag"}), (v3, {"flag", "n"}), (v4, {"flag", "n"}), (v5, {"n"})):
        await migrate(log_store, req(mariadb_url, version))
        await live_equals_projection(log_store, mariadb_url, version)
        rows = run_sql(
            mariadb_url,
            "SELECT CONSTRAINT_NAME, LEVEL FROM information_schema.CHECK_CONSTRAINTS"
            " WHERE CONSTRAINT_SCHEMA = DATABASE() AND TABLE_NAME = 'log'",
        )
        assert {(name, level) for name, level in rows} == {(name, "Column") for name in levels}, version
        engine = engine_for(mariadb_url)
        try:
            with engine.connect() as conn:
                assert sa.inspect(conn).get_check_constraints("log") == []  # none at table level
        finally:
            engine.dispose()
    await forward_and_back(log_store, mariadb_url, v1, v2, v3, v4, v5)


# --------------------------------------------------------------------------- ON UPDATE


def _stamped(stamp: str = "mysql:timestamp") -> TableCreated:
    return TableCreated(
        table="films",
        columns=(
            Column(name="id", type="integer", nullable=False),
            Column(name="title", type="varchar(40)"),
            Column(
                name="last_update",
                type=stamp,
                nullable=False,
                default="current_timestamp",
                on_update="current_timestamp",
            ),
            Column(name="seen", type="timestamp", on_update="now()"),  # no default to follow
        ),
        primary_key=("id",),
    )


async def test_on_update_round_trips_and_is_what_an_update_does(log_store: EventStore, mariadb_url: str) -> None:
    v1 = await append(log_store, _stamped())
    v2 = await append(log_store, ColumnAltered.of("films", "seen", on_update=None))
    v3 = await append(
        log_store,
        ColumnAdded(
            table="films", column=Column(name="touched", type="mysql:datetime", on_update="current_timestamp()")
        ),
        ColumnAltered.of("films", "seen", on_update="current_timestamp"),
    )
    await forward_and_back(log_store, mariadb_url, v1, v2, v3)
    assert (await migrate(log_store, req(mariadb_url, v3))).status == "applied"
    extra = {
        r[0]: r[1]
        for r in run_sql(
            mariadb_url,
            "SELECT COLUMN_NAME, EXTRA FROM information_schema.COLUMNS"
            " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'films'",
        )
    }
    assert extra["last_update"].lower() == "on update current_timestamp()"
    assert extra["seen"].lower() == "on update current_timestamp(6)" and extra["title"] == ""
    # what it means: an update of the row sets the column, whatever it held
    run_sql(mariadb_url, "INSERT INTO films (id, title, last_update, seen) VALUES (1, 'a', '2000-01-01', '2000-01-01')")
    run_sql(mariadb_url, "UPDATE films SET title = 'b' WHERE id = 1")
    [(last_update, seen, touched)] = run_sql(mariadb_url, "SELECT last_update, seen, touched FROM films")
    assert last_update.year > 2000 and seen.year > 2000 and touched is not None
    # going back to v2 takes the ON UPDATE off seen again
    assert (await migrate(log_store, req(mariadb_url, v2, allow_destructive=True))).status == "applied"
    await live_equals_projection(log_store, mariadb_url, v2)
    run_sql(mariadb_url, "UPDATE films SET seen = '2000-01-01'", "UPDATE films SET title = 'c'")
    assert run_sql(mariadb_url, "SELECT year(seen) FROM films") == [(2000,)]


def test_statements_for_on_update() -> None:
    schema = Schema(tables={"films": Table(name="films", columns=_stamped().columns, primary_key=("id",))})
    [create] = MYSQL.create_table(schema, "films")
    assert "last_update TIMESTAMP NOT NULL DEFAULT current_timestamp ON UPDATE current_timestamp," in create, create
    assert "seen DATETIME(6) ON UPDATE now()," in create, create
    assert MYSQL.alter_column(schema, schema, "films", "last_update", {"on_update": "current_timestamp"}) == [
        "ALTER TABLE films MODIFY COLUMN last_update TIMESTAMP NOT NULL DEFAULT current_timestamp"
        " ON UPDATE current_timestamp"
    ]


@pytest.mark.parametrize("dialect", ["postgresql", "sqlite"])
def test_on_update_is_refused_where_it_would_need_a_trigger(dialect: str) -> None:
    events: list[tuple[int, Any]] = [
        (1, _stamped("timestamp")),
        (2, ColumnAltered.of("films", "title", on_update="current_timestamp")),
        (3, ColumnAltered.of("films", "title", on_update=None)),
        (4, ColumnAdded(table="films", column=Column(name="x", type="timestamp", on_update="current_timestamp"))),
    ]
    problems = plan_problems(get_dialect(dialect), State(), events)
    assert problems == [
        f"v1 (table_created): column films.last_update: on_update 'current_timestamp' (MariaDB's ON UPDATE) has no"
        f" form in {dialect} (it would need a trigger)",
        f"v1 (table_created): column films.seen: on_update 'now()' (MariaDB's ON UPDATE) has no form in {dialect}"
        " (it would need a trigger)",
        f"v2 (column_altered): column films.title: on_update 'current_timestamp' (MariaDB's ON UPDATE) has no form"
        f" in {dialect} (it would need a trigger)",
        f"v4 (column_added): column films.x: on_update 'current_timestamp' (MariaDB's ON UPDATE) has no form in"
        f" {dialect} (it would need a trigger)",
    ]
    assert plan_problems(MYSQL, State(), events) == []


async def test_on_update_is_refused_before_any_ddl_on_sqlite(log_store: EventStore, tmp_path: Path) -> None:
    target = f"sqlite:///{tmp_path / 'target.db'}"
    other = TableCreated(table="other", columns=(Column(name="a", type="integer"),))
    v2 = await append(log_store, other, _stamped("timestamp"))
    refused = await migrate(log_store, req(target, v2))
    assert refused.status == "refused", refused.detail
    assert "column films.last_update: on_update 'current_timestamp'" in (refused.detail or ""), refused.detail
    assert "v2 (table_created): column films.last_update" in (refused.detail or ""), refused.detail
    assert run_sql(target, "SELECT name FROM sqlite_master WHERE name NOT LIKE 'schemalog%'") == []


def test_models_carry_on_update_as_sqlalchemy_writes_it() -> None:
    """SQLAlchemy's MySQL documentation puts ON UPDATE in the server default's text (server_onupdate
    writes no DDL); a server_onupdate that gives its expression says it too."""
    md = sa.MetaData()
    sa.Table(
        "films",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column(
            "last_update",
            sa.DateTime,
            nullable=False,
            server_default=sa.text("CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP"),
            server_onupdate=sa.FetchedValue(),
        ),
        sa.Column("seen", sa.DateTime, server_onupdate=sa.DefaultClause(sa.text("now()"), for_update=True)),
        sa.Column("note", sa.Text, server_default=sa.text("'x ON UPDATE y'")),  # a literal, left whole
    )
    columns = {c.name: c for c in metadata_schema(md).tables["films"].columns}
    assert (columns["last_update"].default, columns["last_update"].on_update) == ("current_timestamp",) * 2
    assert (columns["seen"].default, columns["seen"].on_update) == (None, "current_timestamp")
    assert (columns["note"].default, columns["note"].on_update) == ("'x ON UPDATE y'", None)
