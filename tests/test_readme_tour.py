"""The README's tour, run as written: every command, in order, in one bash session on a fresh directory.

The rule (the README states it too): every ```sh block between "## A five-minute tour" and "## Layout" is
the tour, one command a line; a comment is bash's (a ``#`` at the start of a word, outside quotes); a
line that is only a comment is none. A comment holding ``(exit N)`` means the command exits with N
(otherwise 0); ``(not run: why)`` skips the line. A ```toml block there is the ``schemalog.toml`` the
reader writes, written exactly at its place in the order. The directory holds a copy of ``examples/`` and
a link to ``.venv``; the PostgreSQL and MariaDB databases the tour names (each must be called
``schemalog_...``) are made before the run and dropped after.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.servers import (
    MARIADB_HOST,
    MARIADB_PORT,
    PG_HOST,
    PG_PORT,
    _mariadb_admin,
    _pg_admin,
    require_server,
)

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
TOUR_START = "## A five-minute tour"
TOUR_END = "## Layout"
EXIT_MARK = re.compile(r"\(exit (\d+)\)")
SKIP_MARK = re.compile(r"\(not run: [^)]+\)")
PG_URL = re.compile(r"postgresql://postgres@127\.0\.0\.1/([A-Za-z0-9_]+)")
MARIADB_URL = re.compile(r"mysql://root@127\.0\.0\.1/([A-Za-z0-9_]+)")


@dataclass(frozen=True)
class Step:
    """One line of the tour: a command and the exit code it must give, or the schemalog.toml to write."""

    line: str
    command: str = ""
    expected: int = 0
    skipped: bool = False
    toml: str | None = None


def split_comment(line: str) -> tuple[str, str]:
    """A line -> (the command, its comment), by bash's rule: ``#`` begins a word, outside quotes."""
    quote = ""
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip(), line[i + 1 :].strip()
    return line.rstrip(), ""


def tour_steps(text: str) -> list[Step]:
    """The tour's steps, in order, from the README's text."""
    start, end = text.index(TOUR_START), text.index(TOUR_END)
    steps: list[Step] = []
    block: str | None = None
    body: list[str] = []
    for line in text[start:end].splitlines():
        if block is None:
            if line.strip() in ("```sh", "```toml"):
                block, body = line.strip()[3:], []
            continue
        if line.strip() != "```":
            body.append(line)
            continue
        if block == "toml":
            steps.append(Step(line="schemalog.toml", toml="\n".join(body) + "\n"))
        for raw in body if block == "sh" else []:
            command, comment = split_comment(raw)
            if not command:
                continue
            exit_mark = EXIT_MARK.search(comment)
            steps.append(
                Step(
                    line=raw,
                    command=command,
                    expected=int(exit_mark.group(1)) if exit_mark else 0,
                    skipped=bool(SKIP_MARK.search(comment)),
                )
            )
        block = None
    return steps


def test_the_rule_reads_comments_and_marks() -> None:
    text = "\n".join(
        [
            "## A five-minute tour",
            "```sh",
            'schemalog a -m "no # comment"   # a comment; exit 1 if it fails (not a mark)',
            "                                  # a comment alone",
            "schemalog b   # (exit 2) refused",
            "schemalog c#d  # (not run: needs X)",
            "```",
            "```toml",
            'url = "x"  # kept',
            "```",
            "```sh",
            "schemalog e",
            "```",
            "```json",
            "schemalog f",
            "```",
            "## Layout",
            "```sh",
            "schemalog g",
            "```",
        ]
    )
    assert tour_steps(text) == [
        Step(
            line='schemalog a -m "no # comment"   # a comment; exit 1 if it fails (not a mark)',
            command='schemalog a -m "no # comment"',
        ),
        Step(line="schemalog b   # (exit 2) refused", command="schemalog b", expected=2),
        Step(line="schemalog c#d  # (not run: needs X)", command="schemalog c#d", skipped=True),
        Step(line="schemalog.toml", toml='url = "x"  # kept\n'),
        Step(line="schemalog e", command="schemalog e"),
    ]


