"""The cohort AnnData: assembly from counts, sample sheet, provenance and tokens; atomic read/write.

Layout (the shared contract): X float32 samples x 257 channels in `all_channels()` order,
`var['channel_set']`, `obs` = sample-sheet columns + `burden_<set>` + `no_mutations`,
`uns['nanog1']` = provenance, `uns['tokens']` = ragged token arrays (see `tokens`).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd

from nanog1.genomics.channels import CHANNEL_SETS, all_channels


def channel_var() -> pd.DataFrame:
    """The `var` table: channel labels as index, `channel_set` categorical."""
    pairs = all_channels()
    sets = pd.Categorical([s for s, _ in pairs], categories=list(CHANNEL_SETS))
    return pd.DataFrame({"channel_set": sets}, index=pd.Index([label for _, label in pairs]))


def _obs(
    counts: np.ndarray, samples: list[str], sheet: pd.DataFrame | None, cancer_types: pd.Series | None
) -> pd.DataFrame:
    """Sample-sheet columns joined on sample id, burdens per channel set and the no-mutation flag."""
    obs = pd.DataFrame(index=pd.Index(samples, dtype=str))
    if sheet is not None:
        obs = obs.join(sheet, how="left")
    if cancer_types is not None:
        known = cancer_types.reindex(obs.index)
        obs["cancer_type"] = obs["cancer_type"].fillna(known) if "cancer_type" in obs else known
    for col in obs.columns:
        if obs[col].dtype == object:
            obs[col] = pd.Categorical(obs[col])
    start = 0
    for name, labels in CHANNEL_SETS.items():
        obs[f"burden_{name}"] = counts[:, start : start + len(labels)].sum(axis=1).astype(np.int64)
        start += len(labels)
    obs["no_mutations"] = counts.sum(axis=1) == 0
    return obs


def assemble_cohort(
    counts: np.ndarray,
    samples: list[str],
    provenance: dict,
    *,
    sheet: pd.DataFrame | None = None,
    cancer_types: pd.Series | None = None,
    tokens: dict | None = None,
) -> ad.AnnData:
    """Build the cohort AnnData (counts: samples x 257)."""
    counts = np.asarray(counts)
    adata = ad.AnnData(
        X=counts.astype(np.float32), obs=_obs(counts, samples, sheet, cancer_types), var=channel_var()
    )
    adata.uns["nanog1"] = provenance
    if tokens is not None:
        adata.uns["tokens"] = tokens
    return adata


def write_cohort(adata: ad.AnnData, path: Path | str) -> Path:
    """Write an .h5ad atomically: a temporary file in the same folder, then os.replace."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        adata.write_h5ad(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_cohort(path: Path | str) -> ad.AnnData:
    """Read a cohort .h5ad (fully into memory)."""
    return ad.read_h5ad(Path(path))
