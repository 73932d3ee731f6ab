"""Schema objects: the vocabulary shared by events, projections and the reconciler.

Everything here is immutable (frozen pydantic models). A column's type is parsed
from its text form (``varchar(255)``, ``numeric(10,2)``, ``postgresql:jsonb``)
into a :class:`ColumnType`; bad type text is rejected with a message naming it.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated, Any, Literal, TypeVar

import orjson
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationInfo,
    field_validator,
    model_validator,
)

from events.expressions import expression_field

MAX_IDENTIFIER_BYTES = 64
"""The longest name any supported dialect holds: MariaDB's 64 characters (which 64 bytes never exceed).
PostgreSQL keeps 63 bytes (NAMEDATALEN - 1) and SQLite any length: a target that cannot hold a name
refuses it before any DDL (service/reconciler/capacity.py)."""


class Frozen(BaseModel):
    """Base of every schema object: immutable, no unknown fields."""

    # defer_build: a model's validator is built on its first validation, not at import: a read command that
    # only decodes the log's own data (events.decode) never builds one (issue 14)
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)


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

MAX_COLUMNS = 1600
"""PostgreSQL's limit of columns in a table."""

RESERVED_PREFIXES = ("schemalog_", "sqlite_")
"""Table, index and constraint names may not begin with these (in any case): schemalog's own tables, and
SQLite's reserved names."""

SYSTEM_COLUMNS = frozenset({"ctid", "xmin", "xmax", "cmin", "cmax", "tableoid"})
"""PostgreSQL's system columns: no table can have a column of one of these names."""

_BAD_CATEGORIES = {
    "Cc": "a control character",
    "Cf": "a format character (bidi control, zero-width, ...)",
    "Cs": "a surrogate",
    "Cn": "an unassigned code point",
    "Zl": "a line separator",
    "Zp": "a paragraph separator",
}


def check_identifier(name: str, what: str = "identifier") -> str:
    """Return ``name`` if it can name a database object everywhere, else raise ValueError.

    These are the rules for reading a name back (an event's reference to a table or column, a name
    introspected from a live database); a name an event gives a new object must also pass
    :func:`check_new_name`.
    """
    if not isinstance(name, str):
        raise ValueError(f"{what} must be a string, got {type(name).__name__}")
    if name == "":
        raise ValueError(f"{what} is empty")
    if "\x00" in name:
        raise ValueError(f"{what} {name!r} contains a NUL character")
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        raise ValueError(f"{what} {name!r} is not valid Unicode (it holds a lone surrogate)") from None
    if size > MAX_IDENTIFIER_BYTES:
        raise ValueError(f"{what} {name!r} is {size} bytes long; the limit is {MAX_IDENTIFIER_BYTES}")
    return name


def check_new_name(name: str, kind: Literal["schema", "table", "column", "index", "constraint"], what: str) -> str:
    """The name policy for a name an event gives (README, "Names"): what no supported dialect can hold.

    On top of :func:`check_identifier`: no leading or trailing whitespace (nor only whitespace), no
    control, format (bidi, zero-width), separator or unassigned characters, no dot (a table's schema
    is given apart, ``sales.orders``), no ``schemalog_`` or ``sqlite_`` prefix for tables, indexes and
    constraints, no PostgreSQL system column name for a column.
    """
    check_identifier(name, what)
    if not name.strip():
        raise ValueError(f"{what} {name!r} is only whitespace")
    if name != name.strip():
        raise ValueError(f"{what} {name!r} begins or ends with whitespace")
    if not name.isprintable():  # every C* and Z* character but the space: find the one that is refused
        for char in name:
            category = unicodedata.category(char)
            if category in _BAD_CATEGORIES:
                label = unicodedata.name(char, "")
                code = f"U+{ord(char):04X}" + (f" {label}" if label else "")
                raise ValueError(f"{what} {name!r} contains {code}, {_BAD_CATEGORIES[category]}")
    if "." in name:
        raise ValueError(f"{what} {name!r} contains a dot")
    if kind == "column" and name in SYSTEM_COLUMNS:
        raise ValueError(f"{what} {name!r} is a PostgreSQL system column name")
    if kind in ("table", "index", "constraint") and name[:10].lower().startswith(RESERVED_PREFIXES):
        raise ValueError(f"{what} {name!r} begins with a reserved prefix ({', '.join(RESERVED_PREFIXES)})")
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


