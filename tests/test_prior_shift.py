"""`nanog1 predict --adapt-priors` (issue 31, label shift): Saerens et al.'s EM recovers a known shifted type
mix from calibrated posteriors and barely moves on a batch with the training mix; damping moves a batch
less; a model without a record, a record for other types or weights, and too small a batch are refused;
predict writes the estimated mix; the packaged record fits the packaged model."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from nanog1.encoder.predictor import PredictOptions, predict
from nanog1.encoder.prior_shift import (
    NOT_REFITTED,
    NOT_REFITTED_WHY,
    adapt_batch,
    adapted_point,
    em_adapt,
    load_record,
    mix_line,
    with_bias,
)
from nanog1.errors import UserError
from nanog1.io import file_sha256
from tests.predict_models import add_prior_record, lacking_indels, write_model_folder
from tests.training_cohort import make_cohort

FAST = PredictOptions(neighbours=0, exposures=False)


def _calibrated(prior: np.ndarray, mix: np.ndarray, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(posteriors calibrated under `prior`, labels) of n tumours drawn with type mix `mix`: three types,
    unit-variance Gaussian scores at -2, 0, 2, so the exact posterior is known."""
    rng = np.random.default_rng(seed)
    y = rng.choice(len(mix), size=n, p=mix)
    x = rng.normal(np.array([-2.0, 0.0, 2.0])[y], 1.0)
    like = np.exp(-0.5 * (x[:, None] - np.array([-2.0, 0.0, 2.0])[None, :]) ** 2)
    post = like * prior
    return post / post.sum(1, keepdims=True), y


def test_em_recovers_a_shifted_mix_and_raises_accuracy():
    prior, mix = np.array([1 / 3, 1 / 3, 1 / 3]), np.array([0.7, 0.2, 0.1])
    p, y = _calibrated(prior, mix, 4000, 0)
    adapted, q, iterations = em_adapt(p, prior)
    assert 0.5 * np.abs(q - mix).sum() < 0.03  # the unlabelled batch's mix, found
    assert 0.5 * np.abs(prior - mix).sum() > 0.3
    assert (adapted.argmax(1) == y).mean() > (p.argmax(1) == y).mean() + 0.01
    assert np.allclose(adapted.sum(1), 1.0) and 1 < iterations < 1000


def test_em_barely_moves_a_batch_with_the_training_mix():
    prior = np.array([0.5, 0.3, 0.2])
    p, _ = _calibrated(prior, prior, 4000, 1)
    _, q, _ = em_adapt(p, prior)
    assert 0.5 * np.abs(q - prior).sum() < 0.03


def test_damping_moves_a_small_batch_less_and_infinity_not_at_all():
    prior, mix = np.array([1 / 3, 1 / 3, 1 / 3]), np.array([0.8, 0.1, 0.1])
    p, _ = _calibrated(prior, mix, 20, 2)
    moved = [0.5 * np.abs(em_adapt(p, prior, a)[1] - prior).sum() for a in (0.0, 5.0, 50.0)]
    assert moved[0] > moved[1] > moved[2] > 0
    same, q, it = em_adapt(p, prior, float("inf"))
    np.testing.assert_allclose(same, p)
    np.testing.assert_allclose(q, prior)
    assert it == 0


def test_bias_shifts_log_probabilities_per_type():
    p = np.array([[0.5, 0.3, 0.2], [0.1, 0.1, 0.8]])
    out = with_bias(p, np.log([1.0, 2.0, 1.0]))
    expected = p * [1.0, 2.0, 1.0]
    np.testing.assert_allclose(out, expected / expected.sum(1, keepdims=True))


@pytest.fixture(scope="module")
def cohort():
    return make_cohort(n_per_type=12, seed=21, tokens=False)


@pytest.fixture(scope="module")
def model(tmp_path_factory, cohort):
    """A test model folder whose calibration.json carries a prior-adaptation record (min 10 tumours)."""
    return add_prior_record(write_model_folder(tmp_path_factory.mktemp("prior_model"), cohort), cohort)


