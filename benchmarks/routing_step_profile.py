"""Where the device time of one training step goes: SAVO's block beside MHA, kernel by kernel (issue 30).

GPU only. Run from the repo root:
    PYTHONUNBUFFERED=1 PYTHONPATH=.:benchmarks python3 benchmarks/routing_step_profile.py --lengths 2048
The step is routing_block.training_step_times' (H = 512, 8 heads, r = 64, bf16 autocast, 32k tokens,
forward + backward with the input gradient + fused AdamW), run eagerly under torch.profiler for
``--steps`` steps after warm-up. Each CUDA kernel's device time is summed over the steps, divided by
the step count and grouped by kernel name (truncated), largest first, so the rows of the two mixers
can be read side by side: what SAVO spends where MHA spends less is what to cut.
"""

from __future__ import annotations

import argparse
import json
import os
from collections import defaultdict

import torch
from routing_block import HEADS, HIDDEN, RANK, TOKENS
from torch.profiler import ProfilerActivity, profile

from nanog1.core import build_mixer


def kernel_times(kind: str, causal: bool, length: int, steps: int) -> dict[str, float]:
    """µs per step of each CUDA kernel name in ``kind``'s training step."""
    from nanog1.core.step_graph import capturable_kwargs

    torch.manual_seed(0)
    module = build_mixer(kind, HIDDEN, RANK, HEADS, causal).cuda()
    opt = torch.optim.AdamW(module.parameters(), lr=1e-4, weight_decay=0.01, **capturable_kwargs(True))
    batch = max(1, TOKENS // length)
    x = torch.randn(batch, length, HIDDEN, device="cuda", requires_grad=True)
    grad = torch.randn(batch, length, HIDDEN, device="cuda")

    def step() -> None:
        x.grad = None
        with torch.autocast("cuda", dtype=torch.bfloat16):
            y = module(x, None)
        y.backward(grad)
        opt.step()

    for _ in range(5):
        step()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(steps):
            step()
        torch.cuda.synchronize()
    out: dict[str, float] = defaultdict(float)
    for event in prof.events():
        if event.device_type == torch.autograd.DeviceType.CUDA:
            out[event.name[:90]] += event.device_time / steps
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lengths", default="2048")
    ap.add_argument("--causal", default="1,0")
    ap.add_argument("--kinds", default="savo,mha")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--out", default=os.path.join(os.environ.get("OUT", "."), "routing_step_profile.json"))
    args = ap.parse_args()
    rows = []
    for length in (int(v) for v in args.lengths.split(",")):
        for causal in (c == "1" for c in args.causal.split(",")):
            for kind in args.kinds.split(","):
                times = kernel_times(kind, causal, length, args.steps)
                total = sum(times.values())
                rows.append(dict(kind=kind, L=length, causal=causal, total_us=total, kernels=times))
                print(f"\n## {kind} L={length} causal={causal}: {total:.1f} µs of kernels per step")
                for name, us in times.items():
                    print(f"{us:9.1f}  {name}")
    with open(args.out, "w") as fh:
        json.dump(rows, fh, indent=1)


if __name__ == "__main__":
    main()
