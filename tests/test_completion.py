"""`schemalog completion bash|zsh`: a static script from the argparse parser (shtab), run by real shells."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Source the script, find the function `complete -p schemalog` names, call it as readline would for
# the words given as arguments (the last one the word being completed), and print COMPREPLY, one a line.
COMPLETE = r"""
source "$1"; shift
spec=$(complete -p schemalog) || exit 3
func=$(sed -E 's/.*-F ([^ ]+).*/\1/' <<<"$spec")
COMP_WORDS=("$@")
COMP_CWORD=$(( $# - 1 ))
COMP_LINE="$*"
COMP_POINT=${#COMP_LINE}
"$func" schemalog "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\n' "${COMPREPLY[@]}"
"""


def script(shell: str, tmp_path: Path) -> Path:
    done = subprocess.run(
        [sys.executable, "-m", "service.cli", "completion", shell],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    path = tmp_path / f"schemalog.{shell}"
    path.write_text(done.stdout, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def bash_script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("bash") is None:
        pytest.skip("bash is not installed")
    return script("bash", tmp_path_factory.mktemp("completion"))


def complete(bash_script: Path, *words: str) -> list[str]:
    done = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", COMPLETE, "complete", str(bash_script), *words],
        cwd=bash_script.parent,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return [line for line in done.stdout.splitlines() if line]


def test_bash_completes_a_subcommand(bash_script: Path) -> None:
    assert complete(bash_script, "schemalog", "mig") == ["migrate"]
    # "show" begins two commands
    assert sorted(complete(bash_script, "schemalog", "show")) == ["show", "showmigrations"]


def test_bash_completes_the_options_of_migrate(bash_script: Path) -> None:
    options = complete(bash_script, "schemalog", "migrate", "--")
    for option in ("--database", "--url", "--all", "--to", "--fake", "--plan", "--check", "--allow-destructive"):
        assert option in options
    assert "--models" not in options  # makemigrations', not migrate's
    assert complete(bash_script, "schemalog", "migrate", "--allow-d") == ["--allow-destructive"]


def test_bash_completes_choices_and_paths(bash_script: Path) -> None:
    assert complete(bash_script, "schemalog", "completion", "") == ["bash", "zsh"]
    assert complete(bash_script, "schemalog", "show", "--format", "j") == ["json"]
    (bash_script.parent / "changes.json").write_text("{}", encoding="utf-8")
    assert complete(bash_script, "schemalog", "append", "chan") == ["changes.json"]


def test_zsh_script(tmp_path: Path) -> None:
    path = script("zsh", tmp_path)
    text = path.read_text(encoding="utf-8")
    assert text.startswith("#compdef schemalog")
    for command in ("init", "migrate", "makemigrations", "completion"):
        assert command in text
    assert "--allow-destructive" in text
    if shutil.which("zsh") is None:
        pytest.skip("zsh is not installed: the script is made and names the commands, its syntax is not checked")
    done = subprocess.run(["zsh", "-n", str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_an_unknown_shell_is_a_usage_error(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "service.cli", "completion", "fish"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert len(done.stderr.splitlines()) == 1 and "invalid choice" in done.stderr


@pytest.mark.parametrize("args", [["--help"], ["completion", "--help"], ["init", "--help"]])
def test_shtab_is_imported_only_to_make_a_script(args: list[str], tmp_path: Path) -> None:
    probe = (
        "import sys\nfrom service.cli import main\n"
        "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
        "sys.stderr.write('SHTAB ' + str('shtab' in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        timeout=120,
    )
    assert "usage: schemalog" in done.stdout
    assert done.stderr.endswith("SHTAB False")
