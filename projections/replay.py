"""Replaying the log: each recorded event's change, applied to the schema in its public form.

Every event in the log passed ``events.aggregate``'s rules on its way in (a
changeset is validated against the head before it is appended, and the hash
chain shows it has not changed since). Replaying it therefore needs the
*change* of each rule, not its checks, and needs no schema objects until the
end: the working state here is the catalogue's public form (plain dicts, as
``schemalog show --format json`` prints and as a snapshot body holds), and
events are folded straight from the JSON the store returns. Frozen schema
objects (:class:`events.aggregate.State`) are built once, for the point asked.

The changes must be exactly those of ``events.aggregate``: the property tests
(tests/test_projection_properties.py) replay random histories both ways and
compare them at every version, and bench/replay.py compares the two at the end
of its million events.

A :class:`Replay` owns the data it is given: event dicts are taken into the
state as they are, not copied.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:  # the models: imported by to_state, not by a fold that stays in public form (issue 14)
    from events.aggregate import State

Json = dict[str, Any]


class Replay:
    """The schema of one stream in public form, plus its tags, while the log is folded."""

    __slots__ = ("domains", "enums", "extensions", "referrers", "routines", "tables", "tags", "triggers", "views")

    def __init__(
        self,
        tables: dict[str, Json] | None = None,
        tags: dict[str, int] | None = None,
        enums: dict[str, Json] | None = None,
        domains: dict[str, Json] | None = None,
        views: dict[str, Json] | None = None,
        extensions: dict[str, Json] | None = None,
        routines: dict[str, Json] | None = None,
        triggers: dict[str, Json] | None = None,
    ) -> None:
        self.tables: dict[str, Json] = {}
        self.tags: dict[str, int] = dict(tags or {})
        # enum type name -> {"name": ..., "values": [...]} (EnumType's public form)
        self.enums: dict[str, Json] = {
            name: {"name": e["name"], "values": list(e["values"])} for name, e in (enums or {}).items()
        }
        # domain name -> DomainType's public form, every field present
        self.domains: dict[str, Json] = {name: _whole_domain(d) for name, d in (domains or {}).items()}
        # view name -> View's public form, every field present
        self.views: dict[str, Json] = {name: _whole_view(v) for name, v in (views or {}).items()}
        # extension name -> Extension's public form
        self.extensions: dict[str, Json] = {
            name: {"name": e["name"], "schema_name": e.get("schema_name")} for name, e in (extensions or {}).items()
        }
        # routine key (name(signature)) -> Routine's public form; trigger key (table.name) -> Trigger's
        self.routines: dict[str, Json] = {key: _whole_routine(r) for key, r in (routines or {}).items()}
        self.triggers: dict[str, Json] = {key: _whole_trigger(t) for key, t in (triggers or {}).items()}
        # referenced table -> {(referring table, foreign key name)}: renames follow foreign keys
        self.referrers: dict[str, set[tuple[str, str]]] = {}
        for name, table in (tables or {}).items():
            self.tables[name] = _whole(table)
            self._register(self.tables[name])

    # ------------------------------------------------------------------ snapshots

    @classmethod
    def from_body(cls, body: str | bytes) -> Replay:
        """The state a snapshot body holds (its digest checked by the caller)."""
        data = orjson.loads(body)
        tags = {str(k): int(v) for k, v in data.get("tags", {}).items()}
        return cls(
            data["tables"],
            tags,
            data.get("enums"),
            data.get("domains"),
            data.get("views"),
            data.get("extensions"),
            data.get("routines"),
            data.get("triggers"),
        )

    def body(self) -> str:
        """A snapshot body: the tables, tags and (where there are any) enum types as canonical JSON (sorted
        keys, no spaces). A stream without enum types has the body it had before they existed."""
        data: Json = {"tables": self.tables, "tags": self.tags}
        if self.enums:
            data["enums"] = self.enums
        if self.domains:
            data["domains"] = self.domains
        if self.views:
            data["views"] = self.views
        if self.extensions:
            data["extensions"] = self.extensions
        if self.routines:
            data["routines"] = self.routines
        if self.triggers:
            data["triggers"] = self.triggers
        return orjson.dumps(data, option=orjson.OPT_SORT_KEYS).decode()

    # ------------------------------------------------------------------ the fold

    def apply(self, event: Json) -> None:
        """Apply one recorded event (its public form, as stored)."""
        try:
            change = _CHANGES[event["type"]]
        except KeyError:
            raise ValueError(f"cannot replay event type {event.get('type')!r}") from None
        change(self, event)

    def apply_texts(self, texts: list[str]) -> None:
        apply, loads = self.apply, orjson.loads
        for text in texts:
            apply(loads(text))

    def public(self) -> Json:
        """The schema here as ``Schema.sorted().model_dump(mode="json")`` gives it, key for key and in the same
        order, without building a model: tables and enum types by name, every field present (a stored form
        may leave defaults out). New dicts and lists throughout: the state is not shared with the result."""
        tables = self.tables
        enums = self.enums
        return {
            "tables": {name: _public_table(tables[name]) for name in sorted(tables)},
            "enums": {
                name: {"name": enums[name]["name"], "values": list(enums[name]["values"])} for name in sorted(enums)
            },
            "domains": {name: _whole_domain(self.domains[name]) for name in sorted(self.domains)},
            "views": {name: _whole_view(self.views[name]) for name in sorted(self.views)},
            "extensions": {name: dict(self.extensions[name]) for name in sorted(self.extensions)},
            "routines": {key: _whole_routine(self.routines[key]) for key in sorted(self.routines)},
            "triggers": {key: _whole_trigger(self.triggers[key]) for key in sorted(self.triggers)},
        }

    def to_state(self) -> State:
        """The working state of events.aggregate (frozen schema objects) at this point."""
        from events import decode
        from events.aggregate import State

        state = State.from_schema(
            decode.schema(
                self.tables, self.enums, self.domains, self.views, self.extensions, self.routines, self.triggers
            )
        )
        state.tags = dict(self.tags)
        return state

    # ------------------------------------------------------------------ foreign key index

    def _register(self, table: Json) -> None:
        for constraint in table["constraints"]:
            ref = constraint.get("references")
            if ref is not None:
                self.referrers.setdefault(ref["table"], set()).add((table["name"], constraint["name"]))

    def _unregister(self, table: Json) -> None:
        for constraint in table["constraints"]:
            ref = constraint.get("references")
            if ref is not None:
                refs = self.referrers.get(ref["table"])
                if refs is not None:
                    refs.discard((table["name"], constraint["name"]))


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a fold allocates.

    A fold makes no reference cycles (its garbage goes as soon as it is dropped), but it
    allocates enough to set off the collector again and again, and each full collection
    walks every object of the process: hundreds of milliseconds in a large one.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


# --------------------------------------------------------------------------- helpers


def _whole(table: Json) -> Json:
    """A table with every table-level key present (a public form may leave defaults out), but
    ``primary_key_name``: only where the table has one (so a body without it reads as before)."""
    whole = {
        "name": table["name"],
        "columns": table["columns"],
        "primary_key": table.get("primary_key") or [],
        "indexes": table.get("indexes") or [],
        "constraints": table.get("constraints") or [],
        "comment": table.get("comment"),
    }
    for key in ("primary_key_name", "partition_by", "partition_of"):
        if table.get(key) is not None:
            whole[key] = table[key]
    return whole


# The public form of each schema object, with the defaults of events.model (checked against model_dump on real
# histories by tests/test_public_schema.py): the fields in the order the models declare them.


def _public_column(c: Json) -> Json:
    generated = c.get("generated")
    options = c.get("identity_options")
    return {
        "name": c["name"],
        "type": c["type"],
        "nullable": c.get("nullable", True),
        "default": c.get("default"),
        "identity": c.get("identity", False),
        "comment": c.get("comment"),
        "collation": c.get("collation"),
        "charset": c.get("charset"),
        "generated": None
        if generated is None
        else {"expression": generated["expression"], "stored": generated.get("stored", True)},
        "identity_options": None
        if options is None
        else {
            "always": options.get("always", False),
            "start": options.get("start"),
            "increment": options.get("increment"),
            "minvalue": options.get("minvalue"),
            "maxvalue": options.get("maxvalue"),
            "cycle": options.get("cycle", False),
            "cache": options.get("cache"),
            "sequence": options.get("sequence"),
            "owned": options.get("owned", False),
        },
        "on_update": c.get("on_update"),
    }


def _public_index(i: Json) -> Json:
    return {
        "name": i["name"],
        "columns": list(i.get("columns", ())),
        "unique": i.get("unique", False),
        "method": i.get("method"),
        "elements": [
            {
                "column": e.get("column"),
                "expression": e.get("expression"),
                "opclass": e.get("opclass"),
                "descending": e.get("descending", False),
            }
            for e in i.get("elements", ())
        ],
        "where": i.get("where"),
        "include": list(i.get("include", ())),
    }


def _public_constraint(k: Json) -> Json:
    ref = k.get("references")
    return {
        "name": k["name"],
        "kind": k["kind"],
        "columns": list(k.get("columns", ())),
        "expression": k.get("expression"),
        "references": None if ref is None else {"table": ref["table"], "columns": list(ref["columns"])},
        "on_delete": k.get("on_delete"),
        "on_update": k.get("on_update"),
        "deferrable": k.get("deferrable", False),
        "initially_deferred": k.get("initially_deferred", False),
        "anonymous": k.get("anonymous", False),
    }


def _public_table(t: Json) -> Json:
    return {
        "name": t["name"],
        "columns": [_public_column(c) for c in t["columns"]],
        "primary_key": list(t.get("primary_key") or ()),
        "indexes": [_public_index(i) for i in t.get("indexes") or ()],
        "constraints": [_public_constraint(k) for k in t.get("constraints") or ()],
        "comment": t.get("comment"),
        "primary_key_name": t.get("primary_key_name"),
        "partition_by": t.get("partition_by"),
        "partition_of": t.get("partition_of"),
    }


def rename_in_expression(expression: str, old: str, new: str) -> str:
    """events.aggregate's, imported on the first expression a rename rewrites (most folds have none)."""
    from events.aggregate import rename_in_expression as rename

    return rename(expression, old, new)


