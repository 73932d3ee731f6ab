"""The event catalogue: one frozen pydantic class per event type.

The ``type`` field is the discriminator; a stored type name is never renamed.
``to_dict`` gives an event's public (and hashed) form: defaults left out, except
the fields of ``column_altered`` that were given, since there presence means
"changed" (``"default": null`` drops a default).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Union

from pydantic import AfterValidator, ConfigDict, Field, TypeAdapter, ValidationInfo, field_validator, model_validator

from events.auth import AUTH_TYPES, ApprovalGiven, ApprovalsRequired, TokenCreated, TokenRevoked
from events.datasteps import check_sql_run, normalize_dialects
from events.expressions import STORED, expression_field
from events.fleet import (
    FLEET_TYPES,
    DatabaseChanged,
    DatabaseRegistered,
    DatabaseRetired,
    RolloutHalted,
    RolloutResumed,
)
from events.model import (
    INT64_MAX,
    MAX_COLUMNS,
    CollationName,
    Column,
    Constraint,
    DomainCheck,
    EnumType,
    Frozen,
    Identifier,
    IdentityOptions,
    Index,
    Int64,
    PartitionOf,
    SqlName,
    TableName,
    TypeText,
    check_domain_shape,
    check_new_name,
    check_new_table_name,
    check_view,
)


class TableCreated(Frozen):
    """A new table. Primary key columns are NOT NULL (made so here, as SQL does).

    ``indexes`` and ``constraints`` are optional: they let a dropped table come back
    whole in one event (the inverse of ``table_dropped``).
    """

    type: Literal["table_created"] = "table_created"
    table: TableName
    columns: tuple[Column, ...] = Field(min_length=1)
    primary_key: tuple[Identifier, ...] = ()
    comment: str | None = None
    indexes: tuple[Index, ...] = ()
    constraints: tuple[Constraint, ...] = ()
    primary_key_name: Identifier | None = None
    """The primary key constraint's name, where it is not the dialect's own (``<table>_pkey``)."""
    partition_by: str | None = None
    """A partitioned table's key (PostgreSQL's ``pg_get_partkeydef``: ``RANGE (payment_date)``), checked."""
    partition_of: PartitionOf | None = None
    """A partition: its parent (partitioned, of the log) and its bound (``FOR VALUES ...``), checked."""

    @field_validator("partition_by")
    @classmethod
    def _a_key(cls, value: str | None, info: ValidationInfo) -> str | None:
        from events.partitions import check_partition_key

        stored = isinstance(info.context, dict) and info.context.get("schemalog_stored")
        return value if value is None or stored else check_partition_key(value)

    @model_validator(mode="after")
    def _primary_key_not_null(self) -> TableCreated:
        if self.primary_key and any(c.nullable for c in self.columns if c.name in self.primary_key):
            pk = set(self.primary_key)
            columns = tuple(c.model_copy(update={"nullable": False}) if c.name in pk else c for c in self.columns)
            object.__setattr__(self, "columns", columns)
        return self

    @model_validator(mode="after")
    def _new_names(self) -> TableCreated:
        check_new_table_name(self.table)
        if len(self.columns) > MAX_COLUMNS:
            raise ValueError(
                f"table {self.table!r} has {len(self.columns)} columns; the limit is {MAX_COLUMNS} (PostgreSQL)"
            )
        for column in self.columns:
            check_new_name(column.name, "column", "column name")
        for index in self.indexes:
            check_new_name(index.name, "index", "index name")
        for constraint in self.constraints:
            check_new_name(constraint.name, "constraint", "constraint name")
        return self


class TableDropped(Frozen):
    type: Literal["table_dropped"] = "table_dropped"
    table: TableName


class TableAltered(Frozen):
    """A table's own attributes changed (today its comment; ``"comment": null`` removes it)."""

    type: Literal["table_altered"] = "table_altered"
    table: TableName
    comment: str | None = None


class TableRenamed(Frozen):
    type: Literal["table_renamed"] = "table_renamed"
    table: TableName
    new_name: Annotated[TableName, AfterValidator(check_new_table_name)]


