"""`nanog1 evaluate`: predictions, class probabilities and embeddings back into the cohort, plus reports.

Writes obs['predicted_type'] ("uncertain" where the run's abstention rule applies; raw top-1 in
obs['predicted_type_raw']), obsm['proba_type'] (temperature-calibrated DataFrame, columns = types),
obs['type_confidence'], obs['type_entropy'], obsm['X_nanog1'],
obsm['predicted_exposures_<set>'] for exposure models, and, where the cohort has known types, the
metrics (JSON), confusion matrix and per-type report (CSV + PNG) beside the output file.
Several run folders make a seed ensemble (nanog1.encoder.ensemble): averaged calibrated probabilities.

What the metrics mean: obs['split'] says, per sample, what the run did with it ('train': trained on;
'val': chose the epoch, temperature and abstention threshold; 'test': never seen, either the run's
test fold or a sample the run's cohort did not hold). Metrics (and the eval_* metrics logged to the
training run, and the pipeline report) are computed on the 'test' samples of a type the model
has a class for only (one rule: nanog1.schema.scored_held_out; a type with a single tumour, or none
the run could learn, always trains: nanog1.encoder.cv); `top1_covered` is the accuracy on the
samples the abstention rule accepted, `coverage` their share, `top1_all` the accuracy on all of them.

A model that records no split (the packaged models: `nanog1 models`) cannot say which tumours it saw:
evaluate then uses the cohort's own obs['split'] column where it has one, and otherwise scores all
tumours of a known type and says so ("all N tumours (the cohort has no split column: whether the
model saw them in training is not known)"); obs['split'] is then not written, and the metrics are
logged as all_* (eval_all_* in MLflow), never as held-out ones. Where the model lists its training
tumours (a packaged model's reference.npz `sample`: every tumour it was trained or validated on),
scored tumours among them are counted (`n_scored_seen_in_training`) and warned about.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd

from nanog1.encoder.calibration import store_calibrated_types
from nanog1.encoder.cohort_io import read, write
from nanog1.encoder.embedding import model_provenance
from nanog1.encoder.ensemble import ensemble_predictions
from nanog1.encoder.loop import write_json
from nanog1.encoder.metrics import classification_metrics
from nanog1.progress import step
from nanog1.schema import CANCER_TYPE, SPLIT, SPLITS, scored_held_out


def report_prefix(out: Path) -> Path:
    """Reports go beside the output: cohort_eval.h5ad -> cohort_eval.metrics.json, .confusion.csv, ..."""
    out = Path(out)
    return out.parent / out.name.removesuffix(".h5ad")


class Metrics(dict):
    """evaluate's metrics (name -> float) plus `scored`: which tumours they score, in words."""

    scored: str = ""


def evaluate_cohort(
    cohort: Path, run_dir: Path | list[Path], out: Path, device: str = "cpu"
) -> Metrics:
    """Apply the run's model (or the ensemble of several runs) to `cohort`, write `out` and the reports.

    Returns the metrics on held-out samples (empty when none of them has a known type); where neither
    the model nor the cohort records a split, on all tumours of a known type (keys all_*, and
    `.scored` says so).
    """
    from nanog1.encoder.run import write_reports

    run_dirs = _run_dirs(run_dir)
    adata = read(cohort)
    with step(f"evaluate: {adata.n_obs} samples through {len(run_dirs)} model(s)"):
        metrics, pred, labels, saved_all = annotate(adata, run_dirs, device)
    if metrics:
        prefix = report_prefix(out)
        classes = list(saved_all[0]["classes"])
        write_reports(prefix.parent, pred.proba, labels, classes, prefix=prefix.name + ".")
    scored = str(adata.uns["nanog1_model"].get("scored", ""))
    with step(f"evaluate: wrote {out}") as shown:
        write(adata, out)
        written = metrics | ({"scored": scored} if metrics else {})
        write_json(Path(str(report_prefix(out)) + ".metrics.json"), written)
        shown |= {k: metrics[k] for k in ("top1", "macro_f1", "coverage", *ALL_PREFIXED) if k in metrics}
    if len(run_dirs) == 1:  # an ensemble's metrics belong to no single training run
        _log_to_run(saved_all[0], metrics)
    result = Metrics(metrics)
    result.scored = scored
    return result


#: metric names when the scored tumours are not known to be held out (all_top1, ...: never top1 alone)
ALL_PREFIXED = ("all_top1", "all_macro_f1", "all_coverage")
class TrainingOverlapWarning(UserWarning):
    """Some scored tumours are among those the model was trained or validated on: their scores are not
    held-out scores. `nanog1 evaluate` states it in its one 'scored:' line instead of a Python warning."""


UNKNOWN_SPLIT = "(the cohort has no split column: whether the model saw them in training is not known)"


def _run_dirs(run_dir: Path | list[Path]) -> list[Path]:
    return [Path(r) for r in run_dir] if isinstance(run_dir, (list, tuple)) else [Path(run_dir)]


