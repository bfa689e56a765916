"""The demo pipeline end to end through Snakemake at a small size: outputs, reruns, kill and resume."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from background import running

from nanog1.genomics.channels import N_CHANNELS
from nanog1.pipeline import PIPELINES_DIR, SMALL_DEMO

pytestmark = pytest.mark.slow
RULES = ("simulate", "ingest", "merge", "signatures", "train", "evaluate", "embed", "report")
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def pipeline_cmd(workdir: Path, *extra: str) -> list[str]:
    """`nanog1 pipeline run demo` at the small size, in `workdir`."""
    sets = [arg for item in SMALL_DEMO for arg in ("--set", item)]
    return [sys.executable, "-m", "nanog1.cli", "pipeline", "run", str(PIPELINES_DIR / "demo.yaml"),
            "--cores", "2", "--directory", str(workdir), *sets, *extra]


def planned_jobs(workdir: Path, *extra: str) -> dict[str, int]:
    """{rule: job count} from Snakemake's dry-run job table (empty when nothing is to be done)."""
    out = subprocess.run(pipeline_cmd(workdir, "--dry-run", *extra), capture_output=True, text=True, env=ENV)
    assert out.returncode == 0, out.stdout + out.stderr
    text = out.stdout + out.stderr
    if "Nothing to be done" in text:
        return {}
    table = text.split("Job stats:", 1)[1].split("total", 1)[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)\s*$", table, re.M)}


@pytest.fixture(scope="module")
def demo(small_demo: Path) -> Path:
    """One uninterrupted small demo run (the session's, shared with the notebook tests); its output folder."""
    return small_demo


@pytest.fixture(scope="module")
def ensemble_run(demo: Path, tmp_path_factory):
    """`train.ensemble=2` on a copy of the demo run: its dry-run job table, then the run itself started in
    the background; yields (workdir, planned jobs, process). The pipeline tests before the ensemble test
    ask for it too, so that this run (one chain of single-threaded jobs) overlaps theirs on the second
    core instead of running alone afterwards. A run nobody waited for is stopped at the end."""
    import shutil

    workdir = tmp_path_factory.mktemp("ensemble") / "ens"
    shutil.copytree(demo.parents[1], workdir)
    jobs = planned_jobs(workdir, "--set", "train.ensemble=2")
    with running(pipeline_cmd(workdir, "--set", "train.ensemble=2"), workdir.parent / "run.log", ENV) as proc:
        yield workdir, jobs, proc


def mlflow_runs(outdir: Path) -> pd.DataFrame:
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{outdir / 'mlflow.db'}")
    return mlflow.search_runs(search_all_experiments=True)


def training_runs(outdir: Path) -> pd.DataFrame:
    """The store's runs other than signature fits (those get their own '<cohort>/signatures' experiment)."""
    runs = mlflow_runs(outdir)
    return runs[runs["tags.mlflow.runName"] != "signature-fit"].reset_index(drop=True)


def test_demo_outputs(demo: Path):
    cohort = ad.read_h5ad(demo / "cohort.h5ad")
    assert cohort.n_obs == 36 and cohort.n_vars == N_CHANNELS
    assert {"predicted_type", "cancer_type"} <= set(cohort.obs) and "X_nanog1" in cohort.obsm
    assert "exposures_SBS96" in cohort.obsm and "tokens" in cohort.uns
    assert len(list((demo / "parts").glob("*.h5ad"))) == 3  # 30 VCFs + 1 MAF, 12 files per job
    report = (demo / "report" / "report.md").read_text()
    for png in ("confusion_matrix.png", "embedding.png", "exposures_SBS96.png"):
        assert png in report and (demo / "report" / png).stat().st_size > 1000
    for rule in RULES:
        assert list((demo / "benchmarks").rglob(f"{rule}*.tsv")) or (demo / "benchmarks" / rule).is_dir()
    assert not (demo / "run" / "checkpoint.pt").exists()  # removed once training succeeded
    runs = mlflow_runs(demo)
    fit = runs["tags.mlflow.runName"] == "signature-fit"
    assert fit.sum() == 1 and runs.loc[fit, "status"].item() == "FINISHED"  # the fit's settings, recorded
    assert any("cosmic" in c.lower() for c in runs.loc[fit].dropna(axis=1).columns if c.startswith("params."))
    runs = training_runs(demo)
    assert len(runs) == 1 and runs.loc[0, "status"] == "FINISHED"
    for rule in ("train", "evaluate", "embed"):
        assert runs.loc[0, f"tags.snakemake.jobid.{rule}"].isdigit()
    assert runs.loc[0, "params.pipeline.train.epochs"] == "3"
    assert runs.loc[0, "params.pipeline.input.simulate.n_samples"] == "36"


def test_reruns_only_what_a_change_touches(demo: Path, ensemble_run):
    workdir = demo.parents[1]
    assert planned_jobs(workdir) == {}
    jobs = planned_jobs(workdir, "--set", "train.epochs=4")
    assert set(jobs) == {"train", "evaluate", "embed", "report", "all"}
    assert planned_jobs(workdir, "--forcerun", "report") == {"report": 1, "all": 1}  # passed to Snakemake
    vcf = sorted((demo / "sim").rglob("*.vcf*"))[0]
    original, stamp = vcf.read_bytes(), vcf.stat()
    os.utime(vcf, (time.time() + 5, time.time() + 5))
    assert planned_jobs(workdir) == {}  # a newer mtime with the same content (checksum) reruns nothing
    vcf.write_bytes(original + b"\n")  # new content: that file's ingest job and all after the merge rerun
    try:
        jobs = planned_jobs(workdir)
    finally:
        vcf.write_bytes(original)
        os.utime(vcf, (stamp.st_atime, stamp.st_mtime))
    assert jobs.get("ingest") == 1 and "simulate" not in jobs
    assert {"merge", "signatures", "train", "report"} <= set(jobs)


