"""Event -> the statements that make it so in one dialect.

One emission per event type (``functools.singledispatch``), next to the fold
rule in events.aggregate and the inverse in projections.diff. Each takes the
schema just before and just after the event; the dialect's methods say how
(service.reconciler.dialects), so no ``if dialect ==`` lives here.
"""

from __future__ import annotations

from functools import singledispatch

from events.catalog import (
    ColumnAdded,
    ColumnAltered,
    ColumnDropped,
    ColumnRenamed,
    ConstraintAdded,
    ConstraintDropped,
    DomainCreated,
    DomainDropped,
    EnumCreated,
    EnumDropped,
    EnumValueAdded,
    EnumValueDropped,
    ExtensionCreated,
    ExtensionDropped,
    IndexCreated,
    IndexDropped,
    PrimaryKeySet,
    RoutineCreated,
    RoutineDropped,
    RoutineReplaced,
    SqlRun,
    TableAltered,
    TableCreated,
    TableDropped,
    TableRenamed,
    TriggerCreated,
    TriggerDropped,
    TriggerReplaced,
    ViewCreated,
    ViewDropped,
    ViewReplaced,
)
from events.model import Schema
from events.objects import routine_key, trigger_key
from service.reconciler.dialects.base import Dialect, UnsupportedType


@singledispatch
def emit(event: object, dialect: Dialect, before: Schema, after: Schema) -> list[str]:
    """The statements for one event; events that change no schema emit nothing."""
    return []


@emit.register
def _(event: TableCreated, dialect: Dialect, before: Schema, after: Schema) -> list[str]:
    return dialect.create_table(after, event.table)


@emit.register
def _(event: TableDropped, dialect: Dialect, before: Schema, after: Schema) -> list[str]:
    return dialect.drop_table(before, event.table)


@emit.register
def _(event: TableRenamed, dialect: Dialect, before: Schema, after: Schema) -> list[str]:
    renamed = dialect.rename_table(before, event.table, event.new_name)
    return renamed + dialect.after_rename(before, after, event.table, event.new_name)


@emit.register
def _(event: TableAltered, dialect: Dialect, before: Schema, after: Schema) -> list[str]:
    return dialect.table_comment(after, event.table)


@emit.register
def _(event: ColumnAdded, dialect: Dialect, before: Schema, after: Schema) -> list[str]:
    return dialect.add_column(before, after, event.table, event.column.name, fill=event.fill)


@emit.register
def _(event: ColumnDropped, dialect: Dialect, before: Schema, after: Schema) -> list[str]:
    return dialect.drop_column(before, after, event.table, event.column)


@emit.register
def _(event: ColumnRenamed, dialect: Dialect, before: Schema, after: Schema) -> list[str]:
    renamed = dialect.rename_column(before, after, event.table, event.column, event.new_name)
    return renamed + dialect.after_rename(before, after, event.table, event.table)


@emit.register
def _(event: ColumnAltered, dialect: Dialect, before: Schema, after: Schema) -> list[str]:
    return dialect.alter_column(before, after, event.table, event.column, event.changes(), fill=event.fill)


@emit.register
def _(event: IndexCreated, dialect: Dialect, before: Schema, after: Schema) -> list[str]:
    return dialect.create_index(before, after, event.table, event.index.name)


@emit.register
def _(event: IndexDropped, dialect: Dialect, before: Schema, after: Schema) -> list[str]:
    return dialect.drop_index(before, after, event.table, event.name)


@emit.register
def _(event: ConstraintAdded, dialect: Dialect, before: Schema, after: Schema) -> list[str]:
    return dialect.add_constraint(before, after, event.table, event.constraint.name)


@emit.register
def _(event: ConstraintDropped, dialect: Dialect, before: Schema, after: Schema) -> list[str]:
    return dialect.drop_constraint(before, after, event.table, event.name)


