"""Seed ensembles of the packaged PCAWG model scored across several `pcawg_ship_jobs.py` runs.

Merges runs on the same `ship.npz` (the first named wins a job and seed it shares with a later one; GB
arrays from whichever has them), then reports, from `pcawg_ship_metrics.all_metrics`:

* leave-one-study-out (LOSO) with the seeds every LOSO job has: the single model, the seed ensemble with
  test-time views chosen per split on THAT split's validation genomes, GB, paired bootstrap intervals and
  abstention at the shipped rule (each split's own temperature, threshold and OOD rule);
* the shipped seed count against one more seed on CV and the 12-project hold-out, by
  `pcawg_shipped.ship_decision`'s rule (the larger ensemble ships only if better in CV top-1 and no worse on
  either transfer split; a transfer split where both have the same seeds is "not measured");
* a transfer threshold: the confidence threshold reaching 0.90 accuracy on OTHER studies' held-out genomes
  (the other LOSO jobs' test output), applied to each LOSO split (nested: a split never sees its own test
  genomes) and to the 12-project hold-out (fitted on LOSO jobs of projects outside it); with more seeds on
  every job than the shipped ensemble, also for the larger ensemble (`transfer_abstention_more_seeds`).
  `--transfer-only` computes just this for `--shipped-seeds` members: the threshold fitted on every LOSO
  job's test genomes is the new-study operating point `pcawg_shipped.py package --transfer` stores.

    PYTHONPATH=. python benchmarks/pcawg_ship_report.py --npz results/dev/ship.npz \\
        --runs results/ship_loso results/ship_ens results/ship --shipped-seeds 4 --out report.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pcawg_ship_metrics import (  # noqa: E402
    TEST,
    TRAIN,
    VAL,
    all_metrics,
    choose_views,
    combine,
    common_seeds,
    job_rule,
    keep_seeds,
    load_run,
    merge_earlier,
    paired_bootstrap,
    seeds_of,
)

MAIN = ("cv", "transfer12", "final")


def merged_runs(folders: list[Path]) -> dict:
    """Results of several runs, the first named winning a (job, seed) they share."""
    results = load_run(folders[0])
    for folder in folders[1:]:
        results = merge_earlier(results, load_run(folder))
    return results


def main_seeds(results: dict, n: int, loso: bool = False) -> dict:
    """`results` with the CV, 12-project and final jobs (and the LOSO jobs, if `loso`) cut to seeds 0..n-1."""
    for prefix in MAIN + (("loso_",) if loso else ()):
        results = keep_seeds(results, prefix, range(n))
    return results


def seed_decision(more: dict, fewer: dict) -> dict:
    """pcawg_shipped.ship_decision's rule for a larger seed ensemble against the shipped one: better CV
    top-1, not worse top-1 and macro-F1 on the 12-project hold-out and LOSO. A split whose ensembles have
    the same seeds in both is None (not measured), and the larger one then does not ship."""
    def score(metrics: dict, kind: str, key: str = "top1") -> float:
        return metrics[kind]["models"]["ensemble"]["scores"][key]

    def not_worse(kind: str) -> bool | None:
        if more[kind]["seeds_per_job"] == fewer[kind]["seeds_per_job"]:
            return None
        return all(score(more, kind, k) >= score(fewer, kind, k) for k in ("top1", "macro_f1"))

    checks = {"cv_top1_better": score(more, "cv_5fold") > score(fewer, "cv_5fold"),
              "transfer12_not_worse": not_worse("transfer_12_projects"),
              "loso_not_worse": not_worse("leave_one_study_out")}
    return {**checks, "ship_more_seeds": all(v is True for v in checks.values())}


def pooled_predictions(results: dict, ship: dict, prefix: str,
                       seeds: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """(predicted type, true type) of the seed ensemble over the jobs named `prefix...`, test genomes pooled,
    views chosen per job on its validation genomes."""
    y, pred, rows = ship["labels"], [], []
    for job in (str(j) for j in ship["jobs"] if str(j).startswith(prefix)):
        roles = ship[f"roles_{job}"]
        test, val = np.flatnonzero(roles == TEST), np.flatnonzero(roles == VAL)
        views = choose_views(results, job, seeds, y, val)
        pred.append(combine(results, job, seeds, views, test).argmax(1))
        rows.append(test)
    return np.concatenate(pred), y[np.concatenate(rows)]


def more_seeds_ci(results: dict, ship: dict, shipped: int, more: int, draws: int = 1000) -> dict:
    """95 % paired-bootstrap intervals of the larger ensemble minus the shipped one (CV, 12-project, and LOSO
    when every LOSO job has the larger count of seeds)."""
    out = {}
    kinds = [("cv_5fold", "cv"), ("transfer_12_projects", "transfer12")]
    loso = [str(j) for j in ship["jobs"] if str(j).startswith("loso_")]
    if len(common_seeds(results, loso)) >= more:
        kinds.append(("leave_one_study_out", "loso_"))
    for kind, prefix in kinds:
        a, y = pooled_predictions(results, ship, prefix, list(range(more)))
        b, _ = pooled_predictions(results, ship, prefix, list(range(shipped)))
        out[kind] = paired_bootstrap(a, b, y, draws)
    return out


def job_outputs(results: dict, ship: dict, job: str, seeds: list[int]) -> dict:
    """One job's seed ensemble (views chosen on its validation genomes) on its test genomes: calibrated
    probabilities (its own temperature), its shipped-rule flags, and the OOD part of them alone."""
    from nanog1.encoder.abstention import AbstentionRule, profile_features
    from nanog1.encoder.calibration import apply_temperature, ood_reference

    y, counts = ship["labels"], ship["counts"].astype(np.float64)
    roles = ship[f"roles_{job}"]
    test, val, train = (np.flatnonzero(roles == r) for r in (TEST, VAL, TRAIN))
    views = choose_views(results, job, seeds, y, val)
    ood = ood_reference(counts[train], y[train], 0.2, 0)
    t, rule = job_rule(combine(results, job, seeds, views, val), y[val], ood)
    proba = apply_temperature(combine(results, job, seeds, views, test), t)
    feats = profile_features(counts[test])
    return {"test": test, "proba": proba, "labels": y[test], "shipped_flag": rule.uncertain(proba, feats),
            "ood": AbstentionRule(0.0, 0.9, ood).uncertain(proba, feats), "views": views}


def accepted(out: dict, threshold: float) -> np.ndarray:
    """Tumours a threshold accepts (confident enough and not out of distribution)."""
    return (out["proba"].max(1) >= threshold) & ~out["ood"]


def coverage_accuracy(outs: list[dict], keep: list[np.ndarray]) -> dict:
    """Share accepted and top-1 on the accepted, pooled over jobs."""
    hit = np.concatenate([o["proba"].argmax(1) == o["labels"] for o in outs])
    kept = np.concatenate(keep)
    return {"coverage": float(kept.mean()), "top1_accepted": float(hit[kept].mean()), "n": int(len(kept))}


def transfer_threshold(outs: list[dict]) -> float:
    """The lowest confidence threshold at which `outs`' pooled test genomes reach 0.90 top-1."""
    from nanog1.encoder.abstention import choose_threshold

    return choose_threshold(np.concatenate([o["proba"] for o in outs]),
                            np.concatenate([o["labels"] for o in outs]), 0.9)


