"""Prior (label-shift) adaptation of a batch's cancer-type probabilities (`nanog1 predict --adapt-priors`).

A new cohort often has another type mix than the model's training data. Saerens, Latinne & Decaestecker
(2002, "Adjusting the outputs of a classifier to new a priori probabilities") estimate that mix from the
model's own posteriors, with no label: iterate  post_i ∝ p_i ⊙ q / π  (renormalised per tumour),
q = mean_i post_i,  from q = π, the prior the posteriors were calibrated under. Here, as measured in
BENCHMARKS.md ("EM prior adaptation on transfer", benchmarks/pcawg_label_shift.py, its `em_bc_damped`):

* the temperature-scaled posteriors are first bias-corrected, softmax(log p + b), b one value per type
  fitted on the model's validation genomes: the shipped encoder was trained with inverse-frequency class
  weights, so its posteriors carry a near-uniform prior rather than its training mix π (plain EM from π
  on them cost 21 points of CV top-1 in the benchmark);
* q is damped by a Dirichlet pseudo-count α toward π, q = (Σ_i post_i + α π) / (n + α), so that a small
  batch moves little;
* a batch needs at least `min_tumours` tumours.

Abstention: adapted probabilities are sharper, so a threshold fitted before adaptation accepts more tumours
at lower accuracy. With `--operating-point new-study` the record's own new-study point is used
(`adapted_point`): a threshold fitted on adapted output of batches of every kind (single studies, unions of
studies, mixed cohorts of 10-50) from studies the models were not trained on; the in-study point is not
refitted (refitted on the validation genomes, which are the training mix, it changes nothing).

b, π, α, the minimum and that point are a model's prior-adaptation record, `prior_adaptation` in its
calibration.json (for the packaged pcawg-catalogue: benchmarks/pcawg_label_shift.py --fit-package writes it)
with the checksum of the model.pt it was fitted for: weights replaced under it refuse the record. A repackaged
model's calibration.json is written anew, without one. numpy only, imported on use: the command line's help
and the dashboard's Predict page quote ADAPT_PRIORS_HELP without loading it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from nanog1.errors import UserError
from nanog1.io import file_sha256

if TYPE_CHECKING:
    import numpy as np

_TINY = 1e-12

#: `nanog1 predict --adapt-priors`'s help, the Predict page's too (one wording for both)
ADAPT_PRIORS_HELP = (
    "batch mode, opt-in: estimate this batch's cancer-type mix from the model's own probabilities "
    "(EM prior adaptation, Saerens et al. 2002, after a per-type bias correction, damped toward the "
    "training mix) and adapt every tumour's probabilities to it. Needs a batch of >= 10 tumours and a "
    "model with a prior-adaptation record (pcawg-catalogue). pcawg-catalogue, top-1: a mixed 12-project "
    "hold-out 0.702 -> 0.749 (mostly the bias correction), one study's batch 0.691 -> 0.832 "
    "(BENCHMARKS.md); a batch is assumed to share one type mix. With --operating-point new-study the "
    "abstention threshold is one fitted for adapted output (about 0.90-0.94 accuracy on 60-81 % of tumours "
    "of studies left out); the in-study threshold is not refitted"
)


def em_adapt(proba: np.ndarray, prior: np.ndarray, alpha: float = 0.0, max_iter: int = 1000,
             tol: float = 1e-10) -> tuple[np.ndarray, np.ndarray, int]:
    """(adapted posteriors, estimated type mix q, iterations) of Saerens et al.'s EM over one batch.

    `proba`: calibrated posteriors (tumours x types); `prior`: the mix they were calibrated under (one row,
    or one per tumour); `alpha`: Dirichlet pseudo-count toward the mean prior (0: plain EM; inf: none)."""
    import numpy as np

    p = np.clip(np.asarray(proba, dtype=np.float64), _TINY, 1.0)
    prior = np.broadcast_to(np.clip(np.asarray(prior, dtype=np.float64), _TINY, 1.0), p.shape)
    base = prior.mean(0)
    base = base / base.sum()
    if not np.isfinite(alpha) or len(p) == 0:
        return p / p.sum(1, keepdims=True), base, 0
    logp, logprior = np.log(p), np.log(prior)
    q, post, it = base.copy(), p / p.sum(1, keepdims=True), 0
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


def with_bias(proba: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """softmax(log p + bias) per row (the bias-corrected calibration)."""
    import numpy as np

    z = np.log(np.clip(np.asarray(proba, dtype=np.float64), _TINY, 1.0)) + np.asarray(bias, dtype=np.float64)
    z -= z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def load_record(name: str, folder: Path, calibration: dict, classes: list[str]) -> dict:
    """The prior-adaptation record of a model (its calibration.json's `prior_adaptation`), checked against the
    model's classes. A model without one is a UserError that says so and which packaged models have one."""
    record = calibration.get("prior_adaptation")
    source = f"{Path(folder) / 'calibration.json'}"
    if record is None:
        raise UserError(f"--adapt-priors: model {name} has no prior-adaptation record (a per-type bias "
                        "and training mix fitted on its validation tumours, `prior_adaptation` in its "
                        f"calibration.json; packaged models with one: {', '.join(_packaged_with_record())})")
    weights = Path(folder) / "model.pt"
    if record.get("model_sha256") and weights.exists() and record["model_sha256"] != file_sha256(weights):
        raise UserError(f"--adapt-priors: {source}: its prior-adaptation record was fitted for another "
                        "model.pt (refit it: benchmarks/pcawg_label_shift.py --fit-package)")
    if list(record.get("classes", [])) != list(classes):
        raise UserError(f"--adapt-priors: {source}: its types differ from the model's ({len(classes)} types)")
    for key in ("bias", "training_prior"):
        if len(record.get(key, [])) != len(classes):
            raise UserError(f"--adapt-priors: {source}: '{key}' needs one value per type ({len(classes)})")
    return record


def _packaged_with_record() -> list[str]:
    """Names of the packaged models whose calibration.json holds a prior-adaptation record."""
    import json

    from nanog1.encoder import pretrained

    names = [n for n in pretrained.available()
             if "prior_adaptation" in json.loads((pretrained.ROOT / n / "calibration.json").read_text())]
    return names or ["none"]


def check_batch(n_tumours: int, record: dict) -> None:
    """A UserError for a batch smaller than the record's `min_tumours`: its mix would rest on too few."""
    need = int(record.get("min_tumours", 1))
    if n_tumours < need:
        raise UserError(f"--adapt-priors needs a batch of at least {need} tumours (got {n_tumours}): the "
                        "type mix is estimated from the batch itself; type small batches without it")


def adapt_batch(proba: np.ndarray, record: dict, classes: list[str]) -> tuple[np.ndarray, dict]:
    """(adapted probabilities, what was done) for one batch of temperature-scaled probabilities (a batch
    under the record's `min_tumours`: `check_batch`'s UserError)."""
    import numpy as np

    n = len(proba)
    check_batch(n, record)
    prior = np.asarray(record["training_prior"], dtype=np.float64)
    alpha = float(record.get("alpha", 0.0))
    corrected = with_bias(proba, np.asarray(record["bias"], dtype=np.float64))
    adapted, q, iterations = em_adapt(corrected, prior, alpha)
    changed = int((adapted.argmax(1) != np.asarray(proba).argmax(1)).sum())
    order = np.argsort(-q)
    done = {
        "method": "bias-corrected calibration, then EM prior adaptation (Saerens et al. 2002) with a "
                  f"Dirichlet pseudo-count of {alpha:g} tumours toward the training mix",
        "tumours": n,
        "alpha": alpha,
        "iterations": iterations,
        "estimated_type_mix": {classes[i]: round(float(q[i]), 4) for i in order},
        "training_type_mix": {classes[i]: round(float(prior[i]), 4) for i in np.argsort(-prior)},
        "top_type_changed": changed,
        "fitted_on": record.get("fitted_on", ""),
    }
    return adapted.astype(np.float32), done


def adapted_point(point: dict, record: dict) -> tuple[dict, bool]:
    """(operating point for adapted probabilities, refitted?). 'new-study' with a record that holds
    `operating_points.new_study` (threshold, fitted_on, transfer: what it gave nested on studies left out)
    takes that point; 'in-study', or a record without one, keeps `point` (abstention.operating_point's)."""
    stored = (record.get("operating_points") or {}).get("new_study")
    if point.get("name") != "new-study" or not stored:
        return point, False
    return {"name": point["name"], "threshold": float(stored["threshold"]),
            "fitted_on": str(stored.get("fitted_on", "")), "transfer": dict(stored.get("transfer", {}))}, True


def mix_line(done: dict, k: int = 5) -> str:
    """One line for the terminal and reports: the estimated mix's largest shares, the changes (sorted here:
    an .h5ad round trip stores the mix's keys alphabetically), and which abstention threshold applied: one
    fitted for adapted output (new-study) or the model's, not refitted, whose stated rates (measured without
    adaptation) do not hold for the sharper adapted probabilities (BENCHMARKS "Thresholds fitted for adapted
    output")."""
    shares = sorted(done["estimated_type_mix"].items(), key=lambda kv: -float(kv[1]))[:k]
    top = ", ".join(f"{t} {100 * float(s):.0f} %" for t, s in shares)
    head = (f"priors adapted to this batch of {done['tumours']:,} (estimated type mix: {top}; "
            f"top type changed for {done['top_type_changed']:,}); ")
    raised = _raised(done.get("thresholds_raised"))
    if done.get("threshold_refitted"):
        return (head + REFITTED.format(threshold=float(done["confidence_threshold"]))
                + (f" ({raised} that measured fewer sets)" if raised else ""))
    has_one = done.get("refitted_point_available")
    hint = " (--operating-point new-study has one fitted for it)" if has_one else ""
    if "confidence_threshold" in done:  # records written before it was kept say only that it is not refitted
        point = done.get("operating_point")
        whose = f"{point}, the model's" if point else "the operating point's"
        also = f"; {raised} that measured fewer sets" if raised else ""
        return (head + f"abstention threshold {float(done['confidence_threshold']):.3f} ({whose}{also}), "
                + NOT_REFITTED_WHY + hint)
    return head + NOT_REFITTED + hint


def _raised(table: dict | None) -> str:
    """'0.799 for 12 tumour(s)' from a `thresholds_raised` table (threshold, tumours: the per-pattern
    thresholds that replaced the operating point's, as predictor.raised_table writes it); '' for none."""
    table = table or {}
    return ", ".join(f"{float(t):.3f} for {int(n):,} tumour(s)"
                     for t, n in zip(table.get("threshold", []), table.get("tumours", []), strict=True))


#: What mix_line adds for the in-study point: the threshold is the model's, fitted on unadapted probabilities.
NOT_REFITTED_WHY = ("not refitted for adapted probabilities, which are sharper: more tumours are accepted, "
                    "at lower accuracy than the operating point states (model card: prior_adaptation)")
NOT_REFITTED = f"the abstention threshold is {NOT_REFITTED_WHY}"

#: What mix_line adds for the new-study point of a record that has one.
REFITTED = ("abstention threshold {threshold:.3f}, fitted for adapted output (new-study: batches of studies "
            "the models were not trained on)")
