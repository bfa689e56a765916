"""Memory of a whole-cohort `nanog1 predict` (issue 31): steps that once held cohort x reference arrays
now work in chunks, with the same results."""

from __future__ import annotations

import tracemalloc

import numpy as np
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
