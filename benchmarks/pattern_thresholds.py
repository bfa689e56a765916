"""Confidence thresholds per measured pattern for a packaged catalogue model (issue 31).

A tumour that measured fewer channel sets than the model reads (an SBS96 matrix alone, a VCF read without
a reference) is typed less accurately than complete catalogues, so the in-study threshold, fitted on those,
accepts too many of them (BENCHMARKS.md "Thresholds per measured pattern"). Here each pattern's sets are
masked in the model's validation tumours the way a real input of that kind arrives (their counts zero,
the cohort's record saying not computable), the tumours are scored by `nanog1.encoder.predict` itself,
and the threshold reaching 0.90 accuracy is stored in the package's calibration.json as
`pattern_thresholds` (read by `nanog1.encoder.predictor.tumour_thresholds`):

    PYTHONPATH=. python benchmarks/pcawg_shipped.py patterns     # the shipped pcawg-catalogue, in place
    PYTHONPATH=. python benchmarks/tcga_exome_ship.py patterns --mc3 MC3.h5ad --firehose FH.h5ad  # tcga-exome

`store_patterns` writes them (calibration.json and the card's `calibration_per_pattern` and limit).
"""

from __future__ import annotations

import json
from pathlib import Path

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
    cohort's record saying not computable, no per-sample record (every tumour measured the same sets).
    Sets the cohort itself could not compute stay so (a MAF ingested without a reference has no SBS96 or
    ID83: an SNV-only MAF lacks those and the indels, not only the indels). For an event-view model
    (tcga-exome) `predict` then leaves out the calls of a kind none of whose sets is measured (indels for
    ID83 + ID12, doublets for DBS78: nanog1.encoder.data.without_unmeasured, obs['events_not_read'])."""
    from nanog1.genomics.channels import EXACT, NOT_COMPUTABLE
    from nanog1.schema import META, SET_NAMES, SET_SIZES

    out = adata.copy()
    meta = dict(out.uns.get(META) or {})
    before = dict(meta.get("channel_sets") or {})
    lacking = set(masked) | {s for s in SET_NAMES if str(before.get(s)) == NOT_COMPUTABLE}
    columns = np.isin(np.repeat(np.array(SET_NAMES), SET_SIZES), sorted(lacking))
    x = np.asarray(out.X.toarray() if hasattr(out.X, "toarray") else out.X, dtype=np.float32).copy()
    x[:, columns] = 0
    out.X = x
    meta["channel_sets"] = {s: NOT_COMPUTABLE if s in lacking else EXACT for s in SET_NAMES}
    meta.pop("exact_for", None)
    out.uns[META] = meta
    out.obsm.pop("measured_sets", None)
    return out


def fit_patterns(
    adata: ad.AnnData | list[ad.AnnData], labels: np.ndarray, model, target: float = 0.9,
    assay: str = "genome", base: float | None = None,
) -> list[dict]:
    """Per pattern, on `adata` (validation tumours, `labels` their class indices): the threshold reaching
    `target` accuracy on the calibrated probabilities `nanog1 predict` gives with those sets masked, and
    top-1, accepted share and top-1 on accepted there (in sample: the threshold was fitted on them).
    `masked` is stored as `predict` keys a tumour (`obs['channel_sets_masked']`: the pattern's sets that the
    model reads), so a model that never reads e.g. SBS96 gets its patterns under the sets it does read; a
    pattern that masks none of those is skipped, as are duplicates of one already fitted (names:
    `pattern_name`). `assay`: the
    validation tumours' (stated, so `predict`'s assay check does not guess). `adata` may be a list of
    cohorts that are not one AnnData (tcga-exome's two TCGA sources, each with its own token tables: scored
    one by one as its packaging scored them, pooled in order; `labels` over all). `base`: the operating
    point's threshold; when given, each pattern also records what that threshold alone gave
    (`coverage_at_base`, `top1_accepted_at_base`: the behaviour a pattern threshold replaces)."""
    from nanog1.encoder.abstention import choose_threshold

    parts = adata if isinstance(adata, list) else [adata]
    out = []
    for name, masked in PATTERNS.items():
        proba, keys = _scored_as_measured(parts, masked, model, assay)
        threshold = choose_threshold(proba, labels, target)
        hit = proba.argmax(1) == labels
        key = next(iter(keys)).split("+") if len(keys) == 1 and "" not in keys else None
        if key is None or key in [p["masked"] for p in out]:
            continue  # the model reads none of these sets, or an earlier pattern masked the same ones
        fitted = {"name": pattern_name(name, masked, key), "masked": key, "threshold": float(threshold),
                  "target_accuracy": target, "n": int(len(labels)), "top1": float(hit.mean()),
                  **_accepted(proba, hit, threshold)}
        if base is not None:
            fitted |= {f"{k}_at_base": v for k, v in _accepted(proba, hit, base).items()}
        out.append(fitted)
    return out


#: How a set that a model reads but a tumour did not measure reads in a pattern's name (`pattern_name`):
#: ID12 unmeasured means no indel was called at all.
_SET_WORDS = {"SBS96": "sbs96", "DBS78": "dbs", "ID83": "id83", "SBS6": "sbs6", "ID12": "indels"}


def pattern_name(name: str, masked: tuple[str, ...], key: list[str]) -> str:
    """`name` where the model reads every set the pattern masks (`key`, the sets read and masked, is all of
    `masked`), else one said by `key` alone ('no_dbs_indels' for DBS78 + ID12): a model that never reads
    SBS96 (tcga-exome) would otherwise store DBS78 + ID12 as 'sbs96_only', an input it cannot read."""
    if sorted(key) == sorted(masked):
        return name
    return "no_" + "_".join(_SET_WORDS[s] for s in key)


def _scored_as_measured(parts: list[ad.AnnData], masked: tuple[str, ...], model, assay: str):
    """(calibrated probabilities of every part's tumours in order, the set of `obs['channel_sets_masked']`
    keys `predict` gave them) with `masked` unmeasured (`as_measured`)."""
    from nanog1.encoder.predictor import PredictOptions, predict

    options = PredictOptions(neighbours=0, exposures=False, assay=assay)
    probas, keys = [], set()
    for part in parts:
        scored = as_measured(part, masked)
        predict(scored, model, options)
        probas.append(scored.obsm["proba_type"].to_numpy())
        keys |= set(scored.obs["channel_sets_masked"].astype(str))
    return np.concatenate(probas), keys


def _accepted(proba: np.ndarray, hit: np.ndarray, threshold: float) -> dict:
    """Share of tumours at or above `threshold` confidence and top-1 among them (NaN when none)."""
    keep = proba.max(1) >= threshold
    accurate = float(hit[keep].mean()) if keep.any() else float("nan")
    return {"coverage": float(keep.mean()), "top1_accepted": accurate}


#: The card's limit on inputs that measured fewer sets (replaced, not repeated, on a refit).
PATTERN_LIMIT = "inputs that measured fewer channel sets"


def card_with_patterns(
    card: dict, fitted: list[dict], tumours: str = "genomes", weak_below: float = 0.7,
    advice: str = "A VCF typed without a reference FASTA lacks SBS96 and ID83: give --reference",
    out_of_sample: str = "Out of sample, per split (seed 0, thresholds fitted per job on its validation "
    "genomes): BENCHMARKS.md 'Thresholds per measured pattern'",
) -> dict:
    """The card with its `calibration_per_pattern` block and a limit naming the patterns typed below
    `weak_below` top-1 on the validation `tumours` ('genomes', 'tumours'), ending with `advice` (what the
    user can do about it); `out_of_sample` says where numbers not fitted on those tumours are. The defaults
    are pcawg-catalogue's wording (benchmarks/pcawg_shipped.py)."""
    n = fitted[0]["n"] if fitted else 0
    card["calibration_per_pattern"] = {
        "rule": "a tumour that measured fewer channel sets gets the threshold fitted for 0.90 accuracy on "
        f"the {n} validation {tumours} with the same sets masked (never below the operating point's); "
        f"numbers below are in sample on those {tumours}. {out_of_sample}",
        "patterns": fitted}
    weak = [p for p in fitted if p["top1"] < weak_below]
    limit = (f"{PATTERN_LIMIT}: " + "; ".join(
        f"without {'+'.join(p['masked'])} top-1 {p['top1']:.2f} on validation {tumours}, held to threshold "
        f"{p['threshold']:.2f} ({100 * p['coverage']:.0f} % accepted)" for p in weak) + f". {advice}")
    card["limits"] = [x for x in card.get("limits", []) if not str(x).startswith(PATTERN_LIMIT)] + [limit]
    return card


