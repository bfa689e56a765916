"""Cancer-type prediction on PCAWG (SBS96 + DBS78 + ID83), 5-fold stratified CV, every model side by side.

Models: the SAVO mutation encoder, the same encoder with the rank-matched MHA mixer at (nearly)
equal parameters, and scikit-learn logistic regression / random forest / gradient boosting on
normalised catalogues, on the published SigProfiler exposures, on exposures refitted by nanog1 without
the cancer type (`refit`), and on the 0/1 pattern of published signatures (`support`, a label-leak
probe). All use the same folds.
Encoders stop early on an inner stratified validation split of each fold's training part.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/pcawg_typing.py --out results/pcawg_typing.json

Prints a markdown table (top-1, top-3, macro-F1, seconds) and per-type recall; writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from nanog1.encoder.abstention import coverage_curve
from nanog1.encoder.baselines import catalogue_features, classifiers, exposure_features, oof_proba
from nanog1.encoder.calibration import crossfit_calibration
from nanog1.encoder.config import TrainConfig
from nanog1.encoder.cv import kfold_splits, train_val_split
from nanog1.encoder.data import cohort_arrays
from nanog1.encoder.inference import predict
from nanog1.encoder.loop import encoder_config, fit, loss_context
from nanog1.encoder.metrics import classification_metrics, per_type_report
from nanog1.encoder.model import MutationEncoder
from nanog1.fitting.fit import FitConfig, fit_signatures
from nanog1.genomics.channels import CHANNEL_SETS
from nanog1.genomics.cohort import assemble_cohort
from nanog1.genomics.matrix import read_catalogue_matrix
from nanog1.genomics.signatures_pcawg import read_pcawg_attributions, read_pcawg_signatures

FILES = {"SBS96": "WGS_PCAWG.96.csv", "DBS78": "WGS_PCAWG.dinucs.csv", "ID83": "WGS_PCAWG.indels.csv"}


def pcawg_cohort(pcawg_dir: Path, min_genomes: int):
    """PCAWG in the shared AnnData format: types with >= min_genomes genomes, published exposures attached."""
    mats = {name: read_catalogue_matrix(pcawg_dir / f) for name, f in FILES.items()}
    samples = list(mats["SBS96"].counts.columns)
    for m in mats.values():
        samples = [s for s in samples if s in m.counts.columns]
    counts = np.hstack([mats[n].counts[samples].T.to_numpy() for n in FILES])
    types = mats["SBS96"].cancer_types.reindex(samples)
    keep_types = types.value_counts()[lambda c: c >= min_genomes].index
    keep = types.isin(keep_types).to_numpy()
    adata = assemble_cohort(
        counts[keep],
        [s for s, k in zip(samples, keep, strict=True) if k],
        {"channel_sets_present": list(FILES), "source": str(pcawg_dir)},
        cancer_types=types[keep],
    )
    for name in FILES:
        attr = read_pcawg_attributions(pcawg_dir, name)
        sigs = [c for c in attr.columns if c not in ("cancer_type", "accuracy")]
        adata.obsm[f"exposures_{name}"] = attr[sigs].reindex(adata.obs_names).fillna(0.0).astype(float)
    return adata


def matched_rank(cfg: TrainConfig, arrays, target: int) -> int:
    """The mha_rank rank whose encoder's parameter count is closest to `target`."""
    best = None
    for r in range(1, cfg.hidden + 1):
        if r % cfg.heads:
            continue
        trial = TrainConfig(**(cfg.to_dict() | {"mixer": "mha_rank", "rank": r}))
        n = sum(p.numel() for p in MutationEncoder(encoder_config(trial, arrays)).parameters())
        if best is None or abs(n - target) < abs(best[1] - target):
            best = (r, n)
    return best[0]


