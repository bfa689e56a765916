"""Seed ensembles at prediction time: several trained runs, one averaged set of predictions.

On PCAWG five thinned SAVO encoders averaged beat each member by about 2 points of top-1
(BENCHMARKS.md, "Cancer-type prediction"), so `nanog1 evaluate --run A --run B ...` offers it.
Each member's type probabilities are first calibrated with its own temperature, then averaged;
exposures are averaged (a mean of simplex points stays on the simplex); the embedding is the first
run's, as members' embedding spaces are unrelated and cannot be averaged.
"""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import numpy as np

from nanog1.encoder.calibration import apply_temperature, load_calibration
from nanog1.encoder.embedding import apply_model
from nanog1.encoder.inference import Predictions
from nanog1.errors import UserError


def ensemble_predictions(
    adata: ad.AnnData, run_dirs: list[Path], device: str = "cpu"
) -> tuple[Predictions, list[dict], np.ndarray, dict | None]:
    """Averaged predictions of `run_dirs` on `adata`: (predictions, saved dicts, labels, calibration).

    The returned calibration has temperature 1 (members are calibrated before averaging), keeps the
    first run's tumour-profile (out-of-distribution) test and, as confidence threshold, the mean of
    the members' thresholds (each chosen on its member's calibrated validation probabilities): an
    ensemble abstains as its members would, instead of accepting almost every sample.
    """
    if not run_dirs:
        raise UserError("an ensemble needs at least one run folder")
    members = [apply_model(adata, run, device) for run in run_dirs]
    first, saved_all = members[0], [m[1] for m in members]
    _check_compatible(run_dirs, saved_all)
    if len(members) == 1:
        return first[0], saved_all, first[2], load_calibration(run_dirs[0])
    probas = [_calibrated(pred.proba, run) for (pred, _, _), run in zip(members, run_dirs, strict=True)]
    proba = None if probas[0] is None else np.mean(probas, axis=0)
    exposures = {k: np.mean([m[0].exposures[k] for m in members], axis=0) for k in first[0].exposures}
    pred = Predictions(index=first[0].index, embedding=first[0].embedding, proba=proba, exposures=exposures)
    return pred, saved_all, first[2], _ensemble_calibration([load_calibration(r) for r in run_dirs])


def _calibrated(proba: np.ndarray | None, run_dir: Path) -> np.ndarray | None:
    calib = load_calibration(run_dir)
    if proba is None or calib is None:
        return proba
    return apply_temperature(proba, float(calib["temperature"]))


def _ensemble_calibration(calibs: list[dict | None]) -> dict:
    """Temperature 1, the first member's profile test, the members' mean confidence threshold."""
    rule = dict((calibs[0] or {}).get("abstention") or {})
    thresholds = [float((c or {}).get("abstention", {}).get("confidence_threshold", 0.0)) for c in calibs]
    rule["confidence_threshold"] = float(np.mean(thresholds))
    return {"temperature": 1.0, "abstention": rule}


def _check_compatible(run_dirs: list[Path], saved_all: list[dict]) -> None:
    """Members must predict the same classes with the same task; else the average is meaningless."""
    ref = saved_all[0]
    for run, saved in zip(run_dirs[1:], saved_all[1:], strict=True):
        if list(saved["classes"]) != list(ref["classes"]):
            raise UserError(f"{run}: its classes differ from those of {run_dirs[0]}; cannot average them")
        if saved["train_config"]["task"] != ref["train_config"]["task"]:
            raise UserError(
                f"{run}: task {saved['train_config']['task']!r} differs from "
                f"{ref['train_config']['task']!r} of {run_dirs[0]}"
            )