class ColumnAdded(Frozen):
    """``fill``: how the rows already in the table get a value (an expression, run once), for a NOT NULL
    column without a default (Django's one-off default: makemigrations asks, or ``--default``)."""

    type: Literal["column_added"] = "column_added"
    table: TableName
    column: Column
    fill: str | None = None

    @field_validator("column")
    @classmethod
    def _new_name(cls, column: Column) -> Column:
        check_new_name(column.name, "column", "column name")
        return column

    @field_validator("fill")
    @classmethod
    def _fill_is_one_expression(cls, value: str | None, info: ValidationInfo) -> str | None:
        return expression_field(value, "default", info.context)

    @model_validator(mode="after")
    def _rows_get_a_value(self, info: ValidationInfo) -> ColumnAdded:
        column = self.column
        if isinstance(info.context, dict) and info.context.get("schemalog_stored"):
            return self  # an old stored event keeps its meaning
        needs = not column.nullable and column.default is None and column.generated is None and not column.identity
        if needs and self.fill is None:
            raise ValueError(
                f"column {self.table}.{column.name} is NOT NULL without a default: rows already in the table"
                ' need a value; give "fill": an expression for them (makemigrations: --default'
                f" {self.table}.{column.name}=EXPR), or a default, or make it nullable"
            )
        if self.fill is not None and not needs:
            raise ValueError(f"column {self.table}.{column.name}: fill is only for a NOT NULL column without a default")
        return self


class ColumnDropped(Frozen):
    type: Literal["column_dropped"] = "column_dropped"
    table: TableName
    column: Identifier


class ColumnRenamed(Frozen):
    type: Literal["column_renamed"] = "column_renamed"
    table: TableName
    column: Identifier
    new_name: Annotated[Identifier, AfterValidator(lambda v: check_new_name(v, "column", "column name"))]


ALTERABLE = ("type", "nullable", "default", "comment", "collation", "charset", "identity_options", "on_update")
"""The Column fields a column_altered can change."""
ALTERED_FIELDS = tuple("new_type" if name == "type" else name for name in ALTERABLE)
"""The same, by their names in column_altered's public form (in its field order)."""


class ColumnAltered(Frozen):
    """Only the fields present are changed; ``default: null`` given explicitly drops it.

    The new column type is ``new_type`` in the public form (``type`` names the event).
    """

    type: Literal["column_altered"] = "column_altered"
    table: TableName
    column: Identifier
    new_type: TypeText | None = None
    nullable: bool | None = None
    default: str | None = None
    comment: str | None = None
    collation: CollationName | None = None
    charset: SqlName | None = None
    """MariaDB's character set (``charset: null`` given: back to the default)."""
    identity_options: IdentityOptions | None = None
    """An identity column's sequence options (``identity_options: null`` given: the dialect's own)."""
    on_update: str | None = None
    """What the row's update sets the column to (``on_update: null`` given: nothing any more)."""
    fill: str | None = None
    """With ``nullable: false``: the value rows holding NULL get first (an expression)."""

    @field_validator("default", "fill", "on_update")
    @classmethod
    def _default_is_one_expression(cls, value: str | None, info: ValidationInfo) -> str | None:
        return expression_field(value, "default", info.context)

    @model_validator(mode="after")
    def _something_changes(self) -> ColumnAltered:
        if not self.changes():
            raise ValueError(
                f"column_altered on {self.table}.{self.column} changes nothing:"
                " give any of type, nullable, default, comment, collation, charset, identity_options, on_update"
            )
        if "nullable" in self.model_fields_set and self.nullable is None:
            raise ValueError("nullable must be true or false")
        if "new_type" in self.model_fields_set and self.new_type is None:
            raise ValueError("type must be a type, not null")
        if self.fill is not None and self.nullable is not False:
            raise ValueError(f"column_altered on {self.table}.{self.column}: fill goes with nullable: false")
        return self

    def changes(self) -> dict[str, Any]:
        """The changed attributes, by Column field name, with their new values."""
        out: dict[str, Any] = {}
        for field in ALTERED_FIELDS:
            if field in self.model_fields_set:
                out["type" if field == "new_type" else field] = getattr(self, field)
        return out

    @classmethod
    def of(cls, table: str, column: str, **changes: Any) -> ColumnAltered:
        """Build one from Column field names (``type=``, ``nullable=``, ...)."""
        data: dict[str, Any] = {"table": table, "column": column}
        for key, value in changes.items():
            if key not in ALTERABLE:
                raise ValueError(f"column_altered cannot change {key!r}")
            data["new_type" if key == "type" else key] = value
        return cls.model_validate(data)


class IndexCreated(Frozen):
    type: Literal["index_created"] = "index_created"
    table: TableName
    index: Index

    @field_validator("index")
    @classmethod
    def _new_name(cls, index: Index) -> Index:
        check_new_name(index.name, "index", "index name")
        return index


