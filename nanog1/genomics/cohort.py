"""The cohort AnnData: assembly from counts, sample sheet, provenance and tokens; atomic read/write.

Layout (the shared contract): X float32 samples x `N_CHANNELS` channels in `all_channels()` order
(SBS96, DBS78, ID83, SBS6, ID12), `var['channel_set']`, `obs` = sample-sheet columns + `burden_<set>`
+ `no_mutations`, `obsm['measured_sets']` = the sets each sample measured (bool;
`measured_sets.mark_measured`, `nanog1.schema.measured_sets_per_sample`), `uns['nanog1']` = provenance
with `channel_sets` ({set: 'exact' | 'not_computable' | 'partial'}) and `channel_sets_present` (the exact
sets, layout order), `uns['tokens']` = ragged token arrays (see `tokens`). Derived sets (SBS6, ID12) are
filled from their source set whenever that was measured.
"""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pandas as pd

from nanog1.errors import UserError
from nanog1.genomics.channels import (
    CHANNEL_SETS,
    DERIVED_FROM,
    EXACT,
    N_CHANNELS,
    NOT_COMPUTABLE,
    SIGNATURE_SETS,
    all_channels,
    fold_labels,
    set_slice,
)
from nanog1.io import atomic_write_with
from nanog1.schema import CANCER_TYPE, SchemaError, attach_tokens, upgrade_tokens, with_derived_sets
from nanog1.schema import recorded_channel_sets as measured_sets  # noqa: F401  (one rule: nanog1.schema)


def channel_var() -> pd.DataFrame:
    """The `var` table: channel labels as index, `channel_set` categorical."""
    pairs = all_channels()
    sets = pd.Categorical([s for s, _ in pairs], categories=list(CHANNEL_SETS))
    return pd.DataFrame({"channel_set": sets}, index=pd.Index([label for _, label in pairs]))


def channel_set_status(present: list[str]) -> dict[str, str]:
    """uns['nanog1']['channel_sets']: 'exact' for each measured (or derivable) set, else 'not_computable'."""
    exact = set(with_derived_sets(present))
    return {name: EXACT if name in exact else NOT_COMPUTABLE for name in CHANNEL_SETS}


def full_layout(counts: np.ndarray, present: list[str]) -> np.ndarray:
    """Counts in the full layout: a legacy SBS96+DBS78+ID83 matrix is widened, and each derived set is
    folded from its source set where that source was measured (a derived set holds at least the fold).
    Where the source is measured for some samples only (an SBS96 and an ID83 matrix sharing some sample
    names; calls on contigs the FASTA lacked), each sample's derived block is at least the fold of its own
    source block: a matrix row holds its source set only, and its derived set would otherwise read as zero
    mutations while recorded measured (calls read without context already hold more than the fold).
    The same holds where the source is measured for every sample: a sample whose few calls on contigs the
    FASTA lacks were left out of its exact SBS96/ID83 (channels.WITHOUT_CONTEXT_TOLERANCE) keeps them in
    SBS6/ID12, so its derived block is the fold plus those calls, never less than the fold (a block of the
    fold alone, as ingestion gives otherwise, is unchanged)."""
    counts = np.asarray(counts)
    legacy = sum(len(CHANNEL_SETS[s]) for s in SIGNATURE_SETS)
    if counts.ndim == 2 and counts.shape[1] == legacy:
        counts = np.hstack([counts, np.zeros((counts.shape[0], N_CHANNELS - legacy), dtype=counts.dtype)])
    if counts.ndim != 2 or counts.shape[1] != N_CHANNELS:
        raise ValueError(f"counts have shape {counts.shape}; the cohort layout needs {N_CHANNELS} columns")
    counts = counts.copy()
    for derived, source in DERIVED_FROM.items():
        fold = np.asarray(fold_labels(derived))
        block = np.zeros((counts.shape[0], len(CHANNEL_SETS[derived])), dtype=counts.dtype)
        np.add.at(block.T, fold, counts[:, set_slice(source)].T)
        counts[:, set_slice(derived)] = np.maximum(counts[:, set_slice(derived)], block)
    return counts


