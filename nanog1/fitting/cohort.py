"""Fit COSMIC signatures to every channel set of a cohort AnnData and record the results in it.

Writes the contract keys: obsm['exposures_<set>'] (DataFrame of attributed mutations),
obs['fit_cosine_<set>'], and uns['signature_fit'] (COSMIC version, genome build, method, settings).
"""

from __future__ import annotations

import pandas as pd

from nanog1.fitting.fit import FitConfig, FitResult, fit_signatures
from nanog1.genomics.channels import CHANNEL_SETS
from nanog1.genomics.signatures import ReferenceSpec, load_reference


def present_sets(adata) -> list[str]:
    """Channel sets the cohort measured (uns['nanog1']['channel_sets_present'], else non-empty sets)."""
    listed = adata.uns.get("nanog1", {}).get("channel_sets_present")
    if listed is not None and len(listed):
        return [str(s) for s in listed]
    sets = adata.var["channel_set"].astype(str)
    return [cs for cs in CHANNEL_SETS if adata[:, (sets == cs).to_numpy()].X.sum() > 0]


def fit_cohort(
    adata,
    config: FitConfig | None = None,
    channel_sets: list[str] | None = None,
    cosmic_version: str = "3.4",
    genome_build: str = "GRCh37",
    exome: bool = False,
) -> dict[str, FitResult]:
    """Fit each channel set of `adata` in place and return the per-set results."""
    config = config or FitConfig()
    results: dict[str, FitResult] = {}
    table = adata.to_df()
    for cs in channel_sets or present_sets(adata):
        ref = load_reference(ReferenceSpec(cs, cosmic_version, genome_build, exome))
        res = fit_signatures(table[list(CHANNEL_SETS[cs])], ref, config)
        adata.obsm[f"exposures_{cs}"] = pd.DataFrame(
            res.exposures.to_numpy(), index=adata.obs_names, columns=[str(c) for c in ref.columns]
        )
        adata.obs[f"fit_cosine_{cs}"] = res.cosine.to_numpy()
        results[cs] = res
    adata.uns["signature_fit"] = {
        "cosmic_version": cosmic_version,
        "genome_build": genome_build,
        "exome": exome,
        "method": config.method,
        "settings": config.settings(),
        "channel_sets": list(results),
        "source": "COSMIC reference signatures shipped by SigProfilerAssignment",
    }
    return results
