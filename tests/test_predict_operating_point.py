"""`nanog1 predict --operating-point in-study|new-study` (issue 31: abstention that means something on new
studies): which tumours abstain follows the chosen threshold exactly, models without the new key keep
working, the packaged model carries both points with what they gave on other studies."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from nanog1.encoder.abstention import operating_point
from nanog1.encoder.predictor import PredictOptions, predict
from nanog1.errors import UserError
from tests.predict_models import write_model_folder
from tests.training_cohort import make_cohort

FAST = PredictOptions(neighbours=0, exposures=False)


@pytest.fixture(scope="module")
def cohort():
    return make_cohort(n_per_type=12, seed=21, tokens=False)


@pytest.fixture(scope="module")
def old_model(tmp_path_factory, cohort):
    """A model folder whose calibration.json predates operating points (threshold 0: none low-confidence)."""
    return write_model_folder(tmp_path_factory.mktemp("old_model"), cohort)


def _with_new_study(old, tmp_path, threshold: float):
    """A copy of `old` whose calibration.json stores a new-study operating point at `threshold`."""
    import shutil

    folder = tmp_path / "with_points"
    shutil.copytree(old, folder)
    calib = json.loads((folder / "calibration.json").read_text())
    calib["operating_points"] = {
        "in_study": {"threshold": 0.0, "fitted_on": "validation", "transfer": {
            "leave_one_study_out": {"coverage": 0.78, "top1_accepted": 0.80, "n": 100}}},
        "new_study": {"threshold": threshold, "fitted_on": "other studies", "transfer": {
            "leave_one_study_out_nested": {"coverage": 0.52, "top1_accepted": 0.90, "n": 100}}},
    }
    (folder / "calibration.json").write_text(json.dumps(calib))
    return folder


def test_new_study_point_abstains_exactly_below_its_threshold(old_model, cohort, tmp_path):
    base = predict(cohort, old_model, FAST, copy=True)
    conf = base.obs["type_confidence"].to_numpy()
    assert not base.obs["abstain_reason"].astype(str).str.contains("low confidence").any()
    values = np.unique(np.round(conf, 6))
    threshold = float((values[len(values) // 2 - 1] + values[len(values) // 2]) / 2)  # splits the cohort
    model = _with_new_study(old_model, tmp_path, threshold)
    ins = predict(cohort, model, FAST, copy=True)
    new = predict(cohort, model, PredictOptions(neighbours=0, exposures=False, operating_point="new-study"),
                  copy=True)
    low_in = ins.obs["abstain_reason"].astype(str).str.contains("low confidence").to_numpy()
    low_new = new.obs["abstain_reason"].astype(str).str.contains("low confidence").to_numpy()
    assert not low_in.any()  # in-study (the default) is unchanged by the new key
    np.testing.assert_array_equal(low_new, new.obs["type_confidence"].to_numpy() < threshold)
    assert 0 < low_new.sum() < cohort.n_obs
    assert (new.obs["predicted_type"].astype(str)[low_new] == "uncertain").all()
    record = new.uns["nanog1_predict"]
    assert record["operating_point"] == "new-study"
    assert record["confidence_threshold"] == pytest.approx(threshold)
    assert record["operating_point_transfer"]["leave_one_study_out_nested"]["top1_accepted"] == 0.90
    assert ins.uns["nanog1_predict"]["operating_point"] == "in-study"


def test_old_calibration_loads_and_has_the_in_study_point_only(old_model, cohort):
    calib = json.loads((old_model / "calibration.json").read_text())
    assert "operating_points" not in calib
    point = operating_point(calib, "in-study")
    assert point["threshold"] == 0.0 and point["transfer"] == {}
    with pytest.raises(UserError, match="no new-study operating point"):
        predict(cohort, old_model, PredictOptions(neighbours=0, exposures=False, operating_point="new-study"),
                copy=True)
    with pytest.raises(UserError, match="choose in-study or new-study"):
        operating_point(calib, "newstudy")


def test_cli_states_the_point_used_and_refuses_one_the_model_lacks(old_model, cohort, tmp_path, monkeypatch):
    from nanog1.cli import app

    monkeypatch.setenv("COLUMNS", "300")  # rich sizes --help by COLUMNS, not CliRunner's terminal_width

    cohort[:3].copy().write_h5ad(tmp_path / "c.h5ad")  # three tumours: three one-page reports
    model = _with_new_study(old_model, tmp_path, 0.99)
    runner = CliRunner()
    res = runner.invoke(app, ["predict", str(tmp_path / "c.h5ad"), "--model", str(model), "--out",
                              str(tmp_path / "o"), "--no-exposures", "--operating-point", "new-study"])
    assert res.exit_code == 0, res.output
    assert "operating point new-study: confidence threshold 0.990" in res.output
    assert "leave one study out nested 52% accepted at 0.90 top-1" in res.output
    doc = json.loads((tmp_path / "o" / "predictions.json").read_text())
    assert doc["model"]["operating_point"] == "new-study"
    report = next((tmp_path / "o").glob("*.report.md")).read_text()
    assert "Abstention: operating point new-study" in report
    res = runner.invoke(app, ["predict", str(tmp_path / "c.h5ad"), "--model", str(old_model), "--out",
                              str(tmp_path / "o2"), "--no-exposures", "--operating-point", "new-study"])
    assert res.exit_code != 0 and "no new-study operating point" in res.output
    assert not (tmp_path / "o2").exists()  # refused before any input was read or output written
    helptext = runner.invoke(app, ["predict", "--help"]).output
    assert "--operating-point" in helptext and "new-study" in helptext and "in-study" in helptext


def test_packaged_model_carries_both_points_with_their_transfer_numbers():
    from nanog1.encoder.predictor import load_predictor

    calib = load_predictor("pcawg-catalogue").calibration
    ins, new = operating_point(calib, "in-study"), operating_point(calib, "new-study")
    assert ins["threshold"] == pytest.approx(calib["abstention"]["confidence_threshold"])
    assert new["threshold"] > ins["threshold"]
    # the new-study point reaches 0.90 on other studies, the in-study one does not (BENCHMARKS, issue 31)
    assert new["transfer"]["leave_one_study_out_nested"]["top1_accepted"] >= 0.88
    assert ins["transfer"]["leave_one_study_out"]["top1_accepted"] < 0.85
    assert new["transfer"]["leave_one_study_out_nested"]["coverage"] < ins["transfer"]["leave_one_study_out"][
        "coverage"]