def _obs(
    counts: np.ndarray, samples: list[str], sheet: pd.DataFrame | None, cancer_types: pd.Series | None
) -> pd.DataFrame:
    """Sample-sheet columns joined on sample id, burdens per channel set and the no-mutation flag."""
    obs = pd.DataFrame(index=pd.Index(samples, dtype=str))
    if sheet is not None:
        obs = obs.join(sheet, how="left")
    if cancer_types is not None:
        known = cancer_types.reindex(obs.index)
        obs[CANCER_TYPE] = obs[CANCER_TYPE].fillna(known) if CANCER_TYPE in obs else known
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
    """Build the cohort AnnData (counts: samples x N_CHANNELS, or the legacy 257 columns, widened).

    `provenance['channel_sets_present']` names the measured sets; derived sets are filled from them,
    and `channel_sets` / `channel_sets_present` are rewritten to the full, consistent status.
    """
    present = [str(s) for s in provenance.get("channel_sets_present", SIGNATURE_SETS)]
    counts = full_layout(counts, present)
    provenance = {
        **provenance,
        "channel_sets": channel_set_status(present),
        "channel_sets_present": with_derived_sets(present),
    }
    adata = ad.AnnData(
        X=counts.astype(np.float32), obs=_obs(counts, samples, sheet, cancer_types), var=channel_var()
    )
    adata.uns["nanog1"] = provenance
    if tokens is not None:
        attach_tokens(adata, tokens)
    return adata


def write_cohort(adata: ad.AnnData, path: Path | str) -> Path:
    """Write an .h5ad atomically and group-readable (nanog1.io.atomic_write_with)."""
    return atomic_write_with(path, adata.write_h5ad)


def conform_cohort(adata: ad.AnnData) -> ad.AnnData:
    """A cohort in the current layout: one written with the legacy SBS96+DBS78+ID83 columns is widened,
    its derived sets folded from the measured ones (other keys kept); a current one is returned as is."""
    if adata.n_vars == N_CHANNELS:
        return adata
    legacy = [label for name in SIGNATURE_SETS for label in CHANNEL_SETS[name]]
    if list(adata.var_names) != legacy:
        raise ValueError(f"cohort has {adata.n_vars} channels that are not the NanoG1 layout")
    meta = dict(adata.uns.get("nanog1") or {})
    present = [str(s) for s in meta.get("channel_sets_present", SIGNATURE_SETS)]
    X = adata.X.toarray() if hasattr(adata.X, "toarray") else np.asarray(adata.X)
    out = ad.AnnData(X=full_layout(X, present).astype(np.float32), obs=adata.obs.copy(), var=channel_var())
    out.obsm.update(dict(adata.obsm))
    out.uns.update(dict(adata.uns))
    out.uns["nanog1"] = {**meta, "channel_sets": channel_set_status(present)}
    out.uns["nanog1"]["channel_sets_present"] = with_derived_sets(present)
    for name in CHANNEL_SETS:
        out.obs[f"burden_{name}"] = out.X[:, set_slice(name)].sum(axis=1).astype(np.int64)
    return out


def read_cohort(path: Path | str) -> ad.AnnData:
    """Read a cohort .h5ad (fully into memory), in the current channel layout (see conform_cohort).

    A missing file, a file that is not HDF5 (a VCF or MAF given in its place, say) or a damaged one is a
    UserError naming the file."""
    adata = conform_cohort(open_h5ad(path))
    try:
        upgrade_tokens(adata, str(path))
    except SchemaError as err:
        raise UserError(str(err)) from err
    return adata


def open_h5ad(path: Path | str) -> ad.AnnData:
    """An .h5ad file as written (no layout change: the report reads any evaluated AnnData); a missing file,
    one that is not HDF5 or a damaged one is a UserError naming the file, never an h5py traceback."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such cohort file")
    check_hdf5(path)
    try:
        return ad.read_h5ad(path)
    except Exception as err:  # h5py and anndata raise many types for a damaged file
        raise UserError(f"{path}: not a readable .h5ad cohort ({type(err).__name__}: {err})") from err


def is_cohort_file(path: Path) -> bool:
    """Whether an input is a cohort: named .h5ad (any case; read_cohort then says if it is not one), or an
    HDF5 file under another name (ingest -o cohort, no suffix), which no other input kind is."""
    path = Path(path)
    return path.name.lower().endswith(".h5ad") or (path.is_file() and h5py.is_hdf5(path))


def check_hdf5(path: Path) -> None:
    """Refuse, naming it, an existing file that is not HDF5 (a VCF or MAF given for a cohort, say)."""
    if not h5py.is_hdf5(path):
        raise UserError(f"{path}: not an .h5ad cohort (not an HDF5 file){_not_a_cohort_hint(path)}")


def _not_a_cohort_hint(path: Path) -> str:
    """What the file looks like instead, when that is a mutation file (so `nanog1 ingest` makes a cohort)."""
    with open(path, "rb") as handle:
        head = handle.read(4096)
    if head[:2] == b"\x1f\x8b" or head.startswith(b"##fileformat=VCF") or b"Tumor_Sample_Barcode" in head:
        return "; it looks like a VCF/MAF: make a cohort from it with `nanog1 ingest`"
    return ""
