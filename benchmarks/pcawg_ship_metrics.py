"""Metrics of the packaged PCAWG model's jobs (`pcawg_ship_jobs.py` results), pooled per kind of split.

Every job's probabilities are scored on its own test genomes; a kind of split (the 5 CV folds, the
31 leave-one-study-out jobs, the 12-project hold-out) pools its jobs' test genomes, each genome
scored once. Models compared on the same genomes: the single model (seed 0, input as it is), the
seed ensemble (mean log-probabilities of every seed), and the ensemble with test-time views (the
input as it is averaged with DBS78 and/or indels masked as unmeasured), the views chosen per job on
that job's VALIDATION genomes (top-1; ties go to fewer views), never on its test genomes. Abstention is
measured as it would ship: each job's temperature, confidence threshold (0.90 accuracy on its
validation genomes) and profile OOD rule (its training genomes) are fitted on that job and model alone
(on the model's validation output), then applied to its test genomes. Gradient boosting and the models
are compared with paired bootstrap intervals.

Results keys: `JOB__sSEED__proba[_VIEW]` (probabilities on val + test genomes; the masked views of older
runs on test genomes only), `JOB__gb`.
"""

from __future__ import annotations

import numpy as np

TRAIN, VAL, TEST = 0, 1, 2
KINDS = {"cv_5fold": "cv", "leave_one_study_out": "loso_", "transfer_12_projects": "transfer12"}
MASKED = ("no_indels", "no_dbs", "no_reference")
#: View sets an ensemble may average, in order of preference on a tie (fewer views first).
CANDIDATE_VIEWS = (("full",), ("full", "no_dbs"), ("full", "no_indels"), ("full", "no_dbs", "no_indels"))
ARRAY = {"full": "proba", **{m: f"proba_{m}" for m in MASKED}}


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


def job_rule(proba_val: np.ndarray, y_val: np.ndarray, ood):
    """(temperature, AbstentionRule) fitted on one job's validation output, as shipped."""
    from nanog1.encoder.abstention import AbstentionRule, choose_threshold
    from nanog1.encoder.calibration import apply_temperature, fit_temperature, logits_from_proba

    t = fit_temperature(logits_from_proba(proba_val), y_val)
    threshold = choose_threshold(apply_temperature(proba_val, t), y_val, 0.9)
    return t, AbstentionRule(threshold, 0.9, ood)


def seeds_of(results, job: str) -> list[int]:
    """Seeds of `job` present in the results, in order."""
    tail = "__proba"
    seeds = (k[len(job) + 3 : -len(tail)] for k in results if k.startswith(f"{job}__s") and k.endswith(tail))
    return sorted(int(s) for s in seeds if s.isdigit())


def combine(results, job: str, seeds: list[int], views: tuple[str, ...], rows: np.ndarray):
    """Probabilities of the mean log-probability over seeds x views on `rows` (None: a view is missing)."""
    from nanog1.encoder.calibration import logits_from_proba, softmax

    parts = []
    for s in seeds:
        for v in views:
            arr = results.get(f"{job}__s{s}__{ARRAY[v]}")
            if arr is None or not np.isfinite(arr[rows]).all():
                return None
            parts.append(logits_from_proba(arr[rows]))
    return softmax(np.mean(parts, axis=0))


def choose_views(results, job: str, seeds: list[int], y: np.ndarray, val: np.ndarray) -> tuple[str, ...]:
    """The view set with the best top-1 on the job's validation genomes (ties: fewer views)."""
    best = (-1.0, ("full",))
    for views in CANDIDATE_VIEWS:
        p = combine(results, job, seeds, views, val)
        if p is not None and (acc := float((p.argmax(1) == y[val]).mean())) > best[0] + 1e-12:
            best = (acc, views)
    return best[1]


def model_specs(results, job: str, y, val, fixed_views: tuple[str, ...] | None) -> dict[str, tuple]:
    """(seeds, views) of each compared model on one job."""
    seeds = seeds_of(results, job)
    specs = {"single": ([0], ("full",)), "ensemble_full": (seeds, ("full",)),
             "ensemble": (seeds, choose_views(results, job, seeds, y, val)),
             "single_views": ([0], choose_views(results, job, [0], y, val))}
    if fixed_views is not None:
        specs["single_shipped_views"] = ([0], fixed_views)
    return specs


