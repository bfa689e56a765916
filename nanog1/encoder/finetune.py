"""`nanog1 finetune`: a trained encoder, a new type head for a new cohort, and the gain over scratch.

The new cohort is split into a training part and a held-out part (stratified). The pretrained
encoder gets a fresh type head for the new cohort's types (new types allowed) and is trained on the
training part, its encoder frozen or not; an identical model from random weights gets the same
budget (epochs, batches, learning rate). Both are scored on the held-out part and logged to MLflow.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from nanog1 import checkpoint as ckpt
from nanog1.encoder.cohort_io import read
from nanog1.encoder.config import TYPE_TASK, TrainConfig
from nanog1.encoder.cv import train_val_split
from nanog1.encoder.data import (
    CohortArrays,
    cohort_arrays,
    events_not_read_record,
    for_model,
    require_types,
    with_gene_bag,
)
from nanog1.encoder.distributed import DistInfo
from nanog1.encoder.inference import predict
from nanog1.encoder.loop import (
    MODEL,
    TRAINING_NOT_READ,
    FitResult,
    chosen_bag,
    load_model,
    loss_context,
    save_model,
    set_epoch,
    train_epoch,
    train_loader,
    write_json,
)
from nanog1.encoder.metrics import classification_metrics
from nanog1.encoder.model import MutationEncoder, MutationEncoderConfig
from nanog1.encoder.run import report_left_out
from nanog1.errors import UserError
from nanog1.optim import warmup_cosine

#: Parameters that belong to task heads and are not carried over from the pretrained model.
_HEADS = ("type_head.", "exposure_heads.", "projection.")  # not carried over (projection: contrastive)


@dataclass
class FinetuneConfig:
    """The fine-tuning budget and split; unset lr/batch_size take the pretrained run's values."""

    epochs: int = 10
    freeze_encoder: bool = False
    test_fraction: float = 0.3
    train_fraction: float = 1.0
    lr: float | None = None
    head_lr_scale: float = 10.0
    encoder_lr_scale: float = 1.0
    batch_size: int | None = None
    seed: int = 0
    min_class_size: int = 2
    experiment: str | None = None

    def __post_init__(self) -> None:
        if not 0.0 < self.test_fraction < 1.0:
            raise UserError(f"test_fraction must be in (0, 1), got {self.test_fraction}")
        if not 0.0 < self.train_fraction <= 1.0:
            raise UserError(f"train_fraction must be in (0, 1], got {self.train_fraction}")


@dataclass
class FinetuneOutcome:
    """Held-out metrics of the fine-tuned and the scratch model, their difference, and the MLflow run."""

    run_id: str
    finetuned: dict[str, float]
    scratch: dict[str, float]

    @property
    def gain(self) -> dict[str, float]:
        """Fine-tuned minus scratch, per metric."""
        return {k: self.finetuned[k] - self.scratch[k] for k in self.finetuned if k in self.scratch}


def split_new_cohort(labels: np.ndarray, fcfg: FinetuneConfig) -> tuple[np.ndarray, np.ndarray]:
    """(training part, held-out part) of the labelled samples; the training part cut to train_fraction."""
    known = np.flatnonzero(labels >= 0)
    tr, te = train_val_split(labels[known], fcfg.test_fraction, fcfg.seed)
    tr, te = known[tr], known[te]
    if fcfg.train_fraction < 1.0:
        keep, _ = train_val_split(labels[tr], 1.0 - fcfg.train_fraction, fcfg.seed)
        tr = tr[keep]
    return tr, te


def new_head_model(saved: dict, n_types: int, pretrained: bool, freeze_encoder: bool,
                   gene_bag: list[str] | None = None,
                   hotspots: list[str] | None = None) -> MutationEncoder:  # fmt: skip
    """The saved encoder shape with a fresh type head of `n_types`; pretrained weights when asked.
    `gene_bag`, `hotspots`: genes and sites of a fresh CLS bag (event view, for a pretrained model
    without one)."""
    fresh = {"n_types": n_types, "exposure_sizes": {}, "projection": 0}
    fresh |= {"gene_bag": gene_bag} if gene_bag else {}
    fresh |= {"hotspots": hotspots} if hotspots else {}
    ecfg = MutationEncoderConfig(**(saved["encoder_config"] | fresh))
    model = MutationEncoder(ecfg)
    if pretrained:
        encoder = {k: v for k, v in saved["state_dict"].items() if not k.startswith(_HEADS)}
        missing, unexpected = model.load_state_dict(encoder, strict=False)
        new = _HEADS + (("gene_bag.",) if gene_bag or hotspots else ())
        if unexpected or any(not k.startswith(new) for k in missing):
            raise ValueError(f"pretrained weights do not fit the encoder: {unexpected or missing}")
        torch.nn.init.zeros_(model.type_head.weight)  # a new head starts neutral on pretrained features
        torch.nn.init.zeros_(model.type_head.bias)
    if freeze_encoder:
        for name, p in model.named_parameters():
            p.requires_grad = name.startswith("type_head.")
    return model


