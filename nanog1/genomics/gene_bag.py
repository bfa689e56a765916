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

Numpy only (the GPU side of benchmarks/tcga_events.py has no pandas). Gene ids are a model's event
ids (nanog1.genomics.event_vocab: 0 pad, 1 UNK, 2 MASK, then the values).
"""

from __future__ import annotations

import numpy as np

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


def top_genes(rows: np.ndarray, genes: np.ndarray, train_rows: np.ndarray, k: int) -> np.ndarray:
    """The `k` gene ids carried by the most tumours of `train_rows` (ties: lower id first). Fewer than
    `k` when the training tumours carry fewer distinct genes. Only `train_rows` count."""
    if k < 1:
        raise ValueError(f"the gene bag needs k >= 1, got {k}")
    hit = np.isin(rows, np.asarray(train_rows))
    ids, counts = np.unique(genes[hit], return_counts=True)
    order = np.lexsort((ids, -counts))
    return ids[order][:k]


def gene_bag(rows: np.ndarray, genes: np.ndarray, chosen: np.ndarray, n_tumours: int) -> np.ndarray:
    """[n_tumours, len(chosen)] float32: 1 where the tumour carries the chosen gene (columns: `chosen`)."""
    genes, chosen = np.asarray(genes, dtype=np.int64), np.asarray(chosen, dtype=np.int64)
    out = np.zeros((n_tumours, len(chosen)), dtype=np.float32)
    if not len(genes) or not len(chosen):
        return out
    lookup = np.full(max(int(genes.max()), int(chosen.max())) + 1, -1, dtype=np.int64)
    lookup[chosen] = np.arange(len(chosen))
    j = lookup[genes]
    keep = j >= 0
    out[np.asarray(rows)[keep], j[keep]] = 1.0
    return out
