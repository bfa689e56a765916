"""Contig names spelled one way: `chr1` -> `1`, `23`/`24` -> `X`/`Y`, `M`/`chrM` -> `MT`.

Why: the same site must get the same name in every input (Firehose writes X as 23, a UCSC-style VCF
writes chr1), or a model's saved names (hotspot sites) miss it. Plain Python (no numpy, no pandas), so
every reader and the GPU-side scripts can share it.
"""

from __future__ import annotations

#: Chromosome spellings turned into the canonical ones (after any `chr` prefix is removed).
CHROM_ALIASES = {"23": "X", "24": "Y", "M": "MT", "x": "X", "y": "Y", "m": "MT", "mt": "MT"}


def canonical_chrom_name(name: str | None) -> str:
    """`chr1` -> `1`, `23`/`24` -> `X`/`Y`, `M`/`chrM` -> `MT`."""
    bare = (name or "").strip()
    bare = bare[3:] if bare.lower().startswith("chr") else bare
    return CHROM_ALIASES.get(bare, bare)
