"""`nanog1 train`: cohort -> splits -> fit (or k-fold CV) -> model.pt, metrics.json, MLflow run.

Rank 0 owns MLflow: it opens (or, on resume, reopens) the run, logs params and per-epoch metrics,
the artifacts and the model; any exception ends the run FAILED, a deliberate stop ends it KILLED.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from nanog1 import progress
from nanog1.encoder import distributed
from nanog1.encoder.calibration import calibrate_run, ood_reference
from nanog1.encoder.cohort_io import read
from nanog1.encoder.config import TrainConfig
from nanog1.encoder.cv import kfold_splits, split_roles, train_val_split, train_val_test_split
from nanog1.encoder.data import CohortArrays, cohort_arrays, events_not_read_record
from nanog1.encoder.inference import predict
from nanog1.encoder.input_filter import cohort_rule
from nanog1.encoder.loop import (
    MODEL,
    TRAINING_NOT_READ,
    FitResult,
    TrainingInterrupted,
    encoder_config,
    fit,
    load_model,
    loss_context,
    peek_run_id,
    prepare_events,
    save_model,
    write_json,
)
from nanog1.encoder.metrics import classification_metrics, confusion_table, per_type_report
from nanog1.errors import UserError
from nanog1.io import atomic_write_with
from nanog1.tracking import Tracker, default_tracking_uri, experiment_name


@dataclass
class TrainOutcome:
    """Where a training run ended: its MLflow run id, model URI and headline metrics."""

    run_id: str
    model_uri: str
    metrics: dict
    roles: list[str] | None = None  # obs['split'] per sample: 'train' / 'val' / 'test'


def write_reports(
    run_dir: Path, proba: np.ndarray, labels: np.ndarray, classes: list[str], prefix: str = ""
) -> list[Path]:
    """Confusion matrix and per-type report as CSV and PNG; returns the files written."""
    from nanog1.encoder.plots import confusion_png, report_png

    table = confusion_table(proba, labels, classes)
    report = per_type_report(proba, labels, classes)
    paths = [
        run_dir / f"{prefix}confusion.csv",
        run_dir / f"{prefix}confusion.png",
        run_dir / f"{prefix}per_type_report.csv",
        run_dir / f"{prefix}per_type_report.png",
    ]
    atomic_write_with(paths[0], lambda p: table.to_csv(p))
    confusion_png(table, paths[1])
    atomic_write_with(paths[2], lambda p: report.to_csv(p))
    report_png(report, paths[3])
    return paths


def _fold_fit(arrays, cfg, run_dir, train_idx, test_idx, dist_info, resume, log, stop, run_id) -> tuple:
    """Fit one fold (inner stratified validation split of its training part) or reload it when done."""
    inner_tr, inner_val = train_val_split(arrays.labels[train_idx], cfg.val_fraction, cfg.seed)
    tr, val = train_idx[inner_tr], train_idx[inner_val]
    fold_dir = Path(run_dir)
    fold_dir.mkdir(parents=True, exist_ok=True)
    result = fit(arrays, cfg, fold_dir, tr, val, dist_info, resume, log, stop, run_id)
    arrays = result.arrays  # as the model reads them (its gene bag)
    if dist_info.is_main:
        save_model(fold_dir / MODEL, result, arrays, cfg, {})
    ctx = loss_context(cfg, arrays, tr, dist_info.device)
    pred = predict(
        result.model, arrays, test_idx, ctx, dist_info.device, cfg.batch_size, cfg.max_events, cfg.amp
    )
    return result, pred


def cross_validate(
    arrays, cfg, run_dir, dist_info, resume, tracker, stop
) -> tuple[FitResult, dict, np.ndarray]:
    """k-fold CV: out-of-fold probabilities, CV metrics, and the best fold's model as the run's model."""
    oof = np.zeros((arrays.n, len(arrays.classes)), dtype=np.float32)
    best: tuple[float, FitResult] | None = None
    fold_metrics = []
    for k, (tr, te) in enumerate(kfold_splits(arrays.labels, cfg.folds, cfg.seed)):
        if dist_info.is_main:
            progress.report(f"train: fold {k + 1}/{cfg.folds} ({len(tr)} samples to fit, {len(te)} held out)")
        log = _epoch_logger(tracker, prefix=f"fold{k}_")
        run_id = tracker.run_id if tracker is not None else ""
        result, pred = _fold_fit(
            arrays, cfg, run_dir / f"fold{k}", tr, te, dist_info, resume, log, stop, run_id
        )
        if pred.proba is not None:
            oof[te] = pred.proba
            fold_metrics.append(classification_metrics(pred.proba, arrays.labels[te], arrays.classes))
        s = result.metrics.get("val_macro_f1", -result.metrics.get("val_loss", 0.0))
        if best is None or s > best[0]:
            best = (s, result)
    metrics = classification_metrics(oof, arrays.labels, arrays.classes) if fold_metrics else {}
    metrics = {f"cv_{k}": v for k, v in metrics.items()}
    for name in fold_metrics[0] if fold_metrics else []:
        metrics[f"cv_{name}_std"] = float(np.std([m[name] for m in fold_metrics]))
    return best[1], metrics, oof


def _epoch_logger(tracker: Tracker | None, prefix: str = ""):
    if tracker is None:
        return None
    return lambda epoch, row: tracker.log_metrics({f"{prefix}{k}": v for k, v in row.items()}, step=epoch)


def _log_artifacts(tracker: Tracker, run_dir: Path, result: FitResult, cfg: TrainConfig, reports: list[Path]):
    from nanog1.encoder.plots import learning_curves_png

    atomic_write_with(
        run_dir / "config.yaml", lambda p: p.write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=True))
    )
    atomic_write_with(run_dir / "history.csv", lambda p: pd.DataFrame(result.history).to_csv(p, index=False))
    learning_curves_png(result.history, run_dir / "learning_curves.png")
    for path in [run_dir / "config.yaml", run_dir / "history.csv", run_dir / "learning_curves.png", *reports]:
        tracker.log_artifact(path)


def _log_model(tracker: Tracker, model_file: Path, result: FitResult, arrays: CohortArrays,
               cfg: TrainConfig) -> None:
    """Log model.pt (weights only) with its config as JSON, registered as nanog1-<cohort>-<task> if asked.
    Load it back with `load_model(nanog1.tracking.download_model(uri))`; `CataloguePredictor` serves it."""
    config = {"encoder_config": result.encoder_config.to_dict(), "classes": list(arrays.classes),
              "signature_names": arrays.signature_names, "train_config": cfg.to_dict(),
              "format": "torch weights_only: encoder_config, state_dict, classes, channel_padding"}
    name = f"nanog1-{tracker.experiment.replace('/', '-')}" if cfg.register_model else None
    tracker.log_model(model_file, config, name)


def train_cohort(
    cohort: Path,
    run_dir: Path,
    cfg: TrainConfig,
    tracking_uri: str | None = None,
    resume: bool = True,
    stop_after_epochs: int | None = None,
) -> TrainOutcome:
    """Train on one cohort file; writes checkpoint.pt, model.pt, metrics.json and logs one MLflow run."""
    return train_adata(read(cohort), run_dir, cfg, tracking_uri, resume, stop_after_epochs, Path(cohort))


def train_adata(
    adata,
    run_dir: Path,
    cfg: TrainConfig,
    tracking_uri: str | None = None,
    resume: bool = True,
    stop_after_epochs: int | None = None,
    cohort: Path = Path("cohort.h5ad"),
) -> TrainOutcome:
    """Train on an in-memory cohort (`cohort` names it in MLflow); see :func:`train_cohort`."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    dist_info = distributed.setup()
    try:  # the cohort has what the task needs (channels, labels, exposures): say which file lacks it
        given = cohort_arrays(adata, min_class_size=cfg.min_class_size)
        arrays = prepare_events(cfg, given)
        encoder_config(cfg, arrays)
    except UserError as err:
        raise UserError(f"{cohort}: {err}") from None
    accounting = events_not_read_record(given, cfg.view)  # what prepare_events dropped from `given`
    if dist_info.is_main:
        report_left_out(accounting, "train")
    # a damaged checkpoint to resume from is told before the MLflow store is touched
    resumed_run = peek_run_id(run_dir / "fold0" if cfg.folds > 1 else run_dir) if resume else None
    tracker = None
    if dist_info.is_main:
        tracker = Tracker(
            tracking_uri or default_tracking_uri(run_dir),
            cfg.experiment or experiment_name(cohort, cfg.task),
            run_dir.parent / "mlartifacts",
        )
        tracker.start(run_id=resumed_run, run_name=run_dir.name)
    try:
        outcome = _train(arrays, cfg, cohort, run_dir, dist_info, resume, tracker, stop_after_epochs,
                         cohort_rule(adata), accounting)
    except TrainingInterrupted:
        if tracker is not None:
            tracker.end("KILLED")
        raise
    except BaseException:
        if tracker is not None:
            tracker.end("FAILED")
        raise
    finally:
        distributed.teardown()
    if tracker is not None:
        tracker.end("FINISHED")
    return outcome


