"""Record a signature fit in MLflow: its settings as params, per-set summaries as metrics.

One run per fit in the experiment '<cohort>/signatures', so a fit can be found beside the trainings
of the same cohort. Params come from uns['signature_fit'] (COSMIC version, build, method, penalties,
signature list and table SHA-256 per set, bootstrap and opportunity settings); long or array values
are cut to MLflow's 6,000-character limit and the whole record is kept as a JSON artifact.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _flat(record: dict, prefix: str = "fit") -> dict[str, str]:
    """Nested dict -> {'fit.SBS96.bootstrap.draws': '100', ...}; arrays as comma-joined text."""
    out: dict[str, str] = {}
    for key, value in record.items():
        name = f"{prefix}.{key}"
        if isinstance(value, dict):
            out |= _flat(value, name)
        elif isinstance(value, (list, tuple, np.ndarray)):
            out[name] = ",".join(str(v) for v in np.asarray(value).ravel().tolist())[:6000]
        else:
            out[name] = str(value)[:6000]
    return out


def _plain(value):
    """uns values (numpy arrays and scalars) as JSON-ready Python objects."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def log_fit(adata, cohort: Path, tracking_uri: str) -> str:
    """Log the fit recorded in `adata` to MLflow and return the run id."""
    import mlflow

    from nanog1.tracking import Tracker

    record = dict(adata.uns["signature_fit"])
    # through Tracker: a new experiment keeps its artifacts beside a SQLite store, not in ./mlruns
    Tracker(tracking_uri, f"{Path(cohort).name.removesuffix('.h5ad')}/signatures")
    with mlflow.start_run(run_name="signature-fit") as run:
        params = {k: v for k, v in _flat(record).items() if not k.endswith(("_counts", ".capture"))}
        mlflow.log_params(params)
        for cs in record.get("channel_sets", []):
            metrics = {f"{cs}.median_cosine": float(np.median(adata.obs[f"fit_cosine_{cs}"]))}
            if f"fit_low_burden_{cs}" in adata.obs:
                metrics[f"{cs}.low_burden_samples"] = float(adata.obs[f"fit_low_burden_{cs}"].sum())
            mlflow.log_metrics(metrics)
        mlflow.log_dict(_plain(record), "signature_fit.json")
        mlflow.set_tag("nanog1.cohort", str(cohort))
        return run.info.run_id