def encoder_cv(arrays, cfg: TrainConfig, splits, work: Path, n_folds: int) -> tuple[np.ndarray, dict]:
    """Out-of-fold probabilities of the encoder on the first n_folds shared folds, plus timings and sizes."""
    proba = np.zeros((arrays.n, len(arrays.classes)))
    info = {"fold_seconds": [], "best_epochs": [], "folds": list(range(min(n_folds, len(splits))))}
    for k, (train, test) in enumerate(splits[:n_folds]):
        inner_tr, inner_val = train_val_split(arrays.labels[train], cfg.val_fraction, cfg.seed)
        fold_dir = work / f"{cfg.mixer}_fold{k}"
        result = fit(arrays, cfg, fold_dir, train[inner_tr], train[inner_val], resume=True)
        ctx = loss_context(cfg, arrays, train[inner_tr], torch.device("cpu"))
        proba[test] = predict(result.model, arrays, test, ctx, torch.device("cpu"), amp=False).proba
        # Training time from the run's own per-epoch clock (a resumed fold counts its earlier epochs too).
        info["fold_seconds"].append(sum(h["epoch_seconds"] for h in result.history))
        info.setdefault("epochs_run", []).append(len(result.history))
        info["best_epochs"].append(result.best_epoch)
        info["n_params"] = result.metrics["n_params"]
        top1 = classification_metrics(proba[test], arrays.labels[test], arrays.classes)["top1"]
        print(
            f"  {cfg.mixer} fold {k}: {info['fold_seconds'][-1]:.0f}s, best epoch {result.best_epoch}, "
            f"fold top1 {top1:.3f}",
            flush=True,
        )
    return proba, info


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pcawg", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/pcawg7")
    ap.add_argument("--models", default="savo,mha_rank,logreg,random_forest,gradient_boosting")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--hidden", type=int, default=32)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--dropout", type=float, default=0.0)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument(
        "--features",
        default="catalogue,exposures,refit,support",
        help="baseline inputs: catalogue, exposures (published), refit (nanog1's type-blind fit), support",
    )
    ap.add_argument("--min-genomes", type=int, default=20)
    ap.add_argument("--encoder-folds", type=int, default=0, help="train encoders on the first N folds only")
    ap.add_argument(
        "--work",
        type=Path,
        default=Path("results/pcawg_typing_runs"),
        help="per-fold checkpoints and per-model out-of-fold probabilities (resumable)",
    )
    ap.add_argument("--report-only", action="store_true", help="only tabulate what --work already holds")
    ap.add_argument("--export-npz", type=Path, help="write arrays + folds for pcawg_device.py; stop")
    ap.add_argument("--import-oof", type=Path, help="copy pcawg_device.py's oof/info into --work")
    ap.add_argument("--out", type=Path, default=Path("results/pcawg_typing.json"))
    args = ap.parse_args()
    adata = pcawg_cohort(args.pcawg, args.min_genomes)
    arrays = cohort_arrays(adata, min_class_size=args.min_genomes)
    splits = kfold_splits(arrays.labels, args.folds, seed=0)
    print(
        f"PCAWG: {arrays.n} genomes, {len(arrays.classes)} types, {args.folds} folds; "
        f"load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; torch threads {torch.get_num_threads()}",
        flush=True,
    )
    if args.export_npz:
        export_npz(arrays, splits, args.export_npz)
        return
    args.work.mkdir(parents=True, exist_ok=True)
    if args.import_oof:
        for path in [*args.import_oof.glob("oof_*.npy"), *args.import_oof.glob("info_*.json")]:
            (args.work / path.name).write_bytes(path.read_bytes())
    if not args.report_only:
        run_models(args, arrays, splits)
    report(arrays, splits, args.work, args.out)


def export_npz(arrays, splits, path: Path) -> None:
    """Counts, labels, published exposure proportions, fold of each genome and each fold's inner
    validation split (the same ones encoder_cv uses), for the device script (no anndata/sklearn there)."""
    fold = np.full(arrays.n, -1, dtype=np.int64)
    payload = {"counts": arrays.counts, "labels": arrays.labels, "classes": np.array(arrays.classes)}
    for k, (train, test) in enumerate(splits):
        fold[test] = k
        _, inner_val = train_val_split(arrays.labels[train], 0.2, 0)
        mask = np.zeros(arrays.n, dtype=bool)
        mask[train[inner_val]] = True
        payload[f"inner_val_{k}"] = mask
    payload |= {f"expo_{k}": v for k, v in arrays.exposures.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, fold=fold, **payload)
    os.replace(tmp, path)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")


def _store(work: Path, name: str, proba: np.ndarray, info: dict) -> None:
    np.save(work / f"oof_{name}.npy", proba)
    (work / f"info_{name}.json").write_text(json.dumps(info | {"load": os.getloadavg()}, default=float))


def run_models(args, arrays, splits) -> None:
    """Train/evaluate every requested model over the folds; store each model's out-of-fold probabilities."""
    base = TrainConfig(
        epochs=args.epochs,
        hidden=args.hidden,
        layers=args.layers,
        rank=args.rank,
        heads=4,
        batch_size=32,
        lr=args.lr,
        patience=4,
        dropout=args.dropout,
        amp=False,
    )
    wanted = args.models.split(",")
    for mixer in ("savo", "mha_rank"):
        if mixer not in wanted:
            continue
        cfg = TrainConfig(**(base.to_dict() | {"mixer": mixer}))
        if mixer == "mha_rank":
            target = sum(p.numel() for p in MutationEncoder(encoder_config(base, arrays)).parameters())
            cfg.rank = matched_rank(cfg, arrays, target)
        proba, info = encoder_cv(arrays, cfg, splits, args.work, args.encoder_folds or len(splits))
        info |= {"rank": cfg.rank, "seconds": sum(info["fold_seconds"]), "config": cfg.to_dict()}
        _store(args.work, f"encoder[{mixer}]", proba, info)
    feats = {
        "catalogue": lambda: catalogue_features(arrays.counts, arrays.channel_padding),
        "exposures": lambda: exposure_features(arrays),
        "refit": lambda: refit_features(arrays, args.pcawg),
        "support": lambda: support_features(arrays),
    }
    feats = {k: make() for k, make in feats.items() if k in args.features.split(",")}
    for name, make in classifiers(seed=0).items():
        if name not in wanted:
            continue
        for feat, x in feats.items():
            t0 = time.perf_counter()
            proba = oof_proba(make, x, arrays.labels, len(arrays.classes), splits)
            _store(args.work, f"{name}[{feat}]", proba, {"seconds": time.perf_counter() - t0})
            print(f"  {name}[{feat}]: {time.perf_counter() - t0:.0f}s", flush=True)


