"""Temperature scaling, ECE, reliability tables and abstention: against simple references and on cohorts."""

from __future__ import annotations

import json

import anndata as ad
import numpy as np
import pytest
from training_cohort import make_cohort

from nanog1.encoder.abstention import (
    UNCERTAIN,
    AbstentionRule,
    CentroidOOD,
    choose_threshold,
    confidence_entropy,
    coverage_curve,
    profile_features,
)
from nanog1.encoder.calibration import (
    apply_temperature,
    crossfit_calibration,
    expected_calibration_error,
    fit_temperature,
    logits_from_proba,
    softmax,
)


def _ece_reference(proba, labels, bins=15):
    conf, correct = proba.max(1), proba.argmax(1) == labels
    total = 0.0
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        sel = [(lo < c <= hi) or (b == 0 and c == 0) for c in conf]
        sel = np.asarray(sel)
        if sel.any():
            total += sel.sum() * abs(correct[sel].mean() - conf[sel].mean())
    return total / len(conf)


def _draw(rng, n, k, true_t):
    """Logits z and labels drawn from softmax(z / true_t): a model over-confident by true_t."""
    z = rng.normal(0, 3, (n, k))
    p = softmax(z / true_t)
    labels = np.array([rng.choice(k, p=row) for row in p])
    return z, labels


def test_ece_matches_reference_on_random_inputs():
    rng = np.random.default_rng(0)
    proba = rng.dirichlet(np.ones(5) * 0.5, 300)
    labels = rng.integers(0, 5, 300)
    assert expected_calibration_error(proba, labels) == pytest.approx(_ece_reference(proba, labels), abs=1e-9)


def test_fit_temperature_recovers_the_true_temperature():
    rng = np.random.default_rng(1)
    z, labels = _draw(rng, 4000, 6, true_t=2.5)
    assert fit_temperature(z, labels) == pytest.approx(2.5, rel=0.1)
    # logits from probabilities differ by a per-row constant only: same temperature
    assert fit_temperature(logits_from_proba(softmax(z)), labels) == pytest.approx(2.5, rel=0.1)


def test_temperature_keeps_top1_and_lowers_heldout_ece_of_an_overconfident_model():
    rng = np.random.default_rng(2)
    z, labels = _draw(rng, 2000, 5, true_t=3.0)
    proba = softmax(z).astype(np.float32)
    fit, held = slice(0, 1000), slice(1000, None)
    t = fit_temperature(logits_from_proba(proba[fit]), labels[fit])
    calibrated = apply_temperature(proba[held], t)
    assert (calibrated.argmax(1) == proba[held].argmax(1)).all()
    before = expected_calibration_error(proba[held], labels[held])
    after = expected_calibration_error(calibrated, labels[held])
    assert after < 0.5 * before
    cf_before, cf_after = crossfit_calibration(proba, labels)
    assert cf_after < 0.5 * cf_before


def test_coverage_curve_and_threshold_against_brute_force():
    rng = np.random.default_rng(3)
    z, labels = _draw(rng, 400, 4, true_t=1.0)
    proba = softmax(z)
    curve = coverage_curve(proba, labels)
    conf, correct = proba.max(1), proba.argmax(1) == labels
    for _, row in curve.sample(20, random_state=0).iterrows():
        kept = conf >= row["threshold"]
        assert row["coverage"] == pytest.approx(kept.mean())
        assert row["accuracy"] == pytest.approx(correct[kept].mean())
    t = choose_threshold(proba, labels, target_accuracy=0.9)
    assert correct[conf >= t].mean() >= 0.9 > correct.mean()
    lower = conf[conf < t].max()  # one step lower no longer reaches the target
    assert correct[conf >= lower].mean() < 0.9
    t_cov = choose_threshold(proba, labels, target_accuracy=None, target_coverage=0.5)
    assert (conf >= t_cov).mean() == pytest.approx(0.5, abs=0.01)


