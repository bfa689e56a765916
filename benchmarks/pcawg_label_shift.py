"""EM prior adaptation (label shift) of the shipped PCAWG encoder ensemble on transfer (issue 31; measured).

Saerens, Latinne & Decaestecker (2002, "Adjusting the outputs of a classifier to new a priori
probabilities"): a new cohort's type mix q is estimated from the model's own posteriors, with no label, by
iterating  post_i ∝ p_i ⊙ q / π  (per tumour, renormalised),  q = mean_i post_i,  from q = π (π the prior
the posteriors were fitted under). The adapted posteriors are the last post_i.

Encoder = the shipped seed ensemble exactly as `pcawg_gb_mix.py` scores it (seeds 0..4, views chosen per job
on its validation genomes, `choose_views` / `combine`); its rows must reproduce that benchmark's encoder rows.
Per job (5 CV folds, the 12-project hold-out, 31 leave-one-study-out splits; roles from `ship.npz`) the
posteriors are first calibrated on the job's VALIDATION genomes: temperature T as `job_rule` fits it ("ts");
or T then a per-type bias vector b (softmax(log p_T + b), b fitted by NLL on the validation genomes, types
absent there fixed at 0, L2 1e-3), a bias-corrected calibration ("bc", BCTS with T fitted first).

Models (every rule fixed before any test result was looked at):

* `encoder`: the shipped ensemble, T-scaled (argmax unchanged), no adaptation;
* `em_freq`: plain EM on ts posteriors, π = class frequencies of the job's TRAINING genomes (the brief's);
* `em_uniform`: plain EM on ts posteriors, π = uniform over the training types. The recipe trains with
  inverse-frequency class weights (`pcawg_device.train_fold`: `class_weights`, power 1), whose fitted
  posteriors carry a near-uniform prior, not the training frequencies;
* `em_bc`: plain EM on bc posteriors, π = training frequencies (the bias makes the posteriors calibrated on
  validation genomes, whose mix is the training mix, so π and posteriors agree: Alexandari et al. 2020);
* `em_bc_damped` (**the primary, the only candidate for shipping**): em_bc with a Dirichlet pseudo-count α
  toward π, q = (Σ_i post_i + α π̄) / (n + α) (π̄ the cohort's mean π; α in tumours; α = ∞ is no
  adaptation), so a small cohort moves little. α from ALPHAS, chosen WITHOUT the cohort's labels: the α with
  the lowest pooled log-loss on OTHER LOSO splits' test genomes, each adapted as its own cohort (a LOSO split:
  the other 30; the 12-project hold-out and its sub-cohorts: the 19 splits outside its projects; a mixed
  union of LOSO test sets: the splits outside it); a CV fold: its own validation genomes as one cohort.
  Ties go to the larger α (less adaptation).
* `bc` (an ablation added after a first trial run showed that bc alone moves CV top-1): the bias-corrected
  calibration with no adaptation (α = ∞), to separate the calibration's share of any gain from EM's; the
  intervals include `em_bc_damped_minus_bc` (what EM adds to that calibration).

EM: at most 1,000 iterations, stop when max |Δq| < 1e-10. A mixed cohort whose tumours come from several
jobs keeps each tumour's own job (its posteriors and its π); EM then runs with a per-tumour π.

Abstention: the shipped rule (confidence threshold reaching 0.90 accuracy on the job's validation output,
OOD rule from its training genomes), the threshold fitted on the model's calibrated validation output
WITHOUT adaptation (the validation genomes are the training mix; a packaged model fixes its threshold
before any cohort is seen), then applied to the ADAPTED test posteriors: adaptation sharpens or flattens
confidence, and that moves acceptance, which is reported as it falls.

Cohorts: each LOSO split's test genomes; the 12-project hold-out (410) as one mixed cohort; each CV fold's
test genomes (the control: a cohort with the training mix, where q should barely move). Simulated, to
measure the single-study optimism of LOSO (30 of 31 splits are one cancer type): `--partitions` random
partitions of the 31 LOSO splits into disjoint unions of 3–6 splits (each genome scored by its own split's
model, every genome once per partition), and the 12-project hold-out cut at random into cohorts of 10, 25
and 50 tumours (every genome once per partition).

Reported per family: top-1, top-3, macro-F1, abstention (accepted / top-1 on accepted), correct→wrong and
wrong→correct flips against the encoder, how far q moved from π and how close it came to the cohort's true
mix (total variation), and paired bootstrap 95 % intervals (`paired_bootstrap`, 1,000 draws) of each model
minus the encoder; for simulated cohorts one interval per partition, summarised over partitions.

    OMP_NUM_THREADS=1 PYTHONPATH=. nice -n 19 python benchmarks/pcawg_label_shift.py \\
        --npz results/dev/ship.npz --runs results/patterns results/patterns_s12 results/patterns_s34 \\
        --out results/label_shift.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
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

#: Dirichlet pseudo-counts (tumours) tried for the damped EM; inf = no adaptation.
ALPHAS = (0.0, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, float("inf"))
#: Models: (calibration, source prior, damping): "plain" EM (α 0), "nested" α chosen as documented, or
#: "off" (α = inf: the calibration alone, no adaptation).
MODELS = {"bc": ("bc", "freq", "off"), "em_freq": ("ts", "freq", "plain"),
          "em_uniform": ("ts", "uniform", "plain"),
          "em_bc": ("bc", "freq", "plain"), "em_bc_damped": ("bc", "freq", "nested")}
PRIMARY = "em_bc_damped"
SMALL_SIZES = (10, 25, 50)
_TINY = 1e-12


def em_adapt(p: np.ndarray, prior: np.ndarray, alpha: float = 0.0, max_iter: int = 1000,
             tol: float = 1e-10) -> tuple[np.ndarray, np.ndarray, int]:
    """(adapted posteriors, estimated cohort prior q, iterations) of Saerens et al.'s EM on one cohort.

    `p`: calibrated posteriors (tumours x types, rows sum to 1); `prior`: the prior they were fitted under,
    one row for all tumours or one per tumour (a cohort scored by several models). `alpha`: Dirichlet
    pseudo-count toward the mean prior (0 = plain EM, inf = no adaptation)."""
    p = np.clip(np.asarray(p, dtype=np.float64), _TINY, 1.0)
    prior = np.broadcast_to(np.clip(np.asarray(prior, dtype=np.float64), _TINY, 1.0), p.shape)
    base = prior.mean(0)
    base /= base.sum()
    if not np.isfinite(alpha) or len(p) == 0:
        return p / p.sum(1, keepdims=True), base, 0
    logp, logprior = np.log(p), np.log(prior)
    q = base.copy()
    post = p / p.sum(1, keepdims=True)
    it = 0
    while it < max_iter:
        it += 1
        z = logp + np.log(np.clip(q, _TINY, 1.0)) - logprior
        z -= z.max(1, keepdims=True)
        post = np.exp(z)
        post /= post.sum(1, keepdims=True)
        new = (post.sum(0) + alpha * base) / (len(p) + alpha)
        done = np.abs(new - q).max() < tol
        q = new
        if done:
            break
    return post, q, it


def fit_bias(p_val: np.ndarray, y_val: np.ndarray, l2: float = 1e-3) -> np.ndarray:
    """Per-type bias b minimising the validation NLL of softmax(log p + b) (+ l2/2 |b|²); types absent from
    the validation genomes keep b = 0 (nothing to fit them on)."""
    from scipy.optimize import minimize

    logp = np.log(np.clip(np.asarray(p_val, dtype=np.float64), _TINY, 1.0))
    k = logp.shape[1]
    onehot = np.eye(k)[y_val]
    present = np.bincount(y_val, minlength=k) > 0

    def loss(b: np.ndarray) -> tuple[float, np.ndarray]:
        z = logp + b
        z -= z.max(1, keepdims=True)
        lse = np.log(np.exp(z).sum(1, keepdims=True))
        logq = z - lse
        nll = -float((logq * onehot).sum(1).mean()) + 0.5 * l2 * float(b @ b)
        grad = (np.exp(logq) - onehot).mean(0) + l2 * b
        return nll, np.where(present, grad, 0.0)

    res = minimize(loss, np.zeros(k), jac=True, method="L-BFGS-B")
    return np.where(present, res.x, 0.0)


def with_bias(p: np.ndarray, b: np.ndarray) -> np.ndarray:
    """softmax(log p + b) per row."""
    z = np.log(np.clip(np.asarray(p, dtype=np.float64), _TINY, 1.0)) + b
    z -= z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def log_loss(proba: np.ndarray, labels: np.ndarray) -> float:
    """Summed negative log-probability of the true type (clipped at 1e-12)."""
    return float(-np.log(np.clip(proba[np.arange(len(labels)), labels], _TINY, 1.0)).sum())


def job_inputs(results: dict, ship: dict, job: str, seeds: list[int]) -> dict:
    """One job's calibrated validation/test posteriors (ts and bc), priors, abstention pieces."""
    from nanog1.encoder.abstention import AbstentionRule, choose_threshold, profile_features
    from nanog1.encoder.calibration import apply_temperature, ood_reference

    y, roles = ship["labels"], ship[f"roles_{job}"]
    k = len(ship["classes"])
    train, val, test = (np.flatnonzero(roles == r) for r in (TRAIN, VAL, TEST))
    views = choose_views(results, job, seeds, y, val)
    enc_val, enc_test = (combine(results, job, seeds, views, rows) for rows in (val, test))
    if enc_val is None or enc_test is None:
        raise SystemExit(f"{job}: the encoder outputs lack seeds {seeds} x views {views}")
    counts = ship["counts"].astype(np.float64)
    ood = ood_reference(counts[train], y[train], 0.2, 0)
    t, _ = job_rule(enc_val, y[val], ood)
    cal = {"ts": tuple(apply_temperature(p, t).astype(np.float64) for p in (enc_val, enc_test))}
    b = fit_bias(cal["ts"][0], y[val])
    cal["bc"] = (with_bias(cal["ts"][0], b), with_bias(cal["ts"][1], b))
    freq = np.bincount(y[train], minlength=k).astype(np.float64)
    priors = {"freq": freq / freq.sum(), "uniform": (freq > 0) / (freq > 0).sum()}
    rules = {c: AbstentionRule(choose_threshold(v.astype(np.float32), y[val], 0.9), 0.9, ood)
             for c, (v, _) in cal.items()}
    return {"val": val, "test": test, "views": views, "enc_test": enc_test, "temperature": t, "bias": b,
            "cal": cal, "priors": priors, "rules": rules, "features": profile_features(counts[test])}


