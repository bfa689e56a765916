"""The gene bag: which of a model's K chosen genes a tumour carries, over *all* of its mutations.

Why: the event encoder reads a window of a tumour's mutation tokens (a capped sample, then a random
window per batch), so most of an exome's genes never reach it, and its CLS summary (channel-set shares,
log burden, consequence shares) names no gene. Gradient boosting's strongest features are exactly the
0/1 presence of the most often mutated genes over the whole tumour (BENCHMARKS.md, TCGA typing). The
bag gives the CLS token that view too ("both views in one model").

Rule (stated, and saved with a model as its list of genes):

* the K genes are those mutated in the most *training* tumours (a tumour counts once per gene, however
  many of its mutations hit it), ties by vocabulary id (commonest over the vocabulary's cohort first);
  they are chosen inside each training split, never from the tumours the model is scored on, as the
  gradient-boosting baseline chooses its 300 genes inside each fold;
* a tumour's bag is 1 for every chosen gene hit by any of its mutations (every mutation, before any
  cap or window), else 0; genes outside the K and unknown genes (UNK) do not enter it.

The hotspot bag is the same job one level down: 0/1 over the mutated *sites* (contig + position, the
token's position: the MAF's Start_Position, an indel's anchor base) carried by at least `min_count`
training tumours of the split (IDH1 R132H, BRAF V600E, GNAQ Q209 are such sites). A site, not the
protein change, because every input has one (VCFs carry no HGVSp) and the ingest keeps no protein
column; two alleles at one position (GNAQ Q209L / Q209P) share a site. `site_keys` names every token's
site ("3:41266101"), `top_genes(..., min_count=N)` picks the recurrent ones, `gene_bag` fills the 0/1.

Where the input had a protein change (MAF `HGVSp_Short` / `Protein_Change`, kept by ingest as the token
field `codon`), the hotspot can be keyed by **codon** instead: gene + first reference residue and its
position, allele-agnostic ("KRAS:p.G12" for G12D / G12V / G12C, whose alleles sit at two genomic
sites; nanog1.genomics.protein states the parse). `hotspot_pairs(tokens, key)` gives the pairs of the
key `site`, `codon` or `both` (one vocabulary of both kinds: a name with ":p." is a codon). Tokens
without a codon (non-coding, unparsed) have no codon key; a chosen name is recomputed from any cohort's
tokens, so a saved model's hotspots need no table of ids.

Numpy only (the GPU side of benchmarks/tcga_events.py has no pandas). Gene ids are a model's event
ids (nanog1.genomics.event_vocab: 0 pad, 1 UNK, 2 MASK, then the values).
"""

from __future__ import annotations

import numpy as np

from nanog1.genomics.contigs import canonical_chrom_name

#: First id of a real gene (= nanog1.genomics.event_vocab.N_SPECIAL; tests check they agree).
FIRST_ID = 3


