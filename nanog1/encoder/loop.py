"""The training loop: epochs over a train split, validation, early stopping, exact resume, DDP.

A checkpoint is written (atomically) after every epoch with the model, optimiser, scheduler,
sampler generator, every RNG, the step/epoch counters, the early-stopping state and the best
weights; a run that finds one resumes from it and ends with the same parameters as a straight run.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler

from nanog1 import checkpoint as ckpt
from nanog1.core.ragged import LengthBucketSampler
from nanog1.core.step_graph import GraphedStep, capturable_kwargs, graphs_wanted
from nanog1.encoder.config import TYPE_TASKS, TrainConfig
from nanog1.encoder.data import (
    CohortArrays,
    Collate,
    IndexDataset,
    bag_genes,
    bag_sites,
    consequence_scale,
    consequence_shares,
    require_types,
    with_event_vocab,
    with_gene_bag,
    without_unmeasured,
)
from nanog1.encoder.distributed import DistInfo
from nanog1.encoder.inference import (
    LossContext,
    autocast,
    batch_loss_parts,
    masked_accuracy,
    mean_loss,
    predict,
    view_accuracy,
)
from nanog1.encoder.losses import class_weights, gene_class_weights, logit_offsets
from nanog1.encoder.metrics import classification_metrics, mean_cosine
from nanog1.encoder.model import MutationEncoder, MutationEncoderConfig, count_parameters
from nanog1.errors import UserError
from nanog1.genomics.event_vocab import build_vocab
from nanog1.io import atomic_write_text
from nanog1.optim import build_optimizer
from nanog1.progress import bar, epoch_line, report

CHECKPOINT = "checkpoint.pt"
MODEL = "model.pt"
#: model.pt's key for what its training left out (nanog1.encoder.data.events_not_read_record: a dict of
#: ints, JSON-like, weights_only-safe); absent from a catalogue model's and from one saved before it existed.
TRAINING_NOT_READ = "training_events_not_read"


class TrainingInterrupted(RuntimeError):
    """Raised when a run stops on purpose after `stop_after_epochs` (a simulated kill)."""


@dataclass
class FitResult:
    """What a finished fit leaves: the best model, its validation metrics and the history."""

    model: MutationEncoder
    encoder_config: MutationEncoderConfig
    metrics: dict[str, float]
    history: list[dict] = field(default_factory=list)
    best_epoch: int = -1
    arrays: CohortArrays | None = None  # the samples as this model reads them (event ids, gene bag)


def encoder_config(cfg: TrainConfig, arrays: CohortArrays) -> MutationEncoderConfig:
    """Encoder shape for the task: a type head when types are learned, exposure heads when fitted."""
    wants_types = cfg.task in TYPE_TASKS
    wants_expo = cfg.task in ("exposures", "multitask")
    if wants_types:
        require_types(arrays, f"task {cfg.task!r}", "or train --task exposures")
    if cfg.task == "exposures" and not arrays.exposures:
        raise UserError("task 'exposures' needs obsm['exposures_<set>'] (run `nanog1 signatures fit` first)")
    return MutationEncoderConfig(
        hidden=cfg.hidden,
        layers=cfg.layers,
        rank=cfg.rank,
        heads=cfg.heads,
        mixer=cfg.mixer,
        dropout=cfg.dropout,
        pooling=cfg.pooling,
        view=cfg.view,
        n_types=len(arrays.classes) if wants_types else 0,
        exposure_sizes={k: v.shape[1] for k, v in arrays.exposures.items()} if wants_expo else {},
        projection=PROJECTION if _contrastive(cfg) else 0,
        **_event_fields(cfg, arrays),
    )


def _event_fields(cfg: TrainConfig, arrays: CohortArrays) -> dict:
    """Event view: the vocabulary the ids index (saved with the model) and the masked-gene head's K."""
    if cfg.view != "events":
        return {}
    if arrays.event_vocab is None:
        raise UserError("the event view needs uns['tokens'] in the cohort (ingest it from VCF/MAF files)")
    genes, sites = list(arrays.gene_bag_genes), list(arrays.gene_bag_sites)
    return {"event_vocab": arrays.event_vocab.values, "gene_top_k": cfg.gene_top_k, "gene_bag": genes,
            "hotspots": sites, "consequence_shares": arrays.consequence_scale is not None,
            "consequence_scale": list(arrays.consequence_scale or []),
            "unmeasured_indicator": cfg.indel_dropout > 0}  # fmt: skip