def store_patterns(out: Path, fitted: list[dict], **card: str | float) -> None:
    """Write `fitted` into the package `out`: calibration.json `pattern_thresholds` (what `predict` reads)
    and card.json (`card_with_patterns`, whose wording `card` sets)."""
    from nanog1.encoder.calibration import CALIBRATION
    from nanog1.io import atomic_write_text

    calib = json.loads((out / CALIBRATION).read_text())
    atomic_write_text(out / CALIBRATION, json.dumps(calib | {"pattern_thresholds": fitted}, indent=1))
    written = card_with_patterns(json.loads((out / "card.json").read_text()), fitted, **card)
    atomic_write_text(out / "card.json", json.dumps(written, indent=1, default=float))


def pattern_table(fitted: list[dict]) -> list[str]:
    """One line per fitted pattern: sets masked, top-1, threshold, accepted share and top-1 on accepted
    (and what the operating point's threshold alone gave, where `fit_patterns` was given it)."""
    lines = []
    for p in fitted:
        line = (f"{p['name']:24s} masked {'+'.join(p['masked']):22s} top-1 {p['top1']:.3f}  threshold "
                f"{p['threshold']:.3f}: {100 * p['coverage']:.1f} % accepted at {p['top1_accepted']:.3f}")
        if "coverage_at_base" in p:
            line += (f" (operating point's: {100 * p['coverage_at_base']:.1f} % at "
                     f"{p['top1_accepted_at_base']:.3f})")
        lines.append(line)
    return lines
