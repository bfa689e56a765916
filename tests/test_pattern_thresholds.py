"""Confidence thresholds per measured pattern (issue 31): a tumour that measured fewer channel sets than
the model reads (an SBS96 matrix alone, a VCF read without a reference) gets the threshold fitted for
0.90 accuracy on validation tumours with the same sets masked, never a lower one."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from nanog1.encoder.abstention import UNVALIDATED, pattern_threshold
from nanog1.encoder.predict_notes import operating_point_line
from nanog1.encoder.predictor import PredictOptions, predict
from nanog1.genomics.channels import set_slice
from tests.predict_models import lacking_indels, write_model_folder
from tests.training_cohort import make_cohort

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

PATTERNS = [
    {"name": "no_dbs", "masked": ["DBS78"], "threshold": 0.50},
    {"name": "sbs96_only", "masked": ["DBS78", "ID83", "ID12"], "threshold": 0.67},
    {"name": "no_reference", "masked": ["SBS96", "ID83"], "threshold": 0.85},
]


@pytest.mark.parametrize(("masked", "expected"), [
    ((), (0.589, "")),  # complete: the operating point's own threshold
    (("SBS96", "ID83"), (0.85, "no_reference")),  # exact pattern
    (("DBS78",), (0.589, "")),  # a pattern below the operating point never lowers it
    (("ID83", "ID12"), (0.67, "sbs96_only")),  # no exact one: the lowest of those that measured less
    (("ID83",), (0.67, "sbs96_only")),
    (("SBS96",), (0.85, "no_reference")),
    (("SBS96", "ID83", "ID12"), (float("inf"), UNVALIDATED)),  # no pattern measured as little: not typed
    (("SBS96", "SBS6", "ID83", "ID12"), (float("inf"), UNVALIDATED)),  # a DBS78 matrix alone
])
def test_pattern_threshold_rule(masked, expected):
    assert pattern_threshold(PATTERNS, frozenset(masked), 0.589) == pytest.approx(expected)
    assert pattern_threshold([], frozenset(masked), 0.589) == (0.589, "")


def _model_with_patterns(tmp_path, patterns: list[dict]) -> Path:
    seen = make_cohort(n_per_type=20, seed=4, tokens=False)
    folder = write_model_folder(tmp_path / "model", seen)
    calib = json.loads((folder / "calibration.json").read_text())
    calib["abstention"]["confidence_threshold"] = 0.01
    (folder / "calibration.json").write_text(json.dumps(calib | {"pattern_thresholds": patterns}))
    return folder


def test_predict_raises_the_threshold_for_tumours_that_measured_less(tmp_path):
    """Tumours without indels get the no-indel pattern's (impossible) threshold and abstain, saying why;
    complete tumours of the same cohort keep the operating point's threshold."""
    impossible = [{"name": "no_indels", "masked": ["ID83", "ID12"], "threshold": 1.01, "top1": 0.3,
                   "coverage": 0.0, "top1_accepted": 0.0}]
    folder = _model_with_patterns(tmp_path, impossible)
    adata, lacking = lacking_indels(seed=12)
    predict(adata, folder, PredictOptions(neighbours=0, exposures=False))
    thresholds = adata.obs["confidence_threshold"].to_numpy()
    np.testing.assert_allclose(thresholds[lacking], 1.01, rtol=1e-6)
    np.testing.assert_allclose(thresholds[~lacking], 0.01, rtol=1e-6)
    reasons = adata.obs["abstain_reason"].astype(str).to_numpy()
    assert all("the threshold for the sets this tumour measured" in r for r in reasons[lacking])
    assert not any("low confidence" in r for r in reasons[~lacking])
    record = adata.uns["nanog1_predict"]["pattern_thresholds"]
    assert record["no_indels"]["tumours"] == int(lacking.sum())
    assert record["no_indels"]["masked"] == ["ID83", "ID12"]
    line = operating_point_line(adata)
    told = f"1.010 for {lacking.sum()} tumour(s) without ID83+ID12 (validation top-1 0.30)"
    assert f"raised for tumours that measured fewer sets: {told}" in line


