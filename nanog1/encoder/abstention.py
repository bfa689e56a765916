"""Abstention: say "uncertain" instead of a type when the model is unsure or the tumour is unlike training.

Two tests, both set on held-out (validation) data: the top-1 probability must reach a confidence
threshold chosen for a target accuracy (or coverage), and the tumour's mutational profile must lie
within the Mahalanobis distance of the nearest training-type centroid that covers the validation
samples (else it is unlike every training type).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from nanog1.genomics.channels import CHANNEL_SETS

UNCERTAIN = "uncertain"


def confidence_entropy(proba: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Top-1 probability and Shannon entropy (nats) of each row."""
    p = np.clip(np.asarray(proba, dtype=np.float64), 1e-12, 1.0)
    return p.max(1), -(p * np.log(p)).sum(1)


def coverage_curve(proba: np.ndarray, labels: np.ndarray) -> pd.DataFrame:
    """Accuracy on the samples kept at each confidence threshold (one row per labelled sample)."""
    keep = np.asarray(labels) >= 0
    proba, labels = np.asarray(proba)[keep], np.asarray(labels)[keep]
    conf = proba.max(1)
    order = np.argsort(-conf, kind="stable")
    correct = (proba.argmax(1) == labels)[order]
    n_kept = np.arange(1, len(order) + 1)
    return pd.DataFrame(
        {
            "threshold": conf[order],
            "coverage": n_kept / max(len(order), 1),
            "accuracy": np.cumsum(correct) / n_kept,
        }
    )


def choose_threshold(
    proba: np.ndarray,
    labels: np.ndarray,
    target_accuracy: float | None = 0.9,
    target_coverage: float | None = None,
) -> float:
    """Lowest confidence threshold whose kept samples reach `target_accuracy` (or keep `target_coverage`).

    0.0 (never abstain) when all samples already reach the target; the top confidence when none does.
    """
    curve = coverage_curve(proba, labels)
    if curve.empty:
        return 0.0
    if target_coverage is not None:
        ok = curve[curve["coverage"] <= target_coverage + 1e-12]
        return float(ok["threshold"].iloc[-1]) if len(ok) else float(curve["threshold"].iloc[0])
    if curve["accuracy"].iloc[-1] >= target_accuracy:
        return 0.0
    ok = curve[curve["accuracy"] >= target_accuracy]
    return float(ok["threshold"].iloc[-1]) if len(ok) else float(curve["threshold"].iloc[0])


def profile_features(counts: np.ndarray) -> np.ndarray:
    """Square-root proportions within each channel set (SBS96, DBS78, ID83): burden-free profiles."""
    counts = np.asarray(counts, dtype=np.float64)
    out = np.zeros_like(counts)
    start = 0
    for size in (len(labels) for labels in CHANNEL_SETS.values()):
        block = counts[:, start : start + size]
        out[:, start : start + size] = np.sqrt(block / block.sum(1, keepdims=True).clip(1e-12))
        start += size
    return out


#: Sets whose per-tumour totals a model's reference.npz keeps (`burden_<set>`): together they count
#: every measured mutation once (SBS96/ID83 fold into SBS6/ID12, so catalogues without a reference count too).
BURDEN_SETS = ("SBS6", "DBS78", "ID12")


def burden_range(
    reference: dict[str, np.ndarray] | None, measured: list[str], quantile: float = 0.01, factor: float = 10.0
) -> tuple[float, float] | None:
    """(floor, ceiling) of the mutation burden the model was trained on, over the sets `measured`.

    The floor is the `quantile` of the reference tumours' totals over those sets, the ceiling `factor` x
    their maximum: a profile of a few mutations (an exome, a 4-variant VCF) is noise the model never saw,
    and it types it with confidence all the same. None when the reference keeps no burdens (runs
    trained before they were stored, or without a reference.npz) or no burden set was measured.
    """
    sets = [s for s in BURDEN_SETS if s in measured and reference is not None and f"burden_{s}" in reference]
    if not sets:
        return None
    total = sum(np.asarray(reference[f"burden_{s}"], np.float64) for s in sets)
    return float(np.ceil(np.quantile(total, quantile))), float(total.max() * factor)


