"""Random valid histories always fold; random mutations of them are accepted and fold, or are
rejected naming the event with nothing written (SQLite and PostgreSQL stores)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events import decode
from events.aggregate import InvalidChange, fold
from events.catalog import EVENT_ADAPTER, Event, TableCreated, parse_event, to_dict
from events.envelope import Changeset, canonical_json
from events.log import EventLog
from events.model import Column
from events.store import open_store
from tests.histories import histories
from tests.servers import postgres_database_url
from tests.test_store import dump

FAST = settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
STORE = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


def flat(history: list[list[Event]]) -> list[Event]:
    return [e for batch in history for e in batch]


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.text(st.characters(exclude_categories=["Cs"])),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=2000, deadline=None, derandomize=True)
@given(value=JSON_VALUES)
def test_canonical_json_is_the_json_modules_sorted_compact_form(value: Any) -> None:
    """The hash chain's text: whatever writes it must write what its definition writes."""
    assert canonical_json(value) == json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@FAST
@given(history=histories(max_changesets=8, dialect="any"))
def test_valid_histories_fold_and_round_trip(history: list[list[Event]]) -> None:
    events = flat(history)
    assert fold(events) == fold(events)
    for e in events:
        assert parse_event(to_dict(e)) == e
        fast = decode.event_from_text(json.dumps(to_dict(e)))
        assert fast == e and to_dict(fast) == to_dict(e)  # the replay path decodes the same event
        assert EVENT_ADAPTER.validate_json(json.dumps(to_dict(e))) == e
    schema = fold(events)
    dumped = schema.model_dump(mode="json")
    assert decode.schema(dumped["tables"], dumped["enums"]) == schema


@st.composite
def mutated(draw: Any) -> list[Event]:
    events = flat(draw(histories(max_changesets=6, dialect="any")))
    kind = draw(st.sampled_from(["drop", "swap", "duplicate", "retarget", "move_first"]))
    i = draw(st.integers(0, len(events) - 1))
    j = draw(st.integers(0, len(events) - 1))
    if kind == "drop" and len(events) > 1:
        del events[i]
    elif kind == "swap":
        events[i], events[j] = events[j], events[i]
    elif kind == "duplicate":
        events.insert(j, events[i])
    elif kind == "retarget" and hasattr(events[i], "table"):
        data = to_dict(events[i])
        data["table"] = draw(st.sampled_from(["ghost", "anchor", data["table"]]))
        events[i] = parse_event(data)
    elif kind == "move_first":
        events.insert(0, events.pop(i))
    return events


SEED = TableCreated(table="seed", columns=(Column(name="id", type="integer"),))


async def _append_mutation(url: str, events: list[Event]) -> None:
    store = await open_store(url)
    await store.init()
    try:
        await EventLog(store).append(Changeset(stream="s", actor="p", events=(SEED,)))
        before = await asyncio.to_thread(dump, url)
        try:
            fold([SEED, *events])
            valid = True
        except InvalidChange:
            valid = False
        try:
            result = await EventLog(store).append(Changeset(stream="s", actor="p", events=tuple(events)))
        except InvalidChange as exc:
            assert not valid
            assert exc.index is not None and 0 <= exc.index < len(events)
            assert str(exc).startswith(f"events[{exc.index}] ({events[exc.index].type})")
            assert await asyncio.to_thread(dump, url) == before  # nothing written
        else:
            assert valid
            assert result.last_version == 1 + len(events) == await store.version("s")
    finally:
        await store.close()


def test_mutations_are_accepted_or_rejected_whole_sqlite(tmp_path: Path) -> None:
    counter = iter(range(10**6))

    @STORE
    @given(events=mutated())
    def run(events: list[Event]) -> None:
        asyncio.run(_append_mutation(f"sqlite:///{tmp_path / f'm{next(counter)}.db'}", events))

    run()


@pytest.mark.postgres
def test_mutations_are_accepted_or_rejected_whole_postgresql() -> None:
    @settings(STORE, max_examples=10)
    @given(events=mutated())
    def run(events: list[Event]) -> None:
        with postgres_database_url() as url:
            asyncio.run(_append_mutation(url, events))

    run()
