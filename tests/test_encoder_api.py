"""The encoder on AnnData (train / predict / embed) and what its evaluation means (held-out only)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import nanog1.encoder as encoder
from nanog1.encoder.config import TrainConfig
from nanog1.encoder.cv import split_roles, train_val_test_split
from nanog1.encoder.ensemble import _ensemble_calibration
from nanog1.encoder.evaluate import split_of
from nanog1.schema import EMBEDDING, SPLIT
from tests.training_cohort import make_cohort

SMALL = dict(hidden=16, layers=1, rank=4, heads=2, batch_size=16, lr=1e-2, warmup_frac=0.05, epochs=2,
             register_model=False, amp=False)


def test_three_way_split_is_disjoint_fixed_by_seed_and_stratified():
    labels = np.repeat(np.arange(4), 25)
    tr, val, test = train_val_test_split(labels, 0.2, 0.2, seed=5)
    assert len(set(tr) | set(val) | set(test)) == 100
    assert not (set(tr) & set(test)) and not (set(val) & set(test)) and not (set(tr) & set(val))
    assert len(test) == 20 and len(val) == 20 and np.bincount(labels[test]).tolist() == [5, 5, 5, 5]
    again = train_val_test_split(labels, 0.2, 0.2, seed=5)
    assert all(np.array_equal(a, b) for a, b in zip((tr, val, test), again, strict=True))
    assert not np.array_equal(test, train_val_test_split(labels, 0.2, 0.2, seed=6)[2])
    roles = split_roles(100, tr, val, test)
    assert roles.count("test") == 20 and roles.count("val") == 20 and roles.count("train") == 60


def test_split_of_ranks_train_over_val_over_test():
    members = [{"split": {"samples": ["a", "b", "c"], "roles": ["train", "val", "test"]}},
               {"split": {"samples": ["a", "b", "c"], "roles": ["test", "test", "val"]}}]
    assert split_of(["a", "b", "c", "new"], members) == ["train", "val", "val", "test"]
    assert split_of(["a"], [{}]) == ["test"]  # a model saved without its split: nothing known


def test_ensemble_keeps_an_abstention_threshold():
    calibs = [{"temperature": 1.3, "abstention": {"confidence_threshold": 0.4, "ood": None}},
              {"temperature": 0.9, "abstention": {"confidence_threshold": 0.6}}]
    out = _ensemble_calibration(calibs)
    assert out["temperature"] == 1.0 and out["abstention"]["confidence_threshold"] == pytest.approx(0.5)


def test_train_predict_embed_on_anndata(tmp_path):
    adata = make_cohort(n_per_type=10, seed=1)
    adata.obs.loc[adata.obs_names[:3], "cancer_type"] = np.nan  # unlabelled samples are never scored
    trained, outcome = encoder.train(adata, tmp_path / "run", TrainConfig(**SMALL),
                                     tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", copy=True)
    assert SPLIT not in adata.obs and trained is not adata  # copy=True leaves the input alone
    roles = trained.obs[SPLIT].astype(str)
    assert set(roles) == {"train", "val", "test"} and (roles == "test").sum() == 6  # 15 % of 40
    assert outcome.metrics["test_n"] == int(((roles == "test") & trained.obs["cancer_type"].notna()).sum())
    assert {"test_top1", "test_coverage", "test_top1_covered"} <= set(outcome.metrics)

    out = encoder.score(trained, tmp_path / "run")
    assert out is trained and {"predicted_type", "predicted_type_raw", "type_confidence"} <= set(out.obs)
    assert list(out.obs[SPLIT].astype(str)) == list(roles)  # the run's own record of its split
    scored = (roles == "test") & trained.obs["cancer_type"].notna()
    metrics = out.uns["nanog1_model"]["metrics"]
    assert metrics["n_scored"] == int(scored.sum())  # eval metrics never count train or val samples
    truth = out.obs["cancer_type"][scored].astype(str)
    raw = out.obs["predicted_type_raw"][scored].astype(str)
    assert metrics["top1"] == pytest.approx(float((truth == raw).mean()))

    other = make_cohort(n_per_type=2, seed=9)
    other.obs_names = [f"new{i}" for i in range(other.n_obs)]  # samples are known by their ids
    side = encoder.score(other, tmp_path / "run", key_added="m2", copy=False)
    assert "m2_predicted_type" in side.obs and "predicted_type" not in side.obs
    assert (side.obs["m2_split"].astype(str) == "test").all()  # another cohort: every sample unseen
    assert "m2_proba_type" in side.obsm and "m2_model" in side.uns

    emb = encoder.embed(trained, tmp_path / "run", key_added="X_mine", copy=True)
    assert emb.obsm["X_mine"].shape == (trained.n_obs, 16) and "X_mine" not in trained.obsm
    np.testing.assert_allclose(emb.obsm["X_mine"], out.obsm[EMBEDDING], rtol=1e-5, atol=1e-5)
    assert isinstance(out.obsm["proba_type"], pd.DataFrame)

    info = encoder.run_info(tmp_path / "run")  # read-only helpers for analysis (the notebooks use them)
    assert info["config"].hidden == 16 and info["classes"] == list(out.obsm["proba_type"].columns)
    shown = encoder.type_metrics(out, "proba_type", scored.to_numpy())
    assert shown["top1"] == pytest.approx(metrics["top1"])
    labels, classes = encoder.type_labels(out, info["classes"])
    assert classes == info["classes"] and (labels == -1).sum() == 3
    catalogue = encoder.features(out, "catalogue")
    assert catalogue.shape[0] == out.n_obs and np.isfinite(catalogue).all()
    exposures = encoder.features(out, "exposures")  # the cohort's obsm['exposures_<set>']
    assert exposures.shape[0] == out.n_obs and not np.array_equal(exposures, catalogue)
    with pytest.raises(ValueError, match="'catalogue' or 'exposures'"):
        encoder.features(out, "spectra")
    labelled = labels >= 0
    table = encoder.baseline_scores(out, labelled, labelled, classes=classes)  # scored on the rows it fitted
    models = ("logreg", "random_forest", "gradient_boosting")
    assert list(table.index) == [f"{m}[{f}]" for f in ("catalogue", "exposures") for m in models]
    assert table.loc["random_forest[catalogue]", "top1"] == 1.0  # a forest recalls its training samples
    fitted = labelled & (roles != "test").to_numpy()
    held_out = encoder.baseline_scores(out, fitted, scored.to_numpy(), classes=classes)
    assert (held_out["top1"] <= 1.0).all() and set(held_out.columns) == set(table.columns)


def _with_singleton(adata, name: str = "CESC"):
    """`adata` with its first sample relabelled as the only tumour of type `name`."""
    types = adata.obs["cancer_type"].astype(object)
    types.iloc[0] = name
    adata.obs["cancer_type"] = pd.Categorical(types)
    return adata


def test_a_single_tumour_type_and_unknown_types_always_train():
    labels = np.repeat(np.arange(5), 8)
    labels[0], labels[1] = 5, -1  # one tumour of type 5 (a known class), one of an unknown type
    for seed in range(20):  # the old rule split such cohorts at random: these landed in val/test
        tr, val, test = train_val_test_split(labels, 0.2, 0.2, seed=seed)
        assert {0, 1} <= set(tr) and len(set(tr) | set(val) | set(test)) == 40
        assert sorted(np.bincount(labels[test], minlength=6)[:5]) == [1, 1, 2, 2, 2]  # still stratified


def _report_n(evaluated, run, tmp_path, name: str) -> int:
    import re

    from nanog1.report import write_report

    path = tmp_path / f"{name}.h5ad"
    evaluated.write_h5ad(path)
    md = write_report(path, run, tmp_path / name).markdown.read_text()
    return int(re.search(r"Scored on (\d+) held-out", md).group(1))


def test_run_metrics_evaluation_and_report_score_the_same_held_out_samples(tmp_path):
    """Issue 27 (MC3: 18 test tumours in the run's metrics, 19 in the report)."""
    adata = _with_singleton(make_cohort(n_per_type=10, seed=1, tokens=False))
    run = tmp_path / "run"
    trained, outcome = encoder.train(adata, run, TrainConfig(**SMALL),
                                     tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", copy=True)
    assert trained.obs[SPLIT].astype(str).iloc[0] == "train"  # the single CESC tumour is never held out
    scored = encoder.score(trained, run, copy=True)
    n = scored.uns["nanog1_model"]["metrics"]["n_scored"]
    assert n == outcome.metrics["test_n"] == _report_n(scored, run, tmp_path, "own")

    other = _with_singleton(make_cohort(n_per_type=2, seed=9, tokens=False))  # CESC: a type with no class
    other.obs_names = [f"new{i}" for i in range(other.n_obs)]
    side = encoder.score(other, run, copy=True)
    assert (side.obs[SPLIT].astype(str) == "test").all()
    assert side.uns["nanog1_model"]["metrics"]["n_scored"] == 7 == _report_n(side, run, tmp_path, "other")