def transfer_abstention(results: dict, ship: dict, loso_seeds: list[int], main: int) -> dict:
    """Abstention with the shipped rule against a threshold fitted on other studies' genomes (nested)."""
    loso = [str(j) for j in ship["jobs"] if str(j).startswith("loso_")]
    outs = {j: job_outputs(results, ship, j, loso_seeds) for j in loso}
    nested = {j: transfer_threshold([o for k, o in outs.items() if k != j]) for j in loso}
    held = set(map(str, ship["held_out_projects"]))
    outside = [o for j, o in outs.items() if j.removeprefix("loso_") not in held]
    t12 = job_outputs(results, ship, "transfer12", list(range(main)))
    t12_threshold = transfer_threshold(outside)
    every = list(outs.values())
    return {
        "loso": {
            "shipped_rule": coverage_accuracy(every, [~o["shipped_flag"] for o in every]),
            "transfer_threshold_nested": coverage_accuracy(every, [accepted(outs[j], nested[j])
                                                                   for j in loso]),
            "nested_thresholds_range": [float(min(nested.values())), float(max(nested.values()))],
        },
        "transfer_12_projects": {
            "shipped_rule": coverage_accuracy([t12], [~t12["shipped_flag"]]),
            "transfer_threshold": coverage_accuracy([t12], [accepted(t12, t12_threshold)]),
            "threshold": float(t12_threshold), "fitted_on_loso_jobs": len(outside),
        },
        "threshold_from_every_loso_job": float(transfer_threshold(every)),
    }


