"""The encoder on AnnData, scanpy-style: `train`, `score`, `embed` take a cohort AnnData and write into it.

The path-level commands (`nanog1 train` / `evaluate` / `embed`, the Snakemake rules) read a file, call
the same code and write the file. Keys written (nanog1.schema names them):

* `train(adata, run_dir)`: obs['split'] ('train' / 'val' / 'test': what the run did with each sample);
  the run folder (model.pt, metrics.json, calibration) and one MLflow run.
* `score(adata, run)`: obs['predicted_type'] ('uncertain' where the run abstains),
  obs['predicted_type_raw'], obs['type_confidence'], obs['type_entropy'], obs['split'],
  obsm['proba_type'] (calibrated), obsm['X_nanog1'], obsm['predicted_exposures_<set>'] (exposure
  models) and uns['nanog1_model'] (run provenance and the metrics on held-out samples).
* `embed(adata, run)`: obsm[key_added] (float32 [n_samples, hidden]) and uns['nanog1_model'] (with
  another `key_added` than 'X_nanog1': uns['<key_added>_model']).

Read-only helpers for analysis (they write nothing): `run_info(run)` (the run's TrainConfig, classes and
MLflow ids), `features(adata, kind)` (the baselines' 'catalogue' or 'exposures' features),
`type_metrics(adata, key, mask)` (top-1, macro-F1, ... of obsm[key] against obs['cancer_type']) and
`baseline_scores(adata, train, test)` (the classical baselines fitted on one set of rows, scored on another).

Every model reads, per tumour, only the channel sets that tumour measured (`obsm['measured_sets']`,
nanog1.schema.measured_sets_per_sample; the others are key-padded, never read as zero mutations).
`nanog1.encoder.predict` also writes obs['channel_sets_scored'] / obs['channel_sets_masked'] ('+'-joined
sets each tumour was read with / had masked of those the model reads) and states the masking in
uns['nanog1_predict'] (nanog1.encoder.predictor).

`run` is a run folder of `nanog1 train` (holding model.pt) or a packaged model's name (`pcawg-catalogue`,
`nanog1 models list`) when no folder of that name exists here, as `nanog1 evaluate/embed --run` take it.

`key_added` puts a second model's results beside the first: with `score(..., key_added='m2')` every
key above is written as 'm2_<key>' (obs 'm2_predicted_type', obsm 'm2_proba_type', uns 'm2_model').
`copy=True` leaves `adata` untouched and returns a new AnnData; otherwise `adata` is written in place
and returned.
"""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd

from nanog1.encoder import pretrained
from nanog1.encoder.config import TrainConfig
from nanog1.errors import UserError
from nanog1.schema import EMBEDDING, SPLIT, SPLITS, require_anndata

#: obs / obsm keys that `score` writes (besides predicted_exposures_<set>).
PREDICT_OBS = ("predicted_type", "predicted_type_raw", "type_confidence", "type_entropy", SPLIT)
PREDICT_OBSM = ("proba_type", EMBEDDING)


def train(adata: ad.AnnData, run_dir: Path | str, config: TrainConfig | None = None,
          tracking_uri: str | None = None, resume: bool = True, copy: bool = False):
    """Train the encoder on `adata` into `run_dir`; writes obs['split']. Returns (adata, TrainOutcome)."""
    require_anndata(adata, "train")
    from nanog1.encoder.run import train_adata

    adata = adata.copy() if copy else adata
    outcome = train_adata(adata, Path(run_dir), config or TrainConfig(), tracking_uri, resume)
    if outcome.roles is not None:
        adata.obs[SPLIT] = pd.Categorical(outcome.roles, categories=list(SPLITS))
    return adata, outcome


def score(adata: ad.AnnData, run: Path | str | list, key_added: str | None = None, copy: bool = False,
            device: str = "cpu") -> ad.AnnData:
    """The run's (or an ensemble's, given several run folders) predictions written into `adata`."""
    require_anndata(adata, "score")
    from nanog1.encoder.evaluate import _run_dirs, annotate

    target = adata.copy() if copy else adata
    work = target if key_added is None else target.copy()
    annotate(work, [pretrained.run_folder(r) for r in _run_dirs(run)], device)
    if key_added is not None:
        for key in PREDICT_OBS:
            if key in work.obs:
                target.obs[f"{key_added}_{key}"] = work.obs[key].to_numpy()
        for key in [*PREDICT_OBSM, *[k for k in work.obsm if k.startswith("predicted_exposures_")]]:
            if key in work.obsm:
                target.obsm[f"{key_added}_{key}"] = work.obsm[key]
        target.uns[f"{key_added}_model"] = work.uns["nanog1_model"]
    return target


def embed(adata: ad.AnnData, run: Path | str, key_added: str = EMBEDDING, copy: bool = False,
          device: str = "cpu") -> ad.AnnData:
    """The run's pooled embeddings in obsm[key_added] and its provenance in uns['nanog1_model'] (under
    another key than 'X_nanog1': uns[key_added + '_model'], leaving the first model's record alone)."""
    require_anndata(adata, "embed")
    from nanog1.encoder.embedding import apply_model, model_provenance

    adata = adata.copy() if copy else adata
    run = pretrained.run_folder(run)
    pred, saved, _ = apply_model(adata, run, device)
    adata.obsm[key_added] = pred.embedding.astype(np.float32)
    provenance = model_provenance(saved, run)
    record = "nanog1_model" if key_added == EMBEDDING else f"{key_added}_model"  # beside the first model's
    prior = dict(adata.uns.get(record, {}))  # score's metrics / ensemble, if from this run
    adata.uns[record] = (prior if prior.get("run_dir") == provenance["run_dir"] else {}) | provenance
    return adata


