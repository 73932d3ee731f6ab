"""Live database -> the schema objects the projections produce.

Normalised per dialect so that a database built from state S introspects back
to the dialect's form of S (service.reconciler.dialects: Dialect.normalize).
SQLite and MySQL/MariaDB go through SQLAlchemy's Inspector; SQLite's declared
type text comes from ``PRAGMA table_xinfo`` (SQLite keeps it as written).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Collection
from functools import lru_cache
from itertools import groupby
from operator import itemgetter
from typing import Any

import sqlalchemy as sa

from events.model import (
    Column,
    ColumnType,
    Constraint,
    Index,
    Reference,
    Schema,
    Table,
    construct,
    parse_type,
)
from service.reconciler.normalize import LiveSchema, canonical_check, canonical_default, canonical_schema

SKIP_TABLES = re.compile(r"^(sqlite_|schemalog_)")

SQLITE_COLUMNS = 'SELECT cid, name, type, "notnull", dflt_value, pk, hidden FROM pragma_table_xinfo(:t)'
SQLITE_TABLE_SQL = "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = :t"

SQLITE_TYPES = {"blob": "bytes", "double": "double", "boolean": "boolean", "datetime": "timestamp"}


def sqlite_type(declared: str) -> ColumnType:
    text = " ".join(declared.lower().split())
    if text in SQLITE_TYPES:
        return ColumnType(name=SQLITE_TYPES[text])
    try:
        return parse_type(text)
    except ValueError:
        return ColumnType(name=text or "blob", dialect="sqlite") if text else ColumnType(name="bytes")


def _fk_action(value: Any) -> str | None:
    if not value:
        return None
    action = " ".join(str(value).lower().split())
    return None if action == "no action" else action


def _unescape(name: str) -> str:
    """SQLAlchemy's SQLite reflection keeps a quoted name's doubled quotes: undo that."""
    return name.replace('""', '"')


_SQLITE_IDENT = r'(?:"(?:[^"]|"")*"|\[[^\]]*\]|`(?:[^`]|``)*`|[A-Za-z_][A-Za-z0-9_$]*)'
_SQLITE_FK = re.compile(
    rf"CONSTRAINT\s+({_SQLITE_IDENT})\s+FOREIGN\s+KEY\s*\(((?:\s*{_SQLITE_IDENT}\s*,?)+)\)\s*"
    rf"REFERENCES\s+({_SQLITE_IDENT})\s*\(((?:\s*{_SQLITE_IDENT}\s*,?)+)\)"
    r"((?:\s+ON\s+(?:DELETE|UPDATE)\s+(?:SET\s+NULL|SET\s+DEFAULT|CASCADE|RESTRICT|NO\s+ACTION))*)",
    re.IGNORECASE,
)
_SQLITE_FK_ACTION = re.compile(
    r"ON\s+(DELETE|UPDATE)\s+(SET\s+NULL|SET\s+DEFAULT|CASCADE|RESTRICT|NO\s+ACTION)", re.IGNORECASE
)


def _sqlite_name(token: str) -> str:
    token = token.strip()
    if token[:1] == '"':
        return token[1:-1].replace('""', '"')
    if token[:1] == "`":
        return token[1:-1].replace("``", "`")
    if token[:1] == "[":
        return token[1:-1]
    return token


def _sqlite_names(text: str) -> tuple[str, ...]:
    return tuple(_sqlite_name(t) for t in re.findall(_SQLITE_IDENT, text))


_SQLITE_UNIQUE = re.compile(
    rf"CONSTRAINT\s+({_SQLITE_IDENT})\s+UNIQUE\s*\(((?:\s*{_SQLITE_IDENT}\s*,?)+)\)", re.IGNORECASE
)


def sqlite_unique_constraints(sql: str) -> list[Constraint]:
    """Named unique constraints from a CREATE TABLE text."""
    return [
        Constraint(name=_sqlite_name(m.group(1)), kind="unique", columns=_sqlite_names(m.group(2)))
        for m in _SQLITE_UNIQUE.finditer(sql)
    ]


def sqlite_foreign_keys(sql: str) -> list[Constraint]:
    """Named foreign keys from a CREATE TABLE text (SQLite keeps their names nowhere else)."""
    out = []
    for match in _SQLITE_FK.finditer(sql):
        actions = {m.group(1).lower(): _fk_action(m.group(2)) for m in _SQLITE_FK_ACTION.finditer(match.group(5))}
        out.append(
            Constraint(
                name=_sqlite_name(match.group(1)),
                kind="foreign_key",
                columns=_sqlite_names(match.group(2)),
                references=Reference(table=_sqlite_name(match.group(3)), columns=_sqlite_names(match.group(4))),
                on_delete=actions.get("delete"),
                on_update=actions.get("update"),
            )
        )
    return out


SQLITE_FK_LIST = 'SELECT id, seq, "table", "from", "to", on_update, on_delete FROM pragma_foreign_key_list(:t)'


def sqlite_all_foreign_keys(conn: sa.Connection, table: str, sql: str) -> list[Constraint]:
    """Every foreign key (PRAGMA foreign_key_list is the truth), named as the CREATE TABLE text names it;
    an unnamed one (``FOREIGN KEY (a) REFERENCES t (b)`` or a column's ``REFERENCES``) gets the name
    PostgreSQL would give it, ``<table>_<columns>_fkey``."""
    named = {(k.columns, k.references.table, k.references.columns): k for k in sqlite_foreign_keys(sql) if k.references}
    groups: dict[int, list[Any]] = {}
    for r in conn.execute(sa.text(SQLITE_FK_LIST), {"t": table}):
        groups.setdefault(r[0], []).append(r)
    out = []
    for rows in (sorted(g, key=lambda r: r[1]) for _, g in sorted(groups.items(), reverse=True)):
        columns = tuple(r[3] for r in rows)
        ref_table = rows[0][2]
        ref_columns = tuple(r[4] for r in rows) if rows[0][4] is not None else ()
        found = named.get((columns, ref_table, ref_columns))
        if found is not None:
            out.append(found)
            continue
        out.append(
            Constraint(
                name=f"{table}_{'_'.join(columns)}_fkey",
                kind="foreign_key",
                columns=columns,
                references=Reference(table=ref_table, columns=ref_columns or columns),
                on_delete=_fk_action(rows[0][6]),
                on_update=_fk_action(rows[0][5]),
            )
        )
    return out


def introspect_sqlite(conn: sa.Connection) -> Schema:
    inspector = sa.inspect(conn)
    tables: dict[str, Table] = {}
    for name in inspector.get_table_names():
        if SKIP_TABLES.match(name):
            continue
        sql = conn.execute(sa.text(SQLITE_TABLE_SQL), {"t": name}).scalar() or ""
        autoincrement = "AUTOINCREMENT" in sql.upper()
        rows = conn.execute(sa.text(SQLITE_COLUMNS), {"t": name}).mappings().all()
        pk = [r["name"] for r in sorted((r for r in rows if r["pk"]), key=lambda r: r["pk"])]
        columns = []
        for r in rows:
            if r["hidden"]:
                continue
            identity = autoincrement and pk == [r["name"]] and (r["type"] or "").upper() == "INTEGER"
            columns.append(
                Column(
                    name=r["name"],
                    type=sqlite_type(r["type"] or ""),
                    nullable=not r["notnull"],
                    default=r["dflt_value"],
                    identity=identity,
                )
            )
        indexes = tuple(
            Index(name=i["name"], columns=tuple(i["column_names"]), unique=bool(i["unique"]))
            for i in inspector.get_indexes(name)
            if i.get("name") and all(c is not None for c in i["column_names"])
        )
        constraints: list[Constraint] = []
        constraints.extend(sqlite_unique_constraints(sql))
        for c in inspector.get_check_constraints(name):
            check_name = c.get("name")
            if check_name:
                constraints.append(Constraint(name=_unescape(check_name), kind="check", expression=c["sqltext"]))
        constraints.extend(sqlite_all_foreign_keys(conn, name, sql))
        tables[name] = Table(
            name=name,
            columns=tuple(columns),
            primary_key=tuple(pk),
            indexes=indexes,
            constraints=tuple(constraints),
        )
    return canonical_schema(Schema(tables=tables))


# --------------------------------------------------------------------------- PostgreSQL (asyncpg, catalog)

# Every query reads the same tables (joined on the same filter rather than handed a list of oids, which
# PostgreSQL would scan once per catalogue row); column numbers are turned into names in Python. The rows
# are read by position (PgCatalogue), in the order of each SELECT list.
_PG_TABLE_FILTER = """
  c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
  AND c.relname NOT LIKE 'schemalog\\_%'
"""

PG_TABLES = f"""
SELECT c.oid, n.nspname AS schema, c.relname AS name, td.description AS comment
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_description td ON td.objoid = c.oid AND td.classoid = 'pg_class'::regclass AND td.objsubid = 0
WHERE {_PG_TABLE_FILTER}
"""

PG_COLUMNS = f"""
SELECT a.attrelid AS oid, a.attnum AS num, a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type,
       a.attnotnull AS notnull, pg_get_expr(d.adbin, d.adrelid) AS default, a.attidentity <> '' AS identity,
       cd.description AS comment
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
LEFT JOIN pg_description cd
       ON cd.objoid = a.attrelid AND cd.classoid = 'pg_class'::regclass AND cd.objsubid = a.attnum
WHERE {_PG_TABLE_FILTER} AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attrelid, a.attnum
"""

# Exclusion constraints ('x') are read only for the index they own (index_oid), like primary keys and
# unique constraints: those indexes are not indexes of the schema.
PG_CONSTRAINTS = f"""
SELECT con.conrelid AS oid, con.conname AS name, con.contype::text AS kind, con.conindid AS index_oid,
       con.conkey AS columns, con.confrelid AS ref_oid, con.confkey AS ref_columns,
       con.confdeltype::text AS on_delete, con.confupdtype::text AS on_update,
       CASE WHEN con.contype = 'c' THEN pg_get_expr(con.conbin, con.conrelid) END AS expression
FROM pg_constraint con
JOIN pg_class c ON c.oid = con.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE {_PG_TABLE_FILTER} AND con.contype IN ('p', 'u', 'f', 'c', 'x')
"""

# Every index of the tables but primary keys', those of unique and exclusion constraints too (told apart
# in Python by PG_CONSTRAINTS' index_oid: cheaper than an anti-join with pg_constraint, which has no index
# on conindid).
PG_INDEXES = f"""
SELECT i.indrelid AS oid, i.indexrelid AS index_oid, ic.relname AS name, i.indisunique AS unique,
       i.indkey::int2[] AS columns, i.indnkeyatts AS nkeys,
       i.indexprs IS NOT NULL OR i.indpred IS NOT NULL AS partial
FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE {_PG_TABLE_FILTER} AND NOT i.indisprimary
"""

PG_QUERIES = (PG_COLUMNS, PG_CONSTRAINTS, PG_INDEXES, PG_TABLES)
"""Everything introspect_postgresql reads, in the order it reads them (see read_postgresql)."""

PG_FK_ACTIONS = {"a": None, "r": "restrict", "c": "cascade", "n": "set null", "d": "set default"}

PG_TYPES = {
    "smallint": "smallint",
    "integer": "integer",
    "bigint": "bigint",
    "boolean": "boolean",
    "real": "real",
    "double precision": "double",
    "text": "text",
    "date": "date",
    "time without time zone": "time",
    "timestamp without time zone": "timestamp",
    "timestamp with time zone": "timestamptz",
    "interval": "interval",
    "json": "json",
    "uuid": "uuid",
    "bytea": "bytes",
    "numeric": "numeric",
    "character varying": "varchar",
    "character": "char",
}
_PG_PARAMS = re.compile(r"^([a-z ]+?)\(([\d,]+)\)$")


@lru_cache(maxsize=1024)
def postgresql_type(text: str) -> ColumnType:
    if text in PG_TYPES:
        found = ColumnType(name=PG_TYPES[text])
    else:
        match = _PG_PARAMS.match(text)
        if match and match.group(1) in ("numeric", "character varying", "character"):
            params = tuple(int(p) for p in match.group(2).split(","))
            found = ColumnType(name=PG_TYPES[match.group(1)], params=params)
        else:
            found = ColumnType(name=text, dialect="postgresql")
    return _shared_type(found)


def _shared_type(found: ColumnType) -> ColumnType:
    """The equal ColumnType the log's own type text gives (parse_type keeps one per text), where there is
    one: then a column read back usually holds the very object the projection's column holds."""
    try:
        shared = parse_type(str(found))
    except ValueError:
        return found
    return shared if shared == found else found


def _pg_name(schema: str, name: str) -> str:
    return name if schema == "public" else f"{schema}.{name}"


def _find(items: tuple[Any, ...], name: str) -> Any:
    for item in items:
        if item.name == name:
            return item
    return None


class PgCatalogue:
    """One read of the PostgreSQL catalogue (the rows of PG_QUERIES), by table: a LiveSchema's source.

    The rows are taken in as they arrive (``take_*``, while the server runs the next query; see
    read_postgresql): grouped by table, column numbers named. ``matching`` compares them with the
    expected objects field by field, as ``differences`` compares objects (items by name, whole fields by
    ``==``, in the canonical form ``canonical_schema`` gives), so that a migrate that finds nothing
    changed builds nothing; ``table`` builds a table's objects when asked. Nothing is made per column
    until then: a read of thousands of tables allocates little beyond its rows.
    """

    def __init__(self) -> None:
        self._names: dict[int, str] = {}  # every table read, columns or not (foreign keys name them)
        self._comments: dict[int, str | None] = {}
        self._oids: dict[str, int] = {}  # the tables of the schema: those with columns
        self._columns: dict[int, list[Any]] = {}  # PG_COLUMNS' rows by table, in column order
        self._numbers: dict[int, dict[int, str]] = {}  # column number -> name, where not the position
        self._primary_keys: dict[int, tuple[str, ...]] = {}
        # (name, kind, columns, expression, referenced table's oid, referenced columns, on delete, on update)
        self._constraints: dict[int, list[tuple[Any, ...]]] = {}
        self._owned: set[int] = set()  # the indexes of primary keys, unique and exclusion constraints
        self._indexes: dict[int, list[tuple[str, bool, tuple[str, ...]]]] = {}  # name, unique, columns
        self._unnamed: set[int] = set()  # tables with an index or constraint on a column number they lack
        self._built: dict[str, Table] = {}

    def takers(self) -> tuple[Callable[[list[Any]], None], ...]:
        """What takes in the rows of each of PG_QUERIES, in that order: constraints and indexes name their
        columns, and the indexes of constraints are told apart from the others as they come in."""
        return (self.take_columns, self.take_constraints, self.take_indexes, self.take_tables)

    @classmethod
    def of(cls, *rows: list[Any]) -> PgCatalogue:
        """A catalogue from the rows of PG_QUERIES, in that order."""
        catalogue = cls()
        for take, query_rows in zip(catalogue.takers(), rows, strict=True):
            take(query_rows)
        return catalogue

    # ------------------------------------------------------------------ taking the rows in

    def take_columns(self, rows: list[Any]) -> None:
        """PG_COLUMNS' rows (ordered by table and column number)."""
        self._columns = {oid: list(group) for oid, group in groupby(rows, itemgetter(0))}

    def take_indexes(self, rows: list[Any]) -> None:
        """PG_INDEXES' rows, once PG_CONSTRAINTS' are in: the indexes of constraints are theirs, and
        expression and partial indexes are not in the catalogue of events."""
        indexes, columns, owned = self._indexes, self._columns, self._owned
        for oid, index_oid, name, unique, nums, nkeys, partial in rows:
            if partial or not nums or 0 in nums or index_oid in owned:
                continue
            table_columns = columns.get(oid, ())
            n = nums[0]
            entry: tuple[str, bool, tuple[str, ...]]
            if nkeys == 1 and n <= len(table_columns) and table_columns[n - 1][1] == n:  # most indexes
                entry = (name, unique, (table_columns[n - 1][2],))
            else:
                try:
                    entry = (name, unique, self._named(oid, nums[:nkeys]))
                except KeyError:
                    self._unnamed.add(oid)
                    continue
            if oid in indexes:
                indexes[oid].append(entry)
            else:
                indexes[oid] = [entry]

    def take_constraints(self, rows: list[Any]) -> None:
        """PG_CONSTRAINTS' rows."""
        constraints = self._constraints
        for oid, name, kind, index_oid, nums, ref_oid, ref_nums, on_delete, on_update, expression in rows:
            try:
                if kind == "p":
                    self._primary_keys[oid] = self._named(oid, nums)
                elif kind == "u":
                    entry: tuple[Any, ...] = (name, "unique", self._named(oid, nums), None, None, None, None, None)
                elif kind == "c":
                    entry = (name, "check", (), canonical_check(expression), None, None, None, None)
                elif kind == "f":
                    references = self._named(ref_oid, ref_nums) if ref_oid in self._columns else None
                    entry = (
                        name,
                        "foreign_key",
                        self._named(oid, nums),
                        None,
                        ref_oid,
                        references,
                        PG_FK_ACTIONS.get(on_delete),
                        PG_FK_ACTIONS.get(on_update),
                    )
            except KeyError:
                self._unnamed.add(oid)
                continue
            if kind in ("p", "u", "x"):
                self._owned.add(index_oid)
            if kind in ("u", "c", "f"):
                if oid in constraints:
                    constraints[oid].append(entry)
                else:
                    constraints[oid] = [entry]

    def take_tables(self, rows: list[Any]) -> None:
        """PG_TABLES' rows."""
        for r in rows:
            self._names[r[0]] = _pg_name(r[1], r[2])
            self._comments[r[0]] = r[3]
        self._oids = {self._names[r[0]]: r[0] for r in rows if r[0] in self._columns}

    # ------------------------------------------------------------------ reading them

    def names(self) -> Collection[str]:
        return self._oids.keys()

    def _named(self, oid: int, nums: list[int] | None) -> tuple[str, ...]:
        """Column numbers of a table -> their names (KeyError for a number it does not have)."""
        if not nums:
            return ()
        rows = self._columns[oid]
        if len(nums) == 1:  # the common case; the n-th row is column n unless a column was dropped
            n = nums[0]
            if 0 < n <= len(rows) and rows[n - 1][1] == n:
                return (rows[n - 1][2],)
        numbers = self._numbers.get(oid)
        if numbers is None:
            numbers = self._numbers[oid] = {r[1]: r[2] for r in rows}
        return tuple([numbers[n] for n in nums])

    def table(self, name: str) -> Table:
        built = self._built.get(name)
        if built is None:
            built = self._built[name] = self._build(self._oids[name])
        return built

    def _build(self, oid: int) -> Table:
        if oid in self._unnamed:
            raise KeyError(f"table {self._names[oid]}: an index or constraint names a column number it lacks")
        constraints = []
        for name, kind, columns, expression, ref_oid, ref_columns, on_delete, on_update in self._constraints.get(
            oid, ()
        ):
            reference = None
            if kind == "foreign_key":
                if ref_oid not in self._names:
                    continue  # a foreign key to a table not read is left out
                if ref_columns is None:
                    raise KeyError(f"foreign key {name}: table {self._names[ref_oid]} has no columns")
                reference = construct(Reference, {"table": self._names[ref_oid], "columns": ref_columns})
            values = {
                "name": name,
                "kind": kind,
                "columns": columns,
                "expression": expression,
                "references": reference,
                "on_delete": on_delete,
                "on_update": on_update,
            }
            constraints.append(construct(Constraint, values))
        return construct(
            Table,
            {
                "name": self._names[oid],
                "columns": tuple(construct(Column, _pg_column(r)) for r in self._columns[oid]),
                "primary_key": self._primary_keys.get(oid, ()),
                "indexes": tuple(
                    construct(Index, {"name": name, "columns": columns, "unique": unique})
                    for name, unique, columns in self._indexes.get(oid, ())
                ),
                "constraints": tuple(constraints),
                "comment": self._comments[oid],
            },
        )

    # ------------------------------------------------------------------ comparison on the rows

    def matching(self, expected: Schema) -> set[str]:
        wanted, comments, columns, unnamed = expected.tables, self._comments, self._columns, self._unnamed
        same = set()
        for name, oid in self._oids.items():
            want = wanted.get(name)
            if want is None or oid in unnamed:
                continue
            fields = want.__dict__
            if (
                fields["comment"] == comments[oid]
                and fields["primary_key"] == self._primary_keys.get(oid, ())
                and _pg_columns_match(fields["columns"], columns[oid])
                and self._indexes_match(fields["indexes"], oid)
                and self._constraints_match(fields["constraints"], oid)
            ):
                same.add(name)
        return same

    def _indexes_match(self, wanted: tuple[Index, ...], oid: int) -> bool:
        """What ``differences`` decides for a table's indexes (normalize._same_items)."""
        live = self._indexes.get(oid, ())
        if len(live) != len(wanted):
            return False
        for position, (name, unique, columns) in enumerate(live):
            have = wanted[position]  # positionally first (the order they were made in), else by name
            if have.name != name:
                have = _find(wanted, name)
                if have is None:
                    return False
            fields = have.__dict__
            if fields["unique"] != unique or fields["columns"] != columns:
                return False
        return True

    def _constraints_match(self, wanted: tuple[Constraint, ...], oid: int) -> bool:
        """What ``differences`` decides for a table's constraints (normalize._same_items)."""
        names, count = self._names, 0
        for name, kind, columns, expression, ref_oid, ref_columns, on_delete, on_update in self._constraints.get(
            oid, ()
        ):
            if kind == "foreign_key" and ref_oid not in names:
                continue  # a foreign key to a table not read is left out
            have = wanted[count] if count < len(wanted) else None
            if have is None or have.name != name:
                have = _find(wanted, name)
                if have is None:
                    return False
            count += 1
            fields, reference = have.__dict__, have.references
            if (
                fields["kind"] != kind
                or fields["columns"] != columns
                or fields["expression"] != expression
                or fields["on_delete"] != on_delete
                or fields["on_update"] != on_update
            ):
                return False
            if kind != "foreign_key":
                if reference is not None:
                    return False
            elif (
                ref_columns is None
                or reference is None
                or reference.table != names[ref_oid]
                or reference.columns != ref_columns
            ):
                return False
        return count == len(wanted)


def _pg_default(default: str, identity: bool) -> tuple[str | None, bool]:
    """A column's default (not None) and identity as the schema holds them: a serial column's
    ``nextval(...)`` makes it an identity column with no default; any other default, canonical."""
    if default.startswith("nextval("):
        return None, True
    return canonical_default(default), identity


def _pg_column(r: Any) -> dict[str, Any]:
    """A Column's field values from a PG_COLUMNS row (what _pg_columns_match compares field by field)."""
    default, identity = r[5], r[6]
    if default is not None:
        default, identity = _pg_default(default, identity)
    return {
        "name": r[2],
        "type": postgresql_type(r[3]),
        "nullable": not r[4],
        "default": default,
        "identity": identity,
        "comment": r[7],
    }


def _pg_columns_match(want: tuple[Column, ...], rows: list[Any]) -> bool:
    """Whether the columns built from these rows (_pg_column) would equal ``want`` as ``differences``
    decides (normalize._same_items): as many, each equal to the one of its name, every field by ==.
    The hot loop of a comparison, so it reads the rows in place rather than building their values."""
    if len(want) != len(rows):
        return False
    for column, r in zip(want, rows, strict=True):
        c = column.__dict__
        if c["name"] != r[2]:  # another order (a column dropped and added back comes last), or another name
            by_name = {r[2]: r for r in rows}
            return all(by_name.get(other.name) is not None for other in want) and _pg_columns_match(
                want, [by_name[other.name] for other in want]
            )
        default, identity = r[5], r[6]
        if default is not None:
            default, identity = _pg_default(default, identity)
        live_type = postgresql_type(r[3])
        if (
            c["nullable"] == r[4]
            or c["default"] != default
            or c["identity"] != identity
            or c["comment"] != r[7]
            or (c["type"] is not live_type and c["type"] != live_type)
        ):
            return False
    return True


async def read_postgresql(conn: Any) -> PgCatalogue:
    """The catalogue rows introspection needs (PG_QUERIES; asyncpg connection).

    One query at a time, as a connection allows, but each sent before the rows of the one before are
    taken in (grouped by table, column numbers named): the server runs it meanwhile.
    """
    catalogue = PgCatalogue()
    takers = catalogue.takers()
    rows = await conn.fetch(PG_QUERIES[0])
    for take, query in zip(takers, PG_QUERIES[1:], strict=False):
        following = asyncio.ensure_future(conn.fetch(query))
        await asyncio.sleep(0)  # the task sends the query
        try:
            take(rows)
        finally:
            rows = await following  # the connection is free again only when it has answered
    takers[-1](rows)
    return catalogue


async def introspect_postgresql(conn: Any) -> LiveSchema:
    """The schema of a PostgreSQL database (asyncpg connection): its objects are built when first read;
    ``differences`` with it compares the catalogue rows and builds only the tables that differ."""
    return LiveSchema.of(await read_postgresql(conn))


# --------------------------------------------------------------------------- MySQL / MariaDB (Inspector)

MYSQL_COLUMNS = """
SELECT TABLE_NAME, COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, COLUMN_DEFAULT, EXTRA, COLUMN_COMMENT
FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() ORDER BY TABLE_NAME, ORDINAL_POSITION
"""
MYSQL_TABLES = """
SELECT TABLE_NAME, TABLE_COMMENT FROM information_schema.TABLES
WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE'
"""

MYSQL_TYPES = {
    "smallint": "smallint",
    "int": "integer",
    "integer": "integer",
    "bigint": "bigint",
    "tinyint(1)": "boolean",
    "float": "real",
    "double": "double",
    "text": "text",
    "date": "date",
    "time(6)": "time",
    "datetime(6)": "timestamp",
    "uuid": "uuid",
    "longblob": "bytes",
    "json": "json",
}
_MYSQL_PARAMS = re.compile(r"^([a-z]+)\(([\d,]+)\)( unsigned)?$")


def mysql_type(text: str) -> ColumnType:
    text = text.lower().strip()
    if text in MYSQL_TYPES:
        return ColumnType(name=MYSQL_TYPES[text])
    match = _MYSQL_PARAMS.match(text)
    if match and not match.group(3):
        base, params = match.group(1), tuple(int(p) for p in match.group(2).split(","))
        if base in ("smallint", "int", "bigint"):  # display widths mean nothing
            return ColumnType(name=MYSQL_TYPES[base])
        if base == "decimal":
            return ColumnType(name="numeric", params=params)
        if base in ("varchar", "char"):
            return ColumnType(name=base, params=params)
    return ColumnType(name=text, dialect="mysql")


_JSON_CHECK = re.compile(r"^json_valid\(`?([^`]+)`?\)$", re.IGNORECASE)


def introspect_mysql(conn: sa.Connection) -> Schema:
    inspector = sa.inspect(conn)
    comments = {r[0]: r[1] or None for r in conn.execute(sa.text(MYSQL_TABLES))}
    raw: dict[str, list[Any]] = {}
    for r in conn.execute(sa.text(MYSQL_COLUMNS)):
        raw.setdefault(r[0], []).append(r)
    tables: dict[str, Table] = {}
    for name in sorted(comments):
        if SKIP_TABLES.match(name) or name not in raw:
            continue
        checks = inspector.get_check_constraints(name)
        json_columns = set()
        constraints: list[Constraint] = []
        for c in checks:
            match = _JSON_CHECK.match((c.get("sqltext") or "").strip())
            if match and match.group(1) == c.get("name"):
                json_columns.add(match.group(1))  # MariaDB's JSON is LONGTEXT with this check
                continue
            if c.get("name"):
                constraints.append(Constraint(name=c["name"], kind="check", expression=c["sqltext"]))
        columns = []
        for r in raw[name]:
            default = r[4]
            if default is not None and default.upper() == "NULL":
                default = None
            ctype = ColumnType(name="json") if r[1] in json_columns else mysql_type(r[2])
            columns.append(
                Column(
                    name=r[1],
                    type=ctype,
                    nullable=r[3] == "YES",
                    default=default,
                    identity="auto_increment" in (r[5] or "").lower(),
                    comment=r[6] or None,
                )
            )
        fks = inspector.get_foreign_keys(name)
        fk_names = {fk["name"]: tuple(fk["constrained_columns"]) for fk in fks if fk.get("name")}
        indexes = []
        for i in inspector.get_indexes(name):
            cols = tuple(i["column_names"])
            if fk_names.get(i["name"]) == cols and not i["unique"]:
                continue  # the index MySQL makes for a foreign key
            indexes.append(Index(name=i["name"], columns=cols, unique=bool(i["unique"])))
        for fk in fks:
            options = fk.get("options") or {}
            constraints.append(
                Constraint(
                    name=fk["name"],
                    kind="foreign_key",
                    columns=tuple(fk["constrained_columns"]),
                    references=Reference(table=fk["referred_table"], columns=tuple(fk["referred_columns"])),
                    on_delete=_fk_action(options.get("ondelete")),
                    on_update=_fk_action(options.get("onupdate")),
                )
            )
        pk = inspector.get_pk_constraint(name).get("constrained_columns") or []
        tables[name] = Table(
            name=name,
            columns=tuple(columns),
            primary_key=tuple(pk),
            indexes=tuple(indexes),
            constraints=tuple(constraints),
            comment=comments.get(name),
        )
    return canonical_schema(Schema(tables=tables))
