"""Mutation-event token sequences (the models' "sentences") stored ragged in a cohort's `uns['tokens']`.

One token per classified mutation, ordered by genome position within a sample: its channel (index
into `all_channels()`: SBS96 with a reference or a context column, else SBS6; DBS78; ID83 with a
reference, else ID12), the pyrimidine-strand reference 5-mer around an SBS (0..1023, -1 otherwise),
its contig (index into `uns['tokens']['chroms']`), 1-based position and genome-wide bin, its gene and
consequence (indices into the string tables `vocab['gene']` / `vocab['consequence']`, -1 = unknown;
ids are positions in those tables, never hashes), where the input has a protein change (MAF
`HGVSp_Short` / `Protein_Change`) its codon (`codon`, into `vocab['codon']`: `p.G12`, allele-agnostic,
nanog1.genomics.protein; -1 = none) and, where the input has them, read counts
(`t_ref_count`, `t_alt_count`, `t_depth`, `t_vaf`; NaN where unknown). Without a reference the contig
lengths (for bins) are the largest position seen per contig (`vocab['lengths_from'] == 'observed'`);
contigs the reference lacks follow its own, with observed lengths.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pandas.api.types import union_categoricals

from nanog1.genomics.channels import all_channels
from nanog1.genomics.protein import codon_categorical

DEFAULT_BIN_SIZE = 1_000_000
TOKEN_FIELDS = {
    "channel": np.int32,
    "motif": np.int32,
    "chrom": np.int16,
    "pos": np.int64,
    "bin": np.int32,
    "gene": np.int32,
    "consequence": np.int16,
    "codon": np.int32,
}
#: String-valued annotations turned into ids against a vocabulary table (`codon`: the codon key of the
#: input's protein change, nanog1.genomics.protein, kept only when some input had a protein column).
VOCAB_FIELDS = ("gene", "consequence", "codon")
#: Numeric per-mutation fields (float32, NaN = unknown), kept when any input had them.
READ_FIELDS = ("t_ref_count", "t_alt_count", "t_depth", "t_vaf")


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
    """One sample's tokens as a DataFrame (channel label and set, 5-mer, contig, position, bin, and gene,
    consequence and read counts where the cohort has them; '' = unknown)."""
    from nanog1.schema import token_spans

    tok = adata.uns["tokens"]
    row = sample if isinstance(sample, int) else adata.obs_names.get_loc(sample)
    starts, counts = token_spans(adata)
    lo, hi = int(starts[row]), int(starts[row] + counts[row])
    channel = np.asarray(tok["channel"][lo:hi], dtype=np.int64)
    vocab = tok["vocab"]
    motif = np.asarray(tok["motif"][lo:hi], dtype=np.int64)
    table = pd.DataFrame(
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
    for key in VOCAB_FIELDS:
        if key in tok:
            ids = np.asarray(tok[key][lo:hi], dtype=np.int64)
            names = np.append(np.asarray(vocab[key], dtype=object), "")
            table[key] = names[np.where(ids >= 0, ids, len(names) - 1)]
    for key in READ_FIELDS:
        if key in tok:
            table[key] = np.asarray(tok[key][lo:hi], dtype=np.float32)
    return table


def _as_categorical(values, n: int) -> pd.Categorical:
    """A per-event string column as a Categorical ('' where the input had none): a few bytes an event
    where an object array costs a pointer each (9 M MAF events)."""
    if values is None:
        return pd.Categorical.from_codes(np.zeros(n, dtype=np.int8), [""])
    if isinstance(values, pd.Categorical):
        return values
    return pd.Categorical(np.asarray(values, dtype=object))


def _vocab_ids(values: list[pd.Categorical]) -> tuple[np.ndarray, np.ndarray]:
    """Ids into a sorted string table of the distinct non-empty values (-1 for '' / unknown)."""
    cat = union_categoricals(values, sort_categories=True) if values else pd.Categorical([])
    table = np.asarray(cat.categories, dtype=object)
    keep = table != ""
    remap = np.where(keep, np.cumsum(keep) - 1, -1)
    codes = cat.codes.astype(np.int64)
    return np.where(codes >= 0, remap[np.maximum(codes, 0)], -1), table[keep]


def merge_events(
    events: list,
    order: dict[str, int],
    chroms: list[str] | None,
    lengths: list[int] | None,
    bin_size: int = DEFAULT_BIN_SIZE,
    genes=None,
) -> dict:
    """Every input's events re-indexed to cohort rows, sorted by (sample, contig, position), as tokens.

    `chroms`/`lengths` come from the reference; None (no reference) takes the contigs the events name
    in canonical order and the largest position seen on each as its length. `genes` (a
    `genes.GeneIndex`) names the gene of events whose input gave none (VCFs).
    """
    from nanog1.genomics.alleles import contig_order

    events = [ev for ev in events if ev is not None]
    observed = chroms is None
    named = contig_order([c for ev in events for c in (ev.contigs or [])])
    n_reference = 0 if observed else len(chroms)
    if observed:
        chroms = named
    else:
        # Contigs the reference lacks (their calls were classified without context) come after its own.
        chroms = list(chroms) + [c for c in named if c not in set(chroms)]
    index = {c: i for i, c in enumerate(chroms)}
    cols: dict[str, list[np.ndarray]] = {k: [] for k in ("sample", "channel", "motif", "chrom", "pos")}
    notes: dict[str, list[np.ndarray]] = {k: [] for k in (*VOCAB_FIELDS, *READ_FIELDS)}
    has_protein = False
    for ev in events:
        remap = np.array([order[s] for s in ev.samples], dtype=np.int64)
        n = len(ev.sample)
        contig = np.asarray(ev.contig, dtype=np.int64)
        if ev.contigs is not None:
            contig = np.array([index[c] for c in ev.contigs], dtype=np.int64)[contig] if n else contig
        for key, arr in (("sample", remap[ev.sample] if n else ev.sample), ("channel", ev.channel),
                         ("motif", ev.motif), ("chrom", contig), ("pos", ev.pos)):
            cols[key].append(np.asarray(arr, dtype=TOKEN_FIELDS.get(key, np.int64)))
        for key in VOCAB_FIELDS:
            if key == "codon":
                protein = ev.annotations.get("protein")
                notes[key].append(_as_categorical(None if protein is None else codon_categorical(protein), n))
                has_protein = has_protein or protein is not None
            else:
                notes[key].append(_as_categorical(ev.annotations.get(key), n))
        if genes is not None and n:
            named = np.asarray(notes["gene"][-1], dtype=object)
            unnamed = named == ""
            named[unnamed] = genes.lookup(np.asarray(chroms, dtype=object)[contig[unnamed]], ev.pos[unnamed])
            notes["gene"][-1] = pd.Categorical(named)
        for key in READ_FIELDS:
            notes[key].append(np.asarray(ev.annotations.get(key, np.full(n, np.nan)), dtype=np.float32))
    # Column by column, each part released once copied and each column replaced by its sorted copy:
    # at 10 M MAF records the peak is one column over the token arrays, not two copies of them all.
    arrays = {}
    for key in list(cols):
        parts = cols.pop(key)
        arrays[key] = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
        parts.clear()
    idx = np.lexsort((arrays["pos"], arrays["chrom"], arrays["sample"]))
    for key in list(arrays):
        arrays[key] = arrays[key][idx]
    if observed or len(chroms) > n_reference:
        top = np.zeros(len(chroms), dtype=np.int64)
        np.maximum.at(top, arrays["chrom"], arrays["pos"])
        lengths = list(lengths or [])[:n_reference] + [max(int(t), 1) for t in top[n_reference:]]
    out = build_tokens(arrays.pop("sample"), arrays, len(order), chroms, lengths, bin_size)
    out["vocab"]["lengths_from"] = "observed" if observed else "reference"
    if not observed and len(chroms) > n_reference:
        out["vocab"]["lengths_from"] = "reference, observed for contigs it lacks"
    for key in VOCAB_FIELDS:
        ids, table = _vocab_ids(notes.pop(key))
        if key == "codon" and not has_protein:
            continue
        out[key] = ids[idx].astype(TOKEN_FIELDS[key])
        out["vocab"][key] = table
    for key in READ_FIELDS:
        parts = notes.pop(key)
        values = np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)
        if not np.isnan(values).all():
            out[key] = values[idx]
    return out
