"""The pipeline config and Snakemake job ids land on the training's MLflow run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nanog1.pipeline.record import flatten, record_run, run_id_of


def test_flatten_names_nested_keys():
    flat = flatten({"train": {"epochs": 3, "extra": ""}, "input": {"files": ["a", "b"], "samples": None}})
    assert flat == {"pipeline.train.epochs": "3", "pipeline.train.extra": "",
                    "pipeline.input.files": "- a\n- b", "pipeline.input.samples": "null"}


def test_record_run_tags_and_params(tmp_path: Path):
    import mlflow
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    exp = mlflow.create_experiment("t", artifact_location=(tmp_path / "art").as_uri())
    with mlflow.start_run(experiment_id=exp) as run:
        mlflow.log_param("epochs", 3)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "metrics.json").write_text(json.dumps({"run_id": run.info.run_id, "metrics": {}}))
    config = {"name": "demo", "train": {"epochs": 3}}
    assert record_run(run_dir, uri, "train", "7", config) == run.info.run_id
    record_run(run_dir, uri, "evaluate", "9")
    record_run(run_dir, uri, "train", "7", {"name": "demo", "train": {"epochs": 4}})  # a changed value
    data = MlflowClient(uri).get_run(run.info.run_id).data
    assert data.tags["snakemake.jobid.train"] == "7" and data.tags["snakemake.jobid.evaluate"] == "9"
    assert data.params["pipeline.train.epochs"] == "3" and data.tags["pipeline.train.epochs"] == "4"
    assert data.tags["pipeline.name"] == "demo"
    assert (tmp_path / "art" / run.info.run_id / "artifacts" / "pipeline" / "config.yaml").exists()


def test_missing_run_id_is_named(tmp_path: Path):
    (tmp_path / "metrics.json").write_text("{}")
    with pytest.raises(ValueError, match="metrics.json: no MLflow run id"):
        run_id_of(tmp_path)
