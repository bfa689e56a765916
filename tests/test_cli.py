"""The console script exists and tells the truth about its sub-commands."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from nanog1.cli import app


def test_help_lists_commands():
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    for name in ("info", "demo"):
        assert name in result.output


def test_every_command_in_a_help_list_is_one_line(monkeypatch):
    """`nanog1 --help` (and each group's) lists a one-line summary per command: a docstring's first paragraph
    is what the list shows, so a summary with hard line breaks spilled the whole text into the list."""
    import click
    import typer

    monkeypatch.setenv("COLUMNS", "300")  # wide enough that no summary wraps: only hard breaks make rows
    root = typer.main.get_command(app)
    groups = {(): root} | {(n,): c for n, c in root.commands.items() if isinstance(c, click.Group)}
    for words, group in groups.items():
        result = CliRunner().invoke(app, [*words, "--help"])
        assert result.exit_code == 0, result.output
        panel = result.output.split("Commands", 1)[1].split("╰", 1)[0].splitlines()[1:]
        rows = [line.strip("│ ") for line in panel if line.strip("│ ")]
        assert len(rows) == len(group.commands), (words, rows)  # one row per command, nothing spilled


def test_console_script_runs():
    exe = Path(sys.executable).parent / "nanog1"
    out = subprocess.run([str(exe), "info"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("nanog1 ")
    assert "torch" in out.stdout


def _readme_commands() -> list[list[str]]:
    """The `nanog1 ...` command lines of the README's code blocks, as argument lists."""
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    commands = []
    for line in "\n".join(blocks).splitlines():
        for part in line.split("#", 1)[0].split("&&"):
            words = shlex.split(part)
            if words[:1] == ["nanog1"]:
                commands.append(words[1:])
    return commands


def test_every_option_in_the_readme_examples_exists():
    """Each option the README's examples pass is one the command's parser accepts."""
    import typer

    commands = _readme_commands()
    assert len(commands) >= 15
    for words in commands:
        cmd, path = typer.main.get_command(app), ["nanog1"]
        while words and words[0] in getattr(cmd, "commands", {}):
            cmd = cmd.commands[words[0]]
            path.append(words.pop(0))
        accepted = {opt for p in cmd.params for opt in (*p.opts, *p.secondary_opts)}
        for word in words:
            if word.startswith("-"):
                assert word.split("=", 1)[0] in accepted, f"README: `{' '.join(path)} {word}` does not exist"
