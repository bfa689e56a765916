"""A model's event vocabularies over an ingested cohort's per-mutation tokens (`uns['tokens']`).

Ingest (nanog1.genomics.ingest; see nanog1.genomics.tokens) stores one token per mutation with ids into
the cohort's own tables. Those ids differ between cohorts, so a model keeps its own vocabulary of
*strings* per field, built from the cohort it was trained on and saved beside its weights:

* ``channel``: ``SET:label`` of the mutation's channel (SBS96 with a reference or a context column,
  else SBS6; DBS78; ID83 with a reference, else ID12);
* ``gene``, ``consequence``: the MAF's ``Hugo_Symbol`` / ``Variant_Classification`` (or the VCF's
  annotation);
* ``chrom`` and ``bin``: contig name, and contig + 1-based position // bin size (``"3:100"``), so a
  bin means the same stretch of genome in every cohort (the cohort's genome-wide bin id would not);
* ``vaf``: the variant allele fraction in ten equal bins (``t_vaf``, else alt / depth, else
  alt / (alt + ref)); UNK where the input had no read counts.

Model ids: 0 = padding, 1 = unknown (a value the vocabulary has not seen: a rare gene, a new bin),
2 = the mask of masked-mutation pretraining, then the vocabulary's values, commonest first (by the
number of tumours carrying the value; ties by name), so the K commonest genes are ids 3..K+2.
`encode` maps unseen values to UNK; `check_ids` refuses an id out of range: an error, never a modulo
(two values must not share an embedding row).

Hypermutated tumours: `cap_per_tumour` keeps a deterministic random sample of at most ``max_events``
mutations of a tumour (seeded by CRC32 of its name, so a tumour always keeps the same ones), in genomic
order; `summary_features` describes every tumour by all of its mutations (the CLS token's input).
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from nanog1.genomics.channels import CHANNEL_SETS, set_slice
from nanog1.genomics.contigs import canonical_chrom_name
from nanog1.io import atomic_write_text
from nanog1.schema import channel_sets_present, row_tokens

PAD, UNK, MASK = 0, 1, 2
N_SPECIAL = 3
FIELDS = ("channel", "gene", "consequence", "chrom", "bin", "vaf")
N_VAF_BINS = 10


def _channel_names() -> np.ndarray:
    names = [f"{name}:{label}" for name, labels in CHANNEL_SETS.items() for label in labels]
    return np.array(names, dtype=object)


def vaf(tokens: dict) -> np.ndarray:
    """Variant allele fraction per token from the read-count fields the cohort has (NaN where none)."""
    n = len(tokens["channel"])
    get = lambda k: np.asarray(tokens[k], dtype=np.float64) if k in tokens else np.full(n, np.nan)  # noqa: E731
    alt, depth, ref = get("t_alt_count"), get("t_depth"), get("t_ref_count")
    depth = np.where(np.isnan(depth), alt + ref, depth)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(np.isnan(get("t_vaf")), alt / np.where(depth > 0, depth, np.nan), get("t_vaf"))
    return np.where((out >= 0) & (out <= 1), out, np.nan)


def token_strings(tokens: dict) -> dict[str, np.ndarray]:
    """Every token's field values as strings ('' = unknown), in the cohort's token order: the values
    `distinct_strings` spells once each, per token."""
    return {name: values[inverse] for name, (values, inverse) in distinct_strings(tokens).items()}


def tumour_index(tokens: dict) -> np.ndarray:
    """Row (tumour) of every token, from the ragged offsets."""
    offsets = np.asarray(tokens["offsets"], dtype=np.int64)
    return np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))


@dataclass
class EventVocab:
    """Value lists per field; model id = N_SPECIAL + position. Saved as JSON beside a model's weights."""

    values: dict[str, list[str]] = field(default_factory=dict)

    def size(self, name: str) -> int:
        """Embedding-table size of one field (the specials included)."""
        return N_SPECIAL + len(self.values[name])

    def sizes(self) -> dict[str, int]:
        """Table size of every field."""
        return {k: self.size(k) for k in self.values}

    def save(self, path: Path) -> None:
        """Write as JSON (atomically, nanog1.io)."""
        atomic_write_text(path, json.dumps({"values": self.values}))

    @classmethod
    def load(cls, path: Path) -> EventVocab:
        """Read a vocabulary written by `save`."""
        return cls(values=json.loads(Path(path).read_text())["values"])