def _lr_groups(
    model: MutationEncoder, lr: float, weight_decay: float, scales: tuple[float, float]
) -> list[dict]:
    """AdamW groups: the type head at `lr * scales[0]`, the rest at `lr * scales[1]`; no decay on 1-d."""
    head = {id(p) for p in model.type_head.parameters()}
    groups = []
    for is_head in (True, False):
        params = [p for p in model.parameters() if p.requires_grad and (id(p) in head) == is_head]
        rate = lr * (scales[0] if is_head else scales[1])
        decayed = [p for p in params if p.ndim >= 2]
        groups.append({"params": decayed, "weight_decay": weight_decay, "lr": rate})
        groups.append({"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0, "lr": rate})
    return [g for g in groups if g["params"]]


def train_with_budget(
    model: MutationEncoder,
    arrays: CohortArrays,
    cfg: TrainConfig,
    train_idx: np.ndarray,
    device,
    lr_scales: tuple[float, float] = (1.0, 1.0),
) -> list[dict]:
    """cfg.epochs passes over `train_idx` (no early stopping: the budget is the same for every model).

    `lr_scales` multiply cfg.lr for the type head and for the rest of the model (warm-up + cosine).
    """
    ckpt.seed_everything(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    loader = train_loader(arrays, train_idx, cfg, DistInfo(), gen, loader_generator=False)
    total = len(loader) * cfg.epochs
    opt = torch.optim.AdamW(_lr_groups(model, cfg.lr, cfg.weight_decay, lr_scales), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: warmup_cosine(s, int(cfg.warmup_frac * total), total)
    )
    ctx = loss_context(cfg, arrays, train_idx, device)
    history = []
    for epoch in range(cfg.epochs):
        set_epoch(loader, epoch)
        row = train_epoch(model, loader, opt, sched, ctx, cfg, device)
        history.append({"epoch": epoch, "train_loss": row["train_loss"]})
    return history


def _held_out(model, arrays, cfg, train_idx, test_idx, device) -> tuple[dict[str, float], np.ndarray]:
    ctx = loss_context(cfg, arrays, train_idx, device)
    pred = predict(model, arrays, test_idx, ctx, device, cfg.batch_size, cfg.max_events, cfg.amp)
    return classification_metrics(pred.proba, arrays.labels[test_idx], arrays.classes), pred.proba


def finetune_cohort(
    cohort: Path, from_run: Path, out: Path, fcfg: FinetuneConfig, tracking_uri: str | None = None
) -> FinetuneOutcome:
    """Fine-tune `from_run`'s encoder on `cohort`, compare with scratch, write `out` as a usable run."""
    from nanog1.encoder.calibration import calibrate_run, ood_reference
    from nanog1.tracking import Tracker, default_tracking_uri, experiment_name

    out, device = Path(out), torch.device("cpu")
    _, saved = load_model(Path(from_run) / MODEL)
    base = TrainConfig.from_dict(saved["train_config"])
    cfg = replace(
        base,
        task=TYPE_TASK,
        epochs=fcfg.epochs,
        seed=fcfg.seed,
        lr=fcfg.lr or base.lr,
        batch_size=fcfg.batch_size or base.batch_size,
        register_model=False,
    )
    arrays = cohort_arrays(read(cohort), min_class_size=fcfg.min_class_size)
    require_types(arrays, "fine-tuning", source=cohort)
    accounting = events_not_read_record(arrays, saved["encoder_config"].get("view", "catalogue"))
    arrays = for_model(arrays, saved["encoder_config"])  # event view: the pretrained run's vocabulary
    report_left_out(accounting, "finetune")
    out.mkdir(parents=True, exist_ok=True)  # only once the inputs hold what the run needs
    tr, te = split_new_cohort(arrays.labels, fcfg)
    arrays = _fresh_gene_bag(saved["encoder_config"], cfg, arrays, tr)
    tracker = Tracker(
        tracking_uri or default_tracking_uri(out),
        fcfg.experiment or experiment_name(cohort, "finetune"),
        out.parent / "mlartifacts",
    )
    run_id = tracker.start(run_name=out.name)
    try:
        if accounting:
            tracker.log_params(accounting)
        outcome, result = _compare(saved, arrays, cfg, fcfg, tr, te, device, tracker)
        proba = _held_out(result.model, arrays, cfg, tr, te, device)[1]
        calib, files = calibrate_run(
            out,
            proba,
            arrays.labels[te],
            "held_out",
            ood_reference(arrays.counts, arrays.labels, cfg.val_fraction, cfg.seed),
        )
        extra = {
            "mlflow_run_id": run_id,
            "model_uri": "",
            "tracking_uri": tracker.tracking_uri,
            "finetuned_from": str(Path(from_run).resolve()),
        } | ({TRAINING_NOT_READ: accounting} if accounting else {})  # told by predict and models show
        save_model(out / MODEL, result, arrays, cfg, extra)
        summary = _summary(outcome) | calib
        write_json(
            out / "metrics.json",
            {
                "run_id": run_id,
                "metrics": summary,
                "n_train": len(tr),
                "n_test": len(te),
                "classes": list(arrays.classes),
                **accounting,
            },
        )
        tracker.log_metrics(summary, step=cfg.epochs)
        for path in [out / "metrics.json", *files]:
            tracker.log_artifact(path)
    except BaseException:
        tracker.end("FAILED")
        raise
    tracker.end("FINISHED")
    return FinetuneOutcome(run_id, outcome.finetuned, outcome.scratch)


def _fresh_gene_bag(saved_config: dict, cfg: TrainConfig, arrays: CohortArrays, tr: np.ndarray
                    ) -> CohortArrays:  # fmt: skip
    """Event view: a model pretrained without a gene bag (masked-event pretraining has none) gets a fresh
    one for classifying, over the cfg.gene_bag genes mutated in most of the fine-tuning training part
    (and the sites in >= cfg.hotspots of its tumours)."""
    if saved_config.get("view") != "events" or _has_bag(saved_config) or not (cfg.gene_bag or cfg.hotspots):
        return arrays
    return with_gene_bag(arrays, *chosen_bag(cfg, arrays, tr))


def _has_bag(encoder_config: dict) -> bool:
    return bool(encoder_config.get("gene_bag") or encoder_config.get("hotspots"))


def _compare(saved, arrays, cfg, fcfg, tr, te, device, tracker) -> tuple[FinetuneOutcome, FitResult]:
    """Train the fine-tuned and the scratch model with one budget; score both on the held-out part."""
    tracker.log_params(
        cfg.to_dict()
        | {
            "freeze_encoder": fcfg.freeze_encoder,
            "test_fraction": fcfg.test_fraction,
            "train_fraction": fcfg.train_fraction,
            "n_train": len(tr),
            "n_test": len(te),
            "n_types": len(arrays.classes),
        }
    )
    scores, models = {}, {}
    for name, pretrained in (("finetuned", True), ("scratch", False)):
        torch.manual_seed(cfg.seed)
        freeze = fcfg.freeze_encoder and pretrained
        saved_bag = _has_bag(saved["encoder_config"])
        fresh_bag = ([], []) if saved_bag else (arrays.gene_bag_genes, arrays.gene_bag_sites)
        model = new_head_model(saved, len(arrays.classes), pretrained, freeze, *fresh_bag).to(device)
        scales = (fcfg.head_lr_scale, fcfg.encoder_lr_scale) if pretrained else (1.0, 1.0)
        for row in train_with_budget(model, arrays, cfg, tr, device, scales):
            tracker.log_metrics({f"{name}_train_loss": row["train_loss"]}, step=row["epoch"])
        scores[name], _ = _held_out(model, arrays, cfg, tr, te, device)
        models[name] = model
    result = FitResult(
        model=models["finetuned"],
        encoder_config=models["finetuned"].cfg,
        metrics={f"test_{k}": v for k, v in scores["finetuned"].items()},
    )
    return FinetuneOutcome("", scores["finetuned"], scores["scratch"]), result


def _summary(outcome: FinetuneOutcome) -> dict[str, float]:
    """Flat metrics: finetuned_*, scratch_* and gain_* on the held-out part."""
    flat = {f"finetuned_{k}": v for k, v in outcome.finetuned.items()}
    flat |= {f"scratch_{k}": v for k, v in outcome.scratch.items()}
    return flat | {f"gain_{k}": v for k, v in outcome.gain.items()}