def check_new_table_name(name: str) -> str:
    """A table name an event gives: :func:`check_new_name` for each part (one schema dot at most)."""
    check_table_name(name)
    schema, table = split_table_name(name)
    if schema is not None:
        check_new_name(schema, "schema", "schema name")
    check_new_name(table, "table", "table name")
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

_SQL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.@-]{0,62}$")


def check_sql_name(name: Any, what: str = "name") -> str:
    """The name of a collation, character set or operator class (``C``, ``en_US.utf8``, ``utf8mb4_bin``,
    ``und-x-icu``, ``varchar_pattern_ops``): a letter or ``_``, then letters, digits, ``_ . @ -``; at most
    63 characters. Such a name is written into DDL quoted or bare as its dialect needs, never as SQL text."""
    if not isinstance(name, str) or not _SQL_NAME.match(name):
        raise ValueError(
            f"{what} {name!r} is not a name: a letter or _, then letters, digits, _ . @ or -, at most 63 characters"
        )
    return name


SqlName = Annotated[str, BeforeValidator(lambda v: check_sql_name(v))]
CollationName = Annotated[str, BeforeValidator(lambda v: check_sql_name(v, "collation"))]


# --------------------------------------------------------------------------- plain values

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
Int64 = Annotated[int, Field(ge=INT64_MIN, le=INT64_MAX)]
"""Every integer of an event or an envelope: what a signed 64-bit column (and orjson) holds."""

MAX_NESTING = 32
"""How deep a changeset's JSON may nest (a valid one needs 6 levels)."""


def check_plain(value: Any) -> None:
    """Refuse (ValueError naming the place) what no stored event can hold, before it is validated:
    nesting deeper than :data:`MAX_NESTING`, an integer outside signed 64 bits, a string that is not
    valid Unicode (a lone surrogate) or holds a NUL, a column type that does not read back as itself.

    ``value`` is JSON-like data (dicts, lists, strings, numbers) or schema objects built in code. What
    orjson writes without complaint (valid UTF-8, integers within 64 bits, nesting within its limit of
    254), with no NUL and no 19-digit number, is taken as it is, the types checked on the way (5,000
    tables as JSON data: milliseconds). Anything else is walked, iteratively (no depth makes it recurse),
    to name the place. Nesting between :data:`MAX_NESTING` and orjson's limit is left to the fields'
    own validation, which refuses any shape deeper than a changeset's.
    """
    try:
        text = orjson.dumps(value, default=_plain_state)
    except (TypeError, orjson.JSONEncodeError):
        pass
    else:
        if b"\\u0000" not in text and not _LONG_NUMBER.search(text):
            return
    stack: list[tuple[Any, int, tuple[str | int, ...]]] = [(value, 1, ())]
    while stack:
        item, depth, path = stack.pop()
        problem = _plain_problem(item)
        if problem is None and isinstance(item, (dict, list, tuple, BaseModel)):
            if depth > MAX_NESTING:
                problem = f"nested deeper than {MAX_NESTING} levels"
            elif isinstance(item, dict):
                for key, child in item.items():
                    stack.append((key, depth, path))
                    stack.append((child, depth + 1, (*path, str(key))))
            elif isinstance(item, BaseModel):
                if not isinstance(item, ColumnType):
                    stack.extend((child, depth + 1, (*path, key)) for key, child in item.__dict__.items())
            else:
                stack.extend((child, depth + 1, (*path, index)) for index, child in enumerate(item))
        if problem is not None:
            place = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")
            raise ValueError(f"{place}: {problem}" if place else problem)


_LONG_NUMBER = re.compile(rb"[0-9]{19}")
"""19 digits (in a number or a string): 2**63 has 19, so such text is walked to look closer."""


def _plain_state(item: Any) -> Any:
    """orjson's ``default``: a schema object's fields; a column type as its text, if it reads back."""
    if isinstance(item, ColumnType):
        if _plain_problem(item) is not None:
            raise TypeError("a column type that does not read back as itself")
        return str(item)
    if isinstance(item, BaseModel):
        return item.__dict__
    raise TypeError(type(item).__name__)


