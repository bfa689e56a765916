"""Classical baselines: features against numpy, out-of-fold probabilities, the CLI table and MLflow runs."""

from __future__ import annotations

import mlflow
import numpy as np
from sklearn.linear_model import LogisticRegression
from training_cohort import make_cohort
from typer.testing import CliRunner

from nanog1.cli import app
from nanog1.encoder.baselines import catalogue_features, exposure_features, oof_proba
from nanog1.encoder.cv import kfold_splits
from nanog1.encoder.data import cohort_arrays
from nanog1.genomics.channels import N_CHANNELS


def test_catalogue_features_reference():
    rng = np.random.default_rng(0)
    counts = rng.poisson(2.0, size=(5, N_CHANNELS)).astype(np.float32)
    padding = np.zeros(N_CHANNELS, bool)
    padding[96:174] = True  # DBS not measured
    padding[257:] = True  # nor the derived sets (SBS6, ID12)
    x = catalogue_features(counts, padding)
    sbs, ids = counts[:, :96], counts[:, 174:257]
    want = np.hstack(
        [
            sbs / sbs.sum(1, keepdims=True),
            np.log1p(sbs.sum(1, keepdims=True)),
            ids / ids.sum(1, keepdims=True),
            np.log1p(ids.sum(1, keepdims=True)),
        ]
    )
    np.testing.assert_allclose(x, want, rtol=1e-6)


def test_oof_proba_matches_manual_folds():
    arrays = cohort_arrays(make_cohort(n_per_type=10, seed=3, tokens=False))
    x = exposure_features(arrays)
    assert x.shape == (arrays.n, sum(v.shape[1] + 1 for v in arrays.exposures.values()))
    splits = kfold_splits(arrays.labels, 3, seed=0)

    def make():
        return LogisticRegression(max_iter=500)

    proba = oof_proba(make, x, arrays.labels, len(arrays.classes), splits)
    for train, test in splits:
        model = make().fit(x[train], arrays.labels[train])
        np.testing.assert_allclose(proba[test], model.predict_proba(x[test]), rtol=1e-6)


def test_baselines_cli_logs_runs(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cohort = tmp_path / "base.h5ad"
    make_cohort(n_per_type=12, seed=4, tokens=False).write_h5ad(cohort)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    out = tmp_path / "baselines.csv"
    res = CliRunner().invoke(
        app,
        [
            "baselines",
            str(cohort),
            "--folds",
            "3",
            "--tracking-uri",
            uri,
            "--out",
            str(out),
            "--models",
            "logreg",
        ],
    )
    assert res.exit_code == 0, res.output
    assert out.exists()
    client = mlflow.MlflowClient(tracking_uri=uri)
    runs = client.search_runs(client.get_experiment_by_name("base/cancer_type").experiment_id)
    names = {r.info.run_name for r in runs}
    assert names == {f"{m}[{f}]" for m in ("logreg",) for f in ("catalogue", "exposures")}
    assert all(r.info.status == "FINISHED" for r in runs)
    top1 = {r.info.run_name: r.data.metrics["cv_top1"] for r in runs}
    assert min(top1.values()) > 0.5, top1  # four balanced types: chance is 0.25
