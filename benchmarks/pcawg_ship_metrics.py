"""Metrics of the packaged PCAWG model's jobs (`pcawg_ship_jobs.py` results), pooled per kind of split.

Every job's probabilities are scored on its own test genomes; a kind of split (the 5 CV folds, the
31 leave-one-study-out jobs, the 12-project hold-out) pools its jobs' test genomes, each genome
scored once. Abstention is measured as it would ship: each job's temperature, confidence threshold
(0.90 accuracy on its validation genomes) and profile OOD rule (its training genomes) are fitted on
that job alone, then applied to its test genomes. Gradient boosting is compared on the same genomes
with paired bootstrap intervals.
"""

from __future__ import annotations

import numpy as np

TRAIN, VAL, TEST = 0, 1, 2
KINDS = {"cv_5fold": "cv", "leave_one_study_out": "loso_", "transfer_12_projects": "transfer12"}
MASKED = ("no_indels", "no_dbs", "no_reference")


def scores(proba: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Top-1, top-3 and macro-F1 (over the types present)."""
    from sklearn.metrics import f1_score

    pred = proba.argmax(1)
    return {
        "top1": float((pred == labels).mean()),
        "top3": float((np.argsort(-proba, 1)[:, :3] == labels[:, None]).any(1).mean()),
        "macro_f1": float(f1_score(labels, pred, average="macro", labels=np.unique(labels))),
    }


def paired_bootstrap(
    a: np.ndarray, b: np.ndarray, labels: np.ndarray, draws: int = 1000, seed: int = 0
) -> dict[str, list[float]]:
    """95 % intervals of top-1 and macro-F1 differences (a - b) over genomes resampled in pairs."""
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(labels), (draws, len(labels)))
    hit_a, hit_b = (a == labels).astype(float), (b == labels).astype(float)
    top1 = hit_a[idx].mean(1) - hit_b[idx].mean(1)
    f1 = [
        f1_score(labels[i], a[i], average="macro", labels=np.unique(labels[i]))
        - f1_score(labels[i], b[i], average="macro", labels=np.unique(labels[i]))
        for i in idx
    ]
    q = (0.025, 0.975)
    return {"top1": np.quantile(top1, q).tolist(), "macro_f1": np.quantile(f1, q).tolist()}


def job_rule(proba_val: np.ndarray, y_val: np.ndarray, counts_train: np.ndarray, y_train: np.ndarray):
    """(temperature, AbstentionRule) fitted on one job's validation and training genomes, as shipped."""
    from nanog1.encoder.abstention import AbstentionRule, choose_threshold
    from nanog1.encoder.calibration import (
        apply_temperature,
        fit_temperature,
        logits_from_proba,
        ood_reference,
    )

    t = fit_temperature(logits_from_proba(proba_val), y_val)
    threshold = choose_threshold(apply_temperature(proba_val, t), y_val, 0.9)
    return t, AbstentionRule(threshold, 0.9, ood_reference(counts_train, y_train, 0.2, 0))


def pooled(results, ship, prefix: str) -> dict:
    """Scores of one kind of split: encoder, masked sets, gradient boosting, bootstrap, abstention."""
    from nanog1.encoder.abstention import profile_features
    from nanog1.encoder.calibration import apply_temperature

    y, counts = ship["labels"], ship["counts"].astype(np.float64)
    jobs = [str(j) for j in ship["jobs"] if str(j).startswith(prefix)]
    shape = (len(y), len(ship["classes"]))
    prob = {k: np.full(shape, np.nan) for k in ("proba", "gb", *(f"proba_{m}" for m in MASKED))}
    uncertain = np.zeros(len(y), dtype=bool)
    per_job = {}
    for j in jobs:
        roles = ship[f"roles_{j}"]
        test, val, train = roles == TEST, roles == VAL, roles == TRAIN
        for k in prob:
            prob[k][test] = results[f"{j}__{k}"][test]
        t, rule = job_rule(results[f"{j}__proba"][val], y[val], counts[train], y[train])
        calibrated = apply_temperature(results[f"{j}__proba"][test], t)
        uncertain[test] = rule.uncertain(calibrated, profile_features(counts[test]))
        hit = calibrated.argmax(1) == y[test]
        per_job[j] = {"n": int(test.sum()), "encoder_top1": float(hit.mean()),
                      "gb_top1": float((prob["gb"][test].argmax(1) == y[test]).mean()),
                      "temperature": t, "threshold": rule.confidence_threshold}
    done = np.isfinite(prob["proba"]).all(1)
    yd, enc, gb = y[done], prob["proba"][done].argmax(1), prob["gb"][done].argmax(1)
    kept = ~uncertain[done]
    return {
        "jobs": len(jobs),
        "n_genomes": int(done.sum()),
        "encoder": scores(prob["proba"][done], yd),
        "gradient_boosting": scores(prob["gb"][done], yd),
        "encoder_minus_gb_ci95_paired_bootstrap": paired_bootstrap(enc, gb, yd),
        "encoder_masked": {m: scores(prob[f"proba_{m}"][done], yd) for m in MASKED},
        "abstention_per_job_calibration": {
            "coverage": float(kept.mean()),
            "top1_accepted": float((enc[kept] == yd[kept]).mean()) if kept.any() else float("nan"),
        },
        "per_job": per_job,
    }


def all_metrics(results, ship) -> dict:
    """`pooled` for every kind of split present in the results."""
    return {name: pooled(results, ship, prefix) for name, prefix in KINDS.items()
            if any(str(j).startswith(prefix) and f"{j}__gb" in results for j in ship["jobs"])}
