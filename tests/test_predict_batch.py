"""`nanog1 predict` on a lab's whole batch (issue 31, QA at cohort scale): a run of a thousand VCFs takes
minutes, so each step says when it is done (and a bar moves over the files on a terminal)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nanog1 import progress
from nanog1.cli import app
from tests.predict_models import write_model_folder
from tests.test_predict_on_error import corrupt_batch
from tests.training_cohort import make_cohort


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A small random-weight model folder (tests.predict_models): the typing itself is not under test."""
    cohort = make_cohort(n_per_type=10, seed=4, tokens=False)
    return write_model_folder(tmp_path_factory.mktemp("predict_model"), cohort)


@pytest.fixture(scope="module")
def batch(tmp_path_factory) -> Path:
    return corrupt_batch(tmp_path_factory.mktemp("batch"))


def _predict(run_dir: Path, inputs: list[Path], out: Path, *options: str):
    args = [*options, "predict", *map(str, inputs), "--model", str(run_dir), "-o", str(out), "--no-exposures",
            "--neighbours", "0", "--no-reports"]
    return CliRunner().invoke(app, args)


def test_each_step_of_a_batch_says_when_it_is_done(run_dir, batch, tmp_path, monkeypatch):
    monkeypatch.setenv(progress.QUIET_ENV, "0")
    res = _predict(run_dir, [batch / "P1.vcf", batch / "P2.vcf"], tmp_path / "o")
    assert res.exit_code == 0, res.output
    assert re.search(r"^predict: read 2 input\(s\)  tumours 2  \(\d+\.\d s\)$", res.stderr, re.M), res.stderr
    assert re.search(r"^predict: typed 2 tumour\(s\) with \S+  \(\d+\.\d s\)$", res.stderr, re.M), res.stderr
    assert re.search(rf"^predict: wrote {re.escape(str(tmp_path / 'o'))}  \(", res.stderr, re.M), res.stderr
    assert "\r" not in res.stderr  # no bar in a log
    quiet = _predict(run_dir, [batch / "P1.vcf"], tmp_path / "q", "--quiet")
    assert quiet.exit_code == 0 and "predict:" not in quiet.stderr, quiet.stderr


def test_on_a_terminal_a_bar_moves_over_the_files(run_dir, batch, tmp_path, monkeypatch):
    monkeypatch.setattr(progress, "terminal", lambda: True)
    monkeypatch.setenv(progress.QUIET_ENV, "0")
    res = _predict(run_dir, [batch / "P1.vcf", batch / "P2.vcf"], tmp_path / "o")
    assert res.exit_code == 0, res.output
    assert re.search(r"ingest: +\d+%.*\d/2 \[", res.stderr), res.stderr
