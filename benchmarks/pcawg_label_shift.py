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

Thresholds for adapted output (`adapted_abstention`, added 2026-12-07 to answer: does a threshold fitted FOR
the adapted posteriors reach 0.90 accuracy on >= 70 % of tumours on transfer? Rule written before any of its
results was read). Model: the primary (`em_bc_damped`) only, each cohort adapted with its nested α as above.
Every threshold is `choose_threshold(..., 0.9)` (the lowest confidence at which the pooled genomes it is
fitted on reach 0.90 top-1); a tumour is accepted when its top confidence is >= the threshold and the shipped
OOD rule (its job's training genomes) does not flag it. Arms, per tumour (each scored by its own job's model):

* unadapted, in-study: the shipped rule (T-scaled encoder, threshold from the job's validation output);
* unadapted, new-study: `pcawg_ship_report.transfer_threshold` on T-scaled outputs, nested: a LOSO split's
  from the other 30 splits' test genomes, the 12-project job's (and its cohorts of 10/25/50) from the 19 LOSO
  splits outside its projects, a union of LOSO splits' from the splits outside the union;
* adapted, validation threshold before adaptation (the rows above: bc's threshold), for reference;
* (a) adapted, in-study: the job's own VALIDATION genomes (bc posteriors) adapted as one batch with the α
  its test cohort gets (a LOSO split: its nested α; the 12-project job and its small cohorts: theirs; a tumour
  in a union: its own split's α), threshold fitted on them; applied to the adapted test posteriors;
* (b) adapted, new-study: nested as the unadapted new-study arm, but on ADAPTED test outputs of the fitting
  splits, each split adapted as its own cohort (single-study batches) with the α of the cohort being scored
  (chosen without that cohort's labels), so no label of the scored cohort enters its threshold.
* (c) adapted, new-study, fitted on mixed batches (added 2026-12-08, rule written before any of its results
  was read; (b) was measured to fall below 0.90 on mixed cohorts, since its fitting batches are single
  studies and EM sharpens those most): nested exactly as (b), same fitting splits S and α, but the pool it is
  fitted on is S's test genomes grouped into cohorts of every kind a user may send: each split alone (=
  (b)'s pool), MIX_UNION_PARTITIONS random partitions of S into unions of 3-6 splits, and S's genomes pooled,
  shuffled and cut into cohorts of each size of SMALL_SIZES (one partition per size); each cohort adapted on
  its own with the scored cohort's α, all pooled (each genome of S then counts 1 + MIX_UNION_PARTITIONS + 3
  times). Its random draws come from a generator seeded by S's names: the same S, the same threshold.
  Shipping rule, fixed before the run: the package's new-study operating point for adapted output is (c)
  fitted on all 31 LOSO splits with the record's α, whatever (c)'s nested numbers turn out to be; they are
  stated beside it.

Reported per cohort family (LOSO, unions of 3–6 LOSO splits, the 12-project hold-out as one cohort and cut
into cohorts of 10/25/50): accepted share and top-1 on the accepted per arm, and whether the target (top-1 on
accepted >= 0.90 and accepted >= 0.70) is met. Intervals: bootstrap over tumours (`draws` resamples, seed 0;
the thresholds held fixed, so the threshold's own fitting noise is not in them) of each arm's accepted share
and top-1 on accepted, and paired (same resampled tumours) of adapted minus unadapted for the in-study and the
new-study arm; plus the share of draws meeting the target. Simulated families: one interval per partition,
summarised as the median interval and the partitions meeting the target. LOSO cohorts are single studies, as
are the batches the new-study threshold is fitted on (optimistic for EM); the 12-project cohort is the
realistic mixed case. `--abstention-only` runs only this (and the α choices it needs), not the rows above.

    OMP_NUM_THREADS=1 PYTHONPATH=. nice -n 19 python benchmarks/pcawg_label_shift.py \\
        --npz results/dev/ship.npz --runs results/patterns results/patterns_s12 results/patterns_s34 \\
        --out results/label_shift.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import zlib
from pathlib import Path

import numpy as np

from nanog1.encoder.prior_shift import em_adapt, with_bias  # the product's EM and bias correction

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
#: Random partitions of the fitting splits into unions of 3-6 in arm (c)'s pool (`mixed_threshold`).
MIX_UNION_PARTITIONS = 2
_TINY = 1e-12


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


#: Issue 31's transfer target for abstention: top-1 on the accepted >= 0.90 on >= 70 % of tumours.
TARGET_ACCURACY, TARGET_COVERAGE = 0.9, 0.7
#: Abstention arms of `adapted_abstention` (unadapted: the T-scaled encoder; the others: the primary).
ARMS = ("unadapted_in_study", "unadapted_new_study", "adapted_threshold_before_adaptation",
        "adapted_in_study", "adapted_new_study", "adapted_new_study_mixed")


def simulated_partitions(loso: list[str], n12: int, partitions: int, seed: int
                         ) -> tuple[list[list[list[str]]], dict[int, list[list[np.ndarray]]]]:
    """The simulated cohorts of `report`, drawn in its order from one generator: per partition the unions of
    LOSO splits, then per size of SMALL_SIZES per partition the 12-project positions of each cohort."""
    rng = np.random.default_rng(seed)
    unions = [loso_partitions(loso, rng) for _ in range(partitions)]
    small = {size: [np.array_split(rng.permutation(n12), n12 // size) for _ in range(partitions)]
             for size in SMALL_SIZES}
    return unions, small


class AdaptedOutputs:
    """Primary-adapted test posteriors of each job's test genomes as one cohort, cached per (job, α)."""

    def __init__(self, inputs: dict) -> None:
        self.inputs, self._cache = inputs, {}

    def __call__(self, job: str, alpha: float) -> np.ndarray:
        """The job's test genomes adapted as one cohort with `alpha` (float32, as the rules see them)."""
        key = (job, float(alpha))
        if key not in self._cache:
            self._cache[key] = adapt_cohort(self.inputs, whole(self.inputs, job), PRIMARY, alpha)[0].astype(
                np.float32)
        return self._cache[key]


def new_study_threshold(inputs: dict, y: np.ndarray, jobs: list[str], adapted: AdaptedOutputs | None,
                        alpha: float) -> float:
    """`transfer_threshold` on `jobs`' test genomes pooled: T-scaled (adapted None) or each job's test genomes
    adapted as its own cohort with `alpha` (the α of the cohort the threshold will score)."""
    from nanog1.encoder.abstention import choose_threshold

    proba = [adapted(j, alpha) if adapted else inputs[j]["cal"]["ts"][1].astype(np.float32) for j in jobs]
    labels = [y[inputs[j]["test"]] for j in jobs]
    return choose_threshold(np.concatenate(proba), np.concatenate(labels), TARGET_ACCURACY)


def mixed_cohorts(inputs: dict, jobs: list[str], rng: np.random.Generator
                  ) -> list[list[tuple[str, np.ndarray]]]:
    """Arm (c)'s fitting cohorts from `jobs`' test genomes: each split alone, MIX_UNION_PARTITIONS partitions
    into unions of 3-6 splits, and the genomes pooled, shuffled and cut into cohorts of each SMALL_SIZES."""
    cohorts = [whole(inputs, j) for j in jobs]
    for _ in range(MIX_UNION_PARTITIONS):
        cohorts += [[m for j in g for m in whole(inputs, j)] for g in loso_partitions(jobs, rng)]
    owner = np.concatenate([np.full(len(inputs[j]["test"]), i) for i, j in enumerate(jobs)])
    position = np.concatenate([np.arange(len(inputs[j]["test"])) for j in jobs])
    for size in SMALL_SIZES:
        for cut in np.array_split(rng.permutation(len(owner)), max(1, len(owner) // size)):
            who = owner[cut]
            cohorts.append([(jobs[i], np.sort(position[cut[who == i]])) for i in np.unique(who)])
    return cohorts


class MixedThreshold:
    """Arm (c): the 0.90 threshold on adapted outputs of `mixed_cohorts` of the fitting splits, cached per
    (splits, α); the generator is seeded by the splits' names (the same splits, the same threshold)."""

    def __init__(self, inputs: dict, y: np.ndarray) -> None:
        self.inputs, self.y, self._cache = inputs, y, {}

    def __call__(self, jobs: list[str], alpha: float) -> float:
        from nanog1.encoder.abstention import choose_threshold

        key = (tuple(sorted(jobs)), float(alpha))
        if key not in self._cache:
            rng = np.random.default_rng(zlib.crc32(",".join(key[0]).encode()))
            proba, labels = [], []
            for members in mixed_cohorts(self.inputs, list(key[0]), rng):
                proba.append(adapt_cohort(self.inputs, members, PRIMARY, alpha)[0].astype(np.float32))
                labels.append(np.concatenate([self.y[self.inputs[j]["test"][pos]] for j, pos in members]))
            pooled = np.concatenate(proba), np.concatenate(labels)
            self._cache[key] = choose_threshold(*pooled, TARGET_ACCURACY)
        return self._cache[key]


def adapted_validation_threshold(inp: dict, y: np.ndarray, alpha: float) -> float:
    """(a): the 0.90-accuracy threshold on the job's validation genomes (bc posteriors) adapted as one
    batch."""
    from nanog1.encoder.abstention import choose_threshold

    post = em_adapt(inp["cal"]["bc"][0], inp["priors"]["freq"], alpha)[0].astype(np.float32)
    return choose_threshold(post, y[inp["val"]], TARGET_ACCURACY)


def ood_flags(inp: dict) -> np.ndarray:
    """The shipped OOD part of the rule on the job's test genomes (independent of the probabilities; cached
    in `inp`, as every simulated cohort asks again)."""
    from nanog1.encoder.abstention import AbstentionRule

    if "ood_flags" not in inp:
        inp["ood_flags"] = AbstentionRule(0.0, TARGET_ACCURACY, inp["rules"]["ts"].ood).uncertain(
            inp["cal"]["ts"][1].astype(np.float32), inp["features"])
    return inp["ood_flags"]


def per_member_rule(inputs: dict, job_of: np.ndarray, cal: str) -> np.ndarray:
    """Each tumour's job's validation threshold of calibration `cal` (the rules of `job_inputs`)."""
    return np.array([inputs[j]["rules"][cal].confidence_threshold for j in job_of])


def cohort_arms(inputs: dict, y: np.ndarray, members: list[tuple[str, np.ndarray]], alpha: float,
                thresholds: dict[str, dict[str, float]], adapted: AdaptedOutputs | None = None
                ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(correct, accepted) per arm for one cohort: `members` (job, test positions) adapted together with
    `alpha`; `thresholds[arm][job]` each member's threshold for the threshold arms. A cohort that is one job's
    whole test set reuses `adapted`'s cached posteriors."""
    if adapted is not None and len(members) == 1 and len(members[0][1]) == len(inputs[members[0][0]]["test"]):
        post = adapted(members[0][0], alpha)
    else:
        post = adapt_cohort(inputs, members, PRIMARY, alpha)[0].astype(np.float32)
    enc = np.concatenate([inputs[j]["cal"]["ts"][1][pos] for j, pos in members]).astype(np.float32)
    labels = np.concatenate([y[inputs[j]["test"][pos]] for j, pos in members])
    ood = np.concatenate([ood_flags(inputs[j])[pos] for j, pos in members])
    job_of = np.concatenate([np.full(len(pos), j) for j, pos in members])

    def per_member(arm: str) -> np.ndarray:
        return np.array([thresholds[arm][j] for j in job_of])

    # the shipped rule (`AbstentionRule.uncertain`): below its threshold or out of distribution
    shipped = (enc.max(1) >= per_member_rule(inputs, job_of, "ts")) & ~ood
    before = (post.max(1) >= per_member_rule(inputs, job_of, "bc")) & ~ood
    hit_enc, hit_post = enc.argmax(1) == labels, post.argmax(1) == labels
    correct = {"unadapted_in_study": hit_enc, "unadapted_new_study": hit_enc,
               "adapted_threshold_before_adaptation": hit_post, "adapted_in_study": hit_post,
               "adapted_new_study": hit_post, "adapted_new_study_mixed": hit_post}
    kept = {"unadapted_in_study": shipped,
            "unadapted_new_study": (enc.max(1) >= per_member("unadapted_new_study")) & ~ood,
            "adapted_threshold_before_adaptation": before,
            "adapted_in_study": (post.max(1) >= per_member("adapted_in_study")) & ~ood,
            "adapted_new_study": (post.max(1) >= per_member("adapted_new_study")) & ~ood,
            "adapted_new_study_mixed": (post.max(1) >= per_member("adapted_new_study_mixed")) & ~ood}
    return correct, kept


def selective_scores(correct: dict[str, np.ndarray], kept: dict[str, np.ndarray], draws: int,
                     seed: int = 0) -> dict:
    """Accepted share and top-1 on the accepted per arm, with bootstrap 95 % intervals over tumours (the
    thresholds fixed), the share of draws meeting the target, and paired intervals of adapted minus
    unadapted (in-study and new-study arms; arm (c) against the unadapted new-study arm and against (b))."""
    n = len(next(iter(correct.values())))
    idx = np.random.default_rng(seed).integers(0, n, (draws, n))
    q = (0.025, 0.975)
    out: dict = {"n": int(n), "arms": {}, "paired_ci95": {}}
    boot = {}
    for arm in correct:
        c, k = correct[arm], kept[arm]
        kb, cb = k[idx], (c & k)[idx]
        cov = kb.mean(1)
        acc = np.divide(cb.sum(1), kb.sum(1), out=np.full(draws, np.nan), where=kb.sum(1) > 0)
        boot[arm] = (cov, acc)
        point_cov = float(k.mean())
        point_acc = float(c[k].mean()) if k.any() else float("nan")
        out["arms"][arm] = {
            "accepted": point_cov, "top1_accepted": point_acc,
            "target_met": bool(point_acc >= TARGET_ACCURACY and point_cov >= TARGET_COVERAGE),
            "accepted_ci95": np.quantile(cov, q).tolist(),
            "top1_accepted_ci95": np.nanquantile(acc, q).tolist(),
            "draws_meeting_target": float(((acc >= TARGET_ACCURACY) & (cov >= TARGET_COVERAGE)).mean())}
    pairs = {f"adapted_minus_unadapted_{kind}": (f"adapted_{kind}", f"unadapted_{kind}")
             for kind in ("in_study", "new_study")}
    pairs["adapted_mixed_minus_unadapted_new_study"] = ("adapted_new_study_mixed", "unadapted_new_study")
    pairs["adapted_mixed_minus_adapted_new_study"] = ("adapted_new_study_mixed", "adapted_new_study")
    for name, (arm, base) in pairs.items():
        if arm in boot and base in boot:
            (ca, aa), (cu, au) = boot[arm], boot[base]
            out["paired_ci95"][name] = {"accepted": np.quantile(ca - cu, q).tolist(),
                                        "top1_accepted": np.nanquantile(aa - au, q).tolist()}
    return out


def pooled_arms(parts: list[tuple[dict, dict]], draws: int) -> dict:
    """`selective_scores` of several cohorts' (correct, accepted) pooled."""
    correct = {a: np.concatenate([c[a] for c, _ in parts]) for a in ARMS}
    kept = {a: np.concatenate([k[a] for _, k in parts]) for a in ARMS}
    return selective_scores(correct, kept, draws)


def summarise_arms(runs: list[dict]) -> dict:
    """Simulated partitions: mean point estimates, median intervals, partitions whose point meets the
    target."""
    out: dict = {"partitions": len(runs), "n": runs[0]["n"], "arms": {}, "paired_ci95": {}}
    for arm in runs[0]["arms"]:
        rows = [r["arms"][arm] for r in runs]
        out["arms"][arm] = {
            "accepted": float(np.mean([r["accepted"] for r in rows])),
            "top1_accepted": float(np.mean([r["top1_accepted"] for r in rows])),
            "partitions_meeting_target": int(sum(r["target_met"] for r in rows)),
            "accepted_ci95_median": np.median([r["accepted_ci95"] for r in rows], 0).tolist(),
            "top1_accepted_ci95_median": np.median([r["top1_accepted_ci95"] for r in rows], 0).tolist(),
            "draws_meeting_target_mean": float(np.mean([r["draws_meeting_target"] for r in rows]))}
    for name in runs[0]["paired_ci95"]:
        out["paired_ci95"][name] = {
            m: np.median([r["paired_ci95"][name][m] for r in runs], 0).tolist() for m in ("accepted",
                                                                                         "top1_accepted")}
    return out


def adapted_abstention(inputs: dict, ship: dict, alpha: dict[str, float], losses: dict[str, list[float]],
                       unions: list[list[list[str]]], small: dict[int, list[list[np.ndarray]]],
                       draws: int) -> dict:
    """Abstention arms of the module docstring ("Thresholds for adapted output") on LOSO, the unions of
    LOSO splits, the 12-project hold-out and its small cohorts."""
    y = ship["labels"]
    loso = sorted(j for j in inputs if j.startswith("loso_"))
    held = set(map(str, ship["held_out_projects"]))
    outside = [j for j in loso if j.removeprefix("loso_") not in held]
    adapted, mixed = AdaptedOutputs(inputs), MixedThreshold(inputs, y)
    jobs = loso + ["transfer12"]
    in_study = {j: adapted_validation_threshold(inputs[j], y, alpha[j]) for j in jobs}
    new_study = {"unadapted_new_study": {}, "adapted_new_study": {}, "adapted_new_study_mixed": {}}
    for j in loso:
        others = [k for k in loso if k != j]
        new_study["unadapted_new_study"][j] = new_study_threshold(inputs, y, others, None, alpha[j])
        new_study["adapted_new_study"][j] = new_study_threshold(inputs, y, others, adapted, alpha[j])
        new_study["adapted_new_study_mixed"][j] = mixed(others, alpha[j])
    for arm, ad in (("unadapted_new_study", None), ("adapted_new_study", adapted)):
        new_study[arm]["transfer12"] = new_study_threshold(inputs, y, outside, ad, alpha["transfer12"])
    new_study["adapted_new_study_mixed"]["transfer12"] = mixed(outside, alpha["transfer12"])
    thresholds = {"adapted_in_study": in_study, **new_study}
    out: dict = {"thresholds": {arm: {j: float(t) for j, t in v.items()} for arm, v in thresholds.items()}}
    parts = [cohort_arms(inputs, y, whole(inputs, j), alpha[j], thresholds, adapted) for j in loso]
    out["leave_one_study_out"] = pooled_arms(parts, draws)
    t12 = cohort_arms(inputs, y, whole(inputs, "transfer12"), alpha["transfer12"], thresholds, adapted)
    out["transfer_12_projects"] = pooled_arms([t12], draws)
    runs, union_thresholds = [], []
    for groups in unions:
        parts = []
        for g in groups:
            rest = [k for k in loso if k not in g]
            a = pick_alpha(losses, rest)
            th = {arm: dict(v) for arm, v in thresholds.items()}
            for arm, ad in (("unadapted_new_study", None), ("adapted_new_study", adapted)):
                t = new_study_threshold(inputs, y, rest, ad, a)
                th[arm] |= {j: t for j in g}
                union_thresholds.append((arm, t))
            t = mixed(rest, a)
            th["adapted_new_study_mixed"] |= {j: t for j in g}
            union_thresholds.append(("adapted_new_study_mixed", t))
            parts.append(cohort_arms(inputs, y, [m for j in g for m in whole(inputs, j)], a, th))
        runs.append(pooled_arms(parts, draws))
    out["simulated_loso_unions_3_6"] = summarise_arms(runs)
    out["union_new_study_threshold_range"] = {
        arm: [f(t for a, t in union_thresholds if a == arm) for f in (min, max)] for arm in new_study}
    for size, partition in small.items():
        runs = [pooled_arms([cohort_arms(inputs, y, [("transfer12", np.sort(p))], alpha["transfer12"],
                                         thresholds) for p in cuts], draws) for cuts in partition]
        out[f"simulated_12_projects_size_{size}"] = summarise_arms(runs)
    return out


def arms_table(rep: dict) -> str:
    """Markdown rows of `adapted_abstention`: accepted share / top-1 on the accepted per arm and family."""
    names = {"unadapted_in_study": "unadapted, in-study (shipped)",
             "unadapted_new_study": "unadapted, new-study (nested)",
             "adapted_threshold_before_adaptation": "adapted, threshold fitted before adaptation",
             "adapted_in_study": "**(a) adapted, in-study threshold for adapted output**",
             "adapted_new_study": "**(b) adapted, new-study threshold for adapted output (nested)**",
             "adapted_new_study_mixed": "**(c) adapted, new-study threshold fitted on mixed batches "
                                        "(nested)**"}
    lines = ["| cohorts (tumours) | arm | accepted (95 % CI) | top-1 on accepted (95 % CI) | target met |",
             "|:--|:--|--:|--:|:--|"]
    for fam, block in rep.items():
        if not isinstance(block, dict) or "arms" not in block:
            continue
        for i, (arm, s) in enumerate(block["arms"].items()):
            head = f"{fam} ({block['n']:,})" if i == 0 else "same"
            ca = s.get("accepted_ci95", s.get("accepted_ci95_median"))
            ct = s.get("top1_accepted_ci95", s.get("top1_accepted_ci95_median"))
            met = (("yes" if s["target_met"] else "no") if "target_met" in s
                   else f"{s['partitions_meeting_target']} of {block['partitions']} partitions")
            lines.append(f"| {head} | {names[arm]} | {100 * s['accepted']:.1f} % ({100 * ca[0]:.1f}–"
                         f"{100 * ca[1]:.1f}) | {s['top1_accepted']:.3f} ({ct[0]:.3f}–{ct[1]:.3f}) | {met} |")
    return "\n".join(lines)


def report(results: dict, ship: dict, seeds: list[int], draws: int, partitions: int, seed: int,
           abstention_only: bool = False, inputs: dict | None = None) -> dict:
    """Every family (LOSO, 12 projects, CV), the simulated cohorts and the thresholds for adapted output
    (`abstention_only`: the LOSO and 12-project jobs, their α and `adapted_abstention` alone). `inputs`:
    `job_inputs` of those jobs already built (fit_package's), else built here."""
    y = ship["labels"]
    jobs = [str(j) for j in ship["jobs"] if str(j) != "final"]
    if abstention_only:
        jobs = [j for j in jobs if not j.startswith("cv")]
    t0 = time.perf_counter()
    inputs = inputs or {j: job_inputs(results, ship, j, seeds) for j in jobs}
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
    n12 = len(inputs["transfer12"]["test"])
    unions, small = simulated_partitions(loso, n12, partitions, seed)
    if not abstention_only:
        out |= families(inputs, ship, jobs, alpha, losses, unions, small, draws)
    t1 = time.perf_counter()
    out["adapted_abstention"] = adapted_abstention(inputs, ship, alpha, losses, unions, small, draws)
    out["adapted_abstention_wall_s"] = round(time.perf_counter() - t1, 1)
    out["wall_s"] = round(time.perf_counter() - t0, 1)
    return out


def families(inputs: dict, ship: dict, jobs: list[str], alpha: dict[str, float],
             losses: dict[str, list[float]], unions: list[list[list[str]]],
             small: dict[int, list[list[np.ndarray]]], draws: int) -> dict:
    """The model rows: each real family (LOSO, 12 projects, CV) and the simulated cohorts."""
    y = ship["labels"]
    loso = [j for j in jobs if j.startswith("loso_")]
    out: dict = {}
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
    mixed = []
    for groups in unions:
        cohorts = [[m for j in g for m in whole(inputs, j)] for g in groups]
        alphas = [pick_alpha(losses, [k for k in loso if k not in g]) for g in groups]
        mixed.append(run_cohorts(inputs, ship, cohorts, alphas, draws, fast=True))
    out["simulated_loso_unions_3_6"] = summarise(mixed)
    for size, partition in small.items():
        runs = [run_cohorts(inputs, ship, [[("transfer12", np.sort(p))] for p in parts],
                            [alpha["transfer12"]] * len(parts), draws, fast=True) for parts in partition]
        out[f"simulated_12_projects_size_{size}"] = summarise(runs)
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
                min_tumours: int, partitions: int = 20, seed: int = 0) -> dict:
    """The packaged model's prior-adaptation record (nanog1.encoder.prior_shift): the bias fitted on the
    final job's validation genomes as `nanog1 predict` scores them (the package's own output, temperature
    included; its 0.90-accuracy threshold refitted there must equal calibration.json's), π = the final job's
    training mix, α = the primary's rule over all 31 LOSO splits (no genome of a future cohort), and the
    new-study operating point for adapted output: arm (c)'s threshold fitted on all 31 LOSO splits with that
    α, with what (c) gave nested (`adapted_point_record`)."""
    from pcawg_shipped import cohort

    from nanog1.encoder import pretrained
    from nanog1.encoder.abstention import choose_threshold
    from nanog1.encoder.calibration import load_calibration
    from nanog1.encoder.predictor import PredictOptions, predict
    from nanog1.io import file_sha256

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
    inputs = {j: job_inputs(results, ship, j, seeds) for j in [*loso, "transfer12"]}
    losses = {j: alpha_losses(inputs[j], y) for j in loso}
    freq = np.bincount(y[train], minlength=len(classes)).astype(np.float64)
    alpha = pick_alpha(losses, loso)
    nested = report(results, ship, seeds, 200, partitions, seed, True, inputs)["adapted_abstention"]
    record = {
        "model_sha256": file_sha256(folder / "model.pt"), "classes": classes,
        "bias": fit_bias(proba, y[val]).round(6).tolist(),
        "training_prior": (freq / freq.sum()).round(6).tolist(),
        "alpha": alpha, "min_tumours": min_tumours,
        "operating_points": {"new_study": adapted_point_record(MixedThreshold(inputs, y)(loso, alpha), nested,
                                                               sum(len(inputs[j]["test"]) for j in loso))},
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


#: `adapted_point_record`'s names of arm (c)'s cohort families, as calibration.json's operating points name
#: their transfer splits.
POINT_FAMILIES = {"leave_one_study_out": "leave_one_study_out_nested",
                  "transfer_12_projects": "transfer_12_projects",
                  "simulated_loso_unions_3_6": "unions_of_3_6_studies",
                  **{f"simulated_12_projects_size_{n}": f"12_projects_in_cohorts_of_{n}"
                     for n in SMALL_SIZES}}


def adapted_point_record(threshold: float, nested: dict, n_fit: int) -> dict:
    """The record's `operating_points.new_study` (nanog1.encoder.prior_shift.adapted_point): arm (c)'s
    threshold on all LOSO splits and, per cohort family, what (c) gave nested (`adapted_abstention`)."""
    transfer = {}
    for fam, name in POINT_FAMILIES.items():
        arm = nested[fam]["arms"]["adapted_new_study_mixed"]
        transfer[name] = {"coverage": round(arm["accepted"], 4),
                          "top1_accepted": round(arm["top1_accepted"], 4), "n": int(nested[fam]["n"])}
    return {"threshold": float(threshold),
            "fitted_on": f"the adapted output of the {n_fit} test genomes of every leave-one-study-out "
                         "split, grouped into batches of every kind (each study alone, unions of 3-6 "
                         "studies, mixed cohorts of 10/25/50), each batch adapted on its own: the lowest "
                         "confidence reaching 0.90 accuracy there (benchmarks/pcawg_label_shift.py arm (c))",
            "transfer": transfer}


def store_record(calibration: Path, record: dict) -> None:
    """Write `record` as `prior_adaptation` into a model's calibration.json (the rest kept as it is),
    atomically (nanog1.io.atomic_write_text)."""
    from nanog1.io import atomic_write_text

    doc = json.loads(calibration.read_text())
    doc["prior_adaptation"] = record
    atomic_write_text(calibration, json.dumps(doc, indent=1) + "\n")


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
    ap.add_argument("--abstention-only", action="store_true",
                    help="only the thresholds for adapted output (`adapted_abstention`) on LOSO, the unions "
                    "and the 12-project cohorts, without the model rows and their bootstraps")
    args = ap.parse_args()
    if not args.npz.exists():
        raise SystemExit(f"{args.npz}: no such file")
    ship = dict(np.load(args.npz, allow_pickle=False))
    if args.fit_package:
        from pcawg_shipped import PCAWG

        record = fit_package(merged_runs(args.runs), ship, list(range(args.seeds)), args.pcawg or PCAWG,
                             args.fit_package, args.min_tumours, args.partitions, args.seed)
        print(json.dumps({k: v for k, v in record.items() if k not in ("bias", "training_prior", "classes")}))
        return
    rep = report(merged_runs(args.runs), ship, list(range(args.seeds)), args.draws, args.partitions,
                 args.seed, args.abstention_only)
    if args.out:
        args.out.write_text(json.dumps(rep, indent=1, default=float))
    if not args.abstention_only:
        print(table(rep))
        print(json.dumps({k: v["paired_bootstrap_ci95"] for k, v in rep.items()
                          if isinstance(v, dict) and "paired_bootstrap_ci95" in v}, indent=1))
    print(arms_table(rep["adapted_abstention"]))
    print(json.dumps({k: v["paired_ci95"] for k, v in rep["adapted_abstention"].items()
                      if isinstance(v, dict) and "paired_ci95" in v}, indent=1))
    print(json.dumps({"alpha_chosen": rep["alpha_chosen"], "wall_s": rep["wall_s"],
                      "adapted_abstention_wall_s": rep["adapted_abstention_wall_s"],
                      "fast_bootstrap_max_abs_diff": rep.get("fast_bootstrap_max_abs_diff")}))

if __name__ == "__main__":
    main()