def _plain_problem(item: Any) -> str | None:
    if isinstance(item, str):
        if "\x00" in item:
            return "a NUL character, which no PostgreSQL text (nor the store's jsonb) can hold"
        if not item.isascii():
            try:
                item.encode("utf-8")
            except UnicodeEncodeError as exc:
                return f"not valid Unicode (a lone surrogate U+{ord(item[exc.start]):04X})"
    elif isinstance(item, int):
        if not INT64_MIN <= item <= INT64_MAX:
            return f"a number of {item.bit_length()} bits, outside signed 64 bits (-2**63 to 2**63 - 1)"
    elif isinstance(item, ColumnType):
        text = str(item)
        if _PARSED_TYPES.get(text) is item:  # the very object its text parses to
            return None
        try:
            if parse_type(text) != item:
                return f"column type {text!r} does not read back as itself"
        except ValueError as exc:
            return str(exc)
    return None


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
ENUM_PREFIX = "enum"
"""``enum:NAME`` is a column of the log's enum type NAME (not a dialect)."""
DOMAIN_PREFIX = "domain"
"""``domain:NAME`` is a column of the log's domain NAME (``domain_created``; not a dialect)."""
DIALECT_ALIASES = {"postgres": "postgresql", "mariadb": "mysql"}

INTEGER_TYPES = frozenset({"smallint", "integer", "bigint"})

_NATIVE_INTEGER = {
    "mysql": re.compile(r"(tiny|small|medium|big)?int(eger)?(\(\d+\))?( (un)?signed)?( zerofill)?", re.I),
    "postgresql": re.compile(r"int[248]|smallint|integer|bigint", re.I),
    "sqlite": re.compile(r"int(eger)?", re.I),
}
"""A dialect's own integer types, as a native type's text (``mysql:int(10) unsigned``): an identity column
may have one (the dialect that owns it counts with it; another refuses the native type anyway)."""

MAX_LENGTH = 10_485_760
"""The largest varchar/char length (PostgreSQL's limit)."""
MAX_NATIVE_NUMBER = 2**31 - 1
"""The largest number in a native type's parameters."""

_PORTABLE_RE = re.compile(r"^\s*([a-z][a-z0-9 ]*?)\s*(?:\(\s*([0-9\s,]*)\s*\))?\s*$")
_NUMBER_RE = re.compile(r"^[0-9]{1,10}$")

# A native type's text, token by token: words, numbers, quoted strings ('' for a quote inside; no
# backslash, which MySQL reads as an escape), parentheses, commas, and [] for PostgreSQL's arrays.
_NATIVE_TOKEN = re.compile(
    r"\s*(?:(?P<word>[A-Za-z_][A-Za-z0-9_]*)|(?P<number>[0-9]+)|(?P<string>'(?:[^'\\]|'')*')|(?P<mark>\[\]|[(),]))"
)


def native_type_text(text: str) -> str:
    """The canonical text of a dialect-native type (without its prefix), or ValueError.

    The grammar: words, then optionally parameters in parentheses (numbers or quoted strings), then
    optionally more words, then optionally ``[]`` (repeated). Words are lower-cased and single-spaced;
    quoted strings are kept exactly (``enum('Active','b')``).
    """
    tokens: list[tuple[str, str]] = []
    position = 0
    while position < len(text):
        if text[position:].isspace():
            break
        match = _NATIVE_TOKEN.match(text, position)
        if match is None:
            raise ValueError(f"unexpected {text[position:].strip()[:20]!r}")
        kind = match.lastgroup
        assert kind is not None
        tokens.append((kind, match.group(kind)))
        position = match.end()
    out: list[str] = []
    index = 0

    def words() -> None:
        nonlocal index
        while index < len(tokens) and tokens[index][0] == "word":
            out.append((" " if out else "") + tokens[index][1].lower())
            index += 1

    words()
    if not out:
        raise ValueError("a native type begins with its name")
    if index < len(tokens) and tokens[index] == ("mark", "("):
        index += 1
        params: list[str] = []
        while True:
            if index >= len(tokens) or tokens[index][0] not in ("number", "string"):
                raise ValueError("parameters are numbers or quoted strings, separated by commas")
            kind, value = tokens[index]
            if kind == "number" and (not _NUMBER_RE.match(value) or int(value) > MAX_NATIVE_NUMBER):
                raise ValueError(f"parameter {value[:20]} is larger than {MAX_NATIVE_NUMBER}")
            if kind == "string":
                for char in value:
                    if unicodedata.category(char) in ("Cc", "Cs"):
                        raise ValueError(f"U+{ord(char):04X} in a quoted parameter")
            params.append(value if kind == "string" else str(int(value)))
            index += 1
            if index < len(tokens) and tokens[index] == ("mark", ","):
                index += 1
                continue
            if index < len(tokens) and tokens[index] == ("mark", ")"):
                index += 1
                break
            raise ValueError("parameters are numbers or quoted strings, separated by commas")
        out.append("(" + ",".join(params) + ")")
        words()
    while index < len(tokens) and tokens[index] == ("mark", "[]"):
        out.append("[]")
        index += 1
    if index < len(tokens):
        raise ValueError(f"unexpected {tokens[index][1][:20]!r}")
    return "".join(out)