def _renamed(names: list[str], old: str, new: str) -> list[str]:
    return [new if n == old else n for n in names]


def _without(items: list[Json], name: str) -> list[Json]:
    return [i for i in items if i["name"] != name]


# --------------------------------------------------------------------------- the changes, one per event type
# Each mirrors the change its rule in events.aggregate makes once its checks have passed.


def _table_created(r: Replay, e: Json) -> None:
    table = _whole({**e, "name": e["table"]})
    r.tables[e["table"]] = table
    r._register(table)


def _table_dropped(r: Replay, e: Json) -> None:
    table = r.tables.pop(e["table"])
    r._unregister(table)
    r.referrers.pop(e["table"], None)


def _table_renamed(r: Replay, e: Json) -> None:
    old, new = e["table"], e["new_name"]
    table = r.tables.pop(old)
    incoming = r.referrers.pop(old, set())
    r._unregister(table)
    table["name"] = new
    for constraint in table["constraints"]:
        ref = constraint.get("references")
        if ref is not None and ref["table"] == old:
            ref["table"] = new
    r.tables[new] = table
    r._register(table)
    for referrer in {name for name, _ in incoming if name != old}:
        for constraint in r.tables[referrer]["constraints"]:
            ref = constraint.get("references")
            if ref is not None and ref["table"] == old:
                ref["table"] = new
                r.referrers.setdefault(new, set()).add((referrer, constraint["name"]))


