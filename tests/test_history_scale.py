"""`history` streamed: the same output as the whole log read and filtered at once, paging (--limit,
--reverse, --after), filters that still follow renames, valid JSON, and a reader that closes early.
Correctness only: speed is measured in bench/, not here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from events.catalog import to_dict
from events.envelope import RecordedEvent, format_time
from events.store import open_store
from projections.audit import HistoryFilter, filter_history
from service.cli import describe_event, main

T = {"name": "id", "type": "bigint", "nullable": False}
CHANGESETS: list[dict[str, Any]] = [
    {
        "stream": "app",
        "actor": "alice",
        "message": "start",
        "events": [
            {"type": "enum_created", "name": "mood", "values": ["ok", "sad"]},
            {
                "type": "table_created",
                "table": "users",
                "columns": [T, {"name": "email", "type": "varchar(255)"}, {"name": "note", "type": "text"}],
                "primary_key": ["id"],
            },
            {"type": "index_created", "table": "users", "index": {"name": "users_note", "columns": ["note"]}},
        ],
    },
    {
        "stream": "other",
        "actor": "carol",
        "events": [{"type": "table_created", "table": "users", "columns": [T], "primary_key": ["id"]}],
    },
    {
        "stream": "app",
        "actor": "bob",
        "message": "several changes at once",
        "events": [
            {"type": "column_altered", "table": "users", "column": "note", "comment": "hi", "default": "'x'"},
            {"type": "column_renamed", "table": "users", "column": "email", "new_name": "mail"},
            {"type": "table_renamed", "table": "users", "new_name": "people"},
            {"type": "column_altered", "table": "people", "column": "note", "default": None, "comment": "again"},
            {"type": "column_added", "table": "people", "column": {"name": "feel", "type": "enum:mood"}},
            {"type": "enum_value_added", "name": "mood", "value": "glad"},
        ],
    },
    {
        "stream": "other",
        "actor": "carol",
        "events": [{"type": "column_added", "table": "users", "column": {"name": "mail", "type": "text"}}],
    },
    {
        "stream": "app",
        "actor": "alice",
        "events": [
            {
                "type": "table_created",
                "table": "orders",
                "columns": [T, {"name": "person", "type": "bigint", "nullable": False}],
                "primary_key": ["id"],
                "constraints": [
                    {
                        "name": "orders_person",
                        "kind": "foreign_key",
                        "columns": ["person"],
                        "references": {"table": "people", "columns": ["id"]},
                    }
                ],
            },
            {"type": "table_altered", "table": "orders", "comment": "what was bought"},
            {"type": "column_dropped", "table": "people", "column": "feel"},
            {"type": "primary_key_set", "table": "orders", "columns": ["id", "person"]},
        ],
    },
]


@pytest.fixture
def loaded(store_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["--store", store_url, "init"]) == 0
    for n, changeset in enumerate(CHANGESETS):
        path = tmp_path / f"cs{n}.json"
        path.write_text(json.dumps(changeset))
        assert main(["--store", store_url, "append", str(path)]) == 0
    assert main(["--store", store_url, "tag", "release-1", "--stream", "app"]) == 0
    capsys.readouterr()
    return store_url


def history(url: str, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["--store", url, "history", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


async def _everything(url: str) -> list[RecordedEvent]:
    store = await open_store(url, create=False)
    try:
        return sorted(await store.read_all(), key=lambda e: (e.stream, e.version))
    finally:
        await store.close()


def expected(url: str, f: HistoryFilter | None = None, *, as_json: bool = False) -> str:
    """What history printed before it streamed: the whole log read, filtered, described from the models."""
    import asyncio

    chosen = sorted(filter_history(asyncio.run(_everything(url)), f or HistoryFilter()), key=lambda e: e.position)
    if as_json:
        return json.dumps([e.public() for e in chosen], indent=2, ensure_ascii=False) + "\n"
    if not chosen:
        return "no events\n"
    lines = []
    for e in chosen:
        when = format_time(e.recorded_at)[:19].replace("T", " ")
        message = f"  {e.message}" if e.message else ""
        lines.append(f"{e.stream} v{e.version}  {when}  {e.actor}  {describe_event(e.event)}{message}\n")
    return "".join(lines)


FILTERS: list[tuple[list[str], HistoryFilter]] = [
    ([], HistoryFilter()),
    (["--table", "people"], HistoryFilter(table="people")),
    (["--table", "users"], HistoryFilter(table="users")),
    (["--table", "people", "--column", "mail"], HistoryFilter(table="people", column="mail")),
    (["--column", "users.email"], HistoryFilter(table="users", column="email")),
    (["--actor", "bob"], HistoryFilter(actor="bob")),
    (
        ["--type", "column_altered", "--type", "tag_created"],
        HistoryFilter(types=frozenset({"column_altered", "tag_created"})),
    ),
]


@pytest.mark.parametrize(("args", "f"), FILTERS, ids=[" ".join(a) or "all" for a, _ in FILTERS])
def test_streamed_output_is_the_old_output(
    loaded: str, capsys: pytest.CaptureFixture[str], args: list[str], f: HistoryFilter
) -> None:
    code, out, err = history(loaded, capsys, *args)
    assert (code, err) == (0, "")
    assert out == expected(loaded, f)
    code, out, err = history(loaded, capsys, *args, "--json")
    assert (code, err) == (0, "")
    assert out == expected(loaded, f, as_json=True)
    json.loads(out)


def test_every_event_type_described_as_from_its_model(loaded: str, capsys: pytest.CaptureFixture[str]) -> None:
    """The rows are described from their stored JSON, not from a model: the same text for each kind."""
    import asyncio

    events = asyncio.run(_everything(loaded))
    kinds = {e.event.type for e in events}
    assert {"column_altered", "table_renamed", "enum_value_added", "primary_key_set", "tag_created"} <= kinds
    assert any(len(to_dict(e.event)) >= 5 for e in events if e.event.type == "column_altered")  # several changes
    _, out, _ = history(loaded, capsys)
    assert out == expected(loaded)


def positions(url: str, capsys: pytest.CaptureFixture[str], *args: str) -> list[int]:
    code, out, _ = history(url, capsys, *args, "--json")
    assert code == 0
    return [item["position"] for item in json.loads(out)]


def test_paging_forward_and_back(loaded: str, capsys: pytest.CaptureFixture[str]) -> None:
    every = positions(loaded, capsys)
    assert every == sorted(every) and len(every) == 16
    assert positions(loaded, capsys, "--reverse") == every[::-1]
    assert positions(loaded, capsys, "--limit", "3") == every[:3]
    assert positions(loaded, capsys, "--after", str(every[4])) == every[5:]
    assert positions(loaded, capsys, "--reverse", "--after", str(every[4])) == every[:4][::-1]
    assert positions(loaded, capsys, "--after", str(every[-1])) == []
    # page by page, following what stderr says the next page is, gives the whole log once
    for direction in ([], ["--reverse"]):
        seen: list[int] = []
        after: list[str] = []
        while True:
            code, out, err = history(loaded, capsys, *direction, "--limit", "5", "--json", *after)
            assert code == 0
            seen.extend(item["position"] for item in json.loads(out))
            if not err:
                break
            assert err.startswith("schemalog: more events: the next page is --after ")
            after = ["--after", err.split()[-1]]
        assert seen == (every[::-1] if direction else every)
    # exactly a page left: no hint
    code, out, err = history(loaded, capsys, "--limit", "16")
    assert (code, err, len(out.splitlines())) == (0, "", 16)


def test_paging_with_filters_that_follow_renames(loaded: str, capsys: pytest.CaptureFixture[str]) -> None:
    people = positions(loaded, capsys, "--table", "users", "--stream", "app")
    assert len(people) >= 6
    assert positions(loaded, capsys, "--table", "users", "--stream", "app", "--reverse") == people[::-1]
    assert positions(loaded, capsys, "--table", "users", "--stream", "app", "--after", str(people[2])) == people[3:]
    # the lineage still sees the events before --after: the rename's later events are found by the old name
    back = positions(loaded, capsys, "--table", "users", "--stream", "app", "--reverse", "--after", str(people[-1]))
    assert back == people[:-1][::-1]
    assert (
        positions(loaded, capsys, "--table", "users", "--stream", "app", "--reverse", "--limit", "2") == people[:-3:-1]
    )
    mail = positions(loaded, capsys, "--column", "people.mail", "--reverse")
    assert mail == positions(loaded, capsys, "--column", "people.mail")[::-1] and len(mail) == 2


def test_filters_follow_renames_both_ways(loaded: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Streamed, a filter still finds a table's events under any name it ever had, before and after."""
    _, by_new, _ = history(loaded, capsys, "--table", "people", "--stream", "app")
    _, by_old, _ = history(loaded, capsys, "--table", "users", "--stream", "app")
    assert by_new == by_old
    assert "table_created users (3 columns)" in by_new and "table_altered orders" not in by_new
    assert "column_dropped people.feel" in by_new and "table_created orders" in by_new  # its key references people
    _, mail, _ = history(loaded, capsys, "--column", "people.mail")
    assert [line.split("  ")[3] for line in mail.splitlines()] == [
        "table_created users (3 columns)",
        "column_renamed users.email -> mail",
    ]