def pooled(results, ship, prefix: str, fixed_views: tuple[str, ...] | None = None) -> dict:
    """Scores of one kind of split for every compared model, GB, bootstrap intervals and abstention.

    `fixed_views`: also score seed 0 with these views (chosen elsewhere on validation genomes), for runs
    whose jobs kept no masked views of their validation genomes (no calibrated abstention then)."""
    from nanog1.encoder.abstention import profile_features
    from nanog1.encoder.calibration import apply_temperature, ood_reference

    y, counts = ship["labels"], ship["counts"].astype(np.float64)
    jobs = [str(j) for j in ship["jobs"] if str(j).startswith(prefix) and seeds_of(results, str(j))]
    shape = (len(y), len(ship["classes"]))
    prob: dict[str, np.ndarray] = {"gb": np.full(shape, np.nan)}
    prob |= {f"masked_{m}": np.full(shape, np.nan) for m in MASKED}
    uncertain: dict[str, np.ndarray] = {}
    per_job, chosen, n_seeds = {}, {}, {}
    for j in jobs:
        roles = ship[f"roles_{j}"]
        test, val, train = (np.flatnonzero(roles == r) for r in (TEST, VAL, TRAIN))
        prob["gb"][test] = results[f"{j}__gb"][test]
        seeds = seeds_of(results, j)
        n_seeds[j] = len(seeds)
        for m in MASKED:
            masked = combine(results, j, seeds, (m,), test)
            prob[f"masked_{m}"][test] = np.nan if masked is None else masked
        ood = ood_reference(counts[train], y[train], 0.2, 0)
        row = {"n": len(test), "seeds": len(seeds),
               "gb_top1": float((prob["gb"][test].argmax(1) == y[test]).mean())}
        for name, (sd, views) in model_specs(results, j, y, val, fixed_views).items():
            p_test = combine(results, j, sd, views, test)
            if p_test is None:
                continue
            prob.setdefault(name, np.full(shape, np.nan))[test] = p_test
            chosen.setdefault(name, {})[j] = list(views)
            row[f"{name}_top1"] = float((p_test.argmax(1) == y[test]).mean())
            p_val = combine(results, j, sd, views, val)
            if p_val is None:
                continue
            t, rule = job_rule(p_val, y[val], ood)
            flag = uncertain.setdefault(name, np.zeros(len(y), dtype=bool))
            flag[test] = rule.uncertain(apply_temperature(p_test, t), profile_features(counts[test]))
            row[f"{name}_temperature"], row[f"{name}_threshold"] = t, rule.confidence_threshold
        per_job[j] = row
    done = np.isfinite(prob["single"]).all(1)
    yd = y[done]
    pred = {k: v[done].argmax(1) for k, v in prob.items() if np.isfinite(v[done]).all()}
    models = {}
    for name in chosen:
        if not np.isfinite(prob[name][done]).all():
            continue
        entry = {"scores": scores(prob[name][done], yd), "views_per_job": chosen[name]}
        if name in uncertain:
            kept = ~uncertain[name][done]
            entry["abstention"] = {"coverage": float(kept.mean()),
                                   "top1_accepted": float((pred[name][kept] == yd[kept]).mean())}
        models[name] = entry
    pairs = [("ensemble", "gb"), ("single", "gb"), ("ensemble", "single"), ("ensemble_full", "single"),
             ("single_shipped_views", "single")]
    return {
        "jobs": len(jobs),
        "seeds_per_job": sorted(set(n_seeds.values())),
        "n_genomes": int(done.sum()),
        "models": models,
        "gradient_boosting": scores(prob["gb"][done], yd),
        "paired_bootstrap_ci95": {f"{a}_minus_{b}": paired_bootstrap(pred[a], pred[b], yd)
                                  for a, b in pairs if a in pred and b in pred},
        "masked_ensemble": {m: scores(prob[f"masked_{m}"][done], yd) for m in MASKED
                            if np.isfinite(prob[f"masked_{m}"][done]).all()},
        "per_job": per_job,
    }


def all_metrics(results, ship, fixed_views: tuple[str, ...] | None = None) -> dict:
    """`pooled` for every kind of split present in the results."""
    return {name: pooled(results, ship, prefix, fixed_views) for name, prefix in KINDS.items()
            if any(str(j).startswith(prefix) and f"{j}__gb" in results and seeds_of(results, str(j))
                   for j in ship["jobs"])}


def job_seed(key: str) -> tuple[str, int | None, str]:
    """(job, seed, array) of a results key: `JOB__sSEED__ARRAY`, an older single-seed `JOB__ARRAY` (seed
    0), or `JOB__gb` (seed None)."""
    job, _, rest = key.partition("__")
    if rest == "gb":
        return job, None, rest
    head, _, array = rest.partition("__")
    if head[:1] == "s" and head[1:].isdigit() and array:
        return job, int(head[1:]), array
    return job, 0, rest


def merge_earlier(results: dict, earlier: dict) -> dict:
    """`results` completed by an earlier run on the same ship.npz: its GB arrays, and every (job, seed) this
    run lacks (old single-seed keys `JOB__ARRAY` read as seed 0); this run's (job, seed) wins."""
    out = dict(results)
    have = {(j, s) for j, s, _ in map(job_seed, results) if s is not None}
    for key, value in earlier.items():
        job, seed, array = job_seed(key)
        if seed is None:
            out.setdefault(key, value)
        elif (job, seed) not in have:
            out[f"{job}__s{seed}__{array}"] = value
    return out


def load_run(folder) -> dict:
    """Every results array of one pcawg_ship_jobs.py output folder (`ship_results*.npz`)."""
    from pathlib import Path

    out: dict = {}
    for path in sorted(Path(folder).glob("ship_results*.npz")):
        with np.load(path, allow_pickle=False) as z:
            out |= {k: z[k] for k in z.files}
    return out


def keep_seeds(results: dict, prefix: str, seeds) -> dict:
    """`results` without the seeds outside `seeds` of the jobs named `prefix...` (GB arrays kept)."""
    keep = set(seeds)
    return {k: v for k, v in results.items()
            if not k.startswith(prefix) or job_seed(k)[1] is None or job_seed(k)[1] in keep}


def common_seeds(results: dict, jobs: list[str]) -> list[int]:
    """Seeds trained for every one of `jobs` (an ensemble that is the same on each of them)."""
    sets = [set(seeds_of(results, j)) for j in jobs]
    return sorted(set.intersection(*sets)) if sets else []
