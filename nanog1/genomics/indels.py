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


def anchored(text: Letters, pos: int, ref: str, alt: str) -> tuple[str, str]:
    """Turn '-' alleles into VCF-style alleles sharing the anchor base at `pos`."""
    anchor = chr(text[pos - 1]).upper()
    if ref == "-":
        return anchor, anchor + alt
    if alt == "-":
        return anchor + ref, anchor
    return ref, alt


def indel_channel(text: Letters, pos: int, ref: str, alt: str, compat: bool) -> int | str:
    """ID83 index of one indel at 1-based `pos` (alleles VCF-style or with '-'), or the skip reason.

    The one-indel definition `IndelBatch` follows (and falls back to where its windows are too short).
    """
    if pos < 1 or pos > len(text):
        return "out_of_range"
    dashed = ref == "-" or alt == "-"
    ref, alt = anchored(text, pos, ref, alt)
    if compat:
        if not dashed and chr(text[pos - 1]).upper() != ref[0]:
            return "ref_mismatch"
    else:
        if bytes(text[pos - 1 : pos - 1 + len(ref)]).upper() != ref.encode("ascii"):
            return "ref_mismatch"
        if ref[0] != alt[0]:
            return "complex_indel"
    try:
        index = classify_indel(text, pos, ref, alt)
    except OffContig:
        return "out_of_range"
    return index if index >= 0 else "complex_indel"


#: Skip reasons of `IndelBatch.classify`, by code (0: classified).
REASONS = ("", "out_of_range", "ref_mismatch", "complex_indel")
#: Bases read on each side of an indel; repeat runs reaching further go through `indel_channel`.
FLANK = 64
_UPPER = np.arange(256, dtype=np.uint8)
_UPPER[ord("a") : ord("z") + 1] -= 32


def _label_table() -> np.ndarray:
    """ID83 index by (Del 0 / Ins 1, min(size, 5), class C/T/R/M, min(count or homology, 5)); -1 if none."""
    table = np.full((2, 6, 4, 6), -1, dtype=np.int64)
    for k, kind in enumerate(("Del", "Ins")):
        for head in range(1, 6):
            for c, cls in enumerate("CTRM"):
                for n in range(6):
                    table[k, head, c, n] = ID_INDEX.get(f"{head}:{kind}:{cls}:{n}", -1)
    return table


_LABELS = _label_table()