def report(ship: dict, results: dict, shipped: int) -> dict:
    """Every number of the module docstring."""
    loso_jobs = [str(j) for j in ship["jobs"] if str(j).startswith("loso_")]
    loso_seeds = common_seeds(results, loso_jobs)
    results = keep_seeds(results, "loso_", loso_seeds)
    seeds_final = seeds_of(results, "final")
    views = choose_views(results, "final", seeds_final[:shipped], ship["labels"],
                         np.flatnonzero(ship["roles_final"] == VAL))
    # With more LOSO seeds than the shipped ensemble has, LOSO is scored with the shipped seed count here and
    # with the larger count below, so the seed decision has its LOSO half.
    loso_more = len(loso_seeds) > shipped
    fewer = all_metrics(main_seeds(results, shipped, loso=loso_more), ship, fixed_views=views)
    out = {"loso_seeds": loso_seeds, "shipped_seeds": shipped, "final_views": list(views), "shipped": fewer}
    more_n = len(common_seeds(results, [str(j) for j in ship["jobs"] if not str(j).startswith("loso_")]))
    if more_n > shipped:
        more = all_metrics(main_seeds(results, more_n, loso=loso_more), ship, fixed_views=views)
        out |= {"more_seeds": more_n, "with_more_seeds": more, "decision": seed_decision(more, fewer),
                "more_minus_shipped_ci95": more_seeds_ci(results, ship, shipped, more_n)}
    out["transfer_abstention"] = transfer_abstention(results, ship, loso_seeds[:shipped], shipped)
    if more_n > shipped and len(loso_seeds) >= more_n:
        more_loso = loso_seeds[:more_n]
        out["transfer_abstention_more_seeds"] = transfer_abstention(results, ship, more_loso, more_n)
    return out


def transfer_only(ship: dict, results: dict, seeds: int) -> dict:
    """The transfer abstention of a `seeds`-member ensemble alone (the threshold a package stores as its
    new-study operating point: `threshold_from_every_loso_job`), without the slower scores and bootstraps."""
    loso_jobs = [str(j) for j in ship["jobs"] if str(j).startswith("loso_")]
    loso_seeds = common_seeds(results, loso_jobs)
    if len(loso_seeds) < seeds:
        raise SystemExit(f"only {len(loso_seeds)} seeds on every LOSO job ({loso_seeds}); {seeds} asked")
    return {"seeds": seeds, "loso_seeds": loso_seeds[:seeds],
            "transfer_abstention": transfer_abstention(results, ship, loso_seeds[:seeds], seeds)}


def summary(rep: dict) -> dict:
    """The headline numbers: scores and abstention of each model per kind of split."""
    def models(m: dict) -> dict:
        return {kind: {name: {k: round(v, 4) for k, v in (e["scores"] | e.get("abstention", {})).items()}
                       for name, e in entry["models"].items()}
                | {"gb": {k: round(v, 4) for k, v in entry["gradient_boosting"].items()},
                   "seeds_per_job": entry["seeds_per_job"], "ci95": entry["paired_bootstrap_ci95"]}
                for kind, entry in m.items()}
    out = {"loso_seeds": rep["loso_seeds"], "shipped": models(rep["shipped"]),
           "transfer_abstention": rep["transfer_abstention"]}
    if "transfer_abstention_more_seeds" in rep:
        out["transfer_abstention_more_seeds"] = rep["transfer_abstention_more_seeds"]
    if "with_more_seeds" in rep:
        out |= {"with_more_seeds": models(rep["with_more_seeds"]), "decision": rep["decision"],
                "more_minus_shipped_ci95": rep["more_minus_shipped_ci95"]}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--npz", type=Path, required=True, help="ship.npz (pcawg_shipped.py export-npz)")
    ap.add_argument("--runs", type=Path, nargs="+", required=True,
                    help="pcawg_ship_jobs.py output folders, the first winning shared (job, seed)")
    ap.add_argument("--shipped-seeds", type=int, default=4, help="members of the shipped ensemble")
    ap.add_argument("--out", type=Path, default=None, help="full report as JSON")
    ap.add_argument("--transfer-only", action="store_true",
                    help="only the transfer abstention of the --shipped-seeds ensemble (pcawg_shipped.py "
                    "package --transfer reads it)")
    args = ap.parse_args()
    ship = dict(np.load(args.npz, allow_pickle=False))
    if args.transfer_only:
        rep = transfer_only(ship, merged_runs(args.runs), args.shipped_seeds)
        if args.out:
            args.out.write_text(json.dumps(rep, indent=1, default=float))
        print(json.dumps(rep, indent=1, default=float))
        return
    rep = report(ship, merged_runs(args.runs), args.shipped_seeds)
    if args.out:
        args.out.write_text(json.dumps(rep, indent=1, default=float))
    print(json.dumps(summary(rep), indent=1, default=float))


if __name__ == "__main__":
    main()
