"""The runner: the Snakemake command line it builds, Snakemake's folder lock, and the resolved config file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from nanog1.pipeline.config import PIPELINES_DIR, load_config
from nanog1.pipeline.runner import (
    SMALL_DEMO,
    SNAKEFILE,
    RunOptions,
    _resolved_configfile,
    snakemake_command,
    snakemake_locks,
)


def test_command_passes_options_through(tmp_path: Path):
    extra = ["--forcerun", "train"]
    opts = RunOptions(cores=3, dry_run=True, until="merge", extra_args=extra, workdir=tmp_path)
    cmd = snakemake_command(Path("/x/demo.yaml"), opts)
    assert cmd[:5] == [sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE)]
    joined = " ".join(cmd)
    for part in ("--configfile /x/demo.yaml", "--cores 3", f"--directory {tmp_path}", "--dry-run",
                 "--until merge", "--forcerun train"):
        assert part in joined


def _pipeline(workdir: Path, *extra: str) -> subprocess.CompletedProcess:
    sets = [arg for item in SMALL_DEMO for arg in ("--set", item)]
    cmd = [sys.executable, "-m", "nanog1.cli", "pipeline", "run", str(PIPELINES_DIR / "demo.yaml"),
           "--directory", str(workdir), *sets, *extra]
    return subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})


def test_a_locked_folder_stops_the_run_and_only_unlock_clears_it(tmp_path: Path):
    """A lock another (or a killed) run holds is for Snakemake to enforce; nanog1 never clears it itself."""
    locks = tmp_path / ".snakemake" / "locks"
    locks.mkdir(parents=True)
    (locks / "0.output.lock").write_text("results/demo/cohort.h5ad\n")  # as a live run's lock on its target
    run = _pipeline(tmp_path)
    assert run.returncode != 0
    assert "locked" in run.stderr and "--unlock" in run.stderr and str(tmp_path) in run.stderr
    assert snakemake_locks(tmp_path) and not (tmp_path / "results" / "demo" / "sim").exists()
    unlocked = _pipeline(tmp_path, "--unlock")
    assert unlocked.returncode == 0, unlocked.stderr[-2000:]
    assert snakemake_locks(tmp_path) == [] and not (tmp_path / "results").exists()  # ran nothing


def test_resolved_config_is_named_by_content(tmp_path: Path):
    demo = PIPELINES_DIR / "demo.yaml"
    assert _resolved_configfile(demo, {}, RunOptions(workdir=tmp_path)) == demo.resolve()
    paths = []
    for epochs in (3, 4, 3):
        overrides = [f"train.epochs={epochs}"]
        config = load_config(demo, overrides)
        paths.append(_resolved_configfile(demo, config, RunOptions(overrides=overrides, workdir=tmp_path)))
        assert yaml.safe_load(paths[-1].read_text())["train"]["epochs"] == epochs
    assert paths[0] == paths[2] != paths[1]


def test_a_missing_input_file_is_one_error_line_before_snakemake(tmp_path: Path):
    """A config naming a file that is not there (a typo; the shipped pcawg config run outside the checkout)
    is one `error:` line naming it and its key, exit 2, before Snakemake starts; it was Snakemake's
    MissingInputException block and exit code 1 (and nothing said where relative paths are read from)."""
    from typer.testing import CliRunner

    from nanog1.cli import app

    (tmp_path / "a.maf").write_text("Hugo_Symbol\tTumor_Sample_Barcode\n")
    config = {"name": "x", "outdir": "out", "input": {"mode": "files", "files": ["a.maf", "calls/b.vcf.gz"],
                                                      "samples": "sheet.tsv"}}
    path = tmp_path / "my.yaml"
    path.write_text(yaml.safe_dump(config))
    res = CliRunner().invoke(app, ["pipeline", "run", str(path), "--directory", str(tmp_path), "-n"])
    assert res.exit_code == 2, res.output
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), res.output
    assert "calls/b.vcf.gz (input.files)" in lines[0] and "sheet.tsv (input.samples)" in lines[0]
    assert "a.maf" not in lines[0] and str(tmp_path) in lines[0]
    assert not (tmp_path / ".snakemake").exists()  # Snakemake never started