def build_vocab(cohorts: list[dict], min_tumours: dict[str, int] | None = None) -> EventVocab:
    """Vocabulary of every field over the tokens of one or more cohorts. A value is kept when it occurs
    in at least `min_tumours[field]` tumours (default 1; {'gene': 3} sends genes of 1-2 tumours to UNK).
    Values are ordered by that tumour count, highest first, then by name."""
    min_tumours = min_tumours or {}
    seen: dict[str, pd.Series] = {}
    for tokens in cohorts:
        strings, rows = token_strings(tokens), tumour_index(tokens)
        for name in FIELDS:
            pairs = pd.DataFrame({"row": rows, "v": strings[name]})
            n = pairs[pairs["v"] != ""].drop_duplicates()["v"].value_counts()
            seen[name] = n if name not in seen else seen[name].add(n, fill_value=0)
    return EventVocab({k: _commonest_first(n[n >= min_tumours.get(k, 1)]) for k, n in seen.items()})


def _commonest_first(counts: pd.Series) -> list[str]:
    """Values by count, highest first, ties by name."""
    frame = pd.DataFrame({"v": counts.index.astype(str), "n": counts.to_numpy()})
    return frame.sort_values(["n", "v"], ascending=[False, True])["v"].tolist()


def encode(tokens: dict, vocab: EventVocab) -> dict[str, np.ndarray]:
    """Model ids [n_tokens] per field ('' or a value the vocabulary lacks -> UNK). A contig or bin the
    vocabulary spells otherwise (`chr1` / `1`, `23` / `X`: a UCSC-style VCF typed by a model trained on
    MAFs) is found by its canonical contig name (:func:`nanog1.genomics.contigs.canonical_chrom_name`).

    Each distinct value is looked up once (`distinct_strings`: the strings `token_strings` gives, spelled
    per distinct value, not per token: a whole-MC3 predict spelled 5 M strings, 0.26 GB and 9 s)."""
    out = {}
    for name, (values, inverse) in distinct_strings(tokens).items():
        idx = pd.Index(vocab.values[name]).get_indexer(values)
        if name in ("chrom", "bin"):
            idx = _by_canonical_contig(values, vocab.values[name], idx)
        out[name] = np.where(idx >= 0, idx + N_SPECIAL, UNK).astype(np.int32)[inverse]
    return out