def _table_altered(r: Replay, e: Json) -> None:
    r.tables[e["table"]]["comment"] = e.get("comment")


def _column_added(r: Replay, e: Json) -> None:
    r.tables[e["table"]]["columns"].append(e["column"])


def _column_dropped(r: Replay, e: Json) -> None:
    table = r.tables[e["table"]]
    table["columns"] = _without(table["columns"], e["column"])


def _column_renamed(r: Replay, e: Json) -> None:
    name, old, new = e["table"], e["column"], e["new_name"]
    table = r.tables[name]
    for column in table["columns"]:
        if column["name"] == old:
            column["name"] = new
        generated = column.get("generated")
        if generated is not None:
            generated["expression"] = rename_in_expression(generated["expression"], old, new)
    if old in table["primary_key"]:
        table["primary_key"] = _renamed(table["primary_key"], old, new)
    for index in table["indexes"]:
        if old in index.get("columns", ()):
            index["columns"] = _renamed(index["columns"], old, new)
        if old in index.get("include", ()):
            index["include"] = _renamed(index["include"], old, new)
        if index.get("where") is not None:
            index["where"] = rename_in_expression(index["where"], old, new)
        for element in index.get("elements", ()):
            if element.get("column") == old:
                element["column"] = new
            elif element.get("expression") is not None:
                element["expression"] = rename_in_expression(element["expression"], old, new)
    for constraint in table["constraints"]:
        columns = constraint.get("columns")
        if columns and old in columns:
            constraint["columns"] = _renamed(columns, old, new)
        if constraint["kind"] == "check" and constraint.get("expression"):
            constraint["expression"] = rename_in_expression(constraint["expression"], old, new)
    for referrer in {name} | {holder for holder, _ in r.referrers.get(name, ())}:
        for constraint in r.tables[referrer]["constraints"]:
            ref = constraint.get("references")
            if ref is not None and ref["table"] == name and old in ref["columns"]:
                ref["columns"] = _renamed(ref["columns"], old, new)


