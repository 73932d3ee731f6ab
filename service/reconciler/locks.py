"""How many locks a plan takes in one PostgreSQL transaction, and whether the server has room for them.

PostgreSQL keeps every lock a transaction holds until it ends, in shared tables sized from
``max_locks_per_transaction * (max_connections + max_prepared_transactions)`` (the "slots").
A plan runs in one transaction (the whole migration or none of it), so a plan that locks more
than they hold fails part-way with "out of shared memory" (seen with 25,000 new tables at the
default settings), after minutes of work that are then rolled back.

Measured on PostgreSQL 15 at the default settings (6,400 slots): one transaction held 13,204
locks (1,200 tables, each with a primary key, a text column and three indexes: 11 locks per
table as pg_locks counts them) and failed at 6,425 tables of one integer column (2 locks each,
the table and its row type), so the limit is about twice the slots. The estimate here is
counted from the plan before anything runs, in pg_locks' terms, and compared with that limit,
so that a plan far past it is refused up front with the setting it needs; one that still runs
out is rolled back, and its error names the same setting (``OUT_OF_LOCKS_HINT``).
"""

from __future__ import annotations

from dataclasses import dataclass

from events.model import Table
from service.reconciler.plan import Plan

LOCK_SETTINGS_SQL = """
SELECT current_setting('max_locks_per_transaction')::int AS per_transaction,
       current_setting('max_connections')::int AS connections,
       current_setting('max_prepared_transactions')::int AS prepared
"""

PER_SLOT = 2
"""Locks one transaction can hold per slot (measured: see above)."""

OUT_OF_LOCKS_HINT = (
    "the server ran out of lock memory: raise max_locks_per_transaction and restart PostgreSQL,"
    " or migrate in smaller steps with --to VERSION"
)


@dataclass(frozen=True)
class LockBudget:
    per_transaction: int
    connections: int
    prepared: int

    @property
    def slots(self) -> int:
        return self.per_transaction * (self.connections + self.prepared)

    def usable(self) -> int:
        return self.slots * PER_SLOT

    def needed_setting(self, locks: int) -> int:
        """The max_locks_per_transaction at which ``locks`` fit."""
        backends = self.connections + self.prepared
        return -(-locks // (backends * PER_SLOT)) if backends else locks


FIXED_WIDTH = frozenset(
    {"smallint", "integer", "bigint", "boolean", "real", "double", "date", "time", "timestamp", "timestamptz"}
)
"""Portable types stored inline: a table of only these has no TOAST table."""


def _relations(table: Table) -> int:
    """The relations one table brings into a lock: itself, its TOAST table and that table's index
    (if any column can be TOASTed), one index per primary key, unique constraint and index, and
    an identity column's sequence."""
    count = 1 + len(table.indexes) + sum(1 for c in table.constraints if c.kind == "unique")
    if any(not c.type.portable or c.type.name not in FIXED_WIDTH for c in table.columns):
        count += 2
    if table.primary_key:
        count += 1
    if any(c.identity for c in table.columns):
        count += 1
    return count


def _created(table: Table) -> int:
    """A new table also locks its row type, and takes a second lock on itself for each index it builds."""
    return _relations(table) + 1 + len(table.indexes) + sum(1 for c in table.constraints if c.kind == "unique")


def _touched_tables(plan: Plan) -> set[str]:
    names: set[str] = set()
    for _version, event in plan.events:
        for field in ("table", "new_name"):
            value = getattr(event, field, None)
            if isinstance(value, str):
                names.add(value)
        constraint = getattr(event, "constraint", None)
        references = getattr(constraint, "references", None)
        if references is not None:
            names.add(references.table)  # a foreign key locks the table it references too
    return names


OWN_LOCKS = 16
"""What the transaction locks besides the plan's tables (the marker table, catalogue reads)."""


def locks_needed(plan: Plan) -> int:
    """An upper estimate of the relation locks the plan holds at its end (its one transaction)."""
    total = OWN_LOCKS
    start, target = plan.start.tables, plan.target.tables
    for name in _touched_tables(plan):
        if name in target and name not in start:
            total += _created(target[name])
        elif name in start or name in target:
            total += max(_relations(t.tables[name]) for t in (plan.start, plan.target) if name in t.tables)
        else:
            total += 2  # created and dropped again within the plan
    return total


def lock_problem(plan: Plan, budget: LockBudget) -> str | None:
    """Why the plan cannot run in one transaction on this server, with the setting it needs; else None."""
    needed = locks_needed(plan)
    if needed <= budget.usable():
        return None
    return (
        f"this plan takes about {needed:,} locks in one transaction, more than the server's lock table has"
        f" room for (about {budget.usable():,}: max_locks_per_transaction={budget.per_transaction} x"
        f" (max_connections={budget.connections} + max_prepared_transactions={budget.prepared}));"
        f" set max_locks_per_transaction to at least {budget.needed_setting(needed)} and restart PostgreSQL,"
        " or migrate in smaller steps with --to VERSION"
    )
