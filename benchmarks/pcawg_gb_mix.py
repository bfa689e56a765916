"""Encoder ensemble + gradient boosting mixture on the packaged PCAWG jobs (issue 31; measured, not shipped).

Per job (5 CV folds, the 12-project hold-out, 31 leave-one-study-out splits; roles from `ship.npz`):

* gradient boosting = `nanog1.encoder.baselines.classifiers(0)["gradient_boosting"]`, the estimator of
  `pcawg_ship_jobs._gb_job`, but fitted on the job's TRAINING genomes only, so that its validation output is
  out of sample (the shipped GB rows were fitted on train + validation); its validation and test
  probabilities are cached per job under `--cache` (a rerun fits nothing);
* the encoder = the shipped seed ensemble as `pcawg_ship_report.pooled_predictions` scores it: seeds
  0..`--seeds`-1, views chosen per job on that job's validation genomes (`choose_views`), mean
  log-probability (`combine`);
* the mixture: linear `(1-w) p_enc + w p_gb` and geometric (log-linear, renormalised)
  `p_enc^(1-w) p_gb^w`, w from 0, 0.1, ..., 1 chosen per job by the log-loss of its own VALIDATION genomes
  (ties to the smaller w), then applied to its test genomes. Nothing is tuned on a job's test genomes.
  A second, transfer-minded choice for LOSO and the 12-project hold-out: w with the lowest log-loss on
  OTHER studies' held-out genomes (each LOSO split: the other 30 splits' test genomes; the 12 projects:
  the LOSO splits of the 19 projects outside them), nested as the report's transfer threshold is.

Test genomes are pooled per kind of split; top-1, top-3 and macro-F1 per model, paired bootstrap intervals
(`pcawg_ship_metrics.paired_bootstrap`, 1,000 draws) of each mixture minus the encoder and minus GB, and
abstention at the shipped rule refitted per job on each model's own validation output (`job_rule`).

    OMP_NUM_THREADS=1 PYTHONPATH=. nice -n 19 python benchmarks/pcawg_gb_mix.py \\
        --npz results/dev/ship.npz --runs results/patterns results/patterns_s12 results/patterns_s34 \\
        --cache results/gbmix --workers 2 --out results/gbmix/report.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pcawg_ship_metrics import (  # noqa: E402
    KINDS,
    TEST,
    TRAIN,
    VAL,
    choose_views,
    combine,
    job_rule,
    paired_bootstrap,
    scores,
)

#: Mixture weights of GB tried on each job's validation genomes.
WEIGHTS = tuple(round(0.1 * i, 1) for i in range(11))
FORMS = ("linear", "geometric")
_TINY = 1e-12


def mix(p_enc: np.ndarray, p_gb: np.ndarray, w: float, form: str = "linear") -> np.ndarray:
    """Mixture of two probability tables (rows sum to 1): linear `(1-w) p_enc + w p_gb`, or geometric
    `p_enc^(1-w) p_gb^w` renormalised per row (a product of experts; a zero stays a near-zero)."""
    if form == "linear":
        return (1.0 - w) * p_enc + w * p_gb
    if form == "geometric":
        logp = (1.0 - w) * np.log(np.clip(p_enc, _TINY, 1.0)) + w * np.log(np.clip(p_gb, _TINY, 1.0))
        logp -= logp.max(1, keepdims=True)
        e = np.exp(logp)
        return e / e.sum(1, keepdims=True)
    raise ValueError(f"unknown mixture form {form!r} (one of {', '.join(FORMS)})")


def log_loss(proba: np.ndarray, labels: np.ndarray) -> float:
    """Mean negative log-probability of the true type (clipped at 1e-12 so a zero costs 27.6, not inf)."""
    return float(-np.log(np.clip(proba[np.arange(len(labels)), labels], _TINY, 1.0)).mean())


def choose_weight(p_enc_val: np.ndarray, p_gb_val: np.ndarray, y_val: np.ndarray, form: str = "linear",
                  grid: tuple[float, ...] = WEIGHTS) -> tuple[float, list[float]]:
    """(w, log-loss per grid point): the GB weight with the lowest validation log-loss; ties go to the
    smaller w (the encoder alone, the model shipped, unless GB measurably helps)."""
    losses = [log_loss(mix(p_enc_val, p_gb_val, w, form), y_val) for w in grid]
    best = min(range(len(grid)), key=lambda i: (round(losses[i], 12), grid[i]))
    return float(grid[best]), losses


def fit_gb(x: np.ndarray, y: np.ndarray, roles: np.ndarray, n_classes: int) -> np.ndarray:
    """Probabilities (genomes x types, NaN outside validation and test) of gradient boosting fitted on the
    training genomes; a type absent from training gets probability 0."""
    from threadpoolctl import threadpool_limits

    from nanog1.encoder.baselines import classifiers

    train, rows = np.flatnonzero(roles == TRAIN), np.flatnonzero(roles != TRAIN)
    proba = np.full((len(y), n_classes), np.nan, dtype=np.float32)
    with threadpool_limits(1):
        model = classifiers(0)["gradient_boosting"]().fit(x[train], y[train])
        proba[rows] = 0.0
        proba[np.ix_(rows, model.classes_)] = model.predict_proba(x[rows])
    return proba


def _gb_job(npz: str, job: str, cache: str) -> tuple[str, float]:
    """Fit one job's GB and write it to the cache (a worker process); (job, seconds)."""
    t0 = time.perf_counter()
    with np.load(npz, allow_pickle=False) as z:
        roles = z[f"roles_{job}"]
        proba = fit_gb(z["gb_x"], z["labels"], roles, len(z["classes"]))
    seconds = time.perf_counter() - t0
    np.savez_compressed(cache_path(Path(cache), job), proba=proba, roles=roles, seconds=seconds)
    return job, seconds


