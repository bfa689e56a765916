# ruff: noqa: E501
"""The packaged PCAWG catalogue model (`nanog1 models show pcawg-catalogue`): data, packaging, transfer.

Three steps (the training itself is `benchmarks/pcawg_device.py cv`, which runs on a GPU or the CPU):

    # 1. the cohort arrays: stratified 5-fold split, and the project hold-out split
    PYTHONPATH=. python benchmarks/pcawg_shipped.py export-npz --work results/dev
    # 2. train (thinning + channel-set dropout); fold 0's model is the one shipped
    python benchmarks/pcawg_device.py cv --npz results/dev/cv.npz --out D --name cv RECIPE --save-models
    python benchmarks/pcawg_device.py cv --npz results/dev/transfer.npz --out D --name transfer RECIPE --folds 0
    # 3. package fold 0's model (calibrated on its inner validation split), score the transfer split
    #    beside gradient boosting on the same split, write the model card
    PYTHONPATH=. python benchmarks/pcawg_shipped.py package --cv-dir DIR --transfer-dir DIR --recipe "RECIPE"

Transfer split: for each cancer type that PCAWG drew from several projects, the smallest project with
>= 10 genomes is held out (e.g. BRCA-UK; BRCA-US/EU stay in training); the model never sees it.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pcawg_typing import export_npz, pcawg_cohort  # noqa: E402

PCAWG = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "pcawg7"
OUT = Path(__file__).resolve().parents[1] / "nanog1" / "encoder" / "pretrained" / "pcawg-catalogue"


def project_codes(pcawg_dir: Path, samples: list[str]) -> pd.Series:
    """PCAWG project code (e.g. BRCA-UK) of each `Type::SPxxxx` sample, from the sample sheet."""
    sheet = pd.read_csv(next(pcawg_dir.glob("pcawg_sample_sheet*.tsv")), sep="\t", dtype=str)
    code = sheet.drop_duplicates("icgc_specimen_id").set_index("icgc_specimen_id")["dcc_project_code"]
    return pd.Series([code.get(s.split("::")[-1], "unknown") for s in samples], index=samples)


def holdout_projects(types: pd.Series, projects: pd.Series, min_test: int = 10) -> list[str]:
    """Per type drawn from several projects: the smallest project with >= min_test genomes (not the largest)."""
    out = []
    for t in sorted(types.unique()):
        counts = projects[types == t].value_counts()
        counts = counts[counts.index != "unknown"]
        if len(counts) >= 2:
            ok = counts[counts >= min_test]
            if len(ok) and ok.index[-1] != counts.index[0]:
                out.append(str(ok.index[-1]))
    return out


def cohort(pcawg_dir: Path):
    """PCAWG (types >= 20 genomes) with project codes, its arrays and the transfer test mask."""
    from nanog1.encoder.data import cohort_arrays

    adata = pcawg_cohort(pcawg_dir, 20)
    projects = project_codes(pcawg_dir, list(adata.obs_names))
    adata.obs["project_code"] = pd.Categorical(projects)
    held = holdout_projects(adata.obs["cancer_type"].astype(str), projects)
    return adata, cohort_arrays(adata, min_class_size=20), projects.isin(held).to_numpy(), held


def export(args) -> None:
    from nanog1.encoder.cv import kfold_splits

    adata, arrays, test, held = cohort(args.pcawg)
    export_npz(arrays, kfold_splits(arrays.labels, 5, seed=0), args.work / "cv.npz")
    export_npz(arrays, [(np.flatnonzero(~test), np.flatnonzero(test))], args.work / "transfer.npz")
    export_jobs(adata, arrays, test, held, args.work / "ship.npz")


#: Roles of a genome in one training job of `ship.npz` (benchmarks/pcawg_ship_jobs.py).
TRAIN, VAL, TEST = 0, 1, 2


def loso_projects(types: pd.Series, projects: pd.Series) -> list[str]:
    """Projects whose every type is also drawn from another project (a held-out study of seen types)."""
    out = []
    for p in sorted(set(projects) - {"unknown"}):
        mine = types[projects == p].unique()
        if all(((types == t) & (projects != p) & (projects != "unknown")).any() for t in mine):
            out.append(str(p))
    return out


def job_splits(labels: np.ndarray, types: pd.Series, projects: pd.Series, test: np.ndarray) -> dict:
    """Role of every genome (TRAIN / VAL / TEST) in each job: the 5 stratified CV folds, the 12-project
    hold-out, leave-one-study-out per eligible project, and the final model (15 % validation, no test)."""
    from nanog1.encoder.cv import kfold_splits, train_val_split

    def roles(test_mask: np.ndarray, val_fraction: float = 0.2) -> np.ndarray:
        pool = np.flatnonzero(~test_mask)
        _, val = train_val_split(labels[pool], val_fraction, 0)
        out = np.where(test_mask, TEST, TRAIN).astype(np.int8)
        out[pool[val]] = VAL
        return out

    jobs = {}
    for k, (_, te) in enumerate(kfold_splits(labels, 5, seed=0)):
        jobs[f"cv{k}"] = roles(np.isin(np.arange(len(labels)), te))
    jobs["transfer12"] = roles(test)
    jobs["final"] = roles(np.zeros(len(labels), dtype=bool), 0.15)
    for p in loso_projects(types, projects):
        jobs[f"loso_{p}"] = roles((projects == p).to_numpy())
    return jobs


def export_jobs(adata, arrays, test: np.ndarray, held: list[str], path: Path) -> None:
    """ship.npz: counts, labels, exposure targets, gradient-boosting features, projects and job roles."""
    from nanog1.encoder.baselines import catalogue_features

    types = adata.obs["cancer_type"].astype(str).reset_index(drop=True)
    projects = adata.obs["project_code"].astype(str).reset_index(drop=True)
    jobs = job_splits(arrays.labels, types, projects, test)
    payload = {
        "counts": arrays.counts.astype(np.float32),
        "labels": arrays.labels,
        "classes": np.array(arrays.classes),
        "project": projects.to_numpy(dtype=str),
        "held_out_projects": np.array(held),
        "gb_x": catalogue_features(np.asarray(adata.X, dtype=np.float64), arrays.channel_padding),
        "jobs": np.array(list(jobs)),
        **{f"expo_{k}": v for k, v in arrays.exposures.items()},
        **{f"roles_{k}": v for k, v in jobs.items()},
    }
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **payload)
    tmp.replace(path)
    print(f"wrote {path}: {len(jobs)} jobs ({path.stat().st_size / 1e6:.1f} MB)")


def scores(proba: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Top-1, top-3 and macro-F1 (over the types present)."""
    from sklearn.metrics import f1_score

    pred = proba.argmax(1)
    return {
        "top1": float((pred == labels).mean()),
        "top3": float((np.argsort(-proba, 1)[:, :3] == labels[:, None]).any(1).mean()),
        "macro_f1": float(f1_score(labels, pred, average="macro", labels=np.unique(labels))),
    }


