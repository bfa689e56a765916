"""PCAWG cancer-type encoder CV and a DDP (NCCL) demonstration, from an npz: torch/numpy/nanog1 only.

The device machine has torch but not anndata/scikit-learn/mlflow, so `benchmarks/pcawg_typing.py
--export-npz` writes the cohort arrays and the shared 5-fold split (with each fold's inner
validation split) to an npz; this script trains the encoder on it and writes out-of-fold
probabilities that `pcawg_typing.py --import-oof` turns into the same tables as the baselines.

    python benchmarks/pcawg_device.py cv --npz P.npz --mixer savo --out DIR            # one GPU / CPU
    torchrun --nproc_per_node 2 benchmarks/pcawg_device.py ddp --npz P.npz --epochs 3  # DDP on NCCL
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.nn import functional as F
from torch.nn.parallel import DistributedDataParallel as DDP

from nanog1.core.step_graph import capturable_kwargs
from nanog1.encoder.losses import class_weights, exposure_loss
from nanog1.encoder.model import MutationEncoder, MutationEncoderConfig, count_parameters
from nanog1.optim import build_optimizer

SETS = ("SBS96", "DBS78", "ID83")


@dataclass
class Recipe:
    """Model shape and optimisation recipe shared by every mixer."""

    mixer: str = "savo"
    hidden: int = 64
    layers: int = 2
    rank: int = 16
    heads: int = 4
    dropout: float = 0.1
    epochs: int = 40
    batch: int = 64
    lr: float = 2e-3
    weight_decay: float = 0.05
    label_smoothing: float = 0.1
    exposure_weight: float = 0.5
    patience: int = 12
    seed: int = 0
    thin: float = 0.0  # augmentation: each training catalogue binomially thinned to a U(1 - thin, 1) fraction
    set_dropout: float = 0.0  # channel-set dropout (nanog1.encoder.data.set_dropout_mask)


def load_npz(path: Path, device: torch.device) -> dict:
    """Arrays of the exported cohort as tensors on `device` (folds and splits stay numpy)."""
    z = np.load(path, allow_pickle=False)
    data = {k: z[k] for k in z.files}
    data["counts_t"] = torch.from_numpy(data["counts"]).float().to(device)
    data["labels_t"] = torch.from_numpy(data["labels"]).long().to(device)
    data["expo_t"] = {s: torch.from_numpy(data[f"expo_{s}"]).float().to(device) for s in SETS}
    return data


def encoder(recipe: Recipe, n_types: int, expo_sizes: dict[str, int]) -> MutationEncoder:
    """The mutation encoder with a type head and (when weighted) one exposure head per channel set."""
    sizes = expo_sizes if recipe.exposure_weight > 0 else {}
    return MutationEncoder(
        MutationEncoderConfig(
            hidden=recipe.hidden,
            layers=recipe.layers,
            rank=recipe.rank,
            heads=recipe.heads,
            mixer=recipe.mixer,
            dropout=recipe.dropout,
            n_types=n_types,
            exposure_sizes=sizes,
        )
    )


def expo_sizes(data: dict) -> dict[str, int]:
    """Signatures per channel set in the exported exposure targets."""
    return {s: int(data[f"expo_{s}"].shape[1]) for s in SETS}


def matched_rank(recipe: Recipe, data: dict, target: int) -> int:
    """The mha_rank rank whose encoder's parameter count is closest to `target`."""
    ranks = list(range(recipe.heads, recipe.hidden + 1, recipe.heads))
    n_types, sizes_e = len(data["classes"]), expo_sizes(data)
    sizes = {
        r: count_parameters(encoder(Recipe(**(vars(recipe) | {"rank": r})), n_types, sizes_e)) for r in ranks
    }
    return min(ranks, key=lambda r: abs(sizes[r] - target))


def macro_f1(pred: np.ndarray, labels: np.ndarray) -> float:
    """Macro-F1 over the classes present in `labels` (scikit-learn's average='macro' on np.unique)."""
    f1 = []
    for c in np.unique(labels):
        tp = np.sum((pred == c) & (labels == c))
        fp, fn = np.sum((pred == c) & (labels != c)), np.sum((pred != c) & (labels == c))
        f1.append(2 * tp / max(2 * tp + fp + fn, 1))
    return float(np.mean(f1))


