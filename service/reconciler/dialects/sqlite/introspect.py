"""SQLite: the live schema from sqlite_master and the pragmas.

The pragmas give columns, keys and index columns; what they do not give (a column's collation, a
generated column's expression, constraint names, a foreign key's DEFERRABLE, the primary key's name,
an index's expressions and WHERE) SQLite keeps only in the CREATE TABLE and CREATE INDEX text it was
given, word for word. That text is read here with a small tokenizer (quoted names, string literals,
nested parentheses), never with a pattern over the whole text: a check's string literal may hold
anything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from events.expressions import STORED
from events.model import (
    Column,
    ColumnType,
    Constraint,
    Generated,
    Index,
    Reference,
    Schema,
    Table,
    Trigger,
    View,
    construct,
)
from service.reconciler.dialects.sqlite.ddl import (
    check_name,
    declared_type,
    foreign_key_name,
    keep_null_defaults,
    unique_name,
)
from service.reconciler.introspect import SKIP_TABLES
from service.reconciler.introspect import fk_action as _fk_action
from service.reconciler.normalize import canonical_schema

# Each query reads every table (or index) at once: a pragma per table, joined to sqlite_master, costs one
# statement in all rather than one each.
SQLITE_TABLES = "SELECT name, sql FROM sqlite_master WHERE type = 'table' ORDER BY name"
SQLITE_COLUMNS = (
    'SELECT m.name, x.cid, x.name, x.type, x."notnull", x.dflt_value, x.pk, x.hidden'
    " FROM sqlite_master AS m, pragma_table_xinfo(m.name) AS x WHERE m.type = 'table' ORDER BY m.name, x.cid"
)
SQLITE_FOREIGN_KEYS = (
    'SELECT m.name, f.id, f.seq, f."table", f."from", f."to", f.on_update, f.on_delete'
    " FROM sqlite_master AS m, pragma_foreign_key_list(m.name) AS f WHERE m.type = 'table'"
)
SQLITE_INDEXES = "SELECT tbl_name, name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL ORDER BY name"
"""The indexes CREATE INDEX made (those of UNIQUE and PRIMARY KEY constraints have no text)."""
SQLITE_INDEX_KEYS = (
    'SELECT m.name, x.seqno, x.cid, x.name, x."desc" FROM sqlite_master AS m, pragma_index_xinfo(m.name) AS x'
    " WHERE m.type = 'index' AND m.sql IS NOT NULL AND x.key = 1 ORDER BY m.name, x.seqno"
)
SQLITE_KEY_INDEXES = (
    "SELECT m.name FROM sqlite_master AS m, pragma_index_list(m.name) AS x WHERE m.type = 'table' AND x.origin = 'pk'"
)
"""The tables whose primary key has an index of its own: every one but those whose key is the rowid (a rowid
table's INTEGER PRIMARY KEY column: SQLite's own rule, DESC and INT included, without reading the text)."""
SQLITE_GENERATED_HIDDEN = frozenset({2, 3})
"""pragma table_xinfo's ``hidden``: 2 a virtual generated column, 3 a stored one (1: a virtual table's)."""


def sqlite_type(declared: str) -> ColumnType:
    """A declared type as the log holds it (ddl.declared_type: portable only where it is what the DDL writes)."""
    return declared_type(declared)


def _sqlite_name(token: str) -> str:
    token = token.strip()
    if token[:1] == '"':
        return token[1:-1].replace('""', '"')
    if token[:1] == "`":
        return token[1:-1].replace("``", "`")
    if token[:1] == "[":
        return token[1:-1]
    if token[:1] == "'":
        return token[1:-1].replace("''", "'")
    return token


# --------------------------------------------------------------------------- reading SQLite's DDL text

_TOKEN = re.compile(
    r"""(?P<space>\s+|--[^\n]*|/\*.*?(?:\*/|$))
    |(?P<string>'(?:[^']|'')*')
    |(?P<name>"(?:[^"]|"")*"|`(?:[^`]|``)*`|\[[^\]]*\])
    |(?P<word>[^\W\d][\w$]*)
    |(?P<number>\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+)
    |(?P<mark>[(),])
    |(?P<other>.)""",
    re.VERBOSE | re.DOTALL,
)


@dataclass(slots=True)
class Token:
    kind: str
    text: str
    start: int
    end: int

    def word(self, *words: str) -> bool:
        """Is it one of these keywords (a bare word, any case)?"""
        return self.kind == "word" and self.text.upper() in words

    @property
    def is_name(self) -> bool:
        return self.kind in ("word", "name", "string")


def tokens(sql: str) -> list[Token]:
    out = []
    for match in _TOKEN.finditer(sql):
        kind = match.lastgroup
        if kind is None or kind == "space":
            continue
        out.append(Token(kind, match.group(), match.start(), match.end()))
    return out


def _closing(toks: list[Token], opening: int) -> int:
    """The index of the ``)`` that closes the ``(`` at ``opening`` (len(toks) when it is missing)."""
    depth = 0
    for i in range(opening, len(toks)):
        if toks[i].text == "(" and toks[i].kind == "mark":
            depth += 1
        elif toks[i].text == ")" and toks[i].kind == "mark":
            depth -= 1
            if depth == 0:
                return i
    return len(toks)


def _split(toks: list[Token]) -> list[list[Token]]:
    """Items separated by commas outside parentheses."""
    items: list[list[Token]] = [[]]
    depth = 0
    for tok in toks:
        if tok.kind == "mark":
            if tok.text == "(":
                depth += 1
            elif tok.text == ")":
                depth -= 1
            elif depth == 0:
                items.append([])
                continue
        items[-1].append(tok)
    return [item for item in items if item]


def _first_paren(toks: list[Token]) -> int:
    return next((i for i, t in enumerate(toks) if t.kind == "mark" and t.text == "("), len(toks))


def _inside(sql: str, toks: list[Token], opening: int) -> tuple[str, int]:
    """The text between the ``(`` at ``opening`` and its ``)``, and the index of that ``)``."""
    closing = _closing(toks, opening)
    if closing >= len(toks) or closing == opening + 1:
        return "", closing
    return sql[toks[opening + 1].start : toks[closing - 1].end], closing


def _names_in(toks: list[Token], opening: int) -> tuple[tuple[str, ...], int]:
    """The names listed in the parentheses at ``opening`` (``("a", b)``); and the index after them."""
    closing = _closing(toks, opening)
    names = tuple(_sqlite_name(item[0].text) for item in _split(toks[opening + 1 : closing]) if item[0].is_name)
    return names, closing + 1


@dataclass
class ColumnText:
    """What a column definition says that the pragmas do not."""

    collation: str | None = None
    generated: str | None = None
    stored: bool = False


@dataclass
class ForeignKeyText:
    name: str | None
    columns: tuple[str, ...]
    table: str
    ref_columns: tuple[str, ...]
    on_delete: str | None = None
    on_update: str | None = None
    deferrable: bool = False
    initially_deferred: bool = False
    anonymous: bool = False
    """The text gives it no name: ``name`` is the one read_table_sql invented."""


@dataclass
class ConstraintText:
    """A unique or check constraint as the text has it: its name (None: none), and the column whose
    definition it is in (None: the table's)."""

    name: str | None
    column: str | None
    columns: tuple[str, ...] = ()
    expression: str = ""


@dataclass
class TableText:
    """A CREATE TABLE text, read: per column what the pragmas lack, and the table's constraints (each
    unnamed one with the name introspection gives it, when the table's name is known)."""

    columns: dict[str, ColumnText] = field(default_factory=dict)
    primary_key_name: str | None = None
    uniques: list[Constraint] = field(default_factory=list)
    checks: list[Constraint] = field(default_factory=list)
    foreign_keys: list[ForeignKeyText] = field(default_factory=list)
    written: list[ConstraintText] = field(default_factory=list)
    """Unique and check constraints in the order of the text (uniques and checks are made from them)."""


def read_table_sql(sql: str, table: str = "") -> TableText:
    """Read a CREATE TABLE text as SQLite keeps it (sqlite_master.sql). Without ``table``, the unnamed
    unique and check constraints are left out (their names are made from the table's)."""
    out = TableText()
    toks = tokens(sql)
    opening = _first_paren(toks)
    closing = _closing(toks, opening)
    for item in _split(toks[opening + 1 : closing]):
        if item[0].word("CONSTRAINT", "PRIMARY", "UNIQUE", "CHECK", "FOREIGN"):
            _table_constraint(sql, item, out)
        else:
            _column_definition(sql, item, out)
    _name_constraints(out, table)
    return out


def _invent(base: str, taken: set[str]) -> str:
    """``base``, or the first of ``base1``, ``base2``, ... not taken (PostgreSQL's way with its own names)."""
    name, n = base, 0
    while name in taken:
        n += 1
        name = f"{base}{n}"
    taken.add(name)
    return name


def _name_constraints(out: TableText, table: str) -> None:
    """Every unique and check constraint of the text with its name: its own, or one invented from the table
    and its columns (ddl.unique_name, ddl.check_name), and then anonymous (ddl.unnamed writes it back
    without a name)."""
    taken = {c.name for c in out.written if c.name is not None}
    taken |= {k.name for k in out.foreign_keys if k.name is not None}
    if out.primary_key_name is not None:
        taken.add(out.primary_key_name)
    for found in out.written:
        name = found.name
        if name is None:
            if not table:
                continue
            if found.expression:
                name = _invent(check_name(table, found.column), taken)
            else:
                name = _invent(unique_name(table, found.columns), taken)
        anonymous = found.name is None
        if found.expression:
            out.checks.append(_check(name, found.expression, anonymous))
        else:
            out.uniques.append(Constraint(name=name, kind="unique", columns=found.columns, anonymous=anonymous))
    if table:
        for fk in out.foreign_keys:
            if fk.name is None:
                fk.name = _invent(foreign_key_name(table, fk.columns), taken)
                fk.anonymous = True


def _column_definition(sql: str, item: list[Token], out: TableText) -> None:
    text = ColumnText()
    column = _sqlite_name(item[0].text)
    out.columns[column] = text
    name: str | None = None  # a CONSTRAINT name, for the constraint that follows it
    i = 1
    while i < len(item):
        tok = item[i]
        if tok.kind == "mark" and tok.text == "(":
            i = _closing(item, i) + 1  # a type's parameters, a default's or a check's expression
            continue
        if tok.word("CONSTRAINT") and i + 1 < len(item) and not (i + 2 < len(item) and item[i + 2].word("PRIMARY")):
            name = _sqlite_name(item[i + 1].text)
            i += 2
            continue
        if tok.word("UNIQUE"):
            out.written.append(ConstraintText(name, column, (column,)))
            name = None
            i += 1
            continue
        if tok.word("CHECK") and i + 1 < len(item) and item[i + 1].text == "(":
            expression, closing = _inside(sql, item, i + 1)
            out.written.append(ConstraintText(name, column, (), expression))
            name = None
            i = closing + 1
            continue
        if tok.word("REFERENCES"):
            fk, i = _foreign_key_clause(item, i, name, (column,))
            out.foreign_keys.append(fk)
            name = None
            continue
        if tok.word("COLLATE") and i + 1 < len(item):
            text.collation = _sqlite_name(item[i + 1].text).upper()
            i += 2
            continue
        if tok.word("AS") and i + 1 < len(item) and item[i + 1].text == "(":
            text.generated, closing = _inside(sql, item, i + 1)
            i = closing + 1
            text.stored = i < len(item) and item[i].word("STORED")
            continue
        if tok.word("CONSTRAINT") and i + 2 < len(item) and item[i + 2].word("PRIMARY"):
            out.primary_key_name = _sqlite_name(item[i + 1].text)
            i += 3
            continue
        if tok.word("NOT", "NULL", "DEFAULT", "COLLATE", "GENERATED", "AS", "PRIMARY"):
            name = None  # a name given to a constraint that is not one the log names
        i += 1


def _table_constraint(sql: str, item: list[Token], out: TableText) -> None:
    name = None
    i = 0
    if item[0].word("CONSTRAINT") and len(item) > 1:
        name = _sqlite_name(item[1].text)
        i = 2
    if i >= len(item):
        return
    head = item[i]
    if head.word("PRIMARY"):
        out.primary_key_name = name
    elif head.word("UNIQUE"):
        columns, _ = _names_in(item, _first_paren(item))
        out.written.append(ConstraintText(name, None, columns))
    elif head.word("CHECK") and i + 1 < len(item) and item[i + 1].text == "(":
        out.written.append(ConstraintText(name, None, (), _inside(sql, item, i + 1)[0]))
    elif head.word("FOREIGN"):
        out.foreign_keys.append(_foreign_key(item, i, name))


def _check(name: str, expression: str, anonymous: bool) -> Constraint:
    data = {"name": name, "kind": "check", "expression": expression, "anonymous": anonymous}
    return Constraint.model_validate(data, context=STORED)


def _foreign_key(item: list[Token], i: int, name: str | None) -> ForeignKeyText:
    columns, i = _names_in(item, _first_paren(item[i:]) + i)
    while i < len(item) and not item[i].word("REFERENCES"):
        i += 1
    return _foreign_key_clause(item, i, name, columns)[0]


# A column definition's words that end its REFERENCES clause (the constraint that follows begins there).
_COLUMN_CONSTRAINT_WORDS = ("CONSTRAINT", "PRIMARY", "UNIQUE", "CHECK", "DEFAULT", "COLLATE", "GENERATED", "AS")


def _foreign_key_clause(
    item: list[Token], i: int, name: str | None, columns: tuple[str, ...]
) -> tuple[ForeignKeyText, int]:
    """The REFERENCES clause at ``i`` (a table's FOREIGN KEY, or a column's own); and the index after it."""
    table = _sqlite_name(item[i + 1].text) if i + 1 < len(item) else ""
    i += 2
    ref_columns: tuple[str, ...] = ()
    if i < len(item) and item[i].text == "(":
        ref_columns, i = _names_in(item, i)
    fk = ForeignKeyText(name, columns, table, ref_columns)
    while i < len(item):
        tok = item[i]
        if tok.word(*_COLUMN_CONSTRAINT_WORDS) or (tok.word("NOT") and i + 1 < len(item) and item[i + 1].word("NULL")):
            break
        if tok.word("NULL"):
            break
        if tok.word("ON") and i + 2 < len(item):
            which = item[i + 1].text.lower()
            words = [item[i + 2].text]
            i += 3
            if words[0].upper() in ("SET", "NO") and i < len(item):
                words.append(item[i].text)
                i += 1
            action = _fk_action(" ".join(words))
            if which == "delete":
                fk.on_delete = action
            elif which == "update":
                fk.on_update = action
            continue
        if tok.word("NOT") and i + 1 < len(item) and item[i + 1].word("DEFERRABLE"):
            fk.deferrable = False
            i += 2
            continue
        if tok.word("DEFERRABLE"):
            fk.deferrable = True
        elif tok.word("INITIALLY") and i + 1 < len(item):
            fk.initially_deferred = item[i + 1].word("DEFERRED")
            i += 1
        i += 1
    fk.initially_deferred = fk.initially_deferred and fk.deferrable  # SQLite ignores it otherwise
    return fk, i


@dataclass
class IndexText:
    unique: bool
    elements: list[tuple[str, bool]]
    """Each element's text (without COLLATE, ASC, DESC) and whether it names only a column."""
    where: str | None


def read_index_sql(sql: str) -> IndexText:
    """Read a CREATE INDEX text: its elements and its WHERE."""
    toks = tokens(sql)
    opening = _first_paren(toks)
    closing = _closing(toks, opening)
    elements = []
    for item in _split(toks[opening + 1 : closing]):
        end = len(item)
        if end > 1 and item[end - 1].word("ASC", "DESC"):
            end -= 1
        if end > 2 and item[end - 2].word("COLLATE"):
            end -= 2
        part = item[:end]
        elements.append((_strip_outer(sql[part[0].start : part[-1].end]), len(part) == 1 and part[0].is_name))
    where = None
    rest = toks[closing + 1 :]
    if rest and rest[0].word("WHERE") and len(rest) > 1:
        where = sql[rest[1].start : rest[-1].end]
    unique = len(toks) > 1 and toks[1].word("UNIQUE")
    return IndexText(unique, elements, where)


def _strip_outer(text: str) -> str:
    """``(a + b)`` -> ``a + b``: the parentheses the dialect writes around an expression element."""
    toks = tokens(text)
    if len(toks) > 2 and toks[0].text == "(" and _closing(toks, 0) == len(toks) - 1:
        return text[toks[0].end : toks[-1].start].strip()
    return text


# --------------------------------------------------------------------------- the schema


def sqlite_unique_constraints(sql: str) -> list[Constraint]:
    """Named unique constraints from a CREATE TABLE text."""
    return read_table_sql(sql).uniques


def _foreign_keys(table: str, rows: list[Any], text: TableText) -> list[Constraint]:
    """Every foreign key (PRAGMA foreign_key_list is the truth), named as the CREATE TABLE text names it;
    an unnamed one (``FOREIGN KEY (a) REFERENCES t (b)`` or a column's ``REFERENCES``) has the name
    read_table_sql invented, the one PostgreSQL would give it (ddl.foreign_key_name), and is anonymous.
    DEFERRABLE is read from the text."""
    written = {(k.columns, k.table, k.ref_columns): k for k in text.foreign_keys}
    groups: dict[int, list[Any]] = {}
    for r in rows:  # id, seq, table, from, to, on_update, on_delete
        groups.setdefault(r[0], []).append(r)
    out = []
    for group in (sorted(g, key=lambda r: r[1]) for _, g in sorted(groups.items(), reverse=True)):
        columns = tuple(r[3] for r in group)
        ref_table = group[0][2]
        ref_columns = tuple(r[4] for r in group) if group[0][4] is not None else ()
        found = written.get((columns, ref_table, ref_columns))
        out.append(
            Constraint(
                name=found.name if found is not None and found.name else foreign_key_name(table, columns),
                kind="foreign_key",
                columns=columns,
                references=Reference(table=ref_table, columns=ref_columns or columns),
                on_delete=_fk_action(group[0][6]),
                on_update=_fk_action(group[0][5]),
                deferrable=found is not None and found.deferrable,
                initially_deferred=found is not None and found.initially_deferred,
                anonymous=found is None or found.anonymous or not found.name,
            )
        )
    return out


def _index(name: str, sql: str, keys: list[Any]) -> Index | None:
    """One index from its CREATE INDEX text and its key columns (seqno, cid, name, desc); None for a text
    this reader does not understand (then it is missing, and shows as a difference)."""
    text = read_index_sql(sql)
    if len(text.elements) != len(keys):
        return None
    elements = []
    for (_seq, cid, column, descending), (element, _plain) in zip(keys, text.elements, strict=True):
        if cid >= 0:
            elements.append({"column": column, "descending": bool(descending)})
        else:  # -2: an expression
            elements.append({"expression": element, "descending": bool(descending)})
    data = {"name": name, "unique": text.unique, "elements": elements, "where": text.where}
    return Index.model_validate(data, context=STORED)  # the database's text, not an author's


def _column(r: Any, pk: list[str], autoincrement: bool, text: TableText) -> Column:
    """One column from its pragma table_xinfo row (cid, name, type, notnull, dflt_value, pk, hidden).

    A primary key column is NOT NULL, as the log holds every one: the rowid never is NULL, a WITHOUT ROWID
    table's key columns are NOT NULL, and the others, which a rowid table lets hold NULL without NOT NULL
    (SQLite's quirk: sqlite_nullable_keys names them, for import to warn), are written NOT NULL by migrate."""
    _cid, name, declared, notnull, default, _pk, hidden = r
    written = text.columns.get(name, ColumnText())
    generated = None
    if hidden in SQLITE_GENERATED_HIDDEN:
        generated = Generated.model_validate(
            {"expression": written.generated or "", "stored": hidden == 3}, context=STORED
        )
    values = {
        "name": name,
        "type": declared_type(declared or "", pk == [name]),
        "nullable": not notnull and name not in pk,
        "default": default,
        "identity": autoincrement and pk == [name] and (declared or "").upper() == "INTEGER",
        "collation": written.collation if written.collation != "BINARY" else None,
        "generated": generated,
    }
    return Column.model_validate(values, context=STORED)  # the database's own text, not an author's


def introspect_sqlite(conn: sa.Connection) -> Schema:
    columns: dict[str, list[Any]] = {}
    for row in conn.execute(sa.text(SQLITE_COLUMNS)):
        columns.setdefault(row[0], []).append(tuple(row[1:]))
    foreign_keys: dict[str, list[Any]] = {}
    for row in conn.execute(sa.text(SQLITE_FOREIGN_KEYS)):
        foreign_keys.setdefault(row[0], []).append(tuple(row[1:]))
    keys: dict[str, list[Any]] = {}
    for row in conn.execute(sa.text(SQLITE_INDEX_KEYS)):
        keys.setdefault(row[0], []).append(tuple(row[1:]))
    indexes: dict[str, list[Index]] = {}
    for table_name, name, sql in conn.execute(sa.text(SQLITE_INDEXES)):
        index = _index(name, sql, keys.get(name, []))
        if index is not None:
            indexes.setdefault(table_name, []).append(index)
    tables: dict[str, Table] = {}
    for name, sql in conn.execute(sa.text(SQLITE_TABLES)).all():
        if SKIP_TABLES.match(name):
            continue
        sql = sql or ""
        text = read_table_sql(sql, name)
        autoincrement = "AUTOINCREMENT" in sql.upper()
        rows = columns.get(name, [])
        pk = [r[1] for r in sorted((r for r in rows if r[5]), key=lambda r: r[5])]
        shown = [r for r in rows if not r[6] or r[6] in SQLITE_GENERATED_HIDDEN]  # not a virtual table's hidden
        constraints = [*text.uniques, *text.checks, *_foreign_keys(name, foreign_keys.get(name, []), text)]
        tables[name] = Table(
            name=name,
            columns=tuple(_column(r, pk, autoincrement, text) for r in shown),
            primary_key=tuple(pk),
            indexes=tuple(indexes.get(name, ())),
            constraints=tuple(constraints),
            primary_key_name=text.primary_key_name if pk else None,
        )
    read = Schema(
        tables=tables,
        views=read_sqlite_views(conn, {n: tuple(c.name for c in t.columns) for n, t in tables.items()}),
        triggers=read_sqlite_triggers(conn),
    )
    return keep_null_defaults(read, canonical_schema(read))


SQLITE_VIEWS = "SELECT name, sql FROM sqlite_master WHERE type = 'view' ORDER BY name"


def read_sqlite_views(conn: sa.Connection, columns: dict[str, tuple[str, ...]]) -> dict[str, View]:
    """The database's views: each one's CREATE VIEW statement as sqlite_master keeps it, what it reads (tables
    and views; the columns of ``columns``, a table's names) found by sqlglot."""
    from events.objects import columns_read, tables_read

    out = {}
    for name, sql in conn.execute(sa.text(SQLITE_VIEWS)).all():
        reads = tuple(t for t in tables_read({"sqlite": sql}) if t != name)
        out[name] = construct(
            View,
            {
                "name": name,
                "definitions": {"sqlite": sql},
                "materialized": False,
                "uses": reads,
                "columns": columns_read("sqlite", sql, {t: columns[t] for t in reads if t in columns}),
                "security": None,
            },
        )
    return out


SQLITE_TRIGGERS = "SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'trigger' ORDER BY name"


def read_sqlite_triggers(conn: sa.Connection) -> dict[str, Trigger]:
    """The database's triggers by key (``table.name``): each one's CREATE TRIGGER statement as sqlite_master
    keeps it (one events.objects refuses is kept as read: drift, and an import that names why it cannot)."""
    from events.objects import DefinitionError, check_trigger_definition, trigger_key

    out = {}
    for name, table, sql in conn.execute(sa.text(SQLITE_TRIGGERS)).all():
        try:
            text = check_trigger_definition(name, table, "sqlite", sql or "")
        except DefinitionError:
            text = (sql or "").strip()
        out[trigger_key(table, name)] = construct(
            Trigger, {"name": name, "table": table, "definitions": {"sqlite": text}, "uses": ()}
        )
    return out


def sqlite_check_texts(conn: sa.Connection, tables: list[str]) -> dict[tuple[str, str], str]:
    """Each check's expression as the table's text has it, by (table, name): the name introspection gives
    it, invented for an unnamed one (what SQLAlchemy's Inspector cannot give: it reads no name there)."""
    wanted = set(tables)
    out = {}
    for name, sql in conn.execute(sa.text(SQLITE_TABLES)).all():
        if name in wanted:
            for found in read_table_sql(sql or "", name).checks:
                out[(name, found.name)] = found.expression or ""
    return out


def sqlite_nullable_keys(conn: sa.Connection, tables: list[str]) -> list[tuple[str, str, int]]:
    """The primary key columns of ``tables`` that SQLite lets hold NULL (a rowid table's, not the rowid,
    without NOT NULL), which introspection reads NOT NULL: (table, column, how many rows hold NULL there)."""
    keyed = {row[0] for row in conn.execute(sa.text(SQLITE_KEY_INDEXES))}
    wanted = set(tables) & keyed
    quote = conn.dialect.identifier_preparer.quote
    out = []
    for table, _cid, column, _type, notnull, _default, pk, _hidden in conn.execute(sa.text(SQLITE_COLUMNS)):
        if table in wanted and pk and not notnull:
            nulls = conn.execute(sa.text(f"SELECT count(*) FROM {quote(table)} WHERE {quote(column)} IS NULL"))
            out.append((table, column, int(nulls.scalar_one())))
    return out