class IndexDropped(Frozen):
    type: Literal["index_dropped"] = "index_dropped"
    table: TableName
    name: Identifier


class ConstraintAdded(Frozen):
    type: Literal["constraint_added"] = "constraint_added"
    table: TableName
    constraint: Constraint

    @field_validator("constraint")
    @classmethod
    def _new_name(cls, constraint: Constraint) -> Constraint:
        check_new_name(constraint.name, "constraint", "constraint name")
        return constraint


class ConstraintDropped(Frozen):
    type: Literal["constraint_dropped"] = "constraint_dropped"
    table: TableName
    name: Identifier


class PrimaryKeySet(Frozen):
    """``name``: the new primary key constraint's name, where it is not the dialect's own."""

    type: Literal["primary_key_set"] = "primary_key_set"
    table: TableName
    columns: tuple[Identifier, ...] = ()
    name: Identifier | None = None


class EnumCreated(Frozen):
    """A named enum type (PostgreSQL ``CREATE TYPE ... AS ENUM``); columns use it as ``enum:NAME``."""

    type: Literal["enum_created"] = "enum_created"
    name: Annotated[TableName, AfterValidator(check_new_table_name)]
    values: tuple[str, ...] = Field(min_length=1)

    @field_validator("values")
    @classmethod
    def _values(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return EnumType.model_validate({"name": "e", "values": value}).values


class EnumValueAdded(Frozen):
    """A value added to an enum type: before ``before`` if given, else at the end."""

    type: Literal["enum_value_added"] = "enum_value_added"
    name: TableName
    value: str
    before: str | None = None

    @field_validator("value")
    @classmethod
    def _value(cls, value: str) -> str:
        return EnumType.model_validate({"name": "e", "values": (value,)}).values[0]


class EnumValueDropped(Frozen):
    """A value taken out of an enum type (no column of that type may hold it; PostgreSQL rebuilds the
    type)."""

    type: Literal["enum_value_dropped"] = "enum_value_dropped"
    name: TableName
    value: str


class EnumDropped(Frozen):
    type: Literal["enum_dropped"] = "enum_dropped"
    name: TableName


class DomainCreated(Frozen):
    """A domain (PostgreSQL ``CREATE DOMAIN``): a named type over ``base`` with a default, NOT NULL and
    named checks over ``VALUE``; columns use it as ``domain:NAME``. MariaDB and SQLite have none: a
    column of a domain is a column of its base type there."""

    type: Literal["domain_created"] = "domain_created"
    name: Annotated[TableName, AfterValidator(check_new_table_name)]
    base: TypeText
    nullable: bool = True
    default: str | None = None
    checks: tuple[DomainCheck, ...] = ()

    @field_validator("default")
    @classmethod
    def _default_is_one_expression(cls, value: str | None, info: ValidationInfo) -> str | None:
        return expression_field(value, "default", info.context)

    @model_validator(mode="after")
    def _shape(self) -> DomainCreated:
        check_domain_shape(self.name, self.base, self.checks)
        return self


class DomainDropped(Frozen):
    type: Literal["domain_dropped"] = "domain_dropped"
    name: TableName


class _ViewDefinition(Frozen):
    """What a view is: its definition per dialect (events.objects: PostgreSQL's and MariaDB's its query as
    the database gives it back, SQLite's its CREATE VIEW statement), each proven one CREATE of this view
    before it is stored; what it reads (``uses``: tables and views; ``columns``: ``table.column``), found
    from the definitions (sqlglot) when not given."""

    name: TableName
    definitions: dict[str, str]
    uses: tuple[TableName, ...] = ()
    columns: tuple[str, ...] = ()
    security: Literal["invoker"] | None = None
    """MariaDB's SQL SECURITY INVOKER (None: DEFINER, its default); the other dialects leave it out."""

    @field_validator("definitions", mode="before")
    @classmethod
    def _dialect_names(cls, value: object) -> object:
        from events.objects import normalize_definitions

        return normalize_definitions(value)

    def _checked(self, materialized: bool, context: Any) -> None:
        object.__setattr__(
            self, "definitions", check_view(self.name, self.definitions, materialized, self.columns, context)
        )
        stored = isinstance(context, dict) and context.get("schemalog_stored")
        if not stored and not self.uses:
            from events.objects import tables_read

            object.__setattr__(self, "uses", tuple(t for t in tables_read(self.definitions) if t != self.name))


class ViewCreated(_ViewDefinition):
    """A view (``materialized``: PostgreSQL's materialized view)."""

    type: Literal["view_created"] = "view_created"
    materialized: bool = False

    @model_validator(mode="after")
    def _definitions(self, info: ValidationInfo) -> ViewCreated:
        check_new_table_name(self.name)
        self._checked(self.materialized, info.context)
        return self


class ViewReplaced(_ViewDefinition):
    """A view's definitions (and what it reads) replaced; it stays materialized or not."""

    type: Literal["view_replaced"] = "view_replaced"

    @model_validator(mode="after")
    def _definitions(self, info: ValidationInfo) -> ViewReplaced:
        self._checked(False, info.context)  # a materialized view's definitions: checked by the fold's rule too
        return self


class ExtensionCreated(Frozen):
    """A PostgreSQL extension the schema needs (``CREATE EXTENSION``), in ``schema_name`` if given; the other
    dialects have none and make nothing of it."""

    type: Literal["extension_created"] = "extension_created"
    name: SqlName
    schema_name: Identifier | None = None


class ExtensionDropped(Frozen):
    type: Literal["extension_dropped"] = "extension_dropped"
    name: SqlName


class ViewDropped(Frozen):
    type: Literal["view_dropped"] = "view_dropped"
    name: TableName


def _checked_signature(value: str) -> str:
    from events.objects import DefinitionError, check_signature

    try:
        return check_signature(value)
    except DefinitionError as exc:
        raise ValueError(str(exc)) from None


class _RoutineDefinition(Frozen):
    """What a routine is: its definition per dialect (events.objects: the whole ``CREATE OR REPLACE`` statement,
    as the database gives it back), proven one CREATE of this routine of its kind before it is stored."""

    name: TableName
    signature: str = ""
    definitions: dict[str, str]
    uses: tuple[str, ...] = ()

    @field_validator("definitions", mode="before")
    @classmethod
    def _dialect_names(cls, value: object) -> object:
        from events.objects import normalize_definitions

        return normalize_definitions(value)

    @field_validator("signature")
    @classmethod
    def _signature(cls, value: str) -> str:
        return _checked_signature(value)

    def _checked(self, kind: str, context: Any) -> None:
        if not self.definitions:
            raise ValueError(f"{kind} {self.name!r} needs a definition for at least one dialect")
        if isinstance(context, dict) and context.get("schemalog_stored"):
            return
        from events.objects import DefinitionError, check_routine_definition

        try:
            checked = {d: check_routine_definition(self.name, kind, d, t) for d, t in self.definitions.items()}
        except DefinitionError as exc:
            raise ValueError(str(exc)) from None
        object.__setattr__(self, "definitions", checked)


class RoutineCreated(_RoutineDefinition):
    """A function, procedure or aggregate (``signature``: its argument types, as ``DROP FUNCTION`` names them)."""

    type: Literal["routine_created"] = "routine_created"
    kind: Literal["function", "procedure", "aggregate"] = "function"

    @model_validator(mode="after")
    def _definitions(self, info: ValidationInfo) -> RoutineCreated:
        self._checked(self.kind, info.context)
        return self


class RoutineReplaced(_RoutineDefinition):
    """A routine's definitions (and what it uses) replaced; its kind and signature stay (the fold checks the
    definitions against its kind)."""

    type: Literal["routine_replaced"] = "routine_replaced"
    kind: Literal["function", "procedure", "aggregate"] = "function"

    @model_validator(mode="after")
    def _definitions(self, info: ValidationInfo) -> RoutineReplaced:
        self._checked(self.kind, info.context)
        return self


class RoutineDropped(Frozen):
    type: Literal["routine_dropped"] = "routine_dropped"
    name: TableName
    signature: str = ""

    @field_validator("signature")
    @classmethod
    def _signature(cls, value: str) -> str:
        return _checked_signature(value)


class _TriggerDefinition(Frozen):
    """What a trigger is: its definition per dialect (events.objects: the whole statement, as the database gives
    it back), proven one CREATE of this trigger on this table before it is stored; what it uses (the routines
    it runs; when not given, the fold takes the routine its PostgreSQL definition runs if the log has one of
    that name: a built-in such as ``tsvector_update_trigger`` is no routine of the log)."""

    name: Identifier
    table: TableName
    definitions: dict[str, str]
    uses: tuple[str, ...] = ()

    @field_validator("definitions", mode="before")
    @classmethod
    def _dialect_names(cls, value: object) -> object:
        from events.objects import normalize_definitions

        return normalize_definitions(value)

    @model_validator(mode="after")
    def _definitions(self, info: ValidationInfo) -> _TriggerDefinition:
        if not self.definitions:
            raise ValueError(f"trigger {self.name!r} needs a definition for at least one dialect")
        if isinstance(info.context, dict) and info.context.get("schemalog_stored"):
            return self
        from events.objects import DefinitionError, check_trigger_definition

        try:
            checked = {d: check_trigger_definition(self.name, self.table, d, t) for d, t in self.definitions.items()}
            object.__setattr__(self, "definitions", checked)
        except DefinitionError as exc:
            raise ValueError(str(exc)) from None
        return self


class TriggerCreated(_TriggerDefinition):
    type: Literal["trigger_created"] = "trigger_created"


class TriggerReplaced(_TriggerDefinition):
    type: Literal["trigger_replaced"] = "trigger_replaced"


class TriggerDropped(Frozen):
    type: Literal["trigger_dropped"] = "trigger_dropped"
    name: Identifier
    table: TableName


SQL_DIALECTS = ("postgresql", "mysql", "sqlite")


class SqlRun(Frozen):
    """A data step (Django's RunSQL): statements per dialect, run in the log's order. ``forward`` runs
    going forward, ``backward`` going back (None: the step cannot be undone, and migrating back past
    it is refused; an empty list: nothing to undo). A dialect with no entry refuses the step. Each
    statement is one data statement (INSERT, UPDATE or DELETE), checked as it comes in."""

    type: Literal["sql_run"] = "sql_run"
    forward: dict[str, tuple[str, ...]]
    backward: dict[str, tuple[str, ...]] | None = None
    description: str | None = None

    @field_validator("forward", "backward", mode="before")
    @classmethod
    def _dialect_names(cls, value: object) -> object:
        return normalize_dialects(value)  # postgres -> postgresql, mariadb -> mysql

    @model_validator(mode="after")
    def _data_statements(self, info: ValidationInfo) -> SqlRun:
        if isinstance(info.context, dict) and info.context.get("schemalog_stored"):
            return self  # judged when it came in; the reconciler judges it again for its dialect
        check_sql_run(self.forward, self.backward)
        return self


# The grammar of a point (projections.schema.parse_point reads it): head, a version (12, v12), a time
# (2026-11-20, 2026-11-20T10:00Z), a negative number (an error), else a tag. A tag named like one of
# the others could never be reached, so TagCreated refuses such names.
POINT_HEAD = re.compile(r"^head$", re.IGNORECASE)
POINT_VERSION = re.compile(r"^[vV]?[0-9]+$")
POINT_TIME = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}([T ].*)?$")
POINT_NEGATIVE = re.compile(r"^-[0-9]+$")


