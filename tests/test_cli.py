"""The console script exists and tells the truth about its sub-commands."""

from __future__ import annotations

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


def test_console_script_runs():
    exe = Path(sys.executable).parent / "nanog1"
    out = subprocess.run([str(exe), "info"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("nanog1 ")
    assert "torch" in out.stdout
