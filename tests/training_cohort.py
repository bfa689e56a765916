"""A small simulated cohort in the shared AnnData format, for the training tests.

Each cancer type mixes a few COSMIC v3.4 SBS/DBS/ID signatures (read from the installed
SigProfilerAssignment tables) with its own Dirichlet weights; counts are multinomial draws, the
true exposures are stored in obsm['exposures_<set>'] and mutation events in uns['tokens'].
"""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd

from nanog1.genomics.channels import all_channels
from nanog1.genomics.cohort import channel_set_status, full_layout, with_derived_sets
from nanog1.genomics.signatures import ReferenceSpec, load_reference
from nanog1.genomics.tokens import vocabulary
from nanog1.schema import attach_tokens

TYPE_SIGNATURES = {
    "Lung": {"SBS96": ["SBS1", "SBS4", "SBS5"], "DBS78": ["DBS2", "DBS4"], "ID83": ["ID3", "ID1"]},
    "Skin": {"SBS96": ["SBS7a", "SBS7b", "SBS5"], "DBS78": ["DBS1", "DBS4"], "ID83": ["ID8", "ID1"]},
    "Colon": {"SBS96": ["SBS1", "SBS6", "SBS15"], "DBS78": ["DBS7", "DBS4"], "ID83": ["ID1", "ID2"]},
    "Breast": {"SBS96": ["SBS2", "SBS13", "SBS3"], "DBS78": ["DBS11", "DBS4"], "ID83": ["ID6", "ID8"]},
}
BURDEN = {"SBS96": 150, "DBS78": 8, "ID83": 20}
#: `nanog1 train` options for a model small enough that a CLI run on these cohorts takes seconds.
SMALL_TRAIN_ARGS = ["--hidden", "16", "--layers", "1", "--rank", "4", "--heads", "2", "--batch-size", "8"]


def _draw_set(rng, ref: pd.DataFrame, names: list[str], burden: int, all_names: list[str]):
    weights = rng.dirichlet(np.ones(len(names)))
    n = int(rng.poisson(burden)) + 1
    counts = rng.multinomial(n, ref[names].to_numpy() @ weights)
    exposure = pd.Series(0.0, index=all_names)
    exposure[names] = weights * n
    return counts, exposure


def _tokens(rng, counts: np.ndarray) -> dict:
    channels = [np.repeat(np.arange(counts.shape[1]), row) for row in counts.astype(np.int64)]
    offsets = np.concatenate([[0], np.cumsum([len(c) for c in channels])]).astype(np.int64)
    total = int(offsets[-1])
    return {
        "offsets": offsets,
        "channel": np.concatenate(channels).astype(np.int32),
        "motif": rng.integers(-1, 1024, total).astype(np.int32),
        "chrom": rng.integers(0, 3, total).astype(np.int16),
        "pos": rng.integers(0, 1_000_000, total).astype(np.int64),
        "bin": rng.integers(0, 30, total).astype(np.int32),
        "chroms": np.array(["1", "2", "3"]),
        "vocab": vocabulary(["1", "2", "3"], [10_000_000] * 3),  # 30 bins of 1 Mb, as drawn above
    }


def make_cohort(n_per_type: int = 30, seed: int = 0, tokens: bool = True) -> ad.AnnData:
    """n_per_type samples of each of four types, all three channel sets measured."""
    rng = np.random.default_rng(seed)
    refs = {s: load_reference(ReferenceSpec(channel_set=s)) for s in BURDEN}
    used = {s: sorted({n for t in TYPE_SIGNATURES.values() for n in t[s]}) for s in BURDEN}
    rows, expo, types = [], {s: [] for s in BURDEN}, []
    for cancer_type, sigs in TYPE_SIGNATURES.items():
        for _ in range(n_per_type):
            parts = []
            for s in BURDEN:
                counts, exposure = _draw_set(rng, refs[s], sigs[s], BURDEN[s], used[s])
                parts.append(counts)
                expo[s].append(exposure)
            rows.append(np.concatenate(parts))
            types.append(cancer_type)
    names = [f"S{i:04d}" for i in range(len(rows))]
    var = pd.DataFrame(
        {"channel_set": pd.Categorical([s for s, _ in all_channels()])},
        index=[label for _, label in all_channels()],
    )
    obs = pd.DataFrame({"cancer_type": pd.Categorical(types)}, index=names)
    measured = np.asarray(rows, dtype=np.int64)
    adata = ad.AnnData(X=full_layout(measured, list(BURDEN)).astype(np.float32), obs=obs, var=var)
    for s in BURDEN:
        adata.obsm[f"exposures_{s}"] = pd.DataFrame(expo[s], index=names)
    adata.uns["nanog1"] = {
        "channel_sets_present": with_derived_sets(list(BURDEN)),
        "channel_sets": channel_set_status(list(BURDEN)),
    }
    adata.uns["signature_fit"] = {
        "cosmic_version": "3.4",
        "genome_build": "GRCh37",
        "method": "simulated truth",
    }
    if tokens:
        attach_tokens(adata, _tokens(rng, measured))
    return adata
