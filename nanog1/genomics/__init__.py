"""Genomics without torch: readers, classification into the channel layout, tokens, signature tables,
the cohort simulator and AnnData assembly.

Public API (`__all__`, imported on first use): `read_cohort` / `write_cohort` (a cohort .h5ad, checked and
written atomically), `SIGNATURE_SETS` (the channel sets with COSMIC reference signatures) and the simulator
(`read_priors`, `simulate_cohort`, `simulated_anndata`).
"""

from nanog1.exports import lazy_attributes

_API = {
    **dict.fromkeys(("read_cohort", "write_cohort"), "nanog1.genomics.cohort"),
    "SIGNATURE_SETS": "nanog1.genomics.channels",
    **dict.fromkeys(("read_priors", "simulate_cohort", "simulated_anndata"), "nanog1.genomics.simulate"),
}
__all__ = sorted(_API)

__getattr__ = lazy_attributes(__name__, _API)