def test_entropy_and_rule_roundtrip():
    rng = np.random.default_rng(4)
    proba = rng.dirichlet(np.ones(3), 50)
    conf, ent = confidence_entropy(proba)
    np.testing.assert_allclose(ent, [-(p * np.log(p)).sum() for p in proba], rtol=1e-6)
    emb = profile_features(rng.poisson(5.0, (50, 257)))
    ood = CentroidOOD.fit(emb, rng.integers(0, 3, 50), emb)
    rule = AbstentionRule(0.5, 0.9, ood)
    back = AbstentionRule.from_dict(json.loads(json.dumps(rule.to_dict())))
    np.testing.assert_array_equal(back.uncertain(proba, emb), rule.uncertain(proba, emb))
    assert (rule.uncertain(proba, emb) >= (conf < 0.5)).all()
    assert rule.uncertain(proba, emb + 1.0).all()
    assert AbstentionRule(0.0, None, ood).uncertain(proba, emb).mean() <= 0.02  # 99% quantile of its data


def test_profile_features_against_reference():
    rng = np.random.default_rng(5)
    counts = rng.poisson(3.0, (7, 257)).astype(float)
    feats = profile_features(counts)
    for lo, hi in ((0, 96), (96, 174), (174, 257)):
        share = counts[:, lo:hi] / counts[:, lo:hi].sum(1, keepdims=True)
        np.testing.assert_allclose(feats[:, lo:hi] ** 2, share)


@pytest.fixture(scope="module")
def held_out_type_run(tmp_path_factory):
    """A small encoder trained on three simulated types; the fourth (Breast) is never seen."""
    from nanog1.encoder.config import TrainConfig
    from nanog1.encoder.run import train_cohort

    tmp = tmp_path_factory.mktemp("heldout")
    full = make_cohort(n_per_type=25, seed=3, tokens=False)
    train = full[full.obs["cancer_type"] != "Breast"].copy()
    train.obs["cancer_type"] = train.obs["cancer_type"].cat.remove_unused_categories()
    train.write_h5ad(tmp / "three.h5ad")
    full.write_h5ad(tmp / "four.h5ad")
    cfg = TrainConfig(
        hidden=16, layers=1, rank=4, heads=2, batch_size=8, lr=0.01, epochs=6, register_model=False
    )
    outcome = train_cohort(tmp / "three.h5ad", tmp / "runs" / "r", cfg, tracking_uri=f"sqlite:///{tmp}/m.db")
    return tmp, outcome


def test_training_stores_calibration_and_figures(held_out_type_run):
    tmp, outcome = held_out_type_run
    run = tmp / "runs" / "r"
    calib = json.loads((run / "calibration.json").read_text())
    assert calib["source"] == "validation" and calib["temperature"] > 0
    assert calib["abstention"]["ood"]["threshold"] > 0
    for name in ("reliability.png", "reliability.csv", "coverage.png", "coverage.csv"):
        assert (run / name).stat().st_size > 0
    assert outcome.metrics["temperature"] == pytest.approx(calib["temperature"])
    import mlflow

    logged = mlflow.MlflowClient(f"sqlite:///{tmp}/m.db").get_run(outcome.run_id).data.metrics
    assert logged["temperature"] == pytest.approx(calib["temperature"])
    assert "ece" in logged and "ece_calibrated" in logged


def test_evaluate_marks_an_unseen_type_uncertain(held_out_type_run):
    from nanog1.encoder.evaluate import evaluate_cohort

    tmp, _ = held_out_type_run
    out = tmp / "four_eval.h5ad"
    metrics = evaluate_cohort(tmp / "four.h5ad", tmp / "runs" / "r", out)
    adata = ad.read_h5ad(out)
    pred, raw = adata.obs["predicted_type"].astype(str), adata.obs["predicted_type_raw"].astype(str)
    truth = adata.obs["cancer_type"].astype(str)
    unseen = (truth == "Breast").to_numpy()
    assert (pred[unseen] == UNCERTAIN).mean() >= 0.8
    assert (pred[~unseen] == UNCERTAIN).mean() < 0.5
    kept = (pred != UNCERTAIN).to_numpy() & ~unseen
    assert (raw[kept] == truth[kept]).mean() >= (raw[~unseen] == truth[~unseen]).mean()
    np.testing.assert_allclose(adata.obsm["proba_type"].to_numpy().sum(1), 1.0, rtol=1e-5)
    conf = adata.obs["type_confidence"].to_numpy()
    np.testing.assert_allclose(conf, adata.obsm["proba_type"].to_numpy().max(1), rtol=1e-5)
    assert (adata.obs["type_entropy"] >= 0).all()
    assert {"ece", "ece_calibrated", "coverage", "top1_covered"} <= set(metrics)


