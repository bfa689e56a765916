"""Record the pipeline on the training's MLflow run: the resolved config and each Snakemake job id.

Called by the train, evaluate and embed rules after their command succeeds, so that a run in the
MLflow UI or the dashboard says which pipeline config produced it and which jobs touched it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml


def flatten(config: dict[str, Any], prefix: str = "pipeline") -> dict[str, str]:
    """{'train': {'epochs': 3}} -> {'pipeline.train.epochs': '3'} (lists and None as YAML text)."""
    flat: dict[str, str] = {}
    for key, value in config.items():
        name = f"{prefix}.{key}"
        if isinstance(value, dict):
            flat |= flatten(value, name)
        else:
            text = value if isinstance(value, str) else yaml.safe_dump(value).strip().removesuffix("...")
            flat[name] = text
    return {k: v.strip() for k, v in flat.items()}


def run_id_of(run_dir: Path) -> str:
    """The MLflow run id the training wrote into RUN_DIR/metrics.json."""
    path = Path(run_dir) / "metrics.json"
    metrics = json.loads(path.read_text())
    for key in ("mlflow_run_id", "run_id"):
        if metrics.get(key):
            return str(metrics[key])
    raise ValueError(f"{path}: no MLflow run id (keys 'mlflow_run_id' or 'run_id')")


def record_run(
    run_dir: Path, tracking_uri: str, rule: str, jobid: str, config: dict[str, Any] | None = None
) -> str:
    """Tag the run with `snakemake.jobid.<rule>`; with a config, log it as params and as an artifact."""
    import mlflow
    from mlflow.tracking import MlflowClient

    mlflow.set_tracking_uri(tracking_uri)
    client = MlflowClient()
    run_id = run_id_of(run_dir)
    client.set_tag(run_id, f"snakemake.jobid.{rule}", str(jobid))
    if config is not None:
        existing = client.get_run(run_id).data.params
        for key, value in flatten(config).items():
            if key not in existing:
                client.log_param(run_id, key, value[:6000])
            elif existing[key] != value[:6000]:
                client.set_tag(run_id, key, value[:5000])
        client.set_tag(run_id, "pipeline.name", str(config.get("name", "")))
        client.log_dict(run_id, config, "pipeline/config.yaml")
    return run_id
