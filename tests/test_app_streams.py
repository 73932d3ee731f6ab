"""service/app/streams.py on both stores: what the CLI and the API share (the CLI's own tests cover its output)."""

from __future__ import annotations

import pytest

from events.aggregate import InvalidChange
from events.store import ConcurrencyError, EventStore
from service.app import streams as app
from service.app.errors import BadRequest, NotFound

USERS = {
    "stream": "app",
    "actor": "ana",
    "message": "users",
    "events": [
        {"type": "table_created", "table": "users", "columns": [{"name": "id", "type": "bigint", "nullable": False}]},
        {"type": "column_added", "table": "users", "column": {"name": "email", "type": "text"}},
    ],
}


async def _seed(store: EventStore, count: int) -> None:
    await app.append_changeset(store, app.changeset_from_data(USERS))
    for i in range(count):
        data = {"actor": "bo", "events": [{"type": "table_altered", "table": "users", "comment": f"c{i}"}]}
        await app.append_changeset(store, app.changeset_from_data(data, stream="app"))


async def test_pages_cover_the_listing_once_in_order(store: EventStore) -> None:
    await _seed(store, 23)
    for reverse in (False, True):
        seen: list[int] = []
        after = None
        while True:
            page = await app.list_events(store, app.HistoryQuery(stream="app", reverse=reverse, after=after), limit=5)
            seen += [e["position"] for e in page.events]
            if page.next_after is None:
                break
            after = page.next_after
        assert seen == sorted(seen, reverse=reverse) and len(seen) == len(set(seen)) == 25


async def test_filters_follow_renames_and_unknown_names_are_not_found(store: EventStore) -> None:
    await _seed(store, 0)
    rename = {"actor": "cy", "events": [{"type": "table_renamed", "table": "users", "new_name": "people"}]}
    await app.append_changeset(store, app.changeset_from_data(rename, stream="app"))
    page = await app.list_events(store, app.HistoryQuery(table="people"), limit=100)
    assert [e["type"] for e in page.events] == ["table_created", "column_added", "table_renamed"]
    with pytest.raises(NotFound) as found:
        await app.list_events(store, app.HistoryQuery(stream="ap"), limit=10)
    assert found.value.suggestion == "app" and "did you mean 'app'?" in str(found.value)
    with pytest.raises(NotFound):
        await app.list_events(store, app.HistoryQuery(table="peple"), limit=10)
    for bad in (app.HistoryQuery(types=("no_such",)), app.HistoryQuery(since="yesterday")):
        with pytest.raises(BadRequest):
            await app.list_events(store, bad, limit=10)
    with pytest.raises(BadRequest) as limit:
        await app.list_events(store, app.HistoryQuery(), limit=0)
    assert limit.value.field == "limit"


async def test_append_expects_the_version_and_a_retry_is_answered_once(store: EventStore) -> None:
    changeset = app.changeset_from_data(USERS)
    first = await app.append_changeset(store, changeset, expected_version=0)
    again = await app.append_changeset(store, changeset, expected_version=0)  # the same id: the first answer
    assert (first.first_version, first.last_version, again.duplicate) == (1, 2, True)
    later = {"actor": "bo", "events": [{"type": "table_altered", "table": "users", "comment": "x"}]}
    with pytest.raises(ConcurrencyError) as moved:
        await app.append_changeset(store, app.changeset_from_data(later, stream="app"), expected_version=1)
    assert moved.value.current == 2
    bad = {"actor": "bo", "events": [{"type": "column_dropped", "table": "users", "column": "nope"}]}
    with pytest.raises(InvalidChange) as rejected:
        await app.append_changeset(store, app.changeset_from_data(bad, stream="app"))
    assert rejected.value.index == 0
    with pytest.raises(BadRequest) as malformed:
        app.changeset_from_text('{"stream": "app", "actor": "a", "events": [{"type": "table_created"}]}')
    assert malformed.value.field is not None and malformed.value.field.startswith("events[0]")


async def test_points_tags_diff_blame_revert_and_verify(store: EventStore) -> None:
    await _seed(store, 0)
    tagged = await app.create_tag(store, "app", "release-1", actor="ana")
    assert (tagged.version, tagged.recorded_version) == (2, 3)
    assert [t.public() for t in await app.tags(store, "app")] == [{"name": "release-1", "version": 2}]
    at = await app.schema_at(store, "app", "release-1")
    fast = await app.public_schema_at(store, "app", "release-1")
    assert at.version == fast.version == 2 and set(fast.tables) == set(at.schema.tables) == {"users"}
    assert "CREATE TABLE" in app.schema_sql(at.schema, "sqlite").script().upper()
    with pytest.raises(BadRequest):
        app.schema_sql(at.schema, "oracle")
    diff = await app.diff_points(store, "app", "release-1", 1)
    assert diff.direction == "backward" and [c["type"] for c in diff.public()["changes"]] == ["column_dropped"]
    blamed = await app.blame_table(store, "app", "users")
    assert [line.name for line in blamed.lines] == ["id", "email"]
    with pytest.raises(NotFound) as missing:
        await app.blame_table(store, "app", "user")
    assert missing.value.suggestion == "users"
    reverted = await app.revert(store, "app", "2", actor="ana")
    assert reverted.appended is not None and reverted.appended.count == 2
    assert "users" not in (await app.public_schema_at(store, "app")).tables
    result = await app.verify(store)
    assert result.ok and result.public()["events"] == 5