def _database_names(steps: list[Step], pattern: re.Pattern[str]) -> set[str]:
    """The databases the tour uses: in its commands (not their comments) and in the toml's values."""
    found = {m.group(1) for s in steps if not s.skipped for m in pattern.finditer(s.command)}
    for step in steps:
        if step.toml is not None:
            for database in tomllib.loads(step.toml).get("databases", {}).values():
                found |= set(pattern.findall(str(database.get("url", ""))))
    for name in found:
        assert name.startswith("schemalog_"), f"the README names database {name!r}: call it schemalog_..."
    return found


def _script(steps: list[Step], logs: Path) -> str:
    """One bash session: each step's output to its own files, its exit code after; stop at the first surprise."""
    lines = []
    for i, step in enumerate(steps):
        if step.toml is not None:
            (logs / f"{i}.toml").write_text(step.toml)
            lines.append(f'cp "{logs}/{i}.toml" schemalog.toml; echo 0 >"{logs}/{i}.rc"')
            continue
        if step.skipped:
            continue
        lines.append(f'{{\n{step.command}\n}} >"{logs}/{i}.out" 2>"{logs}/{i}.err" </dev/null')
        lines.append(f'rc=$?; echo "$rc" >"{logs}/{i}.rc"; [ "$rc" = {step.expected} ] || exit 0')
    return "\n".join(lines) + "\n"


def test_the_readme_tour_runs_as_written(tmp_path: Path) -> None:
    steps = tour_steps(README.read_text())
    commands = [s for s in steps if s.command and not s.skipped]
    assert len(commands) >= 30, f"the tour has only {len(commands)} commands: is the rule still the README's?"
    pg_names = _database_names(steps, PG_URL)
    mariadb_names = _database_names(steps, MARIADB_URL)
    if pg_names:
        require_server("PostgreSQL", PG_HOST, PG_PORT)
    if mariadb_names:
        require_server("MariaDB", MARIADB_HOST, MARIADB_PORT)

    here = tmp_path / "fresh"
    here.mkdir()
    shutil.copytree(ROOT / "examples", here / "examples")
    (here / ".venv").symlink_to(ROOT / ".venv")
    logs = tmp_path / "logs"
    logs.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCHEMALOG_") or k == "SCHEMALOG_SNAPSHOT_KEY"}
    env["PATH"] = f"{ROOT / '.venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env.pop("VIRTUAL_ENV", None)

    for name in pg_names:
        _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        _pg_admin(f'CREATE DATABASE "{name}"')
    for name in mariadb_names:
        _mariadb_admin(f"DROP DATABASE IF EXISTS `{name}`")
        _mariadb_admin(f"CREATE DATABASE `{name}`")
    try:
        session = subprocess.Popen(["bash", "-c", _script(steps, logs)], cwd=here, env=env, start_new_session=True)
        try:
            assert session.wait(600) == 0
        finally:  # a command the tour left running (the daemon, if the tour stopped before its kill)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(session.pid, signal.SIGKILL)
    finally:
        for name in pg_names:
            _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        for name in mariadb_names:
            _mariadb_admin(f"DROP DATABASE IF EXISTS `{name}`")

    for i, step in enumerate(steps):
        if step.skipped:
            continue
        rc_file = logs / f"{i}.rc"
        assert rc_file.exists(), f"the tour stopped before step {i + 1}: {step.line}"
        rc = int(rc_file.read_text())
        if rc != step.expected:
            out = (logs / f"{i}.out").read_text()[-2000:]
            err = (logs / f"{i}.err").read_text()[-2000:]
            pytest.fail(f"README step {i + 1}: `{step.command}` exited {rc}, not {step.expected}\n{out}{err}")


def test_the_readme_shows_the_example_changesets_the_tour_appends() -> None:
    """Each ```json changeset of the tour is, field for field, one of examples/*.json, which the tour appends."""
    text = README.read_text()
    tour = text[text.index(TOUR_START) : text.index(TOUR_END)]
    shown = [json.loads(block) for block in re.findall(r"^```json\n(.*?)^```$", tour, re.S | re.M)]
    examples = {p.name: json.loads(p.read_text()) for p in sorted((ROOT / "examples").glob("*.json"))}
    assert len(shown) >= 2
    for changeset in shown:
        names = [name for name, example in examples.items() if example == changeset]
        assert names, f"the README's changeset {changeset.get('message')!r} is none of examples/*.json"
        assert f"examples/{names[0]}" in tour, f"the README shows examples/{names[0]} but does not name it"