def burden_ranges(
    reference: dict[str, np.ndarray] | None, measured: np.ndarray, counts: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per tumour (issue 31): its burden over the `BURDEN_SETS` it measured (`measured`: bool [n, SET_NAMES],
    nanog1.schema.measured_sets_per_sample; `counts` [n, N_CHANNELS]) and the `burden_range` of the reference
    over those same sets, as (total, floor, ceiling) arrays; floor/ceiling NaN where there is no range (no
    burden set measured, or no reference burdens). Tumours that measured the same sets share one range."""
    from nanog1.genomics.channels import set_slice
    from nanog1.schema import SET_NAMES

    measured = np.asarray(measured, bool)
    counts = np.asarray(counts, np.float64)
    cols = [SET_NAMES.index(s) for s in BURDEN_SETS]
    used = measured[:, cols]
    sums = np.stack([counts[:, set_slice(s)].sum(1) for s in BURDEN_SETS], axis=1) if len(counts) else \
        np.zeros((0, len(BURDEN_SETS)))
    total = (sums * used).sum(1)
    floor, ceiling = np.full(len(counts), np.nan), np.full(len(counts), np.nan)
    if not len(counts):
        return total, floor, ceiling
    patterns, group = np.unique(used, axis=0, return_inverse=True)
    for g, pattern in enumerate(patterns):
        bounds = burden_range(reference, [s for s, on in zip(BURDEN_SETS, pattern, strict=True) if on])
        if bounds is not None:
            idx = np.ravel(group) == g
            floor[idx], ceiling[idx] = bounds
    return total, floor, ceiling


@dataclass
class CentroidOOD:
    """Mahalanobis distance of features to the nearest training-type centroid (shared Ledoit-Wolf covariance).

    The cut-off is a quantile of the validation samples' distances, so about (1 - quantile) of
    in-distribution tumours are flagged while tumours unlike every training type mostly are.
    """

    centroids: list[list[float]]
    precision: list[list[float]]
    threshold: float

    @classmethod
    def fit(
        cls,
        train_embedding: np.ndarray,
        train_labels: np.ndarray,
        val_embedding: np.ndarray,
        quantile: float = 0.99,
    ) -> CentroidOOD:
        """Centroids and within-type covariance of the training types; cut-off from validation."""
        from sklearn.covariance import LedoitWolf

        keep = np.asarray(train_labels) >= 0
        emb, labels = np.asarray(train_embedding, np.float64)[keep], np.asarray(train_labels)[keep]
        types = np.unique(labels)
        centroids = np.stack([emb[labels == c].mean(0) for c in types])
        residuals = np.concatenate([emb[labels == c] - centroids[i] for i, c in enumerate(types)])
        precision = LedoitWolf().fit(residuals).precision_
        rule = cls(centroids.tolist(), precision.tolist(), float("inf"))
        rule.threshold = float(np.quantile(rule.distance(val_embedding), quantile))
        return rule

    def distance(self, embedding: np.ndarray) -> np.ndarray:
        """Mahalanobis distance of each row to its nearest training-type centroid."""
        diff = np.asarray(embedding, np.float64)[:, None, :] - np.asarray(self.centroids)[None, :, :]
        sq = np.einsum("nkd,de,nke->nk", diff, np.asarray(self.precision), diff)
        return np.sqrt(np.clip(sq, 0.0, None)).min(1)

    def measured_distance(self, features: np.ndarray, keep: np.ndarray | None) -> tuple[np.ndarray, float]:
        """Distance over the measured features only (`keep`), and the cut-off rescaled to them.

        A cohort that did not measure a set must not look far from every type for lacking it: the
        distance uses the marginal precision of the kept block (the inverse of its covariance block),
        and the cut-off shrinks with sqrt(kept / all dimensions), as squared distances grow like chi².
        """
        if keep is None or np.asarray(keep, bool).all():
            return self.distance(features), float(self.threshold)
        keep = np.asarray(keep, bool)
        cov = np.linalg.pinv(np.asarray(self.precision, np.float64))
        sub = np.linalg.pinv(cov[np.ix_(keep, keep)])
        diff = np.asarray(features, np.float64)[:, None, keep] - np.asarray(self.centroids)[None, :, keep]
        sq = np.einsum("nkd,de,nke->nk", diff, sub, diff)
        return np.sqrt(np.clip(sq, 0.0, None)).min(1), float(self.threshold) * float(np.sqrt(keep.mean()))

    def per_row_distance(self, features: np.ndarray,
                         keep: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """`measured_distance` with `keep` per row ([n, features]: each tumour's own measured sets, issue
        31), or one row for all ([features] / None). Rows that kept the same features are measured
        together; a row that kept none is never far (distance 0, cut-off inf). Returns per-row distances
        and cut-offs."""
        features = np.asarray(features, np.float64)
        if keep is None or np.ndim(keep) == 1:
            dist, cut = self.measured_distance(features, keep)
            return dist, np.full(len(features), cut)
        keep = np.asarray(keep, bool)
        dist, cut = np.zeros(len(features)), np.full(len(features), np.inf)
        if not len(features):
            return dist, cut
        patterns, group = np.unique(keep, axis=0, return_inverse=True)
        for g, pattern in enumerate(patterns):
            if not pattern.any():
                continue
            idx = np.flatnonzero(np.ravel(group) == g)
            dist[idx], cut[idx] = self.measured_distance(features[idx], pattern)
        return dist, cut


@dataclass
class AbstentionRule:
    """When a prediction becomes "uncertain": low confidence, or (optionally) far from every type."""

    confidence_threshold: float = 0.0
    target_accuracy: float | None = 0.9
    ood: CentroidOOD | None = None
    meta: dict = field(default_factory=dict)

    def uncertain(
        self, proba: np.ndarray, features: np.ndarray | None = None, keep: np.ndarray | None = None
    ) -> np.ndarray:
        """Boolean mask of rows to report as "uncertain" (`features` as given to the OOD test; `keep`
        marks the measured features, one row for all or one per row: CentroidOOD.per_row_distance)."""
        mask = np.asarray(proba).max(1) < self.confidence_threshold
        if self.ood is not None and features is not None:
            dist, cut = self.ood.per_row_distance(features, keep)
            mask |= dist > cut
        return mask

    def to_dict(self) -> dict:
        """JSON-ready dict (stored in the run's calibration.json)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> AbstentionRule:
        """Inverse of to_dict."""
        ood = values.get("ood")
        return cls(
            confidence_threshold=float(values.get("confidence_threshold", 0.0)),
            target_accuracy=values.get("target_accuracy"),
            ood=CentroidOOD(**ood) if ood else None,
            meta=dict(values.get("meta", {})),
        )


#: `nanog1 predict --operating-point` names and their keys in calibration.json's `operating_points`.
OPERATING_POINTS = {"in-study": "in_study", "new-study": "new_study"}


def operating_point(calib: dict, name: str, model: str = "model") -> dict:
    """The confidence threshold of operating point `name`, with what it gave on studies the model was not
    trained on where its calibration.json records it (`transfer`: split -> coverage, top1_accepted, n).

    'in-study' (the default) is the calibration's own abstention threshold, fitted for 0.90 accuracy on the
    model's validation tumours; on other studies it accepts more tumours than it should (pcawg-catalogue:
    about 0.80 accuracy on leave-one-study-out). 'new-study' is a threshold fitted on tumours of studies the
    models were not trained on (packaging stores it in `operating_points.new_study`, issue 31): fewer tumours
    accepted, 0.90 accuracy on other studies. A calibration without `operating_points` (every run folder,
    models packaged before) has the in-study point only; asking it for 'new-study' is a UserError."""
    from nanog1.errors import UserError

    if name not in OPERATING_POINTS:
        raise UserError(f"--operating-point {name}: choose {' or '.join(OPERATING_POINTS)}")
    points = calib.get("operating_points") or {}
    stored = points.get(OPERATING_POINTS[name])
    if name == "in-study":
        threshold = (calib.get("abstention") or {}).get("confidence_threshold", 0.0)  # as before: no rule, 0
        return {"name": name, "threshold": float(threshold),
                "fitted_on": (stored or {}).get("fitted_on", "the model's validation tumours"),
                "transfer": dict((stored or {}).get("transfer", {}))}
    if stored is None:
        raise UserError(f"{model}: no new-study operating point: this model's abstention was not measured "
                        "on studies it was not trained on (its calibration.json has no "
                        "operating_points.new_study); use --operating-point in-study")
    return {"name": name, "threshold": float(stored["threshold"]), "fitted_on": stored.get("fitted_on", ""),
            "transfer": dict(stored.get("transfer", {}))}


#: `pattern_threshold`'s name for a tumour whose measured sets no fitted pattern covers: it is not typed.
UNVALIDATED = "unvalidated"


def pattern_threshold(patterns: list[dict], masked: frozenset[str], base: float) -> tuple[float, str]:
    """(confidence threshold, pattern name or '') for a tumour whose unmeasured sets are `masked`.

    A tumour that measured fewer channel sets (an SBS96 matrix alone, a VCF read without a reference) is
    typed less accurately than the complete catalogues a threshold is fitted on (PCAWG, seed 0, pooled over
    leave-one-study-out: without a reference 0.43 top-1, and the complete-catalogue threshold accepted 46 %
    of those genomes at 0.69 accuracy; BENCHMARKS.md "Thresholds per measured pattern"). `patterns`
    (calibration.json `pattern_thresholds`) holds thresholds fitted for 0.90 accuracy on the validation
    tumours with each pattern's sets masked. A complete tumour keeps `base`; else the pattern masking exactly
    `masked` applies; else the lowest threshold of the patterns that mask every set the tumour lacks and more
    (they measured less than it did). A tumour no pattern covers (a DBS78 or ID83 matrix alone: no pattern
    lacks substitutions) gets an infinite threshold and `UNVALIDATED`: the model was never measured on such
    inputs, so it is not typed. The result is never below `base` (the operating point's own threshold)."""
    if not masked or not patterns:
        return base, ""
    fitting = [p for p in patterns if frozenset(p["masked"]) == masked]
    if not fitting:
        less = (p for p in patterns if frozenset(p["masked"]) > masked)  # patterns that measured less
        fitting = sorted(less, key=lambda p: float(p["threshold"]))
    if not fitting:
        return float("inf"), UNVALIDATED
    if float(fitting[0]["threshold"]) <= base:
        return base, ""
    return float(fitting[0]["threshold"]), str(fitting[0]["name"])


def offered_operating_points(calib: dict, model: str = "model") -> list[dict]:
    """Every operating point `calib` offers (in-study always; new-study where calibration.json stores it),
    each as `operating_point` gives it: what a chooser (the dashboard's Predict page) may offer."""
    from nanog1.errors import UserError

    offered = []
    for name in OPERATING_POINTS:
        try:
            offered.append(operating_point(calib, name, model))
        except UserError:  # a point this calibration does not store
            continue
    return offered


def labelled_types(
    proba: np.ndarray, classes: list[str], uncertain: np.ndarray
) -> tuple[pd.Categorical, pd.Categorical]:
    """(predicted types with "uncertain" where abstaining, raw top-1 types) as categoricals."""
    raw = np.asarray(classes, dtype=object)[np.asarray(proba).argmax(1)]
    shown = np.where(uncertain, UNCERTAIN, raw)
    cats = [*classes, UNCERTAIN] if UNCERTAIN not in classes else list(classes)
    return pd.Categorical(shown, categories=cats), pd.Categorical(raw, categories=list(classes))


def covered_accuracy(proba: np.ndarray, labels: np.ndarray, uncertain: np.ndarray) -> dict[str, float]:
    """Coverage and top-1 accuracy on the covered labelled samples, beside accuracy on all of them."""
    keep = np.asarray(labels) >= 0
    if not keep.any():
        return {}
    correct = np.asarray(proba).argmax(1)[keep] == np.asarray(labels)[keep]
    covered = ~np.asarray(uncertain)[keep]
    return {
        "coverage": float(covered.mean()),
        "top1_covered": float(correct[covered].mean()) if covered.any() else float("nan"),
        "top1_all": float(correct.mean()),
    }


def coverage_png(curve: pd.DataFrame, threshold: float, path: Path) -> None:
    """Accuracy against coverage, with the chosen operating point marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from nanog1.io import atomic_write_with

    fig, ax = plt.subplots(figsize=(4.5, 3.5))
    ax.plot(curve["coverage"], curve["accuracy"], lw=1.5)
    kept = curve[curve["threshold"] >= threshold]
    if len(kept):
        ax.plot(
            kept["coverage"].iloc[-1],
            kept["accuracy"].iloc[-1],
            "o",
            color="C3",
            label=f"threshold {threshold:.2f}",
        )
        ax.legend(loc="lower left", fontsize=8)
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("coverage (share predicted)")
    ax.set_ylabel("accuracy on covered samples")
    atomic_write_with(Path(path), lambda tmp: fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png"))
    plt.close(fig)