#: Tasks whose event-view model gets no gene bag under the masked objective: a masked event's gene would
#: be visible in the bag (contrastive pretraining keeps it: the bag is what its views drop entries of).
_NO_BAG_TASKS = ("pretrain", "multitask")
#: Width of the contrastive projection head (nanog1.encoder.contrastive.ProjectionHead).
PROJECTION = 64


def _contrastive(cfg: TrainConfig) -> bool:
    return cfg.task in _NO_BAG_TASKS and cfg.objective == "contrastive"


def prepare_gene_bag(cfg: TrainConfig, arrays: CohortArrays, train_idx: np.ndarray) -> CohortArrays:
    """Event view, cfg.gene_bag = K > 0 or cfg.hotspots = N > 0, a task without masked events: every
    sample's 0/1 bag over the K genes mutated in most `train_idx` samples, then over the sites mutated in
    >= N of them (chosen from those only; nanog1.genomics.gene_bag), then (cfg.consequence_shares) its
    consequence shares scaled by their sd over `train_idx`."""
    masked = cfg.task in _NO_BAG_TASKS and not _contrastive(cfg)
    if cfg.view != "events" or not (cfg.gene_bag or cfg.hotspots or cfg.consequence_shares) or masked:
        return replace(arrays, gene_bag=None, gene_bag_genes=[], gene_bag_sites=[], consequence_scale=None)
    if not cfg.consequence_shares:
        return with_gene_bag(arrays, *chosen_bag(cfg, arrays, train_idx))
    shares = consequence_shares(arrays)  # once: the scale and the bag both read it
    scale = consequence_scale(arrays, train_idx, shares)
    return with_gene_bag(arrays, *chosen_bag(cfg, arrays, train_idx), scale, shares)


def chosen_bag(cfg: TrainConfig, arrays: CohortArrays, train_idx: np.ndarray) -> tuple[list[str], list[str]]:
    """The bag's genes (cfg.gene_bag commonest) and hotspot sites (in >= cfg.hotspots tumours) of
    `train_idx`; either list is empty when its option is 0."""
    genes = bag_genes(arrays, train_idx, cfg.gene_bag) if cfg.gene_bag else []
    return genes, (bag_sites(arrays, train_idx, cfg.hotspots, key=cfg.hotspot_key) if cfg.hotspots else [])


def prepare_events(cfg: TrainConfig, arrays: CohortArrays) -> CohortArrays:
    """Event view: each tumour's tokens without its calls of a kind of call it did not measure
    (`without_unmeasured`, as every saved model's scoring reads them: nanog1.encoder.data.for_model), then
    a vocabulary built from the tokens left (labels unused) and their ids, so a declared `--not-measured`
    call reaches neither the training tokens nor the vocabulary."""
    if cfg.view != "events":
        return arrays
    if arrays.tokens is None:
        raise UserError("the event view needs uns['tokens'] in the cohort (ingest it from VCF/MAF files)")
    arrays = without_unmeasured(arrays)
    return with_event_vocab(arrays, build_vocab([arrays.tokens], {"gene": cfg.min_gene_tumours}))


def loss_context(cfg: TrainConfig, arrays: CohortArrays, train_idx: np.ndarray, device) -> LossContext:
    """Class weights from the training split, signature matrices and channel padding on `device`."""
    weights = offsets = None
    if cfg.class_weighting and arrays.classes:
        power = cfg.class_weight_power
        weights = class_weights(arrays.labels[train_idx], len(arrays.classes), power).to(device)
    if cfg.logit_adjust and arrays.classes:
        offsets = logit_offsets(arrays.labels[train_idx], len(arrays.classes), cfg.logit_adjust).to(device)
    return LossContext(
        task=cfg.task,
        view=cfg.view,
        channel_padding=torch.from_numpy(arrays.channel_padding).to(device),
        class_weights=weights,
        logit_offsets=offsets,
        label_smoothing=cfg.label_smoothing,
        signatures={k: torch.from_numpy(v).to(device) for k, v in arrays.signature_matrices.items()},
        mask_fraction=cfg.mask_fraction,
        recon_weight=cfg.recon_weight,
        objective=cfg.objective,
        temperature=cfg.temperature,
        view_drop=cfg.view_drop,
        view_noise=cfg.view_noise,
        **_masked_gene_head(cfg, arrays, device),
    )


def _masked_gene_head(cfg: TrainConfig, arrays: CohortArrays, device) -> dict:
    """Event view: the gene head's K (the vocabulary may hold fewer genes) and its class weights."""
    if cfg.view != "events" or arrays.event_vocab is None:
        return {}
    k = min(cfg.gene_top_k, len(arrays.event_vocab.values["gene"]))
    return {"gene_top_k": k, "gene_weights": gene_class_weights(arrays.event_ids["gene"], k).to(device)}