class ColumnType(Frozen):
    """A parsed column type: portable (``name`` + ``params``) or dialect-native."""

    name: str
    params: tuple[int, ...] = ()
    dialect: str | None = None

    @model_validator(mode="after")
    def _grammar(self) -> ColumnType:
        # Built in code, a type obeys the same grammar as its text: it must read back as itself.
        text = str(self)
        if parse_type(text) != self:
            raise ValueError(f"column type {text!r} does not read back as itself (it reads as {parse_type(text)})")
        return self

    @property
    def portable(self) -> bool:
        return self.dialect is None

    @property
    def is_integer(self) -> bool:
        return self.dialect is None and self.name in INTEGER_TYPES

    @property
    def counts(self) -> bool:
        """An integer type an identity column can have: a portable one or a dialect's own."""
        if self.dialect is None:
            return self.name in INTEGER_TYPES
        pattern = _NATIVE_INTEGER.get(self.dialect)
        return pattern is not None and pattern.fullmatch(self.name) is not None

    @property
    def is_enum(self) -> bool:
        """``enum:NAME``: the enum type NAME of the log (``enum_created``); each dialect holds it its own
        way (PostgreSQL a type of that name, MariaDB an inline ENUM, SQLite a varchar)."""
        return self.dialect == ENUM_PREFIX

    @property
    def is_domain(self) -> bool:
        """``domain:NAME``: the domain NAME of the log (``domain_created``); PostgreSQL holds a type of that
        name, MariaDB and SQLite a column of the domain's own type."""
        return self.dialect == DOMAIN_PREFIX

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
    if isinstance(text, str):  # a str subclass
        return parse_type(str(text))
    shape = "a JSON object" if isinstance(text, dict) else type(text).__name__
    raise ValueError(f"column type must be type text such as 'varchar(255)' or 'postgresql:jsonb', not {shape}")


def _parse_type_text(text: str) -> ColumnType:
    raw = text
    prefix = text.split(":", 1)[0].strip().lower() if ":" in text else None
    if prefix in (ENUM_PREFIX, DOMAIN_PREFIX):
        name = text.split(":", 1)[1].strip()
        try:
            check_table_name(name)
        except ValueError as exc:
            raise ValueError(f"bad {prefix} type {raw!r}: {exc}") from None
        return construct(ColumnType, {"name": name, "params": (), "dialect": prefix})
    if ":" in text:
        dialect, native = text.split(":", 1)
        dialect = DIALECT_ALIASES.get(dialect.strip().lower(), dialect.strip().lower())
        if dialect not in DIALECTS:
            raise ValueError(f"unknown type {raw!r}: dialect prefix must be one of {', '.join(DIALECTS)}")
        try:
            native = native_type_text(native)
        except ValueError as exc:
            raise ValueError(f"bad native type {raw!r}: {exc}") from None
        return construct(ColumnType, {"name": native, "params": (), "dialect": dialect})
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
        if any(not _NUMBER_RE.match(p) for p in pieces):
            raise ValueError(f"unknown type {raw!r}: parameters must be whole numbers (at most 10 digits)")
        params = tuple(int(p) for p in pieces)
    low, high = PORTABLE_TYPES[name]
    if not low <= len(params) <= high:
        if high == 0:
            raise ValueError(f"bad type {raw!r}: {name} takes no parameters")
        if low == high:
            raise ValueError(f"bad type {raw!r}: write {name}(n)")
        raise ValueError(f"bad type {raw!r}: {name} takes {low} to {high} parameters")
    if name in ("varchar", "char") and params and not 1 <= params[0] <= MAX_LENGTH:
        raise ValueError(f"bad type {raw!r}: need 1 <= length <= {MAX_LENGTH} (PostgreSQL's limit)")
    if name == "numeric" and params:
        precision = params[0]
        scale = params[1] if len(params) > 1 else 0
        if not 1 <= precision <= 1000 or scale > precision:
            raise ValueError(f"bad type {raw!r}: need 1 <= precision <= 1000 and scale <= precision")
    if name == "char" and not params:
        params = (1,)
    return construct(ColumnType, {"name": name, "params": params, "dialect": None})


