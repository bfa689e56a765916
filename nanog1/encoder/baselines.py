"""Classical baselines (scikit-learn) on the same stratified folds as the encoder, logged to MLflow.

Features: normalised catalogues (each measured set's channel proportions + log1p of its burden)
and, when the cohort has them, fitted exposures (each set's exposure proportions + log1p burden).
Models: logistic regression, random forest, histogram gradient boosting, all class-balanced.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from nanog1.encoder.config import TYPE_TASK
from nanog1.encoder.cv import kfold_splits
from nanog1.encoder.data import CohortArrays, require_types
from nanog1.encoder.metrics import classification_metrics
from nanog1.schema import SET_NAMES, SET_SIZES


def catalogue_features(counts: np.ndarray, channel_padding: np.ndarray) -> np.ndarray:
    """Per measured set: channel proportions, then log1p(set burden)."""
    cols = []
    for part, pad in zip(
        np.split(counts, np.cumsum(SET_SIZES)[:-1], axis=1),
        np.split(channel_padding, np.cumsum(SET_SIZES)[:-1]),
        strict=True,
    ):
        if pad.all():
            continue
        total = part.sum(1, keepdims=True)
        cols += [part / np.maximum(total, 1.0), np.log1p(total)]
    return np.hstack(cols).astype(np.float32)


def exposure_features(arrays: CohortArrays) -> np.ndarray | None:
    """Exposure proportions of each fitted set + log1p of that set's burden; None when none are fitted."""
    if not arrays.exposures:
        return None
    parts = dict(zip(SET_NAMES, np.split(arrays.counts, np.cumsum(SET_SIZES)[:-1], axis=1), strict=True))
    cols = []
    for name, props in arrays.exposures.items():
        cols += [props, np.log1p(parts[name].sum(1, keepdims=True))]
    return np.hstack(cols).astype(np.float32)


def classifiers(seed: int = 0, n_jobs: int = 1) -> dict[str, Callable[[], object]]:
    """Factories for the baseline models (fresh, unfitted estimator per fold)."""
    return {
        "logreg": lambda: make_pipeline(
            StandardScaler(), LogisticRegression(C=0.5, max_iter=3000, class_weight="balanced")
        ),
        "random_forest": lambda: RandomForestClassifier(
            n_estimators=500,
            class_weight="balanced_subsample",
            min_samples_leaf=1,
            n_jobs=n_jobs,
            random_state=seed,
        ),
        "gradient_boosting": lambda: HistGradientBoostingClassifier(
            learning_rate=0.08,
            max_iter=250,
            max_leaf_nodes=15,
            l2_regularization=1.0,
            class_weight="balanced",
            early_stopping=False,
            random_state=seed,
        ),
    }


def oof_proba(
    make: Callable[[], object],
    x: np.ndarray,
    labels: np.ndarray,
    n_classes: int,
    splits: list[tuple[np.ndarray, np.ndarray]],
    label: str = "folds",
) -> np.ndarray:
    """Out-of-fold class probabilities [n, n_classes] (labelled samples only are fitted)."""
    from nanog1.progress import bar

    proba = np.zeros((len(x), n_classes), dtype=np.float64)
    for train, test in bar(splits, label, unit="fold"):
        train = train[labels[train] >= 0]
        model = make().fit(x[train], labels[train])
        proba[np.ix_(test, model.classes_)] = model.predict_proba(x[test])
    return proba


def run_baselines(
    cohort: Path,
    folds: int = 5,
    seed: int = 0,
    experiment: str | None = None,
    tracking_uri: str | None = None,
    out: Path | None = None,
    models: list[str] | None = None,
) -> pd.DataFrame:
    """Every baseline on every feature set over the shared k folds; one MLflow run each; metrics table."""
    from nanog1.encoder.cohort_io import read
    from nanog1.encoder.data import cohort_arrays
    from nanog1.io import atomic_write_with
    from nanog1.progress import report, step
    from nanog1.tracking import Tracker, default_tracking_uri, experiment_name

    arrays = cohort_arrays(read(cohort))
    require_types(arrays, "baselines", source=cohort)
    splits = kfold_splits(arrays.labels, folds, seed)
    features = {
        "catalogue": catalogue_features(arrays.counts, arrays.shared_padding),
        "exposures": exposure_features(arrays),
    }
    uri = tracking_uri or default_tracking_uri(Path(cohort).resolve().parent / "runs" / "baselines")
    tracker = Tracker(uri, experiment or experiment_name(cohort, TYPE_TASK))
    rows = {}
    report(f"baselines: {arrays.n} samples, {len(arrays.classes)} types, {folds} folds")
    for feat, x in features.items():
        if x is None:
            continue
        for name, make in classifiers(seed).items():
            if models is not None and name not in models:
                continue
            with step(f"baselines: {name}[{feat}]") as shown:
                proba = oof_proba(make, x, arrays.labels, len(arrays.classes), splits, f"{name}[{feat}]")
                metrics = classification_metrics(proba, arrays.labels, arrays.classes)
                shown |= {k: metrics[k] for k in ("top1", "macro_f1") if k in metrics}
            rows[f"{name}[{feat}]"] = metrics
            _log_run(
                tracker,
                f"{name}[{feat}]",
                {"model": name, "features": feat, "folds": folds, "seed": seed},
                metrics,
            )
    table = pd.DataFrame(rows).T
    if out is not None:
        atomic_write_with(Path(out), lambda p: table.to_csv(p))
    return table


def _log_run(tracker, run_name: str, params: dict, metrics: dict) -> None:
    tracker.start(run_name=run_name)
    try:
        tracker.log_params(params | {"kind": "baseline"})
        tracker.log_metrics({f"cv_{k}": v for k, v in metrics.items()}, step=0)
    except BaseException:
        tracker.end("FAILED")
        raise
    tracker.end("FINISHED")