def reads_as_point(name: str) -> bool:
    """Whether a point written as ``name`` would be read as something other than the tag ``name``."""
    return name != name.strip() or any(r.match(name) for r in (POINT_HEAD, POINT_VERSION, POINT_TIME, POINT_NEGATIVE))


class TagCreated(Frozen):
    """A name for a point of the stream (``version``); changes no schema."""

    type: Literal["tag_created"] = "tag_created"
    tag: Identifier
    version: int = Field(ge=0, le=INT64_MAX)

    @field_validator("tag")
    @classmethod
    def _reachable(cls, name: str) -> str:
        if reads_as_point(name):
            raise ValueError(
                f"tag {name!r} would read as a version, a time or head wherever a point is given;"
                " choose another name (such as release-1)"
            )
        return name


class _Outcome(Frozen):
    """What the reconciler did to one database; recorded in that database's own stream."""

    database: str
    stream: str
    from_version: Int64
    to_version: Int64
    statements: tuple[str, ...] = ()
    duration_ms: Int64 = 0
    detail: str | None = None
    replica: str | None = None
    """The daemon replica that ran it (None: the command line)."""
    lease_epoch: Int64 | None = None
    """The epoch of the replica's lease on the database when the outcome was recorded (fenced)."""


class MigrationApplied(_Outcome):
    type: Literal["migration_applied"] = "migration_applied"


