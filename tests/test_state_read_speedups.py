"""The shortcuts of the drift check's state read (issue 14) give what the plain ways give.

- service.reconciler.marker.state_hash (objects dumped by hand, orjson) against reference_state_hash
  (pydantic's dump, json.dumps: what markers were written with), over random histories and names that
  need escaping;
- events.decode.schema (equal columns shared) against the plain decode of each table;
- Dialect.normalize (the forms of tables met before kept) against a first call;
- Projector.state_at_version (the last state kept) against a fold, and a miss when the log moves on.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from hypothesis import HealthCheck, given, settings

from events import decode
from events.aggregate import fold
from events.catalog import Event, to_dict
from events.envelope import Changeset
from events.log import EventLog
from events.model import Column, EnumType, Generated, Index, Schema, Table, parse_type
from events.store import open_store
from projections.replay import Replay
from projections.schema import Projector
from service.reconciler import marker
from service.reconciler.dialects import DIALECTS, get_dialect
from service.reconciler.dialects.base import Dialect
from service.reconciler.marker import reference_state_hash, state_hash
from tests.histories import histories

FAST = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


def flat(history: list[list[Event]]) -> list[Event]:
    return [e for batch in history for e in batch]


@FAST
@given(histories())
def test_fast_state_hash_is_the_reference_digest(history: list[list[Event]]) -> None:
    schema = fold(flat(history))
    marker._last = None
    assert state_hash(schema) == reference_state_hash(schema)
    assert state_hash(schema) == reference_state_hash(schema)  # the kept digest, asked again


def test_fast_state_hash_where_text_is_escaped_or_not_ascii() -> None:
    odd = Schema(
        tables={
            "t": Table(
                name="t",
                columns=(
                    Column(name="id", type="bigint", nullable=False, comment='a "quoted" \\ é ☃ \n line'),
                    Column(name="g", type="integer", generated=Generated(expression="id * 2")),
                    # a character json escapes and orjson does not (refused as input: built as stored data is)
                    Column.model_construct(name="d", type=parse_type("text"), default="'\x7f'"),
                ),
                indexes=(Index(name="t_g", columns=("g",)),),
            )
        },
        enums={"mood": EnumType(name="mood", values=("happy", "très"))},
    )
    marker._last = None
    assert state_hash(odd) == reference_state_hash(odd)
    plain = odd.model_copy(update={"enums": {}})
    assert state_hash(plain) == reference_state_hash(plain) != state_hash(odd)


@FAST
@given(histories())
def test_decoding_with_shared_columns_is_the_plain_decode(history: list[list[Event]]) -> None:
    replay = Replay()
    for event in flat(history):
        replay.apply(to_dict(event))
    body = Replay.from_body(replay.body())
    shared = decode.schema(body.tables, body.enums)
    plain = {name: decode.table(t) for name, t in body.tables.items()}
    assert shared.tables == plain
    assert shared == fold(flat(history))


@FAST
@given(histories())
def test_normalize_again_gives_the_first_form(history: list[list[Event]]) -> None:
    schema = fold(flat(history))
    for name in DIALECTS:
        dialect = get_dialect(name)
        first = dialect.normalize(schema)
        again = get_dialect(name).normalize(schema)  # the forms kept by the last call
        assert again == first
        # the base form (what is kept) is the very object the first call made
        base = Dialect.normalize(dialect, schema)
        assert all(Dialect.normalize(dialect, schema).tables[n] is base.tables[n] for n in base.tables)


def test_kept_state_is_a_copy_and_misses_when_the_log_moves_on(tmp_path: Path) -> None:
    async def run() -> None:
        store = await open_store(f"sqlite:///{tmp_path / 'log.db'}")
        await store.init()
        try:
            table = {"type": "table_created", "table": "a", "columns": [{"name": "id", "type": "bigint"}]}
            events = (decode.event_from_dict(table),)
            await EventLog(store).append(Changeset(stream="s", actor="t", events=events))
            first = await Projector(store).state_at_version("s", 1)
            first.tables.clear()  # the caller's to change: the kept state is not
            second = await Projector(store).state_at_version("s", 1)
            assert set(second.tables) == {"a"}
            more = {"type": "table_created", "table": "b", "columns": [{"name": "id", "type": "bigint"}]}
            await EventLog(store).append(Changeset(stream="s", actor="t", events=(decode.event_from_dict(more),)))
            assert set((await Projector(store).state_at_version("s", 2)).tables) == {"a", "b"}
            assert set((await Projector(store).state_at_version("s", 1)).tables) == {"a"}
        finally:
            await store.close()

    asyncio.run(run())
