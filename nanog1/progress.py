"""Progress of long steps, on stderr: one plain line per finished step (what, its numbers, its seconds),
and a live bar over a step's items only when stderr is a terminal, so pipeline logs and CI stay short.
NANOG1_QUIET=1 silences both (the results and errors are unaffected).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

QUIET_ENV = "NANOG1_QUIET"
#: Seconds between the plain progress lines a long loop writes to a log, where no bar shows (`Ticker`).
LOG_EVERY = 30.0
T = TypeVar("T")


def quiet() -> bool:
    """True when NANOG1_QUIET asks for no progress output."""
    return os.environ.get(QUIET_ENV, "") not in ("", "0")


def report(message: str) -> None:
    """One line on stderr, flushed at once (logs show it while the step runs)."""
    if not quiet():
        print(message, file=sys.stderr, flush=True)


def terminal() -> bool:
    """True when stderr is a terminal (where a live bar belongs)."""
    return sys.stderr.isatty()


def shows_bars() -> bool:
    """True when a live bar belongs on stderr: a terminal, and not quiet."""
    return not quiet() and terminal()


def bar(items: Iterable[T], desc: str, total: int | None = None, unit: str = "it") -> Iterable[T]:
    """`items` with a tqdm bar on a terminal; the plain iterable in a log, CI or when quiet."""
    if not shows_bars():
        return items
    from tqdm import tqdm

    return tqdm(items, desc=desc, total=total, unit=unit, leave=False, file=sys.stderr)


@contextmanager
def step(what: str) -> Iterator[dict]:
    """Time a block, then report `what` and whatever the block put in the yielded dict ('key value')."""
    extra: dict = {}
    started = time.perf_counter()
    yield extra
    numbers = "".join(f"  {k} {_fmt(v)}" for k, v in extra.items())
    report(f"{what}{numbers}  ({time.perf_counter() - started:.1f} s)")


class Ticker:
    """Progress of a long loop for a log, where no bar shows: '{what} 37/1,000 {unit} (52 s)' on stderr
    once `every` seconds have passed since the last line (or the start). None for the last item (the step's
    own line follows), none when `every` is 0 (a terminal's bar, or -q), none when quiet."""

    def __init__(self, what: str, total: int, unit: str, every: float) -> None:
        self.what, self.total, self.unit, self.every = what, total, unit, every
        self.done = 0
        self.started = self.last = time.perf_counter()

    def tick(self) -> None:
        """One more item done: a line if `every` seconds have passed since the last one."""
        self.done += 1
        now = time.perf_counter()
        if self.every > 0 and self.done < self.total and now - self.last >= self.every:
            report(f"{self.what} {self.done:,}/{self.total:,} {self.unit} ({now - self.started:.0f} s)")
            self.last = now


def epoch_line(epoch: int, epochs: int, row: dict) -> str:
    """'epoch 3/12  train_loss 1.23  val_loss 1.31  val_top1 0.61 ... (4.2 s)' for one training epoch."""
    shown = [k for k in row if k.startswith(("train_", "val_")) and isinstance(row[k], int | float)]
    numbers = "".join(f"  {k} {_fmt(row[k])}" for k in shown[:8])
    seconds = row.get("epoch_seconds")
    tail = f"  ({seconds:.1f} s)" if isinstance(seconds, int | float) else ""
    return f"epoch {epoch + 1}/{epochs}{numbers}{tail}"


def _fmt(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
