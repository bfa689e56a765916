"""Read-only views of an MLflow tracking store: experiments, runs, metric histories, image artifacts.

A `sqlite:///` store that does not exist is reported, never created: MLflow would otherwise make
an empty database at that path on first contact.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.parse import urlsplit

import pandas as pd

from nanog1.dashboard.config import sqlite_path
from nanog1.errors import UserError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".svg")


class StoreError(UserError):
    """A tracking store that is missing or cannot be read."""


#: Seconds an HTTP tracking server gets per request, and retries, before the page says it is unreachable
#: (MLflow's own defaults, 120 s and 7 retries with back-off, kept the page spinning for minutes).
HTTP_TIMEOUT_S, HTTP_RETRIES = 10, 0


def _check_http(tracking_uri: str) -> None:
    """Fail fast on an HTTP store nobody answers at, and bound MLflow's later requests."""
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(HTTP_TIMEOUT_S))
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", str(HTTP_RETRIES))
    url = urlsplit(tracking_uri)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((url.hostname or "localhost", port), timeout=5).close()
    except OSError as exc:
        raise StoreError(f"MLflow tracking server {tracking_uri} is unreachable ({exc}); "
                         "is `mlflow server` running there?") from exc


def _check_file_store(tracking_uri: str) -> None:
    """A `file:` store must exist (MLflow would create one) and MLflow 3 must be allowed to read it."""
    path = Path(urlsplit(tracking_uri).path) if tracking_uri.startswith("file:") else Path(tracking_uri)
    if not path.is_dir():
        raise StoreError(f"MLflow store not found: {path} (from {tracking_uri})")
    if os.environ.get("MLFLOW_ALLOW_FILE_STORE", "").lower() != "true":
        raise StoreError(f"{tracking_uri} is a filesystem store, which MLflow 3 reads only with "
                         "MLFLOW_ALLOW_FILE_STORE=true; better, convert it once with "
                         f"`mlflow migrate-filestore` and open the sqlite:/// store it writes.")


def open_store(tracking_uri: str):
    """An `mlflow.MlflowClient` on the store, after checking it exists, answers and is readable.

    Every failure is a StoreError with one sentence: missing sqlite or `file:` stores (never created),
    filesystem stores MLflow 3 refuses, HTTP servers that do not answer within seconds.
    """
    db = sqlite_path(tracking_uri)
    scheme = urlsplit(tracking_uri).scheme
    if db is not None and not db.is_file():
        raise StoreError(f"MLflow store not found: {db} (from {tracking_uri})")
    if scheme in ("http", "https"):
        _check_http(tracking_uri)
    elif scheme in ("file", ""):
        _check_file_store(tracking_uri)
    from mlflow import MlflowClient

    try:
        client = MlflowClient(tracking_uri=tracking_uri)
        client.search_experiments(max_results=1)
    except Exception as exc:  # sqlalchemy/mlflow/requests raise many types for a damaged store
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise StoreError(f"cannot read MLflow store {tracking_uri}: {type(exc).__name__}: {first}") from exc
    return client


def experiments(client) -> pd.DataFrame:
    """Active experiments: id, name, artifact location."""
    rows = [
        {"experiment_id": e.experiment_id, "name": e.name, "artifact_location": e.artifact_location}
        for e in client.search_experiments()
    ]
    return pd.DataFrame(rows, columns=["experiment_id", "name", "artifact_location"])


def runs_table(client, experiment_id: str) -> pd.DataFrame:
    """One row per run (newest first): id, name, status, start, then params.* and metrics.* (last values)."""
    rows = []
    for run in client.search_runs([experiment_id], order_by=["attributes.start_time DESC"]):
        row = {
            "run_id": run.info.run_id,
            "run": run.info.run_name or run.info.run_id[:8],
            "status": run.info.status,
            "start": pd.to_datetime(run.info.start_time, unit="ms", utc=True),
        }
        row.update({f"params.{k}": v for k, v in run.data.params.items()})
        row.update({f"metrics.{k}": v for k, v in run.data.metrics.items()})
        rows.append(row)
    return pd.DataFrame(rows)


