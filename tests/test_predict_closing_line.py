"""`nanog1 predict`'s closing line adds up as a user reads it: abstention reasons that overlap say so, and
per-tumour reports left out by default (a batch over REPORT_LIMIT) are said to be left out."""

from __future__ import annotations

import os

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from nanog1.cli import app
from nanog1.encoder.predict_notes import summary_line
from nanog1.encoder.predict_report import REPORT_LIMIT
from nanog1.encoder.predictor import reason_counts
from tests.predict_models import write_model_folder
from tests.training_cohort import make_cohort


def test_abstention_reasons_that_overlap_are_counted_as_such():
    """A tumour both low-confidence and out of distribution counts under each reason: the line must say
    how many did, or '94 abstained (low confidence 89, out of distribution 12)' seems not to add up."""
    both = "low confidence (0.35 < 0.68); out of distribution (profile distance 21.6 > 19.0)"
    reasons = np.array(["", both, "low confidence (0.50 < 0.68)", "out of distribution (22.1 > 19.0)"])
    adata = ad.AnnData(np.zeros((4, 1)), obs=pd.DataFrame(index=[f"T{i}" for i in range(4)]))
    record = {"abstained_by_reason": reason_counts(reasons), "protein_change_mismatch": ""}
    adata.uns["nanog1_predict"] = record
    table = pd.DataFrame({"abstain": reasons != "", "abstain_reason": reasons}, index=adata.obs_names)
    line = summary_line(adata, table)
    assert "3 abstained (low confidence 2, out of distribution 2; 1 of them for more than one reason)" in line
    table["abstain_reason"] = np.array(["", "low confidence (0.35 < 0.68)", "low confidence (0.5 < 0.68)",
                                        "out of distribution (profile distance 22.1 > 19.0)"])
    adata.uns["nanog1_predict"]["abstained_by_reason"] = reason_counts(table["abstain_reason"].to_numpy())
    assert "more than one reason" not in summary_line(adata, table)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    cohort = make_cohort(n_per_type=20, seed=4, tokens=False)
    return write_model_folder(tmp_path_factory.mktemp("predict_model"), cohort)


def test_reports_left_out_by_default_are_said_to_be(run_dir, tmp_path):
    big = make_cohort(n_per_type=REPORT_LIMIT // 3 + 1, seed=11, tokens=False)
    assert big.n_obs > REPORT_LIMIT
    big.write_h5ad(tmp_path / "c.h5ad")
    options = ["--model", str(run_dir), "--no-exposures", "--neighbours", "0"]
    res = CliRunner().invoke(app, ["predict", str(tmp_path / "c.h5ad"), *options, "-o", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    assert not list((tmp_path / "o").glob("*.report.md"))
    said = f"no per-tumour reports ({big.n_obs} tumours, over {REPORT_LIMIT}: --reports writes them)"
    assert f"; wrote {tmp_path / 'o'}/: predictions.tsv, predictions.json; {said}" in res.output, res.output
    small = make_cohort(n_per_type=3, seed=12, tokens=False)
    small.write_h5ad(tmp_path / "s.h5ad")
    res = CliRunner().invoke(app, ["predict", str(tmp_path / "s.h5ad"), *options, "-o", str(tmp_path / "o3")])
    assert res.exit_code == 0 and "no per-tumour reports" not in res.output
    assert len(list((tmp_path / "o3").glob("*.report.md"))) == small.n_obs


def test_the_closing_line_names_every_output_it_wrote(run_dir, tmp_path):
    """'wrote o/predictions.tsv' named one file of those written: predictions.json and a report per tumour
    (.report.md and its .spectrum.png) went unnoticed. The line names each, the reports counted as they lie
    in the folder; with --no-reports, the two tables alone."""
    small = make_cohort(n_per_type=2, seed=15, tokens=False)
    small.write_h5ad(tmp_path / "s.h5ad")
    options = ["--model", str(run_dir), "--no-exposures", "--neighbours", "0"]
    out = tmp_path / "o"
    res = CliRunner().invoke(app, ["predict", str(tmp_path / "s.h5ad"), *options, "-o", str(out)])
    assert res.exit_code == 0, res.output
    reports = len(list(out.glob("*.report.md")))
    assert reports == small.n_obs == len(list(out.glob("*.spectrum.png"))), sorted(os.listdir(out))
    said = f"; wrote {out}/: predictions.tsv, predictions.json, {reports} tumour reports (.report.md and " \
           ".spectrum.png)\n"
    assert said in res.output, res.output
    res = CliRunner().invoke(app, ["predict", str(tmp_path / "s.h5ad"), *options, "--no-reports", "-o",
                                   str(tmp_path / "o2")])
    assert res.exit_code == 0 and f"; wrote {tmp_path / 'o2'}/: predictions.tsv, predictions.json\n" \
        in res.output, res.output


def test_a_table_cut_short_on_the_terminal_says_so(run_dir, tmp_path):
    """The terminal shows the first rows of the predictions only: a batch longer than that must say how many
    it shows and where the rest are, or a reader looking for a tumour takes it as missing."""
    from nanog1.cli import PREDICT_ROWS_SHOWN

    options = ["--model", str(run_dir), "--no-exposures", "--neighbours", "0", "--no-reports"]
    big = make_cohort(n_per_type=PREDICT_ROWS_SHOWN // 4 + 1, seed=13, tokens=False)
    assert big.n_obs > PREDICT_ROWS_SHOWN
    big.write_h5ad(tmp_path / "b.h5ad")
    res = CliRunner().invoke(app, ["predict", str(tmp_path / "b.h5ad"), *options, "-o", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    said = f"the first {PREDICT_ROWS_SHOWN} of {big.n_obs} tumours shown; all in {tmp_path / 'o'}/"
    assert said in res.output
    assert big.obs_names[PREDICT_ROWS_SHOWN] not in res.output  # the rows past the cut are not shown
    small = make_cohort(n_per_type=PREDICT_ROWS_SHOWN // 4 - 1, seed=14, tokens=False)
    small.write_h5ad(tmp_path / "s.h5ad")
    res = CliRunner().invoke(app, ["predict", str(tmp_path / "s.h5ad"), *options, "-o", str(tmp_path / "o2")])
    assert res.exit_code == 0 and "tumours shown" not in res.output
    assert all(name in res.output for name in small.obs_names)