def _joined(alleles: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ASCII codes of all alleles end to end, each allele's offset into them, and its length."""
    lengths = np.fromiter(map(len, alleles), dtype=np.int64, count=len(alleles))
    offsets = np.cumsum(lengths) - lengths
    return np.frombuffer("".join(alleles).encode("ascii"), dtype=np.uint8), offsets, lengths


def _leading(match: np.ndarray) -> np.ndarray:
    """Length of the leading run of True in each row."""
    return np.where(match.all(axis=1), match.shape[1], (~match).argmax(axis=1))


class IndelBatch:
    """The indels of one table, classified together by `indel_channel`'s rules, with no per-indel Python.

    Alleles are anchored and measured once for all rows; `gather` reads, contig by contig, one span per
    indel: FLANK upper-cased bases before the anchor, the bases under REF (checked in the default mode)
    and FLANK bases from the base after the event; `classify` then counts repeat copies and microhomology
    on those windows for all rows at once. Rows whose repeat run fills a window, or reaches the contig's
    first base, are classified one by one by `indel_channel`, so every row gets exactly its answer.
    """

    def __init__(self, pos: np.ndarray, ref: np.ndarray, alt: np.ndarray, compat: bool) -> None:
        self.n, self.compat = len(pos), compat
        self.pos = np.asarray(pos, dtype=np.int64)
        self.ref, self.alt = ref, alt
        refb, self.roff, lr = _joined(ref)
        altb, aoff, la = _joined(alt)
        self.ref_dash, self.alt_dash = ref == "-", alt == "-"
        self.dashed = self.ref_dash | self.alt_dash
        self.raw_lr = lr
        # One buffer for both alleles' letters (plus a pad so that every offset below is valid).
        self.letters = np.concatenate([refb, altb, np.zeros(1, dtype=np.uint8)])
        self.aoff = aoff + len(refb)
        # Anchored alleles: a '-' allele becomes the anchor base, the other one gains it in front.
        lr = np.where(self.ref_dash, 1, lr + self.alt_dash)
        la = np.where(self.alt_dash, 1, la + self.ref_dash)
        self.kind = np.where((la == 1) & (lr > 1), 0, np.where((lr == 1) & (la > 1), 1, -1))
        self.size = np.where(self.kind == 0, lr - 1, np.where(self.kind == 1, la - 1, 1))
        # The repeated unit is the anchored allele minus its first base (a whole '-'-anchored allele).
        skip = ~self.dashed
        self.unit_off = np.where(self.kind == 0, self.roff + skip, self.aoff + skip)
        self.after = np.where(self.kind == 0, self.pos + lr - 1, self.pos)
        self.length = np.zeros(self.n, dtype=np.int64)
        self.contig = np.full(self.n, -1, dtype=np.int64)
        self.up = np.zeros((self.n, FLANK), dtype=np.uint8)
        self.down = np.zeros((self.n, FLANK), dtype=np.uint8)
        self.ref_ok = np.ones(self.n, dtype=bool)

    def gather(self, read, size: int, rows: np.ndarray, contig: int) -> None:
        """Read the windows of `rows` (indices into the batch) on one contig of `size` bases.

        `read(starts, lengths)` gives the contig's letters of each span end to end, 0 off the contig
        (`Reference.spans`): one span per indel, from FLANK bases before the anchor to FLANK bases
        after the event (or the end of REF, if later).
        """
        self.contig[rows] = contig
        self.length[rows] = size
        pos, after = self.pos[rows], self.after[rows]
        ref_start = pos - 1 + self.alt_dash[rows]  # REF as written: the anchor on, or after it for 'A'>'-'
        start = pos - FLANK
        length = np.maximum(after + FLANK, ref_start + self.raw_lr[rows]) - start
        text = _UPPER[read(start, length)]
        first = np.cumsum(length) - length
        span = np.arange(FLANK)
        self.up[rows] = text[first[:, None] + span]
        self.down[rows] = text[(first + after - start)[:, None] + span]
        if not self.compat:
            self.ref_ok[rows] = self._ref_matches(text, first + ref_start - start, rows)

    def _ref_matches(self, text: np.ndarray, at: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Default mode: the contig's bases under REF (from `at` in `text`) equal REF's letters."""
        ok = np.ones(len(rows), dtype=bool)
        check = np.flatnonzero(~self.ref_dash[rows])
        rows, at = rows[check], at[check]
        length = self.raw_lr[rows]
        step = np.arange(int(length.sum())) - np.repeat(np.cumsum(length) - length, length)
        got = text[np.repeat(at, length) + step]
        want = self.letters[np.repeat(self.roff[rows], length) + step]
        owner = np.repeat(np.arange(len(rows)), length)
        ok[check] = np.bincount(owner[got != want], minlength=len(rows)) == 0
        return ok

    def _reasons(self) -> np.ndarray:
        """Skip reason code per row from the checks made before classification (0: go on)."""
        reason = np.where((self.pos < 1) | (self.pos > self.length), 1, 0)
        first_ref = self.letters[self.roff]
        if self.compat:
            reason[(reason == 0) & ~self.dashed & (self.up[:, -1] != first_ref)] = 2
        else:
            reason[(reason == 0) & ~self.ref_ok] = 2
            reason[(reason == 0) & ~self.dashed & (first_ref != self.letters[self.aoff])] = 3
        reason[(reason == 0) & (self.kind < 0)] = 3
        return reason

    def classify(self, seq_of) -> tuple[np.ndarray, np.ndarray]:
        """ID83 index per row (-1 where skipped) and its skip reason code (`REASONS`).

        `seq_of(contig)` gives a contig's ASCII array again, for the rows classified one by one.
        """
        reason = self._reasons()
        pos, size, after, n = self.pos, self.size, self.after, self.length
        d = np.arange(FLANK)
        unit_up = self.letters[self.unit_off[:, None] + np.mod(-1 - d, size[:, None])]
        unit_dn = self.letters[self.unit_off[:, None] + np.mod(d, size[:, None])]
        # Bases matching the unit, read outwards: up from the anchor backwards, down from `after` on.
        run_up = _leading(self.up[:, ::-1] == unit_up)
        run_dn = _leading(self.down == unit_dn)
        slow = (reason == 0) & ((run_up >= FLANK) | (run_up >= pos) | (run_dn >= FLANK))
        # Whole copies. Upstream ones start after the contig's first base (runs reaching it are slow
        # rows); downstream ones count while they end before its last base, and reading the next
        # window past the end is off the contig (as in `_repeats`).
        copies_up = run_up // size
        copies_dn = np.maximum(np.minimum(run_dn // size, (n - 1 - after) // size), 0)
        reason[(reason == 0) & (after + (copies_dn + 1) * size > n)] = 1
        count = copies_up + copies_dn
        homology = np.where(count == 0, np.minimum(np.maximum(run_up, run_dn), size - 1), 0)
        single = self.unit_letter()
        cls = np.where(size == 1, single, np.where((homology > 0) & (self.kind == 0), 3, 2))
        value = np.minimum(np.where(cls == 3, homology, count), 5)
        index = _LABELS[np.maximum(self.kind, 0), np.minimum(size, 5), cls, value]
        for c in np.unique(self.contig[slow]):
            seq = memoryview(seq_of(int(c)))
            for i in np.flatnonzero(slow & (self.contig == c)):
                got = indel_channel(seq, int(pos[i]), self.ref[i], self.alt[i], self.compat)
                index[i], reason[i] = (-1, REASONS.index(got)) if isinstance(got, str) else (got, 0)
        return np.where(reason == 0, index, -1), reason

    def unit_letter(self) -> np.ndarray:
        """1-bp indels: class 0 ('C') when the unit is C or G as written, else 1 ('T')."""
        first = self.letters[self.unit_off]
        return np.where((first == ord("C")) | (first == ord("G")), 0, 1)