@emit.register
def _(event: PrimaryKeySet, dialect: Dialect, before: Schema, after: Schema) -> list[str]:
    return dialect.set_primary_key(before, after, event.table)


@emit.register
def _(event: EnumCreated, dialect: Dialect, before: Schema, after: Schema) -> list[str]:
    return dialect.create_enum(before, after, event.name)


@emit.register
def _(event: EnumValueAdded, dialect: Dialect, before: Schema, after: Schema) -> list[str]:
    return dialect.add_enum_value(before, after, event.name, event.value, event.before)


@emit.register
def _(event: EnumValueDropped, dialect: Dialect, before: Schema, after: Schema) -> list[str]:
    return dialect.drop_enum_value(before, after, event.name, event.value)


@emit.register
def _(event: EnumDropped, dialect: Dialect, before: Schema, after: Schema) -> list[str]:
    return dialect.drop_enum(before, after, event.name)


@emit.register
def _(event: DomainCreated, dialect: Dialect, before: Schema, after: Schema) -> list[str]:
    return dialect.create_domain(before, after, event.name)


@emit.register
def _(event: DomainDropped, dialect: Dialect, before: Schema, after: Schema) -> list[str]:
    return dialect.drop_domain(before, after, event.name)


@emit.register
def _(event: ExtensionCreated, dialect: Dialect, before: Schema, after: Schema) -> list[str]:
    return dialect.create_extension(before, after, event.name)


@emit.register
def _(event: ExtensionDropped, dialect: Dialect, before: Schema, after: Schema) -> list[str]:
    return dialect.drop_extension(before, after, event.name)


@emit.register
def _(event: ViewCreated, dialect: Dialect, before: Schema, after: Schema) -> list[str]:
    return dialect.create_view(before, after, event.name)


@emit.register
def _(event: ViewReplaced, dialect: Dialect, before: Schema, after: Schema) -> list[str]:
    return dialect.replace_view(before, after, event.name)


@emit.register
def _(event: ViewDropped, dialect: Dialect, before: Schema, after: Schema) -> list[str]:
    return dialect.drop_view(before, after, event.name)


@emit.register
def _(event: RoutineCreated, dialect: Dialect, before: Schema, after: Schema) -> list[str]:
    return dialect.create_routine(before, after, routine_key(event.name, event.signature))


@emit.register
def _(event: RoutineReplaced, dialect: Dialect, before: Schema, after: Schema) -> list[str]:
    return dialect.replace_routine(before, after, routine_key(event.name, event.signature))


@emit.register
def _(event: RoutineDropped, dialect: Dialect, before: Schema, after: Schema) -> list[str]:
    return dialect.drop_routine(before, after, routine_key(event.name, event.signature))


@emit.register
def _(event: TriggerCreated, dialect: Dialect, before: Schema, after: Schema) -> list[str]:
    return dialect.create_trigger(before, after, trigger_key(event.table, event.name))


@emit.register
def _(event: TriggerReplaced, dialect: Dialect, before: Schema, after: Schema) -> list[str]:
    return dialect.replace_trigger(before, after, trigger_key(event.table, event.name))


@emit.register
def _(event: TriggerDropped, dialect: Dialect, before: Schema, after: Schema) -> list[str]:
    return dialect.drop_trigger(before, after, trigger_key(event.table, event.name))


@emit.register
def _(event: SqlRun, dialect: Dialect, before: Schema, after: Schema) -> list[str]:
    # A data step's statements are its own text, each proven one data statement of its kind
    # (statements.py, events.datasteps) before it is sent; going back, the plan runs the inverse step,
    # whose forward is this one's backward. A dialect it has no SQL for was refused by make_plan, naming
    # the version, before any emission: this is the last guard.
    statements = event.forward.get(dialect.name)
    if statements is None:
        raise UnsupportedType(f"sql_run has no statements for {dialect.name} (it has: {', '.join(event.forward)})")
    return list(statements)
