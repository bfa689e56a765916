"""Task losses: class-weighted cross-entropy, exposure KL + reconstruction, masked-token pretraining."""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

from nanog1.encoder.model import EncoderOutput
from nanog1.schema import SET_NAMES, SET_SIZES

# Each channel set's columns as a slice (a view: no index tensor copied to the device per call).
_SET_SLICES = {
    name: slice(int(stop) - size, int(stop))
    for name, size, stop in zip(SET_NAMES, SET_SIZES, np.cumsum(SET_SIZES), strict=True)
}


def class_weights(labels: np.ndarray, n_classes: int, power: float = 1.0) -> torch.Tensor:
    """Class weights n_c^-power (mean 1 over present classes); absent classes get 0. power 1 is inverse
    frequency, 0.5 its square root (the TCGA event benchmark's), 0 no weighting."""
    counts = np.bincount(labels[labels >= 0], minlength=n_classes).astype(np.float64)
    w = np.divide(1.0, counts**power, out=np.zeros_like(counts), where=counts > 0)
    w *= (counts > 0).sum() / max(w.sum(), 1e-12)
    return torch.tensor(w, dtype=torch.float32)


def logit_offsets(labels: np.ndarray, n_classes: int, tau: float) -> torch.Tensor:
    """Logit adjustment (Menon et al., ICLR 2021, "Long-tail learning via logit adjustment"): tau * log
    prior, the training split's class shares (a class absent from it counted once, so no -inf). Added to
    the logits in the training loss only, so the unadjusted logits fit p(y | x) / prior^tau: a balanced
    classifier, which is what macro-F1 and balanced accuracy reward. Use it instead of class weights."""
    counts = np.bincount(labels[labels >= 0], minlength=n_classes).astype(np.float64)
    counts = np.maximum(counts, 1.0)
    return torch.tensor(tau * np.log(counts / counts.sum()), dtype=torch.float32)


