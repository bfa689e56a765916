"""AdamW with a linear warm-up then cosine decay, as a standard LambdaLR (its state resumes exactly)."""

from __future__ import annotations

import math

import torch
from torch import nn


def warmup_cosine(step: int, warmup: int, total: int, floor: float = 0.05) -> float:
    """Learning-rate multiplier: linear 0->1 over `warmup` steps, then cosine 1->floor at `total`."""
    if step < warmup:
        return (step + 1) / max(1, warmup)
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def build_optimizer(
    model: nn.Module, lr: float, weight_decay: float, warmup: int, total: int, **adamw
) -> tuple[torch.optim.AdamW, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW (no decay on biases, norms and embeddings' 1-d params) and its warm-up/cosine schedule.
    `adamw`: further AdamW options (e.g. capturable/fused for a CUDA-graphed step, nanog1.core.step_graph)."""
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}], lr=lr,
        **adamw,
    )
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: warmup_cosine(s, warmup, total))
    return opt, sched
