"""ID83 classification of anchored indels, following SigProfilerMatrixGenerator's rules exactly.

Repeats are counted in whole copies of the inserted/deleted unit on both sides (upstream windows end
at the anchor base); microhomology is looked for only when there is no repeat, as the longest prefix
of the unit matching the bases after the event or the longest suffix matching the bases before it
(ties go to the prefix). Insertions with microhomology count as `n:Ins:R:0`, as in its default
(`limited_indel`). The contig is given as ASCII letters, either `bytes` or the uint8 array (often
memory-mapped) that `Reference.raw` returns, read in place with no copy of the contig; windows are
upper-cased as they are read.
"""

from __future__ import annotations

import numpy as np

from nanog1.genomics.channels import ID83

#: A contig's ASCII letters: bytes, or a uint8 array such as `Reference.raw` returns.
Letters = bytes | memoryview | np.ndarray

ID_INDEX = {label: i for i, label in enumerate(ID83)}


class OffContig(IndexError):
    """A repeat or microhomology window ran off the end of the contig."""


def _win(seq: Letters, a: int, b: int) -> bytes:
    """seq[a:b] upper-cased, read as SigProfilerMatrixGenerator reads it (negative indices wrap)."""
    if 0 <= a and b <= len(seq):
        return bytes(seq[a:b]).upper()
    if b > len(seq):
        raise OffContig(b)
    return bytes(seq[i] for i in range(a, b)).upper()


def _repeats(seq: Letters, unit: bytes, up_end: int, down_start: int) -> int:
    """Whole copies of `unit` directly before 0-based `up_end` and from `down_start` on."""
    size, count = len(unit), 0
    p = up_end
    while p - size > 0 and _win(seq, p - size, p) == unit:
        count += 1
        p -= size
    p = down_start
    nxt = _win(seq, p, p + size)
    while p + size < len(seq) and nxt == unit:
        count += 1
        p += size
        nxt = _win(seq, p, p + size)
    return count


def _microhomology(seq: Letters, unit: bytes, start: int, after: int) -> int:
    """Longest unit prefix matching seq from `after`, or unit suffix ending at `start`."""
    size = len(unit)
    forward = next((i for i in range(size - 1, 0, -1) if _win(seq, after, after + i) == unit[:i]), 0)
    backward = next((i for i in range(size - 1, 0, -1) if _win(seq, start - i, start) == unit[-i:]), 0)
    return max(forward, backward)


def classify_indel(seq: Letters | str, pos: int, ref: str, alt: str) -> int:
    """ID83 index of an anchored simple indel at 1-based `pos`; -1 if it is not a simple indel.

    Raises OffContig when a window leaves the contig (the caller counts it as out of range).
    """
    if isinstance(seq, str):
        seq = seq.encode("ascii")
    if len(alt) == 1 and len(ref) > 1:
        kind, unit, after = "Del", ref[1:], pos + len(ref) - 1
    elif len(ref) == 1 and len(alt) > 1:
        kind, unit, after = "Ins", alt[1:], pos
    else:
        return -1
    size = len(unit)
    count = _repeats(seq, unit.encode("ascii"), pos, after)
    if size == 1:
        base = "C" if unit in "CG" else "T"
        return ID_INDEX[f"1:{kind}:{base}:{min(count, 5)}"]
    head = min(size, 5)
    if count == 0:
        homology = _microhomology(seq, unit.encode("ascii"), pos, after)
        if homology and kind == "Del":
            return ID_INDEX[f"{head}:Del:M:{min(homology, 5)}"]
    return ID_INDEX[f"{head}:{kind}:R:{min(count, 5)}"]