def test_mix_line_names_the_largest_shares_whatever_the_key_order():
    done = {"estimated_type_mix": {"A": 0.1, "B": 0.7, "C": 0.2}, "tumours": 12, "top_type_changed": 3}
    assert mix_line(done, 2) == ("priors adapted to this batch of 12 (estimated type mix: B 70 %, C 20 %; "
                                 f"top type changed for 3); {NOT_REFITTED}")


def test_mix_line_names_the_abstention_threshold_that_applied():
    """The closing line of `predict --adapt-priors` says which threshold applied, by its value: 'the
    abstention threshold is not refitted' alone left a reader to find it on another line, and tumours that
    measured fewer sets were held to another one (raised per measured pattern)."""
    done = {"estimated_type_mix": {"A": 0.6, "B": 0.4}, "tumours": 12, "top_type_changed": 0,
            "threshold_refitted": False, "confidence_threshold": 0.5888}
    assert "abstention threshold 0.589 (the operating point's)" in mix_line(done)  # a record without its name
    done["operating_point"] = "in-study"
    line = mix_line(done)
    assert f"abstention threshold 0.589 (in-study, the model's), {NOT_REFITTED_WHY}" in line
    assert line.count("abstention threshold") == 1, line
    done["thresholds_raised"] = {"threshold": [0.7989], "tumours": [12]}
    assert ("abstention threshold 0.589 (in-study, the model's; 0.799 for 12 tumour(s) that measured fewer "
            "sets)") in mix_line(done)
    done |= {"threshold_refitted": True, "confidence_threshold": 0.8592, "thresholds_raised": {}}
    assert "abstention threshold 0.859, fitted for adapted output" in mix_line(done)
    assert "fewer sets" not in mix_line(done)


def test_predict_adapts_and_records_the_estimated_mix(model, cohort):
    base = predict(cohort, model, FAST, copy=True)
    out = predict(cohort, model, PredictOptions(neighbours=0, exposures=False, adapt_priors=True), copy=True)
    done = out.uns["nanog1_predict"]["prior_adaptation"]
    assert base.uns["nanog1_predict"]["prior_adaptation"] == {"applied": False}
    assert done["tumours"] == cohort.n_obs and done["alpha"] == 5.0
    assert sum(done["estimated_type_mix"].values()) == pytest.approx(1.0, abs=1e-3)
    # what predict stores is exactly the EM of the un-adapted probabilities with the record's settings
    p = base.obsm["proba_type"].to_numpy(dtype=np.float64)
    k = p.shape[1]
    expected, q, _ = em_adapt(p, np.full(k, 1.0 / k), 5.0)
    np.testing.assert_allclose(out.obsm["proba_type"].to_numpy(), expected, atol=1e-5)
    classes = list(base.obsm["proba_type"].columns)
    assert done["estimated_type_mix"][classes[int(q.argmax())]] == pytest.approx(q.max(), abs=1e-4)
    assert not np.allclose(out.obsm["proba_type"].to_numpy(), p, atol=1e-4)


def test_too_small_a_batch_and_a_model_without_a_record_are_refused(model, cohort, tmp_path):
    with pytest.raises(UserError, match="at least 10 tumours \\(got 9\\)"):
        predict(cohort[:9].copy(), model, PredictOptions(neighbours=0, exposures=False, adapt_priors=True))
    bare = write_model_folder(tmp_path / "bare", cohort)
    with pytest.raises(UserError, match="no prior-adaptation record"):
        predict(cohort, bare, PredictOptions(neighbours=0, exposures=False, adapt_priors=True), copy=True)
    calib = json.loads((model / "calibration.json").read_text())
    record = calib["prior_adaptation"] | {"classes": ["A", "B"]}
    with pytest.raises(UserError, match="types differ"):
        load_record("m", model, {"prior_adaptation": record}, calib["prior_adaptation"]["classes"])
    with pytest.raises(UserError, match="one value per type"):
        load_record("m", model, {"prior_adaptation": calib["prior_adaptation"] | {"bias": [0.0]}},
                    calib["prior_adaptation"]["classes"])
    with pytest.raises(UserError, match="at least 10 tumours \\(got 3\\)"):
        adapt_batch(np.full((3, 2), 0.5), calib["prior_adaptation"], ["A", "B"])


