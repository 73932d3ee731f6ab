"""Schema objects: the vocabulary shared by events, projections and the reconciler.

Everything here is immutable (frozen pydantic models). A column's type is parsed
from its text form (``varchar(255)``, ``numeric(10,2)``, ``postgresql:jsonb``)
into a :class:`ColumnType`; bad type text is rejected with a message naming it.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    field_validator,
    model_validator,
)

MAX_IDENTIFIER_BYTES = 63
"""PostgreSQL's limit (NAMEDATALEN - 1); MySQL allows 64, SQLite more."""


class Frozen(BaseModel):
    """Base of every schema object: immutable, no unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")


M = TypeVar("M", bound=BaseModel)

# BaseModel keeps its instance state in __dict__ and three slots; their setters, looked up once
_new = object.__new__
_set_dict = BaseModel.__dict__["__dict__"].__set__
_set_fields_set = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_set_extra = BaseModel.__dict__["__pydantic_extra__"].__set__
_set_private = BaseModel.__dict__["__pydantic_private__"].__set__


def construct(cls: type[M], values: dict[str, Any], fields_set: set[str] | None = None) -> M:
    """What ``model_construct`` does, without its per-call overhead: ``values`` has every field.

    For data already known to be valid (the log's own, a fold's own, or a database catalogue
    read into schema objects): nothing is validated.
    """
    obj = _new(cls)
    _set_dict(obj, values)
    _set_fields_set(obj, fields_set if fields_set is not None else set(values))
    _set_extra(obj, None)
    _set_private(obj, None)
    return obj


def evolve(obj: M, **changes: Any) -> M:
    """``obj.model_copy(update=changes)`` at a fraction of its cost: a new object, ``obj`` untouched.

    Like ``model_copy`` it does not validate: the fold's rules check what they change.
    """
    values = obj.__dict__.copy()
    values.update(changes)
    return construct(type(obj), values, obj.__pydantic_fields_set__ | changes.keys())


# --------------------------------------------------------------------------- identifiers


def check_identifier(name: str, what: str = "identifier") -> str:
    """Return ``name`` if it can name a database object everywhere, else raise ValueError."""
    if not isinstance(name, str):
        raise ValueError(f"{what} must be a string, got {type(name).__name__}")
    if name == "":
        raise ValueError(f"{what} is empty")
    if "\x00" in name:
        raise ValueError(f"{what} {name!r} contains a NUL character")
    size = len(name.encode("utf-8"))
    if size > MAX_IDENTIFIER_BYTES:
        raise ValueError(f"{what} {name!r} is {size} bytes long; the limit is {MAX_IDENTIFIER_BYTES} (PostgreSQL)")
    return name


def check_table_name(name: str) -> str:
    """A table name, optionally schema-qualified (``sales.orders``): each part an identifier."""
    if not isinstance(name, str):
        raise ValueError(f"table name must be a string, got {type(name).__name__}")
    parts = name.split(".", 1) if "." in name else [name]
    if len(parts) == 2:
        check_identifier(parts[0], f"schema name of table {name!r}")
        check_identifier(parts[1], f"table name {name!r}")
    else:
        check_identifier(name, "table name")
    return name


def split_table_name(name: str) -> tuple[str | None, str]:
    """``sales.orders`` -> (``sales``, ``orders``); ``orders`` -> (None, ``orders``)."""
    if "." in name:
        schema, table = name.split(".", 1)
        return schema, table
    return None, name


def namespace_of(table: str) -> str:
    """The namespace an index or constraint name must be unique in (its table's schema)."""
    return split_table_name(table)[0] or ""


Identifier = Annotated[str, BeforeValidator(lambda v: check_identifier(v))]
TableName = Annotated[str, BeforeValidator(check_table_name)]


# --------------------------------------------------------------------------- types

PORTABLE_TYPES: dict[str, tuple[int, int]] = {
    # name: (minimum number of parameters, maximum number of parameters)
    "smallint": (0, 0),
    "integer": (0, 0),
    "bigint": (0, 0),
    "boolean": (0, 0),
    "real": (0, 0),
    "double": (0, 0),
    "numeric": (0, 2),
    "varchar": (1, 1),
    "char": (0, 1),
    "text": (0, 0),
    "date": (0, 0),
    "time": (0, 0),
    "timestamp": (0, 0),
    "timestamptz": (0, 0),
    "interval": (0, 0),
    "json": (0, 0),
    "uuid": (0, 0),
    "bytes": (0, 0),
}

TYPE_ALIASES: dict[str, str] = {
    "int": "integer",
    "int2": "smallint",
    "int4": "integer",
    "int8": "bigint",
    "bool": "boolean",
    "float4": "real",
    "float8": "double",
    "double precision": "double",
    "decimal": "numeric",
    "character varying": "varchar",
    "character": "char",
    "timestamp with time zone": "timestamptz",
    "bytea": "bytes",
}

DIALECTS = ("postgresql", "mysql", "sqlite")
DIALECT_ALIASES = {"postgres": "postgresql", "mariadb": "mysql"}

INTEGER_TYPES = frozenset({"smallint", "integer", "bigint"})

_PORTABLE_RE = re.compile(r"^\s*([a-z][a-z0-9 ]*?)\s*(?:\(\s*([0-9\s,]*)\s*\))?\s*$")
_NATIVE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_ ]*(\([A-Za-z0-9_ ,'.]*\))?(\[\])*$")


class ColumnType(Frozen):
    """A parsed column type: portable (``name`` + ``params``) or dialect-native."""

    name: str
    params: tuple[int, ...] = ()
    dialect: str | None = None

    @property
    def portable(self) -> bool:
        return self.dialect is None

    @property
    def is_integer(self) -> bool:
        return self.dialect is None and self.name in INTEGER_TYPES

    def __str__(self) -> str:
        text = self.name
        if self.params:
            text += "(" + ",".join(str(p) for p in self.params) + ")"
        if self.dialect is not None:
            return f"{self.dialect}:{text}"
        return text


_PARSED_TYPES: dict[str, ColumnType] = {}
"""Type texts repeat endlessly in a log; a ColumnType is immutable, so one per text is shared
(a plain dict, bounded: a lookup here is on the hot path of every replay)."""


def parse_type(text: Any) -> ColumnType:
    """Parse type text into a :class:`ColumnType`; raise ValueError naming the text if bad."""
    if type(text) is str:
        parsed = _PARSED_TYPES.get(text)
        if parsed is None:
            parsed = _parse_type_text(text)
            if len(_PARSED_TYPES) < 4096:
                _PARSED_TYPES[text] = parsed
        return parsed
    if isinstance(text, ColumnType):
        return text
    if isinstance(text, dict):
        return ColumnType(**text)
    if isinstance(text, str):  # a str subclass
        return parse_type(str(text))
    raise ValueError(f"column type must be a string, got {text!r}")


def _parse_type_text(text: str) -> ColumnType:
    raw = text
    if ":" in text:
        dialect, native = text.split(":", 1)
        dialect = DIALECT_ALIASES.get(dialect.strip().lower(), dialect.strip().lower())
        native = " ".join(native.split())
        if dialect not in DIALECTS:
            raise ValueError(f"unknown type {raw!r}: dialect prefix must be one of {', '.join(DIALECTS)}")
        if not native or not _NATIVE_RE.match(native):
            raise ValueError(f"unknown type {raw!r}: bad native type text")
        return ColumnType(name=native.lower(), dialect=dialect)
    match = _PORTABLE_RE.match(text.lower())
    if not match:
        raise ValueError(f"unknown type {raw!r}")
    name = " ".join(match.group(1).split())
    name = TYPE_ALIASES.get(name, name)
    if name not in PORTABLE_TYPES:
        raise ValueError(
            f"unknown type {raw!r}: portable types are {', '.join(PORTABLE_TYPES)};"
            " write others with a dialect prefix such as 'postgresql:jsonb'"
        )
    params: tuple[int, ...] = ()
    if match.group(2) is not None:
        pieces = [p.strip() for p in match.group(2).split(",")]
        if any(not p.isdigit() for p in pieces):
            raise ValueError(f"unknown type {raw!r}: parameters must be whole numbers")
        params = tuple(int(p) for p in pieces)
    low, high = PORTABLE_TYPES[name]
    if not low <= len(params) <= high:
        if high == 0:
            raise ValueError(f"bad type {raw!r}: {name} takes no parameters")
        if low == high:
            raise ValueError(f"bad type {raw!r}: write {name}(n)")
        raise ValueError(f"bad type {raw!r}: {name} takes {low} to {high} parameters")
    if name in ("varchar", "char") and params and params[0] < 1:
        raise ValueError(f"bad type {raw!r}: length must be at least 1")
    if name == "numeric" and params:
        precision = params[0]
        scale = params[1] if len(params) > 1 else 0
        if not 1 <= precision <= 1000 or scale > precision:
            raise ValueError(f"bad type {raw!r}: need 1 <= precision <= 1000 and scale <= precision")
    if name == "char" and not params:
        params = (1,)
    return ColumnType(name=name, params=params)


TypeText = Annotated[ColumnType, BeforeValidator(parse_type), PlainSerializer(str, return_type=str)]


# --------------------------------------------------------------------------- schema objects


class Column(Frozen):
    name: Identifier
    type: TypeText
    nullable: bool = True
    default: str | None = None
    identity: bool = False
    comment: str | None = None

    @model_validator(mode="after")
    def _identity_is_integer(self) -> Column:
        if self.identity and not self.type.is_integer:
            raise ValueError(f"column {self.name!r}: identity needs an integer type, not {self.type}")
        if self.identity and self.default is not None:
            raise ValueError(f"column {self.name!r}: an identity column cannot have a default")
        return self


def _distinct_columns(columns: tuple[str, ...], what: str) -> tuple[str, ...]:
    seen: set[str] = set()
    for name in columns:
        if name in seen:
            raise ValueError(f"{what} lists column {name!r} twice")
        seen.add(name)
    return columns


class Index(Frozen):
    name: Identifier
    columns: tuple[Identifier, ...] = Field(min_length=1)
    unique: bool = False

    @field_validator("columns")
    @classmethod
    def _distinct(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _distinct_columns(value, "index")


class Reference(Frozen):
    table: TableName
    columns: tuple[Identifier, ...] = Field(min_length=1)


FK_ACTIONS = ("no action", "restrict", "cascade", "set null", "set default")


def _fk_action(value: Any) -> Any:
    if isinstance(value, str):
        value = " ".join(value.lower().replace("_", " ").split())
        if value not in FK_ACTIONS:
            raise ValueError(f"unknown foreign key action {value!r}: one of {', '.join(FK_ACTIONS)}")
    return value


FkAction = Annotated[str, BeforeValidator(_fk_action)]


class Constraint(Frozen):
    name: Identifier
    kind: Literal["unique", "check", "foreign_key"]
    columns: tuple[Identifier, ...] = ()
    expression: str | None = None
    references: Reference | None = None
    on_delete: FkAction | None = None
    on_update: FkAction | None = None

    @model_validator(mode="after")
    def _shape(self) -> Constraint:
        _distinct_columns(self.columns, f"constraint {self.name!r}")
        if self.kind == "check":
            if not self.expression or not self.expression.strip():
                raise ValueError(f"check constraint {self.name!r} needs an expression")
            if self.references is not None or self.columns:
                raise ValueError(f"check constraint {self.name!r} takes only an expression")
        elif self.kind == "unique":
            if not self.columns:
                raise ValueError(f"unique constraint {self.name!r} needs columns")
            if self.references is not None or self.expression is not None:
                raise ValueError(f"unique constraint {self.name!r} takes only columns")
        else:
            if not self.columns or self.references is None:
                raise ValueError(f"foreign key {self.name!r} needs columns and references")
            if len(self.columns) != len(self.references.columns):
                raise ValueError(
                    f"foreign key {self.name!r} has {len(self.columns)} columns"
                    f" but references {len(self.references.columns)}"
                )
            if self.expression is not None:
                raise ValueError(f"foreign key {self.name!r} takes no expression")
        if self.kind != "foreign_key" and (self.on_delete or self.on_update):
            raise ValueError(f"constraint {self.name!r}: on_delete/on_update are for foreign keys")
        return self


class Table(Frozen):
    name: TableName
    columns: tuple[Column, ...] = Field(min_length=1)
    primary_key: tuple[Identifier, ...] = ()
    indexes: tuple[Index, ...] = ()
    constraints: tuple[Constraint, ...] = ()
    comment: str | None = None

    def column(self, name: str) -> Column | None:
        for column in self.columns:
            if column.name == name:
                return column
        return None

    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def index(self, name: str) -> Index | None:
        for index in self.indexes:
            if index.name == name:
                return index
        return None

    def constraint(self, name: str) -> Constraint | None:
        for constraint in self.constraints:
            if constraint.name == name:
                return constraint
        return None


class Schema(Frozen):
    """The whole schema of one stream at one point: tables by name."""

    tables: dict[str, Table] = Field(default_factory=dict)

    def table(self, name: str) -> Table | None:
        return self.tables.get(name)

    def sorted(self) -> Schema:
        """The same schema with tables in name order (for stable output and comparison)."""
        return Schema(tables={name: self.tables[name] for name in sorted(self.tables)})
