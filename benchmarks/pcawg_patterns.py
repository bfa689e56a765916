"""Confidence thresholds per measured pattern: does a threshold fitted on complete catalogues hold when a
tumour measured fewer channel sets (an SBS96 matrix alone; a VCF read without a reference)?

Reads `pcawg_ship_jobs.py` results whose jobs scored val and test genomes in the full view and with the
`sbs96_only` and `no_reference` masks (seed 0, single model). For every job, on its own validation
genomes: one temperature (full view, as shipped), the full-view threshold reaching 0.90 accuracy (what
ships today, applied to every pattern) and one threshold per pattern (0.90 accuracy on the validation
genomes with that pattern's sets masked; never below the full-view one, as `nanog1 predict` applies it).
Both rules are applied to the job's test genomes in each pattern; every kind of split pools its jobs'
test genomes:

    PYTHONPATH=. python benchmarks/pcawg_patterns.py --results results/patterns --npz results/dev/ship.npz
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pcawg_ship_metrics import KINDS, TEST, VAL, load_run  # noqa: E402

PATTERNS = {"full": "proba", "sbs96_only": "proba_sbs96_only", "no_reference": "proba_no_reference"}


def job_thresholds(results: dict, job: str, labels: np.ndarray, val: np.ndarray) -> dict:
    """Temperature (full view) and the 0.90-accuracy threshold per pattern, on `job`'s validation genomes."""
    from nanog1.encoder.abstention import choose_threshold
    from nanog1.encoder.calibration import apply_temperature, fit_temperature, logits_from_proba

    full = results[f"{job}__s0__proba"][val]
    t = fit_temperature(logits_from_proba(full), labels[val])
    out = {"temperature": t}
    for pattern, key in PATTERNS.items():
        calibrated = apply_temperature(results[f"{job}__s0__{key}"][val], t)
        out[pattern] = choose_threshold(calibrated, labels[val], 0.9)
    return out


def pooled_patterns(results: dict, ship: dict, prefix: str) -> dict:
    """Per pattern: top-1, and coverage / top-1 on accepted under the full-view and the pattern threshold."""
    from nanog1.encoder.calibration import apply_temperature

    labels = ship["labels"]
    jobs = sorted(k[len("roles_"):] for k in ship if k.startswith(f"roles_{prefix}"))
    fields = ("hit", "conf", "full_t", "own_t")
    rows: dict[str, dict[str, list]] = {p: {k: [] for k in fields} for p in PATTERNS}
    thresholds = {}
    for job in jobs:
        if f"{job}__s0__proba_sbs96_only" not in results:
            continue
        roles = ship[f"roles_{job}"]
        val, test = np.flatnonzero(roles == VAL), np.flatnonzero(roles == TEST)
        rule = job_thresholds(results, job, labels, val)
        thresholds[job] = rule
        for pattern, key in PATTERNS.items():
            p = apply_temperature(results[f"{job}__s0__{key}"][test], rule["temperature"])
            r = rows[pattern]
            r["hit"].append(p.argmax(1) == labels[test])
            r["conf"].append(p.max(1))
            r["full_t"].append(np.full(len(test), rule["full"]))
            r["own_t"].append(np.full(len(test), max(rule[pattern], rule["full"])))  # as predict applies it
    out = {"jobs": len(thresholds), "thresholds": thresholds}
    for pattern, r in rows.items():
        hit, conf = np.concatenate(r["hit"]), np.concatenate(r["conf"])
        out[pattern] = {"n": int(len(hit)), "top1": float(hit.mean())}
        for rule in ("full_t", "own_t"):
            keep = conf >= np.concatenate(r[rule])
            out[pattern][rule] = {"coverage": float(keep.mean()),
                                  "top1_accepted": float(hit[keep].mean()) if keep.any() else float("nan")}
    return out


def table(report: dict) -> str:
    """Markdown rows: split, pattern, top-1, and both rules' coverage / top-1 on accepted."""
    lines = ["| split (test genomes) | measured | top-1 | full-view threshold: accepted / top-1 | "
             "pattern's threshold (never below the full one): accepted / top-1 |", "|:--|:--|--:|--:|--:|"]
    for kind, res in report.items():
        for pattern in PATTERNS:
            r = res[pattern]
            cells = [f"{100 * r[k]['coverage']:.1f} % / {r[k]['top1_accepted']:.3f}"
                     for k in ("full_t", "own_t")]
            lines.append(f"| {kind} ({r['n']}, {res['jobs']} jobs) | {pattern} | {r['top1']:.3f} | "
                         f"{cells[0]} | {cells[1]} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=Path, required=True, help="pcawg_ship_jobs.py --out folder")
    ap.add_argument("--npz", type=Path, required=True, help="the ship.npz the jobs read")
    ap.add_argument("--json", type=Path, default=None, help="write the pooled numbers here")
    args = ap.parse_args()
    results = load_run(args.results)
    ship = dict(np.load(args.npz, allow_pickle=False))
    report = {kind: pooled_patterns(results, ship, prefix) for kind, prefix in KINDS.items()}
    print(table(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, default=float))


if __name__ == "__main__":
    main()
