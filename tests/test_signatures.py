"""Reference tables, batched torch NNLS against scipy, sparse selection against a per-sample reference."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.optimize
import torch

from nanog1.fitting import FitConfig, SelectionConfig, fit_signatures, nnls, select_signatures
from nanog1.fitting.nnls import nnls_gram
from nanog1.genomics.channels import CHANNEL_SETS, SIGNATURE_SETS
from nanog1.genomics.signatures import ReferenceSpec, list_references, load_reference, read_signatures


@pytest.mark.parametrize("channel_set", list(SIGNATURE_SETS))
def test_reference_tables_load_in_project_order(channel_set):
    ref = load_reference(ReferenceSpec(channel_set))
    assert list(ref.index) == list(CHANNEL_SETS[channel_set])
    np.testing.assert_allclose(ref.sum(0), 1.0, atol=1e-9)
    assert ref.shape[1] > 10 and (ref >= 0).all().all()


def test_read_signatures_reorders_rows_and_rejects_wrong_tables(tmp_path):
    ref = load_reference()
    shuffled = ref.sample(frac=1.0, random_state=0) * 7.0
    path = tmp_path / "mine.txt"
    shuffled.to_csv(path, sep="\t")
    pd.testing.assert_frame_equal(read_signatures(path), ref, check_names=False)
    ref.iloc[:50].to_csv(path, sep="\t")
    with pytest.raises(ValueError, match="mine.txt"):
        read_signatures(path)
    assert any("v3.4_SBS_GRCh38" in n for n in list_references())


def _scipy_residuals(W, V):
    return np.array([scipy.optimize.nnls(W, v, maxiter=50 * W.shape[1])[1] for v in V])


@pytest.mark.parametrize("shape", [(30, 8, 60), (96, 40, 40), (20, 25, 30)])
def test_nnls_matches_scipy_on_random_problems(shape):
    rng = np.random.default_rng(sum(shape))
    c, k, n = shape
    W = rng.random((c, k)) ** 3
    V = rng.poisson(rng.random((n, c)) * 50).astype(float)
    X = nnls(torch.tensor(W), torch.tensor(V)).numpy()
    assert (X >= 0).all()
    ours = np.linalg.norm(V - X @ W.T, axis=1) ** 2
    ref = _scipy_residuals(W, V) ** 2
    np.testing.assert_allclose(ours, ref, rtol=1e-6, atol=1e-9)


def test_nnls_allowed_mask_zero_rows_and_warm_start():
    rng = np.random.default_rng(1)
    W = rng.random((40, 10))
    V = rng.random((12, 40)) * 20
    V[3] = 0.0
    allowed = torch.tensor(rng.random((12, 10)) < 0.5)
    allowed[5] = False  # empty set: must not crash (scipy aborts on zero columns)
    G, b = torch.tensor(W.T @ W), torch.tensor(V @ W)
    X = nnls_gram(G, b, allowed=allowed).numpy()
    assert (X[~allowed.numpy()] == 0).all() and (X[3] == 0).all() and (X[5] == 0).all()
    for i in range(12):
        cols = np.flatnonzero(allowed[i].numpy())
        if len(cols) == 0:
            continue
        ref = scipy.optimize.nnls(W[:, cols], V[i])[1] ** 2
        assert np.linalg.norm(V[i] - W @ X[i]) ** 2 == pytest.approx(ref, rel=1e-6, abs=1e-9)
    warm = nnls_gram(G, b, allowed=allowed, x0=torch.tensor(X) + 0.3 * allowed.double()).numpy()
    np.testing.assert_allclose(warm, X, atol=1e-8)


def test_nnls_matches_scipy_on_pcawg(pcawg_dir):
    from nanog1.genomics.signatures_pcawg import read_pcawg_catalogue

    cat = read_pcawg_catalogue(pcawg_dir).iloc[::40]
    W = load_reference().to_numpy()
    X = nnls(torch.tensor(W), torch.tensor(cat.to_numpy())).numpy()
    ours = np.linalg.norm(cat.to_numpy() - X @ W.T, axis=1) ** 2
    ref = _scipy_residuals(W, cat.to_numpy()) ** 2
    np.testing.assert_allclose(ours, ref, rtol=1e-6)


def _reference_selection(W, v, cfg: SelectionConfig) -> set[int]:
    """Per-sample forward/backward stepwise selection with scipy nnls (the definition, unbatched)."""

    def err(cols):
        if not cols:
            return 1.0
        return scipy.optimize.nnls(W[:, sorted(cols)], v)[1] / np.linalg.norm(v)

    support = set(cfg.permanent)
    cur = err(support)
    for _ in range(W.shape[1]):
        grad = (
            W.T @ (v - W[:, sorted(support)] @ scipy.optimize.nnls(W[:, sorted(support)], v)[0])
            if support
            else W.T @ v
        )
        cands = [j for j in range(W.shape[1]) if j not in support and grad[j] > 0]
        if not cands:
            break
        errs = {j: err(support | {j}) for j in cands}
        j = min(errs, key=errs.get)
        if not (cur - errs[j] > cfg.add_penalty or not support):
            break
        support.add(j)
        cur = errs[j]
        while True:
            drops = {r: err(support - {r}) for r in support if r not in cfg.permanent and len(support) > 1}
            if not drops:
                break
            r = min(drops, key=drops.get)
            if drops[r] - cur >= cfg.remove_penalty:
                break
            support.discard(r)
            cur = drops[r]
    return support


def test_sparse_selection_matches_per_sample_reference():
    rng = np.random.default_rng(7)
    W = rng.dirichlet(np.ones(30) * 0.5, size=12).T
    H = rng.gamma(1.0, 200, size=(40, 12)) * (rng.random((40, 12)) < 0.3)
    V = rng.poisson(H @ W.T).astype(float)
    cfg = SelectionConfig(add_penalty=0.02, remove_penalty=0.01, permanent=(0,))
    X = select_signatures(torch.tensor(W), torch.tensor(V), cfg).numpy()
    agree = [
        set(np.flatnonzero(X[i] > 0)) | {0} == _reference_selection(W, V[i], cfg) | {0} for i in range(len(V))
    ]
    assert np.mean(agree) >= 0.95


def test_fit_recovers_simulated_exposures():
    from nanog1.genomics.simulate import simulate_cohort

    sim = simulate_cohort(60, seed=2, burden_scale=1.0)
    ref = load_reference()
    res = fit_signatures(sim.channel_set("SBS96"), ref, FitConfig(method="sparse"))
    truth = sim.exposures["SBS96"].astype(float)
    cos = np.einsum("ij,ij->i", truth.to_numpy(), res.exposures.to_numpy()) / (
        np.linalg.norm(truth, axis=1) * np.linalg.norm(res.exposures, axis=1)
    )
    assert np.median(cos) > 0.9
    assert res.cosine.median() > 0.95 and (res.accuracy == res.cosine).all()
    full = fit_signatures(sim.channel_set("SBS96"), ref, FitConfig(method="nnls"))
    assert (full.l2_error <= res.l2_error + 1e-9).all()
    assert res.signatures_per_sample().mean() < full.signatures_per_sample().mean()


def test_fit_cohort_writes_contract_keys():
    from nanog1.fitting.cohort import fit_cohort
    from nanog1.genomics.simulate import simulate_cohort, simulated_anndata

    adata = simulated_anndata(simulate_cohort(12, seed=4))
    fit_cohort(adata, FitConfig(method="sparse"))
    for cs in SIGNATURE_SETS:
        exp = adata.obsm[f"exposures_{cs}"]
        assert list(exp.index) == list(adata.obs_names) and (exp.to_numpy() >= 0).all()
        assert adata.obs[f"fit_cosine_{cs}"].between(0, 1 + 1e-9).all()
    assert adata.uns["signature_fit"]["cosmic_version"] == "3.4"


def test_fit_refuses_sets_the_cohort_lacks():
    """A cohort ingested without a reference holds SBS6, not SBS96: fitting SBS96 is a one-line error
    naming the cohort and the missing set; the default fits what is there (DBS78)."""
    from nanog1.fitting.cohort import fit_cohort
    from nanog1.genomics.cohort import assemble_cohort

    rng = np.random.default_rng(1)
    counts = np.zeros((6, 275), dtype=np.int64)
    counts[:, 96:174] = rng.poisson(3.0, (6, 78))
    counts[:, 257:263] = rng.poisson(20.0, (6, 6))
    present = {"channel_sets_present": ["DBS78", "SBS6", "ID12"]}
    adata = assemble_cohort(counts, [f"s{i}" for i in range(6)], present)
    assert adata.uns["nanog1"]["channel_sets"]["SBS96"] == "not_computable"
    with pytest.raises(ValueError, match=r"^tcga.h5ad: cannot fit SBS96 signatures.*DBS78, SBS6, ID12$"):
        fit_cohort(adata, FitConfig(method="nnls"), ["SBS96"], name="tcga.h5ad")
    with pytest.raises(ValueError, match="no COSMIC signatures for SBS6"):
        fit_cohort(adata, FitConfig(method="nnls"), ["SBS6"], name="tcga.h5ad")
    assert list(fit_cohort(adata, FitConfig(method="nnls"))) == ["DBS78"]
