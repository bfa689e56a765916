"""Whether a tumour's calls carry the protein changes a model's codon hotspots read (issue 31).

Why: a model whose hotspot bag is keyed by protein codon (`hotspot_key` codon / both: "KRAS:p.G12",
nanog1.genomics.gene_bag) reads those columns from the MAF's protein-change field (HGVSp_Short of
GDC/MC3/VEP, Protein_Change of Oncotator), which ingest keeps as the token field `codon`. A plain VCF,
or a MAF without that column, has none: every codon column then reads "absent", so a KRAS G12D tumour
looks like one without it. That must never be silent: `nanog1 predict` states it per tumour
(obs['protein_change']), in uns['nanog1_predict'] (so the table line, JSON and report) and as a
`ProteinChangeMismatchWarning` for a Python caller. A model without codon hotspots reads no protein
change, and nothing is said.

The same holds for consequences: an event model whose tokens carry each mutation's consequence (tcga-exome,
from the MAF's Variant_Classification) reads "unknown" for every call of a MAF without that column; it is
stated the same way (obs['consequence'], uns['nanog1_predict']['consequence_mismatch'],
`ConsequenceMismatchWarning`) and the tumours are still scored, not abstained on.
"""

from __future__ import annotations

import numpy as np


class ProteinChangeMismatchWarning(UserWarning):
    """Tumours without protein-change annotation were scored by a model with codon hotspots."""


class ConsequenceMismatchWarning(UserWarning):
    """Tumours without consequence annotation were scored by a model whose tokens carry consequences."""


def codon_hotspots(encoder_config: dict) -> list[str]:
    """The model's hotspot names that are protein codons ("KRAS:p.G12"), in its bag's order."""
    from nanog1.genomics.gene_bag import is_codon

    return [str(s) for s in encoder_config.get("hotspots") or [] if is_codon(str(s))]


def annotated(adata, field: str = "codon") -> np.ndarray:
    """Per tumour, whether any of its mutations carries token `field` (an id >= 0; `codon`: a protein
    change, `gene`: a gene); all False when the cohort was ingested without that field."""
    from nanog1.schema import TOKENS, row_tokens

    if not adata.uns.get(TOKENS):
        return np.zeros(adata.n_obs, dtype=bool)
    tokens = row_tokens(adata)
    offsets = np.asarray(tokens["offsets"], dtype=np.int64)
    if field not in tokens:
        return np.zeros(adata.n_obs, dtype=bool)
    rows = np.repeat(np.arange(adata.n_obs), np.diff(offsets))
    return np.bincount(rows[np.asarray(tokens[field]) >= 0], minlength=adata.n_obs) > 0


def mismatch(n_codons: int, has_protein: np.ndarray, has_calls: np.ndarray) -> str:
    """'' when the model reads no codons or every tumour with calls carries protein changes; else one
    sentence naming how many tumours lack them and what that does to the model's input."""
    lacking = int((~has_protein & has_calls).sum())
    if not n_codons or not lacking:
        return ""
    return (f"protein-change mismatch: the model's hotspot bag reads {n_codons:,} protein codons (e.g. "
            f"KRAS:p.G12) from the MAF's HGVSp_Short / Protein_Change; {lacking} of {int(has_calls.sum())} "
            "tumour(s) carry no protein change (a plain VCF, or a MAF without that column), so those columns "
            "read as absent: probabilities and abstention are calibrated for annotated inputs")


def consequence_values(encoder_config: dict) -> int:
    """How many consequence values an event model's tokens read (0: not an event model, or none)."""
    if encoder_config.get("view") != "events":
        return 0
    return len((encoder_config.get("event_vocab") or {}).get("consequence") or [])


def consequence_mismatch(n_values: int, has_consequence: np.ndarray, has_calls: np.ndarray) -> str:
    """'' when the model reads no consequences or every tumour with calls carries one; else one sentence
    naming how many tumours lack them and what that does to the model's input."""
    lacking = int((~has_consequence & has_calls).sum())
    if not n_values or not lacking:
        return ""
    return (f"consequence mismatch: the model's tokens read each mutation's consequence ({n_values} values, "
            f"e.g. Missense_Mutation) from the MAF's Variant_Classification; {lacking} of "
            f"{int(has_calls.sum())} tumour(s) carry none (a MAF without that column, or a VCF), so every "
            "call reads as of unknown consequence: probabilities and abstention are calibrated for "
            "annotated inputs")
