"""Cancer-type prediction on TCGA exomes (MC3, Firehose), 5-fold stratified CV per source, fixed folds.

Every row of the table is scored on the same folds: the folds are drawn once per source (seeded
StratifiedKFold over the tumours sorted by barcode) and saved to `<work>/<source>/folds.tsv`; a later
run (or the GPU script for the encoders) reads that file instead of drawing again.

Classical baselines, as in issue 28: gradient boosting (HistGradientBoosting) and logistic regression on
SBS6 shares, variant-type shares, consequence (Variant_Classification) shares, log burden and the
300 most often mutated genes as 0/1. The genes are chosen inside each training fold (tumour counts of
the training part only), so the held-out fold never picks its own features.

Metrics: top-1, top-3, macro-F1, balanced accuracy, per-type recall, and a paired bootstrap interval
(tumours redrawn with replacement, the same draw for both models) of each row's top-1 and macro-F1
minus gradient boosting's. Encoder rows come in as `oof_<name>.npy` (+ `info_<name>.json`) in the
same work folder and are tabulated beside the baselines.

    OMP_NUM_THREADS=1 python benchmarks/tcga_typing.py --sources mc3,firehose --work results/tcga_typing
    python benchmarks/tcga_typing.py --report-only --work results/tcga_typing   # tabulate only
"""

from __future__ import annotations

import argparse
import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from nanog1.encoder.baselines import classifiers as package_classifiers
from nanog1.encoder.metrics import classification_metrics, per_type_report
from nanog1.genomics.protein import codon_key

TCGA = Path(__file__).resolve().parents[2] / "shared/data/tcga"
SBS6 = ("C>A", "C>G", "C>T", "T>A", "T>C", "T>G")
VARIANT_TYPES = ("SNP", "DNP", "TNP", "ONP", "INS", "DEL")
_COMPLEMENT = str.maketrans("ACGT", "TGCA")
N_GENES = 300
MAX_HOTSPOTS = 2000
REFERENCE = "gradient_boosting"
PROTEIN = ("HGVSp_Short", "Protein_Change")  # the two sources' protein-change columns