def alpha_losses(inp: dict, y: np.ndarray, rows: str = "test") -> list[float]:
    """Summed log-loss of em_bc with each α of ALPHAS on one job's test genomes (or its validation genomes,
    `rows="val"`), adapted as one cohort."""
    p = inp["cal"]["bc"][0 if rows == "val" else 1]
    labels = y[inp[rows]]
    return [log_loss(em_adapt(p, inp["priors"]["freq"], a)[0], labels) for a in ALPHAS]


def pick_alpha(losses: dict[str, list[float]], jobs: list[str]) -> float:
    """The α of ALPHAS with the lowest pooled log-loss over `jobs` (ties: the larger α)."""
    total = np.sum([losses[j] for j in jobs], axis=0)
    best = min(range(len(ALPHAS)), key=lambda i: (round(float(total[i]), 9), -ALPHAS[i]))
    return ALPHAS[best]


def adapt_cohort(inputs: dict, members: list[tuple[str, np.ndarray]], model: str, alpha: float
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(adapted test posteriors, q) of one cohort: `members` = (job, positions within its test genomes)."""
    cal, src, _ = MODELS[model]
    p = np.concatenate([inputs[j]["cal"][cal][1][pos] for j, pos in members])
    prior = np.concatenate([np.broadcast_to(inputs[j]["priors"][src], (len(pos), p.shape[1]))
                            for j, pos in members])
    post, q, _ = em_adapt(p, prior, alpha)
    return post, q


def total_variation(a: np.ndarray, b: np.ndarray) -> float:
    """Half the L1 distance of two distributions."""
    return 0.5 * float(np.abs(np.asarray(a) - np.asarray(b)).sum())


def flips(pred: np.ndarray, base: np.ndarray, y: np.ndarray) -> dict[str, int]:
    """Predictions turned correct→wrong and wrong→correct against `base`."""
    return {"correct_to_wrong": int(((base == y) & (pred != y)).sum()),
            "wrong_to_correct": int(((base != y) & (pred == y)).sum())}


def score_block(proba: np.ndarray, y: np.ndarray, uncertain: np.ndarray | None) -> dict:
    """top-1/top-3/macro-F1 and, given the uncertain flags, accepted share and top-1 on accepted."""
    out = scores(proba, y)
    if uncertain is not None:
        kept = ~uncertain
        out |= {"accepted": float(kept.mean()),
                "top1_accepted": float((proba.argmax(1)[kept] == y[kept]).mean())}
    return out


def run_cohorts(inputs: dict, ship: dict, cohorts: list[list[tuple[str, np.ndarray]]],
                alphas: list[float], draws: int, boot: tuple[str, ...] | None = None,
                fast: bool = False) -> dict:
    """Scores of every model over a set of disjoint cohorts (each a list of (job, test positions)), with
    their α for the primary; intervals of each model (or those in `boot`) minus the encoder (`fast`: by
    `fast_paired_bootstrap`, the simulated cohorts' many intervals)."""
    y_all = ship["labels"]
    ys, flags, proba = [], {}, {}
    moved, tv_true, tv_prior = {}, {}, []
    k = len(ship["classes"])
    for members, alpha in zip(cohorts, alphas, strict=True):
        yc = np.concatenate([y_all[inputs[j]["test"][pos]] for j, pos in members])
        ys.append(yc)
        true_mix = np.bincount(yc, minlength=k) / len(yc)
        enc = np.concatenate([inputs[j]["cal"]["ts"][1][pos] for j, pos in members])
        proba.setdefault("encoder", []).append(enc)
        flags.setdefault("encoder", []).append(np.concatenate(
            [inputs[j]["rules"]["ts"].uncertain(inputs[j]["cal"]["ts"][1][pos].astype(np.float32),
                                                inputs[j]["features"][pos]) for j, pos in members]))
        base = np.mean(np.concatenate([np.broadcast_to(inputs[j]["priors"]["freq"], (len(pos), k))
                                       for j, pos in members]), 0)
        tv_prior.append(total_variation(base, true_mix))
        for m, (cal, _, damp) in MODELS.items():
            a = {"nested": alpha, "plain": 0.0, "off": float("inf")}[damp]
            post, q = adapt_cohort(inputs, members, m, a)
            proba.setdefault(m, []).append(post)
            start = 0
            fl = []
            for j, pos in members:
                part = post[start:start + len(pos)].astype(np.float32)
                fl.append(inputs[j]["rules"][cal].uncertain(part, inputs[j]["features"][pos]))
                start += len(pos)
            flags.setdefault(m, []).append(np.concatenate(fl))
            moved.setdefault(m, []).append(total_variation(q, base))
            tv_true.setdefault(m, []).append(total_variation(q, true_mix))
    y = np.concatenate(ys)
    models, ci = {}, {}
    pred = {m: np.concatenate(v).argmax(1) for m, v in proba.items()}
    for m, v in proba.items():
        models[m] = score_block(np.concatenate(v), y, np.concatenate(flags[m]))
        if m != "encoder":
            models[m] |= flips(pred[m], pred["encoder"], y) | {
                "q_moved_tv_mean": float(np.mean(moved[m])),
                "q_to_true_mix_tv_mean": float(np.mean(tv_true[m]))}
            if boot is None or m in boot:
                boot_fn = fast_paired_bootstrap if fast else paired_bootstrap
                ci[f"{m}_minus_encoder"] = boot_fn(pred[m], pred["encoder"], y, draws)
    if "bc" in pred and PRIMARY in pred:  # what EM adds to the calibration it runs on
        boot_fn = fast_paired_bootstrap if fast else paired_bootstrap
        ci[f"{PRIMARY}_minus_bc"] = boot_fn(pred[PRIMARY], pred["bc"], y, draws)
    models["encoder"]["prior_to_true_mix_tv_mean"] = float(np.mean(tv_prior))
    return {"n_genomes": int(len(y)), "cohorts": len(cohorts), "models": models, "paired_bootstrap_ci95": ci}


def fast_paired_bootstrap(a: np.ndarray, b: np.ndarray, labels: np.ndarray, draws: int = 1000,
                          seed: int = 0) -> dict[str, list[float]]:
    """`paired_bootstrap` with the same draws (same generator, same resampled rows) and its macro-F1 computed
    by counting, not sklearn (6 ms a call here: 240 intervals of 1,000 draws took most of an hour); equal to
    it to float rounding (checked by `check_fast_bootstrap` on every run)."""
    rng = np.random.default_rng(seed)
    n, k = len(labels), int(max(labels.max(), a.max(), b.max())) + 1
    idx = rng.integers(0, n, (draws, n))
    y = labels[idx]
    q = (0.025, 0.975)
    out = {"top1": np.quantile((a[idx] == y).mean(1) - (b[idx] == y).mean(1), q).tolist()}
    offset = (np.arange(draws) * k)[:, None]

    def macro_f1(pred: np.ndarray) -> np.ndarray:
        p = pred[idx]
        tp = np.bincount((offset + y)[p == y], minlength=draws * k).reshape(draws, k)
        n_true = np.bincount((offset + y).ravel(), minlength=draws * k).reshape(draws, k)
        n_pred = np.bincount((offset + p).ravel(), minlength=draws * k).reshape(draws, k)
        denom = n_true + n_pred
        f1 = np.divide(2 * tp, denom, out=np.zeros((draws, k)), where=denom > 0)
        present = n_true > 0
        return (f1 * present).sum(1) / present.sum(1)

    out["macro_f1"] = np.quantile(macro_f1(a) - macro_f1(b), q).tolist()
    return out


def check_fast_bootstrap(a: np.ndarray, b: np.ndarray, labels: np.ndarray, draws: int) -> float:
    """Largest difference between `fast_paired_bootstrap` and `paired_bootstrap` on one case (must be ~0)."""
    fast, slow = fast_paired_bootstrap(a, b, labels, draws), paired_bootstrap(a, b, labels, draws)
    return float(max(abs(x - y) for m in ("top1", "macro_f1") for x, y in zip(fast[m], slow[m], strict=True)))


def whole(inputs: dict, job: str) -> list[tuple[str, np.ndarray]]:
    """One job's test genomes as one cohort."""
    return [(job, np.arange(len(inputs[job]["test"])))]


def loso_partitions(jobs: list[str], rng: np.random.Generator) -> list[list[str]]:
    """A random partition of the LOSO splits into unions of 3-6 splits (a remainder of 1-2 joins the last
    union)."""
    order = list(rng.permutation(jobs))
    groups: list[list[str]] = []
    while order:
        size = int(rng.integers(3, 7))
        groups.append(order[:size])
        order = order[size:]
    if len(groups) > 1 and len(groups[-1]) < 3:
        last = groups.pop()
        groups[-1] += last
    return groups


def summarise(runs: list[dict]) -> dict:
    """Mean scores over partitions and each model's intervals (minus encoder) summarised."""
    out: dict = {"partitions": len(runs), "n_genomes": runs[0]["n_genomes"],
                 "cohorts_per_partition": [r["cohorts"] for r in runs]}
    for m in runs[0]["models"]:
        keys = [k for k, v in runs[0]["models"][m].items() if isinstance(v, float | int)]
        out.setdefault("models", {})[m] = {k: float(np.mean([r["models"][m][k] for r in runs])) for k in keys}
    for name in runs[0]["paired_bootstrap_ci95"]:
        block = {}
        for metric in ("top1", "macro_f1"):
            lo = np.array([r["paired_bootstrap_ci95"][name][metric][0] for r in runs])
            hi = np.array([r["paired_bootstrap_ci95"][name][metric][1] for r in runs])
            block[metric] = {"median_interval": [float(np.median(lo)), float(np.median(hi))],
                             "above_zero": int((lo > 0).sum()), "below_zero": int((hi < 0).sum())}
        out.setdefault("paired_bootstrap_ci95", {})[name] = block
    return out


def report(results: dict, ship: dict, seeds: list[int], draws: int, partitions: int, seed: int) -> dict:
    """Every family (LOSO, 12 projects, CV) and the simulated cohorts."""
    y = ship["labels"]
    jobs = [str(j) for j in ship["jobs"] if str(j) != "final"]
    t0 = time.perf_counter()
    inputs = {j: job_inputs(results, ship, j, seeds) for j in jobs}
    loso = [j for j in jobs if j.startswith("loso_")]
    losses = {j: alpha_losses(inputs[j], y) for j in loso}
    held = set(map(str, ship["held_out_projects"]))
    outside = [j for j in loso if j.removeprefix("loso_") not in held]
    alpha = {j: pick_alpha(losses, [k for k in loso if k != j]) for j in loso}
    alpha["transfer12"] = pick_alpha(losses, outside)
    for j in (j for j in jobs if j.startswith("cv")):
        alpha[j] = pick_alpha({j: alpha_losses(inputs[j], y, "val")}, [j])
    out: dict = {"seeds": seeds, "alphas_grid": list(ALPHAS), "primary": PRIMARY, "alpha_chosen": alpha,
                 "per_job": {j: {"n": len(inputs[j]["test"]), "views": list(inputs[j]["views"]),
                                 "temperature": inputs[j]["temperature"], "alpha": alpha[j],
                                 "bias_range": [float(inputs[j]["bias"].min()),
                                                float(inputs[j]["bias"].max())]}
                             for j in jobs}}
    for kind, prefix in KINDS.items():
        fam = [j for j in jobs if j.startswith(prefix)]
        out[kind] = run_cohorts(inputs, ship, [whole(inputs, j) for j in fam], [alpha[j] for j in fam], draws)
        enc_top1 = {j: float((inputs[j]["enc_test"].argmax(1) == y[inputs[j]["test"]]).mean()) for j in fam}
        out[kind]["encoder_top1_per_job"] = enc_top1
    twelve = out["transfer_12_projects"]
    t12 = inputs["transfer12"]
    pred_bc = em_adapt(t12["cal"]["bc"][1], t12["priors"]["freq"], alpha["transfer12"])[0].argmax(1)
    out["fast_bootstrap_max_abs_diff"] = check_fast_bootstrap(pred_bc, t12["enc_test"].argmax(1),
                                                              y[t12["test"]], draws)
    assert twelve["n_genomes"] == len(t12["test"])
    rng = np.random.default_rng(seed)
    mixed = []
    for _ in range(partitions):
        groups = loso_partitions(loso, rng)
        cohorts = [[m for j in g for m in whole(inputs, j)] for g in groups]
        alphas = [pick_alpha(losses, [k for k in loso if k not in g]) for g in groups]
        mixed.append(run_cohorts(inputs, ship, cohorts, alphas, draws, fast=True))
    out["simulated_loso_unions_3_6"] = summarise(mixed)
    n12 = len(inputs["transfer12"]["test"])
    for size in SMALL_SIZES:
        runs = []
        for _ in range(partitions):
            parts = np.array_split(rng.permutation(n12), n12 // size)
            runs.append(run_cohorts(inputs, ship, [[("transfer12", np.sort(p))] for p in parts],
                                    [alpha["transfer12"]] * len(parts), draws, fast=True))
        out[f"simulated_12_projects_size_{size}"] = summarise(runs)
    out["wall_s"] = round(time.perf_counter() - t0, 1)
    return out


def table(rep: dict) -> str:
    """Markdown rows: cohort set, model, top-1, top-3, macro-F1, accepted / top-1, flips, q moved."""
    names = {"encoder": "encoder (shipped, no adaptation)", "bc": "bias-corrected calibration, no EM",
             "em_freq": "EM, π = training frequencies",
             "em_uniform": "EM, π = uniform", "em_bc": "EM after bias-corrected calibration",
             "em_bc_damped": "**EM, bias-corrected, damped α nested (primary)**"}
    lines = ["| cohorts (genomes) | model | top-1 | top-3 | macro-F1 | accepted / top-1 on accepted "
             "| correct→wrong / wrong→correct | TV(q, π) / TV(q, true mix) |",
             "|:--|:--|--:|--:|--:|--:|--:|--:|"]
    for kind, fam in rep.items():
        if not isinstance(fam, dict) or "models" not in fam:
            continue
        for i, (m, s) in enumerate(fam["models"].items()):
            split = f"{kind} ({fam['n_genomes']:,})" if i == 0 else "same"
            fl = (f"{s['correct_to_wrong']:.0f} / {s['wrong_to_correct']:.0f}" if "correct_to_wrong" in s
                  else "")
            tv = (f"{s['q_moved_tv_mean']:.3f} / {s['q_to_true_mix_tv_mean']:.3f}" if "q_moved_tv_mean" in s
                  else f"0 / {s['prior_to_true_mix_tv_mean']:.3f}")
            lines.append(f"| {split} | {names.get(m, m)} | {s['top1']:.3f} | {s['top3']:.3f} "
                         f"| {s['macro_f1']:.3f} | {100 * s['accepted']:.1f} % / {s['top1_accepted']:.3f} "
                         f"| {fl} | {tv} |")
    return "\n".join(lines)


def fit_package(results: dict, ship: dict, seeds: list[int], pcawg: Path, out: Path,
                min_tumours: int) -> dict:
    """The packaged model's prior-adaptation record (nanog1.encoder.prior_shift): the bias fitted on the
    final job's validation genomes as `nanog1 predict` scores them (the package's own output, temperature
    included; its 0.90-accuracy threshold refitted there must equal calibration.json's), π = the final job's
    training mix, α = the primary's rule over all 31 LOSO splits (no genome of a future cohort)."""
    from pcawg_shipped import cohort

    from nanog1.encoder import pretrained
    from nanog1.encoder.abstention import choose_threshold
    from nanog1.encoder.calibration import load_calibration
    from nanog1.encoder.predictor import PredictOptions, predict
    from nanog1.encoder.prior_shift import file_sha256

    name = "pcawg-catalogue"
    folder = pretrained.resolve(name)
    y, roles = ship["labels"], ship["roles_final"]
    val, train = np.flatnonzero(roles == VAL), np.flatnonzero(roles == TRAIN)
    adata, arrays, _, _ = cohort(pcawg)
    if not np.array_equal(arrays.labels, y):
        raise SystemExit("the PCAWG cohort's labels differ from ship.npz's (another export)")
    scored = predict(adata[val].copy(), name, PredictOptions(neighbours=0, exposures=False, assay="genome"),
                     copy=True)
    classes = list(map(str, ship["classes"]))
    proba = scored.obsm["proba_type"][classes].to_numpy(dtype=np.float64)
    threshold = choose_threshold(proba.astype(np.float32), y[val], 0.9)
    shipped = float(load_calibration(folder)["abstention"]["confidence_threshold"])
    if abs(threshold - shipped) > 1e-5:
        raise SystemExit(f"validation output differs from the package's: threshold {threshold} != {shipped}")
    loso = [str(j) for j in ship["jobs"] if str(j).startswith("loso_")]
    losses = {j: alpha_losses(job_inputs(results, ship, j, seeds), y) for j in loso}
    freq = np.bincount(y[train], minlength=len(classes)).astype(np.float64)
    record = {
        "model_sha256": file_sha256(folder / "model.pt"), "classes": classes,
        "bias": fit_bias(proba, y[val]).round(6).tolist(),
        "training_prior": (freq / freq.sum()).round(6).tolist(),
        "alpha": pick_alpha(losses, loso), "min_tumours": min_tumours,
        "fitted_on": f"bias: the final model's {len(val)} PCAWG validation genomes (after its "
                     f"temperature); training mix: its {len(train)} training genomes; alpha: lowest pooled "
                     "log-loss over the 31 leave-one-study-out splits' test genomes, each adapted as one "
                     "cohort "
                     "(benchmarks/pcawg_label_shift.py --fit-package)",
        "validation_threshold_check": [threshold, shipped],
    }
    store_record(out, record)
    # in-sample control through the product path: the validation genomes (the training mix) as one batch
    adapted = predict(adata[val].copy(), name, PredictOptions(neighbours=0, exposures=False, assay="genome",
                                                            adapt_priors=True), copy=True)
    mix = adapted.uns["nanog1_predict"]["prior_adaptation"]["estimated_type_mix"]
    q = np.array([mix[c] for c in classes])
    after = adapted.obsm["proba_type"][classes].to_numpy().argmax(1)
    record["validation_control_in_sample"] = {
        "top1": [float((proba.argmax(1) == y[val]).mean()), float((after == y[val]).mean())],
        "tv_estimated_mix_to_training_mix": total_variation(q, freq / freq.sum())}
    store_record(out, record)
    return record


def store_record(calibration: Path, record: dict) -> None:
    """Write `record` as `prior_adaptation` into a model's calibration.json (the rest kept as it is),
    through a temporary file renamed over it."""
    doc = json.loads(calibration.read_text())
    doc["prior_adaptation"] = record
    tmp = calibration.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=1) + "\n")
    tmp.replace(calibration)


def main() -> None:
    from pcawg_ship_report import merged_runs

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--npz", type=Path, required=True, help="ship.npz (pcawg_shipped.py export-npz)")
    ap.add_argument("--runs", type=Path, nargs="+", required=True,
                    help="pcawg_ship_jobs.py output folders (encoder seeds; the first wins)")
    ap.add_argument("--seeds", type=int, default=5, help="members of the encoder ensemble (shipped: 5)")
    ap.add_argument("--draws", type=int, default=1000, help="paired bootstrap draws")
    ap.add_argument("--partitions", type=int, default=20, help="random partitions per simulated cohort set")
    ap.add_argument("--seed", type=int, default=0, help="seed of the simulated partitions")
    ap.add_argument("--out", type=Path, default=None, help="full report as JSON")
    ap.add_argument("--fit-package", type=Path, default=None, metavar="CALIBRATION_JSON",
                    help="instead of the report: write pcawg-catalogue's prior-adaptation record here "
                    "as `prior_adaptation` (nanog1/encoder/pretrained/pcawg-catalogue/calibration.json)")
    ap.add_argument("--pcawg", type=Path, default=None, help="PCAWG7 folder (pcawg_shipped.py's default)")
    ap.add_argument("--min-tumours", type=int, default=10, help="--fit-package: smallest batch adapted")
    args = ap.parse_args()
    if not args.npz.exists():
        raise SystemExit(f"{args.npz}: no such file")
    ship = dict(np.load(args.npz, allow_pickle=False))
    if args.fit_package:
        from pcawg_shipped import PCAWG

        record = fit_package(merged_runs(args.runs), ship, list(range(args.seeds)), args.pcawg or PCAWG,
                             args.fit_package, args.min_tumours)
        print(json.dumps({k: v for k, v in record.items() if k not in ("bias", "training_prior", "classes")}))
        return
    rep = report(merged_runs(args.runs), ship, list(range(args.seeds)), args.draws, args.partitions,
                 args.seed)
    if args.out:
        args.out.write_text(json.dumps(rep, indent=1, default=float))
    print(table(rep))
    print(json.dumps({k: v["paired_bootstrap_ci95"] for k, v in rep.items()
                      if isinstance(v, dict) and "paired_bootstrap_ci95" in v}, indent=1))
    print(json.dumps({"alpha_chosen": rep["alpha_chosen"], "wall_s": rep["wall_s"],
                      "fast_bootstrap_max_abs_diff": rep["fast_bootstrap_max_abs_diff"]}))


if __name__ == "__main__":
    main()