def cache_path(cache: Path, job: str) -> Path:
    """The cached GB probabilities of one job."""
    return cache / f"gb_{job}.npz"


def cached_gb(cache: Path, job: str, roles: np.ndarray) -> np.ndarray | None:
    """A job's cached GB probabilities, or None when absent or fitted with other roles (stale)."""
    path = cache_path(cache, job)
    if not path.exists():
        return None
    with np.load(path, allow_pickle=False) as z:
        return z["proba"] if np.array_equal(z["roles"], roles) else None


def ensure_gb(npz: Path, ship: dict, jobs: list[str], cache: Path, workers: int) -> dict[str, float]:
    """Fit (in `workers` processes) the GB of every job whose cache is missing or stale; seconds per fit."""
    cache.mkdir(parents=True, exist_ok=True)
    todo = [j for j in jobs if cached_gb(cache, j, ship[f"roles_{j}"]) is None]
    seconds: dict[str, float] = {}
    if not todo:
        return seconds
    with ProcessPoolExecutor(max(workers, 1)) as pool:
        for job, s in pool.map(_gb_job, [str(npz)] * len(todo), todo, [str(cache)] * len(todo)):
            seconds[job] = s
            print(f"GB {job}: {s:.1f} s", flush=True)
    return seconds


def job_probas(results: dict, ship: dict, job: str, seeds: list[int], gb: np.ndarray) -> dict:
    """One job's validation / test rows with the encoder ensemble's probabilities (views chosen on its
    validation genomes, as the report's shipped row) and GB's on each."""
    y, roles = ship["labels"], ship[f"roles_{job}"]
    val, test = np.flatnonzero(roles == VAL), np.flatnonzero(roles == TEST)
    views = choose_views(results, job, seeds, y, val)
    enc_val, enc_test = (combine(results, job, seeds, views, rows) for rows in (val, test))
    if enc_val is None or enc_test is None:
        raise SystemExit(f"{job}: the encoder outputs lack seeds {seeds} x views {views}")
    return {"val": val, "test": test, "views": views, "enc_val": enc_val, "enc_test": enc_test,
            "gb_val": gb[val].astype(np.float64), "gb_test": gb[test].astype(np.float64)}


def job_models(p: dict, y: np.ndarray, transfer_w: dict[str, float] | None = None
               ) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], dict]:
    """{model: (validation proba, test proba)} for encoder, GB and each mixture form with w chosen on the
    job's validation genomes, and the weights chosen (with their validation log-loss curves). `transfer_w`
    ({form: w} chosen elsewhere, on other studies' genomes) adds `mix_FORM_transfer_w` models."""
    models = {"encoder": (p["enc_val"], p["enc_test"]), "gb": (p["gb_val"], p["gb_test"])}
    chosen: dict = {}
    for form in FORMS:
        w, losses = choose_weight(p["enc_val"], p["gb_val"], y[p["val"]], form)
        models[f"mix_{form}"] = (mix(p["enc_val"], p["gb_val"], w, form),
                                 mix(p["enc_test"], p["gb_test"], w, form))
        chosen[form] = {"w": w, "val_log_loss": [round(v, 4) for v in losses]}
    for form, w in (transfer_w or {}).items():
        models[f"mix_{form}_transfer_w"] = (mix(p["enc_val"], p["gb_val"], w, form),
                                            mix(p["enc_test"], p["gb_test"], w, form))
        chosen[f"{form}_transfer_w"] = {"w": w}
    return models, chosen


