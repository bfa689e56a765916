"""Memory of a whole-cohort `nanog1 predict` (issue 31): steps that once held cohort x reference arrays
now work in chunks, and steps that spelled a string per token spell one per distinct value, with the
same results."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pandas as pd
import pytest

from nanog1.encoder.predictor import nearest_reference
from nanog1.errors import UserError
from nanog1.schema import CANCER_TYPE


def _reference(n: int, dim: int, seed: int) -> dict[str, np.ndarray]:
    """A reference.npz-like dict of `n` tumours (float16 embeddings, as packaged), with duplicated rows so
    that some cosines tie exactly."""
    rng = np.random.default_rng(seed)
    emb = rng.normal(size=(n, dim)).astype(np.float16)
    emb[1::7] = emb[0::7][: len(emb[1::7])]  # exact ties in every ranking
    return {"embedding": emb, "sample": np.array([f"R{i}" for i in range(n)]),
            CANCER_TYPE: np.array([f"T{i % 5}" for i in range(n)]), "project": np.full(n, "p")}


def _one_shot(embedding: np.ndarray, ref: dict[str, np.ndarray], k: int) -> list[str]:
    """The whole cohort ranked at once (what `nearest_reference` did before it worked in chunks)."""
    a = np.asarray(embedding, np.float64)
    b = np.asarray(ref["embedding"], np.float64)
    a = a / np.linalg.norm(a, axis=1, keepdims=True).clip(1e-12)
    b = b / np.linalg.norm(b, axis=1, keepdims=True).clip(1e-12)
    sim = a @ b.T
    top = np.argsort(-sim, axis=1)[:, :k]
    return ["; ".join(f"{ref['sample'][j]} ({ref[CANCER_TYPE][j]}, {ref['project'][j]}, {sim[i, j]:.3f})"
                      for j in row) for i, row in enumerate(top)]


@pytest.mark.parametrize("chunk", [1, 7, 64, 10_000])
def test_neighbours_in_chunks_are_those_of_the_whole_cohort(chunk):
    ref = _reference(300, 8, seed=0)
    emb = np.random.default_rng(1).normal(size=(64, 8)).astype(np.float32)
    emb[5] = ref["embedding"][0]  # a tumour whose nearest neighbours tie exactly
    assert nearest_reference(emb, ref, 4, chunk=chunk) == _one_shot(emb, ref, 4)


def _peak_bytes(fn) -> int:
    """Peak bytes traced (numpy reports its buffers to tracemalloc) while `fn` runs."""
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_the_chunk_bounds_the_memory_of_the_neighbour_ranking():
    n, m, chunk = 1000, 4000, 40
    ref = _reference(m, 16, seed=2)
    emb = np.random.default_rng(3).normal(size=(n, 16)).astype(np.float32)
    whole = _peak_bytes(lambda: nearest_reference(emb, ref, 3, chunk=n))
    chunked = _peak_bytes(lambda: nearest_reference(emb, ref, 3, chunk=chunk))
    assert whole > n * m * 8  # the check can see a cohort x reference array
    # cosines, their negation and the ranking of one chunk, plus the inputs and the lines written
    assert chunked < 3 * chunk * m * 8 + 2 * 2**20, (chunked, whole)


def test_a_chunk_below_one_is_a_user_error():
    ref = _reference(10, 4, seed=0)
    with pytest.raises(UserError, match="neighbour chunk 0"):
        nearest_reference(np.ones((2, 4), np.float32), ref, 2, chunk=0)


def _tokens(n_tumours: int, seed: int, read_counts: bool = True, genes: bool = True) -> dict:
    """An ingested cohort's `uns['tokens']` by hand: contigs spelled several ways (chr1 / 1, 23 / X, one
    with a ':'), positions that collide across tumours, unknown genes and codons, missing read counts."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(0, 30, n_tumours)
    n = int(lengths.sum())
    tokens = {"offsets": np.concatenate([[0], np.cumsum(lengths)]),
              "chroms": ["1", "chr1", "X", "23", "HLA-A*01:01", "7"],
              "chrom": rng.integers(0, 6, n),
              "pos": rng.integers(1, 40, n) * 1_000_000 + rng.integers(0, 3, n),
              "channel": rng.integers(0, 50, n),
              "vocab": {"bin_size": 1_000_000, "gene": ["KRAS", "IDH1", "TP53", ""],
                        "consequence": ["Missense_Mutation", "Silent"], "codon": ["p.G12", "p.R132", ""]}}
    if genes:
        tokens |= {"gene": rng.integers(-1, 4, n), "consequence": rng.integers(-1, 2, n),
                   "codon": rng.integers(-1, 3, n)}
    if read_counts:
        alt = rng.integers(0, 40, n).astype(float)
        alt[rng.random(n) < 0.2] = np.nan
        tokens |= {"t_alt_count": alt, "t_ref_count": rng.integers(0, 40, n).astype(float)}
    return tokens