TypeText = Annotated[ColumnType, BeforeValidator(parse_type), PlainSerializer(str, return_type=str)]


# --------------------------------------------------------------------------- schema objects


class Generated(Frozen):
    """A generated (computed) column: ``expression`` over the row's own columns, ``stored`` (kept on disk,
    PostgreSQL's only kind) or virtual (computed when read; MariaDB and SQLite)."""

    expression: str
    stored: bool = True

    @field_validator("expression")
    @classmethod
    def _one_expression(cls, value: str, info: ValidationInfo) -> str:
        checked = expression_field(value, "generated", info.context)
        assert checked is not None
        return checked


class IdentityOptions(Frozen):
    """An identity column's sequence, where it differs from the dialect's own default (None: as the
    dialect starts one). ``always``: GENERATED ALWAYS (an insert cannot give the value) rather than BY
    DEFAULT."""

    always: bool = False
    start: Int64 | None = None
    increment: Int64 | None = None
    minvalue: Int64 | None = None
    maxvalue: Int64 | None = None
    cycle: bool = False
    cache: Int64 | None = None
    sequence: SqlName | None = None
    """PostgreSQL's serial form: the column's default is nextval of this sequence, which holds the options
    (the column is no identity column of the database's own; other dialects have their auto-increment)."""
    owned: bool = False
    """With ``sequence``: the sequence is OWNED BY the column (dropped with it), as SERIAL makes it."""

    @model_validator(mode="after")
    def _sane(self) -> IdentityOptions:
        if self.owned and self.sequence is None:
            raise ValueError("identity owned needs a sequence")
        if self.always and self.sequence is not None:
            raise ValueError("identity always cannot be had with a sequence: its default can be given")
        if self.increment == 0:
            raise ValueError("identity increment cannot be 0")
        if self.cache is not None and self.cache < 1:
            raise ValueError("identity cache must be at least 1")
        if self.minvalue is not None and self.maxvalue is not None and self.minvalue >= self.maxvalue:
            raise ValueError("identity minvalue must be below maxvalue")
        return self


class Column(Frozen):
    name: Identifier
    type: TypeText
    nullable: bool = True
    default: str | None = None
    identity: bool = False
    comment: str | None = None
    collation: CollationName | None = None
    """The column's collation where it differs from its table's (and database's) default."""
    charset: SqlName | None = None
    """MariaDB's character set where it differs from the default (other dialects have none per column)."""
    generated: Generated | None = None
    identity_options: IdentityOptions | None = None
    on_update: str | None = None
    """What the database sets the column to whenever its row is updated (MariaDB's ``ON UPDATE``, in
    practice current_timestamp); the other dialects would need a trigger, and refuse it."""

    @field_validator("default", "on_update")
    @classmethod
    def _default_is_one_expression(cls, value: str | None, info: ValidationInfo) -> str | None:
        return expression_field(value, "default", info.context)

    @model_validator(mode="after")
    def _identity_is_integer(self) -> Column:
        if self.identity and not self.type.counts:
            raise ValueError(f"column {self.name!r}: identity needs an integer type, not {self.type}")
        if self.identity and self.default is not None:
            raise ValueError(f"column {self.name!r}: an identity column cannot have a default")
        if self.identity_options is not None and not self.identity:
            raise ValueError(f"column {self.name!r}: identity_options need identity: true")
        if self.generated is not None and (self.identity or self.default is not None):
            raise ValueError(f"column {self.name!r}: a generated column has no default and is no identity")
        if self.on_update is not None and (self.generated is not None or self.identity):
            raise ValueError(f"column {self.name!r}: a generated or identity column cannot have on_update")
        return self


def _distinct_columns(columns: tuple[str, ...], what: str) -> tuple[str, ...]:
    seen: set[str] = set()
    for name in columns:
        if name in seen:
            raise ValueError(f"{what} lists column {name!r} twice")
        seen.add(name)
    return columns