def draw_batch(data: dict, idx: torch.Tensor, recipe: Recipe, training: bool) -> dict:
    """One batch's tensors: counts (binomially thinned in training), the channel-set dropout mask (None
    when off or not training), labels and exposure targets. Drawn eagerly, outside any CUDA graph, so a
    graphed step replays on fresh draws (a host-made mask copied inside a graph would be frozen)."""
    counts = data["counts_t"][idx]
    if recipe.thin > 0 and training:
        keep = 1.0 - recipe.thin * torch.rand(len(idx), 1, device=counts.device)
        counts = torch.binomial(counts, keep.expand_as(counts))
    batch = {"counts": counts, "labels": data["labels_t"][idx],
             "targets": {s: v[idx] for s, v in data["expo_t"].items()}}
    if recipe.set_dropout > 0 and training:
        from nanog1.encoder.data import set_dropout_mask

        batch["padding"] = set_dropout_mask(len(idx), recipe.set_dropout).to(counts.device)
    return batch


def loss_of(model, batch: dict, cw: torch.Tensor, recipe: Recipe) -> torch.Tensor:
    """Class-weighted, label-smoothed cross-entropy + exposure KL to the published attributions (no host
    sync, so it can run inside a CUDA graph)."""
    counts = batch["counts"]
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=counts.is_cuda):
        out = model(counts=counts, padding_mask=batch.get("padding"))
    loss = F.cross_entropy(
        out.type_logits.float(), batch["labels"], weight=cw, label_smoothing=recipe.label_smoothing
    )
    if recipe.exposure_weight > 0:
        loss = loss + recipe.exposure_weight * exposure_loss(out, batch["targets"], counts, {}, 0.0)
    return loss


def batch_loss(model, data: dict, idx: torch.Tensor, cw: torch.Tensor, recipe: Recipe) -> torch.Tensor:
    """Class-weighted, label-smoothed cross-entropy + exposure KL to the published attributions."""
    return loss_of(model, draw_batch(data, idx, recipe, model.training), cw, recipe)


def graphed_step(model, opt, cw: torch.Tensor, recipe: Recipe, device: torch.device, enabled: bool):
    """A training step (loss, backward, clipping, AdamW) replayed from a CUDA graph per batch shape when
    `enabled` on CUDA (nanog1.core.step_graph; the optimiser must be capturable), else eager."""
    from nanog1.core.step_graph import GraphedStep

    def step(batch: dict) -> dict[str, torch.Tensor]:
        loss = loss_of(model, batch, cw, recipe)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return {"loss": loss.detach()}

    return GraphedStep(step, opt, device, enabled=enabled)


@torch.no_grad()
def predict(model, data: dict, idx: np.ndarray, batch: int = 256) -> np.ndarray:
    """Class probabilities [len(idx), n_types] in eval mode."""
    return predict_all(model, data, idx, batch)[0]


@torch.no_grad()
def predict_all(
    model, data: dict, idx: np.ndarray, batch: int = 256, padding: torch.Tensor | None = None
) -> tuple[np.ndarray, dict]:
    """Class probabilities and, per channel set, predicted exposure proportions (eval mode).

    `padding` [channels] masks channel sets as unmeasured (a cohort without, say, indel calls)."""
    model.eval()
    parts, expo = [], {}
    for i in range(0, len(idx), batch):
        counts = data["counts_t"][torch.from_numpy(idx[i : i + batch]).to(data["counts_t"].device)]
        mask = None if padding is None else padding.to(counts.device)[None].expand(len(counts), -1)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=counts.is_cuda):
            out = model(counts=counts, padding_mask=mask)
        parts.append(torch.softmax(out.type_logits.float(), -1).cpu().numpy())
        for s, logp in out.exposure_logp.items():
            expo.setdefault(s, []).append(logp.float().exp().cpu().numpy())
    return np.concatenate(parts), {s: np.concatenate(v) for s, v in expo.items()}