def test_sigkill_mid_training_then_rerun_gives_the_same_result(demo: Path, tmp_path: Path, ensemble_run):
    """SIGKILL the whole run while it trains; the rerun stops at the lock, --unlock clears it, and the next
    rerun resumes training from its checkpoint, keeps the finished steps and ends where the uninterrupted
    demo run ended. The run starts from a copy of the demo run with training and every step after it
    removed: Snakemake then plans train, evaluate, embed and report from the kept signature fit, so the
    kill lands in training without simulating, ingesting and fitting again (steps the demo run checks)."""
    import shutil

    shutil.copytree(demo.parents[1], tmp_path, dirs_exist_ok=True)
    out = tmp_path / "results" / "demo"
    for folder in ("run", "report"):
        shutil.rmtree(out / folder)
    for file in ("cohort.h5ad", "work/cohort_eval.h5ad"):
        (out / file).unlink()
    kept = {name: (out / "work" / name).stat().st_mtime
            for name in ("cohort_merged.h5ad", "cohort_signatures.h5ad")}
    demo_runs = set(training_runs(out)["run_id"])  # the copied store holds the demo's training run
    proc = subprocess.Popen(pipeline_cmd(tmp_path), env=ENV, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoint = out / "run" / "checkpoint.pt"
    deadline = time.time() + 400
    while not checkpoint.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert checkpoint.exists(), "the run never reached training"
    assert not (out / "run" / "metrics.json").exists() and not (out / "cohort.h5ad").exists()

    # the killed Snakemake left its lock: the rerun stops and says so, and only an explicit --unlock clears it
    locked = subprocess.run(pipeline_cmd(tmp_path), env=ENV, capture_output=True, text=True)
    assert locked.returncode != 0 and "--unlock" in locked.stderr, locked.stderr[-3000:]
    unlock = subprocess.run(pipeline_cmd(tmp_path, "--unlock"), env=ENV, capture_output=True, text=True)
    assert unlock.returncode == 0, unlock.stderr[-3000:]
    rerun = subprocess.run(pipeline_cmd(tmp_path), env=ENV, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    for name, mtime in kept.items():  # finished steps kept
        assert (out / "work" / name).stat().st_mtime == mtime, name

    a, b = ad.read_h5ad(demo / "cohort.h5ad"), ad.read_h5ad(out / "cohort.h5ad")
    np.testing.assert_array_equal(a.X, b.X)
    assert list(a.obs_names) == list(b.obs_names)
    assert (a.obs["predicted_type"].astype(str) == b.obs["predicted_type"].astype(str)).all()
    np.testing.assert_allclose(a.obsm["X_nanog1"], b.obsm["X_nanog1"], rtol=1e-5, atol=1e-6)
    import json

    ma = json.loads((demo / "run" / "metrics.json").read_text())["metrics"]
    mb = json.loads((out / "run" / "metrics.json").read_text())["metrics"]
    assert ma.keys() == mb.keys()
    for key in ma:
        assert ma[key] == pytest.approx(mb[key], rel=1e-6), key
    # training resumed in the same MLflow run rather than starting again: one run, each epoch logged once
    runs = training_runs(out)
    runs = runs[~runs["run_id"].isin(demo_runs)].reset_index(drop=True)
    assert len(runs) == 1 and runs.loc[0, "status"] == "FINISHED"
    from mlflow.tracking import MlflowClient

    history = MlflowClient().get_metric_history(runs.loc[0, "run_id"], "train_loss")
    steps = [m.step for m in history]
    assert sorted(steps) == sorted(set(steps)) and len(steps) >= 2


def test_ensemble_trains_more_seeds_and_evaluates_their_average(demo: Path, ensemble_run):
    """train.ensemble=2 adds one encoder (seed + 1) to a finished run; evaluate and what follows rerun."""
    workdir, jobs, proc = ensemble_run
    assert jobs == {"train_member": 1, "evaluate": 1, "embed": 1, "report": 1, "all": 1}
    code = proc.wait(timeout=900)
    assert code == 0, (workdir.parent / "run.log").read_text()[-6000:]
    out = workdir / "results" / "demo"
    assert (out / "run_seed1" / "model.pt").exists() and not (out / "run_seed1" / "checkpoint.pt").exists()
    cohort = ad.read_h5ad(out / "cohort.h5ad")
    members = list(cohort.uns["nanog1_model"]["ensemble"]["run_dir"])
    assert [Path(m).name for m in members] == ["run", "run_seed1"]
    before = ad.read_h5ad(demo / "cohort.h5ad")
    assert not np.allclose(cohort.obsm["proba_type"].to_numpy(), before.obsm["proba_type"].to_numpy())
    np.testing.assert_allclose(cohort.obsm["X_nanog1"], before.obsm["X_nanog1"], rtol=1e-5, atol=1e-6)
    runs = training_runs(out)
    assert sorted(runs["params.seed"]) == ["0", "1"] and (runs["status"] == "FINISHED").all()
