"""Is a tumour's call set a whole genome or an exome? Stated rules over its own mutations (issue 31).

A model trained on whole genomes types an exome with confidence all the same (the PCAWG model called 25
of 32 accepted MC3 exomes CNS-PiloAstro), so `nanog1 predict` asks first. Per tumour, from the
mutations ingest kept (`uns['tokens']`: contig, position, consequence):

* **coding share**: of its mutations with a consequence (a MAF's `Variant_Classification`), the share
  in protein-coding or splice classes. A whole genome has ~1-2 % there, an exome most of its calls.
* **capture territory**: of its positioned mutations, the share inside exome capture targets
  (SigProfilerMatrixGenerator's GRCh37 and GRCh38 bait lists, the higher of the two builds, so the
  build need not be known). A whole genome has ~2 % there.

A tumour is exome-like when either share is >= `EXOME_SHARE` (0.25) over >= `MIN_MUTATIONS` (10) such
mutations; otherwise, with >= 10 such mutations, a genome (its evidence: every share that was measured,
all below 0.25). The threshold lies between the two kinds with room on both sides: real TCGA exomes with
>= 10 mutations have coding shares of 0.42-1.00 (MC3, 5,793 tumours; six below 0.5, which a threshold of
0.5 called genomes) and 0.71-1.00 (Firehose, 6,831), whole genomes ~0.01-0.02; a genome of 10 mutations
reaches 0.25 (3 coding) with probability ~1e-3. Tumours without positions or consequences (catalogue
matrices, cohorts without tokens) are 'unknown': no rule can see them, so `--assay exome` is how to say so.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

EXOME_SHARE = 0.25
MIN_MUTATIONS = 10
ASSAYS = ("auto", "genome", "exome")
#: Protein-coding and splice consequences: MAF Variant_Classification values and VEP/snpEff terms.
CODING = frozenset({
    "missense_mutation", "nonsense_mutation", "silent", "frame_shift_del", "frame_shift_ins",
    "in_frame_del", "in_frame_ins", "splice_site", "nonstop_mutation", "translation_start_site",
    "start_codon_snp", "start_codon_del", "start_codon_ins", "stop_codon_del", "stop_codon_ins",
    "de_novo_start_inframe", "de_novo_start_outofframe",
    "missense_variant", "synonymous_variant", "stop_gained", "stop_lost", "start_lost",
    "frameshift_variant", "inframe_insertion", "inframe_deletion", "splice_acceptor_variant",
    "splice_donor_variant", "splice_region_variant", "protein_altering_variant", "coding_sequence_variant",
    "stop_retained_variant", "incomplete_terminal_codon_variant", "initiator_codon_variant",
})


@dataclass(frozen=True)
class AssayCall:
    """Per tumour: 'genome', 'exome' or 'unknown', and the evidence behind it ('' when none)."""

    assay: np.ndarray
    evidence: np.ndarray


def detect_assay(adata, mode: str = "auto") -> AssayCall:
    """Each tumour's assay: `mode` 'genome' / 'exome' as stated for all, 'auto' by the rules above."""
    n = adata.n_obs
    if mode not in ASSAYS:
        raise ValueError(f"assay {mode!r}: choose one of {', '.join(ASSAYS)}")
    if mode != "auto":
        return AssayCall(np.full(n, mode, dtype=object), np.full(n, f"stated --assay {mode}", dtype=object))
    assay, evidence = np.full(n, "unknown", dtype=object), np.full(n, "", dtype=object)
    tokens = adata.uns.get("tokens")
    if not tokens or "pos" not in tokens or len(tokens["pos"]) == 0:
        return AssayCall(assay, evidence)
    offsets = np.asarray(tokens["offsets"], dtype=np.int64)
    row = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
    rules = [("protein-coding or splice", *coding_hits(tokens))]
    rules += [(f"inside {b} exome capture targets", *hits) for b, hits in territory_hits(tokens).items()]
    genome_evidence = [[] for _ in range(n)]
    for what, hit, known in rules:
        n_known = np.bincount(row[known], minlength=n)
        share = np.bincount(row[known & hit], minlength=n) / np.maximum(n_known, 1)
        seen = n_known >= MIN_MUTATIONS
        assay[seen & (assay == "unknown")] = "genome"
        exome = seen & (share >= EXOME_SHARE)
        assay[exome] = "exome"
        for i in np.flatnonzero(seen):
            said = f"{share[i]:.0%} of {n_known[i]} mutations {what}"
            if exome[i] and not evidence[i]:
                evidence[i] = said
            genome_evidence[i].append(said)
    for i in np.flatnonzero(assay == "genome"):
        evidence[i] = "; ".join(genome_evidence[i])
    return AssayCall(assay, evidence)


def coding_hits(tokens: dict) -> tuple[np.ndarray, np.ndarray]:
    """(coding, consequence known) per token."""
    ids = np.asarray(tokens.get("consequence", np.full(len(tokens["pos"]), -1)), dtype=np.int64)
    table = [str(v).lower() for v in tokens.get("vocab", {}).get("consequence", [])]
    coding = np.array([any(p in CODING for p in v.replace("&", ",").split(",")) for v in table] + [False])
    known = ids >= 0
    return coding[np.where(known, ids, len(table))], known


def territory_hits(tokens: dict) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per build (GRCh37, GRCh38): (inside exome capture targets, on a contig the target list has)."""
    chroms = np.array([_contig(c) for c in tokens["chroms"]], dtype=object)
    chrom = chroms[np.asarray(tokens["chrom"], dtype=np.int64)]
    pos = np.asarray(tokens["pos"], dtype=np.int64)
    out = {}
    for build in ("GRCh37", "GRCh38"):
        inside, known = np.zeros(len(pos), dtype=bool), np.zeros(len(pos), dtype=bool)
        for c, (starts, ends) in capture_targets(build).items():
            on = np.flatnonzero(chrom == c)
            if len(on):
                known[on] = True
                j = np.searchsorted(starts, pos[on], side="right") - 1
                inside[on] = (j >= 0) & (pos[on] <= ends[np.maximum(j, 0)])
        out[build] = (inside, known)
    return out


def _contig(name) -> str:
    s = str(name)
    return s[3:] if s.lower().startswith("chr") else s


@lru_cache(maxsize=2)
def capture_targets(build: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Merged exome capture intervals per contig (1-based, closed) from SigProfilerMatrixGenerator's
    `references/chromosomes/exome/<build>/<build>_exome.interval_list` (a declared dependency)."""
    import importlib.util

    spec = importlib.util.find_spec("SigProfilerMatrixGenerator")
    if spec is None or not spec.submodule_search_locations:
        return {}
    root = Path(next(iter(spec.submodule_search_locations)))
    path = root / "references" / "chromosomes" / "exome" / build / f"{build}_exome.interval_list"
    if not path.exists():
        return {}
    table = pd.read_csv(path, sep="\t", comment="@", header=None, usecols=[0, 1, 2],
                        names=["chrom", "start", "end"], dtype={"chrom": str})
    out = {}
    for c, part in table.groupby("chrom", sort=False):
        part = part.sort_values("start")
        starts, ends = part["start"].to_numpy(), np.maximum.accumulate(part["end"].to_numpy())
        new = np.r_[True, starts[1:] > ends[:-1] + 1]  # merge touching and overlapping baits
        last = np.r_[np.flatnonzero(new)[1:] - 1, len(ends) - 1]
        out[_contig(c)] = (starts[new], ends[last])
    return out