def transfer_weights(probas: dict[str, dict], y: np.ndarray, jobs: list[str]) -> dict[str, float]:
    """{form: w} with the lowest log-loss on the pooled TEST genomes of `jobs` (other studies' held-out
    genomes, never those of the job it is applied to)."""
    enc = np.concatenate([probas[j]["enc_test"] for j in jobs])
    gb = np.concatenate([probas[j]["gb_test"] for j in jobs])
    yt = y[np.concatenate([probas[j]["test"] for j in jobs])]
    return {form: choose_weight(enc, gb, yt, form)[0] for form in FORMS}


def nested_transfer_weights(probas: dict[str, dict], ship: dict) -> dict[str, dict[str, float]]:
    """{job: {form: w}}: each LOSO split's w from the other 30 splits' test genomes; the 12-project
    hold-out's from the LOSO splits of projects outside it (as `pcawg_ship_report.transfer_abstention`
    nests its threshold)."""
    y = ship["labels"]
    loso = [j for j in probas if j.startswith("loso_")]
    out = {j: transfer_weights(probas, y, [k for k in loso if k != j]) for j in loso}
    held = set(map(str, ship["held_out_projects"]))
    outside = [j for j in loso if j.removeprefix("loso_") not in held]
    if "transfer12" in probas and outside:
        out["transfer12"] = transfer_weights(probas, y, outside)
    return out


def shipped_rule_flags(p_val: np.ndarray, p_test: np.ndarray, y_val: np.ndarray, ood,
                       test_features: np.ndarray) -> np.ndarray:
    """Test genomes the shipped abstention rule (temperature and 0.90 threshold fitted on this model's
    validation output, profile OOD rule) reports as uncertain."""
    from nanog1.encoder.calibration import apply_temperature

    t, rule = job_rule(p_val, y_val, ood)
    return rule.uncertain(apply_temperature(p_test, t), test_features)


def family(probas: dict[str, dict], ship: dict, prefix: str, draws: int,
           transfer_w: dict[str, dict[str, float]] | None = None) -> dict:
    """Pooled test-genome scores, bootstrap intervals, abstention and per-job weights of one kind of split
    (`probas`: `job_probas` per job)."""
    from nanog1.encoder.abstention import profile_features
    from nanog1.encoder.calibration import ood_reference

    y, counts = ship["labels"], ship["counts"].astype(np.float64)
    jobs = [j for j in probas if j.startswith(prefix)]
    test_p: dict[str, list[np.ndarray]] = {}
    flags: dict[str, list[np.ndarray]] = {}
    rows, per_job = [], {}
    for job in jobs:
        p, roles = probas[job], ship[f"roles_{job}"]
        models, chosen = job_models(p, y, (transfer_w or {}).get(job))
        train = np.flatnonzero(roles == TRAIN)
        ood = ood_reference(counts[train], y[train], 0.2, 0)
        feats = profile_features(counts[p["test"]])
        for name, (pv, pt) in models.items():
            test_p.setdefault(name, []).append(pt)
            flags.setdefault(name, []).append(shipped_rule_flags(pv, pt, y[p["val"]], ood, feats))
        rows.append(p["test"])
        top1 = {f"{m}_top1": float((pt.argmax(1) == y[p["test"]]).mean()) for m, (_, pt) in models.items()}
        per_job[job] = {"n": len(p["test"]), "views": list(p["views"]), "weights": chosen, **top1}
    yt = y[np.concatenate(rows)]
    proba = {m: np.concatenate(v) for m, v in test_p.items()}
    pred = {m: v.argmax(1) for m, v in proba.items()}
    out_models = {}
    for m, v in proba.items():
        kept = ~np.concatenate(flags[m])
        out_models[m] = scores(v, yt) | {"accepted": float(kept.mean()),
                                         "top1_accepted": float((pred[m][kept] == yt[kept]).mean())}
    mixes = [m for m in proba if m.startswith("mix_")]
    ci = {f"{m}_minus_{b}": paired_bootstrap(pred[m], pred[b], yt, draws)
          for m in mixes for b in ("encoder", "gb")}
    weights = {k: [per_job[j]["weights"][k]["w"] for j in jobs] for k in per_job[jobs[0]]["weights"]}
    return {"jobs": len(jobs), "n_genomes": len(yt), "models": out_models,
            "paired_bootstrap_ci95": ci, "weights_per_job": weights, "per_job": per_job}


