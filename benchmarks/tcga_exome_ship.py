# ruff: noqa: E501
"""The packaged TCGA exome model (`nanog1 models show tcga-exome`): jobs, gradient boosting, packaging.

Data: both TCGA sources of `../shared/data/tcga/` as NanoG1 ingested them (no reference, every FILTER
value: `nanog1 ingest mutations.maf.gz --filter all`), merged into one cohort; MC3's UNKNOWN tumours
dropped; the type set is the union of the two sources' cohort codes (32). The same patient is often in
both sources (5,404 of them: one tumour called by two pipelines), so every split here is **by patient**:

* 5-fold CV: a patient's fold is the saved MC3 fold of its (first) MC3 tumour (`tcga_typing.py`'s
  `folds.tsv`), else its saved Firehose fold; both calls of one tumour fall in one fold.
* transfer: train on one source only, test on the other source's tumours of the types the training
  source has, whose patients the training source lacks (mc3_to_firehose, firehose_to_mc3); the same
  source's other tumours (patients the training source also has) are scored apart ("same patients").
* final: every tumour; a patient-grouped, type-stratified 1/7 is the validation part (epoch choice,
  temperature, abstention threshold).

Every job trains the event-view encoder of `nanog1 train --view events` (the product path that `nanog1
predict` scores) with the recipe in RECIPE, on CPU. Gradient boosting (issue 28's features) is compared on
the same tumours: its CV rows are tcga_typing.py's out-of-fold predictions per source (trained on that
source alone, the saved folds); its transfer rows are trained here (`gb-transfer`).

    W=results/tcga_typing   # tcga_typing.py's work folder (folds.tsv, oof_gradient_boosting.npy per source)
    OMP_NUM_THREADS=1 python benchmarks/tcga_exome_ship.py gb-transfer --typing-work $W --out results/exome
    OMP_NUM_THREADS=1 python benchmarks/tcga_exome_ship.py jobs --mc3 MC3.h5ad --firehose FH.h5ad \
        --typing-work $W --out results/exome [--jobs cv0,cv1,cv2,cv3,cv4,mc3_to_firehose,firehose_to_mc3,final]
    OMP_NUM_THREADS=1 python benchmarks/tcga_exome_ship.py package --mc3 MC3.h5ad --firehose FH.h5ad \
        --typing-work $W --results results/exome
    python benchmarks/tcga_exome_ship.py seeds --results results/exome --seed-results results/exome_s1
        # top-1 / macro-F1 per seed folder (`jobs --set seed=1 --out results/exome_s1`) and their spread
    python benchmarks/tcga_exome_ship.py rule --results NEW --seed-results NEW_s1 --versus-seeds OLD OLD_s1 \
        --seed-spread 0.0103   # the seed-means replacement rule (BENCHMARKS.md), written to NEW/rule.json
    python benchmarks/tcga_exome_ship.py card   # the shipped card's recipe lines, regenerated from its model.pt
    python benchmarks/tcga_exome_ship.py patterns --mc3 MC3.h5ad --firehose FH.h5ad
        # thresholds per measured pattern (SNV-only: no indels) on the final job's validation tumours
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

ROOT = Path(__file__).resolve().parents[1]
TCGA = ROOT.parent / "shared" / "data" / "tcga"
OUT = ROOT / "nanog1" / "encoder" / "pretrained" / "tcga-exome"
SOURCES = ("mc3", "firehose")
JOBS = ("cv0", "cv1", "cv2", "cv3", "cv4", "mc3_to_firehose", "firehose_to_mc3", "final")
#: `nanog1 train --view events` as measured on the MC3 CLI split (BENCHMARKS.md, TCGA typing: 0.466 top-1),
#: regularised (thinning 0.5, genes of < 10 tumours -> UNK, dropout 0.2, weight decay 0.05): chosen over the
#: unregularised recipe on the final job's validation tumours (BENCHMARKS.md, issue 31, tcga-exome); no
#: hotspot bag by default (`--set hotspots=5` adds #28's bag of sites in >= 5 training tumours: `site_tokens`).
RECIPE = dict(task="cancer_type", view="events", mixer="savo", hidden=32, layers=1, rank=8, heads=2,
              epochs=10, batch_size=32, max_events=128, gene_bag=300, patience=4, register_model=False,
              thin=0.5, min_gene_tumours=10, dropout=0.2, weight_decay=0.05, hotspots=0,
              hotspot_key="site", consequence_shares=False)
#: Token fields left out (see source_arrays): VAF presence is a Firehose calling artefact tied to the type.
DROP = ("vaf",)
TRAIN, VAL, TEST, SAME = 0, 1, 2, 3  # SAME: the test source's tumours of patients the training source has


def patient(barcodes) -> np.ndarray:
    """TCGA patient id of each tumour barcode: its first 12 characters (TCGA-02-0001 of TCGA-02-0001-01C)."""
    return np.asarray([str(b)[:12] for b in barcodes])


def read_sources(mc3: Path, firehose: Path) -> list:
    """The two ingested cohorts (UNKNOWN dropped), each with obs['source']. They are not merged into one
    AnnData: `nanog1.genomics.merge` keeps only the channel/position token arrays (gene, consequence and
    read counts are dropped), which the event view needs; `source_arrays` joins them instead."""
    from nanog1.genomics.cohort import read_cohort
    from nanog1.schema import CANCER_TYPE

    out = []
    for name, path in (("mc3", mc3), ("firehose", firehose)):
        adata = read_cohort(path)
        adata = adata[(adata.obs[CANCER_TYPE].astype(str) != "UNKNOWN").to_numpy()].copy()
        adata.obs["source"] = name
        out.append(adata)
    return out


def source_arrays(parts: list, classes: list[str] | None, min_gene_tumours: int, drop: tuple[str, ...] = ()):
    """One CohortArrays over the cohorts `parts` (rows in order): event ids in one vocabulary built from
    every part's tokens (labels unused), labels over `classes` (default: every type; others -> -1).
    Fields in `drop` get an empty vocabulary (every token UNK, in training and in `predict` alike): VAF,
    because Firehose has no read counts for 7 cohorts (CESC, COAD, GBM, KICH, KIRC, OV, READ), so its
    absence names the type."""
    from dataclasses import replace

    from nanog1.encoder.data import cohort_arrays, with_event_vocab
    from nanog1.genomics.event_vocab import build_vocab
    from nanog1.schema import CANCER_TYPE

    if classes is None:
        classes = sorted({str(t) for a in parts for t in a.obs[CANCER_TYPE]})
    arrays = [cohort_arrays(a, classes=classes, min_class_size=1) for a in parts]
    vocab = build_vocab([a.tokens for a in arrays], {"gene": min_gene_tumours})
    vocab.values.update({name: [] for name in drop})
    arrays = [with_event_vocab(a, vocab) for a in arrays]
    ids = {k: np.concatenate([a.event_ids[k] for a in arrays]) for k in arrays[0].event_ids if k != "offsets"}
    lengths = np.concatenate([np.diff(a.event_ids["offsets"]) for a in arrays])
    ids["offsets"] = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    if any(not np.array_equal(a.channel_padding, arrays[0].channel_padding) for a in arrays):
        raise SystemExit("the sources measured different channel sets")
    return replace(arrays[0], sample_ids=[s for a in arrays for s in a.sample_ids],
                   counts=np.concatenate([a.counts for a in arrays]),
                   labels=np.concatenate([a.labels for a in arrays]), tokens=joined_tokens(parts, ids["offsets"]),
                   event_ids=ids)


def joined_tokens(parts: list, offsets: np.ndarray) -> dict:
    """The parts' tokens joined in row order (nanog1.genomics.merge.concat_tokens: contigs, gene and codon
    ids remapped onto the union of the parts' tables): what the hotspot bag reads (sites from contig and
    position, codons from gene and protein change: nanog1.genomics.gene_bag.hotspot_pairs); the other token
    fields are already in `event_ids`. `offsets` (the joined event ids') must agree."""
    from nanog1.genomics.merge import concat_tokens

    tokens = concat_tokens(parts)
    if tokens is None or not np.array_equal(tokens["offsets"], offsets):
        raise SystemExit("the sources' tokens do not line up with their event ids")
    return tokens


def patient_folds(barcodes, source: np.ndarray, work: Path) -> np.ndarray:
    """CV fold of each tumour: its patient's saved MC3 fold when the patient is in MC3, else the saved
    Firehose fold (tcga_typing.py's folds.tsv per source)."""
    saved = {s: pd.read_csv(work / s / "folds.tsv", sep="\t", index_col=0)["fold"] for s in SOURCES}
    pat = patient(barcodes)
    by_patient: dict[str, int] = {}
    for s in SOURCES:  # MC3 first: its folds win
        for b, k in sorted(saved[s].items()):
            by_patient.setdefault(b[:12], int(k))
    fold = np.array([by_patient.get(p, -1) for p in pat])
    if (fold < 0).any():
        raise SystemExit(f"{int((fold < 0).sum())} tumours have no saved fold: wrong --typing-work?")
    return fold


def grouped_val(rows: np.ndarray, labels: np.ndarray, groups: np.ndarray, seed: int = 0) -> np.ndarray:
    """A patient-grouped, type-stratified 1/7 of `rows` (the validation part of a job)."""
    from sklearn.model_selection import StratifiedGroupKFold

    split = StratifiedGroupKFold(n_splits=7, shuffle=True, random_state=seed)
    _, val = next(split.split(np.zeros(len(rows)), labels[rows], groups[rows]))
    return rows[val]


def job_roles(job: str, types: np.ndarray, source: np.ndarray, pat: np.ndarray, fold: np.ndarray) -> np.ndarray:
    """Role of each tumour in `job` (TRAIN / VAL / TEST / SAME, -1 = unused)."""
    roles = np.full(len(types), -1)
    if job.startswith("cv"):
        test = fold == int(job[2:])
        roles[test], roles[~test] = TEST, TRAIN
    elif job == "final":
        roles[:] = TRAIN
    else:
        src, dst = job.split("_to_")
        train = source == src
        shared = np.isin(types, np.unique(types[train]))
        seen = np.isin(pat, pat[train])
        roles[train] = TRAIN
        roles[(source == dst) & shared & ~seen] = TEST
        roles[(source == dst) & shared & seen] = SAME
    train_rows = np.flatnonzero(roles == TRAIN)
    roles[grouped_val(train_rows, types, pat)] = VAL
    return roles


def run_job(parts: list, job: str, roles: np.ndarray, out: Path, recipe: dict) -> None:
    """Train the job's encoder on its TRAIN rows (epoch on VAL), score VAL/TEST/SAME; write
    `<job>.npz` (probabilities, labels, classes, rows) and, for `final`, the model folder. A transfer job's
    classes are its training source's types."""
    import torch

    from nanog1.encoder.config import TrainConfig
    from nanog1.encoder.inference import predict
    from nanog1.encoder.input_filter import cohort_rule
    from nanog1.encoder.loop import MODEL, fit, loss_context, save_model
    from nanog1.schema import CANCER_TYPE

    torch.set_num_threads(1)
    cfg = TrainConfig(**recipe)
    types = np.concatenate([a.obs[CANCER_TYPE].astype(str).to_numpy() for a in parts])
    classes = sorted(set(types[roles == TRAIN]))
    arrays = source_arrays(parts, classes, cfg.min_gene_tumours, DROP)
    tr, val = np.flatnonzero(roles == TRAIN), np.flatnonzero(roles == VAL)
    t0 = time.perf_counter()
    result = fit(arrays, cfg, out / job, tr, val, resume=False)
    arrays = result.arrays
    ctx = loss_context(cfg, arrays, tr, torch.device("cpu"))
    scored = np.flatnonzero((roles >= 0) & (roles != TRAIN))
    pred = predict(result.model, arrays, scored, ctx, torch.device("cpu"), cfg.batch_size, cfg.max_events, False)
    np.savez_compressed(
        out / f"{job}.npz", proba=pred.proba, labels=arrays.labels[scored], role=roles[scored],
        barcode=np.asarray(arrays.sample_ids, dtype=str)[scored], classes=np.asarray(arrays.classes),
        counts=arrays.counts[scored].astype(np.float32),
        train_counts=arrays.counts[tr].astype(np.float32), train_labels=arrays.labels[tr],
    )
    info = {"job": job, "seconds": time.perf_counter() - t0, "load": os.getloadavg(),
            "n": {k: int((roles == v).sum()) for k, v in (("train", TRAIN), ("val", VAL), ("test", TEST), ("same", SAME))},
            "best_epoch": result.best_epoch, "history": result.history, "n_params": result.metrics["n_params"],
            "gene_bag": len(result.encoder_config.gene_bag), "hotspots": len(result.encoder_config.hotspots),
            "genes_in_vocab": len(arrays.event_vocab.values["gene"])}
    (out / f"{job}.json").write_text(json.dumps(info, indent=1, default=float))
    if job == "final":
        save_model(out / job / MODEL, result, arrays, cfg, {"input_filter": cohort_rule(parts[0])})
    print(f"{job}: {info['n']} best epoch {result.best_epoch} {info['seconds']:.0f}s; bag {info['gene_bag']} of "
          f"{info['genes_in_vocab']} genes + {info['hotspots']} hotspot sites", flush=True)


def recipe_of(pairs: list[str]) -> dict:
    """RECIPE with `key=value` overrides (numbers parsed; other values kept as strings)."""
    out = dict(RECIPE)
    for pair in pairs:
        key, value = pair.split("=", 1)
        out[key] = _parsed(value)
    return out


def _parsed(value: str):
    """An override's value: true/false, an int, a float, else the string itself (hotspot_key=both)."""
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    for kind in (int, float):
        with contextlib.suppress(ValueError):
            return kind(value)
    return value


def jobs(args) -> None:
    from nanog1.schema import CANCER_TYPE

    parts = read_sources(args.mc3, args.firehose)
    barcodes = np.concatenate([np.asarray(a.obs_names, dtype=str) for a in parts])
    types = np.concatenate([a.obs[CANCER_TYPE].astype(str).to_numpy() for a in parts])
    source = np.concatenate([a.obs["source"].to_numpy() for a in parts])
    pat = patient(barcodes)
    fold = patient_folds(barcodes, source, args.typing_work)
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"both sources: {len(barcodes)} tumours, {len(set(types))} types, {len(set(pat))} patients", flush=True)
    for job in args.jobs.split(","):
        run_job(parts, job, job_roles(job, types, source, pat, fold), args.out, recipe_of(args.set))