def test_empty_pages(loaded: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert history(loaded, capsys, "--after", "100000") == (0, "no events\n", "")
    assert history(loaded, capsys, "--after", "100000", "--json") == (0, "[]\n", "")
    assert history(loaded, capsys, "--actor", "nobody", "--reverse", "--table", "users") == (0, "no events\n", "")


@pytest.mark.parametrize("args", [["--limit", "0"], ["--limit", "x"], ["--after", "-1"]])
def test_bad_paging_arguments(loaded: str, capsys: pytest.CaptureFixture[str], args: list[str]) -> None:
    try:
        code = main(["--store", loaded, "history", *args])
    except SystemExit as exc:  # argparse's own refusal
        code = int(str(exc.code))
    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    assert len(captured.err.splitlines()) == 1 and captured.err.startswith("schemalog: error: ")


def test_a_reader_that_closes_early(sqlite_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`schemalog history | head`: the reader goes away; the writer stops quietly with 141 (as SIGPIPE)."""
    assert main(["--store", sqlite_url, "init"]) == 0
    big = {
        "stream": "app",
        "actor": "alice",
        "events": [{"type": "table_created", "table": f"t{n}", "columns": [T]} for n in range(3000)],
    }
    path = tmp_path / "big.json"
    path.write_text(json.dumps(big))
    assert main(["--store", sqlite_url, "append", str(path)]) == 0
    capsys.readouterr()
    env = {**os.environ, "SCHEMALOG_STORE": sqlite_url}
    for args in (["history"], ["history", "--json"], ["show"]):
        writer = subprocess.Popen(
            [sys.executable, "-m", "service.cli", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=Path(__file__).resolve().parents[1],
        )
        assert writer.stdout is not None and writer.stderr is not None
        writer.stdout.readline()
        writer.stdout.close()  # as head does after its lines
        err = writer.stderr.read().decode()
        code = writer.wait(timeout=120)
        assert err == "", err
        assert code == 141
