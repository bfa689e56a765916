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


class FileTicker:
    """Progress within one large file, by the bytes its reader has taken (the compressed ones of a gzipped
    file): the whole MC3 MAF or a whole-genome VCF is one file, so a count of files said nothing until it
    was read. In a log '{what} mc3.maf 41 % (1.2 of 2.9 GB, 18 s)' on stderr once `every` seconds have
    passed since the last line (or the start); on a terminal the same as `bar`'s postfix."""

    def __init__(self, what: str, path: str, every: float, bar=None) -> None:
        self.what, self.name, self.every, self.bar = what, os.path.basename(path), every, bar
        try:
            self.total = os.path.getsize(path)
        except OSError:
            self.total = 0
        self.started = self.last = time.perf_counter()

    def at(self, done: int) -> None:
        """The reader has taken `done` bytes of the file: a line (or postfix) after `every` seconds."""
        now = time.perf_counter()
        if now - self.last < self.every or self.total <= 0:
            return
        self.last = now
        scale, unit = next((s, u) for s, u in ((1e9, "GB"), (1e6, "MB"), (1e3, "kB"), (1, "bytes"))
                           if self.total >= s)
        share = f"{self.name} {100 * min(done, self.total) // self.total} %"
        if self.bar is not None:
            self.bar.set_postfix_str(share)
        else:
            report(f"{self.what} {share} ({done / scale:.1f} of {self.total / scale:.1f} {unit}, "
                   f"{now - self.started:.0f} s)")


    def read(self, records: int) -> None:
        """The reader is done (`records` read): says so when lines were due (a read of `every` seconds or
        more), since classifying a large file's calls takes longer than reading it, with no more lines."""
        now = time.perf_counter()
        if now - self.started < self.every:
            return
        if self.bar is not None:
            self.bar.set_postfix_str(f"{self.name} read, classifying")
        else:
            seconds = now - self.started
            report(f"{self.what} {self.name} read: {records:,} records ({seconds:.0f} s); classifying")


#: The file being read in this process, where its reader reports how far it is (`reading`, `read_to`).
_reading: FileTicker | None = None


@contextmanager
def reading(ticker: FileTicker | None) -> Iterator[None]:
    """Within the block, `read_to` reports to `ticker` (None: nowhere). Per process: a worker reading a
    file sets its own (its lines reach the stderr it shares with the parent)."""
    global _reading
    before, _reading = _reading, ticker
    try:
        yield
    finally:
        _reading = before


def read_to(done: int) -> None:
    """A reader has taken `done` bytes of the file being read: reported if a `reading` block asks (a reader
    calls this once a block of megabytes, so it costs nothing measurable)."""
    if _reading is not None:
        _reading.at(done)


def read_all(records: int) -> None:
    """The file being read is read (`records` records): said if a `reading` block asks (`FileTicker.read`)."""
    if _reading is not None:
        _reading.read(records)


def epoch_line(epoch: int, epochs: int, row: dict) -> str:
    """'epoch 3/12  train_loss 1.23  val_loss 1.31  val_top1 0.61 ... (4.2 s)' for one training epoch."""
    shown = [k for k in row if k.startswith(("train_", "val_")) and isinstance(row[k], int | float)]
    numbers = "".join(f"  {k} {_fmt(row[k])}" for k in shown[:8])
    seconds = row.get("epoch_seconds")
    tail = f"  ({seconds:.1f} s)" if isinstance(seconds, int | float) else ""
    return f"epoch {epoch + 1}/{epochs}{numbers}{tail}"


def _fmt(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
