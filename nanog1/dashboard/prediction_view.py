"""Why the Sample page shows the type it shows: calibrated confidence against the run's abstention rule.

`nanog1 evaluate` writes the calibrated probabilities (obsm['proba_type']), obs['type_confidence'],
obs['predicted_type'] ("uncertain" where the rule abstains) and obs['predicted_type_raw'] (the top-1
before abstaining); the run folder named in uns['nanog1_model'] holds calibration.json with the
confidence threshold. A sample that reaches the threshold yet is "uncertain" was abstained on by the
out-of-distribution test. `nanog1 predict` (and the Predict page) also record the reason itself in
obs['abstain_reason'] and the threshold in uns['nanog1_predict']; those are read first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from nanog1.schema import CANCER_TYPE

UNCERTAIN = "uncertain"


@dataclass(frozen=True)
class Explanation:
    """What the page says about one sample's prediction."""

    shown: str
    raw_top1: str | None
    confidence: float | None
    threshold: float | None
    ood: bool
    reason: str | None = None

    def sentence(self) -> str:
        """One plain sentence: the call, its confidence against the threshold, and why it abstained."""
        conf = "no confidence" if self.confidence is None else f"calibrated confidence {self.confidence:.2f}"
        rule = f" (abstention threshold {self.threshold:.2f})" if self.threshold is not None else ""
        if self.shown != UNCERTAIN:
            return f"Predicted **{self.shown}** with {conf}{rule}."
        why = ("it lies far from every training type (out-of-distribution test)" if self.ood
               else "its confidence is below the threshold")
        if self.reason:
            why = f"it was abstained on: {self.reason}"
        return f"**Uncertain**: the raw top-1 is **{self.raw_top1}** with {conf}{rule}, but {why}."


def abstention_threshold(model_record: object) -> float | None:
    """The confidence threshold of the run that predicted: uns['nanog1_model'] metrics, else its
    calibration.json (read-only), else None."""
    if not isinstance(model_record, dict):
        return None
    metrics = model_record.get("metrics", {})
    if isinstance(metrics, dict) and "abstain_threshold" in metrics:
        return float(metrics["abstain_threshold"])
    run_dir = model_record.get("run_dir")
    if not run_dir or not Path(str(run_dir)).is_dir():
        return None
    from nanog1.encoder.calibration import load_calibration

    calib = load_calibration(Path(str(run_dir)))
    if not calib:
        return None
    value = calib.get("abstain_threshold", (calib.get("abstention") or {}).get("confidence_threshold"))
    return float(value) if value is not None else None


def cohort_threshold(uns: dict) -> float | None:
    """The abstention threshold behind a cohort's predictions: `nanog1 predict`'s record, else the run's."""
    record = uns.get("nanog1_predict")
    if isinstance(record, dict) and "confidence_threshold" in record:
        return float(record["confidence_threshold"])
    return abstention_threshold(uns.get("nanog1_model"))


def tumour_threshold(obs: pd.Series, uns: dict) -> float | None:
    """One tumour's abstention threshold: its own where `nanog1 predict` recorded one per tumour (raised for
    a tumour that measured fewer channel sets: obs['confidence_threshold']), else the cohort's; None for a
    tumour no threshold applies to (infinite: its measured sets were never validated, its reason says so)."""
    value = obs.get("confidence_threshold")
    if value is not None and pd.notna(value):
        return float(value) if math.isfinite(float(value)) else None
    return cohort_threshold(uns)


def explain(obs: pd.Series, proba: pd.DataFrame | None, threshold: float | None) -> Explanation | None:
    """The explanation of one sample (its obs row and probability table), or None without predictions."""
    if "predicted_type" not in obs or pd.isna(obs["predicted_type"]):
        return None
    shown = str(obs["predicted_type"])
    raw = obs.get("predicted_type_raw")
    if (raw is None or pd.isna(raw)) and proba is not None and len(proba):
        raw = proba.iloc[0][CANCER_TYPE]
    confidence = obs.get("type_confidence")
    if (confidence is None or pd.isna(confidence)) and proba is not None and len(proba):
        confidence = proba.iloc[0]["probability"]
    confidence = float(confidence) if confidence is not None and pd.notna(confidence) else None
    reason = obs.get("abstain_reason")
    reason = str(reason) if reason is not None and pd.notna(reason) and str(reason) else None
    if reason is not None:
        ood = "out of distribution" in reason
    else:
        ood = (shown == UNCERTAIN and threshold is not None and confidence is not None
               and confidence >= threshold)
    raw = None if raw is None or pd.isna(raw) else str(raw)
    return Explanation(shown, raw, confidence, threshold, ood, reason if shown == UNCERTAIN else None)