def exposure_cosine(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per-genome cosine between predicted and published exposure vectors (NaN where either is zero)."""
    norms = np.linalg.norm(pred, axis=1) * np.linalg.norm(target, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(norms > 0, (pred * target).sum(1) / norms, np.nan)


def train_fold(
    data: dict,
    train: np.ndarray,
    val: np.ndarray,
    recipe: Recipe,
    rank: int = 0,
    world: int = 1,
    device: torch.device = torch.device("cpu"),
    log=print,
    graphed: bool = False,
) -> tuple:
    """Train on `train` (sharded over `world` ranks), keep the weights with the best validation macro-F1.

    `graphed` (one process, CUDA): each step replayed from a CUDA graph (fused capturable AdamW; batches
    drawn eagerly), the same recipe without the host's per-op cost; the eager path is unchanged."""
    torch.manual_seed(recipe.seed)
    n_types = len(data["classes"])
    model = encoder(recipe, n_types, expo_sizes(data)).to(device)
    # As nanog1.encoder.loop.wrap_ddp (not imported: loop pulls in pandas/scikit-learn).
    net = DDP(model, find_unused_parameters=True) if world > 1 else model
    steps = math.ceil(len(train) / world / recipe.batch)
    graphed = graphed and world == 1  # on the CPU GraphedStep runs the same step eagerly
    opt, sched = build_optimizer(
        model, recipe.lr, recipe.weight_decay, steps * recipe.epochs // 20, steps * recipe.epochs,
        **capturable_kwargs(graphed and device.type == "cuda"),
    )
    cw = class_weights(data["labels"][train], n_types).to(device)
    step = graphed_step(model, opt, cw, recipe, device, graphed) if graphed else None
    gen = torch.Generator().manual_seed(recipe.seed)
    best, best_state, bad, history = -1.0, None, 0, []
    for epoch in range(recipe.epochs):
        t0 = time.perf_counter()
        net.train()
        order = torch.from_numpy(train)[torch.randperm(len(train), generator=gen)][rank::world]
        for i in range(0, steps * recipe.batch, recipe.batch):
            idx = order[i : i + recipe.batch].to(device)
            if len(idx) == 0:
                idx = order[:1].to(device)  # every rank takes the same number of steps
            if step is not None:
                loss = step(draw_batch(data, idx, recipe, True))["loss"]
                sched.step()
                continue
            loss = batch_loss(net, data, idx, cw, recipe)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds = time.perf_counter() - t0
        proba = predict(model, data, val)
        f1 = macro_f1(proba.argmax(1), data["labels"][val])
        top1 = float((proba.argmax(1) == data["labels"][val]).mean())
        history.append(
            {
                "epoch": epoch,
                "loss": float(loss.detach()),
                "val_macro_f1": f1,
                "val_top1": top1,
                "epoch_seconds": seconds,
            }
        )
        log(
            f"    epoch {epoch:3d} loss {float(loss.detach()):.3f} val top1 {top1:.3f} macro-F1 {f1:.3f} "
            f"{seconds:.2f}s"
        )
        if f1 > best:
            best, bad = f1, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            bad += 1
            if bad >= recipe.patience:
                break
    if step is not None:
        history[-1]["step_graph"] = asdict(step.stats)
    model.load_state_dict(best_state)
    return model, history


#: Channel sets masked as unmeasured in the masked-set scores (a study without indels, without DBS,
#: or without a reference genome, which leaves SBS6 + DBS78 + ID12).
MASKS = {"no_indels": ("ID83", "ID12"), "no_dbs": ("DBS78",), "no_reference": ("SBS96", "ID83"),
         "sbs96_only": ("DBS78", "ID83", "ID12")}


def set_padding(mask: str) -> torch.Tensor:
    """[channels] True on the channels of the sets that MASKS[mask] removes."""
    from nanog1.schema import SET_NAMES, SET_SIZES

    return torch.from_numpy(np.isin(np.repeat(np.array(SET_NAMES), SET_SIZES), MASKS[mask]))


def masked_scores(model, data: dict, test: np.ndarray) -> dict[str, float]:
    """Test top-1 with whole channel sets masked as unmeasured (what a study without them gives)."""
    out = {}
    for name in MASKS:
        proba, _ = predict_all(model, data, test, padding=set_padding(name))
        out[name] = float((proba.argmax(1) == data["labels"][test]).mean())
        np.save(data["_out"] / f"masked_{name}_fold.npy", proba) if name == "no_indels" else None
    return out


def run_cv(args, recipe: Recipe) -> None:
    """Out-of-fold probabilities of one mixer over the requested folds, saved after every fold."""
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    data = load_npz(args.npz, device)
    data["_out"] = args.out
    n_types = len(data["classes"])
    if recipe.mixer == "mha_rank":
        savo = Recipe(**(vars(recipe) | {"mixer": "savo"}))
        recipe.rank = matched_rank(recipe, data, count_parameters(encoder(savo, n_types, expo_sizes(data))))
    args.out.mkdir(parents=True, exist_ok=True)
    proba = np.zeros((len(data["labels"]), n_types), dtype=np.float32)
    expo: dict[str, np.ndarray] = {}
    info = {
        "recipe": vars(recipe),
        "folds": [],
        "fold_seconds": [],
        "best_epochs": [],
        "epochs_run": [],
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
    }
    for k in args.folds:
        test = np.flatnonzero(data["fold"] == k)
        inner_val = data[f"inner_val_{k}"]
        train = np.flatnonzero((data["fold"] != k) & ~inner_val)
        val = np.flatnonzero((data["fold"] != k) & inner_val)
        model, history = train_fold(
            data, train, val, recipe, device=device, log=print if args.verbose else lambda *_, **__: None
        )
        proba[test], fold_expo = predict_all(model, data, test)
        for s, values in fold_expo.items():
            expo.setdefault(s, np.zeros((len(proba), values.shape[1]), dtype=np.float32))[test] = values
        info.setdefault("masked_top1", {})[k] = masked_scores(model, data, test)
        if args.save_models:
            torch.save(
                {
                    "encoder_config": model.cfg.to_dict(),
                    "state_dict": {n: t.cpu() for n, t in model.state_dict().items()},
                },
                args.out / f"model_{args.name or recipe.mixer}_fold{k}.pt",
            )
        info["n_params"] = count_parameters(model)
        info["folds"].append(k)
        info["fold_seconds"].append(sum(h["epoch_seconds"] for h in history))
        info["epochs_run"].append(len(history))
        info["best_epochs"].append(int(np.argmax([h["val_macro_f1"] for h in history])))
        top1 = float((proba[test].argmax(1) == data["labels"][test]).mean())
        print(
            f"  {recipe.mixer} fold {k}: test top1 {top1:.3f} in {info['fold_seconds'][-1]:.0f}s, "
            f"{info['n_params']} params, rank {recipe.rank}",
            flush=True,
        )
        name = args.name or f"encoder_{recipe.mixer}"
        np.save(args.out / f"oof_{name}.npy", proba)
        if expo:
            np.savez(args.out / f"oofexpo_{name}.npz", **expo)
            done = np.isin(data["fold"], info["folds"])
            info["exposure_cosine_median"] = {
                s: float(np.nanmedian(exposure_cosine(v[done], data[f"expo_{s}"][done])))
                for s, v in expo.items()
            }
        info["seconds"] = sum(info["fold_seconds"])
        (args.out / f"info_{name}.json").write_text(json.dumps(info, default=float))


def run_ddp(args, recipe: Recipe) -> None:
    """Fold 0 under torchrun with DDP (NCCL on GPU, gloo on CPU); checks the ranks' weights agree."""
    world, rank = int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available() and args.device != "cpu"
    device = torch.device(f"cuda:{local}") if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if cuda else "gloo")
    data = load_npz(args.npz, device)
    inner_val = data["inner_val_0"]
    train = np.flatnonzero((data["fold"] != 0) & ~inner_val)
    val = np.flatnonzero((data["fold"] != 0) & inner_val)
    log = print if rank == 0 else (lambda *_, **__: None)
    log(
        f"DDP: world {world}, backend {dist.get_backend()}, device {device}, mixer {recipe.mixer}", flush=True
    )
    model, history = train_fold(data, train, val, recipe, rank, world, device, log)
    flat = torch.cat([p.detach().float().flatten() for p in model.parameters()])
    spread = flat.clone()
    dist.all_reduce(spread, op=dist.ReduceOp.MAX)
    low = flat.clone()
    dist.all_reduce(low, op=dist.ReduceOp.MIN)
    log(
        f"DDP: max |weight difference| across ranks {float((spread - low).abs().max()):.3g}; "
        f"mean epoch {np.mean([h['epoch_seconds'] for h in history]):.2f}s",
        flush=True,
    )
    dist.destroy_process_group()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=("cv", "ddp"))
    ap.add_argument("--npz", type=Path, required=True)
    ap.add_argument("--out", type=Path, default=Path("results/pcawg_device"))
    ap.add_argument("--folds", type=lambda s: [int(x) for x in s.split(",")], default=[0, 1, 2, 3, 4])
    ap.add_argument("--device", default=None)
    ap.add_argument("--name", default=None, help="model name in the oof_/info_ files (default encoder_MIXER)")
    ap.add_argument("--verbose", action="store_true", help="print every epoch in cv mode")
    ap.add_argument("--save-models", action="store_true", help="write each fold's weights (weights-only .pt)")
    for name, value in vars(Recipe()).items():
        ap.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=value)
    args = ap.parse_args()
    recipe = Recipe(**{k: getattr(args, k) for k in vars(Recipe())})
    (run_cv if args.mode == "cv" else run_ddp)(args, recipe)


if __name__ == "__main__":
    main()