def report_left_out(accounting: dict[str, int], command: str) -> None:
    """Say on the terminal/log how many calls `command` (train, finetune) left out as of a kind of call
    their tumour did not measure (`accounting`: nanog1.encoder.data.events_not_read_record); nothing when
    none was."""
    if not accounting.get("events_not_read"):
        return
    n, tumours = accounting["events_not_read"], accounting["tumours_events_not_read"]
    progress.report(f"{command}: {n:,} call(s) of {tumours} tumour(s) left out as of a kind of call the "
                    "tumour did not measure (declared --not-measured, or its files hold none), as predict "
                    "leaves them out")


def _train(arrays, cfg, cohort, run_dir, dist_info, resume, tracker, stop, input_filter=None,
           accounting: dict | None = None) -> TrainOutcome:
    run_id = tracker.run_id if tracker is not None else ""
    accounting = accounting or {}
    if tracker is not None:
        tracker.log_params(cfg.to_dict() | {"cohort": str(cohort), "n_samples": arrays.n,
                                            "n_types": len(arrays.classes)} | accounting)
    test = np.zeros(0, dtype=np.int64)
    if cfg.folds > 1:  # every sample trains some fold's model: none is held out from the saved one
        result, metrics, oof = cross_validate(arrays, cfg, run_dir, dist_info, resume, tracker, stop)
        proba, labels = oof, arrays.labels
        roles = ["train"] * arrays.n
    else:
        tr, val, test = train_val_test_split(arrays.labels, cfg.val_fraction, cfg.test_fraction, cfg.seed)
        roles = split_roles(arrays.n, tr, val, test)
        result = fit(arrays, cfg, run_dir, tr, val, dist_info, resume, _epoch_logger(tracker), stop, run_id)
        arrays = result.arrays  # as the model reads them (its gene bag)
        metrics = dict(result.metrics)
        ctx = loss_context(cfg, arrays, tr, dist_info.device)
        pred = predict(
            result.model, arrays, val, ctx, dist_info.device, cfg.batch_size, cfg.max_events, cfg.amp
        )
        proba, labels = pred.proba, arrays.labels[val]
    if not dist_info.is_main:
        return TrainOutcome(run_id="", model_uri="", metrics=metrics, roles=roles)
    reports = write_reports(run_dir, proba, labels, arrays.classes) if proba is not None else []
    if proba is not None:
        source = "out_of_fold" if cfg.folds > 1 else "validation"
        ood = ood_reference(arrays.counts, arrays.labels, cfg.val_fraction, cfg.seed)
        calib_metrics, calib_files = calibrate_run(run_dir, proba, labels, source, ood)
        metrics |= calib_metrics
        reports += calib_files
        if len(test):
            metrics |= _test_metrics(result.model, arrays, cfg, test, ctx, dist_info.device, run_dir)
    metrics |= {"n_params": result.metrics["n_params"]}
    summary = {("best_" + k[4:] if k.startswith("val_") else k): v for k, v in metrics.items()}
    tracker.log_metrics(
        {k: v for k, v in summary.items() if isinstance(v, int | float)}, step=result.best_epoch
    )
    _log_artifacts(tracker, run_dir, result, cfg, reports)
    model_uri = f"runs:/{run_id}/model"
    save_model(
        run_dir / MODEL,
        result,
        arrays,
        cfg,
        {"mlflow_run_id": run_id, "model_uri": model_uri, "tracking_uri": tracker.tracking_uri,
         "split": {"samples": list(arrays.sample_ids), "roles": roles}}
        | ({"input_filter": input_filter} if input_filter else {})  # the FILTER rule `predict` applies
        | ({TRAINING_NOT_READ: accounting} if accounting else {}),  # told by predict and models show
    )
    _log_model(tracker, run_dir / MODEL, result, arrays, cfg)
    write_json(
        run_dir / "metrics.json",
        {"run_id": run_id, "model_uri": model_uri, "metrics": metrics, "history": result.history,
         **accounting},
    )
    tracker.log_artifact(run_dir / "metrics.json")
    return TrainOutcome(run_id=run_id, model_uri=model_uri, metrics=metrics, roles=roles)


def _test_metrics(model, arrays, cfg: TrainConfig, test: np.ndarray, ctx, device, run_dir: Path) -> dict:
    """test_* metrics on the held-out test fold, with the temperature and abstention rule fitted on val."""
    from nanog1.encoder.calibration import calibrated_metrics, load_calibration

    pred = predict(model, arrays, test, ctx, device, cfg.batch_size, cfg.max_events, cfg.amp)
    if pred.proba is None:
        return {}
    labels = arrays.labels[test]
    out = classification_metrics(pred.proba, labels, arrays.classes)
    keep = ~arrays.channel_padding if arrays.row_padding is None else \
        ~(arrays.channel_padding | arrays.row_padding[test])  # each tumour's own measured sets (issue 31)
    out |= calibrated_metrics(pred.proba, arrays.counts[test], labels, load_calibration(run_dir), keep)
    return {f"test_{k}": v for k, v in out.items()} | {"test_n": int((labels >= 0).sum())}


__all__ = ["TrainOutcome", "cross_validate", "load_model", "train_cohort", "write_reports"]