def _column_altered(r: Replay, e: Json) -> None:
    for column in r.tables[e["table"]]["columns"]:
        if column["name"] == e["column"]:
            if "new_type" in e:
                column["type"] = e["new_type"]
            for key in ("nullable", "default", "comment", "collation", "charset", "identity_options", "on_update"):
                if key in e:
                    column[key] = e[key]
            return


def _index_created(r: Replay, e: Json) -> None:
    r.tables[e["table"]]["indexes"].append(e["index"])


def _index_dropped(r: Replay, e: Json) -> None:
    table = r.tables[e["table"]]
    table["indexes"] = _without(table["indexes"], e["name"])


def _constraint_added(r: Replay, e: Json) -> None:
    constraint = e["constraint"]
    r.tables[e["table"]]["constraints"].append(constraint)
    ref = constraint.get("references")
    if ref is not None:
        r.referrers.setdefault(ref["table"], set()).add((e["table"], constraint["name"]))


def _constraint_dropped(r: Replay, e: Json) -> None:
    table = r.tables[e["table"]]
    for constraint in table["constraints"]:
        if constraint["name"] == e["name"]:
            ref = constraint.get("references")
            if ref is not None:
                r.referrers.get(ref["table"], set()).discard((e["table"], e["name"]))
            break
    table["constraints"] = _without(table["constraints"], e["name"])


def _primary_key_set(r: Replay, e: Json) -> None:
    table = r.tables[e["table"]]
    table["primary_key"] = e.get("columns") or []
    if e.get("name") is not None:
        table["primary_key_name"] = e["name"]
    else:
        table.pop("primary_key_name", None)


def _enum_created(r: Replay, e: Json) -> None:
    r.enums[e["name"]] = {"name": e["name"], "values": list(e["values"])}


def _enum_value_added(r: Replay, e: Json) -> None:
    values = r.enums[e["name"]]["values"]
    if e.get("before") is None:
        values.append(e["value"])
    else:
        values.insert(values.index(e["before"]), e["value"])


def _enum_value_dropped(r: Replay, e: Json) -> None:
    values = r.enums[e["name"]]["values"]
    values.remove(e["value"])


def _enum_dropped(r: Replay, e: Json) -> None:
    del r.enums[e["name"]]


def _whole_domain(d: Json) -> Json:
    """A domain's public form (DomainType's, in its field order), every field present, in new objects."""
    return {
        "name": d["name"],
        "type": d["type"],
        "nullable": d.get("nullable", True),
        "default": d.get("default"),
        "checks": [{"name": c["name"], "expression": c["expression"]} for c in d.get("checks", ())],
    }


def _domain_created(r: Replay, e: Json) -> None:
    r.domains[e["name"]] = _whole_domain({**e, "type": e["base"]})


def _domain_dropped(r: Replay, e: Json) -> None:
    del r.domains[e["name"]]


def _whole_view(v: Json) -> Json:
    """A view's public form (View's, in its field order), every field present, in new objects."""
    return {
        "name": v["name"],
        "definitions": dict(v["definitions"]),
        "materialized": v.get("materialized", False),
        "uses": list(v.get("uses", ())),
        "columns": list(v.get("columns", ())),
        "security": v.get("security"),
    }


def _view_created(r: Replay, e: Json) -> None:
    r.views[e["name"]] = _whole_view(e)


def _view_replaced(r: Replay, e: Json) -> None:
    view = r.views[e["name"]]
    r.views[e["name"]] = _whole_view({**e, "materialized": view["materialized"]})


