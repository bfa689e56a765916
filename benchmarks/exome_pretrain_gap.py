# ruff: noqa: E501
"""Product-path contrastive pretraining, then fine-tuning on few labels: MC3 fold 0 (issue 28), one seed per call.

Pretrains the event-view encoder with `nanog1 pretrain --objective contrastive`'s code (nanog1.encoder.loop.fit,
task pretrain) on the tumours of both sources except every tumour of the patients (barcode's first 12
characters) in MC3's saved test fold, labels unused; 5 % of them kept aside for the view accuracy. Then,
as `nanog1 finetune` does (nanog1.encoder.finetune: the pretrained run's vocabulary, bag and consequence
scale; a fresh type head; the same fixed budget for the pretrained and the scratch init, head lr x 10 for
the pretrained one), fine-tunes on a stratified `--fraction` of exome_gap.py's fold-0 training part and
scores the final models on its validation part and on the test fold. Shape: #28's (exome_gap.SHAPE) with
the product's consequence shares on.

    OMP_NUM_THREADS=1 python benchmarks/exome_pretrain_gap.py --mc3 MC3.h5ad --firehose FH.h5ad \\
        --folds results/typing/mc3/folds.tsv --out results/ptgap/NAME [--seed 1] [--pt-epochs 20] [--ft-epochs 40]

Writes NAME.json (view accuracy, validation and test top-1 / macro-F1 of both inits, seconds, load).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


def pretrain_rows(sample_ids: list[str], held: set[str], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(pretraining, aside) rows: every tumour whose patient is not in `held`, 5 % of them aside."""
    from tcga_exome_ship import patient

    rows = np.flatnonzero(~np.isin(patient(sample_ids), sorted(held)))
    aside = np.random.default_rng(seed).choice(rows, len(rows) // 20, replace=False)
    return np.setdiff1d(rows, aside), np.sort(aside)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mc3", type=Path, required=True, help="MC3 ingested with codons (.h5ad)")
    ap.add_argument("--firehose", type=Path, required=True, help="Firehose ingested with codons (.h5ad)")
    ap.add_argument("--folds", type=Path, required=True, help="tcga_typing.py's mc3/folds.tsv")
    ap.add_argument("--fold", type=int, default=0)
    ap.add_argument("--fraction", type=float, default=0.1, help="labelled share of the training part")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--pt-epochs", type=int, default=20)
    ap.add_argument("--pt-batch", type=int, default=128, help="pretraining batch (InfoNCE negatives)")
    ap.add_argument("--ft-epochs", type=int, default=40)
    ap.add_argument("--out", type=Path, required=True, help="job folder; NAME.json is written beside it")
    args = ap.parse_args()

    import torch
    from exome_gap import SHAPE, fold_split, mc3_in_barcode_order
    from tcga_events import stratified_subset
    from tcga_exome_ship import DROP, patient, read_sources, recipe_of, source_arrays

    from nanog1.encoder.config import TrainConfig
    from nanog1.encoder.data import cohort_arrays, for_model
    from nanog1.encoder.finetune import new_head_model, train_with_budget
    from nanog1.encoder.inference import predict
    from nanog1.encoder.loop import fit, loss_context
    from nanog1.encoder.metrics import classification_metrics

    torch.set_num_threads(1)
    pairs = [f"{k}={v}" for k, v in SHAPE.items()] + ["consequence_shares=true", f"seed={args.seed}"]
    cfg = TrainConfig(**recipe_of(pairs + ["task=pretrain", "objective=contrastive", f"epochs={args.pt_epochs}",
                                           f"batch_size={args.pt_batch}", f"patience={args.pt_epochs}"]))
    mc3, fold = mc3_in_barcode_order(args.mc3, args.folds)
    firehose = read_sources(args.mc3, args.firehose)[1]
    both = source_arrays([mc3, firehose], None, cfg.min_gene_tumours, DROP)
    held = set(patient(np.asarray(mc3.obs_names)[fold == args.fold]))
    pt_rows, aside = pretrain_rows(both.sample_ids, held, args.seed)
    t0 = time.perf_counter()
    pre = fit(both, cfg, args.out / "pretrain", pt_rows, aside, resume=False)
    pt_seconds = time.perf_counter() - t0
    saved = {"encoder_config": pre.encoder_config.to_dict(), "state_dict": pre.model.state_dict()}

    ft = replace(cfg, task="cancer_type", epochs=args.ft_epochs, batch_size=32)
    arrays = for_model(cohort_arrays(mc3, min_class_size=1), saved["encoder_config"])
    train, val, test = fold_split(arrays.labels, fold, args.fold, args.seed)
    labelled = train[stratified_subset(arrays.labels[train], args.fraction, np.random.default_rng(args.seed))]
    device, out = torch.device("cpu"), {}
    for name, pretrained in (("pretrained", True), ("scratch", False)):
        torch.manual_seed(args.seed)
        model = new_head_model(saved, len(arrays.classes), pretrained, False)
        train_with_budget(model, arrays, ft, labelled, device, (10.0, 1.0) if pretrained else (1.0, 1.0))
        ctx = loss_context(ft, arrays, labelled, device)
        for part, rows in (("val", val), ("test", test)):
            proba = predict(model, arrays, rows, ctx, device, ft.batch_size, ft.max_events, False).proba
            m = classification_metrics(proba, arrays.labels[rows], arrays.classes)
            out |= {f"{name}_{part}_top1": m["top1"], f"{name}_{part}_macro_f1": m["macro_f1"]}
    last = pre.history[-1]
    info = {"seed": args.seed, "pt_epochs": args.pt_epochs, "pt_batch": args.pt_batch, "ft_epochs": args.ft_epochs,
            "fraction": args.fraction, "n_pretrain": len(pt_rows), "n_aside": len(aside),
            "n_labelled": len(labelled), "n_val": len(val), "n_test": len(test),
            "pt_view_acc": last.get("val_view_acc"), "pt_view_chance": last.get("val_view_chance"),
            "pt_val_loss": last.get("val_loss"), "pt_seconds": pt_seconds,
            "seconds": time.perf_counter() - t0, "load": os.getloadavg(), **out}  # fmt: skip
    path = args.out.parent / f"{args.out.name}.json"
    path.write_text(json.dumps(info, indent=1, default=float))
    print(json.dumps(info), flush=True)


if __name__ == "__main__":
    main()
