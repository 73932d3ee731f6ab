"""Fast decoding of what the log itself wrote: events and snapshot bodies, without re-validation.

Everything in the log was validated on its way in (events.log) and is covered
by the hash chain (``verify``); snapshots are checked against their digest
before use. Re-running pydantic's validation on every replay would cost more
than the fold itself, so these build the frozen models directly
(``events.model.construct``) from the stored public form, with the same defaults.
Anything unexpected in the data falls back to full validation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import orjson
from pydantic import BaseModel

from events.auth import AUTH_TYPES
from events.catalog import (
    ALTERED_FIELDS,
    EVENT_ADAPTER,
    EVENT_TYPES,
    ColumnAdded,
    ColumnAltered,
    ColumnDropped,
    ColumnRenamed,
    ConstraintAdded,
    ConstraintDropped,
    DomainCreated,
    DomainDropped,
    DriftFound,
    EnumCreated,
    EnumDropped,
    EnumValueAdded,
    EnumValueDropped,
    Event,
    ExtensionCreated,
    ExtensionDropped,
    IndexCreated,
    IndexDropped,
    MigrationApplied,
    MigrationFailed,
    MigrationFaked,
    PrimaryKeySet,
    RoutineCreated,
    RoutineDropped,
    RoutineReplaced,
    SqlRun,
    TableAltered,
    TableCreated,
    TableDropped,
    TableRenamed,
    TagCreated,
    TriggerCreated,
    TriggerDropped,
    TriggerReplaced,
    ViewCreated,
    ViewDropped,
    ViewReplaced,
)
from events.expressions import STORED
from events.fleet import FLEET_TYPES
from events.model import (
    Column,
    Constraint,
    DomainCheck,
    DomainType,
    EnumType,
    Extension,
    Generated,
    IdentityOptions,
    Index,
    IndexElement,
    PartitionOf,
    Reference,
    Routine,
    Schema,
    Table,
    Trigger,
    View,
    construct,
    parse_type,
)

# Each object's every field with its default (None: required); a stored form leaves defaults out.
_COLUMN_DEFAULTS: dict[str, Any] = {
    "name": None,  # required
    "type": None,  # required
    "nullable": True,
    "default": None,
    "identity": False,
    "comment": None,
    "collation": None,
    "charset": None,
    "generated": None,
    "identity_options": None,
    "on_update": None,
}
_IDENTITY_DEFAULTS: dict[str, Any] = {
    "always": False,
    "start": None,
    "increment": None,
    "minvalue": None,
    "maxvalue": None,
    "cycle": False,
    "cache": None,
    "sequence": None,
    "owned": False,
}


def _whole(defaults: dict[str, Any], data: dict[str, Any], what: str) -> dict[str, Any]:
    values = {**defaults, **data}
    if len(values) != len(defaults):
        raise KeyError(f"unexpected {what} field")
    return values


def identity_options(data: dict[str, Any] | None) -> IdentityOptions | None:
    if data is None:
        return None
    return construct(IdentityOptions, _whole(_IDENTITY_DEFAULTS, data, "identity option"))


def generated(data: dict[str, Any] | None) -> Generated | None:
    if data is None:
        return None
    return construct(Generated, {"expression": data["expression"], "stored": data.get("stored", True)})


_COLUMN_FIELDS = set(_COLUMN_DEFAULTS)
"""The fields set of every column built here (all of them): one set shared by all, never changed in place
(pydantic copies it to change it: ``model_copy``, ``evolve``), instead of a set of eleven names per column."""


def column(data: dict[str, Any]) -> Column:
    values = _whole(_COLUMN_DEFAULTS, data, "column")
    if values["name"] is None:
        raise KeyError("missing column name")
    values["type"] = parse_type(data["type"])
    if values["generated"] is not None:
        values["generated"] = generated(values["generated"])
    if values["identity_options"] is not None:
        values["identity_options"] = identity_options(values["identity_options"])
    return construct(Column, values, _COLUMN_FIELDS)


def _shared_column(data: dict[str, Any], seen: dict[tuple[tuple[str, Any], ...], Column]) -> Column:
    """``column(data)``, one object for every column of the same stored form: a schema object is immutable,
    and the same column (``id bigint not null``, ``created_at timestamptz default now()``) recurs in table
    after table. A form with a nested object (generated, identity options) is built each time."""
    key = tuple(data.items())
    try:
        found = seen.get(key)
    except TypeError:  # a nested dict: not hashable
        return column(data)
    if found is None:
        found = seen[key] = column(data)
    return found


def element(data: dict[str, Any]) -> IndexElement:
    return construct(
        IndexElement,
        {
            "column": data.get("column"),
            "expression": data.get("expression"),
            "opclass": data.get("opclass"),
            "descending": data.get("descending", False),
        },
    )


# the same, for the other objects built here by the thousand (each is given every one of its fields)
_INDEX_FIELDS = set(Index.model_fields)
_CONSTRAINT_FIELDS = set(Constraint.model_fields)
_REFERENCE_FIELDS = set(Reference.model_fields)
_TABLE_FIELDS = set(Table.model_fields)


def index(data: dict[str, Any]) -> Index:
    return construct(
        Index,
        {
            "name": data["name"],
            "columns": tuple(data.get("columns", ())),
            "unique": data.get("unique", False),
            "method": data.get("method"),
            "elements": tuple(element(e) for e in data.get("elements", ())),
            "where": data.get("where"),
            "include": tuple(data.get("include", ())),
        },
        _INDEX_FIELDS,
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
            "references": construct(
                Reference, {"table": ref["table"], "columns": tuple(ref["columns"])}, _REFERENCE_FIELDS
            )
            if ref
            else None,
            "on_delete": data.get("on_delete"),
            "on_update": data.get("on_update"),
            "deferrable": data.get("deferrable", False),
            "initially_deferred": data.get("initially_deferred", False),
            "anonymous": data.get("anonymous", False),
        },
        _CONSTRAINT_FIELDS,
    )


def _partition_of(data: dict[str, Any] | None) -> PartitionOf | None:
    return None if data is None else construct(PartitionOf, {"parent": data["parent"], "bound": data["bound"]})


def table(data: dict[str, Any], seen: dict[tuple[tuple[str, Any], ...], Column] | None = None) -> Table:
    """``seen``: the columns built so far, shared with the tables decoded after this one (see ``schema``)."""
    if seen is None:
        columns = tuple(column(c) for c in data["columns"])
    else:
        columns = tuple(_shared_column(c, seen) for c in data["columns"])
    return construct(
        Table,
        {
            "name": data["name"],
            "columns": columns,
            "primary_key": tuple(data.get("primary_key", ())),
            "indexes": tuple(index(i) for i in data.get("indexes", ())),
            "constraints": tuple(constraint(c) for c in data.get("constraints", ())),
            "comment": data.get("comment"),
            "primary_key_name": data.get("primary_key_name"),
            "partition_by": data.get("partition_by"),
            "partition_of": _partition_of(data.get("partition_of")),
        },
        _TABLE_FIELDS,
    )


def enum(data: dict[str, Any]) -> EnumType:
    return construct(EnumType, {"name": data["name"], "values": tuple(data["values"])})


def domain_checks(data: list[dict[str, Any]] | None) -> tuple[DomainCheck, ...]:
    return tuple(construct(DomainCheck, {"name": c["name"], "expression": c["expression"]}) for c in data or ())


def domain(data: dict[str, Any]) -> DomainType:
    return construct(
        DomainType,
        {
            "name": data["name"],
            "type": parse_type(data["type"]),
            "nullable": data.get("nullable", True),
            "default": data.get("default"),
            "checks": domain_checks(data.get("checks")),
        },
    )


def view(data: dict[str, Any]) -> View:
    return construct(
        View,
        {
            "name": data["name"],
            "definitions": dict(data["definitions"]),
            "materialized": data.get("materialized", False),
            "uses": tuple(data.get("uses", ())),
            "columns": tuple(data.get("columns", ())),
            "security": data.get("security"),
        },
    )


def schema(
    tables: dict[str, Any],
    enums: dict[str, Any] | None = None,
    domains: dict[str, Any] | None = None,
    views: dict[str, Any] | None = None,
    extensions: dict[str, Any] | None = None,
    routines: dict[str, Any] | None = None,
    triggers: dict[str, Any] | None = None,
) -> Schema:
    """A schema from its public form: tables by name (and enum types, domains and views by name)."""
    seen: dict[tuple[tuple[str, Any], ...], Column] = {}  # equal columns built once (immutable: shared)
    return Schema.model_construct(
        tables={name: table(t, seen) for name, t in tables.items()},
        enums={name: enum(e) for name, e in (enums or {}).items()},
        domains={name: domain(d) for name, d in (domains or {}).items()},
        views={name: view(v) for name, v in (views or {}).items()},
        extensions={
            name: construct(Extension, {"name": e["name"], "schema_name": e.get("schema_name")})
            for name, e in (extensions or {}).items()
        },
        routines={key: _routine(r) for key, r in (routines or {}).items()},
        triggers={key: _trigger(t) for key, t in (triggers or {}).items()},
    )


def _routine(d: dict[str, Any]) -> Routine:
    return construct(
        Routine,
        {
            "name": d["name"],
            "kind": d.get("kind", "function"),
            "signature": d.get("signature", ""),
            "definitions": dict(d["definitions"]),
            "uses": tuple(d.get("uses", ())),
        },
    )


def _trigger(d: dict[str, Any]) -> Trigger:
    return construct(
        Trigger,
        {
            "name": d["name"],
            "table": d["table"],
            "definitions": dict(d["definitions"]),
            "uses": tuple(d.get("uses", ())),
        },
    )


E = TypeVar("E", bound=BaseModel)

_TYPE_NAMES: dict[type[BaseModel], str] = {cls: name for name, cls in EVENT_TYPES.items()}


def _event(cls: type[E], values: dict[str, Any], fields_set: set[str] | None = None) -> E:
    """An event from every one of its fields but ``type`` (which is the class's own)."""
    values["type"] = _TYPE_NAMES[cls]
    return construct(cls, values, fields_set)


def _altered(d: dict[str, Any]) -> ColumnAltered:
    present = {k for k in ALTERED_FIELDS if k in d}
    return _event(
        ColumnAltered,
        {
            "table": d["table"],
            "column": d["column"],
            "new_type": parse_type(d["new_type"]) if "new_type" in d else None,
            "nullable": d.get("nullable"),
            "default": d.get("default"),
            "comment": d.get("comment"),
            "collation": d.get("collation"),
            "charset": d.get("charset"),
            "identity_options": identity_options(d.get("identity_options")),
            "on_update": d.get("on_update"),
            "fill": d.get("fill"),
        },
        {"type", "table", "column", *present, *(("fill",) if "fill" in d else ())},
    )


def _steps(statements: dict[str, Any] | None) -> dict[str, tuple[str, ...]] | None:
    return None if statements is None else {dialect: tuple(texts) for dialect, texts in statements.items()}


def _outcome(cls: type[E], d: dict[str, Any], **own: Any) -> E:
    """A reconciler outcome: the fields every outcome has, and the class's ``own`` ones (with defaults)."""
    values = {
        "database": d["database"],
        "stream": d["stream"],
        "from_version": d["from_version"],
        "to_version": d["to_version"],
        "statements": tuple(d.get("statements", ())),
        "duration_ms": d.get("duration_ms", 0),
        "detail": d.get("detail"),
        "replica": d.get("replica"),
        "lease_epoch": d.get("lease_epoch"),
        **own,
    }
    return _event(cls, values)


_BUILDERS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "table_created": lambda d: _event(
        TableCreated,
        {
            "table": d["table"],
            "columns": tuple(column(c) for c in d["columns"]),
            "primary_key": tuple(d.get("primary_key", ())),
            "comment": d.get("comment"),
            "indexes": tuple(index(i) for i in d.get("indexes", ())),
            "constraints": tuple(constraint(c) for c in d.get("constraints", ())),
            "primary_key_name": d.get("primary_key_name"),
            "partition_by": d.get("partition_by"),
            "partition_of": _partition_of(d.get("partition_of")),
        },
    ),
    "table_dropped": lambda d: _event(TableDropped, {"table": d["table"]}),
    "table_renamed": lambda d: _event(TableRenamed, {"table": d["table"], "new_name": d["new_name"]}),
    "table_altered": lambda d: _event(TableAltered, {"table": d["table"], "comment": d.get("comment")}),
    "column_added": lambda d: _event(
        ColumnAdded, {"table": d["table"], "column": column(d["column"]), "fill": d.get("fill")}
    ),
    "column_dropped": lambda d: _event(ColumnDropped, {"table": d["table"], "column": d["column"]}),
    "column_renamed": lambda d: _event(
        ColumnRenamed, {"table": d["table"], "column": d["column"], "new_name": d["new_name"]}
    ),
    "column_altered": _altered,
    "index_created": lambda d: _event(IndexCreated, {"table": d["table"], "index": index(d["index"])}),
    "index_dropped": lambda d: _event(IndexDropped, {"table": d["table"], "name": d["name"]}),
    "constraint_added": lambda d: _event(
        ConstraintAdded, {"table": d["table"], "constraint": constraint(d["constraint"])}
    ),
    "constraint_dropped": lambda d: _event(ConstraintDropped, {"table": d["table"], "name": d["name"]}),
    "primary_key_set": lambda d: _event(
        PrimaryKeySet, {"table": d["table"], "columns": tuple(d.get("columns", ())), "name": d.get("name")}
    ),
    "enum_created": lambda d: _event(EnumCreated, {"name": d["name"], "values": tuple(d["values"])}),
    "enum_value_added": lambda d: _event(
        EnumValueAdded, {"name": d["name"], "value": d["value"], "before": d.get("before")}
    ),
    "enum_value_dropped": lambda d: _event(EnumValueDropped, {"name": d["name"], "value": d["value"]}),
    "enum_dropped": lambda d: _event(EnumDropped, {"name": d["name"]}),
    "domain_created": lambda d: _event(
        DomainCreated,
        {
            "name": d["name"],
            "base": parse_type(d["base"]),
            "nullable": d.get("nullable", True),
            "default": d.get("default"),
            "checks": domain_checks(d.get("checks")),
        },
    ),
    "domain_dropped": lambda d: _event(DomainDropped, {"name": d["name"]}),
    "view_created": lambda d: _event(
        ViewCreated,
        {
            "name": d["name"],
            "definitions": dict(d["definitions"]),
            "uses": tuple(d.get("uses", ())),
            "columns": tuple(d.get("columns", ())),
            "security": d.get("security"),
            "materialized": d.get("materialized", False),
        },
    ),
    "view_replaced": lambda d: _event(
        ViewReplaced,
        {
            "name": d["name"],
            "definitions": dict(d["definitions"]),
            "uses": tuple(d.get("uses", ())),
            "columns": tuple(d.get("columns", ())),
            "security": d.get("security"),
        },
    ),
    "view_dropped": lambda d: _event(ViewDropped, {"name": d["name"]}),
    "extension_created": lambda d: _event(ExtensionCreated, {"name": d["name"], "schema_name": d.get("schema_name")}),
    "extension_dropped": lambda d: _event(ExtensionDropped, {"name": d["name"]}),
    "routine_created": lambda d: _event(
        RoutineCreated,
        {
            "name": d["name"],
            "kind": d.get("kind", "function"),
            "signature": d.get("signature", ""),
            "definitions": dict(d["definitions"]),
            "uses": tuple(d.get("uses", ())),
        },
    ),
    "routine_replaced": lambda d: _event(
        RoutineReplaced,
        {
            "name": d["name"],
            "kind": d.get("kind", "function"),
            "signature": d.get("signature", ""),
            "definitions": dict(d["definitions"]),
            "uses": tuple(d.get("uses", ())),
        },
    ),
    "routine_dropped": lambda d: _event(RoutineDropped, {"name": d["name"], "signature": d.get("signature", "")}),
    "trigger_created": lambda d: _event(TriggerCreated, _trigger_fields(d)),
    "trigger_replaced": lambda d: _event(TriggerReplaced, _trigger_fields(d)),
    "trigger_dropped": lambda d: _event(TriggerDropped, {"name": d["name"], "table": d["table"]}),
    "sql_run": lambda d: _event(
        SqlRun,
        {"forward": _steps(d["forward"]), "backward": _steps(d.get("backward")), "description": d.get("description")},
    ),
    "tag_created": lambda d: _event(TagCreated, {"tag": d["tag"], "version": d["version"]}),
    "migration_applied": lambda d: _outcome(MigrationApplied, d),
    "migration_faked": lambda d: _outcome(MigrationFaked, d),
    "migration_failed": lambda d: _outcome(MigrationFailed, d, statement=d.get("statement")),
    "drift_found": lambda d: _outcome(DriftFound, d, drift=tuple(d.get("drift", ()))),
    # the fleet's events are few and small: validated as input is
    **{cls.model_fields["type"].default: cls.model_validate for cls in FLEET_TYPES},
    **{cls.model_fields["type"].default: cls.model_validate for cls in AUTH_TYPES},
}


def _trigger_fields(d: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": d["name"],
        "table": d["table"],
        "definitions": dict(d["definitions"]),
        "uses": tuple(d.get("uses", ())),
    }


def event_from_dict(data: dict[str, Any]) -> Event:
    builder = _BUILDERS.get(data.get("type", ""))
    if builder is not None:
        try:
            return cast(Event, builder(data))
        except (KeyError, TypeError, ValueError, AttributeError):
            pass
    # anything else: the full validation (and its errors), as the log's own (its SQL text is not judged again)
    return EVENT_ADAPTER.validate_python(data, context=STORED)


def event_from_text(text: str | bytes) -> Event:
    return event_from_dict(orjson.loads(text))