def test_a_record_for_other_weights_is_refused(tmp_path, cohort):
    folder = write_model_folder(tmp_path / "m", cohort)
    classes = sorted(cohort.obs["cancer_type"].astype(str).unique())
    k = len(classes)
    rec = {"classes": classes, "bias": [0.0] * k, "training_prior": [1.0 / k] * k, "min_tumours": 10,
           "model_sha256": "0" * 64}
    with pytest.raises(UserError, match="fitted for another model.pt"):
        load_record("m", folder, {"prior_adaptation": rec}, classes)
    rec["model_sha256"] = file_sha256(folder / "model.pt")
    assert load_record("m", folder, {"prior_adaptation": rec}, classes)["min_tumours"] == 10


def test_packaged_record_fits_the_packaged_model():
    from nanog1.encoder import pretrained
    from nanog1.encoder.calibration import load_calibration

    folder = pretrained.resolve("pcawg-catalogue")
    classes = list(pretrained.card(folder)["classes"])
    calibration = load_calibration(folder)
    record = load_record("pcawg-catalogue", folder, calibration, classes)  # checksum and types checked
    assert record["model_sha256"] == file_sha256(folder / "model.pt")
    assert record["min_tumours"] >= 10 and record["alpha"] > 0
    assert sum(record["training_prior"]) == pytest.approx(1.0, abs=1e-4)
    point = record["operating_points"]["new_study"]  # the threshold fitted for adapted output
    assert 0.5 < point["threshold"] < 1.0 and point["transfer"]["leave_one_study_out_nested"]["n"] == 1834
    card = pretrained.card(folder)["prior_adaptation"]["metrics"]["transfer_12_projects_one_cohort"]
    assert card["adapted"]["top1"] > card["shipped"]["top1"]  # the card states what the option measured


def test_cli_writes_the_mix_and_refuses_a_model_without_a_record(model, cohort, tmp_path, monkeypatch):
    from nanog1.cli import app

    monkeypatch.setenv("COLUMNS", "300")
    cohort[:12].copy().write_h5ad(tmp_path / "c.h5ad")  # 12 tumours: over the minimum, 12 reports
    runner = CliRunner()
    res = runner.invoke(app, ["predict", str(tmp_path / "c.h5ad"), "--model", str(model), "--out",
                              str(tmp_path / "o"), "--no-exposures", "--neighbours", "0", "--adapt-priors"])
    assert res.exit_code == 0, res.output
    assert "priors adapted to this batch of 12" in res.output
    doc = json.loads((tmp_path / "o" / "predictions.json").read_text())
    assert doc["model"]["prior_adaptation"]["tumours"] == 12
    report = next((tmp_path / "o").glob("*.report.md")).read_text()
    assert "Probabilities: priors adapted to this batch of 12" in report
    bare = tmp_path / "bare"
    shutil.copytree(model, bare)
    calib = json.loads((bare / "calibration.json").read_text())
    del calib["prior_adaptation"]
    (bare / "calibration.json").write_text(json.dumps(calib))
    res = runner.invoke(app, ["predict", str(tmp_path / "c.h5ad"), "--model", str(bare), "--out",
                              str(tmp_path / "o2"), "--no-exposures", "--adapt-priors"])
    assert res.exit_code != 0 and "no prior-adaptation record" in res.output
    assert not (tmp_path / "o2").exists()
    assert "--adapt-priors" in runner.invoke(app, ["predict", "--help"]).output


def test_adapted_point_takes_the_record_s_new_study_point_only():
    point = {"name": "new-study", "threshold": 0.86, "fitted_on": "unadapted", "transfer": {"a": 1}}
    stored = {"threshold": 0.7, "fitted_on": "adapted batches", "transfer": {"loso": {"coverage": 0.8}}}
    record = {"operating_points": {"new_study": stored}}
    got, refitted = adapted_point(point, record)
    assert refitted and got == {"name": "new-study", "threshold": 0.7, "fitted_on": "adapted batches",
                                "transfer": {"loso": {"coverage": 0.8}}}
    in_study = {**point, "name": "in-study"}
    assert adapted_point(in_study, record) == (in_study, False)  # not refitted: the model's own
    assert adapted_point(point, {}) == (point, False)  # a record without one keeps the model's point


