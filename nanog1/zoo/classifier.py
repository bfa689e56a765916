"""The classifiers' shared run (vision, audio): stratified split, epochs, accuracy, checkpoint, MLflow.

A classifier's data is a tuple of tensors indexed by sample on their first axis (``model(*inputs)``
gives logits): images for vision, (log-mel, frame counts) for audio. The held-out test split is
stratified and never used for model selection nor augmented; chance accuracy (the largest class
share of the test split) is logged beside the test accuracy.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.model_selection import train_test_split
from torch import nn

from nanog1.optim import build_optimizer
from nanog1.progress import report
from nanog1.tracking import flat_params, tracked_run
from nanog1.zoo.loop import evaluating, finish_run, optimise

Inputs = tuple[torch.Tensor, ...]


@dataclass
class ClassifierTrainConfig:
    """Optimisation and split settings every classifier run shares."""

    epochs: int = 20
    batch_size: int = 32
    lr: float = 3e-3
    weight_decay: float = 0.05
    warmup_frac: float = 0.05
    test_fraction: float = 0.2
    seed: int = 0
    experiment: str = "classifier"


@dataclass
class ClassifierData:
    """Inputs (tensors indexed by sample), integer labels, class names, skipped files by reason."""

    inputs: Inputs
    labels: np.ndarray
    class_names: list[str]
    noun: str = "items"
    skipped: dict[str, int] = field(default_factory=dict)


@dataclass
class ClassifierResult:
    """Held-out and chance accuracy, training items/s, MLflow run id and checkpoint path."""

    test_accuracy: float
    chance_accuracy: float
    items_per_s: float
    run_id: str
    checkpoint: Path


def take(inputs: Inputs, idx: torch.Tensor) -> Inputs:
    """The samples ``idx`` of every input tensor."""
    return tuple(x[idx] for x in inputs)


@torch.no_grad()
def accuracy(model: nn.Module, inputs: Inputs, labels: torch.Tensor, batch_size: int = 256) -> float:
    """Fraction of samples whose arg-max class is the label."""
    chunks = zip(*(x.split(batch_size) for x in inputs), strict=True)
    with evaluating(model):
        preds = torch.cat([model(*chunk).argmax(-1) for chunk in chunks])
    return float((preds == labels).float().mean())


def epoch_batches(inputs: Inputs, labels: torch.Tensor, batch_size: int, generator: torch.Generator,
                  augment: Callable[[Inputs], Inputs] | None = None):
    """One shuffled pass: (inputs, labels) batches, ``augment`` applied to each batch's inputs."""
    for idx in torch.randperm(len(labels), generator=generator).split(batch_size):
        batch = take(inputs, idx)
        yield (augment(batch) if augment is not None else batch), labels[idx]


def train_classifier(model: nn.Module, data: ClassifierData, cfg: ClassifierTrainConfig, out: Path,
                     save: Callable[[Path, nn.Module, dict], None], tracking_uri: str | None = None,
                     augment: Callable[[Inputs, torch.Generator], Inputs] | None = None) -> ClassifierResult:
    """Train ``model`` on a stratified split of ``data``; ``save`` writes ``out``/model.pt; one MLflow run."""
    tr, te = train_test_split(np.arange(len(data.labels)), test_size=cfg.test_fraction,
                              stratify=data.labels, random_state=cfg.seed)
    tr, te = torch.from_numpy(tr), torch.from_numpy(te)
    labels = torch.from_numpy(data.labels)
    train_x, test_x = take(data.inputs, tr), take(data.inputs, te)
    steps = cfg.epochs * -(-len(tr) // cfg.batch_size)
    opt, sched = build_optimizer(model, cfg.lr, cfg.weight_decay, int(cfg.warmup_frac * steps), steps)
    gen = torch.Generator().manual_seed(cfg.seed)
    aug = (lambda batch: augment(batch, gen)) if augment is not None else None
    chance = float(np.bincount(data.labels[te.numpy()]).max() / len(te))
    params = flat_params(asdict(cfg)) | {f"train_{data.noun}": len(tr), f"test_{data.noun}": len(te),
                                         "parameters": sum(p.numel() for p in model.parameters()),
                                         **{f"skipped.{k}": v for k, v in data.skipped.items()}}

    def loss(batch: tuple[Inputs, torch.Tensor]) -> torch.Tensor:
        x, y = batch
        return F.cross_entropy(model(*x), y)

    with tracked_run(out, cfg.experiment, tracking_uri, params) as tracker:
        seconds = 0.0
        for epoch in range(1, cfg.epochs + 1):
            done = optimise(model, epoch_batches(train_x, labels[tr], cfg.batch_size, gen, aug), loss,
                            opt, sched, desc=f"epoch {epoch}/{cfg.epochs}",
                            total=math.ceil(len(tr) / cfg.batch_size))
            seconds += done.seconds
            tracker.log_metrics({"train_loss": done.mean()}, epoch)
            report(f"epoch {epoch}/{cfg.epochs}  train_loss {done.mean():.4g}  ({done.seconds:.1f} s)")
        per_s = cfg.epochs * len(tr) / seconds
        metrics = {"test_accuracy": accuracy(model, test_x, labels[te]),
                   "train_accuracy": accuracy(model, train_x, labels[tr]),
                   "chance_accuracy": chance, f"train_{data.noun}_per_s": per_s}
        ckpt = finish_run(tracker, out, metrics, cfg.epochs, lambda path: save(path, model, metrics))
        return ClassifierResult(metrics["test_accuracy"], chance, per_s, tracker.run_id, ckpt)