def _view_dropped(r: Replay, e: Json) -> None:
    del r.views[e["name"]]


def _extension_created(r: Replay, e: Json) -> None:
    r.extensions[e["name"]] = {"name": e["name"], "schema_name": e.get("schema_name")}


def _extension_dropped(r: Replay, e: Json) -> None:
    del r.extensions[e["name"]]


def _whole_routine(v: Json) -> Json:
    """A routine's public form (Routine's, in its field order), every field present, in new objects."""
    return {
        "name": v["name"],
        "kind": v.get("kind", "function"),
        "signature": v.get("signature", ""),
        "definitions": dict(v["definitions"]),
        "uses": list(v.get("uses", ())),
    }


def _whole_trigger(v: Json) -> Json:
    """A trigger's public form (Trigger's, in its field order), every field present, in new objects."""
    return {
        "name": v["name"],
        "table": v["table"],
        "definitions": dict(v["definitions"]),
        "uses": list(v.get("uses", ())),
    }


def _routine_key(e: Json) -> str:
    return f"{e['name']}({e.get('signature', '')})"


def _routine_created(r: Replay, e: Json) -> None:
    r.routines[_routine_key(e)] = _whole_routine(e)


def _routine_replaced(r: Replay, e: Json) -> None:
    key = _routine_key(e)
    r.routines[key] = _whole_routine({**e, "kind": r.routines[key]["kind"]})


def _routine_dropped(r: Replay, e: Json) -> None:
    del r.routines[_routine_key(e)]


def _trigger_created(r: Replay, e: Json) -> None:
    """As events.aggregate: the uses given, else the routine of the log the PostgreSQL definition runs."""
    trigger = _whole_trigger(e)
    if not trigger["uses"]:
        from events.objects import DefinitionError, trigger_calls

        names = {routine["name"] for routine in r.routines.values()}
        try:
            trigger["uses"] = [n for n in trigger_calls(e["name"], e["table"], trigger["definitions"]) if n in names]
        except DefinitionError:
            pass
    r.triggers[f"{e['table']}.{e['name']}"] = trigger


def _trigger_dropped(r: Replay, e: Json) -> None:
    del r.triggers[f"{e['table']}.{e['name']}"]


def _sql_run(r: Replay, e: Json) -> None:
    """A data step changes rows, not the schema."""


def _tag_created(r: Replay, e: Json) -> None:
    r.tags[e["tag"]] = e["version"]


def _outcome(r: Replay, e: Json) -> None:
    """The reconciler's outcomes describe a database, not a schema change."""


_CHANGES: dict[str, Callable[[Replay, Json], None]] = {
    "table_created": _table_created,
    "table_dropped": _table_dropped,
    "table_renamed": _table_renamed,
    "table_altered": _table_altered,
    "column_added": _column_added,
    "column_dropped": _column_dropped,
    "column_renamed": _column_renamed,
    "column_altered": _column_altered,
    "index_created": _index_created,
    "index_dropped": _index_dropped,
    "constraint_added": _constraint_added,
    "constraint_dropped": _constraint_dropped,
    "primary_key_set": _primary_key_set,
    "enum_created": _enum_created,
    "enum_value_added": _enum_value_added,
    "enum_value_dropped": _enum_value_dropped,
    "enum_dropped": _enum_dropped,
    "domain_created": _domain_created,
    "domain_dropped": _domain_dropped,
    "view_created": _view_created,
    "view_replaced": _view_replaced,
    "view_dropped": _view_dropped,
    "extension_created": _extension_created,
    "extension_dropped": _extension_dropped,
    "routine_created": _routine_created,
    "routine_replaced": _routine_replaced,
    "routine_dropped": _routine_dropped,
    "trigger_created": _trigger_created,
    "trigger_replaced": _trigger_created,
    "trigger_dropped": _trigger_dropped,
    "sql_run": _sql_run,
    "tag_created": _tag_created,
    "migration_applied": _outcome,
    "migration_faked": _outcome,
    "migration_failed": _outcome,
    "drift_found": _outcome,
    "database_registered": _outcome,
    "database_changed": _outcome,
    "database_retired": _outcome,
    "rollout_halted": _outcome,
    "rollout_resumed": _outcome,
    "token_created": _outcome,
    "token_revoked": _outcome,
    "approval_given": _outcome,
    "approvals_required": _outcome,
}
