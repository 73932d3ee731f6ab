"""Fast decoding of what the log itself wrote: events and snapshot bodies, without re-validation.

Everything in the log was validated on its way in (events.log) and is covered
by the hash chain (``verify``); snapshots are checked against their digest
before use. Re-running pydantic's validation on every replay would cost more
than the fold itself, so these build the frozen models directly
(``model_construct``) from the stored public form, with the same defaults.
Anything unexpected in the data falls back to full validation.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar, cast

from pydantic import BaseModel

from events.catalog import (
    EVENT_ADAPTER,
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
    TagCreated,
)
from events.model import Column, Constraint, Index, Reference, Schema, Table, parse_type

M = TypeVar("M", bound=BaseModel)


def construct(cls: type[M], values: dict[str, Any], fields_set: set[str] | None = None) -> M:
    """What ``model_construct`` does, without its per-call overhead: ``values`` has every field.

    For data already known to be valid (the log's own, or a database catalogue read into schema objects).
    """
    obj = object.__new__(cls)
    object.__setattr__(obj, "__dict__", values)
    object.__setattr__(obj, "__pydantic_fields_set__", fields_set if fields_set is not None else set(values))
    object.__setattr__(obj, "__pydantic_extra__", None)
    object.__setattr__(obj, "__pydantic_private__", None)
    return obj


_COLUMN_KEYS = frozenset({"name", "type", "nullable", "default", "identity", "comment"})


def column(data: dict[str, Any]) -> Column:
    if not _COLUMN_KEYS.issuperset(data):
        raise KeyError("unexpected column field")
    return construct(
        Column,
        {
            "name": data["name"],
            "type": parse_type(data["type"]),
            "nullable": data.get("nullable", True),
            "default": data.get("default"),
            "identity": data.get("identity", False),
            "comment": data.get("comment"),
        },
    )


def index(data: dict[str, Any]) -> Index:
    return construct(
        Index, {"name": data["name"], "columns": tuple(data["columns"]), "unique": data.get("unique", False)}
    )


def constraint(data: dict[str, Any]) -> Constraint:
    ref = data.get("references")
    return construct(
        Constraint,
        {
            "name": data["name"],
            "kind": data["kind"],
            "columns": tuple(data.get("columns", ())),
            "expression": data.get("expression"),
            "references": construct(Reference, {"table": ref["table"], "columns": tuple(ref["columns"])})
            if ref
            else None,
            "on_delete": data.get("on_delete"),
            "on_update": data.get("on_update"),
        },
    )


def table(data: dict[str, Any]) -> Table:
    return construct(
        Table,
        {
            "name": data["name"],
            "columns": tuple(column(c) for c in data["columns"]),
            "primary_key": tuple(data.get("primary_key", ())),
            "indexes": tuple(index(i) for i in data.get("indexes", ())),
            "constraints": tuple(constraint(c) for c in data.get("constraints", ())),
            "comment": data.get("comment"),
        },
    )


def schema(data: dict[str, Any]) -> Schema:
    return Schema.model_construct(tables={name: table(t) for name, t in data.items()})


def _altered(d: dict[str, Any]) -> ColumnAltered:
    present = {k for k in ("new_type", "nullable", "default", "comment") if k in d}
    return ColumnAltered.model_construct(
        _fields_set={"type", "table", "column", *present},
        table=d["table"],
        column=d["column"],
        new_type=parse_type(d["new_type"]) if "new_type" in d else None,
        nullable=d.get("nullable"),
        default=d.get("default"),
        comment=d.get("comment"),
    )


_BUILDERS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "table_created": lambda d: TableCreated.model_construct(
        table=d["table"],
        columns=tuple(column(c) for c in d["columns"]),
        primary_key=tuple(d.get("primary_key", ())),
        comment=d.get("comment"),
        indexes=tuple(index(i) for i in d.get("indexes", ())),
        constraints=tuple(constraint(c) for c in d.get("constraints", ())),
    ),
    "table_dropped": lambda d: TableDropped.model_construct(table=d["table"]),
    "table_renamed": lambda d: TableRenamed.model_construct(table=d["table"], new_name=d["new_name"]),
    "table_altered": lambda d: TableAltered.model_construct(table=d["table"], comment=d.get("comment")),
    "column_added": lambda d: ColumnAdded.model_construct(table=d["table"], column=column(d["column"])),
    "column_dropped": lambda d: ColumnDropped.model_construct(table=d["table"], column=d["column"]),
    "column_renamed": lambda d: ColumnRenamed.model_construct(
        table=d["table"], column=d["column"], new_name=d["new_name"]
    ),
    "column_altered": _altered,
    "index_created": lambda d: IndexCreated.model_construct(table=d["table"], index=index(d["index"])),
    "index_dropped": lambda d: IndexDropped.model_construct(table=d["table"], name=d["name"]),
    "constraint_added": lambda d: ConstraintAdded.model_construct(
        table=d["table"], constraint=constraint(d["constraint"])
    ),
    "constraint_dropped": lambda d: ConstraintDropped.model_construct(table=d["table"], name=d["name"]),
    "primary_key_set": lambda d: PrimaryKeySet.model_construct(table=d["table"], columns=tuple(d.get("columns", ()))),
    "tag_created": lambda d: TagCreated.model_construct(tag=d["tag"], version=d["version"]),
}


def event_from_dict(data: dict[str, Any]) -> Event:
    builder = _BUILDERS.get(data.get("type", ""))
    if builder is not None:
        try:
            return cast(Event, builder(data))
        except (KeyError, TypeError, ValueError, AttributeError):
            pass
    return EVENT_ADAPTER.validate_python(data)  # anything else: the full validation (and its errors)


def event_from_text(text: str) -> Event:
    return event_from_dict(json.loads(text))
