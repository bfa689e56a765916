"""`nanog1 finetune`: a pretrained encoder with a new type head against scratch, on a held-out part."""

from __future__ import annotations

import json
import subprocess
import sys

import mlflow
import numpy as np
import pytest
import torch
import training_cohort as tc
import yaml
from typer.testing import CliRunner

from nanog1.cli import app
from nanog1.encoder.config import TrainConfig
from nanog1.encoder.data import cohort_arrays
from nanog1.encoder.finetune import FinetuneConfig, new_head_model, split_new_cohort, train_with_budget
from nanog1.encoder.loop import load_model

#: The new cohort: three types the encoder saw (a new draw) and one new type. Both cohorts have low
#: burdens (noisy catalogues), where features learned on many tumours help a model given few labels.
NEW_TYPES = {
    "Lung": tc.TYPE_SIGNATURES["Lung"],
    "Skin": tc.TYPE_SIGNATURES["Skin"],
    "Colon": tc.TYPE_SIGNATURES["Colon"],
    "Liver": {"SBS96": ["SBS22a", "SBS5", "SBS40a"], "DBS78": ["DBS4", "DBS2"], "ID83": ["ID1", "ID5"]},
}
LOW_BURDEN = {"SBS96": 25, "DBS78": 2, "ID83": 4}


@pytest.fixture(scope="module")
def cohorts(tmp_path_factory):
    """A multitask run on a four-type cohort, and a new cohort of partly different types."""
    from nanog1.encoder.run import train_cohort

    tmp = tmp_path_factory.mktemp("finetune")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tc, "BURDEN", LOW_BURDEN)  # both cohorts sequenced alike (e.g. the same panel)
        tc.make_cohort(n_per_type=40, seed=0, tokens=False).write_h5ad(tmp / "a.h5ad")
        mp.setattr(tc, "TYPE_SIGNATURES", NEW_TYPES)
        tc.make_cohort(n_per_type=30, seed=1, tokens=False).write_h5ad(tmp / "b.h5ad")
    cfg = TrainConfig(
        task="multitask",
        hidden=32,
        layers=1,
        rank=4,
        heads=2,
        batch_size=8,
        lr=0.005,
        epochs=12,
        register_model=False,
    )
    train_cohort(tmp / "a.h5ad", tmp / "base", cfg, tracking_uri=f"sqlite:///{tmp}/m.db")
    return tmp


@pytest.mark.slow
def test_new_head_keeps_encoder_weights_and_freezing_holds_them(cohorts):
    _, saved = load_model(cohorts / "base" / "model.pt")
    model = new_head_model(saved, n_types=4, pretrained=True, freeze_encoder=True)
    state = model.state_dict()
    for k, v in saved["state_dict"].items():
        if not k.startswith(("type_head.", "exposure_heads.")):
            torch.testing.assert_close(state[k], v)
    assert model.type_head.out_features == 4 and not model.exposure_heads
    before = {k: v.clone() for k, v in state.items()}
    arrays = cohort_arrays(tc.make_cohort(n_per_type=6, seed=2, tokens=False))
    cfg = TrainConfig.from_dict(saved["train_config"] | {"task": "cancer_type", "epochs": 1})
    train_with_budget(model, arrays, cfg, np.arange(arrays.n), torch.device("cpu"), (10.0, 1.0))
    after = model.state_dict()
    changed = {k for k in after if not torch.equal(after[k], before[k])}
    assert changed and all(k.startswith("type_head.") for k in changed)
    scratch = new_head_model(saved, n_types=4, pretrained=False, freeze_encoder=False)
    fresh = scratch.state_dict()
    assert any(not torch.equal(fresh[k], state[k]) for k in state if k.startswith("stack."))


def test_split_is_stratified_and_disjoint():
    labels = np.repeat(np.arange(4), 30)
    labels[:3] = -1
    tr, te = split_new_cohort(labels, FinetuneConfig(test_fraction=0.3, train_fraction=0.5))
    assert not set(tr) & set(te) and (labels[tr] >= 0).all() and (labels[te] >= 0).all()
    assert abs(len(te) - 0.3 * 117) <= 1 and abs(len(tr) - 0.5 * (117 - len(te))) <= 1
    assert set(np.bincount(labels[te])) <= {8, 9, 10}


@pytest.mark.slow
def test_cli_finetune_beats_scratch_on_held_out_part(cohorts):
    out = cohorts / "ft"
    args = [
        "finetune",
        str(cohorts / "b.h5ad"),
        "--from",
        str(cohorts / "base"),
        "--out",
        str(out),
        "--epochs",
        "3",
        "--train-fraction",
        "0.15",
        "--tracking-uri",
        f"sqlite:///{cohorts}/m.db",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())["metrics"]
    print(f"held-out top1: fine-tuned {metrics['finetuned_top1']:.3f}  scratch {metrics['scratch_top1']:.3f}")
    assert metrics["finetuned_top1"] > metrics["scratch_top1"]
    assert metrics["gain_top1"] == pytest.approx(metrics["finetuned_top1"] - metrics["scratch_top1"])
    _, saved = load_model(out / "model.pt")
    assert list(saved["classes"]) == ["Colon", "Liver", "Lung", "Skin"]
    assert (out / "calibration.json").exists()
    run = mlflow.MlflowClient(f"sqlite:///{cohorts}/m.db").get_run(saved["mlflow_run_id"])
    assert run.info.status == "FINISHED"
    assert {"finetuned_top1", "scratch_top1", "gain_top1", "scratch_train_loss"} <= set(run.data.metrics)
    evaluated = CliRunner().invoke(
        app, ["evaluate", str(cohorts / "b.h5ad"), "--run", str(out), "--out", str(cohorts / "b_eval.h5ad")]
    )
    assert evaluated.exit_code == 0, evaluated.output


def test_pipeline_finetune_rule_is_planned(tmp_path):
    from nanog1.pipeline.config import PIPELINES_DIR

    config = yaml.safe_load((PIPELINES_DIR / "demo.yaml").read_text())
    (tmp_path / "new.h5ad").write_bytes(b"")
    config["finetune"] = {"enabled": True, "cohort": str(tmp_path / "new.h5ad"), "epochs": 2}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(PIPELINES_DIR / "Snakefile"),
        "--configfile",
        str(tmp_path / "c.yaml"),
        "--directory",
        str(tmp_path),
        "-n",
        "--cores",
        "1",
    ]
    out = subprocess.run(cmd, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "rule finetune" in out.stdout + out.stderr or "finetune" in out.stdout
    config["finetune"] = {"enabled": True}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    bad = subprocess.run(cmd, capture_output=True, text=True)
    assert bad.returncode != 0 and "finetune.cohort" in bad.stdout + bad.stderr
