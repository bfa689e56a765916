"""`nanog1 train/evaluate/embed` end to end on a simulated cohort, with the real MLflow SQLite store."""

from __future__ import annotations

import json
import re

import anndata as ad
import mlflow
import numpy as np
import pytest
import torch
from training_cohort import SMALL_TRAIN_ARGS, make_cohort
from typer.testing import CliRunner

from nanog1.cli import app
from nanog1.encoder import run as run_module
from nanog1.encoder.calibration import apply_temperature
from nanog1.encoder.config import TrainConfig
from nanog1.encoder.loop import load_model
from nanog1.encoder.model import CataloguePredictor
from nanog1.tracking import default_tracking_uri, download_model

SMALL = [*SMALL_TRAIN_ARGS, "--lr", "0.01"]


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    path = tmp_path_factory.mktemp("cohort") / "sim.h5ad"
    make_cohort(n_per_type=15, seed=1).write_h5ad(path)
    return path


@pytest.fixture(autouse=True)
def _no_env_store(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


@pytest.mark.fresh_mlflow_store  # `train` creates its store through MLflow's migrations here
def test_train_stop_resume_evaluate_embed(cohort, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # MLflow must not write ./mlruns here (asserted below)
    runner = CliRunner()
    run_dir = tmp_path / "runs" / "savo"
    args = ["train", str(cohort), "--out", str(run_dir), "--epochs", "4", *SMALL]
    stopped = runner.invoke(app, [*args, "--stop-after-epochs", "2"])
    assert (
        stopped.exit_code != 0
        and (run_dir / "checkpoint.pt").exists()
        and not (run_dir / "model.pt").exists()
    )
    client = mlflow.MlflowClient(tracking_uri=default_tracking_uri(run_dir))
    (killed,) = client.search_runs(client.get_experiment_by_name("sim/cancer_type").experiment_id)
    assert killed.info.status == "KILLED"

    done = runner.invoke(app, args)
    assert done.exit_code == 0, done.output
    run_id = re.search(r"mlflow run: (\w+)", done.output).group(1)
    assert run_id == killed.info.run_id  # the resumed training reopened its run
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert len(client.get_metric_history(run_id, "val_loss")) == 4
    assert run.data.params["mixer"] == "savo"
    arts = {a.path for a in client.list_artifacts(run_id)}
    assert {
        "confusion.png",
        "confusion.csv",
        "per_type_report.csv",
        "per_type_report.png",
        "learning_curves.png",
        "config.yaml",
        "metrics.json",
    } <= arts
    versions = client.search_model_versions("name='nanog1-sim-cancer_type'")
    assert versions and versions[0].run_id == run_id
    # the model is logged as weights + config JSON, nothing pickled; artifacts beside the store, not ./mlruns
    assert {a.path for a in client.list_artifacts(run_id, "model")} == {"model/model.pt", "model/config.json"}
    assert versions[0].source.endswith("/model") and "mlartifacts" in versions[0].source
    assert not (tmp_path / "mlruns").exists()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["run_id"] == run_id and 0.0 <= metrics["metrics"]["val_top1"] <= 1.0

    evaluated = tmp_path / "eval.h5ad"
    res = runner.invoke(app, ["evaluate", str(cohort), "--run", str(run_dir), "--out", str(evaluated)])
    assert res.exit_code == 0, res.output
    adata = ad.read_h5ad(evaluated)
    proba = adata.obsm["proba_type"]
    assert list(proba.columns) == sorted(adata.obs["cancer_type"].unique())
    np.testing.assert_allclose(proba.to_numpy().sum(1), 1.0, rtol=1e-5)
    assert (adata.obs["predicted_type_raw"].astype(str) == proba.idxmax(axis=1)).all()
    assert adata.obsm["X_nanog1"].shape == (adata.n_obs, 16)
    assert adata.uns["nanog1_model"]["mlflow_run_id"] == run_id
    assert (tmp_path / "eval.confusion.csv").exists() and (tmp_path / "eval.per_type_report.png").exists()
    assert "eval_top1" in client.get_run(run_id).data.metrics

    embedded = tmp_path / "embed.h5ad"
    res = runner.invoke(app, ["embed", str(cohort), "--run", str(run_dir), "--out", str(embedded)])
    assert res.exit_code == 0, res.output
    np.testing.assert_allclose(ad.read_h5ad(embedded).obsm["X_nanog1"], adata.obsm["X_nanog1"], rtol=1e-6)

    for uri in (metrics["model_uri"], f"models:/{versions[0].name}/{versions[0].version}"):
        logged, saved = load_model(download_model(uri))  # weights only: loading runs no code from the store
        served = CataloguePredictor(logged, saved["channel_padding"])(torch.from_numpy(adata.X[:5]))
        served = served.detach().numpy()
        temperature = json.loads((run_dir / "calibration.json").read_text())["temperature"]  # calibrated
        calibrated = apply_temperature(served, temperature)
        np.testing.assert_allclose(calibrated, proba.to_numpy()[:5], rtol=1e-4, atol=1e-6)


def test_crashed_run_ends_failed(cohort, tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("simulated crash in the middle of training")

    monkeypatch.setattr(run_module, "fit", boom)
    run_dir = tmp_path / "runs" / "crash"
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_module.train_cohort(cohort, run_dir, TrainConfig(epochs=1, experiment="crash-test"))
    client = mlflow.MlflowClient(tracking_uri=default_tracking_uri(run_dir))
    (failed,) = client.search_runs(client.get_experiment_by_name("crash-test").experiment_id)
    assert failed.info.status == "FAILED"


def test_evaluate_averages_a_seed_ensemble(cohort, tmp_path):
    """Several --run folders: the mean of the members' calibrated probabilities, the first's embedding."""
    runner = CliRunner()
    runs = [tmp_path / f"seed{s}" for s in (0, 1)]
    for s, run_dir in enumerate(runs):
        res = runner.invoke(
            app, ["train", str(cohort), "--out", str(run_dir), "--epochs", "2", "--seed", str(s), *SMALL]
        )
        assert res.exit_code == 0, res.output
    singles = []
    for i, run_dir in enumerate(runs):
        res = runner.invoke(
            app, ["evaluate", str(cohort), "--run", str(run_dir), "--out", str(tmp_path / f"e{i}.h5ad")]
        )
        assert res.exit_code == 0, res.output
        singles.append(ad.read_h5ad(tmp_path / f"e{i}.h5ad"))
    both = tmp_path / "ens.h5ad"
    args = ["evaluate", str(cohort), "--run", str(runs[0]), "--run", str(runs[1]), "--out", str(both)]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    ens = ad.read_h5ad(both)
    members = [a.obsm["proba_type"].to_numpy() for a in singles]
    assert not np.allclose(members[0], members[1])  # two seeds really differ
    np.testing.assert_allclose(ens.obsm["proba_type"].to_numpy(), np.mean(members, 0), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(ens.obsm["X_nanog1"], singles[0].obsm["X_nanog1"], rtol=1e-6)
    assert list(ens.uns["nanog1_model"]["ensemble"]["run_dir"]) == [str(r.resolve()) for r in runs]
    truth = ens.obs["cancer_type"].astype(str).to_numpy()
    top1 = (ens.obs["predicted_type_raw"].astype(str).to_numpy() == truth).mean()
    saved = json.loads((tmp_path / "ens.metrics.json").read_text())
    assert saved["top1"] == pytest.approx(top1)


def test_ensemble_refuses_members_with_other_classes(tmp_path):
    from nanog1.encoder.ensemble import _check_compatible

    saved = {"classes": ["A", "B"], "train_config": {"task": "cancer_type"}}
    _check_compatible([tmp_path / "a", tmp_path / "b"], [saved, dict(saved)])
    other = {"classes": ["A", "C"], "train_config": {"task": "cancer_type"}}
    with pytest.raises(ValueError, match="classes differ"):
        _check_compatible([tmp_path / "a", tmp_path / "b"], [saved, other])
    task = {"classes": ["A", "B"], "train_config": {"task": "multitask"}}
    with pytest.raises(ValueError, match="task 'multitask' differs"):
        _check_compatible([tmp_path / "a", tmp_path / "b"], [saved, task])