@pytest.mark.parametrize(("read_counts", "genes"), [(True, True), (False, False)])
def test_event_ids_from_distinct_values_are_those_of_every_tokens_string(read_counts, genes):
    from nanog1.genomics import event_vocab as ev

    tokens = _tokens(40, seed=5, read_counts=read_counts, genes=genes)
    strings = ev.token_strings(tokens)
    chrom = [str(tokens["chroms"][c]) for c in tokens["chrom"]]  # every token spelled here, one by one
    assert strings["chrom"].tolist() == chrom
    bins = [f"{c}:{(p - 1) // 1_000_000}" for c, p in zip(chrom, tokens["pos"], strict=True)]
    assert strings["bin"].tolist() == bins
    if genes:
        table = tokens["vocab"]["gene"]
        assert strings["gene"].tolist() == [table[g] if g >= 0 else "" for g in tokens["gene"]]
    assert all(v == "" or (v.startswith("v") and int(v[1:]) < ev.N_VAF_BINS) for v in strings["vaf"])
    assert (strings["vaf"] != "").any() == read_counts
    assert len(ev.distinct_strings(tokens)["bin"][0]) < len(tokens["pos"])  # spelled once per value
    vocab = ev.build_vocab([_tokens(30, seed=6)])
    vocab.values["bin"] = [v.replace("X:", "chrX:") for v in vocab.values["bin"]]  # found by canonical name
    expected = {}
    for name in ev.FIELDS:  # every token's string looked up, as encode did before
        idx = pd.Index(vocab.values[name]).get_indexer(strings[name])
        if name in ("chrom", "bin"):
            idx = ev._by_canonical_contig(strings[name], vocab.values[name], idx)
        expected[name] = np.where(idx >= 0, idx + ev.N_SPECIAL, ev.UNK).astype(np.int32)
    got = ev.encode(tokens, vocab)
    assert set(got) == set(expected)
    for name in ev.FIELDS:
        assert got[name].dtype == np.int32 and np.array_equal(got[name], expected[name]), name
    assert (got["bin"] > ev.UNK).any() and (got["vaf"] > ev.UNK).any() == read_counts  # real ids compared
    assert (got["gene"] > ev.UNK).any() == genes


@pytest.mark.parametrize("key", ["site", "codon", "both"])
def test_named_hotspot_hits_give_the_bag_of_the_whole_cohort_table(key):
    from nanog1.genomics.gene_bag import (
        FIRST_ID,
        codon_keys,
        gene_bag,
        hotspot_pairs,
        named_hotspot_hits,
        site_keys,
    )

    tokens = _tokens(60, seed=7)
    keys = {"site": site_keys(tokens), "codon": codon_keys(tokens)}
    pool = [str(k) for kind, k in keys.items() if key in (kind, "both") for k in np.unique(k[k != ""])]
    rng = np.random.default_rng(8)
    names = [str(s) for s in rng.choice(pool, size=min(25, len(pool)), replace=False)]
    names += [names[0], "X:01000000", "1:+1000000", "", "Y:5", "NRAS:p.Q61", "HLA-A*01:01:3000000"]
    names += ["X:" + "9" * 30]  # beyond int64: no token's position
    names += [s for s in pool if s.startswith("HLA")][:2]  # a contig name holding ':'
    n = len(tokens["offsets"]) - 1
    rows, ids, table = hotspot_pairs(tokens, key)  # every key of the cohort, as before
    where = pd.Index(table).get_indexer(names)
    expected = gene_bag(rows, ids, np.where(where >= 0, where + FIRST_ID, -1), n)
    rows, ids, table = named_hotspot_hits(tokens, names, key)
    got = gene_bag(rows, ids, pd.Index(table).get_indexer(names) + FIRST_ID, n)
    assert expected.sum() > 10 and np.array_equal(got, expected)
