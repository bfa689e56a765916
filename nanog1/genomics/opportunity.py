"""Trinucleotide opportunities: how often each of the 32 pyrimidine-centred contexts occurs in a target.

A genome, an exome and a panel see different trinucleotide frequencies, so the same mutational
process yields different SBS96 spectra on each. Counts come from the reference FASTA (pysam via
`nanog1.genomics.reference`), over whole contigs or over the regions of a BED file (0-based,
half-open; overlapping regions merged so no base counts twice). A context is counted at every centre
base inside the target whose two flanks are A/C/G/T (flanks may lie outside a region); purine-centred
triplets are folded onto their reverse complement. `channel_opportunity` spreads the 32 counts onto
the 96 SBS channels (each context serves its three substitutions). Torch-free.
"""

from __future__ import annotations

from itertools import product
from pathlib import Path

import numpy as np
import pandas as pd

from nanog1.errors import UserError
from nanog1.genomics.channels import CHANNEL_SETS, revcomp
from nanog1.genomics.reference import CODE_TABLE, Reference

#: The 32 pyrimidine-centred trinucleotides, C-centred then T-centred, flanks in ACGT order.
CONTEXTS = tuple(f"{a}{m}{b}" for m in "CT" for a, b in product("ACGT", repeat=2))
_BLOCK = 8_000_000


def _fold_table() -> np.ndarray:
    """Map each of the 64 trinucleotide codes (16·a + 4·m + b) to its context index in CONTEXTS."""
    index = {c: i for i, c in enumerate(CONTEXTS)}
    fold = np.empty(64, dtype=np.int64)
    for code, tri in enumerate("".join(p) for p in product("ACGT", repeat=3)):
        fold[code] = index[tri] if tri[1] in "CT" else index[revcomp(tri)]
    return fold


_FOLD = _fold_table()


def read_bed(path: str | Path) -> pd.DataFrame:
    """BED regions (chrom, start, end; 0-based half-open), merged per contig; errors name file and line."""
    path = Path(path)
    rows = []
    with open(path) as handle:
        for line_no, line in enumerate(handle, 1):
            if not line.strip() or line.startswith(("#", "track", "browser")):
                continue
            fields = line.rstrip("\n").split("\t")
            try:
                chrom, start, end = fields[0], int(fields[1]), int(fields[2])
            except (IndexError, ValueError) as err:
                raise UserError(f"{path}:{line_no}: expected 'chrom<TAB>start<TAB>end'") from err
            if start < 0 or end < start:
                raise UserError(f"{path}:{line_no}: bad interval {start}-{end}")
            rows.append((chrom, start, end))
    if not rows:
        raise UserError(f"{path}: no regions")
    return merge_regions(pd.DataFrame(rows, columns=["chrom", "start", "end"]))


def merge_regions(regions: pd.DataFrame) -> pd.DataFrame:
    """Union of intervals per contig (sorted), so overlapping regions count once."""
    out = []
    for chrom, grp in regions.sort_values(["chrom", "start"]).groupby("chrom", sort=False):
        reach = grp["end"].cummax().shift(fill_value=-1).to_numpy()
        new = grp["start"].to_numpy() > reach
        label = np.cumsum(new)
        merged = grp.groupby(label).agg(start=("start", "min"), end=("end", "max"))
        out.append(merged.assign(chrom=chrom)[["chrom", "start", "end"]])
    return pd.concat(out, ignore_index=True)


def _count_span(codes: np.ndarray, start: int, end: int) -> np.ndarray:
    """Context counts (64 raw codes) of centres start..end-1 of a contig's code array."""
    lo, hi = max(start, 1), min(end, len(codes) - 1)
    if hi <= lo:
        return np.zeros(64, dtype=np.int64)
    left, mid, right = codes[lo - 1 : hi - 1], codes[lo:hi], codes[lo + 1 : hi + 1]
    ok = (left < 4) & (mid < 4) & (right < 4)
    tri = (left.astype(np.int64) * 16 + mid * 4 + right)[ok]
    return np.bincount(tri, minlength=64)


def _contig_regions(ref: Reference, regions: pd.DataFrame | None) -> dict[str, list[tuple[int, int]]]:
    """Spans per FASTA contig: whole contigs, or the BED regions resolved to FASTA names."""
    if regions is None:
        return {c: [(0, ref.lengths[c])] for c in ref.contigs}
    spans: dict[str, list[tuple[int, int]]] = {}
    for chrom, grp in regions.groupby("chrom", sort=False):
        name = ref.resolve(str(chrom))
        if name is None:
            raise UserError(f"BED contig {chrom!r} is not in {ref.path}")
        spans[name] = list(zip(grp["start"], grp["end"], strict=True))
    return spans


def count_contexts(fasta: str | Path, bed: str | Path | pd.DataFrame | None = None) -> pd.Series:
    """Opportunity of each of the 32 pyrimidine-centred contexts in the FASTA (or its BED regions)."""
    regions = read_bed(bed) if isinstance(bed, (str, Path)) else bed
    ref = Reference(fasta)
    raw = np.zeros(64, dtype=np.int64)
    try:
        for contig, spans in _contig_regions(ref, regions).items():
            letters = ref.raw(contig)
            for start, end in spans:
                for s in range(int(start), int(min(end, len(letters))), _BLOCK):
                    e = min(s + _BLOCK, int(end), len(letters))
                    window = CODE_TABLE[letters[max(s - 1, 0) : e + 1]]
                    offset = 1 if s > 0 else 0
                    raw += _count_span(window, offset, offset + (e - s))
    finally:
        ref.close()
    counts = np.bincount(_FOLD, weights=raw, minlength=32)
    return pd.Series(counts, index=list(CONTEXTS), name="opportunity")


def channel_opportunity(contexts: pd.Series) -> pd.Series:
    """The 32 context counts spread onto the 96 SBS channels ('A[C>T]G' gets the count of 'ACG')."""
    labels = CHANNEL_SETS["SBS96"]
    return pd.Series([float(contexts[f"{lab[0]}{lab[2]}{lab[6]}"]) for lab in labels], index=list(labels))