# --- gradient boosting on the transfer splits --------------------------------------------------------
def gb_transfer(args) -> None:
    """Gradient boosting (tcga_typing.py's features and estimator) trained on one source, scored on the
    transfer tumours of the other (the rows `job_roles` calls TEST and SAME)."""
    from tcga_typing import N_GENES, build_cohort, classifiers

    cohorts = {s: build_cohort(args.tcga / s, args.typing_work / s / "folds.tsv", 5, 0) for s in SOURCES}
    args.out.mkdir(parents=True, exist_ok=True)
    for src, dst in (("mc3", "firehose"), ("firehose", "mc3")):
        a, b = cohorts[src], cohorts[dst]
        names = sorted(set(a.dense_names) | set(b.dense_names))
        dense = {s: pd.DataFrame(c.dense, columns=c.dense_names).reindex(columns=names, fill_value=0.0).to_numpy()
                 for s, c in ((src, a), (dst, b))}
        freq = np.asarray(a.genes.sum(0)).ravel()
        top = a.gene_names[np.argsort(-freq, kind="stable")[:N_GENES]]
        cols_b = pd.Index(b.gene_names).get_indexer(top)
        genes_b = np.zeros((len(b.labels), len(top)), np.float32)
        genes_b[:, cols_b >= 0] = b.genes[:, cols_b[cols_b >= 0]].toarray()
        x_a = np.hstack([dense[src], a.genes[:, pd.Index(a.gene_names).get_indexer(top)].toarray()])
        x_b = np.hstack([dense[dst], genes_b])
        types_b = np.asarray(b.classes)[b.labels]
        rows = np.flatnonzero(np.isin(types_b, a.classes))
        t0 = time.perf_counter()
        model = classifiers(0)["gradient_boosting"]().fit(x_a, a.labels)
        proba = np.zeros((len(rows), len(a.classes)))
        proba[:, model.classes_] = model.predict_proba(x_b[rows])
        np.savez_compressed(args.out / f"gb_{src}_to_{dst}.npz", proba=proba, barcode=b.barcodes[rows].astype(str),
                            classes=np.asarray(a.classes))
        print(f"GB {src}->{dst}: {len(rows)} tumours, top1 "
              f"{(np.asarray(a.classes)[proba.argmax(1)] == types_b[rows]).mean():.3f}, "
              f"{time.perf_counter() - t0:.0f}s, load {os.getloadavg()[0]:.1f}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=["jobs", "gb-transfer", "package", "seeds", "rule", "no-protein", "card",
                                     "patterns"],
                    help="seeds: top-1 / macro-F1 of --results and each --seed-results folder and their spread; "
                    "rule: the seed-means replacement rule of --results + --seed-results against --versus-seeds; "
                    "no-protein: --results' final model on its validation tumours with and without protein changes; "
                    "card: rewrite --model-out's card recipe (nanog1 train equivalent) from its model.pt, no retraining; "
                    "patterns: refit --model-out's thresholds per measured pattern on the final job's validation tumours")
    ap.add_argument("--tcga", type=Path, default=TCGA)
    ap.add_argument("--mc3", type=Path, help="MC3 ingested by `nanog1 ingest --filter all` (.h5ad)")
    ap.add_argument("--firehose", type=Path, help="Firehose ingested likewise (.h5ad)")
    ap.add_argument("--typing-work", type=Path, default=Path("results/tcga_typing"))
    ap.add_argument("--out", type=Path, default=Path("results/exome"))
    ap.add_argument("--results", type=Path, default=Path("results/exome"), help="seed 0's jobs (and GB)")
    ap.add_argument("--seed-results", type=Path, nargs="*", default=[],
                    help="package: further seeds' job folders (`jobs --set seed=N --out ...`): a seed ensemble")
    ap.add_argument("--jobs", default=",".join(JOBS))
    ap.add_argument("--model-out", type=Path, default=OUT)
    ap.add_argument("--set", action="append", default=[], help="recipe override KEY=VALUE (repeatable)")
    ap.add_argument("--versus", type=Path, help="package: the shipped model's package_metrics.json; the card then "
                    "records the replacement rule's checks (versus_previous in tcga_exome_package.py)")
    ap.add_argument("--seed-spread", type=float, default=0.0, help="package --versus: CV top-1 gain it must beat")
    ap.add_argument("--versus-seeds", type=Path, nargs="*", default=[],
                    help="rule: the shipped recipe's seed folders (seed 0 first); --seed-spread is the floor of S")
    args = ap.parse_args()
    if args.mode in ("package", "seeds", "rule", "no-protein", "card", "patterns"):
        from tcga_exome_package import (
            package,
            patterns_mode,
            protein_ablation,
            recard,
            rule_mode,
            seed_spread,
        )

        {"package": package, "seeds": seed_spread, "rule": rule_mode, "no-protein": protein_ablation,
         "card": recard, "patterns": patterns_mode}[args.mode](args)
    else:
        {"jobs": jobs, "gb-transfer": gb_transfer}[args.mode](args)


if __name__ == "__main__":
    main()