def test_pcawg_temperature_scaling_lowers_heldout_ece(pcawg_dir):
    """Out-of-fold logistic regression on PCAWG SBS96 catalogues; T fitted on other folds' predictions."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from nanog1.genomics.signatures_pcawg import pcawg_typing_features

    x, y = pcawg_typing_features(pcawg_dir)
    model = make_pipeline(StandardScaler(), LogisticRegression(C=10.0, max_iter=500))
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    proba = cross_val_predict(model, x, y, cv=folds, method="predict_proba")
    before, after = crossfit_calibration(proba, y, folds=5, seed=0)
    print(f"PCAWG logreg OOF top1={np.mean(proba.argmax(1) == y):.3f} ECE {before:.4f} -> {after:.4f}")
    assert after < before


def test_evaluate_without_a_split_record_does_not_call_tumours_held_out(held_out_type_run, tmp_path):
    """A model that records no split (the packaged ones) and a cohort with no split column: evaluate
    scores all tumours under all_* names, says whether the model saw them is not known, and counts
    (and warns about) the scored tumours its reference.npz lists as trained on (QA: MC3 tumours the
    packaged tcga-exome model trained on were called 'held-out', top-1 1.0)."""
    import shutil

    import torch
    from typer.testing import CliRunner

    from nanog1.cli import app
    from nanog1.encoder.evaluate import UNKNOWN_SPLIT, evaluate_cohort

    tmp, _ = held_out_type_run
    model = tmp_path / "packaged"
    shutil.copytree(tmp / "runs" / "r", model)
    saved = torch.load(model / "model.pt", weights_only=True)
    saved.pop("split")
    torch.save(saved, model / "model.pt")
    cohort = ad.read_h5ad(tmp / "four.h5ad")
    assert "split" not in cohort.obs
    known = (cohort.obs["cancer_type"] != "Breast").to_numpy()
    metrics = evaluate_cohort(tmp / "four.h5ad", model, tmp_path / "e.h5ad")
    assert metrics and not any(k in metrics for k in ("top1", "macro_f1", "coverage"))
    assert metrics["all_n_scored"] == known.sum() and 0.0 <= metrics["all_top1"] <= 1.0
    assert metrics.scored.startswith(f"all {known.sum()} tumours {UNKNOWN_SPLIT}")
    assert "lists no training tumours" in metrics.scored
    written = ad.read_h5ad(tmp_path / "e.h5ad")
    assert "split" not in written.obs and written.uns["nanog1_model"]["scored"] == metrics.scored
    saved_json = json.loads((tmp_path / "e.metrics.json").read_text())
    assert "top1" not in saved_json and saved_json["scored"] == metrics.scored

    seen = list(cohort.obs_names[known][:3])  # the model lists three of the scored tumours as trained on
    np.savez(model / "reference.npz", sample=np.asarray([*seen, "not-in-cohort"]))
    with pytest.warns(UserWarning, match="3 of the .* scored tumours are among the tumours the model"):
        metrics = evaluate_cohort(tmp / "four.h5ad", model, tmp_path / "e2.h5ad")
    assert metrics["all_n_scored_seen_in_training"] == 3
    assert "list of the 4 tumours it was trained on (reference.npz) holds 3 of them: those are not held out" \
        in metrics.scored

    import warnings

    with warnings.catch_warnings(record=True) as caught:  # the CLI says it in words, not as a Python warning
        warnings.simplefilter("always")
        res = CliRunner().invoke(app, ["evaluate", str(tmp / "four.h5ad"), "--run", str(model),
                                       "--out", str(tmp_path / "e3.h5ad")])
    assert res.exit_code == 0, res.output
    assert "held-out" not in res.output and f"all {known.sum()} tumours {UNKNOWN_SPLIT}" in res.output
    assert "holds 3 of them: those are not held out" in res.output
    assert not [w for w in caught if "scored tumours are among" in str(w.message)]