def validation_metrics(model, arrays, val_idx, ctx, cfg, device) -> dict[str, float]:
    """Validation loss plus top-k/macro-F1 (type tasks) and exposure cosine (exposure tasks)."""
    out = {
        "val_loss": mean_loss(model, arrays, val_idx, ctx, device, cfg.batch_size, cfg.max_events, cfg.amp)
    }
    pred = predict(model, arrays, val_idx, ctx, device, cfg.batch_size, cfg.max_events, cfg.amp)
    if _contrastive(cfg):
        views = view_accuracy(model, arrays, val_idx, ctx, device, cfg.batch_size, cfg.max_events, cfg.amp)
        out.update({f"val_{k}": v for k, v in views.items()})
    elif cfg.view == "events" and cfg.task in ("pretrain", "multitask"):
        masked = masked_accuracy(model, arrays, val_idx, ctx, device, cfg.batch_size, cfg.max_events, cfg.amp)
        out.update({f"val_{k}": v for k, v in masked.items()})
    if pred.proba is not None:
        out.update(
            {
                f"val_{k}": v
                for k, v in classification_metrics(pred.proba, arrays.labels[val_idx], arrays.classes).items()
            }
        )
    for name, expo in pred.exposures.items():
        out[f"val_exposure_cosine_{name}"] = mean_cosine(expo, arrays.exposures[name][val_idx])
    return out


def score(metrics: dict[str, float], task: str) -> float:
    """Early-stopping score (higher is better): macro-F1 for type tasks, else minus the loss."""
    if task in TYPE_TASKS and "val_macro_f1" in metrics:
        return metrics["val_macro_f1"] - 1e-3 * metrics["val_loss"]
    return -metrics["val_loss"]


def wrap_ddp(model: torch.nn.Module) -> DDP:
    """DDP that skips the heads a task leaves unused (e.g. the masked head when classifying).

    find_unused_parameters walks the output's graph each step (tiny here). static_graph=True looked
    equivalent but left the ranks' gradients unsynchronised from the second step on (torch 2.13, gloo;
    tests/test_training_ddp.py checks the gradients agree).
    """
    return DDP(model, find_unused_parameters=True)


def train_loader(
    arrays: CohortArrays, train_idx: np.ndarray, cfg: TrainConfig, dist_info: DistInfo, generator,
    loader_generator: bool = True,
) -> DataLoader:
    """Training batches. Event view on one process with cfg.batch_tokens: length-bucketed batches
    (LengthBucketSampler: <= batch_tokens padded tokens, <= batch_size tumours, seeded by cfg.seed and
    the epoch, see `set_epoch`); otherwise batch_size samples drawn at random by `generator`
    (DistributedSampler under DDP), which also seeds the loader itself when `loader_generator` (the
    training loop checkpoints it; fine-tuning leaves the loader on the global RNG, as it always did).
    The sampler yields positions into `train_idx`; the dataset maps them to samples."""
    ds = IndexDataset(train_idx)
    two = _contrastive(cfg)
    collate = Collate(arrays, cfg.view, cfg.max_events, train=True, thin=cfg.thin,
                      set_dropout=cfg.set_dropout, indel_dropout=cfg.indel_dropout, views=2 if two else 1,
                      view_drop=cfg.view_drop if two else 0.0,
                      view_noise=cfg.view_noise if two else 0.0)  # fmt: skip
    if cfg.view == "events" and cfg.batch_tokens > 0 and not dist_info.distributed:
        off = arrays.event_ids["offsets"]
        lengths = np.minimum(off[train_idx + 1] - off[train_idx], cfg.max_events).clip(min=1)
        sampler = LengthBucketSampler(lengths, cfg.batch_tokens, padded=True, seed=cfg.seed,
                                      max_batch=cfg.batch_size)  # fmt: skip
        return DataLoader(ds, batch_sampler=sampler, collate_fn=collate)
    if dist_info.distributed:
        sampler = DistributedSampler(ds, dist_info.world_size, dist_info.rank, shuffle=True, seed=cfg.seed)
    else:
        sampler = RandomSampler(ds, generator=generator)
    return DataLoader(ds, batch_size=cfg.batch_size, sampler=sampler, collate_fn=collate,
                      generator=generator if loader_generator else None)  # fmt: skip


def set_epoch(loader: DataLoader, epoch: int) -> None:
    """Reseed an epoch-seeded sampler (length buckets, DDP) so a resumed run draws the same batches."""
    for sampler in (loader.batch_sampler, loader.sampler):
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch)


