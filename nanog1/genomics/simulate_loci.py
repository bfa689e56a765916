"""Sequence loci that make one mutation of a given SBS96/DBS78/ID83 channel unambiguous.

Each builder returns the bases to write into the genome (starting one base before the event) and
the event as (offset of its first base within the locus, ref, alt), VCF-anchored for indels. Indels
follow SigProfilerMatrixGenerator's ID83 rules (see nanog1.genomics.indels): the anchor differs from
the unit's last base (no upstream copy, no left microhomology) and a breaking base that differs from
the unit's first (or next microhomology) base closes the repeat, so the class is exactly the label.
"""

from __future__ import annotations

import numpy as np

from nanog1.genomics.channels import revcomp

BASES = "ACGT"
#: Longest locus any builder returns; loci are placed at least 20 bp apart in slots of SLOT bases.
MAX_LOCUS = 40
SLOT = 64


def _other(rng: np.random.Generator, *avoid: str) -> str:
    """A random base not in `avoid`."""
    return str(rng.choice([b for b in BASES if b not in avoid]))


def sbs_locus(rng: np.random.Generator, label: str) -> tuple[str, list[tuple[int, str, str]]]:
    """'A[C>A]G' → trinucleotide locus, written on a random strand."""
    five, ref, alt, three = label[0], label[2], label[4], label[6]
    seq = five + ref + three
    if rng.random() < 0.5:
        seq, alt = revcomp(seq), revcomp(alt)
    return seq, [(1, seq[1], alt)]


def dbs_locus(rng: np.random.Generator, label: str) -> tuple[str, list[tuple[int, str, str]]]:
    """'AC>CA' → two adjacent SNVs with random flanks, on a random strand."""
    ref, alt = label.split(">")
    if rng.random() < 0.5:
        ref, alt = revcomp(ref), revcomp(alt)
    seq = str(rng.choice(list(BASES))) + ref + str(rng.choice(list(BASES)))
    return seq, [(1, ref[0], alt[0]), (2, ref[1], alt[1])]


def _unit(rng: np.random.Generator, size: str, micro: int) -> str:
    """A random repeat unit for an ID83 size class ('5' means 5+: 5 or 6 bases, 6 for MH 5)."""
    length = int(size) if size != "5" else (6 if micro >= 5 else int(rng.integers(5, 7)))
    return "".join(rng.choice(list(BASES), size=length))


def id_locus(rng: np.random.Generator, label: str) -> tuple[str, list[tuple[int, str, str]]]:
    """'2:Del:R:3' etc. → anchor + repeat/microhomology context + breaking base, VCF-anchored event."""
    size, kind, sub, n_str = label.split(":")
    n = int(n_str)
    if size == "1":
        unit = sub if rng.random() < 0.5 else revcomp(sub)
        copies = n + (1 if kind == "Del" else 0)
        if n == 5:
            copies += int(rng.integers(0, 3))
        body = unit * copies
        tail = _other(rng, unit)
    elif sub == "M":
        unit = _unit(rng, size, n)
        body = unit + unit[:n]
        tail = _other(rng, unit[n])
    else:
        unit = _unit(rng, size, 0)
        body = unit * (n + (1 if kind == "Del" else 0))
        tail = _other(rng, unit[0])
    anchor = _other(rng, unit[-1])
    seq = str(rng.choice(list(BASES))) + anchor + body + tail
    if kind == "Del":
        return seq, [(1, anchor + unit, anchor)]
    return seq, [(1, anchor, anchor + unit)]


def locus(rng: np.random.Generator, channel_set: str, label: str) -> tuple[str, list[tuple[int, str, str]]]:
    """Locus and event(s) for one mutation of `label` in `channel_set`."""
    builder = {"SBS96": sbs_locus, "DBS78": dbs_locus, "ID83": id_locus}[channel_set]
    return builder(rng, label)
