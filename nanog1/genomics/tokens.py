"""Mutation-event token sequences (the models' "sentences") stored ragged in a cohort's `uns['tokens']`.

One token per classified mutation, ordered by genome position within a sample: its channel (index
into `all_channels()`), the pyrimidine-strand reference 5-mer around an SBS (0..1023, -1 otherwise),
its contig (index into `uns['tokens']['chroms']`), 1-based position and genome-wide bin.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from nanog1.genomics.channels import all_channels

DEFAULT_BIN_SIZE = 1_000_000
TOKEN_FIELDS = {"channel": np.int32, "motif": np.int32, "chrom": np.int16, "pos": np.int64, "bin": np.int32}


def bin_offsets(lengths: list[int], bin_size: int = DEFAULT_BIN_SIZE) -> np.ndarray:
    """First genome-wide bin id of each contig (contigs in reference order)."""
    per_contig = [-(-int(n) // bin_size) for n in lengths]
    return np.concatenate(([0], np.cumsum(per_contig)[:-1])).astype(np.int64)


def motif_string(motif: int) -> str:
    """The 5-mer of a motif id ('' for -1)."""
    if motif < 0:
        return ""
    return "".join("ACGT"[(motif >> (2 * (4 - k))) & 3] for k in range(5))


def vocabulary(chroms: list[str], lengths: list[int], bin_size: int = DEFAULT_BIN_SIZE) -> dict:
    """The token vocabulary: channel labels and sets, motif count, contigs and bins."""
    pairs = all_channels()
    return {
        "channel": np.array([label for _, label in pairs], dtype=object),
        "channel_set": np.array([name for name, _ in pairs], dtype=object),
        "n_motifs": 1024,
        "bin_size": int(bin_size),
        "n_bins": int(sum(-(-int(n) // bin_size) for n in lengths)),
        "contig_length": np.asarray(lengths, dtype=np.int64),
    }


def build_tokens(
    sample_index: np.ndarray,
    fields: dict[str, np.ndarray],
    n_samples: int,
    chroms: list[str],
    lengths: list[int],
    bin_size: int = DEFAULT_BIN_SIZE,
) -> dict:
    """Ragged token arrays for `uns['tokens']` from events sorted by (sample, contig, pos)."""
    counts = np.bincount(sample_index, minlength=n_samples)
    out = {"offsets": np.concatenate(([0], np.cumsum(counts))).astype(np.int64)}
    chrom = np.asarray(fields["chrom"], dtype=np.int64)
    pos = np.asarray(fields["pos"], dtype=np.int64)
    out["bin"] = bin_offsets(lengths, bin_size)[chrom] + (pos - 1) // bin_size if len(chrom) else chrom
    out.update({k: fields[k] for k in ("channel", "motif", "chrom", "pos")})
    out = {k: np.asarray(v, dtype=TOKEN_FIELDS.get(k, np.int64)) for k, v in out.items()}
    out["chroms"] = np.array(chroms, dtype=object)
    out["vocab"] = vocabulary(chroms, lengths, bin_size)
    return out


def token_table(adata, sample: str | int) -> pd.DataFrame:
    """One sample's tokens as a DataFrame (channel label and set, 5-mer, contig, position, bin)."""
    tok = adata.uns["tokens"]
    row = sample if isinstance(sample, int) else adata.obs_names.get_loc(sample)
    lo, hi = int(tok["offsets"][row]), int(tok["offsets"][row + 1])
    channel = np.asarray(tok["channel"][lo:hi], dtype=np.int64)
    vocab = tok["vocab"]
    motif = np.asarray(tok["motif"][lo:hi], dtype=np.int64)
    return pd.DataFrame(
        {
            "channel_id": channel,
            "channel": np.asarray(vocab["channel"], dtype=object)[channel],
            "channel_set": np.asarray(vocab["channel_set"], dtype=object)[channel],
            "motif_id": motif,
            "motif": np.array([motif_string(int(m)) for m in motif], dtype=object),
            "chrom": np.asarray(tok["chroms"], dtype=object)[np.asarray(tok["chrom"][lo:hi], dtype=np.int64)],
            "pos": np.asarray(tok["pos"][lo:hi], dtype=np.int64),
            "bin": np.asarray(tok["bin"][lo:hi], dtype=np.int64),
        }
    )
