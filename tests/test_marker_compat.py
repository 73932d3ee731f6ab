"""A database migrated before the catalogue grew still matches its marker.

The marker keeps a digest of the state it is at (service.reconciler.marker.state_hash). The digest below
was computed by schemalog as of commit 1934b78, before collations, generated columns, index elements,
deferrable constraints, primary key names and enum types existed: the same state must give the same digest
now, or every database migrated then would be reported as drifted after an upgrade.
"""

from __future__ import annotations

from events.model import Column, Constraint, EnumType, Index, Reference, Schema, Table
from service.reconciler.marker import state_hash

BEFORE = "2b5ae96906b65a897c512ea79db0a3f8bac5f0b1f3a7b14f320eb6571919ac3c"


def sample(**column_extra: object) -> Schema:
    return Schema(
        tables={
            "users": Table(
                name="users",
                columns=(
                    Column(name="id", type="bigint", nullable=False, identity=True),
                    Column(
                        name="mail", type="varchar(100)", nullable=False, default="'x'", comment="c", **column_extra
                    ),
                ),
                primary_key=("id",),
                indexes=(Index(name="users_mail", columns=("mail",), unique=True),),
            ),
            "orders": Table(
                name="orders",
                columns=(Column(name="id", type="integer", nullable=False), Column(name="user_id", type="bigint")),
                primary_key=("id",),
                constraints=(
                    Constraint(
                        name="orders_user_fk",
                        kind="foreign_key",
                        columns=("user_id",),
                        references=Reference(table="users", columns=("id",)),
                        on_delete="cascade",
                    ),
                    Constraint(name="orders_id_check", kind="check", expression="id > 0"),
                ),
            ),
        }
    )


def test_a_state_of_old_fields_keeps_its_digest() -> None:
    assert state_hash(sample()) == BEFORE


def test_new_fields_and_enum_types_change_the_digest() -> None:
    assert state_hash(sample(collation="C")) != BEFORE
    with_enum = sample().model_copy(update={"enums": {"mood": EnumType(name="mood", values=("a", "b"))}})
    assert state_hash(with_enum) not in (BEFORE, state_hash(sample(collation="C")))
