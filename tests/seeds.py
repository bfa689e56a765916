"""Stable per-case seeds for parametrized tests.

`hash()` of a tuple holding strings changes from process to process (PYTHONHASHSEED), so a failure seeded
that way cannot be replayed; a CRC-32 of the case's repr is the same on every run and machine.
"""

from __future__ import annotations

import zlib


def stable_seed(*parts: object, modulo: int = 2**31) -> int:
    """A seed in [0, modulo) fixed by `parts` (their repr), identical in every process."""
    return zlib.crc32(repr(parts).encode()) % modulo
