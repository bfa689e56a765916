"""`nanog1 embed`: run a trained model over a cohort and store its pooled embeddings in obsm['X_nanog1']."""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import numpy as np
import torch

from nanog1.encoder.cohort_io import read, write
from nanog1.encoder.config import TrainConfig
from nanog1.encoder.data import cohort_arrays
from nanog1.encoder.inference import LossContext, Predictions, predict
from nanog1.encoder.loop import MODEL, load_model


def apply_model(
    adata: ad.AnnData, run_dir: Path, device: str = "cpu"
) -> tuple[Predictions, dict, np.ndarray]:
    """The run's predictions on every sample, the saved model dict, and labels in the model's classes."""
    model, saved = load_model(Path(run_dir) / MODEL, device)
    cfg = TrainConfig.from_dict(saved["train_config"])
    arrays = cohort_arrays(adata, classes=list(saved["classes"]) or None, min_class_size=1)
    ctx = LossContext(task=cfg.task, view=cfg.view, channel_padding=saved["channel_padding"].to(device))
    pred = predict(
        model, arrays, np.arange(arrays.n), ctx, torch.device(device), cfg.batch_size, cfg.max_events, cfg.amp
    )
    return pred, saved, arrays.labels


def model_provenance(saved: dict, run_dir: Path) -> dict:
    """What uns['nanog1_model'] records: the MLflow run id, model URI and the run folder."""
    return {
        "mlflow_run_id": str(saved.get("mlflow_run_id", "")),
        "model_uri": str(saved.get("model_uri", "")),
        "run_dir": str(Path(run_dir).resolve()),
        "task": saved["train_config"]["task"],
        "mixer": saved["encoder_config"]["mixer"],
    }


def embed_cohort(cohort: Path, run_dir: Path, out: Path, device: str = "cpu") -> ad.AnnData:
    """Write a copy of the cohort with obsm['X_nanog1'] (float32 [n_samples, hidden])."""
    adata = read(cohort)
    pred, saved, _ = apply_model(adata, run_dir, device)
    adata.obsm["X_nanog1"] = pred.embedding.astype(np.float32)
    provenance = model_provenance(saved, run_dir)
    prior = dict(adata.uns.get("nanog1_model", {}))  # evaluate's metrics / ensemble, if from this run
    adata.uns["nanog1_model"] = (prior if prior.get("run_dir") == provenance["run_dir"] else {}) | provenance
    write(adata, out)
    return adata
