"""Batched forward passes: the task loss of one batch, and predictions for a set of samples."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import DataLoader

from nanog1.encoder import losses
from nanog1.encoder.config import TYPE_TASKS
from nanog1.encoder.contrastive import info_nce
from nanog1.encoder.contrastive import view_accuracy as contrastive_accuracy
from nanog1.encoder.data import CohortArrays, Collate, IndexDataset
from nanog1.encoder.model import MutationEncoder


@dataclass
class LossContext:
    """Fixed tensors the loss needs: class weights, signature matrices, channel padding."""

    task: str
    view: str
    channel_padding: torch.Tensor
    class_weights: torch.Tensor | None = None
    logit_offsets: torch.Tensor | None = None  # logit adjustment: tau * log prior, added in the loss only
    label_smoothing: float = 0.0  # cancer-type loss (losses.type_loss)
    signatures: dict[str, torch.Tensor] = field(default_factory=dict)
    mask_fraction: float = 0.15
    recon_weight: float = 0.5
    gene_top_k: int = 0  # event view: the masked-gene head's K (its K + 1 classes: the K commonest + other)
    gene_weights: torch.Tensor | None = None  # event view: weights of those K + 1 classes
    objective: str = "masked"  # pretraining: masked events or two views (nanog1.encoder.contrastive)
    temperature: float = 0.1
    view_drop: float = 0.4
    view_noise: float = 0.5

    @property
    def contrastive(self) -> bool:
        """Pretraining by two views (batches carry `view2`) rather than masked events."""
        return self.task in ("pretrain", "multitask") and self.objective == "contrastive"


def autocast(device: torch.device, enabled: bool):
    """bf16 autocast on CUDA; a no-op context on CPU."""
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def to_device(batch: dict, device: torch.device) -> dict:
    """Move every tensor of a (nested) batch dict."""
    return {
        k: to_device(v, device) if isinstance(v, dict) else v.to(device) if torch.is_tensor(v) else v
        for k, v in batch.items()
    }


def _padding(batch: dict, ctx: LossContext) -> torch.Tensor:
    if ctx.view == "events":
        return batch["event_padding"]
    return set_padding(batch, ctx)


def set_padding(batch: dict, ctx: LossContext) -> torch.Tensor:
    """[B, N_CHANNELS] True on the channels not read for each tumour: those the model or cohort never
    read (ctx.channel_padding), the tumour's own unmeasured sets and set dropout (batch['set_padding']).
    The catalogue view key-pads them; the event view hides them from its CLS summary (issue 31)."""
    padding = ctx.channel_padding.unsqueeze(0).expand(batch["counts"].shape[0], -1)
    return padding | batch["set_padding"] if "set_padding" in batch else padding


def _encode(model: torch.nn.Module, batch: dict, ctx: LossContext, token_mask: torch.Tensor | None = None,
            padding: torch.Tensor | None = None):
    """The model's forward pass on one batch (or one view of it): counts, padding (the batch's own unless
    given), events and bag; the event view's summary mask (`set_padding`)."""
    padding = _padding(batch, ctx) if padding is None else padding
    hidden = set_padding(batch, ctx) if ctx.view == "events" else None
    return model(counts=batch["counts"], padding_mask=padding, token_mask=token_mask,
                 events=batch.get("events"), gene_bag=batch.get("gene_bag"),
                 summary_mask=hidden)  # fmt: skip


def batch_loss(
    model: torch.nn.Module, batch: dict, ctx: LossContext
) -> tuple[torch.Tensor, dict[str, float]]:
    """The task's loss on one batch (multitask = sum of all three), with its parts for logging."""
    total, parts = batch_loss_parts(model, batch, ctx)
    return total, {k: float(v.detach()) for k, v in parts.items()}


