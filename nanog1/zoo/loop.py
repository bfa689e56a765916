"""The zoo's one optimisation loop: a step per batch, gradient clipping, per-step losses, timing.

Every zoo model trains through :func:`optimise`; what differs between them is only where batches
come from and what their loss is. The classifiers (vision, audio) add their epochs, split and
accuracy in :mod:`nanog1.zoo.classifier`; the LM and the world model draw random windows.
Evaluation runs inside :func:`evaluating`, and every run ends in :func:`finish_run`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from nanog1.progress import bar

if TYPE_CHECKING:  # mlflow loads with nanog1.tracking; models that only evaluate need not
    from nanog1.tracking import Tracker

LossFn = Callable[[Any], "torch.Tensor | dict[str, torch.Tensor]"]


@contextmanager
def evaluating(model: nn.Module) -> Iterator[nn.Module]:
    """``model`` in eval mode inside the block; its mode before comes back after it, also on an error."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def finish_run(tracker: Tracker, out: Path, metrics: dict[str, float], step: int,
               save: Callable[[Path], None]) -> Path:
    """``save`` writes ``out``/model.pt; the final metrics are logged at ``step``, the file as artifact."""
    ckpt = Path(out) / "model.pt"
    save(ckpt)
    tracker.log_metrics(metrics, step)
    tracker.log_artifact(ckpt)
    return ckpt


@dataclass
class Steps:
    """What :func:`optimise` did: seconds spent stepping (callbacks excluded) and each step's losses."""

    seconds: float = 0.0
    losses: list[dict[str, float]] = field(default_factory=list)

    @property
    def last(self) -> dict[str, float]:
        """The last step's losses ({} before any step)."""
        return self.losses[-1] if self.losses else {}

    def mean(self, key: str = "total") -> float:
        """Mean of one loss over the steps taken (NaN when none)."""
        return float(np.mean([s[key] for s in self.losses])) if self.losses else float("nan")


def optimise(model: nn.Module, batches: Iterable[Any], loss_fn: LossFn, opt: torch.optim.Optimizer,
             sched: torch.optim.lr_scheduler.LRScheduler, grad_clip: float | None = None,
             on_step: Callable[[int, dict[str, float]], None] | None = None, first_step: int = 1,
             desc: str | None = None, total: int | None = None) -> Steps:
    """One optimiser step per batch; ``loss_fn`` returns a scalar or a dict with a 'total' entry.

    ``on_step(step, losses)`` runs after each step (evaluation, logging) and is not timed. With `desc`, a
    bar over the batches (`total` of them) shows on a terminal (nanog1.progress; never in logs or quiet).
    """
    steps = Steps()
    model.train()
    batches = bar(batches, desc, total=total, unit="batch") if desc else batches
    for step, batch in enumerate(batches, start=first_step):
        start = time.perf_counter()
        out = loss_fn(batch)
        losses = out if isinstance(out, dict) else {"total": out}
        opt.zero_grad(set_to_none=True)
        losses["total"].backward()
        if grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        opt.step()
        sched.step()
        steps.losses.append({k: v.item() for k, v in losses.items()})
        steps.seconds += time.perf_counter() - start
        if on_step is not None:
            on_step(step, steps.last)
    return steps