@dataclass
class Cohort:
    """One source's tumours: dense per-tumour features, the tumour x gene 0/1 matrix, labels and folds."""

    barcodes: np.ndarray
    labels: np.ndarray
    classes: list[str]
    dense: np.ndarray
    dense_names: list[str]
    genes: sparse.csr_matrix
    gene_names: np.ndarray
    fold: np.ndarray
    sites: sparse.csr_matrix | None = None  # tumour x mutated site ("chrom:Start_Position") 0/1
    codons: sparse.csr_matrix | None = None  # tumour x mutated codon ("KRAS:p.G12", protein change) 0/1

    def splits(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """(train, test) index pairs of the saved folds."""
        return [
            (np.flatnonzero(self.fold != k), np.flatnonzero(self.fold == k))
            for k in range(self.fold.max() + 1)
        ]


def read_mutations(source_dir: Path) -> pd.DataFrame:
    """The columns the features need, one row per variant (tumours labelled UNKNOWN dropped)."""
    cols = ["Hugo_Symbol", "Variant_Classification", "Variant_Type", "Reference_Allele", "Tumor_Seq_Allele2",
            "Tumor_Sample_Barcode", "Cohort", "Chromosome", "Start_Position", *PROTEIN]  # fmt: skip
    maf = pd.read_csv(source_dir / "mutations.maf.gz", sep="\t", usecols=lambda c: c in cols, dtype=str,
                      low_memory=False)  # fmt: skip
    return maf[maf["Cohort"] != "UNKNOWN"].reset_index(drop=True)


def codon_column(maf: pd.DataFrame) -> pd.Series:
    """Each variant's codon key "GENE:p.<residue><position>" from the MAF's protein change (the event
    encoder's rule, nanog1.genomics.protein); NaN where there is none or no protein column."""
    column = next((c for c in PROTEIN if c in maf), None)
    if column is None:
        return pd.Series(np.nan, index=maf.index)
    values = maf[column]
    codon = values.map({v: codon_key(v) for v in values.dropna().unique()})  # parsed once per spelling
    gene = maf["Hugo_Symbol"].fillna("")
    return (gene + ":" + codon.fillna("")).where((codon.fillna("") != "") & (gene != ""))


def sbs6_class(ref: pd.Series, alt: pd.Series) -> pd.Series:
    """Pyrimidine-folded substitution class of single-base substitutions ('' where not one)."""
    purine = ref.isin(["A", "G"])
    r = ref.where(~purine, ref.str.translate(_COMPLEMENT))
    a = alt.where(~purine, alt.str.translate(_COMPLEMENT))
    out = r + ">" + a
    return out.where(out.isin(SBS6), "")


def _shares(maf: pd.DataFrame, key: pd.Series, order: list[str], index: pd.Index) -> pd.DataFrame:
    """Per-tumour share of each category of `key` (rows: tumours in `index`, columns: `order`)."""
    counts = pd.crosstab(maf["Tumor_Sample_Barcode"], key).reindex(index=index, columns=order, fill_value=0)
    return counts.div(counts.sum(1).clip(lower=1), axis=0)


def build_cohort(source_dir: Path, folds_path: Path, n_folds: int, seed: int) -> Cohort:
    """Features of every labelled tumour of one source; folds read from `folds_path` or drawn and saved."""
    maf = read_mutations(source_dir)
    tumours = maf.groupby("Tumor_Sample_Barcode")["Cohort"].first().sort_index()
    index = tumours.index
    snv = maf["Variant_Type"] == "SNP"
    sbs = sbs6_class(maf["Reference_Allele"], maf["Tumor_Seq_Allele2"]).where(snv, "")
    consequences = sorted(maf["Variant_Classification"].dropna().unique())
    parts = [
        _shares(maf[sbs != ""], sbs[sbs != ""], list(SBS6), index).add_prefix("sbs6:"),
        _shares(maf, maf["Variant_Type"], list(VARIANT_TYPES), index).add_prefix("type:"),
        _shares(maf, maf["Variant_Classification"], consequences, index).add_prefix("csq:"),
        np.log1p(maf.groupby("Tumor_Sample_Barcode").size().reindex(index)).rename("log_burden").to_frame(),
    ]
    dense = pd.concat(parts, axis=1)
    gene_names, gmat = _presence(maf, maf["Hugo_Symbol"], index)
    _, smat = _presence(maf, maf["Chromosome"] + ":" + maf["Start_Position"], index)
    _, cmat = _presence(maf, codon_column(maf), index)
    classes = sorted(tumours.unique())
    labels = tumours.map({c: i for i, c in enumerate(classes)}).to_numpy()
    fold = load_or_draw_folds(folds_path, index, labels, n_folds, seed)
    return Cohort(
        index.to_numpy(),
        labels,
        classes,
        dense.to_numpy(np.float32),
        list(dense.columns),
        gmat,
        gene_names,
        fold,
        smat,
        cmat,
    )


def _presence(maf: pd.DataFrame, key: pd.Series, index: pd.Index) -> tuple[np.ndarray, sparse.csr_matrix]:
    """Distinct values of `key` and the tumour x value 0/1 matrix (rows: `index`; missing keys dropped)."""
    pairs = pd.DataFrame({"t": maf["Tumor_Sample_Barcode"], "k": key}).dropna().drop_duplicates()
    names, idx = np.unique(pairs["k"].to_numpy(), return_inverse=True)
    rows = index.get_indexer(pairs["t"])
    ones = np.ones(len(rows), np.float32)
    return names, sparse.csr_matrix((ones, (rows, idx)), shape=(len(index), len(names)))


def load_or_draw_folds(
    path: Path, barcodes: pd.Index, labels: np.ndarray, n_folds: int, seed: int
) -> np.ndarray:
    """Fold id of each tumour: read from `path` when it exists (it must cover exactly these tumours),
    else a seeded stratified draw written to `path` for every later row to reuse."""
    if path.exists():
        saved = pd.read_csv(path, sep="\t", index_col="Tumor_Sample_Barcode")["fold"]
        if set(saved.index) != set(barcodes):
            raise SystemExit(f"{path}: its tumours differ from the cohort's; delete it to draw new folds")
        return saved.reindex(barcodes).to_numpy()
    skf = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    fold = np.empty(len(labels), dtype=np.int64)
    for k, (_, test) in enumerate(skf.split(np.zeros(len(labels)), labels)):
        fold[test] = k
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    pd.DataFrame({"Tumor_Sample_Barcode": barcodes, "fold": fold}).to_csv(tmp, sep="\t", index=False)
    tmp.replace(path)
    return fold


def fold_features(cohort: Cohort, train: np.ndarray, hotspots: int = 0, key: str = "site") -> np.ndarray:
    """Dense features + the N_GENES genes mutated in most training tumours (chosen on `train` only);
    with `hotspots` = N > 0 also 0/1 over the hotspots mutated in >= N training tumours (at most
    MAX_HOTSPOTS, commonest first; the event encoder's --hotspots rule), keyed by `key`: sites
    (chrom:Start_Position), codons (gene:p.<residue><position> of the protein change) or both in one
    ranking (the event encoder's --hotspot-key)."""
    freq = np.asarray(cohort.genes[train].sum(0)).ravel()
    top = np.argsort(-freq, kind="stable")[:N_GENES]
    parts = [cohort.dense, cohort.genes[:, top].toarray()]
    if hotspots:
        kinds = [cohort.sites] * (key in ("site", "both")) + [cohort.codons] * (key in ("codon", "both"))
        table = sparse.hstack(kinds).tocsr()
        freq = np.asarray(table[train].sum(0)).ravel()
        hot = np.argsort(-freq, kind="stable")[: min(MAX_HOTSPOTS, int((freq >= hotspots).sum()))]
        parts.append(table[:, hot].toarray())
    return np.hstack(parts)


def classifiers(seed: int) -> dict:
    """Factories for the two baselines (fresh estimator per fold): the package's gradient boosting
    (nanog1.encoder.baselines) and a logistic regression regularised for these 600+ features."""
    return {
        "gradient_boosting": package_classifiers(seed)["gradient_boosting"],
        "logreg": lambda: make_pipeline(
            StandardScaler(), LogisticRegression(C=0.01, max_iter=3000, class_weight="balanced")
        ),
    }


def oof_proba(
    make, cohort: Cohort, folds: list[int], frac: float = 1.0, seed: int = 0, hotspots: int = 0,
    key: str = "site",
) -> np.ndarray:
    """Out-of-fold class probabilities on the given folds (other rows stay zero). With `frac` < 1 each
    fold trains on the labelled subset the event encoder's job of that fraction and seed drew
    (tcga_events.stratified_subset, same generator), its validation part included."""
    from tcga_events import stratified_subset

    proba = np.zeros((len(cohort.labels), len(cohort.classes)))
    for k, (train, test) in enumerate(cohort.splits()):
        if k not in folds:
            continue
        if frac < 1.0:
            rng = np.random.default_rng(1000 * seed + k)
            train = train[stratified_subset(cohort.labels[train], frac, rng)]
        x = fold_features(cohort, train, hotspots, key)
        model = make().fit(x[train], cohort.labels[train])
        proba[np.ix_(test, model.classes_)] = model.predict_proba(x[test])
        print(f"    fold {k}: top1 {(proba[test].argmax(1) == cohort.labels[test]).mean():.3f}", flush=True)
    return proba


def _top1_f1(pred: np.ndarray, labels: np.ndarray, n: int) -> tuple[float, float]:
    """top-1 and macro-F1 over the types present in `labels` (as classification_metrics counts them),
    from counts alone (fast enough for a thousand redraws)."""
    support = np.bincount(labels, minlength=n)
    tp = np.bincount(labels[pred == labels], minlength=n)
    predicted = np.bincount(pred, minlength=n)
    present = support > 0
    f1 = 2 * tp[present] / (support[present] + predicted[present])
    return float((pred == labels).mean()), float(f1.mean())


def paired_bootstrap(
    proba: np.ndarray, ref: np.ndarray, labels: np.ndarray, draws: int, seed: int
) -> dict[str, tuple[float, float]]:
    """95 % percentile intervals of (model - reference) top-1 and macro-F1 over tumours redrawn with
    replacement, the same draw for both models (a paired comparison on the same held-out predictions)."""
    rng = np.random.default_rng(seed)
    a_pred, b_pred, n = proba.argmax(1), ref.argmax(1), proba.shape[1]
    diffs = np.empty((draws, 2))
    for i in range(draws):
        idx = rng.integers(0, len(labels), len(labels))
        diffs[i] = np.subtract(_top1_f1(a_pred[idx], labels[idx], n), _top1_f1(b_pred[idx], labels[idx], n))
    lo, hi = np.percentile(diffs, [2.5, 97.5], axis=0)
    return {"top1": (float(lo[0]), float(hi[0])), "macro_f1": (float(lo[1]), float(hi[1]))}


def _store(work: Path, name: str, proba: np.ndarray, info: dict) -> None:
    np.save(work / f"oof_{name}.npy", proba)
    (work / f"info_{name}.json").write_text(json.dumps(info | {"load": os.getloadavg()}, default=float))


def _peers(name: str) -> dict[str, str]:
    """Rows an encoder row is compared with: its scratch twin (a pretrained row) and its twin without the
    CLS gene bag (a `_bag<K>` row of benchmarks/tcga_events.py), a `_keep` row's twin with the random
    window, a `_w<N>` row's (N windows averaged at prediction) twin with one, a SAVO row's
    rank-matched MHA twin (issue 28: is SAVO ahead of MHA-r on the same folds?) and a Q-Delta row's SAVO
    twin, a `_hot<N>` row's twin
    without the hotspot bag and an `_e<field>` row's twin without that embedding bag."""
    out = {}
    if "_savo_" in name:
        out["MHA-r"] = name.replace("_savo_", "_mha_rank_")
    if "_qdelta_" in name:  # Q-Delta (rank-matched) against the SAVO row of the same configuration
        out["SAVO"] = name.replace("_qdelta_", "_savo_")
    if "_pretrained_" in name:
        out["scratch"] = name.replace("_pretrained_", "_scratch_")
    if re.search(r"_bag\d+", name):
        out["no bag"] = re.sub(r"_bag\d+(_keep)?", "", name)
    if "_keep" in name:
        out["random window"] = name.replace("_keep", "")
    if re.search(r"_w\d+_", name):
        out["one window"] = re.sub(r"_w\d+_", "_", name)
    hot = re.search(r"_hot\d+(codon|both)?", name)
    if hot:
        out["no hotspots"] = name.replace(hot.group(0), "")
        if hot.group(1):
            out["site hotspots"] = name.replace(hot.group(0), hot.group(0).removesuffix(hot.group(1)))
        if name.startswith("events_"):
            out["GB same hotspots"] = f"{REFERENCE}{hot.group(0)}"
    for field in re.findall(r"_e(gene|bin)(?=_)", name):
        out[f"no {field} emb. bag"] = name.replace(f"_e{field}", "")
    for option, label in (("la", "no logit adj."), ("cw", "weights n^-0.5"), ("ls", "smoothing 0.1")):
        found = re.search(rf"_{option}[\d.]+(?=_)", name)
        if found:
            out[label] = name.replace(found.group(0), "")
    return out


def report(cohort: Cohort, work: Path, draws: int) -> dict:
    """Metrics of every model found in `work` on the tumours of the folds it covered, bootstrap vs the
    reference on those same tumours, per-type recall; printed as markdown, returned as a dict."""
    ref = np.load(work / f"oof_{REFERENCE}.npy") if (work / f"oof_{REFERENCE}.npy").exists() else None
    rows, recall = {}, {}
    for path in sorted(work.glob("oof_*.npy")):
        name = path.stem.removeprefix("oof_")
        info = json.loads((work / f"info_{name}.json").read_text())
        folds = info.get("folds", list(range(cohort.fold.max() + 1)))
        idx = np.flatnonzero(np.isin(cohort.fold, folds))
        proba, labels = np.load(path)[idx], cohort.labels[idx]
        rows[name] = classification_metrics(proba, labels, cohort.classes) | {
            "folds": ",".join(map(str, folds)), "seconds": info.get("seconds", np.nan),
        }  # fmt: skip
        if "seed_top1" in info:
            rows[name] |= {"seed_top1_sd": float(np.std(info["seed_top1"]))}
        if ref is not None and name != REFERENCE:
            ci = paired_bootstrap(proba, ref[idx], labels, draws, seed=0)
            rows[name] |= {f"d{k} vs GB 95%": f"[{lo:+.3f}, {hi:+.3f}]" for k, (lo, hi) in ci.items()}
        for what, other in _peers(name).items():  # what pretraining / the gene bag buys: same folds, subset
            if (work / f"oof_{other}.npy").exists():
                # on the folds both rows ran (a peer run on fewer folds, e.g. GB on fold 0 only, says so)
                theirs = json.loads((work / f"info_{other}.json").read_text()).get("folds", folds)
                common = np.isin(cohort.fold[idx], theirs)
                shared = ",".join(map(str, sorted(set(folds) & set(theirs))))
                what += "" if common.all() else f" (folds {shared})"
                ci = paired_bootstrap(proba[common], np.load(work / f"oof_{other}.npy")[idx][common],
                                      labels[common], draws, seed=0)  # fmt: skip
                rows[name] |= {f"d{k} vs {what} 95%": f"[{lo:+.3f}, {hi:+.3f}]" for k, (lo, hi) in ci.items()}
        recall[name] = per_type_report(proba, labels, cohort.classes)["recall"]
    table = pd.DataFrame(rows).T
    per_type = pd.DataFrame(recall)
    per_type.insert(0, "n", np.bincount(cohort.labels, minlength=len(cohort.classes)))
    print(table.round(3).to_markdown())
    print(per_type.round(2).to_markdown())
    return {"summary": table.to_dict(orient="index"), "per_type_recall": per_type.to_dict()}


def _label_budgets(args) -> list[tuple[float, int]]:
    """(label fraction, subset seed) of every baseline row: all labels, then each --label-fractions
    share with --subset-seeds seeds (the event encoder's subsets, see tcga_events.jobs)."""
    fracs = [float(f) for f in args.label_fractions.split(",") if f]
    return [(1.0, 0)] * (not args.skip_full) + [(f, s) for s in range(args.subset_seeds) for f in fracs]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tcga", type=Path, default=TCGA, help="folder with mc3/ and firehose/ (see its README)")
    ap.add_argument("--sources", default="mc3,firehose")
    ap.add_argument("--models", default="gradient_boosting,logreg")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--run-folds", default="", help="comma-separated fold ids to run (default: all)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the fold draw and of the models")
    ap.add_argument("--draws", type=int, default=1000, help="paired bootstrap redraws")
    ap.add_argument("--work", type=Path, default=Path("results/tcga_typing"))
    ap.add_argument("--report-only", action="store_true", help="only tabulate what --work already holds")
    ap.add_argument("--label-fractions", default="", help="also train on these shares of each fold's labels")
    ap.add_argument("--subset-seeds", type=int, default=1, help="subsets drawn per --label-fractions share")
    ap.add_argument("--skip-full", action="store_true", help="no all-labels row (already in --work)")
    ap.add_argument("--hotspots", type=int, default=0, help="add 0/1 features of the sites mutated in "
                    ">= N training tumours of each fold (rows named <model>_hot<N>)")
    ap.add_argument("--hotspot-key", choices=("site", "codon", "both"), default="site",
                    help="hotspots keyed by site, protein codon (gene:p.G12, allele-agnostic) or both "
                    "(rows named <model>_hot<N>codon / _hot<N>both)")
    ap.add_argument("--out", type=Path, default=None, help="JSON of the tables (default <work>/report.json)")
    args = ap.parse_args()
    payload = {}
    for source in args.sources.split(","):
        work = args.work / source
        work.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        cohort = build_cohort(args.tcga / source, work / "folds.tsv", args.folds, args.seed)
        print(
            f"{source}: {len(cohort.labels)} tumours, {len(cohort.classes)} types, "
            f"{cohort.fold.max() + 1} folds, {cohort.dense.shape[1]} dense + {N_GENES} gene features; "
            f"read in {time.perf_counter() - t0:.0f}s; "
            f"load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores",
            flush=True,
        )
        folds = [int(f) for f in args.run_folds.split(",")] if args.run_folds else list(range(args.folds))
        if not args.report_only:
            for name, make in classifiers(args.seed).items():
                if name not in args.models.split(","):
                    continue
                for frac, seed in _label_budgets(args):
                    row = name if frac == 1.0 else f"{name}_p{round(frac * 100)}_s{seed}"
                    key = "" if args.hotspot_key == "site" else args.hotspot_key
                    row = row.replace(name, f"{name}_hot{args.hotspots}{key}") if args.hotspots else row
                    print(f"  {row}", flush=True)
                    t0 = time.perf_counter()
                    proba = oof_proba(make, cohort, folds, frac, seed, args.hotspots, args.hotspot_key)
                    _store(work, row, proba, {"seconds": time.perf_counter() - t0, "folds": folds})
        payload[source] = report(cohort, work, args.draws)
    out = args.out or args.work / "report.json"
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=float))
    tmp.replace(out)


if __name__ == "__main__":
    main()
