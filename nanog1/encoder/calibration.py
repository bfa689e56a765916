"""Temperature scaling of type probabilities, expected calibration error and reliability diagrams.

The temperature is fitted on held-out predictions (a run's validation split or its out-of-fold
predictions) by minimising the negative log-likelihood over log T with LBFGS; dividing logits by T
never changes the top-1 type, only how confident the probabilities are.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

#: Smallest probability kept when probabilities are turned back into logits.
_TINY = 1e-12


def logits_from_proba(proba: np.ndarray) -> np.ndarray:
    """Log-probabilities: logits up to a per-row constant, which softmax ignores."""
    return np.log(np.clip(np.asarray(proba, dtype=np.float64), _TINY, 1.0))


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def apply_temperature(proba: np.ndarray, temperature: float) -> np.ndarray:
    """Probabilities re-scaled by temperature T (T > 1 softens, T < 1 sharpens), float32."""
    return softmax(logits_from_proba(proba) / float(temperature)).astype(np.float32)


#: Bounds of the fitted temperature. Separable validation data drives the NLL optimum to T -> 0
#: (probabilities of exactly 0 and 1); sharpening is therefore capped at 2x.
T_MIN, T_MAX = 0.5, 20.0


def fit_temperature(logits: np.ndarray, labels: np.ndarray, max_iter: int = 100) -> float:
    """The T in [T_MIN, T_MAX] minimising the NLL of softmax(logits / T) on labelled rows; 1.0 if none."""
    keep = np.asarray(labels) >= 0
    if keep.sum() == 0:
        return 1.0
    z = torch.as_tensor(np.asarray(logits)[keep], dtype=torch.float64)
    y = torch.as_tensor(np.asarray(labels)[keep], dtype=torch.long)
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.5, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(z / log_t.clamp(np.log(T_MIN), np.log(T_MAX)).exp(), y)
        loss.backward()
        return loss

    opt.step(closure)
    return float(log_t.detach().clamp(np.log(T_MIN), np.log(T_MAX)).exp())


def reliability_table(proba: np.ndarray, labels: np.ndarray, bins: int = 15) -> pd.DataFrame:
    """Per confidence bin (equal width on [0, 1]): sample count, mean confidence and accuracy."""
    keep = np.asarray(labels) >= 0
    proba, labels = np.asarray(proba)[keep], np.asarray(labels)[keep]
    conf = proba.max(1) if len(proba) else np.zeros(0)
    correct = (proba.argmax(1) == labels).astype(float) if len(proba) else np.zeros(0)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, bins - 1)
    rows = []
    for b in range(bins):
        sel = which == b
        n = int(sel.sum())
        rows.append(
            {
                "lower": edges[b],
                "upper": edges[b + 1],
                "count": n,
                "confidence": float(conf[sel].mean()) if n else np.nan,
                "accuracy": float(correct[sel].mean()) if n else np.nan,
            }
        )
    return pd.DataFrame(rows)


def expected_calibration_error(proba: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    """ECE: sample-weighted mean |accuracy - confidence| over equal-width confidence bins."""
    table = reliability_table(proba, labels, bins)
    n = table["count"].sum()
    if n == 0:
        return float("nan")
    gap = (table["accuracy"] - table["confidence"]).abs().fillna(0.0)
    return float((gap * table["count"]).sum() / n)


def crossfit_calibration(
    proba: np.ndarray, labels: np.ndarray, folds: int = 5, seed: int = 0, bins: int = 15
) -> tuple[float, float]:
    """Held-out ECE before and after temperature scaling: T is fitted on k-1 parts, scored on the rest.

    Gives an honest 'after' figure when the same held-out predictions also choose the temperature.
    """
    from sklearn.model_selection import StratifiedKFold  # here, not at import: `predict` never needs it

    keep = np.asarray(labels) >= 0
    proba, labels = np.asarray(proba)[keep], np.asarray(labels)[keep]
    _, counts = np.unique(labels, return_counts=True)
    k = int(min(folds, counts.min())) if len(counts) else 0
    if k < 2:
        return expected_calibration_error(proba, labels, bins), float("nan")
    logits = logits_from_proba(proba)
    calibrated = np.zeros_like(proba, dtype=np.float32)
    for tr, te in StratifiedKFold(k, shuffle=True, random_state=seed).split(logits, labels):
        t = fit_temperature(logits[tr], labels[tr])
        calibrated[te] = apply_temperature(proba[te], t)
    return expected_calibration_error(proba, labels, bins), expected_calibration_error(
        calibrated, labels, bins
    )


def reliability_png(tables: dict[str, pd.DataFrame], path: Path) -> None:
    """Reliability diagram: accuracy against confidence per bin, one line per table, diagonal = ideal."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from nanog1.io import atomic_write_with

    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="ideal")
    for name, table in tables.items():
        t = table[table["count"] > 0]
        ax.plot(t["confidence"], t["accuracy"], marker="o", label=name)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence (top-1 probability)")
    ax.set_ylabel("accuracy")
    ax.legend(loc="upper left", fontsize=8)
    atomic_write_with(Path(path), lambda tmp: fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png"))
    plt.close(fig)


CALIBRATION = "calibration.json"


def calibrate_run(
    run_dir: Path,
    proba: np.ndarray,
    labels: np.ndarray,
    source: str,
    ood=None,
    target_accuracy: float = 0.9,
) -> tuple[dict[str, float], list[Path]]:
    """Fit T and the abstention threshold on held-out predictions; write calibration.json and figures.

    `source` names the held-out data ("validation" or "out_of_fold"); `ood` is an optional
    abstention.CentroidOOD. Returns the metrics to log and the files written.
    """
    from nanog1.encoder.abstention import AbstentionRule, choose_threshold, coverage_curve, coverage_png
    from nanog1.encoder.loop import write_json
    from nanog1.io import atomic_write_with

    run_dir = Path(run_dir)
    t = fit_temperature(logits_from_proba(proba), labels)
    calibrated = apply_temperature(proba, t)
    before, after = crossfit_calibration(proba, labels)
    rule = AbstentionRule(choose_threshold(calibrated, labels, target_accuracy), target_accuracy, ood)
    curve = coverage_curve(calibrated, labels)
    metrics = {
        "temperature": t,
        "ece": before,
        "ece_calibrated": after if np.isfinite(after) else expected_calibration_error(calibrated, labels),
        "ece_calibrated_insample": expected_calibration_error(calibrated, labels),
        "abstain_threshold": rule.confidence_threshold,
    }
    covered = curve[curve["threshold"] >= rule.confidence_threshold]
    metrics["coverage"] = float(covered["coverage"].iloc[-1]) if len(covered) else 0.0
    paths = [
        run_dir / n
        for n in (CALIBRATION, "reliability.csv", "reliability.png", "coverage.csv", "coverage.png")
    ]
    write_json(
        paths[0], {"source": source, "n": int((labels >= 0).sum()), **metrics, "abstention": rule.to_dict()}
    )
    tables = {
        "uncalibrated": reliability_table(proba, labels),
        f"T = {t:.2f}": reliability_table(calibrated, labels),
    }
    both = pd.concat(tables, names=["model", "bin"])
    atomic_write_with(paths[1], lambda p: both.to_csv(p))
    reliability_png(tables, paths[2])
    atomic_write_with(paths[3], lambda p: curve.to_csv(p, index=False))
    coverage_png(curve, rule.confidence_threshold, paths[4])
    return metrics, paths


#: Where a calibration.json may keep its out-of-distribution rule's arrays instead of inline JSON
#: (packaged models: a 275 x 275 precision matrix is 2.5 MB of JSON, 0.3 MB of npz).
OOD_ARRAYS = "ood.npz"


def load_calibration(run_dir: Path) -> dict | None:
    """The run's calibration.json as a dict, or None for runs trained before calibration existed.

    An abstention rule whose `ood` is the name of an npz beside it (OOD_ARRAYS) gets its centroids,
    precision and threshold from that file (no pickles), as lists as if they had been inline."""
    import json

    path = Path(run_dir) / CALIBRATION
    if not path.exists():
        return None
    calib = json.loads(path.read_text())
    ood = calib.get("abstention", {}).get("ood")
    if isinstance(ood, str):
        with np.load(Path(run_dir) / ood, allow_pickle=False) as z:
            calib["abstention"]["ood"] = {
                "centroids": z["centroids"].tolist(),
                "precision": z["precision"].tolist(),
                "threshold": float(z["threshold"]),
            }
    return calib


def split_ood_arrays(run_dir: Path) -> Path:
    """Move calibration.json's inline OOD arrays into OOD_ARRAYS beside it (atomic writes)."""
    import json

    from nanog1.io import atomic_write_text

    run_dir = Path(run_dir)
    calib = json.loads((run_dir / CALIBRATION).read_text())
    ood = calib["abstention"]["ood"]
    tmp = run_dir / "ood.tmp.npz"
    np.savez_compressed(
        tmp,
        centroids=np.asarray(ood["centroids"], dtype=np.float64),
        precision=np.asarray(ood["precision"], dtype=np.float64),
        threshold=np.float64(ood["threshold"]),
    )
    tmp.replace(run_dir / OOD_ARRAYS)
    calib["abstention"]["ood"] = OOD_ARRAYS
    atomic_write_text(run_dir / CALIBRATION, json.dumps(calib, indent=1))
    return run_dir / OOD_ARRAYS


def store_calibrated_types(
    adata,
    proba: np.ndarray,
    counts: np.ndarray,
    classes: list[str],
    labels: np.ndarray,
    calib: dict | None,
) -> dict[str, float]:
    """Write calibrated obsm['proba_type'], confidence, entropy and (abstaining) predicted types.

    obs['predicted_type'] says "uncertain" where the run's abstention rule applies; the raw top-1
    stays in obs['predicted_type_raw']. Returns ECE/coverage metrics on the labelled samples.
    """
    from nanog1.encoder.abstention import (
        confidence_entropy,
        labelled_types,
    )
    from nanog1.schema import channel_padding_per_sample

    keep = ~channel_padding_per_sample(adata)  # the sets each tumour measured (its own record, issue 31)
    calibrated, uncertain = calibrate(proba, counts, calib, keep)
    conf, entropy = confidence_entropy(calibrated)
    adata.obsm["proba_type"] = pd.DataFrame(calibrated, index=adata.obs_names, columns=list(classes))
    adata.obs["type_confidence"] = conf.astype(np.float32)
    adata.obs["type_entropy"] = entropy.astype(np.float32)
    shown, raw = labelled_types(calibrated, classes, uncertain)
    adata.obs["predicted_type"], adata.obs["predicted_type_raw"] = shown, raw
    return calibrated_metrics(proba, counts, labels, calib, keep)


def calibrate(proba: np.ndarray, counts: np.ndarray, calib: dict | None,
              keep: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The run's temperature applied to `proba`, and where its abstention rule says 'uncertain' (`keep`:
    the measured channels, [N_CHANNELS] for every row or [n, N_CHANNELS] per tumour)."""
    from nanog1.encoder.abstention import AbstentionRule, profile_features

    t = float(calib["temperature"]) if calib else 1.0
    rule = AbstentionRule.from_dict(calib["abstention"]) if calib else AbstentionRule(0.0, None)
    calibrated = apply_temperature(proba, t)
    return calibrated, rule.uncertain(calibrated, profile_features(counts), keep)


def calibrated_metrics(proba: np.ndarray, counts: np.ndarray, labels: np.ndarray,
                       calib: dict | None, keep: np.ndarray | None = None) -> dict[str, float]:
    """ECE before/after temperature, coverage and accuracy on accepted (`top1_covered`) and on all
    (`top1_all`) labelled samples ({} when none is labelled)."""
    from nanog1.encoder.abstention import covered_accuracy

    if not (labels >= 0).any():
        return {}
    calibrated, uncertain = calibrate(proba, counts, calib, keep)
    out = {"ece": expected_calibration_error(proba, labels),
           "temperature": float(calib["temperature"]) if calib else 1.0}
    out["ece_calibrated"] = expected_calibration_error(calibrated, labels)
    return out | covered_accuracy(calibrated, labels, uncertain)


def ood_reference(counts: np.ndarray, labels: np.ndarray, val_fraction: float, seed: int):
    """A CentroidOOD on mutational profiles: centroids from a training split, cut-off from its validation.

    Profiles, not encoder embeddings: a classifier's embedding keeps only what separates the training
    types, so a new type can land beside one of them (measured on simulated cohorts; see BENCHMARKS.md).
    """
    from nanog1.encoder.abstention import CentroidOOD, profile_features
    from nanog1.encoder.cv import train_val_split

    known = np.flatnonzero(np.asarray(labels) >= 0)
    tr, val = train_val_split(np.asarray(labels)[known], val_fraction, seed)
    feats = profile_features(counts[known])
    return CentroidOOD.fit(feats[tr], np.asarray(labels)[known][tr], feats[val])