def paired_bootstrap(a: np.ndarray, b: np.ndarray, draws: int = 2000, seed: int = 0) -> list[float]:
    """95 % interval of mean(a) - mean(b) over genomes resampled with replacement (paired)."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(a), (draws, len(a)))
    diffs = a[idx].mean(1) - b[idx].mean(1)
    return [float(np.quantile(diffs, 0.025)), float(np.quantile(diffs, 0.975))]


def accepted(proba: np.ndarray, labels: np.ndarray, rule, counts: np.ndarray) -> dict[str, float]:
    """Coverage and top-1 on accepted tumours under the shipped rule (confidence + profile OOD)."""
    from nanog1.encoder.abstention import profile_features

    unc = rule.uncertain(proba, profile_features(counts))
    hit = proba.argmax(1) == labels
    return {
        "coverage": float((~unc).mean()),
        "top1_accepted": float(hit[~unc].mean()) if (~unc).any() else 0.0,
    }


def gradient_boosting(
    x: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray, n: int
) -> np.ndarray:
    """scikit-learn HistGradientBoosting on the same catalogue features, trained on `train`."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    gb = HistGradientBoostingClassifier(max_iter=150, learning_rate=0.1, early_stopping=False, random_state=0)
    gb.fit(x[train], y[train])
    proba = np.zeros((len(test), n))
    proba[:, gb.classes_] = gb.predict_proba(x[test])
    return proba


