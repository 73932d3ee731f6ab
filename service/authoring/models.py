"""SQLAlchemy models -> the schema objects of the log (for ``makemigrations``).

``--models MODULE:ATTR`` names a MetaData or a declarative base (its ``.metadata``).
Types map to the portable types where one fits, else to a dialect-native type
(``postgresql:jsonb``); a type with no such mapping is an error naming the column.

Expressions (generated columns, check constraints, index expressions and predicates) are
written into the log as SQL text. An expression given as ``sa.text(...)`` is kept as written;
one built with SQLAlchemy's operators is rendered for each of the three dialects, and kept
only if all three render it alike (``lower(name)``, ``id > 5``): an expression that renders
differently (``a || b`` is ``concat(a, b)`` on MySQL, a quoted name is quoted three ways)
means something else on some target, so it is refused with a message asking for ``sa.text``.
"""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import TextClause, UnaryExpression
from sqlalchemy.sql.operators import desc_op

from events.expressions import ExpressionError, ExpressionKind, check_expression
from events.model import (
    Column,
    ColumnType,
    Constraint,
    EnumType,
    Generated,
    IdentityOptions,
    Index,
    IndexElement,
    Reference,
    Schema,
    Table,
    parse_type,
)
from service.reconciler.normalize import canonical_default


class ModelError(ValueError):
    """Models that cannot be read or mapped: the message names what and where."""