def batch_loss_parts(
    model: torch.nn.Module, batch: dict, ctx: LossContext
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """:func:`batch_loss` with its parts left on the device (no host sync: a graphed training step)."""
    padding = _padding(batch, ctx)
    pretrain = ctx.task in ("pretrain", "multitask") and not ctx.contrastive
    token_mask = losses.draw_token_mask(padding, ctx.mask_fraction) if pretrain else None
    out = _encode(model, batch, ctx, token_mask, padding)
    parts: dict[str, torch.Tensor] = {}
    if ctx.contrastive:
        z1, z2 = _projected_views(model, batch, ctx, out)
        parts["loss_contrastive"] = info_nce(z1, z2, ctx.temperature)
    if ctx.task in TYPE_TASKS:
        parts["loss_type"] = losses.type_loss(out, batch["labels"], ctx.class_weights, ctx.logit_offsets,
                                             ctx.label_smoothing)
    if ctx.task in ("exposures", "multitask"):
        parts["loss_exposures"] = losses.exposure_loss(
            out, batch["exposures"], batch["counts"], ctx.signatures, ctx.recon_weight
        )
    if pretrain:
        if ctx.view == "events":
            targets = losses.masked_targets(batch["events"], token_mask, ctx.gene_top_k)
            parts["loss_masked"] = losses.masked_event_loss(out.masked_logits, targets, ctx.gene_weights)
        else:
            parts["loss_masked"] = losses.masked_catalogue_loss(out, batch["counts"], token_mask)
    return sum(parts.values()), parts


def _projected_views(model, batch: dict, ctx: LossContext, out) -> tuple[torch.Tensor, torch.Tensor]:
    """Projection-head outputs of the batch's two views (`out`: the first view's forward pass)."""
    out2 = _encode(model, batch["view2"], ctx)
    proj = (model.module if hasattr(model, "module") else model).projection
    return proj(out.embedding), proj(out2.embedding)


def _eval_batches(
    arrays: CohortArrays, indices: np.ndarray, ctx: LossContext, batch_size: int, max_events: int,
    views: bool = False,
) -> DataLoader:
    """Batches of `indices` in order, events picked deterministically (with `views` and a contrastive
    context: two random views of each tumour, as in training)."""
    two = views and ctx.contrastive
    collate = Collate(arrays, ctx.view, max_events, train=False, views=2 if two else 1,
                      view_drop=ctx.view_drop if two else 0.0,
                      view_noise=ctx.view_noise if two else 0.0)  # fmt: skip
    return DataLoader(IndexDataset(indices), batch_size=batch_size, shuffle=False, collate_fn=collate)


@dataclass
class Predictions:
    """Per-sample outputs in the order of the requested indices."""

    index: np.ndarray
    embedding: np.ndarray
    proba: np.ndarray | None
    exposures: dict[str, np.ndarray]


@torch.no_grad()
def predict(
    model: MutationEncoder,
    arrays: CohortArrays,
    indices: np.ndarray,
    ctx: LossContext,
    device: torch.device,
    batch_size: int = 64,
    max_events: int = 2048,
    amp: bool = True,
) -> Predictions:
    """Embeddings, type probabilities and exposure proportions of `indices` (eval mode, no masking)."""
    model.eval()
    emb, proba, expo = [], [], {}
    for batch in _eval_batches(arrays, indices, ctx, batch_size, max_events):
        batch = to_device(batch, device)
        with autocast(device, amp):
            out = _encode(model, batch, ctx)
        emb.append(out.embedding.float().cpu())
        if out.type_logits is not None:
            proba.append(torch.softmax(out.type_logits.float(), -1).cpu())
        for k, v in out.exposure_logp.items():
            expo.setdefault(k, []).append(v.exp().cpu())
    return Predictions(
        index=np.asarray(indices),
        embedding=_cat(emb) if emb else np.zeros((0, model.cfg.hidden), np.float32),
        proba=_cat(proba),
        exposures={k: _cat(v) for k, v in expo.items()},
    )


def _cat(parts: list[torch.Tensor]) -> np.ndarray | None:
    return torch.cat(parts).numpy() if parts else None


@torch.no_grad()
def mean_loss(model, arrays, indices, ctx, device, batch_size=64, max_events=2048, amp=True) -> float:
    """Average task loss over `indices` (eval mode); pretraining masks come from the global RNG."""
    model.eval()
    total, n = 0.0, 0
    for batch in _eval_batches(arrays, indices, ctx, batch_size, max_events, views=True):
        batch = to_device(batch, device)
        with autocast(device, amp):
            loss, _ = batch_loss(model, batch, ctx)
        total += float(loss) * len(batch["index"])
        n += len(batch["index"])
    return total / max(n, 1)


@torch.no_grad()
def masked_accuracy(
    model, arrays, indices, ctx: LossContext, device, batch_size=64, max_events=2048, amp=True, seed=0
) -> dict[str, float]:
    """Event view: accuracy of each masked-event head on `indices` under a seeded mask, beside the
    majority baseline (the share of the commonest target among the same masked events), so a head that
    only learned the prior reads as level with it. `gene_topk` scores the events whose gene is among
    the K commonest (the "other" class left out)."""
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    hits: dict[str, list] = {k: [] for k in losses.MASKED_HEADS}
    truth: dict[str, list] = {k: [] for k in losses.MASKED_HEADS}
    for batch in _eval_batches(arrays, indices, ctx, batch_size, max_events):
        mask = losses.draw_token_mask(batch["event_padding"], ctx.mask_fraction, gen).to(device)
        batch = to_device(batch, device)
        with autocast(device, amp):
            out = model(counts=batch["counts"], padding_mask=batch["event_padding"], token_mask=mask,
                        events=batch["events"], gene_bag=batch.get("gene_bag"),
                        summary_mask=set_padding(batch, ctx))  # fmt: skip
        targets = losses.masked_targets(batch["events"], mask, ctx.gene_top_k)
        for k in losses.MASKED_HEADS:
            hits[k].append((out.masked_logits[k].argmax(-1) == targets[k]).cpu())
            truth[k].append(targets[k].cpu())
    scores = {}
    for k in losses.MASKED_HEADS:
        hit, t = torch.cat(hits[k]), torch.cat(truth[k])
        scores |= _accuracy_and_majority(k, hit, t)
    gene, hit = torch.cat(truth["gene"]), torch.cat(hits["gene"])
    top = gene < ctx.gene_top_k
    return scores | _accuracy_and_majority("gene_topk", hit[top], gene[top])


@torch.no_grad()
def view_accuracy(model, arrays, indices, ctx: LossContext, device, batch_size=64, max_events=2048,
                  amp=True) -> dict[str, float]:  # fmt: skip
    """Contrastive pretraining's health on `indices`: the share of tumours whose other view is the nearest
    in their batch (contrastive.view_accuracy), beside chance (the mean of 1 / batch size)."""
    model.eval()
    hits, chance, n = 0.0, 0.0, 0
    for batch in _eval_batches(arrays, indices, ctx, batch_size, max_events, views=True):
        batch = to_device(batch, device)
        with autocast(device, amp):
            out = _encode(model, batch, ctx)
            z1, z2 = _projected_views(model, batch, ctx, out)
        b = len(batch["index"])
        hits, chance, n = hits + b * contrastive_accuracy(z1, z2), chance + 1.0, n + b
    return {"view_acc": hits / max(n, 1), "view_chance": chance / max(n, 1)}


def _accuracy_and_majority(name: str, hit: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    if not len(target):
        return {}
    return {f"masked_acc_{name}": float(hit.float().mean()),
            f"masked_majority_{name}": float(torch.bincount(target).max()) / len(target)}  # fmt: skip
