# ruff: noqa: E501
"""Product path vs the event benchmark's model on one split (issues 28/31): MC3 fold 0, one job per call.

The benchmark's model (`tcga_events.py`) was a class of its own, EventModel, when these runs were made; it is
now the product's MutationEncoder event view with the benchmark's CLS inputs (the same function), so the gap
measured here is one of recipe and inputs, not of model class.

Trains the event-view encoder of `nanog1 train --view events` (the product path, nanog1.encoder.loop.fit) on
MC3 alone with the split of `tcga_events.py finetune` fold 0: test = the saved fold 0 (`folds.tsv`), and
the validation part drawn exactly as that benchmark draws it (a stratified 10 % of the training tumours,
rng seeded 1000 x seed + fold, over the tumours in barcode order), the rest training. The recipe is
tcga_exome_ship.py's RECIPE with #28's shape (hidden 64, 2 layers, rank 16, 4 heads, max_events 8, gene
bag 300, hotspots 5 keyed `both`), then any `--set KEY=VALUE` overrides: one ablation per call.

    OMP_NUM_THREADS=1 python benchmarks/exome_gap.py --mc3 MC3.h5ad --folds results/typing/mc3/folds.tsv \
        --out results/gap/NAME [--set batch_size=96 ...] [--keep-vaf]

Writes NAME.json (test top-1 / macro-F1, best epoch, validation history, seconds, load) and NAME_test.npz
(the test tumours' probabilities). The test tumours are scored twice: as they are, and as an SNV-only file
(a Strelka2 SNV VCF alone) gives them: indel events removed, ID83/ID12 marked unmeasured, bag and consequence
shares recomputed from the rest (`snv_only_top1` / `snv_only_macro_f1`; nanog1.encoder.data.without_indels).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

#: #28's best CPU shape (tcga_events.py finetune, BENCHMARKS.md "Protein-change keys...") on the product path.
SHAPE = dict(hidden=64, layers=2, rank=16, heads=4, max_events=8, gene_bag=300, hotspots=5, hotspot_key="both")


def diagnostics(args) -> None:
    """A diagnostic switch the product has no option for, patched in for this process only."""
    from nanog1.encoder import data

    if args.csq_zscore:
        raw = data.consequence_shares

        def zscored(arrays):
            x = raw(arrays)
            return (x - x.mean(0)) / (x.std(0) + 1e-6)

        data.consequence_shares = zscored


def mc3_in_barcode_order(mc3_path: Path, folds: Path):
    """The MC3 cohort (UNKNOWN dropped, as in every TCGA benchmark) in barcode order, and each tumour's
    saved fold (tcga_typing.py's folds.tsv)."""
    from tcga_exome_ship import read_sources

    mc3 = read_sources(mc3_path, mc3_path)[0]
    mc3 = mc3[np.argsort(np.asarray(mc3.obs_names, dtype=str), kind="stable")].copy()
    fold = pd.read_csv(folds, sep="\t", index_col=0)["fold"].reindex(mc3.obs_names).to_numpy()
    if np.isnan(fold).any():
        raise SystemExit(f"{int(np.isnan(fold).sum())} tumours have no saved fold")
    return mc3, fold


def fold_split(labels: np.ndarray, fold: np.ndarray, k: int, seed: int):
    """(training, validation, test) rows: test = saved fold `k`; validation = a stratified 10 % of the
    rest drawn as tcga_events.run_job draws it (rng 1000 x seed + fold); training = the remainder."""
    from tcga_events import stratified_subset

    rows = np.arange(len(fold))
    train, test = rows[fold != k], rows[fold == k]
    val = train[stratified_subset(labels[train], 0.1, np.random.default_rng(1000 * seed + k))]
    return np.setdiff1d(train, val), val, test


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mc3", type=Path, required=True, help="MC3 ingested with codons (.h5ad)")
    ap.add_argument("--folds", type=Path, required=True, help="tcga_typing.py's mc3/folds.tsv")
    ap.add_argument("--fold", type=int, default=0)
    ap.add_argument("--out", type=Path, required=True, help="job folder; NAME.json is written beside it")
    ap.add_argument("--set", action="append", default=[], help="recipe override KEY=VALUE (repeatable)")
    ap.add_argument("--keep-vaf", action="store_true", help="keep the VAF token field (the benchmark has it)")
    ap.add_argument("--csq-zscore", action="store_true", help="diagnostic: the consequence shares z-scored over "
                    "the cohort, as the benchmark's summary is (needs --set consequence_shares=true)")
    ap.add_argument("--bench-loss", action="store_true", help="the benchmark's loss: class weights n_c^-0.5 and "
                    "label smoothing 0.1 (--set class_weight_power=0.5 --set label_smoothing=0.1; the product's "
                    "default: n_c^-1, no smoothing)")
    ap.add_argument("--train-snv-only", action="store_true", help="reference: train (and validate) on every "
                    "tumour as its SNV-only file would give it (without_indels), the ceiling for SNV-only inputs")
    args = ap.parse_args()
    diagnostics(args)

    import torch
    from tcga_exome_ship import DROP, recipe_of, source_arrays

    from nanog1.encoder.config import TrainConfig
    from nanog1.encoder.data import without_indels
    from nanog1.encoder.inference import predict
    from nanog1.encoder.loop import fit, loss_context
    from nanog1.encoder.metrics import classification_metrics

    torch.set_num_threads(1)
    loss = ["class_weight_power=0.5", "label_smoothing=0.1"] if args.bench_loss else []
    recipe = recipe_of([f"{k}={v}" for k, v in SHAPE.items()] + loss + args.set)
    cfg = TrainConfig(**recipe)
    mc3, fold = mc3_in_barcode_order(args.mc3, args.folds)
    arrays = source_arrays([mc3], None, cfg.min_gene_tumours, () if args.keep_vaf else DROP)
    train, val, test = fold_split(arrays.labels, fold, args.fold, cfg.seed)
    if args.train_snv_only:
        arrays = without_indels(arrays)
    t0 = time.perf_counter()
    result = fit(arrays, cfg, args.out, train, val, resume=False)
    ctx = loss_context(cfg, result.arrays, train, torch.device("cpu"))
    pred = predict(result.model, result.arrays, test, ctx, torch.device("cpu"), cfg.batch_size,
                   cfg.max_events, False)  # fmt: skip
    test_m = classification_metrics(pred.proba, result.arrays.labels[test], result.arrays.classes)
    # The same test tumours as an SNV-only file (a Strelka2 SNV VCF alone) gives them: indel events gone,
    # ID83/ID12 recorded unmeasured, bag and consequence shares from what is left (issue 31).
    snv = without_indels(result.arrays, test)
    pred_snv = predict(result.model, snv, test, ctx, torch.device("cpu"), cfg.batch_size, cfg.max_events, False)
    snv_m = classification_metrics(pred_snv.proba, snv.labels[test], snv.classes)
    np.savez_compressed(args.out.parent / f"{args.out.name}_test.npz", index=test, labels=result.arrays.labels[test],
                        proba=pred.proba, proba_snv_only=pred_snv.proba)
    info = {"set": args.set, "keep_vaf": args.keep_vaf, "train_snv_only": args.train_snv_only, "csq_zscore": args.csq_zscore,
            "bench_loss": args.bench_loss, "recipe": recipe, "n_train": len(train),
            "n_val": len(val), "n_test": len(test), "test_top1": test_m["top1"],
            "test_macro_f1": test_m["macro_f1"], "snv_only_top1": snv_m["top1"],
            "snv_only_macro_f1": snv_m["macro_f1"], "best_epoch": result.best_epoch,
            "val_top1": [h["val_top1"] for h in result.history],
            "val_top1_best": result.history[result.best_epoch]["val_top1"],
            "seconds": time.perf_counter() - t0, "load": os.getloadavg(),
            "n_params": result.metrics["n_params"]}  # fmt: skip
    path = args.out.parent / f"{args.out.name}.json"
    path.write_text(json.dumps(info, indent=1, default=float))
    print(f"{args.out.name}: test top1 {info['test_top1']:.3f} macro-F1 {info['test_macro_f1']:.3f} (SNV-only: "
          f"{info['snv_only_top1']:.3f} / {info['snv_only_macro_f1']:.3f}), val top1 "
          f"{info['val_top1_best']:.3f} at epoch {result.best_epoch}, {info['seconds']:.0f}s", flush=True)


if __name__ == "__main__":
    main()