def report(results: dict, ship: dict, seeds: list[int], cache: Path, draws: int) -> dict:
    """`family` for each kind of split (LOSO, 12-project, CV) whose every job has its GB cached; LOSO and
    the 12-project hold-out also with w nested across studies (`nested_transfer_weights`)."""
    probas = {}
    for job in (str(j) for j in ship["jobs"] if str(j) != "final"):
        gb = cached_gb(cache, job, ship[f"roles_{job}"])
        if gb is not None:
            probas[job] = job_probas(results, ship, job, seeds, gb)
    loso = [str(j) for j in ship["jobs"] if str(j).startswith("loso_")]
    transfer_w = nested_transfer_weights(probas, ship) if all(j in probas for j in loso) else None
    out: dict = {"seeds": seeds}
    for kind in ("leave_one_study_out", "transfer_12_projects", "cv_5fold"):
        jobs = [str(j) for j in ship["jobs"] if str(j).startswith(KINDS[kind])]
        prefix = KINDS[kind]
        if jobs and all(j in probas for j in jobs):
            out[kind] = family(probas, ship, prefix, draws, transfer_w if prefix != "cv" else None)
        else:
            out[kind] = "not measured: GB not cached for every job"
    return out


def families(rep: dict) -> dict[str, dict]:
    """The measured kinds of split of a report."""
    return {k: v for k, v in rep.items() if isinstance(v, dict) and "models" in v}


def table(rep: dict) -> str:
    """Markdown rows: split, model, top-1, top-3, macro-F1, accepted / top-1 on accepted."""
    names = {"encoder": "encoder (5 seeds x views, shipped)", "gb": "gradient boosting (train only)",
             "mix_linear": "mixture, linear, w on own validation",
             "mix_geometric": "mixture, geometric, w on own validation",
             "mix_linear_transfer_w": "mixture, linear, w on other studies (nested)",
             "mix_geometric_transfer_w": "mixture, geometric, w on other studies (nested)"}
    lines = ["| split (test genomes) | model | top-1 | top-3 | macro-F1 | shipped rule: accepted / top-1 |",
             "|:--|:--|--:|--:|--:|--:|"]
    for kind, fam in families(rep).items():
        for i, (m, s) in enumerate(fam["models"].items()):
            split = f"{kind} ({fam['n_genomes']:,})" if i == 0 else "same"
            lines.append(f"| {split} | {names.get(m, m)} | {s['top1']:.3f} | {s['top3']:.3f} "
                         f"| {s['macro_f1']:.3f} | {100 * s['accepted']:.1f} % / {s['top1_accepted']:.3f} |")
    return "\n".join(lines)


def main() -> None:
    from pcawg_ship_report import merged_runs

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--npz", type=Path, required=True, help="ship.npz (pcawg_shipped.py export-npz)")
    ap.add_argument("--runs", type=Path, nargs="+", required=True,
                    help="pcawg_ship_jobs.py output folders (encoder seeds; the first wins)")
    ap.add_argument("--cache", type=Path, required=True, help="folder of the per-job GB probabilities")
    ap.add_argument("--seeds", type=int, default=5, help="members of the encoder ensemble (shipped: 5)")
    ap.add_argument("--workers", type=int, default=1, help="processes fitting GB (one thread each)")
    ap.add_argument("--draws", type=int, default=1000, help="paired bootstrap draws")
    ap.add_argument("--no-fit", action="store_true", help="score only the jobs whose GB is cached")
    ap.add_argument("--out", type=Path, default=None, help="full report as JSON")
    args = ap.parse_args()
    if not args.npz.exists():
        raise SystemExit(f"{args.npz}: no such file")
    ship = dict(np.load(args.npz, allow_pickle=False))
    # Transfer first (the question), CV last.
    order = [str(j) for j in ship["jobs"] if str(j).startswith(("loso_", "transfer12"))]
    order += [str(j) for j in ship["jobs"] if str(j).startswith("cv")]
    t0 = time.perf_counter()
    fits = {} if args.no_fit else ensure_gb(args.npz, ship, order, args.cache, args.workers)
    t_fit = time.perf_counter() - t0
    rep = report(merged_runs(args.runs), ship, list(range(args.seeds)), args.cache, args.draws)
    rep["timing"] = {"gb_fits": len(fits), "gb_fit_wall_s": round(t_fit, 1),
                     "gb_seconds_per_fit": sorted(round(s, 1) for s in fits.values()),
                     "score_wall_s": round(time.perf_counter() - t0 - t_fit, 1)}
    if args.out:
        args.out.write_text(json.dumps(rep, indent=1, default=float))
    print(table(rep))
    print(json.dumps({k: {"ci95": v["paired_bootstrap_ci95"], "weights": v["weights_per_job"]}
                      for k, v in families(rep).items()}, indent=1))
    print(json.dumps(rep["timing"]))


if __name__ == "__main__":
    main()