class MigrationFaked(_Outcome):
    """The marker moved without running anything (``migrate --fake``)."""

    type: Literal["migration_faked"] = "migration_faked"


class MigrationFailed(_Outcome):
    """``statement`` is the one that failed, ``detail`` the error."""

    type: Literal["migration_failed"] = "migration_failed"
    statement: str | None = None


class DriftFound(_Outcome):
    """The database differs from the state its marker claims; ``drift`` says how."""

    type: Literal["drift_found"] = "drift_found"
    drift: tuple[str, ...] = ()


OUTCOME_TYPES = (MigrationApplied, MigrationFaked, MigrationFailed, DriftFound)


Event = Annotated[
    Union[
        TableCreated,
        TableDropped,
        TableRenamed,
        TableAltered,
        ColumnAdded,
        ColumnDropped,
        ColumnRenamed,
        ColumnAltered,
        IndexCreated,
        IndexDropped,
        ConstraintAdded,
        ConstraintDropped,
        PrimaryKeySet,
        EnumCreated,
        EnumValueAdded,
        EnumValueDropped,
        EnumDropped,
        DomainCreated,
        DomainDropped,
        ViewCreated,
        ViewReplaced,
        ViewDropped,
        ExtensionCreated,
        ExtensionDropped,
        RoutineCreated,
        RoutineReplaced,
        RoutineDropped,
        TriggerCreated,
        TriggerReplaced,
        TriggerDropped,
        SqlRun,
        TagCreated,
        MigrationApplied,
        MigrationFaked,
        MigrationFailed,
        DriftFound,
        DatabaseRegistered,
        DatabaseChanged,
        DatabaseRetired,
        RolloutHalted,
        RolloutResumed,
        TokenCreated,
        TokenRevoked,
        ApprovalGiven,
        ApprovalsRequired,
    ],
    Field(discriminator="type"),
]