def recent_runs(client, limit: int = 5) -> pd.DataFrame:
    """The newest runs of the whole store: experiment, run, status, start and their final metrics."""
    names = {e.experiment_id: e.name for e in client.search_experiments()}
    if not names:
        return pd.DataFrame(columns=["experiment", "run", "status", "start"])
    rows = []
    for run in client.search_runs(list(names), order_by=["attributes.start_time DESC"], max_results=limit):
        row = {"experiment": names.get(run.info.experiment_id, run.info.experiment_id),
               "run": run.info.run_name or run.info.run_id[:8], "status": run.info.status,
               "start": pd.to_datetime(run.info.start_time, unit="ms", utc=True)}
        row.update({k: round(v, 4) for k, v in sorted(run.data.metrics.items())})
        rows.append(row)
    return pd.DataFrame(rows)


def metric_names(table: pd.DataFrame) -> list[str]:
    """Metric keys present in a runs table."""
    return sorted(c.removeprefix("metrics.") for c in table.columns if c.startswith("metrics."))


def metric_history(client, runs: dict[str, str], metric: str) -> pd.DataFrame:
    """Long table (run, step, value) of one metric for the given {run_id: run label}."""
    rows = [
        {"run": label, "step": m.step, "value": m.value}
        for run_id, label in runs.items()
        for m in client.get_metric_history(run_id, metric)
    ]
    return pd.DataFrame(rows, columns=["run", "step", "value"])


def default_metrics(names: list[str], limit: int = 4) -> list[str]:
    """Metrics a run opens on: losses first, then accuracies, then the rest (learning curves)."""
    def rank(name: str) -> tuple[int, str]:
        lower = name.lower()
        return (0 if "loss" in lower else 1 if "acc" in lower else 2 if "f1" in lower else 3, name)
    return sorted(names, key=rank)[:limit]


def best_and_final(history: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Per run: final value, best value (lowest for losses and errors, else highest) and its step."""
    lower_better = any(k in metric.lower() for k in ("loss", "error", "ece", "perplexity"))
    rows = []
    for run, group in history.sort_values("step").groupby("run", sort=False):
        best = group.loc[group["value"].idxmin() if lower_better else group["value"].idxmax()]
        rows.append({"run": run, "metric": metric, "final": group["value"].iloc[-1], "best": best["value"],
                     "best step": int(best["step"]), "steps": len(group)})
    return pd.DataFrame(rows, columns=["run", "metric", "final", "best", "best step", "steps"])


def csv_artifacts(client, run_id: str, suffix: str, path: str = "") -> list[str]:
    """Paths of a run's artifacts whose name ends with `suffix` (e.g. 'confusion.csv'), recursively."""
    found: list[str] = []
    for info in client.list_artifacts(run_id, path or None):
        if info.is_dir:
            found += csv_artifacts(client, run_id, suffix, info.path)
        elif info.path.endswith(suffix):
            found.append(info.path)
    return found


def compare_runs(table: pd.DataFrame, run_ids: list[str]) -> pd.DataFrame:
    """Params and metrics of the chosen runs side by side (rows = keys, columns = runs)."""
    chosen = table.set_index("run_id").loc[run_ids]
    keys = [c for c in chosen.columns if c.startswith(("params.", "metrics."))]
    side = chosen[keys].T
    side.columns = [f"{chosen.loc[r, 'run']} ({r[:8]})" for r in run_ids]
    side.insert(0, "differs", side.astype(str).nunique(axis=1) > 1)
    return side


def image_artifacts(client, run_id: str, path: str = "") -> list[str]:
    """Paths of image artifacts of a run, searched recursively."""
    found: list[str] = []
    for info in client.list_artifacts(run_id, path or None):
        if info.is_dir:
            found += image_artifacts(client, run_id, info.path)
        elif info.path.lower().endswith(IMAGE_SUFFIXES):
            found.append(info.path)
    return found


def fetch_artifact(tracking_uri: str, run_id: str, artifact_path: str, dst: Path) -> Path:
    """Copy one artifact into `dst` (a scratch folder) and return its local path."""
    import mlflow.artifacts

    local = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=artifact_path,
                                                dst_path=str(dst), tracking_uri=tracking_uri)
    return Path(local)
