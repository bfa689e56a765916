"""TCGA typing, catalogue view: the PCAWG model's encoder on NanoG1's own ingest of each source, same folds.

The encoder is the one `nanog1 train` fits in its catalogue view (nanog1.encoder.model, one token per
channel of the cohort layout, CLS from the whole catalogue; MAFs without a reference give SBS6, DBS78 and
the reference-free ID12 classes, the other sets are key-padding). It is trained here through the same
per-fold routine as benchmarks/pcawg_typing.py (`encoder_cv`: nanog1's `fit` on the fold's training part,
epoch picked on an inner stratified validation split, `predict` on the held-out fold), on the folds that
benchmarks/tcga_typing.py saved in `<typing-work>/<source>/folds.tsv`, so its rows pair with gradient
boosting's tumour by tumour. The catalogue view reads no gene bag or hotspot bag (those are event-view
inputs of the model), so these rows are the catalogue alone.

    nanog1 ingest ... -> tcga_mc3.h5ad, tcga_firehose.h5ad   (the MAFs, no reference)
    python benchmarks/tcga_catalogue.py --cohort mc3=tcga_mc3.h5ad --typing-work W --out O --seeds 0,1
    cp O/<source>/oof_* O/<source>/info_* W/<source>/; python benchmarks/tcga_typing.py --report-only --work W

Rows: `catalogue_<mixer>_s<seed>` (out-of-fold probabilities over the folds run, classes in the typing
benchmark's order: its types sorted), rewritten after every fold, so an interrupted run leaves the folds it
finished (`folds` in the info file); per-fold checkpoints stay in O/runs/ and a rerun resumes them.
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

from nanog1.encoder.cohort_io import read
from nanog1.encoder.config import TrainConfig
from nanog1.encoder.data import CohortArrays, cohort_arrays
from nanog1.schema import CANCER_TYPE

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pcawg_typing import encoder_cv  # noqa: E402  (the per-fold fit/predict loop, reused)


def source_arrays(h5ad: Path, folds_tsv: Path) -> tuple[CohortArrays, np.ndarray]:
    """The cohort's tumours in the order of the saved folds (the typing benchmark's rows: barcodes
    sorted), labels over their sorted types, and each tumour's fold. Every tumour of the folds file must
    be in the cohort (an ingest that lost one is an error, not a silently shorter table)."""
    folds = pd.read_csv(folds_tsv, sep="\t", index_col="Tumor_Sample_Barcode")["fold"]
    adata = read(h5ad)
    missing = folds.index.difference(adata.obs_names)
    if len(missing):
        raise SystemExit(f"{h5ad}: {len(missing)} tumours of {folds_tsv} are not in the cohort "
                         f"(first: {missing[0]}); ingest the same MAF the folds were drawn on")  # fmt: skip
    adata = adata[folds.index.to_numpy()].copy()
    classes = sorted(adata.obs[CANCER_TYPE].astype(str).unique())
    return cohort_arrays(adata, classes=classes, min_class_size=1), folds.to_numpy()


def fold_splits(fold: np.ndarray, folds: list[int]) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, test) indices of each saved fold in `folds`, in that order."""
    return [(np.flatnonzero(fold != k), np.flatnonzero(fold == k)) for k in folds]


def run_source(args, source: str, h5ad: Path) -> None:
    """Every seed of one source: out-of-fold probabilities + info, in the typing benchmark's format."""
    arrays, fold = source_arrays(h5ad, args.typing_work / source / "folds.tsv")
    folds = [int(f) for f in args.run_folds.split(",")] if args.run_folds else sorted(set(fold.tolist()))
    print(f"{source}: {arrays.n} tumours, {len(arrays.classes)} types, folds {folds}; "
          f"load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)  # fmt: skip
    out = args.out / source
    out.mkdir(parents=True, exist_ok=True)
    for seed in (int(s) for s in args.seeds.split(",")):
        cfg = TrainConfig(view="catalogue", mixer=args.mixer, hidden=args.hidden, layers=args.layers,
                          rank=args.rank, heads=args.heads, epochs=args.epochs, patience=args.patience,
                          lr=args.lr, batch_size=args.batch_size, val_fraction=args.val_fraction,
                          test_fraction=0.0, seed=seed, amp=False)  # fmt: skip
        name, t0 = f"catalogue_{args.mixer}_s{seed}", time.perf_counter()
        proba, infos = np.zeros((arrays.n, len(arrays.classes))), []
        for k, split in zip(folds, fold_splits(fold, folds), strict=True):  # written after every fold
            work = args.out / "runs" / source / f"s{seed}_fold{k}"  # a rerun resumes the fold's checkpoint
            part, info = encoder_cv(arrays, cfg, [split], work, 1)
            proba[split[1]] = part[split[1]]
            infos.append(info | {"fold": k})
            info = {"folds": [i["fold"] for i in infos], "seconds": time.perf_counter() - t0,
                    "n_params": info["n_params"], "rank": cfg.rank, "load": os.getloadavg(),
                    "config": cfg.to_dict(), "parts": infos}  # fmt: skip
            tmp = out / f"oof_{name}.tmp.npy"
            np.save(tmp, proba)
            tmp.replace(out / f"oof_{name}.npy")
            (out / f"info_{name}.json").write_text(json.dumps(info, default=float))
        print(f"{source} {name}: {time.perf_counter() - t0:.0f}s", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cohort", action="append", required=True, metavar="SOURCE=H5AD",
                    help="a source name of the typing benchmark and its NanoG1 cohort (repeatable)")
    ap.add_argument("--typing-work", type=Path, required=True, help="holds <source>/folds.tsv")
    ap.add_argument("--out", type=Path, default=Path("results/tcga_catalogue"))
    ap.add_argument("--seeds", default="0", help="comma-separated training seeds (one row each)")
    ap.add_argument("--run-folds", default="", help="comma-separated fold ids (default: every saved fold)")
    ap.add_argument("--mixer", default="savo")
    ap.add_argument("--hidden", type=int, default=TrainConfig.hidden)
    ap.add_argument("--layers", type=int, default=TrainConfig.layers)
    ap.add_argument("--rank", type=int, default=TrainConfig.rank)
    ap.add_argument("--heads", type=int, default=TrainConfig.heads)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--patience", type=int, default=TrainConfig.patience)
    ap.add_argument("--lr", type=float, default=TrainConfig.lr)
    ap.add_argument("--batch-size", type=int, default=TrainConfig.batch_size)
    ap.add_argument("--val-fraction", type=float, default=0.1, help="of each training part: picks the epoch")
    args = ap.parse_args()
    for item in args.cohort:
        source, sep, path = item.partition("=")
        if not sep or not Path(path).is_file():
            ap.error(f"--cohort {item!r}: expected SOURCE=H5AD with an existing file")
        run_source(args, source, Path(path))


if __name__ == "__main__":
    main()
