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


def test_exposures_sum_to_the_tumours_mutations_as_in_sigprofilerassignment():
    """QA: a Mutect2 tumour's ID83 exposures summed to 10 of its 25 indels (an L2 fit of counts sums to
    its fitted mass, not the total). Exposures are rescaled to the total, as SigProfilerAssignment's
    NNLS weights are: an exact mix of two COSMIC ID signatures at 25 indels and noisy 25-indel draws of
    it sum to 25 and name the two; the bootstrap draws are on the same scale."""
    from nanog1.fitting.bootstrap import BootstrapConfig, bootstrap_exposures

    sigs = load_reference(ReferenceSpec(channel_set="ID83"))
    mix = (0.6 * sigs["ID2"] + 0.4 * sigs["ID8"]).to_numpy()
    rng = np.random.default_rng(0)
    rows = np.vstack([25 * mix, *(rng.multinomial(25, mix / mix.sum()) for _ in range(6))])
    cat = pd.DataFrame(rows, index=[f"t{i}" for i in range(len(rows))], columns=sigs.index)
    res = fit_signatures(cat, sigs)
    np.testing.assert_allclose(res.exposures.sum(1), 25.0, rtol=1e-9)
    top2 = set(res.exposures.loc["t0"].nlargest(2).index)
    assert top2 == {"ID2", "ID8"} and res.exposures.loc["t0"].drop(["ID2", "ID8"]).sum() < 0.5
    raw = fit_signatures(cat, sigs, FitConfig(conserve_total=False)).exposures.sum(1)
    assert (np.abs(raw - 25) > 2).any()  # the least-squares mass alone misses the total
    boot = bootstrap_exposures(cat, sigs, res.exposures, config=BootstrapConfig(draws=40, seed=1))
    assert (boot.hi.sum(1) >= 25 - 1e-6).all() and (boot.lo.sum(1) <= 25 + 1e-6).all()


def test_predict_exposures_sum_to_the_tumours_indels(tmp_path):
    """The Mutect2 tumour P1-T (25 deletions) through `nanog1 predict`: its ID83 exposures in
    predictions.json add up to its 25 indels (before: 35), its SBS96 ones to its 70 SNVs."""
    import json

    from typer.testing import CliRunner

    from nanog1.cli import app
    from nanog1.genomics.synthetic import GenomeSpec, make_genome
    from tests.test_measured_per_sample import complete

    seq = make_genome(tmp_path / "g.fa", GenomeSpec(n_contigs=1, length=20_000, seed=11))["1"]
    vcf = complete(tmp_path / "P1", seq)
    res = CliRunner().invoke(app, ["predict", str(vcf), "-r", str(tmp_path / "g.fa"), "--out",
                                   str(tmp_path / "o"), "--neighbours", "0", "--draws", "10"])
    assert res.exit_code == 0, res.output
    tumour = json.loads((tmp_path / "o" / "predictions.json").read_text())["tumours"][0]
    expo = tumour["exposures"]
    assert sum(v["mutations"] for v in expo["ID83"].values()) == pytest.approx(25.0)
    assert sum(v["mutations"] for v in expo["SBS96"].values()) == pytest.approx(70.0)