def test_tumours_that_measured_fewer_sets_under_a_higher_point_are_said_to_keep_it(tmp_path):
    """An operating point above a pattern's threshold (pcawg-catalogue's new-study 0.859 over the no-reference
    VCF pattern's 0.799) is not raised for those tumours, and the line said nothing of them: its rates,
    measured on complete catalogues, read as theirs (a QA run: 12 reference-free VCFs, new-study). The line
    names them, their pattern's own threshold and what it gave on validation tumours."""
    low = [{"name": "no_indels", "masked": ["ID83", "ID12"], "threshold": 0.005, "top1": 0.3,
            "coverage": 0.5, "top1_accepted": 0.9}]
    folder = _model_with_patterns(tmp_path, low)  # operating point 0.01
    adata, lacking = lacking_indels(seed=14)
    predict(adata, folder, PredictOptions(neighbours=0, exposures=False))
    np.testing.assert_allclose(adata.obs["confidence_threshold"].to_numpy(), 0.01, rtol=1e-6)
    line = operating_point_line(adata)
    assert "raised for" not in line.replace("not raised for", "")
    told = (f"not raised for {lacking.sum()} tumour(s) that measured fewer sets (without ID83+ID12: their "
            "pattern's threshold 0.005 is below this point's; validation top-1 0.30)")
    assert told in line, line
    complete = make_cohort(n_per_type=3, seed=15, tokens=False)
    predict(complete, folder, PredictOptions(neighbours=0, exposures=False))
    assert "fewer sets" not in operating_point_line(complete)


def test_model_without_pattern_thresholds_is_unchanged(tmp_path):
    """A calibration that stores none (run folders, models packaged before) applies one threshold to all."""
    folder = _model_with_patterns(tmp_path, [])
    adata = make_cohort(n_per_type=4, seed=13, tokens=False)
    adata.X[:, set_slice("DBS78")] = 0
    predict(adata, folder, PredictOptions(neighbours=0, exposures=False))
    assert (adata.obs["confidence_threshold"] == np.float32(0.01)).all()
    assert adata.uns["nanog1_predict"]["pattern_thresholds"] == {}


def test_as_measured_gives_the_record_a_reference_free_input_has():
    """The packaging's simulation of a pattern: counts zero and the sets not measured for every tumour."""
    from pattern_thresholds import as_measured

    from nanog1.schema import measured_sets_per_sample

    adata = make_cohort(n_per_type=3, seed=5, tokens=False)
    out = as_measured(adata, ("SBS96", "ID83"))
    measured = measured_sets_per_sample(out)
    expected = {"SBS96": False, "DBS78": True, "ID83": False, "SBS6": True, "ID12": True}
    assert measured.all().to_dict() == expected
    assert not measured.any().loc[["SBS96", "ID83"]].any()
    assert np.asarray(out.X)[:, set_slice("SBS96")].sum() == 0
    sbs6 = set_slice("SBS6")
    np.testing.assert_array_equal(np.asarray(out.X)[:, sbs6], np.asarray(adata.X)[:, sbs6])


def test_packaged_pcawg_model_stores_its_pattern_thresholds():
    """The shipped calibration holds a fitted threshold per pattern, at or above the in-study one for the
    inputs that measured less than the complete catalogues, and an SBS96 matrix alone gets its own."""
    from nanog1.encoder import pretrained
    from nanog1.encoder.calibration import load_calibration

    calib = load_calibration(pretrained.resolve("pcawg-catalogue"))
    base = calib["abstention"]["confidence_threshold"]
    fitted = {p["name"]: p for p in calib["pattern_thresholds"]}
    assert {"sbs96_only", "no_reference", "no_indels", "no_dbs"} <= set(fitted)
    assert fitted["no_reference"]["threshold"] > fitted["sbs96_only"]["threshold"] > base
    assert all(p["top1_accepted"] >= 0.9 or p["coverage"] < 0.01 for p in fitted.values())