def train_step(model, opt, ctx, cfg: TrainConfig, device, graphed: bool = False) -> GraphedStep:
    """One optimiser step per call (forward, loss, backward, clipping, AdamW), replayed from a CUDA graph
    per batch shape when `graphed` and the optimiser is capturable (nanog1.core.step_graph), else eager.
    Returns the loss and its parts as device scalars (no host sync per step)."""

    def step(batch: dict) -> dict[str, torch.Tensor]:
        with autocast(device, cfg.amp):
            loss, parts = batch_loss_parts(model, batch, ctx)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        return {"train_loss": loss.detach(), **{k: v.detach() for k, v in parts.items()}}

    return GraphedStep(step, opt, device, enabled=graphed)


def train_epoch(model, loader, opt, sched, ctx, cfg: TrainConfig, device, desc: str | None = None,
                step: GraphedStep | None = None) -> dict[str, float]:
    """One pass over the training split; returns mean loss parts and the number of optimiser steps.
    With `desc`, a per-batch bar shows on a terminal (nanog1.progress: never in logs or when quiet).
    `step` (from :func:`train_step`; eager when None) keeps its CUDA graphs from epoch to epoch."""
    model.train()
    step = step or train_step(model, opt, ctx, cfg, device)
    sums: dict[str, torch.Tensor] = {}
    steps = 0
    for batch in bar(loader, desc, total=len(loader), unit="batch") if desc else loader:
        out = step(batch)
        sched.step()
        steps += 1
        for k, v in out.items():
            sums[k] = sums[k] + v.double() if k in sums else v.double()
    return {k: float(v) / max(steps, 1) for k, v in sums.items()} | {"steps": steps}


@dataclass
class _State:
    epoch: int = -1
    step: int = 0
    best_score: float = -math.inf
    best_epoch: int = -1
    bad_epochs: int = 0
    history: list = field(default_factory=list)
    best_state: dict | None = None
    mlflow_run_id: str = ""


def _save(path: Path, model, opt, sched, gen, st: _State, cfg, ecfg) -> None:
    ckpt.atomic_save(
        {
            "model": model.state_dict(),
            "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(),
            "sampler_generator": gen.get_state(),
            "rng": ckpt.rng_state(),
            "epoch": st.epoch,
            "step": st.step,
            "best_score": st.best_score,
            "best_epoch": st.best_epoch,
            "bad_epochs": st.bad_epochs,
            "history": st.history,
            "best_state": st.best_state,
            "mlflow_run_id": st.mlflow_run_id,
            "train_config": cfg.to_dict(),
            "encoder_config": ecfg.to_dict(),
        },
        path,
    )


#: Options that may change between a run and its resumption (they do not touch the optimisation).
_RESUMABLE_CHANGES = {"experiment", "register_model", "step_graph"}


def _restore(path: Path, model, opt, sched, gen, device, cfg: TrainConfig) -> _State:
    c = ckpt.load(path, map_location=device)
    saved = c["train_config"]
    changed = sorted(k for k, v in cfg.to_dict().items() if saved.get(k) != v and k not in _RESUMABLE_CHANGES)
    if changed:
        raise UserError(
            f"{path}: saved with other training options ({', '.join(changed)}); "
            "resume with the same options or start over with --no-resume"
        )
    model.load_state_dict(c["model"])
    opt.load_state_dict(c["optimizer"])
    sched.load_state_dict(c["scheduler"])
    gen.set_state(c["sampler_generator"].cpu())
    ckpt.set_rng_state(c["rng"])
    return _State(
        c["epoch"],
        c["step"],
        c["best_score"],
        c["best_epoch"],
        c["bad_epochs"],
        c["history"],
        c["best_state"],
        c["mlflow_run_id"],
    )


def peek_run_id(run_dir: Path) -> str | None:
    """The MLflow run id stored in a run folder's checkpoint, if any (to reopen the same run)."""
    path = Path(run_dir) / CHECKPOINT
    if not path.exists():
        return None
    return ckpt.load(path).get("mlflow_run_id") or None