def gene_pairs(offsets: np.ndarray, gene_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unique (tumour row, gene id) pairs over every token of every tumour; pad/UNK/MASK ids dropped.

    offsets [n_tumours + 1] ragged offsets of the tokens; gene_ids [n_tokens] a model's gene ids."""
    offsets = np.asarray(offsets, dtype=np.int64)
    rows = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
    genes = np.asarray(gene_ids, dtype=np.int64)
    real = genes >= FIRST_ID
    if len(rows) != len(genes):
        raise ValueError(f"{len(genes)} gene ids for offsets covering {len(rows)} tokens")
    pairs = np.unique(np.stack([rows[real], genes[real]], axis=1), axis=0)
    return pairs[:, 0].copy(), pairs[:, 1].copy()


def top_genes(
    rows: np.ndarray, genes: np.ndarray, train_rows: np.ndarray, k: int, min_count: int = 1
) -> np.ndarray:
    """The `k` gene (or site) ids carried by the most tumours of `train_rows` (ties: lower id first),
    keeping only those carried by >= `min_count` of them. Fewer than `k` when the training tumours carry
    fewer such ids. Only `train_rows` count; (row, id) pairs must be unique (`gene_pairs`)."""
    if k < 1:
        raise ValueError(f"the gene bag needs k >= 1, got {k}")
    hit = np.isin(rows, np.asarray(train_rows))
    ids, counts = np.unique(genes[hit], return_counts=True)
    order = np.lexsort((ids, -counts))
    order = order[counts[order] >= min_count]
    return ids[order][:k]


def site_keys(tokens: dict) -> np.ndarray:
    """Every token's site as "contig:position" (object array), from an ingested cohort's
    `uns['tokens']` (`chroms`, `chrom`, `pos`): the hotspot bag's vocabulary, the same in every cohort
    (contig names canonical, nanog1.genomics.contigs: chromosome 23 and chrX are both X)."""
    chroms = np.asarray([canonical_chrom_name(str(c)) for c in tokens["chroms"]], dtype=object)
    contig = chroms[np.asarray(tokens["chrom"], dtype=np.int64)]
    return contig + ":" + np.asarray(tokens["pos"], dtype=np.int64).astype(str).astype(object)


def canonical_site(name: str) -> str:
    """A saved hotspot name spelled as `site_keys` spells it: "chr23:5" -> "X:5" (a codon key, "KRAS:p.G12",
    is left as it is)."""
    if is_codon(str(name)):
        return str(name)
    contig, _, pos = str(name).rpartition(":")
    return f"{canonical_chrom_name(contig)}:{pos}"


def site_pairs(offsets: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unique (tumour row, site id) pairs over every token, and the site table (sorted strings; site id
    = FIRST_ID + its index there, so the ids read like gene ids in `top_genes` / `gene_bag`). An empty
    key ('': a token with no codon) gives no pair."""
    offsets = np.asarray(offsets, dtype=np.int64)
    return _key_pairs(np.repeat(np.arange(len(offsets) - 1), np.diff(offsets)), np.asarray(keys, dtype=str))


def _key_pairs(rows: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if len(rows) != len(keys):
        raise ValueError(f"{len(keys)} keys for offsets covering {len(rows)} tokens")
    named = keys != ""
    table, inverse = np.unique(keys[named], return_inverse=True)
    pairs = np.unique(np.stack([rows[named], inverse.ravel() + FIRST_ID], axis=1).reshape(-1, 2), axis=0)
    return pairs[:, 0].copy(), pairs[:, 1].copy(), table


#: Hotspot keys: genomic site, protein codon, or both kinds in one bag.
HOTSPOT_KEYS = ("site", "codon", "both")


def is_codon(name: str) -> bool:
    """Whether a hotspot name is a codon key ("KRAS:p.G12") rather than a site ("12:25398284")."""
    return ":p." in name


def key_of(names) -> str:
    """The hotspot key whose pairs name every one of `names` (a saved model's hotspots)."""
    kinds = {is_codon(str(n)) for n in names}
    return "both" if len(kinds) > 1 else "codon" if kinds == {True} else "site"


def codon_keys(tokens: dict) -> np.ndarray:
    """Every token's codon key "GENE:p.<residue><position>" (object array; '' where the token has no
    gene or no codon, or the cohort no `codon` field: ingested without a protein-change column)."""
    n = len(tokens["pos"])
    if "codon" not in tokens or "gene" not in tokens:
        return np.full(n, "", dtype=object)

    def names(field: str) -> np.ndarray:
        table = np.append(np.asarray(tokens["vocab"][field], dtype=object), "")
        ids = np.asarray(tokens[field], dtype=np.int64)
        return table[np.where(ids >= 0, ids, len(table) - 1)]

    gene, codon = names("gene"), names("codon")
    return np.where((gene != "") & (codon != ""), gene + ":" + codon, "")


def hotspot_pairs(tokens: dict, key: str = "site") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unique (tumour row, id) pairs of the hotspot `key` (`site`, `codon` or `both`) over every token,
    and the name table (as `site_pairs`)."""
    if key not in HOTSPOT_KEYS:
        raise ValueError(f"unknown hotspot key {key!r}; expected one of {HOTSPOT_KEYS}")
    offsets = np.asarray(tokens["offsets"], dtype=np.int64)
    rows = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
    keys = [fn(tokens) for kind, fn in (("site", site_keys), ("codon", codon_keys)) if key in (kind, "both")]
    return _key_pairs(np.tile(rows, len(keys)), np.concatenate(keys).astype(str))


def named_hotspot_hits(tokens: dict, names: list[str],
                       key: str = "site") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(tumour row, id) of every token whose hotspot `key` is one of `names`, and the name table (the
    distinct names, sorted; id = FIRST_ID + index there, as `hotspot_pairs` numbers its table).

    What scoring a saved model's bag needs (`gene_bag` over these ids gives the bag `hotspot_pairs` would),
    without `hotspot_pairs`' table of every key of the cohort: that spelled every token's site as a string
    and sorted them all (a whole-MC3 predict: 1.8 M keys, 0.2 GB and 5 s). Here sites are matched as
    (contig, position) integers and codons per distinct (gene, codon) pair; the key strings are the same
    (`site_keys`, `codon_keys`), so are the matches. Pairs are not deduplicated (the bag is 0/1)."""
    if key not in HOTSPOT_KEYS:
        raise ValueError(f"unknown hotspot key {key!r}; expected one of {HOTSPOT_KEYS}")
    table = np.unique(np.asarray(list(names), dtype=str))
    lookup = {str(name): FIRST_ID + i for i, name in enumerate(table) if name != ""}
    offsets = np.asarray(tokens["offsets"], dtype=np.int64)
    rows = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
    found_rows, found_ids = [np.zeros(0, dtype=np.int64)], [np.zeros(0, dtype=np.int64)]
    for kind, fn in (("site", _site_ids), ("codon", _codon_ids)):
        if key in (kind, "both"):
            ids = fn(tokens, lookup)
            found_rows.append(rows[ids >= 0])
            found_ids.append(ids[ids >= 0])
    return np.concatenate(found_rows), np.concatenate(found_ids), table


def _site_ids(tokens: dict, lookup: dict[str, int]) -> np.ndarray:
    """Per token, the id `lookup` gives its site key (`site_keys`: canonical contig + ':' + position),
    -1 where none; matched as integers: a name's position must be written as `site_keys` writes one."""
    by_contig: dict[str, dict[int, int]] = {}
    for name, i in lookup.items():
        contig, sep, at = name.rpartition(":")
        if sep and _integer_text(at):
            by_contig.setdefault(contig, {})[int(at)] = i
    chrom = np.asarray(tokens["chrom"], dtype=np.int64)
    pos = np.asarray(tokens["pos"], dtype=np.int64)
    ids = np.full(len(pos), -1, dtype=np.int64)
    for c, raw in enumerate(tokens["chroms"]):
        sites = by_contig.get(canonical_chrom_name(str(raw)))
        if not sites:
            continue
        at = np.flatnonzero(chrom == c)
        known = np.array(sorted(sites), dtype=np.int64)
        k = np.minimum(np.searchsorted(known, pos[at]), len(known) - 1)
        hit = known[k] == pos[at]
        ids[at[hit]] = [sites[int(p)] for p in known[k[hit]]]
    return ids


def _integer_text(text: str) -> bool:
    """Whether `text` is an int64 as str(int) writes it ('12', '-3'; not '012', ' 12', '1_2'): the only
    positions a token's site key can hold."""
    try:
        return str(int(text)) == text and -(2**63) <= int(text) < 2**63
    except ValueError:
        return False


def _codon_ids(tokens: dict, lookup: dict[str, int]) -> np.ndarray:
    """Per token, the id `lookup` gives its codon key (`codon_keys`), -1 where none; the keys are spelled
    once per distinct (gene, codon) pair of the cohort, not once per token."""
    n = len(tokens["pos"])
    if "codon" not in tokens or "gene" not in tokens or not n:
        return np.full(n, -1, dtype=np.int64)
    gene, codon = (np.asarray(tokens[f], dtype=np.int64) for f in ("gene", "codon"))
    pairs = np.stack([gene, codon], axis=1)
    distinct, inverse = np.unique(pairs, axis=0, return_inverse=True)
    keys = codon_keys({"gene": distinct[:, 0], "codon": distinct[:, 1], "pos": distinct[:, 0],
                       "vocab": tokens["vocab"]})
    return np.array([lookup.get(k, -1) for k in keys], dtype=np.int64)[inverse.ravel()]


def gene_bag(rows: np.ndarray, genes: np.ndarray, chosen: np.ndarray, n_tumours: int) -> np.ndarray:
    """[n_tumours, len(chosen)] float32: 1 where the tumour carries the chosen gene (columns: `chosen`;
    a negative id, a value this cohort never names, is a column of zeros)."""
    genes, chosen = np.asarray(genes, dtype=np.int64), np.asarray(chosen, dtype=np.int64)
    out = np.zeros((n_tumours, len(chosen)), dtype=np.float32)
    if not len(genes) or not len(chosen):
        return out
    lookup = np.full(max(int(genes.max()), int(chosen.max())) + 1, -1, dtype=np.int64)
    named = chosen >= 0
    lookup[chosen[named]] = np.flatnonzero(named)
    j = lookup[genes]
    keep = j >= 0
    out[np.asarray(rows)[keep], j[keep]] = 1.0
    return out
