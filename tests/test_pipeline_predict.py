"""The pipeline's optional predict step (issue 31): scheduled from the config, never by default."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from nanog1.pipeline.config import PIPELINES_DIR, load_config


def _dry_run(tmp_path: Path, predict: dict) -> subprocess.CompletedProcess:
    """`snakemake -n -p` of a matrix-input config with the given predict section, in tmp_path."""
    (tmp_path / "m.tsv").write_text("MutationType\tS1\nA[C>A]A\t3\n")
    config = {"name": "p", "outdir": "out", "input": {"mode": "matrix", "files": ["m.tsv"]},
              "signatures": {"enabled": False}, "predict": predict}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    cmd = [sys.executable, "-m", "snakemake", "-s", str(PIPELINES_DIR / "Snakefile"), "--configfile",
           str(tmp_path / "c.yaml"), "--directory", str(tmp_path), "-n", "-p", "--cores", "1"]
    return subprocess.run(cmd, capture_output=True, text=True)


def _jobs(text: str) -> set[str]:
    return {line.split()[1].rstrip(":") for line in text.splitlines() if line.startswith("rule ")}


def test_predict_is_off_by_default_in_the_shipped_configs():
    for name in ("demo.yaml", "pcawg.yaml"):
        config = load_config(PIPELINES_DIR / name)
        assert config["predict"]["enabled"] is False and config["predict"]["model"] == "pcawg-catalogue"


def test_predict_only_types_with_the_packaged_model_without_training(tmp_path: Path):
    settings = {"enabled": True, "only": True, "exposures": False, "draws": 7, "assay": "exome",
                "operating_point": "new-study"}
    res = _dry_run(tmp_path, settings)
    assert res.returncode == 0, res.stderr
    jobs = _jobs(res.stdout + res.stderr)
    assert "predict" in jobs and "train" not in jobs and "report" not in jobs
    shell = next(line for line in (res.stdout + res.stderr).splitlines() if " predict " in line)
    assert "--model pcawg-catalogue" in shell and "--no-exposures" in shell and "--draws 7" in shell
    assert "--assay exome" in shell and "--operating-point new-study" in shell


def test_predict_with_the_pipelines_own_run_waits_for_training(tmp_path: Path):
    res = _dry_run(tmp_path, {"enabled": True, "model": "run"})
    assert res.returncode == 0, res.stderr
    assert {"train", "predict", "report"} <= _jobs(res.stdout + res.stderr)
    assert "--model out/run " in res.stdout + res.stderr


def test_predict_only_with_its_own_run_is_refused(tmp_path: Path):
    res = _dry_run(tmp_path, {"enabled": True, "model": "run", "only": True})
    assert res.returncode != 0 and "predict.only" in res.stdout + res.stderr


def test_predict_filter_is_passed_to_the_predict_rule(tmp_path: Path):
    res = _dry_run(tmp_path, {"enabled": True, "only": True, "filter": "all"})
    assert res.returncode == 0, res.stderr
    shell = next(line for line in (res.stdout + res.stderr).splitlines() if " predict " in line)
    assert "--filter all" in shell
    res = _dry_run(tmp_path, {"enabled": True, "only": True})  # default: the cohort as ingested
    shell = next(line for line in (res.stdout + res.stderr).splitlines() if " predict " in line)
    assert "--filter" not in shell and "--operating-point in-study" in shell
    assert "--adapt-priors" not in shell


def test_predict_adapt_priors_is_passed_to_the_predict_rule(tmp_path: Path):
    res = _dry_run(tmp_path, {"enabled": True, "only": True, "adapt_priors": True})
    assert res.returncode == 0, res.stderr
    shell = next(line for line in (res.stdout + res.stderr).splitlines() if " predict " in line)
    assert shell.rstrip().split(" > ")[0].endswith("--adapt-priors")
    res = _dry_run(tmp_path, {"enabled": True, "only": True, "adapt_priors": "yes"})
    assert res.returncode != 0 and "adapt_priors" in res.stdout + res.stderr


def test_predict_filter_is_validated_against_the_ingest_rule():
    import pytest

    from nanog1.pipeline.config import ConfigError, validate_config

    files = {"name": "p", "outdir": "out", "input": {"mode": "files", "files": ["a.maf"]}}
    with pytest.raises(ConfigError, match="predict.filter' = 'all' but 'ingest.filter' = 'PASS'"):
        validate_config(files | {"predict": {"enabled": True, "filter": "all"}})
    ok = validate_config(files | {"ingest": {"filter": "all"}, "predict": {"enabled": True, "filter": "all"}})
    assert ok["predict"]["filter"] == "all"
    assert validate_config(files | {"predict": {"enabled": True}})["predict"]["filter"] == "model"
    with pytest.raises(ConfigError, match="predict.filter"):
        validate_config(files | {"predict": {"enabled": True, "filter": "pass"}})
