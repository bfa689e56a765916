"""DDP through torchrun on CPU (gloo): two processes train one model and rank 0 writes the run."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import pytest
import torch
from training_cohort import SMALL_TRAIN_ARGS, make_cohort

from nanog1.encoder.cv import train_val_split
from nanog1.encoder.data import cohort_arrays


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
        *SMALL_TRAIN_ARGS,
    ]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "mlflow run:" in done.stdout
    assert (run_dir / "model.pt").exists() and (run_dir / "metrics.json").exists()
    # Each rank saw half of the training split per epoch (DistributedSampler).
    train, _ = train_val_split(cohort_arrays(adata).labels, 0.2, 0)
    saved = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    assert saved["step"] == 2 * math.ceil(len(train) / 2 / 8)


def _ddp_worker(rank: int, port: int, out: str) -> None:
    """Two gloo ranks, different batches, three steps through loop.wrap_ddp; saves each step's gradients."""
    import torch.distributed as dist

    from nanog1.encoder.loop import wrap_ddp
    from nanog1.encoder.model import N_CHANNELS, MutationEncoder, MutationEncoderConfig

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    torch.manual_seed(0)
    cfg = MutationEncoderConfig(hidden=16, layers=1, rank=4, heads=2, n_types=3, dropout=0.0)
    model = MutationEncoder(cfg)
    net = wrap_ddp(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    gen = torch.Generator().manual_seed(100 + rank)
    grads = []
    for _ in range(3):
        counts = torch.poisson(torch.full((4, N_CHANNELS), 3.0), generator=gen)
        labels = torch.randint(0, 3, (4,), generator=gen)
        loss = torch.nn.functional.cross_entropy(net(counts=counts).type_logits, labels)
        opt.zero_grad()
        loss.backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
        opt.step()
    torch.save(grads, f"{out}/grads{rank}.pt")
    dist.destroy_process_group()


@pytest.mark.slow
def test_ddp_ranks_share_gradients(tmp_path):
    """Every step, both ranks hold the same (all-reduced) gradients although their batches differ.

    Guards the EncoderOutput pytree registration and wrap_ddp: without them DDP skipped the all-reduce.
    """
    import torch.multiprocessing as mp

    mp.spawn(_ddp_worker, args=(29537, str(tmp_path)), nprocs=2, join=True)
    g0 = torch.load(tmp_path / "grads0.pt", weights_only=True)
    g1 = torch.load(tmp_path / "grads1.pt", weights_only=True)
    assert len(g0) == 3 and set(g0[0]) == set(g1[0]) and "type_head.weight" in g0[0]
    for step0, step1 in zip(g0, g1, strict=True):
        for name in step0:
            torch.testing.assert_close(step0[name], step1[name], rtol=1e-5, atol=1e-7, msg=name)
