"""MLflow tracking shared by the encoder and the zoo: one experiment per cohort/task, a run per
training (`tracked_run`), FAILED/KILLED on a crash, configs logged as flat params (`flat_params`).

Default store: a SQLite file `mlflow.db` and an artifact folder `mlartifacts/` beside the run
folder (so a pipeline's runs share one store); MLFLOW_TRACKING_URI or --tracking-uri picks any server.
A new experiment on a SQLite store keeps its artifacts in `mlartifacts/` beside the database, never in
`./mlruns` of whatever folder a command ran in. Models are logged as their weights-only `model.pt` plus
a config JSON, never as pickles: loading a model from a shared store must not run code from it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import mlflow
import numpy as np


def default_tracking_uri(run_dir: Path) -> str:
    """MLFLOW_TRACKING_URI when set, else sqlite:///<parent of run_dir>/mlflow.db."""
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    return f"sqlite:///{Path(run_dir).resolve().parent / 'mlflow.db'}"


def experiment_name(cohort: Path, task: str) -> str:
    """One experiment per cohort file and task, e.g. 'demo/cancer_type'."""
    return f"{Path(cohort).name.removesuffix('.h5ad')}/{task}"


def _sqlite_file(tracking_uri: str) -> str | None:
    """The database path of a `sqlite:///…` URI as written (no query string), None for other stores."""
    prefix = "sqlite:///"
    if not tracking_uri.startswith(prefix):
        return None
    return tracking_uri[len(prefix):].split("?", 1)[0]


def sqlite_artifact_root(tracking_uri: str) -> Path | None:
    """`<folder of the database>/mlartifacts` for a `sqlite:///…` store, None for other stores."""
    db = _sqlite_file(tracking_uri)
    return None if db is None else Path(db).parent / "mlartifacts"


def download_model(model_uri: str, tracking_uri: str | None = None) -> Path:
    """The local `model.pt` of a logged model (`runs:/<id>/model` or `models:/<name>/<version>`); load it
    with the weights-only loader of its kind (e.g. `nanog1.encoder.loop.load_model`), or give its folder to
    `nanog1.encoder.predict`. `tracking_uri` names the store (e.g. 'sqlite:///results/demo/mlflow.db');
    default: MLflow's current one (`mlflow.set_tracking_uri`, MLFLOW_TRACKING_URI). A model the store
    does not hold is a UserError naming the store.

    Reading creates nothing: a local store (SQLite file, `file:` folder) that does not exist is a
    UserError, never opened. MLflow would create it on open, and with no store named its default is
    `sqlite:///mlflow.db` in the current folder: a stray, empty `mlflow.db` left wherever the call ran."""
    from mlflow.exceptions import MlflowException

    from nanog1.errors import UserError

    store = tracking_uri or mlflow.get_tracking_uri()
    hint = ("name the store that holds it: download_model(uri, tracking_uri='sqlite:///<outdir>/mlflow.db') "
            "or MLFLOW_TRACKING_URI")
    stores = [store]
    if model_uri.startswith("models:"):  # the registry: MLFLOW_REGISTRY_URI, set_registry_uri, or the store
        stores.append(_registry_uri(store))
    for uri in dict.fromkeys(stores):
        missing = missing_local_store(uri)
        if missing is not None:
            raise UserError(f"{model_uri}: not found in the MLflow store {uri} (no such {missing}; not "
                            f"created); {hint}")
    try:
        folder = mlflow.artifacts.download_artifacts(artifact_uri=model_uri, tracking_uri=store)
    except MlflowException as err:
        why = str(err.message if hasattr(err, "message") else err).splitlines()[0]
        raise UserError(f"{model_uri}: not found in the MLflow store {store} ({why}); {hint}") from None
    return Path(folder) / "model.pt"


def _registry_uri(tracking_uri: str) -> str:
    """The model registry MLflow reads `models:/` URIs from for `tracking_uri` (the registry set by
    `mlflow.set_registry_uri` or MLFLOW_REGISTRY_URI, else the tracking store itself)."""
    try:
        from mlflow.tracking._model_registry.utils import _resolve_registry_uri
    except ImportError:  # a private helper: without it, the tracking store (MLflow's default)
        return tracking_uri
    return _resolve_registry_uri(None, tracking_uri) or tracking_uri


