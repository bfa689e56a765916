"""Per-mutation signature probabilities: P(signature s | channel c, sample) = e_s·S[c,s] / Σ_t e_t·S[c,t].

For every event token of a cohort (uns['tokens']) whose channel is in the fitted set, the row holds
the posterior share of each active signature, given the channel and the sample's fitted exposures e
(Bayes with the exposures as prior mass and the signature profiles as likelihoods). Rows sum to one;
tokens of other channel sets, and channels the sample's fit does not explain (Σ = 0), get all-zero
rows. Summed over a sample's events, signature s collects e_s·Σ_c V_c·S[c,s]/R_c (V the catalogue,
R the reconstruction), which is e_s wherever the fit reconstructs the catalogue.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from nanog1.errors import UserError
from nanog1.genomics.channels import CHANNEL_SETS, all_channels
from nanog1.io import atomic_open
from nanog1.schema import row_tokens, token_rows


def channel_probabilities(exposures: pd.DataFrame, signatures: pd.DataFrame) -> np.ndarray:
    """Samples × channels × signatures posterior table (zeros where the channel is unexplained)."""
    E = exposures[list(signatures.columns)].to_numpy(np.float64)
    S = signatures.to_numpy(np.float64)
    joint = E[:, None, :] * S[None, :, :]
    total = joint.sum(-1, keepdims=True)
    return np.divide(joint, total, out=np.zeros_like(joint), where=total > 0)


def active_signatures(exposures: pd.DataFrame) -> list[str]:
    """Signatures with a non-zero exposure in at least one sample, in table order."""
    return [str(c) for c in exposures.columns[(exposures.to_numpy() > 0).any(0)]]


def token_probabilities(
    tokens: dict, exposures: pd.DataFrame, signatures: pd.DataFrame, channel_set: str = "SBS96"
) -> tuple[np.ndarray, list[str]]:
    """float32 [n_events, n_active] probabilities for uns['tokens']-style arrays, and the signature names.

    `exposures` rows must be in the tokens' sample order (offsets); `signatures` channels × signatures
    in `channel_set` order (the table the exposures were fitted with).
    """
    names = active_signatures(exposures)
    table = channel_probabilities(exposures[names], signatures[names])
    offsets = np.asarray(tokens["offsets"], dtype=np.int64)
    if len(offsets) != len(exposures) + 1:
        raise ValueError(f"tokens have {len(offsets) - 1} samples but exposures {len(exposures)}")
    channel = np.asarray(tokens["channel"], dtype=np.int64)
    sample = np.repeat(np.arange(len(exposures)), np.diff(offsets))
    start = _set_start(channel_set)
    local = channel - start
    inside = (local >= 0) & (local < len(CHANNEL_SETS[channel_set]))
    out = np.zeros((len(channel), len(names)), dtype=np.float32)
    out[inside] = table[sample[inside], local[inside]]
    return out, names


def _set_start(channel_set: str) -> int:
    """Index of the set's first channel within all_channels()."""
    for i, (name, _) in enumerate(all_channels()):
        if name == channel_set:
            return i
    raise UserError(f"unknown channel set {channel_set!r}; expected one of {list(CHANNEL_SETS)}")


def annotate_tokens(adata, signatures: pd.DataFrame, channel_set: str = "SBS96") -> list[str]:
    """Write uns['tokens']['sig_prob_<set>'] (float32) and ['sig_names_<set>'] from the set's exposures."""
    if "tokens" not in adata.uns:
        raise UserError("cohort has no uns['tokens'] (event tokens come from `nanog1 ingest` of VCF/MAF)")
    key = f"exposures_{channel_set}"
    if key not in adata.obsm:
        raise UserError(f"cohort has no obsm['{key}']: run `nanog1 signatures fit` first")
    index, _ = token_rows(adata)
    probs, names = token_probabilities(row_tokens(adata), adata.obsm[key], signatures, channel_set)
    full = np.zeros((len(adata.uns["tokens"]["channel"]), probs.shape[1]), dtype=np.float32)
    full[index] = probs  # tokens of rows not in this AnnData stay 0
    adata.uns["tokens"][f"sig_prob_{channel_set}"] = full
    adata.uns["tokens"][f"sig_names_{channel_set}"] = np.array(names, dtype=object)
    return names


def probability_table(adata, channel_set: str = "SBS96") -> pd.DataFrame:
    """One row per event of the set: sample, contig, position, channel, then one column per signature."""
    key = f"sig_prob_{channel_set}"
    if key not in adata.uns["tokens"]:
        raise UserError(f"cohort has no uns['tokens']['{key}']: fit it with `nanog1 signatures fit"
                        f" --per-mutation` first (a fit without it writes none)")
    tok = row_tokens(adata)
    sample = np.repeat(np.asarray(adata.obs_names, dtype=object), np.diff(tok["offsets"]))
    channel = np.asarray(tok["channel"], dtype=np.int64)
    labels = np.array([lab for _, lab in all_channels()], dtype=object)
    frame = pd.DataFrame({"sample": sample, "channel": labels[channel]})
    if "chrom" in tok and "chroms" in tok:
        frame["chrom"] = np.asarray(tok["chroms"], dtype=object)[np.asarray(tok["chrom"], dtype=np.int64)]
    if "pos" in tok:
        frame["pos"] = np.asarray(tok["pos"], dtype=np.int64)
    names = [str(n) for n in tok[f"sig_names_{channel_set}"]]
    probs = pd.DataFrame(np.asarray(tok[key]), columns=names)
    start = _set_start(channel_set)
    inside = (channel >= start) & (channel < start + len(CHANNEL_SETS[channel_set]))
    return pd.concat([frame, probs], axis=1)[inside].reset_index(drop=True)


def export_table(adata, channel_set: str, path: str | Path) -> int:
    """Write probability_table as a TSV (atomically, nanog1.io); rows written."""
    table = probability_table(adata, channel_set)
    with atomic_open(path) as handle:
        table.to_csv(handle, sep="\t", index=False, float_format="%.6g")
    return len(table)