def run_info(run: Path | str) -> dict:
    """What a run folder's model.pt records: 'config' (its TrainConfig), 'classes', 'mlflow_run_id',
    'model_uri' and, where it records it, 'training_events_not_read' (the calls its training left out as of
    a kind of call the tumour did not measure: nanog1.encoder.data.events_not_read_record)."""
    from nanog1.encoder.loop import MODEL, load_model
    from nanog1.encoder.predictor import training_not_read_record

    _, saved = load_model(pretrained.run_folder(run) / MODEL)
    return {"config": TrainConfig.from_dict(saved["train_config"]), "classes": list(saved.get("classes", [])),
            "mlflow_run_id": str(saved.get("mlflow_run_id", "")),
            "model_uri": str(saved.get("model_uri", ""))} | training_not_read_record(saved)


def run_folder_card(run: Path | str) -> dict:
    """For a run folder without card.json (any `nanog1 train` run: only packaged models have one), what its
    model.pt and metrics.json record (`nanog1 models show RUN`): its types, settings and metrics, instead of
    an empty card. A metrics.json that is not JSON is a UserError naming it."""
    import dataclasses
    import json

    folder = pretrained.resolve(run)
    info = run_info(folder)
    card = {"name": str(folder), "card": "none (a run folder): what its model.pt and metrics.json record",
            "classes": info["classes"], "mlflow_run_id": info["mlflow_run_id"],
            "model_uri": info["model_uri"], "train_config": dataclasses.asdict(info["config"])}
    metrics = folder / "metrics.json"
    if metrics.exists():
        try:
            card["metrics"] = dict(json.loads(metrics.read_text()).get("metrics", {}))
        except (json.JSONDecodeError, AttributeError, TypeError, ValueError) as err:
            raise UserError(f"{metrics}: not a readable metrics.json ({err})") from None
    return card


def features(adata: ad.AnnData, kind: str = "catalogue") -> np.ndarray | None:
    """The classical baselines' features per sample: 'catalogue' (each measured set's channel proportions
    and log1p burden) or 'exposures' (each fitted set's exposure proportions and log1p burden; None when
    the cohort has no obsm['exposures_<set>'])."""
    require_anndata(adata, "features")
    from nanog1.encoder.baselines import catalogue_features, exposure_features
    from nanog1.encoder.data import cohort_arrays

    arrays = cohort_arrays(adata, min_class_size=1)
    if kind == "catalogue":
        return catalogue_features(arrays.counts, arrays.shared_padding)
    if kind == "exposures":
        return exposure_features(arrays)
    raise UserError(f"features: kind must be 'catalogue' or 'exposures', not {kind!r}")


def type_labels(adata: ad.AnnData, classes: list[str] | None = None) -> tuple[np.ndarray, list[str]]:
    """obs['cancer_type'] as integer codes into `classes` (default: every type present), -1 where unlabelled
    or not one of `classes`; returns (codes, classes)."""
    require_anndata(adata, "type_labels")
    from nanog1.encoder.data import cohort_arrays

    arrays = cohort_arrays(adata, classes=classes, min_class_size=1)
    return arrays.labels, list(arrays.classes)


def type_metrics(adata: ad.AnnData, key: str = "proba_type", mask: np.ndarray | None = None
                 ) -> dict[str, float]:
    """top-1, top-3, macro-F1 and balanced accuracy of the probabilities obsm[key] (columns: the types)
    against obs['cancer_type'], on the labelled samples of `mask` (default: all)."""
    require_anndata(adata, "type_metrics")
    from nanog1.encoder.metrics import classification_metrics

    if key not in adata.obsm:
        raise UserError(f"type_metrics: no obsm[{key!r}] (obsm holds: {', '.join(adata.obsm) or 'nothing'});"
                        " score or predict the cohort first")
    proba = adata.obsm[key]
    labels, classes = type_labels(adata, [str(c) for c in proba.columns])
    rows = np.ones(adata.n_obs, bool) if mask is None else np.asarray(mask, bool)
    return classification_metrics(np.asarray(proba)[rows], labels[rows], classes)


def baseline_scores(adata: ad.AnnData, train: np.ndarray, test: np.ndarray, classes: list[str] | None = None,
                    seed: int = 0) -> pd.DataFrame:
    """Each classical baseline (logistic regression, random forest, gradient boosting) on each feature set,
    fitted on the labelled rows of the boolean mask `train`, scored on those of `test`; one row of metrics
    per 'model[features]'. `nanog1 baselines` runs the same models in k-fold CV."""
    require_anndata(adata, "baseline_scores")
    from nanog1.encoder.baselines import classifiers, oof_proba
    from nanog1.encoder.metrics import classification_metrics

    labels, classes = type_labels(adata, classes)
    tr, te = np.flatnonzero(np.asarray(train, bool)), np.flatnonzero(np.asarray(test, bool))
    rows = {}
    for kind in ("catalogue", "exposures"):
        x = features(adata, kind)
        if x is None:
            continue
        for name, make in classifiers(seed=seed).items():
            proba = oof_proba(make, x, labels, len(classes), [(tr, te)], f"{name}[{kind}]")
            rows[f"{name}[{kind}]"] = classification_metrics(proba[te], labels[te], classes)
    return pd.DataFrame.from_dict(rows, orient="index")