def load_metadata(spec: str) -> sa.MetaData:
    """``package.module:attr`` -> its MetaData (the current directory is importable)."""
    if ":" not in spec:
        raise ModelError(f"--models wants MODULE:ATTR (such as myapp.models:Base), not {spec!r}")
    module_name, attr = spec.split(":", 1)
    if str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # the user's module can fail in any way
        raise ModelError(f"cannot import {module_name}: {type(exc).__name__}: {exc}") from None
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ModelError(f"{module_name} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if isinstance(obj, sa.MetaData):
        return obj
    metadata = getattr(obj, "metadata", None)
    if isinstance(metadata, sa.MetaData):
        return metadata
    raise ModelError(f"{spec} is neither a MetaData nor a declarative base")


_SIMPLE: list[tuple[type[Any], str]] = [
    (sa.BigInteger, "bigint"),
    (sa.SmallInteger, "smallint"),
    (sa.Integer, "integer"),
    (sa.Boolean, "boolean"),
    (sa.REAL, "real"),
    (sa.Double, "double"),
    (sa.Float, "double"),
    (sa.Text, "text"),
    (sa.Date, "date"),
    (sa.Interval, "interval"),
    (sa.JSON, "json"),
    (sa.Uuid, "uuid"),
    (sa.LargeBinary, "bytes"),
]


def enum_name(t: sa.Enum) -> str | None:
    """The log's name for a native enum type (None: stored as a plain string column)."""
    if not t.native_enum:
        return None
    if not t.name:
        return None
    return f"{t.schema}.{t.name}" if t.schema else t.name


def column_type(table: str, column: sa.Column[Any]) -> ColumnType:
    t = column.type
    if isinstance(t, sa.Enum):  # before String (an Enum is one) and before postgresql.ENUM's module
        name = enum_name(t)
        if name is not None:
            return parse_type(f"enum:{name}")
        if t.native_enum:
            raise ModelError(f"{table}.{column.name}: an Enum needs a name (sa.Enum(..., name='...'))")
        return parse_type(f"varchar({t.length or max((len(v) for v in t.enums), default=1)})")
    module = type(t).__module__
    for dialect in ("postgresql", "mysql", "sqlite"):
        if f"sqlalchemy.dialects.{dialect}" in module and type(t).__name__.upper() not in ("INTEGER", "VARCHAR"):
            text = str(t.compile(dialect=_dialect(dialect)))
            try:
                return parse_type(f"{dialect}:{text}")
            except ValueError as exc:
                raise ModelError(f"{table}.{column.name}: {exc}") from None
    if isinstance(t, sa.Numeric) and not isinstance(t, sa.Float):
        params = tuple(p for p in (t.precision, t.scale) if p is not None)
        return parse_type(f"numeric({','.join(map(str, params))})" if params else "numeric")
    if isinstance(t, sa.CHAR) or (isinstance(t, sa.String) and type(t).__name__ in ("CHAR", "NCHAR")):
        return parse_type(f"char({t.length or 1})")
    if isinstance(t, sa.String) and not isinstance(t, sa.Text):
        return parse_type(f"varchar({t.length})") if t.length else ColumnType(name="text")
    if isinstance(t, sa.DateTime):
        return ColumnType(name="timestamptz" if t.timezone else "timestamp")
    if isinstance(t, sa.Time):
        return ColumnType(name="time")
    for cls, name in _SIMPLE:
        if isinstance(t, cls):
            return ColumnType(name=name)
    raise ModelError(f"{table}.{column.name}: no schemalog type for {type(t).__name__}")


def _dialect(name: str) -> Any:
    from sqlalchemy.dialects import mysql, postgresql, sqlite

    # a named paramstyle: with pyformat, a literal's '%' would come out doubled
    if name == "sqlite":
        return sqlite.dialect()
    return {"postgresql": postgresql, "mysql": mysql}[name].dialect(paramstyle="named")


_RENDERERS = ("postgresql", "mysql", "sqlite")


def expression_text(element: Any, kind: ExpressionKind, where: str) -> str:
    """An expression as the log's SQL text: ``sa.text`` as written, else rendered alike by the three
    dialects (literals inline, column names bare); checked as one expression of ``kind``."""
    if isinstance(element, str):
        text = element.strip()
    elif isinstance(element, TextClause):
        text = element.text.strip()
    elif isinstance(element, sa.sql.ClauseElement):
        rendered: dict[str, str] = {}
        for dialect in _RENDERERS:
            try:
                compiled = element.compile(
                    dialect=_dialect(dialect), compile_kwargs={"literal_binds": True, "include_table": False}
                )
            except sa.exc.SQLAlchemyError as exc:
                raise ModelError(f"{where}: the expression cannot be rendered as SQL: {exc}") from None
            rendered[dialect] = str(compiled).strip()
        if len(set(rendered.values())) != 1:
            shown = "; ".join(f"{d}: {t}" for d, t in rendered.items())
            raise ModelError(
                f"{where}: the expression renders differently per dialect ({shown}); give it as sa.text(...)"
                " in a form every target reads alike"
            )
        text = rendered["postgresql"]
    else:
        raise ModelError(f"{where}: expected a SQL expression, not {type(element).__name__}")
    try:
        check_expression(text, kind)
    except ExpressionError as exc:
        raise ModelError(f"{where}: {exc}") from None
    return text


_TIME_DEFAULTS = frozenset({"current_timestamp", "current_date"})


def _default(column: sa.Column[Any]) -> str | None:
    """A server default as the log keeps it (without the ON UPDATE SQLAlchemy's MySQL documentation has it
    carry: that is :func:`_on_update`'s)."""
    text = _server_text(column.server_default, column, "server_default")
    if text is None:
        return None
    split = _WITH_ON_UPDATE.match(text)
    return _log_default(split.group(1) if split else text, column, "server_default")


_WITH_ON_UPDATE = re.compile(r"^([^'\"]*?)\s+ON\s+UPDATE\s+([\w()]+)$", re.IGNORECASE)
"""``CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP``: how SQLAlchemy's MySQL documentation writes MariaDB's
ON UPDATE (``server_onupdate`` writes no DDL); a default with a quote in it is left whole."""


def _on_update(column: sa.Column[Any]) -> str | None:
    """MariaDB's ON UPDATE: in the server default's text (see ``_WITH_ON_UPDATE``), or a
    ``server_onupdate`` that says its expression (``FetchedValue()`` alone says none)."""
    clause = column.server_onupdate
    if clause is not None and getattr(clause, "arg", None) is not None:
        return _log_default(_server_text(clause, column, "server_onupdate"), column, "server_onupdate")
    text = _server_text(column.server_default, column, "server_default")
    split = _WITH_ON_UPDATE.match(text) if text is not None else None
    return _log_default(split.group(2), column, "server_default ON UPDATE") if split else None


def _server_text(default: Any, column: sa.Column[Any], what: str) -> str | None:
    """A server default (or on-update) clause as SQL text: a string quoted, text as written, an
    expression rendered for PostgreSQL."""
    if default is None:
        return None
    where = f"{column.table.name}.{column.name}: {what}"
    arg = getattr(default, "arg", None)
    if isinstance(arg, str):
        return "'" + arg.replace("'", "''") + "'"
    if isinstance(arg, TextClause):
        return arg.text.strip()
    if isinstance(arg, sa.sql.ClauseElement):  # sa.true(), sa.func.now(), sa.literal(0) ...
        try:
            compiled = arg.compile(dialect=_dialect("postgresql"), compile_kwargs={"literal_binds": True})
        except sa.exc.SQLAlchemyError as exc:
            raise ModelError(f"{where} cannot be rendered: {exc}") from None
        return str(compiled).strip()
    raise ModelError(f"{where} must be text, a string or an expression")


def _log_default(text: str | None, column: sa.Column[Any], what: str) -> str | None:
    """The clock (``func.now()``, ``text("CURRENT_TIMESTAMP")``, ``current_timestamp()``) in the one
    spelling every dialect reads and every dialect's introspection compares equal to
    (``current_timestamp``, as normalize.canonical_default writes it); numbers and truth values likewise;
    anything else as written, since canonical forms lower-case (a literal inside a call would change)."""
    canonical = canonical_default(text)
    if text is None or canonical is None:
        return None
    if canonical in _TIME_DEFAULTS or canonical in ("true", "false") or _is_number(canonical):
        text = canonical
    try:
        check_expression(text, "default")
    except ExpressionError as exc:
        raise ModelError(f"{column.table.name}.{column.name}: {what}: {exc}") from None
    return text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _fk_action(value: str | None) -> str | None:
    if value is None:
        return None
    action = " ".join(value.lower().split())
    return None if action == "no action" else action


def _name(table: sa.Table) -> str:
    return f"{table.schema}.{table.name}" if table.schema else table.name


def _generated(table: str, col: sa.Column[Any]) -> Generated | None:
    computed = col.computed
    if computed is None:
        return None
    expression = expression_text(computed.sqltext, "generated", f"{table}.{col.name}: Computed")
    # persisted=None is each dialect's own kind; the log says one: stored, PostgreSQL's only kind
    return Generated(expression=expression, stored=computed.persisted is not False)


_IDENTITY_DEFAULTS = {"start": 1, "increment": 1, "cache": 1}


def _identity_options(col: sa.Column[Any]) -> IdentityOptions | None:
    """sa.Identity's options where they differ from a sequence's own defaults (None: none do)."""
    identity = col.identity
    if identity is None:
        return None
    values: dict[str, Any] = {"always": bool(identity.always), "cycle": bool(identity.cycle)}
    for key in ("start", "increment", "minvalue", "maxvalue", "cache"):
        value = getattr(identity, key, None)
        if value is not None and _IDENTITY_DEFAULTS.get(key) != value:
            values[key] = int(value)
    if set(values) == {"always", "cycle"} and not values["always"] and not values["cycle"]:
        return None
    return IdentityOptions(**values)


def _column(table: sa.Table, col: sa.Column[Any], pk: tuple[str, ...]) -> Column:
    name = _name(table)
    auto = table.autoincrement_column
    generated = _generated(name, col)
    identity = col.identity is not None or (col is auto and col.autoincrement in (True, "auto"))
    identity = identity and col.type._type_affinity is sa.Integer and generated is None
    collation = getattr(col.type, "collation", None)
    return Column(
        name=col.name,
        type=column_type(name, col),
        nullable=bool(col.nullable) and col.name not in pk,
        default=None if identity or generated is not None else _default(col),
        identity=identity,
        comment=col.comment,
        collation=collation,
        generated=generated,
        identity_options=_identity_options(col) if identity else None,
        on_update=None if identity or generated is not None else _on_update(col),
    )


def _index_where(index: sa.Index, where: str) -> str | None:
    predicates = [index.dialect_options[d]["where"] for d in ("postgresql", "sqlite")]
    texts = {expression_text(p, "check", f"{where} where") for p in predicates if p is not None}
    if len(texts) > 1:
        raise ModelError(f"{where}: postgresql_where and sqlite_where differ ({' / '.join(sorted(texts))})")
    return texts.pop() if texts else None


def _index_element(element: Any, ops: dict[str, str], where: str) -> IndexElement:
    descending = False
    if isinstance(element, UnaryExpression) and element.modifier is desc_op:
        descending, element = True, element.element
    label = getattr(element, "name", None)
    if isinstance(element, sa.sql.elements.Label):
        element = element.element
    if isinstance(element, sa.Column):
        return IndexElement(column=element.name, opclass=ops.get(element.name), descending=descending)
    text = expression_text(element, "generated", f"{where} expression")
    return IndexElement(expression=text, opclass=ops.get(str(label)) if label else None, descending=descending)


def _index(table: sa.Table, index: sa.Index) -> Index:
    where = f"index {index.name} on {table.name}"
    pg = index.dialect_options["postgresql"]
    ops = dict(pg["ops"] or {})
    elements = tuple(_index_element(e, ops, where) for e in index.expressions)
    include = tuple(c if isinstance(c, str) else c.name for c in (pg["include"] or ()))
    method = pg["using"]
    prefix = (index.dialect_options["mysql"]["prefix"] or "").lower()
    if method is None and prefix in ("fulltext", "spatial"):
        method = prefix
    cols = [e.column or "expr" for e in elements]
    return Index(
        name=str(index.name or f"ix_{table.name}_{'_'.join(cols)}"),
        elements=elements,
        unique=bool(index.unique),
        method=method.lower() if isinstance(method, str) else None,
        where=_index_where(index, where),
        include=include,
    )


def _deferrable(c: sa.ForeignKeyConstraint | sa.UniqueConstraint) -> dict[str, bool]:
    deferred = (c.initially or "").upper() == "DEFERRED"
    return {"deferrable": bool(c.deferrable) or deferred, "initially_deferred": deferred}


def _constraint_order(c: sa.Constraint) -> tuple[str, str, tuple[str, ...], str]:
    """Named ones by name; unnamed ones by what they are, so that repeats are numbered the same each run
    (a table's constraints are a set)."""
    cols = tuple(str(col.name) for col in getattr(c, "columns", ()))
    return (str(c.name or ""), type(c).__name__, cols, str(getattr(c, "sqltext", "")))


def _name_for(c: sa.Constraint, rule: str, taken: set[str]) -> tuple[str, bool]:
    """The constraint's name and whether it is anonymous: the model's name, or for an unnamed one the
    name PostgreSQL would give it (``rule``, then ``rule1``, ``rule2``, ... past the names taken), which
    is the name SQLite's introspection invents for it (dialects/sqlite/ddl.py)."""
    if c.name:
        return str(c.name), False
    name, n = rule, 0
    while name in taken:
        n += 1
        name = f"{rule}{n}"
    taken.add(name)
    return name, True


def _constraints(table: sa.Table) -> list[Constraint]:
    out: list[Constraint] = []
    constraints = sorted(table.constraints, key=_constraint_order)
    taken = {str(c.name) for c in constraints if c.name}
    for c in constraints:
        cols = tuple(col.name for col in getattr(c, "columns", ()))
        if isinstance(c, sa.PrimaryKeyConstraint):
            continue
        if isinstance(c, sa.UniqueConstraint):
            name, anonymous = _name_for(c, f"{table.name}_{'_'.join(cols)}_key", taken)
            out.append(Constraint(name=name, kind="unique", columns=cols, anonymous=anonymous, **_deferrable(c)))
        elif isinstance(c, sa.CheckConstraint):
            name, anonymous = _name_for(c, f"{table.name}_check", taken)
            expression = expression_text(c.sqltext, "check", f"check {name} on {table.name}")
            out.append(Constraint(name=name, kind="check", expression=expression, anonymous=anonymous))
        elif isinstance(c, sa.ForeignKeyConstraint):
            target = c.elements[0].column.table
            name, anonymous = _name_for(c, f"{table.name}_{'_'.join(cols)}_fkey", taken)
            out.append(
                Constraint(
                    name=name,
                    kind="foreign_key",
                    columns=cols,
                    references=Reference(table=_name(target), columns=tuple(e.column.name for e in c.elements)),
                    on_delete=_fk_action(c.ondelete),
                    on_update=_fk_action(c.onupdate),
                    anonymous=anonymous,
                    **_deferrable(c),
                )
            )
    return out


def _primary_key_name(table: sa.Table) -> str | None:
    """The primary key's name where the models give one that is not PostgreSQL's own (``<table>_pkey``)."""
    name = table.primary_key.name
    if not name or not table.primary_key.columns or str(name) == f"{table.name}_pkey":
        return None
    return str(name)


def _enums(metadata: sa.MetaData) -> dict[str, EnumType]:
    """Every native enum type the columns use, by name (the same name twice must list the same values)."""
    out: dict[str, EnumType] = {}
    for table in metadata.sorted_tables:
        for col in table.columns:
            t = col.type
            if not isinstance(t, sa.Enum) or enum_name(t) is None:
                continue
            name = enum_name(t)
            assert name is not None
            found = EnumType(name=name, values=tuple(t.enums))
            if name in out and out[name] != found:
                raise ModelError(
                    f"{table.name}.{col.name}: enum {name} lists {list(found.values)},"
                    f" another column's lists {list(out[name].values)}"
                )
            out[name] = found
    return out


def metadata_schema(metadata: sa.MetaData) -> Schema:
    """The schema the models describe. Unnamed indexes and constraints get PostgreSQL-style names."""
    tables: dict[str, Table] = {}
    for table in metadata.sorted_tables:
        name = _name(table)
        pk = tuple(c.name for c in table.primary_key.columns)
        tables[name] = Table(
            name=name,
            columns=tuple(_column(table, col, pk) for col in table.columns),
            primary_key=pk,
            indexes=tuple(_index(table, i) for i in sorted(table.indexes, key=lambda i: str(i.name))),
            constraints=tuple(_constraints(table)),
            comment=table.comment,
            primary_key_name=_primary_key_name(table),
        )
    return Schema(tables=tables, enums=_enums(metadata))