def refit_features(arrays, pcawg_dir: Path) -> np.ndarray:
    """Exposure proportions + log1p burden from nanog1's own sparse fit of every PCAWG reference signature,
    blind to cancer type (the published attributions chose each genome's signatures from those found in its
    cancer type, so their support carries the label; see support_features)."""
    props, cols, start = refit_exposures(arrays.counts, pcawg_dir), [], 0
    for name, channels in CHANNEL_SETS.items():
        burden = arrays.counts[:, start : start + len(channels)].sum(1, keepdims=True)
        start += len(channels)
        cols += [props[name], np.log1p(burden)]
    return np.hstack(cols).astype(np.float32)


def refit_exposures(counts: np.ndarray, pcawg_dir: Path, names: dict | None = None) -> dict[str, np.ndarray]:
    """Type-blind sparse fit per channel set as proportions (columns in `names[set]` order when given)."""
    out, start = {}, 0
    for name, channels in CHANNEL_SETS.items():
        part = counts[:, start : start + len(channels)]
        start += len(channels)
        sigs = read_pcawg_signatures(pcawg_dir, name)
        permanent = tuple(s for s in ("SBS1", "SBS5") if s in sigs.columns)
        res = fit_signatures(pd.DataFrame(part, columns=list(channels)), sigs, FitConfig(permanent=permanent))
        x = res.exposures if names is None else res.exposures.reindex(columns=names[name]).fillna(0.0)
        x = x.to_numpy()
        out[name] = x / np.maximum(x.sum(1, keepdims=True), 1e-9)
    return out


def support_features(arrays) -> np.ndarray:
    """Which signatures the published attribution gave each genome (0/1), nothing else: a label-leak probe."""
    return np.hstack([(v > 0).astype(np.float32) for v in arrays.exposures.values()])


def _covered(splits, folds: list[int]) -> np.ndarray:
    return np.sort(np.concatenate([splits[k][1] for k in folds]))


def _metrics(proba, arrays, splits, folds: list[int]) -> dict:
    """Metrics over the test samples of the given folds (a model covers only the folds it ran)."""
    if isinstance(folds, str):
        folds = [int(f) for f in folds.split(",")]
    idx = _covered(splits, folds)
    return classification_metrics(proba[idx], arrays.labels[idx], arrays.classes)


def folds_seen(work: Path, splits) -> list[str]:
    """Fold subsets run by some encoder, other than all folds (for side-by-side on the same samples)."""
    seen = set()
    for path in work.glob("info_*.json"):
        folds = json.loads(path.read_text()).get("folds")
        if folds is not None and len(folds) < len(splits):
            seen.add(",".join(str(f) for f in folds))
    return sorted(seen)


def calibration_columns(proba: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Held-out ECE before/after temperature scaling, and top-1 on the 90 % / 80 % most confident genomes."""
    before, after = crossfit_calibration(proba, labels, folds=5, seed=0)
    curve = coverage_curve(proba, labels)
    at = {c: float(curve.loc[curve["coverage"] <= c, "accuracy"].iloc[-1]) for c in (0.9, 0.8)}
    return {"ece": before, "ece_scaled": after, "top1@90%": at[0.9], "top1@80%": at[0.8]}


def report(arrays, splits, work: Path, out: Path) -> None:
    """Metrics table + per-type recall of every model found in `work`, printed as markdown, saved as JSON."""
    rows, recall = {}, {}
    for path in sorted(work.glob("oof_*.npy")):
        name = path.stem.removeprefix("oof_")
        proba = np.load(path)
        info = json.loads((work / f"info_{name}.json").read_text())
        folds = info.get("folds", list(range(len(splits))))
        rows[name] = _metrics(proba, arrays, splits, folds) | {
            k: v for k, v in info.items() if k in ("seconds", "n_params", "rank")
        }
        for k in folds_seen(work, splits):
            rows[name] |= {f"top1[folds {k}]": _metrics(proba, arrays, splits, k).get("top1", np.nan)}
            rows[name] |= {f"macro_f1[folds {k}]": _metrics(proba, arrays, splits, k).get("macro_f1", np.nan)}
        covered = _covered(splits, folds)
        rows[name] |= calibration_columns(proba[covered], arrays.labels[covered])
        recall[name] = per_type_report(proba[covered], arrays.labels[covered], arrays.classes)["recall"]
    table = pd.DataFrame(rows).T
    per_type = pd.DataFrame(recall)
    per_type.insert(0, "n", np.bincount(arrays.labels, minlength=len(arrays.classes)))
    print(table.round(3).to_markdown())
    print(per_type.round(2).to_markdown())
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    payload = {"summary": table.to_dict(orient="index"), "per_type_recall": per_type.to_dict()}
    tmp.write_text(json.dumps(payload, indent=2, default=float))
    tmp.replace(out)


if __name__ == "__main__":
    main()