def fit(
    arrays: CohortArrays,
    cfg: TrainConfig,
    run_dir: Path,
    train_idx: np.ndarray,
    val_idx: np.ndarray,
    dist_info: DistInfo | None = None,
    resume: bool = True,
    on_epoch: Callable[[int, dict], None] | None = None,
    stop_after_epochs: int | None = None,
    mlflow_run_id: str = "",
) -> FitResult:
    """Train on `train_idx`, validate on `val_idx`, checkpoint each epoch, return the best model.
    Event view: arrays without event ids get a vocabulary from their own tokens (`prepare_events`)."""
    if cfg.view == "events" and arrays.event_vocab is None:
        arrays = prepare_events(cfg, arrays)
    arrays = prepare_gene_bag(cfg, arrays, train_idx)
    dist_info = dist_info or DistInfo()
    device, run_dir = dist_info.device, Path(run_dir)
    ckpt.seed_everything(cfg.seed)
    ecfg = encoder_config(cfg, arrays)
    model = MutationEncoder(ecfg).to(device)
    loader_gen = torch.Generator().manual_seed(cfg.seed)
    loader = train_loader(arrays, train_idx, cfg, dist_info, loader_gen)
    total = len(loader) * cfg.epochs
    graphed = graphs_wanted(cfg.step_graph, device) and not dist_info.distributed
    opt, sched = build_optimizer(model, cfg.lr, cfg.weight_decay, int(cfg.warmup_frac * total), total,
                                 **capturable_kwargs(graphed))
    ctx = loss_context(cfg, arrays, train_idx, device)
    st = _State(mlflow_run_id=mlflow_run_id)
    if resume and (run_dir / CHECKPOINT).exists():
        st = _restore(run_dir / CHECKPOINT, model, opt, sched, loader_gen, device, cfg)
    net = wrap_ddp(model) if dist_info.distributed else model
    step = train_step(net, opt, ctx, cfg, device, graphed)
    while st.epoch + 1 < cfg.epochs and st.bad_epochs < cfg.patience:
        epoch = st.epoch + 1
        set_epoch(loader, epoch)
        t0 = time.perf_counter()
        desc = f"epoch {epoch + 1}/{cfg.epochs}" if dist_info.is_main else None
        row = train_epoch(net, loader, opt, sched, ctx, cfg, device, desc, step)
        row |= validation_metrics(model, arrays, val_idx, ctx, cfg, device)
        row |= {"epoch": epoch, "lr": sched.get_last_lr()[0], "epoch_seconds": time.perf_counter() - t0}
        st.step += row.pop("steps")
        st.epoch = epoch
        _update_best(st, model, row, cfg.task)
        st.history.append(row)
        if dist_info.is_main:
            _save(run_dir / CHECKPOINT, model, opt, sched, loader_gen, st, cfg, ecfg)
            report(epoch_line(epoch, cfg.epochs, row))
            if on_epoch is not None:
                on_epoch(epoch, row)
        if stop_after_epochs is not None and epoch + 1 >= stop_after_epochs and st.epoch + 1 < cfg.epochs:
            raise TrainingInterrupted(f"stopped after {epoch + 1} epoch(s) as asked; resume to continue")
    if st.best_state is not None:
        model.load_state_dict(st.best_state)
    best = st.history[st.best_epoch] if st.history else {}
    metrics = {k: v for k, v in best.items() if k.startswith("val_")} | {
        "best_epoch": st.best_epoch,
        "epochs_run": st.epoch + 1,
        "n_params": count_parameters(model),
    }
    return FitResult(model=model, encoder_config=ecfg, metrics=metrics, history=st.history,
                     best_epoch=st.best_epoch, arrays=arrays)  # fmt: skip


def _update_best(st: _State, model, row: dict, task: str) -> None:
    s = score(row, task)
    if s > st.best_score:
        st.best_score, st.best_epoch, st.bad_epochs = s, st.epoch, 0
        st.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    else:
        st.bad_epochs += 1


def save_model(path: Path, result: FitResult, arrays: CohortArrays, cfg: TrainConfig, extra: dict) -> None:
    """model.pt: encoder config + best weights + class names + channel padding (weights_only-loadable),
    and `extra` (run provenance: MLflow ids, split, FILTER rule, TRAINING_NOT_READ)."""
    ckpt.atomic_save(
        {
            "encoder_config": result.encoder_config.to_dict(),
            "state_dict": result.model.state_dict(),
            "classes": list(arrays.classes),
            "channel_padding": torch.from_numpy(arrays.channel_padding),
            "signature_names": arrays.signature_names,
            "train_config": cfg.to_dict(),
            **extra,
        },
        path,
    )


def load_model(path: Path, device: str | torch.device = "cpu") -> tuple[MutationEncoder, dict]:
    """Rebuild the encoder from model.pt; returns (model in eval mode, the saved dict)."""
    saved = ckpt.load(path, map_location=device)
    model = MutationEncoder(MutationEncoderConfig(**saved["encoder_config"])).to(device)
    model.load_state_dict(saved["state_dict"])
    return model.eval(), saved


def write_json(path: Path, payload: dict) -> None:
    """Atomic JSON write (nanog1.io)."""
    atomic_write_text(path, json.dumps(payload, indent=2, default=float))
