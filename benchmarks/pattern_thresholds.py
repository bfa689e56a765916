"""Confidence thresholds per measured pattern for a packaged catalogue model (issue 31).

A tumour that measured fewer channel sets than the model reads (an SBS96 matrix alone, a VCF read without
a reference) is typed less accurately than complete catalogues, so the in-study threshold, fitted on those,
accepts too many of them (BENCHMARKS.md "Thresholds per measured pattern"). Here each pattern's sets are
masked in the model's validation tumours the way a real input of that kind arrives (their counts zero,
the cohort's record saying not computable), the tumours are scored by `nanog1.encoder.predict` itself,
and the threshold reaching 0.90 accuracy is stored in the package's calibration.json as
`pattern_thresholds` (read by `nanog1.encoder.predictor.tumour_thresholds`):

    PYTHONPATH=. python benchmarks/pcawg_shipped.py patterns     # the shipped pcawg-catalogue, in place
"""

from __future__ import annotations

import anndata as ad
import numpy as np

#: Patterns fitted: name -> the sets masked (SBS6 and ID12 stay measured where only SBS96 / ID83 are
#: masked: a reference-free input still counts its substitutions and indels by class).
PATTERNS = {
    "no_dbs": ("DBS78",),
    "no_indels": ("ID83", "ID12"),
    "sbs96_only": ("DBS78", "ID83", "ID12"),
    "no_reference": ("SBS96", "ID83"),
    "no_reference_no_indels": ("SBS96", "ID83", "ID12"),
    "no_reference_no_dbs": ("SBS96", "DBS78", "ID83"),
    "sbs6_only": ("SBS96", "DBS78", "ID83", "ID12"),
}


def as_measured(adata: ad.AnnData, masked: tuple[str, ...]) -> ad.AnnData:
    """A copy of `adata` as an input that did not measure `masked` arrives: those sets' counts zero, the
    cohort's record saying not computable, no per-sample record (every tumour measured the same sets)."""
    from nanog1.genomics.channels import EXACT, NOT_COMPUTABLE
    from nanog1.schema import META, SET_NAMES, SET_SIZES

    out = adata.copy()
    columns = np.isin(np.repeat(np.array(SET_NAMES), SET_SIZES), masked)
    x = np.asarray(out.X.toarray() if hasattr(out.X, "toarray") else out.X, dtype=np.float32).copy()
    x[:, columns] = 0
    out.X = x
    meta = dict(out.uns.get(META) or {})
    meta["channel_sets"] = {s: NOT_COMPUTABLE if s in masked else EXACT for s in SET_NAMES}
    meta.pop("exact_for", None)
    out.uns[META] = meta
    out.obsm.pop("measured_sets", None)
    return out


def fit_patterns(
    adata: ad.AnnData, labels: np.ndarray, model, target: float = 0.9, assay: str = "genome"
) -> list[dict]:
    """Per pattern, on `adata` (validation tumours, `labels` their class indices): the threshold reaching
    `target` accuracy on the calibrated probabilities `nanog1 predict` gives with those sets masked, and
    top-1, accepted share and top-1 on accepted there (in sample: the threshold was fitted on them).
    `masked` is stored as `predict` keys a tumour (`obs['channel_sets_masked']`: the pattern's sets that the
    model reads), so a model that never reads e.g. SBS96 gets its patterns under the sets it does read; a
    pattern that masks none of those is skipped, as are duplicates of one already fitted. `assay`: the
    validation tumours' (stated, so `predict`'s assay check does not guess)."""
    from nanog1.encoder.abstention import choose_threshold
    from nanog1.encoder.predictor import PredictOptions, predict

    options = PredictOptions(neighbours=0, exposures=False, assay=assay)
    out = []
    for name, masked in PATTERNS.items():
        scored = as_measured(adata, masked)
        predict(scored, model, options)
        proba = scored.obsm["proba_type"].to_numpy()
        threshold = choose_threshold(proba, labels, target)
        hit, keep = proba.argmax(1) == labels, proba.max(1) >= threshold
        keys = set(scored.obs["channel_sets_masked"].astype(str))
        key = next(iter(keys)).split("+") if len(keys) == 1 and "" not in keys else None
        if key is None or key in [p["masked"] for p in out]:
            continue  # the model reads none of these sets, or an earlier pattern masked the same ones
        out.append({"name": name, "masked": key, "threshold": float(threshold),
                    "target_accuracy": target, "n": int(len(labels)), "top1": float(hit.mean()),
                    "coverage": float(keep.mean()),
                    "top1_accepted": float(hit[keep].mean()) if keep.any() else float("nan")})
    return out
