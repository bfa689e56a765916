"""Run a script in Triton's CPU interpreter (TRITON_INTERPRET=1) in a subprocess, for kernel tests on CPUs.

The CPU pins (constraints.txt) bring no Triton, so the script runs under a second Python: the one named by
NANOG1_TRITON_PYTHON (`make test` sets it to `.venv-triton/bin/python`, built from constraints-triton.txt),
else this interpreter when it has Triton, else the checkout's `.venv-triton` when it exists. Only when none
of them is there is the test skipped; a Python named by NANOG1_TRITON_PYTHON must work, so CI never skips.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ENV_PYTHON = "NANOG1_TRITON_PYTHON"


def triton_python() -> str:
    """The Python that runs interpreter scripts (see the module docstring); skips when there is none."""
    named = os.environ.get(ENV_PYTHON)
    if named:
        assert Path(named).is_file(), f"{ENV_PYTHON}={named} does not exist (make test builds it)"
        return named
    if importlib.util.find_spec("triton") is not None:
        return sys.executable
    local = ROOT / ".venv-triton" / "bin" / "python"
    if local.is_file():
        return str(local)
    pytest.skip(f"no Triton here: set {ENV_PYTHON} or run `make test` (it builds .venv-triton)")


def run_in_interpreter(script: str, timeout: int = 900) -> str:
    """Stdout of `script` run under Triton's interpreter with this checkout on PYTHONPATH."""
    python = triton_python()
    path = str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")
    env = dict(os.environ, TRITON_INTERPRET="1", PYTHONPATH=path)
    run = subprocess.run([python, "-c", script], env=env, capture_output=True, text=True, timeout=timeout)
    assert run.returncode == 0, f"{python}:\n{run.stderr[-3000:]}"
    return run.stdout