def test_card_limit_names_the_weak_patterns_once():
    """A refit replaces the card's pattern limit instead of adding a second one."""
    from pattern_thresholds import PATTERN_LIMIT, card_with_patterns

    fitted = [{"name": "no_reference", "masked": ["SBS96", "ID83"], "threshold": 0.85, "n": 398, "top1": 0.61,
               "coverage": 0.23, "top1_accepted": 0.9},
              {"name": "no_dbs", "masked": ["DBS78"], "threshold": 0.6, "n": 398, "top1": 0.83,
               "coverage": 0.88, "top1_accepted": 0.9}]
    card = card_with_patterns(card_with_patterns({"limits": ["research use"]}, fitted), fitted)
    assert card["limits"][0] == "research use" and len(card["limits"]) == 2
    limit = card["limits"][1]
    assert limit.startswith(PATTERN_LIMIT) and "without SBS96+ID83 top-1 0.61" in limit
    assert "DBS78 top-1" not in limit  # a pattern typed well is no limit
    assert card["calibration_per_pattern"]["patterns"] == fitted


def test_fit_patterns_keys_each_pattern_by_the_sets_the_model_reads(tmp_path):
    """A model that reads SBS96/SBS6/DBS78 only: patterns are stored under the sets it reads (no reference
    -> SBS96), those masking none of them are skipped and duplicates kept once; each threshold reaches the
    target on the tumours it was fitted on, or keeps only the most confident (choose_threshold's fallback)."""
    from pattern_thresholds import fit_patterns

    cohort = make_cohort(n_per_type=12, seed=6, tokens=False)
    folder = write_model_folder(tmp_path / "m", cohort, reads=("SBS96", "SBS6", "DBS78"))
    classes = sorted(cohort.obs["cancer_type"].astype(str).unique())
    labels = np.array([classes.index(t) for t in cohort.obs["cancer_type"].astype(str)])
    fitted = fit_patterns(cohort, labels, folder, target=0.9)
    keys = [p["masked"] for p in fitted]
    assert ["DBS78"] in keys and ["SBS96"] in keys and ["SBS96", "DBS78"] in keys
    assert len(keys) == len({tuple(k) for k in keys}) and not any("ID83" in k or "ID12" in k for k in keys)
    for p in fitted:
        assert p["n"] == cohort.n_obs
        # reaches the target, or (none does) the top confidence: only the most confident tumour(s) kept
        assert p["top1_accepted"] >= 0.9 or p["coverage"] <= 2 / p["n"]


def test_shared_card_wording_is_pcawg_catalogues_and_takes_another_models():
    """pattern_thresholds.card_with_patterns' defaults are pcawg-catalogue's wording (genomes, --reference);
    tcga-exome's wording (tumours, its advice, where out-of-sample numbers are) replaces the genome-specific
    parts, and `weak_below` picks the patterns the limit names."""
    import pattern_thresholds

    fitted = [{"name": "no_indels", "masked": ["ID12"], "threshold": 0.8, "n": 1865, "top1": 0.45,
               "coverage": 0.1, "top1_accepted": 0.9},
              {"name": "no_dbs", "masked": ["DBS78"], "threshold": 0.7, "n": 1865, "top1": 0.52,
               "coverage": 0.2, "top1_accepted": 0.9}]
    card = {"limits": ["research use"]}
    genome = pattern_thresholds.card_with_patterns(dict(card), fitted)
    assert "1865 validation genomes" in genome["calibration_per_pattern"]["rule"]
    assert genome["limits"][-1].endswith("lacks SBS96 and ID83: give --reference")
    exome = pattern_thresholds.card_with_patterns(dict(card), fitted, tumours="tumours", weak_below=0.5,
                                                  advice="give --not-measured indels",
                                                  out_of_sample="in sample")
    limit = exome["limits"][-1]
    assert "without ID12 top-1 0.45 on validation tumours" in limit and "DBS78" not in limit
    assert limit.endswith(". give --not-measured indels") and "--reference" not in limit
    assert "1865 validation tumours" in exome["calibration_per_pattern"]["rule"]
    assert exome["calibration_per_pattern"]["rule"].endswith("in sample")


