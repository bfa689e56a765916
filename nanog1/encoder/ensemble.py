"""Seed ensembles at prediction time: several trained runs, one averaged set of predictions.

Two kinds. Run folders (`nanog1 evaluate --run A --run B`): each member calibrated with its own
temperature, probabilities averaged. A packaged model's members (`model.pt` holds member 0 as any
model does and, under `ensemble`, the other members' weights-only state dicts and the test-time
views): `member_views_proba` averages the log-probabilities of every member in every view (the full
input, and e.g. with DBS78 masked as unmeasured), and one temperature, fitted on that average's
validation output, calibrates the result.

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

from nanog1.encoder.calibration import apply_temperature, load_calibration, logits_from_proba, softmax
from nanog1.encoder.embedding import apply_model
from nanog1.encoder.inference import Predictions
from nanog1.errors import UserError

#: Test-time views a packaged ensemble may average: channel sets additionally masked as unmeasured.
VIEWS = {"full": (), "no_dbs": ("DBS78",), "no_indels": ("ID83", "ID12")}


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


def view_padding(view: str) -> np.ndarray:
    """[channels] True on the channel sets that `view` masks as unmeasured."""
    from nanog1.schema import SET_NAMES, SET_SIZES

    if view not in VIEWS:
        raise UserError(f"view {view!r}: not one of {', '.join(VIEWS)}")
    return np.isin(np.repeat(np.array(SET_NAMES), SET_SIZES), VIEWS[view])


def packaged_members(saved: dict) -> tuple[list, list[str]]:
    """(networks of members 1.., views) of a packaged model.pt; ([], ['full']) for a single model."""
    from nanog1.encoder.model import MutationEncoder, MutationEncoderConfig

    extra = saved.get("ensemble") or {}
    nets = []
    for state in extra.get("members", []):
        net = MutationEncoder(MutationEncoderConfig(**saved["encoder_config"]))
        net.load_state_dict(state)
        nets.append(net.eval())
    return nets, list(extra.get("views", ["full"]))


def member_views_proba(
    adata: ad.AnnData, name: str, networks: list, saved: dict, views: list[str]
) -> tuple[Predictions, np.ndarray | None]:
    """(Predictions of member 0 on the input as it is, probabilities from the mean over members x views
    of log-probabilities). A view that would leave no measured set is skipped. On a terminal a bar moves
    over the passes (pcawg-catalogue: 10, a minute for a cohort of 1,000 on 2 cores)."""
    from nanog1.encoder.embedding import model_arrays
    from nanog1.progress import bar

    arrays = model_arrays(adata, saved)  # built once for every member and view
    first, _, _ = apply_model(adata, Path(name), loaded=(networks[0], saved), arrays=arrays)
    if first.proba is None:
        return first, None
    logps, masked_all = [], set()
    passes = [(view, i, net) for view in views for i, net in enumerate(networks)]
    for view, i, net in bar(passes, f"{name}: members x views", total=len(passes), unit="pass"):
        if view == "full" and i == 0:
            logps.append(logits_from_proba(first.proba))
            continue
        if view in masked_all:
            continue
        seen = {**saved, "channel_padding": _as_tensor(np.asarray(saved["channel_padding"], bool)
                                                       | view_padding(view))}
        try:
            pred, _, _ = apply_model(adata, Path(name), loaded=(net, seen), arrays=arrays)
        except UserError:
            masked_all.add(view)  # this view masks every set the cohort measured: no member reads it
            continue
        logps.append(logits_from_proba(pred.proba))
    if not logps:  # no view left anything measured: the input as it is
        logps = [logits_from_proba(first.proba)]
    return first, softmax(np.mean(logps, axis=0)).astype(np.float32)


def _as_tensor(mask: np.ndarray):
    import torch

    return torch.from_numpy(np.asarray(mask, bool))
