"""SBS96 and DBS78 classification and doublet detection, pure functions on numpy arrays.

Bases are codes (A0 C1 G2 T3 N4; `3 - code` is the complement). Substitutions are turned to the
pyrimidine strand and looked up in tables built from `channels`, so no per-variant Python runs here.
"""

from __future__ import annotations

import numpy as np

from nanog1.genomics.channels import BASES, DBS78, SBS6, canonical_dbs
from nanog1.genomics.reference import CODE_TABLE

#: SBS6 class index of (pyrimidine ref code, alt code); -1 where not a substitution.
SUB_TABLE = np.full((5, 5), -1, dtype=np.int64)
for _k, _sub in enumerate(SBS6):
    SUB_TABLE[BASES.index(_sub[0]), BASES.index(_sub[2])] = _k


def _dbs_table() -> np.ndarray:
    """DBS78 index of (ref pair code, alt pair code), pair code = 4*first + second; -1 elsewhere."""
    index = {label: i for i, label in enumerate(DBS78)}
    table = np.full((16, 16), -1, dtype=np.int64)
    for r in range(16):
        for a in range(16):
            ref = BASES[r // 4] + BASES[r % 4]
            alt = BASES[a // 4] + BASES[a % 4]
            if ref[0] != alt[0] and ref[1] != alt[1]:
                table[r, a] = index[canonical_dbs(ref, alt)]
    return table


DBS_TABLE = _dbs_table()


#: Offsets around an SNV's 0-based position read for its SBS96 channel, 5-mer and doublet flanks.
SNV_WINDOW = range(-2, 3)


def window(seq: np.ndarray, pos0: np.ndarray, offsets: range) -> np.ndarray:
    """Base codes at 0-based pos0 + k for each k (rows) of an ASCII contig array; N (4) off the contig."""
    at = np.asarray(pos0, dtype=np.int64)[None, :] + np.asarray(offsets, dtype=np.int64)[:, None]
    inside = (at >= 0) & (at < len(seq))
    if not len(seq):
        return np.full(at.shape, 4, dtype=np.int64)
    return np.where(inside, CODE_TABLE[seq[np.clip(at, 0, len(seq) - 1)]], 4).astype(np.int64)


def classify_sbs(
    seq: np.ndarray, pos: np.ndarray, ref: np.ndarray, alt: np.ndarray, flank: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """SBS96 channel (-1 if unclassifiable) and pyrimidine-strand 5-mer id (0..1023, -1 if unknown).

    `seq` is the contig's ASCII array, `pos` 1-based, `ref`/`alt` base codes. A channel needs A/C/G/T
    within `flank` bases on each side (1 for SBS96 itself; 2 reproduces SigProfilerMatrixGenerator,
    which reads a 5-mer).
    """
    return sbs_from_window(window(seq, np.asarray(pos, dtype=np.int64) - 1, SNV_WINDOW), ref, alt, flank)


def sbs_from_window(
    w: np.ndarray, ref: np.ndarray, alt: np.ndarray, flank: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """`classify_sbs` given the base codes `w` at SNV_WINDOW around each SNV (5 rows, one column each)."""
    purine = (ref == 0) | (ref == 2)
    flip = lambda x: np.where(purine, 3 - x, x)  # noqa: E731
    oriented = np.where(purine, 3 - w[::-1], w)
    oriented[oriented < 0] = 4
    r, a = flip(np.asarray(ref, dtype=np.int64)), flip(np.asarray(alt, dtype=np.int64))
    sub = SUB_TABLE[np.clip(r, 0, 4), np.clip(a, 0, 4)]
    five, three = oriented[1], oriented[3]
    ok = (sub >= 0) & (five < 4) & (three < 4)
    if flank >= 2:
        ok &= (oriented[0] < 4) & (oriented[4] < 4)
    channel = np.where(ok, five * 24 + sub * 4 + three, -1)
    known = (oriented < 4).all(axis=0) & (sub >= 0)
    motif = np.zeros(len(r), dtype=np.int64)
    for row in range(5):
        motif = motif * 4 + np.minimum(oriented[row], 3)
    return channel, np.where(known, motif, -1)


def classify_dbs(ref1: np.ndarray, ref2: np.ndarray, alt1: np.ndarray, alt2: np.ndarray) -> np.ndarray:
    """DBS78 channel of doublets given the four base codes; -1 where not a valid doublet."""
    ok = (ref1 < 4) & (ref2 < 4) & (alt1 < 4) & (alt2 < 4)
    r = np.where(ok, ref1 * 4 + ref2, 0)
    a = np.where(ok, alt1 * 4 + alt2, 0)
    return np.where(ok, DBS_TABLE[r, a], -1)


def find_doublets(sample: np.ndarray, pos: np.ndarray, compat: bool) -> tuple[np.ndarray, np.ndarray]:
    """Doublets among SNVs sorted by (sample, pos): start indices i of pairs (i, i+1), and a mask of
    SNVs in runs of three or more adjacent bases (multi-nucleotide variants).

    Default: a doublet is exactly two adjacent SNVs of one sample. `compat` reproduces
    SigProfilerMatrixGenerator (seqInfo on): adjacent pairs are dropped when the next or previous
    gap is 1-5 bp (its MNV rule), and runs are not reported separately.
    """
    n = len(pos)
    if n < 2:
        return np.zeros(0, dtype=np.int64), np.zeros(n, dtype=bool)
    diff = np.diff(pos)
    same = sample[1:] == sample[:-1]
    if compat:
        close = (diff > 0) & (diff <= 5)
        has_next = np.append(close[1:], False)
        has_prev = np.insert(close[:-1], 0, False)
        same_prev = np.insert(same[:-1], 0, False)
        excluded = np.where(has_next, same, has_prev & same_prev)
        return np.flatnonzero((diff == 1) & same & ~excluded), np.zeros(n, dtype=bool)
    adj = (diff == 1) & same
    prev_adj = np.insert(adj[:-1], 0, False)
    next_adj = np.append(adj[1:], False)
    in_run = adj & (prev_adj | next_adj)
    run_mask = np.zeros(n, dtype=bool)
    run_mask[:-1] |= in_run
    run_mask[1:] |= in_run
    return np.flatnonzero(adj & ~prev_adj & ~next_adj), run_mask
