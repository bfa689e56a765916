"""Progress on long steps: a line per epoch, per baseline model, per fitted channel set, per evaluate step;
no terminal bars in logs; NANOG1_QUIET silences it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from training_cohort import SMALL_TRAIN_ARGS as SMALL
from training_cohort import make_cohort
from typer.testing import CliRunner

from nanog1 import progress
from nanog1.cli import app
from nanog1.genomics.cohort import write_cohort


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> Path:
    return write_cohort(make_cohort(n_per_type=6), tmp_path_factory.mktemp("progress") / "c.h5ad")


def test_epoch_line_and_step_report(capsys, monkeypatch):
    row = {"train_loss": 1.23456, "val_loss": 0.5, "val_top1": 0.75, "lr": 0.1, "epoch_seconds": 2.04}
    line = progress.epoch_line(2, 12, row)
    assert line == "epoch 3/12  train_loss 1.235  val_loss 0.5  val_top1 0.75  (2.0 s)"
    with progress.step("fit: SBS96") as shown:
        shown["median_cosine"] = 0.97
    assert re.fullmatch(r"fit: SBS96  median_cosine 0\.97  \(\d+\.\d s\)\n", capsys.readouterr().err)
    assert progress.bar([1, 2], "x") == [1, 2]  # captured stderr is no terminal: no bar, the plain items
    assert not progress.shows_bars()  # ingest's bar follows the same rule
    monkeypatch.setattr(progress, "terminal", lambda: True)
    assert progress.shows_bars()
    monkeypatch.setenv(progress.QUIET_ENV, "1")
    progress.report("hidden")
    assert capsys.readouterr().err == "" and not progress.shows_bars()


def test_train_evaluate_and_signature_fit_report_each_step(cohort: Path, tmp_path: Path):
    runner = CliRunner()
    run = tmp_path / "run"
    trained = runner.invoke(app, ["train", str(cohort), "--out", str(run), "--epochs", "3", *SMALL])
    assert trained.exit_code == 0, trained.output
    epochs = [line for line in trained.stderr.splitlines() if line.startswith("epoch ")]
    assert [line.split()[1] for line in epochs] == ["1/3", "2/3", "3/3"]
    assert all("train_loss" in line and "val_loss" in line and line.endswith(" s)") for line in epochs)
    assert "\r" not in trained.stderr  # no terminal bars in a log

    args = ["evaluate", str(cohort), "--run", str(run), "--out", str(tmp_path / "e.h5ad")]
    evaluated = runner.invoke(app, args)
    assert evaluated.exit_code == 0, evaluated.output
    assert re.search(r"^evaluate: 24 samples through 1 model\(s\)", evaluated.stderr, re.M)
    assert re.search(r"^evaluate: wrote .*e\.h5ad  top1 ", evaluated.stderr, re.M)

    fitted = runner.invoke(app, ["signatures", "fit", str(cohort), "--out", str(tmp_path / "s.h5ad")])
    assert fitted.exit_code == 0, fitted.output
    pattern = r"^signatures fit: (\w+), 24 samples, \d+ signatures  median_cosine"
    sets = re.findall(pattern, fitted.stderr, re.M)
    assert sets == ["SBS96", "DBS78", "ID83"]


def test_baselines_report_each_model(cohort: Path, tmp_path: Path, capsys):
    from nanog1.encoder.baselines import run_baselines

    run_baselines(cohort, folds=2, models=["logreg"], tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    err = capsys.readouterr().err
    assert "baselines: 24 samples, 4 types, 2 folds" in err
    assert re.search(r"^baselines: logreg\[catalogue\]  top1 [\d.]+  macro_f1 [\d.]+  \(", err, re.M)
    assert re.search(r"^baselines: logreg\[exposures\]  top1 ", err, re.M)


def test_bars_show_batches_and_bootstrap_blocks_on_a_terminal_only(cohort: Path, tmp_path: Path, monkeypatch):
    """On a terminal, training shows a bar per epoch over its batches and the bootstrap one over its blocks;
    `nanog1 --quiet` (like NANOG1_QUIET) silences bars and lines while the results still come."""
    monkeypatch.setattr(progress, "terminal", lambda: True)
    monkeypatch.setenv(progress.QUIET_ENV, "0")  # restored after the test (`--quiet` below sets it)
    runner = CliRunner()
    args = ["train", str(cohort), "--out", str(tmp_path / "run"), "--epochs", "2", *SMALL]
    trained = runner.invoke(app, args)
    assert trained.exit_code == 0, trained.output
    for epoch in ("1/2", "2/2"):  # a bar over each epoch's batches
        assert re.search(rf"epoch {epoch}: +0%.* 0/\d+ \[.*batch/s\]", trained.stderr), trained.stderr
    fit = ["signatures", "fit", str(cohort), "--out", str(tmp_path / "s.h5ad"), "--set", "SBS96",
           "--bootstrap", "4"]
    fitted = runner.invoke(app, fit)
    assert fitted.exit_code == 0, fitted.output
    assert "bootstrap (4 draws" in fitted.stderr
    assert re.search(r"(^|\r)signatures fit: SBS96 bootstrap, 24 samples x 4 draws  \(", fitted.stderr, re.M)

    quiet = runner.invoke(app, ["--quiet", *args[:3], str(tmp_path / "quiet"), *args[4:]])
    assert quiet.exit_code == 0, quiet.output
    assert quiet.stderr == "" and "mlflow run:" in quiet.stdout
    assert (tmp_path / "quiet" / "model.pt").is_file()