def _with_adapted_point(model, tmp_path, unadapted: float, adapted: float):
    """A copy of `model` with a new-study point for unadapted output at `unadapted` (calibration.json's
    operating_points) and one for adapted output at `adapted` (its prior-adaptation record's)."""
    folder = tmp_path / "points"
    shutil.copytree(model, folder)
    calib = json.loads((folder / "calibration.json").read_text())
    calib["operating_points"] = {"new_study": {"threshold": unadapted, "fitted_on": "unadapted",
                                               "transfer": {}}}
    calib["prior_adaptation"]["operating_points"] = {"new_study": {
        "threshold": adapted, "fitted_on": "adapted batches",
        "transfer": {"leave_one_study_out_nested": {"coverage": 0.81, "top1_accepted": 0.92, "n": 1834}}}}
    (folder / "calibration.json").write_text(json.dumps(calib))
    return folder


def test_new_study_with_adapted_priors_abstains_below_the_threshold_fitted_for_adapted_output(
        model, cohort, tmp_path):
    adapt = PredictOptions(neighbours=0, exposures=False, adapt_priors=True)
    conf = predict(cohort, model, adapt, copy=True).obs["type_confidence"].to_numpy()
    values = np.unique(np.round(conf, 6))
    split = float((values[len(values) // 2 - 1] + values[len(values) // 2]) / 2)  # splits the batch
    folder = _with_adapted_point(model, tmp_path, unadapted=0.0, adapted=split)
    new = predict(cohort, folder, PredictOptions(neighbours=0, exposures=False, adapt_priors=True,
                                                 operating_point="new-study"), copy=True)
    low = new.obs["abstain_reason"].astype(str).str.contains("low confidence").to_numpy()
    np.testing.assert_array_equal(low, new.obs["type_confidence"].to_numpy() < split)
    assert 0 < low.sum() < cohort.n_obs
    record = new.uns["nanog1_predict"]
    assert record["confidence_threshold"] == pytest.approx(split)
    assert record["operating_point_fitted_on"] == "adapted batches"
    assert record["operating_point_transfer"]["leave_one_study_out_nested"]["top1_accepted"] == 0.92
    done = record["prior_adaptation"]
    assert done["threshold_refitted"] and "fitted for adapted output" in mix_line(done)
    # in-study with adapted priors: the model's own threshold (0 here, none low), said to be not refitted
    ins = predict(cohort, folder, adapt, copy=True)
    assert not ins.obs["abstain_reason"].astype(str).str.contains("low confidence").any()
    line = mix_line(ins.uns["nanog1_predict"]["prior_adaptation"])
    assert NOT_REFITTED_WHY in line and "--operating-point new-study has one fitted for it" in line
    threshold = float(ins.uns["nanog1_predict"]["confidence_threshold"])
    assert f"abstention threshold {threshold:.3f} (in-study, the model's)" in line
    # without adaptation the new-study point is calibration.json's (0 here): the record's is for adapted ones
    plain = predict(cohort, folder, PredictOptions(neighbours=0, exposures=False,
                                                   operating_point="new-study"), copy=True)
    assert plain.uns["nanog1_predict"]["confidence_threshold"] == 0.0


def test_adapted_batch_records_the_thresholds_raised_for_tumours_that_measured_fewer_sets(model, tmp_path):
    """predict --adapt-priors (in-study) on a batch where half the tumours measured no indels, with a model
    whose no-indel pattern threshold is above the operating point's: the closing line names both thresholds
    and how many tumours each applied to."""
    folder = tmp_path / "patterns"
    shutil.copytree(model, folder)
    calib = json.loads((folder / "calibration.json").read_text())
    calib["pattern_thresholds"] = [{"name": "no_indels", "masked": ["ID83", "ID12"], "threshold": 0.995}]
    (folder / "calibration.json").write_text(json.dumps(calib))
    batch, lacking = lacking_indels(seed=31, without=None)
    predict(batch, folder, PredictOptions(neighbours=0, exposures=False, adapt_priors=True))
    record = batch.uns["nanog1_predict"]
    base = float(record["confidence_threshold"])
    line = mix_line(record["prior_adaptation"])
    said = f"abstention threshold {base:.3f} (in-study, the model's; 0.995 for {lacking.sum()} tumour(s)"
    assert said in line, line
