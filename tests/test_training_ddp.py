"""DDP through torchrun on CPU (gloo): two processes train one model and rank 0 writes the run."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import pytest
import torch
from training_cohort import make_cohort

from nanog1.training.cv import train_val_split
from nanog1.training.data import cohort_arrays


@pytest.mark.slow
def test_torchrun_two_processes_gloo(tmp_path):
    adata = make_cohort(n_per_type=10, seed=2, tokens=False)
    cohort = tmp_path / "ddp.h5ad"
    adata.write_h5ad(cohort)
    run_dir = tmp_path / "runs" / "ddp"
    env = os.environ | {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    env.pop("MLFLOW_TRACKING_URI", None)
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        "29531",
        "-m",
        "nanog1.cli",
        "train",
        str(cohort),
        "--out",
        str(run_dir),
        "--epochs",
        "2",
        "--hidden",
        "16",
        "--layers",
        "1",
        "--rank",
        "4",
        "--heads",
        "2",
        "--batch-size",
        "8",
    ]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "mlflow run:" in done.stdout
    assert (run_dir / "model.pt").exists() and (run_dir / "metrics.json").exists()
    # Each rank saw half of the training split per epoch (DistributedSampler).
    train, _ = train_val_split(cohort_arrays(adata).labels, 0.2, 0)
    saved = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    assert saved["step"] == 2 * math.ceil(len(train) / 2 / 8)