def distinct_strings(tokens: dict) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per field, (values, inverse): `values[inverse]` is every token's value as a string ('' = unknown;
    `token_strings`), with each value spelled once (object array) and `inverse` the token's index into
    `values`: the one place token fields are spelled."""
    voc = tokens["vocab"]
    chroms = np.asarray(tokens["chroms"], dtype=object)
    chrom = np.asarray(tokens["chrom"], dtype=np.int64)
    pos = np.asarray(tokens["pos"], dtype=np.int64)
    bins = np.stack([chrom, (pos - 1) // int(voc["bin_size"])], axis=1)
    pairs, in_pairs = np.unique(bins, axis=0, return_inverse=True)
    out = {
        "channel": (_channel_names(), np.asarray(tokens["channel"], dtype=np.int64)),
        "chrom": (chroms, chrom),
        "bin": (chroms[pairs[:, 0]] + ":" + pairs[:, 1].astype(str).astype(object), in_pairs.ravel()),
    }
    for key in ("gene", "consequence"):
        if key in tokens:
            table = np.append(np.asarray(voc[key], dtype=object), "")
            ids = np.asarray(tokens[key], dtype=np.int64)
            out[key] = (table, np.where(ids >= 0, ids, len(table) - 1))
        else:
            out[key] = (np.array([""], dtype=object), np.zeros(len(pos), dtype=np.int64))
    v = vaf(tokens)
    vaf_bins = np.minimum(np.nan_to_num(v * N_VAF_BINS, nan=-1).astype(int), N_VAF_BINS - 1)
    out["vaf"] = (np.array([""] + [f"v{b}" for b in range(N_VAF_BINS)], dtype=object), vaf_bins + 1)
    return out


def _canonical_locus(value: str) -> str:
    """`chr3:100` -> `3:100`, `23` -> `X`: the contig part spelled canonically, the rest kept."""
    contig, sep, rest = value.partition(":")
    return canonical_chrom_name(contig) + sep + rest if value else ""


def _by_canonical_contig(values: np.ndarray, table: list[str], idx: np.ndarray) -> np.ndarray:
    """``idx`` with the values not found as spelled looked up again by canonical contig name (the
    vocabulary's commonest spelling of that contig wins)."""
    missing = (idx < 0) & (values != "")
    if not missing.any():
        return idx
    canonical: dict[str, int] = {}
    for i, value in enumerate(table):
        canonical.setdefault(_canonical_locus(value), i)
    uniq, inverse = np.unique(values[missing].astype(str), return_inverse=True)
    found = np.array([canonical.get(_canonical_locus(u), -1) for u in uniq], dtype=idx.dtype)
    idx = idx.copy()
    idx[missing] = found[inverse]
    return idx


def check_ids(ids: dict[str, np.ndarray], sizes: dict[str, int]) -> None:
    """Refuse ids outside their field's table: an error, never wrapped around."""
    for name, x in ids.items():
        if name not in sizes:
            raise ValueError(f"event field {name!r} has no vocabulary (known: {sorted(sizes)})")
        bad = (x < 0) | (x >= sizes[name])
        if bad.any():
            raise ValueError(
                f"event field {name!r}: id {int(x[bad][0])} outside its vocabulary of {sizes[name]}; "
                "encode the tokens with this model's vocabulary"
            )


def cap_per_tumour(offsets: np.ndarray, names: np.ndarray, max_events: int, seed: int = 0) -> np.ndarray:
    """Token mask keeping at most `max_events` tokens per tumour: a deterministic random sample seeded
    by CRC32 of the tumour's name (and `seed`), genomic order kept."""
    offsets = np.asarray(offsets, dtype=np.int64)
    keep = np.ones(offsets[-1], dtype=bool)
    for row in np.flatnonzero(np.diff(offsets) > max_events):
        s, e = offsets[row], offsets[row + 1]
        rng = np.random.default_rng(zlib.crc32(str(names[row]).encode()) ^ seed)
        keep[s:e] = False
        keep[s + rng.choice(e - s, max_events, replace=False)] = True
    return keep


def summary_features(adata, consequences: list[str]) -> pd.DataFrame:
    """Per-tumour summary over all of its mutations: each measured channel set's shares and log1p burden
    (from X), and consequence shares (from the tokens) — the input of the event model's CLS token."""
    x = np.asarray(adata.X.todense() if hasattr(adata.X, "todense") else adata.X, dtype=np.float64)
    parts = []
    for name in channel_sets_present(adata):
        block = x[:, set_slice(name)]
        total = block.sum(1, keepdims=True)
        labels = [f"{name}:{c}" for c in CHANNEL_SETS[name]]
        parts.append(pd.DataFrame(block / np.maximum(total, 1), index=adata.obs_names, columns=labels))
        parts.append(pd.DataFrame({f"{name}:log_burden": np.log1p(total[:, 0])}, index=adata.obs_names))
    tokens = row_tokens(adata)
    csq = pd.crosstab(tumour_index(tokens), token_strings(tokens)["consequence"])
    csq = csq.reindex(index=range(adata.n_obs), fill_value=0)
    shares = csq.div(csq.sum(1).clip(lower=1), axis=0)
    shares = shares.reindex(columns=consequences, fill_value=0.0).to_numpy()
    parts.append(pd.DataFrame(shares, index=adata.obs_names, columns=[f"csq:{c}" for c in consequences]))
    return pd.concat(parts, axis=1)