INDEX_METHODS = ("btree", "hash", "gin", "gist", "brin", "spgist", "fulltext", "spatial")
"""PostgreSQL's access methods; MariaDB's FULLTEXT and SPATIAL. None (the default) is each dialect's
own (a B-tree everywhere)."""


class IndexElement(Frozen):
    """One element of an index that is not a plain column: an expression, or a column with an operator
    class or a descending order."""

    column: Identifier | None = None
    expression: str | None = None
    opclass: SqlName | None = None
    descending: bool = False

    @field_validator("expression")
    @classmethod
    def _one_expression(cls, value: str | None, info: ValidationInfo) -> str | None:
        return expression_field(value, "generated", info.context)

    @model_validator(mode="after")
    def _one_of(self) -> IndexElement:
        if (self.column is None) == (self.expression is None):
            raise ValueError("an index element is a column or an expression (exactly one)")
        return self

    @property
    def plain(self) -> bool:
        return self.column is not None and self.opclass is None and not self.descending


class Index(Frozen):
    """``columns`` for an index of plain columns (the usual case, and every index before elements
    existed); ``elements`` when any element is an expression, has an operator class or is descending
    (then ``columns`` is empty). ``where``: a partial index's predicate; ``include``: PostgreSQL's
    covering columns."""

    name: Identifier
    columns: tuple[Identifier, ...] = ()
    unique: bool = False
    method: Literal["btree", "hash", "gin", "gist", "brin", "spgist", "fulltext", "spatial"] | None = None
    elements: tuple[IndexElement, ...] = ()
    where: str | None = None
    include: tuple[Identifier, ...] = ()

    @field_validator("columns")
    @classmethod
    def _distinct(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _distinct_columns(value, "index")

    @field_validator("where")
    @classmethod
    def _predicate(cls, value: str | None, info: ValidationInfo) -> str | None:
        return expression_field(value, "check", info.context)

    @field_validator("include")
    @classmethod
    def _distinct_include(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _distinct_columns(value, "index include")

    @model_validator(mode="after")
    def _shape(self) -> Index:
        if self.elements and all(e.plain for e in self.elements):  # the canonical form: plain columns
            names = tuple(e.column for e in self.elements if e.column is not None)
            object.__setattr__(self, "columns", _distinct_columns(names, f"index {self.name!r}"))
            object.__setattr__(self, "elements", ())
        if bool(self.columns) == bool(self.elements):
            raise ValueError(f"index {self.name!r} needs columns (or elements, not both)")
        if self.method == "btree":
            object.__setattr__(self, "method", None)
        return self

    def column_names(self) -> tuple[str, ...]:
        """Every column the index names as a column (not those inside expressions)."""
        if self.columns:
            return self.columns + self.include
        return tuple(e.column for e in self.elements if e.column is not None) + self.include


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
    deferrable: bool = False
    initially_deferred: bool = False
    anonymous: bool = False
    """The database keeps no name for it: the name is the log's handle, invented by the dialect's rule when
    it was read (SQLite's unnamed constraints), or left to the tool that wrote it (an unnamed SQLAlchemy
    constraint). A dialect that keeps every constraint's name (PostgreSQL, MariaDB) holds it named."""

    @model_validator(mode="after")
    def _shape(self) -> Constraint:
        _distinct_columns(self.columns, f"constraint {self.name!r}")
        if self.initially_deferred and not self.deferrable:
            raise ValueError(f"constraint {self.name!r}: initially_deferred needs deferrable")
        if self.deferrable and self.kind == "check":
            raise ValueError(f"check constraint {self.name!r} cannot be deferrable")
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

    @model_validator(mode="after")
    def _expression_is_one(self, info: ValidationInfo) -> Constraint:
        if self.kind == "check":
            expression_field(self.expression, "check", info.context)
        return self


def _stored(info: ValidationInfo) -> bool:
    return isinstance(info.context, dict) and bool(info.context.get("schemalog_stored"))


class PartitionOf(Frozen):
    """A partition (PostgreSQL declarative partitioning): its parent and its bound, as ``pg_get_expr``
    gives the bound back (``FOR VALUES FROM (...) TO (...)``, ``FOR VALUES IN (...)``, ``DEFAULT``)."""

    parent: TableName
    bound: str

    @field_validator("bound")
    @classmethod
    def _a_bound(cls, value: str, info: ValidationInfo) -> str:
        from events.partitions import check_partition_bound

        return value if _stored(info) else check_partition_bound(value)


class Table(Frozen):
    name: TableName
    columns: tuple[Column, ...] = Field(min_length=1)
    primary_key: tuple[Identifier, ...] = ()
    indexes: tuple[Index, ...] = ()
    constraints: tuple[Constraint, ...] = ()
    comment: str | None = None
    primary_key_name: Identifier | None = None
    """The primary key constraint's name where it is not the dialect's own (PostgreSQL ``<table>_pkey``)."""
    partition_by: str | None = None
    """A partitioned table's key, as ``pg_get_partkeydef`` gives it back (``RANGE (payment_date)``)."""
    partition_of: PartitionOf | None = None
    """A partition's parent and bound (the parent is a table of the log with ``partition_by``)."""

    @field_validator("partition_by")
    @classmethod
    def _a_key(cls, value: str | None, info: ValidationInfo) -> str | None:
        from events.partitions import check_partition_key

        return value if value is None or _stored(info) else check_partition_key(value)

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


class EnumType(Frozen):
    """An enum type of the log (``enum_created``): its values in order."""

    name: TableName
    values: tuple[str, ...] = Field(min_length=1)

    @field_validator("values")
    @classmethod
    def _distinct_values(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError("an enum lists a value twice")
        for item in value:
            if item == "" or len(item.encode("utf-8", "surrogatepass")) > 63:
                raise ValueError(f"enum value {item!r}: 1 to 63 bytes (PostgreSQL's limit)")
        return value


class DomainCheck(Frozen):
    """One named check of a domain: ``expression`` over ``VALUE``, the value of the domain."""

    name: Identifier
    expression: str

    @field_validator("expression")
    @classmethod
    def _one_expression(cls, value: str, info: ValidationInfo) -> str:
        checked = expression_field(value, "check", info.context)
        assert checked is not None
        return checked


def check_domain_shape(name: str, base: TypeText, checks: tuple[DomainCheck, ...]) -> None:
    """What a domain (the event that makes it and the schema object) must be: over a type that is not
    itself a domain, its checks named once each."""
    if base.is_domain:
        raise ValueError(f"domain {name!r}: a domain over another domain is not supported")
    names = [c.name for c in checks]
    if len(set(names)) != len(names):
        raise ValueError(f"domain {name!r} names a check twice")


class DomainType(Frozen):
    """A domain of the log (``domain_created``, PostgreSQL's ``CREATE DOMAIN``): a type of its own over
    ``type`` (portable, PostgreSQL's native, or an enum type of the log), with a default, NOT NULL and
    named checks. Columns use it as ``domain:NAME``; MariaDB and SQLite hold such a column as ``type``."""

    name: TableName
    type: TypeText
    nullable: bool = True
    default: str | None = None
    checks: tuple[DomainCheck, ...] = ()

    @field_validator("default")
    @classmethod
    def _default_is_one_expression(cls, value: str | None, info: ValidationInfo) -> str | None:
        return expression_field(value, "default", info.context)

    @model_validator(mode="after")
    def _shape(self) -> DomainType:
        check_domain_shape(self.name, self.type, self.checks)
        return self


class View(Frozen):
    """A view of the log (``view_created``): its definition per dialect, as each database gives it back
    (events.objects says which text that is), and what it reads: ``uses`` the tables and views,
    ``columns`` the columns (``table.column``) where they are known. A materialized view is PostgreSQL's."""

    name: TableName
    definitions: dict[str, str]
    materialized: bool = False
    uses: tuple[TableName, ...] = ()
    columns: tuple[str, ...] = ()
    security: Literal["invoker"] | None = None
    """MariaDB's SQL SECURITY INVOKER (None: DEFINER, its default); the other dialects leave it out."""

    @field_validator("definitions", mode="before")
    @classmethod
    def _dialect_names(cls, value: object) -> object:
        from events.objects import normalize_definitions

        return normalize_definitions(value)

    @model_validator(mode="after")
    def _one_view_each(self, info: ValidationInfo) -> View:
        object.__setattr__(
            self, "definitions", check_view(self.name, self.definitions, self.materialized, self.columns, info.context)
        )
        return self


def check_view(
    name: str, definitions: dict[str, str], materialized: bool, columns: tuple[str, ...], context: Any
) -> dict[str, str]:
    """A view's definitions, each proven one CREATE of this view in its dialect (events.objects), in their
    stored form; the log's own (``context`` STORED) are taken as they are."""
    if not definitions:
        raise ValueError(f"view {name!r} needs a definition for at least one dialect")
    for column in columns:
        if "." not in column:
            raise ValueError(f"view {name!r}: a column it reads is written table.column, not {column!r}")
    if isinstance(context, dict) and context.get("schemalog_stored"):
        return definitions
    from events.objects import DefinitionError, check_view_definition

    out = {}
    for dialect, text in definitions.items():
        try:
            out[dialect] = check_view_definition(name, dialect, text, materialized)
        except DefinitionError as exc:
            raise ValueError(str(exc)) from None
    return out


class Routine(Frozen):
    """A routine of the log (``routine_created``): a function, procedure or aggregate, named with its argument
    types (``signature``, e.g. ``integer, text``), its definition per dialect (the whole ``CREATE OR REPLACE``
    statement, as the database gives it back; events.objects), and what it uses (tables, views, routines by
    name) where that is known."""

    name: TableName
    kind: Literal["function", "procedure", "aggregate"] = "function"
    signature: str = ""
    definitions: dict[str, str]
    uses: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        from events.objects import routine_key

        return routine_key(self.name, self.signature)


class Trigger(Frozen):
    """A trigger of the log (``trigger_created``) on ``table``: its definition per dialect (the whole statement,
    as the database gives it back; events.objects), and what it uses (the routine it runs, by name)."""

    name: Identifier
    table: TableName
    definitions: dict[str, str]
    uses: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        from events.objects import trigger_key

        return trigger_key(self.table, self.name)


def routines_of(schema: Any) -> dict[str, Routine]:
    """A schema's routines by key (``name(signature)``); a schema built before routines existed has none."""
    return getattr(schema, "routines", None) or {}


def triggers_of(schema: Any) -> dict[str, Trigger]:
    """A schema's triggers by key (``table.name``); a schema built before triggers existed has none."""
    return getattr(schema, "triggers", None) or {}


class Extension(Frozen):
    """A PostgreSQL extension the schema needs (``extension_created``): its name, and the schema it is
    installed in (``schema_name``) where that is not the default. MariaDB and SQLite leave it out."""

    name: SqlName
    schema_name: Identifier | None = None


def extensions_of(schema: Any) -> dict[str, Extension]:
    """A schema's extensions (a schema built before extensions existed, or by ``construct``, has none)."""
    return getattr(schema, "extensions", None) or {}


def views_of(schema: Any) -> dict[str, View]:
    """A schema's views (a schema built before views existed, or by ``construct``, has none)."""
    return getattr(schema, "views", None) or {}


def domains_of(schema: Any) -> dict[str, DomainType]:
    """A schema's domains (a schema built before domains existed, or by ``construct``, has none)."""
    return getattr(schema, "domains", None) or {}


class Schema(Frozen):
    """The whole schema of one stream at one point: tables by name, enum types and domains by name."""

    tables: dict[str, Table] = Field(default_factory=dict)
    enums: dict[str, EnumType] = Field(default_factory=dict)
    domains: dict[str, DomainType] = Field(default_factory=dict)
    views: dict[str, View] = Field(default_factory=dict)
    extensions: dict[str, Extension] = Field(default_factory=dict)
    routines: dict[str, Routine] = Field(default_factory=dict)
    triggers: dict[str, Trigger] = Field(default_factory=dict)

    def table(self, name: str) -> Table | None:
        return self.tables.get(name)

    def sorted(self) -> Schema:
        """The same schema with tables in name order (for stable output and comparison)."""
        return Schema(
            tables={name: self.tables[name] for name in sorted(self.tables)},
            enums={name: self.enums[name] for name in sorted(self.enums)},
            domains={name: domains_of(self)[name] for name in sorted(domains_of(self))},
            views={name: views_of(self)[name] for name in sorted(views_of(self))},
            extensions={name: extensions_of(self)[name] for name in sorted(extensions_of(self))},
            routines={name: routines_of(self)[name] for name in sorted(routines_of(self))},
            triggers={name: triggers_of(self)[name] for name in sorted(triggers_of(self))},
        )