def missing_local_store(uri: str) -> str | None:
    """'database file <path>' / 'store folder <path>' when `uri` names a local store (a SQLite file, a
    `file:` URI or a plain path) that does not exist, which MLflow would create on opening it; None for an
    existing one, an in-memory database or a remote store (http, databricks, postgresql, ...)."""
    from urllib.parse import unquote, urlparse

    db = _sqlite_file(uri)
    if db is not None:
        path = unquote(db)
        if path in ("", ":memory:"):
            return None
        return None if Path(path).exists() else f"database file {Path(path).resolve()}"
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        path = Path(unquote(parsed.path))
    elif parsed.scheme == "" or (len(parsed.scheme) == 1 and os.name == "nt"):  # a plain path (C:\ Windows)
        path = Path(uri)
    else:
        return None
    return None if path.exists() else f"store folder {path.resolve()}"


class Tracker:
    """A thin holder of one active MLflow run: start/resume, log, end with a status."""

    def __init__(self, tracking_uri: str, experiment: str, artifact_root: Path | None = None):
        mlflow.set_tracking_uri(tracking_uri)
        self.tracking_uri = tracking_uri
        if mlflow.get_experiment_by_name(experiment) is None:
            root = artifact_root if artifact_root is not None else sqlite_artifact_root(tracking_uri)
            location = Path(root).resolve().as_uri() if root is not None else None
            mlflow.create_experiment(experiment, artifact_location=location)
        mlflow.set_experiment(experiment)
        self.experiment = experiment
        self.run_id: str | None = None

    def start(self, run_id: str | None = None, run_name: str | None = None, nested: bool = False) -> str:
        """Start a new run, or reopen `run_id` (a resumed training keeps its run)."""
        run = mlflow.start_run(run_id=run_id, run_name=None if run_id else run_name, nested=nested)
        self.run_id = run.info.run_id
        return self.run_id

    def log_params(self, params: dict) -> None:
        """Log flat params once (a resumed run already has them)."""
        existing = mlflow.get_run(self.run_id).data.params
        fresh = {k: v for k, v in params.items() if k not in existing}
        if fresh:
            mlflow.log_params(fresh)

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        """Per-epoch metrics, NaNs left out."""
        clean = {k: float(v) for k, v in metrics.items() if v is not None and np.isfinite(v)}
        if clean:
            mlflow.log_metrics(clean, step=step)

    def log_artifact(self, path: Path, folder: str | None = None) -> None:
        """Copy one file into the run's artifacts."""
        mlflow.log_artifact(str(path), artifact_path=folder)

    def log_model(self, model_file: Path, config: dict, registered_name: str | None) -> str:
        """Log a model as the run's `model/` artifacts: its weights-only file (`model.pt`) and `config.json`;
        register that folder as a new version of `registered_name` when given. Returns `runs:/<id>/model`
        (a registered version is `models:/<name>/<version>`); `download_model` fetches it back."""
        mlflow.log_artifact(str(model_file), artifact_path="model")
        mlflow.log_dict(json.loads(json.dumps(config, default=str)), "model/config.json")
        if registered_name:
            client = mlflow.MlflowClient()
            if not client.search_registered_models(filter_string=f"name = '{registered_name}'"):
                client.create_registered_model(registered_name)
            client.create_model_version(registered_name, source=mlflow.get_artifact_uri("model"),
                                        run_id=self.run_id)
        return f"runs:/{self.run_id}/model"

    def end(self, status: str = "FINISHED") -> None:
        """End the active run with FINISHED, FAILED or KILLED."""
        if mlflow.active_run() is not None:
            mlflow.end_run(status=status)


def flat_params(values: dict, prefix: str = "") -> dict:
    """A nested dict (e.g. ``asdict`` of a config) as flat MLflow params: {'model.hidden_size': 128}."""
    flat = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat.update(flat_params(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


@contextmanager
def tracked_run(out: Path, experiment: str, tracking_uri: str | None, params: dict) -> Iterator[Tracker]:
    """An MLflow run (store beside ``out`` unless a URI is given) ended FINISHED, FAILED or KILLED."""
    out = Path(out).resolve()
    tracker = Tracker(tracking_uri or default_tracking_uri(out), experiment, out.parent / "mlartifacts")
    tracker.start(run_name=out.name)
    tracker.log_params(params)
    try:
        yield tracker
    except KeyboardInterrupt:
        tracker.end("KILLED")
        raise
    except BaseException:
        tracker.end("FAILED")
        raise
    tracker.end("FINISHED")
