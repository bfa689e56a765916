"""Tumour-level contrastive pretraining: two views of one tumour should embed alike (SimCLR / InfoNCE).

Why: the masked-mutation objective asks a tumour's other mutations to name one hidden mutation, and
they say little about it (BENCHMARKS.md, issue 28). The typing recipe takes most of its signal from
the CLS token's whole-tumour bags (gene presence, hotspots) and summary, which masked pretraining never
trained. Here the CLS embedding itself is the pretrained object: two views of the same tumour (two
independent random windows of its events; its 0/1 bags with a random share of the *present* entries
dropped in each view; its continuous summary columns, such as consequence shares, jittered and never
dropped: `augment_view`) pass through the encoder and a small projection head; the InfoNCE loss pulls
the two views of a tumour together against every other tumour's views in the batch.
The head is discarded for fine-tuning (SimCLR: the layer before the head transfers better). Labels
are never read.

Pure torch, no genomics and no I/O: the benchmark (`benchmarks/tcga_events.py pretrain --objective
contrastive`) and the CLI (`nanog1 pretrain --objective contrastive`) build the views from their own
data and call these functions.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

#: Pretraining objectives of the event view: masked mutations (the default) or two-view contrastive.
OBJECTIVES = ("masked", "contrastive")


class ProjectionHead(nn.Module):
    """CLS embedding [B, H] -> [B, out] (Linear, ReLU, Linear): InfoNCE is taken on its output, and the
    head is dropped before fine-tuning."""

    def __init__(self, hidden: int, out: int = 64):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def info_nce(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """SimCLR's NT-Xent over a batch of B tumours: row i of `z1` and row i of `z2` are two views of one
    tumour. Each of the 2B views must pick its twin among the other 2B - 1 views (cosine similarity /
    temperature, cross-entropy); the mean over the 2B views. Needs B >= 2."""
    if z1.shape != z2.shape or z1.ndim != 2:
        shapes = f"{tuple(z1.shape)} and {tuple(z2.shape)}"
        raise ValueError(f"two views must be [B, D] of one shape; got {shapes}")
    if z1.shape[0] < 2:
        raise ValueError("a contrastive batch needs at least 2 tumours (the others are the negatives)")
    b = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]).float(), dim=-1)
    sim = z @ z.T / temperature
    sim = sim.masked_fill(torch.eye(2 * b, dtype=torch.bool, device=z.device), float("-inf"))
    twin = torch.cat([torch.arange(b, 2 * b), torch.arange(0, b)]).to(z.device)
    return F.cross_entropy(sim, twin)


@torch.no_grad()
def view_accuracy(z1: torch.Tensor, z2: torch.Tensor) -> float:
    """Share of tumours whose other view is the nearest (cosine) of the batch's second views, both ways
    averaged: the pretraining's own health, against chance 1 / B."""
    z1, z2 = F.normalize(z1.float(), dim=-1), F.normalize(z2.float(), dim=-1)
    sim = z1 @ z2.T
    target = torch.arange(len(z1), device=z1.device)
    return 0.5 * ((sim.argmax(1) == target).float().mean() + (sim.argmax(0) == target).float().mean()).item()


def drop_present(bag: torch.Tensor, rate: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """A view of a 0/1 bag [B, K]: each present entry (1) is dropped to 0 with probability `rate`; absent
    entries stay 0 (a view never gains an entry). Each call draws afresh, so two calls give two
    independent views."""
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"bag drop rate must be in [0, 1), got {rate}")
    keep = torch.rand(bag.shape, device=bag.device, generator=generator) >= rate
    return bag * keep.to(bag.dtype)


def augment_view(
    cls_inputs: torch.Tensor,
    entries: slice,
    bag_drop: float,
    noise: float,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """One view of CLS inputs [B, S] whose columns `entries` are 0/1 bag entries (genes, hotspots) and
    whose other columns are continuous summaries (shares, burdens; standardised or sd-scaled units):
    Gaussian noise (sd `noise`) on the continuous columns, then `drop_present` on the entries. A share is
    jittered, never zeroed as if it were an absent entry. Without the jitter the two views would share an
    exact summary vector and the task could be solved from it alone. The caller's layout says which
    columns are entries (the benchmark: after its summary; the product: CohortArrays.bag_entries)."""
    continuous = torch.ones(cls_inputs.shape[1], dtype=torch.bool, device=cls_inputs.device)
    continuous[entries] = False
    out = cls_inputs.clone()
    if noise > 0:
        part = cls_inputs[:, continuous]
        out[:, continuous] = part + noise * torch.randn(part.shape, device=part.device, generator=generator)
    out[:, entries] = drop_present(cls_inputs[:, entries], bag_drop, generator)
    return out