def test_fit_patterns_pools_cohorts_scored_one_by_one(tmp_path):
    """Two cohorts that cannot be one AnnData (tcga-exome's two sources) are scored apart and pooled: the
    same thresholds as the cohort scored whole; `base` records what the operating point alone gave."""
    from pattern_thresholds import fit_patterns

    cohort = make_cohort(n_per_type=8, seed=7, tokens=False)
    folder = write_model_folder(tmp_path / "m", cohort, reads=("SBS96", "SBS6", "DBS78"))
    classes = sorted(cohort.obs["cancer_type"].astype(str).unique())
    labels = np.array([classes.index(t) for t in cohort.obs["cancer_type"].astype(str)])
    half = cohort.n_obs // 2
    whole = fit_patterns(cohort, labels, folder, base=0.5)
    parts = fit_patterns([cohort[:half].copy(), cohort[half:].copy()], labels, folder, base=0.5)
    assert [p["masked"] for p in parts] == [p["masked"] for p in whole]
    for a, b in zip(parts, whole, strict=True):
        numbers = [k for k in b if k not in ("name", "masked")]
        assert a["name"] == b["name"] and set(a) == set(b)
        assert [a[k] for k in numbers] == pytest.approx([b[k] for k in numbers], nan_ok=True)
        assert 0 <= a["coverage_at_base"] <= 1 and a["n"] == cohort.n_obs


@pytest.mark.parametrize(("name", "masked", "key", "expected"), [
    ("sbs96_only", ("DBS78", "ID83", "ID12"), ["DBS78", "ID83", "ID12"], "sbs96_only"),  # reads them all
    ("sbs96_only", ("DBS78", "ID83", "ID12"), ["DBS78", "ID12"], "no_dbs_indels"),  # tcga-exome: no ID83
    ("no_indels", ("ID83", "ID12"), ["ID12"], "no_indels"),
    ("no_reference", ("SBS96", "ID83"), ["SBS96"], "no_sbs96"),
])
def test_a_pattern_is_named_by_the_sets_the_model_reads(name, masked, key, expected):
    """A pattern whose sets the model partly never reads is named by those it does (never 'sbs96_only' for
    a model without SBS96)."""
    from pattern_thresholds import pattern_name

    assert pattern_name(name, masked, key) == expected


def test_a_tumour_no_pattern_covers_is_not_typed_and_says_which_sets_it_measured(tmp_path):
    """A DBS78-only tumour (the QA case: SigProfilerAssignment's DBS matrix) against a model whose patterns
    all keep substitutions: not typed, the reason names what it measured; complete tumours unaffected."""
    import pandas as pd

    from nanog1.encoder.predictor import reason_counts
    from nanog1.genomics.channels import EXACT, PARTIAL

    folder = _model_with_patterns(tmp_path, [{"name": "no_dbs", "masked": ["DBS78"], "threshold": 0.02}])
    adata = make_cohort(n_per_type=4, seed=14, tokens=False)
    only_dbs = np.arange(adata.n_obs) % 3 == 0
    adata.uns["nanog1"] = {"channel_sets": {s: PARTIAL for s in ("SBS96", "ID83")} | {"DBS78": EXACT}}
    sets = {"SBS96": ~only_dbs, "DBS78": True, "ID83": ~only_dbs, "SBS6": ~only_dbs, "ID12": ~only_dbs}
    adata.obsm["measured_sets"] = pd.DataFrame(sets, index=adata.obs_names)
    predict(adata, folder, PredictOptions(neighbours=0, exposures=False))
    reasons = adata.obs["abstain_reason"].astype(str).to_numpy()
    assert all(r.startswith("measured sets not validated (DBS78 only)") for r in reasons[only_dbs])
    assert not any("not validated" in r for r in reasons[~only_dbs])
    assert (adata.obs["predicted_type"].astype(str).to_numpy()[only_dbs] == "uncertain").all()
    assert adata.uns["nanog1_predict"]["pattern_thresholds"][UNVALIDATED] == {"tumours": int(only_dbs.sum())}
    assert reason_counts(reasons)["measured sets not validated"] == int(only_dbs.sum())
    assert f"; {only_dbs.sum()} tumour(s) not typed: the sets they measured were never validated" in \
        operating_point_line(adata)


def test_confidence_just_under_its_threshold_is_printed_apart():
    from nanog1.encoder.predictor import _below

    assert _below(0.34, 0.847) == "0.34 < 0.85"
    assert _below(0.9855, 0.9887) == "0.986 < 0.989"
