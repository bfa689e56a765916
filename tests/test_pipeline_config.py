"""Pipeline configs: the shipped ones validate; a bad key or value fails with an error naming it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nanog1.cli import app
from nanog1.pipeline.config import (
    PIPELINES_DIR,
    ConfigError,
    deep_update,
    load_config,
    parse_override,
    validate_config,
)


@pytest.mark.parametrize("name", ["demo.yaml", "pcawg.yaml"])
def test_shipped_configs_validate_and_get_defaults(name: str):
    config = load_config(PIPELINES_DIR / name)
    assert config["train"]["mixer"] == "savo"
    assert config["ingest"]["filter"] == "PASS"  # default filled in from the schema
    assert config["train"]["gpus"] == 0


def test_overrides_are_typed_and_nested():
    assert parse_override("train.epochs=3") == {"train": {"epochs": 3}}
    assert parse_override("input.simulate.cancer_types=[Lung, Skin]") == {
        "input": {"simulate": {"cancer_types": ["Lung", "Skin"]}}
    }
    base = {"a": {"b": 1, "c": 2}, "d": 1}
    assert deep_update(base, {"a": {"b": 5}}) == {"a": {"b": 5, "c": 2}, "d": 1}
    assert base == {"a": {"b": 1, "c": 2}, "d": 1}
    config = load_config(PIPELINES_DIR / "demo.yaml", ["train.epochs=3", "outdir=/tmp/x"])
    assert config["train"]["epochs"] == 3 and config["outdir"] == "/tmp/x"
    assert config["train"]["view"] == "catalogue"  # the default; the event view is one override away
    assert load_config(PIPELINES_DIR / "demo.yaml", ["train.view=events"])["train"]["view"] == "events"


@pytest.mark.parametrize(
    ("override", "pattern"),
    [
        ("train.epoch=3", r"unknown config key 'train\.epoch'; allowed keys here: .*epochs"),
        ("train.epochs=0", r"config key 'train\.epochs' = 0 is invalid .*expected number of epochs"),
        ("train.hidden=wide", r"config key 'train\.hidden' = 'wide' is invalid"),
        ("train.view=reads", r"config key 'train\.view' = 'reads' is invalid"),
        ("train.extra=--view events", r"'train\.extra': --view is set by the pipeline's rule"),
        ("input.mode=bam", r"config key 'input\.mode' = 'bam' is invalid"),
        ("ingest.filter=LowQual", r"config key 'ingest\.filter'"),
        ("colour=red", r"unknown config key 'colour'"),
        # extra: only the command's own options the rule does not set, never shell syntax
        ("train.extra=; touch /tmp/x", r"'train\.extra': ';' is neither an option of `nanog1 train`"),
        ("train.extra=$(touch /tmp/x)", r"'train\.extra': '\$\(touch' is neither an option"),
        ("ingest.extra=--quiet `touch /tmp/x`", r"'ingest\.extra': '`touch' is neither"),
        ("ingest.extra=--quiet && touch /tmp/x", r"'&&' is neither"),
        ("train.extra=--out /elsewhere", r"'train\.extra': --out is set by the pipeline's rule"),
        ("signatures.extra=[-o, /elsewhere]", r"-o \(--out\) is set by the pipeline's rule"),
        ("train.extra=--no-such-option 1", r"'--no-such-option' is neither an option.*allowed there: .*--lr"),
        ("train.extra=--lr", r"--lr needs a value"),
        ("input.simulate.extra=--help", r"'input\.simulate\.extra': '--help' is neither"),
        ("train.extra=--lr 'unclosed", r"cannot split"),
    ],
)
def test_bad_values_name_the_key(override: str, pattern: str):
    with pytest.raises(ConfigError, match=pattern):
        load_config(PIPELINES_DIR / "demo.yaml", [override])


def test_mode_specific_requirements():
    # a reference is optional, as for `nanog1 ingest` (a TCGA MAF has none): SBS6/DBS78/ID12 without it
    base = {"name": "x", "outdir": "o", "input": {"mode": "files", "files": ["a.maf"]}}
    assert validate_config(base)["input"]["reference"] is None
    with pytest.raises(ConfigError, match=r"'input\.files'"):
        validate_config({"name": "x", "outdir": "o", "input": {"mode": "matrix"}})
    with pytest.raises(ConfigError, match="required"):
        validate_config({"name": "x", "input": {"mode": "simulate"}})


def test_yaml_errors_name_file_and_line(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\noutdir: [unclosed\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml:\d+: not valid YAML"):
        load_config(bad)


def test_cli_rejects_bad_key_before_running(tmp_path: Path):
    result = CliRunner().invoke(
        app, ["pipeline", "run", str(PIPELINES_DIR / "demo.yaml"), "--dry-run", "--set", "train.epoch=3",
              "--directory", str(tmp_path)]
    )
    assert result.exit_code == 2
    assert "train.epoch" in result.output
    assert not (tmp_path / "results").exists()


def test_snakefile_validates_too(tmp_path: Path):
    """Plain `snakemake` (no nanog1 wrapper) rejects the same key through the Snakefile's `validate`."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\noutdir: out\ninput: {mode: matrix, files: [a.csv]}\ntrain: {epoch: 3}\n")
    snakefile = str(PIPELINES_DIR / "Snakefile")
    cmd = [sys.executable, "-m", "snakemake", "-s", snakefile, "--configfile", str(bad),
           "--directory", str(tmp_path), "-n", "--cores", "1"]
    out = subprocess.run(cmd, capture_output=True, text=True)
    assert out.returncode != 0
    assert "'epoch' was unexpected" in out.stdout + out.stderr


