"""A command run in the background beside the tests (its own process group, output to a log file), stopped
with its whole group when nobody waited for it: the suite's long pipeline runs overlap other tests on the
second core instead of running alone."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def running(cmd: list[str], log: Path, env: dict[str, str] | None = None) -> Iterator[subprocess.Popen]:
    """Start `cmd` (stdout and stderr to `log`); on exit SIGKILL its process group if it still runs."""
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, env=env, start_new_session=True, stdout=out, stderr=subprocess.STDOUT)
        try:
            yield proc
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