def baselines(args) -> None:
    """Gradient boosting on the transfer split and on CV fold 0 (cached as npy in --work)."""
    from nanog1.encoder.baselines import catalogue_features

    adata, arrays, test, _ = cohort(args.pcawg)
    fold = np.load(args.work / "cv.npz")["fold"]
    x = catalogue_features(np.asarray(adata.X, dtype=np.float64), arrays.channel_padding)
    n = len(arrays.classes)
    for name, tr, te in (("transfer", ~test, test), ("fold0", fold != 0, fold == 0)):
        proba = gradient_boosting(x, arrays.labels, np.flatnonzero(tr), np.flatnonzero(te), n)
        np.save(args.work / f"gb_{name}.npy", proba)
        print(name, scores(proba, arrays.labels[te]), flush=True)


def package(args) -> None:
    import torch

    from nanog1.encoder.abstention import AbstentionRule
    from nanog1.encoder.calibration import apply_temperature, calibrate_run, ood_reference
    from nanog1.encoder.config import TrainConfig
    from nanog1.encoder.embedding import apply_model
    from nanog1.encoder.model import N_CHANNELS
    from nanog1.encoder.pretrained import export_reference
    from nanog1.io import atomic_write_text

    adata, arrays, test, held = cohort(args.pcawg)
    cv = np.load(args.work / "cv.npz")
    labels, classes, counts = arrays.labels, list(arrays.classes), arrays.counts.astype(np.float64)
    recipe = dict(_recipe(args.recipe))
    weights = torch.load(args.cv_dir / "model_cv_fold0.pt", weights_only=True)
    shape = {k: recipe[k] for k in ("hidden", "layers", "rank", "heads", "epochs", "thin", "set_dropout")}
    cfg = TrainConfig(task="cancer_type", register_model=False, **shape)
    saved = {
        **weights,
        "classes": classes,
        "channel_padding": torch.zeros(N_CHANNELS, dtype=torch.bool),
        "signature_names": {k: list(v) for k, v in arrays.signature_names.items()},
        "train_config": cfg.to_dict(),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    torch.save(saved, args.out / "model.pt")
    fold, inner = cv["fold"], cv["inner_val_0"]
    val, fold_test = np.flatnonzero((fold != 0) & inner), np.flatnonzero(fold == 0)
    train = np.flatnonzero((fold != 0) & ~inner)
    pred, _, _ = apply_model(adata, args.out)
    with tempfile.TemporaryDirectory() as tmp:
        ood = ood_reference(counts[train], labels[train], 0.2, 0)
        calib, _ = calibrate_run(Path(tmp), pred.proba[val], labels[val], "validation", ood=ood)
        (args.out / "calibration.json").write_bytes((Path(tmp) / "calibration.json").read_bytes())
    t = float(calib["temperature"])
    rule = AbstentionRule.from_dict(json.loads((args.out / "calibration.json").read_text())["abstention"])
    export_reference(pred.embedding[train], adata[train], args.out)
    oof = np.load(args.cv_dir / "oof_cv.npy")
    cv_info = json.loads((args.cv_dir / "info_cv.json").read_text())
    tr_info = json.loads((args.transfer_dir / "info_transfer.json").read_text())
    t_proba = np.load(args.transfer_dir / "oof_transfer.npy")[test]
    t_noid = np.load(args.transfer_dir / "masked_no_indels_fold.npy")
    gb, gb0 = np.load(args.work / "gb_transfer.npy"), np.load(args.work / "gb_fold0.npy")
    y = labels[test]
    done = np.isin(fold, cv_info["folds"])
    y0, p0 = labels[fold_test], apply_temperature(oof[fold_test], t)
    enc_hit, gb_hit = t_proba.argmax(1) == y, gb.argmax(1) == y
    metrics = {
        "cv_stratified": scores(oof[done], labels[done]) | {"folds": cv_info["folds"], "n_genomes": int(done.sum())},
        "shipped_fold0_test": scores(p0, y0) | accepted(p0, y0, rule, counts[fold_test]),
        "gradient_boosting_fold0_test": scores(gb0, y0),
        "fold0_top1_diff_ci95_paired_bootstrap": paired_bootstrap(
            (p0.argmax(1) == y0).astype(float), (gb0.argmax(1) == y0).astype(float)
        ),
        "cv_masked_top1_per_fold": cv_info.get("masked_top1", {}),
        "transfer_project_holdout": {
            "held_out_projects": held,
            "n_genomes": int(test.sum()),
            "encoder": scores(t_proba, y),
            "encoder_indels_masked": scores(t_noid, y),
            "encoder_masked_top1": tr_info.get("masked_top1", {}),
            "gradient_boosting": scores(gb, y),
            "top1_diff_encoder_minus_gb": float(enc_hit.mean() - gb_hit.mean()),
            "top1_diff_ci95_paired_bootstrap": paired_bootstrap(enc_hit.astype(float), gb_hit.astype(float)),
            "abstention_at_shipped_rule": accepted(apply_temperature(t_proba, t), y, rule, counts[test]),
        },
        "calibration": {k: float(v) for k, v in calib.items()},
        "train_seconds": {"cv": cv_info.get("fold_seconds"), "device": cv_info.get("device")},
    }
    card = model_card(classes, metrics, args)
    atomic_write_text(args.out / "card.json", json.dumps(card, indent=1, default=float))
    (args.work / "package_metrics.json").write_text(json.dumps(metrics, indent=1, default=float))
    print(json.dumps(metrics, indent=1, default=float))


def _recipe(text: str):
    words = shlex.split(text)
    for flag, value in zip(words[::2], words[1::2], strict=True):
        key = flag.lstrip("-").replace("-", "_")
        yield key, (float(value) if "." in value else int(value))


def model_card(classes: list[str], metrics: dict, args) -> dict:
    """The JSON model card: what it is, what it was trained on, how well it does, what it is not for."""
    cv, tr = metrics["cv_stratified"], metrics["transfer_project_holdout"]
    return {
        "name": "pcawg-catalogue",
        "summary": f"PCAWG catalogue encoder, {len(classes)} types; CV top-1 {cv['top1']:.3f}, "
        f"project hold-out top-1 {tr['encoder']['top1']:.3f}",
        "classes": classes,
        "model": "NanoG1 SAVO mutation encoder over SBS96+DBS78+ID83 (+SBS6/ID12) channel tokens, type head",
        "inputs": "catalogues of any measured subset of SBS96/DBS78/ID83 (SBS6/ID12 without a reference); "
        "unmeasured sets are masked (key-padding), never read as zeros",
        "training_data": {
            "source": "PCAWG whole-genome catalogues (Alexandrov, Kim, Haradhvala, Huang et al., "
            "'The repertoire of mutational signatures in human cancer', Nature 578, 94-101 (2020), "
            "doi:10.1038/s41586-020-1943-3), as redistributed in steverozen/PCAWG7 data-raw/",
            "genomes": "2,650 genomes of the 26 types with >= 20 genomes (of 2,780); the shipped weights are the "
            "fold-0 model of the 5-fold CV (trained on 64 %, early-stopped and calibrated on 16 %, tested on 20 %)",
            "licence": "PCAWG mutational catalogues: published open data (ICGC/TCGA PCAWG, open tier); cite the "
            "paper above. Model weights: the project's licence.",
        },
        "recipe": {
            "command": " ".join(
                ["python benchmarks/pcawg_device.py cv --npz results/dev/cv.npz", args.recipe]
            ),
            "augmentation": "binomial thinning to U(0.5,1) of each draw; channel-set dropout 0.3 (DBS78, "
            "ID83+ID12 each masked in ~30 % of draws, ID83 alone 15 %, SBS96 alone 10 %)",
            "objective": "class-weighted label-smoothed cross-entropy + 0.5 x exposure KL to published attributions",
        },
        "metrics": metrics,
        "calibration": "temperature scaling on the inner validation split; abstention = confidence below the "
        "threshold reaching 0.90 accuracy on validation, or a mutational profile beyond the 99th percentile "
        "of validation Mahalanobis distances to the nearest type centroid (over the measured sets)",
        "intended_use": "research use: QC of a cohort's labels, typing tumours for exploration, cancers of "
        "unknown primary as a research hypothesis. NOT a diagnosis; not for clinical decisions.",
        "limits": [
            "trained on PCAWG whole genomes only; exomes/panels have far fewer mutations and were not evaluated",
            "26 PCAWG types only: any other type is at best flagged out-of-distribution",
            "calling pipeline differences shift burdens; the cross-project numbers above are the honest guide",
        ],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=["export-npz", "baselines", "package"])
    ap.add_argument("--pcawg", type=Path, default=PCAWG)
    ap.add_argument("--work", type=Path, default=Path("results/dev"))
    ap.add_argument("--cv-dir", type=Path)
    ap.add_argument("--transfer-dir", type=Path)
    ap.add_argument("--recipe", default="")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    {"export-npz": export, "baselines": baselines, "package": package}[args.mode](args)


if __name__ == "__main__":
    main()