def test_shipped_configs_are_found_by_name(tmp_path: Path, monkeypatch):
    from nanog1.pipeline.config import find_config

    monkeypatch.chdir(tmp_path)  # anywhere: the shipped configs are package data
    assert find_config("demo") == find_config("demo.yaml") == PIPELINES_DIR / "demo.yaml"
    (tmp_path / "demo.yaml").write_text("name: mine\n")
    assert find_config("demo.yaml") == Path("demo.yaml")  # a file of that name here wins
    with pytest.raises(ConfigError, match=r"nowhere\.yaml: no such config file.*shipped: demo, pcawg"):
        find_config("nowhere.yaml")
    with pytest.raises(ConfigError, match="no such config file"):
        find_config("sub/demo.yaml")  # a path that is not there is not taken for a shipped name


def test_shipped_profiles_are_found_by_name(tmp_path: Path, monkeypatch):
    from nanog1.pipeline.config import find_profile

    monkeypatch.chdir(tmp_path)
    assert find_profile("slurm") == PIPELINES_DIR / "profiles" / "slurm"
    assert (find_profile("default") / "config.yaml").is_file()
    mine = tmp_path / "slurm"
    mine.mkdir()
    with pytest.raises(ConfigError, match=r"mine: no such Snakemake profile.*shipped: default, slurm"):
        find_profile("mine")
    (mine / "config.yaml").write_text("jobs: 2\n")
    assert find_profile("slurm") == Path("slurm")  # a profile folder of that name here wins
    with pytest.raises(ConfigError, match="no such Snakemake profile"):
        find_profile("sub/slurm")


def test_pipeline_config_writes_a_shipped_config_to_edit(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["pipeline", "config", "pcawg"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "pcawg.yaml").read_bytes() == (PIPELINES_DIR / "pcawg.yaml").read_bytes()
    mine = tmp_path / "my.yaml"
    assert CliRunner().invoke(app, ["pipeline", "config", "demo", "-o", str(mine)]).exit_code == 0
    assert load_config(mine)["name"] == "demo"
    mine.write_text("name: edited\n")
    kept = CliRunner().invoke(app, ["pipeline", "config", "demo", "-o", str(mine)])
    assert kept.exit_code == 2 and "already exists" in kept.output
    assert mine.read_text() == "name: edited\n"  # nothing lost
    assert CliRunner().invoke(app, ["pipeline", "config", "demo", "-o", str(mine), "--force"]).exit_code == 0
    assert mine.read_bytes() == (PIPELINES_DIR / "demo.yaml").read_bytes()
    unknown = CliRunner().invoke(app, ["pipeline", "config", "nowhere"])
    assert unknown.exit_code == 2 and "shipped: demo, pcawg" in unknown.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["my.yaml", "pcawg.yaml"]  # no temporary left
