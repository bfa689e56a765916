"""The runner: the Snakemake command line it builds, its folder lock, and the resolved config file."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

from nanog1.pipeline.config import PIPELINES_DIR, load_config
from nanog1.pipeline.runner import (
    SNAKEFILE,
    PipelineBusyError,
    RunOptions,
    _resolved_configfile,
    exclusive_workdir,
    snakemake_command,
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


def test_one_run_per_folder(tmp_path: Path):
    with exclusive_workdir(tmp_path):
        with pytest.raises(PipelineBusyError, match=str(tmp_path)):
            with exclusive_workdir(tmp_path):
                pass
    with exclusive_workdir(tmp_path):  # released on exit
        pass


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
