"""`nanog1 embed`: run a trained model over a cohort and store its pooled embeddings in obsm['X_nanog1']."""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import numpy as np
import torch

from nanog1.encoder.cohort_io import read, write
from nanog1.encoder.config import TrainConfig
from nanog1.encoder.data import cohort_arrays, for_model
from nanog1.encoder.inference import LossContext, Predictions, predict
from nanog1.encoder.loop import MODEL, load_model
from nanog1.errors import UserError
from nanog1.schema import SET_NAMES, SET_SIZES


def apply_model(
    adata: ad.AnnData, run_dir: Path, device: str = "cpu", loaded: tuple[torch.nn.Module, dict] | None = None,
    arrays=None,
) -> tuple[Predictions, dict, np.ndarray]:
    """The run's predictions on every sample, the saved model dict, and labels in the model's classes.

    `loaded` is the run's (model, saved dict) from `load_model`, when the caller keeps it in memory; then
    `run_dir` only names the model in messages. `arrays` (`model_arrays` of this adata and model) saves
    building them again when several members of one ensemble score the same cohort.
    """
    model, saved = loaded if loaded is not None else load_model(Path(run_dir) / MODEL, device)
    cfg = TrainConfig.from_dict(saved["train_config"])
    arrays = model_arrays(adata, saved) if arrays is None else arrays
    padding = scoring_padding(arrays.channel_padding, saved["channel_padding"].numpy(), source=str(run_dir))
    ctx = LossContext(task=cfg.task, view=cfg.view, channel_padding=torch.from_numpy(padding).to(device))
    pred = predict(
        model, arrays, np.arange(arrays.n), ctx, torch.device(device), cfg.batch_size, cfg.max_events, cfg.amp
    )
    return pred, saved, arrays.labels


def model_arrays(adata: ad.AnnData, saved: dict):
    """The cohort's arrays as the saved model reads them (its classes; the event view in its vocabulary)."""
    arrays = cohort_arrays(adata, classes=list(saved["classes"]) or None, min_class_size=1)
    return for_model(arrays, saved["encoder_config"])


def scoring_padding(cohort: np.ndarray, trained: np.ndarray, source: str = "the model") -> np.ndarray:
    """Channels masked when scoring: the sets the cohort did not measure, plus those the model never read.

    The cohort's own record decides what was measured (never the training run's sets, never zeros).
    Refuses a cohort that shares no measured set with the model: there would be nothing to read.
    """
    cohort, trained = np.asarray(cohort, bool), np.asarray(trained, bool)
    padding = cohort | trained
    if padding.all():
        raise UserError(
            f"the cohort measured {_set_names(~cohort) or 'no channel set'} but {source} reads only "
            f"{_set_names(~trained)}: nothing in common to score; re-ingest with a set the model reads"
        )
    return padding


def _set_names(keep: np.ndarray) -> str:
    """'SBS96+DBS78' for the sets whose channels are all True in `keep`."""
    names, start = [], 0
    for name, n in zip(SET_NAMES, SET_SIZES, strict=True):
        if keep[start : start + n].all():
            names.append(name)
        start += n
    return "+".join(names)


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
    """Write a copy of the cohort with obsm['X_nanog1'] (float32 [n_samples, hidden]); see api.embed."""
    from nanog1.encoder.api import embed

    adata = embed(read(cohort), run_dir, device=device)
    write(adata, out)
    return adata
