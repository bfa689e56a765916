"""`extra:` options: argument lists checked against each command, never read by a shell."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from nanog1.pipeline.config import PIPELINES_DIR, load_config
from nanog1.pipeline.extra import SLOTS, extra_arguments
from nanog1.pipeline.runner import SMALL_DEMO


def test_a_string_is_split_and_a_list_kept_both_checked():
    config = load_config(PIPELINES_DIR / "demo.yaml",
                         ['train.extra=--lr 0.002 --batch-size=8', "signatures.extra=[--method, nnls]"])
    assert config["train"]["extra"] == ["--lr", "0.002", "--batch-size=8"]
    assert config["signatures"]["extra"] == ["--method", "nnls"]
    assert config["ingest"]["extra"] == [] and config["input"]["simulate"]["extra"] == []
    assert extra_arguments(config)["train"] == ["--lr", "0.002", "--batch-size=8"]
    assert {slot.key[-1] for slot in SLOTS} == {"simulate", "ingest", "signatures", "train", "finetune"}


def test_plain_snakemake_checks_extra_too(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\noutdir: out\ninput: {mode: matrix, files: [a.csv]}\n"
                   "train: {extra: '--lr 0.1; touch pwned'}\n")
    snakefile = str(PIPELINES_DIR / "Snakefile")
    cmd = [sys.executable, "-m", "snakemake", "-s", snakefile, "--configfile", str(bad), "--directory",
           str(tmp_path), "-n", "--cores", "1"]
    out = subprocess.run(cmd, capture_output=True, text=True)
    assert out.returncode != 0 and "'train.extra'" in out.stdout + out.stderr


def test_no_config_value_reaches_a_shell(tmp_path: Path):
    """Shell syntax in an option's value and in the output folder runs nothing: the job sees it verbatim."""
    config = yaml.safe_load((PIPELINES_DIR / "demo.yaml").read_text())
    config["outdir"] = "results/x $(touch m1); touch m2 `touch m3`"
    config["input"]["simulate"]["extra"] = ["--priors", "p.csv; touch m4 $(touch m5) `touch m6` | touch m7"]
    path = tmp_path / "evil.yaml"
    path.write_text(yaml.safe_dump(config))
    sets = [arg for item in SMALL_DEMO for arg in ("--set", item)]
    cmd = [sys.executable, "-m", "nanog1.cli", "pipeline", "run", str(path), "--directory", str(tmp_path),
           "--until", "simulate", "--cores", "1", *sets]
    run = subprocess.run(cmd, capture_output=True, text=True)
    assert run.returncode != 0  # the simulate job failed: no priors file of that odd name
    log = (tmp_path / config["outdir"] / "logs" / "simulate.log").read_text()
    assert "p.csv; touch m4 $(touch m5)" in log  # the value reached nanog1 whole, as one argument
    assert not [p for p in tmp_path.rglob("m[0-9]")], "a config value ran a shell command"
