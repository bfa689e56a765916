"""Where the routing kernel's fwd+bwd time goes: a torch.profiler breakdown per CUDA kernel, beside MHA-flash.

GPU only. `PYTHONPATH=. python3 benchmarks/routing_profile.py [--lengths 512,32768]`. Same shapes as
benchmarks/routing_kernel.py (32k tokens per batch, h = 8, H = 512, r = 64, bf16, causal). Prints, per
L and per peer, the mean device time per step of every kernel launched, and the autotuner's choices;
`--host` instead times and cProfiles the Python side of eager steps at the first length.
"""

from __future__ import annotations

import argparse
import os

import torch
from routing_kernel import fwd_bwd
from routing_peers import peers
from torch.profiler import ProfilerActivity, profile

import nanog1.core.kernels.routing_triton as rt


def breakdown(fn, inputs, steps: int = 20) -> list[tuple[str, float, int]]:
    """(kernel name, mean µs per step, launches per step), most expensive first."""
    step = fwd_bwd(fn, inputs)
    for _ in range(10):  # warm-up, autotuning included
        step()
        for t in inputs:
            t.grad = None
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(steps):
            step()
            for t in inputs:
                t.grad = None
        torch.cuda.synchronize()
    rows = []
    for ev in prof.key_averages():
        total = getattr(ev, "device_time_total", None) or getattr(ev, "cuda_time_total", 0)
        if total > 0 and ev.count:
            rows.append((ev.key[:70], total / steps, ev.count // steps))
    return sorted(rows, key=lambda r: -r[1])


def host_profile(fn, inputs, steps: int = 200, top: int = 25) -> None:
    """cProfile of the Python side of `steps` eager fwd+bwd steps (no synchronisation inside the loop)."""
    import cProfile
    import pstats
    import time

    step = fwd_bwd(fn, inputs)
    for _ in range(10):
        step()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    host = (time.perf_counter() - t0) / steps
    torch.cuda.synchronize()
    print(f"  host time per step, no profiler: {host * 1e6:.0f} µs")
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(steps):
        step()
    prof.disable()
    torch.cuda.synchronize()
    pstats.Stats(prof).sort_stats("tottime").print_stats(top)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lengths", default="512,32768")
    ap.add_argument("--host", action="store_true", help="profile the host (Python) side at the first L")
    ap.add_argument("--kinds", default="causal", help="comma list of: causal, bidir")
    args = ap.parse_args()
    print(torch.cuda.get_device_name(), torch.__version__, flush=True)
    if args.host:
        length = int(args.lengths.split(",")[0])
        for name, (fn, inputs) in peers(length).items():
            print(f"\nL = {length}, {name}")
            host_profile(fn, inputs, top=25 if name == "kernel_savo" else 0)
            if name.startswith("kernel"):  # the same op through Triton's own dispatch on every call
                os.environ["NANOG1_TRITON_FAST_LAUNCH"] = "0"
                print(f"\nL = {length}, {name}, Triton dispatch on every launch")
                host_profile(fn, inputs, top=0)
                os.environ["NANOG1_TRITON_FAST_LAUNCH"] = "1"
        return
    for length, kind in ((int(n), kind) for n in args.lengths.split(",") for kind in args.kinds.split(",")):
        for name, (fn, inputs) in peers(length, kind == "causal").items():
            rows = breakdown(fn, inputs)
            total = sum(r[1] for r in rows if not r[0].startswith("ProfilerStep"))
            print(f"\nL = {length} {kind}, {name}: device µs per fwd+bwd step (kernel sum {total:.1f})")
            for key, us, n in rows[:12]:
                print(f"  {us:9.1f} µs  x{n:<3d} {key}")
        for label, kern in (("fwd", rt._fwd_kernel), ("dq", rt._dq_kernel), ("bwd", rt._bwd_kernel)):
            print(f"  autotune {label} (last shape): {getattr(kern, 'best_config', None)}")


if __name__ == "__main__":
    main()