def annotate(adata: ad.AnnData, run_dirs: list[Path], device: str = "cpu"):
    """Write the run(s)' predictions into `adata` (keys in the module docstring); return (held-out
    metrics, predictions, the labels scored (-1 for samples not held out), the saved model dicts)."""
    pred, saved_all, labels, calib = ensemble_predictions(adata, run_dirs, device)
    saved = saved_all[0]
    classes = list(saved["classes"])
    recorded = any((s.get("split") or {}).get("samples") for s in saved_all)
    cohort_split = SPLIT in adata.obs and adata.obs[SPLIT].notna().all() and \
        set(adata.obs[SPLIT].astype(str)) <= set(SPLITS)
    if recorded:
        roles = split_of(adata.obs_names, saved_all)
        adata.obs[SPLIT] = pd.Categorical(roles, categories=list(SPLITS))
    elif cohort_split:
        roles = list(adata.obs[SPLIT].astype(str))
    else:  # nothing says which tumours the model saw: score them all, and say so
        roles = None
    if CANCER_TYPE in adata.obs:  # score held-out samples only, by the rule the report uses too
        rows = scored_held_out(roles if roles is not None else ["test"] * adata.n_obs,
                               adata.obs[CANCER_TYPE], classes)
        labels = np.where(rows, labels, -1)
    has_types = CANCER_TYPE in adata.obs
    scored_names = adata.obs_names[np.asarray(labels) >= 0] if has_types else adata.obs_names[:0]
    seen = training_samples(run_dirs)
    n_seen = int(pd.Index(scored_names).isin(list(seen)).sum()) if seen is not None else None
    if roles is None:
        scope = f"all {len(scored_names)} tumours {UNKNOWN_SPLIT}"
    elif recorded:
        scope = f"{len(scored_names)} held-out tumours (obs['split'] == 'test', the run's split record)"
    else:
        scope = (f"{len(scored_names)} tumours the cohort's split column calls 'test' (the model records "
                 "no split)")
    if seen is None:
        scope += "; the model lists no training tumours to check them against"
    else:
        scope += f"; the model's list of the {len(seen)} tumours it was trained on (reference.npz) holds " \
            f"{n_seen} of them" + (": those are not held out" if n_seen else "")
        if n_seen:
            warnings.warn(f"evaluate: {n_seen} of the {len(scored_names)} scored tumours are among the "
                          "tumours the model was trained or validated on (its reference.npz): their scores "
                          "are not held-out scores", TrainingOverlapWarning, stacklevel=2)
    adata.obsm["X_nanog1"] = pred.embedding.astype(np.float32)
    metrics: dict[str, float] = {}
    if pred.proba is not None:
        _store_types(adata, pred.proba, classes)
        metrics = classification_metrics(pred.proba, labels, classes)
        metrics |= store_calibrated_types(adata, pred.proba, _dense(adata.X), classes, labels, calib)
        metrics |= {"n_scored": int((labels >= 0).sum())} if metrics else {}
        if metrics and n_seen is not None:
            metrics["n_scored_seen_in_training"] = n_seen
        if metrics and roles is None:  # not held-out scores: never under the held-out names
            metrics = {f"all_{k}": v for k, v in metrics.items()}
    for name, expo in pred.exposures.items():
        cols = list(saved["signature_names"].get(name, [f"{name}_{i}" for i in range(expo.shape[1])]))
        adata.obsm[f"predicted_exposures_{name}"] = pd.DataFrame(expo, index=adata.obs_names, columns=cols)
    adata.uns["nanog1_model"] = model_provenance(saved, run_dirs[0]) | {"metrics": metrics, "scored": scope}
    if len(run_dirs) > 1:
        members = [model_provenance(s, r) for s, r in zip(saved_all, run_dirs, strict=True)]
        adata.uns["nanog1_model"]["ensemble"] = {k: [m[k] for m in members] for k in members[0]}
    return metrics, pred, labels, saved_all


def split_of(samples, saved_all: list[dict]) -> list[str]:
    """Each sample's role for the run(s): 'train' if any member trained on it, else 'val' if any tuned
    on it, else 'test' (held out, or not in the training cohort at all)."""
    rank = {"test": 0, "val": 1, "train": 2}
    best = dict.fromkeys(map(str, samples), "test")
    for saved in saved_all:
        split = saved.get("split") or {}
        for sample, role in zip(split.get("samples", []), split.get("roles", []), strict=True):
            if sample in best and rank[str(role)] > rank[best[sample]]:
                best[sample] = str(role)
    return [best[str(s)] for s in samples]


def training_samples(run_dirs: list[Path]) -> set[str] | None:
    """The tumours the model(s) were trained or validated on, as listed by their reference.npz
    (`sample`: packaged models); None when no member lists them."""
    from nanog1.encoder.pretrained import reference

    seen: set[str] | None = None
    for run in run_dirs:
        ref = reference(run) if (Path(run) / "reference.npz").exists() else None
        if ref is not None and "sample" in ref:
            seen = (seen or set()) | {str(x) for x in ref["sample"]}
    return seen


def _store_types(adata: ad.AnnData, proba: np.ndarray, classes: list[str]) -> None:
    adata.obsm["proba_type"] = pd.DataFrame(proba, index=adata.obs_names, columns=classes)
    adata.obs["predicted_type"] = pd.Categorical(np.asarray(classes)[proba.argmax(1)], categories=classes)


def _dense(x) -> np.ndarray:
    """The count matrix as a dense array (cohorts may store X sparse)."""
    return np.asarray(x.toarray() if hasattr(x, "toarray") else x, dtype=np.float64)


def _log_to_run(saved: dict, metrics: dict[str, float]) -> None:
    """Add eval_* metrics to the training run when its MLflow store is the one configured now."""
    import mlflow

    run_id, uri = str(saved.get("mlflow_run_id", "")), str(saved.get("tracking_uri", ""))
    if not run_id or not uri or not metrics:
        return
    try:
        client = mlflow.MlflowClient(tracking_uri=uri)
        client.get_run(run_id)
    except mlflow.exceptions.MlflowException:
        return
    for k, v in metrics.items():
        client.log_metric(run_id, f"eval_{k}", float(v))
