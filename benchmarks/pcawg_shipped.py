"""Train the packaged PCAWG catalogue model (`nanog1 models show pcawg-catalogue`) and measure its transfer.

`ship`: PCAWG, types with >= 20 genomes, trained by `nanog1.encoder.run.train_cohort` (its stratified
validation split picks the epoch and fits the temperature and abstention rule), with thinning and
channel-set dropout; then exported as package data (nanog1.encoder.pretrained.export).
`transfer`: same recipe, trained without one PCAWG project per cancer type that has several (e.g.
BRCA-UK held out, BRCA-US/EU kept), scored on the held-out projects beside gradient boosting on the same
catalogues and the same split; paired bootstrap interval of the top-1 difference.

    OMP_NUM_THREADS=1 PYTHONPATH=. python benchmarks/pcawg_shipped.py ship --work /tmp/ship
    OMP_NUM_THREADS=1 PYTHONPATH=. python benchmarks/pcawg_shipped.py transfer --work /tmp/transfer
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pcawg_typing import pcawg_cohort  # noqa: E402

from nanog1.encoder.config import TrainConfig  # noqa: E402

PCAWG = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "pcawg7"
RECIPE = dict(hidden=32, layers=2, rank=8, heads=2, epochs=24, patience=8, batch_size=64, lr=2e-3,
              thin=0.5, set_dropout=0.3, register_model=False, seed=0)  # fmt: skip


def project_codes(pcawg_dir: Path, samples: list[str]) -> pd.Series:
    """PCAWG project code (e.g. BRCA-UK) of each `Type::SPxxxx` sample, from the sample sheet."""
    sheet = pd.read_csv(next(pcawg_dir.glob("pcawg_sample_sheet*.tsv")), sep="\t", dtype=str)
    code = sheet.drop_duplicates("icgc_specimen_id").set_index("icgc_specimen_id")["dcc_project_code"]
    return pd.Series([code.get(s.split("::")[-1], "unknown") for s in samples], index=samples)


def holdout_projects(types: pd.Series, projects: pd.Series, min_test: int = 10) -> list[str]:
    """For each type with several projects, the smallest project with >= min_test genomes is held out."""
    out = []
    for t in sorted(types.unique()):
        counts = projects[types == t].value_counts()
        counts = counts[counts.index != "unknown"]
        if len(counts) >= 2:
            ok = counts[counts >= min_test]
            if len(ok) and ok.index[-1] != counts.index[0]:
                out.append(str(ok.index[-1]))
    return out


def ship(args) -> None:
    from nanog1.encoder.run import train_cohort

    adata = pcawg_cohort(args.pcawg, 20)
    adata.obs["project_code"] = pd.Categorical(project_codes(args.pcawg, list(adata.obs_names)))
    args.work.mkdir(parents=True, exist_ok=True)
    adata.write_h5ad(args.work / "pcawg.h5ad")
    cfg = TrainConfig(**RECIPE)
    t0 = time.time()
    outcome = train_cohort(args.work / "pcawg.h5ad", args.work / "run", cfg, f"sqlite:///{args.work}/m.db")
    secs = time.time() - t0
    print(json.dumps({"seconds": secs, **outcome.metrics}, default=float, indent=1))
    from nanog1.encoder.pretrained import export  # imported late: training runs first

    export(args.work / "run", adata, args.out, recipe=RECIPE, train_seconds=secs, command=" ".join(sys.argv))


def transfer(args) -> None:
    from nanog1.encoder.baselines import catalogue_features
    from nanog1.encoder.embed import apply_model
    from nanog1.encoder.run import train_cohort

    adata = pcawg_cohort(args.pcawg, 20)
    projects = project_codes(args.pcawg, list(adata.obs_names))
    types = adata.obs["cancer_type"].astype(str)
    held = holdout_projects(types, projects)
    test = projects.isin(held).to_numpy()
    print(f"held-out projects ({test.sum()} genomes): {', '.join(held)}", flush=True)
    args.work.mkdir(parents=True, exist_ok=True)
    adata[~test].copy().write_h5ad(args.work / "train.h5ad")
    uri = f"sqlite:///{args.work}/m.db"
    train_cohort(args.work / "train.h5ad", args.work / "run", TrainConfig(**RECIPE), uri)
    pred, saved, labels = apply_model(adata[test].copy(), args.work / "run")
    classes = list(saved["classes"])
    from nanog1.encoder.calibration import apply_temperature, load_calibration

    calib = load_calibration(args.work / "run")
    proba = apply_temperature(pred.proba, float(calib["temperature"]))
    np.save(args.work / "encoder_test_proba.npy", proba)
    from sklearn.ensemble import HistGradientBoostingClassifier

    x = catalogue_features(np.asarray(adata.X, dtype=np.float64))
    y = np.array([classes.index(t) if t in classes else -1 for t in types])
    gb = HistGradientBoostingClassifier(max_iter=200, learning_rate=0.1, random_state=0)
    gb.fit(x[~test], y[~test])
    gb_proba = np.zeros((test.sum(), len(classes)))
    gb_proba[:, gb.classes_] = gb.predict_proba(x[test])
    np.save(args.work / "gb_test_proba.npy", gb_proba)
    np.save(args.work / "test_labels.npy", y[test])
    report = summarise(proba, gb_proba, y[test], classes, calib, np.asarray(adata[test].X))
    report["held_out_projects"] = held
    report["n_test"] = int(test.sum())
    (args.work / "transfer.json").write_text(json.dumps(report, indent=1, default=float))
    print(json.dumps(report, indent=1, default=float))


def summarise(proba, gb_proba, labels, classes, calib, counts) -> dict:
    """Top-1/macro-F1 of both, paired bootstrap of the top-1 difference, abstention at the shipped rule."""
    from sklearn.metrics import f1_score

    from nanog1.encoder.abstention import AbstentionRule, profile_features

    def scores(p):  # fmt: skip
        pred = p.argmax(1)
        return {"top1": float((pred == labels).mean()),
                "top3": float((np.argsort(-p, 1)[:, :3] == labels[:, None]).any(1).mean()),
                "macro_f1": float(f1_score(labels, pred, average="macro", labels=np.unique(labels)))}

    rng = np.random.default_rng(0)
    hit_e, hit_g = proba.argmax(1) == labels, gb_proba.argmax(1) == labels
    diffs = [hit_e[i].mean() - hit_g[i].mean() for i in rng.integers(0, len(labels), (2000, len(labels)))]
    rule = AbstentionRule.from_dict(calib["abstention"])
    unc = rule.uncertain(proba, profile_features(counts))
    return {
        "encoder": scores(proba), "gradient_boosting": scores(gb_proba),
        "top1_diff_encoder_minus_gb": float(hit_e.mean() - hit_g.mean()),
        "top1_diff_ci95": [float(np.quantile(diffs, 0.025)), float(np.quantile(diffs, 0.975))],
        "abstention": {"coverage": float((~unc).mean()),
                       "top1_accepted": float(hit_e[~unc].mean()) if (~unc).any() else float("nan")},
    }  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=["ship", "transfer"])
    ap.add_argument("--pcawg", type=Path, default=PCAWG)
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--out", type=Path, default=Path("nanog1/encoder/pretrained/pcawg-catalogue"))
    args = ap.parse_args()
    ship(args) if args.mode == "ship" else transfer(args)


if __name__ == "__main__":
    main()