def type_loss(
    out: EncoderOutput,
    labels: torch.Tensor,
    weights: torch.Tensor | None,
    offsets: torch.Tensor | None = None,
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """Cross-entropy on labelled samples (label -1 ignored); zero when the batch has none. `offsets`
    (:func:`logit_offsets`, one per class) are added to the logits first: logit-adjusted training.
    `label_smoothing`: torch's, the target a (1 - e) / e-uniform mix (the TCGA event benchmark's 0.1).

    The weighted mean Σ w·nll / Σ w over labelled rows, written without host syncs (no data-dependent
    branch), so a training step can run as a CUDA graph (nanog1.core.step_graph)."""
    if out.type_logits is None:
        return out.embedding.sum() * 0.0
    logits = out.type_logits.float() if offsets is None else out.type_logits.float() + offsets
    nll = F.cross_entropy(logits, labels, weight=weights, ignore_index=-1, reduction="none",
                          label_smoothing=label_smoothing)  # fmt: skip
    labelled = (labels >= 0).float()
    w = labelled if weights is None else weights[labels.clamp_min(0)] * labelled
    return nll.sum() / w.sum().clamp_min(1e-12)


def _masked_mean(values: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Mean of `values` over rows where `keep` (0/1 floats) is 1; 0 when none is (no host sync)."""
    return (values * keep).sum() / keep.sum().clamp_min(1.0)


def _kl_rows(target: torch.Tensor, logp: torch.Tensor) -> torch.Tensor:
    """KL(target || exp(logp)) per row."""
    return (target * (torch.log(target.clamp_min(1e-12)) - logp)).sum(-1)


def exposure_loss(
    out: EncoderOutput,
    targets: dict[str, torch.Tensor],
    counts: torch.Tensor,
    signatures: dict[str, torch.Tensor],
    recon_weight: float,
) -> torch.Tensor:
    """Mean over sets of KL(attribution proportions || predicted simplex) + recon_weight * KL of spectra.

    The reconstruction term pushes the predicted exposures, mapped through the reference signature
    matrix, towards the sample's observed channel proportions in that set.
    """
    total = out.embedding.sum() * 0.0
    for name, logp in out.exposure_logp.items():
        target = targets[name]
        valid = (target.sum(-1) > 0).float()  # rows without attribution: weight 0 (no host sync)
        total = total + _masked_mean(_kl_rows(target, logp), valid)
        if name in signatures and recon_weight > 0:
            obs = counts[:, _SET_SLICES[name]].float()
            obs = obs / obs.sum(-1, keepdim=True).clamp_min(1.0)
            keep = valid * (obs.sum(-1) > 0).float()
            recon = logp.exp() @ signatures[name].T
            recon_kl = _kl_rows(obs, torch.log(recon.clamp_min(1e-12)))
            total = total + recon_weight * _masked_mean(recon_kl, keep)
    return total


def draw_token_mask(
    padding: torch.Tensor, fraction: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Bernoulli(fraction) mask over non-padded tokens, at least one masked token per row."""
    mask = (torch.rand(padding.shape, device=padding.device, generator=generator) < fraction) & ~padding
    scores = torch.rand(padding.shape, device=padding.device, generator=generator).masked_fill(padding, -1.0)
    first = F.one_hot(scores.argmax(-1), padding.shape[-1]).bool() & ~padding
    return mask | first


def masked_catalogue_loss(out: EncoderOutput, counts: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """MSE between predicted and true log1p(count) on masked channels (a weighted mean: no host sync)."""
    err = (out.masked_pred.float() - torch.log1p(counts.float())) ** 2
    return _masked_mean(err, mask.float())


#: Masked-event heads, in the order their losses are summed.
MASKED_HEADS = ("channel", "consequence", "gene")
_N_SPECIAL = 3  # pad, UNK, MASK (nanog1.genomics.event_vocab)


def gene_targets(gene_ids: torch.Tensor | np.ndarray, top_k: int):
    """Capped gene class of each event: 0..K-1 for the K commonest genes of a commonest-first vocabulary
    (model ids 3..K+2), K = "other" (a rarer gene, or one the vocabulary sends to UNK)."""
    t = gene_ids - _N_SPECIAL
    where = torch.where if torch.is_tensor(t) else np.where
    return where((t >= 0) & (t < top_k), t, top_k)


def masked_targets(
    events: dict[str, torch.Tensor], mask: torch.Tensor, top_k: int
) -> dict[str, torch.Tensor]:
    """What each masked event's heads must say: its class id, consequence id and capped gene class."""
    return {"channel": events["channel"][mask], "consequence": events["consequence"][mask],
            "gene": gene_targets(events["gene"][mask], top_k)}  # fmt: skip


def gene_class_weights(gene_ids: np.ndarray, top_k: int, power: float = 1.0) -> torch.Tensor:
    """Weights [K + 1] of the capped gene classes: count^-power, scaled so the average event weighs 1.

    Unweighted, or weighted by count^-0.5, the head learned the prior and nothing else (on TCGA "other"
    is 93 % of the events; measured: every masked gene predicted "other"). With power 1 every class
    weighs alike, so the head must say which of the K commonest genes this tumour's context favours
    (P(gene | context) / P(gene)); the K cap keeps each class seen often enough to learn."""
    counts = np.bincount(gene_targets(np.asarray(gene_ids, dtype=np.int64), top_k), minlength=top_k + 1)
    w = np.where(counts > 0, np.maximum(counts, 1.0) ** -power, 0.0)
    w *= counts.sum() / max((w * counts).sum(), 1e-12)
    return torch.tensor(w, dtype=torch.float32)


def masked_event_loss(
    logits: dict[str, torch.Tensor],
    targets: dict[str, torch.Tensor],
    gene_weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Sum over heads of the masked events' cross-entropy: class, consequence, capped gene (weighted)."""
    total = None
    for name in MASKED_HEADS:
        w = gene_weights if name == "gene" else None
        part = F.cross_entropy(logits[name].float(), targets[name], weight=w)
        total = part if total is None else total + part
    return total