EVENT_TYPES: dict[str, type[Frozen]] = {
    cls.model_fields["type"].default: cls
    for cls in (
        TableCreated,
        TableDropped,
        TableRenamed,
        TableAltered,
        ColumnAdded,
        ColumnDropped,
        ColumnRenamed,
        ColumnAltered,
        IndexCreated,
        IndexDropped,
        ConstraintAdded,
        ConstraintDropped,
        PrimaryKeySet,
        EnumCreated,
        EnumValueAdded,
        EnumValueDropped,
        EnumDropped,
        DomainCreated,
        DomainDropped,
        ViewCreated,
        ViewReplaced,
        ViewDropped,
        ExtensionCreated,
        ExtensionDropped,
        RoutineCreated,
        RoutineReplaced,
        RoutineDropped,
        TriggerCreated,
        TriggerReplaced,
        TriggerDropped,
        SqlRun,
        TagCreated,
        MigrationApplied,
        MigrationFaked,
        MigrationFailed,
        DriftFound,
        DatabaseRegistered,
        DatabaseChanged,
        DatabaseRetired,
        RolloutHalted,
        RolloutResumed,
        TokenCreated,
        TokenRevoked,
        ApprovalGiven,
        ApprovalsRequired,
    )
}

EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event, config=ConfigDict(defer_build=True))
"""Built on its first use (a read command that only decodes the log's own events never builds it)."""


def parse_event(data: Any, *, stored: bool = False) -> Event:
    """Validate one event from its public dict form.

    ``stored``: the event is the log's own, read back (``verify``), not input: the SQL expression
    text it holds is not judged again (events.expressions; the reconciler checks it for its dialect).
    Raises ValueError for a missing or unknown type, pydantic.ValidationError otherwise.
    """
    if isinstance(data, dict):
        kind = data.get("type")
        if kind is None:
            raise ValueError("event has no 'type'")
        if not isinstance(kind, str) or kind not in EVENT_TYPES:
            raise ValueError(f"unknown event type {kind!r}; known: {', '.join(EVENT_TYPES)}")
    return EVENT_ADAPTER.validate_python(data, context=STORED if stored else None)


def to_dict(event: Event) -> dict[str, Any]:
    """The public form of an event: what is stored, hashed and shown."""
    data = event.model_dump(mode="json", exclude_defaults=True)
    if isinstance(event, ColumnAltered):
        for key, value in event.changes().items():
            name = "new_type" if key == "type" else key
            if isinstance(value, IdentityOptions):
                value = value.model_dump(mode="json", exclude_defaults=True)
            data[name] = str(value) if key == "type" else value
    data["type"] = event.type
    return data


SCHEMA_EVENT_TYPES = frozenset(
    name
    for name in EVENT_TYPES
    if name
    not in {"tag_created"}
    | {c.model_fields["type"].default for c in OUTCOME_TYPES}
    | {c.model_fields["type"].default for c in FLEET_TYPES}
    | {c.model_fields["type"].default for c in AUTH_TYPES}
)
"""The event types that change a schema (not tags, not reconciler outcomes, not the fleet's, tokens' or
approvals' events)."""
